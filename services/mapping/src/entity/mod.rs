//! sea-orm entities of the mapping service's tables (see `schema`).

// The derives generate `pub` items; the module itself is private.
#![allow(unreachable_pub)]

pub mod group_mapping;
pub mod operation;
pub mod record;
