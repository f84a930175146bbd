//! The replica's store: one Delta Lake table of the live table's 21 columns,
//! one row per job, in a local directory or on S3 (`location.rs`, `s3.rs`).
//!
//! Every change a collector makes is one Delta commit (a MERGE by `_key`):
//! the rows it fetched replace the rows of the same jobs or are added, the
//! jobs it found gone are removed, and its partition's watermark (the
//! newest creation time it has listed, in microseconds) is set as the
//! commit's application transaction (`txn` action, app id
//! `sagemaker-flight/<account>/<region>`). Rows and watermark therefore
//! land together or not at all: a collector killed at any point leaves the
//! last commit, and a partition without a watermark has never finished its
//! first full scan (so the next run makes one again; the MERGE keeps every
//! job once). A full scan commits in parts, the watermark with the last.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, new_null_array,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::Transaction;
use deltalake_core::kernel::transaction::CommitProperties;
use futures::TryStreamExt;
use tokio::sync::{Mutex, watch};

use crate::replica::change_data::{changes_of, changes_since, first_version_after, record_changes};
use crate::replica::delta_table::{app_version, open_or_create, to_table_schema};
use crate::replica::error::ReplicaError;
use crate::replica::file_layout::{ROW_GROUP_ROWS, writer_properties};
use crate::replica::history::{ChangeType, HistoryTable};
use crate::replica::image::ReplicaImage;
use crate::replica::image_copy::ImageCopy;
use crate::replica::log_head::{LatestTable, LocalLog};
use crate::replica::maintenance::{Maintenance, compact_and_vacuum};
use crate::replica::partition_rows::partition_predicate;
use crate::replica::s3::S3Access;
use crate::source::{DEFAULT_CACHE_MAX_JOBS, PartitionKey};
use crate::table::schema::{ALL_COLUMNS, Column, table_schema};
use crate::task::AbortOnDrop;

/// The prefix of every partition's application transaction id.
const APP_ID_PREFIX: &str = "sagemaker-flight/";
/// Appended to a partition's app id for the time of its last tags refresh.
const TAGS_REFRESH_SUFFIX: &str = "#tags-refresh";
/// Appended to a partition's app id for its last commit's sequence, the
/// one its history rows carry (`history.rs`).
const SEQUENCE_SUFFIX: &str = "#sequence";
/// The source column of a MERGE that marks a job to remove.
const GONE: &str = "_gone";

/// What the store knows of one job: enough to plan a refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownJob {
    /// `compilation_job_name`.
    pub name: String,
    /// `compilation_job_status`.
    pub status: String,
    /// `tags`, in their stored order.
    pub tags: Vec<(String, String)>,
    /// `last_modified_time`, in microseconds: it moves with every status
    /// change, and so with every change a Describe can show.
    pub last_modified: Option<i64>,
}

/// The Delta table: one handle for commits, one for reads, and the
/// latest version in memory.
#[derive(Debug)]
pub struct ReplicaStore {
    location: String,
    /// The table as last committed here, held through each commit so that
    /// this process's commits go one at a time; reloaded before each, so
    /// commits of other processes are seen.
    commits: Mutex<DeltaTable>,
    /// The table as last read here, reloaded before each read unless its
    /// local log shows it is still the latest (`log_head.rs`): a query or
    /// a refresh never waits for a commit (on S3 a MERGE takes seconds).
    reads: Mutex<LatestTable>,
    /// The latest version's rows, for queries and refreshes (`image.rs`).
    image: ReplicaImage,
    /// Every change of every commit (`history.rs`).
    history: HistoryTable,
    /// When this process last compacted and vacuumed the table.
    maintained: std::sync::Mutex<Option<std::time::Instant>>,
    /// The most rows a row group of its files has (`file_layout.rs`).
    row_group_rows: usize,
    /// The version of this process's last commit: the change feed hears
    /// of it at once, not at its next look at the store.
    committed: watch::Sender<u64>,
}

impl ReplicaStore {
    /// Opens the Delta table at `location` (see [`StoreLocation`](crate::replica::StoreLocation)) with the
    /// standard AWS configuration, creating it with the table's schema if
    /// there is none.
    pub async fn open(location: &str) -> Result<ReplicaStore, ReplicaError> {
        ReplicaStore::open_with(location, &S3Access::default()).await
    }

