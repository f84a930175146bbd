//! R3, replica read: a plain Flight DoGet of 200,000 jobs answered from
//! the store, against pyarrow serving the same table from an IPC file.

use super::r1_restart::STORED;
use crate::*;

pub(super) const ABOUT: &str = "**R3, replica read.** 200,000 jobs at 0 ms latency, the server with `--store DIR`: once \
     its first full scan is in the store, plain Flight DoGets of the table (GetFlightInfo \
     of the path descriptor, then DoGet), with no SageMaker call, answered from the \
     store's latest version in memory (read from the Delta table once: the server \
     gets `--cache-max-jobs` above the job count, as S5 does); against the same rows (written by this harness to an IPC file from \
     the first read) served by pyarrow's FlightServerBase and read by the same Rust \
     client, as in S5 (target: pyarrow/us >= 1).";

impl Bench {
    pub(super) async fn r3(&mut self) -> Res<()> {
        let setup = self.setup(200_000, 0);
        let runs = self.options.runs;
        let mut sink = IpcSink {
            path: self.workdir.0.join("r3.arrow"),
            writer: None,
        };
        let ours = {
            let emulator = self.emulator(&setup).await?;
            let store = self.workdir.0.join("r3-store");
            let (mut server, url) = self.store_server(&setup, &emulator, &store, 3600).await?;
            self.until_rows(&setup, &url, STORED, 1).await?;
            let first = self
                .sample(
                    "R3 first read (written to IPC)",
                    &setup,
                    Some(&emulator),
                    &mut server,
                    &url,
                    Read::Flight(Some(&mut sink)),
                )
                .await?;
            sink.finish()?;
            if first.rows != setup.jobs {
                return Err(format!("R3: {} rows, expected {}", first.rows, setup.jobs));
            }
            let samples = self
                .repeat_flight(
                    "R3 replica read",
                    &setup,
                    Some(&emulator),
                    &mut server,
                    &url,
                    setup.jobs,
                    runs,
                )
                .await?;
            Row {
                label: "R3 replica read".into(),
                setup: format!("{}, store", setup.describe()),
                samples,
                rss_mib: server.peak_rss_mib(),
                extra: vec!["plain Flight DoGet of the replica".into()],
                ..Row::default()
            }
            // The emulator and the server stop here, before the peer starts.
        };
        self.against_pyarrow("R3", ours, &setup, &sink.path, setup.jobs)
            .await;
        Ok(())
    }
}
