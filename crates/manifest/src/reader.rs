//! [`MapReader`]: how a resource kind reads its part of a manifest.
//!
//! A kind asks for the keys it knows, each with the type it expects; the reader
//! finds them ignoring case (Exchange parameter names ignore case), reports
//! wrong values with their exact location, and at [`MapReader::finish`]
//! reports every key nobody asked for, with a "did you mean" among the names
//! that were asked for or declared known. Nothing stops at the first problem.
//!
//! ```
//! use exctl_manifest::{Diagnostics, MapReader, parse_str};
//!
//! let (_, docs, _) = parse_str("lon.yaml", "MaxConnectionPerUser: 40\nBanner: hi\n");
//! let mut diags = Diagnostics::new();
//! let mut m = MapReader::new(&docs[0].root, "imap_settings", &mut diags).unwrap()
//!     .with_unknown_label("not a Set-ImapSettings parameter");
//! let max = m.int_in_range("MaxConnectionsPerUser", 1..=25000);
//! let banner = m.string("Banner");
//! m.finish();
//! assert_eq!((max, banner.as_deref()), (None, Some("hi")));
//! assert_eq!(diags.as_slice()[0].hint.as_deref(), Some("did you mean 'MaxConnectionsPerUser'?"));
//! ```

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::diag::{Diagnostic, Diagnostics};
use crate::node::{Key, Node, NodeKind};
use crate::secret::CredentialRef;
use crate::source::Span;
use crate::suggest::did_you_mean_hint;
use crate::units::{Nullable, Unlimited};
use crate::value::ValueReader;

/// Reads the entries of one map, tracking which keys were used.
pub struct MapReader<'n, 'd> {
    node: &'n Node,
    entries: &'n [(Key, Node)],
    path: String,
    used: Vec<bool>,
    /// Every name asked for, present or not: the candidates for suggestions.
    asked: Vec<String>,
    unknown_label: Option<String>,
    diags: &'d mut Diagnostics,
}

