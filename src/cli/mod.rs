//! The command line: clap's structs, the `--config` file under flags and
//! the environment, the conversion of options into the library's types (one
//! place per subcommand), and the `query` client. The library imports none
//! of it.
//!
//! - [`serve`]: `sagemaker-flight serve` options, into a `ServeConfig`.
//! - [`collect`]: `sagemaker-flight collect` options, into a `CollectConfig`.
//! - [`store`], [`calls`]: the replica's and the SageMaker calls' options,
//!   shared by `serve` and `collect`.
//! - [`access`]: the authentication and TLS options, into an `Access`.
//! - [`operations`]: the config file, metrics and log options.
//! - [`config_file`]: the `--config` TOML layering.
//! - [`emulator`]: `sagemaker-flight emulator`.
//! - [`query`]: `sagemaker-flight query`, a Flight SQL client.

pub mod access;
pub mod calls;
pub mod collect;
pub mod config_file;
#[cfg(feature = "demo")]
pub mod emulator;
pub mod operations;
pub mod query;
pub mod serve;
pub mod store;

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
    /// Keep a replica store current without serving it (`--once`: one pass).
    Collect(Box<collect::CollectArgs>),
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

    /// The one backticked value a README cell holds, if it holds just one.
    fn lone_code(cell: &str) -> Option<&str> {
        let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
        // `$VARIABLE` says where a value comes from, not what it is.
        (!inner.contains('`') && !inner.starts_with('$')).then_some(inner)
    }

    #[test]
    fn the_readme_tables_give_each_option_its_clap_default_and_variable() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let command = Cli::command();
        // (subcommand, env column, default column) of the table being read.
        let mut table: Option<(&str, Option<usize>, usize)> = None;
        let mut checked = 0;
        for line in readme.lines() {
            if line.starts_with("| flag | env | default |") {
                table = Some(("serve", Some(1), 2));
                continue;
            }
            if line.starts_with("| option | default |") {
                table = Some(("query", None, 1));
                continue;
            }
            if !line.starts_with('|') {
                table = None;
            }
            let Some((subcommand, env_column, default_column)) = table else {
                continue;
            };
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let Some(flag) = cells[0]
                .split('`')
                .nth(1)
                .and_then(|flag| flag.split_whitespace().next())
                .and_then(|flag| flag.strip_prefix("--"))
            else {
                continue;
            };
            let arg = command
                .find_subcommand(subcommand)
                .and_then(|sub| sub.get_arguments().find(|a| a.get_long() == Some(flag)))
                .unwrap_or_else(|| panic!("README names --{flag}, which `{subcommand}` lacks"));
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            let default = cells[default_column];
            match lone_code(default).or(default.parse::<f64>().is_ok().then_some(default)) {
                Some(value) => assert_eq!(defaults, [value], "--{flag}: README and clap"),
                None if default == "off" || default == "none" => assert!(
                    defaults.is_empty() || defaults == ["false"],
                    "--{flag} has default {defaults:?}, README says {default}"
                ),
                None => continue,
            }
            if let Some(column) = env_column {
                let variable = cells[column].split('`').nth(1);
                let expected = arg.get_env().map(|env| env.to_string_lossy().into_owned());
                assert_eq!(variable.map(str::to_owned), expected, "--{flag}'s variable");
            }
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} README rows were checked");
    }
}
