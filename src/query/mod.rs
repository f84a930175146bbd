//! The SQL engine: a DataFusion session holding the one table, read-only.
//!
//! Only queries (and EXPLAIN of a query) run. DDL, DML, COPY, SET and every
//! other statement are refused before DataFusion plans them, and the session
//! has no object store or file format beyond what DataFusion registers for
//! in-memory work, so SQL cannot read or write files.
//!
//! - [`engine`]: the session and its table; plans a statement, once
//!   parsed, into something to run.
//! - [`column_tables`]: which table each result column comes from.
//! - [`name_defaults`]: a session's default catalog and schema.
//! - [`read_only`]: which parsed statements may run.
//! - [`split`]: reading a plan one (account, region) partition at a time.
//! - [`parameters`]: the parameters a statement takes and binding them.
//! - [`positional`]: `?` placeholders numbered as `$1`, `$2`, ...
//! - [`error`]: why a statement did not run.
//!
//! May import: `table`, `source`, `obs`. Returns [`QueryError`]; the Flight
//! edge turns it into a status.

pub mod column_tables;
pub mod engine;
pub mod error;
pub mod name_defaults;
pub mod parameters;
pub mod positional;
pub mod read_only;
pub mod split;

pub use column_tables::column_tables;
pub use engine::{CATALOG, PlannedQuery, QueryEngine};
pub use error::QueryError;
pub use name_defaults::NameDefaults;
pub use parameters::{parameter_schema, parameters_of_batch};
