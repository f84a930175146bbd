//! Faults, bad input, the SQL sandbox and load: the server keeps working,
//! loses nothing, and refuses what it must.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightDescriptor, Ticket};
use common::{TestServer, emulator_config, quick_retries};
use futures::TryStreamExt;
use proptest::prelude::*;
use prost::Message;
use sagemaker_flight::flight::ticket::{Statement, check_flight_sql_command};
use sagemaker_flight::source::SageMakerSource;
use tonic::Code;

const TABLE: &str = "aws.sagemaker_compilation_job";

/// Runs `sql` through Flight SQL (GetFlightInfo, then DoGet of each
/// endpoint); the error is the gRPC status the server answered.
async fn query(server: &TestServer, sql: &str) -> Result<Vec<RecordBatch>, tonic::Status> {
    let mut client = FlightSqlServiceClient::new(server.channel().await);
    let info = client.execute(sql.to_owned(), None).await.map_err(status)?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let mut stream = client.do_get(ticket).await.map_err(status)?;
        while let Some(batch) = stream.try_next().await.map_err(status)? {
            batches.push(batch);
        }
    }
    Ok(batches)
}

fn status(error: arrow_flight::error::FlightError) -> tonic::Status {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => tonic::Status::unknown(other.to_string()),
    }
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// Every row as one line of text (every column), sorted: two answers with
/// the same rows give the same lines, whatever their order or batching.
fn row_lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut lines = common::rows_as_text(batches);
    lines.sort();
    lines
}

/// Whether an answer is the right one.
type AnswerCheck = Box<dyn Fn(&[RecordBatch]) -> bool + Send + Sync>;

