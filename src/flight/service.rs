//! The one gRPC Flight service on the port: plain Arrow Flight and Flight
//! SQL side by side.
//!
//! - A PATH descriptor `["aws.sagemaker_compilation_job"]` (or `["aws",
//!   "sagemaker_compilation_job"]`) is the whole table: ListFlights,
//!   GetFlightInfo, GetSchema, and DoGet of its ticket. With a store, the
//!   path `["aws.sagemaker_compilation_job_changes"]` is the change feed
//!   from its next commit.
//! - A CMD descriptor holding a Flight SQL command (a protobuf `Any`) goes to
//!   the Flight SQL service; one holding plain UTF-8 text is run as a SQL
//!   query, for pyarrow users without a Flight SQL driver
//!   (`FlightDescriptor.for_command(sql)`).
//! - Every ticket is a Flight SQL ticket, so DoGet, DoPut, DoAction and
//!   Handshake all go to the Flight SQL service.

use std::pin::Pin;

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::flight::cancel::CANCEL_FLIGHT_INFO;
use crate::flight::framed_do_get;
use crate::flight::session::{CLOSE_SESSION, GET_SESSION_OPTIONS, SET_SESSION_OPTIONS};
use crate::flight::sql_service::SqlService;
use crate::flight::status::cap_message;
use crate::flight::ticket::proto::Session;
use crate::flight::ticket::{Statement, check_flight_sql_command, is_flight_sql_command};
use crate::table::schema::{
    CHANGES_TABLE_UNQUALIFIED, TABLE_NAME, TABLE_SCHEMA, is_changes_path, is_table_path,
};

/// The DoAction types this server implements, and so lists: Flight SQL's
/// prepared statements. Its transactions, savepoints, Substrait plans and
/// CancelQuery are not offered on a read-only server.
pub const OFFERED_ACTIONS: &[&str] = &[
    "CreatePreparedStatement",
    "ClosePreparedStatement",
    "CancelQuery",
];

/// Flight's own actions, offered besides Flight SQL's.
const FLIGHT_ACTIONS: [(&str, &str); 4] = [
    (
        CANCEL_FLIGHT_INFO,
        "Cancel the query of a FlightInfo: its streams stop and its tickets are refused",
    ),
    (
        SET_SESSION_OPTIONS,
        "Set session options (catalog, schema); the session is in the response's cookie",
    ),
    (GET_SESSION_OPTIONS, "The session's options, set or default"),
    (CLOSE_SESSION, "Close the session: its cookie is cleared"),
];

/// gRPC streams of this service.
type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight service. Cheap to clone: tonic clones it per connection.
#[derive(Clone, Debug)]
pub struct FlightServer {
    sql: SqlService,
    /// Between two HTTP/2 pings on a quiet connection (`Limits`).
    keepalive: Option<std::time::Duration>,
}

/// What a descriptor asks for.
enum Target {
    /// The whole table (a PATH descriptor).
    Table,
    /// The change feed from its next commit (a PATH descriptor; with a
    /// store only).
    Changes,
    /// A Flight SQL command, for the Flight SQL service.
    FlightSql,
    /// A SQL query in plain text.
    Sql(String),
}

/// What `descriptor` names. Unknown paths are NOT_FOUND.
fn target_of(descriptor: &FlightDescriptor) -> Result<Target, Status> {
    match DescriptorType::try_from(descriptor.r#type) {
        Ok(DescriptorType::Path) if is_table_path(&descriptor.path) => Ok(Target::Table),
        Ok(DescriptorType::Path) if is_changes_path(&descriptor.path) => Ok(Target::Changes),
        Ok(DescriptorType::Path) => Err(Status::not_found(cap_message(format!(
            "no flight at path {:?}; the one table is [{TABLE_NAME:?}] (or [\"aws\", \"sagemaker_compilation_job\"])",
            descriptor.path
        )))),
        Ok(DescriptorType::Cmd) if is_flight_sql_command(&descriptor.cmd) => Ok(Target::FlightSql),
        Ok(DescriptorType::Cmd) => match std::str::from_utf8(&descriptor.cmd) {
            Ok(sql) if !sql.trim().is_empty() => Ok(Target::Sql(sql.to_owned())),
            _ => Err(Status::invalid_argument(
                "a CMD descriptor must hold a Flight SQL command or a UTF-8 SQL query",
            )),
        },
        Ok(DescriptorType::Unknown) | Err(_) => Err(Status::invalid_argument(format!(
            "descriptor type {} is neither PATH nor CMD",
            descriptor.r#type
        ))),
    }
}

impl FlightServer {
    /// The service answering Flight SQL through `sql`.
    pub fn new(sql: SqlService) -> Self {
        FlightServer {
            sql,
            keepalive: None,
        }
    }

    /// The service, served with an HTTP/2 ping every `interval` on a quiet
    /// connection (`None`: none).
    pub fn with_keepalive(self, interval: Option<std::time::Duration>) -> Self {
        FlightServer {
            keepalive: interval,
            ..self
        }
    }

    /// Between two HTTP/2 pings on a quiet connection, if any.
    pub fn keepalive(&self) -> Option<std::time::Duration> {
        self.keepalive
    }