    /// Opens the Delta table at `location`: a local directory (made if
    /// missing) or an S3 prefix reached through `access`; creates it with
    /// the table's schema if there is none. Two servers creating one table
    /// at once both open it.
    pub async fn open_with(
        location: &str,
        access: &S3Access,
    ) -> Result<ReplicaStore, ReplicaError> {
        // The copy is read while the tables open: a restart's first query
        // waits for the slower of the two, not both.
        let image = match ImageCopy::beside(location) {
            Some(copy) => ReplicaImage::new(DEFAULT_CACHE_MAX_JOBS).with_copy(copy),
            None => ReplicaImage::new(DEFAULT_CACHE_MAX_JOBS),
        };
        // The history opens on a task of its own, so on the other worker:
        // polled in one task with the replica's open, the CPU each needs
        // (replaying its log) waited for the other's. A start with a
        // 10,000-job store listened after 18-19 ms instead of 20-25.
        let history = AbortOnDrop(tokio::spawn({
            let (location, access) = (location.to_owned(), access.clone());
            async move { HistoryTable::open_with(&location, &access).await }
        }));
        let log = LocalLog::before_open(location);
        let table = open_or_create(location, access, table_schema(), "the replica").await?;
        let table = record_changes(table).await?;
        let history = history.join().await??;
        let (committed, _) = watch::channel(table.version().unwrap_or(0));
        Ok(ReplicaStore {
            committed,
            location: location.to_owned(),
            commits: Mutex::new(table.clone()),
            reads: Mutex::new(LatestTable::new(table, log)),
            history,
            image,
            maintained: std::sync::Mutex::new(None),
            row_group_rows: ROW_GROUP_ROWS,
        })
    }

    /// The store, keeping a version of at most `max_rows` rows in memory
    /// (zero: none; every read reads the files) instead of
    /// [`DEFAULT_CACHE_MAX_JOBS`].
    pub fn keeping_in_memory(self, max_rows: usize) -> ReplicaStore {
        ReplicaStore {
            image: self.image.keeping(max_rows),
            ..self
        }
    }

    /// The store, writing its files in row groups of at most `rows` rows
    /// instead of [`ROW_GROUP_ROWS`] (a test's small table of several).
    pub fn with_row_groups_of(self, rows: usize) -> ReplicaStore {
        ReplicaStore {
            row_group_rows: rows,
            ..self
        }
    }

    /// Every row of the latest version, from memory (read now if memory
    /// holds an older one); `None` if it has more rows than memory may
    /// keep.
    pub async fn in_memory(&self) -> Result<Option<Arc<Vec<RecordBatch>>>, ReplicaError> {
        if !self.image.keeps_any() {
            return Ok(None);
        }
        let table = self.latest().await?;
        self.image.current(&table).await
    }

    /// Waits for the background write of the image's copy beside a local
    /// store, if one runs (`image_copy.rs`).
    pub async fn image_copy_written(&self) {
        self.image.copy_written().await;
    }

    /// The history of every commit (`history.rs`).
    pub fn history(&self) -> &HistoryTable {
        &self.history
    }

    /// Where the store is, as given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The table at its latest committed version.
    pub async fn latest(&self) -> Result<DeltaTable, ReplicaError> {
        Ok(self.reads.lock().await.latest().await?.clone())
    }

    /// The version of each commit this process makes, as it is made.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// The first version whose changes the store has (`change_data.rs`).
    pub async fn changes_since(&self) -> Result<u64, ReplicaError> {
        changes_since(&self.latest().await?).await
    }

    /// The changes of the commit of `version` (`None`: it changed no row).
    pub async fn changes_of(&self, version: u64) -> Result<Option<RecordBatch>, ReplicaError> {
        let table = self.reads.lock().await.loaded().clone();
        changes_of(&table, version).await
    }

    /// The first version to read for the changes made after `micros`
    /// (Unix microseconds), at least `since`, at most `latest + 1`.
    pub async fn first_version_after(
        &self,
        since: u64,
        latest: u64,
        micros: i64,
    ) -> Result<u64, ReplicaError> {
        let table = self.reads.lock().await.loaded().clone();
        first_version_after(&table, since, latest, micros).await
    }

