//! The FlightData of the table's current snapshot (a fresh snapshot of the
//! live table, or the replica's latest version), encoded once for every
//! whole-table read while that snapshot lasts, and sent as it is made.
//!
//! Encoding copies every row: 200,000 jobs are about 250 MB of FlightData.
//! So one task per snapshot encodes it, and every read of that snapshot
//! sends its messages: the reads that arrive while it is made share it
//! (none makes its own), and each sends every message as soon as it is
//! made. A read waiting for the whole encoding sent nothing for as long
//! as it took (on a restarted server, 10,000 jobs: 13-18 ms before the
//! first batch, longer than sending them all).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use futures::stream::{self, BoxStream, Stream, StreamExt};
use tokio::sync::watch;
use tonic::Status;

use crate::task::AbortOnDrop;

/// How far an encoding is.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Messages made so far.
    messages: usize,
    /// `None` while it runs; then the messages' Arrow IPC bytes (headers
    /// and bodies), or why it failed.
    end: Option<Result<u64, Status>>,
}

/// One snapshot's encoding, shared by its reads.
struct Encoding {
    /// The messages made so far: appended by the task, then fixed.
    made: Arc<Mutex<Vec<FlightData>>>,
    progress: watch::Receiver<Progress>,
    /// The encoding task: stopped (at its next message) once neither the
    /// kept encoding nor any read of it is left.
    task: AbortOnDrop,
}

impl Encoding {
    /// Whether it failed, or its task ended without finishing (a panic).
    fn failed(&self) -> bool {
        match self.progress.borrow().end {
            Some(Ok(_)) => false,
            Some(Err(_)) => true,
            None => self.task.0.is_finished(),
        }
    }
}

/// The encoding of the latest snapshot read whole, and which it is of.
struct Kept {
    /// Compared by address; the `Weak` keeps the address from being
    /// reused by a later snapshot without keeping the rows.
    of: Weak<Vec<RecordBatch>>,
    encoding: Arc<Encoding>,
}

impl Kept {
    fn is_of(&self, batches: &Arc<Vec<RecordBatch>>) -> bool {
        std::ptr::eq(self.of.as_ptr(), Arc::as_ptr(batches))
    }
}

/// The encoding of the latest snapshot read whole, if any.
#[derive(Default)]
pub(super) struct EncodedSnapshot {
    latest: Mutex<Option<Kept>>,
}

impl EncodedSnapshot {
    /// The messages of `batches`, as they are made: the kept encoding if
    /// it is of this snapshot (made, or being made), else a new one by
    /// `encode(batches)`, kept in place of the older one. A failed
    /// encoding is made again by the next read.
    pub(super) fn messages<F, S>(
        &self,
        batches: &Arc<Vec<RecordBatch>>,
        encode: F,
    ) -> BoxStream<'static, Result<FlightData, Status>>
    where
        F: FnOnce(Arc<Vec<RecordBatch>>) -> S,
        S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
    {
        read(self.encoding(batches, encode))
    }

    /// Starts encoding `batches` unless it is kept or under way: a
    /// whole-table read planned now finds it begun when it is run.
    pub(super) fn start<F, S>(&self, batches: &Arc<Vec<RecordBatch>>, encode: F)
    where
        F: FnOnce(Arc<Vec<RecordBatch>>) -> S,
        S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
    {
        self.encoding(batches, encode);
    }

    /// The IPC bytes of `batches`' encoding if it is kept and finished,
    /// without waiting: `None` while it is being made, or before it was.
    pub(super) fn kept_bytes(&self, batches: &Arc<Vec<RecordBatch>>) -> Option<u64> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = latest.as_ref().filter(|kept| kept.is_of(batches))?;
        let bytes = kept.encoding.progress.borrow().end.clone()?;
        bytes.ok()
    }

    /// Frees the kept encoding (its snapshot expired); reads of it under
    /// way go on.
    pub(super) fn clear(&self) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The encoding of `batches`: the kept one, or a new one started.
    fn encoding<F, S>(&self, batches: &Arc<Vec<RecordBatch>>, encode: F) -> Arc<Encoding>
    where
        F: FnOnce(Arc<Vec<RecordBatch>>) -> S,
        S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
    {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = latest.as_ref().filter(|kept| kept.is_of(batches))
            && !kept.encoding.failed()
        {
            return Arc::clone(&kept.encoding);
        }
        let encoding = Arc::new(start_encoding(encode(Arc::clone(batches))));
        *latest = Some(Kept {
            of: Arc::downgrade(batches),
            encoding: Arc::clone(&encoding),
        });
        encoding
    }
}

