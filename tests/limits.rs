//! Limits, cancellation, health and graceful shutdown, end to end: a real
//! Flight client, the real server, the SageMaker emulator behind it, all on
//! 127.0.0.1. Every wait is bounded; none is a bare sleep standing in for
//! synchronisation.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::error::FlightError;
use arrow_flight::sql::{ActionCancelQueryRequest, ActionCancelQueryResult, ProstMessageExt};
use arrow_flight::{
    CancelFlightInfoRequest, CancelStatus, FlightClient, FlightDescriptor, FlightInfo, Ticket,
};
use common::{TestServer, emulator_config, quick_retries};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use sagemaker_emulator::{Emulator, Stats};
use sagemaker_flight::flight::Limits;
use sagemaker_flight::server::grace::serve_with_grace;
use sagemaker_flight::server::health::FLIGHT_SERVICE;
use sagemaker_flight::server::{ServeError, flight_service, serve};
use sagemaker_flight::source::{SageMakerSource, emulator_client};
use sagemaker_flight::table::TableOptions;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SELECT_ALL: &str = "SELECT * FROM aws.sagemaker_compilation_job";

/// The ticket of `sql`, sent as a plain-text command.
async fn ticket_of(client: &mut FlightClient, sql: &str) -> Ticket {
    let info = client
        .get_flight_info(FlightDescriptor::new_cmd(sql.to_owned()))
        .await
        .expect("flight info");
    info.endpoint[0].ticket.clone().expect("ticket")
}

/// Calls received per operation.
fn calls(stats: &Stats) -> Vec<(String, u64)> {
    stats
        .operations
        .iter()
        .map(|(name, op)| (name.clone(), op.calls))
        .collect()
}

/// Whether no operation has a call in flight.
fn idle(stats: &Stats) -> bool {
    stats.in_flight == 0 && stats.operations.values().all(|op| op.in_flight == 0)
}

/// Polls the emulator every 20 ms until no call is in flight; how long
/// that took, or `None` if it did not happen within `within`.
async fn time_to_idle(emulator: &Emulator, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while start.elapsed() <= within {
        tick.tick().await;
        if idle(&emulator.state().stats()) {
            return Some(start.elapsed());
        }
    }
    None
}

/// After the emulator went idle: no call starts during `window`. Waiting
/// here is the point (nothing may happen), so it is a bounded wait, several
/// emulator latencies long, polled so that a new call fails the test as
/// soon as it shows.
async fn assert_no_new_calls(emulator: &Emulator, window: Duration) {
    let before = emulator.state().stats();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while start.elapsed() < window {
        tick.tick().await;
        let now = emulator.state().stats();
        assert_eq!(
            calls(&now),
            calls(&before),
            "a SageMaker call started {:?} after the work should have stopped",
            start.elapsed()
        );
        assert!(idle(&now), "a call is in flight: {now:?}");
    }
}

