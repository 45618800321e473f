//! Exporting a host's current state as manifest YAML (`exctl export`).
//!
//! Each kind enumerates what it exports with one PowerShell fragment
//! ([`crate::Kind::export_script`], reporting `EXCTL1` records like an observe fragment)
//! and turns the observations into its manifest section ([`crate::Kind::export`]). This
//! module owns what they share: the [`ExportContext`] (host, release, the mailboxes and
//! users named on the command line), a small YAML tree ([`Yaml`]) with its renderer, and
//! the rendering of typed values so that `exctl plan` reads every exported value back as
//! the same value by meaning (`unlimited`, `$null`, sizes, time spans, flag sets).
//!
//! Scalars are written by [`exctl_manifest::yaml`]: plain only when no YAML reader (1.2
//! nor 1.1) could read them as anything but that text.

use std::fmt::Write as _;

use exctl_manifest::yaml;

use crate::value::{ParamSpec, ParamType, Value, format_timespan};
use crate::version::Version;

/// What the export of one host is asked for.
#[derive(Debug, Clone, Copy)]
pub struct ExportContext<'a> {
    /// The host's computer name (also the Exchange server's name).
    pub host: &'a str,
    /// The release the host runs (as the inventory declares it; checked against the
    /// server's AdminDisplayVersion before any section is made).
    pub version: Version,
    /// Mailboxes (or other objects) whose throttling association to export.
    pub mailboxes: &'a [String],
    /// Users whose AD permissions on the organization to export.
    pub users: &'a [String],
}

/// A node of an exported manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// A scalar, already rendered (see [`string`], [`value`]).
    Scalar(String),
    /// A map, in this order, with comment lines between entries.
    Map(Vec<Item>),
    /// A block sequence.
    Seq(Vec<Yaml>),
}

/// One line group of a map.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `key: value` (the key is rendered by [`yaml::key`]).
    Entry(String, Yaml),
    /// A comment (one `# ` line per line of text).
    Comment(String),
}

impl Yaml {
    /// An empty map.
    pub fn map() -> Yaml {
        Yaml::Map(Vec::new())
    }

    /// Adds `key: value` to a map (nothing for other nodes).
    pub fn push(&mut self, key: &str, value: Yaml) {
        if let Yaml::Map(items) = self {
            items.push(Item::Entry(key.to_string(), value));
        }
    }

    /// Adds a comment to a map (nothing for other nodes).
    pub fn comment(&mut self, text: impl Into<String>) {
        if let Yaml::Map(items) = self {
            items.push(Item::Comment(text.into()));
        }
    }

    /// Whether the node holds no entry (comments do not count).
    pub fn is_empty(&self) -> bool {
        match self {
            Yaml::Scalar(_) => false,
            Yaml::Map(items) => !items.iter().any(|i| matches!(i, Item::Entry(..))),
            Yaml::Seq(items) => items.is_empty(),
        }
    }

    /// The node as YAML lines at `indent` spaces (a map or sequence; a scalar alone is
    /// written on its own line).
    pub fn render(&self, indent: usize) -> String {
        let mut out = String::new();
        render_block(self, indent, &mut out);
        out
    }
}

fn comment_lines(text: &str, indent: usize, out: &mut String) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{:indent$}#", "");
        } else {
            let _ = writeln!(out, "{:indent$}# {}", "", clean_comment(line));
        }
    }
}

/// Comment text from a server (a policy name, an error) must stay one comment line.
fn clean_comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn render_block(node: &Yaml, indent: usize, out: &mut String) {
    match node {
        Yaml::Scalar(s) => {
            let _ = writeln!(out, "{:indent$}{s}", "");
        }
        Yaml::Map(items) => {
            for item in items {
                match item {
                    Item::Comment(c) => comment_lines(c, indent, out),
                    Item::Entry(k, v) => {
                        let key = yaml::key(k);
                        match v {
                            Yaml::Scalar(s) => {
                                let _ = writeln!(out, "{:indent$}{key}: {s}", "");
                            }
                            Yaml::Map(_) if v.is_empty() => {
                                let _ = writeln!(out, "{:indent$}{key}: {{}}", "");
                                if let Yaml::Map(inner) = v {
                                    for i in inner {
                                        if let Item::Comment(c) = i {
                                            comment_lines(c, indent + 2, out);
                                        }
                                    }
                                }
                            }
                            Yaml::Seq(s) if s.is_empty() => {
                                let _ = writeln!(out, "{:indent$}{key}: []", "");
                            }
                            _ => {
                                let _ = writeln!(out, "{:indent$}{key}:", "");
                                render_block(v, indent + 2, out);
                            }
                        }
                    }
                }
            }
        }
        Yaml::Seq(items) => {
            for item in items {
                match item {
                    Yaml::Scalar(s) => {
                        let _ = writeln!(out, "{:indent$}- {s}", "");
                    }
                    _ => {
                        // The item's first line goes after the dash.
                        let inner = item.render(indent + 2);
                        let rest = inner.get(indent + 2..).unwrap_or_default();
                        let _ = write!(out, "{:indent$}- {rest}", "");
                    }
                }
            }
        }
    }
}

