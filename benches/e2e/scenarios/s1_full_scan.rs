//! S1, full scan: `SELECT *` over 10,000 jobs at 25 ms a call, against the
//! boto3 peer making the same calls on the same emulator.

use crate::*;

/// Thread-pool size of the boto3 peer: its fastest measured setting (see
/// `benches/boto3_peer.py`).
const BOTO3_WORKERS: u32 = 64;

pub(super) const ABOUT: &str = "**S1, full scan.** `SELECT *` over 10,000 jobs at 25 ms per SageMaker call, \
     no rate limit, `--concurrency 128`: one ListCompilationJobs listing plus a \
     DescribeCompilationJob and a ListTags per job. The bound is the time the calls \
     need at 128 in flight per operation (N x L / C) plus one round trip for the first \
     page and the first Describe; wall/bound says how close the server comes to it. \
     The boto3 peer (`benches/boto3_peer.py`: boto3 with a pool of 64 threads, its own \
     timing) makes the same calls against the same emulator; peer/us is how many times \
     faster the server is.";

impl Bench {
    pub(super) async fn s1(&mut self) -> Res<()> {
        let setup = self.setup(10_000, 25);
        // The server, then the peer, on the same emulator process.
        let emulator = self.emulator(&setup).await?;
        let mut row = self
            .select_all_on(&emulator, "S1", &setup, self.options.runs)
            .await?;
        self.bound_target(&mut row, 1.25);
        let peer = self.boto3_peer(&emulator, &setup).await;
        self.compare_with_peer(
            row,
            peer,
            PeerComparison {
                scenario: "S1",
                peer: "boto3",
                goal: "boto3 peer wall / our wall >= 5",
                ratio_name: "peer/us",
                minimum: 5.0,
            },
            |peer_wall, ratio| {
                format!(
                    "boto3 peer ({BOTO3_WORKERS} workers) {}, peer/us {}",
                    secs(peer_wall),
                    fmt_ratio(ratio)
                )
            },
        );
        Ok(())
    }

    /// The boto3 peer against `emulator`, `--runs` times.
    async fn boto3_peer(&self, emulator: &Emulator, setup: &Setup) -> Res<Row> {
        let (python, script) = self.boto3.clone()?;
        let mut samples = Vec::new();
        let runs = self.options.runs;
        for run in 1..=runs {
            emulator.reset().await?;
            let timeout =
                Duration::from_secs_f64(300.0 + 10.0 * setup.bound() + 0.01 * setup.jobs as f64);
            let output = clean_command(&python)
                .arg(&script)
                .args(["--endpoint", &emulator.url])
                .args(["--workers", &BOTO3_WORKERS.to_string()])
                .envs(AWS_ENV)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let output = tokio::time::timeout(timeout, output)
                .await
                .map_err(|_| format!("the boto3 peer took more than {timeout:.0?}"))?
                .map_err(|e| format!("cannot run the boto3 peer: {e}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() {
                let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                return Err(format!(
                    "the boto3 peer failed ({}): {}",
                    output.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ));
            }
            let answer: Value = stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                .filter(|v| v.get("wall_s").is_some())
                .ok_or_else(|| format!("the boto3 peer printed no JSON line: {stdout:?}"))?;
            let rows = answer["rows"].as_u64().unwrap_or(0) as usize;
            let wall = answer["wall_s"]
                .as_f64()
                .ok_or("the boto3 peer's wall_s is not a number")?;
            if rows != setup.jobs {
                return Err(format!(
                    "the boto3 peer read {rows} rows, expected {}",
                    setup.jobs
                ));
            }
            let calls = emulator.calls().await?;
            println!(
                "  S1 boto3 peer run {run}/{runs}: wall {}, {rows} rows, calls List {} / Describe {} / ListTags {}",
                secs(wall),
                calls.list,
                calls.describe,
                calls.tags
            );
            samples.push(Sample {
                wall,
                first: None,
                rows,
                calls: Some(calls),
            });
        }
        Ok(Row {
            label: "S1 boto3 peer".into(),
            setup: format!(
                "{} jobs, {} ms, {BOTO3_WORKERS} threads",
                thousands(setup.jobs as u64),
                setup.latency_ms
            ),
            samples,
            bound: Some(setup.bound()),
            extra: vec!["wall as timed by the peer itself".into()],
            ..Row::default()
        })
    }
}
