//! End-to-end benchmarks of the `sagemaker-flight` binary.
//!
//! Everything runs as separate processes on 127.0.0.1: the SageMaker
//! emulator (`sagemaker-flight emulator`), the server (`sagemaker-flight
//! serve --endpoint-url`, a fresh process per scenario so that its peak RSS
//! belongs to that scenario) and, for comparison, two Python peers from
//! `.venv` (`benches/boto3_peer.py`, `benches/pyarrow_peer.py`). This
//! process is the client: the Rust Flight SQL client times each query from
//! `execute()` to the last batch (wall) and to the first batch.
//!
//! ```sh
//! cargo bench --bench e2e                                 # all scenarios, 3 runs, writes BENCHMARKS.md
//! cargo bench --bench e2e -- --scenario S1,S3 --runs 1    # a subset
//! cargo bench --bench e2e -- --jobs-scale 0.05 --runs 1   # a quick look at 5% of the jobs
//! cargo bench --profile dev --bench e2e -- --jobs-scale 0.05 --runs 1   # against the debug build
//! ```
//!
//! Prints one table row per measurement (medians over `--runs`, with min and
//! max), then every target with its number and whether it was met, and
//! writes both to `BENCHMARKS.md` with the machine, date, command, commit and
//! build profile. `--help` lists the options; the scenarios are described in
//! [`Id::about`].
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it makes a smoke
//! run instead: S1 and S3 on 200 jobs at 0 ms latency, one run, no peers, and
//! it writes nothing, so the test suite exercises this code in seconds.
//!
//! Every wait is bounded (process start 60 s, each run a timeout derived from
//! its bound) and every child process is killed on every exit path
//! (`kill_on_drop` plus [`Proc`]'s `Drop`).

use std::fmt::Write as _;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::RecordBatch;
use arrow::ipc::writer::FileWriter;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightClient, FlightDescriptor, FlightInfo};
use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_sagemaker-flight");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TABLE: &str = "aws.sagemaker_compilation_job";
const SELECT_ALL: &str = "SELECT * FROM aws.sagemaker_compilation_job";
const S3_QUERY: &str = "SELECT compilation_job_name, compilation_job_status, creation_time \
     FROM aws.sagemaker_compilation_job WHERE compilation_job_status = 'FAILED' \
     AND creation_time >= now() - INTERVAL '30 days'";
/// `--concurrency` of the server in every scenario (calls in flight per
/// operation). At 64 the server used a third of the 2 cores in S1 and stayed
/// within 1.1 x its bound; 128 halves the bound and still leaves CPU idle.
const CONCURRENCY: u32 = 128;
/// Thread-pool size of the boto3 peer: its fastest measured setting (see
/// `benches/boto3_peer.py`).
const BOTO3_WORKERS: u32 = 64;
/// Rate limit of the emulator in S2, calls/s per operation.
const S2_RATE: f64 = 50.0;
/// MaxResults of the server's ListCompilationJobs pages.
const LIST_PAGE: usize = 100;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_MESSAGE: usize = 256 << 20;
const AWS_ENV: [(&str, &str); 6] = [
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
];

type Res<T> = Result<T, String>;

const USAGE: &str = "\
usage: cargo bench --bench e2e -- [OPTIONS]

  --scenario S1,S2,...  scenarios to run (S1 S2 S3 S4 S5 S6 M; default: all)
  --runs N              runs per scenario, medians reported (default 3)
  --s2-runs N           runs of S2 only (~200 s each at full size; default: --runs)
  --jobs-scale F        multiply every job count by F (e.g. 0.05 for a quick look)
  --no-peers            skip the Python peers (boto3, pyarrow)
  --output PATH         where to write the report (default: BENCHMARKS.md in the crate)
  --no-write            print only, write no report
  --help                this text";

// ---------------------------------------------------------------------------
// Options

/// A scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Id {
    S1,
    S2,
    S3,
    S4,
    S5,
    S6,
    M,
}

impl Id {
    const ALL: [Id; 7] = [Id::S1, Id::S2, Id::S3, Id::S4, Id::S5, Id::S6, Id::M];

    fn name(self) -> &'static str {
        match self {
            Id::S1 => "S1",
            Id::S2 => "S2",
            Id::S3 => "S3",
            Id::S4 => "S4",
            Id::S5 => "S5",
            Id::S6 => "S6",
            Id::M => "M",
        }
    }

    fn parse(text: &str) -> Option<Id> {
        Id::ALL
            .into_iter()
            .find(|id| id.name().eq_ignore_ascii_case(text.trim()))
    }

    /// One paragraph for BENCHMARKS.md: what the scenario measures.
    fn about(self) -> &'static str {
        match self {
            Id::S1 => {
                "**S1, full scan.** `SELECT *` over 10,000 jobs at 25 ms per SageMaker call, \
                 no rate limit, `--concurrency 128`: one ListCompilationJobs listing plus a \
                 DescribeCompilationJob and a ListTags per job. The bound is the time the calls \
                 need at 128 in flight per operation (N x L / C) plus one round trip for the first \
                 page and the first Describe; wall/bound says how close the server comes to it. \
                 The boto3 peer (`benches/boto3_peer.py`: boto3 with a pool of 64 threads, its own \
                 timing) makes the same calls against the same emulator; peer/us is how many times \
                 faster the server is."
            }
            Id::S2 => {
                "**S2, under a rate limit.** The same scan with the emulator refusing more than \
                 50 calls/s per operation (`--rate-limit 50`, ThrottlingException beyond it). \
                 The server cannot beat N / 50 s; it should stay close to 50 successful \
                 Describe calls/s (the sustained rate, as % of the limit) without wasting many \
                 calls on throttling (throttled % of all calls)."
            }
            Id::S3 => {
                "**S3, pushdown.** `SELECT name, status, creation_time ... WHERE status = 'FAILED' \
                 AND creation_time >= now() - INTERVAL '30 days'`: only summary columns, so the \
                 server should call ListCompilationJobs only (StatusEquals and CreationTimeAfter \
                 pushed into the API), never Describe or ListTags. `List calls` is compared with \
                 the pages of 100 that the matching jobs fill."
            }
            Id::S4 => {
                "**S4, cache.** The server runs with `--cache-ttl 600`: one cold `SELECT *`, then \
                 `--runs` warm ones on the same server. The emulator's jobs never change, so a \
                 warm scan should list again but call Describe and ListTags for no job (target: \
                 0 in every warm run)."
            }
            Id::S5 => {
                "**S5, serving speed.** 200,000 jobs at 0 ms latency with `--cache-ttl 600` and \
                 `--snapshot-ttl 600`: after a cold scan, a warm plain Flight DoGet of the table (GetFlightInfo of the path \
                 descriptor, then DoGet of its ticket) from the server, against the same Arrow \
                 table (written by this harness to an IPC file from the rows of the cold scan) \
                 served by pyarrow's FlightServerBase (`benches/pyarrow_peer.py`) and read by \
                 the same Rust client. pyarrow/us >= 1 means the server streams its cache at \
                 least as fast as pyarrow streams a file. The server gets `--cache-max-jobs` = \
                 the job count so that the whole table fits in its cache and snapshot; a warm \
                 run that still calls SageMaker is flagged in the table."
            }
            Id::S6 => {
                "**S6, time to first batch.** `SELECT *` at 25 ms latency over 1,000 and 20,000 \
                 jobs: the first rows should arrive after a few round trips (target <= 100 ms = \
                 4 x latency) whatever the job count, since the server streams batches as the \
                 calls complete."
            }
            Id::M => {
                "**M, memory.** `SELECT *` over 100,000 jobs at 2 ms latency, no cache, \
                 `--concurrency 128`, streamed and dropped by the client. The server's peak \
                 resident set (`VmHWM` of its process) should stay under 200 MiB: it streams, \
                 it does not hold the table."
            }
        }
    }
}

