//! Emulators of the external systems dirsync talks to, for tests, the demo and benchmarks.
//!
//! Each emulator is a real HTTP server on a real socket, faithful to the wire shapes that
//! `docs/maas360.md` and `docs/graph.md` establish (each has a section on what its emulator
//! reproduces), with switchable fault injection so callers can be tested against throttling,
//! outages and lost responses. None of them is a general implementation of the service it
//! stands for: each serves what dirsync calls.
//!
//! Modules:
//! - [`graph`]: Microsoft Graph and the Entra ID token endpoint (users, groups, members,
//!   delta, `$batch`, throttling), seeded from the Entra simulator's directory.
//! - [`maas360`]: IBM MaaS360 web services (auth, users, groups, distributions).
//! - [`convergence`]: comparing an end state with an independently computed expectation.

pub mod convergence;
pub mod graph;
pub mod maas360;
