use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_tenants"
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    TenantId,
    Name,
    CreatedAt,
    DeactivateOnDisable,
    DeleteOnDelete,
    UsernameMapping,
    Maas360BaseUrl,
    Maas360BillingId,
    Maas360AdminUser,
    Maas360AppId,
    Maas360AppVersion,
    Maas360PlatformId,
    Maas360PasswordRef,
    Maas360AppAccessKeyRef,
}

#[derive(DeriveIden)]
enum ScimTokens {
    Table,
    TokenHash,
    TenantId,
    CreatedAt,
    RevokedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(
                        ColumnDef::new(Tenants::TenantId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Tenants::Name)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Tenants::CreatedAt).big_integer().not_null())
                    .col(
                        ColumnDef::new(Tenants::DeactivateOnDisable)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Tenants::DeleteOnDelete).boolean().not_null())
                    .col(ColumnDef::new(Tenants::UsernameMapping).string().not_null())
                    .col(ColumnDef::new(Tenants::Maas360BaseUrl).string().null())
                    .col(ColumnDef::new(Tenants::Maas360BillingId).string().null())
                    .col(ColumnDef::new(Tenants::Maas360AdminUser).string().null())
                    .col(ColumnDef::new(Tenants::Maas360AppId).string().null())
                    .col(ColumnDef::new(Tenants::Maas360AppVersion).string().null())
                    .col(ColumnDef::new(Tenants::Maas360PlatformId).string().null())
                    .col(ColumnDef::new(Tenants::Maas360PasswordRef).string().null())
                    .col(
                        ColumnDef::new(Tenants::Maas360AppAccessKeyRef)
                            .string()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScimTokens::Table)
                    .col(
                        ColumnDef::new(ScimTokens::TokenHash)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ScimTokens::TenantId).string().not_null())
                    .col(
                        ColumnDef::new(ScimTokens::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ScimTokens::RevokedAt).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(ScimTokens::Table, ScimTokens::TenantId)
                            .to(Tenants::Table, Tenants::TenantId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scim_tokens_tenant")
                    .table(ScimTokens::Table)
                    .col(ScimTokens::TenantId)
                    .to_owned(),
            )
            .await
    }
}
