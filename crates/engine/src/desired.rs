//! The desired state: the inventory of hosts and, per host, the resources the manifests
//! declare for it, validated before any connection.
//!
//! Two kinds of documents make up a manifest repository:
//!
//! ```yaml
//! # an inventory document: how to reach each host
//! hosts:
//!   EX01:
//!     endpoint: https://ex01.contoso.local:5986/wsman
//!     auth: ntlm                      # ntlm (default) | basic
//!     user: CONTOSO\svc-exctl
//!     credential: keyring:contoso-exchange   # or env:VAR; a password in clear is refused
//!     exchange: 2010-sp3              # 2010-rtm | 2010-sp1 | 2010-sp2 | 2010-sp3
//!     access: snapin                  # snapin (default) | remote-session
//!     site: lon                       # optional
//!     ca_file: corp-ca.pem            # optional, relative to the document
//! ---
//! # a resource document: what the targets should look like
//! targets: [EX01]                     # host names, or 'all'
//! imap_settings: { MaxConnectionsPerUser: 40 }
//! registry_values: [...]
//! ```
//!
//! Server-scoped kinds yield one resource per target host; organization-scoped kinds
//! are observed and applied once, through the document's first target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use exctl_exchange::kind::{Kind, ParseContext, Resource, Scope};
use exctl_exchange::{Version, kinds};
use exctl_manifest::{
    CredentialRef, Diagnostic, Diagnostics, Document, MapReader, NodeKind, SourceMap, Span,
};

/// How exctl reaches the Exchange cmdlets on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// `Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010` in the WinRS
    /// PowerShell process: simple; bypasses RBAC.
    Snapin,
    /// A session to `http://<fqdn>/PowerShell/` with ConfigurationName
    /// Microsoft.Exchange: the supported route; RBAC applies.
    RemoteSession,
}

/// One host of the inventory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostSpec {
    /// The computer name (`EX01`), as Exchange names the server.
    pub name: String,
    /// The WinRM endpoint.
    pub endpoint: String,
    /// `ntlm` or `basic`.
    pub auth: String,
    /// The account.
    pub user: String,
    /// Where the password comes from.
    #[serde(skip)]
    pub credential: Option<CredentialRef>,
    /// The Exchange release the manifest expects.
    pub version: Version,
    /// How the cmdlets are reached.
    pub access: Access,
    /// The site, for grouping in plans.
    pub site: Option<String>,
    /// A CA file to trust for HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Where the inventory declares the host.
    #[serde(skip)]
    pub span: Span,
}

/// Everything the manifests want, per host, in host name order.
#[derive(Debug, Default)]
pub struct DesiredState {
    /// The inventory.
    pub hosts: BTreeMap<String, HostSpec>,
    /// Resources by host (upper-case host name).
    pub resources: BTreeMap<String, Vec<Resource>>,
}

const HOST_KEYS: &[&str] = &[
    "endpoint",
    "auth",
    "user",
    "credential",
    "exchange",
    "access",
    "site",
    "ca_file",
];

