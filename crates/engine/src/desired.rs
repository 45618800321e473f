//! The desired state: the inventory of sites and hosts and, per host, the resources the
//! manifests declare for it, validated before any connection.
//!
//! A manifest repository holds five kinds of documents (see `docs/manifests.md`):
//!
//! ```yaml
//! # an inventory document: the sites (optional) and how to reach each host
//! sites:
//!   lon:
//!     labels: { region: emea, ring: canary }   # for --selector
//!     baselines: [uccx]                        # applied in this order
//!     hosts:                                   # hosts may also be listed under hosts:
//!       EX01: { endpoint: ..., user: ..., credential: keyring:lon, exchange: 2010-sp3 }
//! hosts:
//!   EX01:
//!     endpoint: https://ex01.contoso.local:5986/wsman
//!     auth: ntlm                      # ntlm (default) | basic | kerberos | negotiate
//!     user: CONTOSO\svc-exctl
//!     credential: keyring:contoso-exchange   # or env:VAR, or prompt; never a password
//!                                     # (kerberos without credential: the operator's ticket)
//!     spn: HTTP/ex01.contoso.local    # kerberos/negotiate only; default HTTP/<endpoint host>
//!     exchange: 2010-sp3              # 2010-rtm | 2010-sp1 | 2010-sp2 | 2010-sp3
//!     access: psrp                    # psrp (default) | remote-session | snapin
//!     session_uri: http://ex01.contoso.local/PowerShell/   # Exchange's endpoint (remote-session, psrp)
//!     exchange_auth: kerberos         # psrp: how exctl logs on to session_uri (kerberos default)
//!     site: lon                       # optional; a host without a site is a site of its own
//!     baselines: [uccx-rtm]           # optional; replaces the site's list for this host
//!     ca_file: corp-ca.pem            # optional, relative to the document
//! ---
//! baseline: uccx                      # a baseline: shared values, applied where named
//! imap_settings: { MaxConnectionsPerUser: 250 }
//! ---
//! site: lon                           # a site override: its values win over baselines
//! imap_settings: { MaxConnectionsPerUser: 500 }
//! ---
//! host: EX01                          # a host override: wins over its site
//! receive_connectors: { "Default EX01": { MaxMessageSize: 35MB } }
//! ---
//! targets: [EX01]                     # a resource document: host names, or 'all'
//! registry_values: [...]
//! ```
//!
//! Baselines, site overrides and host overrides are *layers*: a host's effective state is
//! its baselines in the order listed, then the overrides of its site, then its own,
//! merged by the rules of [`exctl_manifest::merge`] (the more specific wins; `KEY+:`
//! extends a list; lists of resources merge by identity; `ensure: absent` replaces). The
//! merged tree keeps every value's origin ([`DesiredState::effective`], shown by
//! `exctl show`), and every value keeps its span, so problems point at the file and line
//! that set it. `targets:` documents are read as they always were, beside the layers.
//!
//! Each section is parsed once ([`Kind::parse`]) and then expanded for each host
//! ([`Kind::expand`]): a `targets:` document once per release its targets run, a merged
//! tree once for all the hosts of a site and release that merge the same layers (a host
//! override gives its host a tree of its own, whose override values the kinds check
//! against that host alone through [`ParseContext::narrowed`]).
//!
//! Server-scoped kinds yield one resource per host. Organization-scoped kinds are
//! observed and applied once: through a `targets:` document's first target, or through
//! the first host of a site for the layers (so they belong in baselines and site
//! overrides, not in host overrides).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use exctl_exchange::kind::{Declared, Kind, ParseContext, Resource, Scope};

use crate::capacity::{DeclaredLimits, Demand};
use exctl_exchange::{Version, kinds};
use exctl_manifest::{
    CredentialRef, Diagnostic, Diagnostics, Document, MapReader, Merged, Node, NodeKind, Origin,
    Overlay, SourceMap, Span,
};

/// How exctl reaches the Exchange cmdlets on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// `Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010` in the host's
    /// PowerShell session: bypasses RBAC, is not supported by Microsoft, and reaches AD
    /// only where the host is set up for CredSSP or Kerberos delegation (the double hop).
    Snapin,
    /// A session to `http://<fqdn>/PowerShell/` (ConfigurationName Microsoft.Exchange)
    /// opened from the host's session with the host's password and imported into it.
    RemoteSession,
    /// Exchange's own endpoint `http://<fqdn>/PowerShell/` (ConfigurationName
    /// Microsoft.Exchange) straight from exctl, commands with parameters only, RBAC
    /// applying, Exchange doing the AD work; the host's own work (registry, services)
    /// through its WinRM endpoint (see [`crate::relay`]).
    Psrp,
}

/// How exctl authenticates to a host's WinRM endpoint (the inventory's `auth:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// NTLM (the default): domain or local accounts, with message encryption over HTTP.
    #[default]
    Ntlm,
    /// Basic: local accounts only, and only over HTTPS.
    Basic,
    /// Kerberos: the operator's ticket or a password, by the server's name.
    Kerberos,
    /// Negotiate carrying Kerberos (SPNEGO), as Windows offers it.
    Negotiate,
}

impl Auth {
    /// Every value, in the inventory's spelling.
    pub const ALL: [Auth; 4] = [Auth::Ntlm, Auth::Basic, Auth::Kerberos, Auth::Negotiate];

    /// The inventory's spelling (`ntlm`, `basic`, `kerberos`, `negotiate`).
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::Ntlm => "ntlm",
            Auth::Basic => "basic",
            Auth::Kerberos => "kerberos",
            Auth::Negotiate => "negotiate",
        }
    }

    /// The value spelt `s` (exactly, as [`Auth::as_str`] writes it).
    pub fn from_name(s: &str) -> Option<Auth> {
        Auth::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the host authenticates with Kerberos (either HTTP scheme), which can use
    /// the operator's own ticket instead of a password.
    pub fn is_kerberos(self) -> bool {
        matches!(self, Auth::Kerberos | Auth::Negotiate)
    }
}

impl std::fmt::Display for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One host of the inventory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostSpec {
    /// The computer name (`EX01`), as Exchange names the server.
    pub name: String,
    /// The WinRM endpoint.
    pub endpoint: String,
    /// How exctl authenticates.
    pub auth: Auth,
    /// Kerberos: the service principal, when not `HTTP/<host of the endpoint>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spn: Option<String>,
    /// The account.
    pub user: String,
    /// Where the password comes from.
    #[serde(skip)]
    pub credential: Option<CredentialRef>,
    /// The Exchange release the manifest expects.
    pub version: Version,
    /// How the cmdlets are reached.
    pub access: Access,
    /// With [`Access::RemoteSession`] or [`Access::Psrp`]: Exchange's remote PowerShell
    /// endpoint, when not the default (see [`HostSpec::exchange_uri`]).
    pub session_uri: Option<String>,
    /// With [`Access::Psrp`]: how exctl authenticates to Exchange's endpoint (Kerberos,
    /// the only method the PowerShell virtual directory accepts by default).
    pub exchange_auth: Auth,
    /// The site, as the inventory says (a host without one is a site of its own: see
    /// [`DesiredState::site_of`]).
    pub site: Option<String>,
    /// Baselines for this host instead of its site's, when the inventory says.
    #[serde(skip)]
    pub baselines: Option<Vec<(String, Span)>>,
    /// A CA file to trust for HTTPS.
    pub ca_file: Option<PathBuf>,
    /// The SHA-256 fingerprint of the listener's certificate to trust, whatever its
    /// issuer (a pin), as `sha256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// Where the inventory declares the host.
    #[serde(skip)]
    pub span: Span,
    /// The IMAP demand on a shared account, from its `capacity:` section (see
    /// [`crate::capacity`]).
    #[serde(skip)]
    pub capacity: Option<crate::capacity::Demand>,
    /// What the manifests declare for the limits that demand meets (filled once every
    /// document is read).
    #[serde(skip)]
    pub declared_limits: Option<DeclaredLimits>,
}

impl HostSpec {
    /// Exchange's remote PowerShell endpoint: `session_uri`, or by default
    /// `http://<name>/PowerShell/` for [`Access::RemoteSession`] (opened on the server,
    /// where its own name resolves) and `http://<host of the WinRM endpoint>/PowerShell/`
    /// for [`Access::Psrp`] (opened from the jump host; Kerberos finds the server by the
    /// name the inventory gives it).
    pub fn exchange_uri(&self) -> String {
        if let Some(uri) = &self.session_uri {
            return uri.clone();
        }
        match self.access {
            Access::Psrp => psrp_default_uri(&self.endpoint, &self.name),
            _ => format!("http://{}/PowerShell/", self.name),
        }
    }
}

