use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_sync_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub last_full_sync_at: Option<i64>,
    pub last_sync_at: Option<i64>,
    pub last_outcome: String,
    pub last_ok: bool,
    pub clean: bool,
    pub users: i64,
    pub groups: i64,
    pub generation: i64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
