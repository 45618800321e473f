//! Capacity: the IMAP demand a shared account puts on every limit on its path, and the
//! effective value of each of those limits, declared (manifests) or observed (a server).
//!
//! A contact centre's agent desktops (Cisco UCCX/CAD) all log in to IMAP with one shared
//! account, so a single account carries hundreds of connections. Five limits stand in
//! the way, and each refuses with the same `NO AUTHENTICATE failed.`:
//!
//! | limit | where | counts | Exchange 2010 default |
//! |---|---|---|---|
//! | `MaxConnectionsPerUser` | Set-ImapSettings | one account's connections to a server | 16 |
//! | `MaxConnectionFromSingleIP` | Set-ImapSettings | connections from one address | 2000 |
//! | `MaxConnections` | Set-ImapSettings | all connections to a server | 2147483647 |
//! | `IMAPMaxConcurrency` | the account's throttling policy | one account's IMAP connections | blank (no limit) |
//! | Maximum Allowed Service Sessions Per User | registry, MSExchangeIS | one account's store sessions (IMAP, POP, OWA, EAS, EWS) | 16, event 9646 |
//!
//! The demand is declared in a manifest's `capacity:` section ([`Demand`]); the value each
//! limit needs is ([`Limit::required`]):
//!
//! - `total = desktops × connections_per_desktop + server_connections` (the contact
//!   centre server's own connections, e.g. the UCCX Agent Email service);
//! - MaxConnectionsPerUser, MaxConnections, IMAPMaxConcurrency and the store's service
//!   sessions per user each need at least `total`: every connection is the same account,
//!   on one server (after a failover the surviving server carries them all), and each
//!   IMAP session holds one store service session;
//! - MaxConnectionFromSingleIP needs `desktops_per_address × connections_per_desktop`
//!   (the desktops behind one NAT address; default 1), or `server_connections` if that is
//!   more (the server connects from its own address).
//!
//! [`check_declared`] compares the manifests' values with the demand (for `validate`
//! and `plan`); [`observe_script`] and [`Effective::from_observations`] read a server's
//! values, including the throttling policy the account really gets (its own policy, a
//! value it leaves blank inherited from the default policy, `$null` meaning no limit)
//! and the store limit (16 when the registry value is absent), with the restarts still
//! owed before a changed value takes effect (see [`crate::restart`]).

use std::collections::BTreeSet;
use std::fmt;

use exctl_exchange::RawValue;
use exctl_exchange::kind::{Ensure, Resource, Service};
use exctl_exchange::kinds::registry_values::{self, STORE_KEY};
use exctl_exchange::kinds::throttling_associations;
use exctl_exchange::record::{self, Observations};
use exctl_exchange::value::Value;
use exctl_manifest::{Diagnostic, Diagnostics, MapReader, Node, Span, yaml};
use exctl_pwsh::quote;

use crate::restart;

/// The store's registry value that limits one account's service sessions.
pub const SERVICE_SESSIONS_VALUE: &str = "Maximum Allowed Service Sessions Per User";

/// IMAP connections each agent desktop opens when nothing else is declared: Cisco's
/// checklist says "every client login requires two IMAP connections to be open".
pub const DEFAULT_PER_DESKTOP: u64 = 2;

/// The record resource the capacity fragment reports under.
pub const RECORD: &str = "__capacity";

/// The keys of a `capacity:` section.
pub const KEYS: &[&str] = &[
    "account",
    "desktops",
    "connections_per_desktop",
    "server_connections",
    "desktops_per_address",
];

/// The IMAP demand on one shared account, from a manifest's `capacity:` section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Demand {
    /// The shared account (`uccx-agent`, `CONTOSO\uccx-agent` or `uccx-agent@contoso.com`).
    pub account: String,
    /// Agent desktops logged in at the same time (at peak).
    pub desktops: u64,
    /// IMAP connections each desktop holds (2 for UCCX/CAD).
    pub connections_per_desktop: u64,
    /// Connections the contact-centre server itself holds with the account.
    pub server_connections: u64,
    /// Desktops that reach the server from one address (behind one NAT).
    pub desktops_per_address: u64,
    /// Where the section is.
    #[serde(skip)]
    pub span: Span,
}

impl Demand {
    /// Every connection of the account.
    pub fn total(&self) -> u64 {
        self.desktops
            .saturating_mul(self.connections_per_desktop)
            .saturating_add(self.server_connections)
    }

    /// The most connections that arrive from one address.
    pub fn from_one_address(&self) -> u64 {
        self.desktops_per_address
            .min(self.desktops)
            .saturating_mul(self.connections_per_desktop)
            .max(self.server_connections)
    }