/// Exchange's endpoint on the host of the WinRM `endpoint` (on `name` when the endpoint
/// names no host): where `access: psrp` goes without a `session_uri`.
fn psrp_default_uri(endpoint: &str, name: &str) -> String {
    let host = EndpointParts::of(endpoint).host;
    if host.is_empty() {
        format!("http://{name}/PowerShell/")
    } else if host.contains(':') {
        format!("http://[{host}]/PowerShell/")
    } else {
        format!("http://{host}/PowerShell/")
    }
}

/// A site: a unit of rollout, with its labels and baselines.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SiteSpec {
    /// Its name.
    pub name: String,
    /// Labels for `--selector`.
    pub labels: BTreeMap<String, String>,
    /// Baselines applied to its hosts, in this order (a later one wins).
    #[serde(serialize_with = "names_only")]
    pub baselines: Vec<(String, Span)>,
    /// Its hosts (upper-case names), in the order the inventory declares them.
    pub hosts: Vec<String>,
    /// Where the inventory declares it; `None` for a site only named by hosts'
    /// `site:` (or a host without a site, which is a site of its own).
    #[serde(skip)]
    pub span: Option<Span>,
}

fn names_only<S: serde::Serializer>(v: &[(String, Span)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|(n, _)| n))
}

/// What a layer of a host's effective state is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "level", content = "name", rename_all = "lowercase")]
pub enum LayerKind {
    /// A `baseline: NAME` document.
    Baseline(String),
    /// A `site: NAME` document.
    Site(String),
    /// A `host: NAME` document.
    Host(String),
}

impl std::fmt::Display for LayerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerKind::Baseline(n) => write!(f, "baseline {n}"),
            LayerKind::Site(n) => write!(f, "site {n}"),
            LayerKind::Host(n) => write!(f, "host {n}"),
        }
    }
}

/// One layer document; [`Origin::layer`] indexes [`DesiredState::layers`].
#[derive(Debug, Clone)]
pub struct Layer {
    /// What it is.
    pub kind: LayerKind,
    /// Its document's root.
    pub span: Span,
}

/// Everything the manifests want, per host, in host name order.
#[derive(Debug, Default)]
pub struct DesiredState {
    /// The inventory.
    pub hosts: BTreeMap<String, HostSpec>,
    /// Resources by host (upper-case host name).
    pub resources: BTreeMap<String, Vec<Resource>>,
    /// The sites, in the order the inventory declares them (sites only named by hosts
    /// follow, in the order of their first host; each host without a site is a site of
    /// its own, named after it).
    pub sites: Vec<SiteSpec>,
    /// Every baseline, site and host document, by [`Origin::layer`].
    pub layers: Vec<Layer>,
    /// Each host's merged layers (upper-case host name), for `exctl show`; hosts that no
    /// layer applies to have none.
    pub effective: BTreeMap<String, Merged>,
}

impl DesiredState {
    /// The site of a host (upper-case name): its `site:`, or its own name.
    pub fn site_of(&self, host_key: &str) -> Option<&SiteSpec> {
        self.sites
            .iter()
            .find(|s| s.hosts.iter().any(|h| h == host_key))
    }

