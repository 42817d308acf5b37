//! sea-orm entities of the provisioner's tables (see `migration.rs`).

// The derives generate `pub` items; the module itself is private.
#![allow(unreachable_pub)]

pub mod group;
pub mod group_member;
pub mod maas360_audit;
pub mod scim_token;
pub mod sync_state;
pub mod tenant;
pub mod user;
