//! The JSON functions of datafusion-functions-json on the table's JSON
//! columns (compact JSON text), through Flight SQL, against the emulator's
//! own records: each function's answer is compared with the value read
//! from the DescribeCompilationJob body the emulator holds for that job.

mod common;

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use common::{TestServer, emulator_config, query, string_at};
use serde_json::Value;

const TABLE: &str = "aws.sagemaker_compilation_job";
const JOBS: usize = 300;

/// Each job's name and the value its row has in column 1, when the query
/// selects `compilation_job_name` then one Utf8 column.
async fn strings_by_name(server: &TestServer, sql: &str) -> BTreeMap<String, Option<String>> {
    let batches = query(server, sql).await.expect("query");
    let mut values = BTreeMap::new();
    for batch in &batches {
        assert_eq!(batch.column(1).data_type(), &DataType::Utf8, "{sql}");
        let name = batch.schema().field(1).name().clone();
        for row in 0..batch.num_rows() {
            let job = string_at(batch, "compilation_job_name", row).expect("name");
            values.insert(job, string_at(batch, &name, row));
        }
    }
    values
}

/// As [`strings_by_name`], for an Int64 column.
async fn ints_by_name(server: &TestServer, sql: &str) -> BTreeMap<String, Option<i64>> {
    let batches = query(server, sql).await.expect("query");
    let mut values = BTreeMap::new();
    for batch in &batches {
        let ints = batch.column(1).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let job = string_at(batch, "compilation_job_name", row).expect("name");
            values.insert(job, ints.is_valid(row).then(|| ints.value(row)));
        }
    }
    values
}

/// `extract` applied to each emulated job's Describe body, by name.
fn expected<T>(server: &TestServer, extract: impl Fn(&Value) -> Option<T>) -> BTreeMap<String, T>
where
    T: Clone,
{
    server
        .emulator
        .state()
        .jobs()
        .iter()
        .filter_map(|job| {
            let name = job.describe["CompilationJobName"].as_str()?.to_owned();
            extract(&job.describe).map(|value| (name, value))
        })
        .collect()
}

/// Every job of the emulator, by name, with `extract` of its Describe body
/// (`None` where it has no such value).
fn expected_all<T: Clone>(
    server: &TestServer,
    extract: impl Fn(&Value) -> Option<T>,
) -> BTreeMap<String, Option<T>> {
    expected(server, |describe| Some(extract(describe)))
}

/// The JSON that a string member of the Describe body holds (AWS sends
/// DataInputConfig and CompilerOptions as strings of JSON).
fn parse_member(describe: &Value, outer: &str, member: &str) -> Option<Value> {
    serde_json::from_str(describe[outer][member].as_str()?).ok()
}