struct Options {
    /// No `--bench` argument: the quick run of `cargo test --all-targets`.
    smoke: bool,
    scenarios: Vec<Id>,
    runs: usize,
    /// Runs of S2 (about 200 s each at full size).
    s2_runs: Option<usize>,
    jobs_scale: f64,
    peers: bool,
    output: Option<PathBuf>,
    /// The arguments as given after `--`, less `--bench`, for the report.
    user_args: Vec<String>,
}

/// `Ok(None)`: `--help` was printed.
fn parse_options() -> Res<Option<Options>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it (maybe with test-harness flags, all ignored).
    if !args.iter().any(|a| a == "--bench") {
        return Ok(Some(Options {
            smoke: true,
            scenarios: vec![Id::S1, Id::S3],
            runs: 1,
            s2_runs: None,
            jobs_scale: 1.0,
            peers: false,
            output: None,
            user_args: Vec::new(),
        }));
    }
    let mut options = Options {
        smoke: false,
        scenarios: Id::ALL.to_vec(),
        runs: 3,
        s2_runs: None,
        jobs_scale: 1.0,
        peers: true,
        output: Some(Path::new(ROOT).join("BENCHMARKS.md")),
        user_args: args.iter().filter(|a| *a != "--bench").cloned().collect(),
    };
    // `--flag=value` is `--flag value`.
    let mut words = Vec::new();
    for arg in &args {
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                words.push(flag.to_owned());
                words.push(value.to_owned());
            }
            _ => words.push(arg.clone()),
        }
    }
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let mut value = |what: &str| {
            words
                .next()
                .ok_or_else(|| format!("{word} needs a value ({what})"))
        };
        match word.as_str() {
            "--bench" => {}
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--scenario" | "--scenarios" => {
                let list = value("S1,S3,...")?;
                options.scenarios = list
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| Id::parse(s).ok_or_else(|| format!("unknown scenario {s:?}")))
                    .collect::<Res<_>>()?;
                if options.scenarios.is_empty() {
                    return Err("--scenario names no scenario".into());
                }
            }
            "--runs" => {
                let text = value("a count")?;
                options.runs = text
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("--runs {text}: expected a count >= 1"))?;
            }
            "--s2-runs" => {
                let text = value("a count")?;
                options.s2_runs = Some(
                    text.parse()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| format!("--s2-runs {text}: expected a count >= 1"))?,
                );
            }
            "--jobs-scale" => {
                let text = value("a factor")?;
                options.jobs_scale = text
                    .parse()
                    .ok()
                    .filter(|f: &f64| *f > 0.0 && f.is_finite())
                    .ok_or_else(|| format!("--jobs-scale {text}: expected a factor > 0"))?;
            }
            "--no-peers" => options.peers = false,
            "--output" => options.output = Some(PathBuf::from(value("a path")?)),
            "--no-write" => options.output = None,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            // A positional argument (a cargo bench filter): not ours.
            _ => {}
        }
    }
    Ok(Some(options))
}

// ---------------------------------------------------------------------------
// Child processes

static LOGS: AtomicUsize = AtomicUsize::new(0);

/// A child process, killed when dropped. Its stderr goes to a log file whose
/// tail is shown when it fails.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `program args` and waits (at most 60 s) for the stdout line
    /// containing `marker`; returns the process and the rest of that line.
    async fn start(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        marker: &str,
        workdir: &Path,
    ) -> Res<(Proc, String)> {
        let n = LOGS.fetch_add(1, Ordering::Relaxed);
        let log = workdir.join(format!("{n:02}-{}.log", name.replace(' ', "_")));
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = clean_command(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let proc = Proc {
            name: name.to_owned(),
            child,
            log,
        };
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split(marker).nth(1) {
                    return Some(rest.trim().to_owned());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(address)) => {
                // Keep reading stdout so that the child never blocks on it.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok((proc, address))
            }
            Ok(None) => Err(format!(
                "{name} exited without printing {marker:?}{}",
                proc.log_tail()
            )),
            Err(_) => Err(format!(
                "{name} did not print {marker:?} within {} s{}",
                START_TIMEOUT.as_secs(),
                proc.log_tail()
            )),
        }
    }

    /// An error if the process has exited.
    fn check_alive(&mut self) -> Res<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}){}",
                self.name,
                self.log_tail()
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// Peak resident set size (`VmHWM`) in MiB, from /proc.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// The last lines of its stderr, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n    ");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends:\n    {tail}")
        }
    }
}

/// A command without the caller's `SAGEMAKER_FLIGHT_*` and `AWS_*`
/// variables, which would change what the processes do.
fn clean_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("SAGEMAKER_FLIGHT_") || key_text.starts_with("AWS_") {
            command.env_remove(&key);
        }
    }
    command
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A temporary directory (logs, the IPC file of S5), removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Res<WorkDir> {
        let path =
            std::env::temp_dir().join(format!("sagemaker-flight-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running emulator process and its URL.
struct Emulator {
    /// Held so that the process lives as long as this value (killed on drop).
    _proc: Proc,
    url: String,
}

impl Emulator {
    async fn reset(&self) -> Res<()> {
        http_json("POST", &format!("{}/_emulator/reset", self.url))
            .await
            .map(drop)
    }

    async fn calls(&self) -> Res<Calls> {
        let stats = http_json("GET", &format!("{}/_emulator/stats", self.url)).await?;
        Ok(Calls::from_stats(&stats))
    }
}

/// A minimal HTTP/1.1 request on loopback with an empty body, answering JSON.
async fn http_json(method: &str, url: &str) -> Res<Value> {
    let exchange = async {
        let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
        let (host, path) = rest.split_once('/').ok_or("no path")?;
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let (head, body) = response.split_once("\r\n\r\n").ok_or("no body")?;
        if head.split_whitespace().nth(1) != Some("200") {
            return Err(format!("answered {}", head.lines().next().unwrap_or("")));
        }
        serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))
    };
    match tokio::time::timeout(HTTP_TIMEOUT, exchange).await {
        Ok(result) => result.map_err(|e: String| format!("{method} {url}: {e}")),
        Err(_) => Err(format!("{method} {url}: no answer within 10 s")),
    }
}

// ---------------------------------------------------------------------------
// Measurements

/// SageMaker calls of one run, from the emulator's stats.
#[derive(Clone, Debug, Default)]
struct Calls {
    list: u64,
    describe: u64,
    tags: u64,
    /// Describe calls answered normally (neither throttled nor 5xx).
    describe_ok: u64,
    /// Throttled calls, all operations.
    throttled: u64,
    /// Calls, all operations.
    total: u64,
}

impl Calls {
    fn from_stats(stats: &Value) -> Calls {
        let field = |op: &str, name: &str| stats["operations"][op][name].as_u64().unwrap_or(0);
        let ops = stats["operations"].as_object();
        let sum = |name: &str| {
            ops.map_or(0, |ops| {
                ops.values()
                    .map(|o| o[name].as_u64().unwrap_or(0))
                    .sum::<u64>()
            })
        };
        let describe = "DescribeCompilationJob";
        Calls {
            list: field("ListCompilationJobs", "calls"),
            describe: field(describe, "calls"),
            tags: field("ListTags", "calls"),
            describe_ok: field(describe, "calls")
                .saturating_sub(field(describe, "throttled") + field(describe, "server_errors")),
            throttled: sum("throttled"),
            total: sum("calls"),
        }
    }

    /// Field-wise median.
    fn median(all: &[Calls]) -> Calls {
        let of = |f: fn(&Calls) -> u64| {
            let mut v: Vec<u64> = all.iter().map(f).collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        Calls {
            list: of(|c| c.list),
            describe: of(|c| c.describe),
            tags: of(|c| c.tags),
            describe_ok: of(|c| c.describe_ok),
            throttled: of(|c| c.throttled),
            total: of(|c| c.total),
        }
    }
}

/// One run of one query.
#[derive(Clone, Debug)]
struct Sample {
    wall: f64,
    first: Option<f64>,
    rows: usize,
    calls: Option<Calls>,
}

/// Counts rows and times batches; optionally writes them to an IPC file.
struct Tally<'a> {
    started: Instant,
    first: Option<f64>,
    rows: usize,
    sink: Option<&'a mut IpcSink>,
}

impl Tally<'_> {
    fn batch(&mut self, batch: &RecordBatch) -> Res<()> {
        self.first
            .get_or_insert_with(|| self.started.elapsed().as_secs_f64());
        self.rows += batch.num_rows();
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.write(batch)?;
        }
        Ok(())
    }

    fn finish(self) -> Sample {
        Sample {
            wall: self.started.elapsed().as_secs_f64(),
            first: self.first,
            rows: self.rows,
            calls: None,
        }
    }
}

