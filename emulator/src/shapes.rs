//! Serde mirrors of the SageMaker shapes the emulator speaks, with the
//! service model's PascalCase member names.
//!
//! The nested structures double as request and response shapes, so their
//! members are all `Option`: requests may omit anything (required members
//! are checked by hand to produce AWS-style `ValidationException`s rather
//! than serde errors), and responses skip `None` the way AWS omits unset
//! members.

use serde::{Deserialize, Serialize, Serializer};

/// Milliseconds since the Unix epoch. The emulator keeps millisecond
/// precision and sends timestamps as fractional epoch seconds, the AWS
/// JSON 1.1 wire format (e.g. `1700000000.123`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Millis(pub(crate) i64);

impl Millis {
    /// Epoch seconds as sent on the wire. `ms / 1000.0` is the correctly
    /// rounded quotient, i.e. the same `f64` a client gets by parsing the
    /// decimal text, which keeps equality comparisons exact.
    pub(crate) fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_secs_f64())
    }
}

/// The six compilation job statuses, in the service model's order.
pub(crate) const STATUSES: [&str; 6] = [
    "INPROGRESS",
    "COMPLETED",
    "FAILED",
    "STARTING",
    "STOPPING",
    "STOPPED",
];

/// `TargetDevice` enum of the service model.
pub(crate) const TARGET_DEVICES: [&str; 37] = [
    "lambda",
    "ml_m4",
    "ml_m5",
    "ml_m6g",
    "ml_c4",
    "ml_c5",
    "ml_c6g",
    "ml_p2",
    "ml_p3",
    "ml_g4dn",
    "ml_inf1",
    "ml_inf2",
    "ml_trn1",
    "ml_eia2",
    "jetson_tx1",
    "jetson_tx2",
    "jetson_nano",
    "jetson_xavier",
    "rasp3b",
    "rasp4b",
    "imx8qm",
    "deeplens",
    "rk3399",
    "rk3288",
    "aisage",
    "sbe_c",
    "qcs605",
    "qcs603",
    "sitara_am57x",
    "amba_cv2",
    "amba_cv22",
    "amba_cv25",
    "x86_win32",
    "x86_win64",
    "coreml",
    "jacinto_tda4vm",
    "imx8mplus",
];

/// `Framework` enum of the service model.
pub(crate) const FRAMEWORKS: [&str; 9] = [
    "TENSORFLOW",
    "KERAS",
    "MXNET",
    "ONNX",
    "PYTORCH",
    "XGBOOST",
    "TFLITE",
    "DARKNET",
    "SKLEARN",
];

/// `TargetPlatformOs`, `TargetPlatformArch`, `TargetPlatformAccelerator`.
pub(crate) const PLATFORM_OS: [&str; 2] = ["ANDROID", "LINUX"];
pub(crate) const PLATFORM_ARCH: [&str; 5] = ["X86_64", "X86", "ARM64", "ARM_EABI", "ARM_EABIHF"];
pub(crate) const PLATFORM_ACCELERATOR: [&str; 4] = ["INTEL_GRAPHICS", "MALI", "NVIDIA", "NNA"];

/// `StoppingCondition`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StoppingCondition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_runtime_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_wait_time_in_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_pending_time_in_seconds: Option<i64>,
}

/// `ModelArtifacts`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ModelArtifacts {
    pub(crate) s3_model_artifacts: String,
}

/// `ModelDigests`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ModelDigests {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) artifact_digest: Option<String>,
}

/// `InputConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InputConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) s3_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_input_config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) framework: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) framework_version: Option<String>,
}

/// `TargetPlatform`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TargetPlatform {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) arch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) accelerator: Option<String>,
}

/// `OutputConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct OutputConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) s3_output_location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target_platform: Option<TargetPlatform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compiler_options: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kms_key_id: Option<String>,
}

/// `NeoVpcConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NeoVpcConfig {
    #[serde(default)]
    pub(crate) security_group_ids: Vec<String>,
    #[serde(default)]
    pub(crate) subnets: Vec<String>,
}

/// `DerivedInformation`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DerivedInformation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) derived_data_input_config: Option<String>,
}

/// `Tag`. Both members are required by the model; requests missing one are
/// rejected by serde as a `SerializationException`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// A compilation job as stored: serializes to exactly the
/// `DescribeCompilationJobResponse` body. `FailureReason`, `ModelArtifacts`
/// and `LastModifiedTime` are required by the model, so they are always
/// present (`FailureReason` is `""` unless the job failed).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct JobRecord {
    pub(crate) compilation_job_name: String,
    pub(crate) compilation_job_arn: String,
    pub(crate) compilation_job_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_start_time: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_end_time: Option<Millis>,
    pub(crate) stopping_condition: StoppingCondition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) inference_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model_package_version_arn: Option<String>,
    pub(crate) creation_time: Millis,
    pub(crate) last_modified_time: Millis,
    pub(crate) failure_reason: String,
    pub(crate) model_artifacts: ModelArtifacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model_digests: Option<ModelDigests>,
    pub(crate) role_arn: String,
    pub(crate) input_config: InputConfig,
    pub(crate) output_config: OutputConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) vpc_config: Option<NeoVpcConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) derived_information: Option<DerivedInformation>,
}

/// `CompilationJobSummary`, as listed by `ListCompilationJobs`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct JobSummary {
    pub(crate) compilation_job_name: String,
    pub(crate) compilation_job_arn: String,
    pub(crate) creation_time: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_start_time: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_end_time: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_target_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_target_platform_os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_target_platform_arch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) compilation_target_platform_accelerator: Option<String>,
    pub(crate) last_modified_time: Millis,
    pub(crate) compilation_job_status: String,
}

impl JobRecord {
    /// The list-view of this job; target fields come from `OutputConfig`.
    pub(crate) fn summary(&self) -> JobSummary {
        let platform = self.output_config.target_platform.as_ref();
        JobSummary {
            compilation_job_name: self.compilation_job_name.clone(),
            compilation_job_arn: self.compilation_job_arn.clone(),
            creation_time: self.creation_time,
            compilation_start_time: self.compilation_start_time,
            compilation_end_time: self.compilation_end_time,
            compilation_target_device: self.output_config.target_device.clone(),
            compilation_target_platform_os: platform.and_then(|p| p.os.clone()),
            compilation_target_platform_arch: platform.and_then(|p| p.arch.clone()),
            compilation_target_platform_accelerator: platform.and_then(|p| p.accelerator.clone()),
            last_modified_time: self.last_modified_time,
            compilation_job_status: self.compilation_job_status.clone(),
        }
    }
}
