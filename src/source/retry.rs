//! Retrying SageMaker calls: throttling, 5xx and transport failures are tried
//! again after an exponential backoff with full jitter, up to a cap; anything
//! else fails at once.
//!
//! The SDK's own retry layer is switched off (see `client.rs`) so that every
//! attempt is visible here, and so the retry budget is ours to size: the
//! SDK's standard mode shares a small token bucket that a throttled scan of
//! thousands of jobs drains, turning throttling into errors.

use std::future::Future;
use std::time::Duration;

use super::error::SourceError;

/// How often and how patiently to retry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; doubles per retry.
    pub base_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): uniformly random in
    /// [0, min(max_delay, base_delay * 2^(retry-1))] ("full jitter"), so that
    /// many callers throttled at once do not come back at once.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    /// Runs `call` until it succeeds, fails with an error that is not
    /// retryable, or has been attempted `max_attempts` times.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() && attempt < self.max_attempts => {
                    tracing::debug!(%error, attempt, "retrying SageMaker call");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::error::SourceErrorKind;

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

    #[test]
    fn backoff_stays_under_the_exponential_ceiling_and_the_cap() {
        let policy = RetryPolicy::default();
        for retry in 1..40 {
            let wait = policy.backoff(retry);
            let ceiling = Duration::from_millis(50)
                .saturating_mul(1 << (retry - 1).min(20))
                .min(Duration::from_secs(5));
            assert!(wait <= ceiling, "retry {retry}: {wait:?} > {ceiling:?}");
        }
    }

    #[tokio::test]
    async fn retries_throttling_until_success() {
        let mut calls = 0;
        let result = fast_policy(5)
            .run(|| {
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
    async fn gives_up_after_max_attempts() {
        let mut calls = 0;
        let result: Result<(), _> = fast_policy(4)
            .run(|| {
                calls += 1;
                async { Err(error(SourceErrorKind::ServerError)) }
            })
            .await;
        assert_eq!(
            result.expect_err("keeps failing").kind,
            SourceErrorKind::ServerError
        );
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn does_not_retry_client_errors() {
        let mut calls = 0;
        let result: Result<(), _> = fast_policy(4)
            .run(|| {
                calls += 1;
                async { Err(error(SourceErrorKind::AccessDenied)) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
