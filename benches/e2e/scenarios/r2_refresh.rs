//! R2, refresh cost and lag: a living emulator (about 1% of the jobs
//! created per refresh interval, and jobs moving through their statuses),
//! under both paging models. The calls of single refreshes are counted
//! with `collect --once`; the lag from a change to its visibility is
//! measured on a server refreshing on its own.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;

use crate::*;

/// Seconds between two refreshes, in both halves.
const INTERVAL_S: u64 = 10;
/// Refreshes counted per paging model.
const REFRESHES: usize = 5;
/// How long the lag is watched, in seconds.
const WATCH_S: u64 = 45;
/// Between two looks at the server's rows while watching.
const WATCH_POLL: Duration = Duration::from_millis(250);
/// The most a refresh may cost, in refreshes of the target.
const R2_MAX_CALLS_RATIO: f64 = 1.2;
/// The most a change may take to be seen beyond one interval, in seconds.
const R2_LAG_SLACK_S: f64 = 2.0;
/// A page of ListCompilationJobs (MaxResults).
const PAGE: u64 = 100;

pub(super) const ABOUT: &str = "**R2, refresh cost and lag.** 10,000 jobs at 25 ms, the emulator living \
     (`--activity`: about 1% of the jobs created per 10 s refresh interval, jobs moving \
     STARTING -> INPROGRESS -> a final status), under both paging models. Calls: after \
     `collect --once` made the first full scan into a store, five more `collect --once` \
     runs 10 s apart, each one refresh, its calls counted by the emulator; in each, k \
     jobs were new to the store and m known jobs could still change (as `collect` \
     reports them), and the target is ceil(k/100) + 1 List pages and k + m Describes \
     (target: every refresh <= 1.2 x that). Lag: a server with `--store` and \
     `--refresh-interval 10` on the same store and emulator; its table is read every \
     250 ms for 45 s and the first time each (job, status, LastModifiedTime) shows is \
     noted; then every job whose last change fell in the first 33 s (read live) must \
     have shown, and its lag is when it first showed minus its LastModifiedTime \
     (target: max lag <= one interval + 2 s, none missing).";

/// What `collect --once` said of one refresh, and the calls it made.
struct Refresh {
    new: u64,
    known: u64,
    calls: Calls,
    /// The whole `collect --once`: start, store opened, refresh, commit.
    wall: f64,
}

impl Refresh {
    fn pages_target(&self) -> u64 {
        self.new.div_ceil(PAGE) + 1
    }

    fn describe_target(&self) -> u64 {
        self.new + self.known
    }

    /// Its calls over the target's, the larger of List and Describe.
    fn ratio(&self) -> f64 {
        let pages = self.calls.list as f64 / self.pages_target() as f64;
        let describes = self.calls.describe as f64 / self.describe_target().max(1) as f64;
        pages.max(describes)
    }
}

impl Bench {
    pub(super) async fn r2(&mut self) -> Res<()> {
        for after_cut in [false, true] {
            let mut setup = self.setup(10_000, 25);
            setup.filters_after_cut = after_cut;
            // 1% of the jobs per interval.
            setup.activity = Some(setup.jobs as f64 * 0.01 * 60.0 / INTERVAL_S as f64);
            let emulator = self.emulator(&setup).await?;
            let name = if after_cut { "after-cut" } else { "before-cut" };
            let store = self.workdir.0.join(format!("r2-store-{name}"));
            let refreshes = self.r2_refreshes(&setup, &emulator, &store).await?;
            let (lags, missing) = self.r2_lags(&setup, &emulator, &store).await?;
            self.rows.push(r2_row(&setup, &refreshes, &lags, missing));
        }
        Ok(())
    }

