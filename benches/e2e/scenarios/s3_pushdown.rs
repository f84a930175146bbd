//! S3, pushdown: a filter on summary columns, answered by
//! ListCompilationJobs alone.

use crate::*;

const S3_QUERY: &str = "SELECT compilation_job_name, compilation_job_status, creation_time \
     FROM aws.sagemaker_compilation_job WHERE compilation_job_status = 'FAILED' \
     AND creation_time >= now() - INTERVAL '30 days'";
/// MaxResults of the server's ListCompilationJobs pages.
const LIST_PAGE: usize = 100;

pub(super) const ABOUT: &str = "**S3, pushdown.** `SELECT name, status, creation_time ... WHERE status = 'FAILED' \
     AND creation_time >= now() - INTERVAL '30 days'`: only summary columns, so the \
     server should call ListCompilationJobs only (StatusEquals and CreationTimeAfter \
     pushed into the API), never Describe or ListTags. `List calls` is compared with \
     the pages of 100 that the matching jobs fill.";

impl Bench {
    pub(super) async fn s3(&mut self) -> Res<()> {
        let setup = self.setup(10_000, 25);
        let emulator = self.emulator(&setup).await?;
        let (mut server, url) = self.server(&setup, &emulator).await?;
        let samples = self
            .repeat(
                "S3",
                &setup,
                &emulator,
                &mut server,
                &url,
                S3_QUERY,
                None,
                self.options.runs,
            )
            .await?;
        let mut row = Row {
            label: "S3".into(),
            setup: setup.describe(),
            samples,
            rss_mib: server.peak_rss_mib(),
            ..Row::default()
        };
        let matches = row.rows().unwrap_or(0);
        let calls = row.calls().unwrap_or_default();
        let pages = matches.div_ceil(LIST_PAGE);
        row.extra.push(format!(
            "{matches} matching jobs fill {pages} page(s) of {LIST_PAGE}; {} List call(s) made",
            calls.list
        ));
        row.targets.push(Target::new(
            "S3",
            "ListCompilationJobs only (0 Describe, 0 ListTags)",
            format!(
                "List {}, Describe {}, ListTags {}",
                calls.list, calls.describe, calls.tags
            ),
            format!("Describe + ListTags {} = 0", calls.describe + calls.tags),
            Some(calls.describe == 0 && calls.tags == 0),
        ));
        self.rows.push(row);
        Ok(())
    }
}
