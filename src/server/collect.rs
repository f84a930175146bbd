//! `sagemaker-flight collect`: the replica's collectors without a Flight
//! server, for a store that servers elsewhere read. With `once`, each
//! partition's collector runs what is due (the first full scan or a
//! refresh, then a tags refresh if the store's last one is older than the
//! tags refresh interval) and the process exits: a cron job or a
//! Kubernetes Job.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::obs::metrics_listener;
use crate::replica::{Collector, ReplicaStore, StatusBoard};
use crate::server::backend::{OpenBackend, open_backend, partitions};
use crate::server::collector_pool::CollectorPool;
use crate::server::config::{Backend, ReplicaSettings, SourceSettings};
use crate::server::error::ServeError;
use crate::server::run::cannot_listen;

/// Everything `collect` needs.
#[derive(Debug)]
pub struct CollectConfig {
    /// Where the rows come from.
    pub backend: Backend,
    /// How each partition calls SageMaker.
    pub source: SourceSettings,
    /// The store and the collectors' cadences.
    pub replica: ReplicaSettings,
    /// One pass per partition, then exit.
    pub once: bool,
    /// The Prometheus listener's address, if any.
    pub metrics_listen: Option<SocketAddr>,
}

/// Collects every partition of `config.backend` into the store: one pass
/// each with `once` (an error if any failed, naming each), else on the
/// schedule until `shutdown`. Prints one line per pass made with `once`.
pub async fn collect(
    config: CollectConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let CollectConfig {
        backend,
        source,
        replica,
        once,
        metrics_listen,
    } = config;
    let _metrics = metrics_listener::listen(metrics_listen)
        .await
        .map_err(|error| cannot_listen(metrics_listen, "--metrics-listen", &error))?;
    let OpenBackend { clients, running } = open_backend(backend).await?;
    let partitions = partitions(clients, &source);
    let keys: Vec<_> = partitions.all().iter().map(|p| p.key.clone()).collect();
    crate::source::operations::preregister_metrics(&keys);
    let store = Arc::new(ReplicaStore::open_with(&replica.store, &replica.access).await?);
    let result = if once {
        let schedule = replica.schedule;
        let passes = partitions.all().iter().map(|partition| {
            let collector = Collector::new(partition.clone(), Arc::clone(&store));
            async move {
                (
                    partition.key.to_string(),
                    collector.run_due(&schedule).await,
                )
            }
        });
        let mut failed = Vec::new();
        for (partition, passes) in futures::future::join_all(passes).await {
            match passes {
                Ok(passes) => {
                    for (kind, report) in passes {
                        println!(
                            "collected {partition}: {}, {} rows written, {} removed; described {} new and {} known jobs",
                            kind.replace('_', " "),
                            report.written,
                            report.removed,
                            report.new,
                            report.rechecked
                        );
                    }
                }
                Err(error) => failed.push(format!("{partition}: {error}")),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("collecting failed for {}", failed.join("; ")).into())
        }
    } else {
        let mut collectors = CollectorPool::new(
            partitions.all().to_vec(),
            Arc::clone(&store),
            replica.schedule,
            StatusBoard::default(),
        );
        collectors.collect_all();
        tracing::info!(
            store = store.location(),
            partitions = keys.len(),
            "collecting"
        );
        shutdown.await;
        Ok(())
    };
    running.shutdown().await;
    result
}
