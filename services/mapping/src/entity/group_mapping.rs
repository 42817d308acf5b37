use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "group_mappings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub mapping_id: String,
    pub entra_group_id: String,
    pub entra_group_name: String,
    /// Always set; nullable only in the first version of the table.
    pub maas360_group_id: Option<String>,
    pub maas360_group_name: Option<String>,
    /// `adopt` or `copy`.
    pub mode: String,
    /// `proposed`, `confirmed`, `applying`, `applied`, `verified` or `failed`.
    pub state: String,
    pub prune: bool,
    pub target_group_id: String,
    pub target_group_name: String,
    pub operation_id: String,
    pub last_error: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
