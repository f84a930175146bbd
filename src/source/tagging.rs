//! Every tagged job's tags in a few calls: the Resource Groups Tagging
//! API's GetResources, 100 compilation jobs a page, through the source's
//! retries and its own gate (its limits are not SageMaker's). An untagged
//! job is absent from its answer (its tags are empty). It needs the
//! `tag:GetResources` permission: a denied call is an `AccessDenied`
//! error, on which a caller falls back to ListTags per job.

use std::collections::HashMap;

use crate::source::error::SourceError;
use crate::source::operations;
use crate::source::sagemaker_source::SageMakerSource;

/// The Tagging API's resource type of a compilation job.
pub const COMPILATION_JOB_RESOURCE_TYPE: &str = "sagemaker:compilation-job";
/// Resources per GetResources page: the API's most.
const RESOURCES_PER_PAGE: i32 = 100;

/// Each tagged job's tags (in the order the API gives them), by ARN.
pub type TagsByArn = HashMap<String, Vec<(String, String)>>;

impl SageMakerSource {
    /// Every tagged compilation job of the partition and its tags, by ARN;
    /// `None` if the source has no Tagging API client.
    pub async fn tagged_jobs(&self) -> Result<Option<TagsByArn>, SourceError> {
        const OPERATION: &str = operations::GET_RESOURCES;
        let Some(tagging) = &self.tagging else {
            return Ok(None);
        };
        let mut jobs = TagsByArn::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .tagging_gate
                .run(&self.retry, || async {
                    tagging
                        .get_resources()
                        .resource_type_filters(COMPILATION_JOB_RESOURCE_TYPE)
                        .resources_per_page(RESOURCES_PER_PAGE)
                        .set_pagination_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| SourceError::from_sdk(OPERATION, e))
                })
                .await?;
            for mapping in page.resource_tag_mapping_list.unwrap_or_default() {
                let Some(arn) = mapping.resource_arn else {
                    return Err(SourceError::malformed(
                        OPERATION,
                        "a ResourceTagMapping has no ResourceARN",
                    ));
                };
                let tags = mapping
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|tag| (tag.key, tag.value))
                    .collect();
                jobs.insert(arn, tags);
            }
            // The last page answers an empty token.
            match page.pagination_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(Some(jobs)),
            }
        }
    }
}
