//! The SageMaker source: lists compilation jobs page by page, describes them
//! concurrently and fetches their tags, only as far as a scan needs.
//!
//! The listing runs in its own task, a couple of pages ahead of the
//! describers, so the NextToken chain never waits for describes and describes
//! start with the first page. A job's Describe and ListTags run at the same
//! time. Every call passes its operation's gate (`gate.rs`), shared by all
//! scans: at most `concurrency` calls of one operation in flight against the
//! account, paced by a rate that adapts to throttling, retried with backoff.
//!
//! A job that is listed but gone by the time it is described or its tags are
//! read (ResourceNotFound: deleted in between) is **skipped**: the table shows
//! the jobs that exist, and a row built from a stale summary would be a job
//! that no longer exists.

pub mod accounts;
mod budget;
mod cache;
mod client;
mod error;
mod gate;
mod partition;
mod record;
mod retry;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;
use aws_sdk_sagemaker::types::{
    CompilationJobStatus, CompilationJobSummary, ListCompilationJobsSortBy, SortOrder,
};
use aws_smithy_types::DateTime;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use budget::{Budget, Budgeted};
use cache::JobCache;
use gate::OperationGate;

pub use client::{AwsOptions, emulator_client, emulator_sdk_config, sdk_config};
pub use error::{SourceError, SourceErrorKind, describe_chain};
pub use partition::{Partition, PartitionKey, Partitions};
pub use record::{JobRecord, JobSummary, account_id_from_arn};
pub use retry::RetryPolicy;

/// ListCompilationJobs' largest page.
pub const LIST_PAGE_SIZE: i32 = 100;
/// ListTags' largest page.
const TAGS_PAGE_SIZE: i32 = 50;
/// Pages each lister may run ahead of the describers.
const LIST_PAGES_AHEAD: usize = 2;
/// Creation-time windows of a full listing, unless configured.
pub const DEFAULT_LIST_WINDOWS: usize = 4;
/// Windows cover the year before the listing (or the query's creation-time
/// range); anything older falls in the first, open-ended one.
const WINDOWED_SPAN_SECS: i64 = 365 * 24 * 3600;
/// Adjacent windows overlap by this much on each side, so a job exactly on
/// a boundary is listed whatever AWS's After/Before inclusiveness; the
/// scan drops the duplicates.
const WINDOW_OVERLAP_SECS: i64 = 1;

/// Splits a listing into up to `windows` listings by creation time, which
/// never changes, so the NextToken chains can run in parallel. The first
/// window keeps the listing's own lower bound (or none), the last its upper
/// bound (or none); in between, equal slices of the range.
fn creation_windows(list: &ListParams, windows: usize, now: DateTime) -> Vec<ListParams> {
    let low = list
        .creation_after
        .map_or(now.secs() - WINDOWED_SPAN_SECS, |t| t.secs());
    let high = list.creation_before.map_or(now.secs(), |t| t.secs());
    let slices = windows as i64;
    if windows <= 1 || high - low < slices * 4 * WINDOW_OVERLAP_SECS {
        return vec![list.clone()];
    }
    let step = (high - low) / slices;
    (0..slices)
        .map(|i| ListParams {
            creation_after: if i == 0 {
                list.creation_after
            } else {
                Some(DateTime::from_secs(low + i * step - WINDOW_OVERLAP_SECS))
            },
            creation_before: if i == slices - 1 {
                list.creation_before
            } else {
                Some(DateTime::from_secs(
                    low + (i + 1) * step + WINDOW_OVERLAP_SECS,
                ))
            },
            ..list.clone()
        })
        .collect()
}

/// The parameters of one ListCompilationJobs chain (all optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// StatusEquals.
    pub status: Option<String>,
    /// CreationTimeAfter.
    pub creation_after: Option<DateTime>,
    /// CreationTimeBefore.
    pub creation_before: Option<DateTime>,
    /// LastModifiedTimeAfter.
    pub modified_after: Option<DateTime>,
    /// LastModifiedTimeBefore.
    pub modified_before: Option<DateTime>,
    /// NameContains.
    pub name_contains: Option<String>,
    /// MaxResults per page; `None` is the largest, [`LIST_PAGE_SIZE`].
    pub page_size: Option<i32>,
}

