//! `sagemaker-flight query` as a user runs it: the binary against a
//! `serve --demo` process on 127.0.0.1, each output format checked
//! against the same statement read directly with a Flight SQL client, and
//! the failures a user meets (bad SQL, no server, no credentials).

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use common::binary::{Binary, Process};
use common::temp_dir::TempDir;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tonic::transport::Channel;

const TABLE: &str = "aws.sagemaker_compilation_job";
/// Longest a query process may take in these tests.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A `serve --demo` process and the URL it printed.
struct DemoServer {
    process: Process,
    url: String,
}

impl DemoServer {
    /// Starts `serve --demo` on 127.0.0.1:0 with `extra` flags and `envs`.
    async fn start(extra: &[&str], envs: &[(&str, &str)]) -> DemoServer {
        let mut args = vec!["serve", "--demo", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (process, url) = Binary::new(&args)
            .envs(envs)
            .discard_stderr()
            .start_one("sagemaker-flight listening on ")
            .await;
        DemoServer { process, url }
    }

    /// A Flight SQL client of the server, for reading results directly.
    async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(self.url.replace("grpc://", "http://"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        FlightSqlServiceClient::new(channel)
    }

    /// `sql`'s rows, read directly (every endpoint), with `token` if given.
    async fn direct(&self, sql: &str, token: Option<&str>) -> Vec<RecordBatch> {
        let mut client = self.client().await;
        if let Some(token) = token {
            client.set_token(token.to_owned());
        }
        let info = client.execute(sql.to_owned(), None).await.expect("execute");
        let mut batches = Vec::new();
        for endpoint in info.endpoint {
            let ticket = endpoint.ticket.expect("ticket");
            let stream = client.do_get(ticket).await.expect("do_get");
            batches.extend(stream.try_collect::<Vec<_>>().await.expect("rows"));
        }
        batches
    }

    async fn stop(mut self) {
        self.process.child.kill().await.expect("stop the server");
    }
}

/// Runs `sagemaker-flight query SQL --server URL ARGS...` with `envs` (and
/// no credential variables from the test's own environment).
async fn run_query(url: &str, sql: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Binary::new(&[&["query", sql, "--server", url][..], args].concat())
        .env_remove(&["SAGEMAKER_FLIGHT_TOKEN", "SAGEMAKER_FLIGHT_PASSWORD"])
        .envs(envs)
        .deadline(QUERY_TIMEOUT)
        .output()
        .await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The output of a query that must succeed.
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

const FAILED_JOBS: &str = "SELECT compilation_job_name, compilation_job_status, creation_time \
     FROM aws.sagemaker_compilation_job WHERE compilation_job_status = 'FAILED' \
     ORDER BY compilation_job_name";

#[tokio::test]
async fn the_table_format_prints_the_header_and_one_line_per_row() {
    let server = DemoServer::start(&["--demo-jobs", "300"], &[]).await;
    let direct = server.direct(FAILED_JOBS, None).await;
    let names = common::job_names(&direct);
    assert!(!names.is_empty(), "the demo has failed jobs");

    let stdout = succeeded(&run_query(&server.url, FAILED_JOBS, &[], &[]).await);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
    let header = lines.first().expect("a header line");
    for column in [
        "compilation_job_name",
        "compilation_job_status",
        "creation_time",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let rows = &lines[1..];
    assert_eq!(rows.len(), names.len(), "{stdout}");
    // In the statement's order, each row with its job's name and status.
    for (row, name) in rows.iter().zip(&names) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[1], name, "{row}");
        assert_eq!(cells[2], "FAILED", "{row}");
    }
    // Borders above and below the header, and at the end.
    assert_eq!(stdout.lines().filter(|l| l.starts_with('+')).count(), 3);
    server.stop().await;
}

#[tokio::test]
async fn csv_parses_with_the_header_and_the_rows_of_a_direct_read() {
    let server = DemoServer::start(&["--demo-jobs", "200"], &[]).await;
    // tags is a map: in CSV it becomes JSON text, quoted.
    let sql = format!(
        "SELECT compilation_job_name, compilation_job_status, failure_reason, tags \
         FROM {TABLE} ORDER BY compilation_job_name"
    );
    let direct = server.direct(&sql, None).await;
    let stdout = succeeded(&run_query(&server.url, &sql, &["--format", "csv"], &[]).await);

    let header = stdout.lines().next().expect("a header");
    assert_eq!(
        header,
        "compilation_job_name,compilation_job_status,failure_reason,tags"
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("compilation_job_name", DataType::Utf8, false),
        Field::new("compilation_job_status", DataType::Utf8, false),
        Field::new("failure_reason", DataType::Utf8, true),
        Field::new("tags", DataType::Utf8, true),
    ]));
    let parsed: Vec<RecordBatch> = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(Cursor::new(stdout.clone()))
        .expect("csv reader")
        .collect::<Result<_, _>>()
        .expect("the output parses as CSV");
    assert_eq!(row_count(&parsed), 200);
    assert_eq!(common::job_names(&parsed), common::job_names(&direct));

