//! `receive_connectors`: Set-ReceiveConnector on the connectors of each target server.
//!
//! ```yaml
//! receive_connectors:
//!   "Default EX01":                   # a connector of each target server, by name
//!     MaxInboundConnectionPerSource: unlimited
//!   "EX01\\Client EX01":              # SERVER\Name: only when SERVER is the target host
//!     MaxInboundConnectionPercentagePerSource: 100
//!   "*":                              # every connector of each target server
//!     MaxInboundConnectionPercentagePerSource: 100
//! ```
//!
//! Keys are connector names, `SERVER\Name`, `*` or `SERVER\*`. Values are maps of
//! Set-ReceiveConnector parameters of Exchange 2010 (every parameter that describes state;
//! not `-Identity`, `-Name`, `-DomainController`, `-Confirm`, `-WhatIf`, nor the reserved
//! `-LiveCredentialEnabled`), with the types of the 2010 help: `unlimited` where the
//! parameter is an `Unlimited`, byte quantities (`10MB`), time spans (`00:05:00`), lists
//! for the multi-valued ones and for the flag sets (`AuthMechanism: [Tls, BasicAuth]`).
//!
//! Identity. Default connector names repeat on every server (`Default EX01` exists on
//! EX01 only, `Client EX02` on EX02 only), so every resource is `SERVER\Name`: a bare name
//! means that name on each target host, `SERVER\Name` applies on SERVER only, `*` means
//! every connector of the host (the Cisco UCCX checklist: "repeat this for ALL of the
//! connectors"). A named entry overrides `*` for the parameters it names.
//!
//! Observation. One `Get-ReceiveConnector -Server <host> -ErrorAction Stop` per host lists
//! the connectors (a failure is an error of the plan, not an empty server):
//! their identities are reported as `__members` of `receive_connectors:<host>`, then each
//! connector's managed properties under its own identity (as Exchange prints it,
//! `SERVER\Name`). Over remote PowerShell Unlimited values and sizes arrive as strings
//! (`Unlimited`, `10 MB (10,485,760 bytes)`), which the parameter types decode.
//!
//! Changes. One update per connector that differs, identified `SERVER\Name`. exctl
//! neither creates nor removes receive connectors (create them with
//! `New-ReceiveConnector`): a named connector the server lacks is an error at plan time,
//! and `ensure: absent` is refused. Connector changes need no restart (the transport
//! service reads connector settings from Active Directory).
//!
//! Rules checked before any connection (each with its code):
//! - `exchange::connector-identity`: a key that is not `Name`, `SERVER\Name` or `*`;
//! - `exchange::connector-wildcard`: a pattern other than `*`;
//! - `exchange::connector-absent-unsupported`: `ensure: absent`;
//! - `exchange::connector-timeouts`: ConnectionTimeout not greater than
//!   ConnectionInactivityTimeout (both set; when only one is set the plan checks it
//!   against the server's other value);
//! - `exchange::connector-auth-mechanism`: the AuthMechanism combinations the 2010 help
//!   forbids (BasicAuthRequireTLS without BasicAuth and Tls; ExternalAuthoritative with
//!   anything but Tls, or without the ExchangeServers permission group; RequireTLS
//!   without Tls);
//! - `exchange::connector-server-not-targeted` (warning): `SERVER\Name` for a server the
//!   document does not target;
//! - `exchange::connector-name-host-specific` (warning): a bare name that contains one of
//!   several target hosts' names (`Default EX01` on EX02 most likely does not exist);
//! - `exchange::duplicate-resource`: the same connector twice for a host;
//! - plus parameter names, versions and ranges (`read_params`).
//!
//! Releases: BareLinefeedRejectionEnabled and ExtendedProtectionPolicy exist from SP1 on
//! (absent from the "Applies to: Exchange Server 2010" syntax, technet
//! `bb125140(EXCHG.140)`, present in the SP2/SP3 one, E2010-help `eb7f8960…htm`; Extended
//! Protection came with SP1, E2010-help `0d54c0e3…htm`); the others from RTM
//! (AdvertiseClientSettings and MessageRateSource are in the EXCHG.140 syntax,
//! SuppressXAnonymousTls has its RTM-set task page `dd876856(v=exchg.140)`,
//! TlsDomainCapabilities is documented for 2010 with no service pack named). The
//! simulator holds the same table (`tests/it/schema_sim_agreement.rs`).

use std::collections::{BTreeSet, HashMap};

use exctl_manifest::{Diagnostic, Diagnostics, MapReader, Node, Span};
use exctl_pwsh::{Command, quote};

use super::common;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext, Order, ParseContext,
    Payload, Resource, Scope, SettingsCmdlet,
};
use crate::record::{Observations, guarded};
use crate::value::{ParamSpec, ParamType::*, Value, read_params};
use crate::version::Version;

const INT32: std::ops::RangeInclusive<i64> = 1..=2_147_483_647;
const DAY: u64 = 86_400;
/// TimeSpan.MaxValue in whole days, for time spans the help gives no range for.
const MAX_TIMESPAN: u64 = 10_675_199 * DAY;

/// The AuthMechanism flags of Exchange 2010.
pub const AUTH_MECHANISMS: &[&str] = &[
    "None",
    "Tls",
    "Integrated",
    "BasicAuth",
    "BasicAuthRequireTLS",
    "ExchangeServer",
    "ExternalAuthoritative",
];

/// The PermissionGroups flags of Exchange 2010.
pub const PERMISSION_GROUPS: &[&str] = &[
    "None",
    "AnonymousUsers",
    "ExchangeUsers",
    "ExchangeServers",
    "ExchangeLegacyServers",
    "Partners",
    "Custom",
];