    /// A site by name (ignoring case).
    pub fn site(&self, name: &str) -> Option<&SiteSpec> {
        self.sites
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The hosts of a site that have something to plan, in inventory order.
    pub fn planned_hosts(&self, site: &SiteSpec) -> Vec<&HostSpec> {
        site.hosts
            .iter()
            .filter(|k| self.resources.get(*k).is_some_and(|r| !r.is_empty()))
            .filter_map(|k| self.hosts.get(k))
            .collect()
    }

    /// How a layer is described in messages and in `exctl show` (`site lon`).
    pub fn describe(&self, origin: Origin) -> String {
        usize::try_from(origin.layer)
            .ok()
            .and_then(|i| self.layers.get(i))
            .map_or_else(|| "(unknown layer)".to_string(), |l| l.kind.to_string())
    }
}

const HOST_KEYS: &[&str] = &[
    "endpoint",
    "auth",
    "spn",
    "user",
    "credential",
    "exchange",
    "access",
    "session_uri",
    "exchange_auth",
    "site",
    "baselines",
    "ca_file",
    "tls_fingerprint",
];

const SITE_KEYS: &[&str] = &["labels", "baselines", "hosts"];

/// Keys of a layer document besides the kind sections.
const LAYER_HEADERS: &[&str] = &["baseline", "site", "host", "description"];

/// Precedence of the layers: baselines count up from 1 in the order listed.
const SITE_LEVEL: u32 = 10_000;
const HOST_LEVEL: u32 = 10_001;

fn key(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// What a document is.
enum DocRole {
    Inventory,
    Layer(LayerKind),
    Targets,
    Empty,
    Invalid,
}

fn has_key(doc: &Document, key: &str) -> bool {
    matches!(&doc.root.kind, NodeKind::Map(entries) if entries.iter().any(|(k, _)| k.text == key))
}

/// Classifies a document by its header keys, reporting a document that is none or
/// several of them.
fn role(doc: &Document, diags: &mut Diagnostics) -> DocRole {
    match &doc.root.kind {
        NodeKind::Null => return DocRole::Empty,
        NodeKind::Map(_) => {}
        _ => {
            diags.push(shape_error(doc.root.span));
            return DocRole::Invalid;
        }
    }
    let inventory = has_key(doc, "hosts") || has_key(doc, "sites");
    let found: Vec<&str> = ["baseline", "site", "host", "targets"]
        .into_iter()
        .filter(|k| has_key(doc, k))
        .collect();
    if inventory && !found.is_empty() || found.len() > 1 {
        let mut all: Vec<&str> = Vec::new();
        if has_key(doc, "hosts") {
            all.push("hosts");
        }
        if has_key(doc, "sites") {
            all.push("sites");
        }
        all.extend(&found);
        diags.push(
            Diagnostic::error(
                "manifest::document-shape",
                format!(
                    "this document has both {}: a document is an inventory, a baseline, a site override, a host override or a resource document",
                    all.join(" and ")
                ),
            )
            .with_span(doc.root.span)
            .with_hint("split it into separate documents (separated by a line '---')"),
        );
        return DocRole::Invalid;
    }
    if inventory {
        return DocRole::Inventory;
    }
    let name = |key: &str, diags: &mut Diagnostics| -> Option<String> {
        let n = doc.root.get(key)?;
        match n.scalar_text().map(str::trim) {
            Some(t) if !t.is_empty() => Some(t.to_string()),
            _ => {
                diags.push(
                    Diagnostic::error(
                        "manifest::wrong-type",
                        format!("{key}: expected a name, found {}", n.describe()),
                    )
                    .with_span(n.span),
                );
                None
            }
        }
    };
    match found.first().copied() {
        Some("targets") => DocRole::Targets,
        Some("baseline") => name("baseline", diags)
            .map_or(DocRole::Invalid, |n| DocRole::Layer(LayerKind::Baseline(n))),
        Some("site") => {
            name("site", diags).map_or(DocRole::Invalid, |n| DocRole::Layer(LayerKind::Site(n)))
        }
        Some("host") => {
            name("host", diags).map_or(DocRole::Invalid, |n| DocRole::Layer(LayerKind::Host(n)))
        }
        _ => {
            diags.push(
                Diagnostic::error(
                    "manifest::missing-targets",
                    "this document declares resources but says neither what they apply to nor what it is",
                )
                .with_span(doc.root.span)
                .with_hint(
                    "start it with 'baseline: NAME', 'site: NAME' or 'host: NAME', or add 'targets: [HOSTNAME]' (hosts of the inventory) or 'targets: all'",
                ),
            );
            DocRole::Invalid
        }
    }
}

fn shape_error(span: Span) -> Diagnostic {
    Diagnostic::error(
        "manifest::document-shape",
        "a manifest document must be a map: an inventory (hosts, sites), a baseline, a site or host override, or resources with targets",
    )
    .with_span(span)
}

/// Reads the documents into the desired state, reporting every problem.
pub fn build(sources: &SourceMap, docs: &[Document], diags: &mut Diagnostics) -> DesiredState {
    let mut state = DesiredState::default();
    let roles: Vec<DocRole> = docs.iter().map(|d| role(d, diags)).collect();
    // The inventory first: everything else refers to its sites and hosts. Sites first,
    // so that a host may name a site declared further down.
    for (doc, r) in docs.iter().zip(&roles) {
        if matches!(r, DocRole::Inventory) {
            read_sites(doc, &mut state, diags);
        }
    }
    for (doc, r) in docs.iter().zip(&roles) {
        if matches!(r, DocRole::Inventory) {
            read_inventory(sources, doc, &mut state, diags);
        }
    }
    // A host without a site is a site of its own.
    let lone: Vec<String> = state
        .hosts
        .iter()
        .filter(|(_, h)| h.site.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    for key in lone {
        let name = state.hosts[&key].name.clone();
        state.sites.push(SiteSpec {
            name,
            labels: BTreeMap::new(),
            baselines: Vec::new(),
            hosts: vec![key],
            span: None,
        });
    }
    // Every resource accepted so far, for the duplicate check of each new one.
    let mut index = ResourceIndex::default();
    read_layers(sources, docs, &roles, &mut state, &mut index, diags);
    for (doc, r) in docs.iter().zip(&roles) {
        if matches!(r, DocRole::Targets) {
            read_resources(sources, doc, &mut state, &mut index, diags);
        }
    }
    // Each kind sees every resource of a host (an association checks the throttling
    // policies declared for it). Per host, because two hosts may be two organizations:
    // the same policy declared for both is not a duplicate.
    let mut checks = Diagnostics::new();
    for resources in state.resources.values() {
        for kind in kinds::ALL {
            kind.cross_check(resources, &mut checks);
        }
    }
    merge_once(diags, checks);
    check_capacity(&mut state, diags);
    state
}

/// The section that declares the IMAP demand on a shared account.
const CAPACITY: &str = "capacity";

/// Checks each host's declared limits against its declared demand (warnings).
fn check_capacity(state: &mut DesiredState, diags: &mut Diagnostics) {
    let keys: Vec<String> = state.hosts.keys().cloned().collect();
    // Each warning with the hosts it concerns: one declaration read for several hosts is
    // reported once, naming them all.
    let mut found: Vec<(Diagnostic, Vec<String>)> = Vec::new();
    for host_key in keys {
        let declared = declared_limits(state, &host_key);
        if let Some(host) = state.hosts.get_mut(&host_key) {
            if let (Some(demand), Some(d)) = (&host.capacity, &declared) {
                let mut local = Diagnostics::new();
                crate::capacity::check_declared(demand, d, &mut local);
                let who = match &host.site {
                    Some(s) => format!("{} (site {s})", host.name),
                    None => host.name.clone(),
                };
                for x in local.into_vec() {
                    match found.iter_mut().find(|(y, _)| {
                        y.code == x.code && y.span == x.span && y.message == x.message
                    }) {
                        Some((_, hosts)) => hosts.push(who.clone()),
                        None => found.push((x, vec![who.clone()])),
                    }
                }
            }
            host.declared_limits = declared;
        }
    }
    for (mut x, hosts) in found {
        x.message = format!("{} (on {})", x.message, hosts.join(", "));
        diags.push(x);
    }
}

/// The limits the manifests declare for a host (see [`crate::capacity`]).
pub fn declared_limits(state: &DesiredState, host_key: &str) -> Option<DeclaredLimits> {
    let host = state.hosts.get(host_key)?;
    let demand = host.capacity.as_ref()?;
    let empty = Vec::new();
    let own = state.resources.get(host_key).unwrap_or(&empty);
    let org = state
        .site_of(host_key)
        .and_then(|s| s.hosts.first())
        .and_then(|first| state.resources.get(first))
        .unwrap_or(&empty);
    Some(DeclaredLimits::read(&demand.account, own, org))
}

/// The position of each site in [`DesiredState::sites`] by lower-case name (the first,
/// as [`DesiredState::site`] finds it): the inventory's readers look sites up here, so
/// that thousands of sites and hosts are read in linear time.
fn site_index(state: &DesiredState) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, s) in state.sites.iter().enumerate() {
        index.entry(s.name.to_ascii_lowercase()).or_insert(i);
    }
    index
}

fn read_sites(doc: &Document, state: &mut DesiredState, diags: &mut Diagnostics) {
    let Some(node) = doc.root.get("sites") else {
        return;
    };
    let NodeKind::Map(entries) = &node.kind else {
        if !(node.is_null() && node.raw.trim().is_empty()) {
            diags.push(
                Diagnostic::error(
                    "manifest::wrong-type",
                    format!(
                        "sites: expected a map of site name to its settings, found {}",
                        node.describe()
                    ),
                )
                .with_span(node.span),
            );
        }
        return;
    };
    let mut index = site_index(state);
    for (name, value) in entries {
        let path = format!("sites.{}", name.text);
        if let Some(prev) = index
            .get(&name.text.to_ascii_lowercase())
            .and_then(|&i| state.sites.get(i))
        {
            let mut d = Diagnostic::error(
                "manifest::duplicate-site",
                format!("site {} is declared twice", name.text),
            )
            .with_span(name.span);
            if let Some(at) = prev.span {
                d = d.with_related(at, "first declared here");
            }
            diags.push(d);
            continue;
        }
        let Some(mut m) = MapReader::new(value, path.clone(), diags) else {
            continue;
        };
        let labels = m
            .node_of("labels")
            .map(|n| read_labels(n, &path, m.diags()));
        let baselines = m
            .node_of("baselines")
            .map(|n| read_names(n, &format!("{path}.baselines"), m.diags()));
        // Nested hosts are read with the inventory's hosts.
        let _ = m.node_of("hosts");
        m.finish_with_known(SITE_KEYS);
        index.insert(name.text.to_ascii_lowercase(), state.sites.len());
        state.sites.push(SiteSpec {
            name: name.text.clone(),
            labels: labels.unwrap_or_default(),
            baselines: baselines.unwrap_or_default(),
            hosts: Vec::new(),
            span: Some(name.span),
        });
    }
}

/// `labels: { region: emea }`: names and values of letters, digits, `-`, `_`, `.`, `/`.
fn read_labels(node: &Node, path: &str, diags: &mut Diagnostics) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(entries) = node.as_map() else {
        if !(node.is_null() && node.raw.trim().is_empty()) {
            diags.push(
                Diagnostic::error(
                    "manifest::wrong-type",
                    format!(
                        "{path}.labels: expected a map of label to value, found {}",
                        node.describe()
                    ),
                )
                .with_span(node.span)
                .with_hint("write labels as { region: emea, ring: canary }"),
            );
        }
        return out;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    for (k, v) in entries {
        let value = v.scalar_text().map(str::trim);
        match value {
            Some(value) if ok(&k.text) && ok(value) => {
                out.insert(k.text.clone(), value.to_string());
            }
            _ => diags.push(
                Diagnostic::error(
                    "manifest::bad-label",
                    format!(
                        "{path}.labels.{}: a label and its value are words of letters, digits, '-', '_', '.' or '/'",
                        k.text
                    ),
                )
                .with_span(v.span)
                .with_hint("selectors are written label=value,label!=value, so labels cannot hold ',', '=' or '!'"),
            ),
        }
    }
    out
}

/// A list of names (or one name).
fn read_names(node: &Node, what: &str, diags: &mut Diagnostics) -> Vec<(String, Span)> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        NodeKind::Null if node.raw.trim().is_empty() => Vec::new(),
        _ => vec![node],
    };
    let mut out: Vec<(String, Span)> = Vec::new();
    for i in items {
        match i.scalar_text().map(str::trim) {
            Some(t) if !t.is_empty() => {
                if let Some((_, first)) = out.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
                    diags.push(
                        Diagnostic::error(
                            "manifest::duplicate-baseline",
                            format!("{what}: '{t}' is listed twice"),
                        )
                        .with_span(i.span)
                        .with_related(*first, "first listed here"),
                    );
                    continue;
                }
                out.push((t.to_string(), i.span));
            }
            _ => diags.push(
                Diagnostic::error(
                    "manifest::wrong-type",
                    format!("{what}: expected names, found {}", i.describe()),
                )
                .with_span(i.span),
            ),
        }
    }
    out
}

