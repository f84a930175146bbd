//! `sagemaker-flight serve`: its options, every one also an environment
//! variable, and their conversion into a [`ServeConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sagemaker_flight::auth::TlsConfig;
use sagemaker_flight::flight::limits::{
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_CONCURRENT_QUERIES, DEFAULT_QUERY_TIMEOUT,
    DEFAULT_SHUTDOWN_GRACE,
};
use sagemaker_flight::flight::{Limits, fleet::location_of_address};
use sagemaker_flight::query::engine::DEFAULT_MEMORY_LIMIT;
use sagemaker_flight::replica::feed::DEFAULT_FEED_BUFFER_MIB;
use sagemaker_flight::server::membership::{
    DEFAULT_PEER_CHECK_INTERVAL, DEFAULT_PEER_DOWN_AFTER, MembershipSettings,
};
use sagemaker_flight::server::{
    Backend, DEFAULT_DEMO_JOBS, DEFAULT_DEMO_LATENCY, DEFAULT_LISTEN, FleetSettings,
    ReplicaSettings, ServeConfig, ServeError, SourceSettings,
};
use sagemaker_flight::source::{AwsOptions, DEFAULT_CACHE_MAX_JOBS, DEFAULT_CACHE_TTL};
use sagemaker_flight::table::TableOptions;

use crate::cli::access::{AccessArgs, access_of_args};
use crate::cli::calls::CallArgs;
use crate::cli::operations::OperationArgs;
use crate::cli::store::StoreArgs;

/// Bytes in a MiB: `--memory-limit` is in MiB.
const MIB: usize = 1024 * 1024;

/// Options of `sagemaker-flight serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for the gRPC (Flight) listener.
    #[arg(long, env = "SAGEMAKER_FLIGHT_LISTEN", default_value_t = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Serve an in-process emulator of a few thousand jobs instead of AWS.
    #[arg(long, env = "SAGEMAKER_FLIGHT_DEMO", conflicts_with_all = [
        "regions", "accounts_file", "profile", "endpoint_url", "allow_missing_credentials",
    ])]
    pub demo: bool,

    /// Jobs in the demo emulator.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_DEMO_JOBS",
        default_value_t = DEFAULT_DEMO_JOBS,
        requires = "demo"
    )]
    pub demo_jobs: usize,

    /// Latency of each demo emulator call, in milliseconds.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_DEMO_LATENCY_MS",
        default_value_t = DEFAULT_DEMO_LATENCY.as_millis() as u64,
        requires = "demo"
    )]
    pub demo_latency_ms: u64,

    /// New jobs a minute the demo creates and moves STARTING -> INPROGRESS
    /// -> COMPLETED/FAILED/STOPPED over time (0: a table that stays still).
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_DEMO_ACTIVITY",
        default_value_t = 0.0,
        requires = "demo"
    )]
    pub demo_activity: f64,

    /// Where SageMaker is.
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Other instances sharing the partitions.
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// How SageMaker is called: concurrency, listing windows, attempts.
    #[command(flatten)]
    pub calls: CallArgs,

    /// Seconds a Describe answer of a running job, and any job's tags, are
    /// reused between queries (0: no cache). Finished jobs' Describe answers
    /// are reused while the listing shows them unchanged.
    #[arg(long, env = "SAGEMAKER_FLIGHT_CACHE_TTL",
          default_value_t = DEFAULT_CACHE_TTL.as_secs())]
    pub cache_ttl: u64,

    /// Seconds the last complete `SELECT *` answers every query from memory,
    /// with no SageMaker call (0: off). Faster, but up to this old.
    #[arg(long, env = "SAGEMAKER_FLIGHT_SNAPSHOT_TTL",
          default_value_t = TableOptions::default().snapshot_ttl.as_secs())]
    pub snapshot_ttl: u64,

    /// The replica: where it is kept, how often it is refreshed.
    #[command(flatten)]
    pub replica: StoreArgs,

    /// Read the store only: no collector runs here (`collect`, or other
    /// servers, keep it current).
    #[arg(long, env = "SAGEMAKER_FLIGHT_NO_COLLECT", requires = "store")]
    pub no_collect: bool,

    /// The most changes (MiB) a change feed holds for a client that does
    /// not take them; past it the feed ends with RESOURCE_EXHAUSTED, naming
    /// the commit_version to resume after.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_CHANGES_BUFFER_MIB",
        default_value_t = DEFAULT_FEED_BUFFER_MIB,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_048_576),
        requires = "store"
    )]
    pub changes_buffer_mib: usize,

    /// Most jobs the cache holds (about 1.5 KiB each), and the most rows
    /// a snapshot, or the replica's version kept in memory, holds.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_CACHE_MAX_JOBS",
        default_value_t = DEFAULT_CACHE_MAX_JOBS
    )]
    pub cache_max_jobs: usize,

    /// Send no SQL predicate to the API (every query lists every job). For
    /// checking that pushdown never changes an answer.
    #[arg(long, env = "SAGEMAKER_FLIGHT_NO_FILTER_PUSHDOWN")]
    pub no_filter_pushdown: bool,

    /// Who may call: authentication, TLS.
    #[command(flatten)]
    pub access: AccessArgs,

    /// Query limits and shutdown.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Operations: the config file, metrics, logs (`src/cli/config_file.rs`).
    #[command(flatten)]
    pub operations: OperationArgs,
}

