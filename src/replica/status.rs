//! What this process's collectors last did, partition by partition, and
//! which partitions it collects now (in a fleet that changes as members
//! come and go): the in-memory half of the replica's freshness (the store
//! holds the other half, its watermarks and rows, for every partition
//! whoever collects it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::source::PartitionKey;

/// The last runs of one partition's collector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorStatus {
    /// When its last run ended, whatever the outcome.
    pub last_run: Option<SystemTime>,
    /// When its last successful run ended.
    pub last_success: Option<SystemTime>,
    /// Why its last run failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Runs that failed since the last success.
    pub failures_in_a_row: u64,
}

/// The collectors' statuses, shared by the collectors (which write them)
/// and the freshness table (which reads them).
#[derive(Clone, Debug, Default)]
pub struct StatusBoard {
    statuses: Arc<Mutex<BTreeMap<PartitionKey, CollectorStatus>>>,
    /// The partitions this process collects now.
    collecting: Arc<Mutex<BTreeSet<PartitionKey>>>,
}

impl StatusBoard {
    /// Records that `partition`'s collector just ran: `error` is why it
    /// failed, `None` if it succeeded.
    pub fn record(&self, partition: &PartitionKey, error: Option<String>) {
        let now = SystemTime::now();
        let mut board = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        let status = board.entry(partition.clone()).or_default();
        status.last_run = Some(now);
        match error {
            None => {
                status.last_success = Some(now);
                status.last_error = None;
                status.failures_in_a_row = 0;
            }
            Some(error) => {
                status.last_error = Some(error);
                status.failures_in_a_row += 1;
            }
        }
    }

    /// `partition`'s status, if a collector of this process ran it.
    pub fn get(&self, partition: &PartitionKey) -> Option<CollectorStatus> {
        let board = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        board.get(partition).cloned()
    }

    /// Records whether this process collects `partition` from now on.
    pub fn set_collecting(&self, partition: &PartitionKey, collecting: bool) {
        let mut set = self
            .collecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if collecting {
            set.insert(partition.clone());
        } else {
            set.remove(partition);
        }
    }

    /// Whether this process collects `partition` now.
    pub fn is_collecting(&self, partition: &PartitionKey) -> bool {
        let set = self
            .collecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        set.contains(partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_kept_until_the_next_success() {
        let board = StatusBoard::default();
        let key = PartitionKey::new("123456789012", "eu-west-1");
        assert_eq!(board.get(&key), None);
        board.record(&key, None);
        let succeeded = board.get(&key).expect("recorded");
        board.record(&key, Some("throttled".into()));
        board.record(&key, Some("throttled again".into()));
        let failed = board.get(&key).expect("recorded");
        assert_eq!(failed.last_error.as_deref(), Some("throttled again"));
        assert_eq!(failed.failures_in_a_row, 2);
        assert_eq!(failed.last_success, succeeded.last_success);
        board.record(&key, None);
        let recovered = board.get(&key).expect("recorded");
        assert_eq!(
            (recovered.last_error, recovered.failures_in_a_row),
            (None, 0)
        );
    }

    #[test]
    fn a_partition_is_collected_here_until_handed_over() {
        let board = StatusBoard::default();
        let key = PartitionKey::new("123456789012", "eu-west-1");
        assert!(!board.is_collecting(&key));
        board.set_collecting(&key, true);
        assert!(board.clone().is_collecting(&key), "clones share it");
        board.set_collecting(&key, false);
        assert!(!board.is_collecting(&key));
    }
}
