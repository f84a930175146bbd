//! What GetSqlInfo answers: the server, and the SQL it speaks
//! (DataFusion's), with every id the Flight SQL JDBC driver's
//! `DatabaseMetaData` reads (a missing one is a NullPointerException in the
//! tool that asked: Tableau's `supportsANSI92EntryLevelSQL`, DBeaver's
//! `getMaxColumnNameLength`).
//!
//! Enumerations are answered as the protocol defines each id: an ordinal
//! where it says ordinal (outer joins, null ordering, identifier case), a
//! bitmask of enum values where it says bitmask.

use std::collections::BTreeMap;

use arrow::compute::can_cast_types;
use arrow::datatypes::{DataType, IntervalUnit, TimeUnit};
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity,
    SqlSupportedResultSetConcurrency, SqlSupportedResultSetType, SqlSupportsConvert,
    SqlTransactionIsolationLevel, SupportedSqlGrammar,
};

use crate::flight::admission::QueryGovernor;

/// `SupportedAnsi92SqlGrammarLevel.ANSI92_ENTRY_SQL` (arrow-flight does
/// not export that enum).
const ANSI92_ENTRY_SQL: i32 = 0;

/// A bitmask of protocol enum values (bit n set: value n is supported).
fn bits(values: &[i32]) -> i32 {
    values.iter().fold(0, |mask, value| mask | (1 << value))
}

/// What GetSqlInfo answers: the server, the SQL it speaks (DataFusion's),
/// and the limits `governor` enforces.
pub fn sql_info(governor: &QueryGovernor) -> Result<SqlInfoData, FlightError> {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "sagemaker-flight");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    // SQL_SUPPORTED_TRANSACTION_NONE.
    info.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    // CancelFlightInfo and CancelQuery stop a query's streams.
    info.append(SqlInfo::FlightSqlServerCancel, true);
    info.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    info.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    // Milliseconds a statement may run (--query-timeout); 0: no limit.
    let timeout_ms = governor.timeout().map_or(0, |timeout| {
        i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
    });
    info.append(SqlInfo::FlightSqlServerStatementTimeout, timeout_ms);
    info.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, false);
    // DataFusion folds unquoted identifiers to lower case; quoted ones keep theirs.
    info.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    // Ascending order puts NULLs last: they sort high.
    info.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    info.append(SqlInfo::SqlKeywords, KEYWORDS);
    info.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    info.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    info.append(SqlInfo::SqlSystemFunctions, &["version"][..]);
    info.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.append(SqlInfo::SqlExtraNameCharacters, "");
    info.append(SqlInfo::SqlSupportsColumnAliasing, true);
    info.append(SqlInfo::SqlNullPlusNullIsNull, true);
    info.append(SqlInfo::SqlSupportsConvert, supported_conversions());
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmask: SQL_GROUP_BY_UNRELATED | SQL_GROUP_BY_BEYOND_SELECT.
    info.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    info.append(
        SqlInfo::SqlSupportedGrammar,
        bits(&[
            SupportedSqlGrammar::SqlMinimumGrammar as i32,
            SupportedSqlGrammar::SqlCoreGrammar as i32,
        ]),
    );
    // SELECT, joins, subqueries, CASE, CAST: entry level, not the
    // intermediate level's full set (no DDL, no transactions, no cursors).
    info.append(SqlInfo::SqlAnsi92SupportedLevel, bits(&[ANSI92_ENTRY_SQL]));
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    info.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "procedure");
    info.append(SqlInfo::SqlCatalogTerm, "catalog");
    info.append(SqlInfo::SqlCatalogAtStart, true);
    // No procedures, indexes or privileges: no schema or catalog names in them.
    info.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    info.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    // Read-only: no positioned DELETE or UPDATE.
    info.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Bitmask: comparisons, EXISTS, IN, quantified.
    info.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    // Bitmask: UNION, UNION ALL.
    info.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    // The SQL_MAX_* limits: 0 is "no limit, or not known" (as JDBC has it).
    // DataFusion limits no name, literal, row or column count.
    for id in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        info.append(id, 0i64);
    }
    info.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
    // Statements that run at once (--max-concurrent-queries); one more is
    // refused with RESOURCE_EXHAUSTED.
    let max_statements = i64::try_from(governor.max_running()).unwrap_or(i64::MAX);
    info.append(SqlInfo::SqlMaxStatements, max_statements);
    info.append(
        SqlInfo::SqlDefaultTransactionIsolation,
        SqlTransactionIsolationLevel::SqlTransactionNone as i64,
    );
    info.append(SqlInfo::SqlTransactionsSupported, false);
    info.append(
        SqlInfo::SqlSupportedTransactionsIsolationLevels,
        bits(&[SqlTransactionIsolationLevel::SqlTransactionNone as i32]),
    );
    info.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    info.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    // Results are streams read once, front to back, read-only.
    info.append(
        SqlInfo::SqlSupportedResultSetTypes,
        bits(&[SqlSupportedResultSetType::SqlResultSetTypeForwardOnly as i32]),
    );
    let read_only =
        bits(&[SqlSupportedResultSetConcurrency::SqlResultSetConcurrencyReadOnly as i32]);
    info.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified,
        read_only,
    );
    info.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly,
        read_only,
    );
    info.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive,
        0i32,
    );
    info.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive,
        0i32,
    );
    info.append(SqlInfo::SqlBatchUpdatesSupported, false);
    info.append(SqlInfo::SqlSavepointsSupported, false);
    info.append(SqlInfo::SqlNamedParametersSupported, false);
    info.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    info.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    info.build()
}

