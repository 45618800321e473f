//! The observation protocol: how a PowerShell 2.0 script reports values to exctl.
//!
//! PowerShell 2.0 has no `ConvertTo-Json`, and Exchange values are arbitrary text
//! (newlines, quotes, any language). So the observe script prints one line per value,
//! every free-text field base64-encoded UTF-8, which no console code page or line
//! ending can damage:
//!
//! ```text
//! EXCTL1 <b64 resource> <b64 attribute> <null|str|list> <b64 value>
//! ```
//!
//! A list's value is each element as `.` followed by its base64, joined with `,` (then
//! base64 again, so the field stays one token; the `.` keeps an empty element distinct
//! from an empty list). Anything else on stdout is ignored, so a chatty snap-in
//! cannot confuse the decoder. The [`PRELUDE`] defines `__exctl_emit` for the script;
//! attributes whose names start with `__` are the protocol's own: `__exists`,
//! `__error` (the message of a failed read), `__members` (the identities a wildcard
//! expanded to).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::value::RawValue;

/// The marker that starts every record line.
pub const MARKER: &str = "EXCTL1";

/// PowerShell 2.0 functions every observe and apply script starts with.
pub const PRELUDE: &str = r#"function __exctl_b64([string]$s) { [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($s)) }
function __exctl_emit([string]$res, [string]$attr, $v) {
  if ($null -eq $v) { $t = 'null'; $s = '' }
  elseif ($v -is [array]) { $t = 'list'; $s = (@($v | ForEach-Object { '.' + (__exctl_b64 ([string]$_)) }) -join ',') }
  else { $t = 'str'; $s = [string]$v }
  Write-Output ('EXCTL1 ' + (__exctl_b64 $res) + ' ' + (__exctl_b64 $attr) + ' ' + $t + ' ' + (__exctl_b64 $s))
}
"#;

/// The values a script reported, by (resource, attribute).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    values: HashMap<(String, String), RawValue>,
}

