//! The collector of one (account, region) partition: keeps the store's
//! rows of that partition equal to what SageMaker holds, asking the API
//! only about what can have changed.
//!
//! - First run (no watermark in the store): a full scan, every job
//!   described and its tags read, through the partition's gates.
//! - Then each refresh: a newest-first listing down to the watermark minus
//!   [`REFRESH_OVERLAP`] (no filter, so it stays cheap whether AWS filters
//!   before or after it cuts pages), and a Describe (and ListTags) by name
//!   of every job that is new, or that the store holds in a status that
//!   can still change. A COMPLETED, FAILED or STOPPED job never changes
//!   again but for its tags and its deletion. A refresh in which k jobs
//!   were created and m are running costs about ceil(k/100) + 1 List pages
//!   and k + m Describes. Only the jobs that changed (a new status,
//!   LastModifiedTime or tags) are written, and a refresh that found no
//!   change commits nothing.
//! - A job described by name that is gone (ResourceNotFound) is removed.
//! - Tags change without moving LastModifiedTime, and a deleted job simply
//!   stops being listed: on their own cadences, a tags refresh (List pages
//!   and the Tagging API's GetResources, 100 tagged jobs a call, or where
//!   that is denied a ListTags per job; a Describe only for a job whose
//!   tags changed)
//!   and a reconcile (List pages only) remove the jobs no longer listed.
//!   Both describe a listed job the store lacks (one that showed up in
//!   listings later than [`REFRESH_OVERLAP`] after its creation), and are
//!   followed by the store's compaction and vacuum when one is due
//!   (`maintenance.rs`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::TryStreamExt;

use crate::obs::metrics::{self, PartitionLabels};
use crate::replica::changes::{differs, not_known, not_listed, same_tags};
use crate::replica::error::ReplicaError;
use crate::replica::maintenance::{MAINTENANCE_INTERVAL, VACUUM_RETENTION};
use crate::replica::status::StatusBoard;
use crate::replica::store::{KnownJob, ReplicaStore};
use crate::source::{JobRecord, Partition, RowFilter, ScanRequest};
use crate::table::convert::{records_to_batch, to_micros};
use crate::table::scan_plan::date_time_of_micros;
use crate::table::schema::{ALL_COLUMNS, table_schema};

/// How far below the watermark a refresh lists again: a job may show up
/// in listings a little after its creation time. Each second of it costs
/// listing the jobs created in that second again at every refresh (at a
/// hundred jobs a minute, 10 s is a sixth of a page); a job that shows up
/// later than this is added by the next reconcile, which lists every job.
pub const REFRESH_OVERLAP: Duration = Duration::from_secs(10);
/// Jobs per commit of a full scan: what memory holds of it at a time.
pub const FULL_SCAN_COMMIT_JOBS: usize = 10_000;
/// How often a collector refreshes, unless configured.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How often a collector reconciles (lists every job), unless configured.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(3600);
/// How often a collector reads every job's tags, unless configured.
pub const DEFAULT_TAGS_REFRESH_INTERVAL: Duration = Duration::from_secs(900);

/// When a collector runs what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Between two refreshes (new jobs, and jobs that can still change).
    pub refresh: Duration,
    /// Between two reconciles (every job listed; the unlisted removed).
    pub reconcile: Duration,
    /// Between two reads of every job's tags (a reconcile too).
    pub tags_refresh: Duration,
    /// How long the history keeps a row (`None`: for ever); older rows go
    /// at the store's maintenance (`--history-retention`).
    pub history_retention: Option<Duration>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            refresh: DEFAULT_REFRESH_INTERVAL,
            reconcile: DEFAULT_RECONCILE_INTERVAL,
            tags_refresh: DEFAULT_TAGS_REFRESH_INTERVAL,
            history_retention: None,
        }
    }
}

/// The statuses after which a job never changes again (but for its tags).
const TERMINAL: [&str; 3] = ["COMPLETED", "FAILED", "STOPPED"];

/// Whether a job in `status` can still change.
pub fn can_change(status: &str) -> bool {
    !TERMINAL.contains(&status)
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Whether it was a full scan.
    pub full_scan: bool,
    /// Rows written (new or changed).
    pub written: usize,
    /// Jobs removed.
    pub removed: usize,
    /// Jobs described that the store did not hold (every job of a full
    /// scan).
    pub new: usize,
    /// Jobs the store held that were described again (a refresh: those in
    /// a status that can change; a tags refresh: those whose tags did).
    pub rechecked: usize,
}

/// The collector of one partition.
#[derive(Debug)]
pub struct Collector {
    partition: Partition,
    store: Arc<ReplicaStore>,
    /// The partition, as metrics label it.
    labels: PartitionLabels,
    /// Where its runs are reported, for the freshness table.
    board: StatusBoard,
    /// Whether a failed Tagging API call was logged (once is enough).
    tagging_failed: AtomicBool,
    /// Jobs per commit of a full scan.
    commit_every: usize,
}

