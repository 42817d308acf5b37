//! MaaS360's list of user groups, kept a few seconds for the first provisioning of groups.
//! MaaS360 has no search of groups by name (docs: `groups/customer` lists them all), and a
//! group's first provisioning must know whether one of its name, or one that looks like it and
//! carries distributions, is there already. Read per group, an initial sync of 10k groups read
//! 10k lists of up to 10k groups: quadratic, and against a real MaaS360 one call per group
//! spent on reading. The list is now read at most once per [`FRESH_FOR`] per tenant and
//! process (the workers of a tenant wait for one read rather than each making their own), and a
//! group this process creates is added to it.
//!
//! A kept list only ever decides "nothing like it is there: create". Whenever it shows a group
//! of the same name or a look-alike, the worker reads the list again before it adopts or parks
//! anything, so a stale list can neither adopt a group deleted since nor park a group for
//! distributions removed since. What it can miss is a group made in MaaS360 (by an admin or
//! another replica) within the last [`FRESH_FOR`]; the create then meets MaaS360's
//! "already exists", which reads the list afresh and links that group.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::backend::RemoteGroup;

/// How long a list read serves first-provisioning decisions.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(crate) struct GroupList {
    latest: Mutex<Option<Snapshot>>,
}

#[derive(Debug)]
struct Snapshot {
    read_at: Instant,
    groups: Arc<Vec<RemoteGroup>>,
}

/// The list held for one reader: others of the tenant wait until it is read or given up.
pub(crate) struct Reading<'a>(MutexGuard<'a, Option<Snapshot>>);

impl GroupList {
    /// The list if one was read within [`FRESH_FOR`]; otherwise the right to read it, which
    /// the other workers of the tenant wait on.
    pub(crate) async fn recent(&self) -> Result<Arc<Vec<RemoteGroup>>, Reading<'_>> {
        let latest = self.latest.lock().await;
        match latest.as_ref() {
            Some(snapshot) if snapshot.read_at.elapsed() < FRESH_FOR => Ok(snapshot.groups.clone()),
            _ => Err(Reading(latest)),
        }
    }

    /// A list just read from MaaS360, for the decisions that follow.
    pub(crate) async fn keep(&self, groups: Vec<RemoteGroup>) -> Arc<Vec<RemoteGroup>> {
        Reading(self.latest.lock().await).keep(groups)
    }

    /// A group this process just created.
    pub(crate) async fn add(&self, group: RemoteGroup) {
        if let Some(snapshot) = self.latest.lock().await.as_mut() {
            Arc::make_mut(&mut snapshot.groups).push(group);
        }
    }
}

impl Reading<'_> {
    pub(crate) fn keep(mut self, groups: Vec<RemoteGroup>) -> Arc<Vec<RemoteGroup>> {
        let groups = Arc::new(groups);
        *self.0 = Some(Snapshot {
            read_at: Instant::now(),
            groups: groups.clone(),
        });
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str) -> RemoteGroup {
        RemoteGroup {
            id: id.to_owned(),
            name: id.to_owned(),
            apps: 0,
            policies: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_list_serves_until_it_is_stale_and_includes_what_was_added() {
        let list = GroupList::default();
        let Err(reading) = list.recent().await else {
            panic!("nothing was read yet");
        };
        // Another worker waits for this read instead of making its own.
        let waiting = {
            let list = &list;
            async move { list.recent().await.map(|groups| groups.len()).ok() }
        };
        let kept = async {
            tokio::task::yield_now().await;
            reading.keep(vec![group("a")])
        };
        let (waited, kept) = tokio::join!(waiting, kept);
        assert_eq!(kept.len(), 1);
        assert_eq!(waited, Some(1), "the waiting worker got the read list");

        list.add(group("b")).await;
        let names: Vec<String> = list
            .recent()
            .await
            .ok()
            .expect("fresh")
            .iter()
            .map(|group| group.id.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);

        tokio::time::advance(FRESH_FOR).await;
        assert!(list.recent().await.is_err(), "a stale list is read again");
    }
}
