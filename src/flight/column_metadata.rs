//! Flight SQL column metadata: the `ARROW:FLIGHT:SQL:*` keys on each field
//! of a result's schema and of GetTables' table schemas, from which JDBC's
//! `ResultSetMetaData` and `DatabaseMetaData.getColumns` and ADBC's
//! `get_objects` (`xdbc_type_name`, `remarks`, ...) answer.
//!
//! A statement's FlightInfo and its DoGet stream carry the same schema,
//! metadata included (ADBC refuses a stream whose schema differs in any
//! way): both come from [`statement_schema`].
//!
//! `REMARKS` (a column's description) is in GetTables' schemas only, where
//! JDBC's `getColumns` reads it: the JDBC driver makes a result column's
//! REMARKS its label, so in a result's schema it would replace every
//! column header a tool shows with the column's description.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;

use crate::flight::type_info::sql_type_of;
use crate::query::engine::CATALOG;
use crate::query::{PlannedQuery, column_tables};
use crate::table::schema::{
    Column, LIVE_TABLE_UNQUALIFIED, TABLE_SCHEMA, TABLE_UNQUALIFIED, table_schema,
};

const CATALOG_NAME: &str = "ARROW:FLIGHT:SQL:CATALOG_NAME";
const DB_SCHEMA_NAME: &str = "ARROW:FLIGHT:SQL:DB_SCHEMA_NAME";
/// The schema name under the key the Java, C++ and Go Flight SQL libraries
/// (and so the JDBC driver and ADBC) read; the protocol's text says
/// `DB_SCHEMA_NAME`. Both are sent.
const SCHEMA_NAME: &str = "ARROW:FLIGHT:SQL:SCHEMA_NAME";
const TABLE_NAME: &str = "ARROW:FLIGHT:SQL:TABLE_NAME";
const TYPE_NAME: &str = "ARROW:FLIGHT:SQL:TYPE_NAME";
const PRECISION: &str = "ARROW:FLIGHT:SQL:PRECISION";
const SCALE: &str = "ARROW:FLIGHT:SQL:SCALE";
const IS_AUTO_INCREMENT: &str = "ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT";
const IS_CASE_SENSITIVE: &str = "ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE";
const IS_READ_ONLY: &str = "ARROW:FLIGHT:SQL:IS_READ_ONLY";
const IS_SEARCHABLE: &str = "ARROW:FLIGHT:SQL:IS_SEARCHABLE";
const REMARKS: &str = "ARROW:FLIGHT:SQL:REMARKS";
/// Not one of the protocol's keys (a field's nullability is the field's
/// own): the same fact for readers that look only at the metadata.
const IS_NULLABLE: &str = "ARROW:FLIGHT:SQL:IS_NULLABLE";

/// The table a column is read from: catalog, schema and table name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ColumnTable<'a> {
    pub catalog: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
}

/// The schema a statement's FlightInfo announces and its DoGet streams:
/// the result's fields, each with the metadata of its type and, for a
/// column of a table, of that table.
pub(super) fn statement_schema(planned: &PlannedQuery) -> SchemaRef {
    with_column_tables(&planned.schema(), planned.column_tables())
}

/// The output schema of a logical plan (a prepared statement's, before its
/// parameters are bound), with the same metadata.
pub(super) fn logical_schema(plan: &LogicalPlan) -> SchemaRef {
    with_column_tables(plan.schema().as_arrow(), &column_tables(plan))
}

/// `schema`'s fields with their metadata, field `i` a column of `tables[i]`.
fn with_column_tables(schema: &Schema, tables: &[Option<TableReference>]) -> SchemaRef {
    let fields = schema.fields().iter().enumerate().map(|(i, field)| {
        let table = tables.get(i).and_then(Option::as_ref).map(resolved);
        let table = table.as_ref().map(|(catalog, schema, table)| ColumnTable {
            catalog,
            schema,
            table,
        });
        with_metadata(field, table, false)
    });
    Arc::new(Schema::new_with_metadata(
        fields.collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// The whole table's schema with its column metadata: what a whole-table
/// read (`SELECT * FROM aws.sagemaker_compilation_job`, a PATH descriptor)
/// announces and streams, as [`statement_schema`] has it.
pub(super) fn whole_table_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let table = TableReference::partial(TABLE_SCHEMA, TABLE_UNQUALIFIED);
        let tables = vec![Some(table); table_schema().fields().len()];
        with_column_tables(&table_schema(), &tables)
    });
    Arc::clone(&SCHEMA)
}