    /// The newest creation time (microseconds) `partition`'s collector has
    /// committed; `None` if its first full scan never finished.
    pub async fn watermark(&self, partition: &PartitionKey) -> Result<Option<i64>, ReplicaError> {
        app_version(&self.latest().await?, &app_id(partition)).await
    }

    /// Every job of `partition` the store holds, by ARN.
    pub async fn jobs_of(
        &self,
        partition: &PartitionKey,
    ) -> Result<HashMap<String, KnownJob>, ReplicaError> {
        let frame = self.rows_of(partition).await?;
        let frame = frame.select_columns(&[
            Column::Key.name(),
            Column::CompilationJobName.name(),
            Column::CompilationJobStatus.name(),
            Column::Tags.name(),
            Column::LastModifiedTime.name(),
        ])?;
        let mut jobs = HashMap::new();
        let mut batches = frame.execute_stream().await?;
        while let Some(batch) = batches.try_next().await? {
            let (keys, names, statuses) = (text(&batch, 0)?, text(&batch, 1)?, text(&batch, 2)?);
            let tags = batch.column(3).as_map();
            let (tag_keys, tag_values) = (text_array(tags.keys())?, text_array(tags.values())?);
            let offsets = tags.value_offsets();
            let modified = arrow::compute::cast(
                batch.column(4),
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )?;
            let modified = modified.as_primitive::<TimestampMicrosecondType>();
            for row in 0..batch.num_rows() {
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                jobs.insert(
                    keys.value(row).to_owned(),
                    KnownJob {
                        name: names.value(row).to_owned(),
                        status: statuses.value(row).to_owned(),
                        tags: (start..end)
                            .map(|i| (tag_keys.value(i).to_owned(), tag_values.value(i).to_owned()))
                            .collect(),
                        last_modified: modified.is_valid(row).then(|| modified.value(row)),
                    },
                );
            }
        }
        Ok(jobs)
    }

    /// The latest rows of `partition`, to query: from memory if it holds
    /// them.
    async fn rows_of(&self, partition: &PartitionKey) -> Result<DataFrame, ReplicaError> {
        let context = SessionContext::new();
        let frame = match self.in_memory().await? {
            Some(batches) => context.read_table(Arc::new(MemTable::try_new(
                table_schema(),
                vec![batches.as_ref().clone()],
            )?))?,
            None => {
                let table = self.latest().await?;
                table.update_datafusion_session(&context.state())?;
                context.read_table(table.table_provider().await?)?
            }
        };
        Ok(match partition_predicate(partition) {
            Some(predicate) => frame.filter(predicate)?,
            None => frame,
        })
    }

    /// How many jobs of `partition` the store holds.
    pub async fn row_count(&self, partition: &PartitionKey) -> Result<usize, ReplicaError> {
        let frame = self.rows_of(partition).await?;
        Ok(frame.count().await?)
    }

    /// When `partition`'s tags were last all read (a full scan or a tags
    /// refresh, which lists every job too), in Unix seconds; `None`: never.
    /// Kept in the store, so that a restarted or `--once` collector knows
    /// whether one is due.
    pub async fn tags_refreshed_at(
        &self,
        partition: &PartitionKey,
    ) -> Result<Option<i64>, ReplicaError> {
        app_version(&self.latest().await?, &tags_app_id(partition)).await
    }