    /// The account without its domain (`uccx-agent`), as Exchange's alias usually is.
    pub fn alias(&self) -> &str {
        alias(&self.account)
    }

    /// Reads a `capacity:` section; `None` (with diagnostics) when it is unusable.
    pub fn parse(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Demand> {
        let mut m = MapReader::new(node, path.to_string(), diags)?;
        let account = m.required("account").and_then(|v| v.non_empty_string());
        let desktops = m
            .required("desktops")
            .and_then(|v| v.int_in_range(0..=1_000_000));
        let per = m
            .value("connections_per_desktop")
            .map(|v| v.int_in_range(1..=100));
        let server = m
            .value("server_connections")
            .map(|v| v.int_in_range(0..=1_000_000));
        let per_address = m
            .value("desktops_per_address")
            .map(|v| v.int_in_range(1..=1_000_000));
        m.finish_with_known(KEYS);
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Some(Demand {
            account: account?,
            desktops: u(desktops?),
            connections_per_desktop: match per {
                Some(v) => u(v?),
                None => DEFAULT_PER_DESKTOP,
            },
            server_connections: match server {
                Some(v) => u(v?),
                None => 0,
            },
            desktops_per_address: match per_address {
                Some(v) => u(v?),
                None => 1,
            },
            span: node.span,
        })
    }
}

/// `CONTOSO\uccx-agent` and `uccx-agent@contoso.com` are `uccx-agent`.
pub fn alias(account: &str) -> &str {
    let a = account.trim();
    let a = a.rsplit_once('\\').map_or(a, |(_, n)| n);
    a.split_once('@').map_or(a, |(n, _)| n)
}

/// Whether two spellings name the same account.
pub fn same_account(a: &str, b: &str) -> bool {
    alias(a).eq_ignore_ascii_case(alias(b))
}

/// A limit on the path of the account's IMAP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Limit {
    /// Set-ImapSettings -MaxConnectionsPerUser.
    MaxConnectionsPerUser,
    /// Set-ImapSettings -MaxConnectionFromSingleIP.
    MaxConnectionFromSingleIP,
    /// Set-ImapSettings -MaxConnections.
    MaxConnections,
    /// IMAPMaxConcurrency of the account's throttling policy.
    #[serde(rename = "IMAPMaxConcurrency")]
    ImapMaxConcurrency,
    /// The store's Maximum Allowed Service Sessions Per User.
    #[serde(rename = "MaximumAllowedServiceSessionsPerUser")]
    StoreServiceSessions,
}

/// A limit's value: a number, or no limit (a throttling `$null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum LimitValue {
    /// At most this many.
    Number(u64),
    /// No limit.
    #[serde(serialize_with = "ser_unlimited")]
    Unlimited,
}

fn ser_unlimited<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("unlimited")
}

impl LimitValue {
    /// Whether it allows `n`.
    pub fn allows(self, n: u64) -> bool {
        match self {
            LimitValue::Number(v) => v >= n,
            LimitValue::Unlimited => true,
        }
    }

    fn from_value(v: &Value) -> Option<LimitValue> {
        match v {
            Value::Int(n) => u64::try_from(*n).ok().map(LimitValue::Number),
            Value::Unlimited | Value::Null => Some(LimitValue::Unlimited),
            _ => None,
        }
    }

    fn from_raw(v: &RawValue) -> Option<LimitValue> {
        match v {
            RawValue::Null => Some(LimitValue::Unlimited),
            RawValue::Str(s) if s.trim().is_empty() => Some(LimitValue::Unlimited),
            RawValue::Str(s) if s.trim().eq_ignore_ascii_case("unlimited") => {
                Some(LimitValue::Unlimited)
            }
            RawValue::Str(s) => s.trim().parse().ok().map(LimitValue::Number),
            RawValue::List(_) => None,
        }
    }
}

