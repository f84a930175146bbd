//! The calls a scan will make, decided at planning time: lookups by name
//! or listings (one per status), what each job needs, the LIMIT and the
//! order, and the filters the scan answers exactly.

use std::fmt;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use crate::source::{ListOrder, ListParams, RowFilter};
use crate::table::pushdown::ApiFilter;
use crate::table::schema::{Column, ColumnSource};

/// The calls a scan will make, decided at planning time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanPlan {
    /// Describe these names directly (no listing).
    pub lookups: Option<Vec<String>>,
    /// Otherwise: one ListCompilationJobs chain each, in parallel. Empty
    /// when the filters match nothing: no call at all.
    pub listings: Vec<ListParams>,
    /// Whether each listed job is described.
    pub describe: bool,
    /// Whether each job's tags are read.
    pub tags: bool,
    /// Stop after this many rows per partition (only when no filter remains
    /// above the scan, so every row the scan makes is a row of the answer).
    /// With `order`: the first rows of each listing in that order, and the
    /// rows tied with the last of them.
    pub limit: Option<usize>,
    /// The order each listing asks the API for, set by an `ORDER BY ...
    /// LIMIT` above the scan (`top_pushdown.rs`), which still sorts the
    /// rows: each (listing, partition) brings its first `limit`.
    pub order: Option<ListOrder>,
    /// What every row must meet: the filters the scan answers exactly.
    pub rows: RowFilter,
}

impl ScanPlan {
    /// The calls that answer a query using `columns`, filtered by `api`,
    /// whose rows must meet `rows`.
    pub fn new(
        api: &ApiFilter,
        rows: RowFilter,
        columns: &[Column],
        limit: Option<usize>,
    ) -> ScanPlan {
        let describe = columns.iter().any(|c| c.source() == ColumnSource::Describe);
        let tags = columns.contains(&Column::Tags);
        let plan = ScanPlan {
            lookups: None,
            listings: Vec::new(),
            describe,
            tags,
            limit,
            order: None,
            rows,
        };
        if api.matches_nothing() {
            return plan;
        }
        if let Some(names) = &api.names {
            return ScanPlan {
                lookups: Some(names.iter().cloned().collect()),
                // A lookup is a Describe, whatever the columns.
                describe: true,
                ..plan
            };
        }
        let base = ListParams {
            status: None,
            creation_after: api.creation_after.map(date_time_of_micros),
            creation_before: api.creation_before.map(date_time_of_micros),
            modified_after: api.modified_after.map(date_time_of_micros),
            modified_before: api.modified_before.map(date_time_of_micros),
            name_contains: api.name_contains.clone(),
            page_size: None,
            order: None,
        };
        let listings = match &api.statuses {
            Some(statuses) => statuses
                .iter()
                .map(|status| ListParams {
                    status: Some(status.clone()),
                    ..base.clone()
                })
                .collect(),
            None => vec![base],
        };
        ScanPlan { listings, ..plan }.with_page_sizes()
    }

    /// The plan with each listing in `order`, stopping after the first
    /// `limit` rows of each (and their ties): the scan under an `ORDER BY
    /// key LIMIT limit` that DataFusion still sorts.
    pub fn with_first_rows(self, order: ListOrder, limit: usize) -> ScanPlan {
        let listings = self
            .listings
            .into_iter()
            .map(|listing| ListParams {
                order: Some(order),
                ..listing
            })
            .collect();
        ScanPlan {
            listings,
            limit: Some(limit),
            order: Some(order),
            ..self
        }
        .with_page_sizes()
    }

    /// A small LIMIT needs no full page, when the API filters nothing: a
    /// page of `limit` jobs holds `limit` rows (one more in order, to see
    /// where the ties of the last end). A filtered listing keeps full
    /// pages: if AWS filters after it cuts a page (DESIGN.md), a page of
    /// `limit` jobs may hold none.
    fn with_page_sizes(mut self) -> ScanPlan {
        let extra = usize::from(self.order.is_some());
        for listing in &mut self.listings {
            let unfiltered = ListParams {
                page_size: None,
                order: None,
                ..listing.clone()
            } == ListParams::default();
            listing.page_size = match self.limit {
                Some(limit) if unfiltered => {
                    Some((limit + extra).clamp(1, crate::source::LIST_PAGE_SIZE as usize) as i32)
                }
                _ => None,
            };
        }
        self
    }

    /// Whether the plan reads every job in full: no filter, no LIMIT,
    /// Describe and tags.
    pub fn reads_everything(&self) -> bool {
        self.lookups.is_none()
            && self.listings == [ListParams::default()]
            && self.limit.is_none()
            && self.describe
            && self.tags
    }

    /// How many more ListCompilationJobs pages this plan can cost, per
    /// (account, region), than one listing of every job: each of k status
    /// listings may end in a partly filled page, so k listings cost at most
    /// k - 1 pages more (and far fewer when the statuses are rare). Every
    /// other call is never more than a full listing's.
    pub fn extra_list_pages_at_most(&self) -> usize {
        self.listings.len().saturating_sub(1)
    }

    /// DataFusion partitions of the scan: one per listing, or one of lookups.
    pub(crate) fn partitions(&self) -> usize {
        if self.lookups.is_some() {
            1
        } else {
            self.listings.len().max(1)
        }
    }

    /// The operations this plan calls, in call order.
    pub fn operations(&self) -> Vec<&'static str> {
        let mut operations = Vec::new();
        if self.lookups.as_ref().is_some_and(|names| !names.is_empty()) {
            operations.push("DescribeCompilationJob");
        } else if !self.listings.is_empty() {
            operations.push("ListCompilationJobs");
            if self.describe {
                operations.push("DescribeCompilationJob");
            }
        }
        if self.tags && !operations.is_empty() {
            operations.push("ListTags");
        }
        operations
    }
}

