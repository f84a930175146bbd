//! The plain Arrow Flight service end to end: a real Flight client, the real
//! server, the SageMaker emulator behind it, all on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightDescriptor, Ticket};
use common::{
    TestServer, emulator_config, job_names, micros_at, quick_retries, seconds_to_micros, string_at,
    tags_at,
};
use futures::{StreamExt, TryStreamExt};
use sagemaker_emulator::Stats;
use sagemaker_flight::flight::ticket::Statement;
use sagemaker_flight::table::schema::table_schema;
use serde_json::Value;
use tonic::Code;

const TABLE_PATH: &str = "aws.sagemaker_compilation_job";

fn table_descriptor() -> FlightDescriptor {
    FlightDescriptor::new_path(vec![TABLE_PATH.to_owned()])
}

/// GetFlightInfo on the table, then DoGet on its one endpoint.
async fn read_table(server: &TestServer) -> Result<Vec<RecordBatch>, FlightError> {
    read_descriptor(server, table_descriptor()).await
}

/// GetFlightInfo on `descriptor`, then DoGet on its one endpoint.
async fn read_descriptor(
    server: &TestServer,
    descriptor: FlightDescriptor,
) -> Result<Vec<RecordBatch>, FlightError> {
    let mut client = server.client().await;
    let info = client.get_flight_info(descriptor).await?;
    let ticket = info.endpoint[0]
        .ticket
        .clone()
        .expect("endpoint has a ticket");
    client.do_get(ticket).await?.try_collect().await
}

