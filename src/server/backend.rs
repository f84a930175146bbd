//! Where the rows come from, opened: a SageMaker client per (account,
//! region) partition, from AWS's configuration or an in-process demo
//! emulator; and a source per partition over them. Shared by `serve` and
//! `collect`.

use std::sync::Arc;

use crate::server::config::{Backend, SourceSettings};
use crate::server::error::ServeError;
use crate::source::accounts::{AccountsFile, PartitionClient, partition_clients};
use crate::source::{Partition, Partitions, SageMakerSource, check_credentials, sdk_config};

/// Seed of the `--demo` emulator's jobs.
#[cfg(feature = "demo")]
const DEMO_SEED: u64 = 7;

/// An opened backend: its partitions' clients, and what must stay alive
/// while they are used.
pub struct OpenBackend {
    /// A client per partition.
    pub clients: Vec<PartitionClient>,
    /// The demo's emulator, stopped by [`Running::shutdown`].
    pub running: Running,
}

/// What an opened backend runs in this process (the demo's emulator).
#[derive(Default)]
pub struct Running {
    #[cfg(feature = "demo")]
    emulator: Option<sagemaker_emulator::Emulator>,
}

impl Running {
    /// Stops what the backend started.
    pub async fn shutdown(self) {
        #[cfg(feature = "demo")]
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// Opens `backend`: AWS (credentials checked now, unless allowed missing)
/// or the demo's emulator, started on an ephemeral loopback port.
pub async fn open_backend(backend: Backend) -> Result<OpenBackend, ServeError> {
    match backend {
        #[cfg(feature = "demo")]
        Backend::Demo {
            jobs,
            latency,
            activity,
        } => {
            let config = sagemaker_emulator::EmulatorConfig {
                jobs,
                seed: DEMO_SEED,
                latency,
                activity: Some(activity),
                ..sagemaker_emulator::EmulatorConfig::default()
            };
            let emulator =
                sagemaker_emulator::Emulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
            tracing::info!(
                jobs,
                endpoint = %emulator.endpoint_url(),
                "demo: serving an in-process SageMaker emulator"
            );
            let endpoint = emulator.endpoint_url();
            Ok(OpenBackend {
                clients: vec![PartitionClient {
                    key: crate::source::PartitionKey::default(),
                    client: crate::source::emulator_client(&endpoint, "us-east-1"),
                    tagging: crate::source::emulator_tagging_client(&endpoint, "us-east-1"),
                }],
                running: Running {
                    emulator: Some(emulator),
                },
            })
        }
        Backend::Aws {
            options,
            regions,
            accounts_file,
            allow_missing_credentials,
        } => {
            let accounts = match &accounts_file {
                Some(path) => Some(AccountsFile::load(path)?),
                None => None,
            };
            let base = sdk_config(&options).await;
            match check_credentials(&base).await {
                Ok(()) => {}
                Err(missing) if allow_missing_credentials => {
                    tracing::warn!(%missing, "starting without AWS credentials: queries will fail with UNAUTHENTICATED");
                }
                Err(missing) => return Err(missing.into()),
            }
            Ok(OpenBackend {
                clients: partition_clients(&base, &regions, accounts.as_ref()).await?,
                running: Running::default(),
            })
        }
    }
}

/// A source per partition, each with its own gates and cache: SageMaker's
/// limits are per account and region.
pub fn partitions(clients: Vec<PartitionClient>, settings: &SourceSettings) -> Partitions {
    Partitions::new(
        clients
            .into_iter()
            .map(|partition| {
                let source =
                    SageMakerSource::new(partition.client, settings.concurrency, settings.retry)
                        .in_partition(&partition.key)
                        .with_list_windows(settings.list_windows)
                        .with_tagging(partition.tagging)
                        .with_cache(settings.cache_ttl, settings.cache_max_jobs);
                Partition {
                    key: partition.key,
                    source: Arc::new(source),
                }
            })
            .collect(),
    )
}