/// Runs `messages` in a task of its own, appending each message as it
/// comes.
fn start_encoding<S>(messages: S) -> Encoding
where
    S: Stream<Item = Result<FlightData, Status>> + Send + 'static,
{
    let made = Arc::new(Mutex::new(Vec::new()));
    let (progress, receiver) = watch::channel(Progress::default());
    let task = tokio::spawn({
        let made = Arc::clone(&made);
        async move {
            let mut messages = std::pin::pin!(messages);
            let mut bytes = 0u64;
            while let Some(message) = messages.next().await {
                match message {
                    Ok(message) => {
                        bytes += (message.data_header.len() + message.data_body.len()) as u64;
                        made.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(message);
                        progress.send_modify(|progress| progress.messages += 1);
                        // The encoder is always ready: without a yield the
                        // task would run to its end before a read woken
                        // here (queued behind it, on this worker) sent the
                        // message, and an abort would wait for it too.
                        tokio::task::yield_now().await;
                    }
                    Err(status) => {
                        progress.send_modify(|progress| progress.end = Some(Err(status)));
                        return;
                    }
                }
            }
            progress.send_modify(|progress| progress.end = Some(Ok(bytes)));
        }
    });
    Encoding {
        made,
        progress: receiver,
        task: AbortOnDrop(task),
    }
}

/// Where one read of an encoding is.
struct Reading {
    encoding: Arc<Encoding>,
    progress: watch::Receiver<Progress>,
    /// The index of the first message not yet taken from `made`.
    next: usize,
    /// Messages taken, not yet sent.
    ready: VecDeque<FlightData>,
    /// Whether the read has ended (after an error).
    ended: bool,
}