/// Limits on queries, and the shutdown grace (see `src/flight/limits.rs`).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Seconds a query may run; a longer one ends with DEADLINE_EXCEEDED
    /// and its SageMaker calls stop (0: no limit).
    #[arg(long, env = "SAGEMAKER_FLIGHT_QUERY_TIMEOUT",
          default_value_t = DEFAULT_QUERY_TIMEOUT.as_secs())]
    pub query_timeout: u64,

    /// Queries streaming at once; one more is refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SAGEMAKER_FLIGHT_MAX_CONCURRENT_QUERIES",
          default_value_t = DEFAULT_MAX_CONCURRENT_QUERIES as u32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_queries: u32,

    /// MiB of memory for the SQL engine's sorts, aggregations and joins,
    /// all queries together; a query needing more fails with
    /// RESOURCE_EXHAUSTED (0: no limit).
    #[arg(long, env = "SAGEMAKER_FLIGHT_MEMORY_LIMIT",
          default_value_t = (DEFAULT_MEMORY_LIMIT / MIB) as u64,
          value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub memory_limit: u64,

    /// Seconds running queries may take to finish after SIGTERM or Ctrl-C;
    /// those still running then are cancelled (change feeds, which never
    /// finish, end at once).
    #[arg(long, env = "SAGEMAKER_FLIGHT_SHUTDOWN_GRACE",
          default_value_t = DEFAULT_SHUTDOWN_GRACE.as_secs())]
    pub shutdown_grace: u64,

    /// Seconds between two HTTP/2 pings on a quiet connection, so that a
    /// load balancer or proxy does not cut a query computing for minutes
    /// before its first batch (0: no pings).
    #[arg(long, env = "SAGEMAKER_FLIGHT_KEEPALIVE_INTERVAL",
          default_value_t = DEFAULT_KEEPALIVE_INTERVAL.as_secs())]
    pub keepalive_interval: u64,
}

impl LimitArgs {
    /// The limits these options ask for.
    pub fn limits(&self) -> Limits {
        let mib = MIB as u64;
        Limits {
            query_timeout: (self.query_timeout > 0)
                .then(|| Duration::from_secs(self.query_timeout)),
            max_concurrent_queries: self.max_concurrent_queries as usize,
            memory_limit: (self.memory_limit > 0).then(|| {
                usize::try_from(self.memory_limit.saturating_mul(mib)).unwrap_or(usize::MAX)
            }),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            keepalive_interval: (self.keepalive_interval > 0)
                .then(|| Duration::from_secs(self.keepalive_interval)),
        }
    }
}

