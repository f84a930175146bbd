//! GetResources (`tagging.rs`), called as the emulator's router calls it.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use super::*;
use crate::EmulatorConfig;
use crate::api::dispatch;
use crate::operation::Operation;
use crate::tenancy::Tenancy;

const NOW: Millis = Millis(1_780_000_000_000);
const ME: &str = "arn:aws:iam::123456789012:user/emulator";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        jobs: 40,
        seed: 11,
        anchor: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)),
        ..EmulatorConfig::default()
    }
}

/// 40 jobs; every third untagged, the others tagged `team` (a, b or c),
/// `env=prod` (even ones) and `n` (their index).
fn fixture() -> EmulatorState {
    let state = EmulatorState::new(&config(), "123456789012", "us-east-1", 40, 11);
    lock(&state.jobs).update_all(|i, job| {
        job.tags.clear();
        if i % 3 != 0 {
            let team = ["a", "b", "c"][(i / 2) % 3];
            job.tags.push(tag("team", team));
            if i % 2 == 0 {
                job.tags.push(tag("env", "prod"));
            }
            job.tags.push(tag("n", &i.to_string()));
        }
    });
    state
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.to_string(),
        value: value.to_string(),
    }
}

fn call(state: &EmulatorState, body: Value) -> Result<Value, ApiError> {
    dispatch(
        state,
        Operation::GetResources,
        body.to_string().as_bytes(),
        NOW,
        ME,
    )
}

/// ARN -> tags of the tagged, visible jobs, as the store holds them.
fn tagged(state: &EmulatorState) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<_> = lock(&state.jobs)
        .values()
        .filter(|j| !j.vanished && !j.tags.is_empty())
        .map(|j| {
            let tags = j
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect();
            (j.record.compilation_job_arn.clone(), tags)
        })
        .collect();
    out.sort();
    out
}

fn listed(answer: &Value) -> Vec<(String, Vec<(String, String)>)> {
    answer["ResourceTagMappingList"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            let tags = m["Tags"]
                .as_array()
                .expect("tags")
                .iter()
                .map(|t| {
                    (
                        t["Key"].as_str().expect("key").to_string(),
                        t["Value"].as_str().expect("value").to_string(),
                    )
                })
                .collect();
            (m["ResourceARN"].as_str().expect("arn").to_string(), tags)
        })
        .collect()
}

/// Every page of `request`, following the tokens.
fn all_pages(state: &EmulatorState, request: Value) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut request = request;
    loop {
        let answer = call(state, request.clone()).expect("a page");
        let token = answer["PaginationToken"]
            .as_str()
            .expect("a token, maybe empty")
            .to_string();
        pages.push(answer);
        if token.is_empty() {
            return pages;
        }
        assert!(pages.len() <= 100, "paging does not end");
        request["PaginationToken"] = Value::String(token);
    }
}

#[test]
fn tagged_jobs_come_with_their_tags_and_untagged_ones_not_at_all() {
    let state = fixture();
    let second = lock(&state.jobs).keys().nth(1).expect("a job").clone();
    assert!(state.vanish(&second));
    let answer = call(&state, json!({})).expect("answers");
    let expected = tagged(&state);
    // 40 jobs, 14 untagged, one vanished: 25, in one default page.
    assert_eq!(expected.len(), 25);
    assert_eq!(listed(&answer), expected);
    assert_eq!(answer["PaginationToken"], "");
    let untagged: Vec<String> = lock(&state.jobs)
        .values()
        .filter(|j| j.tags.is_empty())
        .map(|j| j.record.compilation_job_arn.clone())
        .collect();
    assert_eq!(untagged.len(), 14);
    assert!(listed(&answer).iter().all(|(a, _)| !untagged.contains(a)));
    // The generated tags are listed as they are, in ListTags order.
    let generated = EmulatorState::new(&config(), "123456789012", "us-east-1", 40, 11);
    let answer = call(&generated, json!({"ResourcesPerPage": 100})).expect("answers");
    assert_eq!(listed(&answer), tagged(&generated));
}

