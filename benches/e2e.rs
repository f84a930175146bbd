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
//! run instead: S1, S3, R1 and C on 200 jobs at 0 ms latency, one run, no peers, and
//! it writes nothing, so the test suite exercises this code in seconds.
//!
//! Every wait is bounded (process start 60 s, each run a timeout derived from
//! its bound) and every child process is killed on every exit path
//! (`kill_on_drop` plus [`Proc`]'s `Drop`).
//!
//! This file holds the constants shared by every part and `main`. Under
//! `e2e/`:
//!
//! - `options.rs`: the command line (a clap parser) and the smoke run's options;
//! - `scenarios/mod.rs`: the list of scenarios ([`Id`]) and what runs each;
//!   `scenarios/*.rs`, one file per scenario, its setup, run and targets;
//! - `bench.rs`: what the scenarios share: a measurement's [`Setup`], starting
//!   the emulator and the server, timed runs, targets against a bound or a peer;
//! - `runner.rs`: the run, scenario after scenario, and the CPU load check;
//! - `procs.rs`: the child processes;
//! - `measure.rs`: the measurements;
//! - `report.rs`: the tables, `BENCHMARKS.md` and the machine description;
//! - `sdk_floor.rs`: the AWS SDK's own CPU per call, with canned answers (C).

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
/// `--concurrency` of the server in every scenario (calls in flight per
/// operation). At 64 the server used a third of the 2 cores in S1 and stayed
/// within 1.1 x its bound; 128 halves the bound and still leaves CPU idle.
const CONCURRENCY: u32 = 128;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two looks at a server or emulator that is getting somewhere.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long the emulator must see no call to count as quiet.
const QUIET_FOR: Duration = Duration::from_millis(500);
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

/// The server's allocator (src/main.rs), in this process too, for two
/// reasons. The AWS SDK's floor (`sdk_floor.rs`), measured here, is then
/// what it costs in the server (59 µs a job under this allocator, 70 under
/// the system's, one run each). And the client, which receives every
/// stream, is then not slowed by the system allocator: under it, S5's
/// pyarrow peer took 179 ms and the server 147 ms (medians of 5), under
/// this one 115 and 132 ms, so the old client hid how fast each server
/// streams.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Under benches/e2e/, not benches/, so that cargo does not take them for
// benchmarks of their own.
#[path = "e2e/bench.rs"]
mod bench;
#[path = "e2e/measure.rs"]
mod measure;
#[path = "e2e/options.rs"]
mod options;
#[path = "e2e/procs.rs"]
mod procs;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/runner.rs"]
mod runner;
#[path = "e2e/scenarios/mod.rs"]
mod scenarios;
#[path = "e2e/sdk_floor.rs"]
mod sdk_floor;
use bench::*;
use measure::*;
use options::*;
use procs::*;
use report::*;
use runner::*;
use scenarios::*;
use sdk_floor::*;

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        // `--help` (exit code 0) or a bad command line (2, with the usage).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
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
