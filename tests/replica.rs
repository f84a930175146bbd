//! The replica (`serve --store`): a collector fills a Delta table from the
//! emulator, queries read it with no SageMaker call and get exactly the
//! live table's rows and schema, a refresh asks only about new jobs and
//! jobs that can still change (k + m Describes, a page or two of List,
//! under both paging models), and a restart resumes from the store's
//! watermark without describing a finished job.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use common::binary::{Binary, Process};
use common::replica_engine as engine;
use common::replica_partition as partition;
use common::temp_dir::TempDir;
use common::{emulator_config, rows_as_text};
use futures::TryStreamExt;
use sagemaker_emulator::{ActivityEvent, Emulator, EmulatorConfig, FilterPaging};
use sagemaker_flight::query::QueryEngine;
use sagemaker_flight::replica::collector::can_change;
use sagemaker_flight::replica::image::all_rows;
use sagemaker_flight::replica::image_copy::{ImageCopy, VersionKey};
use sagemaker_flight::replica::parquet_files::{PlainRead, read_plain_version};
use sagemaker_flight::replica::{Collector, FreshnessTable, ReplicaStore, Schedule, StatusBoard};
use sagemaker_flight::source::{Partitions, emulator_client};
use sagemaker_flight::table::TableOptions;
use sagemaker_flight::table::schema::table_schema;

const JOBS: usize = 250;
const EVERYTHING: &str = "SELECT * FROM aws.sagemaker_compilation_job ORDER BY _key";
const EVERYTHING_LIVE: &str = "SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key";

async fn emulator(paging: FilterPaging) -> Emulator {
    let config = EmulatorConfig {
        filter_paging: paging,
        ..emulator_config(JOBS)
    };
    Emulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator starts")
}

/// The engine, its freshness table reading `board` (this process collects
/// the one partition).
fn engine_reporting(emu: &Emulator, store: &Arc<ReplicaStore>, board: StatusBoard) -> QueryEngine {
    let key = partition(emu).key;
    board.set_collecting(&key, true);
    let freshness = FreshnessTable::new(Arc::clone(store), vec![key], board);
    QueryEngine::new(
        Partitions::new(vec![partition(emu)]),
        TableOptions::default(),
    )
    .expect("engine")
    .with_replica(Arc::clone(store), freshness)
    .expect("replica")
}

async fn run(engine: &QueryEngine, sql: &str) -> Vec<RecordBatch> {
    common::run_sql(engine, sql).await
}

fn calls(emu: &Emulator) -> BTreeMap<String, u64> {
    emu.state()
        .stats()
        .operations
        .into_iter()
        .map(|(operation, stats)| (operation, stats.calls))
        .filter(|(_, calls)| *calls > 0)
        .collect()
}

fn running(emu: &Emulator) -> u64 {
    emu.state()
        .jobs()
        .iter()
        .filter(|job| can_change(job.describe["CompilationJobStatus"].as_str().unwrap_or("")))
        .count() as u64
}

async fn create_jobs(emu: &Emulator, names: &[&str]) {
    let client = emulator_client(&emu.endpoint_url(), "us-east-1");
    for name in names {
        common::create_compilation_job(&client, name).await;
    }
}

/// The replica's rows equal the live table's, value for value, and its
/// batches carry exactly the table's schema.
async fn assert_replica_is_live(engine: &QueryEngine) {
    let replica = run(engine, EVERYTHING).await;
    let live = run(engine, EVERYTHING_LIVE).await;
    for batch in &replica {
        assert_eq!(
            batch.schema(),
            table_schema(),
            "the replica's schema is the table's"
        );
    }
    assert_eq!(rows_as_text(&replica), rows_as_text(&live));
}

