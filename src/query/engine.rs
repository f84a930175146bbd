//! The session: a DataFusion context holding the one table, read-only,
//! with no object store or file format beyond what DataFusion registers for
//! in-memory work, so SQL cannot read or write files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, ParamValues, TableReference};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};

use crate::query::column_tables::column_tables;
use crate::query::error::QueryError;
use crate::query::name_defaults::NameDefaults;
use crate::query::positional::number_positional_parameters;
use crate::query::read_only::check_read_only;
use crate::query::split::{is_immutable, restrict_to_partition, splittable_scan};
use crate::replica::feed::DEFAULT_FEED_BUFFER_MIB;
use crate::replica::{FeedProvider, FreshnessTable, HistoryProvider, ReplicaStore, ReplicaTable};
use crate::source::{PartitionKey, Partitions};
use crate::table::provider::{CompilationJobTable, TableOptions};
use crate::table::pushdown::ApiFilter;
use crate::table::schema::{
    CHANGES_TABLE_UNQUALIFIED, FRESHNESS_TABLE_UNQUALIFIED, HISTORY_TABLE_UNQUALIFIED,
    LIVE_TABLE_UNQUALIFIED, TABLE_SCHEMA, TABLE_UNQUALIFIED,
};
use crate::table::snapshot::SnapshotStore;
use crate::table::streamed_filter::FiltersPassLiveRows;
use crate::table::top_pushdown::FirstRowsIntoListing;

/// The catalog the table lives in (`sagemaker.aws.sagemaker_compilation_job`).
pub const CATALOG: &str = "sagemaker";

/// Bytes DataFusion's operators may hold across all queries, unless
/// configured (1 GiB).
pub const DEFAULT_MEMORY_LIMIT: usize = 1024 * 1024 * 1024;

/// A planned statement, ready to run any number of times.
#[derive(Debug)]
pub struct PlannedQuery {
    /// The physical plan.
    pub plan: Arc<dyn ExecutionPlan>,
    /// The table each column of the result is a column of (`column_tables.rs`).
    column_tables: Vec<Option<TableReference>>,
    context: Arc<datafusion::execution::TaskContext>,
}

