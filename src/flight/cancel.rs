//! The cancel actions (CancelFlightInfo, and Flight SQL's CancelQuery):
//! the FlightInfo's tickets are cancelled in [`crate::flight::cancellation`].

use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo,
    Result as ActionResult,
};
use futures::stream;
use prost::Message;
use tonic::{Request, Response, Status};

use crate::flight::sql_service::{BoxedStream, SqlService};
use crate::flight::status::cap_message;
use crate::flight::ticket::Statement;

/// Flight's action that cancels a FlightInfo's query.
pub const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

impl SqlService {
    /// Cancels the query of `info` (CancelFlightInfo, CancelQuery): every
    /// stream of its tickets stops, and its tickets are refused from now
    /// on, so it is cancelled whether or not a stream was running. A
    /// FlightInfo without a ticket of ours is INVALID_ARGUMENT.
    pub(super) fn cancel_flight_info(&self, info: &FlightInfo) -> Result<CancelStatus, Status> {
        let statements = info
            .endpoint
            .iter()
            .map(|endpoint| {
                let ticket = endpoint.ticket.as_ref().ok_or_else(|| {
                    Status::invalid_argument("an endpoint of the FlightInfo has no ticket")
                })?;
                Ok(Statement::from_ticket(ticket)?.encode_to_vec())
            })
            .collect::<Result<Vec<_>, Status>>()?;
        if statements.is_empty() {
            return Err(Status::invalid_argument(
                "the FlightInfo has no endpoint: nothing to cancel",
            ));
        }
        let stopped = self.cancellations.cancel(statements);
        tracing::info!(streams = stopped, "a query was cancelled");
        Ok(CancelStatus::Cancelled)
    }

    /// The CancelFlightInfo action: its body a CancelFlightInfoRequest, its
    /// one result a CancelFlightInfoResult (both plain, not Any-wrapped).
    pub(super) fn cancel_flight_info_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<BoxedStream<ActionResult>>, Status> {
        let asked =
            CancelFlightInfoRequest::decode(request.get_ref().body.as_ref()).map_err(|e| {
                Status::invalid_argument(cap_message(format!(
                    "malformed CancelFlightInfoRequest: {e}"
                )))
            })?;
        let info = asked.info.ok_or_else(|| {
            Status::invalid_argument("CancelFlightInfoRequest without a FlightInfo")
        })?;
        let result = CancelFlightInfoResult::new(self.cancel_flight_info(&info)?);
        let body = ActionResult::new(result.encode_to_vec());
        Ok(Response::new(Box::pin(stream::iter([Ok(body)]))))
    }
}
