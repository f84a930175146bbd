//! The binary itself: `sagemaker-flight emulator` and `sagemaker-flight
//! serve --endpoint-url` as separate processes, found through the lines they
//! print on stdout, all on 127.0.0.1.

use std::process::Stdio;
use std::time::Duration;

use arrow_flight::{FlightClient, FlightDescriptor};
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_sagemaker-flight");

/// Starts the binary and returns it with the address printed after `marker`.
async fn start(args: &[&str], envs: &[(&str, &str)], marker: &str) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(args)
        .envs(envs.iter().copied())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(rest) = line.split(marker).nth(1) {
                return rest.trim().to_owned();
            }
        }
        panic!("{args:?} exited without printing {marker:?}");
    })
    .await
    .expect("the process reports its address in time");
    (child, address)
}

#[tokio::test]
async fn serve_reads_an_emulator_process_through_the_aws_credential_chain() {
    let (mut emulator, endpoint) = start(
        &[
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--jobs",
            "150",
            "--seed",
            "3",
        ],
        &[],
        "emulator listening on ",
    )
    .await;
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    let (mut server, url) = start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--endpoint-url",
            &endpoint,
            "--concurrency",
            "4",
        ],
        &credentials,
        "listening on ",
    )
    .await;
    let address = url.replace("grpc://", "http://");
    let channel = Channel::from_shared(address)
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = FlightClient::new(channel);
    let info = client
        .get_flight_info(FlightDescriptor::new_path(vec![
            "aws.sagemaker_compilation_job".into(),
        ]))
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<_> = client
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("rows");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 150);

    // The emulator's counters are visible over HTTP.
    let stats: serde_json::Value = http_get_json(&format!("{endpoint}/_emulator/stats")).await;
    assert_eq!(stats["operations"]["DescribeCompilationJob"]["calls"], 150);
    assert_eq!(stats["operations"]["ListCompilationJobs"]["calls"], 2);

    server.kill().await.expect("stop server");
    emulator.kill().await.expect("stop emulator");
}

/// A minimal HTTP/1.1 GET on loopback, enough for the emulator's stats.
async fn http_get_json(url: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (_, body) = response.split_once("\r\n\r\n").expect("a body");
    serde_json::from_str(body).expect("JSON stats")
}

#[tokio::test]
async fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(BINARY)
        .args(["emulator", "--throttle-rate", "2"])
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a probability"), "{stderr}");
}
