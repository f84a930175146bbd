//! Access as a whole: the credentials, TLS, and the rule that refuses to
//! serve a network without authentication.

use std::net::SocketAddr;

use crate::auth::authenticator::AuthConfig;
use crate::auth::error::AccessError;
use crate::auth::tls::TlsConfig;

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
    use crate::auth::authenticator::{Authenticator, BasicCredentials};
    use crate::auth::secret::Secret;

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
}