fn read_inventory(
    sources: &SourceMap,
    doc: &Document,
    state: &mut DesiredState,
    diags: &mut Diagnostics,
) {
    let Some(mut top) = MapReader::new(&doc.root, "inventory", diags) else {
        return;
    };
    let hosts_node = top.node_of("hosts");
    let sites_node = top.node_of("sites");
    top.finish_with_known(&["hosts", "sites"]);
    let base = sources
        .path(doc.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    // Hosts nested in their site, then the inventory's hosts.
    if let Some(NodeKind::Map(sites)) = sites_node.map(|n| &n.kind) {
        let index = site_index(state);
        for (site, value) in sites {
            let Some(hosts) = value.get("hosts").or_else(|| {
                value.as_map().and_then(|e| {
                    e.iter()
                        .find(|(k, _)| k.text.eq_ignore_ascii_case("hosts"))
                        .map(|(_, v)| v)
                })
            }) else {
                continue;
            };
            // Only the site's first declaration carries hosts (a duplicate is reported).
            let declared = index
                .get(&site.text.to_ascii_lowercase())
                .and_then(|&i| state.sites.get(i));
            if declared.and_then(|s| s.span) != Some(site.span) {
                continue;
            }
            read_hosts(
                hosts,
                &format!("sites.{}.hosts", site.text),
                Some(&site.text),
                &base,
                state,
                diags,
            );
        }
    }
    if let Some(hosts) = hosts_node {
        read_hosts(hosts, "hosts", None, &base, state, diags);
    }
}

fn read_hosts(
    hosts_node: &Node,
    what: &str,
    in_site: Option<&str>,
    base: &Path,
    state: &mut DesiredState,
    diags: &mut Diagnostics,
) {
    let NodeKind::Map(entries) = &hosts_node.kind else {
        if !(hosts_node.is_null() && hosts_node.raw.trim().is_empty()) {
            diags.push(
                Diagnostic::error(
                    "manifest::wrong-type",
                    format!("{what}: expected a map of host name to its settings"),
                )
                .with_span(hosts_node.span),
            );
        }
        return;
    };
    let mut sites = site_index(state);
    for (name, node) in entries {
        let path = format!("{what}.{}", name.text);
        let Some(mut m) = MapReader::new(node, path.clone(), diags) else {
            continue;
        };
        let endpoint = m.required("endpoint").and_then(|v| v.non_empty_string());
        let names = Auth::ALL.map(Auth::as_str);
        let auth = m
            .one_of("auth", &names)
            .and_then(Auth::from_name)
            .unwrap_or_default();
        let spn = m.string("spn");
        if auth == Auth::Kerberos
            && spn.is_none()
            && let Some(endpoint) = &endpoint
            && endpoint_is_address(endpoint)
        {
            let span = m.node_of("endpoint").map(|n| n.span);
            let mut d = Diagnostic::error(
                "manifest::kerberos-address",
                format!(
                    "{path}: Kerberos needs the server's name, but the endpoint '{endpoint}' is an address"
                ),
            )
            .with_hint(
                "write the endpoint with the host's DNS name, or add 'spn: HTTP/<host's DNS name>' (tickets are issued for service principal names, never for addresses)",
            );
            if let Some(span) = span {
                d = d.with_span(span);
            }
            m.diags().push(d);
        }
        let user = m.required("user").and_then(|v| v.non_empty_string());
        let credential = m.credential("credential");
        let version = m
            .required("exchange")
            .and_then(|v| v.one_of(&Version::NAMES))
            .and_then(Version::parse);
        let access_span = m.node_of("access").map(|n| n.span);
        let access = match m.one_of("access", &["psrp", "snapin", "remote-session"]) {
            Some("remote-session") => Access::RemoteSession,
            Some("snapin") => Access::Snapin,
            _ => Access::Psrp,
        };
        if access == Access::Snapin
            && let Some(span) = access_span
        {
            // Microsoft supports only remoting to Exchange's endpoint for 2010 and later
            // (its documentation of connecting to Exchange servers never loads the
            // snap-in); in a WinRM session the snap-in's AD work also meets the double hop.
            m.diags().push(
                Diagnostic::warning(
                    "manifest::snapin-unsupported",
                    format!(
                        "{path}: access: snapin loads the Exchange snap-in directly, which Microsoft does not support, and its cmdlets reach Active Directory only where the host is set up for CredSSP or Kerberos delegation (in a WinRM session, AD refuses the onward logon: the double hop)"
                    ),
                )
                .with_span(span)
                .with_hint(
                    "use 'access: psrp' (the default): Exchange's own endpoint, where RBAC applies and Exchange does the AD work",
                ),
            );
        }
        let exchange_auth_span = m.node_of("exchange_auth").map(|n| n.span);
        let exchange_auth = m
            .one_of("exchange_auth", &names)
            .and_then(Auth::from_name)
            .unwrap_or(Auth::Kerberos);
        if access != Access::Psrp
            && let Some(span) = exchange_auth_span
        {
            m.diags().push(
                Diagnostic::error(
                    "manifest::exchange-auth-without-psrp",
                    format!("{path}.exchange_auth is used only with 'access: psrp'"),
                )
                .with_span(span)
                .with_hint("add 'access: psrp', or remove exchange_auth"),
            );
        }
        let uri_span = m.node_of("session_uri").map(|n| n.span);
        let session_uri = m.string("session_uri");
        if let (Some(uri), Some(span)) = (&session_uri, uri_span) {
            let lower = uri.to_ascii_lowercase();
            let problem = if access == Access::Snapin {
                Some((
                    "manifest::session-uri-without-session",
                    format!(
                        "{path}.session_uri is used only with 'access: psrp' or 'access: remote-session'"
                    ),
                    "add 'access: psrp', or remove session_uri".to_string(),
                ))
            } else if !(lower.starts_with("http://") || lower.starts_with("https://"))
                || !lower.trim_end_matches('/').ends_with("/powershell")
            {
                Some((
                    "manifest::session-uri",
                    format!("{path}.session_uri '{uri}' is not the URL of Exchange's PowerShell virtual directory"),
                    "write it as http://SERVER.FQDN/PowerShell/ (Kerberos needs the server's name, not an address)".to_string(),
                ))
            } else {
                None
            };
            if let Some((code, msg, hint)) = problem {
                m.diags()
                    .push(Diagnostic::error(code, msg).with_span(span).with_hint(hint));
            }
        }
        // Kerberos to Exchange's endpoint needs its name: a ticket is never issued for an
        // address (the endpoint's own check is above).
        if access == Access::Psrp && exchange_auth == Auth::Kerberos {
            let uri = session_uri
                .clone()
                .or_else(|| endpoint.as_ref().map(|e| psrp_default_uri(e, &name.text)));
            if let Some(uri) = uri.filter(|u| endpoint_is_address(u)) {
                let span = uri_span
                    .or(exchange_auth_span)
                    .or(access_span)
                    .or_else(|| m.node_of("endpoint").map(|n| n.span));
                let mut d = Diagnostic::error(
                    "manifest::kerberos-address",
                    format!(
                        "{path}: Kerberos to Exchange's endpoint needs the server's name, but '{uri}' names an address"
                    ),
                )
                .with_hint(
                    "give session_uri with the server's DNS name (http://ex01.contoso.local/PowerShell/), or set exchange_auth to what the virtual directory accepts",
                );
                if let Some(span) = span {
                    d = d.with_span(span);
                }
                m.diags().push(d);
            }
        }
        let site_node = m.node_of("site");
        let mut site = m.string("site");
        let baselines = m
            .node_of("baselines")
            .map(|n| read_names(n, &format!("{path}.baselines"), m.diags()));
        let pin_span = m.node_of("tls_fingerprint").map(|n| n.span);
        let tls_fingerprint = m.string("tls_fingerprint");
        if let (Some(pin), Some(span)) = (&tls_fingerprint, pin_span)
            && exctl_winrm::tls::parse_fingerprint(pin).is_none()
        {
            m.diags().push(
                Diagnostic::error(
                    "manifest::tls-fingerprint",
                    format!("{path}.tls_fingerprint '{pin}' is not a SHA-256 fingerprint"),
                )
                .with_span(span)
                .with_hint("write sha256: followed by the 64 hexadecimal digits (colons allowed), e.g. from: Get-ChildItem Cert:\\LocalMachine\\My | ForEach-Object { [BitConverter]::ToString((New-Object Security.Cryptography.SHA256Managed).ComputeHash($_.RawData)) }"),
            );
        }
        let ca_span = m.node_of("ca_file").map(|n| n.span);
        let ca_file = m.string("ca_file").map(|f| base.join(f));
        if let (Some(ep), Some(span)) = (&endpoint, m.node_of("endpoint").map(|n| n.span)) {
            let ca = ca_file.as_deref().zip(ca_span);
            for d in endpoint_diagnostics(&path, ep, auth, ca, span) {
                m.diags().push(d);
            }
        }
        m.finish_with_known(HOST_KEYS);
        if let Some(outer) = in_site {
            match (&site, site_node) {
                (Some(s), Some(n)) if !s.eq_ignore_ascii_case(outer) => {
                    diags.push(
                        Diagnostic::error(
                            "manifest::host-site-mismatch",
                            format!(
                                "{path}: this host is listed under site {outer} but says site: {s}"
                            ),
                        )
                        .with_span(n.span)
                        .with_hint("remove 'site:' from hosts listed under a site"),
                    );
                    continue;
                }
                _ => site = Some(outer.to_string()),
            }
        }
        if let Some(prev) = state.hosts.get(&key(&name.text)) {
            diags.push(
                Diagnostic::error(
                    "manifest::duplicate-host",
                    format!("host {} is declared twice", name.text),
                )
                .with_span(name.span)
                .with_related(prev.span, "first declared here"),
            );
            continue;
        }
        let (Some(endpoint), Some(user), Some(version)) = (endpoint, user, version) else {
            continue;
        };
        if let Some(s) = &site {
            // Sites only named by hosts exist too; they have no labels or baselines.
            let i = match sites.get(&s.to_ascii_lowercase()) {
                Some(&i) => i,
                None => {
                    sites.insert(s.to_ascii_lowercase(), state.sites.len());
                    state.sites.push(SiteSpec {
                        name: s.clone(),
                        labels: BTreeMap::new(),
                        baselines: Vec::new(),
                        hosts: Vec::new(),
                        span: None,
                    });
                    state.sites.len() - 1
                }
            };
            state.sites[i].hosts.push(key(&name.text));
            site = Some(state.sites[i].name.clone());
        }
        state.hosts.insert(
            key(&name.text),
            HostSpec {
                name: name.text.clone(),
                endpoint,
                auth,
                spn,
                user,
                credential,
                version,
                access,
                session_uri,
                exchange_auth,
                site,
                baselines,
                ca_file,
                tls_fingerprint,
                span: name.span,
                capacity: None,
                declared_limits: None,
            },
        );
    }
}

/// What is wrong with a host's WinRM endpoint, its authentication over it and its CA
/// file, found before any connection (plan would fail the host without a location).
/// WinRM listens on `http://HOST:5985/wsman` and `https://HOST:5986/wsman` by default
/// (`winrm quickconfig`; the path is the listener's URLPrefix, `wsman`); Windows takes
/// Basic authentication for local accounts only and exctl refuses it over HTTP, where
/// the password would cross in the clear.
fn endpoint_diagnostics(
    path: &str,
    endpoint: &str,
    auth: Auth,
    ca_file: Option<(&Path, Span)>,
    span: Span,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let err = |code: &'static str, msg: String, hint: &str| {
        Diagnostic::error(code, msg)
            .with_span(span)
            .with_hint(hint.to_string())
    };
    let example = "write it as http://SERVER:5985/wsman or https://SERVER:5986/wsman";
    let parts = EndpointParts::of(endpoint);
    let Some(scheme) = parts.scheme else {
        out.push(err(
            "manifest::endpoint",
            format!("{path}.endpoint '{endpoint}' has no scheme"),
            example,
        ));
        return out;
    };
    let https = scheme.eq_ignore_ascii_case("https");
    if !https && !scheme.eq_ignore_ascii_case("http") {
        out.push(err(
            "manifest::endpoint",
            format!("{path}.endpoint '{endpoint}': WinRM speaks http or https, not {scheme}"),
            example,
        ));
        return out;
    }
    let EndpointParts {
        authority,
        host,
        port,
        tail,
        ..
    } = parts;
    if authority.contains('@') {
        out.push(err(
            "manifest::endpoint",
            format!("{path}.endpoint '{endpoint}' carries a user name or password"),
            "give the account as 'user:' and the password as 'credential:' (keyring:NAME or env:VAR)",
        ));
    } else if host.is_empty() || host.contains(char::is_whitespace) {
        out.push(err(
            "manifest::endpoint",
            format!("{path}.endpoint '{endpoint}' names no host"),
            example,
        ));
    }
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|n| n > 0)
    {
        out.push(err(
            "manifest::endpoint",
            format!("{path}.endpoint '{endpoint}': '{p}' is not a port (1 to 65535)"),
            example,
        ));
    }
    if tail.contains(['?', '#']) {
        out.push(err(
            "manifest::endpoint",
            format!(
                "{path}.endpoint '{endpoint}' has a query or fragment, which WinRM does not take"
            ),
            example,
        ));
    } else if tail.trim_end_matches('/').is_empty() {
        out.push(err(
            "manifest::endpoint",
            format!("{path}.endpoint '{endpoint}' has no path: WinRM answers on /wsman"),
            example,
        ));
    }
    if auth == Auth::Basic && !https {
        out.push(err(
            "manifest::basic-over-http",
            format!("{path}: auth: basic over http:// would send the password in the clear, and exctl refuses it"),
            "use https://SERVER:5986/wsman with Basic (local accounts only, as Windows takes it), or auth: ntlm over http",
        ));
    }
    if let Some((file, ca_span)) = ca_file {
        if !https {
            out.push(
                Diagnostic::warning(
                    "manifest::ca-file-unused",
                    format!("{path}.ca_file is used only over https, and the endpoint is http"),
                )
                .with_span(ca_span)
                .with_hint("remove ca_file, or use the host's https listener"),
            );
        } else if !file.is_file() {
            out.push(
                Diagnostic::error(
                    "manifest::ca-file",
                    format!("{path}.ca_file: {} does not exist", file.display()),
                )
                .with_span(ca_span)
                .with_hint("the path is relative to the inventory file; export the listener's certificate or its CA as PEM"),
            );
        }
    }
    out
}

