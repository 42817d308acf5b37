use sea_orm::entity::prelude::*;

use super::ResourceKind;

/// One row per resource that MaaS360 must reflect: the change sequence Entra
/// last asked for against the one MaaS360 last confirmed. `pending` is the
/// queue the reconcile workers drain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: ResourceKind,
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource_id: String,
    pub desired_seq: i64,
    pub applied_seq: i64,
    pub pending: bool,
    /// Entra deleted the resource; MaaS360 should follow per tenant policy.
    pub deleted: bool,
    pub updated_at: i64,
    /// The worker holding the resource, until `lease_until` (unix ms).
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// Failed attempts since the last success.
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub parked: bool,
    pub parked_at: Option<i64>,
    /// MaaS360's identifier (userIdentifier or groupIdentifier).
    pub maas360_id: Option<String>,
    /// What MaaS360 last confirmed, as JSON (`reconcile::worker::AppliedUser` or
    /// `AppliedGroup`).
    #[sea_orm(column_type = "Text", nullable)]
    pub applied_json: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
