//! What a scan asks the source for: one listing's parameters, and what to
//! fetch for each job it lists.

use aws_smithy_types::DateTime;

/// ListCompilationJobs' largest page.
pub const LIST_PAGE_SIZE: i32 = 100;

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
