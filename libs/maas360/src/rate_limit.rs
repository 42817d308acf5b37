//! MaaS360's rate-limit signals, read off every response so the caller can pause the tenant
//! before it is refused: `X-Rate-Limit-Remaining` and `X-Rate-Limit-ResetWindow` (seconds),
//! where 0 remaining means "limit reached" until the window resets (docs/maas360.md
//! §7: one production client, no published numbers), and a 429's Retry-After.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Serialize;
use tokio::time::Instant;

/// Requests left in the current window.
pub const REMAINING_HEADER: &str = "x-rate-limit-remaining";
/// Seconds until the window resets.
pub const RESET_WINDOW_HEADER: &str = "x-rate-limit-resetwindow";

/// What the last responses said about the rate limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RateLimitStatus {
    /// `X-Rate-Limit-Remaining` of the latest response that carried it.
    pub remaining: Option<u64>,
    /// `X-Rate-Limit-ResetWindow` of the latest response that carried it.
    pub reset_window: Option<Duration>,
    /// Until when MaaS360 should not be called: set by 0 remaining (until the window resets)
    /// or by a 429 (its Retry-After, else the reset window); cleared by a response that shows
    /// requests remaining.
    #[serde(skip)]
    pub throttled_until: Option<Instant>,
}

/// The two headers of one response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RateLimitHeaders {
    pub(crate) remaining: Option<u64>,
    pub(crate) reset_window: Option<Duration>,
}

impl RateLimitHeaders {
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            remaining: value(REMAINING_HEADER).and_then(|v| v.trim().parse().ok()),
            // Seconds by the evidence; the shared Retry-After parser also takes an HTTP date.
            reset_window: value(RESET_WINDOW_HEADER).and_then(dirsync_http::retry_after),
        }
    }
}

/// Shared by every call of one client.
#[derive(Debug, Default)]
pub(crate) struct RateLimitObserver {
    state: Mutex<RateLimitStatus>,
}

impl RateLimitObserver {
    /// Takes in one response's status, rate-limit headers and Retry-After.
    pub(crate) fn observe(
        &self,
        status: StatusCode,
        headers: RateLimitHeaders,
        retry_after: Option<Duration>,
    ) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if headers.remaining.is_some() {
            state.remaining = headers.remaining;
        }
        if headers.reset_window.is_some() {
            state.reset_window = headers.reset_window;
        }
        let pause = if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after.or(headers.reset_window)
        } else if headers.remaining == Some(0) {
            headers.reset_window
        } else {
            if headers.remaining.is_some_and(|r| r > 0) {
                state.throttled_until = None;
            }
            None
        };
        if let Some(pause) = pause {
            let until = now + pause;
            state.throttled_until = Some(state.throttled_until.map_or(until, |t| t.max(until)));
        }
    }

    pub(crate) fn status(&self) -> RateLimitStatus {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `throttled_until` if it is still ahead.
    pub(crate) fn throttled_until(&self) -> Option<Instant> {
        self.status()
            .throttled_until
            .filter(|until| *until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(remaining: Option<&str>, reset: Option<&str>) -> RateLimitHeaders {
        let mut map = HeaderMap::new();
        for (name, value) in [(REMAINING_HEADER, remaining), (RESET_WINDOW_HEADER, reset)] {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                map.insert(name, value);
            }
        }
        RateLimitHeaders::read(&map)
    }

    #[tokio::test]
    async fn zero_remaining_throttles_until_the_window_resets() {
        tokio::time::pause();
        let observer = RateLimitObserver::default();
        observer.observe(StatusCode::OK, headers(Some("5"), Some("30")), None);
        assert_eq!(observer.throttled_until(), None);
        assert_eq!(observer.status().remaining, Some(5));
        let start = Instant::now();
        observer.observe(StatusCode::OK, headers(Some("0"), Some("30")), None);
        assert_eq!(
            observer.throttled_until(),
            Some(start + Duration::from_secs(30))
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(observer.throttled_until(), None, "the window has reset");
    }

    #[tokio::test]
    async fn a_429_throttles_for_its_retry_after_and_room_clears_it() {
        tokio::time::pause();
        let observer = RateLimitObserver::default();
        let start = Instant::now();
        observer.observe(
            StatusCode::TOO_MANY_REQUESTS,
            headers(None, None),
            Some(Duration::from_secs(12)),
        );
        assert_eq!(
            observer.throttled_until(),
            Some(start + Duration::from_secs(12))
        );
        // Without Retry-After, the reset window says how long.
        observer.observe(
            StatusCode::TOO_MANY_REQUESTS,
            headers(Some("0"), Some("40")),
            None,
        );
        assert_eq!(
            observer.throttled_until(),
            Some(start + Duration::from_secs(40))
        );
        // A shorter hint never shortens a pause already given.
        observer.observe(StatusCode::OK, headers(Some("0"), Some("2")), None);
        assert_eq!(
            observer.throttled_until(),
            Some(start + Duration::from_secs(40))
        );
        observer.observe(StatusCode::OK, headers(Some("9"), Some("60")), None);
        assert_eq!(observer.throttled_until(), None);
        // A response without the headers changes nothing.
        observer.observe(StatusCode::OK, headers(None, None), None);
        assert_eq!(observer.status().remaining, Some(9));
        assert_eq!(
            headers(Some("x"), Some("soon")),
            RateLimitHeaders::default()
        );
    }
}