fn key(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// Reads the documents into the desired state, reporting every problem.
pub fn build(sources: &SourceMap, docs: &[Document], diags: &mut Diagnostics) -> DesiredState {
    let mut state = DesiredState::default();
    // Inventory first: resource documents refer to its hosts.
    for doc in docs {
        if let NodeKind::Map(entries) = &doc.root.kind
            && entries.iter().any(|(k, _)| k.text == "hosts")
        {
            read_inventory(sources, doc, &mut state, diags);
        }
    }
    for doc in docs {
        match &doc.root.kind {
            NodeKind::Map(entries) if entries.iter().any(|(k, _)| k.text == "hosts") => {}
            NodeKind::Map(_) => read_resources(sources, doc, &mut state, diags),
            NodeKind::Null => {}
            _ => diags.push(
                Diagnostic::error(
                    "manifest::document-shape",
                    "a manifest document must be a map with 'hosts' (an inventory) or 'targets' (resources)",
                )
                .with_span(doc.root.span),
            ),
        }
    }
    // Each kind sees every resource of a host (an association checks the throttling
    // policies declared for it). Per host, because two hosts may be two organizations:
    // the same policy declared for both is not a duplicate.
    for resources in state.resources.values() {
        for kind in kinds::ALL {
            kind.cross_check(resources, diags);
        }
    }
    state
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
    let Some(hosts_node) = top.node_of("hosts") else {
        return;
    };
    let base = sources
        .path(doc.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    top.finish_with_known(&["hosts"]);
    let NodeKind::Map(entries) = &hosts_node.kind else {
        diags.push(
            Diagnostic::error(
                "manifest::wrong-type",
                "hosts: expected a map of host name to its settings",
            )
            .with_span(hosts_node.span),
        );
        return;
    };
    for (name, node) in entries {
        let path = format!("hosts.{}", name.text);
        let Some(mut m) = MapReader::new(node, path.clone(), diags) else {
            continue;
        };
        let endpoint = m.required("endpoint").and_then(|v| v.non_empty_string());
        let auth = m
            .one_of("auth", &["ntlm", "basic"])
            .unwrap_or("ntlm")
            .to_string();
        let user = m.required("user").and_then(|v| v.non_empty_string());
        let credential = m.credential("credential");
        let version = m
            .required("exchange")
            .and_then(|v| v.one_of(&Version::NAMES))
            .and_then(Version::parse);
        let access_span = m.node_of("access").map(|n| n.span);
        let access = match m.one_of("access", &["snapin", "remote-session"]) {
            Some("remote-session") => {
                // Refused until the observe and apply scripts open that session: without
                // it every Exchange cmdlet would fail on the server (CommandNotFound).
                let mut d = Diagnostic::error(
                    "manifest::unsupported-access",
                    format!("{path}.access: remote-session is not supported yet"),
                )
                .with_hint("use 'access: snapin' (the default): exctl loads the Exchange snap-in in its own PowerShell process");
                if let Some(span) = access_span {
                    d = d.with_span(span).with_label("not supported yet");
                }
                m.diags().push(d);
                Access::RemoteSession
            }
            _ => Access::Snapin,
        };
        let site = m.string("site");
        let ca_file = m.string("ca_file").map(|f| base.join(f));
        m.finish_with_known(HOST_KEYS);
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
        state.hosts.insert(
            key(&name.text),
            HostSpec {
                name: name.text.clone(),
                endpoint,
                auth,
                user,
                credential,
                version,
                access,
                site,
                ca_file,
                span: name.span,
            },
        );
    }
}

fn read_resources(
    sources: &SourceMap,
    doc: &Document,
    state: &mut DesiredState,
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
    for kind in kinds::ALL {
        let Some(node) = top.node_of(kind.key()) else {
            continue;
        };
        let hosts_for_kind: Vec<&&HostSpec> = match kind.scope() {
            Scope::Server => hosts.iter().collect(),
            Scope::Organization => hosts.iter().take(1).collect(),
        };
        for h in hosts_for_kind {
            let ctx = ParseContext {
                version: h.version,
                hosts: hosts.iter().map(|h| h.name.clone()).collect(),
                path: file.clone(),
            };
            // Server-scoped sections are read once per host; report problems once.
            let mut local = Diagnostics::new();
            for r in kind.parse(node, &ctx, &h.name, &mut local) {
                out.push((key(&h.name), r));
            }
            merge_once(top.diags(), local);
        }
    }
    let known: Vec<&str> = std::iter::once("targets")
        .chain(kinds::ALL.iter().map(|k| k.key()))
        .collect();
    top.finish_with_known(&known);
    for (host, r) in out {
        let list = state.resources.entry(host).or_default();
        if let Some(prev) = list
            .iter()
            .find(|p| p.kind == r.kind && p.id.eq_ignore_ascii_case(&r.id))
        {
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
        list.push(r);
    }
}

/// Adds diagnostics not already reported at the same place with the same message.
fn merge_once(diags: &mut Diagnostics, new: Diagnostics) {
    for d in new.into_vec() {
        let dup = diags
            .iter()
            .any(|e| e.code == d.code && e.message == d.message && e.span == d.span);
        if !dup {
            diags.push(d);
        }
    }
}

/// The kind of a resource.
pub fn kind_of(r: &Resource) -> Option<&'static dyn Kind> {
    kinds::by_key(r.kind)
}
