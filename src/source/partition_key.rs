//! The key of a partition: the (account, region) a SageMaker call goes to,
//! each part unknown where the server does not know it.

use std::collections::BTreeSet;
use std::fmt;

/// Where jobs live: the account and region whose API lists them. `None`
/// where the server does not know it (a single endpoint, read with the
/// default credentials and region, whose account was never asked for).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// The 12-digit account id, the fifth field of every job ARN there.
    pub account_id: Option<String>,
    /// The region, the fourth field of every job ARN there.
    pub region: Option<String>,
}

impl PartitionKey {
    /// This partition as metrics label it (empty where unknown).
    pub fn labels(&self) -> crate::obs::metrics::PartitionLabels {
        crate::obs::metrics::PartitionLabels::new(
            self.account_id.as_deref().unwrap_or_default(),
            self.region.as_deref().unwrap_or_default(),
        )
    }

    /// The partition of `account_id` in `region`.
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> PartitionKey {
        PartitionKey {
            account_id: Some(account_id.into()),
            region: Some(region.into()),
        }
    }

    /// Whether jobs of this partition may be in `accounts` and `regions`
    /// (`None`: any). An unknown account or region may be anything.
    pub fn may_hold(
        &self,
        accounts: Option<&BTreeSet<String>>,
        regions: Option<&BTreeSet<String>>,
    ) -> bool {
        let allows =
            |allowed: Option<&BTreeSet<String>>, value: &Option<String>| match (allowed, value) {
                (Some(allowed), Some(value)) => allowed.contains(value),
                // An empty set allows nothing, known or not.
                (Some(allowed), None) => !allowed.is_empty(),
                (None, _) => true,
            };
        allows(accounts, &self.account_id) && allows(regions, &self.region)
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.account_id.as_deref().unwrap_or("(default account)"),
            self.region.as_deref().unwrap_or("(default region)")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn a_key_holds_only_its_account_and_region() {
        let key = PartitionKey::new("111122223333", "eu-west-1");
        assert!(key.may_hold(None, None));
        assert!(key.may_hold(Some(&set(&["111122223333"])), Some(&set(&["eu-west-1"]))));
        assert!(!key.may_hold(Some(&set(&["444455556666"])), None));
        assert!(!key.may_hold(None, Some(&set(&["us-east-1", "us-west-2"]))));
        assert!(!key.may_hold(Some(&set(&[])), None));
    }

    #[test]
    fn an_unknown_key_may_hold_anything_but_nothing() {
        let key = PartitionKey::default();
        assert!(key.may_hold(Some(&set(&["111122223333"])), Some(&set(&["eu-west-1"]))));
        assert!(!key.may_hold(None, Some(&set(&[]))));
        assert_eq!(key.to_string(), "(default account)/(default region)");
    }
}
