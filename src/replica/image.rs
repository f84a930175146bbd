//! The replica's latest version in memory: every row of the Delta table at
//! one version, in the live table's exact schema, read once per version.
//!
//! The replica changes once a refresh (a minute, by default) but is read
//! by every query, and by every refresh to plan its calls; decoding its Parquet files for each one would make a
//! read of the replica several times slower than a read of the live
//! table's snapshot (`table/snapshot.rs`). So a query that finds the
//! store at the version the image holds is answered from memory, and the
//! first query after a commit reads the new version (one at a time: the
//! others wait for it rather than read it too). A table of more rows than
//! the image may hold is not kept, and is read from the store per query.

use std::sync::{Arc, Mutex, PoisonError};

use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;

use crate::replica::error::ReplicaError;
use crate::replica::store::{ReplicaStore, all_rows};

/// The image of one version.
#[derive(Debug)]
struct Image {
    /// The Delta version it is of.
    version: u64,
    /// Its rows; `None`: the version has more rows than the image may hold.
    batches: Option<Arc<Vec<RecordBatch>>>,
}

/// The latest version's rows, kept for every reader of one store: queries,
/// and the refreshes that plan from what the store holds.
#[derive(Debug)]
pub struct ReplicaImage {
    max_rows: usize,
    latest: Mutex<Option<Image>>,
    /// Held while a version is read, so that it is read once.
    reading: tokio::sync::Mutex<()>,
}

impl ReplicaImage {
    /// An image of at most `max_rows` rows (zero: none is kept).
    pub fn new(max_rows: usize) -> ReplicaImage {
        ReplicaImage {
            max_rows,
            latest: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// Every row of `store`'s latest version, read now if the image holds
    /// an older one; `None` if it has more rows than the image may hold.
    pub async fn current(
        &self,
        store: &ReplicaStore,
    ) -> Result<Option<Arc<Vec<RecordBatch>>>, ReplicaError> {
        if self.max_rows == 0 {
            return Ok(None);
        }
        let table = store.latest().await?;
        let Some(version) = table.version() else {
            return Ok(None);
        };
        if let Some(batches) = self.at(version) {
            return Ok(batches);
        }
        let _reading = self.reading.lock().await;
        // Another query may have read it while this one waited.
        if let Some(batches) = self.at(version) {
            return Ok(batches);
        }
        let started = std::time::Instant::now();
        let mut rows = all_rows(&table).await?;
        let mut batches = Vec::new();
        let mut count = 0;
        let mut fits = true;
        while let Some(batch) = rows.try_next().await? {
            count += batch.num_rows();
            if count > self.max_rows {
                fits = false;
                break;
            }
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        tracing::debug!(
            version,
            rows = count,
            elapsed_ms = started.elapsed().as_millis(),
            "read the replica's latest version into memory"
        );
        if !fits {
            tracing::info!(
                version,
                max_rows = self.max_rows,
                "the replica has more rows than it may keep in memory (--cache-max-jobs): each query reads the store"
            );
        }
        let batches = fits.then(|| Arc::new(batches));
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Image {
            version,
            batches: batches.clone(),
        });
        Ok(batches)
    }

    /// The image's rows if it is of `version` (the outer `None`: it is not).
    fn at(&self, version: u64) -> Option<Option<Arc<Vec<RecordBatch>>>> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|image| image.version == version)
            .map(|image| image.batches.clone())
    }
}
