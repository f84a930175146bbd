//! Many accounts and regions: the table is the union of every (account,
//! region) partition; filters on the account or the ARN's region call only
//! the partitions they name; GetFlightInfo gives one endpoint per partition,
//! spread over a fleet of instances; a slow or throttled region does not
//! hold back the others. One emulator serves every partition (its multi-tenant mode), and
//! the partitions are found the way `serve` finds them: STS for the default
//! credentials' account and for roles, the Account API for `--region all`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::{FlightClient, FlightDescriptor, FlightEndpoint, FlightInfo};
use common::{emulator_config, quick_retries, string_at};
use futures::TryStreamExt;
use sagemaker_emulator::{Emulator, EmulatorConfig, EmulatorPartition, EmulatorRole};
use sagemaker_flight::flight::Fleet;
use sagemaker_flight::flight::ticket::Statement;
use sagemaker_flight::source::accounts::{AccountsFile, partition_clients};
use sagemaker_flight::source::{Partition, PartitionKey, Partitions, RetryPolicy, SageMakerSource};
use sagemaker_flight::table::TableOptions;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The default credentials' account (the emulator's default).
const HOME: &str = "123456789012";
/// An account read through a role.
const OTHER: &str = "111122223333";
const ROLE: &str = "arn:aws:iam::111122223333:role/sagemaker-flight-reader";
const EXTERNAL_ID: &str = "shared-secret-1";
const REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];
const JOBS: usize = 30;

/// Two accounts in two regions each; the other account's role needs an
/// external id.
fn tenants() -> EmulatorConfig {
    EmulatorConfig {
        partitions: vec![
            EmulatorPartition::new(HOME, "eu-west-1"),
            EmulatorPartition::new(OTHER, "us-east-1"),
            EmulatorPartition::new(OTHER, "eu-west-1"),
        ],
        roles: vec![EmulatorRole::new(ROLE).with_external_id(EXTERNAL_ID)],
        ..emulator_config(JOBS)
    }
}

fn accounts_file(external_id: &str) -> AccountsFile {
    AccountsFile::parse(&format!(
        "[[account]]\nrole_arn = \"{ROLE}\"\nexternal_id = \"{external_id}\"\n"
    ))
    .expect("a valid accounts file")
}

/// The partitions `serve --region ... --accounts-file ...` would read from
/// `emulator`, each with its own source.
async fn partitions_of(emulator: &Emulator, regions: &[&str]) -> Partitions {
    partitions_retrying(emulator, regions, quick_retries(8)).await
}

/// [`partitions_of`], each source retrying by `retries`.
async fn partitions_retrying(
    emulator: &Emulator,
    regions: &[&str],
    retries: RetryPolicy,
) -> Partitions {
    let base = common::emulator_sdk_config(&emulator.endpoint_url(), "us-east-1").await;
    let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
    let clients = partition_clients(&base, &regions, Some(&accounts_file(EXTERNAL_ID)))
        .await
        .expect("the partitions are found");
    Partitions::new(
        clients
            .into_iter()
            .map(|partition| Partition {
                // The source first: it borrows the key.
                source: Arc::new(
                    SageMakerSource::new(partition.client, 8, retries).in_partition(&partition.key),
                ),
                key: partition.key,
            })
            .collect(),
    )
}

