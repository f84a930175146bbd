//! `sagemaker-flight emulator`: the SageMaker emulator as a process of its
//! own, for tests, benchmarks and trying the server against a real port.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use clap::Args;
use sagemaker_emulator::{DEFAULT_ACCOUNT_ID, DEFAULT_REGION, FilterPaging};

/// The emulator's HTTP listener, unless configured.
const DEFAULT_EMULATOR_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4580));
/// Jobs the emulator generates, unless configured.
const DEFAULT_EMULATOR_JOBS: usize = 1000;
/// Seed of the generated jobs, unless configured.
const DEFAULT_EMULATOR_SEED: u64 = 1;

/// Options of `sagemaker-flight emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address for the emulator's HTTP listener.
    #[arg(long, default_value_t = DEFAULT_EMULATOR_LISTEN)]
    pub listen: SocketAddr,

    /// Jobs to generate.
    #[arg(long, default_value_t = DEFAULT_EMULATOR_JOBS)]
    pub jobs: usize,

    /// Seed of the generator: the same seed gives the same jobs.
    #[arg(long, default_value_t = DEFAULT_EMULATOR_SEED)]
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
    #[arg(long, default_value = DEFAULT_REGION)]
    pub region: String,

    /// Account id in the generated ARNs.
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID)]
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
    pub partitions: Vec<sagemaker_emulator::EmulatorPartition>,

    /// A role that STS AssumeRole grants, as ROLE_ARN (arn:aws:iam::ACCOUNT:role/NAME)
    /// or ROLE_ARN,EXTERNAL_ID to require that external id; repeatable. The
    /// credentials it issues act in ACCOUNT.
    #[arg(long = "role", value_name = "ROLE_ARN[,EXTERNAL_ID]")]
    pub roles: Vec<sagemaker_emulator::EmulatorRole>,

    /// When ListCompilationJobs applies its filters: before-cut (pages of
    /// matching jobs) or after-cut (pages of MaxResults jobs, then filtered:
    /// short and empty pages that still carry a NextToken, as AWS may do).
    #[arg(long, default_value_t = FilterPaging::BeforeCut, value_name = "MODEL")]
    pub filter_paging: FilterPaging,

    /// New jobs a minute, created and moved STARTING -> INPROGRESS ->
    /// COMPLETED/FAILED/STOPPED over time (with tag changes and deletions
    /// now and then), deterministic for --seed; 0: the jobs stay as they are.
    #[arg(long, default_value_t = 0.0, value_name = "JOBS_PER_MINUTE")]
    pub activity: f64,

    /// Deny the Resource Groups Tagging API: GetResources answers
    /// AccessDeniedException, as for a principal without tag:GetResources.
    #[arg(long)]
    pub deny_tagging_api: bool,
}

impl EmulatorArgs {
    /// The emulator's configuration.
    pub fn emulator_config(&self) -> sagemaker_emulator::EmulatorConfig {
        sagemaker_emulator::EmulatorConfig {
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
            filter_paging: self.filter_paging,
            activity: Some(self.activity),
            deny_tagging_api: self.deny_tagging_api,
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

/// Runs the emulator on `args.listen` until `shutdown`, printing its
/// address (scripts wait for that line).
pub async fn run(
    args: EmulatorArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), sagemaker_flight::server::ServeError> {
    let emulator = sagemaker_emulator::Emulator::start(args.emulator_config(), args.listen).await?;
    println!("emulator listening on {}", emulator.endpoint_url());
    shutdown.await;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use sagemaker_emulator::{EmulatorPartition, EmulatorRole};

    #[test]
    fn probabilities_are_checked() {
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(probability("1.5").is_err());
        assert!(probability("x").is_err());
    }

    #[test]
    fn the_emulator_command_takes_partitions_and_roles() {
        let cli = Cli::try_parse_from([
            "sagemaker-flight",
            "emulator",
            "--partition",
            "210987654321:us-west-2",
            "--partition",
            "123456789012:eu-west-1:5",
            "--role",
            "arn:aws:iam::210987654321:role/flight-reader,flight-ext-1",
            "--role",
            "arn:aws:iam::123456789012:role/plain",
        ])
        .expect("valid flags");
        let Command::Emulator(args) = cli.command else {
            panic!("the emulator subcommand");
        };
        let config = args.emulator_config();
        assert_eq!(
            config.partitions,
            vec![
                EmulatorPartition::new("210987654321", "us-west-2"),
                EmulatorPartition::new("123456789012", "eu-west-1").with_jobs(5),
            ]
        );
        assert_eq!(
            config.roles,
            vec![
                EmulatorRole::new("arn:aws:iam::210987654321:role/flight-reader")
                    .with_external_id("flight-ext-1"),
                EmulatorRole::new("arn:aws:iam::123456789012:role/plain"),
            ]
        );
        for bad in [
            ["--partition", "210987654321"],
            ["--partition", "2109:us-west-2"],
            ["--role", "flight-reader"],
        ] {
            let parsed =
                Cli::try_parse_from(["sagemaker-flight", "emulator"].into_iter().chain(bad));
            assert!(parsed.is_err(), "{bad:?}");
        }
    }
}