fn single_count(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scan_under_faults_returns_exactly_the_rows_of_a_fault_free_scan() {
    const JOBS: usize = 10_000;
    let server = TestServer::builder(emulator_config(JOBS))
        .concurrency(32)
        .retry(quick_retries(10))
        .list_windows(4)
        .start()
        .await;
    let sql = format!("SELECT * FROM {TABLE}");
    let clean = query(&server, &sql).await.expect("fault-free scan");
    assert_eq!(rows(&clean), JOBS);

    let emulator = server.emulator.state();
    emulator.reset_stats();
    emulator.set_faults(0.20, 0.02);
    emulator.set_disruptions(0.01, 0.01);
    let faulty = query(&server, &sql).await.expect("scan under faults");
    let stats = emulator.stats();
    let total = |pick: fn(&sagemaker_emulator::OperationStats) -> u64| {
        stats.operations.values().map(pick).sum::<u64>()
    };
    // The faults really happened, on every operation...
    assert!(total(|o| o.throttled) > 1_000, "{stats:?}");
    assert!(total(|o| o.server_errors) > 100, "{stats:?}");
    assert!(total(|o| o.dropped) > 50, "{stats:?}");
    assert!(total(|o| o.slowed) > 50, "{stats:?}");
    // ...and the answer is the same: no row lost, none doubled, none changed.
    assert_eq!(rows(&faulty), JOBS);
    assert_eq!(row_lines(&faulty), row_lines(&clean));
    server.stop().await;
}

#[tokio::test]
async fn a_call_that_keeps_failing_ends_the_query_with_a_clear_status() {
    let server = TestServer::builder(emulator_config(50))
        .source(|client| SageMakerSource::new(client, 4, quick_retries(3)))
        .start()
        .await;
    server.emulator.state().set_disruptions(0.0, 1.0);
    let error = query(&server, &format!("SELECT * FROM {TABLE}"))
        .await
        .expect_err("every connection is dropped");
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert!(
        error.message().contains("ListCompilationJobs"),
        "names the operation: {}",
        error.message()
    );
    // Nothing is wrong once the endpoint recovers.
    server.emulator.state().set_disruptions(0.0, 0.0);
    let again = query(&server, &format!("SELECT count(*) FROM {TABLE}"))
        .await
        .expect("recovered");
    assert_eq!(single_count(&again), 50);
    server.stop().await;
}

#[tokio::test]
async fn sql_cannot_touch_files_other_sources_or_settings() {
    let server = TestServer::builder(emulator_config(20))
        .concurrency(4)
        .start()
        .await;
    let sandbox =
        std::env::temp_dir().join(format!("sagemaker-flight-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&sandbox).expect("temp dir");
    let out = sandbox.display();
    let attempts = [
        format!("COPY (SELECT 1) TO '{out}/one.csv'"),
        format!("COPY {TABLE} TO '{out}/table.parquet' STORED AS PARQUET"),
        format!("COPY (SELECT * FROM {TABLE}) TO '{out}/rows.json'"),
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'".to_owned(),
        format!("CREATE EXTERNAL TABLE out STORED AS CSV LOCATION '{out}/'"),
        "CREATE TABLE t AS SELECT 1 AS x".to_owned(),
        "CREATE VIEW v AS SELECT 1 AS x".to_owned(),
        "CREATE SCHEMA other".to_owned(),
        format!("INSERT INTO {TABLE} (compilation_job_name) VALUES ('x')"),
        format!("DELETE FROM {TABLE}"),
        format!("UPDATE {TABLE} SET compilation_job_name = 'x'"),
        format!("DROP TABLE {TABLE}"),
        "SET datafusion.execution.target_partitions = 1".to_owned(),
        "SET TIME ZONE = 'UTC'".to_owned(),
        "SELECT * FROM '/etc/passwd'".to_owned(),
        "SELECT * FROM 'file:///etc/passwd'".to_owned(),
        "SELECT * FROM read_csv('/etc/passwd')".to_owned(),
        "SELECT * FROM read_parquet('/etc/passwd')".to_owned(),
        "SELECT * FROM read_json('/etc/passwd')".to_owned(),
        format!("EXPLAIN COPY (SELECT 1) TO '{out}/explained.csv'"),
        format!("SELECT 1; COPY (SELECT 1) TO '{out}/second.csv'"),
        "CREATE FUNCTION f() RETURNS INT RETURN 1".to_owned(),
        "PREPARE p AS SELECT 1".to_owned(),
    ];
    for sql in &attempts {
        let error = query(&server, sql)
            .await
            .expect_err(&format!("refused: {sql}"));
        assert!(
            matches!(
                error.code(),
                Code::PermissionDenied | Code::InvalidArgument | Code::NotFound
            ),
            "{sql}: {error:?}"
        );
        assert!(!error.message().is_empty(), "{sql}: a reason is given");
    }
    let written: Vec<_> = std::fs::read_dir(&sandbox)
        .expect("read temp dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(written.is_empty(), "files were written: {written:?}");
    std::fs::remove_dir_all(&sandbox).expect("remove temp dir");
    // Nothing was created, dropped or changed: the table is as before.
    let tables = query(&server, "SHOW TABLES").await.expect("show tables");
    let names: Vec<String> = tables
        .iter()
        .flat_map(|b| {
            let names = b
                .column_by_name("table_name")
                .expect("table_name")
                .as_string::<i32>()
                .clone();
            (0..names.len()).map(move |i| names.value(i).to_owned())
        })
        .filter(|n| {
            ![
                "tables",
                "views",
                "columns",
                "df_settings",
                "schemata",
                "routines",
                "parameters",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert_eq!(names, vec!["sagemaker_compilation_job".to_owned()]);
    let count = query(&server, &format!("SELECT count(*) FROM {TABLE}"))
        .await
        .expect("still serving");
    assert_eq!(single_count(&count), 20);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_precise_statuses_and_the_server_keeps_serving() {
    let server = TestServer::builder(emulator_config(20))
        .concurrency(4)
        .start()
        .await;
    let mut flight = FlightServiceClient::new(server.channel().await)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);

    // An oversized message: refused by the transport, nothing decoded.
    let huge = FlightDescriptor::new_cmd(vec![b' '; 65 * 1024 * 1024]);
    let error = flight.get_flight_info(huge).await.expect_err("too large");
    assert!(
        matches!(error.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{error:?}"
    );

    // Unknown descriptors.
    let error = flight
        .get_flight_info(FlightDescriptor::new_path(vec!["no_such_table".into()]))
        .await
        .expect_err("unknown path");
    assert_eq!(error.code(), Code::NotFound, "{error:?}");
    let mut odd = FlightDescriptor::new_path(vec![TABLE.into()]);
    odd.r#type = 99;
    let error = flight.get_flight_info(odd).await.expect_err("unknown type");
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");

    // Malformed protobuf in tickets: garbage, and a valid wrapper around garbage.
    for bytes in [
        vec![0xff, 0xfe, 0x00, 0x13, 0x37],
        arrow_flight::sql::Any {
            type_url: "type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery".into(),
            value: vec![0x0a, 0xff, 0xff, 0xff].into(),
        }
        .encode_to_vec(),
    ] {
        let outcome = match flight.do_get(Ticket::new(bytes)).await {
            Ok(response) => response
                .into_inner()
                .try_collect::<Vec<_>>()
                .await
                .map(|_| ()),
            Err(status) => Err(status),
        };
        let error = outcome.expect_err("malformed ticket");
        assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    }

    // A parameter of the wrong type.
    let mut sql = FlightSqlServiceClient::new(server.channel().await);
    let mut prepared = sql
        .prepare(
            format!("SELECT compilation_job_name FROM {TABLE} WHERE creation_time > $1"),
            None,
        )
        .await
        .expect("prepare");
    let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, false)]));
    let parameters = RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::StringArray::from(vec![
            "not a time",
        ]))],
    )
    .expect("batch");
    prepared.set_parameters(parameters).expect("set parameters");
    let error = match prepared.execute().await {
        Ok(info) => {
            let ticket = info.endpoint[0].ticket.clone().expect("ticket");
            match sql.do_get(ticket).await {
                Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
                Err(error) => Err(error),
            }
            .map_err(status)
        }
        Err(error) => Err(status(error)),
    }
    .expect_err("a string is not a timestamp");
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");

    let count = query(&server, &format!("SELECT count(*) FROM {TABLE}"))
        .await
        .expect("still serving");
    assert_eq!(single_count(&count), 20);
    server.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: common::proptest_cases(512) as u32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any bytes as a statement handle: decoded or refused, never a panic;
    /// a refusal is INVALID_ARGUMENT.
    #[test]
    fn statement_handles_of_any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Err(status) = Statement::decode_handle(&bytes) {
            prop_assert_eq!(status.code(), Code::InvalidArgument);
        }
    }

    /// Any bytes as a Flight SQL command or ticket, bare or wrapped in an
    /// `Any` of a Flight SQL type: accepted or INVALID_ARGUMENT, never a panic.
    #[test]
    fn flight_sql_commands_of_any_bytes_decode_or_are_refused(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        type_name in proptest::sample::select(vec![
            "TicketStatementQuery", "CommandStatementQuery", "CommandPreparedStatementQuery",
            "CommandGetTables", "CommandGetDbSchemas", "CommandGetSqlInfo", "NoSuchCommand",
        ]),
    ) {
        let wrapped = arrow_flight::sql::Any {
            type_url: format!("type.googleapis.com/arrow.flight.protocol.sql.{type_name}"),
            value: bytes.clone().into(),
        }
        .encode_to_vec();
        for candidate in [bytes, wrapped] {
            if let Err(status) = check_flight_sql_command(&candidate) {
                prop_assert_eq!(status.code(), Code::InvalidArgument);
            }
        }
    }

    /// A statement survives its own encoding.
    #[test]
    fn statement_handles_round_trip(sql in "\\PC{1,200}", parameters in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(!sql.trim().is_empty());
        let statement = Statement {
            sql,
            parameters,
            prepared_id: 7,
            partition: None,
            catalog: String::new(),
            schema: "aws".into(),
            query_id: 3,
        };
        let decoded = Statement::decode_handle(&prost::Message::encode_to_vec(&statement));
        prop_assert_eq!(decoded.expect("decodes"), statement);
    }
}