/// The AWS accounts and regions to read.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// Region to read; repeat it (or separate with commas) to read several,
    /// or give `all` for every region each account has enabled. Each
    /// (account, region) is a partition of the table, with its own rate
    /// limiting. Default: the region of the environment (AWS_REGION) or
    /// profile.
    #[arg(
        long = "region",
        env = "SAGEMAKER_FLIGHT_REGION",
        value_delimiter = ',',
        value_parser = region_name
    )]
    pub regions: Vec<String>,

    /// TOML file of more accounts to read, each through a role to assume
    /// (`[[account]]` with `role_arn`, optional `external_id` and
    /// `regions`), and whether to read the default credentials' own
    /// account too (`default_account`, default true). See the README.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ACCOUNTS_FILE")]
    pub accounts_file: Option<PathBuf>,

    /// Named profile from the shared AWS config files.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,

    /// A SageMaker-compatible endpoint (the emulator, moto) instead of AWS's.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// Start even if the AWS credential chain finds no credentials at
    /// start-up (by default the server then exits with an error); each
    /// query then fails with UNAUTHENTICATED until credentials appear.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ALLOW_MISSING_CREDENTIALS")]
    pub allow_missing_credentials: bool,
}

impl AwsArgs {
    /// The source's view of these options.
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            // The base configuration's region; each partition sets its own.
            region: self
                .regions
                .iter()
                .find(|region| *region != sagemaker_flight::source::accounts::ALL_REGIONS)
                .cloned(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// A fleet of instances sharing the partitions (see `src/flight/fleet.rs`
/// and `src/server/membership.rs`).
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// This instance's address as clients and the other instances reach it
    /// (host:port, or a grpc:// or grpc+tls:// URI). A query split into one
    /// endpoint per partition names it in the endpoints this instance owns.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ADVERTISE")]
    pub advertise: Option<String>,

    /// Another instance configured with the same accounts and regions
    /// (host:port or URI, as its --advertise); repeat it, or separate with
    /// commas. The partitions' endpoints are spread over the live members
    /// (this instance and the peers whose health check answers), so
    /// clients read each partition from the instance that owns it.
    #[arg(
        long = "peer",
        env = "SAGEMAKER_FLIGHT_PEERS",
        value_delimiter = ',',
        requires = "advertise"
    )]
    pub peers: Vec<String>,

    /// A DNS name whose addresses are the other instances, NAME:PORT (a
    /// Kubernetes headless Service: one address per ready pod), resolved
    /// at every check: scaling the fleet edits no flag. This instance's
    /// own address among them is skipped (advertise the address the name
    /// gives this instance, e.g. the pod's IP).
    #[arg(long, env = "SAGEMAKER_FLIGHT_PEERS_DNS", requires = "advertise")]
    pub peers_dns: Option<String>,

    /// Seconds between two health checks of each peer (also a check's
    /// timeout).
    #[arg(long, env = "SAGEMAKER_FLIGHT_PEER_CHECK_INTERVAL",
          default_value_t = DEFAULT_PEER_CHECK_INTERVAL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub peer_check_interval: u64,

    /// Seconds a peer may go without answering SERVING before it leaves
    /// the fleet (its partitions go to the others); one that says
    /// NOT_SERVING (shutting down) leaves at once.
    #[arg(long, env = "SAGEMAKER_FLIGHT_PEER_DOWN_AFTER",
          default_value_t = DEFAULT_PEER_DOWN_AFTER.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub peer_down_after: u64,

    /// PEM CA certificate(s) that signed the peers' TLS certificates, for
    /// their health checks (default: the system's roots). With
    /// --tls-client-ca, this instance presents its own certificate to them.
    #[arg(long, env = "SAGEMAKER_FLIGHT_PEER_TLS_CA", requires = "advertise")]
    pub peer_tls_ca: Option<PathBuf>,
}

