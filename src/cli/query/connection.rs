//! Connections of `sagemaker-flight query`: server URLs, TLS, credentials
//! (a bearer token, or Basic credentials exchanged for one by Handshake),
//! and waiting for a server that is still starting.
//!
//! Opening a connection never waits forever on a server that accepts it
//! and then says nothing: connecting, TLS and the Handshake of Basic
//! credentials together get [`CONNECT_TIMEOUT`], and with `--wait` every
//! attempt (its health check included) ends by the wait's deadline.

use std::path::Path;
use std::time::Duration;

use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightData, FlightInfo, HandshakeRequest, Ticket};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::TryStreamExt;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::error::{QueryCliError, one_line};
use super::scheme_mismatch;
pub use super::server_url::ServerUrl;
use super::tls::ClientTls;
use sagemaker_flight::auth::Secret;
use sagemaker_flight::server::MAX_MESSAGE_BYTES;

/// Environment variable holding a bearer token (instead of `--token-file`).
pub const TOKEN_ENV: &str = "SAGEMAKER_FLIGHT_TOKEN";

/// Environment variable holding the password of `--user`.
pub const PASSWORD_ENV: &str = "SAGEMAKER_FLIGHT_PASSWORD";

/// How long opening a connection may take without `--wait`: the TCP
/// connection, the TLS handshake and the Flight Handshake of `--user`
/// together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often `--wait` asks again.
const WAIT_RETRY: Duration = Duration::from_millis(250);

/// The location URI by which a Flight endpoint says "the server you asked".
const REUSE_CONNECTION: &str = "arrow-flight-reuse-connection://?";

/// Whether a location URI means the server that sent the FlightInfo.
pub fn means_same_server(location: &str) -> bool {
    location.is_empty() || location == REUSE_CONNECTION
}

/// What `query` presents to the server.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Nothing: the server allows anonymous reads.
    Anonymous,
    /// `authorization: Bearer <token>` on every call.
    Bearer(Secret),
    /// A Handshake with `authorization: Basic ...` on each server, whose
    /// answer's bearer token goes on every later call to that server.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
}

impl Credentials {
    /// The credentials the options ask for: `--user` (password from
    /// SAGEMAKER_FLIGHT_PASSWORD), else `--token-file`, else the token in
    /// SAGEMAKER_FLIGHT_TOKEN, else none. `env` reads the environment.
    pub fn from_options(
        token_file: Option<&Path>,
        user: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, QueryCliError> {
        if let Some(user) = user {
            let password = env(PASSWORD_ENV).ok_or_else(|| {
                QueryCliError::Usage(format!("--user needs the password in {PASSWORD_ENV}"))
            })?;
            return Ok(Credentials::Basic {
                user: user.to_owned(),
                password: Secret::new(password),
            });
        }
        let token = match token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    QueryCliError::Usage(format!(
                        "cannot read --token-file {}: {e}",
                        path.display()
                    ))
                })?;
                let token = text.lines().next().unwrap_or_default().trim().to_owned();
                if token.is_empty() {
                    return Err(QueryCliError::Usage(format!(
                        "--token-file {}: the first line is empty",
                        path.display()
                    )));
                }
                Some(token)
            }
            None => env(TOKEN_ENV)
                .map(|token| token.trim().to_owned())
                .filter(|token| !token.is_empty()),
        };
        Ok(token.map_or(Credentials::Anonymous, |token| {
            Credentials::Bearer(Secret::new(token))
        }))
    }
}

/// Opens authenticated connections, all with the same TLS settings and
/// credentials.
#[derive(Clone, Debug)]
pub struct Connector {
    tls: ClientTls,
    credentials: Credentials,
}

impl Connector {
    /// A connector with `tls` (for `grpc+tls://` servers) presenting
    /// `credentials`.
    pub fn new(tls: ClientTls, credentials: Credentials) -> Connector {
        Connector { tls, credentials }
    }