impl Collector {
    /// The collector of `partition` into `store`.
    pub fn new(partition: Partition, store: Arc<ReplicaStore>) -> Collector {
        let labels = partition.key.labels();
        metrics::preregister_replica(&labels);
        Collector {
            partition,
            store,
            labels,
            board: StatusBoard::default(),
            tagging_failed: AtomicBool::new(false),
            commit_every: FULL_SCAN_COMMIT_JOBS,
        }
    }

    /// The collector, committing a full scan `jobs` at a time instead of
    /// [`FULL_SCAN_COMMIT_JOBS`].
    pub fn committing_every(self, jobs: usize) -> Collector {
        Collector {
            commit_every: jobs,
            ..self
        }
    }

    /// The collector, reporting each run of [`Collector::run_every`] to
    /// `board`.
    pub fn reporting_to(self, board: StatusBoard) -> Collector {
        Collector { board, ..self }
    }

    /// One run: the first full scan, or a refresh.
    pub async fn run_once(&self) -> Result<RunReport, ReplicaError> {
        match self.store.watermark(&self.partition.key).await? {
            None => self.full_scan().await,
            Some(watermark) => self.refresh(watermark).await,
        }
    }

    /// The passes due now by `schedule`, in order: the first full scan, or
    /// a refresh, then a tags refresh if the store's last one is older than
    /// `schedule.tags_refresh` (so a restarted or `--once` collector does
    /// it when due, not only a long-running one). Stops at the first error.
    pub async fn run_due(
        &self,
        schedule: &Schedule,
    ) -> Result<Vec<(&'static str, RunReport)>, ReplicaError> {
        let first = self.run_once().await?;
        let mut passes = vec![(
            if first.full_scan {
                "full_scan"
            } else {
                "refresh"
            },
            first,
        )];
        if self.tags_refresh_due(schedule).await? {
            passes.push(("tags_refresh", self.refresh_tags().await?));
            self.maintain_store(schedule).await;
        }
        Ok(passes)
    }

    /// Whether the store's last tags refresh of the partition is older
    /// than `schedule.tags_refresh` (or missing).
    async fn tags_refresh_due(&self, schedule: &Schedule) -> Result<bool, ReplicaError> {
        let last = self.store.tags_refreshed_at(&self.partition.key).await?;
        Ok(last.is_none_or(|at| {
            unix_seconds().saturating_sub(at)
                >= i64::try_from(schedule.tags_refresh.as_secs()).unwrap_or(i64::MAX)
        }))
    }

    /// Runs now and then by `schedule`, until dropped; a failed run is
    /// logged and the next one tries again. A tags refresh is due by the
    /// time the store records for the last one, so restarts do not put it
    /// off; a reconcile (also part of each tags refresh) by this process's
    /// clock.
    pub async fn run_every(&self, schedule: Schedule) {
        let mut ticks = tokio::time::interval(schedule.refresh);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_reconcile = tokio::time::Instant::now();
        loop {
            ticks.tick().await;
            let now = tokio::time::Instant::now();
            let scanned = matches!(self.store.watermark(&self.partition.key).await, Ok(Some(_)));
            let tags_due = scanned && self.tags_refresh_due(&schedule).await.unwrap_or(false);
            let run = if tags_due {
                last_reconcile = now;
                ("tags_refresh", self.refresh_tags().await)
            } else if scanned && now - last_reconcile >= schedule.reconcile {
                last_reconcile = now;
                ("reconcile", self.reconcile().await)
            } else {
                ("refresh", self.run_once().await)
            };
            let kind = match &run {
                (_, Ok(report)) if report.full_scan => "full_scan",
                (kind, _) => kind,
            };
            metrics::replica_run(
                kind,
                &self.labels,
                run.1.as_ref().ok().map(|report| report.written),
            );
            self.board.record(
                &self.partition.key,
                run.1.as_ref().err().map(ToString::to_string),
            );
            let reconciled = matches!(run, ("reconcile" | "tags_refresh", Ok(_)));
            match run {
                (kind, Ok(report)) => tracing::info!(
                    partition = %self.partition.key,
                    kind,
                    full_scan = report.full_scan,
                    written = report.written,
                    removed = report.removed,
                    new = report.new,
                    rechecked = report.rechecked,
                    "replica refreshed"
                ),
                (kind, Err(error)) => tracing::warn!(
                    partition = %self.partition.key,
                    kind,
                    %error,
                    "replica refresh failed; the next one tries again"
                ),
            }
            if reconciled {
                self.maintain_store(&schedule).await;
            }
        }
    }

