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
/// Between two HTTP/2 pings on a connection that is quiet, unless
/// configured: load balancers cut idle connections (an AWS NLB after about
/// 350 s), and a query may compute for minutes before its first batch.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

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
    /// Between two HTTP/2 pings the server sends on a quiet connection, so
    /// that proxies see traffic; `None`: no pings.
    pub keepalive_interval: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_timeout: Some(DEFAULT_QUERY_TIMEOUT),
            max_concurrent_queries: DEFAULT_MAX_CONCURRENT_QUERIES,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
        }
    }
}
