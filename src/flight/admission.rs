//! Admission of query streams.
//!
//! [`QueryGovernor`] admits a query stream (DoGet of a statement) or
//! refuses it with RESOURCE_EXHAUSTED, and runs an admitted stream so that
//! it ends with DEADLINE_EXCEEDED at its deadline, or UNAVAILABLE when the
//! shutdown grace is over (an endless one, a change feed, as soon as
//! shutdown begins). The stream's work (the DataFusion plan, its
//! SageMaker calls) runs in a task of its own, so a deadline stops it even
//! while the client reads nothing; dropping the stream (a client that
//! cancels or goes away) aborts that task at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tonic::Status;

use crate::flight::cancellation::Registration;
use crate::flight::limits::Limits;
use crate::task::AbortOnDrop;

/// the count of running streams.
#[derive(Clone, Debug)]
pub struct QueryGovernor {
    permits: Arc<Semaphore>,
    max: usize,
    timeout: Option<Duration>,
    /// `true` once the shutdown grace is over: every stream ends.
    cancelled: Arc<watch::Sender<bool>>,
    /// `true` once shutdown begins: endless streams end (waiting the grace
    /// for them would be waiting for nothing).
    draining: Arc<watch::Sender<bool>>,
}

impl QueryGovernor {
    /// A governor enforcing `limits`.
    pub fn new(limits: &Limits) -> QueryGovernor {
        let max = limits
            .max_concurrent_queries
            .clamp(1, Semaphore::MAX_PERMITS);
        QueryGovernor {
            permits: Arc::new(Semaphore::new(max)),
            max,
            timeout: limits.query_timeout,
            cancelled: Arc::new(watch::Sender::new(false)),
            draining: Arc::new(watch::Sender::new(false)),
        }
    }

    /// The most query streams that run at once.
    pub fn max_running(&self) -> usize {
        self.max
    }

    /// How long a query stream may run; `None`: no limit.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Query streams running now.
    pub fn running(&self) -> usize {
        self.max.saturating_sub(self.permits.available_permits())
    }

    /// Admits one more query stream, or refuses it: RESOURCE_EXHAUSTED when
    /// the most streams are running, UNAVAILABLE once cancelled. The
    /// query's deadline counts from here.
    pub fn admit(&self) -> Result<Admission, Status> {
        if *self.cancelled.borrow() {
            return Err(shutting_down());
        }
        let permit = Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "too many queries: {} are running, the most this server runs at once \
                     (--max-concurrent-queries); retry when one ends",
                self.max
            ))
        })?;
        let deadline = self
            .timeout
            .and_then(|timeout| Some((Instant::now().checked_add(timeout)?, timeout)));
        Ok(Admission {
            permit,
            deadline,
            cancelled: self.cancelled.subscribe(),
            draining: None,
            cancel: None,
        })
    }

    /// Ends the endless streams (change feeds, with UNAVAILABLE), as
    /// shutdown begins; the others go on.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// Ends every running stream (with UNAVAILABLE) and refuses new ones.
    pub fn cancel_all(&self) {
        self.cancelled.send_replace(true);
    }
}

fn shutting_down() -> Status {
    Status::unavailable(
        "the server is shutting down, and the query did not finish within --shutdown-grace",
    )
}

/// One admitted query stream's place: released when its stream ends, stops
/// or is dropped.
#[derive(Debug)]
pub struct Admission {
    permit: OwnedSemaphorePermit,
    deadline: Option<(Instant, Duration)>,
    cancelled: watch::Receiver<bool>,
    /// An endless stream's: hears the shutdown begin.
    draining: Option<watch::Receiver<bool>>,
    /// Hears a CancelFlightInfo of the stream's statement, if any.
    cancel: Option<Registration>,
}

/// How a stream's task ended.
enum Outcome {
    /// The stream ended by itself (maybe with an error it sent).
    Done,
    /// The deadline or the shutdown stopped it; the status says which.
    Stopped(Status),
}

type SharedPermit = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

fn release(permit: &SharedPermit) {
    let permit = permit.lock().unwrap_or_else(PoisonError::into_inner).take();
    drop(permit);
}

impl Admission {
    /// This admission, its stream stopped (CANCELLED) when `registration`
    /// hears a cancel of its statement.
    pub fn cancellable(self, registration: Registration) -> Admission {
        Admission {
            cancel: Some(registration),
            ..self
        }
    }