    /// Compacts the table's small files and deletes the files no version
    /// of the last `retention` needs (`maintenance.rs`), and the same for
    /// the history after removing its rows older than `history_retention`
    /// (`None`: none), if this process has not in the last `interval`;
    /// `None` if it was not due.
    pub async fn maintain_if_due(
        &self,
        interval: Duration,
        retention: Duration,
        history_retention: Option<Duration>,
    ) -> Result<Option<Maintenance>, ReplicaError> {
        {
            let mut last = self
                .maintained
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < interval) {
                return Ok(None);
            }
            // Set before the run: a failed one waits an interval too.
            *last = Some(std::time::Instant::now());
        }
        let kept_since = history_retention.map(|kept| {
            let kept = i64::try_from(kept.as_micros()).unwrap_or(i64::MAX);
            now_micros().saturating_sub(kept)
        });
        self.maintain(retention, kept_since).await.map(Some)
    }

    /// Compacts and vacuums the table now, between this process's commits,
    /// then the history, after removing its rows observed before
    /// `history_kept_since` (Unix microseconds; `None`: none).
    pub async fn maintain(
        &self,
        retention: Duration,
        history_kept_since: Option<i64>,
    ) -> Result<Maintenance, ReplicaError> {
        let mut report = {
            let mut table = self.commits.lock().await;
            table.update_incremental(None).await?;
            let (maintained, report) = compact_and_vacuum(
                table.clone(),
                retention,
                Some(writer_properties(self.row_group_rows)),
            )
            .await?;
            *table = maintained;
            report
        };
        // The counts are the replica's; the history's own are logged.
        let history = self.history.maintain(retention, history_kept_since).await?;
        tracing::debug!(
            files_compacted = history.files_compacted,
            files_written = history.files_written,
            files_deleted = history.files_deleted,
            "history compacted and vacuumed"
        );
        report.history_rows_removed = history.history_rows_removed;
        Ok(report)
    }

    /// One commit: `rows` (the table's 21 columns) replace the rows of the
    /// same jobs or are added, the jobs whose ARNs are in `gone` are
    /// removed, and `partition`'s watermark becomes `watermark` (`None`:
    /// it stays as it is; a full scan's commits but its last); with
    /// `tags_refreshed` (Unix seconds), its tags were all read then.
    ///
    /// Its changes go to the history first, each row `created` unless
    /// `known` (the partition's jobs before it, by ARN) holds the job, and
    /// every gone job `deleted` with its stored values: the two commits
    /// share the partition's next sequence (`history.rs`).
    pub async fn commit(
        &self,
        partition: &PartitionKey,
        rows: &RecordBatch,
        gone: &[String],
        known: &HashMap<String, KnownJob>,
        watermark: Option<i64>,
        tags_refreshed: Option<i64>,
    ) -> Result<(), ReplicaError> {
        let source = merge_source(rows, gone)?;
        let mut table = self.commits.lock().await;
        table.update_incremental(None).await?;
        let sequence = app_version(&table, &sequence_app_id(partition))
            .await?
            .unwrap_or(0);
        self.record_history(partition, sequence, rows, gone, known)
            .await?;
        let context = SessionContext::new();
        let frame = context.read_batch(source)?;
        let target = |name: &str| col(format!("target.{name}"));
        let source_column = |name: &str| col(format!("source.{name}"));
        let key = Column::Key.name();
        let (committed, _metrics) = table
            .clone()
            .merge(frame, target(key).eq(source_column(key)))
            .with_source_alias("source")
            .with_target_alias("target")
            .with_writer_properties(writer_properties(self.row_group_rows))
            .when_matched_delete(|delete| delete.predicate(source_column(GONE)))?
            .when_matched_update(|mut update| {
                for column in ALL_COLUMNS {
                    update = update.update(column.name(), source_column(column.name()));
                }
                update
            })?
            .when_not_matched_insert(|mut insert| {
                insert = insert.predicate(datafusion::logical_expr::not(source_column(GONE)));
                for column in ALL_COLUMNS {
                    insert = insert.set(column.name(), source_column(column.name()));
                }
                insert
            })?
            .with_commit_properties(
                CommitProperties::default().with_application_transactions(
                    watermark
                        .map(|watermark| Transaction::new(app_id(partition), watermark))
                        .into_iter()
                        .chain(
                            tags_refreshed.map(|at| Transaction::new(tags_app_id(partition), at)),
                        )
                        .chain([Transaction::new(sequence_app_id(partition), sequence + 1)])
                        .collect(),
                ),
            )
            .await?;
        if let Some(version) = committed.version() {
            self.committed.send_replace(version);
        }
        *table = committed;
        Ok(())
    }

    /// The history of the commit after `sequence`: what `rows` and `gone`
    /// change, appended as sequence `sequence + 1` once the rows a killed
    /// process appended for a commit after `sequence` are removed.
    async fn record_history(
        &self,
        partition: &PartitionKey,
        sequence: i64,
        rows: &RecordBatch,
        gone: &[String],
        known: &HashMap<String, KnownJob>,
    ) -> Result<(), ReplicaError> {
        if self
            .history
            .last_sequence(partition)
            .await?
            .is_some_and(|last| last > sequence)
        {
            self.history.discard_after(partition, sequence).await?;
        }
        let keys = text(rows, 0)?;
        let mut changes: Vec<ChangeType> = (0..rows.num_rows())
            .map(|row| match known.contains_key(keys.value(row)) {
                true => ChangeType::Updated,
                false => ChangeType::Created,
            })
            .collect();
        let mut batches = vec![rows.clone()];
        if !gone.is_empty() {
            let stored = self.rows_with_keys(partition, gone).await?;
            changes.extend(std::iter::repeat_n(ChangeType::Deleted, stored.num_rows()));
            batches.push(stored);
        }
        let changed = concat_batches(&table_schema(), &batches)?;
        if changed.num_rows() == 0 {
            return Ok(());
        }
        let observed = now_micros();
        self.history
            .append(partition, sequence + 1, &changed, &changes, observed)
            .await
    }

    /// The stored rows of `partition`'s jobs whose ARNs are `keys`, with
    /// the table's schema.
    async fn rows_with_keys(
        &self,
        partition: &PartitionKey,
        keys: &[String],
    ) -> Result<RecordBatch, ReplicaError> {
        let wanted =
            col(Column::Key.name()).in_list(keys.iter().map(|k| lit(k.as_str())).collect(), false);
        let batches = self
            .rows_of(partition)
            .await?
            .filter(wanted)?
            .collect()
            .await?;
        let conformed: Vec<RecordBatch> = batches
            .iter()
            .map(to_table_schema)
            .collect::<Result<_, _>>()?;
        Ok(concat_batches(&table_schema(), &conformed)?)
    }
}

