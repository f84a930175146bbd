//! The SageMaker operations: dispatch, request parsing, and the list,
//! describe, delete and tag operations (filters, sorting, paging).
//! CreateCompilationJob lives in `create.rs`, tokens in `paging.rs`, tag
//! checks in `tags.rs`, the Tagging API's GetResources in `tagging.rs`.

use std::ops::Bound;

use serde::Deserialize;
use serde_json::{Value, json};

use super::body::parse;
use super::config::FilterPaging;
use super::create;
use super::error::ApiError;
use super::job_store::{JobStore, SortBy, Span, StoredJob, earlier_end, later_start};
use super::limits::lock;
use super::operation::{Operation, Service};
use super::paging::{SortKey, fnv, invalid_token, seal, unseal};
use super::shapes::{JobRecord, JobSummary, Millis, STATUSES, Tag};
use super::state::EmulatorState;
use super::tagging;
use super::tags::{check_tags, merge_tags};
use super::validate::{Problems, is_entity_name, is_name_fragment, is_resource_arn};

/// Runs `op` on `body`; `now` is the wall-clock time of the call and
/// `principal` the ARN of its signer (for access-denied messages).
pub(crate) fn dispatch(
    state: &EmulatorState,
    op: Operation,
    body: &[u8],
    now: Millis,
    principal: &str,
) -> Result<Value, ApiError> {
    match op {
        Operation::ListCompilationJobs => list_jobs(state, parse(body)?),
        Operation::DescribeCompilationJob => describe_job(state, parse(body)?),
        Operation::ListTags => list_tags(state, parse(body)?),
        Operation::CreateCompilationJob => create::create_job(state, parse(body)?, now),
        Operation::DeleteCompilationJob => delete_job(state, parse(body)?),
        Operation::AddTags => add_tags(state, parse(body)?),
        Operation::GetResources => tagging::get_resources(state, body, now, principal),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v)
        .map_err(|e| ApiError::server(500, Service::SageMaker).with_detail(&e.to_string()))
}

impl ApiError {
    fn with_detail(mut self, detail: &str) -> Self {
        self.message = format!("{} ({detail})", self.message);
        self
    }
}

// ---------------------------------------------------- ListCompilationJobs

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListJobsRequest {
    next_token: Option<String>,
    max_results: Option<i64>,
    creation_time_after: Option<f64>,
    creation_time_before: Option<f64>,
    last_modified_time_after: Option<f64>,
    last_modified_time_before: Option<f64>,
    name_contains: Option<String>,
    status_equals: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
}

impl ListJobsRequest {
    /// Identifies the query a token belongs to: every filter and the sort,
    /// but not MaxResults (page sizes may change between pages).
    fn fingerprint(&self) -> u64 {
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.creation_time_after.map(f64::to_bits),
            self.creation_time_before.map(f64::to_bits),
            self.last_modified_time_after.map(f64::to_bits),
            self.last_modified_time_before.map(f64::to_bits),
            self.name_contains.as_ref().map(|s| s.to_lowercase()),
            self.status_equals,
            self.sort_by.as_deref().unwrap_or("CreationTime"),
            self.sort_order.as_deref().unwrap_or("Ascending"),
        );
        fnv(text.as_bytes())
    }

    /// Where a listing in `sort` order with these filters (applied
    /// first) can start and end: every match lies in the span, which
    /// holds a few more jobs that the filters then leave out (a time in
    /// seconds is widened by a millisecond each way, for its rounding).
    fn seek(&self, sort: SortBy) -> Span {
        let millis = |seconds: f64| (seconds * 1000.0).floor() as i64;
        match sort {
            SortBy::CreationTime => (
                self.creation_time_after.map_or(Bound::Unbounded, |t| {
                    Bound::Included((SortKey::Time(millis(t).saturating_sub(1)), String::new()))
                }),
                self.creation_time_before.map_or(Bound::Unbounded, |t| {
                    Bound::Excluded((SortKey::Time(millis(t).saturating_add(2)), String::new()))
                }),
            ),
            SortBy::Status => match &self.status_equals {
                Some(status) => (
                    Bound::Included((SortKey::Text(status.clone()), String::new())),
                    Bound::Excluded((SortKey::Text(format!("{status}\0")), String::new())),
                ),
                None => (Bound::Unbounded, Bound::Unbounded),
            },
            SortBy::Name => (Bound::Unbounded, Bound::Unbounded),
        }
    }

    fn matches(&self, job: &JobRecord, name_lower: Option<&str>) -> bool {
        let created = job.creation_time.as_secs_f64();
        let modified = job.last_modified_time.as_secs_f64();
        self.creation_time_after.is_none_or(|t| created > t)
            && self.creation_time_before.is_none_or(|t| created < t)
            && self.last_modified_time_after.is_none_or(|t| modified > t)
            && self.last_modified_time_before.is_none_or(|t| modified < t)
            && self
                .status_equals
                .as_deref()
                .is_none_or(|s| job.compilation_job_status == s)
            && name_lower.is_none_or(|n| job.compilation_job_name.to_lowercase().contains(n))
    }
}

