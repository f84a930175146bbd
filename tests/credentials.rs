//! AWS credentials at start-up, through the binary against the `emulator`
//! subcommand on 127.0.0.1: without any, `serve --endpoint-url` stops at
//! once with one line saying so; with `--allow-missing-credentials` it
//! starts and a query fails with UNAUTHENTICATED after one attempt (no
//! retries, counted in the metrics); with dummy credentials it reads the
//! emulator. No instance metadata lookup (binary.rs disables it).

mod common;

use std::time::Duration;

use common::binary::{Binary, Process};

const COUNT: &str = "SELECT count(*) AS n FROM aws.sagemaker_compilation_job";
const DEADLINE: Duration = Duration::from_secs(60);

/// No credentials anywhere the chain looks (instance metadata is turned
/// off by binary.rs), and no shared config or credentials files (HOME
/// points nowhere).
const NO_CREDENTIALS: [&str; 10] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
];
const NO_FILES: [(&str, &str); 2] = [
    ("AWS_REGION", "us-east-1"),
    ("HOME", "/nonexistent-home-of-the-credentials-test"),
];

async fn emulator() -> (Process, String) {
    Binary::new(&["emulator", "--listen", "127.0.0.1:0", "--jobs", "12"])
        .start_one("emulator listening on ")
        .await
}

fn serve(endpoint: &str, extra: &[&str]) -> Binary {
    let args = [
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--endpoint-url",
            endpoint,
            "--metrics-listen",
            "127.0.0.1:0",
        ][..],
        extra,
    ]
    .concat();
    Binary::new(&args)
        .env_remove(&NO_CREDENTIALS)
        .envs(&NO_FILES)
        .deadline(DEADLINE)
}

async fn query(url: &str) -> std::process::Output {
    Binary::new(&["query", COUNT, "--format", "csv", "--server", url])
        .deadline(DEADLINE)
        .output()
        .await
}

/// The text `/metrics` answers at the metrics URL `url`.
async fn metrics(url: &str) -> String {
    let address = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|host| host.parse().ok())
        .unwrap_or_else(|| panic!("a metrics URL: {url}"));
    let (_, _, body) = common::http(address, "GET", "/metrics", &[], "").await;
    body
}

/// The value of the metric line starting with `series`.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} in:\n{metrics}"))
}

#[tokio::test]
async fn without_credentials_serve_stops_at_once_with_one_line() {
    let (emulator, endpoint) = emulator().await;
    let output = serve(&endpoint, &[]).output().await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("sagemaker-flight: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for needed in [
        "no AWS credentials found",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "--allow-missing-credentials",
    ] {
        assert!(lines[0].contains(needed), "{needed}: {stderr}");
    }
    // One clear line, not kilobytes of warnings.
    assert!(stderr.len() < 2048, "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    emulator.stop().await;
}

#[tokio::test]
async fn allowed_to_start_without_credentials_a_query_fails_unauthenticated_without_retries() {
    let (emulator, endpoint) = emulator().await;
    let (server, found) = serve(&endpoint, &["--allow-missing-credentials"])
        .start(&[
            "sagemaker-flight metrics on ",
            "sagemaker-flight listening on ",
        ])
        .await;
    let (metrics_url, url) = (&found[0], &found[1]);
    let output = query(url).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    // The client's hint at its own credentials would mislead here.
    assert!(!stderr.contains("--token-file"), "{stderr}");
    let metrics = metrics(metrics_url).await;
    let partition = "account=\"\",region=\"\"";
    let list = "operation=\"ListCompilationJobs\"";
    assert_eq!(
        value(
            &metrics,
            &format!(
                "sagemaker_flight_sagemaker_calls_total{{{list},outcome=\"no_credentials\",{partition}}}"
            )
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            &format!("sagemaker_flight_sagemaker_retries_total{{{list},{partition}}}")
        ),
        0.0
    );
    server.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn with_dummy_credentials_serve_reads_the_emulator() {
    let (emulator, endpoint) = emulator().await;
    let (server, url) = serve(&endpoint, &[])
        .envs(&[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ])
        .start_one("sagemaker-flight listening on ")
        .await;
    let output = query(&url).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "n\n12\n");
    server.stop().await;
    emulator.stop().await;
}
