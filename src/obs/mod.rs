//! Observability: what an operator sees of the server.
//!
//! - [`metrics`]: the process's Prometheus registry, counted where things
//!   happen, with plain labels (it knows no partition or error type).
//! - [`grpc_metrics`]: the tower layer that counts Flight RPCs by method
//!   and final status.
//! - [`metrics_listener`]: `GET /metrics` on a port of its own.
//! - [`logging`]: the log on stderr, text or JSON.
//! - [`query_span`]: one span per query, with the calls it made.
//!
//! May import: nothing of this crate outside `obs` (every layer above
//! counts and logs through it).

pub mod grpc_metrics;
pub mod logging;
pub mod metrics;
pub mod metrics_listener;
pub mod query_span;
