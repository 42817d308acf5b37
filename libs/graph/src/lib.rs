//! A Microsoft Graph client for reading an Entra ID directory app-only: the token
//! (client secret or certificate), users, groups, direct and transitive members, `$batch`ed
//! member reads, and delta rounds on users and groups with `members@delta`.
//!
//! It points at the real Microsoft endpoints by default ([`Cloud::Global`], or
//! [`Cloud::GccHigh`]) and at anything else, such as the Graph emulator in
//! `dirsync-emulators`, through [`Cloud::Custom`].
//!
//! What it is not: it writes nothing to the directory, stores nothing (a round's deltaLink is
//! returned, and keeping it is the caller's job), and implements no advanced queries
//! (`$filter`, `$search`, `$count`). It never builds a paging link: nextLinks and deltaLinks
//! are followed exactly as Graph sent them, and only under the configured Graph host.
//!
//! Throttling and transient failures (429, 500, 502, 503, 504, timeouts) are retried a bounded
//! number of times, after `Retry-After` (seconds or an HTTP date) when Graph sends one and a
//! jittered backoff otherwise, and a Retry-After holds back every request of the client.
//! Every exchange has a timeout, and a semaphore bounds those in flight. What still fails is
//! classified in [`GraphError`]: the refused part of the setup ([`AuthPart`]), throttled,
//! transient, delta expired (run a full resync), not found, permanent. Secrets, tokens and
//! assertions never appear in `Debug`, logs or errors.
//!
//! Facts are cited from `docs/graph.md` as `docs/graph.md §n`.
//!
//! Modules:
//! - `cloud`: [`Cloud`] and the token, API and scope URLs derived from it.
//! - `credentials`: [`Credentials`], [`ClientCredential`], [`Certificate`] (PEM in, `x5t` out).
//! - `assertion`: the RS256 client assertion a certificate credential signs.
//! - `token`: the token cache: early renewal, one request in flight, renewal after a 401.
//! - `aadsts`: which part of the setup an AADSTS code refuses.
//! - `transport`: one HTTP exchange: concurrency permit, timeout, body cap, call counts.
//! - `retry`: bounded retries on 429/5xx/network failures, Retry-After and backoff.
//! - `classify`: Graph error envelopes and token errors into [`GraphError`].
//! - `error`: [`GraphError`] and [`AuthPart`].
//! - `options`: [`ClientOptions`].
//! - `model`: [`User`], [`Group`], [`Member`], [`Organization`] and the default `$select`s.
//! - `paging`: a collection page and its links.
//! - `delta`: [`DeltaStart`], [`DeltaRound`], [`UserChange`], [`GroupChange`], and merging a
//!   round's pages.
//! - `batch`: member reads of many groups through `$batch`.
//! - `client`: [`GraphClient`].

mod aadsts;
mod assertion;
mod batch;
mod classify;
mod client;
mod cloud;
mod credentials;
mod delta;
mod error;
mod model;
mod options;
mod paging;
mod retry;
mod token;
mod transport;

pub use batch::{GroupMembers, MAX_BATCH_REQUESTS};
pub use client::{GraphClient, Membership};
pub use cloud::Cloud;
pub use credentials::{Certificate, ClientCredential, Credentials};
pub use delta::{DeltaRound, DeltaStart, GroupChange, GroupDelta, RemovalReason, UserChange};
/// The one secret type of dirsync: `Debug` and `Display` print `***`.
pub use dirsync_http::Secret;
pub use error::{AuthPart, GraphError};
pub use model::{
    GROUP_FIELDS, Group, MEMBER_FIELDS, Member, MemberKind, Organization, USER_FIELDS, User,
    VerifiedDomain,
};
pub use options::{ClientOptions, MAX_PAGE_SIZE};
