//! Command-line and environment configuration. Every option of `serve` can
//! also be set through the environment variable named in its help.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::limits::Limits;
use crate::source::{AwsOptions, RetryPolicy};

/// Serve AWS SageMaker compilation jobs as an Arrow Flight table.
#[derive(Debug, Parser)]
#[command(name = "sagemaker-flight", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Flight server.
    // Boxed: the server's options outweigh the other commands' by far.
    Serve(Box<ServeArgs>),
    /// Run the SageMaker emulator (an HTTP server speaking SageMaker's JSON protocol).
    Emulator(EmulatorArgs),
    /// Run a SQL query against a Flight SQL server and print the rows.
    Query(crate::query_cli::QueryArgs),
}

/// Options of `sagemaker-flight serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for the gRPC (Flight) listener.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,

    /// Serve an in-process emulator of a few thousand jobs instead of AWS.
    #[arg(long, env = "SAGEMAKER_FLIGHT_DEMO")]
    pub demo: bool,

    /// Jobs in the demo emulator.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_DEMO_JOBS",
        default_value_t = 3000,
        requires = "demo"
    )]
    pub demo_jobs: usize,

    /// Latency of each demo emulator call, in milliseconds.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_DEMO_LATENCY_MS",
        default_value_t = 5,
        requires = "demo"
    )]
    pub demo_latency_ms: u64,

    /// Where SageMaker is.
    #[command(flatten)]
    pub aws: AwsArgs,

    /// Other instances sharing the partitions.
    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Calls of each SageMaker operation (Describe, ListTags, List) in
    /// flight at once, across all queries, per account and region.
    #[arg(long, env = "SAGEMAKER_FLIGHT_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Creation-time windows a full listing is split into and listed in
    /// parallel (1: one NextToken chain).
    #[arg(long, env = "SAGEMAKER_FLIGHT_LIST_WINDOWS", default_value_t = crate::source::DEFAULT_LIST_WINDOWS as u32,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub list_windows: u32,

    /// Seconds a Describe answer of a running job, and any job's tags, are
    /// reused between queries (0: no cache). Finished jobs' Describe answers
    /// are reused while the listing shows them unchanged.
    #[arg(long, env = "SAGEMAKER_FLIGHT_CACHE_TTL", default_value_t = 300)]
    pub cache_ttl: u64,

    /// Seconds the last complete `SELECT *` answers every query from memory,
    /// with no SageMaker call (0: off). Faster, but up to this old.
    #[arg(long, env = "SAGEMAKER_FLIGHT_SNAPSHOT_TTL", default_value_t = 0)]
    pub snapshot_ttl: u64,

    /// Most jobs the cache holds (about 1.5 KiB each), and the most rows
    /// a snapshot holds.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_CACHE_MAX_JOBS",
        default_value_t = 100_000
    )]
    pub cache_max_jobs: usize,

    /// Send no SQL predicate to the API (every query lists every job). For
    /// checking that pushdown never changes an answer.
    #[arg(long, env = "SAGEMAKER_FLIGHT_NO_FILTER_PUSHDOWN")]
    pub no_filter_pushdown: bool,

    /// Attempts per SageMaker call before a throttled or failing call ends the query.
    #[arg(long, env = "SAGEMAKER_FLIGHT_MAX_ATTEMPTS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Who may call: authentication, TLS.
    #[command(flatten)]
    pub access: AccessArgs,

    /// Query limits and shutdown.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Operations: the config file, metrics, logs (`src/settings.rs`).
    #[command(flatten)]
    pub operations: crate::settings::OperationArgs,
}

/// Limits on queries, and the shutdown grace (see `src/limits.rs`).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Seconds a query may run; a longer one ends with DEADLINE_EXCEEDED
    /// and its SageMaker calls stop (0: no limit).
    #[arg(long, env = "SAGEMAKER_FLIGHT_QUERY_TIMEOUT", default_value_t = 300)]
    pub query_timeout: u64,

    /// Queries streaming at once; one more is refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SAGEMAKER_FLIGHT_MAX_CONCURRENT_QUERIES", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_queries: u32,

    /// MiB of memory for the SQL engine's sorts, aggregations and joins,
    /// all queries together; a query needing more fails with
    /// RESOURCE_EXHAUSTED (0: no limit).
    #[arg(long, env = "SAGEMAKER_FLIGHT_MEMORY_LIMIT", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub memory_limit: u64,

    /// Seconds running queries may take to finish after SIGTERM or Ctrl-C;
    /// those still running then are cancelled.
    #[arg(long, env = "SAGEMAKER_FLIGHT_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,
}

