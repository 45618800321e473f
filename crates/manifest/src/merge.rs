//! Overlaying manifest trees: baselines, then a site's values, then a host's, each layer
//! overriding or extending the ones below it, with the origin of every value kept.
//!
//! The rules (documented for users in `docs/manifests.md`):
//!
//! - **Maps merge key by key**, keys compared ignoring case (Exchange parameter and
//!   object names ignore case). A key only in the lower layer stays.
//! - **Scalars and lists: the more specific layer wins** (a list replaces the list it
//!   overrides).
//! - **`KEY+:` extends a list** instead of replacing it: its items are appended to the
//!   effective `KEY` of the layers below (a single string there counts as a list of one).
//!   Without anything below, it is just the list.
//! - **Lists of resources merge by identity** where the caller says how to identify an
//!   entry (a registry value by path and name): an entry with the identity of a lower
//!   entry merges into it (as a map), others are appended.
//! - **`ensure: absent` replaces**: a map saying `ensure: absent` replaces what it
//!   overrides wholesale, so that a baseline's attributes do not cling to a resource that
//!   is to be removed.
//! - An empty value (`section:` with nothing) adds nothing.
//! - **Layers of the same level must not disagree**: two documents of one level (two
//!   documents of one site, say) setting the same scalar is an error naming both places
//!   (`manifest::conflicting-values`), since neither is more specific. Extending the same
//!   list from both is fine.
//!
//! The result, [`Merged`], is a tree whose every value knows its [`Origin`] and keeps the
//! span of the node it came from, so that [`Merged::to_node`] gives the resource kinds a
//! [`Node`] whose diagnostics point at the file and line that set the value.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::node::{Key, Node, NodeKind, Style};
use crate::source::Span;

/// Which layer a value came from: its precedence `level` (higher wins) and an identifier
/// of the layer (one document) that the caller can turn into a description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Precedence: a layer of a higher level overrides one of a lower level.
    pub level: u32,
    /// The layer (for instance the index of its document).
    pub layer: u32,
}

/// A merged tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Merged {
    /// A scalar (or an empty value), as one layer wrote it.
    Value {
        /// The node as written.
        node: Node,
        /// Its layer.
        origin: Origin,
    },
    /// A map merged key by key.
    Map {
        /// Entries in first-seen order; keys are unique ignoring case.
        entries: Vec<(Key, Merged)>,
        /// The span of the map that started it.
        span: Span,
        /// The layer that started it.
        origin: Origin,
    },
    /// A list: set by one layer, possibly extended or merged into by others.
    List {
        /// The items, each with its own origin.
        items: Vec<Merged>,
        /// The span of the list that set it.
        span: Span,
        /// The layer that set it.
        origin: Origin,
    },
}

/// How the entries of a list of resources are identified: given the section key
/// (`registry_values`) and an entry, its identity, or `None` (no identity: appended).
pub type IdentityFn<'a> = &'a dyn Fn(&str, &Node) -> Option<String>;

/// Describes a layer for messages (`site lon`, `baseline uccx`).
pub type DescribeFn<'a> = &'a dyn Fn(Origin) -> String;

/// The state of one overlay: where problems go and how to name things.
pub struct Overlay<'a> {
    identity: IdentityFn<'a>,
    describe: DescribeFn<'a>,
    diags: &'a mut Diagnostics,
}

fn empty_map(span: Span, origin: Origin) -> Merged {
    Merged::Map {
        entries: Vec::new(),
        span,
        origin,
    }
}

fn is_empty_value(n: &Node) -> bool {
    n.is_null() && n.raw.trim().is_empty()
}

/// Whether a map says `ensure: absent`.
fn says_absent(n: &Node) -> bool {
    n.as_map().is_some_and(|entries| {
        entries.iter().any(|(k, v)| {
            k.text.eq_ignore_ascii_case("ensure")
                && v.as_str()
                    .is_some_and(|s| s.trim().eq_ignore_ascii_case("absent"))
        })
    })
}