impl<'n, 'd> MapReader<'n, 'd> {
    /// Starts reading `node` as a map; `path` names it in messages (e.g.
    /// `sites.lon.imap_settings`). An empty value counts as an empty map.
    /// Anything else is reported (`manifest::wrong-type`) and gives `None`.
    pub fn new(
        node: &'n Node,
        path: impl Into<String>,
        diags: &'d mut Diagnostics,
    ) -> Option<Self> {
        let path = path.into();
        let entries: &'n [(Key, Node)] = match &node.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null if node.raw.trim().is_empty() => &[],
            _ => {
                diags.push(
                    Diagnostic::error(
                        "manifest::wrong-type",
                        format!("{path}: expected a map, found {}", node.describe()),
                    )
                    .with_span(node.span)
                    .with_label("expected a map"),
                );
                return None;
            }
        };
        Some(MapReader {
            node,
            entries,
            path,
            used: vec![false; entries.len()],
            asked: Vec::new(),
            unknown_label: None,
            diags,
        })
    }

    /// The label put under unknown keys at [`MapReader::finish`], e.g.
    /// "not a Set-ImapSettings parameter" (default: "unknown key").
    #[must_use]
    pub fn with_unknown_label(mut self, label: impl Into<String>) -> Self {
        self.unknown_label = Some(label.into());
        self
    }

    #[must_use]
    /// The dotted path of the map, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    #[must_use]
    /// Where the map is.
    pub fn span(&self) -> Span {
        self.node.span
    }

    #[must_use]
    /// The map node being read.
    pub fn node(&self) -> &'n Node {
        self.node
    }

    /// All entries, used or not, in source order.
    #[must_use]
    pub fn entries(&self) -> &'n [(Key, Node)] {
        self.entries
    }

    /// The collector, for callers that report problems of their own.
    pub fn diags(&mut self) -> &mut Diagnostics {
        self.diags
    }

    /// Whether `key` is present (ignoring case). Does not mark it used.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.text.eq_ignore_ascii_case(key))
    }

    /// Finds `key` ignoring case and marks it used. Two keys differing only in
    /// case name the same parameter: that is reported once, and the one spelt
    /// exactly like `key` (or else the first) is returned.
    fn find(&mut self, key: &str) -> Option<(&'n Key, &'n Node)> {
        if !self.asked.iter().any(|a| a == key) {
            self.asked.push(key.to_owned());
        }
        let entries = self.entries;
        let matches: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k.text.eq_ignore_ascii_case(key))
            .map(|(i, _)| i)
            .collect();
        let &first = matches.first()?;
        let already_used = matches
            .iter()
            .any(|&i| self.used.get(i).copied().unwrap_or(false));
        for &i in &matches {
            if let Some(u) = self.used.get_mut(i) {
                *u = true;
            }
        }
        let chosen = matches
            .iter()
            .copied()
            .find(|&i| entries.get(i).is_some_and(|(k, _)| k.text == key))
            .unwrap_or(first);
        if matches.len() > 1 && !already_used {
            let names: Vec<&Key> = matches
                .iter()
                .filter_map(|&i| entries.get(i).map(|(k, _)| k))
                .collect();
            if let (Some(a), Some(b)) = (names.first(), names.get(1)) {
                let mut d = Diagnostic::error(
                    "manifest::duplicate-key",
                    format!(
                        "'{}' and '{}'{} name the same key '{key}'",
                        a.text,
                        b.text,
                        self.in_path()
                    ),
                )
                .with_span(b.span)
                .with_label("same key again")
                .with_hint("key names ignore case here, as Exchange parameter names do; keep one");
                for k in names.iter().skip(2) {
                    d = d.with_related(k.span, "and again here");
                }
                d = d.with_related(a.span, "first defined here");
                self.diags.push(d);
            }
        }
        entries.get(chosen).map(|(k, v)| (k, v))
    }

    /// The value of `key` (ignoring case) for typed reading; `None` if absent.
    /// Messages name it `path.key` with the spelling given here (canonical).
    pub fn value(&mut self, key: &str) -> Option<ValueReader<'n, '_>> {
        let (_, node) = self.find(key)?;
        let what = self.what(key);
        Some(ValueReader::new(node, what, &mut *self.diags))
    }

    /// Like [`MapReader::value`], but a missing key is reported
    /// (`manifest::missing-key`).
    pub fn required(&mut self, key: &str) -> Option<ValueReader<'n, '_>> {
        if self.find(key).is_none() {
            self.diags.push(
                Diagnostic::error(
                    "manifest::missing-key",
                    format!("missing key '{key}'{}", self.in_path()),
                )
                .with_span(Span::point(self.node.span.file, self.node.span.start))
                .with_label(format!("'{key}' is required here")),
            );
            return None;
        }
        self.value(key)
    }

    /// The raw node of `key`, marked used.
    pub fn node_of(&mut self, key: &str) -> Option<&'n Node> {
        self.find(key).map(|(_, v)| v)
    }

    /// The key as written in the manifest (for callers that need its span).
    pub fn key_of(&mut self, key: &str) -> Option<&'n Key> {
        self.find(key).map(|(k, _)| k)
    }

    /// ` in PATH`, or nothing for the root of a document.
    fn in_path(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.path)
        }
    }

    fn what(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// See [`ValueReader::string`].
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.value(key)?.string()
    }

    /// See [`ValueReader::non_empty_string`].
    pub fn non_empty_string(&mut self, key: &str) -> Option<String> {
        self.value(key)?.non_empty_string()
    }

    /// See [`ValueReader::bool`].
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        self.value(key)?.bool()
    }

    /// See [`ValueReader::int`].
    pub fn int(&mut self, key: &str) -> Option<i64> {
        self.value(key)?.int()
    }

    /// See [`ValueReader::int_in_range`].
    pub fn int_in_range(&mut self, key: &str, range: RangeInclusive<i64>) -> Option<i64> {
        self.value(key)?.int_in_range(range)
    }

    /// See [`ValueReader::unlimited_int`].
    pub fn unlimited_int(
        &mut self,
        key: &str,
        range: RangeInclusive<i64>,
    ) -> Option<Unlimited<i64>> {
        self.value(key)?.unlimited_int(range)
    }

    /// See [`ValueReader::nullable_int`].
    pub fn nullable_int(&mut self, key: &str, range: RangeInclusive<i64>) -> Option<Nullable<i64>> {
        self.value(key)?.nullable_int(range)
    }

    /// See [`ValueReader::one_of`].
    pub fn one_of<'c>(&mut self, key: &str, allowed: &[&'c str]) -> Option<&'c str> {
        self.value(key)?.one_of(allowed)
    }

    /// See [`ValueReader::string_list`].
    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        self.value(key)?.string_list()
    }

    /// See [`ValueReader::list_of`].
    pub fn list_of<T>(
        &mut self,
        key: &str,
        item: impl FnMut(ValueReader<'n, '_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.value(key)?.list_of(item)
    }

    /// A nested map, read with its own reader (finish it before using `self` again).
    pub fn map(&mut self, key: &str) -> Option<MapReader<'n, '_>> {
        self.value(key)?.map()
    }

    /// See [`ValueReader::timespan`].
    pub fn timespan(&mut self, key: &str) -> Option<Duration> {
        self.value(key)?.timespan()
    }

    /// See [`ValueReader::timespan_in_range`].
    pub fn timespan_in_range(
        &mut self,
        key: &str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        self.value(key)?.timespan_in_range(min, max)
    }

    /// See [`ValueReader::byte_quantity`].
    pub fn byte_quantity(&mut self, key: &str) -> Option<u64> {
        self.value(key)?.byte_quantity()
    }

    /// See [`ValueReader::byte_quantity_in_range`].
    pub fn byte_quantity_in_range(&mut self, key: &str, range: RangeInclusive<u64>) -> Option<u64> {
        self.value(key)?.byte_quantity_in_range(range)
    }

    /// See [`ValueReader::unlimited_byte_quantity`].
    pub fn unlimited_byte_quantity(
        &mut self,
        key: &str,
        range: RangeInclusive<u64>,
    ) -> Option<Unlimited<u64>> {
        self.value(key)?.unlimited_byte_quantity(range)
    }

    /// See [`ValueReader::credential`].
    pub fn credential(&mut self, key: &str) -> Option<CredentialRef> {
        self.value(key)?.credential()
    }

    /// Every entry not used yet, marking them used: for maps whose keys are
    /// data (host names, registry value names) rather than a fixed schema.
    pub fn rest(&mut self) -> Vec<(&'n Key, &'n Node)> {
        let entries = self.entries;
        let mut out = Vec::new();
        for (used, (k, v)) in self.used.iter_mut().zip(entries) {
            if !*used {
                *used = true;
                out.push((k, v));
            }
        }
        out
    }

    /// Ends reading: every key not asked for is reported as
    /// `manifest::unknown-key`, suggesting the closest name asked for.
    pub fn finish(self) {
        self.finish_with_known(&[]);
    }

    /// Like [`MapReader::finish`], also suggesting among `known` (the names of
    /// every parameter the kind knows, whether or not this map used them).
    pub fn finish_with_known(self, known: &[&str]) {
        let mut candidates: Vec<&str> = self.asked.iter().map(String::as_str).collect();
        candidates.extend(known.iter().copied());
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let label = self
                .unknown_label
                .clone()
                .unwrap_or_else(|| "unknown key".to_owned());
            let d = Diagnostic::error(
                "manifest::unknown-key",
                format!("unknown key '{}'{}", key.text, self.in_path()),
            )
            .with_span(key.span)
            .with_label(label)
            .with_hint_opt(did_you_mean_hint(&key.text, &candidates));
            self.diags.push(d);
        }
    }
}

