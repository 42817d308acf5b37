//! What happens to a Graph read before it reaches the directory: injected throttling with
//! Retry-After (docs/graph.md §4.1), the record of clients that came back too early or
//! rebuilt a link, and the per-route counts.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::config::Throttle;
use super::wire::http_date;

/// Recorded violations beyond this are dropped (and counted), so a misbehaving client in a
/// long benchmark cannot exhaust memory.
const MAX_VIOLATIONS: usize = 10_000;

/// Something a client did that a correct Graph client does not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphViolation {
    /// `earlyRetry`: came back while a Retry-After was running; `rebuiltLink`: sent a
    /// `$skiptoken`/`$deltatoken` in a URL other than the link that carried it.
    pub kind: String,
    pub route: String,
    pub detail: String,
}

/// The verdict on one read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    /// Answer with this status and, when given, this Retry-After header value.
    Throttle {
        status: StatusCode,
        retry_after: Option<String>,
    },
}

#[derive(Clone, Copy, Debug)]
struct RetryWindow {
    opened: Instant,
    until: Instant,
}

#[derive(Debug)]
pub(crate) struct Traffic {
    throttle: Throttle,
    window: Option<RetryWindow>,
    counts: BTreeMap<String, BTreeMap<u16, u64>>,
    violations: Vec<GraphViolation>,
    dropped: u64,
}

impl Traffic {
    pub(crate) fn new(throttle: Throttle) -> Self {
        Self {
            throttle: throttle.sanitized(),
            window: None,
            counts: BTreeMap::new(),
            violations: Vec::new(),
            dropped: 0,
        }
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub(crate) fn set_throttle(&mut self, throttle: Throttle) {
        self.throttle = throttle.sanitized();
    }

    /// Judges one read of `route`: records it as a violation when it arrives inside a
    /// Retry-After the emulator gave (past `grace` on both ends), then rolls the dice.
    pub(crate) fn admit(&mut self, route: &str, grace: Duration) -> Verdict {
        let now = Instant::now();
        if let Some(window) = self.window {
            if now >= window.until {
                self.window = None;
            } else if now >= window.opened + grace && now + grace < window.until {
                let early = window.until.duration_since(now);
                self.record(GraphViolation {
                    kind: "earlyRetry".to_owned(),
                    route: route.to_owned(),
                    detail: format!(
                        "arrived {} ms before Retry-After ran out",
                        early.as_millis()
                    ),
                });
            }
        }
        let forced = self.throttle.next > 0;
        let rolled = !forced
            && self.throttle.rate > 0.0
            && rand::rng().random_range(0.0..1.0) < self.throttle.rate;
        if !forced && !rolled {
            return Verdict::Pass;
        }
        if forced {
            self.throttle.next -= 1;
        }
        let status =
            StatusCode::from_u16(self.throttle.status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        let secs = self.throttle.retry_after_secs;
        if secs <= 0.0 {
            return Verdict::Throttle {
                status,
                retry_after: None,
            };
        }
        let (value, wait) = if self.throttle.http_date {
            // A date has whole seconds: round up so a client waiting until it waits at least
            // as long as asked.
            let at = SystemTime::now() + Duration::from_secs_f64(secs);
            let since_epoch = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let whole = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
            let date = SystemTime::UNIX_EPOCH + Duration::from_secs(whole);
            let wait = date.duration_since(SystemTime::now()).unwrap_or_default();
            (http_date(date), wait)
        } else if secs.fract() == 0.0 {
            (format!("{secs:.0}"), Duration::from_secs_f64(secs))
        } else {
            (format!("{secs}"), Duration::from_secs_f64(secs))
        };
        let until = now + wait;
        match &mut self.window {
            // A later answer inside the window extends it without reopening it, so a client
            // hammering the API cannot keep itself inside the in-flight grace.
            Some(window) if until > window.until => window.until = until,
            Some(_) => {}
            None => self.window = Some(RetryWindow { opened: now, until }),
        }
        Verdict::Throttle {
            status,
            retry_after: Some(value),
        }
    }

    pub(crate) fn record(&mut self, violation: GraphViolation) {
        tracing::debug!(kind = %violation.kind, route = %violation.route, "Graph emulator violation");
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(violation);
        } else {
            self.dropped += 1;
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

    pub(crate) fn violations(&self) -> Vec<GraphViolation> {
        self.violations.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_throttles_exactly_that_many() {
        let mut traffic = Traffic::new(Throttle {
            next: 2,
            ..Throttle::default()
        });
        let grace = Duration::from_millis(250);
        let first = traffic.admit("users", grace);
        assert_eq!(
            first,
            Verdict::Throttle {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some("1".to_owned())
            }
        );
        assert!(matches!(
            traffic.admit("users", grace),
            Verdict::Throttle { .. }
        ));
        // Came back inside the window with no grace: a violation; and no more throttling.
        assert_eq!(traffic.admit("users", Duration::ZERO), Verdict::Pass);
        assert_eq!(traffic.violations().len(), 1);
    }

    #[test]
    fn retry_after_as_a_date_or_fraction() {
        let mut traffic = Traffic::new(Throttle {
            next: 2,
            http_date: true,
            ..Throttle::default()
        });
        let Verdict::Throttle {
            retry_after: Some(value),
            ..
        } = traffic.admit("users", Duration::ZERO)
        else {
            panic!("not throttled");
        };
        assert!(value.ends_with(" GMT"), "{value}");
        traffic.set_throttle(Throttle {
            next: 1,
            retry_after_secs: 0.25,
            status: 503,
            ..Throttle::default()
        });
        assert_eq!(
            traffic.admit("users", Duration::from_secs(5)),
            Verdict::Throttle {
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: Some("0.25".to_owned())
            }
        );
    }
}
