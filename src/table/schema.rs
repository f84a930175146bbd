//! The one place that spells the table's name, its column names, their order
//! and their Arrow types (contract: `shared/spec/aws.sagemaker_compilation_job.md`).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// The canonical, schema-qualified table name.
pub const TABLE_NAME: &str = "aws.sagemaker_compilation_job";
/// The schema part of [`TABLE_NAME`].
pub const TABLE_SCHEMA: &str = "aws";
/// The table part of [`TABLE_NAME`].
pub const TABLE_UNQUALIFIED: &str = "sagemaker_compilation_job";
/// With a replica (`serve --store`), the live table: every query of it
/// calls SageMaker, as the table does without a replica.
pub const LIVE_TABLE_UNQUALIFIED: &str = "sagemaker_compilation_job_live";
/// With a replica, how fresh each partition of it is (one row each).
pub const FRESHNESS_TABLE_UNQUALIFIED: &str = "sagemaker_compilation_job_freshness";
/// The replica's history (`--store`): one row per observed version of a job.
pub const HISTORY_TABLE_UNQUALIFIED: &str = "sagemaker_compilation_job_history";
/// The replica's change feed (`--store`): an endless stream of its changes.
pub const CHANGES_TABLE_UNQUALIFIED: &str = "sagemaker_compilation_job_changes";

/// Which SageMaker call a column's value comes from. It decides which calls a
/// query must make: summary columns need only ListCompilationJobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnSource {
    /// Present in every ListCompilationJobs summary.
    Summary,
    /// Needs DescribeCompilationJob.
    Describe,
    /// Needs ListTags.
    Tags,
}

/// How a column is encoded in Arrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Utf8.
    String,
    /// Timestamp(Microsecond, "UTC"). AWS sends millisecond precision.
    Timestamp,
    /// Utf8 holding compact JSON text of the structure exactly as AWS returns
    /// it (PascalCase keys).
    Json,
    /// Map<Utf8, Utf8> of tag keys to values.
    Tags,
}

/// Every column of `aws.sagemaker_compilation_job`, in the spec's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the column of the same name
pub enum Column {
    Key,
    AccountId,
    CompilationEndTime,
    CompilationJobArn,
    CompilationJobName,
    CompilationJobStatus,
    CompilationStartTime,
    CreationTime,
    DerivedInformation,
    FailureReason,
    InferenceImage,
    InputConfig,
    LastModifiedTime,
    ModelArtifacts,
    ModelDigests,
    ModelPackageVersionArn,
    OutputConfig,
    RoleArn,
    StoppingCondition,
    Tags,
    VpcConfig,
}

/// All columns in schema order; `ALL_COLUMNS[i]` is field `i` of [`table_schema`].
pub const ALL_COLUMNS: [Column; 21] = [
    Column::Key,
    Column::AccountId,
    Column::CompilationEndTime,
    Column::CompilationJobArn,
    Column::CompilationJobName,
    Column::CompilationJobStatus,
    Column::CompilationStartTime,
    Column::CreationTime,
    Column::DerivedInformation,
    Column::FailureReason,
    Column::InferenceImage,
    Column::InputConfig,
    Column::LastModifiedTime,
    Column::ModelArtifacts,
    Column::ModelDigests,
    Column::ModelPackageVersionArn,
    Column::OutputConfig,
    Column::RoleArn,
    Column::StoppingCondition,
    Column::Tags,
    Column::VpcConfig,
];

