//! The gate every SageMaker call of one operation passes: at most
//! `concurrency` attempts in flight, paced by a send rate that adapts to
//! throttling, and retried with backoff.
//!
//! The pace comes from the gate's [`RateController`]
//! (`rate_controller.rs`).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::error::{SourceError, SourceErrorKind};
use super::partition_key::PartitionKey;
use super::rate_controller::{RateController, SecondStats};
use super::retry::RetryPolicy;
use crate::obs::metrics::PartitionLabels;

/// A throttled call waits this many times longer than other failures
/// before it is retried, unless throttling was found to be random: until
/// the controller has seen a whole second, nothing else holds back the
/// calls a high concurrency sends into a rate limit. With the default
/// policy the first retry of a throttled call waits up to 0.5 s, about what
/// the AWS SDKs wait.
pub const THROTTLE_BACKOFF_FACTOR: u32 = 10;
/// Throttled attempts allowed per call, as a multiple of `max_attempts`.
pub const THROTTLE_BUDGET_FACTOR: u32 = 3;

#[derive(Debug)]
struct Pace {
    controller: RateController,
    /// When the next paced call may start.
    next_slot: Instant,
    /// The second being counted, its calls so far, and when the first of
    /// them ended.
    current: (u64, SecondStats, Option<Instant>),
}

/// One operation's gate. See the module doc.
#[derive(Debug)]
pub struct OperationGate {
    /// The operation, for logs and metrics.
    name: &'static str,
    /// The (account, region) it calls, for metrics.
    partition: PartitionLabels,
    permits: Semaphore,
    started: Instant,
    pace: Mutex<Pace>,
}

impl OperationGate {
    /// A gate letting `concurrency` (at least 1) attempts of `name` run at once.
    pub fn new(name: &'static str, concurrency: usize) -> OperationGate {
        let now = Instant::now();
        OperationGate {
            name,
            partition: PartitionLabels::default(),
            permits: Semaphore::new(concurrency.max(1)),
            started: now,
            pace: Mutex::new(Pace {
                controller: RateController::default(),
                next_slot: now,
                current: (0, SecondStats::default(), None),
            }),
        }
    }

    /// The same gate, counting its calls in metrics as calls to `partition`.
    pub fn in_partition(mut self, partition: &PartitionKey) -> OperationGate {
        self.partition = partition.labels();
        self
    }

