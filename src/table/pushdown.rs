//! SQL filters -> SageMaker API parameters ([`ApiFilter`]).
//!
//! Equalities on `compilation_job_status`, `compilation_job_name` and
//! `account_id` are `Exact`: the scan answers them itself
//! (`exact_filter.rs`), so a LIMIT above them reaches the scan. Every other
//! pushed filter is `Inexact`: DataFusion evaluates it again on the rows, so
//! a pushdown never changes an answer (and removes calls, but for the
//! partly filled last page of each status listing). That frees the
//! translation to be generous where the API's semantics are not SQL's: time
//! bounds are widened by a second (AWS does not say whether
//! `CreationTimeAfter` is inclusive, nor its precision), and `NameContains`
//! is used for `LIKE` although AWS may match case-insensitively.
//!
//! | filter | API |
//! |---|---|
//! | `compilation_job_status = 'X'`, `IN (...)` | `StatusEquals`, one listing per status |
//! | `creation_time` / `last_modified_time` `<`, `<=`, `>`, `>=`, `=`, `BETWEEN` | `CreationTimeAfter/Before`, `LastModifiedTimeAfter/Before` |
//! | `compilation_job_name = 'x'`, `IN (...)`; `compilation_job_arn`, `_key` likewise | `DescribeCompilationJob` per name, no listing |
//! | `compilation_job_name LIKE '%abc%'` | `NameContains` (the longest literal run of name characters) |
//! | `account_id = 'x'`, `IN (...)`; `split_part(compilation_job_arn, ':', 5)` likewise | only that account's partitions are called |
//! | `split_part(compilation_job_arn, ':', 4) = 'eu-west-1'`, `IN (...)`; `compilation_job_arn LIKE 'arn:aws:sagemaker:eu-west-1:%'`, `starts_with(...)` | only that region's partitions are called |
//! | an ARN (`=`, `IN`) | its own partition only, besides the Describe by name |

use std::collections::BTreeSet;

use aws_sdk_sagemaker::types::CompilationJobStatus;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{Between, InList, Like};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};

use crate::source::arn::{ArnField, is_entity_name, name_of_job_arn};
use crate::table::exact_filter::row_filter_of;
use crate::table::expr_parts::{column_of, literal_of, micros_of, string_of};
use crate::table::schema::Column;

pub use crate::table::api_filter::ApiFilter;

/// The statuses the API knows (from AWS's model, through the SDK). A
/// literal outside this set matches no job.
pub const STATUSES: &[&str] = CompilationJobStatus::values();

/// Time bounds are widened by this much (microseconds) before they go to
/// the API, so neither its inclusiveness nor its precision can drop a row.
const TIME_SLACK_MICROS: i64 = 1_000_000;

