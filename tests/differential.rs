//! Differential test of filter pushdown: a corpus of queries runs on two
//! engines over the same emulator and source, one pushing filters, sorts
//! and limits into the SageMaker API and one not. The answers must be
//! identical; and pushdown must never make more calls, except the List
//! pages its plan allows (one listing per status: k listings may end in
//! k - 1 more partly filled pages than one full listing; if the API filters
//! after it cuts a page, each of them may cost as many pages as the full
//! listing). The corpus runs under both of the emulator's paging models.
//!
//! The literals come from the emulator's own jobs, so every time bound is a
//! real job's exact time (boundary equality keeps or drops exactly that job)
//! and every name, fragment and tag value exists. Where the answer is easy to
//! compute from the emulator's jobs, it is checked against that too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::RecordBatch;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use common::{emulator_config, quick_retries, seconds_to_micros};
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;
use sagemaker_emulator::{Emulator, EmulatorConfig, FilterPaging, Stats};
use sagemaker_flight::query::QueryEngine;
use sagemaker_flight::source::{SageMakerSource, emulator_client};
use sagemaker_flight::table::TableOptions;
use sagemaker_flight::table::exec::SageMakerScanExec;

const T: &str = "aws.sagemaker_compilation_job";
const JOBS: usize = 400;

/// One emulated job, the members the corpus needs.
#[derive(Clone, Debug)]
struct Job {
    name: String,
    arn: String,
    status: String,
    created: i64,
    modified: i64,
    tags: Vec<(String, String)>,
}

fn jobs_of(emu: &Emulator) -> Vec<Job> {
    emu.state()
        .jobs()
        .into_iter()
        .map(|job| {
            let d = &job.describe;
            let text = |m: &str| d[m].as_str().unwrap_or_else(|| panic!("{m}")).to_owned();
            let micros =
                |m: &str| seconds_to_micros(d[m].as_f64().unwrap_or_else(|| panic!("{m}")));
            Job {
                name: text("CompilationJobName"),
                arn: text("CompilationJobArn"),
                status: text("CompilationJobStatus"),
                created: micros("CreationTime"),
                modified: micros("LastModifiedTime"),
                tags: job.tags,
            }
        })
        .collect()
}

/// `2026-01-02T03:04:05.123Z` for microseconds since the epoch.
fn rfc3339(micros: i64) -> String {
    DateTime::from_secs_and_nanos(
        micros.div_euclid(1_000_000),
        (micros.rem_euclid(1_000_000) * 1_000) as u32,
    )
    .fmt(Format::DateTime)
    .expect("format time")
}

/// A SQL timestamp literal for microseconds since the epoch.
fn ts(micros: i64) -> String {
    format!("TIMESTAMP '{}'", rfc3339(micros))
}

/// The same instant written with a +02:00 offset.
fn ts_plus_two_hours(micros: i64) -> String {
    let local = rfc3339(micros + 2 * 3_600 * 1_000_000);
    let local = local.strip_suffix('Z').expect("UTC text");
    format!("TIMESTAMP '{local}+02:00'")
}

/// A query of the corpus.
struct Case {
    sql: String,
    /// Compare in order (the query has a total ORDER BY).
    ordered: bool,
    /// The answer (one job name a row, sorted), when the jobs tell it.
    expect: Option<Vec<String>>,
}

/// Builds the corpus from the emulator's jobs.
struct Corpus<'a> {
    jobs: &'a [Job],
    cases: Vec<Case>,
}

impl<'a> Corpus<'a> {
    /// A query compared as a multiset of rows (or in order with ORDER BY).
    fn add(&mut self, sql: String) {
        let ordered = sql.contains("ORDER BY");
        self.cases.push(Case {
            sql,
            ordered,
            expect: None,
        });
    }

    /// `SELECT compilation_job_name FROM T WHERE {filter}`, also checked
    /// against the jobs that satisfy `oracle`.
    fn names(&mut self, filter: String, oracle: impl Fn(&Job) -> bool) {
        let mut expected: Vec<String> = self
            .jobs
            .iter()
            .filter(|j| oracle(j))
            .map(|j| j.name.clone())
            .collect();
        expected.sort();
        self.cases.push(Case {
            sql: format!("SELECT compilation_job_name FROM {T} WHERE {filter}"),
            ordered: false,
            expect: Some(expected),
        });
    }
}

