use sea_orm::entity::prelude::*;

/// Whether a tenant's MaaS360 answers, as the reconcile workers last saw it: written when a
/// tenant's circuit breaker opens, probes or closes, so that any replica can show it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maas360_health")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub reachable: bool,
    /// Unix ms; set while unreachable.
    pub unreachable_since: Option<i64>,
    pub next_probe_at: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Unix ms until which MaaS360 asked the tenant not to call (a 429's Retry-After), so a
    /// process started meanwhile waits too.
    pub paused_until: Option<i64>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