    /// This admission for an endless stream (a change feed): no
    /// deadline, and it ends as soon as shutdown begins.
    pub fn endless(self, governor: &QueryGovernor) -> Admission {
        Admission {
            deadline: None,
            draining: Some(governor.draining.subscribe()),
            ..self
        }
    }

    /// Runs `stream` under this admission: its items are produced in a
    /// task of their own and stop at the deadline or on shutdown, which
    /// the returned stream reports as its last item. Dropping the returned
    /// stream aborts the task, and with it every call of the query.
    pub fn run<T: Send + 'static>(
        self,
        mut stream: BoxStream<'static, Result<T, Status>>,
    ) -> BoxStream<'static, Result<T, Status>> {
        let Admission {
            permit,
            deadline,
            mut cancelled,
            draining,
            cancel,
        } = self;
        let permit: SharedPermit = Arc::new(Mutex::new(Some(permit)));
        let (items_tx, items) = mpsc::channel(1);
        let (outcome_tx, outcome) = oneshot::channel();
        let task_permit = Arc::clone(&permit);
        let task = tokio::spawn(async move {
            let stop = async {
                let deadline = async {
                    match deadline {
                        Some((at, timeout)) => {
                            tokio::time::sleep_until(at).await;
                            tracing::info!(?timeout, "a query ran out of time; stopped");
                            Status::deadline_exceeded(format!(
                                "the query ran longer than {} s (--query-timeout) and was stopped",
                                timeout.as_secs_f64()
                            ))
                        }
                        None => std::future::pending().await,
                    }
                };
                let cancelled = async {
                    if cancelled.wait_for(|cancelled| *cancelled).await.is_err() {
                        // The governor is gone: nothing can cancel any more.
                        std::future::pending::<()>().await;
                    }
                    shutting_down()
                };
                let drained = async {
                    match draining {
                        Some(mut draining) => {
                            if draining.wait_for(|draining| *draining).await.is_err() {
                                std::future::pending::<()>().await;
                            }
                            Status::unavailable(
                                "the server is shutting down: an endless stream ends at once; \
                                 resume from the last commit_version received",
                            )
                        }
                        None => std::future::pending().await,
                    }
                };
                let cancel = async {
                    match cancel {
                        Some(mut registration) => {
                            registration.cancelled().await;
                            tracing::info!("a query was cancelled; stopped");
                            Status::cancelled(
                                "the query was cancelled (CancelFlightInfo or CancelQuery)",
                            )
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    status = deadline => status,
                    status = cancelled => status,
                    status = drained => status,
                    status = cancel => status,
                }
            };
            let outcome = {
                let forward = async {
                    while let Some(item) = stream.next().await {
                        let last = item.is_err();
                        if items_tx.send(item).await.is_err() || last {
                            break;
                        }
                    }
                };
                tokio::select! {
                    biased;
                    status = stop => Outcome::Stopped(status),
                    () = forward => Outcome::Done,
                }
            };
            // Stop the work before saying so.
            drop(stream);
            release(&task_permit);
            // The outcome goes before the end of the items, so the reader
            // that sees the items end knows why.
            let _ = outcome_tx.send(outcome);
            drop(items_tx);
        });
        Governed {
            items,
            outcome: Some(outcome),
            stopped: false,
            finished: false,
            permit,
            task: AbortOnDrop(task),
        }
        .boxed()
    }
}

/// The client's side of a governed stream.
struct Governed<T> {
    items: mpsc::Receiver<Result<T, Status>>,
    /// `None` once the task's outcome was received and was `Done`.
    outcome: Option<oneshot::Receiver<Outcome>>,
    /// The task ended by itself (`Done`), items may still be queued.
    stopped: bool,
    finished: bool,
    permit: SharedPermit,
    task: AbortOnDrop,
}

impl<T> Governed<T> {
    fn finish(&mut self, last: Option<Result<T, Status>>) -> Poll<Option<Result<T, Status>>> {
        self.finished = true;
        self.items.close();
        self.task.0.abort();
        release(&self.permit);
        Poll::Ready(last)
    }
}

