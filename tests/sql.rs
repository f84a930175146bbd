//! Flight SQL end to end with the Rust `FlightSqlServiceClient`, and the
//! calls each kind of query makes, counted at the emulator.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetPrimaryKeys, CommandGetTables,
    CommandGetXdbcTypeInfo, SqlInfo, XdbcDataType,
};
use common::{TestServer, emulator_config, fetch_all, query, string_at};
use futures::TryStreamExt;
use sagemaker_emulator::Stats;
use tonic::Code;
use tonic::transport::Channel;

const TABLE: &str = "aws.sagemaker_compilation_job";

async fn sql_client(server: &TestServer) -> FlightSqlServiceClient<Channel> {
    FlightSqlServiceClient::new(server.channel().await)
}

/// The plan text of an `EXPLAIN` statement, every line.
async fn explain(server: &TestServer, sql: &str) -> String {
    let batches = query(server, sql).await.expect("explain");
    batches
        .iter()
        .flat_map(|b| {
            let plans = b.column(1).as_string::<i32>().clone();
            (0..plans.len()).map(move |i| plans.value(i).to_owned())
        })
        .collect()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn names(batches: &[RecordBatch]) -> Vec<String> {
    common::job_names(batches)
}

fn status_code(error: FlightError) -> (Code, String) {
    match error {
        FlightError::Tonic(status) => (status.code(), status.message().to_owned()),
        other => panic!("expected a status, got {other:?}"),
    }
}

/// The emulator's jobs as (name, status, creation micros, last-modified micros).
fn emulated(server: &TestServer) -> Vec<(String, String, i64, i64)> {
    server
        .emulator
        .state()
        .jobs()
        .iter()
        .map(|job| {
            let d = &job.describe;
            let micros = |m: &str| common::seconds_to_micros(d[m].as_f64().expect("time"));
            (
                d["CompilationJobName"].as_str().expect("name").to_owned(),
                d["CompilationJobStatus"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
                micros("CreationTime"),
                micros("LastModifiedTime"),
            )
        })
        .collect()
}

fn calls(stats: &Stats) -> BTreeMap<String, u64> {
    stats
        .operations
        .iter()
        .filter(|(_, o)| o.calls > 0)
        .map(|(name, o)| (name.clone(), o.calls))
        .collect()
}

fn expect_calls(stats: &Stats, expected: &[(&str, u64)]) {
    let expected: BTreeMap<String, u64> =
        expected.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    assert_eq!(calls(stats), expected);
}

#[tokio::test]
async fn statements_metadata_and_prepared_statements_through_the_rust_client() {
    let server = TestServer::builder(emulator_config(60)).start().await;
    let mut client = sql_client(&server).await;

    // A statement: the FlightInfo schema is the stream's schema, exactly.
    let info = client
        .execute(
            format!("SELECT compilation_job_name, tags['team'] AS team FROM {TABLE}"),
            None,
        )
        .await
        .expect("execute");
    let announced = info.clone().try_decode_schema().expect("schema");
    let batches = fetch_all(&mut client, info).await.expect("rows");
    assert_eq!(rows(&batches), 60);
    for batch in &batches {
        assert_eq!(batch.schema().as_ref(), &announced);
    }

    // A prepared statement with a parameter bound through DoPut.
    let mut prepared = client
        .prepare(
            format!("SELECT compilation_job_name FROM {TABLE} WHERE compilation_job_status = $1"),
            None,
        )
        .await
        .expect("prepare");
    assert_eq!(prepared.dataset_schema().expect("schema").fields().len(), 1);
    assert_eq!(
        prepared.parameter_schema().expect("params").fields().len(),
        1
    );
    let parameter = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["FAILED"]))],
    )
    .expect("parameter batch");
    prepared.set_parameters(parameter).expect("bind");
    let info = prepared.execute().await.expect("execute prepared");
    let failed = names(&fetch_all(&mut client, info).await.expect("rows"));
    let mut expected: Vec<_> = emulated(&server)
        .into_iter()
        .filter(|(_, status, _, _)| status == "FAILED")
        .map(|(name, ..)| name)
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(failed, expected);
    prepared.close().await.expect("close");

    // Catalog metadata.
    let info = client.get_catalogs().await.expect("catalogs");
    let catalogs = fetch_all(&mut client, info).await.expect("rows");
    let catalog_names = catalogs[0].column(0).as_string::<i32>();
    assert!((0..catalog_names.len()).any(|i| catalog_names.value(i) == "sagemaker"));
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("sagemaker".into()),
            db_schema_filter_pattern: Some("aws".into()),
        })
        .await
        .expect("schemas");
    assert_eq!(rows(&fetch_all(&mut client, info).await.expect("rows")), 1);
    for include_schema in [false, true] {
        let info = client
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: Some("aws".into()),
                table_name_filter_pattern: Some("sagemaker%".into()),
                table_types: vec![],
                include_schema,
            })
            .await
            .expect("tables");
        let tables = fetch_all(&mut client, info).await.expect("rows");
        assert_eq!(rows(&tables), 1);
        let table = &tables[0];
        assert_eq!(
            string_at(table, "table_name", 0).as_deref(),
            Some("sagemaker_compilation_job")
        );
        assert_eq!(string_at(table, "table_type", 0).as_deref(), Some("TABLE"));
        assert_eq!(
            table.column_by_name("table_schema").is_some(),
            include_schema
        );
    }
    let info = client.get_table_types().await.expect("table types");
    assert!(rows(&fetch_all(&mut client, info).await.expect("rows")) >= 1);
    // Keys: `_key` is the primary key; no foreign keys, with their schema.
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: Some("aws".into()),
            table: "sagemaker_compilation_job".into(),
        })
        .await
        .expect("primary keys");
    let announced = info.clone().try_decode_schema().expect("schema");
    let keys = fetch_all(&mut client, info).await.expect("rows");
    assert_eq!(rows(&keys), 1);
    assert_eq!(keys[0].schema().as_ref(), &announced);
    assert_eq!(
        string_at(&keys[0], "catalog_name", 0).as_deref(),
        Some("sagemaker")
    );
    assert_eq!(
        string_at(&keys[0], "column_name", 0).as_deref(),
        Some("_key")
    );
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: None,
            table: "no_such_table".into(),
        })
        .await
        .expect("primary keys of nothing");
    assert_eq!(rows(&fetch_all(&mut client, info).await.expect("rows")), 0);
    let info = client
        .get_exported_keys(CommandGetExportedKeys {
            catalog: None,
            db_schema: Some("aws".into()),
            table: "sagemaker_compilation_job".into(),
        })
        .await
        .expect("exported keys");
    let announced = info.clone().try_decode_schema().expect("schema");
    assert_eq!(announced.fields().len(), 13);
    assert_eq!(rows(&fetch_all(&mut client, info).await.expect("rows")), 0);
    // The SQL types, all and one.
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("type info");
    let types = fetch_all(&mut client, info).await.expect("rows");
    let names: Vec<String> = (0..rows(&types))
        .filter_map(|row| string_at(&types[0], "type_name", row))
        .collect();
    for name in ["VARCHAR", "TIMESTAMP", "BIGINT", "DOUBLE", "BOOLEAN"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo {
            data_type: Some(XdbcDataType::XdbcVarchar as i32),
        })
        .await
        .expect("type info of VARCHAR");
    let varchar = fetch_all(&mut client, info).await.expect("rows");
    assert_eq!(rows(&varchar), 1);
    assert_eq!(
        string_at(&varchar[0], "type_name", 0).as_deref(),
        Some("VARCHAR")
    );
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
        ])
        .await
        .expect("sql info");
    assert_eq!(rows(&fetch_all(&mut client, info).await.expect("rows")), 2);
    server.stop().await;
}

