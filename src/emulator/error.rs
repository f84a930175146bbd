//! AWS JSON 1.1 error answers.
//!
//! An error is an HTTP status plus a body `{"__type": "<Code>", "message":
//! "..."}`, with the code repeated in the `x-amzn-ErrorType` header; the AWS
//! SDKs read either to pick the modeled error variant.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The content type of every AWS JSON 1.1 answer, errors included.
pub(crate) const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// An error answer of the SageMaker API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `ValidationException`: a parameter breaks the service model.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(400, "ValidationException", message)
    }

    /// 400 `SerializationException`: the body is not the JSON we expect.
    pub(crate) fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, "SerializationException", message)
    }

    /// 400 `ResourceNotFound` (SageMaker's modeled not-found error).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(400, "ResourceNotFound", message)
    }

    /// 400 `ResourceInUse`, e.g. a duplicate job name.
    pub(crate) fn in_use(message: impl Into<String>) -> Self {
        Self::new(400, "ResourceInUse", message)
    }

    /// 400 `ThrottlingException` "Rate exceeded", as AWS throttles.
    pub(crate) fn throttling() -> Self {
        Self::new(400, "ThrottlingException", "Rate exceeded")
    }

    /// An injected server fault: 503 `ServiceUnavailable`, else 500
    /// `InternalFailure`.
    pub(crate) fn server(status: u16) -> Self {
        if status == 503 {
            Self::new(
                503,
                "ServiceUnavailable",
                "Service is unavailable. Please retry.",
            )
        } else {
            Self::new(
                500,
                "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.",
            )
        }
    }

    /// 400 `UnknownOperationException` for a target we do not serve.
    pub(crate) fn unknown_operation(target: &str) -> Self {
        Self::new(
            400,
            "UnknownOperationException",
            format!("Operation '{target}' is not supported by this emulator"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.code, "message": self.message }).to_string();
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(AMZ_JSON));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        resp
    }
}
