//! Spawned tasks tied to the life of whatever holds them.

/// Aborts a spawned task when dropped: a dropped stream, query or server
/// stops the work it started.
#[derive(Debug)]
pub struct AbortOnDrop<T = ()>(pub tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task's output (still aborted if this wait is dropped).
    pub async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
