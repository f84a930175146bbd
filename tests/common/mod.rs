//! Fixtures shared by the integration tests: an emulator and a Flight server
//! in this process, both on 127.0.0.1:0 ([`TestServer::builder`]), the
//! binary as a child process ([`binary`]), and helpers to read batches.

#![allow(dead_code)] // each test binary uses a different part

pub mod binary;
pub mod pki;
pub mod temp_dir;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use arrow_flight::FlightClient;
use sagemaker_emulator::{Emulator, EmulatorConfig};
use sagemaker_flight::source::{RetryPolicy, SageMakerSource, emulator_client};
use sagemaker_flight::table::TableOptions;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// How long one SageMaker, STS or Account attempt of a test may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The AWS configuration every client of an emulator of many accounts is
/// made from (STS, Account, SageMaker in each region): fixed credentials
/// (the emulator checks no signature) and no SDK retries (the tests count
/// every attempt; retries are the source's own).
pub async fn emulator_sdk_config(endpoint_url: &str, region: &str) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_config::{BehaviorVersion, Region};
    let credentials = aws_sdk_sagemaker::config::Credentials::new(
        "emulator",
        "emulator",
        None,
        None,
        "sagemaker-flight-tests",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(endpoint_url)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// A retry policy with short waits, so fault tests stay fast.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
    }
}

/// How long [`TestServer::stop`] waits for the server, then the emulator.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// An emulator and a Flight server reading it, both on 127.0.0.1. Dropped,
/// it stops the server (the shutdown signal sent, its task aborted) and
/// the emulator (which stops when its handle drops);
/// [`TestServer::stop`] stops both gracefully and waits for them.
pub struct TestServer {
    pub emulator: Emulator,
    pub address: SocketAddr,
    server: ServerTask,
}

/// Builds a source from a client of the emulator.
type SourceFn = Box<dyn FnOnce(aws_sdk_sagemaker::Client) -> SageMakerSource + Send>;

/// Builds the Flight service over the source.
type ServiceFn = Box<
    dyn FnOnce(
            Arc<SageMakerSource>,
        ) -> Result<
            sagemaker_flight::flight::FlightServer,
            sagemaker_flight::server::ServeError,
        > + Send,
>;

/// What [`TestServer::builder`] starts. Unset, the source makes 8 calls
/// at a time with [`quick_retries`]`(8)` and lists in one NextToken chain
/// (so call counts are exact pages), the table has
/// [`TableOptions::default`], anyone may call, in plaintext.
#[must_use = "a builder starts nothing until `start`"]
pub struct TestServerBuilder {
    config: EmulatorConfig,
    concurrency: Option<usize>,
    retry: Option<RetryPolicy>,
    list_windows: Option<usize>,
    source: Option<SourceFn>,
    table: Option<TableOptions>,
    auth: Option<sagemaker_flight::auth::Authenticator>,
    tls: Option<sagemaker_flight::auth::TlsConfig>,
    service: Option<ServiceFn>,
}

impl TestServerBuilder {
    /// The default source makes `concurrency` calls at a time.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(concurrency);
        self
    }

    /// The default source retries with `retry`.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The default source splits long listings into up to `list_windows`
    /// creation-time windows.
    pub fn list_windows(mut self, list_windows: usize) -> Self {
        self.list_windows = Some(list_windows);
        self
    }

    /// The server reads the source `build` makes from a client of the
    /// emulator, instead of the default one (so no `concurrency`, `retry`
    /// or `list_windows` with it).
    pub fn source(
        mut self,
        build: impl FnOnce(aws_sdk_sagemaker::Client) -> SageMakerSource + Send + 'static,
    ) -> Self {
        self.source = Some(Box::new(build));
        self
    }

    /// The table's `options`.
    pub fn table(mut self, options: TableOptions) -> Self {
        self.table = Some(options);
        self
    }

    /// The server checks credentials with `auth` (`None`: anyone may call)
    /// and, with `tls`, speaks TLS.
    pub fn access(
        mut self,
        auth: Option<sagemaker_flight::auth::Authenticator>,
        tls: Option<sagemaker_flight::auth::TlsConfig>,
    ) -> Self {
        self.auth = auth;
        self.tls = tls;
        self
    }

    /// The server serves what `build` makes over the source, instead of
    /// the default service (so no `table` or authenticator with it; TLS
    /// still applies).
    pub fn service(
        mut self,
        build: impl FnOnce(
            Arc<SageMakerSource>,
        ) -> Result<
            sagemaker_flight::flight::FlightServer,
            sagemaker_flight::server::ServeError,
        > + Send
        + 'static,
    ) -> Self {
        self.service = Some(Box::new(build));
        self
    }

    /// Starts the emulator, then the server on it, in the background.
    pub async fn start(self) -> TestServer {
        let TestServerBuilder {
            config,
            concurrency,
            retry,
            list_windows,
            source,
            table,
            auth,
            tls,
            service,
        } = self;
        assert!(
            source.is_none()
                || (concurrency.is_none() && retry.is_none() && list_windows.is_none()),
            "source() replaces the default source: concurrency(), retry() and list_windows() would be ignored"
        );
        assert!(
            service.is_none() || (table.is_none() && auth.is_none()),
            "service() replaces the default service: table() and access()'s authenticator would be ignored"
        );
        let emulator = Emulator::start(config, ([127, 0, 0, 1], 0).into())
            .await
            .expect("emulator starts");
        let client = emulator_client(&emulator.endpoint_url(), "us-east-1");
        let source = Arc::new(match source {
            Some(build) => build(client),
            None => SageMakerSource::new(
                client,
                concurrency.unwrap_or(8),
                retry.unwrap_or_else(|| quick_retries(8)),
            )
            .with_list_windows(list_windows.unwrap_or(1)),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, on_shutdown) = oneshot::channel::<()>();
        let service = match service {
            Some(build) => build(source),
            None => sagemaker_flight::server::flight_service(
                source,
                table.unwrap_or_default(),
                &Default::default(),
            )
            .map(|service| service.with_auth(auth)),
        }
        .expect("service");
        let task = tokio::spawn(async move {
            sagemaker_flight::server::serve_with_tls(listener, service, tls.as_ref(), async {
                let _ = on_shutdown.await;
            })
            .await
            .expect("server runs");
        });
        TestServer {
            emulator,
            address,
            server: ServerTask {
                shutdown: Some(shutdown),
                task: Some(task),
            },
        }
    }
}

