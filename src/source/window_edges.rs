//! The jobs a windowed listing may list twice. Adjacent creation-time
//! windows overlap at their edges (`listing.rs`), so a job created within
//! the overlap of an edge can come from both windows. Only those jobs are
//! remembered: a full listing of a million jobs keeps the few names near
//! its edges, not a million ARNs.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use crate::source::record::JobSummary;

/// The edges of a windowed listing and the jobs seen near them.
#[derive(Debug, Default)]
pub(super) struct WindowEdges {
    /// Each edge, in whole seconds since the epoch.
    edges: Vec<i64>,
    /// How far from an edge, in whole seconds, a job may be listed twice.
    reach: i64,
    /// The ARNs of the jobs seen so far within `reach` of an edge.
    seen: Mutex<HashSet<String>>,
}

impl WindowEdges {
    /// Windows that meet at `edges` and overlap `overlap_secs` on each
    /// side. A job's creation time counts in whole seconds (rounded down),
    /// so one more second of reach covers a fraction on either side.
    pub(super) fn new(edges: Vec<i64>, overlap_secs: i64) -> Self {
        WindowEdges {
            edges,
            reach: overlap_secs + 1,
            seen: Mutex::default(),
        }
    }

    /// Whether `summary` is listed for the first time: always for a job
    /// away from every edge, once for a job near one.
    pub(super) fn first_listing(&self, summary: &JobSummary) -> bool {
        let secs = summary.creation_time.secs();
        if !self
            .edges
            .iter()
            .any(|edge| (secs - edge).abs() <= self.reach)
        {
            return true;
        }
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(summary.arn.clone())
    }

    /// How many jobs it remembers.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sagemaker::types::{CompilationJobStatus, CompilationJobSummary};
    use aws_smithy_types::DateTime;

    fn summary(name: &str, millis: i64) -> JobSummary {
        let raw = CompilationJobSummary::builder()
            .compilation_job_name(name)
            .compilation_job_arn(format!(
                "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}"
            ))
            .compilation_job_status(CompilationJobStatus::Completed)
            .creation_time(DateTime::from_millis(millis))
            .build();
        JobSummary::try_from(raw).expect("a valid summary")
    }

    #[test]
    fn a_job_near_an_edge_is_taken_once_and_the_others_are_not_remembered() {
        let edges = WindowEdges::new(vec![1_000], 1);
        // Listed by both windows: 1.5 s before the edge and just after it.
        for millis in [998_500, 1_000_999] {
            let job = summary(&format!("near-{millis}"), millis);
            assert!(edges.first_listing(&job), "its first listing is taken");
            assert!(!edges.first_listing(&job), "its second is dropped");
        }
        // Far from the edge: no window lists it twice, nothing is kept.
        for millis in [10_000, 500_000, 997_000, 1_003_000, 9_000_000] {
            assert!(edges.first_listing(&summary(&format!("far-{millis}"), millis)));
        }
        assert_eq!(edges.remembered(), 2);
    }

    #[test]
    fn without_edges_every_listing_is_taken() {
        let edges = WindowEdges::default();
        let job = summary("any", 1_000_000);
        assert!(edges.first_listing(&job));
        assert!(edges.first_listing(&job));
        assert_eq!(edges.remembered(), 0);
    }
}