fn build_corpus(jobs: &[Job]) -> Vec<Case> {
    let n = jobs.len();
    let mut by_created: Vec<&Job> = jobs.iter().collect();
    by_created.sort_by_key(|j| (j.created, j.name.clone()));
    let mut by_modified: Vec<&Job> = jobs.iter().collect();
    by_modified.sort_by_key(|j| (j.modified, j.name.clone()));
    let (c_lo, c_mid, c_hi) = (
        by_created[n / 4].created,
        by_created[n / 2].created,
        by_created[3 * n / 4].created,
    );
    let (m_lo, m_mid, m_hi) = (
        by_modified[n / 5].modified,
        by_modified[n / 2].modified,
        by_modified[4 * n / 5].modified,
    );
    // The newest jobs (the running ones) cluster; a bound among them keeps
    // several jobs within the API's second of slack.
    let c_recent = by_created[n - 12].created;

    let a = &jobs[17];
    let b = &jobs[123];
    let other_status = ["FAILED", "COMPLETED"]
        .into_iter()
        .find(|s| *s != a.status)
        .expect("a status");
    let capitalised = jobs
        .iter()
        .find(|j| j.name.starts_with(|c: char| c.is_ascii_uppercase()))
        .expect("a capitalised name");
    // Its first word ("Resnet50"), as written, lower-cased and upper-cased.
    let mixed = capitalised.name.split('-').next().expect("word").to_owned();
    let lower = mixed.to_ascii_lowercase();
    let upper = mixed.to_ascii_uppercase();
    assert!(mixed != lower && mixed != upper, "{mixed}");
    // A fragment from the middle of a lower-case name.
    let plain = jobs
        .iter()
        .find(|j| j.name.split('-').count() >= 3 && !j.name.chars().any(|c| c.is_ascii_uppercase()))
        .expect("a lower-case name");
    let middle = plain
        .name
        .split('-')
        .nth(1)
        .expect("second word")
        .to_owned();
    let prefix: String = plain.name.chars().take(5).collect();
    // "resnet" -> "r_snet": a '_' wildcard inside a fragment.
    let wild: String = lower
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 1 { '_' } else { c })
        .collect();
    let team = jobs
        .iter()
        .flat_map(|j| j.tags.iter())
        .find(|(k, _)| k == "team")
        .map(|(_, v)| v.clone())
        .expect("a team tag");
    let missing = "no-such-compilation-job";
    let arn_of = |name: &str| a.arn.replace(&a.name, name);
    let other_region_arn = a.arn.replace(":us-east-1:", ":eu-west-1:");
    assert_ne!(other_region_arn, a.arn);

    let mut corpus = Corpus {
        jobs,
        cases: Vec::new(),
    };
    let status = "compilation_job_status";

    // --- status: =, IN, case, unknown, <>, NOT IN
    corpus.names(format!("{status} = 'FAILED'"), |j| j.status == "FAILED");
    corpus.names(
        format!("{status} IN ('FAILED', 'STOPPED', 'STARTING')"),
        |j| ["FAILED", "STOPPED", "STARTING"].contains(&j.status.as_str()),
    );
    corpus.names(
        format!("{status} IN ('COMPLETED', 'failed', 'DONE')"),
        |j| j.status == "COMPLETED",
    );
    corpus.names(format!("{status} IN ('failed', 'DONE')"), |_| false);
    corpus.names(format!("{status} = 'DONE'"), |_| false);
    corpus.names(format!("{status} = 'completed'"), |_| false);
    corpus.names(format!("{status} <> 'COMPLETED'"), |j| {
        j.status != "COMPLETED"
    });
    corpus.names(format!("{status} NOT IN ('COMPLETED', 'FAILED')"), |j| {
        j.status != "COMPLETED" && j.status != "FAILED"
    });
    corpus.names(format!("'STOPPED' = {status}"), |j| j.status == "STOPPED");

    // --- creation_time and last_modified_time: every comparison at a real
    // job's exact time, two-sided ranges, and contradictions.
    for (column, mid, lo, hi, time) in [
        (
            "creation_time",
            c_mid,
            c_lo,
            c_hi,
            (|j: &Job| j.created) as fn(&Job) -> i64,
        ),
        (
            "last_modified_time",
            m_mid,
            m_lo,
            m_hi,
            (|j: &Job| j.modified) as fn(&Job) -> i64,
        ),
    ] {
        let at = ts(mid);
        corpus.names(format!("{column} > {at}"), |j| time(j) > mid);
        corpus.names(format!("{column} >= {at}"), |j| time(j) >= mid);
        corpus.names(format!("{column} < {at}"), |j| time(j) < mid);
        corpus.names(format!("{column} <= {at}"), |j| time(j) <= mid);
        corpus.names(format!("{column} = {at}"), |j| time(j) == mid);
        corpus.names(format!("{column} BETWEEN {} AND {}", ts(lo), ts(hi)), |j| {
            (lo..=hi).contains(&time(j))
        });
        corpus.names(
            format!("{column} > {} AND {column} <= {}", ts(lo), ts(hi)),
            |j| time(j) > lo && time(j) <= hi,
        );
        corpus.names(format!("{column} >= {at} AND {column} <= {at}"), |j| {
            time(j) == mid
        });
        corpus.names(
            format!("{column} > {} AND {column} < {}", ts(hi), ts(lo)),
            |_| false,
        );
        corpus.names(format!("{column} > {at} AND {column} < {at}"), |_| false);
    }
    // Literal on the left, an offset time zone, a string literal coerced.
    corpus.names(format!("{} < creation_time", ts(c_mid)), |j| {
        j.created > c_mid
    });
    corpus.names(
        format!("creation_time >= {}", ts_plus_two_hours(c_mid)),
        |j| j.created >= c_mid,
    );
    corpus.names(format!("creation_time <= '{}'", rfc3339(c_mid)), |j| {
        j.created <= c_mid
    });
    corpus.names(format!("creation_time > {}", ts(c_recent)), |j| {
        j.created > c_recent
    });
    // Bounds far outside the data: before the epoch, centuries ahead, a
    // bare date.
    corpus.names(
        "creation_time > TIMESTAMP '1969-12-31T23:59:59.5Z'".to_owned(),
        |_| true,
    );
    corpus.names(
        "last_modified_time >= TIMESTAMP '2200-01-01T00:00:00Z'".to_owned(),
        |_| false,
    );
    let day = rfc3339(c_mid)[..10].to_owned();
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} WHERE creation_time >= '{day}'"
    ));
    corpus.names(
        format!(
            "creation_time >= {} AND last_modified_time < {}",
            ts(c_lo),
            ts(m_hi)
        ),
        |j| j.created >= c_lo && j.modified < m_hi,
    );

    // --- status AND time range, status IN AND time range
    corpus.names(
        format!("{status} = 'COMPLETED' AND creation_time >= {}", ts(c_mid)),
        |j| j.status == "COMPLETED" && j.created >= c_mid,
    );
    corpus.names(
        format!(
            "{status} IN ('FAILED', 'STOPPED') AND creation_time BETWEEN {} AND {}",
            ts(c_lo),
            ts(c_hi)
        ),
        |j| (j.status == "FAILED" || j.status == "STOPPED") && (c_lo..=c_hi).contains(&j.created),
    );
    corpus.names(
        format!(
            "{status} = 'COMPLETED' AND last_modified_time < {}",
            ts(m_lo)
        ),
        |j| j.status == "COMPLETED" && j.modified < m_lo,
    );

    // --- names, ARNs, keys: direct Describe
    let (an, bn) = (a.name.clone(), b.name.clone());
    corpus.names(format!("compilation_job_name = '{an}'"), |j| j.name == an);
    corpus.names(format!("compilation_job_name = '{missing}'"), |_| false);
    corpus.names(
        format!("compilation_job_name IN ('{an}', '{bn}', '{missing}')"),
        |j| j.name == an || j.name == bn,
    );
    corpus.names(
        format!("compilation_job_name IN ('{an}', 'not a name!')"),
        |j| j.name == an,
    );
    corpus.names(
        format!(
            "compilation_job_name = '{}'",
            capitalised.name.to_ascii_lowercase()
        ),
        |_| false,
    );
    corpus.names(format!("compilation_job_arn = '{}'", a.arn), |j| {
        j.name == an
    });
    corpus.names(
        format!("compilation_job_arn = '{other_region_arn}'"),
        |_| false,
    );
    corpus.names(
        format!("_key IN ('{}', '{}')", b.arn, arn_of(missing)),
        |j| j.name == bn,
    );
    corpus.names(
        format!(
            "compilation_job_name = '{an}' AND {status} = '{}'",
            a.status
        ),
        |j| j.name == an,
    );
    corpus.names(
        format!("compilation_job_name = '{an}' AND {status} = '{other_status}'"),
        |_| false,
    );
    corpus.names(
        format!("compilation_job_name = '{an}' AND compilation_job_name = '{bn}'"),
        |_| false,
    );
    corpus.add(format!(
        "SELECT compilation_job_name, compilation_job_status, failure_reason, input_config, \
         tags FROM {T} WHERE compilation_job_name IN ('{an}', '{bn}')"
    ));

    // --- LIKE and friends
    corpus.names(format!("compilation_job_name LIKE '%{middle}%'"), |j| {
        j.name.contains(&middle)
    });
    corpus.names(format!("compilation_job_name LIKE '%{mixed}%'"), |j| {
        j.name.contains(&mixed)
    });
    corpus.names(format!("compilation_job_name LIKE '%{lower}%'"), |j| {
        j.name.contains(&lower)
    });
    corpus.names(format!("compilation_job_name LIKE '%{upper}%'"), |j| {
        j.name.contains(&upper)
    });
    corpus.names(format!("compilation_job_name LIKE '{prefix}%'"), |j| {
        j.name.starts_with(&prefix)
    });
    corpus.names(format!("compilation_job_name LIKE '{}'", plain.name), |j| {
        j.name == plain.name
    });
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} WHERE compilation_job_name LIKE '%{wild}%'"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} WHERE compilation_job_name LIKE '{prefix}_%-%'"
    ));
    corpus.names(format!("compilation_job_name NOT LIKE '%{lower}%'"), |j| {
        !j.name.contains(&lower)
    });
    corpus.names(format!("compilation_job_name ILIKE '%{upper}%'"), |j| {
        j.name.to_ascii_lowercase().contains(&lower)
    });
    corpus.names(
        format!("compilation_job_name LIKE '%{lower}%' AND {status} = 'COMPLETED'"),
        |j| j.name.contains(&lower) && j.status == "COMPLETED",
    );

    // --- OR
    corpus.names(
        format!("{status} = 'FAILED' OR {status} = 'STOPPED'"),
        |j| j.status == "FAILED" || j.status == "STOPPED",
    );
    corpus.names(
        format!("{status} = 'FAILED' OR compilation_job_name = '{an}'"),
        |j| j.status == "FAILED" || j.name == an,
    );
    corpus.names(
        format!(
            "creation_time < {} OR creation_time > {}",
            ts(c_lo),
            ts(c_hi)
        ),
        |j| j.created < c_lo || j.created > c_hi,
    );
    corpus.names(
        format!(
            "creation_time BETWEEN {} AND {} OR creation_time BETWEEN {} AND {}",
            ts(c_lo),
            ts(c_mid),
            ts(c_hi),
            ts(c_recent)
        ),
        |j| (c_lo..=c_mid).contains(&j.created) || (c_hi..=c_recent).contains(&j.created),
    );
    corpus.names(
        format!(
            "(compilation_job_name = '{an}' AND {status} = '{}') OR {status} = 'STOPPING'",
            a.status
        ),
        |j| j.name == an || j.status == "STOPPING",
    );
    corpus.names(
        format!("compilation_job_name = '{an}' OR _key = '{}'", b.arn),
        |j| j.name == an || j.name == bn,
    );
    corpus.names(
        format!("{status} = 'DONE' OR creation_time > {}", ts(c_hi)),
        |j| j.created > c_hi,
    );

    // --- nullable columns (need Describe)
    for filter in [
        "failure_reason IS NULL".to_owned(),
        "failure_reason IS NOT NULL".to_owned(),
        format!("compilation_end_time IS NULL AND {status} IN ('INPROGRESS', 'STARTING')"),
        "compilation_end_time IS NULL".to_owned(),
        "vpc_config IS NOT NULL".to_owned(),
        format!("model_package_version_arn IS NULL AND {status} = 'COMPLETED'"),
    ] {
        corpus.add(format!(
            "SELECT compilation_job_name, failure_reason, compilation_end_time, vpc_config, \
             model_package_version_arn FROM {T} WHERE {filter}"
        ));
    }

    // --- projections
    corpus.add(format!(
        "SELECT _key, account_id, compilation_job_name, compilation_job_status, creation_time, \
         last_modified_time, compilation_start_time, compilation_end_time FROM {T}"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, tags['team'] AS team FROM {T} WHERE tags['team'] = '{team}'"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, input_config FROM {T} WHERE input_config LIKE '%PYTORCH%'"
    ));
    corpus.add(format!("SELECT * FROM {T} WHERE {status} = 'STOPPING'"));
    corpus.add(format!(
        "SELECT * FROM {T} WHERE creation_time > {} AND {status} <> 'COMPLETED'",
        ts(c_recent)
    ));

    // --- ORDER BY, LIMIT, OFFSET
    corpus.add(format!(
        "SELECT compilation_job_name, creation_time FROM {T} \
         ORDER BY creation_time DESC, compilation_job_name LIMIT 7"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, creation_time, failure_reason FROM {T} \
         WHERE {status} = 'FAILED' ORDER BY creation_time DESC, compilation_job_name LIMIT 7"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, last_modified_time FROM {T} \
         WHERE last_modified_time <= {} \
         ORDER BY last_modified_time, compilation_job_name LIMIT 5 OFFSET 10",
        ts(m_mid)
    ));
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} WHERE creation_time >= {} \
         ORDER BY compilation_job_name LIMIT 10 OFFSET 3",
        ts(c_mid)
    ));
    corpus.add(format!(
        "SELECT count(*) AS n FROM (SELECT * FROM {T} WHERE {status} = 'FAILED' LIMIT 5)"
    ));
    corpus.add(format!(
        "SELECT count(*) AS n FROM (SELECT compilation_job_name FROM {T} \
         WHERE creation_time > {} LIMIT 3)",
        ts(c_mid)
    ));

    // --- ORDER BY a column the API sorts by, with LIMIT: first rows only
    corpus.add(format!(
        "SELECT compilation_job_name, role_arn FROM {T} ORDER BY creation_time DESC LIMIT 5"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, creation_time FROM {T} ORDER BY creation_time LIMIT 3 OFFSET 4"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} ORDER BY compilation_job_name DESC LIMIT 6"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, {status} FROM {T} \
         ORDER BY {status}, compilation_job_name DESC LIMIT 4"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name, failure_reason FROM {T} WHERE {status} IN ('FAILED', 'STOPPED') \
         ORDER BY creation_time DESC, compilation_job_name LIMIT 8"
    ));
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} WHERE account_id = '123456789012' \
         AND creation_time > {} ORDER BY creation_time DESC, compilation_job_name LIMIT 5",
        ts(c_lo)
    ));
    corpus.add(format!(
        "SELECT compilation_job_name FROM {T} WHERE compilation_job_name IN ('{an}', '{bn}') \
         ORDER BY compilation_job_name LIMIT 1"
    ));
    // --- LIMIT under exact filters: which rows is open, how many and
    // what they satisfy is not
    corpus.add(format!(
        "SELECT count(*) AS n, min({status}), max({status}) FROM \
         (SELECT {status}, failure_reason FROM {T} WHERE {status} = 'FAILED' LIMIT 5)"
    ));
    corpus.add(format!(
        "SELECT count(*) AS n FROM (SELECT compilation_job_name FROM {T} \
         WHERE {status} IN ('STOPPED', 'STARTING') AND account_id = '123456789012' LIMIT 7)"
    ));
    corpus.add(format!(
        "SELECT count(*) AS n FROM (SELECT compilation_job_name FROM {T} \
         WHERE compilation_job_name IN ('{an}', '{bn}', '{missing}') LIMIT 1)"
    ));

    // --- aggregates
    corpus.add(format!("SELECT count(*) AS n FROM {T}"));
    corpus.add(format!(
        "SELECT count(*) AS n FROM {T} WHERE {status} = 'DONE'"
    ));
    corpus.add(format!(
        "SELECT {status}, count(*) AS n FROM {T} GROUP BY {status}"
    ));
    corpus.add(format!(
        "SELECT {status}, min(creation_time), max(creation_time), max(last_modified_time) \
         FROM {T} GROUP BY {status}"
    ));
    corpus.add(format!(
        "SELECT count(DISTINCT {status}) AS statuses FROM {T} WHERE creation_time >= {}",
        ts(c_mid)
    ));
    corpus.add(format!(
        "SELECT {status}, count(*) AS n FROM {T} WHERE creation_time < {} \
         GROUP BY {status} HAVING count(*) > 5",
        ts(c_hi)
    ));
    corpus.add(format!(
        "SELECT tags['team'] AS team, count(*) AS n FROM {T} \
         WHERE {status} IN ('FAILED', 'STOPPED') GROUP BY tags['team']"
    ));
    corpus.cases
}

