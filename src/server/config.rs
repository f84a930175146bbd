//! What `serve` is asked to do, in the library's own types: the command
//! line (`src/cli/serve.rs`) builds it, and nothing here parses a flag.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Access;
use crate::flight::Limits;
use crate::server::membership::MembershipSettings;
use crate::source::{AwsOptions, RetryPolicy};
use crate::table::TableOptions;

/// The gRPC listener's address, unless configured: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051));
/// Jobs the `--demo` emulator generates, unless configured.
pub const DEFAULT_DEMO_JOBS: usize = 3000;
/// Latency of each `--demo` emulator call, unless configured.
pub const DEFAULT_DEMO_LATENCY: Duration = Duration::from_millis(5);

/// Where the rows come from.
#[derive(Debug)]
pub enum Backend {
    /// An in-process emulator (`--demo`), on an ephemeral loopback port.
    #[cfg(feature = "demo")]
    Demo {
        /// Jobs it generates.
        jobs: usize,
        /// Latency of each of its calls.
        latency: Duration,
        /// New jobs a minute it creates and moves through their statuses
        /// (0: its jobs stay as generated).
        activity: f64,
    },
    /// AWS, or an endpoint speaking its API.
    Aws {
        /// The base SDK configuration: region, profile, endpoint.
        options: AwsOptions,
        /// Regions to read (`all`: every enabled one); none: the SDK's.
        regions: Vec<String>,
        /// More accounts to read through roles (`--accounts-file`).
        accounts_file: Option<PathBuf>,
        /// Start even when the credential chain finds no credentials
        /// (`--allow-missing-credentials`); queries then fail with
        /// UNAUTHENTICATED.
        allow_missing_credentials: bool,
    },
}

/// How each partition's source calls SageMaker.
#[derive(Clone, Debug)]
pub struct SourceSettings {
    /// Calls of each operation in flight at once, per partition.
    pub concurrency: usize,
    /// Attempts and backoff of each call.
    pub retry: RetryPolicy,
    /// Creation-time windows a full listing is split into.
    pub list_windows: usize,
    /// How long cached answers are reused (zero: no cache).
    pub cache_ttl: Duration,
    /// Most jobs the cache holds.
    pub cache_max_jobs: usize,
}

/// Everything `serve` needs.
#[derive(Debug)]
pub struct ServeConfig {
    /// The gRPC listener's address.
    pub listen: SocketAddr,
    /// Where the rows come from.
    pub backend: Backend,
    /// How each partition calls SageMaker.
    pub source: SourceSettings,
    /// Pushdown and snapshot of the table.
    pub table: TableOptions,
    /// Query limits and the shutdown grace.
    pub limits: Limits,
    /// Credentials and TLS.
    pub access: Access,
    /// The other instances sharing the partitions.
    pub fleet: FleetSettings,
    /// The Prometheus listener's address, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The replica (`--store`): queries read it, collectors keep it
    /// current; `None`: every query calls SageMaker.
    pub replica: Option<ReplicaSettings>,
}

/// Where the replica is kept and how often it is refreshed.
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    /// The store's location (a local directory or `s3://bucket/prefix`).
    pub store: String,
    /// How an S3 store is reached.
    pub access: crate::replica::S3Access,
    /// Whether this process collects (`serve --no-collect`: it only reads
    /// a store that `collect` or other servers keep current).
    pub collect: bool,
    /// When each partition's collector refreshes, reconciles and reads
    /// tags.
    pub schedule: crate::replica::Schedule,
    /// The most changes (MiB) a change feed holds for a slow client.
    pub changes_buffer_mib: usize,
}

/// This instance's place in a fleet of instances sharing the partitions.
#[derive(Clone, Debug, Default)]
pub struct FleetSettings {
    /// This instance's location as clients and peers reach it
    /// (`--advertise`, `grpc://host:port`); `None`: alone.
    pub advertise: Option<String>,
    /// The other instances' locations (`--peer`).
    pub peers: Vec<String>,
    /// A DNS name (`NAME:PORT`) whose addresses are the peers
    /// (`--peers-dns`), resolved at each check.
    pub peers_dns: Option<String>,
    /// Whether the fleet's locations are `grpc+tls://`.
    pub tls: bool,
    /// How the peers' health is checked.
    pub membership: MembershipSettings,
}