/// The rows of a scan, written as an Arrow IPC file as they arrive.
struct IpcSink {
    path: PathBuf,
    writer: Option<FileWriter<BufWriter<std::fs::File>>>,
}

impl IpcSink {
    fn write(&mut self, batch: &RecordBatch) -> Res<()> {
        let error = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        if self.writer.is_none() {
            let file = std::fs::File::create(&self.path).map_err(|e| error(&e))?;
            let writer = FileWriter::try_new(BufWriter::new(file), &batch.schema())
                .map_err(|e| error(&e))?;
            self.writer = Some(writer);
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.write(batch).map_err(|e| format!("IPC write: {e}"))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Res<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.finish().map_err(|e| format!("IPC finish: {e}")),
            None => Err("the scan gave no batch to write".into()),
        }
    }
}

async fn flight_service(url: &str) -> Res<FlightServiceClient<Channel>> {
    let endpoint = Channel::from_shared(url.to_owned())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(HTTP_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(FlightServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// A Flight SQL query: `execute()`, then DoGet of every endpoint.
async fn sql_query(url: &str, sql: &str) -> Res<Sample> {
    let mut client = FlightSqlServiceClient::new_from_inner(flight_service(url).await?);
    let mut tally = Tally {
        started: Instant::now(),
        first: None,
        rows: 0,
        sink: None,
    };
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .map_err(|e| format!("execute: {e}"))?;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let mut stream = client
            .do_get(ticket)
            .await
            .map_err(|e| format!("do_get: {e}"))?;
        while let Some(batch) = stream.next().await {
            tally.batch(&batch.map_err(|e| format!("stream: {e}"))?)?;
        }
    }
    Ok(tally.finish())
}

/// A plain Flight read: GetFlightInfo of the table's path descriptor, then
/// DoGet of every endpoint's ticket.
async fn flight_scan(url: &str, sink: Option<&mut IpcSink>) -> Res<Sample> {
    let mut client = FlightClient::new_from_inner(flight_service(url).await?);
    let mut tally = Tally {
        started: Instant::now(),
        first: None,
        rows: 0,
        sink,
    };
    let info: FlightInfo = client
        .get_flight_info(FlightDescriptor::new_path(vec![TABLE.into()]))
        .await
        .map_err(|e| format!("get_flight_info: {e}"))?;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let mut stream = client
            .do_get(ticket)
            .await
            .map_err(|e| format!("do_get: {e}"))?;
        while let Some(batch) = stream.next().await {
            tally.batch(&batch.map_err(|e| format!("stream: {e}"))?)?;
        }
    }
    Ok(tally.finish())
}

/// What one run reads.
enum Read<'a> {
    Sql(&'a str),
    Flight(Option<&'a mut IpcSink>),
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------
// Report

/// One measured configuration: a line of the table.
#[derive(Default)]
struct Row {
    label: String,
    setup: String,
    samples: Vec<Sample>,
    rss_mib: Option<f64>,
    bound: Option<f64>,
    extra: Vec<String>,
    targets: Vec<Target>,
    error: Option<String>,
}

impl Row {
    fn wall(&self) -> Option<f64> {
        let walls: Vec<f64> = self.samples.iter().map(|s| s.wall).collect();
        (!walls.is_empty()).then(|| median(&walls))
    }

    fn first(&self) -> Option<f64> {
        let firsts: Vec<f64> = self.samples.iter().filter_map(|s| s.first).collect();
        (!firsts.is_empty()).then(|| median(&firsts))
    }

    fn calls(&self) -> Option<Calls> {
        let all: Vec<Calls> = self
            .samples
            .iter()
            .filter_map(|s| s.calls.clone())
            .collect();
        (!all.is_empty()).then(|| Calls::median(&all))
    }

    fn rows(&self) -> Option<usize> {
        self.samples.last().map(|s| s.rows)
    }
}

/// A target, its number and whether it was met (`None`: not measured).
struct Target {
    scenario: String,
    goal: String,
    measured: String,
    /// The number and the goal in a few words, for the results table.
    short: String,
    met: Option<bool>,
}

impl Target {
    fn new(
        scenario: &str,
        goal: &str,
        measured: String,
        short: String,
        met: Option<bool>,
    ) -> Target {
        Target {
            scenario: scenario.to_owned(),
            goal: goal.to_owned(),
            measured,
            short,
            met,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "not measured",
        }
    }
}

/// Two decimals, or three significant digits below 0.1 (0.0471, not 0.05).
fn fmt_ratio(r: f64) -> String {
    if r.is_finite() && r.abs() < 0.1 && r != 0.0 {
        let digits = (2 - r.abs().log10().floor() as i64).clamp(2, 8) as usize;
        format!("{r:.digits$}")
    } else {
        format!("{r:.2}")
    }
}

fn secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const COLUMNS: [&str; 13] = [
    "scenario",
    "setup",
    "rows",
    "wall, median (min-max)",
    "first batch",
    "rows/s",
    "calls List / Describe / ListTags",
    "throttled",
    "server peak RSS",
    "bound",
    "wall/bound",
    "other figures",
    "targets",
];

fn row_cells(row: &Row) -> Vec<String> {
    let dash = || "-".to_string();
    let wall = row.wall();
    let mut cells = vec![row.label.clone(), row.setup.clone()];
    cells.push(row.rows().map_or_else(dash, |r| thousands(r as u64)));
    cells.push(match wall {
        Some(w) if row.samples.len() > 1 => {
            let min = row
                .samples
                .iter()
                .map(|s| s.wall)
                .fold(f64::INFINITY, f64::min);
            let max = row.samples.iter().map(|s| s.wall).fold(0.0, f64::max);
            format!("{} ({}-{})", secs(w), secs(min), secs(max))
        }
        Some(w) => secs(w),
        None => dash(),
    });
    cells.push(row.first().map_or_else(dash, secs));
    cells.push(match (wall, row.rows()) {
        (Some(w), Some(r)) if w > 0.0 => thousands((r as f64 / w).round() as u64),
        _ => dash(),
    });
    let calls = row.calls();
    cells.push(calls.as_ref().map_or_else(dash, |c| {
        format!(
            "{} / {} / {}",
            thousands(c.list),
            thousands(c.describe),
            thousands(c.tags)
        )
    }));
    cells.push(calls.map_or_else(dash, |c| thousands(c.throttled)));
    cells.push(row.rss_mib.map_or_else(dash, |m| format!("{m:.0} MiB")));
    cells.push(row.bound.map_or_else(dash, secs));
    cells.push(match (wall, row.bound) {
        (Some(w), Some(b)) if b > 0.0 => format!("{:.2}", w / b),
        _ => dash(),
    });
    let mut extra = row.extra.join("; ");
    if let Some(error) = &row.error {
        if !extra.is_empty() {
            extra.push_str("; ");
        }
        extra.push_str("FAILED: ");
        extra.push_str(error.lines().next().unwrap_or(""));
    }
    cells.push(if extra.is_empty() { dash() } else { extra });
    let targets: Vec<String> = row
        .targets
        .iter()
        .map(|t| format!("{}: {}", t.short, t.verdict()))
        .collect();
    cells.push(if targets.is_empty() {
        dash()
    } else {
        targets.join("; ")
    });
    cells
}

/// A markdown table with padded columns, readable as plain text too.
fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(widths.iter().map(|&w| "-".repeat(w)).collect()));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn results_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
    markdown_table(&COLUMNS, &cells)
}

fn targets_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .flat_map(|r| &r.targets)
        .map(|t| {
            vec![
                t.scenario.clone(),
                t.goal.clone(),
                t.measured.clone(),
                t.verdict().to_string(),
            ]
        })
        .collect();
    markdown_table(&["scenario", "target", "measured", "met"], &cells)
}

