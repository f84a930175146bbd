//! How SageMaker is called, shared by `serve` and `collect`: concurrency,
//! listing windows and attempts per call.

use clap::Args;
use sagemaker_flight::source::{
    DEFAULT_CONCURRENCY, DEFAULT_LIST_WINDOWS, DEFAULT_MAX_ATTEMPTS, RetryPolicy,
};

/// Options of the SageMaker calls.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Calls of each SageMaker operation (Describe, ListTags, List) in
    /// flight at once, across all queries, per account and region.
    #[arg(long, env = "SAGEMAKER_FLIGHT_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY as u32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Creation-time windows a full listing is split into and listed in
    /// parallel (1: one NextToken chain).
    #[arg(long, env = "SAGEMAKER_FLIGHT_LIST_WINDOWS", default_value_t = DEFAULT_LIST_WINDOWS as u32,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub list_windows: u32,

    /// Attempts per SageMaker call before a throttled or failing call ends the query.
    #[arg(long, env = "SAGEMAKER_FLIGHT_MAX_ATTEMPTS", default_value_t = DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

impl CallArgs {
    /// The retry policy these options ask for.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            ..RetryPolicy::default()
        }
    }
}
