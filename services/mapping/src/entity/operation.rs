use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_operations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub operation_id: String,
    pub tenant_id: String,
    pub plan_id: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// The reviewed `MigrationPlan`, protobuf-encoded.
    pub plan: Vec<u8>,
    pub steps_total: i32,
    pub steps_done: i32,
    pub users_recorded: i32,
    pub last_error: String,
    /// The process carrying the operation out, until `lease_until` (unix ms).
    pub lease_owner: String,
    pub lease_until: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
