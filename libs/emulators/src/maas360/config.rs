//! How an emulator instance is set up: the account it accepts and the faults it injects.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The one customer account an emulator serves, and its behaviour switches.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub billing_id: String,
    pub admin_user: String,
    pub password: String,
    pub app_id: String,
    pub app_version: String,
    pub platform_id: String,
    pub app_access_key: String,
    /// How long an auth token is honoured; MaaS360 documents 60 minutes.
    pub token_ttl: Duration,
    pub faults: Faults,
    /// Mimic MaaS360's XML-to-JSON conversion in JSON responses: one-element lists become
    /// objects, empty lists disappear and numbers become strings (docs/maas360.md §3).
    pub one_element_as_object: bool,
    /// Tolerance when recording Retry-After violations: requests within this long after a
    /// Retry-After window opens (already in flight when the 429 went out) or within this long
    /// of its end are not violations.
    pub retry_after_grace: Duration,
    /// Whether addUser answers with the new `userIdentifier`; unknown for MaaS360
    /// (docs/maas360.md §4.3), so a client must cope without it.
    pub add_user_returns_identifier: bool,
    /// User deletions are queued for a daily job (docs/maas360.md §4.5): the user stays
    /// visible, pending deletion, until `POST /_emulator/run-deletion-job` runs it, or, when
    /// this is set, until it has waited this long (`Duration::ZERO`: deleted at once).
    pub deletion_job_after: Option<Duration>,
    /// How the rate limit (`faults.rate_limit_per_minute`) is signalled.
    pub rate_limit: RateLimitSettings,
    /// Routes served somewhere other than their default path: route name (as the client
    /// names it, e.g. `edit_user`) → path with `{billingID}`, `{userIdentifier}` or
    /// `{groupID}` placeholders. Refused at start if a name or path is wrong.
    pub routes: BTreeMap<String, String>,
}

impl EmulatorConfig {
    /// Fixed test credentials: billing id `30012345`, admin `api_admin` / `emulator-password`,
    /// app `com.30012345.api` version `1.0` platform `3`, access key `emulator-access-key`.
    pub fn for_tests() -> Self {
        Self {
            billing_id: "30012345".to_owned(),
            admin_user: "api_admin".to_owned(),
            password: "emulator-password".to_owned(),
            app_id: "com.30012345.api".to_owned(),
            app_version: "1.0".to_owned(),
            platform_id: "3".to_owned(),
            app_access_key: "emulator-access-key".to_owned(),
            token_ttl: Duration::from_secs(3600),
            faults: Faults::default(),
            one_element_as_object: true,
            retry_after_grace: Duration::from_millis(250),
            routes: BTreeMap::new(),
            rate_limit: RateLimitSettings::default(),
            add_user_returns_identifier: true,
            deletion_job_after: None,
        }
    }
}

/// Faults injected into API requests; changeable at run time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Fraction (0.0–1.0) of API requests (not admin, not auth) answered with 500, 502 or 503.
    /// Half of those apply the change first and then fail, as when a response is lost, to
    /// exercise create-or-adopt logic.
    pub fault_rate: f64,
    /// Added to every API request, auth included.
    pub latency_ms: u64,
    /// Requests per rolling minute (authentication aside) before the limit is reached; 0 means
    /// no limit. How it shows (headers, 429, Retry-After) is [`RateLimitSettings`].
    pub rate_limit_per_minute: u32,
    /// Every API request, auth included, answers 503 during this window.
    pub outage: Option<Outage>,
    /// Seed of the fault dice, so a run with faults can be replayed.
    pub seed: u64,
}

/// How the emulator signals its rate limit; changeable at run time. The only evidence is one
/// production client that reads `X-Rate-Limit-Remaining` and `X-Rate-Limit-ResetWindow` and
/// treats 0 remaining as "limit reached"; there is none of a 429 (docs/maas360.md
/// §7), so the 429 is a switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// While a limit is set, every API answer carries `X-Rate-Limit-Remaining` (requests left
    /// in the rolling minute) and `X-Rate-Limit-ResetWindow` (seconds until a slot frees).
    pub headers: bool,
    /// A request beyond the limit answers 429; when false it is served anyway and only the
    /// headers (0 remaining) say the limit is reached.
    pub reject: bool,
    /// How a 429 says when to come back.
    pub retry_after: RetryAfterStyle,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            headers: true,
            reject: true,
            retry_after: RetryAfterStyle::Seconds,
        }
    }
}

/// The form of a 429's `Retry-After` (RFC 9110 allows both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfterStyle {
    /// `Retry-After: 42`.
    #[default]
    Seconds,
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`, rounded up to the whole second.
    HttpDate,
    /// No `Retry-After`; only `X-Rate-Limit-ResetWindow` says when.
    Omitted,
}

/// A window relative to when the faults were set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    #[serde(rename = "starts_after_ms", with = "millis")]
    pub starts_after: Duration,
    #[serde(rename = "lasts_ms", with = "millis")]
    pub lasts: Duration,
}

/// Durations as whole milliseconds, which read well in a JSON faults file.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
