//! Deterministic generation of realistic compilation jobs.
//!
//! Output depends only on `(count, seed, anchor, region, account)`: the
//! PRNG is our own SplitMix64 and every choice is drawn from fixed tables,
//! so the same inputs produce byte-identical jobs across crate versions.
//! Each job draws from its own PRNG stream (seeded from `seed` and its
//! index), so tweaking one job's recipe does not reshuffle all the others.

use std::collections::HashSet;

use super::catalog::{
    COMMON_DEVICES, COST_CENTERS, CREATORS, ENVS, MODELS, Model, OWNERS, PLATFORMS, PROJECTS,
    STATUS_WEIGHTS, TEAMS, artifact_uri, compiler_options, failure_reason, inference_image,
};
use super::limits::SplitMix64;
use super::shapes::{
    DerivedInformation, InputConfig, JobRecord, Millis, ModelArtifacts, ModelDigests, NeoVpcConfig,
    OutputConfig, STATUSES, StoppingCondition, TARGET_DEVICES, Tag, TargetPlatform,
};
use super::validate::is_entity_name;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A generated job and its tags, in ListTags order.
pub(crate) type GeneratedJob = (JobRecord, Vec<Tag>);

/// Generates `count` jobs (unique names). With `count >= 6` every status
/// appears; at least one job has 51..=80 tags when `count >= 10`, at least
/// two when `count >= 100`.
pub(crate) fn generate(
    count: usize,
    seed: u64,
    anchor: Millis,
    region: &str,
    account: &str,
) -> Vec<GeneratedJob> {
    let mut rng = SplitMix64::new(seed);
    let mut statuses: Vec<&'static str> = (0..count).map(|_| weighted_status(&mut rng)).collect();
    if count >= STATUSES.len() {
        ensure_all_statuses(&mut statuses, &mut rng);
    }
    let big = if count >= 100 {
        2 + count / 500
    } else if count >= 10 {
        1
    } else {
        0
    };
    let mut big_tagged = HashSet::new();
    while big_tagged.len() < big {
        big_tagged.insert(rng.below(count as u64) as usize);
    }

    let mut names = HashSet::with_capacity(count);
    let mut jobs = Vec::with_capacity(count);
    for (i, status) in statuses.into_iter().enumerate() {
        // Per-job stream: golden-ratio spacing of indices, mixed with the seed.
        let job_seed =
            SplitMix64::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64();
        let mut r = SplitMix64::new(job_seed);
        let ctx = Ctx {
            region,
            account,
            anchor,
        };
        let (record, tags) = one_job(&mut r, &ctx, status, big_tagged.contains(&i), i, &mut names);
        jobs.push((record, tags));
    }
    jobs
}

/// `arn:aws:sagemaker:<region>:<account>:compilation-job/<name>`.
pub(crate) fn job_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sagemaker:{region}:{account}:compilation-job/{name}")
}
struct Ctx<'a> {
    region: &'a str,
    account: &'a str,
    anchor: Millis,
}

fn weighted_status(rng: &mut SplitMix64) -> &'static str {
    let total: u64 = STATUS_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (s, w) in STATUS_WEIGHTS {
        if x < *w {
            return s;
        }
        x -= w;
    }
    "COMPLETED"
}

