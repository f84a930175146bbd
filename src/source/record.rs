//! One job as the source delivers it: its listed summary (validated), and the
//! Describe and ListTags answers when the query needed them.

use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;
use aws_sdk_sagemaker::types::CompilationJobSummary;
use aws_smithy_types::DateTime;

use super::arn::account_id_from_arn;
use super::error::SourceError;

/// The members every summary must carry (they are `required` in AWS's model),
/// checked once so the rest of the code needs no `Option` for them.
#[derive(Clone, Debug)]
pub struct JobSummary {
    /// CompilationJobName.
    pub name: String,
    /// CompilationJobArn.
    pub arn: String,
    /// The account part of the ARN.
    pub account_id: String,
    /// CompilationJobStatus, as AWS spells it.
    pub status: String,
    /// CreationTime.
    pub creation_time: DateTime,
    /// The summary itself, for its optional members.
    pub raw: CompilationJobSummary,
}

impl TryFrom<CompilationJobSummary> for JobSummary {
    type Error = SourceError;

    fn try_from(raw: CompilationJobSummary) -> Result<Self, SourceError> {
        let missing = |member: &str| {
            SourceError::malformed(
                "ListCompilationJobs",
                format!("a CompilationJobSummary has no {member}"),
            )
        };
        let name = raw
            .compilation_job_name()
            .ok_or_else(|| missing("CompilationJobName"))?
            .to_owned();
        let arn = raw
            .compilation_job_arn()
            .ok_or_else(|| missing("CompilationJobArn"))?
            .to_owned();
        let account_id = account_id_from_arn(&arn)
            .ok_or_else(|| {
                SourceError::malformed(
                    "ListCompilationJobs",
                    format!("the ARN {arn:?} has no account id"),
                )
            })?
            .to_owned();
        let status = raw
            .compilation_job_status()
            .ok_or_else(|| missing("CompilationJobStatus"))?
            .as_str()
            .to_owned();
        let creation_time = *raw.creation_time().ok_or_else(|| missing("CreationTime"))?;
        Ok(JobSummary {
            name,
            arn,
            account_id,
            status,
            creation_time,
            raw,
        })
    }
}

impl TryFrom<&DescribeCompilationJobOutput> for JobSummary {
    type Error = SourceError;

    /// The summary of a job found by name (Describe carries every summary member).
    fn try_from(described: &DescribeCompilationJobOutput) -> Result<Self, SourceError> {
        let raw = CompilationJobSummary::builder()
            .set_compilation_job_name(described.compilation_job_name.clone())
            .set_compilation_job_arn(described.compilation_job_arn.clone())
            .set_compilation_job_status(described.compilation_job_status.clone())
            .set_creation_time(described.creation_time)
            .set_last_modified_time(described.last_modified_time)
            .set_compilation_start_time(described.compilation_start_time)
            .set_compilation_end_time(described.compilation_end_time)
            .build();
        JobSummary::try_from(raw).map_err(|e| SourceError {
            operation: "DescribeCompilationJob",
            ..e
        })
    }
}

/// A job with whatever the query needed fetched.
#[derive(Clone, Debug)]
pub struct JobRecord {
    /// From ListCompilationJobs (or built from a Describe answer).
    pub summary: JobSummary,
    /// DescribeCompilationJob's answer, when a described column is needed.
    pub describe: Option<DescribeCompilationJobOutput>,
    /// Every tag from ListTags (all pages, in order), when `tags` is needed.
    pub tags: Option<Vec<(String, String)>>,
}
