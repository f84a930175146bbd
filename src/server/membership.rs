//! Who is in the fleet now. Every check interval this instance asks each
//! peer's gRPC health service (`grpc.health.v1.Health/Check`, the server
//! as a whole) whether it serves. A peer counts as a member from when it
//! is first named (by `--peer` or discovery), so that members started
//! together do not each collect everything until they have seen each
//! other; it leaves at once when it says NOT_SERVING (it is shutting
//! down), or once it has not said SERVING for the down-after time
//! (killed, unreachable, hung, or never started), and joins again at its
//! next SERVING. The peers are the `--peer` list and, with
//! `--peers-dns NAME:PORT`, the addresses NAME resolves to at each check
//! (a Kubernetes headless Service gives one per ready pod). Each change
//! publishes the fleet with its owners assigned again
//! (`flight/fleet.rs`); every instance configured alike computes the same
//! owners from the same live members.
//!
//! On shutdown ([`Departure::leave`]) this instance takes itself out of
//! its own fleet: its endpoints stop naming it at once, and its health
//! service says NOT_SERVING, which its peers see at their next check.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::flight::fleet::location_of_address;
use crate::flight::{Fleet, FleetPublisher, FleetView};
use crate::source::PartitionKey;

/// How often each peer's health is checked, unless configured.
pub const DEFAULT_PEER_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long a peer may go without saying SERVING before it leaves the
/// fleet, unless configured.
pub const DEFAULT_PEER_DOWN_AFTER: Duration = Duration::from_secs(3);

/// How membership is kept.
#[derive(Clone, Debug)]
pub struct MembershipSettings {
    /// Between two rounds of health checks (also each check's timeout).
    pub check_interval: Duration,
    /// How long a peer may go without saying SERVING before it leaves.
    pub down_after: Duration,
    /// TLS for checking `grpc+tls://` peers; `None`: the system's roots.
    pub peer_tls: Option<ClientTlsConfig>,
}

impl Default for MembershipSettings {
    fn default() -> Self {
        MembershipSettings {
            check_interval: DEFAULT_PEER_CHECK_INTERVAL,
            down_after: DEFAULT_PEER_DOWN_AFTER,
            peer_tls: None,
        }
    }
}

/// Where more peers come from than the fixed `--peer` list.
pub trait PeerDiscovery: Send + Sync + std::fmt::Debug {
    /// The peers' addresses now (this instance's own may be among them).
    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, String>>;
}

/// Peers from DNS: every address `NAME:PORT` resolves to.
#[derive(Debug)]
pub struct DnsPeers {
    name_and_port: String,
}

impl DnsPeers {
    /// Peers at the addresses of `name_and_port` (`NAME:PORT`).
    pub fn new(name_and_port: String) -> DnsPeers {
        DnsPeers { name_and_port }
    }
}

impl PeerDiscovery for DnsPeers {
    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, String>> {
        Box::pin(async move {
            tokio::net::lookup_host(&self.name_and_port)
                .await
                .map(|addresses| addresses.collect())
                .map_err(|error| format!("cannot resolve {}: {error}", self.name_and_port))
        })
    }
}

/// The fleet's membership, kept by health checks; see the module's doc.
#[derive(Debug)]
pub struct Membership {
    own: String,
    /// The `--peer` locations.
    fixed_peers: Vec<String>,
    discovery: Option<Box<dyn PeerDiscovery>>,
    /// The peers discovery last found (kept while it fails).
    discovered: Vec<String>,
    /// The addresses this instance itself is reached at: discovery lists
    /// it among the peers.
    own_addresses: HashSet<SocketAddr>,
    tls: bool,
    settings: MembershipSettings,
    partitions: Vec<PartitionKey>,
    /// When each peer last answered SERVING (at first: when it was first
    /// named); `None`: its last answer was NOT_SERVING (it is going away).
    last_serving: BTreeMap<String, Option<Instant>>,
    clients: BTreeMap<String, HealthClient<Channel>>,
    publisher: Arc<FleetPublisher>,
    leaving: Arc<AtomicBool>,
}

/// Takes this instance out of its fleet (on shutdown).
#[derive(Clone, Debug)]
pub struct Departure {
    publisher: Arc<FleetPublisher>,
    partitions: Vec<PartitionKey>,
    leaving: Arc<AtomicBool>,
}

impl Departure {
    /// From now on this instance owns no partition and its endpoints name
    /// only the other live members.
    pub fn leave(&self) {
        self.leaving.store(true, Ordering::SeqCst);
        self.publisher
            .publish(assigned(self.publisher.current(), true, &self.partitions));
    }
}

impl Membership {
    /// The membership of the instance at `own` (a location) with the
    /// `fixed_peers` (locations), and those `discovery` finds, over
    /// `partitions`; `tls`: discovered peers are `grpc+tls://`. It starts
    /// alone: [`Membership::check_once`] names the peers.
    pub fn new(
        own: String,
        fixed_peers: Vec<String>,
        discovery: Option<Box<dyn PeerDiscovery>>,
        tls: bool,
        settings: MembershipSettings,
        partitions: Vec<PartitionKey>,
    ) -> Membership {
        let alone = Fleet::new(own.clone(), Vec::new()).assign(&partitions);
        crate::obs::metrics::set_fleet_members(alone.members().len());
        Membership {
            own,
            fixed_peers,
            discovery,
            discovered: Vec::new(),
            own_addresses: HashSet::new(),
            tls,
            settings,
            partitions,
            last_serving: BTreeMap::new(),
            clients: BTreeMap::new(),
            publisher: Arc::new(FleetPublisher::new(alone)),
            leaving: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The fleet as this membership keeps it.
    pub fn view(&self) -> FleetView {
        self.publisher.view()
    }

    /// What takes this instance out of the fleet.
    pub fn departure(&self) -> Departure {
        Departure {
            publisher: Arc::clone(&self.publisher),
            partitions: self.partitions.clone(),
            leaving: Arc::clone(&self.leaving),
        }
    }

    /// Checks every peer every check interval, for ever.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.settings.check_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.check_once().await;
        }
    }

