//! Attribute values, their types, and the semantics of comparing them.
//!
//! A manifest says `unlimited`, Exchange prints `Unlimited`, a throttling value left blank
//! means "no limit" (`$null`), a timespan is `00:30:00`, a byte quantity
//! `10 MB (10,485,760 bytes)`. Each parameter has a [`ParamType`] that reads the
//! manifest's spelling, decodes the server's, renders the PowerShell literal for a
//! command, and so compares values by meaning, never by text.

use std::fmt;
use std::ops::RangeInclusive;

use exctl_manifest::units::{
    Nullable, Unlimited, format_byte_quantity, parse_byte_quantity, parse_timespan,
};
use exctl_manifest::{Diagnostic, Node, NodeKind, ValueReader};

use crate::version::Version;

/// A value of a resource attribute, desired or observed, after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A whole number.
    Int(i64),
    /// Exchange's `Unlimited` (the `IsUnlimited` case of an Unlimited type).
    #[serde(serialize_with = "ser_unlimited")]
    Unlimited,
    /// `$null`: blank in Get-* output; for throttling values, "unthrottled".
    #[serde(serialize_with = "ser_null")]
    Null,
    /// `$true` / `$false`.
    Bool(bool),
    /// Text; compared case-sensitively unless the type says otherwise.
    Str(String),
    /// A list of strings (multi-valued properties).
    List(Vec<String>),
    /// A timespan, in whole seconds.
    #[serde(serialize_with = "ser_seconds")]
    Seconds(u64),
    /// A byte quantity, in bytes.
    #[serde(serialize_with = "ser_bytes")]
    Bytes(u64),
}

fn ser_unlimited<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("unlimited")
}
fn ser_null<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}
fn ser_seconds<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timespan(*v))
}
fn ser_bytes<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(*v)
}

/// `hh:mm:ss` or `d.hh:mm:ss`, as Exchange prints an EnhancedTimeSpan.
pub fn format_timespan(secs: u64) -> String {
    let (d, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if d > 0 {
        format!("{d}.{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Unlimited => f.write_str("unlimited"),
            // PowerShell's own word: for throttling values it means "no limit".
            Value::Null => f.write_str("$null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, s) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s:?}")?;
                }
                f.write_str("]")
            }
            Value::Seconds(s) => f.write_str(&format_timespan(*s)),
            Value::Bytes(b) => f.write_str(&format_byte_quantity(*b)),
        }
    }
}

impl Value {
    /// This value as a command's argument. Every value reaches a command through here, and
    /// a script only through the command's one renderer ([`exctl_pwsh::Command::to_script`]),
    /// never by concatenation. Unlimited, timespans and byte quantities are the text
    /// Exchange's parameters parse.
    pub fn to_arg(&self) -> exctl_pwsh::Arg {
        use exctl_pwsh::Arg;
        match self {
            Value::Int(i) => Arg::Int(*i),
            Value::Unlimited => Arg::Str("Unlimited".into()),
            Value::Null => Arg::Null,
            Value::Bool(b) => Arg::Bool(*b),
            Value::Str(s) => Arg::Str(s.clone()),
            Value::List(l) => Arg::List(l.iter().map(|s| Arg::Str(s.clone())).collect()),
            Value::Seconds(s) => Arg::Str(format_timespan(*s)),
            Value::Bytes(b) => Arg::Str(format!("{b}B")),
        }
    }
}

