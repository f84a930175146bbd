//! Running the server: build the source, bind, serve until shutdown.

use std::future::Future;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use crate::auth::{Access, RequireAuth, TlsConfig};
use crate::coalesce::CoalescingStream;
use crate::config::ServeArgs;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::flight::{FlightServer, SqlService};
use crate::health::Health;
use crate::limits::{Limits, QueryGovernor, serve_with_grace};
use crate::query::QueryEngine;
use crate::source::accounts::{AccountsFile, PartitionClient, partition_clients};
use crate::source::{
    Partition, PartitionKey, Partitions, SageMakerSource, emulator_client, sdk_config,
};
use crate::table::TableOptions;

/// Largest gRPC message accepted or sent. tonic's default of 4 MiB is too
/// small for big batches and big parameter sets; clients raise theirs too.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Errors that stop the server.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Jobs and latency of the `--demo` emulator's seed.
const DEMO_SEED: u64 = 7;

/// The Flight service over `source`: SQL engine, Flight SQL, plain Flight,
/// under the default [`Limits`].
pub fn flight_service(
    source: impl Into<Partitions>,
    options: TableOptions,
) -> Result<FlightServer, ServeError> {
    flight_service_with_limits(source, options, &Limits::default())
}

/// As [`flight_service`], under `limits` (`limits.rs`).
pub fn flight_service_with_limits(
    source: impl Into<Partitions>,
    options: TableOptions,
    limits: &Limits,
) -> Result<FlightServer, ServeError> {
    let engine = QueryEngine::with_limits(source, options, limits)?;
    let sql = SqlService::new(engine)?.with_governor(QueryGovernor::new(limits));
    Ok(FlightServer::new(sql))
}

/// Serves `service` on `listener` until `shutdown` resolves, in plaintext.
/// If `service` has an authenticator ([`FlightServer::with_auth`]), every
/// RPC but Handshake needs a valid bearer token.
pub async fn serve(
    listener: TcpListener,
    service: FlightServer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_with_tls(listener, service, None, shutdown).await
}

/// As [`serve`], with TLS (and client certificates, if `tls` names a
/// client CA) when `tls` is given.
pub async fn serve_with_tls(
    listener: TcpListener,
    service: FlightServer,
    tls: Option<&TlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let auth = service.authenticator().cloned();
    let flight = FlightServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Counted outside authentication, so refused calls count too.
    let flight = crate::metrics::CountGrpcRequests::new(RequireAuth::new(flight, auth));
    // Small gRPC messages must not wait for Nagle's algorithm and the peer's
    // delayed ACK (about 40 ms per exchange). tonic sets TCP_NODELAY only on
    // sockets it accepts itself, so set it here.
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        accepted
    });
    // grpc.health.v1 on the same port (outside authentication): SERVING
    // until shutdown starts, NOT_SERVING from then on (`health.rs`).
    let (health, health_service) = Health::serving().await;
    let shutdown = async move {
        shutdown.await;
        health.not_serving().await;
    };
    let mut builder = tonic::transport::Server::builder();
    match tls {
        // tonic's TLS runs over the TCP stream itself: `CoalescingStream`
        // below TLS would hold back the TLS handshake's last flight (its
        // deferred flush counts on a second flush that rustls's handshake
        // never makes).
        Some(tls) => {
            builder
                .tls_config(tls.server_tls_config())?
                .add_service(health_service)
                .add_service(flight)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        // Large results go out in large writes, not one per HTTP/2 frame
        // (`coalesce.rs`).
        None => {
            let incoming = incoming.map(|accepted| accepted.map(CoalescingStream::new));
            builder
                .add_service(health_service)
                .add_service(flight)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
    }
    Ok(())
}

/// `sagemaker-flight serve`: binds `args.listen`, prints the address, and
/// serves AWS (or, with `--demo`, an in-process emulator) until `shutdown`.
/// Refuses to start on a non-loopback address with no authentication
/// unless `--allow-unauthenticated` ([`Access::check_listener`]).
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let access = Access::from_args(&args.access, |name| std::env::var(name).ok())?;
    access.check_listener(args.listen)?;
    // Prometheus metrics on their own port, until `run` returns.
    let _metrics = crate::metrics::listen(args.operations.metrics_listen).await?;
    if !access.authenticates() {
        tracing::info!("no authentication configured: anyone who can connect may read");
    }
    let fleet = args.fleet.fleet(access.tls.is_some())?;
    let mut demo_emulator = None;
    let clients = if args.demo {
        let config = EmulatorConfig {
            jobs: args.demo_jobs,
            seed: DEMO_SEED,
            latency: std::time::Duration::from_millis(args.demo_latency_ms),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config, ([127, 0, 0, 1], 0).into()).await?;
        tracing::info!(
            jobs = args.demo_jobs,
            endpoint = %emulator.endpoint_url(),
            "demo: serving an in-process SageMaker emulator"
        );
        let client = emulator_client(&emulator.endpoint_url(), "us-east-1");
        demo_emulator = Some(emulator);
        vec![PartitionClient {
            key: PartitionKey::default(),
            client,
        }]
    } else {
        let accounts = match &args.aws.accounts_file {
            Some(path) => Some(AccountsFile::load(path)?),
            None => None,
        };
        let base = sdk_config(&args.aws.options()).await;
        partition_clients(&base, &args.aws.regions, accounts.as_ref()).await?
    };
    // Each partition has its own gates and cache: SageMaker's limits are
    // per account and region.
    let partitions = Partitions::new(
        clients
            .into_iter()
            .map(|partition| {
                let source = SageMakerSource::new(
                    partition.client,
                    args.concurrency as usize,
                    args.retry_policy(),
                )
                .in_partition(&partition.key)
                .with_list_windows(args.list_windows as usize)
                .with_cache(
                    std::time::Duration::from_secs(args.cache_ttl),
                    args.cache_max_jobs,
                );
                Partition {
                    key: partition.key,
                    source: Arc::new(source),
                }
            })
            .collect(),
    );
    let names: Vec<_> = partitions.all().iter().map(|p| p.key.to_string()).collect();
    tracing::info!(partitions = %names.join(", "), fleet = ?fleet.members(), "reading");
    let options = TableOptions {
        filter_pushdown: !args.no_filter_pushdown,
        snapshot_ttl: std::time::Duration::from_secs(args.snapshot_ttl),
        snapshot_max_rows: args.cache_max_jobs,
        ..TableOptions::default()
    };
    let limits = args.limits.limits();
    let service = flight_service_with_limits(partitions, options, &limits)?
        .with_auth(access.auth.authenticator())
        .with_fleet(fleet);
    let governor = service.governor().clone();
    let listener = TcpListener::bind(args.listen).await?;
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
    if let Some(emulator) = demo_emulator {
        emulator.shutdown().await;
    }
    result
}
