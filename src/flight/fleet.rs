//! A fleet of instances sharing the partitions of the table through Flight
//! alone. Every instance is configured with the same accounts and regions,
//! its own advertised location (`--advertise`) and the others' (`--peer`).
//! When a query splits into one endpoint per (account, region), each
//! endpoint's location names the instance that owns the partition, so a
//! client reading the endpoints in parallel spreads the SageMaker calls,
//! the CPU and the rate limits over the fleet. Tickets are self-contained:
//! any instance can serve any ticket, so an owner is a choice, not a
//! requirement.
//!
//! Owners are chosen by rendezvous hashing with a bound on load: in key
//! order, each partition goes to the member whose hash of (member,
//! partition) is highest among those that own fewer than their fair share
//! (the partitions divided by the members, rounded up). Every instance
//! computes the same owners from the same partitions and members, whatever
//! order they were given in; shares stay even with few partitions; and a
//! partition stays with its member for as long as the fleet and the
//! partitions do, so that member's cache keeps serving it.
//!
//! The members are the live ones (`server/membership.rs` checks the
//! peers' health): a member that stops answering leaves, and its
//! partitions move to the others (for even shares, a few others may move
//! too). Each endpoint names its owner first and every other member after
//! it, in the order they would take the partition over, so a client that
//! tries the locations in order goes on to a live one.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::source::PartitionKey;

/// The instances partitions are spread over; empty: this one alone, and
/// endpoints name no location (the server the client asked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Every member's location (`grpc://host:port`), this one's included,
    /// sorted and without duplicates.
    members: Vec<String>,
    /// This instance's own location; `None`: alone.
    own: Option<String>,
    /// The member serving each partition (after [`Fleet::assign`]).
    owners: BTreeMap<PartitionKey, String>,
}

impl Fleet {
    /// A fleet of this instance at `own` and its `peers` (locations as
    /// [`location_of_address`] makes them).
    pub fn new(own: String, peers: Vec<String>) -> Fleet {
        let mut members = peers;
        members.push(own.clone());
        members.sort();
        members.dedup();
        Fleet {
            members,
            own: Some(own),
            owners: BTreeMap::new(),
        }
    }

    /// The fleet with an owner for each of `partitions` (see the module's
    /// doc); a partition it was not given has none.
    pub fn assign<'a>(mut self, partitions: impl IntoIterator<Item = &'a PartitionKey>) -> Fleet {
        let mut keys: Vec<&PartitionKey> = partitions.into_iter().collect();
        keys.sort();
        keys.dedup();
        self.owners.clear();
        if self.members.is_empty() {
            return self;
        }
        let share = keys.len().div_ceil(self.members.len());
        let mut load = vec![0_usize; self.members.len()];
        for key in keys {
            let partition = key.to_string();
            let chosen = (0..self.members.len())
                .filter(|&member| load[member] < share)
                .max_by_key(|&member| score(&self.members[member], &partition));
            if let Some(member) = chosen {
                load[member] += 1;
                self.owners
                    .insert(key.clone(), self.members[member].clone());
            }
        }
        self
    }

    /// The fleet without this instance (it is shutting down): its
    /// partitions go to the others, and it owns none.
    pub fn without_self(mut self) -> Fleet {
        if let Some(own) = &self.own {
            self.members.retain(|member| member != own);
        }
        self
    }

    /// Where partition `key` can be read, best first: its owner, then the
    /// other members by their rendezvous hash of it (the order in which
    /// they would take it over). Empty when this instance is alone (no
    /// location: the same server) or for a partition it was not given.
    pub fn locations_of(&self, key: &PartitionKey) -> Vec<String> {
        let Some(owner) = self.owner_of(key) else {
            return Vec::new();
        };
        let partition = key.to_string();
        let mut others: Vec<&String> = self
            .members
            .iter()
            .filter(|member| member.as_str() != owner)
            .collect();
        others.sort_by_key(|member| std::cmp::Reverse(score(member, &partition)));
        std::iter::once(owner.to_owned())
            .chain(others.into_iter().cloned())
            .collect()
    }

    /// The location of the member that serves partition `key`; `None` when
    /// this instance is alone (no location: the same server).
    pub fn owner_of(&self, key: &PartitionKey) -> Option<&str> {
        self.owners.get(key).map(String::as_str)
    }

    /// Whether this instance owns partition `key` (after
    /// [`Fleet::assign`]): always when it is alone. The owner collects the
    /// partition into a shared replica, so no two members write it.
    pub fn is_mine(&self, key: &PartitionKey) -> bool {
        match &self.own {
            None => true,
            Some(own) => self.owner_of(key) == Some(own.as_str()),
        }
    }

    /// Every member's location.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// This instance's own location; `None`: alone.
    pub fn own(&self) -> Option<&str> {
        self.own.as_deref()
    }
}

