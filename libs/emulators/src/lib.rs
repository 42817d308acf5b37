//! Emulators of the external systems dirsync talks to, for tests, the demo and benchmarks.
//!
//! Each emulator is a real HTTP server on a real socket, faithful to the wire shapes that the
//! research notes in `/work/shared/reference/` establish, with switchable fault injection so
//! callers can be tested against throttling, outages and lost responses.
//!
//! Modules:
//! - [`maas360`]: the MaaS360 web-services emulator, its configuration, seed and admin API.
//! - [`convergence`]: compares what the emulator holds with what a simulated Entra holds.

pub mod convergence;
pub mod maas360;