/// The position of each key of a map (`base`) by its lower-case spelling (the first,
/// as a scan would find), so that overlaying a map of thousands of keys looks each up
/// instead of scanning the keys merged before it.
fn key_index(base: &Merged) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, (k, _)) in base.entries().iter().enumerate() {
        index.entry(k.text.to_ascii_lowercase()).or_insert(i);
    }
    index
}

/// `KEY+` → `KEY`.
fn extension_of(key: &str) -> Option<&str> {
    key.strip_suffix('+').filter(|k| !k.is_empty())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Merged {
    /// An empty map, to overlay layers onto.
    #[must_use]
    pub fn root(span: Span, origin: Origin) -> Merged {
        empty_map(span, origin)
    }

    /// The layer that set (or started) this value.
    #[must_use]
    pub fn origin(&self) -> Origin {
        match self {
            Merged::Value { origin, .. }
            | Merged::Map { origin, .. }
            | Merged::List { origin, .. } => *origin,
        }
    }

    /// The span of the node this value came from.
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Merged::Value { node, .. } => node.span,
            Merged::Map { span, .. } | Merged::List { span, .. } => *span,
        }
    }

    /// The entries, for a map.
    #[must_use]
    pub fn entries(&self) -> &[(Key, Merged)] {
        match self {
            Merged::Map { entries, .. } => entries,
            _ => &[],
        }
    }

    /// The entry `key` of a map (ignoring case).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Merged> {
        self.entries()
            .iter()
            .find(|(k, _)| k.text.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// Removes the entry `key` of a map (ignoring case) and returns it.
    pub fn remove(&mut self, key: &str) -> Option<Merged> {
        let Merged::Map { entries, .. } = self else {
            return None;
        };
        let i = entries
            .iter()
            .position(|(k, _)| k.text.eq_ignore_ascii_case(key))?;
        Some(entries.remove(i).1)
    }

    /// The tree as a plain [`Node`], for the readers of the resource kinds: every value
    /// keeps the span it was written at.
    #[must_use]
    pub fn to_node(&self) -> Node {
        match self {
            Merged::Value { node, .. } => node.clone(),
            Merged::Map { entries, span, .. } => Node {
                kind: NodeKind::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_node()))
                        .collect(),
                ),
                span: *span,
                style: Style::Block,
                raw: String::new(),
            },
            Merged::List { items, span, .. } => Node {
                kind: NodeKind::Seq(items.iter().map(Merged::to_node).collect()),
                span: *span,
                style: Style::Block,
                raw: String::new(),
            },
        }
    }

    fn from_node(node: &Node, origin: Origin, ov: &mut Overlay<'_>, path: &str) -> Merged {
        match &node.kind {
            NodeKind::Map(_) => {
                let mut m = empty_map(node.span, origin);
                ov.map_into(&mut m, node, origin, path, false);
                m
            }
            NodeKind::Seq(items) => Merged::List {
                items: items
                    .iter()
                    .map(|i| Merged::from_node(i, origin, ov, path))
                    .collect(),
                span: node.span,
                origin,
            },
            _ => Merged::Value {
                node: node.clone(),
                origin,
            },
        }
    }
}

