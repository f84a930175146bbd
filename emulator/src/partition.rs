//! The partitions and roles an emulator is configured with (their CLI
//! forms parse here), and the account, region and role ARN checks they
//! share with the tenancy.

use std::str::FromStr;

/// One (account, region) whose SageMaker has its own jobs, stats, rate
/// limits and faults. CLI form: `ACCOUNT:REGION` or `ACCOUNT:REGION:JOBS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulatorPartition {
    /// A 12-digit account id.
    pub account_id: String,
    /// A region name such as `eu-west-1`.
    pub region: String,
    /// Jobs generated for this partition; `None` means
    /// [`EmulatorConfig::jobs`].
    pub jobs: Option<usize>,
}

impl EmulatorPartition {
    /// A partition of `account_id` in `region` with the configured number
    /// of jobs.
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> Self {
        EmulatorPartition {
            account_id: account_id.into(),
            region: region.into(),
            jobs: None,
        }
    }

    /// The same partition with `jobs` generated jobs.
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(jobs);
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !is_account_id(&self.account_id) {
            return Err(format!(
                "partition account '{}' is not a 12-digit account id",
                self.account_id
            ));
        }
        if !is_region_name(&self.region) {
            return Err(format!(
                "partition region '{}' is not a region name such as us-west-2",
                self.region
            ));
        }
        Ok(())
    }
}

impl FromStr for EmulatorPartition {
    type Err = String;

    /// `ACCOUNT:REGION` or `ACCOUNT:REGION:JOBS`.
    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let partition = match parts.as_slice() {
            [account, region] => EmulatorPartition::new(*account, *region),
            [account, region, jobs] => {
                let jobs = jobs
                    .parse()
                    .map_err(|e| format!("partition job count '{jobs}': {e}"))?;
                EmulatorPartition::new(*account, *region).with_jobs(jobs)
            }
            _ => {
                return Err(format!(
                    "'{text}' is not ACCOUNT:REGION or ACCOUNT:REGION:JOBS"
                ));
            }
        };
        partition.check()?;
        Ok(partition)
    }
}

/// A role that AssumeRole grants. CLI form: `ROLE_ARN` or
/// `ROLE_ARN,EXTERNAL_ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulatorRole {
    /// `arn:aws:iam::ACCOUNT:role/NAME`; credentials issued for it act in
    /// ACCOUNT.
    pub role_arn: String,
    /// The external id the role's trust policy requires; `None` accepts a
    /// call with or without one.
    pub external_id: Option<String>,
}

impl EmulatorRole {
    /// A role that needs no external id.
    pub fn new(role_arn: impl Into<String>) -> Self {
        EmulatorRole {
            role_arn: role_arn.into(),
            external_id: None,
        }
    }

    /// The same role, requiring `external_id`.
    pub fn with_external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// The account the role belongs to (the ARN's 5th field).
    pub fn account_id(&self) -> Option<&str> {
        role_account(&self.role_arn)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.account_id().is_none() {
            return Err(format!(
                "role '{}' is not an ARN such as arn:aws:iam::123456789012:role/NAME",
                self.role_arn
            ));
        }
        Ok(())
    }
}

impl FromStr for EmulatorRole {
    type Err = String;

    /// `ROLE_ARN` or `ROLE_ARN,EXTERNAL_ID` (ARNs hold `:` but never `,`).
    fn from_str(text: &str) -> Result<Self, String> {
        let role = match text.split_once(',') {
            None => EmulatorRole::new(text),
            Some((_, "")) => return Err(format!("'{text}' has an empty external id")),
            Some((arn, external_id)) => EmulatorRole::new(arn).with_external_id(external_id),
        };
        role.check()?;
        Ok(role)
    }
}

/// The account of `arn:aws:iam::ACCOUNT:role/NAME`.
pub(crate) fn role_account(role_arn: &str) -> Option<&str> {
    let fields: Vec<&str> = role_arn.splitn(6, ':').collect();
    match fields.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && is_account_id(account)
                && resource.len() > "role/".len()
                && resource.starts_with("role/") =>
        {
            Some(account)
        }
        _ => None,
    }
}

pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-west-2`, `eu-central-1`, `us-gov-west-1`: lower-case letters,
/// digits and dashes, starting with a letter.
pub(crate) fn is_region_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_roles_parse_from_the_command_line() {
        let p: EmulatorPartition = "210987654321:eu-west-1:25".parse().expect("valid");
        assert_eq!(
            p,
            EmulatorPartition::new("210987654321", "eu-west-1").with_jobs(25)
        );
        assert!(
            "21098765432:eu-west-1"
                .parse::<EmulatorPartition>()
                .is_err()
        );
        assert!("210987654321:EU".parse::<EmulatorPartition>().is_err());
        assert!("210987654321".parse::<EmulatorPartition>().is_err());
        let r: EmulatorRole = "arn:aws:iam::210987654321:role/reader,ext-1"
            .parse()
            .expect("valid");
        assert_eq!(r.account_id(), Some("210987654321"));
        assert_eq!(r.external_id.as_deref(), Some("ext-1"));
        assert!("arn:aws:iam::1:role/x".parse::<EmulatorRole>().is_err());
        assert!(
            "arn:aws:iam::210987654321:user/x"
                .parse::<EmulatorRole>()
                .is_err()
        );
        assert!(
            "arn:aws:iam::210987654321:role/x,"
                .parse::<EmulatorRole>()
                .is_err()
        );
    }
}
