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
//!   retries with backoff, and errors mapped to gRPC statuses;
//!   [`source::accounts`] finds the (account, region) partitions (STS,
//!   assumed roles, the Account API) and [`source::Partitions`] holds them,
//!   each with its own source.
//! - [`flight`]: the gRPC service: plain Arrow Flight and Flight SQL on one
//!   port, the protobuf tickets (`proto/ticket.proto`), and
//!   [`flight::fleet`], which spreads the partitions' endpoints over the
//!   instances of a fleet.
//! - Operations: [`settings`] (the `--config` TOML file under flags and
//!   environment), [`metrics`] (Prometheus, `--metrics-listen`) and
//!   [`telemetry`] (the log, text or JSON, and one span per query).
//! - [`emulator`]: a SageMaker emulator speaking AWS JSON 1.1, for the demo,
//!   the tests and the benchmarks.
//! - [`query_cli`]: `sagemaker-flight query`, a Flight SQL client that
//!   prints a statement's rows as a table, CSV, JSON lines or Parquet.

#![warn(missing_docs)]

pub mod auth;
pub mod coalesce;
pub mod config;
pub mod emulator;
pub mod flight;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod query;
pub mod query_cli;
pub mod server;
pub mod settings;
pub mod source;
pub mod table;
pub mod telemetry;
