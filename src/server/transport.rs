//! The transport: the Flight service behind its layers (metrics,
//! authentication), gRPC health beside it, TCP_NODELAY, TLS or coalesced
//! plaintext writes, DoGet framed without copies, until shutdown.

use std::future::Future;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::pb::health_server::HealthServer;

use crate::auth::{RequireAuth, TlsConfig};
use crate::flight::framed_do_get::FramedDoGet;
use crate::flight::{FlightServer, Limits, QueryGovernor, SqlService};
use crate::obs::grpc_metrics::CountGrpcRequests;
use crate::query::QueryEngine;
use crate::server::coalesce::CoalescingStream;
use crate::server::error::ServeError;
use crate::server::health::{EndingWatches, Health};
use crate::source::Partitions;
use crate::table::TableOptions;

/// Largest gRPC message accepted or sent. tonic's default of 4 MiB is too
/// small for big batches and big parameter sets; clients raise theirs too.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The Flight service over `source`: SQL engine, Flight SQL, plain Flight,
/// under `limits`.
pub fn flight_service(
    source: impl Into<Partitions>,
    options: TableOptions,
    limits: &Limits,
) -> Result<FlightServer, ServeError> {
    let engine = QueryEngine::with_memory_limit(source, options, limits.memory_limit)?;
    flight_service_over(engine, limits)
}

/// The Flight service answering from `engine` (built by the caller, e.g.
/// with a replica), admitting queries by `limits`.
pub fn flight_service_over(
    engine: QueryEngine,
    limits: &Limits,
) -> Result<FlightServer, ServeError> {
    let sql = SqlService::new(engine)?.with_governor(QueryGovernor::new(limits))?;
    Ok(FlightServer::new(sql).with_keepalive(limits.keepalive_interval))
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
    serve_with_health(listener, service, tls, Health::serving().await, shutdown).await
}

/// As [`serve_with_tls`], with `health` answering beside the Flight
/// service: SERVING until the caller (or the shutdown) says otherwise.
pub async fn serve_with_health(
    listener: TcpListener,
    service: FlightServer,
    tls: Option<&TlsConfig>,
    (health, health_service): (Health, HealthServer<EndingWatches>),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let auth = service.authenticator().cloned();
    let keepalive = service.keepalive();
    let flight = FlightServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // DoGet streams sent without copying their bodies (`flight/framed_do_get.rs`).
    let flight = FramedDoGet::new(flight, MAX_MESSAGE_BYTES);
    // Counted outside authentication, so refused calls count too.
    let flight = CountGrpcRequests::new(RequireAuth::new(flight, auth));
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
    // until shutdown starts, NOT_SERVING from then on (`server/health.rs`).
    let shutdown = async move {
        shutdown.await;
        health.not_serving().await;
    };
    // Pings on a quiet connection: a query that computes for minutes
    // before its first batch is not cut by a proxy's idle timeout.
    let mut builder = tonic::transport::Server::builder().http2_keepalive_interval(keepalive);
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
        // (`server/coalesce.rs`).
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
