//! Accounts and regions: who signed a request, which (account, region)
//! partition serves it, the roles AssumeRole grants, and the counters of
//! the STS and Account APIs.
//!
//! Signatures are never checked; the emulator only reads who claims to
//! sign. The region is the one of the SigV4 credential scope
//! (`Credential=AKID/20261129/us-west-2/sagemaker/aws4_request`). The
//! account is encoded in the access key id of credentials that AssumeRole
//! issued (`EMU` + 12-digit account + serial); any other key, such as the
//! static `emulator` key of `sagemaker_flight::source::emulator_client`, belongs to the
//! default account.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::config::EmulatorConfig;
use super::limits::lock;
use super::paging::{fnv, seal, unseal};
use super::partition::{EmulatorRole, is_account_id, is_region_name, role_account};
use super::state::EmulatorState;

/// Most partitions kept, configured ones included; calls for more
/// (account, region) pairs are answered as empty partitions not kept.
const MAX_PARTITIONS: usize = 1024;

/// Counters of the STS and Account APIs, across the whole emulator (these
/// APIs are neither regional partitions' nor subject to their faults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityStats {
    /// Calls per operation (`AssumeRole`, `GetCallerIdentity`,
    /// `ListRegions`), whatever the answer.
    pub calls: BTreeMap<String, u64>,
    /// AssumeRole calls that returned credentials, per role ARN.
    pub roles_assumed: BTreeMap<String, u64>,
    /// AssumeRole calls answered `AccessDenied` (unknown role, or a
    /// missing or wrong external id).
    pub access_denied: u64,
}

impl IdentityStats {
    /// Calls of `operation` (0 if never called).
    pub fn calls(&self, operation: &str) -> u64 {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    /// Credentials issued for `role_arn`.
    pub fn assumed(&self, role_arn: &str) -> u64 {
        self.roles_assumed.get(role_arn).copied().unwrap_or(0)
    }
}

/// Access keys that AssumeRole issues start with this, then the 12-digit
/// account, then a serial.
const ISSUED_KEY_PREFIX: &str = "EMU";

/// Who signed a request, as far as the emulator can tell.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) account: String,
    pub(crate) region: String,
    /// Set when the request carries a session token that AssumeRole issued.
    pub(crate) session: Option<RoleSession>,
}

impl Caller {
    /// The caller's principal ARN, as STS and error messages name it.
    pub(crate) fn arn(&self) -> String {
        match &self.session {
            Some(s) => s.assumed_role_arn(),
            None => format!("arn:aws:iam::{}:user/emulator", self.account),
        }
    }
}

/// An AssumeRole session, carried in the session token it issued (so the
/// emulator keeps no session table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RoleSession {
    pub(crate) role_arn: String,
    pub(crate) session_name: String,
}

impl RoleSession {
    pub(crate) fn token(&self) -> String {
        seal(&format!("S1|{}|{}", self.role_arn, self.session_name))
    }

    fn from_token(token: &str) -> Option<Self> {
        let payload = unseal(token)?;
        let mut parts = payload.splitn(3, '|');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("S1"), Some(role_arn), Some(session_name)) => Some(RoleSession {
                role_arn: role_arn.to_string(),
                session_name: session_name.to_string(),
            }),
            _ => None,
        }
    }

    fn role_name(&self) -> &str {
        self.role_arn
            .split_once(":role/")
            .map_or("", |(_, path)| path.rsplit('/').next().unwrap_or(path))
    }

    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
    pub(crate) fn assumed_role_arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            role_account(&self.role_arn).unwrap_or_default(),
            self.role_name(),
            self.session_name
        )
    }

    /// `AROA...:SESSION`: a stable unique id of the role, then the session.
    pub(crate) fn assumed_role_id(&self) -> String {
        format!(
            "AROA{:016X}:{}",
            fnv(self.role_arn.as_bytes()),
            self.session_name
        )
    }
}

/// Every partition, the routing of calls to them, the roles and the
/// identity counters. Shared by the server task and the `Emulator` handle.
#[derive(Debug)]
pub(crate) struct Tenancy {
    default_account: String,
    default_region: String,
    /// The partition of `(default_account, default_region)`.
    pub(crate) default: Arc<EmulatorState>,
    /// Whether partitions besides the default were configured; without,
    /// every SageMaker call goes to `default`, whoever signs it.
    multi_tenant: bool,
    /// Partitions by (account, region): the configured ones, and those
    /// created empty on their first call (multi-tenant only).
    partitions: Mutex<BTreeMap<(String, String), Arc<EmulatorState>>>,
    /// Regions of the configured partitions, per account: what ListRegions
    /// reports as enabled.
    enabled_regions: BTreeMap<String, BTreeSet<String>>,
    /// Knobs (latency, faults, rate limit) for partitions created on a
    /// first call.
    config: EmulatorConfig,
    roles: Vec<EmulatorRole>,
    keys_issued: AtomicU64,
    identity: Mutex<IdentityStats>,
}