// Here rather than in `value`, so that `value` (one value) knows nothing of maps of them.
impl<'n, 'd> ValueReader<'n, 'd> {
    /// A map, read with a [`MapReader`] (an empty value counts as an empty map).
    #[must_use]
    pub fn map(self) -> Option<MapReader<'n, 'd>> {
        let (node, what, diags) = self.into_parts();
        MapReader::new(node, what, diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;

    fn doc(text: &str) -> Node {
        let (_, mut docs, diags) = parse_str("t.yaml", text);
        assert!(diags.is_empty(), "{diags:?}");
        docs.remove(0).root
    }

    const KNOWN: &[&str] = &["MaxConnections", "MaxConnectionsPerUser", "Banner"];

    #[test]
    fn keys_are_found_ignoring_case_and_named_canonically() {
        let root = doc("maxconnectionsperuser: '5'\nBANNER: hi\n");
        let mut diags = Diagnostics::new();
        let mut m = MapReader::new(&root, "imap_settings", &mut diags).unwrap();
        assert!(m.has("MaxConnectionsPerUser"));
        assert_eq!(m.int("MaxConnectionsPerUser"), None);
        assert_eq!(m.string("Banner").as_deref(), Some("hi"));
        m.finish_with_known(KNOWN);
        assert_eq!(diags.len(), 1);
        assert_eq!(
            diags.as_slice()[0].message,
            "imap_settings.MaxConnectionsPerUser: expected a whole number, found the quoted string '5'"
        );
    }

    #[test]
    fn keys_differing_only_in_case_are_one_key() {
        let root = doc("MaxConnections: 1\nmaxconnections: 2\n");
        let mut diags = Diagnostics::new();
        let mut m = MapReader::new(&root, "imap_settings", &mut diags).unwrap();
        assert_eq!(m.int("MaxConnections"), Some(1));
        assert_eq!(m.int("MaxConnections"), Some(1));
        m.finish();
        assert_eq!(diags.len(), 1);
        let d = &diags.as_slice()[0];
        assert_eq!(d.code, "manifest::duplicate-key");
        assert_eq!(
            d.message,
            "'MaxConnections' and 'maxconnections' in imap_settings name the same key 'MaxConnections'"
        );
        assert_eq!(d.span.unwrap().start.line, 2);
        assert_eq!(d.related[0].0.start.line, 1);
    }

    #[test]
    fn unknown_keys_are_all_reported_with_suggestions() {
        let root = doc("MaxConnectionPerUser: 40\nBanner: x\nFoo: 1\nmaxconections: 3\n");
        let mut diags = Diagnostics::new();
        let mut m = MapReader::new(&root, "imap_settings", &mut diags)
            .unwrap()
            .with_unknown_label("not a Set-ImapSettings parameter");
        let _ = m.string("Banner");
        let _ = m.int("MaxConnectionsPerUser");
        m.finish_with_known(KNOWN);
        let got: Vec<_> = diags
            .iter()
            .map(|d| {
                let s = d.span.unwrap();
                (
                    d.code,
                    d.message.as_str(),
                    s.start.line,
                    s.start.column,
                    d.label.as_deref(),
                    d.hint.as_deref(),
                )
            })
            .collect();
        let label = Some("not a Set-ImapSettings parameter");
        assert_eq!(
            got,
            [
                (
                    "manifest::unknown-key",
                    "unknown key 'MaxConnectionPerUser' in imap_settings",
                    1,
                    1,
                    label,
                    Some("did you mean 'MaxConnectionsPerUser'?")
                ),
                (
                    "manifest::unknown-key",
                    "unknown key 'Foo' in imap_settings",
                    3,
                    1,
                    label,
                    None
                ),
                (
                    "manifest::unknown-key",
                    "unknown key 'maxconections' in imap_settings",
                    4,
                    1,
                    label,
                    Some("did you mean 'MaxConnections'?")
                ),
            ]
        );
    }

    #[test]
    fn finish_suggests_among_names_asked_for() {
        let root = doc("Banr: x\n");
        let mut diags = Diagnostics::new();
        let mut m = MapReader::new(&root, "", &mut diags).unwrap();
        assert_eq!(m.string("Banner"), None);
        m.finish();
        let d = &diags.as_slice()[0];
        assert_eq!(d.message, "unknown key 'Banr'");
        assert_eq!(d.label.as_deref(), Some("unknown key"));
        assert_eq!(d.hint.as_deref(), Some("did you mean 'Banner'?"));
    }

    #[test]
    fn required_keys_and_nested_maps() {
        let root = doc("policy:\n  Limits:\n    IMAPMaxConcurrency: ~\n    Extra: 1\n");
        let mut diags = Diagnostics::new();
        let mut top = MapReader::new(&root, "", &mut diags).unwrap();
        let mut policy = top.map("policy").unwrap();
        assert!(policy.required("Name").is_none());
        {
            let mut limits = policy.map("Limits").unwrap();
            assert_eq!(
                limits.nullable_int("IMAPMaxConcurrency", 0..=i64::MAX),
                Some(Nullable::Null)
            );
            limits.finish();
        }
        policy.finish();
        top.finish();
        let got: Vec<_> = diags
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.message.as_str(),
                    d.span.unwrap().start.line,
                    d.span.unwrap().start.column,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "manifest::missing-key",
                    "missing key 'Name' in policy",
                    2,
                    3
                ),
                (
                    "manifest::unknown-key",
                    "unknown key 'Extra' in policy.Limits",
                    4,
                    5
                ),
            ]
        );
    }

    #[test]
    fn non_maps_are_refused_and_empty_values_are_empty_maps() {
        let root = doc("a: [1]\nb:\n");
        let mut diags = Diagnostics::new();
        let mut top = MapReader::new(&root, "site", &mut diags).unwrap();
        assert!(top.map("a").is_none());
        let b = top.map("b").unwrap();
        assert!(b.entries().is_empty());
        b.finish();
        top.finish();
        assert_eq!(diags.len(), 1);
        assert_eq!(
            diags.as_slice()[0].message,
            "site.a: expected a map, found a list"
        );
        assert_eq!(diags.as_slice()[0].code, "manifest::wrong-type");
    }

    #[test]
    fn rest_takes_free_form_entries() {
        let root =
            doc("ensure: present\nMaximum Allowed Service Sessions Per User: 64\nOther: 1\n");
        let mut diags = Diagnostics::new();
        let mut m = MapReader::new(&root, "registry", &mut diags).unwrap();
        assert_eq!(m.one_of("ensure", &["present", "absent"]), Some("present"));
        let rest: Vec<_> = m.rest().into_iter().map(|(k, _)| k.text.as_str()).collect();
        assert_eq!(rest, ["Maximum Allowed Service Sessions Per User", "Other"]);
        m.finish();
        assert!(diags.is_empty());
    }
}
