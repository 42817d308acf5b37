//! The record of each tenant's MaaS360 reachability in the store, written when a breaker
//! changes state, so that `dirsync status` shows it whichever replica answers.

use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use super::breaker::Health;
use crate::entity::maas360_health;
use crate::error::Result;
use crate::store::{Store, now_ms};

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}

pub(crate) async fn record(store: &Store, tenant_id: &str, health: &Health) -> Result<()> {
    let row = maas360_health::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        reachable: Set(health.reachable),
        unreachable_since: Set(health.unreachable_since.map(unix_ms)),
        next_probe_at: Set(health.next_probe_at.map(unix_ms)),
        last_error: Set(health.last_error.as_ref().map(|(error, _)| error.clone())),
        last_error_at: Set(health.last_error.as_ref().map(|(_, at)| unix_ms(*at))),
        paused_until: Set(None),
        updated_at: Set(now_ms()),
    };
    let mut columns = vec![
        maas360_health::Column::Reachable,
        maas360_health::Column::UnreachableSince,
        maas360_health::Column::NextProbeAt,
        maas360_health::Column::UpdatedAt,
    ];
    // A process that has seen no failure yet keeps the last one an earlier process recorded.
    if health.last_error.is_some() {
        columns.extend([
            maas360_health::Column::LastError,
            maas360_health::Column::LastErrorAt,
        ]);
    }
    let write = store.write().await?;
    maas360_health::Entity::insert(row)
        .on_conflict(
            OnConflict::column(maas360_health::Column::TenantId)
                .update_columns(columns)
                .to_owned(),
        )
        .exec_without_returning(&write.txn)
        .await?;
    write.commit().await
}

pub(crate) async fn read(store: &Store, tenant_id: &str) -> Result<Option<maas360_health::Model>> {
    Ok(maas360_health::Entity::find_by_id(tenant_id.to_owned())
        .one(store.db())
        .await?)
}

/// Records that MaaS360 asked the tenant not to call before `until`.
pub(crate) async fn record_pause(store: &Store, tenant_id: &str, until: SystemTime) -> Result<()> {
    let until = unix_ms(until);
    let row = maas360_health::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        reachable: Set(true),
        unreachable_since: Set(None),
        next_probe_at: Set(None),
        last_error: Set(None),
        last_error_at: Set(None),
        paused_until: Set(Some(until)),
        updated_at: Set(now_ms()),
    };
    let write = store.write().await?;
    maas360_health::Entity::insert(row)
        .on_conflict(
            OnConflict::column(maas360_health::Column::TenantId)
                .update_columns([
                    maas360_health::Column::PausedUntil,
                    maas360_health::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&write.txn)
        .await?;
    write.commit().await
}

/// Tenants MaaS360 asked to pause, and until when (unix ms), for pauses not over yet.
pub(crate) async fn pauses(store: &Store) -> Result<Vec<(String, i64)>> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    Ok(maas360_health::Entity::find()
        .select_only()
        .column(maas360_health::Column::TenantId)
        .column(maas360_health::Column::PausedUntil)
        .filter(maas360_health::Column::PausedUntil.gt(now_ms()))
        .into_tuple::<(String, Option<i64>)>()
        .all(store.db())
        .await?
        .into_iter()
        .filter_map(|(tenant, until)| until.map(|until| (tenant, until)))
        .collect())
}
