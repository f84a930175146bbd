//! SageMaker answers -> Arrow: builds one [`RecordBatch`] from a slice of
//! [`JobRecord`]s, for any projection of the table's columns.
//!
//! Where a job was described, every value comes from the Describe answer (the
//! newest view of the job); otherwise from its listed summary. JSON columns
//! hold compact JSON of the structure with AWS's own PascalCase member names,
//! members AWS did not send left out.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, MapBuilder, MapFieldNames, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use aws_sdk_sagemaker::operation::describe_compilation_job::DescribeCompilationJobOutput;
use aws_smithy_types::DateTime;
use serde_json::{Map, Value};

use crate::source::JobRecord;
use crate::table::schema::{Column, ColumnKind, TAGS_ENTRIES, TAGS_KEY, TAGS_VALUE};

/// Builds a batch of `records` holding `columns` (in that order), whose
/// schema is `schema` (the matching projection of the table schema).
pub fn records_to_batch(
    schema: &SchemaRef,
    columns: &[Column],
    records: &[JobRecord],
) -> Result<RecordBatch, ArrowError> {
    let arrays = columns
        .iter()
        .map(|&column| build_column(column, records))
        .collect::<Result<Vec<_>, _>>()?;
    // The row count must be explicit: a projection may have no columns at all
    // (SELECT count(*)).
    let options = RecordBatchOptions::new().with_row_count(Some(records.len()));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
}

fn build_column(column: Column, records: &[JobRecord]) -> Result<ArrayRef, ArrowError> {
    let array: ArrayRef = match column.kind() {
        ColumnKind::String => {
            let mut builder = StringBuilder::with_capacity(records.len(), records.len() * 32);
            for record in records {
                builder.append_option(string_value(column, record));
            }
            Arc::new(builder.finish())
        }
        ColumnKind::Json => {
            let mut builder = StringBuilder::with_capacity(records.len(), records.len() * 96);
            for record in records {
                builder.append_option(json_value(column, record).map(|v| v.to_string()));
            }
            Arc::new(builder.finish())
        }
        ColumnKind::Timestamp => {
            let mut builder =
                TimestampMicrosecondBuilder::with_capacity(records.len()).with_timezone("UTC");
            for record in records {
                builder.append_option(timestamp_value(column, record).map(to_micros));
            }
            Arc::new(builder.finish())
        }
        ColumnKind::Tags => Arc::new(build_tags(records)?),
    };
    Ok(array)
}

fn build_tags(records: &[JobRecord]) -> Result<arrow::array::MapArray, ArrowError> {
    let names = MapFieldNames {
        entry: TAGS_ENTRIES.into(),
        key: TAGS_KEY.into(),
        value: TAGS_VALUE.into(),
    };
    let value_field = Arc::new(arrow::datatypes::Field::new(
        TAGS_VALUE,
        arrow::datatypes::DataType::Utf8,
        false,
    ));
    let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
        .with_values_field(value_field);
    for record in records {
        // A record fetched without tags only appears when `tags` was not
        // projected; an empty map keeps the column non-null either way.
        for (key, value) in record.tags.iter().flatten() {
            builder.keys().append_value(key);
            builder.values().append_value(value);
        }
        builder.append(true)?;
    }
    Ok(builder.finish())
}

fn describe(record: &JobRecord) -> Option<&DescribeCompilationJobOutput> {
    record.describe.as_ref()
}

fn string_value(column: Column, record: &JobRecord) -> Option<&str> {
    let summary = &record.summary;
    let described = describe(record);
    match column {
        Column::Key | Column::CompilationJobArn => Some(
            described
                .and_then(|d| d.compilation_job_arn())
                .unwrap_or(&summary.arn),
        ),
        Column::AccountId => Some(&summary.account_id),
        Column::CompilationJobName => Some(
            described
                .and_then(|d| d.compilation_job_name())
                .unwrap_or(&summary.name),
        ),
        Column::CompilationJobStatus => Some(
            described
                .and_then(|d| d.compilation_job_status())
                .map(|s| s.as_str())
                .unwrap_or(&summary.status),
        ),
        // AWS always sends FailureReason, as "" for a job that did not fail;
        // NULL says "no reason" in SQL terms.
        Column::FailureReason => described
            .and_then(|d| d.failure_reason())
            .filter(|r| !r.is_empty()),
        Column::InferenceImage => described.and_then(|d| d.inference_image()),
        Column::ModelPackageVersionArn => described.and_then(|d| d.model_package_version_arn()),
        Column::RoleArn => described.and_then(|d| d.role_arn()),
        _ => None,
    }
}

