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
    /// A SageMaker call of the collector failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Building the rows failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// Building a batch failed.
    #[error("building the replica's rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}