#[tokio::test]
async fn read_only_and_bad_sql_get_precise_statuses() {
    let server = TestServer::builder(emulator_config(5))
        .concurrency(2)
        .start()
        .await;
    for sql in [
        "CREATE TABLE t (a INT)",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "INSERT INTO aws.sagemaker_compilation_job (compilation_job_name) VALUES ('x')",
        "COPY (SELECT 1) TO '/tmp/sagemaker-flight-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE aws.sagemaker_compilation_job",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let (code, message) = status_code(query(&server, sql).await.expect_err(sql));
        assert_eq!(code, Code::PermissionDenied, "{sql}: {message}");
        assert!(message.contains("read-only"), "{sql}: {message}");
    }
    for (sql, code) in [
        ("SELEC 1", Code::InvalidArgument),
        (
            "SELECT nope FROM aws.sagemaker_compilation_job",
            Code::InvalidArgument,
        ),
        ("SELECT * FROM aws.no_such_table", Code::NotFound),
    ] {
        let (got, message) = status_code(query(&server, sql).await.expect_err(sql));
        assert_eq!(got, code, "{sql}: {message}");
    }
    assert_eq!(
        rows(
            &query(&server, &format!("SELECT * FROM {TABLE}"))
                .await
                .expect("ok")
        ),
        5
    );
    server.stop().await;
}