impl<T> Stream for Governed<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        // A stop ends the stream at once, before any batch still queued.
        if let Some(outcome) = &mut this.outcome
            && let Poll::Ready(received) = Pin::new(outcome).poll(cx)
        {
            this.outcome = None;
            match received {
                Ok(Outcome::Done) => this.stopped = true,
                Ok(Outcome::Stopped(status)) => return this.finish(Some(Err(status))),
                Err(_) => {
                    return this.finish(Some(Err(Status::internal(
                        "the query's task failed; see the server log",
                    ))));
                }
            }
        }
        match this.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                if this.stopped {
                    return this.finish(None);
                }
                // The task sends its outcome before it closes the items.
                match this.outcome.as_mut().map(|outcome| outcome.try_recv()) {
                    Some(Ok(Outcome::Stopped(status))) => this.finish(Some(Err(status))),
                    Some(Ok(Outcome::Done)) | None => this.finish(None),
                    Some(Err(_)) => this.finish(Some(Err(Status::internal(
                        "the query's task failed; see the server log",
                    )))),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for Governed<T> {
    fn drop(&mut self) {
        // The task's abort (AbortOnDrop) stops the work; the place is free
        // at once, not when the runtime gets to the abort.
        release(&self.permit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn limits(max: usize, timeout: Option<Duration>) -> Limits {
        Limits {
            query_timeout: timeout,
            max_concurrent_queries: max,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn admissions_are_counted_and_released_when_a_stream_ends_or_is_dropped() {
        let governor = QueryGovernor::new(&limits(2, None));
        let first = governor.admit().expect("first");
        let second = governor.admit().expect("second");
        assert_eq!(governor.running(), 2);
        let refused = governor.admit().expect_err("a third is refused");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("--max-concurrent-queries"));

        let items: Vec<_> = first
            .run(stream::iter([Ok(1), Ok(2)]).boxed())
            .collect()
            .await;
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(Result::is_ok));
        assert_eq!(
            governor.running(),
            1,
            "an ended stream gives its place back"
        );

        let endless = second.run(stream::pending::<Result<u8, Status>>().boxed());
        drop(endless);
        assert_eq!(
            governor.running(),
            0,
            "a dropped stream gives its place back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_past_its_deadline_ends_with_deadline_exceeded() {
        let governor = QueryGovernor::new(&limits(1, Some(Duration::from_secs(2))));
        let admission = governor.admit().expect("admitted");
        let slow = stream::iter([Ok(1)]).chain(stream::pending()).boxed();
        let mut governed = admission.run(slow);
        assert_eq!(governed.next().await.map(|r| r.ok()), Some(Some(1)));
        let status = governed
            .next()
            .await
            .expect("a last item")
            .expect_err("an error");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(governed.next().await.is_none());
        assert_eq!(governor.running(), 0);
    }

    #[tokio::test]
    async fn cancelling_ends_running_streams_and_refuses_new_ones() {
        let governor = QueryGovernor::new(&limits(4, None));
        let mut governed = governor
            .admit()
            .expect("admitted")
            .run(stream::pending::<Result<u8, Status>>().boxed());
        governor.cancel_all();
        let status = governed.next().await.expect("an item").expect_err("error");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(
            governor.admit().expect_err("refused").code(),
            tonic::Code::Unavailable
        );
    }

    #[tokio::test]
    async fn draining_ends_endless_streams_and_lets_the_others_run() {
        let governor = QueryGovernor::new(&limits(4, Some(Duration::from_secs(3600))));
        let mut feed = governor
            .admit()
            .expect("admitted")
            .endless(&governor)
            .run(stream::pending::<Result<u8, Status>>().boxed());
        let (items, finite) = mpsc::channel::<Result<u8, Status>>(1);
        let mut query = governor
            .admit()
            .expect("admitted")
            .run(tokio_stream::wrappers::ReceiverStream::new(finite).boxed());
        governor.drain();
        let status = feed.next().await.expect("an item").expect_err("error");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("resume"), "{status:?}");
        // The finite query still runs, to its end.
        items.send(Ok(7)).await.expect("running");
        drop(items);
        assert_eq!(query.next().await.expect("an item").expect("a row"), 7);
        assert!(query.next().await.is_none());
        assert!(governor.admit().is_ok(), "draining refuses nothing");
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_after_it_is_sent() {
        let governor = QueryGovernor::new(&limits(1, None));
        let items: Vec<_> = governor
            .admit()
            .expect("admitted")
            .run(stream::iter([Ok(1), Err(Status::internal("boom")), Ok(3)]).boxed())
            .collect()
            .await;
        assert_eq!(items.len(), 2);
        assert!(items[1].is_err());
    }
}
