//! `sagemaker-flight query "SQL"`: a Flight SQL client in the binary.
//!
//! It sends the statement (`CommandStatementQuery`) to `--server`, then
//! reads every endpoint of the FlightInfo it gets back, in order: an
//! endpoint without a location from the same server, one with locations
//! from the first of them that accepts a connection (with the same TLS
//! settings and credentials). An endpoint with several locations (a
//! fleet names the partition's owner, then the members that can take
//! over) is read whole before its rows are written, so that when its
//! location fails, before or during the stream, it is read again from the
//! next one and no row is written twice. The rows go to stdout or `--output` as a
//! table, CSV, JSON lines or Parquet ([`output`]), with a progress line
//! on stderr while they arrive ([`progress`]).
//!
//! Every failure is one line on stderr and a non-zero exit: the server's
//! own message for a refused statement, the address for a server that
//! cannot be reached, a hint at the credential options for
//! UNAUTHENTICATED.

mod columns;
mod connection;
mod error;
mod format;
mod output;
mod pinned_verifier;
mod progress;
mod scheme_mismatch;
mod server_url;
mod tls;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, FlightEndpoint, FlightInfo};
use clap::Args;
use futures::StreamExt;
use sagemaker_flight::server::DEFAULT_LISTEN;

use connection::{Connection, Connector, Credentials, ServerUrl};
pub use error::QueryCliError;
pub use format::OutputFormat;
pub use output::Sink;
pub use progress::Progress;
use tls::ClientTls;

/// Options of `sagemaker-flight query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL statement to run, e.g. "SELECT compilation_job_status,
    /// count(*) FROM aws.sagemaker_compilation_job GROUP BY 1".
    pub sql: String,

    /// The Flight SQL server: grpc://HOST:PORT, or grpc+tls://HOST:PORT
    /// for TLS.
    #[arg(long, default_value_t = format!("grpc://{DEFAULT_LISTEN}"))]
    pub server: String,

    /// PEM CA certificate(s) that signed the server's certificate (a
    /// private CA); without it grpc+tls:// trusts the system's roots.
    /// Also trusted: a server certificate that is itself one of these
    /// (a self-signed certificate, CA:TRUE or not), if it names the host.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate (chain) to present, for a server that asks
    /// for one (serve --tls-client-ca); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How to write the rows: table (aligned text), csv (with a header),
    /// jsonl (one JSON object a line) or parquet (needs --output).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write the rows to this file instead of stdout (required for
    /// parquet). The file appears only once the whole result is written.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,

    /// File whose first line is a bearer token (default: the token in the
    /// environment variable SAGEMAKER_FLIGHT_TOKEN, if set).
    #[arg(long, conflicts_with = "user")]
    pub token_file: Option<PathBuf>,

    /// User for Basic authentication, exchanged for a token by a Flight
    /// SQL Handshake; the password comes from the environment variable
    /// SAGEMAKER_FLIGHT_PASSWORD.
    #[arg(long)]
    pub user: Option<String>,

    /// Seconds to keep retrying until the server answers its health check
    /// (for scripts and containers started together). It bounds all of
    /// connecting: each attempt's connection and health check, and the
    /// --user handshake, end by then. 0: try once, without the health
    /// check, within the 10 s connect timeout.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub wait: u64,

    /// Show the progress line (rows and bytes so far) even when stderr is
    /// not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,

    /// Never show the progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Follow an endless result (`aws.sagemaker_compilation_job_changes`):
    /// print each row as it comes, as JSON lines (or `--format csv`),
    /// flushed line by line, until interrupted. No progress line; to keep
    /// the rows in a file, redirect stdout.
    #[arg(long, conflicts_with = "output")]
    pub follow: bool,
}

/// How often the progress line is redrawn: at most five times a second.
const PROGRESS_REFRESH: Duration = Duration::from_millis(200);