/// How a parameter is typed, which decides how it is read, decoded and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// An Int32/UInt32 within a range.
    Int(RangeInclusive<i64>),
    /// Exchange's Unlimited<int>: a number in range or `unlimited`.
    UnlimitedInt(RangeInclusive<i64>),
    /// A nullable number (throttling): a number in range, or `unlimited`/null for `$null`.
    NullableInt(RangeInclusive<i64>),
    /// A boolean.
    Bool,
    /// Free text, compared exactly (an empty text and `$null` are the same: Exchange
    /// prints an unset text as blank).
    Str,
    /// Text compared ignoring case (FQDNs, names of directory objects).
    StrIgnoreCase,
    /// One of these values, compared case-insensitively.
    Enum(&'static [&'static str]),
    /// An EnhancedTimeSpan within a range of seconds.
    TimeSpan(RangeInclusive<u64>),
    /// A ByteQuantifiedSize within a range of bytes.
    Bytes(RangeInclusive<u64>),
    /// Unlimited<ByteQuantifiedSize>.
    UnlimitedBytes(RangeInclusive<u64>),
    /// A list of strings, compared as sets, case-insensitively.
    StrList,
    /// A set of names of a `[Flags]` enumeration (AuthMechanism, PermissionGroups,
    /// AccessRights): a list, or one comma-separated string, of these names; compared
    /// as sets ignoring case. `None` (when it is one of the names) is the empty set and
    /// must stand alone.
    Flags(&'static [&'static str]),
}

/// One parameter of a cmdlet as the manifest knows it.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    /// Exchange's own name (`MaxConnectionsPerUser`).
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// The first release that has it.
    pub since: Version,
}

impl ParamSpec {
    /// A parameter present in every 2010 release.
    pub const fn all(name: &'static str, ty: ParamType) -> ParamSpec {
        ParamSpec {
            name,
            ty,
            since: Version::Rtm,
        }
    }

    /// A parameter added in `since`.
    pub const fn since(name: &'static str, ty: ParamType, since: Version) -> ParamSpec {
        ParamSpec { name, ty, since }
    }
}

fn describe_u64(r: &RangeInclusive<u64>) -> String {
    format!("{}..={}", r.start(), r.end())
}

impl ParamType {
    /// Reads a manifest value of this type, reporting problems at its location.
    pub fn read(&self, v: ValueReader<'_, '_>) -> Option<Value> {
        match self {
            ParamType::Int(r) => v.int_in_range(r.clone()).map(Value::Int),
            ParamType::UnlimitedInt(r) => v
                .unlimited_int(r.clone())
                .map(|u: Unlimited<i64>| u.value().map_or(Value::Unlimited, Value::Int)),
            ParamType::NullableInt(r) => v
                .nullable_int(r.clone())
                .map(|n: Nullable<i64>| n.value().map_or(Value::Null, Value::Int)),
            ParamType::Bool => v.bool().map(Value::Bool),
            ParamType::Str | ParamType::StrIgnoreCase => v.string().map(Value::Str),
            ParamType::Flags(allowed) => read_flags(v, allowed),
            ParamType::Enum(allowed) => v.one_of(allowed).map(|s| Value::Str(s.to_string())),
            ParamType::TimeSpan(r) => {
                let (min, max) = (
                    std::time::Duration::from_secs(*r.start()),
                    std::time::Duration::from_secs(*r.end()),
                );
                v.timespan_in_range(min, max)
                    .map(|d| Value::Seconds(d.as_secs()))
            }
            ParamType::Bytes(r) => v.byte_quantity_in_range(r.clone()).map(Value::Bytes),
            ParamType::UnlimitedBytes(r) => v
                .unlimited_byte_quantity(r.clone())
                .map(|u: Unlimited<u64>| u.value().map_or(Value::Unlimited, Value::Bytes)),
            ParamType::StrList => v.string_list().map(Value::List),
        }
    }

