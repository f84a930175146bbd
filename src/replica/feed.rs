//! The change feed: the replica's changes (`change_data.rs`) as an
//! endless stream, one batch per commit, in commit order, from a start the
//! client chooses, then each commit as it is made.
//!
//! A commit of this process is read as soon as it is made (the store says
//! so); other processes' commits (a fleet sharing the store) are seen by
//! looking at the store every [`FEED_POLL_INTERVAL`].
//!
//! The feed reads the store only as far ahead of its client as its buffer
//! allows: a task reads the commits and hands their batches over, counting
//! the bytes handed over and not yet taken. A client that stops taking
//! them (or reads slower than the collector commits) lets that grow; past
//! the buffer the feed ends with [`ReplicaError::FellBehind`], which names
//! the version to resume after, and its task stops. The server's memory
//! for a feed is therefore its buffer, whatever the client does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::replica::error::ReplicaError;
use crate::replica::store::ReplicaStore;
use crate::task::AbortOnDrop;

/// How often a feed looks at the store for commits of other processes.
pub const FEED_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The most changes, in MiB, a feed holds for a client that does not take
/// them (`--changes-buffer-mib`).
pub const DEFAULT_FEED_BUFFER_MIB: usize = 64;

/// Where a feed starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedStart {
    /// With the next commit.
    Now,
    /// With the commit of this version (earlier ones are not sent).
    Version(u64),
    /// With the first commit made after this time (Unix microseconds).
    After(i64),
}

/// The changes of `store` from `start` on, one batch per commit that
/// changed rows, never ending by itself; at most `buffer_mib` MiB wait for
/// the client (see the module's doc). Dropping the stream stops its task.
pub fn change_feed(
    store: Arc<ReplicaStore>,
    start: FeedStart,
    buffer_mib: usize,
) -> BoxStream<'static, Result<RecordBatch, ReplicaError>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    let task = AbortOnDrop(tokio::spawn(produce(
        store,
        start,
        buffer_mib,
        sender,
        Arc::clone(&waiting),
    )));
    futures::stream::unfold(
        (receiver, waiting, task),
        |(mut receiver, waiting, task)| async move {
            let item = receiver.recv().await?;
            if let Ok(batch) = &item {
                waiting.fetch_sub(batch.get_array_memory_size(), Ordering::AcqRel);
            }
            Some((item, (receiver, waiting, task)))
        },
    )
    .boxed()
}

type Sender = mpsc::UnboundedSender<Result<RecordBatch, ReplicaError>>;

/// The feed's task: reads each commit from the start on and hands its
/// batch over, until the client is gone, falls behind, or a read fails
/// (the error is its last item).
async fn produce(
    store: Arc<ReplicaStore>,
    start: FeedStart,
    buffer_mib: usize,
    sender: Sender,
    waiting: Arc<AtomicUsize>,
) {
    let _reading = crate::obs::metrics::change_feed_reading();
    if let Err(error) = follow(&store, start, buffer_mib, &sender, &waiting).await {
        let _ = sender.send(Err(error));
    }
}

async fn follow(
    store: &ReplicaStore,
    start: FeedStart,
    buffer_mib: usize,
    sender: &Sender,
    waiting: &AtomicUsize,
) -> Result<(), ReplicaError> {
    let buffer = buffer_mib.saturating_mul(1024 * 1024);
    let mut commits = store.commits();
    let latest = latest_version(store).await?;
    let since = store.changes_since().await?;
    let mut next = match start {
        FeedStart::Now => latest + 1,
        FeedStart::Version(asked) if asked < since => {
            return Err(ReplicaError::ChangesNotKept { asked, since });
        }
        FeedStart::Version(asked) => asked,
        FeedStart::After(micros) => store.first_version_after(since, latest, micros).await?,
    };
    loop {
        let latest = latest_version(store).await?;
        while next <= latest {
            if let Some(batch) = store.changes_of(next).await? {
                let bytes = batch.get_array_memory_size();
                let before = waiting.fetch_add(bytes, Ordering::AcqRel);
                tracing::debug!(
                    version = next,
                    rows = batch.num_rows(),
                    bytes,
                    waiting = before,
                    "a commit's changes for a feed"
                );
                // One commit always fits, however large.
                if before > 0 && before + bytes > buffer {
                    return Err(ReplicaError::FellBehind {
                        buffer_mib,
                        resume_after: next - 1,
                    });
                }
                if sender.send(Ok(batch)).is_err() {
                    return Ok(());
                }
            }
            next += 1;
        }
        tokio::select! {
            changed = commits.changed() => {
                if changed.is_err() {
                    // The store is gone: only the poll is left.
                    tokio::time::sleep(FEED_POLL_INTERVAL).await;
                }
            }
            () = tokio::time::sleep(FEED_POLL_INTERVAL) => {}
            () = sender.closed() => return Ok(()),
        }
    }
}

async fn latest_version(store: &ReplicaStore) -> Result<u64, ReplicaError> {
    Ok(store.latest().await?.version().unwrap_or(0))
}
