//! `aws.sagemaker_compilation_job_history`: the history (`history.rs`) in
//! SQL, read from the store at its latest version at each query, filters
//! pushed into Delta's file pruning (and applied to the rows by DataFusion).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::replica::history::history_schema;
use crate::replica::provider::delta_scan;
use crate::replica::store::ReplicaStore;

/// The history of the replica in `store`.
#[derive(Debug)]
pub struct HistoryProvider {
    store: Arc<ReplicaStore>,
}

impl HistoryProvider {
    /// The history of `store`.
    pub fn new(store: Arc<ReplicaStore>) -> HistoryProvider {
        HistoryProvider { store }
    }
}

#[async_trait]
impl TableProvider for HistoryProvider {
    fn schema(&self) -> SchemaRef {
        history_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self
            .store
            .history()
            .latest()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        delta_scan(table, &history_schema(), state, projection, filters, limit).await
    }
}
