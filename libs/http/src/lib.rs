//! What every dirsync HTTP client (MaaS360, Microsoft Graph, the Entra simulator) needs the same
//! way, written once:
//!
//! - [`retry_after`]: the `Retry-After` header, as delay-seconds or as an HTTP date
//!   (RFC 9110 §10.2.3);
//! - [`Backoff`]: capped exponential backoff with jitter, so that clients that failed together
//!   do not retry together.
//!
//! No I/O and no clock of its own: callers pass "now", so the parsing is testable.

mod backoff;
mod retry_after;

pub use backoff::Backoff;
pub use retry_after::{parse as parse_retry_after, retry_after};