/// What one scan must fetch for each job.
#[derive(Clone, Debug, Default)]
pub struct ScanRequest {
    /// The listing to follow.
    pub list: ListParams,
    /// Call DescribeCompilationJob for every listed job.
    pub describe: bool,
    /// Call ListTags for every listed job.
    pub tags: bool,
    /// Stop after this many rows: list lazily and take no more jobs into
    /// work than the rows still needed.
    pub limit: Option<usize>,
}

/// Reads compilation jobs from one SageMaker endpoint (account and region).
#[derive(Debug)]
pub struct SageMakerSource {
    client: Client,
    /// Jobs in work at once per scan: each holds at most one call per operation.
    concurrency: usize,
    /// Creation-time windows a full listing is split into, listed in parallel.
    list_windows: usize,
    /// Answers kept between scans; `None`: every scan calls everything.
    cache: Option<JobCache>,
    retry: RetryPolicy,
    list_gate: OperationGate,
    describe_gate: OperationGate,
    tags_gate: OperationGate,
}

impl SageMakerSource {
    /// A source making at most `concurrency` (at least 1) calls of each
    /// operation at once.
    pub fn new(client: Client, concurrency: usize, retry: RetryPolicy) -> Self {
        let concurrency = concurrency.max(1);
        SageMakerSource {
            client,
            concurrency,
            list_windows: DEFAULT_LIST_WINDOWS,
            cache: None,
            retry,
            list_gate: OperationGate::new("ListCompilationJobs", concurrency),
            describe_gate: OperationGate::new("DescribeCompilationJob", concurrency),
            tags_gate: OperationGate::new("ListTags", concurrency),
        }
    }

    /// The same source, counting its calls in metrics as calls to
    /// `partition`.
    pub fn in_partition(mut self, partition: &PartitionKey) -> Self {
        self.list_gate = self.list_gate.in_partition(partition);
        self.describe_gate = self.describe_gate.in_partition(partition);
        self.tags_gate = self.tags_gate.in_partition(partition);
        self
    }

    /// Splits full listings into `windows` (at least 1) creation-time
    /// windows listed in parallel.
    pub fn with_list_windows(mut self, windows: usize) -> Self {
        self.list_windows = windows.max(1);
        self
    }

    /// Keeps Describe and ListTags answers between scans (see `cache.rs`);
    /// a zero `ttl` keeps none.
    pub fn with_cache(mut self, ttl: std::time::Duration, max_jobs: usize) -> Self {
        self.cache = (!ttl.is_zero()).then(|| JobCache::new(ttl, max_jobs));
        self
    }

