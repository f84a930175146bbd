//! Who may call the server: bearer tokens, Basic credentials exchanged for
//! tokens through Flight SQL's Handshake, TLS (optionally with client
//! certificates), and the rule that refuses to serve a network without
//! authentication.
//!
//! - **Static tokens** (`--auth-token-file`, `SAGEMAKER_FLIGHT_AUTH_TOKENS`)
//!   are accepted as `authorization: Bearer <token>` on every RPC.
//! - **Basic credentials** (`--auth-basic-user` with a password): a Handshake
//!   carrying `authorization: Basic base64(user:password)` answers with a
//!   random token of 256 bits, in the `authorization: Bearer <token>`
//!   response header (as Flight SQL clients expect) and in the
//!   HandshakeResponse payload. Issued tokens live in memory, at most
//!   [`MAX_ISSUED_TOKENS`] of them, each for the configured time to live.
//! - With either configured, every RPC but Handshake needs a valid bearer
//!   token, or is refused with `UNAUTHENTICATED` ([`RequireAuth`], a tower
//!   service around the Flight service, so no RPC can forget the check).
//!
//! Secrets are never logged, never echoed in an error, and their `Debug`
//! output is redacted. Tokens are compared by SHA-256 digest: the digest of
//! the presented token is compared in constant time with each static
//! token's, and looked up among issued tokens' digests (a lookup's timing
//! depends on the digest, which tells nothing about the token's bytes).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::future::{Either, Ready, ready};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::AccessArgs;

/// Environment variable holding the Basic password (there is no flag: a
/// password on a command line is visible to every local user).
pub const PASSWORD_ENV: &str = "SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD";

/// Environment variable holding static bearer tokens, comma-separated.
pub const TOKENS_ENV: &str = "SAGEMAKER_FLIGHT_AUTH_TOKENS";

/// How long a token issued by Handshake is valid, unless configured.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Most issued tokens kept; beyond it the oldest is forgotten.
pub const MAX_ISSUED_TOKENS: usize = 10_000;

/// Random bytes in an issued token.
const TOKEN_BYTES: usize = 32;

/// The gRPC path of Flight's Handshake, the one RPC open to anyone.
pub const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A secret whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A user and password for Basic authentication.
#[derive(Clone, Debug)]
pub struct BasicCredentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: Secret,
}

/// The credentials the server accepts.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Basic credentials that Handshake exchanges for a token.
    pub basic: Option<BasicCredentials>,
    /// Bearer tokens valid on every RPC.
    pub tokens: Vec<Secret>,
    /// How long a token issued by Handshake is valid.
    pub token_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            basic: None,
            tokens: Vec::new(),
            token_ttl: DEFAULT_TOKEN_TTL,
        }
    }
}

impl AuthConfig {
    /// Whether any credential is configured (otherwise anyone may call).
    pub fn is_enabled(&self) -> bool {
        self.basic.is_some() || !self.tokens.is_empty()
    }

    /// The authenticator for these credentials, `None` when none is
    /// configured.
    pub fn authenticator(&self) -> Option<Authenticator> {
        self.is_enabled().then(|| Authenticator::new(self.clone()))
    }
}

type Digest = [u8; 32];

fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// Tokens issued by Handshake: digest -> expiry, oldest first.
#[derive(Default)]
struct Issued {
    expiry: HashMap<Digest, Instant>,
    order: VecDeque<Digest>,
}

impl Issued {
    fn insert(&mut self, token: Digest, expires: Instant, now: Instant) {
        // Expired tokens go first; then, if still full, the oldest ones.
        while let Some(oldest) = self.order.front() {
            let expired = self.expiry.get(oldest).is_none_or(|&at| at <= now);
            if !expired && self.order.len() < MAX_ISSUED_TOKENS {
                break;
            }
            if let Some(oldest) = self.order.pop_front() {
                self.expiry.remove(&oldest);
            }
        }
        self.expiry.insert(token, expires);
        self.order.push_back(token);
    }

    fn is_valid(&self, token: &Digest, now: Instant) -> bool {
        self.expiry.get(token).is_some_and(|&at| at > now)
    }
}

