//! Many callers' operations on the store as one: every operation waiting (up to a bound) goes
//! to [`Batched::together`], each caller still waits for its own and gets its own answer, and a
//! batch that fails as a whole is run again one operation at a time ([`Batched::alone`]), so one
//! bad operation never takes the others down with it. While every slot is busy, the operations
//! that arrive gather into the next batch.
//!
//! Writes use it as group commit: SQLite takes one writer at a time and every transaction costs
//! its hops to SQLite's thread and a commit that writes the pages it touched, so one transaction
//! per write bounds the store at a few hundred writes a second. On SQLite one batch is written at
//! a time; on PostgreSQL a commit waits for its log to reach the disk, and other batches of the
//! same kind are written meanwhile. Two overlapping batches that insert the same unique key make
//! one of them fail, and it is written again one write at a time as any failed batch is.
//! Entra's matching queries use it too (`user_lookups`): a pooled connection and a round trip
//! per batch instead of per lookup.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{ProvisionerError, Result};

/// How one kind of operation is run in batches.
pub(crate) trait Batched: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Output: Send + 'static;

    /// Runs `items` together (a write in one transaction), with an answer per item (a refusal
    /// of one item, such as a taken name, is its answer); an error fails the whole batch, which
    /// is then run again one item at a time.
    fn together(
        &self,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Result<Self::Output>>>> + Send;

    /// Runs one item on its own (a write in a transaction of its own).
    fn alone(&self, item: &Self::Item) -> impl Future<Output = Result<Self::Output>> + Send;
}

type Pending<W> = (
    <W as Batched>::Item,
    oneshot::Sender<Result<<W as Batched>::Output>>,
);

/// The handle callers submit through; the batching task stops when the last handle is dropped.
pub(crate) struct Batcher<W: Batched> {
    queue: mpsc::Sender<Pending<W>>,
    name: &'static str,
}

impl<W: Batched> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            name: self.name,
        }
    }
}

impl<W: Batched> std::fmt::Debug for Batcher<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<W: Batched> Batcher<W> {
    /// Starts the writer task. `max_batch` bounds the writes of one transaction; `queue_bound`
    /// the writes waiting, beyond which callers wait to enqueue; `in_flight` the batches written
    /// at once (1 on SQLite). `name` says which task stopped, should one ever stop.
    pub(crate) fn spawn(
        writer: W,
        name: &'static str,
        max_batch: usize,
        queue_bound: usize,
        in_flight: usize,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(queue_bound.max(1));
        let limits = Limits {
            max_batch: max_batch.max(1),
            in_flight: in_flight.max(1),
        };
        tokio::spawn(run(Arc::new(writer), receiver, limits, name));
        Self { queue, name }
    }

    /// Runs `item` with whatever else is waiting, and answers once it is done (for a write, durable).
    pub(crate) async fn submit(&self, item: W::Item) -> Result<W::Output> {
        let (reply, answer) = oneshot::channel();
        let gone = || ProvisionerError::Unavailable(format!("the {} stopped", self.name));
        self.queue.send((item, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_batch: usize,
    in_flight: usize,
}

async fn run<W: Batched>(
    writer: Arc<W>,
    mut receiver: mpsc::Receiver<Pending<W>>,
    limits: Limits,
    name: &'static str,
) {
    let slots = Arc::new(Semaphore::new(limits.in_flight));
    let mut batch = Vec::with_capacity(limits.max_batch);
    loop {
        // A slot first, then the writes: those that arrive while every slot is busy wait
        // together for the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if receiver.recv_many(&mut batch, limits.max_batch).await == 0 {
            return;
        }
        let pending = std::mem::replace(&mut batch, Vec::with_capacity(limits.max_batch));
        // A task per batch even when one runs at a time: run inline, the batch and the
        // gathering of the next shared one task, and SQLite's lookups went 15% slower
        // (`dirsync bench scim`, A/B of the two builds).
        let writer = writer.clone();
        tokio::spawn(async move {
            write_batch(writer.as_ref(), pending, name).await;
            drop(slot);
        });
    }
}

/// Writes one batch and answers each of its callers.
async fn write_batch<W: Batched>(writer: &W, batch: Vec<Pending<W>>, name: &'static str) {
    let (items, replies): (Vec<W::Item>, Vec<_>) = batch.into_iter().unzip();
    let results = match writer.together(&items).await {
        Ok(results) if results.len() == items.len() => results,
        Ok(results) => {
            // The batch writer broke its contract; rather than guess which answer is
            // whose, every write goes again alone (each is idempotent or refused as a
            // duplicate, so nothing is written twice).
            tracing::error!(
                task = name,
                writes = items.len(),
                answers = results.len(),
                "batch answered for the wrong number of items; running them one at a time"
            );
            write_each_alone(writer, &items).await
        }
        Err(error) => {
            tracing::debug!(%error, size = items.len(), task = name, "batch failed; running its items one at a time");
            write_each_alone(writer, &items).await
        }
    };
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that gave up (its request was cancelled) no longer listens; its write
        // stands, as a write whose answer was lost in transit would.
        let _ = reply.send(result);
    }
}

async fn write_each_alone<W: Batched>(writer: &W, items: &[W::Item]) -> Vec<Result<W::Output>> {
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        results.push(writer.alone(item).await);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the batches it is given; refuses odd items, fails any batch holding 13.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<u32>>>,
        alone: Mutex<Vec<u32>>,
    }

