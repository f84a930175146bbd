//! S7, first rows: "the latest five jobs" and "five failed jobs", under
//! both of the emulator's paging models (filters before or after the page
//! cut): their calls do not grow with the table.

use crate::*;

/// The two questions, and the List pages each may cost when the API
/// filters before it cuts (after it cuts, "five failed jobs" pages until
/// five match).
const S7_QUERIES: [(&str, &str); 2] = [
    (
        "latest",
        "SELECT compilation_job_name, role_arn FROM aws.sagemaker_compilation_job \
         ORDER BY creation_time DESC LIMIT 5",
    ),
    (
        "failed",
        "SELECT compilation_job_name, failure_reason FROM aws.sagemaker_compilation_job \
         WHERE compilation_job_status = 'FAILED' LIMIT 5",
    ),
];
/// Rows each query asks for, and so the Describes it may make.
const S7_ROWS: u64 = 5;

pub(super) const ABOUT: &str = "**S7, first rows.** `SELECT name, role_arn ... ORDER BY creation_time DESC \
     LIMIT 5` and `SELECT name, failure_reason ... WHERE status = 'FAILED' LIMIT 5`, each with \
     the emulator filtering before it cuts a page and after (`--filter-paging after-cut`). \
     Both should describe five jobs; the first lists one page under either model, the \
     second one page when filters come first, and the pages that hold five FAILED jobs \
     when they come after. Before the sort and limit pushdown, on 5,000 jobs, they made \
     51 pages and 5,000 Describes, and 9 pages and 622 Describes.";

impl Bench {
    pub(super) async fn s7(&mut self) -> Res<()> {
        for filters_after_cut in [false, true] {
            let setup = Setup {
                filters_after_cut,
                ..self.setup(10_000, 25)
            };
            let emulator = self.emulator(&setup).await?;
            let (mut server, url) = self.server(&setup, &emulator).await?;
            for (name, query) in S7_QUERIES {
                let label = format!("S7 {name}");
                let samples = self
                    .repeat(
                        &label,
                        &setup,
                        &emulator,
                        &mut server,
                        &url,
                        query,
                        None,
                        self.options.runs,
                    )
                    .await?;
                let mut row = Row {
                    label: label.clone(),
                    setup: setup.describe(),
                    samples,
                    rss_mib: server.peak_rss_mib(),
                    ..Row::default()
                };
                let calls = row.calls().unwrap_or_default();
                let pages_allowed = if name == "latest" || !filters_after_cut {
                    1
                } else {
                    (setup.jobs as u64).div_ceil(100)
                };
                row.targets.push(Target::new(
                    "S7",
                    "Describes only the rows of the answer; List pages do not grow with the table",
                    format!("List {}, Describe {}", calls.list, calls.describe),
                    format!(
                        "Describe {} = {S7_ROWS}, List {} <= {pages_allowed}",
                        calls.describe, calls.list
                    ),
                    Some(calls.describe == S7_ROWS && calls.list <= pages_allowed),
                ));
                self.rows.push(row);
            }
        }
        Ok(())
    }
}