/// The Flight server's task: stopped by [`ServerTask::stop`], or on drop.
struct ServerTask {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Sends the shutdown signal and waits (at most [`STOP_LIMIT`]) for the
    /// server to finish.
    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(STOP_LIMIT, task)
                .await
                .expect("the server stops in time");
        }
    }
}

impl Drop for ServerTask {
    /// Not stopped: signals the shutdown and aborts the task, so nothing
    /// outlives the test.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl TestServer {
    /// A server to be started on an emulator with `config`.
    pub fn builder(config: EmulatorConfig) -> TestServerBuilder {
        TestServerBuilder {
            config,
            concurrency: None,
            retry: None,
            list_windows: None,
            source: None,
            table: None,
            auth: None,
            tls: None,
            service: None,
        }
    }

    /// A plain Flight client connected to the server.
    pub async fn client(&self) -> FlightClient {
        FlightClient::new(self.channel().await)
    }

    /// A gRPC channel to the server, for any client type.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// Stops the server, then the emulator, gracefully, waiting (at most
    /// [`STOP_LIMIT`] each) for them to finish.
    pub async fn stop(self) {
        let TestServer {
            emulator, server, ..
        } = self;
        server.stop().await;
        tokio::time::timeout(STOP_LIMIT, emulator.shutdown())
            .await
            .expect("the emulator stops in time");
    }
}

/// The emulator configuration most tests start from: `jobs` jobs, seed 42,
/// a fixed anchor so the data never depends on the clock.
pub fn emulator_config(jobs: usize) -> EmulatorConfig {
    EmulatorConfig {
        jobs,
        seed: 42,
        anchor: Some(std::time::UNIX_EPOCH + Duration::from_secs(1_790_000_000)),
        ..EmulatorConfig::default()
    }
}

/// Plans and runs `sql` on `engine`, collecting every batch; panics, naming
/// the SQL, if any step fails.
pub async fn run_sql(engine: &sagemaker_flight::query::QueryEngine, sql: &str) -> Vec<RecordBatch> {
    use futures::TryStreamExt;
    let planned = engine
        .plan(sql, None)
        .await
        .unwrap_or_else(|e| panic!("plan {sql}: {e}"));
    planned
        .execute()
        .unwrap_or_else(|e| panic!("execute {sql}: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("run {sql}: {e}"))
}

/// Creates the job `name` through the SageMaker API of `client`: a
/// PyTorch model for ml_c5, as a user would.
pub async fn create_compilation_job(client: &aws_sdk_sagemaker::Client, name: &str) {
    use aws_sdk_sagemaker::types::{
        Framework, InputConfig, OutputConfig, StoppingCondition, TargetDevice,
    };
    client
        .create_compilation_job()
        .compilation_job_name(name)
        .role_arn("arn:aws:iam::123456789012:role/neo")
        .input_config(
            InputConfig::builder()
                .s3_uri("s3://bucket/model.tar.gz")
                .framework(Framework::Pytorch)
                .build(),
        )
        .output_config(
            OutputConfig::builder()
                .s3_output_location("s3://bucket/out")
                .target_device(TargetDevice::MlC5)
                .build(),
        )
        .stopping_condition(
            StoppingCondition::builder()
                .max_runtime_in_seconds(900)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

/// The column named `name` of `batch`.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_ref()
}

/// A Utf8 value, `None` when null.
pub fn string_at(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let array = column(batch, name).as_string::<i32>();
    array.is_valid(row).then(|| array.value(row).to_owned())
}

/// Every `compilation_job_name` in `batches`, sorted (duplicates kept).
pub fn job_names(batches: &[RecordBatch]) -> Vec<String> {
    let mut names: Vec<String> = batches
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |r| string_at(b, "compilation_job_name", r)))
        .map(|n| n.expect("name"))
        .collect();
    names.sort();
    names
}

/// A timestamp value in microseconds, `None` when null.
pub fn micros_at(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    let array = column(batch, name).as_primitive::<TimestampMicrosecondType>();
    array.is_valid(row).then(|| array.value(row))
}

/// The tags map of one row, in order.
pub fn tags_at(batch: &RecordBatch, row: usize) -> Vec<(String, String)> {
    let map = column(batch, "tags").as_map();
    let entries = map.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|i| (keys.value(i).to_owned(), values.value(i).to_owned()))
        .collect()
}

