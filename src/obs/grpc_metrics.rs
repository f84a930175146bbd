//! The gRPC metrics layer: a tower service around the Flight service that
//! counts every RPC by method and final status (`grpc_requests_total`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::obs::metrics::{grpc_request, preregister_grpc_request};

/// The gRPC service whose methods are counted by name.
const FLIGHT_SERVICE_PREFIX: &str = "/arrow.flight.protocol.FlightService/";

/// Flight's methods: the only values of the `method` label, so a client
/// sending made-up paths cannot grow the label set.
const FLIGHT_METHODS: &[&str] = &[
    "Handshake",
    "ListFlights",
    "GetFlightInfo",
    "PollFlightInfo",
    "GetSchema",
    "DoGet",
    "DoPut",
    "DoExchange",
    "DoAction",
    "ListActions",
];

/// gRPC's canonical name of `code` (`NOT_FOUND`, `UNAUTHENTICATED`, ...),
/// as the protocol's documentation and other servers spell it: the
/// metrics' `code` label and the `query` client's error messages.
pub fn grpc_code_name(code: Code) -> &'static str {
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

/// Creates, at zero, the series of every Flight method and gRPC status.
pub fn preregister() {
    for method in FLIGHT_METHODS {
        for number in 0..=16 {
            preregister_grpc_request(method, grpc_code_name(Code::from_i32(number)));
        }
    }
}

fn count_request(method: &'static str, code: Code) {
    grpc_request(method, grpc_code_name(code));
}

/// The `method` label of a gRPC path.
fn method_of(path: &str) -> &'static str {
    path.strip_prefix(FLIGHT_SERVICE_PREFIX)
        .and_then(|method| FLIGHT_METHODS.iter().find(|known| **known == method))
        .copied()
        .unwrap_or("unknown")
}

/// The `grpc-status` of a header or trailer map, if it has one.
fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.trim().parse().ok()?))
}

/// A tower service around the Flight service that counts every RPC by
/// method and final status (`grpc_requests_total`). Put it outside
/// authentication, so refused calls count too.
#[derive(Clone, Debug)]
pub struct CountGrpcRequests<S> {
    inner: S,
}

impl<S> CountGrpcRequests<S> {
    /// Counts the RPCs of `inner`.
    pub fn new(inner: S) -> CountGrpcRequests<S> {
        CountGrpcRequests { inner }
    }
}

impl<S: NamedService> NamedService for CountGrpcRequests<S> {
    const NAME: &'static str = S::NAME;
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

impl<S, B> Service<http::Request<B>> for CountGrpcRequests<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_of(request.uri().path());
        let response = self.inner.call(request);
        let mut unanswered = Unanswered {
            method,
            answered: false,
        };
        Box::pin(async move {
            let response = response.await?;
            // From here on the body (or the headers) count the call.
            unanswered.answer();
            // An error before any message is a trailers-only response: the
            // status is in the headers.
            if let Some(code) = grpc_status(response.headers()) {
                count_request(method, code);
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = tonic::body::Body::new(StatusOfBody {
                inner: body,
                method,
                counted: false,
            });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// Counts a call as `CANCELLED` if its future is dropped before the
/// response exists (the client cancelled a unary call, or went away).
struct Unanswered {
    method: &'static str,
    answered: bool,
}

impl Unanswered {
    /// The response exists. (A method, so the async block captures the
    /// whole guard, not a copy of its flag.)
    fn answer(&mut self) {
        self.answered = true;
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if !self.answered {
            count_request(self.method, Code::Cancelled);
        }
    }
}

/// A response body that counts its call when the trailers (with the
/// status) go out, or as `CANCELLED` if it is dropped before.
struct StatusOfBody {
    inner: tonic::body::Body,
    method: &'static str,
    counted: bool,
}

impl StatusOfBody {
    fn count(&mut self, code: Code) {
        if !self.counted {
            self.counted = true;
            count_request(self.method, code);
        }
    }
}

impl Body for StatusOfBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.count(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.count(status.code()),
            // The body ended without a status: not a gRPC answer.
            Poll::Ready(None) => self.count(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for StatusOfBody {
    fn drop(&mut self) {
        // The client cancelled or went away before the status was sent.
        self.count(Code::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::metrics::render;
    use crate::obs::metrics::tests::sample;

    #[test]
    fn methods_are_a_closed_set() {
        assert_eq!(
            method_of("/arrow.flight.protocol.FlightService/DoGet"),
            "DoGet"
        );
        assert_eq!(
            method_of("/arrow.flight.protocol.FlightService/Nope"),
            "unknown"
        );
        assert_eq!(method_of("/grpc.health.v1.Health/Check"), "unknown");
    }

    #[test]
    fn statuses_are_read_from_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(grpc_status(&headers), Some(Code::NotFound));
        assert_eq!(grpc_code_name(Code::NotFound), "NOT_FOUND");
    }

    /// A Flight service that answers with `grpc-status: 0` in the headers,
    /// or never when `answers` is false.
    struct Answers {
        answers: bool,
    }

    type AnswerFuture =
        Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

    impl Service<http::Request<()>> for Answers {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = AnswerFuture;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> AnswerFuture {
            if !self.answers {
                return Box::pin(futures::future::pending());
            }
            Box::pin(async {
                let mut response = http::Response::new(tonic::body::Body::empty());
                response
                    .headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static("0"));
                Ok(response)
            })
        }
    }

    fn request(method: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(format!("{FLIGHT_SERVICE_PREFIX}{method}"))
            .body(())
            .expect("a request")
    }

    #[test]
    fn a_call_dropped_before_its_response_counts_as_cancelled_once() {
        // Methods no other test of this process calls through the counter.
        let cancelled =
            "sagemaker_flight_grpc_requests_total{method=\"PollFlightInfo\",code=\"CANCELLED\"}";
        let before = sample(&render(), cancelled);
        let mut service = CountGrpcRequests::new(Answers { answers: false });
        let mut call = service.call(request("PollFlightInfo"));
        let waker = futures::task::noop_waker();
        assert!(
            call.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(call);
        assert_eq!(sample(&render(), cancelled) - before, 1.0);

        let ok = "sagemaker_flight_grpc_requests_total{method=\"ListActions\",code=\"OK\"}";
        let cancelled =
            "sagemaker_flight_grpc_requests_total{method=\"ListActions\",code=\"CANCELLED\"}";
        let (ok_before, cancelled_before) = (sample(&render(), ok), sample(&render(), cancelled));
        let mut service = CountGrpcRequests::new(Answers { answers: true });
        let response = futures::executor::block_on(service.call(request("ListActions")));
        drop(response);
        assert_eq!(sample(&render(), ok) - ok_before, 1.0);
        assert_eq!(sample(&render(), cancelled) - cancelled_before, 0.0);
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
