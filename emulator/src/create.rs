//! CreateCompilationJob: validation of the request against the service
//! model, and the new job's record.

use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::{artifact_uri, inference_image};
use super::data::job_arn;
use super::error::ApiError;
use super::job_store::StoredJob;
use super::limits::lock;
use super::shapes::{
    FRAMEWORKS, InputConfig, JobRecord, Millis, ModelArtifacts, NeoVpcConfig, OutputConfig,
    PLATFORM_ACCELERATOR, PLATFORM_ARCH, PLATFORM_OS, StoppingCondition, TARGET_DEVICES, Tag,
};
use super::state::EmulatorState;
use super::tags::{check_tags, merge_tags};
use super::validate::{
    Problems, is_entity_name, is_framework_version, is_kms_key_id, is_model_package_arn,
    is_role_arn, is_s3_uri, is_vpc_id,
};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateJobRequest {
    compilation_job_name: Option<String>,
    role_arn: Option<String>,
    model_package_version_arn: Option<String>,
    input_config: Option<InputConfig>,
    output_config: Option<OutputConfig>,
    vpc_config: Option<NeoVpcConfig>,
    stopping_condition: Option<StoppingCondition>,
    tags: Option<Vec<Tag>>,
}

fn check_input(p: &mut Problems, i: &InputConfig) {
    if p.require("inputConfig.s3Uri", &i.s3_uri) {
        let s = i.s3_uri.as_deref().unwrap_or_default();
        if p.length("inputConfig.s3Uri", s, 0, 1024) {
            p.pattern(
                "inputConfig.s3Uri",
                s,
                is_s3_uri(s),
                "^(https|s3)://([^/]+)/?(.*)$",
            );
        }
    }
    if p.require("inputConfig.framework", &i.framework) {
        p.one_of(
            "inputConfig.framework",
            i.framework.as_deref().unwrap_or_default(),
            &FRAMEWORKS,
        );
    }
    if let Some(v) = &i.framework_version
        && p.length("inputConfig.frameworkVersion", v, 3, 10)
    {
        let ok = is_framework_version(v);
        p.pattern(
            "inputConfig.frameworkVersion",
            v,
            ok,
            "[0-9]\\.[A-Za-z0-9.]+",
        );
    }
    if let Some(d) = &i.data_input_config {
        p.length("inputConfig.dataInputConfig", d, 1, 16384);
    }
}

fn check_output(p: &mut Problems, o: &OutputConfig) {
    if p.require("outputConfig.s3OutputLocation", &o.s3_output_location) {
        let s = o.s3_output_location.as_deref().unwrap_or_default();
        if p.length("outputConfig.s3OutputLocation", s, 0, 1024) {
            p.pattern(
                "outputConfig.s3OutputLocation",
                s,
                is_s3_uri(s),
                "^(https|s3)://([^/]+)/?(.*)$",
            );
        }
    }
    match (&o.target_device, &o.target_platform) {
        (Some(d), None) => p.one_of("outputConfig.targetDevice", d, &TARGET_DEVICES),
        (None, Some(tp)) => {
            if p.require("outputConfig.targetPlatform.os", &tp.os) {
                p.one_of(
                    "outputConfig.targetPlatform.os",
                    tp.os.as_deref().unwrap_or_default(),
                    &PLATFORM_OS,
                );
            }
            if p.require("outputConfig.targetPlatform.arch", &tp.arch) {
                p.one_of(
                    "outputConfig.targetPlatform.arch",
                    tp.arch.as_deref().unwrap_or_default(),
                    &PLATFORM_ARCH,
                );
            }
            if let Some(a) = &tp.accelerator {
                p.one_of(
                    "outputConfig.targetPlatform.accelerator",
                    a,
                    &PLATFORM_ACCELERATOR,
                );
            }
        }
        _ => p.other(
            "OutputConfig must specify exactly one of TargetDevice or TargetPlatform".into(),
        ),
    }
    if let Some(c) = &o.compiler_options {
        p.length("outputConfig.compilerOptions", c, 3, 1024);
    }
    if let Some(k) = &o.kms_key_id
        && p.length("outputConfig.kmsKeyId", k, 0, 2048)
    {
        p.pattern(
            "outputConfig.kmsKeyId",
            k,
            is_kms_key_id(k),
            "^[a-zA-Z0-9:/_-]*$",
        );
    }
}

