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
//! It also answers the Resource Groups Tagging API's `GetResources`
//! (`X-Amz-Target: ResourceGroupsTaggingAPI_20170126.GetResources`, JSON
//! 1.1 as well) over the same jobs, and the few STS and Account API calls a
//! multi-account reader makes (below), on the same port: point every
//! client's `endpoint_url` at it.
//!
//! # Accounts, regions and routing
//!
//! Without [`EmulatorConfig::partitions`] (the default) the emulator is
//! single-tenant: one catalog, of `account_id` in `region`, serves every
//! SageMaker call whatever signs it.
//!
//! With partitions it is multi-tenant: each (account, region) partition has
//! its own jobs, stats, rate limits and faults, and the default
//! `(account_id, region)` is always one of them. A SageMaker call goes to
//! its signer's partition: the region of the SigV4 credential scope
//! (`Credential=AKID/20261129/us-west-2/sagemaker/aws4_request`), the
//! account of the access key id. Keys that AssumeRole issued are `EMU` +
//! the 12-digit account + a serial; every other key (the static `emulator`
//! key of `sagemaker_flight::source::emulator_client`, `test`, ...) and unsigned calls belong
//! to `account_id`, and an unsigned call or a scope without a plausible
//! region to `region`. Signatures are never checked. A partition that was
//! not configured is created empty on its first call, so it answers as an
//! AWS account with no jobs there (empty lists, Describe
//! `ResourceNotFound`) and keeps what is created in it, up to 1,024
//! partitions in all; past that a new one answers as empty and keeps
//! nothing, so callers cannot grow the emulator without bound. Tagging API
//! calls are routed the same way.
//!
//! Jobs are generated per partition: the default one from `seed` (so its
//! jobs are those of a single-tenant emulator with the same config), the
//! others from `seed` mixed with their account and region, so that names
//! differ too; ARNs carry the partition's region and account.
//! [`Emulator::partition`] gives a partition's [`EmulatorState`] (its
//! knobs, hooks and stats); [`Emulator::state`] is the default partition's.
//!
//! # STS (query protocol)
//!
//! `POST /` with `Content-Type: application/x-www-form-urlencoded` and no
//! `X-Amz-Target`, body `Action=...&Version=2011-06-15&...`; XML back
//! (`text/xml`, `x-amzn-RequestId`), errors as `<ErrorResponse><Error>
//! <Type>Sender</Type><Code/><Message/></Error><RequestId/>
//! </ErrorResponse>`.
//!
//! * `AssumeRole`: for a role of [`EmulatorConfig::roles`] whose required
//!   external id (if any) matches `ExternalId`, credentials of the role's
//!   account (the ARN's 5th field) that expire in `DurationSeconds`
//!   (900..=43200, default 3600), and the `AssumedRoleUser`
//!   (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`). The session token
//!   carries the role and session. An unknown role, or a missing or wrong
//!   external id, is HTTP 403 `AccessDenied`; a missing or malformed
//!   member is 400 `ValidationError`.
//! * `GetCallerIdentity`: `Account`, `Arn` and `UserId` of the signer: the
//!   assumed role's session when the call carries its session token, else
//!   `arn:aws:iam::ACCOUNT:user/emulator`.
//!
//! Another action is 400 `InvalidAction`; a body that does not decode is
//! 400 `MalformedQueryString`. STS calls have no latency and no faults.
//!
//! # Account API (restJson1)
//!
//! * `ListRegions`: `POST /listRegions`, JSON `{"AccountId",
//!   "RegionOptStatusContains", "MaxResults" (1..=50, default 50),
//!   "NextToken"}`, answers `{"Regions": [{"RegionName",
//!   "RegionOptStatus"}], "NextToken"}` sorted by name. The regions of the
//!   account's configured partitions (single-tenant: `region`, for every
//!   account) are `ENABLED_BY_DEFAULT`; a few opt-in regions that no
//!   partition enables are `DISABLED`. The account is `AccountId`, else
//!   the signer's. Errors are JSON 1.1's (as `application/json`). No
//!   latency, no faults.
//!
//! STS and Account calls are counted in [`IdentityStats`]
//! ([`Emulator::identity_stats`]), not in any partition's [`Stats`].
//!
//! # SageMaker operations
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
//! # Resource Groups Tagging API (JSON 1.1)
//!
//! * `GetResources` (`tagging.rs`, after botocore's
//!   `resourcegroupstaggingapi-2017-01-26` model): the partition's tagged
//!   compilation jobs (untagged and vanished jobs are absent) as
//!   `{"ResourceTagMappingList": [{"ResourceARN", "Tags": [{"Key",
//!   "Value"}]}], "PaginationToken"}`, in ARN order, tags in ListTags
//!   order. `ResourceTypeFilters` `sagemaker` or
//!   `sagemaker:compilation-job` match every job, any other type none;
//!   `TagFilters` (at most 50, each a `Key` and at most 20 `Values`) must
//!   all match, a filter's values are alternatives and no values means any
//!   value. `ResourcesPerPage` is 1..=100 (default 50: the model names no
//!   default), `TagsPerPage` 100..=500; `PaginationToken` is opaque, keyset
//!   on the ARN, tied to the filters and valid 15 minutes
//!   (`PaginationTokenExpiredException` after); the last page answers
//!   `"PaginationToken": ""`. `ResourceARNList` (1..=100, not with filters
//!   or paging members) answers those of its ARNs that are tagged jobs.
//!   With no tag policy every job is compliant (`IncludeComplianceDetails`,
//!   `ExcludeCompliantResources`). Errors are the model's:
//!   `InvalidParameterException`, `ThrottledException`,
//!   `InternalServiceException` (and 503 `ServiceUnavailable`),
//!   `PaginationTokenExpiredException`; with
//!   [`EmulatorConfig::deny_tagging_api`] (or
//!   [`EmulatorState::set_tagging_api_denied`]) every call answers 400
//!   `AccessDeniedException` ("User: ARN is not authorized to perform:
//!   tag:GetResources ...").
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
//! * Filters apply before the page is cut (`FilterPaging::BeforeCut`, the
//!   default: a page holds `MaxResults` matching jobs), or after it
//!   (`FilterPaging::AfterCut`: the page is the next `MaxResults` jobs in
//!   sort order, then filtered, so it may be short or empty and still carry
//!   a NextToken, as AWS documents for ListTrainingJobs' `StatusEquals`).
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
//! The Tagging API answers its own names (above): `ThrottledException`
//! for `ThrottlingException`, `InternalServiceException` for
//! `InternalFailure`, `InvalidParameterException` for
//! `ValidationException`.
//!
//! # Generated data
//!
//! [`EmulatorConfig::jobs`] jobs (or a partition's own count) are generated
//! deterministically from the partition's seed (above), `anchor`, region
//! and account with the emulator's own
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
//! # Knobs, in the order they apply to every SageMaker and Tagging API call
//!
//! Each partition has its own knobs, starting from the config's.
//!
//! 1. The call is routed to its partition (above).
//! 2. The call is counted and enters "in flight" (per operation and total).
//! 3. `latency` is slept (with probability `slow_rate`, 10 x `latency` +
//!    100 ms: a slow call).
//! 4. `rate_limit` (calls/s per operation, a token bucket with burst
//!    `max(1, rate)`): an empty bucket answers `ThrottlingException`
//!    (`ThrottledException` for GetResources).
//! 5. `throttle_rate`: probability of an injected `ThrottlingException`
//!    (`ThrottledException`).
//! 6. `error_rate`: probability of an injected 5xx.
//! 7. `drop_rate`: probability that the connection is dropped without an
//!    answer (the client sees the response end early).
//! 8. The operation runs (GetResources of a partition that denies the
//!    Tagging API answers `AccessDeniedException` first); the call leaves
//!    "in flight" when answered (or when the client goes away).
//!
//! `throttle_rate`, `error_rate`, `slow_rate`, `drop_rate` and `latency`
//! can change at run time ([`EmulatorState::set_faults`],
//! [`EmulatorState::set_disruptions`], [`EmulatorState::set_latency`]).
//!
//! A `POST /` that is not an STS call and whose `X-Amz-Target` is missing
//! or names another operation (or one under the other service's prefix,
//! such as `SageMaker.GetResources`) is answered `UnknownOperationException` at
//! once: no routing, no latency, no faults, and it is not counted (so the
//! stats map holds only the seven operations: the six SageMaker ones and
//! `GetResources`).
//!
//! # Test endpoints
//!
//! `?account=..&region=..` names a partition (either defaults to the
//! default partition's); a partition that does not exist is 404.
//!
//! * `GET /_emulator/stats[?account=..&region=..]`: the partition's
//!   [`Stats`] as JSON.
//! * `POST /_emulator/reset[?account=..&region=..]`: zero counters and
//!   peaks of the named partition, or without a query of every partition
//!   and of [`IdentityStats`]; answers the partition's new stats.
//! * `POST /_emulator/vanish[?account=..&region=..]` with `{"name":
//!   "..."}`: the job stays in ListCompilationJobs but
//!   Describe/ListTags/AddTags/Delete answer `ResourceNotFound`, modelling
//!   a job deleted between list and describe (404 if there is no such job).
//! * `GET /_emulator/identity-stats`: [`IdentityStats`] as JSON.
//!
//! # Layout
//!
//! `lib.rs` server and routing; `tenancy.rs` callers, partitions, roles; `api.rs` dispatch,
//! list/describe/delete/tag operations; `create.rs` CreateCompilationJob; `tagging.rs` the
//! Tagging API's GetResources; `sts.rs` STS; `account.rs` ListRegions; `partition.rs`
//! configured partitions and roles; `operation.rs` the operations; `tags.rs` tag checks;
//! `config.rs` the configuration; `paging.rs` tokens; `body.rs` JSON bodies; `form.rs` form
//! decoding; `validate.rs` service-model constraints; `shapes.rs` wire shapes; `data.rs` and
//! `catalog.rs` generation; `limits.rs` stats, token buckets and faults; `state.rs` a
//! partition's state, `job_store.rs` its jobs in the orders listings sort by; `error.rs`
//! error answers.

