//! S6, time to first batch: `SELECT *` over 1,000 and 20,000 jobs at 25 ms
//! a call.

use crate::*;

pub(super) const ABOUT: &str = "**S6, time to first batch.** `SELECT *` at 25 ms latency over 1,000 and 20,000 \
     jobs: the first rows should arrive after a few round trips (target <= 100 ms = \
     4 x latency) whatever the job count, since the server streams batches as the \
     calls complete.";

impl Bench {
    pub(super) async fn s6(&mut self) -> Res<()> {
        let mut failure = None;
        for jobs in [1_000, 20_000] {
            let setup = self.setup(jobs, 25);
            let label = format!("S6 {}", thousands(setup.jobs as u64));
            match self.select_all(&label, &setup, self.options.runs).await {
                Ok(mut row) => {
                    let limit = 4.0 * setup.latency_ms as f64 / 1000.0;
                    let first = row.first();
                    row.targets.push(Target::new(
                        &label,
                        &format!("first batch <= {} (4 x latency)", secs(limit)),
                        first.map_or_else(|| "no batch".into(), secs),
                        format!(
                            "first batch {} <= {}",
                            first.map_or_else(|| "-".into(), secs),
                            secs(limit)
                        ),
                        first.map(|f| f <= limit),
                    ));
                    self.rows.push(row);
                }
                Err(e) => {
                    self.rows.push(Row::failed(label, &setup, &e));
                    failure = Some(e);
                }
            }
        }
        failure.map_or(Ok(()), |e| Err(format!("recorded: {e}")))
    }
}
