//! Running the server: build a source per partition, bind, serve until
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::flight::{Fleet, FleetView};
use crate::obs::metrics_listener;
use crate::query::QueryEngine;
use crate::replica::{FreshnessTable, ReplicaStore, StatusBoard};
use crate::server::backend::{OpenBackend, open_backend, partitions};
use crate::server::collector_pool::CollectorPool;
use crate::server::config::{FleetSettings, ServeConfig};
use crate::server::error::ServeError;
use crate::server::grace::serve_with_grace;
use crate::server::health::Health;
use crate::server::membership::{Departure, DnsPeers, Membership, PeerDiscovery};
use crate::server::transport::{flight_service_over, serve_with_health};
use crate::source::{Partition, PartitionKey};
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
    // The store opens, and its latest version is read into memory, on
    // other workers while the AWS configuration loads (mostly CPU): a
    // restart's first query waits for the slower of the two, not both.
    // It finds that version in memory also on a server that collects
    // nothing.
    let open_store = replica.as_ref().map(|settings| {
        let (store, access) = (settings.store.clone(), settings.access.clone());
        let max_rows = table.snapshot_max_rows;
        AbortOnDrop(tokio::spawn(async move {
            let store = ReplicaStore::open_with(&store, &access).await?;
            let store = Arc::new(store.keeping_in_memory(max_rows));
            let warming = AbortOnDrop(tokio::spawn({
                let store = Arc::clone(&store);
                async move {
                    if let Err(error) = store.in_memory().await {
                        tracing::warn!(%error, "cannot read the replica into memory");
                    }
                }
            }));
            Ok::<_, crate::replica::ReplicaError>((store, warming))
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
    // In a fleet, who is there is known before anything is collected, so
    // that a start does not collect what a peer already does.
    let fleet = FleetMembership::start(fleet, &keys).await;
    tracing::info!(partitions = %names.join(", "), fleet = ?fleet.view.current().members(), "reading");
    // With a store: a collector per partition this instance owns keeps it
    // current (the owners change with the fleet), and the table is read
    // from it. The collectors stop with `run`.
    let (replica, _collectors, _warming) = match (&replica, store) {
        (Some(settings), Some((store, warming))) => {
            let collected: Vec<Partition> = if settings.collect {
                partitions.all().to_vec()
            } else {
                Vec::new()
            };
            let board = StatusBoard::default();
            let pool = CollectorPool::new(
                collected,
                Arc::clone(&store),
                settings.schedule,
                board.clone(),
            );
            let collectors = AbortOnDrop(tokio::spawn(pool.follow_changes(fleet.view.clone())));
            tracing::info!(
                store = store.location(),
                collect = settings.collect,
                partitions = keys.len(),
                "answering from the replica"
            );
            let freshness = FreshnessTable::new(Arc::clone(&store), keys.clone(), board);
            (
                Some((store, freshness, settings.changes_buffer_mib)),
                Some(collectors),
                Some(warming),
            )
        }
        _ => (None, None, None),
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
        .with_fleet_view(fleet.view.clone());
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
    let (health, health_service) = Health::serving().await;
    let shutdown = fleet.leave_first(shutdown, health.clone(), limits.shutdown_grace);
    // On shutdown, running queries get --shutdown-grace to finish.
    let result = serve_with_grace(shutdown, limits.shutdown_grace, &governor, |signal| {
        serve_with_health(
            listener,
            service,
            access.tls.as_ref(),
            (health, health_service),
            signal,
        )
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

/// This instance's fleet as its membership keeps it (fixed when alone).
struct FleetMembership {
    view: FleetView,
    /// Takes this instance out on shutdown; `None`: alone.
    departure: Option<Departure>,
    /// How long peers take to see a change: one check, and its timeout.
    notice: Duration,
    /// The health checks of the peers, until `run` returns.
    _checks: Option<AbortOnDrop>,
}

impl FleetMembership {
    /// Alone without `--advertise`; else a first round of the peers'
    /// health checks, then a round every check interval.
    async fn start(settings: FleetSettings, keys: &[PartitionKey]) -> FleetMembership {
        let Some(own) = settings.advertise else {
            return FleetMembership {
                view: FleetView::fixed(Fleet::default().assign(keys)),
                departure: None,
                notice: Duration::ZERO,
                _checks: None,
            };
        };
        let discovery = settings
            .peers_dns
            .map(|name| Box::new(DnsPeers::new(name)) as Box<dyn PeerDiscovery>);
        let notice = 2 * settings.membership.check_interval;
        let mut membership = Membership::new(
            own,
            settings.peers,
            discovery,
            settings.tls,
            settings.membership,
            keys.to_vec(),
        );
        membership.check_once().await;
        FleetMembership {
            view: membership.view(),
            departure: Some(membership.departure()),
            notice,
            _checks: Some(AbortOnDrop(tokio::spawn(membership.run()))),
        }
    }

    /// `shutdown`, then, in a fleet, this instance out of it: its
    /// endpoints name the others, its health says NOT_SERVING, and it
    /// keeps serving for as long as its peers take to see that (bounded
    /// by `grace`), so that no client is sent to it once it stops
    /// accepting.
    fn leave_first(
        &self,
        shutdown: impl Future<Output = ()> + Send,
        health: Health,
        grace: Duration,
    ) -> impl Future<Output = ()> + Send {
        let departure = self.departure.clone();
        let notice = self.notice.min(grace);
        async move {
            shutdown.await;
            if let Some(departure) = departure {
                departure.leave();
                health.not_serving().await;
                tracing::info!(
                    ?notice,
                    "leaving the fleet: peers stop naming this instance"
                );
                tokio::time::sleep(notice).await;
            }
        }
    }
}