#[tokio::test]
async fn a_full_scan_fills_the_store_and_queries_read_it_without_a_call() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-full-scan");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    let report = collector.run_once().await.expect("full scan");
    assert!(report.full_scan);
    assert_eq!(report.written, JOBS);
    let engine = engine(&emu, &store);
    emu.state().reset_stats();
    let rows = run(&engine, EVERYTHING).await;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), JOBS);
    let failed = run(
        &engine,
        "SELECT compilation_job_name FROM aws.sagemaker_compilation_job \
         WHERE compilation_job_status = 'FAILED' ORDER BY creation_time DESC LIMIT 3",
    )
    .await;
    assert_eq!(failed.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    assert_eq!(
        calls(&emu),
        BTreeMap::new(),
        "the replica answers with no call"
    );
    assert_replica_is_live(&engine).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn queries_read_each_version_from_memory_once_and_a_larger_table_from_the_store() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-image");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let engine = engine(&emu, &store);
    let rows = |batches: &[RecordBatch]| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
    let first = engine
        .whole_table()
        .await
        .expect("read")
        .expect("in memory");
    assert_eq!(rows(&first), JOBS);
    let again = engine
        .whole_table()
        .await
        .expect("read")
        .expect("in memory");
    assert!(Arc::ptr_eq(&first, &again), "one version is read once");
    // A commit makes a new version: the next read has its rows.
    create_jobs(&emu, &["image-a", "image-b"]).await;
    collector.run_once().await.expect("refresh");
    let next = engine
        .whole_table()
        .await
        .expect("read")
        .expect("in memory");
    assert_eq!(rows(&next), JOBS + 2);
    assert_replica_is_live(&engine).await;

    // Memory may hold fewer rows than the table has: each query reads the
    // store, with the same answers.
    let small_store = Arc::new(
        ReplicaStore::open(&dir.file("store"))
            .await
            .expect("store")
            .keeping_in_memory(JOBS / 2),
    );
    let small = self::engine(&emu, &small_store);
    assert!(small.whole_table().await.expect("read").is_none());
    assert_replica_is_live(&small).await;
    let failed = "SELECT _key FROM aws.sagemaker_compilation_job \
         WHERE compilation_job_status = 'FAILED' ORDER BY _key";
    assert_eq!(
        rows_as_text(&run(&small, failed).await),
        rows_as_text(&run(&engine, failed).await)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_full_scan_cut_short_is_made_again_in_parts_with_every_job_once() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-parts");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let key = partition(&emu).key;
    let engine = engine(&emu, &store);
    // What a full scan killed after its first parts leaves: rows, and no
    // watermark.
    let part = run(
        &engine,
        "SELECT * FROM aws.sagemaker_compilation_job_live ORDER BY _key LIMIT 120",
    )
    .await;
    let part = arrow::compute::concat_batches(&table_schema(), &part).expect("one batch");
    store
        .commit(&key, &part, &[], &HashMap::new(), None, None)
        .await
        .expect("a part");
    assert_eq!(store.watermark(&key).await.expect("read"), None);
    assert!(
        engine.whole_table().await.expect("read").is_none(),
        "an unfinished scan is not an answer"
    );
    let version = |table: deltalake_core::DeltaTable| table.version();
    let before = version(store.latest().await.expect("table"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store)).committing_every(100);
    let report = collector.run_once().await.expect("full scan");
    assert!(report.full_scan);
    assert_eq!(report.written, JOBS);
    // 250 jobs, 100 a commit: three commits, the watermark with the last.
    assert_eq!(
        version(store.latest().await.expect("table")),
        before.map(|v| v + 3)
    );
    assert!(store.watermark(&key).await.expect("read").is_some());
    assert_eq!(store.row_count(&key).await.expect("count"), JOBS);
    assert_replica_is_live(&engine).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn compaction_and_vacuum_leave_one_data_file_and_the_same_rows() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-maintenance");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    // A full scan in five parts, then refreshes that change jobs: a file
    // per part and per refresh, and the files each refresh replaced.
    let collector = Collector::new(partition(&emu), Arc::clone(&store)).committing_every(50);
    collector.run_once().await.expect("full scan");
    for _ in 0..3 {
        emu.state().advance(12);
        collector.run_once().await.expect("refresh");
    }
    // New tags of finished jobs wait for a tags refresh.
    collector.refresh_tags().await.expect("tags refresh");
    let data_files = || {
        std::fs::read_dir(dir.file("store"))
            .expect("the store's directory")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    };
    let before = data_files();
    assert!(before > 5, "{before} data files");
    let done = store
        .maintain(Duration::ZERO, None)
        .await
        .expect("maintain");
    assert!(done.files_compacted >= 5, "{done:?}");
    assert_eq!(done.files_written, 1, "every file was small: {done:?}");
    assert!(done.files_deleted >= before - 1, "{done:?}");
    assert_eq!(data_files(), 1, "only the compacted file is left");
    let engine = engine(&emu, &store);
    assert_replica_is_live(&engine).await;
    // The store goes on: a refresh after it, and a second maintenance
    // within the interval is not due.
    emu.state().advance(12);
    collector.run_once().await.expect("refresh");
    collector.refresh_tags().await.expect("tags refresh");
    assert_replica_is_live(&engine).await;
    let mut due = Vec::new();
    for _ in 0..2 {
        let done = store
            .maintain_if_due(Duration::from_secs(3600), Duration::ZERO, None)
            .await
            .expect("maintain if due");
        due.push(done.is_some());
    }
    assert_eq!(due, [true, false]);
    emu.shutdown().await;
}

/// Rows per row group in `a_version_read_straight_...`: several per file.
const SMALL_ROW_GROUP: usize = 32;

// Two workers: the row groups are decoded side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_read_straight_from_its_files_has_the_rows_of_a_delta_scan() {
    // A full scan in three commits, refreshes that MERGE changes, small
    // row groups: the version has several files of several row groups,
    // some of the files rewritten.
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-files");
    let opened = ReplicaStore::open(&dir.file("store")).await.expect("store");
    let store = Arc::new(opened.with_row_groups_of(SMALL_ROW_GROUP));
    let collector = Collector::new(partition(&emu), Arc::clone(&store)).committing_every(100);
    collector.run_once().await.expect("full scan");
    create_jobs(&emu, &["files-a", "files-b"]).await;
    for _ in 0..3 {
        emu.state().advance(12);
        collector.run_once().await.expect("refresh");
    }
    // New tags of finished jobs wait for a tags refresh.
    collector.refresh_tags().await.expect("tags refresh");
    let sorted = |batches: &[RecordBatch]| {
        let mut rows = rows_as_text(batches);
        rows.sort();
        rows
    };
    let read_both_ways = || async {
        let table = store.latest().await.expect("latest version");
        let PlainRead::Rows(direct) = read_plain_version(&table, usize::MAX).await.expect("read")
        else {
            panic!("this project's tables are plain")
        };
        assert!(direct.iter().all(|batch| batch.schema() == table_schema()));
        let scanned: Vec<RecordBatch> = all_rows(&table)
            .await
            .expect("scan")
            .try_collect()
            .await
            .expect("rows");
        let rows = sorted(&direct);
        // The living emulator made jobs too as its time advanced.
        assert!(rows.len() >= JOBS + 2, "{} rows", rows.len());
        assert_eq!(rows, sorted(&scanned));
        (table, rows)
    };
    let (table, rows) = read_both_ways().await;
    let fewer = read_plain_version(&table, rows.len() - 1)
        .await
        .expect("read");
    assert!(matches!(fewer, PlainRead::TooMany), "{fewer:?}");
    let groups = row_groups(&table);
    assert!(groups.len() > 1, "{} files", groups.len());
    assert!(groups.iter().any(|file| file.len() > 1), "{groups:?}");
    assert!(groups.iter().flatten().all(|&rows| rows <= SMALL_ROW_GROUP));
    // What the image holds is that read.
    let image = store.in_memory().await.expect("read").expect("in memory");
    assert_eq!(sorted(&image), rows);
    // Compaction writes one file, of small row groups too.
    store
        .maintain(Duration::ZERO, None)
        .await
        .expect("maintain");
    let (table, compacted) = read_both_ways().await;
    assert_eq!(compacted, rows);
    let groups = row_groups(&table);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].len(), rows.len().div_ceil(SMALL_ROW_GROUP));
    // And the image, so read, is the live table, value for value.
    assert_replica_is_live(&engine(&emu, &store)).await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_takes_its_latest_version_from_the_copy_beside_it_and_only_that_version() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-copy");
    let location = dir.file("store");
    let store = Arc::new(ReplicaStore::open(&location).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    // Reading a version from the files writes its copy.
    let image = store.in_memory().await.expect("read").expect("in memory");
    store.image_copy_written().await;
    let copy = ImageCopy::beside(&location).expect("a local store keeps a copy");
    let copied = copy.read().expect("a whole copy").expect("a copy");
    assert_eq!(rows_as_text(&copied.batches), rows_as_text(&image));
    let table = store.latest().await.expect("latest version");
    assert_eq!(
        Some(&copied.key),
        VersionKey::of(&table).expect("key").as_ref()
    );

    // A store opened again takes the copy as it is: one made a row short
    // on purpose shows that the files were not read.
    let mut short = copied.batches.clone();
    let last = short.pop().expect("a batch");
    short.push(last.slice(0, last.num_rows() - 1));
    copy.write(&copied.key, &short).expect("the short copy");
    let reopened = ReplicaStore::open(&location).await.expect("reopened");
    let read = reopened
        .in_memory()
        .await
        .expect("read")
        .expect("in memory");
    assert_eq!(rows_as_text(&read), rows_as_text(&short));

    // After a commit the copy is of an older version: not used, and the
    // new version's copy replaces it.
    create_jobs(&emu, &["copy-a", "copy-b"]).await;
    collector.run_once().await.expect("refresh");
    let after_commit = Arc::new(ReplicaStore::open(&location).await.expect("reopened"));
    let read = after_commit
        .in_memory()
        .await
        .expect("read")
        .expect("in memory");
    assert_eq!(
        read.iter().map(RecordBatch::num_rows).sum::<usize>(),
        JOBS + 2
    );
    assert_replica_is_live(&engine(&emu, &after_commit)).await;
    after_commit.image_copy_written().await;
    let table = after_commit.latest().await.expect("latest version");
    let copied = copy.read().expect("a whole copy").expect("a copy");
    assert_eq!(Some(copied.key), VersionKey::of(&table).expect("key"));

    // A torn copy is not used either: the files are read.
    let whole = std::fs::read(copy.path()).expect("the copy");
    std::fs::write(copy.path(), &whole[..whole.len() / 3]).expect("torn");
    let after_tear = Arc::new(ReplicaStore::open(&location).await.expect("reopened"));
    assert_replica_is_live(&engine(&emu, &after_tear)).await;
    emu.shutdown().await;
}

