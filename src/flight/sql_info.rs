//! What GetSqlInfo answers: the server, and the SQL it speaks
//! (DataFusion's).

use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity};

/// What GetSqlInfo answers: the server, and the SQL it speaks (DataFusion's).
pub fn sql_info() -> Result<SqlInfoData, FlightError> {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "sagemaker-flight");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    // SQL_SUPPORTED_TRANSACTION_NONE.
    info.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    info.append(SqlInfo::FlightSqlServerCancel, false);
    info.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    info.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
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
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bitmask: SQL_GROUP_BY_UNRELATED | SQL_GROUP_BY_BEYOND_SELECT.
    info.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // Bitmask: minimum and core grammar.
    info.append(SqlInfo::SqlSupportedGrammar, 0b11i32);
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    // SQL_FULL_OUTER_JOINS.
    info.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32);
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "procedure");
    info.append(SqlInfo::SqlCatalogTerm, "catalog");
    info.append(SqlInfo::SqlCatalogAtStart, true);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Bitmask: comparisons, EXISTS, IN, quantified.
    info.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    // Bitmask: UNION, UNION ALL.
    info.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    info.append(SqlInfo::SqlMaxStatementLength, 0i64);
    info.append(SqlInfo::SqlTransactionsSupported, false);
    info.append(SqlInfo::SqlBatchUpdatesSupported, false);
    info.build()
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