#[test]
fn pages_cover_every_job_once_in_arn_order() {
    let state = fixture();
    let expected = tagged(&state);
    for per_page in [1, 2, 5, 7, 26, 27, 100] {
        let pages = all_pages(&state, json!({ "ResourcesPerPage": per_page }));
        let seen: Vec<_> = pages.iter().flat_map(listed).collect();
        assert_eq!(seen, expected, "ResourcesPerPage {per_page}");
        assert_eq!(pages.len(), expected.len().div_ceil(per_page), "{per_page}");
        assert!(pages.iter().all(|p| listed(p).len() <= per_page));
    }
    // Page sizes may change between pages; the default is 50.
    let first = call(&state, json!({"ResourcesPerPage": 10})).expect("a page");
    let token = first["PaginationToken"].clone();
    let rest = all_pages(&state, json!({ "PaginationToken": token }));
    assert_eq!(rest.len(), 1);
    assert_eq!(listed(&first).len() + listed(&rest[0]).len(), 26);
    // TagsPerPage: whole jobs, never more tags than asked (2 or 3 a job).
    let pages = all_pages(&state, json!({ "TagsPerPage": 100 }));
    assert_eq!(pages.iter().flat_map(listed).collect::<Vec<_>>(), expected);
    let other = fixture();
    lock(&other.jobs).update_all(|i, job| {
        job.tags = (0..40)
            .map(|k| tag(&format!("k{k}"), &i.to_string()))
            .collect();
    });
    let pages = all_pages(&other, json!({ "TagsPerPage": 100 }));
    assert!(
        pages
            .iter()
            .all(|p| listed(p).len() == 2 || p["PaginationToken"] == "")
    );
    assert_eq!(pages.iter().flat_map(listed).count(), 40);
}

