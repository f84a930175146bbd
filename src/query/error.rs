//! Why a statement was not run, or stopped.

use datafusion::common::DataFusionError;

/// Why a statement was not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would change something or read outside the table.
    #[error("sagemaker-flight is read-only: {0}")]
    ReadOnly(String),
    /// The SQL does not parse, or names something that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// The SQL names a table that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Parameters that do not fit the statement.
    #[error("bad parameters: {0}")]
    Parameters(String),
    /// Anything DataFusion reports while planning or running.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}