/// `[compilation_job_status IN (FAILED)]`: the filters the scan answers.
pub(crate) fn describe_row_filter(rows: &RowFilter) -> String {
    let parts: Vec<String> = [
        (Column::CompilationJobStatus, &rows.statuses),
        (Column::CompilationJobName, &rows.names),
        (Column::AccountId, &rows.accounts),
    ]
    .into_iter()
    .filter_map(|(column, values)| {
        let values: Vec<&str> = values.as_ref()?.iter().map(String::as_str).collect();
        Some(format!("{} IN ({})", column.name(), values.join(", ")))
    })
    .collect();
    format!("[{}]", parts.join(" AND "))
}

/// The instant `micros` microseconds after the epoch.
pub fn date_time_of_micros(micros: i64) -> DateTime {
    let nanos = (micros.rem_euclid(1_000_000) * 1_000) as u32;
    DateTime::from_secs_and_nanos(micros.div_euclid(1_000_000), nanos)
}

fn format_time(time: &DateTime) -> String {
    time.fmt(Format::DateTime)
        .unwrap_or_else(|_| time.to_string())
}

impl fmt::Display for ListParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(status) = &self.status {
            parts.push(format!("StatusEquals={status}"));
        }
        for (name, value) in [
            ("CreationTimeAfter", &self.creation_after),
            ("CreationTimeBefore", &self.creation_before),
            ("LastModifiedTimeAfter", &self.modified_after),
            ("LastModifiedTimeBefore", &self.modified_before),
        ] {
            if let Some(value) = value {
                parts.push(format!("{name}={}", format_time(value)));
            }
        }
        if let Some(fragment) = &self.name_contains {
            parts.push(format!("NameContains={fragment}"));
        }
        if let Some(order) = &self.order {
            parts.push(format!(
                "SortBy={} SortOrder={}",
                order.sort_by().as_str(),
                order.sort_order().as_str()
            ));
        }
        if let Some(size) = self.page_size {
            parts.push(format!("MaxResults={size}"));
        }
        if parts.is_empty() {
            f.write_str("(all)")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::schema::ALL_COLUMNS;
    use std::collections::BTreeSet;

    #[test]
    fn summary_columns_need_only_the_listing() {
        let plan = ScanPlan::new(
            &ApiFilter::default(),
            RowFilter::default(),
            &[Column::CompilationJobName, Column::CreationTime],
            None,
        );
        assert_eq!(plan.operations(), vec!["ListCompilationJobs"]);
        let plan = ScanPlan::new(
            &ApiFilter::default(),
            RowFilter::default(),
            &[Column::Tags],
            None,
        );
        assert_eq!(plan.operations(), vec!["ListCompilationJobs", "ListTags"]);
        let plan = ScanPlan::new(
            &ApiFilter::default(),
            RowFilter::default(),
            &ALL_COLUMNS,
            Some(5),
        );
        assert_eq!(
            plan.operations(),
            vec!["ListCompilationJobs", "DescribeCompilationJob", "ListTags"]
        );
        assert_eq!(plan.listings[0].page_size, Some(5));
        assert_eq!(plan.extra_list_pages_at_most(), 0);
    }

    #[test]
    fn statuses_list_in_parallel_and_names_skip_the_listing() {
        let api = ApiFilter {
            statuses: Some(BTreeSet::from(["FAILED".into(), "STOPPED".into()])),
            ..ApiFilter::default()
        };
        let plan = ScanPlan::new(
            &api,
            RowFilter::default(),
            &[Column::CompilationJobName],
            None,
        );
        assert_eq!(plan.partitions(), 2);
        assert_eq!(plan.listings[1].to_string(), "StatusEquals=STOPPED");
        assert_eq!(plan.extra_list_pages_at_most(), 1);
        let api = ApiFilter {
            names: Some(BTreeSet::from(["a".into()])),
            ..ApiFilter::default()
        };
        let plan = ScanPlan::new(
            &api,
            RowFilter::default(),
            &[Column::CompilationJobName],
            None,
        );
        assert_eq!(plan.operations(), vec!["DescribeCompilationJob"]);
    }

    #[test]
    fn first_rows_list_in_order_with_pages_that_show_the_ties() {
        let newest = ListOrder {
            key: crate::source::SortKey::CreationTime,
            descending: true,
        };
        let plan = ScanPlan::new(
            &ApiFilter::default(),
            RowFilter::default(),
            &[Column::CompilationJobName],
            None,
        )
        .with_first_rows(newest, 5);
        assert_eq!(
            plan.listings[0].to_string(),
            "SortBy=CreationTime SortOrder=Descending MaxResults=6"
        );
        assert_eq!(plan.limit, Some(5));
        // A filtered listing keeps full pages: AWS may filter after it cuts.
        let api = ApiFilter {
            statuses: Some(BTreeSet::from(["FAILED".into()])),
            ..ApiFilter::default()
        };
        let plan = ScanPlan::new(
            &api,
            RowFilter::default(),
            &[Column::CompilationJobName],
            Some(5),
        );
        assert_eq!(plan.listings[0].page_size, None);
        let plan = plan.with_first_rows(newest, 5);
        assert_eq!(
            plan.listings[0].to_string(),
            "StatusEquals=FAILED SortBy=CreationTime SortOrder=Descending"
        );
    }

    #[test]
    fn times_print_as_rfc3339() {
        let params = ListParams {
            creation_after: Some(date_time_of_micros(1_700_000_000_500_000)),
            ..ListParams::default()
        };
        assert_eq!(
            params.to_string(),
            "CreationTimeAfter=2023-11-14T22:13:20.5Z"
        );
    }
}
