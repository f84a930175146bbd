//! Prometheus metrics: one process-wide registry, counted where things
//! happen (one line per call site), served as text at `GET /metrics` on a
//! listener of its own (`--metrics-listen`).
//!
//! Every name starts with `sagemaker_flight_`; counters end in `_total`:
//!
//! - `grpc_requests_total{method, code}`: Flight RPCs by method and final
//!   gRPC status (a streaming call's status is read from its trailers; a
//!   call whose client went away before the end, before or after its
//!   response headers, counts as `CANCELLED`).
//! - `sagemaker_calls_total{operation, outcome, account, region}`: every
//!   attempt of a SageMaker call; `outcome` is `ok`, `throttled`,
//!   `server_error`, `transport`, `not_found`, `access_denied`,
//!   `invalid_request`, `malformed` or `other`. `account` and `region` are
//!   the partition's, empty when the server does not know them (one region,
//!   no accounts file).
//! - `sagemaker_retries_total{operation, account, region}`: attempts that
//!   were retried.
//! - `cache_hits_total{answer}`, `cache_misses_total{answer}`: lookups of
//!   the Describe (`answer="describe"`) and ListTags (`answer="tags"`)
//!   cache.
//! - `rows_sent_total`, `bytes_sent_total`: rows and FlightData bytes
//!   streamed to clients (queries and catalog metadata).
//! - `queries_running`: queries running now, from their DoGet (admission
//!   and planning included) until their stream ends, fails or is dropped.
//! - `query_duration_seconds{outcome}`: from a query's DoGet to the end of
//!   its stream; `outcome` is `ok`, `error` or `cancelled`.
//! - `query_first_batch_seconds`: from a query's DoGet to its first batch.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use arrow_flight::FlightData;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};

use crate::source::{PartitionKey, SourceError, SourceErrorKind};

/// The content type of the text exposition format `prometheus-client`
/// writes (OpenMetrics, which Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    method: &'static str,
    code: &'static str,
}

/// The (account, region) a SageMaker call went to, as label values. Empty
/// where the server does not know them: with one region and no accounts
/// file it asks no STS call to find its account, and keeps the SDK's region
/// out of its pruning and its labels alike.
///
/// Shared strings: every call clones them into its label set, and a
/// reference count is cheaper there than an allocation.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct PartitionLabels {
    account: Arc<str>,
    region: Arc<str>,
}

impl From<&PartitionKey> for PartitionLabels {
    fn from(key: &PartitionKey) -> Self {
        PartitionLabels {
            account: key.account_id.as_deref().unwrap_or_default().into(),
            region: key.region.as_deref().unwrap_or_default().into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    outcome: &'static str,
    account: Arc<str>,
    region: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
    account: Arc<str>,
    region: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    answer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Seconds buckets of the query histograms: 5 ms to about 5.5 minutes
/// (the default query timeout is 5 minutes).
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

struct Metrics {
    registry: Registry,
    grpc_requests: Family<GrpcLabels, Counter>,
    sagemaker_calls: Family<CallLabels, Counter>,
    sagemaker_retries: Family<OperationLabels, Counter>,
    cache_hits: Family<AnswerLabels, Counter>,
    cache_misses: Family<AnswerLabels, Counter>,
    rows_sent: Counter,
    bytes_sent: Counter,
    queries_running: Gauge,
    query_duration: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    query_first_batch: Histogram,
}

impl Metrics {
    fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::with_prefix("sagemaker_flight"),
            grpc_requests: Family::default(),
            sagemaker_calls: Family::default(),
            sagemaker_retries: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            rows_sent: Counter::default(),
            bytes_sent: Counter::default(),
            queries_running: Gauge::default(),
            query_duration: Family::new_with_constructor(seconds_histogram),
            query_first_batch: seconds_histogram(),
        };
        let mut registry = metrics.registry;
        registry.register(
            "grpc_requests",
            "Flight RPCs by method and final gRPC status code",
            metrics.grpc_requests.clone(),
        );
        registry.register(
            "sagemaker_calls",
            "SageMaker call attempts by operation and outcome",
            metrics.sagemaker_calls.clone(),
        );
        registry.register(
            "sagemaker_retries",
            "SageMaker call attempts that failed and were tried again",
            metrics.sagemaker_retries.clone(),
        );
        registry.register(
            "cache_hits",
            "Cache lookups answered from the cache, by answer (describe, tags)",
            metrics.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Cache lookups that needed a SageMaker call, by answer (describe, tags)",
            metrics.cache_misses.clone(),
        );
        registry.register(
            "rows_sent",
            "Rows streamed to clients",
            metrics.rows_sent.clone(),
        );
        registry.register(
            "bytes_sent",
            "FlightData bytes streamed to clients",
            metrics.bytes_sent.clone(),
        );
        registry.register(
            "queries_running",
            "Queries running now, from their DoGet (admission and planning included) to the end of their stream",
            metrics.queries_running.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Seconds from a query's DoGet to the end of its stream, by outcome (ok, error, cancelled)",
            metrics.query_duration.clone(),
        );
        registry.register(
            "query_first_batch_seconds",
            "Seconds from a query's DoGet to its first batch",
            metrics.query_first_batch.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

/// The process's metrics: call sites stay one line, and tests read the
/// same registry the listener serves.
static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Every metric in the text exposition format.
pub fn render() -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &METRICS.registry);
    text
}

/// Counts one attempt of a SageMaker call to `partition` and how it ended.
pub fn sagemaker_call<T>(
    operation: &'static str,
    partition: &PartitionLabels,
    result: &Result<T, SourceError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(error) => outcome_of(error.kind),
    };
    METRICS
        .sagemaker_calls
        .get_or_create(&CallLabels {
            operation,
            outcome,
            account: partition.account.clone(),
            region: partition.region.clone(),
        })
        .inc();
}

fn outcome_of(kind: SourceErrorKind) -> &'static str {
    match kind {
        SourceErrorKind::Throttled => "throttled",
        SourceErrorKind::ServerError => "server_error",
        SourceErrorKind::Transport => "transport",
        SourceErrorKind::NotFound => "not_found",
        SourceErrorKind::AccessDenied => "access_denied",
        SourceErrorKind::InvalidRequest => "invalid_request",
        SourceErrorKind::Malformed => "malformed",
        SourceErrorKind::Other => "other",
    }
}

