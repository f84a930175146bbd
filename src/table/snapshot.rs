//! The table's snapshot: the record batches of the last complete, unfiltered
//! `SELECT *`, kept for `--snapshot-ttl` seconds. While it is fresh, every
//! query (any projection, filter or LIMIT: DataFusion filters the snapshot
//! again, as it does every scan's rows) is answered from memory with no
//! SageMaker call at all. This is for bursts of reads of the same data: a
//! dashboard's several queries, a client re-reading the table. It trades
//! freshness for speed, so it is off unless configured; the job cache
//! (`source/cache.rs`) is what keeps repeated scans cheap while still
//! listing.
//!
//! The snapshot is taken from a scan's own stream as it passes: nothing is
//! fetched or converted twice. A scan that fails, is cancelled, or has more
//! rows than the snapshot may hold leaves the previous snapshot in place
//! (which expires on its own).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::time::Instant;

/// Where the snapshot lives, shared by every query of one table.
#[derive(Debug)]
pub struct SnapshotStore {
    ttl: Duration,
    max_rows: usize,
    latest: Mutex<Option<Snapshot>>,
}

#[derive(Debug)]
struct Snapshot {
    /// When the scan that made it started: its rows are at least this fresh.
    started: Instant,
    batches: Arc<Vec<RecordBatch>>,
}

impl SnapshotStore {
    /// A store keeping a snapshot of at most `max_rows` rows for `ttl`; a
    /// zero `ttl` keeps none.
    pub fn new(ttl: Duration, max_rows: usize) -> Self {
        SnapshotStore {
            ttl,
            max_rows,
            latest: Mutex::new(None),
        }
    }

    /// Whether snapshots are kept at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The batches of the snapshot, if one is fresh (taken by a scan that
    /// started less than the TTL ago).
    pub fn fresh(&self) -> Option<Arc<Vec<RecordBatch>>> {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        match latest.as_ref() {
            Some(snapshot) if snapshot.started.elapsed() < self.ttl => {
                Some(Arc::clone(&snapshot.batches))
            }
            Some(_) => {
                // Expired: free its memory now rather than at the next scan's end.
                *latest = None;
                None
            }
            None => None,
        }
    }

    /// Passes `batches` (a complete, unfiltered scan of every column)
    /// through unchanged and, if the stream ends without error and within
    /// the row limit, keeps them as the new snapshot.
    pub fn record<E: Send + 'static>(
        self: &Arc<Self>,
        batches: BoxStream<'static, Result<RecordBatch, E>>,
    ) -> BoxStream<'static, Result<RecordBatch, E>> {
        if !self.enabled() {
            return batches;
        }
        let recording = Recording {
            store: Arc::clone(self),
            started: Instant::now(),
            batches: Some(Vec::new()),
            rows: 0,
        };
        stream::unfold(
            (batches, recording),
            |(mut batches, mut recording)| async move {
                match batches.next().await {
                    Some(Ok(batch)) => {
                        recording.add(&batch);
                        Some((Ok(batch), (batches, recording)))
                    }
                    Some(Err(error)) => {
                        recording.abandon();
                        Some((Err(error), (batches, recording)))
                    }
                    None => {
                        recording.keep();
                        None
                    }
                }
            },
        )
        .boxed()
    }
}

/// A snapshot being taken.
struct Recording {
    store: Arc<SnapshotStore>,
    started: Instant,
    /// `None` once abandoned (an error, or too many rows).
    batches: Option<Vec<RecordBatch>>,
    rows: usize,
}

impl Recording {
    fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows();
        if self.rows > self.store.max_rows {
            self.abandon();
        } else if let Some(batches) = &mut self.batches {
            // Cheap: a batch's columns are reference-counted.
            batches.push(batch.clone());
        }
    }

    fn abandon(&mut self) {
        self.batches = None;
    }

    fn keep(&mut self) {
        let Some(batches) = self.batches.take() else {
            return;
        };
        let mut latest = self
            .store
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Two scans may finish out of order: keep the one that started last.
        if latest.as_ref().is_none_or(|s| s.started <= self.started) {
            *latest = Some(Snapshot {
                started: self.started,
                batches: Arc::new(batches),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(rows: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int32Array::from_iter_values(0..rows))],
        )
        .expect("a valid batch")
    }

    async fn pass(
        store: &Arc<SnapshotStore>,
        items: Vec<Result<RecordBatch, String>>,
    ) -> Vec<Result<RecordBatch, String>> {
        store.record(stream::iter(items).boxed()).collect().await
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_scan_is_kept_until_the_ttl() {
        let store = Arc::new(SnapshotStore::new(Duration::from_secs(10), 100));
        assert!(store.fresh().is_none());
        let passed = pass(&store, vec![Ok(batch(3)), Ok(batch(4))]).await;
        assert_eq!(passed.len(), 2, "batches pass through unchanged");
        let kept = store.fresh().expect("a fresh snapshot");
        assert_eq!(kept.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.fresh().is_none(), "expired after the TTL");
    }

    #[tokio::test]
    async fn failed_oversized_or_unfinished_scans_are_not_kept() {
        let store = Arc::new(SnapshotStore::new(Duration::from_secs(10), 5));
        pass(&store, vec![Ok(batch(3)), Err("throttled".into())]).await;
        assert!(store.fresh().is_none(), "a failed scan");
        pass(&store, vec![Ok(batch(3)), Ok(batch(3))]).await;
        assert!(store.fresh().is_none(), "more rows than the limit");
        let mut stream = store.record(stream::iter(vec![Ok::<_, String>(batch(1)); 2]).boxed());
        assert!(stream.next().await.is_some());
        drop(stream);
        assert!(store.fresh().is_none(), "a scan dropped before its end");
        pass(&store, vec![Ok(batch(5))]).await;
        assert!(store.fresh().is_some(), "exactly the limit is kept");
    }

    #[tokio::test]
    async fn a_zero_ttl_keeps_nothing() {
        let store = Arc::new(SnapshotStore::new(Duration::ZERO, 100));
        pass(&store, vec![Ok(batch(3))]).await;
        assert!(store.fresh().is_none());
    }
}
