//! IBM MaaS360 web-services client: authentication tokens (1.0, 2.0 and refresh), users, user
//! groups, memberships, and groups with their app and policy distributions.
//!
//! The client authenticates lazily, caches the token, renews it `renew_before` its expiry (auth
//! 2.0 through the refresh route, falling back to full authentication) or once after a refused
//! token (401, errorCode 1009), and lets only one renewal run at a time. It never retries
//! throttling or server errors itself: it classifies every failure into a [`Maas360Error`] and
//! reports MaaS360's rate-limit signals ([`Maas360Client::throttled_until`]) so the caller's
//! workers can pause the tenant and back off.
//!
//! What it is not: a scheduler or a retry loop (the provisioner decides when to try again), a
//! store (it keeps only the token), or a complete MaaS360 SDK (only what dirsync writes and reads:
//! no devices, apps or policies beyond what a group distributes).
//!
//! What it knows of MaaS360's API, with the evidence for each fact, is in `docs/maas360.md`.
//! Eight of the routes are guesses; every route is data in a [`RouteTable`] that a TOML routes
//! file overrides without a rebuild (format in [`routes_file`] and `docs/maas360-routes.md`),
//! and [`probe`] checks them against a tenant.
//!
//! Modules:
//! - `client`: [`Maas360Client`], the operations.
//! - `config`: [`Credentials`] and [`ClientOptions`].
//! - `error`: [`Maas360Error`], shaped by what the caller should do next.
//! - `model`: users, groups, pages, [`DeleteOutcome`], and how they are read from JSON.
//! - `lenient`: tolerant reading of MaaS360's XML-converted JSON.
//! - `paging`: the page sizes MaaS360 accepts.
//! - [`routes`]: every route with its evidence, the [`RouteTable`].
//! - [`routes_file`]: the operator's routes file and its validation.
//! - `transport`: one HTTP exchange, its headers and timeout, and judging the answer.
//! - `token`: obtaining, refreshing and caching the token.
//! - `rate_limit`: the `X-Rate-Limit-*` headers and Retry-After, as [`RateLimitStatus`].
//! - [`probe`]: checks each route against a tenant and reports.

mod client;
mod config;
mod error;
mod lenient;
mod model;
mod paging;
pub mod probe;
mod rate_limit;
pub mod routes;
pub mod routes_file;
mod token;
mod transport;

pub use client::Maas360Client;
pub use config::{AuthVersion, ClientOptions, Credentials, USER_GROUP_TYPE};
pub use dirsync_http::Secret;
pub use error::Maas360Error;
pub use model::{
    DeleteOutcome, Distribution, GroupRef, Maas360Group, Maas360User, NewUser, Page, UserChanges,
    UserGroup, UserSearch,
};
pub use paging::{ALLOWED_PAGE_SIZES, allowed_page_size};
pub use rate_limit::{REMAINING_HEADER, RESET_WINDOW_HEADER, RateLimitStatus};
pub use routes::{Encoding, Evidence, Method, Route, RouteName, RouteTable, Success};
pub use routes_file::RoutesFileError;