/// `schema` (a table's, as GetTables lists it) with each column's metadata.
pub(super) fn table_with_metadata(table: ColumnTable<'_>, schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| with_metadata(field, Some(table), true))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// A qualifier as the query wrote it, completed with the session's
/// defaults (catalog `sagemaker`, schema `aws`).
fn resolved(reference: &TableReference) -> (String, String, String) {
    (
        reference.catalog().unwrap_or(CATALOG).to_owned(),
        reference.schema().unwrap_or(TABLE_SCHEMA).to_owned(),
        reference.table().to_owned(),
    )
}

/// `field` with the metadata of its type, and of `table`'s column of its
/// name when it is one (with its description if `remarks`).
fn with_metadata(field: &Field, table: Option<ColumnTable<'_>>, remarks: bool) -> Field {
    let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
    let (type_name, precision) = sql_type_of(field.data_type());
    let mut metadata: HashMap<String, String> = field.metadata().clone();
    metadata.insert(TYPE_NAME.into(), type_name.into());
    if let Some(precision) = decimal_precision(field.data_type()).or(precision) {
        metadata.insert(PRECISION.into(), precision.to_string());
    }
    if let Some(scale) = scale_of(field.data_type()) {
        metadata.insert(SCALE.into(), scale.to_string());
    }
    metadata.insert(IS_AUTO_INCREMENT.into(), flag(false));
    metadata.insert(IS_CASE_SENSITIVE.into(), flag(type_name == "VARCHAR"));
    metadata.insert(IS_READ_ONLY.into(), flag(true));
    // A column of a table can be filtered on; a computed one only as the
    // expression that computes it.
    metadata.insert(IS_SEARCHABLE.into(), flag(table.is_some()));
    metadata.insert(IS_NULLABLE.into(), flag(field.is_nullable()));
    if let Some(table) = table {
        metadata.insert(CATALOG_NAME.into(), table.catalog.into());
        metadata.insert(DB_SCHEMA_NAME.into(), table.schema.into());
        metadata.insert(SCHEMA_NAME.into(), table.schema.into());
        metadata.insert(TABLE_NAME.into(), table.table.into());
        if let Some(column) = contract_column(table, field.name()).filter(|_| remarks) {
            metadata.insert(REMARKS.into(), column.description().into());
        }
    }
    field.clone().with_metadata(metadata)
}

/// The contract's column `name` of `table`, if `table` is the job table
/// (the replica's or the live one).
fn contract_column(table: ColumnTable<'_>, name: &str) -> Option<Column> {
    let job_table = table.catalog == CATALOG
        && table.schema == TABLE_SCHEMA
        && (table.table == TABLE_UNQUALIFIED || table.table == LIVE_TABLE_UNQUALIFIED);
    job_table.then(|| Column::from_name(name)).flatten()
}

fn decimal_precision(data_type: &DataType) -> Option<i32> {
    match data_type {
        DataType::Decimal32(precision, _)
        | DataType::Decimal64(precision, _)
        | DataType::Decimal128(precision, _)
        | DataType::Decimal256(precision, _) => Some(i32::from(*precision)),
        _ => None,
    }
}

/// Digits after the point: a decimal's scale, a timestamp's fraction.
fn scale_of(data_type: &DataType) -> Option<i32> {
    use arrow::datatypes::TimeUnit;
    match data_type {
        DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale)
        | DataType::Decimal256(_, scale) => Some(i32::from(*scale)),
        DataType::Timestamp(unit, _) => Some(match unit {
            TimeUnit::Second => 0,
            TimeUnit::Millisecond => 3,
            TimeUnit::Microsecond => 6,
            TimeUnit::Nanosecond => 9,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_table_has_every_key_and_the_contract_descriptions() {
        let job_table = ColumnTable {
            catalog: CATALOG,
            schema: TABLE_SCHEMA,
            table: TABLE_UNQUALIFIED,
        };
        let schema = table_with_metadata(job_table, &table_schema());
        assert_eq!(schema.fields().len(), table_schema().fields().len());
        let name = schema
            .field_with_name("compilation_job_name")
            .expect("name");
        let m = name.metadata();
        assert_eq!(m[TYPE_NAME], "VARCHAR");
        assert_eq!(m[CATALOG_NAME], "sagemaker");
        assert_eq!(m[DB_SCHEMA_NAME], "aws");
        assert_eq!(m[SCHEMA_NAME], "aws");
        assert_eq!(m[TABLE_NAME], "sagemaker_compilation_job");
        assert_eq!(m[REMARKS], "The name of the model compilation job.");
        assert_eq!(m[IS_READ_ONLY], "1");
        assert_eq!(m[IS_NULLABLE], "0");
        let created = schema.field_with_name("creation_time").expect("created");
        assert_eq!(created.metadata()[TYPE_NAME], "TIMESTAMP");
        assert_eq!(created.metadata()[SCALE], "6");
        let tags = schema.field_with_name("tags").expect("tags");
        assert_eq!(tags.metadata()[TYPE_NAME], "MAP");
        // The fields themselves are the table's.
        for (with, without) in schema.fields().iter().zip(table_schema().fields()) {
            assert_eq!(
                with.as_ref().clone().with_metadata(HashMap::new()),
                **without
            );
        }
        // A result's schema has the same keys but the description.
        let read = whole_table_schema();
        let name = read.field_with_name("compilation_job_name").expect("name");
        assert_eq!(name.metadata()[TABLE_NAME], "sagemaker_compilation_job");
        assert!(!name.metadata().contains_key(REMARKS));
    }

    #[test]
    fn a_computed_column_has_its_type_and_no_table() {
        let field = with_metadata(&Field::new("n", DataType::Int64, false), None, false);
        let m = field.metadata();
        assert_eq!(m[TYPE_NAME], "BIGINT");
        assert_eq!(m[PRECISION], "19");
        assert_eq!(m[IS_SEARCHABLE], "0");
        assert!(!m.contains_key(TABLE_NAME) && !m.contains_key(REMARKS));
        let decimal = with_metadata(
            &Field::new("d", DataType::Decimal128(10, 2), true),
            None,
            false,
        );
        assert_eq!(decimal.metadata()[PRECISION], "10");
        assert_eq!(decimal.metadata()[SCALE], "2");
    }
}
