//! Opaque pagination tokens and the sort key they carry.
//!
//! A token is `hex(payload) + hex(checksum)`: opaque to clients, and any
//! edit makes the checksum fail, so garbage is rejected as a
//! `ValidationException` instead of being misread as a position.

use super::error::ApiError;

/// FNV-1a: a stable, dependency-free hash for token checksums and
/// request fingerprints (not security: tokens only need to be opaque and
/// to reject garbage).
pub(crate) fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `hex(payload) + hex(checksum)`: opaque to clients, and any edit makes the
/// checksum fail.
pub(crate) fn seal(payload: &str) -> String {
    let mut out: String = payload.bytes().map(|b| format!("{b:02x}")).collect();
    out.push_str(&format!(
        "{:016x}",
        fnv(payload.as_bytes()) ^ 0x5A6E_0F1C_E5E5_7A7E
    ));
    out
}

pub(crate) fn unseal(token: &str) -> Option<String> {
    if token.len() < 16 || !token.is_ascii() || !token.len().is_multiple_of(2) {
        return None;
    }
    let (body, sum) = token.split_at(token.len() - 16);
    let bytes: Option<Vec<u8>> = (0..body.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&body[i..i + 2], 16).ok())
        .collect();
    let payload = String::from_utf8(bytes?).ok()?;
    let expected = fnv(payload.as_bytes()) ^ 0x5A6E_0F1C_E5E5_7A7E;
    (u64::from_str_radix(sum, 16).ok()? == expected).then_some(payload)
}

pub(crate) fn invalid_token() -> ApiError {
    ApiError::validation("Invalid pagination token")
}

/// The sort key of one job; a request only ever holds one variant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortKey {
    Time(i64),
    Text(String),
}

impl SortKey {
    pub(crate) fn encode(&self) -> String {
        match self {
            SortKey::Time(ms) => format!("t{ms}"),
            SortKey::Text(s) => format!("s{s}"),
        }
    }

    pub(crate) fn decode(s: &str) -> Option<Self> {
        match s.split_at_checked(1)? {
            ("t", ms) => ms.parse().ok().map(SortKey::Time),
            ("s", text) => Some(SortKey::Text(text.to_string())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let t = seal("L1|abc|t5|name");
        assert_eq!(unseal(&t).as_deref(), Some("L1|abc|t5|name"));
        let mut bad = t.clone();
        bad.replace_range(0..2, "4d");
        assert_eq!(unseal(&bad), None);
        assert_eq!(unseal("not-a-token"), None);
        assert_eq!(unseal("zz"), None);
    }
}
