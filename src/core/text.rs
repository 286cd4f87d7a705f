//! Untrusted text: the one rule every door applies to a text field or an id (the JSON API,
//! every CSV import, every geometry import), and quoting such text in messages — a short
//! prefix, control characters escaped and the full length, so an error about a 100 MiB value is
//! still a one-line message.

/// Longest text accepted in any free-text field (a name, a phone, an address, hours...), in
/// characters.
pub const MAX_TEXT: usize = 1000;

/// Longest id accepted (people, blocks, areas, resources), in characters.
pub const MAX_ID: usize = 200;

/// Why a text field or an id was refused. The message says the rule, never the value: it may
/// be personal data, and it is shown to whoever made the request and may be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// More characters than the limit.
    #[error("longer than {max} characters")]
    TooLong {
        /// The limit that was exceeded.
        max: usize,
    },
    /// A control character (U+0000..U+001F, U+007F..U+009F: tabs, line breaks, NUL...).
    #[error("contains control characters (tabs, line breaks or other invisible characters)")]
    Control,
    /// An id that is empty or blank.
    #[error("must not be empty")]
    Empty,
}

/// The rule for a free-text field: trimmed; `None` when blank; refused when longer than
/// [`MAX_TEXT`] characters or holding a control character.
pub fn field_text(value: &str) -> Result<Option<&str>, TextError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    check(v, MAX_TEXT)?;
    Ok(Some(v))
}

/// The rule for an id (of a block, an area, a resource; people add theirs, see
/// [`crate::core::person::check_id`]): trimmed, not empty, at most [`MAX_ID`] characters, no
/// control character.
pub fn id_text(value: &str) -> Result<&str, TextError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(TextError::Empty);
    }
    check(v, MAX_ID)?;
    Ok(v)
}

fn check(v: &str, max: usize) -> Result<(), TextError> {
    // `nth` stops after `max + 1` characters: a 100 MiB value costs no more than a short one.
    if v.chars().nth(max).is_some() {
        return Err(TextError::TooLong { max });
    }
    if v.chars().any(char::is_control) {
        return Err(TextError::Control);
    }
    Ok(())
}

/// `s` cut to its first `max` characters as shown (with `…` and the total length when cut), control
/// characters escaped (`\u{1}`), so it can be quoted in any message or log line.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    // `max` counts what is shown: an escaped control character counts its escape's length.
    let mut shown = 0;
    for c in s.chars() {
        let width = if c.is_control() { c.escape_default().count() } else { 1 };
        if shown + width > max {
            let total = s.chars().count();
            out.push_str(&format!("… ({total} characters)"));
            return out;
        }
        shown += width;
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest prefix of an untrusted value quoted by [`quote`].
pub const QUOTED: usize = 200;

/// `s` as a quoted value for a message: in double quotes with `"`, `\` and control characters
/// escaped (as `{:?}` would), cut to its first [`QUOTED`] characters as shown with the total
/// length after the closing quote when longer: `"xxxx…" (10000 characters)`.
pub fn quote<S: AsRef<str> + ?Sized>(s: &S) -> String {
    let s = s.as_ref();
    let mut out = String::with_capacity(s.len().min(QUOTED) + 32);
    out.push('"');
    // [`QUOTED`] counts what is shown: an escape counts its length, so exotic input cannot make
    // the quote longer than plain text would.
    let mut shown = 0;
    for c in s.chars() {
        let escaped = c.escape_debug();
        if shown + escaped.len() > QUOTED {
            out.push_str(&format!("…\" ({} characters)", s.chars().count()));
            return out;
        }
        shown += escaped.len();
        out.extend(escaped);
    }
    out.push('"');
    out
}

/// Longest line of a message shown to a client or printed ([`clip_lines`]).
pub const MESSAGE_LINE: usize = 1_000;

/// Every line of `s` clipped to `max` characters ([`clip`]): the last guard on a message that
/// may quote untrusted input, keeping the lines of a multi-line list.
pub fn clip_lines(s: &str, max: usize) -> String {
    s.split('\n').map(|line| clip(line, max)).collect::<Vec<_>>().join("\n")
}

/// Most items of a list shown by [`clip_list`].
pub const LISTED: usize = 20;

/// Names from an untrusted file (its field names, a zip's entries) as one line for a message:
/// the first [`LISTED`], each cut by [`clip`] to 100 characters, joined by `, `, and how many
/// there are in all when there are more — a file with 100,000 fields of 1 MiB names still gives a
/// short message.
pub fn clip_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out: Vec<String> = items.iter().take(LISTED).map(|s| clip(s.as_ref(), 100)).collect();
    if items.len() > LISTED {
        out.push(format!("… ({} in all)", items.len()));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_short_and_escaped() {
        assert_eq!(quote("a\"b\u{0}"), "\"a\\\"b\\0\"");
        let long = "y".repeat(5_000);
        let q = quote(&long);
        assert!(q.starts_with("\"yyy") && q.ends_with("…\" (5000 characters)") && q.len() < 260, "{q}");
        assert_eq!(clip_lines("ok\nz\u{0}z", 10), "ok\nz\\u{0}z");
    }

    #[test]
    fn field_text_is_trimmed_limited_and_printable() {
        assert_eq!(field_text("  Ana  "), Ok(Some("Ana")));
        assert_eq!(field_text(" \t "), Ok(None));
        assert_eq!(field_text(&"n".repeat(MAX_TEXT)).map(|v| v.map(str::len)), Ok(Some(MAX_TEXT)));
        assert_eq!(field_text(&"n".repeat(MAX_TEXT + 1)), Err(TextError::TooLong { max: MAX_TEXT }));
        assert_eq!(field_text("555\u{1}0100"), Err(TextError::Control));
        assert_eq!(field_text("a\nb"), Err(TextError::Control));
        assert!(!TextError::Control.to_string().contains('\u{1}'));
    }

    #[test]
    fn ids_are_limited_like_people_ids() {
        assert_eq!(id_text(" 060371 "), Ok("060371"));
        assert_eq!(id_text(" "), Err(TextError::Empty));
        assert_eq!(id_text(&"0".repeat(MAX_ID + 1)), Err(TextError::TooLong { max: MAX_ID }));
        assert_eq!(id_text("06\u{0}37"), Err(TextError::Control));
    }

    #[test]
    fn lists_are_short_whatever_their_items() {
        assert_eq!(clip_list(&["tract", "csa"]), "tract, csa");
        let many: Vec<String> = (0..1_000).map(|i| format!("{i}{}", "f".repeat(10_000))).collect();
        let list = clip_list(&many);
        assert!(list.ends_with("… (1000 in all)") && list.chars().count() < 2_500, "{}", list.len());
    }

    #[test]
    fn short_text_is_kept() {
        assert_eq!(clip("connection refused", 200), "connection refused");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let long = "x".repeat(10_000);
        assert_eq!(clip(&long, 5), "xxxxx… (10000 characters)");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clip("a\u{1}b\nc", 200), "a\\u{1}b\\nc");
    }
}
