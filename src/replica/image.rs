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
use deltalake_core::DeltaTable;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::replica::delta_table::{reading_session, to_table_schema};
use crate::replica::error::ReplicaError;
use crate::replica::parquet_files::{PlainRead, read_plain_version};

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

    /// Whether it keeps any row (`max_rows` is not zero).
    pub fn keeps_any(&self) -> bool {
        self.max_rows > 0
    }

    /// Every row of `table` (the store's latest version), read now if the
    /// image holds another version; `None` if it has more rows than the
    /// image may hold (the caller asks only if it [keeps any](Self::keeps_any)).
    pub async fn current(
        &self,
        table: &DeltaTable,
    ) -> Result<Option<Arc<Vec<RecordBatch>>>, ReplicaError> {
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
        let batches = self.read(table).await?;
        tracing::debug!(
            version,
            rows = batches
                .as_ref()
                .map(|b| b.iter().map(RecordBatch::num_rows).sum::<usize>()),
            elapsed_ms = started.elapsed().as_millis(),
            "read the replica's latest version into memory"
        );
        if batches.is_none() {
            tracing::info!(
                version,
                max_rows = self.max_rows,
                "the replica has more rows than it may keep in memory (--cache-max-jobs): each query reads the store"
            );
        }
        let batches = batches.map(Arc::new);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Image {
            version,
            batches: batches.clone(),
        });
        Ok(batches)
    }

    /// Every non-empty batch of `table`, straight from its files if it is
    /// plain (`parquet_files.rs`), else (or if that read fails) through
    /// DataFusion's Delta scan; `None` if there are more rows than the
    /// image may hold.
    async fn read(&self, table: &DeltaTable) -> Result<Option<Vec<RecordBatch>>, ReplicaError> {
        let plain = read_plain_version(table, self.max_rows)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the replica's files directly: reading them through DataFusion");
                PlainRead::NotPlain
            });
        match plain {
            PlainRead::Rows(batches) => Ok(Some(
                batches.into_iter().filter(|b| b.num_rows() > 0).collect(),
            )),
            PlainRead::TooMany => Ok(None),
            PlainRead::NotPlain => self.read_through_datafusion(table).await,
        }
    }

    /// Every non-empty batch of `table` through DataFusion's Delta scan;
    /// `None` once there are more rows than the image may hold.
    async fn read_through_datafusion(
        &self,
        table: &DeltaTable,
    ) -> Result<Option<Vec<RecordBatch>>, ReplicaError> {
        let mut rows = all_rows(table).await?;
        let mut batches = Vec::new();
        let mut count = 0;
        while let Some(batch) = rows.try_next().await? {
            count += batch.num_rows();
            if count > self.max_rows {
                return Ok(None);
            }
            if batch.num_rows() > 0 {
                batches.push(batch);
            }
        }
        Ok(Some(batches))
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

/// Every row of `table`, in the live table's exact schema.
pub async fn all_rows(
    table: &DeltaTable,
) -> Result<BoxStream<'static, Result<RecordBatch, ReplicaError>>, ReplicaError> {
    let context = reading_session();
    table.update_datafusion_session(&context.state())?;
    let rows = context
        .read_table(table.table_provider().await?)?
        .execute_stream()
        .await?;
    Ok(rows
        .map_err(ReplicaError::from)
        .and_then(|batch| std::future::ready(to_table_schema(&batch)))
        .boxed())
}
