//! sea-orm entities of the directory-reader's tables (see `schema`).

// The derives generate `pub` items; the module itself is private.
#![allow(unreachable_pub)]

pub mod connection;
pub mod cursor;
pub mod pull_settings;
pub mod snapshot_group;
pub mod snapshot_member;
pub mod snapshot_user;
pub mod sync_state;
