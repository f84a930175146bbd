//! TLS of the listener: its certificate and key, and the CA client
//! certificates must be signed by (mutual TLS).

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::auth::error::AccessError;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's certificate and key, and the CA that client certificates
/// must be signed by (mTLS), all PEM.
#[derive(Clone)]
pub struct TlsConfig {
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// The CA of client certificates (PEM); `None`: no client certificate.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .field(
                "requires_client_certificates",
                &self.client_ca_pem.is_some(),
            )
            .finish()
    }
}

impl TlsConfig {
    /// TLS with `cert_pem` and `key_pem`, and client certificates signed by
    /// `client_ca_pem` if given. [`TlsConfig::validate`] checks them.
    pub fn new(cert_pem: Vec<u8>, key_pem: Vec<u8>, client_ca_pem: Option<Vec<u8>>) -> TlsConfig {
        TlsConfig {
            cert_pem,
            key_pem,
            client_ca_pem,
        }
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// tonic's TLS configuration for the listener.
    pub fn server_tls_config(&self) -> ServerTlsConfig {
        install_crypto_provider();
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        if let Some(ca) = &self.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        config
    }

    /// tonic's TLS configuration for calling the other instances of a
    /// fleet (their health): their certificates signed by `peer_ca_pem`
    /// (else by a root the system trusts) and, where instances require
    /// client certificates, this instance's own certificate presented.
    pub fn peer_tls_config(&self, peer_ca_pem: Option<&[u8]>) -> ClientTlsConfig {
        install_crypto_provider();
        let mut config = ClientTlsConfig::new().timeout(TLS_HANDSHAKE_TIMEOUT);
        config = match peer_ca_pem {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        if self.requires_client_certificates() {
            config = config.identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        }
        config
    }

    /// Checks that the certificate, key and CA parse and fit together, so
    /// a bad file stops the server before it listens.
    pub fn validate(&self) -> Result<(), AccessError> {
        tonic::transport::Server::builder()
            .tls_config(self.server_tls_config())
            .map(|_| ())
            .map_err(|e| AccessError::Tls(crate::source::describe_chain(&e)))
    }
}

/// Makes aws-lc-rs the process's rustls crypto provider, once. tonic's
/// listener takes the process's provider, and rustls picks none by itself
/// when both of its providers are built in (the AWS SDK brings aws-lc-rs,
/// the Delta store's HTTP client ring).
pub fn install_crypto_provider() {
    // Already installed (by an earlier call, or by the binary): fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