/// Calls per operation.
fn calls(stats: &Stats) -> BTreeMap<String, u64> {
    stats
        .operations
        .iter()
        .map(|(name, o)| (name.clone(), o.calls))
        .collect()
}

/// Waits (without sleeping) until the emulator has no call in flight and
/// its counters stop moving, so that a stream dropped early (LIMIT) cannot
/// leave calls that would be counted against the next run.
async fn settle(emu: &Emulator) -> BTreeMap<String, u64> {
    let mut last = calls(&emu.state().stats());
    let mut quiet = 0;
    for _ in 0..1_000 {
        tokio::task::yield_now().await;
        let stats = emu.state().stats();
        let now = calls(&stats);
        if stats.in_flight == 0 && now == last {
            quiet += 1;
            if quiet >= 20 {
                break;
            }
        } else {
            quiet = 0;
        }
        last = now;
    }
    last
}

/// What one engine answered to one query.
struct Answer {
    schema: Vec<String>,
    rows: Vec<String>,
    calls: BTreeMap<String, u64>,
    /// The List pages its plan may cost beyond one listing of every job
    /// (one status listing per status: each may end in a partly filled
    /// page).
    extra_list_pages: u64,
}

impl Answer {
    fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// How this answer (with pushdown) cost more calls than `plain`
    /// (without), beyond the List pages its plan allows. Calls are counted
    /// together: a Describe by name stands in for a listing. If the API
    /// filters after it cuts a page, each extra status listing may cost as
    /// many pages as the full one.
    fn costs_more_than(&self, plain: &Answer, paging: FilterPaging) -> Option<String> {
        let per_extra_listing = match paging {
            FilterPaging::BeforeCut => 1,
            FilterPaging::AfterCut => plain.calls.get("ListCompilationJobs").copied().unwrap_or(1),
        };
        let allowed = plain.total_calls() + self.extra_list_pages * per_extra_listing;
        (self.total_calls() > allowed).then(|| {
            format!(
                "{} calls, {} allowed ({:?} vs {:?})",
                self.total_calls(),
                allowed,
                self.calls,
                plain.calls
            )
        })
    }
}

