use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub entra_tenant_id: String,
    pub client_id: String,
    /// `secret` or `certificate`.
    pub credential_kind: String,
    /// `env:NAME` or `file:PATH`: where the secret or PEM is read, never the secret.
    pub credential_ref: String,
    /// `global`, `gcc_high` or `custom`.
    pub cloud: String,
    pub login_url: String,
    pub graph_url: String,
    pub organization: String,
    pub checked_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
