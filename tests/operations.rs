//! What operators rely on, through the binary (a process per test, so the
//! metrics registry is its own): the config file under environment and
//! flags, Prometheus metrics on their own port, and the JSON log with one
//! `query` span per query. Everything on 127.0.0.1.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightClient, FlightDescriptor};
use common::binary::{Binary, Process};
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

/// How long any one step of these tests may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// Every test finishes in bounded time, whatever the server does.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(240), work)
        .await
        .expect("the test finishes within 240 s")
}

/// The JSON lines of `process`'s stderr so far.
fn json_lines(process: &Process) -> Vec<serde_json::Value> {
    process
        .stderr_lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// Polls `check` every 20 ms until it returns `Some`, for at most 5 s.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP/1.1 GET on loopback: the status line and the body.
async fn http_get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .expect("answered in time")
        .expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// Calls of `operation` the emulator at `endpoint` answered.
async fn emulator_calls(endpoint: &str, operation: &str) -> f64 {
    let (_, body) = http_get(&format!("{endpoint}/_emulator/stats")).await;
    let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON stats");
    stats["operations"][operation]["calls"]
        .as_f64()
        .unwrap_or(0.0)
}

async fn channel(url: &str) -> Channel {
    Channel::from_shared(url.replace("grpc://", "http://"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Runs `sql` through Flight SQL; the rows it returned.
async fn run_sql(url: &str, sql: &str) -> usize {
    let mut client = FlightSqlServiceClient::new(channel(url).await);
    let info = client.execute(sql.to_owned(), None).await.expect("execute");
    assert!(!info.endpoint.is_empty(), "no endpoint");
    let mut rows = 0;
    for endpoint in info.endpoint {
        let stream = client
            .do_get(endpoint.ticket.expect("ticket"))
            .await
            .expect("do_get");
        let batches: Vec<_> = stream.try_collect().await.expect("rows");
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    rows
}

/// Rows of the whole table, read with plain Flight.
async fn table_rows(url: &str) -> usize {
    let mut client = FlightClient::new(channel(url).await);
    let info = client
        .get_flight_info(FlightDescriptor::new_path(vec![
            "aws.sagemaker_compilation_job".into(),
        ]))
        .await
        .expect("flight info");
    assert!(!info.endpoint.is_empty(), "no endpoint");
    let mut rows = 0;
    for endpoint in info.endpoint {
        let batches: Vec<_> = client
            .do_get(endpoint.ticket.expect("ticket"))
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("rows");
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    rows
}

const CREDENTIALS: [(&str, &str); 5] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
];

/// A query that needs Describe (failure_reason) but not ListTags.
/// The partition labels of a server reading one region without an accounts
/// file: it does not know its account, and names no region.
const UNKNOWN_PARTITION: &str = "account=\"\",region=\"\"";

const DESCRIBING_QUERY: &str =
    "SELECT compilation_job_name, failure_reason FROM aws.sagemaker_compilation_job";

/// An emulator and a `serve` reading it, with a metrics listener.
struct Stack {
    emulator: Process,
    /// The emulator's endpoint URL.
    endpoint: String,
    server: Process,
    metrics_url: String,
    /// The server's Flight URL.
    url: String,
}

impl Stack {
    /// The emulator with `emulator_args` (after its listen address), and
    /// `serve` reading it with `serve_args` (after its addresses) and
    /// `envs` besides the credentials.
    async fn start(emulator_args: &[&str], serve_args: &[&str], envs: &[(&str, &str)]) -> Stack {
        let args = [&["emulator", "--listen", "127.0.0.1:0"][..], emulator_args].concat();
        let (emulator, endpoint) = Binary::new(&args)
            .deadline(DEADLINE)
            .start_one("emulator listening on ")
            .await;
        let args = [
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--endpoint-url",
                &endpoint,
                "--metrics-listen",
                "127.0.0.1:0",
            ][..],
            serve_args,
        ]
        .concat();
        let (server, found) = Binary::new(&args)
            .envs(&[&CREDENTIALS[..], envs].concat())
            .deadline(DEADLINE)
            .start(&[
                "sagemaker-flight metrics on ",
                "sagemaker-flight listening on ",
            ])
            .await;
        let (metrics_url, url) = (found[0].clone(), found[1].clone());
        Stack {
            emulator,
            endpoint,
            server,
            metrics_url,
            url,
        }
    }

    async fn stop(self) {
        self.server.stop().await;
        self.emulator.stop().await;
    }
}

#[tokio::test]
async fn metrics_and_the_json_log_count_what_the_queries_did() {
    bounded(metrics_and_the_json_log_count_what_the_queries_did_body()).await;
}

async fn metrics_and_the_json_log_count_what_the_queries_did_body() {
    let stack = Stack::start(
        &["--jobs", "150", "--seed", "5"],
        &["--log-format", "json"],
        &[("RUST_LOG", "info")],
    )
    .await;
    let (endpoint, metrics_url, url) = (
        stack.endpoint.clone(),
        stack.metrics_url.clone(),
        stack.url.clone(),
    );
    assert!(
        metrics_url.starts_with("http://127.0.0.1:"),
        "{metrics_url}"
    );
    assert!(metrics_url.ends_with("/metrics"), "{metrics_url}");

    let (status, body) = http_get(&metrics_url).await;
    assert!(status.contains("200"), "{status}");
    let before = common::metric_samples(&body);
    // Every series whose labels are known is there, at zero, before any query.
    for series in [
        format!(
            "sagemaker_flight_sagemaker_calls_total{{operation=\"DescribeCompilationJob\",outcome=\"throttled\",{UNKNOWN_PARTITION}}}"
        ),
        format!(
            "sagemaker_flight_sagemaker_retries_total{{operation=\"ListTags\",{UNKNOWN_PARTITION}}}"
        ),
        "sagemaker_flight_cache_hits_total{answer=\"tags\"}".to_owned(),
        "sagemaker_flight_query_duration_seconds_count{outcome=\"error\"}".to_owned(),
        "sagemaker_flight_grpc_requests_total{method=\"DoGet\",code=\"UNAVAILABLE\"}".to_owned(),
    ] {
        assert_eq!(before.get(&series), Some(&0.0), "{series} before any query");
    }
    assert_eq!(
        common::metric_sample(&before, "sagemaker_flight_rows_sent_total"),
        0.0,
        "nothing sent yet"
    );

    // Twice the same query: the second is answered by the Describe cache.
    assert_eq!(run_sql(&url, DESCRIBING_QUERY).await, 150);
    assert_eq!(run_sql(&url, DESCRIBING_QUERY).await, 150);
    let lists = emulator_calls(&endpoint, "ListCompilationJobs").await;
    let describes = emulator_calls(&endpoint, "DescribeCompilationJob").await;
    assert!(lists >= 2.0, "two listings of at least one page each");
    assert_eq!(describes, 150.0, "the second query described nothing");
    // A query refused at planning: NOT_FOUND, in the headers.
    let mut client = FlightSqlServiceClient::new(channel(&url).await);
    let refused = client
        .execute("SELECT * FROM no_such_table".to_owned(), None)
        .await;
    assert!(refused.is_err());

    let after = eventually("the counters reach what the emulator saw", async || {
        let (_, body) = http_get(&metrics_url).await;
        let after = common::metric_samples(&body);
        let done = common::metric_sample(
            &after,
            "sagemaker_flight_query_duration_seconds_count{outcome=\"ok\"}",
        );
        (done == 2.0).then_some(after)
    })
    .await;
    let calls = |operation: &str| {
        common::metric_sample(
            &after,
            &format!(
                "sagemaker_flight_sagemaker_calls_total{{operation=\"{operation}\",outcome=\"ok\",{UNKNOWN_PARTITION}}}"
            ),
        )
    };
    assert_eq!(calls("ListCompilationJobs"), lists, "{after:#?}");
    assert_eq!(calls("DescribeCompilationJob"), describes, "{after:#?}");
    assert_eq!(calls("ListTags"), 0.0);
    assert_eq!(
        common::metric_sample(&after, "sagemaker_flight_rows_sent_total"),
        300.0
    );
    assert!(common::metric_sample(&after, "sagemaker_flight_bytes_sent_total") > 0.0);
    assert_eq!(
        common::metric_sample(
            &after,
            "sagemaker_flight_cache_misses_total{answer=\"describe\"}"
        ),
        150.0
    );
    assert_eq!(
        common::metric_sample(
            &after,
            "sagemaker_flight_cache_hits_total{answer=\"describe\"}"
        ),
        150.0
    );
    let grpc = |method: &str, code: &str| {
        common::metric_sample(
            &after,
            &format!("sagemaker_flight_grpc_requests_total{{method=\"{method}\",code=\"{code}\"}}"),
        )
    };
    assert_eq!(grpc("GetFlightInfo", "OK"), 2.0, "{after:#?}");
    assert_eq!(grpc("DoGet", "OK"), 2.0, "streams count at their trailers");
    assert_eq!(grpc("GetFlightInfo", "NOT_FOUND"), 1.0);
    assert_eq!(
        common::metric_sample(&after, "sagemaker_flight_queries_running"),
        0.0
    );
    assert_eq!(
        common::metric_sample(&after, "sagemaker_flight_query_first_batch_seconds_count"),
        2.0
    );
    assert_eq!(
        common::metric_sample(
            &after,
            &format!(
                "sagemaker_flight_sagemaker_retries_total{{operation=\"DescribeCompilationJob\",{UNKNOWN_PARTITION}}}"
            )
        ),
        0.0
    );

    // The log: JSON lines, one "query finished" per query, in its span,
    // with the SQL, an id, the rows and the calls that query made.
    let finished = eventually("both queries are logged", async || {
        let finished: Vec<serde_json::Value> = json_lines(&stack.server)
            .into_iter()
            .filter(|line| line["fields"]["message"] == "query finished")
            .collect();
        (finished.len() == 2).then_some(finished)
    })
    .await;
    for line in &finished {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"]["name"], "query", "{line}");
        assert_eq!(line["span"]["sql"], DESCRIBING_QUERY, "{line}");
        assert_eq!(line["fields"]["rows"], 150, "{line}");
        assert_eq!(line["fields"]["outcome"], "ok", "{line}");
        assert_eq!(line["fields"]["tags_calls"], 0, "{line}");
        assert!(line["fields"]["elapsed_ms"].is_u64(), "{line}");
    }
    assert_ne!(
        finished[0]["span"]["query_id"], finished[1]["span"]["query_id"],
        "each query has its own id"
    );
    let list_calls: u64 = finished
        .iter()
        .map(|line| line["fields"]["list_calls"].as_u64().expect("list_calls"))
        .sum();
    assert_eq!(
        list_calls as f64, lists,
        "every listing counted once, in its query"
    );
    assert_eq!(
        finished[0]["fields"]["describe_calls"], 150,
        "{}",
        finished[0]
    );
    assert_eq!(
        finished[1]["fields"]["describe_calls"], 0,
        "cached: {}",
        finished[1]
    );
    // The statement refused at GetFlightInfo is logged with its SQL and code.
    let refused = eventually("the refused statement is logged", async || {
        json_lines(&stack.server)
            .into_iter()
            .find(|line| line["fields"]["message"] == "statement refused")
    })
    .await;
    assert_eq!(
        refused["fields"]["sql"], "SELECT * FROM no_such_table",
        "{refused}"
    );
    assert_eq!(refused["fields"]["code"], "NotFound", "{refused}");

    stack.stop().await;
}

#[tokio::test]
async fn throttles_and_retries_are_counted_as_the_emulator_saw_them() {
    bounded(throttles_and_retries_are_counted_as_the_emulator_saw_them_body()).await;
}

async fn throttles_and_retries_are_counted_as_the_emulator_saw_them_body() {
    // One call in five throttled, one in twenty a 5xx: every failure is
    // retried (the budget is ample), and the query still returns every row.
    let stack = Stack::start(
        &[
            "--jobs",
            "120",
            "--throttle-rate",
            "0.2",
            "--error-rate",
            "0.05",
        ],
        &["--max-attempts", "30", "--cache-ttl", "0"],
        &[],
    )
    .await;
    let (endpoint, metrics_url, url) = (
        stack.endpoint.clone(),
        stack.metrics_url.clone(),
        stack.url.clone(),
    );
    assert_eq!(run_sql(&url, DESCRIBING_QUERY).await, 120);
    let (_, body) = http_get(&format!("{endpoint}/_emulator/stats")).await;
    let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON stats");
    let describe = &stats["operations"]["DescribeCompilationJob"];
    let (throttled, errors) = (
        describe["throttled"].as_f64().expect("throttled"),
        describe["server_errors"].as_f64().expect("server_errors"),
    );
    assert!(throttled > 0.0, "the emulator throttled: {stats}");
    let (_, body) = http_get(&metrics_url).await;
    let metrics = common::metric_samples(&body);
    let calls = |outcome: &str| {
        common::metric_sample(
            &metrics,
            &format!(
                "sagemaker_flight_sagemaker_calls_total{{operation=\"DescribeCompilationJob\",outcome=\"{outcome}\",{UNKNOWN_PARTITION}}}"
            ),
        )
    };
    assert_eq!(calls("ok"), 120.0, "{body}");
    assert_eq!(calls("throttled"), throttled, "{body}");
    assert_eq!(calls("server_error"), errors, "{body}");
    assert_eq!(
        common::metric_sample(
            &metrics,
            &format!(
                "sagemaker_flight_sagemaker_retries_total{{operation=\"DescribeCompilationJob\",{UNKNOWN_PARTITION}}}"
            )
        ),
        throttled + errors,
        "every failed attempt was retried"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_stream_the_client_drops_counts_as_cancelled() {
    bounded(a_stream_the_client_drops_counts_as_cancelled_body()).await;
}

async fn a_stream_the_client_drops_counts_as_cancelled_body() {
    // 2000 jobs at 20 ms, 16 at a time: seconds of scan, so the client
    // drops the stream long before its end.
    let (server, found) = Binary::new(&[
        "serve",
        "--demo",
        "--demo-jobs",
        "2000",
        "--demo-latency-ms",
        "20",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ])
    .deadline(DEADLINE)
    .start(&["metrics on ", "listening on "])
    .await;
    let (metrics_url, url) = (found[0].clone(), found[1].clone());
    let mut client = FlightClient::new(channel(&url).await);
    let info = client
        .get_flight_info(FlightDescriptor::new_path(vec![
            "aws.sagemaker_compilation_job".into(),
        ]))
        .await
        .expect("flight info");
    let endpoints = info.endpoint.len();
    assert!(endpoints > 0, "no endpoint");
    for endpoint in info.endpoint {
        let mut stream = client
            .do_get(endpoint.ticket.expect("ticket"))
            .await
            .expect("do_get");
        let first = stream.try_next().await.expect("a batch");
        assert!(first.is_some(), "a first batch");
        // Another batch after the first: the stream had not ended when
        // the client dropped it below.
        let second = stream.try_next().await.expect("a batch");
        assert!(second.is_some(), "the query was still running");
        drop(stream);
    }
    drop(client);
    let metrics = eventually("the dropped stream is counted", async || {
        let (_, body) = http_get(&metrics_url).await;
        let metrics = common::metric_samples(&body);
        let cancelled = common::metric_sample(
            &metrics,
            "sagemaker_flight_query_duration_seconds_count{outcome=\"cancelled\"}",
        );
        (cancelled == endpoints as f64).then_some(metrics)
    })
    .await;
    assert_eq!(
        common::metric_sample(
            &metrics,
            "sagemaker_flight_grpc_requests_total{method=\"DoGet\",code=\"CANCELLED\"}"
        ),
        endpoints as f64,
        "{metrics:#?}"
    );
    assert_eq!(
        common::metric_sample(&metrics, "sagemaker_flight_queries_running"),
        0.0
    );
    server.stop().await;
}

/// A config file for `serve --demo`, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    /// A file of its own, whatever `name`: tests run in parallel, and
    /// two may pick the same name.
    fn new(name: &str, text: &str) -> ConfigFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "sagemaker-flight-operations-{}-{}-{name}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).expect("write the config file");
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn flags_override_the_environment_which_overrides_the_config_file() {
    bounded(flags_override_the_environment_which_overrides_the_config_file_body()).await;
}

async fn flags_override_the_environment_which_overrides_the_config_file_body() {
    // Everything from the file; the demo's size tells which source won.
    let file = ConfigFile::new(
        "precedence",
        "demo = true\ndemo-jobs = 5\ndemo-latency-ms = 0\nlisten = \"127.0.0.1:0\"\n",
    );
    let config = ["serve", "--config", file.path()];
    let with_flag = ["serve", "--config", file.path(), "--demo-jobs", "9"];
    for (args, envs, expected) in [
        (&config[..], &[][..], 5),
        (&config[..], &[("SAGEMAKER_FLIGHT_DEMO_JOBS", "7")][..], 7),
        (
            &with_flag[..],
            &[("SAGEMAKER_FLIGHT_DEMO_JOBS", "7")][..],
            9,
        ),
    ] {
        let (server, url) = Binary::new(args)
            .envs(envs)
            .deadline(DEADLINE)
            .start_one("listening on ")
            .await;
        assert_eq!(table_rows(&url).await, expected, "{args:?} {envs:?}");
        server.stop().await;
    }
    // The file may also come from the environment.
    let (server, url) = Binary::new(&["serve"])
        .envs(&[("SAGEMAKER_FLIGHT_CONFIG", file.path())])
        .deadline(DEADLINE)
        .start_one("listening on ")
        .await;
    assert_eq!(table_rows(&url).await, 5);
    server.stop().await;
}

#[tokio::test]
async fn a_bad_config_file_stops_the_start_with_a_message_naming_key_and_file() {
    bounded(a_bad_config_file_stops_the_start_with_a_message_naming_key_and_file_body()).await;
}

async fn a_bad_config_file_stops_the_start_with_a_message_naming_key_and_file_body() {
    for (name, text, expected) in [
        (
            "unknown",
            "demo = true\nconcurency = 4\n",
            "unknown key `concurency`",
        ),
        (
            "typed",
            "demo = true\nconcurrency = \"lots\"\n",
            "key `concurrency`",
        ),
        (
            "secret",
            "auth-basic-password = \"hunter2\"\n",
            "would put a secret in the file",
        ),
    ] {
        let file = ConfigFile::new(name, text);
        let output = Binary::new(&["serve", "--config", file.path()])
            .deadline(DEADLINE)
            .output()
            .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(stderr.contains(file.path()), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "{name}: the secret is not echoed"
        );
    }
    // A bad value in the environment is an error even when the file has a
    // good one: the environment is above the file.
    let file = ConfigFile::new("env", "demo = true\ndemo-jobs = 5\n");
    let output = Binary::new(&["serve", "--config", file.path()])
        .env("SAGEMAKER_FLIGHT_DEMO_JOBS", "five")
        .deadline(DEADLINE)
        .output()
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value 'five'"), "{stderr}");
}

#[tokio::test]
async fn serve_help_explains_every_option_and_its_environment_variable() {
    let output = Binary::new(&["serve", "--help"])
        .deadline(DEADLINE)
        .output()
        .await;
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--config <FILE>",
        "[env: SAGEMAKER_FLIGHT_CONFIG=]",
        "--metrics-listen <ADDR>",
        "[env: SAGEMAKER_FLIGHT_METRICS_LISTEN=]",
        "--log-format <LOG_FORMAT>",
        "[env: SAGEMAKER_FLIGHT_LOG_FORMAT=]",
        "--log-level <FILTER>",
        "[env: SAGEMAKER_FLIGHT_LOG_LEVEL=]",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
}