/// The rendezvous hash of `member` and `partition`.
fn score(member: &str, partition: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(member.as_bytes())
        .chain_update([0])
        .chain_update(partition.as_bytes())
        .finalize();
    let mut score = [0_u8; 8];
    score.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(score)
}

/// The Flight location of `address`: `host:port` (or a `grpc://`,
/// `grpc+tcp://` or `grpc+tls://` URI), with `grpc+tls://` for a TLS
/// listener. A location a client cannot connect to is an error: a missing
/// port, or an unspecified host such as 0.0.0.0.
pub fn location_of_address(address: &str, tls: bool) -> Result<String, String> {
    let (scheme, rest) = match address.split_once("://") {
        Some(("grpc" | "grpc+tcp", rest)) => ("grpc", rest),
        Some(("grpc+tls", rest)) => ("grpc+tls", rest),
        Some((scheme, _)) => {
            return Err(format!(
                "{address:?}: a Flight location is grpc://, grpc+tcp:// or grpc+tls://, not {scheme}://"
            ));
        }
        None if tls => ("grpc+tls", address),
        None => ("grpc", address),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} has no port (host:port)"))?;
    port.parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("{address:?}: {port:?} is not a port"))?;
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err(format!(
            "{address:?}: write an IPv6 host in brackets, as [::1]:50051"
        ));
    }
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    if bare_host.is_empty() || matches!(bare_host, "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0") {
        return Err(format!(
            "{address:?}: clients cannot connect to host {host:?}; advertise an address they can reach"
        ));
    }
    Ok(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(count: usize) -> Vec<PartitionKey> {
        (0..count)
            .map(|i| PartitionKey::new(format!("{:012}", 100 + i % 7), format!("region-{i}")))
            .collect()
    }

    fn three() -> Fleet {
        Fleet::new(
            "grpc://a:1".into(),
            vec!["grpc://b:2".into(), "grpc://c:3".into()],
        )
    }

    #[test]
    fn every_member_computes_the_same_even_shares() {
        let partitions = keys(8);
        let a = three().assign(&partitions);
        let mut reversed = partitions.clone();
        reversed.reverse();
        let c = Fleet::new(
            "grpc://c:3".into(),
            vec!["grpc://b:2".into(), "grpc://a:1".into()],
        )
        .assign(&reversed);
        assert_eq!((&a.members, &a.owners), (&c.members, &c.owners));
        for member in a.members() {
            let owned = partitions
                .iter()
                .filter(|k| a.owner_of(k) == Some(member.as_str()))
                .count();
            assert!((2..=3).contains(&owned), "{member} owns {owned} of 8");
        }
        // Two members, four partitions: two each, whatever the addresses.
        for port in 1000..1050 {
            let two = Fleet::new(
                format!("grpc://h:{port}"),
                vec![format!("grpc://h:{}", port + 1)],
            )
            .assign(&keys(4));
            for member in two.members() {
                let owned = keys(4)
                    .iter()
                    .filter(|k| two.owner_of(k) == Some(member.as_str()))
                    .count();
                assert_eq!(owned, 2, "{member}");
            }
        }
    }

    #[test]
    fn a_partition_not_assigned_has_no_owner() {
        let fleet = three().assign(&keys(3));
        assert!(fleet.owner_of(&keys(4)[3]).is_none());
        assert!(fleet.owner_of(&keys(3)[0]).is_some());
    }

    #[test]
    fn alone_there_is_no_location() {
        let alone = Fleet::default().assign(&keys(2));
        assert_eq!(alone.owner_of(&keys(2)[0]), None);
        assert!(
            keys(2).iter().all(|key| alone.is_mine(key)),
            "alone, all are mine"
        );
    }

    #[test]
    fn each_partition_is_exactly_one_members_own() {
        let partitions = keys(7);
        let members = ["grpc://a:1", "grpc://b:2", "grpc://c:3"];
        let views: Vec<Fleet> = members
            .iter()
            .map(|own| {
                let peers = members.iter().filter(|m| *m != own).map(|m| m.to_string());
                Fleet::new(own.to_string(), peers.collect()).assign(&partitions)
            })
            .collect();
        for key in &partitions {
            let mine: Vec<_> = views.iter().filter(|view| view.is_mine(key)).collect();
            assert_eq!(mine.len(), 1, "{key}");
            assert_eq!(mine[0].own.as_deref(), mine[0].owner_of(key));
        }
    }

    #[test]
    fn a_lost_members_partitions_go_to_the_live_ones_evenly() {
        let partitions = keys(9);
        let two = Fleet::new("grpc://a:1".into(), vec!["grpc://c:3".into()]).assign(&partitions);
        for member in two.members() {
            let owned = partitions
                .iter()
                .filter(|key| two.owner_of(key) == Some(member.as_str()))
                .count();
            assert!((4..=5).contains(&owned), "{member} owns {owned} of 9");
        }
        assert!(
            partitions
                .iter()
                .all(|key| two.owner_of(key) != Some("grpc://b:2"))
        );
    }

    #[test]
    fn endpoints_name_the_owner_then_every_other_member() {
        let partitions = keys(6);
        let fleet = three().assign(&partitions);
        for key in &partitions {
            let locations = fleet.locations_of(key);
            assert_eq!(locations.first().map(String::as_str), fleet.owner_of(key));
            let mut sorted = locations.clone();
            sorted.sort();
            assert_eq!(sorted, fleet.members(), "{key}: each member once");
        }
        assert!(
            Fleet::default()
                .assign(&partitions)
                .locations_of(&partitions[0])
                .is_empty()
        );
    }

    #[test]
    fn a_member_shutting_down_owns_nothing_and_is_named_nowhere() {
        let partitions = keys(6);
        let leaving = three().without_self().assign(&partitions);
        assert_eq!(leaving.members(), ["grpc://b:2", "grpc://c:3"]);
        for key in &partitions {
            assert!(!leaving.is_mine(key), "{key}");
            assert!(!leaving.locations_of(key).contains(&"grpc://a:1".to_owned()));
        }
    }

    #[test]
    fn locations_are_reachable_uris() {
        assert_eq!(
            location_of_address("127.0.0.1:50051", false),
            Ok("grpc://127.0.0.1:50051".into())
        );
        assert_eq!(
            location_of_address("flight.example:443", true),
            Ok("grpc+tls://flight.example:443".into())
        );
        assert_eq!(
            location_of_address("grpc+tcp://[::1]:7/", false),
            Ok("grpc://[::1]:7".into())
        );
        for bad in [
            "0.0.0.0:50051",
            "[::]:1",
            "::1:50051",
            "host",
            "host:0",
            "host:x",
            "http://h:1",
            ":80",
        ] {
            assert!(location_of_address(bad, false).is_err(), "{bad}");
        }
    }
}
