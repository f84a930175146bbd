//! The filters the scan answers exactly: equalities (and `IN` lists, and
//! ORs of them) on `compilation_job_status`, `compilation_job_name` and
//! `account_id`. Their API parameters (StatusEquals, a Describe by name,
//! the partitions of an account) already bring only matching jobs, and the
//! scan checks every row against them once more ([`RowFilter`]), so
//! DataFusion need not filter again. That is what lets a LIMIT under them
//! reach the scan and stop it early (`WHERE compilation_job_status =
//! 'FAILED' LIMIT 5` describes five jobs), and an `ORDER BY ... LIMIT` over
//! them list only the first pages.

use std::collections::BTreeSet;

use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::source::RowFilter;
use crate::table::expr_parts::{column_of, literal_of, string_of};
use crate::table::schema::Column;

/// The row filter `filter` is, if the scan can answer it exactly.
pub fn row_filter_of(filter: &Expr) -> Option<RowFilter> {
    let (column, values) = values_of(filter)?;
    let values = Some(values);
    Some(match column {
        Column::CompilationJobStatus => RowFilter {
            statuses: values,
            ..RowFilter::default()
        },
        Column::CompilationJobName => RowFilter {
            names: values,
            ..RowFilter::default()
        },
        Column::AccountId => RowFilter {
            accounts: values,
            ..RowFilter::default()
        },
        _ => return None,
    })
}

/// The row filter of a conjunction of `filters`: those it can answer.
pub fn row_filter_of_all(filters: &[Expr]) -> RowFilter {
    filters
        .iter()
        .filter_map(row_filter_of)
        .fold(RowFilter::default(), RowFilter::intersect)
}

/// `column = 'a'`, `column IN ('a', 'b')`, `'a' = column`, or an OR of
/// those on one column: the column and the values it may take.
fn values_of(filter: &Expr) -> Option<(Column, BTreeSet<String>)> {
    let text = |expr: &Expr| string_of(literal_of(expr)?).map(str::to_owned);
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => match (column_of(left), column_of(right)) {
            (Some(column), None) => Some((column, BTreeSet::from([text(right)?]))),
            (None, Some(column)) => Some((column, BTreeSet::from([text(left)?]))),
            _ => None,
        },
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let (left_column, mut values) = values_of(left)?;
            let (right_column, more) = values_of(right)?;
            (left_column == right_column).then(|| {
                values.extend(more);
                (left_column, values)
            })
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => Some((
            column_of(expr)?,
            list.iter().map(text).collect::<Option<_>>()?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn equalities_in_lists_and_ors_on_one_column_are_exact() {
        let failed = row_filter_of(&col("compilation_job_status").eq(lit("FAILED")));
        assert_eq!(
            failed.and_then(|r| r.statuses),
            Some(BTreeSet::from(["FAILED".to_owned()]))
        );
        let either = col("account_id")
            .eq(lit("111111111111"))
            .or(lit("222222222222").eq(col("account_id")));
        assert_eq!(
            row_filter_of(&either)
                .and_then(|r| r.accounts)
                .map(|a| a.len()),
            Some(2)
        );
        let names = col("compilation_job_name").in_list(vec![lit("a"), lit("b")], false);
        assert!(row_filter_of(&names).is_some_and(|r| r.names.is_some()));
    }

    #[test]
    fn anything_else_is_left_to_datafusion() {
        for filter in [
            col("compilation_job_status").not_eq(lit("FAILED")),
            col("compilation_job_status").in_list(vec![lit("FAILED")], true),
            col("compilation_job_status")
                .eq(lit("FAILED"))
                .or(col("compilation_job_name").eq(lit("a"))),
            col("failure_reason").eq(lit("x")),
            col("compilation_job_arn").eq(lit("arn:aws:sagemaker:us-east-1:1:compilation-job/a")),
            col("account_id").eq(lit(1)),
            col("compilation_job_status").eq(col("compilation_job_name")),
        ] {
            assert_eq!(row_filter_of(&filter), None, "{filter}");
        }
    }
}