/// Column `index` of `batch` as plain strings (the reader may hand back
/// string views).
fn text(batch: &RecordBatch, index: usize) -> Result<StringArray, ReplicaError> {
    text_array(batch.column(index))
}

fn text_array(array: &ArrayRef) -> Result<StringArray, ReplicaError> {
    Ok(arrow::compute::cast(array, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// Now, in Unix microseconds.
fn now_micros() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(i64::MAX)
}

/// The application transaction id of `partition`'s collector.
fn app_id(partition: &PartitionKey) -> String {
    format!("{APP_ID_PREFIX}{partition}")
}

/// The application transaction id of `partition`'s commit sequence.
fn sequence_app_id(partition: &PartitionKey) -> String {
    format!("{APP_ID_PREFIX}{partition}{SEQUENCE_SUFFIX}")
}

/// The application transaction id of `partition`'s last tags refresh.
fn tags_app_id(partition: &PartitionKey) -> String {
    format!("{APP_ID_PREFIX}{partition}{TAGS_REFRESH_SUFFIX}")
}

/// The MERGE's source: `rows` with `_gone = false`, then one row per ARN of
/// `gone` (only `_key` set) with `_gone = true`. Every column is nullable
/// there, for those rows.
fn merge_source(rows: &RecordBatch, gone: &[String]) -> Result<RecordBatch, ReplicaError> {
    let mut fields: Vec<Field> = table_schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(GONE, DataType::Boolean, false));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut kept: Vec<ArrayRef> = rows.columns().to_vec();
    kept.push(Arc::new(BooleanArray::from(vec![false; rows.num_rows()])));
    let kept = RecordBatch::try_new(Arc::clone(&schema), kept)?;
    let removed: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            if field.name() == Column::Key.name() {
                Arc::new(StringArray::from(gone.to_vec()))
            } else if field.name() == GONE {
                Arc::new(BooleanArray::from(vec![true; gone.len()]))
            } else {
                new_null_array(field.data_type(), gone.len())
            }
        })
        .collect();
    let removed = RecordBatch::try_new(Arc::clone(&schema), removed)?;
    Ok(concat_batches(&schema, [&kept, &removed])?)
}
