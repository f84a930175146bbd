//! The history (`aws.sagemaker_compilation_job_history`): against the
//! living emulator, every change a collector commits is one history row
//! (its kind, its values, its commit's sequence), so the history replays
//! the replica's states; it survives a restart, and rows appended for a
//! commit that never reached the replica (a process killed between the two
//! tables' commits) are removed before the next one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::RecordBatch;
use common::replica_engine as engine;
use common::replica_partition as partition;
use common::temp_dir::TempDir;
use common::{emulator_config, rows_as_text};
use sagemaker_emulator::{ActivityEvent, Emulator};
use sagemaker_flight::query::QueryEngine;
use sagemaker_flight::replica::history::ChangeType;
use sagemaker_flight::replica::{Collector, ReplicaStore};
use sagemaker_flight::table::schema::{ALL_COLUMNS, table_schema};

const JOBS: usize = 120;
const REPLICA: &str = "SELECT * FROM aws.sagemaker_compilation_job ORDER BY _key";

/// One row of the table as text, by its `_key` (the first column).
fn by_key(batches: &[RecordBatch]) -> BTreeMap<String, String> {
    rows_as_text(batches)
        .into_iter()
        .map(|row| {
            let key = row.split(" | ").next().unwrap_or_default().to_owned();
            (key, row)
        })
        .collect()
}

/// The history rows of sequences after `after`: (key, change, sequence,
/// the 21 columns as text), in commit order.
async fn history_after(engine: &QueryEngine, after: i64) -> Vec<(String, String, i64, String)> {
    let columns: Vec<&str> = ALL_COLUMNS.iter().map(|c| c.name()).collect();
    let values = common::run_sql(
        engine,
        &format!(
            "SELECT {} FROM aws.sagemaker_compilation_job_history \
             WHERE change_sequence > {after} ORDER BY change_sequence, _key",
            columns.join(", ")
        ),
    )
    .await;
    let kinds = common::run_sql(
        engine,
        &format!(
            "SELECT _key, change_type, change_sequence FROM aws.sagemaker_compilation_job_history \
             WHERE change_sequence > {after} ORDER BY change_sequence, _key"
        ),
    )
    .await;
    rows_as_text(&kinds)
        .into_iter()
        .zip(rows_as_text(&values))
        .map(|(kind, row)| {
            let parts: Vec<&str> = kind.split(" | ").collect();
            (
                parts[0].to_owned(),
                parts[1].trim_matches('"').to_owned(),
                parts[2].parse().expect("a sequence"),
                row,
            )
        })
        .collect()
}

/// History rows observed at the epoch: the orphans a test appended.
async fn orphans(engine: &QueryEngine) -> usize {
    let rows = common::run_sql(
        engine,
        "SELECT count(*) FROM aws.sagemaker_compilation_job_history \
         WHERE observed_time = to_timestamp_micros(0)",
    )
    .await;
    rows_as_text(&rows)[0].parse().expect("a number")
}

async fn last_sequence(engine: &QueryEngine) -> i64 {
    let rows = common::run_sql(
        engine,
        "SELECT coalesce(max(change_sequence), 0) FROM aws.sagemaker_compilation_job_history",
    )
    .await;
    rows_as_text(&rows)[0].parse().expect("a number")
}

/// What the history says happened between two states of the replica:
/// each changed job's last row this round, by key.
fn replayed(
    before: &BTreeMap<String, String>,
    rows: &[(String, String, i64, String)],
) -> BTreeMap<String, String> {
    let mut state = before.clone();
    for (key, change, _, row) in rows {
        match change.as_str() {
            "created" => {
                assert!(
                    state.insert(key.clone(), row.clone()).is_none(),
                    "created twice: {key}"
                );
            }
            "updated" => {
                assert!(
                    state.insert(key.clone(), row.clone()).is_some(),
                    "updated before created: {key}"
                );
            }
            "deleted" => {
                assert_eq!(state.remove(key).as_ref(), Some(row), "deleted: {key}");
            }
            other => panic!("change_type {other}"),
        }
    }
    state
}

