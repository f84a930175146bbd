//! Naming the mistake when `query`'s scheme does not match the server:
//! `grpc://` against a TLS listener, or `grpc+tls://` against a plaintext
//! one. The transport alone says only "h2 protocol error" or "connection
//! reset by peer", which does not point at the URL.
//!
//! A failure whose error chain looks like such a mismatch (an HTTP/2
//! protocol error, a connection reset or closed early, a record that is
//! not TLS) is confirmed by a probe before anything is said: a new TCP
//! connection sends the HTTP/2 client preface and reads the first bytes
//! of the answer. A plaintext HTTP/2 server answers with its SETTINGS
//! frame; a TLS server reads the preface as a broken TLS record and
//! answers with a TLS alert (or handshake) record. Anything else, or no
//! answer within [`PROBE_TIMEOUT`], leaves the original error as it is.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server_url::ServerUrl;

/// How long the probe of a failed connection may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP/2 client connection preface and an empty SETTINGS frame.
const HTTP2_PREFACE: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Texts (lower case) in an error chain that may mean the scheme does not
/// match the server: worth a probe.
const MISMATCH_MARKS: &[&str] = &[
    "h2 protocol error",
    "http2 error",
    "frame with invalid size",
    "connection reset",
    "connection closed",
    "broken pipe",
    "unexpected end of file",
    "tls handshake eof",
    "invalidcontenttype",
    "corrupt message",
];

/// What the server at an address speaks, as the probe saw it.
#[derive(Debug, PartialEq, Eq)]
enum Spoken {
    Tls,
    PlaintextHttp2,
}

/// What to tell the user when an error whose text (and its sources') is
/// `chain`, met while connecting to (or calling) `url`, comes from a
/// scheme that does not match the server; `None` when it does not (or
/// the probe cannot tell).
pub async fn explain(url: &ServerUrl, chain: &str) -> Option<String> {
    let lower = chain.to_ascii_lowercase();
    if !MISMATCH_MARKS.iter().any(|mark| lower.contains(mark)) {
        return None;
    }
    let spoken = tokio::time::timeout(PROBE_TIMEOUT, probe(url.authority()))
        .await
        .ok()
        .flatten()?;
    match (url.is_tls(), spoken) {
        (false, Spoken::Tls) => Some(format!(
            "the server at {} speaks TLS; use {} ({chain})",
            url.authority(),
            url.with_scheme("grpc+tls")
        )),
        (true, Spoken::PlaintextHttp2) => Some(format!(
            "the server at {} is plaintext (no TLS); use {} ({chain})",
            url.authority(),
            url.with_scheme("grpc")
        )),
        _ => None,
    }
}

/// Sends the HTTP/2 preface to `authority` and tells from the first
/// bytes of the answer what the server speaks.
async fn probe(authority: &str) -> Option<Spoken> {
    let mut stream = TcpStream::connect(authority).await.ok()?;
    stream.write_all(HTTP2_PREFACE).await.ok()?;
    let mut answer = [0u8; 9];
    let mut read = 0;
    // Bounded: at most 9 reads of at least one byte each.
    while read < answer.len() {
        match stream.read(&mut answer[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
        if let Some(spoken) = spoken_by(&answer[..read]) {
            return Some(spoken);
        }
    }
    spoken_by(&answer[..read])
}

/// What a server that answered the preface with `answer` speaks, once
/// enough of it has arrived to tell.
fn spoken_by(answer: &[u8]) -> Option<Spoken> {
    const TLS_ALERT: u8 = 0x15;
    const TLS_HANDSHAKE: u8 = 0x16;
    const TLS_MAJOR_VERSION: u8 = 0x03;
    const HTTP2_SETTINGS: u8 = 0x04;
    match answer {
        [TLS_ALERT | TLS_HANDSHAKE, TLS_MAJOR_VERSION, ..] => Some(Spoken::Tls),
        // A frame header: 3 bytes of length, then the type.
        [_, _, _, HTTP2_SETTINGS, ..] if answer.len() == 9 => Some(Spoken::PlaintextHttp2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_of_the_answer_tell_tls_from_http2() {
        // rustls' answer to a preface: a decode_error alert.
        assert_eq!(
            spoken_by(b"\x15\x03\x03\x00\x02\x02\x32"),
            Some(Spoken::Tls)
        );
        // hyper's: its SETTINGS frame.
        assert_eq!(
            spoken_by(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00"),
            Some(Spoken::PlaintextHttp2)
        );
        assert_eq!(spoken_by(b"\x00\x00\x12"), None);
        assert_eq!(spoken_by(b"HTTP/1.1 400 Bad Request\r\n"), None);
        assert_eq!(spoken_by(b""), None);
    }
}
