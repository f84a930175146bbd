//! `aws.sagemaker_compilation_job_freshness`: how fresh the replica is, one
//! row per (account, region) partition, computed at each query. From the
//! store, for every partition whoever collects it: the watermark (the
//! newest creation time committed) and the rows held. From this process's
//! collectors, for the partitions it collects: when they last ran and
//! succeeded, and why the last run failed. In a fleet, a partition another
//! member collects shows `collected_here = false` and no run times (or
//! those of when it was collected here, before the fleet changed): ask
//! that member (or its metrics).

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::replica::error::ReplicaError;
use crate::replica::status::{CollectorStatus, StatusBoard};
use crate::replica::store::ReplicaStore;
use crate::source::PartitionKey;

/// The UTC timestamps of the table, as the main table's.
fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static FRESHNESS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("collected_here", DataType::Boolean, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("watermark", timestamp(), true),
        Field::new("last_run", timestamp(), true),
        Field::new("last_success", timestamp(), true),
        Field::new("seconds_since_success", DataType::Float64, true),
        Field::new("last_error", DataType::Utf8, true),
        Field::new("failures_in_a_row", DataType::Int64, true),
    ]))
});

/// The freshness table's Arrow schema.
pub fn freshness_schema() -> SchemaRef {
    Arc::clone(&FRESHNESS_SCHEMA)
}

/// The freshness table of a store's partitions.
#[derive(Debug)]
pub struct FreshnessTable {
    store: Arc<ReplicaStore>,
    /// Every partition the server reads, in order.
    partitions: Vec<PartitionKey>,
    /// What this process's collectors did, and which partitions they
    /// collect now.
    board: StatusBoard,
}

impl FreshnessTable {
    /// The freshness of `partitions` in `store`; this process's
    /// collectors report to `board`, and say there which they collect.
    pub fn new(
        store: Arc<ReplicaStore>,
        partitions: Vec<PartitionKey>,
        board: StatusBoard,
    ) -> FreshnessTable {
        FreshnessTable {
            store,
            partitions,
            board,
        }
    }

    /// The table's rows, now.
    pub async fn rows(&self) -> Result<RecordBatch, ReplicaError> {
        let now = SystemTime::now();
        let mut watermarks = Vec::new();
        let mut rows = Vec::new();
        for partition in &self.partitions {
            watermarks.push(self.store.watermark(partition).await?);
            rows.push(i64::try_from(self.store.row_count(partition).await?).unwrap_or(i64::MAX));
        }
        let here: Vec<bool> = self
            .partitions
            .iter()
            .map(|partition| self.board.is_collecting(partition))
            .collect();
        let statuses: Vec<Option<CollectorStatus>> = self
            .partitions
            .iter()
            .map(|partition| self.board.get(partition))
            .collect();
        let field = |pick: fn(&CollectorStatus) -> Option<SystemTime>| {
            let micros = statuses
                .iter()
                .map(|status| status.as_ref().and_then(pick).map(micros_of));
            Arc::new(TimestampMicrosecondArray::from_iter(micros).with_timezone("UTC")) as ArrayRef
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter(
                self.partitions.iter().map(|p| p.account_id.as_deref()),
            )),
            Arc::new(StringArray::from_iter(
                self.partitions.iter().map(|p| p.region.as_deref()),
            )),
            Arc::new(BooleanArray::from(here.clone())),
            Arc::new(Int64Array::from(rows)),
            Arc::new(TimestampMicrosecondArray::from(watermarks).with_timezone("UTC")),
            field(|status| status.last_run),
            field(|status| status.last_success),
            Arc::new(Float64Array::from_iter(statuses.iter().map(|status| {
                let success = status.as_ref()?.last_success?;
                Some(
                    now.duration_since(success)
                        .unwrap_or_default()
                        .as_secs_f64(),
                )
            }))),
            Arc::new(StringArray::from_iter(statuses.iter().map(|status| {
                status.as_ref().and_then(|s| s.last_error.as_deref())
            }))),
            Arc::new(Int64Array::from_iter(statuses.iter().zip(&here).map(
                |(status, here)| {
                    here.then(|| {
                        status.as_ref().map_or(0, |s| {
                            i64::try_from(s.failures_in_a_row).unwrap_or(i64::MAX)
                        })
                    })
                },
            ))),
        ];
        Ok(RecordBatch::try_new(freshness_schema(), columns)?)
    }
}

fn micros_of(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
    })
}

#[async_trait]
impl TableProvider for FreshnessTable {
    fn schema(&self) -> SchemaRef {
        freshness_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = self
            .rows()
            .await
            .map_err(|error| DataFusionError::External(Box::new(error)))?;
        MemTable::try_new(freshness_schema(), vec![vec![rows]])?
            .scan(state, projection, filters, limit)
            .await
    }
}
