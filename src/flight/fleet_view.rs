//! The fleet as it is now. Membership (`server/membership.rs`) publishes
//! a new [`Fleet`] when a member leaves or joins; every query reads the
//! latest one for its endpoints.

use tokio::sync::watch;

use crate::flight::fleet::Fleet;

/// The current fleet, owners assigned; cheap to clone.
#[derive(Clone, Debug)]
pub struct FleetView(watch::Receiver<Fleet>);

/// What changes the fleet every [`FleetView`] of it sees.
#[derive(Debug)]
pub struct FleetPublisher(watch::Sender<Fleet>);

impl FleetView {
    /// A fleet that never changes (`fleet` as assigned).
    pub fn fixed(fleet: Fleet) -> FleetView {
        // A receiver keeps the last value after its sender is gone.
        FleetView(watch::channel(fleet).1)
    }

    /// The fleet now.
    pub fn current(&self) -> Fleet {
        self.0.borrow().clone()
    }

    /// Waits until the fleet changes; `false` when it never will again.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

impl FleetPublisher {
    /// A publisher starting with `initial` (owners assigned).
    pub fn new(initial: Fleet) -> FleetPublisher {
        FleetPublisher(watch::channel(initial).0)
    }

    /// A view of the fleet this publishes.
    pub fn view(&self) -> FleetView {
        FleetView(self.0.subscribe())
    }

    /// The fleet now.
    pub fn current(&self) -> Fleet {
        self.0.borrow().clone()
    }

    /// Makes `fleet` the current one; whether it differs from the last.
    pub fn publish(&self, fleet: Fleet) -> bool {
        self.0.send_if_modified(|current| {
            let changed = *current != fleet;
            if changed {
                *current = fleet;
            }
            changed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_see_the_latest_fleet_and_only_real_changes_count() {
        let alone = Fleet::new("grpc://a:1".into(), Vec::new());
        let two = Fleet::new("grpc://a:1".into(), vec!["grpc://b:2".into()]);
        let publisher = FleetPublisher::new(alone.clone());
        let mut view = publisher.view();
        assert_eq!(view.current(), alone);
        assert!(
            !publisher.publish(alone.clone()),
            "the same fleet is no change"
        );
        assert!(publisher.publish(two.clone()));
        assert_eq!(view.current(), two);
        let changed = futures::executor::block_on(view.changed());
        assert!(changed);
        assert_eq!(FleetView::fixed(alone.clone()).current(), alone);
    }
}
