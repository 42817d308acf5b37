//! Pacing calls to a server: a steady rate with a burst, and a pause every caller honours when
//! the server says when to come back (a Retry-After, a limit reached).
//!
//! It is the generic cell rate algorithm: a theoretical arrival time advances by one interval
//! per call, and a call may go out once it is no more than `burst` intervals ahead. Each caller
//! reserves its slot under the lock and then sleeps outside it, so concurrent callers queue in
//! order instead of waking together and racing for one token.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    /// Time between calls at the steady rate.
    interval: Duration,
    /// How far ahead of time calls may run: (burst - 1) intervals.
    tolerance: Duration,
    /// When the next call would go out at the steady rate with no burst left.
    arrival: Mutex<Instant>,
}

impl RateLimiter {
    /// `per_second` calls per second, up to `burst` at once after a quiet spell. A rate that is
    /// not a positive number paces nothing.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let interval = if per_second.is_finite() && per_second > 0.0 {
            Duration::from_secs_f64(1.0 / per_second)
        } else {
            Duration::ZERO
        };
        Self {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            arrival: Mutex::new(Instant::now()),
        }
    }

    /// Waits until a call may go out, and takes its slot.
    pub async fn acquire(&self) {
        let wait = {
            let mut arrival = self.arrival.lock().await;
            let now = Instant::now();
            let due = (*arrival).max(now);
            let allowed = due.checked_sub(self.tolerance).unwrap_or(now);
            *arrival = due + self.interval;
            allowed.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every caller back for `duration` (a server's Retry-After).
    pub async fn pause(&self, duration: Duration) {
        self.pause_until(Instant::now() + duration).await;
    }

    /// No call goes out before `until`, and none in a burst right after it.
    pub async fn pause_until(&self, until: Instant) {
        let mut arrival = self.arrival.lock().await;
        *arrival = (*arrival).max(until + self.tolerance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_configured_rate_after_a_burst() {
        let limiter = RateLimiter::new(10.0, 10);
        let started = Instant::now();
        for _ in 0..30 {
            limiter.acquire().await;
        }
        // 10 at once, then 20 more at 10/s.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_one_spaces_calls_evenly() {
        let limiter = RateLimiter::new(4.0, 1);
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let limiter = RateLimiter::new(1000.0, 50);
        limiter.pause(Duration::from_secs(3)).await;
        let started = Instant::now();
        limiter.acquire().await;
        assert!(started.elapsed() >= Duration::from_secs(3));
        // A shorter pause later does not shorten the current one.
        limiter.pause(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_queue_in_order() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0, 1));
        let started = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.acquire().await })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(1000), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_rate_paces_nothing() {
        let limiter = RateLimiter::new(0.0, 1);
        let started = Instant::now();
        for _ in 0..100 {
            limiter.acquire().await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
