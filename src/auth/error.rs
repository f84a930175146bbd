//! Why access control cannot be set up, or why the server refuses to start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why access control cannot be set up, or why the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A file named by a flag cannot be read.
    #[error("cannot read {flag} {path}: {error}")]
    File {
        /// The flag naming the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The credentials given are incomplete or empty.
    #[error("{0}")]
    Credentials(String),
    /// The certificate, key or CA is unusable.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A non-loopback listener without authentication.
    #[error(
        "refusing to listen on {0} without authentication: anyone who can reach it could read \
         the SageMaker data. Configure --auth-basic-user / --auth-token-file (or \
         SAGEMAKER_FLIGHT_AUTH_TOKENS) or --tls-client-ca, listen on 127.0.0.1, or pass \
         --allow-unauthenticated"
    )]
    Unauthenticated(SocketAddr),
}