impl Column {
    /// The column's name in SQL and in the Arrow schema.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Key => "_key",
            Column::AccountId => "account_id",
            Column::CompilationEndTime => "compilation_end_time",
            Column::CompilationJobArn => "compilation_job_arn",
            Column::CompilationJobName => "compilation_job_name",
            Column::CompilationJobStatus => "compilation_job_status",
            Column::CompilationStartTime => "compilation_start_time",
            Column::CreationTime => "creation_time",
            Column::DerivedInformation => "derived_information",
            Column::FailureReason => "failure_reason",
            Column::InferenceImage => "inference_image",
            Column::InputConfig => "input_config",
            Column::LastModifiedTime => "last_modified_time",
            Column::ModelArtifacts => "model_artifacts",
            Column::ModelDigests => "model_digests",
            Column::ModelPackageVersionArn => "model_package_version_arn",
            Column::OutputConfig => "output_config",
            Column::RoleArn => "role_arn",
            Column::StoppingCondition => "stopping_condition",
            Column::Tags => "tags",
            Column::VpcConfig => "vpc_config",
        }
    }

    /// What the column holds, as the table's contract describes it (the
    /// REMARKS of GetTables and of a result's column metadata).
    pub const fn description(self) -> &'static str {
        match self {
            Column::Key => "The job's unique key: its ARN.",
            Column::AccountId => "The AWS account the job belongs to (from its ARN).",
            Column::CompilationEndTime => {
                "The time when the model compilation job on a compilation job instance ended. For a successful or stopped job, this is when the job's model artifacts have finished uploading. For a failed job, this is when Amazon SageMaker AI detected that the job failed."
            }
            Column::CompilationJobArn => {
                "The Amazon Resource Name (ARN) of the model compilation job."
            }
            Column::CompilationJobName => "The name of the model compilation job.",
            Column::CompilationJobStatus => "The status of the model compilation job.",
            Column::CompilationStartTime => {
                "The time when the model compilation job started the CompilationJob instances. You are billed for the time between this timestamp and the timestamp in the CompilationEndTime field. In Amazon CloudWatch Logs, the start time might be later than this time. That's because it takes time to download the compilation job, which depends on the size of the compilation job container."
            }
            Column::CreationTime => "The time that the model compilation job was created.",
            Column::DerivedInformation => {
                "Information that SageMaker Neo automatically derived about the model."
            }
            Column::FailureReason => "If a model compilation job failed, the reason it failed.",
            Column::InferenceImage => {
                "The inference image to use when compiling a model. Specify an image only if the target device is a cloud instance."
            }
            Column::InputConfig => {
                "Information about the location in Amazon S3 of the input model artifacts, the name and shape of the expected data inputs, and the framework in which the model was trained."
            }
            Column::LastModifiedTime => {
                "The time that the status of the model compilation job was last modified."
            }
            Column::ModelArtifacts => {
                "Information about the location in Amazon S3 that has been configured for storing the model artifacts used in the compilation job."
            }
            Column::ModelDigests => {
                "Provides a BLAKE2 hash value that identifies the compiled model artifacts in Amazon S3."
            }
            Column::ModelPackageVersionArn => {
                "The Amazon Resource Name (ARN) of the versioned model package that was provided to SageMaker Neo when you initiated a compilation job."
            }
            Column::OutputConfig => {
                "Information about the output location for the compiled model and the target device that the model runs on."
            }
            Column::RoleArn => {
                "The Amazon Resource Name (ARN) of an IAM role that Amazon SageMaker AI assumes to perform the model compilation job."
            }
            Column::StoppingCondition => {
                "Specifies a limit to how long a model compilation job can run. When the job reaches the time limit, Amazon SageMaker AI ends the compilation job. Use this API to cap model training costs."
            }
            Column::Tags => "The job's tags: each key to its value (empty for a job without tags).",
            Column::VpcConfig => {
                "A VpcConfig object that specifies the VPC that you want your compilation job to connect to. Control access to your models by configuring the VPC. For more information, see Protect Compilation Jobs by Using an Amazon Virtual Private Cloud."
            }
        }
    }

    /// The column's encoding.
    pub const fn kind(self) -> ColumnKind {
        match self {
            Column::CompilationEndTime
            | Column::CompilationStartTime
            | Column::CreationTime
            | Column::LastModifiedTime => ColumnKind::Timestamp,
            Column::DerivedInformation
            | Column::InputConfig
            | Column::ModelArtifacts
            | Column::ModelDigests
            | Column::OutputConfig
            | Column::StoppingCondition
            | Column::VpcConfig => ColumnKind::Json,
            Column::Tags => ColumnKind::Tags,
            _ => ColumnKind::String,
        }
    }

    /// The call that supplies the column's value.
    pub const fn source(self) -> ColumnSource {
        match self {
            Column::Key
            | Column::AccountId
            | Column::CompilationEndTime
            | Column::CompilationJobArn
            | Column::CompilationJobName
            | Column::CompilationJobStatus
            | Column::CompilationStartTime
            | Column::CreationTime
            | Column::LastModifiedTime => ColumnSource::Summary,
            Column::Tags => ColumnSource::Tags,
            _ => ColumnSource::Describe,
        }
    }

    /// Whether the column can be null. Name, ARN (and so `_key` and
    /// `account_id`), status and creation time are required in every
    /// summary; `tags` is an empty map for a job without tags. Everything
    /// else is optional in at least one of the API's shapes.
    pub const fn nullable(self) -> bool {
        !matches!(
            self,
            Column::Key
                | Column::AccountId
                | Column::CompilationJobArn
                | Column::CompilationJobName
                | Column::CompilationJobStatus
                | Column::CreationTime
                | Column::Tags
        )
    }

    /// The Arrow field for this column.
    pub fn field(self) -> Field {
        let data_type = match self.kind() {
            ColumnKind::String | ColumnKind::Json => DataType::Utf8,
            ColumnKind::Timestamp => timestamp_type(),
            ColumnKind::Tags => tags_type(),
        };
        Field::new(self.name(), data_type, self.nullable())
    }

    /// Looks a column up by its name.
    pub fn from_name(name: &str) -> Option<Column> {
        ALL_COLUMNS.into_iter().find(|c| c.name() == name)
    }
}