    /// Compacts and vacuums the store if this process has not for
    /// [`MAINTENANCE_INTERVAL`]; a failure is logged (the next one tries
    /// again), never a failed run.
    async fn maintain_store(&self, schedule: &Schedule) {
        match self
            .store
            .maintain_if_due(
                MAINTENANCE_INTERVAL,
                VACUUM_RETENTION,
                schedule.history_retention,
            )
            .await
        {
            Ok(Some(done)) => tracing::info!(
                files_compacted = done.files_compacted,
                files_written = done.files_written,
                files_deleted = done.files_deleted,
                history_rows_removed = done.history_rows_removed,
                "replica store compacted and vacuumed"
            ),
            Ok(None) => {}
            Err(error) => tracing::warn!(
                %error,
                "compacting or vacuuming the replica store failed; the next reconcile tries again"
            ),
        }
    }

    /// Lists every job (List pages only) and removes from the store the
    /// jobs no longer listed; describes the listed jobs the store lacks.
    pub async fn reconcile(&self) -> Result<RunReport, ReplicaError> {
        let Some(watermark) = self.store.watermark(&self.partition.key).await? else {
            return self.full_scan().await;
        };
        let known = self.store.jobs_of(&self.partition.key).await?;
        let listed: Vec<JobRecord> = self
            .partition
            .source
            .scan(ScanRequest::default())
            .try_collect()
            .await?;
        let gone = not_listed(&known, &listed);
        let missing = not_known(&known, &listed);
        let new = missing.len();
        let records = self.describe(missing, &known).await?;
        if !records.is_empty() || !gone.is_empty() {
            self.write(&records, &gone, &known, Some(watermark), None)
                .await?;
        }
        Ok(RunReport {
            written: records.len(),
            removed: gone.len(),
            new,
            ..RunReport::default()
        })
    }

