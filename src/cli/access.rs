//! The authentication and TLS options of `serve`, and the one place that
//! reads the files and environment variables they name into an [`Access`].
//! Passwords and tokens come from files or the environment, never from the
//! command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use sagemaker_flight::auth::{
    Access, AccessError, AuthConfig, BasicCredentials, DEFAULT_TOKEN_TTL, Secret, TlsConfig,
    parse_token_file, parse_token_list,
};

/// Environment variable holding the Basic password (there is no flag: a
/// password on a command line is visible to every local user).
pub const PASSWORD_ENV: &str = "SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD";

/// Environment variable holding static bearer tokens, comma-separated.
pub const TOKENS_ENV: &str = "SAGEMAKER_FLIGHT_AUTH_TOKENS";

/// Authentication and TLS of the Flight listener (see `src/auth/`).
/// Passwords and tokens are read from files or the environment, never
/// from the command line.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// User name for Basic authentication: a Flight SQL Handshake with
    /// `authorization: Basic base64(user:password)` gets a bearer token.
    /// The password comes from --auth-basic-password-file or the
    /// environment variable SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD.
    #[arg(long, env = "SAGEMAKER_FLIGHT_AUTH_BASIC_USER")]
    pub auth_basic_user: Option<String>,

    /// File whose first line is the Basic password.
    #[arg(
        long,
        env = "SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD_FILE",
        requires = "auth_basic_user"
    )]
    pub auth_basic_password_file: Option<PathBuf>,

    /// File of static bearer tokens, one a line (blank lines and `#`
    /// comments ignored). More tokens, comma-separated, may come from the
    /// environment variable SAGEMAKER_FLIGHT_AUTH_TOKENS.
    #[arg(long, env = "SAGEMAKER_FLIGHT_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Seconds a token issued by Handshake stays valid.
    #[arg(long, env = "SAGEMAKER_FLIGHT_AUTH_TOKEN_TTL", default_value_t = DEFAULT_TOKEN_TTL.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub auth_token_ttl: u64,

    /// TLS certificate chain (PEM) of the listener; needs --tls-key.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) of the listener; needs --tls-cert.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM): clients must present a certificate signed
    /// by one (mutual TLS). Needs --tls-cert.
    #[arg(long, env = "SAGEMAKER_FLIGHT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Serve an address other than loopback (127.0.0.0/8, ::1) with no
    /// authentication. Without it the server refuses to start there.
    #[arg(long, env = "SAGEMAKER_FLIGHT_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
}

/// Access as the flags and the environment (read through `env`) ask:
/// reads the password, token and PEM files.
pub fn access_of_args(
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
        (Some(cert), Some(key)) => Some(tls_of_files(cert, key, args.tls_client_ca.as_deref())?),
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

/// Reads the PEM files and checks them.
fn tls_of_files(
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

fn read_file(path: &Path, flag: &'static str) -> Result<Vec<u8>, AccessError> {
    std::fs::read(path).map_err(|error| AccessError::File {
        flag,
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let access = access_of_args(&args(), none).expect("no auth");
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
        let access = access_of_args(&with_user, env).expect("auth");
        let basic = access.auth.basic.as_ref().expect("basic");
        assert_eq!((basic.user.as_str(), basic.password.expose()), ("u", "pw"));
        assert_eq!(access.auth.tokens.len(), 2);
        assert_eq!(access.auth.token_ttl, Duration::from_secs(60));

        // A user without a password, or a password without a user: refused.
        assert!(access_of_args(&with_user, none).is_err());
        assert!(access_of_args(&args(), env).is_err());
        // A token file that does not exist: refused, naming the flag.
        let missing = AccessArgs {
            auth_token_file: Some("/nonexistent/tokens".into()),
            ..args()
        };
        let error = access_of_args(&missing, none).expect_err("missing file");
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
        let error = access_of_args(&bad_tls, none).expect_err("bad PEM");
        assert!(
            error.to_string().starts_with("TLS configuration"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
