//! Where `serve`'s options come from: the command line, the environment,
//! and a TOML file (`--config FILE`), in that order of precedence, then the
//! built-in defaults.
//!
//! The file's keys are the long option names (`concurrency = 64`, `listen =
//! "0.0.0.0:50051"`, `demo = true`, `region = ["us-east-1"]` for an option
//! that may be repeated). Nothing here lists the options: the command is
//! parsed once, and every key of the file whose option clap found neither on
//! the command line nor in the environment is appended to the command line
//! as `--key=value` before a second parse. So an option added to
//! `cli/serve.rs` is settable from the file with no code here, and every value
//! from the file is checked by the option's own parser.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::cli::Cli;

/// The subcommand whose options the file sets.
const SERVE: &str = "serve";

/// Keys refused in the file because they would hold a secret, with where the
/// secret goes instead. A config file is easily copied, checked in and
/// shown; passwords and tokens stay in files of their own or in the
/// environment. Any key ending in one of [`SECRET_SUFFIXES`] is refused too.
const SECRET_KEYS: &[(&str, &str)] = &[
    (
        "auth-basic-password",
        "--auth-basic-password-file or SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD",
    ),
    (
        "auth-tokens",
        "--auth-token-file or SAGEMAKER_FLIGHT_AUTH_TOKENS",
    ),
];

/// Option names that would carry a secret in the file itself.
const SECRET_SUFFIXES: &[&str] = &["-password", "-secret", "-token", "-tokens"];

/// Why the options could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The command line or the environment is wrong (or asks for help):
    /// clap prints it and exits.
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The config file is unreadable, not TOML, or holds a bad key or value.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

impl SettingsError {
    fn file(path: &Path, message: impl Into<String>) -> SettingsError {
        SettingsError::File {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// The options of this process: its command line, the environment and the
/// config file, if any.
pub fn parse_cli() -> Result<Cli, SettingsError> {
    parse_cli_from(std::env::args_os())
}

/// The options of command line `args` (program name first), with the
/// environment and the config file it names. See the module doc.
pub fn parse_cli_from<I, T>(args: I) -> Result<Cli, SettingsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let given: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = Cli::command();
    // The first parse only finds the file and where each value came from:
    // it tolerates what the file may complete (an option that `requires`
    // another the file sets). The second, with the file, checks it all.
    let lenient = command
        .clone()
        .ignore_errors(true)
        .mut_subcommand(SERVE, |serve| serve.ignore_errors(true))
        .try_get_matches_from(&given)?;
    let Some((SERVE, serve_matches)) = lenient.subcommand() else {
        return Ok(Cli::try_parse_from(&given)?);
    };
    let Some(path) = serve_matches.get_one::<PathBuf>("config").cloned() else {
        return Ok(Cli::try_parse_from(&given)?);
    };
    let serve = command
        .find_subcommand(SERVE)
        .ok_or_else(|| SettingsError::file(&path, "the command has no `serve`"))?;
    let table = read_table(&path)?;
    let mut args = given.clone();
    let mut from_file = Vec::new();
    for (key, value) in &table {
        let arg =
            option_of_key(serve, key).map_err(|message| SettingsError::file(&path, message))?;
        if set_outside_the_file(serve_matches, arg) {
            continue;
        }
        let values = arguments_of(arg, key, value).map_err(|m| SettingsError::file(&path, m))?;
        if !values.is_empty() {
            from_file.push(key.clone());
        }
        args.extend(values);
    }
    match command.clone().try_get_matches_from(&args) {
        Ok(matches) => Ok(Cli::from_arg_matches(&matches)?),
        // The same error without the file: the command line's own fault.
        Err(error) if same_error(&command.try_get_matches_from(&given).err(), &error) => {
            Err(error.into())
        }
        Err(error) => Err(file_error(&path, &from_file, &error)),
    }
}

/// Whether `without_file` is the same error as `with_file` (the usage
/// lines after the message differ with the arguments).
fn same_error(without_file: &Option<clap::Error>, with_file: &clap::Error) -> bool {
    without_file.as_ref().is_some_and(|error| {
        error.kind() == with_file.kind()
            && first_line(&error.to_string()) == first_line(&with_file.to_string())
    })
}

fn first_line(rendered: &str) -> &str {
    rendered.lines().next().unwrap_or_default()
}

/// The file as a TOML table.
fn read_table(path: &Path) -> Result<toml::Table, SettingsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| SettingsError::file(path, format!("cannot read it: {error}")))?;
    text.parse::<toml::Table>()
        .map_err(|error| SettingsError::file(path, format!("not valid TOML: {error}")))
}