fn list_jobs(state: &EmulatorState, req: ListJobsRequest) -> Result<Value, ApiError> {
    let mut p = Problems::new();
    if let Some(n) = req.max_results {
        p.range("maxResults", n, 1, 100);
    }
    if let Some(t) = &req.next_token {
        p.length("nextToken", t, 0, 8192);
    }
    if let Some(n) = &req.name_contains
        && p.length("nameContains", n, 0, 63)
    {
        p.pattern("nameContains", n, is_name_fragment(n), "[a-zA-Z0-9\\-]+");
    }
    if let Some(s) = &req.status_equals {
        p.one_of("statusEquals", s, &STATUSES);
    }
    if let Some(s) = &req.sort_by {
        p.one_of("sortBy", s, &["Name", "CreationTime", "Status"]);
    }
    if let Some(s) = &req.sort_order {
        p.one_of("sortOrder", s, &["Ascending", "Descending"]);
    }
    p.finish()?;

    let max = req.max_results.unwrap_or(10) as usize;
    let sort_by = req.sort_by.as_deref().unwrap_or("CreationTime");
    let descending = req.sort_order.as_deref() == Some("Descending");
    let fingerprint = req.fingerprint();

    // Cursor: the (key, name) of the last job already returned. Keyset
    // paging keeps pages stable when jobs are created or deleted meanwhile.
    let cursor = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => {
            let payload = unseal(token).ok_or_else(invalid_token)?;
            let mut parts = payload.splitn(4, '|');
            let (Some("L1"), Some(fp), Some(key), Some(name)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid_token());
            };
            if fp != format!("{fingerprint:016x}") {
                return Err(ApiError::validation(
                    "Invalid pagination token: it belongs to a request with different filters or sort",
                ));
            }
            Some((
                SortKey::decode(key).ok_or_else(invalid_token)?,
                name.to_string(),
            ))
        }
    };

    let name_lower = req.name_contains.as_ref().map(|s| s.to_lowercase());
    let sort = match sort_by {
        "Name" => SortBy::Name,
        "Status" => SortBy::Status,
        _ => SortBy::CreationTime,
    };
    let filter_first = state.filter_paging == FilterPaging::BeforeCut;
    // Ties on the key are broken by name (unique), so the order is total;
    // Descending is the exact reverse of Ascending. The walk starts after
    // the cursor; with filters first, it also starts and ends where the
    // creation-time or status filters of a listing in that order let it.
    let mut span = if filter_first {
        req.seek(sort)
    } else {
        (Bound::Unbounded, Bound::Unbounded)
    };
    if let Some((key, name)) = cursor {
        let after = Bound::Excluded((key, name));
        span = if descending {
            (span.0, earlier_end(span.1, after))
        } else {
            (later_start(span.0, after), span.1)
        };
    }
    // The cut: the next `max` jobs in order (the matching ones, when
    // filters come first), and one more to know whether there is a next
    // page. A page so costs O(page) (with filters first, O(the jobs
    // walked past)), not a pass over every job.
    type Page = (Vec<(SortKey, JobSummary)>, Option<(SortKey, String)>, bool);
    let (page, last_of_cut, more): Page = {
        let jobs = lock(&state.jobs);
        let mut cut: Vec<&StoredJob> = Vec::with_capacity(max + 1);
        for job in jobs.walk(sort, descending, span) {
            if filter_first && !req.matches(&job.record, name_lower.as_deref()) {
                continue;
            }
            cut.push(job);
            if cut.len() > max {
                break;
            }
        }
        let more = cut.len() > max;
        cut.truncate(max);
        // The next page starts after the last job of the cut, whether or
        // not that job matched.
        let last_of_cut = cut
            .last()
            .map(|job| (sort.key_of(job), job.record.compilation_job_name.clone()));
        let page = cut
            .iter()
            .filter(|job| filter_first || req.matches(&job.record, name_lower.as_deref()))
            .map(|job| (sort.key_of(job), job.record.summary()))
            .collect();
        (page, last_of_cut, more)
    };
    let next_token = match (more, last_of_cut) {
        (true, Some((k, name))) => Some(seal(&format!(
            "L1|{fingerprint:016x}|{}|{name}",
            k.encode(),
        ))),
        _ => None,
    };
    let summaries: Vec<&JobSummary> = page.iter().map(|(_, s)| s).collect();
    let mut out = json!({ "CompilationJobSummaries": to_json(&summaries)? });
    if let Some(t) = next_token {
        out["NextToken"] = Value::String(t);
    }
    Ok(out)
}

// ------------------------------------------------- DescribeCompilationJob

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JobNameRequest {
    compilation_job_name: Option<String>,
}

fn job_name(req: JobNameRequest) -> Result<String, ApiError> {
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
    p.finish()?;
    Ok(req.compilation_job_name.unwrap_or_default())
}

