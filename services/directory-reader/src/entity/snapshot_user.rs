use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_snapshot_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub entra_id: String,
    /// The user's Graph properties as JSON (`snapshot::EntraUser`).
    pub data: String,
    pub applied_id: Option<String>,
    pub applied_name: Option<String>,
    /// `live`, `soft_deleted` or `gone`.
    pub state: String,
    pub state_since: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
