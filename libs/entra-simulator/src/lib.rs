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
//! [`requests`] builds every body and URL without I/O, so the wire shapes are
//! testable (and reusable by server-side tests).
//!
//! The facts behind the shapes are in `docs/entra-scim.md`, cited in the code as
//! `docs/entra-scim.md §n`.

mod directory;
mod error;
mod names;
pub mod requests;
mod rng;
mod simulator;

pub use directory::{
    Change, ChangeSummary, Directory, DirectoryGroup, DirectoryUser, Expected, ExpectedGroup,
    ExpectedUser,
};
pub use error::SimulatorError;
pub use requests::PatchShape;
pub use simulator::{CycleReport, Progress, Simulator, SimulatorConfig};
