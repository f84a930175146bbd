//! The SageMaker source: lists compilation jobs page by page, describes them
//! concurrently and fetches their tags, only as far as a scan needs.
//!
//! The listing runs in its own task, a couple of pages ahead of the
//! describers, so the NextToken chain never waits for describes and describes
//! start with the first page. A job's Describe and ListTags run at the same
//! time. Every call passes its operation's gate (`gate.rs`), shared by all
//! scans: at most `concurrency` calls of one operation in flight against the
//! account, paced by a rate that adapts to throttling, retried with backoff.
//!
//! A job that is listed but gone by the time it is described or its tags are
//! read (ResourceNotFound: deleted in between) is **skipped**: the table shows
//! the jobs that exist, and a row built from a stale summary would be a job
//! that no longer exists.
//!
//! - [`SageMakerSource`] (`sagemaker_source.rs`): one partition's client,
//!   gates and cache; `listing.rs` lists (`window_edges.rs`: the jobs its
//!   overlapping windows list twice), `fetch.rs` completes a job.
//! - [`tagging`]: every tagged job's tags through the Tagging API's
//!   GetResources (the replica's tags refresh), ListTags the fallback.
//! - [`arn`]: the fields of an ARN.
//! - `request.rs`: what a scan asks for; `row_filter.rs`: what its rows
//!   must meet; `record.rs`: what it yields.
//! - `gate.rs`, `rate_controller.rs` and `budget.rs`: concurrency, pacing
//!   and a LIMIT's budget;
//!   `retry.rs`: attempts and backoff; `cache.rs`: answers kept between
//!   scans; `error.rs`: why a call failed.
//! - [`partition`]: (account, region) partitions, each with its source;
//!   [`accounts`]: finding them (STS, roles, the Account API); `client.rs`:
//!   the SDK configuration; `credentials_check.rs`: credentials at start-up.
//!
//! May import: `obs`. Returns [`SourceError`]; the Flight edge turns it
//! into a status.

pub mod accounts;
pub mod arn;
mod budget;
mod cache;
mod client;
mod credentials_check;
mod error;
mod fetch;
mod gate;
mod listing;
pub mod operations;
pub mod partition;
mod partition_key;
mod rate_controller;
mod record;
mod request;
mod retry;
mod row_filter;
mod sagemaker_source;
pub mod tagging;
mod window_edges;

pub use arn::account_id_from_arn;
pub use cache::{DEFAULT_CACHE_MAX_JOBS, DEFAULT_CACHE_TTL};
pub use client::{AwsOptions, TaggingClient, sdk_config};
#[cfg(feature = "demo")]
pub use client::{emulator_client, emulator_tagging_client};
pub use credentials_check::{MissingCredentials, check_credentials};
pub use error::{SourceError, SourceErrorKind, describe_chain};
pub use partition::{Partition, Partitions};
pub use partition_key::PartitionKey;
pub use record::{JobRecord, JobSummary};
pub use request::{LIST_PAGE_SIZE, ListOrder, ListParams, ScanRequest, SortKey, SortValue};
pub use retry::DEFAULT_MAX_ATTEMPTS;
pub use retry::RetryPolicy;
pub use row_filter::RowFilter;
pub use sagemaker_source::{DEFAULT_CONCURRENCY, DEFAULT_LIST_WINDOWS, SageMakerSource};
