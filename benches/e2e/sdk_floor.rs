//! What the AWS SDK alone costs a call: the server's own SageMaker client
//! (`sagemaker_flight::source::emulator_client`, with `serve`'s retry,
//! timeout and stalled-stream settings) whose HTTP client is swapped for
//! one that answers at once with a body the emulator gave. No network, no
//! emulator and none of the server's code is in the figure: the request is
//! built, signed (SigV4) and sent through the SDK's orchestrator and its
//! interceptors, and the answer parsed into the SDK's output types, which
//! every call of a scan does before the server sees a byte. So it is a
//! floor under the server's CPU per job in scenario C.
//!
//! CPU time of the calling thread (`/proc/thread-self/schedstat`) over
//! sequential calls on a current-thread runtime of its own thread;
//! each operation measured in rounds, the median round reported.

use std::future::Future;

use aws_sdk_sagemaker::Client;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use serde_json::json;

use super::*;

/// Rounds per operation; the median is reported.
const ROUNDS: usize = 5;
/// Calls before the first round: the client's lazy state (credentials,
/// endpoint, connector) is set up by the first calls, not per call.
const WARMUP_CALLS: usize = 200;

/// The SDK's CPU per call of each operation of a cold `SELECT *`, in µs.
pub(super) struct SdkFloor {
    pub(super) describe_us: f64,
    pub(super) list_tags_us: f64,
    pub(super) list_page_us: f64,
}

impl SdkFloor {
    /// What a job of a cold `SELECT *` costs in the SDK alone: a Describe,
    /// a ListTags and a hundredth of a List page.
    pub(super) fn per_job_us(&self) -> f64 {
        self.describe_us + self.list_tags_us + self.list_page_us / 100.0
    }
}

/// The answers the SDK gets, one per operation, as the emulator at `url`
/// gave them for its first listed job.
#[derive(Debug)]
struct CannedAnswers {
    list: Bytes,
    describe: Bytes,
    list_tags: Bytes,
}

impl HttpConnector for CannedAnswers {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = match request.headers().get("x-amz-target") {
            Some("SageMaker.ListCompilationJobs") => &self.list,
            Some("SageMaker.DescribeCompilationJob") => &self.describe,
            Some("SageMaker.ListTags") => &self.list_tags,
            other => {
                let why = format!("no canned answer for X-Amz-Target {other:?}");
                return HttpConnectorFuture::ready(Err(ConnectorError::other(why.into(), None)));
            }
        };
        let status = match StatusCode::try_from(200u16) {
            Ok(status) => status,
            Err(e) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(e.into(), None)));
            }
        };
        let mut response = HttpResponse::new(status, SdkBody::from(body.clone()));
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// Measures the floor with `calls` calls per round and operation, on
/// answers taken from the emulator at `url` (which must hold a job).
pub(super) async fn sdk_floor(url: &str, calls: usize) -> Res<SdkFloor> {
    let list = sagemaker_call(url, "ListCompilationJobs", &json!({ "MaxResults": 100 })).await?;
    let first = serde_json::from_str::<Value>(&list)
        .map_err(|e| format!("ListCompilationJobs: not JSON: {e}"))?;
    let job = &first["CompilationJobSummaries"][0];
    let (Some(name), Some(arn)) = (
        job["CompilationJobName"].as_str(),
        job["CompilationJobArn"].as_str(),
    ) else {
        return Err("ListCompilationJobs: no job on the first page".into());
    };
    let describe = sagemaker_call(
        url,
        "DescribeCompilationJob",
        &json!({ "CompilationJobName": name }),
    )
    .await?;
    let list_tags = sagemaker_call(
        url,
        "ListTags",
        &json!({ "ResourceArn": arn, "MaxResults": 50 }),
    )
    .await?;
    let answers = CannedAnswers {
        list: list.into(),
        describe: describe.into(),
        list_tags: list_tags.into(),
    };
    let (name, arn) = (name.to_owned(), arn.to_owned());
    let (sender, receiver) = tokio::sync::oneshot::channel();
    // A thread of its own, so that its CPU time is the SDK's alone.
    std::thread::spawn(move || {
        let measured = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start tokio: {e}"))
            .and_then(|runtime| runtime.block_on(measure(answers, &name, &arn, calls)));
        let _ = sender.send(measured);
    });
    receiver
        .await
        .map_err(|_| "the SDK floor's thread ended without an answer".to_owned())?
}

/// The three operations, each checked once for a parsed answer, then timed.
async fn measure(answers: CannedAnswers, name: &str, arn: &str, calls: usize) -> Res<SdkFloor> {
    let connector = SharedHttpConnector::new(answers);
    let server_client =
        sagemaker_flight::source::emulator_client("http://127.0.0.1:1", "us-east-1");
    let config = server_client
        .config()
        .to_builder()
        .http_client(http_client_fn(move |_, _| connector.clone()))
        .build();
    let client = Client::from_conf(config);
    let describe = || async {
        let output = client
            .describe_compilation_job()
            .compilation_job_name(name)
            .send()
            .await
            .map_err(sdk_error)?;
        match output.compilation_job_name() {
            Some(got) if got == name => Ok(()),
            got => Err(format!("Describe answered job {got:?}, not {name}")),
        }
    };
    let list_tags = || async {
        client
            .list_tags()
            .resource_arn(arn)
            .max_results(50)
            .send()
            .await
            .map(drop)
            .map_err(sdk_error)
    };
    let list_page = || async {
        let output = client
            .list_compilation_jobs()
            .max_results(100)
            .send()
            .await
            .map_err(sdk_error)?;
        if output.compilation_job_summaries().is_empty() {
            return Err("List answered no job".into());
        }
        Ok(())
    };
    Ok(SdkFloor {
        describe_us: per_call_us(calls, describe).await?,
        list_tags_us: per_call_us(calls, list_tags).await?,
        list_page_us: per_call_us(calls, list_page).await?,
    })
}

/// An SDK error with its causes.
fn sdk_error(error: impl std::error::Error) -> String {
    aws_sdk_sagemaker::error::DisplayErrorContext(error).to_string()
}

/// The median over [`ROUNDS`] of this thread's CPU per call of `call`.
async fn per_call_us<F, Fut>(calls: usize, call: F) -> Res<f64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Res<()>>,
{
    for _ in 0..WARMUP_CALLS {
        call().await?;
    }
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let before = thread_cpu_ns()?;
        for _ in 0..calls {
            call().await?;
        }
        let spent = thread_cpu_ns()?.saturating_sub(before);
        rounds.push(spent as f64 / 1e3 / calls.max(1) as f64);
    }
    Ok(median(&rounds))
}

/// The CPU time this thread has run, in ns: the first field of its
/// schedstat, which the kernel brings up to date at every scheduler tick
/// (4 ms at HZ=250) and switch. A round of 10,000 calls runs for a few
/// hundred ms, so a tick is 1-2% of it (/proc's utime and stime count
/// 10 ms ticks).
fn thread_cpu_ns() -> Res<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("cannot read /proc/thread-self/schedstat: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .ok_or_else(|| format!("unexpected /proc/thread-self/schedstat: {text:?}"))
}