/// The value of timestamp `column` in `record`: the Describe answer's,
/// else the summary's.
pub fn timestamp_value(column: Column, record: &JobRecord) -> Option<&DateTime> {
    let summary = &record.summary;
    let described = describe(record);
    match column {
        Column::CreationTime => Some(
            described
                .and_then(|d| d.creation_time())
                .unwrap_or(&summary.creation_time),
        ),
        Column::LastModifiedTime => described
            .and_then(|d| d.last_modified_time())
            .or_else(|| summary.raw.last_modified_time()),
        Column::CompilationStartTime => described
            .map(|d| d.compilation_start_time())
            .unwrap_or_else(|| summary.raw.compilation_start_time()),
        Column::CompilationEndTime => described
            .map(|d| d.compilation_end_time())
            .unwrap_or_else(|| summary.raw.compilation_end_time()),
        _ => None,
    }
}

/// Microseconds since the epoch, rounded to the nearest microsecond: AWS's
/// millisecond values parsed from fractional seconds land a few nanoseconds
/// off, and truncation would turn .123 into .122999.
pub fn to_micros(time: &DateTime) -> i64 {
    time.secs() * 1_000_000 + (i64::from(time.subsec_nanos()) + 500) / 1_000
}

/// A JSON object holding only the members that are present.
#[derive(Default)]
struct JsonObject(Map<String, Value>);

impl JsonObject {
    fn string(mut self, key: &str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), Value::from(value));
        }
        self
    }

    fn int(mut self, key: &str, value: Option<i32>) -> Self {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), Value::from(value));
        }
        self
    }

    fn value(mut self, key: &str, value: Option<Value>) -> Self {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    fn finish(self) -> Value {
        Value::Object(self.0)
    }
}