fn status_of(error: FlightError) -> tonic::Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test]
async fn list_flights_describes_the_table_with_its_exact_schema_and_a_same_server_endpoint() {
    let server = TestServer::builder(emulator_config(5))
        .concurrency(4)
        .start()
        .await;
    let mut client = server.client().await;
    let flights: Vec<_> = client
        .list_flights(Vec::<u8>::new())
        .await
        .expect("list_flights")
        .try_collect()
        .await
        .expect("flights");
    assert_eq!(flights.len(), 1);
    let info = &flights[0];
    let descriptor = info.flight_descriptor.clone().expect("descriptor");
    assert_eq!(descriptor, table_descriptor());
    let schema: Schema = info.clone().try_decode_schema().expect("schema");
    // The table's exact fields, each with its Flight SQL column metadata.
    assert_eq!(without_metadata(&schema), *table_schema());
    let status = schema
        .field_with_name("compilation_job_status")
        .expect("status");
    assert_eq!(status.metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"], "VARCHAR");
    assert_eq!(
        status.metadata()["ARROW:FLIGHT:SQL:TABLE_NAME"],
        "sagemaker_compilation_job"
    );
    // Descriptions are GetTables' only (JDBC would make them the labels).
    assert!(!status.metadata().contains_key("ARROW:FLIGHT:SQL:REMARKS"));
    assert_eq!(info.endpoint.len(), 1);
    assert!(
        info.endpoint[0].location.is_empty(),
        "empty location = same server"
    );

    // The two-part path and GetSchema give the same schema.
    let two_part =
        FlightDescriptor::new_path(vec!["aws".into(), "sagemaker_compilation_job".into()]);
    let schema = client
        .get_schema(two_part.clone())
        .await
        .expect("get_schema");
    assert_eq!(without_metadata(&schema), *table_schema());
    let listed: Schema = flights[0].clone().try_decode_schema().expect("schema");
    assert_eq!(schema, listed);
    let info = client.get_flight_info(two_part).await.expect("flight info");
    assert_eq!(info.endpoint.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn schema_spells_every_column_type_and_nullability() {
    let expected = [
        ("_key", "Utf8", false),
        ("account_id", "Utf8", false),
        ("compilation_end_time", "Timestamp(µs, \"UTC\")", true),
        ("compilation_job_arn", "Utf8", false),
        ("compilation_job_name", "Utf8", false),
        ("compilation_job_status", "Utf8", false),
        ("compilation_start_time", "Timestamp(µs, \"UTC\")", true),
        ("creation_time", "Timestamp(µs, \"UTC\")", false),
        ("derived_information", "Utf8", true),
        ("failure_reason", "Utf8", true),
        ("inference_image", "Utf8", true),
        ("input_config", "Utf8", true),
        ("last_modified_time", "Timestamp(µs, \"UTC\")", true),
        ("model_artifacts", "Utf8", true),
        ("model_digests", "Utf8", true),
        ("model_package_version_arn", "Utf8", true),
        ("output_config", "Utf8", true),
        ("role_arn", "Utf8", true),
        ("stopping_condition", "Utf8", true),
        (
            "tags",
            "Map(\"entries\": non-null Struct(\"key\": non-null Utf8, \"value\": non-null Utf8), unsorted)",
            false,
        ),
        ("vpc_config", "Utf8", true),
    ];
    let schema = table_schema();
    assert_eq!(schema.fields().len(), expected.len());
    for (field, (name, data_type, nullable)) in schema.fields().iter().zip(expected) {
        assert_eq!(field.name(), name);
        assert_eq!(field.data_type().to_string(), data_type, "{name}");
        assert_eq!(field.is_nullable(), nullable, "{name}");
    }
}

fn json_member(describe: &Value, member: &str) -> Option<Value> {
    describe.get(member).cloned()
}

fn string_member(describe: &Value, member: &str) -> Option<String> {
    describe
        .get(member)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn time_member(describe: &Value, member: &str) -> Option<i64> {
    describe
        .get(member)
        .and_then(Value::as_f64)
        .map(seconds_to_micros)
}

#[tokio::test]
async fn every_value_of_every_row_matches_the_emulators_jobs() {
    let server = TestServer::builder(emulator_config(400))
        .concurrency(16)
        .start()
        .await;
    let batches = read_table(&server).await.expect("scan");
    let jobs = server.emulator.state().jobs();
    let mut by_name = HashMap::new();
    for batch in &batches {
        assert_eq!(
            without_metadata(&batch.schema()),
            *table_schema(),
            "every batch has the table's fields"
        );
        for row in 0..batch.num_rows() {
            let name = string_at(batch, "compilation_job_name", row).expect("name");
            assert!(by_name.insert(name, (batch, row)).is_none(), "no job twice");
        }
    }
    assert_eq!(by_name.len(), jobs.len(), "every job, once");

    let mut seen_tags = 0;
    let mut seen_multi_page_tags = false;
    for job in &jobs {
        let d = &job.describe;
        let name = string_member(d, "CompilationJobName").expect("name");
        let &(batch, row) = by_name
            .get(&name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let arn = string_member(d, "CompilationJobArn");
        assert_eq!(string_at(batch, "_key", row), arn, "{name}");
        assert_eq!(string_at(batch, "compilation_job_arn", row), arn, "{name}");
        assert_eq!(
            string_at(batch, "account_id", row).as_deref(),
            Some("123456789012")
        );
        for (column, member) in [
            ("compilation_job_status", "CompilationJobStatus"),
            ("inference_image", "InferenceImage"),
            ("model_package_version_arn", "ModelPackageVersionArn"),
            ("role_arn", "RoleArn"),
        ] {
            assert_eq!(
                string_at(batch, column, row),
                string_member(d, member),
                "{name}.{column}"
            );
        }
        // FailureReason is always sent, "" when the job did not fail: NULL here.
        let reason = string_member(d, "FailureReason").filter(|r| !r.is_empty());
        assert_eq!(string_at(batch, "failure_reason", row), reason, "{name}");
        if string_member(d, "CompilationJobStatus").as_deref() == Some("FAILED") {
            assert!(reason.is_some(), "a FAILED job says why: {name}");
        }
        for (column, member) in [
            ("creation_time", "CreationTime"),
            ("last_modified_time", "LastModifiedTime"),
            ("compilation_start_time", "CompilationStartTime"),
            ("compilation_end_time", "CompilationEndTime"),
        ] {
            assert_eq!(
                micros_at(batch, column, row),
                time_member(d, member),
                "{name}.{column}"
            );
        }
        for (column, member) in [
            ("derived_information", "DerivedInformation"),
            ("input_config", "InputConfig"),
            ("model_artifacts", "ModelArtifacts"),
            ("model_digests", "ModelDigests"),
            ("output_config", "OutputConfig"),
            ("stopping_condition", "StoppingCondition"),
            ("vpc_config", "VpcConfig"),
        ] {
            let text = string_at(batch, column, row);
            let parsed = text
                .as_deref()
                .map(|t| serde_json::from_str::<Value>(t).expect("valid JSON"));
            assert_eq!(parsed, json_member(d, member), "{name}.{column}");
            if let (Some(text), Some(parsed)) = (&text, &parsed) {
                let compact = serde_json::to_string(parsed).expect("serialize");
                assert_eq!(text, &compact, "compact JSON");
            }
        }
        let tags = tags_at(batch, row);
        assert_eq!(tags, job.tags, "{name}.tags");
        seen_tags += usize::from(!tags.is_empty());
        seen_multi_page_tags |= tags.len() > 50;
    }
    assert!(seen_tags > 0, "the emulator tags most jobs");
    assert!(
        seen_multi_page_tags,
        "some job needs more than one ListTags page"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_first_batch_arrives_before_the_listing_has_finished() {
    let mut config = emulator_config(3000);
    config.latency = Duration::from_millis(20);
    let server = TestServer::builder(config).concurrency(16).start().await;
    let mut client = server.client().await;
    let info = client
        .get_flight_info(table_descriptor())
        .await
        .expect("info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let first = stream.next().await.expect("a first batch").expect("ok");
    let pages_listed_at_first_batch = server.emulator.state().stats().calls("ListCompilationJobs");
    // 3000 jobs are 30 pages of 100, each taking at least 20 ms.
    assert!(
        pages_listed_at_first_batch < 30,
        "the first batch came after {pages_listed_at_first_batch} of 30 pages"
    );
    let mut rows = first.num_rows();
    let mut batches = 1;
    while let Some(batch) = stream.next().await {
        rows += batch.expect("batch").num_rows();
        batches += 1;
    }
    assert_eq!(rows, 3000);
    assert!(
        batches > 2,
        "rows are streamed in several batches, got {batches}"
    );
    assert_eq!(
        server.emulator.state().stats().calls("ListCompilationJobs"),
        30
    );
    server.stop().await;
}

/// Scans `jobs` jobs at 100 ms per call; returns the emulator's stats.
async fn stats_of_scan_with_concurrency(concurrency: usize, jobs: usize) -> Stats {
    let mut config = emulator_config(jobs);
    // Long enough that every permit holder is surely in flight at once.
    config.latency = Duration::from_millis(100);
    let server = TestServer::builder(config)
        .concurrency(concurrency)
        .start()
        .await;
    let rows: usize = read_table(&server)
        .await
        .expect("scan")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, jobs);
    let stats = server.emulator.state().stats();
    server.stop().await;
    stats
}

#[tokio::test]
async fn describe_concurrency_reaches_and_never_exceeds_the_limit() {
    for (concurrency, jobs) in [(1, 12), (8, 64)] {
        let stats = stats_of_scan_with_concurrency(concurrency, jobs).await;
        let limit = concurrency as u64;
        assert_eq!(
            stats.peak("DescribeCompilationJob"),
            limit,
            "--concurrency {concurrency}"
        );
        // ListTags has its own limit; a job's two calls run side by side.
        assert_eq!(stats.peak("ListTags"), limit, "--concurrency {concurrency}");
        assert!(
            stats.peak_in_flight <= 2 * limit + 1,
            "{} calls in flight at --concurrency {concurrency}",
            stats.peak_in_flight
        );
    }
}

#[tokio::test]
async fn a_long_listing_split_into_creation_time_windows_lists_every_job_once() {
    let mut config = emulator_config(2000);
    // Jobs up to now, so the windows cover them all; calls slow enough that
    // parallel ones overlap at the emulator.
    config.anchor = None;
    config.latency = Duration::from_millis(20);
    let server = TestServer::builder(config)
        .concurrency(16)
        .retry(quick_retries(8))
        .list_windows(8)
        .start()
        .await;
    let sql = "SELECT compilation_job_name FROM aws.sagemaker_compilation_job";
    let batches = read_descriptor(&server, FlightDescriptor::new_cmd(sql))
        .await
        .expect("rows");
    let mut names = job_names(&batches);
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "no job twice");
    assert_eq!(names.len(), 2000, "every job");
    let stats = server.emulator.state().stats();
    let list_calls = stats.calls("ListCompilationJobs");
    // One chain would take 20 pages; windows add at most one partial page each.
    assert!(
        (20..=20 + 8 + 1).contains(&list_calls),
        "{list_calls} list calls"
    );
    assert!(
        stats.peak("ListCompilationJobs") > 1,
        "windows listed in parallel"
    );
    server.stop().await;
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_without_losing_or_doubling_rows() {
    let mut config = emulator_config(300);
    config.throttle_rate = 0.2;
    config.error_rate = 0.05;
    let server = TestServer::builder(config)
        .concurrency(8)
        .retry(quick_retries(30))
        .start()
        .await;
    let batches = read_table(&server)
        .await
        .expect("retries absorb the faults");
    let names = job_names(&batches);
    let expected: Vec<_> = server
        .emulator
        .state()
        .jobs()
        .iter()
        .map(|j| {
            j.describe["CompilationJobName"]
                .as_str()
                .expect("name")
                .to_owned()
        })
        .collect();
    assert_eq!(names, expected, "exactly the jobs, once each");
    let stats = server.emulator.state().stats();
    let faults: u64 = stats
        .operations
        .values()
        .map(|o| o.throttled + o.server_errors)
        .sum();
    assert!(faults > 0, "the emulator did inject faults");
    server.stop().await;
}

#[tokio::test]
async fn a_call_that_keeps_failing_ends_the_stream_with_a_status_naming_the_aws_code() {
    // Throttles have a budget three times the other failures'.
    for (throttle_rate, error_rate, code, aws_code, attempts) in [
        (1.0, 0.0, Code::ResourceExhausted, "ThrottlingException", 9),
        (
            0.0,
            1.0,
            Code::Unavailable,
            "SageMaker ListCompilationJobs failed",
            3,
        ),
    ] {
        let mut config = emulator_config(20);
        config.throttle_rate = throttle_rate;
        config.error_rate = error_rate;
        let server = TestServer::builder(config)
            .concurrency(4)
            .retry(quick_retries(3))
            .start()
            .await;
        let status = status_of(read_table(&server).await.expect_err("fails"));
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(aws_code), "{status:?}");
        assert_eq!(
            server.emulator.state().stats().calls("ListCompilationJobs"),
            attempts,
            "attempts before giving up"
        );
        // The server keeps serving.
        let mut client = server.client().await;
        assert!(client.get_schema(table_descriptor()).await.is_ok());
        server.stop().await;
    }
}

#[tokio::test]
async fn a_job_deleted_between_list_and_describe_is_skipped() {
    let server = TestServer::builder(emulator_config(30))
        .concurrency(4)
        .start()
        .await;
    let jobs = server.emulator.state().jobs();
    let gone = jobs[7].describe["CompilationJobName"]
        .as_str()
        .expect("name")
        .to_owned();
    assert!(server.emulator.state().vanish(&gone));
    let batches = read_table(&server)
        .await
        .expect("a vanished job is no error");
    let names = job_names(&batches);
    assert_eq!(names.len(), 29);
    assert!(!names.contains(&gone));
    assert_eq!(
        server
            .emulator
            .state()
            .stats()
            .calls("DescribeCompilationJob"),
        30
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_precise_statuses_and_the_server_keeps_serving() {
    let server = TestServer::builder(emulator_config(3))
        .concurrency(2)
        .start()
        .await;
    let mut client = server.client().await;

    let unknown = FlightDescriptor::new_path(vec!["aws.other_table".into()]);
    let status = status_of(
        client
            .get_flight_info(unknown.clone())
            .await
            .expect_err("unknown"),
    );
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status_of(client.get_schema(unknown).await.expect_err("unknown")).code(),
        Code::NotFound
    );
    let not_utf8 = FlightDescriptor::new_cmd(vec![0xff, 0xfe, 0x00]);
    assert_eq!(
        status_of(client.get_flight_info(not_utf8).await.expect_err("cmd")).code(),
        Code::InvalidArgument
    );

    for bytes in [&b"\x08\xff\xff"[..], b"", b"not a ticket"] {
        let error = match client.do_get(Ticket::new(bytes.to_vec())).await {
            Err(error) => error,
            Ok(stream) => stream
                .try_collect::<Vec<_>>()
                .await
                .expect_err("bad ticket"),
        };
        assert_eq!(status_of(error).code(), Code::InvalidArgument, "{bytes:?}");
    }
    let other_table = Statement::new("SELECT * FROM aws.other").to_ticket();
    let error = match client.do_get(other_table).await {
        Err(error) => error,
        Ok(stream) => stream
            .try_collect::<Vec<_>>()
            .await
            .expect_err("other table"),
    };
    assert_eq!(status_of(error).code(), Code::NotFound);

    let action = arrow_flight::Action::new("drop_everything", "");
    assert_eq!(
        status_of(client.do_action(action).await.err().expect("no actions")).code(),
        Code::Unimplemented
    );
    let put = futures::stream::iter(Vec::<Result<arrow_flight::FlightData, FlightError>>::new());
    let error = match client.do_put(put).await {
        Err(error) => error,
        Ok(stream) => stream.try_collect::<Vec<_>>().await.expect_err("read-only"),
    };
    assert_eq!(status_of(error).code(), Code::Unimplemented);

    let rows: usize = read_table(&server)
        .await
        .expect("still serving")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 3);
    server.stop().await;
}

/// A server on `jobs` emulated jobs that keeps a snapshot of whole-table
/// scans for ten minutes.
async fn snapshot_server(jobs: usize) -> TestServer {
    use sagemaker_flight::source::SageMakerSource;
    use sagemaker_flight::table::TableOptions;

    let options = TableOptions {
        snapshot_ttl: Duration::from_secs(600),
        ..TableOptions::default()
    };
    TestServer::builder(emulator_config(jobs))
        .table(options)
        .source(|client| SageMakerSource::new(client, 8, common::quick_retries(8)))
        .start()
        .await
}

#[tokio::test]
async fn a_whole_table_read_is_served_from_a_fresh_snapshot_with_the_announced_schema() {
    let server = snapshot_server(300).await;
    let cold = read_table(&server).await.expect("cold read");
    server.emulator.state().reset_stats();
    for read in 0..2 {
        let mut client = server.client().await;
        let info = client
            .get_flight_info(table_descriptor())
            .await
            .expect("flight info");
        let announced = info.clone().try_decode_schema().expect("schema");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let warm: Vec<RecordBatch> = client
            .do_get(ticket)
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("warm read");
        assert_eq!(*warm[0].schema(), announced, "read {read}");
        let cold_rows = arrow::compute::concat_batches(&table_schema(), &cold).expect("concat");
        let warm_rows = arrow::compute::concat_batches(&table_schema(), &warm).expect("concat");
        assert_eq!(
            warm_rows, cold_rows,
            "read {read}: the same rows, in the same order"
        );
    }
    let stats = server.emulator.state().stats();
    assert_eq!(stats.operations.values().map(|o| o.calls).sum::<u64>(), 0);
    server.stop().await;
}

#[tokio::test]
async fn list_actions_offers_only_what_the_server_implements() {
    let server = TestServer::builder(emulator_config(10)).start().await;
    let mut client = server.client().await;
    let actions: Vec<String> = client
        .list_actions()
        .await
        .expect("list_actions")
        .map_ok(|action| action.r#type)
        .try_collect()
        .await
        .expect("actions");
    assert_eq!(
        actions,
        [
            "CreatePreparedStatement",
            "ClosePreparedStatement",
            "CancelQuery",
            "CancelFlightInfo",
            "SetSessionOptions",
            "GetSessionOptions",
            "CloseSession",
        ]
    );
    server.stop().await;
}

/// `schema`'s fields without their metadata.
fn without_metadata(schema: &Schema) -> Schema {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone().with_metadata(Default::default()))
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

#[tokio::test]
async fn flight_info_totals_are_given_where_the_server_knows_them() {
    use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
    use prost::Message;
    let server = snapshot_server(300).await;
    let totals = |sql: &str| {
        let command = CommandStatementQuery {
            query: sql.to_owned(),
            transaction_id: None,
        };
        let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
        let server = &server;
        async move {
            let info = server
                .client()
                .await
                .get_flight_info(descriptor)
                .await
                .expect("flight info");
            (info.total_records, info.total_bytes)
        }
    };
    let every = "SELECT * FROM aws.sagemaker_compilation_job";
    // Nothing in memory yet: the rows come from a live scan.
    assert_eq!(totals(every).await, (-1, -1));
    read_table(&server).await.expect("cold read");
    // The snapshot holds the rows; no read has encoded them yet.
    assert_eq!(totals(every).await, (300, -1));
    // Other queries' counts are not known before they run.
    for sql in [
        "SELECT compilation_job_name FROM aws.sagemaker_compilation_job LIMIT 7",
        "SELECT count(*) FROM aws.sagemaker_compilation_job",
        "SELECT * FROM aws.sagemaker_compilation_job WHERE compilation_job_status = 'FAILED'",
    ] {
        assert_eq!(totals(sql).await, (-1, -1), "{sql}");
    }

    // A read of the snapshot encodes it: the next FlightInfo gives the
    // bytes of that encoding, the bytes a client then receives.
    let mut client = server.client().await;
    let info = client
        .get_flight_info(table_descriptor())
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let received = |messages: Vec<arrow_flight::FlightData>| -> i64 {
        messages
            .iter()
            .map(|m| (m.data_header.len() + m.data_body.len()) as i64)
            .sum()
    };
    let first: Vec<_> = client
        .inner_mut()
        .do_get(ticket.clone())
        .await
        .expect("do_get")
        .into_inner()
        .try_collect()
        .await
        .expect("read");
    let (records, bytes) = totals(every).await;
    assert_eq!(records, 300);
    assert_eq!(bytes, received(first));
    let second: Vec<_> = client
        .inner_mut()
        .do_get(ticket)
        .await
        .expect("do_get")
        .into_inner()
        .try_collect()
        .await
        .expect("read");
    assert_eq!(bytes, received(second));
    server.stop().await;
}