impl<'a> Overlay<'a> {
    /// An overlay reporting to `diags`.
    pub fn new(
        identity: IdentityFn<'a>,
        describe: DescribeFn<'a>,
        diags: &'a mut Diagnostics,
    ) -> Overlay<'a> {
        Overlay {
            identity,
            describe,
            diags,
        }
    }

    /// Overlays the entries of document root `doc` (a map) onto `base` (a map), except
    /// the keys in `skip` (the document's own header, such as `site: lon`). Each
    /// top-level entry is a section: a list there is a list of resources, merged by
    /// the identity the caller gives.
    pub fn document(&mut self, base: &mut Merged, doc: &Node, origin: Origin, skip: &[&str]) {
        let Some(entries) = doc.as_map() else {
            return;
        };
        self.check_duplicate_keys(entries, "");
        let mut index = key_index(base);
        for (key, value) in entries {
            if skip.iter().any(|s| s.eq_ignore_ascii_case(&key.text)) {
                continue;
            }
            self.entry(base, &mut index, key, value, origin, "", true);
        }
    }

    /// Reports keys of one map that are the same ignoring case (`X+` counts as `X`
    /// only together with another `X+`).
    fn check_duplicate_keys(&mut self, entries: &[(Key, Node)], path: &str) {
        // The first key of each lower-case spelling: a map of thousands of keys is
        // checked in linear time.
        let mut first: HashMap<String, &Key> = HashMap::new();
        for (a, _) in entries {
            let b = *first.entry(a.text.to_ascii_lowercase()).or_insert(a);
            if !std::ptr::eq(a, b) {
                self.diags.push(
                    Diagnostic::error(
                        "manifest::duplicate-key",
                        format!(
                            "'{}' and '{}'{} name the same key",
                            b.text,
                            a.text,
                            if path.is_empty() {
                                String::new()
                            } else {
                                format!(" in {path}")
                            }
                        ),
                    )
                    .with_span(a.span)
                    .with_label("same key again")
                    .with_related(b.span, "first defined here")
                    .with_hint(
                        "key names ignore case here, as Exchange parameter names do; keep one",
                    ),
                );
            }
        }
    }

    fn map_into(&mut self, base: &mut Merged, over: &Node, origin: Origin, path: &str, top: bool) {
        let Some(entries) = over.as_map() else {
            return;
        };
        self.check_duplicate_keys(entries, path);
        let mut index = key_index(base);
        for (key, value) in entries {
            self.entry(base, &mut index, key, value, origin, path, top);
        }
    }

    /// One entry of an overriding map, into the map `base`, whose keys `index` holds
    /// (see [`key_index`]; kept up to date here).
    // The index travels beside the map it describes rather than inside `Merged`, which
    // is public and compared.
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        base: &mut Merged,
        index: &mut HashMap<String, usize>,
        key: &Key,
        value: &Node,
        origin: Origin,
        path: &str,
        section: bool,
    ) {
        let Merged::Map { entries, .. } = base else {
            return;
        };
        if let Some(name) = extension_of(&key.text) {
            let path = join(path, name);
            let found = index.get(&name.to_ascii_lowercase()).copied();
            let items: Vec<Merged> = match &value.kind {
                NodeKind::Seq(items) => items
                    .iter()
                    .map(|i| Merged::from_node(i, origin, self, &path))
                    .collect(),
                _ if is_empty_value(value) => Vec::new(),
                _ => vec![Merged::from_node(value, origin, self, &path)],
            };
            match found {
                None => {
                    let k = Key {
                        text: name.to_string(),
                        span: key.span,
                    };
                    index.insert(name.to_ascii_lowercase(), entries.len());
                    entries.push((
                        k,
                        Merged::List {
                            items,
                            span: value.span,
                            origin,
                        },
                    ));
                }
                Some(i) => {
                    let slot = &mut entries[i].1;
                    match slot {
                        Merged::List { items: have, .. } => have.extend(items),
                        Merged::Value { .. } if !is_empty_value(&slot.to_node()) => {
                            let first = slot.clone();
                            let (span, o) = (first.span(), first.origin());
                            let mut all = vec![first];
                            all.extend(items);
                            *slot = Merged::List {
                                items: all,
                                span,
                                origin: o,
                            };
                        }
                        Merged::Value { .. } => {
                            *slot = Merged::List {
                                items,
                                span: value.span,
                                origin,
                            };
                        }
                        Merged::Map { span, .. } => {
                            let at = *span;
                            self.diags.push(
                                Diagnostic::error(
                                    "manifest::extend-not-a-list",
                                    format!(
                                        "'{}' extends a list, but {path} is a map below it",
                                        key.text
                                    ),
                                )
                                .with_span(key.span)
                                .with_related(at, "the map it would extend")
                                .with_hint(format!(
                                    "write '{name}:' to override entries of the map"
                                )),
                            );
                        }
                    }
                }
            }
            return;
        }
        let path = join(path, &key.text);
        let found = index.get(&key.text.to_ascii_lowercase()).copied();
        match found {
            None => {
                index.insert(key.text.to_ascii_lowercase(), entries.len());
                if section && is_empty_value(value) {
                    // An empty section adds nothing, but reading it says it is empty.
                    entries.push((
                        key.clone(),
                        Merged::Value {
                            node: value.clone(),
                            origin,
                        },
                    ));
                    return;
                }
                let v = Merged::from_node(value, origin, self, &path);
                entries.push((key.clone(), v));
            }
            Some(i) => {
                let slot = &mut entries[i].1;
                self.value_into(slot, value, origin, &path, section.then_some(&key.text));
                // The key as the most specific layer spells it.
                if slot.origin() == origin {
                    entries[i].0 = key.clone();
                }
            }
        }
    }

    /// Overlays `over` onto an existing value.
    fn value_into(
        &mut self,
        slot: &mut Merged,
        over: &Node,
        origin: Origin,
        path: &str,
        section: Option<&str>,
    ) {
        if is_empty_value(over) && !matches!(slot, Merged::Value { .. }) {
            return;
        }
        match (&mut *slot, &over.kind) {
            (Merged::Map { .. }, NodeKind::Map(_)) if !says_absent(over) => {
                self.map_into(slot, over, origin, path, false);
            }
            (Merged::List { items, .. }, NodeKind::Seq(new)) if section.is_some() => {
                let section = section.unwrap_or_default();
                // The first item of each identity below, identified once each (not once
                // per overriding item): thousands of entries merge in linear time.
                let mut index: HashMap<String, usize> = HashMap::new();
                for (at, have) in items.iter().enumerate() {
                    if let Some(id) = (self.identity)(section, &have.to_node()) {
                        index.entry(id).or_insert(at);
                    }
                }
                // The identities this layer's list has already merged, and where.
                let mut touched: HashMap<String, usize> = HashMap::new();
                for item in new {
                    let id = (self.identity)(section, item);
                    let existing = id.as_ref().and_then(|id| index.get(id).copied());
                    match (id, existing) {
                        (Some(id), Some(at)) => {
                            if let Some(first) = touched.get(&id) {
                                let first_span = items[*first].span();
                                self.diags.push(
                                    Diagnostic::error(
                                        "manifest::duplicate-entry",
                                        format!("{path}: this entry is declared twice in one list"),
                                    )
                                    .with_span(item.span)
                                    .with_related(first_span, "first declared here")
                                    .with_hint("keep one"),
                                );
                                continue;
                            }
                            touched.insert(id, at);
                            let item_path = format!("{path}[{}]", at + 1);
                            self.value_into(&mut items[at], item, origin, &item_path, None);
                        }
                        (id, _) => {
                            let v = Merged::from_node(item, origin, self, path);
                            items.push(v);
                            if let Some(id) = id {
                                index.insert(id.clone(), items.len() - 1);
                                touched.insert(id, items.len() - 1);
                            }
                        }
                    }
                }
            }
            _ => {
                self.check_conflict(slot, over, origin, path);
                *slot = Merged::from_node(over, origin, self, path);
            }
        }
    }

    /// Two layers of one level setting the same value.
    fn check_conflict(&mut self, slot: &Merged, over: &Node, origin: Origin, path: &str) {
        let have = slot.origin();
        if have.level != origin.level || have.layer == origin.layer {
            return;
        }
        self.diags.push(
            Diagnostic::error(
                "manifest::conflicting-values",
                format!(
                    "{path} is set twice at the same level ({}), so neither wins",
                    (self.describe)(origin)
                ),
            )
            .with_span(over.span)
            .with_label("set here")
            .with_related(slot.span(), "and here")
            .with_hint(
                "keep one, or move one to a more specific level (a host override beats a site override, which beats a baseline)",
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceMap;

    fn docs(texts: &[&str]) -> (SourceMap, Vec<Node>) {
        let mut sources = SourceMap::new();
        let mut out = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let id = sources.add(format!("f{i}.yaml"), *t);
            let mut d = Diagnostics::new();
            let parsed = crate::parse::parse_file(&sources, id, &crate::Limits::default(), &mut d);
            assert!(d.is_empty(), "{d:?}");
            out.push(parsed.into_iter().next().unwrap().root);
        }
        (sources, out)
    }

    fn registry_identity(section: &str, n: &Node) -> Option<String> {
        if section != "registry_values" {
            return None;
        }
        let name = n.get("name")?.as_str()?;
        Some(name.to_lowercase())
    }

    fn merge(texts: &[&str], levels: &[u32]) -> (Merged, Diagnostics) {
        let (_, nodes) = docs(texts);
        let mut diags = Diagnostics::new();
        let describe = |o: Origin| format!("level {}", o.level);
        let mut root = Merged::root(nodes[0].span, Origin { level: 0, layer: 0 });
        {
            let mut ov = Overlay::new(&registry_identity, &describe, &mut diags);
            for (i, n) in nodes.iter().enumerate() {
                let origin = Origin {
                    level: levels[i],
                    layer: u32::try_from(i).unwrap(),
                };
                ov.document(&mut root, n, origin, &["site"]);
            }
        }
        (root, diags)
    }

    fn yaml(m: &Merged) -> String {
        fn go(n: &Node) -> String {
            match &n.kind {
                NodeKind::Map(e) => format!(
                    "{{{}}}",
                    e.iter()
                        .map(|(k, v)| format!("{}: {}", k.text, go(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                NodeKind::Seq(i) => {
                    format!("[{}]", i.iter().map(go).collect::<Vec<_>>().join(", "))
                }
                _ => n.raw.trim().to_string(),
            }
        }
        go(&m.to_node())
    }

    #[test]
    fn the_more_specific_layer_wins_and_maps_merge() {
        let (m, d) = merge(
            &[
                "imap_settings: {MaxConnectionsPerUser: 250, MaxConnectionFromSingleIP: 250}\n",
                "site: lon\nimap_settings: {maxconnectionsperuser: 500}\nreceive_connectors: {'*': {A: 1}}\n",
            ],
            &[1, 2],
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            yaml(&m),
            "{imap_settings: {maxconnectionsperuser: 500, MaxConnectionFromSingleIP: 250}, receive_connectors: {*: {A: 1}}}"
        );
        let v = m
            .get("imap_settings")
            .unwrap()
            .get("MaxConnectionsPerUser")
            .unwrap();
        assert_eq!(v.origin().layer, 1);
        assert_eq!(v.span().start.line, 2);
        let other = m
            .get("imap_settings")
            .unwrap()
            .get("MaxConnectionFromSingleIP")
            .unwrap();
        assert_eq!(other.origin().layer, 0);
    }

    #[test]
    fn lists_replace_unless_extended() {
        let (m, d) = merge(
            &[
                "imap_settings: {SSLBindings: ['a:993'], UnencryptedOrTLSBindings: 'b:143'}\n",
                "imap_settings: {SSLBindings+: ['c:993'], UnencryptedOrTLSBindings+: ['d:143'], X+: e}\n",
                "imap_settings: {SSLBindings+: ['f:993']}\n",
            ],
            &[1, 2, 2],
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            yaml(&m),
            "{imap_settings: {SSLBindings: ['a:993', 'c:993', 'f:993'], UnencryptedOrTLSBindings: ['b:143', 'd:143'], X: [e]}}"
        );
        let (m, _) = merge(
            &[
                "imap_settings: {SSLBindings: ['a:993', 'b:993']}\n",
                "imap_settings: {SSLBindings: ['c:993']}\n",
            ],
            &[1, 2],
        );
        assert_eq!(yaml(&m), "{imap_settings: {SSLBindings: ['c:993']}}");
    }

    #[test]
    fn resource_lists_merge_by_identity_and_absent_replaces() {
        let (m, d) = merge(
            &[
                "registry_values:\n- {name: A, value: 1, type: dword}\n- {name: B, value: 2, type: dword}\n",
                "registry_values:\n- {name: a, value: 10}\n- {name: B, ensure: absent}\n- {name: C, value: 3}\n",
            ],
            &[1, 2],
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            yaml(&m),
            "{registry_values: [{name: a, value: 10, type: dword}, {name: B, ensure: absent}, {name: C, value: 3}]}"
        );
    }

    #[test]
    fn the_same_level_must_not_disagree() {
        let (_, d) = merge(
            &[
                "imap_settings: {MaxConnectionsPerUser: 1}\n",
                "site: lon\nimap_settings: {MaxConnectionsPerUser: 2, Banner: x}\n",
                "site: lon\nimap_settings:\n  MaxConnectionsPerUser: 3\n",
            ],
            &[1, 2, 2],
        );
        assert_eq!(d.len(), 1, "{d:?}");
        let e = &d.as_slice()[0];
        assert_eq!(e.code, "manifest::conflicting-values");
        assert_eq!(
            e.message,
            "imap_settings.MaxConnectionsPerUser is set twice at the same level (level 2), so neither wins"
        );
        assert_eq!(e.span.unwrap().start.line, 3);
        assert_eq!(e.related[0].0.start.line, 2);
    }

    #[test]
    fn duplicates_within_one_document_are_reported() {
        let (_, d) = merge(
            &["imap_settings: {A: 1, a: 2}\nregistry_values:\n- {name: X}\n- {name: x}\n"],
            &[2],
        );
        let codes: Vec<_> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["manifest::duplicate-key"]);
        // Into a base list, twice in one overriding list.
        let (_, d) = merge(
            &[
                "registry_values:\n- {name: X, value: 1}\n",
                "registry_values:\n- {name: X, value: 2}\n- {name: x, value: 3}\n",
            ],
            &[1, 2],
        );
        let codes: Vec<_> = d.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["manifest::duplicate-entry"]);
    }

    #[test]
    fn thousands_of_keys_and_entries_merge_by_lookup_with_the_same_reports() {
        // A map of 3,000 keys with one spelt again at the end, and a list of 3,000
        // entries; a more specific layer overrides one key and one entry of each.
        let mut low = String::from("receive_connectors:\n");
        for i in 0..3000 {
            low.push_str(&format!("  C{i:04}: {{A: {i}}}\n"));
        }
        low.push_str("  c1234: {A: x}\nregistry_values:\n");
        for i in 0..3000 {
            low.push_str(&format!("- {{name: V{i:04}, value: {i}}}\n"));
        }
        let high = "site: lon\nreceive_connectors: {c2999: {A: high}}\nregistry_values:\n- {name: v0007, value: high}\n- {name: V0007, value: again}\n";
        let (m, d) = merge(&[&low, high], &[1, 2]);
        let got: Vec<_> = d
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.span.map(|s| s.start.line),
                    d.related.first().map(|r| r.0.start.line),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("manifest::duplicate-key", Some(3002), Some(1236)),
                ("manifest::duplicate-entry", Some(5), Some(3011)),
            ]
        );
        let connectors = m.get("receive_connectors").unwrap();
        assert_eq!(connectors.entries().len(), 3000);
        assert_eq!(yaml(connectors.get("C2999").unwrap()), "{A: high}");
        assert_eq!(connectors.entries()[2999].0.text, "C2999");
        let Merged::List { items, .. } = m.get("registry_values").unwrap() else {
            panic!("a list");
        };
        assert_eq!(items.len(), 3000);
        assert_eq!(yaml(&items[7]), "{name: v0007, value: high}");
    }

    #[test]
    fn extending_a_map_is_refused_and_empty_sections_add_nothing() {
        let (m, d) = merge(
            &[
                "imap_settings: {A: 1}\n",
                "imap_settings+: [x]\nreceive_connectors:\n",
                "imap_settings:\n",
            ],
            &[1, 2, 3],
        );
        assert_eq!(d.as_slice()[0].code, "manifest::extend-not-a-list");
        assert_eq!(yaml(&m), "{imap_settings: {A: 1}, receive_connectors: }");
    }
}
