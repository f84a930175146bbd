//! Running the server: build a source per partition, bind, serve until
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::obs::metrics_listener;
use crate::query::QueryEngine;
use crate::replica::{Collector, FreshnessTable, ReplicaStore, Schedule, StatusBoard};
use crate::server::backend::{OpenBackend, open_backend, partitions};
use crate::server::config::ServeConfig;
use crate::server::error::ServeError;
use crate::server::grace::serve_with_grace;
use crate::server::transport::{flight_service_over, serve_with_tls};
use crate::source::Partition;
use crate::task::AbortOnDrop;

/// `sagemaker-flight serve`: binds `config.listen`, prints the address, and
/// serves AWS (or, with `--demo`, an in-process emulator) until `shutdown`.
/// Refuses to start on a non-loopback address with no authentication
/// unless `--allow-unauthenticated` ([`crate::auth::Access::check_listener`]).
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let ServeConfig {
        listen,
        backend,
        source,
        table,
        limits,
        access,
        fleet,
        metrics_listen,
        replica,
    } = config;
    access.check_listener(listen)?;
    // Prometheus metrics on their own port, until `run` returns.
    let _metrics = metrics_listener::listen(metrics_listen)
        .await
        .map_err(|error| cannot_listen(metrics_listen, "--metrics-listen", &error))?;
    if !access.authenticates() {
        tracing::info!("no authentication configured: anyone who can connect may read");
    }
    // The store opens on another worker while the AWS configuration loads
    // (mostly CPU): a restart waits for the slower of the two, not both.
    let open_store = replica.as_ref().map(|settings| {
        let (store, access) = (settings.store.clone(), settings.access.clone());
        AbortOnDrop(tokio::spawn(async move {
            ReplicaStore::open_with(&store, &access).await
        }))
    });
    let OpenBackend { clients, running } = open_backend(backend).await?;
    let store = match open_store {
        Some(opening) => Some(opening.join().await??),
        None => None,
    };
    let partitions = partitions(clients, &source);
    // Every known series at zero from the first scrape on.
    let keys: Vec<_> = partitions.all().iter().map(|p| p.key.clone()).collect();
    crate::source::operations::preregister_metrics(&keys);
    crate::obs::metrics::preregister_process();
    crate::obs::grpc_metrics::preregister();
    let names: Vec<_> = partitions.all().iter().map(|p| p.key.to_string()).collect();
    tracing::info!(partitions = %names.join(", "), fleet = ?fleet.members(), "reading");
    // With a store: a collector per partition keeps it current, and the
    // table is read from it. The collectors stop with `run`.
    // In a fleet sharing one store, each partition's owner collects it.
    let fleet = fleet.assign(&keys);
    let (replica, _collectors, _warming) = match (&replica, store) {
        (Some(settings), Some(store)) => {
            let store = Arc::new(store.keeping_in_memory(table.snapshot_max_rows));
            // The first query finds the latest version in memory, also
            // on a server that collects nothing.
            let warming = AbortOnDrop(tokio::spawn({
                let store = Arc::clone(&store);
                async move {
                    if let Err(error) = store.in_memory().await {
                        tracing::warn!(%error, "cannot read the replica into memory");
                    }
                }
            }));
            let mine: Vec<Partition> = partitions
                .all()
                .iter()
                .filter(|partition| settings.collect && fleet.is_mine(&partition.key))
                .cloned()
                .collect();
            let board = StatusBoard::default();
            let collectors = spawn_collectors(&mine, &store, settings.schedule, &board);
            tracing::info!(
                store = store.location(),
                collecting = mine.len(),
                of = keys.len(),
                "answering from the replica"
            );
            let collected_here = mine.into_iter().map(|partition| partition.key).collect();
            let freshness =
                FreshnessTable::new(Arc::clone(&store), keys.clone(), collected_here, board);
            (
                Some((store, freshness, settings.changes_buffer_mib)),
                collectors,
                Some(warming),
            )
        }
        _ => (None, Vec::new(), None),
    };
    let engine = QueryEngine::with_memory_limit(partitions, table, limits.memory_limit)?;
    let engine = match replica {
        Some((store, freshness, changes_buffer_mib)) => engine
            .with_replica(store, freshness)?
            .with_feed_buffer(changes_buffer_mib)?,
        None => engine,
    };
    let service = flight_service_over(engine, &limits)?
        .with_auth(access.auth.authenticator())
        .with_fleet(fleet);
    let governor = service.governor().clone();
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| cannot_listen(Some(listen), "--listen", &error))?;
    let address = listener.local_addr()?;
    let scheme = if access.tls.is_some() {
        "grpc+tls"
    } else {
        "grpc"
    };
    // Scripts and tests wait for this line to learn the (maybe ephemeral) port.
    println!("sagemaker-flight listening on {scheme}://{address}");
    tracing::info!(%address, tls = access.tls.is_some(), "Flight server listening");
    // On shutdown, running queries get --shutdown-grace to finish.
    let result = serve_with_grace(shutdown, limits.shutdown_grace, &governor, |signal| {
        serve_with_tls(listener, service, access.tls.as_ref(), signal)
    })
    .await;
    running.shutdown().await;
    result
}

/// The error of a listener that could not bind, naming it: which of the
/// server's ports is taken is the first thing to know.
pub(crate) fn cannot_listen(
    address: Option<SocketAddr>,
    flag: &str,
    error: &std::io::Error,
) -> ServeError {
    match address {
        Some(address) => format!("cannot listen on {address} ({flag}): {error}").into(),
        None => format!("cannot listen ({flag}): {error}").into(),
    }
}

/// A collector task per partition of `partitions`, keeping `store` current
/// by `schedule` and reporting to `board`; each is aborted when its handle is dropped.
pub(crate) fn spawn_collectors(
    partitions: &[Partition],
    store: &Arc<ReplicaStore>,
    schedule: Schedule,
    board: &StatusBoard,
) -> Vec<AbortOnDrop> {
    partitions
        .iter()
        .map(|partition| {
            let collector =
                Collector::new(partition.clone(), Arc::clone(store)).reporting_to(board.clone());
            AbortOnDrop(tokio::spawn(async move {
                collector.run_every(schedule).await;
            }))
        })
        .collect()
}
