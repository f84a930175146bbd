//! The Flight SQL service: statements, prepared statements with parameters,
//! and the catalog metadata that JDBC, ADBC and BI tools ask for.
//!
//! Tickets are stateless: a statement's ticket and a prepared statement's
//! handle are the protobuf [`Statement`] (SQL plus bound parameters), so any
//! instance can serve any ticket. Binding parameters through DoPut answers
//! with a new handle that carries them, as Flight SQL allows. Some clients
//! (older JDBC drivers, flightsql-dbapi) ignore that new handle and execute
//! the one they had; for them the server also remembers, in a small bounded
//! map, the parameters last bound to each prepared handle, until it is
//! closed or pushed out. Only that fallback is per-instance.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlNullOrdering,
    SqlSupportedCaseSensitivity, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket, decode::FlightRecordBatchStream,
};
use datafusion::common::ParamValues;
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Authenticator;
use crate::flight::cap_message;
use crate::flight::fleet::Fleet;
use crate::flight::ticket::Statement;
use crate::limits::{Limits, QueryGovernor};
use crate::query::{
    PlannedQuery, QueryEngine, QueryError, parameters_of_batch, status_of_datafusion,
};
use crate::table::schema::table_schema;

type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The header carrying credentials, both ways.
const AUTHORIZATION: &str = "authorization";

/// Largest FlightData message the encoder produces.
const MAX_FLIGHT_DATA_BYTES: usize = 4 * 1024 * 1024;

/// Flight SQL over the query engine.
#[derive(Clone)]
pub struct SqlService {
    engine: QueryEngine,
    /// GetSqlInfo's answer, built once.
    sql_info: Arc<SqlInfoData>,
    /// Parameters last bound per prepared handle, for clients that keep
    /// using their old handle after DoPut.
    bound: Arc<Mutex<BoundParameters>>,
    /// The FlightData of the table's current snapshot, encoded once for
    /// every whole-table read while it is fresh.
    encoded_snapshot: Arc<Mutex<Option<EncodedSnapshot>>>,
    /// Checks Handshake credentials; `None`: anyone may call.
    auth: Option<Authenticator>,
    /// Admits, times and cancels query streams (`limits.rs`).
    governor: QueryGovernor,
    /// Which instance each partition's endpoint names.
    fleet: Fleet,
}

/// A snapshot's batches encoded as the FlightData a whole-table DoGet sends.
struct EncodedSnapshot {
    /// Which snapshot: compared by address; the `Weak` keeps the address
    /// from being reused by a later snapshot without keeping the rows.
    of: Weak<Vec<RecordBatch>>,
    messages: Arc<Vec<FlightData>>,
}

/// Most prepared handles whose bound parameters are remembered.
const MAX_REMEMBERED_BINDINGS: usize = 4096;

/// A bounded map of prepared id -> parameters; the oldest binding goes first.
#[derive(Debug, Default)]
struct BoundParameters {
    by_id: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl BoundParameters {
    fn remember(&mut self, id: u64, parameters: Vec<u8>) {
        if self.by_id.insert(id, parameters).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_REMEMBERED_BINDINGS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }

    fn forget(&mut self, id: u64) {
        if self.by_id.remove(&id).is_some() {
            self.order.retain(|&other| other != id);
        }
    }
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
        Ok(SqlService {
            engine,
            sql_info: Arc::new(sql_info()?),
            bound: Arc::default(),
            encoded_snapshot: Arc::default(),
            auth: None,
            governor: QueryGovernor::new(&Limits::default()),
            fleet: Fleet::default(),
        })
    }