    /// Streams every job, completed with what `request` asks for, in the
    /// order their calls finish. Dropping the stream stops the listing and
    /// every call that has not finished.
    pub fn scan(
        self: &Arc<Self>,
        request: ScanRequest,
    ) -> BoxStream<'static, Result<JobRecord, SourceError>> {
        let (pages, lister) = match request.limit {
            // A LIMIT scan lists lazily: the next page only when its rows
            // are needed.
            Some(_) => (Arc::clone(self).pages(request.list.clone(), None), None),
            // A full scan lists ahead in its own task, so the NextToken
            // chain never waits for describes; a long listing is split into
            // creation-time windows listed in parallel (`list_everything`).
            None => {
                let (pages_tx, pages_rx) = mpsc::channel(LIST_PAGES_AHEAD * self.list_windows);
                // In the caller's span: its calls count against the query.
                let lister = tokio::spawn(tracing::Instrument::in_current_span(
                    Arc::clone(self).list_everything(request.list.clone(), pages_tx),
                ));
                (
                    ReceiverStream::new(pages_rx).boxed(),
                    Some(AbortOnDrop(lister)),
                )
            }
        };
        // Windows overlap at their edges (see `creation_windows`): a job
        // listed twice is taken once.
        let mut seen = HashSet::new();
        let summaries = pages.flat_map(move |page| match page {
            Ok(summaries) => stream::iter(
                summaries
                    .into_iter()
                    .filter(|summary| seen.insert(summary.arn.clone()))
                    .map(Ok)
                    .collect::<Vec<_>>(),
            ),
            Err(error) => stream::iter(vec![Err(error)]),
        });
        let budget = request.limit.map(Budget::new);
        let summaries = match &budget {
            Some(budget) => Budgeted::new(summaries, Arc::clone(budget)).boxed(),
            None => summaries.boxed(),
        };
        let source = Arc::clone(self);
        let limit = request.limit.unwrap_or(usize::MAX);
        summaries
            .map(move |summary| {
                let source = Arc::clone(&source);
                let request = request.clone();
                async move { source.complete(summary?, &request).await }
            })
            .buffer_unordered(self.concurrency)
            .filter_map(move |completed| {
                // Owning the lister here ties its life to the stream's.
                let _lister = &lister;
                let item = match completed {
                    Ok(Some(record)) => Some(Ok(record)),
                    Ok(None) => {
                        if let Some(budget) = &budget {
                            budget.refund();
                        }
                        None
                    }
                    Err(error) => Some(Err(error)),
                };
                async move { item }
            })
            .take(limit)
            .boxed()
    }

    /// The NextToken chain as a lazy stream of pages: each page is fetched
    /// when the previous one has been taken. Ends after the last page or
    /// the first error.
    fn pages(
        self: Arc<Self>,
        params: ListParams,
        first_token: Option<String>,
    ) -> BoxStream<'static, Result<Vec<JobSummary>, SourceError>> {
        // State: the token of the next page; `None` once the chain is done.
        stream::unfold(Some(first_token), move |state| {
            let source = Arc::clone(&self);
            let params = params.clone();
            async move {
                let next_token = state?;
                let page = match source.list_page(&params, next_token).await {
                    Ok((summaries, token)) => summaries
                        .into_iter()
                        .map(JobSummary::try_from)
                        .collect::<Result<Vec<_>, _>>()
                        .map(|summaries| (summaries, token)),
                    Err(error) => Err(error),
                };
                Some(match page {
                    Ok((summaries, Some(token))) if !token.is_empty() => {
                        (Ok(summaries), Some(Some(token)))
                    }
                    Ok((summaries, _)) => (Ok(summaries), None),
                    Err(error) => (Err(error), None),
                })
            }
        })
        .boxed()
    }

    /// Lists everything `params` matches into `pages`. The first page says
    /// how long the listing is: a page of 100 jobs created within `d`
    /// seconds, with the range beyond it `r` seconds long, suggests `r / d`
    /// more pages. If there are several, the rest of the range is split into
    /// that many creation-time windows (at most `list_windows`), listed in
    /// parallel; otherwise the chain simply goes on. Stops when the receiver
    /// is gone.
    async fn list_everything(
        self: Arc<Self>,
        params: ListParams,
        pages: mpsc::Sender<Result<Vec<JobSummary>, SourceError>>,
    ) {
        let first = self
            .list_page(&params, None)
            .await
            .and_then(|(summaries, token)| {
                let summaries = summaries
                    .into_iter()
                    .map(JobSummary::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((summaries, token.filter(|t| !t.is_empty())))
            });
        let (summaries, token) = match first {
            Ok(page) => page,
            Err(error) => {
                let _ = pages.send(Err(error)).await;
                return;
            }
        };
        let times = summaries
            .first()
            .zip(summaries.last())
            .map(|(first, last)| (first.creation_time.secs(), last.creation_time.secs()));
        if pages.send(Ok(summaries)).await.is_err() {
            return;
        }
        let Some(token) = token else { return };
        let now = DateTime::from(SystemTime::now());
        let windows = match times {
            Some((first_time, last_time)) if self.list_windows > 1 => {
                let high = params.creation_before.map_or(now.secs(), |t| t.secs());
                let span = (last_time - first_time).max(1);
                let more_pages = ((high - last_time).max(0) / span + 1) as usize;
                let rest = ListParams {
                    creation_after: Some(DateTime::from_secs(last_time - WINDOW_OVERLAP_SECS)),
                    ..params.clone()
                };
                creation_windows(&rest, more_pages.min(self.list_windows), now)
            }
            _ => Vec::new(),
        };
        if windows.len() <= 1 {
            // Short enough: the chain simply goes on.
            drain(Arc::clone(&self).pages(params, Some(token)), &pages).await;
            return;
        }
        let windows = windows
            .into_iter()
            .map(|window| drain(Arc::clone(&self).pages(window, None), &pages));
        futures::future::join_all(windows).await;
    }

    async fn list_page(
        &self,
        params: &ListParams,
        next_token: Option<String>,
    ) -> Result<(Vec<CompilationJobSummary>, Option<String>), SourceError> {
        const OPERATION: &str = "ListCompilationJobs";
        let output = self
            .list_gate
            .run(&self.retry, || async {
                self.client
                    .list_compilation_jobs()
                    .max_results(params.page_size.unwrap_or(LIST_PAGE_SIZE))
                    // Oldest first, explicitly: windows start after the first page.
                    .sort_by(ListCompilationJobsSortBy::CreationTime)
                    .sort_order(SortOrder::Ascending)
                    .set_status_equals(params.status.as_deref().map(CompilationJobStatus::from))
                    .set_creation_time_after(params.creation_after)
                    .set_creation_time_before(params.creation_before)
                    .set_last_modified_time_after(params.modified_after)
                    .set_last_modified_time_before(params.modified_before)
                    .set_name_contains(params.name_contains.clone())
                    .set_next_token(next_token.clone())
                    .send()
                    .await
                    .map_err(|e| SourceError::from_sdk(OPERATION, e))
            })
            .await?;
        Ok((
            output.compilation_job_summaries.unwrap_or_default(),
            output.next_token,
        ))
    }

    /// Streams the jobs named in `names` straight from DescribeCompilationJob
    /// (and ListTags when `tags`), no listing; names that do not exist are
    /// skipped. At most `concurrency` lookups run at once.
    pub fn lookup(
        self: &Arc<Self>,
        names: Vec<String>,
        tags: bool,
    ) -> BoxStream<'static, Result<JobRecord, SourceError>> {
        let source = Arc::clone(self);
        stream::iter(names)
            .map(move |name| {
                let source = Arc::clone(&source);
                async move { source.lookup_one(&name, tags).await }
            })
            .buffer_unordered(self.concurrency)
            .filter_map(|found| async move { found.transpose() })
            .boxed()
    }

    async fn lookup_one(&self, name: &str, tags: bool) -> Result<Option<JobRecord>, SourceError> {
        let Some(described) = self.describe(name).await? else {
            return Ok(None);
        };
        let summary = JobSummary::try_from(&described)?;
        let tags = if tags {
            match self.list_tags(&summary.arn).await? {
                Some(tags) => Some(tags),
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some(JobRecord {
            summary,
            describe: Some(described),
            tags,
        }))
    }

    /// Fetches what `request` needs for one listed job. `Ok(None)`: the job
    /// vanished in between (see the module doc).
    async fn complete(
        &self,
        summary: JobSummary,
        request: &ScanRequest,
    ) -> Result<Option<JobRecord>, SourceError> {
        if !request.describe && !request.tags {
            return Ok(Some(JobRecord {
                summary,
                describe: None,
                tags: None,
            }));
        }
        // Both calls at once: a job costs one round trip, not two. The cache
        // answers what has not changed since it was fetched.
        let describe = async {
            if !request.describe {
                return Ok(Some(None));
            }
            if let Some(hit) = self.cache.as_ref().and_then(|c| c.describe(&summary)) {
                return Ok(Some(Some(hit)));
            }
            let found = self.describe(&summary.name).await?;
            if let Some(cache) = &self.cache {
                match &found {
                    Some(described) => cache.put_describe(&summary.arn, described),
                    None => cache.remove(&summary.arn),
                }
            }
            Ok(found.map(Some))
        };
        let tags = async {
            if !request.tags {
                return Ok(Some(None));
            }
            if let Some(hit) = self.cache.as_ref().and_then(|c| c.tags(&summary.arn)) {
                return Ok(Some(Some(hit)));
            }
            let found = self.list_tags(&summary.arn).await?;
            if let (Some(cache), Some(tags)) = (&self.cache, &found) {
                cache.put_tags(&summary.arn, tags);
            }
            Ok(found.map(Some))
        };
        let (describe, tags) = tokio::try_join!(describe, tags)?;
        // `None` outside: the job vanished (see the module doc).
        let (Some(describe), Some(tags)) = (describe, tags) else {
            return Ok(None);
        };
        Ok(Some(JobRecord {
            summary,
            describe,
            tags,
        }))
    }

    /// DescribeCompilationJob, `None` when the job does not exist.
    async fn describe(
        &self,
        name: &str,
    ) -> Result<Option<DescribeCompilationJobOutput>, SourceError> {
        const OPERATION: &str = "DescribeCompilationJob";
        let result = self
            .describe_gate
            .run(&self.retry, || async {
                self.client
                    .describe_compilation_job()
                    .compilation_job_name(name)
                    .send()
                    .await
                    .map_err(|e| SourceError::from_sdk(OPERATION, e))
            })
            .await;
        not_found_as_none(result)
    }

    /// Every tag of `arn` (all ListTags pages), `None` when the job does not exist.
    async fn list_tags(&self, arn: &str) -> Result<Option<Vec<(String, String)>>, SourceError> {
        const OPERATION: &str = "ListTags";
        let mut tags = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let result = self
                .tags_gate
                .run(&self.retry, || async {
                    self.client
                        .list_tags()
                        .resource_arn(arn)
                        .max_results(TAGS_PAGE_SIZE)
                        .set_next_token(next_token.clone())
                        .send()
                        .await
                        .map_err(|e| SourceError::from_sdk(OPERATION, e))
                })
                .await;
            let Some(output) = not_found_as_none(result)? else {
                return Ok(None);
            };
            for tag in output.tags.unwrap_or_default() {
                let (Some(key), Some(value)) = (tag.key, tag.value) else {
                    return Err(SourceError::malformed(
                        OPERATION,
                        "a Tag has no Key or Value",
                    ));
                };
                tags.push((key, value));
            }
            match output.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(Some(tags)),
            }
        }
    }
}

