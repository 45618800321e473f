//! Turning [`Diagnostics`] into text: the rustc-style report for people
//! ([`render`]), one line per problem for CI logs ([`render_short`]), and JSON
//! for machines ([`render_json`]).
//!
//! The report reads the same with and without colour; the caller decides on
//! colour (not a terminal, or `NO_COLOR` set: pass `false`). Rendering never
//! fails: a span that does not fit its file just loses its snippet.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::source::{SourceFile, SourceMap, Span};

/// Characters that would let manifest text steer a terminal or hide what a
/// line says: control characters (ANSI escapes, line breaks) and bidi overrides.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text from a manifest (in messages, labels, hints, paths) made safe to
/// print: unsafe characters are written as escapes such as `\u{1b}`.
fn clean(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if is_unsafe(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn severity(&self, sev: Severity, text: &str) -> String {
        match sev {
            Severity::Error => self.paint("1;31", text),
            Severity::Warning => self.paint("1;33", text),
        }
    }
    fn gutter(&self, text: &str) -> String {
        self.paint("1;34", text)
    }
    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// Renders every diagnostic in the order given (call [`Diagnostics::sort`]
/// first for file order), separated by blank lines.
#[must_use]
pub fn render(sources: &SourceMap, diags: &Diagnostics, color: bool) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&render_one(sources, d, color));
    }
    out
}

/// Renders one diagnostic:
///
/// ```text
/// error[manifest::unknown-key]: unknown key 'MaxConnectionPerUser' in imap_settings
///   --> manifests/sites/lon.yaml:12:5
///    |
/// 12 |     MaxConnectionPerUser: 40
///    |     ^^^^^^^^^^^^^^^^^^^^ not a Set-ImapSettings parameter
///    |
///    = hint: did you mean 'MaxConnectionsPerUser'?
/// ```
#[must_use]
pub fn render_one(sources: &SourceMap, d: &Diagnostic, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let head = format!("{}[{}]", d.severity.as_str(), d.code);
    let _ = writeln!(
        out,
        "{}{}",
        st.severity(d.severity, &head),
        st.bold(&format!(": {}", clean(&d.message)))
    );
    let Some(span) = d.span else {
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  {} hint: {}", st.gutter("="), clean(hint));
        }
        return out;
    };
    // Gutter width: the widest line number shown.
    let mut width = digits(span.start.line);
    if d.show_source {
        for (s, _) in &d.related {
            width = width.max(digits(s.start.line));
        }
    }
    let pad = " ".repeat(width);
    let _ = writeln!(
        out,
        "{pad}{} {}",
        st.gutter("-->"),
        location(sources, &span)
    );
    let bar = st.gutter("|");
    if d.show_source {
        if let Some(file) = sources.get(span.file) {
            let _ = writeln!(out, "{pad} {bar}");
            snippet(
                &mut out,
                &st,
                file,
                &span,
                '^',
                d.label.as_deref(),
                width,
                d.severity,
            );
        }
        for (rel, label) in &d.related {
            let Some(file) = sources.get(rel.file) else {
                continue;
            };
            if rel.file == span.file {
                let _ = writeln!(out, "{pad} {bar}");
            } else {
                let _ = writeln!(out, "{pad}{} {}", st.gutter(":::"), location(sources, rel));
                let _ = writeln!(out, "{pad} {bar}");
            }
            snippet(
                &mut out,
                &st,
                file,
                rel,
                '-',
                Some(label),
                width,
                d.severity,
            );
        }
    } else {
        for (rel, label) in &d.related {
            let _ = writeln!(
                out,
                "{pad}{} {}: {label}",
                st.gutter(":::"),
                location(sources, rel)
            );
        }
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{pad} {bar}");
        let _ = writeln!(
            out,
            "{pad} {} {}: {}",
            st.gutter("="),
            st.bold("hint"),
            clean(hint)
        );
    }
    out
}

/// `path:line:col` of a span's start.
fn location(sources: &SourceMap, span: &Span) -> String {
    format!(
        "{}:{}:{}",
        clean(&sources.path(span.file).display().to_string()),
        span.start.line,
        span.start.column
    )
}

fn digits(n: u32) -> usize {
    n.to_string().len()
}