#[test]
fn tag_filters_and_across_filters_or_across_values() {
    let state = fixture();
    let keys = |answer: &Value| -> Vec<Vec<(String, String)>> {
        listed(answer).into_iter().map(|(_, t)| t).collect()
    };
    let has = |tags: &[(String, String)], k: &str, v: &str| {
        tags.iter().any(|(tk, tv)| tk == k && tv == v)
    };
    let one = call(
        &state,
        json!({"TagFilters": [{"Key": "team", "Values": ["a"]}]}),
    )
    .expect("answers");
    assert!(!keys(&one).is_empty());
    assert!(keys(&one).iter().all(|t| has(t, "team", "a")));
    let either = call(
        &state,
        json!({"TagFilters": [{"Key": "team", "Values": ["a", "b"]}]}),
    )
    .expect("answers");
    let count = |v: &str| {
        tagged(&state)
            .iter()
            .filter(|(_, t)| has(t, "team", v))
            .count()
    };
    assert_eq!(keys(&either).len(), count("a") + count("b"));
    let both = call(
        &state,
        json!({"TagFilters": [
            {"Key": "team", "Values": ["a", "b"]},
            {"Key": "env"}
        ]}),
    )
    .expect("answers");
    let expected: Vec<_> = tagged(&state)
        .into_iter()
        .filter(|(_, t)| {
            (has(t, "team", "a") || has(t, "team", "b")) && t.iter().any(|(k, _)| k == "env")
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(listed(&both), expected);
    // A key without values (or with none listed) matches any value.
    let any = call(
        &state,
        json!({"TagFilters": [{"Key": "team", "Values": []}]}),
    )
    .expect("answers");
    assert_eq!(listed(&any), tagged(&state));
    let none = call(
        &state,
        json!({"TagFilters": [{"Key": "team", "Values": ["z"]}, {"Key": "env"}]}),
    )
    .expect("answers");
    assert_eq!(listed(&none), Vec::new());
    // Paging under filters is complete too.
    let pages = all_pages(
        &state,
        json!({"TagFilters": [{"Key": "team", "Values": ["a", "b"]}, {"Key": "env"}], "ResourcesPerPage": 2}),
    );
    assert_eq!(pages.iter().flat_map(listed).collect::<Vec<_>>(), expected);
}

#[test]
fn resource_type_filters_select_compilation_jobs_only() {
    let state = fixture();
    let all = tagged(&state);
    for types in [
        json!(["sagemaker"]),
        json!(["sagemaker:compilation-job"]),
        json!(["ec2:instance", "sagemaker"]),
        json!([]),
    ] {
        let answer = call(
            &state,
            json!({"ResourceTypeFilters": types, "ResourcesPerPage": 100}),
        )
        .expect("answers");
        assert_eq!(listed(&answer), all, "{types}");
    }
    for types in [
        json!(["ec2"]),
        json!(["sagemaker:training-job", "s3:bucket"]),
    ] {
        let answer = call(&state, json!({ "ResourceTypeFilters": types })).expect("answers");
        assert_eq!(listed(&answer), Vec::new(), "{types}");
        assert_eq!(answer["PaginationToken"], "");
    }
}

#[test]
fn resource_arn_lists_answer_the_tagged_jobs_among_them() {
    let state = fixture();
    let all = tagged(&state);
    let untagged = lock(&state.jobs)
        .values()
        .find(|j| j.tags.is_empty())
        .map(|j| j.record.compilation_job_arn.clone())
        .expect("an untagged job");
    let arns = json!([
        all[3].0,
        untagged,
        "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/nope",
        all[1].0,
        all[3].0,
        "x"
    ]);
    let answer = call(&state, json!({ "ResourceARNList": arns })).expect("answers");
    assert_eq!(listed(&answer), vec![all[3].clone(), all[1].clone()]);
    assert_eq!(answer["PaginationToken"], "");
    for conflict in [
        json!({"ResourceARNList": [all[0].0], "TagFilters": [{"Key": "team"}]}),
        json!({"ResourceARNList": [all[0].0], "ResourceTypeFilters": ["sagemaker"]}),
        json!({"ResourceARNList": [all[0].0], "ResourcesPerPage": 5}),
        json!({"ResourceARNList": []}),
    ] {
        let e = call(&state, conflict.clone()).expect_err("rejected");
        assert_eq!(e.code, "InvalidParameterException", "{conflict}");
    }
}

#[test]
fn compliance_details_say_every_job_complies() {
    let state = fixture();
    let answer = call(&state, json!({"IncludeComplianceDetails": true})).expect("answers");
    let first = &answer["ResourceTagMappingList"][0];
    assert_eq!(first["ComplianceDetails"]["ComplianceStatus"], true);
    let answer = call(
        &state,
        json!({"IncludeComplianceDetails": true, "ExcludeCompliantResources": true}),
    )
    .expect("answers");
    assert_eq!(listed(&answer), Vec::new());
    let e = call(&state, json!({"ExcludeCompliantResources": true})).expect_err("rejected");
    assert_eq!(e.code, "InvalidParameterException");
}

#[test]
fn out_of_range_members_and_bad_tokens_are_rejected() {
    let state = fixture();
    let long = "k".repeat(129);
    let filters: Vec<Value> = (0..51).map(|i| json!({"Key": format!("k{i}")})).collect();
    let values: Vec<String> = (0..21).map(|i| i.to_string()).collect();
    for bad in [
        json!({"ResourcesPerPage": 0}),
        json!({"ResourcesPerPage": 101}),
        json!({"ResourcesPerPage": -5}),
        json!({"TagsPerPage": 99}),
        json!({"TagsPerPage": 501}),
        json!({ "TagFilters": filters }),
        json!({"TagFilters": [{"Key": long}]}),
        json!({"TagFilters": [{"Key": ""}]}),
        json!({"TagFilters": [{"Values": ["a"]}]}),
        json!({"TagFilters": [{"Key": "team", "Values": values}]}),
        json!({"TagFilters": [{"Key": "team", "Values": ["v".repeat(257)]}]}),
        json!({"ResourceTypeFilters": ["x".repeat(257)]}),
        json!({"PaginationToken": "not-a-token"}),
        json!({"PaginationToken": "ab".repeat(1025)}),
        json!({"PaginationToken": seal("L1|0000000000000000|t5|name")}),
    ] {
        let e = call(&state, bad.clone()).expect_err("rejected");
        assert_eq!(e.code, "InvalidParameterException", "{bad}");
        assert_eq!(e.status, 400);
    }
    let e = call(&state, json!({"ResourcesPerPage": 0})).expect_err("rejected");
    assert!(e.message.contains("resourcesPerPage"), "{}", e.message);
    let e = call(&state, json!({"ResourcesPerPage": "ten"})).expect_err("rejected");
    assert_eq!(e.code, "SerializationException");
    // A token of other filters, or too old, is refused.
    let first = call(&state, json!({"ResourcesPerPage": 1})).expect("a page");
    let token = first["PaginationToken"]
        .as_str()
        .expect("token")
        .to_string();
    let e = call(
        &state,
        json!({"PaginationToken": token, "TagFilters": [{"Key": "env"}]}),
    )
    .expect_err("rejected");
    assert_eq!(e.code, "InvalidParameterException");
    let later = Millis(NOW.0 + TOKEN_LIFETIME_MS + 1);
    let body = json!({ "PaginationToken": token }).to_string();
    let e =
        dispatch(&state, Operation::GetResources, body.as_bytes(), later, ME).expect_err("expired");
    assert_eq!(e.code, "PaginationTokenExpiredException");
    let soon = Millis(NOW.0 + TOKEN_LIFETIME_MS);
    assert!(dispatch(&state, Operation::GetResources, body.as_bytes(), soon, ME).is_ok());
}

#[test]
fn a_denied_partition_answers_access_denied() {
    let state = EmulatorState::new(
        &EmulatorConfig {
            deny_tagging_api: true,
            ..config()
        },
        "123456789012",
        "us-east-1",
        5,
        1,
    );
    assert!(state.tagging_api_denied());
    // Denied before the body is read.
    for body in [json!({}), json!({"ResourcesPerPage": 0})] {
        let e = call(&state, body).expect_err("denied");
        assert_eq!((e.status, e.code), (400, "AccessDeniedException"));
        assert_eq!(
            e.message,
            format!(
                "User: {ME} is not authorized to perform: tag:GetResources because no identity-based policy allows the tag:GetResources action"
            )
        );
    }
    state.set_tagging_api_denied(false);
    assert!(call(&state, json!({})).is_ok());
}

fn target(op: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-target", HeaderValue::from_str(op).expect("header"));
    headers
}

async fn answer(tenancy: &Tenancy, headers: &HeaderMap, body: &str) -> (u16, Value) {
    let resp: Response = crate::json_call(tenancy, headers, body.as_bytes()).await;
    let status = resp.status().as_u16();
    let code = resp.headers().get("x-amzn-errortype").cloned();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("a body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    if let Some(code) = code {
        assert_eq!(Some(code.to_str().expect("ascii")), body["__type"].as_str());
    }
    (status, body)
}

#[tokio::test]
async fn calls_are_routed_counted_throttled_and_denied_as_the_tagging_api() {
    let tenancy = Tenancy::new(&config()).expect("valid");
    let get = target("ResourceGroupsTaggingAPI_20170126.GetResources");
    let (status, body) = answer(&tenancy, &get, "").await;
    assert_eq!(status, 200);
    let arns: BTreeSet<&str> = body["ResourceTagMappingList"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["ResourceARN"].as_str())
        .collect();
    let tagged = tenancy
        .default
        .jobs()
        .iter()
        .filter(|j| !j.tags.is_empty())
        .count();
    assert_eq!(arns.len(), tagged);
    // Not a SageMaker operation.
    let (status, body) = answer(&tenancy, &target("SageMaker.GetResources"), "{}").await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
    tenancy.default.set_tagging_api_denied(true);
    let (status, body) = answer(&tenancy, &get, "{}").await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("AccessDeniedException"))
    );
    tenancy.default.set_tagging_api_denied(false);
    tenancy.default.set_faults(1.0, 0.0);
    let (status, body) = answer(&tenancy, &get, "{}").await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("ThrottledException"))
    );
    assert_eq!(body["message"], "Rate exceeded");
    let (_, body) = answer(&tenancy, &target("SageMaker.ListCompilationJobs"), "{}").await;
    assert_eq!(body["__type"], "ThrottlingException");
    tenancy.default.set_faults(0.0, 1.0);
    let (status, body) = answer(&tenancy, &get, "{}").await;
    let code = body["__type"].as_str();
    assert!(
        (status, code) == (500, Some("InternalServiceException"))
            || (status, code) == (503, Some("ServiceUnavailable")),
        "{status} {body}"
    );
    let stats = tenancy.default.stats();
    assert_eq!(stats.calls("GetResources"), 4);
    assert_eq!(stats.operations["GetResources"].throttled, 1);
    assert_eq!(stats.operations["GetResources"].server_errors, 1);
    assert_eq!(stats.calls("ListCompilationJobs"), 1);
    assert_eq!(stats.operations.len(), Operation::ALL.len());
}
