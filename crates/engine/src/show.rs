//! `exctl show`: the effective desired state of a site (or one host), each value with
//! the layer and the file:line it comes from. Only presentation: the merging is done by
//! [`crate::desired`], which keeps every value's origin for this.
//!
//! Text looks like YAML with a comment on every value:
//!
//! ```text
//! site ams (labels: region=emea, ring=main; baselines: uccx, uccx-sp1)
//!
//! host AMSEX01 (2010-sp2, http://127.0.0.1:5987/wsman)
//!   imap_settings:
//!     MaxConnectionsPerUser: 850          # site ams          manifests/sites/ams.yaml:5
//!     MaxConnectionFromSingleIP: 850      # site ams          manifests/sites/ams.yaml:6
//! ```
//!
//! Organization-wide sections are shown once per site, under the host they go through.
//! Resources of `targets:` documents, which are not merged, are listed after the merged
//! state with their declarations.

use std::fmt::Write as _;

use exctl_exchange::kind::Scope;
use exctl_exchange::kinds;
use exctl_manifest::{Merged, Node, NodeKind, SourceMap, Span, yaml};
use serde_json::{Value, json};

use crate::desired::{DesiredState, HostSpec, SiteSpec};

/// What `exctl show` was asked for, resolved.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The site.
    pub site: &'a SiteSpec,
    /// One host of it, or all.
    pub host: Option<&'a HostSpec>,
}

/// Finds a site or a host by name (ignoring case); a site wins over a host of that name.
pub fn find<'a>(state: &'a DesiredState, name: &str) -> Option<Target<'a>> {
    if let Some(site) = state.site(name) {
        return Some(Target { site, host: None });
    }
    let key = name.to_ascii_uppercase();
    let host = state.hosts.get(&key)?;
    let site = state.site_of(&key)?;
    Some(Target {
        site,
        host: Some(host),
    })
}

/// `file:line` of a span.
fn at(sources: &SourceMap, span: Span) -> String {
    format!("{}:{}", sources.path(span.file).display(), span.start.line)
}

/// A scalar as written (one line).
fn scalar(node: &Node) -> String {
    let raw = node.raw.trim();
    if raw.is_empty() {
        return "~".to_string();
    }
    if raw.contains('\n') {
        // A block scalar or one folded over lines: its value, quoted, on one line.
        return yaml::scalar(node.as_str().unwrap_or(raw));
    }
    raw.to_string()
}

struct Lines<'s> {
    state: &'s DesiredState,
    sources: &'s SourceMap,
    rows: Vec<(String, Option<String>)>,
}

impl Lines<'_> {
    fn note(&self, m: &Merged, span: Span) -> Option<String> {
        Some(format!(
            "{:<18}{}",
            self.state.describe(m.origin()),
            at(self.sources, span)
        ))
    }

    fn tree(
        &mut self,
        key: Option<&str>,
        m: &Merged,
        span_of_key: Option<Span>,
        indent: usize,
        dash: bool,
    ) {
        let pad = " ".repeat(indent);
        let lead = if dash {
            format!("{pad}- ")
        } else {
            pad.clone()
        };
        let head = key.map(|k| format!("{}:", yaml::key(k)));
        match m {
            Merged::Value { node, .. } => {
                let text = match &head {
                    Some(h) => format!("{lead}{h} {}", scalar(node)),
                    None => format!("{lead}{}", scalar(node)),
                };
                let note = self.note(m, node.span);
                self.rows.push((text, note));
            }
            Merged::Map { entries, .. } => {
                let mut child_indent = indent + 2;
                let mut first_inline = dash && head.is_none();
                if let Some(h) = &head {
                    self.rows.push((format!("{lead}{h}"), None));
                    first_inline = false;
                } else if !dash {
                    child_indent = indent;
                }
                if entries.is_empty() {
                    if let Some((t, _)) = self.rows.last_mut() {
                        t.push_str(" {}");
                    }
                    return;
                }
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i == 0 && first_inline {
                        // `- key: value` with the following keys aligned under `key`.
                        self.tree(Some(&k.text), v, Some(k.span), indent, true);
                    } else {
                        self.tree(Some(&k.text), v, Some(k.span), child_indent, false);
                    }
                }
            }
            Merged::List { items, span, .. } => {
                let text = match &head {
                    Some(h) => format!("{lead}{h}"),
                    None => lead.clone(),
                };
                if items.is_empty() {
                    let note = self.note(m, span_of_key.unwrap_or(*span));
                    self.rows.push((format!("{text} []"), note));
                    return;
                }
                self.rows.push((text, None));
                for item in items {
                    self.tree(None, item, None, indent + 2, true);
                }
            }
        }
    }

    fn render(self) -> String {
        let width = self
            .rows
            .iter()
            .filter(|(_, n)| n.is_some())
            .map(|(t, _)| t.chars().count())
            .max()
            .unwrap_or(0)
            .min(56);
        let mut out = String::new();
        for (text, note) in self.rows {
            match note {
                Some(n) => {
                    let _ = writeln!(out, "{text:<width$}  # {n}");
                }
                None => {
                    let _ = writeln!(out, "{text}");
                }
            }
        }
        out
    }
}

