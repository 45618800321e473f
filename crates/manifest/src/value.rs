//! Typed reading of one value: [`ValueReader`] turns a [`Node`] into a Rust
//! value or into a diagnostic that names what was expected, what was found and
//! where, with a hint when the fix is guessable (remove the quotes, write
//! `true`, ...).
//!
//! Every method consumes the reader and returns `None` when the value was
//! refused; the reason is then already in the diagnostics, so callers just move
//! on to the next value and all problems are reported in one run.
//!
//! Accepted spellings of the special values (also in each method's docs):
//! - booleans: `true`/`false` (and `True`, `TRUE`, ...); YAML 1.1's
//!   `yes`/`no`/`on`/`off`/`y`/`n` are accepted with a `manifest::yaml11-bool`
//!   warning (an error under `--strict`), quoted `'true'` is refused;
//! - Unlimited: a number, or `unlimited` in any case, quoted or not;
//! - Nullable (throttling, `$null` = no limit): a number, YAML null written as
//!   `null`/`Null`/`NULL`/`~`, or `unlimited`/`$null` in any case, quoted or
//!   not; an empty value is refused, so a forgotten number never silently
//!   lifts a limit;
//! - time spans: `hh:mm:ss` or `d.hh:mm:ss` with an optional `.fffffff`;
//! - byte quantities: `65536`, `64KB`, `10 MB`, `10 MB (10,485,760 bytes)`,
//!   and `unlimited` where the type allows it.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::diag::{Diagnostic, Diagnostics};
use crate::node::{Node, NodeKind, Style, excerpt};
use crate::secret::{CredentialRef, credential_diagnostic};
use crate::source::Span;
use crate::suggest::{did_you_mean_hint, find_ignore_case};
use crate::units::{
    Nullable, Unlimited, format_byte_quantity, format_timespan, parse_byte_quantity, parse_timespan,
};

/// Reads one value. `what` names it in messages, usually a dotted path such as
/// `imap_settings.MaxConnectionsPerUser` or `item 2 of imap_settings.Bindings`.
pub struct ValueReader<'n, 'd> {
    node: &'n Node,
    what: String,
    diags: &'d mut Diagnostics,
}

/// YAML 1.1 booleans, which YAML 1.2 reads as strings.
const YAML11_TRUE: &[&str] = &["yes", "y", "on"];
const YAML11_FALSE: &[&str] = &["no", "n", "off"];

impl<'n, 'd> ValueReader<'n, 'd> {
    /// Reads `node`, called `what` in messages, reporting problems to `diags`.
    pub fn new(node: &'n Node, what: impl Into<String>, diags: &'d mut Diagnostics) -> Self {
        ValueReader {
            node,
            what: what.into(),
            diags,
        }
    }

