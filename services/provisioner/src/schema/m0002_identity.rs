use sea_orm_migration::prelude::*;

pub(super) struct Migration;

// Named explicitly, so that moving the file never renames an applied migration.
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
