//! Which (account, region) partitions the table reads, and a SageMaker
//! client for each: the default credentials' account, and the accounts of
//! an accounts file reached by assuming a role in each (with an external id
//! where the role's trust policy asks for one); in the regions given, or in
//! every region an account has enabled (`all`, from the Account API's
//! ListRegions).
//!
//! The accounts file is TOML:
//!
//! ```toml
//! # Also read the default credentials' own account (default: true).
//! default_account = true
//!
//! [[account]]
//! role_arn = "arn:aws:iam::111122223333:role/sagemaker-flight-reader"
//! external_id = "a-shared-secret"   # optional
//! regions = ["eu-west-1", "us-east-1"]  # optional; default: --region
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::config::{ProvideCredentials, Region, SharedCredentialsProvider};
use serde::Deserialize;

use crate::source::arn::account_of_role_arn;
use crate::source::client::TaggingClient;
use crate::source::{PartitionKey, describe_chain};

/// The region name that stands for every region an account has enabled.
pub const ALL_REGIONS: &str = "all";

/// Why the partitions could not be set up (at start-up).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AccountsError(String);

/// The accounts file.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountsFile {
    /// Read the default credentials' own account too.
    #[serde(default = "default_true")]
    pub default_account: bool,
    /// The accounts reached through a role.
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountRole>,
}

fn default_true() -> bool {
    true
}

/// An account read by assuming a role in it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountRole {
    /// `arn:aws:iam::<account>:role/<name>`: its account is the one read.
    pub role_arn: String,
    /// The external id the role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// Its regions (or `["all"]`); default: the server's `--region`s.
    pub regions: Option<Vec<String>>,
}

impl AccountRole {
    /// The account the role is in (the ARN's fifth field).
    pub fn account_id(&self) -> Option<&str> {
        account_of_role_arn(&self.role_arn)
    }
}

impl AccountsFile {
    /// No file: the default credentials' account alone.
    fn default_with_own_account() -> AccountsFile {
        AccountsFile {
            default_account: true,
            accounts: Vec::new(),
        }
    }

    /// Reads and checks the accounts file at `path`.
    pub fn load(path: &Path) -> Result<AccountsFile, AccountsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AccountsError(format!("cannot read accounts file {}: {e}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|e| AccountsError(format!("accounts file {}: {e}", path.display())))
    }

    /// Parses and checks an accounts file's text.
    pub fn parse(text: &str) -> Result<AccountsFile, String> {
        let file: AccountsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = BTreeSet::new();
        for role in &file.accounts {
            let account = role.account_id().ok_or_else(|| {
                format!(
                    "{:?} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)",
                    role.role_arn
                )
            })?;
            if !seen.insert(account) {
                return Err(format!("account {account} is listed twice"));
            }
            if role.regions.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!("account {account}: `regions` is empty"));
            }
        }
        if !file.default_account && file.accounts.is_empty() {
            return Err("no account to read: default_account = false and no [[account]]".into());
        }
        Ok(file)
    }
}

/// One partition to read: its key and a client for it.
#[derive(Debug)]
pub struct PartitionClient {
    /// Account and region.
    pub key: PartitionKey,
    /// A SageMaker client in that region with that account's credentials.
    pub client: Client,
    /// A Tagging API client of the same region and credentials.
    pub tagging: TaggingClient,
}

