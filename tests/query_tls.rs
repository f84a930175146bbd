//! TLS of `sagemaker-flight query` against `serve --demo` processes on
//! 127.0.0.1: the README's certificate recipes (run with `openssl` when the
//! machine has it, else the same certificates made with rcgen), a
//! self-signed CA:TRUE certificate pinned with `--tls-ca`, the refusals
//! (unknown CA, wrong host, expired), mutual TLS with `--tls-cert` and
//! `--tls-key`, and the scheme mismatch named both ways.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::binary::{Binary, Process};
use common::temp_dir::TempDir;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    date_time_ymd,
};

const COUNT: &str = "SELECT count(*) AS n FROM aws.sagemaker_compilation_job";
const JOBS: &str = "15";
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// `serve --demo` on 127.0.0.1:0 with `tls` flags; its port.
async fn serve(tls: &[&str]) -> (Process, u16) {
    let mut args = vec![
        "serve",
        "--demo",
        "--demo-jobs",
        JOBS,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(tls);
    let (process, url) = Binary::new(&args)
        .discard_stderr()
        .start_one("sagemaker-flight listening on ")
        .await;
    let port = url
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("a port in {url}"));
    (process, port)
}

async fn query(server: &str, args: &[&str]) -> Output {
    Binary::new(
        &[
            &["query", COUNT, "--format", "csv", "--server", server][..],
            args,
        ]
        .concat(),
    )
    .env_remove(&["SAGEMAKER_FLIGHT_TOKEN", "SAGEMAKER_FLIGHT_PASSWORD"])
    .deadline(QUERY_TIMEOUT)
    .output()
    .await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the query read every job.
fn assert_counted(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout), format!("n\n{JOBS}\n"));
}

/// The one line of stderr of a failed query.
fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    lines[0].to_owned()
}

// ------------------------------------------------------------ certificates

/// A self-signed CA:TRUE certificate for `names`, as `openssl req -x509`
/// makes it, valid from `not_before` to `not_after` (years), and its key.
fn self_signed_ca(names: &[&str], years: (i32, i32)) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.not_before = date_time_ymd(years.0, 1, 1);
    params.not_after = date_time_ymd(years.1, 1, 1);
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// Valid from last year to a long time from now.
fn current() -> (i32, i32) {
    (2024, 2099)
}

/// A CA and certificates it signs.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA");
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, "test");
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// The `openssl` command lines of the README's fenced `sh` blocks, each
/// as its arguments (the README writes them without quotes), in order.
fn readme_openssl_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        match line.trim_end() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            command if in_sh && command.starts_with("openssl ") => commands.push(
                command
                    .split_whitespace()
                    .skip(1)
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => {}
        }
    }
    commands
}

