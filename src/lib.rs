//! sagemaker-flight: AWS SageMaker compilation jobs (SageMaker Neo) as an
//! Arrow Flight table, `aws.sagemaker_compilation_job`.
//!
//! # Layout
//!
//! - [`config`]: the command line (clap), every option also an env var.
//! - [`auth`]: who may call: bearer tokens, Basic credentials exchanged
//!   through Handshake, TLS and mutual TLS, and the refusal to serve a
//!   network without authentication.
//! - [`server`]: binds, builds the source, serves until shutdown;
//!   [`limits`] bounds each query (time, concurrency, memory) and the
//!   shutdown grace; [`health`] is the gRPC health service;
//!   [`coalesce`] turns its many small HTTP/2 writes into few large ones.
//! - [`table`]: the table: [`table::schema`] (the one place that spells
//!   column names and types), [`table::convert`] (SageMaker answers to
//!   record batches), [`table::batches`] (streaming batches as rows complete),
//!   [`table::pushdown`] (SQL filters to API parameters), [`table::provider`]
//!   (the DataFusion TableProvider) and [`table::exec`] (the scan plan and
//!   the calls it makes).
//! - [`query`]: the DataFusion session, read-only, and SQL errors mapped
//!   to gRPC statuses.
//! - [`source`]: the SageMaker client, listing, concurrent describes, tags,
//!   retries with backoff, and errors mapped to gRPC statuses.
//! - [`flight`]: the gRPC service: plain Arrow Flight and Flight SQL on one
//!   port, and the protobuf tickets (`proto/ticket.proto`).
//! - [`emulator`]: a SageMaker emulator speaking AWS JSON 1.1, for the demo,
//!   the tests and the benchmarks.

#![warn(missing_docs)]

pub mod auth;
pub mod coalesce;
pub mod config;
pub mod emulator;
pub mod flight;
pub mod health;
pub mod limits;
pub mod query;
pub mod server;
pub mod source;
pub mod table;