#[tokio::test]
async fn a_summary_only_query_makes_only_list_calls() {
    let server = TestServer::builder(emulator_config(250)).start().await;
    let batches = query(
        &server,
        &format!("SELECT compilation_job_name, compilation_job_status, creation_time FROM {TABLE}"),
    )
    .await
    .expect("rows");
    assert_eq!(rows(&batches), 250);
    expect_calls(
        &server.emulator.state().stats(),
        &[("ListCompilationJobs", 3)],
    );
    server.stop().await;
}

#[tokio::test]
async fn count_star_needs_no_describe() {
    let server = TestServer::builder(emulator_config(120)).start().await;
    let batches = query(&server, &format!("SELECT count(*) AS n FROM {TABLE}"))
        .await
        .expect("rows");
    let n = batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(n, 120);
    expect_calls(
        &server.emulator.state().stats(),
        &[("ListCompilationJobs", 2)],
    );
    server.stop().await;
}

#[tokio::test]
async fn a_status_and_time_range_query_lists_only_the_matching_pages() {
    let server = TestServer::builder(emulator_config(600)).start().await;
    let jobs = emulated(&server);
    // The creation time of the 150th newest job, as a bound.
    let mut times: Vec<i64> = jobs.iter().map(|j| j.2).collect();
    times.sort();
    let bound = times[times.len() - 150];
    let bound_text = aws_smithy_types::DateTime::from_secs_and_nanos(
        bound.div_euclid(1_000_000),
        (bound.rem_euclid(1_000_000) * 1_000) as u32,
    )
    .fmt(aws_smithy_types::date_time::Format::DateTime)
    .expect("format");
    let sql = format!(
        "SELECT compilation_job_name FROM {TABLE} \
         WHERE compilation_job_status = 'COMPLETED' AND creation_time >= TIMESTAMP '{bound_text}'"
    );
    let got = names(&query(&server, &sql).await.expect("rows"));
    let mut expected: Vec<_> = jobs
        .iter()
        .filter(|(_, status, created, _)| status == "COMPLETED" && *created >= bound)
        .map(|(name, ..)| name.clone())
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    // At most 150 jobs (a second of slack aside) fit the range: at most two
    // pages of 100, where a full listing takes six.
    let stats = server.emulator.state().stats();
    let list_calls = stats.calls("ListCompilationJobs");
    assert!((1..=2).contains(&list_calls), "{list_calls} list calls");
    expect_calls(&stats, &[("ListCompilationJobs", list_calls)]);
    server.stop().await;
}