/// The README's certificate files in `dir`: made by its `openssl`
/// commands when `openssl` runs here, else made alike with rcgen. Says
/// which.
fn readme_certificates(dir: &TempDir) -> &'static str {
    let commands = readme_openssl_commands();
    assert!(
        commands.len() >= 6,
        "the README's openssl recipes: {commands:?}"
    );
    let has_openssl = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success());
    if has_openssl {
        for args in &commands {
            let output = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                text(&output.stderr)
            );
        }
        return "openssl";
    }
    let (cert, key) = self_signed_ca(&["localhost", "127.0.0.1"], current());
    dir.write("cert.pem", &cert);
    dir.write("key.pem", &key);
    let pki = Pki::new("flight-ca");
    dir.write("ca.pem", &pki.ca_pem);
    let (cert, key) = pki.sign(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    dir.write("server.pem", &cert);
    dir.write("server-key.pem", &key);
    let (cert, key) = pki.sign(&["reader"], ExtendedKeyUsagePurpose::ClientAuth);
    dir.write("client.pem", &cert);
    dir.write("client-key.pem", &key);
    "rcgen"
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn the_readme_recipes_connect_query_over_tls_and_mutual_tls() {
    let dir = TempDir::new("query-tls-readme");
    let made_by = readme_certificates(&dir);

    // The quick self-signed certificate (CA:TRUE), pinned with --tls-ca.
    let (server, port) = serve(&[
        "--tls-cert",
        &dir.file("cert.pem"),
        "--tls-key",
        &dir.file("key.pem"),
    ])
    .await;
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("grpc+tls://{host}:{port}");
        assert_counted(&query(&url, &["--tls-ca", &dir.file("cert.pem")]).await);
    }
    // Without it, the system's roots do not know it; the hint names --tls-ca.
    let line = failure(&query(&format!("grpc+tls://localhost:{port}"), &[]).await);
    assert!(line.contains("--tls-ca"), "{made_by}: {line}");
    server.stop().await;

    // The private CA, with client certificates required.
    let (server, port) = serve(&[
        "--tls-cert",
        &dir.file("server.pem"),
        "--tls-key",
        &dir.file("server-key.pem"),
        "--tls-client-ca",
        &dir.file("ca.pem"),
    ])
    .await;
    let url = format!("grpc+tls://localhost:{port}");
    let ca = dir.file("ca.pem");
    let line = failure(&query(&url, &["--tls-ca", &ca]).await);
    assert!(line.contains(&format!("cannot connect to {url}")), "{line}");
    assert!(
        line.contains("--tls-cert and --tls-key"),
        "{made_by}: {line}"
    );
    let (client, client_key) = (dir.file("client.pem"), dir.file("client-key.pem"));
    let mutual = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &client,
        "--tls-key",
        &client_key,
    ];
    assert_counted(&query(&url, &mutual).await);
    // A client certificate of another CA is refused by the server.
    let (stranger, stranger_key) = self_signed_ca(&["stranger"], current());
    let stranger = dir.write("stranger.pem", &stranger);
    let stranger_key = dir.write("stranger-key.pem", &stranger_key);
    let refused = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &stranger,
        "--tls-key",
        &stranger_key,
    ];
    let line = failure(&query(&url, &refused).await);
    assert!(line.contains("client certificate"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn a_pinned_self_signed_certificate_still_needs_the_host_and_its_validity() {
    let dir = TempDir::new("query-tls-pinned");
    // Names localhost only, expired, and a good one for the control.
    let (only_localhost, only_localhost_key) = self_signed_ca(&["localhost"], current());
    let (expired, expired_key) = self_signed_ca(&["localhost", "127.0.0.1"], (2020, 2021));
    let (other, _) = self_signed_ca(&["localhost", "127.0.0.1"], current());
    let other = dir.write("other.pem", &other);

    let cert = dir.write("localhost.pem", &only_localhost);
    let key = dir.write("localhost-key.pem", &only_localhost_key);
    let (server, port) = serve(&["--tls-cert", &cert, "--tls-key", &key]).await;
    assert_counted(
        &query(
            &format!("grpc+tls://localhost:{port}"),
            &["--tls-ca", &cert],
        )
        .await,
    );
    // Pinned, but it does not name 127.0.0.1.
    let url = format!("grpc+tls://127.0.0.1:{port}");
    let line = failure(&query(&url, &["--tls-ca", &cert]).await);
    assert!(line.contains(&format!("cannot connect to {url}")), "{line}");
    assert!(line.contains("not valid for name"), "{line}");
    // Another self-signed certificate is no chain to this one.
    let url = format!("grpc+tls://localhost:{port}");
    let line = failure(&query(&url, &["--tls-ca", &other]).await);
    assert!(
        line.contains(&format!("cannot connect to {url}"))
            && line.contains("certificate is not trusted"),
        "{line}"
    );
    server.stop().await;

    let cert = dir.write("expired.pem", &expired);
    let key = dir.write("expired-key.pem", &expired_key);
    let (server, port) = serve(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let line = failure(
        &query(
            &format!("grpc+tls://localhost:{port}"),
            &["--tls-ca", &cert],
        )
        .await,
    );
    assert!(line.contains("expired"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn a_scheme_that_does_not_match_the_listener_is_named_both_ways() {
    let dir = TempDir::new("query-tls-scheme");
    let (cert, key) = self_signed_ca(&["localhost", "127.0.0.1"], current());
    let cert = dir.write("cert.pem", &cert);
    let key = dir.write("key.pem", &key);
    let (tls_server, tls_port) = serve(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let (plain_server, plain_port) = serve(&[]).await;

    // With and without --wait: the mismatch is final, not retried.
    for wait in [&[][..], &["--wait", "30"][..]] {
        let line = failure(&query(&format!("grpc://127.0.0.1:{tls_port}"), wait).await);
        assert!(
            line.contains(&format!(
                "the server at 127.0.0.1:{tls_port} speaks TLS; use grpc+tls://127.0.0.1:{tls_port}"
            )),
            "{line}"
        );
        let args = [&["--tls-ca", cert.as_str()][..], wait].concat();
        let line = failure(&query(&format!("grpc+tls://localhost:{plain_port}"), &args).await);
        assert!(
            line.contains(&format!(
                "the server at localhost:{plain_port} is plaintext (no TLS); use grpc://localhost:{plain_port}"
            )),
            "{line}"
        );
    }
    tls_server.stop().await;
    plain_server.stop().await;
}

#[tokio::test]
async fn tls_files_that_cannot_be_used_are_usage_errors_naming_them() {
    let dir = TempDir::new("query-tls-files");
    let (cert, key) = self_signed_ca(&["localhost"], current());
    let cert = dir.write("cert.pem", &cert);
    let key = dir.write("key.pem", &key);
    let (_, other_key) = self_signed_ca(&["localhost"], current());
    let other_key = dir.write("other-key.pem", &other_key);
    let missing = dir.file("missing.pem");
    // Nothing listens there: every refusal comes before connecting.
    let url = "grpc+tls://127.0.0.1:9";
    let cases: [(&[&str], &str); 5] = [
        (&["--tls-ca", &missing], "cannot read --tls-ca"),
        (&["--tls-ca", &key], "holds no PEM certificate"),
        (
            &["--tls-cert", &cert, "--tls-key", &missing],
            "cannot read --tls-key",
        ),
        (
            &["--tls-cert", &cert, "--tls-key", &cert],
            "holds no PEM private key",
        ),
        (
            &["--tls-cert", &cert, "--tls-key", &other_key],
            "do not fit together",
        ),
    ];
    for (args, expected) in cases {
        let line = failure(&query(url, args).await);
        assert!(line.contains(expected), "{args:?}: {line}");
        assert!(!line.contains("cannot connect"), "{args:?}: {line}");
        let named = args.last().expect("a file");
        assert!(line.contains(named), "{args:?}: {line}");
    }
    // Both or neither: clap's usage error, exit status 2.
    let output = query(url, &["--tls-cert", &cert]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    // A client certificate for a plaintext URL is a mistake, said at once.
    let line = failure(
        &query(
            "grpc://127.0.0.1:9",
            &["--tls-cert", &cert, "--tls-key", &key],
        )
        .await,
    );
    assert!(line.contains("grpc+tls://"), "{line}");
}
