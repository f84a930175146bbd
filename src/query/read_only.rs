//! Which statements may run: queries, EXPLAIN of a query, SHOW TABLES and
//! SHOW COLUMNS. DDL, DML, COPY, SET and every other statement are refused
//! before DataFusion plans them.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::query::error::QueryError;

/// Refuses a parsed `statement` that is not a query (or EXPLAIN of one).
pub fn check_read_only(statement: &DfStatement) -> Result<(), QueryError> {
    let allowed = match &statement {
        DfStatement::Statement(inner) => match inner.as_ref() {
            SqlStatement::Query(_) => true,
            SqlStatement::Explain { statement, .. } => {
                matches!(statement.as_ref(), SqlStatement::Query(_))
            }
            SqlStatement::ShowTables { .. } | SqlStatement::ShowColumns { .. } => true,
            _ => false,
        },
        DfStatement::Explain(explain) => matches!(
        explain.statement.as_ref(),
        DfStatement::Statement(inner) if matches!(inner.as_ref(), SqlStatement::Query(_))
        ),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        let kind = statement.to_string();
        let kind: String = kind
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        Err(QueryError::ReadOnly(format!(
            "only queries can run here, not `{kind} ...`"
        )))
    }
}
