//! The history: one row per observed version of a job, in a Delta table of
//! its own beside the replica's (`<store>/_history`: a folder Delta readers
//! and VACUUM of the replica's table leave alone), which other engines read
//! as they read the replica.
//!
//! A row is the job's 21 columns as the collector saw them, when it saw
//! them (`observed_time`), what kind of change it was (`change_type`:
//! `created`, `updated`, `deleted`; a deleted job's row holds its last
//! stored values) and the partition's commit it came with
//! (`change_sequence`, 1, 2, ... per partition).
//!
//! Two Delta tables cannot share a commit, so the two are kept in step by
//! that sequence: a collector's commit appends its history rows first,
//! marked with the next sequence (the history's application transaction
//! for the partition), then commits the replica's rows with the same
//! sequence. A process killed between the two leaves history rows of a
//! sequence the replica never got: the next commit of the partition
//! deletes them before it appends its own. So the history holds, exactly
//! once, every change of every committed replica version.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{col, lit};
use deltalake_core::DeltaTable;
use deltalake_core::kernel::Transaction;
use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::protocol::SaveMode;
use tokio::sync::Mutex;

use crate::replica::delta_table::{app_version, open_or_create};
use crate::replica::error::ReplicaError;
use crate::replica::log_head::{LatestTable, LocalLog};
use crate::replica::maintenance::{Maintenance, compact_and_vacuum};
use crate::replica::partition_rows::partition_predicate;
use crate::replica::s3::S3Access;
use crate::source::PartitionKey;
use crate::table::schema::{table_schema, timestamp_type};

/// The history's folder inside the store.
pub const HISTORY_FOLDER: &str = "_history";
/// The prefix of every partition's application transaction id in the
/// history table.
const HISTORY_APP_ID_PREFIX: &str = "sagemaker-flight-history/";
/// When the collector saw this version (its commit's time).
pub const OBSERVED_TIME: &str = "observed_time";
/// `created`, `updated` or `deleted`.
pub const CHANGE_TYPE: &str = "change_type";
/// The partition's commit this row came with.
pub const CHANGE_SEQUENCE: &str = "change_sequence";

/// What kind of change a history row records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// A job the replica did not hold (its first full scan included).
    Created,
    /// A job whose stored row changed (status, times, tags, ...).
    Updated,
    /// A job SageMaker no longer has.
    Deleted,
}

impl ChangeType {
    /// The `change_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }
}

