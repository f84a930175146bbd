//! `sagemaker-flight collect`: the replica's collectors alone, writing a
//! store that servers elsewhere read (`serve --store` with the same URL).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use sagemaker_flight::server::collect::CollectConfig;
use sagemaker_flight::server::{Backend, ServeError, SourceSettings};

use crate::cli::calls::CallArgs;
use crate::cli::serve::AwsArgs;
use crate::cli::store::StoreArgs;

/// Options of `sagemaker-flight collect`.
#[derive(Debug, Args)]
#[command(mut_arg("store", |store| store.required(true)))]
pub struct CollectArgs {
    /// One pass per partition (its first full scan, or a refresh, and a
    /// tags refresh when --tags-refresh-interval has passed since the
    /// store's last one), then exit: non-zero if any partition failed. For
    /// cron and Kubernetes Jobs.
    #[arg(long)]
    pub once: bool,

    /// The store, and the cadences.
    #[command(flatten)]
    pub replica: StoreArgs,

    /// Where SageMaker is.
    #[command(flatten)]
    pub aws: AwsArgs,

    /// How SageMaker is called.
    #[command(flatten)]
    pub calls: CallArgs,

    /// Address of a plain-HTTP listener serving Prometheus metrics at GET
    /// /metrics (off unless given).
    #[arg(long, env = "SAGEMAKER_FLIGHT_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

impl CollectArgs {
    /// The library's configuration for these options.
    pub fn config(&self) -> Result<CollectConfig, ServeError> {
        let replica = self
            .replica
            .settings(self.aws.profile.clone())
            .ok_or("collect needs --store")?;
        Ok(CollectConfig {
            backend: Backend::Aws {
                options: self.aws.options(),
                regions: self.aws.regions.clone(),
                accounts_file: self.aws.accounts_file.clone(),
                allow_missing_credentials: self.aws.allow_missing_credentials,
            },
            source: SourceSettings {
                concurrency: self.calls.concurrency as usize,
                retry: self.calls.retry_policy(),
                list_windows: self.calls.list_windows as usize,
                // Each pass reads what it needs once: nothing to reuse.
                cache_ttl: Duration::ZERO,
                cache_max_jobs: 0,
            },
            replica,
            once: self.once,
            metrics_listen: self.metrics_listen,
        })
    }
}
