//! The operations the source calls (SageMaker's, and the Tagging API's
//! GetResources), by the names AWS gives them (and the metrics'
//! `operation` label).

use crate::obs::metrics::preregister_sagemaker_calls;
use crate::source::error::SourceErrorKind;
use crate::source::partition_key::PartitionKey;

/// ListCompilationJobs.
pub const LIST: &str = "ListCompilationJobs";
/// DescribeCompilationJob.
pub const DESCRIBE: &str = "DescribeCompilationJob";
/// ListTags.
pub const LIST_TAGS: &str = "ListTags";
/// The Resource Groups Tagging API's GetResources (the replica's tags).
pub const GET_RESOURCES: &str = "GetResources";
/// Every operation the source calls.
pub const ALL: [&str; 4] = [LIST, DESCRIBE, LIST_TAGS, GET_RESOURCES];

/// Creates, at zero, the call and retry series of every operation and
/// outcome for each partition, so that dashboards and alerts see zeros
/// before the first call instead of no series at all.
pub fn preregister_metrics(partitions: &[PartitionKey]) {
    let outcomes: Vec<&'static str> = std::iter::once("ok")
        .chain(SourceErrorKind::ALL.iter().map(|kind| kind.outcome_label()))
        .collect();
    for key in partitions {
        let labels = key.labels();
        for operation in ALL {
            preregister_sagemaker_calls(operation, &outcomes, &labels);
        }
    }
}
