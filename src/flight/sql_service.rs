//! The Flight SQL service: its state and how it is built. What it answers
//! is spread by concern: `statement.rs` (plans, FlightInfo, endpoints,
//! streams), `prepared.rs` (prepared statements and bound parameters),
//! `catalog.rs` and `sql_info.rs` (metadata), `sql.rs` (the RPCs).
//!
//! Tickets are stateless: a statement's ticket and a prepared statement's
//! handle are the protobuf [`Statement`] (SQL plus bound parameters), so any
//! instance can serve any ticket. Binding parameters through DoPut answers
//! with a new handle that carries them, as Flight SQL allows. Some clients
//! (older JDBC drivers, flightsql-dbapi) ignore that new handle and execute
//! the one they had; for them the server also remembers, in a small bounded
//! map, the parameters last bound to each prepared handle, until it is
//! closed or pushed out. Only that fallback is per-instance.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::SqlInfoData;
use futures::stream::Stream;
use tonic::Status;

use crate::auth::Authenticator;
use crate::flight::admission::QueryGovernor;
use crate::flight::bound_parameters::BoundParameters;
use crate::flight::cancellation::Cancellations;
use crate::flight::encoded_snapshot::EncodedSnapshot;
use crate::flight::fleet::Fleet;
use crate::flight::fleet_view::FleetView;
use crate::flight::limits::Limits;
use crate::flight::sql_info::sql_info;
use crate::query::QueryEngine;

/// A stream of answers, as the Flight SQL service returns them.
pub type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Flight SQL over the query engine.
#[derive(Clone)]
pub struct SqlService {
    pub(super) engine: QueryEngine,
    /// GetSqlInfo's answer, built once.
    pub(super) sql_info: Arc<SqlInfoData>,
    /// Parameters last bound per prepared handle, for clients that keep
    /// using their old handle after DoPut.
    pub(super) bound: Arc<Mutex<BoundParameters>>,
    /// The FlightData of the table's current snapshot, encoded once.
    pub(super) encoded_snapshot: Arc<EncodedSnapshot>,
    /// Checks Handshake credentials; `None`: anyone may call.
    pub(super) auth: Option<Authenticator>,
    /// Admits, times and cancels query streams (`admission.rs`).
    pub(super) governor: QueryGovernor,
    /// Which instances each partition's endpoint names, as they are now.
    pub(super) fleet: FleetView,
    /// The running streams a CancelFlightInfo stops (`cancellation.rs`).
    pub(super) cancellations: Cancellations,
}

impl std::fmt::Debug for SqlService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlService")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl SqlService {
    /// The service over `engine`.
    pub fn new(engine: QueryEngine) -> Result<SqlService, FlightError> {
        let governor = QueryGovernor::new(&Limits::default());
        Ok(SqlService {
            engine,
            sql_info: Arc::new(sql_info(&governor)?),
            bound: Arc::default(),
            encoded_snapshot: Arc::default(),
            auth: None,
            governor,
            fleet: FleetView::fixed(Fleet::default()),
            cancellations: Cancellations::default(),
        })
    }

    /// The service with query streams admitted, timed and cancelled by
    /// `governor` (and GetSqlInfo saying its limits).
    pub fn with_governor(self, governor: QueryGovernor) -> Result<SqlService, FlightError> {
        Ok(SqlService {
            sql_info: Arc::new(sql_info(&governor)?),
            governor,
            ..self
        })
    }

    /// What admits, times and cancels query streams.
    pub fn governor(&self) -> &QueryGovernor {
        &self.governor
    }

    /// The service with Handshake checking credentials with `auth` (`None`:
    /// any Handshake succeeds). The other RPCs are guarded by
    /// [`crate::auth::RequireAuth`] around the gRPC service.
    pub fn with_auth(self, auth: Option<Authenticator>) -> SqlService {
        SqlService { auth, ..self }
    }

    /// The service naming, in each partition's endpoint, the member of
    /// `fleet` that owns it, then the others (`fleet.rs`).
    pub fn with_fleet(self, fleet: Fleet) -> SqlService {
        let keys = self.engine.partitions().all().iter().map(|p| &p.key);
        let fleet = FleetView::fixed(fleet.assign(keys));
        self.with_fleet_view(fleet)
    }

    /// As [`SqlService::with_fleet`], with the fleet as `fleet` says it is
    /// at each query (its owners assigned by whoever publishes it).
    pub fn with_fleet_view(self, fleet: FleetView) -> SqlService {
        SqlService { fleet, ..self }
    }

    /// The authenticator, if authentication is configured.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }
}