    /// The current send rate (calls per second), `None` while unpaced.
    #[cfg(test)]
    fn rate(&self) -> Option<f64> {
        self.lock().controller.rate()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        // A panic while holding this lock cannot leave it inconsistent.
        self.pace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for this call's slot when the gate is paced.
    async fn wait_for_slot(&self) {
        let slot = {
            let mut pace = self.lock();
            let Some(rate) = pace.controller.rate() else {
                return;
            };
            let slot = pace.next_slot.max(Instant::now());
            pace.next_slot = slot + Duration::from_secs_f64(1.0 / rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    fn ignores_throttles(&self) -> bool {
        let second = self.second_of(Instant::now());
        self.lock().controller.ignores_throttles(second)
    }

    /// Whole seconds since the gate started.
    fn second_of(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_secs()
    }

    /// Counts an attempt's end; a new second hands the last one to the
    /// controller.
    fn record(&self, throttled: bool) {
        let now = Instant::now();
        let second = self.second_of(now);
        let mut pace = self.lock();
        let (counted, mut stats, first) = pace.current;
        if second != counted {
            // The calls spanned from the first one to the end of that second.
            let second_end = self.started + Duration::from_secs(counted + 1);
            stats.span = first.map_or(1.0, |first| {
                second_end.saturating_duration_since(first).as_secs_f64()
            });
            // A second without calls in between changes nothing.
            pace.controller.on_second(counted, stats);
            pace.current = (second, SecondStats::default(), Some(now));
            if let Some(rate) = pace.controller.rate() {
                tracing::debug!(operation = self.name, rate, "pacing calls");
            }
        }
        if pace.current.2.is_none() {
            pace.current.2 = Some(now);
        }
        pace.current.1.attempts += 1;
        pace.current.1.throttled += u32::from(throttled);
    }

    /// Runs `call` through the gate: a permit and a paced slot per attempt,
    /// retried by `retry` while the error is retryable. Throttled attempts
    /// have a budget of their own, [`THROTTLE_BUDGET_FACTOR`] times larger:
    /// while the gate finds the rate a limit allows, a call may be refused a
    /// few times without anything being wrong.
    pub async fn run<T, F, Fut>(&self, retry: &RetryPolicy, mut call: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        // Failures other than throttling, and throttles, so far.
        let (mut failures, mut throttles) = (0u32, 0u32);
        loop {
            let result = {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = self.permits.acquire().await.ok();
                self.wait_for_slot().await;
                call().await
            };
            let outcome = match &result {
                Ok(_) => "ok",
                Err(error) => error.kind.outcome_label(),
            };
            crate::obs::metrics::sagemaker_call(self.name, &self.partition, outcome);
            crate::obs::query_span::count_query_call(self.name);
            match result {
                Ok(value) => {
                    self.record(false);
                    return Ok(value);
                }
                Err(error) => {
                    let throttled = error.kind == SourceErrorKind::Throttled;
                    self.record(throttled);
                    if throttled {
                        throttles += 1;
                    } else {
                        failures += 1;
                    }
                    let exhausted = failures >= retry.max_attempts
                        || throttles >= retry.max_attempts.saturating_mul(THROTTLE_BUDGET_FACTOR);
                    if !error.is_retryable() || exhausted {
                        return Err(error);
                    }
                    let retry_number = failures + throttles;
                    crate::obs::metrics::sagemaker_retry(self.name, &self.partition);
                    tracing::debug!(%error, retry_number, "retrying SageMaker call");
                    let mut wait = retry.backoff(retry_number);
                    if throttled && !self.ignores_throttles() {
                        wait = wait.saturating_mul(THROTTLE_BACKOFF_FACTOR);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: SourceErrorKind) -> SourceError {
        SourceError {
            operation: "DescribeCompilationJob",
            code: None,
            message: "test".into(),
            kind,
        }
    }

    fn fast_policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn throttles_have_a_larger_budget_than_other_failures() {
        let gate = OperationGate::new("ListTags", 1);
        let mut calls = 0;
        let result: Result<(), _> = gate
            .run(&fast_policy(2), || {
                calls += 1;
                async { Err(error(SourceErrorKind::Throttled)) }
            })
            .await;
        assert_eq!(
            result.expect_err("always throttled").kind,
            SourceErrorKind::Throttled
        );
        assert_eq!(calls, 2 * THROTTLE_BUDGET_FACTOR);
    }

    #[tokio::test]
    async fn retries_throttling_until_success() {
        let gate = OperationGate::new("DescribeCompilationJob", 4);
        let mut calls = 0;
        let result = gate
            .run(&fast_policy(5), || {
                calls += 1;
                let outcome = if calls < 3 {
                    Err(error(SourceErrorKind::Throttled))
                } else {
                    Ok(calls)
                };
                async move { outcome }
            })
            .await;
        assert_eq!(result.expect("succeeds on the third call"), 3);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_does_not_retry_client_errors() {
        let gate = OperationGate::new("ListTags", 1);
        let mut calls = 0;
        let result: Result<(), _> = gate
            .run(&fast_policy(4), || {
                calls += 1;
                async { Err(error(SourceErrorKind::ServerError)) }
            })
            .await;
        assert_eq!(
            result.expect_err("keeps failing").kind,
            SourceErrorKind::ServerError
        );
        assert_eq!(calls, 4);
        let mut calls = 0;
        let result: Result<(), _> = gate
            .run(&fast_policy(4), || {
                calls += 1;
                async { Err(error(SourceErrorKind::AccessDenied)) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
        assert_eq!(gate.rate(), None, "no throttle, no pacing");
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_spaces_calls_at_the_rate() {
        let gate = OperationGate::new("ListTags", 8);
        gate.lock().controller.set_rate(20.0);
        let started = Instant::now();
        for _ in 0..11 {
            gate.wait_for_slot().await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert!(
            (elapsed - 0.5).abs() < 0.01,
            "ten intervals of 50 ms: {elapsed}"
        );
    }
}