/// The Arrow type of every timestamp column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The map's entry field names. pyarrow and polars both read them.
pub const TAGS_ENTRIES: &str = "entries";
/// Name of the map's key field.
pub const TAGS_KEY: &str = "key";
/// Name of the map's value field.
pub const TAGS_VALUE: &str = "value";

/// The fields inside a tags map entry: keys and values are never null (AWS
/// requires both; a value may be the empty string).
pub fn tags_entry_fields() -> Fields {
    Fields::from(vec![
        Field::new(TAGS_KEY, DataType::Utf8, false),
        Field::new(TAGS_VALUE, DataType::Utf8, false),
    ])
}

/// Map<Utf8, Utf8>, keys unsorted (they come in ListTags order).
pub fn tags_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            TAGS_ENTRIES,
            DataType::Struct(tags_entry_fields()),
            false,
        )),
        false,
    )
}

static TABLE_SCHEMA_REF: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        ALL_COLUMNS.iter().map(|c| c.field()).collect::<Vec<_>>(),
    ))
});

/// The full table schema, shared (cheap to clone).
pub fn table_schema() -> SchemaRef {
    TABLE_SCHEMA_REF.clone()
}

/// Whether a PATH descriptor names the change feed
/// (`["aws.sagemaker_compilation_job_changes"]` or
/// `["aws", "sagemaker_compilation_job_changes"]`).
pub fn is_changes_path(path: &[String]) -> bool {
    match path {
        [one] => one
            .strip_prefix(TABLE_SCHEMA)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|table| table == CHANGES_TABLE_UNQUALIFIED),
        [schema, table] => schema == TABLE_SCHEMA && table == CHANGES_TABLE_UNQUALIFIED,
        _ => false,
    }
}

/// Whether `path` (a Flight PATH descriptor) names the table: either the one
/// segment `aws.sagemaker_compilation_job` or the two segments `aws`,
/// `sagemaker_compilation_job`.
pub fn is_table_path(path: &[String]) -> bool {
    match path {
        [one] => one == TABLE_NAME,
        [schema, table] => schema == TABLE_SCHEMA && table == TABLE_UNQUALIFIED,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_in_spec_order_and_unique() {
        let names: Vec<_> = ALL_COLUMNS.iter().map(|c| c.name()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        // The spec lists the columns alphabetically ('_' sorts first).
        assert_eq!(names, sorted);
        sorted.dedup();
        assert_eq!(sorted.len(), 21);
        for c in ALL_COLUMNS {
            assert_eq!(Column::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn table_paths() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_table_path(&p(&["aws.sagemaker_compilation_job"])));
        assert!(is_table_path(&p(&["aws", "sagemaker_compilation_job"])));
        assert!(!is_table_path(&p(&["sagemaker_compilation_job"])));
        assert!(!is_table_path(&p(&["aws", "other"])));
        assert!(!is_table_path(&p(&[])));
    }
}
