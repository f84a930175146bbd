//! The command line: clap's structs, the `--config` file under flags and
//! the environment, the conversion of options into the library's types (one
//! place per subcommand), and the `query` client. The library imports none
//! of it.
//!
//! - [`serve`]: `sagemaker-flight serve` options, into a `ServeConfig`.
//! - [`access`]: the authentication and TLS options, into an `Access`.
//! - [`operations`]: the config file, metrics and log options.
//! - [`config_file`]: the `--config` TOML layering.
//! - [`emulator`]: `sagemaker-flight emulator`.
//! - [`query`]: `sagemaker-flight query`, a Flight SQL client.

pub mod access;
pub mod config_file;
#[cfg(feature = "demo")]
pub mod emulator;
pub mod operations;
pub mod query;
pub mod serve;

use clap::{Parser, Subcommand};

/// Serve AWS SageMaker compilation jobs as an Arrow Flight table.
#[derive(Debug, Parser)]
#[command(name = "sagemaker-flight", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Flight server.
    // Boxed: the server's options outweigh the other commands' by far.
    Serve(Box<serve::ServeArgs>),
    /// Run the SageMaker emulator (an HTTP server speaking SageMaker's JSON protocol).
    #[cfg(feature = "demo")]
    Emulator(emulator::EmulatorArgs),
    /// Run a SQL query against a Flight SQL server and print the rows.
    Query(query::QueryArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn regions_are_checked() {
        let parse =
            |regions: &str| Cli::try_parse_from(["sagemaker-flight", "serve", "--region", regions]);
        assert!(parse("eu-west-1,us-east-1").is_ok());
        assert!(parse("all").is_ok());
        for bad in ["eu-west-1,", "", "EU WEST"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn demo_conflicts_with_an_endpoint() {
        let parsed = Cli::try_parse_from([
            "sagemaker-flight",
            "serve",
            "--demo",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ]);
        assert!(parsed.is_err());
    }
}
