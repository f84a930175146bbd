//! One `query` span per query, which knows how many SageMaker calls the
//! query made.
//!
//! A query's span has the fields `query_id` and `sql` from the start, and
//! `outcome`, `rows`, `elapsed_ms` and the calls per operation
//! (`list_calls`, `describe_calls`, `tags_calls`) at the end, when the
//! event "query finished" (with the same fields) is logged in it.
//!
//! Counting calls per query: the span carries a counter (an extension of
//! the span in the subscriber's registry), and every SageMaker attempt adds
//! to the counter of the `query` span it runs in. The query's work runs in
//! other tasks (the governor's, DataFusion's, the source's lister), so the
//! span follows it there: the governed stream is polled inside the span,
//! DataFusion's spawned tasks are instrumented through its
//! [`JoinSetTracer`], and the source's own task with `in_current_span`.
//! With no subscriber, or the span filtered out, nothing is counted and
//! nothing is logged.

use std::any::Any;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_flight::FlightData;
use datafusion::common::runtime::{JoinSetTracer, set_join_set_tracer};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream};
use tonic::Status;
use tracing::Span;
use tracing::field::Empty;
use tracing::instrument::Instrument;
use tracing_subscriber::registry::LookupSpan;

/// Longest SQL text a query's span carries: a longer statement is cut, so
/// one query cannot flood the log.
pub const MAX_LOGGED_SQL: usize = 1024;

/// `sql`, cut to [`MAX_LOGGED_SQL`] bytes on a character boundary.
pub fn logged_sql(sql: &str) -> String {
    if sql.len() <= MAX_LOGGED_SQL {
        return sql.to_owned();
    }
    format!("{}...", &sql[..sql.floor_char_boundary(MAX_LOGGED_SQL)])
}

/// The calls one query made, by operation.
#[derive(Debug, Default)]
struct QueryCalls {
    list: AtomicU64,
    describe: AtomicU64,
    tags: AtomicU64,
}

impl QueryCalls {
    fn add(&self, operation: &str) {
        let counter = match operation {
            "ListCompilationJobs" => &self.list,
            "DescribeCompilationJob" => &self.describe,
            "ListTags" => &self.tags,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Counts one SageMaker attempt of `operation` against the query whose
/// span (or a span inside it) is current.
pub fn count_query_call(operation: &'static str) {
    Span::current().with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        let Some(span) = registry.span(id) else {
            return;
        };
        for span in span.scope() {
            if let Some(calls) = span.extensions().get::<Arc<QueryCalls>>() {
                calls.add(operation);
                return;
            }
        }
    });
}

/// Carries the current span into the tasks DataFusion spawns, so a query's
/// calls made there count against it.
struct CurrentSpanTracer;

impl JoinSetTracer for CurrentSpanTracer {
    fn trace_future(
        &self,
        future: BoxFuture<'static, Box<dyn Any + Send>>,
    ) -> BoxFuture<'static, Box<dyn Any + Send>> {
        future.in_current_span().boxed()
    }

    fn trace_block(
        &self,
        block: Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>,
    ) -> Box<dyn FnOnce() -> Box<dyn Any + Send> + Send> {
        let span = Span::current();
        Box::new(move || span.in_scope(block))
    }
}

static TRACER: CurrentSpanTracer = CurrentSpanTracer;
static INSTALL_TRACER: Once = Once::new();

/// One query's span, call counter and clock. It is counted in
/// `queries_running` from [`QueryTelemetry::start`] until it finishes:
/// at the end of its stream ([`QueryTelemetry::watch`]), when it fails
/// ([`QueryTelemetry::failed`]), or, if neither happened, when it is dropped
/// (as `cancelled`: the DoGet went away while the query was admitted or
/// planned). It finishes exactly once.
#[derive(Debug)]
pub struct QueryTelemetry {
    span: Span,
    calls: Arc<QueryCalls>,
    started: Instant,
    /// Set by the first `finish`: the later ones (and the drop) do nothing.
    finished: bool,
}

impl QueryTelemetry {
    /// Starts the span of a query of `sql` (cut to
    /// [`MAX_LOGGED_SQL`] bytes), with a new query id.
    pub fn start(sql: &str) -> QueryTelemetry {
        INSTALL_TRACER.call_once(|| {
            // Only fails if something else installed one: keep that one.
            let _ = set_join_set_tracer(&TRACER);
        });
        let query_id = format!("{:016x}", fastrand::u64(..));
        let span = tracing::info_span!(
            "query",
            query_id = %query_id,
            sql = %logged_sql(sql),
            outcome = Empty,
            rows = Empty,
            elapsed_ms = Empty,
            list_calls = Empty,
            describe_calls = Empty,
            tags_calls = Empty,
        );
        let calls = Arc::new(QueryCalls::default());
        span.with_subscriber(|(id, dispatch)| {
            if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>()
                && let Some(span) = registry.span(id)
            {
                span.extensions_mut().insert(Arc::clone(&calls));
            }
        });
        crate::obs::metrics::query_started();
        QueryTelemetry {
            span,
            calls,
            started: Instant::now(),
            finished: false,
        }
    }

