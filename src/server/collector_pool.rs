//! The collectors this process runs: one per partition it collects. In a
//! fleet the set follows the fleet: when a member leaves, the survivors
//! start the collectors of the partitions they now own (resuming from the
//! store's watermarks, no full scan); when one joins or comes back, the
//! members that gave it partitions stop theirs.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::flight::{Fleet, FleetView};
use crate::replica::{Collector, ReplicaStore, Schedule, StatusBoard};
use crate::source::{Partition, PartitionKey};
use crate::task::AbortOnDrop;

/// The running collectors of `partitions`, reporting to `board`.
#[derive(Debug)]
pub(crate) struct CollectorPool {
    partitions: Vec<Partition>,
    store: Arc<ReplicaStore>,
    schedule: Schedule,
    board: StatusBoard,
    /// Each running collector, aborted when removed.
    running: BTreeMap<PartitionKey, AbortOnDrop>,
}

impl CollectorPool {
    /// A pool of no collector yet over `partitions`.
    pub(crate) fn new(
        partitions: Vec<Partition>,
        store: Arc<ReplicaStore>,
        schedule: Schedule,
        board: StatusBoard,
    ) -> CollectorPool {
        CollectorPool {
            partitions,
            store,
            schedule,
            board,
            running: BTreeMap::new(),
        }
    }

    /// Runs a collector for every partition, for as long as the pool lives.
    pub(crate) fn collect_all(&mut self) {
        self.collect_where(|_| true);
    }

    /// Runs a collector for the partitions `fleet` gives this instance, and
    /// stops the others.
    pub(crate) fn follow(&mut self, fleet: &Fleet) {
        self.collect_where(|key| fleet.is_mine(key));
    }

    /// Keeps following `fleet` until it never changes again.
    pub(crate) async fn follow_changes(mut self, mut fleet: FleetView) {
        self.follow(&fleet.current());
        while fleet.changed().await {
            self.follow(&fleet.current());
        }
        // The pool (and its collectors) lives on until its holder stops.
        std::future::pending::<()>().await;
    }

    fn collect_where(&mut self, mine: impl Fn(&PartitionKey) -> bool) {
        for partition in &self.partitions {
            let key = &partition.key;
            match (mine(key), self.running.contains_key(key)) {
                (true, false) => {
                    let collector = Collector::new(partition.clone(), Arc::clone(&self.store))
                        .reporting_to(self.board.clone());
                    let schedule = self.schedule;
                    let task = tokio::spawn(async move { collector.run_every(schedule).await });
                    self.running.insert(key.clone(), AbortOnDrop(task));
                    self.board.set_collecting(key, true);
                    tracing::info!(partition = %key, "collecting");
                }
                (false, true) => {
                    // Dropped: aborted. A commit it was making is atomic in
                    // the store: it happened or it did not.
                    self.running.remove(key);
                    self.board.set_collecting(key, false);
                    tracing::info!(partition = %key, "handed over to another member");
                }
                _ => {}
            }
        }
    }
}
