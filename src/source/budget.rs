//! How many listed jobs a scan with a LIMIT may take into work, and when
//! it has taken all it needs.
//!
//! A scan that needs `n` rows takes `n` summaries into work, and one more
//! for each job that turns out to produce no row (it vanished, or no longer
//! meets the scan's row filter): each such job frees one place. It does not
//! look further ahead: with a lazy listing, that is what keeps `LIMIT 10` at
//! one ListCompilationJobs call and ten Describes. Once the budget is spent
//! and every job in work has produced its row, the stream ends.
//!
//! A listing in a requested order (`ORDER BY key LIMIT n`) also takes, past
//! the budget, every summary tied with the last one taken: whatever breaks
//! the tie above the scan must see them all. It checks that the summaries
//! arrive in that order; if the API ever sorted otherwise, the scan stops
//! cutting and reads the listing to its end, so the answer stays right.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;

use crate::source::error::SourceError;
use crate::source::record::JobSummary;
use crate::source::request::{ListOrder, SortValue};

/// The shared count of summaries a scan may still take, and of those taken
/// that have not yet said whether they make a row.
#[derive(Debug)]
pub struct Budget {
    remaining: AtomicUsize,
    in_work: AtomicUsize,
    waker: AtomicWaker,
}

impl Budget {
    /// A budget of `rows` summaries.
    pub fn new(rows: usize) -> Arc<Budget> {
        Arc::new(Budget {
            remaining: AtomicUsize::new(rows),
            in_work: AtomicUsize::new(0),
            waker: AtomicWaker::new(),
        })
    }

    /// A taken summary produced no row: let one more in.
    pub fn refund(&self) {
        // Before `in_work` drops: whoever sees no work left also sees the
        // place it freed.
        self.remaining.fetch_add(1, Ordering::AcqRel);
        self.finished();
    }

    /// A taken summary produced its row (or failed the scan).
    pub fn finished(&self) {
        self.in_work.fetch_sub(1, Ordering::AcqRel);
        self.waker.wake();
    }

    fn try_take(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

type Summaries = Result<JobSummary, SourceError>;

/// Passes summaries of `inner` through while the budget lasts; waits
/// (without polling `inner`, so nothing more is fetched) while it is spent
/// and jobs in work may still free a place; ends when none can.
pub struct Budgeted<S> {
    inner: S,
    budget: Arc<Budget>,
    /// The order the listing was asked for, whose ties pass the budget.
    order: Option<ListOrder>,
    /// The sort value of the last summary taken.
    last: Option<SortValue>,
    /// The next summary, looked at but not taken yet.
    peeked: Option<Summaries>,
    /// The listing came out of order: take everything.
    unbounded: bool,
}

impl<S> Budgeted<S> {
    /// `inner`, limited by `budget`.
    pub fn new(inner: S, budget: Arc<Budget>) -> Self {
        Budgeted {
            inner,
            budget,
            order: None,
            last: None,
            peeked: None,
            unbounded: false,
        }
    }

    /// Summaries tied with the last one taken in `order` pass too.
    pub fn with_ties_in(mut self, order: Option<ListOrder>) -> Self {
        self.order = order;
        self
    }

    /// Takes `item` into work: the caller reports back through the budget.
    fn take(&mut self, item: Summaries) -> Poll<Option<Summaries>> {
        self.budget.in_work.fetch_add(1, Ordering::AcqRel);
        if let (Some(order), Ok(summary)) = (self.order, &item) {
            self.last = Some(order.value_of(summary));
        }
        Poll::Ready(Some(item))
    }
}

impl<S: Stream<Item = Summaries> + Unpin> Stream for Budgeted<S> {
    type Item = Summaries;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Summaries>> {
        // Register before checking, so a refund in between is not missed.
        self.budget.waker.register(cx.waker());
        let item = match self.peeked.take() {
            Some(item) => item,
            // Spent, and no tie can follow: look no further.
            None if self.order.is_none() && !self.unbounded && self.spent() => {
                return if self.no_work_left() && self.spent() {
                    Poll::Ready(None)
                } else {
                    // A place may still be freed (or just was: poll again).
                    if !self.spent() {
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                };
            }
            None => match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(item)) => item,
                other => return other,
            },
        };
        let Ok(summary) = &item else {
            // An error ends the scan: pass it on.
            return Poll::Ready(Some(item));
        };
        if let (Some(order), Some(last)) = (self.order, self.last.clone()) {
            let value = order.value_of(summary);
            if !self.unbounded && !order.in_order(&last, &value) {
                tracing::warn!(
                    ?order,
                    "ListCompilationJobs answered out of the order asked for; \
                     this scan reads the whole listing instead of its first rows"
                );
                self.unbounded = true;
            }
            if value == last {
                return self.take(item);
            }
        }
        if self.unbounded || self.budget.try_take() {
            return self.take(item);
        }
        // Spent: wait for a job in work to free a place, unless none is left
        // to. (A refund raises `remaining` before it lowers `in_work`, so
        // once no work is left, a last try sees every place freed.)
        if self.no_work_left() {
            return if self.budget.try_take() {
                self.take(item)
            } else {
                Poll::Ready(None)
            };
        }
        self.peeked = Some(item);
        Poll::Pending
    }
}

impl<S> Budgeted<S> {
    fn spent(&self) -> bool {
        self.budget.remaining.load(Ordering::Acquire) == 0
    }