/// A merged section's diagnostics name their document by the file of the section's first
/// layer (`uccx.yaml.registry_values...`); a value that came from another layer (a site
/// or host override) is in another file, which the message must name.
fn relabel(diags: Diagnostics, section_file: &str, sources: &SourceMap) -> Diagnostics {
    let prefix = format!("{section_file}.");
    let mut out = Diagnostics::new();
    for mut d in diags.into_vec() {
        if let Some(span) = d.span {
            let file = file_label(sources, span);
            if file != section_file && d.message.contains(&prefix) {
                d.message = d.message.replacen(&prefix, &format!("{file}."), 1);
            }
        }
        out.push(d);
    }
    out
}

/// Whether an endpoint URL names its host by an IP address.
fn endpoint_is_address(endpoint: &str) -> bool {
    EndpointParts::of(endpoint)
        .host
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// The parts of an endpoint URL, as written (nothing checked; see
/// [`endpoint_diagnostics`] for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointParts<'a> {
    /// `http`, `https`, anything else; `None` without `://`.
    pub scheme: Option<&'a str>,
    /// Between `://` and the path: `[user@]host[:port]`.
    pub authority: &'a str,
    /// The host, without the brackets of an IPv6 address.
    pub host: &'a str,
    /// The port as written, if any.
    pub port: Option<&'a str>,
    /// The path, query and fragment (`/wsman`).
    pub tail: &'a str,
}

impl<'a> EndpointParts<'a> {
    /// Splits `endpoint`.
    pub fn of(endpoint: &'a str) -> EndpointParts<'a> {
        let (scheme, rest) = match endpoint.split_once("://") {
            Some((s, r)) => (Some(s), r),
            None => (None, endpoint),
        };
        let (authority, tail) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, p)) => (h, p.strip_prefix(':')),
                None => ("", None),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        EndpointParts {
            scheme,
            authority,
            host,
            port,
            tail,
        }
    }
}