/// Checks credentials. Cheap to clone: clones share the issued tokens.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    /// The user and the digest of the password.
    basic: Option<(String, Digest)>,
    static_tokens: Vec<Digest>,
    issued: Mutex<Issued>,
    token_ttl: Duration,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "basic_user",
                &self.inner.basic.as_ref().map(|(user, _)| user),
            )
            .field("static_tokens", &self.inner.static_tokens.len())
            .field("token_ttl", &self.inner.token_ttl)
            .finish_non_exhaustive()
    }
}

/// The refusal for a missing, malformed or unknown credential.
fn unauthenticated(message: &str) -> Status {
    Status::unauthenticated(message.to_owned())
}

/// The credential in an `authorization` value: (scheme, rest), the scheme
/// lower-cased.
fn split_authorization(value: &[u8]) -> Option<(String, &str)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    Some((scheme.to_ascii_lowercase(), rest.trim()))
}

impl Authenticator {
    /// An authenticator accepting `config`'s credentials.
    pub fn new(config: AuthConfig) -> Authenticator {
        Authenticator {
            inner: Arc::new(Inner {
                basic: config
                    .basic
                    .map(|basic| (basic.user, digest(basic.password.expose().as_bytes()))),
                static_tokens: config
                    .tokens
                    .iter()
                    .map(|token| digest(token.expose().as_bytes()))
                    .collect(),
                issued: Mutex::default(),
                token_ttl: config.token_ttl,
            }),
        }
    }

    /// Whether `token` is a static token or an unexpired issued one.
    fn is_valid_token(&self, token: &str) -> bool {
        let presented = digest(token.as_bytes());
        // Every static token is compared, in constant time.
        let is_static = self
            .inner
            .static_tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, known| {
                found | known.ct_eq(&presented)
            });
        if bool::from(is_static) {
            return true;
        }
        self.inner
            .issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_valid(&presented, Instant::now())
    }

    /// Checks the `authorization` value of an RPC other than Handshake:
    /// it must be a valid bearer token.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Status> {
        let Some(value) = authorization else {
            return Err(unauthenticated(
                "authentication required: send `authorization: Bearer <token>` \
                 (a configured token, or one a Handshake with Basic credentials returns)",
            ));
        };
        match split_authorization(value) {
            Some((scheme, token)) if scheme == "bearer" && !token.is_empty() => {
                if self.is_valid_token(token) {
                    Ok(())
                } else {
                    Err(unauthenticated(
                        "invalid or expired bearer token: get a new one through Handshake",
                    ))
                }
            }
            _ => Err(unauthenticated(
                "the authorization header must be `Bearer <token>`; \
                 Basic credentials are only accepted by Handshake",
            )),
        }
    }

    /// Checks a Handshake's `authorization` value and returns the bearer
    /// token the client is to use: a new one for valid Basic credentials,
    /// the same one for a valid bearer token.
    pub fn handshake(&self, authorization: Option<&[u8]>) -> Result<String, Status> {
        let Some((scheme, credential)) = authorization.and_then(split_authorization) else {
            return Err(unauthenticated(
                "Handshake needs `authorization: Basic base64(user:password)` \
                 or `authorization: Bearer <token>`",
            ));
        };
        match scheme.as_str() {
            "basic" => {
                let malformed = || unauthenticated("malformed Basic credentials");
                let decoded = STANDARD.decode(credential).map_err(|_| malformed())?;
                let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
                let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
                if !self.is_valid_basic(user, password) {
                    tracing::info!("Handshake refused: invalid user name or password");
                    return Err(unauthenticated("invalid user name or password"));
                }
                let token = self.issue()?;
                tracing::info!(user, "Handshake: issued a bearer token");
                Ok(token)
            }
            "bearer" if self.is_valid_token(credential) => Ok(credential.to_owned()),
            "bearer" => Err(unauthenticated(
                "invalid or expired bearer token: handshake with Basic credentials for a new one",
            )),
            _ => Err(unauthenticated(
                "Handshake accepts `Basic` or `Bearer` authorization only",
            )),
        }
    }

    fn is_valid_basic(&self, user: &str, password: &str) -> bool {
        let Some((known_user, known_password)) = &self.inner.basic else {
            return false;
        };
        let user_ok = digest(user.as_bytes()).ct_eq(&digest(known_user.as_bytes()));
        let password_ok = digest(password.as_bytes()).ct_eq(known_password);
        bool::from(user_ok & password_ok)
    }

    /// A new random token, remembered until it expires.
    fn issue(&self) -> Result<String, Status> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| Status::internal(format!("no randomness for a token: {e}")))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let expires = now
            .checked_add(self.inner.token_ttl)
            .unwrap_or(now + DEFAULT_TOKEN_TTL);
        self.inner
            .issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest(token.as_bytes()), expires, now);
        Ok(token)
    }
}

