//! How SageMaker calls are retried: throttling, 5xx and transport failures
//! are tried again (by `gate::OperationGate::run`) after an exponential
//! backoff with full jitter, up to a cap; anything else fails at once.
//!
//! The SDK's own retry layer is switched off (see `client.rs`) so that every
//! attempt is visible here, and so the retry budget is ours to size: the
//! SDK's standard mode shares a small token bucket that a throttled scan of
//! thousands of jobs drains, turning throttling into errors.

use std::time::Duration;

/// Attempts per call (the first included), unless configured.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

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
            max_attempts: DEFAULT_MAX_ATTEMPTS,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
