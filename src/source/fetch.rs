//! Completing a job: DescribeCompilationJob and ListTags, at the same
//! time, through the cache; a job gone in between is skipped.

use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;

use crate::source::error::{SourceError, SourceErrorKind};
use crate::source::operations;
use crate::source::record::{JobRecord, JobSummary};
use crate::source::request::ScanRequest;
use crate::source::sagemaker_source::SageMakerSource;

/// ListTags' largest page.
const TAGS_PAGE_SIZE: i32 = 50;

impl SageMakerSource {
    pub(super) async fn lookup_one(
        &self,
        name: &str,
        tags: bool,
    ) -> Result<Option<JobRecord>, SourceError> {
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
    /// vanished in between (see the module doc), or its row is not one
    /// `request.rows` keeps.
    pub(super) async fn complete(
        &self,
        summary: JobSummary,
        request: &ScanRequest,
    ) -> Result<Option<JobRecord>, SourceError> {
        if !request.describe && !request.tags {
            let record = JobRecord {
                summary,
                describe: None,
                tags: None,
            };
            return Ok(request.rows.keeps(&record).then_some(record));
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
        let record = JobRecord {
            summary,
            describe,
            tags,
        };
        // A job that changed (its status, since it was listed) into one the
        // scan does not want is skipped too.
        Ok(request.rows.keeps(&record).then_some(record))
    }

    /// DescribeCompilationJob, `None` when the job does not exist.
    async fn describe(
        &self,
        name: &str,
    ) -> Result<Option<DescribeCompilationJobOutput>, SourceError> {
        const OPERATION: &str = operations::DESCRIBE;
        let result = self
            .describe_gate
            .run(&self.retry, || async {
                // Boxed: the SDK's call is a future of kilobytes. Inline, it
                // made every job's `complete` future that large, and copying
                // those into the scan's FuturesUnordered was 5% of the
                // server's instructions in a cold scan (callgrind).
                Box::pin(
                    self.client
                        .describe_compilation_job()
                        .compilation_job_name(name)
                        .send(),
                )
                .await
                .map_err(|e| SourceError::from_sdk(OPERATION, e))
            })
            .await;
        not_found_as_none(result)
    }

    /// Every tag of `arn` (all ListTags pages), `None` when the job does not exist.
    async fn list_tags(&self, arn: &str) -> Result<Option<Vec<(String, String)>>, SourceError> {
        const OPERATION: &str = operations::LIST_TAGS;
        let mut tags = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let result = self
                .tags_gate
                .run(&self.retry, || async {
                    // Boxed, as Describe's call above.
                    Box::pin(
                        self.client
                            .list_tags()
                            .resource_arn(arn)
                            .max_results(TAGS_PAGE_SIZE)
                            .set_next_token(next_token.clone())
                            .send(),
                    )
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
