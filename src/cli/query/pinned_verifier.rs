//! The server certificate check of `query --tls-ca`: the standard WebPKI
//! verification (rustls) against the `--tls-ca` certificates, which also
//! accepts a server certificate that *is* one of those certificates.
//!
//! Why: the usual quick self-signed certificate (`openssl req -x509 ...`)
//! carries `basicConstraints CA:TRUE`, and WebPKI refuses a CA certificate
//! as a server's own (`CaUsedAsEndEntity`), while pyarrow and ADBC (gRPC
//! core, Go's crypto/x509) accept it when it is the trusted root. Here it
//! is accepted only when the server presents a certificate byte for byte
//! equal to one given with `--tls-ca`.
//!
//! Why that is safe:
//! - Trust: the user named exactly this certificate as trusted. A trust
//!   anchor is trusted by being given, not by its signature (WebPKI does
//!   not check an anchor's self-signature either), so the certificate's
//!   own signature adds nothing; anyone else's certificate, CA:TRUE or
//!   not, still needs a chain to a `--tls-ca` certificate.
//! - Possession: the TLS handshake's signature (CertificateVerify, TLS 1.3;
//!   ServerKeyExchange, TLS 1.2) is still checked against the certificate's
//!   key by the standard verifier, so only the holder of the private key
//!   can present it.
//! - Name: the certificate must still name the host the client connects to
//!   (subjectAltName DNS or IP), checked here as WebPKI checks it.
//! - Validity period: WebPKI checks an end entity's validity period before
//!   its basic constraints, so `CaUsedAsEndEntity` is only ever reported
//!   for a certificate that is within its period; an expired or not yet
//!   valid one is refused as such (`tests/query_tls.rs` holds that).
//! - Not checked for the pinned certificate: its extended key usage (which
//!   WebPKI checks after basic constraints); the user trusted it as it is.
//!
//! Every other failure (unknown issuer, wrong name, expired, bad signature)
//! is the standard verifier's, unchanged.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// WebPKI verification against pinned CA certificates, which also accepts
/// a server certificate identical to one of them (see the module's
/// documentation for why that is safe).
#[derive(Debug)]
pub struct PinnedCaVerifier {
    /// The standard verifier, with the pinned certificates as its roots.
    webpki: Arc<WebPkiServerVerifier>,
    /// The `--tls-ca` certificates, DER, to compare a server's with.
    pinned: Vec<CertificateDer<'static>>,
}

impl PinnedCaVerifier {
    /// A verifier trusting `pinned` (each a CA, or the server's own
    /// certificate). Fails when none of them can be a trust anchor.
    pub fn new(pinned: Vec<CertificateDer<'static>>) -> Result<PinnedCaVerifier, String> {
        let mut roots = RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(pinned.iter().cloned());
        if roots.is_empty() {
            return Err(format!(
                "none of its {} certificate(s) can be a trust anchor",
                unusable
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PinnedCaVerifier { webpki, pinned })
    }

    /// Whether `certificate` is one of the pinned certificates.
    fn is_pinned(&self, certificate: &CertificateDer<'_>) -> bool {
        self.pinned
            .iter()
            .any(|pinned| pinned.as_ref() == certificate.as_ref())
    }
}

/// Whether WebPKI refused the certificate only for being a CA certificate
/// used as a server's own.
fn is_ca_used_as_end_entity(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(error) if is_ca_used_as_end_entity(&error) && self.is_pinned(end_entity) => {
                let parsed = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
