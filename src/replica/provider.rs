//! `aws.sagemaker_compilation_job` answered from the replica: the latest
//! committed version of the Delta table at each query, from memory when
//! it fits (`image.rs`: read once per version, also by the collectors),
//! else from the store with
//! filters pushed into Delta's file pruning. DataFusion applies the
//! filters to the rows either way, and the rows have exactly the live
//! table's Arrow schema (Delta's reader may hand strings back as views and
//! name the map's fields its own way).
//!
//! Until every partition's first full scan is in the store, a query is
//! answered live instead: an empty or partial replica is not an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{CastExpr, Column as ColumnExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use deltalake_core::DeltaTable;

use crate::replica::error::ReplicaError;
use crate::replica::store::ReplicaStore;
use crate::source::PartitionKey;
use crate::table::provider::memory_scan;
use crate::table::schema::table_schema;

/// The table read from the store.
#[derive(Debug)]
pub struct ReplicaTable {
    store: Arc<ReplicaStore>,
    /// Answers while the store is not complete yet.
    live: Arc<dyn TableProvider>,
    /// The partitions whose first full scan the store must hold.
    partitions: Vec<PartitionKey>,
    /// Set once every partition's first full scan is in (it stays so).
    complete: AtomicBool,
}

impl ReplicaTable {
    /// The table of `store`, holding `partitions`, answered by `live` until
    /// the store holds them all.
    pub fn new(
        store: Arc<ReplicaStore>,
        live: Arc<dyn TableProvider>,
        partitions: Vec<PartitionKey>,
    ) -> ReplicaTable {
        ReplicaTable {
            store,
            live,
            partitions,
            complete: AtomicBool::new(false),
        }
    }

    /// Every row of the latest version, from memory: `None` until the
    /// store holds every partition's first full scan, or if the table has
    /// more rows than memory may keep.
    pub async fn whole_table(&self) -> Result<Option<Arc<Vec<RecordBatch>>>, ReplicaError> {
        if !self.is_complete().await? {
            return Ok(None);
        }
        self.store.in_memory().await
    }

    /// The store it reads.
    pub fn store(&self) -> Arc<ReplicaStore> {
        Arc::clone(&self.store)
    }

    /// Whether the store holds every partition's first full scan.
    async fn is_complete(&self) -> Result<bool, ReplicaError> {
        if self.complete.load(Ordering::Acquire) {
            return Ok(true);
        }
        for partition in &self.partitions {
            if self.store.watermark(partition).await?.is_none() {
                return Ok(false);
            }
        }
        self.complete.store(true, Ordering::Release);
        Ok(true)
    }
}

#[async_trait]
impl TableProvider for ReplicaTable {
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
        // Delta prunes files by their statistics; DataFusion filters the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let external = |e: ReplicaError| DataFusionError::External(Box::new(e));
        if !self.is_complete().await.map_err(external)? {
            tracing::debug!("the replica's first full scan is not done: answering live");
            return self.live.scan(state, projection, filters, limit).await;
        }
        if let Some(batches) = self.store.in_memory().await.map_err(external)? {
            // Every filter is applied again above: none is exact here.
            return memory_scan(state, &batches, &[], projection, limit);
        }
        let table = self.store.latest().await.map_err(external)?;
        delta_scan(table, &table_schema(), state, projection, filters, limit).await
    }
}

/// A scan of the Delta `table` (`schema`: the schema its rows must have),
/// filters pushed into its file pruning, its columns cast to `schema`'s
/// types: Delta's reader may hand strings back as views and name a map's
/// fields its own way.
pub(crate) async fn delta_scan(
    table: DeltaTable,
    schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    table
        .update_datafusion_session(state)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let delta = table
        .table_provider()
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let scan = delta.scan(state, projection, filters, limit).await?;
    let wanted = match projection {
        Some(indices) => Arc::new(schema.project(indices)?),
        None => Arc::clone(schema),
    };
    let read = scan.schema();
    let casts = wanted
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let column = Arc::new(ColumnExpr::new(read.field(index).name(), index));
            ProjectionExpr::new(
                Arc::new(CastExpr::new(column, field.data_type().clone(), None)),
                field.name().clone(),
            )
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(ProjectionExec::try_new(casts, scan)?))
}
