//! The `dirsync` binary as people and orchestrators use it: real child processes over real
//! sockets. One test binary (each extra one costs a link on a cold build), one module per
//! concern.

#![allow(clippy::unwrap_used, unreachable_pub)]

mod cli;
mod crash;
mod deploy;
mod migrate;
mod observability;
mod replicas;
mod support;
mod walkthrough;
