//! Why the replica could not be read or written.

use crate::source::SourceError;
use crate::table::ScanError;

/// An error of the replica: its store, or the SageMaker calls of its
/// collector.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The store's location is not one the server can use.
    #[error("--store {location:?}: {reason}")]
    Location {
        /// As given.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or committing the Delta table failed.
    #[error("the replica's Delta table: {0}")]
    Delta(#[from] deltalake_core::DeltaTableError),
    /// Reading the table through DataFusion failed.
    #[error("reading the replica: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Reading one of the replica's Parquet files failed.
    #[error("reading the replica's files: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The store did not give a file.
    #[error("reading the replica's files: {0}")]
    Files(#[from] object_store::Error),
    /// A file is not the size its commit recorded: it is not the file the
    /// commit made.
    #[error("the replica's file {path} has {read} bytes, its commit says {logged}")]
    FileSize {
        /// The file, in the store.
        path: String,
        /// Its size in the Delta log.
        logged: u64,
        /// The bytes read.
        read: u64,
    },
    /// The replica's image copy beside a local store (`image_copy.rs`)
    /// could not be read or written.
    #[error("the replica's image copy {path}: {reason}")]
    ImageCopy {
        /// The copy's file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A task reading the replica stopped before it finished.
    #[error("reading the replica stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
    /// A SageMaker call of the collector failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Building the rows failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// Building a batch failed.
    #[error("building the replica's rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A change feed's client stopped taking rows: more than its buffer
    /// waited for it, so the feed was ended.
    #[error(
        "the change feed's client fell behind: more than {buffer_mib} MiB of changes waited for it \
         (--changes-buffer-mib); every change up to commit_version {resume_after} was sent: \
         resume with WHERE commit_version > {resume_after}"
    )]
    FellBehind {
        /// The buffer, in MiB.
        buffer_mib: usize,
        /// The last version whose changes were sent.
        resume_after: u64,
    },
    /// A change feed asked to start before the store recorded changes.
    #[error(
        "the store has the changes of commit_version {since} and later; \
         commit_version {asked} is before that: start at {since} or later"
    )]
    ChangesNotKept {
        /// The version asked for.
        asked: u64,
        /// The first version whose changes the store has.
        since: u64,
    },
}
