//! Access control end to end, on 127.0.0.1: bearer tokens (static and
//! issued by a Basic Handshake) on every RPC, TLS, mutual TLS, and the
//! refusal to serve a non-loopback address without authentication.

mod common;

use std::path::Path;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{ActionCreatePreparedStatementRequest, ProstMessageExt};
use arrow_flight::{Action, FlightClient, FlightData, FlightDescriptor, HandshakeRequest, Ticket};
use base64::Engine as _;
use common::binary::Binary;
use common::pki::Pki;
use common::{TestServer, emulator_config, quick_retries};
use futures::{TryStreamExt, stream};
use prost::Message;
use rcgen::ExtendedKeyUsagePurpose;
use sagemaker_flight::auth::{
    Access, AuthConfig, Authenticator, BasicCredentials, Secret, TlsConfig,
};
use sagemaker_flight::source::SageMakerSource;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const JOBS: usize = 40;
const TABLE: &str = "aws.sagemaker_compilation_job";
const STATIC_TOKEN: &str = "static-token-0123456789abcdef";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
/// Every RPC and connection attempt below is bounded by this.
const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("finished within the time limit")
}

fn authenticator() -> Authenticator {
    Authenticator::new(AuthConfig {
        basic: Some(BasicCredentials {
            user: USER.into(),
            password: Secret::new(PASSWORD),
        }),
        tokens: vec![Secret::new(STATIC_TOKEN)],
        ..AuthConfig::default()
    })
}

/// A server of [`JOBS`] jobs that checks credentials with `auth` (`None`:
/// anyone may call) and, with `tls`, speaks TLS; its source makes 8 calls
/// at a time and lists in the default windows.
async fn start_server(auth: Option<Authenticator>, tls: Option<TlsConfig>) -> TestServer {
    TestServer::builder(emulator_config(JOBS))
        .source(|client| SageMakerSource::new(client, 8, quick_retries(8)))
        .access(auth, tls)
        .start()
        .await
}

async fn plain_channel(server: &TestServer) -> Channel {
    bounded(server.channel()).await
}

fn table_descriptor() -> FlightDescriptor {
    FlightDescriptor::new_path(vec![TABLE.to_owned()])
}

/// Asserts `result` is UNAUTHENTICATED with a message that does not echo
/// `secret`.
fn assert_unauthenticated<T: std::fmt::Debug>(
    result: Result<T, FlightError>,
    rpc: &str,
    secret: &str,
) {
    match result {
        Err(FlightError::Tonic(status)) => {
            assert_eq!(
                status.code(),
                tonic::Code::Unauthenticated,
                "{rpc}: {status:?}"
            );
            assert!(!status.message().is_empty(), "{rpc}: a message says why");
            if !secret.is_empty() {
                assert!(
                    !status.message().contains(secret),
                    "{rpc} echoes the credential"
                );
            }
        }
        other => panic!("{rpc} was not refused: {other:?}"),
    }
}

/// The first error of a stream-returning call, whether the call or the
/// stream carries it.
async fn first_error<S, T>(call: Result<S, FlightError>) -> Result<Vec<T>, FlightError>
where
    S: futures::Stream<Item = Result<T, FlightError>> + Unpin,
{
    call?.try_collect().await
}

fn create_prepared_statement(sql: &str) -> Action {
    let request = ActionCreatePreparedStatementRequest {
        query: sql.to_owned(),
        transaction_id: None,
    };
    Action::new("CreatePreparedStatement", request.as_any().encode_to_vec())
}

