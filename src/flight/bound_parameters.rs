//! The parameters last bound to each prepared handle, for clients that
//! keep using their old handle after DoPut: a bounded map, oldest first out.

use std::collections::{HashMap, VecDeque};

/// Most prepared handles whose bound parameters are remembered.
const MAX_REMEMBERED_BINDINGS: usize = 4096;

/// A bounded map of prepared id -> parameters; the oldest binding goes first.
#[derive(Debug, Default)]
pub struct BoundParameters {
    pub(super) by_id: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

impl BoundParameters {
    /// Remembers `parameters` for prepared handle `id`, forgetting the
    /// oldest binding past [`MAX_REMEMBERED_BINDINGS`].
    pub fn remember(&mut self, id: u64, parameters: Vec<u8>) {
        if self.by_id.insert(id, parameters).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_REMEMBERED_BINDINGS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }

    /// Forgets the parameters of prepared handle `id` (it was closed).
    pub fn forget(&mut self, id: u64) {
        if self.by_id.remove(&id).is_some() {
            self.order.retain(|&other| other != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_bindings_are_bounded_and_forgotten_on_close() {
        let mut bound = BoundParameters::default();
        for id in 1..=(MAX_REMEMBERED_BINDINGS as u64 + 10) {
            bound.remember(id, vec![1]);
        }
        assert_eq!(bound.by_id.len(), MAX_REMEMBERED_BINDINGS);
        assert!(!bound.by_id.contains_key(&1), "the oldest went first");
        bound.remember(20, vec![2]);
        assert_eq!(bound.by_id.get(&20), Some(&vec![2]), "rebinding replaces");
        bound.forget(20);
        assert!(!bound.by_id.contains_key(&20));
        assert_eq!(bound.order.len(), bound.by_id.len());
    }
}
