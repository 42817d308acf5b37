//! A Microsoft Graph emulator: the Entra ID token endpoint and the Graph reads
//! `dirsync-graph` makes (docs/graph.md §8's checklist), served over real HTTP.
//!
//! - Token endpoint `POST /{tenant}/oauth2/v2.0/token`, client credentials only: the
//!   configured tenant (id or domain), client id and secret (form or Basic auth), or a client
//!   assertion signed by a registered certificate (RS256/`x5t` or PS256/`x5t#S256`, signature
//!   verified). Each refused part answers with Entra's error body and AADSTS code. Tokens are
//!   opaque, expire, carry the permissions granted when issued, and can all be expired.
//! - `GET /v1.0/organization`, `/users`, `/users/{id}`, `/groups`, `/groups/{id}`,
//!   `/groups/{id}/members`, `/groups/{id}/transitiveMembers` (cycle-safe): default property
//!   sets, `$select` (checked, echoed in `@odata.context`), `$top` 1–999 (else 400), default
//!   page 100, `@odata.type` on members, an opaque `$skiptoken` in a nextLink that repeats the
//!   query, `$count=true` honoured only with `ConsistencyLevel: eventual`.
//! - `GET /v1.0/users/delta`, `/groups/delta` (also `microsoft.graph.delta`): an initial round,
//!   `$deltatoken=latest`, later rounds from an append-only change log (token = position)
//!   with `@removed` (`changed` for soft delete, `deleted` for hard), `members@delta` with
//!   users and groups, large groups split across pages, empty pages with a nextLink, replays
//!   on demand (a deltaLink that points back); expired
//!   or unknown tokens answer 410 Gone + Location or 400 `syncStateNotFound`.
//! - `POST /v1.0/$batch`: at most 20 relative GETs, unique ids, `dependsOn` (424),
//!   per-item status, headers, throttling and counting, answers shuffled.
//! - Graph's error envelope with `innerError`, `request-id` and echoed `client-request-id`;
//!   401 for a missing, unknown or expired token, 403 `Authorization_RequestDenied` without
//!   the permission.
//! - Throttling: a probability and a "next N" switch, 429 (or 503/504) with Retry-After in
//!   seconds (fractional allowed) or as an HTTP date; a violation log of clients that came
//!   back before Retry-After ran out or rebuilt a nextLink/deltaLink instead of following it.
//! - Admin API under `/_emulator/` (see `admin`).
//!
//! The tenant comes from a [`GraphSeed`]: JSON with Graph's field names, or the Entra
//! simulator's `Directory::generate(users, groups, seed)` with optional nesting
//! ([`GraphSeed::generate`]), whose transitive memberships
//! [`GraphSeed::transitive_user_members`] computes independently.
//!
//! Not emulated: `$filter`, `$orderby`, `$search` and `$expand` on lists (501), `/$count`
//! segments, `manager`, writes through Graph itself, the resource-unit token bucket
//! (throttling is injected, not earned), `Prefer: return=minimal`, delta `$filter=id eq`,
//! out-of-order delta pages.

mod admin;
mod api;
mod assertion;
mod auth;
mod batch;
mod changelog;
mod config;
mod cursor;
mod delta;
mod objects;
mod seed;
mod server;
mod shared;
mod tenant;
mod tokens;
mod traffic;
mod wire;

pub use config::{CertificateError, DeltaExpiry, GraphEmulatorConfig, Throttle};
pub use seed::{GraphSeed, SeedError, SeedGroup, SeedUser};
pub use server::{GraphEmulatorHandle, serve, start};
pub use tenant::{AdminError, GraphStateDump};
pub use traffic::GraphViolation;
