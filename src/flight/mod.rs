//! The Arrow Flight face of the server.
//!
//! - [`service`]: plain Arrow Flight (the table's descriptor, DoGet of a
//!   path), handing Flight SQL commands to [`SqlService`].
//! - [`sql_service`]: the Flight SQL service's state; [`sql`] its RPCs;
//!   [`statement`] plans, FlightInfo, endpoints and streams; [`prepared`]
//!   and [`bound_parameters`] prepared statements; [`catalog`],
//!   [`sql_info`], `keys.rs` (primary and foreign keys) and `type_info.rs`
//!   (GetXdbcTypeInfo) metadata.
//! - `column_metadata.rs`: the `ARROW:FLIGHT:SQL:*` keys of result and
//!   table schemas.
//! - `encoded_snapshot.rs`: a whole-table read's FlightData, encoded once
//!   and sent as it is made.
//! - [`framed_do_get`]: DoGet's FlightData sent without copying the
//!   batches' bodies (a layer below the transport's others).
//! - `session.rs`: session options (`catalog`, `schema`), carried in a
//!   cookie.
//! - [`cancellation`] and `cancel.rs`: CancelFlightInfo and CancelQuery
//!   stop a query's streams.
//! - [`admission`] and [`limits`]: which query streams run, for how long.
//! - [`ticket`]: the protobuf tickets; [`fleet`]: which instance serves
//!   each partition's endpoint, and which others can; [`fleet_view`]: the
//!   fleet as membership changes it.
//! - [`status`]: the one place where errors become gRPC statuses.
//!
//! May import: `query`, `table`, `source`, `auth`, `obs`.

pub mod admission;
pub mod bound_parameters;
mod cancel;
pub mod cancellation;
pub mod catalog;
mod column_metadata;
mod encoded_snapshot;
pub mod fleet;
pub mod fleet_view;
pub mod framed_do_get;
mod keys;
pub mod limits;
pub mod prepared;
pub mod service;
mod session;
pub mod sql;
pub mod sql_info;
pub mod sql_service;
pub mod statement;
pub mod status;
pub mod ticket;
mod type_info;

pub use admission::QueryGovernor;
pub use fleet::Fleet;
pub use fleet_view::{FleetPublisher, FleetView};
pub use limits::Limits;
pub use service::FlightServer;
pub use sql_service::SqlService;