/// Runs `sagemaker-flight query`.
pub async fn run(mut args: QueryArgs) -> Result<(), QueryCliError> {
    // Everything that can be refused without the network is checked first.
    if args.follow {
        args.format = match args.format {
            // The table waits for the end; a feed has none.
            OutputFormat::Table => OutputFormat::Jsonl,
            OutputFormat::Parquet => {
                return Err(QueryCliError::Usage(
                    "--follow prints rows as they come: use --format jsonl or csv, not parquet"
                        .to_owned(),
                ));
            }
            other => other,
        };
        args.quiet = true;
        args.progress = false;
    }
    let destination = output::Destination::of(args.format, args.output.as_deref())?;
    let credentials =
        Credentials::from_options(args.token_file.as_deref(), args.user.as_deref(), |name| {
            std::env::var(name).ok()
        })?;
    let server = ServerUrl::parse(&args.server)?;
    let tls = ClientTls::from_files(
        args.tls_ca.as_deref(),
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
    )?;
    if tls.is_configured() && !server.is_tls() {
        let option = if args.tls_ca.is_some() {
            "--tls-ca"
        } else {
            "--tls-cert"
        };
        return Err(QueryCliError::Usage(format!(
            "{option} is for TLS servers, and {} is plaintext (use grpc+tls://)",
            server.as_str()
        )));
    }
    let connector = Connector::new(tls, credentials);
    let progress = Progress::new(progress::should_show(args.progress, args.quiet));

    let mut home = connector
        .connect_when_ready(&server, Duration::from_secs(args.wait))
        .await?;
    let info = home.execute(&args.sql).await?;
    let sink = if args.follow {
        Sink::open_line_by_line(args.format, destination)?
    } else {
        Sink::open(args.format, destination)?
    };
    let mut reader = ResultReader {
        sink,
        progress,
        announced_schema: announced_schema(&info),
    };
    let read = reader.read_all(&connector, &mut home, info).await;
    reader.progress.finish();
    match read {
        Ok(()) => reader.sink.finish(reader.announced_schema),
        Err(error) => {
            reader.sink.abandon();
            Err(error)
        }
    }
}

/// The result schema the FlightInfo announces, if it decodes (used when
/// no endpoint sends a batch, so empty results still get a header).
fn announced_schema(info: &FlightInfo) -> Option<SchemaRef> {
    info.clone().try_decode_schema().ok().map(Arc::new)
}

/// Reads the endpoints of a FlightInfo into a sink.
struct ResultReader {
    sink: Sink,
    progress: Progress,
    announced_schema: Option<SchemaRef>,
}

