//! Statements: planning with bound parameters (over one partition when the
//! ticket names it), the FlightInfo and its endpoints, and the governed
//! stream of FlightData, from a fresh snapshot when one answers.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlanProperties;
use futures::stream::{self, StreamExt, TryStreamExt};
use prost::Message;
use tonic::Status;

use crate::flight::column_metadata::{statement_schema, whole_table_schema};
use crate::flight::prepared::decode_parameters;
use crate::flight::sql_service::{BoxedStream, SqlService};
use crate::flight::status::{cap_message, status_of_datafusion};
use crate::flight::ticket::Statement;
use crate::obs::query_span::logged_sql;
use crate::query::PlannedQuery;
use crate::source::PartitionKey;

/// Largest FlightData message the encoder produces.
const MAX_FLIGHT_DATA_BYTES: usize = 4 * 1024 * 1024;

impl SqlService {
    /// The logical plan of a statement, with its bound parameters, and the
    /// partition its ticket names, if any. A partition this server does
    /// not read is FAILED_PRECONDITION: the ticket came from an instance
    /// configured with other accounts or regions.
    async fn bound_plan(
        &self,
        statement: &Statement,
    ) -> Result<(LogicalPlan, Option<PartitionKey>), Status> {
        let parameters = decode_parameters(&statement.parameters)?;
        let scope = statement.partition_key();
        if let Some(key) = &scope
            && self.engine.partitions().get(key).is_none()
        {
            return Err(Status::failed_precondition(cap_message(format!(
                "this server does not read partition {key}; the instances of a fleet must be configured with the same accounts and regions"
            ))));
        }
        let plan = self
            .engine
            .bound_plan(&statement.sql, parameters, &statement.name_defaults())
            .await?;
        Ok((plan, scope))
    }

    /// Plans a statement with its bound parameters, over its partition if
    /// its ticket names one ([`SqlService::bound_plan`]).
    async fn plan(&self, statement: &Statement) -> Result<PlannedQuery, Status> {
        let (plan, scope) = self.bound_plan(statement).await?;
        Ok(self.engine.physical_plan(plan, scope.as_ref()).await?)
    }

    /// The FlightInfo of a statement: the exact schema DoGet will stream,
    /// and its endpoints ([`SqlService::endpoints`]). A statement refused
    /// here (most clients plan at GetFlightInfo) is logged, as a query
    /// refused at DoGet is.
    pub async fn statement_flight_info(
        &self,
        statement: &Statement,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let info = self.planned_flight_info(statement, descriptor).await;
        if let Err(status) = &info {
            tracing::info!(
                sql = %logged_sql(&statement.sql),
                code = ?status.code(),
                // Not `message`: that is the event's own field.
                error = status.message(),
                "statement refused"
            );
        }
        info
    }

    async fn planned_flight_info(
        &self,
        statement: &Statement,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        // Planned once: the same logical plan gives the schema and the split.
        let (plan, scope) = self.bound_plan(statement).await?;
        let statement = statement.clone().for_one_query();
        let endpoints = self.endpoints(&statement, &plan)?;
        let planned = self.engine.physical_plan(plan, scope.as_ref()).await?;
        let (records, bytes) = self.totals(&statement).await?;
        let mut info = FlightInfo::new()
            .try_with_schema(&statement_schema(&planned))
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?
            .with_descriptor(descriptor)
            .with_total_records(records)
            .with_total_bytes(bytes);
        for endpoint in endpoints {
            info = info.with_endpoint(endpoint);
        }
        Ok(info)
    }

    /// The FlightInfo's `total_records` and `total_bytes`, -1 where the
    /// server does not know them before running the query. It knows them
    /// for a whole-table read answered from memory (a fresh snapshot, the
    /// replica's latest version): the rows there, and the bytes of their
    /// encoding once it is finished (this starts it, for the DoGet to
    /// come). Other queries get -1: DataFusion's
    /// row statistics are not exact under every operator (a limit pushed
    /// into a memory scan keeps the unlimited count). As planned now: a
    /// snapshot that expires before DoGet may answer other rows.
    async fn totals(&self, statement: &Statement) -> Result<(i64, i64), Status> {
        if !statement.is_whole_table() {
            return Ok((-1, -1));
        }
        let Some(batches) = self.snapshot_in_memory().await? else {
            return Ok((-1, -1));
        };
        // Its DoGet, a moment from now, finds the encoding under way (the
        // encoding is kept as a DoGet's would be, until the snapshot
        // changes or expires).
        self.encoded_snapshot.start(&batches, encode_snapshot);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let known = |count: Option<u64>| count.and_then(|n| i64::try_from(n).ok()).unwrap_or(-1);
        Ok((
            known(u64::try_from(rows).ok()),
            known(self.encoded_snapshot.kept_bytes(&batches)),
        ))
    }

