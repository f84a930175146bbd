//! The JSON body of a request, as the operation's input shape.

use serde::de::DeserializeOwned;

use super::error::ApiError;

/// An empty body counts as `{}`; anything that is not the expected JSON
/// object (bad syntax, wrong member types) is a `SerializationException`.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("Unable to parse request body: {e}")))
}
