//! C, cost per job and scale: the CPU each process spends per job, the
//! wall and the server's peak RSS of a cold `SELECT *` at 10,000, 100,000
//! and 1,000,000 jobs, and of a summary-only scan.

use crate::*;

/// The sizes, before `--jobs-scale`.
const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// At this size or more a size runs once whatever `--runs` says: a cold
/// scan of a million jobs takes minutes.
const ONE_RUN_FROM: usize = 1_000_000;
/// Columns every ListCompilationJobs summary carries: no Describe, no ListTags.
const SUMMARY_ONLY: &str = "SELECT compilation_job_name, compilation_job_status, creation_time \
     FROM aws.sagemaker_compilation_job";
/// The target: server CPU per job of a cold full scan.
const SERVER_CPU_PER_JOB_US: f64 = 100.0;
/// How far from the smallest size's figure every other size may be.
const FLAT_WITHIN: f64 = 0.15;
/// The target: the server's peak RSS at the largest size.
const PEAK_RSS_MIB: f64 = 300.0;
/// Calls per round of each operation in the SDK floor (`sdk_floor.rs`);
/// a round of Describes took about 0.3 s (28 µs a call).
const FLOOR_CALLS: usize = 10_000;
/// The same in the smoke run, which only proves that it works.
const SMOKE_FLOOR_CALLS: usize = 20;

pub(super) const ABOUT: &str = "**C, cost per job and scale.** A cold `SELECT *` (List, then a Describe \
     and a ListTags per job, through Arrow and Flight to this client) over 10,000, \
     100,000 and 1,000,000 jobs at 0 ms latency, no cache, a fresh emulator and server \
     for each size (the largest runs once). CPU time of each process, user + system \
     from /proc/PID/stat over the query, divided by the jobs (the server's system \
     part given too: in the kernel, mostly loopback TCP); then a summary-only \
     `SELECT compilation_job_name, compilation_job_status, creation_time` (List pages \
     only) on the same server. Targets: the server's CPU per job of the full scan <= 100 \
     µs at every size, each size within 15% of the smallest's, and the server's peak \
     RSS at the largest under 300 MiB. Beside the smallest size, the floor the AWS SDK \
     sets: this harness calls the server's own SageMaker client (`serve`'s retry, \
     timeout and stalled-stream settings) with its HTTP client swapped for one that \
     answers at once with the emulator's bodies for that size's first job, so the \
     figure is the SDK alone (build, sign, orchestrate, parse; no network, no server \
     code): the CPU per call of Describe, ListTags and a List page of 100 (the calling \
     thread's, median of 5 rounds of 10,000 sequential calls), and per job a Describe, \
     a ListTags and a hundredth of a page.";

/// CPU seconds of the server and the emulator over one query.
struct CpuCost {
    server: f64,
    /// The server's system part of `server`.
    server_system: f64,
    emulator: f64,
}

impl Bench {
    pub(super) async fn c(&mut self) -> Res<()> {
        let mut per_job = Vec::new();
        let mut last_rss = None;
        for jobs in SIZES {
            let setup = self.setup(jobs, 0);
            let label = format!("C {}", thousands(setup.jobs as u64));
            let with_floor = jobs == SIZES[0];
            match self.cost_at(&label, &setup, jobs, with_floor).await {
                Ok((row, server_us)) => {
                    per_job.push(server_us);
                    last_rss = row.rss_mib;
                    self.rows.push(row);
                }
                Err(e) => {
                    self.rows.push(Row::failed(label, &setup, &e));
                    return Err(format!("recorded: {e}"));
                }
            }
        }
        let Some(row) = self.rows.last_mut() else {
            return Ok(());
        };
        let smallest = per_job.first().copied().unwrap_or(f64::NAN);
        let spread = per_job
            .iter()
            .map(|us| (us / smallest - 1.0).abs())
            .fold(0.0, f64::max);
        row.targets.push(Target::new(
            "C",
            "server CPU per job flat within 15% of the smallest size's",
            format!("{:.0}%", spread * 100.0),
            format!("spread {:.0}% <= 15%", spread * 100.0),
            Some(spread <= FLAT_WITHIN),
        ));
        row.targets.push(Target::new(
            "C",
            "server peak RSS < 300 MiB at the largest size",
            last_rss.map_or_else(|| "unreadable".into(), |m| format!("{m:.0} MiB")),
            format!(
                "RSS {} < 300 MiB",
                last_rss.map_or_else(|| "-".into(), |m| format!("{m:.0}"))
            ),
            last_rss.map(|m| m < PEAK_RSS_MIB),
        ));
        Ok(())
    }

