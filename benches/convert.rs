//! SageMaker answers -> Arrow: `records_to_batch` over realistic
//! [`JobRecord`]s, for batches of 1024 and 8192 rows, all 21 columns and the
//! summary columns only (what a query that needs no Describe builds).
//!
//! ```sh
//! cargo bench --bench convert                 # full criterion run
//! cargo bench --bench convert -- --quick      # a short one
//! ```
//!
//! The records carry the emulator's generated jobs (`emulator/src/data.rs`:
//! names, statuses, timelines, input shapes, target devices and platforms,
//! compiler options, KMS keys, VPC configs, digests, failure reasons, tags)
//! rebuilt with the SDK's builders, every member the Describe answer has
//! filled, the way the SDK's deserializer hands them to the source. Run by
//! `cargo test --all-targets` (no `--bench` flag) it uses tiny batches: the
//! criterion test mode runs each benchmark once.
//!
//! `benches/encode.rs` includes this file as a module for
//! [`realistic_records`].

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;
use aws_sdk_sagemaker::types::{
    CompilationJobStatus, CompilationJobSummary, DerivedInformation, Framework, InputConfig,
    ModelArtifacts, ModelDigests, NeoVpcConfig, OutputConfig, StoppingCondition, TargetDevice,
    TargetPlatform, TargetPlatformAccelerator, TargetPlatformArch, TargetPlatformOs,
};
use aws_smithy_types::DateTime;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sagemaker_emulator::{Emulator, EmulatorConfig};
use sagemaker_flight::source::{JobRecord, JobSummary};
use sagemaker_flight::table::convert::records_to_batch;
use sagemaker_flight::table::schema::{ALL_COLUMNS, Column, ColumnSource, table_schema};
use serde_json::Value;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` does not (and
/// `cargo bench -- --test` asks for the test mode too).
pub fn full_size() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// `count` jobs as the source delivers them for `SELECT *`: summary,
/// Describe answer and every tag. The jobs are the emulator's, generated
/// deterministically (fixed seed and anchor), so runs compare.
pub fn realistic_records(count: usize) -> Vec<JobRecord> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let jobs = runtime.block_on(async {
        let config = EmulatorConfig {
            jobs: count,
            seed: 1,
            anchor: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            ..EmulatorConfig::default()
        };
        // Only its generated jobs are used: no call is made.
        let emulator = Emulator::start(config, ([127, 0, 0, 1], 0).into())
            .await
            .expect("emulator");
        let jobs = emulator.state().jobs();
        emulator.shutdown().await;
        jobs
    });
    jobs.into_iter()
        .map(|job| {
            let describe = describe_output(&job.describe);
            JobRecord {
                summary: JobSummary::try_from(summary(&job.describe)).expect("complete summary"),
                describe: Some(describe),
                tags: Some(job.tags),
            }
        })
        .collect()
}

/// A timestamp member as the SDK reads it (AWS JSON 1.1 sends fractional
/// epoch seconds).
fn time(value: &Value) -> Option<DateTime> {
    value.as_f64().map(DateTime::from_secs_f64)
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn int(value: &Value) -> Option<i32> {
    value
        .as_i64()
        .map(|n| i32::try_from(n).expect("i32 member"))
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(text).collect())
}

/// The ListCompilationJobs summary of a job (the emulator derives it from
/// the same record: target fields come from its OutputConfig).
fn summary(d: &Value) -> CompilationJobSummary {
    let platform = &d["OutputConfig"]["TargetPlatform"];
    CompilationJobSummary::builder()
        .set_compilation_job_name(text(&d["CompilationJobName"]))
        .set_compilation_job_arn(text(&d["CompilationJobArn"]))
        .set_creation_time(time(&d["CreationTime"]))
        .set_compilation_start_time(time(&d["CompilationStartTime"]))
        .set_compilation_end_time(time(&d["CompilationEndTime"]))
        .set_compilation_target_device(
            d["OutputConfig"]["TargetDevice"]
                .as_str()
                .map(TargetDevice::from),
        )
        .set_compilation_target_platform_os(platform["Os"].as_str().map(TargetPlatformOs::from))
        .set_compilation_target_platform_arch(
            platform["Arch"].as_str().map(TargetPlatformArch::from),
        )
        .set_compilation_target_platform_accelerator(
            platform["Accelerator"]
                .as_str()
                .map(TargetPlatformAccelerator::from),
        )
        .set_last_modified_time(time(&d["LastModifiedTime"]))
        .set_compilation_job_status(
            d["CompilationJobStatus"]
                .as_str()
                .map(CompilationJobStatus::from),
        )
        .build()
}

/// The DescribeCompilationJob answer, every member the emulator sent.
fn describe_output(d: &Value) -> DescribeCompilationJobOutput {
    let stopping = &d["StoppingCondition"];
    let input = &d["InputConfig"];
    let output = &d["OutputConfig"];
    let platform = &output["TargetPlatform"];
    DescribeCompilationJobOutput::builder()
        .set_compilation_job_name(text(&d["CompilationJobName"]))
        .set_compilation_job_arn(text(&d["CompilationJobArn"]))
        .set_compilation_job_status(
            d["CompilationJobStatus"]
                .as_str()
                .map(CompilationJobStatus::from),
        )
        .set_compilation_start_time(time(&d["CompilationStartTime"]))
        .set_compilation_end_time(time(&d["CompilationEndTime"]))
        .set_stopping_condition(stopping.is_object().then(|| {
            StoppingCondition::builder()
                .set_max_runtime_in_seconds(int(&stopping["MaxRuntimeInSeconds"]))
                .set_max_wait_time_in_seconds(int(&stopping["MaxWaitTimeInSeconds"]))
                .set_max_pending_time_in_seconds(int(&stopping["MaxPendingTimeInSeconds"]))
                .build()
        }))
        .set_inference_image(text(&d["InferenceImage"]))
        .set_model_package_version_arn(text(&d["ModelPackageVersionArn"]))
        .set_creation_time(time(&d["CreationTime"]))
        .set_last_modified_time(time(&d["LastModifiedTime"]))
        .set_failure_reason(text(&d["FailureReason"]))
        .set_model_artifacts(d["ModelArtifacts"].is_object().then(|| {
            ModelArtifacts::builder()
                .set_s3_model_artifacts(text(&d["ModelArtifacts"]["S3ModelArtifacts"]))
                .build()
        }))
        .set_model_digests(d["ModelDigests"].is_object().then(|| {
            ModelDigests::builder()
                .set_artifact_digest(text(&d["ModelDigests"]["ArtifactDigest"]))
                .build()
        }))
        .set_role_arn(text(&d["RoleArn"]))
        .set_input_config(input.is_object().then(|| {
            InputConfig::builder()
                .set_s3_uri(text(&input["S3Uri"]))
                .set_data_input_config(text(&input["DataInputConfig"]))
                .set_framework(input["Framework"].as_str().map(Framework::from))
                .set_framework_version(text(&input["FrameworkVersion"]))
                .build()
        }))
        .set_output_config(output.is_object().then(|| {
            OutputConfig::builder()
                .set_s3_output_location(text(&output["S3OutputLocation"]))
                .set_target_device(output["TargetDevice"].as_str().map(TargetDevice::from))
                .set_target_platform(platform.is_object().then(|| {
                    TargetPlatform::builder()
                        .set_os(platform["Os"].as_str().map(TargetPlatformOs::from))
                        .set_arch(platform["Arch"].as_str().map(TargetPlatformArch::from))
                        .set_accelerator(
                            platform["Accelerator"]
                                .as_str()
                                .map(TargetPlatformAccelerator::from),
                        )
                        .build()
                }))
                .set_compiler_options(text(&output["CompilerOptions"]))
                .set_kms_key_id(text(&output["KmsKeyId"]))
                .build()
        }))
        .set_vpc_config(d["VpcConfig"].is_object().then(|| {
            NeoVpcConfig::builder()
                .set_security_group_ids(strings(&d["VpcConfig"]["SecurityGroupIds"]))
                .set_subnets(strings(&d["VpcConfig"]["Subnets"]))
                .build()
        }))
        .set_derived_information(d["DerivedInformation"].is_object().then(|| {
            DerivedInformation::builder()
                .set_derived_data_input_config(text(
                    &d["DerivedInformation"]["DerivedDataInputConfig"],
                ))
                .build()
        }))
        .build()
}

fn convert(c: &mut Criterion) {
    let sizes: &[usize] = if full_size() { &[1024, 8192] } else { &[8, 64] };
    let records = realistic_records(*sizes.iter().max().expect("a size"));

    let all_schema = table_schema();
    let summary_columns: Vec<Column> = ALL_COLUMNS
        .into_iter()
        .filter(|c| c.source() == ColumnSource::Summary)
        .collect();
    let summary_indices: Vec<usize> = ALL_COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| c.source() == ColumnSource::Summary)
        .map(|(i, _)| i)
        .collect();
    let summary_schema = std::sync::Arc::new(
        all_schema
            .project(&summary_indices)
            .expect("summary projection"),
    );
    // A summary-only query carries no Describe answer nor tags.
    let listed: Vec<JobRecord> = records
        .iter()
        .map(|r| JobRecord {
            summary: r.summary.clone(),
            describe: None,
            tags: None,
        })
        .collect();

    let mut group = c.benchmark_group("records_to_batch");
    for &rows in sizes {
        group.throughput(Throughput::Elements(rows as u64));
        let described = &records[..rows];
        group.bench_with_input(BenchmarkId::new("all_columns", rows), described, |b, r| {
            b.iter(|| records_to_batch(&all_schema, &ALL_COLUMNS, black_box(r)).expect("batch"))
        });
        let listed = &listed[..rows];
        group.bench_with_input(BenchmarkId::new("summary_columns", rows), listed, |b, r| {
            b.iter(|| {
                records_to_batch(&summary_schema, &summary_columns, black_box(r)).expect("batch")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, convert);
criterion_main!(benches);
