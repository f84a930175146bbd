//! End-to-end tests of the SageMaker emulator through the real
//! `aws-sdk-sagemaker` client (and a raw HTTP/1.1 client where the exact
//! bytes on the wire matter). Every server binds 127.0.0.1:0; loops are
//! bounded and nothing sleeps to synchronise.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::config::http::HttpResponse;
use aws_sdk_sagemaker::config::retry::RetryConfig;
use aws_sdk_sagemaker::config::{BehaviorVersion, Builder, Credentials, Region};
use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::operation::list_compilation_jobs::builders::ListCompilationJobsFluentBuilder;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    CompilationJobStatus, Framework, InputConfig, ListCompilationJobsSortBy, OutputConfig,
    SortOrder, StoppingCondition, Tag, TargetDevice,
};
use common::http;
use sagemaker_emulator::{
    ActivityEvent, EmulatedJob, Emulator, EmulatorConfig, FilterPaging, Stats,
};
use serde_json::Value;

const ANCHOR_SECS: u64 = 1_700_000_000;
const ALL_STATUSES: [&str; 6] = [
    "INPROGRESS",
    "COMPLETED",
    "FAILED",
    "STARTING",
    "STOPPING",
    "STOPPED",
];

// ---------------------------------------------------------------- helpers

fn anchor() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(ANCHOR_SECS)
}

