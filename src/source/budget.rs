//! How many listed jobs a scan with a LIMIT may take into work.
//!
//! A scan that needs `n` rows takes `n` summaries into work, and one more
//! for each job that turns out to have vanished (each skipped job frees one
//! place). It does not look further ahead: with a lazy listing, that is what
//! keeps `LIMIT 10` at one ListCompilationJobs call and ten Describes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;

/// The shared count of summaries a scan may still take.
#[derive(Debug)]
pub struct Budget {
    remaining: AtomicUsize,
    waker: AtomicWaker,
}

impl Budget {
    /// A budget of `rows` summaries.
    pub fn new(rows: usize) -> Arc<Budget> {
        Arc::new(Budget {
            remaining: AtomicUsize::new(rows),
            waker: AtomicWaker::new(),
        })
    }

    /// A taken summary produced no row: let one more in.
    pub fn refund(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
        self.waker.wake();
    }

    fn try_take(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Passes items of `inner` through while the budget lasts; waits (without
/// polling `inner`, so nothing more is fetched) while it is spent.
pub struct Budgeted<S> {
    inner: S,
    budget: Arc<Budget>,
}

impl<S> Budgeted<S> {
    /// `inner`, limited by `budget`.
    pub fn new(inner: S, budget: Arc<Budget>) -> Self {
        Budgeted { inner, budget }
    }
}

impl<S: Stream + Unpin> Stream for Budgeted<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        // Register before checking, so a refund in between is not missed.
        self.budget.waker.register(cx.waker());
        if !self.budget.try_take() {
            return Poll::Pending;
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending => {
                // Nothing taken after all.
                self.budget.remaining.fetch_add(1, Ordering::AcqRel);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{FutureExt, StreamExt, stream};

    #[tokio::test]
    async fn passes_the_budget_then_waits_until_a_refund() {
        let budget = Budget::new(2);
        let mut limited = Budgeted::new(stream::iter(0..10), Arc::clone(&budget));
        assert_eq!(limited.next().await, Some(0));
        assert_eq!(limited.next().await, Some(1));
        assert!(limited.next().now_or_never().is_none(), "spent: waits");
        budget.refund();
        assert_eq!(limited.next().await, Some(2));
        assert!(limited.next().now_or_never().is_none());
    }

    #[tokio::test]
    async fn ends_with_its_inner_stream() {
        let budget = Budget::new(5);
        let items: Vec<_> = Budgeted::new(stream::iter(0..3), budget).collect().await;
        assert_eq!(items, vec![0, 1, 2]);
    }
}