/// The partitions of `regions` and `accounts` (if an accounts file is
/// given), each with its client, all made from `base` (the default
/// credentials, endpoint, retries: [`crate::source::sdk_config`]). With one
/// region and no accounts file this makes no call: the one partition is
/// the default credentials' account, which needs no name.
pub async fn partition_clients(
    base: &SdkConfig,
    regions: &[String],
    accounts: Option<&AccountsFile>,
) -> Result<Vec<PartitionClient>, AccountsError> {
    let wants_all = regions.iter().any(|r| r == ALL_REGIONS);
    if accounts.is_none() && regions.len() <= 1 && !wants_all {
        let region = regions.first().cloned();
        // Its key stays unknown: nothing is split or pruned by it, so a
        // single endpoint behaves exactly as before partitions existed.
        return Ok(vec![PartitionClient {
            key: PartitionKey::default(),
            client: client_in(base, region.clone(), None),
            tagging: tagging_client_in(base, region, None),
        }]);
    }
    let default_file = AccountsFile::default_with_own_account();
    let accounts = accounts.unwrap_or(&default_file);
    let mut partitions = Vec::new();
    if accounts.default_account {
        let account_id = caller_account(base).await?;
        let credentials = base.credentials_provider();
        partitions.extend(account_partitions(base, &account_id, credentials, regions).await?);
    }
    for role in &accounts.accounts {
        let account_id = role
            .account_id()
            .ok_or_else(|| AccountsError(format!("{:?} is not a role ARN", role.role_arn)))?;
        let credentials = assume(base, role).await?;
        let wanted = role.regions.as_deref().unwrap_or(regions);
        partitions.extend(account_partitions(base, account_id, Some(credentials), wanted).await?);
    }
    Ok(partitions)
}

/// The partitions of one account: a client in each of its `wanted`
/// regions, with its `credentials` (`None`: those of `base`).
async fn account_partitions(
    base: &SdkConfig,
    account_id: &str,
    credentials: Option<SharedCredentialsProvider>,
    wanted: &[String],
) -> Result<Vec<PartitionClient>, AccountsError> {
    let regions = account_regions(base, credentials.clone(), wanted, account_id).await?;
    Ok(regions
        .into_iter()
        .map(|region| PartitionClient {
            key: PartitionKey::new(account_id, &region),
            client: client_in(base, Some(region.clone()), credentials.clone()),
            tagging: tagging_client_in(base, Some(region), credentials.clone()),
        })
        .collect())
}

/// `base`, in us-east-1 if it names no region: STS and the Account API
/// answer there for every region, and `--region all` alone names none.
fn with_global_region(base: &SdkConfig) -> SdkConfig {
    match base.region() {
        Some(_) => base.clone(),
        None => base.to_builder().region(Region::new("us-east-1")).build(),
    }
}

/// A SageMaker client of `base` in `region`, with `credentials` if given.
fn client_in(
    base: &SdkConfig,
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
) -> Client {
    let mut config = aws_sdk_sagemaker::config::Builder::from(base);
    if let Some(region) = region {
        config = config.region(Region::new(region));
    }
    if let Some(credentials) = credentials {
        config = config.credentials_provider(credentials);
    }
    Client::from_conf(config.build())
}

/// A Tagging API client of `base` in `region`, with `credentials` if given.
fn tagging_client_in(
    base: &SdkConfig,
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
) -> TaggingClient {
    let mut config = aws_sdk_resourcegroupstagging::config::Builder::from(base);
    if let Some(region) = region {
        config = config.region(Region::new(region));
    }
    if let Some(credentials) = credentials {
        config = config.credentials_provider(credentials);
    }
    TaggingClient::from_conf(config.build())
}

/// The account of the default credentials (STS GetCallerIdentity, which
/// needs no permission).
async fn caller_account(base: &SdkConfig) -> Result<String, AccountsError> {
    let identity = aws_sdk_sts::Client::new(&with_global_region(base))
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            AccountsError(format!(
                "cannot learn the default credentials' account (STS GetCallerIdentity): {}",
                describe_chain(&e)
            ))
        })?;
    identity
        .account
        .filter(|account| !account.is_empty())
        .ok_or_else(|| AccountsError("STS GetCallerIdentity named no account".into()))
}

/// Credentials of `role`, checked once now so that a role that cannot be
/// assumed stops the start-up with a clear error rather than every query.
async fn assume(
    base: &SdkConfig,
    role: &AccountRole,
) -> Result<SharedCredentialsProvider, AccountsError> {
    let mut builder = AssumeRoleProvider::builder(&role.role_arn)
        .session_name("sagemaker-flight")
        .configure(&with_global_region(base));
    if let Some(external_id) = &role.external_id {
        builder = builder.external_id(external_id);
    }
    let provider = builder.build().await;
    provider.provide_credentials().await.map_err(|e| {
        AccountsError(format!(
            "cannot assume role {}: {}",
            role.role_arn,
            describe_chain(&e)
        ))
    })?;
    Ok(SharedCredentialsProvider::new(provider))
}