/// Why a record line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the observe output is not a valid record: {reason}")]
pub struct RecordError {
    /// 1-based line number in stdout.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

fn b64_text(field: &str, what: &str) -> Result<String, String> {
    let bytes = B64
        .decode(field.trim())
        .map_err(|e| format!("the {what} is not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("the {what} is not UTF-8"))
}

impl Observations {
    /// Reads every record line of a script's stdout.
    pub fn parse(stdout: &str) -> Result<Observations, RecordError> {
        let mut values = HashMap::new();
        for (i, line) in stdout.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            let Some(rest) = line.strip_prefix(MARKER) else {
                continue;
            };
            let err = |reason: String| RecordError {
                line: i + 1,
                reason,
            };
            // Fields are separated by exactly one space; an empty text encodes as an
            // empty field.
            let Some(rest) = rest.strip_prefix(' ') else {
                continue;
            };
            let fields: Vec<&str> = rest.trim_end().split(' ').collect();
            let (res, attr, ty, val) = match fields.as_slice() {
                [r, a, t, v] => (*r, *a, *t, *v),
                [r, a, t] => (*r, *a, *t, ""),
                _ => return Err(err(format!("{} fields instead of 4", fields.len()))),
            };
            let res = b64_text(res, "resource").map_err(err)?;
            let attr = b64_text(attr, "attribute").map_err(err)?;
            let text = b64_text(val, "value").map_err(err)?;
            let raw = match ty {
                "null" => RawValue::Null,
                "str" => RawValue::Str(text),
                "list" => RawValue::List(if text.is_empty() {
                    Vec::new()
                } else {
                    text.split(',')
                        .map(|e| match e.strip_prefix('.') {
                            Some(e) => b64_text(e, "list element"),
                            None => Err("a list element lacks its '.' prefix".to_string()),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(err)?
                }),
                other => return Err(err(format!("unknown value type '{other}'"))),
            };
            values.insert((res.to_ascii_lowercase(), attr.to_ascii_lowercase()), raw);
        }
        Ok(Observations { values })
    }

    /// Records one value (for tests and for kinds that derive values).
    pub fn insert(&mut self, resource: &str, attribute: &str, value: RawValue) {
        self.values.insert(
            (
                resource.to_ascii_lowercase(),
                attribute.to_ascii_lowercase(),
            ),
            value,
        );
    }

    /// The value reported for an attribute of a resource (names compare
    /// case-insensitively, as Exchange identities do).
    pub fn get(&self, resource: &str, attribute: &str) -> Option<&RawValue> {
        self.values.get(&(
            resource.to_ascii_lowercase(),
            attribute.to_ascii_lowercase(),
        ))
    }

    /// Every (resource, attribute) reported, in lower case and in no particular order:
    /// for a reader that follows records as they arrive and looks up only what a line
    /// names, rather than everything it could name.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.keys().map(|(r, a)| (r.as_str(), a.as_str()))
    }

    /// Whether the script reported the resource as existing (`__exists`).
    pub fn exists(&self, resource: &str) -> Option<bool> {
        match self.get(resource, "__exists")? {
            RawValue::Str(s) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        }
    }

    /// The error the script caught while reading the resource, if any.
    pub fn error(&self, resource: &str) -> Option<&str> {
        match self.get(resource, "__error")? {
            RawValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The identities a wildcard resource expanded to (`__members`).
    pub fn members(&self, resource: &str) -> Option<&[String]> {
        match self.get(resource, "__members")? {
            RawValue::List(l) => Some(l),
            _ => None,
        }
    }

    /// How many values were reported.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Encodes one record as the PRELUDE's `__exctl_emit` would print it (for tests, and
/// for the simulator's own test fixtures).
pub fn encode(resource: &str, attribute: &str, value: &RawValue) -> String {
    let (t, v) = match value {
        RawValue::Null => ("null", String::new()),
        RawValue::Str(s) => ("str", s.clone()),
        RawValue::List(l) => (
            "list",
            l.iter()
                .map(|e| format!(".{}", B64.encode(e)))
                .collect::<Vec<_>>()
                .join(","),
        ),
    };
    format!(
        "{MARKER} {} {} {t} {}",
        B64.encode(resource),
        B64.encode(attribute),
        B64.encode(v)
    )
}

/// A script statement that runs `body` and, if it throws, reports the error as the
/// resource's `__error` instead of failing the whole observation.
pub fn guarded(resource: &str, body: &str) -> String {
    let r = exctl_pwsh::quote(resource);
    format!(
        "try {{\n{body}\n}} catch {{ __exctl_emit {r} '__error' ([string]$_.Exception.Message) }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_text() {
        let nasty = "line1\r\nline2 'quoted' \"dq\" ‘curly’ こんにちは ,;|";
        let out = [
            "Add-PSSnapin noise".to_string(),
            encode("EX01\\Default EX01", "Banner", &RawValue::Str(nasty.into())),
            encode(
                "EX01",
                "Bindings",
                &RawValue::List(vec!["a,b".into(), String::new(), "c".into()]),
            ),
            encode("EX01", "Blank", &RawValue::Null),
            encode("EX01", "__exists", &RawValue::Str("True".into())),
        ]
        .join("\r\n");
        let o = Observations::parse(&out).unwrap();
        assert_eq!(
            o.get("ex01\\default ex01", "banner"),
            Some(&RawValue::Str(nasty.into()))
        );
        assert_eq!(
            o.get("EX01", "Bindings"),
            Some(&RawValue::List(vec![
                "a,b".into(),
                String::new(),
                "c".into()
            ]))
        );
        assert_eq!(o.get("EX01", "Blank"), Some(&RawValue::Null));
        assert_eq!(o.exists("EX01"), Some(true));
        assert_eq!(o.len(), 4);
    }

    #[test]
    fn malformed_records_are_errors_with_their_line() {
        let e = Observations::parse("x\nEXCTL1 !!! a str b").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Observations::parse("EXCTL1 YQ== YQ== weird YQ==").is_err());
        assert!(Observations::parse("EXCTL1 only").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_value_survives(res in ".*", attr in "[A-Za-z]{2,10}", val in ".*", list in proptest::collection::vec(".*", 0..5)) {
            let text = [encode(&res, &attr, &RawValue::Str(val.clone())), encode(&res, "l", &RawValue::List(list.clone()))].join("\n");
            let o = Observations::parse(&text).unwrap();
            proptest::prop_assert_eq!(o.get(&res, &attr), Some(&RawValue::Str(val)));
            proptest::prop_assert_eq!(o.get(&res, "l"), Some(&RawValue::List(list)));
        }

        #[test]
        fn never_panics(s in ".*") {
            let _ = Observations::parse(&s);
        }
    }
}
