//! What the source remembers between scans, keyed by job ARN, so a repeated
//! query makes only the calls whose answers may have changed.
//!
//! - A Describe answer is reused while the listing shows the same status and
//!   LastModifiedTime. A job in COMPLETED, FAILED or STOPPED never changes
//!   again, so its answer is kept until evicted; any other job's answer
//!   also expires after the TTL, in case a member changed without its
//!   LastModifiedTime.
//! - Tags change without touching LastModifiedTime: they are reused for the
//!   TTL only.
//!
//! The cache holds at most `max_jobs` jobs (a described job takes about 1.5
//! KiB); beyond that the job cached first is dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;
use tokio::time::Instant;

use super::record::JobSummary;
use crate::obs::metrics::{DESCRIBE_ANSWER, TAGS_ANSWER};

/// How long cached answers are reused, unless configured.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Most jobs cached (and rows in a snapshot), unless configured.
pub const DEFAULT_CACHE_MAX_JOBS: usize = 100_000;

/// Statuses after which a job never changes.
const TERMINAL: [&str; 3] = ["COMPLETED", "FAILED", "STOPPED"];

#[derive(Debug, Default)]
struct Entry {
    describe: Option<(DescribeCompilationJobOutput, Instant)>,
    tags: Option<(Vec<(String, String)>, Instant)>,
}

#[derive(Debug, Default)]
struct Entries {
    by_arn: HashMap<String, Entry>,
    /// ARNs in the order they were first cached, for eviction.
    order: VecDeque<String>,
}

/// The cache. See the module doc.
#[derive(Debug)]
pub struct JobCache {
    ttl: Duration,
    max_jobs: usize,
    entries: Mutex<Entries>,
}

impl JobCache {
    /// A cache whose answers expire after `ttl`, holding up to `max_jobs`.
    pub fn new(ttl: Duration, max_jobs: usize) -> JobCache {
        JobCache {
            ttl,
            max_jobs: max_jobs.max(1),
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every update leaves the maps consistent, so a poisoned lock is usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached Describe answer for a listed job, if it is still valid.
    pub fn describe(&self, summary: &JobSummary) -> Option<DescribeCompilationJobOutput> {
        let found = self.valid_describe(summary);
        crate::obs::metrics::cache_lookup(DESCRIBE_ANSWER, found.is_some());
        found
    }

    fn valid_describe(&self, summary: &JobSummary) -> Option<DescribeCompilationJobOutput> {
        let entries = self.lock();
        let (described, at) = entries.by_arn.get(&summary.arn)?.describe.as_ref()?;
        let status = described.compilation_job_status().map(|s| s.as_str());
        let unchanged = status == Some(summary.status.as_str())
            && described.last_modified_time().is_some()
            && described.last_modified_time() == summary.raw.last_modified_time();
        let fresh = TERMINAL.contains(&summary.status.as_str()) || at.elapsed() < self.ttl;
        (unchanged && fresh).then(|| described.clone())
    }

    /// The cached tags of `arn`, if younger than the TTL.
    pub fn tags(&self, arn: &str) -> Option<Vec<(String, String)>> {
        let found = self.valid_tags(arn);
        crate::obs::metrics::cache_lookup(TAGS_ANSWER, found.is_some());
        found
    }

    fn valid_tags(&self, arn: &str) -> Option<Vec<(String, String)>> {
        let entries = self.lock();
        let (tags, at) = entries.by_arn.get(arn)?.tags.as_ref()?;
        (at.elapsed() < self.ttl).then(|| tags.clone())
    }

    /// Remembers a Describe answer.
    pub fn put_describe(&self, arn: &str, described: &DescribeCompilationJobOutput) {
        self.update(arn, |entry| {
            entry.describe = Some((described.clone(), Instant::now()));
        });
    }

    /// Remembers a job's tags.
    pub fn put_tags(&self, arn: &str, tags: &[(String, String)]) {
        self.update(arn, |entry| {
            entry.tags = Some((tags.to_vec(), Instant::now()))
        });
    }

    /// Forgets a job that no longer exists.
    pub fn remove(&self, arn: &str) {
        let mut entries = self.lock();
        if entries.by_arn.remove(arn).is_some() {
            entries.order.retain(|other| other != arn);
        }
    }

    fn update(&self, arn: &str, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.lock();
        let entries = &mut *entries;
        match entries.by_arn.get_mut(arn) {
            Some(entry) => change(entry),
            None => {
                let mut entry = Entry::default();
                change(&mut entry);
                entries.by_arn.insert(arn.to_owned(), entry);
                entries.order.push_back(arn.to_owned());
                while entries.order.len() > self.max_jobs {
                    if let Some(oldest) = entries.order.pop_front() {
                        entries.by_arn.remove(&oldest);
                    }
                }
            }
        }
    }

    /// Jobs cached now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_arn.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
    use aws_smithy_types::DateTime;

    fn summary(status: CompilationJobStatus, modified: i64) -> JobSummary {
        let raw = CompilationJobSummary::builder()
            .compilation_job_name("job")
            .compilation_job_arn("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/job")
            .compilation_job_status(status)
            .creation_time(DateTime::from_secs(1))
            .last_modified_time(DateTime::from_secs(modified))
            .build();
        JobSummary::try_from(raw).expect("summary")
    }

    fn described(status: CompilationJobStatus, modified: i64) -> DescribeCompilationJobOutput {
        DescribeCompilationJobOutput::builder()
            .compilation_job_status(status)
            .last_modified_time(DateTime::from_secs(modified))
            .build()
    }

    #[tokio::test(start_paused = true)]
    async fn a_terminal_job_is_reused_while_its_listing_is_unchanged() {
        let cache = JobCache::new(Duration::from_secs(60), 10);
        let listed = summary(CompilationJobStatus::Completed, 5);
        assert!(cache.describe(&listed).is_none());
        cache.put_describe(&listed.arn, &described(CompilationJobStatus::Completed, 5));
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(cache.describe(&listed).is_some(), "terminal: no TTL");
        let modified = summary(CompilationJobStatus::Completed, 6);
        assert!(
            cache.describe(&modified).is_none(),
            "LastModifiedTime changed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_job_and_tags_expire_after_the_ttl() {
        let cache = JobCache::new(Duration::from_secs(60), 10);
        let listed = summary(CompilationJobStatus::Inprogress, 5);
        cache.put_describe(&listed.arn, &described(CompilationJobStatus::Inprogress, 5));
        cache.put_tags(&listed.arn, &[("team".into(), "nlp".into())]);
        assert!(cache.describe(&listed).is_some());
        assert_eq!(
            cache.tags(&listed.arn),
            Some(vec![("team".into(), "nlp".into())])
        );
        let finished = summary(CompilationJobStatus::Completed, 5);
        assert!(cache.describe(&finished).is_none(), "status changed");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(cache.describe(&listed).is_none());
        assert!(cache.tags(&listed.arn).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest() {
        let cache = JobCache::new(Duration::from_secs(60), 3);
        for i in 0..5 {
            cache.put_tags(&format!("arn-{i}"), &[]);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.tags("arn-0").is_none() && cache.tags("arn-1").is_none());
        assert!(cache.tags("arn-4").is_some());
        cache.remove("arn-4");
        assert_eq!(cache.len(), 2);
    }
}