/// Counts a failed attempt (to `partition`) that is tried again.
pub fn sagemaker_retry(operation: &'static str, partition: &PartitionLabels) {
    METRICS
        .sagemaker_retries
        .get_or_create(&OperationLabels {
            operation,
            account: partition.account.clone(),
            region: partition.region.clone(),
        })
        .inc();
}

/// Counts a cache lookup of `answer` ("describe" or "tags").
pub fn cache_lookup(answer: &'static str, hit: bool) {
    let family = if hit {
        &METRICS.cache_hits
    } else {
        &METRICS.cache_misses
    };
    family.get_or_create(&AnswerLabels { answer }).inc();
}

/// Counts a FlightData message sent to a client; returns the rows it holds
/// (0 for a schema or dictionary message).
pub fn flight_data_sent(data: &FlightData) -> u64 {
    let bytes = data.data_header.len() + data.data_body.len() + data.app_metadata.len();
    METRICS.bytes_sent.inc_by(bytes as u64);
    let rows = rows_of(data);
    if rows > 0 {
        METRICS.rows_sent.inc_by(rows);
    }
    rows
}

/// The rows of a record batch message, read from its IPC header.
fn rows_of(data: &FlightData) -> u64 {
    arrow::ipc::root_as_message(&data.data_header)
        .ok()
        .and_then(|message| message.header_as_record_batch())
        .map_or(0, |batch| u64::try_from(batch.length()).unwrap_or(0))
}

/// A query stream started.
pub fn query_started() {
    METRICS.queries_running.inc();
}

/// A query stream ended (`outcome`: ok, error, cancelled) after `elapsed`,
/// its first batch after `first_batch` if it sent one.
pub fn query_ended(
    outcome: &'static str,
    elapsed: std::time::Duration,
    first_batch: Option<std::time::Duration>,
) {
    METRICS.queries_running.dec();
    METRICS
        .query_duration
        .get_or_create(&OutcomeLabels { outcome })
        .observe(elapsed.as_secs_f64());
    if let Some(first_batch) = first_batch {
        METRICS.query_first_batch.observe(first_batch.as_secs_f64());
    }
}

fn grpc_request(method: &'static str, code: Code) {
    METRICS
        .grpc_requests
        .get_or_create(&GrpcLabels {
            method,
            code: code_name(code),
        })
        .inc();
}

/// The `method` label of a gRPC path.
fn method_of(path: &str) -> &'static str {
    path.strip_prefix(FLIGHT_SERVICE_PREFIX)
        .and_then(|method| FLIGHT_METHODS.iter().find(|known| **known == method))
        .copied()
        .unwrap_or("unknown")
}

/// gRPC's canonical name of `code`, as in the protocol's documentation.
fn code_name(code: Code) -> &'static str {
    crate::flight::grpc_code_name(code)
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
                grpc_request(method, code);
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
            grpc_request(self.method, Code::Cancelled);
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
            grpc_request(self.method, code);
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

/// The metrics listener; dropping it stops it.
#[derive(Debug)]
pub struct MetricsListener {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsListener {
    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `GET /metrics` on `address` (no listener when `None`), and prints
/// `sagemaker-flight metrics on http://ADDR/metrics` on stdout once it
/// accepts connections (with port 0, that is how to learn the port).
pub async fn listen(address: Option<SocketAddr>) -> std::io::Result<Option<MetricsListener>> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], render()) }),
    );
    println!("sagemaker-flight metrics on http://{address}/metrics");
    tracing::info!(%address, "metrics listening");
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
    Ok(Some(MetricsListener { address, task }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `series` (name and labels, exactly as
    /// rendered) in `text`, 0 when absent.
    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

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
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
    }

    #[test]
    fn counters_render_with_the_prefix_and_move_by_what_was_counted() {
        // The registry is shared by the tests of this process: deltas only.
        // (A labelled family shows nothing until its first sample.)
        let series = "sagemaker_flight_cache_hits_total{answer=\"tags\"}";
        let before = sample(&render(), series);
        cache_lookup("tags", true);
        cache_lookup("tags", true);
        cache_lookup("tags", false);
        let text = render();
        assert_eq!(sample(&text, series) - before, 2.0, "{text}");
        assert!(
            text.contains("# TYPE sagemaker_flight_query_first_batch_seconds histogram"),
            "{text}"
        );
        let error: Result<(), SourceError> = Err(SourceError::malformed("ListTags", "test"));
        let series = "sagemaker_flight_sagemaker_calls_total{operation=\"ListTags\",\
                      outcome=\"malformed\",account=\"\",region=\"\"}";
        let before = sample(&render(), series);
        sagemaker_call("ListTags", &PartitionLabels::default(), &error);
        assert_eq!(sample(&render(), series) - before, 1.0);
        let partition = PartitionLabels::from(&PartitionKey::new("111122223333", "eu-west-1"));
        let series = "sagemaker_flight_sagemaker_retries_total{operation=\"ListTags\",\
                      account=\"111122223333\",region=\"eu-west-1\"}";
        let before = sample(&render(), series);
        sagemaker_retry("ListTags", &partition);
        assert_eq!(sample(&render(), series) - before, 1.0);
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
}