/// A store opened beside another that commits sees each of its commits at
/// its next read, and while nothing is committed stays where it is (a
/// guard for any shortcut in `ReplicaStore::latest`).
#[tokio::test]
async fn a_store_that_only_reads_sees_each_commit_of_another_at_its_next_read() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-reader");
    let location = dir.file("store");
    let writer = Arc::new(ReplicaStore::open(&location).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&writer));
    collector.run_once().await.expect("full scan");
    let reader = Arc::new(ReplicaStore::open(&location).await.expect("reader"));
    let version = |table: deltalake_core::DeltaTable| table.version().expect("a version");
    let opened = version(reader.latest().await.expect("latest"));
    assert_eq!(opened, version(writer.latest().await.expect("latest")));
    assert_eq!(version(reader.latest().await.expect("latest")), opened);

    for (round, name) in ["reader-a", "reader-b"].into_iter().enumerate() {
        create_jobs(&emu, &[name]).await;
        collector.run_once().await.expect("refresh");
        let committed = version(writer.latest().await.expect("latest"));
        assert!(committed > opened, "round {round}: no commit");
        assert_eq!(version(reader.latest().await.expect("latest")), committed);
        let rows = reader.in_memory().await.expect("read").expect("in memory");
        assert_eq!(
            rows.iter().map(RecordBatch::num_rows).sum::<usize>(),
            JOBS + round + 1
        );
        assert_replica_is_live(&engine(&emu, &reader)).await;
    }
    emu.shutdown().await;
}