/// Arbitrary text as SQL: planned or refused with a status, never a panic.
#[tokio::test]
async fn arbitrary_sql_is_planned_or_refused_never_a_panic() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use sagemaker_flight::query::QueryEngine;
    use sagemaker_flight::table::TableOptions;

    let emulator =
        sagemaker_emulator::Emulator::start(emulator_config(5), ([127, 0, 0, 1], 0).into())
            .await
            .expect("emulator");
    let client = sagemaker_flight::source::emulator_client(&emulator.endpoint_url(), "us-east-1");
    let source = Arc::new(SageMakerSource::new(client, 4, quick_retries(3)));
    let engine = QueryEngine::new(source, TableOptions::default()).expect("engine");
    // Fragments of real queries, shuffled and cut, find more of the
    // parser's and planner's corners than uniform noise does.
    let words = prop::sample::select(vec![
        "SELECT",
        "*",
        "FROM",
        TABLE,
        "WHERE",
        "compilation_job_status",
        "=",
        "'FAILED'",
        "AND",
        "OR",
        "NOT",
        "(",
        ")",
        ",",
        "creation_time",
        ">=",
        "now()",
        "-",
        "INTERVAL",
        "'1 day'",
        "LIMIT",
        "1",
        "$1",
        "IN",
        "LIKE",
        "'%a%'",
        "GROUP BY",
        "ORDER BY",
        "count(*)",
        "tags",
        "[",
        "]",
        "::",
        "VARCHAR",
        "NULL",
        "'",
        "\"",
        ";",
        "COPY",
        "TO",
        "UNION",
        "JOIN",
        "ON",
        "CASE",
        "WHEN",
        "THEN",
        "END",
        "\u{0}",
        "é",
    ]);
    let strategy = prop::collection::vec(words, 0..24).prop_map(|w| w.join(" "));
    let mut runner = TestRunner::deterministic();
    for _ in 0..common::proptest_cases(400) {
        let sql = strategy.new_tree(&mut runner).expect("value").current();
        if let Err(error) = engine.plan(&sql, None).await {
            let status = tonic::Status::from(error);
            assert_ne!(status.code(), Code::Internal, "{sql}: {status:?}");
            assert_ne!(status.code(), Code::Ok, "{sql}");
        }
    }
    emulator.shutdown().await;
}

