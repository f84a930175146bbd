//! The binary itself: `sagemaker-flight emulator` and `sagemaker-flight
//! serve --endpoint-url` as separate processes, found through the lines they
//! print on stdout, all on 127.0.0.1.

mod common;

use std::time::Duration;

use arrow_flight::{FlightClient, FlightDescriptor};
use common::binary::{Binary, Process};
use futures::{StreamExt, TryStreamExt};
use tonic::transport::Channel;

#[tokio::test]
async fn serve_reads_an_emulator_process_through_the_aws_credential_chain() {
    let (mut emulator, endpoint) = Binary::new(&[
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--jobs",
        "150",
        "--seed",
        "3",
    ])
    .discard_stderr()
    .start_one("emulator listening on ")
    .await;
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    let (mut server, url) = Binary::new(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--endpoint-url",
        &endpoint,
        "--concurrency",
        "4",
    ])
    .envs(&credentials)
    .discard_stderr()
    .start_one("listening on ")
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

    server.child.kill().await.expect("stop server");
    emulator.child.kill().await.expect("stop emulator");
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
    let output = Binary::new(&["emulator", "--throttle-rate", "2"])
        .output()
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a probability"), "{stderr}");
}

#[tokio::test]
async fn the_log_has_no_colour_codes_when_stderr_is_not_a_terminal() {
    let (server, _) = Binary::new(&["serve", "--demo", "--listen", "127.0.0.1:0"])
        .start_one("listening on ")
        .await;
    // Logged before the address is printed, so it is in by now.
    let log = server.stop_and_read_stderr().await;
    assert!(
        log.contains("demo: serving an in-process SageMaker emulator"),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
}

#[tokio::test]
async fn a_listener_that_cannot_bind_names_itself() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    for flag in ["--listen", "--metrics-listen"] {
        let mut args = vec!["serve", "--demo", flag, &address];
        if flag == "--metrics-listen" {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let output = Binary::new(&args).output().await;
        assert!(!output.status.success(), "{flag} {address} was taken");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on {address} ({flag})")),
            "{stderr}"
        );
    }
}

/// `serve --demo` with `extra` flags; the process and a Flight client.
async fn start_demo(extra: &[&str]) -> (Process, FlightClient, String) {
    let mut args = vec!["serve", "--demo", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (server, url) = Binary::new(&args)
        .discard_stderr()
        .start_one("listening on ")
        .await;
    let address = url.replace("grpc://", "http://");
    let channel = Channel::from_shared(address.clone())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (server, FlightClient::new(channel), address)
}

/// Sends SIGTERM to `server` with kill(1).
fn sigterm(server: &Process) {
    let pid = server
        .child
        .id()
        .expect("the process is running")
        .to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid}");
}

/// Polls (every 20 ms, at most 2 s) until a connection to `address`
/// (`http://host:port`) is refused.
async fn refuses_connections(address: &str) -> bool {
    let host = address.trim_start_matches("http://").to_owned();
    let start = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while start.elapsed() < Duration::from_secs(2) {
        tick.tick().await;
        if tokio::net::TcpStream::connect(&host).await.is_err() {
            return true;
        }
    }
    false
}

/// The ticket of the whole table.
async fn table_ticket(client: &mut FlightClient) -> arrow_flight::Ticket {
    let info = client
        .get_flight_info(FlightDescriptor::new_path(vec![
            "aws.sagemaker_compilation_job".into(),
        ]))
        .await
        .expect("flight info");
    info.endpoint[0].ticket.clone().expect("ticket")
}

#[tokio::test]
async fn sigterm_lets_a_running_query_finish_refuses_new_connections_and_exits_0() {
    // 2000 jobs at 20 ms, 16 at a time: a few seconds of scan.
    let (mut server, mut client, address) = start_demo(&[
        "--demo-jobs",
        "2000",
        "--demo-latency-ms",
        "20",
        "--shutdown-grace",
        "30",
    ])
    .await;
    let ticket = table_ticket(&mut client).await;
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let first = stream.next().await.expect("a batch").expect("rows");
    let mut rows = first.num_rows();
    assert!(rows < 2000, "the query was still running");
    sigterm(&server);
    assert!(
        refuses_connections(&address).await,
        "new connections are refused after SIGTERM"
    );
    while let Some(batch) = stream.next().await {
        rows += batch.expect("rows after SIGTERM").num_rows();
    }
    assert_eq!(rows, 2000, "the running query finished");
    drop(stream);
    drop(client);
    let status = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("the server exits soon after its last query")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test]
async fn sigterm_cancels_queries_still_running_after_the_grace_and_exits_0() {
    // 3000 jobs at 50 ms, 16 at a time: about ten seconds of scan; 1 s grace.
    let (mut server, mut client, _) = start_demo(&[
        "--demo-jobs",
        "3000",
        "--demo-latency-ms",
        "50",
        "--shutdown-grace",
        "1",
    ])
    .await;
    let ticket = table_ticket(&mut client).await;
    let mut stream = client.do_get(ticket).await.expect("do_get");
    stream.next().await.expect("a batch").expect("rows");
    let start = std::time::Instant::now();
    sigterm(&server);
    let status = loop {
        match stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(arrow_flight::error::FlightError::Tonic(status))) => break status,
            other => panic!("expected a status, got {other:?}"),
        }
    };
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // The grace (1 s), then at most 2 s for the connections to close.
    let exit = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
        .await
        .expect("the server exits within grace + margin")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    eprintln!("SIGTERM with a 1 s grace: exited 0 after {took:?}");
}
