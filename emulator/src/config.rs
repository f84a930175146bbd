//! How to build and run an emulator.

use std::time::{Duration, SystemTime};

use super::partition::{EmulatorPartition, EmulatorRole};

/// Region of the default partition, unless configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Account of the default partition, unless configured.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// When ListCompilationJobs applies its filters: before or after it cuts
/// a page of `MaxResults` jobs. AWS documents the second for
/// ListTrainingJobs' `StatusEquals`, and users see it elsewhere (empty pages
/// that still carry a NextToken); ListCompilationJobs' documentation says
/// neither, so a client must work under both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterPaging {
    /// Filters first, then pages of `MaxResults` matching jobs: a listing
    /// costs ceil(matches / MaxResults) pages.
    #[default]
    BeforeCut,
    /// Pages of `MaxResults` jobs in sort order, then the filters: a page
    /// may hold fewer matches than `MaxResults`, or none, and still carry a
    /// NextToken; a filtered listing costs as many pages as an unfiltered
    /// one.
    AfterCut,
}

impl std::str::FromStr for FilterPaging {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "before-cut" => Ok(FilterPaging::BeforeCut),
            "after-cut" => Ok(FilterPaging::AfterCut),
            other => Err(format!(
                "{other:?} is not a paging model (before-cut or after-cut)"
            )),
        }
    }
}

impl std::fmt::Display for FilterPaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FilterPaging::BeforeCut => "before-cut",
            FilterPaging::AfterCut => "after-cut",
        })
    }
}

/// How to build and run an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Number of jobs to generate at start.
    pub jobs: usize,
    /// Seed of the generated data (and of the fault dice).
    pub seed: u64,
    /// Latency added to every API call before it is answered.
    pub latency: Duration,
    /// Probability (0..=1) that a call answers `ThrottlingException`
    /// (`ThrottledException` for the Tagging API).
    pub throttle_rate: f64,
    /// Probability (0..=1) that a call answers an injected 5xx.
    pub error_rate: f64,
    /// Probability (0..=1) that a call is slow (10 x latency + 100 ms).
    pub slow_rate: f64,
    /// Probability (0..=1) that a call's connection is dropped unanswered.
    pub drop_rate: f64,
    /// Calls per second allowed per operation (token bucket, burst
    /// `max(1, rate)`); `None` means unlimited.
    pub rate_limit: Option<f64>,
    /// Region of the default partition: in its generated ARNs and URIs
    /// (default `us-east-1`).
    pub region: String,
    /// Account of the default partition, and of every access key that
    /// AssumeRole did not issue (default `123456789012`).
    pub account_id: String,
    /// Generated times lie in the year before this instant; `None` means
    /// the time of start. Set it for byte-identical data across runs.
    pub anchor: Option<SystemTime>,
    /// (account, region) partitions besides the default
    /// `(account_id, region)`. Empty (the default): single-tenant, every
    /// SageMaker call is served by the one partition whoever signs it.
    /// Non-empty: each call is served by its signer's partition (see the
    /// module docs).
    pub partitions: Vec<EmulatorPartition>,
    /// Roles that STS AssumeRole grants; an unknown role is `AccessDenied`.
    pub roles: Vec<EmulatorRole>,
    /// When ListCompilationJobs filters: before it cuts a page (the
    /// default) or after.
    pub filter_paging: FilterPaging,
    /// New jobs a minute that the default partition creates and moves
    /// through their statuses in the background (`activity.rs`); `None`:
    /// the jobs change only through the API and the test hooks.
    pub activity: Option<f64>,
    /// When set, every partition answers the Resource Groups Tagging API's
    /// `GetResources` with HTTP 400 `AccessDeniedException`, as AWS does
    /// for a principal without `tag:GetResources` (the call is still
    /// counted). [`EmulatorState::set_tagging_api_denied`] changes it per
    /// partition at run time.
    ///
    /// [`EmulatorState::set_tagging_api_denied`]: crate::EmulatorState::set_tagging_api_denied
    pub deny_tagging_api: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            jobs: 0,
            seed: 0,
            latency: Duration::ZERO,
            throttle_rate: 0.0,
            error_rate: 0.0,
            slow_rate: 0.0,
            drop_rate: 0.0,
            rate_limit: None,
            region: DEFAULT_REGION.to_string(),
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            anchor: None,
            partitions: Vec::new(),
            roles: Vec::new(),
            filter_paging: FilterPaging::default(),
            activity: None,
            deny_tagging_api: false,
        }
    }
}