    /// The service with query streams admitted, timed and cancelled by
    /// `governor`.
    pub fn with_governor(self, governor: QueryGovernor) -> SqlService {
        SqlService { governor, ..self }
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
    /// `fleet` that owns it (`fleet.rs`).
    pub fn with_fleet(self, fleet: Fleet) -> SqlService {
        let keys = self.engine.partitions().all().iter().map(|p| &p.key);
        SqlService {
            fleet: fleet.assign(keys),
            ..self
        }
    }

    /// The authenticator, if authentication is configured.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }

    /// A prepared handle as the client sent it, with the parameters last
    /// bound to it if the handle itself carries none.
    fn prepared_statement(&self, handle: &[u8]) -> Result<Statement, Status> {
        let mut statement = Statement::decode_handle(handle)?;
        if statement.parameters.is_empty() && statement.prepared_id != 0 {
            let bound = self
                .bound
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(parameters) = bound.by_id.get(&statement.prepared_id) {
                statement.parameters = parameters.clone();
            }
        }
        Ok(statement)
    }

    /// Plans a statement with its bound parameters, over its partition if
    /// its ticket names one. A partition this server does not read is
    /// FAILED_PRECONDITION: the ticket came from an instance configured
    /// with other accounts or regions.
    async fn plan(&self, statement: &Statement) -> Result<PlannedQuery, Status> {
        let parameters = decode_parameters(&statement.parameters)?;
        let scope = statement.partition_key();
        if let Some(key) = &scope
            && self.engine.partitions().get(key).is_none()
        {
            return Err(Status::failed_precondition(cap_message(format!(
                "this server does not read partition {key}; the instances of a fleet must be configured with the same accounts and regions"
            ))));
        }
        Ok(self
            .engine
            .plan_in(&statement.sql, parameters, scope.as_ref())
            .await?)
    }

    /// The FlightInfo of a statement: the exact schema DoGet will stream,
    /// and its endpoints ([`SqlService::endpoints`]).
    pub async fn statement_flight_info(
        &self,
        statement: &Statement,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let planned = self.plan(statement).await?;
        let mut info = FlightInfo::new()
            .try_with_schema(&planned.schema())
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?
            .with_descriptor(descriptor)
            .with_total_records(-1)
            .with_total_bytes(-1);
        for endpoint in self.endpoints(statement).await? {
            info = info.with_endpoint(endpoint);
        }
        Ok(info)
    }

    /// Where a statement is read. A scan of the table (filters and
    /// projections only) over several (account, region) partitions gets one
    /// endpoint per partition its filters leave, each ticket restricted to
    /// its partition and located at the fleet member that owns it, so a
    /// client can read them in parallel, from several instances. Anything
    /// else (aggregates, sorts, limits, one partition) is one endpoint
    /// whose ticket carries the statement as it is.
    async fn endpoints(&self, statement: &Statement) -> Result<Vec<FlightEndpoint>, Status> {
        // Planning again is only worth it where a split is possible.
        let split = if statement.partition.is_some() || !self.engine.can_split() {
            None
        } else {
            let parameters = decode_parameters(&statement.parameters)?;
            let plan = self.engine.bound_plan(&statement.sql, parameters).await?;
            self.engine.split(&plan)?
        };
        let endpoint = |statement: &Statement, owner: Option<&str>| {
            let endpoint = FlightEndpoint::new().with_ticket(statement.to_ticket());
            match owner {
                Some(location) => endpoint.with_location(location),
                None => endpoint,
            }
        };
        Ok(match split.as_deref() {
            Some(keys) if keys.len() > 1 => keys
                .iter()
                .map(|key| endpoint(&statement.in_partition(key), self.fleet.owner_of(key)))
                .collect(),
            // One partition left: the statement calls no other, so it is
            // read where that partition is.
            Some([key]) => vec![endpoint(statement, self.fleet.owner_of(key))],
            _ => vec![endpoint(statement, None)],
        })
    }

    /// The result schema of a statement.
    pub async fn statement_schema(&self, statement: &Statement) -> Result<Schema, Status> {
        Ok(self.plan(statement).await?.schema().as_ref().clone())
    }

    /// The FlightData of the whole table from a fresh snapshot, encoded
    /// once per snapshot; `None` when no snapshot is fresh. A whole-table
    /// read then costs no planning and no encoding, only the sending.
    async fn snapshot_messages(&self) -> Result<Option<Arc<Vec<FlightData>>>, Status> {
        let Some(batches) = self.engine.fresh_snapshot() else {
            // Free the encoding of an expired snapshot.
            *self
                .encoded_snapshot
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            return Ok(None);
        };
        if let Some(encoded) = self
            .encoded_snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|encoded| std::ptr::eq(encoded.of.as_ptr(), Arc::as_ptr(&batches)))
        {
            return Ok(Some(Arc::clone(&encoded.messages)));
        }
        let messages: Vec<FlightData> = FlightDataEncoderBuilder::new()
            .with_schema(table_schema())
            .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
            .build(stream::iter(batches.as_ref().clone().into_iter().map(Ok)))
            .try_collect()
            .await
            .map_err(|e| Status::internal(format!("encoding the snapshot failed: {e}")))?;
        let messages = Arc::new(messages);
        *self
            .encoded_snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(EncodedSnapshot {
            of: Arc::downgrade(&batches),
            messages: Arc::clone(&messages),
        });
        Ok(Some(messages))
    }