impl Tenancy {
    /// Generates every configured partition's jobs; fails on an invalid
    /// partition or role, or a partition configured twice.
    pub(crate) fn new(config: &EmulatorConfig) -> Result<Self, String> {
        let default_key = (config.account_id.clone(), config.region.clone());
        let mut jobs_of: BTreeMap<(String, String), usize> = BTreeMap::new();
        jobs_of.insert(default_key.clone(), config.jobs);
        let mut listed = BTreeSet::new();
        for p in &config.partitions {
            p.check()?;
            let key = (p.account_id.clone(), p.region.clone());
            if !listed.insert(key.clone()) {
                return Err(format!(
                    "partition {}:{} is configured twice",
                    p.account_id, p.region
                ));
            }
            jobs_of.insert(key, p.jobs.unwrap_or(config.jobs));
        }
        for role in &config.roles {
            role.check()?;
        }
        let mut enabled_regions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (account, region) in jobs_of.keys() {
            enabled_regions
                .entry(account.clone())
                .or_default()
                .insert(region.clone());
        }
        let partitions: BTreeMap<_, _> = jobs_of
            .into_iter()
            .map(|((account, region), jobs)| {
                let state = partition_state(config, &account, &region, jobs);
                ((account, region), Arc::new(state))
            })
            .collect();
        let default = partitions
            .get(&default_key)
            .cloned()
            .ok_or("the default partition is missing")?;
        Ok(Tenancy {
            default_account: config.account_id.clone(),
            default_region: config.region.clone(),
            default,
            multi_tenant: !config.partitions.is_empty(),
            partitions: Mutex::new(partitions),
            enabled_regions,
            config: config.clone(),
            roles: config.roles.clone(),
            keys_issued: AtomicU64::new(0),
            identity: Mutex::new(IdentityStats::default()),
        })
    }

    /// Who signed the request with these headers. Unsigned requests, and
    /// scopes that name no plausible region, count as the default account
    /// and region.
    pub(crate) fn caller(&self, headers: &HeaderMap) -> Caller {
        let scope = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(credential_scope);
        let (access_key, region) = scope.unwrap_or_default();
        let account = issued_key_account(access_key).unwrap_or(&self.default_account);
        let region = Some(region)
            .filter(|r| is_region_name(r))
            .unwrap_or(&self.default_region);
        // A session token only counts for the account its key was issued in.
        let session = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .and_then(RoleSession::from_token)
            .filter(|s| role_account(&s.role_arn) == Some(account));
        Caller {
            account: account.to_string(),
            region: region.to_string(),
            session,
        }
    }

    /// The default account and region.
    pub(crate) fn default_key(&self) -> (&str, &str) {
        (&self.default_account, &self.default_region)
    }

    /// The partition that serves a SageMaker call with these headers: the
    /// default one when single-tenant (whoever signs), else the caller's
    /// (account, region), created without jobs on its first call if it was
    /// not configured.
    pub(crate) fn route(&self, headers: &HeaderMap) -> Arc<EmulatorState> {
        if !self.multi_tenant {
            return Arc::clone(&self.default);
        }
        let caller = self.caller(headers);
        let key = (caller.account.clone(), caller.region.clone());
        let mut partitions = lock(&self.partitions);
        if let Some(state) = partitions.get(&key) {
            return Arc::clone(state);
        }
        let state = Arc::new(partition_state(
            &self.config,
            &caller.account,
            &caller.region,
            0,
        ));
        // Accounts and regions come from the caller: past the cap a new one
        // is answered as empty but not kept, so callers cannot grow the
        // emulator's memory without bound.
        if partitions.len() < MAX_PARTITIONS {
            partitions.insert(key, Arc::clone(&state));
        }
        state
    }

    /// A partition that exists: configured, or created by a call.
    pub(crate) fn partition(&self, account: &str, region: &str) -> Option<Arc<EmulatorState>> {
        lock(&self.partitions)
            .get(&(account.to_string(), region.to_string()))
            .cloned()
    }

    /// Every existing partition.
    pub(crate) fn all_partitions(&self) -> Vec<Arc<EmulatorState>> {
        lock(&self.partitions).values().cloned().collect()
    }

    /// The regions where `account` has configured partitions (the default
    /// region for everyone when single-tenant, since it serves everyone).
    pub(crate) fn enabled_regions(&self, account: &str) -> BTreeSet<String> {
        if !self.multi_tenant {
            return BTreeSet::from([self.default_region.clone()]);
        }
        self.enabled_regions
            .get(account)
            .cloned()
            .unwrap_or_default()
    }

    /// The configured role with this ARN.
    pub(crate) fn role(&self, role_arn: &str) -> Option<&EmulatorRole> {
        self.roles.iter().find(|r| r.role_arn == role_arn)
    }

    /// A fresh access key id for credentials acting in `account`.
    pub(crate) fn issue_key(&self, account: &str) -> String {
        let serial = self.keys_issued.fetch_add(1, Ordering::Relaxed) % 100_000;
        format!("{ISSUED_KEY_PREFIX}{account}{serial:05}")
    }

    pub(crate) fn count_call(&self, operation: &str) {
        *lock(&self.identity)
            .calls
            .entry(operation.to_string())
            .or_default() += 1;
    }

