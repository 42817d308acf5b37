//! What happens to a request before it reaches the directory: outages, rate limits with
//! Retry-After (and clients that ignore it), random server errors, and the per-route counts.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::config::{Faults, RateLimitSettings};

/// Recorded violations beyond this are dropped (and counted), so a misbehaving client in a
/// long benchmark cannot exhaust memory.
const MAX_VIOLATIONS: usize = 10_000;
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// [`Violation::kind`] of a request that arrived while a Retry-After was still running.
pub const IGNORED_RETRY_AFTER: &str = "ignored_retry_after";

/// Something a client did that MaaS360 does not expect: a request that arrived while a
/// Retry-After the emulator gave was still running (earlier than the configured grace
/// allows), or a protocol slip such as a password sent on token refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub route: String,
    /// [`IGNORED_RETRY_AFTER`] or a protocol slip such as `secret_on_refresh`.
    pub kind: String,
    /// What happened, in words.
    pub detail: String,
    /// For an ignored Retry-After: how long before it ran out the request arrived.
    pub early_by_ms: u64,
    /// For an ignored Retry-After: the seconds that were given.
    pub retry_after_secs: u64,
}

/// A duration rounded up to whole seconds, as the headers carry it.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The fault dice: seeded from [`Faults::seed`], so a run with faults can be replayed.
fn dice(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The verdict on one incoming request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Pass,
    /// Answer at once with this status and error body.
    Reject {
        status: StatusCode,
        retry_after: Option<u64>,
        desc: &'static str,
    },
    /// Apply the request, then answer with this status as if the response was lost.
    FailAfter(StatusCode),
}

#[derive(Clone, Copy, Debug)]
struct RetryWindow {
    opened: Instant,
    until: Instant,
    secs: u64,
}

#[derive(Debug)]
pub(crate) struct Traffic {
    faults: Faults,
    signals: RateLimitSettings,
    set_at: Instant,
    rng: StdRng,
    /// Arrival times of admitted requests in the last minute; never longer than the limit.
    window: VecDeque<Instant>,
    /// The Retry-After window in force: when it opened, when it ends, the seconds given.
    retry_window: Option<RetryWindow>,
    counts: BTreeMap<String, BTreeMap<u16, u64>>,
    violations: Vec<Violation>,
    violations_dropped: u64,
}

impl Traffic {
    pub(crate) fn new(faults: Faults, signals: RateLimitSettings) -> Self {
        Self {
            rng: dice(faults.seed),
            faults,
            signals,
            set_at: Instant::now(),
            window: VecDeque::new(),
            retry_window: None,
            counts: BTreeMap::new(),
            violations: Vec::new(),
            violations_dropped: 0,
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// New faults apply from now: the outage window, the rate window and the dice restart.
    pub(crate) fn set_faults(&mut self, faults: Faults) {
        self.rng = dice(faults.seed);
        self.faults = faults;
        self.set_at = Instant::now();
        self.window.clear();
        self.retry_window = None;
    }

    pub(crate) fn rate_limit_settings(&self) -> &RateLimitSettings {
        &self.signals
    }

    pub(crate) fn set_rate_limit_settings(&mut self, signals: RateLimitSettings) {
        self.signals = signals;
    }

    /// `X-Rate-Limit-Remaining` and `X-Rate-Limit-ResetWindow` (seconds) as they stand now,
    /// when a limit is set and the headers are on.
    pub(crate) fn rate_headers(&mut self) -> Option<(u64, u64)> {
        let limit = self.faults.rate_limit_per_minute;
        if limit == 0 || !self.signals.headers {
            return None;
        }
        let now = Instant::now();
        self.forget_old(now);
        let used = u64::try_from(self.window.len()).unwrap_or(u64::MAX);
        let remaining = u64::from(limit).saturating_sub(used);
        let reset = self.window.front().map_or(RATE_WINDOW, |oldest| {
            (*oldest + RATE_WINDOW).saturating_duration_since(now)
        });
        Some((remaining, whole_seconds(reset)))
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.window.pop_front();
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.faults.latency_ms)
    }

    pub(crate) fn admit(&mut self, route: &str, is_auth: bool, grace: Duration) -> Admission {
        let now = Instant::now();
        if let Some(window) = self.retry_window {
            if now >= window.until {
                self.retry_window = None;
            } else if now >= window.opened + grace && now + grace < window.until {
                // Requests within `grace` of the window opening were already in flight when
                // the 429 went out; only later ones ignored it.
                let early_by_ms =
                    u64::try_from(window.until.duration_since(now).as_millis()).unwrap_or(u64::MAX);
                self.record_violation(Violation {
                    route: route.to_owned(),
                    kind: IGNORED_RETRY_AFTER.to_owned(),
                    detail: format!(
                        "arrived {early_by_ms} ms before a Retry-After of {} s ran out",
                        window.secs
                    ),
                    early_by_ms,
                    retry_after_secs: window.secs,
                });
            }
        }
        if let Some(outage) = self.faults.outage {
            let start = self.set_at + outage.starts_after;
            if now >= start && now < start + outage.lasts {
                return Admission::Reject {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    retry_after: None,
                    desc: "Service temporarily unavailable",
                };
            }
        }
        if is_auth {
            return Admission::Pass;
        }
        if let Some(rejection) = self.rate_limit(now) {
            return rejection;
        }
        let rate = self.faults.fault_rate;
        if rate > 0.0 && self.rng.random::<f64>() < rate {
            let status = match self.rng.random_range(0..3u8) {
                0 => StatusCode::INTERNAL_SERVER_ERROR,
                1 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return if self.rng.random_bool(0.5) {
                Admission::FailAfter(status)
            } else {
                Admission::Reject {
                    status,
                    retry_after: None,
                    desc: "Injected server error",
                }
            };
        }
        Admission::Pass
    }

    fn rate_limit(&mut self, now: Instant) -> Option<Admission> {
        let limit = usize::try_from(self.faults.rate_limit_per_minute).unwrap_or(usize::MAX);
        if limit == 0 {
            return None;
        }
        self.forget_old(now);
        if self.window.len() < limit {
            self.window.push_back(now);
            return None;
        }
        if !self.signals.reject {
            // Served anyway: the headers alone (0 remaining) say the limit is reached.
            return None;
        }
        let oldest = self.window.front().copied().unwrap_or(now);
        let wait = (oldest + RATE_WINDOW).saturating_duration_since(now);
        let secs = whole_seconds(wait).max(1);
        let until = now + Duration::from_secs(secs);
        match &mut self.retry_window {
            // A later 429 inside the window extends it but does not reopen it, so a client
            // hammering the API cannot keep itself inside the in-flight grace.
            Some(window) if until > window.until => {
                window.until = until;
                window.secs = secs;
            }
            Some(_) => {}
            None => {
                self.retry_window = Some(RetryWindow {
                    opened: now,
                    until,
                    secs,
                });
            }
        }
        Some(Admission::Reject {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(secs),
            desc: "Request limit exceeded",
        })
    }

    /// Records a request that broke the protocol the evidence describes.
    pub(crate) fn record_protocol_violation(&mut self, route: &str, kind: &str, detail: String) {
        self.record_violation(Violation {
            route: route.to_owned(),
            kind: kind.to_owned(),
            detail,
            early_by_ms: 0,
            retry_after_secs: 0,
        });
    }

    fn record_violation(&mut self, violation: Violation) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(violation);
        } else {
            self.violations_dropped += 1;
        }
    }

