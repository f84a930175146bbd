//! Tags: the service model's constraints on them, and merging new tags
//! into a job's.

use super::shapes::Tag;
use super::validate::{Problems, is_tag_text};

/// Checks `tags` against the service model (at most 50, key and value
/// lengths and characters), noting each problem in `p`.
pub(crate) fn check_tags(p: &mut Problems, tags: &[Tag]) {
    if tags.len() > 50 {
        p.other(format!(
            "Value '[...{} tags]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
            tags.len()
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        let at_key = format!("tags.{}.member.key", i + 1);
        let at_value = format!("tags.{}.member.value", i + 1);
        if p.length(&at_key, &t.key, 1, 128) {
            p.pattern(
                &at_key,
                &t.key,
                is_tag_text(&t.key),
                "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$",
            );
        }
        if p.length(&at_value, &t.value, 0, 256) {
            p.pattern(
                &at_value,
                &t.value,
                is_tag_text(&t.value),
                "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$",
            );
        }
    }
}

/// Adds or overwrites: an existing key keeps its position, new keys append.
pub(crate) fn merge_tags(into: &mut Vec<Tag>, tags: &[Tag]) {
    for t in tags {
        match into.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value.clone_from(&t.value),
            None => into.push(t.clone()),
        }
    }
}
