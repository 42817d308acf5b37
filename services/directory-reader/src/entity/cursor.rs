use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_cursors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    /// `users` or `groups`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    pub delta_link: Option<String>,
    pub last_full_sync_at: Option<i64>,
    pub last_delta_sync_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
