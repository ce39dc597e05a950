//! Text from outside (requests, the database) made inert where people read
//! it: a terminal (`latch` output, logs) or a page. Control characters would
//! forge lines or send the terminal commands; unbounded text would bury the
//! rest.

use std::borrow::Cow;
use std::fmt::Write;

/// The most characters of client-chosen free text (a username that failed
/// to sign in, a user agent, an event's detail) the audit trail keeps.
pub const MAX_RECORDED_CHARS: usize = 256;

/// Whether `c` must not reach a reader as itself: C0 and C1 controls, DEL,
/// and the bidirectional overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069) that make text display in another order than it reads.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written as a Rust escape (`\n`, `\0`,
/// `\u{1b}`), so one value stays on one line and sends a terminal nothing.
/// Borrowed when there is nothing to escape.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(escaped, "{}", c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// At most `max` characters of `text`; cut text ends in `…` (counted in
/// `max`).
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let kept: String = text.chars().take(max.saturating_sub(1)).collect();
            Cow::Owned(kept + "…")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("ada"), "ada");
        assert!(matches!(printable("ünïcode ✓ \\n"), Cow::Borrowed(_)));
        assert_eq!(printable("a\nb\0c\u{1b}[31m\u{9b}\u{202e}\t"), "a\\nb\\0c\\u{1b}[31m\\u{9b}\\u{202e}\\t");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "ab…");
        assert_eq!(bounded(&"é".repeat(10), 4), "ééé…");
        assert_eq!(bounded(&"x".repeat(1000), MAX_RECORDED_CHARS).chars().count(), MAX_RECORDED_CHARS);
    }
}