    /// One size: its row, and the server's median CPU per job in µs; with
    /// the SDK's floor (`sdk_floor.rs`) among its figures if `with_floor`.
    async fn cost_at(
        &self,
        label: &str,
        setup: &Setup,
        size: usize,
        with_floor: bool,
    ) -> Res<(Row, f64)> {
        let emulator = self.emulator(setup).await?;
        let (mut server, url) = self.server(setup, &emulator).await?;
        let runs = if size >= ONE_RUN_FROM {
            1
        } else {
            self.options.runs
        };
        let jobs = setup.jobs as f64;
        let mut samples = Vec::new();
        let mut full = Vec::new();
        for run in 1..=runs {
            let name = format!("{label} run {run}/{runs}");
            let (sample, cost) = self
                .costed(&name, setup, &emulator, &mut server, &url, SELECT_ALL)
                .await?;
            if sample.rows != setup.jobs {
                return Err(format!(
                    "{name}: {} rows, expected {}",
                    sample.rows, setup.jobs
                ));
            }
            samples.push(sample);
            full.push(cost);
        }
        let rss_mib = server.peak_rss_mib();
        let name = format!("{label} summary-only");
        let (summary, summary_cost) = self
            .costed(&name, setup, &emulator, &mut server, &url, SUMMARY_ONLY)
            .await?;
        let summary_calls = summary.calls.clone().unwrap_or_default();
        if summary.rows != setup.jobs || summary_calls.describe + summary_calls.tags > 0 {
            return Err(format!(
                "{name}: {} rows, {} Describe, {} ListTags; expected {} rows and none",
                summary.rows, summary_calls.describe, summary_calls.tags, setup.jobs
            ));
        }
        let floor = if with_floor {
            let calls = if self.options.smoke {
                SMOKE_FLOOR_CALLS
            } else {
                FLOOR_CALLS
            };
            let floor = sdk_floor(&emulator.url, calls)
                .await
                .map_err(|e| format!("{label} SDK floor: {e}"))?;
            println!(
                "  SDK alone: Describe {:.1} µs, ListTags {:.1} µs, List page {:.1} µs a call; {:.1} µs/job",
                floor.describe_us,
                floor.list_tags_us,
                floor.list_page_us,
                floor.per_job_us()
            );
            Some(floor)
        } else {
            None
        };
        let us = |seconds: Vec<f64>| median(&seconds) * 1e6 / jobs;
        let server_us = us(full.iter().map(|c| c.server).collect());
        let server_system_us = us(full.iter().map(|c| c.server_system).collect());
        let emulator_us = us(full.iter().map(|c| c.emulator).collect());
        let mut row = Row {
            label: label.to_owned(),
            setup: format!("{}, no cache", setup.describe()),
            samples,
            rss_mib,
            extra: vec![format!(
                "CPU per job: server {server_us:.0} µs (system {server_system_us:.0} µs), \
                 emulator {emulator_us:.0} µs; \
                 summary-only: server {:.1} µs, emulator {:.1} µs, wall {}{}",
                summary_cost.server * 1e6 / jobs,
                summary_cost.emulator * 1e6 / jobs,
                secs(summary.wall),
                floor.map_or_else(String::new, |f| format!(
                    "; the SDK alone: Describe {:.0} µs, ListTags {:.0} µs, List page {:.0} µs \
                     a call, {:.0} µs/job",
                    f.describe_us,
                    f.list_tags_us,
                    f.list_page_us,
                    f.per_job_us()
                ))
            )],
            ..Row::default()
        };
        row.targets.push(Target::new(
            label,
            "server CPU per job <= 100 µs",
            format!("{server_us:.0} µs"),
            format!("server {server_us:.0} µs/job <= 100"),
            Some(server_us <= SERVER_CPU_PER_JOB_US),
        ));
        Ok((row, server_us))
    }

    /// One run of `sql` and the CPU the server and the emulator spent on it.
    async fn costed(
        &self,
        name: &str,
        setup: &Setup,
        emulator: &Emulator,
        server: &mut Proc,
        url: &str,
        sql: &str,
    ) -> Res<(Sample, CpuCost)> {
        let cpu = |server: &Proc| -> Res<(CpuSecs, CpuSecs)> {
            match (server.cpu_secs(), emulator.proc.cpu_secs()) {
                (Some(s), Some(e)) => Ok((s, e)),
                _ => Err("cannot read the CPU time of the processes from /proc".into()),
            }
        };
        let before = cpu(&*server)?;
        let sample = self
            .sample(name, setup, Some(emulator), server, url, Read::Sql(sql))
            .await?;
        let after = cpu(&*server)?;
        let cost = CpuCost {
            server: after.0.total() - before.0.total(),
            server_system: after.0.system - before.0.system,
            emulator: after.1.total() - before.1.total(),
        };
        println!(
            "    CPU: server {:.0} µs/job, emulator {:.0} µs/job",
            cost.server * 1e6 / setup.jobs as f64,
            cost.emulator * 1e6 / setup.jobs as f64
        );
        Ok((sample, cost))
    }
}
