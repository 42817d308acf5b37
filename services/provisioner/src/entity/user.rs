use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_name: String,
    /// Lower-cased userName: SCIM compares it case-insensitively.
    pub user_name_key: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub display_name_key: Option<String>,
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
    #[sea_orm(column_type = "Text")]
    pub scim_json: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
