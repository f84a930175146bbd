//! Which table each column of a query's result is a column of: what
//! Flight SQL's column metadata names (JDBC's `getTableName`, ADBC's
//! `xdbc_scope_table`).

use datafusion::common::TableReference;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection};

/// For each output column of `plan`, the table it is a column of, as the
/// query named it: the column's qualifier, or for `column AS name` in the
/// projection that makes the output, that column's table. `None`: the
/// column is computed.
pub fn column_tables(plan: &LogicalPlan) -> Vec<Option<TableReference>> {
    let projection = output_projection(plan);
    plan.schema()
        .iter()
        .enumerate()
        .map(|(i, (qualifier, _))| {
            qualifier.cloned().or_else(|| {
                let expr = projection?.expr.get(i)?;
                match expr {
                    Expr::Alias(alias) => match alias.expr.as_ref() {
                        Expr::Column(column) => column.relation.clone(),
                        _ => None,
                    },
                    _ => None,
                }
            })
        })
        .collect()
}

/// The projection whose columns are the output: the plan's top node, or
/// the one under the sorts and limits on top (which keep its columns).
fn output_projection(plan: &LogicalPlan) -> Option<&Projection> {
    match plan {
        LogicalPlan::Projection(projection) => Some(projection),
        LogicalPlan::Limit(limit) => output_projection(&limit.input),
        LogicalPlan::Sort(sort) => output_projection(&sort.input),
        _ => None,
    }
}
