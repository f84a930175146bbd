//! Which rows of the store's tables are a partition's: its account, and
//! its region in the ARN. The replica and its history have both columns.

use datafusion::logical_expr::{Expr, col, lit};

use crate::source::PartitionKey;
use crate::source::arn::ArnField;
use crate::table::schema::Column;

/// The rows of `partition`: its account, and its region in the ARN.
pub(crate) fn partition_predicate(partition: &PartitionKey) -> Option<Expr> {
    let account = partition
        .account_id
        .as_ref()
        .map(|account| col(Column::AccountId.name()).eq(lit(account.as_str())));
    let region = partition.region.as_ref().map(|region| {
        datafusion::functions::string::expr_fn::split_part(
            col(Column::CompilationJobArn.name()),
            lit(":"),
            lit(ArnField::Region.split_part()),
        )
        .eq(lit(region.as_str()))
    });
    [account, region].into_iter().flatten().reduce(Expr::and)
}
