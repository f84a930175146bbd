//! The Resource Groups Tagging API's `GetResources`
//! (`X-Amz-Target: ResourceGroupsTaggingAPI_20170126.GetResources`), over
//! the compilation jobs of the caller's partition, as botocore's model
//! `resourcegroupstaggingapi-2017-01-26` defines it.
//!
//! * Only tagged, visible (not vanished) jobs are returned, as
//!   `ResourceTagMappingList: [{"ResourceARN", "Tags": [{"Key",
//!   "Value"}]}]`, tags in ListTags order, jobs in ARN order.
//! * `ResourceTypeFilters`: `sagemaker` and `sagemaker:compilation-job`
//!   match every job, any other type none.
//! * `TagFilters`: a job matches every filter; a filter matches when the
//!   job has its `Key` and, if `Values` is not empty, one of them as value.
//! * `ResourcesPerPage` 1..=100 (default [`DEFAULT_RESOURCES_PER_PAGE`]),
//!   `TagsPerPage` 100..=500 (a page stops before a job whose tags would
//!   pass it, but holds at least one job). `PaginationToken` is opaque,
//!   records the last ARN returned and the filters, and lives 15 minutes;
//!   the last page answers `"PaginationToken": ""`.
//! * `ResourceARNList` (1..=100 ARNs, not with filters or paging members):
//!   those of the ARNs that are tagged jobs, in request order, one page.
//! * `IncludeComplianceDetails`: the emulator has no tag policy, so every
//!   job is compliant (`ComplianceStatus: true`, no keys listed);
//!   `ExcludeCompliantResources` (which needs `IncludeComplianceDetails`)
//!   therefore leaves nothing.
//!
//! Errors: `InvalidParameterException` (a member outside the model's
//! limits, a conflict, a token that does not decode or belongs to other
//! filters), `PaginationTokenExpiredException`, and, when the partition
//! denies the API ([`EmulatorConfig::deny_tagging_api`]),
//! `AccessDeniedException` before the request is even read.
//!
//! [`EmulatorConfig::deny_tagging_api`]: crate::EmulatorConfig::deny_tagging_api

use serde::Deserialize;
use serde_json::{Value, json};

use super::body::parse;
use super::error::ApiError;
use super::limits::lock;
use super::paging::{fnv, seal, unseal};
use super::shapes::{Millis, Tag};
use super::state::EmulatorState;
use super::validate::Problems;

/// Jobs a page holds when `ResourcesPerPage` is absent. The model only says
/// "a minimum of 1 and a maximum value of 100" and names no default, nor
/// do AWS's API reference pages; 50 is the middle of the range, the
/// default the emulator's other listings (ListTags, ListRegions) use.
pub(crate) const DEFAULT_RESOURCES_PER_PAGE: i64 = 50;

/// How long a `PaginationToken` stays valid: "A PaginationToken is valid
/// for a maximum of 15 minutes" (the model's
/// `PaginationTokenExpiredException`).
const TOKEN_LIFETIME_MS: i64 = 15 * 60 * 1000;

/// The resource types a filter may name to select compilation jobs.
const JOB_TYPES: [&str; 2] = ["sagemaker", "sagemaker:compilation-job"];

/// `GetResourcesInput`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetResourcesRequest {
    pagination_token: Option<String>,
    tag_filters: Option<Vec<TagFilter>>,
    resources_per_page: Option<i64>,
    tags_per_page: Option<i64>,
    resource_type_filters: Option<Vec<String>>,
    include_compliance_details: Option<bool>,
    exclude_compliant_resources: Option<bool>,
    #[serde(rename = "ResourceARNList")]
    resource_arn_list: Option<Vec<String>>,
}

/// `TagFilter`: `Key` (1..=128) and optional `Values` (at most 20, each
/// 0..=256).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagFilter {
    key: Option<String>,
    values: Option<Vec<String>>,
}

impl GetResourcesRequest {
    fn token(&self) -> Option<&str> {
        self.pagination_token.as_deref().filter(|t| !t.is_empty())
    }

