//! One run per tenant at a time, across this process and every replica: a lease in the
//! tenant's sync-state row, taken with a conditional UPDATE, renewed while the run goes on, and
//! released at its end. A holder that dies stops renewing, and its lease runs out.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::Result;
use crate::store::Store;
use crate::time::now_ms;

/// A lease lasts this long without renewal.
const TTL: Duration = Duration::from_secs(60);
/// The holder renews this often.
const RENEW_EVERY: Duration = Duration::from_secs(15);
/// A waiting caller tries again this often.
const POLL: Duration = Duration::from_millis(200);

fn until(now: i64) -> i64 {
    now + i64::try_from(TTL.as_millis()).unwrap_or(60_000)
}

pub(crate) struct Lease {
    store: Store,
    tenant_id: String,
    owner: String,
    renewer: JoinHandle<()>,
}

impl Lease {
    /// The lease, if no one else holds it.
    pub(crate) async fn try_acquire(store: &Store, tenant_id: &str) -> Result<Option<Self>> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let now = now_ms();
        if !store.try_lease(tenant_id, &owner, now, until(now)).await? {
            return Ok(None);
        }
        let renewer = {
            let store = store.clone();
            let tenant_id = tenant_id.to_owned();
            let owner = owner.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Err(error) = store.renew_lease(&tenant_id, &owner, until(now_ms())).await
                    {
                        tracing::warn!(%error, tenant = %tenant_id, "cannot renew the sync lease");
                    }
                }
            })
        };
        Ok(Some(Self {
            store: store.clone(),
            tenant_id: tenant_id.to_owned(),
            owner,
            renewer,
        }))
    }

    /// The lease, once the run that holds it ends (the caller's deadline bounds the wait).
    pub(crate) async fn acquire(store: &Store, tenant_id: &str) -> Result<Self> {
        loop {
            if let Some(lease) = Self::try_acquire(store, tenant_id).await? {
                return Ok(lease);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(crate) async fn release(self) {
        self.renewer.abort();
        if let Err(error) = self.store.release_lease(&self.tenant_id, &self.owner).await {
            tracing::warn!(%error, tenant = %self.tenant_id, "cannot release the sync lease; it runs out by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Released or not, nothing renews a dropped lease.
        self.renewer.abort();
    }
}
