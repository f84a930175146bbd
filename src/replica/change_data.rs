//! The replica's changes, commit by commit: Delta's change data feed of
//! the replica's table.
//!
//! The store records, in every commit, the rows it inserted, updated
//! (before and after) and deleted (`delta.enableChangeDataFeed`), so a
//! commit's changes land with its rows or not at all, and a commit's
//! version is a position in the feed that a client can resume from. A
//! store made before the feed existed has it from the commit that turned
//! it on: the first version with changes is kept as an application
//! transaction ([`FEED_SINCE_APP_ID`]).
//!
//! Each change is a row of the table's 21 columns, then `change_type`
//! (`created`, `updated`, `deleted`: the history's words), then
//! `commit_version` and `commit_time` (when the commit was made).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_plan::collect;
use deltalake_core::DeltaTable;
use deltalake_core::kernel::Transaction;
use deltalake_core::kernel::transaction::CommitProperties;

use crate::replica::delta_table::{app_version, reading_session};
use crate::replica::error::ReplicaError;
use crate::replica::history::{CHANGE_TYPE, ChangeType};
use crate::table::schema::{table_schema, timestamp_type};

/// The version of the commit a change is of: the feed's position.
pub const COMMIT_VERSION: &str = "commit_version";
/// When the commit a change is of was made.
pub const COMMIT_TIME: &str = "commit_time";
/// The Delta table property that records every commit's changes.
const CHANGE_DATA_PROPERTY: &str = "delta.enableChangeDataFeed";
/// The application transaction holding the first version with changes.
const FEED_SINCE_APP_ID: &str = "sagemaker-flight/#changes-since";
/// Delta's own columns of a change.
const DELTA_CHANGE_TYPE: &str = "_change_type";
const DELTA_COMMIT_VERSION: &str = "_commit_version";
const DELTA_COMMIT_TIMESTAMP: &str = "_commit_timestamp";

/// The schema of a change: the table's 21 columns, [`CHANGE_TYPE`],
/// [`COMMIT_VERSION`], [`COMMIT_TIME`].
pub fn changes_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields: Vec<Field> = table_schema()
            .fields()
            .iter()
            .map(|field| field.as_ref().clone())
            .collect();
        fields.push(Field::new(CHANGE_TYPE, DataType::Utf8, false));
        fields.push(Field::new(COMMIT_VERSION, DataType::Int64, false));
        fields.push(Field::new(COMMIT_TIME, timestamp_type(), false));
        Arc::new(Schema::new(fields))
    });
    Arc::clone(&SCHEMA)
}

/// `table` recording the changes of each commit from now on, if it did
/// not already. Two processes turning it on at once both get a table
/// that records them.
pub(crate) async fn record_changes(mut table: DeltaTable) -> Result<DeltaTable, ReplicaError> {
    if records_changes(&table)? {
        return Ok(table);
    }
    // A property change is never rebased on a concurrent commit: it lands
    // right after the version read here, or fails.
    let since = table.version().map_or(0, |version| version + 1);
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let turned_on = table
        .clone()
        .set_tbl_properties()
        .with_properties(HashMap::from([(
            CHANGE_DATA_PROPERTY.to_owned(),
            "true".to_owned(),
        )]))
        .with_commit_properties(
            CommitProperties::default()
                .with_application_transaction(Transaction::new(FEED_SINCE_APP_ID, since)),
        )
        .await;
    match turned_on {
        Ok(table) => {
            tracing::info!(
                since,
                "the replica records each commit's changes from now on"
            );
            Ok(table)
        }
        Err(error) => {
            table.update_incremental(None).await?;
            if records_changes(&table)? {
                Ok(table)
            } else {
                Err(error.into())
            }
        }
    }
}

fn records_changes(table: &DeltaTable) -> Result<bool, ReplicaError> {
    Ok(table
        .snapshot()?
        .table_config()
        .enable_change_data_feed
        .unwrap_or(false))
}

/// The first version whose changes the store has: from the version that
/// began recording them (kept as an application transaction), and whose
/// log entry is still there. Delta's log cleanup (at a checkpoint, the
/// entries older than `delta.logRetentionDuration`, 30 days by default)
/// removes the oldest entries, and with them the changes they recorded;
/// it removes a prefix, so the first kept one is found by bisection.
/// (VACUUM does not touch change data: `tests/feed.rs`.)
pub(crate) async fn changes_since(table: &DeltaTable) -> Result<u64, ReplicaError> {
    let recorded = app_version(table, FEED_SINCE_APP_ID).await?.unwrap_or(0);
    let recorded = u64::try_from(recorded).unwrap_or(0);
    let Some(latest) = table.version() else {
        return Ok(recorded);
    };
    if recorded >= latest || is_logged(table, recorded).await? {
        return Ok(recorded);
    }
    // `gone` is not in the log, `kept` is (the latest always is).
    let (mut gone, mut kept) = (recorded, latest);
    while kept - gone > 1 {
        let middle = gone + (kept - gone) / 2;
        if is_logged(table, middle).await? {
            kept = middle;
        } else {
            gone = middle;
        }
    }
    Ok(kept)
}