/// Calls GetFlightInfo, PollFlightInfo, GetSchema, DoGet (of `ticket`),
/// ListFlights, ListActions, DoAction (Flight SQL CreatePreparedStatement)
/// and DoPut with `client`'s headers, and asserts each is UNAUTHENTICATED.
async fn assert_every_rpc_refused(client: &mut FlightClient, ticket: &Ticket, secret: &str) {
    assert_unauthenticated(
        bounded(client.get_flight_info(table_descriptor())).await,
        "GetFlightInfo",
        secret,
    );
    assert_unauthenticated(
        bounded(client.get_flight_info(FlightDescriptor::new_cmd(format!(
            "SELECT count(*) FROM {TABLE}"
        ))))
        .await,
        "GetFlightInfo (SQL)",
        secret,
    );
    assert_unauthenticated(
        bounded(client.poll_flight_info(table_descriptor())).await,
        "PollFlightInfo",
        secret,
    );
    assert_unauthenticated(
        bounded(client.get_schema(table_descriptor())).await,
        "GetSchema",
        secret,
    );
    assert_unauthenticated(
        bounded(async { first_error(client.do_get(ticket.clone()).await).await }).await,
        "DoGet",
        secret,
    );
    assert_unauthenticated(
        bounded(async { first_error(client.list_flights("").await).await }).await,
        "ListFlights",
        secret,
    );
    assert_unauthenticated(
        bounded(async { first_error(client.list_actions().await).await }).await,
        "ListActions",
        secret,
    );
    assert_unauthenticated(
        bounded(async {
            first_error(
                client
                    .do_action(create_prepared_statement(&format!(
                        "SELECT compilation_job_name FROM {TABLE}"
                    )))
                    .await,
            )
            .await
        })
        .await,
        "DoAction CreatePreparedStatement",
        secret,
    );
    let put = stream::iter([Ok(
        FlightData::new().with_descriptor(FlightDescriptor::new_cmd("SELECT 1"))
    )]);
    assert_unauthenticated(
        bounded(async { first_error(client.do_put(put).await).await }).await,
        "DoPut",
        secret,
    );
}

/// The whole table through GetFlightInfo and DoGet: its rows.
async fn read_table(client: &mut FlightClient) -> Result<usize, FlightError> {
    let info = bounded(client.get_flight_info(table_descriptor())).await?;
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> =
        bounded(async { client.do_get(ticket).await?.try_collect().await }).await?;
    Ok(batches.iter().map(RecordBatch::num_rows).sum())
}

/// A ticket of the table, got with a valid token.
async fn table_ticket(server: &TestServer, token: &str) -> Ticket {
    let mut client = FlightClient::new(plain_channel(server).await);
    client
        .add_header("authorization", &format!("Bearer {token}"))
        .expect("header");
    let info = bounded(client.get_flight_info(table_descriptor()))
        .await
        .expect("GetFlightInfo with a token");
    info.endpoint[0].ticket.clone().expect("ticket")
}

#[tokio::test]
async fn a_static_token_opens_every_rpc_and_nothing_else_does() {
    let server = start_server(Some(authenticator()), None).await;
    let ticket = table_ticket(&server, STATIC_TOKEN).await;

    let mut anonymous = FlightClient::new(plain_channel(&server).await);
    assert_every_rpc_refused(&mut anonymous, &ticket, "").await;

    let mut wrong = FlightClient::new(plain_channel(&server).await);
    wrong
        .add_header("authorization", "Bearer not-the-token")
        .expect("header");
    assert_every_rpc_refused(&mut wrong, &ticket, "not-the-token").await;

    // Basic credentials are for Handshake, not for other calls.
    let mut basic = FlightClient::new(plain_channel(&server).await);
    basic
        .add_header("authorization", &basic_header(USER, PASSWORD))
        .expect("header");
    assert_every_rpc_refused(&mut basic, &ticket, PASSWORD).await;

    let mut authorized = FlightClient::new(plain_channel(&server).await);
    authorized
        .add_header("authorization", &format!("Bearer {STATIC_TOKEN}"))
        .expect("header");
    assert_eq!(read_table(&mut authorized).await.expect("read"), JOBS);
    let flights: Vec<_> = bounded(async { authorized.list_flights("").await?.try_collect().await })
        .await
        .expect("ListFlights");
    assert_eq!(flights.len(), 1);
    let schema = bounded(authorized.get_schema(table_descriptor()))
        .await
        .expect("GetSchema");
    assert!(schema.field_with_name("compilation_job_name").is_ok());
    let prepared: Vec<_> = bounded(async {
        authorized
            .do_action(create_prepared_statement(&format!(
                "SELECT compilation_job_name FROM {TABLE}"
            )))
            .await?
            .try_collect()
            .await
    })
    .await
    .expect("CreatePreparedStatement");
    assert_eq!(prepared.len(), 1);
    server.stop().await;
}