/// Gives each missing status to a job whose status is not unique (one always
/// exists by pigeonhole while a status is missing and `len >= 6`).
fn ensure_all_statuses(statuses: &mut [&'static str], rng: &mut SplitMix64) {
    let n = statuses.len();
    for want in STATUSES {
        if statuses.contains(&want) {
            continue;
        }
        let start = rng.below(n as u64) as usize;
        for k in 0..n {
            let j = (start + k) % n;
            let cur = statuses[j];
            if statuses.iter().filter(|s| **s == cur).count() >= 2 {
                statuses[j] = want;
                break;
            }
        }
    }
}

/// `base`, or `base-<index>` (then `base-<index>x<k>`) when taken, cut so
/// that the result stays a valid 63-character `EntityName`.
fn unique_name(base: &str, index: usize, taken: &HashSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    let mut k = 0usize;
    loop {
        let suffix = if k == 0 {
            format!("-{index}")
        } else {
            format!("-{index}x{k}")
        };
        let head: String = base.chars().take(63 - suffix.len()).collect();
        let candidate = format!("{}{suffix}", head.trim_end_matches('-'));
        if !taken.contains(&candidate) {
            return candidate;
        }
        k += 1;
    }
}

/// `ml_c5` -> `ml-c5`; names may only hold alphanumerics and hyphens.
fn slugify(s: &str) -> String {
    s.to_ascii_lowercase().replace('_', "-")
}

/// `resnet50-ml-c5` -> `Resnet50-Ml-C5`: some teams capitalise, which keeps
/// case-insensitive `NameContains` honest.
fn capitalise(s: &str) -> String {
    s.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn hex(rng: &mut SplitMix64, digits: usize) -> String {
    let mut s = String::with_capacity(digits);
    while s.len() < digits {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(digits);
    s
}

fn uuid(rng: &mut SplitMix64) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `(year, month, day, hour, minute, second)` in UTC, for names that embed
/// their creation time the way SageMaker's SDK-generated names do.
fn civil(ms: Millis) -> (i64, i64, i64, i64, i64, i64) {
    let days = ms.0.div_euclid(DAY);
    let secs = ms.0.rem_euclid(DAY) / SECOND;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (y, mo, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// The job's timeline, consistent with its status: running jobs are recent
/// and have no end time, STARTING ones have not started, terminal ones have
/// both, and `LastModifiedTime` is never before creation nor after `anchor`.
struct Timeline {
    created: Millis,
    started: Option<Millis>,
    ended: Option<Millis>,
    modified: Millis,
}

fn timeline(r: &mut SplitMix64, status: &str, anchor: Millis) -> Timeline {
    let a = anchor.0;
    let queue = r.range(SECOND, 20 * SECOND);
    match status {
        "STARTING" => {
            let created = a - r.range(SECOND, 90 * SECOND);
            Timeline {
                created: Millis(created),
                started: None,
                ended: None,
                modified: Millis(created),
            }
        }
        "INPROGRESS" => {
            let created = a - r.range(2 * MINUTE, 2 * HOUR);
            let started = created + queue;
            Timeline {
                created: Millis(created),
                started: Some(Millis(started)),
                ended: None,
                modified: Millis(started),
            }
        }
        "STOPPING" => {
            let created = a - r.range(5 * MINUTE, 2 * HOUR);
            let started = created + queue;
            let modified = (a - r.range(SECOND, MINUTE)).max(started);
            Timeline {
                created: Millis(created),
                started: Some(Millis(started)),
                ended: None,
                modified: Millis(modified),
            }
        }
        _ => {
            // Terminal: at least an hour old, so start+run+settle fits before anchor.
            let created = a - r.range(HOUR, 365 * DAY);
            let started = created + queue;
            let run = match status {
                "COMPLETED" => r.range(30 * SECOND, 15 * MINUTE),
                "FAILED" => r.range(5 * SECOND, 5 * MINUTE),
                _ => r.range(20 * SECOND, 10 * MINUTE),
            };
            let ended = started + run;
            let modified = ended + r.range(0, 3 * SECOND);
            Timeline {
                created: Millis(created),
                started: Some(Millis(started)),
                ended: Some(Millis(ended)),
                modified: Millis(modified),
            }
        }
    }
}
fn tags_for(r: &mut SplitMix64, model: &Model, team: &str, big: bool) -> Vec<Tag> {
    let mut pool: Vec<(&str, String)> = vec![
        ("team", team.to_string()),
        ("project", r.pick(PROJECTS).to_string()),
        ("env", r.pick(ENVS).to_string()),
        ("cost-center", r.pick(COST_CENTERS).to_string()),
        ("owner", r.pick(OWNERS).to_string()),
        ("model-family", model.slug.to_string()),
        ("created-by", r.pick(CREATORS).to_string()),
    ];
    // Fisher-Yates so each job has its own key order (ListTags keeps it).
    for i in (1..pool.len()).rev() {
        pool.swap(i, r.below(i as u64 + 1) as usize);
    }
    let n = if big {
        pool.len()
    } else if r.chance(0.15) {
        0
    } else {
        r.range(1, 6) as usize
    };
    let mut tags: Vec<Tag> = pool
        .into_iter()
        .take(n)
        .map(|(k, v)| Tag {
            key: k.to_string(),
            value: v,
        })
        .collect();
    if big {
        let total = r.range(51, 80) as usize;
        let mut k = 1;
        while tags.len() < total {
            tags.push(Tag {
                key: format!("label-{k:03}"),
                value: format!("value-{}", r.below(1000)),
            });
            k += 1;
        }
    }
    tags
}

fn one_job(
    r: &mut SplitMix64,
    ctx: &Ctx<'_>,
    status: &'static str,
    big_tags: bool,
    index: usize,
    taken: &mut HashSet<String>,
) -> GeneratedJob {
    let model = r.pick(MODELS);
    let team = *r.pick(TEAMS);
    let t = timeline(r, status, ctx.anchor);

    let (target_device, target_platform) = if r.chance(0.75) {
        let d = if r.chance(0.05) {
            *r.pick(&TARGET_DEVICES)
        } else {
            *r.pick(COMMON_DEVICES)
        };
        (Some(d.to_string()), None)
    } else {
        let (os, arch, acc) = *r.pick(PLATFORMS);
        let p = TargetPlatform {
            os: Some(os.into()),
            arch: Some(arch.into()),
            accelerator: acc.map(Into::into),
        };
        (None, Some(p))
    };
    let target_label = match (&target_device, &target_platform) {
        (Some(d), _) => d.clone(),
        (_, Some(p)) => format!(
            "{}-{}",
            p.os.as_deref().unwrap_or_default(),
            p.arch.as_deref().unwrap_or_default()
        ),
        _ => String::new(),
    };
    let target_slug = slugify(&target_label);

    let (y, mo, d, h, mi, s) = civil(t.created);
    let raw_name = match r.below(6) {
        0 | 1 => format!(
            "{}-{target_slug}-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}",
            model.slug
        ),
        2 => format!("neo-{}-{:04}", model.slug, r.below(10_000)),
        3 => format!(
            "{}-{}-v{}",
            capitalise(model.slug),
            capitalise(&target_slug),
            r.range(1, 12)
        ),
        4 => format!("{team}-{}-{}", model.slug, hex(r, 6)),
        _ => format!(
            "{}-{}-{target_slug}-{}",
            model.slug,
            model.framework.to_ascii_lowercase(),
            hex(r, 4)
        ),
    };
    let name: String = raw_name
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    let name = unique_name(&name, index, taken);
    taken.insert(name.clone());
    debug_assert!(is_entity_name(&name), "{name}");

    let bucket = match r.below(3) {
        0 => format!("sagemaker-{}-{}", ctx.region, ctx.account),
        1 => format!("ml-models-{team}"),
        _ => "acme-ml-artifacts".to_string(),
    };
    let input_s3 = format!("s3://{bucket}/models/{}/{}/model.tar.gz", model.slug, team);
    let role = match r.below(3) {
        0 => format!(
            "arn:aws:iam::{}:role/service-role/AmazonSageMaker-ExecutionRole-{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}",
            ctx.account
        ),
        1 => format!(
            "arn:aws:iam::{}:role/SageMakerNeoCompilationRole",
            ctx.account
        ),
        _ => format!(
            "arn:aws:iam::{}:role/ml-platform/{team}-neo-compiler",
            ctx.account
        ),
    };

    // DataInputConfig is sometimes left for Neo to infer, which it then
    // reports back as DerivedInformation; model-package jobs always derive.
    let package = r.chance(0.08).then(|| {
        format!(
            "arn:aws:sagemaker:{}:{}:model-package/{}-{team}/{}",
            ctx.region,
            ctx.account,
            model.slug,
            r.range(1, 20)
        )
    });
    let omit_input = model.input.is_some() && (package.is_some() || r.chance(0.12));
    let input_config = InputConfig {
        s3_uri: Some(input_s3.clone()),
        data_input_config: if omit_input {
            None
        } else {
            model.input.map(Into::into)
        },
        framework: Some(model.framework.into()),
        framework_version: (!model.versions.is_empty()).then(|| r.pick(model.versions).to_string()),
    };
    let derived = omit_input.then(|| DerivedInformation {
        derived_data_input_config: model.input.map(Into::into),
    });

    let mut output_config = OutputConfig {
        s3_output_location: Some(format!("s3://{bucket}/compiled/{name}")),
        target_device,
        target_platform,
        compiler_options: None,
        kms_key_id: None,
    };
    output_config.compiler_options = compiler_options(r, &output_config, model.framework);
    if r.chance(0.2) {
        output_config.kms_key_id = Some(format!(
            "arn:aws:kms:{}:{}:key/{}",
            ctx.region,
            ctx.account,
            uuid(r)
        ));
    }

    let max_runtime = *r.pick(&[900, 900, 1800, 3600]);
    let stopping_condition = StoppingCondition {
        max_runtime_in_seconds: Some(max_runtime),
        max_wait_time_in_seconds: r.chance(0.2).then(|| max_runtime * 2),
        max_pending_time_in_seconds: None,
    };
    let vpc_config = r.chance(0.15).then(|| NeoVpcConfig {
        security_group_ids: (0..r.range(1, 2))
            .map(|_| format!("sg-{}", hex(r, 17)))
            .collect(),
        subnets: (0..r.range(1, 3))
            .map(|_| format!("subnet-{}", hex(r, 17)))
            .collect(),
    });
    let failure_reason = if status == "FAILED" {
        failure_reason(r, model, &input_s3, &output_config, &role, &target_label)
    } else {
        String::new()
    };
    let model_digests = (status == "COMPLETED").then(|| ModelDigests {
        artifact_digest: Some(format!("blake2b:{}", hex(r, 64))),
    });
    let tags = tags_for(r, model, team, big_tags);

    let record = JobRecord {
        compilation_job_arn: job_arn(ctx.region, ctx.account, &name),
        compilation_job_status: status.to_string(),
        compilation_start_time: t.started,
        compilation_end_time: t.ended,
        stopping_condition,
        inference_image: inference_image(
            ctx.region,
            output_config.target_device.as_deref(),
            model.framework,
        ),
        model_package_version_arn: package,
        creation_time: t.created,
        last_modified_time: t.modified,
        failure_reason,
        model_artifacts: ModelArtifacts {
            s3_model_artifacts: artifact_uri(&output_config, &input_s3),
        },
        model_digests,
        role_arn: role,
        input_config,
        output_config,
        vpc_config,
        derived_information: derived,
        compilation_job_name: name,
    };
    (record, tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_matches_known_dates() {
        assert_eq!(civil(Millis(0)), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(Millis(1_700_000_000_123)), (2023, 11, 14, 22, 13, 20));
    }

    #[test]
    fn generated_names_are_valid_and_unique() {
        let jobs = generate(
            2000,
            7,
            Millis(1_700_000_000_000),
            "us-east-1",
            "123456789012",
        );
        let names: HashSet<_> = jobs
            .iter()
            .map(|(j, _)| j.compilation_job_name.clone())
            .collect();
        assert_eq!(names.len(), 2000);
        assert!(names.iter().all(|n| is_entity_name(n)));
    }
}
