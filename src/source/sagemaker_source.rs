//! The source of one (account, region): its client, gates and cache, and
//! the two ways in: a scan (list, then complete each job) and a lookup by
//! name. How it lists is in `listing.rs`, how it completes a job in
//! `fetch.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use aws_sdk_sagemaker::Client;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::source::budget::{Budget, Budgeted};
use crate::source::cache::JobCache;
use crate::source::client::TaggingClient;
use crate::source::error::SourceError;
use crate::source::gate::OperationGate;
use crate::source::operations;
use crate::source::partition_key::PartitionKey;
use crate::source::record::JobRecord;
use crate::source::request::ScanRequest;
use crate::source::retry::RetryPolicy;
use crate::source::row_filter::RowFilter;
use crate::task::AbortOnDrop;

/// Pages each lister may run ahead of the describers.
const LIST_PAGES_AHEAD: usize = 2;
/// Calls of each operation in flight at once, per partition, unless
/// configured.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Creation-time windows of a full listing, unless configured.
pub const DEFAULT_LIST_WINDOWS: usize = 4;

/// Reads compilation jobs from one SageMaker endpoint (account and region).
#[derive(Debug)]
pub struct SageMakerSource {
    pub(super) client: Client,
    /// Jobs in work at once per scan: each holds at most one call per operation.
    pub(super) concurrency: usize,
    /// Creation-time windows a full listing is split into, listed in parallel.
    pub(super) list_windows: usize,
    /// Answers kept between scans; `None`: every scan calls everything.
    pub(super) cache: Option<JobCache>,
    pub(super) retry: RetryPolicy,
    pub(super) list_gate: OperationGate,
    pub(super) describe_gate: OperationGate,
    pub(super) tags_gate: OperationGate,
    /// The Tagging API, for every job's tags at once (`tagging.rs`);
    /// `None`: tags come from ListTags only.
    pub(super) tagging: Option<TaggingClient>,
    pub(super) tagging_gate: OperationGate,
}

impl SageMakerSource {
    /// A source making at most `concurrency` (at least 1) calls of each
    /// operation at once.
    pub fn new(client: Client, concurrency: usize, retry: RetryPolicy) -> Self {
        let concurrency = concurrency.max(1);
        SageMakerSource {
            client,
            concurrency,
            list_windows: DEFAULT_LIST_WINDOWS,
            cache: None,
            retry,
            list_gate: OperationGate::new(operations::LIST, concurrency),
            describe_gate: OperationGate::new(operations::DESCRIBE, concurrency),
            tags_gate: OperationGate::new(operations::LIST_TAGS, concurrency),
            tagging: None,
            tagging_gate: OperationGate::new(operations::GET_RESOURCES, 1),
        }
    }

    /// The same source, counting its calls in metrics as calls to
    /// `partition`.
    pub fn in_partition(mut self, partition: &PartitionKey) -> Self {
        self.list_gate = self.list_gate.in_partition(partition);
        self.describe_gate = self.describe_gate.in_partition(partition);
        self.tags_gate = self.tags_gate.in_partition(partition);
        self.tagging_gate = self.tagging_gate.in_partition(partition);
        self
    }

    /// The same source, reading every job's tags through the Tagging API
    /// where a caller asks for them all ([`SageMakerSource::tagged_jobs`]).
    pub fn with_tagging(mut self, tagging: TaggingClient) -> Self {
        self.tagging = Some(tagging);
        self
    }

    /// Splits full listings into `windows` (at least 1) creation-time
    /// windows listed in parallel.
    pub fn with_list_windows(mut self, windows: usize) -> Self {
        self.list_windows = windows.max(1);
        self
    }

    /// Keeps Describe and ListTags answers between scans (see `cache.rs`);
    /// a zero `ttl` keeps none.
    pub fn with_cache(mut self, ttl: std::time::Duration, max_jobs: usize) -> Self {
        self.cache = (!ttl.is_zero()).then(|| JobCache::new(ttl, max_jobs));
        self
    }

