//! The options of `serve` about running it: the config file, metrics, logs.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use sagemaker_flight::obs::logging::{LogFormat, parse_log_filter};

/// Options of `serve` about running it: the config file, metrics, logs.
#[derive(Debug, Clone, Args)]
pub struct OperationArgs {
    /// TOML file of `serve` options: keys are the long option names
    /// (`concurrency = 64`, `listen = "0.0.0.0:50051"`, `demo = true`, a list
    /// for a repeatable option). Flags and environment variables override
    /// it; it overrides the defaults. It may hold no password or token.
    #[arg(long, env = "SAGEMAKER_FLIGHT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address of a plain-HTTP listener serving Prometheus metrics at
    /// GET /metrics (off unless given). It has no authentication: bind it
    /// where only the scraper reaches it.
    #[arg(long, env = "SAGEMAKER_FLIGHT_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Format of the log on stderr: `text` for people, `json` (one object a
    /// line) for log collectors.
    #[arg(long, env = "SAGEMAKER_FLIGHT_LOG_FORMAT", value_enum, default_value_t = LogFormat::default())]
    pub log_format: LogFormat,

    /// What to log, in RUST_LOG's syntax (`info`, `debug`,
    /// `sagemaker_flight=debug,info`). Without it, RUST_LOG decides, and
    /// without that, `info`.
    #[arg(long, env = "SAGEMAKER_FLIGHT_LOG_LEVEL", value_name = "FILTER",
          value_parser = parse_log_filter)]
    pub log_level: Option<String>,
}