impl LimitArgs {
    /// The limits these options ask for.
    pub fn limits(&self) -> Limits {
        let mib = 1024 * 1024;
        Limits {
            query_timeout: (self.query_timeout > 0)
                .then(|| Duration::from_secs(self.query_timeout)),
            max_concurrent_queries: self.max_concurrent_queries as usize,
            memory_limit: (self.memory_limit > 0).then(|| {
                usize::try_from(self.memory_limit.saturating_mul(mib)).unwrap_or(usize::MAX)
            }),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
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
        value_parser = region_name,
        conflicts_with = "demo"
    )]
    pub regions: Vec<String>,

    /// TOML file of more accounts to read, each through a role to assume
    /// (`[[account]]` with `role_arn`, optional `external_id` and
    /// `regions`), and whether to read the default credentials' own
    /// account too (`default_account`, default true). See the README.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ACCOUNTS_FILE", conflicts_with = "demo")]
    pub accounts_file: Option<PathBuf>,

    /// Named profile from the shared AWS config files.
    #[arg(long, env = "AWS_PROFILE", conflicts_with = "demo")]
    pub profile: Option<String>,

    /// A SageMaker-compatible endpoint (the emulator, moto) instead of AWS's.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ENDPOINT_URL", conflicts_with = "demo")]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    /// The source's view of these options.
    pub fn options(&self) -> AwsOptions {
        AwsOptions {
            // The base configuration's region; each partition sets its own.
            region: self
                .regions
                .iter()
                .find(|region| *region != crate::source::accounts::ALL_REGIONS)
                .cloned(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// A fleet of instances sharing the partitions (see `src/flight/fleet.rs`).
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// This instance's address as clients and the other instances reach it
    /// (host:port, or a grpc:// or grpc+tls:// URI). A query split into one
    /// endpoint per partition names it in the endpoints this instance owns.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ADVERTISE")]
    pub advertise: Option<String>,

    /// Another instance configured with the same accounts and regions
    /// (host:port or URI, as its --advertise); repeat it, or separate with
    /// commas. The partitions' endpoints are spread over this instance and
    /// its peers, so clients read each partition from the instance that
    /// owns it.
    #[arg(
        long = "peer",
        env = "SAGEMAKER_FLIGHT_PEERS",
        value_delimiter = ',',
        requires = "advertise"
    )]
    pub peers: Vec<String>,
}

impl FleetArgs {
    /// The fleet these options describe (`tls`: locations are
    /// `grpc+tls://`); no --advertise: this instance alone.
    pub fn fleet(&self, tls: bool) -> Result<crate::flight::Fleet, String> {
        let Some(own) = &self.advertise else {
            return Ok(crate::flight::Fleet::default());
        };
        let location = |address: &String| crate::flight::fleet::location_of_address(address, tls);
        let peers = self.peers.iter().map(location).collect::<Result<_, _>>()?;
        Ok(crate::flight::Fleet::new(location(own)?, peers))
    }
}

/// Authentication and TLS of the Flight listener (see `src/auth.rs`).
/// Passwords and tokens are read from files or the environment, never
/// from the command line.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// User name for Basic authentication: a Flight SQL Handshake with
    /// `authorization: Basic base64(user:password)` gets a bearer token.
    /// The password comes from --auth-basic-password-file or the
    /// environment variable SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD.
    #[arg(long, env = "SAGEMAKER_FLIGHT_AUTH_BASIC_USER")]
    pub auth_basic_user: Option<String>,

    /// File whose first line is the Basic password.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD_FILE",
        requires = "auth_basic_user"
    )]
    pub auth_basic_password_file: Option<PathBuf>,

    /// File of static bearer tokens, one a line (blank lines and `#`
    /// comments ignored). More tokens, comma-separated, may come from the
    /// environment variable SAGEMAKER_FLIGHT_AUTH_TOKENS.
    #[arg(long, env = "SAGEMAKER_FLIGHT_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Seconds a token issued by Handshake stays valid.
    #[arg(long, env = "SAGEMAKER_FLIGHT_AUTH_TOKEN_TTL", default_value_t = 43_200,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub auth_token_ttl: u64,

    /// TLS certificate chain (PEM) of the listener; needs --tls-key.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) of the listener; needs --tls-cert.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM): clients must present a certificate signed
    /// by one (mutual TLS). Needs --tls-cert.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Serve an address other than loopback (127.0.0.0/8, ::1) with no
    /// authentication. Without it the server refuses to start there.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
}

