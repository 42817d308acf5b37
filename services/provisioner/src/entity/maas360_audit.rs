use sea_orm::entity::prelude::*;

use super::ResourceKind;

/// One row per MaaS360 write: what, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maas360_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub kind: ResourceKind,
    pub resource_id: String,
    /// e.g. `add_user`, `add_user_to_groups`.
    pub action: String,
    /// The MaaS360 object acted on (username@domain or group name).
    pub target: String,
    /// `ok`, `retryable`, `permanent`, `already_exists` or `not_found`.
    pub outcome: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub at: i64,
    /// The worker that made the call, and when its attempt on the resource began.
    pub worker: Option<String>,
    pub attempt_started_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
