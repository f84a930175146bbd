//! How the replica's Parquet files are written: by commits, their MERGE
//! rewrites and compaction alike.
//!
//! A restart waits for the latest version to be decoded into memory
//! (`image.rs`), and one row group is decoded by one thread. With
//! deltalake's default (every row of a file in one row group) a 10,000-job
//! store decoded on one of the two cores while the other waited; row
//! groups of [`ROW_GROUP_ROWS`] let `parquet_files.rs` decode them side by
//! side, and give filters finer statistics to skip by.

use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per row group, by default. Smaller groups cost more footer and
/// compress a little worse; 4,096 rows is still about 1 MB of this table's
/// strings.
pub const ROW_GROUP_ROWS: usize = 4096;

/// The properties of every data file the replica writes: deltalake's
/// compression (Snappy), row groups of at most `row_group_rows` rows
/// (at least one).
pub(crate) fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build()
}
