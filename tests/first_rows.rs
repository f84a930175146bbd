//! "The latest N jobs" and "N failed jobs" cost N Describes: an `ORDER BY`
//! on creation time, name or status with a LIMIT lists the first page(s)
//! of each partition in that order, and a LIMIT under exact filters stops
//! early. Under both paging models of the emulator (filters applied before
//! or after a page is cut), the answers are the full scan's: checked
//! against the emulator's own jobs.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use common::{emulator_config, quick_retries, string_at};
use sagemaker_emulator::{Emulator, EmulatorConfig, FilterPaging};
use sagemaker_flight::query::QueryEngine;
use sagemaker_flight::source::{
    Partition, PartitionKey, Partitions, SageMakerSource, emulator_client,
};
use sagemaker_flight::table::TableOptions;

const T: &str = "aws.sagemaker_compilation_job";
const JOBS: usize = 700;
const MODELS: [FilterPaging; 2] = [FilterPaging::BeforeCut, FilterPaging::AfterCut];

/// One emulated job: what the oracle sorts and filters by.
#[derive(Clone, Debug)]
struct Job {
    name: String,
    status: String,
    created: f64,
}

struct Region {
    emulator: Emulator,
    jobs: Vec<Job>,
}

impl Region {
    async fn start(region: &str, seed: u64, paging: FilterPaging) -> Region {
        let config = EmulatorConfig {
            region: region.to_owned(),
            seed,
            filter_paging: paging,
            ..emulator_config(JOBS)
        };
        let emulator = Emulator::start(config, ([127, 0, 0, 1], 0).into())
            .await
            .expect("emulator starts");
        let jobs = emulator
            .state()
            .jobs()
            .into_iter()
            .map(|job| Job {
                name: job.describe["CompilationJobName"]
                    .as_str()
                    .expect("name")
                    .to_owned(),
                status: job.describe["CompilationJobStatus"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
                created: job.describe["CreationTime"].as_f64().expect("created"),
            })
            .collect();
        Region { emulator, jobs }
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        self.emulator
            .state()
            .stats()
            .operations
            .into_iter()
            .map(|(operation, stats)| (operation, stats.calls))
            .filter(|(_, calls)| *calls > 0)
            .collect()
    }
}

/// An engine over `regions`, one partition each, without a cache (every
/// query pays its own calls).
fn engine(regions: &[(&str, &Region)]) -> QueryEngine {
    engine_with(regions, TableOptions::default())
}

fn engine_with(regions: &[(&str, &Region)], options: TableOptions) -> QueryEngine {
    let partitions = regions
        .iter()
        .map(|(name, region)| {
            let key = PartitionKey::new("123456789012", *name);
            let client = emulator_client(&region.emulator.endpoint_url(), name);
            let source = SageMakerSource::new(client, 16, quick_retries(8)).in_partition(&key);
            Partition {
                key,
                source: Arc::new(source),
            }
        })
        .collect();
    QueryEngine::new(Partitions::new(partitions), options).expect("engine")
}

async fn run(engine: &QueryEngine, sql: &str) -> Vec<RecordBatch> {
    common::run_sql(engine, sql).await
}

fn column(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| (0..batch.num_rows()).map(move |row| string_at(batch, name, row)))
        .map(|value| value.unwrap_or_default())
        .collect()
}

async fn explain(engine: &QueryEngine, sql: &str) -> String {
    let batches = run(engine, &format!("EXPLAIN {sql}")).await;
    column(&batches, "plan").join("\n")
}

#[tokio::test]
async fn the_latest_jobs_cost_one_page_and_a_describe_each() {
    for paging in MODELS {
        let region = Region::start("us-east-1", 7, paging).await;
        let engine = engine(&[("us-east-1", &region)]);
        let sql = format!(
            "SELECT compilation_job_name, role_arn FROM {T} ORDER BY creation_time DESC LIMIT 5"
        );
        let plan = explain(&engine, &sql).await;
        assert!(
            plan.contains("SortBy=CreationTime SortOrder=Descending MaxResults=6")
                && plan.contains("limit=5 per listing"),
            "{paging}: {plan}"
        );
        region.emulator.state().reset_stats();
        let names = column(&run(&engine, &sql).await, "compilation_job_name");
        let mut newest = region.jobs.clone();
        newest.sort_by(|a, b| b.created.total_cmp(&a.created));
        let expected: Vec<String> = newest.iter().take(5).map(|j| j.name.clone()).collect();
        assert_eq!(names, expected, "{paging}");
        let calls = region.calls();
        assert_eq!(
            calls.get("ListCompilationJobs"),
            Some(&1),
            "{paging}: {calls:?}"
        );
        assert_eq!(
            calls.get("DescribeCompilationJob"),
            Some(&5),
            "{paging}: {calls:?}"
        );
        region.emulator.shutdown().await;
    }
}

