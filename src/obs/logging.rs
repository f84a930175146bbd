//! The log on stderr: text for people or JSON for collectors, filtered in
//! RUST_LOG's syntax.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Format of the log on stderr (a clap value, `text` or `json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event, with the fields of its spans.
    Json,
}

/// The target of the AWS SDK's configuration crate.
const AWS_CONFIG_TARGET: &str = "aws_config";

/// The SDK's instance metadata (IMDS) client warns on every attempt when
/// there is no metadata service (any machine that is not EC2): a start-up
/// without credentials printed kilobytes of them. Errors only.
const IMDS_QUIET: &str = "aws_config::imds=error";

/// The Delta kernel of the replica's store logs every snapshot it builds
/// at `info`: lines per query. Warnings and errors only.
const DELTA_KERNEL_TARGET: &str = "buoyant_kernel";
const DELTA_QUIET: &str = "buoyant_kernel=warn";
/// deltalake logs each commit at `info`, and warns on every MERGE that a
/// metric of its own is missing: lines per refresh, about nothing we do.
/// Its other warnings stay; a failed commit is an error of ours anyway.
const DELTALAKE_TARGET: &str = "deltalake_core";
const DELTALAKE_QUIET: [&str; 2] = [
    "deltalake_core=warn",
    "deltalake_core::operations::merge=error",
];

/// Checks a log filter in RUST_LOG's syntax (clap's value parser).
pub fn parse_log_filter(text: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|error| format!("not a log filter: {error}"))
}

/// Installs the process's subscriber: `format` on stderr, filtered by
/// `filter` (RUST_LOG's syntax), else by RUST_LOG, else at `info`.
pub fn init_logging(format: LogFormat, filter: Option<&str>) -> Result<(), String> {
    let mut filter = match filter {
        Some(filter) => EnvFilter::builder()
            .parse(filter)
            .map_err(|error| format!("--log-level: {error}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // Unless the filter speaks of the crate itself.
    let given = filter.to_string();
    let quiet_targets = [
        (AWS_CONFIG_TARGET, IMDS_QUIET),
        (DELTA_KERNEL_TARGET, DELTA_QUIET),
        (DELTALAKE_TARGET, DELTALAKE_QUIET[0]),
        (DELTALAKE_TARGET, DELTALAKE_QUIET[1]),
    ];
    for (target, quiet) in quiet_targets {
        if !given.contains(target)
            && let Ok(quiet) = quiet.parse()
        {
            filter = filter.add_directive(quiet);
        }
    }
    // Colour codes only for a person at a terminal: a file, a pipe or a
    // log collector would get them as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|error| format!("cannot install the logger: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filters_are_checked() {
        assert!(parse_log_filter("info").is_ok());
        assert!(parse_log_filter("sagemaker_flight=debug,info").is_ok());
        assert!(parse_log_filter("sagemaker_flight=loud").is_err());
    }
}