    /// The tag filters as (key, values); absent and empty are alike.
    fn tag_filters(&self) -> Vec<(&str, &[String])> {
        self.tag_filters
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|f| {
                (
                    f.key.as_deref().unwrap_or_default(),
                    f.values.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn type_filters(&self) -> &[String] {
        self.resource_type_filters.as_deref().unwrap_or_default()
    }

    fn exclude_compliant(&self) -> bool {
        self.exclude_compliant_resources == Some(true)
    }

    /// Identifies the query a token belongs to: the filters, not the page
    /// sizes (they may change between pages).
    fn fingerprint(&self) -> String {
        let text = format!(
            "{:?}|{:?}|{}",
            self.tag_filters(),
            self.type_filters(),
            self.exclude_compliant()
        );
        format!("{:016x}", fnv(text.as_bytes()))
    }

    /// The model's limits and the documented conflicts, each noted in one
    /// `InvalidParameterException`.
    fn check(&self) -> Result<(), ApiError> {
        let mut p = Problems::new();
        if let Some(t) = &self.pagination_token {
            p.length("paginationToken", t, 0, 2048);
        }
        if let Some(n) = self.resources_per_page {
            p.range("resourcesPerPage", n, 1, 100);
        }
        if let Some(n) = self.tags_per_page {
            p.range("tagsPerPage", n, 100, 500);
        }
        let filters = self.tag_filters.as_deref().unwrap_or_default();
        if filters.len() > 50 {
            p.other(format!(
                "Value '[...{} filters]' at 'tagFilters' failed to satisfy constraint: Member must have length less than or equal to 50",
                filters.len()
            ));
        }
        for (i, f) in filters.iter().enumerate() {
            let at = format!("tagFilters.{}.member.key", i + 1);
            if p.require(&at, &f.key) {
                p.length(&at, f.key.as_deref().unwrap_or_default(), 1, 128);
            }
            let values = f.values.as_deref().unwrap_or_default();
            if values.len() > 20 {
                p.other(format!(
                    "Value '[...{} values]' at 'tagFilters.{}.member.values' failed to satisfy constraint: Member must have length less than or equal to 20",
                    values.len(),
                    i + 1
                ));
            }
            for (j, v) in values.iter().enumerate() {
                let at = format!("tagFilters.{}.member.values.{}.member", i + 1, j + 1);
                p.length(&at, v, 0, 256);
            }
        }
        let types = self.type_filters();
        if types.len() > 100 {
            p.other(format!(
                "Value '[...{} types]' at 'resourceTypeFilters' failed to satisfy constraint: Member must have length less than or equal to 100",
                types.len()
            ));
        }
        for (i, t) in types.iter().enumerate() {
            p.length(&format!("resourceTypeFilters.{}.member", i + 1), t, 0, 256);
        }
        if let Some(arns) = &self.resource_arn_list {
            if arns.is_empty() {
                p.other(
                    "Value '[]' at 'resourceARNList' failed to satisfy constraint: Member must have length greater than or equal to 1".to_string(),
                );
            } else if arns.len() > 100 {
                p.other(format!(
                    "Value '[...{} ARNs]' at 'resourceARNList' failed to satisfy constraint: Member must have length less than or equal to 100",
                    arns.len()
                ));
            }
            for (i, a) in arns.iter().enumerate() {
                p.length(&format!("resourceARNList.{}.member", i + 1), a, 1, 1011);
            }
            let conflicts = [
                ("TagFilters", !filters.is_empty()),
                ("ResourceTypeFilters", !types.is_empty()),
                ("ResourcesPerPage", self.resources_per_page.is_some()),
                ("TagsPerPage", self.tags_per_page.is_some()),
                ("PaginationToken", self.token().is_some()),
            ];
            for (member, given) in conflicts {
                if given {
                    p.other(format!(
                        "You can't specify both ResourceARNList and {member} in the same request"
                    ));
                }
            }
        }
        if self.exclude_compliant() && self.include_compliance_details != Some(true) {
            p.other(
                "ExcludeCompliantResources can be true only if IncludeComplianceDetails is true"
                    .to_string(),
            );
        }
        p.finish()
            .map_err(|e| ApiError::invalid_parameter(e.message))
    }
}

/// Answers one GetResources call on `state` (the caller's partition) at
/// `now`; `principal` (the signer's ARN) names the caller when the
/// partition denies the API.
pub(crate) fn get_resources(
    state: &EmulatorState,
    body: &[u8],
    now: Millis,
    principal: &str,
) -> Result<Value, ApiError> {
    // IAM decides before the service reads the request.
    if state.tagging_api_denied() {
        return Err(ApiError::access_denied(format!(
            "User: {principal} is not authorized to perform: tag:GetResources because no identity-based policy allows the tag:GetResources action"
        )));
    }
    let req: GetResourcesRequest = parse(body)?;
    req.check()?;
    let (mappings, next) = match &req.resource_arn_list {
        Some(arns) => (named_jobs(state, arns), None),
        None => page(state, &req, now)?,
    };
    let with_compliance = req.include_compliance_details == Some(true);
    // Without a tag policy every job is compliant: excluding the compliant
    // ones leaves none.
    let list: Vec<Value> = if req.exclude_compliant() {
        Vec::new()
    } else {
        mappings
            .into_iter()
            .map(|(arn, tags)| mapping(arn, &tags, with_compliance))
            .collect()
    };
    Ok(json!({
        "PaginationToken": next.unwrap_or_default(),
        "ResourceTagMappingList": list,
    }))
}

/// One `ResourceTagMapping`.
fn mapping(arn: String, tags: &[Tag], with_compliance: bool) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|t| json!({ "Key": t.key, "Value": t.value }))
        .collect();
    let mut out = json!({ "ResourceARN": arn, "Tags": tags });
    if with_compliance {
        out["ComplianceDetails"] = json!({
            "NoncompliantKeys": [],
            "KeysWithNoncompliantValues": [],
            "MissingTagKeys": [],
            "ComplianceStatus": true,
        });
    }
    out
}

/// The tagged, visible jobs among `arns`, in request order, each once.
fn named_jobs(state: &EmulatorState, arns: &[String]) -> Vec<(String, Vec<Tag>)> {
    let jobs = lock(&state.jobs);
    let mut out: Vec<(String, Vec<Tag>)> = Vec::new();
    for arn in arns {
        let Some((_, name)) = arn.split_once(":compilation-job/") else {
            continue;
        };
        let found = jobs
            .get(name)
            .filter(|j| !j.vanished && !j.tags.is_empty() && j.record.compilation_job_arn == *arn);
        if let Some(job) = found
            && !out.iter().any(|(a, _)| a == arn)
        {
            out.push((arn.clone(), job.tags.clone()));
        }
    }
    out
}

type Page = (Vec<(String, Vec<Tag>)>, Option<String>);

/// The page of matching jobs after the token's ARN, and the token of the
/// next page if there is one.
fn page(state: &EmulatorState, req: &GetResourcesRequest, now: Millis) -> Result<Page, ApiError> {
    let fingerprint = req.fingerprint();
    let after = match req.token() {
        None => None,
        Some(token) => Some(cursor(token, &fingerprint, now)?),
    };
    let max = req
        .resources_per_page
        .unwrap_or(DEFAULT_RESOURCES_PER_PAGE)
        .clamp(1, 100) as usize;
    let tag_budget = req.tags_per_page.map(|n| n.max(1) as usize);
    let types = req.type_filters();
    let types_match = types.is_empty() || types.iter().any(|t| JOB_TYPES.contains(&t.as_str()));
    let filters = req.tag_filters();

    let (page, more): (Vec<(String, Vec<Tag>)>, bool) = {
        let jobs = lock(&state.jobs);
        let mut rows: Vec<(&str, &[Tag])> = if types_match {
            jobs.values()
                .filter(|j| !j.vanished && !j.tags.is_empty())
                .map(|j| (j.record.compilation_job_arn.as_str(), j.tags.as_slice()))
                .filter(|(arn, _)| after.as_deref().is_none_or(|a| *arn > a))
                .filter(|(_, tags)| matches(tags, &filters))
                .collect()
        } else {
            Vec::new()
        };
        // Only the page (and what follows it) is sorted.
        let mut more = rows.len() > max;
        if more {
            rows.select_nth_unstable_by(max, |a, b| a.0.cmp(b.0));
            rows.truncate(max);
        }
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(budget) = tag_budget {
            // Whole jobs only; the first one even if it alone passes.
            let mut used = 0;
            let keep = rows
                .iter()
                .position(|(_, tags)| {
                    used += tags.len();
                    used > budget
                })
                .map_or(rows.len(), |i| i.max(1));
            more |= keep < rows.len();
            rows.truncate(keep);
        }
        let page = rows
            .into_iter()
            .map(|(arn, tags)| (arn.to_string(), tags.to_vec()))
            .collect();
        (page, more)
    };
    let next = match page.last() {
        Some((last, _)) if more => Some(seal(&format!("R1|{fingerprint}|{}|{last}", now.0))),
        _ => None,
    };
    Ok((page, next))
}

/// The ARN a token resumes after, if the token is one of this query's and
/// still valid at `now`.
fn cursor(token: &str, fingerprint: &str, now: Millis) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_parameter("The specified PaginationToken is not valid");
    let payload = unseal(token).ok_or_else(invalid)?;
    let mut parts = payload.splitn(4, '|');
    let (Some("R1"), Some(fp), Some(issued), Some(arn)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if fp != fingerprint {
        return Err(ApiError::invalid_parameter(
            "The specified PaginationToken was issued for a request with different TagFilters, ResourceTypeFilters or ExcludeCompliantResources",
        ));
    }
    let issued: i64 = issued.parse().map_err(|_| invalid())?;
    if now.0.saturating_sub(issued) > TOKEN_LIFETIME_MS {
        return Err(ApiError::pagination_token_expired(
            "The specified PaginationToken has expired: a PaginationToken is valid for a maximum of 15 minutes",
        ));
    }
    Ok(arn.to_string())
}

/// Whether a job with `tags` matches every filter.
fn matches(tags: &[Tag], filters: &[(&str, &[String])]) -> bool {
    filters.iter().all(|(key, values)| {
        tags.iter()
            .any(|t| t.key == *key && (values.is_empty() || values.contains(&t.value)))
    })
}

#[cfg(test)]
#[path = "tagging_tests.rs"]
mod tests;
