//! Opening a Delta table at a store location (a local directory, or an
//! S3 prefix with this project's log store), creating it with its schema
//! when there is none: the replica's table and its history's; and a read
//! of one in exactly the live table's schema.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake_core::protocol::SaveMode;
use deltalake_core::{DeltaTable, DeltaTableBuilder, ensure_table_uri};
use futures::TryStreamExt;
use url::Url;

use crate::replica::error::ReplicaError;
use crate::replica::location::StoreLocation;
use crate::replica::s3::{self, S3Access};
use crate::table::schema::table_schema;

/// The folder of a Delta table's commits.
pub(crate) const DELTA_LOG: &str = "_delta_log";

/// The Delta table at `location`, loaded at its latest version; made with
/// `schema` if there is none (`what` names it in the log). Two processes
/// creating one table at once both open it.
pub(crate) async fn open_or_create(
    location: &str,
    access: &S3Access,
    schema: SchemaRef,
    what: &str,
) -> Result<DeltaTable, ReplicaError> {
    let bad = |reason: String| ReplicaError::Location {
        location: location.to_owned(),
        reason,
    };
    let mut table = match StoreLocation::parse(location).map_err(bad)? {
        StoreLocation::Directory(directory) => {
            std::fs::create_dir_all(&directory).map_err(|e| bad(e.to_string()))?;
            let directory = directory.canonicalize().map_err(|e| bad(e.to_string()))?;
            let url =
                ensure_table_uri(directory.to_string_lossy()).map_err(|e| bad(e.to_string()))?;
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
            let root = Url::parse(&format!("s3://{bucket}/")).map_err(|e| bad(e.to_string()))?;
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
            .write(vec![RecordBatch::new_empty(schema)])
            .with_save_mode(SaveMode::Append)
            .await;
        table = match created {
            Ok(created) => {
                tracing::info!(location, "created {what}'s Delta table");
                created
            }
            // Another server created it first: open theirs.
            Err(error) => match table.load().await {
                Ok(()) if table.version().is_some() => table,
                _ => return Err(error.into()),
            },
        };
    }
    Ok(table)
}

/// A session to read Delta tables in: strings as the table has them, not
/// as views to cast back.
pub(crate) fn reading_session() -> datafusion::prelude::SessionContext {
    let mut config = datafusion::prelude::SessionConfig::new();
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    datafusion::prelude::SessionContext::new_with_config(config)
}

/// The version `table` records for the application transaction `app_id`
/// (a watermark, a sequence, a time); `None`: never set.
pub(crate) async fn app_version(
    table: &DeltaTable,
    app_id: &str,
) -> Result<Option<i64>, ReplicaError> {
    Ok(table
        .snapshot()?
        .transaction_version(table.log_store().as_ref(), app_id)
        .await?)
}

/// `batch` (a read of the Delta table, its columns in the table's order)
/// in exactly the live table's schema: Delta's reader may hand strings
/// back as views and name the map's fields its own way.
pub(crate) fn to_table_schema(batch: &RecordBatch) -> Result<RecordBatch, ReplicaError> {
    let schema = table_schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}