// ---------------------------------------------------------------------------
// The machine and the build, for the report's header

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn machine() -> String {
    let uname = command_output("uname", &["-srm"]).unwrap_or_else(|| "unknown OS".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = command_output("nproc", &[]).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or("?".into(), |n| n.to_string())
    });
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{uname}; {cpu}; nproc {cpus}; MemTotal {memory}")
}

fn commit() -> String {
    let head = command_output("git", &["rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown (not a git checkout)".into());
    match command_output("git", &["status", "--porcelain", "--untracked-files=no"]) {
        Some(_) => format!("`{head}` with uncommitted changes"),
        None => format!("`{head}`"),
    }
}

/// The directory of the binary under `target/` names its profile.
fn profile_dir() -> String {
    Path::new(BINARY)
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned())
}

fn profile() -> String {
    match profile_dir().as_str() {
        "release" => "bench (release-derived: optimized, no debug assertions)".into(),
        "debug" => "dev (unoptimized debug build: figures are NOT representative)".into(),
        other => format!("{other} (custom profile)"),
    }
}

fn command_line(options: &Options) -> String {
    let quote = |a: &String| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$*?;&|<>()".contains(c)) {
            format!("'{}'", a.replace('\'', "'\\''"))
        } else {
            a.clone()
        }
    };
    let mut line = String::from("cargo bench");
    match profile_dir().as_str() {
        "release" => {}
        "debug" => line.push_str(" --profile dev"),
        other => {
            let _ = write!(line, " --profile {other}");
        }
    }
    line.push_str(" --bench e2e");
    if !options.user_args.is_empty() {
        line.push_str(" --");
        for arg in &options.user_args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
    }
    line
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    // The SDK's DateTime already formats RFC 3339; minutes are enough here.
    let now = aws_smithy_types::DateTime::from(SystemTime::now());
    let text = now
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    format!("{} UTC", text.get(..16).unwrap_or(&text).replace('T', " "))
}

// ---------------------------------------------------------------------------
// Scenarios

/// The emulator and server knobs of a measurement.
#[derive(Clone, Copy)]
struct Setup {
    jobs: usize,
    latency_ms: u64,
    rate_limit: Option<f64>,
    cache_ttl: u64,
    /// `--snapshot-ttl`: every query within it is answered from the last
    /// complete `SELECT *`, with no call.
    snapshot_ttl: u64,
}

impl Setup {
    /// `max(N/R, N*L/C)` plus one round (the first List page and the first
    /// Describe, one latency each), in seconds.
    fn bound(&self) -> f64 {
        let n = self.jobs as f64;
        let latency = self.latency_ms as f64 / 1000.0;
        let by_rate = self.rate_limit.map_or(0.0, |r| n / r);
        by_rate.max(n * latency / f64::from(CONCURRENCY)) + 2.0 * latency
    }

    /// Generous: 2 minutes, plus 4 bounds, plus 2 ms a job (debug builds).
    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(120.0 + 4.0 * self.bound() + 0.002 * self.jobs as f64)
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{} jobs, {} ms, C={CONCURRENCY}",
            thousands(self.jobs as u64),
            self.latency_ms
        );
        if let Some(rate) = self.rate_limit {
            let _ = write!(text, ", rate {rate}/s");
        }
        if self.cache_ttl > 0 {
            let _ = write!(text, ", cache {} s", self.cache_ttl);
        }
        if self.snapshot_ttl > 0 {
            let _ = write!(text, ", snapshot {} s", self.snapshot_ttl);
        }
        text
    }
}

/// What `serve --help` of this build offers.
struct ServerFlags {
    cache_ttl: bool,
    cache_max_jobs: bool,
    snapshot_ttl: bool,
}

/// A Python peer: the venv's interpreter and the script, or why not.
type Peer = Result<(PathBuf, PathBuf), String>;

fn find_peer(enabled: bool, script: &str) -> Peer {
    if !enabled {
        return Err("peers not requested".into());
    }
    let python = Path::new(ROOT).join(".venv/bin/python");
    let script = Path::new(ROOT).join("benches").join(script);
    if !python.exists() {
        Err(format!(
            "{} not found (scripts/test creates the venv)",
            python.display()
        ))
    } else if !script.exists() {
        Err(format!("{} not found", script.display()))
    } else {
        Ok((python, script))
    }
}

struct Bench {
    options: Options,
    workdir: WorkDir,
    flags: ServerFlags,
    boto3: Peer,
    pyarrow: Peer,
    /// How busy the CPUs were with other work just before each scenario
    /// (0..=1), when none of its processes run yet.
    busy: Vec<(Id, f64)>,
    /// The scenario running now.
    current: Id,
    /// The emulator and server command lines each scenario used.
    launched: std::sync::Mutex<Vec<(Id, String)>>,
    /// `git rev-parse --short HEAD` when the run started.
    commit: String,
    rows: Vec<Row>,
}

impl Bench {
    fn jobs(&self, n: usize) -> usize {
        if self.options.smoke {
            200
        } else {
            ((n as f64 * self.options.jobs_scale).round() as usize).max(1)
        }
    }

    fn latency(&self, ms: u64) -> u64 {
        if self.options.smoke { 0 } else { ms }
    }

    fn setup(&self, jobs: usize, latency_ms: u64) -> Setup {
        Setup {
            jobs: self.jobs(jobs),
            latency_ms: self.latency(latency_ms),
            rate_limit: None,
            cache_ttl: 0,
            snapshot_ttl: 0,
        }
    }

    /// Remembers `sagemaker-flight ARGS` for the report (URLs as `URL`).
    fn launched(&self, args: &[String]) {
        let words: Vec<&str> = args
            .iter()
            .map(|a| if a.starts_with("http://") { "URL" } else { a })
            .collect();
        let line = format!("sagemaker-flight {}", words.join(" "));
        let entry = (self.current, line);
        let mut launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
        if !launched.contains(&entry) {
            launched.push(entry);
        }
    }

