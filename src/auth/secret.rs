//! Secrets: values whose `Debug` never shows them, and the token lists
//! they are read from.

/// A secret whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Tokens in a token file: one a line, blank lines and `#` comments ignored.
pub fn parse_token_file(text: &str) -> Vec<Secret> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(Secret::new)
        .collect()
}

/// Tokens in `SAGEMAKER_FLIGHT_AUTH_TOKENS`: comma-separated, blanks ignored.
pub fn parse_token_list(text: &str) -> Vec<Secret> {
    text.split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(Secret::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_and_lists() {
        let tokens = parse_token_file("# comment\n\n  one  \ntwo\n   # indented comment\n");
        assert_eq!(tokens, vec![Secret::new("one"), Secret::new("two")]);
        assert_eq!(
            parse_token_list(" a, ,b,"),
            vec![Secret::new("a"), Secret::new("b")]
        );
    }
}