/// The List pages a physical plan may cost beyond one listing of every job,
/// over all its scans.
fn extra_list_pages(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    let own = plan
        .downcast_ref::<SageMakerScanExec>()
        .map_or(0, |scan| scan.extra_list_pages_at_most() as u64);
    own + plan
        .children()
        .into_iter()
        .map(extra_list_pages)
        .sum::<u64>()
}

async fn answer(emu: &Emulator, engine: &QueryEngine, case: &Case) -> Answer {
    let before = settle(emu).await;
    let planned = engine
        .plan(&case.sql, None)
        .await
        .unwrap_or_else(|e| panic!("plan {}: {e}", case.sql));
    let schema = planned
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    let batches: Vec<RecordBatch> = planned
        .execute()
        .unwrap_or_else(|e| panic!("execute {}: {e}", case.sql))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", case.sql));
    let after = settle(emu).await;
    let calls = after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut rows = common::rows_as_text(&batches);
    if !case.ordered {
        rows.sort();
    }
    Answer {
        schema,
        rows,
        calls,
        extra_list_pages: extra_list_pages(&planned.plan),
    }
}

/// The rows only one side has (multiset difference), a few of them.
fn only_in(a: &[String], b: &[String]) -> Vec<String> {
    let mut rest: BTreeMap<&String, usize> = BTreeMap::new();
    for row in b {
        *rest.entry(row).or_default() += 1;
    }
    let mut only = Vec::new();
    for row in a {
        match rest.get_mut(row) {
            Some(n) if *n > 0 => *n -= 1,
            _ => only.push(row.clone()),
        }
    }
    only.truncate(5);
    only
}

