//! The Graph emulator over raw HTTP: what any client, not only `dirsync-graph`, sees on the
//! wire, and the admin API. One test binary; a module per concern.

mod admin;
mod api;
mod batch;
mod delta;
mod support;
mod token;