    /// Decodes what the server printed for this parameter. `None` (the record said
    /// null) is `Value::Null`.
    pub fn decode(&self, raw: &RawValue) -> Result<Value, String> {
        let text = match raw {
            RawValue::Null => return Ok(Value::Null),
            RawValue::List(l) => {
                return match self {
                    // `@($null)` reports one empty element: not a value.
                    ParamType::StrList => Ok(Value::List(
                        l.iter().filter(|e| !e.trim().is_empty()).cloned().collect(),
                    )),
                    ParamType::Flags(allowed) => Ok(Value::List(canonical_flags(
                        l.iter()
                            .flat_map(|e| e.split(','))
                            .map(str::trim)
                            .filter(|t| !t.is_empty()),
                        allowed,
                    ))),
                    _ => Err(format!(
                        "expected one value, the server sent a list of {}",
                        l.len()
                    )),
                };
            }
            RawValue::Str(s) => s.trim(),
        };
        let number = |t: &str| -> Result<i64, String> {
            t.replace(',', "")
                .parse::<i64>()
                .map_err(|_| format!("'{t}' is not a number"))
        };
        match self {
            ParamType::Int(_) => number(text).map(Value::Int),
            ParamType::UnlimitedInt(_) => {
                if text.eq_ignore_ascii_case("unlimited") {
                    Ok(Value::Unlimited)
                } else {
                    number(text).map(Value::Int)
                }
            }
            ParamType::NullableInt(_) => {
                if text.is_empty() {
                    Ok(Value::Null)
                } else {
                    number(text).map(Value::Int)
                }
            }
            ParamType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("'{text}' is not a boolean")),
            },
            ParamType::Str | ParamType::StrIgnoreCase => Ok(Value::Str(raw_text(raw))),
            ParamType::Flags(allowed) => Ok(Value::List(canonical_flags(
                text.split(',').map(str::trim).filter(|t| !t.is_empty()),
                allowed,
            ))),
            ParamType::Enum(allowed) => Ok(Value::Str(
                allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(text))
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| text.to_string()),
            )),
            ParamType::TimeSpan(_) => parse_timespan(text)
                .map(|d| Value::Seconds(d.as_secs()))
                .map_err(|e| e.to_string()),
            ParamType::Bytes(_) => parse_byte_quantity(text)
                .map(Value::Bytes)
                .map_err(|e| e.to_string()),
            ParamType::UnlimitedBytes(_) => {
                if text.eq_ignore_ascii_case("unlimited") {
                    Ok(Value::Unlimited)
                } else {
                    parse_byte_quantity(text)
                        .map(Value::Bytes)
                        .map_err(|e| e.to_string())
                }
            }
            ParamType::StrList => Ok(if text.is_empty() {
                Value::List(Vec::new())
            } else {
                Value::List(vec![text.to_string()])
            }),
        }
    }

    /// Whether the observed value already is the desired one, by meaning.
    pub fn same(&self, desired: &Value, observed: &Value) -> bool {
        match (self, desired, observed) {
            (ParamType::Enum(_) | ParamType::StrIgnoreCase, Value::Str(a), Value::Str(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (ParamType::Str | ParamType::StrIgnoreCase, Value::Str(s), Value::Null)
            | (ParamType::Str | ParamType::StrIgnoreCase, Value::Null, Value::Str(s)) => {
                s.is_empty()
            }
            (ParamType::StrList, Value::List(a), Value::List(b)) => {
                let norm = |l: &[String]| {
                    let mut v: Vec<String> = l
                        .iter()
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                };
                norm(a) == norm(b)
            }
            (ParamType::StrList, Value::List(a), Value::Null)
            | (ParamType::StrList, Value::Null, Value::List(a)) => {
                a.iter().all(|s| s.trim().is_empty())
            }
            (ParamType::Flags(_), Value::List(a), Value::List(b)) => flag_set(a) == flag_set(b),
            (ParamType::Flags(_), Value::List(a), Value::Null)
            | (ParamType::Flags(_), Value::Null, Value::List(a)) => flag_set(a).is_empty(),
            _ => desired == observed,
        }
    }

    /// The accepted range, where the type has one: numbers, bytes, and time spans in
    /// seconds.
    pub fn range(&self) -> Option<(i128, i128)> {
        match self {
            ParamType::Int(r) | ParamType::UnlimitedInt(r) | ParamType::NullableInt(r) => {
                Some((i128::from(*r.start()), i128::from(*r.end())))
            }
            ParamType::TimeSpan(r) | ParamType::Bytes(r) | ParamType::UnlimitedBytes(r) => {
                Some((i128::from(*r.start()), i128::from(*r.end())))
            }
            _ => None,
        }
    }

    /// A short description for messages and the JSON schema.
    pub fn describe(&self) -> String {
        match self {
            ParamType::Int(r) => format!("an integer in {}..={}", r.start(), r.end()),
            ParamType::UnlimitedInt(r) => {
                format!("an integer in {}..={} or 'unlimited'", r.start(), r.end())
            }
            ParamType::NullableInt(r) => {
                format!(
                    "an integer in {}..={}, or 'unlimited' (no limit, $null)",
                    r.start(),
                    r.end()
                )
            }
            ParamType::Bool => "true or false".into(),
            ParamType::Str => "a string".into(),
            ParamType::StrIgnoreCase => "a string (compared ignoring case)".into(),
            ParamType::Flags(a) => format!("a list of {}", a.join(", ")),
            ParamType::Enum(a) => format!("one of {}", a.join(", ")),
            ParamType::TimeSpan(r) => format!(
                "a timespan from {} to {}",
                format_timespan(*r.start()),
                format_timespan(*r.end())
            ),
            ParamType::Bytes(r) => format!("a byte quantity in {}", describe_u64(r)),
            ParamType::UnlimitedBytes(r) => {
                format!("a byte quantity in {} or 'unlimited'", describe_u64(r))
            }
            ParamType::StrList => "a list of strings".into(),
        }
    }
}

/// The lower-cased set of flag names, without `None` (the empty set).
fn flag_set(l: &[String]) -> std::collections::BTreeSet<String> {
    l.iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty() && s != "none")
        .collect()
}

