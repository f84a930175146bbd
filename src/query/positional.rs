//! Positional `?` parameters: JDBC's PreparedStatement has no other kind,
//! and it is ADBC's DB-API default, but DataFusion plans `$1`, `$2`, ...
//! only. So the `?`s of a statement are numbered in the order they appear,
//! found among the SQL's tokens: a `?` inside a string literal, a quoted
//! identifier or a comment is not a placeholder and stays as it is.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

use crate::query::error::QueryError;

/// `sql` with each placeholder `?` replaced by `$1`, `$2`, ... in order; as
/// it is if it has none. A statement with both `?` and `$n` placeholders is
/// refused: which `?` would `$1` be?
pub fn number_positional_parameters(sql: &str) -> Result<String, QueryError> {
    // A statement without a `?` anywhere needs no tokenizing.
    if !sql.contains('?') {
        return Ok(sql.to_owned());
    }
    let tokens = match Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() {
        Ok(tokens) => tokens,
        // The parser reports it, with the same message, when it plans.
        Err(_) => return Ok(sql.to_owned()),
    };
    let mut positional = Vec::new();
    let mut numbered = false;
    for token in &tokens {
        if let Token::Placeholder(text) = &token.token {
            if text == "?" {
                positional.push(token.span.start);
            } else if text.starts_with('$') {
                numbered = true;
            }
        }
    }
    if positional.is_empty() {
        return Ok(sql.to_owned());
    }
    if numbered {
        return Err(QueryError::Parameters(
            "the statement mixes ? and $n placeholders: use one kind".to_owned(),
        ));
    }
    let offsets = byte_offsets(sql, &positional)?;
    let mut rewritten = String::with_capacity(sql.len() + 2 * offsets.len());
    let mut copied = 0;
    for (index, offset) in offsets.into_iter().enumerate() {
        rewritten.push_str(&sql[copied..offset]);
        rewritten.push('$');
        rewritten.push_str(&(index + 1).to_string());
        // Past the `?` (one byte).
        copied = offset + 1;
    }
    rewritten.push_str(&sql[copied..]);
    Ok(rewritten)
}

/// The byte offset in `sql` of each of `locations` (1-based line and
/// character column, in the order they appear).
fn byte_offsets(sql: &str, locations: &[Location]) -> Result<Vec<usize>, QueryError> {
    let mut offsets = Vec::with_capacity(locations.len());
    let mut wanted = locations.iter().peekable();
    let (mut line, mut column) = (1, 1);
    for (offset, character) in sql.char_indices() {
        while let Some(location) = wanted.peek() {
            if (location.line, location.column) == (line, column) {
                offsets.push(offset);
                wanted.next();
            } else {
                break;
            }
        }
        if wanted.peek().is_none() {
            break;
        }
        if character == '\n' {
            (line, column) = (line + 1, 1);
        } else {
            column += 1;
        }
    }
    let found = offsets.len() == locations.len()
        && offsets
            .iter()
            .all(|&offset| sql.as_bytes().get(offset) == Some(&b'?'));
    if found {
        Ok(offsets)
    } else {
        Err(QueryError::Parameters(
            "could not place the statement's ? placeholders".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(sql: &str) -> String {
        number_positional_parameters(sql).expect("rewritten")
    }

    #[test]
    fn question_marks_are_numbered_in_order() {
        assert_eq!(
            numbered("SELECT * FROM t WHERE a = ? AND b IN (?, ?)"),
            "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(numbered("SELECT ?"), "SELECT $1");
    }

    #[test]
    fn a_question_mark_in_a_string_identifier_or_comment_stays() {
        let sql = "SELECT 'why?', \"col?\" -- who?\n FROM t /* ? */ WHERE a = ?";
        assert_eq!(
            numbered(sql),
            "SELECT 'why?', \"col?\" -- who?\n FROM t /* ? */ WHERE a = $1"
        );
        assert_eq!(numbered("SELECT 'a?b'"), "SELECT 'a?b'");
    }

    #[test]
    fn lines_and_wide_characters_before_a_placeholder_are_counted() {
        assert_eq!(
            numbered("SELECT 'é€'\nFROM t\nWHERE a = ?\n  AND b = ?"),
            "SELECT 'é€'\nFROM t\nWHERE a = $1\n  AND b = $2"
        );
    }

    #[test]
    fn numbered_placeholders_alone_are_left_alone_and_mixing_is_refused() {
        assert_eq!(numbered("SELECT $1, '?'"), "SELECT $1, '?'");
        let mixed = number_positional_parameters("SELECT $1 WHERE a = ?");
        assert!(
            matches!(&mixed, Err(QueryError::Parameters(message)) if message.contains("mixes")),
            "{mixed:?}"
        );
    }

    /// One piece of generated SQL: text (with `?`s that are not
    /// placeholders: in strings, quoted names, comments) or a placeholder.
    #[derive(Clone, Debug)]
    enum Piece {
        Text(String),
        Placeholder,
    }

    fn piece() -> impl proptest::strategy::Strategy<Value = Piece> {
        use proptest::prelude::*;
        let inner = "[a-z é?]{0,6}";
        prop_oneof![
            "[a-z_][a-z0-9_]{0,6}".prop_map(Piece::Text),
            inner.prop_map(|text| Piece::Text(format!("'{text}'"))),
            "[a-z é?]{1,6}".prop_map(|text| Piece::Text(format!("\"{text}\""))),
            inner.prop_map(|text| Piece::Text(format!("-- {text}\n"))),
            inner.prop_map(|text| Piece::Text(format!("/* {text} */"))),
            prop_oneof![Just("="), Just(","), Just("("), Just(")"), Just("+")]
                .prop_map(|op| Piece::Text(op.to_owned())),
            Just(Piece::Placeholder),
        ]
    }

    /// The SQL as written, and as it reads with its placeholders numbered.
    fn written_and_numbered(pieces: &[Piece]) -> (String, String) {
        let mut written = vec!["SELECT".to_owned()];
        let mut numbered = written.clone();
        let mut next = 0;
        for piece in pieces {
            match piece {
                Piece::Text(text) => {
                    written.push(text.clone());
                    numbered.push(text.clone());
                }
                Piece::Placeholder => {
                    next += 1;
                    written.push("?".to_owned());
                    numbered.push(format!("${next}"));
                }
            }
        }
        (written.join(" "), numbered.join(" "))
    }

    proptest::proptest! {
        #[test]
        fn every_placeholder_and_only_those_is_numbered_whatever_surrounds_it(
            pieces in proptest::collection::vec(piece(), 0..16)
        ) {
            let (written, expected) = written_and_numbered(&pieces);
            proptest::prop_assert_eq!(numbered(&written), expected);
        }

        #[test]
        fn a_dollar_placeholder_among_question_marks_is_refused(
            pieces in proptest::collection::vec(piece(), 0..12),
            at in 0usize..13,
        ) {
            let mut pieces = pieces;
            pieces.push(Piece::Placeholder);
            let at = at.min(pieces.len());
            pieces.insert(at, Piece::Text("$1".to_owned()));
            let (written, _) = written_and_numbered(&pieces);
            let refused = matches!(
                number_positional_parameters(&written),
                Err(QueryError::Parameters(_))
            );
            proptest::prop_assert!(refused, "{}", written);
        }
    }
}
