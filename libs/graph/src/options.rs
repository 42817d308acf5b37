//! Tuning for [`crate::GraphClient`]: timeouts, concurrency, retries, token renewal, page size.

use std::time::Duration;

use dirsync_http::Backoff;

use crate::error::GraphError;

/// The largest `$top` Graph accepts on users, groups and member lists (docs/graph.md §2.1).
pub const MAX_PAGE_SIZE: u16 = 999;

/// How the client paces itself. The defaults suit a background sync against the real Graph.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Bound on each HTTP exchange, connect through last body byte.
    pub request_timeout: Duration,
    /// HTTP exchanges in flight at once from this client (and its clones).
    pub max_concurrency: usize,
    /// Retries after a 429, 500, 502, 503, 504, timeout or connection failure, per request.
    pub max_retries: u32,
    /// Waits between retries when Graph sends no Retry-After.
    pub backoff: Backoff,
    /// The longest Retry-After the client sleeps through; a longer one is handed to the
    /// caller as [`crate::GraphError::Throttled`] so it can schedule the retry itself.
    /// Graph has been seen to ask for 315 s (docs/graph.md §4.1).
    pub max_retry_after: Duration,
    /// Renew the token this long before it expires (at most half its lifetime early), so no
    /// request starts with a token about to lapse.
    pub renew_before: Duration,
    /// `$top` for users, groups and member lists, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u16,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            max_concurrency: 4,
            max_retries: 6,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            max_retry_after: Duration::from_secs(330),
            renew_before: Duration::from_secs(5 * 60),
            page_size: MAX_PAGE_SIZE,
        }
    }
}

impl ClientOptions {
    pub(crate) fn validate(&self) -> Result<(), GraphError> {
        if self.request_timeout.is_zero() {
            return Err(GraphError::Config("request_timeout is zero".to_owned()));
        }
        if self.max_concurrency == 0 {
            return Err(GraphError::Config("max_concurrency is zero".to_owned()));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(GraphError::Config(format!(
                "page_size {} is outside 1..={MAX_PAGE_SIZE}",
                self.page_size
            )));
        }
        Ok(())
    }
}