#[tokio::test]
async fn a_status_in_list_lists_each_status_and_an_unknown_status_calls_nothing() {
    let server = TestServer::builder(emulator_config(200)).start().await;
    let jobs = emulated(&server);
    let sql = format!(
        "SELECT compilation_job_name FROM {TABLE} \
         WHERE compilation_job_status IN ('FAILED', 'STOPPED', 'failed')"
    );
    let got = names(&query(&server, &sql).await.expect("rows"));
    let mut expected: Vec<_> = jobs
        .iter()
        .filter(|(_, s, ..)| s == "FAILED" || s == "STOPPED")
        .map(|(n, ..)| n.clone())
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    expect_calls(
        &server.emulator.state().stats(),
        &[("ListCompilationJobs", 2)],
    );

    server.emulator.state().reset_stats();
    let sql = format!("SELECT * FROM {TABLE} WHERE compilation_job_status = 'DONE'");
    assert_eq!(
        rows(&query(&server, &sql).await.expect("no rows, no error")),
        0
    );
    expect_calls(&server.emulator.state().stats(), &[]);
    server.stop().await;
}

#[tokio::test]
async fn a_name_lookup_makes_one_describe_and_no_list() {
    let server = TestServer::builder(emulator_config(300)).start().await;
    let (name, ..) = emulated(&server)[17].clone();
    let sql = format!(
        "SELECT compilation_job_name, failure_reason, input_config FROM {TABLE} \
         WHERE compilation_job_name = '{name}'"
    );
    assert_eq!(
        names(&query(&server, &sql).await.expect("rows")),
        vec![name.clone()]
    );
    expect_calls(
        &server.emulator.state().stats(),
        &[("DescribeCompilationJob", 1)],
    );

    // By ARN too, and a name that does not exist answers no rows.
    server.emulator.state().reset_stats();
    let arn = format!("arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}");
    let sql = format!(
        "SELECT compilation_job_name FROM {TABLE} WHERE _key IN ('{arn}', \
         'arn:aws:sagemaker:us-east-1:123456789012:compilation-job/no-such-job')"
    );
    assert_eq!(
        names(&query(&server, &sql).await.expect("rows")),
        vec![name]
    );
    expect_calls(
        &server.emulator.state().stats(),
        &[("DescribeCompilationJob", 2)],
    );
    server.stop().await;
}

#[tokio::test]
async fn limit_stops_listing_and_describing_early() {
    let server = TestServer::builder(emulator_config(1000))
        .concurrency(4)
        .start()
        .await;
    let batches = query(&server, &format!("SELECT * FROM {TABLE} LIMIT 10"))
        .await
        .expect("rows");
    assert_eq!(rows(&batches), 10);
    let stats = server.emulator.state().stats();
    // One page of ten, and no job taken into work beyond the ten rows.
    expect_calls(
        &stats,
        &[
            ("ListCompilationJobs", 1),
            ("DescribeCompilationJob", 10),
            ("ListTags", 10),
        ],
    );

    // A job that vanishes between list and describe frees its place: the
    // answer still has ten rows.
    server.emulator.state().reset_stats();
    let mut jobs = emulated(&server);
    jobs.sort_by_key(|job| (job.2, job.0.clone()));
    assert!(
        server.emulator.state().vanish(&jobs[0].0),
        "the first job listed"
    );
    let batches = query(&server, &format!("SELECT * FROM {TABLE} LIMIT 10"))
        .await
        .expect("rows");
    assert_eq!(rows(&batches), 10);
    assert!(!names(&batches).contains(&jobs[0].0));
    let stats = server.emulator.state().stats();
    assert_eq!(
        stats.calls("DescribeCompilationJob"),
        11,
        "{:?}",
        calls(&stats)
    );
    server.stop().await;
}

#[tokio::test]
async fn tags_alone_add_list_tags_and_nothing_else() {
    let server = TestServer::builder(emulator_config(150)).start().await;
    let sql = format!("SELECT compilation_job_name, tags FROM {TABLE}");
    assert_eq!(rows(&query(&server, &sql).await.expect("rows")), 150);
    let stats = server.emulator.state().stats();
    // Every job once, plus a second page for jobs with more than 50 tags.
    let multi_page = server
        .emulator
        .state()
        .jobs()
        .iter()
        .filter(|j| j.tags.len() > 50)
        .count();
    assert!(multi_page > 0);
    expect_calls(
        &stats,
        &[
            ("ListCompilationJobs", 2),
            ("ListTags", 150 + multi_page as u64),
        ],
    );
    server.stop().await;
}

