//! Full-scan figures: time to first batch, wall time and rows/s of a plain
//! Flight DoGet of the whole table, against the emulator with a chosen job
//! count and latency, for each `--concurrency`. Everything runs in this
//! process on 127.0.0.1.
//!
//! ```sh
//! cargo bench --bench scan -- --jobs 5000 --latency-ms 20 --concurrency 1,32 --runs 3
//! ```
//!
//! Prints one line per concurrency with medians over `--runs`, and the bound
//! a scan cannot beat: N Describe calls at latency L, C at a time, i.e.
//! N·L/C (a job's ListTags runs beside its Describe, under its own C), plus
//! one round (the first List page).
//!
//! With `--query SQL` (repeatable) it runs those statements instead, through
//! the Flight SQL client at the first `--concurrency`, and prints for each the
//! median wall time, the rows and the SageMaker calls it made per operation
//! (counted at the emulator). `{name}` in a query stands for the name of one
//! of the emulator's jobs:
//!
//! ```sh
//! cargo bench --bench scan -- --jobs 5000 --latency-ms 20 --concurrency 16 \
//!     --query "SELECT compilation_job_name FROM aws.sagemaker_compilation_job WHERE compilation_job_status = 'FAILED'"
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightClient, FlightDescriptor};
use futures::StreamExt;
use sagemaker_emulator::{Emulator, EmulatorConfig};
use sagemaker_flight::source::{RetryPolicy, SageMakerSource, emulator_client};
use sagemaker_flight::table::TableOptions;
use tokio::net::TcpListener;
use tonic::transport::Channel;

struct Options {
    jobs: usize,
    latency_ms: u64,
    concurrency: Vec<usize>,
    runs: usize,
    queries: Vec<String>,
}

fn parse_options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this
    // binary without it, and gets a small smoke run of the same code.
    let smoke = !args.iter().any(|a| a == "--bench");
    let mut options = Options {
        jobs: if smoke { 60 } else { 5000 },
        latency_ms: if smoke { 0 } else { 20 },
        concurrency: if smoke { vec![4] } else { vec![1, 32] },
        runs: 1,
        queries: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--jobs" => options.jobs = value.parse().expect("--jobs N"),
            "--latency-ms" => options.latency_ms = value.parse().expect("--latency-ms MS"),
            "--runs" => options.runs = value.parse().expect("--runs N"),
            "--query" => options.queries.push(value),
            "--concurrency" => {
                options.concurrency = value
                    .split(',')
                    .map(|c| c.parse().expect("--concurrency C[,C...]"))
                    .collect()
            }
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

struct Run {
    first_batch: Duration,
    total: Duration,
    rows: usize,
}

async fn one_scan(address: std::net::SocketAddr) -> Run {
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = FlightClient::new(channel);
    let started = Instant::now();
    let info = client
        .get_flight_info(FlightDescriptor::new_path(vec![
            "aws.sagemaker_compilation_job".into(),
        ]))
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let mut first_batch = None;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch.expect("batch").num_rows();
        first_batch.get_or_insert_with(|| started.elapsed());
    }
    Run {
        first_batch: first_batch.unwrap_or_default(),
        total: started.elapsed(),
        rows,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// An emulator with `jobs` jobs at `latency_ms`, and a server on it.
async fn start(
    jobs: usize,
    latency_ms: u64,
    concurrency: usize,
) -> (Emulator, std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let config = EmulatorConfig {
        jobs,
        seed: 1,
        latency: Duration::from_millis(latency_ms),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator");
    let client = emulator_client(&emulator.endpoint_url(), "us-east-1");
    let source = Arc::new(SageMakerSource::new(
        client,
        concurrency,
        RetryPolicy::default(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let service = sagemaker_flight::server::flight_service(
        source,
        TableOptions::default(),
        &Default::default(),
    )
    .expect("service");
    let server = tokio::spawn(async move {
        let _ = sagemaker_flight::server::serve(listener, service, std::future::pending()).await;
    });
    (emulator, address, server)
}

/// Runs each `--query` and prints its time, rows and calls.
async fn run_queries(options: &Options) {
    let concurrency = options.concurrency[0];
    let (emulator, address, server) = start(options.jobs, options.latency_ms, concurrency).await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = FlightSqlServiceClient::new(channel);
    println!(
        "queries, {} jobs, {} ms emulator latency, --concurrency {concurrency}, median of {} run(s)",
        options.jobs, options.latency_ms, options.runs
    );
    let jobs = emulator.state().jobs();
    let some_name = jobs
        .get(jobs.len() / 2)
        .and_then(|job| job.describe["CompilationJobName"].as_str())
        .unwrap_or_default()
        .to_owned();
    for sql in &options.queries {
        let sql = &sql.replace("{name}", &some_name);
        let mut walls = Vec::new();
        let mut rows = 0;
        let mut calls = std::collections::BTreeMap::new();
        for _ in 0..options.runs {
            emulator.state().reset_stats();
            let started = Instant::now();
            let info = client.execute(sql.clone(), None).await.expect("execute");
            rows = 0;
            for endpoint in info.endpoint {
                let mut stream = client
                    .do_get(endpoint.ticket.expect("ticket"))
                    .await
                    .expect("do_get");
                while let Some(batch) = stream.next().await {
                    rows += batch.expect("batch").num_rows();
                }
            }
            walls.push(started.elapsed());
            calls = emulator
                .state()
                .stats()
                .operations
                .into_iter()
                .filter(|(_, o)| o.calls > 0)
                .map(|(name, o)| (name, o.calls))
                .collect();
        }
        println!("{sql}");
        println!(
            "    wall {:.3}s, {rows} rows, calls {calls:?}",
            median(walls).as_secs_f64()
        );
    }
    server.abort();
    emulator.shutdown().await;
}

#[tokio::main]
async fn main() {
    let options = parse_options();
    if !options.queries.is_empty() {
        run_queries(&options).await;
        return;
    }
    println!(
        "full scan, {} jobs, {} ms emulator latency, median of {} run(s)",
        options.jobs, options.latency_ms, options.runs
    );
    println!(
        "{:>11} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "concurrency", "first batch", "wall", "rows/s", "bound", "wall/bound"
    );
    for &concurrency in &options.concurrency {
        let (emulator, address, server) =
            start(options.jobs, options.latency_ms, concurrency).await;
        let mut firsts = Vec::new();
        let mut totals = Vec::new();
        for _ in 0..options.runs {
            let run = one_scan(address).await;
            assert_eq!(run.rows, options.jobs, "every job once");
            firsts.push(run.first_batch);
            totals.push(run.total);
        }
        server.abort();
        emulator.shutdown().await;
        let wall = median(totals);
        let bound = Duration::from_millis(options.latency_ms)
            .mul_f64(options.jobs as f64 / concurrency as f64 + 1.0);
        // With no latency there is no bound to compare with.
        let ratio = if bound.is_zero() {
            "-".to_owned()
        } else {
            format!("{:.2}", wall.as_secs_f64() / bound.as_secs_f64())
        };
        println!(
            "{:>11} {:>10.0}ms {:>9.2}s {:>10.0} {:>9.2}s {:>8}",
            concurrency,
            median(firsts).as_secs_f64() * 1000.0,
            wall.as_secs_f64(),
            options.jobs as f64 / wall.as_secs_f64(),
            bound.as_secs_f64(),
            ratio
        );
    }
}
