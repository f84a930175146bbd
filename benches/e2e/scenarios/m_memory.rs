//! M, memory: the server's peak resident set over a `SELECT *` of 100,000
//! jobs.

use crate::*;

pub(super) const ABOUT: &str = "**M, memory.** `SELECT *` over 100,000 jobs at 2 ms latency, no cache, \
     `--concurrency 128`, streamed and dropped by the client. The server's peak \
     resident set (`VmHWM` of its process) should stay under 200 MiB: it streams, \
     it does not hold the table.";

impl Bench {
    pub(super) async fn m(&mut self) -> Res<()> {
        let setup = self.setup(100_000, 2);
        let mut row = self.select_all("M", &setup, self.options.runs).await?;
        row.targets.push(Target::new(
            "M",
            "server peak RSS < 200 MiB",
            row.rss_mib
                .map_or_else(|| "unreadable".into(), |m| format!("{m:.0} MiB")),
            format!(
                "RSS {} < 200 MiB",
                row.rss_mib
                    .map_or_else(|| "-".into(), |m| format!("{m:.0}"))
            ),
            row.rss_mib.map(|m| m < 200.0),
        ));
        self.rows.push(row);
        Ok(())
    }
}
