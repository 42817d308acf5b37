//! A stand-in for Microsoft Entra ID's provisioning service, for driving a
//! SCIM 2.0 server the way Entra does.
//!
//! Two halves:
//! - [`Directory`]: a synthetic tenant, deterministic from a seed, with
//!   realistic churn ([`Directory::apply_changes`]) and the state a correct
//!   target must end up in ([`Directory::expected`]).
//! - [`Simulator`]: Entra's provisioning job. It keeps Entra's cache (source
//!   object id → target id, and what it last wrote) and runs initial and
//!   incremental cycles with Entra's request shapes and ordering: a matching
//!   query before every create, managers in a second round, groups created
//!   empty and filled by member PATCHes, disable by PATCH, DELETE only on hard
//!   delete, both PATCH dialects ([`PatchShape`]).
//!
//! Like Entra, a cycle never stops on one object's failure: it is recorded in
//! [`CycleReport::failures`] and the object stays dirty for the next cycle.
//! Only a rejected bearer token (HTTP 401) stops a cycle, as it quarantines
//! a real Entra job.
//!
//! What it is not: a SCIM server, a model of Entra's scoping rules or
//! attribute-mapping expressions, or a load generator with Entra's timing (a
//! cycle runs as fast as `requests_per_second` allows, not every 40 minutes).
//!
//! The facts behind the shapes are in `docs/entra-scim.md` (its §10 lists what
//! the simulator reproduces), cited in the code as `docs/entra-scim.md §n`.
//!
//! Modules:
//! - `directory`: [`Directory`], the synthetic tenant, its churn and
//!   [`Expected`]; deterministic from a seed through `rand`'s `StdRng`.
//! - `names`: the word lists names are drawn from.
//! - [`requests`]: every body and URL Entra sends, and the parsing of what it
//!   reads back, without I/O, so the wire shapes are testable (and reusable by
//!   server-side tests).
//! - `simulator`: [`Simulator`], the provisioning job: planning a cycle, its
//!   jobs, and the transport (pacing, `Retry-After`, the 401 stop).
//! - `error`: [`SimulatorError`].

mod directory;
mod error;
mod names;
pub mod requests;
mod simulator;

pub use directory::{
    Change, ChangeSummary, Directory, DirectoryGroup, DirectoryUser, Expected, ExpectedGroup,
    ExpectedUser,
};
pub use error::SimulatorError;
pub use requests::PatchShape;
pub use simulator::{CycleReport, Progress, Simulator, SimulatorConfig};
