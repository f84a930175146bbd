//! Where a statement's unqualified table names resolve: a Flight SQL
//! session's `catalog` and `schema` options.

/// The catalog and schema a statement's table names resolve in when it
/// leaves them out; `None`: the engine's own (catalog `sagemaker`, schema
/// `aws`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameDefaults {
    /// The catalog of `schema.table` and `table`.
    pub catalog: Option<String>,
    /// The schema of `table`.
    pub schema: Option<String>,
}
