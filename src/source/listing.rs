//! Listing: the NextToken chain of ListCompilationJobs, and a long listing
//! split into creation-time windows listed in parallel.

use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
use aws_smithy_types::DateTime;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::mpsc;

use crate::source::error::SourceError;
use crate::source::operations;
use crate::source::record::JobSummary;
use crate::source::request::{LIST_PAGE_SIZE, ListOrder, ListParams, SortKey};
use crate::source::sagemaker_source::SageMakerSource;
use crate::source::window_edges::WindowEdges;

/// The order of a listing that asks for none.
const OLDEST_FIRST: ListOrder = ListOrder {
    key: SortKey::CreationTime,
    descending: false,
};
/// Windows cover the year before the listing (or the query's creation-time
/// range); anything older falls in the first, open-ended one.
const WINDOWED_SPAN_SECS: i64 = 365 * 24 * 3600;
/// Adjacent windows overlap by this much on each side, so a job exactly on
/// a boundary is listed whatever AWS's After/Before inclusiveness; the
/// scan drops the duplicates.
const WINDOW_OVERLAP_SECS: i64 = 1;

/// Splits a listing into up to `windows` listings by creation time, which
/// never changes, so the NextToken chains can run in parallel. The first
/// window keeps the listing's own lower bound (or none), the last its upper
/// bound (or none); in between, equal slices of the range.
fn creation_windows(list: &ListParams, windows: usize, now: DateTime) -> Vec<ListParams> {
    let low = list
        .creation_after
        .map_or(now.secs() - WINDOWED_SPAN_SECS, |t| t.secs());
    let high = list.creation_before.map_or(now.secs(), |t| t.secs());
    let slices = windows as i64;
    if windows <= 1 || high - low < slices * 4 * WINDOW_OVERLAP_SECS {
        return vec![list.clone()];
    }
    let step = (high - low) / slices;
    (0..slices)
        .map(|i| ListParams {
            creation_after: if i == 0 {
                list.creation_after
            } else {
                Some(DateTime::from_secs(low + i * step - WINDOW_OVERLAP_SECS))
            },
            creation_before: if i == slices - 1 {
                list.creation_before
            } else {
                Some(DateTime::from_secs(
                    low + (i + 1) * step + WINDOW_OVERLAP_SECS,
                ))
            },
            ..list.clone()
        })
        .collect()
}

impl SageMakerSource {
    /// The NextToken chain as a lazy stream of pages: each page is fetched
    /// when the previous one has been taken. Ends after the last page or
    /// the first error.
    pub(super) fn pages(
        self: Arc<Self>,
        params: ListParams,
        first_token: Option<String>,
    ) -> BoxStream<'static, Result<Vec<JobSummary>, SourceError>> {
        // State: the token of the next page; `None` once the chain is done.
        stream::unfold(Some(first_token), move |state| {
            let source = Arc::clone(&self);
            let params = params.clone();
            async move {
                let next_token = state?;
                let page = match source.list_page(&params, next_token).await {
                    Ok((summaries, token)) => summaries
                        .into_iter()
                        .map(JobSummary::try_from)
                        .collect::<Result<Vec<_>, _>>()
                        .map(|summaries| (summaries, token)),
                    Err(error) => Err(error),
                };
                Some(match page {
                    Ok((summaries, Some(token))) if !token.is_empty() => {
                        (Ok(summaries), Some(Some(token)))
                    }
                    Ok((summaries, _)) => (Ok(summaries), None),
                    Err(error) => (Err(error), None),
                })
            }
        })
        .boxed()
    }

    /// The summaries of the jobs created at or after `since`, newest first,
    /// listed lazily: the listing stops at the first older job, so it costs
    /// the pages that hold the new jobs (and one more page's worth at
    /// most), whatever the table's size and whether or not the API filters
    /// before it cuts pages (no filter is asked for).
    pub fn created_since(
        self: &Arc<Self>,
        since: DateTime,
    ) -> BoxStream<'static, Result<JobSummary, SourceError>> {
        let newest_first = ListParams {
            order: Some(ListOrder {
                key: SortKey::CreationTime,
                descending: true,
            }),
            ..ListParams::default()
        };
        Arc::clone(self)
            .pages(newest_first, None)
            .flat_map(|page| match page {
                Ok(summaries) => stream::iter(summaries.into_iter().map(Ok).collect::<Vec<_>>()),
                Err(error) => stream::iter(vec![Err(error)]),
            })
            .take_while(move |summary| {
                let newer = summary
                    .as_ref()
                    .map_or(true, |summary| summary.creation_time >= since);
                async move { newer }
            })
            .boxed()
    }

    /// Lists everything `params` matches into `pages`. The first page says
    /// how long the listing is: a page of 100 jobs created within `d`
    /// seconds, with the range beyond it `r` seconds long, suggests `r / d`
    /// more pages. If there are several, the rest of the range is split into
    /// that many creation-time windows (at most `list_windows`), listed in
    /// parallel; otherwise the chain simply goes on. Stops when the receiver
    /// is gone.
    pub(super) async fn list_everything(
        self: Arc<Self>,
        params: ListParams,
        pages: mpsc::Sender<Result<Vec<JobSummary>, SourceError>>,
    ) {
        let first = self
            .list_page(&params, None)
            .await
            .and_then(|(summaries, token)| {
                let summaries = summaries
                    .into_iter()
                    .map(JobSummary::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((summaries, token.filter(|t| !t.is_empty())))
            });
        let (summaries, token) = match first {
            Ok(page) => page,
            Err(error) => {
                let _ = pages.send(Err(error)).await;
                return;
            }
        };
        let times = summaries
            .first()
            .zip(summaries.last())
            .map(|(first, last)| (first.creation_time.secs(), last.creation_time.secs()));
        let windows = match (&token, times) {
            (Some(_), Some((first_time, last_time))) if self.list_windows > 1 => {
                let now = DateTime::from(SystemTime::now());
                let high = params.creation_before.map_or(now.secs(), |t| t.secs());
                let span = (last_time - first_time).max(1);
                let more_pages = ((high - last_time).max(0) / span + 1) as usize;
                let rest = ListParams {
                    creation_after: Some(DateTime::from_secs(last_time - WINDOW_OVERLAP_SECS)),
                    ..params.clone()
                };
                creation_windows(&rest, more_pages.min(self.list_windows), now)
            }
            _ => Vec::new(),
        };
        if windows.len() <= 1 {
            // Short enough: the chain simply goes on, and lists no job twice.
            let no_edges = WindowEdges::default();
            if pages.send(Ok(summaries)).await.is_err() {
                return;
            }
            if let Some(token) = token {
                drain(
                    Arc::clone(&self).pages(params, Some(token)),
                    &pages,
                    &no_edges,
                )
                .await;
            }
            return;
        }
        // The first page ends where the first window begins, and each
        // window where the next begins: a job near one of those edges may
        // be listed twice.
        let edges = WindowEdges::new(
            windows
                .iter()
                .filter_map(|window| window.creation_after)
                .map(|after| after.secs() + WINDOW_OVERLAP_SECS)
                .collect(),
            WINDOW_OVERLAP_SECS,
        );
        let first_page = summaries
            .into_iter()
            .filter(|summary| edges.first_listing(summary))
            .collect();
        if pages.send(Ok(first_page)).await.is_err() {
            return;
        }
        let windows = windows
            .into_iter()
            .map(|window| drain(Arc::clone(&self).pages(window, None), &pages, &edges));
        futures::future::join_all(windows).await;
    }

    async fn list_page(
        &self,
        params: &ListParams,
        next_token: Option<String>,
    ) -> Result<(Vec<CompilationJobSummary>, Option<String>), SourceError> {
        const OPERATION: &str = operations::LIST;
        // Oldest first unless asked otherwise: windows start after the
        // first page.
        let order = params.order.unwrap_or(OLDEST_FIRST);
        let output = self
            .list_gate
            .run(&self.retry, || async {
                self.client
                    .list_compilation_jobs()
                    .max_results(params.page_size.unwrap_or(LIST_PAGE_SIZE))
                    .sort_by(order.sort_by())
                    .sort_order(order.sort_order())
                    .set_status_equals(params.status.as_deref().map(CompilationJobStatus::from))
                    .set_creation_time_after(params.creation_after)
                    .set_creation_time_before(params.creation_before)
                    .set_last_modified_time_after(params.modified_after)
                    .set_last_modified_time_before(params.modified_before)
                    .set_name_contains(params.name_contains.clone())
                    .set_next_token(next_token.clone())
                    .send()
                    .await
                    .map_err(|e| SourceError::from_sdk(OPERATION, e))
            })
            .await?;
        Ok((
            output.compilation_job_summaries.unwrap_or_default(),
            output.next_token,
        ))
    }
}