/// A string as a YAML scalar that reads back as exactly this text (see
/// [`exctl_manifest::yaml::scalar`], the one writer of the workspace).
pub fn string(s: &str) -> String {
    yaml::scalar(s)
}

/// A flow sequence of strings (`[a, 'b:c']`).
pub fn flow_list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| string(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// A byte count in the largest unit that divides it (`10MB`), as manifests write sizes
/// (powers of 1024, as Exchange's ByteQuantifiedSize counts).
pub fn bytes(n: u64) -> String {
    for (unit, size) in [
        ("TB", 1u64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
    ] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// The manifest spelling of a value of type `ty`, as the kind's reader reads it back to
/// the same value by meaning. `Value::Null` is `unlimited` for the nullable numbers
/// (throttling: "no limit"), an empty text for texts, an empty list for lists.
pub fn value(ty: &ParamType, v: &Value) -> String {
    match (ty, v) {
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::Unlimited) => "unlimited".into(),
        (ParamType::NullableInt(_) | ParamType::UnlimitedInt(_), Value::Null) => "unlimited".into(),
        (ParamType::StrList | ParamType::Flags(_), Value::Null) => "[]".into(),
        (_, Value::Null) => yaml::scalar(""),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::Str(s)) => string(s),
        (_, Value::List(l)) => flow_list(l),
        (_, Value::Seconds(s)) => yaml::scalar(&format_timespan(*s)),
        (_, Value::Bytes(b)) => bytes(*b),
    }
}

/// Whether the kind's reader accepts `v` for `ty` (a server may hold a value outside
/// the range the documentation gives, which an export must not write as if it were
/// valid). `None` when it does, else what the reader expects.
pub fn rejects(ty: &ParamType, v: &Value) -> Option<String> {
    let ok = match (ty, v) {
        (ParamType::Int(r), Value::Int(i)) => r.contains(i),
        (ParamType::UnlimitedInt(r), Value::Int(i)) => r.contains(i),
        (ParamType::UnlimitedInt(_), Value::Unlimited) => true,
        (ParamType::NullableInt(r), Value::Int(i)) => r.contains(i),
        (ParamType::NullableInt(_), Value::Null) => true,
        (ParamType::Bool, Value::Bool(_)) => true,
        (ParamType::Str | ParamType::StrIgnoreCase, Value::Str(_) | Value::Null) => true,
        (ParamType::Enum(allowed), Value::Str(s)) => {
            allowed.iter().any(|a| a.eq_ignore_ascii_case(s))
        }
        (ParamType::TimeSpan(r), Value::Seconds(s)) => r.contains(s),
        (ParamType::Bytes(r), Value::Bytes(b)) => r.contains(b),
        (ParamType::UnlimitedBytes(r), Value::Bytes(b)) => r.contains(b),
        (ParamType::UnlimitedBytes(_), Value::Unlimited) => true,
        (ParamType::StrList, Value::List(_) | Value::Null) => true,
        (ParamType::Flags(allowed), Value::List(l)) => {
            l.iter()
                .all(|s| allowed.iter().any(|a| a.eq_ignore_ascii_case(s)))
                && !(l.len() > 1 && l.iter().any(|s| s.eq_ignore_ascii_case("none")))
        }
        (ParamType::Flags(_), Value::Null) => true,
        _ => false,
    };
    (!ok).then(|| ty.describe())
}

/// Adds `spec: value` to `map`, or, when the reader would refuse the value, a comment
/// saying so (the server's value is shown, the entry is left out: the manifest stays
/// valid and the parameter unmanaged).
pub fn push_param(map: &mut Yaml, spec: &ParamSpec, v: &Value) {
    match rejects(&spec.ty, v) {
        None => map.push(spec.name, Yaml::Scalar(value(&spec.ty, v))),
        Some(expected) => {
            let shown = match v {
                Value::Null => "blank".to_string(),
                other => other.to_string(),
            };
            map.comment(format!(
                "{}: {shown} on the server, which a manifest cannot say (expected {expected}): not exported",
                spec.name
            ));
        }
    }
}

/// A kind's exported section.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The section's value (a map or a list).
    pub body: Yaml,
    /// Comment lines written above the section: what was left out and why.
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` back with the project's own loader, as a one-entry map `v: text`.
    fn read_back(text: &str) -> exctl_manifest::NodeKind {
        let (_, docs, diags) = exctl_manifest::parse_str("t.yaml", format!("v: {text}\n"));
        assert!(diags.is_empty(), "{text}: {diags:?}");
        docs[0].root.get("v").expect("v").kind.clone()
    }

    #[test]
    fn strings_read_back_as_the_same_text() {
        for s in [
            "plain text",
            "",
            " leading",
            "trailing ",
            "yes",
            "No",
            "on",
            "null",
            "~",
            "123",
            "0x1F",
            "1.5",
            "00:30:00",
            "a: b",
            "a #b",
            "#x",
            "-x",
            "[::]:25",
            "it's",
            "line1\nline2",
            "tab\there",
            "quote \" and \\",
            "\u{1b}[31m",
            "'single'",
            "*alias",
            "&anchor",
            "!tag",
            "%dir",
            "@at",
            "`tick",
            "{a}",
            "a,b",
            "Default EXCH01",
            "EXCH01\\Client EXCH01",
            "こんにちは",
            "\u{2018}curly\u{2019}",
        ] {
            let r = string(s);
            assert_eq!(
                read_back(&r),
                exctl_manifest::NodeKind::Str(s.to_string()),
                "{s:?} rendered as {r}"
            );
        }
        assert_eq!(string("Default EXCH01"), "Default EXCH01");
        assert_eq!(string("yes"), "'yes'");
        assert_eq!(string("00:30:00"), "'00:30:00'");
    }

    proptest::proptest! {
        #[test]
        fn any_text_reads_back(s in ".*") {
            let r = string(&s);
            proptest::prop_assert_eq!(read_back(&r), exctl_manifest::NodeKind::Str(s.clone()));
        }
    }

    #[test]
    fn hostile_names_reach_export_scripts_only_as_literals() {
        use crate::kinds::common::testutil::{HOSTILE, assert_contained};
        let script = |v: &str| {
            let list = vec![v.to_string()];
            let ctx = ExportContext {
                host: v,
                version: Version::Sp3,
                mailboxes: &list,
                users: &list,
            };
            crate::kinds::ALL
                .iter()
                .map(|k| k.export_script(&ctx))
                .collect::<String>()
        };
        assert_contained(&script(HOSTILE), &script("benign"), HOSTILE);
    }

    #[test]
    fn values_are_spelled_as_manifests_write_them() {
        let n = ParamType::NullableInt(0..=10);
        assert_eq!(value(&n, &Value::Null), "unlimited");
        assert_eq!(value(&n, &Value::Int(7)), "7");
        assert_eq!(
            value(&ParamType::UnlimitedInt(1..=5), &Value::Unlimited),
            "unlimited"
        );
        assert_eq!(
            value(&ParamType::TimeSpan(0..=100_000), &Value::Seconds(90_000)),
            "'1.01:00:00'"
        );
        assert_eq!(
            value(&ParamType::Bytes(0..=u64::MAX), &Value::Bytes(10 << 20)),
            "10MB"
        );
        assert_eq!(bytes(65_536), "64KB");
        assert_eq!(bytes(1_000), "1000");
        assert_eq!(bytes(0), "0");
        assert_eq!(value(&ParamType::Str, &Value::Null), "''");
        assert_eq!(value(&ParamType::StrList, &Value::Null), "[]");
        assert_eq!(
            value(
                &ParamType::StrList,
                &Value::List(vec!["0.0.0.0:25".into(), "[::]:25".into()])
            ),
            "['0.0.0.0:25', '[::]:25']"
        );
    }

    #[test]
    fn out_of_range_values_become_comments() {
        let spec = ParamSpec::all("MaxCommandSize", ParamType::Int(40..=16_384));
        let mut m = Yaml::map();
        push_param(&mut m, &spec, &Value::Int(10));
        push_param(&mut m, &spec, &Value::Int(1024));
        let text = m.render(0);
        assert_eq!(
            text,
            "# MaxCommandSize: 10 on the server, which a manifest cannot say (expected an integer in 40..=16384): not exported\nMaxCommandSize: 1024\n"
        );
    }

    #[test]
    fn renders_maps_sequences_and_comments() {
        let mut item = Yaml::map();
        item.push("path", Yaml::Scalar(string("HKLM:\\X")));
        item.push("value", Yaml::Scalar("250".into()));
        let mut policy = Yaml::map();
        policy.comment("left out:\nA, B");
        let mut root = Yaml::map();
        root.push("list", Yaml::Seq(vec![item.clone(), item]));
        root.push("P", policy);
        root.push("empty", Yaml::Seq(vec![]));
        assert_eq!(
            root.render(0),
            "list:\n  - path: 'HKLM:\\X'\n    value: 250\n  - path: 'HKLM:\\X'\n    value: 250\nP: {}\n  # left out:\n  # A, B\nempty: []\n"
        );
        let (_, docs, d) = exctl_manifest::parse_str("t.yaml", root.render(0));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            docs[0]
                .root
                .get("list")
                .and_then(|l| l.as_seq())
                .map(|s| s.len()),
            Some(2)
        );
    }
}