/// A gRPC service that answers `UNAUTHENTICATED` to any call but Handshake
/// without a valid bearer token, and passes the rest to `S`. With no
/// authenticator it passes everything.
#[derive(Clone, Debug)]
pub struct RequireAuth<S> {
    inner: S,
    auth: Option<Authenticator>,
}

impl<S> RequireAuth<S> {
    /// Guards `inner` with `auth` (`None`: no check).
    pub fn new(inner: S, auth: Option<Authenticator>) -> RequireAuth<S> {
        RequireAuth { inner, auth }
    }
}

impl<S: NamedService> NamedService for RequireAuth<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for RequireAuth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(auth) = &self.auth
            && request.uri().path() != HANDSHAKE_PATH
        {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|value| value.as_bytes());
            if let Err(status) = auth.check(authorization) {
                tracing::debug!(path = request.uri().path(), "unauthenticated call refused");
                return Either::Right(ready(Ok(status.into_http())));
            }
        }
        Either::Left(self.inner.call(request))
    }
}

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

    /// Reads the PEM files and checks them.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<TlsConfig, AccessError> {
        let config = TlsConfig::new(
            read_file(cert, "--tls-cert")?,
            read_file(key, "--tls-key")?,
            client_ca
                .map(|path| read_file(path, "--tls-client-ca"))
                .transpose()?,
        );
        config.validate()?;
        Ok(config)
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// tonic's TLS configuration for the listener.
    pub fn server_tls_config(&self) -> ServerTlsConfig {
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        if let Some(ca) = &self.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
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

fn read_file(path: &Path, flag: &'static str) -> Result<Vec<u8>, AccessError> {
    std::fs::read(path).map_err(|error| AccessError::File {
        flag,
        path: path.to_owned(),
        error,
    })
}

/// Tokens in a token file: one a line, blank lines and `#` comments ignored.
pub fn parse_token_file(text: &str) -> Vec<Secret> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(Secret::new)
        .collect()
}

/// Tokens in `SAGEMAKER_FLIGHT_AUTH_TOKENS`: comma-separated, blanks ignored.
pub fn parse_token_list(text: &str) -> Vec<Secret> {
    text.split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(Secret::new)
        .collect()
}

/// Everything `serve` needs to know about access: credentials, TLS, and
/// whether serving a network without authentication is allowed.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Accepted credentials.
    pub auth: AuthConfig,
    /// TLS for the listener, `None`: plaintext.
    pub tls: Option<TlsConfig>,
    /// Serve a non-loopback address without authentication anyway.
    pub allow_unauthenticated: bool,
}