    fn no_work_left(&self) -> bool {
        self.budget.in_work.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::request::SortKey;
    use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
    use aws_smithy_types::DateTime;
    use futures::{FutureExt, StreamExt, stream};

    fn summary(name: &str, created: i64) -> Summaries {
        let raw = CompilationJobSummary::builder()
            .compilation_job_name(name)
            .compilation_job_arn(format!(
                "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}"
            ))
            .compilation_job_status(CompilationJobStatus::Completed)
            .creation_time(DateTime::from_secs(created))
            .build();
        JobSummary::try_from(raw)
    }

    fn name(item: Option<Summaries>) -> Option<String> {
        item.map(|s| s.expect("a summary").name)
    }

    fn jobs(created: &[i64]) -> impl Stream<Item = Summaries> + Unpin {
        let items: Vec<Summaries> = created
            .iter()
            .enumerate()
            .map(|(i, t)| summary(&format!("j{i}"), *t))
            .collect();
        stream::iter(items)
    }

    #[tokio::test]
    async fn passes_the_budget_waits_for_a_refund_and_ends_when_work_is_done() {
        let budget = Budget::new(2);
        let mut limited = Budgeted::new(jobs(&[1, 2, 3, 4]), Arc::clone(&budget));
        assert_eq!(name(limited.next().await).as_deref(), Some("j0"));
        assert_eq!(name(limited.next().await).as_deref(), Some("j1"));
        assert!(limited.next().now_or_never().is_none(), "spent: waits");
        budget.refund();
        assert_eq!(name(limited.next().await).as_deref(), Some("j2"));
        assert!(limited.next().now_or_never().is_none(), "two in work");
        budget.finished();
        budget.finished();
        assert_eq!(name(limited.next().await), None, "no work left: ends");
    }

    #[tokio::test]
    async fn ends_with_its_inner_stream() {
        let budget = Budget::new(5);
        let items: Vec<_> = Budgeted::new(jobs(&[1, 2, 3]), budget).collect().await;
        assert_eq!(items.len(), 3);
    }

    #[tokio::test]
    async fn an_ordered_listing_takes_the_ties_of_the_last_row() {
        let newest_first = ListOrder {
            key: SortKey::CreationTime,
            descending: true,
        };
        let budget = Budget::new(2);
        let mut limited = Budgeted::new(jobs(&[9, 8, 8, 8, 7, 6]), Arc::clone(&budget))
            .with_ties_in(Some(newest_first));
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.push(name(limited.next().await).expect("taken"));
        }
        assert_eq!(taken, ["j0", "j1", "j2", "j3"], "two, and the ties at 8");
        assert!(
            limited.next().now_or_never().is_none(),
            "j4 waits: work in flight"
        );
        for _ in 0..4 {
            budget.finished();
        }
        assert_eq!(name(limited.next().await), None, "j4 is not needed");
    }

    #[tokio::test]
    async fn a_listing_out_of_order_is_read_to_its_end() {
        let oldest_first = ListOrder {
            key: SortKey::CreationTime,
            descending: false,
        };
        let budget = Budget::new(1);
        let limited = Budgeted::new(jobs(&[5, 3, 7, 8]), Arc::clone(&budget))
            .with_ties_in(Some(oldest_first));
        let items: Vec<_> = limited.collect().await;
        assert_eq!(items.len(), 4);
    }
}