    /// The service with authentication (`None`: none): Handshake checks
    /// credentials; [`crate::server::serve`] guards every other RPC.
    pub fn with_auth(self, auth: Option<crate::auth::Authenticator>) -> Self {
        FlightServer {
            sql: self.sql.with_auth(auth),
            ..self
        }
    }

    /// The service with the partitions' endpoints spread over `fleet`.
    pub fn with_fleet(self, fleet: crate::flight::Fleet) -> Self {
        FlightServer {
            sql: self.sql.with_fleet(fleet),
            ..self
        }
    }

    /// The service with the partitions' endpoints spread over the fleet
    /// as `fleet` says it is at each query.
    pub fn with_fleet_view(self, fleet: crate::flight::FleetView) -> Self {
        FlightServer {
            sql: self.sql.with_fleet_view(fleet),
            ..self
        }
    }

    /// The authenticator, if authentication is configured.
    pub fn authenticator(&self) -> Option<&crate::auth::Authenticator> {
        self.sql.authenticator()
    }

    /// What admits, times and cancels query streams ([`crate::flight::admission`]).
    pub fn governor(&self) -> &crate::flight::QueryGovernor {
        self.sql.governor()
    }

    /// The statement a plain Flight descriptor stands for: SQL text runs
    /// in the request's session (its default catalog and schema).
    fn statement_of(
        &self,
        target: Target,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Option<Statement>, Status> {
        Ok(match target {
            Target::Table => Some(Statement::whole_table()),
            Target::Changes => Some(Statement::new(format!(
                "SELECT * FROM {TABLE_SCHEMA}.{CHANGES_TABLE_UNQUALIFIED}"
            ))),
            Target::Sql(sql) => {
                Some(Statement::new(sql).in_session(&Session::of_request(metadata)?))
            }
            Target::FlightSql => None,
        })
    }
}

#[tonic::async_trait]
impl FlightService for FlightServer {
    type HandshakeStream = BoxedStream<HandshakeResponse>;
    type ListFlightsStream = BoxedStream<FlightInfo>;
    type DoGetStream = BoxedStream<FlightData>;
    type DoPutStream = BoxedStream<PutResult>;
    type DoExchangeStream = BoxedStream<FlightData>;
    type DoActionStream = BoxedStream<arrow_flight::Result>;
    type ListActionsStream = BoxedStream<ActionType>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.sql, request).await
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        // Criteria are free-form and optional; there is one flight either way.
        let descriptor = FlightDescriptor::new_path(vec![TABLE_NAME.to_owned()]);
        let info = self
            .sql
            .statement_flight_info(&Statement::whole_table(), descriptor)
            .await?;
        Ok(Response::new(stream::iter([Ok(info)]).boxed()))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let target = target_of(request.get_ref())?;
        match self.statement_of(target, request.metadata())? {
            Some(statement) => {
                let info = self
                    .sql
                    .statement_flight_info(&statement, request.into_inner())
                    .await?;
                Ok(Response::new(info))
            }
            None => {
                check_flight_sql_command(&request.get_ref().cmd)?;
                FlightService::get_flight_info(&self.sql, request).await
            }
        }
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        // Planning is immediate, so the first poll is already complete.
        let info = self.get_flight_info(request).await?.into_inner();
        Ok(Response::new(PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let target = target_of(request.get_ref())?;
        let Some(statement) = self.statement_of(target, request.metadata())? else {
            return Err(Status::unimplemented(
                "GetSchema of a Flight SQL command: use GetFlightInfo, whose schema is exact",
            ));
        };
        let schema = self.sql.statement_schema(&statement).await?;
        let result = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        check_flight_sql_command(&request.get_ref().ticket)?;
        let framed = framed_do_get::is_framed(request.extensions());
        let response = FlightService::do_get(&self.sql, request).await?;
        Ok(if framed {
            framed_do_get::hand_off(response)
        } else {
            response
        })
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&self.sql, request).await
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("DoExchange is not offered"))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        // Flight's own actions first: Flight SQL knows only its own.
        match request.get_ref().r#type.as_str() {
            SET_SESSION_OPTIONS => self.sql.set_session_options(request),
            GET_SESSION_OPTIONS => self.sql.get_session_options(request),
            CLOSE_SESSION => self.sql.close_session(request),
            CANCEL_FLIGHT_INFO => self.sql.cancel_flight_info_action(request),
            _ => FlightService::do_action(&self.sql, request).await,
        }
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        // Flight SQL lists every action it defines; only the ones this
        // read-only server implements are offered.
        let listed = FlightService::list_actions(&self.sql, request)
            .await?
            .into_inner();
        let offered = listed.try_filter(|action| {
            std::future::ready(OFFERED_ACTIONS.contains(&action.r#type.as_str()))
        });
        let sessions = FLIGHT_ACTIONS.map(|(kind, description)| {
            Ok(ActionType {
                r#type: kind.to_owned(),
                description: description.to_owned(),
            })
        });
        Ok(Response::new(Box::pin(
            offered.chain(stream::iter(sessions)),
        )))
    }
}
