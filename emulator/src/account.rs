//! The Account API's `ListRegions`, as `aws-sdk-account` calls it
//! (restJson1): `POST /listRegions` with a JSON body, JSON back.
//!
//! The regions of the account's configured partitions are
//! `ENABLED_BY_DEFAULT`; a few opt-in regions are listed `DISABLED`, as a
//! real account lists the regions it has not opted into.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::parse;
use super::error::ApiError;
use super::paging::{fnv, invalid_token, seal, unseal};
use super::partition::is_account_id;
use super::tenancy::{Caller, Tenancy};
use super::validate::Problems;

/// Opt-in regions that no configured partition enables.
const OPT_IN_REGIONS: [&str; 3] = ["af-south-1", "ap-east-1", "me-south-1"];

/// The values of `RegionOptStatus`.
const OPT_STATUSES: [&str; 5] = [
    "ENABLED",
    "ENABLING",
    "DISABLING",
    "DISABLED",
    "ENABLED_BY_DEFAULT",
];

/// Regions a page holds when `MaxResults` is absent, and at most.
const MAX_PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRegionsRequest {
    /// Another account of the organisation; by default the caller's.
    account_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    region_opt_status_contains: Option<Vec<String>>,
}

/// Answers one ListRegions call of `caller`.
pub(crate) fn answer(tenancy: &Tenancy, caller: &Caller, body: &[u8]) -> Response {
    tenancy.count_call("ListRegions");
    match parse(body).and_then(|req| list_regions(tenancy, caller, req)) {
        Ok(value) => {
            let mut resp = (StatusCode::OK, value.to_string()).into_response();
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => {
            tracing::debug!(operation = "ListRegions", code = e.code, "{}", e.message);
            e.into_rest_json_response()
        }
    }
}

fn list_regions(
    tenancy: &Tenancy,
    caller: &Caller,
    req: ListRegionsRequest,
) -> Result<Value, ApiError> {
    let mut p = Problems::new();
    if let Some(account) = &req.account_id {
        p.pattern("accountId", account, is_account_id(account), "^\\d{12}$");
    }
    if let Some(n) = req.max_results {
        p.range("maxResults", n, 1, MAX_PAGE);
    }
    if let Some(t) = &req.next_token {
        p.length("nextToken", t, 0, 1000);
    }
    let statuses = req.region_opt_status_contains.unwrap_or_default();
    for s in &statuses {
        p.one_of("regionOptStatusContains", s, &OPT_STATUSES);
    }
    p.finish()?;

    let account = req.account_id.as_deref().unwrap_or(&caller.account);
    let enabled = tenancy.enabled_regions(account);
    let mut regions: Vec<(&str, &str)> = enabled
        .iter()
        .map(|r| (r.as_str(), "ENABLED_BY_DEFAULT"))
        .chain(
            OPT_IN_REGIONS
                .into_iter()
                .filter(|r| !enabled.contains(*r))
                .map(|r| (r, "DISABLED")),
        )
        .filter(|(_, status)| statuses.is_empty() || statuses.iter().any(|s| s == status))
        .collect();
    regions.sort_unstable();

    // The token records the position and the query it belongs to.
    let fingerprint = format!(
        "{:016x}",
        fnv(format!("{account}|{}", statuses.join(",")).as_bytes())
    );
    let offset: usize = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => {
            let payload = unseal(token).ok_or_else(invalid_token)?;
            match payload.split('|').collect::<Vec<_>>().as_slice() {
                ["R1", fp, offset] if *fp == fingerprint => {
                    offset.parse().map_err(|_| invalid_token())?
                }
                _ => return Err(invalid_token()),
            }
        }
    };
    let page_size = usize::try_from(req.max_results.unwrap_or(MAX_PAGE)).unwrap_or(1);
    let page: Vec<Value> = regions
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(name, status)| json!({ "RegionName": name, "RegionOptStatus": status }))
        .collect();
    let end = offset.saturating_add(page.len());
    let mut out = json!({ "Regions": page });
    if end < regions.len() {
        out["NextToken"] = Value::String(seal(&format!("R1|{fingerprint}|{end}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmulatorConfig, EmulatorPartition};

    fn names(v: &Value) -> Vec<(String, String)> {
        v["Regions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                        (text("RegionName"), text("RegionOptStatus"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn lists_the_accounts_regions_filtered_and_paged() {
        let tenancy = Tenancy::new(&EmulatorConfig {
            partitions: vec![EmulatorPartition::new("123456789012", "eu-west-1")],
            ..EmulatorConfig::default()
        })
        .expect("valid");
        let caller = tenancy.caller(&axum::http::HeaderMap::new());
        let enabled = ListRegionsRequest {
            region_opt_status_contains: Some(vec!["ENABLED".into(), "ENABLED_BY_DEFAULT".into()]),
            ..Default::default()
        };
        let all = list_regions(&tenancy, &caller, enabled).expect("lists");
        let expected = [
            ("eu-west-1", "ENABLED_BY_DEFAULT"),
            ("us-east-1", "ENABLED_BY_DEFAULT"),
        ];
        assert_eq!(
            names(&all),
            expected.map(|(n, s)| (n.to_string(), s.to_string()))
        );
        // Unfiltered, one a page: every region once, disabled ones included.
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let req = ListRegionsRequest {
                max_results: Some(1),
                next_token: token.take(),
                ..Default::default()
            };
            let page = list_regions(&tenancy, &caller, req).expect("page");
            seen.extend(names(&page));
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen.iter().filter(|(_, s)| s == "DISABLED").count(), 3);
    }

    #[test]
    fn bad_requests_are_validation_errors() {
        let tenancy = Tenancy::new(&EmulatorConfig::default()).expect("valid");
        let caller = tenancy.caller(&axum::http::HeaderMap::new());
        for req in [
            ListRegionsRequest {
                max_results: Some(0),
                ..Default::default()
            },
            ListRegionsRequest {
                region_opt_status_contains: Some(vec!["ON".into()]),
                ..Default::default()
            },
            ListRegionsRequest {
                next_token: Some("garbage".into()),
                ..Default::default()
            },
        ] {
            let e = list_regions(&tenancy, &caller, req).expect_err("invalid");
            assert_eq!(e.code, "ValidationException");
        }
    }
}
