//! What the scenarios of `benches/e2e.rs` share: the knobs of a measurement
//! ([`Setup`]), the run's state ([`Bench`]), starting the emulator and the
//! server, timed runs of a query, and the targets against a bound or a peer.

use super::*;

/// The emulator and server knobs of a measurement.
#[derive(Clone, Copy)]
pub(super) struct Setup {
    pub(super) jobs: usize,
    pub(super) latency_ms: u64,
    pub(super) rate_limit: Option<f64>,
    pub(super) cache_ttl: u64,
    /// `--snapshot-ttl`: every query within it is answered from the last
    /// complete `SELECT *`, with no call.
    pub(super) snapshot_ttl: u64,
    /// The emulator's `--filter-paging after-cut`: ListCompilationJobs cuts
    /// a page of MaxResults jobs, then filters it.
    pub(super) filters_after_cut: bool,
    /// The emulator's `--activity`: new jobs a minute, each moving through
    /// its statuses.
    pub(super) activity: Option<f64>,
}

impl Setup {
    /// `max(N/R, N*L/C)` plus one round (the first List page and the first
    /// Describe, one latency each), in seconds.
    pub(super) fn bound(&self) -> f64 {
        let n = self.jobs as f64;
        let latency = self.latency_ms as f64 / 1000.0;
        let by_rate = self.rate_limit.map_or(0.0, |r| n / r);
        by_rate.max(n * latency / f64::from(CONCURRENCY)) + 2.0 * latency
    }

    /// Generous: 2 minutes, plus 4 bounds, plus 2 ms a job (debug builds).
    pub(super) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(120.0 + 4.0 * self.bound() + 0.002 * self.jobs as f64)
    }

    pub(super) fn describe(&self) -> String {
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
        if self.filters_after_cut {
            text.push_str(", API filters after the page cut");
        }
        text
    }
}

/// How a scenario's row is compared with a peer's.
pub(super) struct PeerComparison {
    pub(super) scenario: &'static str,
    /// The peer's name in notes ("boto3").
    pub(super) peer: &'static str,
    pub(super) goal: &'static str,
    /// The ratio's name in the short target text ("peer/us").
    pub(super) ratio_name: &'static str,
    /// The least peer wall / our wall that meets the target.
    pub(super) minimum: f64,
}

/// What `serve --help` of this build offers.
pub(super) struct ServerFlags {
    pub(super) cache_ttl: bool,
    pub(super) cache_max_jobs: bool,
    pub(super) snapshot_ttl: bool,
}

