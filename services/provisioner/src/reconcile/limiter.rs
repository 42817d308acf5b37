//! Per-tenant pacing of MaaS360 calls: a token bucket for the steady rate,
//! and a pause that every caller honours after MaaS360 answers 429 with a
//! Retry-After, so no request is sent before MaaS360 said it may be.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: f64) -> Self {
        let burst = per_second.clamp(1.0, 50.0);
        Self {
            per_second,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                refilled_at: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Waits until a call may be made, then takes its token.
    pub(crate) async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.state.lock().await;
                let now = Instant::now();
                if let Some(until) = bucket.paused_until {
                    if until > now {
                        Some(until - now)
                    } else {
                        bucket.paused_until = None;
                        None
                    }
                } else {
                    None
                }
                .or_else(|| {
                    let elapsed = now.duration_since(bucket.refilled_at).as_secs_f64();
                    bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
                    bucket.refilled_at = now;
                    if bucket.tokens >= 1.0 {
                        bucket.tokens -= 1.0;
                        None
                    } else {
                        Some(Duration::from_secs_f64(
                            (1.0 - bucket.tokens) / self.per_second,
                        ))
                    }
                })
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Holds every caller back for `duration` (MaaS360's Retry-After).
    pub(crate) async fn pause(&self, duration: Duration) {
        self.pause_until(Instant::now() + duration).await;
    }

    /// Holds every caller back until `until` (MaaS360 said its limit is reached until then).
    pub(crate) async fn pause_until(&self, until: Instant) {
        let mut bucket = self.state.lock().await;
        if bucket.paused_until.is_none_or(|current| current < until) {
            bucket.paused_until = Some(until);
            bucket.tokens = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_configured_rate() {
        let limiter = RateLimiter::new(10.0);
        let started = Instant::now();
        for _ in 0..30 {
            limiter.acquire().await;
        }
        // 10 burst tokens, then 20 more at 10/s.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let limiter = RateLimiter::new(1000.0);
        limiter.pause(Duration::from_secs(3)).await;
        let started = Instant::now();
        limiter.acquire().await;
        assert!(started.elapsed() >= Duration::from_secs(3));
    }
}
