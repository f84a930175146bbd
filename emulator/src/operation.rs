//! The operations the emulator serves, by service and name.

/// The JSON 1.1 services the emulator serves on `POST /`, told apart by the
/// prefix of `X-Amz-Target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// SageMaker: `X-Amz-Target: SageMaker.<Operation>`.
    SageMaker,
    /// The Resource Groups Tagging API:
    /// `X-Amz-Target: ResourceGroupsTaggingAPI_20170126.<Operation>`.
    Tagging,
}

impl Service {
    /// The `targetPrefix` of the service's model.
    pub(crate) fn target_prefix(self) -> &'static str {
        match self {
            Service::SageMaker => "SageMaker",
            Service::Tagging => "ResourceGroupsTaggingAPI_20170126",
        }
    }
}

/// The operations the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    ListCompilationJobs,
    DescribeCompilationJob,
    ListTags,
    CreateCompilationJob,
    DeleteCompilationJob,
    AddTags,
    /// The Resource Groups Tagging API's GetResources (`tagging.rs`).
    GetResources,
}

impl Operation {
    pub(crate) const ALL: [Operation; 7] = [
        Operation::ListCompilationJobs,
        Operation::DescribeCompilationJob,
        Operation::ListTags,
        Operation::CreateCompilationJob,
        Operation::DeleteCompilationJob,
        Operation::AddTags,
        Operation::GetResources,
    ];

    /// The operation's name: its key in [`Stats`](crate::Stats).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::ListCompilationJobs => "ListCompilationJobs",
            Operation::DescribeCompilationJob => "DescribeCompilationJob",
            Operation::ListTags => "ListTags",
            Operation::CreateCompilationJob => "CreateCompilationJob",
            Operation::DeleteCompilationJob => "DeleteCompilationJob",
            Operation::AddTags => "AddTags",
            Operation::GetResources => "GetResources",
        }
    }

    /// The service the operation belongs to.
    pub(crate) fn service(self) -> Service {
        match self {
            Operation::GetResources => Service::Tagging,
            _ => Service::SageMaker,
        }
    }

    /// The operation an `X-Amz-Target` header names (`<prefix>.<name>`,
    /// the prefix of the operation's own service).
    pub(crate) fn from_target(target: &str) -> Option<Self> {
        let (prefix, name) = target.split_once('.')?;
        Self::ALL
            .into_iter()
            .find(|o| o.name() == name && o.service().target_prefix() == prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_an_operation_of_their_own_service() {
        assert_eq!(
            Operation::from_target("SageMaker.ListTags"),
            Some(Operation::ListTags)
        );
        assert_eq!(
            Operation::from_target("ResourceGroupsTaggingAPI_20170126.GetResources"),
            Some(Operation::GetResources)
        );
        for other in [
            "SageMaker.GetResources",
            "ResourceGroupsTaggingAPI_20170126.ListTags",
            "ResourceGroupsTaggingAPI_20170126.TagResources",
            "GetResources",
            "",
        ] {
            assert_eq!(Operation::from_target(other), None, "{other}");
        }
    }
}
