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
    Serve(ServeArgs),
    /// Run the SageMaker emulator (an HTTP server speaking SageMaker's JSON protocol).
    Emulator(EmulatorArgs),
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

    /// Calls of each SageMaker operation (Describe, ListTags, List) in
    /// flight at once, across all queries.
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

/// The AWS account and region to read.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS region (default: from the environment or profile).
    #[arg(long, env = "AWS_REGION", conflicts_with = "demo")]
    pub region: Option<String>,

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
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
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
        }
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
