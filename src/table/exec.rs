//! The physical scan: which SageMaker calls a query makes, and the streams
//! that make them. One DataFusion partition per listing (a status `IN (...)`
//! lists each status in parallel), or one partition of direct lookups by
//! name; each merges the streams of every (account, region) the query
//! calls, which run side by side.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
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

use crate::source::{ListOrder, Partition, PartitionKey, ScanRequest, SortKey};
use crate::table::batches::{BatchSizing, record_batches};
use crate::table::scan_plan::{ScanPlan, describe_row_filter};
use crate::table::schema::Column;
use crate::table::snapshot::SnapshotStore;

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

    /// This scan listing in the order of its output column `index` and
    /// bringing the first `limit` rows of each listing (and their ties), if
    /// the API can sort by that column and the scan lists: the input of a
    /// sort that keeps `limit` rows (`top_pushdown.rs`).
    pub fn with_first_rows(
        &self,
        index: usize,
        descending: bool,
        limit: usize,
    ) -> Option<SageMakerScanExec> {
        let key = match self.columns.get(index)? {
            Column::CreationTime => SortKey::CreationTime,
            Column::CompilationJobName => SortKey::Name,
            Column::CompilationJobStatus => SortKey::Status,
            _ => return None,
        };
        // A scan that already stops at a LIMIT of its own must keep
        // bringing those rows, whichever they are.
        if self.plan.lookups.is_some() || self.plan.listings.is_empty() || self.plan.limit.is_some()
        {
            return None;
        }
        let plan = self
            .plan
            .clone()
            .with_first_rows(ListOrder { key, descending }, limit);
        Some(SageMakerScanExec::new(
            self.partitions.clone(),
            plan,
            self.columns.clone(),
            self.schema.clone(),
            self.sizing,
            // Not every job: no snapshot.
            None,
        ))
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
            match self.plan.order {
                Some(_) => write!(f, ", limit={limit} per listing (and ties), sorted above")?,
                None => write!(f, ", limit={limit}")?,
            }
        }
        if !self.plan.rows.is_empty() {
            write!(f, ", exact={}", describe_row_filter(&self.plan.rows))?;
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
            stream::select_all(self.partitions.iter().map(|partition| {
                partition
                    .source
                    .lookup(names.clone(), self.plan.tags, self.plan.rows.clone())
            }))
            .take(self.plan.limit.unwrap_or(usize::MAX))
            .boxed()
        } else if let Some(listing) = self.plan.listings.get(partition) {
            let request = ScanRequest {
                list: listing.clone(),
                describe: self.plan.describe,
                tags: self.plan.tags,
                limit: self.plan.limit,
                rows: self.plan.rows.clone(),
            };
            let scans = self
                .partitions
                .iter()
                .map(|partition| partition.source.scan(request.clone()));
            let records = stream::select_all(scans);
            // LIMIT rows in all: each source stops at it, and so does the
            // union, unless the sort above chooses among the first rows of
            // every source.
            match (self.plan.limit, self.plan.order) {
                (Some(limit), None) => records.take(limit).boxed(),
                _ => records.boxed(),
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
