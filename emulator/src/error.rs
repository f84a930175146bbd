//! AWS JSON 1.1 error answers.
//!
//! An error is an HTTP status plus a body `{"__type": "<Code>", "message":
//! "..."}`, with the code repeated in the `x-amzn-ErrorType` header; the AWS
//! SDKs read either to pick the modeled error variant. The Account API
//! (restJson1) answers the same body as `application/json`; STS (the query
//! protocol) answers the same error as XML ([`ApiError::into_xml_response`]).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::operation::Service;

/// The content type of every AWS JSON 1.1 answer, errors included.
pub(crate) const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// An error answer of the SageMaker or Tagging API (or STS, Account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
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

    /// 400 "Rate exceeded", as AWS throttles: SageMaker's
    /// `ThrottlingException`, the Tagging API's modeled
    /// `ThrottledException`.
    pub(crate) fn throttling(service: Service) -> Self {
        let code = match service {
            Service::SageMaker => "ThrottlingException",
            Service::Tagging => "ThrottledException",
        };
        Self::new(400, code, "Rate exceeded")
    }

    /// An injected server fault: 503 `ServiceUnavailable`, else 500
    /// `InternalFailure` (SageMaker) or the Tagging API's modeled
    /// `InternalServiceException`.
    pub(crate) fn server(status: u16, service: Service) -> Self {
        if status == 503 {
            return Self::new(
                503,
                "ServiceUnavailable",
                "Service is unavailable. Please retry.",
            );
        }
        let code = match service {
            Service::SageMaker => "InternalFailure",
            Service::Tagging => "InternalServiceException",
        };
        Self::new(
            500,
            code,
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// 400 `InvalidParameterException`: the Tagging API's validation error.
    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterException", message)
    }

    /// 400 `PaginationTokenExpiredException`: a Tagging API token too old.
    pub(crate) fn pagination_token_expired(message: impl Into<String>) -> Self {
        Self::new(400, "PaginationTokenExpiredException", message)
    }

    /// 400 `AccessDeniedException`: IAM denies the caller the action.
    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        Self::new(400, "AccessDeniedException", message)
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

impl ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    /// The error as a restJson1 service (the Account API) answers it: the
    /// JSON 1.1 body and header, content type `application/json`.
    pub(crate) fn into_rest_json_response(self) -> Response {
        let mut resp = self.into_response();
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        resp
    }

    /// The error as the query protocol (STS) answers it:
    /// `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/>
    /// </Error><RequestId/></ErrorResponse>`, as `text/xml`.
    pub(crate) fn into_xml_response(self, request_id: &str) -> Response {
        let fault = if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        let body = format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{fault}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            self.code,
            xml_escape(&self.message),
            xml_escape(request_id),
        );
        xml_response(self.status_code(), body, request_id)
    }
}

/// A `text/xml` answer with its request id header, as STS sends them.
pub(crate) fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    resp
}

/// Text made safe for an XML element's content.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.code, "message": self.message }).to_string();
        let mut resp = (self.status_code(), body).into_response();
        let headers = resp.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(AMZ_JSON));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        resp
    }
}