/// The history's schema: the table's 21 columns, then [`OBSERVED_TIME`],
/// [`CHANGE_TYPE`] and [`CHANGE_SEQUENCE`].
pub fn history_schema() -> SchemaRef {
    let mut fields: Vec<Field> = table_schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(Field::new(OBSERVED_TIME, timestamp_type(), false));
    fields.push(Field::new(CHANGE_TYPE, DataType::Utf8, false));
    fields.push(Field::new(CHANGE_SEQUENCE, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Where the history of the store at `store_location` is.
pub fn history_location(store_location: &str) -> String {
    format!("{}/{HISTORY_FOLDER}", store_location.trim_end_matches('/'))
}

/// The history's Delta table.
#[derive(Debug)]
pub struct HistoryTable {
    /// Held through each write, so that this process's go one at a time;
    /// reloaded before each, so other processes' writes are seen.
    table: Mutex<DeltaTable>,
    /// The table as last read here, reloaded before each read unless its
    /// local log shows it is still the latest (`log_head.rs`): a query
    /// never waits for a write (on S3 a commit takes seconds).
    reads: Mutex<LatestTable>,
}

impl HistoryTable {
    /// Opens (or creates) the history of the store at `store_location`.
    pub async fn open_with(
        store_location: &str,
        access: &S3Access,
    ) -> Result<HistoryTable, ReplicaError> {
        let location = history_location(store_location);
        let log = LocalLog::before_open(&location);
        let table = open_or_create(&location, access, history_schema(), "the history").await?;
        Ok(HistoryTable {
            table: Mutex::new(table.clone()),
            reads: Mutex::new(LatestTable::new(table, log)),
        })
    }

    /// The table at its latest version.
    pub async fn latest(&self) -> Result<DeltaTable, ReplicaError> {
        Ok(self.reads.lock().await.latest().await?.clone())
    }

    /// The last sequence `partition` appended rows with; `None`: never.
    pub async fn last_sequence(
        &self,
        partition: &PartitionKey,
    ) -> Result<Option<i64>, ReplicaError> {
        app_version(&self.latest().await?, &app_id(partition)).await
    }

    /// Deletes `partition`'s rows of sequences after `sequence` (appended
    /// for replica commits that did not land), and sets its last sequence
    /// back to `sequence`.
    pub async fn discard_after(
        &self,
        partition: &PartitionKey,
        sequence: i64,
    ) -> Result<(), ReplicaError> {
        let mut table = self.table.lock().await;
        table.update_incremental(None).await?;
        let later = col(CHANGE_SEQUENCE).gt(lit(sequence));
        let predicate = match partition_predicate(partition) {
            Some(partition) => partition.and(later),
            None => later,
        };
        let (deleted, metrics) = table
            .clone()
            .delete()
            .with_predicate(predicate)
            .with_commit_properties(marked(partition, sequence))
            .await?;
        tracing::info!(
            %partition,
            sequence,
            rows = metrics.num_deleted_rows,
            "removed history rows of a commit the replica did not get"
        );
        *table = deleted;
        Ok(())
    }

    /// Removes the rows observed before `kept_since` (Unix microseconds;
    /// `None`: none), then compacts the table and deletes the files no
    /// version of the last `retention` needs (`maintenance.rs`).
    pub async fn maintain(
        &self,
        retention: std::time::Duration,
        kept_since: Option<i64>,
    ) -> Result<Maintenance, ReplicaError> {
        let mut table = self.table.lock().await;
        table.update_incremental(None).await?;
        let mut removed = 0;
        if let Some(since) = kept_since {
            let cut = lit(ScalarValue::TimestampMicrosecond(
                Some(since),
                Some("UTC".into()),
            ));
            let (kept, metrics) = table
                .clone()
                .delete()
                .with_predicate(col(OBSERVED_TIME).lt(cut))
                .await?;
            removed = metrics.num_deleted_rows.unwrap_or(0);
            *table = kept;
        }
        let (maintained, mut report) = compact_and_vacuum(table.clone(), retention, None).await?;
        *table = maintained;
        report.history_rows_removed = removed;
        Ok(report)
    }

    /// Appends `partition`'s changes of commit `sequence`: `rows` (the
    /// table's columns) with their `changes`, observed at `observed`
    /// (microseconds since the epoch).
    pub async fn append(
        &self,
        partition: &PartitionKey,
        sequence: i64,
        rows: &RecordBatch,
        changes: &[ChangeType],
        observed: i64,
    ) -> Result<(), ReplicaError> {
        let count = rows.num_rows();
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![observed; count]).with_timezone("UTC"),
        ));
        columns.push(Arc::new(StringArray::from_iter_values(
            changes.iter().map(|change| change.as_str()),
        )));
        columns.push(Arc::new(Int64Array::from(vec![sequence; count])));
        let batch = RecordBatch::try_new(history_schema(), columns)?;
        let mut table = self.table.lock().await;
        table.update_incremental(None).await?;
        let appended = table
            .clone()
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(marked(partition, sequence))
            .await?;
        *table = appended;
        Ok(())
    }
}

/// A commit that records `sequence` as `partition`'s last.
fn marked(partition: &PartitionKey, sequence: i64) -> CommitProperties {
    CommitProperties::default()
        .with_application_transactions(vec![Transaction::new(app_id(partition), sequence)])
}

/// The history's application transaction id of `partition`.
fn app_id(partition: &PartitionKey) -> String {
    format!("{HISTORY_APP_ID_PREFIX}{partition}")
}