#![warn(missing_docs)]

mod account;
mod activity;
mod api;
mod body;
mod catalog;
mod config;
mod create;
mod data;
mod error;
mod form;
mod job_store;
mod limits;
mod operation;
mod paging;
mod partition;
mod shapes;
mod state;
mod sts;
mod tagging;
mod tags;
mod tenancy;
mod validate;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use activity::ActivityEvent;
pub use config::{DEFAULT_ACCOUNT_ID, DEFAULT_REGION, EmulatorConfig, FilterPaging};
pub use limits::{OperationStats, Stats};
pub use partition::{EmulatorPartition, EmulatorRole};
pub use state::{EmulatedJob, EmulatorState};
pub use tenancy::IdentityStats;

use error::{AMZ_JSON, ApiError};
use limits::Verdict;
use operation::Operation;
use tenancy::Tenancy;

/// A running emulator. Dropping it also stops the server (gracefully, in
/// the background); [`Emulator::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    tenancy: Arc<Tenancy>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
    /// The background activity, if configured; stops with the emulator.
    _activity: Option<activity::Background>,
}

impl Emulator {
    /// Binds `listen` (e.g. `127.0.0.1:0`) and serves in a spawned tokio
    /// task. An invalid partition or role is an `InvalidInput` error.
    pub async fn start(config: EmulatorConfig, listen: SocketAddr) -> io::Result<Emulator> {
        let tenancy = Arc::new(tenancy(&config)?);
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        // `stopped` also resolves when the sender is dropped with the handle.
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run(listener, Arc::clone(&tenancy), shutdown));
        let activity = config
            .activity
            .filter(|rate| *rate > 0.0)
            .map(|rate| activity::Background::start(Arc::clone(&tenancy.default), rate));
        Ok(Emulator {
            addr,
            tenancy,
            stop,
            task,
            _activity: activity,
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

    /// The shared state of the default partition `(account_id, region)`:
    /// jobs, stats, knobs and test hooks. Single-tenant, it serves every
    /// call.
    pub fn state(&self) -> &Arc<EmulatorState> {
        &self.tenancy.default
    }

    /// The state of the (account, region) partition: a configured one, or
    /// one a call created (multi-tenant only); `None` if neither. Its
    /// knobs (`set_faults`, `set_latency`, ...) and stats are its own.
    pub fn partition(&self, account_id: &str, region: &str) -> Option<Arc<EmulatorState>> {
        self.tenancy.partition(account_id, region)
    }

    /// Counters of the STS and Account API calls.
    pub fn identity_stats(&self) -> IdentityStats {
        self.tenancy.identity_stats()
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

/// Runs an emulator on `listen` until `shutdown` resolves, for a caller
/// that needs no [`Emulator`] handle (its state, its address).
pub async fn serve_until(
    config: EmulatorConfig,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let tenancy = Arc::new(tenancy(&config)?);
    let listener = TcpListener::bind(listen).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        jobs = config.jobs,
        partitions = config.partitions.len() + 1,
        "SageMaker emulator listening"
    );
    run(listener, tenancy, shutdown).await
}

fn tenancy(config: &EmulatorConfig) -> io::Result<Tenancy> {
    Tenancy::new(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

async fn run(
    listener: TcpListener,
    tenancy: Arc<Tenancy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = Router::new()
        .route("/", post(root_call))
        .route("/listRegions", post(list_regions))
        .route("/_emulator/stats", get(get_stats))
        .route("/_emulator/reset", post(reset_stats))
        .route("/_emulator/vanish", post(vanish))
        .route("/_emulator/identity-stats", get(get_identity_stats))
        .with_state(tenancy);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// `POST /`: STS's query protocol has no `X-Amz-Target` and a form body;
/// anything else is JSON 1.1 (SageMaker or the Tagging API).
async fn root_call(
    State(tenancy): State<Arc<Tenancy>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && !headers.contains_key("x-amz-target") {
        let caller = tenancy.caller(&headers);
        return sts::answer(&tenancy, &caller, &body, SystemTime::now());
    }
    json_call(&tenancy, &headers, &body).await
}

/// `POST /listRegions`: the Account API.
async fn list_regions(
    State(tenancy): State<Arc<Tenancy>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = tenancy.caller(&headers);
    account::answer(&tenancy, &caller, &body)
}

/// One JSON 1.1 call, of SageMaker or of the Tagging API: route to the
/// partition, count, sleep, decide, answer (see the module docs for the
/// order).
async fn json_call(tenancy: &Tenancy, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(op) = Operation::from_target(target) else {
        return ApiError::unknown_operation(target).into_response();
    };
    let state = tenancy.route(headers);
    // Leaves "in flight" on drop, even if the client disconnects mid-sleep.
    let _in_flight = state.limits.begin(op.name());
    let delay = state.limits.delay(op.name());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let result = match state.limits.decide(op.name()) {
        Verdict::Throttled => Err(ApiError::throttling(op.service())),
        Verdict::ServerError(status) => Err(ApiError::server(status, op.service())),
        Verdict::Drop => return dropped_connection(),
        Verdict::Proceed => {
            let now = state::to_millis(SystemTime::now());
            let principal = tenancy.caller(headers).arn();
            api::dispatch(&state, op, body, now, &principal)
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

/// The partition a test endpoint's `?account=..&region=..` names (either
/// defaults to the default partition's), else the status and message to
/// answer.
fn named_partition(
    tenancy: &Tenancy,
    query: Option<&str>,
) -> Result<Arc<EmulatorState>, (StatusCode, String)> {
    let pairs = form::decode(query.unwrap_or_default().as_bytes())
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad query: {e}")))?;
    let (default_account, default_region) = tenancy.default_key();
    let account = form::value(&pairs, "account").unwrap_or(default_account);
    let region = form::value(&pairs, "region").unwrap_or(default_region);
    tenancy.partition(account, region).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            format!("no partition {account}:{region}"),
        )
    })
}

fn test_endpoint_error((status, message): (StatusCode, String)) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}

/// `GET /_emulator/stats[?account=..&region=..]`: a partition's stats.
async fn get_stats(State(tenancy): State<Arc<Tenancy>>, RawQuery(query): RawQuery) -> Response {
    match named_partition(&tenancy, query.as_deref()) {
        Ok(state) => axum::Json(state.stats()).into_response(),
        Err(e) => test_endpoint_error(e),
    }
}

/// `POST /_emulator/reset`: every partition's and the identity counters;
/// with `?account=..&region=..`, only that partition's. Answers the
/// (default or named) partition's new stats.
async fn reset_stats(State(tenancy): State<Arc<Tenancy>>, RawQuery(query): RawQuery) -> Response {
    let state = match named_partition(&tenancy, query.as_deref()) {
        Ok(state) => state,
        Err(e) => return test_endpoint_error(e),
    };
    if query.as_deref().unwrap_or_default().is_empty() {
        tenancy.reset_all_stats();
    } else {
        state.reset_stats();
    }
    axum::Json(state.stats()).into_response()
}

async fn get_identity_stats(State(tenancy): State<Arc<Tenancy>>) -> Response {
    axum::Json(tenancy.identity_stats()).into_response()
}

#[derive(serde::Deserialize)]
struct VanishRequest {
    name: String,
}

/// `POST /_emulator/vanish[?account=..&region=..]` with `{"name": ".."}`.
async fn vanish(
    State(tenancy): State<Arc<Tenancy>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let state = match named_partition(&tenancy, query.as_deref()) {
        Ok(state) => state,
        Err(e) => return test_endpoint_error(e),
    };
    let req: VanishRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("expected {{\"name\": \"...\"}}: {e}");
            return test_endpoint_error((StatusCode::BAD_REQUEST, msg));
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
