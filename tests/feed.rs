//! The change feed (`aws.sagemaker_compilation_job_changes`): every commit
//! of the collector is one batch of its changes, in commit order, from the
//! start a query asks for (a commit_version or a time) or from the next
//! commit; filters and projections apply to it; a client resuming after
//! its last commit_version gets every later change once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use common::replica_engine as engine;
use common::replica_partition as partition;
use common::temp_dir::TempDir;
use common::{create_compilation_job, emulator_config};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use sagemaker_emulator::Emulator;
use sagemaker_flight::query::QueryEngine;
use sagemaker_flight::replica::collector::can_change;
use sagemaker_flight::replica::{Collector, ReplicaStore};
use sagemaker_flight::source::emulator_client;

const JOBS: usize = 60;
/// The most a feed may take to send a commit's batch.
const WAIT: Duration = Duration::from_secs(20);

/// An emulator of `jobs` jobs and an empty store in a folder of `name`.
async fn emulator_and_store(jobs: usize, name: &str) -> (Emulator, TempDir, Arc<ReplicaStore>) {
    let emu = Emulator::start(emulator_config(jobs), ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator");
    let dir = TempDir::new(name);
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    (emu, dir, store)
}

async fn feed(engine: &QueryEngine, sql: &str) -> SendableRecordBatchStream {
    engine
        .plan(sql, None)
        .await
        .unwrap_or_else(|e| panic!("plan {sql}: {e}"))
        .execute()
        .unwrap_or_else(|e| panic!("execute {sql}: {e}"))
}

/// The next batch of `feed`, within [`WAIT`].
async fn next(feed: &mut SendableRecordBatchStream) -> RecordBatch {
    tokio::time::timeout(WAIT, feed.next())
        .await
        .expect("a batch within the wait")
        .expect("the feed does not end")
        .expect("a batch, not an error")
}

/// (job name, change type, commit version) of each row.
fn changes(batch: &RecordBatch) -> Vec<(String, String, i64)> {
    let names = batch.column(0).as_string::<i32>();
    let kinds = batch.column(1).as_string::<i32>();
    let versions = batch.column(2).as_primitive::<Int64Type>();
    (0..batch.num_rows())
        .map(|row| {
            (
                names.value(row).to_owned(),
                kinds.value(row).to_owned(),
                versions.value(row),
            )
        })
        .collect()
}

const COLUMNS: &str = "SELECT compilation_job_name, change_type, commit_version \
     FROM aws.sagemaker_compilation_job_changes";

#[tokio::test]
async fn each_commit_is_one_batch_sent_once_from_the_start_asked_for() {
    let (emu, _dir, store) = emulator_and_store(JOBS, "feed-commits").await;
    let engine = engine(&emu, &store);
    let since = store.changes_since().await.expect("since");
    // Started before the first full scan: it has every change from there.
    let mut everything = feed(
        &engine,
        &format!("{COLUMNS} WHERE commit_version >= {since}"),
    )
    .await;
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let mut created = Vec::new();
    while created.len() < JOBS {
        let batch = changes(&next(&mut everything).await);
        let version = batch[0].2;
        assert!(
            batch
                .iter()
                .all(|(_, kind, v)| kind == "created" && *v == version)
        );
        created.extend(batch);
    }
    assert_eq!(created.len(), JOBS, "each job once");

    // From now on: two feeds with their own filters.
    let mut new_only = feed(&engine, &format!("{COLUMNS} WHERE change_type = 'created'")).await;
    let mut deleted_only = feed(&engine, &format!("{COLUMNS} WHERE change_type = 'deleted'")).await;
    let client = emulator_client(&emu.endpoint_url(), "us-east-1");
    create_compilation_job(&client, "feed-new-a").await;
    create_compilation_job(&client, "feed-new-b").await;
    collector.run_once().await.expect("refresh");
    let second = changes(&next(&mut everything).await);
    let mut names: Vec<&str> = second.iter().map(|(name, _, _)| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["feed-new-a", "feed-new-b"]);
    assert!(second.iter().all(|(_, kind, _)| kind == "created"));
    assert_eq!(changes(&next(&mut new_only).await), second);

    // A job gone while running is deleted: the deleted-only feed has it,
    // and its first batch is that one (it had nothing from the commit
    // before).
    let running: String = emu
        .state()
        .jobs()
        .into_iter()
        .filter(|job| can_change(job.describe["CompilationJobStatus"].as_str().unwrap_or("")))
        .filter_map(|job| {
            job.describe["CompilationJobName"]
                .as_str()
                .map(str::to_owned)
        })
        .find(|name| !name.starts_with("feed-new"))
        .expect("a running job");
    assert!(emu.state().vanish(&running));
    collector.run_once().await.expect("refresh");
    let third = changes(&next(&mut everything).await);
    assert!(
        third.contains(&(running.clone(), "deleted".to_owned(), third[0].2)),
        "{third:?}"
    );
    let deleted = changes(&next(&mut deleted_only).await);
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].0, running);

    // A client resuming after the second commit gets the third first.
    let mut resumed = feed(
        &engine,
        &format!("{COLUMNS} WHERE commit_version > {}", second[0].2),
    )
    .await;
    assert_eq!(changes(&next(&mut resumed).await), third);
    emu.shutdown().await;
}