/// Set-ReceiveConnector parameters of Exchange 2010 that describe state. Ranges from the
/// 2010 help (ODP-2018 `Set-ReceiveConnector.md`, 2010 text).
pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::all("AdvertiseClientSettings", Bool),
    ParamSpec::all("AuthMechanism", Flags(AUTH_MECHANISMS)),
    ParamSpec::all("Banner", Str),
    // Not in the "Applies to: Exchange Server 2010" syntax (technet bb125140(EXCHG.140));
    // in the SP2/SP3 one (E2010-help `eb7f8960…htm`): SP1 on.
    ParamSpec::since("BareLinefeedRejectionEnabled", Bool, Version::Sp1),
    ParamSpec::all("BinaryMimeEnabled", Bool),
    ParamSpec::all("Bindings", StrList),
    ParamSpec::all("ChunkingEnabled", Bool),
    ParamSpec::all("Comment", Str),
    ParamSpec::all("ConnectionInactivityTimeout", TimeSpan(1..=DAY)),
    ParamSpec::all("ConnectionTimeout", TimeSpan(1..=DAY)),
    ParamSpec::all("DefaultDomain", StrIgnoreCase),
    ParamSpec::all("DeliveryStatusNotificationEnabled", Bool),
    ParamSpec::all("DomainSecureEnabled", Bool),
    ParamSpec::all("EightBitMimeEnabled", Bool),
    ParamSpec::all("EnableAuthGSSAPI", Bool),
    ParamSpec::all("Enabled", Bool),
    ParamSpec::all("EnhancedStatusCodesEnabled", Bool),
    // Likewise absent from the EXCHG.140 syntax; Extended Protection came with SP1 (E2010-help
    // `0d54c0e3…htm`).
    ParamSpec::since(
        "ExtendedProtectionPolicy",
        Enum(&["None", "Allow", "Require"]),
        Version::Sp1,
    ),
    ParamSpec::all("Fqdn", StrIgnoreCase),
    ParamSpec::all("LongAddressesEnabled", Bool),
    ParamSpec::all("MaxAcknowledgementDelay", TimeSpan(0..=MAX_TIMESPAN)),
    ParamSpec::all("MaxHeaderSize", Bytes(1..=2_147_483_647)),
    ParamSpec::all("MaxHopCount", Int(1..=500)),
    ParamSpec::all("MaxInboundConnection", UnlimitedInt(INT32)),
    ParamSpec::all("MaxInboundConnectionPercentagePerSource", Int(1..=100)),
    ParamSpec::all("MaxInboundConnectionPerSource", UnlimitedInt(1..=10_000)),
    ParamSpec::all("MaxLocalHopCount", Int(0..=50)),
    ParamSpec::all("MaxLogonFailures", Int(0..=10)),
    ParamSpec::all("MaxMessageSize", Bytes(65_536..=2_147_483_647)),
    ParamSpec::all("MaxProtocolErrors", UnlimitedInt(0..=2_147_483_647)),
    ParamSpec::all("MaxRecipientsPerMessage", Int(1..=512_000)),
    ParamSpec::all("MessageRateLimit", UnlimitedInt(INT32)),
    ParamSpec::all(
        "MessageRateSource",
        Enum(&["None", "IPAddress", "User", "All"]),
    ),
    ParamSpec::all("OrarEnabled", Bool),
    ParamSpec::all("PermissionGroups", Flags(PERMISSION_GROUPS)),
    ParamSpec::all("PipeliningEnabled", Bool),
    ParamSpec::all("ProtocolLoggingLevel", Enum(&["None", "Verbose"])),
    ParamSpec::all("RemoteIPRanges", StrList),
    ParamSpec::all("RequireEHLODomain", Bool),
    ParamSpec::all("RequireTLS", Bool),
    ParamSpec::all(
        "SizeEnabled",
        Enum(&["Disabled", "Enabled", "EnabledWithoutValue"]),
    ),
    ParamSpec::all("SuppressXAnonymousTls", Bool),
    ParamSpec::all("TarpitInterval", TimeSpan(0..=600)),
    ParamSpec::all("TlsDomainCapabilities", StrList),
];

/// Set-ReceiveConnector parameters of Exchange 2010 that exctl deliberately leaves alone,
/// with the first release that has each, and why.
pub static NOT_MANAGED: &[super::NotManaged] = &[(
    "LiveCredentialEnabled",
    Version::Rtm,
    "reserved for internal Microsoft use (Set-ReceiveConnector help)",
)];

/// The receive connectors of a server.
pub struct ReceiveConnectors;

/// What a key of the section names.
struct Target<'a> {
    /// `Some(server)` for `SERVER\Name`.
    server: Option<&'a str>,
    /// The connector name, or `*`.
    name: &'a str,
}

fn split_key(text: &str) -> Result<Target<'_>, Box<Diagnostic>> {
    let bad = |msg: String| {
        Diagnostic::error("exchange::connector-identity", msg)
            .with_label("not a receive connector identity")
            .with_hint(
                "write the connector's name, SERVER\\Name, or * for every connector of the server",
            )
    };
    let (server, name) = match text.split_once('\\') {
        Some((s, n)) => (Some(s.trim()), n.trim()),
        None => (None, text.trim()),
    };
    if server.is_some_and(str::is_empty) || name.is_empty() || name.contains('\\') {
        return Err(Box::new(bad(format!(
            "'{text}' is not Name, SERVER\\Name or *"
        ))));
    }
    if name.contains('*') && name != "*" {
        return Err(Box::new(
            Diagnostic::error(
                "exchange::connector-wildcard",
                format!(
                    "'{text}': only * (every connector of the server) is supported as a pattern"
                ),
            )
            .with_label("a pattern")
            .with_hint("name the connectors one by one, or use * for all of them"),
        ));
    }
    Ok(Target { server, name })
}

/// Whether `name` contains `host` as a word (`Default EX01` contains EX01).
fn names_host(name: &str, host: &str) -> bool {
    name.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
        .any(|w| w.eq_ignore_ascii_case(host))
}

fn desired<'a>(attrs: &'a [DesiredAttr], name: &str) -> Option<&'a DesiredAttr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Every rule between parameters of one entry.
fn check_entry(attrs: &[DesiredAttr], what: &str, diags: &mut Diagnostics) {
    if let (Some(ct), Some(cit)) = (
        desired(attrs, "ConnectionTimeout"),
        desired(attrs, "ConnectionInactivityTimeout"),
    ) && let (Value::Seconds(a), Value::Seconds(b)) = (&ct.value, &cit.value)
        && a <= b
    {
        diags.push(
            Diagnostic::error(
                "exchange::connector-timeouts",
                format!(
                    "{what}: ConnectionTimeout ({}) must be greater than ConnectionInactivityTimeout ({})",
                    ct.value, cit.value
                ),
            )
            .with_span(ct.span)
            .with_label("not greater than ConnectionInactivityTimeout")
            .with_related(cit.span, "ConnectionInactivityTimeout")
            .with_hint("a connection's total time must exceed its idle time: raise ConnectionTimeout or lower ConnectionInactivityTimeout"),
        );
    }
    let flags = |name: &str| -> Option<(Vec<String>, Span)> {
        desired(attrs, name).and_then(|a| match &a.value {
            Value::List(l) => Some((l.iter().map(|s| s.to_ascii_lowercase()).collect(), a.span)),
            _ => None,
        })
    };
    let auth_error = |msg: String, span: Span| {
        Diagnostic::error(
            "exchange::connector-auth-mechanism",
            format!("{what}: {msg}"),
        )
        .with_span(span)
        .with_label("refused by Set-ReceiveConnector")
    };
    if let Some((auth, span)) = flags("AuthMechanism") {
        let has = |m: &str| auth.iter().any(|a| a == &m.to_ascii_lowercase());
        if has("BasicAuthRequireTLS") && !(has("BasicAuth") && has("Tls")) {
            diags.push(
                auth_error(
                    "AuthMechanism BasicAuthRequireTLS also requires BasicAuth and Tls".into(),
                    span,
                )
                .with_hint("write [BasicAuth, BasicAuthRequireTLS, Tls]"),
            );
        }
        if has("ExternalAuthoritative")
            && auth
                .iter()
                .any(|a| a != "externalauthoritative" && a != "tls")
        {
            diags.push(
                auth_error(
                    "AuthMechanism ExternalAuthoritative can only be combined with Tls".into(),
                    span,
                )
                .with_hint("write [ExternalAuthoritative] or [ExternalAuthoritative, Tls]"),
            );
        }
        if has("ExternalAuthoritative")
            && let Some((groups, gspan)) = flags("PermissionGroups")
            && !groups.iter().any(|g| g == "exchangeservers")
        {
            diags.push(
                auth_error(
                    "AuthMechanism ExternalAuthoritative requires the ExchangeServers permission group".into(),
                    span,
                )
                .with_related(gspan, "PermissionGroups")
                .with_hint("add ExchangeServers to PermissionGroups"),
            );
        }
        if let Some(tls) = desired(attrs, "RequireTLS")
            && tls.value == Value::Bool(true)
            && !has("Tls")
        {
            diags.push(
                auth_error("RequireTLS true requires Tls in AuthMechanism".into(), span)
                    .with_related(tls.span, "RequireTLS")
                    .with_hint("add Tls to AuthMechanism"),
            );
        }
    }
}

