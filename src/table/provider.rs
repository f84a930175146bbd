//! The DataFusion `TableProvider` of `aws.sagemaker_compilation_job`:
//! answers which filters it can push into the API, and plans the scan.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::catalog::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::common::DFSchema;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExecBuilder;

use crate::source::{DEFAULT_CACHE_MAX_JOBS, Partition, Partitions};
use crate::table::batches::BatchSizing;
use crate::table::exact_filter::{row_filter_of, row_filter_of_all};
use crate::table::exec::SageMakerScanExec;
use crate::table::pushdown::{ApiFilter, pushdown_support};
use crate::table::scan_plan::ScanPlan;
use crate::table::schema::{ALL_COLUMNS, table_schema};
use crate::table::snapshot::SnapshotStore;

/// How the table scans, and what it keeps between queries.
#[derive(Clone, Copy, Debug)]
pub struct TableOptions {
    /// How rows are grouped into batches.
    pub sizing: BatchSizing,
    /// Off: no filter reaches the API (every query lists everything); used
    /// to check that pushdown never changes an answer. Projection and LIMIT
    /// still save calls either way.
    pub filter_pushdown: bool,
    /// How long the last complete `SELECT *` answers every query with no
    /// call (`snapshot.rs`); zero: never.
    pub snapshot_ttl: Duration,
    /// The most rows a snapshot holds; a larger table is not kept.
    pub snapshot_max_rows: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            sizing: BatchSizing::default(),
            filter_pushdown: true,
            snapshot_ttl: Duration::ZERO,
            snapshot_max_rows: DEFAULT_CACHE_MAX_JOBS,
        }
    }
}

/// The table: the union of its partitions (accounts and regions).
#[derive(Debug)]
pub struct CompilationJobTable {
    partitions: Partitions,
    options: TableOptions,
    snapshots: Arc<SnapshotStore>,
}

impl CompilationJobTable {
    /// The table over `partitions` (or one source, of unknown account and
    /// region).
    pub fn new(partitions: impl Into<Partitions>, options: TableOptions) -> Self {
        CompilationJobTable {
            partitions: partitions.into(),
            options,
            snapshots: Arc::new(SnapshotStore::new(
                options.snapshot_ttl,
                options.snapshot_max_rows,
            )),
        }
    }

    /// Every partition the table reads.
    pub fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    /// The partitions a query with the filters `api` calls: those that may
    /// hold its accounts and regions.
    pub fn partitions_for(&self, api: &ApiFilter) -> Vec<&Partition> {
        self.partitions
            .matching(api.accounts.as_ref(), api.regions.as_ref())
    }

    /// Where the table keeps its snapshot.
    pub fn snapshots(&self) -> Arc<SnapshotStore> {
        Arc::clone(&self.snapshots)
    }
}

#[async_trait]
impl TableProvider for CompilationJobTable {
    fn schema(&self) -> SchemaRef {
        table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                if self.options.filter_pushdown {
                    pushdown_support(filter)
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The filters the scan answers itself: DataFusion does not apply
        // them again.
        let exact: Vec<Expr> = if self.options.filter_pushdown {
            filters
                .iter()
                .filter(|filter| row_filter_of(filter).is_some())
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        if let Some(batches) = self.snapshots.fresh() {
            return memory_scan(state, &batches, &exact, projection, limit);
        }
        let columns: Vec<_> = match projection {
            Some(indices) => indices
                .iter()
                .filter_map(|&i| ALL_COLUMNS.get(i).copied())
                .collect(),
            None => ALL_COLUMNS.to_vec(),
        };
        let schema = match projection {
            Some(indices) => Arc::new(table_schema().project(indices)?),
            None => table_schema(),
        };
        let api = if self.options.filter_pushdown {
            ApiFilter::from_filters(filters)
        } else {
            ApiFilter::default()
        };
        let plan = ScanPlan::new(&api, row_filter_of_all(&exact), &columns, limit);
        let partitions: Vec<Partition> = self.partitions_for(&api).into_iter().cloned().collect();
        // Only a scan of every job (of every partition) and every column
        // can answer any query.
        let snapshot_to = (self.snapshots.enabled()
            && columns == ALL_COLUMNS
            && plan.reads_everything()
            && partitions.len() == self.partitions.all().len())
        .then(|| Arc::clone(&self.snapshots));
        Ok(Arc::new(SageMakerScanExec::new(
            partitions,
            plan,
            columns,
            schema,
            self.options.sizing,
            snapshot_to,
        )))
    }
}

/// Rows in memory (a snapshot, the replica's latest version), as a scan
/// would make them: filtered by `exact`, the filters the scan answers
/// exactly (DataFusion applies the others above), then projected and
/// limited.
pub fn memory_scan(
    state: &dyn Session,
    batches: &Arc<Vec<RecordBatch>>,
    exact: &[Expr],
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(predicate) = conjunction(exact.iter().cloned()) else {
        let snapshot = MemorySourceConfig::try_new(
            std::slice::from_ref(batches.as_ref()),
            table_schema(),
            projection.cloned(),
        )?
        .with_limit(limit);
        return Ok(DataSourceExec::from_data_source(snapshot));
    };
    let every_column =
        MemorySourceConfig::try_new(std::slice::from_ref(batches.as_ref()), table_schema(), None)?;
    let schema = DFSchema::try_from(table_schema().as_ref().clone())?;
    let predicate = state.create_physical_expr(unnormalize_col(predicate), &schema)?;
    let filtered =
        FilterExecBuilder::new(predicate, DataSourceExec::from_data_source(every_column))
            .apply_projection(projection.cloned())?
            .with_fetch(limit)
            .build()?;
    Ok(Arc::new(filtered))
}
