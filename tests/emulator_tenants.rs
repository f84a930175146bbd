//! The emulator as many AWS accounts and regions: partitions routed by the
//! signer's account and region, STS AssumeRole / GetCallerIdentity through
//! the real `aws-config` provider, the Account API's ListRegions, and
//! per-partition faults and stats.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::config::{Credentials, ProvideCredentials};
use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use common::http;
use sagemaker_emulator::{
    Emulator, EmulatorConfig, EmulatorPartition, EmulatorRole, EmulatorState, Stats,
};
use serde_json::{Value, json};

const HOME: &str = "123456789012";
const OTHER: &str = "210987654321";
const READER_ROLE: &str = "arn:aws:iam::210987654321:role/flight-reader";
const EXTERNAL_ID: &str = "flight-ext-1";

// ---------------------------------------------------------------- helpers

/// Every test finishes in bounded time, whatever the server does.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("the test finishes within 60 s")
}

/// Two accounts: HOME in us-east-1 (default, 12 jobs) and eu-west-1 (3
/// jobs); OTHER in us-west-2 (7 jobs). OTHER's reader role needs an
/// external id.
fn tenants_config() -> EmulatorConfig {
    EmulatorConfig {
        jobs: 12,
        seed: 41,
        anchor: Some(UNIX_EPOCH + Duration::from_secs(1_790_000_000)),
        partitions: vec![
            EmulatorPartition::new(HOME, "eu-west-1").with_jobs(3),
            EmulatorPartition::new(OTHER, "us-west-2").with_jobs(7),
        ],
        roles: vec![EmulatorRole::new(READER_ROLE).with_external_id(EXTERNAL_ID)],
        ..EmulatorConfig::default()
    }
}

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("emulator starts")
}

fn static_credentials(access_key: &str) -> Credentials {
    Credentials::new(access_key, "emulator", None, None, "emulator-tenants-test")
}

