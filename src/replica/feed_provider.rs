//! `aws.sagemaker_compilation_job_changes`: the change feed (`feed.rs`) as
//! an unbounded SQL table. A query of it never ends by itself (a LIMIT
//! ends it); DataFusion refuses what would wait for its end (a sort, an
//! aggregate).
//!
//! Where it starts is said in SQL: `WHERE commit_version > N` (or `>=`,
//! `=`) starts at that commit, `WHERE commit_time > TIMESTAMP '...'` at the
//! first commit after that time, and no such filter with the next commit.
//! Every filter is also applied to the rows, so the start is exact.
//!
//! The feed applies the filters itself, to each commit's batch as it
//! comes: DataFusion's filter would hold small batches back until it had
//! a full one, which on a feed can be hours.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::TryStreamExt;

use crate::replica::change_data::{COMMIT_TIME, COMMIT_VERSION, changes_schema};
use crate::replica::feed::{FeedStart, change_feed};
use crate::replica::store::ReplicaStore;
use crate::table::expr_parts::{literal_of, micros_of};

/// The change feed of `store`.
#[derive(Debug)]
pub struct FeedProvider {
    store: Arc<ReplicaStore>,
    buffer_mib: usize,
}

impl FeedProvider {
    /// The feed of `store`, holding at most `buffer_mib` MiB for a client.
    pub fn new(store: Arc<ReplicaStore>, buffer_mib: usize) -> FeedProvider {
        FeedProvider { store, buffer_mib }
    }
}

#[async_trait]
impl TableProvider for FeedProvider {
    fn schema(&self) -> SchemaRef {
        changes_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                Some(state.create_physical_expr(expr, &DFSchema::try_from(changes_schema())?)?)
            }
            None => None,
        };
        let partition = FeedPartition {
            store: Arc::clone(&self.store),
            start: feed_start(filters),
            predicate,
            buffer_mib: self.buffer_mib,
            schema: changes_schema(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            changes_schema(),
            vec![Arc::new(partition)],
            projection,
            [],
            true,
            limit,
        )?))
    }
}

/// The one partition of a feed query.
#[derive(Debug)]
struct FeedPartition {
    store: Arc<ReplicaStore>,
    start: FeedStart,
    /// Every filter of the query (each row is kept only if it holds).
    predicate: Option<Arc<dyn PhysicalExpr>>,
    buffer_mib: usize,
    schema: SchemaRef,
}

impl PartitionStream for FeedPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _context: Arc<TaskContext>) -> SendableRecordBatchStream {
        let predicate = self.predicate.clone();
        let feed = change_feed(Arc::clone(&self.store), self.start, self.buffer_mib)
            .map_err(|error| DataFusionError::External(Box::new(error)))
            .and_then(move |batch| std::future::ready(kept_rows(predicate.as_deref(), batch)))
            .try_filter(|batch| std::future::ready(batch.num_rows() > 0));
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            feed,
        ))
    }
}

/// The rows of `batch` for which `predicate` holds.
fn kept_rows(predicate: Option<&dyn PhysicalExpr>, batch: RecordBatch) -> Result<RecordBatch> {
    let Some(predicate) = predicate else {
        return Ok(batch);
    };
    let holds = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
    let holds = holds.as_boolean_opt().ok_or_else(|| {
        DataFusionError::Execution("the feed's filter is not a condition".to_owned())
    })?;
    Ok(filter_record_batch(&batch, holds)?)
}

/// Where the filters say the feed starts: the latest start any of them
/// implies (all of them hold for every row), else with the next commit.
fn feed_start(filters: &[Expr]) -> FeedStart {
    let mut version: Option<u64> = None;
    let mut after: Option<i64> = None;
    for filter in filters {
        for conjunct in datafusion::logical_expr::utils::split_conjunction(filter) {
            match lower_bound(conjunct) {
                Some(Bound::Version(v)) => version = Some(version.map_or(v, |w| w.max(v))),
                Some(Bound::After(t)) => after = Some(after.map_or(t, |u| u.max(t))),
                None => {}
            }
        }
    }
    match (version, after) {
        (Some(version), _) => FeedStart::Version(version),
        (None, Some(after)) => FeedStart::After(after),
        (None, None) => FeedStart::Now,
    }
}

/// A lower bound on the feed's position.
enum Bound {
    /// The first version a row may be of.
    Version(u64),
    /// A time every row's commit is after or at (Unix microseconds).
    After(i64),
}

/// The lower bound `expr` puts on `commit_version` or `commit_time`, if it
/// is `column > literal`, `>=`, `=` (or the literal on the left).
fn lower_bound(expr: &Expr) -> Option<Bound> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    let (column, op, value) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(column), value) => (column, *op, literal_of(value)?),
        (value, Expr::Column(column)) => (column, op.swap()?, literal_of(value)?),
        _ => return None,
    };
    let inclusive = match op {
        Operator::Gt => false,
        Operator::GtEq | Operator::Eq => true,
        _ => return None,
    };
    match column.name.as_str() {
        COMMIT_VERSION => {
            let value = i64::try_from(value.clone()).ok()?;
            let first = if inclusive {
                value
            } else {
                value.checked_add(1)?
            };
            Some(Bound::Version(u64::try_from(first.max(0)).ok()?))
        }
        COMMIT_TIME => micros_of(value).map(Bound::After),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn the_start_is_read_from_the_filters() {
        assert_eq!(feed_start(&[]), FeedStart::Now);
        assert_eq!(
            feed_start(&[col(COMMIT_VERSION).gt(lit(7_i64))]),
            FeedStart::Version(8)
        );
        assert_eq!(
            feed_start(&[lit(7_i64).lt_eq(col(COMMIT_VERSION))]),
            FeedStart::Version(7)
        );
        assert_eq!(
            feed_start(&[col(COMMIT_VERSION)
                .gt_eq(lit(3_i64))
                .and(col(COMMIT_VERSION).gt(lit(5_i64)))]),
            FeedStart::Version(6)
        );
        let time = lit(ScalarValue::TimestampMicrosecond(
            Some(1_700_000_000_000_000),
            Some("UTC".into()),
        ));
        assert_eq!(
            feed_start(&[col(COMMIT_TIME).gt(time)]),
            FeedStart::After(1_700_000_000_000_000)
        );
        // An upper bound or another column says nothing of the start.
        assert_eq!(
            feed_start(&[col(COMMIT_VERSION).lt(lit(9_i64))]),
            FeedStart::Now
        );
        assert_eq!(
            feed_start(&[col("compilation_job_status").eq(lit("FAILED"))]),
            FeedStart::Now
        );
    }
}