    /// Runs a statement and streams its batches as FlightData, within the
    /// limits: refused when too many run, stopped at the query timeout or
    /// when the shutdown grace is over, and its work aborted when the
    /// stream is dropped.
    ///
    /// The query has a `query` span, and its stream is counted in the
    /// metrics (`telemetry.rs`, `metrics.rs`).
    pub async fn statement_stream(
        &self,
        statement: &Statement,
    ) -> Result<BoxedStream<FlightData>, Status> {
        let telemetry = crate::telemetry::QueryTelemetry::start(&statement.sql);
        let started = async {
            let admission = self.governor.admit()?;
            let stream = self.ungoverned_stream(statement).await?;
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

    async fn ungoverned_stream(
        &self,
        statement: &Statement,
    ) -> Result<BoxedStream<FlightData>, Status> {
        if statement.is_whole_table()
            && let Some(messages) = self.snapshot_messages().await?
        {
            let count = messages.len();
            // Cloning a message clones reference-counted bytes, not data.
            let stream = stream::iter((0..count).map(move |i| Ok(messages[i].clone())));
            return Ok(stream.boxed());
        }
        let planned = self.plan(statement).await?;
        let schema = planned.schema();
        let batches = planned
            .execute()?
            .map_err(|e| FlightError::Tonic(Box::new(status_of_datafusion(&e))));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
            .build(batches)
            .map_err(Status::from);
        Ok(stream.boxed())
    }

    /// The tables of the session: (catalog, schema, table, type, schema).
    async fn tables(&self) -> Vec<(String, String, String, &'static str, Arc<Schema>)> {
        let context = self.engine.context();
        let mut tables = Vec::new();
        for catalog_name in context.catalog_names() {
            let Some(catalog) = context.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    if let Ok(Some(table)) = schema.table(&table_name).await {
                        let kind = match table.table_type() {
                            datafusion::datasource::TableType::View => "VIEW",
                            _ => "TABLE",
                        };
                        tables.push((
                            catalog_name.clone(),
                            schema_name.clone(),
                            table_name,
                            kind,
                            table.schema(),
                        ));
                    }
                }
            }
        }
        tables.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        tables
    }

    fn metadata_flight_info(
        command: impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(command.as_any().encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

fn read_only() -> Status {
    Status::permission_denied("sagemaker-flight is read-only: updates and ingestion are refused")
}

/// A one-batch metadata answer as a FlightData stream.
fn batch_stream(
    batch: Result<RecordBatch, FlightError>,
) -> Result<Response<BoxedStream<FlightData>>, Status> {
    let batch = batch.map_err(|e| Status::internal(format!("building metadata failed: {e}")))?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::iter([Ok(batch)]))
        .map_err(Status::from)
        .inspect_ok(|data| {
            crate::metrics::flight_data_sent(data);
        });
    Ok(Response::new(stream.boxed()))
}

/// IPC bytes of a schema, as Flight SQL's dataset_schema / parameter_schema.
fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| {
            Status::internal(format!("encoding the schema failed: {e}"))
        })?;
    Ok(bytes)
}

/// A parameter batch as the IPC stream a [`Statement`] carries.
fn encode_parameters(batch: &RecordBatch) -> Result<Vec<u8>, Status> {
    let encode = || -> Result<Vec<u8>, arrow::error::ArrowError> {
        let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
        writer.write(batch)?;
        writer.into_inner()
    };
    encode().map_err(|e| Status::invalid_argument(format!("bad parameters: {e}")))
}

/// The parameters a [`Statement`] carries, `None` when it has none.
fn decode_parameters(bytes: &[u8]) -> Result<Option<ParamValues>, Status> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let bad =
        |e: &dyn std::fmt::Display| Status::invalid_argument(format!("malformed parameters: {e}"));
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| bad(&e))?;
    let batch = match reader.next() {
        Some(batch) => batch.map_err(|e| bad(&e))?,
        None => return Ok(None),
    };
    Ok(Some(parameters_of_batch(&batch)?))
}