    async fn emulator(&self, setup: &Setup) -> Res<Emulator> {
        let mut args: Vec<String> = [
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "1",
            "--jobs",
            &setup.jobs.to_string(),
            "--latency-ms",
            &setup.latency_ms.to_string(),
        ]
        .map(String::from)
        .to_vec();
        if let Some(rate) = setup.rate_limit {
            args.extend(["--rate-limit".into(), rate.to_string()]);
        }
        self.launched(&args);
        let (proc, url) = Proc::start(
            "emulator",
            Path::new(BINARY),
            &args,
            &[("RUST_LOG", "warn")],
            "emulator listening on ",
            &self.workdir.0,
        )
        .await?;
        if !url.starts_with("http://127.0.0.1:") {
            return Err(format!("the emulator is at {url}, not on 127.0.0.1"));
        }
        Ok(Emulator { _proc: proc, url })
    }

    /// A fresh server process on `emulator`; returns it and its http:// URL.
    async fn server(&self, setup: &Setup, emulator: &Emulator) -> Res<(Proc, String)> {
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--endpoint-url",
            &emulator.url,
            "--concurrency",
            &CONCURRENCY.to_string(),
        ]
        .map(String::from)
        .to_vec();
        if self.flags.cache_ttl {
            // Explicit even when 0, whatever the default.
            args.extend(["--cache-ttl".into(), setup.cache_ttl.to_string()]);
        }
        if setup.snapshot_ttl > 0 && self.flags.snapshot_ttl {
            args.extend(["--snapshot-ttl".into(), setup.snapshot_ttl.to_string()]);
        }
        if setup.cache_ttl > 0 && self.flags.cache_max_jobs {
            // Room for every job, so that a warm scan is served from the
            // cache and the snapshot (the default holds fewer jobs than S5 has).
            args.extend(["--cache-max-jobs".into(), setup.jobs.to_string()]);
        }
        self.launched(&args);
        let mut envs: Vec<(&str, &str)> = AWS_ENV.to_vec();
        envs.push(("RUST_LOG", "warn"));
        let (proc, url) = Proc::start(
            "server",
            Path::new(BINARY),
            &args,
            &envs,
            "sagemaker-flight listening on ",
            &self.workdir.0,
        )
        .await?;
        let url = url.replace("grpc://", "http://");
        if !url.starts_with("http://127.0.0.1:") {
            return Err(format!("the server is at {url}, not on 127.0.0.1"));
        }
        Ok((proc, url))
    }

    /// One run: reset the emulator's counters, read, collect the counters.
    async fn sample(
        &self,
        label: &str,
        setup: &Setup,
        emulator: Option<&Emulator>,
        server: &mut Proc,
        url: &str,
        read: Read<'_>,
    ) -> Res<Sample> {
        if let Some(emulator) = emulator {
            emulator.reset().await?;
        }
        let timeout = setup.timeout();
        let result = match read {
            Read::Sql(sql) => tokio::time::timeout(timeout, sql_query(url, sql)).await,
            Read::Flight(sink) => tokio::time::timeout(timeout, flight_scan(url, sink)).await,
        };
        let mut sample = match result {
            Ok(Ok(sample)) => sample,
            Ok(Err(e)) => {
                server.check_alive()?;
                return Err(format!("{label}: {e}"));
            }
            Err(_) => return Err(format!("{label}: no answer within {:.0?}", timeout)),
        };
        if let Some(emulator) = emulator {
            sample.calls = Some(emulator.calls().await?);
        }
        let mut line = format!(
            "  {label}: wall {}, first batch {}, {} rows",
            secs(sample.wall),
            sample.first.map_or_else(|| "-".into(), secs),
            sample.rows
        );
        if let Some(c) = &sample.calls {
            let _ = write!(
                line,
                ", calls List {} / Describe {} / ListTags {}, throttled {}",
                c.list, c.describe, c.tags, c.throttled
            );
        }
        println!("{line}");
        Ok(sample)
    }

    /// `--runs` runs of `sql`, each expected to give `rows` rows if given.
    #[allow(clippy::too_many_arguments)]
    async fn repeat(
        &self,
        label: &str,
        setup: &Setup,
        emulator: &Emulator,
        server: &mut Proc,
        url: &str,
        sql: &str,
        rows: Option<usize>,
        runs: usize,
    ) -> Res<Vec<Sample>> {
        let mut samples = Vec::new();
        for run in 1..=runs {
            let name = format!("{label} run {run}/{runs}");
            let sample = self
                .sample(&name, setup, Some(emulator), server, url, Read::Sql(sql))
                .await?;
            if let Some(expected) = rows.filter(|&r| r != sample.rows) {
                return Err(format!("{name}: {} rows, expected {expected}", sample.rows));
            }
            samples.push(sample);
        }
        Ok(samples)
    }

    /// Starts the pair, runs `SELECT *` `--runs` times, returns the row.
    async fn select_all(&self, label: &str, setup: &Setup, runs: usize) -> Res<Row> {
        let emulator = self.emulator(setup).await?;
        self.select_all_on(&emulator, label, setup, runs).await
    }

    /// A fresh server on `emulator`, `SELECT *` `runs` times; the server
    /// stops when this returns.
    async fn select_all_on(
        &self,
        emulator: &Emulator,
        label: &str,
        setup: &Setup,
        runs: usize,
    ) -> Res<Row> {
        let (mut server, url) = self.server(setup, emulator).await?;
        let samples = self
            .repeat(
                label,
                setup,
                emulator,
                &mut server,
                &url,
                SELECT_ALL,
                Some(setup.jobs),
                runs,
            )
            .await?;
        Ok(Row {
            label: label.into(),
            setup: setup.describe(),
            samples,
            rss_mib: server.peak_rss_mib(),
            bound: Some(setup.bound()),
            ..Row::default()
        })
    }

    fn bound_target(&self, row: &mut Row, limit: f64) {
        if let (Some(wall), Some(bound)) = (row.wall(), row.bound)
            && bound > 0.0
        {
            let ratio = wall / bound;
            row.targets.push(Target::new(
                &row.label,
                &format!("wall/bound <= {limit}"),
                format!("{ratio:.2}"),
                format!("wall/bound {ratio:.2} <= {limit}"),
                Some(ratio <= limit),
            ));
        }
    }

    async fn s1(&mut self) -> Res<()> {
        let setup = self.setup(10_000, 25);
        // The server, then the peer, on the same emulator process.
        let emulator = self.emulator(&setup).await?;
        let mut row = self
            .select_all_on(&emulator, "S1", &setup, self.options.runs)
            .await?;
        self.bound_target(&mut row, 1.25);
        let ours = row.wall().unwrap_or(f64::NAN);
        let goal = "boto3 peer wall / our wall >= 5";
        match self.boto3_peer(&emulator, &setup).await {
            Ok(peer) => {
                let peer_wall = peer.wall().unwrap_or(f64::NAN);
                let ratio = peer_wall / ours;
                row.extra.push(format!(
                    "boto3 peer ({BOTO3_WORKERS} workers) {}, peer/us {ratio:.2}",
                    secs(peer_wall)
                ));
                row.targets.push(Target::new(
                    "S1",
                    goal,
                    format!("{ratio:.2}"),
                    format!("peer/us {ratio:.2} >= 5"),
                    Some(ratio >= 5.0),
                ));
                self.rows.push(row);
                self.rows.push(peer);
            }
            Err(why) => {
                println!("  S1: no boto3 peer: {why}");
                row.extra.push(format!("boto3 peer skipped: {why}"));
                row.targets.push(Target::new(
                    "S1",
                    goal,
                    "no peer".into(),
                    "peer/us >= 5".into(),
                    None,
                ));
                self.rows.push(row);
            }
        }
        Ok(())
    }

    /// The boto3 peer against `emulator`, `--runs` times.
    async fn boto3_peer(&self, emulator: &Emulator, setup: &Setup) -> Res<Row> {
        let (python, script) = self.boto3.clone()?;
        let mut samples = Vec::new();
        let runs = self.options.runs;
        for run in 1..=runs {
            emulator.reset().await?;
            let timeout =
                Duration::from_secs_f64(300.0 + 10.0 * setup.bound() + 0.01 * setup.jobs as f64);
            let output = clean_command(&python)
                .arg(&script)
                .args(["--endpoint", &emulator.url])
                .args(["--workers", &BOTO3_WORKERS.to_string()])
                .envs(AWS_ENV)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(timeout, output)
                .await
                .map_err(|_| format!("the boto3 peer took more than {timeout:.0?}"))?
                .map_err(|e| format!("cannot run the boto3 peer: {e}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() {
                let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                return Err(format!(
                    "the boto3 peer failed ({}): {}",
                    output.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ));
            }
            let answer: Value = stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                .filter(|v| v.get("wall_s").is_some())
                .ok_or_else(|| format!("the boto3 peer printed no JSON line: {stdout:?}"))?;
            let rows = answer["rows"].as_u64().unwrap_or(0) as usize;
            let wall = answer["wall_s"]
                .as_f64()
                .ok_or("the boto3 peer's wall_s is not a number")?;
            if rows != setup.jobs {
                return Err(format!(
                    "the boto3 peer read {rows} rows, expected {}",
                    setup.jobs
                ));
            }
            let calls = emulator.calls().await?;
            println!(
                "  S1 boto3 peer run {run}/{runs}: wall {}, {rows} rows, calls List {} / Describe {} / ListTags {}",
                secs(wall),
                calls.list,
                calls.describe,
                calls.tags
            );
            samples.push(Sample {
                wall,
                first: None,
                rows,
                calls: Some(calls),
            });
        }
        Ok(Row {
            label: "S1 boto3 peer".into(),
            setup: format!(
                "{} jobs, {} ms, {BOTO3_WORKERS} threads",
                thousands(setup.jobs as u64),
                setup.latency_ms
            ),
            samples,
            bound: Some(setup.bound()),
            extra: vec!["wall as timed by the peer itself".into()],
            ..Row::default()
        })
    }

    async fn s2(&mut self) -> Res<()> {
        let setup = Setup {
            rate_limit: Some(S2_RATE),
            ..self.setup(10_000, 25)
        };
        let runs = self.options.s2_runs.unwrap_or(self.options.runs);
        let mut row = self.select_all("S2", &setup, runs).await?;
        let wall = row.wall().unwrap_or(f64::NAN);
        let calls = row.calls().unwrap_or_default();
        let rate = calls.describe_ok as f64 / wall;
        let share = 100.0 * rate / S2_RATE;
        let throttled = 100.0 * calls.throttled as f64 / calls.total.max(1) as f64;
        row.extra.push(format!(
            "{rate:.1} successful Describe/s = {share:.0}% of {S2_RATE}/s; throttled {throttled:.1}% of {} calls",
            thousands(calls.total)
        ));
        row.targets.push(Target::new(
            "S2",
            "sustained Describe rate >= 90% of the limit",
            format!("{share:.1}%"),
            format!("Describe rate {share:.0}% >= 90%"),
            Some(share >= 90.0),
        ));
        row.targets.push(Target::new(
            "S2",
            "throttled calls <= 5% of calls",
            format!("{throttled:.2}%"),
            format!("throttled {throttled:.1}% <= 5%"),
            Some(throttled <= 5.0),
        ));
        self.rows.push(row);
        Ok(())
    }

    async fn s3(&mut self) -> Res<()> {
        let setup = self.setup(10_000, 25);
        let emulator = self.emulator(&setup).await?;
        let (mut server, url) = self.server(&setup, &emulator).await?;
        let samples = self
            .repeat(
                "S3",
                &setup,
                &emulator,
                &mut server,
                &url,
                S3_QUERY,
                None,
                self.options.runs,
            )
            .await?;
        let mut row = Row {
            label: "S3".into(),
            setup: setup.describe(),
            samples,
            rss_mib: server.peak_rss_mib(),
            ..Row::default()
        };
        let matches = row.rows().unwrap_or(0);
        let calls = row.calls().unwrap_or_default();
        let pages = matches.div_ceil(LIST_PAGE);
        row.extra.push(format!(
            "{matches} matching jobs fill {pages} page(s) of {LIST_PAGE}; {} List call(s) made",
            calls.list
        ));
        row.targets.push(Target::new(
            "S3",
            "ListCompilationJobs only (0 Describe, 0 ListTags)",
            format!(
                "List {}, Describe {}, ListTags {}",
                calls.list, calls.describe, calls.tags
            ),
            format!("Describe + ListTags {} = 0", calls.describe + calls.tags),
            Some(calls.describe == 0 && calls.tags == 0),
        ));
        self.rows.push(row);
        Ok(())
    }

    async fn s4(&mut self) -> Res<()> {
        let setup = Setup {
            cache_ttl: 600,
            ..self.setup(10_000, 25)
        };
        let emulator = self.emulator(&setup).await?;
        let (mut server, url) = self.server(&setup, &emulator).await?;
        let note = (!self.flags.cache_ttl)
            .then(|| "this server has no --cache-ttl: nothing is cached".to_string());
        if let Some(note) = &note {
            println!("  S4: {note}");
        }
        let cold = self
            .repeat(
                "S4 cold",
                &setup,
                &emulator,
                &mut server,
                &url,
                SELECT_ALL,
                Some(setup.jobs),
                1,
            )
            .await?;
        let cold = Row {
            label: "S4 cold".into(),
            setup: setup.describe(),
            samples: cold,
            rss_mib: server.peak_rss_mib(),
            bound: Some(setup.bound()),
            extra: note.iter().cloned().collect(),
            ..Row::default()
        };
        self.rows.push(cold);
        let warm = self
            .repeat(
                "S4 warm",
                &setup,
                &emulator,
                &mut server,
                &url,
                SELECT_ALL,
                Some(setup.jobs),
                self.options.runs,
            )
            .await?;
        let mut warm = Row {
            label: "S4 warm".into(),
            setup: setup.describe(),
            samples: warm,
            rss_mib: server.peak_rss_mib(),
            bound: Some(setup.bound()),
            extra: note.into_iter().collect(),
            ..Row::default()
        };
        let worst = |f: fn(&Calls) -> u64| {
            warm.samples
                .iter()
                .filter_map(|s| s.calls.as_ref().map(f))
                .max()
                .unwrap_or(0)
        };
        let (describe, tags) = (worst(|c| c.describe), worst(|c| c.tags));
        warm.targets.push(Target::new(
            "S4",
            "warm runs: 0 Describe and 0 ListTags (jobs unchanged)",
            format!("Describe {describe}, ListTags {tags} (most in one warm run)"),
            format!("warm Describe {describe}, ListTags {tags} = 0"),
            Some(describe == 0 && tags == 0),
        ));
        self.rows.push(warm);
        Ok(())
    }

    async fn s5(&mut self) -> Res<()> {
        let setup = Setup {
            cache_ttl: 600,
            snapshot_ttl: 600,
            ..self.setup(200_000, 0)
        };
        let runs = self.options.runs;
        let mut sink = IpcSink {
            path: self.workdir.0.join("s5.arrow"),
            writer: None,
        };
        let (mut ours, cold) = {
            let emulator = self.emulator(&setup).await?;
            let (mut server, url) = self.server(&setup, &emulator).await?;
            let cold = self
                .sample(
                    "S5 cold (ours, written to IPC)",
                    &setup,
                    Some(&emulator),
                    &mut server,
                    &url,
                    Read::Flight(Some(&mut sink)),
                )
                .await?;
            sink.finish()?;
            if cold.rows != setup.jobs {
                return Err(format!(
                    "S5 cold: {} rows, expected {}",
                    cold.rows, setup.jobs
                ));
            }
            let mut samples = Vec::new();
            for run in 1..=runs {
                let sample = self
                    .sample(
                        &format!("S5 warm (ours) run {run}/{runs}"),
                        &setup,
                        Some(&emulator),
                        &mut server,
                        &url,
                        Read::Flight(None),
                    )
                    .await?;
                if sample.rows != setup.jobs {
                    return Err(format!("S5 warm: {} rows", sample.rows));
                }
                samples.push(sample);
            }
            let mut row = Row {
                label: "S5 warm, ours".into(),
                setup: setup.describe(),
                samples,
                rss_mib: server.peak_rss_mib(),
                bound: Some(setup.bound()),
                extra: vec![format!("plain Flight DoGet; cold scan {}", secs(cold.wall))],
                ..Row::default()
            };
            // A warm scan that calls Describe was not served from the cache,
            // and the comparison below is not the one intended: say so.
            let described = row
                .samples
                .iter()
                .filter_map(|s| s.calls.as_ref())
                .map(|c| c.list + c.describe + c.tags)
                .max()
                .unwrap_or(0);
            if described > 0 {
                let warning = format!(
                    "NOT served from the snapshot: a warm run made {} SageMaker calls",
                    thousands(described)
                );
                println!("  S5 warning: {warning}");
                row.extra.push(warning);
            }
            (row, cold)
            // The emulator and the server stop here, before the peer starts.
        };
        let goal = "pyarrow wall / our wall >= 1";
        let peer = match self.pyarrow.clone() {
            Err(why) => Err(why),
            Ok((python, script)) => self
                .pyarrow_peer(&setup, &python, &script, &sink.path, cold.rows)
                .await
                .map_err(|e| format!("the pyarrow peer failed: {e}")),
        };
        match peer {
            Ok(peer) => {
                let ratio = peer.wall().unwrap_or(f64::NAN) / ours.wall().unwrap_or(f64::NAN);
                ours.extra.push(format!("pyarrow/us {}", fmt_ratio(ratio)));
                ours.targets.push(Target::new(
                    "S5",
                    goal,
                    fmt_ratio(ratio),
                    format!("pyarrow/us {} >= 1", fmt_ratio(ratio)),
                    Some(ratio >= 1.0),
                ));
                self.rows.push(ours);
                self.rows.push(peer);
            }
            Err(why) => {
                println!("  S5: no pyarrow peer: {why}");
                ours.extra.push(format!("pyarrow peer skipped: {why}"));
                ours.targets.push(Target::new(
                    "S5",
                    goal,
                    "no peer".into(),
                    "pyarrow/us >= 1".into(),
                    None,
                ));
                self.rows.push(ours);
            }
        }
        Ok(())
    }

    async fn pyarrow_peer(
        &self,
        setup: &Setup,
        python: &Path,
        script: &Path,
        arrow_file: &Path,
        rows: usize,
    ) -> Res<Row> {
        let args = vec![
            script.display().to_string(),
            "--arrow-file".into(),
            arrow_file.display().to_string(),
        ];
        let (mut peer, url) = Proc::start(
            "pyarrow peer",
            python,
            &args,
            &[("PYTHONUNBUFFERED", "1")],
            "listening on ",
            &self.workdir.0,
        )
        .await?;
        let url = url.replace("grpc://", "http://");
        if !url.starts_with("http://127.0.0.1:") {
            return Err(format!("the pyarrow peer is at {url}, not on 127.0.0.1"));
        }
        let runs = self.options.runs;
        let mut samples = Vec::new();
        for run in 1..=runs {
            let sample = self
                .sample(
                    &format!("S5 pyarrow peer run {run}/{runs}"),
                    setup,
                    None,
                    &mut peer,
                    &url,
                    Read::Flight(None),
                )
                .await?;
            if sample.rows != rows {
                return Err(format!("{} rows, expected {rows}", sample.rows));
            }
            samples.push(sample);
        }
        Ok(Row {
            label: "S5 pyarrow peer".into(),
            setup: format!("the same {} rows from an IPC file", thousands(rows as u64)),
            samples,
            extra: vec!["plain Flight DoGet".into()],
            ..Row::default()
        })
    }

    async fn s6(&mut self) -> Res<()> {
        let mut failure = None;
        for jobs in [1_000, 20_000] {
            let setup = self.setup(jobs, 25);
            let label = format!("S6 {}", thousands(setup.jobs as u64));
            match self.select_all(&label, &setup, self.options.runs).await {
                Ok(mut row) => {
                    let limit = 4.0 * setup.latency_ms as f64 / 1000.0;
                    let first = row.first();
                    row.targets.push(Target::new(
                        &label,
                        &format!("first batch <= {} (4 x latency)", secs(limit)),
                        first.map_or_else(|| "no batch".into(), secs),
                        format!(
                            "first batch {} <= {}",
                            first.map_or_else(|| "-".into(), secs),
                            secs(limit)
                        ),
                        first.map(|f| f <= limit),
                    ));
                    self.rows.push(row);
                }
                Err(e) => {
                    self.rows.push(Row {
                        label,
                        setup: setup.describe(),
                        error: Some(e.clone()),
                        ..Row::default()
                    });
                    failure = Some(e);
                }
            }
        }
        failure.map_or(Ok(()), |e| Err(format!("recorded: {e}")))
    }

    async fn m(&mut self) -> Res<()> {
        let setup = self.setup(100_000, 2);
        let mut row = self.select_all("M", &setup, self.options.runs).await?;
        row.targets.push(Target::new(
            "M",
            "server peak RSS < 200 MiB",
            row.rss_mib
                .map_or_else(|| "unreadable".into(), |m| format!("{m:.0} MiB")),
            format!(
                "RSS {} < 200 MiB",
                row.rss_mib
                    .map_or_else(|| "-".into(), |m| format!("{m:.0}"))
            ),
            row.rss_mib.map(|m| m < 200.0),
        ));
        self.rows.push(row);
        Ok(())
    }

    async fn run(&mut self, id: Id) -> Res<()> {
        match id {
            Id::S1 => self.s1().await,
            Id::S2 => self.s2().await,
            Id::S3 => self.s3().await,
            Id::S4 => self.s4().await,
            Id::S5 => self.s5().await,
            Id::S6 => self.s6().await,
            Id::M => self.m().await,
        }
    }

    fn markdown(&self, date: &str) -> String {
        let o = &self.options;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Benchmarks\n\n\
             End-to-end figures of `sagemaker-flight`, written by `cargo bench --bench e2e` \
             (`benches/e2e.rs`), which overwrites this file on every run. The emulator, the \
             server and the Python peers run as separate processes on 127.0.0.1, on the same \
             machine as the client (this harness), so they share its CPUs.\n"
        );
        let scale = if (o.jobs_scale - 1.0).abs() > f64::EPSILON {
            format!(
                " (job counts scaled by {}: not the scenarios' full size)",
                o.jobs_scale
            )
        } else {
            String::new()
        };
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| date | {date} |");
        let _ = writeln!(md, "| command | `{}` |", command_line(o));
        let _ = writeln!(md, "| commit | {} |", self.commit);
        let _ = writeln!(md, "| build profile | {} |", profile());
        let _ = writeln!(md, "| machine | {} |", machine());
        let s2 = match o.s2_runs {
            Some(n) if o.scenarios.contains(&Id::S2) => format!(" ({n} for S2)"),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "| runs | {} per scenario{s2}; medians, min-max in brackets{scale} |",
            o.runs
        );
        let busy: Vec<String> = self
            .busy
            .iter()
            .map(|(id, b)| format!("{} {:.0}%", id.name(), b * 100.0))
            .collect();
        let _ = writeln!(
            md,
            "| CPU busy with other work before each scenario | {} |",
            if busy.is_empty() {
                "unknown".into()
            } else {
                busy.join(", ")
            }
        );
        if !self.flags.cache_ttl {
            let _ = writeln!(
                md,
                "| note | this build's `serve` has no `--cache-ttl`: S4 and S5 ran uncached |"
            );
        }
        if let Some(warning) = busy_warning(&self.busy) {
            let _ = writeln!(md, "| **warning** | {warning} |");
        }
        md.push('\n');
        let _ = writeln!(md, "## Results\n\n{}", results_table(&self.rows));
        let _ = writeln!(
            md,
            "Columns: **wall** runs from the client's `execute()` (GetFlightInfo for plain \
             Flight) to the last batch, **first batch** to the first one. **Calls** are counted \
             by the emulator (every call, throttled ones included; medians over the runs). \
             **Server peak RSS** is `VmHWM` of the server process, started afresh for each \
             scenario. **Bound** is what the calls allow at best: `max(N / R, N x L / C) + 2 L` \
             for N jobs, latency L, C calls in flight per operation and a rate limit of R \
             calls/s per operation (none: N / R = 0); 2 L is the first List page and the first \
             Describe. Every server runs with `--concurrency {CONCURRENCY}`.\n"
        );
        let _ = writeln!(md, "## Targets\n\n{}", targets_table(&self.rows));
        let _ = writeln!(md, "## What each scenario measures\n");
        let _ = writeln!(
            md,
            "Under each, the processes it started (`URL` is the emulator's address; the server \
             also gets `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY=bench`, \
             `AWS_REGION=us-east-1`, `AWS_EC2_METADATA_DISABLED=true` and no AWS config \
             files).\n"
        );
        let launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
        for id in &o.scenarios {
            let _ = writeln!(md, "{}\n", id.about());
            let lines: Vec<&str> = launched
                .iter()
                .filter(|(of, _)| of == id)
                .map(|(_, line)| line.as_str())
                .collect();
            if !lines.is_empty() {
                let _ = writeln!(md, "```\n{}\n```\n", lines.join("\n"));
            }
        }
        let _ = writeln!(
            md,
            "## Running it\n\n\
             ```sh\n\
             cargo bench --bench e2e                                # every scenario, 3 runs (~30 min)\n\
             cargo bench --bench e2e -- --scenario S1,S3 --runs 1   # a subset\n\
             cargo bench --bench e2e -- --jobs-scale 0.05 --runs 1  # 5% of the jobs, a quick look\n\
             cargo bench --bench e2e -- --s2-runs 1                 # S2 once (~200 s a run)\n\
             cargo bench --bench e2e -- --help\n\
             ```\n\n\
             The peers need `.venv` (created by `scripts/test`); without it their columns are \
             skipped. `cargo test --all-targets` runs a smoke version (S1 and S3 on 200 jobs) \
             that writes nothing."
        );
        md
    }
}

