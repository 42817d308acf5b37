//! A MaaS360 web-services emulator: the routes and wire shapes `dirsync-maas360` uses
//! (docs/maas360.md §9), served over real HTTP.
//!
//! - Auth 1.0 and 2.0 with expiring tokens, and refresh tokens redeemed through their own route
//!   (no password, no access key; sending them is recorded as a violation). Refused credentials
//!   answer HTTP 200 with a non-zero `errorCode` (1002 "Invalid credentials" for the admin user
//!   or password; the other parts with texts that name them); a bad or expired token answers
//!   401 with `errorCode` 1009 keyed by the resource; `MaaS token="…"` and `MaaS token='…'` are
//!   both accepted; the path's billing id must match the token's on every route.
//! - XML by default, JSON on `Accept: application/json`, with the XML-to-JSON habits (one-element
//!   lists as objects, numbers as strings) on by default ([`EmulatorConfig::one_element_as_object`]).
//! - Paging limited to the allowed page sizes; users unique by userName+domain; group names
//!   unique; the group list is `{"groups":{"count","group":[{"groupName","groupID",
//!   "groupType"}]}}` with numeric types (3 user group, 0–2 device groups) plus category and
//!   app and policy distributions (\[inferred\] fields); `searchByGroup` takes the `groupID`.
//! - Faults ([`Faults`]): random 5xx (half of them after applying the change), latency, a rate
//!   limit, and outage windows. While a limit is set ([`RateLimitSettings`]) every answer carries
//!   `X-Rate-Limit-Remaining` and `X-Rate-Limit-ResetWindow` (seconds); beyond it a 429 whose
//!   Retry-After is seconds, an HTTP date or absent (or, switched off, no 429 at all); clients
//!   that ignore a Retry-After are recorded.
//! - Routes as data ([`default_routes`]): any route can be served at another path, at start
//!   ([`EmulatorConfig::routes`]) or at run time, to show what a wrong path looks like to a client
//!   and that a routes file fixes it.
//! - Older write routes answer `actionResponse.actionStatus` (0 success, 1 refused) with a
//!   `description`. addUser takes `userName, domain, email, fullName, authType, …` and can be
//!   told to leave `userIdentifier` out of its answer.
//! - Users have devices. Deleting a user is refused while it has an active device and is
//!   otherwise queued: the user stays visible as "Pending Deletion" until the daily job runs
//!   (`POST /_emulator/run-deletion-job`, or after [`EmulatorConfig::deletion_job_after`]).
//!   Deactivating keeps the user and withdraws what its groups distribute to it; reactivating
//!   restores it.
//! - Admin API under `/_emulator/`: `GET state`, `GET requests`, `GET violations`,
//!   `POST reset`, `GET|PUT faults`, `GET|PUT rate-limit`, `POST expire-tokens`, `GET routes`,
//!   `PUT routes/{name}`, `POST run-deletion-job`, `PUT users/{userIdentifier}/devices`.
//!
//! Routes that are inferred or emulator-only (user edit, deactivate, reactivate, delete,
//! per-user group changes, user-group create and delete) are labelled in `routes`.
//!
//! Modules: `config` (what an instance accepts and injects), `seed` (the starting directory),
//! `routes` (the paths served and request matching), `server` (the listener, the traffic
//! checks every request passes, the handle), `api` (the MaaS360 operations), `state` (users,
//! devices, groups, memberships, the deletion queue), `tokens`, `traffic` (faults, rate
//! limit, counts, violations), `wire` (request parameters and response formats), `xml`,
//! `admin` (`/_emulator/`), `shared` (the state one instance shares).

mod admin;
mod api;
mod config;
mod routes;
mod seed;
mod server;
mod shared;
mod state;
mod tokens;
mod traffic;
mod wire;
mod xml;

pub use config::{EmulatorConfig, Faults, Outage, RateLimitSettings, RetryAfterStyle};
pub use routes::{RouteError, ServedRoute, default_routes};
pub use seed::{Seed, SeedError, SeedGroup, SeedUser};
pub use server::{EmulatorHandle, serve, start};
pub use state::{
    DEVICE_GROUP_TYPES, Device, Distribution, GroupDump, PENDING_DELETION, StateDump,
    USER_GROUP_TYPE, UserDump,
};
pub use traffic::{IGNORED_RETRY_AFTER, Violation};
