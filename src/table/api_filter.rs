//! What a query's filters let the SageMaker API do for it, and how the
//! filters of a conjunction or a disjunction combine. `pushdown.rs` turns
//! SQL filters into it.

use std::collections::BTreeSet;

use datafusion::logical_expr::Expr;

/// What a query's filters let the API do for it. `None` members mean "no
/// constraint"; an empty set means "nothing can match".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiFilter {
    /// Allowed statuses (one StatusEquals listing each).
    pub statuses: Option<BTreeSet<String>>,
    /// Exact job names: Describe them directly instead of listing.
    pub names: Option<BTreeSet<String>>,
    /// CreationTimeAfter, microseconds since the epoch.
    pub creation_after: Option<i64>,
    /// CreationTimeBefore, microseconds since the epoch.
    pub creation_before: Option<i64>,
    /// LastModifiedTimeAfter, microseconds since the epoch.
    pub modified_after: Option<i64>,
    /// LastModifiedTimeBefore, microseconds since the epoch.
    pub modified_before: Option<i64>,
    /// NameContains.
    pub name_contains: Option<String>,
    /// Accounts whose jobs may match: the partitions of other accounts are
    /// not called.
    pub accounts: Option<BTreeSet<String>>,
    /// Regions whose jobs may match: the partitions of other regions are
    /// not called.
    pub regions: Option<BTreeSet<String>>,
}

impl ApiFilter {
    /// The API parameters that a conjunction of `filters` allows.
    pub fn from_filters(filters: &[Expr]) -> ApiFilter {
        filters
            .iter()
            .filter_map(ApiFilter::of_expr)
            .fold(ApiFilter::default(), ApiFilter::intersect)
    }

    /// Whether no job can match, so no call is needed at all: no status or
    /// name is allowed, or a time range is empty.
    pub fn matches_nothing(&self) -> bool {
        let empty_range = |after: Option<i64>, before: Option<i64>| {
            after
                .zip(before)
                .is_some_and(|(after, before)| after >= before)
        };
        self.statuses.as_ref().is_some_and(BTreeSet::is_empty)
            || self.names.as_ref().is_some_and(BTreeSet::is_empty)
            || self.accounts.as_ref().is_some_and(BTreeSet::is_empty)
            || self.regions.as_ref().is_some_and(BTreeSet::is_empty)
            || empty_range(self.creation_after, self.creation_before)
            || empty_range(self.modified_after, self.modified_before)
    }

    /// Jobs that pass both `self` and `other` (AND).
    pub(crate) fn intersect(self, other: ApiFilter) -> ApiFilter {
        let sets = |a: Option<BTreeSet<String>>, b: Option<BTreeSet<String>>| match (a, b) {
            (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
            (a, b) => a.or(b),
        };
        ApiFilter {
            statuses: sets(self.statuses, other.statuses),
            names: sets(self.names, other.names),
            creation_after: max_bound(self.creation_after, other.creation_after),
            creation_before: min_bound(self.creation_before, other.creation_before),
            modified_after: max_bound(self.modified_after, other.modified_after),
            modified_before: min_bound(self.modified_before, other.modified_before),
            // The API takes one fragment; either is a valid superset.
            name_contains: self.name_contains.or(other.name_contains),
            accounts: sets(self.accounts, other.accounts),
            regions: sets(self.regions, other.regions),
        }
    }

    /// Jobs that pass `self` or `other` (OR): only what both constrain.
    pub(crate) fn union(self, other: ApiFilter) -> ApiFilter {
        // A side that matches nothing adds nothing.
        if self.matches_nothing() {
            return other;
        }
        if other.matches_nothing() {
            return self;
        }
        let sets = |a: Option<BTreeSet<String>>, b: Option<BTreeSet<String>>| match (a, b) {
            (Some(a), Some(b)) => Some(a.union(&b).cloned().collect()),
            _ => None,
        };
        let both = |a: Option<i64>, b: Option<i64>, pick: fn(i64, i64) -> i64| Some(pick(a?, b?));
        ApiFilter {
            statuses: sets(self.statuses, other.statuses),
            names: sets(self.names, other.names),
            creation_after: both(self.creation_after, other.creation_after, i64::min),
            creation_before: both(self.creation_before, other.creation_before, i64::max),
            modified_after: both(self.modified_after, other.modified_after, i64::min),
            modified_before: both(self.modified_before, other.modified_before, i64::max),
            name_contains: (self.name_contains == other.name_contains)
                .then_some(self.name_contains)
                .flatten(),
            accounts: sets(self.accounts, other.accounts),
            regions: sets(self.regions, other.regions),
        }
    }
}

fn max_bound(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_bound(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