/// One source line with its underline. A span running over several lines is
/// underlined to the end of its first line.
#[allow(clippy::too_many_arguments)]
fn snippet(
    out: &mut String,
    st: &Style,
    file: &SourceFile,
    span: &Span,
    mark: char,
    label: Option<&str>,
    width: usize,
    severity: Severity,
) {
    let (line, line_start) = file.line_at(span.start.offset);
    // Shown 1:1 by characters so the underline lines up; control characters
    // (tabs included) become spaces.
    let shown: String = line
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect();
    let start_in_line = span.start.offset.saturating_sub(line_start).min(line.len());
    let before = line.get(..start_in_line).unwrap_or(line);
    let indent = before.chars().count();
    let end_in_line = span
        .end
        .offset
        .saturating_sub(line_start)
        .min(line.len())
        .max(start_in_line);
    let marked = line
        .get(start_in_line..end_in_line)
        .map_or(0, |s| s.chars().count())
        .max(1);
    let bar = st.gutter("|");
    let number = st.gutter(&format!("{:>width$}", span.start.line));
    let _ = writeln!(out, "{number} {bar} {}", shown.trim_end());
    let marks: String = std::iter::repeat_n(mark, marked).collect();
    let marks = if mark == '^' {
        st.severity(severity, &marks)
    } else {
        st.gutter(&marks)
    };
    let label = label.map(|l| format!(" {}", clean(l))).unwrap_or_default();
    let label = if mark == '^' {
        st.severity(severity, &label)
    } else {
        st.gutter(&label)
    };
    let _ = writeln!(
        out,
        "{} {bar} {}{marks}{label}",
        " ".repeat(width),
        " ".repeat(indent)
    );
}

/// One line per diagnostic, `path:line:col: error[code]: message`, for CI logs
/// and editors' problem matchers. Diagnostics without a location start with
/// the severity.
#[must_use]
pub fn render_short(sources: &SourceMap, diags: &Diagnostics) -> String {
    let mut out = String::new();
    for d in diags {
        if let Some(span) = &d.span {
            let _ = write!(out, "{}: ", location(sources, span));
        }
        let _ = writeln!(
            out,
            "{}[{}]: {}",
            d.severity.as_str(),
            d.code,
            clean(&d.message)
        );
    }
    out
}