impl PlannedQuery {
    /// The schema every batch of the result has.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// The table each column of the result is a column of, as the query
    /// named it (`None`: the column is computed).
    pub fn column_tables(&self) -> &[Option<TableReference>] {
        &self.column_tables
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
    /// The replica the table is answered from (`--store`), if any.
    replica: Option<Arc<ReplicaTable>>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// A session with `aws.sagemaker_compilation_job` (also reachable as
    /// `sagemaker_compilation_job`: `aws` is the default schema), with
    /// [`DEFAULT_MEMORY_LIMIT`].
    pub fn new(
        partitions: impl Into<Partitions>,
        options: TableOptions,
    ) -> Result<QueryEngine, QueryError> {
        Self::with_memory_limit(partitions, options, Some(DEFAULT_MEMORY_LIMIT))
    }

    /// As [`QueryEngine::new`], with `memory_limit` bytes (`None`: no limit) on the memory
    /// DataFusion's operators (sorts, aggregations, joins) hold, all queries
    /// together: a query that needs more fails with RESOURCE_EXHAUSTED.
    /// Nothing spills to disk.
    pub fn with_memory_limit(
        partitions: impl Into<Partitions>,
        options: TableOptions,
        memory_limit: Option<usize>,
    ) -> Result<QueryEngine, QueryError> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, TABLE_SCHEMA)
            .with_create_default_catalog_and_schema(true)
            .with_information_schema(true);
        let mut runtime = RuntimeEnvBuilder::new().with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        );
        if let Some(bytes) = memory_limit {
            runtime = runtime.with_memory_limit(bytes, 1.0);
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime.build_arc()?)
            .with_default_features()
            // Last, once DataFusion has placed its sorts and limits.
            .with_physical_optimizer_rule(Arc::new(FirstRowsIntoListing))
            .with_physical_optimizer_rule(Arc::new(FiltersPassLiveRows))
            .build();
        let mut context = SessionContext::new_with_state(state);
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
            replica: None,
        })
    }

    /// The same engine answering `aws.sagemaker_compilation_job` from the
    /// replica in `store` (no SageMaker call), with the live table as
    /// `aws.sagemaker_compilation_job_live` for a query that wants it, and
    /// `aws.sagemaker_compilation_job_freshness` saying how fresh each
    /// partition is (`freshness`: of the same store and partitions), and
    /// `aws.sagemaker_compilation_job_history`, every change the
    /// collectors saw, and `aws.sagemaker_compilation_job_changes`, the
    /// same as an endless feed.
    pub fn with_replica(
        self,
        store: Arc<ReplicaStore>,
        freshness: FreshnessTable,
    ) -> Result<QueryEngine, QueryError> {
        let name = format!("{TABLE_SCHEMA}.{TABLE_UNQUALIFIED}");
        self.context.deregister_table(name.as_str())?;
        let partitions = self
            .table
            .partitions()
            .all()
            .iter()
            .map(|partition| partition.key.clone())
            .collect();
        self.context.register_table(
            format!("{TABLE_SCHEMA}.{HISTORY_TABLE_UNQUALIFIED}").as_str(),
            Arc::new(HistoryProvider::new(Arc::clone(&store))),
        )?;
        self.context.register_table(
            format!("{TABLE_SCHEMA}.{CHANGES_TABLE_UNQUALIFIED}").as_str(),
            Arc::new(FeedProvider::new(
                Arc::clone(&store),
                DEFAULT_FEED_BUFFER_MIB,
            )),
        )?;
        let replica = Arc::new(ReplicaTable::new(
            store,
            Arc::clone(&self.table) as _,
            partitions,
        ));
        self.context
            .register_table(name.as_str(), Arc::clone(&replica) as _)?;
        self.context.register_table(
            format!("{TABLE_SCHEMA}.{LIVE_TABLE_UNQUALIFIED}").as_str(),
            Arc::clone(&self.table) as _,
        )?;
        self.context.register_table(
            format!("{TABLE_SCHEMA}.{FRESHNESS_TABLE_UNQUALIFIED}").as_str(),
            Arc::new(freshness),
        )?;
        Ok(QueryEngine {
            replica: Some(replica),
            ..self
        })
    }

    /// The same engine, its change feed holding at most `mib` MiB for a
    /// client that does not take them (`--changes-buffer-mib`); nothing
    /// without a replica.
    pub fn with_feed_buffer(self, mib: usize) -> Result<QueryEngine, QueryError> {
        let Some(replica) = &self.replica else {
            return Ok(self);
        };
        let name = format!("{TABLE_SCHEMA}.{CHANGES_TABLE_UNQUALIFIED}");
        self.context.deregister_table(name.as_str())?;
        self.context.register_table(
            name.as_str(),
            Arc::new(FeedProvider::new(replica.store(), mib)),
        )?;
        Ok(self)
    }

    /// Every (account, region) partition the table reads.
    pub fn partitions(&self) -> &Partitions {
        self.table.partitions()
    }

    /// Every row of every column from memory, if the table has them there:
    /// the replica's latest version (`--store`), or else a fresh snapshot.
    /// The answer to `SELECT *` without a call.
    pub async fn whole_table(&self) -> Result<Option<Arc<Vec<RecordBatch>>>, QueryError> {
        match &self.replica {
            // As a scan of the replica would fail.
            Some(replica) => replica
                .whole_table()
                .await
                .map_err(|e| QueryError::DataFusion(DataFusionError::External(Box::new(e)))),
            None => Ok(self.snapshots.fresh()),
        }
    }

    /// Whether the session has a catalog named `name`.
    pub fn has_catalog(&self, name: &str) -> bool {
        self.context.catalog(name).is_some()
    }

    /// Whether `catalog` has a schema named `name` (`information_schema`
    /// included).
    pub fn has_schema(&self, catalog: &str, name: &str) -> bool {
        self.has_catalog(catalog)
            && self
                .context
                .state()
                .schema_for_ref(TableReference::full(catalog, name, "any"))
                .is_ok()
    }

    /// The DataFusion session (for catalog metadata).
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// Refuses anything but a query (or EXPLAIN of one).
    /// The logical plan of `sql`, checked to be read-only. The SQL is
    /// parsed once: the read-only check and the planner see the same
    /// statement.
    pub async fn logical_plan(&self, sql: &str) -> Result<LogicalPlan, QueryError> {
        self.logical_plan_in(sql, &NameDefaults::default()).await
    }

    /// As [`QueryEngine::logical_plan`], unqualified table names resolved
    /// in `names` (a session's catalog and schema).
    pub async fn logical_plan_in(
        &self,
        sql: &str,
        names: &NameDefaults,
    ) -> Result<LogicalPlan, QueryError> {
        let mut state = self.context.state();
        let catalog = &mut state.config_mut().options_mut().catalog;
        if let Some(name) = &names.catalog {
            catalog.default_catalog.clone_from(name);
        }
        if let Some(name) = &names.schema {
            catalog.default_schema.clone_from(name);
        }
        let dialect = state.config().options().sql_parser.dialect;
        let sql = number_positional_parameters(sql)?;
        let statement = state
            .sql_to_statement(&sql, &dialect)
            .map_err(|e| QueryError::Invalid(e.find_root().to_string()))?;
        check_read_only(&statement)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let plan = state
            .statement_to_plan(statement)
            .await
            .and_then(|plan| options.verify_plan(&plan).map(|()| plan))
            .map_err(|e| match e.find_root() {
                DataFusionError::Plan(message)
                    if message.starts_with("table '") && message.ends_with("not found") =>
                {
                    QueryError::NotFound(message.clone())
                }
                root => QueryError::Invalid(root.to_string()),
            })?;
        Ok(plan)
    }

    /// The logical plan of `sql` with `parameters` bound (none: `None`),
    /// unqualified table names resolved in `names`.
    pub async fn bound_plan(
        &self,
        sql: &str,
        parameters: Option<ParamValues>,
        names: &NameDefaults,
    ) -> Result<LogicalPlan, QueryError> {
        let plan = self.logical_plan_in(sql, names).await?;
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
        let plan = self
            .bound_plan(sql, parameters, &NameDefaults::default())
            .await?;
        self.physical_plan(plan, scope).await
    }

    /// The physical plan of `plan` (parameters bound), reading only the
    /// partition `scope` if given ([`QueryEngine::plan_in`]).
    pub async fn physical_plan(
        &self,
        mut plan: LogicalPlan,
        scope: Option<&PartitionKey>,
    ) -> Result<PlannedQuery, QueryError> {
        if let Some(key) = scope {
            plan = restrict_to_partition(plan, key)?;
        }
        let state = self.context.state();
        let column_tables = column_tables(&plan);
        let plan = state.create_physical_plan(&plan).await?;
        Ok(PlannedQuery {
            plan,
            column_tables,
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
        let api = ApiFilter::from_filters(&scan.filters);
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
}