#[tokio::test]
async fn a_limit_under_a_status_describes_only_its_rows() {
    for paging in MODELS {
        let region = Region::start("us-east-1", 8, paging).await;
        let engine = engine(&[("us-east-1", &region)]);
        let failed = region.jobs.iter().filter(|j| j.status == "FAILED").count();
        assert!(failed > 20, "{failed} failed jobs");
        let sql = format!(
            "SELECT compilation_job_name, compilation_job_status, failure_reason FROM {T} \
             WHERE compilation_job_status = 'FAILED' LIMIT 5"
        );
        let plan = explain(&engine, &sql).await;
        assert!(
            plan.contains("limit=5") && plan.contains("exact=[compilation_job_status IN (FAILED)]"),
            "{paging}: {plan}"
        );
        assert!(!plan.contains("FilterExec"), "{paging}: {plan}");
        region.emulator.state().reset_stats();
        let batches = run(&engine, &sql).await;
        let statuses = column(&batches, "compilation_job_status");
        assert_eq!(statuses, vec!["FAILED"; 5], "{paging}");
        let calls = region.calls();
        assert_eq!(
            calls.get("DescribeCompilationJob"),
            Some(&5),
            "{paging}: {calls:?}"
        );
        let pages = calls.get("ListCompilationJobs").copied().unwrap_or(0);
        match paging {
            // 5 of the first 100 FAILED jobs: one page.
            FilterPaging::BeforeCut => assert_eq!(pages, 1, "{calls:?}"),
            // Pages of 100 jobs, filtered: as many as hold five FAILED jobs.
            FilterPaging::AfterCut => assert!(
                (1..=(JOBS as u64).div_ceil(100)).contains(&pages),
                "{calls:?}"
            ),
        }
        region.emulator.shutdown().await;
    }
}