    /// Where a statement is read. A scan of the table (filters and
    /// projections only) over several (account, region) partitions gets one
    /// endpoint per partition its filters leave, each ticket restricted to
    /// its partition and located at the fleet member that owns it, then at
    /// the other live members (the ticket is self-contained: any of them
    /// serves it), so a client can read them in parallel, from several
    /// instances, and go on to the next location when one fails. Anything
    /// else (aggregates, sorts, limits, one partition) is one endpoint
    /// whose ticket carries the statement as it is.
    fn endpoints(
        &self,
        statement: &Statement,
        plan: &LogicalPlan,
    ) -> Result<Vec<FlightEndpoint>, Status> {
        let split = if statement.partition.is_some() || !self.engine.can_split() {
            None
        } else {
            self.engine.split(plan)?
        };
        let fleet = self.fleet.current();
        // Owner first, then the members that can take over: a client
        // trying them in order reaches a live one.
        let endpoint = |statement: &Statement, key: Option<&PartitionKey>| {
            let locations = key.map(|key| fleet.locations_of(key)).unwrap_or_default();
            locations.iter().fold(
                FlightEndpoint::new().with_ticket(statement.to_ticket()),
                |endpoint, location| endpoint.with_location(location),
            )
        };
        Ok(match split.as_deref() {
            Some(keys) if keys.len() > 1 => keys
                .iter()
                .map(|key| endpoint(&statement.in_partition(key), Some(key)))
                .collect(),
            // One partition left: the statement calls no other, so it is
            // read where that partition is.
            Some([key]) => vec![endpoint(statement, Some(key))],
            _ => vec![endpoint(statement, None)],
        })
    }

    /// The result schema of a statement.
    pub async fn statement_schema(&self, statement: &Statement) -> Result<Schema, Status> {
        Ok(statement_schema(&self.plan(statement).await?)
            .as_ref()
            .clone())
    }

    /// The FlightData of the whole table from memory (a fresh snapshot,
    /// or the replica's latest version), encoded once per snapshot or
    /// version and sent as it is made; `None` when memory does not hold
    /// it. A whole-table read then costs no planning, and after the first
    /// no encoding: only the sending.
    async fn snapshot_messages(&self) -> Result<Option<BoxedStream<FlightData>>, Status> {
        Ok(self
            .snapshot_in_memory()
            .await?
            .map(|batches| self.encoded_snapshot.messages(&batches, encode_snapshot)))
    }

    /// The whole table from memory (a fresh snapshot, or the replica's
    /// latest version); `None` when memory does not hold it, and then the
    /// kept encoding, of an expired snapshot, is freed.
    async fn snapshot_in_memory(&self) -> Result<Option<Arc<Vec<RecordBatch>>>, Status> {
        let batches = self.engine.whole_table().await?;
        if batches.is_none() {
            self.encoded_snapshot.clear();
        }
        Ok(batches)
    }

    /// Runs a statement and streams its batches as FlightData, within the
    /// limits: refused when too many run, stopped at the query timeout or
    /// when the shutdown grace is over, and its work aborted when the
    /// stream is dropped.
    ///
    /// The query has a `query` span, and its stream is counted in the
    /// metrics (`obs/query_span.rs`, `obs/metrics.rs`).
    pub async fn statement_stream(
        &self,
        statement: &Statement,
    ) -> Result<BoxedStream<FlightData>, Status> {
        let telemetry = crate::obs::query_span::QueryTelemetry::start(&statement.sql);
        let started = async {
            let registration = self
                .cancellations
                .register(statement.encode_to_vec())
                .ok_or_else(|| {
                    Status::cancelled(
                        "the query was cancelled (CancelFlightInfo or CancelQuery): plan it again",
                    )
                })?;
            let admission = self.governor.admit()?.cancellable(registration);
            let (stream, endless) = self.ungoverned_stream(statement).await?;
            // A change feed never ends by itself: --query-timeout is not
            // for it (cancel, disconnect and shutdown still end it).
            let admission = if endless {
                admission.endless(&self.governor)
            } else {
                admission
            };
            // The governor polls the stream in a task of its own: the
            // query's work there stays in the query's span.
            Ok::<_, Status>(admission.run(telemetry.in_span(stream)))
        };
        let started = tracing::Instrument::instrument(started, telemetry.span().clone()).await;
        match started {
            Ok(stream) => Ok(telemetry.watch(stream)),
            Err(status) => {
                telemetry.failed(&status);
                Err(status)
            }
        }
    }

    /// The statement's FlightData, and whether it is endless (a query of
    /// the change feed).
    async fn ungoverned_stream(
        &self,
        statement: &Statement,
    ) -> Result<(BoxedStream<FlightData>, bool), Status> {
        if statement.is_whole_table()
            && let Some(messages) = self.snapshot_messages().await?
        {
            return Ok((messages, false));
        }
        let planned = self.plan(statement).await?;
        let endless = planned.plan.boundedness().is_unbounded();
        let schema = statement_schema(&planned);
        let batches = planned
            .execute()?
            .map_err(|e| FlightError::Tonic(Box::new(status_of_datafusion(&e))));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
            .build(batches)
            .map_err(Status::from);
        Ok((stream.boxed(), endless))
    }
}

/// The FlightData of a snapshot held in memory, in the whole table's
/// schema.
fn encode_snapshot(
    batches: Arc<Vec<RecordBatch>>,
) -> impl futures::Stream<Item = Result<FlightData, Status>> + Send + 'static {
    FlightDataEncoderBuilder::new()
        .with_schema(whole_table_schema())
        .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
        .build(stream::iter(batches.as_ref().clone().into_iter().map(Ok)))
        .map_err(|e| Status::internal(format!("encoding the snapshot failed: {e}")))
}