fn config(jobs: usize, seed: u64) -> EmulatorConfig {
    EmulatorConfig {
        jobs,
        seed,
        anchor: Some(anchor()),
        ..Default::default()
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start(cfg: EmulatorConfig) -> Emulator {
    Emulator::start(cfg, loopback())
        .await
        .expect("emulator starts")
}

fn client(emu: &Emulator) -> Client {
    let conf = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(emu.endpoint_url())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// Milliseconds of an SDK timestamp, rounded (the SDK parses epoch seconds
/// through `f64`, so sub-millisecond noise is expected).
fn ms(t: Option<&DateTime>) -> Option<i64> {
    t.map(|t| t.secs() * 1000 + (f64::from(t.subsec_nanos()) / 1e6).round() as i64)
}

/// Milliseconds of a timestamp member of an emulator JSON body.
fn json_ms(v: &Value) -> Option<i64> {
    v.as_f64().map(|s| (s * 1000.0).round() as i64)
}

fn name(j: &EmulatedJob) -> &str {
    j.describe["CompilationJobName"].as_str().expect("name")
}

fn status(j: &EmulatedJob) -> &str {
    j.describe["CompilationJobStatus"].as_str().expect("status")
}

fn created(j: &EmulatedJob) -> i64 {
    json_ms(&j.describe["CreationTime"]).expect("creation time")
}

fn modified(j: &EmulatedJob) -> i64 {
    json_ms(&j.describe["LastModifiedTime"]).expect("last modified time")
}

/// The error code and HTTP status of a failed SDK call.
fn err_of<E>(e: &SdkError<E, HttpResponse>) -> (String, u16)
where
    E: ProvideErrorMetadata,
{
    let code = e.code().unwrap_or("<none>").to_string();
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    (code, status)
}

/// All job names a listing returns, following NextToken with `page`-sized
/// pages. Panics after 1000 pages (a runaway loop is a bug).
async fn list_names(
    c: &Client,
    page: i32,
    f: impl Fn(ListCompilationJobsFluentBuilder) -> ListCompilationJobsFluentBuilder,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let resp = f(c.list_compilation_jobs().max_results(page))
            .set_next_token(token.clone())
            .send()
            .await
            .expect("list succeeds");
        let summaries = resp.compilation_job_summaries();
        assert!(
            summaries.len() <= page as usize,
            "page larger than MaxResults"
        );
        out.extend(
            summaries
                .iter()
                .map(|s| s.compilation_job_name().unwrap_or_default().to_string()),
        );
        token = resp.next_token().map(str::to_string);
        if token.is_none() {
            return out;
        }
        assert!(!summaries.is_empty(), "empty page with a NextToken");
    }
    panic!("listing did not finish in 1000 pages");
}

fn names_where(jobs: &[EmulatedJob], keep: impl Fn(&EmulatedJob) -> bool) -> BTreeSet<String> {
    jobs.iter()
        .filter(|j| keep(j))
        .map(|j| name(j).to_string())
        .collect()
}

fn as_set(v: Vec<String>) -> BTreeSet<String> {
    let n = v.len();
    let s: BTreeSet<String> = v.into_iter().collect();
    assert_eq!(s.len(), n, "listing returned duplicates");
    s
}

fn dt(ms: i64) -> DateTime {
    DateTime::from_millis(ms)
}

async fn api(addr: SocketAddr, op: &str, body: &str) -> (u16, Vec<(String, String)>, Value) {
    api_of(addr, &format!("SageMaker.{op}"), body).await
}

/// A JSON 1.1 call of `target` (`Service.Operation`).
async fn api_of(addr: SocketAddr, target: &str, body: &str) -> (u16, Vec<(String, String)>, Value) {
    let (status, headers, body) = http(
        addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", target),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        body,
    )
    .await;
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, headers, json)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

// ------------------------------------------------------------ generation

#[tokio::test]
async fn generated_jobs_cover_all_six_statuses_mostly_completed() {
    for n in [6, 7, 20, 500] {
        let emu = start(config(n, 11)).await;
        let jobs = emu.state().jobs();
        assert_eq!(jobs.len(), n);
        for s in ALL_STATUSES {
            assert!(jobs.iter().any(|j| status(j) == s), "{s} missing at n={n}");
        }
        if n == 500 {
            let completed = jobs.iter().filter(|j| status(j) == "COMPLETED").count();
            assert!(completed > n / 2, "only {completed} COMPLETED of {n}");
        }
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn same_seed_and_anchor_give_identical_jobs_and_other_seeds_differ() {
    let a = start(config(150, 5)).await;
    let b = start(config(150, 5)).await;
    let c = start(config(150, 6)).await;
    let (ja, jb, jc) = (a.state().jobs(), b.state().jobs(), c.state().jobs());
    assert_eq!(ja.len(), 150);
    for (x, y) in ja.iter().zip(&jb) {
        assert_eq!(x.describe, y.describe);
        assert_eq!(x.tags, y.tags);
    }
    let names_a: Vec<_> = ja.iter().map(name).collect();
    let names_c: Vec<_> = jc.iter().map(name).collect();
    assert_ne!(names_a, names_c, "a different seed must change the data");
    for e in [a, b, c] {
        e.shutdown().await;
    }
}

#[tokio::test]
async fn generated_jobs_are_internally_consistent() {
    let emu = start(config(400, 3)).await;
    let jobs = emu.state().jobs();
    let anchor_ms = ANCHOR_SECS as i64 * 1000;
    let mut names = HashSet::new();
    for j in &jobs {
        let d = &j.describe;
        let n = name(j);
        assert!(names.insert(n.to_string()), "duplicate name {n}");
        assert!(n.len() <= 63 && !n.starts_with('-') && !n.ends_with('-'));
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(
            d["CompilationJobArn"],
            format!("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{n}")
        );
        let (c, m) = (created(j), modified(j));
        assert!(m >= c, "{n}: LastModifiedTime before CreationTime");
        assert!(m <= anchor_ms && c >= anchor_ms - 366 * 86_400_000, "{n}");
        let start = json_ms(&d["CompilationStartTime"]);
        let end = json_ms(&d["CompilationEndTime"]);
        match status(j) {
            "STARTING" => assert!(start.is_none() && end.is_none(), "{n}"),
            "INPROGRESS" | "STOPPING" => assert!(start.is_some() && end.is_none(), "{n}"),
            _ => {
                let (s, e) = (start.expect("start"), end.expect("end"));
                assert!(c <= s && s <= e && e <= m, "{n}: times out of order");
            }
        }
        let failed = status(j) == "FAILED";
        let reason = d["FailureReason"]
            .as_str()
            .expect("FailureReason always sent");
        assert_eq!(!reason.is_empty(), failed, "{n}: FailureReason");
        assert_eq!(
            d.get("ModelDigests").is_some(),
            status(j) == "COMPLETED",
            "{n}"
        );
        assert!(
            d["ModelArtifacts"]["S3ModelArtifacts"]
                .as_str()
                .is_some_and(|s| s.starts_with("s3://"))
        );
        assert!(d["RoleArn"].as_str().is_some_and(|r| r.contains(":iam::")));
        assert!(d["StoppingCondition"]["MaxRuntimeInSeconds"].is_i64());
        assert!(d["InputConfig"]["S3Uri"].is_string() && d["InputConfig"]["Framework"].is_string());
        let out = &d["OutputConfig"];
        assert!(out["S3OutputLocation"].is_string());
        assert_ne!(
            out.get("TargetDevice").is_some(),
            out.get("TargetPlatform").is_some(),
            "{n}: exactly one target"
        );
        let cloud = out["TargetDevice"]
            .as_str()
            .is_some_and(|t| t.starts_with("ml_"));
        assert_eq!(d.get("InferenceImage").is_some(), cloud, "{n}");
    }
    // Optional members appear on some jobs but not all.
    for member in [
        "VpcConfig",
        "DerivedInformation",
        "ModelPackageVersionArn",
        "InferenceImage",
    ] {
        let k = jobs
            .iter()
            .filter(|j| j.describe.get(member).is_some())
            .count();
        assert!(k > 0 && k < jobs.len(), "{member} on {k} jobs");
    }
    let reasons: HashSet<_> = jobs
        .iter()
        .filter(|j| status(j) == "FAILED")
        .map(|j| {
            j.describe["FailureReason"]
                .as_str()
                .unwrap_or_default()
                .split(':')
                .nth(1)
                .map(str::to_string)
        })
        .collect();
    assert!(
        reasons.len() >= 3,
        "failure reasons lack variety: {reasons:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn some_jobs_have_more_than_fifty_tags() {
    for (n, want) in [(10, 1), (100, 2)] {
        let emu = start(config(n, 9)).await;
        let jobs = emu.state().jobs();
        let big: Vec<_> = jobs.iter().filter(|j| j.tags.len() > 50).collect();
        assert!(big.len() >= want, "n={n}: {} big-tag jobs", big.len());
        assert!(big.iter().all(|j| j.tags.len() <= 80));
        assert!(jobs.iter().all(|j| {
            let keys: HashSet<_> = j.tags.iter().map(|(k, _)| k).collect();
            keys.len() == j.tags.len()
        }));
        emu.shutdown().await;
    }
}

// ------------------------------------------------------------ listing

#[tokio::test]
async fn list_default_page_is_ten_jobs_by_creation_time_ascending() {
    let emu = start(config(40, 1)).await;
    let c = client(&emu);
    let resp = c.list_compilation_jobs().send().await.expect("list");
    let got: Vec<_> = resp
        .compilation_job_summaries()
        .iter()
        .map(|s| s.compilation_job_name().unwrap_or_default().to_string())
        .collect();
    let mut jobs = emu.state().jobs();
    jobs.sort_by(|a, b| created(a).cmp(&created(b)).then(name(a).cmp(name(b))));
    let want: Vec<_> = jobs.iter().take(10).map(|j| name(j).to_string()).collect();
    assert_eq!(got, want);
    assert!(resp.next_token().is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn list_summaries_carry_the_job_fields() {
    let emu = start(config(60, 2)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let resp = c
        .list_compilation_jobs()
        .max_results(100)
        .send()
        .await
        .expect("list");
    assert_eq!(resp.compilation_job_summaries().len(), 60);
    for s in resp.compilation_job_summaries() {
        let j = jobs
            .iter()
            .find(|j| Some(name(j)) == s.compilation_job_name())
            .expect("listed job exists");
        let d = &j.describe;
        assert_eq!(s.compilation_job_arn(), d["CompilationJobArn"].as_str());
        assert_eq!(
            s.compilation_job_status().map(|x| x.as_str()),
            d["CompilationJobStatus"].as_str()
        );
        assert_eq!(ms(s.creation_time()), json_ms(&d["CreationTime"]));
        assert_eq!(ms(s.last_modified_time()), json_ms(&d["LastModifiedTime"]));
        assert_eq!(
            ms(s.compilation_start_time()),
            json_ms(&d["CompilationStartTime"])
        );
        assert_eq!(
            ms(s.compilation_end_time()),
            json_ms(&d["CompilationEndTime"])
        );
        let out = &d["OutputConfig"];
        assert_eq!(
            s.compilation_target_device().map(|x| x.as_str()),
            out["TargetDevice"].as_str()
        );
        let p = &out["TargetPlatform"];
        assert_eq!(
            s.compilation_target_platform_os().map(|x| x.as_str()),
            p["Os"].as_str()
        );
        assert_eq!(
            s.compilation_target_platform_arch().map(|x| x.as_str()),
            p["Arch"].as_str()
        );
        assert_eq!(
            s.compilation_target_platform_accelerator()
                .map(|x| x.as_str()),
            p["Accelerator"].as_str()
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn list_status_equals_filter_matches_state() {
    let emu = start(config(120, 4)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    for s in ALL_STATUSES {
        let got = list_names(&c, 100, |b| b.status_equals(CompilationJobStatus::from(s))).await;
        let want = names_where(&jobs, |j| status(j) == s);
        assert!(!want.is_empty());
        assert_eq!(as_set(got), want, "StatusEquals={s}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn list_creation_time_filters_are_strict_and_match_state() {
    let emu = start(config(120, 4)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let mut times: Vec<i64> = jobs.iter().map(created).collect();
    times.sort_unstable();
    let pivot = times[times.len() / 2];
    let pivot_job = jobs.iter().find(|j| created(j) == pivot).expect("pivot");
    let after = list_names(&c, 50, |b| b.creation_time_after(dt(pivot))).await;
    let before = list_names(&c, 50, |b| b.creation_time_before(dt(pivot))).await;
    let (after, before) = (as_set(after), as_set(before));
    assert_eq!(after, names_where(&jobs, |j| created(j) > pivot));
    assert_eq!(before, names_where(&jobs, |j| created(j) < pivot));
    assert!(!after.contains(name(pivot_job)) && !before.contains(name(pivot_job)));
    // A window of exactly one millisecond around the pivot holds the pivot.
    let window = list_names(&c, 50, |b| {
        b.creation_time_after(dt(pivot - 1))
            .creation_time_before(dt(pivot + 1))
    })
    .await;
    assert_eq!(as_set(window), names_where(&jobs, |j| created(j) == pivot));
    emu.shutdown().await;
}

#[tokio::test]
async fn list_last_modified_time_filters_are_strict_and_match_state() {
    let emu = start(config(120, 8)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let mut times: Vec<i64> = jobs.iter().map(modified).collect();
    times.sort_unstable();
    let (lo, hi) = (times[30], times[90]);
    let after = list_names(&c, 50, |b| b.last_modified_time_after(dt(lo))).await;
    assert_eq!(as_set(after), names_where(&jobs, |j| modified(j) > lo));
    let before = list_names(&c, 50, |b| b.last_modified_time_before(dt(hi))).await;
    assert_eq!(as_set(before), names_where(&jobs, |j| modified(j) < hi));
    let both = list_names(&c, 50, |b| {
        b.last_modified_time_after(dt(lo))
            .last_modified_time_before(dt(hi))
    })
    .await;
    let want = names_where(&jobs, |j| modified(j) > lo && modified(j) < hi);
    assert_eq!(want.len(), 59, "exclusive on both ends");
    assert_eq!(as_set(both), want);
    emu.shutdown().await;
}

#[tokio::test]
async fn list_name_contains_is_a_case_insensitive_substring() {
    let emu = start(config(200, 12)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    for needle in ["resnet", "RESNET", "Ml-C5", "neo-", "v3", "zz-no-such-job"] {
        let got = list_names(&c, 100, |b| b.name_contains(needle)).await;
        let lower = needle.to_lowercase();
        let want = names_where(&jobs, |j| name(j).to_lowercase().contains(&lower));
        if needle != "zz-no-such-job" {
            assert!(!want.is_empty(), "{needle} should match something");
        }
        assert_eq!(as_set(got), want, "NameContains={needle}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn list_filters_combine_with_and() {
    let emu = start(config(300, 13)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let mut times: Vec<i64> = jobs.iter().map(created).collect();
    times.sort_unstable();
    let (lo, hi) = (times[20], times[280]);
    let got = list_names(&c, 7, |b| {
        b.status_equals(CompilationJobStatus::Completed)
            .name_contains("ML")
            .creation_time_after(dt(lo))
            .creation_time_before(dt(hi))
            .last_modified_time_after(dt(lo))
            .sort_by(ListCompilationJobsSortBy::Name)
    })
    .await;
    let want = names_where(&jobs, |j| {
        status(j) == "COMPLETED"
            && name(j).to_lowercase().contains("ml")
            && created(j) > lo
            && created(j) < hi
            && modified(j) > lo
    });
    assert!(!want.is_empty());
    assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "sorted by name");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_sorts_by_name_creation_time_and_status_in_both_orders() {
    let emu = start(config(150, 14)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    for by in ["Name", "CreationTime", "Status"] {
        for order in ["Ascending", "Descending"] {
            let got = list_names(&c, 100, |b| {
                b.sort_by(ListCompilationJobsSortBy::from(by))
                    .sort_order(SortOrder::from(order))
            })
            .await;
            let mut want: Vec<&EmulatedJob> = jobs.iter().collect();
            want.sort_by(|a, b| {
                let key = match by {
                    "Name" => name(a).cmp(name(b)),
                    "Status" => status(a).cmp(status(b)),
                    _ => created(a).cmp(&created(b)),
                };
                key.then(name(a).cmp(name(b)))
            });
            if order == "Descending" {
                want.reverse();
            }
            let want: Vec<String> = want.iter().map(|j| name(j).to_string()).collect();
            assert_eq!(got, want, "SortBy={by} SortOrder={order}");
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn listings_sorted_by_a_filtered_key_start_and_end_where_the_filter_does() {
    // The listing walks the creation-time and status orders only between
    // the bounds of its filters: every page, both directions, and the
    // bounds themselves (strict times, one status) are right.
    let emu = start(config(240, 16)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let mut times: Vec<i64> = jobs.iter().map(created).collect();
    times.sort_unstable();
    let (lo, hi) = (times[40], times[200]);
    for order in ["Ascending", "Descending"] {
        let got = list_names(&c, 7, |b| {
            b.creation_time_after(dt(lo))
                .creation_time_before(dt(hi))
                .sort_by(ListCompilationJobsSortBy::CreationTime)
                .sort_order(SortOrder::from(order))
        })
        .await;
        let mut want: Vec<&EmulatedJob> = jobs
            .iter()
            .filter(|j| created(j) > lo && created(j) < hi)
            .collect();
        want.sort_by(|a, b| created(a).cmp(&created(b)).then(name(a).cmp(name(b))));
        if order == "Descending" {
            want.reverse();
        }
        let want: Vec<String> = want.iter().map(|j| name(j).to_string()).collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "CreationTime {order}");

        for s in ALL_STATUSES {
            let got = list_names(&c, 5, |b| {
                b.status_equals(CompilationJobStatus::from(s))
                    .sort_by(ListCompilationJobsSortBy::Status)
                    .sort_order(SortOrder::from(order))
            })
            .await;
            let mut want: Vec<String> = jobs
                .iter()
                .filter(|j| status(j) == s)
                .map(|j| name(j).to_string())
                .collect();
            want.sort();
            if order == "Descending" {
                want.reverse();
            }
            assert_eq!(got, want, "Status {s} {order}");
        }
    }
    // Bounds that leave nothing: an empty listing, not an error.
    let none = list_names(&c, 10, |b| {
        b.creation_time_after(dt(hi)).creation_time_before(dt(lo))
    })
    .await;
    assert!(none.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn after_cut_paging_filters_each_page_of_max_results_jobs() {
    let emu = start(EmulatorConfig {
        filter_paging: FilterPaging::AfterCut,
        ..config(137, 15)
    })
    .await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    // Unfiltered, the two models agree.
    assert_eq!(list_names(&c, 10, |b| b).await.len(), 137);
    let mut short_pages_with_a_token = 0;
    for s in ALL_STATUSES {
        let (mut got, mut pages, mut token) = (Vec::new(), 0, None::<String>);
        loop {
            assert!(pages < 100, "StatusEquals={s}: runaway listing");
            let resp = c
                .list_compilation_jobs()
                .max_results(10)
                .status_equals(CompilationJobStatus::from(s))
                .sort_by(ListCompilationJobsSortBy::CreationTime)
                .sort_order(SortOrder::Descending)
                .set_next_token(token.clone())
                .send()
                .await
                .expect("list succeeds");
            pages += 1;
            let summaries = resp.compilation_job_summaries();
            assert!(
                summaries
                    .iter()
                    .all(|j| j.compilation_job_status().map(|x| x.as_str()) == Some(s))
            );
            got.extend(
                summaries
                    .iter()
                    .map(|j| j.compilation_job_name().unwrap_or_default().to_string()),
            );
            token = resp.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
            if summaries.len() < 10 {
                short_pages_with_a_token += 1;
            }
        }
        // Every page cut 10 of all 137 jobs: as many pages as unfiltered.
        assert_eq!(pages, 14, "StatusEquals={s}");
        let mut want: Vec<&EmulatedJob> = jobs.iter().filter(|j| status(j) == s).collect();
        want.sort_by_key(|j| {
            (
                std::cmp::Reverse(created(j)),
                std::cmp::Reverse(name(j).to_string()),
            )
        });
        let want: Vec<String> = want.iter().map(|j| name(j).to_string()).collect();
        assert_eq!(got, want, "StatusEquals={s}: every match, newest first");
    }
    assert!(
        short_pages_with_a_token > 0,
        "some pages are short yet go on"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn activity_is_deterministic_for_a_seed_and_moves_jobs_forward() {
    let (a, b) = (start(config(40, 3)).await, start(config(40, 3)).await);
    let (first, second) = (a.state().advance(200), b.state().advance(200));
    assert_eq!(first, second, "the same seed plays the same events");
    let jobs = a.state().jobs();
    let new_jobs: Vec<&String> = first
        .iter()
        .filter_map(|e| match e {
            ActivityEvent::Created(name) => Some(name),
            _ => None,
        })
        .collect();
    assert!(new_jobs.len() > 20, "{} created", new_jobs.len());
    for event in &first {
        if let ActivityEvent::Moved(moved, _) = event
            && let Some(job) = jobs.iter().find(|j| moved == name(j))
        {
            let name = moved;
            let now = status(job);
            assert!(
                ["INPROGRESS", "COMPLETED", "FAILED", "STOPPED"].contains(&now),
                "{name}: {now}"
            );
            assert!(modified(job) >= created(job), "{name}");
        }
    }
    assert!(first.iter().any(|e| matches!(e, ActivityEvent::Deleted(_))));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn list_pagination_is_complete_without_duplicates_for_any_page_size() {
    let emu = start(config(137, 15)).await;
    let c = client(&emu);
    let all = list_names(&c, 100, |b| b).await;
    assert_eq!(all.len(), 137);
    for page in [1, 2, 7, 10, 33, 50, 99] {
        let got = list_names(&c, page, |b| b).await;
        assert_eq!(got, all, "page size {page}");
        let desc = list_names(&c, page, |b| {
            b.sort_by(ListCompilationJobsSortBy::Status)
                .sort_order(SortOrder::Descending)
        })
        .await;
        assert_eq!(as_set(desc).len(), 137, "page size {page}, by status");
    }
    // Page sizes may change between pages of one listing.
    let first = c
        .list_compilation_jobs()
        .max_results(5)
        .send()
        .await
        .expect("page 1");
    let second = c
        .list_compilation_jobs()
        .max_results(100)
        .next_token(first.next_token().expect("token"))
        .send()
        .await
        .expect("page 2");
    let mut joined: Vec<String> = first
        .compilation_job_summaries()
        .iter()
        .chain(second.compilation_job_summaries())
        .map(|s| s.compilation_job_name().unwrap_or_default().to_string())
        .collect();
    let third = second.next_token().map(str::to_string);
    if let Some(t) = third {
        let rest = c
            .list_compilation_jobs()
            .max_results(100)
            .next_token(t)
            .send()
            .await
            .expect("page 3");
        joined.extend(
            rest.compilation_job_summaries()
                .iter()
                .map(|s| s.compilation_job_name().unwrap_or_default().to_string()),
        );
    }
    assert_eq!(joined, all);
    emu.shutdown().await;
}

#[tokio::test]
async fn list_pages_stay_stable_when_jobs_change_between_pages() {
    let emu = start(config(30, 16)).await;
    let c = client(&emu);
    let all = list_names(&c, 100, |b| b).await;
    let first = c
        .list_compilation_jobs()
        .max_results(10)
        .send()
        .await
        .expect("page 1");
    // Delete a job already returned: the next page must not shift.
    let gone = all
        .iter()
        .take(10)
        .find(|n| {
            emu.state()
                .jobs()
                .iter()
                .any(|j| name(j) == n.as_str() && status(j) == "COMPLETED")
        })
        .expect("a completed job on page 1");
    c.delete_compilation_job()
        .compilation_job_name(gone)
        .send()
        .await
        .expect("delete");
    let second = c
        .list_compilation_jobs()
        .max_results(10)
        .next_token(first.next_token().expect("token"))
        .send()
        .await
        .expect("page 2");
    let got: Vec<_> = second
        .compilation_job_summaries()
        .iter()
        .map(|s| s.compilation_job_name().unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, all[10..20].to_vec());
    emu.shutdown().await;
}

#[tokio::test]
async fn list_rejects_out_of_range_max_results() {
    let emu = start(config(5, 1)).await;
    let c = client(&emu);
    for bad in [0, -1, 101, 1000] {
        let e = c
            .list_compilation_jobs()
            .max_results(bad)
            .send()
            .await
            .expect_err("invalid MaxResults");
        assert_eq!(err_of(&e), ("ValidationException".into(), 400), "{bad}");
    }
    for good in [1, 100] {
        c.list_compilation_jobs()
            .max_results(good)
            .send()
            .await
            .expect("valid MaxResults");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn list_rejects_invalid_or_mismatched_next_tokens() {
    let emu = start(config(30, 1)).await;
    let c = client(&emu);
    for bad in ["garbage", "00", "zz", "deadbeefdeadbeefdeadbeefdeadbeef"] {
        let e = c
            .list_compilation_jobs()
            .next_token(bad)
            .send()
            .await
            .expect_err("invalid token");
        assert_eq!(err_of(&e), ("ValidationException".into(), 400), "{bad}");
    }
    let first = c
        .list_compilation_jobs()
        .max_results(5)
        .send()
        .await
        .expect("page 1");
    let token = first.next_token().expect("token").to_string();
    // A token from one query cannot continue a different one.
    let e = c
        .list_compilation_jobs()
        .sort_by(ListCompilationJobsSortBy::Name)
        .next_token(&token)
        .send()
        .await
        .expect_err("token of another query");
    assert_eq!(err_of(&e).0, "ValidationException");
    // Tampering with one character breaks the checksum.
    let mut chars: Vec<char> = token.chars().collect();
    chars[0] = if chars[0] == '6' { '7' } else { '6' };
    let tampered: String = chars.into_iter().collect();
    let e = c
        .list_compilation_jobs()
        .max_results(5)
        .next_token(tampered)
        .send()
        .await
        .expect_err("tampered token");
    assert_eq!(err_of(&e).0, "ValidationException");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_rejects_bad_name_contains_and_enum_values() {
    let emu = start(config(5, 1)).await;
    let c = client(&emu);
    let long = "a".repeat(64);
    for bad in ["bad_name", "has space", long.as_str()] {
        let e = c
            .list_compilation_jobs()
            .name_contains(bad)
            .send()
            .await
            .expect_err("bad NameContains");
        assert_eq!(err_of(&e), ("ValidationException".into(), 400), "{bad}");
    }
    let e = c
        .list_compilation_jobs()
        .status_equals(CompilationJobStatus::from("DONE"))
        .send()
        .await
        .expect_err("bad status");
    assert_eq!(err_of(&e).0, "ValidationException");
    let e = c
        .list_compilation_jobs()
        .sort_by(ListCompilationJobsSortBy::from("Size"))
        .send()
        .await
        .expect_err("bad sort key");
    assert_eq!(err_of(&e).0, "ValidationException");
    emu.shutdown().await;
}

// ---------------------------------------------------------------- describe

#[tokio::test]
async fn describe_matches_state_field_by_field() {
    let emu = start(config(80, 17)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    for j in &jobs {
        let d = &j.describe;
        let o = c
            .describe_compilation_job()
            .compilation_job_name(name(j))
            .send()
            .await
            .expect("describe");
        let s = |v: &Value| v.as_str().map(str::to_string);
        assert_eq!(
            o.compilation_job_name().map(str::to_string),
            s(&d["CompilationJobName"])
        );
        assert_eq!(
            o.compilation_job_arn().map(str::to_string),
            s(&d["CompilationJobArn"])
        );
        assert_eq!(
            o.compilation_job_status().map(|x| x.as_str().to_string()),
            s(&d["CompilationJobStatus"])
        );
        assert_eq!(ms(o.creation_time()), json_ms(&d["CreationTime"]));
        assert_eq!(ms(o.last_modified_time()), json_ms(&d["LastModifiedTime"]));
        assert_eq!(
            ms(o.compilation_start_time()),
            json_ms(&d["CompilationStartTime"])
        );
        assert_eq!(
            ms(o.compilation_end_time()),
            json_ms(&d["CompilationEndTime"])
        );
        assert_eq!(
            o.failure_reason().map(str::to_string),
            s(&d["FailureReason"])
        );
        assert_eq!(o.role_arn().map(str::to_string), s(&d["RoleArn"]));
        assert_eq!(
            o.inference_image().map(str::to_string),
            s(&d["InferenceImage"])
        );
        assert_eq!(
            o.model_package_version_arn().map(str::to_string),
            s(&d["ModelPackageVersionArn"])
        );
        assert_eq!(
            o.model_artifacts()
                .and_then(|m| m.s3_model_artifacts())
                .map(str::to_string),
            s(&d["ModelArtifacts"]["S3ModelArtifacts"])
        );
        assert_eq!(
            o.model_digests()
                .and_then(|m| m.artifact_digest())
                .map(str::to_string),
            s(&d["ModelDigests"]["ArtifactDigest"])
        );
        let sc = o.stopping_condition().expect("StoppingCondition");
        assert_eq!(
            sc.max_runtime_in_seconds().map(i64::from),
            d["StoppingCondition"]["MaxRuntimeInSeconds"].as_i64()
        );
        assert_eq!(
            sc.max_wait_time_in_seconds().map(i64::from),
            d["StoppingCondition"]["MaxWaitTimeInSeconds"].as_i64()
        );
        let i = o.input_config().expect("InputConfig");
        let di = &d["InputConfig"];
        assert_eq!(i.s3_uri().map(str::to_string), s(&di["S3Uri"]));
        assert_eq!(
            i.data_input_config().map(str::to_string),
            s(&di["DataInputConfig"])
        );
        assert_eq!(
            i.framework().map(|f| f.as_str().to_string()),
            s(&di["Framework"])
        );
        assert_eq!(
            i.framework_version().map(str::to_string),
            s(&di["FrameworkVersion"])
        );
        let out = o.output_config().expect("OutputConfig");
        let dout = &d["OutputConfig"];
        assert_eq!(
            out.s3_output_location().map(str::to_string),
            s(&dout["S3OutputLocation"])
        );
        assert_eq!(
            out.target_device().map(|t| t.as_str().to_string()),
            s(&dout["TargetDevice"])
        );
        assert_eq!(
            out.compiler_options().map(str::to_string),
            s(&dout["CompilerOptions"])
        );
        assert_eq!(out.kms_key_id().map(str::to_string), s(&dout["KmsKeyId"]));
        let p = &dout["TargetPlatform"];
        assert_eq!(
            out.target_platform()
                .and_then(|t| t.os())
                .map(|x| x.as_str().to_string()),
            s(&p["Os"])
        );
        assert_eq!(
            out.target_platform()
                .and_then(|t| t.arch())
                .map(|x| x.as_str().to_string()),
            s(&p["Arch"])
        );
        assert_eq!(
            out.target_platform()
                .and_then(|t| t.accelerator())
                .map(|x| x.as_str().to_string()),
            s(&p["Accelerator"])
        );
        let vpc = o.vpc_config();
        assert_eq!(vpc.is_some(), d.get("VpcConfig").is_some());
        if let Some(v) = vpc {
            let sg: Vec<String> =
                serde_json::from_value(d["VpcConfig"]["SecurityGroupIds"].clone()).expect("sg ids");
            let subnets: Vec<String> =
                serde_json::from_value(d["VpcConfig"]["Subnets"].clone()).expect("subnets");
            assert_eq!(v.security_group_ids(), sg.as_slice());
            assert_eq!(v.subnets(), subnets.as_slice());
        }
        assert_eq!(
            o.derived_information()
                .and_then(|x| x.derived_data_input_config())
                .map(str::to_string),
            s(&d["DerivedInformation"]["DerivedDataInputConfig"])
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn describe_wire_body_is_exactly_the_state_snapshot() {
    let emu = start(config(20, 18)).await;
    for j in emu.state().jobs() {
        let body = serde_json::json!({ "CompilationJobName": name(&j) }).to_string();
        let (status, headers, got) = api(emu.local_addr(), "DescribeCompilationJob", &body).await;
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(got, j.describe);
        // Timestamps are epoch seconds as numbers with millisecond precision.
        let t = got["CreationTime"].as_f64().expect("number");
        assert!(((t * 1000.0).round() - t * 1000.0).abs() < 1e-3);
        assert!(t > 1.6e9 && t < 1.8e9);
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn describe_unknown_job_is_resource_not_found() {
    let emu = start(config(5, 1)).await;
    let c = client(&emu);
    let e = c
        .describe_compilation_job()
        .compilation_job_name("no-such-job")
        .send()
        .await
        .expect_err("unknown job");
    assert_eq!(err_of(&e), ("ResourceNotFound".into(), 400));
    assert!(e.into_service_error().is_resource_not_found());
    let e = c
        .describe_compilation_job()
        .compilation_job_name("bad_name!")
        .send()
        .await
        .expect_err("invalid name");
    assert_eq!(err_of(&e).0, "ValidationException");
    emu.shutdown().await;
}

// ---------------------------------------------------------------- tags

#[tokio::test]
async fn list_tags_pages_a_job_with_more_than_fifty_tags() {
    let emu = start(config(100, 19)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let big: Vec<_> = jobs.iter().filter(|j| j.tags.len() > 50).collect();
    assert!(big.len() >= 2);
    for j in big {
        let arn = j.describe["CompilationJobArn"].as_str().expect("arn");
        for max in [None, Some(50), Some(500)] {
            let mut got = Vec::new();
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                assert!(pages <= 10, "too many tag pages");
                let resp = c
                    .list_tags()
                    .resource_arn(arn)
                    .set_max_results(max)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .expect("list tags");
                assert!(resp.tags().len() <= 50, "at most 50 tags a page");
                got.extend(resp.tags().iter().map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                }));
                token = resp.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            assert_eq!(pages, 2, "51..=80 tags take two pages");
            assert_eq!(got, j.tags);
        }
    }
    let small = jobs
        .iter()
        .find(|j| !j.tags.is_empty() && j.tags.len() <= 50)
        .expect("a small-tag job");
    let resp = c
        .list_tags()
        .resource_arn(small.describe["CompilationJobArn"].as_str().expect("arn"))
        .send()
        .await
        .expect("list tags");
    assert!(resp.next_token().is_none());
    assert_eq!(resp.tags().len(), small.tags.len());
    emu.shutdown().await;
}

#[tokio::test]
async fn list_tags_validates_arn_max_results_and_token() {
    let emu = start(config(10, 20)).await;
    let c = client(&emu);
    let arn = emu.state().jobs()[0].describe["CompilationJobArn"]
        .as_str()
        .expect("arn")
        .to_string();
    let e = c
        .list_tags()
        .resource_arn("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/nope")
        .send()
        .await
        .expect_err("unknown arn");
    assert_eq!(err_of(&e), ("ResourceNotFound".into(), 400));
    let e = c
        .list_tags()
        .resource_arn("arn:aws:sagemaker:us-east-1:123456789012:training-job/x")
        .send()
        .await
        .expect_err("not a compilation job");
    assert_eq!(err_of(&e).0, "ResourceNotFound");
    let e = c
        .list_tags()
        .resource_arn("not-an-arn")
        .send()
        .await
        .expect_err("malformed arn");
    assert_eq!(err_of(&e).0, "ValidationException");
    let e = c
        .list_tags()
        .resource_arn(&arn)
        .max_results(49)
        .send()
        .await
        .expect_err("MaxResults below 50");
    assert_eq!(err_of(&e).0, "ValidationException");
    let e = c
        .list_tags()
        .resource_arn(&arn)
        .next_token("garbage")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(err_of(&e).0, "ValidationException");
    emu.shutdown().await;
}

#[tokio::test]
async fn add_tags_replaces_same_keys_and_appends_new_ones() {
    let emu = start(config(10, 21)).await;
    let c = client(&emu);
    // A job with a few tags, so one ListTags page shows them all.
    let job = emu
        .state()
        .jobs()
        .into_iter()
        .find(|j| !j.tags.is_empty() && j.tags.len() < 40)
        .expect("a job with a few tags");
    let arn = job.describe["CompilationJobArn"].as_str().expect("arn");
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let mut extra = vec![tag("stage", "canary"), tag("stage", "final")];
    if let Some((k, _)) = job.tags.first() {
        extra.push(tag(k, "replaced"));
    }
    let out = c
        .add_tags()
        .resource_arn(arn)
        .set_tags(Some(extra.clone()))
        .send()
        .await
        .expect("add tags");
    assert_eq!(out.tags(), extra.as_slice());
    let mut want = job.tags.clone();
    if let Some(first) = want.first_mut() {
        first.1 = "replaced".into();
    }
    want.push(("stage".into(), "final".into()));
    let after = emu
        .state()
        .jobs()
        .into_iter()
        .find(|j| j.describe["CompilationJobArn"] == arn)
        .expect("job");
    assert_eq!(after.tags, want);
    let listed = c
        .list_tags()
        .resource_arn(arn)
        .send()
        .await
        .expect("list tags");
    let listed: Vec<_> = listed
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(listed, want);
    let e = c
        .add_tags()
        .resource_arn("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/nope")
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("unknown arn");
    assert_eq!(err_of(&e).0, "ResourceNotFound");
    emu.shutdown().await;
}

// ---------------------------------------------------- create and delete

fn output_config() -> OutputConfig {
    OutputConfig::builder()
        .s3_output_location("s3://bucket/compiled")
        .target_device(TargetDevice::MlC5)
        .build()
}

#[tokio::test]
async fn create_stores_the_job_and_duplicate_name_is_resource_in_use() {
    let emu = start(config(0, 22)).await;
    let c = client(&emu);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let created_arn = c
        .create_compilation_job()
        .compilation_job_name("my-new-job")
        .role_arn("arn:aws:iam::123456789012:role/NeoRole")
        .input_config(
            InputConfig::builder()
                .s3_uri("s3://bucket/model.tar.gz")
                .data_input_config(r#"{"input0":[1,3,224,224]}"#)
                .framework(Framework::Pytorch)
                .framework_version("1.13")
                .build(),
        )
        .output_config(output_config())
        .stopping_condition(
            StoppingCondition::builder()
                .max_runtime_in_seconds(900)
                .build(),
        )
        .tags(Tag::builder().key("team").value("vision").build())
        .send()
        .await
        .expect("create");
    assert_eq!(
        created_arn.compilation_job_arn(),
        Some("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/my-new-job")
    );
    let d = c
        .describe_compilation_job()
        .compilation_job_name("my-new-job")
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.compilation_job_status(),
        Some(&CompilationJobStatus::Inprogress)
    );
    assert_eq!(ms(d.creation_time()), ms(d.last_modified_time()));
    assert!(ms(d.creation_time()).expect("time") >= before);
    assert_eq!(d.failure_reason(), Some(""));
    assert_eq!(
        d.model_artifacts().and_then(|m| m.s3_model_artifacts()),
        Some("s3://bucket/compiled/model-ml_c5.tar.gz")
    );
    assert!(d.inference_image().is_some(), "cloud target gets an image");
    let jobs = emu.state().jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].tags,
        vec![("team".to_string(), "vision".to_string())]
    );
    let listed = list_names(&c, 10, |b| {
        b.status_equals(CompilationJobStatus::Inprogress)
    })
    .await;
    assert_eq!(listed, vec!["my-new-job".to_string()]);

    let e = c
        .create_compilation_job()
        .compilation_job_name("my-new-job")
        .role_arn("arn:aws:iam::123456789012:role/NeoRole")
        .input_config(
            InputConfig::builder()
                .s3_uri("s3://bucket/model.tar.gz")
                .framework(Framework::Onnx)
                .build(),
        )
        .output_config(output_config())
        .stopping_condition(
            StoppingCondition::builder()
                .max_runtime_in_seconds(900)
                .build(),
        )
        .send()
        .await
        .expect_err("duplicate");
    assert_eq!(err_of(&e), ("ResourceInUse".into(), 400));
    assert!(e.into_service_error().is_resource_in_use());
    emu.shutdown().await;
}

#[tokio::test]
async fn create_rejects_missing_or_invalid_members() {
    let emu = start(config(0, 23)).await;
    let addr = emu.local_addr();
    let valid = serde_json::json!({
        "CompilationJobName": "ok-job",
        "RoleArn": "arn:aws:iam::123456789012:role/NeoRole",
        "InputConfig": {"S3Uri": "s3://b/m.tar.gz", "Framework": "PYTORCH"},
        "OutputConfig": {"S3OutputLocation": "s3://b/out", "TargetDevice": "ml_c5"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900}
    });
    // (what, JSON pointer, new value); `None` removes the member.
    let mutations: [(&str, &str, Option<Value>); 11] = [
        ("no name", "/CompilationJobName", None),
        ("no role", "/RoleArn", None),
        ("no output", "/OutputConfig", None),
        ("no stopping condition", "/StoppingCondition", None),
        ("no input nor package", "/InputConfig", None),
        ("bad name", "/CompilationJobName", Some("bad_name".into())),
        (
            "bad framework",
            "/InputConfig/Framework",
            Some("CAFFE".into()),
        ),
        (
            "bad device",
            "/OutputConfig/TargetDevice",
            Some("ml_z9".into()),
        ),
        ("bad s3 uri", "/InputConfig/S3Uri", Some("ftp://x".into())),
        ("bad role", "/RoleArn", Some("arn:aws:iam::1:role/x".into())),
        (
            "zero runtime",
            "/StoppingCondition/MaxRuntimeInSeconds",
            Some(0.into()),
        ),
    ];
    for (what, pointer, value) in mutations {
        let mut body = valid.clone();
        match value {
            Some(v) => *body.pointer_mut(pointer).expect("member exists") = v,
            None => {
                let key = pointer.trim_start_matches('/');
                body.as_object_mut().expect("object").remove(key);
            }
        }
        let (status, headers, err) = api(addr, "CreateCompilationJob", &body.to_string()).await;
        assert_eq!(status, 400, "{what}");
        assert_eq!(err["__type"], "ValidationException", "{what}: {err}");
        assert_eq!(
            header(&headers, "x-amzn-errortype"),
            Some("ValidationException")
        );
    }
    let (status, _, _) = api(addr, "CreateCompilationJob", &valid.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(emu.state().jobs().len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn delete_removes_finished_jobs_only_and_unknown_is_resource_not_found() {
    let emu = start(config(40, 24)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let done = jobs
        .iter()
        .find(|j| status(j) == "COMPLETED")
        .expect("completed");
    c.delete_compilation_job()
        .compilation_job_name(name(done))
        .send()
        .await
        .expect("delete");
    assert_eq!(emu.state().jobs().len(), 39);
    let e = c
        .describe_compilation_job()
        .compilation_job_name(name(done))
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(err_of(&e).0, "ResourceNotFound");
    let e = c
        .delete_compilation_job()
        .compilation_job_name(name(done))
        .send()
        .await
        .expect_err("already deleted");
    assert_eq!(err_of(&e), ("ResourceNotFound".into(), 400));
    let running = jobs
        .iter()
        .find(|j| status(j) == "INPROGRESS")
        .expect("running");
    let e = c
        .delete_compilation_job()
        .compilation_job_name(name(running))
        .send()
        .await
        .expect_err("running job");
    assert_eq!(err_of(&e).0, "ValidationException");
    assert_eq!(emu.state().jobs().len(), 39);
    emu.shutdown().await;
}

// ---------------------------------------------------------------- vanish

#[tokio::test]
async fn vanished_job_is_listed_but_describe_and_list_tags_are_not_found() {
    let emu = start(config(20, 25)).await;
    let c = client(&emu);
    let jobs = emu.state().jobs();
    let (a, b) = (name(&jobs[2]).to_string(), name(&jobs[7]).to_string());
    assert!(emu.state().vanish(&a));
    assert!(!emu.state().vanish("no-such-job"));
    let (status, _, body) = http(
        emu.local_addr(),
        "POST",
        "/_emulator/vanish",
        &[("Content-Type", "application/json")],
        &serde_json::json!({ "name": b }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = http(
        emu.local_addr(),
        "POST",
        "/_emulator/vanish",
        &[],
        r#"{"name":"no-such-job"}"#,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = http(emu.local_addr(), "POST", "/_emulator/vanish", &[], "{").await;
    assert_eq!(status, 400);

    let listed = as_set(list_names(&c, 100, |b| b).await);
    assert_eq!(listed.len(), 20);
    for n in [&a, &b] {
        assert!(listed.contains(n.as_str()));
        let e = c
            .describe_compilation_job()
            .compilation_job_name(n)
            .send()
            .await
            .expect_err("vanished");
        assert_eq!(err_of(&e), ("ResourceNotFound".into(), 400));
        let arn = format!("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{n}");
        let e = c
            .list_tags()
            .resource_arn(arn)
            .send()
            .await
            .expect_err("vanished");
        assert_eq!(err_of(&e).0, "ResourceNotFound");
    }
    emu.shutdown().await;
}

// ----------------------------------------------------- stats and faults

#[tokio::test]
async fn stats_count_calls_per_operation_and_reset_zeroes_them() {
    let emu = start(config(12, 26)).await;
    let c = client(&emu);
    let n = name(&emu.state().jobs()[0]).to_string();
    for _ in 0..3 {
        c.list_compilation_jobs().send().await.expect("list");
    }
    for _ in 0..2 {
        c.describe_compilation_job()
            .compilation_job_name(&n)
            .send()
            .await
            .expect("describe");
    }
    let _ = c
        .describe_compilation_job()
        .compilation_job_name("missing")
        .send()
        .await;
    let s = emu.state().stats();
    assert_eq!(s.calls("ListCompilationJobs"), 3);
    assert_eq!(
        s.calls("DescribeCompilationJob"),
        3,
        "errors count as calls"
    );
    assert_eq!(s.calls("ListTags"), 0);
    assert_eq!(s.calls("NoSuchOperation"), 0);
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.peak("ListCompilationJobs"), 1);
    let op = &s.operations["DescribeCompilationJob"];
    assert_eq!((op.throttled, op.server_errors, op.in_flight), (0, 0, 0));

    let (status, _, body) = http(emu.local_addr(), "GET", "/_emulator/stats", &[], "").await;
    assert_eq!(status, 200);
    let over_http: Stats = serde_json::from_str(&body).expect("stats JSON");
    assert_eq!(over_http.calls("ListCompilationJobs"), 3);
    assert_eq!(over_http.peak_in_flight, s.peak_in_flight);

    emu.state().reset_stats();
    let s = emu.state().stats();
    assert_eq!(s.calls("ListCompilationJobs"), 0);
    assert_eq!((s.peak_in_flight, s.peak("DescribeCompilationJob")), (0, 0));
    c.list_compilation_jobs().send().await.expect("list");
    let (status, _, body) = http(emu.local_addr(), "POST", "/_emulator/reset", &[], "").await;
    assert_eq!(status, 200);
    let after: Stats = serde_json::from_str(&body).expect("stats JSON");
    assert_eq!(after.calls("ListCompilationJobs"), 0);
    assert_eq!(emu.state().stats().calls("ListCompilationJobs"), 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_describes_with_latency_peak_at_eight_in_flight() {
    let emu = start(EmulatorConfig {
        latency: Duration::from_millis(250),
        ..config(8, 27)
    })
    .await;
    let c = client(&emu);
    let names: Vec<String> = emu
        .state()
        .jobs()
        .iter()
        .map(|j| name(j).to_string())
        .collect();
    // The latency is long enough that all eight overlap; a loaded machine
    // gets up to three tries before the assertion fails.
    let mut peak = 0;
    for _ in 0..3 {
        emu.state().reset_stats();
        let calls = names.iter().map(|n| {
            let c = c.clone();
            async move {
                c.describe_compilation_job()
                    .compilation_job_name(n)
                    .send()
                    .await
            }
        });
        for r in futures::future::join_all(calls).await {
            r.expect("describe");
        }
        let s = emu.state().stats();
        assert_eq!(s.calls("DescribeCompilationJob"), 8);
        assert_eq!(s.in_flight, 0);
        peak = s.peak("DescribeCompilationJob");
        assert_eq!(s.peak_in_flight, peak, "only describes were running");
        if peak == 8 {
            break;
        }
    }
    assert_eq!(peak, 8);
    emu.shutdown().await;
}

#[tokio::test]
async fn throttle_rate_one_throttles_every_operation_with_http_400() {
    let emu = start(EmulatorConfig {
        throttle_rate: 1.0,
        ..config(5, 28)
    })
    .await;
    let c = client(&emu);
    let job = emu.state().jobs()[0].clone();
    let arn = job.describe["CompilationJobArn"].as_str().expect("arn");
    let check = |e: (String, u16)| assert_eq!(e, ("ThrottlingException".into(), 400));
    check(err_of(
        &c.list_compilation_jobs()
            .send()
            .await
            .expect_err("throttled"),
    ));
    check(err_of(
        &c.describe_compilation_job()
            .compilation_job_name(name(&job))
            .send()
            .await
            .expect_err("throttled"),
    ));
    check(err_of(
        &c.list_tags()
            .resource_arn(arn)
            .send()
            .await
            .expect_err("throttled"),
    ));
    check(err_of(
        &c.delete_compilation_job()
            .compilation_job_name(name(&job))
            .send()
            .await
            .expect_err("throttled"),
    ));
    let (status, headers, body) = api(emu.local_addr(), "AddTags", "{}").await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "ThrottlingException");
    assert_eq!(body["message"], "Rate exceeded");
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("ThrottlingException")
    );
    let (_, _, body) = api(emu.local_addr(), "CreateCompilationJob", "{}").await;
    assert_eq!(body["__type"], "ThrottlingException");
    // The Tagging API names its throttling error its own way.
    let (status, _, body) = api_of(
        emu.local_addr(),
        "ResourceGroupsTaggingAPI_20170126.GetResources",
        "{}",
    )
    .await;
    assert_eq!(
        (status, &body["__type"]),
        (400, &Value::from("ThrottledException"))
    );
    let s = emu.state().stats();
    for op in s.operations.values() {
        assert_eq!(op.throttled, op.calls);
        assert_eq!(op.calls, 1);
    }
    emu.state().set_faults(0.0, 0.0);
    c.list_compilation_jobs()
        .send()
        .await
        .expect("faults switched off");
    emu.shutdown().await;
}

#[tokio::test]
async fn error_rate_one_answers_5xx_internal_failure_or_service_unavailable() {
    let emu = start(EmulatorConfig {
        error_rate: 1.0,
        ..config(5, 29)
    })
    .await;
    let c = client(&emu);
    for _ in 0..12 {
        let e = c.list_compilation_jobs().send().await.expect_err("5xx");
        let (code, status) = err_of(&e);
        assert!(
            (code == "InternalFailure" && status == 500)
                || (code == "ServiceUnavailable" && status == 503),
            "{code} {status}"
        );
    }
    let (status, headers, body) = api(emu.local_addr(), "DescribeCompilationJob", "{}").await;
    assert!(status == 500 || status == 503);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        body["__type"].as_str()
    );
    let s = emu.state().stats();
    assert_eq!(s.operations["ListCompilationJobs"].server_errors, 12);
    assert_eq!(s.operations["DescribeCompilationJob"].server_errors, 1);
    assert_eq!(s.operations["ListCompilationJobs"].throttled, 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_throttles_most_of_an_immediate_burst() {
    let emu = start(EmulatorConfig {
        rate_limit: Some(20.0),
        ..config(5, 30)
    })
    .await;
    let c = client(&emu);
    let began = Instant::now();
    let calls = (0..60).map(|_| {
        let c = c.clone();
        async move { c.list_compilation_jobs().max_results(1).send().await }
    });
    let results = futures::future::join_all(calls).await;
    let elapsed = began.elapsed().as_secs_f64();
    let seen_throttles = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|e| err_of(e) == ("ThrottlingException".into(), 400))
        })
        .count() as u64;
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    assert_eq!(ok + seen_throttles, 60, "only successes and throttles");
    let s = emu.state().stats();
    let op = &s.operations["ListCompilationJobs"];
    assert_eq!(op.calls, 60);
    assert_eq!(op.throttled, seen_throttles);
    // Burst of 20, plus at most 20/s refilled while the burst ran.
    let allowed = 20 + (elapsed * 20.0).ceil() as u64 + 1;
    assert!(
        op.calls - op.throttled <= allowed,
        "{ok} passed in {elapsed:.3}s"
    );
    assert!(op.throttled >= 1);
    // Another operation has its own bucket.
    let n = name(&emu.state().jobs()[0]).to_string();
    c.describe_compilation_job()
        .compilation_job_name(n)
        .send()
        .await
        .expect("separate bucket per operation");
    emu.shutdown().await;
}

#[tokio::test]
async fn set_latency_applies_to_later_calls() {
    let emu = start(config(3, 31)).await;
    let c = client(&emu);
    emu.state().set_latency(Duration::from_millis(120));
    let t = Instant::now();
    c.list_compilation_jobs().send().await.expect("list");
    assert!(t.elapsed() >= Duration::from_millis(120));
    emu.state().set_latency(Duration::ZERO);
    emu.shutdown().await;
}

// ---------------------------------------------------------------- protocol

#[tokio::test]
async fn unknown_operation_and_malformed_bodies_are_400s() {
    let emu = start(config(3, 32)).await;
    let addr = emu.local_addr();
    let (status, headers, body) = api(addr, "ListTrainingJobs", "{}").await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("UnknownOperationException")
    );
    let (status, _, body) = http(addr, "POST", "/", &[], "{}").await;
    assert_eq!(status, 400);
    assert!(body.contains("UnknownOperationException"));
    for (op, bad) in [
        ("ListCompilationJobs", "{not json"),
        ("ListCompilationJobs", r#"{"MaxResults":"ten"}"#),
        (
            "ListCompilationJobs",
            r#"{"CreationTimeAfter":"yesterday"}"#,
        ),
        ("DescribeCompilationJob", "[1,2,3]"),
        ("AddTags", r#"{"ResourceArn":"x","Tags":[{"Key":"k"}]}"#),
    ] {
        let (status, _, body) = api(addr, op, bad).await;
        assert_eq!(status, 400, "{op} {bad}");
        assert_eq!(body["__type"], "SerializationException", "{op} {bad}");
        assert!(body["message"].is_string());
    }
    let (status, _, body) = api(addr, "DescribeCompilationJob", "{}").await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "ValidationException");
    // An empty body is an empty request, as AWS treats it.
    let (status, _, body) = api(addr, "ListCompilationJobs", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["CompilationJobSummaries"].as_array().map(Vec::len),
        Some(3)
    );
    // Unknown operations are not counted as calls of any operation.
    let s = emu.state().stats();
    assert_eq!(s.operations.values().map(|o| o.calls).sum::<u64>(), 7);
    emu.shutdown().await;
}

#[tokio::test]
async fn endpoint_url_is_loopback_and_shutdown_stops_serving() {
    let emu = Emulator::start(config(1, 33), SocketAddr::from(([0, 0, 0, 0], 0)))
        .await
        .expect("start on wildcard");
    let port = emu.local_addr().port();
    assert_eq!(emu.endpoint_url(), format!("http://127.0.0.1:{port}"));
    let c = client(&emu);
    c.list_compilation_jobs().send().await.expect("served");
    emu.shutdown().await;
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .expect("connect attempt finishes");
    assert!(refused.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn serve_until_runs_until_its_shutdown_future_resolves() {
    // Reserve a free port, then hand it to serve_until.
    let probe = std::net::TcpListener::bind(loopback()).expect("probe bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sagemaker_emulator::serve_until(
        config(4, 34),
        addr,
        async move {
            let _ = rx.await;
        },
    ));
    // Bounded wait for the listener to come up.
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(up, "serve_until never listened");
    let (status, _, body) = api(addr, "ListCompilationJobs", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["CompilationJobSummaries"].as_array().map(Vec::len),
        Some(4)
    );
    tx.send(()).expect("server waiting");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops within 10 s")
        .expect("task joins")
        .expect("serve_until returns Ok");
}