/// The file name of a span's file, as resource paths name documents in messages.
fn file_label(sources: &SourceMap, span: Span) -> String {
    let path = sources.path(span.file);
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reads the baseline, site and host documents, merges each host's layers and reads
/// its resources from the result.
fn read_layers(
    sources: &SourceMap,
    docs: &[Document],
    roles: &[DocRole],
    state: &mut DesiredState,
    index: &mut ResourceIndex,
    diags: &mut Diagnostics,
) {
    let org_keys: Vec<&str> = kinds::ALL
        .iter()
        .filter(|k| k.scope() == Scope::Organization)
        .map(|k| k.key())
        .collect();
    let known: Vec<&str> = LAYER_HEADERS
        .iter()
        .copied()
        .chain(kinds::ALL.iter().map(|k| k.key()))
        .chain(std::iter::once(CAPACITY))
        .collect();
    // Layer documents, checked once: their keys, and what they name.
    let mut by_baseline: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut by_site: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut by_host: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut docs_of_layer: Vec<&Document> = Vec::new();
    let sites = site_index(state);
    for (doc, r) in docs.iter().zip(roles) {
        let DocRole::Layer(kind) = r else { continue };
        let Some(mut m) = MapReader::new(&doc.root, "", diags) else {
            continue;
        };
        for k in &known {
            let _ = m.node_of(k);
        }
        m.finish_with_known(&known);
        let ok = match kind {
            LayerKind::Baseline(_) => true,
            LayerKind::Site(name) => {
                let found = sites.contains_key(&name.to_ascii_lowercase());
                if !found {
                    let names: Vec<&str> = state.sites.iter().map(|s| s.name.as_str()).collect();
                    diags.push(
                        Diagnostic::error(
                            "manifest::unknown-site",
                            format!("site: '{name}' is not a site of the inventory"),
                        )
                        .with_span(doc.root.get("site").map_or(doc.root.span, |n| n.span))
                        .with_hint(exctl_manifest::did_you_mean_hint(name, &names).unwrap_or_else(|| {
                            "declare it under 'sites:' in the inventory, or give its hosts 'site: NAME'".to_string()
                        })),
                    );
                }
                found
            }
            LayerKind::Host(name) => {
                let found = state.hosts.contains_key(&key(name));
                if !found {
                    let names: Vec<&str> = state.hosts.values().map(|h| h.name.as_str()).collect();
                    diags.push(
                        Diagnostic::error(
                            "manifest::unknown-host",
                            format!("host: '{name}' is not a host of the inventory"),
                        )
                        .with_span(doc.root.get("host").map_or(doc.root.span, |n| n.span))
                        .with_hint_opt(exctl_manifest::did_you_mean_hint(name, &names)),
                    );
                }
                for k in &org_keys {
                    if let Some((key, _)) = doc
                        .root
                        .as_map()
                        .and_then(|e| e.iter().find(|(x, _)| x.text.eq_ignore_ascii_case(k)))
                    {
                        diags.push(
                            Diagnostic::error(
                                "manifest::organization-in-host-override",
                                format!("{k} is organization-wide: it cannot be set for one host"),
                            )
                            .with_span(key.span)
                            .with_hint(
                                "put it in the site's override (site: NAME) or in a baseline",
                            ),
                        );
                    }
                }
                found
            }
        };
        if !ok {
            continue;
        }
        let id = state.layers.len();
        state.layers.push(Layer {
            kind: kind.clone(),
            span: doc.root.span,
        });
        docs_of_layer.push(doc);
        let map = match kind {
            LayerKind::Baseline(_) => &mut by_baseline,
            LayerKind::Site(_) => &mut by_site,
            LayerKind::Host(_) => &mut by_host,
        };
        let name = match kind {
            LayerKind::Baseline(n) | LayerKind::Site(n) | LayerKind::Host(n) => n,
        };
        map.entry(name.to_ascii_lowercase()).or_default().push(id);
    }
    // Baselines that sites and hosts name must exist.
    let baseline_names: Vec<String> = state
        .layers
        .iter()
        .filter_map(|l| match &l.kind {
            LayerKind::Baseline(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    let mut reported: HashSet<Span> = HashSet::new();
    let check_ref =
        |name: &str, span: Span, diags: &mut Diagnostics, reported: &mut HashSet<Span>| {
            if by_baseline.contains_key(&name.to_ascii_lowercase()) || !reported.insert(span) {
                return;
            }
            let names: Vec<&str> = baseline_names.iter().map(String::as_str).collect();
            diags.push(
                Diagnostic::error(
                    "manifest::unknown-baseline",
                    format!("baseline '{name}' is not declared by any document"),
                )
                .with_span(span)
                .with_hint(
                    exctl_manifest::did_you_mean_hint(name, &names).unwrap_or_else(|| {
                        format!("declare it in a document that starts with 'baseline: {name}'")
                    }),
                ),
            );
        };
    let layers = state.layers.clone();
    let describe = |o: Origin| {
        usize::try_from(o.layer)
            .ok()
            .and_then(|i| layers.get(i))
            .map_or_else(String::new, |l| l.kind.to_string())
    };
    let identity =
        |section: &str, entry: &Node| kinds::by_key(section).and_then(|k| k.merge_identity(entry));
    let mut parse_diags = Diagnostics::new();
    let mut merged_resources: Vec<(String, Resource)> = Vec::new();
    let mut demands: Vec<(String, Option<Demand>)> = Vec::new();
    let sites = state.sites.clone();
    let mut used_baselines: HashSet<String> = HashSet::new();
    // Hosts of one site and release whose trees merge the same layers (a site's hosts
    // on its baselines and site overrides alone) share one tree and one parse of each
    // section; each host's resources are that parse expanded for the host.
    let mut shared: Vec<SharedTree> = Vec::new();
    let mut shared_by: HashMap<TreeKey, usize> = HashMap::new();
    for (site_index, site) in sites.iter().enumerate() {
        // The hosts every value of the site applies to, in the site's order.
        let site_hosts: Vec<String> = site
            .hosts
            .iter()
            .filter_map(|k| state.hosts.get(k).map(|h| h.name.clone()))
            .collect();
        for (position, host_key) in site.hosts.iter().enumerate() {
            let Some(host) = state.hosts.get(host_key) else {
                continue;
            };
            let baselines = host.baselines.as_ref().unwrap_or(&site.baselines);
            used_baselines.extend(baselines.iter().map(|(n, _)| n.to_ascii_lowercase()));
            // (level, layer ids)
            let mut plan: Vec<(u32, &[usize])> = Vec::new();
            for (i, (name, span)) in baselines.iter().enumerate() {
                check_ref(name, *span, diags, &mut reported);
                if let Some(ids) = by_baseline.get(&name.to_ascii_lowercase()) {
                    plan.push((u32::try_from(i + 1).unwrap_or(u32::MAX - 2), ids));
                }
            }
            if let Some(ids) = by_site.get(&site.name.to_ascii_lowercase()) {
                plan.push((SITE_LEVEL, ids));
            }
            if let Some(ids) = by_host.get(&host.name.to_ascii_lowercase()) {
                plan.push((HOST_LEVEL, ids));
            }
            let Some(&(_, first)) = plan.first() else {
                continue;
            };
            let layers_key: Vec<(u32, usize)> = plan
                .iter()
                .flat_map(|(level, ids)| ids.iter().map(move |&id| (*level, id)))
                .collect();
            let slot = match shared_by.entry((site_index, host.version, layers_key)) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let root_span = first
                        .first()
                        .map_or(host.span, |&id| docs_of_layer[id].root.span);
                    let mut tree = Merged::root(
                        root_span,
                        Origin {
                            level: 0,
                            layer: u32::MAX,
                        },
                    );
                    {
                        let mut ov = Overlay::new(&identity, &describe, &mut parse_diags);
                        for (level, ids) in &plan {
                            for &id in *ids {
                                let origin = Origin {
                                    level: *level,
                                    layer: u32::try_from(id).unwrap_or(u32::MAX),
                                };
                                ov.document(
                                    &mut tree,
                                    &docs_of_layer[id].root,
                                    origin,
                                    LAYER_HEADERS,
                                );
                            }
                        }
                    }
                    // Values of baselines and site overrides apply to every host of
                    // the site, those of a host override to that host alone: the kinds
                    // check each against its own hosts (a connector named after one
                    // server is right in that server's override, and suspicious in the
                    // site's).
                    let narrowed: Vec<(Span, Vec<String>)> = by_host
                        .get(&host.name.to_ascii_lowercase())
                        .map(|ids| {
                            ids.iter()
                                .map(|&i| (docs_of_layer[i].root.span, vec![host.name.clone()]))
                                .collect()
                        })
                        .unwrap_or_default();
                    state.effective.insert(host_key.clone(), tree);
                    shared.push(SharedTree {
                        owner: host_key.clone(),
                        narrowed,
                        sections: HashMap::new(),
                    });
                    *e.insert(shared.len() - 1)
                }
            };
            let entry = &mut shared[slot];
            if entry.owner != *host_key
                && let Some(tree) = state.effective.get(&entry.owner).cloned()
            {
                state.effective.insert(host_key.clone(), tree);
            }
            let Some(tree) = state.effective.get(host_key) else {
                continue;
            };
            // Organization-wide resources go through the site's first host.
            let org_host = position == 0;
            for kind in kinds::ALL {
                if kind.scope() == Scope::Organization && !org_host {
                    continue;
                }
                let Some(section) = tree.get(kind.key()) else {
                    continue;
                };
                let (declared, path) = entry.sections.entry(kind.key()).or_insert_with(|| {
                    let node = section.to_node();
                    let ctx = ParseContext {
                        version: host.version,
                        hosts: site_hosts.clone(),
                        path: file_label(sources, node.span),
                        narrowed: entry.narrowed.clone(),
                    };
                    let mut local = Diagnostics::new();
                    let declared = parse_section(*kind, &node, &ctx, &mut local);
                    merge_once(&mut parse_diags, relabel(local, &ctx.path, sources));
                    (declared, ctx.path)
                });
                let mut local = Diagnostics::new();
                for r in kind.expand(declared, &host.name, &mut local) {
                    merged_resources.push((host_key.clone(), r));
                }
                merge_once(&mut parse_diags, relabel(local, path, sources));
            }
            if let Some(section) = tree.get(CAPACITY) {
                let node = section.to_node();
                demands.push((
                    host_key.clone(),
                    Demand::parse(
                        &node,
                        &format!("{}.{CAPACITY}", file_label(sources, node.span)),
                        &mut parse_diags,
                    ),
                ));
            }
        }
    }
    for (host_key, demand) in demands {
        if let Some(h) = state.hosts.get_mut(&host_key) {
            h.capacity = demand;
        }
    }
    // A baseline no site or host lists is still checked (as Exchange 2010 SP3, the
    // release that accepts the most), and named: it is dead weight or a forgotten
    // `baselines:` entry.
    for (name, ids) in &by_baseline {
        if used_baselines.contains(name) {
            continue;
        }
        let Some(&first) = ids.first() else { continue };
        let shown = match &state.layers[first].kind {
            LayerKind::Baseline(n) => n.clone(),
            _ => name.clone(),
        };
        diags.push(
            Diagnostic::warning(
                "manifest::unused-baseline",
                format!("baseline '{shown}' is not used by any site or host"),
            )
            .with_span(
                docs_of_layer[first]
                    .root
                    .get("baseline")
                    .map_or(docs_of_layer[first].root.span, |n| n.span),
            )
            .with_hint(format!(
                "list it under a site's or host's 'baselines: [{shown}]', or remove it"
            )),
        );
        let mut tree = Merged::root(
            docs_of_layer[first].root.span,
            Origin {
                level: 0,
                layer: u32::MAX,
            },
        );
        {
            let mut ov = Overlay::new(&identity, &describe, &mut parse_diags);
            for &id in ids {
                let origin = Origin {
                    level: 1,
                    layer: u32::try_from(id).unwrap_or(u32::MAX),
                };
                ov.document(&mut tree, &docs_of_layer[id].root, origin, LAYER_HEADERS);
            }
        }
        for kind in kinds::ALL {
            let Some(section) = tree.get(kind.key()) else {
                continue;
            };
            let node = section.to_node();
            let ctx = ParseContext::new(
                Version::Sp3,
                vec!["BASELINE".to_string()],
                file_label(sources, node.span),
            );
            let mut local = Diagnostics::new();
            let _ = parse_section(*kind, &node, &ctx, &mut local);
            // Its warnings depend on the hosts it would apply to; its errors do not.
            let mut errors = Diagnostics::new();
            for d in local.into_vec().into_iter().filter(Diagnostic::is_error) {
                errors.push(d);
            }
            merge_once(&mut parse_diags, errors);
        }
        if let Some(section) = tree.get(CAPACITY) {
            let node = section.to_node();
            let _ = Demand::parse(
                &node,
                &format!("{}.{CAPACITY}", file_label(sources, node.span)),
                &mut parse_diags,
            );
        }
    }
    merge_once(diags, parse_diags);
    add_resources(state, index, merged_resources, diags);
}
fn read_resources(
    sources: &SourceMap,
    doc: &Document,
    state: &mut DesiredState,
    index: &mut ResourceIndex,
    diags: &mut Diagnostics,
) {
    // Messages name keys as `lon.yaml.imap_settings.X`; the location line has the path.
    let path = sources.path(doc.file);
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let Some(mut top) = MapReader::new(&doc.root, file.clone(), diags) else {
        return;
    };
    let targets: Vec<(String, Span)> = match top.node_of("targets") {
        None => {
            top.diags().push(
                Diagnostic::error(
                    "manifest::missing-targets",
                    "this document declares resources but no 'targets'",
                )
                .with_span(doc.root.span)
                .with_hint("add 'targets: [HOSTNAME]' (hosts of the inventory) or 'targets: all'"),
            );
            Vec::new()
        }
        Some(n) => match &n.kind {
            NodeKind::Str(s) if s.eq_ignore_ascii_case("all") => state
                .hosts
                .values()
                .map(|h| (h.name.clone(), n.span))
                .collect(),
            NodeKind::Str(s) => vec![(s.clone(), n.span)],
            NodeKind::Seq(items) => {
                let mut names = Vec::new();
                for i in items {
                    match &i.kind {
                        NodeKind::Str(s) => names.push((s.clone(), i.span)),
                        _ => top.diags().push(
                            Diagnostic::error(
                                "manifest::wrong-type",
                                "targets: expected host names",
                            )
                            .with_span(i.span),
                        ),
                    }
                }
                names
            }
            _ => {
                top.diags().push(
                    Diagnostic::error(
                        "manifest::wrong-type",
                        "targets: expected a list of host names or 'all'",
                    )
                    .with_span(n.span),
                );
                Vec::new()
            }
        },
    };
    let known_hosts: Vec<String> = state.hosts.values().map(|h| h.name.clone()).collect();
    let mut hosts: Vec<&HostSpec> = Vec::new();
    for (t, span) in &targets {
        match state.hosts.get(&key(t)) {
            Some(h) => hosts.push(h),
            None => {
                let names: Vec<&str> = known_hosts.iter().map(String::as_str).collect();
                top.diags().push(
                    Diagnostic::error(
                        "manifest::unknown-host",
                        format!("target '{t}' is not a host of the inventory"),
                    )
                    .with_span(*span)
                    .with_hint_opt(exctl_manifest::did_you_mean_hint(t, &names)),
                );
            }
        }
    }
    let mut out: Vec<(String, Resource)> = Vec::new();
    let mut demands: Vec<(String, Option<Demand>)> = Vec::new();
    let target_names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    for kind in kinds::ALL {
        let Some(node) = top.node_of(kind.key()) else {
            continue;
        };
        let hosts_for_kind: Vec<&HostSpec> = match kind.scope() {
            Scope::Server => hosts.clone(),
            Scope::Organization => hosts.iter().take(1).copied().collect(),
        };
        // The section is read once per release its targets run (what a manifest may
        // say depends on the release; usually there is one), then bound to each host.
        let mut parsed: Vec<(Version, Vec<Declared>)> = Vec::new();
        let mut local = Diagnostics::new();
        for h in hosts_for_kind {
            let i = match parsed.iter().position(|(v, _)| *v == h.version) {
                Some(i) => i,
                None => {
                    let ctx = ParseContext::new(h.version, target_names.clone(), file.clone());
                    parsed.push((h.version, parse_section(*kind, node, &ctx, &mut local)));
                    parsed.len() - 1
                }
            };
            for r in kind.expand(&parsed[i].1, &h.name, &mut local) {
                out.push((key(&h.name), r));
            }
        }
        merge_once(top.diags(), local);
    }
    if let Some(node) = top.node_of(CAPACITY) {
        let demand = Demand::parse(node, &format!("{file}.{CAPACITY}"), top.diags());
        for h in &hosts {
            demands.push((key(&h.name), demand.clone()));
        }
    }
    let known: Vec<&str> = std::iter::once("targets")
        .chain(kinds::ALL.iter().map(|k| k.key()))
        .chain(std::iter::once(CAPACITY))
        .collect();
    top.finish_with_known(&known);
    for (host_key, demand) in demands {
        if let Some(h) = state.hosts.get_mut(&host_key) {
            h.capacity = demand;
        }
    }
    add_resources(state, index, out, diags);
}

/// Where each resource accepted for a host is in [`DesiredState::resources`], by host
/// key, kind and lower-case identity (identities compare ignoring case): the duplicate
/// check of a new resource is a lookup, so that thousands of resources are added in
/// linear time.
#[derive(Default)]
struct ResourceIndex(HashMap<(String, &'static str, String), usize>);

/// Adds resources to their hosts, refusing one declared twice for a host.
fn add_resources(
    state: &mut DesiredState,
    index: &mut ResourceIndex,
    out: Vec<(String, Resource)>,
    diags: &mut Diagnostics,
) {
    for (host, r) in out {
        let key = (host.clone(), r.kind, r.id.to_ascii_lowercase());
        let list = state.resources.entry(host).or_default();
        if let Some(prev) = index.0.get(&key).and_then(|&i| list.get(i)) {
            diags.push(
                Diagnostic::error(
                    "manifest::duplicate-resource",
                    format!("{} {} is declared twice for the same host", r.kind, r.id),
                )
                .with_span(r.span)
                .with_related(prev.span, "first declared here"),
            );
            continue;
        }
        index.0.insert(key, list.len());
        list.push(r);
    }
}

/// Adds diagnostics not already reported: the same problem at the same place, found
/// again because one declaration (a baseline, a document with several targets) is read
/// for several hosts. Messages may differ only in the path they name.
fn merge_once(diags: &mut Diagnostics, new: Diagnostics) {
    let mut seen: HashSet<(&'static str, Option<Span>)> =
        diags.iter().map(|e| (e.code, e.span)).collect();
    for d in new.into_vec() {
        if d.span.is_none()
            && diags
                .iter()
                .any(|e| e.code == d.code && e.message == d.message)
        {
            continue;
        }
        if d.span.is_some() && !seen.insert((d.code, d.span)) {
            continue;
        }
        diags.push(d);
    }
}

/// What makes hosts share a merged tree: their site (whose hosts the values apply to),
/// their release, and the layers merged, as (level, layer id).
type TreeKey = (usize, Version, Vec<(u32, usize)>);

/// One merged tree that hosts share (see `read_layers`), and the sections parsed from it.
struct SharedTree {
    /// The host whose tree in [`DesiredState::effective`] it is (the others have copies).
    owner: String,
    /// The parts of the tree that apply to one host alone (its host override).
    narrowed: Vec<(Span, Vec<String>)>,
    /// Each section parsed, by kind: its declarations and its path in messages.
    sections: HashMap<&'static str, (Vec<Declared>, String)>,
}

/// Parses a section: every parse of the desired state goes through here (so that a
/// test can count them).
fn parse_section(
    kind: &dyn Kind,
    node: &Node,
    ctx: &ParseContext,
    diags: &mut Diagnostics,
) -> Vec<Declared> {
    #[cfg(test)]
    tests::PARSES.with(|n| n.set(n.get() + 1));
    kind.parse(node, ctx, diags)
}

/// The kind of a resource.
pub fn kind_of(r: &Resource) -> Option<&'static dyn Kind> {
    kinds::by_key(r.kind)
}

#[cfg(test)]
mod tests {
    use super::endpoint_is_address;
    use std::cell::Cell;

    thread_local! {
        /// Sections parsed on this thread (each test runs on its own).
        pub(super) static PARSES: Cell<usize> = const { Cell::new(0) };
    }

    /// Builds the desired state of one file's documents: (state, diagnostics, parses).
    fn build(yaml: &str) -> (super::DesiredState, exctl_manifest::Diagnostics, usize) {
        let (sources, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
        PARSES.with(|n| n.set(0));
        let state = super::build(&sources, &docs, &mut diags);
        (state, diags, PARSES.with(Cell::get))
    }

    fn inventory(n: usize, site: Option<&str>) -> String {
        let mut s = String::from("hosts:\n");
        for i in 0..n {
            s.push_str(&format!(
                "  EX{i:02}: {{ endpoint: 'https://ex{i:02}.contoso.local:5986/wsman', user: 'CONTOSO\\svc', credential: 'env:EXCTL_PW', exchange: 2010-sp3{} }}\n",
                site.map_or(String::new(), |s| format!(", site: {s}"))
            ));
        }
        s
    }

    #[test]
    fn a_targets_document_is_parsed_once_for_all_its_hosts() {
        let manifest = format!(
            "{}---\ntargets: all\nimap_settings: {{ MaxConnectionsPerUser: 40 }}\nregistry_values:\n  - {{ path: 'HKLM:\\SOFTWARE\\Contoso', name: Flag, type: dword, value: 1 }}\nreceive_connectors:\n  \"*\": {{ MaxHopCount: 10 }}\n  EX03\\Relay: {{ MaxHopCount: 20 }}\n",
            inventory(8, None)
        );
        let (state, diags, parses) = build(&manifest);
        assert!(!diags.has_errors(), "{diags:?}");
        // Three sections, each parsed once for eight hosts.
        assert_eq!(parses, 3);
        assert_eq!(state.resources.len(), 8);
        for (host, resources) in &state.resources {
            let imap: Vec<&str> = resources
                .iter()
                .filter(|r| r.kind == "imap_settings")
                .map(|r| r.id.as_str())
                .collect();
            assert_eq!(imap, [host.as_str()]);
            let connectors = resources
                .iter()
                .filter(|r| r.kind == "receive_connectors")
                .count();
            assert_eq!(connectors, if host == "EX03" { 2 } else { 1 }, "{host}");
        }
    }

    #[test]
    fn a_host_overrides_values_are_checked_against_that_host_alone() {
        let manifest = format!(
            "{}sites:\n  lon: {{ baselines: [uccx] }}\n---\nbaseline: uccx\nreceive_connectors:\n  Default EX00: {{ MaxHopCount: 10 }}\n---\nhost: EX00\nreceive_connectors:\n  Client EX00: {{ MaxHopCount: 20 }}\n  EX01\\Relay: {{ MaxHopCount: 30 }}\n",
            inventory(2, Some("lon"))
        );
        let (state, diags, parses) = build(&manifest);
        // The baseline's tree (EX01) and EX00's own: one parse each, no second parse of
        // EX00's tree to place its override's problems.
        assert_eq!(parses, 2);
        let got: Vec<(&str, u32, String)> = diags
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.span.map_or(0, |s| s.start.line),
                    d.message.clone(),
                )
            })
            .collect();
        let at = |code: &str| got.iter().filter(|(c, ..)| *c == code).collect::<Vec<_>>();
        // A name after one host is suspicious in what applies to the whole site...
        let specific = at("exchange::connector-name-host-specific");
        assert_eq!(specific.len(), 1, "{got:?}");
        assert!(
            specific[0].2.contains("Default EX00 names host EX00"),
            "{got:?}"
        );
        // ...and right in that host's override, where another server's connector is
        // never applied.
        let elsewhere = at("exchange::connector-server-not-targeted");
        assert_eq!(elsewhere.len(), 1, "{got:?}");
        assert!(
            elsewhere[0]
                .2
                .contains("applies to server EX01, which this document does not target (EX00)"),
            "{got:?}"
        );
        let ids: Vec<&str> = state.resources["EX00"]
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["EX00\\Default EX00", "EX00\\Client EX00"]);
        let ids: Vec<&str> = state.resources["EX01"]
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["EX01\\Default EX00"]);
    }

    #[test]
    fn hosts_of_a_site_on_the_same_layers_share_one_parse() {
        let manifest = format!(
            "{}sites:\n  lon: {{ baselines: [uccx] }}\n---\nbaseline: uccx\nimap_settings: {{ MaxConnectionsPerUser: 40 }}\nthrottling_policies:\n  UCCX: {{ IMAPMaxConcurrency: unlimited }}\n---\nhost: EX02\nimap_settings: {{ MaxConnectionsPerUser: 80 }}\n",
            inventory(6, Some("lon"))
        );
        let (state, diags, parses) = build(&manifest);
        assert!(!diags.has_errors(), "{diags:?}");
        // The five hosts on the baseline alone share one tree (its IMAP settings and,
        // through the site's first host, the policies); EX02's override makes its own.
        assert_eq!(parses, 3);
        let limit = |host: &str| {
            state.resources[host]
                .iter()
                .find(|r| r.kind == "imap_settings")
                .map(|r| (r.id.clone(), r.attrs[0].value.to_string()))
        };
        assert_eq!(limit("EX01"), Some(("EX01".into(), "40".into())));
        assert_eq!(limit("EX02"), Some(("EX02".into(), "80".into())));
        assert_eq!(limit("EX05"), Some(("EX05".into(), "40".into())));
        let policies = state
            .resources
            .values()
            .flatten()
            .filter(|r| r.kind == "throttling_policies")
            .count();
        assert_eq!(policies, 1);
        assert_eq!(state.effective.len(), 6);
    }

    #[test]
    fn endpoints_by_address_are_told_from_endpoints_by_name() {
        assert!(endpoint_is_address("http://10.0.0.5:5985/wsman"));
        assert!(endpoint_is_address("https://[2001:db8::1]:5986/wsman"));
        assert!(endpoint_is_address("http://192.0.2.1/wsman"));
        assert!(!endpoint_is_address("http://ex01.contoso.local:5985/wsman"));
        assert!(!endpoint_is_address("https://localhost:5986/wsman"));
    }
}