/// The parameters of entry `value`, read and checked.
fn read_entry(
    value: &Node,
    what: &str,
    ctx: &ParseContext,
    diags: &mut Diagnostics,
) -> Vec<DesiredAttr> {
    let Some(mut reader) = MapReader::new(value, what.to_string(), diags) else {
        return Vec::new();
    };
    if let Some(node) = reader.node_of("ensure")
        && node
            .scalar_text()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("absent"))
    {
        reader.diags().push(
            Diagnostic::error(
                "exchange::connector-absent-unsupported",
                format!("{what}: exctl does not remove receive connectors"),
            )
            .with_span(node.span)
            .with_label("not supported")
            .with_hint("remove the connector with Remove-ReceiveConnector, and this entry from the manifest"),
        );
    }
    let reader = reader.with_unknown_label("not a Set-ReceiveConnector parameter of Exchange 2010");
    let attrs: Vec<DesiredAttr> = read_params(
        reader,
        PARAMS,
        ctx.version,
        "Set-ReceiveConnector",
        &["ensure"],
    )
    .into_iter()
    .map(|(name, value, node)| DesiredAttr {
        name: name.to_string(),
        value,
        span: node.span,
    })
    .collect();
    check_entry(&attrs, what, diags);
    attrs
}

/// A connector entry as the section writes it, before it is bound to a host.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// `Some(server)` for `SERVER\Name`: that server only.
    server: Option<String>,
    /// The connector name, or `*`.
    name: String,
}

/// A connector of one host.
#[derive(Debug, Clone, PartialEq)]
struct Connector {
    /// The server (the host it was expanded for).
    server: String,
    /// The connector name, or `*`.
    name: String,
}

fn connector(r: &Resource) -> Option<&Connector> {
    r.payload.get::<Connector>()
}

/// The server a resource belongs to.
fn server(r: &Resource) -> &str {
    connector(r).map_or("", |c| c.server.as_str())
}

/// The connector name a resource names (`*` for every connector).
fn name(r: &Resource) -> &str {
    connector(r).map_or("", |c| c.name.as_str())
}

fn is_wildcard(r: &Resource) -> bool {
    name(r) == "*"
}

