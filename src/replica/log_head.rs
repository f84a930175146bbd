//! A Delta table kept for reads at its latest version ([`LatestTable`]),
//! and whether a local one, as last loaded, is still the latest: a look at
//! two commit files and the checkpoint pointer instead of a reload.
//!
//! A reload (`update_incremental`) lists the whole `_delta_log` folder
//! (object_store's local listing walks every entry, whatever the offset),
//! and every replica read made one (a whole-table read twice:
//! GetFlightInfo, then DoGet). Delta keeps log entries for 30 days, so a
//! store refreshed every minute gathers some 43,000: with 20,000 entries a
//! GetFlightInfo of a 10,000-job replica took 160-175 ms instead of 1.
//! Commits are files named by version and never rewritten, so a table
//! loaded at version `v` is the latest while `<v>.json` is there and
//! `<v+1>.json` is not. A checkpoint of the same version changes no row
//! but lets the log entries before it be deleted, and a table that still
//! names them could not read its older changes: so a changed
//! `_last_checkpoint` reloads too. An S3 store reloads every time: there
//! each look at a file is a request, as the listing is (its cost on a
//! long log is not measured).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use deltalake_core::DeltaTable;

use crate::replica::delta_table::DELTA_LOG;
use crate::replica::error::ReplicaError;
use crate::replica::location::StoreLocation;

/// The file Delta rewrites at each checkpoint, naming the newest.
const LAST_CHECKPOINT: &str = "_last_checkpoint";

/// A table reloaded before each read unless its local log shows it is
/// still the latest.
#[derive(Debug)]
pub(crate) struct LatestTable {
    table: DeltaTable,
    log: Option<LocalLog>,
}

impl LatestTable {
    /// `table`, loaded after `log` noted the head of its log
    /// ([`LocalLog::before_open`]).
    pub(crate) fn new(table: DeltaTable, log: Option<LocalLog>) -> LatestTable {
        LatestTable { table, log }
    }

    /// The table at its latest version, reloaded if it may not be.
    pub(crate) async fn latest(&mut self) -> Result<&DeltaTable, ReplicaError> {
        let loaded = self.table.version();
        let is_latest = |log: &LocalLog| loaded.is_some_and(|version| log.is_latest(version));
        if !self.log.as_ref().is_some_and(is_latest) {
            if let Some(log) = &mut self.log {
                log.reloading();
            }
            self.table.update_incremental(None).await?;
        }
        Ok(&self.table)
    }

    /// The table as last loaded.
    pub(crate) fn loaded(&self) -> &DeltaTable {
        &self.table
    }
}

/// Which `_last_checkpoint` a reload saw: its inode, length and
/// modification time (a checkpoint writes a new file and renames it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CheckpointStamp {
    inode: u64,
    length: u64,
    modified_nanos: i128,
}

/// The `_delta_log` folder of a local store, and the checkpoint pointer
/// its last reload saw.
#[derive(Debug)]
pub(crate) struct LocalLog {
    folder: PathBuf,
    /// `None` before the first reload, and while there is no checkpoint.
    checkpoint_seen: Option<CheckpointStamp>,
    /// Whether a reload has been noted: until then the table is never
    /// taken as the latest.
    reloaded: bool,
}

impl LocalLog {
    /// The log of the store at `location`; `None` for a store that is not
    /// a local directory.
    pub(crate) fn of(location: &str) -> Option<LocalLog> {
        match StoreLocation::parse(location).ok()? {
            StoreLocation::Directory(directory) => Some(LocalLog {
                folder: directory.join(DELTA_LOG),
                checkpoint_seen: None,
                reloaded: false,
            }),
            StoreLocation::S3 { .. } => None,
        }
    }

    /// The log of the store at `location`, its head noted as before a
    /// reload: call it before the table is opened (loaded).
    pub(crate) fn before_open(location: &str) -> Option<LocalLog> {
        let mut log = LocalLog::of(location)?;
        log.reloading();
        Some(log)
    }

    /// Whether a table loaded at `version` at the last noted reload is
    /// still the latest: its commit is there, no newer one is, and no
    /// checkpoint was written since. Any doubt (a file that cannot be
    /// read) says no, and the caller reloads.
    pub(crate) fn is_latest(&self, version: u64) -> bool {
        self.reloaded
            && self.commit_file(version).is_file()
            && !self.commit_file(version + 1).exists()
            && self.checkpoint_now() == self.checkpoint_seen
    }

    /// Notes the checkpoint pointer just before a reload: a checkpoint
    /// written during the reload then differs at the next look.
    pub(crate) fn reloading(&mut self) {
        self.checkpoint_seen = self.checkpoint_now();
        self.reloaded = true;
    }

    fn commit_file(&self, version: u64) -> PathBuf {
        self.folder.join(format!("{version:020}.json"))
    }

    fn checkpoint_now(&self) -> Option<CheckpointStamp> {
        let metadata = std::fs::metadata(self.folder.join(LAST_CHECKPOINT)).ok()?;
        Some(CheckpointStamp {
            inode: metadata.ino(),
            length: metadata.len(),
            modified_nanos: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::delta_table::open_or_create;
    use crate::replica::s3::S3Access;
    use crate::table::schema::table_schema;
    use arrow::array::RecordBatch;

    /// A table at `location` with one more (empty) commit than it had.
    async fn commit_once(location: &str) -> u64 {
        let table = open_or_create(location, &S3Access::default(), table_schema(), "a test")
            .await
            .expect("a table");
        let table = table
            .write(vec![RecordBatch::new_empty(table_schema())])
            .await
            .expect("a commit");
        table.version().expect("a version")
    }

    #[tokio::test]
    async fn a_table_is_the_latest_until_a_newer_commit_or_checkpoint_is_written() {
        let folder =
            std::env::temp_dir().join(format!("sagemaker-flight-log-head-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let location = folder.to_string_lossy().into_owned();
        let mut log = LocalLog::of(&location).expect("a local store");
        let version = commit_once(&location).await;
        assert!(!log.is_latest(version), "never before a reload is noted");

        log.reloading();
        assert!(log.is_latest(version));
        assert!(!log.is_latest(version + 1), "a version not yet committed");

        let newer = commit_once(&location).await;
        assert_eq!(newer, version + 1);
        assert!(!log.is_latest(version), "a newer commit is there");
        log.reloading();
        assert!(log.is_latest(newer));

        let table = open_or_create(&location, &S3Access::default(), table_schema(), "a test")
            .await
            .expect("the table");
        deltalake_core::checkpoints::create_checkpoint(&table, None)
            .await
            .expect("a checkpoint");
        assert!(!log.is_latest(newer), "a checkpoint was written");
        log.reloading();
        assert!(log.is_latest(newer));

        std::fs::remove_file(log.commit_file(newer)).expect("the commit file");
        assert!(!log.is_latest(newer), "its commit file is gone");
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn a_store_on_s3_has_no_local_log() {
        assert!(LocalLog::of("s3://ml-inventory/replica").is_none());
        assert!(LocalLog::of("file:///var/replica").is_some());
    }
}