/// Flag names in their canonical spelling where known (unknown names are kept, so a
/// value of a newer release still compares and prints).
fn canonical_flags<'a>(names: impl Iterator<Item = &'a str>, allowed: &[&str]) -> Vec<String> {
    names
        .map(|n| {
            allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(n))
                .map_or_else(|| n.to_string(), |a| a.to_string())
        })
        .collect()
}

/// Reads a `[Flags]` value: a list of names or one comma-separated string.
fn read_flags(mut v: ValueReader<'_, '_>, allowed: &'static [&'static str]) -> Option<Value> {
    let node = v.node();
    let names: Vec<String> = match &node.kind {
        NodeKind::Str(s) => {
            let mut out = Vec::new();
            for part in s.split(',').map(str::trim) {
                match exctl_manifest::find_ignore_case(part, allowed) {
                    Some(c) => out.push(c.to_string()),
                    None => {
                        let d = v
                            .error(
                                "manifest::invalid-value",
                                format!("'{part}' is not one of {}", allowed.join(", ")),
                            )
                            .with_label("not an allowed value")
                            .with_hint_opt(exctl_manifest::did_you_mean_hint(part, allowed));
                        v.report(d);
                        return None;
                    }
                }
            }
            out
        }
        NodeKind::Seq(items) => {
            let what = v.what().to_string();
            let mut out = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match ValueReader::new(item, format!("item {} of {what}", i + 1), v.diags())
                    .one_of(allowed)
                {
                    Some(c) => out.push(c.to_string()),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            out
        }
        _ => {
            let d = v
                .error(
                    "manifest::wrong-type",
                    format!(
                        "expected a list of {}, found {}",
                        allowed.join(", "),
                        node.describe()
                    ),
                )
                .with_label("expected a list")
                .with_hint(format!(
                    "write a list such as [{}]",
                    allowed
                        .iter()
                        .take(2)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            v.report(d);
            return None;
        }
    };
    let has_none = names.iter().any(|n| n.eq_ignore_ascii_case("none"));
    if has_none && names.len() > 1 {
        let d = v
            .error(
                "exchange::flags-none-combined",
                "None cannot be combined with other values",
            )
            .with_label("None stands alone")
            .with_hint("write None alone, or remove it");
        v.report(d);
        return None;
    }
    if names.is_empty() && allowed.contains(&"None") {
        return Some(Value::List(vec!["None".to_string()]));
    }
    Some(Value::List(names))
}

fn raw_text(raw: &RawValue) -> String {
    match raw {
        RawValue::Str(s) => s.clone(),
        RawValue::Null => String::new(),
        RawValue::List(l) => l.join(", "),
    }
}

/// A value exactly as the observe script reported it, before typing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// `$null`.
    Null,
    /// The string form of a scalar.
    Str(String),
    /// The string forms of a collection's elements.
    List(Vec<String>),
}

/// Reads the desired values of `specs` from a manifest map, checking each against the
/// declared Exchange version, and reports keys that are no parameter (with a did-you-mean
/// among the parameter names).
pub fn read_params(
    mut reader: exctl_manifest::MapReader<'_, '_>,
    specs: &[ParamSpec],
    version: Version,
    cmdlet: &str,
    skip: &[&str],
) -> Vec<(&'static str, Value, Node)> {
    let mut out = Vec::new();
    for spec in specs {
        let Some(node) = reader.node_of(spec.name).cloned() else {
            continue;
        };
        if spec.since > version {
            let d = Diagnostic::error(
                "exchange::parameter-not-in-version",
                format!(
                    "{} is not a parameter of {cmdlet} in {version}; it exists from {} on",
                    spec.name, spec.since
                ),
            )
            .with_span(node.span)
            .with_label(format!("needs {}", spec.since.as_str()))
            .with_hint(format!(
                "remove it, or declare the host's version (exchange: {}) if the server runs it",
                spec.since.as_str()
            ));
            reader.diags().push(d);
            continue;
        }
        let what = format!("{}.{}", reader.path(), spec.name);
        let vr = ValueReader::new(
            reader.node_of(spec.name).unwrap_or(&node),
            what,
            reader.diags(),
        );
        if let Some(v) = spec.ty.read(vr) {
            out.push((spec.name, v, node));
        }
    }
    for s in skip {
        let _ = reader.node_of(s);
    }
    let known: Vec<&str> = specs
        .iter()
        .map(|s| s.name)
        .chain(skip.iter().copied())
        .collect();
    reader.finish_with_known(&known);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_exchange_prints() {
        let u = ParamType::UnlimitedInt(1..=10);
        assert_eq!(
            u.decode(&RawValue::Str("Unlimited".into())),
            Ok(Value::Unlimited)
        );
        assert_eq!(
            u.decode(&RawValue::Str("5000".into())),
            Ok(Value::Int(5000))
        );
        let n = ParamType::NullableInt(0..=100);
        assert_eq!(n.decode(&RawValue::Str(String::new())), Ok(Value::Null));
        assert_eq!(n.decode(&RawValue::Null), Ok(Value::Null));
        let t = ParamType::TimeSpan(0..=86400);
        assert_eq!(
            t.decode(&RawValue::Str("00:30:00".into())),
            Ok(Value::Seconds(1800))
        );
        let b = ParamType::Bytes(0..=u64::MAX);
        assert_eq!(
            b.decode(&RawValue::Str("10 MB (10,485,760 bytes)".into())),
            Ok(Value::Bytes(10_485_760))
        );
        assert!(
            ParamType::Int(0..=1)
                .decode(&RawValue::Str("x".into()))
                .is_err()
        );
    }

    #[test]
    fn compares_by_meaning() {
        let e = ParamType::Enum(&["None", "IPAddress"]);
        assert!(e.same(
            &Value::Str("ipaddress".into()),
            &Value::Str("IPAddress".into())
        ));
        let l = ParamType::StrList;
        assert!(l.same(
            &Value::List(vec!["a".into(), "B".into()]),
            &Value::List(vec!["b".into(), "A".into()])
        ));
        assert!(!ParamType::Int(0..=9).same(&Value::Int(1), &Value::Int(2)));
    }

    #[test]
    fn flag_sets_texts_and_lists_compare_by_meaning() {
        const F: &[&str] = &["None", "Tls", "BasicAuth"];
        let f = ParamType::Flags(F);
        let decoded = f.decode(&RawValue::Str("tls, BasicAuth".into())).unwrap();
        assert_eq!(decoded, Value::List(vec!["Tls".into(), "BasicAuth".into()]));
        assert!(f.same(
            &Value::List(vec!["BasicAuth".into(), "TLS".into()]),
            &decoded
        ));
        assert!(f.same(&Value::List(vec!["None".into()]), &Value::List(vec![])));
        assert!(f.same(&Value::List(vec!["None".into()]), &Value::Null));
        assert!(!f.same(&Value::List(vec!["Tls".into()]), &decoded));
        // Text: blank and empty are the same; StrIgnoreCase ignores case.
        assert!(ParamType::Str.same(&Value::Str(String::new()), &Value::Null));
        assert!(!ParamType::Str.same(&Value::Str("A".into()), &Value::Str("a".into())));
        assert!(ParamType::StrIgnoreCase.same(
            &Value::Str("Mail.Contoso.com".into()),
            &Value::Str("mail.contoso.com".into())
        ));
        // `@($null)` reports one empty element: no value.
        let l = ParamType::StrList;
        assert_eq!(
            l.decode(&RawValue::List(vec![String::new()])),
            Ok(Value::List(vec![]))
        );
        assert!(l.same(&Value::List(vec![]), &Value::Null));
    }

    #[test]
    fn flags_are_read_from_lists_or_comma_separated_text() {
        const F: &[&str] = &["None", "Tls", "BasicAuth"];
        let read = |yaml: &str| {
            let (_, docs, mut d) = exctl_manifest::parse_str("t.yaml", format!("v: {yaml}\n"));
            let node = docs[0].root.get("v").unwrap().clone();
            let v = ParamType::Flags(F).read(ValueReader::new(&node, "v", &mut d));
            (v, d)
        };
        assert_eq!(
            read("[tls, basicauth]").0,
            Some(Value::List(vec!["Tls".into(), "BasicAuth".into()]))
        );
        assert_eq!(
            read("Tls, BasicAuth").0,
            Some(Value::List(vec!["Tls".into(), "BasicAuth".into()]))
        );
        assert_eq!(read("[]").0, Some(Value::List(vec!["None".into()])));
        let (v, d) = read("[None, Tls]");
        assert_eq!(
            (v, d.as_slice()[0].code),
            (None, "exchange::flags-none-combined")
        );
        let (v, d) = read("Tsl");
        assert_eq!(v, None);
        assert_eq!(d.as_slice()[0].hint.as_deref(), Some("did you mean 'Tls'?"));
        let (_, d) = read("{a: 1}");
        assert_eq!(
            d.as_slice()[0].hint.as_deref(),
            Some("write a list such as [None, Tls]")
        );
    }

    #[test]
    fn values_become_command_arguments() {
        use exctl_pwsh::Arg;
        assert_eq!(Value::Unlimited.to_arg(), Arg::Str("Unlimited".into()));
        assert_eq!(Value::Null.to_arg(), Arg::Null);
        assert_eq!(Value::Str("it's".into()).to_arg(), Arg::Str("it's".into()));
        assert_eq!(
            Value::Seconds(90000).to_arg(),
            Arg::Str("1.01:00:00".into())
        );
        assert_eq!(Value::Bytes(1024).to_arg(), Arg::Str("1024B".into()));
        assert_eq!(
            Value::List(vec!["a".into()]).to_arg(),
            Arg::List(vec![Arg::Str("a".into())])
        );
        let c =
            exctl_pwsh::Command::new("Set-X").param("Banner", Value::Str("it's".into()).to_arg());
        assert_eq!(c.to_script(), "Set-X -Banner 'it''s'");
    }
}
