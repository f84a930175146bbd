//! The limits of a server: how long a query may run, how many run at once,
//! how much memory DataFusion's operators may hold, how long shutdown waits.
//! [`crate::flight::admission`] enforces the first two, the query engine the
//! third, [`crate::server`] the last.

use std::time::Duration;

use crate::query::engine::DEFAULT_MEMORY_LIMIT;

/// Seconds a query may run, unless configured.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Query streams running at once, unless configured.
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 32;
/// How long running streams may take to finish after shutdown starts,
/// unless configured.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The limits of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a query stream may run (from DoGet); `None`: no limit.
    pub query_timeout: Option<Duration>,
    /// Query streams running at once (at least 1); one more is refused.
    pub max_concurrent_queries: usize,
    /// Bytes DataFusion's operators (sorts, aggregations, joins) may hold,
    /// all queries together; `None`: no limit.
    pub memory_limit: Option<usize>,
    /// How long running streams may take to finish once shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_timeout: Some(DEFAULT_QUERY_TIMEOUT),
            max_concurrent_queries: DEFAULT_MAX_CONCURRENT_QUERIES,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}