    /// Streams every job, completed with what `request` asks for, in the
    /// order their calls finish. Dropping the stream stops the listing and
    /// every call that has not finished.
    pub fn scan(
        self: &Arc<Self>,
        request: ScanRequest,
    ) -> BoxStream<'static, Result<JobRecord, SourceError>> {
        let (pages, lister) = match request.limit {
            // A LIMIT scan lists lazily: the next page only when its rows
            // are needed.
            Some(_) => (Arc::clone(self).pages(request.list.clone(), None), None),
            // A full scan lists ahead in its own task, so the NextToken
            // chain never waits for describes; a long listing is split into
            // creation-time windows listed in parallel (`list_everything`).
            None => {
                let (pages_tx, pages_rx) = mpsc::channel(LIST_PAGES_AHEAD * self.list_windows);
                // In the caller's span: its calls count against the query.
                let lister = tokio::spawn(tracing::Instrument::in_current_span(
                    Arc::clone(self).list_everything(request.list.clone(), pages_tx),
                ));
                (
                    ReceiverStream::new(pages_rx).boxed(),
                    Some(AbortOnDrop(lister)),
                )
            }
        };
        // A full listing drops the jobs its windows list twice itself
        // (`list_everything`); a lazy chain remembers what it took, since a
        // job created while it pages may shift into a later page.
        let mut taken = request.limit.map(|_| HashSet::new());
        let summaries = pages.flat_map(move |page| match page {
            Ok(summaries) => stream::iter(
                summaries
                    .into_iter()
                    .filter(|summary| {
                        taken
                            .as_mut()
                            .is_none_or(|taken| taken.insert(summary.arn.clone()))
                    })
                    .map(Ok)
                    .collect::<Vec<_>>(),
            ),
            Err(error) => stream::iter(vec![Err(error)]),
        });
        let budget = request.limit.map(Budget::new);
        let summaries = match &budget {
            Some(budget) => Budgeted::new(summaries.boxed(), Arc::clone(budget))
                .with_ties_in(request.list.order)
                .boxed(),
            None => summaries.boxed(),
        };
        let source = Arc::clone(self);
        // An ordered LIMIT also delivers the ties of its last row; the
        // budget alone bounds it.
        let limit = match request.list.order {
            Some(_) => usize::MAX,
            None => request.limit.unwrap_or(usize::MAX),
        };
        summaries
            .map(move |summary| {
                let source = Arc::clone(&source);
                let request = request.clone();
                async move { source.complete(summary?, &request).await }
            })
            .buffer_unordered(self.concurrency)
            .filter_map(move |completed| {
                // Owning the lister here ties its life to the stream's.
                let _lister = &lister;
                let item = match completed {
                    Ok(None) => {
                        if let Some(budget) = &budget {
                            budget.refund();
                        }
                        None
                    }
                    Ok(Some(record)) => {
                        if let Some(budget) = &budget {
                            budget.finished();
                        }
                        Some(Ok(record))
                    }
                    Err(error) => {
                        if let Some(budget) = &budget {
                            budget.finished();
                        }
                        Some(Err(error))
                    }
                };
                async move { item }
            })
            .take(limit)
            .boxed()
    }
    /// Streams the jobs named in `names` straight from DescribeCompilationJob
    /// (and ListTags when `tags`), no listing; names that do not exist, and
    /// jobs that `rows` does not keep, are skipped. At most `concurrency` lookups run at once.
    pub fn lookup(
        self: &Arc<Self>,
        names: Vec<String>,
        tags: bool,
        rows: RowFilter,
    ) -> BoxStream<'static, Result<JobRecord, SourceError>> {
        let source = Arc::clone(self);
        stream::iter(names)
            .map(move |name| {
                let source = Arc::clone(&source);
                async move { source.lookup_one(&name, tags).await }
            })
            .buffer_unordered(self.concurrency)
            .filter_map(move |found| {
                let kept = found
                    .map(|record| record.filter(|record| rows.keeps(record)))
                    .transpose();
                async move { kept }
            })
            .boxed()
    }
}