    /// The first full scan, then [`REFRESHES`] refreshes by `collect --once`.
    async fn r2_refreshes(
        &self,
        setup: &Setup,
        emulator: &Emulator,
        store: &Path,
    ) -> Res<Vec<Refresh>> {
        let first = self.collect_once(setup, emulator, store).await?;
        if !first.contains("full scan") {
            return Err(format!("R2: the first collect made no full scan: {first}"));
        }
        let mut refreshes = Vec::new();
        for run in 1..=REFRESHES {
            // The interval is the workload: the activity makes its jobs.
            tokio::time::sleep(Duration::from_secs(INTERVAL_S)).await;
            emulator.reset().await?;
            let started = Instant::now();
            let said = self.collect_once(setup, emulator, store).await?;
            let wall = started.elapsed().as_secs_f64();
            let calls = emulator.calls().await?;
            let (new, known) =
                described(&said).ok_or_else(|| format!("R2: collect said no refresh: {said}"))?;
            let refresh = Refresh {
                new,
                known,
                calls,
                wall,
            };
            println!(
                "  R2 refresh {run}/{REFRESHES}: wall {}, k {new}, m {known}, calls List {} / Describe {} / ListTags {} (target {} / {})",
                secs(wall),
                refresh.calls.list,
                refresh.calls.describe,
                refresh.calls.tags,
                refresh.pages_target(),
                refresh.describe_target()
            );
            refreshes.push(refresh);
        }
        Ok(refreshes)
    }

