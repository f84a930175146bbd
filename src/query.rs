//! The SQL engine: a DataFusion session holding the one table, read-only.
//!
//! Only queries (and EXPLAIN of a query) run. DDL, DML, COPY, SET and every
//! other statement are refused before DataFusion plans them, and the session
//! has no object store or file format beyond what DataFusion registers for
//! in-memory work, so SQL cannot read or write files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan, Volatility, lit};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use tonic::{Code, Status};

use crate::flight::cap_message;
use crate::limits::Limits;
use crate::source::{PartitionKey, Partitions};
use crate::table::ScanError;
use crate::table::provider::{CompilationJobTable, TableOptions};
use crate::table::schema::{TABLE_SCHEMA, TABLE_UNQUALIFIED};
use crate::table::snapshot::SnapshotStore;

/// The catalog the table lives in (`sagemaker.aws.sagemaker_compilation_job`).
pub const CATALOG: &str = "sagemaker";

/// Why a statement was not run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would change something or read outside the table.
    #[error("sagemaker-flight is read-only: {0}")]
    ReadOnly(String),
    /// The SQL does not parse, or names something that does not exist.
    #[error("{0}")]
    Invalid(String),
    /// The SQL names a table that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Parameters that do not fit the statement.
    #[error("bad parameters: {0}")]
    Parameters(String),
    /// Anything DataFusion reports while planning or running.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<QueryError> for Status {
    fn from(error: QueryError) -> Status {
        match error {
            QueryError::ReadOnly(_) => Status::permission_denied(cap_message(error.to_string())),
            QueryError::NotFound(_) => Status::not_found(cap_message(error.to_string())),
            QueryError::Invalid(_) | QueryError::Parameters(_) => {
                Status::invalid_argument(cap_message(error.to_string()))
            }
            QueryError::DataFusion(error) => status_of_datafusion(&error),
        }
    }
}

/// The gRPC status for a DataFusion error: a SageMaker failure keeps its
/// own code; the client's SQL mistakes are INVALID_ARGUMENT.
pub fn status_of_datafusion(error: &DataFusionError) -> Status {
    let root = error.find_root();
    if let DataFusionError::External(inner) = root
        && let Some(scan) = inner.downcast_ref::<ScanError>()
    {
        return match scan {
            ScanError::Source(source) => source.clone().into(),
            ScanError::Arrow(_) => Status::internal(cap_message(scan.to_string())),
        };
    }
    if let DataFusionError::ResourcesExhausted(_) = root {
        return Status::resource_exhausted(cap_message(format!(
            "the query needs more memory than the server allows (--memory-limit): {root}"
        )));
    }
    let code = match root {
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            Code::InvalidArgument
        }
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => Code::InvalidArgument,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        _ => Code::Internal,
    };
    Status::new(code, cap_message(root.to_string()))
}

/// A planned statement, ready to run any number of times.
#[derive(Debug)]
pub struct PlannedQuery {
    /// The physical plan.
    pub plan: Arc<dyn ExecutionPlan>,
    context: Arc<datafusion::execution::TaskContext>,
}

impl PlannedQuery {
    /// The schema every batch of the result has (what FlightInfo announces).
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// Starts the query. Batches stream as the scan produces them.
    pub fn execute(&self) -> Result<SendableRecordBatchStream, QueryError> {
        Ok(execute_stream(
            Arc::clone(&self.plan),
            Arc::clone(&self.context),
        )?)
    }
}

/// The SQL engine over one SageMaker source.
#[derive(Clone)]
pub struct QueryEngine {
    context: SessionContext,
    /// The table, for the partitions a query calls.
    table: Arc<CompilationJobTable>,
    /// Whether filters reach the API (and so prune partitions).
    filter_pushdown: bool,
    /// The table's snapshot (`table/snapshot.rs`), for whole-table reads.
    snapshots: Arc<SnapshotStore>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// A session with `aws.sagemaker_compilation_job` (also reachable as
    /// `sagemaker_compilation_job`: `aws` is the default schema), under the
    /// default [`Limits`].
    pub fn new(
        partitions: impl Into<Partitions>,
        options: TableOptions,
    ) -> Result<QueryEngine, QueryError> {
        Self::with_limits(partitions, options, &Limits::default())
    }