/// What GetSqlInfo answers: the server, and the SQL it speaks (DataFusion's).
fn sql_info() -> Result<SqlInfoData, FlightError> {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "sagemaker-flight");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    // SQL_SUPPORTED_TRANSACTION_NONE.
    info.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    info.append(SqlInfo::FlightSqlServerCancel, false);
    info.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    info.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    info.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, false);
    // DataFusion folds unquoted identifiers to lower case; quoted ones keep theirs.
    info.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // Ascending order puts NULLs last: they sort high.
    info.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    info.append(SqlInfo::SqlKeywords, KEYWORDS);
    info.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    info.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    info.append(SqlInfo::SqlSystemFunctions, &["version"][..]);
    info.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.append(SqlInfo::SqlExtraNameCharacters, "");
    info.append(SqlInfo::SqlSupportsColumnAliasing, true);
    info.append(SqlInfo::SqlNullPlusNullIsNull, true);
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmask: SQL_GROUP_BY_UNRELATED | SQL_GROUP_BY_BEYOND_SELECT.
    info.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // Bitmask: minimum and core grammar.
    info.append(SqlInfo::SqlSupportedGrammar, 0b11i32);
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    // SQL_FULL_OUTER_JOINS.
    info.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32);
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "procedure");
    info.append(SqlInfo::SqlCatalogTerm, "catalog");
    info.append(SqlInfo::SqlCatalogAtStart, true);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Bitmask: comparisons, EXISTS, IN, quantified.
    info.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    // Bitmask: UNION, UNION ALL.
    info.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    info.append(SqlInfo::SqlMaxStatementLength, 0i64);
    info.append(SqlInfo::SqlTransactionsSupported, false);
    info.append(SqlInfo::SqlBatchUpdatesSupported, false);
    info.build()
}

const KEYWORDS: &[&str] = &[
    "absolute",
    "action",
    "add",
    "all",
    "allocate",
    "alter",
    "and",
    "any",
    "are",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "cast",
    "copy",
    "create",
    "cross",
    "current",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "exists",
    "explain",
    "external",
    "false",
    "first",
    "from",
    "full",
    "group",
    "having",
    "ilike",
    "in",
    "inner",
    "insert",
    "intersect",
    "interval",
    "is",
    "join",
    "last",
    "left",
    "like",
    "limit",
    "not",
    "null",
    "nulls",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "right",
    "select",
    "set",
    "show",
    "table",
    "then",
    "true",
    "union",
    "unnest",
    "update",
    "using",
    "values",
    "when",
    "where",
    "with",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "round", "trunc", "power", "sqrt", "ln", "log", "log10", "exp",
    "random", "signum",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "concat",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "regexp_like",
    "regexp_replace",
    "replace",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "trim",
    "upper",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "extract",
    "from_unixtime",
    "now",
    "to_timestamp",
];

#[tonic::async_trait]
impl FlightSqlService for SqlService {
    type FlightService = SqlService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxedStream<HandshakeResponse>>, Status> {
        let Some(auth) = &self.auth else {
            // No authentication is configured: any handshake succeeds.
            let response = HandshakeResponse {
                protocol_version: 0,
                payload: Default::default(),
            };
            return Ok(Response::new(stream::iter([Ok(response)]).boxed()));
        };
        // Basic credentials (or a valid bearer token) in the header; the
        // token goes back in the header, as Flight SQL clients expect, and
        // in the payload.
        let authorization = request
            .metadata()
            .get(AUTHORIZATION)
            .map(|value| value.as_bytes());
        let token = auth.handshake(authorization)?;
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("an issued token is not a valid header value"))?;
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response = Response::new(stream::iter([Ok(response)]).boxed());
        response.metadata_mut().insert(AUTHORIZATION, header);
        Ok(response)
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: arrow_flight::sql::Any,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        Err(Status::invalid_argument(cap_message(format!(
            "malformed ticket: {:?} is not a ticket this server issued",
            message.type_url
        ))))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxedStream<arrow_flight::Result>>, Status> {
        Err(Status::unimplemented(cap_message(format!(
            "no action {:?}; ListActions lists the actions offered",
            request.get_ref().r#type
        ))))
    }