fn job_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Could not find compilation job with name {name}"))
}

fn describe_job(state: &EmulatorState, req: JobNameRequest) -> Result<Value, ApiError> {
    let name = job_name(req)?;
    let record = lock(&state.jobs)
        .get(&name)
        .filter(|j| !j.vanished)
        .map(|j| j.record.clone());
    to_json(&record.ok_or_else(|| job_not_found(&name))?)
}

// --------------------------------------------------- DeleteCompilationJob

fn delete_job(state: &EmulatorState, req: JobNameRequest) -> Result<Value, ApiError> {
    let name = job_name(req)?;
    let mut jobs = lock(&state.jobs);
    let status = match jobs.get(&name).filter(|j| !j.vanished) {
        None => return Err(job_not_found(&name)),
        Some(j) => j.record.compilation_job_status.clone(),
    };
    // AWS only deletes jobs that have finished.
    if !matches!(status.as_str(), "COMPLETED" | "FAILED" | "STOPPED") {
        return Err(ApiError::validation(format!(
            "Cannot delete compilation job {name} in status {status}: only COMPLETED, FAILED or STOPPED jobs can be deleted"
        )));
    }
    jobs.remove(&name);
    Ok(json!({}))
}

// --------------------------------------------------------------- ListTags

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsRequest {
    resource_arn: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn check_arn(p: &mut Problems, arn: &Option<String>) {
    if p.require("resourceArn", arn) {
        let a = arn.as_deref().unwrap_or_default();
        if p.length("resourceArn", a, 0, 256) {
            p.pattern(
                "resourceArn",
                a,
                is_resource_arn(a),
                "arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+",
            );
        }
    }
}

/// The name of the visible compilation job with this ARN, else
/// `ResourceNotFound`.
fn job_for_arn<'a>(jobs: &'a JobStore, arn: &str) -> Result<&'a StoredJob, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "Resource {arn} does not exist or is not a compilation job"
        ))
    };
    let name = arn.split_once(":compilation-job/").ok_or_else(not_found)?.1;
    jobs.get(name)
        .filter(|j| !j.vanished && j.record.compilation_job_arn == arn)
        .ok_or_else(not_found)
}

fn list_tags(state: &EmulatorState, req: ListTagsRequest) -> Result<Value, ApiError> {
    let mut p = Problems::new();
    check_arn(&mut p, &req.resource_arn);
    if let Some(n) = req.max_results {
        p.range("maxResults", n, 50, i64::MAX);
    }
    if let Some(t) = &req.next_token {
        p.length("nextToken", t, 0, 8192);
    }
    p.finish()?;
    let arn = req.resource_arn.unwrap_or_default();
    // A TagList holds at most 50 tags, whatever MaxResults asks for.
    let max = req.max_results.unwrap_or(50).min(50) as usize;
    let arn_hash = format!("{:016x}", fnv(arn.as_bytes()));
    let offset = match req.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => {
            let payload = unseal(token).ok_or_else(invalid_token)?;
            match payload.split('|').collect::<Vec<_>>().as_slice() {
                ["T1", h, off] if *h == arn_hash => off.parse().map_err(|_| invalid_token())?,
                _ => return Err(invalid_token()),
            }
        }
    };
    let (page, total): (Vec<Tag>, usize) = {
        let jobs = lock(&state.jobs);
        let job = job_for_arn(&jobs, &arn)?;
        let page = job.tags.iter().skip(offset).take(max).cloned().collect();
        (page, job.tags.len())
    };
    let end = offset.saturating_add(page.len());
    let mut out = json!({ "Tags": to_json(&page)? });
    if end < total {
        out["NextToken"] = Value::String(seal(&format!("T1|{arn_hash}|{end}")));
    }
    Ok(out)
}

// ---------------------------------------------------------------- AddTags

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddTagsRequest {
    resource_arn: Option<String>,
    tags: Option<Vec<Tag>>,
}

fn add_tags(state: &EmulatorState, req: AddTagsRequest) -> Result<Value, ApiError> {
    let mut p = Problems::new();
    check_arn(&mut p, &req.resource_arn);
    if p.require("tags", &req.tags) {
        check_tags(&mut p, req.tags.as_deref().unwrap_or_default());
    }
    p.finish()?;
    let arn = req.resource_arn.unwrap_or_default();
    let tags = req.tags.unwrap_or_default();
    {
        let mut jobs = lock(&state.jobs);
        let name = job_for_arn(&jobs, &arn)?
            .record
            .compilation_job_name
            .clone();
        jobs.update(&name, |job| merge_tags(&mut job.tags, &tags));
    }
    Ok(json!({ "Tags": to_json(&tags)? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_are_serialization_errors() {
        let e = parse::<ListJobsRequest>(b"{not json").unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = parse::<ListJobsRequest>(br#"{"MaxResults":"ten"}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert!(parse::<ListJobsRequest>(b"").is_ok());
    }
}
