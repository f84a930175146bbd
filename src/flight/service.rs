//! The plain Arrow Flight service: ListFlights, GetFlightInfo, GetSchema and
//! DoGet over the one table, addressed by a PATH descriptor.

use std::pin::Pin;
use std::sync::Arc;

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::flight::cap_message;
use crate::flight::ticket::{TicketKind, decode_ticket, table_scan_ticket};
use crate::source::SageMakerSource;
use crate::table::schema::{TABLE_NAME, is_table_path, table_schema};
use crate::table::{BatchSizing, scan_table};

/// gRPC streams of this service.
type BoxedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Largest FlightData message the encoder produces. Well under the 64 MiB
/// the server and our clients accept, and big enough for a full batch.
const MAX_FLIGHT_DATA_BYTES: usize = 4 * 1024 * 1024;

/// The Flight service. Cheap to clone: tonic clones it per connection.
#[derive(Clone, Debug)]
pub struct FlightServer {
    source: Arc<SageMakerSource>,
    sizing: BatchSizing,
}

impl FlightServer {
    /// A service reading from `source`.
    pub fn new(source: Arc<SageMakerSource>, sizing: BatchSizing) -> Self {
        FlightServer { source, sizing }
    }

    /// The FlightInfo of the table: its schema and one endpoint with an empty
    /// location list, which means "this same server".
    fn table_flight_info(&self) -> Result<FlightInfo, Status> {
        let info = FlightInfo::new()
            .try_with_schema(&table_schema())
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?
            .with_descriptor(FlightDescriptor::new_path(vec![TABLE_NAME.to_owned()]))
            .with_endpoint(FlightEndpoint::new().with_ticket(table_scan_ticket(TABLE_NAME)))
            // The row count is unknown until the listing ends.
            .with_total_records(-1)
            .with_total_bytes(-1);
        Ok(info)
    }
}

/// Checks that `descriptor` names the table. Unknown paths are NOT_FOUND;
/// commands are not part of plain Flight.
fn check_descriptor(descriptor: &FlightDescriptor) -> Result<(), Status> {
    match DescriptorType::try_from(descriptor.r#type) {
        Ok(DescriptorType::Path) if is_table_path(&descriptor.path) => Ok(()),
        Ok(DescriptorType::Path) => Err(Status::not_found(cap_message(format!(
            "no flight at path {:?}; the one table is [{TABLE_NAME:?}] (or [\"aws\", \"sagemaker_compilation_job\"])",
            descriptor.path
        )))),
        Ok(DescriptorType::Cmd) => Err(Status::unimplemented(
            "command descriptors are not supported: use the PATH descriptor [\"aws.sagemaker_compilation_job\"]",
        )),
        Ok(DescriptorType::Unknown) | Err(_) => Err(Status::invalid_argument(format!(
            "descriptor type {} is neither PATH nor CMD",
            descriptor.r#type
        ))),
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
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented(
            "Handshake: this server has no authentication configured",
        ))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        // Criteria are free-form and optional; there is one flight either way.
        let info = self.table_flight_info()?;
        Ok(Response::new(stream::iter([Ok(info)]).boxed()))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        check_descriptor(request.get_ref())?;
        Ok(Response::new(self.table_flight_info()?))
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        check_descriptor(request.get_ref())?;
        // Planning is immediate, so the first poll is already complete.
        Ok(Response::new(PollInfo {
            info: Some(self.table_flight_info()?),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        check_descriptor(request.get_ref())?;
        let schema = table_schema();
        let result = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e| Status::internal(format!("encoding the schema failed: {e}")))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let TicketKind::TableScan(scan) = decode_ticket(&request.get_ref().ticket)?;
        if scan.table != TABLE_NAME {
            return Err(Status::not_found(cap_message(format!(
                "the ticket names table {:?}; the one table is {TABLE_NAME:?}",
                scan.table
            ))));
        }
        let batches = scan_table(&self.source, self.sizing)
            .map_err(|e| FlightError::Tonic(Box::new(e.into())));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(table_schema())
            .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(stream.boxed()))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented("DoPut: the table is read-only"))
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
        Err(Status::unimplemented(cap_message(format!(
            "no action {:?}; ListActions lists the actions offered (none)",
            request.get_ref().r#type
        ))))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(stream::empty().boxed()))
    }
}