/// Asserts that a feed from `asked` is refused, naming `kept` as the
/// first version to start at.
async fn assert_refused_from(engine: &QueryEngine, asked: u64, kept: u64) {
    let mut early = feed(
        engine,
        &format!("{COLUMNS} WHERE commit_version >= {asked}"),
    )
    .await;
    let error = tokio::time::timeout(WAIT, early.next())
        .await
        .expect("an answer")
        .expect("an item")
        .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains(&format!("start at {kept} or later")),
        "{error}"
    );
}

#[tokio::test]
async fn a_start_before_the_changes_the_store_has_is_refused() {
    let (emu, _dir, store) = emulator_and_store(5, "feed-too-early").await;
    let engine = engine(&emu, &store);
    let since = store.changes_since().await.expect("since");
    assert!(since >= 1, "the table's creation has no changes");
    assert_refused_from(&engine, since - 1, since).await;
    emu.shutdown().await;
}

/// A store of [`JOBS`] jobs' full scan, then `rounds` refreshes, each of
/// one new job `{name}-{round}`; the first version with changes.
async fn refreshed_store(name: &str, rounds: usize) -> (Emulator, TempDir, Arc<ReplicaStore>, u64) {
    let (emu, dir, store) = emulator_and_store(JOBS, &format!("feed-{name}")).await;
    let since = store.changes_since().await.expect("since");
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let client = emulator_client(&emu.endpoint_url(), "us-east-1");
    for round in 0..rounds {
        create_compilation_job(&client, &format!("{name}-{round}")).await;
        collector.run_once().await.expect("refresh");
    }
    (emu, dir, store, since)
}

/// Every change the feed sends from `since` up to the commit holding
/// `last_job`, the first batch's error instead if it fails.
async fn changes_until(
    engine: &QueryEngine,
    since: u64,
    last_job: &str,
) -> Result<Vec<(String, String, i64)>, String> {
    let mut feed = feed(
        engine,
        &format!("{COLUMNS} WHERE commit_version >= {since}"),
    )
    .await;
    let mut received = Vec::new();
    while !received
        .iter()
        .any(|(name, _, _): &(String, _, _)| name == last_job)
    {
        match tokio::time::timeout(WAIT, feed.next())
            .await
            .expect("an item within the wait")
        {
            Some(Ok(batch)) => received.extend(changes(&batch)),
            Some(Err(error)) => return Err(error.to_string()),
            None => panic!("the feed ended"),
        }
    }
    Ok(received)
}

#[tokio::test]
async fn the_changes_outlive_compaction_and_vacuum() {
    let (emu, _dir, store, since) = refreshed_store("vacuumed", 3).await;
    let engine = engine(&emu, &store);
    let before = changes_until(&engine, since, "vacuumed-2")
        .await
        .expect("every change");
    // The small files compacted, and every file the latest version does
    // not need deleted at once: the changes of the first commits are
    // still read whole.
    let maintained = store
        .maintain(Duration::ZERO, None)
        .await
        .expect("maintain");
    assert!(maintained.files_deleted > 0, "{maintained:?}");
    let after = changes_until(&engine, since, "vacuumed-2").await;
    assert_eq!(after, Ok(before));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_start_whose_log_entries_are_cleaned_up_is_refused_with_the_first_kept() {
    let (emu, dir, store, since) = refreshed_store("cleaned", 4).await;
    let engine = engine(&emu, &store);
    // Delta's log cleanup, as at a checkpoint past the log retention: the
    // checkpoint of the latest version, the entries before `kept` deleted.
    let table = store.latest().await.expect("latest");
    let latest = table.version().expect("a version");
    deltalake_core::checkpoints::create_checkpoint(&table, None)
        .await
        .expect("checkpoint");
    let kept = latest - 2;
    for version in 0..kept {
        std::fs::remove_file(dir.file(&format!("store/_delta_log/{version:020}.json")))
            .expect("a log entry");
    }
    assert_eq!(store.changes_since().await.expect("since"), kept);

    assert_refused_from(&engine, since, kept).await;
    let received = changes_until(&engine, kept, "cleaned-3")
        .await
        .expect("the kept changes");
    let names: Vec<&str> = received.iter().map(|(name, _, _)| name.as_str()).collect();
    assert!(
        names.contains(&"cleaned-2") && !names.contains(&"cleaned-0"),
        "{names:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn sorting_or_counting_the_endless_feed_is_refused_when_planned() {
    let (emu, _dir, store) = emulator_and_store(5, "feed-refused").await;
    let engine = engine(&emu, &store);
    for sql in [
        "SELECT count(*) FROM aws.sagemaker_compilation_job_changes",
        "SELECT * FROM aws.sagemaker_compilation_job_changes ORDER BY commit_time",
    ] {
        assert!(engine.plan(sql, None).await.is_err(), "{sql} is refused");
    }
    emu.shutdown().await;
}