/// Sends every page of `source` to `sink`, without the jobs `edges` has
/// seen already, until either ends.
async fn drain(
    mut source: BoxStream<'static, Result<Vec<JobSummary>, SourceError>>,
    sink: &mpsc::Sender<Result<Vec<JobSummary>, SourceError>>,
    edges: &WindowEdges,
) {
    while let Some(page) = source.next().await {
        let page = page.map(|summaries| {
            summaries
                .into_iter()
                .filter(|summary| edges.first_listing(summary))
                .collect()
        });
        if sink.send(page).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_range_with_overlapping_edges() {
        let now = DateTime::from_secs(1_000_000_000);
        let windows = creation_windows(&ListParams::default(), 4, now);
        assert_eq!(windows.len(), 4);
        assert_eq!(windows[0].creation_after, None, "the first is open below");
        assert_eq!(windows[3].creation_before, None, "the last is open above");
        for pair in windows.windows(2) {
            let (before, after) = (pair[0].creation_before, pair[1].creation_after);
            let (before, after) = (before.expect("bound").secs(), after.expect("bound").secs());
            assert_eq!(before - after, 2 * WINDOW_OVERLAP_SECS, "edges overlap");
        }
    }

    #[test]
    fn windows_keep_the_querys_bounds_and_other_parameters() {
        let list = ListParams {
            status: Some("FAILED".into()),
            creation_after: Some(DateTime::from_secs(1_000)),
            creation_before: Some(DateTime::from_secs(9_000)),
            ..ListParams::default()
        };
        let windows = creation_windows(&list, 2, DateTime::from_secs(50_000));
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].creation_after, list.creation_after);
        assert_eq!(windows[1].creation_before, list.creation_before);
        assert_eq!(windows[0].creation_before, Some(DateTime::from_secs(5_001)));
        assert_eq!(windows[1].creation_after, Some(DateTime::from_secs(4_999)));
        assert!(
            windows
                .iter()
                .all(|w| w.status.as_deref() == Some("FAILED"))
        );
        // A range too short to split stays one listing.
        let short = ListParams {
            creation_after: Some(DateTime::from_secs(1_000)),
            creation_before: Some(DateTime::from_secs(1_005)),
            ..ListParams::default()
        };
        assert_eq!(
            creation_windows(&short, 4, DateTime::from_secs(50_000)),
            vec![short]
        );
    }
}
