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