impl Kind for ReceiveConnectors {
    fn key(&self) -> &'static str {
        "receive_connectors"
    }

    fn title(&self) -> &'static str {
        "Receive connectors"
    }

    fn scope(&self) -> Scope {
        Scope::Server
    }

    fn order(&self) -> Order {
        Order {
            phase: 40,
            reason: "receive connectors follow permissions and throttling and need no restart; they run before the IMAP4 and Information Store restarts so those come last",
        }
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let path = format!("{}.receive_connectors", ctx.path);
        let mut out: Vec<Declared> = Vec::new();
        // The span of each entry accepted, by its lower-case `SERVER\Name` as written
        // (`\Name` without a server): the same spelling twice is a duplicate on every
        // host (looked up, not scanned, for each new entry). `Name` and `SERVER\Name`
        // meet on SERVER only: `expand` reports those.
        let mut seen: HashMap<String, Span> = HashMap::new();
        let Some(reader) = MapReader::new(node, path.clone(), diags) else {
            return out;
        };
        let entries = reader.entries();
        drop(reader);
        for (key, value) in entries {
            let what = format!("{path}.{}", key.text);
            let target = match split_key(&key.text) {
                Ok(t) => t,
                Err(d) => {
                    diags.push((*d).with_span(key.span));
                    continue;
                }
            };
            // A host override's entries apply to its host only.
            let hosts = ctx.hosts_at(key.span);
            if let Some(s) = target.server
                && !hosts.is_empty()
                && !hosts.iter().any(|h| h.eq_ignore_ascii_case(s))
            {
                diags.push(
                    Diagnostic::warning(
                        "exchange::connector-server-not-targeted",
                        format!(
                            "{what} applies to server {s}, which this document does not target ({})",
                            hosts.join(", ")
                        ),
                    )
                    .with_span(key.span)
                    .with_label("never applied")
                    .with_hint("correct the server name, or move the entry to the document of that server"),
                );
            }
            if target.server.is_none()
                && hosts.len() > 1
                && target.name != "*"
                && let Some(named) = hosts.iter().find(|h| names_host(target.name, h))
            {
                let others: Vec<&str> = hosts
                    .iter()
                    .filter(|h| !h.eq_ignore_ascii_case(named))
                    .map(String::as_str)
                    .collect();
                diags.push(
                    Diagnostic::warning(
                        "exchange::connector-name-host-specific",
                        format!(
                            "{what} names host {named} but applies to every target host; on {} a connector of that name most likely does not exist",
                            others.join(", ")
                        ),
                    )
                    .with_span(key.span)
                    .with_label("applies to every target host")
                    .with_hint(format!("write '{named}\\{}' to apply it to {named} only", target.name)),
                );
            }
            let attrs = read_entry(value, &what, ctx, diags);
            if attrs.is_empty() {
                continue;
            }
            let written = format!("{}\\{}", target.server.unwrap_or_default(), target.name)
                .to_ascii_lowercase();
            if let Some(first) = seen.get(&written) {
                // Named as the first host it applies to would name it.
                let server = match target.server {
                    Some(s) => hosts
                        .iter()
                        .find(|h| h.eq_ignore_ascii_case(s))
                        .map_or(s, String::as_str),
                    None => hosts.first().map_or("", String::as_str),
                };
                diags.push(common::duplicate(
                    &format!("receive connector {server}\\{}", target.name),
                    key.span,
                    *first,
                ));
                continue;
            }
            seen.insert(written, key.span);
            out.push(common::declared(Resource {
                kind: self.key(),
                id: key.text.trim().to_string(),
                ensure: Ensure::Present,
                attrs,
                payload: Payload::new(Entry {
                    server: target.server.map(str::to_string),
                    name: target.name.to_string(),
                }),
                restart: None,
                sensitive: Vec::new(),
                span: key.span,
            }));
        }
        out
    }

    /// A bare name means that connector on each host, `SERVER\Name` the connector of
    /// SERVER only; every resource is `HOST\Name`.
    fn expand(&self, declared: &[Declared], host: &str, diags: &mut Diagnostics) -> Vec<Resource> {
        let mut out = Vec::new();
        // Each connector bound, by lower-case identity: its span and whether it was named
        // with its server.
        let mut seen: HashMap<String, (Span, bool)> = HashMap::new();
        for d in declared {
            let Some(entry) = d.resource.payload.get::<Entry>() else {
                continue;
            };
            if entry
                .server
                .as_deref()
                .is_some_and(|s| !s.eq_ignore_ascii_case(host))
            {
                continue;
            }
            let id = format!("{host}\\{}", entry.name);
            let explicit = entry.server.is_some();
            if let Some((first, first_explicit)) = seen.get(&id.to_ascii_lowercase()) {
                // The same spelling twice was reported by `parse`, which kept the first.
                if *first_explicit != explicit {
                    diags.push(common::duplicate(
                        &format!("receive connector {id}"),
                        d.resource.span,
                        *first,
                    ));
                }
                continue;
            }
            seen.insert(id.to_ascii_lowercase(), (d.resource.span, explicit));
            out.push(Resource {
                id,
                payload: Payload::new(Connector {
                    server: host.to_string(),
                    name: entry.name.clone(),
                }),
                ..d.resource.clone()
            });
        }
        out
    }

    fn cross_check(&self, all: &[Resource], diags: &mut Diagnostics) {
        common::report_duplicates(
            all,
            self.key(),
            |r| Some(r.id.to_ascii_lowercase()),
            |r| format!("receive connector {}", r.id),
            diags,
        );
    }

    fn observe(&self, resources: &[&Resource], _ctx: &ObserveContext<'_>) -> String {
        let servers: BTreeSet<String> = resources
            .iter()
            .map(|r| server(r).to_ascii_lowercase())
            .collect();
        let mut s = String::new();
        for lower in servers {
            let group: Vec<&Resource> = resources
                .iter()
                .copied()
                .filter(|r| server(r).eq_ignore_ascii_case(&lower))
                .collect();
            let Some(first) = group.first() else { continue };
            let srv = server(first);
            let mut props = common::specs_of(PARAMS, &group);
            // The timeouts are checked against each other: read both if either is managed.
            if props.iter().any(|p| p.name.starts_with("Connection")) {
                for name in ["ConnectionInactivityTimeout", "ConnectionTimeout"] {
                    if !props.iter().any(|p| p.name == name)
                        && let Some(p) = common::spec(PARAMS, name)
                    {
                        props.push(p);
                    }
                }
            }
            let key = common::obs_key(self.key(), srv);
            let mut body = format!(
                "$all = @(Get-ReceiveConnector -Server {} -ErrorAction Stop)\n$m = @(foreach ($c in $all) {{ $c.Identity }})\n__exctl_emit {} '__members' $m\nforeach ($c in $all) {{\n",
                quote(srv),
                quote(&key)
            );
            for p in &props {
                body.push_str(&format!(
                    "__exctl_emit $c.Identity {} {}\n",
                    quote(p.name),
                    common::prop_expr("c", p)
                ));
            }
            body.push('}');
            s.push_str(&guarded(&key, &body));
        }
        s
    }

    fn diff(
        &self,
        resources: &[&Resource],
        observed: &Observations,
        _ctx: &ObserveContext<'_>,
    ) -> Result<Vec<Change>, DiffError> {
        let kind = self.key();
        let mut out = Vec::new();
        let servers: BTreeSet<String> = resources
            .iter()
            .map(|r| server(r).to_ascii_lowercase())
            .collect();
        for lower in servers {
            let group: Vec<&Resource> = resources
                .iter()
                .copied()
                .filter(|r| server(r).eq_ignore_ascii_case(&lower))
                .collect();
            let Some(first) = group.first() else { continue };
            let srv = server(first);
            let key = common::obs_key(kind, srv);
            let err = |message: String| DiffError {
                kind,
                id: format!("{srv}\\*"),
                message,
            };
            if let Some(e) = observed.error(&key) {
                return Err(err(e.to_string()));
            }
            let members = observed
                .members(&key)
                .ok_or_else(|| common::not_reported(kind, &format!("{srv}\\*")))?;
            let leaf = |m: &str| m.rsplit('\\').next().unwrap_or(m).to_string();
            // Each named connector must exist.
            let mut named: Vec<(&Resource, &str)> = Vec::new();
            for r in group.iter().copied().filter(|r| !is_wildcard(r)) {
                let name = name(r);
                let found = members
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(&r.id))
                    .or_else(|| members.iter().find(|m| leaf(m).eq_ignore_ascii_case(name)));
                match found {
                    Some(m) => named.push((r, m.as_str())),
                    None => {
                        let existing: Vec<String> = members.iter().map(|m| leaf(m)).collect();
                        return Err(DiffError {
                            kind,
                            id: r.id.clone(),
                            message: format!(
                                "receive connector '{name}' does not exist on {srv} (its connectors: {}); exctl changes existing connectors only: create it with New-ReceiveConnector first, or correct the name",
                                if existing.is_empty() {
                                    "none".to_string()
                                } else {
                                    existing.join(", ")
                                }
                            ),
                        });
                    }
                }
            }
            let wildcards: Vec<&Resource> =
                group.iter().copied().filter(|r| is_wildcard(r)).collect();
            for m in members {
                let own = named
                    .iter()
                    .find(|(_, id)| id.eq_ignore_ascii_case(m))
                    .map(|(r, _)| *r);
                if wildcards.is_empty() && own.is_none() {
                    continue;
                }
                // `*` first, then the named entry overrides what it names.
                let mut attrs: Vec<&DesiredAttr> = Vec::new();
                for r in wildcards.iter().copied().chain(own) {
                    for a in &r.attrs {
                        attrs.retain(|x| !x.name.eq_ignore_ascii_case(&a.name));
                        attrs.push(a);
                    }
                }
                let Some(res) = own.or_else(|| wildcards.first().copied()) else {
                    continue;
                };
                check_timeouts(kind, m, &attrs, observed)?;
                let (changes, unchanged) =
                    common::compare(kind, m, m, &attrs, &res.sensitive, PARAMS, observed)?;
                if changes.is_empty() {
                    continue;
                }
                let cmd = common::with_parameters(
                    Command::new("Set-ReceiveConnector").param("Identity", m.as_str()),
                    &changes,
                );
                out.push(common::update(res, m, changes, unchanged, vec![cmd]));
            }
        }
        Ok(out)
    }

    /// One listing of the host's connectors, every parameter of each (under the
    /// connector's identity, as [`Kind::observe`] reports them).
    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        let key = common::obs_key(self.key(), ctx.host);
        let mut body = format!(
            "$all = @(Get-ReceiveConnector -Server {} -ErrorAction Stop)\n$m = @(foreach ($c in $all) {{ $c.Identity }})\n__exctl_emit {} '__members' $m\nforeach ($c in $all) {{\n",
            quote(ctx.host),
            quote(&key)
        );
        for p in PARAMS.iter().filter(|p| p.since <= ctx.version) {
            body.push_str(&format!(
                "__exctl_emit $c.Identity {} {}\n",
                quote(p.name),
                common::prop_expr("c", p)
            ));
        }
        body.push('}');
        guarded(&key, &body)
    }

    /// Every connector of the host by name (a key of the host's own document means that
    /// connector of that host), every parameter, in name order.
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let kind = self.key();
        let key = common::obs_key(kind, ctx.host);
        let err = |message: String| DiffError {
            kind,
            id: format!("{}\\*", ctx.host),
            message,
        };
        if let Some(e) = observed.error(&key) {
            return Err(err(e.to_string()));
        }
        let mut members: Vec<&String> = observed
            .members(&key)
            .ok_or_else(|| err("the server did not list the connectors".into()))?
            .iter()
            .collect();
        members.sort_by_key(|m| m.to_lowercase());
        let mut body = Yaml::map();
        let mut notes = Vec::new();
        for m in members {
            let name = m.rsplit_once('\\').map_or(m.as_str(), |(_, n)| n);
            if split_key(name).is_err() || name == "*" {
                notes.push(format!(
                    "receive connector '{m}': its name cannot be a manifest key (a pattern or a backslash): not exported"
                ));
                continue;
            }
            let mut entry = Yaml::map();
            for spec in PARAMS.iter().filter(|p| p.since <= ctx.version) {
                let v = common::observed_value(kind, m, m, spec, observed)?;
                export::push_param(&mut entry, spec, &v);
            }
            body.push(name, entry);
        }
        if body.is_empty() && notes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Section { body, notes }))
    }

    fn schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "additionalProperties": crate::schema::params_object(PARAMS, &[])
        })
    }

    fn help(&self) -> &'static str {
        "Receive connectors of each target server (Set-ReceiveConnector): keys are a connector name, SERVER\\Name, * or SERVER\\* (every connector of the host); values are maps of its parameters, e.g. MaxInboundConnectionPerSource: unlimited. Existing connectors only; no restart."
    }

    fn cmdlets(&self) -> &'static [&'static str] {
        &["Get-ReceiveConnector", "Set-ReceiveConnector"]
    }

    fn settings_cmdlets(&self) -> Vec<SettingsCmdlet> {
        vec![SettingsCmdlet {
            cmdlet: "Set-ReceiveConnector",
            params: PARAMS,
            skip: &[],
            not_managed: NOT_MANAGED,
        }]
    }
}

