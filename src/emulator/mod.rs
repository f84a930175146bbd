//! A SageMaker emulator for the compilation-job APIs, for tests and demos.
//!
//! It is an HTTP server speaking SageMaker's AWS JSON 1.1 protocol: `POST /`
//! with header `X-Amz-Target: SageMaker.<Operation>` and a JSON body, JSON
//! back with content type `application/x-amz-json-1.1`. The real
//! `aws-sdk-sagemaker` client talks to it when pointed at
//! [`Emulator::endpoint_url`] via `endpoint_url`; SigV4 signatures are
//! accepted without being checked. Shapes follow AWS's service model
//! (`sagemaker-2017-07-24`): PascalCase members, timestamps as epoch seconds
//! with millisecond precision (e.g. `1700000000.123`).
//!
//! # Operations
//!
//! * `ListCompilationJobs`: filters, sort and pagination (below).
//! * `DescribeCompilationJob`: every member the job has. `FailureReason`
//!   (`""` unless FAILED), `ModelArtifacts` and `LastModifiedTime` are
//!   always sent because the model requires them.
//! * `ListTags`: tags of a compilation-job ARN in creation order, at most 50
//!   a page (`MaxResults` defaults to 50 and must be >= 50). A non-job or
//!   unknown ARN answers `ResourceNotFound`.
//! * `CreateCompilationJob`: validates the model's required members and
//!   constraints; a duplicate name is `ResourceInUse`. The job starts
//!   `INPROGRESS` with `CreationTime = LastModifiedTime =
//!   CompilationStartTime = now` and stays so (jobs never progress on
//!   their own). A job created from `ModelPackageVersionArn` alone gets a
//!   placeholder `InputConfig`, since Describe requires one.
//! * `DeleteCompilationJob`: unknown name is `ResourceNotFound`; as on AWS
//!   only COMPLETED, FAILED or STOPPED jobs can be deleted, others answer
//!   `ValidationException`.
//! * `AddTags`: adds or overwrites tags (an existing key keeps its place in
//!   the ListTags order) and returns the tags it was given.
//!
//! # ListCompilationJobs semantics
//!
//! * `CreationTimeAfter` / `LastModifiedTimeAfter` keep jobs whose time is
//!   strictly greater; `...Before` strictly less. A bound equal to a job's
//!   time therefore excludes that job. Times compare as epoch seconds.
//! * `NameContains` is a case-insensitive substring match; it must match
//!   `[a-zA-Z0-9\-]+` and be at most 63 characters.
//! * `StatusEquals` is an exact status match.
//! * `SortBy` is `Name`, `CreationTime` (default) or `Status`; `SortOrder` is
//!   `Ascending` (default, per AWS's docs) or `Descending`. Names and
//!   statuses sort by byte order (so `Status` sorts alphabetically). Ties
//!   are broken by name, so the order is total and pages are stable;
//!   `Descending` is the exact reverse of `Ascending`.
//! * `MaxResults` is 1..=100 (default 10, as AWS), else
//!   `ValidationException`.
//! * `NextToken` is opaque. It records the last job returned (keyset
//!   paging), so jobs created or deleted between pages neither shift nor
//!   repeat others. A token that does not decode, or that was issued for
//!   different filters or sort, is a `ValidationException`; an empty token
//!   means the first page. `MaxResults` may change between pages.
//!
//! # Errors
//!
//! HTTP 400 with `{"__type": "<Code>", "message": "..."}` and the same code
//! in `x-amzn-ErrorType`: `ValidationException` (AWS-style message
//! "N validation error(s) detected: ..."), `SerializationException`
//! (malformed JSON or wrong member types), `ResourceNotFound`,
//! `ResourceInUse`, `ThrottlingException` ("Rate exceeded"),
//! `UnknownOperationException`. Injected server errors are HTTP 500
//! `InternalFailure` (three times in four) or 503 `ServiceUnavailable`.
//!
//! # Generated data
//!
//! [`EmulatorConfig::jobs`] jobs are generated deterministically from
//! `seed`, `anchor`, `region` and `account_id` with the emulator's own
//! SplitMix64 PRNG (stable across crate versions): unique valid names
//! (some capitalised), all six statuses when there are at least 6 jobs
//! (mostly COMPLETED), realistic failure reasons, start/end times consistent
//! with the status (running jobs are recent and have no end time), creation
//! times over the year before the anchor, `LastModifiedTime >= CreationTime`,
//! and the optional members filled as AWS fills them (inference images on
//! cloud targets, model digests on COMPLETED jobs, VPC configs, KMS keys,
//! compiler options, model packages, derived input configs). Most jobs have
//! 0..=6 tags; at least one job (`jobs >= 10`), two (`jobs >= 100`), has
//! 51..=80 tags so that ListTags pages.
//!
//! # Knobs, in the order they apply to every call
//!
//! 1. The call is counted and enters "in flight" (per operation and total).
//! 2. `latency` is slept (with probability `slow_rate`, 10 x `latency` +
//!    100 ms: a slow call).
//! 3. `rate_limit` (calls/s per operation, a token bucket with burst
//!    `max(1, rate)`): an empty bucket answers `ThrottlingException`.
//! 4. `throttle_rate`: probability of an injected `ThrottlingException`.
//! 5. `error_rate`: probability of an injected 5xx.
//! 6. `drop_rate`: probability that the connection is dropped without an
//!    answer (the client sees the response end early).
//! 7. The operation runs; the call leaves "in flight" when answered (or
//!    when the client goes away).
//!
//! `throttle_rate`, `error_rate`, `slow_rate`, `drop_rate` and `latency`
//! can change at run time ([`EmulatorState::set_faults`],
//! [`EmulatorState::set_disruptions`], [`EmulatorState::set_latency`]).
//!
//! A request whose `X-Amz-Target` is missing or names another operation is
//! answered `UnknownOperationException` at once: no latency, no faults, and
//! it is not counted (so the stats map holds only the six operations).
//!
//! # Test endpoints
//!
//! * `GET /_emulator/stats`: [`Stats`] as JSON.
//! * `POST /_emulator/reset`: zero counters and peaks; answers the new stats.
//! * `POST /_emulator/vanish` with `{"name": "..."}`: the job stays in
//!   ListCompilationJobs but Describe/ListTags/AddTags/Delete answer
//!   `ResourceNotFound`, modelling a job deleted between list and describe
//!   (404 if there is no such job).
//!
//! # Layout
//!
//! `mod.rs` server and routing; `api.rs` dispatch, list/describe/delete/tag
//! operations; `create.rs` CreateCompilationJob; `paging.rs` tokens;
//! `validate.rs` service-model constraints; `shapes.rs` wire shapes;
//! `data.rs` and `catalog.rs` generation; `limits.rs` stats, token buckets
//! and faults; `state.rs` the shared state; `error.rs` error answers.