impl ServeArgs {
    /// The retry policy these options ask for.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            ..RetryPolicy::default()
        }
    }
}

/// Options of `sagemaker-flight emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address for the emulator's HTTP listener.
    #[arg(long, default_value = "127.0.0.1:4580")]
    pub listen: SocketAddr,

    /// Jobs to generate.
    #[arg(long, default_value_t = 1000)]
    pub jobs: usize,

    /// Seed of the generator: the same seed gives the same jobs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Latency added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Probability (0..=1) that a call answers ThrottlingException.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub throttle_rate: f64,

    /// Probability (0..=1) that a call answers a 5xx error.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub error_rate: f64,

    /// Probability (0..=1) that a call is slow (10 x latency + 100 ms).
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub slow_rate: f64,

    /// Probability (0..=1) that a call's connection is dropped unanswered.
    #[arg(long, default_value_t = 0.0, value_parser = probability)]
    pub drop_rate: f64,

    /// Calls per second allowed per operation; beyond it, ThrottlingException.
    #[arg(long)]
    pub rate_limit: Option<f64>,

    /// Region in the generated ARNs.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,

    /// Account id in the generated ARNs.
    #[arg(long, default_value = "123456789012")]
    pub account_id: String,

    /// Anchor time (Unix seconds) that generated times go back a year from
    /// (default: now). Pin it for byte-identical jobs across runs.
    #[arg(long)]
    pub anchor: Option<u64>,

    /// Another (account, region) partition with its own jobs, as
    /// ACCOUNT:REGION or ACCOUNT:REGION:JOBS (default: --jobs); repeatable.
    /// With any, the emulator is multi-tenant: each SageMaker call is served
    /// by the partition of its signer (the account of keys from AssumeRole,
    /// else --account-id; the region of the SigV4 credential scope), and
    /// --account-id/--region is one partition among them.
    #[arg(long = "partition", value_name = "ACCOUNT:REGION[:JOBS]")]
    pub partitions: Vec<crate::emulator::EmulatorPartition>,

    /// A role that STS AssumeRole grants, as ROLE_ARN (arn:aws:iam::ACCOUNT:role/NAME)
    /// or ROLE_ARN,EXTERNAL_ID to require that external id; repeatable. The
    /// credentials it issues act in ACCOUNT.
    #[arg(long = "role", value_name = "ROLE_ARN[,EXTERNAL_ID]")]
    pub roles: Vec<crate::emulator::EmulatorRole>,
}

impl EmulatorArgs {
    /// The emulator's configuration.
    pub fn emulator_config(&self) -> crate::emulator::EmulatorConfig {
        crate::emulator::EmulatorConfig {
            jobs: self.jobs,
            seed: self.seed,
            latency: Duration::from_millis(self.latency_ms),
            throttle_rate: self.throttle_rate,
            error_rate: self.error_rate,
            slow_rate: self.slow_rate,
            drop_rate: self.drop_rate,
            rate_limit: self.rate_limit,
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            anchor: self
                .anchor
                .map(|secs| std::time::UNIX_EPOCH + Duration::from_secs(secs)),
            partitions: self.partitions.clone(),
            roles: self.roles.clone(),
        }
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

fn probability(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a probability in 0..=1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn regions_are_checked() {
        let parse =
            |regions: &str| Cli::try_parse_from(["sagemaker-flight", "serve", "--region", regions]);
        assert!(parse("eu-west-1,us-east-1").is_ok());
        assert!(parse("all").is_ok());
        for bad in ["eu-west-1,", "", "EU WEST"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn probabilities_are_checked() {
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(probability("1.5").is_err());
        assert!(probability("x").is_err());
    }

    #[test]
    fn demo_conflicts_with_an_endpoint() {
        let parsed = Cli::try_parse_from([
            "sagemaker-flight",
            "serve",
            "--demo",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ]);
        assert!(parsed.is_err());
    }
}