#[tokio::test]
async fn explain_shows_the_api_parameters_and_calls() {
    let server = TestServer::builder(emulator_config(10))
        .concurrency(2)
        .start()
        .await;
    let sql = format!(
        "EXPLAIN SELECT compilation_job_name FROM {TABLE} \
         WHERE compilation_job_status = 'FAILED' AND compilation_job_name LIKE '%resnet%'"
    );
    let text = explain(&server, &sql).await;
    assert!(
        text.contains("SageMakerScanExec: calls=[ListCompilationJobs]"),
        "{text}"
    );
    assert!(text.contains("StatusEquals=FAILED"), "{text}");
    assert!(text.contains("NameContains=resnet"), "{text}");
    expect_calls(&server.emulator.state().stats(), &[]);
    server.stop().await;
}

/// A client that binds parameters and then executes the handle it had
/// before (older JDBC drivers, flightsql-dbapi) still gets its parameters.
#[tokio::test]
async fn a_client_that_keeps_its_old_handle_after_binding_gets_its_parameters() {
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use arrow_flight::sql::{
        ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
        CommandPreparedStatementQuery, ProstMessageExt,
    };
    use arrow_flight::{Action, FlightDescriptor};
    use prost::Message;

    let server = TestServer::builder(emulator_config(80))
        .concurrency(4)
        .start()
        .await;
    let mut client = sql_client(&server).await;
    let sql = format!("SELECT compilation_job_name FROM {TABLE} WHERE compilation_job_status = $1");
    let create = ActionCreatePreparedStatementRequest {
        query: sql,
        transaction_id: None,
    };
    let mut results = client
        .do_action(Action::new(
            "CreatePreparedStatement",
            create.as_any().encode_to_vec(),
        ))
        .await
        .expect("prepare");
    let result = results.message().await.expect("answer").expect("a result");
    let created: ActionCreatePreparedStatementResult = Any::decode(&*result.body)
        .expect("any")
        .unpack()
        .expect("unpack")
        .expect("a prepared statement");
    let old_handle = created.prepared_statement_handle;

    let command = CommandPreparedStatementQuery {
        prepared_statement_handle: old_handle.clone(),
    };
    let parameter = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["STOPPED"]))],
    )
    .expect("batch");
    let data: Vec<_> = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_cmd(
            command.as_any().encode_to_vec(),
        )))
        .with_schema(parameter.schema())
        .build(futures::stream::iter([Ok(parameter)]))
        .try_collect()
        .await
        .expect("encode");
    let mut put = client
        .do_put(futures::stream::iter(data))
        .await
        .expect("bind");
    assert!(
        put.message().await.expect("put result").is_some(),
        "a new handle is offered"
    );

    // Execute with the handle from before the binding.
    let info = client
        .inner_mut()
        .get_flight_info(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()))
        .await
        .expect("flight info")
        .into_inner();
    let got = names(&fetch_all(&mut client, info).await.expect("rows"));
    let mut expected: Vec<_> = emulated(&server)
        .into_iter()
        .filter(|(_, status, ..)| status == "STOPPED")
        .map(|(name, ..)| name)
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    server.stop().await;
}

