//! Partitions: the (account, region) pairs the table reads. Each has its own
//! [`SageMakerSource`], so its own client, gates and cache: SageMaker's rate
//! limits are per account and region, and one throttled or slow region must
//! not hold back the calls of another.

use std::collections::BTreeSet;

use crate::source::partition_key::PartitionKey;
use crate::source::sagemaker_source::SageMakerSource;
use std::sync::Arc;

/// One partition and the source that reads it.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Which account and region.
    pub key: PartitionKey,
    /// Its own client, gates and cache.
    pub source: Arc<SageMakerSource>,
}

/// Every partition the table reads, in key order (so every instance of a
/// fleet configured alike sees the same list).
#[derive(Clone, Debug)]
pub struct Partitions(Arc<[Partition]>);

impl Partitions {
    /// The partitions in `partitions`, sorted by key. Two with the same key
    /// are one: the first is kept.
    pub fn new(mut partitions: Vec<Partition>) -> Partitions {
        partitions.sort_by(|a, b| a.key.cmp(&b.key));
        partitions.dedup_by(|later, earlier| later.key == earlier.key);
        Partitions(partitions.into())
    }

    /// Every partition.
    pub fn all(&self) -> &[Partition] {
        &self.0
    }

    /// The partition of `key`, if the table reads it.
    pub fn get(&self, key: &PartitionKey) -> Option<&Partition> {
        self.0.iter().find(|partition| &partition.key == key)
    }

    /// The partitions that may hold jobs of `accounts` in `regions` (`None`:
    /// any).
    pub fn matching(
        &self,
        accounts: Option<&BTreeSet<String>>,
        regions: Option<&BTreeSet<String>>,
    ) -> Vec<&Partition> {
        self.0
            .iter()
            .filter(|partition| partition.key.may_hold(accounts, regions))
            .collect()
    }
}

/// One source of unknown account and region: a server reading one endpoint
/// with the default credentials.
impl From<Arc<SageMakerSource>> for Partitions {
    fn from(source: Arc<SageMakerSource>) -> Partitions {
        Partitions::new(vec![Partition {
            key: PartitionKey::default(),
            source,
        }])
    }
}