    /// As [`QueryEngine::new`], with `limits.memory_limit` on the memory
    /// DataFusion's operators (sorts, aggregations, joins) hold, all queries
    /// together: a query that needs more fails with RESOURCE_EXHAUSTED.
    /// Nothing spills to disk.
    pub fn with_limits(
        partitions: impl Into<Partitions>,
        options: TableOptions,
        limits: &Limits,
    ) -> Result<QueryEngine, QueryError> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, TABLE_SCHEMA)
            .with_create_default_catalog_and_schema(true)
            .with_information_schema(true);
        let mut runtime = RuntimeEnvBuilder::new().with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        );
        if let Some(bytes) = limits.memory_limit {
            runtime = runtime.with_memory_limit(bytes, 1.0);
        }
        let mut context = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
        // json_get_str(output_config, 'TargetDevice') and the rest of
        // datafusion-functions-json on the JSON text columns (none reads files).
        datafusion_functions_json::register_all(&mut context)?;
        let table = Arc::new(CompilationJobTable::new(partitions, options));
        let snapshots = table.snapshots();
        context.register_table(
            format!("{TABLE_SCHEMA}.{TABLE_UNQUALIFIED}").as_str(),
            Arc::clone(&table) as _,
        )?;
        Ok(QueryEngine {
            context,
            table,
            filter_pushdown: options.filter_pushdown,
            snapshots,
        })
    }

    /// Every (account, region) partition the table reads.
    pub fn partitions(&self) -> &Partitions {
        self.table.partitions()
    }

    /// The rows of every column of the table's snapshot, if one is fresh:
    /// the answer to `SELECT *` without a call.
    pub fn fresh_snapshot(&self) -> Option<Arc<Vec<RecordBatch>>> {
        self.snapshots.fresh()
    }

    /// The DataFusion session (for catalog metadata).
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// Refuses anything but a query (or EXPLAIN of one).
    fn check_read_only(&self, sql: &str) -> Result<(), QueryError> {
        let state = self.context.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| QueryError::Invalid(e.find_root().to_string()))?;
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

    /// The logical plan of `sql`, checked to be read-only.
    pub async fn logical_plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        self.check_read_only(sql)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = self
            .context
            .sql_with_options(sql, options)
            .await
            .map_err(|e| match e.find_root() {
                DataFusionError::Plan(message)
                    if message.starts_with("table '") && message.ends_with("not found") =>
                {
                    QueryError::NotFound(message.clone())
                }
                root => QueryError::Invalid(root.to_string()),
            })?;
        Ok(frame.logical_plan().clone())
    }

    /// The logical plan of `sql` with `parameters` bound (none: `None`).
    pub async fn bound_plan(
        &self,
        sql: &str,
        parameters: Option<ParamValues>,
    ) -> Result<LogicalPlan, QueryError> {
        let plan = self.logical_plan(sql).await?;
        match parameters {
            Some(parameters) => plan
                .with_param_values(parameters)
                .map_err(|e| QueryError::Parameters(e.find_root().to_string())),
            None => Ok(plan),
        }
    }

    /// Plans `sql` with `parameters` bound (none: `None`), ready to run.
    pub async fn plan(
        &self,
        sql: &str,
        parameters: Option<ParamValues>,
    ) -> Result<PlannedQuery, QueryError> {
        self.plan_in(sql, parameters, None).await
    }

    /// As [`QueryEngine::plan`], reading only the partition `scope` (if
    /// given): the rows of that account and region, as if the query had
    /// said so in its WHERE clause (which is also how the scan learns to
    /// call no other partition).
    pub async fn plan_in(
        &self,
        sql: &str,
        parameters: Option<ParamValues>,
        scope: Option<&PartitionKey>,
    ) -> Result<PlannedQuery, QueryError> {
        let mut plan = self.bound_plan(sql, parameters).await?;
        if let Some(key) = scope {
            plan = restrict_to_partition(plan, key)?;
        }
        let state = self.context.state();
        let plan = state.create_physical_plan(&plan).await?;
        Ok(PlannedQuery {
            plan,
            context: state.task_ctx(),
        })
    }

    /// Whether any query can be split into partitions: there are several,
    /// and filters reach the API to keep each endpoint to its own.
    pub fn can_split(&self) -> bool {
        self.filter_pushdown && self.table.partitions().all().len() > 1
    }

    /// The partitions `plan` (with its parameters bound) can be read in,
    /// one independent stream each whose union is the answer, or `None`
    /// if it cannot be split: only a scan of the table with filters and
    /// projections can (no aggregate, sort, limit, join, ...). Partitions
    /// its filters rule out are left out (none left: an empty list).
    pub fn split(&self, plan: &LogicalPlan) -> Result<Option<Vec<PartitionKey>>, QueryError> {
        // `now()` and the like are fixed once per plan, and each endpoint
        // is planned at its own DoGet: split, they would differ.
        if !self.can_split() || !is_immutable(plan) {
            return Ok(None);
        }
        let optimized = self.context.state().optimize(plan)?;
        let Some(scan) = splittable_scan(&optimized) else {
            return Ok(None);
        };
        let api = crate::table::pushdown::ApiFilter::from_filters(&scan.filters);
        if api.matches_nothing() {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(
            self.table
                .partitions_for(&api)
                .into_iter()
                .map(|partition| partition.key.clone())
                .collect(),
        ))
    }

    /// The parameters a statement expects, in placeholder order ($1, $2,
    /// ...), with their types where DataFusion could infer them (Utf8 else).
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
                let data_type = types.get(name).cloned().flatten().unwrap_or(DataType::Utf8);
                Field::new(name, data_type, true)
            })
            .collect();
        Ok(Schema::new(fields))
    }
}

