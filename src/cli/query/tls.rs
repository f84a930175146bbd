//! TLS of `sagemaker-flight query`: whom it trusts (`--tls-ca`, else the
//! system's roots) and the certificate it presents (`--tls-cert` and
//! `--tls-key`, for a server started with `serve --tls-client-ca`).
//!
//! Every file is read and checked when the options are, so a missing,
//! unreadable or wrong file is a usage error naming it, before any
//! connection.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{ClientTlsConfig, Endpoint, Identity};

use super::error::QueryCliError;
use super::pinned_verifier::PinnedCaVerifier;
use super::server_url::ServerUrl;

/// The TLS settings every connection of one `query` run shares.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// `--tls-ca`: the pinned certificates' verifier; `None`: the
    /// system's roots.
    verifier: Option<Arc<PinnedCaVerifier>>,
    /// `--tls-cert` and `--tls-key`, PEM, checked to fit together.
    identity: Option<Identity>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("pinned_ca", &self.verifier.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl ClientTls {
    /// The settings of `--tls-ca` (PEM, one or more certificates) and of
    /// `--tls-cert` / `--tls-key` (PEM; both or neither).
    pub fn from_files(
        ca: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<ClientTls, QueryCliError> {
        let verifier = ca
            .map(|path| {
                let pinned = certificates(path, "--tls-ca")?;
                PinnedCaVerifier::new(pinned)
                    .map(Arc::new)
                    .map_err(|e| usage(format!("--tls-ca {}: {e}", path.display())))
            })
            .transpose()?;
        let identity = match (client_cert, client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(identity(cert, key)?),
            (Some(_), None) => return Err(usage("--tls-cert needs --tls-key".to_owned())),
            (None, Some(_)) => return Err(usage("--tls-key needs --tls-cert".to_owned())),
        };
        Ok(ClientTls { verifier, identity })
    }

    /// Whether any TLS option was given (they need a `grpc+tls://` URL).
    pub fn is_configured(&self) -> bool {
        self.verifier.is_some() || self.identity.is_some()
    }

    /// `endpoint` speaking TLS with these settings; `handshake_timeout`
    /// bounds the TLS handshake (tonic's connect timeout covers only TCP).
    pub fn apply(
        &self,
        endpoint: Endpoint,
        handshake_timeout: std::time::Duration,
    ) -> Result<Endpoint, tonic::transport::Error> {
        let mut config = ClientTlsConfig::new().timeout(handshake_timeout);
        if let Some(identity) = &self.identity {
            config = config.identity(identity.clone());
        }
        match &self.verifier {
            Some(verifier) => endpoint.tls_config_with_verifier(config, verifier.clone()),
            None => endpoint.tls_config(config.with_native_roots()),
        }
    }

    /// `chain`, the text of a failed connection, with a hint at the option
    /// that fixes it, in rustls' words: the server's certificate not trusted
    /// for want of its issuer (`UnknownIssuer`, or `CaUsedAsEndEntity` for a
    /// self-signed CA:TRUE certificate checked against the system's roots),
    /// or the server's alert asking for a client certificate, or refusing it;
    /// without a client certificate, a TLS connection the server closed.
    pub fn with_hint(&self, url: &ServerUrl, chain: String) -> String {
        const HINTS: &[(&str, &str)] = &[
            (
                "UnknownIssuer",
                "the server's certificate is not trusted: give --tls-ca with the CA certificate \
                 that signed it",
            ),
            (
                "CaUsedAsEndEntity",
                "the server's certificate is not trusted: give --tls-ca with the CA certificate \
                 that signed it, or with the server's own self-signed certificate",
            ),
            (
                "CertificateRequired",
                "the server asks for a client certificate: give --tls-cert and --tls-key",
            ),
            (
                "UnknownCA",
                "the server does not trust the client certificate (--tls-cert)",
            ),
            (
                "CertificateUnknown",
                "the server refused the client certificate (--tls-cert)",
            ),
            (
                "BadCertificate",
                "the server refused the client certificate (--tls-cert)",
            ),
        ];
        /// How a connection ends when the server wants a client
        /// certificate and none was sent: its alert, or, when the server
        /// closes first, no alert at all (hyper then says the connection
        /// was reset or closed, or, when it closes before the first request
        /// is sent, that the connection was not ready).
        const CLOSED: &[&str] = &[
            "broken pipe",
            "connection reset",
            "Connection reset",
            "connection closed",
            "connection was not ready",
        ];
        if let Some((_, hint)) = HINTS.iter().find(|(mark, _)| chain.contains(mark)) {
            return format!("{chain} ({hint})");
        }
        if !url.is_tls() || !CLOSED.iter().any(|mark| chain.contains(mark)) {
            return chain;
        }
        match self.identity {
            None => format!(
                "{chain} (if the server asks for a client certificate: give --tls-cert and --tls-key)"
            ),
            Some(_) => {
                format!("{chain} (the server may refuse the client certificate, --tls-cert)")
            }
        }
    }
}

fn usage(message: String) -> QueryCliError {
    QueryCliError::Usage(message)
}

fn read(path: &Path, option: &str) -> Result<Vec<u8>, QueryCliError> {
    std::fs::read(path).map_err(|e| usage(format!("cannot read {option} {}: {e}", path.display())))
}

/// Every PEM certificate of the file `option` names; at least one.
fn certificates(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>, QueryCliError> {
    let pem = read(path, option)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| usage(format!("{option} {}: not PEM: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(usage(format!(
            "{option} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The client certificate chain and its key, checked to parse and to be a
/// pair (the key's public half is the certificate's).
fn identity(cert: &Path, key: &Path) -> Result<Identity, QueryCliError> {
    let chain = certificates(cert, "--tls-cert")?;
    let key_pem = read(key, "--tls-key")?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        usage(format!(
            "--tls-key {} holds no PEM private key: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| usage(format!("TLS: {e}")))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain, private_key)
        .map_err(|e| {
            usage(format!(
                "--tls-cert {} and --tls-key {} do not fit together: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    let cert_pem = read(cert, "--tls-cert")?;
    Ok(Identity::from_pem(cert_pem, key_pem))
}
