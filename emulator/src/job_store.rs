//! One partition's jobs: by name, and in the two other orders
//! ListCompilationJobs sorts by (creation time, status), so that a page is
//! read from where the last one ended instead of from a pass over every
//! job.
//!
//! Reading goes through the map of jobs by name (`Deref`); every change
//! goes through [`JobStore::insert`], [`JobStore::remove`] or
//! [`JobStore::update`], which keep the orders in step.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, Deref};

use super::paging::SortKey;
use super::shapes::{JobRecord, Tag};

/// One job as the emulator holds it.
#[derive(Clone, Debug)]
pub(crate) struct StoredJob {
    pub(crate) record: JobRecord,
    /// Tags in ListTags order: creation order, `AddTags` replaces values in
    /// place and appends new keys.
    pub(crate) tags: Vec<Tag>,
    /// Set by the vanish hook: still listed, but Describe/ListTags/AddTags/
    /// Delete answer `ResourceNotFound` (a job deleted between list and
    /// describe).
    pub(crate) vanished: bool,
}

/// The orders a listing can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortBy {
    Name,
    CreationTime,
    Status,
}

impl SortBy {
    /// The key of `job` in this order (ties are broken by name).
    pub(crate) fn key_of(self, job: &StoredJob) -> SortKey {
        match self {
            SortBy::Name => SortKey::Text(job.record.compilation_job_name.clone()),
            SortBy::CreationTime => SortKey::Time(job.record.creation_time.0),
            SortBy::Status => SortKey::Text(job.record.compilation_job_status.clone()),
        }
    }
}

/// One end of a walk: a (key, name) bound.
pub(crate) type KeyBound = Bound<(SortKey, String)>;

/// Where a listing's walk starts and ends, as bounds in ascending order.
pub(crate) type Span = Bounds<SortKey>;

/// Start and end bounds over (key, name) pairs of one order.
type Bounds<K> = (Bound<(K, String)>, Bound<(K, String)>);

/// The jobs of one partition.
#[derive(Debug, Default)]
pub(crate) struct JobStore {
    by_name: BTreeMap<String, StoredJob>,
    by_creation: BTreeSet<(i64, String)>,
    by_status: BTreeSet<(String, String)>,
}

impl Deref for JobStore {
    type Target = BTreeMap<String, StoredJob>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl FromIterator<StoredJob> for JobStore {
    fn from_iter<I: IntoIterator<Item = StoredJob>>(jobs: I) -> Self {
        let mut store = JobStore::default();
        for job in jobs {
            store.insert(job);
        }
        store
    }
}

impl JobStore {
    /// Adds `job` (by its record's name), replacing one of that name.
    pub(crate) fn insert(&mut self, job: StoredJob) {
        let name = job.record.compilation_job_name.clone();
        self.remove(&name);
        self.index(&name, &job);
        self.by_name.insert(name, job);
    }

    /// Removes the job `name`.
    pub(crate) fn remove(&mut self, name: &str) -> Option<StoredJob> {
        let job = self.by_name.remove(name)?;
        self.unindex(name, &job);
        Some(job)
    }

    /// Changes the job `name` by `change` (its name must stay); `None` if
    /// there is no such job.
    pub(crate) fn update<R>(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut StoredJob) -> R,
    ) -> Option<R> {
        let mut job = self.remove(name)?;
        let result = change(&mut job);
        self.insert(job);
        Some(result)
    }

    /// Changes every job by `change` (tests: tags, statuses).
    #[cfg(test)]
    pub(crate) fn update_all(&mut self, mut change: impl FnMut(usize, &mut StoredJob)) {
        let names: Vec<String> = self.by_name.keys().cloned().collect();
        for (i, name) in names.iter().enumerate() {
            self.update(name, |job| change(i, job));
        }
    }

    /// The names of the jobs in any of `statuses`, in name order.
    pub(crate) fn names_with_status(&self, statuses: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = statuses
            .iter()
            .flat_map(|status| {
                let from = ((*status).to_owned(), String::new());
                self.by_status
                    .range(from..)
                    .take_while(move |(s, _)| s == status)
                    .map(|(_, name)| name.clone())
            })
            .collect();
        names.sort_unstable();
        names
    }

    /// The jobs within `span` of the order `sort`, ascending or descending.
    pub(crate) fn walk<'a>(
        &'a self,
        sort: SortBy,
        descending: bool,
        span: Span,
    ) -> Box<dyn Iterator<Item = &'a StoredJob> + 'a> {
        let (from, to) = span;
        // A range whose start is past its end would panic in BTreeMap.
        if is_empty(&from, &to) {
            return Box::new(std::iter::empty());
        }
        match sort {
            SortBy::Name => {
                let names = (name_bound(from), name_bound(to));
                let range = self.by_name.range::<String, _>(names).map(|(_, job)| job);
                flip(range, descending)
            }
            SortBy::CreationTime => self.walk_index(
                &self.by_creation,
                (time_bound(from), time_bound(to)),
                descending,
            ),
            SortBy::Status => self.walk_index(
                &self.by_status,
                (text_pair_bound(from), text_pair_bound(to)),
                descending,
            ),
        }
    }

    /// The jobs of `index` within `bounds`.
    fn walk_index<'a, K: Ord>(
        &'a self,
        index: &'a BTreeSet<(K, String)>,
        bounds: Bounds<K>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = &'a StoredJob> + 'a> {
        let range = index
            .range(bounds)
            .filter_map(|(_, name)| self.by_name.get(name));
        flip(range, descending)
    }

    fn index(&mut self, name: &str, job: &StoredJob) {
        self.by_creation
            .insert((job.record.creation_time.0, name.to_owned()));
        self.by_status
            .insert((job.record.compilation_job_status.clone(), name.to_owned()));
    }

    fn unindex(&mut self, name: &str, job: &StoredJob) {
        self.by_creation
            .remove(&(job.record.creation_time.0, name.to_owned()));
        self.by_status
            .remove(&(job.record.compilation_job_status.clone(), name.to_owned()));
    }
}

