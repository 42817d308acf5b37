//! The provisioner's tables. Its migration history is its own
//! (`provisioner_migrations`), so it can share a database with other services.

#![allow(elided_lifetimes_in_paths)] // async_trait needs the elided form of SchemaManager

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_tenants::Migration),
            Box::new(m0002_identity::Migration),
            Box::new(m0003_reconcile::Migration),
            Box::new(m0004_reliability::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("provisioner_migrations").into_iden()
    }
}

mod m0001_tenants {
    use sea_orm_migration::prelude::*;

    pub(super) struct Migration;

    // Named explicitly: the derive names a migration after its file, and
    // every migration of a service lives in one file.
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
}

mod m0002_identity {
    use sea_orm_migration::prelude::*;

    pub(super) struct Migration;

    // Named explicitly: the derive names a migration after its file, and
    // every migration of a service lives in one file.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0002_identity"
        }
    }

    #[derive(DeriveIden)]
    enum Users {
        Table,
        TenantId,
        Id,
        UserName,
        UserNameKey,
        ExternalId,
        DisplayName,
        DisplayNameKey,
        EmailKey,
        Email,
        GivenName,
        FamilyName,
        Active,
        ScimJson,
        Version,
        CreatedAt,
        UpdatedAt,
    }

    #[derive(DeriveIden)]
    enum Groups {
        Table,
        TenantId,
        Id,
        DisplayName,
        DisplayNameKey,
        ExternalId,
        Version,
        CreatedAt,
        UpdatedAt,
    }

    #[derive(DeriveIden)]
    enum GroupMembers {
        Table,
        TenantId,
        GroupId,
        UserId,
    }

    #[derive(DeriveIden)]
    enum SyncState {
        Table,
        TenantId,
        Kind,
        ResourceId,
        DesiredSeq,
        AppliedSeq,
        Pending,
        Deleted,
        UpdatedAt,
    }

    fn index(name: &str, table: impl IntoIden, cols: &[&'static str]) -> IndexCreateStatement {
        let mut index = Index::create();
        index.name(name).table(table);
        for col in cols {
            index.col(Alias::new(*col));
        }
        index.to_owned()
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Users::Table)
                        .col(ColumnDef::new(Users::TenantId).string().not_null())
                        .col(ColumnDef::new(Users::Id).string().not_null())
                        .col(ColumnDef::new(Users::UserName).string().not_null())
                        .col(ColumnDef::new(Users::UserNameKey).string().not_null())
                        .col(ColumnDef::new(Users::ExternalId).string().null())
                        .col(ColumnDef::new(Users::DisplayName).string().null())
                        .col(ColumnDef::new(Users::DisplayNameKey).string().null())
                        .col(ColumnDef::new(Users::Email).string().null())
                        .col(ColumnDef::new(Users::EmailKey).string().null())
                        .col(ColumnDef::new(Users::GivenName).string().null())
                        .col(ColumnDef::new(Users::FamilyName).string().null())
                        .col(ColumnDef::new(Users::Active).boolean().not_null())
                        .col(ColumnDef::new(Users::ScimJson).text().not_null())
                        .col(ColumnDef::new(Users::Version).big_integer().not_null())
                        .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                        .col(ColumnDef::new(Users::UpdatedAt).big_integer().not_null())
                        .primary_key(Index::create().col(Users::TenantId).col(Users::Id))
                        .to_owned(),
                )
                .await?;
            // Entra's matching queries are equality lookups on these columns;
            // each has an index led by the tenant so a lookup stays O(log n).
            let mut unique_user_name = index(
                "users_user_name_key",
                Users::Table,
                &["tenant_id", "user_name_key"],
            );
            unique_user_name.unique();
            manager.create_index(unique_user_name).await?;
            manager
                .create_index(index(
                    "users_external_id",
                    Users::Table,
                    &["tenant_id", "external_id"],
                ))
                .await?;
            manager
                .create_index(index(
                    "users_display_name_key",
                    Users::Table,
                    &["tenant_id", "display_name_key"],
                ))
                .await?;
            manager
                .create_index(index(
                    "users_email_key",
                    Users::Table,
                    &["tenant_id", "email_key"],
                ))
                .await?;
            manager
                .create_index(index(
                    "users_created",
                    Users::Table,
                    &["tenant_id", "created_at", "id"],
                ))
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(Groups::Table)
                        .col(ColumnDef::new(Groups::TenantId).string().not_null())
                        .col(ColumnDef::new(Groups::Id).string().not_null())
                        .col(ColumnDef::new(Groups::DisplayName).string().not_null())
                        .col(ColumnDef::new(Groups::DisplayNameKey).string().not_null())
                        .col(ColumnDef::new(Groups::ExternalId).string().null())
                        .col(ColumnDef::new(Groups::Version).big_integer().not_null())
                        .col(ColumnDef::new(Groups::CreatedAt).big_integer().not_null())
                        .col(ColumnDef::new(Groups::UpdatedAt).big_integer().not_null())
                        .primary_key(Index::create().col(Groups::TenantId).col(Groups::Id))
                        .to_owned(),
                )
                .await?;
            let mut unique_group_name = index(
                "groups_display_name_key",
                Groups::Table,
                &["tenant_id", "display_name_key"],
            );
            unique_group_name.unique();
            manager.create_index(unique_group_name).await?;
            manager
                .create_index(index(
                    "groups_external_id",
                    Groups::Table,
                    &["tenant_id", "external_id"],
                ))
                .await?;
            manager
                .create_index(index(
                    "groups_created",
                    Groups::Table,
                    &["tenant_id", "created_at", "id"],
                ))
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(GroupMembers::Table)
                        .col(ColumnDef::new(GroupMembers::TenantId).string().not_null())
                        .col(ColumnDef::new(GroupMembers::GroupId).string().not_null())
                        .col(ColumnDef::new(GroupMembers::UserId).string().not_null())
                        .primary_key(
                            Index::create()
                                .col(GroupMembers::TenantId)
                                .col(GroupMembers::GroupId)
                                .col(GroupMembers::UserId),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(index(
                    "group_members_user",
                    GroupMembers::Table,
                    &["tenant_id", "user_id"],
                ))
                .await?;

            manager
                .create_table(
                    Table::create()
                        .table(SyncState::Table)
                        .col(ColumnDef::new(SyncState::TenantId).string().not_null())
                        .col(ColumnDef::new(SyncState::Kind).string().not_null())
                        .col(ColumnDef::new(SyncState::ResourceId).string().not_null())
                        .col(
                            ColumnDef::new(SyncState::DesiredSeq)
                                .big_integer()
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(SyncState::AppliedSeq)
                                .big_integer()
                                .not_null(),
                        )
                        .col(ColumnDef::new(SyncState::Pending).boolean().not_null())
                        .col(ColumnDef::new(SyncState::Deleted).boolean().not_null())
                        .col(
                            ColumnDef::new(SyncState::UpdatedAt)
                                .big_integer()
                                .not_null(),
                        )
                        .primary_key(
                            Index::create()
                                .col(SyncState::TenantId)
                                .col(SyncState::Kind)
                                .col(SyncState::ResourceId),
                        )
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(index(
                    "sync_state_pending",
                    SyncState::Table,
                    &["pending", "tenant_id"],
                ))
                .await
        }
    }
}

