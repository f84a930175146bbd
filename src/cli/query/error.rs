//! Why `query` failed, each reason one line.

use arrow_flight::error::FlightError;
use tonic::Code;

/// Why `query` failed. Each displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum QueryCliError {
    /// Options that do not fit together, or a file they name that cannot
    /// be read.
    #[error("{0}")]
    Usage(String),
    /// The server, or an endpoint's location, cannot be reached.
    #[error("cannot connect to {url}: {reason}")]
    Unreachable {
        /// The address as given.
        url: String,
        /// What went wrong, from the transport.
        reason: String,
    },
    /// The URL's scheme does not match what the server speaks (TLS or
    /// plaintext): final, however long `--wait` is.
    #[error("cannot connect to {url}: {reason}")]
    WrongScheme {
        /// The address as given.
        url: String,
        /// Which scheme the server wants, and the transport's error.
        reason: String,
    },
    /// The server answered a call with an error status.
    #[error("{}", refusal_message(call, url, *code, message))]
    Refused {
        /// The call: "query", "handshake", "reading the result", ...
        call: &'static str,
        /// The server that answered.
        url: String,
        /// The gRPC status code.
        code: Code,
        /// The server's message.
        message: String,
    },
    /// The answer could not be understood (not a Flight SQL server?).
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The server that answered.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The rows could not be written.
    #[error("cannot write the result to {target}: {reason}")]
    Output {
        /// stdout or the file.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl QueryCliError {
    /// `status` of `call` to `url` as an error, its message on one line.
    pub fn refused(call: &'static str, url: &str, status: &tonic::Status) -> QueryCliError {
        QueryCliError::Refused {
            call,
            url: url.to_owned(),
            code: status.code(),
            message: one_line(status.message()),
        }
    }

    /// The error of reading a decoded Flight stream from `url`.
    pub(super) fn of_flight(url: &str, error: FlightError) -> QueryCliError {
        match error {
            FlightError::Tonic(status) => {
                QueryCliError::refused("reading the result", url, &status)
            }
            other => QueryCliError::Protocol {
                url: url.to_owned(),
                reason: one_line(&other.to_string()),
            },
        }
    }
}

fn refusal_message(call: &str, url: &str, code: Code, message: &str) -> String {
    let hint = match code {
        // The server's own AWS credentials are missing: not ours to give.
        Code::Unauthenticated if message.contains("AWS credentials") => "",
        Code::Unauthenticated => {
            " (give --token-file, SAGEMAKER_FLIGHT_TOKEN, or --user with SAGEMAKER_FLIGHT_PASSWORD)"
        }
        _ => "",
    };
    format!(
        "{call} failed at {url}: {}: {message}{hint}",
        sagemaker_flight::obs::grpc_metrics::grpc_code_name(code)
    )
}

/// `text` with its lines joined by spaces, so an error stays one line.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