    /// One round: finds the peers, checks each, and publishes the fleet if
    /// its live members changed.
    pub async fn check_once(&mut self) {
        let started = Instant::now();
        let candidates = self.candidates().await;
        let timeout = self.settings.check_interval;
        let checks = candidates.iter().map(|peer| {
            let client = self.client(peer);
            async move {
                let answer = match client {
                    Ok(mut client) => check(&mut client, timeout).await,
                    Err(error) => Err(error),
                };
                (peer.clone(), answer)
            }
        });
        let answers = futures::future::join_all(checks).await;
        let now = Instant::now();
        self.last_serving
            .retain(|peer, _| candidates.contains(peer));
        self.clients.retain(|peer, _| candidates.contains(peer));
        for (peer, answer) in answers {
            let last_serving = self
                .last_serving
                .entry(peer.clone())
                .or_insert(Some(started));
            match answer {
                Ok(ServingStatus::Serving) => *last_serving = Some(now),
                Ok(other) => {
                    if last_serving.is_some() {
                        tracing::info!(%peer, status = ?other, "peer not serving");
                    }
                    *last_serving = None;
                }
                Err(error) => tracing::debug!(%peer, %error, "peer health check failed"),
            }
        }
        let live: Vec<String> = self
            .last_serving
            .iter()
            .filter(|(_, at)| {
                at.is_some_and(|at| now.duration_since(at) < self.settings.down_after)
            })
            .map(|(peer, _)| peer.clone())
            .collect();
        let fleet = assigned(
            Fleet::new(self.own.clone(), live),
            self.leaving.load(Ordering::SeqCst),
            &self.partitions,
        );
        let members = fleet.members().to_vec();
        if self.publisher.publish(fleet) {
            tracing::info!(?members, "fleet changed");
            crate::obs::metrics::set_fleet_members(members.len());
        }
    }

    /// Every peer to check now: the fixed ones and the discovered ones,
    /// without this instance.
    async fn candidates(&mut self) -> BTreeSet<String> {
        if let Some(discovery) = &self.discovery {
            if self.own_addresses.is_empty() {
                // The advertised name (a pod's DNS name, say) is one of the
                // addresses discovery lists.
                if let Some(host_port) = self.own.split_once("://").map(|(_, rest)| rest)
                    && let Ok(addresses) = tokio::net::lookup_host(host_port).await
                {
                    self.own_addresses.extend(addresses);
                }
            }
            match discovery.discover().await {
                Ok(addresses) => {
                    self.discovered = addresses
                        .into_iter()
                        .filter(|address| !self.own_addresses.contains(address))
                        .filter_map(|address| {
                            location_of_address(&address.to_string(), self.tls).ok()
                        })
                        .collect();
                }
                // A DNS blip does not empty the fleet: the last list stays.
                Err(error) => tracing::warn!(%error, "cannot discover the fleet's peers"),
            }
        }
        self.fixed_peers
            .iter()
            .chain(&self.discovered)
            .filter(|peer| **peer != self.own)
            .cloned()
            .collect()
    }

    /// The health client of `peer`, made on first use (it reconnects by
    /// itself).
    fn client(&mut self, peer: &str) -> Result<HealthClient<Channel>, String> {
        if let Some(client) = self.clients.get(peer) {
            return Ok(client.clone());
        }
        let timeout = self.settings.check_interval;
        let (uri, tls) = match peer.split_once("://") {
            Some(("grpc+tls", rest)) => (format!("https://{rest}"), true),
            Some((_, rest)) => (format!("http://{rest}"), false),
            None => (format!("http://{peer}"), false),
        };
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|error| format!("{peer}: {error}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if tls {
            let config = self
                .settings
                .peer_tls
                .clone()
                .unwrap_or_else(|| ClientTlsConfig::new().with_native_roots());
            endpoint = endpoint
                .tls_config(config)
                .map_err(|error| format!("{peer}: {error}"))?;
        }
        let client = HealthClient::new(endpoint.connect_lazy());
        self.clients.insert(peer.to_owned(), client.clone());
        Ok(client)
    }
}

/// `fleet` with its owners assigned over `partitions`, without this
/// instance if it is `leaving`.
fn assigned(fleet: Fleet, leaving: bool, partitions: &[PartitionKey]) -> Fleet {
    let fleet = if leaving { fleet.without_self() } else { fleet };
    fleet.assign(partitions)
}

/// What `client`'s server says of itself as a whole, within `timeout`.
async fn check(
    client: &mut HealthClient<Channel>,
    timeout: Duration,
) -> Result<ServingStatus, String> {
    let request = HealthCheckRequest {
        service: String::new(),
    };
    match tokio::time::timeout(timeout, client.check(request)).await {
        Ok(Ok(response)) => {
            Ok(ServingStatus::try_from(response.into_inner().status)
                .unwrap_or(ServingStatus::Unknown))
        }
        Ok(Err(status)) => Err(status.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}