impl ApiFilter {
    /// The parameters one filter allows, `None` if it allows none (it is
    /// then left to DataFusion alone).
    pub(crate) fn of_expr(filter: &Expr) -> Option<ApiFilter> {
        let api = match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                let (left, right) = (Self::of_expr(left), Self::of_expr(right));
                match (left, right) {
                    (None, None) => return None,
                    (left, right) => left
                        .unwrap_or_default()
                        .intersect(right.unwrap_or_default()),
                }
            }
            // DataFusion rewrites short IN lists into ORs of equalities.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => Self::of_expr(left)?.union(Self::of_expr(right)?),
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) if arn_field_of(left).is_some() || arn_field_of(right).is_some() => {
                match (arn_field_of(left), literal_of(right)) {
                    (Some(field), Some(value)) => partitions_of_field(field, &[value])?,
                    _ => partitions_of_field(arn_field_of(right)?, &[literal_of(left)?])?,
                }
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                match (
                    column_of(left),
                    literal_of(right),
                    column_of(right),
                    literal_of(left),
                ) {
                    (Some(column), Some(value), _, _) => Self::compare(column, *op, value)?,
                    (_, _, Some(column), Some(value)) => Self::compare(column, op.swap()?, value)?,
                    _ => return None,
                }
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => {
                let values: Vec<&ScalarValue> =
                    list.iter().map(literal_of).collect::<Option<_>>()?;
                match arn_field_of(expr) {
                    Some(field) => partitions_of_field(field, &values)?,
                    None => Self::one_of(column_of(expr)?, &values)?,
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let column = column_of(expr)?;
                let low = Self::compare(column, Operator::GtEq, literal_of(low)?)?;
                let high = Self::compare(column, Operator::LtEq, literal_of(high)?)?;
                low.intersect(high)
            }
            // `compilation_job_name LIKE '%abc%'`, and
            // `compilation_job_arn LIKE 'arn:aws:sagemaker:eu-west-1:%'`
            Expr::Like(Like {
                negated: false,
                expr,
                pattern,
                escape_char: None,
                case_insensitive: false,
            }) => {
                let pattern = string_of(literal_of(pattern)?)?;
                match column_of(expr)? {
                    Column::CompilationJobName => ApiFilter {
                        name_contains: Some(name_contains_of_like(pattern)?),
                        ..ApiFilter::default()
                    },
                    Column::CompilationJobArn | Column::Key => {
                        // Up to the first wildcard or escape: the literal prefix.
                        let end = pattern.find(['%', '_', '\\']).unwrap_or(pattern.len());
                        let prefix = &pattern[..end];
                        Self::of_arn_prefix(prefix)?
                    }
                    _ => return None,
                }
            }
            // `starts_with(compilation_job_arn, 'arn:aws:sagemaker:eu-west-1:')`
            Expr::ScalarFunction(function)
                if function.name() == "starts_with"
                    && function.args.len() == 2
                    && is_arn_column(&function.args[0]) =>
            {
                Self::of_arn_prefix(string_of(literal_of(&function.args[1])?)?)?
            }
            _ => return None,
        };
        // Every status allowed is no constraint: one listing, not six.
        let api = match api.statuses {
            Some(ref statuses) if statuses.len() == STATUSES.len() => ApiFilter {
                statuses: None,
                ..api
            },
            _ => api,
        };
        // A filter that constrains nothing (an OR of unrelated parts) is no pushdown.
        (api != ApiFilter::default()).then_some(api)
    }

    fn compare(column: Column, op: Operator, value: &ScalarValue) -> Option<ApiFilter> {
        match column {
            Column::CompilationJobStatus
            | Column::CompilationJobName
            | Column::CompilationJobArn
            | Column::Key
                if op == Operator::Eq =>
            {
                Self::one_of(column, &[value])
            }
            Column::CreationTime | Column::LastModifiedTime => {
                let micros = micros_of(value)?;
                let lower = Some(micros.saturating_sub(TIME_SLACK_MICROS));
                let upper = Some(micros.saturating_add(TIME_SLACK_MICROS));
                let (after, before) = match op {
                    Operator::Gt | Operator::GtEq => (lower, None),
                    Operator::Lt | Operator::LtEq => (None, upper),
                    Operator::Eq => (lower, upper),
                    _ => return None,
                };
                Some(if column == Column::CreationTime {
                    ApiFilter {
                        creation_after: after,
                        creation_before: before,
                        ..ApiFilter::default()
                    }
                } else {
                    ApiFilter {
                        modified_after: after,
                        modified_before: before,
                        ..ApiFilter::default()
                    }
                })
            }
            _ => None,
        }
    }

    /// `column IN (values)` (or `=` with one value) for the columns whose
    /// values the API can enumerate.
    fn one_of(column: Column, values: &[&ScalarValue]) -> Option<ApiFilter> {
        let strings = values
            .iter()
            .map(|v| string_of(v))
            .collect::<Option<Vec<_>>>()?;
        let api = match column {
            // SQL compares case-sensitively: 'failed' matches no job.
            Column::CompilationJobStatus => ApiFilter {
                statuses: Some(
                    strings
                        .iter()
                        .filter(|s| STATUSES.contains(s))
                        .map(|s| s.to_string())
                        .collect(),
                ),
                ..ApiFilter::default()
            },
            Column::CompilationJobName => ApiFilter {
                names: Some(
                    strings
                        .iter()
                        .filter(|s| is_entity_name(s))
                        .map(|s| s.to_string())
                        .collect(),
                ),
                ..ApiFilter::default()
            },
            // An ARN names its job and its partition.
            Column::CompilationJobArn | Column::Key => {
                let arns: Vec<&str> = strings
                    .iter()
                    .copied()
                    .filter(|arn| name_of_job_arn(arn).is_some())
                    .collect();
                let fields = |field: ArnField| {
                    Some(
                        arns.iter()
                            .filter_map(|arn| field.of(arn))
                            .map(str::to_owned)
                            .collect(),
                    )
                };
                ApiFilter {
                    names: Some(
                        arns.iter()
                            .filter_map(|arn| name_of_job_arn(arn))
                            .map(str::to_owned)
                            .collect(),
                    ),
                    accounts: fields(ArnField::Account),
                    regions: fields(ArnField::Region),
                    ..ApiFilter::default()
                }
            }
            _ => return None,
        };
        Some(api)
    }
}