    /// One `collect --once` into `store`; what it printed.
    async fn collect_once(&self, setup: &Setup, emulator: &Emulator, store: &Path) -> Res<String> {
        let args: Vec<String> = [
            "collect",
            "--once",
            "--store",
            &store.display().to_string(),
            "--endpoint-url",
            &emulator.url,
            "--concurrency",
            &CONCURRENCY.to_string(),
            // Tags are not what R2 counts: no tags refresh falls due.
            "--tags-refresh-interval",
            "86400",
        ]
        .map(String::from)
        .to_vec();
        self.launched(&args);
        let run = clean_command(Path::new(BINARY))
            .args(&args)
            .envs(AWS_ENV)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(setup.timeout(), run)
            .await
            .map_err(|_| "R2: collect --once did not finish in time".to_owned())?
            .map_err(|e| format!("R2: collect --once: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "R2: collect --once failed ({}): {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(stdout)
    }

    /// Watches a refreshing server's table: the lag of each change whose
    /// job changed last in the watched time but the last few seconds, and
    /// how many of those never showed.
    async fn r2_lags(
        &self,
        setup: &Setup,
        emulator: &Emulator,
        store: &Path,
    ) -> Res<(Vec<f64>, usize)> {
        let (mut server, url) = self
            .store_server(setup, emulator, store, INTERVAL_S)
            .await?;
        let start = unix_now();
        let until = Instant::now() + Duration::from_secs(WATCH_S);
        let changed_since = format!(
            "SELECT compilation_job_name, compilation_job_status, \
             date_part('epoch', last_modified_time) AS modified \
             FROM {TABLE} WHERE date_part('epoch', last_modified_time) >= {start}"
        );
        let mut first_seen: HashMap<(String, String, u64), f64> = HashMap::new();
        while Instant::now() < until {
            let batches = sql_batches(&url, &changed_since).await;
            let now = unix_now();
            match batches {
                Ok(batches) => {
                    for change in changes(&batches)? {
                        first_seen.entry(change).or_insert(now);
                    }
                }
                Err(e) => {
                    server.check_alive()?;
                    return Err(format!("R2: reading the replica: {e}"));
                }
            }
            tokio::time::sleep(WATCH_POLL).await;
        }
        // Every job whose last change came early enough to be seen.
        let cutoff = start + (WATCH_S - INTERVAL_S) as f64 - R2_LAG_SLACK_S - 1.0;
        let live = changed_since
            .replace(TABLE, &format!("{TABLE}_live"))
            .replace(
                &format!(">= {start}"),
                &format!("BETWEEN {start} AND {cutoff}"),
            );
        let truth = changes(&sql_batches(&url, &live).await?)?;
        let mut lags = Vec::new();
        let mut missing = 0;
        for change in truth {
            match first_seen.get(&change) {
                Some(seen) => lags.push(seen - change.2 as f64 / 1000.0),
                None => missing += 1,
            }
        }
        println!(
            "  R2 lag: {} changes, median {}, max {}, {missing} never shown",
            lags.len(),
            secs(median(&lags)),
            secs(lags.iter().copied().fold(f64::NAN, f64::max))
        );
        Ok((lags, missing))
    }
}

/// `(new, known)` jobs described, from `collect --once`'s refresh line.
fn described(said: &str) -> Option<(u64, u64)> {
    let line = said.lines().find(|line| line.contains(": refresh,"))?;
    let rest = line.split("described ").nth(1)?;
    let mut words = rest.split_whitespace();
    let new = words.next()?.parse().ok()?;
    let known = words.nth(2)?.parse().ok()?;
    Some((new, known))
}

/// Each row as (job, status, LastModifiedTime in milliseconds).
fn changes(batches: &[RecordBatch]) -> Res<Vec<(String, String, u64)>> {
    let mut all = Vec::new();
    for batch in batches {
        let text = |i: usize| {
            arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8)
                .map_err(|e| format!("R2: column {i}: {e}"))
        };
        let (names, statuses) = (text(0)?, text(1)?);
        let (names, statuses) = (names.as_string::<i32>(), statuses.as_string::<i32>());
        let modified = batch
            .column(2)
            .as_primitive_opt::<Float64Type>()
            .ok_or("R2: the epoch is not a float")?;
        for row in 0..batch.num_rows() {
            if modified.is_valid(row) {
                all.push((
                    names.value(row).to_owned(),
                    statuses.value(row).to_owned(),
                    (modified.value(row) * 1000.0).round() as u64,
                ));
            }
        }
    }
    Ok(all)
}

/// Now, in Unix seconds.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

fn r2_row(setup: &Setup, refreshes: &[Refresh], lags: &[f64], missing: usize) -> Row {
    let worst = refreshes
        .iter()
        .map(Refresh::ratio)
        .fold(f64::NAN, f64::max);
    let samples = refreshes
        .iter()
        .map(|refresh| Sample {
            wall: refresh.wall,
            first: None,
            rows: 0,
            calls: Some(refresh.calls.clone()),
        })
        .collect();
    let median_of =
        |f: fn(&Refresh) -> u64| median(&refreshes.iter().map(|r| f(r) as f64).collect::<Vec<_>>());
    let max_lag = lags.iter().copied().fold(f64::NAN, f64::max);
    let lag_limit = INTERVAL_S as f64 + R2_LAG_SLACK_S;
    let mut row = Row {
        label: "R2".into(),
        setup: format!(
            "{}, activity, refresh every {INTERVAL_S} s",
            setup.describe()
        ),
        samples,
        extra: vec![format!(
            "median k {:.0}, m {:.0}; lag median {}, max {} over {} changes, {missing} never shown",
            median_of(|r| r.new),
            median_of(|r| r.known),
            secs(median(lags)),
            secs(max_lag),
            lags.len()
        )],
        ..Row::default()
    };
    let model = if setup.filters_after_cut {
        "after the page cut"
    } else {
        "before the page cut"
    };
    row.targets.push(Target::new(
        "R2",
        &format!(
            "a refresh (filters {model}) <= {R2_MAX_CALLS_RATIO} x (ceil(k/100) + 1 List pages, k + m Describes)"
        ),
        format!("worst refresh {}", fmt_ratio(worst)),
        format!("calls/target {} <= {R2_MAX_CALLS_RATIO}", fmt_ratio(worst)),
        Some(worst <= R2_MAX_CALLS_RATIO),
    ));
    row.targets.push(Target::new(
        "R2",
        &format!("lag (filters {model}) <= {lag_limit} s, every change shown"),
        format!("max {}, {missing} never shown", secs(max_lag)),
        format!("max lag {} <= {lag_limit} s", secs(max_lag)),
        Some(max_lag <= lag_limit && missing == 0 && !lags.is_empty()),
    ));
    row
}
