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
//! Beside a local store each version read from its files is also kept as
//! an IPC file, which the next start reads instead (`image_copy.rs`).

use std::sync::{Arc, Mutex, PoisonError};

use arrow::record_batch::RecordBatch;
use deltalake_core::DeltaTable;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::task::JoinHandle;

use crate::replica::delta_table::{reading_session, to_table_schema};
use crate::replica::error::ReplicaError;
use crate::replica::image_copy::{CopiedVersion, ImageCopy, VersionKey};
use crate::replica::parquet_files::{PlainRead, read_plain_version};

/// The read of the copy as the store opened (`None`: there is none).
type CopyRead = JoinHandle<Result<Option<CopiedVersion>, ReplicaError>>;

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
    /// The copy beside a local store; `None`: none is kept.
    copy: Option<Arc<ImageCopy>>,
    /// The copy's read, started as the store opened, until the first read
    /// of a version takes it.
    opened_copy: Mutex<Option<CopyRead>>,
    /// The last write of the copy this image started.
    copy_write: Mutex<Option<JoinHandle<()>>>,
}

impl ReplicaImage {
    /// An image of at most `max_rows` rows (zero: none is kept).
    pub fn new(max_rows: usize) -> ReplicaImage {
        ReplicaImage {
            max_rows,
            latest: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
            copy: None,
            opened_copy: Mutex::new(None),
            copy_write: Mutex::new(None),
        }
    }

    /// The image, keeping each version it reads from the files in `copy`
    /// too, and reading the copy now (on a blocking thread), for its
    /// first version.
    pub fn with_copy(self, copy: ImageCopy) -> ReplicaImage {
        let copy = Arc::new(copy);
        let reading = Arc::clone(&copy);
        let opened = tokio::task::spawn_blocking(move || reading.read());
        ReplicaImage {
            copy: Some(copy),
            opened_copy: Mutex::new(Some(opened)),
            ..self
        }
    }

    /// The image, of at most `max_rows` rows instead (zero: none, and no
    /// copy either).
    pub fn keeping(self, max_rows: usize) -> ReplicaImage {
        if max_rows == 0 {
            return ReplicaImage::new(0);
        }
        ReplicaImage { max_rows, ..self }
    }

    /// Waits for the copy's last write this image started, if any (tests:
    /// a write runs in the background, a restart uses it once it is done).
    pub async fn copy_written(&self) {
        let write = lock(&self.copy_write).take();
        if let Some(write) = write {
            let _ = write.await;
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
        let (batches, from_copy) = match self.opened_copy_of(table).await {
            Some(batches) => (Some(batches), true),
            None => (self.read(table).await?, false),
        };
        tracing::debug!(
            version,
            rows = batches
                .as_ref()
                .map(|b| b.iter().map(RecordBatch::num_rows).sum::<usize>()),
            from_copy,
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
        if let (false, Some(batches)) = (from_copy, &batches) {
            self.start_copy_write(table, batches);
        }
        *lock(&self.latest) = Some(Image {
            version,
            batches: batches.clone(),
        });
        Ok(batches)
    }

    /// The rows of `table`'s loaded version from the copy read as the store
    /// opened, if that is of this version (and it is the first version read).
    async fn opened_copy_of(&self, table: &DeltaTable) -> Option<Vec<RecordBatch>> {
        let opened = lock(&self.opened_copy).take()?;
        let copied = match opened.await {
            Ok(Ok(copied)) => copied?,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot use the replica's image copy: reading its files");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "the image copy's read stopped: reading the replica's files");
                return None;
            }
        };
        let key = match VersionKey::of(table) {
            Ok(key) => key?,
            Err(error) => {
                tracing::warn!(%error, "cannot tell the replica's version: reading its files");
                return None;
            }
        };
        let rows: usize = copied.batches.iter().map(RecordBatch::num_rows).sum();
        if copied.key != key || rows > self.max_rows {
            tracing::debug!(
                copy_version = copied.key.version(),
                version = key.version(),
                rows,
                "the image copy is of another version, or of more rows than memory may keep: reading the replica's files"
            );
            return None;
        }
        Some(
            copied
                .batches
                .into_iter()
                .filter(|b| b.num_rows() > 0)
                .collect(),
        )
    }

    /// Writes `batches`, `table`'s loaded version, to the copy (if one is
    /// kept) on a blocking thread: a failed write only costs the next
    /// start its files' read.
    fn start_copy_write(&self, table: &DeltaTable, batches: &Arc<Vec<RecordBatch>>) {
        let Some(copy) = &self.copy else {
            return;
        };
        let Ok(Some(key)) = VersionKey::of(table) else {
            return;
        };
        let (copy, batches) = (Arc::clone(copy), Arc::clone(batches));
        let write = tokio::task::spawn_blocking(move || {
            if let Err(error) = copy.write(&key, &batches) {
                tracing::warn!(%error, "cannot keep a copy of the replica's latest version: the next start reads its files");
            }
        });
        *lock(&self.copy_write) = Some(write);
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
        lock(&self.latest)
            .as_ref()
            .filter(|image| image.version == version)
            .map(|image| image.batches.clone())
    }
}

/// `mutex`'s value, also if a thread panicked holding it (each is only
/// ever replaced whole).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