fn basic_header(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A raw Handshake with `authorization`: the response's header and payload.
async fn raw_handshake(
    server: &TestServer,
    authorization: &str,
) -> Result<(Option<String>, Vec<u8>), tonic::Status> {
    let mut client = FlightServiceClient::new(plain_channel(server).await);
    let mut request = tonic::Request::new(stream::iter([HandshakeRequest::default()]));
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().expect("ascii"));
    let response = bounded(client.handshake(request)).await?;
    let header = response
        .metadata()
        .get("authorization")
        .map(|value| value.to_str().expect("ascii").to_owned());
    let messages: Vec<_> = bounded(response.into_inner().try_collect()).await?;
    assert_eq!(messages.len(), 1, "one HandshakeResponse");
    Ok((header, messages[0].payload.to_vec()))
}

#[tokio::test]
async fn a_basic_handshake_issues_a_token_that_opens_every_rpc() {
    let server = start_server(Some(authenticator()), None).await;

    // Wrong credentials are refused, without a token.
    for (user, password) in [(USER, "wrong"), ("mallory", PASSWORD), (USER, "")] {
        let refused = raw_handshake(&server, &basic_header(user, password))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{user}");
        assert!(!refused.message().contains(PASSWORD));
    }
    let refused =
        bounded(FlightSqlServiceClient::new(plain_channel(&server).await).handshake(USER, "wrong"))
            .await
            .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("invalid user name or password"),
        "{refused}"
    );

    // The raw exchange: `authorization: Bearer <token>` and the token as payload.
    let (header, payload) = raw_handshake(&server, &basic_header(USER, PASSWORD))
        .await
        .expect("handshake");
    let header = header.expect("an authorization header in the response");
    let token = header.strip_prefix("Bearer ").expect("a Bearer header");
    assert!(
        token.len() >= 22,
        "at least 128 random bits: {} chars",
        token.len()
    );
    assert_eq!(payload, token.as_bytes());

    // Two handshakes, two tokens.
    let (second, _) = raw_handshake(&server, &basic_header(USER, PASSWORD))
        .await
        .expect("handshake");
    assert_ne!(second.as_deref(), Some(header.as_str()));

    // Without the token every RPC is refused; a made-up token too.
    let ticket = table_ticket(&server, token).await;
    let mut anonymous = FlightClient::new(plain_channel(&server).await);
    assert_every_rpc_refused(&mut anonymous, &ticket, "").await;

    // A Flight SQL client handshakes and runs a full query with the token:
    // a statement, and a prepared statement.
    let mut sql = FlightSqlServiceClient::new(plain_channel(&server).await);
    bounded(sql.handshake(USER, PASSWORD))
        .await
        .expect("Flight SQL handshake");
    assert!(sql.token().is_some(), "the client took the bearer token");
    let info = bounded(sql.execute(format!("SELECT count(*) AS n FROM {TABLE}"), None))
        .await
        .expect("execute");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> =
        bounded(async { sql.do_get(ticket).await?.try_collect().await })
            .await
            .expect("DoGet");
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        JOBS as i64
    );
    let mut prepared = bounded(sql.prepare(
        format!("SELECT compilation_job_name FROM {TABLE} WHERE compilation_job_status = 'FAILED'"),
        None,
    ))
    .await
    .expect("prepare");
    let info = bounded(prepared.execute()).await.expect("execute prepared");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> =
        bounded(async { sql.do_get(ticket).await?.try_collect().await })
            .await
            .expect("DoGet prepared");
    let failed: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert!(failed < JOBS);
    bounded(prepared.close()).await.expect("close");

    // The same token works from a plain Flight client too.
    let mut plain = FlightClient::new(plain_channel(&server).await);
    plain
        .add_header("authorization", &format!("Bearer {token}"))
        .expect("header");
    assert_eq!(read_table(&mut plain).await.expect("read"), JOBS);
    server.stop().await;
}

#[tokio::test]
async fn without_auth_configured_anyone_may_call() {
    let server = start_server(None, None).await;
    let mut client = FlightClient::new(plain_channel(&server).await);
    assert_eq!(read_table(&mut client).await.expect("read"), JOBS);
    // Handshake, with or without credentials, succeeds as before.
    let payload = bounded(client.handshake(Vec::new()))
        .await
        .expect("handshake");
    assert!(payload.is_empty());
    server.stop().await;
}

// ------------------------------------------------------------------ TLS

