//! The SageMaker source: lists compilation jobs page by page, describes them
//! concurrently and fetches their tags, only as far as a scan needs.
//!
//! The listing runs in its own task, a couple of pages ahead of the
//! describers, so the NextToken chain never waits for describes and describes
//! start with the first page. Describe and ListTags calls of every scan share
//! one pool of `concurrency` permits, so the server as a whole never has more
//! than `concurrency` of them in flight against the account.
//!
//! A job that is listed but gone by the time it is described or its tags are
//! read (ResourceNotFound: deleted in between) is **skipped**: the table shows
//! the jobs that exist, and a row built from a stale summary would be a job
//! that no longer exists.

mod budget;
mod client;
mod error;
mod record;
mod retry;

use std::sync::Arc;

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;
use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
use aws_smithy_types::DateTime;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use budget::{Budget, Budgeted};

pub use client::{AwsOptions, emulator_client, sagemaker_client};
pub use error::{SourceError, SourceErrorKind};
pub use record::{JobRecord, JobSummary, account_id_from_arn};
pub use retry::RetryPolicy;

/// ListCompilationJobs' largest page.
pub const LIST_PAGE_SIZE: i32 = 100;
/// ListTags' largest page.
const TAGS_PAGE_SIZE: i32 = 50;
/// Pages the lister may run ahead of the describers.
const LIST_PAGES_AHEAD: usize = 2;

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
    /// Shared by every scan: bounds Describe + ListTags calls in flight.
    call_permits: Arc<Semaphore>,
    /// The permit count, also each scan's own in-flight bound.
    concurrency: usize,
    retry: RetryPolicy,
}

impl SageMakerSource {
    /// A source making at most `concurrency` (at least 1) per-job calls at once.
    pub fn new(client: Client, concurrency: usize, retry: RetryPolicy) -> Self {
        let concurrency = concurrency.max(1);
        SageMakerSource {
            client,
            call_permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            retry,
        }
    }

    /// Streams every job, completed with what `request` asks for, in the
    /// order their calls finish. Dropping the stream stops the listing and
    /// every call that has not finished.
    pub fn scan(
        self: &Arc<Self>,
        request: ScanRequest,
    ) -> BoxStream<'static, Result<JobRecord, SourceError>> {
        let pages = Arc::clone(self).pages(request.list.clone());
        let (pages, lister) = match request.limit {
            // A LIMIT scan lists lazily: the next page only when its rows
            // are needed.
            Some(_) => (pages, None),
            // A full scan lists ahead in its own task, so the NextToken
            // chain never waits for describes.
            None => {
                let (pages_tx, pages_rx) = mpsc::channel(LIST_PAGES_AHEAD);
                let lister = tokio::spawn(async move {
                    let mut pages = pages;
                    while let Some(page) = pages.next().await {
                        if pages_tx.send(page).await.is_err() {
                            return;
                        }
                    }
                });
                (
                    ReceiverStream::new(pages_rx).boxed(),
                    Some(AbortOnDrop(lister)),
                )
            }
        };
        let summaries = pages.flat_map(|page| match page {
            Ok(summaries) => stream::iter(summaries.into_iter().map(Ok).collect::<Vec<_>>()),
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
    ) -> BoxStream<'static, Result<Vec<JobSummary>, SourceError>> {
        // State: the token of the next page; `None` once the chain is done.
        stream::unfold(Some(None::<String>), move |state| {
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

    async fn list_page(
        &self,
        params: &ListParams,
        next_token: Option<String>,
    ) -> Result<(Vec<CompilationJobSummary>, Option<String>), SourceError> {
        const OPERATION: &str = "ListCompilationJobs";
        let output = self
            .retry
            .run(|| async {
                self.client
                    .list_compilation_jobs()
                    .max_results(params.page_size.unwrap_or(LIST_PAGE_SIZE))
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
        let _permit = self.call_permits.acquire().await.ok();
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
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.call_permits.acquire().await.ok();
        let describe = if request.describe {
            match self.describe(&summary.name).await? {
                Some(output) => Some(output),
                None => return Ok(None),
            }
        } else {
            None
        };
        let tags = if request.tags {
            match self.list_tags(&summary.arn).await? {
                Some(tags) => Some(tags),
                None => return Ok(None),
            }
        } else {
            None
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
            .retry
            .run(|| async {
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
                .retry
                .run(|| async {
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
