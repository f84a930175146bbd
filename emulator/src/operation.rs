//! The SageMaker operations the emulator serves, by name.

/// The operations the emulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    ListCompilationJobs,
    DescribeCompilationJob,
    ListTags,
    CreateCompilationJob,
    DeleteCompilationJob,
    AddTags,
}

impl Operation {
    pub(crate) const ALL: [Operation; 6] = [
        Operation::ListCompilationJobs,
        Operation::DescribeCompilationJob,
        Operation::ListTags,
        Operation::CreateCompilationJob,
        Operation::DeleteCompilationJob,
        Operation::AddTags,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::ListCompilationJobs => "ListCompilationJobs",
            Operation::DescribeCompilationJob => "DescribeCompilationJob",
            Operation::ListTags => "ListTags",
            Operation::CreateCompilationJob => "CreateCompilationJob",
            Operation::DeleteCompilationJob => "DeleteCompilationJob",
            Operation::AddTags => "AddTags",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }
}