#[tokio::test]
async fn the_history_replays_the_replica_of_a_living_emulator_and_survives_a_restart() {
    let emu = Emulator::start(emulator_config(JOBS), ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator");
    let dir = TempDir::new("history-living");
    let location = dir.file("store");
    let store = Arc::new(ReplicaStore::open(&location).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let engine = engine(&emu, &store);
    let first = history_after(&engine, 0).await;
    assert_eq!(first.len(), JOBS);
    assert!(first.iter().all(|(_, change, _, _)| change == "created"));
    let mut state = by_key(&common::run_sql(&engine, REPLICA).await);
    assert_eq!(replayed(&BTreeMap::new(), &first), state);

    let mut seen = BTreeSet::new();
    let mut sequence = last_sequence(&engine).await;
    for round in 0..4 {
        let events = emu.state().advance(40);
        for event in &events {
            seen.insert(format!("{event:?}").split('(').next().map(str::to_owned));
        }
        collector.run_once().await.expect("refresh");
        collector.refresh_tags().await.expect("tags refresh");
        let now = by_key(&common::run_sql(&engine, REPLICA).await);
        let rows = history_after(&engine, sequence).await;
        assert_eq!(replayed(&state, &rows), now, "round {round}");
        // Only what changed has rows: no job unchanged this round.
        for (key, _, _, _) in &rows {
            assert!(
                state.get(key) != now.get(key),
                "round {round}: {key} has a row and did not change"
            );
        }
        let created: BTreeSet<&str> = rows
            .iter()
            .filter(|(_, change, _, _)| change == "created")
            .map(|(key, _, _, _)| key.as_str())
            .collect();
        for event in &events {
            // A job created with an old creation time is listed by the
            // next reconcile, not by a refresh (`tests/replica.rs`).
            if let ActivityEvent::Created(name) = event
                && let Some(key) = now.keys().find(|key| key.ends_with(&format!("/{name}")))
            {
                assert!(
                    created.contains(key.as_str()),
                    "round {round}: no created row for {name}"
                );
            }
        }
        state = now;
        sequence = last_sequence(&engine).await;
    }
    for kind in ["Created", "Moved", "Tagged", "Deleted"] {
        assert!(
            seen.iter().flatten().any(|k| k == kind),
            "no {kind} in {seen:?}"
        );
    }

    // A restart: the history is in the store, and the next changes follow.
    let total = history_after(&engine, 0).await.len();
    drop((engine, collector, store));
    let store = Arc::new(ReplicaStore::open(&location).await.expect("reopened"));
    let engine = self::engine(&emu, &store);
    assert_eq!(history_after(&engine, 0).await.len(), total);
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    emu.state().advance(40);
    collector
        .run_once()
        .await
        .expect("refresh after the restart");
    let rows = history_after(&engine, sequence).await;
    let now = by_key(&common::run_sql(&engine, REPLICA).await);
    assert_eq!(replayed(&state, &rows), now);
    emu.shutdown().await;
}

#[tokio::test]
async fn history_rows_of_a_commit_the_replica_never_got_are_removed() {
    let emu = Emulator::start(emulator_config(JOBS), ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator");
    let dir = TempDir::new("history-orphans");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let engine = engine(&emu, &store);
    let state = by_key(&common::run_sql(&engine, REPLICA).await);
    let sequence = last_sequence(&engine).await;
    // What a process killed after the history's commit and before the
    // replica's leaves: rows of the next sequence, in the history only.
    let key = partition(&emu).key;
    let rows = common::run_sql(&engine, &format!("{REPLICA} LIMIT 3")).await;
    let rows = arrow::compute::concat_batches(&table_schema(), &rows).expect("one batch");
    store
        .history()
        .append(&key, sequence + 1, &rows, &[ChangeType::Updated; 3], 0)
        .await
        .expect("orphans");
    assert_eq!(history_after(&engine, sequence).await.len(), 3);
    assert_eq!(orphans(&engine).await, 3);

    emu.state().advance(40);
    collector.run_once().await.expect("refresh");
    assert_eq!(orphans(&engine).await, 0, "the orphans are gone");
    let rows = history_after(&engine, sequence).await;
    assert!(!rows.is_empty(), "the refresh had changes to record");
    let now = by_key(&common::run_sql(&engine, REPLICA).await);
    assert_eq!(replayed(&state, &rows), now);
    assert!(
        rows.iter().all(|(_, _, at, _)| *at == sequence + 1),
        "one commit, the replica's next: {rows:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn retention_removes_older_rows_and_maintenance_keeps_one_history_file() {
    let emu = Emulator::start(emulator_config(JOBS), ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator");
    let dir = TempDir::new("history-retention");
    let location = dir.file("store");
    let store = Arc::new(ReplicaStore::open(&location).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    for _ in 0..3 {
        emu.state().advance(40);
        collector.run_once().await.expect("refresh");
    }
    let engine = engine(&emu, &store);
    let count = |since: i64| {
        format!(
            "SELECT count(*) FROM aws.sagemaker_compilation_job_history \
             WHERE CAST(observed_time AS BIGINT) >= {since}"
        )
    };
    let commits = rows_as_text(
        &common::run_sql(
            &engine,
            "SELECT DISTINCT CAST(observed_time AS BIGINT) \
             FROM aws.sagemaker_compilation_job_history ORDER BY 1",
        )
        .await,
    );
    assert!(
        commits.len() >= 3,
        "a commit per run with changes: {commits:?}"
    );
    // Keep the last two commits' rows.
    let cut: i64 = commits[commits.len() - 2].parse().expect("micros");
    let number = |text: Vec<String>| -> usize { text[0].parse().expect("a count") };
    let total = number(rows_as_text(&common::run_sql(&engine, &count(0)).await));
    let kept = number(rows_as_text(&common::run_sql(&engine, &count(cut)).await));
    assert!(kept < total);

    let done = store
        .maintain(std::time::Duration::ZERO, Some(cut))
        .await
        .expect("maintain");
    assert_eq!(done.history_rows_removed, total - kept);
    assert_eq!(
        number(rows_as_text(&common::run_sql(&engine, &count(0)).await)),
        kept,
        "only the rows observed since the cut are left"
    );
    let files = std::fs::read_dir(std::path::Path::new(&location).join("_history"))
        .expect("the history's folder")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "parquet"))
        .count();
    assert_eq!(files, 1, "compacted into one file, the others vacuumed");
    emu.shutdown().await;
}
