//! `dirsync-graph` against the Graph emulator of `dirsync-emulators`, over real sockets. One
//! test binary; one module per concern.

mod auth;
mod batch;
mod delta;
mod reads;
mod support;
mod throttling;
