//! Tables and recipes for realistic compilation-job values: models and
//! their input shapes, target devices and platforms, tag vocabularies,
//! failure reasons, compiler options, inference images, artifact paths.
//!
//! Changing anything here changes generated data for every seed, so treat
//! these tables as append-only when determinism across versions matters.

use super::limits::SplitMix64;
use super::shapes::OutputConfig;

/// A model a team might compile: framework, versions and input shape.
pub(crate) struct Model {
    pub(crate) slug: &'static str,
    pub(crate) framework: &'static str,
    pub(crate) versions: &'static [&'static str],
    pub(crate) input: Option<&'static str>,
}

const fn m(
    slug: &'static str,
    framework: &'static str,
    versions: &'static [&'static str],
    input: Option<&'static str>,
) -> Model {
    Model {
        slug,
        framework,
        versions,
        input,
    }
}

pub(crate) const MODELS: &[Model] = &[
    m(
        "resnet50",
        "PYTORCH",
        &["1.8", "1.13", "2.0"],
        Some(r#"{"input0":[1,3,224,224]}"#),
    ),
    m(
        "resnet50",
        "TENSORFLOW",
        &["2.9", "2.11"],
        Some(r#"{"input_1":[1,224,224,3]}"#),
    ),
    m(
        "mobilenet-v2",
        "TFLITE",
        &["2.3"],
        Some(r#"{"input":[1,224,224,3]}"#),
    ),
    m(
        "mobilenet-v3",
        "PYTORCH",
        &["1.13", "2.0"],
        Some(r#"{"input0":[1,3,224,224]}"#),
    ),
    m(
        "yolov5s",
        "PYTORCH",
        &["1.8", "1.13"],
        Some(r#"{"images":[1,3,640,640]}"#),
    ),
    m("yolov3", "DARKNET", &[], Some(r#"{"data":[1,3,416,416]}"#)),
    m(
        "ssd-mobilenet",
        "MXNET",
        &["1.8"],
        Some(r#"{"data":[1,3,512,512]}"#),
    ),
    m(
        "bert-base-uncased",
        "PYTORCH",
        &["1.13", "2.0"],
        Some(r#"{"input0":[1,128],"input1":[1,128]}"#),
    ),
    m(
        "distilbert-sst2",
        "TENSORFLOW",
        &["2.9"],
        Some(r#"{"input_ids":[1,128],"attention_mask":[1,128]}"#),
    ),
    m(
        "efficientnet-b0",
        "KERAS",
        &["2.2.4"],
        Some(r#"{"input_1":[1,3,224,224]}"#),
    ),
    m(
        "inception-v3",
        "ONNX",
        &[],
        Some(r#"{"input":[1,3,299,299]}"#),
    ),
    m("xgb-churn", "XGBOOST", &["1.5"], None),
    m(
        "sklearn-fraud",
        "SKLEARN",
        &["0.23.2"],
        Some(r#"{"input":[1,30]}"#),
    ),
    m(
        "unet-seg",
        "PYTORCH",
        &["1.13"],
        Some(r#"{"input0":[1,3,256,256]}"#),
    ),
    m(
        "deeplab-v3",
        "TENSORFLOW",
        &["1.15"],
        Some(r#"{"ImageTensor":[1,513,513,3]}"#),
    ),
    m(
        "faster-rcnn",
        "MXNET",
        &["1.8"],
        Some(r#"{"data":[1,3,600,800]}"#),
    ),
    m(
        "whisper-tiny-enc",
        "ONNX",
        &[],
        Some(r#"{"mel":[1,80,3000]}"#),
    ),
];

/// Devices weighted by how often real fleets target them (repeats = weight).
pub(crate) const COMMON_DEVICES: &[&str] = &[
    "ml_c5",
    "ml_c5",
    "ml_c5",
    "ml_c5",
    "ml_m5",
    "ml_m5",
    "ml_g4dn",
    "ml_g4dn",
    "ml_inf1",
    "ml_inf1",
    "ml_inf2",
    "ml_p3",
    "ml_c6g",
    "ml_m6g",
    "jetson_nano",
    "jetson_nano",
    "jetson_xavier",
    "jetson_xavier",
    "jetson_tx2",
    "rasp4b",
    "rasp4b",
    "rasp3b",
    "coreml",
    "imx8mplus",
    "qcs605",
    "deeplens",
    "x86_win64",
];

/// `(Os, Arch, Accelerator)` combinations that Neo documents.
pub(crate) const PLATFORMS: &[(&str, &str, Option<&str>)] = &[
    ("LINUX", "X86_64", None),
    ("LINUX", "X86_64", Some("INTEL_GRAPHICS")),
    ("LINUX", "ARM64", Some("NVIDIA")),
    ("LINUX", "ARM64", None),
    ("LINUX", "ARM64", Some("MALI")),
    ("LINUX", "ARM64", Some("NNA")),
    ("LINUX", "ARM_EABIHF", None),
    ("LINUX", "X86", None),
    ("ANDROID", "ARM64", None),
    ("ANDROID", "ARM64", Some("MALI")),
    ("ANDROID", "ARM_EABI", None),
];

pub(crate) const TEAMS: &[&str] = &["vision", "nlp", "recsys", "edge-ml", "platform", "speech"];
pub(crate) const PROJECTS: &[&str] = &[
    "smart-camera",
    "doc-search",
    "churn-model",
    "fleet-vision",
    "voice-assist",
    "shelf-scan",
];
pub(crate) const ENVS: &[&str] = &["dev", "staging", "prod"];
pub(crate) const COST_CENTERS: &[&str] = &["CC-1001", "CC-2040", "CC-3310", "CC-4125"];
pub(crate) const OWNERS: &[&str] = &[
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dinesh@example.com",
    "emma@example.com",
];
pub(crate) const CREATORS: &[&str] = &["sagemaker-pipelines", "neo-cli", "terraform", "airflow"];

/// Cumulative status weights: mostly COMPLETED, a realistic tail of the rest.
pub(crate) const STATUS_WEIGHTS: &[(&str, u64)] = &[
    ("COMPLETED", 70),
    ("FAILED", 12),
    ("STOPPED", 7),
    ("INPROGRESS", 5),
    ("STARTING", 3),
    ("STOPPING", 3),
];

/// Where Neo writes the compiled model: `<output>/<input stem>-<target>.tar.gz`.
pub(crate) fn artifact_uri(output: &OutputConfig, input_s3: &str) -> String {
    let out = output.s3_output_location.as_deref().unwrap_or_default();
    let file = input_s3.rsplit('/').next().unwrap_or("model.tar.gz");
    let stem = file
        .strip_suffix(".tar.gz")
        .or_else(|| file.strip_suffix(".tgz"))
        .unwrap_or(file);
    let stem = if stem.is_empty() { "model" } else { stem };
    let target = match (&output.target_device, &output.target_platform) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) => format!(
            "{}_{}",
            p.os.as_deref().unwrap_or("LINUX"),
            p.arch.as_deref().unwrap_or("X86_64")
        ),
        (None, None) => "target".to_string(),
    };
    format!("{}/{stem}-{target}.tar.gz", out.trim_end_matches('/'))
}

/// The ECR inference image Neo picks for a cloud (`ml_*`) target; `None`
/// for edge devices and platforms, where AWS leaves `InferenceImage` unset.
pub(crate) fn inference_image(
    region: &str,
    device: Option<&str>,
    framework: &str,
) -> Option<String> {
    let device = device?;
    if !device.starts_with("ml_") {
        return None;
    }
    // Neo's regional image accounts; unknown regions fall back to us-east-1's.
    let registry = match region {
        "us-west-2" => "301217895009",
        "eu-west-1" => "802834080501",
        "ap-northeast-1" => "941853720454",
        _ => "785573368785",
    };
    let proc = match device {
        "ml_inf1" | "ml_inf2" | "ml_trn1" => "inf",
        "ml_p2" | "ml_p3" | "ml_g4dn" | "ml_eia2" => "gpu",
        _ => "cpu",
    };
    let (repo, version) = match framework {
        "PYTORCH" => ("sagemaker-inference-pytorch", "1.13"),
        "TENSORFLOW" | "KERAS" | "TFLITE" => ("sagemaker-inference-tensorflow", "2.9"),
        "MXNET" => ("sagemaker-inference-mxnet", "1.8"),
        "XGBOOST" => ("sagemaker-neo-xgboost", "1.5"),
        _ => ("sagemaker-neo-onnx", "1.5"),
    };
    Some(format!(
        "{registry}.dkr.ecr.{region}.amazonaws.com/{repo}:{version}-{proc}-py3"
    ))
}

pub(crate) fn failure_reason(
    r: &mut SplitMix64,
    model: &Model,
    input_s3: &str,
    out: &OutputConfig,
    role: &str,
    target: &str,
) -> String {
    let out_loc = out.s3_output_location.as_deref().unwrap_or_default();
    match r.below(7) {
        0 => format!(
            "ClientError: InputConfiguration: Unable to load model with the given DataInputConfig {}. Please check that the input names and shapes match the model.",
            model.input.unwrap_or("{}")
        ),
        1 => format!(
            "ClientError: InputConfiguration: Framework cannot load {} model. Please make sure {input_s3} is a valid model archive for this framework.",
            model.framework
        ),
        2 => "ClientError: InputConfiguration: No valid model file found in the tar archive. Please make sure the model file is at the root of model.tar.gz.".to_string(),
        3 => format!(
            "ClientError: OutputConfiguration: Unable to upload compiled model to {out_loc}: Access Denied. Please check that {role} can write to this location."
        ),
        4 => format!(
            "ClientError: CompilationError: Unsupported operator(s) for target {target}: aten::upsample_bicubic2d, aten::grid_sampler"
        ),
        5 => format!("ClientError: TargetDevice: Target {target} is not supported for framework {}.", model.framework),
        _ => "InternalServerError: We encountered an internal error. Please try again.".to_string(),
    }
}

pub(crate) fn compiler_options(
    r: &mut SplitMix64,
    out: &OutputConfig,
    framework: &str,
) -> Option<String> {
    if let Some(p) = &out.target_platform {
        return match (p.os.as_deref(), p.accelerator.as_deref()) {
            // Neo requires these for NVIDIA platforms.
            (_, Some("NVIDIA")) => {
                Some(r#"{"gpu-code": "sm_72", "trt-ver": "7.1.3", "cuda-ver": "10.2"}"#.into())
            }
            (Some("ANDROID"), _) if r.chance(0.6) => Some(r#"{"ANDROID_PLATFORM": 29}"#.into()),
            (Some("LINUX"), _) if p.arch.as_deref() != Some("X86_64") && r.chance(0.3) => {
                Some(r#"{"mattr": ["+neon"]}"#.into())
            }
            _ => None,
        };
    }
    match out.target_device.as_deref()? {
        d if d.starts_with("jetson") && r.chance(0.2) => {
            Some(r#"{"gpu-code": "sm_53", "trt-ver": "7.1.3", "cuda-ver": "10.2"}"#.into())
        }
        "ml_inf1" | "ml_inf2" if r.chance(0.4) => {
            Some(r#"{"--verbose": 1, "--num-neuroncores": 4}"#.into())
        }
        "coreml" if r.chance(0.5) => Some(r#"{"class_labels": "imagenet_labels_1000.txt"}"#.into()),
        d if d.starts_with("ml_") && framework == "PYTORCH" && r.chance(0.15) => {
            Some(r#"{"dtype": "float32"}"#.into())
        }
        _ => None,
    }
}