/// A TLS channel to `server` trusting `ca`, presenting `identity` if given.
async fn tls_channel(
    server: &TestServer,
    ca: &Pki,
    identity: Option<(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{}", server.address.port()))
        .expect("uri")
        .tls_config(tls)?
        .connect_timeout(LIMIT);
    bounded(endpoint.connect()).await
}

/// Whether a client on `channel` (if it connected) can list the flights.
async fn can_list(channel: Result<Channel, tonic::transport::Error>) -> bool {
    let Ok(channel) = channel else {
        return false;
    };
    let mut client = FlightClient::new(channel);
    bounded(async { first_error(client.list_flights("").await).await })
        .await
        .is_ok()
}

#[tokio::test]
async fn tls_serves_clients_that_trust_its_ca_and_refuses_plaintext() {
    let pki = Pki::new("access test CA");
    let server = start_server(None, Some(pki.server_tls(None))).await;

    let channel = tls_channel(&server, &pki, None).await.expect("TLS connect");
    let mut client = FlightClient::new(channel);
    assert_eq!(read_table(&mut client).await.expect("read over TLS"), JOBS);

    // A plaintext client gets nothing.
    let plaintext = bounded(
        Channel::from_shared(format!("http://{}", server.address))
            .expect("uri")
            .connect(),
    )
    .await;
    assert!(!can_list(plaintext).await, "a plaintext client was served");

    // A client that does not trust the server's CA refuses it.
    let stranger = Pki::new("another CA");
    assert!(!can_list(tls_channel(&server, &stranger, None).await).await);
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let server_pki = Pki::new("server CA");
    let client_pki = Pki::new("client CA");
    let tls = server_pki.server_tls(Some(&client_pki));
    assert!(tls.requires_client_certificates());
    let server = start_server(None, Some(tls)).await;

    // No certificate: refused.
    assert!(
        !can_list(tls_channel(&server, &server_pki, None).await).await,
        "a client without a certificate was served"
    );
    // A certificate from another CA: refused.
    let (cert, key) = server_pki.sign(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    assert!(
        !can_list(tls_channel(&server, &server_pki, Some((cert, key))).await).await,
        "a client with a certificate of another CA was served"
    );
    // A certificate signed by the client CA: served.
    let identity = client_pki.sign(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let channel = tls_channel(&server, &server_pki, Some(identity))
        .await
        .expect("mTLS connect");
    let mut client = FlightClient::new(channel);
    assert_eq!(read_table(&mut client).await.expect("read over mTLS"), JOBS);
    server.stop().await;
}

#[tokio::test]
async fn tls_and_auth_together() {
    let pki = Pki::new("access test CA");
    let server = start_server(Some(authenticator()), Some(pki.server_tls(None))).await;
    let channel = tls_channel(&server, &pki, None).await.expect("TLS connect");
    let mut sql = FlightSqlServiceClient::new(channel.clone());
    bounded(sql.handshake(USER, PASSWORD))
        .await
        .expect("handshake over TLS");
    let token = sql.token().expect("token").clone();
    let mut anonymous = FlightClient::new(channel.clone());
    assert_unauthenticated(
        bounded(anonymous.get_flight_info(table_descriptor())).await,
        "GetFlightInfo over TLS",
        "",
    );
    let mut client = FlightClient::new(channel);
    client
        .add_header("authorization", &format!("Bearer {token}"))
        .expect("header");
    assert_eq!(read_table(&mut client).await.expect("read"), JOBS);
    server.stop().await;
}

// ------------------------------------------------- the non-loopback rule

#[test]
fn a_non_loopback_listener_needs_authentication_or_an_explicit_opt_out() {
    let open = Access::default();
    let everywhere = "0.0.0.0:0".parse().expect("address");
    let error = open.check_listener(everywhere).expect_err("refused");
    assert!(
        error.to_string().contains("--allow-unauthenticated"),
        "{error}"
    );
    assert!(
        open.check_listener("[::]:0".parse().expect("address"))
            .is_err()
    );
    assert!(
        open.check_listener("127.0.0.1:0".parse().expect("address"))
            .is_ok()
    );
    assert!(
        open.check_listener("[::1]:0".parse().expect("address"))
            .is_ok()
    );
    let allowed = Access {
        allow_unauthenticated: true,
        ..Access::default()
    };
    assert!(allowed.check_listener(everywhere).is_ok());
    let authenticated = Access {
        auth: AuthConfig {
            tokens: vec![Secret::new(STATIC_TOKEN)],
            ..AuthConfig::default()
        },
        ..Access::default()
    };
    assert!(authenticated.check_listener(everywhere).is_ok());
}

/// The binary with `args`, none of the test's own access settings
/// inherited, every wait on it bounded by [`LIMIT`].
fn binary(args: &[&str]) -> Binary {
    Binary::new(args).deadline(LIMIT).env_remove(&[
        "SAGEMAKER_FLIGHT_AUTH_TOKENS",
        "SAGEMAKER_FLIGHT_AUTH_BASIC_USER",
        "SAGEMAKER_FLIGHT_AUTH_BASIC_PASSWORD",
        "SAGEMAKER_FLIGHT_ALLOW_UNAUTHENTICATED",
    ])
}

#[tokio::test]
async fn the_binary_refuses_to_serve_all_interfaces_without_authentication() {
    // It must fail before binding, so 0.0.0.0 is never actually listened on.
    let output = binary(&["serve", "--demo", "--listen", "0.0.0.0:0"])
        .output()
        .await;
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");
}

#[tokio::test]
async fn the_binary_takes_credentials_and_tls_from_flags_files_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("sagemaker-flight-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let pki = Pki::new("binary test CA");
    let (cert, key) = pki.sign(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let cert_path = write("cert.pem", &cert);
    let key_path = write("key.pem", &key);
    let password_path = write("password", &format!("{PASSWORD}\n"));
    let tokens_path = write("tokens", &format!("# tokens\n\n{STATIC_TOKEN}\n"));
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    let (cert_arg, key_arg, password_arg, tokens_arg) = (
        path(&cert_path),
        path(&key_path),
        path(&password_path),
        path(&tokens_path),
    );
    // Its stderr is collected as it comes, so a full pipe never blocks it.
    let (server, url) = binary(&[
        "serve",
        "--demo",
        "--demo-jobs",
        "30",
        "--demo-latency-ms",
        "0",
        "--listen",
        "127.0.0.1:0",
        "--auth-basic-user",
        USER,
        "--auth-basic-password-file",
        &password_arg,
        "--auth-token-file",
        &tokens_arg,
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ])
    .envs(&[
        ("SAGEMAKER_FLIGHT_AUTH_TOKENS", "env-token-1, env-token-2"),
        // Everything our code logs, and the libraries' debug logs: no
        // secret may appear in them.
        ("RUST_LOG", "sagemaker_flight=trace,debug"),
    ])
    .start_one("listening on ")
    .await;
    let port = url
        .strip_prefix("grpc+tls://127.0.0.1:")
        .unwrap_or_else(|| panic!("a TLS URL: {url}"));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = bounded(
        Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
            .expect("uri")
            .tls_config(tls)
            .expect("tls")
            .connect(),
    )
    .await
    .expect("connect");

    let mut anonymous = FlightClient::new(channel.clone());
    assert_unauthenticated(
        bounded(anonymous.get_flight_info(table_descriptor())).await,
        "GetFlightInfo",
        "",
    );
    let mut sql = FlightSqlServiceClient::new(channel.clone());
    bounded(sql.handshake(USER, PASSWORD))
        .await
        .expect("handshake with the password from the file");
    let issued = sql.token().expect("token").clone();
    for token in [issued.as_str(), STATIC_TOKEN, "env-token-1", "env-token-2"] {
        let mut client = FlightClient::new(channel.clone());
        client
            .add_header("authorization", &format!("Bearer {token}"))
            .expect("header");
        assert_eq!(read_table(&mut client).await.expect("read"), 30, "{token}");
    }
    let mut wrong = FlightClient::new(channel.clone());
    wrong
        .add_header("authorization", "Bearer not-a-valid-token-xyzzy")
        .expect("header");
    assert!(read_table(&mut wrong).await.is_err());
    let log = server.stop_and_read_stderr().await;
    assert!(
        log.contains("DEBUG") || log.contains("TRACE"),
        "debug logging was on: {log}"
    );
    for secret in [
        PASSWORD,
        STATIC_TOKEN,
        "env-token-1",
        "env-token-2",
        issued.as_str(),
        "not-a-valid-token-xyzzy",
    ] {
        assert!(!log.contains(secret), "a secret is in the log: {secret}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
