//! Turns a stream of [`JobRecord`]s into a stream of record batches, sent as
//! rows complete rather than after the whole scan.
//!
//! The first batch leaves as soon as the first row is ready (with whatever
//! else is ready at that instant), so a client sees data after about one
//! round of calls. Later batches double in size up to a ceiling, and a batch
//! that is not full is still sent once it has waited `linger`, so a slow
//! account trickles rows instead of stalling.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::time::Instant;

use crate::source::{JobRecord, SourceError};
use crate::table::convert::records_to_batch;
use crate::table::schema::Column;

/// Why a scan's stream ended early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A SageMaker call failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Building a batch failed (a bug, not bad input).
    #[error("building a record batch failed: {0}")]
    Arrow(#[from] ArrowError),
}

/// How rows are grouped into batches.
#[derive(Clone, Copy, Debug)]
pub struct BatchSizing {
    /// Rows in the second batch; each later one doubles, up to `max_rows`.
    pub min_rows: usize,
    /// The largest batch.
    pub max_rows: usize,
    /// The longest a started batch waits for more rows.
    pub linger: Duration,
}

impl Default for BatchSizing {
    fn default() -> Self {
        BatchSizing {
            min_rows: 256,
            max_rows: 8192,
            linger: Duration::from_millis(100),
        }
    }
}

struct Batcher {
    records: stream::Fuse<BoxStream<'static, Result<JobRecord, SourceError>>>,
    columns: Vec<Column>,
    schema: SchemaRef,
    sizing: BatchSizing,
    /// Rows wanted in the next batch; `None` before the first batch.
    target: Option<usize>,
}

impl Batcher {
    /// The next batch, or `None` at the end of the rows.
    async fn next_batch(&mut self) -> Option<Result<RecordBatch, ScanError>> {
        let first = match self.records.next().await? {
            Ok(record) => record,
            Err(error) => return Some(Err(error.into())),
        };
        let mut rows = vec![first];
        // The first batch takes only what is ready now; later ones linger.
        let (target, deadline) = match self.target {
            None => (self.sizing.max_rows, Instant::now()),
            Some(target) => (target, Instant::now() + self.sizing.linger),
        };
        while rows.len() < target {
            match tokio::time::timeout_at(deadline, self.records.next()).await {
                Ok(Some(Ok(record))) => rows.push(record),
                Ok(Some(Err(error))) => return Some(Err(error.into())),
                Ok(None) | Err(_) => break,
            }
        }
        self.target = Some(match self.target {
            None => self.sizing.min_rows,
            Some(target) => (target * 2).min(self.sizing.max_rows),
        });
        Some(records_to_batch(&self.schema, &self.columns, &rows).map_err(ScanError::from))
    }
}

/// Groups `records` into batches of `columns` (whose schema is `schema`).
/// The stream ends after the first error.
pub fn record_batches(
    records: BoxStream<'static, Result<JobRecord, SourceError>>,
    columns: Vec<Column>,
    schema: SchemaRef,
    sizing: BatchSizing,
) -> BoxStream<'static, Result<RecordBatch, ScanError>> {
    let batcher = Batcher {
        records: records.fuse(),
        columns,
        schema,
        sizing,
        target: None,
    };
    stream::unfold(Some(batcher), |state| async move {
        let mut batcher = state?;
        match batcher.next_batch().await? {
            Ok(batch) => Some((Ok(batch), Some(batcher))),
            // Nothing follows an error.
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
    use aws_smithy_types::DateTime;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    use crate::source::JobSummary;
    use crate::table::schema::{ALL_COLUMNS, table_schema};

    fn record(i: usize) -> Result<JobRecord, SourceError> {
        let raw = CompilationJobSummary::builder()
            .compilation_job_name(format!("job-{i}"))
            .compilation_job_arn(format!(
                "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/job-{i}"
            ))
            .compilation_job_status(CompilationJobStatus::Completed)
            .creation_time(DateTime::from_secs(1_700_000_000))
            .build();
        Ok(JobRecord {
            summary: JobSummary::try_from(raw)?,
            describe: None,
            tags: None,
        })
    }

    fn batches_of(
        rx: mpsc::Receiver<Result<JobRecord, SourceError>>,
        sizing: BatchSizing,
    ) -> BoxStream<'static, Result<RecordBatch, ScanError>> {
        record_batches(
            ReceiverStream::new(rx).boxed(),
            ALL_COLUMNS.to_vec(),
            table_schema(),
            sizing,
        )
    }

    #[tokio::test]
    async fn the_first_batch_takes_what_is_ready_without_waiting() {
        let (tx, rx) = mpsc::channel(1000);
        let mut batches = batches_of(rx, BatchSizing::default());
        for i in 0..3 {
            tx.send(record(i)).await.expect("send");
        }
        // More rows will come, but the first batch does not wait for them.
        let first = batches.next().await.expect("batch").expect("ok");
        assert_eq!(first.num_rows(), 3);
        for i in 3..13 {
            tx.send(record(i)).await.expect("send");
        }
        drop(tx);
        let second = batches.next().await.expect("batch").expect("ok");
        assert_eq!(
            second.num_rows(),
            10,
            "the end of the rows flushes the batch"
        );
        assert!(batches.next().await.is_none());
    }

    #[tokio::test]
    async fn later_batches_grow_to_the_ceiling() {
        let (tx, rx) = mpsc::channel(1000);
        let sizing = BatchSizing {
            min_rows: 4,
            max_rows: 16,
            linger: Duration::from_secs(3600),
        };
        for i in 0..1 + 4 + 8 + 16 + 16 + 5 {
            tx.send(record(i)).await.expect("send");
        }
        drop(tx);
        let sizes: Vec<_> = batches_of(rx, sizing)
            .map(|b| b.expect("ok").num_rows())
            .collect()
            .await;
        // The first batch takes all that is ready, up to the ceiling.
        assert_eq!(sizes, vec![16, 4, 8, 16, 6]);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream() {
        let (tx, rx) = mpsc::channel(10);
        tx.send(record(0)).await.expect("send");
        let mut batches = batches_of(rx, BatchSizing::default());
        assert_eq!(
            batches.next().await.expect("batch").expect("ok").num_rows(),
            1
        );
        tx.send(Err(SourceError::malformed("ListCompilationJobs", "boom")))
            .await
            .expect("send");
        tx.send(record(1)).await.expect("send");
        assert!(matches!(
            batches.next().await,
            Some(Err(ScanError::Source(_)))
        ));
        assert!(batches.next().await.is_none(), "nothing after an error");
    }
}
