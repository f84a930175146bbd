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
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake_core::kernel::Transaction;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaTable, DeltaTableBuilder, ensure_table_uri};
use futures::TryStreamExt;
use tokio::sync::Mutex;
use url::Url;

use crate::replica::error::ReplicaError;
use crate::replica::image::ReplicaImage;
use crate::replica::location::StoreLocation;
use crate::replica::maintenance::{Maintenance, compact_and_vacuum};
use crate::replica::s3::{self, S3Access};
use crate::source::arn::ArnField;
use crate::source::{DEFAULT_CACHE_MAX_JOBS, PartitionKey};
use crate::table::schema::{ALL_COLUMNS, Column, table_schema};

/// The prefix of every partition's application transaction id.
const APP_ID_PREFIX: &str = "sagemaker-flight/";
/// Appended to a partition's app id for the time of its last tags refresh.
const TAGS_REFRESH_SUFFIX: &str = "#tags-refresh";
/// The folder of a Delta table's commits.
const DELTA_LOG: &str = "_delta_log";
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
    /// The table as last read here, reloaded before each read: a query or
    /// a refresh never waits for a commit (on S3 a MERGE takes seconds).
    reads: Mutex<DeltaTable>,
    /// The latest version's rows, for queries and refreshes (`image.rs`).
    image: ReplicaImage,
    /// When this process last compacted and vacuumed the table.
    maintained: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ReplicaStore {
    /// Opens the Delta table at `location` (see [`StoreLocation`]) with the
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
        let bad = |reason: String| ReplicaError::Location {
            location: location.to_owned(),
            reason,
        };
        let mut table = match StoreLocation::parse(location).map_err(bad)? {
            StoreLocation::Directory(directory) => {
                std::fs::create_dir_all(&directory).map_err(|e| bad(e.to_string()))?;
                let directory = directory.canonicalize().map_err(|e| bad(e.to_string()))?;
                let url = ensure_table_uri(directory.to_string_lossy())
                    .map_err(|e| bad(e.to_string()))?;
                let mut table = DeltaTableBuilder::from_url(url)?.build()?;
                // A directory without a log is a new table: loading it
                // would only fail (and log that it failed).
                if directory.join(DELTA_LOG).is_dir() {
                    table.load().await?;
                }
                table
            }
            StoreLocation::S3 { bucket, prefix } => {
                s3::register_log_store();
                let root =
                    Url::parse(&format!("s3://{bucket}/")).map_err(|e| bad(e.to_string()))?;
                let url = root
                    .join(&format!("{prefix}/"))
                    .map_err(|e| bad(e.to_string()))?;
                let store = s3::bucket_store(&bucket, access)
                    .await
                    .map_err(|e| bad(e.to_string()))?;
                let log = object_store::path::Path::from(format!("{prefix}/{DELTA_LOG}"));
                let has_log = store
                    .list(Some(&log))
                    .try_next()
                    .await
                    .map_err(|e| bad(e.to_string()))?
                    .is_some();
                let mut table = DeltaTableBuilder::from_url(url)?
                    .with_storage_backend(store, root)
                    .build()?;
                // As for a directory: a prefix without a log is a new table.
                if has_log {
                    table.load().await?;
                }
                table
            }
        };
        if table.version().is_none() {
            let created = table
                .clone()
                .write(vec![RecordBatch::new_empty(table_schema())])
                .with_save_mode(SaveMode::Append)
                .await;
            table = match created {
                Ok(created) => {
                    tracing::info!(location, "created the replica's Delta table");
                    created
                }
                // Another server created it first: open theirs.
                Err(error) => match table.load().await {
                    Ok(()) if table.version().is_some() => table,
                    _ => return Err(error.into()),
                },
            };
        }
        Ok(ReplicaStore {
            location: location.to_owned(),
            commits: Mutex::new(table.clone()),
            reads: Mutex::new(table),
            image: ReplicaImage::new(DEFAULT_CACHE_MAX_JOBS),
            maintained: std::sync::Mutex::new(None),
        })
    }

    /// The store, keeping a version of at most `max_rows` rows in memory
    /// (zero: none; every read reads the files) instead of
    /// [`DEFAULT_CACHE_MAX_JOBS`].
    pub fn keeping_in_memory(self, max_rows: usize) -> ReplicaStore {
        ReplicaStore {
            image: ReplicaImage::new(max_rows),
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

    /// Where the store is, as given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The table at its latest committed version.
    pub async fn latest(&self) -> Result<DeltaTable, ReplicaError> {
        let mut table = self.reads.lock().await;
        table.update_incremental(None).await?;
        Ok(table.clone())
    }

    /// The newest creation time (microseconds) `partition`'s collector has
    /// committed; `None` if its first full scan never finished.
    pub async fn watermark(&self, partition: &PartitionKey) -> Result<Option<i64>, ReplicaError> {
        let table = self.latest().await?;
        Ok(table
            .snapshot()?
            .transaction_version(table.log_store().as_ref(), &app_id(partition))
            .await?)
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
        let table = self.latest().await?;
        Ok(table
            .snapshot()?
            .transaction_version(table.log_store().as_ref(), &tags_app_id(partition))
            .await?)
    }

    /// Compacts the table's small files and deletes the files no version
    /// of the last `retention` needs (`maintenance.rs`), if this process
    /// has not in the last `interval`; `None` if it was not due.
    pub async fn maintain_if_due(
        &self,
        interval: Duration,
        retention: Duration,
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
        self.maintain(retention).await.map(Some)
    }

    /// Compacts and vacuums the table now, between this process's commits.
    pub async fn maintain(&self, retention: Duration) -> Result<Maintenance, ReplicaError> {
        let mut table = self.commits.lock().await;
        table.update_incremental(None).await?;
        let (maintained, report) = compact_and_vacuum(table.clone(), retention).await?;
        *table = maintained;
        Ok(report)
    }

    /// One commit: `rows` (the table's 21 columns) replace the rows of the
    /// same jobs or are added, the jobs whose ARNs are in `gone` are
    /// removed, and `partition`'s watermark becomes `watermark` (`None`:
    /// it stays as it is; a full scan's commits but its last); with
    /// `tags_refreshed` (Unix seconds), its tags were all read then.
    pub async fn commit(
        &self,
        partition: &PartitionKey,
        rows: &RecordBatch,
        gone: &[String],
        watermark: Option<i64>,
        tags_refreshed: Option<i64>,
    ) -> Result<(), ReplicaError> {
        let source = merge_source(rows, gone)?;
        let mut table = self.commits.lock().await;
        table.update_incremental(None).await?;
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
                        .collect(),
                ),
            )
            .await?;
        *table = committed;
        Ok(())
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

/// The application transaction id of `partition`'s collector.
fn app_id(partition: &PartitionKey) -> String {
    format!("{APP_ID_PREFIX}{partition}")
}

/// The application transaction id of `partition`'s last tags refresh.
fn tags_app_id(partition: &PartitionKey) -> String {
    format!("{APP_ID_PREFIX}{partition}{TAGS_REFRESH_SUFFIX}")
}

/// The rows of `partition`: its account, and its region in the ARN.
fn partition_predicate(partition: &PartitionKey) -> Option<Expr> {
    let account = partition
        .account_id
        .as_ref()
        .map(|account| col(Column::AccountId.name()).eq(lit(account.as_str())));
    let region = partition.region.as_ref().map(|region| {
        datafusion::functions::string::expr_fn::split_part(
            col(Column::CompilationJobArn.name()),
            lit(":"),
            lit(ArnField::Region.split_part()),
        )
        .eq(lit(region.as_str()))
    });
    [account, region].into_iter().flatten().reduce(Expr::and)
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
