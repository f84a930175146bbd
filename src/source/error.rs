//! The source's one error type, and how it maps to a gRPC status.

use aws_sdk_sagemaker::config::http::HttpResponse;
use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};

/// What went wrong, as far as the caller needs to tell cases apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// AWS throttled the call (ThrottlingException and friends).
    Throttled,
    /// AWS answered 5xx: worth retrying.
    ServerError,
    /// The call never got an answer (connect, timeout, broken response).
    Transport,
    /// The job does not exist (any more).
    NotFound,
    /// No credentials could be found (the SDK's credential chain found
    /// none): the call was never sent.
    NoCredentials,
    /// Credentials are invalid or not allowed to make the call.
    AccessDenied,
    /// AWS rejected the request's parameters.
    InvalidRequest,
    /// AWS answered with something the model says it never sends.
    Malformed,
    /// Any other AWS error.
    Other,
}

impl SourceErrorKind {
    /// Every kind.
    pub const ALL: [SourceErrorKind; 9] = [
        SourceErrorKind::Throttled,
        SourceErrorKind::ServerError,
        SourceErrorKind::Transport,
        SourceErrorKind::NotFound,
        SourceErrorKind::NoCredentials,
        SourceErrorKind::AccessDenied,
        SourceErrorKind::InvalidRequest,
        SourceErrorKind::Malformed,
        SourceErrorKind::Other,
    ];

    /// The `outcome` label of an attempt that failed so, in the metrics.
    pub fn outcome_label(self) -> &'static str {
        match self {
            SourceErrorKind::Throttled => "throttled",
            SourceErrorKind::ServerError => "server_error",
            SourceErrorKind::Transport => "transport",
            SourceErrorKind::NotFound => "not_found",
            SourceErrorKind::NoCredentials => "no_credentials",
            SourceErrorKind::AccessDenied => "access_denied",
            SourceErrorKind::InvalidRequest => "invalid_request",
            SourceErrorKind::Malformed => "malformed",
            SourceErrorKind::Other => "other",
        }
    }
}

/// A failed SageMaker call, with the AWS error code when AWS gave one.
#[derive(Clone, Debug, thiserror::Error)]
#[error("SageMaker {operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct SourceError {
    /// The API operation, e.g. "DescribeCompilationJob".
    pub operation: &'static str,
    /// The AWS error code, e.g. "ThrottlingException".
    pub code: Option<String>,
    /// AWS's message, or a description of the transport failure.
    pub message: String,
    /// The class of failure: decides retrying and the gRPC code.
    pub kind: SourceErrorKind,
}

/// AWS error codes that mean "slow down".
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// AWS error codes that mean the caller's credentials are the problem.
const ACCESS_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];

impl SourceError {
    /// An answer that breaks AWS's own model.
    pub fn malformed(operation: &'static str, message: impl Into<String>) -> Self {
        SourceError {
            operation,
            code: None,
            message: message.into(),
            kind: SourceErrorKind::Malformed,
        }
    }

    /// Classifies an SDK error of `operation`.
    pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = error.raw_response().map(|r| r.status().as_u16());
        match &error {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let code = inner.code().map(str::to_owned);
                let message = inner
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("HTTP status {}", status.unwrap_or_default()));
                let kind = classify(code.as_deref(), status);
                SourceError {
                    operation,
                    code,
                    message,
                    kind,
                }
            }
            // Before dispatching, the SDK resolves credentials; when the
            // chain finds none, the failure is reported as a dispatch
            // failure, which retrying cannot mend.
            _ if is_credentials_error(&error) => SourceError {
                operation,
                code: None,
                message: format!(
                    "no AWS credentials: {} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                     or AWS_PROFILE / --profile)",
                    describe_chain(&error)
                ),
                kind: SourceErrorKind::NoCredentials,
            },
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => SourceError {
                operation,
                code: None,
                message: describe_chain(&error),
                kind: SourceErrorKind::Transport,
            },
            // Building or signing the request failed: usually no credentials.
            _ => SourceError {
                operation,
                code: None,
                message: describe_chain(&error),
                kind: SourceErrorKind::AccessDenied,
            },
        }
    }

    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            SourceErrorKind::Throttled | SourceErrorKind::ServerError | SourceErrorKind::Transport
        )
    }
}

/// Whether `error` or one of its sources is the SDK's CredentialsError
/// (no provider of the chain gave credentials, or one failed to).
fn is_credentials_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    // Bounded by the length of the chain, which ends in None.
    while let Some(current) = next {
        if current
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        next = current.source();
    }
    false
}

fn classify(code: Option<&str>, status: Option<u16>) -> SourceErrorKind {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => SourceErrorKind::Throttled,
        Some(c) if ACCESS_CODES.contains(&c) => SourceErrorKind::AccessDenied,
        Some("ResourceNotFound") | Some("ResourceNotFoundException") => SourceErrorKind::NotFound,
        Some("ValidationException") => SourceErrorKind::InvalidRequest,
        _ if status.is_some_and(|s| s >= 500) => SourceErrorKind::ServerError,
        _ if status == Some(429) => SourceErrorKind::Throttled,
        _ => SourceErrorKind::Other,
    }
}

/// The error and its sources on one line: the SDK's top-level Display alone
/// says only "dispatch failure".
pub fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        assert_eq!(
            classify(Some("ThrottlingException"), Some(400)),
            SourceErrorKind::Throttled
        );
        assert_eq!(
            classify(Some("InternalFailure"), Some(500)),
            SourceErrorKind::ServerError
        );
        assert_eq!(classify(None, Some(503)), SourceErrorKind::ServerError);
        assert_eq!(
            classify(Some("ResourceNotFound"), Some(400)),
            SourceErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("AccessDeniedException"), Some(400)),
            SourceErrorKind::AccessDenied
        );
        assert_eq!(
            classify(Some("Whatever"), Some(400)),
            SourceErrorKind::Other
        );
    }
}