impl FleetArgs {
    /// The fleet these options describe (`tls`: this instance's TLS, and
    /// locations are `grpc+tls://`); no --advertise: this instance alone.
    pub fn fleet(&self, tls: Option<&TlsConfig>) -> Result<FleetSettings, String> {
        let membership = MembershipSettings {
            check_interval: Duration::from_secs(self.peer_check_interval),
            down_after: Duration::from_secs(self.peer_down_after),
            peer_tls: None,
        };
        let Some(own) = &self.advertise else {
            return Ok(FleetSettings {
                membership,
                ..FleetSettings::default()
            });
        };
        let location = |address: &String| location_of_address(address, tls.is_some());
        let peers = self.peers.iter().map(location).collect::<Result<_, _>>()?;
        if let Some(name) = &self.peers_dns
            && location_of_address(name, false).is_err()
        {
            return Err(format!("--peers-dns {name:?}: give NAME:PORT"));
        }
        let peer_ca = match &self.peer_tls_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("--peer-tls-ca {}: {e}", path.display()))?,
            ),
            None => None,
        };
        if peer_ca.is_some() && tls.is_none() {
            return Err("--peer-tls-ca is for a fleet with TLS (--tls-cert)".to_owned());
        }
        Ok(FleetSettings {
            advertise: Some(location(own)?),
            peers,
            peers_dns: self.peers_dns.clone(),
            tls: tls.is_some(),
            membership: MembershipSettings {
                peer_tls: tls.map(|tls| tls.peer_tls_config(peer_ca.as_deref())),
                ..membership
            },
        })
    }
}

impl ServeArgs {
    /// The library's configuration for these options, with the secrets
    /// and PEM files they name read (environment variables through `env`).
    pub fn config(&self, env: impl Fn(&str) -> Option<String>) -> Result<ServeConfig, ServeError> {
        let access = access_of_args(&self.access, env)?;
        let fleet = self.fleet.fleet(access.tls.as_ref())?;
        let backend = if self.demo {
            demo_backend(self)?
        } else {
            Backend::Aws {
                options: self.aws.options(),
                regions: self.aws.regions.clone(),
                accounts_file: self.aws.accounts_file.clone(),
                allow_missing_credentials: self.aws.allow_missing_credentials,
            }
        };
        Ok(ServeConfig {
            listen: self.listen,
            backend,
            source: SourceSettings {
                concurrency: self.calls.concurrency as usize,
                retry: self.calls.retry_policy(),
                list_windows: self.calls.list_windows as usize,
                cache_ttl: Duration::from_secs(self.cache_ttl),
                cache_max_jobs: self.cache_max_jobs,
            },
            table: TableOptions {
                filter_pushdown: !self.no_filter_pushdown,
                snapshot_ttl: Duration::from_secs(self.snapshot_ttl),
                snapshot_max_rows: self.cache_max_jobs,
                ..TableOptions::default()
            },
            limits: self.limits.limits(),
            access,
            fleet,
            metrics_listen: self.operations.metrics_listen,
            replica: self
                .replica
                .settings(self.aws.profile.clone())
                .map(|settings| ReplicaSettings {
                    collect: !self.no_collect,
                    changes_buffer_mib: self.changes_buffer_mib,
                    ..settings
                }),
        })
    }
}

/// A region name (or `all`): letters, digits and dashes, not empty.
fn region_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a region name such as eu-west-1 (or all)"
        ))
    }
}

#[cfg(feature = "demo")]
fn demo_backend(args: &ServeArgs) -> Result<Backend, ServeError> {
    Ok(Backend::Demo {
        jobs: args.demo_jobs,
        latency: Duration::from_millis(args.demo_latency_ms),
        activity: args.demo_activity,
    })
}

/// Without the emulator crate there is nothing to serve a demo from.
#[cfg(not(feature = "demo"))]
fn demo_backend(_: &ServeArgs) -> Result<Backend, ServeError> {
    Err("--demo: this build has no emulator (built without the `demo` feature)".into())
}
