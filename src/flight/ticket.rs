//! DoGet tickets: protobuf messages (`proto/ticket.proto`), self-contained so
//! that any instance can serve a ticket another one issued.

use prost::Message;
use tonic::Status;

/// The generated protobuf types of `proto/ticket.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/sagemaker_flight.v1.rs"));
}

pub use proto::{TableScan, Ticket as TicketMessage, ticket::Kind as TicketKind};

/// The ticket that streams every row of `table`.
pub fn table_scan_ticket(table: &str) -> arrow_flight::Ticket {
    let message = TicketMessage {
        kind: Some(TicketKind::TableScan(TableScan {
            table: table.to_owned(),
        })),
    };
    arrow_flight::Ticket::new(message.encode_to_vec())
}

/// Decodes a client's ticket; anything that is not one of ours is
/// INVALID_ARGUMENT.
pub fn decode_ticket(bytes: &[u8]) -> Result<TicketKind, Status> {
    let message = TicketMessage::decode(bytes)
        .map_err(|e| Status::invalid_argument(format!("malformed ticket: {e}")))?;
    message
        .kind
        .ok_or_else(|| Status::invalid_argument("malformed ticket: it names no request"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_scan_ticket_round_trips() {
        let ticket = table_scan_ticket("aws.sagemaker_compilation_job");
        match decode_ticket(&ticket.ticket) {
            Ok(TicketKind::TableScan(scan)) => {
                assert_eq!(scan.table, "aws.sagemaker_compilation_job")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_and_empty_tickets_are_invalid_argument() {
        for bytes in [&b"\xff\xff\xff"[..], b"", b"SELECT 1"] {
            let status = decode_ticket(bytes).expect_err("not a ticket");
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bytes:?}");
        }
    }
}
