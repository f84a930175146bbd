//! The fleet's membership (`server/membership.rs`) against peers that are
//! real gRPC health services on loopback: a peer counts from when it is
//! named, leaves at once when it says NOT_SERVING and once it has not
//! answered for the down-after time, and joins again when it answers, and peers found by discovery (a DNS name's addresses, here
//! a resolver whose answer the test changes) grow and shrink the fleet.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::pki::Pki;
use futures::future::BoxFuture;
use sagemaker_flight::flight::fleet::location_of_address;
use sagemaker_flight::server::membership::{
    DnsPeers, Membership, MembershipSettings, PeerDiscovery,
};
use sagemaker_flight::source::PartitionKey;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::{HealthReporter, health_reporter};

/// This instance's own location: never checked, always a member.
const OWN: &str = "grpc://127.0.0.1:1";

/// A gRPC health service on loopback, as a fleet member's.
struct Peer {
    address: SocketAddr,
    reporter: HealthReporter,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Peer {
    async fn serving() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (reporter, service) = health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Peer {
            address,
            reporter,
            stop: Some(stop),
            task,
        }
    }

    fn location(&self) -> String {
        location_of_address(&self.address.to_string(), false).expect("a location")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Checks every second at most, and a peer that has not said SERVING for
/// a millisecond is gone: each `check_once` decides on its own answers.
fn settings() -> MembershipSettings {
    MembershipSettings {
        check_interval: Duration::from_secs(1),
        down_after: Duration::from_millis(1),
        peer_tls: None,
    }
}

fn partitions() -> Vec<PartitionKey> {
    ["us-east-1", "eu-west-1", "us-west-2", "ap-south-1"]
        .iter()
        .map(|region| PartitionKey::new("123456789012", *region))
        .collect()
}

fn sorted(mut members: Vec<String>) -> Vec<String> {
    members.sort();
    members
}

#[tokio::test]
async fn a_peer_joins_when_serving_and_leaves_when_it_says_not_serving_or_stops() {
    let (a, b) = (Peer::serving().await, Peer::serving().await);
    let mut membership = Membership::new(
        OWN.to_owned(),
        vec![a.location(), b.location()],
        None,
        false,
        settings(),
        partitions(),
    );
    let view = membership.view();
    assert_eq!(view.current().members(), [OWN], "alone before a check");
    membership.check_once().await;
    let all = sorted(vec![OWN.to_owned(), a.location(), b.location()]);
    assert_eq!(view.current().members(), all);
    // Four partitions over three members: each owned, at most two each
    // (which members own them depends on the ports).
    let owners: Vec<String> = partitions()
        .iter()
        .filter_map(|key| view.current().owner_of(key).map(str::to_owned))
        .collect();
    assert_eq!(owners.len(), 4);
    assert!(
        owners
            .iter()
            .all(|o| owners.iter().filter(|x| *x == o).count() <= 2),
        "{owners:?}"
    );

    // Shutting down: NOT_SERVING, and it leaves at the next check.
    b.reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    membership.check_once().await;
    assert_eq!(
        view.current().members(),
        sorted(vec![OWN.to_owned(), a.location()])
    );
    for key in partitions() {
        assert!(!view.current().locations_of(&key).contains(&b.location()));
    }
    // Back: it joins again.
    b.reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    membership.check_once().await;
    assert_eq!(view.current().members(), all);

    // Gone without a word (its port closed): it leaves too.
    let a_location = a.location();
    a.stop().await;
    membership.check_once().await;
    assert_eq!(
        view.current().members(),
        sorted(vec![OWN.to_owned(), b.location()])
    );
    assert!(!view.current().members().contains(&a_location));
    b.stop().await;
}

#[tokio::test]
async fn a_peer_that_never_answers_counts_until_the_down_after_time() {
    // A port nothing listens on.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = silent.local_addr().expect("address");
    drop(silent);
    let silent = location_of_address(&address.to_string(), false).expect("location");
    let down_after = Duration::from_millis(300);
    let mut membership = Membership::new(
        OWN.to_owned(),
        vec![silent.clone()],
        None,
        false,
        MembershipSettings {
            down_after,
            ..settings()
        },
        partitions(),
    );
    let view = membership.view();
    let named = tokio::time::Instant::now();
    membership.check_once().await;
    assert_eq!(
        view.current().members(),
        sorted(vec![OWN.to_owned(), silent])
    );
    // Checked again and again (bounded), it leaves, not before down_after.
    while view.current().members().len() > 1 {
        assert!(
            named.elapsed() < Duration::from_secs(10),
            "the silent peer never left"
        );
        membership.check_once().await;
    }
    assert!(named.elapsed() >= down_after);
    assert_eq!(view.current().members(), [OWN]);
}

#[tokio::test]
async fn leaving_takes_this_instance_out_of_its_own_fleet() {
    let a = Peer::serving().await;
    let mut membership = Membership::new(
        OWN.to_owned(),
        vec![a.location()],
        None,
        false,
        settings(),
        partitions(),
    );
    membership.check_once().await;
    let view = membership.view();
    assert!(partitions().iter().any(|key| view.current().is_mine(key)));
    membership.departure().leave();
    assert_eq!(view.current().members(), [a.location()]);
    // And later rounds keep it out.
    membership.check_once().await;
    let fleet = view.current();
    assert_eq!(fleet.members(), [a.location()]);
    for key in partitions() {
        assert!(!fleet.is_mine(&key), "{key}");
        assert_eq!(fleet.locations_of(&key), [a.location()]);
    }
    a.stop().await;
}

/// A resolver whose answer the test sets, standing in for DNS.
#[derive(Debug)]
struct Addresses(Arc<Mutex<Result<Vec<SocketAddr>, String>>>);

impl PeerDiscovery for Addresses {
    fn discover(&self) -> BoxFuture<'_, Result<Vec<SocketAddr>, String>> {
        let answer = self.0.lock().expect("not poisoned").clone();
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn discovered_addresses_grow_and_shrink_the_fleet() {
    let (a, b) = (Peer::serving().await, Peer::serving().await);
    let answer = Arc::new(Mutex::new(Ok(vec![a.address])));
    let set = |addresses: Result<Vec<SocketAddr>, String>| {
        *answer.lock().expect("not poisoned") = addresses;
    };
    // This instance, advertised at an address discovery also lists.
    let own_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let own_address = own_listener.local_addr().expect("address");
    let own = location_of_address(&own_address.to_string(), false).expect("location");
    let mut membership = Membership::new(
        own.clone(),
        Vec::new(),
        Some(Box::new(Addresses(Arc::clone(&answer)))),
        false,
        settings(),
        partitions(),
    );
    let view = membership.view();
    membership.check_once().await;
    assert_eq!(
        view.current().members(),
        sorted(vec![own.clone(), a.location()])
    );

    // Scaled up; its own address among the answers is not a peer.
    set(Ok(vec![a.address, b.address, own_address]));
    membership.check_once().await;
    let three = sorted(vec![own.clone(), a.location(), b.location()]);
    assert_eq!(view.current().members(), three);

    // A failed lookup keeps the last answer.
    set(Err("no such host".into()));
    membership.check_once().await;
    assert_eq!(view.current().members(), three);

    // Scaled down.
    set(Ok(vec![b.address]));
    membership.check_once().await;
    assert_eq!(view.current().members(), sorted(vec![own, b.location()]));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn dns_peers_are_the_addresses_a_name_resolves_to() {
    let peers = DnsPeers::new("localhost:50123".into());
    let addresses = peers.discover().await.expect("localhost resolves");
    assert!(
        addresses
            .iter()
            .all(|address| address.port() == 50123 && address.ip().is_loopback()),
        "{addresses:?}"
    );
    assert!(!addresses.is_empty());
    let error = DnsPeers::new("no-port".into())
        .discover()
        .await
        .expect_err("no port");
    assert!(error.contains("no-port"), "{error}");
}

#[tokio::test]
async fn peers_with_tls_are_checked_against_the_peer_ca() {
    let fleet_ca = Pki::new("fleet CA");
    let ca = fleet_ca.ca_pem.clone();
    // A member's TLS: every member has a certificate of the fleet's CA.
    let tls = fleet_ca.server_tls(None);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (_reporter, service) = health_reporter();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server_tls = tls.server_tls_config();
    let peer = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .tls_config(server_tls)
            .expect("TLS")
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    let location = location_of_address(&address.to_string(), true).expect("location");
    assert!(location.starts_with("grpc+tls://"), "{location}");
    let membership_with = |ca: Option<&[u8]>| {
        Membership::new(
            OWN.to_owned(),
            vec![location.clone()],
            None,
            true,
            MembershipSettings {
                peer_tls: Some(tls.peer_tls_config(ca)),
                ..settings()
            },
            partitions(),
        )
    };
    let mut trusting = membership_with(Some(ca.as_bytes()));
    // Two rounds: past the first, only answers count.
    trusting.check_once().await;
    trusting.check_once().await;
    assert_eq!(
        trusting.view().current().members(),
        sorted(vec![OWN.to_owned(), location.clone()])
    );
    // Another CA (or the system's roots): its certificate is not trusted,
    // its checks fail, and it is out once down-after has passed.
    let stranger = Pki::new("another CA").ca_pem;
    for ca in [Some(stranger.as_bytes()), None] {
        let mut distrusting = membership_with(ca);
        let view = distrusting.view();
        let started = tokio::time::Instant::now();
        distrusting.check_once().await;
        while view.current().members().len() > 1 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "an untrusted peer stayed"
            );
            distrusting.check_once().await;
        }
    }
    peer.abort();
}
