//! Reading a plan one (account, region) partition at a time: which plans
//! can be split into independent streams whose union is the answer, and
//! the plan of one partition's stream.

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan, Volatility, lit};

use crate::query::error::QueryError;
use crate::source::PartitionKey;
use crate::source::arn::ArnField;
use crate::table::schema::{Column, TABLE_SCHEMA, TABLE_UNQUALIFIED};

/// Whether `scan` reads our table (not, say, an information_schema table).
fn is_table_scan(scan: &TableScan) -> bool {
    scan.table_name.table() == TABLE_UNQUALIFIED
        && scan
            .table_name
            .schema()
            .is_none_or(|schema| schema == TABLE_SCHEMA)
}

/// Whether every function `plan` calls gives the same answer whenever it
/// is called (no `now()`, `random()`, ...).
pub fn is_immutable(plan: &LogicalPlan) -> bool {
    let mut immutable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(function) = e
                    && function.func.signature().volatility != Volatility::Immutable
                {
                    immutable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    immutable
}

/// The scan of the table under `plan`, if `plan` is nothing but that scan,
/// filtered and projected row by row: then the union of its answers over
/// the partitions is its answer over the table.
pub fn splittable_scan(plan: &LogicalPlan) -> Option<&TableScan> {
    let row_by_row = |exprs: &[Expr]| {
        !exprs.iter().any(|expr| {
            expr.exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
                ))
            })
            .unwrap_or(true)
        })
    };
    match plan {
        LogicalPlan::Projection(projection) if row_by_row(&projection.expr) => {
            splittable_scan(&projection.input)
        }
        LogicalPlan::Filter(filter) if row_by_row(std::slice::from_ref(&filter.predicate)) => {
            splittable_scan(&filter.input)
        }
        LogicalPlan::SubqueryAlias(alias) => splittable_scan(&alias.input),
        LogicalPlan::TableScan(scan) if is_table_scan(scan) && scan.fetch.is_none() => Some(scan),
        _ => None,
    }
}

/// `plan` with every scan of the table filtered to the rows of partition
/// `key`: its account and the region in its ARNs. Pushed down, that filter
/// is also what keeps the scan from calling any other partition.
pub fn restrict_to_partition(
    plan: LogicalPlan,
    key: &PartitionKey,
) -> Result<LogicalPlan, QueryError> {
    let restricted = plan.transform_up(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        if !is_table_scan(scan) {
            return Ok(Transformed::no(node));
        }
        let column = |name: &str| {
            Expr::Column(datafusion::common::Column::new(
                Some(scan.table_name.clone()),
                name,
            ))
        };
        let mut conditions = Vec::new();
        if let Some(account) = &key.account_id {
            conditions.push(column(Column::AccountId.name()).eq(lit(account.as_str())));
        }
        if let Some(region) = &key.region {
            let arn_region = datafusion::functions::string::expr_fn::split_part(
                column(Column::CompilationJobArn.name()),
                lit(":"),
                lit(ArnField::Region.split_part()),
            );
            conditions.push(arn_region.eq(lit(region.as_str())));
        }
        let Some(predicate) = conditions.into_iter().reduce(Expr::and) else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(
            LogicalPlanBuilder::from(node).filter(predicate)?.build()?,
        ))
    })?;
    Ok(restricted.data)
}
