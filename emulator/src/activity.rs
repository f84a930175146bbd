//! An emulator that lives: jobs are created over time and move STARTING ->
//! INPROGRESS -> COMPLETED, FAILED or STOPPED, each step moving their
//! LastModifiedTime; now and then a job's tags change or a finished job is
//! deleted. The sequence of events is fixed by the seed; their times are
//! the wall clock's.
//!
//! [`EmulatorState::advance`] plays events one by one (tests call it, so
//! they know exactly what changed); with `activity` set, the emulator plays
//! them in the background at that many new jobs a minute.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::data;
use super::job_store::{JobStore, StoredJob};
use super::limits::lock;
use super::shapes::{Millis, Tag};
use super::state::{ActivityDice, EmulatorState, to_millis};

/// Events per created job, about: its creation, its start, its end, and
/// now and then a tag change or a deletion.
const EVENTS_PER_JOB: f64 = 3.2;

/// What one event did, for tests and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivityEvent {
    /// A job was created, STARTING.
    Created(String),
    /// A job moved to a new status.
    Moved(String, String),
    /// A job's tags changed (LastModifiedTime does not move).
    Tagged(String),
    /// A finished job was deleted.
    Deleted(String),
}

/// The time between two events for `jobs_per_minute` new jobs a minute.
fn event_interval(jobs_per_minute: f64) -> Duration {
    Duration::from_secs_f64(60.0 / (jobs_per_minute * EVENTS_PER_JOB).max(1e-3))
}

/// The activity played in the background; stops when dropped.
#[derive(Debug)]
pub(crate) struct Background(tokio::task::JoinHandle<()>);

impl Background {
    /// Plays `state`'s events at `jobs_per_minute` new jobs a minute.
    pub(crate) fn start(state: Arc<EmulatorState>, jobs_per_minute: f64) -> Background {
        let interval = event_interval(jobs_per_minute);
        Background(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            // The first tick is immediate: the first event comes one
            // interval after the start.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                state.advance(1);
            }
        }))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EmulatorState {
    /// Plays the next `events` events of activity (see the module doc);
    /// what they did, in order.
    pub fn advance(&self, events: usize) -> Vec<ActivityEvent> {
        (0..events)
            .map(|_| self.one_event(to_millis(SystemTime::now())))
            .collect()
    }

    /// One event, its times `now`; which event it is follows from the seed
    /// alone.
    fn one_event(&self, now: Millis) -> ActivityEvent {
        let mut activity = lock(&self.activity);
        let roll = activity.rng.below(100);
        let mut jobs = lock(&self.jobs);
        let (want, from): (&[&str], u64) = match roll {
            0..40 => (&[], 0),
            40..70 => (&["STARTING"], 1),
            70..94 => (&["INPROGRESS"], 2),
            94..98 => (&["COMPLETED", "FAILED", "STOPPED", "INPROGRESS"], 3),
            _ => (&["COMPLETED", "FAILED", "STOPPED"], 4),
        };
        let candidates: Vec<String> = if from == 0 {
            Vec::new()
        } else {
            jobs.names_with_status(want)
                .into_iter()
                .filter(|name| jobs.get(name).is_some_and(|job| !job.vanished))
                .collect()
        };
        if candidates.is_empty() {
            // Nothing to move: a new job instead.
            return self.create(&mut activity, &mut jobs, now);
        }
        let name = candidates[activity.rng.below(candidates.len() as u64) as usize].clone();
        if from == 4 {
            jobs.remove(&name);
            return ActivityEvent::Deleted(name);
        }
        let moved = jobs.update(&name, |job| match from {
            1 => {
                job.record.compilation_job_status = "INPROGRESS".into();
                job.record.compilation_start_time = Some(now);
                job.record.last_modified_time = now;
                ActivityEvent::Moved(name.clone(), "INPROGRESS".into())
            }
            2 => {
                let status = match activity.rng.below(10) {
                    0..7 => "COMPLETED",
                    7..9 => "FAILED",
                    _ => "STOPPED",
                };
                job.record.compilation_job_status = status.into();
                job.record.compilation_end_time = Some(now);
                job.record.last_modified_time = now;
                if status == "FAILED" {
                    job.record.failure_reason =
                        "ClientError: the model could not be compiled for the target".into();
                }
                ActivityEvent::Moved(name.clone(), status.into())
            }
            _ => {
                let value = format!("{}", activity.rng.below(1_000));
                match job.tags.iter_mut().find(|tag| tag.key == "activity") {
                    Some(tag) => tag.value = value,
                    None => job.tags.push(Tag {
                        key: "activity".into(),
                        value,
                    }),
                }
                ActivityEvent::Tagged(name.clone())
            }
        });
        match moved {
            Some(event) => event,
            None => self.create(&mut activity, &mut jobs, now),
        }
    }

    fn create(
        &self,
        activity: &mut ActivityDice,
        jobs: &mut JobStore,
        now: Millis,
    ) -> ActivityEvent {
        let index = activity.created;
        activity.created += 1;
        let seed = activity.rng.next_u64();
        let generated = data::generate(1, seed, activity.anchor, &self.region, &self.account_id);
        let Some((mut record, tags)) = generated.into_iter().next() else {
            return ActivityEvent::Created(String::new());
        };
        let name = format!("live-{index}-{}", record.compilation_job_name)
            .chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned();
        record.compilation_job_arn = data::job_arn(&self.region, &self.account_id, &name);
        record.compilation_job_name = name.clone();
        record.compilation_job_status = "STARTING".into();
        record.creation_time = now;
        record.last_modified_time = now;
        record.compilation_start_time = None;
        record.compilation_end_time = None;
        record.failure_reason = String::new();
        record.model_digests = None;
        record.derived_information = None;
        jobs.insert(StoredJob {
            record,
            tags,
            vanished: false,
        });
        ActivityEvent::Created(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;

    fn state() -> EmulatorState {
        let config = EmulatorConfig {
            jobs: 30,
            seed: 7,
            anchor: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)),
            ..Default::default()
        };
        EmulatorState::new(&config, "123456789012", "us-east-1", 30, 7)
    }

    #[test]
    fn events_follow_from_the_seed_whatever_the_clock_says() {
        let (early, late) = (state(), state());
        // Two clocks a day and a few seconds apart: created jobs get their
        // times from the clock, yet the same names (some embed a date).
        let early_events: Vec<_> = (0..300)
            .map(|i| early.one_event(Millis(1_790_000_000_000 + i)))
            .collect();
        let late_events: Vec<_> = (0..300)
            .map(|i| late.one_event(Millis(1_790_086_403_500 + i)))
            .collect();
        assert_eq!(early_events, late_events);
        assert!(
            early_events
                .iter()
                .any(|e| matches!(e, ActivityEvent::Created(_)))
        );
    }
}
