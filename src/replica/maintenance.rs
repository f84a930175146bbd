//! Keeping the store small: compaction and vacuum.
//!
//! Every refresh that finds a change is a MERGE, and a MERGE writes its new
//! jobs to a new small file and rewrites each file that held a changed
//! job. A store refreshed every minute would so gather a file a minute (and
//! every read, of memory's version or by another engine, would open them
//! all), and keep every file it ever replaced. So now and then the small
//! files are compacted into large ones (Delta's OPTIMIZE, one commit that
//! changes no row), and the files no version of the last
//! [`VACUUM_RETENTION`] needs are deleted (VACUUM): a reader of the store
//! on an older version than that would fail, so other engines must not
//! read a version longer than that. The history's table is kept the same
//! way, after its rows older than `--history-retention` (if set) are
//! removed; its file count so stays bounded too.

use std::time::Duration;

use deltalake_core::DeltaTable;
use parquet::file::properties::WriterProperties;

use crate::replica::error::ReplicaError;

/// How long a file the latest version no longer needs is kept, for readers
/// of older versions (other engines in the middle of a read, time travel).
pub const VACUUM_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often a process compacts and vacuums its store, at most.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// What one maintenance did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Small files compacted.
    pub files_compacted: u64,
    /// Large files they became.
    pub files_written: u64,
    /// Files deleted, no longer needed by a version within the retention.
    pub files_deleted: usize,
    /// History rows removed, observed before `--history-retention` (the
    /// other counts are the replica table's).
    pub history_rows_removed: usize,
}

/// Compacts `table`'s small files (written with `properties`, else
/// deltalake's), then deletes the files that no version of the last
/// `retention` needs; the table as it is after both.
pub async fn compact_and_vacuum(
    table: DeltaTable,
    retention: Duration,
    properties: Option<WriterProperties>,
) -> Result<(DeltaTable, Maintenance), ReplicaError> {
    let compaction = table.optimize();
    let compaction = match properties {
        Some(properties) => compaction.with_writer_properties(properties),
        None => compaction,
    };
    let (table, compaction) = compaction.await?;
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let (table, vacuum) = table
        .vacuum()
        .with_retention_period(retention)
        // The table's own retention (a week, by default) is for tables
        // that change rarely; this one changes every refresh.
        .with_enforce_retention_duration(false)
        .await?;
    Ok((
        table,
        Maintenance {
            files_compacted: compaction.num_files_removed,
            files_written: compaction.num_files_added,
            files_deleted: vacuum.files_deleted.len(),
            history_rows_removed: 0,
        },
    ))
}
