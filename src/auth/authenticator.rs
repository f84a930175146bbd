//! Checking credentials: static bearer tokens, and Basic credentials that
//! Handshake exchanges for issued tokens (kept as SHA-256 digests, compared
//! in constant time).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;

use crate::auth::secret::Secret;

/// How long a token issued by Handshake is valid, unless configured.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Most issued tokens kept; beyond it the oldest is forgotten.
pub const MAX_ISSUED_TOKENS: usize = 10_000;

/// Random bytes in an issued token.
const TOKEN_BYTES: usize = 32;

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
}