impl fmt::Display for LimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitValue::Number(n) => write!(f, "{n}"),
            LimitValue::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Limit {
    /// Every limit, in the order a login meets them.
    pub const ALL: [Limit; 5] = [
        Limit::MaxConnections,
        Limit::MaxConnectionFromSingleIP,
        Limit::MaxConnectionsPerUser,
        Limit::ImapMaxConcurrency,
        Limit::StoreServiceSessions,
    ];

    /// Exchange's name of it.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxConnectionsPerUser => "MaxConnectionsPerUser",
            Limit::MaxConnectionFromSingleIP => "MaxConnectionFromSingleIP",
            Limit::MaxConnections => "MaxConnections",
            Limit::ImapMaxConcurrency => "IMAPMaxConcurrency",
            Limit::StoreServiceSessions => SERVICE_SESSIONS_VALUE,
        }
    }

    /// Exchange 2010's value when nobody set it.
    pub fn exchange_default(self) -> LimitValue {
        match self {
            Limit::MaxConnectionsPerUser | Limit::StoreServiceSessions => LimitValue::Number(16),
            Limit::MaxConnectionFromSingleIP => LimitValue::Number(2000),
            Limit::MaxConnections => LimitValue::Number(2_147_483_647),
            Limit::ImapMaxConcurrency => LimitValue::Unlimited,
        }
    }

    /// The service that must restart before a new value counts. IMAPMaxConcurrency is
    /// cached by the IMAP4 service (up to 15 minutes, or until it restarts; inferred for
    /// IMAP from the documented budget cache).
    pub fn service(self) -> Service {
        match self {
            Limit::StoreServiceSessions => Service::InformationStore,
            _ => Service::Imap4,
        }
    }

    /// The value the demand needs.
    pub fn required(self, d: &Demand) -> u64 {
        match self {
            Limit::MaxConnectionFromSingleIP => d.from_one_address(),
            _ => d.total(),
        }
    }

    /// How [`Limit::required`] got its number, for messages.
    pub fn arithmetic(self, d: &Demand) -> String {
        let server = if d.server_connections > 0 {
            format!(" + {} held by the server", d.server_connections)
        } else {
            String::new()
        };
        match self {
            Limit::MaxConnectionFromSingleIP => {
                let behind = d.desktops_per_address.min(d.desktops);
                let desktops = behind.saturating_mul(d.connections_per_desktop);
                if d.server_connections > desktops {
                    format!(
                        "the server's own {} connections from its address",
                        d.server_connections
                    )
                } else {
                    format!(
                        "{behind} desktop{} behind one address × {} connections",
                        if behind == 1 { "" } else { "s" },
                        d.connections_per_desktop
                    )
                }
            }
            _ => format!(
                "{} desktops × {} connections{server}",
                d.desktops, d.connections_per_desktop
            ),
        }
    }

    /// A one-line form of [`Limit::manifest_lines`], for diagnostics' hints.
    pub fn hint(self, need: u64) -> String {
        match self {
            Limit::StoreServiceSessions => format!(
                "a registry_values entry with path '{STORE_KEY}', name '{SERVICE_SESSIONS_VALUE}', type dword, value {need}"
            ),
            Limit::ImapMaxConcurrency => {
                format!("IMAPMaxConcurrency: {need} in the account's throttling policy")
            }
            _ => format!("imap_settings: {{ {}: {need} }}", self.name()),
        }
    }

    /// The manifest lines that set the limit to `need` (`policy`: the throttling policy
    /// the account is associated with, if it is not the default policy).
    pub fn manifest_lines(self, need: u64, account: &str, policy: Option<&str>) -> String {
        match self {
            Limit::MaxConnectionsPerUser
            | Limit::MaxConnectionFromSingleIP
            | Limit::MaxConnections => {
                format!("imap_settings:\n  {}: {need}\n", self.name())
            }
            Limit::ImapMaxConcurrency => match policy {
                Some(p) => format!(
                    "throttling_policies:\n  {}:\n    IMAPMaxConcurrency: {need}\n",
                    yaml::key(p)
                ),
                None => {
                    let p = format!("{}-imap", alias(account));
                    format!(
                        "throttling_policies:\n  {}:\n    IMAPMaxConcurrency: {need}\nthrottling_associations:\n  - identity: {}\n    policy: {}\n",
                        yaml::key(&p),
                        yaml::scalar(alias(account)),
                        yaml::scalar(&p)
                    )
                }
            },
            Limit::StoreServiceSessions => format!(
                "registry_values:\n  - path: '{STORE_KEY}'\n    name: {SERVICE_SESSIONS_VALUE}\n    type: dword\n    value: {need}\n"
            ),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A limit's value as the manifests declare it.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The value.
    pub value: LimitValue,
    /// Where.
    pub span: Span,
}

/// What the manifests say about each limit for one host. `resources` are the host's own
/// resources and `org` the organization-wide ones of its site (throttling policies and
/// associations are declared once per site).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeclaredLimits {
    /// Declared values, by limit.
    pub values: Vec<(Limit, Declared)>,
    /// The policy the manifests associate the account with (`None`: not declared;
    /// `Some("default")`: the default policy).
    pub policy: Option<(String, Span)>,
}

impl DeclaredLimits {
    /// The declared value of a limit.
    pub fn get(&self, limit: Limit) -> Option<&Declared> {
        self.values
            .iter()
            .find(|(l, _)| *l == limit)
            .map(|(_, d)| d)
    }