/// The emulator of `JOBS` jobs, and two engines over one source of it:
/// with filter pushdown and without.
async fn emulator_and_engines(paging: FilterPaging) -> (Emulator, QueryEngine, QueryEngine) {
    let config = EmulatorConfig {
        filter_paging: paging,
        ..emulator_config(JOBS)
    };
    let emu = Emulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .expect("emulator starts");
    let client = emulator_client(&emu.endpoint_url(), "us-east-1");
    let source = Arc::new(SageMakerSource::new(client, 16, quick_retries(8)));
    let with = QueryEngine::new(Arc::clone(&source), TableOptions::default())
        .expect("engine with pushdown");
    let without = QueryEngine::new(
        source,
        TableOptions {
            filter_pushdown: false,
            ..TableOptions::default()
        },
    )
    .expect("engine without pushdown");
    (emu, with, without)
}

#[tokio::test]
async fn pushdown_never_changes_an_answer_nor_adds_calls_beyond_its_status_pages() {
    corpus_answers_the_same_with_and_without_pushdown(FilterPaging::BeforeCut).await;
}

#[tokio::test]
async fn pushdown_answers_the_same_when_the_api_filters_after_it_cuts_a_page() {
    corpus_answers_the_same_with_and_without_pushdown(FilterPaging::AfterCut).await;
}

