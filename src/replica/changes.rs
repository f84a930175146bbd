//! What the store's rows of a partition and SageMaker's answers say
//! changed: the comparisons a collector plans its calls and writes by.

use std::collections::{BTreeSet, HashMap};

use crate::replica::store::KnownJob;
use crate::source::JobRecord;
use crate::table::convert::{timestamp_value, to_micros};
use crate::table::schema::Column;

/// Whether `record` says more than the store's `known` row of the job: a
/// new job, or a new status, LastModifiedTime (which moves with every
/// change a Describe shows) or tags.
pub(crate) fn differs(record: &JobRecord, known: Option<&KnownJob>) -> bool {
    let Some(known) = known else {
        return true;
    };
    let modified = timestamp_value(Column::LastModifiedTime, record).map(to_micros);
    known.status != record.summary.status
        || known.last_modified != modified
        || record
            .tags
            .as_ref()
            .is_some_and(|tags| !same_tags(tags, &known.tags))
}

/// Whether two lists hold the same tags, in any order: ListTags and
/// GetResources need not give them in the same one.
pub(crate) fn same_tags(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let sorted = |tags: &[(String, String)]| {
        let mut tags = tags.to_vec();
        tags.sort();
        tags
    };
    a.len() == b.len() && sorted(a) == sorted(b)
}

/// The names of the `listed` jobs that `known` does not hold.
pub(crate) fn not_known(known: &HashMap<String, KnownJob>, listed: &[JobRecord]) -> Vec<String> {
    listed
        .iter()
        .filter(|record| !known.contains_key(&record.summary.arn))
        .map(|record| record.summary.name.clone())
        .collect()
}

/// The ARNs of the `known` jobs that `listed` does not hold: gone.
pub(crate) fn not_listed(known: &HashMap<String, KnownJob>, listed: &[JobRecord]) -> Vec<String> {
    let listed: BTreeSet<&str> = listed.iter().map(|r| r.summary.arn.as_str()).collect();
    known
        .keys()
        .filter(|arn| !listed.contains(arn.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tags_are_the_same_in_any_order_but_not_with_another_value_or_count() {
        let stored = tags(&[("team", "vision"), ("env", "prod")]);
        assert!(same_tags(
            &tags(&[("env", "prod"), ("team", "vision")]),
            &stored
        ));
        assert!(!same_tags(
            &tags(&[("env", "dev"), ("team", "vision")]),
            &stored
        ));
        assert!(!same_tags(&tags(&[("env", "prod")]), &stored));
        assert!(!same_tags(
            &tags(&[("env", "prod"), ("env", "prod"), ("team", "vision")]),
            &stored
        ));
        assert!(same_tags(&[], &[]));
    }
}