    /// Reads the declared limits.
    pub fn read(account: &str, resources: &[Resource], org: &[Resource]) -> DeclaredLimits {
        let mut out = DeclaredLimits::default();
        let present = |r: &&Resource| r.ensure == Ensure::Present;
        for r in resources
            .iter()
            .filter(present)
            .filter(|r| r.kind == "imap_settings")
        {
            for l in [
                Limit::MaxConnectionsPerUser,
                Limit::MaxConnectionFromSingleIP,
                Limit::MaxConnections,
            ] {
                if let Some(a) = r
                    .attrs
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(l.name()))
                    && let Some(v) = LimitValue::from_value(&a.value)
                {
                    out.values.push((
                        l,
                        Declared {
                            value: v,
                            span: a.span,
                        },
                    ));
                }
            }
        }
        for r in resources
            .iter()
            .filter(present)
            .filter(|r| r.kind == "registry_values")
        {
            let store = registry_values::target(r).is_some_and(|(p, n)| {
                p.eq_ignore_ascii_case(STORE_KEY) && n.eq_ignore_ascii_case(SERVICE_SESSIONS_VALUE)
            });
            if let (true, Some(a)) = (
                store,
                r.attrs
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case("Value")),
            ) && let Some(v) = LimitValue::from_value(&a.value)
            {
                out.values.push((
                    Limit::StoreServiceSessions,
                    Declared {
                        value: v,
                        span: a.span,
                    },
                ));
            }
        }
        let association = org
            .iter()
            .filter(|r| r.kind == "throttling_associations")
            .find(|r| same_account(&r.id, account));
        if let Some(a) = association
            && let Some(p) = throttling_associations::policy_of(a)
        {
            out.policy = Some((p.to_string(), a.span));
            if !p.eq_ignore_ascii_case("default")
                && let Some(policy) = org
                    .iter()
                    .filter(present)
                    .find(|r| r.kind == "throttling_policies" && r.id.eq_ignore_ascii_case(p))
                && let Some(v) = policy
                    .attrs
                    .iter()
                    .find(|x| x.name.eq_ignore_ascii_case("IMAPMaxConcurrency"))
                && let Some(value) = LimitValue::from_value(&v.value)
            {
                out.values.push((
                    Limit::ImapMaxConcurrency,
                    Declared {
                        value,
                        span: v.span,
                    },
                ));
            }
        }
        out
    }

    /// The account's policy when it is a named (not the default) one.
    pub fn named_policy(&self) -> Option<&str> {
        self.policy
            .as_ref()
            .map(|(p, _)| p.as_str())
            .filter(|p| !p.eq_ignore_ascii_case("default"))
    }
}

/// A limit below what the demand needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Shortfall {
    /// Which limit.
    pub limit: Limit,
    /// Its value (declared, observed or Exchange's default).
    pub value: LimitValue,
    /// Where the value comes from, in words (`declared`, `Exchange's default`, `on the
    /// server`).
    pub source: String,
    /// The value it needs.
    pub needed: u64,
    /// How the need was computed.
    pub arithmetic: String,
    /// The manifest lines that fix it.
    pub manifest_lines: String,
}

impl Shortfall {
    fn new(
        limit: Limit,
        value: LimitValue,
        source: &str,
        d: &Demand,
        policy: Option<&str>,
    ) -> Shortfall {
        let needed = limit.required(d);
        Shortfall {
            limit,
            value,
            source: source.to_string(),
            needed,
            arithmetic: limit.arithmetic(d),
            manifest_lines: limit.manifest_lines(needed, &d.account, policy),
        }
    }

    /// One sentence.
    pub fn message(&self, account: &str) -> String {
        format!(
            "{} is {} ({}), below the {} connections of {account} it must allow ({})",
            self.limit, self.value, self.source, self.needed, self.arithmetic
        )
    }
}

