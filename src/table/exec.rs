//! The physical scan: which SageMaker calls a query makes, and the streams
//! that make them. One DataFusion partition per listing (a status `IN (...)`
//! lists each status in parallel), or one partition of direct lookups by
//! name; each merges the streams of every (account, region) the query
//! calls, which run side by side.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::source::{ListParams, Partition, PartitionKey, ScanRequest};
use crate::table::batches::{BatchSizing, record_batches};
use crate::table::pushdown::ApiFilter;
use crate::table::schema::{Column, ColumnSource};
use crate::table::snapshot::SnapshotStore;

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
    pub limit: Option<usize>,
}

impl ScanPlan {
    /// The calls that answer a query using `columns`, filtered by `api`.
    pub fn new(api: &ApiFilter, columns: &[Column], limit: Option<usize>) -> ScanPlan {
        let describe = columns.iter().any(|c| c.source() == ColumnSource::Describe);
        let tags = columns.contains(&Column::Tags);
        if api.matches_nothing() {
            return ScanPlan {
                lookups: None,
                listings: Vec::new(),
                describe,
                tags,
                limit,
            };
        }
        if let Some(names) = &api.names {
            return ScanPlan {
                lookups: Some(names.iter().cloned().collect()),
                listings: Vec::new(),
                // A lookup is a Describe, whatever the columns.
                describe: true,
                tags,
                limit,
            };
        }
        let base = ListParams {
            status: None,
            creation_after: api.creation_after.map(date_time_of_micros),
            creation_before: api.creation_before.map(date_time_of_micros),
            modified_after: api.modified_after.map(date_time_of_micros),
            modified_before: api.modified_before.map(date_time_of_micros),
            name_contains: api.name_contains.clone(),
            // A small LIMIT needs no full page.
            page_size: limit.map(|l| l.clamp(1, crate::source::LIST_PAGE_SIZE as usize) as i32),
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
        ScanPlan {
            lookups: None,
            listings,
            describe,
            tags,
            limit,
        }
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

    fn partitions(&self) -> usize {
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

fn date_time_of_micros(micros: i64) -> DateTime {
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

/// Streams the table's rows from SageMaker as the plan says.
#[derive(Debug)]
pub struct SageMakerScanExec {
    /// The (account, region) partitions the query calls, each with its own
    /// source and gates.
    partitions: Vec<Partition>,
    plan: ScanPlan,
    /// The projected columns, in output order.
    columns: Vec<Column>,
    schema: SchemaRef,
    sizing: BatchSizing,
    /// Where to keep this scan's batches as the table's snapshot, if it
    /// reads every job and column.
    snapshot_to: Option<Arc<SnapshotStore>>,
    properties: Arc<PlanProperties>,
}

impl SageMakerScanExec {
    /// A scan of `partitions` producing `columns` (whose schema is `schema`)
    /// by `plan`.
    pub fn new(
        partitions: Vec<Partition>,
        plan: ScanPlan,
        columns: Vec<Column>,
        schema: SchemaRef,
        sizing: BatchSizing,
        snapshot_to: Option<Arc<SnapshotStore>>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(plan.partitions()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        SageMakerScanExec {
            partitions,
            plan,
            columns,
            schema,
            sizing,
            snapshot_to,
            properties,
        }
    }

    /// The calls this scan makes.
    pub fn plan(&self) -> &ScanPlan {
        &self.plan
    }

    /// [`ScanPlan::extra_list_pages_at_most`] over every partition this
    /// scan calls.
    pub fn extra_list_pages_at_most(&self) -> usize {
        self.plan.extra_list_pages_at_most() * self.partitions.len()
    }
}

impl DisplayAs for SageMakerScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        if self.partitions.is_empty() {
            // The account and region filters left no partition: the plan's
            // calls are never made anywhere.
            write!(
                f,
                "SageMakerScanExec: calls=[], partitions=[] (no partition can match)"
            )?;
        } else {
            write!(
                f,
                "SageMakerScanExec: calls=[{}]",
                self.plan.operations().join(", ")
            )?;
            match &self.plan.lookups {
                Some(names) => write!(f, ", lookups=[{}]", names.join(", "))?,
                None if self.plan.listings.is_empty() => {
                    write!(f, ", listings=[] (no job can match)")?
                }
                None => {
                    let listings: Vec<_> =
                        self.plan.listings.iter().map(|l| l.to_string()).collect();
                    write!(f, ", listings=[{}]", listings.join("; "))?
                }
            }
        }
        if let Some(limit) = self.plan.limit {
            write!(f, ", limit={limit}")?;
        }
        // A server of one unnamed partition has nothing to say here.
        if self
            .partitions
            .iter()
            .any(|p| p.key != PartitionKey::default())
        {
            let keys: Vec<_> = self.partitions.iter().map(|p| p.key.to_string()).collect();
            write!(f, ", partitions=[{}]", keys.join(", "))?;
        }
        if self.snapshot_to.is_some() {
            write!(f, ", keeps_snapshot")?;
        }
        let names: Vec<_> = self.columns.iter().map(|c| c.name()).collect();
        write!(f, ", projection=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for SageMakerScanExec {
    fn name(&self) -> &str {
        "SageMakerScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "SageMakerScanExec has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        // Each source's calls run side by side: a slow or throttled region
        // delays only its own rows.
        let records = if let Some(names) = &self.plan.lookups {
            stream::select_all(
                self.partitions
                    .iter()
                    .map(|partition| partition.source.lookup(names.clone(), self.plan.tags)),
            )
            .boxed()
        } else if let Some(listing) = self.plan.listings.get(partition) {
            let request = ScanRequest {
                list: listing.clone(),
                describe: self.plan.describe,
                tags: self.plan.tags,
                limit: self.plan.limit,
            };
            let scans = self
                .partitions
                .iter()
                .map(|partition| partition.source.scan(request.clone()));
            let records = stream::select_all(scans);
            // LIMIT rows in all: each source stops at it, and so does the union.
            match self.plan.limit {
                Some(limit) => records.take(limit).boxed(),
                None => records.boxed(),
            }
        } else {
            // No listing: the filters match no job.
            stream::empty().boxed()
        };
        let batches = record_batches(
            records,
            self.columns.clone(),
            self.schema.clone(),
            self.sizing,
        )
        .map_err(|e| DataFusionError::External(Box::new(e)))
        .boxed();
        let batches = match &self.snapshot_to {
            Some(store) => store.record(batches),
            None => batches,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
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
            &[Column::CompilationJobName, Column::CreationTime],
            None,
        );
        assert_eq!(plan.operations(), vec!["ListCompilationJobs"]);
        let plan = ScanPlan::new(&ApiFilter::default(), &[Column::Tags], None);
        assert_eq!(plan.operations(), vec!["ListCompilationJobs", "ListTags"]);
        let plan = ScanPlan::new(&ApiFilter::default(), &ALL_COLUMNS, Some(5));
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
        let plan = ScanPlan::new(&api, &[Column::CompilationJobName], None);
        assert_eq!(plan.partitions(), 2);
        assert_eq!(plan.listings[1].to_string(), "StatusEquals=STOPPED");
        assert_eq!(plan.extra_list_pages_at_most(), 1);
        let api = ApiFilter {
            names: Some(BTreeSet::from(["a".into()])),
            ..ApiFilter::default()
        };
        let plan = ScanPlan::new(&api, &[Column::CompilationJobName], None);
        assert_eq!(plan.operations(), vec!["DescribeCompilationJob"]);
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