    async fn do_put_statement_update(
        &self,
        _command: arrow_flight::sql::CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _command: arrow_flight::sql::CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn do_put_statement_ingest(
        &self,
        _command: arrow_flight::sql::CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let statement = Statement::new(query.query);
        let info = self
            .statement_flight_info(&statement, request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let statement = self.prepared_statement(&query.prepared_statement_handle)?;
        let info = self
            .statement_flight_info(&statement, request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let statement = Statement::decode_handle(&ticket.statement_handle)?;
        Ok(Response::new(self.statement_stream(&statement).await?))
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let statement = self.prepared_statement(&query.prepared_statement_handle)?;
        Ok(Response::new(self.statement_stream(&statement).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let logical = self.engine.logical_plan(&query.query).await?;
        let parameter_schema = QueryEngine::parameter_schema(&logical)?;
        // Without placeholders the physical plan gives the exact schema DoGet
        // streams; with them, the logical plan's is the best guess.
        let dataset_schema = if parameter_schema.fields().is_empty() {
            self.statement_schema(&Statement::new(query.query.clone()))
                .await?
        } else {
            logical.schema().as_arrow().clone()
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Statement::prepared(query.query).encode_to_vec().into(),
            dataset_schema: schema_bytes(&dataset_schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        let statement = Statement::decode_handle(&query.prepared_statement_handle)?;
        self.bound
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .forget(statement.prepared_id);
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let mut statement = Statement::decode_handle(&query.prepared_statement_handle)?;
        let data = request
            .into_inner()
            .map_err(|status| FlightError::Tonic(Box::new(status)));
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(data)
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("malformed parameters: {e}")))?;
        let rows: Vec<_> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        match rows.as_slice() {
            [] => statement.parameters.clear(),
            [batch] => {
                // Check the values fit the statement now, not at DoGet.
                self.engine
                    .plan(&statement.sql, Some(parameters_of_batch(batch)?))
                    .await?;
                statement.parameters = encode_parameters(batch)?;
            }
            _ => {
                return Err(QueryError::Parameters(
                    "expected one batch of one row of parameter values".into(),
                )
                .into());
            }
        }
        if statement.prepared_id != 0 {
            self.bound
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remember(statement.prepared_id, statement.parameters.clone());
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(statement.encode_to_vec().into()),
        })
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::metadata_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let mut builder = query.into_builder();
        let mut catalogs = self.engine.context().catalog_names();
        catalogs.sort();
        for catalog in catalogs {
            builder.append(catalog);
        }
        batch_stream(builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::metadata_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let mut builder = query.into_builder();
        let context = self.engine.context();
        let mut catalogs = context.catalog_names();
        catalogs.sort();
        for catalog_name in catalogs {
            if let Some(catalog) = context.catalog(&catalog_name) {
                let mut schemas = catalog.schema_names();
                schemas.sort();
                for schema in schemas {
                    builder.append(&catalog_name, schema);
                }
            }
        }
        batch_stream(builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Self::metadata_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let mut builder = query.into_builder();
        for (catalog, schema, table, kind, table_schema) in self.tables().await {
            builder
                .append(catalog, schema, table, kind, &table_schema)
                .map_err(|e| Status::internal(format!("building metadata failed: {e}")))?;
        }
        batch_stream(builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Self::metadata_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let mut builder = query.into_builder();
        builder.append("TABLE");
        builder.append("VIEW");
        batch_stream(builder.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        Self::metadata_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        batch_stream(query.into_builder(&self.sql_info).build())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_bindings_are_bounded_and_forgotten_on_close() {
        let mut bound = BoundParameters::default();
        for id in 1..=(MAX_REMEMBERED_BINDINGS as u64 + 10) {
            bound.remember(id, vec![1]);
        }
        assert_eq!(bound.by_id.len(), MAX_REMEMBERED_BINDINGS);
        assert!(!bound.by_id.contains_key(&1), "the oldest went first");
        bound.remember(20, vec![2]);
        assert_eq!(bound.by_id.get(&20), Some(&vec![2]), "rebinding replaces");
        bound.forget(20);
        assert!(!bound.by_id.contains_key(&20));
        assert_eq!(bound.order.len(), bound.by_id.len());
    }
}
