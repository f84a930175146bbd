//! `ORDER BY key LIMIT n` into the listing: ListCompilationJobs sorts by
//! CreationTime, Name or Status in either order, so the first `n` rows of
//! each listing in that order (with any rows tied with the last) hold the
//! answer's rows, and the rest of the listing, and their Describes, are
//! never needed.
//!
//! A physical optimizer rule, run after DataFusion's own: it finds a
//! `SortExec` with a fetch whose first key is one of those columns, above
//! nothing but nodes that keep every row (projections, repartitions,
//! coalesces), above a [`SageMakerScanExec`], and gives the scan that order
//! and limit. The sort stays: it merges the first rows of every listing
//! and partition and breaks ties by the rest of the ORDER BY, so the
//! answer is the one a full scan gives.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_expr::expressions::Column as ColumnExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;

use crate::table::exec::SageMakerScanExec;

/// The rule (see the module doc).
#[derive(Debug, Default)]
pub struct FirstRowsIntoListing;

impl PhysicalOptimizerRule for FirstRowsIntoListing {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(fetch) = sort.fetch() else {
                return Ok(Transformed::no(node));
            };
            let first = sort.expr().first();
            let Some(column) = first.expr.downcast_ref::<ColumnExpr>() else {
                return Ok(Transformed::no(node));
            };
            let descending = first.options.descending;
            match first_rows_below(sort.input(), column.index(), descending, fetch)? {
                Some(input) => Ok(Transformed::yes(replace_children_if_necessary(
                    Arc::clone(&node),
                    vec![input],
                )?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "sagemaker_first_rows_into_listing"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with its scan listing in the order of its output column `index`
/// and stopping after `fetch` rows, if only row-keeping nodes stand between
/// it and the scan and the scan can list in that order.
fn first_rows_below(
    plan: &Arc<dyn ExecutionPlan>,
    index: usize,
    descending: bool,
    fetch: usize,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<SageMakerScanExec>() {
        return Ok(scan
            .with_first_rows(index, descending, fetch)
            .map(|scan| Arc::new(scan) as Arc<dyn ExecutionPlan>));
    }
    let index = if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        let column = projection
            .expr()
            .get(index)
            .and_then(|projected| projected.expr.downcast_ref::<ColumnExpr>());
        match column {
            Some(column) => column.index(),
            None => return Ok(None),
        }
    } else if plan.is::<CoalescePartitionsExec>()
        || plan.is::<RepartitionExec>()
        || plan.is::<CooperativeExec>()
    {
        index
    } else {
        return Ok(None);
    };
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    match first_rows_below(child, index, descending, fetch)? {
        Some(child) => Ok(Some(replace_children_if_necessary(
            Arc::clone(plan),
            vec![child],
        )?)),
        None => Ok(None),
    }
}