#[tokio::test]
async fn a_warm_scan_calls_only_what_may_have_changed() {
    use sagemaker_flight::source::SageMakerSource;
    use std::time::Duration;

    let server = TestServer::builder(emulator_config(250))
        .source(|client| {
            SageMakerSource::new(client, 8, common::quick_retries(8))
                .with_list_windows(1)
                .with_cache(Duration::from_secs(600), 10_000)
        })
        .start()
        .await;
    let sql = format!("SELECT * FROM {TABLE}");
    let cold = query(&server, &sql).await.expect("cold");
    let cold_stats = server.emulator.state().stats();
    assert_eq!(cold_stats.calls("DescribeCompilationJob"), 250);

    server.emulator.state().reset_stats();
    let warm = query(&server, &sql).await.expect("warm");
    assert_eq!(names(&warm), names(&cold));
    // Nothing changed and the tags are younger than the TTL: the listing only.
    expect_calls(
        &server.emulator.state().stats(),
        &[("ListCompilationJobs", 3)],
    );

    // A job deleted and created again under its name is listed with a new
    // status and LastModifiedTime: it alone is described again.
    let (name, ..) = emulated(&server)
        .into_iter()
        .find(|(_, status, ..)| status == "COMPLETED")
        .expect("a completed job");
    let sagemaker =
        sagemaker_flight::source::emulator_client(&server.emulator.endpoint_url(), "us-east-1");
    sagemaker
        .delete_compilation_job()
        .compilation_job_name(&name)
        .send()
        .await
        .expect("delete");
    common::create_compilation_job(&sagemaker, &name).await;
    server.emulator.state().reset_stats();
    let again = query(&server, &sql).await.expect("warm again");
    assert_eq!(rows(&again), 250);
    let stats = server.emulator.state().stats();
    assert_eq!(
        stats.calls("DescribeCompilationJob"),
        1,
        "{:?}",
        calls(&stats)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_fresh_snapshot_answers_every_query_with_no_call() {
    use sagemaker_flight::source::SageMakerSource;
    use sagemaker_flight::table::TableOptions;
    use std::time::Duration;

    let options = TableOptions {
        snapshot_ttl: Duration::from_secs(600),
        ..TableOptions::default()
    };
    let server = TestServer::builder(emulator_config(250))
        .table(options)
        .source(|client| SageMakerSource::new(client, 8, common::quick_retries(8)))
        .start()
        .await;
    // A filtered query is not a snapshot: it calls, and keeps nothing.
    let failed_sql = format!("SELECT * FROM {TABLE} WHERE compilation_job_status = 'FAILED'");
    let failed = query(&server, &failed_sql).await.expect("filtered");
    assert!(rows(&failed) > 0);
    assert!(server.emulator.state().stats().calls("ListCompilationJobs") > 0);
    server.emulator.state().reset_stats();
    query(&server, &failed_sql).await.expect("filtered again");
    assert!(
        server
            .emulator
            .state()
            .stats()
            .calls("DescribeCompilationJob")
            > 0
    );

    let all_sql = format!("SELECT * FROM {TABLE}");
    let text = explain(&server, &format!("EXPLAIN {all_sql}")).await;
    assert!(text.contains("keeps_snapshot"), "{text}");
    let all = query(&server, &all_sql).await.expect("full scan");
    assert_eq!(rows(&all), 250);
    server.emulator.state().reset_stats();

    // Now any query, whatever its projection, filter or limit, reads the
    // snapshot: the same answers, no call.
    let again = query(&server, &all_sql).await.expect("snapshot read");
    assert_eq!(names(&again), names(&all));
    assert_eq!(again[0].schema(), all[0].schema());
    let failed_again = query(&server, &failed_sql)
        .await
        .expect("filtered snapshot");
    assert_eq!(names(&failed_again), names(&failed));
    let counted = query(
        &server,
        &format!("SELECT count(*) AS n FROM {TABLE} WHERE compilation_job_status = 'FAILED'"),
    )
    .await
    .expect("count");
    let count = counted[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(count as usize, rows(&failed));
    let limited = query(
        &server,
        &format!("SELECT compilation_job_name FROM {TABLE} LIMIT 7"),
    )
    .await
    .expect("limit");
    assert_eq!(rows(&limited), 7);
    expect_calls(&server.emulator.state().stats(), &[]);

    // EXPLAIN says where the rows come from.
    let text = explain(&server, &format!("EXPLAIN {all_sql}")).await;
    assert!(text.contains("DataSourceExec"), "{text}");
    server.stop().await;
}