/// Whether `scan` reads our table (not, say, an information_schema table).
fn is_table_scan(scan: &TableScan) -> bool {
    scan.table_name.table() == TABLE_UNQUALIFIED
        && scan
            .table_name
            .schema()
            .is_none_or(|schema| schema == TABLE_SCHEMA)
}

/// Whether every function `plan` calls gives the same answer whenever it
/// is called (no `now()`, `random()`, ...).
fn is_immutable(plan: &LogicalPlan) -> bool {
    let mut immutable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(function) = e
                    && function.func.signature().volatility != Volatility::Immutable
                {
                    immutable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    immutable
}

/// The scan of the table under `plan`, if `plan` is nothing but that scan,
/// filtered and projected row by row: then the union of its answers over
/// the partitions is its answer over the table.
fn splittable_scan(plan: &LogicalPlan) -> Option<&TableScan> {
    let row_by_row = |exprs: &[Expr]| {
        !exprs.iter().any(|expr| {
            expr.exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
                ))
            })
            .unwrap_or(true)
        })
    };
    match plan {
        LogicalPlan::Projection(projection) if row_by_row(&projection.expr) => {
            splittable_scan(&projection.input)
        }
        LogicalPlan::Filter(filter) if row_by_row(std::slice::from_ref(&filter.predicate)) => {
            splittable_scan(&filter.input)
        }
        LogicalPlan::SubqueryAlias(alias) => splittable_scan(&alias.input),
        LogicalPlan::TableScan(scan) if is_table_scan(scan) && scan.fetch.is_none() => Some(scan),
        _ => None,
    }
}

/// `plan` with every scan of the table filtered to the rows of partition
/// `key`: its account and the region in its ARNs. Pushed down, that filter
/// is also what keeps the scan from calling any other partition.
fn restrict_to_partition(plan: LogicalPlan, key: &PartitionKey) -> Result<LogicalPlan, QueryError> {
    let restricted = plan.transform_up(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        if !is_table_scan(scan) {
            return Ok(Transformed::no(node));
        }
        let column = |name: &str| {
            Expr::Column(datafusion::common::Column::new(
                Some(scan.table_name.clone()),
                name,
            ))
        };
        let mut conditions = Vec::new();
        if let Some(account) = &key.account_id {
            conditions.push(
                column(crate::table::schema::Column::AccountId.name()).eq(lit(account.as_str())),
            );
        }
        if let Some(region) = &key.region {
            let arn_region = datafusion::functions::string::expr_fn::split_part(
                column(crate::table::schema::Column::CompilationJobArn.name()),
                lit(":"),
                lit(4_i64),
            );
            conditions.push(arn_region.eq(lit(region.as_str())));
        }
        let Some(predicate) = conditions.into_iter().reduce(Expr::and) else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(
            LogicalPlanBuilder::from(node).filter(predicate)?.build()?,
        ))
    })?;
    Ok(restricted.data)
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