impl Access {
    /// Access as the flags and the environment (read through `env`) ask:
    /// reads the password, token and PEM files.
    pub fn from_args(
        args: &AccessArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Access, AccessError> {
        let password = match (&args.auth_basic_password_file, env(PASSWORD_ENV)) {
            (Some(path), _) => {
                let text = read_file(path, "--auth-basic-password-file")?;
                let text = String::from_utf8(text).map_err(|_| {
                    AccessError::Credentials(format!(
                        "--auth-basic-password-file {}: not UTF-8",
                        path.display()
                    ))
                })?;
                // The first line, without its line break.
                Some(text.lines().next().unwrap_or_default().to_owned())
            }
            (None, password) => password,
        };
        let basic = match (&args.auth_basic_user, password) {
            (None, None) => None,
            (Some(user), Some(password)) => {
                if user.is_empty() || user.contains(':') {
                    return Err(AccessError::Credentials(
                        "--auth-basic-user must be non-empty and hold no ':'".into(),
                    ));
                }
                if password.is_empty() {
                    return Err(AccessError::Credentials(
                        "the Basic password is empty".into(),
                    ));
                }
                Some(BasicCredentials {
                    user: user.clone(),
                    password: Secret::new(password),
                })
            }
            (Some(_), None) => {
                return Err(AccessError::Credentials(format!(
                    "--auth-basic-user needs a password: --auth-basic-password-file or {PASSWORD_ENV}"
                )));
            }
            (None, Some(_)) => {
                return Err(AccessError::Credentials(format!(
                    "a Basic password ({PASSWORD_ENV}) needs --auth-basic-user"
                )));
            }
        };
        let mut tokens = Vec::new();
        if let Some(path) = &args.auth_token_file {
            let text = read_file(path, "--auth-token-file")?;
            let text = String::from_utf8_lossy(&text);
            let from_file = parse_token_file(&text);
            if from_file.is_empty() {
                return Err(AccessError::Credentials(format!(
                    "--auth-token-file {} holds no token",
                    path.display()
                )));
            }
            tokens.extend(from_file);
        }
        if let Some(list) = env(TOKENS_ENV) {
            tokens.extend(parse_token_list(&list));
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig::from_files(
                cert,
                key,
                args.tls_client_ca.as_deref(),
            )?),
            (None, None) if args.tls_client_ca.is_none() => None,
            _ => {
                return Err(AccessError::Tls(
                    "--tls-cert and --tls-key go together (and --tls-client-ca needs them)".into(),
                ));
            }
        };
        Ok(Access {
            auth: AuthConfig {
                basic,
                tokens,
                token_ttl: Duration::from_secs(args.auth_token_ttl),
            },
            tls,
            allow_unauthenticated: args.allow_unauthenticated,
        })
    }

    /// Whether callers must prove who they are: a credential, or a client
    /// certificate signed by the configured CA.
    pub fn authenticates(&self) -> bool {
        self.auth.is_enabled()
            || self
                .tls
                .as_ref()
                .is_some_and(TlsConfig::requires_client_certificates)
    }

    /// Refuses a listener other clients can reach (not loopback) when no one
    /// has to authenticate, unless explicitly allowed.
    pub fn check_listener(&self, listen: SocketAddr) -> Result<(), AccessError> {
        if self.authenticates() || self.allow_unauthenticated || is_loopback(listen) {
            Ok(())
        } else {
            Err(AccessError::Unauthenticated(listen))
        }
    }
}

