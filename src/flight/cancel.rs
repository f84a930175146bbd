//! The cancel actions (CancelFlightInfo, and Flight SQL's CancelQuery):
//! the FlightInfo's tickets are cancelled in [`crate::flight::cancellation`].

use arrow_flight::{CancelStatus, FlightInfo};
use prost::Message;
use tonic::Status;

use crate::flight::sql_service::SqlService;
use crate::flight::ticket::Statement;

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
}
