//! Spawned tasks tied to the life of whatever holds them.

/// Aborts a spawned task when dropped: a dropped stream, query or server
/// stops the work it started.
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