    impl Batched for Arc<Recorder> {
        type Item = u32;
        type Output = u32;

        async fn together(&self, items: &[u32]) -> Result<Vec<Result<u32>>> {
            // Give the other callers time to queue behind this batch.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if items.contains(&13) {
                return Err(ProvisionerError::Unavailable("batch refused".to_owned()));
            }
            self.batches.lock().expect("batches").push(items.to_vec());
            Ok(items.iter().map(|item| answer(*item)).collect())
        }

        async fn alone(&self, item: &u32) -> Result<u32> {
            self.alone.lock().expect("alone").push(*item);
            answer(*item)
        }
    }

    fn answer(item: u32) -> Result<u32> {
        if item % 2 == 1 {
            Err(ProvisionerError::invalid("item", format!("{item} is odd")))
        } else {
            Ok(item * 10)
        }
    }

    #[tokio::test]
    async fn waiting_writes_share_a_batch_and_each_caller_gets_its_own_answer() {
        let recorder = Arc::new(Recorder::default());
        let commit = Batcher::spawn(recorder.clone(), "test", 8, 64, 1);
        let mut calls = tokio::task::JoinSet::new();
        // From 20: no batch holds 13, the item that fails a whole batch.
        for item in 20..40u32 {
            let commit = commit.clone();
            calls.spawn(async move { (item, commit.submit(item).await) });
        }
        while let Some(joined) = calls.join_next().await {
            let (item, result) = joined.expect("caller");
            match (item % 2, result) {
                (0, Ok(output)) => assert_eq!(output, item * 10),
                (1, Err(error)) => assert!(error.to_string().contains("is odd"), "{error}"),
                (_, other) => panic!("item {item} answered {other:?}"),
            }
        }
        let batches = recorder.batches.lock().expect("batches").clone();
        assert!(batches.iter().all(|batch| batch.len() <= 8), "{batches:?}");
        assert!(
            batches.len() < 20,
            "twenty waiting writes took {} transactions",
            batches.len()
        );
        let mut written: Vec<u32> = batches.into_iter().flatten().collect();
        written.sort_unstable();
        assert_eq!(written, (20..40).collect::<Vec<_>>());
        assert!(recorder.alone.lock().expect("alone").is_empty());
    }

    #[tokio::test]
    async fn a_failed_batch_is_written_again_one_write_at_a_time() {
        let recorder = Arc::new(Recorder::default());
        let commit = Batcher::spawn(recorder.clone(), "test", 64, 64, 1);
        // Hold the writer with a first batch so the next three queue into one batch.
        let first = {
            let commit = commit.clone();
            tokio::spawn(async move { commit.submit(2).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let rest: Vec<_> = [12u32, 13, 14]
            .into_iter()
            .map(|item| {
                let commit = commit.clone();
                tokio::spawn(async move { commit.submit(item).await })
            })
            .collect();
        assert_eq!(first.await.expect("caller").expect("written"), 20);
        let mut answers = Vec::new();
        for call in rest {
            answers.push(
                call.await
                    .expect("caller")
                    .map_err(|error| error.to_string()),
            );
        }
        assert_eq!(answers[0], Ok(120));
        assert!(answers[1].as_ref().is_err_and(|e| e.contains("13 is odd")));
        assert_eq!(answers[2], Ok(140));
        let mut alone = recorder.alone.lock().expect("alone").clone();
        alone.sort_unstable();
        assert_eq!(alone, vec![12, 13, 14]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_overlap_up_to_the_limit_and_no_further() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        #[derive(Default)]
        struct Overlaps {
            now: AtomicUsize,
            most: AtomicUsize,
        }
        impl Batched for Arc<Overlaps> {
            type Item = u32;
            type Output = u32;
            async fn together(&self, items: &[u32]) -> Result<Vec<Result<u32>>> {
                let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                self.now.fetch_sub(1, Ordering::SeqCst);
                Ok(items.iter().map(|item| Ok(*item)).collect())
            }
            async fn alone(&self, item: &u32) -> Result<u32> {
                Ok(*item)
            }
        }
        for in_flight in [1, 3] {
            let overlaps = Arc::new(Overlaps::default());
            let commit = Batcher::spawn(overlaps.clone(), "test", 2, 64, in_flight);
            let mut calls = tokio::task::JoinSet::new();
            for item in 0..24u32 {
                let commit = commit.clone();
                calls.spawn(async move { (item, commit.submit(item).await) });
            }
            while let Some(joined) = calls.join_next().await {
                let (item, result) = joined.expect("caller");
                assert_eq!(result.expect("written"), item);
            }
            assert_eq!(overlaps.most.load(Ordering::SeqCst), in_flight);
        }
    }

    #[tokio::test]
    async fn a_stopped_writer_is_an_unavailable_error_naming_it() {
        struct Panics;
        impl Batched for Panics {
            type Item = ();
            type Output = ();
            async fn together(&self, _: &[()]) -> Result<Vec<Result<()>>> {
                panic!("writer task dies");
            }
            async fn alone(&self, (): &()) -> Result<()> {
                Ok(())
            }
        }
        let commit = Batcher::spawn(Panics, "doomed writer", 4, 4, 1);
        let error = commit.submit(()).await.expect_err("the writer died");
        assert!(matches!(error, ProvisionerError::Unavailable(_)));
        assert!(
            error.to_string().contains("doomed writer stopped"),
            "{error}"
        );
    }
}