/// The diagnostics as a JSON array, for machine output. Each element has
/// `severity`, `code`, `message`, `file`/`line`/`column`/`end_line`/`end_column`
/// (null without a location), `label`, `hint` and `related` (a list of
/// `{file, line, column, label}`). Source text is never included.
#[must_use]
pub fn render_json(sources: &SourceMap, diags: &Diagnostics) -> Value {
    let items: Vec<Value> = diags
        .iter()
        .map(|d| {
            let (file, line, column, end_line, end_column) = match &d.span {
                Some(s) => (
                    json!(sources.path(s.file).display().to_string()),
                    json!(s.start.line),
                    json!(s.start.column),
                    json!(s.end.line),
                    json!(s.end.column),
                ),
                None => (
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ),
            };
            let related: Vec<Value> = d
                .related
                .iter()
                .map(|(s, label)| {
                    json!({
                        "file": sources.path(s.file).display().to_string(),
                        "line": s.start.line,
                        "column": s.start.column,
                        "label": label,
                    })
                })
                .collect();
            json!({
                "severity": d.severity.as_str(),
                "code": d.code,
                "message": d.message,
                "file": file,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "label": d.label,
                "hint": d.hint,
                "related": related,
            })
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;
    use crate::reader::MapReader;

    /// The example from the design brief, byte for byte.
    #[test]
    fn renders_like_rustc_without_colour() {
        let text = "\
# London site
site: lon
resources:
  imap_settings:
    MaxConnections: 2000
    MaxConnectionsPerUser: 40
    Banner: hello
    ProtocolLogEnabled: true
    LoginType: SecureLogin
    X509CertificateName: mail.example.com
    MaxCommandSize: 1024
    MaxConnectionPerUser: 40
";
        let (sources, docs, mut diags) = parse_str("manifests/sites/lon.yaml", text);
        let imap = docs[0]
            .root
            .get("resources")
            .unwrap()
            .get("imap_settings")
            .unwrap();
        let m = MapReader::new(imap, "imap_settings", &mut diags)
            .unwrap()
            .with_unknown_label("not a Set-ImapSettings parameter");
        m.finish_with_known(&[
            "MaxConnections",
            "MaxConnectionsPerUser",
            "Banner",
            "ProtocolLogEnabled",
            "LoginType",
            "X509CertificateName",
            "MaxCommandSize",
        ]);
        assert_eq!(diags.len(), 8);
        let last: Diagnostics = diags.iter().skip(7).cloned().collect();
        let expected = "\
error[manifest::unknown-key]: unknown key 'MaxConnectionPerUser' in imap_settings
  --> manifests/sites/lon.yaml:12:5
   |
12 |     MaxConnectionPerUser: 40
   |     ^^^^^^^^^^^^^^^^^^^^ not a Set-ImapSettings parameter
   |
   = hint: did you mean 'MaxConnectionsPerUser'?
";
        assert_eq!(render(&sources, &last, false), expected);
        assert_eq!(
            render_short(&sources, &last),
            "manifests/sites/lon.yaml:12:5: error[manifest::unknown-key]: unknown key 'MaxConnectionPerUser' in imap_settings\n"
        );
    }

    #[test]
    fn related_spans_and_narrow_gutters() {
        let (sources, _, diags) = parse_str("d.yaml", "a: 1\nb: 2\na: 3\n");
        let expected = "\
error[manifest::duplicate-key]: duplicate key 'a' in this map
 --> d.yaml:3:1
  |
3 | a: 3
  | ^ defined again here
  |
1 | a: 1
  | - first defined here
  |
  = hint: a key may appear once in a map; keep one of them
";
        assert_eq!(render(&sources, &diags, false), expected);
    }

    #[test]
    fn colour_wraps_parts_in_ansi_codes_and_plain_text_has_none() {
        let (sources, _, diags) = parse_str("d.yaml", "a: 1\na: 3\n");
        let coloured = render(&sources, &diags, true);
        assert!(coloured.contains("\x1b[1;31merror[manifest::duplicate-key]\x1b[0m"));
        let stripped = strip_ansi(&coloured);
        assert_eq!(stripped, render(&sources, &diags, false));
        assert!(!render(&sources, &diags, false).contains('\x1b'));
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn secrets_are_not_shown_and_unlocated_diagnostics_render() {
        let (sources, docs, mut diags) = parse_str("inv.yaml", "password: hunter2\n");
        crate::secret::check_secrets(&docs[0].root, &mut diags);
        diags.push(
            Diagnostic::error("manifest::io", "cannot read x.yaml: not found")
                .with_hint("check the path"),
        );
        let out = render(&sources, &diags, false);
        assert!(!out.contains("hunter2"), "{out}");
        assert_eq!(
            out,
            "\
error[manifest::secret-in-clear]: password: a password in clear is refused; use `keyring:NAME` or `env:VAR`
 --> inv.yaml:1:11
  |
  = hint: use `keyring:NAME` (OS keyring) or `env:VAR` (environment variable)

error[manifest::io]: cannot read x.yaml: not found
  = hint: check the path
"
        );
    }

    #[test]
    fn multibyte_and_multiline_spans_underline_the_first_line() {
        let (sources, docs, mut diags) = parse_str("u.yaml", "é: {x: 1,\n  y: 2}\nk: 'ü'\n");
        let root = &docs[0].root;
        let mut m = MapReader::new(root, "", &mut diags).unwrap();
        let _ = m.int("é");
        let _ = m.int("k");
        m.finish();
        let out = render(&sources, &diags, false);
        let expected = "\
error[manifest::wrong-type]: é: expected a whole number, found a map
 --> u.yaml:1:4
  |
1 | é: {x: 1,
  |    ^^^^^^ expected a whole number

error[manifest::wrong-type]: k: expected a whole number, found the quoted string 'ü'
 --> u.yaml:3:4
  |
3 | k: 'ü'
  |    ^^^ expected a whole number
";
        assert_eq!(out, expected);
    }

    #[test]
    fn manifest_text_cannot_steer_the_terminal() {
        let (sources, _, diags) = parse_str(
            "e.yaml",
            "\"a\\e[31m\\n\u{202e}\": 1\n\"a\\e[31m\\n\u{202e}\": 2\n",
        );
        let out = render(&sources, &diags, false);
        assert!(out.starts_with(
            "error[manifest::duplicate-key]: duplicate key 'a\\u{1b}[31m\\u{a}\\u{202e}' in this map\n"
        ), "{out}");
        assert!(!out.contains('\x1b') && !out.contains('\u{202e}'));
        assert!(!render_short(&sources, &diags).contains('\x1b'));
    }

    #[test]
    fn json_output_carries_locations() {
        let (sources, _, diags) = parse_str("d.yaml", "a: 1\na: 3\n");
        let v = render_json(&sources, &diags);
        assert_eq!(v[0]["code"], "manifest::duplicate-key");
        assert_eq!(v[0]["file"], "d.yaml");
        assert_eq!(v[0]["line"], 2);
        assert_eq!(v[0]["column"], 1);
        assert_eq!(v[0]["related"][0]["line"], 1);
    }
}