    pub(crate) fn count(&mut self, route: &str, status: StatusCode) {
        *self
            .counts
            .entry(route.to_owned())
            .or_default()
            .entry(status.as_u16())
            .or_insert(0) += 1;
    }

    pub(crate) fn counts(&self) -> BTreeMap<String, BTreeMap<u16, u64>> {
        self.counts.clone()
    }

    pub(crate) fn violations(&self) -> Vec<Violation> {
        self.violations.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_throws_the_same_faults() {
        let faults = Faults {
            fault_rate: 0.5,
            seed: 7,
            ..Faults::default()
        };
        let grace = Duration::from_millis(250);
        let throw = |faults: &Faults| {
            let mut t = Traffic::new(faults.clone(), RateLimitSettings::default());
            (0..200)
                .map(|_| t.admit("search_users", false, grace))
                .collect::<Vec<_>>()
        };
        assert_eq!(throw(&faults), throw(&faults));
        let other = Faults {
            seed: 8,
            ..faults.clone()
        };
        assert_ne!(throw(&faults), throw(&other));
    }

    #[test]
    fn fault_rate_is_roughly_honoured() {
        let mut t = Traffic::new(
            Faults {
                fault_rate: 0.5,
                seed: 42,
                ..Faults::default()
            },
            RateLimitSettings::default(),
        );
        let grace = Duration::from_millis(250);
        let failed = (0..1000)
            .filter(|_| t.admit("search_users", false, grace) != Admission::Pass)
            .count();
        assert!((350..650).contains(&failed), "failed {failed}");
        assert_eq!(t.admit("auth_v1", true, grace), Admission::Pass);
    }

    #[tokio::test]
    async fn rate_limit_answers_429_and_then_records_violations() {
        let mut t = Traffic::new(
            Faults {
                rate_limit_per_minute: 2,
                ..Faults::default()
            },
            RateLimitSettings::default(),
        );
        let grace = Duration::from_millis(250);
        assert_eq!(t.rate_headers(), Some((2, 60)));
        assert_eq!(t.admit("r", false, grace), Admission::Pass);
        assert_eq!(t.rate_headers().map(|h| h.0), Some(1));
        assert_eq!(t.admit("r", false, grace), Admission::Pass);
        let (remaining, reset) = t.rate_headers().unwrap_or_default();
        assert_eq!(remaining, 0);
        assert!((1..=60).contains(&reset), "{reset}");
        let third = t.admit("r", false, grace);
        assert!(matches!(third, Admission::Reject { retry_after: Some(s), .. } if s >= 1));
        assert!(t.violations().is_empty());
        // Straight after the 429: could have been in flight already.
        let _ = t.admit("r", false, grace);
        assert!(t.violations().is_empty());
        // With no grace, the same request counts.
        let _ = t.admit("r", false, Duration::ZERO);
        assert_eq!(t.violations().len(), 1);
    }
}
