//! Cancelling a query by its FlightInfo (CancelFlightInfo, and Flight
//! SQL's older CancelQuery): the DoGet streams of its tickets stop, their
//! SageMaker calls with them, as when a client drops its stream; and a
//! DoGet of those tickets that comes later is refused.
//!
//! This file keeps the running streams and the cancelled statements;
//! `cancel.rs` answers the actions. A stream is found by its ticket's
//! statement (the encoded handle), in this process: a ticket being read on another instance of a fleet is
//! not stopped by a cancel sent here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// Cancelled statements remembered, so that a DoGet after the cancel is
/// refused; the oldest are forgotten first.
const REMEMBERED_CANCELS: usize = 10_000;

/// The running streams and the cancelled statements of this process.
#[derive(Clone, Debug, Default)]
pub struct Cancellations {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Each running stream's cancel switch, by its statement.
    running: HashMap<Vec<u8>, Vec<(u64, watch::Sender<bool>)>>,
    /// Cancelled statements, oldest first, and the same as a set.
    cancelled: VecDeque<Vec<u8>>,
    cancelled_set: HashSet<Vec<u8>>,
    next_id: u64,
}

/// A running stream's place in [`Cancellations`]: it hears a cancel
/// through [`Registration::cancelled`], and leaves when dropped.
#[derive(Debug)]
pub struct Registration {
    state: Arc<Mutex<State>>,
    statement: Vec<u8>,
    id: u64,
    switch: watch::Receiver<bool>,
}

impl Cancellations {
    /// A stream of `statement` (its encoded handle) starts: its
    /// registration, or `None` if the statement was cancelled before.
    pub fn register(&self, statement: Vec<u8>) -> Option<Registration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled_set.contains(&statement) {
            return None;
        }
        state.next_id += 1;
        let id = state.next_id;
        let (sender, switch) = watch::channel(false);
        state
            .running
            .entry(statement.clone())
            .or_default()
            .push((id, sender));
        Some(Registration {
            state: Arc::clone(&self.state),
            statement,
            id,
            switch,
        })
    }

    /// Cancels `statements`: every running stream of them stops, and they
    /// will not start again. Returns how many streams were running.
    pub fn cancel(&self, statements: impl IntoIterator<Item = Vec<u8>>) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stopped = 0;
        for statement in statements {
            if let Some(streams) = state.running.remove(&statement) {
                for (_, switch) in streams {
                    switch.send_replace(true);
                    stopped += 1;
                }
            }
            if state.cancelled_set.insert(statement.clone()) {
                state.cancelled.push_back(statement);
            }
        }
        while state.cancelled.len() > REMEMBERED_CANCELS {
            if let Some(oldest) = state.cancelled.pop_front() {
                state.cancelled_set.remove(&oldest);
            }
        }
        stopped
    }
}

impl Registration {
    /// Resolves when the stream's statement is cancelled (never, if it is
    /// not).
    pub async fn cancelled(&mut self) {
        if self.switch.wait_for(|cancelled| *cancelled).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(streams) = state.running.get_mut(&self.statement) {
            streams.retain(|(id, _)| *id != self.id);
            if streams.is_empty() {
                state.running.remove(&self.statement);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cancel_stops_the_streams_of_its_statement_only_and_bars_new_ones() {
        let cancellations = Cancellations::default();
        let mut first = cancellations.register(b"a".to_vec()).expect("running");
        let mut second = cancellations.register(b"a".to_vec()).expect("running");
        let other = cancellations.register(b"b".to_vec()).expect("running");
        assert_eq!(cancellations.cancel([b"a".to_vec()]), 2);
        first.cancelled().await;
        second.cancelled().await;
        assert!(!*other.switch.borrow());
        assert!(cancellations.register(b"a".to_vec()).is_none());
        assert!(cancellations.register(b"b".to_vec()).is_some());
        // A statement not running is remembered all the same.
        assert_eq!(cancellations.cancel([b"c".to_vec()]), 0);
        assert!(cancellations.register(b"c".to_vec()).is_none());
    }

    #[test]
    fn a_finished_stream_leaves_and_old_cancels_are_forgotten() {
        let cancellations = Cancellations::default();
        drop(cancellations.register(b"a".to_vec()));
        assert_eq!(cancellations.cancel([b"a".to_vec()]), 0);
        let many = (0..=REMEMBERED_CANCELS).map(|i| i.to_string().into_bytes());
        cancellations.cancel(many);
        // "a" and "0" were the oldest: forgotten.
        assert!(cancellations.register(b"a".to_vec()).is_some());
        assert!(cancellations.register(b"0".to_vec()).is_some());
        assert!(cancellations.register(b"1".to_vec()).is_none());
    }
}
