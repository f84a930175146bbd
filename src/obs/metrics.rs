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
//!   `server_error`, `transport`, `not_found`, `no_credentials`, `access_denied`,
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
//! - `change_feeds_reading`: change feeds reading the store now, from a
//!   feed query's start until its client cancels, disconnects or falls
//!   behind.
//! - `query_duration_seconds{outcome}`: from a query's DoGet to the end of
//!   its stream; `outcome` is `ok`, `error` or `cancelled`.
//! - `query_first_batch_seconds`: from a query's DoGet to its first batch.
//! - `replica_runs_total{kind, outcome, account, region}`: runs of a
//!   partition's collector (`kind`: `full_scan`, `refresh`, `reconcile`,
//!   `tags_refresh`; `outcome`: `ok` or `error`).
//! - `replica_last_success_seconds{account, region}`: when the partition's
//!   collector last finished a run (Unix seconds): its replica is at most
//!   that old.
//! - `replica_rows_written_total{account, region}`: rows the collector
//!   wrote (new or changed jobs).

use std::sync::{Arc, LazyLock};

use arrow_flight::FlightData;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

impl PartitionLabels {
    /// The labels of a call to `account` in `region` (empty: not known).
    pub fn new(account: &str, region: &str) -> PartitionLabels {
        PartitionLabels {
            account: account.into(),
            region: region.into(),
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
struct ReplicaRunLabels {
    kind: &'static str,
    outcome: &'static str,
    account: Arc<str>,
    region: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabelSet {
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
    change_feeds_reading: Gauge,
    fleet_members: Gauge,
    query_duration: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    query_first_batch: Histogram,
    replica_runs: Family<ReplicaRunLabels, Counter>,
    replica_last_success: Family<PartitionLabelSet, Gauge>,
    replica_rows_written: Family<PartitionLabelSet, Counter>,
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
            change_feeds_reading: Gauge::default(),
            fleet_members: Gauge::default(),
            query_duration: Family::new_with_constructor(seconds_histogram),
            query_first_batch: seconds_histogram(),
            replica_runs: Family::default(),
            replica_last_success: Family::default(),
            replica_rows_written: Family::default(),
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
            "change_feeds_reading",
            "Change feeds reading the store now, until their client cancels, disconnects or falls behind",
            metrics.change_feeds_reading.clone(),
        );
        registry.register(
            "fleet_members",
            "Live members of this instance's fleet, itself included (0: no fleet configured)",
            metrics.fleet_members.clone(),
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
        registry.register(
            "replica_runs",
            "Runs of a partition's replica collector, by kind and outcome (ok, error)",
            metrics.replica_runs.clone(),
        );
        registry.register(
            "replica_last_success_seconds",
            "When the partition's replica collector last finished a run (Unix seconds)",
            metrics.replica_last_success.clone(),
        );
        registry.register(
            "replica_rows_written",
            "Rows the partition's replica collector wrote (new or changed jobs)",
            metrics.replica_rows_written.clone(),
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

/// Counts one attempt of a SageMaker call to `partition` and how it ended
/// (`outcome`: `ok`, or the kind of error, as listed in the module doc).
pub fn sagemaker_call(operation: &'static str, partition: &PartitionLabels, outcome: &'static str) {
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

/// The `answer` label of a Describe cache lookup.
pub const DESCRIBE_ANSWER: &str = "describe";
/// The `answer` label of a ListTags cache lookup.
pub const TAGS_ANSWER: &str = "tags";
/// The answers the cache is looked up for.
pub const CACHE_ANSWERS: [&str; 2] = [DESCRIBE_ANSWER, TAGS_ANSWER];
/// How a query ends (the `outcome` label of the query histograms).
pub const QUERY_OUTCOMES: [&str; 3] = ["ok", "error", "cancelled"];

/// Creates, at zero, the call series of `operation` for every one of
/// `outcomes`, and its retry series, in `partition`.
pub fn preregister_sagemaker_calls(
    operation: &'static str,
    outcomes: &[&'static str],
    partition: &PartitionLabels,
) {
    for &outcome in outcomes {
        let _ = METRICS.sagemaker_calls.get_or_create(&CallLabels {
            operation,
            outcome,
            account: partition.account.clone(),
            region: partition.region.clone(),
        });
    }
    let _ = METRICS.sagemaker_retries.get_or_create(&OperationLabels {
        operation,
        account: partition.account.clone(),
        region: partition.region.clone(),
    });
}

/// Creates, at zero, the cache and query series of every known label value.
pub fn preregister_process() {
    for answer in CACHE_ANSWERS {
        let _ = METRICS.cache_hits.get_or_create(&AnswerLabels { answer });
        let _ = METRICS.cache_misses.get_or_create(&AnswerLabels { answer });
    }
    for outcome in QUERY_OUTCOMES {
        let _ = METRICS
            .query_duration
            .get_or_create(&OutcomeLabels { outcome });
    }
}

/// Creates, at zero, a Flight RPC series for `method` and status `code`.
pub(super) fn preregister_grpc_request(method: &'static str, code: &'static str) {
    let _ = METRICS
        .grpc_requests
        .get_or_create(&GrpcLabels { method, code });
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

/// A change feed started reading the store; it stops when the returned
/// guard is dropped.
pub fn change_feed_reading() -> ChangeFeedReading {
    METRICS.change_feeds_reading.inc();
    ChangeFeedReading(())
}

/// Counts a change feed as reading until dropped.
#[derive(Debug)]
pub struct ChangeFeedReading(());

impl Drop for ChangeFeedReading {
    fn drop(&mut self) {
        METRICS.change_feeds_reading.dec();
    }
}

/// The fleet now has `members` live members, this instance included.
pub fn set_fleet_members(members: usize) {
    METRICS
        .fleet_members
        .set(i64::try_from(members).unwrap_or(i64::MAX));
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
/// Counts a Flight RPC by method and final status (`code`: gRPC's name).
pub(super) fn grpc_request(method: &'static str, code: &'static str) {
    METRICS
        .grpc_requests
        .get_or_create(&GrpcLabels { method, code })
        .inc();
}

/// Counts one run of `partition`'s replica collector (`kind` as in the
/// module doc) and, when it succeeded, the rows it wrote and its time.
pub fn replica_run(kind: &'static str, partition: &PartitionLabels, written: Option<usize>) {
    let labels = PartitionLabelSet {
        account: Arc::clone(&partition.account),
        region: Arc::clone(&partition.region),
    };
    METRICS
        .replica_runs
        .get_or_create(&ReplicaRunLabels {
            kind,
            outcome: if written.is_some() { "ok" } else { "error" },
            account: Arc::clone(&partition.account),
            region: Arc::clone(&partition.region),
        })
        .inc();
    if let Some(written) = written {
        METRICS
            .replica_rows_written
            .get_or_create(&labels)
            .inc_by(written as u64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        METRICS
            .replica_last_success
            .get_or_create(&labels)
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }
}

/// The kinds of replica run, as `replica_runs_total` labels them.
const REPLICA_RUN_KINDS: [&str; 4] = ["full_scan", "refresh", "reconcile", "tags_refresh"];

/// Makes `partition`'s replica series exist at zero from the first scrape.
pub fn preregister_replica(partition: &PartitionLabels) {
    for kind in REPLICA_RUN_KINDS {
        for outcome in ["ok", "error"] {
            let _ = METRICS.replica_runs.get_or_create(&ReplicaRunLabels {
                kind,
                outcome,
                account: Arc::clone(&partition.account),
                region: Arc::clone(&partition.region),
            });
        }
    }
    let _ = METRICS
        .replica_rows_written
        .get_or_create(&PartitionLabelSet {
            account: Arc::clone(&partition.account),
            region: Arc::clone(&partition.region),
        });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The value of the sample `series` (name and labels, exactly as
    /// rendered) in `text`, 0 when absent.
    pub(crate) fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
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
        let series = "sagemaker_flight_sagemaker_calls_total{operation=\"ListTags\",\
                      outcome=\"malformed\",account=\"\",region=\"\"}";
        let before = sample(&render(), series);
        sagemaker_call("ListTags", &PartitionLabels::default(), "malformed");
        assert_eq!(sample(&render(), series) - before, 1.0);
        let partition = PartitionLabels::new("111122223333", "eu-west-1");
        let series = "sagemaker_flight_sagemaker_retries_total{operation=\"ListTags\",\
                      account=\"111122223333\",region=\"eu-west-1\"}";
        let before = sample(&render(), series);
        sagemaker_retry("ListTags", &partition);
        assert_eq!(sample(&render(), series) - before, 1.0);
    }
}