/// The option of `serve` that `key` names, or why there is none.
fn option_of_key<'a>(serve: &'a clap::Command, key: &str) -> Result<&'a Arg, String> {
    if let Some((_, instead)) = SECRET_KEYS.iter().find(|(secret, _)| *secret == key) {
        return Err(format!(
            "key `{key}` would put a secret in the file; use {instead}"
        ));
    }
    if SECRET_SUFFIXES.iter().any(|suffix| key.ends_with(suffix)) {
        return Err(format!(
            "key `{key}` would put a secret in the file; secrets come from files or the environment"
        ));
    }
    if key == "config" {
        return Err("key `config`: a config file cannot name another".into());
    }
    serve
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .find(|arg| arg.get_long() == Some(key))
        .ok_or_else(|| {
            format!("unknown key `{key}`: keys are the long options of `sagemaker-flight serve --help`, without the dashes")
        })
}

/// Whether `arg` is set on the command line or in the environment. The
/// variable itself is looked at too: the lenient parse drops a value it
/// cannot parse, and a bad value in the environment must be an error, not
/// silently replaced by the file's.
fn set_outside_the_file(matches: &ArgMatches, arg: &Arg) -> bool {
    let in_environment = arg
        .get_env()
        .and_then(std::env::var_os)
        .is_some_and(|value| !value.is_empty());
    in_environment
        || matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
}

/// The command-line arguments that give `arg` the file's `value`.
fn arguments_of(arg: &Arg, key: &str, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let action = arg.get_action();
    if matches!(action, ArgAction::SetTrue) {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![format!("--{key}").into()]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            other => Err(format!(
                "key `{key}` is a switch: expected true or false, found {}",
                other.type_str()
            )),
        };
    }
    if !action.takes_values() {
        return Err(format!("key `{key}` cannot be set from a file"));
    }
    let scalars: Vec<&toml::Value> = match value {
        toml::Value::Array(items) if matches!(action, ArgAction::Append) => items.iter().collect(),
        toml::Value::Array(_) => {
            return Err(format!("key `{key}` takes one value, not a list"));
        }
        scalar => vec![scalar],
    };
    scalars
        .into_iter()
        .map(|scalar| {
            let text = match scalar {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Float(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                other => {
                    return Err(format!(
                        "key `{key}`: expected a string or a number, found {}",
                        other.type_str()
                    ));
                }
            };
            // `--key=value`: a value starting with `-` stays a value.
            Ok(format!("--{key}={text}").into())
        })
        .collect()
}