impl ApiFilter {
    /// The partition a literal ARN prefix names: its region once the
    /// prefix has passed the region field, its account once it has passed
    /// the account field. `None` if it names neither.
    fn of_arn_prefix(prefix: &str) -> Option<ApiFilter> {
        let fields: Vec<&str> = prefix.split(':').collect();
        // A field is known only if the prefix goes on past it (a ':' follows).
        let complete = |index: usize| {
            (fields.len() > index + 1 && !fields[index].is_empty() && fields[0] == "arn")
                .then(|| BTreeSet::from([fields[index].to_owned()]))
        };
        let api = ApiFilter {
            regions: complete(ArnField::Region.index()),
            accounts: complete(ArnField::Account.index()),
            ..ApiFilter::default()
        };
        (api != ApiFilter::default()).then_some(api)
    }
}

/// `field IN (values)`: only the partitions those values name.
fn partitions_of_field(field: ArnField, values: &[&ScalarValue]) -> Option<ApiFilter> {
    let values = Some(
        values
            .iter()
            .map(|value| string_of(value).map(str::to_owned))
            .collect::<Option<BTreeSet<_>>>()?,
    );
    Some(match field {
        ArnField::Region => ApiFilter {
            regions: values,
            ..ApiFilter::default()
        },
        ArnField::Account => ApiFilter {
            accounts: values,
            ..ApiFilter::default()
        },
    })
}

/// Which partition field `expr` is: the `account_id` column, or
/// `split_part(compilation_job_arn, ':', 4)` (region) or `..., 5)` (account).
fn arn_field_of(expr: &Expr) -> Option<ArnField> {
    match expr {
        Expr::Column(_) if column_of(expr) == Some(Column::AccountId) => Some(ArnField::Account),
        Expr::ScalarFunction(function)
            if function.name() == "split_part"
                && function.args.len() == 3
                && is_arn_column(&function.args[0])
                && literal_of(&function.args[1]).and_then(string_of) == Some(":") =>
        {
            let index = match literal_of(&function.args[2])? {
                ScalarValue::Int64(Some(i)) => *i,
                ScalarValue::Int32(Some(i)) => i64::from(*i),
                _ => return None,
            };
            ArnField::ALL
                .into_iter()
                .find(|field| field.split_part() == index)
        }
        _ => None,
    }
}

fn is_arn_column(expr: &Expr) -> bool {
    matches!(
        column_of(expr),
        Some(Column::CompilationJobArn | Column::Key)
    )
}

/// Whether DataFusion may hand `filter` to the scan: `Exact` when the scan
/// answers it itself (`exact_filter.rs`), `Inexact` when its API parameters
/// only narrow the listing (DataFusion evaluates it again on the rows).
pub fn pushdown_support(filter: &Expr) -> TableProviderFilterPushDown {
    if row_filter_of(filter).is_some() && ApiFilter::of_expr(filter).is_some() {
        TableProviderFilterPushDown::Exact
    } else if ApiFilter::of_expr(filter).is_some() {
        TableProviderFilterPushDown::Inexact
    } else {
        TableProviderFilterPushDown::Unsupported
    }
}

