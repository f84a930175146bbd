//! `application/x-www-form-urlencoded` decoding: the bodies of STS's query
//! protocol and the query strings of the test endpoints. The crate has no
//! form dependency (axum's `form` feature is off), and this is small.

/// The `name=value` pairs of `text` in order, percent escapes and `+`
/// decoded. Empty segments (`a=1&&b=2`) are skipped; a name without `=`
/// has an empty value. Fails on a bad escape or on bytes that do not
/// decode to UTF-8.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    text.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            Ok((unescape(name)?, unescape(value)?))
        })
        .collect()
}

/// The value of the first pair named `name`.
pub(crate) fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn unescape(text: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next(), bytes.next()];
                let digit = |d: Option<u8>| d.and_then(|d| char::from(d).to_digit(16));
                match (digit(hex[0]), digit(hex[1])) {
                    // Two hex digits make a value below 256.
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err("a '%' escape is not followed by two hex digits".into()),
                }
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| "the text is not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs_escapes_and_plus() {
        let pairs =
            decode(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&Name=a+b&&Flag")
                .expect("valid");
        assert_eq!(value(&pairs, "Action"), Some("AssumeRole"));
        assert_eq!(value(&pairs, "RoleArn"), Some("arn:aws:iam::1:role/r"));
        assert_eq!(value(&pairs, "Name"), Some("a b"));
        assert_eq!(value(&pairs, "Flag"), Some(""));
        assert_eq!(value(&pairs, "Missing"), None);
        assert!(decode(b"").expect("empty").is_empty());
    }

    #[test]
    fn rejects_bad_escapes_and_non_utf8() {
        assert!(decode(b"a=%4").is_err());
        assert!(decode(b"a=%zz").is_err());
        assert!(decode(b"a=%ff%fe").is_err());
    }
}