/// The second parse's error, in terms of the file: it failed because of a
/// value from the file (the first parse, without them, succeeded).
fn file_error(path: &Path, from_file: &[String], error: &clap::Error) -> SettingsError {
    let message = first_line(&error.to_string())
        .trim_start_matches("error: ")
        .to_owned();
    let invalid = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.clone()),
        _ => None,
    };
    let key = invalid.as_deref().and_then(|invalid| {
        from_file.iter().find(|key| {
            let flag = format!("--{key}");
            invalid == flag || invalid.starts_with(&format!("{flag} "))
        })
    });
    match (key, error.kind()) {
        (Some(key), ErrorKind::InvalidValue | ErrorKind::ValueValidation) => {
            SettingsError::file(path, format!("key `{key}`: {message}"))
        }
        _ => SettingsError::file(path, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use sagemaker_flight::obs::logging::LogFormat;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A config file with `text`, removed on drop.
    struct TempConfig(PathBuf);

    impl TempConfig {
        /// A file of its own, whatever `name`: tests run in parallel, and
        /// two may pick the same name.
        fn new(name: &str, text: &str) -> TempConfig {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "sagemaker-flight-settings-{}-{}-{name}.toml",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).expect("write the config file");
            TempConfig(path)
        }

        fn arg(&self) -> String {
            self.0.to_str().expect("a UTF-8 path").to_owned()
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn serve(args: &[&str]) -> Result<crate::cli::serve::ServeArgs, SettingsError> {
        let mut argv = vec!["sagemaker-flight", "serve"];
        argv.extend_from_slice(args);
        match parse_cli_from(argv)?.command {
            Command::Serve(serve) => Ok(*serve),
            _ => panic!("not parsed as `serve`"),
        }
    }

    fn file_message(result: Result<crate::cli::serve::ServeArgs, SettingsError>) -> String {
        match result {
            Err(error @ SettingsError::File { .. }) => error.to_string(),
            Err(other) => panic!("expected a config file error, got {other}"),
            Ok(args) => panic!("expected a config file error, got {args:?}"),
        }
    }

    #[test]
    fn every_serve_option_has_an_environment_variable_and_help() {
        let command = Cli::command();
        let serve = command.find_subcommand(SERVE).expect("serve");
        let mut checked = 0;
        for arg in serve.get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            let name = arg.get_long().unwrap_or(arg.get_id().as_str());
            let env = arg.get_env().and_then(|env| env.to_str()).unwrap_or("");
            assert!(!env.is_empty(), "--{name} has no environment variable");
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(!help.trim().is_empty(), "--{name} has no help");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} options found");
    }

    #[test]
    fn the_file_overrides_defaults_and_flags_override_the_file() {
        let file = TempConfig::new(
            "precedence",
            "concurrency = 64\nlisten = \"127.0.0.1:7000\"\ndemo = true\ndemo-jobs = 12\n\
             no-filter-pushdown = false\nlog-format = \"json\"\n",
        );
        let args = serve(&["--config", &file.arg()]).expect("parses");
        assert_eq!(args.calls.concurrency, 64);
        assert_eq!(args.listen, "127.0.0.1:7000".parse().expect("address"));
        assert!(args.demo);
        assert_eq!(args.demo_jobs, 12);
        assert!(!args.no_filter_pushdown);
        assert_eq!(args.operations.log_format, LogFormat::Json);
        assert_eq!(args.calls.max_attempts, 10, "not in the file: the default");
        let args = serve(&["--config", &file.arg(), "--concurrency", "3"]).expect("parses");
        assert_eq!(args.calls.concurrency, 3, "the flag wins");
        assert_eq!(args.demo_jobs, 12, "the rest still comes from the file");
    }

    #[test]
    fn a_value_a_flag_could_mistake_for_an_option_stays_a_value() {
        // Passed as `--listen=-1`: clap checks "-1" as an address, and the
        // error names the key, rather than taking "-1" for an option.
        let file = TempConfig::new("dash", "listen = \"-1\"\n");
        let message = file_message(serve(&["--config", &file.arg()]));
        assert!(message.contains("key `listen`"), "{message}");
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_key_and_the_file() {
        let file = TempConfig::new("unknown", "concurency = 4\n");
        let message = file_message(serve(&["--config", &file.arg()]));
        assert!(message.contains("unknown key `concurency`"), "{message}");
        assert!(message.contains(&file.arg()), "{message}");
    }

    #[test]
    fn wrongly_typed_values_are_refused_naming_the_key() {
        for (name, text, expected) in [
            ("string", "concurrency = \"many\"\n", "key `concurrency`"),
            ("range", "concurrency = 100000\n", "key `concurrency`"),
            ("switch", "demo = \"yes\"\n", "key `demo` is a switch"),
            (
                "list",
                "concurrency = [1, 2]\n",
                "key `concurrency` takes one value",
            ),
            (
                "table",
                "[listen]\nport = 1\n",
                "key `listen`: expected a string",
            ),
            ("enum", "log-format = \"xml\"\n", "key `log-format`"),
        ] {
            let file = TempConfig::new(name, text);
            let message = file_message(serve(&["--config", &file.arg()]));
            assert!(message.contains(expected), "{name}: {message}");
            assert!(message.contains(&file.arg()), "{name}: {message}");
        }
    }

    #[test]
    fn secrets_and_nested_configs_are_refused() {
        for (name, text, expected) in [
            (
                "password",
                "auth-basic-password = \"p\"\n",
                "SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD",
            ),
            (
                "tokens",
                "auth-tokens = \"t\"\n",
                "SAGEMAKER_FLIGHT_AUTH_TOKENS",
            ),
            ("suffix", "some-api-token = \"t\"\n", "would put a secret"),
            ("nested", "config = \"other.toml\"\n", "cannot name another"),
        ] {
            let file = TempConfig::new(name, text);
            let message = file_message(serve(&["--config", &file.arg()]));
            assert!(message.contains(expected), "{name}: {message}");
            assert!(!message.contains("\"p\""), "the value is not echoed");
        }
    }

    #[test]
    fn a_list_gives_a_repeatable_option_each_value() {
        let repeatable = Arg::new("item").long("item").action(ArgAction::Append);
        let list = toml::Value::Array(vec!["a".into(), "-b".into()]);
        let args = arguments_of(&repeatable, "item", &list).expect("a list");
        assert_eq!(args, vec![OsString::from("--item=a"), "--item=-b".into()]);
        // Through the real command: `region` may be repeated.
        let file = TempConfig::new("list", "region = [\"us-east-1\", \"eu-west-1\"]\n");
        let args = serve(&["--config", &file.arg()]).expect("parses");
        assert_eq!(args.aws.regions, ["us-east-1", "eu-west-1"]);
    }

    #[test]
    fn the_file_may_satisfy_what_a_flag_requires() {
        // --demo-jobs requires --demo, which only the file gives.
        let file = TempConfig::new("requires", "demo = true\n");
        let args = serve(&["--config", &file.arg(), "--demo-jobs", "4"]).expect("parses");
        assert!(args.demo);
        assert_eq!(args.demo_jobs, 4);
    }

    #[test]
    fn errors_of_the_command_line_stay_errors_of_the_command_line() {
        let file = TempConfig::new("cli-error", "demo = true\n");
        match serve(&["--config", &file.arg(), "--concurrency", "lots"]) {
            Err(SettingsError::Cli(error)) => {
                assert_eq!(error.kind(), ErrorKind::ValueValidation, "{error}")
            }
            other => panic!("expected clap's error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_malformed_file_is_an_error_not_a_panic() {
        let message = file_message(serve(&["--config", "/nonexistent/sagemaker-flight.toml"]));
        assert!(message.contains("cannot read it"), "{message}");
        let file = TempConfig::new("malformed", "concurrency = \n");
        let message = file_message(serve(&["--config", &file.arg()]));
        assert!(message.contains("not valid TOML"), "{message}");
    }

    #[test]
    fn conflicts_between_file_values_are_reported_against_the_file() {
        let file = TempConfig::new(
            "conflict",
            "demo = true\nendpoint-url = \"http://127.0.0.1:1\"\n",
        );
        let message = file_message(serve(&["--config", &file.arg()]));
        assert!(message.contains("--endpoint-url"), "{message}");
    }
}
