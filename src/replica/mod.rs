//! The replica: the table kept in a Delta Lake table by a collector per
//! (account, region) partition, so that queries need no SageMaker call and
//! a restart remembers.
//!
//! - [`store`]: the Delta table, its commits (a MERGE by `_key` with the
//!   partition's watermark) and what it knows of each partition.
//! - [`collector`]: the first full scan, then refreshes that ask only about
//!   new jobs and jobs that can still change; `changes.rs`: how it tells
//!   what changed.
//! - [`location`]: what `--store` names (a directory, `s3://bucket/prefix`).
//! - [`s3`]: the S3 object store, signed with the AWS configuration's
//!   credentials, and its conditional-put commits.
//! - [`provider`]: `aws.sagemaker_compilation_job` read from the store.
//! - [`history`]: every change of every commit, one row per observed
//!   version of a job, in a Delta table beside the replica's.
//! - [`history_provider`]: the history as the SQL table
//!   `aws.sagemaker_compilation_job_history`.
//! - [`change_data`]: each commit's changes (Delta's change data feed);
//!   [`feed`]: them as an endless stream from a chosen start;
//!   [`feed_provider`]: the stream as the SQL table
//!   `aws.sagemaker_compilation_job_changes`.
//! - `partition_rows.rs`: which rows of those tables are a partition's.
//! - `delta_table.rs`: opening (or creating) a Delta table at a location;
//!   `log_head.rs`: one kept at its latest version for reads, with no
//!   reload of a local one while its log shows nothing newer.
//! - [`image`]: the store's latest version in memory, for queries;
//!   [`parquet_files`]: reading a version's files for it;
//!   [`image_copy`]: that version as an IPC file beside a local store,
//!   for the next start.
//! - [`maintenance`]: compacting the store's small files, and deleting
//!   the files no recent version needs.
//! - [`freshness`]: `aws.sagemaker_compilation_job_freshness`, a row per
//!   partition: its watermark and rows, and its collector's last runs.
//! - [`status`]: what this process's collectors last did.
//! - `error.rs`: why the replica could not be read or written.
//!
//! May import: `table`, `source`, `obs`.

pub mod change_data;
mod changes;
pub mod collector;
mod delta_table;
mod error;
pub mod feed;
pub mod feed_provider;
pub mod file_layout;
pub mod freshness;
pub mod history;
pub mod history_provider;
pub mod image;
pub mod image_copy;
pub mod location;
mod log_head;
pub mod maintenance;
pub mod parquet_files;
mod partition_rows;
pub mod provider;
pub mod s3;
pub mod status;
pub mod store;

pub use collector::{
    Collector, DEFAULT_RECONCILE_INTERVAL, DEFAULT_REFRESH_INTERVAL, DEFAULT_TAGS_REFRESH_INTERVAL,
    RunReport, Schedule,
};
pub use error::ReplicaError;
pub use feed_provider::FeedProvider;
pub use freshness::FreshnessTable;
pub use history_provider::HistoryProvider;
pub use location::StoreLocation;
pub use provider::ReplicaTable;
pub use s3::S3Access;
pub use status::{CollectorStatus, StatusBoard};
pub use store::ReplicaStore;
