//! GetXdbcTypeInfo: the SQL types a query's columns can have, as JDBC's
//! DatabaseMetaData.getTypeInfo and ODBC's SQLGetTypeInfo list them. The
//! table's own columns are VARCHAR (the JSON text columns too), TIMESTAMP
//! (UTC) and a map (no SQL type: JDBC sees it as an object); aggregates and
//! expressions add the numeric, boolean and date types.

use std::sync::LazyLock;

use arrow::datatypes::DataType;

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

/// One type: its name, its XDBC type, its column size (or precision), and
/// how a literal of it is quoted.
struct Type {
    name: &'static str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    quoted: Option<(&'static str, &'static str)>,
    /// Its SQL type and subcode, where they differ from `data_type`
    /// (the date and time types).
    datetime: Option<XdbcDatetimeSubcode>,
}

const TYPES: [Type; 11] = [
    Type {
        name: "BOOLEAN",
        data_type: XdbcDataType::XdbcBit,
        column_size: Some(1),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "TINYINT",
        data_type: XdbcDataType::XdbcTinyint,
        column_size: Some(3),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "SMALLINT",
        data_type: XdbcDataType::XdbcSmallint,
        column_size: Some(5),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "INTEGER",
        data_type: XdbcDataType::XdbcInteger,
        column_size: Some(10),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "BIGINT",
        data_type: XdbcDataType::XdbcBigint,
        column_size: Some(19),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "REAL",
        data_type: XdbcDataType::XdbcReal,
        column_size: Some(24),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "DOUBLE",
        data_type: XdbcDataType::XdbcDouble,
        column_size: Some(53),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "DECIMAL",
        data_type: XdbcDataType::XdbcDecimal,
        column_size: Some(38),
        quoted: None,
        datetime: None,
    },
    Type {
        name: "VARCHAR",
        data_type: XdbcDataType::XdbcVarchar,
        column_size: Some(i32::MAX),
        quoted: Some(("'", "'")),
        datetime: None,
    },
    Type {
        name: "DATE",
        data_type: XdbcDataType::XdbcDate,
        column_size: Some(10),
        quoted: Some(("DATE '", "'")),
        // Code 1, ODBC's SQL_CODE_DATE (the protocol names it YEAR).
        datetime: Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
    },
    Type {
        name: "TIMESTAMP",
        data_type: XdbcDataType::XdbcTimestamp,
        // yyyy-mm-dd hh:mm:ss.ffffff
        column_size: Some(26),
        quoted: Some(("TIMESTAMP '", "'")),
        datetime: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
    },
];

/// Every type, for the GetXdbcTypeInfo answer.
pub(super) static TYPE_INFO: LazyLock<Result<XdbcTypeInfoData, String>> = LazyLock::new(|| {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    for kind in &TYPES {
        let numeric = kind.quoted.is_none() && kind.data_type != XdbcDataType::XdbcBit;
        builder.append(XdbcTypeInfo {
            type_name: kind.name.to_owned(),
            data_type: kind.data_type,
            column_size: kind.column_size,
            literal_prefix: kind.quoted.map(|(prefix, _)| prefix.to_owned()),
            literal_suffix: kind.quoted.map(|(_, suffix)| suffix.to_owned()),
            create_params: (kind.data_type == XdbcDataType::XdbcDecimal)
                .then(|| vec!["precision".to_owned(), "scale".to_owned()]),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: kind.data_type == XdbcDataType::XdbcVarchar,
            searchable: Searchable::Full,
            unsigned_attribute: numeric.then_some(false),
            fixed_prec_scale: false,
            auto_increment: numeric.then_some(false),
            local_type_name: Some(kind.name.to_owned()),
            minimum_scale: None,
            maximum_scale: (kind.data_type == XdbcDataType::XdbcDecimal).then_some(38),
            sql_data_type: if kind.datetime.is_some() {
                XdbcDataType::XdbcDatetime
            } else {
                kind.data_type
            },
            datetime_subcode: kind.datetime,
            num_prec_radix: numeric.then_some(10),
            interval_precision: None,
        });
    }
    builder.build().map_err(|e| e.to_string())
});

/// The SQL type name of a column of `data_type`, as GetXdbcTypeInfo lists
/// it, and its column size there; for a type that list lacks (maps,
/// lists, structs, binary, intervals, ...) a descriptive name and no size.
pub(super) fn sql_type_of(data_type: &DataType) -> (&'static str, Option<i32>) {
    let listed = match data_type {
        DataType::Boolean => "BOOLEAN",
        DataType::Int8 => "TINYINT",
        DataType::Int16 | DataType::UInt8 => "SMALLINT",
        DataType::Int32 | DataType::UInt16 => "INTEGER",
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BIGINT",
        DataType::Float16 | DataType::Float32 => "REAL",
        DataType::Float64 => "DOUBLE",
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "DECIMAL",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Timestamp(..) => "TIMESTAMP",
        DataType::Dictionary(_, values) => return sql_type_of(values),
        other => return (unlisted_type_name(other), None),
    };
    let size = TYPES
        .iter()
        .find(|kind| kind.name == listed)
        .and_then(|kind| kind.column_size);
    (listed, size)
}

fn unlisted_type_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Map(..) => "MAP",
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..) => "ARRAY",
        DataType::Struct(_) => "STRUCT",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "VARBINARY",
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        DataType::Null => "NULL",
        DataType::Union(..) => "UNION",
        _ => "OTHER",
    }
}