    #[must_use]
    /// The node being read.
    pub fn node(&self) -> &'n Node {
        self.node
    }

    #[must_use]
    /// What it is called in messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    #[must_use]
    /// Where it is.
    pub fn span(&self) -> Span {
        self.node.span
    }

    /// The collector, for callers that report problems of their own.
    pub fn diags(&mut self) -> &mut Diagnostics {
        self.diags
    }

    /// An error about this value, located at it, with the message prefixed by
    /// what the value is. Push it with [`ValueReader::report`].
    #[must_use]
    pub fn error(&self, code: &'static str, message: impl AsRef<str>) -> Diagnostic {
        Diagnostic::error(code, format!("{}: {}", self.what, message.as_ref()))
            .with_span(self.node.span)
    }

    /// Reports a problem with it.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Reports "expected X, found Y" with a hint guessed from what was found.
    fn wrong_type(mut self, expected: &str) {
        let hint = self.type_hint(expected);
        let d = self
            .error(
                "manifest::wrong-type",
                format!("expected {expected}, found {}", self.node.describe()),
            )
            .with_label(format!("expected {expected}"))
            .with_hint_opt(hint);
        self.report(d);
    }

    fn type_hint(&self, expected: &str) -> Option<String> {
        let node = self.node;
        match &node.kind {
            NodeKind::Str(s) if node.style.is_quoted() => {
                let inner = s.trim();
                if expected.contains("number")
                    && (inner.parse::<i64>().is_ok() || inner.parse::<f64>().is_ok())
                {
                    Some(format!("remove the quotes to write a number: {inner}"))
                } else if expected.contains("true or false")
                    && matches!(inner.to_ascii_lowercase().as_str(), "true" | "false")
                {
                    Some(format!(
                        "remove the quotes to write a boolean: {}",
                        inner.to_ascii_lowercase()
                    ))
                } else if expected.contains("null") && inner.eq_ignore_ascii_case("null") {
                    Some("remove the quotes to write null".into())
                } else {
                    None
                }
            }
            NodeKind::Str(s) if expected.contains("number") => {
                let digits: String = s.chars().filter(|&c| c != ',' && c != '_').collect();
                if digits != *s && digits.parse::<i64>().is_ok() {
                    Some(format!("write the number without separators: {digits}"))
                } else {
                    None
                }
            }
            NodeKind::Bool(_) | NodeKind::Null
                if expected == "a string" && !node.raw.trim().is_empty() =>
            {
                Some(format!(
                    "quote it if you mean the text: '{}'",
                    node.raw.trim()
                ))
            }
            NodeKind::Float(f) if expected.contains("whole number") && f.fract() == 0.0 => {
                Some(format!("write it without a decimal point: {f}"))
            }
            _ => None,
        }
    }

    /// A string. Plain numbers are accepted as the text written (`Name: 2010`
    /// gives "2010"); booleans and null are refused with a hint to quote them,
    /// since `Name: true` is more likely a mistake than a name.
    #[must_use]
    pub fn string(self) -> Option<String> {
        match &self.node.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(_) | NodeKind::Float(_) => Some(self.node.raw.trim().to_owned()),
            _ => {
                self.wrong_type("a string");
                None
            }
        }
    }

    /// A non-empty string (after trimming white space).
    #[must_use]
    pub fn non_empty_string(mut self) -> Option<String> {
        let node = self.node;
        let what_is_empty = matches!(&node.kind, NodeKind::Str(s) if s.trim().is_empty());
        if what_is_empty {
            let d = self
                .error("manifest::empty-string", "must not be empty")
                .with_label("empty");
            self.report(d);
            return None;
        }
        self.string()
    }

    /// `true` or `false`. YAML 1.1 spellings (`yes`, `no`, `on`, `off`, `y`,
    /// `n`, any case, unquoted) are accepted with a `manifest::yaml11-bool`
    /// warning, because other tools read them as booleans and YAML 1.2 as strings.
    #[must_use]
    pub fn bool(mut self) -> Option<bool> {
        let node = self.node;
        match &node.kind {
            NodeKind::Bool(b) => Some(*b),
            NodeKind::Str(s) if node.style == Style::Plain => {
                let lower = s.to_ascii_lowercase();
                let value = if YAML11_TRUE.contains(&lower.as_str()) {
                    true
                } else if YAML11_FALSE.contains(&lower.as_str()) {
                    false
                } else {
                    self.wrong_type("true or false");
                    return None;
                };
                let d = Diagnostic::warning(
                    "manifest::yaml11-bool",
                    format!(
                        "{}: '{s}' is read as {value}, but YAML 1.2 tools read it as a string",
                        self.what
                    ),
                )
                .with_span(node.span)
                .with_label(format!("read as {value}"))
                .with_hint(format!("write {value}"));
                self.report(d);
                Some(value)
            }
            _ => {
                self.wrong_type("true or false");
                None
            }
        }
    }

    /// A whole number (`i64`).
    #[must_use]
    pub fn int(mut self) -> Option<i64> {
        let node = self.node;
        match &node.kind {
            NodeKind::Int(i) => Some(*i),
            NodeKind::Str(s) if node.style == Style::Plain && looks_like_int(s) => {
                let d = self
                    .error(
                        "manifest::out-of-range",
                        format!("{} is too large for a number", excerpt(s)),
                    )
                    .with_label("too large");
                self.report(d);
                None
            }
            _ => {
                self.wrong_type("a whole number");
                None
            }
        }
    }

    /// A whole number within `range`.
    #[must_use]
    pub fn int_in_range(self, range: RangeInclusive<i64>) -> Option<i64> {
        let ValueReader { node, what, diags } = self;
        let value = ValueReader::new(node, what.clone(), &mut *diags).int()?;
        if range.contains(&value) {
            return Some(value);
        }
        diags.push(out_of_range(
            &what,
            node.span,
            &describe_range(&range),
            &value.to_string(),
        ));
        None
    }

    /// Exchange's `Unlimited`: a number within `range`, or `unlimited` (any
    /// case, quoted or not).
    #[must_use]
    pub fn unlimited_int(self, range: RangeInclusive<i64>) -> Option<Unlimited<i64>> {
        let node = self.node;
        match &node.kind {
            NodeKind::Str(s) if s.trim().eq_ignore_ascii_case("unlimited") => {
                Some(Unlimited::Unlimited)
            }
            NodeKind::Int(_) => self.int_in_range(range).map(Unlimited::Value),
            NodeKind::Str(s) if node.style == Style::Plain && looks_like_int(s) => {
                self.int().map(Unlimited::Value)
            }
            _ => {
                self.wrong_type("a whole number or 'unlimited'");
                None
            }
        }
    }

    /// A throttling value: a number within `range`, or `$null` (no limit)
    /// written as YAML null (`null`, `Null`, `NULL`, `~`), or as `unlimited` or
    /// `$null` (any case, quoted or not). An empty value is refused: a
    /// forgotten number must not silently lift a limit.
    #[must_use]
    pub fn nullable_int(mut self, range: RangeInclusive<i64>) -> Option<Nullable<i64>> {
        let node = self.node;
        match &node.kind {
            NodeKind::Null if !node.raw.trim().is_empty() => Some(Nullable::Null),
            NodeKind::Str(s)
                if s.trim().eq_ignore_ascii_case("unlimited")
                    || s.trim().eq_ignore_ascii_case("$null") =>
            {
                Some(Nullable::Null)
            }
            NodeKind::Int(_) => self.int_in_range(range).map(Nullable::Value),
            NodeKind::Str(s) if node.style == Style::Plain && looks_like_int(s) => {
                self.int().map(Nullable::Value)
            }
            NodeKind::Null => {
                let d = self
                    .error(
                        "manifest::missing-value",
                        "expected a whole number, null or 'unlimited', found nothing (an empty value)",
                    )
                    .with_label("no value")
                    .with_hint("write a number, or null to remove the limit ($null)");
                self.report(d);
                None
            }
            _ => {
                self.wrong_type("a whole number, null or 'unlimited'");
                None
            }
        }
    }

    /// One of `allowed`, compared ignoring case; returns the canonical spelling.
    #[must_use]
    pub fn one_of<'c>(mut self, allowed: &[&'c str]) -> Option<&'c str> {
        let node = self.node;
        let Some(text) = node.scalar_text().filter(|_| !node.is_null()) else {
            self.wrong_type(&format!("one of {}", allowed.join(", ")));
            return None;
        };
        let text = text.trim();
        if let Some(found) = find_ignore_case(text, allowed) {
            return Some(found);
        }
        let d = self
            .error(
                "manifest::invalid-value",
                format!("'{}' is not one of {}", excerpt(text), allowed.join(", ")),
            )
            .with_label("not an allowed value")
            .with_hint_opt(did_you_mean_hint(text, allowed));
        self.report(d);
        None
    }

    /// A list of strings. A single string is taken as a list of one, as
    /// Exchange's multi-valued parameters accept a single value. An empty list
    /// is allowed (it clears the values).
    #[must_use]
    pub fn string_list(self) -> Option<Vec<String>> {
        if matches!(self.node.kind, NodeKind::Str(_)) {
            return self.string().map(|s| vec![s]);
        }
        if !matches!(self.node.kind, NodeKind::Seq(_)) {
            self.wrong_type("a list of strings");
            return None;
        }
        self.list_of(|item| item.string())
    }

    /// A list whose items are read by `item`. Every item is read (so every
    /// problem is reported); `None` if the value is not a list or any item
    /// was refused.
    pub fn list_of<T>(
        self,
        mut item: impl FnMut(ValueReader<'n, '_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let NodeKind::Seq(items) = &self.node.kind else {
            self.wrong_type("a list");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, node) in items.iter().enumerate() {
            let what = format!("item {} of {}", i + 1, self.what);
            match item(ValueReader::new(node, what, &mut *self.diags)) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The node, its name in messages and the collector: for [`crate::reader`], which
    /// reads a value that is a map (`ValueReader::map`).
    pub(crate) fn into_parts(self) -> (&'n Node, String, &'d mut Diagnostics) {
        (self.node, self.what, self.diags)
    }

    /// A time span (`hh:mm:ss` or `d.hh:mm:ss`, optional `.fffffff`).
    #[must_use]
    pub fn timespan(mut self) -> Option<Duration> {
        let node = self.node;
        let text = match &node.kind {
            NodeKind::Str(s) => s.as_str(),
            NodeKind::Int(_) | NodeKind::Float(_) => node.raw.trim(),
            _ => {
                self.wrong_type("a time span such as 00:30:00");
                return None;
            }
        };
        match parse_timespan(text) {
            Ok(d) => Some(d),
            Err(e) => {
                let d = self
                    .error(
                        "manifest::invalid-timespan",
                        format!("'{}' is not a time span: {e}", excerpt(text)),
                    )
                    .with_label("not a time span")
                    .with_hint(
                        "write hh:mm:ss or d.hh:mm:ss, e.g. 00:00:30 for 30 seconds, \
                         00:30:00 for 30 minutes, 1.00:00:00 for a day",
                    );
                self.report(d);
                None
            }
        }
    }

    /// A time span between `min` and `max` inclusive.
    #[must_use]
    pub fn timespan_in_range(self, min: Duration, max: Duration) -> Option<Duration> {
        let ValueReader { node, what, diags } = self;
        let value = ValueReader::new(node, what.clone(), &mut *diags).timespan()?;
        if (min..=max).contains(&value) {
            return Some(value);
        }
        let range = format!(
            "between {} and {}",
            format_timespan(min),
            format_timespan(max)
        );
        diags.push(out_of_range(
            &what,
            node.span,
            &range,
            &format_timespan(value),
        ));
        None
    }

    /// A byte quantity: `65536`, `64KB`, `10 MB`, `10 MB (10,485,760 bytes)`.
    #[must_use]
    pub fn byte_quantity(mut self) -> Option<u64> {
        let node = self.node;
        let text = match &node.kind {
            NodeKind::Int(i) if *i >= 0 => return u64::try_from(*i).ok(),
            NodeKind::Str(s) => s.as_str(),
            NodeKind::Int(_) | NodeKind::Float(_) => node.raw.trim(),
            _ => {
                self.wrong_type("a byte quantity such as 10MB");
                return None;
            }
        };
        match parse_byte_quantity(text) {
            Ok(n) => Some(n),
            Err(e) => {
                let d = self
                    .error(
                        "manifest::invalid-byte-quantity",
                        format!("'{}' {e}", excerpt(text)),
                    )
                    .with_label("not a byte quantity")
                    .with_hint(
                        "write a number of bytes (65536) or a size with a unit: 64KB, 10MB, 2GB",
                    );
                self.report(d);
                None
            }
        }
    }

    /// A byte quantity within `range` (bytes, inclusive).
    #[must_use]
    pub fn byte_quantity_in_range(self, range: RangeInclusive<u64>) -> Option<u64> {
        let ValueReader { node, what, diags } = self;
        let value = ValueReader::new(node, what.clone(), &mut *diags).byte_quantity()?;
        if range.contains(&value) {
            return Some(value);
        }
        let text = format!(
            "between {} and {}",
            format_byte_quantity(*range.start()),
            format_byte_quantity(*range.end())
        );
        diags.push(out_of_range(
            &what,
            node.span,
            &text,
            &format_byte_quantity(value),
        ));
        None
    }

    /// A byte quantity within `range`, or `unlimited` (any case, quoted or not).
    #[must_use]
    pub fn unlimited_byte_quantity(self, range: RangeInclusive<u64>) -> Option<Unlimited<u64>> {
        if let NodeKind::Str(s) = &self.node.kind
            && s.trim().eq_ignore_ascii_case("unlimited")
        {
            return Some(Unlimited::Unlimited);
        }
        self.byte_quantity_in_range(range).map(Unlimited::Value)
    }

    /// A credential reference, `keyring:NAME` or `env:VAR`. A literal value is
    /// refused without being quoted in the message or the rendered source.
    #[must_use]
    pub fn credential(mut self) -> Option<CredentialRef> {
        let node = self.node;
        let Some(text) = node.as_str() else {
            let d = self
                .error(
                    "manifest::bad-credential-ref",
                    format!(
                        "expected a credential reference (keyring:NAME or env:VAR), found {}",
                        node.type_name()
                    ),
                )
                .without_source();
            self.report(d);
            return None;
        };
        match CredentialRef::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                let d = credential_diagnostic(&self.what, node.span, &e);
                self.report(d);
                None
            }
        }
    }
}