fn check_rest(p: &mut Problems, req: &CreateJobRequest) {
    if p.require("roleArn", &req.role_arn) {
        let r = req.role_arn.as_deref().unwrap_or_default();
        if p.length("roleArn", r, 20, 2048) {
            let pattern = "^arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+$";
            p.pattern("roleArn", r, is_role_arn(r), pattern);
        }
    }
    if let Some(a) = &req.model_package_version_arn
        && p.length("modelPackageVersionArn", a, 1, 2048)
    {
        p.pattern(
            "modelPackageVersionArn",
            a,
            is_model_package_arn(a),
            "model-package ARN",
        );
    }
    if p.require("stoppingCondition", &req.stopping_condition) {
        let s = req.stopping_condition.clone().unwrap_or_default();
        if let Some(v) = s.max_runtime_in_seconds {
            p.range("stoppingCondition.maxRuntimeInSeconds", v, 1, i64::MAX);
        }
        if let Some(v) = s.max_wait_time_in_seconds {
            p.range("stoppingCondition.maxWaitTimeInSeconds", v, 1, i64::MAX);
        }
        if let Some(v) = s.max_pending_time_in_seconds {
            p.range(
                "stoppingCondition.maxPendingTimeInSeconds",
                v,
                1800,
                2_419_200,
            );
        }
    }
    if let Some(v) = &req.vpc_config {
        for (at, ids, max) in [
            ("vpcConfig.securityGroupIds", &v.security_group_ids, 5),
            ("vpcConfig.subnets", &v.subnets, 16),
        ] {
            if ids.is_empty() || ids.len() > max {
                p.other(format!("Member '{at}' must hold between 1 and {max} ids"));
            }
            for id in ids {
                if p.length(at, id, 0, 32) {
                    p.pattern(at, id, is_vpc_id(id), "[-0-9a-zA-Z]+");
                }
            }
        }
    }
    if let Some(t) = &req.tags {
        check_tags(p, t);
    }
}

pub(crate) fn create_job(
    state: &EmulatorState,
    req: CreateJobRequest,
    now: Millis,
) -> Result<Value, ApiError> {
    let mut p = Problems::new();
    if p.require("compilationJobName", &req.compilation_job_name) {
        let n = req.compilation_job_name.as_deref().unwrap_or_default();
        if p.length("compilationJobName", n, 1, 63) {
            p.pattern(
                "compilationJobName",
                n,
                is_entity_name(n),
                "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
            );
        }
    }
    match (&req.input_config, &req.model_package_version_arn) {
        (Some(i), _) => check_input(&mut p, i),
        (None, Some(_)) => {}
        (None, None) => {
            p.other("Either InputConfig or ModelPackageVersionArn must be specified".into())
        }
    }
    if p.require("outputConfig", &req.output_config) {
        check_output(
            &mut p,
            req.output_config
                .as_ref()
                .unwrap_or(&OutputConfig::default()),
        );
    }
    check_rest(&mut p, &req);
    p.finish()?;

    let name = req.compilation_job_name.unwrap_or_default();
    let arn = job_arn(&state.region, &state.account_id, &name);
    let output_config = req.output_config.unwrap_or_default();
    // A model package carries its own model; AWS derives the input from it.
    // We do not model packages, so a package-only job gets a placeholder
    // input under the account's default SageMaker bucket (Describe requires
    // an InputConfig).
    let input_config = req.input_config.unwrap_or_else(|| InputConfig {
        s3_uri: Some(format!(
            "s3://sagemaker-{}-{}/model-packages/{name}/model.tar.gz",
            state.region, state.account_id
        )),
        data_input_config: None,
        framework: Some("PYTORCH".into()),
        framework_version: None,
    });
    let input_s3 = input_config.s3_uri.clone().unwrap_or_default();
    let framework = input_config.framework.clone().unwrap_or_default();
    let record = JobRecord {
        compilation_job_name: name.clone(),
        compilation_job_arn: arn.clone(),
        compilation_job_status: "INPROGRESS".into(),
        compilation_start_time: Some(now),
        compilation_end_time: None,
        stopping_condition: req.stopping_condition.unwrap_or_default(),
        inference_image: inference_image(
            &state.region,
            output_config.target_device.as_deref(),
            &framework,
        ),
        model_package_version_arn: req.model_package_version_arn,
        creation_time: now,
        last_modified_time: now,
        failure_reason: String::new(),
        model_artifacts: ModelArtifacts {
            s3_model_artifacts: artifact_uri(&output_config, &input_s3),
        },
        model_digests: None,
        role_arn: req.role_arn.unwrap_or_default(),
        input_config,
        output_config,
        vpc_config: req.vpc_config,
        derived_information: None,
    };
    let mut tags = Vec::new();
    merge_tags(&mut tags, &req.tags.unwrap_or_default());

    let mut jobs = lock(&state.jobs);
    if jobs.contains_key(&name) {
        return Err(ApiError::in_use(format!(
            "Compilation job {name} already exists"
        )));
    }
    jobs.insert(StoredJob {
        record,
        tags,
        vanished: false,
    });
    Ok(json!({ "CompilationJobArn": arn }))
}
