//! The edge where errors become gRPC statuses: every layer below returns
//! its own error type, and this is the one place that picks each one's
//! code and caps its message.

use datafusion::common::DataFusionError;
use tonic::{Code, Status};

use crate::query::QueryError;
use crate::replica::ReplicaError;
use crate::source::{SourceError, SourceErrorKind};
use crate::table::ScanError;

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

impl From<SourceError> for Status {
    fn from(error: SourceError) -> Status {
        let code = match error.kind {
            SourceErrorKind::Throttled => Code::ResourceExhausted,
            SourceErrorKind::ServerError | SourceErrorKind::Transport => Code::Unavailable,
            SourceErrorKind::NotFound => Code::NotFound,
            SourceErrorKind::NoCredentials => Code::Unauthenticated,
            SourceErrorKind::AccessDenied => Code::PermissionDenied,
            SourceErrorKind::InvalidRequest => Code::InvalidArgument,
            SourceErrorKind::Malformed | SourceErrorKind::Other => Code::Unknown,
        };
        Status::new(code, cap_message(error.to_string()))
    }
}

impl From<ScanError> for Status {
    fn from(error: ScanError) -> Status {
        match error {
            ScanError::Source(source) => source.into(),
            ScanError::Arrow(arrow) => {
                Status::internal(format!("building a record batch failed: {arrow}"))
            }
        }
    }
}

impl From<QueryError> for Status {
    fn from(error: QueryError) -> Status {
        match error {
            QueryError::ReadOnly(_) => Status::permission_denied(cap_message(error.to_string())),
            QueryError::NotFound(_) => Status::not_found(cap_message(error.to_string())),
            QueryError::Invalid(_) | QueryError::Parameters(_) => {
                Status::invalid_argument(cap_message(error.to_string()))
            }
            QueryError::DataFusion(error) => status_of_datafusion(&error),
        }
    }
}

/// The gRPC status for a DataFusion error: a SageMaker failure keeps its
/// own code; the client's SQL mistakes are INVALID_ARGUMENT.
pub fn status_of_datafusion(error: &DataFusionError) -> Status {
    let root = error.find_root();
    if let DataFusionError::External(inner) = root
        && let Some(scan) = inner.downcast_ref::<ScanError>()
    {
        return match scan {
            ScanError::Source(source) => source.clone().into(),
            ScanError::Arrow(_) => Status::internal(cap_message(scan.to_string())),
        };
    }
    if let DataFusionError::External(inner) = root
        && let Some(replica) = inner.downcast_ref::<ReplicaError>()
    {
        let message = cap_message(replica.to_string());
        return match replica {
            ReplicaError::FellBehind { .. } => Status::resource_exhausted(message),
            ReplicaError::ChangesNotKept { .. } => Status::out_of_range(message),
            _ => Status::internal(message),
        };
    }
    if let DataFusionError::ResourcesExhausted(_) = root {
        return Status::resource_exhausted(cap_message(format!(
            "the query needs more memory than the server allows (--memory-limit): {root}"
        )));
    }
    let code = match root {
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Code::InvalidArgument
        }
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => Code::InvalidArgument,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        _ => Code::Internal,
    };
    Status::new(code, cap_message(root.to_string()))
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
    fn status_names_the_aws_code() {
        let status = Status::from(SourceError {
            operation: "ListCompilationJobs",
            code: Some("AccessDeniedException".into()),
            message: "no".into(),
            kind: SourceErrorKind::AccessDenied,
        });
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "SageMaker ListCompilationJobs failed: AccessDeniedException: no"
        );
    }
}