/// A SageMaker client signing with `credentials` in `region`.
fn sagemaker(
    emu: &Emulator,
    region: &str,
    credentials: impl ProvideCredentials + 'static,
) -> Client {
    let conf = aws_sdk_sagemaker::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .endpoint_url(emu.endpoint_url())
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// The base configuration an AssumeRole provider calls STS with: the
/// emulator's static credentials, in `region`.
async fn base_config(emu: &Emulator, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(emu.endpoint_url())
        .credentials_provider(static_credentials("emulator"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

async fn assume_role_provider(
    emu: &Emulator,
    role_arn: &str,
    external_id: Option<&str>,
) -> AssumeRoleProvider {
    let mut builder = AssumeRoleProvider::builder(role_arn).session_name("tenants-test");
    if let Some(id) = external_id {
        builder = builder.external_id(id);
    }
    builder
        .configure(&base_config(emu, "us-east-1").await)
        .build()
        .await
}

/// Every job ARN the client lists, in the emulator's order (by name).
async fn listed_arns(client: &Client) -> Vec<String> {
    let mut arns = Vec::new();
    let mut pages = client
        .list_compilation_jobs()
        .sort_by(aws_sdk_sagemaker::types::ListCompilationJobsSortBy::Name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("a page");
        arns.extend(
            page.compilation_job_summaries()
                .iter()
                .map(|s| s.compilation_job_arn().unwrap_or_default().to_owned()),
        );
    }
    arns
}

fn arns_of(state: &EmulatorState) -> Vec<String> {
    state
        .jobs()
        .iter()
        .map(|j| {
            j.describe["CompilationJobArn"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn partition(emu: &Emulator, account: &str, region: &str) -> std::sync::Arc<EmulatorState> {
    emu.partition(account, region)
        .unwrap_or_else(|| panic!("partition {account}:{region} exists"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A SigV4 `Authorization` header claiming `access_key` in `region` (the
/// emulator reads the credential scope and checks no signature).
fn authorization(access_key: &str, region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20261129/{region}/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000"
    )
}

/// `POST /listRegions` as `access_key` would sign it.
async fn list_regions(emu: &Emulator, access_key: &str, body: Value) -> (u16, Value) {
    let auth = authorization(access_key, "us-east-1", "account");
    let (status, _, text) = http(
        emu.local_addr(),
        "POST",
        "/listRegions",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        &body.to_string(),
    )
    .await;
    (status, serde_json::from_str(&text).expect("a JSON answer"))
}

fn regions(answer: &Value) -> Vec<(String, String)> {
    answer["Regions"]
        .as_array()
        .expect("a Regions list")
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().expect("a string").to_owned();
            (text("RegionName"), text("RegionOptStatus"))
        })
        .collect()
}

/// The text of `<tag>...</tag>` in an XML answer.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn without_partitions_every_signer_sees_the_one_catalog() {
    bounded(async {
        let emu = start(EmulatorConfig {
            partitions: Vec::new(),
            ..tenants_config()
        })
        .await;
        let expected = arns_of(emu.state());
        assert_eq!(expected.len(), 12);
        for (key, region) in [
            ("emulator", "us-east-1"),
            ("test", "eu-west-1"),
            ("EMU21098765432100001", "us-west-2"),
        ] {
            let client = sagemaker(&emu, region, static_credentials(key));
            assert_eq!(listed_arns(&client).await, expected, "{key} in {region}");
        }
        assert!(emu.partition(OTHER, "us-west-2").is_none());
        assert_eq!(emu.state().stats().calls("ListCompilationJobs"), 6);
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn each_region_of_the_home_account_has_its_own_jobs() {
    bounded(async {
        let emu = start(tenants_config()).await;
        let home = sagemaker(&emu, "us-east-1", static_credentials("emulator"));
        let home_arns = listed_arns(&home).await;
        assert_eq!(home_arns, arns_of(emu.state()));
        assert_eq!(home_arns.len(), 12);
        assert!(
            home_arns
                .iter()
                .all(|a| a.contains(":us-east-1:123456789012:"))
        );
        // The default partition's data is what a single-tenant emulator
        // with the same seed generates.
        let single = start(EmulatorConfig {
            partitions: Vec::new(),
            ..tenants_config()
        })
        .await;
        assert_eq!(arns_of(single.state()), home_arns);
        single.shutdown().await;

        let europe = sagemaker(&emu, "eu-west-1", static_credentials("emulator"));
        let europe_arns = listed_arns(&europe).await;
        assert_eq!(europe_arns, arns_of(&partition(&emu, HOME, "eu-west-1")));
        assert_eq!(europe_arns.len(), 3);
        assert!(
            europe_arns
                .iter()
                .all(|a| a.contains(":eu-west-1:123456789012:"))
        );
        let name = |arn: &str| arn.rsplit('/').next().unwrap_or("").to_owned();
        assert!(
            europe_arns
                .iter()
                .all(|a| !home_arns.iter().any(|h| name(h) == name(a))),
            "partitions generate different names"
        );

        // A job of one region is not found in another.
        let europe_job = name(&europe_arns[0]);
        let err = home
            .describe_compilation_job()
            .compilation_job_name(&europe_job)
            .send()
            .await
            .expect_err("not in us-east-1");
        assert_eq!(err.code(), Some("ResourceNotFound"));
        let described = europe
            .describe_compilation_job()
            .compilation_job_name(&europe_job)
            .send()
            .await
            .expect("found in eu-west-1");
        assert_eq!(
            described.compilation_job_arn(),
            Some(europe_arns[0].as_str())
        );

        // Each partition counts its own calls.
        assert_eq!(emu.state().stats().calls("DescribeCompilationJob"), 1);
        assert_eq!(
            partition(&emu, HOME, "eu-west-1")
                .stats()
                .calls("DescribeCompilationJob"),
            1
        );
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_unconfigured_region_answers_as_an_empty_account() {
    bounded(async {
        let emu = start(tenants_config()).await;
        let client = sagemaker(&emu, "ap-south-1", static_credentials("emulator"));
        assert!(listed_arns(&client).await.is_empty());
        let err = client
            .describe_compilation_job()
            .compilation_job_name("anything")
            .send()
            .await
            .expect_err("no jobs there");
        assert_eq!(err.code(), Some("ResourceNotFound"));
        // The region exists once called, and keeps what is created there.
        let created = client
            .create_compilation_job()
            .compilation_job_name("made-in-mumbai")
            .role_arn("arn:aws:iam::123456789012:role/neo")
            .input_config(
                aws_sdk_sagemaker::types::InputConfig::builder()
                    .s3_uri("s3://bucket/model.tar.gz")
                    .framework(aws_sdk_sagemaker::types::Framework::Pytorch)
                    .data_input_config(r#"{"input0":[1,3,224,224]}"#)
                    .build(),
            )
            .output_config(
                aws_sdk_sagemaker::types::OutputConfig::builder()
                    .s3_output_location("s3://bucket/out")
                    .target_device(aws_sdk_sagemaker::types::TargetDevice::MlC5)
                    .build(),
            )
            .stopping_condition(
                aws_sdk_sagemaker::types::StoppingCondition::builder()
                    .max_runtime_in_seconds(900)
                    .build(),
            )
            .send()
            .await
            .expect("created");
        assert_eq!(
            created.compilation_job_arn(),
            Some("arn:aws:sagemaker:ap-south-1:123456789012:compilation-job/made-in-mumbai")
        );
        assert_eq!(listed_arns(&client).await.len(), 1);
        assert_eq!(arns_of(&partition(&emu, HOME, "ap-south-1")).len(), 1);
        // Nothing leaked into the configured partitions.
        assert_eq!(arns_of(emu.state()).len(), 12);
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn assume_role_gives_credentials_for_the_roles_account() {
    bounded(async {
        let emu = start(tenants_config()).await;
        let provider = assume_role_provider(&emu, READER_ROLE, Some(EXTERNAL_ID)).await;
        let credentials = provider.provide_credentials().await.expect("role assumed");
        assert!(
            credentials.access_key_id().starts_with("EMU210987654321"),
            "{}",
            credentials.access_key_id()
        );
        assert!(credentials.session_token().is_some());
        let expiry = credentials.expiry().expect("an expiry");
        let ahead = expiry
            .duration_since(SystemTime::now())
            .expect("expires in the future");
        assert!(ahead > Duration::from_secs(3000) && ahead <= Duration::from_secs(3600));
        assert_eq!(emu.identity_stats().assumed(READER_ROLE), 1);
        assert_eq!(emu.identity_stats().calls("AssumeRole"), 1);

        // Those credentials read OTHER's jobs in the region the client signs.
        let other = sagemaker(&emu, "us-west-2", provider);
        let arns = listed_arns(&other).await;
        assert_eq!(arns, arns_of(&partition(&emu, OTHER, "us-west-2")));
        assert_eq!(arns.len(), 7);
        assert!(arns.iter().all(|a| a.contains(":us-west-2:210987654321:")));
        // ...while the static credentials still read the home account.
        let home = sagemaker(&emu, "us-west-2", static_credentials("emulator"));
        assert!(
            listed_arns(&home).await.is_empty(),
            "HOME has no us-west-2 jobs"
        );

        // GetCallerIdentity names the assumed role's account and session.
        let auth = authorization(credentials.access_key_id(), "us-east-1", "sts");
        let token = credentials.session_token().expect("token");
        let (status, headers, body) = http(
            emu.local_addr(),
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &auth),
                ("X-Amz-Security-Token", token),
            ],
            "Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "content-type"), Some("text/xml"));
        assert!(body.contains("<GetCallerIdentityResponse"), "{body}");
        assert_eq!(xml_text(&body, "Account"), Some(OTHER));
        assert_eq!(
            xml_text(&body, "Arn"),
            Some("arn:aws:sts::210987654321:assumed-role/flight-reader/tenants-test")
        );
        // And the static credentials are the home account's user.
        let auth = authorization("emulator", "us-east-1", "sts");
        let (_, _, body) = http(
            emu.local_addr(),
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &auth),
            ],
            "Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
        assert_eq!(xml_text(&body, "Account"), Some(HOME));
        assert_eq!(emu.identity_stats().calls("GetCallerIdentity"), 2);
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_wrong_or_missing_external_id_or_an_unknown_role_is_denied() {
    bounded(async {
        let emu = start(tenants_config()).await;
        for (role, external_id) in [
            (READER_ROLE, Some("wrong-id")),
            (READER_ROLE, None),
            ("arn:aws:iam::210987654321:role/not-configured", Some(EXTERNAL_ID)),
        ] {
            let provider = assume_role_provider(&emu, role, external_id).await;
            let err = provider
                .provide_credentials()
                .await
                .expect_err("access denied");
            let text = format!("{err:?}");
            assert!(text.contains("AccessDenied"), "{role} {external_id:?}: {text}");
        }
        let stats = emu.identity_stats();
        assert_eq!(stats.access_denied, 3);
        assert_eq!(stats.calls("AssumeRole"), 3);
        assert!(stats.roles_assumed.is_empty());

        // The error in STS's XML shape.
        let auth = authorization("emulator", "us-east-1", "sts");
        let role = READER_ROLE.replace(':', "%3A").replace('/', "%2F");
        let (status, headers, body) = http(emu.local_addr(),
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                ("Authorization", &auth),
            ],
            &format!(
                "Action=AssumeRole&Version=2011-06-15&RoleArn={role}&RoleSessionName=s1&ExternalId=nope"
            ),
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(header(&headers, "content-type"), Some("text/xml"));
        assert!(header(&headers, "x-amzn-requestid").is_some());
        assert!(body.starts_with("<ErrorResponse"), "{body}");
        assert_eq!(xml_text(&body, "Type"), Some("Sender"));
        assert_eq!(xml_text(&body, "Code"), Some("AccessDenied"));
        assert!(
            xml_text(&body, "Message").is_some_and(|m| m.contains("sts:AssumeRole")),
            "{body}"
        );
        assert!(xml_text(&body, "RequestId").is_some());

        // Bad input gets STS-shaped errors too.
        for (form, code) in [
            ("Action=AssumeRole&Version=2011-06-15", "ValidationError"),
            ("Action=GetSessionToken&Version=2011-06-15", "InvalidAction"),
            ("Action=AssumeRole&RoleArn=%zz", "MalformedQueryString"),
        ] {
            let (status, _, body) = http(emu.local_addr(),
                "POST",
                "/",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                form,
            )
            .await;
            assert_eq!(status, 400, "{form}");
            assert_eq!(xml_text(&body, "Code"), Some(code), "{form}: {body}");
        }
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn list_regions_reports_the_accounts_partitions_and_pages() {
    bounded(async {
        let emu = start(tenants_config()).await;
        let enabled_only = json!({"RegionOptStatusContains": ["ENABLED", "ENABLED_BY_DEFAULT"]});
        let (status, answer) = list_regions(&emu, "emulator", enabled_only.clone()).await;
        assert_eq!(status, 200, "{answer}");
        let by_default = |names: &[&str]| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| (n.to_string(), "ENABLED_BY_DEFAULT".to_string()))
                .collect()
        };
        assert_eq!(regions(&answer), by_default(&["eu-west-1", "us-east-1"]));
        assert!(answer.get("NextToken").is_none());
        // OTHER's key sees OTHER's regions.
        let (_, answer) = list_regions(&emu, "EMU21098765432100042", enabled_only).await;
        assert_eq!(regions(&answer), by_default(&["us-west-2"]));

        // Unfiltered, two a page: every region once, some disabled.
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let mut body = json!({"MaxResults": 2});
            if let Some(t) = token.take() {
                body["NextToken"] = Value::String(t);
            }
            let (status, page) = list_regions(&emu, "emulator", body).await;
            assert_eq!(status, 200, "{page}");
            assert!(regions(&page).len() <= 2);
            seen.extend(regions(&page));
            match page["NextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert!(token.is_none(), "paging ends");
        let disabled = seen.iter().filter(|(_, s)| s == "DISABLED").count();
        assert!(disabled >= 2, "{seen:?}");
        assert_eq!(seen.len(), 2 + disabled);
        let (status, only_disabled) = list_regions(
            &emu,
            "emulator",
            json!({"RegionOptStatusContains": ["DISABLED"]}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(regions(&only_disabled).len(), disabled);

        // Bad requests: restJson1 errors with the code in x-amzn-ErrorType.
        for bad in [
            json!({"MaxResults": 0}),
            json!({"RegionOptStatusContains": ["SOMETIMES"]}),
            json!({"NextToken": "not-a-token"}),
        ] {
            let (status, answer) = list_regions(&emu, "emulator", bad.clone()).await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(answer["__type"], "ValidationException", "{bad}");
        }
        let (status, answer) = list_regions(&emu, "emulator", json!("not an object")).await;
        assert_eq!(status, 400);
        assert_eq!(answer["__type"], "SerializationException");
        assert_eq!(
            emu.identity_stats().calls("ListRegions"),
            7 + seen.len().div_ceil(2) as u64
        );
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn faults_and_stats_are_per_partition() {
    bounded(async {
        let emu = start(tenants_config()).await;
        let other_key = "EMU21098765432100001";
        let other = sagemaker(&emu, "us-west-2", static_credentials(other_key));
        let home = sagemaker(&emu, "us-east-1", static_credentials("emulator"));
        partition(&emu, OTHER, "us-west-2").set_faults(1.0, 0.0);
        let err = other
            .list_compilation_jobs()
            .send()
            .await
            .expect_err("throttled");
        assert_eq!(err.code(), Some("ThrottlingException"));
        home.list_compilation_jobs()
            .send()
            .await
            .expect("home unaffected");

        let other_stats = partition(&emu, OTHER, "us-west-2").stats();
        assert_eq!(other_stats.operations["ListCompilationJobs"].throttled, 1);
        assert_eq!(
            emu.state().stats().operations["ListCompilationJobs"].throttled,
            0
        );
        assert_eq!(emu.state().stats().calls("ListCompilationJobs"), 1);

        // The stats endpoint names a partition by query; the default without.
        let (status, _, body) = http(
            emu.local_addr(),
            "GET",
            "/_emulator/stats?account=210987654321&region=us-west-2",
            &[],
            "",
        )
        .await;
        assert_eq!(status, 200);
        let over_http: Stats = serde_json::from_str(&body).expect("stats");
        assert_eq!(over_http.operations["ListCompilationJobs"].throttled, 1);
        let (_, _, body) = http(emu.local_addr(), "GET", "/_emulator/stats", &[], "").await;
        let default: Stats = serde_json::from_str(&body).expect("stats");
        assert_eq!(default.operations["ListCompilationJobs"].throttled, 0);
        let (status, _, _) = http(
            emu.local_addr(),
            "GET",
            "/_emulator/stats?account=999999999999&region=us-west-2",
            &[],
            "",
        )
        .await;
        assert_eq!(status, 404);

        // A named reset clears one partition; a bare reset clears them all.
        let (status, _, _) = http(
            emu.local_addr(),
            "POST",
            "/_emulator/reset?account=210987654321&region=us-west-2",
            &[],
            "",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            partition(&emu, OTHER, "us-west-2")
                .stats()
                .calls("ListCompilationJobs"),
            0
        );
        assert_eq!(emu.state().stats().calls("ListCompilationJobs"), 1);
        let (status, _, _) = http(emu.local_addr(), "POST", "/_emulator/reset", &[], "").await;
        assert_eq!(status, 200);
        assert_eq!(emu.state().stats().calls("ListCompilationJobs"), 0);

        // Vanish by partition.
        let name = partition(&emu, OTHER, "us-west-2").jobs()[0].describe["CompilationJobName"]
            .as_str()
            .expect("a name")
            .to_owned();
        let (status, _, _) = http(
            emu.local_addr(),
            "POST",
            "/_emulator/vanish?account=210987654321&region=us-west-2",
            &[],
            &json!({ "name": name }).to_string(),
        )
        .await;
        assert_eq!(status, 200);
        partition(&emu, OTHER, "us-west-2").set_faults(0.0, 0.0);
        let err = other
            .describe_compilation_job()
            .compilation_job_name(&name)
            .send()
            .await
            .expect_err("vanished");
        assert_eq!(err.code(), Some("ResourceNotFound"));

        let (_, _, body) = http(
            emu.local_addr(),
            "GET",
            "/_emulator/identity-stats",
            &[],
            "",
        )
        .await;
        let identity: Value = serde_json::from_str(&body).expect("identity stats");
        assert_eq!(identity["access_denied"], 0);
        emu.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_partitions_and_roles_are_refused_at_start() {
    for config in [
        EmulatorConfig {
            partitions: vec![EmulatorPartition::new("12345", "us-west-2")],
            ..EmulatorConfig::default()
        },
        EmulatorConfig {
            partitions: vec![EmulatorPartition::new(OTHER, "US West")],
            ..EmulatorConfig::default()
        },
        EmulatorConfig {
            roles: vec![EmulatorRole::new("arn:aws:iam::210987654321:user/bob")],
            ..EmulatorConfig::default()
        },
    ] {
        let err = Emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