    /// Connects to `url` and authenticates, giving up after
    /// [`CONNECT_TIMEOUT`] (a server that accepts the connection but never
    /// answers the TLS or Flight handshake).
    pub async fn connect(&self, url: &ServerUrl) -> Result<Connection, QueryCliError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let limit = Some(CONNECT_TIMEOUT);
        let channel = within(deadline, limit, url, "connecting", self.channel(url)).await?;
        within(
            deadline,
            limit,
            url,
            "handshake",
            self.authenticate(url, channel),
        )
        .await
    }

    /// As [`Connector::connect`], retrying for up to `wait` until the
    /// server accepts the connection and its health check answers SERVING
    /// (a server without the health service counts as ready once it
    /// answers at all), then authenticating. Everything, each attempt's
    /// connection, health check and the handshake included, ends by the
    /// deadline `wait` sets. A `wait` of zero tries once, without the
    /// check.
    pub async fn connect_when_ready(
        &self,
        url: &ServerUrl,
        wait: Duration,
    ) -> Result<Connection, QueryCliError> {
        if wait.is_zero() {
            return self.connect(url).await;
        }
        let deadline = Instant::now() + wait;
        loop {
            let reason = match self.attempt(url, deadline).await {
                // Not there yet, or no answer: worth another try.
                Err(QueryCliError::Unreachable { reason, .. }) => reason,
                // Ready, or refused (credentials): final.
                done => return done,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(QueryCliError::Unreachable {
                    url: url.as_str().to_owned(),
                    reason: format!("{reason} (still, after waiting {}s)", wait.as_secs()),
                });
            }
            // Backing off between attempts, not waiting for an event; the
            // last attempt is at the deadline, so the whole wait is used.
            tokio::time::sleep(WAIT_RETRY.min(deadline - now)).await;
        }
    }

    /// One attempt of [`Connector::connect_when_ready`]: connecting, the
    /// health check and, once it says SERVING, authenticating, each ended
    /// by `deadline`. Every failure but a refusal of the credentials is
    /// [`QueryCliError::Unreachable`].
    async fn attempt(
        &self,
        url: &ServerUrl,
        deadline: Instant,
    ) -> Result<Connection, QueryCliError> {
        let channel = within(deadline, None, url, "connecting", self.channel(url)).await?;
        let check = health_check(url, channel.clone());
        within(deadline, None, url, "health check", check).await?;
        let authenticated = self.authenticate(url, channel);
        within(deadline, None, url, "handshake", authenticated).await
    }

    async fn channel(&self, url: &ServerUrl) -> Result<Channel, QueryCliError> {
        let unreachable = |reason: String| QueryCliError::Unreachable {
            url: url.as_str().to_owned(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(url.uri().to_owned())
            .map_err(|e| unreachable(error_chain(&e)))?
            .connect_timeout(CONNECT_TIMEOUT);
        if url.is_tls() {
            // tonic's connect timeout covers the TCP connection only.
            endpoint = self
                .tls
                .apply(endpoint, CONNECT_TIMEOUT)
                .map_err(|e| unreachable(error_chain(&e)))?;
        }
        match endpoint.connect().await {
            Ok(channel) => Ok(channel),
            // The transport's own words ("transport error", "connection
            // reset") do not say that the scheme is the mistake.
            Err(error) => {
                let chain = error_chain(&error);
                Err(match scheme_mismatch::explain(url, &chain).await {
                    Some(reason) => QueryCliError::WrongScheme {
                        url: url.as_str().to_owned(),
                        reason,
                    },
                    None => unreachable(self.tls.with_hint(url, chain)),
                })
            }
        }
    }

    async fn authenticate(
        &self,
        url: &ServerUrl,
        channel: Channel,
    ) -> Result<Connection, QueryCliError> {
        let flight = FlightServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut connection = Connection {
            server: url.clone(),
            tls: self.tls.clone(),
            client: FlightSqlServiceClient::new_from_inner(flight),
        };
        match &self.credentials {
            Credentials::Anonymous => {}
            Credentials::Bearer(token) => connection.client.set_token(token.expose().to_owned()),
            Credentials::Basic { user, password } => {
                let token = connection.handshake(user, password).await?;
                connection.client.set_token(token);
            }
        }
        Ok(connection)
    }
}

/// `future`'s result, or an [`QueryCliError::Unreachable`] saying that
/// `what` got no answer if it is not done by `deadline` (`limit`: the
/// time it had, for the message).
async fn within<T>(
    deadline: Instant,
    limit: Option<Duration>,
    url: &ServerUrl,
    what: &str,
    future: impl Future<Output = Result<T, QueryCliError>>,
) -> Result<T, QueryCliError> {
    match tokio::time::timeout_at(deadline, future).await {
        Ok(result) => result,
        Err(_) => Err(QueryCliError::Unreachable {
            url: url.as_str().to_owned(),
            reason: match limit {
                Some(limit) => format!("{what}: no answer within {}s", limit.as_secs()),
                None => format!("{what}: no answer"),
            },
        }),
    }
}

/// Ok when the server's health service says SERVING, or the server has
/// no health service but answers.
async fn health_check(url: &ServerUrl, channel: Channel) -> Result<(), QueryCliError> {
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    match answer {
        Ok(response) if response.get_ref().status() == ServingStatus::Serving => Ok(()),
        Ok(response) => Err(QueryCliError::Unreachable {
            url: url.as_str().to_owned(),
            reason: format!("health check: {:?}", response.get_ref().status()),
        }),
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(()),
        Err(status) => match scheme_mismatch::explain(url, &status_chain(&status)).await {
            Some(reason) => Err(QueryCliError::WrongScheme {
                url: url.as_str().to_owned(),
                reason,
            }),
            None => Err(QueryCliError::Unreachable {
                url: url.as_str().to_owned(),
                reason: format!("health check: {}", one_line(status.message())),
            }),
        },
    }
}

/// An authenticated connection to one server.
#[derive(Debug)]
pub struct Connection {
    server: ServerUrl,
    client: FlightSqlServiceClient<Channel>,
    /// Its TLS settings, for the hints of a failed call.
    tls: ClientTls,
}

impl Connection {
    /// The server's URL as given.
    pub fn url(&self) -> &str {
        self.server.as_str()
    }

    /// The server.
    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    /// GetFlightInfo of `sql` as a Flight SQL statement.
    pub async fn execute(&mut self, sql: &str) -> Result<FlightInfo, QueryCliError> {
        match self.client.execute(sql.to_owned(), None).await {
            Ok(info) => Ok(info),
            Err(FlightError::Tonic(status)) => Err(self.refused("query", &status).await),
            Err(other) => Err(self.protocol(other.to_string())),
        }
    }

    /// The error of `call` answered with `status`: a refusal by the
    /// server, or, when the status is the transport's and the scheme does
    /// not match the server, that mismatch.
    async fn refused(&self, call: &'static str, status: &tonic::Status) -> QueryCliError {
        match scheme_mismatch::explain(&self.server, &status_chain(status)).await {
            Some(reason) => QueryCliError::WrongScheme {
                url: self.url().to_owned(),
                reason,
            },
            // A status with a source is the transport's: the call never
            // got the server's answer (e.g. a TLS alert after the handshake).
            None if std::error::Error::source(status).is_some() => QueryCliError::Unreachable {
                url: self.url().to_owned(),
                reason: self.tls.with_hint(&self.server, status_chain(status)),
            },
            None => QueryCliError::refused(call, self.url(), status),
        }
    }

    /// DoGet of `ticket`: the raw FlightData messages (so the caller can
    /// count their bytes).
    pub async fn do_get(
        &mut self,
        ticket: Ticket,
    ) -> Result<tonic::Streaming<FlightData>, QueryCliError> {
        let mut request = tonic::Request::new(ticket);
        if let Some(token) = self.client.token() {
            let value = bearer_header(token).map_err(|reason| self.protocol(reason))?;
            request.metadata_mut().insert("authorization", value);
        }
        match self.client.inner_mut().do_get(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.refused("reading the result", &status).await),
        }
    }

    /// A Flight Handshake with Basic credentials; the bearer token the
    /// server answers with (in the `authorization` response header, as
    /// Flight SQL clients expect it).
    async fn handshake(&mut self, user: &str, password: &Secret) -> Result<String, QueryCliError> {
        let basic = STANDARD.encode(format!("{user}:{}", password.expose()));
        let value: MetadataValue<_> = format!("Basic {basic}").parse().map_err(|_| {
            QueryCliError::Usage(
                "the user name or password cannot be sent in a header (control characters?)"
                    .to_owned(),
            )
        })?;
        let mut request = tonic::Request::new(futures::stream::iter([HandshakeRequest::default()]));
        request.metadata_mut().insert("authorization", value);
        let url = self.url().to_owned();
        let response = match self.client.inner_mut().handshake(request).await {
            Ok(response) => response,
            Err(status) => return Err(self.refused("handshake", &status).await),
        };
        let header = response
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        // Drain the answer so that a status sent after it is seen.
        response
            .into_inner()
            .try_collect::<Vec<_>>()
            .await
            .map_err(|status| QueryCliError::refused("handshake", &url, &status))?;
        header.ok_or_else(|| {
            self.protocol("the handshake succeeded but sent no bearer token".to_owned())
        })
    }

    fn protocol(&self, reason: String) -> QueryCliError {
        QueryCliError::Protocol {
            url: self.url().to_owned(),
            reason: one_line(&reason),
        }
    }
}