/// The NameContains fragment for a LIKE pattern: its longest run of
/// characters that can appear in a name. A job matching the pattern
/// contains every literal run, so any run is a valid superset filter.
fn name_contains_of_like(pattern: &str) -> Option<String> {
    pattern
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .max_by_key(|run| run.len())
        .filter(|run| !run.is_empty() && run.len() <= 63)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(micros: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(micros),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn status_equality_and_in_list() {
        let api = ApiFilter::from_filters(&[col("compilation_job_status").eq(lit("FAILED"))]);
        assert_eq!(api.statuses, Some(BTreeSet::from(["FAILED".to_owned()])));
        let api = ApiFilter::from_filters(&[col("compilation_job_status")
            .in_list(vec![lit("FAILED"), lit("STOPPED"), lit("failed")], false)]);
        assert_eq!(
            api.statuses,
            Some(BTreeSet::from(["FAILED".to_owned(), "STOPPED".to_owned()]))
        );
    }

    #[test]
    fn a_status_that_does_not_exist_matches_nothing() {
        let api = ApiFilter::from_filters(&[col("compilation_job_status").eq(lit("DONE"))]);
        assert!(api.matches_nothing());
        let api = ApiFilter::from_filters(&[
            col("compilation_job_status").eq(lit("FAILED")),
            col("compilation_job_status").eq(lit("COMPLETED")),
        ]);
        assert!(
            api.matches_nothing(),
            "two different statuses intersect to none"
        );
    }

    #[test]
    fn time_bounds_are_widened_and_combined() {
        let api = ApiFilter::from_filters(&[
            col("creation_time").gt_eq(ts(10_000_000)),
            ts(50_000_000).gt(col("creation_time")),
            col("creation_time").gt(ts(20_000_000)),
        ]);
        assert_eq!(api.creation_after, Some(19_000_000));
        assert_eq!(api.creation_before, Some(51_000_000));
        let api = ApiFilter::from_filters(&[
            col("last_modified_time").between(ts(5_000_000), ts(6_000_000))
        ]);
        assert_eq!(
            (api.modified_after, api.modified_before),
            (Some(4_000_000), Some(7_000_000))
        );
        let api = ApiFilter::from_filters(&[col("creation_time").eq(ts(5_000_000))]);
        assert_eq!(
            (api.creation_after, api.creation_before),
            (Some(4_000_000), Some(6_000_000))
        );
    }

    #[test]
    fn names_and_arns_become_lookups() {
        let api = ApiFilter::from_filters(&[col("compilation_job_name")
            .in_list(vec![lit("job-a"), lit("job-b"), lit("not a name!")], false)]);
        assert_eq!(
            api.names,
            Some(BTreeSet::from(["job-a".to_owned(), "job-b".to_owned()]))
        );
        let api = ApiFilter::from_filters(&[col("_key").eq(lit(
            "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/job-c",
        ))]);
        assert_eq!(api.names, Some(BTreeSet::from(["job-c".to_owned()])));
        let api = ApiFilter::from_filters(&[col("compilation_job_arn").eq(lit("nonsense"))]);
        assert!(api.matches_nothing());
    }

    #[test]
    fn ors_of_pushable_filters_become_their_union() {
        let status = |s: &str| col("compilation_job_status").eq(lit(s));
        let api = ApiFilter::from_filters(&[status("FAILED").or(status("STOPPED"))]);
        assert_eq!(
            api.statuses,
            Some(BTreeSet::from(["FAILED".to_owned(), "STOPPED".to_owned()]))
        );
        let api = ApiFilter::from_filters(&[col("creation_time")
            .gt(ts(10_000_000))
            .or(col("creation_time").gt(ts(20_000_000)))]);
        assert_eq!(api.creation_after, Some(9_000_000));
        // A name OR a status: the listing cannot express it.
        let mixed = col("compilation_job_name")
            .eq(lit("a"))
            .or(status("FAILED"));
        assert_eq!(
            pushdown_support(&mixed),
            TableProviderFilterPushDown::Unsupported
        );
    }

    #[test]
    fn empty_ranges_and_impossible_or_sides_are_recognised() {
        let api = ApiFilter::from_filters(&[
            col("creation_time").gt(ts(50_000_000)),
            col("creation_time").lt(ts(10_000_000)),
        ]);
        assert!(api.matches_nothing());
        let api = ApiFilter::from_filters(&[col("compilation_job_status")
            .eq(lit("DONE"))
            .or(col("creation_time").gt(ts(10_000_000)))]);
        assert_eq!(api.creation_after, Some(9_000_000));
        assert!(!api.matches_nothing());
        let every = STATUSES.iter().map(|s| lit(*s)).collect();
        let api = ApiFilter::from_filters(&[col("compilation_job_status").in_list(every, false)]);
        assert_eq!(api.statuses, None, "all six statuses: one plain listing");
    }

    #[test]
    fn like_becomes_name_contains() {
        let api = ApiFilter::from_filters(&[col("compilation_job_name").like(lit("%resnet%"))]);
        assert_eq!(api.name_contains.as_deref(), Some("resnet"));
        let api = ApiFilter::from_filters(&[col("compilation_job_name").like(lit("ab_%yolo-v5%"))]);
        assert_eq!(api.name_contains.as_deref(), Some("yolo-v5"));
        assert_eq!(
            pushdown_support(&col("compilation_job_name").like(lit("%"))),
            TableProviderFilterPushDown::Unsupported
        );
        assert_eq!(
            pushdown_support(&col("compilation_job_name").ilike(lit("%x%"))),
            TableProviderFilterPushDown::Unsupported
        );
    }

    #[test]
    fn other_filters_are_left_to_datafusion() {
        for filter in [
            col("failure_reason").eq(lit("x")),
            col("compilation_job_status").not_eq(lit("FAILED")),
            col("compilation_job_status")
                .eq(lit("FAILED"))
                .or(col("failure_reason").eq(lit("x"))),
            col("creation_time").gt(col("last_modified_time")),
            col("compilation_job_status").in_list(vec![lit("FAILED")], true),
        ] {
            assert_eq!(
                pushdown_support(&filter),
                TableProviderFilterPushDown::Unsupported,
                "{filter}"
            );
            assert_eq!(ApiFilter::from_filters(&[filter]), ApiFilter::default());
        }
    }

    fn strings(values: &[&str]) -> Option<BTreeSet<String>> {
        Some(values.iter().map(|v| v.to_string()).collect())
    }

    fn arn_part(index: i64) -> Expr {
        datafusion::functions::string::expr_fn::split_part(
            col("compilation_job_arn"),
            lit(":"),
            lit(index),
        )
    }

    #[test]
    fn account_and_arn_region_filters_name_partitions() {
        let api = ApiFilter::from_filters(&[
            col("account_id").eq(lit("111122223333")),
            arn_part(4).in_list(vec![lit("eu-west-1"), lit("us-east-1")], false),
        ]);
        assert_eq!(api.accounts, strings(&["111122223333"]));
        assert_eq!(api.regions, strings(&["eu-west-1", "us-east-1"]));
        let api = ApiFilter::from_filters(&[arn_part(5).eq(lit("444455556666"))]);
        assert_eq!(api.accounts, strings(&["444455556666"]));
        // Other fields of the ARN name no partition.
        assert_eq!(
            pushdown_support(&arn_part(3).eq(lit("sagemaker"))),
            TableProviderFilterPushDown::Unsupported
        );
        // OR of two partitions is both; AND of two different ones is none.
        let either = ApiFilter::from_filters(&[arn_part(4)
            .eq(lit("eu-west-1"))
            .or(arn_part(4).eq(lit("us-east-1")))]);
        assert_eq!(either.regions, strings(&["eu-west-1", "us-east-1"]));
        let both = ApiFilter::from_filters(&[
            col("account_id").eq(lit("1")),
            col("account_id").eq(lit("2")),
        ]);
        assert!(both.matches_nothing());
    }

    #[test]
    fn an_arn_or_its_prefix_names_its_partition() {
        let arn = "arn:aws:sagemaker:eu-west-1:111122223333:compilation-job/job-1";
        let api = ApiFilter::from_filters(&[col("compilation_job_arn").eq(lit(arn))]);
        assert_eq!(api.names, strings(&["job-1"]));
        assert_eq!(api.accounts, strings(&["111122223333"]));
        assert_eq!(api.regions, strings(&["eu-west-1"]));
        let like = |pattern: &str| {
            ApiFilter::from_filters(&[col("compilation_job_arn").like(lit(pattern))])
        };
        assert_eq!(
            like("arn:aws:sagemaker:eu-west-1:%").regions,
            strings(&["eu-west-1"])
        );
        assert_eq!(like("arn:aws:sagemaker:eu-west-1:%").accounts, None);
        assert_eq!(
            like("arn:aws:sagemaker:eu-west-1:111122223333:%").accounts,
            strings(&["111122223333"])
        );
        // The region field is not complete: it could be eu-west-1x.
        assert_eq!(like("arn:aws:sagemaker:eu-west-1%"), ApiFilter::default());
        assert_eq!(like("arn:aws:sagemaker:eu_west-1:%"), ApiFilter::default());
        assert_eq!(
            like("arn:aws:sagemaker:eu\\-west\\-1:%"),
            ApiFilter::default()
        );
        let starts =
            ApiFilter::from_filters(&[datafusion::functions::string::expr_fn::starts_with(
                col("_key"),
                lit("arn:aws:sagemaker:us-west-2:"),
            )]);
        assert_eq!(starts.regions, strings(&["us-west-2"]));
    }
}