/// The SQL type each SQL_SUPPORTS_CONVERT code names, as an Arrow type.
const CONVERTIBLE: [(SqlSupportsConvert, DataType); 20] = [
    (SqlSupportsConvert::SqlConvertBigint, DataType::Int64),
    (SqlSupportsConvert::SqlConvertBinary, DataType::Binary),
    (SqlSupportsConvert::SqlConvertBit, DataType::Boolean),
    (SqlSupportsConvert::SqlConvertChar, DataType::Utf8),
    (SqlSupportsConvert::SqlConvertDate, DataType::Date32),
    (
        SqlSupportsConvert::SqlConvertDecimal,
        DataType::Decimal128(38, 10),
    ),
    (SqlSupportsConvert::SqlConvertFloat, DataType::Float64),
    (SqlSupportsConvert::SqlConvertInteger, DataType::Int32),
    (
        SqlSupportsConvert::SqlConvertIntervalDayTime,
        DataType::Interval(IntervalUnit::DayTime),
    ),
    (
        SqlSupportsConvert::SqlConvertIntervalYearMonth,
        DataType::Interval(IntervalUnit::YearMonth),
    ),
    (
        SqlSupportsConvert::SqlConvertLongvarbinary,
        DataType::LargeBinary,
    ),
    (
        SqlSupportsConvert::SqlConvertLongvarchar,
        DataType::LargeUtf8,
    ),
    (
        SqlSupportsConvert::SqlConvertNumeric,
        DataType::Decimal128(38, 10),
    ),
    (SqlSupportsConvert::SqlConvertReal, DataType::Float32),
    (SqlSupportsConvert::SqlConvertSmallint, DataType::Int16),
    (
        SqlSupportsConvert::SqlConvertTime,
        DataType::Time64(TimeUnit::Microsecond),
    ),
    (
        SqlSupportsConvert::SqlConvertTimestamp,
        DataType::Timestamp(TimeUnit::Microsecond, None),
    ),
    (SqlSupportsConvert::SqlConvertTinyint, DataType::Int8),
    (SqlSupportsConvert::SqlConvertVarbinary, DataType::Binary),
    (SqlSupportsConvert::SqlConvertVarchar, DataType::Utf8),
];

/// SQL_SUPPORTS_CONVERT: for each SQL type, the types CAST takes it to,
/// as Arrow's cast kernels (which DataFusion's CAST runs) can.
fn supported_conversions() -> BTreeMap<i32, Vec<i32>> {
    CONVERTIBLE
        .iter()
        .map(|(from, from_type)| {
            let targets = CONVERTIBLE
                .iter()
                .filter(|(_, to_type)| can_cast_types(from_type, to_type))
                .map(|(to, _)| *to as i32)
                .collect();
            (*from as i32, targets)
        })
        .collect()
}

const KEYWORDS: &[&str] = &[
    "absolute",
    "action",
    "add",
    "all",
    "allocate",
    "alter",
    "and",
    "any",
    "are",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "cast",
    "copy",
    "create",
    "cross",
    "current",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "exists",
    "explain",
    "external",
    "false",
    "first",
    "from",
    "full",
    "group",
    "having",
    "ilike",
    "in",
    "inner",
    "insert",
    "intersect",
    "interval",
    "is",
    "join",
    "last",
    "left",
    "like",
    "limit",
    "not",
    "null",
    "nulls",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "right",
    "select",
    "set",
    "show",
    "table",
    "then",
    "true",
    "union",
    "unnest",
    "update",
    "using",
    "values",
    "when",
    "where",
    "with",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "round", "trunc", "power", "sqrt", "ln", "log", "log10", "exp",
    "random", "signum",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "concat",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "regexp_like",
    "regexp_replace",
    "replace",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "trim",
    "upper",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "extract",
    "from_unixtime",
    "now",
    "to_timestamp",
];