    pub(crate) fn count_assumed(&self, role_arn: &str) {
        *lock(&self.identity)
            .roles_assumed
            .entry(role_arn.to_string())
            .or_default() += 1;
    }

    pub(crate) fn count_denied(&self) {
        lock(&self.identity).access_denied += 1;
    }

    pub(crate) fn identity_stats(&self) -> IdentityStats {
        lock(&self.identity).clone()
    }

    /// Zeroes every partition's counters and the identity counters.
    pub(crate) fn reset_all_stats(&self) {
        for state in self.all_partitions() {
            state.reset_stats();
        }
        *lock(&self.identity) = IdentityStats::default();
    }
}

/// A partition's state. The default partition uses the configured seed
/// itself, so its jobs are the same whether or not other partitions exist;
/// the others mix in their account and region, so names differ too.
fn partition_state(
    config: &EmulatorConfig,
    account: &str,
    region: &str,
    jobs: usize,
) -> EmulatorState {
    let seed = if account == config.account_id && region == config.region {
        config.seed
    } else {
        config.seed ^ fnv(format!("{account}|{region}").as_bytes())
    };
    EmulatorState::new(config, account, region, jobs, seed)
}

/// The access key id and region of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...`.
fn credential_scope(authorization: &str) -> Option<(&str, &str)> {
    let credential = authorization
        .split([' ', ','])
        .find_map(|part| part.strip_prefix("Credential="))?;
    let mut fields = credential.split('/');
    let access_key = fields.next()?;
    let _date = fields.next()?;
    let region = fields.next()?;
    Some((access_key, region))
}

/// The account of an access key that AssumeRole issued.
fn issued_key_account(access_key: &str) -> Option<&str> {
    let account = access_key.strip_prefix(ISSUED_KEY_PREFIX)?.get(..12)?;
    is_account_id(account).then_some(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::EmulatorPartition;
    use axum::http::HeaderValue;

    fn signed(access_key: &str, region: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/20261129/{region}/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
        );
        headers.insert(
            "authorization",
            HeaderValue::from_str(&value).expect("header"),
        );
        headers
    }

    fn tenancy() -> Tenancy {
        Tenancy::new(&EmulatorConfig {
            partitions: vec![EmulatorPartition::new("210987654321", "eu-west-1")],
            ..EmulatorConfig::default()
        })
        .expect("valid")
    }

    #[test]
    fn callers_are_identified_by_key_and_scope() {
        let t = tenancy();
        let c = t.caller(&signed("emulator", "us-west-2"));
        assert_eq!(
            (c.account.as_str(), c.region.as_str()),
            ("123456789012", "us-west-2")
        );
        let key = t.issue_key("210987654321");
        assert_eq!(key.len(), 20);
        let c = t.caller(&signed(&key, "eu-west-1"));
        assert_eq!(
            (c.account.as_str(), c.region.as_str()),
            ("210987654321", "eu-west-1")
        );
        // Unsigned, or a scope without a plausible region: the defaults.
        let c = t.caller(&HeaderMap::new());
        assert_eq!(
            (c.account.as_str(), c.region.as_str()),
            ("123456789012", "us-east-1")
        );
        let c = t.caller(&signed("EMU12", "Not/A/Region"));
        assert_eq!(
            (c.account.as_str(), c.region.as_str()),
            ("123456789012", "us-east-1")
        );
    }

    #[test]
    fn session_tokens_round_trip_and_name_the_role() {
        let s = RoleSession {
            role_arn: "arn:aws:iam::210987654321:role/path/reader".into(),
            session_name: "s1".into(),
        };
        assert_eq!(RoleSession::from_token(&s.token()), Some(s.clone()));
        assert_eq!(
            s.assumed_role_arn(),
            "arn:aws:sts::210987654321:assumed-role/reader/s1"
        );
        assert_eq!(RoleSession::from_token("garbage"), None);
    }

    #[test]
    fn partitions_differ_and_the_default_keeps_its_seed() {
        let config = EmulatorConfig {
            jobs: 5,
            seed: 9,
            anchor: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)),
            partitions: vec![EmulatorPartition::new("210987654321", "us-east-1")],
            ..EmulatorConfig::default()
        };
        let single = Tenancy::new(&EmulatorConfig {
            partitions: Vec::new(),
            ..config.clone()
        })
        .expect("valid");
        let multi = Tenancy::new(&config).expect("valid");
        let names = |s: &EmulatorState| -> Vec<String> {
            s.jobs()
                .iter()
                .map(|j| j.describe["CompilationJobArn"].to_string())
                .collect()
        };
        assert_eq!(names(&single.default), names(&multi.default));
        let other = multi
            .partition("210987654321", "us-east-1")
            .expect("configured");
        let other_names = names(&other);
        assert_eq!(other_names.len(), 5);
        assert!(other_names.iter().all(|a| a.contains(":210987654321:")));
        assert!(
            other_names
                .iter()
                .all(|a| !names(&multi.default).contains(a))
        );
        let twice = EmulatorConfig {
            partitions: vec![config.partitions[0].clone(), config.partitions[0].clone()],
            ..config
        };
        assert!(Tenancy::new(&twice).is_err());
    }
}
