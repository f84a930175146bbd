//! How the replica's Parquet files are written: by its commits, their
//! MERGE rewrites and its compaction alike (the history's files keep
//! deltalake's defaults).
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

/// The properties of every data file the replica writes: row groups of at
/// most `row_group_rows` rows (at least one), Snappy as deltalake's MERGE
/// has it. Compaction too: deltalake's OPTIMIZE would write ZSTD (level 4),
/// smaller files that take longer to decode, and the replica's files are
/// decoded whole at each start and each commit.
pub(crate) fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("sagemaker-flight {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build()
}