#[tokio::test]
async fn first_rows_of_every_partition_merge_into_the_full_scans_answer() {
    for paging in MODELS {
        let east = Region::start("us-east-1", 11, paging).await;
        let west = Region::start("eu-west-1", 12, paging).await;
        let engine = engine(&[("us-east-1", &east), ("eu-west-1", &west)]);
        let all: Vec<&Job> = east.jobs.iter().chain(&west.jobs).collect();
        let oracle = |keep: &dyn Fn(&Job) -> bool,
                      order: &dyn Fn(&Job, &Job) -> std::cmp::Ordering,
                      skip: usize,
                      take: usize| {
            let mut jobs: Vec<&Job> = all.iter().copied().filter(|j| keep(j)).collect();
            jobs.sort_by(|a, b| order(a, b));
            jobs.iter()
                .skip(skip)
                .take(take)
                .map(|j| j.name.clone())
                .collect::<Vec<_>>()
        };
        let cases: Vec<(String, Vec<String>)> = vec![
            (
                format!(
                    "SELECT compilation_job_name FROM {T} ORDER BY creation_time, compilation_job_name LIMIT 7"
                ),
                oracle(
                    &|_| true,
                    &|a, b| a.created.total_cmp(&b.created).then(a.name.cmp(&b.name)),
                    0,
                    7,
                ),
            ),
            (
                format!(
                    "SELECT compilation_job_name FROM {T} ORDER BY compilation_job_name DESC LIMIT 4 OFFSET 3"
                ),
                oracle(&|_| true, &|a, b| b.name.cmp(&a.name), 3, 4),
            ),
            (
                // Ties: every job of the first status is a candidate; the
                // name breaks them above the scan.
                format!(
                    "SELECT compilation_job_name FROM {T} \
                     ORDER BY compilation_job_status DESC, compilation_job_name LIMIT 6"
                ),
                oracle(
                    &|_| true,
                    &|a, b| b.status.cmp(&a.status).then(a.name.cmp(&b.name)),
                    0,
                    6,
                ),
            ),
            (
                format!(
                    "SELECT compilation_job_name FROM {T} \
                     WHERE compilation_job_status IN ('FAILED', 'STOPPED') \
                     ORDER BY creation_time DESC LIMIT 9"
                ),
                oracle(
                    &|j| j.status == "FAILED" || j.status == "STOPPED",
                    &|a, b| b.created.total_cmp(&a.created),
                    0,
                    9,
                ),
            ),
            (
                format!(
                    "SELECT compilation_job_name FROM {T} WHERE compilation_job_status = 'COMPLETED' \
                     AND compilation_job_name LIKE '%e%' ORDER BY creation_time DESC LIMIT 3"
                ),
                oracle(
                    &|j| j.status == "COMPLETED" && j.name.contains('e'),
                    &|a, b| b.created.total_cmp(&a.created),
                    0,
                    3,
                ),
            ),
        ];
        for (sql, expected) in cases {
            east.emulator.state().reset_stats();
            west.emulator.state().reset_stats();
            let names = column(&run(&engine, &sql).await, "compilation_job_name");
            assert_eq!(names, expected, "{paging}: {sql}");
            // Summary columns only: no Describe, whatever the order.
            for region in [&east, &west] {
                assert_eq!(
                    region.calls().get("DescribeCompilationJob"),
                    None,
                    "{paging}: {sql}"
                );
            }
        }
        east.emulator.shutdown().await;
        west.emulator.shutdown().await;
    }
}

#[tokio::test]
async fn a_job_that_vanishes_among_the_first_rows_frees_its_place() {
    let region = Region::start("us-east-1", 9, FilterPaging::BeforeCut).await;
    let engine = engine(&[("us-east-1", &region)]);
    let mut newest = region.jobs.clone();
    newest.sort_by(|a, b| b.created.total_cmp(&a.created));
    assert!(region.emulator.state().vanish(&newest[1].name));
    let sql = format!(
        "SELECT compilation_job_name, role_arn FROM {T} ORDER BY creation_time DESC LIMIT 3"
    );
    let names = column(&run(&engine, &sql).await, "compilation_job_name");
    let expected = [&newest[0].name, &newest[2].name, &newest[3].name].map(String::clone);
    assert_eq!(names, expected);
    region.emulator.shutdown().await;
}

#[tokio::test]
async fn the_snapshot_answers_exact_filters_and_their_limits_without_a_call() {
    let region = Region::start("us-east-1", 10, FilterPaging::BeforeCut).await;
    let options = TableOptions {
        snapshot_ttl: std::time::Duration::from_secs(600),
        ..TableOptions::default()
    };
    let engine = engine_with(&[("us-east-1", &region)], options);
    let everything = run(&engine, &format!("SELECT * FROM {T}")).await;
    assert_eq!(
        everything.iter().map(RecordBatch::num_rows).sum::<usize>(),
        JOBS
    );
    region.emulator.state().reset_stats();
    let failed = region.jobs.iter().filter(|j| j.status == "FAILED").count();
    let counted = run(
        &engine,
        &format!("SELECT count(*) AS n FROM {T} WHERE compilation_job_status = 'FAILED'"),
    )
    .await;
    let n = counted[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("a count")
        .value(0);
    assert_eq!(n as usize, failed);
    let limited = run(
        &engine,
        &format!(
            "SELECT compilation_job_status FROM {T} WHERE compilation_job_status IN ('FAILED', 'STOPPED') LIMIT 4"
        ),
    )
    .await;
    let statuses = column(&limited, "compilation_job_status");
    assert_eq!(statuses.len(), 4);
    assert!(
        statuses.iter().all(|s| s == "FAILED" || s == "STOPPED"),
        "{statuses:?}"
    );
    assert_eq!(
        region.calls(),
        BTreeMap::new(),
        "answered from the snapshot"
    );
    region.emulator.shutdown().await;
}