fn bearer_header(token: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, String> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token cannot be sent in a header (control characters?)".to_owned())
}

/// A status's message and the errors beneath it (the transport's, for a
/// call that never reached the server), joined by ": ".
fn status_chain(status: &tonic::Status) -> String {
    let message = one_line(status.message());
    match std::error::Error::source(status) {
        Some(source) => {
            let chain = error_chain(source);
            if chain.contains(&message) {
                chain
            } else {
                format!("{message}: {chain}")
            }
        }
        None => message,
    }
}

/// An error and its sources, joined by ": " (tonic's transport error
/// alone says only "transport error"), each text once.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = one_line(&current.to_string());
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_user_the_token_file_or_the_environment() {
        let env = |name: &str| match name {
            PASSWORD_ENV => Some("pw".to_owned()),
            TOKEN_ENV => Some(" env-token \n".to_owned()),
            _ => None,
        };
        let no_env = |_: &str| None;
        match Credentials::from_options(None, Some("u"), env).expect("basic") {
            Credentials::Basic { user, password } => {
                assert_eq!((user.as_str(), password.expose()), ("u", "pw"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Credentials::from_options(None, Some("u"), no_env).is_err());
        match Credentials::from_options(None, None, env).expect("env token") {
            Credentials::Bearer(token) => assert_eq!(token.expose(), "env-token"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Credentials::from_options(None, None, no_env),
            Ok(Credentials::Anonymous)
        ));
        let missing = Credentials::from_options(Some(Path::new("/nonexistent/token")), None, env);
        assert!(missing.is_err());
    }

    #[test]
    fn reuse_locations_mean_the_same_server() {
        assert!(means_same_server(""));
        assert!(means_same_server("arrow-flight-reuse-connection://?"));
        assert!(!means_same_server("grpc://10.0.0.1:50051"));
    }
}
