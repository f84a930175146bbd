//! The Arrow Flight face of the server: the service, its tickets, and the
//! rules for what goes back to a client in a status.

pub mod fleet;
pub mod service;
pub mod sql;
pub mod ticket;

pub use fleet::Fleet;
pub use service::FlightServer;
pub use sql::SqlService;

/// Longest status message sent to a client: AWS messages and client input
/// echoed in errors are cut here so a status never balloons.
pub const MAX_STATUS_MESSAGE: usize = 1024;

/// Cuts `message` to [`MAX_STATUS_MESSAGE`] bytes on a character boundary.
pub fn cap_message(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// gRPC's canonical name of `code` (`NOT_FOUND`, `UNAUTHENTICATED`, ...),
/// as the protocol's documentation and other servers spell it: the
/// metrics' `code` label and the `query` client's error messages.
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(cap_message("short".into()), "short");
        let long = "é".repeat(MAX_STATUS_MESSAGE);
        let capped = cap_message(long);
        assert!(capped.len() <= MAX_STATUS_MESSAGE + 3);
        assert!(capped.ends_with("..."));
    }

    #[test]
    fn grpc_codes_have_their_canonical_names() {
        assert_eq!(grpc_code_name(tonic::Code::Ok), "OK");
        assert_eq!(grpc_code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(
            grpc_code_name(tonic::Code::Unauthenticated),
            "UNAUTHENTICATED"
        );
    }
}