mod m0003_reconcile {
    use sea_orm_migration::prelude::*;

    pub(super) struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0003_reconcile"
        }
    }

    #[derive(DeriveIden)]
    enum SyncState {
        Table,
        LeaseOwner,
        LeaseUntil,
        Attempts,
        NextAttemptAt,
        LastError,
        Parked,
        ParkedAt,
        Maas360Id,
        AppliedJson,
    }

    #[derive(DeriveIden)]
    enum Maas360Audit {
        Table,
        Id,
        TenantId,
        Kind,
        ResourceId,
        Action,
        Target,
        Outcome,
        Detail,
        At,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            // SQLite adds one column per ALTER TABLE.
            let columns = [
                ColumnDef::new(SyncState::LeaseOwner)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(SyncState::LeaseUntil)
                    .big_integer()
                    .null()
                    .to_owned(),
                ColumnDef::new(SyncState::Attempts)
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
                ColumnDef::new(SyncState::NextAttemptAt)
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
                ColumnDef::new(SyncState::LastError)
                    .text()
                    .null()
                    .to_owned(),
                ColumnDef::new(SyncState::Parked)
                    .boolean()
                    .not_null()
                    .default(false)
                    .to_owned(),
                ColumnDef::new(SyncState::ParkedAt)
                    .big_integer()
                    .null()
                    .to_owned(),
                ColumnDef::new(SyncState::Maas360Id)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(SyncState::AppliedJson)
                    .text()
                    .null()
                    .to_owned(),
            ];
            for mut column in columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(SyncState::Table)
                            .add_column(&mut column)
                            .to_owned(),
                    )
                    .await?;
            }
            manager
                .create_index(
                    Index::create()
                        .name("sync_state_due")
                        .table(SyncState::Table)
                        .col(Alias::new("pending"))
                        .col(SyncState::Parked)
                        .col(SyncState::NextAttemptAt)
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(Maas360Audit::Table)
                        .col(
                            ColumnDef::new(Maas360Audit::Id)
                                .big_integer()
                                .not_null()
                                .auto_increment()
                                .primary_key(),
                        )
                        .col(ColumnDef::new(Maas360Audit::TenantId).string().not_null())
                        .col(ColumnDef::new(Maas360Audit::Kind).string().not_null())
                        .col(ColumnDef::new(Maas360Audit::ResourceId).string().not_null())
                        .col(ColumnDef::new(Maas360Audit::Action).string().not_null())
                        .col(ColumnDef::new(Maas360Audit::Target).string().not_null())
                        .col(ColumnDef::new(Maas360Audit::Outcome).string().not_null())
                        .col(ColumnDef::new(Maas360Audit::Detail).text().null())
                        .col(ColumnDef::new(Maas360Audit::At).big_integer().not_null())
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("maas360_audit_tenant_at")
                        .table(Maas360Audit::Table)
                        .col(Maas360Audit::TenantId)
                        .col(Maas360Audit::At)
                        .to_owned(),
                )
                .await
        }
    }
}