/// Checks the declared limits of one host against the demand: warnings
/// `capacity::limit-too-low` at each declared value that is too low, and
/// `capacity::default-too-low` at the capacity section for an undeclared limit whose
/// Exchange 2010 default is too low. An undeclared IMAPMaxConcurrency is left to `plan`,
/// which reads the policy the account really has.
pub fn check_declared(d: &Demand, declared: &DeclaredLimits, diags: &mut Diagnostics) {
    for limit in Limit::ALL {
        let need = limit.required(d);
        match declared.get(limit) {
            Some(v) if !v.value.allows(need) => diags.push(
                Diagnostic::warning(
                    "capacity::limit-too-low",
                    format!(
                        "{limit} is {} but {} needs {need} for {} ({})",
                        v.value,
                        alias(&d.account),
                        connections_word(limit),
                        limit.arithmetic(d)
                    ),
                )
                .with_span(v.span)
                .with_label(format!("needs at least {need}"))
                .with_related(d.span, "the demand is declared here")
                .with_hint(format!("raise it to at least {need}")),
            ),
            Some(_) => {}
            None if limit == Limit::ImapMaxConcurrency => {}
            None => {
                let def = limit.exchange_default();
                if !def.allows(need) {
                    diags.push(
                        Diagnostic::warning(
                            "capacity::default-too-low",
                            format!(
                                "{limit} is not declared, and Exchange 2010's default {def} is below the {need} that {} needs ({})",
                                alias(&d.account),
                                limit.arithmetic(d)
                            ),
                        )
                        .with_span(d.span)
                        .with_label(format!("{limit} must be at least {need}"))
                        .with_hint(format!(
                            "declare it ({}); plan also reads the server's value",
                            limit.hint(need)
                        )),
                    );
                }
            }
        }
    }
}

fn connections_word(limit: Limit) -> &'static str {
    match limit {
        Limit::MaxConnectionFromSingleIP => "the connections from one address",
        Limit::StoreServiceSessions => "its store sessions",
        _ => "its IMAP connections",
    }
}

/// The PowerShell that reports the limits of `account` on `host` under [`RECORD`] (and
/// the restart facts of both services, see [`restart::observe_facts`]).
pub fn observe_script(host: &str, account: &str) -> String {
    let r = quote(RECORD);
    let h = quote(host);
    let a = quote(alias(account));
    let mut s = String::new();
    s.push_str(&record::guarded(
        &format!("{RECORD}:imap"),
        &format!(
            "$__s = Get-ImapSettings -Server {h}\n\
             __exctl_emit {r} 'MaxConnectionsPerUser' ([string]$__s.MaxConnectionsPerUser)\n\
             __exctl_emit {r} 'MaxConnectionFromSingleIP' ([string]$__s.MaxConnectionFromSingleIP)\n\
             __exctl_emit {r} 'MaxConnections' ([string]$__s.MaxConnections)\n\
             __exctl_emit {r} 'UnencryptedOrTLSBindings' @($__s.UnencryptedOrTLSBindings | ForEach-Object {{ [string]$_ }})\n\
             __exctl_emit {r} 'SSLBindings' @($__s.SSLBindings | ForEach-Object {{ [string]$_ }})"
        ),
    ));
    s.push_str(&record::guarded(
        &format!("{RECORD}:throttling"),
        &format!(
            "$__a = Get-ThrottlingPolicyAssociation -Identity {a} -ErrorAction Stop\n\
             $__pid = [string]$__a.ThrottlingPolicyId\n\
             __exctl_emit {r} 'PolicyId' $__pid\n\
             foreach ($__p in @(Get-ThrottlingPolicy)) {{\n\
             if ($__p.IsDefault -eq $true) {{\n\
             __exctl_emit {r} 'DefaultPolicy' ([string]$__p.Name)\n\
             __exctl_emit {r} 'DefaultIMAPMaxConcurrency' ([string]$__p.IMAPMaxConcurrency)\n\
             }}\n\
             }}\n\
             if ($__pid -ne '') {{\n\
             $__own = Get-ThrottlingPolicy -Identity $__pid -ErrorAction Stop\n\
             __exctl_emit {r} 'PolicyName' ([string]$__own.Name)\n\
             __exctl_emit {r} 'PolicyIsDefault' ([string]$__own.IsDefault)\n\
             __exctl_emit {r} 'PolicyIMAPMaxConcurrency' ([string]$__own.IMAPMaxConcurrency)\n\
             }}"
        ),
    ));
    let k = quote(STORE_KEY);
    let n = quote(SERVICE_SESSIONS_VALUE);
    s.push_str(&record::guarded(
        &format!("{RECORD}:store"),
        &format!(
            "if (Test-Path -Path {k}) {{\n\
             $__v = Get-ItemProperty -Path {k} -Name {n} -ErrorAction SilentlyContinue\n\
             if ($__v -ne $null) {{ __exctl_emit {r} 'StoreServiceSessions' ([string]$__v.{n}) }}\n\
             }}"
        ),
    ));
    let both: BTreeSet<Service> = [Service::Imap4, Service::InformationStore]
        .into_iter()
        .collect();
    s.push_str(&restart::observe_facts(host, &both));
    s
}

/// One limit as a server has it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Observed {
    /// Which limit.
    pub limit: Limit,
    /// The value in force once pending restarts are done; `None` when it could not be
    /// read.
    pub value: Option<LimitValue>,
    /// Where the value comes from (`Get-ImapSettings`, `policy UCCX`, `inherited from
    /// the default policy`, `registry`, `absent: store default`).
    pub source: String,
    /// Why the value does not count yet (a restart owed), if it does not.
    pub pending: Option<String>,
}

