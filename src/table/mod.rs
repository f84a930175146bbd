//! The table `aws.sagemaker_compilation_job`: its schema, the conversion of
//! SageMaker answers into Arrow, and the streams of record batches a scan
//! produces.

pub mod batches;
pub mod convert;
pub mod exec;
pub mod provider;
pub mod pushdown;
pub mod schema;
pub mod snapshot;

pub use batches::{BatchSizing, ScanError, record_batches};
pub use provider::TableOptions;