#[tokio::test]
async fn json_get_str_reads_the_target_device_of_each_job() {
    let server = TestServer::builder(emulator_config(JOBS)).start().await;
    let got = strings_by_name(
        &server,
        &format!(
            "SELECT compilation_job_name, json_get_str(output_config, 'TargetDevice') AS device FROM {TABLE}"
        ),
    )
    .await;
    let want = expected_all(&server, |d| {
        d["OutputConfig"]["TargetDevice"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(got.len(), JOBS);
    assert_eq!(got, want);
    // Both kinds of jobs are there: a device, or a platform (no device: NULL).
    assert!(got.values().any(Option::is_some));
    assert!(got.values().any(Option::is_none));

    // The ->> operator reads the same text.
    let arrow = strings_by_name(
        &server,
        &format!(
            "SELECT compilation_job_name, output_config ->> 'TargetDevice' AS device FROM {TABLE}"
        ),
    )
    .await;
    assert_eq!(arrow, want);
    server.stop().await;
}

#[tokio::test]
async fn nested_paths_reach_into_objects_and_into_json_held_in_strings() {
    let server = TestServer::builder(emulator_config(JOBS)).start().await;

    // An object inside an object: OutputConfig.TargetPlatform.Os.
    let os = strings_by_name(
        &server,
        &format!(
            "SELECT compilation_job_name, json_get_str(output_config, 'TargetPlatform', 'Os') AS os FROM {TABLE}"
        ),
    )
    .await;
    let want = expected_all(&server, |d| {
        d["OutputConfig"]["TargetPlatform"]["Os"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(os, want);
    assert!(
        os.values().any(Option::is_some),
        "some jobs target a platform"
    );

    // DataInputConfig is a string of JSON inside input_config: the second
    // dimension of the `data` input, through two calls.
    let dimension = ints_by_name(
        &server,
        &format!(
            "SELECT compilation_job_name, \
                    json_get_int(json_get_str(input_config, 'DataInputConfig'), 'data', 1) AS d \
             FROM {TABLE}"
        ),
    )
    .await;
    let want = expected_all(&server, |d| {
        parse_member(d, "InputConfig", "DataInputConfig")?["data"][1].as_i64()
    });
    assert_eq!(dimension, want);
    assert!(dimension.values().any(|v| *v == Some(3)), "{dimension:?}");
    server.stop().await;
}

#[tokio::test]
async fn json_get_int_json_get_and_json_contains_match_the_describe_bodies() {
    let server = TestServer::builder(emulator_config(JOBS)).start().await;

    let runtime = ints_by_name(
        &server,
        &format!(
            "SELECT compilation_job_name, json_get_int(stopping_condition, 'MaxRuntimeInSeconds') AS r FROM {TABLE}"
        ),
    )
    .await;
    let want = expected_all(&server, |d| {
        d["StoppingCondition"]["MaxRuntimeInSeconds"].as_i64()
    });
    assert_eq!(runtime, want);
    assert!(runtime.values().any(Option::is_some));

    // json_get answers a union of JSON types; cast to an integer it is
    // rewritten to json_get_int, and gives the same numbers.
    let batches = query(
        &server,
        &format!(
            "SELECT compilation_job_name, \
                    json_get(stopping_condition, 'MaxRuntimeInSeconds') AS raw, \
                    json_get(stopping_condition, 'MaxRuntimeInSeconds')::bigint AS cast \
             FROM {TABLE}"
        ),
    )
    .await
    .expect("json_get");
    let options = FormatOptions::default().with_null("NULL");
    for batch in &batches {
        assert!(
            matches!(batch.column(1).data_type(), DataType::Union(..)),
            "{:?}",
            batch.column(1).data_type()
        );
        let raw = ArrayFormatter::try_new(batch.column(1).as_ref(), &options).expect("format");
        let cast = batch.column(2).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let name = string_at(batch, "compilation_job_name", row).expect("name");
            let want = want.get(&name).copied().flatten();
            assert_eq!(cast.is_valid(row).then(|| cast.value(row)), want, "{name}");
            if let Some(seconds) = want {
                let shown = raw.value(row).to_string();
                assert!(shown.contains(&seconds.to_string()), "{name}: {shown}");
            }
        }
    }

    // json_contains: whether input_config has a DataInputConfig member.
    let batches = query(
        &server,
        &format!(
            "SELECT compilation_job_name, json_contains(input_config, 'DataInputConfig') AS has FROM {TABLE}"
        ),
    )
    .await
    .expect("json_contains");
    let mut has = BTreeMap::new();
    for batch in &batches {
        let flags = batch.column(1).as_boolean();
        for row in 0..batch.num_rows() {
            let name = string_at(batch, "compilation_job_name", row).expect("name");
            has.insert(name, flags.value(row));
        }
    }
    let want = expected(&server, |d| {
        Some(d["InputConfig"].get("DataInputConfig").is_some())
    });
    assert_eq!(has, want);
    assert!(has.values().any(|h| *h) && has.values().any(|h| !*h));
    server.stop().await;
}

#[tokio::test]
async fn a_where_clause_filters_on_a_json_field() {
    let server = TestServer::builder(emulator_config(JOBS)).start().await;
    let batches = query(
        &server,
        &format!(
            "SELECT compilation_job_name FROM {TABLE} \
             WHERE json_get_str(input_config, 'Framework') = 'PYTORCH' \
               AND json_get_int(stopping_condition, 'MaxRuntimeInSeconds') > 0"
        ),
    )
    .await
    .expect("query");
    let got = common::job_names(&batches);
    let mut want: Vec<String> = expected(&server, |d| {
        let pytorch = d["InputConfig"]["Framework"] == "PYTORCH";
        let runs = d["StoppingCondition"]["MaxRuntimeInSeconds"]
            .as_i64()
            .is_some_and(|s| s > 0);
        (pytorch && runs).then_some(())
    })
    .into_keys()
    .collect();
    want.sort();
    assert!(!want.is_empty(), "the data has PyTorch jobs");
    assert!(want.len() < JOBS, "and others");
    assert_eq!(got, want);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_key_is_null_not_an_error() {
    let server = TestServer::builder(emulator_config(50)).start().await;
    let batches = query(
        &server,
        &format!(
            "SELECT json_get_str(output_config, 'NoSuchMember') AS a, \
                    json_get_int(stopping_condition, 'MaxRuntimeInSeconds', 'deeper') AS b, \
                    json_get_str(input_config, 'Framework', 0) AS c, \
                    json_contains(output_config, 'NoSuchMember') AS d \
             FROM {TABLE}"
        ),
    )
    .await
    .expect("query");
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 50);
    for batch in &batches {
        for column in 0..3 {
            assert_eq!(
                batch.column(column).null_count(),
                batch.num_rows(),
                "column {column} is all NULL"
            );
        }
        let contains = batch.column(3).as_boolean();
        assert_eq!(contains.true_count(), 0);
    }
    server.stop().await;
}
