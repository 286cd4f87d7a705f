//! Quoting untrusted text in messages: a short prefix, control characters escaped, and the
//! full length, so an error about a 100 MiB value is still a one-line message.

/// `s` cut to its first `max` characters (with `…` and the total length when cut), control
/// characters escaped (`\u{1}`), so it can be quoted in any message or log line.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    for (taken, c) in s.chars().enumerate() {
        if taken == max {
            let total = s.chars().count();
            out.push_str(&format!("… ({total} characters)"));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clip;

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