/// The rows of each row group of each file of `table`'s version.
fn row_groups(table: &deltalake_core::DeltaTable) -> Vec<Vec<usize>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    table
        .get_file_uris()
        .expect("files")
        .map(|uri| {
            let path = match url::Url::parse(&uri) {
                Ok(url) => url.to_file_path().expect("a local file"),
                Err(_) => std::path::PathBuf::from(&uri),
            };
            let reader = SerializedFileReader::new(std::fs::File::open(path).expect("open"))
                .expect("a Parquet file");
            reader
                .metadata()
                .row_groups()
                .iter()
                .map(|group| group.num_rows() as usize)
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_job_listed_too_late_for_a_refresh_is_added_by_the_next_reconcile() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-late-job");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let key = partition(&emu).key;
    // The oldest job, as if it had shown up in listings only now: the
    // store lacks it, and it is far older than a refresh lists.
    let engine = engine(&emu, &store);
    let oldest = run(
        &engine,
        "SELECT _key FROM aws.sagemaker_compilation_job ORDER BY creation_time LIMIT 1",
    )
    .await;
    let oldest = {
        use arrow::array::AsArray;
        oldest[0].column(0).as_string::<i32>().value(0).to_owned()
    };
    let watermark = store.watermark(&key).await.expect("read").expect("scanned");
    store
        .commit(
            &key,
            &RecordBatch::new_empty(table_schema()),
            std::slice::from_ref(&oldest),
            &store.jobs_of(&key).await.expect("read"),
            Some(watermark),
            None,
        )
        .await
        .expect("remove it");
    let refresh = collector.run_once().await.expect("refresh");
    assert_eq!(refresh.new, 0, "{refresh:?}");
    emu.state().reset_stats();
    let reconcile = collector.reconcile().await.expect("reconcile");
    assert_eq!((reconcile.new, reconcile.written), (1, 1), "{reconcile:?}");
    let made = calls(&emu);
    assert_eq!(made.get("DescribeCompilationJob"), Some(&1), "{made:?}");
    assert_replica_is_live(&engine).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_refresh_describes_only_new_and_running_jobs_under_both_paging_models() {
    for paging in [FilterPaging::BeforeCut, FilterPaging::AfterCut] {
        let emu = emulator(paging).await;
        let dir = TempDir::new(&format!("replica-refresh-{paging}"));
        let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
        let collector = Collector::new(partition(&emu), Arc::clone(&store));
        collector.run_once().await.expect("full scan");
        let m = running(&emu);
        assert!(m > 0, "some jobs are running");
        let new = ["fresh-a", "fresh-b", "fresh-c"];
        create_jobs(&emu, &new).await;
        let k = new.len() as u64;
        emu.state().reset_stats();
        let report = collector.run_once().await.expect("refresh");
        assert!(!report.full_scan);
        let made = calls(&emu);
        // k new jobs and m running ones, each described once (tags too).
        assert_eq!(
            made.get("DescribeCompilationJob"),
            Some(&(k + m)),
            "{paging}: {made:?}"
        );
        assert_eq!(made.get("ListTags"), Some(&(k + m)), "{paging}: {made:?}");
        // ceil(k/100) + 1 pages at most: newest first, down to the watermark.
        let pages = made.get("ListCompilationJobs").copied().unwrap_or(0);
        assert!((1..=2).contains(&pages), "{paging}: {made:?}");
        let engine = engine(&emu, &store);
        assert_replica_is_live(&engine).await;

        // A restart: a new store handle on the same directory resumes from
        // its watermark; nothing finished is described again.
        drop(collector);
        // Nothing in memory: the refresh plans from the store's files.
        let reopened = Arc::new(
            ReplicaStore::open(&dir.file("store"))
                .await
                .expect("reopen")
                .keeping_in_memory(0),
        );
        let collector = Collector::new(partition(&emu), Arc::clone(&reopened));
        emu.state().reset_stats();
        let report = collector.run_once().await.expect("refresh after restart");
        assert!(!report.full_scan, "{paging}: no full scan after a restart");
        let made = calls(&emu);
        assert_eq!(
            made.get("DescribeCompilationJob"),
            Some(&running(&emu)),
            "{paging}: only running jobs: {made:?}"
        );
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn a_running_job_that_is_gone_leaves_the_replica() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-gone");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let gone = emu
        .state()
        .jobs()
        .into_iter()
        .find(|job| can_change(job.describe["CompilationJobStatus"].as_str().unwrap_or("")))
        .expect("a running job");
    let name = gone.describe["CompilationJobName"]
        .as_str()
        .expect("name")
        .to_owned();
    assert!(emu.state().vanish(&name));
    let report = collector.run_once().await.expect("refresh");
    assert_eq!(report.removed, 1);
    let engine = engine(&emu, &store);
    let left = run(
        &engine,
        &format!(
            "SELECT count(*) AS n FROM aws.sagemaker_compilation_job \
             WHERE compilation_job_name = '{name}'"
        ),
    )
    .await;
    assert_eq!(rows_as_text(&left), vec!["0"]);
    assert_replica_is_live(&engine).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn until_the_first_full_scan_is_stored_queries_are_answered_live() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-not-yet");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let engine = engine(&emu, &store);
    let rows = run(&engine, EVERYTHING).await;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), JOBS);
    assert!(
        calls(&emu).contains_key("DescribeCompilationJob"),
        "answered live"
    );
    emu.shutdown().await;
}

/// How long a step of the restart test may take.
const STEP: Duration = Duration::from_secs(60);

/// `serve --store DIR` against `emu`, with the emulator's dummy
/// credentials; its Flight URL and its metrics' address.
async fn serve_with_store(emu: &Emulator, store: &str) -> (Process, String, SocketAddr) {
    let (process, found) = Binary::new(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--endpoint-url",
        &emu.endpoint_url(),
        "--store",
        store,
        "--refresh-interval",
        "3600",
    ])
    .envs(&[
        ("AWS_ACCESS_KEY_ID", "emulator"),
        ("AWS_SECRET_ACCESS_KEY", "emulator"),
        ("AWS_REGION", "us-east-1"),
        ("RUST_LOG", "info"),
    ])
    .deadline(STEP)
    .start(&["metrics on ", "listening on "])
    .await;
    let metrics = found[0]
        .trim()
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("a metrics address in {found:?}"));
    (process, found[1].trim().to_owned(), metrics)
}