    /// The query's span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// `stream`, polled inside the query's span (for work that runs where
    /// the stream is polled, such as in the governor's task).
    pub fn in_span<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, Result<T, Status>>,
    ) -> BoxStream<'static, Result<T, Status>> {
        Box::pin(InSpan {
            inner: stream,
            span: self.span.clone(),
        })
    }

    /// The query's stream to the client, counted; its end (or drop) logs
    /// the query and records its duration.
    pub fn watch(
        self,
        stream: BoxStream<'static, Result<FlightData, Status>>,
    ) -> BoxStream<'static, Result<FlightData, Status>> {
        Box::pin(WatchedQuery {
            inner: stream,
            telemetry: Some(self),
            rows: 0,
            first_batch: None,
            failed: false,
        })
    }

    /// The query failed before it streamed anything.
    pub fn failed(mut self, status: &Status) {
        self.span.in_scope(|| {
            // Not `message`: that is the event's own field (JSON would hold it twice).
            tracing::info!(code = ?status.code(), error = status.message(), "query failed");
        });
        self.finish("error", 0, None);
    }

    fn finish(&mut self, outcome: &'static str, rows: u64, first_batch: Option<Duration>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let elapsed = self.started.elapsed();
        crate::obs::metrics::query_ended(outcome, elapsed, first_batch);
        let calls = &self.calls;
        let (list, describe, tags) = (
            QueryCalls::get(&calls.list),
            QueryCalls::get(&calls.describe),
            QueryCalls::get(&calls.tags),
        );
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let span = &self.span;
        span.record("outcome", outcome);
        span.record("rows", rows);
        span.record("elapsed_ms", elapsed_ms);
        span.record("list_calls", list);
        span.record("describe_calls", describe);
        span.record("tags_calls", tags);
        span.in_scope(|| {
            tracing::info!(
                outcome,
                rows,
                elapsed_ms,
                first_batch_ms =
                    first_batch.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                list_calls = list,
                describe_calls = describe,
                tags_calls = tags,
                "query finished"
            );
        });
    }
}

impl Drop for QueryTelemetry {
    fn drop(&mut self) {
        // Dropped before its stream existed (or before it was watched): the
        // DoGet was cancelled while the query was admitted or planned.
        self.finish("cancelled", 0, None);
    }
}

/// A stream polled inside a span.
struct InSpan<S> {
    inner: S,
    span: Span,
}

impl<S: Stream + Unpin> Stream for InSpan<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        Pin::new(&mut this.inner).poll_next(cx)
    }
}

/// A query's stream to the client: counts rows and bytes, and finishes the
/// query's telemetry at its end, or when dropped before (cancelled).
struct WatchedQuery {
    inner: BoxStream<'static, Result<FlightData, Status>>,
    /// `None` once finished.
    telemetry: Option<QueryTelemetry>,
    rows: u64,
    first_batch: Option<Duration>,
    failed: bool,
}

impl WatchedQuery {
    fn finish(&mut self, outcome: &'static str) {
        if let Some(mut telemetry) = self.telemetry.take() {
            telemetry.finish(outcome, self.rows, self.first_batch);
        }
    }
}

impl Stream for WatchedQuery {
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let span = this.telemetry.as_ref().map(|t| t.span.clone());
        let _entered = span.as_ref().map(Span::enter);
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(data))) => {
                let rows = crate::obs::metrics::flight_data_sent(data);
                this.rows += rows;
                if rows > 0
                    && this.first_batch.is_none()
                    && let Some(telemetry) = &this.telemetry
                {
                    this.first_batch = Some(telemetry.started.elapsed());
                }
            }
            Poll::Ready(Some(Err(status))) => {
                this.failed = true;
                // In the span, entered above.
                // Not `message`: that is the event's own field (JSON would hold it twice).
                tracing::info!(code = ?status.code(), error = status.message(), "query failed");
            }
            Poll::Ready(None) => {
                let outcome = if this.failed { "error" } else { "ok" };
                this.finish(outcome);
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for WatchedQuery {
    fn drop(&mut self) {
        // gRPC stops reading a stream after its error; otherwise a stream
        // dropped before its end was cancelled (or its client went away).
        let outcome = if self.failed { "error" } else { "cancelled" };
        self.finish(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn calls_are_counted_by_operation() {
        let calls = QueryCalls::default();
        calls.add("ListCompilationJobs");
        calls.add("DescribeCompilationJob");
        calls.add("DescribeCompilationJob");
        calls.add("SomethingElse");
        assert_eq!(QueryCalls::get(&calls.list), 1);
        assert_eq!(QueryCalls::get(&calls.describe), 2);
        assert_eq!(QueryCalls::get(&calls.tags), 0);
    }

    #[test]
    fn calls_count_against_the_query_span_they_run_in() {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
        tracing::subscriber::with_default(subscriber, || {
            let mut query = QueryTelemetry::start("SELECT 1");
            query.span().in_scope(|| {
                count_query_call("ListTags");
                tracing::info_span!("inner").in_scope(|| count_query_call("ListTags"));
            });
            count_query_call("ListTags"); // outside the query: not counted
            assert_eq!(QueryCalls::get(&query.calls.tags), 2);
            query.finish("ok", 0, None);
        });
    }

    /// The samples of `series` in the rendered metrics (0 when absent).
    fn sample(series: &str) -> f64 {
        crate::obs::metrics::render()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn a_query_dropped_before_its_stream_finishes_once_as_cancelled() {
        // The registry is shared by the tests of this process: the count
        // moves by at least this test's query.
        let series = "sagemaker_flight_query_duration_seconds_count{outcome=\"cancelled\"}";
        let before = sample(series);
        drop(QueryTelemetry::start("SELECT 1"));
        assert!(sample(series) - before >= 1.0);
        // Finished once: a later finish, and the drop, return early.
        let mut query = QueryTelemetry::start("SELECT 2");
        query.finish("ok", 0, None);
        assert!(query.finished);
        query.finish("error", 0, None);
        drop(query);
    }
}
