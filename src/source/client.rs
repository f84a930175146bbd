//! Building the SageMaker client: the standard AWS credential chain with the
//! operator's region, profile and endpoint, or fixed credentials for the
//! `--demo` emulator.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
#[cfg(feature = "demo")]
use aws_sdk_sagemaker::{
    Client,
    config::{Credentials, SharedCredentialsProvider},
};

/// The Resource Groups Tagging API's client: the replica reads every
/// job's tags through it, 100 a call.
pub type TaggingClient = aws_sdk_resourcegroupstagging::Client;

/// Where and as whom to call SageMaker.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// Overrides the region of the environment / profile.
    pub region: Option<String>,
    /// A named profile of the shared AWS config files.
    pub profile: Option<String>,
    /// Any SageMaker-compatible endpoint (the emulator, moto).
    pub endpoint_url: Option<String>,
}

/// One attempt may take this long before it counts as a transport failure
/// (and is retried): long enough for a slow page, short enough that a hung
/// connection does not hang a query. It is also what catches a stalled
/// answer: the SDK's stalled-stream protection, which watches the
/// throughput of every request and response body (a few KiB here), is
/// off; it was 3% of the server's instructions in a cold scan (callgrind).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The AWS configuration of `options` on the standard credential chain,
/// with our retries and timeouts: every client (SageMaker, STS, Account)
/// starts from it.
pub async fn sdk_config(options: &AwsOptions) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        // Retries are ours (source::retry), where they can be counted and sized.
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(attempt_timeout());
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// A client for an emulator at `endpoint_url` (`serve --demo`), with fixed
/// credentials: the emulator accepts any signature, and nothing reads the
/// environment.
#[cfg(feature = "demo")]
pub fn emulator_client(endpoint_url: &str, region: &str) -> Client {
    Client::new(&emulator_config(endpoint_url, region))
}

/// A Tagging API client for an emulator at `endpoint_url`, which speaks
/// that API too, with the same fixed credentials as [`emulator_client`].
#[cfg(feature = "demo")]
pub fn emulator_tagging_client(endpoint_url: &str, region: &str) -> TaggingClient {
    TaggingClient::new(&emulator_config(endpoint_url, region))
}

/// What both emulator clients are built from: the emulator's fixed
/// credentials, no retries (the caller's retry loop retries), each attempt
/// bounded.
#[cfg(feature = "demo")]
fn emulator_config(endpoint_url: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(emulator_credentials()))
        .endpoint_url(endpoint_url)
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(attempt_timeout())
        .build()
}

/// Each attempt bounded by [`ATTEMPT_TIMEOUT`].
fn attempt_timeout() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// The emulator's default account's credentials (it checks no signature).
#[cfg(feature = "demo")]
fn emulator_credentials() -> Credentials {
    Credentials::new(
        "emulator",
        "emulator",
        None,
        None,
        "sagemaker-flight-emulator",
    )
}
