//! A statement's parameters: what it expects, and binding values to it.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;

use crate::query::error::QueryError;

/// The parameters a statement expects, in placeholder order ($1, $2,
/// ...), with their types where DataFusion could infer them (Utf8 else).
///
/// A timestamp parameter is announced in milliseconds, whatever its
/// column's unit: JDBC's `setTimestamp` value is in milliseconds, and the
/// Flight SQL JDBC driver (18.3) writes it unscaled into the vector the
/// announced schema names, so a microsecond one would carry a time a
/// thousand times too early. The value bound is compared with the column
/// in DataFusion's usual way, whatever unit a client sends.
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema, QueryError> {
    let types = plan.get_parameter_types()?;
    let mut names: Vec<_> = types.keys().cloned().collect();
    // $2 before $10.
    names.sort_by_key(|name| {
        name.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let fields: Vec<Field> = names
        .iter()
        .map(|name| {
            let data_type = match types.get(name).cloned().flatten() {
                Some(DataType::Timestamp(_, zone)) => {
                    DataType::Timestamp(TimeUnit::Millisecond, zone)
                }
                Some(data_type) => data_type,
                None => DataType::Utf8,
            };
            Field::new(name, data_type, true)
        })
        .collect();
    Ok(Schema::new(fields))
}

/// The parameter values in the first (and only) row of `batch`, one per
/// column, in column order ($1, $2, ...).
pub fn parameters_of_batch(batch: &RecordBatch) -> Result<ParamValues, QueryError> {
    if batch.num_rows() != 1 {
        return Err(QueryError::Parameters(format!(
            "expected one row of parameter values, got {}",
            batch.num_rows()
        )));
    }
    let values = batch
        .columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, 0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| QueryError::Parameters(e.to_string()))?;
    Ok(ParamValues::List(
        values.into_iter().map(Into::into).collect(),
    ))
}
