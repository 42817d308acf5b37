use sea_orm::entity::prelude::*;

/// One row per MaaS360 write: what, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maas360_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub kind: String,
    pub resource_id: String,
    /// e.g. `add_user`, `add_user_to_groups`.
    pub action: String,
    /// The MaaS360 object acted on (username@domain or group name).
    pub target: String,
    /// `ok`, `retryable` or `permanent`.
    pub outcome: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