    // Row by row: the same status, failure reason and tags.
    let mut expected = Vec::new();
    for batch in &direct {
        for row in 0..batch.num_rows() {
            // Tags in key order: serde_json's map below sorts them.
            let mut tags = common::tags_at(batch, row);
            tags.sort();
            expected.push((
                common::string_at(batch, "compilation_job_status", row),
                common::string_at(batch, "failure_reason", row),
                tags,
            ));
        }
    }
    let mut got = Vec::new();
    for batch in &parsed {
        for row in 0..batch.num_rows() {
            let tags = common::string_at(batch, "tags", row).expect("tags are never NULL");
            let tags: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&tags).expect("tags as a JSON object");
            let tags: Vec<(String, String)> = tags
                .into_iter()
                .map(|(k, v)| (k, v.as_str().expect("string value").to_owned()))
                .collect();
            got.push((
                common::string_at(batch, "compilation_job_status", row),
                common::string_at(batch, "failure_reason", row),
                tags,
            ));
        }
    }
    assert_eq!(got, expected);
    server.stop().await;
}

#[tokio::test]
async fn every_jsonl_line_is_an_object_with_every_selected_key() {
    let server = DemoServer::start(&["--demo-jobs", "150"], &[]).await;
    let sql = format!(
        "SELECT compilation_job_name, failure_reason, creation_time, \
                json_get_str(output_config, 'TargetDevice') AS target_device, \
                json_get(stopping_condition, 'MaxRuntimeInSeconds') AS max_runtime, \
                json_get(output_config, 'TargetPlatform') AS target_platform, \
                json_get_json(output_config, 'TargetPlatform') AS platform_json \
         FROM {TABLE}"
    );
    let direct = server.direct(&sql, None).await;
    let stdout = succeeded(&run_query(&server.url, &sql, &["--format", "jsonl"], &[]).await);
    let keys = [
        "compilation_job_name",
        "creation_time",
        "failure_reason",
        "max_runtime",
        "platform_json",
        "target_device",
        "target_platform",
    ];
    let mut by_name = BTreeMap::new();
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let object = value.as_object().expect("a JSON object");
        let mut found: Vec<&str> = object.keys().map(String::as_str).collect();
        found.sort();
        assert_eq!(found, keys, "{line}");
        let name = object["compilation_job_name"].as_str().expect("name");
        by_name.insert(name.to_owned(), object.clone());
    }
    assert_eq!(by_name.len(), 150);
    // Values match the direct read: NULL as null, the union of json_get
    // as the number or the object it holds.
    let mut platforms = 0;
    for batch in &direct {
        for row in 0..batch.num_rows() {
            let name = common::string_at(batch, "compilation_job_name", row).expect("name");
            let line = &by_name[&name];
            let device = common::string_at(batch, "target_device", row);
            assert_eq!(line["target_device"].as_str(), device.as_deref(), "{name}");
            let reason = common::string_at(batch, "failure_reason", row);
            assert_eq!(line["failure_reason"].as_str(), reason.as_deref(), "{name}");
            assert!(line["max_runtime"].is_i64(), "{name}: {line:?}");
            // An object, not a string holding its JSON.
            match common::string_at(batch, "platform_json", row) {
                Some(json) => {
                    let expected: serde_json::Value =
                        serde_json::from_str(&json).expect("TargetPlatform is JSON");
                    assert!(expected.is_object(), "{name}: {json}");
                    assert_eq!(line["target_platform"], expected, "{name}: {line:?}");
                    platforms += 1;
                }
                None => assert!(line["target_platform"].is_null(), "{name}: {line:?}"),
            }
        }
    }
    assert!(platforms > 0, "the demo has jobs with a TargetPlatform");

    // CSV: the object as its JSON text.
    let sql = format!(
        "SELECT json_get(output_config, 'TargetPlatform') AS target_platform, \
                json_get_json(output_config, 'TargetPlatform') AS platform_json \
         FROM {TABLE} WHERE json_contains(output_config, 'TargetPlatform')"
    );
    let csv = succeeded(&run_query(&server.url, &sql, &["--format", "csv"], &[]).await);
    let schema = Arc::new(Schema::new(vec![
        Field::new("target_platform", DataType::Utf8, true),
        Field::new("platform_json", DataType::Utf8, true),
    ]));
    let parsed: Vec<RecordBatch> = arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .build(Cursor::new(csv.clone()))
        .expect("csv reader")
        .collect::<Result<_, _>>()
        .expect("the output parses as CSV");
    assert_eq!(row_count(&parsed), platforms, "{csv}");
    for batch in &parsed {
        for row in 0..batch.num_rows() {
            let text = common::string_at(batch, "target_platform", row).expect("a value");
            let json = common::string_at(batch, "platform_json", row).expect("a value");
            let got: serde_json::Value = serde_json::from_str(&text).expect("JSON text");
            let expected: serde_json::Value = serde_json::from_str(&json).expect("JSON");
            assert!(got.is_object(), "{text}");
            assert_eq!(got, expected);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn parquet_reads_back_as_the_rows_of_a_direct_read() {
    let server = DemoServer::start(&["--demo-jobs", "250"], &[]).await;
    let sql = format!(
        "SELECT compilation_job_name, compilation_job_status, creation_time, \
                input_config, tags FROM {TABLE} ORDER BY compilation_job_name"
    );
    let direct = server.direct(&sql, None).await;
    let dir = TempDir::new("query-cli-parquet");
    let path = dir.file("jobs.parquet");
    let output = run_query(
        &server.url,
        &sql,
        &["--format", "parquet", "--output", &path],
        &[],
    )
    .await;
    assert_eq!(succeeded(&output), "", "nothing on stdout");
    assert!(
        !Path::new(&format!("{path}.partial")).exists(),
        "the temporary file is renamed"
    );

    let file = std::fs::File::open(&path).expect("the parquet file");
    let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a parquet file")
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    assert_eq!(row_count(&read), 250);
    assert_eq!(common::rows_as_text(&read), common::rows_as_text(&direct));
    // Types survive, the timestamp's time zone included.
    let schema = read[0].schema();
    assert_eq!(
        schema
            .field_with_name("creation_time")
            .expect("column")
            .data_type(),
        direct[0]
            .schema()
            .field_with_name("creation_time")
            .expect("column")
            .data_type()
    );

    // Parquet is binary: it needs --output, and says so before connecting.
    let refused = run_query("grpc://127.0.0.1:1", &sql, &["--format", "parquet"], &[]).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--output"),
        "{}",
        text(&refused.stderr)
    );
    server.stop().await;
}

/// A column of every function family a user reaches for, and of every
/// type those return: JSON (a union, lists), time arithmetic (intervals,
/// durations), dates, strings, arrays, structs, the tags map, decimals,
/// small integers, NULL.
const EVERY_FAMILY: &str = "SELECT compilation_job_name, \
       json_get(output_config, 'TargetPlatform') AS platform, \
       json_get(stopping_condition, 'MaxRuntimeInSeconds') AS runtime, \
       json_get_array(vpc_config, 'Subnets') AS subnets, \
       json_object_keys(output_config) AS output_keys, \
       now() - creation_time AS age, \
       INTERVAL '7 days' AS week, \
       date_part('year', creation_time) AS year, \
       date_trunc('day', creation_time) AS day, \
       to_date('2026-01-02') AS date, \
       regexp_replace(compilation_job_name, '-', '_') AS underscored, \
       make_array(1, 2) AS pair, \
       named_struct('a', 1, 'b', 'x') AS record, \
       tags, \
       arrow_cast(1, 'Int8') AS small, \
       CAST(1.5 AS DECIMAL(10, 2)) AS amount, \
       NULL AS nothing \
     FROM aws.sagemaker_compilation_job ORDER BY compilation_job_name LIMIT 40";

#[tokio::test]
async fn every_function_family_goes_through_every_format() {
    let server = DemoServer::start(&["--demo-jobs", "60"], &[]).await;
    let dir = TempDir::new("query-cli-families");
    for format in ["table", "csv", "jsonl", "parquet"] {
        let path = dir.file(&format!("out.{format}"));
        let output = run_query(
            &server.url,
            EVERY_FAMILY,
            &["--format", format, "--output", &path],
            &[],
        )
        .await;
        assert_eq!(succeeded(&output), "", "{format}: nothing on stdout");
        assert!(
            !Path::new(&format!("{path}.partial")).exists(),
            "{format}: the temporary file is renamed"
        );
        let written = std::fs::read(&path).expect("the output file");
        if format == "parquet" {
            let read: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(written))
                    .expect("a parquet file")
                    .build()
                    .expect("reader")
                    .collect::<Result<_, _>>()
                    .expect("batches");
            assert_eq!(row_count(&read), 40);
            let schema = read[0].schema();
            for union in ["platform", "runtime"] {
                assert_eq!(
                    schema.field_with_name(union).expect("column").data_type(),
                    &DataType::Utf8,
                    "{union}: json_get's union is written as JSON text"
                );
            }
        } else {
            let text = text(&written);
            assert!(text.contains("compilation_job_name") || format == "jsonl");
            assert!(!text.contains("{object="), "{format}: {text}");
            assert!(!text.contains("{null="), "{format}: {text}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_empty_result_still_has_its_header() {
    let server = DemoServer::start(&["--demo-jobs", "50"], &[]).await;
    let sql = format!("SELECT compilation_job_name, creation_time FROM {TABLE} WHERE 1 = 0");
    let csv = succeeded(&run_query(&server.url, &sql, &["--format", "csv"], &[]).await);
    assert_eq!(csv.trim_end(), "compilation_job_name,creation_time");
    let table = succeeded(&run_query(&server.url, &sql, &[], &[]).await);
    assert!(table.contains("compilation_job_name"), "{table}");
    let jsonl = succeeded(&run_query(&server.url, &sql, &["--format", "jsonl"], &[]).await);
    assert_eq!(jsonl, "");
    server.stop().await;
}

/// The single line of stderr of a failed query.
fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    lines[0].to_owned()
}

#[tokio::test]
async fn failures_are_one_line_and_a_non_zero_exit() {
    let server = DemoServer::start(&["--demo-jobs", "20"], &[]).await;
    let dir = TempDir::new("query-cli-failures");

    // Bad SQL: the server's own message.
    let path = dir.file("out.csv");
    let bad = run_query(
        &server.url,
        &format!("SELECT no_such_column FROM {TABLE}"),
        &["--format", "csv", "--output", &path],
        &[],
    )
    .await;
    let line = failure(&bad);
    assert!(line.contains("INVALID_ARGUMENT"), "{line}");
    assert!(line.contains("no_such_column"), "{line}");
    assert!(
        !Path::new(&path).exists(),
        "no output file for a failed query"
    );

    // A statement that would write: the server's refusal.
    let write = run_query(&server.url, &format!("DROP TABLE {TABLE}"), &[], &[]).await;
    let line = failure(&write);
    assert!(line.contains("PERMISSION_DENIED"), "{line}");

    // Nothing listening: the address in the message.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("grpc://127.0.0.1:{port}");
    let line = failure(&run_query(&url, "SELECT 1", &[], &[]).await);
    assert!(line.contains(&format!("cannot connect to {url}")), "{line}");

    // A URL that is not one.
    let line = failure(&run_query("127.0.0.1:50051", "SELECT 1", &[], &[]).await);
    assert!(line.contains("grpc://HOST:PORT"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn credentials_come_from_a_token_file_the_environment_or_a_basic_handshake() {
    let dir = TempDir::new("query-cli-auth");
    let tokens = dir.file("tokens");
    std::fs::write(&tokens, "a-static-token\n").expect("token file");
    let server = DemoServer::start(
        &[
            "--demo-jobs",
            "30",
            "--auth-token-file",
            &tokens,
            "--auth-basic-user",
            "analyst",
        ],
        &[("SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD", "s3cret")],
    )
    .await;
    let sql = format!("SELECT count(*) AS n FROM {TABLE}");

    // Nothing: UNAUTHENTICATED, with a hint at the options.
    let line = failure(&run_query(&server.url, &sql, &[], &[]).await);
    assert!(line.contains("UNAUTHENTICATED"), "{line}");
    assert!(line.contains("--token-file"), "{line}");

    let expect_count = |output: Output| {
        let csv = succeeded(&output);
        assert_eq!(csv, "n\n30\n");
    };
    // A token file, the token in the environment, a Basic handshake.
    expect_count(
        run_query(
            &server.url,
            &sql,
            &["--format", "csv", "--token-file", &tokens],
            &[],
        )
        .await,
    );
    expect_count(
        run_query(
            &server.url,
            &sql,
            &["--format", "csv"],
            &[("SAGEMAKER_FLIGHT_TOKEN", "a-static-token")],
        )
        .await,
    );
    expect_count(
        run_query(
            &server.url,
            &sql,
            &["--format", "csv", "--user", "analyst"],
            &[("SAGEMAKER_FLIGHT_PASSWORD", "s3cret")],
        )
        .await,
    );

    // A wrong password is refused by the handshake, and not echoed.
    let line = failure(
        &run_query(
            &server.url,
            &sql,
            &["--user", "analyst"],
            &[("SAGEMAKER_FLIGHT_PASSWORD", "wrong-password")],
        )
        .await,
    );
    assert!(line.contains("handshake failed"), "{line}");
    assert!(line.contains("UNAUTHENTICATED"), "{line}");
    assert!(!line.contains("wrong-password"), "{line}");
    // --user without a password is refused before connecting.
    let line = failure(&run_query(&server.url, &sql, &["--user", "analyst"], &[]).await);
    assert!(line.contains("SAGEMAKER_FLIGHT_PASSWORD"), "{line}");

    // The direct read agrees with the count.
    let direct = server.direct(&sql, Some("a-static-token")).await;
    assert_eq!(
        direct[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        30
    );
    server.stop().await;
}

#[tokio::test]
async fn the_progress_line_shows_with_progress_and_not_otherwise() {
    // 800 jobs at 20 ms a call, 16 calls at a time: over a second of reading.
    let server = DemoServer::start(&["--demo-jobs", "800", "--demo-latency-ms", "20"], &[]).await;
    let sql = format!("SELECT * FROM {TABLE}");
    let dir = TempDir::new("query-cli-progress");
    let path = dir.file("all.csv");

    let shown = run_query(
        &server.url,
        &sql,
        &["--format", "csv", "--output", &path, "--progress"],
        &[],
    )
    .await;
    succeeded(&shown);
    let stderr = text(&shown.stderr);
    assert!(stderr.contains(" rows, "), "{stderr:?}");
    assert!(stderr.contains('\r'), "drawn in place: {stderr:?}");
    // Erased at the end: the last thing written is a carriage return.
    assert!(stderr.ends_with('\r'), "{stderr:?}");
    let written = std::fs::read_to_string(&path).expect("the CSV file");
    assert_eq!(written.lines().count(), 801, "header and every row");

    // stderr is not a terminal here: no progress unless asked.
    let silent = run_query(
        &server.url,
        &sql,
        &["--format", "csv", "--output", &path],
        &[],
    )
    .await;
    succeeded(&silent);
    assert_eq!(text(&silent.stderr), "");

    // --quiet and --progress contradict each other.
    let both = run_query(&server.url, &sql, &["--progress", "--quiet"], &[]).await;
    assert!(!both.status.success());
    server.stop().await;
}

#[tokio::test]
async fn wait_gives_up_only_once_the_whole_wait_is_over() {
    // A port nothing listens on: every attempt is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("grpc://{}", closed.local_addr().expect("address"));
    drop(closed);
    let started = std::time::Instant::now();
    let output = run_query(&url, "SELECT 1", &["--wait", "1"], &[]).await;
    let waited = started.elapsed();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("(still, after waiting 1s)"), "{stderr}");
    assert!(waited >= Duration::from_secs(1), "gave up after {waited:?}");
}

#[tokio::test]
async fn wait_retries_until_a_server_that_starts_later_answers() {
    // The port is ours until the server takes it; the query's first
    // attempt meets a connection closed at once, so only a retry can
    // reach the server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let url = format!("grpc://127.0.0.1:{port}");
    let sql = format!("SELECT count(*) AS n FROM {TABLE}");
    let query = tokio::spawn({
        let url = url.clone();
        let sql = sql.clone();
        async move { run_query(&url, &sql, &["--format", "csv", "--wait", "30"], &[]).await }
    });
    let (first, _) = tokio::time::timeout(QUERY_TIMEOUT, listener.accept())
        .await
        .expect("the query connects in time")
        .expect("accept");
    drop(first);
    drop(listener);
    let listen = format!("127.0.0.1:{port}");
    let mut server = Binary::new(&["serve", "--demo", "--demo-jobs", "40", "--listen", &listen])
        .discard_stderr()
        .spawn();
    let output = query.await.expect("query task");
    assert_eq!(succeeded(&output), "n\n40\n");
    server.child.kill().await.expect("stop the server");

    // Nobody comes: the wait ends with a message that says so.
    let line = failure(&run_query(&url, &sql, &["--wait", "1"], &[]).await);
    assert!(line.contains("after waiting 1s"), "{line}");
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_cannot_hang_the_query() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    // Every connection is accepted and kept open, and nothing is said.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let plain = format!("grpc://{address}");
    let tls = format!("grpc+tls://{address}");
    // run_query bounds each run by QUERY_TIMEOUT.
    let (waited, handshake, tls_handshake) = tokio::join!(
        // --wait ends at its deadline, the health check unanswered.
        run_query(&plain, "SELECT 1", &["--wait", "1"], &[]),
        // Without --wait, the connect timeout ends the Flight Handshake...
        run_query(
            &plain,
            "SELECT 1",
            &["--user", "analyst"],
            &[("SAGEMAKER_FLIGHT_PASSWORD", "pw")],
        ),
        // ...and the TLS handshake.
        run_query(&tls, "SELECT 1", &[], &[]),
    );
    let line = failure(&waited);
    assert!(
        line.contains(&format!("cannot connect to {plain}")),
        "{line}"
    );
    assert!(line.contains("no answer"), "{line}");
    assert!(line.contains("after waiting 1s"), "{line}");
    let line = failure(&handshake);
    assert!(
        line.contains(&format!("cannot connect to {plain}")),
        "{line}"
    );
    assert!(line.contains("no answer within 10s"), "{line}");
    let line = failure(&tls_handshake);
    assert!(line.contains(&format!("cannot connect to {tls}")), "{line}");
    silent.abort();
}

/// A CA (PEM) and a server certificate and key (PEM) for 127.0.0.1 it signed.
fn private_ca() -> (String, String, String) {
    let pki = common::pki::Pki::new("query-cli test CA");
    let (cert, key) = pki.sign(&["127.0.0.1"], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    (pki.ca_pem, cert, key)
}

#[tokio::test]
async fn tls_ca_trusts_a_server_certificate_from_a_private_ca() {
    let dir = TempDir::new("query-cli-tls");
    let (ca, cert, key) = private_ca();
    let (ca_path, cert_path, key_path) = (
        dir.file("ca.pem"),
        dir.file("cert.pem"),
        dir.file("key.pem"),
    );
    std::fs::write(&ca_path, ca).expect("ca");
    std::fs::write(&cert_path, cert).expect("cert");
    std::fs::write(&key_path, key).expect("key");
    let (other_ca, _, _) = private_ca();
    let other_ca_path = dir.file("other-ca.pem");
    std::fs::write(&other_ca_path, other_ca).expect("other ca");

    let server = DemoServer::start(
        &[
            "--demo-jobs",
            "25",
            "--tls-cert",
            &cert_path,
            "--tls-key",
            &key_path,
        ],
        &[],
    )
    .await;
    assert!(
        server.url.starts_with("grpc+tls://127.0.0.1:"),
        "{}",
        server.url
    );
    let sql = format!("SELECT count(*) AS n FROM {TABLE}");

    let trusted = run_query(
        &server.url,
        &sql,
        &["--format", "csv", "--tls-ca", &ca_path],
        &[],
    )
    .await;
    assert_eq!(succeeded(&trusted), "n\n25\n");

    // Another CA, or the system's roots: the certificate is not trusted.
    for args in [vec!["--tls-ca", other_ca_path.as_str()], vec![]] {
        let line = failure(&run_query(&server.url, &sql, &args, &[]).await);
        assert!(
            line.contains(&format!("cannot connect to {}", server.url)),
            "{line}"
        );
    }
    // --tls-ca with a plaintext URL is a mistake, said before connecting.
    let plain = server.url.replace("grpc+tls://", "grpc://");
    let line = failure(&run_query(&plain, &sql, &["--tls-ca", &ca_path], &[]).await);
    assert!(line.contains("grpc+tls://"), "{line}");
    server.stop().await;
}