mod m0004_reliability {
    use sea_orm_migration::prelude::*;

    pub(super) struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m0004_reliability"
        }
    }

    #[derive(DeriveIden)]
    enum Maas360Audit {
        Table,
        TenantId,
        ResourceId,
        Worker,
        AttemptStartedAt,
        At,
    }

    #[derive(DeriveIden)]
    enum Maas360Health {
        Table,
        TenantId,
        Reachable,
        UnreachableSince,
        NextProbeAt,
        LastError,
        LastErrorAt,
        PausedUntil,
        UpdatedAt,
    }

    #[sea_orm_migration::async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            // Which attempt made each call, so that overlapping attempts on one resource (two
            // replicas writing it at once) would show.
            for mut column in [
                ColumnDef::new(Maas360Audit::Worker)
                    .string()
                    .null()
                    .to_owned(),
                ColumnDef::new(Maas360Audit::AttemptStartedAt)
                    .big_integer()
                    .null()
                    .to_owned(),
            ] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Maas360Audit::Table)
                            .add_column(&mut column)
                            .to_owned(),
                    )
                    .await?;
            }
            // `dirsync audit <tenant> --resource ID` reads one resource's history.
            manager
                .create_index(
                    Index::create()
                        .name("maas360_audit_resource")
                        .table(Maas360Audit::Table)
                        .col(Maas360Audit::TenantId)
                        .col(Maas360Audit::ResourceId)
                        .col(Maas360Audit::At)
                        .to_owned(),
                )
                .await?;
            // Retention prunes by time across tenants.
            manager
                .create_index(
                    Index::create()
                        .name("maas360_audit_at")
                        .table(Maas360Audit::Table)
                        .col(Maas360Audit::At)
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table(Maas360Health::Table)
                        .col(
                            ColumnDef::new(Maas360Health::TenantId)
                                .string()
                                .not_null()
                                .primary_key(),
                        )
                        .col(
                            ColumnDef::new(Maas360Health::Reachable)
                                .boolean()
                                .not_null(),
                        )
                        .col(
                            ColumnDef::new(Maas360Health::UnreachableSince)
                                .big_integer()
                                .null(),
                        )
                        .col(
                            ColumnDef::new(Maas360Health::NextProbeAt)
                                .big_integer()
                                .null(),
                        )
                        .col(ColumnDef::new(Maas360Health::LastError).text().null())
                        .col(
                            ColumnDef::new(Maas360Health::LastErrorAt)
                                .big_integer()
                                .null(),
                        )
                        .col(
                            ColumnDef::new(Maas360Health::PausedUntil)
                                .big_integer()
                                .null(),
                        )
                        .col(
                            ColumnDef::new(Maas360Health::UpdatedAt)
                                .big_integer()
                                .not_null(),
                        )
                        .to_owned(),
                )
                .await
        }
    }
}
