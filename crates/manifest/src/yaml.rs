//! Writing YAML by hand: one scalar writer for every place that prints manifest lines
//! (doctor's and capacity's fixes, `exctl show`, `exctl export`).
//!
//! A text is written plain when every YAML reader reads the plain form back as that same
//! text; otherwise single-quoted, or double-quoted with escapes when it holds characters a
//! quoted scalar cannot carry raw (line breaks, control characters, a byte-order mark).
//! "Every reader" means the YAML 1.2 core schema (this crate's [`parse`](crate::parse))
//! and YAML 1.1 readers, which also take `yes`, `no`, `on`, `off`, `y`, `n` for booleans,
//! `0755` for octal, `1:30` for a sexagesimal number and `2010-05-01` for a date. Rather
//! than reproduce each reader's number grammar, a text that starts like a number (a digit,
//! or a sign or `.` before one) is always quoted.

use std::fmt::Write as _;

/// Words a YAML 1.1 or 1.2 reader takes for a boolean or null in any capitalisation
/// (1.2 only knows a few of the spellings; quoting all of them costs nothing).
const SPECIAL_WORDS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
    // YAML 1.1's merge and value keys.
    "<<", "=",
];

/// Characters that start another construct when they start a plain scalar.
const INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`";

/// `s` as a YAML scalar that reads back as exactly `s`, in block and in flow context
/// (inside `[...]`).
pub fn scalar(s: &str) -> String {
    if s.chars().any(needs_escape) {
        return double_quoted(s);
    }
    if plain_ok(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// `s` as a mapping key (`{key(s)}: value`): the same rules as [`scalar`], named apart so
/// that callers say which they write.
pub fn key(s: &str) -> String {
    scalar(s)
}

/// Whether the plain form of `s` reads back as `s` with every reader.
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    !INDICATORS.contains(first)
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        // `: ` ends a key, ` #` starts a comment; older YAML 1.1 readers also refuse a
        // `:` inside a plain scalar in flow context (`[HKLM:\X]`), so any `:` is quoted.
        && !s.contains(':')
        && !s.contains(" #")
        // ` -` reads as a sequence entry to some readers: this crate's refuses `[x -]`
        // (found by the read-back property test).
        && !s.contains(" -")
        && !s.contains([',', '[', ']', '{', '}'])
        // `...` at the start of a line ends the document.
        && !s.starts_with("...")
        && !SPECIAL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
        && !starts_like_number(s)
}

/// A digit, or a sign or `.` before a digit, or `.inf`/`.nan` (any case, any sign): what
/// YAML 1.1 and 1.2 readers may take for an integer, float, sexagesimal number or date.
fn starts_like_number(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let after_dot = unsigned.strip_prefix('.').unwrap_or(unsigned);
    if after_dot.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    let lower = unsigned.to_ascii_lowercase();
    lower == ".inf" || lower == ".nan" || unsigned.is_empty() || unsigned == "."
}

/// Characters YAML does not allow raw in a scalar, or that a reader would change (line
/// breaks, tabs, which readers fold or trim, line separators, a byte-order mark).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// `s` double-quoted, with YAML's escapes for `"`, `\` and the characters of
/// [`needs_escape`].
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeKind, parse_str};
    use proptest::prelude::*;

    /// The value of `v:` in `text`, as the manifest reader reads it.
    fn read_value(text: &str) -> Option<String> {
        let (_, docs, diags) = parse_str("t.yaml", text.to_string());
        if diags.has_errors() {
            return None;
        }
        let map = docs.first()?.root.as_map()?;
        let (_, node) = map.iter().find(|(k, _)| k.text == "v")?;
        match &node.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Seq(items) => items.first()?.as_str().map(str::to_string),
            _ => None,
        }
    }

    /// The first key of `text`.
    fn read_key(text: &str) -> Option<String> {
        let (_, docs, diags) = parse_str("t.yaml", text.to_string());
        if diags.has_errors() {
            return None;
        }
        let map = docs.first()?.root.as_map()?;
        map.first().map(|(k, _)| k.text.clone())
    }

    fn reads_back(s: &str) -> Result<(), TestCaseError> {
        let want = Some(s.to_string());
        let v = scalar(s);
        let block = read_value(&format!("v: {v}\n"));
        prop_assert_eq!(&block, &want, "block: {}", v);
        let flow = read_value(&format!("v: [{v}]\n"));
        prop_assert_eq!(&flow, &want, "flow: {}", v);
        let seq = read_value(&format!("v:\n  - {v}\n"));
        prop_assert_eq!(&seq, &want, "sequence: {}", v);
        let k = key(s);
        let key_read = read_key(&format!("{k}: 1\n"));
        prop_assert_eq!(&key_read, &want, "key: {}", k);
        Ok(())
    }

    /// Strings made of the characters that matter to YAML's plain scalars.
    fn yamlish() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just(" ".to_string()),
            Just(":".to_string()),
            Just("#".to_string()),
            Just("-".to_string()),
            Just(".".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\n".to_string()),
            Just("\t".to_string()),
            Just("0".to_string()),
            Just("7".to_string()),
            Just("x".to_string()),
            Just("e".to_string()),
            Just("inf".to_string()),
            Just("nan".to_string()),
            Just("yes".to_string()),
            Just("No".to_string()),
            Just("null".to_string()),
            Just("~".to_string()),
            Just(",".to_string()),
            Just("[".to_string()),
            Just("}".to_string()),
            Just("&".to_string()),
            Just("*".to_string()),
            Just("!".to_string()),
            Just("|".to_string()),
            Just(">".to_string()),
            Just("%".to_string()),
            Just("@".to_string()),
            Just("`".to_string()),
            Just("?".to_string()),
            Just("\u{feff}".to_string()),
            Just("\u{85}".to_string()),
            Just("\u{a0}".to_string()),
            Just("é".to_string()),
        ];
        prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_string_reads_back(s in any::<String>()) {
            reads_back(&s)?;
        }

        #[test]
        fn yamlish_strings_read_back(s in yamlish()) {
            reads_back(&s)?;
        }
    }

    #[test]
    fn plain_where_every_reader_agrees_quoted_elsewhere() {
        for plain in [
            "svc-imap",
            "EX01",
            "CONTOSO\\svc",
            "a b",
            "a#b",
            "don't",
            "é",
        ] {
            assert_eq!(scalar(plain), plain);
        }
        for (s, want) in [
            ("", "''"),
            ("yes", "'yes'"),
            ("Off", "'Off'"),
            ("y", "'y'"),
            ("NULL", "'NULL'"),
            ("~", "'~'"),
            ("0755", "'0755'"),
            ("0x1F", "'0x1F'"),
            ("1:30", "'1:30'"),
            ("2010-05-01", "'2010-05-01'"),
            ("-1", "'-1'"),
            ("+.5", "'+.5'"),
            (".inf", "'.inf'"),
            ("-.INF", "'-.INF'"),
            (".NaN", "'.NaN'"),
            (" a", "' a'"),
            ("a ", "'a '"),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("x -", "'x -'"),
            ("a:", "'a:'"),
            ("HKLM:\\X", "'HKLM:\\X'"),
            ("-a", "'-a'"),
            ("'a'", "'''a'''"),
            ("@a", "'@a'"),
            ("`a", "'`a'"),
            ("a,b", "'a,b'"),
            ("...", "'...'"),
            ("a\nb", "\"a\\nb\""),
            ("a\tb\\", "\"a\\tb\\\\\""),
            ("\u{feff}", "\"\\ufeff\""),
        ] {
            assert_eq!(scalar(s), want, "{s:?}");
        }
    }
}
