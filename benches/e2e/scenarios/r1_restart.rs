//! R1, restart: a server keeping the replica in a store is stopped and
//! started again; the new one answers `SELECT *` from the store, and its
//! first refresh describes only the jobs that can still change.

use crate::*;

/// What "running" means to the replica: a status a job can leave.
const CHANGEABLE: &str = "SELECT _key FROM aws.sagemaker_compilation_job \
     WHERE compilation_job_status NOT IN ('COMPLETED', 'FAILED', 'STOPPED')";
/// The store holds the partition's first full scan.
pub(super) const STORED: &str =
    "SELECT * FROM aws.sagemaker_compilation_job_freshness WHERE watermark IS NOT NULL";
/// The most a restart may take, in warm snapshot reads.
const R1_MAX_RATIO: f64 = 2.0;

pub(super) const ABOUT: &str = "**R1, restart.** 10,000 jobs at 25 ms. A server with `--store DIR` makes its \
     first full scan into the store and is stopped (SIGKILL); a new server on the same \
     store is started, and the time runs from its start until a full `SELECT *` has \
     answered (process start, store opened, every row read from it). Its calls are \
     counted from its start: its first refresh may describe (and read the tags of) \
     only the jobs the store holds in a status that can still change, never a \
     finished one (judged on Describe, one call a job; ListTags counts pages). The time is compared with a warm snapshot read of the same table \
     (`--cache-ttl 600 --snapshot-ttl 600`, a second `SELECT *`) in the same run \
     (target: restart <= 2 x warm snapshot).";

impl Bench {
    pub(super) async fn r1(&mut self) -> Res<()> {
        let setup = self.setup(10_000, 25);
        let emulator = self.emulator(&setup).await?;
        let store = self.workdir.0.join("r1-store");
        let (first, url) = self.store_server(&setup, &emulator, &store, 3600).await?;
        self.until_rows(&setup, &url, STORED, 1).await?;
        let changeable = sql_query(&url, CHANGEABLE).await?.rows as u64;
        drop(first);

        let mut samples = Vec::new();
        for run in 1..=self.options.runs {
            emulator.reset().await?;
            let started = Instant::now();
            let (mut server, url) = self.store_server(&setup, &emulator, &store, 3600).await?;
            let label = format!("R1 run {run}/{}", self.options.runs);
            let mut sample = self
                .sample(
                    &label,
                    &setup,
                    None,
                    &mut server,
                    &url,
                    Read::Sql(SELECT_ALL),
                )
                .await?;
            if sample.rows != setup.jobs {
                return Err(format!(
                    "{label}: {} rows, expected {}",
                    sample.rows, setup.jobs
                ));
            }
            sample.wall = started.elapsed().as_secs_f64();
            // The first refresh runs at the start: let it finish (its
            // Describes are what this counts), bounded by the timeout.
            self.until_quiet(&setup, &emulator).await?;
            sample.calls = Some(emulator.calls().await?);
            samples.push(sample);
        }
        let warm = self.warm_snapshot(&setup, &emulator).await?;
        let mut row = Row {
            label: "R1".into(),
            setup: format!("{}, store", setup.describe()),
            samples,
            ..Row::default()
        };
        let calls = row.calls().unwrap_or_default();
        // A Describe is one call per job; ListTags counts pages (a job
        // with more tags than a page takes two), so it is shown, not judged.
        row.targets.push(Target::new(
            "R1",
            "after a restart, no Describe of a finished job",
            format!(
                "Describe {}, ListTags {} (pages) for {changeable} running jobs",
                calls.describe, calls.tags
            ),
            format!("Describe {} <= {changeable}", calls.describe),
            Some(calls.describe <= changeable),
        ));
        let restart = row.wall().unwrap_or(f64::NAN);
        let ratio = restart / warm.wall().unwrap_or(f64::NAN);
        row.extra.push(format!(
            "warm snapshot read {}; restart/warm {}",
            secs(warm.wall().unwrap_or(f64::NAN)),
            fmt_ratio(ratio)
        ));
        row.targets.push(Target::new(
            "R1",
            &format!("restart until a full SELECT * <= {R1_MAX_RATIO} x a warm snapshot read"),
            fmt_ratio(ratio),
            format!("restart/warm {} <= {R1_MAX_RATIO}", fmt_ratio(ratio)),
            Some(ratio <= R1_MAX_RATIO),
        ));
        self.rows.push(row);
        self.rows.push(warm);
        Ok(())
    }

    /// A server with cache and snapshot on `emulator`: one cold `SELECT *`,
    /// then `--runs` warm ones, answered from the snapshot.
    async fn warm_snapshot(&self, setup: &Setup, emulator: &Emulator) -> Res<Row> {
        let setup = Setup {
            cache_ttl: 600,
            snapshot_ttl: 600,
            ..*setup
        };
        let (mut server, url) = self.server(&setup, emulator).await?;
        let rows = Some(setup.jobs);
        self.repeat(
            "R1 warm snapshot (cold)",
            &setup,
            emulator,
            &mut server,
            &url,
            SELECT_ALL,
            rows,
            1,
        )
        .await?;
        let samples = self
            .repeat(
                "R1 warm snapshot",
                &setup,
                emulator,
                &mut server,
                &url,
                SELECT_ALL,
                rows,
                self.options.runs,
            )
            .await?;
        Ok(Row {
            label: "R1 warm snapshot".into(),
            setup: setup.describe(),
            samples,
            rss_mib: server.peak_rss_mib(),
            ..Row::default()
        })
    }

    /// Polls `sql` on `url` until it answers `rows` rows (bounded by the
    /// setup's timeout).
    pub(super) async fn until_rows(
        &self,
        setup: &Setup,
        url: &str,
        sql: &str,
        rows: usize,
    ) -> Res<()> {
        let deadline = Instant::now() + setup.timeout();
        loop {
            if sql_query(url, sql)
                .await
                .is_ok_and(|sample| sample.rows == rows)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{sql}: not {rows} rows within {:.0?}",
                    setup.timeout()
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the emulator has seen no call for a while (bounded).
    async fn until_quiet(&self, setup: &Setup, emulator: &Emulator) -> Res<()> {
        let deadline = Instant::now() + setup.timeout();
        let mut last = emulator.calls().await?;
        loop {
            tokio::time::sleep(QUIET_FOR).await;
            let now = emulator.calls().await?;
            if now == last {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the emulator never went quiet".into());
            }
            last = now;
        }
    }
}
