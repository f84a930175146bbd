//! A server address of `sagemaker-flight query`: a Flight URL and its
//! tonic equivalent.

use tonic::transport::Endpoint;

use super::error::QueryCliError;

/// A Flight server address: `grpc://` / `grpc+tcp://` (plaintext) or
/// `grpc+tls://` (TLS), as Flight spells them, with tonic's equivalent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerUrl {
    original: String,
    /// `http://HOST:PORT` or `https://HOST:PORT`, for tonic.
    uri: String,
    tls: bool,
}

impl ServerUrl {
    /// Parses a Flight URL; `http://` and `https://` are taken as they are.
    pub fn parse(text: &str) -> Result<ServerUrl, QueryCliError> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            QueryCliError::Usage(format!(
                "{text:?} is not a server URL: expected grpc://HOST:PORT or grpc+tls://HOST:PORT"
            ))
        })?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "grpc" | "grpc+tcp" | "http" => false,
            "grpc+tls" | "https" => true,
            _ => {
                return Err(QueryCliError::Usage(format!(
                    "{text:?}: unknown scheme {scheme:?} (use grpc:// or grpc+tls://)"
                )));
            }
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(QueryCliError::Usage(format!(
                "{text:?} is not a server URL: expected grpc://HOST:PORT"
            )));
        }
        let uri = format!("{}://{authority}", if tls { "https" } else { "http" });
        // Checked here so that a bad address is a usage error, not a
        // connection failure.
        Endpoint::from_shared(uri.clone())
            .map_err(|e| QueryCliError::Usage(format!("{text:?} is not a server URL: {e}")))?;
        Ok(ServerUrl {
            original: text.to_owned(),
            uri,
            tls,
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// tonic's form of it (`http://` or `https://`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `HOST:PORT`.
    pub fn authority(&self) -> &str {
        self.uri
            .split_once("://")
            .map_or(&self.uri, |(_, rest)| rest)
    }

    /// The same server with the Flight scheme `scheme` (`grpc`, `grpc+tls`).
    pub fn with_scheme(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flight_schemes_map_to_tonic_schemes() {
        let plain = ServerUrl::parse("grpc://127.0.0.1:50051").expect("grpc");
        assert_eq!(plain.uri(), "http://127.0.0.1:50051");
        assert!(!plain.is_tls());
        let tls = ServerUrl::parse("grpc+tls://flight.example:443/").expect("grpc+tls");
        assert_eq!(tls.uri(), "https://flight.example:443");
        assert!(tls.is_tls());
        assert_eq!(
            ServerUrl::parse("grpc+tcp://h:1").expect("grpc+tcp").uri(),
            "http://h:1"
        );
        for bad in ["127.0.0.1:50051", "ftp://h:1", "grpc://", "grpc://h:1/path"] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
