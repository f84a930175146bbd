//! Conditions every row a scan delivers must meet, checked on the job as
//! it was fetched. The table answers `compilation_job_status`,
//! `compilation_job_name` and `account_id` equalities exactly (DataFusion
//! does not filter those rows again), and the API parameters they become
//! are not quite enough on their own: a job listed under `StatusEquals`
//! may have moved on by the time it is described, a Describe by name
//! answers whatever status the job has, and a source of unknown account
//! lists whatever its credentials see.

use std::collections::BTreeSet;

use crate::source::record::JobRecord;

/// Allowed values of the columns a scan filters exactly; `None`: any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// `compilation_job_status`, as the row shows it (Describe's when the
    /// job was described, else the listing's).
    pub statuses: Option<BTreeSet<String>>,
    /// `compilation_job_name`.
    pub names: Option<BTreeSet<String>>,
    /// `account_id` (from the ARN).
    pub accounts: Option<BTreeSet<String>>,
}

impl RowFilter {
    /// Whether the row of `record` meets every condition.
    pub fn keeps(&self, record: &JobRecord) -> bool {
        let status = record
            .describe
            .as_ref()
            .and_then(|d| d.compilation_job_status())
            .map_or(record.summary.status.as_str(), |s| s.as_str());
        let allows = |set: &Option<BTreeSet<String>>, value: &str| {
            set.as_ref().is_none_or(|set| set.contains(value))
        };
        allows(&self.statuses, status)
            && allows(&self.names, &record.summary.name)
            && allows(&self.accounts, &record.summary.account_id)
    }

    /// Rows that meet both `self` and `other` (AND).
    pub fn intersect(self, other: RowFilter) -> RowFilter {
        let both = |a: Option<BTreeSet<String>>, b: Option<BTreeSet<String>>| match (a, b) {
            (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
            (a, b) => a.or(b),
        };
        RowFilter {
            statuses: both(self.statuses, other.statuses),
            names: both(self.names, other.names),
            accounts: both(self.accounts, other.accounts),
        }
    }

    /// Whether it lets every row through.
    pub fn is_empty(&self) -> bool {
        *self == RowFilter::default()
    }
}
