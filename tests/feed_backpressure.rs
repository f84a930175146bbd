//! A change feed whose client takes nothing: the server reads ahead of it
//! only as far as its buffer (`--changes-buffer-mib`), then ends the feed
//! with where to resume, and stops reading the store. A test binary of its
//! own: it reads the process-wide `change_feeds_reading` gauge.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use common::temp_dir::TempDir;
use common::{create_compilation_job, emulator_config, replica_engine, replica_partition};
use futures::StreamExt;
use sagemaker_emulator::Emulator;
use sagemaker_flight::replica::{Collector, ReplicaStore};
use sagemaker_flight::source::emulator_client;

/// About 2.5 MiB of changes in the first full scan's commit.
const JOBS: usize = 2_000;
const WAIT: Duration = Duration::from_secs(20);
const READING: &str = "sagemaker_flight_change_feeds_reading";

fn feeds_reading() -> f64 {
    let samples = common::metric_samples(&sagemaker_flight::obs::metrics::render());
    common::metric_sample(&samples, READING)
}

/// The resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Adds each (job, commit version) of `batch` to `seen`, none twice;
/// returns the batch's commit version.
fn changes(batch: &arrow::array::RecordBatch, seen: &mut HashSet<(String, u64)>) -> u64 {
    let keys = batch.column(0).as_string::<i32>();
    let versions = batch
        .column(1)
        .as_primitive::<arrow::datatypes::Int64Type>();
    for row in 0..batch.num_rows() {
        let change = (keys.value(row).to_owned(), versions.value(row) as u64);
        assert!(seen.insert(change.clone()), "{change:?} twice");
    }
    versions.value(0) as u64
}

#[tokio::test]
async fn a_feed_not_taken_past_its_buffer_ends_with_where_to_resume_and_stops_reading() {
    let emu = Emulator::start(emulator_config(JOBS), ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator");
    let dir = TempDir::new("feed-backpressure");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let engine = replica_engine(&emu, &store)
        .with_feed_buffer(1)
        .expect("a 1 MiB buffer");
    let collector = Collector::new(replica_partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let sql = |after: u64| {
        format!(
            "SELECT _key, commit_version FROM aws.sagemaker_compilation_job_changes \
             WHERE commit_version > {after}"
        )
    };
    let rss_before = rss_mib();
    // Started, and never read until it is cut off.
    let mut stalled = engine
        .plan(&sql(0), None)
        .await
        .expect("plan")
        .execute()
        .expect("execute");
    let client = emulator_client(&emu.endpoint_url(), "us-east-1");
    for round in 0..3 {
        create_compilation_job(&client, &format!("backpressure-{round}")).await;
        collector.run_once().await.expect("refresh");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while feeds_reading() != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the feed read on past its buffer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "test process RSS {rss_before:.0} MiB before the stalled feed, {:.0} MiB once it was cut off",
        rss_mib()
    );

    // What was read ahead is still delivered, then the cut-off.
    let mut seen = HashSet::new();
    let mut last_version = 0;
    let error = loop {
        match tokio::time::timeout(WAIT, stalled.next())
            .await
            .expect("an item")
        {
            Some(Ok(batch)) => {
                last_version = changes(&batch, &mut seen);
            }
            Some(Err(error)) => break error.to_string(),
            None => panic!("the feed ended without saying why"),
        }
    };
    assert!(error.contains("fell behind"), "{error}");
    assert!(
        error.contains(&format!("WHERE commit_version > {last_version}")),
        "resume after the last commit sent: {error}"
    );
    assert_eq!(
        seen.len(),
        JOBS,
        "the full scan's commit was sent whole, once"
    );

    // Resumed there: the three later commits, each job once.
    let mut resumed = engine
        .plan(&sql(last_version), None)
        .await
        .expect("plan")
        .execute()
        .expect("execute");
    let created = |seen: &HashSet<(String, u64)>| {
        seen.iter()
            .filter(|(key, _)| key.contains("compilation-job/backpressure-"))
            .count()
    };
    while created(&seen) < 3 {
        let batch = tokio::time::timeout(WAIT, resumed.next())
            .await
            .expect("a batch within the wait")
            .expect("the feed goes on")
            .expect("a batch");
        changes(&batch, &mut seen);
    }
    drop(resumed);
    emu.shutdown().await;
}
