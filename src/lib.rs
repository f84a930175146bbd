//! sagemaker-flight: AWS SageMaker compilation jobs (SageMaker Neo) as an
//! Arrow Flight table, `aws.sagemaker_compilation_job`.
//!
//! # The data path, by layer
//!
//! A request goes down these layers, and record batches come back up. Each
//! layer imports only the layers below it, and errors become gRPC statuses
//! in one place, [`flight::status`].
//!
//! - [`server`]: the process: wiring ([`server::run`] from a
//!   [`server::ServeConfig`]), transport (TLS, TCP_NODELAY, coalesced
//!   writes), shutdown grace, gRPC health, the fleet's membership (peers'
//!   health, DNS) and the collectors that follow it.
//! - [`flight`]: Arrow Flight and Flight SQL on one port: the service,
//!   statements and their endpoints, prepared statements, catalog metadata,
//!   query admission and limits, tickets, the fleet, errors as statuses.
//! - [`auth`]: who may call: bearer tokens, Basic credentials exchanged
//!   through Handshake, TLS and mutual TLS, the loopback rule.
//! - [`query`]: the DataFusion session, read-only, and splitting a plan by
//!   partition.
//! - [`replica`]: the table kept in a Delta Lake store by a collector per
//!   partition, read by queries when the server has `--store`.
//! - [`table`]: the table: its schema (the one place that spells columns),
//!   SageMaker answers to record batches, SQL filters to API parameters,
//!   the TableProvider, the scan and the snapshot.
//! - [`source`]: SageMaker: listing, per-job describes and tags, gates and
//!   the rate controller, retries, the cache, accounts and regions.
//! - [`obs`]: metrics (plain labels), the gRPC metrics layer, `/metrics`,
//!   the log and the per-query span.
//! - [`task`]: spawned tasks that stop when their holder is dropped.
//!
//! The command line (clap, the `--config` file, the `query` client) lives
//! in the binary (`src/cli/`) and turns its options into this library's
//! types; the SageMaker emulator is its own crate (`emulator/`).

#![warn(missing_docs)]

pub mod auth;
pub mod flight;
pub mod obs;
pub mod query;
pub mod replica;
pub mod server;
pub mod source;
pub mod table;
pub mod task;