/// Waits (bounded by [`STEP`]) until the server has logged `count`
/// finished replica runs.
async fn await_refreshes(server: &Process, count: usize) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let done = server
            .stderr_lines()
            .iter()
            .filter(|line| line.contains("replica refreshed"))
            .count();
        if done >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica run within {STEP:?}: {}",
            server.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count_rows(url: &str) -> String {
    let output = Binary::new(&[
        "query",
        "SELECT count(*) AS n FROM aws.sagemaker_compilation_job",
        "--format",
        "csv",
        "--server",
        url,
    ])
    .deadline(STEP)
    .output()
    .await;
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_server_killed_and_restarted_answers_from_its_store_and_describes_only_running_jobs() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-restart");
    let store = dir.file("store");
    let (first, _, _) = serve_with_store(&emu, &store).await;
    await_refreshes(&first, 1).await;
    // kill -9: no shutdown, no flush.
    first.stop().await;

    emu.state().reset_stats();
    let (second, url, metrics) = serve_with_store(&emu, &store).await;
    await_refreshes(&second, 1).await;
    // Freshness in metrics: one successful refresh (not a full scan) of
    // the partition, and when it finished. (With one region and no
    // accounts file the server labels its partition with empty values.)
    let (_, _, text) = common::http(metrics, "GET", "/metrics", &[], "").await;
    let samples = common::metric_samples(&text);
    let partition = r#"account="",region="""#;
    let series = |name: &str, labels: &str| {
        common::metric_sample(&samples, &format!("sagemaker_flight_{name}{{{labels}}}"))
    };
    assert_eq!(
        series(
            "replica_runs_total",
            &format!(r#"kind="refresh",outcome="ok",{partition}"#)
        ),
        1.0
    );
    assert_eq!(
        series(
            "replica_runs_total",
            &format!(r#"kind="full_scan",outcome="ok",{partition}"#)
        ),
        0.0
    );
    assert!(series("replica_last_success_seconds", partition) > 1.7e9);
    let restart = calls(&emu);
    let m = running(&emu);
    assert_eq!(
        restart.get("DescribeCompilationJob"),
        Some(&m),
        "{restart:?}"
    );
    assert_eq!(restart.get("ListTags"), Some(&m), "{restart:?}");
    assert!(
        restart
            .get("ListCompilationJobs")
            .is_some_and(|pages| *pages <= 2),
        "{restart:?}"
    );
    assert_eq!(count_rows(&url).await, format!("n\n{JOBS}"));
    assert_eq!(calls(&emu), restart, "the query made no SageMaker call");
    second.stop().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn the_replica_follows_a_living_emulator_under_both_paging_models() {
    // Each paging model, with the Tagging API allowed and denied.
    for (paging, denied) in [
        (FilterPaging::BeforeCut, false),
        (FilterPaging::AfterCut, false),
        (FilterPaging::BeforeCut, true),
        (FilterPaging::AfterCut, true),
    ] {
        let case = format!("{paging}, Tagging API denied: {denied}");
        let emu = emulator(paging).await;
        emu.state().set_tagging_api_denied(denied);
        let dir = TempDir::new(&format!("replica-living-{paging}-{denied}"));
        let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
        let collector = Collector::new(partition(&emu), Arc::clone(&store));
        collector.run_once().await.expect("full scan");
        let engine = engine(&emu, &store);
        let mut seen = Vec::new();
        for round in 0..4 {
            let events = emu.state().advance(40);
            seen.extend(
                events
                    .iter()
                    .map(|e| format!("{e:?}").split('(').next().map(str::to_owned)),
            );
            // New and changing jobs: the refresh; tags and deletions of
            // finished jobs: the tags refresh (a reconcile too).
            collector.run_once().await.expect("refresh");
            emu.state().reset_stats();
            collector.refresh_tags().await.expect("tags refresh");
            let made = calls(&emu);
            let (list_tags, get_resources) = (
                made.get("ListTags").copied().unwrap_or_default(),
                made.get("GetResources").copied().unwrap_or_default(),
            );
            let tagged = events
                .iter()
                .filter(|e| matches!(e, ActivityEvent::Tagged(_)))
                .count() as u64;
            if denied {
                // Refused once, then a ListTags per job.
                assert_eq!(get_resources, 1, "{case}: {made:?}");
                assert!(list_tags >= JOBS as u64 / 2, "{case}: {made:?}");
            } else {
                // A page or three of GetResources; ListTags only for the
                // jobs whose tags changed.
                assert!((1..=4).contains(&get_resources), "{case}: {made:?}");
                assert!(list_tags <= tagged, "{case}, round {round}: {made:?}");
            }
            let replica = run(&engine, EVERYTHING).await;
            let live = run(&engine, EVERYTHING_LIVE).await;
            assert_eq!(
                rows_as_text(&replica),
                rows_as_text(&live),
                "{case}, round {round}: the replica is the live table"
            );
        }
        for kind in ["Created", "Moved", "Tagged", "Deleted"] {
            assert!(
                seen.iter().flatten().any(|k| k == kind),
                "{case}: no {kind} in {seen:?}"
            );
        }
        // A reconcile lists, and calls nothing else.
        emu.state().reset_stats();
        collector.reconcile().await.expect("reconcile");
        let made = calls(&emu);
        assert_eq!(
            made.keys().collect::<Vec<_>>(),
            ["ListCompilationJobs"],
            "{case}: {made:?}"
        );
        emu.shutdown().await;
    }
}

/// Polls `sql` (bounded) until `done` holds for its rows, as text.
async fn poll_until(
    engine: &QueryEngine,
    sql: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = rows_as_text(&run(engine, sql).await);
        if done(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql}: stayed {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_freshness_table_shows_each_partitions_watermark_rows_and_last_runs() {
    const FRESHNESS: &str = "SELECT account_id, region, collected_here, rows, \
         CAST(watermark AS BIGINT), last_success IS NOT NULL, last_error IS NULL, \
         failures_in_a_row FROM aws.sagemaker_compilation_job_freshness";
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-freshness");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let board = StatusBoard::default();
    let engine = engine_reporting(&emu, &store, board.clone());
    let partition_cells = r#""123456789012" | "us-east-1" | true"#;
    let before = poll_until(&engine, FRESHNESS, |_| true).await;
    assert_eq!(
        before,
        [format!("{partition_cells} | 0 | NULL | false | true | 0")],
        "no run yet"
    );
    let newest = rows_as_text(
        &run(
            &engine,
            "SELECT CAST(max(creation_time) AS BIGINT) FROM aws.sagemaker_compilation_job_live",
        )
        .await,
    );
    let collector = Collector::new(partition(&emu), Arc::clone(&store)).reporting_to(board);
    let schedule = Schedule {
        refresh: Duration::from_millis(50),
        ..Schedule::default()
    };
    let running = tokio::spawn(async move { collector.run_every(schedule).await });
    let fresh = format!(
        "{partition_cells} | {JOBS} | {} | true | true | 0",
        newest[0]
    );
    poll_until(&engine, FRESHNESS, |rows| rows == [fresh.as_str()]).await;
    // Every call fails: the runs fail and say why; the rows stay.
    emu.state().set_faults(0.0, 1.0);
    let failing = poll_until(&engine, FRESHNESS, |rows| {
        rows[0].contains("| true | false |")
    })
    .await;
    assert!(
        failing[0].starts_with(&format!("{partition_cells} | {JOBS} |")),
        "{failing:?}"
    );
    assert!(
        !failing[0].ends_with("| 0"),
        "failures counted: {failing:?}"
    );
    let error = rows_as_text(
        &run(
            &engine,
            "SELECT last_error FROM aws.sagemaker_compilation_job_freshness",
        )
        .await,
    );
    assert!(
        error[0].contains("SageMaker"),
        "the error names the call: {error:?}"
    );
    emu.state().set_faults(0.0, 0.0);
    poll_until(&engine, FRESHNESS, |rows| rows == [fresh.as_str()]).await;
    running.abort();
    emu.shutdown().await;
}

#[tokio::test]
async fn a_refresh_writes_only_what_changed_and_commits_nothing_when_nothing_did() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-no-change");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let collector = Collector::new(partition(&emu), Arc::clone(&store));
    collector.run_once().await.expect("full scan");
    let version = |table: deltalake_core::DeltaTable| table.version();
    let scanned = version(store.latest().await.expect("table"));
    // Running jobs are described again, but none changed: no write.
    let quiet = collector.run_once().await.expect("refresh");
    assert_eq!((quiet.written, quiet.removed), (0, 0));
    assert_eq!(version(store.latest().await.expect("table")), scanned);
    // Some events: exactly the jobs they touched are written, in one commit.
    let events = emu.state().advance(12);
    // A refresh sees new jobs, status changes and the tags of jobs that
    // are still running (a finished job's new tags wait for a tags refresh).
    let running: std::collections::BTreeSet<String> = emu
        .state()
        .jobs()
        .iter()
        .filter(|job| {
            can_change(
                job.describe["CompilationJobStatus"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .map(|job| {
            job.describe["CompilationJobName"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let touched: std::collections::BTreeSet<&String> = events
        .iter()
        .filter_map(|event| match event {
            ActivityEvent::Created(name) | ActivityEvent::Moved(name, _) => Some(name),
            ActivityEvent::Tagged(name) if running.contains(name) => Some(name),
            _ => None,
        })
        .collect();
    let busy = collector.run_once().await.expect("refresh");
    assert_eq!(busy.written, touched.len(), "{events:?}");
    assert_eq!(
        version(store.latest().await.expect("table")),
        scanned.map(|v| v + 1)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_tags_refresh_is_due_by_the_time_the_store_records_across_restarts() {
    let emu = emulator(FilterPaging::BeforeCut).await;
    let dir = TempDir::new("replica-tags-due");
    let store = Arc::new(ReplicaStore::open(&dir.file("store")).await.expect("store"));
    let key = partition(&emu).key;
    assert_eq!(store.tags_refreshed_at(&key).await.expect("read"), None);
    let hourly = Schedule {
        tags_refresh: Duration::from_secs(3600),
        ..Schedule::default()
    };
    let kinds =
        |passes: Vec<(&'static str, _)>| passes.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    // The full scan reads every tag: no tags refresh is due after it.
    let first = Collector::new(partition(&emu), Arc::clone(&store));
    assert_eq!(
        kinds(first.run_due(&hourly).await.expect("run")),
        ["full_scan"]
    );
    let scanned_at = store.tags_refreshed_at(&key).await.expect("read");
    assert!(scanned_at.is_some());
    // A new collector (a restart, or the next `collect --once`) reads the
    // time from the store: within the hour, a refresh only.
    let restarted = Collector::new(partition(&emu), Arc::clone(&store));
    emu.state().reset_stats();
    assert_eq!(
        kinds(restarted.run_due(&hourly).await.expect("run")),
        ["refresh"]
    );
    assert!(!calls(&emu).contains_key("GetResources"));
    // Past the interval: a refresh, then a tags refresh, whose time is kept.
    let always = Schedule {
        tags_refresh: Duration::ZERO,
        ..Schedule::default()
    };
    assert_eq!(
        kinds(restarted.run_due(&always).await.expect("run")),
        ["refresh", "tags_refresh"]
    );
    assert!(calls(&emu).contains_key("GetResources"));
    assert!(store.tags_refreshed_at(&key).await.expect("read") >= scanned_at);
    emu.shutdown().await;
}