impl ResultReader {
    /// Every endpoint of `info`, in order; endpoints with a location are
    /// read from there, through one connection per location, and one
    /// with several from the next when one fails.
    async fn read_all(
        &mut self,
        connector: &Connector,
        home: &mut Connection,
        info: FlightInfo,
    ) -> Result<(), QueryCliError> {
        let mut elsewhere: HashMap<String, Connection> = HashMap::new();
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + PROGRESS_REFRESH,
            PROGRESS_REFRESH,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let endpoint_count = info.endpoint.len();
        for (index, endpoint) in info.endpoint.into_iter().enumerate() {
            let which = format!("endpoint {} of {endpoint_count}", index + 1);
            let ticket = endpoint
                .ticket
                .clone()
                .ok_or_else(|| QueryCliError::Protocol {
                    url: home.url().to_owned(),
                    reason: format!("{which} has no ticket"),
                })?;
            let can_fail_over = endpoint.location.len() > 1;
            let mut tried = HashSet::new();
            loop {
                let connection =
                    connection_for(connector, home, &mut elsewhere, &endpoint, &tried).await?;
                let url = connection.url().to_owned();
                let key = connection.server().uri().to_owned();
                let read = match connection.do_get(ticket.clone()).await {
                    Ok(stream) if can_fail_over => {
                        let mut batches = Vec::new();
                        let read = self
                            .read_stream(&url, stream, &mut ticker, Some(&mut batches))
                            .await;
                        read.and_then(|()| batches.iter().try_for_each(|b| self.write(b)))
                    }
                    Ok(stream) => self.read_stream(&url, stream, &mut ticker, None).await,
                    Err(error) => Err(error),
                };
                match read {
                    Ok(()) => break,
                    Err(error) if can_fail_over && tried.len() + 1 < endpoint.location.len() => {
                        eprintln!("{which}: {error}; reading it from its next location");
                        tried.insert(url);
                        // Its connection may be what failed: a new one next time.
                        elsewhere.remove(&key);
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }

    /// Writes `batch` to the sink, counting its rows.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), QueryCliError> {
        self.progress.add_rows(batch.num_rows() as u64);
        self.sink.write(batch)
    }

    /// One DoGet stream, counting its bytes on the wire for the progress
    /// line; its batches go to `held` if given (written once it has ended),
    /// else to the sink as they come.
    async fn read_stream(
        &mut self,
        url: &str,
        stream: tonic::Streaming<FlightData>,
        ticker: &mut tokio::time::Interval,
        mut held: Option<&mut Vec<RecordBatch>>,
    ) -> Result<(), QueryCliError> {
        let wire_bytes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&wire_bytes);
        let counted = stream.map(move |message| {
            let message = message.map_err(|status| FlightError::Tonic(Box::new(status)))?;
            let size = message.data_header.len() + message.data_body.len();
            counter.fetch_add(size as u64, Ordering::Relaxed);
            Ok(message)
        });
        let mut batches = FlightRecordBatchStream::new_from_flight_data(counted);
        let bytes_before = self.progress.bytes();
        loop {
            tokio::select! {
                next = batches.next() => match next {
                    None => break,
                    Some(Ok(batch)) => {
                        self.progress
                            .set_bytes(bytes_before + wire_bytes.load(Ordering::Relaxed));
                        match held.as_deref_mut() {
                            Some(held) => held.push(batch),
                            None => self.write(&batch)?,
                        }
                    }
                    Some(Err(error)) => return Err(QueryCliError::of_flight(url, error)),
                },
                _ = ticker.tick(), if self.progress.is_shown() => {
                    self.progress
                        .set_bytes(bytes_before + wire_bytes.load(Ordering::Relaxed));
                    self.progress.draw();
                }
            }
        }
        if self.announced_schema.is_none() {
            self.announced_schema = batches.schema().cloned();
        }
        Ok(())
    }
}

/// The connection that serves `endpoint`: `home` when it names no
/// location (or the home server, or asks to reuse the connection), else
/// the first of its locations not `tried` yet that accepts a connection,
/// kept in `elsewhere` for the endpoints after it.
async fn connection_for<'a>(
    connector: &Connector,
    home: &'a mut Connection,
    elsewhere: &'a mut HashMap<String, Connection>,
    endpoint: &FlightEndpoint,
    tried: &HashSet<String>,
) -> Result<&'a mut Connection, QueryCliError> {
    let mut chosen = None;
    let mut last_error = None;
    for location in &endpoint.location {
        let parsed = ServerUrl::parse(&location.uri);
        let is_home = connection::means_same_server(&location.uri)
            || parsed
                .as_ref()
                .is_ok_and(|url| url.uri() == home.server().uri());
        if is_home && tried.contains(home.url()) {
            continue;
        }
        if is_home {
            return Ok(home);
        }
        // A location that is not a URL is one that cannot be connected
        // to: the next one may do.
        let url = match parsed {
            Ok(url) => url,
            Err(error) => {
                last_error = Some(QueryCliError::Protocol {
                    url: home.url().to_owned(),
                    reason: format!("an endpoint's location: {error}"),
                });
                continue;
            }
        };
        let key = url.uri().to_owned();
        if tried.contains(url.as_str()) {
            continue;
        }
        if elsewhere.contains_key(&key) {
            chosen = Some(key);
            break;
        }
        match connector.connect(&url).await {
            Ok(connection) => {
                elsewhere.insert(key.clone(), connection);
                chosen = Some(key);
                break;
            }
            Err(error) => last_error = Some(error),
        }
    }
    match (chosen, last_error) {
        (Some(key), _) => elsewhere
            .get_mut(&key)
            .ok_or_else(|| QueryCliError::Usage(format!("lost the connection to {key}"))),
        (None, Some(error)) => Err(error),
        (None, None) => Ok(home),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_location_that_is_not_a_url_gives_way_to_the_next() {
        // Connecting (anonymously) needs only a socket that accepts.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let home_url = ServerUrl::parse(&format!("grpc://{address}")).expect("url");
        let connector = Connector::new(ClientTls::default(), Credentials::Anonymous);
        let mut home = connector.connect(&home_url).await.expect("connect");
        let mut elsewhere = HashMap::new();

        let endpoint = FlightEndpoint::new()
            .with_location("ftp://nowhere")
            .with_location(home_url.as_str());
        let none = HashSet::new();
        let chosen = connection_for(&connector, &mut home, &mut elsewhere, &endpoint, &none)
            .await
            .expect("the second location");
        assert_eq!(chosen.url(), home_url.as_str());

        // Nothing else to try: the bad location is the error.
        let endpoint = FlightEndpoint::new().with_location("ftp://nowhere");
        let error = connection_for(&connector, &mut home, &mut elsewhere, &endpoint, &none)
            .await
            .expect_err("no usable location");
        assert!(error.to_string().contains("ftp://nowhere"), "{error}");
    }
}