/// The regions of `wanted` for an account: the names given, or with
/// `all`, every region the account has enabled. Nothing wanted: the
/// default region.
async fn account_regions(
    base: &SdkConfig,
    credentials: Option<SharedCredentialsProvider>,
    wanted: &[String],
    account_id: &str,
) -> Result<Vec<String>, AccountsError> {
    if wanted.iter().any(|r| r == ALL_REGIONS) {
        return enabled_regions(base, credentials, account_id).await;
    }
    if wanted.is_empty() {
        return base
            .region()
            .map(|region| vec![region.to_string()])
            .ok_or_else(|| {
                AccountsError(
                    "no region: give --region, or set AWS_REGION or a profile's region".into(),
                )
            });
    }
    Ok(wanted.to_vec())
}

/// Every region `account_id` has enabled (Account API ListRegions).
async fn enabled_regions(
    base: &SdkConfig,
    credentials: Option<SharedCredentialsProvider>,
    account_id: &str,
) -> Result<Vec<String>, AccountsError> {
    let mut config = aws_sdk_account::config::Builder::from(&with_global_region(base));
    if let Some(credentials) = credentials {
        config = config.credentials_provider(credentials);
    }
    let client = aws_sdk_account::Client::from_conf(config.build());
    let mut regions = Vec::new();
    let mut pages = client
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            AccountsError(format!(
                "cannot list the regions account {account_id} has enabled (Account ListRegions): {}",
                describe_chain(&e)
            ))
        })?;
        regions.extend(
            page.regions
                .unwrap_or_default()
                .into_iter()
                .filter(|region| {
                    matches!(
                        region.region_opt_status,
                        Some(RegionOptStatus::Enabled | RegionOptStatus::EnabledByDefault)
                    )
                })
                .filter_map(|region| region.region_name),
        );
    }
    if regions.is_empty() {
        return Err(AccountsError(format!(
            "account {account_id} has no enabled region"
        )));
    }
    regions.sort();
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_file_names_roles_and_regions() {
        let file = AccountsFile::parse(
            r#"
            default_account = false
            [[account]]
            role_arn = "arn:aws:iam::111122223333:role/reader"
            external_id = "x"
            regions = ["eu-west-1"]
            [[account]]
            role_arn = "arn:aws-cn:iam::444455556666:role/path/reader"
            "#,
        )
        .expect("valid");
        assert!(!file.default_account);
        assert_eq!(file.accounts[0].account_id(), Some("111122223333"));
        assert_eq!(file.accounts[0].external_id.as_deref(), Some("x"));
        assert_eq!(file.accounts[1].account_id(), Some("444455556666"));
        assert_eq!(file.accounts[1].regions, None);
        assert!(
            AccountsFile::parse("")
                .expect("empty is valid")
                .default_account
        );
    }

    #[test]
    fn a_bad_accounts_file_says_what_is_wrong() {
        for (text, expected) in [
            (
                "[[account]]\nrole_arn = \"arn:aws:iam::1:role/r\"",
                "not an IAM role ARN",
            ),
            (
                "[[account]]\nrole_arn = \"arn:aws:s3:::bucket\"",
                "not an IAM role ARN",
            ),
            ("[[account]]\nrole = \"x\"", "unknown field"),
            ("default_account = false", "no account to read"),
            (
                "[[account]]\nrole_arn = \"arn:aws:iam::111122223333:role/a\"\n[[account]]\nrole_arn = \"arn:aws:iam::111122223333:role/b\"",
                "listed twice",
            ),
            (
                "[[account]]\nrole_arn = \"arn:aws:iam::111122223333:role/a\"\nregions = []",
                "is empty",
            ),
        ] {
            let error = AccountsFile::parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
