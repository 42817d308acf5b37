//! What every dirsync HTTP client (MaaS360, Microsoft Graph, the Entra simulator) needs the same
//! way, written once:
//!
//! - [`retry_after`]: the `Retry-After` header, as delay-seconds or as an HTTP date
//!   (RFC 9110 §10.2.3);
//! - [`Backoff`]: capped exponential backoff with jitter, so that clients that failed together
//!   do not retry together;
//! - [`RateLimiter`]: a steady rate with a burst, and a pause every caller honours;
//! - [`Secret`]: a credential that never reaches logs, errors or debug output.
//!
//! What it is not: an HTTP client, or a retry loop. It does no I/O, and its parsing takes "now"
//! from the caller ([`parse_retry_after`]; [`retry_after`] is the shorthand against the system
//! clock), so it is testable.
//!
//! Modules:
//! - `retry_after`: [`retry_after`] and [`parse_retry_after`].
//! - `backoff`: [`Backoff`].
//! - `rate_limit`: [`RateLimiter`].
//! - `secret`: [`Secret`].

mod backoff;
mod rate_limit;
mod retry_after;
mod secret;

pub use backoff::Backoff;
pub use rate_limit::RateLimiter;
pub use retry_after::{parse as parse_retry_after, retry_after};
pub use secret::Secret;
