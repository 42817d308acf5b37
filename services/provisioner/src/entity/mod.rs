//! sea-orm entities of the provisioner's tables (see `migration.rs`).

// The derives generate `pub` items; the module itself is private.
#![allow(unreachable_pub)]

pub mod group;
pub mod group_member;
pub mod maas360_audit;
pub mod maas360_health;
pub mod scim_token;
pub mod sync_state;
pub mod tenant;
pub mod user;

use sea_orm::entity::prelude::*;

/// The kinds of resource the work queue and the audit track. Stored as `user` and `group`, so
/// that ordering by kind puts groups first (users join them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ResourceKind {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "group")]
    Group,
}