/// (idle, total) jiffies of all CPUs, from /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((idle, fields.iter().sum()))
}

/// How busy the CPUs are now (0..=1): other work (a build, say) that
/// would slow the figures down. Sampled over one second.
async fn cpu_busy() -> Option<f64> {
    let (idle0, total0) = cpu_times()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle1, total1) = cpu_times()?;
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    Some(1.0 - idle1.saturating_sub(idle0) as f64 / total as f64)
}

fn busy_warning(busy: &[(Id, f64)]) -> Option<String> {
    let busy: Vec<String> = busy
        .iter()
        .filter(|(_, b)| *b > 0.25)
        .map(|(id, b)| format!("{} ({:.0}%)", id.name(), b * 100.0))
        .collect();
    (!busy.is_empty()).then(|| {
        format!(
            "the CPUs were busy with other work before {}: \
             expect slower figures there than on an idle machine",
            busy.join(", ")
        )
    })
}

async fn serve_flags() -> ServerFlags {
    let help = tokio::time::timeout(
        START_TIMEOUT,
        Command::new(BINARY)
            .args(["serve", "--help"])
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let text = match help {
        Ok(Ok(output)) => String::from_utf8_lossy(&output.stdout).into_owned(),
        _ => String::new(),
    };
    ServerFlags {
        cache_ttl: text.contains("--cache-ttl"),
        cache_max_jobs: text.contains("--cache-max-jobs"),
        snapshot_ttl: text.contains("--snapshot-ttl"),
    }
}

async fn run(options: Options) -> ExitCode {
    let workdir = match WorkDir::create() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("e2e: {e}");
            return ExitCode::FAILURE;
        }
    };
    let date = utc_now();
    let flags = serve_flags().await;
    let boto3 = find_peer(options.peers, "boto3_peer.py");
    let pyarrow = find_peer(options.peers, "pyarrow_peer.py");
    let mut bench = Bench {
        options,
        workdir,
        flags,
        boto3,
        pyarrow,
        busy: Vec::new(),
        current: Id::S1,
        launched: Default::default(),
        commit: commit(),
        rows: Vec::new(),
    };
    let o = &bench.options;
    println!(
        "e2e: {} with {}, {} run(s), scenarios {}{}",
        if o.smoke {
            "smoke run (no --bench)"
        } else {
            "benchmark"
        },
        BINARY,
        o.runs,
        o.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        if o.jobs_scale != 1.0 {
            format!(", jobs x {}", o.jobs_scale)
        } else {
            String::new()
        }
    );
    if !o.smoke {
        println!("build profile: {}", profile());
        for (name, peer) in [("boto3", &bench.boto3), ("pyarrow", &bench.pyarrow)] {
            if let Err(why) = peer {
                println!("skipping the {name} peer: {why}");
            }
        }
    }
    if !bench.flags.cache_ttl {
        println!("note: `serve --help` shows no --cache-ttl; S4 and S5 run uncached");
    }
    let mut failed = false;
    for id in bench.options.scenarios.clone() {
        println!("{}:", id.name());
        bench.current = id;
        if !bench.options.smoke
            && let Some(busy) = cpu_busy().await
        {
            bench.busy.push((id, busy));
            if busy > 0.25 {
                println!(
                    "  warning: the CPUs are {:.0}% busy with other work",
                    busy * 100.0
                );
            }
        }
        if let Err(e) = bench.run(id).await {
            failed = true;
            println!("  {} FAILED: {e}", id.name());
            if !e.starts_with("recorded: ") {
                bench.rows.push(Row {
                    label: id.name().into(),
                    error: Some(e),
                    ..Row::default()
                });
            }
        }
    }
    println!("\n{}", results_table(&bench.rows));
    println!("{}", targets_table(&bench.rows));
    if let Some(warning) = busy_warning(&bench.busy) {
        println!("warning: {warning}\n");
    }
    if let Some(path) = &bench.options.output {
        match std::fs::write(path, bench.markdown(&date)) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("e2e: cannot write {}: {e}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(Some(options)) => options,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("e2e: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C ends the run; dropping it kills every child process.
    let code = runtime.block_on(async {
        tokio::select! {
            code = run(options) => code,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("e2e: interrupted");
                ExitCode::from(130)
            }
        }
    });
    drop(runtime);
    code
}