fn site_header(site: &SiteSpec) -> String {
    let mut parts = Vec::new();
    if !site.labels.is_empty() {
        parts.push(format!(
            "labels: {}",
            site.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !site.baselines.is_empty() {
        parts.push(format!(
            "baselines: {}",
            site.baselines
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if parts.is_empty() {
        format!("site {}", site.name)
    } else {
        format!("site {} ({})", site.name, parts.join("; "))
    }
}

fn is_org(key: &str) -> bool {
    kinds::by_key(key).is_some_and(|k| k.scope() == Scope::Organization)
}

/// The hosts shown, with whether each is the one organization-wide values go through.
fn hosts_of<'a>(state: &'a DesiredState, t: &Target<'a>) -> Vec<(&'a HostSpec, bool)> {
    t.site
        .hosts
        .iter()
        .enumerate()
        .filter_map(|(i, k)| state.hosts.get(k).map(|h| (h, i == 0)))
        .filter(|(h, _)| t.host.is_none_or(|x| x.name == h.name))
        .collect()
}

/// The effective state as text (see the module docs).
pub fn text(state: &DesiredState, sources: &SourceMap, t: &Target<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", site_header(t.site));
    for (host, org) in hosts_of(state, t) {
        let key = host.name.to_ascii_uppercase();
        let baselines = match &host.baselines {
            Some(b) => format!(
                "; baselines: {}",
                b.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\nhost {} ({}, {}{baselines})",
            host.name,
            host.version.as_str(),
            host.endpoint
        );
        let mut lines = Lines {
            state,
            sources,
            rows: Vec::new(),
        };
        match state.effective.get(&key) {
            Some(tree) => {
                let mut server = Vec::new();
                let mut organization = Vec::new();
                for (k, v) in tree.entries() {
                    if is_org(&k.text) {
                        organization.push((k, v));
                    } else {
                        server.push((k, v));
                    }
                }
                for (k, v) in server {
                    lines.tree(Some(&k.text), v, Some(k.span), 2, false);
                }
                if org && !organization.is_empty() {
                    lines.rows.push((
                        format!("  # organization-wide, applied through {}:", host.name),
                        None,
                    ));
                    for (k, v) in organization {
                        lines.tree(Some(&k.text), v, Some(k.span), 2, false);
                    }
                }
            }
            None => lines.rows.push((
                "  # no baseline or override applies to this host".into(),
                None,
            )),
        }
        // Resources of `targets:` documents: not merged, shown as declared.
        let from_targets: Vec<_> = state
            .resources
            .get(&key)
            .map(|rs| {
                rs.iter()
                    .filter(|r| {
                        !state
                            .layers
                            .iter()
                            .any(|l| l.span.file == r.span.file && contains(l.span, r.span))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !from_targets.is_empty() {
            lines.rows.push((
                "  # declared by targets: documents (not merged):".into(),
                None,
            ));
            for r in from_targets {
                lines.rows.push((
                    format!("  {} {}", r.kind, r.id),
                    Some(format!("{:<18}{}", "targets", at(sources, r.span))),
                ));
                for a in &r.attrs {
                    lines.rows.push((
                        format!("    {}: {}", yaml::key(&a.name), a.value),
                        Some(format!("{:<18}{}", "targets", at(sources, a.span))),
                    ));
                }
            }
        }
        out.push_str(&lines.render());
    }
    out
}

fn contains(outer: Span, inner: Span) -> bool {
    outer.start.offset <= inner.start.offset && inner.start.offset <= outer.end.offset
}

fn json_scalar(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => json!(b),
        NodeKind::Int(i) => json!(i),
        NodeKind::Float(f) => json!(f),
        NodeKind::Str(s) => json!(s),
        _ => json!(node.raw.trim()),
    }
}

fn json_tree(state: &DesiredState, sources: &SourceMap, m: &Merged) -> Value {
    match m {
        Merged::Value { node, origin } => json!({
            "value": json_scalar(node),
            "from": state.describe(*origin),
            "at": at(sources, node.span),
        }),
        Merged::Map { entries, .. } => {
            let mut o = serde_json::Map::new();
            for (k, v) in entries {
                o.insert(k.text.clone(), json_tree(state, sources, v));
            }
            Value::Object(o)
        }
        Merged::List { items, .. } => {
            Value::Array(items.iter().map(|i| json_tree(state, sources, i)).collect())
        }
    }
}

/// The version of the JSON document of `exctl show --format json`.
pub const SHOW_FORMAT_VERSION: u32 = 1;

/// The effective state as JSON: every value an object `{value, from, at}`.
pub fn json(state: &DesiredState, sources: &SourceMap, t: &Target<'_>) -> Value {
    let hosts: Vec<Value> = hosts_of(state, t)
        .into_iter()
        .map(|(h, org)| {
            let key = h.name.to_ascii_uppercase();
            let mut sections = serde_json::Map::new();
            if let Some(tree) = state.effective.get(&key) {
                for (k, v) in tree.entries() {
                    if is_org(&k.text) && !org {
                        continue;
                    }
                    sections.insert(k.text.clone(), json_tree(state, sources, v));
                }
            }
            json!({
                "name": h.name,
                "exchange": h.version.as_str(),
                "endpoint": h.endpoint,
                "organization_host": org,
                "state": sections,
            })
        })
        .collect();
    json!({
        "format_version": SHOW_FORMAT_VERSION,
        "site": t.site.name,
        "labels": t.site.labels,
        "baselines": t.site.baselines.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "hosts": hosts,
    })
}
