//! Keys, for the BI tools and JDBC programs that ask (DatabaseMetaData's
//! getPrimaryKeys, getExportedKeys, getImportedKeys, getCrossReference):
//! a table with a `_key` column (the job's ARN, one row per job, never
//! null) has it as its primary key; no table has a foreign key, so the
//! other three answers are empty, with the schemas the Flight SQL protocol
//! gives them.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::table::schema::Column;

/// CommandGetPrimaryKeys' result schema.
pub(super) static PRIMARY_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
});

/// The result schema of CommandGetExportedKeys, CommandGetImportedKeys and
/// CommandGetCrossReference.
pub(super) static FOREIGN_KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
});

/// A table, as the catalog lists it.
pub(super) struct TableName<'a> {
    pub(super) catalog: &'a str,
    pub(super) schema: &'a str,
    pub(super) table: &'a str,
}

/// The primary keys of `tables` (those of them with a `_key` column) that
/// match the command's catalog, schema (each, if given) and table.
pub(super) fn primary_keys<'a>(
    tables: impl IntoIterator<Item = (TableName<'a>, &'a Schema)>,
    catalog: Option<&str>,
    db_schema: Option<&str>,
    table: &str,
) -> Result<RecordBatch, ArrowError> {
    let key = Column::Key.name();
    let keyed: Vec<TableName> = tables
        .into_iter()
        .filter(|(name, schema)| {
            name.table == table
                && catalog.is_none_or(|wanted| wanted == name.catalog)
                && db_schema.is_none_or(|wanted| wanted == name.schema)
                && schema.field_with_name(key).is_ok()
        })
        .map(|(name, _)| name)
        .collect();
    let text = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    RecordBatch::try_new(
        Arc::clone(&PRIMARY_KEYS_SCHEMA),
        vec![
            text(keyed.iter().map(|name| name.catalog).collect()),
            text(keyed.iter().map(|name| name.schema).collect()),
            text(keyed.iter().map(|name| name.table).collect()),
            text(keyed.iter().map(|_| key).collect()),
            text(keyed.iter().map(|_| key).collect()),
            Arc::new(Int32Array::from(vec![1; keyed.len()])),
        ],
    )
}

/// No foreign key: the empty answer.
pub(super) fn no_foreign_keys() -> RecordBatch {
    RecordBatch::new_empty(Arc::clone(&FOREIGN_KEYS_SCHEMA))
}
