//! Quoting untrusted text in messages: a short prefix, control characters escaped, and the
//! full length, so an error about a 100 MiB value is still a one-line message.

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
/// escaped (as `{:?}` would), cut to its first [`QUOTED`] characters with the total length
/// after the closing quote when longer: `"xxxx…" (10000 characters)`.
pub fn quote<S: AsRef<str> + ?Sized>(s: &S) -> String {
    let s = s.as_ref();
    match s.char_indices().nth(QUOTED) {
        None => format!("{s:?}"),
        Some((at, _)) => format!("{:?} ({} characters)", format!("{}…", &s[..at]), s.chars().count()),
    }
}

/// Longest line of a message shown to a client or printed ([`clip_lines`]).
pub const MESSAGE_LINE: usize = 1_000;

/// Every line of `s` clipped to `max` characters ([`clip`]): the last guard on a message that
/// may quote untrusted input, keeping the lines of a multi-line list.
pub fn clip_lines(s: &str, max: usize) -> String {
    s.split('\n').map(|line| clip(line, max)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::{clip, clip_lines, quote};

    #[test]
    fn quoted_values_are_short_and_escaped() {
        assert_eq!(quote("a\"b\u{0}"), "\"a\\\"b\\0\"");
        let long = "y".repeat(5_000);
        let q = quote(&long);
        assert!(q.starts_with("\"yyy") && q.ends_with("…\" (5000 characters)") && q.len() < 260, "{q}");
        assert_eq!(clip_lines("ok\nz\u{0}z", 10), "ok\nz\\u{0}z");
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