/// Epoch seconds (as the emulator sends them) to microseconds.
pub fn seconds_to_micros(seconds: f64) -> i64 {
    (seconds * 1_000_000.0).round() as i64
}

/// Each row as text, columns joined by ` | `, strings quoted, NULL spelled
/// out, in the order of `batches`.
pub fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default()
        .with_null("NULL")
        .with_quoted_strings(true);
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).try_to_string().expect("format value"))
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    rows
}

/// Random cases per property test: `default`, or `PROPTEST_CASES` for a
/// longer run.
pub fn proptest_cases(default: usize) -> usize {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cases` random predicates: `atoms` combined with AND, OR and NOT, up to
/// three levels deep (the differential tests compare answers on them).
pub fn random_predicates(atoms: Vec<String>, cases: usize) -> Vec<String> {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, TestRunner};

    let leaf = proptest::sample::select(atoms);
    let predicate = leaf.prop_recursive(3, 12, 2, |inner| {
        proptest::prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    });
    // A fixed seed: every run asks the same questions, so a failure is
    // reproducible. PROPTEST_CASES asks more of them, PROPTEST_RNG_SEED
    // (a number) other ones.
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5a6e);
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..Config::default()
    });
    (0..cases)
        .map(|_| {
            predicate
                .new_tree(&mut runner)
                .expect("a predicate")
                .current()
        })
        .collect()
}

/// Reads every endpoint of `info` with `client`, in order.
pub async fn fetch_all(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<Channel>,
    info: arrow_flight::FlightInfo,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    use futures::TryStreamExt;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            batches.push(batch);
        }
    }
    Ok(batches)
}

/// Runs `sql` through Flight SQL on `server` and reads every endpoint.
pub async fn query(
    server: &TestServer,
    sql: &str,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(server.channel().await);
    let info = client.execute(sql.to_owned(), None).await?;
    fetch_all(&mut client, info).await
}

/// One raw HTTP/1.1 exchange with `addr` (the emulator, on loopback),
/// within 10 s: (status, lower-cased headers, body).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let exchange = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        String::from_utf8(buf).expect("utf-8 response")
    };
    let text = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("HTTP exchange within 10 s");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The samples of a metrics page: series (name and labels, as rendered) to value.
pub fn metric_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `series` among `samples`, 0 when absent.
pub fn metric_sample(samples: &std::collections::BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// The query engine of `emu`'s partition answering from `store`, its
/// freshness table saying this process collects the partition.
pub fn replica_engine(
    emu: &Emulator,
    store: &Arc<sagemaker_flight::replica::ReplicaStore>,
) -> sagemaker_flight::query::QueryEngine {
    use sagemaker_flight::replica::{FreshnessTable, StatusBoard};
    let key = replica_partition(emu).key;
    let board = StatusBoard::default();
    board.set_collecting(&key, true);
    let freshness = FreshnessTable::new(Arc::clone(store), vec![key], board);
    sagemaker_flight::query::QueryEngine::new(
        sagemaker_flight::source::Partitions::new(vec![replica_partition(emu)]),
        sagemaker_flight::table::TableOptions::default(),
    )
    .expect("engine")
    .with_replica(Arc::clone(store), freshness)
    .expect("replica")
}

/// The emulator's one partition (account 123456789012, us-east-1) as a
/// collector reads it: eight calls at a time, quick retries, the Tagging
/// API beside SageMaker's.
pub fn replica_partition(emu: &Emulator) -> sagemaker_flight::source::Partition {
    use sagemaker_flight::source::{Partition, PartitionKey, emulator_tagging_client};
    let key = PartitionKey::new("123456789012", "us-east-1");
    let client = emulator_client(&emu.endpoint_url(), "us-east-1");
    Partition {
        source: Arc::new(
            SageMakerSource::new(client, 8, quick_retries(8))
                .in_partition(&key)
                .with_tagging(emulator_tagging_client(&emu.endpoint_url(), "us-east-1")),
        ),
        key,
    }
}