/// Whether no key lies between `from` and `to`.
fn is_empty(from: &KeyBound, to: &KeyBound) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// The tighter of two lower bounds.
pub(crate) fn later_start(a: KeyBound, b: KeyBound) -> KeyBound {
    tighter(a, b, true)
}

/// The tighter of two upper bounds.
pub(crate) fn earlier_end(a: KeyBound, b: KeyBound) -> KeyBound {
    tighter(a, b, false)
}

/// The tighter of two lower (`lower`) or upper bounds.
fn tighter(a: KeyBound, b: KeyBound, lower: bool) -> KeyBound {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            let beyond = if lower { x > y } else { x < y };
            if beyond || (x == y && matches!(a, Bound::Excluded(_))) {
                a
            } else {
                b
            }
        }
    }
}

fn flip<'a, I>(range: I, descending: bool) -> Box<dyn Iterator<Item = &'a StoredJob> + 'a>
where
    I: DoubleEndedIterator<Item = &'a StoredJob> + 'a,
{
    if descending {
        Box::new(range.rev())
    } else {
        Box::new(range)
    }
}

/// A (key, name) bound of the name order as a bound of names: the key is
/// the name there.
fn name_bound(bound: KeyBound) -> Bound<String> {
    bound.map(|(_, name)| name)
}

/// A (key, name) bound of the creation order; a key that is not a time
/// (a token of another order is refused before this) bounds nothing.
fn time_bound(bound: KeyBound) -> Bound<(i64, String)> {
    match bound {
        Bound::Included((SortKey::Time(ms), name)) => Bound::Included((ms, name)),
        Bound::Excluded((SortKey::Time(ms), name)) => Bound::Excluded((ms, name)),
        _ => Bound::Unbounded,
    }
}

/// A (key, name) bound of the status order.
fn text_pair_bound(bound: KeyBound) -> Bound<(String, String)> {
    match bound {
        Bound::Included((SortKey::Text(key), name)) => Bound::Included((key, name)),
        Bound::Excluded((SortKey::Text(key), name)) => Bound::Excluded((key, name)),
        _ => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use crate::shapes::Millis;

    fn store(jobs: usize) -> JobStore {
        data::generate(
            jobs,
            3,
            Millis(1_780_000_000_000),
            "us-east-1",
            "123456789012",
        )
        .into_iter()
        .map(|(record, tags)| StoredJob {
            record,
            tags,
            vanished: false,
        })
        .collect()
    }

    fn names(jobs: Box<dyn Iterator<Item = &StoredJob> + '_>) -> Vec<String> {
        jobs.map(|job| job.record.compilation_job_name.clone())
            .collect()
    }

    const ALL: Span = (Bound::Unbounded, Bound::Unbounded);

    #[test]
    fn every_order_follows_updates_and_removals() {
        let mut jobs = store(50);
        let first = jobs.keys().next().cloned().expect("a job");
        jobs.update(&first, |job| {
            job.record.compilation_job_status = "ZZZ".into()
        });
        let by_status = names(jobs.walk(SortBy::Status, true, ALL));
        assert_eq!(by_status.len(), 50);
        assert_eq!(by_status[0], first, "the new status sorts last");
        assert_eq!(jobs.names_with_status(&["ZZZ"]), vec![first.clone()]);

        jobs.remove(&first);
        for sort in [SortBy::Name, SortBy::CreationTime, SortBy::Status] {
            let walked = names(jobs.walk(sort, false, ALL));
            assert_eq!(walked.len(), 49, "{sort:?}");
            assert!(!walked.contains(&first), "{sort:?}");
        }
        let mut by_time: Vec<(i64, String)> = jobs
            .values()
            .map(|job| {
                (
                    job.record.creation_time.0,
                    job.record.compilation_job_name.clone(),
                )
            })
            .collect();
        by_time.sort();
        let walked = names(jobs.walk(SortBy::CreationTime, false, ALL));
        assert_eq!(
            walked,
            by_time
                .into_iter()
                .map(|(_, name)| name)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn bounds_combine_and_an_inverted_span_walks_nothing() {
        let at = |ms: i64| (SortKey::Time(ms), String::new());
        assert_eq!(
            later_start(Bound::Included(at(5)), Bound::Excluded(at(5))),
            Bound::Excluded(at(5))
        );
        assert_eq!(
            later_start(Bound::Unbounded, Bound::Included(at(1))),
            Bound::Included(at(1))
        );
        assert_eq!(
            earlier_end(Bound::Excluded(at(9)), Bound::Included(at(3))),
            Bound::Included(at(3))
        );
        let jobs = store(10);
        let inverted = (Bound::Excluded(at(9)), Bound::Excluded(at(9)));
        assert_eq!(jobs.walk(SortBy::CreationTime, false, inverted).count(), 0);
        let backwards = (Bound::Included(at(10)), Bound::Included(at(2)));
        assert_eq!(jobs.walk(SortBy::CreationTime, true, backwards).count(), 0);
    }
}
