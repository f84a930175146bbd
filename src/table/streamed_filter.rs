//! Filters that pass a live scan's rows on as they come.
//!
//! DataFusion's `FilterExec`, and the round-robin `RepartitionExec` it
//! puts under a filter to spread it over the cores, coalesce rows into
//! batches of the session's batch size (8,192 rows) before they send any
//! on. Over rows in memory that makes few large batches out of many small
//! ones; over a scan that builds its rows from Describe calls at tens per
//! second, it holds every row until the end of the scan, so a filter the
//! scan cannot answer exactly (a time bound, a region, a `LIKE`, an
//! endpoint's partition) would turn a streamed answer into one that
//! arrives only at the end.
//!
//! A physical optimizer rule, for what stands above a
//! [`SageMakerScanExec`] with nothing between them but nodes that pass
//! batches on as they come (projections, cooperative wrappers, and the
//! filters this rule has seen to): a round-robin repartition goes (the
//! scan's rows come at the API's pace, far slower than one core filters
//! them, and no operator needs that partitioning: one that needs rows
//! hashed or in one partition has its own repartition or coalesce above),
//! and a filter gets a batch size of [`PASS_THROUGH_BATCH_SIZE`]: its
//! coalescer passes a batch larger than half its target on untouched and
//! at once, so at 1 every batch leaves as soon as it is filtered. Plans
//! over memory keep DataFusion's.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

use crate::table::exec::SageMakerScanExec;

/// The batch size of a filter over a live scan: its coalescer then holds
/// no row (see the module doc).
const PASS_THROUGH_BATCH_SIZE: usize = 1;

/// The rule (see the module doc).
#[derive(Debug, Default)]
pub struct FiltersPassLiveRows;

impl PhysicalOptimizerRule for FiltersPassLiveRows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Up, so that a filter's input has lost its repartition already.
        plan.transform_up(|node| {
            if let Some(repartition) = node.downcast_ref::<RepartitionExec>()
                && matches!(repartition.partitioning(), Partitioning::RoundRobinBatch(_))
                && reads_live_scan(repartition.input())
            {
                return Ok(Transformed::yes(Arc::clone(repartition.input())));
            }
            if let Some(filter) = node.downcast_ref::<FilterExec>()
                && filter.batch_size() != PASS_THROUGH_BATCH_SIZE
                && reads_live_scan(filter.input())
            {
                let passing = filter.with_batch_size(PASS_THROUGH_BATCH_SIZE)?;
                return Ok(Transformed::yes(Arc::new(passing) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .data()
    }

    fn name(&self) -> &str {
        "sagemaker_filters_pass_live_rows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` is a live scan, or passes on the batches of one as they
/// come.
fn reads_live_scan(plan: &Arc<dyn ExecutionPlan>) -> bool {
    if plan.is::<SageMakerScanExec>() {
        return true;
    }
    let passes_batches_on = plan.is::<ProjectionExec>()
        || plan.is::<CooperativeExec>()
        || plan
            .downcast_ref::<FilterExec>()
            .is_some_and(|filter| filter.batch_size() == PASS_THROUGH_BATCH_SIZE);
    match plan.children()[..] {
        [child] if passes_batches_on => reads_live_scan(child),
        _ => false,
    }
}