/// ConnectionTimeout must stay greater than ConnectionInactivityTimeout once the desired
/// values are set over the observed ones: Set-ReceiveConnector would refuse otherwise.
fn check_timeouts(
    kind: &'static str,
    id: &str,
    attrs: &[&DesiredAttr],
    observed: &Observations,
) -> Result<(), DiffError> {
    let find = |name: &str| {
        attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.clone())
    };
    let (dct, dcit) = (
        find("ConnectionTimeout"),
        find("ConnectionInactivityTimeout"),
    );
    if dct.is_none() && dcit.is_none() {
        return Ok(());
    }
    let value = |desired: Option<Value>, name: &str| -> Result<(Option<Value>, bool), DiffError> {
        match desired {
            Some(v) => Ok((Some(v), true)),
            None => match common::spec(PARAMS, name) {
                Some(spec) if observed.get(id, name).is_some() => Ok((
                    Some(common::observed_value(kind, id, id, spec, observed)?),
                    false,
                )),
                _ => Ok((None, false)),
            },
        }
    };
    let (ct, ct_desired) = value(dct, "ConnectionTimeout")?;
    let (cit, cit_desired) = value(dcit, "ConnectionInactivityTimeout")?;
    if let (Some(Value::Seconds(a)), Some(Value::Seconds(b))) = (&ct, &cit)
        && a <= b
    {
        let src = |d: bool| if d { "desired" } else { "on the server" };
        return Err(DiffError {
            kind,
            id: id.to_string(),
            message: format!(
                "ConnectionTimeout ({}, {}) must be greater than ConnectionInactivityTimeout ({}, {}); Set-ReceiveConnector would refuse it: declare both",
                crate::value::format_timespan(*a),
                src(ct_desired),
                crate::value::format_timespan(*b),
                src(cit_desired)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Action;
    use crate::kind::read_for_host;
    use crate::kinds::common::testutil::{HOSTILE, assert_contained};
    use crate::value::RawValue;
    use crate::version::Version;

    fn parse_all(changes: &[Change]) {
        for c in changes {
            crate::kinds::common::testutil::assert_plain(c);
        }
    }

    fn parse_for(yaml: &str, hosts: &[&str], host: &str) -> (Vec<Resource>, Diagnostics) {
        parse_in(yaml, hosts, host, Version::Sp3)
    }

    fn parse_in(
        yaml: &str,
        hosts: &[&str],
        host: &str,
        version: Version,
    ) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let ctx = ParseContext::new(
            version,
            hosts.iter().map(|h| h.to_string()).collect(),
            "site.yaml",
        );
        let r = read_for_host(&ReceiveConnectors, &docs[0].root, &ctx, host, &mut diags);
        (r, diags)
    }

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_for(yaml, &["EX01"], "EX01")
    }

    /// (code, message, line, column, hint) of every diagnostic.
    fn diags_of(d: &Diagnostics) -> Vec<(&'static str, String, u32, u32, Option<String>)> {
        let mut d = d.clone();
        d.sort();
        d.iter()
            .map(|d| {
                let s = d.span.expect("located");
                (
                    d.code,
                    d.message.clone(),
                    s.start.line,
                    s.start.column,
                    d.hint.clone(),
                )
            })
            .collect()
    }

    fn ctx() -> ObserveContext<'static> {
        ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        }
    }

    fn s(v: &str) -> RawValue {
        RawValue::Str(v.into())
    }

    /// By the 2010 syntaxes (see PARAMS): AdvertiseClientSettings, MessageRateSource,
    /// SuppressXAnonymousTls and TlsDomainCapabilities from RTM; BareLinefeedRejectionEnabled
    /// and ExtendedProtectionPolicy from SP1.
    #[test]
    fn parameters_exist_from_their_documented_release() {
        let rtm = "\"*\":\n  AdvertiseClientSettings: true\n  MessageRateSource: User\n  SuppressXAnonymousTls: true\n  TlsDomainCapabilities: [contoso.com:AcceptOorgProtocol]\n";
        let (r, d) = parse_in(rtm, &["EX01"], "EX01", Version::Rtm);
        assert!(d.is_empty(), "{:?}", diags_of(&d));
        assert_eq!(r[0].attrs.len(), 4);
        for name in [
            "BareLinefeedRejectionEnabled: true",
            "ExtendedProtectionPolicy: Allow",
        ] {
            let yaml = format!("\"*\":\n  {name}\n");
            let (_, d) = parse_in(&yaml, &["EX01"], "EX01", Version::Rtm);
            let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
            assert_eq!(codes, ["exchange::parameter-not-in-version"], "{name}");
            let (_, d) = parse_in(&yaml, &["EX01"], "EX01", Version::Sp1);
            assert!(d.is_empty(), "{name}: {:?}", diags_of(&d));
        }
    }

    #[test]
    fn reads_names_server_names_and_the_wildcard() {
        let (r, d) = parse(
            "\"Default EX01\":\n  MaxInboundConnectionPerSource: unlimited\n\"EX01\\\\Client EX01\":\n  MaxInboundConnection: 6000\n\"EX02\\\\Client EX02\":\n  MaxInboundConnection: 1\n\"*\":\n  MaxInboundConnectionPercentagePerSource: 100\n",
        );
        let ids: Vec<&str> = r.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["EX01\\Default EX01", "EX01\\Client EX01", "EX01\\*"]);
        assert_eq!(r[0].attrs[0].value, Value::Unlimited);
        assert_eq!(r[2].attrs[0].value, Value::Int(100));
        // EX02 is not a target of the document.
        let got = diags_of(&d);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "exchange::connector-server-not-targeted");
        assert_eq!((got[0].2, got[0].3), (5, 1));
        assert!(
            got[0]
                .4
                .as_deref()
                .unwrap()
                .contains("correct the server name")
        );
    }

    #[test]
    fn ranges_and_types_follow_the_2010_help() {
        let (r, d) = parse(
            "x:\n  MaxInboundConnectionPerSource: 10001\n  MaxInboundConnectionPercentagePerSource: unlimited\n  MaxMessageSize: 10MB\n  TarpitInterval: 00:11:00\n  MessageRateSource: ipaddress\n  AuthMechanism: Tls, BasicAuth\n",
        );
        let got = diags_of(&d);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, "manifest::out-of-range");
        assert_eq!((got[0].2, got[0].3), (2, 34));
        assert_eq!(got[1].0, "manifest::wrong-type");
        assert_eq!((got[1].2, got[1].3), (3, 44));
        assert_eq!(got[2].0, "manifest::out-of-range");
        assert_eq!((got[2].2, got[2].3), (5, 19));
        let attrs = &r[0].attrs;
        assert!(attrs.iter().any(|a| a.value == Value::Bytes(10 << 20)));
        assert!(
            attrs
                .iter()
                .any(|a| a.value == Value::Str("IPAddress".into()))
        );
        assert!(
            attrs
                .iter()
                .any(|a| a.value == Value::List(vec!["Tls".into(), "BasicAuth".into()]))
        );
    }

    #[test]
    fn connection_timeout_must_exceed_the_inactivity_timeout() {
        let (_, d) =
            parse("x:\n  ConnectionTimeout: 00:05:00\n  ConnectionInactivityTimeout: 00:05:00\n");
        let got = diags_of(&d);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "exchange::connector-timeouts");
        assert_eq!(
            got[0].1,
            "site.yaml.receive_connectors.x: ConnectionTimeout (00:05:00) must be greater than ConnectionInactivityTimeout (00:05:00)"
        );
        assert_eq!((got[0].2, got[0].3), (2, 22));
        assert!(
            got[0]
                .4
                .as_deref()
                .unwrap()
                .contains("raise ConnectionTimeout")
        );
        assert_eq!(d.as_slice()[0].related[0].0.start.line, 3);
    }

    #[test]
    fn auth_mechanism_combinations_the_help_forbids() {
        let (_, d) = parse(
            "a:\n  AuthMechanism: [BasicAuthRequireTLS]\nb:\n  AuthMechanism: [ExternalAuthoritative, BasicAuth]\n  PermissionGroups: [ExchangeUsers]\nc:\n  RequireTLS: true\n  AuthMechanism: [Integrated]\nd:\n  AuthMechanism: [None, Tls]\n",
        );
        let got = diags_of(&d);
        let codes: Vec<&str> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            codes,
            [
                "exchange::connector-auth-mechanism",
                "exchange::connector-auth-mechanism",
                "exchange::connector-auth-mechanism",
                "exchange::connector-auth-mechanism",
                "exchange::flags-none-combined",
            ]
        );
        assert_eq!((got[0].2, got[0].3), (2, 18));
        assert_eq!(
            got[0].4.as_deref(),
            Some("write [BasicAuth, BasicAuthRequireTLS, Tls]")
        );
        assert!(got[1].1.contains("only be combined with Tls"));
        assert!(got[2].1.contains("ExchangeServers"));
        assert!(got[3].1.contains("RequireTLS true requires Tls"));
        assert_eq!((got[4].2, got[4].3), (10, 18));
    }

    #[test]
    fn bad_identities_patterns_and_absent_are_refused() {
        let (r, d) = parse(
            "\"EX01\\\\\":\n  Enabled: true\n\"Client*\":\n  Enabled: true\ny:\n  ensure: absent\n  Enabled: false\n",
        );
        let got = diags_of(&d);
        let codes: Vec<&str> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            codes,
            [
                "exchange::connector-identity",
                "exchange::connector-wildcard",
                "exchange::connector-absent-unsupported"
            ]
        );
        assert_eq!((got[2].2, got[2].3), (6, 11));
        assert!(
            got[2]
                .4
                .as_deref()
                .unwrap()
                .contains("Remove-ReceiveConnector")
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn unknown_parameters_get_a_did_you_mean() {
        let (_, d) = parse("x:\n  MaxInboundConnectionsPerSource: 5\n");
        let got = diags_of(&d);
        assert_eq!(got[0].0, "manifest::unknown-key");
        assert_eq!(
            got[0].4.as_deref(),
            Some("did you mean 'MaxInboundConnectionPerSource'?")
        );
    }

    #[test]
    fn duplicates_within_a_document_and_across_documents() {
        let (r, d) = parse(
            "\"Default EX01\":\n  Enabled: true\n\"EX01\\\\default ex01\":\n  Enabled: false\n",
        );
        assert_eq!(r.len(), 1);
        let got = diags_of(&d);
        assert_eq!(got[0].0, "exchange::duplicate-resource");
        assert_eq!((got[0].2, got[0].3), (3, 1));
        assert_eq!(d.as_slice()[0].related[0].0.start.line, 1);
        // Across documents.
        let (a, _) = parse("\"Default EX01\":\n  Enabled: true\n");
        let (_, docs, _) =
            exctl_manifest::parse_str("other.yaml", "\n\n\"default ex01\":\n  Enabled: false\n");
        let mut dd = Diagnostics::new();
        let c = ParseContext::new(Version::Sp3, vec!["EX01".into()], "other.yaml");
        let mut b = read_for_host(&ReceiveConnectors, &docs[0].root, &c, "EX01", &mut dd);
        b.extend(a.clone());
        b.extend(a); // the same declaration twice (several hosts) is not a duplicate
        ReceiveConnectors.cross_check(&b, &mut dd);
        assert_eq!(dd.len(), 1, "{dd:?}");
        assert_eq!(dd.as_slice()[0].code, "exchange::duplicate-resource");
    }

    /// Parses once for `hosts`, then expands for each: (the resources of each host, the
    /// diagnostics of the parse, those of each expansion).
    fn parse_once(
        yaml: &str,
        hosts: &[&str],
    ) -> (Vec<Vec<Resource>>, Diagnostics, Vec<Diagnostics>) {
        let (_, docs, mut parsed) = exctl_manifest::parse_str("site.yaml", yaml);
        let ctx = ParseContext::new(
            Version::Sp3,
            hosts.iter().map(|h| h.to_string()).collect(),
            "site.yaml",
        );
        let declared = ReceiveConnectors.parse(&docs[0].root, &ctx, &mut parsed);
        let (mut resources, mut expanded) = (Vec::new(), Vec::new());
        for h in hosts {
            let mut d = Diagnostics::new();
            resources.push(ReceiveConnectors.expand(&declared, h, &mut d));
            expanded.push(d);
        }
        (resources, parsed, expanded)
    }

    #[test]
    fn multi_host_documents_report_once_and_warn_about_host_names() {
        let yaml = "\"Default EX01\":\n  MaxHopCount: 0\n";
        let (r, parsed, expanded) = parse_once(yaml, &["EX01", "EX02"]);
        assert!(r.iter().all(Vec::is_empty));
        let got = diags_of(&parsed);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "exchange::connector-name-host-specific");
        assert_eq!(
            got[0].4.as_deref(),
            Some("write 'EX01\\Default EX01' to apply it to EX01 only")
        );
        assert!(
            expanded.iter().all(Diagnostics::is_empty),
            "expansion reports nothing of the document: {expanded:?}"
        );
    }

    #[test]
    fn one_parse_expands_to_each_hosts_connectors_as_a_parse_per_host_did() {
        let yaml = "\"*\":\n  MaxHopCount: 10\n\"Client\":\n  MaxHopCount: 20\nEX02\\Relay:\n  MaxHopCount: 30\n";
        let hosts = ["EX01", "EX02", "EX03"];
        let (r, parsed, expanded) = parse_once(yaml, &hosts);
        assert!(parsed.is_empty(), "{parsed:?}");
        assert!(expanded.iter().all(Diagnostics::is_empty));
        let ids = |rs: &[Resource]| rs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&r[0]), ["EX01\\*", "EX01\\Client"]);
        assert_eq!(ids(&r[1]), ["EX02\\*", "EX02\\Client", "EX02\\Relay"]);
        assert_eq!(ids(&r[2]), ["EX03\\*", "EX03\\Client"]);
        // The same resources, payload included, as reading the section for one host.
        for (h, mine) in hosts.iter().zip(&r) {
            let (alone, _) = parse_for(yaml, &hosts, h);
            assert_eq!(&alone, mine, "{h}");
            assert!(mine.iter().all(|c| server(c) == *h));
        }
        assert_eq!(name(&r[1][2]), "Relay");
        assert!(is_wildcard(&r[2][0]));
    }

    #[test]
    fn a_name_and_server_name_meet_only_on_that_server() {
        let yaml = "Relay:\n  MaxHopCount: 10\nEX02\\Relay:\n  MaxHopCount: 20\n";
        let (r, parsed, expanded) = parse_once(yaml, &["EX01", "EX02"]);
        assert!(parsed.is_empty(), "{parsed:?}");
        assert!(expanded[0].is_empty());
        assert_eq!(r[0].len(), 1);
        let got = diags_of(&expanded[1]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "exchange::duplicate-resource");
        assert_eq!((got[0].2, got[0].3), (3, 1));
        assert!(
            got[0].1.contains("receive connector EX02\\Relay"),
            "{got:?}"
        );
        // The same spelling twice is a duplicate wherever it applies: reported once, by
        // the parse (a parse per host used to drop it for any host but the first).
        let yaml = "EX02\\Relay:\n  MaxHopCount: 10\nex02\\relay:\n  MaxHopCount: 20\n";
        let (r, parsed, expanded) = parse_once(yaml, &["EX01", "EX02"]);
        let got = diags_of(&parsed);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].1.contains("receive connector EX02\\relay"),
            "{got:?}"
        );
        assert!(expanded.iter().all(Diagnostics::is_empty));
        assert_eq!(r[1].len(), 1);
    }

    #[test]
    fn observe_lists_the_server_once_and_reports_lists_as_lists() {
        let (r, _) = parse(
            "\"*\":\n  Bindings: ['0.0.0.0:25']\n\"Default EX01\":\n  ConnectionTimeout: 00:20:00\n",
        );
        let refs: Vec<&Resource> = r.iter().collect();
        let script = ReceiveConnectors.observe(&refs, &ctx());
        crate::kinds::common::testutil::assert_parses(&script);
        assert_eq!(script.matches("Get-ReceiveConnector").count(), 1);
        assert!(script.contains("$all = @(Get-ReceiveConnector -Server 'EX01' -ErrorAction Stop)"));
        assert!(script.contains("__exctl_emit 'receive_connectors:EX01' '__members' $m"));
        assert!(script.contains("__exctl_emit $c.Identity 'Bindings' @($c.Bindings)"));
        assert!(script.contains(
            "__exctl_emit $c.Identity 'ConnectionInactivityTimeout' $c.ConnectionInactivityTimeout"
        ));
        assert!(script.contains("catch { __exctl_emit 'receive_connectors:EX01' '__error'"));
        for bad in ["ConvertTo-Json", " -in ", "[ordered]", ".ForEach("] {
            assert!(!script.contains(bad));
        }
    }

    fn members(o: &mut Observations, ids: &[&str]) {
        o.insert(
            "receive_connectors:EX01",
            "__members",
            RawValue::List(ids.iter().map(|s| s.to_string()).collect()),
        );
    }

    #[test]
    fn wildcard_expands_to_one_change_per_member_that_differs() {
        let (r, _) = parse(
            "\"*\":\n  MaxInboundConnectionPercentagePerSource: 100\n  MaxInboundConnectionPerSource: unlimited\n\"Client EX01\":\n  MaxInboundConnectionPerSource: 50\n",
        );
        let mut o = Observations::default();
        members(
            &mut o,
            &["EX01\\Default EX01", "EX01\\Client EX01", "EX01\\Relay"],
        );
        for (m, pct, per) in [
            ("EX01\\Default EX01", "2", "20"),
            ("EX01\\Client EX01", "100", "50"),
            ("EX01\\Relay", "100", "Unlimited"),
        ] {
            o.insert(m, "MaxInboundConnectionPercentagePerSource", s(pct));
            o.insert(m, "MaxInboundConnectionPerSource", s(per));
        }
        let refs: Vec<&Resource> = r.iter().collect();
        let changes = ReceiveConnectors.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&changes);
        // Client EX01's named 50 overrides '*' and already holds; Relay already holds.
        assert_eq!(changes.len(), 1, "{changes:?}");
        let c = &changes[0];
        assert_eq!(c.id, "EX01\\Default EX01");
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.attrs.len(), 2);
        assert_eq!(c.attrs[1].before, Some(Value::Int(20)));
        assert_eq!(c.attrs[1].after, Some(Value::Unlimited));
        assert_eq!(
            c.script(),
            "Set-ReceiveConnector -Identity 'EX01\\Default EX01' -MaxInboundConnectionPercentagePerSource 100 -MaxInboundConnectionPerSource 'Unlimited'"
        );
        assert_eq!(c.restart, None);
    }

    #[test]
    fn unlimited_in_any_spelling_and_sizes_as_printed_compare_equal() {
        let (r, _) = parse(
            "\"EX01\\\\default ex01\":\n  MaxInboundConnection: unlimited\n  MaxMessageSize: 10MB\n  Banner: ''\n  Bindings: ['0.0.0.0:25', '[::]:25']\n  AuthMechanism: [tls, integrated]\n",
        );
        let mut o = Observations::default();
        members(&mut o, &["EX01\\Default EX01"]);
        let m = "EX01\\Default EX01";
        o.insert(m, "MaxInboundConnection", s("unlimited"));
        o.insert(m, "MaxMessageSize", s("10 MB (10,485,760 bytes)"));
        o.insert(m, "Banner", RawValue::Null);
        o.insert(
            m,
            "Bindings",
            RawValue::List(vec!["[::]:25".into(), "0.0.0.0:25".into()]),
        );
        o.insert(m, "AuthMechanism", s("Tls, Integrated"));
        let refs: Vec<&Resource> = r.iter().collect();
        assert_eq!(ReceiveConnectors.diff(&refs, &o, &ctx()).unwrap(), vec![]);
    }

    #[test]
    fn a_named_connector_that_does_not_exist_is_an_error() {
        let (r, _) = parse("\"Client EX1\":\n  Enabled: true\n");
        let mut o = Observations::default();
        members(&mut o, &["EX01\\Default EX01", "EX01\\Client EX01"]);
        let refs: Vec<&Resource> = r.iter().collect();
        let e = ReceiveConnectors.diff(&refs, &o, &ctx()).unwrap_err();
        assert_eq!(e.id, "EX01\\Client EX1");
        assert!(e.message.contains("does not exist on EX01"), "{e}");
        assert!(e.message.contains("Default EX01, Client EX01"));
        assert!(e.message.contains("New-ReceiveConnector"));
    }

    #[test]
    fn timeouts_are_checked_against_the_server_values() {
        let (r, _) = parse("\"*\":\n  ConnectionInactivityTimeout: 00:20:00\n");
        let mut o = Observations::default();
        members(&mut o, &["EX01\\Default EX01"]);
        o.insert("EX01\\Default EX01", "ConnectionTimeout", s("00:10:00"));
        o.insert(
            "EX01\\Default EX01",
            "ConnectionInactivityTimeout",
            s("00:05:00"),
        );
        let refs: Vec<&Resource> = r.iter().collect();
        let e = ReceiveConnectors.diff(&refs, &o, &ctx()).unwrap_err();
        assert!(
            e.message
                .contains("ConnectionTimeout (00:10:00, on the server)"),
            "{e}"
        );
    }

    #[test]
    fn errors_of_the_listing_are_diff_errors() {
        let (r, _) = parse("\"*\":\n  Enabled: true\n");
        let mut o = Observations::default();
        o.insert("receive_connectors:EX01", "__error", s("Access is denied."));
        let refs: Vec<&Resource> = r.iter().collect();
        let e = ReceiveConnectors.diff(&refs, &o, &ctx()).unwrap_err();
        assert_eq!(
            (e.id.as_str(), e.message.as_str()),
            ("EX01\\*", "Access is denied.")
        );
        let e = ReceiveConnectors
            .diff(&refs, &Observations::default(), &ctx())
            .unwrap_err();
        assert!(e.message.contains("did not report"));
    }

    #[test]
    fn hostile_names_and_banners_stay_inside_literals() {
        let build = |v: &str| {
            let name = v.replace('\\', "/").replace('*', "+");
            let r = Resource {
                kind: "receive_connectors",
                id: format!("EX01\\{name}"),
                ensure: Ensure::Present,
                attrs: vec![DesiredAttr {
                    name: "Banner".into(),
                    value: Value::Str(v.into()),
                    span: Span::point(exctl_manifest::FileId(0), Default::default()),
                }],
                payload: Payload::new(Connector {
                    server: "EX01".into(),
                    name: name.clone(),
                }),
                restart: None,
                sensitive: vec![],
                span: Span::point(exctl_manifest::FileId(0), Default::default()),
            };
            let refs = vec![&r];
            let observe = ReceiveConnectors.observe(&refs, &ctx());
            let mut o = Observations::default();
            members(&mut o, &[&format!("EX01\\{name}")]);
            o.insert(&format!("EX01\\{name}"), "Banner", s("220 hello"));
            let changes = ReceiveConnectors.diff(&refs, &o, &ctx()).unwrap();
            parse_all(&changes);
            (observe, changes[0].script())
        };
        let (ob, ab) = build("benign");
        let (oh, ah) = build(HOSTILE);
        assert_contained(&ah, &ab, HOSTILE);
        let (skel_o, _) = crate::kinds::common::testutil::split_literals(&oh);
        let (skel_ob, _) = crate::kinds::common::testutil::split_literals(&ob);
        assert_eq!(skel_o, skel_ob);
    }
}