/// 32 clients at once, each running 10 different queries against an
/// emulator with faults on: every answer right, nothing left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_with_faults_all_get_right_answers() {
    const JOBS: usize = 1_000;
    const CLIENTS: usize = 32;
    let config = sagemaker_emulator::EmulatorConfig {
        latency: Duration::from_millis(2),
        ..emulator_config(JOBS)
    };
    let server = Arc::new(
        TestServer::builder(config)
            .source(|client| {
                SageMakerSource::new(client, 16, quick_retries(10))
                    .with_list_windows(4)
                    .with_cache(Duration::from_secs(300), 10_000)
            })
            .start()
            .await,
    );
    // The expected answers, from the emulator's own jobs.
    let jobs = server.emulator.state().jobs();
    let text = |j: &sagemaker_emulator::EmulatedJob, m: &str| {
        j.describe[m].as_str().expect("member").to_owned()
    };
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    for job in &jobs {
        *by_status
            .entry(text(job, "CompilationJobStatus"))
            .or_default() += 1;
    }
    let mut failed_or_stopped: Vec<String> = jobs
        .iter()
        .filter(|j| ["FAILED", "STOPPED"].contains(&text(j, "CompilationJobStatus").as_str()))
        .map(|j| text(j, "CompilationJobName"))
        .collect();
    failed_or_stopped.sort();
    let some_name = text(&jobs[JOBS / 2], "CompilationJobName");
    let status_lines: Vec<String> = by_status
        .iter()
        .map(|(s, n)| format!("\"{s}\" | {n}"))
        .collect();

    let emulator = server.emulator.state();
    emulator.set_faults(0.05, 0.01);
    emulator.set_disruptions(0.01, 0.005);

    let queries: Vec<(String, AnswerCheck)> = vec![
        (
            format!("SELECT count(*) FROM {TABLE}"),
            Box::new(|b| single_count(b) == JOBS as i64),
        ),
        (
            format!("SELECT count(*) FROM {TABLE} WHERE compilation_job_status = 'FAILED'"),
            Box::new({
                let n = by_status.get("FAILED").copied().unwrap_or(0);
                move |b| single_count(b) == n
            }),
        ),
        (
            format!(
                "SELECT compilation_job_name FROM {TABLE} \
                 WHERE compilation_job_status IN ('FAILED', 'STOPPED')"
            ),
            Box::new({
                let expected = failed_or_stopped.clone();
                move |b| common::job_names(b) == expected
            }),
        ),
        (
            format!("SELECT * FROM {TABLE} WHERE compilation_job_name = '{some_name}'"),
            Box::new({
                let name = some_name.clone();
                move |b| common::job_names(b) == vec![name.clone()]
            }),
        ),
        (
            format!("SELECT compilation_job_name FROM {TABLE} LIMIT 5"),
            Box::new(|b| rows(b) == 5),
        ),
        (
            format!("SELECT * FROM {TABLE}"),
            Box::new(|b| rows(b) == JOBS),
        ),
        (
            format!(
                "SELECT compilation_job_status, count(*) FROM {TABLE} \
                 GROUP BY compilation_job_status"
            ),
            Box::new({
                let expected = status_lines.clone();
                move |b| row_lines(b) == expected
            }),
        ),
        (
            format!("SELECT tags FROM {TABLE} WHERE compilation_job_status = 'STOPPED'"),
            Box::new({
                let n = by_status.get("STOPPED").copied().unwrap_or(0) as usize;
                move |b| rows(b) == n
            }),
        ),
        (
            format!(
                "EXPLAIN SELECT compilation_job_name FROM {TABLE} WHERE compilation_job_status = 'FAILED'"
            ),
            Box::new(|b| rows(b) > 0),
        ),
        (
            format!(
                "SELECT count(DISTINCT compilation_job_arn) FROM {TABLE} \
                 WHERE creation_time >= TIMESTAMP '1970-01-01T00:00:00Z'"
            ),
            Box::new(|b| single_count(b) == JOBS as i64),
        ),
    ];
    let queries = Arc::new(queries);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let server = Arc::clone(&server);
            let queries = Arc::clone(&queries);
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..queries.len() {
                    // Each client starts at a different query.
                    let (sql, check) = &queries[(client + i) % queries.len()];
                    let began = Instant::now();
                    let outcome = match query(&server, sql).await {
                        Ok(batches) if check(&batches) => Ok(()),
                        Ok(batches) => {
                            Err(format!("wrong answer to {sql}: {} rows", rows(&batches)))
                        }
                        Err(status) => Err(format!("{sql}: {status:?}")),
                    };
                    outcomes.push((began.elapsed(), sql.clone(), outcome));
                }
                outcomes
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut slowest = Vec::new();
    let mut failures = Vec::new();
    for client in clients {
        let outcomes = tokio::time::timeout(Duration::from_secs(480), client)
            .await
            .expect("load test within 8 minutes")
            .expect("client task");
        for (latency, sql, outcome) in outcomes {
            slowest.push((latency, sql));
            latencies.push(latency);
            if let Err(failure) = outcome {
                failures.push(failure);
            }
        }
    }
    let wall = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let peak_rss_mib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024);
    let stats = emulator.stats();
    eprintln!(
        "load: {CLIENTS} clients x {} queries = {} in {:.1} s, {} errors, p50 {} ms, p99 {} ms, \
         peak RSS of the test process (emulator, server and clients) {peak_rss_mib} MiB, \
         emulator throttled {} / 5xx {} / dropped {} / slowed {}",
        queries.len(),
        latencies.len(),
        wall.as_secs_f64(),
        failures.len(),
        percentile(0.5).as_millis(),
        percentile(0.99).as_millis(),
        stats.operations.values().map(|o| o.throttled).sum::<u64>(),
        stats
            .operations
            .values()
            .map(|o| o.server_errors)
            .sum::<u64>(),
        stats.operations.values().map(|o| o.dropped).sum::<u64>(),
        stats.operations.values().map(|o| o.slowed).sum::<u64>(),
    );
    slowest.sort();
    for (latency, sql) in slowest.iter().rev().take(3) {
        eprintln!("load: slowest {} ms: {sql}", latency.as_millis());
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(latencies.len(), CLIENTS * queries.len());
    assert!(peak_rss_mib < 2048, "memory bounded: {peak_rss_mib} MiB");
    // Still serving, faults off, nothing left in flight at the emulator.
    emulator.set_faults(0.0, 0.0);
    emulator.set_disruptions(0.0, 0.0);
    let after = query(&server, &format!("SELECT count(*) FROM {TABLE}"))
        .await
        .expect("serving after the load");
    assert_eq!(single_count(&after), JOBS as i64);
    let server = Arc::into_inner(server).expect("every client is done");
    server.stop().await;
}