/// The emulator of [`tenants`].
async fn start_tenants() -> Emulator {
    Emulator::start(tenants(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator")
}

/// One instance, alone, over every partition of `emulator` in [`REGIONS`].
async fn serve_alone(emulator: &Emulator) -> Instance {
    Instance::serve(
        partitions_of(emulator, &REGIONS).await,
        loopback().await,
        Fleet::default(),
    )
    .await
}

/// A server in this process.
struct Instance {
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Instance {
    async fn serve(partitions: Partitions, listener: TcpListener, fleet: Fleet) -> Instance {
        Self::serve_table(partitions, listener, fleet, TableOptions::default()).await
    }

    async fn serve_table(
        partitions: Partitions,
        listener: TcpListener,
        fleet: Fleet,
        options: TableOptions,
    ) -> Instance {
        let address = listener.local_addr().expect("address");
        let service =
            sagemaker_flight::server::flight_service(partitions, options, &Default::default())
                .expect("service")
                .with_fleet(fleet);
        let (shutdown, on_shutdown) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            sagemaker_flight::server::serve(listener, service, async {
                let _ = on_shutdown.await;
            })
            .await
            .expect("server runs");
        });
        Instance {
            address,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn client(&self) -> FlightClient {
        connect(&format!("grpc://{}", self.address)).await
    }
}

async fn connect(location: &str) -> FlightClient {
    let uri = location.replacen("grpc://", "http://", 1);
    let channel = Channel::from_shared(uri)
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    FlightClient::new(channel)
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

async fn flight_info(client: &mut FlightClient, sql: &str) -> FlightInfo {
    client
        .get_flight_info(FlightDescriptor::new_cmd(sql.to_owned()))
        .await
        .expect("flight info")
}

async fn read_endpoint(client: &mut FlightClient, endpoint: &FlightEndpoint) -> Vec<RecordBatch> {
    let ticket = endpoint.ticket.clone().expect("a ticket");
    client
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("batches")
}

/// (account, region, name) of every row.
fn partition_rows(batches: &[RecordBatch]) -> BTreeSet<(String, String, String)> {
    batches
        .iter()
        .flat_map(|batch| {
            (0..batch.num_rows()).map(move |row| {
                let text = |name| string_at(batch, name, row).expect(name);
                let arn = text("compilation_job_arn");
                let region = arn.split(':').nth(3).expect("an ARN").to_owned();
                (text("account_id"), region, text("compilation_job_name"))
            })
        })
        .collect()
}

/// Calls each (account, region) of the emulator received, of every operation.
fn calls_by_partition(emulator: &Emulator) -> BTreeMap<(String, String), u64> {
    [HOME, OTHER]
        .iter()
        .flat_map(|account| REGIONS.iter().map(move |region| (*account, *region)))
        .map(|(account, region)| {
            let stats = emulator
                .partition(account, region)
                .expect("a configured partition")
                .stats();
            let calls = stats.operations.values().map(|op| op.calls).sum();
            ((account.to_owned(), region.to_owned()), calls)
        })
        .collect()
}

fn reset_stats(emulator: &Emulator) {
    for account in [HOME, OTHER] {
        for region in REGIONS {
            if let Some(partition) = emulator.partition(account, region) {
                partition.reset_stats();
            }
        }
    }
}

const SUMMARY_SQL: &str = "SELECT account_id, compilation_job_arn, compilation_job_name \
                           FROM aws.sagemaker_compilation_job";

#[tokio::test]
async fn the_table_is_the_union_of_every_account_and_region() {
    let emulator = start_tenants().await;
    let partitions = partitions_of(&emulator, &REGIONS).await;
    let keys: Vec<_> = partitions.all().iter().map(|p| p.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            "111122223333/eu-west-1",
            "111122223333/us-east-1",
            "123456789012/eu-west-1",
            "123456789012/us-east-1"
        ]
    );
    let server = Instance::serve(partitions, loopback().await, Fleet::default()).await;
    let mut client = server.client().await;
    // An aggregate cannot be split: one endpoint, on this server.
    let info = flight_info(
        &mut client,
        "SELECT account_id, split_part(compilation_job_arn, ':', 4) AS region, count(*) AS jobs \
         FROM aws.sagemaker_compilation_job GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    assert_eq!(info.endpoint.len(), 1);
    assert!(info.endpoint[0].location.is_empty());
    let batches = read_endpoint(&mut client, &info.endpoint[0]).await;
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    for (account, region) in [
        (OTHER, "eu-west-1"),
        (OTHER, "us-east-1"),
        (HOME, "eu-west-1"),
        (HOME, "us-east-1"),
    ] {
        assert!(
            text.contains(&format!("| {account} | {region} | {JOBS}")),
            "{account}/{region} in\n{text}"
        );
    }
    // Every partition's jobs are its own: the emulator's data, nothing twice.
    let info = flight_info(&mut client, SUMMARY_SQL).await;
    let mut rows = BTreeSet::new();
    let mut read = 0;
    for endpoint in &info.endpoint {
        let batches = read_endpoint(&mut client, endpoint).await;
        read += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        rows.extend(partition_rows(&batches));
    }
    assert_eq!(read, 4 * JOBS);
    assert_eq!(rows.len(), 4 * JOBS);
    let expected: BTreeSet<_> = [HOME, OTHER]
        .iter()
        .flat_map(|account| REGIONS.iter().map(move |region| (*account, *region)))
        .flat_map(|(account, region)| {
            emulator
                .partition(account, region)
                .expect("partition")
                .jobs()
                .into_iter()
                .map(move |job| {
                    let name = job.describe["CompilationJobName"].as_str().expect("a name");
                    (account.to_owned(), region.to_owned(), name.to_owned())
                })
        })
        .collect();
    assert_eq!(rows, expected);
    server.stop().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn filters_on_account_and_region_call_only_those_partitions() {
    let emulator = start_tenants().await;
    let server = serve_alone(&emulator).await;
    let mut client = server.client().await;
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (
            "account_id = '111122223333'",
            &[(OTHER, "eu-west-1"), (OTHER, "us-east-1")],
        ),
        (
            "split_part(compilation_job_arn, ':', 4) = 'eu-west-1'",
            &[(HOME, "eu-west-1"), (OTHER, "eu-west-1")],
        ),
        (
            "account_id = '123456789012' AND compilation_job_arn LIKE 'arn:aws:sagemaker:us-east-1:%'",
            &[(HOME, "us-east-1")],
        ),
        (
            "split_part(compilation_job_arn, ':', 4) IN ('us-east-1') AND account_id IN ('111122223333')",
            &[(OTHER, "us-east-1")],
        ),
        ("account_id = '999999999999'", &[]),
    ];
    for (filter, called) in cases {
        reset_stats(&emulator);
        let sql =
            format!("SELECT count(*) AS jobs FROM aws.sagemaker_compilation_job WHERE {filter}");
        let info = flight_info(&mut client, &sql).await;
        let batches = read_endpoint(&mut client, &info.endpoint[0]).await;
        let count = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        assert!(
            count.contains(&format!("| {} ", called.len() * JOBS)),
            "{filter}: {count}"
        );
        for ((account, region), calls) in calls_by_partition(&emulator) {
            let expected = called.contains(&(account.as_str(), region.as_str()));
            assert_eq!(
                calls > 0,
                expected,
                "{filter}: {account}/{region} had {calls} calls"
            );
        }
    }
    server.stop().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn explain_says_when_no_partition_can_match_and_no_call_is_made() {
    let emulator = start_tenants().await;
    let server = serve_alone(&emulator).await;
    let mut client = server.client().await;
    let explain = async |client: &mut FlightClient, filter: &str| {
        let sql = format!(
            "EXPLAIN SELECT compilation_job_name FROM aws.sagemaker_compilation_job WHERE {filter}"
        );
        let info = flight_info(client, &sql).await;
        let batches = read_endpoint(client, &info.endpoint[0]).await;
        arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string()
    };
    reset_stats(&emulator);
    let none = explain(&mut client, "account_id = '999999999999'").await;
    assert!(
        none.contains("SageMakerScanExec: calls=[], partitions=[] (no partition can match)"),
        "{none}"
    );
    let some = explain(&mut client, "account_id = '111122223333'").await;
    assert!(
        some.contains("SageMakerScanExec: calls=[ListCompilationJobs]"),
        "{some}"
    );
    let sql = "SELECT compilation_job_name FROM aws.sagemaker_compilation_job \
               WHERE account_id = '999999999999'";
    let info = flight_info(&mut client, sql).await;
    let mut rows = 0;
    for endpoint in &info.endpoint {
        rows += read_endpoint(&mut client, endpoint)
            .await
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>();
    }
    assert_eq!(rows, 0);
    assert!(
        calls_by_partition(&emulator)
            .values()
            .all(|calls| *calls == 0),
        "{:?}",
        calls_by_partition(&emulator)
    );
    server.stop().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_scan_has_one_endpoint_per_partition_it_calls() {
    let emulator = start_tenants().await;
    let server = serve_alone(&emulator).await;
    let mut client = server.client().await;
    // Each endpoint reads its own partition, and calls no other.
    let info = flight_info(
        &mut client,
        &format!("{SUMMARY_SQL} WHERE split_part(compilation_job_arn, ':', 4) = 'eu-west-1'"),
    )
    .await;
    assert_eq!(info.endpoint.len(), 2, "{info:?}");
    for endpoint in &info.endpoint {
        assert!(
            endpoint.location.is_empty(),
            "alone, no location: {endpoint:?}"
        );
        reset_stats(&emulator);
        let rows = partition_rows(&read_endpoint(&mut client, endpoint).await);
        let partitions: BTreeSet<_> = rows
            .iter()
            .map(|(a, r, _)| (a.clone(), r.clone()))
            .collect();
        assert_eq!(partitions.len(), 1, "{partitions:?}");
        assert_eq!(rows.len(), JOBS);
        let called: Vec<_> = calls_by_partition(&emulator)
            .into_iter()
            .filter(|(_, calls)| *calls > 0)
            .map(|(key, _)| key)
            .collect();
        assert_eq!(called, partitions.into_iter().collect::<Vec<_>>());
    }
    // The table's PATH descriptor is split the same way.
    let info = client
        .get_flight_info(FlightDescriptor::new_path(vec![
            "aws.sagemaker_compilation_job".into(),
        ]))
        .await
        .expect("flight info");
    assert_eq!(info.endpoint.len(), 4);
    // One partition left: one endpoint, the statement as it is.
    let info = flight_info(&mut client, &format!("{SUMMARY_SQL} WHERE account_id = '{OTHER}' AND split_part(compilation_job_arn, ':', 4) = 'us-east-1'")).await;
    assert_eq!(info.endpoint.len(), 1);
    // A LIMIT is not split.
    let info = flight_info(&mut client, &format!("{SUMMARY_SQL} LIMIT 5")).await;
    assert_eq!(info.endpoint.len(), 1);
    // A ticket for a partition this server does not read is refused.
    let foreign =
        Statement::new(SUMMARY_SQL).in_partition(&PartitionKey::new("444455556666", "us-east-1"));
    let Err(status) = client.do_get(foreign.to_ticket()).await else {
        panic!("a foreign partition's ticket was served");
    };
    assert!(
        status.to_string().contains("does not read partition"),
        "{status}"
    );
    server.stop().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn two_instances_share_the_partitions_through_endpoint_locations() {
    // Two emulators with the same data: which one is called tells which
    // instance did the work.
    let emulators = [start_tenants().await, start_tenants().await];
    let listeners = [loopback().await, loopback().await];
    let locations: Vec<String> = listeners
        .iter()
        .map(|l| format!("grpc://{}", l.local_addr().expect("address")))
        .collect();
    let mut instances = Vec::new();
    for (index, (listener, emulator)) in listeners.into_iter().zip(&emulators).enumerate() {
        let fleet = Fleet::new(locations[index].clone(), vec![locations[1 - index].clone()]);
        instances
            .push(Instance::serve(partitions_of(emulator, &REGIONS).await, listener, fleet).await);
    }
    for emulator in &emulators {
        reset_stats(emulator);
    }
    // Both instances give the same endpoints.
    let info = flight_info(&mut instances[0].client().await, SUMMARY_SQL).await;
    let other = flight_info(&mut instances[1].client().await, SUMMARY_SQL).await;
    let owners = |info: &FlightInfo| -> Vec<String> {
        info.endpoint
            .iter()
            .map(|e| e.location.first().expect("a location").uri.clone())
            .collect()
    };
    assert_eq!(info.endpoint.len(), 4);
    assert_eq!(owners(&info), owners(&other));
    let used: BTreeSet<_> = owners(&info).into_iter().collect();
    assert_eq!(used.len(), 2, "both instances own partitions: {used:?}");
    // A client following the locations reads every row once, and each
    // partition was read by its owner alone.
    let mut rows = BTreeSet::new();
    let mut read = 0;
    let mut owner_of = BTreeMap::new();
    for endpoint in &info.endpoint {
        let location = &endpoint.location[0].uri;
        let batches = read_endpoint(&mut connect(location).await, endpoint).await;
        read += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        let partition_rows = partition_rows(&batches);
        for (account, region, _) in &partition_rows {
            owner_of.insert((account.clone(), region.clone()), location.clone());
        }
        rows.extend(partition_rows);
    }
    assert_eq!(read, 4 * JOBS);
    assert_eq!(rows.len(), 4 * JOBS);
    for (index, emulator) in emulators.iter().enumerate() {
        for (key, calls) in calls_by_partition(emulator) {
            let owned_here = owner_of.get(&key) == Some(&locations[index]);
            assert_eq!(
                calls > 0,
                owned_here,
                "instance {index}, {key:?}: {calls} calls"
            );
        }
    }
    for instance in instances {
        instance.stop().await;
    }
    for emulator in emulators {
        emulator.shutdown().await;
    }
}

#[tokio::test]
async fn a_slow_region_does_not_hold_back_the_others() {
    let emulator = start_tenants().await;
    emulator
        .partition(HOME, "eu-west-1")
        .expect("partition")
        .set_latency(Duration::from_secs(3));
    let server = serve_alone(&emulator).await;
    let mut client = server.client().await;
    // One endpoint streaming every partition: an endpoint per partition
    // would read them separately anyway.
    let info = flight_info(&mut client, &format!("{SUMMARY_SQL} LIMIT 1000")).await;
    assert_eq!(info.endpoint.len(), 1);
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let mut order = Vec::new();
    while let Some(batch) = stream.try_next().await.expect("a batch") {
        for row in 0..batch.num_rows() {
            let arn = string_at(&batch, "compilation_job_arn", row).expect("an ARN");
            let fields: Vec<&str> = arn.split(':').collect();
            order.push(format!("{}/{}", fields[4], fields[3]));
        }
    }
    let slow = format!("{HOME}/eu-west-1");
    assert_eq!(order.len(), 4 * JOBS);
    let first_slow = order
        .iter()
        .position(|p| *p == slow)
        .expect("slow rows arrive");
    // The slow region's one page takes 3 s; the other three partitions'
    // pages are all streamed by then.
    assert_eq!(first_slow, 3 * JOBS, "{order:?}");
    server.stop().await;
    emulator.shutdown().await;
}

/// A throttled region retries (and paces) its own calls: the others get no
/// throttle and no extra call, and all their rows stream before it ends.
#[tokio::test]
async fn a_throttled_region_does_not_hold_back_the_others() {
    use sagemaker_flight::query::QueryEngine;

    let emulator = start_tenants().await;
    emulator
        .partition(HOME, "eu-west-1")
        .expect("partition")
        .set_faults(0.5, 0.0);
    // With 20 attempts a call throttled half the time fails for good about
    // once in a million: the query must succeed.
    let partitions = partitions_retrying(&emulator, &REGIONS, quick_retries(20)).await;
    let engine = QueryEngine::new(partitions, TableOptions::default()).expect("engine");
    // role_arn comes from Describe: one call per job, each may be throttled.
    let mut stream = engine
        .plan(
            "SELECT compilation_job_arn, role_arn FROM aws.sagemaker_compilation_job",
            None,
        )
        .await
        .expect("plans")
        .execute()
        .expect("runs");
    let mut order = Vec::new();
    while let Some(batch) = stream.try_next().await.expect("a batch") {
        for row in 0..batch.num_rows() {
            let arn = string_at(&batch, "compilation_job_arn", row).expect("an ARN");
            let fields: Vec<&str> = arn.split(':').collect();
            order.push((fields[4].to_owned(), fields[3].to_owned()));
            assert!(
                string_at(&batch, "role_arn", row).is_some(),
                "{arn}: no role"
            );
        }
    }
    assert_eq!(order.len(), 4 * JOBS);
    let throttled = (HOME.to_owned(), "eu-west-1".to_owned());
    let last_throttled = order.iter().rposition(|p| *p == throttled);
    let last_other = order.iter().rposition(|p| *p != throttled);
    assert!(
        last_other < last_throttled,
        "the throttled region ended first: {order:?}"
    );
    for ((account, region), calls) in calls_by_partition(&emulator) {
        let stats = emulator
            .partition(&account, &region)
            .expect("partition")
            .stats();
        let throttles: u64 = stats.operations.values().map(|op| op.throttled).sum();
        // Metrics name the partition of each throttle. They are the
        // process's, but no other test here is throttled.
        let counted = common::metric_sample(
            &common::metric_samples(&sagemaker_flight::obs::metrics::render()),
            &format!(
                "sagemaker_flight_sagemaker_calls_total{{operation=\"DescribeCompilationJob\",\
                 outcome=\"throttled\",account=\"{account}\",region=\"{region}\"}}"
            ),
        );
        assert_eq!(
            counted, stats.operations["DescribeCompilationJob"].throttled as f64,
            "{account}/{region}"
        );
        if (account.clone(), region.clone()) == throttled {
            assert!(throttles > 0, "{account}/{region}: never throttled");
            assert_eq!(calls, 1 + JOBS as u64 + throttles, "{account}/{region}");
        } else {
            assert_eq!(throttles, 0, "{account}/{region}");
            // One List page and a Describe per job: no retry.
            assert_eq!(calls, 1 + JOBS as u64, "{account}/{region}");
        }
    }
    emulator.shutdown().await;
}

/// A filter the scan does not answer exactly (an endpoint's partition, a
/// time bound) passes each batch on as the scan builds it: DataFusion's
/// filter would otherwise hold every row until the end of the scan.
#[tokio::test]
async fn filtered_rows_stream_before_the_scan_ends() {
    use sagemaker_flight::query::QueryEngine;

    let cases = [
        // An endpoint of a split scan, as a fleet member's DoGet plans it.
        (
            "SELECT compilation_job_arn, role_arn FROM aws.sagemaker_compilation_job",
            Some(PartitionKey::new(HOME, "eu-west-1")),
            JOBS,
        ),
        (
            "SELECT compilation_job_arn, role_arn FROM aws.sagemaker_compilation_job \
             WHERE creation_time > TIMESTAMP '2000-01-01T00:00:00Z'",
            None,
            3 * JOBS,
        ),
    ];
    for (sql, scope, jobs) in cases {
        let emulator = start_tenants().await;
        // Half a second a call, eight at a time per partition (role_arn
        // needs a Describe per job): the scan lasts seconds.
        let every_partition = || {
            [
                (HOME, "eu-west-1"),
                (OTHER, "us-east-1"),
                (OTHER, "eu-west-1"),
            ]
            .map(|(account, region)| emulator.partition(account, region).expect("partition"))
        };
        for partition in every_partition() {
            partition.set_latency(Duration::from_millis(500));
        }
        let partitions = partitions_of(&emulator, &REGIONS).await;
        let engine = QueryEngine::new(partitions, TableOptions::default()).expect("engine");
        let mut stream = engine
            .plan_in(sql, None, scope.as_ref())
            .await
            .expect("plans")
            .execute()
            .expect("runs");
        let first = stream.try_next().await.expect("a batch").expect("rows");
        assert!(first.num_rows() > 0, "{sql}");
        let described: u64 = every_partition()
            .iter()
            .map(|partition| partition.stats().calls("DescribeCompilationJob"))
            .sum();
        assert!(
            described < jobs as u64,
            "{sql} ({scope:?}): the first rows came after all {described} Describes"
        );
        drop(stream);
        emulator.shutdown().await;
    }
}

#[tokio::test]
async fn all_regions_are_the_ones_each_account_has_enabled() {
    let emulator = start_tenants().await;
    let partitions = partitions_of(&emulator, &["all"]).await;
    let keys: Vec<_> = partitions.all().iter().map(|p| p.key.clone()).collect();
    let expected: Vec<_> = [OTHER, HOME]
        .iter()
        .flat_map(|account| {
            REGIONS
                .iter()
                .map(move |region| PartitionKey::new(*account, *region))
        })
        .collect();
    assert_eq!(keys, expected);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_stops_the_start() {
    let emulator = start_tenants().await;
    let base = common::emulator_sdk_config(&emulator.endpoint_url(), "us-east-1").await;
    let error = partition_clients(
        &base,
        &["us-east-1".into()],
        Some(&accounts_file("wrong-id")),
    )
    .await
    .expect_err("the external id is wrong");
    let message = error.to_string();
    assert!(
        message.contains("cannot assume role") && message.contains(ROLE),
        "{message}"
    );
    emulator.shutdown().await;
}

/// Every (account, region, name) a query over `engine` answers.
async fn engine_rows(
    engine: &sagemaker_flight::query::QueryEngine,
    sql: &str,
) -> BTreeSet<(String, String, String)> {
    let batches: Vec<RecordBatch> = engine
        .plan(sql, None)
        .await
        .expect("plans")
        .execute()
        .expect("runs")
        .try_collect()
        .await
        .expect("answers");
    partition_rows(&batches)
}

fn total_calls(emulator: &Emulator) -> u64 {
    calls_by_partition(emulator).values().sum()
}

/// Random predicates over accounts, regions (both spellings), statuses and
/// ARNs, combined with AND, OR and NOT: pruning partitions never changes an
/// answer and never adds calls.
#[tokio::test]
async fn random_partition_predicates_answer_the_same_with_and_without_pruning() {
    use sagemaker_flight::query::QueryEngine;

    let emulator = start_tenants().await;
    let partitions = partitions_of(&emulator, &REGIONS).await;
    let with = QueryEngine::new(partitions.clone(), TableOptions::default()).expect("engine");
    let without = QueryEngine::new(
        partitions,
        TableOptions {
            filter_pushdown: false,
            ..TableOptions::default()
        },
    )
    .expect("engine");
    let mut atoms = Vec::new();
    for account in [HOME, OTHER, "999999999999"] {
        atoms.push(format!("account_id = '{account}'"));
        atoms.push(format!("account_id <> '{account}'"));
        atoms.push(format!(
            "split_part(compilation_job_arn, ':', 5) = '{account}'"
        ));
    }
    for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
        atoms.push(format!(
            "split_part(compilation_job_arn, ':', 4) = '{region}'"
        ));
        atoms.push(format!(
            "compilation_job_arn LIKE 'arn:aws:sagemaker:{region}:%'"
        ));
        atoms.push(format!(
            "starts_with(_key, 'arn:aws:sagemaker:{region}:{OTHER}:')"
        ));
    }
    atoms.push("account_id IN ('111122223333', '999999999999')".into());
    // An escaped dash is a dash: the region is eu-west-1.
    atoms.push(r"compilation_job_arn LIKE 'arn:aws:sagemaker:eu\-west\-1:%'".into());
    atoms.push("compilation_job_status = 'COMPLETED'".into());
    let some_job = emulator
        .partition(OTHER, "eu-west-1")
        .expect("partition")
        .jobs()
        .into_iter()
        .next()
        .expect("a job");
    let arn = some_job.describe["CompilationJobArn"]
        .as_str()
        .expect("an ARN");
    atoms.push(format!("compilation_job_arn = '{arn}'"));
    let mut failures = Vec::new();
    let mut pruned_some = 0;
    for predicate in common::random_predicates(atoms, common::proptest_cases(32)) {
        let sql = format!("{SUMMARY_SQL} WHERE {predicate}");
        reset_stats(&emulator);
        let pruned = engine_rows(&with, &sql).await;
        let pruned_calls = total_calls(&emulator);
        reset_stats(&emulator);
        let plain = engine_rows(&without, &sql).await;
        let plain_calls = total_calls(&emulator);
        if pruned != plain {
            failures.push(format!(
                "{} rows pruned, {} without: {sql}",
                pruned.len(),
                plain.len()
            ));
        }
        if pruned_calls < plain_calls {
            pruned_some += 1;
        }
        if pruned_calls > plain_calls {
            failures.push(format!(
                "{pruned_calls} calls pruned, {plain_calls} without: {sql}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(pruned_some > 0, "no predicate pruned a partition");
    emulator.shutdown().await;
}

/// With the snapshot on, a whole-table read split into per-partition
/// endpoints keeps no partial table, and later reads see every partition.
#[tokio::test]
async fn split_reads_never_keep_a_partial_snapshot() {
    let emulator = start_tenants().await;
    let options = TableOptions {
        snapshot_ttl: Duration::from_secs(600),
        ..TableOptions::default()
    };
    let server = Instance::serve_table(
        partitions_of(&emulator, &REGIONS).await,
        loopback().await,
        Fleet::default(),
        options,
    )
    .await;
    let mut client = server.client().await;
    let whole_table = FlightDescriptor::new_path(vec!["aws.sagemaker_compilation_job".into()]);
    for round in 0..2 {
        let info = client
            .get_flight_info(whole_table.clone())
            .await
            .expect("flight info");
        assert_eq!(info.endpoint.len(), 4);
        let mut rows = BTreeSet::new();
        for endpoint in &info.endpoint {
            rows.extend(partition_rows(&read_endpoint(&mut client, endpoint).await));
        }
        assert_eq!(rows.len(), 4 * JOBS, "round {round}");
        // One account's full scan is not the table either.
        let info = flight_info(
            &mut client,
            &format!("SELECT * FROM aws.sagemaker_compilation_job WHERE account_id = '{OTHER}'"),
        )
        .await;
        let mut other = 0;
        for endpoint in &info.endpoint {
            other += read_endpoint(&mut client, endpoint)
                .await
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>();
        }
        assert_eq!(other, 2 * JOBS, "round {round}");
    }
    // A query the server answers itself, over every partition.
    let info = flight_info(
        &mut client,
        "SELECT count(*) AS jobs FROM aws.sagemaker_compilation_job",
    )
    .await;
    let batches = read_endpoint(&mut client, &info.endpoint[0]).await;
    let text = arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    assert!(text.contains(&format!("| {} ", 4 * JOBS)), "{text}");
    server.stop().await;
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_query_calling_now_is_not_split() {
    let emulator = start_tenants().await;
    let server = serve_alone(&emulator).await;
    let mut client = server.client().await;
    let info = flight_info(
        &mut client,
        &format!("{SUMMARY_SQL} WHERE creation_time < now()"),
    )
    .await;
    assert_eq!(info.endpoint.len(), 1);
    assert_eq!(
        partition_rows(&read_endpoint(&mut client, &info.endpoint[0]).await).len(),
        4 * JOBS
    );
    server.stop().await;
    emulator.shutdown().await;
}
