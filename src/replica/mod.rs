//! The replica: the table kept in a Delta Lake table by a collector per
//! (account, region) partition, so that queries need no SageMaker call and
//! a restart remembers.
//!
//! - [`store`]: the Delta table, its commits (a MERGE by `_key` with the
//!   partition's watermark) and what it knows of each partition.
//! - [`collector`]: the first full scan, then refreshes that ask only about
//!   new jobs and jobs that can still change.
//! - [`provider`]: `aws.sagemaker_compilation_job` read from the store.
//! - `error.rs`: why the replica could not be read or written.
//!
//! May import: `table`, `source`, `obs`.

pub mod collector;
mod error;
pub mod provider;
pub mod store;

pub use collector::{
    Collector, DEFAULT_RECONCILE_INTERVAL, DEFAULT_REFRESH_INTERVAL, DEFAULT_TAGS_REFRESH_INTERVAL,
    RunReport, Schedule,
};
pub use error::ReplicaError;
pub use provider::ReplicaTable;
pub use store::ReplicaStore;
