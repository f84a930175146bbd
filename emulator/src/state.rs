//! The emulator's shared state: the job store, the knobs and the stats.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::{EmulatorConfig, FilterPaging};
use super::data;
use super::job_store::{JobStore, StoredJob};
use super::limits::{Knobs, Limits, SplitMix64, Stats, lock};
use super::operation::Operation;
use super::shapes::{JobRecord, Millis, Tag};

/// The dice of the activity (`activity.rs`) and how many jobs it created.
#[derive(Debug)]
pub(crate) struct ActivityDice {
    pub(crate) rng: SplitMix64,
    pub(crate) created: usize,
    /// The partition's anchor: new jobs are generated against it, not the
    /// clock, so that their names (some embed a date) follow from the seed.
    pub(crate) anchor: Millis,
}

impl ActivityDice {
    pub(crate) fn new(seed: u64, anchor: Millis) -> ActivityDice {
        ActivityDice {
            rng: SplitMix64::new(seed ^ 0xA11F_E5EE_D000_0001),
            created: 0,
            anchor,
        }
    }
}

/// A snapshot of one emulated job, for tests to compare against.
#[derive(Clone, Debug)]
pub struct EmulatedJob {
    /// The DescribeCompilationJobResponse body exactly as the emulator sends
    /// it (PascalCase keys, epoch-second numbers).
    pub describe: serde_json::Value,
    /// Every tag in ListTags order.
    pub tags: Vec<(String, String)>,
}

/// State shared by the server task and the [`Emulator`](super::Emulator)
/// handle: jobs, knobs and statistics. All locks are held briefly and
/// never across an `.await`.
#[derive(Debug)]
pub struct EmulatorState {
    pub(crate) region: String,
    pub(crate) account_id: String,
    /// Jobs by name (byte order), and in the other orders listings sort by.
    pub(crate) jobs: Mutex<JobStore>,
    pub(crate) limits: Limits,
    /// When ListCompilationJobs filters (see [`FilterPaging`]).
    pub(crate) filter_paging: FilterPaging,
    /// The dice of [`EmulatorState::advance`] (`activity.rs`).
    pub(crate) activity: Mutex<ActivityDice>,
    /// Whether GetResources answers `AccessDeniedException`
    /// ([`EmulatorConfig::deny_tagging_api`]).
    tagging_api_denied: AtomicBool,
}

/// Milliseconds since the epoch of a `SystemTime` (negative before 1970).
pub(crate) fn to_millis(t: SystemTime) -> Millis {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        Err(e) => Millis(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
    }
}

impl EmulatorState {
    /// Generates the jobs of one (account, region) partition and sets up
    /// its knobs (from `config`) and statistics.
    pub(crate) fn new(
        config: &EmulatorConfig,
        account_id: &str,
        region: &str,
        jobs: usize,
        seed: u64,
    ) -> Self {
        let anchor = to_millis(config.anchor.unwrap_or_else(SystemTime::now));
        let generated = data::generate(jobs, seed, anchor, region, account_id);
        let jobs = generated
            .into_iter()
            .map(|(record, tags)| StoredJob {
                record,
                tags,
                vanished: false,
            })
            .collect();
        let ops: Vec<&'static str> = Operation::ALL.iter().map(|o| o.name()).collect();
        EmulatorState {
            region: region.to_string(),
            account_id: account_id.to_string(),
            jobs: Mutex::new(jobs),
            limits: Limits::new(
                &ops,
                seed,
                Knobs {
                    latency: config.latency,
                    throttle_rate: config.throttle_rate,
                    error_rate: config.error_rate,
                    slow_rate: config.slow_rate,
                    drop_rate: config.drop_rate,
                },
                config.rate_limit,
            ),
            filter_paging: config.filter_paging,
            activity: Mutex::new(ActivityDice::new(seed, anchor)),
            tagging_api_denied: AtomicBool::new(config.deny_tagging_api),
        }
    }

    /// The account of this partition's ARNs.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The region of this partition's ARNs.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Snapshot of every job, sorted by name (byte order), vanished jobs
    /// included (they are still listed).
    pub fn jobs(&self) -> Vec<EmulatedJob> {
        // Clone under the lock, serialize after releasing it.
        let snapshot: Vec<(JobRecord, Vec<Tag>)> = lock(&self.jobs)
            .values()
            .map(|j| (j.record.clone(), j.tags.clone()))
            .collect();
        snapshot
            .into_iter()
            .map(|(record, tags)| EmulatedJob {
                describe: serde_json::to_value(&record).unwrap_or_default(),
                tags: tags.into_iter().map(|t| (t.key, t.value)).collect(),
            })
            .collect()
    }

    /// Current call statistics.
    pub fn stats(&self) -> Stats {
        self.limits.stats()
    }

    /// Zeroes calls, throttled and server-error counters; peaks restart
    /// from the calls in flight right now.
    pub fn reset_stats(&self) {
        self.limits.reset();
    }

    /// Marks `name` as vanished: still in ListCompilationJobs, but
    /// DescribeCompilationJob, ListTags, AddTags and DeleteCompilationJob
    /// answer `ResourceNotFound`. Returns false if there is no such job.
    pub fn vanish(&self, name: &str) -> bool {
        lock(&self.jobs)
            .update(name, |job| job.vanished = true)
            .is_some()
    }

    /// Changes the injected fault probabilities (each in `0.0..=1.0`).
    pub fn set_faults(&self, throttle_rate: f64, error_rate: f64) {
        self.limits.set_faults(throttle_rate, error_rate);
    }

    /// Changes the probabilities (each in `0.0..=1.0`) that a call is slow
    /// and that its connection is dropped without an answer.
    pub fn set_disruptions(&self, slow_rate: f64, drop_rate: f64) {
        self.limits.set_disruptions(slow_rate, drop_rate);
    }

    /// Denies (or allows again) this partition's callers the Resource
    /// Groups Tagging API: while denied, `GetResources` answers HTTP 400
    /// `AccessDeniedException`. Starts as
    /// [`EmulatorConfig::deny_tagging_api`].
    pub fn set_tagging_api_denied(&self, denied: bool) {
        self.tagging_api_denied.store(denied, Ordering::Relaxed);
    }

    /// Whether `GetResources` answers `AccessDeniedException` now.
    pub fn tagging_api_denied(&self) -> bool {
        self.tagging_api_denied.load(Ordering::Relaxed)
    }

    /// Changes the latency added to every call.
    pub fn set_latency(&self, latency: Duration) {
        self.limits.set_latency(latency);
    }
}
