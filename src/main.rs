//! `sagemaker-flight`: the command line. Parsing, start-up and dispatch to
//! a subcommand; the server's work is in the library, the options and the
//! `query` client in [`cli`].

mod cli;

use cli::Command;
use cli::config_file::{self, SettingsError};
use sagemaker_flight::obs::logging::{self, LogFormat};
use sagemaker_flight::server;

/// Every AWS call allocates and frees its request, signature, response and
/// parse many times over, on every worker: glibc's malloc and free were a
/// fifth of a cold scan's CPU (perf on `target/profiling`). Under mimalloc
/// the server's CPU per job of a cold 10,000-job scan fell from 258 to
/// 200 µs (medians of three alternated runs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a bad command line or config file, as clap's.
const USAGE_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sagemaker_flight::auth::tls::install_crypto_provider();
    // Flags > environment > config file > defaults (`cli/config_file.rs`).
    let cli = match config_file::parse_cli() {
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
    if let Err(error) = logging::init_logging(log_format, log_filter) {
        eprintln!("sagemaker-flight: {error}");
        return std::process::ExitCode::from(USAGE_ERROR);
    }
    let result = match cli.command {
        Command::Serve(args) => match args.config(|name| std::env::var(name).ok()) {
            Ok(config) => server::run(config, shutdown_signal()).await,
            Err(error) => Err(error),
        },
        #[cfg(feature = "demo")]
        Command::Emulator(args) => cli::emulator::run(args, shutdown_signal()).await,
        Command::Query(args) => cli::query::run(args).await.map_err(Into::into),
        Command::Collect(args) => match args.config() {
            Ok(config) => server::collect::collect(config, shutdown_signal()).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sagemaker-flight: {error}");
            std::process::ExitCode::FAILURE
        }
    }
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
