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
//!
//! This file holds the options, the scenarios and the run; `e2e/procs.rs`
//! the child processes, `e2e/measure.rs` the measurements, `e2e/report.rs`
//! the tables and the machine description.

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

// Under benches/e2e/, not benches/, so that cargo does not take them for
// benchmarks of their own.
#[path = "e2e/measure.rs"]
mod measure;
#[path = "e2e/procs.rs"]
mod procs;
#[path = "e2e/report.rs"]
mod report;
use measure::*;
use procs::*;
use report::*;

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

/// How a scenario's row is compared with a peer's.
struct PeerComparison {
    scenario: &'static str,
    /// The peer's name in notes ("boto3").
    peer: &'static str,
    goal: &'static str,
    /// The ratio's name in the short target text ("peer/us").
    ratio_name: &'static str,
    /// The least peer wall / our wall that meets the target.
    minimum: f64,
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
        let peer = self.boto3_peer(&emulator, &setup).await;
        self.compare_with_peer(
            row,
            peer,
            PeerComparison {
                scenario: "S1",
                peer: "boto3",
                goal: "boto3 peer wall / our wall >= 5",
                ratio_name: "peer/us",
                minimum: 5.0,
            },
            |peer_wall, ratio| {
                format!(
                    "boto3 peer ({BOTO3_WORKERS} workers) {}, peer/us {}",
                    secs(peer_wall),
                    fmt_ratio(ratio)
                )
            },
        );
        Ok(())
    }

    /// Adds to `ours` the target "peer wall / our wall >= minimum" (not
    /// measured when the peer did not run), with `describe(peer wall,
    /// ratio)` as a note, then records both rows.
    fn compare_with_peer(
        &mut self,
        mut ours: Row,
        peer: Res<Row>,
        how: PeerComparison,
        describe: impl FnOnce(f64, f64) -> String,
    ) {
        let PeerComparison {
            scenario,
            peer: name,
            goal,
            ratio_name,
            minimum,
        } = how;
        match peer {
            Ok(peer) => {
                let peer_wall = peer.wall().unwrap_or(f64::NAN);
                let ratio = peer_wall / ours.wall().unwrap_or(f64::NAN);
                ours.extra.push(describe(peer_wall, ratio));
                ours.targets.push(Target::new(
                    scenario,
                    goal,
                    fmt_ratio(ratio),
                    format!("{ratio_name} {} >= {minimum}", fmt_ratio(ratio)),
                    Some(ratio >= minimum),
                ));
                self.rows.push(ours);
                self.rows.push(peer);
            }
            Err(why) => {
                println!("  {scenario}: no {name} peer: {why}");
                ours.extra.push(format!("{name} peer skipped: {why}"));
                ours.targets.push(Target::new(
                    scenario,
                    goal,
                    "no peer".into(),
                    format!("{ratio_name} >= {minimum}"),
                    None,
                ));
                self.rows.push(ours);
            }
        }
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
        let (ours, cold) = {
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
        self.compare_with_peer(
            ours,
            peer,
            PeerComparison {
                scenario: "S5",
                peer: "pyarrow",
                goal,
                ratio_name: "pyarrow/us",
                minimum: 1.0,
            },
            |_, ratio| format!("pyarrow/us {}", fmt_ratio(ratio)),
        );
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
