//! The FlightData of the table's current snapshot (a fresh snapshot of the
//! live table, or the replica's latest version), encoded once for every
//! whole-table read while that snapshot lasts.
//!
//! Encoding copies every row: 200,000 jobs are about 250 MB of FlightData.
//! So the first reads of a new snapshot that arrive together share one
//! encoding (the others wait for it) instead of each making its own.

use std::future::Future;
use std::sync::{Arc, Weak};

use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;

/// One snapshot's encoding.
struct Encoding {
    /// Which snapshot: compared by address; the `Weak` keeps the address
    /// from being reused by a later snapshot without keeping the rows.
    of: Weak<Vec<RecordBatch>>,
    messages: Arc<Vec<FlightData>>,
    /// The messages' Arrow IPC bytes (headers and bodies).
    bytes: u64,
}

impl Encoding {
    fn is_of(&self, batches: &Arc<Vec<RecordBatch>>) -> bool {
        std::ptr::eq(self.of.as_ptr(), Arc::as_ptr(batches))
    }
}

/// The encoding of the latest snapshot read whole, if any.
#[derive(Default)]
pub(super) struct EncodedSnapshot {
    /// Held while a snapshot is encoded.
    latest: tokio::sync::Mutex<Option<Encoding>>,
}

impl EncodedSnapshot {
    /// The messages of `batches`: the kept ones if they are of this
    /// snapshot, else `encode(batches)`, kept in place of the older ones.
    pub(super) async fn messages<E, F, Fut>(
        &self,
        batches: &Arc<Vec<RecordBatch>>,
        encode: F,
    ) -> Result<Arc<Vec<FlightData>>, E>
    where
        F: FnOnce(Arc<Vec<RecordBatch>>) -> Fut,
        Fut: Future<Output = Result<Vec<FlightData>, E>>,
    {
        let mut latest = self.latest.lock().await;
        if let Some(encoding) = latest.as_ref().filter(|encoding| encoding.is_of(batches)) {
            return Ok(Arc::clone(&encoding.messages));
        }
        let messages = Arc::new(encode(Arc::clone(batches)).await?);
        let bytes = messages
            .iter()
            .map(|message| (message.data_header.len() + message.data_body.len()) as u64)
            .sum();
        *latest = Some(Encoding {
            of: Arc::downgrade(batches),
            messages: Arc::clone(&messages),
            bytes,
        });
        Ok(messages)
    }

    /// The IPC bytes of `batches`' encoding if one is kept, without
    /// waiting: `None` while it is being made, or before it was.
    pub(super) fn kept_bytes(&self, batches: &Arc<Vec<RecordBatch>>) -> Option<u64> {
        let latest = self.latest.try_lock().ok()?;
        latest
            .as_ref()
            .filter(|encoding| encoding.is_of(batches))
            .map(|encoding| encoding.bytes)
    }

    /// Frees the kept encoding (its snapshot expired).
    pub(super) async fn clear(&self) {
        *self.latest.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// An encoder that counts its calls and yields before it answers, so
    /// that concurrent callers overlap.
    async fn counted(calls: &AtomicUsize) -> Result<Vec<FlightData>, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok(vec![FlightData::default()])
    }

    #[tokio::test]
    async fn reads_arriving_together_share_one_encoding() {
        let encoded = EncodedSnapshot::default();
        let calls = AtomicUsize::new(0);
        let snapshot = Arc::new(Vec::new());
        let reads = (0..4).map(|_| encoded.messages(&snapshot, |_| counted(&calls)));
        let answers = futures::future::try_join_all(reads).await.expect("encoded");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|m| Arc::ptr_eq(m, &answers[0])));
    }

    #[tokio::test]
    async fn a_new_snapshot_is_encoded_again_and_a_cleared_one_too() {
        let encoded = EncodedSnapshot::default();
        let calls = AtomicUsize::new(0);
        let first = Arc::new(Vec::new());
        let second = Arc::new(Vec::new());
        encoded
            .messages(&first, |_| counted(&calls))
            .await
            .expect("first");
        encoded
            .messages(&first, |_| counted(&calls))
            .await
            .expect("first again");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        encoded
            .messages(&second, |_| counted(&calls))
            .await
            .expect("second");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        encoded.clear().await;
        encoded
            .messages(&second, |_| counted(&calls))
            .await
            .expect("second again");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn kept_bytes_are_those_of_the_kept_snapshot_only() {
        let encoded = EncodedSnapshot::default();
        let kept = Arc::new(Vec::new());
        let other = Arc::new(Vec::new());
        assert_eq!(encoded.kept_bytes(&kept), None);
        let message = FlightData::new()
            .with_data_header(vec![0u8; 3])
            .with_data_body(vec![0u8; 40]);
        encoded
            .messages(&kept, |_| async {
                Ok::<_, String>(vec![message.clone(), message])
            })
            .await
            .expect("encoded");
        assert_eq!(encoded.kept_bytes(&kept), Some(86));
        assert_eq!(encoded.kept_bytes(&other), None);
        encoded.clear().await;
        assert_eq!(encoded.kept_bytes(&kept), None);
    }
}
