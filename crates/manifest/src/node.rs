//! The YAML tree: [`Node`]s that remember where they came from and how they
//! were written.
//!
//! Scalars are resolved with the YAML 1.2 core schema, but only when written
//! plain: a quoted scalar is always a string, so `'16'` stays the string "16"
//! and a reader can say so. The text as written is kept beside the value so
//! messages quote what the administrator typed (`1.50`, not `1.5`).

use crate::source::Span;

/// A value in a manifest, with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Where it is.
    pub span: Span,
    /// How the node was written.
    pub style: Style,
    /// For scalars, the source text exactly as written (quotes, tag and anchor
    /// included); empty for maps and lists.
    pub raw: String,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeKind {
    /// `null`, `Null`, `NULL`, `~` or nothing at all, written plain.
    Null,
    /// `true`/`false` (also `True`, `TRUE`, ...), written plain.
    Bool(bool),
    /// A plain decimal (`-12`, `+3`), octal (`0o17`) or hexadecimal (`0x1F`)
    /// integer that fits an `i64`. Larger ones stay strings; readers say why.
    Int(i64),
    /// A plain float (`1.5`, `1e3`, `.inf`, `.nan`).
    Float(f64),
    /// Any quoted or block scalar, and every plain scalar that is none of the above.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// Entries in source order; keys are unique (duplicates are reported and dropped
    /// by the loader).
    Map(Vec<(Key, Node)>),
}

/// A map key. Only scalar keys are accepted; the text is the scalar's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key as written (unquoted).
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// How a node was written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Style {
    /// Without quotes.
    Plain,
    /// In single quotes.
    SingleQuoted,
    /// In double quotes.
    DoubleQuoted,
    /// `|` block scalar.
    Literal,
    /// `>` block scalar.
    Folded,
    /// An indented (block) map or list.
    Block,
    /// A `{...}` or `[...]` map or list.
    Flow,
}

impl Style {
    #[must_use]
    /// Whether it was quoted (so YAML did not read it as a number or boolean).
    pub fn is_quoted(self) -> bool {
        matches!(self, Style::SingleQuoted | Style::DoubleQuoted)
    }
}

/// Longest excerpt of a scalar quoted in a message.
const EXCERPT_CHARS: usize = 40;

impl Node {
    #[must_use]
    /// Whether it is null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    #[must_use]
    /// The text, when it is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    #[must_use]
    /// The entries, when it is a map.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    #[must_use]
    /// The items, when it is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Looks a key up exactly (case-sensitively). Readers that follow Exchange's
    /// case-insensitive names use [`crate::MapReader`] instead.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(_, v)| v)
    }

    /// The type name used in messages: "a string", "a list", ...
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a map",
        }
    }

    /// What the node is, for "expected X, found Y" messages: `the quoted string
    /// '16'`, `the number 1.50`, `a map`, `nothing (an empty value)`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null if self.raw.trim().is_empty() => "nothing (an empty value)".into(),
            NodeKind::Null => "null".into(),
            NodeKind::Bool(b) => format!("the boolean {b}"),
            NodeKind::Int(_) | NodeKind::Float(_) => format!("the number {}", excerpt(&self.raw)),
            NodeKind::Str(s) => match self.style {
                Style::SingleQuoted | Style::DoubleQuoted => {
                    format!("the quoted string '{}'", excerpt(s))
                }
                Style::Literal | Style::Folded => "a block string".into(),
                _ => format!("the string '{}'", excerpt(s)),
            },
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "a map".into(),
        }
    }

    /// The scalar's value as text, for readers that accept numbers where a
    /// string is expected (`Name: 2010`): the text as written, without quotes.
    #[must_use]
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => Some(self.raw.trim()),
            _ => None,
        }
    }
}

/// At most [`EXCERPT_CHARS`] characters of `s` on one line, with an ellipsis if cut.
pub(crate) fn excerpt(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= EXCERPT_CHARS {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(EXCERPT_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
pub(crate) fn resolve_plain(text: &str) -> NodeKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeKind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeKind::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = resolve_int(text) {
        // An integer too large for i64 stays a string: readers then say it is
        // out of range instead of silently losing precision as a float.
        return int.map_or_else(|| NodeKind::Str(text.to_owned()), NodeKind::Int);
    }
    if is_core_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return NodeKind::Float(f);
    }
    NodeKind::Str(text.to_owned())
}

/// `None`: not an integer. `Some(None)`: an integer that does not fit an i64.
fn resolve_int(text: &str) -> Option<Option<i64>> {
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(i64::from_str_radix(hex, 16).ok());
        }
        return None;
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Some(i64::from_str_radix(oct, 8).ok());
        }
        return None;
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `parse` accepts a leading '+' and '-' itself.
    Some(text.parse::<i64>().ok())
}

/// The core schema's float shape:
/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`.
/// Checked by hand because Rust's float parser also accepts `inf`, `NaN`, ...
fn is_core_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text).as_bytes();
    let mut i = 0;
    let int_digits = count_digits(s, &mut i);
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(s, &mut i);
    } else if int_digits == 0 {
        return false;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if count_digits(s, &mut i) == 0 {
            return false;
        }
    }
    i == s.len()
}

fn count_digits(s: &[u8], i: &mut usize) -> usize {
    let start = *i;
    while s.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    *i - start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_resolution() {
        assert_eq!(resolve_plain(""), NodeKind::Null);
        assert_eq!(resolve_plain("~"), NodeKind::Null);
        assert_eq!(resolve_plain("NULL"), NodeKind::Null);
        assert_eq!(resolve_plain("True"), NodeKind::Bool(true));
        assert_eq!(resolve_plain("false"), NodeKind::Bool(false));
        assert_eq!(resolve_plain("-12"), NodeKind::Int(-12));
        assert_eq!(resolve_plain("+7"), NodeKind::Int(7));
        assert_eq!(resolve_plain("012"), NodeKind::Int(12));
        assert_eq!(resolve_plain("0x1F"), NodeKind::Int(31));
        assert_eq!(resolve_plain("0o17"), NodeKind::Int(15));
        assert_eq!(resolve_plain("1.5"), NodeKind::Float(1.5));
        assert_eq!(resolve_plain(".5"), NodeKind::Float(0.5));
        assert_eq!(resolve_plain("1e3"), NodeKind::Float(1000.0));
        assert_eq!(resolve_plain("-.inf"), NodeKind::Float(f64::NEG_INFINITY));
        assert!(matches!(resolve_plain(".nan"), NodeKind::Float(f) if f.is_nan()));
        // YAML 1.1 forms are strings in 1.2.
        for s in [
            "yes", "no", "on", "off", "y", "1_000", "0b101", "00:30:00", "inf", "NaN",
        ] {
            assert_eq!(resolve_plain(s), NodeKind::Str(s.into()), "{s}");
        }
        // Too large for i64: kept as a string.
        assert_eq!(
            resolve_plain("99999999999999999999"),
            NodeKind::Str("99999999999999999999".into())
        );
        for s in [".", "-", "+", "1e", "e3", "0x", "0o8", "1.2.3"] {
            assert!(matches!(resolve_plain(s), NodeKind::Str(_)), "{s}");
        }
    }

    #[test]
    fn excerpt_cuts_long_and_multiline_text() {
        assert_eq!(excerpt("a\nb"), "a b");
        let long = "x".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS);
        assert!(cut.ends_with('…'));
    }
}