fn json_value(column: Column, record: &JobRecord) -> Option<Value> {
    let d = describe(record)?;
    match column {
        Column::StoppingCondition => d.stopping_condition().map(|s| {
            JsonObject::default()
                .int("MaxRuntimeInSeconds", s.max_runtime_in_seconds())
                .int("MaxWaitTimeInSeconds", s.max_wait_time_in_seconds())
                .int("MaxPendingTimeInSeconds", s.max_pending_time_in_seconds())
                .finish()
        }),
        Column::ModelArtifacts => d.model_artifacts().map(|m| {
            JsonObject::default()
                .string("S3ModelArtifacts", m.s3_model_artifacts())
                .finish()
        }),
        Column::ModelDigests => d.model_digests().map(|m| {
            JsonObject::default()
                .string("ArtifactDigest", m.artifact_digest())
                .finish()
        }),
        Column::InputConfig => d.input_config().map(|i| {
            JsonObject::default()
                .string("S3Uri", i.s3_uri())
                .string("DataInputConfig", i.data_input_config())
                .string("Framework", i.framework().map(|f| f.as_str()))
                .string("FrameworkVersion", i.framework_version())
                .finish()
        }),
        Column::OutputConfig => d.output_config().map(|o| {
            let platform = o.target_platform().map(|p| {
                JsonObject::default()
                    .string("Os", p.os().map(|v| v.as_str()))
                    .string("Arch", p.arch().map(|v| v.as_str()))
                    .string("Accelerator", p.accelerator().map(|v| v.as_str()))
                    .finish()
            });
            JsonObject::default()
                .string("S3OutputLocation", o.s3_output_location())
                .string("TargetDevice", o.target_device().map(|v| v.as_str()))
                .value("TargetPlatform", platform)
                .string("CompilerOptions", o.compiler_options())
                .string("KmsKeyId", o.kms_key_id())
                .finish()
        }),
        Column::VpcConfig => d.vpc_config().map(|v| {
            JsonObject::default()
                .value(
                    "SecurityGroupIds",
                    Some(Value::from(v.security_group_ids())),
                )
                .value("Subnets", Some(Value::from(v.subnets())))
                .finish()
        }),
        Column::DerivedInformation => d.derived_information().map(|i| {
            JsonObject::default()
                .string("DerivedDataInputConfig", i.derived_data_input_config())
                .finish()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::JobSummary;
    use crate::table::schema::{ALL_COLUMNS, table_schema};
    use aws_sdk_sagemaker::types::{
        CompilationJobStatus, CompilationJobSummary, InputConfig, OutputConfig, TargetPlatform,
        TargetPlatformArch, TargetPlatformOs,
    };

    fn summary_only(name: &str) -> JobRecord {
        let raw = CompilationJobSummary::builder()
            .compilation_job_name(name)
            .compilation_job_arn(format!(
                "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}"
            ))
            .compilation_job_status(CompilationJobStatus::Inprogress)
            .creation_time(DateTime::from_secs(1_700_000_000))
            .build();
        JobRecord {
            summary: JobSummary::try_from(raw).expect("complete summary"),
            describe: None,
            tags: None,
        }
    }

    #[test]
    fn micros_round_to_nearest() {
        assert_eq!(
            to_micros(&DateTime::from_secs_f64(1_700_000_000.123)),
            1_700_000_000_123_000
        );
        assert_eq!(to_micros(&DateTime::from_secs(-1)), -1_000_000);
    }

    #[test]
    fn summary_only_rows_fill_summary_columns_and_null_the_rest() {
        let schema = table_schema();
        let batch = records_to_batch(&schema, &ALL_COLUMNS, &[summary_only("a")]).expect("batch");
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), schema);
        for (i, column) in ALL_COLUMNS.iter().enumerate() {
            let nulls = batch.column(i).null_count();
            let expect_null = matches!(
                column,
                Column::DerivedInformation
                    | Column::FailureReason
                    | Column::InferenceImage
                    | Column::InputConfig
                    | Column::LastModifiedTime
                    | Column::ModelArtifacts
                    | Column::ModelDigests
                    | Column::ModelPackageVersionArn
                    | Column::OutputConfig
                    | Column::RoleArn
                    | Column::StoppingCondition
                    | Column::VpcConfig
                    | Column::CompilationStartTime
                    | Column::CompilationEndTime
            );
            assert_eq!(nulls, usize::from(expect_null), "{}", column.name());
        }
    }

    #[test]
    fn json_members_keep_aws_names_and_omit_absent_ones() {
        let mut record = summary_only("b");
        record.describe = Some(
            DescribeCompilationJobOutput::builder()
                .input_config(
                    InputConfig::builder()
                        .s3_uri("s3://bucket/model.tar.gz")
                        .framework(aws_sdk_sagemaker::types::Framework::Pytorch)
                        .build(),
                )
                .output_config(
                    OutputConfig::builder()
                        .s3_output_location("s3://bucket/out")
                        .target_platform(
                            TargetPlatform::builder()
                                .os(TargetPlatformOs::Linux)
                                .arch(TargetPlatformArch::Arm64)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        );
        assert_eq!(
            json_value(Column::InputConfig, &record).map(|v| v.to_string()),
            Some(r#"{"Framework":"PYTORCH","S3Uri":"s3://bucket/model.tar.gz"}"#.to_owned())
        );
        assert_eq!(
            json_value(Column::OutputConfig, &record).map(|v| v.to_string()),
            Some(
                r#"{"S3OutputLocation":"s3://bucket/out","TargetPlatform":{"Arch":"ARM64","Os":"LINUX"}}"#
                    .to_owned()
            )
        );
        assert_eq!(json_value(Column::VpcConfig, &record), None);
    }

    #[test]
    fn an_empty_projection_keeps_the_row_count() {
        let schema = Arc::new(table_schema().project(&[]).expect("projection"));
        let records = vec![summary_only("a"), summary_only("b")];
        let batch = records_to_batch(&schema, &[], &records).expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), 0);
    }
}
