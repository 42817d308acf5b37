use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub operation_id: String,
    /// name@domain, lower-cased, as MaaS360 holds the user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_key: String,
    pub maas360_user_id: String,
    /// JSON list of `plan::Received`.
    pub distributions: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