async fn corpus_answers_the_same_with_and_without_pushdown(paging: FilterPaging) {
    let (emu, with, without) = emulator_and_engines(paging).await;

    let jobs = jobs_of(&emu);
    assert_eq!(jobs.len(), JOBS);
    let statuses: BTreeSet<&str> = jobs.iter().map(|j| j.status.as_str()).collect();
    assert_eq!(statuses.len(), 6, "every status is present: {statuses:?}");
    let corpus = build_corpus(&jobs);
    assert!(corpus.len() >= 45, "{} queries", corpus.len());

    let mut failures = Vec::new();
    let (mut total_with, mut total_without) = (0, 0);
    println!(
        "{:>3} {:>5} {:>6} {:>9}  query",
        "#", "rows", "calls", "no-push"
    );
    for (i, case) in corpus.iter().enumerate() {
        let pushed = answer(&emu, &with, case).await;
        let plain = answer(&emu, &without, case).await;
        total_with += pushed.total_calls();
        total_without += plain.total_calls();
        println!(
            "{i:>3} {:>5} {:>6} {:>9}  {}",
            pushed.rows.len(),
            pushed.total_calls(),
            plain.total_calls(),
            case.sql
        );
        if pushed.schema != plain.schema {
            failures.push(format!(
                "#{i} schemas differ: {:?} vs {:?}\n    {}",
                pushed.schema, plain.schema, case.sql
            ));
        }
        if pushed.rows != plain.rows {
            failures.push(format!(
                "#{i} answers differ: {} rows with pushdown, {} without\n    {}\n    \
                 only with pushdown: {:?}\n    only without: {:?}",
                pushed.rows.len(),
                plain.rows.len(),
                case.sql,
                only_in(&pushed.rows, &plain.rows),
                only_in(&plain.rows, &pushed.rows),
            ));
        }
        if let Some(expected) = &case.expect {
            // Names print quoted.
            let mut got: Vec<String> = plain.rows.iter().map(|r| r.replace('"', "")).collect();
            got.sort();
            if &got != expected {
                failures.push(format!(
                    "#{i} the answer is not the emulator's: {} rows, {} expected\n    {}\n    \
                     unexpected: {:?}\n    missing: {:?}",
                    got.len(),
                    expected.len(),
                    case.sql,
                    only_in(&got, expected),
                    only_in(expected, &got),
                ));
            }
        }
        if let Some(excess) = pushed.costs_more_than(&plain, paging) {
            failures.push(format!(
                "#{i} pushdown made more calls: {excess}\n    {}",
                case.sql
            ));
        }
    }
    println!(
        "{} queries: {total_with} calls with pushdown, {total_without} without",
        corpus.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(
        total_with < total_without,
        "pushdown made {total_with} calls, no pushdown {total_without}"
    );
    emu.shutdown().await;
}

/// Random predicates (status, times, names and ARNs combined with AND, OR
/// and NOT) built from the emulator's own values: the answer with pushdown
/// is the answer without, and costs no more calls. A failure prints the
/// query, so it can be added to the corpus above.
#[tokio::test]
async fn random_predicates_answer_the_same_with_and_without_pushdown() {
    let cases = common::proptest_cases(48);
    let (emu, with, without) = emulator_and_engines(FilterPaging::BeforeCut).await;

    let jobs = jobs_of(&emu);
    let mut atoms = Vec::new();
    let statuses = sagemaker_flight::table::pushdown::STATUSES
        .iter()
        .chain(&["NOPE"]);
    for status in statuses {
        atoms.push(format!("compilation_job_status = '{status}'"));
        atoms.push(format!("compilation_job_status <> '{status}'"));
    }
    atoms.push("compilation_job_status IN ('FAILED', 'STOPPED')".into());
    atoms.push("compilation_job_status IN ('COMPLETED', 'NOPE', 'STARTING')".into());
    for job in jobs.iter().step_by(JOBS / 8) {
        for op in [">=", ">", "<", "<=", "="] {
            atoms.push(format!("creation_time {op} {}", ts(job.created)));
            atoms.push(format!("last_modified_time {op} {}", ts(job.modified)));
        }
        atoms.push(format!("creation_time > {}", ts(job.created - 1_000_000)));
        atoms.push(format!("creation_time < {}", ts(job.created + 1)));
        atoms.push(format!("compilation_job_name = '{}'", job.name));
        atoms.push(format!("compilation_job_arn = '{}'", job.arn));
        let fragment: String = job.name.chars().skip(2).take(4).collect();
        atoms.push(format!("compilation_job_name LIKE '%{fragment}%'"));
    }
    let mut failures = Vec::new();
    for predicate in common::random_predicates(atoms, cases) {
        let case = Case {
            sql: format!("SELECT compilation_job_name FROM {T} WHERE {predicate}"),
            ordered: false,
            expect: None,
        };
        let pushed = answer(&emu, &with, &case).await;
        let plain = answer(&emu, &without, &case).await;
        if pushed.rows != plain.rows {
            failures.push(format!(
                "answers differ: {} rows with pushdown, {} without\n    {}",
                pushed.rows.len(),
                plain.rows.len(),
                case.sql
            ));
        }
        if let Some(excess) = pushed.costs_more_than(&plain, FilterPaging::BeforeCut) {
            failures.push(format!(
                "pushdown made more calls: {excess}\n    {}",
                case.sql
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    emu.shutdown().await;
}
