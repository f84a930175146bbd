//! The server process: wiring, transport and shutdown.
//!
//! - [`config`]: what `serve` is asked to do ([`ServeConfig`]).
//! - [`backend`]: a SageMaker client and a source per partition (AWS or
//!   the demo's emulator), for `serve` and `collect`.
//! - [`collect`]: `collect`, the replica's collectors without a server;
//!   `collector_pool.rs`: the collectors a process runs, following the
//!   fleet.
//! - [`membership`]: who is in the fleet now (peers' health, DNS).
//! - [`run`]: builds the partitions' sources and the Flight service, binds,
//!   serves until shutdown.
//! - [`transport`]: the gRPC server: layers, TLS, TCP_NODELAY, health.
//! - [`error`]: what stops the server.
//! - [`grace`]: the end: running queries get a grace period, then stop.
//! - [`health`]: `grpc.health.v1` on the Flight port.
//! - [`coalesce`]: many small HTTP/2 writes become few large ones.
//!
//! May import every layer below: `flight`, `query`, `replica`, `table`,
//! `source`, `auth`, `obs`.

pub mod backend;
pub mod coalesce;
pub mod collect;
mod collector_pool;
pub mod config;
pub mod error;
pub mod grace;
pub mod health;
pub mod membership;
pub mod run;
pub mod transport;

pub use config::{
    Backend, DEFAULT_DEMO_JOBS, DEFAULT_DEMO_LATENCY, DEFAULT_LISTEN, FleetSettings,
    ReplicaSettings, ServeConfig, SourceSettings,
};
pub use error::ServeError;
pub use run::run;
pub use transport::{
    MAX_MESSAGE_BYTES, flight_service, flight_service_over, serve, serve_with_tls,
};