fn looks_like_int(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `between 1 and 25000`, `at least 0`, `at most 10`.
#[must_use]
pub fn describe_range(range: &RangeInclusive<i64>) -> String {
    match (*range.start(), *range.end()) {
        (i64::MIN, i64::MAX) => "any number".into(),
        (lo, i64::MAX) => format!("at least {lo}"),
        (i64::MIN, hi) => format!("at most {hi}"),
        (lo, hi) => format!("between {lo} and {hi}"),
    }
}

fn out_of_range(what: &str, span: Span, range: &str, found: &str) -> Diagnostic {
    Diagnostic::error(
        "manifest::out-of-range",
        format!("{what} must be {range}, found {found}"),
    )
    .with_span(span)
    .with_label(format!("must be {range}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;
    use crate::parse::parse_str;

    /// Reads key `v` of a one-entry document with `f`; returns the result and
    /// the diagnostics.
    fn read<T>(
        yaml_value: &str,
        f: impl FnOnce(ValueReader<'_, '_>) -> Option<T>,
    ) -> (Option<T>, Diagnostics) {
        let (_, docs, mut diags) = parse_str("t.yaml", format!("v: {yaml_value}\n"));
        assert!(diags.is_empty(), "{diags:?}");
        let node = docs[0].root.get("v").unwrap();
        let out = f(ValueReader::new(node, "s.v", &mut diags));
        (out, diags)
    }

    /// The single diagnostic: (code, message, line, column, hint).
    fn one(diags: &Diagnostics) -> (&'static str, String, u32, u32, Option<String>) {
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = &diags.as_slice()[0];
        let s = d.span.unwrap();
        (
            d.code,
            d.message.clone(),
            s.start.line,
            s.start.column,
            d.hint.clone(),
        )
    }

    #[test]
    fn int_accepts_plain_numbers_and_explains_quoted_ones() {
        assert_eq!(read("16", |v| v.int()).0, Some(16));
        assert_eq!(read("-3", |v| v.int()).0, Some(-3));
        let (got, diags) = read("'16'", |v| v.int());
        assert_eq!(got, None);
        assert_eq!(
            one(&diags),
            (
                "manifest::wrong-type",
                "s.v: expected a whole number, found the quoted string '16'".into(),
                1,
                4,
                Some("remove the quotes to write a number: 16".into())
            )
        );
        assert_eq!(
            diags.as_slice()[0].label.as_deref(),
            Some("expected a whole number")
        );
        let (_, diags) = read("5.0", |v| v.int());
        assert_eq!(
            one(&diags).1,
            "s.v: expected a whole number, found the number 5.0"
        );
        assert_eq!(
            one(&diags).4.as_deref(),
            Some("write it without a decimal point: 5")
        );
        let (_, diags) = read("25,000", |v| v.int());
        assert_eq!(
            one(&diags).4.as_deref(),
            Some("write the number without separators: 25000")
        );
        let (_, diags) = read("99999999999999999999", |v| v.int());
        assert_eq!(
            one(&diags).0..=one(&diags).0,
            "manifest::out-of-range"..="manifest::out-of-range"
        );
        assert_eq!(
            one(&diags).1,
            "s.v: 99999999999999999999 is too large for a number"
        );
        let (_, diags) = read("[1]", |v| v.int());
        assert_eq!(one(&diags).1, "s.v: expected a whole number, found a list");
    }

    #[test]
    fn ranges_are_named() {
        assert_eq!(read("40", |v| v.int_in_range(1..=25000)).0, Some(40));
        let (got, diags) = read("30000", |v| v.int_in_range(1..=25000));
        assert_eq!(got, None);
        assert_eq!(
            one(&diags),
            (
                "manifest::out-of-range",
                "s.v must be between 1 and 25000, found 30000".into(),
                1,
                4,
                None
            )
        );
        assert_eq!(
            diags.as_slice()[0].label.as_deref(),
            Some("must be between 1 and 25000")
        );
        let (_, diags) = read("-1", |v| v.int_in_range(0..=i64::MAX));
        assert_eq!(one(&diags).1, "s.v must be at least 0, found -1");
        assert_eq!(describe_range(&(i64::MIN..=3)), "at most 3");
    }

    #[test]
    fn bool_accepts_yaml11_words_with_a_warning() {
        assert_eq!(read("true", |v| v.bool()).0, Some(true));
        assert_eq!(read("FALSE", |v| v.bool()).0, Some(false));
        let (got, diags) = read("yes", |v| v.bool());
        assert_eq!(got, Some(true));
        let d = &diags.as_slice()[0];
        assert_eq!(d.severity, Severity::Warning);
        assert_eq!(
            one(&diags),
            (
                "manifest::yaml11-bool",
                "s.v: 'yes' is read as true, but YAML 1.2 tools read it as a string".into(),
                1,
                4,
                Some("write true".into())
            )
        );
        assert_eq!(read("Off", |v| v.bool()).0, Some(false));
        let (got, diags) = read("'true'", |v| v.bool());
        assert_eq!(got, None);
        assert_eq!(
            one(&diags).1,
            "s.v: expected true or false, found the quoted string 'true'"
        );
        assert_eq!(
            one(&diags).4.as_deref(),
            Some("remove the quotes to write a boolean: true")
        );
        let (_, diags) = read("'yes'", |v| v.bool());
        assert!(diags.has_errors());
        let (_, diags) = read("maybe", |v| v.bool());
        assert_eq!(
            one(&diags).1,
            "s.v: expected true or false, found the string 'maybe'"
        );
    }

    #[test]
    fn string_takes_numbers_as_written_and_refuses_booleans() {
        assert_eq!(
            read("hello world", |v| v.string()).0.as_deref(),
            Some("hello world")
        );
        assert_eq!(read("2010", |v| v.string()).0.as_deref(), Some("2010"));
        assert_eq!(read("1.10", |v| v.string()).0.as_deref(), Some("1.10"));
        let (_, diags) = read("true", |v| v.string());
        assert_eq!(
            one(&diags).1,
            "s.v: expected a string, found the boolean true"
        );
        assert_eq!(
            one(&diags).4.as_deref(),
            Some("quote it if you mean the text: 'true'")
        );
        let (_, diags) = read("", |v| v.string());
        assert_eq!(
            one(&diags).1,
            "s.v: expected a string, found nothing (an empty value)"
        );
        let (_, diags) = read("'  '", |v| v.non_empty_string());
        assert_eq!(one(&diags).1, "s.v: must not be empty");
    }

    #[test]
    fn unlimited_values() {
        assert_eq!(
            read("unlimited", |v| v.unlimited_int(1..=10)).0,
            Some(Unlimited::Unlimited)
        );
        assert_eq!(
            read("'Unlimited'", |v| v.unlimited_int(1..=10)).0,
            Some(Unlimited::Unlimited)
        );
        assert_eq!(
            read("5", |v| v.unlimited_int(1..=10)).0,
            Some(Unlimited::Value(5))
        );
        let (_, diags) = read("11", |v| v.unlimited_int(1..=10));
        assert_eq!(one(&diags).1, "s.v must be between 1 and 10, found 11");
        let (_, diags) = read("none", |v| v.unlimited_int(1..=10));
        assert_eq!(
            one(&diags).1,
            "s.v: expected a whole number or 'unlimited', found the string 'none'"
        );
        let (_, diags) = read("'5'", |v| v.unlimited_int(1..=10));
        assert_eq!(
            one(&diags).4.as_deref(),
            Some("remove the quotes to write a number: 5")
        );
    }

    #[test]
    fn nullable_values() {
        for text in [
            "null",
            "~",
            "NULL",
            "$null",
            "'$NULL'",
            "unlimited",
            "\"Unlimited\"",
        ] {
            assert_eq!(
                read(text, |v| v.nullable_int(0..=100)).0,
                Some(Nullable::Null),
                "{text}"
            );
        }
        assert_eq!(
            read("75", |v| v.nullable_int(0..=100)).0,
            Some(Nullable::Value(75))
        );
        let (got, diags) = read("", |v| v.nullable_int(0..=100));
        assert_eq!(got, None);
        assert_eq!(
            one(&diags),
            (
                "manifest::missing-value",
                "s.v: expected a whole number, null or 'unlimited', found nothing (an empty value)"
                    .into(),
                1,
                2,
                Some("write a number, or null to remove the limit ($null)".into())
            )
        );
        let (_, diags) = read("'null'", |v| v.nullable_int(0..=100));
        assert_eq!(
            one(&diags).4.as_deref(),
            Some("remove the quotes to write null")
        );
        let (_, diags) = read("150", |v| v.nullable_int(0..=100));
        assert_eq!(one(&diags).1, "s.v must be between 0 and 100, found 150");
    }

    #[test]
    fn enumerations_ignore_case_and_suggest() {
        const SOURCES: &[&str] = &["None", "IPAddress", "User", "All"];
        assert_eq!(
            read("ipaddress", |v| v.one_of(SOURCES)).0,
            Some("IPAddress")
        );
        let (_, diags) = read("IPAdress", |v| v.one_of(SOURCES));
        assert_eq!(
            one(&diags),
            (
                "manifest::invalid-value",
                "s.v: 'IPAdress' is not one of None, IPAddress, User, All".into(),
                1,
                4,
                Some("did you mean 'IPAddress'?".into())
            )
        );
        let (_, diags) = read("{a: 1}", |v| v.one_of(SOURCES));
        assert_eq!(
            one(&diags).1,
            "s.v: expected one of None, IPAddress, User, All, found a map"
        );
    }

    #[test]
    fn lists_report_every_bad_item() {
        assert_eq!(
            read("[a, b]", |v| v.string_list()).0,
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            read("0.0.0.0:143", |v| v.string_list()).0,
            Some(vec!["0.0.0.0:143".to_owned()])
        );
        assert_eq!(read("[]", |v| v.string_list()).0, Some(vec![]));
        let (got, diags) = read("[a, {x: 1}, true]", |v| v.string_list());
        assert_eq!(got, None);
        let msgs: Vec<_> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "item 2 of s.v: expected a string, found a map",
                "item 3 of s.v: expected a string, found the boolean true"
            ]
        );
        let (_, diags) = read("5", |v| v.string_list());
        assert_eq!(
            one(&diags).1,
            "s.v: expected a list of strings, found the number 5"
        );
        let (got, _) = read("[{n: 1}, {n: 2}]", |v| {
            v.list_of(|item| {
                let mut m = item.map()?;
                let n = m.int("n");
                m.finish();
                n
            })
        });
        assert_eq!(got, Some(vec![1, 2]));
    }

    #[test]
    fn timespans() {
        assert_eq!(
            read("00:30:00", |v| v.timespan()).0,
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            read("'1.00:00:00'", |v| v.timespan()).0,
            Some(Duration::from_secs(86_400))
        );
        let (_, diags) = read("30", |v| v.timespan());
        let (code, message, line, column, hint) = one(&diags);
        assert_eq!((code, line, column), ("manifest::invalid-timespan", 1, 4));
        assert_eq!(
            message,
            "s.v: '30' is not a time span: a bare number is not a time span"
        );
        assert!(hint.unwrap().starts_with("write hh:mm:ss or d.hh:mm:ss"));
        let (_, diags) = read("2.00:00:00", |v| {
            v.timespan_in_range(Duration::from_secs(30), Duration::from_secs(86_400))
        });
        assert_eq!(
            one(&diags).1,
            "s.v must be between 00:00:30 and 1.00:00:00, found 2.00:00:00"
        );
        let (_, diags) = read("[]", |v| v.timespan());
        assert_eq!(
            one(&diags).1,
            "s.v: expected a time span such as 00:30:00, found a list"
        );
    }

    #[test]
    fn byte_quantities() {
        let any = 0..=u64::MAX;
        assert_eq!(read("65536", |v| v.byte_quantity()).0, Some(65_536));
        assert_eq!(read("10MB", |v| v.byte_quantity()).0, Some(10 << 20));
        assert_eq!(
            read("10 MB (10,485,760 bytes)", |v| v.byte_quantity()).0,
            Some(10_485_760)
        );
        assert_eq!(
            read("unlimited", |v| v.unlimited_byte_quantity(any.clone())).0,
            Some(Unlimited::Unlimited)
        );
        assert_eq!(
            read("64KB", |v| v.unlimited_byte_quantity(any.clone())).0,
            Some(Unlimited::Value(65_536))
        );
        let (_, diags) = read("10 XB", |v| v.byte_quantity());
        assert_eq!(
            one(&diags).1,
            "s.v: '10 XB' unknown unit 'XB' (use B, KB, MB, GB or TB)"
        );
        assert_eq!(one(&diags).0, "manifest::invalid-byte-quantity");
        let (_, diags) = read("1KB", |v| v.byte_quantity_in_range(65_536..=2_147_483_647));
        assert_eq!(
            one(&diags).1,
            "s.v must be between 64 KB (65,536 bytes) and 2 GB (2,147,483,647 bytes), found 1 KB (1,024 bytes)"
        );
        let (_, diags) = read("-1", |v| v.byte_quantity());
        assert!(diags.has_errors());
    }

    #[test]
    fn credentials_never_echo_the_value() {
        assert_eq!(
            read("keyring:svc", |v| v.credential()).0,
            Some(CredentialRef::Keyring("svc".into()))
        );
        let (_, diags) = read("hunter2", |v| v.credential());
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::secret-in-clear");
        assert!(!d.message.contains("hunter2"));
        assert!(!d.show_source);
        let (_, diags) = read("1234", |v| v.credential());
        assert_eq!(
            one(&diags).1,
            "s.v: expected a credential reference (keyring:NAME or env:VAR), found a number"
        );
    }
}