mod api;
mod catalog;
mod create;
mod data;
mod error;
mod limits;
mod paging;
mod shapes;
mod state;
mod validate;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use limits::{OperationStats, Stats};
pub use state::{EmulatedJob, EmulatorState};

use api::Operation;
use error::{AMZ_JSON, ApiError};
use limits::Verdict;

/// How to build and run an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Number of jobs to generate at start.
    pub jobs: usize,
    /// Seed of the generated data (and of the fault dice).
    pub seed: u64,
    /// Latency added to every API call before it is answered.
    pub latency: Duration,
    /// Probability (0..=1) that a call answers `ThrottlingException`.
    pub throttle_rate: f64,
    /// Probability (0..=1) that a call answers an injected 5xx.
    pub error_rate: f64,
    /// Probability (0..=1) that a call is slow (10 x latency + 100 ms).
    pub slow_rate: f64,
    /// Probability (0..=1) that a call's connection is dropped unanswered.
    pub drop_rate: f64,
    /// Calls per second allowed per operation (token bucket, burst
    /// `max(1, rate)`); `None` means unlimited.
    pub rate_limit: Option<f64>,
    /// Region in generated ARNs and URIs (default `us-east-1`).
    pub region: String,
    /// Account in generated ARNs (default `123456789012`).
    pub account_id: String,
    /// Generated times lie in the year before this instant; `None` means
    /// the time of start. Set it for byte-identical data across runs.
    pub anchor: Option<SystemTime>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            jobs: 0,
            seed: 0,
            latency: Duration::ZERO,
            throttle_rate: 0.0,
            error_rate: 0.0,
            slow_rate: 0.0,
            drop_rate: 0.0,
            rate_limit: None,
            region: "us-east-1".to_string(),
            account_id: "123456789012".to_string(),
            anchor: None,
        }
    }
}

