//! A tenant's circuit breaker. When MaaS360 fails a tenant's calls transiently (5xx, timeouts,
//! refused connections) `threshold` times in a row, the workers stop calling it: a maintenance
//! window of an hour would otherwise cost thousands of doomed calls and push every resource's
//! backoff to its cap. While open, one probe call goes out per cool-down; the first that
//! succeeds closes the breaker and every waiting resource of the tenant resumes at once.
//!
//! Only transient failures count. A throttling answer proves MaaS360 is there (the rate limiter
//! handles it), and a permanent error is about one resource, not the tenant.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open: Option<Open>,
    last_error: Option<(String, SystemTime)>,
    /// Whether the store's record of this tenant has been written since this process started:
    /// the first outcome is always recorded, so a record left "unreachable" by a process that
    /// died is corrected by the next one.
    recorded: bool,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    since: SystemTime,
    next_probe: SystemTime,
    probing: bool,
}

/// Whether calls may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Closed,
    /// Open; no call goes out before `next_probe`, and then only the probe.
    Open {
        next_probe: SystemTime,
    },
}

/// The breaker's state as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    pub(crate) reachable: bool,
    pub(crate) unreachable_since: Option<SystemTime>,
    pub(crate) next_probe_at: Option<SystemTime>,
    pub(crate) last_error: Option<(String, SystemTime)>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another worker panicked mid-update of plain data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn gate(&self) -> Gate {
        match self.state().open {
            None => Gate::Closed,
            Some(open) => Gate::Open {
                next_probe: open.next_probe,
            },
        }
    }

    /// Claims the probe when one is due: true for exactly one caller per cool-down.
    pub(crate) fn start_probe(&self, now: SystemTime) -> bool {
        let mut state = self.state();
        match &mut state.open {
            Some(open) if !open.probing && open.next_probe <= now => {
                open.probing = true;
                true
            }
            _ => false,
        }
    }

    /// MaaS360 answered. Returns the new health when the store's record must change, and
    /// whether this closed the breaker.
    pub(crate) fn record_success(&self) -> Option<(Health, bool)> {
        let mut state = self.state();
        state.consecutive_failures = 0;
        let closed = state.open.take().is_some();
        let changed = closed || !state.recorded;
        state.recorded = true;
        changed.then(|| (health_of(&state), closed))
    }

    /// MaaS360 failed transiently at `now`. Returns the new health when the breaker opened or
    /// a probe failed (the next probe moved), so the store's record must change.
    pub(crate) fn record_failure(&self, error: &str, now: SystemTime) -> Option<Health> {
        let mut state = self.state();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.last_error = Some((error.to_owned(), now));
        let next_probe = now + self.cooldown;
        let threshold_reached = state.consecutive_failures >= self.threshold;
        let changed = match &mut state.open {
            Some(open) if open.probing => {
                open.probing = false;
                open.next_probe = next_probe;
                true
            }
            Some(_) => false,
            None if threshold_reached => {
                state.open = Some(Open {
                    since: now,
                    next_probe,
                    probing: false,
                });
                true
            }
            None => false,
        };
        if changed {
            state.recorded = true;
        }
        changed.then(|| health_of(&state))
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state().open.is_some()
    }
}

fn health_of(state: &State) -> Health {
    Health {
        reachable: state.open.is_none(),
        unreachable_since: state.open.map(|open| open.since),
        next_probe_at: state.open.map(|open| open.next_probe),
        last_error: state.last_error.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn opens_after_the_threshold_of_failures_in_a_row() {
        let breaker = Breaker::new(3, Duration::from_secs(30));
        assert!(breaker.record_failure("503", at(1)).is_none());
        assert!(
            breaker.record_success().is_some(),
            "first outcome is recorded"
        );
        assert!(breaker.record_failure("503", at(2)).is_none());
        assert!(breaker.record_failure("503", at(3)).is_none());
        assert_eq!(breaker.gate(), Gate::Closed);
        let opened = breaker.record_failure("timeout", at(4)).unwrap();
        assert!(!opened.reachable);
        assert_eq!(opened.unreachable_since, Some(at(4)));
        assert_eq!(opened.next_probe_at, Some(at(34)));
        assert_eq!(opened.last_error, Some(("timeout".to_owned(), at(4))));
        assert_eq!(breaker.gate(), Gate::Open { next_probe: at(34) });
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let breaker = Breaker::new(2, Duration::from_secs(30));
        breaker.record_failure("503", at(1));
        breaker.record_success();
        breaker.record_failure("503", at(2));
        assert_eq!(breaker.gate(), Gate::Closed);
    }

    #[test]
    fn one_probe_per_cool_down_and_closing_on_success() {
        let breaker = Breaker::new(1, Duration::from_secs(10));
        breaker.record_failure("refused", at(0));
        assert!(!breaker.start_probe(at(5)), "not due yet");
        assert!(breaker.start_probe(at(10)));
        assert!(!breaker.start_probe(at(11)), "one probe at a time");
        let failed = breaker.record_failure("refused", at(12)).unwrap();
        assert_eq!(failed.next_probe_at, Some(at(22)));
        assert_eq!(
            failed.unreachable_since,
            Some(at(0)),
            "still since the start"
        );
        assert!(breaker.start_probe(at(22)));
        let (closed, was_open) = breaker.record_success().unwrap();
        assert!(was_open);
        assert!(closed.reachable);
        assert_eq!(closed.last_error, Some(("refused".to_owned(), at(12))));
        assert_eq!(breaker.gate(), Gate::Closed);
        assert!(breaker.record_success().is_none(), "nothing new to record");
    }
}