/// The limits a server applies to the account.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Effective {
    /// Each limit.
    pub limits: Vec<Observed>,
    /// The account's throttling policy (`None`: the default policy).
    pub policy: Option<String>,
    /// The default policy's name.
    pub default_policy: Option<String>,
    /// Ports of the server's IMAP bindings, plain or STARTTLS (UnencryptedOrTLSBindings).
    pub plain_ports: Vec<u16>,
    /// Ports of its SSL bindings.
    pub ssl_ports: Vec<u16>,
    /// What could not be read.
    pub errors: Vec<String>,
}

fn text(o: &Observations, attr: &str) -> Option<String> {
    match o.get(RECORD, attr) {
        Some(RawValue::Str(s)) => Some(s.trim().to_string()),
        _ => None,
    }
}

fn ports(o: &Observations, attr: &str) -> Vec<u16> {
    let mut out: Vec<u16> = match o.get(RECORD, attr) {
        Some(RawValue::List(l)) => l
            .iter()
            .filter_map(|b| b.rsplit_once(':').and_then(|(_, p)| p.trim().parse().ok()))
            .collect(),
        Some(RawValue::Str(b)) => b
            .rsplit_once(':')
            .and_then(|(_, p)| p.trim().parse().ok())
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

impl Effective {
    /// Reads what [`observe_script`] reported.
    pub fn from_observations(host: &str, o: &Observations) -> Effective {
        let mut e = Effective::default();
        for part in ["imap", "throttling", "store"] {
            if let Some(err) = o.error(&format!("{RECORD}:{part}")) {
                e.errors.push(format!("{part}: {err}"));
            }
        }
        let both: BTreeSet<Service> = [Service::Imap4, Service::InformationStore]
            .into_iter()
            .collect();
        let (ctx, notes) = restart::context(host, o, &both);
        e.errors.extend(notes);
        let pending = |svc: Service| {
            ctx.pending
                .iter()
                .find(|(s, _)| *s == svc)
                .map(|(s, why)| format!("{s} must restart: {why}"))
        };
        let imap_ok = o.error(&format!("{RECORD}:imap")).is_none();
        for l in [
            Limit::MaxConnections,
            Limit::MaxConnectionFromSingleIP,
            Limit::MaxConnectionsPerUser,
        ] {
            e.limits.push(Observed {
                limit: l,
                value: o
                    .get(RECORD, l.name())
                    .filter(|_| imap_ok)
                    .and_then(LimitValue::from_raw),
                source: "Get-ImapSettings".into(),
                pending: pending(l.service()),
            });
        }
        e.plain_ports = ports(o, "UnencryptedOrTLSBindings");
        e.ssl_ports = ports(o, "SSLBindings");
        // The throttling policy: its own value, or (blank) the default policy's. Get-
        // shows blank both for "not set" (inherits) and for $null (no limit); inheriting
        // is the reading that can be too low, so that is the one checked.
        let throttling_ok = o.error(&format!("{RECORD}:throttling")).is_none();
        e.default_policy = text(o, "DefaultPolicy").filter(|s| !s.is_empty());
        let own_is_default =
            text(o, "PolicyIsDefault").is_some_and(|s| s.eq_ignore_ascii_case("true"));
        e.policy = text(o, "PolicyName").filter(|s| !s.is_empty() && !own_is_default);
        let default_value = text(o, "DefaultIMAPMaxConcurrency");
        let own_value = text(o, "PolicyIMAPMaxConcurrency");
        let (value, source) = match (&e.policy, own_value.as_deref(), default_value.as_deref()) {
            (Some(p), Some(v), _) if !v.is_empty() => (
                LimitValue::from_raw(&RawValue::Str(v.into())),
                format!("policy {p}"),
            ),
            (Some(p), _, d) => (
                d.and_then(|d| LimitValue::from_raw(&RawValue::Str(d.into()))),
                format!("policy {p}: blank, so the default policy's value (or unlimited)"),
            ),
            (None, _, d) => (
                d.and_then(|d| LimitValue::from_raw(&RawValue::Str(d.into()))),
                "the default policy".to_string(),
            ),
        };
        e.limits.push(Observed {
            limit: Limit::ImapMaxConcurrency,
            value: value.filter(|_| throttling_ok),
            source,
            pending: pending(Service::Imap4),
        });
        let store_ok = o.error(&format!("{RECORD}:store")).is_none();
        let (value, source) = match text(o, "StoreServiceSessions") {
            Some(v) => (
                LimitValue::from_raw(&RawValue::Str(v)),
                "registry".to_string(),
            ),
            None => (
                Some(Limit::StoreServiceSessions.exchange_default()),
                "registry value absent: the store's default".to_string(),
            ),
        };
        e.limits.push(Observed {
            limit: Limit::StoreServiceSessions,
            value: value.filter(|_| store_ok),
            source,
            pending: pending(Service::InformationStore),
        });
        e
    }

    /// A limit's observation.
    pub fn get(&self, limit: Limit) -> Option<&Observed> {
        self.limits.iter().find(|l| l.limit == limit)
    }

    /// The limits that are too low for the demand (a pending value counts as not in
    /// force: see [`Observed::pending`] for those whose new value is high enough but
    /// owes a restart).
    pub fn shortfalls(&self, d: &Demand) -> Vec<Shortfall> {
        let mut out = Vec::new();
        for o in &self.limits {
            let Some(v) = o.value else { continue };
            if !v.allows(o.limit.required(d)) {
                out.push(Shortfall::new(
                    o.limit,
                    v,
                    &o.source,
                    d,
                    self.policy.as_deref(),
                ));
            }
        }
        out
    }
}

/// Plan's check: the limits the manifests leave undeclared are read from the server;
/// returns a warning for each that is too low (declared ones are checked by
/// [`check_declared`] before anything connects).
pub fn check_observed(
    host: &str,
    d: &Demand,
    declared: &DeclaredLimits,
    observed: &Observations,
) -> Vec<String> {
    let eff = Effective::from_observations(host, observed);
    let mut out = Vec::new();
    for s in eff.shortfalls(d) {
        if declared.get(s.limit).is_some() {
            continue;
        }
        // The manifests change the account's policy: its observed value is not the one
        // that will hold.
        if s.limit == Limit::ImapMaxConcurrency && declared.policy.is_some() {
            continue;
        }
        let policy = declared
            .named_policy()
            .map(str::to_string)
            .or_else(|| eff.policy.clone());
        out.push(format!(
            "capacity warning: {} on {host}; the manifests do not set it. Add:\n{}",
            s.message(alias(&d.account)),
            indent(
                &s.limit
                    .manifest_lines(s.needed, &d.account, policy.as_deref()),
                "    "
            )
        ));
    }
    out
}

fn indent(s: &str, by: &str) -> String {
    s.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use exctl_exchange::record::encode;

    fn demand(desktops: u64, server: u64, behind: u64) -> Demand {
        Demand {
            account: "CONTOSO\\uccx-agent".into(),
            desktops,
            connections_per_desktop: 2,
            server_connections: server,
            desktops_per_address: behind,
            span: Span::point(exctl_manifest::FileId(0), Default::default()),
        }
    }

    #[test]
    fn the_arithmetic_of_each_limit() {
        let d = demand(400, 50, 100);
        assert_eq!(d.total(), 850);
        assert_eq!(Limit::MaxConnectionsPerUser.required(&d), 850);
        assert_eq!(Limit::MaxConnections.required(&d), 850);
        assert_eq!(Limit::ImapMaxConcurrency.required(&d), 850);
        assert_eq!(Limit::StoreServiceSessions.required(&d), 850);
        assert_eq!(Limit::MaxConnectionFromSingleIP.required(&d), 200);
        assert_eq!(
            Limit::MaxConnectionsPerUser.arithmetic(&d),
            "400 desktops × 2 connections + 50 held by the server"
        );
        // The server's own connections from its address may be the most.
        let d = demand(10, 30, 1);
        assert_eq!(Limit::MaxConnectionFromSingleIP.required(&d), 30);
        assert!(
            Limit::MaxConnectionFromSingleIP
                .arithmetic(&d)
                .contains("server's own 30")
        );
        // More desktops behind an address than there are desktops count as all of them.
        let d = demand(5, 0, 100);
        assert_eq!(Limit::MaxConnectionFromSingleIP.required(&d), 10);
    }

    #[test]
    fn accounts_compare_by_alias() {
        assert!(same_account("CONTOSO\\uccx-agent", "uccx-agent"));
        assert!(same_account("UCCX-Agent@contoso.com", "uccx-agent"));
        assert!(!same_account("uccx-agent2", "uccx-agent"));
    }

    #[test]
    fn manifest_lines_are_the_documented_schema() {
        assert_eq!(
            Limit::MaxConnectionsPerUser.manifest_lines(42, "uccx-agent", None),
            "imap_settings:\n  MaxConnectionsPerUser: 42\n"
        );
        assert_eq!(
            Limit::ImapMaxConcurrency.manifest_lines(42, "CONTOSO\\uccx-agent", Some("UCCX")),
            "throttling_policies:\n  UCCX:\n    IMAPMaxConcurrency: 42\n"
        );
        let new = Limit::ImapMaxConcurrency.manifest_lines(42, "CONTOSO\\uccx-agent", None);
        assert!(
            new.contains(
                "throttling_associations:\n  - identity: uccx-agent\n    policy: uccx-agent-imap\n"
            ),
            "{new}"
        );
        let store = Limit::StoreServiceSessions.manifest_lines(42, "x", None);
        assert!(store.contains(
            "name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: 42\n"
        ));
        // Names YAML would read as something else are quoted.
        let lines = Limit::ImapMaxConcurrency.manifest_lines(40, "yes", Some("0755"));
        assert!(lines.contains("\n  '0755':\n"), "{lines}");
    }

    fn obs(records: &[(&str, RawValue)]) -> Observations {
        let text: Vec<String> = records.iter().map(|(a, v)| encode(RECORD, a, v)).collect();
        Observations::parse(&text.join("\n")).unwrap()
    }

    fn s(v: &str) -> RawValue {
        RawValue::Str(v.into())
    }

    #[test]
    fn effective_limits_of_a_server_at_its_defaults() {
        let o = obs(&[
            ("MaxConnectionsPerUser", s("16")),
            ("MaxConnectionFromSingleIP", s("2000")),
            ("MaxConnections", s("2147483647")),
            ("PolicyId", s("")),
            ("DefaultPolicy", s("DefaultThrottlingPolicy_1")),
            ("DefaultIMAPMaxConcurrency", s("")),
            (
                "UnencryptedOrTLSBindings",
                RawValue::List(vec!["0.0.0.0:143".into()]),
            ),
            (
                "SSLBindings",
                RawValue::List(vec!["0.0.0.0:993".into(), "[::]:993".into()]),
            ),
        ]);
        let e = Effective::from_observations("EX01", &o);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.policy, None);
        assert_eq!(
            (e.plain_ports.clone(), e.ssl_ports.clone()),
            (vec![143], vec![993])
        );
        let d = demand(20, 2, 1);
        let short: Vec<(Limit, u64)> = e
            .shortfalls(&d)
            .iter()
            .map(|s| (s.limit, s.needed))
            .collect();
        assert_eq!(
            short,
            vec![
                (Limit::MaxConnectionsPerUser, 42),
                (Limit::StoreServiceSessions, 42)
            ]
        );
        assert_eq!(
            e.get(Limit::StoreServiceSessions)
                .map(|o| o.source.as_str()),
            Some("registry value absent: the store's default")
        );
    }

    #[test]
    fn a_policy_blank_inherits_the_default_and_own_values_win() {
        let base = [
            ("PolicyName", s("UCCX")),
            ("PolicyIsDefault", s("False")),
            ("DefaultIMAPMaxConcurrency", s("20")),
        ];
        let mut r: Vec<(&str, RawValue)> = base.to_vec();
        r.push(("PolicyIMAPMaxConcurrency", s("")));
        let e = Effective::from_observations("EX01", &obs(&r));
        let o = e.get(Limit::ImapMaxConcurrency).unwrap();
        assert_eq!(o.value, Some(LimitValue::Number(20)));
        assert!(o.source.contains("blank"));
        let mut r: Vec<(&str, RawValue)> = base.to_vec();
        r.push(("PolicyIMAPMaxConcurrency", s("500")));
        let e = Effective::from_observations("EX01", &obs(&r));
        assert_eq!(
            e.get(Limit::ImapMaxConcurrency).unwrap().value,
            Some(LimitValue::Number(500))
        );
        assert_eq!(e.policy.as_deref(), Some("UCCX"));
    }

    #[test]
    fn unreadable_parts_are_errors_not_values() {
        let o =
            Observations::parse(&encode(&format!("{RECORD}:imap"), "__error", &s("boom"))).unwrap();
        let e = Effective::from_observations("EX01", &o);
        assert!(e.errors.iter().any(|x| x.contains("boom")));
        assert_eq!(e.get(Limit::MaxConnectionsPerUser).unwrap().value, None);
    }

    #[test]
    fn the_observe_script_parses() {
        let s = observe_script("EX01", "CONTOSO\\uccx-agent");
        let full = format!("{}{s}", record::PRELUDE);
        if let Err(e) = exctl_pwsh_interp::parse(&full) {
            panic!("{e:?}\n{full}");
        }
        assert!(s.contains("Get-ThrottlingPolicyAssociation -Identity 'uccx-agent'"));
    }
}
