//! S5, serving speed: a warm plain Flight DoGet of 200,000 cached jobs,
//! against pyarrow serving the same table from an IPC file.

use crate::*;

pub(super) const ABOUT: &str = "**S5, serving speed.** 200,000 jobs at 0 ms latency with `--cache-ttl 600` and \
     `--snapshot-ttl 600`: after a cold scan, a warm plain Flight DoGet of the table (GetFlightInfo of the path \
     descriptor, then DoGet of its ticket) from the server, against the same Arrow \
     table (written by this harness to an IPC file from the rows of the cold scan) \
     served by pyarrow's FlightServerBase (`benches/pyarrow_peer.py`) and read by \
     the same Rust client. pyarrow/us >= 1 means the server streams its cache at \
     least as fast as pyarrow streams a file. The server gets `--cache-max-jobs` = \
     the job count so that the whole table fits in its cache and snapshot; a warm \
     run that still calls SageMaker is flagged in the table.";

impl Bench {
    pub(super) async fn s5(&mut self) -> Res<()> {
        let setup = Setup {
            cache_ttl: 600,
            snapshot_ttl: 600,
            ..self.setup(200_000, 0)
        };
        let runs = self.options.runs;
        let mut sink = IpcSink {
            path: self.workdir.0.join("s5.arrow"),
            writer: None,
        };
        let (ours, cold) = {
            let emulator = self.emulator(&setup).await?;
            let (mut server, url) = self.server(&setup, &emulator).await?;
            let cold = self
                .sample(
                    "S5 cold (ours, written to IPC)",
                    &setup,
                    Some(&emulator),
                    &mut server,
                    &url,
                    Read::Flight(Some(&mut sink)),
                )
                .await?;
            sink.finish()?;
            if cold.rows != setup.jobs {
                return Err(format!(
                    "S5 cold: {} rows, expected {}",
                    cold.rows, setup.jobs
                ));
            }
            let samples = self
                .repeat_flight(
                    "S5 warm (ours)",
                    &setup,
                    Some(&emulator),
                    &mut server,
                    &url,
                    setup.jobs,
                    runs,
                )
                .await?;
            let mut row = Row {
                label: "S5 warm, ours".into(),
                setup: setup.describe(),
                samples,
                rss_mib: server.peak_rss_mib(),
                bound: Some(setup.bound()),
                extra: vec![format!("plain Flight DoGet; cold scan {}", secs(cold.wall))],
                ..Row::default()
            };
            // A warm scan that calls Describe was not served from the cache,
            // and the comparison below is not the one intended: say so.
            let described = row
                .samples
                .iter()
                .filter_map(|s| s.calls.as_ref())
                .map(|c| c.list + c.describe + c.tags)
                .max()
                .unwrap_or(0);
            if described > 0 {
                let warning = format!(
                    "NOT served from the snapshot: a warm run made {} SageMaker calls",
                    thousands(described)
                );
                println!("  S5 warning: {warning}");
                row.extra.push(warning);
            }
            (row, cold)
            // The emulator and the server stop here, before the peer starts.
        };
        self.against_pyarrow("S5", ours, &setup, &sink.path, cold.rows)
            .await;
        Ok(())
    }

    /// pyarrow serving `arrow_file` (`rows` rows), and `ours` recorded
    /// against it for `scenario` (target: pyarrow wall / our wall >= 1).
    pub(super) async fn against_pyarrow(
        &mut self,
        scenario: &'static str,
        ours: Row,
        setup: &Setup,
        arrow_file: &Path,
        rows: usize,
    ) {
        let peer = match self.pyarrow.clone() {
            Err(why) => Err(why),
            Ok((python, script)) => self
                .pyarrow_peer(scenario, setup, &python, &script, arrow_file, rows)
                .await
                .map_err(|e| format!("the pyarrow peer failed: {e}")),
        };
        self.compare_with_peer(
            ours,
            peer,
            PeerComparison {
                scenario,
                peer: "pyarrow",
                goal: "pyarrow wall / our wall >= 1",
                ratio_name: "pyarrow/us",
                minimum: 1.0,
            },
            |_, ratio| format!("pyarrow/us {}", fmt_ratio(ratio)),
        );
    }

    /// pyarrow serving `arrow_file` (`rows` rows): `--runs` plain Flight
    /// reads, labelled for `scenario`.
    pub(super) async fn pyarrow_peer(
        &self,
        scenario: &str,
        setup: &Setup,
        python: &Path,
        script: &Path,
        arrow_file: &Path,
        rows: usize,
    ) -> Res<Row> {
        let args = vec![
            script.display().to_string(),
            "--arrow-file".into(),
            arrow_file.display().to_string(),
        ];
        let (mut peer, url) = Proc::start(
            "pyarrow peer",
            python,
            &args,
            &[("PYTHONUNBUFFERED", "1")],
            "listening on ",
            &self.workdir.0,
        )
        .await?;
        let url = url.replace("grpc://", "http://");
        if !url.starts_with("http://127.0.0.1:") {
            return Err(format!("the pyarrow peer is at {url}, not on 127.0.0.1"));
        }
        let samples = self
            .repeat_flight(
                &format!("{scenario} pyarrow peer"),
                setup,
                None,
                &mut peer,
                &url,
                rows,
                self.options.runs,
            )
            .await?;
        Ok(Row {
            label: format!("{scenario} pyarrow peer"),
            setup: format!("the same {} rows from an IPC file", thousands(rows as u64)),
            samples,
            extra: vec!["plain Flight DoGet".into()],
            ..Row::default()
        })
    }
}
