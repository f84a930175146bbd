//! `sagemaker-flight`: the command line. Parsing and start-up only; the work
//! is in the library.

use clap::Parser;
use sagemaker_flight::config::{Cli, Command};
use sagemaker_flight::{emulator, server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => server::run(args, shutdown_signal()).await,
        Command::Emulator(args) => run_emulator(args).await,
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