/// Whether the log still has the commit of `version`.
async fn is_logged(table: &DeltaTable, version: u64) -> Result<bool, ReplicaError> {
    Ok(table
        .log_store()
        .read_commit_entry(version)
        .await?
        .is_some())
}

/// How far apart two writers' clocks may be: a start by time goes back
/// this far in versions, and the rows are then filtered by their time.
const CLOCK_SKEW_MILLIS: i64 = 60_000;

/// The first version to read for the changes after `micros` (Unix
/// microseconds), at least `since`: the versions are walked back from
/// `latest` to the first made more than [`CLOCK_SKEW_MILLIS`] before
/// that time (a version's time is its commit's, in milliseconds), so a
/// resume point near now costs a few reads.
pub(crate) async fn first_version_after(
    table: &DeltaTable,
    since: u64,
    latest: u64,
    micros: i64,
) -> Result<u64, ReplicaError> {
    let bound = micros.div_euclid(1_000).saturating_sub(CLOCK_SKEW_MILLIS);
    let mut version = latest.saturating_add(1);
    while version > since {
        let Some(made) = commit_millis(table, version - 1).await? else {
            break;
        };
        if made <= bound {
            break;
        }
        version -= 1;
    }
    Ok(version.max(since))
}

/// When the commit of `version` was made (Unix milliseconds), `None` if
/// its log entry is gone.
async fn commit_millis(table: &DeltaTable, version: u64) -> Result<Option<i64>, ReplicaError> {
    let Some(bytes) = table.log_store().read_commit_entry(version as _).await? else {
        return Ok(None);
    };
    let actions = deltalake_core::logstore::get_actions(version as _, &bytes)?;
    Ok(actions.iter().find_map(|action| match action {
        deltalake_core::kernel::Action::CommitInfo(info) => {
            info.in_commit_timestamp.or(info.timestamp)
        }
        _ => None,
    }))
}

/// The changes of the commit of `version` in [`changes_schema`], `None` if
/// it changed no row (a compaction, a property).
pub(crate) async fn changes_of(
    table: &DeltaTable,
    version: u64,
) -> Result<Option<RecordBatch>, ReplicaError> {
    let context = reading_session();
    let plan = table
        .clone()
        .scan_cdf()
        .with_starting_version(version)
        .with_ending_version(version)
        .build(&context.state(), None)
        .await?;
    let batches = collect(plan, context.task_ctx()).await?;
    let changes = batches
        .iter()
        .map(to_change_rows)
        .collect::<Result<Vec<_>, _>>()?;
    let changes = concat_batches(&changes_schema(), &changes)?;
    Ok((changes.num_rows() > 0).then_some(changes))
}

/// Delta's change rows as the feed's: every column by name in the feed's
/// types, the rows before an update left out, the change types in the
/// history's words.
fn to_change_rows(batch: &RecordBatch) -> Result<RecordBatch, ReplicaError> {
    let missing = |name: &str| {
        ReplicaError::Arrow(arrow::error::ArrowError::SchemaError(format!(
            "the change data has no column {name}"
        )))
    };
    let delta_types = batch
        .column_by_name(DELTA_CHANGE_TYPE)
        .ok_or_else(|| missing(DELTA_CHANGE_TYPE))?;
    let delta_types = cast(delta_types, &DataType::Utf8)?;
    let change_types: StringArray = delta_types
        .as_string::<i32>()
        .iter()
        .map(|kind| change_type(kind?).map(ChangeType::as_str))
        .collect();
    // The rows before an update are left out first: their type is none.
    let kept = arrow::compute::is_not_null(&change_types)?;
    let batch = filter_record_batch(batch, &kept)?;
    let change_types = arrow::compute::filter(&change_types, &kept)?;
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| missing(name))
    };
    let schema = changes_schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let source = match field.name().as_str() {
            CHANGE_TYPE => Arc::clone(&change_types),
            COMMIT_VERSION => column(DELTA_COMMIT_VERSION)?,
            COMMIT_TIME => column(DELTA_COMMIT_TIMESTAMP)?,
            name => column(name)?,
        };
        columns.push(cast(&source, field.data_type())?);
    }
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// The history's word for one of Delta's change types; `None` for the
/// row before an update.
fn change_type(delta: &str) -> Option<ChangeType> {
    match delta {
        "insert" => Some(ChangeType::Created),
        "update_postimage" => Some(ChangeType::Updated),
        "delete" => Some(ChangeType::Deleted),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_has_the_table_columns_then_type_version_and_time() {
        let schema = changes_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names.len(), table_schema().fields().len() + 3);
        assert_eq!(
            &names[names.len() - 3..],
            [CHANGE_TYPE, COMMIT_VERSION, COMMIT_TIME]
        );
        assert_eq!(change_type("insert"), Some(ChangeType::Created));
        assert_eq!(change_type("update_preimage"), None);
        assert_eq!(change_type("update_postimage"), Some(ChangeType::Updated));
        assert_eq!(change_type("delete"), Some(ChangeType::Deleted));
    }
}
