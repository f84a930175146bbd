//! Every row of a Delta version read straight from its Parquet files, its
//! row groups decoded side by side.
//!
//! A restarted server answers its first query once the replica's latest
//! version is in memory (`image.rs`), so that read is most of a restart.
//! DataFusion's Delta scan decodes a file smaller than its repartitioning
//! size (10 MiB: a 10,000-job store is one 2.3 MB file) in one stream, on
//! one core. The tables this project writes are plain: no partition
//! columns, no deletion vectors, no column mapping, every file's columns
//! those of the table in its order. A version like that is read here
//! instead, as many row groups at once as there are cores (`file_layout.rs`
//! keeps them small enough to be several); any other (a table another
//! writer changed) is read the DataFusion way.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use deltalake_core::DeltaTable;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use crate::replica::delta_table::to_table_schema;
use crate::replica::error::ReplicaError;
use crate::table::schema::table_schema;
use crate::task::AbortOnDrop;

/// Rows per decoded batch: DataFusion's default, so that a batch of the
/// image is as large as one a Delta scan would give.
const BATCH_ROWS: usize = 8192;

/// Files read at once.
const FILE_READS: usize = 8;

/// The Delta table option that renames columns in the files.
const COLUMN_MAPPING: &str = "delta.columnMapping.mode";

/// Every row of `table`'s loaded version in the live table's schema, or
/// `None` if the version is not plain (see the module's docs) and must be
/// read through DataFusion.
pub async fn read_plain_version(
    table: &DeltaTable,
) -> Result<Option<Vec<RecordBatch>>, ReplicaError> {
    let snapshot = table.snapshot()?;
    let metadata = snapshot.metadata();
    let mapped = metadata
        .configuration()
        .get(COLUMN_MAPPING)
        .is_some_and(|mode| mode != "none");
    if mapped || !metadata.partition_columns().is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for file in snapshot.log_data().iter() {
        if file.deletion_vector_descriptor().is_some() {
            return Ok(None);
        }
        let size = u64::try_from(file.size()).unwrap_or_default();
        files.push((file.object_store_path(), size));
    }
    let store = table.object_store();
    // Each file whole, in one read (an S3 store: one GET), a few at a time;
    // then their row groups, as many at a time as there are cores.
    let contents: Vec<Bytes> = futures::stream::iter(files)
        .map(|(path, size)| {
            let store = Arc::clone(&store);
            async move { read_whole(store.as_ref(), &path, size).await }
        })
        .buffered(FILE_READS)
        .try_collect()
        .await?;
    let mut row_groups = Vec::new();
    for bytes in contents {
        let footer = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new())?;
        if !has_table_columns(&footer) {
            return Ok(None);
        }
        for row_group in 0..footer.metadata().num_row_groups() {
            row_groups.push((bytes.clone(), footer.clone(), row_group));
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let decoded: Vec<Vec<RecordBatch>> = futures::stream::iter(row_groups)
        .map(|(bytes, footer, row_group)| async move {
            // On the runtime's workers, a row group (a few ms) a task:
            // decoded on the blocking threads, the rows were allocated in
            // their own malloc arenas, and the server's peak RSS with
            // 200,000 jobs grew by about 280 MiB.
            AbortOnDrop(tokio::spawn(async move {
                decode_row_group(bytes, footer, row_group)
            }))
            .join()
            .await?
        })
        .buffered(threads)
        .try_collect()
        .await?;
    Ok(Some(decoded.into_iter().flatten().collect()))
}

/// A file's bytes; `size`, from the Delta log, is checked.
async fn read_whole(
    store: &dyn ObjectStore,
    path: &object_store::path::Path,
    size: u64,
) -> Result<Bytes, ReplicaError> {
    let bytes = store.get(path).await?.bytes().await?;
    if bytes.len() as u64 != size {
        return Err(ReplicaError::FileSize {
            path: path.to_string(),
            logged: size,
            read: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// One row group's rows in the live table's schema. The writer's Arrow
/// schema asks for string views: decoded as views, then copied once into
/// plain strings of exactly their size. (Decoded straight into plain
/// strings, a column keeps the spare capacity its buffers grew by: with
/// 200,000 jobs the server's peak RSS was 1466 MiB against 1074 MiB.)
fn decode_row_group(
    bytes: Bytes,
    footer: ArrowReaderMetadata,
    row_group: usize,
) -> Result<Vec<RecordBatch>, ReplicaError> {
    ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, footer)
        .with_row_groups(vec![row_group])
        .with_batch_size(BATCH_ROWS)
        .build()?
        .map(|batch| to_table_schema(&batch?))
        .collect()
}

/// Whether a file has exactly the table's columns, in its order.
fn has_table_columns(metadata: &ArrowReaderMetadata) -> bool {
    let table = table_schema();
    let file = metadata.schema();
    file.fields().len() == table.fields().len()
        && file
            .fields()
            .iter()
            .zip(table.fields())
            .all(|(read, wanted)| read.name() == wanted.name())
}