/// Whether `address` is reachable from this host only: 127.0.0.0/8, ::1
/// (or ::ffff:127.x.y.z).
pub fn is_loopback(address: SocketAddr) -> bool {
    address.ip().to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))).into_bytes()
    }

    fn authenticator() -> Authenticator {
        Authenticator::new(AuthConfig {
            basic: Some(BasicCredentials {
                user: "alice".into(),
                password: Secret::new("s3cret"),
            }),
            tokens: vec![Secret::new("static-token")],
            token_ttl: Duration::from_secs(60),
        })
    }

    #[test]
    fn static_tokens_pass_and_others_do_not() {
        let auth = authenticator();
        assert!(auth.check(Some(b"Bearer static-token")).is_ok());
        assert!(auth.check(Some(b"bearer   static-token ")).is_ok());
        for refused in [
            None,
            Some(&b"Bearer other"[..]),
            Some(b"Bearer"),
            Some(b"Bearer "),
            Some(b"static-token"),
            Some(b"Basic c3RhdGljLXRva2Vu"),
            Some(b"\xff\xfe"),
        ] {
            let status = auth.check(refused).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert!(!status.message().contains("static-token"));
        }
    }

    #[test]
    fn basic_handshake_issues_a_token_that_then_passes() {
        let auth = authenticator();
        let token = auth.handshake(Some(&basic("alice", "s3cret"))).expect("ok");
        assert!(token.len() >= 43, "256 random bits: {token}");
        assert!(
            auth.check(Some(format!("Bearer {token}").as_bytes()))
                .is_ok()
        );
        let other = auth.handshake(Some(&basic("alice", "s3cret"))).expect("ok");
        assert_ne!(token, other);
        // A clone shares the issued tokens.
        assert!(
            auth.clone()
                .check(Some(format!("Bearer {other}").as_bytes()))
                .is_ok()
        );
        // Handshake with a valid bearer token answers with it.
        assert_eq!(
            auth.handshake(Some(format!("Bearer {token}").as_bytes()))
                .expect("ok"),
            token
        );
    }

    #[test]
    fn wrong_or_malformed_credentials_are_unauthenticated() {
        let auth = authenticator();
        for refused in [
            basic("alice", "wrong"),
            basic("bob", "s3cret"),
            basic("alice", ""),
            b"Basic !!!".to_vec(),
            format!("Basic {}", STANDARD.encode("no colon")).into_bytes(),
            b"Bearer nope".to_vec(),
            b"Digest x".to_vec(),
        ] {
            let status = auth.handshake(Some(&refused)).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert!(!status.message().contains("s3cret"));
        }
        assert!(auth.handshake(None).is_err());
        // Basic credentials are for Handshake only.
        assert!(auth.check(Some(&basic("alice", "s3cret"))).is_err());
    }

    #[test]
    fn issued_tokens_expire() {
        let auth = Authenticator::new(AuthConfig {
            basic: Some(BasicCredentials {
                user: "u".into(),
                password: Secret::new("p"),
            }),
            token_ttl: Duration::ZERO,
            ..AuthConfig::default()
        });
        let token = auth.handshake(Some(&basic("u", "p"))).expect("ok");
        assert!(
            auth.check(Some(format!("Bearer {token}").as_bytes()))
                .is_err()
        );
    }

    #[test]
    fn issued_tokens_are_bounded_and_the_oldest_goes_first() {
        let mut issued = Issued::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for i in 0..(MAX_ISSUED_TOKENS + 5) {
            issued.insert(digest(&i.to_le_bytes()), later, now);
        }
        assert_eq!(issued.expiry.len(), MAX_ISSUED_TOKENS);
        assert_eq!(issued.order.len(), MAX_ISSUED_TOKENS);
        assert!(!issued.is_valid(&digest(&0usize.to_le_bytes()), now));
        assert!(issued.is_valid(&digest(&(MAX_ISSUED_TOKENS + 4).to_le_bytes()), now));
        // Expired ones are dropped on the next insert.
        let much_later = later + Duration::from_secs(1);
        issued.insert(
            digest(b"new"),
            much_later + Duration::from_secs(60),
            much_later,
        );
        assert_eq!(issued.expiry.len(), 1);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let config = AuthConfig {
            basic: Some(BasicCredentials {
                user: "alice".into(),
                password: Secret::new("s3cret"),
            }),
            tokens: vec![Secret::new("static-token")],
            ..AuthConfig::default()
        };
        let tls = TlsConfig::new(b"CERT".to_vec(), b"PRIVATE KEY".to_vec(), None);
        let access = Access {
            auth: config.clone(),
            tls: Some(tls),
            allow_unauthenticated: false,
        };
        for text in [
            format!("{config:?}"),
            format!("{:?}", Authenticator::new(config)),
            format!("{access:?}"),
            format!("{access:#?}"),
        ] {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(!text.contains("static-token"), "{text}");
            assert!(!text.contains("PRIVATE KEY"), "{text}");
        }
    }

    #[test]
    fn token_files_and_lists() {
        let tokens = parse_token_file("# comment\n\n  one  \ntwo\n   # indented comment\n");
        assert_eq!(tokens, vec![Secret::new("one"), Secret::new("two")]);
        assert_eq!(
            parse_token_list(" a, ,b,"),
            vec![Secret::new("a"), Secret::new("b")]
        );
    }

    #[test]
    fn only_loopback_may_go_without_authentication() {
        let open = Access::default();
        for loopback in [
            "127.0.0.1:0",
            "127.1.2.3:50051",
            "[::1]:0",
            "[::ffff:127.0.0.1]:0",
        ] {
            assert!(
                open.check_listener(loopback.parse().unwrap()).is_ok(),
                "{loopback}"
            );
        }
        for exposed in [
            "0.0.0.0:0",
            "[::]:0",
            "10.0.0.1:50051",
            "[::ffff:10.0.0.1]:1",
        ] {
            let error = open
                .check_listener(exposed.parse().unwrap())
                .expect_err(exposed);
            assert!(error.to_string().contains("--allow-unauthenticated"));
        }
        let anywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let allowed = Access {
            allow_unauthenticated: true,
            ..Access::default()
        };
        assert!(allowed.check_listener(anywhere).is_ok());
        let with_tokens = Access {
            auth: AuthConfig {
                tokens: vec![Secret::new("t")],
                ..AuthConfig::default()
            },
            ..Access::default()
        };
        assert!(with_tokens.check_listener(anywhere).is_ok());
        // TLS alone encrypts but lets anyone in.
        let tls_only = Access {
            tls: Some(TlsConfig::new(vec![], vec![], None)),
            ..Access::default()
        };
        assert!(tls_only.check_listener(anywhere).is_err());
        let mtls = Access {
            tls: Some(TlsConfig::new(vec![], vec![], Some(vec![]))),
            ..Access::default()
        };
        assert!(mtls.check_listener(anywhere).is_ok());
    }

    fn args() -> AccessArgs {
        AccessArgs {
            auth_basic_user: None,
            auth_basic_password_file: None,
            auth_token_file: None,
            auth_token_ttl: 60,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            allow_unauthenticated: false,
        }
    }

    #[test]
    fn access_from_flags_and_environment() {
        let none = |_: &str| None;
        let access = Access::from_args(&args(), none).expect("no auth");
        assert!(!access.authenticates() && access.tls.is_none());

        let env = |name: &str| match name {
            PASSWORD_ENV => Some("pw".to_owned()),
            TOKENS_ENV => Some("t1,t2".to_owned()),
            _ => None,
        };
        let with_user = AccessArgs {
            auth_basic_user: Some("u".into()),
            ..args()
        };
        let access = Access::from_args(&with_user, env).expect("auth");
        let basic = access.auth.basic.as_ref().expect("basic");
        assert_eq!((basic.user.as_str(), basic.password.expose()), ("u", "pw"));
        assert_eq!(access.auth.tokens.len(), 2);
        assert_eq!(access.auth.token_ttl, Duration::from_secs(60));

        // A user without a password, or a password without a user: refused.
        assert!(Access::from_args(&with_user, none).is_err());
        assert!(Access::from_args(&args(), env).is_err());
        // A token file that does not exist: refused, naming the flag.
        let missing = AccessArgs {
            auth_token_file: Some("/nonexistent/tokens".into()),
            ..args()
        };
        let error = Access::from_args(&missing, none).expect_err("missing file");
        assert!(error.to_string().contains("--auth-token-file"), "{error}");
        // An unusable certificate stops the server before it listens.
        let dir =
            std::env::temp_dir().join(format!("sagemaker-flight-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let bad_tls = AccessArgs {
            tls_cert: Some(junk.clone()),
            tls_key: Some(junk),
            ..args()
        };
        let error = Access::from_args(&bad_tls, none).expect_err("bad PEM");
        assert!(
            error.to_string().starts_with("TLS configuration"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_handshake_path_is_flights() {
        use arrow_flight::flight_service_server::FlightServiceServer;
        assert_eq!(
            HANDSHAKE_PATH,
            format!(
                "/{}/Handshake",
                <FlightServiceServer<crate::flight::FlightServer> as NamedService>::NAME
            )
        );
    }
}