pub(super) async fn serve_flags() -> ServerFlags {
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

/// A Python peer: the venv's interpreter and the script, or why not.
pub(super) type Peer = Result<(PathBuf, PathBuf), String>;

pub(super) fn find_peer(enabled: bool, script: &str) -> Peer {
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

/// The state of a run: its options, what the server offers, the peers, and
/// every row measured so far.
pub(super) struct Bench {
    pub(super) options: Options,
    pub(super) workdir: WorkDir,
    pub(super) flags: ServerFlags,
    pub(super) boto3: Peer,
    pub(super) pyarrow: Peer,
    /// How busy the CPUs were with other work just before each scenario
    /// (0..=1), when none of its processes run yet.
    pub(super) busy: Vec<(Id, f64)>,
    /// The scenario running now.
    pub(super) current: Id,
    /// The emulator and server command lines each scenario used.
    pub(super) launched: std::sync::Mutex<Vec<(Id, String)>>,
    /// `git rev-parse --short HEAD` when the run started.
    pub(super) commit: String,
    pub(super) rows: Vec<Row>,
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

    pub(super) fn setup(&self, jobs: usize, latency_ms: u64) -> Setup {
        Setup {
            jobs: self.jobs(jobs),
            latency_ms: self.latency(latency_ms),
            rate_limit: None,
            cache_ttl: 0,
            snapshot_ttl: 0,
            filters_after_cut: false,
            activity: None,
        }
    }

    /// Remembers `sagemaker-flight ARGS` for the report (URLs as `URL`,
    /// paths in the work directory as `DIR`).
    pub(super) fn launched(&self, args: &[String]) {
        let words: Vec<&str> = args
            .iter()
            .map(|a| {
                if a.starts_with("http://") {
                    "URL"
                } else if a.starts_with(&*self.workdir.0.to_string_lossy()) {
                    "DIR"
                } else {
                    a
                }
            })
            .collect();
        let line = format!("sagemaker-flight {}", words.join(" "));
        let entry = (self.current, line);
        let mut launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
        if !launched.contains(&entry) {
            launched.push(entry);
        }
    }

    pub(super) async fn emulator(&self, setup: &Setup) -> Res<Emulator> {
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
        if setup.filters_after_cut {
            args.extend(["--filter-paging".into(), "after-cut".into()]);
        }
        if let Some(rate) = setup.activity {
            args.extend(["--activity".into(), format!("{rate:.0}")]);
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
        Ok(Emulator { proc, url })
    }

    /// A fresh server process on `emulator`; returns it and its http:// URL.
    pub(super) async fn server(&self, setup: &Setup, emulator: &Emulator) -> Res<(Proc, String)> {
        self.server_with(setup, emulator, &[]).await
    }

    /// A fresh server on `emulator` with the replica in `store` (made if
    /// missing), refreshing every `refresh_s` seconds, with room in memory
    /// for every row of the replica (as S5 gives its snapshot).
    pub(super) async fn store_server(
        &self,
        setup: &Setup,
        emulator: &Emulator,
        store: &Path,
        refresh_s: u64,
    ) -> Res<(Proc, String)> {
        let mut extra = vec![
            "--store".to_owned(),
            store.display().to_string(),
            "--refresh-interval".to_owned(),
            refresh_s.to_string(),
        ];
        if self.flags.cache_max_jobs {
            // Above the job count: an activity may add jobs.
            extra.extend(["--cache-max-jobs".to_owned(), (2 * setup.jobs).to_string()]);
        }
        self.server_with(setup, emulator, &extra).await
    }

    /// A fresh server on `emulator`, with `extra` arguments.
    async fn server_with(
        &self,
        setup: &Setup,
        emulator: &Emulator,
        extra: &[String],
    ) -> Res<(Proc, String)> {
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
        args.extend(extra.iter().cloned());
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
    pub(super) async fn sample(
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
    pub(super) async fn repeat(
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

    /// `runs` plain Flight reads of the table, each expected to give
    /// `rows` rows; `emulator`: count its calls in each.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn repeat_flight(
        &self,
        label: &str,
        setup: &Setup,
        emulator: Option<&Emulator>,
        server: &mut Proc,
        url: &str,
        rows: usize,
        runs: usize,
    ) -> Res<Vec<Sample>> {
        let mut samples = Vec::new();
        for run in 1..=runs {
            let name = format!("{label} run {run}/{runs}");
            let sample = self
                .sample(&name, setup, emulator, server, url, Read::Flight(None))
                .await?;
            if sample.rows != rows {
                return Err(format!("{name}: {} rows, expected {rows}", sample.rows));
            }
            samples.push(sample);
        }
        Ok(samples)
    }

    /// Starts the pair, runs `SELECT *` `--runs` times, returns the row.
    pub(super) async fn select_all(&self, label: &str, setup: &Setup, runs: usize) -> Res<Row> {
        let emulator = self.emulator(setup).await?;
        self.select_all_on(&emulator, label, setup, runs).await
    }

    /// A fresh server on `emulator`, `SELECT *` `runs` times; the server
    /// stops when this returns.
    pub(super) async fn select_all_on(
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

    pub(super) fn bound_target(&self, row: &mut Row, limit: f64) {
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
    /// Adds to `ours` the target "peer wall / our wall >= minimum" (not
    /// measured when the peer did not run), with `describe(peer wall,
    /// ratio)` as a note, then records both rows.
    pub(super) fn compare_with_peer(
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
}
