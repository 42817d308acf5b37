//! Capped exponential backoff with jitter.

use std::time::Duration;

use rand::RngExt;

/// `base · 2^(attempt-1)`, capped at `cap`, then a random point between half of that and all
/// of it: the half keeps a floor under the wait, the jitter spreads clients that failed at the
/// same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The full (unjittered) delay before attempt `attempt + 1`, `attempt` counting from 1.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }

    /// The delay to wait after failed attempt `attempt` (counting from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(900));
        assert_eq!(backoff.ceiling(1), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(2), Duration::from_secs(2));
        assert_eq!(backoff.ceiling(5), Duration::from_secs(16));
        assert_eq!(backoff.ceiling(11), Duration::from_secs(900));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
        for attempt in 1..12 {
            let ceiling = backoff.ceiling(attempt);
            for _ in 0..50 {
                let delay = backoff.delay(attempt);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} vs {ceiling:?}"
                );
            }
        }
    }
}
