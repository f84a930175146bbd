//! Running the server: build the source, bind, serve until shutdown.

use std::future::Future;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use crate::coalesce::CoalescingStream;
use crate::config::ServeArgs;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::flight::{FlightServer, SqlService};
use crate::query::QueryEngine;
use crate::source::{SageMakerSource, emulator_client, sagemaker_client};
use crate::table::TableOptions;

/// Largest gRPC message accepted or sent. tonic's default of 4 MiB is too
/// small for big batches and big parameter sets; clients raise theirs too.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Errors that stop the server.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Jobs and latency of the `--demo` emulator's seed.
const DEMO_SEED: u64 = 7;

/// The Flight service over `source`: SQL engine, Flight SQL, plain Flight.
pub fn flight_service(
    source: Arc<SageMakerSource>,
    options: TableOptions,
) -> Result<FlightServer, ServeError> {
    let engine = QueryEngine::new(source, options)?;
    Ok(FlightServer::new(SqlService::new(engine)?))
}

/// Serves `service` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    service: FlightServer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let flight = FlightServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Small gRPC messages must not wait for Nagle's algorithm and the peer's
    // delayed ACK (about 40 ms per exchange). tonic sets TCP_NODELAY only on
    // sockets it accepts itself, so set it here.
    // Large results go out in large writes, not one per HTTP/2 frame
    // (`coalesce.rs`).
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        accepted.map(CoalescingStream::new)
    });
    tonic::transport::Server::builder()
        .add_service(flight)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// `sagemaker-flight serve`: binds `args.listen`, prints the address, and
/// serves AWS (or, with `--demo`, an in-process emulator) until `shutdown`.
pub async fn run(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let mut demo_emulator = None;
    let client = if args.demo {
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
        client
    } else {
        sagemaker_client(&args.aws.options()).await
    };
    let source = Arc::new(
        SageMakerSource::new(client, args.concurrency as usize, args.retry_policy())
            .with_list_windows(args.list_windows as usize)
            .with_cache(
                std::time::Duration::from_secs(args.cache_ttl),
                args.cache_max_jobs,
            ),
    );
    let options = TableOptions {
        filter_pushdown: !args.no_filter_pushdown,
        snapshot_ttl: std::time::Duration::from_secs(args.snapshot_ttl),
        snapshot_max_rows: args.cache_max_jobs,
        ..TableOptions::default()
    };
    let service = flight_service(source, options)?;
    let listener = TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    // Scripts and tests wait for this line to learn the (maybe ephemeral) port.
    println!("sagemaker-flight listening on grpc://{address}");
    tracing::info!(%address, "Flight server listening");
    let result = serve(listener, service, shutdown).await;
    if let Some(emulator) = demo_emulator {
        emulator.shutdown().await;
    }
    result
}
