//! Reading columns and literals out of DataFusion expressions, as filter
//! pushdown needs them.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;

use crate::table::schema::Column;

/// The table column `expr` is, if it is one.
pub fn column_of(expr: &Expr) -> Option<Column> {
    match expr {
        Expr::Column(column) => Column::from_name(&column.name),
        _ => None,
    }
}

/// The literal `expr` is, if it is a non-null one.
pub fn literal_of(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(value, _) if !value.is_null() => Some(value),
        _ => None,
    }
}

/// The text of a string literal.
pub fn string_of(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

/// A timestamp literal in microseconds since the epoch (any unit, any
/// time zone: the value is an instant either way).
pub fn micros_of(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v.div_euclid(1_000)),
        _ => None,
    }
}