/// A running emulator. Dropping it also stops the server (gracefully, in
/// the background); [`Emulator::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<EmulatorState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Emulator {
    /// Binds `listen` (e.g. `127.0.0.1:0`) and serves in a spawned tokio task.
    pub async fn start(config: EmulatorConfig, listen: SocketAddr) -> io::Result<Emulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(EmulatorState::new(&config));
        let (stop, stopped) = oneshot::channel::<()>();
        // `stopped` also resolves when the sender is dropped with the handle.
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run(listener, Arc::clone(&state), shutdown));
        Ok(Emulator {
            addr,
            state,
            stop,
            task,
        })
    }

    /// The address actually bound (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for the SDK's `endpoint_url`. A wildcard
    /// bind address is replaced by the matching loopback address.
    pub fn endpoint_url(&self) -> String {
        let ip = match self.addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => Ipv4Addr::LOCALHOST.into(),
            ip if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The shared state: jobs, stats, knobs and test hooks.
    pub fn state(&self) -> &Arc<EmulatorState> {
        &self.state
    }

    /// Stops accepting connections, lets in-flight calls finish, and waits
    /// for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("emulator server ended with error: {e}"),
            Err(e) => tracing::warn!("emulator server task failed: {e}"),
        }
    }
}

/// Runs an emulator on `listen` until `shutdown` resolves (used by the
/// `sagemaker-flight emulator` subcommand).
pub async fn serve_until(
    config: EmulatorConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        jobs = config.jobs,
        "SageMaker emulator listening"
    );
    run(listener, Arc::new(EmulatorState::new(&config)), shutdown).await
}

async fn run(
    listener: TcpListener,
    state: Arc<EmulatorState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = Router::new()
        .route("/", post(api_call))
        .route("/_emulator/stats", get(get_stats))
        .route("/_emulator/reset", post(reset_stats))
        .route("/_emulator/vanish", post(vanish))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// One SageMaker API call: account, sleep, decide, answer (see the module
/// docs for the order).
async fn api_call(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(op) = target
        .strip_prefix("SageMaker.")
        .and_then(Operation::from_name)
    else {
        return ApiError::unknown_operation(target).into_response();
    };
    // Leaves "in flight" on drop, even if the client disconnects mid-sleep.
    let _in_flight = state.limits.begin(op.name());
    let delay = state.limits.delay(op.name());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let result = match state.limits.decide(op.name()) {
        Verdict::Throttled => Err(ApiError::throttling()),
        Verdict::ServerError(status) => Err(ApiError::server(status)),
        Verdict::Drop => return dropped_connection(),
        Verdict::Proceed => {
            let now = state::to_millis(SystemTime::now());
            api::dispatch(&state, op, &body, now)
        }
    };
    match result {
        Ok(value) => {
            let mut resp = (StatusCode::OK, value.to_string()).into_response();
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static(AMZ_JSON));
            resp
        }
        Err(e) => {
            tracing::debug!(operation = op.name(), code = e.code, "{}", e.message);
            e.into_response()
        }
    }
}

/// A response that promises a body and fails before sending it: the server
/// closes the connection mid-answer, as a dropped connection looks to the
/// client.
fn dropped_connection() -> Response {
    let body = axum::body::Body::from_stream(futures::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "emulator: connection dropped (drop_rate)",
        ))
    }));
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(AMZ_JSON));
    resp.headers_mut()
        .insert("content-length", HeaderValue::from_static("64"));
    resp
}

async fn get_stats(State(state): State<Arc<EmulatorState>>) -> Response {
    axum::Json(state.stats()).into_response()
}

async fn reset_stats(State(state): State<Arc<EmulatorState>>) -> Response {
    state.reset_stats();
    axum::Json(state.stats()).into_response()
}

#[derive(serde::Deserialize)]
struct VanishRequest {
    name: String,
}

async fn vanish(State(state): State<Arc<EmulatorState>>, body: Bytes) -> Response {
    let req: VanishRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("expected {{\"name\": \"...\"}}: {e}");
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({ "message": msg })),
            )
                .into_response();
        }
    };
    let found = state.vanish(&req.name);
    let status = if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    (status, axum::Json(serde_json::json!({ "vanished": found }))).into_response()
}
