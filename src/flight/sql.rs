//! The Flight SQL RPCs: each answers from the service's statements,
//! prepared statements and metadata (`sql_service.rs` and its neighbours).
//!
//!
//! Tickets are stateless: a statement's ticket and a prepared statement's
//! handle are the protobuf [`Statement`] (SQL plus bound parameters), so any
//! instance can serve any ticket. Binding parameters through DoPut answers
//! with a new handle that carries them, as Flight SQL allows. Some clients
//! (older JDBC drivers, flightsql-dbapi) ignore that new handle and execute
//! the one they had; for them the server also remembers, in a small bounded
//! map, the parameters last bound to each prepared handle, until it is
//! closed or pushed out. Only that fallback is per-instance.

use arrow::array::RecordBatch;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
    decode::FlightRecordBatchStream,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::flight::catalog::batch_stream;
use crate::flight::column_metadata::{logical_schema, statement_schema};
use crate::flight::keys::{
    FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA, TableName, no_foreign_keys, primary_keys,
};
use crate::flight::prepared::{encode_parameters, schema_bytes};
use crate::flight::sql_service::{BoxedStream, SqlService};
use crate::flight::status::cap_message;
use crate::flight::ticket::Statement;
use crate::flight::ticket::proto::Session;
use crate::flight::type_info::TYPE_INFO;
use crate::query::{QueryError, parameter_schema, parameters_of_batch};

/// The header carrying credentials, both ways.
const AUTHORIZATION: &str = "authorization";

fn read_only() -> Status {
    Status::permission_denied("sagemaker-flight is read-only: updates and ingestion are refused")
}

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
        let session = Session::of_request(request.metadata())?;
        let statement = Statement::new(query.query).in_session(&session);
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
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = Session::of_request(request.metadata())?;
        let logical = self
            .engine
            .logical_plan_in(&query.query, &session.name_defaults())
            .await?;
        let parameter_schema = parameter_schema(&logical)?;
        // Without placeholders the physical plan gives the exact schema DoGet
        // streams; with them, the logical plan's is the best guess. Either
        // comes from the one parse above.
        let dataset_schema = if parameter_schema.fields().is_empty() {
            let planned = self.engine.physical_plan(logical, None).await?;
            statement_schema(&planned).as_ref().clone()
        } else {
            logical_schema(&logical).as_ref().clone()
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Statement::prepared(query.query)
                .in_session(&session)
                .encode_to_vec()
                .into(),
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

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_flight_info(query, &PRIMARY_KEYS_SCHEMA, request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        let tables = self.tables().await;
        let named = tables.iter().map(|(catalog, schema, table, _, columns)| {
            (
                TableName {
                    catalog,
                    schema,
                    table,
                },
                columns.as_ref(),
            )
        });
        batch_stream(
            primary_keys(
                named,
                query.catalog.as_deref(),
                query.db_schema.as_deref(),
                &query.table,
            )
            .map_err(FlightError::from),
        )
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_flight_info(query, &FOREIGN_KEYS_SCHEMA, request.into_inner())
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        batch_stream(Ok(no_foreign_keys()))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_flight_info(query, &FOREIGN_KEYS_SCHEMA, request.into_inner())
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        batch_stream(Ok(no_foreign_keys()))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Self::metadata_flight_info(query, &FOREIGN_KEYS_SCHEMA, request.into_inner())
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        batch_stream(Ok(no_foreign_keys()))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let types = type_info()?;
        let schema = query.into_builder(types).schema();
        Self::metadata_flight_info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<BoxedStream<FlightData>>, Status> {
        batch_stream(query.into_builder(type_info()?).build())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info.as_ref()).map_err(|e| {
            Status::invalid_argument(cap_message(format!(
                "malformed FlightInfo in CancelQuery: {e}"
            )))
        })?;
        let status = self.cancel_flight_info(&info)?;
        // ActionCancelQueryResult.CancelResult (which arrow-flight does not
        // export) numbers its values as CancelStatus does: 1 is CANCELLED.
        Ok(ActionCancelQueryResult {
            result: status as i32,
        })
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The types GetXdbcTypeInfo lists (`type_info.rs`).
fn type_info() -> Result<&'static arrow_flight::sql::metadata::XdbcTypeInfoData, Status> {
    TYPE_INFO
        .as_ref()
        .map_err(|e| Status::internal(format!("building the type info failed: {e}")))
}