/// Every message of `encoding`, each as soon as it is made.
fn read(encoding: Arc<Encoding>) -> BoxStream<'static, Result<FlightData, Status>> {
    let reading = Reading {
        progress: encoding.progress.clone(),
        encoding,
        next: 0,
        ready: VecDeque::new(),
        ended: false,
    };
    stream::unfold(reading, |mut reading| async move {
        loop {
            if let Some(message) = reading.ready.pop_front() {
                return Some((Ok(message), reading));
            }
            if reading.ended {
                return None;
            }
            let progress = reading.progress.borrow_and_update().clone();
            if reading.next < progress.messages {
                let made = reading
                    .encoding
                    .made
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Cloning a message clones reference-counted bytes, not data.
                reading
                    .ready
                    .extend(made[reading.next..progress.messages].iter().cloned());
                drop(made);
                reading.next = progress.messages;
                continue;
            }
            let failure = match progress.end {
                Some(Ok(_)) => return None,
                Some(Err(status)) => status,
                None => match reading.progress.changed().await {
                    Ok(()) => continue,
                    // The task is gone without an end (it panicked, or
                    // the runtime is shutting down); the next read makes
                    // the encoding again.
                    Err(_) => Status::internal("encoding the snapshot stopped: read it again"),
                },
            };
            reading.ended = true;
            return Some((Err(failure), reading));
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::TryStreamExt;

    use super::*;

    fn message(body: usize) -> FlightData {
        FlightData::new()
            .with_data_header(vec![0u8; 3])
            .with_data_body(vec![0u8; body])
    }

    /// An encoder of two messages that counts its calls.
    fn counted(calls: &AtomicUsize) -> impl Stream<Item = Result<FlightData, Status>> + use<> {
        calls.fetch_add(1, Ordering::SeqCst);
        stream::iter([Ok(message(1)), Ok(message(2))])
    }

    /// Asserts that a read of `snapshot` makes a new encoding, of two
    /// messages (the kept one failed).
    async fn assert_encoded_again(encoded: &EncodedSnapshot, snapshot: &Arc<Vec<RecordBatch>>) {
        let calls = AtomicUsize::new(0);
        let again: Vec<_> = encoded
            .messages(snapshot, |_| counted(&calls))
            .try_collect()
            .await
            .expect("encoded again");
        assert_eq!((calls.load(Ordering::SeqCst), again.len()), (1, 2));
    }

    #[tokio::test]
    async fn reads_arriving_together_share_one_encoding() {
        let encoded = EncodedSnapshot::default();
        let calls = AtomicUsize::new(0);
        let snapshot = Arc::new(Vec::new());
        let reads: Vec<_> = (0..4)
            .map(|_| encoded.messages(&snapshot, |_| counted(&calls)))
            .collect();
        let answers = futures::future::try_join_all(
            reads.into_iter().map(|read| read.try_collect::<Vec<_>>()),
        )
        .await
        .expect("encoded");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|messages| messages.len() == 2));
        assert!(answers.iter().all(|m| m[1].data_body.len() == 2));
    }

    #[tokio::test]
    async fn a_read_sends_each_message_as_it_is_made() {
        let encoded = EncodedSnapshot::default();
        let snapshot = Arc::new(Vec::new());
        let (feed, messages) = futures::channel::mpsc::unbounded();
        let mut read = encoded.messages(&snapshot, |_| messages);
        feed.unbounded_send(Ok(message(1))).expect("sent");
        let first = read.next().await.expect("a message").expect("made");
        assert_eq!(first.data_body.len(), 1);
        // Not finished: its size is not known yet, and a second read
        // joins this encoding instead of making one.
        assert_eq!(encoded.kept_bytes(&snapshot), None);
        let mut joined = encoded.messages(&snapshot, |_| stream::empty());
        feed.unbounded_send(Ok(message(2))).expect("sent");
        drop(feed);
        assert_eq!(
            read.next()
                .await
                .and_then(Result::ok)
                .map(|m| m.data_body.len()),
            Some(2)
        );
        assert!(read.next().await.is_none());
        let mut bodies = Vec::new();
        while let Some(message) = joined.next().await {
            bodies.push(message.expect("made").data_body.len());
        }
        assert_eq!(bodies, [1, 2]);
        assert_eq!(encoded.kept_bytes(&snapshot), Some(9));
    }

    #[tokio::test]
    async fn an_encoder_always_ready_still_lets_its_read_send_as_it_goes() {
        const MESSAGES: usize = 1000;
        let encoded = EncodedSnapshot::default();
        let snapshot = Arc::new(Vec::new());
        let made = Arc::new(AtomicUsize::new(0));
        let mut read = encoded.messages(&snapshot, |_| {
            let made = Arc::clone(&made);
            stream::iter(0..MESSAGES).map(move |_| {
                made.fetch_add(1, Ordering::SeqCst);
                Ok(message(1))
            })
        });
        read.next().await.expect("a message").expect("made");
        // The task yields after each message, so the runtime comes back to
        // this read long before the last one (after a few dozen at most).
        assert!(made.load(Ordering::SeqCst) < MESSAGES / 2);
        assert_eq!(read.count().await, MESSAGES - 1);
    }

    #[tokio::test]
    async fn an_encoding_whose_task_died_fails_its_reads_and_is_made_again() {
        let encoded = EncodedSnapshot::default();
        let snapshot = Arc::new(Vec::new());
        let dying = encoded.messages(&snapshot, |_| {
            stream::iter([Ok(message(1))]).chain(stream::poll_fn(
                |_| -> std::task::Poll<Option<Result<FlightData, Status>>> {
                    std::panic::panic_any("the encoder failed")
                },
            ))
        });
        let read: Vec<_> = dying.collect().await;
        assert_eq!(read.len(), 2);
        assert_eq!(
            read[1].as_ref().err().map(Status::code),
            Some(tonic::Code::Internal)
        );
        assert_encoded_again(&encoded, &snapshot).await;
    }

    #[tokio::test]
    async fn a_failed_encoding_fails_its_reads_and_is_made_again() {
        let encoded = EncodedSnapshot::default();
        let snapshot = Arc::new(Vec::new());
        let failing = encoded.messages(&snapshot, |_| {
            stream::iter([Ok(message(1)), Err(Status::internal("no"))])
        });
        let read: Vec<_> = failing.collect().await;
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].as_ref().err().map(Status::message), Some("no"));
        assert_eq!(encoded.kept_bytes(&snapshot), None);
        assert_encoded_again(&encoded, &snapshot).await;
    }

    #[tokio::test]
    async fn a_new_snapshot_is_encoded_again_and_a_cleared_one_too() {
        let encoded = EncodedSnapshot::default();
        let calls = AtomicUsize::new(0);
        let first = Arc::new(Vec::new());
        let second = Arc::new(Vec::new());
        let read = |batches: &Arc<Vec<RecordBatch>>| {
            encoded
                .messages(batches, |_| counted(&calls))
                .try_collect::<Vec<_>>()
        };
        read(&first).await.expect("first");
        read(&first).await.expect("first again");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        read(&second).await.expect("second");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        encoded.clear();
        read(&second).await.expect("second again");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn kept_bytes_are_those_of_the_kept_snapshot_only() {
        let encoded = EncodedSnapshot::default();
        let kept = Arc::new(Vec::new());
        let other = Arc::new(Vec::new());
        assert_eq!(encoded.kept_bytes(&kept), None);
        let calls = AtomicUsize::new(0);
        encoded
            .messages(&kept, |_| counted(&calls))
            .try_collect::<Vec<_>>()
            .await
            .expect("encoded");
        // Two messages: 3 header bytes each, bodies of 1 and 2.
        assert_eq!(encoded.kept_bytes(&kept), Some(9));
        assert_eq!(encoded.kept_bytes(&other), None);
        encoded.clear();
        assert_eq!(encoded.kept_bytes(&kept), None);
    }

    #[tokio::test]
    async fn a_started_encoding_is_the_one_a_read_gets() {
        let encoded = EncodedSnapshot::default();
        let calls = AtomicUsize::new(0);
        let snapshot = Arc::new(Vec::new());
        encoded.start(&snapshot, |_| counted(&calls));
        encoded.start(&snapshot, |_| counted(&calls));
        let read: Vec<_> = encoded
            .messages(&snapshot, |_| counted(&calls))
            .try_collect()
            .await
            .expect("encoded");
        assert_eq!((calls.load(Ordering::SeqCst), read.len()), (1, 2));
    }
}
