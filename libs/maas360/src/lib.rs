//! IBM MaaS360 web-services client: authentication tokens (1.0 and 2.0), users, user groups,
//! memberships, and groups with their app and policy distributions.
//!
//! The client authenticates lazily, caches the token, renews it `renew_before` its expiry or
//! once after a 401, and lets only one renewal run at a time. It never retries throttling or
//! server errors itself: it classifies every failure into a [`Maas360Error`] so the caller's
//! workers can apply their own backoff (honouring [`Maas360Error::retry_after`]).
//!
//! Paths come from [`routes`], where each is tagged with the evidence behind it; several user
//! and group operations are inferred, not confirmed (see `maas360-api.md` §4.5 and §5.7).

mod client;
mod config;
mod error;
mod lenient;
mod model;
mod paging;
mod rate_limit;
pub mod routes;
pub mod routes_file;
mod secret;
mod token;
mod transport;

pub use client::Maas360Client;
pub use config::{AuthVersion, ClientOptions, Credentials, USER_GROUP_TYPE};
pub use error::Maas360Error;
pub use model::{
    DeleteOutcome, Distribution, GroupRef, Maas360Group, Maas360User, NewUser, Page, UserChanges,
    UserGroup, UserSearch,
};
pub use paging::{ALLOWED_PAGE_SIZES, allowed_page_size};
pub use rate_limit::{REMAINING_HEADER, RESET_WINDOW_HEADER, RateLimitStatus};
pub use routes::{Encoding, Evidence, Method, Route, RouteName, RouteTable, Success};
pub use routes_file::RoutesFileError;
pub use secret::Secret;
