//! Every row of a Delta version read straight from its Parquet files, its
//! row groups decoded side by side.
//!
//! A restarted server answers its first query once the replica's latest
//! version is in memory (`image.rs`), so that read is most of a restart.
//! DataFusion's Delta scan decodes a file smaller than its repartitioning
//! size (10 MiB: a 10,000-job store is one 2.3 MB file) in one stream, on
//! one core. The tables this project writes are plain: reader protocol 1
//! (no deletion vectors, column mapping or other reader feature), no
//! partition columns, files under the table's root, every file's columns
//! those of the table, of its types, in its order. A version like that is
//! read here instead, as many row groups at once as there are cores
//! (`file_layout.rs` keeps them small enough to be several); any other (a
//! table another writer changed) is read the DataFusion way.

use std::sync::Arc;

use arrow::datatypes::DataType;
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

/// Rows per decoded batch at most (a row group of `file_layout.rs` has
/// fewer).
const BATCH_ROWS: usize = 8192;

/// Files read at once.
const FILE_READS: usize = 8;

/// The one Delta reader protocol version without reader features.
const PLAIN_READER_VERSION: i32 = 1;

/// What a direct read of a version found.
#[derive(Debug)]
pub enum PlainRead {
    /// Every row, in the live table's schema.
    Rows(Vec<RecordBatch>),
    /// More rows than asked for at most, by the Delta log or the files'
    /// footers: nothing was decoded.
    TooMany,
    /// The version is not plain (see the module's docs): read it through
    /// DataFusion.
    NotPlain,
}

/// Every row of `table`'s loaded version, if it has at most `max_rows`
/// rows (plain or not) and is plain.
pub async fn read_plain_version(
    table: &DeltaTable,
    max_rows: usize,
) -> Result<PlainRead, ReplicaError> {
    let snapshot = table.snapshot()?;
    // By the row counts the commits logged (a file without one counts as
    // none: its footer tells below), before any file is read.
    let logged: usize = snapshot
        .log_data()
        .iter()
        .map(|file| file.num_records().unwrap_or(0))
        .sum();
    if logged > max_rows {
        return Ok(PlainRead::TooMany);
    }
    if snapshot.protocol().min_reader_version() != PLAIN_READER_VERSION
        || !snapshot.metadata().partition_columns().is_empty()
    {
        return Ok(PlainRead::NotPlain);
    }
    let mut files = Vec::new();
    for file in snapshot.log_data().iter() {
        // An absolute URI names a file outside the table's root.
        if file.deletion_vector_descriptor().is_some() || file.path().contains("://") {
            return Ok(PlainRead::NotPlain);
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
    let mut rows: i64 = 0;
    for bytes in contents {
        let footer = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new())?;
        if !has_table_columns(&footer) {
            return Ok(PlainRead::NotPlain);
        }
        rows = rows.saturating_add(footer.metadata().file_metadata().num_rows());
        if usize::try_from(rows).map_or(true, |rows| rows > max_rows) {
            return Ok(PlainRead::TooMany);
        }
        for row_group in 0..footer.metadata().num_row_groups() {
            row_groups.push((bytes.clone(), footer.clone(), row_group));
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let decoded: Vec<Vec<RecordBatch>> = futures::stream::iter(row_groups)
        .map(|(bytes, footer, row_group)| async move {
            // On the runtime's workers, a row group (a few ms, which is as
            // long as another task waits) a task: decoded on the blocking
            // threads, the rows were allocated in their own malloc arenas,
            // and the server's peak RSS with 200,000 jobs was 1604 MiB
            // against 1271 MiB.
            AbortOnDrop(tokio::spawn(async move {
                decode_row_group(bytes, footer, row_group)
            }))
            .join()
            .await?
        })
        .buffered(threads)
        .try_collect()
        .await?;
    Ok(PlainRead::Rows(decoded.into_iter().flatten().collect()))
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
/// schema asks for string views: decoded as views (a 10,000-job file took
/// 7-9 ms, against 10-14 ms straight into plain strings), then copied
/// once into plain strings.
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

/// Whether a file has exactly the table's columns, in its order, each of
/// its type (strings maybe as views, a map's fields maybe named otherwise:
/// what `to_table_schema` casts).
fn has_table_columns(metadata: &ArrowReaderMetadata) -> bool {
    let table = table_schema();
    let file = metadata.schema();
    file.fields().len() == table.fields().len()
        && file
            .fields()
            .iter()
            .zip(table.fields())
            .all(|(read, wanted)| {
                read.name() == wanted.name() && same_type(read.data_type(), wanted.data_type())
            })
}

/// Whether `read` holds `wanted`'s values as they are, up to the string
/// views and map field names `to_table_schema` casts away.
fn same_type(read: &DataType, wanted: &DataType) -> bool {
    match (read, wanted) {
        (DataType::Utf8View | DataType::Utf8, DataType::Utf8) => true,
        (DataType::Map(read, _), DataType::Map(wanted, _)) => {
            match (read.data_type(), wanted.data_type()) {
                (DataType::Struct(read), DataType::Struct(wanted)) => {
                    read.len() == wanted.len()
                        && read
                            .iter()
                            .zip(wanted.iter())
                            .all(|(r, w)| same_type(r.data_type(), w.data_type()))
                }
                _ => false,
            }
        }
        _ => read == wanted,
    }
}
