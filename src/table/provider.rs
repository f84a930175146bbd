//! The DataFusion `TableProvider` of `aws.sagemaker_compilation_job`:
//! answers which filters it can push into the API, and plans the scan.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::source::SageMakerSource;
use crate::table::batches::BatchSizing;
use crate::table::exec::{SageMakerScanExec, ScanPlan};
use crate::table::pushdown::{ApiFilter, pushdown_support};
use crate::table::schema::{ALL_COLUMNS, table_schema};

/// The table, reading from one SageMaker source.
#[derive(Debug)]
pub struct CompilationJobTable {
    source: Arc<SageMakerSource>,
    sizing: BatchSizing,
    /// Off: no filter reaches the API (every query lists everything); used
    /// to check that pushdown never changes an answer.
    filter_pushdown: bool,
}

impl CompilationJobTable {
    /// The table over `source`; `filter_pushdown` turns predicate pushdown
    /// on or off (projection and LIMIT still save calls either way).
    pub fn new(source: Arc<SageMakerSource>, sizing: BatchSizing, filter_pushdown: bool) -> Self {
        CompilationJobTable {
            source,
            sizing,
            filter_pushdown,
        }
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
                if self.filter_pushdown {
                    pushdown_support(filter)
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
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
        let api = if self.filter_pushdown {
            ApiFilter::from_filters(filters)
        } else {
            ApiFilter::default()
        };
        let plan = ScanPlan::new(&api, &columns, limit);
        Ok(Arc::new(SageMakerScanExec::new(
            Arc::clone(&self.source),
            plan,
            columns,
            schema,
            self.sizing,
        )))
    }
}