/// Sends every page of `source` to `sink`, until either ends.
async fn drain(
    mut source: BoxStream<'static, Result<Vec<JobSummary>, SourceError>>,
    sink: &mpsc::Sender<Result<Vec<JobSummary>, SourceError>>,
) {
    while let Some(page) = source.next().await {
        if sink.send(page).await.is_err() {
            return;
        }
    }
}

fn not_found_as_none<T>(result: Result<T, SourceError>) -> Result<Option<T>, SourceError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind == SourceErrorKind::NotFound => {
            tracing::debug!(%error, "job vanished between list and describe; skipped");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Aborts a spawned task when dropped, so a dropped stream stops its work.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_range_with_overlapping_edges() {
        let now = DateTime::from_secs(1_000_000_000);
        let windows = creation_windows(&ListParams::default(), 4, now);
        assert_eq!(windows.len(), 4);
        assert_eq!(windows[0].creation_after, None, "the first is open below");
        assert_eq!(windows[3].creation_before, None, "the last is open above");
        for pair in windows.windows(2) {
            let (before, after) = (pair[0].creation_before, pair[1].creation_after);
            let (before, after) = (before.expect("bound").secs(), after.expect("bound").secs());
            assert_eq!(before - after, 2 * WINDOW_OVERLAP_SECS, "edges overlap");
        }
    }

    #[test]
    fn windows_keep_the_querys_bounds_and_other_parameters() {
        let list = ListParams {
            status: Some("FAILED".into()),
            creation_after: Some(DateTime::from_secs(1_000)),
            creation_before: Some(DateTime::from_secs(9_000)),
            ..ListParams::default()
        };
        let windows = creation_windows(&list, 2, DateTime::from_secs(50_000));
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].creation_after, list.creation_after);
        assert_eq!(windows[1].creation_before, list.creation_before);
        assert_eq!(windows[0].creation_before, Some(DateTime::from_secs(5_001)));
        assert_eq!(windows[1].creation_after, Some(DateTime::from_secs(4_999)));
        assert!(
            windows
                .iter()
                .all(|w| w.status.as_deref() == Some("FAILED"))
        );
        // A range too short to split stays one listing.
        let short = ListParams {
            creation_after: Some(DateTime::from_secs(1_000)),
            creation_before: Some(DateTime::from_secs(1_005)),
            ..ListParams::default()
        };
        assert_eq!(
            creation_windows(&short, 4, DateTime::from_secs(50_000)),
            vec![short]
        );
    }
}
