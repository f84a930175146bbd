//! What a scan asks the source for: one listing's parameters (filters and
//! order), and what to fetch for each job it lists.

use aws_sdk_sagemaker::types::{ListCompilationJobsSortBy, SortOrder};
use aws_smithy_types::DateTime;

use crate::source::record::JobSummary;
use crate::source::row_filter::RowFilter;

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
    /// SortBy and SortOrder; `None`: oldest first (`CreationTime`,
    /// `Ascending`), which is what splitting a listing into creation-time
    /// windows needs. Set only for a scan that wants its first rows in this
    /// order (an `ORDER BY ... LIMIT`): then its LIMIT keeps the rows tied
    /// with the last one too.
    pub order: Option<ListOrder>,
}

/// The columns ListCompilationJobs can sort by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// `CreationTime`.
    CreationTime,
    /// `Name`.
    Name,
    /// `Status`.
    Status,
}

/// A sort value of one summary: what the API orders by, compared as SQL
/// compares the column (instants, and strings by bytes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// An instant.
    Time(DateTime),
    /// A string.
    Text(String),
}

/// The order of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListOrder {
    /// SortBy.
    pub key: SortKey,
    /// SortOrder `Descending`.
    pub descending: bool,
}

impl ListOrder {
    /// The API's SortBy.
    pub fn sort_by(&self) -> ListCompilationJobsSortBy {
        match self.key {
            SortKey::CreationTime => ListCompilationJobsSortBy::CreationTime,
            SortKey::Name => ListCompilationJobsSortBy::Name,
            SortKey::Status => ListCompilationJobsSortBy::Status,
        }
    }

    /// The API's SortOrder.
    pub fn sort_order(&self) -> SortOrder {
        if self.descending {
            SortOrder::Descending
        } else {
            SortOrder::Ascending
        }
    }

    /// The sort value of `summary`.
    pub fn value_of(&self, summary: &JobSummary) -> SortValue {
        match self.key {
            SortKey::CreationTime => SortValue::Time(summary.creation_time),
            SortKey::Name => SortValue::Text(summary.name.clone()),
            SortKey::Status => SortValue::Text(summary.status.clone()),
        }
    }

    /// Whether `next` may follow `previous` in this order.
    pub fn in_order(&self, previous: &SortValue, next: &SortValue) -> bool {
        if self.descending {
            next <= previous
        } else {
            next >= previous
        }
    }
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
    /// work than the rows still needed. With `list.order`, the rows tied
    /// with the last one on its sort key come too, so that whatever breaks
    /// the ties above the scan finds them.
    pub limit: Option<usize>,
    /// Conditions every delivered row meets; a job that fails them is
    /// skipped (and frees its place in a LIMIT).
    pub rows: RowFilter,
}
