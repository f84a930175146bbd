//! The replica's options, shared by `serve --store` and `collect`: where
//! the store is, how it is reached, and the collectors' cadences.

use sagemaker_flight::replica::feed::DEFAULT_FEED_BUFFER_MIB;
use std::time::Duration;

use clap::Args;
use sagemaker_flight::replica::{
    DEFAULT_RECONCILE_INTERVAL, DEFAULT_REFRESH_INTERVAL, DEFAULT_TAGS_REFRESH_INTERVAL, S3Access,
    Schedule,
};
use sagemaker_flight::server::ReplicaSettings;

/// Options of the replica.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Keep the table in a Delta Lake table here: a directory (made if
    /// missing) or s3://bucket/prefix. A collector per partition fills it
    /// and keeps it current, queries read it with no SageMaker call, and a
    /// restart resumes from it. `aws.sagemaker_compilation_job_live` still
    /// calls SageMaker.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_STORE",
        value_name = "DIR|s3://BUCKET/PREFIX"
    )]
    pub store: Option<String>,

    /// An S3-compatible endpoint for an s3:// store instead of AWS's (the
    /// standard AWS_ENDPOINT_URL_S3); credentials come from the standard
    /// AWS configuration. (No `requires = "store"`: the variable is
    /// standard, and set for other tools it must not stop a server.)
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub store_endpoint_url: Option<String>,

    /// The region of an s3:// store's bucket (default: the AWS
    /// configuration's region, else us-east-1; S3 does not redirect to
    /// the right one).
    #[arg(long, env = "SAGEMAKER_FLIGHT_STORE_REGION", requires = "store")]
    pub store_region: Option<String>,

    /// Seconds between two refreshes of the replica, per partition.
    #[arg(long, env = "SAGEMAKER_FLIGHT_REFRESH_INTERVAL",
          default_value_t = DEFAULT_REFRESH_INTERVAL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..),
          requires = "store")]
    pub refresh_interval: u64,

    /// Seconds between two reconciles of the replica, per partition: every
    /// job listed (List pages only), the jobs no longer listed removed.
    #[arg(long, env = "SAGEMAKER_FLIGHT_RECONCILE_INTERVAL",
          default_value_t = DEFAULT_RECONCILE_INTERVAL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..),
          requires = "store")]
    pub reconcile_interval: u64,

    /// Seconds between two reads of every job's tags (the Tagging API's
    /// GetResources, or a ListTags per job where it is denied; a reconcile
    /// too), per partition: tags change without a status change.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TAGS_REFRESH_INTERVAL",
          default_value_t = DEFAULT_TAGS_REFRESH_INTERVAL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..),
          requires = "store")]
    pub tags_refresh_interval: u64,

    /// Seconds the history keeps a row (`aws.sagemaker_compilation_job_history`);
    /// older rows are removed at the store's hourly maintenance, which also
    /// compacts the history's files. Default: keep every row.
    #[arg(long, env = "SAGEMAKER_FLIGHT_HISTORY_RETENTION",
          value_parser = clap::value_parser!(u64).range(1..),
          requires = "store")]
    pub history_retention: Option<u64>,
}

impl StoreArgs {
    /// The replica these options ask for, reached with the AWS `profile`;
    /// `None` without `--store`.
    pub fn settings(&self, profile: Option<String>) -> Option<ReplicaSettings> {
        let store = self.store.clone()?;
        Some(ReplicaSettings {
            store,
            access: S3Access {
                profile,
                endpoint_url: self.store_endpoint_url.clone(),
                region: self.store_region.clone(),
            },
            collect: true,
            schedule: Schedule {
                refresh: Duration::from_secs(self.refresh_interval),
                reconcile: Duration::from_secs(self.reconcile_interval),
                tags_refresh: Duration::from_secs(self.tags_refresh_interval),
                history_retention: self.history_retention.map(Duration::from_secs),
            },
            changes_buffer_mib: DEFAULT_FEED_BUFFER_MIB,
        })
    }
}
