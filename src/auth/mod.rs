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
//!
//! - [`secret`]: values that never show in `Debug`; token lists.
//! - [`authenticator`]: checks tokens, answers Handshake.
//! - [`layer`]: the tower service that refuses unauthenticated RPCs.
//! - [`tls`]: the listener's TLS and mutual TLS.
//! - [`access`]: all of it together, and the loopback rule.
//! - [`error`]: why access cannot be set up.
//!
//! May import: `source` (to describe an error chain). Nothing here reads
//! a flag or a file: the command line turns its options into [`Access`].

pub mod access;
pub mod authenticator;
pub mod error;
pub mod layer;
pub mod secret;
pub mod tls;

pub use access::{Access, is_loopback};
pub use authenticator::{
    AuthConfig, Authenticator, BasicCredentials, DEFAULT_TOKEN_TTL, MAX_ISSUED_TOKENS,
};
pub use error::AccessError;
pub use layer::{HANDSHAKE_PATH, RequireAuth};
pub use secret::{Secret, parse_token_file, parse_token_list};
pub use tls::TlsConfig;
