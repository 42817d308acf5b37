use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    pub name: String,
    pub created_at: i64,
    pub deactivate_on_disable: bool,
    pub delete_on_delete: bool,
    pub username_mapping: String,
    pub maas360_base_url: Option<String>,
    pub maas360_billing_id: Option<String>,
    pub maas360_admin_user: Option<String>,
    pub maas360_app_id: Option<String>,
    pub maas360_app_version: Option<String>,
    pub maas360_platform_id: Option<String>,
    pub maas360_password_ref: Option<String>,
    pub maas360_app_access_key_ref: Option<String>,
    /// `push` (Entra's SCIM) or `pull` (Graph): who writes the desired state.
    pub mode: String,
    /// `deactivate` or `park`, when MaaS360 refuses to delete a user with an active device.
    pub active_device_policy: String,
    /// The tenant's overrides of MaaS360 routes, as a TOML routes file.
    #[sea_orm(column_type = "Text", nullable)]
    pub maas360_routes_toml: Option<String>,
    /// `park` or `import`: an unmapped Entra group that looks like a MaaS360 group carrying
    /// distributions.
    pub lookalike_group_policy: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