    /// Reads every job's tags: through the Tagging API (List pages and a
    /// GetResources per 100 tagged jobs) where it answers, else a ListTags
    /// per job. A job whose tags changed is described
    /// again (its tags read by ListTags, which is never behind) and
    /// written, and the jobs no longer listed are removed (a reconcile too).
    pub async fn refresh_tags(&self) -> Result<RunReport, ReplicaError> {
        let Some(watermark) = self.store.watermark(&self.partition.key).await? else {
            return self.full_scan().await;
        };
        let known = self.store.jobs_of(&self.partition.key).await?;
        // Any failure of the Tagging API (denied, not served by a custom
        // endpoint, throttled past its retries) falls back to ListTags: a
        // tags refresh that failed would also skip its reconcile.
        let tagged = match self.partition.source.tagged_jobs().await {
            Ok(tagged) => tagged,
            Err(error) => {
                if !self.tagging_failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        partition = %self.partition.key,
                        %error,
                        "the Tagging API failed (GetResources needs tag:GetResources): tags are read by ListTags per job"
                    );
                }
                None
            }
        };
        let request = ScanRequest {
            tags: tagged.is_none(),
            ..ScanRequest::default()
        };
        let mut listed: Vec<JobRecord> = self.partition.source.scan(request).try_collect().await?;
        if let Some(tagged) = &tagged {
            // An untagged job is absent from GetResources' answer.
            for record in &mut listed {
                record.tags = Some(tagged.get(&record.summary.arn).cloned().unwrap_or_default());
            }
        }
        let changed: Vec<String> = listed
            .iter()
            .filter(|record| {
                known.get(&record.summary.arn).is_some_and(|job| {
                    record
                        .tags
                        .as_ref()
                        .is_some_and(|tags| !same_tags(tags, &job.tags))
                })
            })
            .map(|record| record.summary.name.clone())
            .collect();
        let gone = not_listed(&known, &listed);
        let missing = not_known(&known, &listed);
        let (new, rechecked) = (missing.len(), changed.len());
        // GetResources may be behind: what ListTags says now is written
        // only where it differs from the store.
        let records = self
            .describe(changed.into_iter().chain(missing).collect(), &known)
            .await?;
        // Even with nothing to write: the commit records when the tags
        // were read.
        self.write(
            &records,
            &gone,
            &known,
            Some(watermark),
            Some(unix_seconds()),
        )
        .await?;
        Ok(RunReport {
            written: records.len(),
            removed: gone.len(),
            new,
            rechecked,
            ..RunReport::default()
        })
    }

    /// Describes (and reads the tags of) the jobs `names`, keeping those
    /// that say more than the store's `known` rows.
    async fn describe(
        &self,
        names: Vec<String>,
        known: &HashMap<String, KnownJob>,
    ) -> Result<Vec<JobRecord>, ReplicaError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .partition
            .source
            .lookup(names, true, RowFilter::default())
            .try_filter(|record| {
                futures::future::ready(differs(record, known.get(&record.summary.arn)))
            })
            .try_collect()
            .await?)
    }

    /// Every job described and its tags read, committed
    /// [`FULL_SCAN_COMMIT_JOBS`] at a time (memory holds one part, not the
    /// partition), the watermark with the last part: until it is in, the
    /// scan is not done, and the next run makes it again (each commit is a
    /// MERGE, so the jobs already in are not doubled).
    async fn full_scan(&self) -> Result<RunReport, ReplicaError> {
        let request = ScanRequest {
            describe: true,
            tags: true,
            ..ScanRequest::default()
        };
        // Empty unless a scan cut short left parts of it in the store:
        // those jobs are written (and recorded in the history) again only
        // if they changed since.
        let known = self.store.jobs_of(&self.partition.key).await?;
        let mut parts = self
            .partition
            .source
            .scan(request)
            .try_chunks(self.commit_every.max(1));
        let (mut watermark, mut written) = (0, 0);
        let mut held: Option<Vec<JobRecord>> = None;
        while let Some(part) = parts.try_next().await.map_err(|error| error.1)? {
            watermark = part
                .iter()
                .map(|record| to_micros(&record.summary.creation_time))
                .fold(watermark, i64::max);
            written += part.len();
            let part: Vec<JobRecord> = part
                .into_iter()
                .filter(|record| differs(record, known.get(&record.summary.arn)))
                .collect();
            // Held back one part, so that the last goes with the watermark.
            if let Some(previous) = held.replace(part) {
                self.write(&previous, &[], &known, None, None).await?;
            }
        }
        let last = held.unwrap_or_default();
        self.write(&last, &[], &known, Some(watermark), Some(unix_seconds()))
            .await?;
        Ok(RunReport {
            full_scan: true,
            written,
            new: written,
            ..RunReport::default()
        })
    }

    async fn refresh(&self, watermark: i64) -> Result<RunReport, ReplicaError> {
        let known = self.store.jobs_of(&self.partition.key).await?;
        let overlap = i64::try_from(REFRESH_OVERLAP.as_micros()).unwrap_or(i64::MAX);
        let since = date_time_of_micros(watermark.saturating_sub(overlap));
        let listed: Vec<_> = self
            .partition
            .source
            .created_since(since)
            .try_collect()
            .await?;
        let newest = listed
            .iter()
            .map(|summary| to_micros(&summary.creation_time))
            .max()
            .unwrap_or(watermark)
            .max(watermark);
        // New jobs, and those that may have changed since they were stored.
        let mut names: BTreeSet<String> = listed
            .iter()
            .filter(|summary| !known.contains_key(&summary.arn))
            .map(|summary| summary.name.clone())
            .collect();
        let new = names.len();
        let running: Vec<String> = known
            .values()
            .filter(|job| can_change(&job.status))
            .map(|job| job.name.clone())
            .collect();
        let rechecked = running.len();
        names.extend(running);
        let records: Vec<JobRecord> = self
            .partition
            .source
            .lookup(names.iter().cloned().collect(), true, RowFilter::default())
            .try_collect()
            .await?;
        let found: BTreeSet<&str> = records.iter().map(|r| r.summary.name.as_str()).collect();
        // Described by name and not found: deleted.
        let gone: Vec<String> = known
            .iter()
            .filter(|(_, job)| names.contains(&job.name) && !found.contains(job.name.as_str()))
            .map(|(arn, _)| arn.clone())
            .collect();
        // A running job described again is mostly unchanged: writing it
        // would rewrite its data file for nothing.
        let changed: Vec<JobRecord> = records
            .into_iter()
            .filter(|record| differs(record, known.get(&record.summary.arn)))
            .collect();
        if changed.is_empty() && gone.is_empty() && newest == watermark {
            return Ok(RunReport {
                new,
                rechecked,
                ..RunReport::default()
            });
        }
        self.write(&changed, &gone, &known, Some(newest), None)
            .await?;
        Ok(RunReport {
            full_scan: false,
            written: changed.len(),
            removed: gone.len(),
            new,
            rechecked,
        })
    }

    /// Commits `records` and `gone` (`known`: the partition's jobs they
    /// were compared with, for the history's kind of change).
    async fn write(
        &self,
        records: &[JobRecord],
        gone: &[String],
        known: &HashMap<String, KnownJob>,
        watermark: Option<i64>,
        tags_refreshed: Option<i64>,
    ) -> Result<(), ReplicaError> {
        let rows = records_to_batch(&table_schema(), &ALL_COLUMNS, records)?;
        self.store
            .commit(
                &self.partition.key,
                &rows,
                gone,
                known,
                watermark,
                tags_refreshed,
            )
            .await
    }
}

/// Now, in Unix seconds.
fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}
