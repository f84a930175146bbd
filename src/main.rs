//! `sagemaker-flight`: the command line. Parsing and start-up only; the work
//! is in the library.

use sagemaker_flight::config::Command;
use sagemaker_flight::settings::{self, SettingsError};
use sagemaker_flight::telemetry::{self, LogFormat};
use sagemaker_flight::{emulator, server};

/// Exit status of a bad command line or config file, as clap's.
const USAGE_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Flags > environment > config file > defaults (`settings.rs`).
    let cli = match settings::parse_cli() {
        Ok(cli) => cli,
        Err(SettingsError::Cli(error)) => error.exit(),
        Err(error) => {
            eprintln!("sagemaker-flight: {error}");
            return std::process::ExitCode::from(USAGE_ERROR);
        }
    };
    let (log_format, log_filter) = match &cli.command {
        Command::Serve(args) => (
            args.operations.log_format,
            args.operations.log_level.as_deref(),
        ),
        _ => (LogFormat::Text, None),
    };
    if let Err(error) = telemetry::init_logging(log_format, log_filter) {
        eprintln!("sagemaker-flight: {error}");
        return std::process::ExitCode::from(USAGE_ERROR);
    }
    let result = match cli.command {
        Command::Serve(args) => server::run(*args, shutdown_signal()).await,
        Command::Emulator(args) => run_emulator(args).await,
        Command::Query(args) => sagemaker_flight::query_cli::run(args)
            .await
            .map_err(Into::into),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sagemaker-flight: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run_emulator(
    args: sagemaker_flight::config::EmulatorArgs,
) -> Result<(), server::ServeError> {
    let emulator = emulator::Emulator::start(args.emulator_config(), args.listen).await?;
    println!("emulator listening on {}", emulator.endpoint_url());
    shutdown_signal().await;
    emulator.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