/// 3,000 jobs at 50 ms a call, read 16 calls at a time in 4 windows: a
/// scan that is still calling when its client gives up.
async fn slow_server() -> TestServer {
    let mut config = emulator_config(3000);
    config.latency = Duration::from_millis(50);
    TestServer::builder(config)
        .concurrency(16)
        .retry(quick_retries(3))
        .list_windows(4)
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_stream_stops_its_sagemaker_calls_within_a_second() {
    let server = slow_server().await;
    let mut client = server.client().await;
    let ticket = ticket_of(&mut client, SELECT_ALL).await;
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let first = stream.next().await.expect("a first batch").expect("rows");
    assert!(first.num_rows() > 0);
    let busy = server.emulator.state().stats();
    assert!(
        busy.calls("DescribeCompilationJob") < 3000,
        "the scan was still running: {busy:?}"
    );
    assert!(busy.in_flight > 0, "calls were in flight: {busy:?}");

    drop(stream);
    drop(client);
    let took = time_to_idle(&server.emulator, Duration::from_secs(1))
        .await
        .unwrap_or_else(|| {
            panic!(
                "calls still in flight a second after the client went away: {:?}",
                server.emulator.state().stats()
            )
        });
    eprintln!("cancellation: no call in flight {took:?} after the stream was dropped");
    assert_no_new_calls(&server.emulator, Duration::from_millis(300)).await;
    let done = server.emulator.state().stats();
    assert!(
        done.calls("DescribeCompilationJob") < 2000,
        "the scan stopped early, not after most jobs: {done:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_aggregate_stops_datafusions_tasks_and_their_calls() {
    // GROUP BY sends nothing before the scan ends: the client gives up
    // while DataFusion's aggregation (and its spawned tasks) still reads.
    let server = slow_server().await;
    let mut client = server.client().await;
    let sql = "SELECT compilation_job_status, tags['team'] AS team, count(*) \
               FROM aws.sagemaker_compilation_job GROUP BY 1, 2 ORDER BY 1, 2";
    let ticket = ticket_of(&mut client, sql).await;
    let stream = client.do_get(ticket).await.expect("do_get");
    let describing = wait_for(Duration::from_secs(5), || {
        server.emulator.state().stats().calls("ListTags") >= 32
    })
    .await;
    assert!(describing, "the scan started");
    drop(stream);
    drop(client);
    let took = time_to_idle(&server.emulator, Duration::from_secs(1))
        .await
        .expect("no call in flight within a second of the cancel");
    eprintln!("cancelled aggregate: idle {took:?} after the cancel");
    assert_no_new_calls(&server.emulator, Duration::from_millis(300)).await;
    assert!(server.emulator.state().stats().calls("ListTags") < 2000);
    server.stop().await;
}

/// Polls `condition` every 20 ms until it holds (`true`) or `within` passes.
async fn wait_for(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while start.elapsed() <= within {
        tick.tick().await;
        if condition() {
            return true;
        }
    }
    false
}

/// An emulator, and a Flight server on it under `limits`, stopped through
/// [`serve_with_grace`] as the binary stops on SIGTERM.
struct LimitedServer {
    emulator: Emulator,
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl LimitedServer {
    async fn start(jobs: usize, latency_ms: u64, limits: Limits) -> LimitedServer {
        let mut config = emulator_config(jobs);
        config.latency = Duration::from_millis(latency_ms);
        let emulator = Emulator::start(config, ([127, 0, 0, 1], 0).into())
            .await
            .expect("emulator starts");
        let client = emulator_client(&emulator.endpoint_url(), "us-east-1");
        let source =
            Arc::new(SageMakerSource::new(client, 16, quick_retries(3)).with_list_windows(4));
        let service = flight_service(source, TableOptions::default(), &limits).expect("service");
        let governor = service.governor().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (shutdown, on_shutdown) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = on_shutdown.await;
            };
            serve_with_grace(shutdown, limits.shutdown_grace, &governor, |signal| {
                serve(listener, service, signal)
            })
            .await
        });
        LimitedServer {
            emulator,
            address,
            shutdown: Some(shutdown),
            task,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    async fn client(&self) -> FlightClient {
        FlightClient::new(self.channel().await)
    }

    /// Starts the shutdown (as SIGTERM does).
    fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and waits (at most `within`) for the server to stop;
    /// how long that took.
    async fn stop_within(mut self, within: Duration) -> Duration {
        let start = Instant::now();
        self.begin_shutdown();
        tokio::time::timeout(within, &mut self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task")
            .expect("the server stops cleanly");
        let took = start.elapsed();
        self.emulator.shutdown().await;
        took
    }
}

fn limits(configure: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    configure(&mut limits);
    limits
}

fn status_of(error: FlightError) -> tonic::Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

/// Reads a whole stream: its rows, or the status it ended with.
async fn read_all(client: &mut FlightClient, ticket: Ticket) -> Result<usize, tonic::Status> {
    let stream = client.do_get(ticket).await.map_err(status_of)?;
    let batches: Vec<_> = stream.try_collect().await.map_err(status_of)?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_past_the_timeout_ends_with_deadline_exceeded_and_its_calls_stop() {
    // 3000 jobs at 50 ms, 16 at a time: the scan needs about 10 s.
    let server = LimitedServer::start(
        3000,
        50,
        limits(|l| l.query_timeout = Some(Duration::from_secs(1))),
    )
    .await;
    let mut client = server.client().await;
    let ticket = ticket_of(&mut client, SELECT_ALL).await;
    let start = Instant::now();
    let status = read_all(&mut client, ticket)
        .await
        .expect_err("the query times out");
    let took = start.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("--query-timeout"), "{status:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "ended after {took:?}"
    );
    let idle_after = time_to_idle(&server.emulator, Duration::from_secs(1))
        .await
        .expect("the calls end within a second of the timeout");
    eprintln!("timeout: the stream ended after {took:?}, calls {idle_after:?} later");
    assert_no_new_calls(&server.emulator, Duration::from_millis(300)).await;
    let stats = server.emulator.state().stats();
    assert!(stats.calls("DescribeCompilationJob") < 2000, "{stats:?}");

    // The server goes on: a short query in time works.
    let ticket = ticket_of(
        &mut client,
        "SELECT compilation_job_name FROM aws.sagemaker_compilation_job LIMIT 3",
    )
    .await;
    assert_eq!(read_all(&mut client, ticket).await.expect("rows"), 3);
    server.stop_within(Duration::from_secs(5)).await;
}

/// Polls (every 20 ms, at most 2 s) until `ticket` is admitted; its rows
/// and how long that took.
async fn read_when_admitted(client: &mut FlightClient, ticket: &Ticket) -> (usize, Duration) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        match read_all(client, ticket.clone()).await {
            Ok(rows) => return (rows, start.elapsed()),
            Err(status) if status.code() == Code::ResourceExhausted => assert!(
                start.elapsed() < Duration::from_secs(2),
                "no place came back: {status:?}"
            ),
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_beyond_the_maximum_are_refused_until_one_ends_or_is_dropped() {
    // 3000 jobs at 20 ms: SELECT * takes seconds; the names alone (listing
    // only) a fraction of one.
    let server = LimitedServer::start(3000, 20, limits(|l| l.max_concurrent_queries = 2)).await;
    let mut client = server.client().await;
    let slow = ticket_of(&mut client, SELECT_ALL).await;
    let quick = ticket_of(
        &mut client,
        "SELECT compilation_job_name FROM aws.sagemaker_compilation_job",
    )
    .await;

    // Two slow streams run (each has sent a batch); a third is refused.
    let mut first = client.do_get(slow.clone()).await.expect("first");
    let mut other = server.client().await;
    let mut second = other.do_get(slow.clone()).await.expect("second");
    for stream in [&mut first, &mut second] {
        stream.next().await.expect("a batch").expect("rows");
    }
    let mut third = server.client().await;
    let refused = read_all(&mut third, quick.clone())
        .await
        .expect_err("a third query is refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("too many queries")
            && refused.message().contains("--max-concurrent-queries"),
        "a clear message: {refused:?}"
    );

    // The second is dropped: its place comes back once the server hears
    // of it (across the network, so polled).
    drop(second);
    drop(other);
    let (rows, took) = read_when_admitted(&mut third, &quick).await;
    assert_eq!(rows, 3000);
    eprintln!("max concurrent queries: after the drop, admitted and read within {took:?}");

    // That query ended; had it kept its place, this one (beside the
    // first, still running) would be refused.
    assert_eq!(
        read_all(&mut third, quick.clone()).await.expect("admitted"),
        3000
    );

    // And the count is right: one more slow stream fills the server again.
    let mut fourth = server.client().await;
    let mut running = fourth.do_get(slow.clone()).await.expect("fourth");
    running.next().await.expect("a batch").expect("rows");
    let refused = read_all(&mut third, quick.clone())
        .await
        .expect_err("full again");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    drop((first, running));
    server.stop_within(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_over_the_memory_limit_fails_with_resource_exhausted_and_the_server_goes_on() {
    // 256 KiB for all operators: far less than 1000 jobs' rows.
    let server = LimitedServer::start(1000, 0, limits(|l| l.memory_limit = Some(256 * 1024))).await;
    let mut client = server.client().await;
    for sql in [
        "SELECT * FROM aws.sagemaker_compilation_job ORDER BY compilation_job_name",
        "SELECT compilation_job_name, input_config, output_config, tags['team'], count(*) \
         FROM aws.sagemaker_compilation_job GROUP BY 1, 2, 3, 4",
    ] {
        let ticket = ticket_of(&mut client, sql).await;
        let status = read_all(&mut client, ticket)
            .await
            .expect_err("over the memory limit");
        assert_eq!(status.code(), Code::ResourceExhausted, "{sql}: {status:?}");
        assert!(status.message().contains("--memory-limit"), "{status:?}");
        eprintln!("memory limit: {}", status.message());
    }
    // The server keeps serving: a query that fits works.
    let ticket = ticket_of(
        &mut client,
        "SELECT compilation_job_status, count(*) FROM aws.sagemaker_compilation_job GROUP BY 1",
    )
    .await;
    assert!(read_all(&mut client, ticket).await.expect("rows") > 0);
    let ticket = ticket_of(&mut client, SELECT_ALL).await;
    assert_eq!(read_all(&mut client, ticket).await.expect("rows"), 1000);
    server.stop_within(Duration::from_secs(5)).await;
}

async fn health_of(client: &mut HealthClient<Channel>, service: &str) -> i32 {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("check")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_is_serving_until_shutdown_starts_then_not_serving() {
    // A grace far longer than the test: the open Watch streams must not
    // hold the shutdown.
    let mut server = LimitedServer::start(
        10,
        0,
        limits(|l| l.shutdown_grace = Duration::from_secs(60)),
    )
    .await;
    let mut health = HealthClient::new(server.channel().await);
    let serving = ServingStatus::Serving as i32;
    assert_eq!(health_of(&mut health, "").await, serving);
    assert_eq!(health_of(&mut health, FLIGHT_SERVICE).await, serving);
    assert_eq!(FLIGHT_SERVICE, "arrow.flight.protocol.FlightService");
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(unknown.code(), Code::NotFound);

    let mut watches = Vec::new();
    for service in ["", FLIGHT_SERVICE] {
        let mut watch = health
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("watch")
            .into_inner();
        let first = watch.message().await.expect("a status").expect("one");
        assert_eq!(first.status, serving, "{service:?}");
        watches.push(watch);
    }

    let start = Instant::now();
    server.begin_shutdown();
    for mut watch in watches {
        let update = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("an update in time")
            .expect("a status")
            .expect("one");
        assert_eq!(update.status, ServingStatus::NotServing as i32);
        let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .expect("the watch ends in time");
        assert!(matches!(end, Ok(None)), "the watch ends: {end:?}");
    }
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("the server stops without waiting out the grace")
        .expect("task")
        .expect("clean stop");
    eprintln!(
        "health: NOT_SERVING and stopped {:?} after the shutdown",
        start.elapsed()
    );
    // Stopped: new connections are refused.
    assert!(
        tokio::net::TcpStream::connect(server.address)
            .await
            .is_err()
    );
    server.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_shutdown_a_running_stream_finishes_within_the_grace() {
    // 800 jobs at 20 ms, 16 at a time: about a second of scan.
    let mut server = LimitedServer::start(
        800,
        20,
        limits(|l| l.shutdown_grace = Duration::from_secs(20)),
    )
    .await;
    let mut client = server.client().await;
    let ticket = ticket_of(&mut client, SELECT_ALL).await;
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let mut rows = stream
        .next()
        .await
        .expect("a batch")
        .expect("rows")
        .num_rows();
    server.begin_shutdown();
    // Stops accepting at once...
    let refused = wait_for(Duration::from_secs(2), || {
        std::net::TcpStream::connect_timeout(&server.address, Duration::from_millis(100)).is_err()
    })
    .await;
    assert!(refused, "new connections are refused once shutdown starts");
    // ...while the running stream goes on to its end.
    while let Some(batch) = stream.next().await {
        rows += batch.expect("rows after the shutdown began").num_rows();
    }
    assert_eq!(rows, 800, "every row, though the shutdown began");
    drop(stream);
    drop(client);
    let took = server.stop_within(Duration::from_secs(5)).await;
    eprintln!("graceful: the server stopped {took:?} after its last stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_the_grace_running_streams_are_cancelled_and_the_server_stops() {
    // About 10 s of scan; a grace of 1 s.
    let mut server = LimitedServer::start(
        3000,
        50,
        limits(|l| l.shutdown_grace = Duration::from_secs(1)),
    )
    .await;
    let mut client = server.client().await;
    let ticket = ticket_of(&mut client, SELECT_ALL).await;
    let mut stream = client.do_get(ticket).await.expect("do_get");
    stream.next().await.expect("a batch").expect("rows");
    let start = Instant::now();
    server.begin_shutdown();
    let status = loop {
        match stream.next().await {
            Some(Ok(_)) => continue,
            Some(Err(error)) => break status_of(error),
            None => panic!("the stream ended without a status"),
        }
    };
    let cancelled_after = start.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    assert!(
        cancelled_after >= Duration::from_millis(900) && cancelled_after < Duration::from_secs(3),
        "cancelled {cancelled_after:?} after the shutdown began"
    );
    let idle = time_to_idle(&server.emulator, Duration::from_secs(1))
        .await
        .expect("calls end within a second of the cancel");
    assert_no_new_calls(&server.emulator, Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(4), &mut server.task)
        .await
        .expect("the server stops within grace + margin")
        .expect("task")
        .expect("clean stop");
    eprintln!(
        "grace over: stream cancelled {cancelled_after:?} after the shutdown, calls idle {idle:?} later, server stopped after {:?}",
        start.elapsed()
    );
    server.emulator.shutdown().await;
}

/// A TCP proxy on loopback that cuts a connection through it once no byte
/// has passed either way for `idle`, as a load balancer does; its address.
async fn idle_cutting_proxy(upstream: SocketAddr, idle: Duration) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut from_client, mut to_server) = (vec![0u8; 65536], vec![0u8; 65536]);
                loop {
                    tokio::select! {
                        read = client.read(&mut from_client) => match read {
                            Ok(n) if n > 0 => {
                                if server.write_all(&from_client[..n]).await.is_err() {
                                    break;
                                }
                            }
                            _ => break,
                        },
                        read = server.read(&mut to_server) => match read {
                            Ok(n) if n > 0 => {
                                if client.write_all(&to_server[..n]).await.is_err() {
                                    break;
                                }
                            }
                            _ => break,
                        },
                        // Idle for too long: both sides are dropped, closed.
                        () = tokio::time::sleep(idle) => break,
                    }
                }
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pings_carry_a_quiet_query_through_a_proxy_that_cuts_idle_connections() {
    // One job at 3 s a call: List, then Describe, before the first batch,
    // about 6 s without a byte of the answer; the proxy cuts after 2 s, and
    // pings every 250 ms leave room for a busy machine.
    for (keepalive, survives) in [(Some(Duration::from_millis(250)), true), (None, false)] {
        let server =
            LimitedServer::start(1, 3000, limits(|l| l.keepalive_interval = keepalive)).await;
        let proxy = idle_cutting_proxy(server.address, Duration::from_secs(2)).await;
        let channel = Channel::from_shared(format!("http://{proxy}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect through the proxy");
        let mut client = FlightClient::new(channel);
        let ticket = ticket_of(&mut client, SELECT_ALL).await;
        let read = async {
            let stream = client.do_get(ticket).await.map_err(|e| e.to_string())?;
            let batches: Vec<_> = stream.try_collect().await.map_err(|e| e.to_string())?;
            Ok::<usize, String>(batches.iter().map(|b| b.num_rows()).sum())
        };
        let read = tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("the read ends");
        match (survives, read) {
            (true, Ok(rows)) => assert_eq!(rows, 1),
            (false, Err(error)) => eprintln!("without pings the proxy cut the query: {error}"),
            (_, other) => panic!("keepalive {keepalive:?}: {other:?}"),
        }
        server.stop_within(Duration::from_secs(10)).await;
    }
}

/// Reads `stream` until it ends or fails (bounded by `within`): the status
/// it failed with, if it did.
async fn end_of(
    stream: arrow_flight::decode::FlightRecordBatchStream,
    within: Duration,
) -> Option<tonic::Status> {
    let ended = tokio::time::timeout(within, stream.try_collect::<Vec<_>>())
        .await
        .expect("the stream ended in time");
    ended.err().map(status_of)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_flight_info_stops_the_stream_and_its_calls_and_refuses_its_tickets() {
    let server = slow_server().await;
    let mut client = server.client().await;
    let info = client
        .get_flight_info(FlightDescriptor::new_cmd(SELECT_ALL.to_owned()))
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket.clone()).await.expect("do_get");
    let first = stream.next().await.expect("a first batch").expect("rows");
    assert!(first.num_rows() > 0);
    assert!(
        server.emulator.state().stats().in_flight > 0,
        "the scan runs"
    );

    // Another connection cancels it, as a tool's Cancel button does.
    let mut other = server.client().await;
    let result = other
        .cancel_flight_info(CancelFlightInfoRequest::new(info.clone()))
        .await
        .expect("cancel");
    assert_eq!(result.status, CancelStatus::Cancelled as i32);
    let status = end_of(stream, Duration::from_secs(5))
        .await
        .expect("an error");
    assert_eq!(status.code(), Code::Cancelled, "{status}");
    time_to_idle(&server.emulator, Duration::from_secs(1))
        .await
        .expect("no call in flight within a second of the cancel");
    assert_no_new_calls(&server.emulator, Duration::from_millis(300)).await;
    assert!(
        server
            .emulator
            .state()
            .stats()
            .calls("DescribeCompilationJob")
            < 2000
    );

    // Its tickets are cancelled for good; the same SQL planned again (by
    // another client, say) gets tickets of its own, and runs.
    let again = status_of(other.do_get(ticket).await.expect_err("a cancelled ticket"));
    assert_eq!(again.code(), Code::Cancelled, "{again}");
    let fresh = ticket_of(&mut other, SELECT_ALL).await;
    let mut rerun = other
        .do_get(fresh)
        .await
        .expect("the same SQL, planned again");
    assert!(rerun.next().await.expect("a batch").is_ok());
    drop(rerun);
    server.stop().await;
}

#[tokio::test]
async fn cancel_query_the_older_action_cancels_too_and_bad_infos_are_invalid() {
    let server = TestServer::builder(emulator_config(20)).start().await;
    let mut client = server.client().await;
    let info = client
        .get_flight_info(FlightDescriptor::new_cmd(SELECT_ALL.to_owned()))
        .await
        .expect("flight info");
    let request = ActionCancelQueryRequest {
        info: info.encode_to_vec().into(),
    };
    let action = arrow_flight::Action::new("CancelQuery", request.as_any().encode_to_vec());
    let results: Vec<_> = client
        .do_action(action)
        .await
        .expect("CancelQuery")
        .try_collect()
        .await
        .expect("results");
    let any = arrow_flight::sql::Any::decode(results[0].as_ref()).expect("an Any");
    let result: ActionCancelQueryResult = any.unpack().expect("unpack").expect("a result");
    // CancelResult's CANCELLED, numbered as CancelStatus's.
    assert_eq!(result.result, CancelStatus::Cancelled as i32);
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    assert!(client.do_get(ticket).await.is_err(), "cancelled");

    let no_endpoint = FlightInfo::new();
    let refused = client
        .cancel_flight_info(CancelFlightInfoRequest::new(no_endpoint))
        .await
        .expect_err("nothing to cancel");
    assert_eq!(status_of(refused).code(), Code::InvalidArgument);
    server.stop().await;
}
