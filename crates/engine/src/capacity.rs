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
//!
//! The reading goes through the kinds that own each limit, with no PowerShell or decoder
//! of capacity's own: the host's IMAP4 settings ([`IMAP4`]: `reading`, `observe`,
//! `current`), the account's throttling association and the policies' listing
//! ([`throttling_associations::current`], [`throttling_policies::listed`]), and the
//! store's registry value ([`registry_values::current`]). Their records are the kinds'
//! own, so a plan that also declares those resources reads the same records once more
//! under the same keys, with the same values.

use std::collections::BTreeSet;
use std::fmt;

use exctl_exchange::Version;
use exctl_exchange::kind::{Ensure, Kind, ObserveContext, Resource, Service};
use exctl_exchange::kinds::registry_values::{self, RegistryValues, STORE_KEY};
use exctl_exchange::kinds::throttling_associations::{self, ThrottlingAssociations};
use exctl_exchange::kinds::{IMAP4, ThrottlingPolicies, imap, throttling_policies};
use exctl_exchange::record::Observations;
use exctl_exchange::services::INFORMATION_STORE;
use exctl_exchange::value::{ParamSpec, Value};
use exctl_manifest::{Diagnostic, Diagnostics, MapReader, Node, Span, yaml};

use crate::restart;

/// The store's registry value that limits one account's service sessions.
pub const SERVICE_SESSIONS_VALUE: &str = "Maximum Allowed Service Sessions Per User";

/// IMAP connections each agent desktop opens when nothing else is declared: Cisco's
/// checklist says "every client login requires two IMAP connections to be open".
pub const DEFAULT_PER_DESKTOP: u64 = 2;

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
            Limit::StoreServiceSessions => INFORMATION_STORE,
            _ => imap::SERVICE,
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
            .filter(|r| r.kind == IMAP4.key())
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
            .filter(|r| r.kind == RegistryValues.key())
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
            .filter(|r| r.kind == ThrottlingAssociations.key())
            .find(|r| same_account(&r.id, account));
        if let Some(a) = association
            && let Some(p) = throttling_associations::policy_of(a)
        {
            out.policy = Some((p.to_string(), a.span));
            if !p.eq_ignore_ascii_case("default")
                && let Some(policy) = org
                    .iter()
                    .filter(present)
                    .find(|r| r.kind == ThrottlingPolicies.key() && r.id.eq_ignore_ascii_case(p))
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

/// The IMAP4 settings capacity reads: the three limits, and the bindings doctor probes.
const IMAP_READ: [&str; 5] = [
    "MaxConnectionsPerUser",
    "MaxConnectionFromSingleIP",
    "MaxConnections",
    "UnencryptedOrTLSBindings",
    "SSLBindings",
];

/// The throttling policy parameter capacity reads of the account's and the default policy.
const POLICY_READ: [&str; 1] = ["IMAPMaxConcurrency"];

/// The resources whose observation capacity reads, observed and decoded by their kinds:
/// the host's IMAP4 settings (the limits and the bindings), the account's throttling
/// association, and the store's registry value. The policies come from the throttling
/// policies' listing ([`throttling_policies::listing`]): which policy the account has is
/// known only once the server answers.
struct Readings {
    imap: Resource,
    association: Resource,
    store: Resource,
}

impl Readings {
    fn new(host: &str, account: &str) -> Readings {
        Readings {
            imap: IMAP4.reading(host, &IMAP_READ),
            association: throttling_associations::reading(alias(account)),
            store: registry_values::reading(STORE_KEY, SERVICE_SESSIONS_VALUE),
        }
    }
}

/// The PowerShell that reports the limits of `account` on `host` (the caller adds the
/// restart facts of [`FACTS_SERVICES`]): the observe fragments of the kinds
/// that own each limit (`Readings`), read back by [`Effective::from_observations`].
pub fn observe_script(host: &str, version: Version, account: &str) -> String {
    let r = Readings::new(host, account);
    let ctx = ObserveContext { host, version };
    let mut s = String::new();
    s.push_str(&IMAP4.observe(&[&r.imap], &ctx));
    s.push_str(&ThrottlingAssociations.observe(&[&r.association], &ctx));
    let policy: Vec<&ParamSpec> = throttling_policies::PARAMS
        .iter()
        .filter(|p| POLICY_READ.contains(&p.name))
        .collect();
    s.push_str(&throttling_policies::listing(&policy));
    s.push_str(&RegistryValues.observe(&[&r.store], &ctx));
    s
}

/// The services whose restart facts the limits depend on (a value changed and not yet in
/// force): the script that observes the limits also reports these services' facts
/// ([`restart::observe_facts`]), once, with those of the rest of its resources.
pub const FACTS_SERVICES: [Service; 2] = [imap::SERVICE, INFORMATION_STORE];

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

/// The ports of bindings (`0.0.0.0:143`, `[::]:993`), each once, in order.
fn ports(bindings: Option<&Value>) -> Vec<u16> {
    let port = |b: &String| b.rsplit_once(':').and_then(|(_, p)| p.trim().parse().ok());
    let mut out: Vec<u16> = match bindings {
        Some(Value::List(l)) => l.iter().filter_map(port).collect(),
        _ => Vec::new(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// A decoded value by parameter name.
fn value_of<'a>(values: &'a [(&'static str, Value)], name: &str) -> Option<&'a Value> {
    values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

impl Effective {
    /// Reads what [`observe_script`] reported for `account` on `host`, through the
    /// decoding of the kinds that observed it.
    pub fn from_observations(host: &str, account: &str, o: &Observations) -> Effective {
        let r = Readings::new(host, account);
        let mut e = Effective::default();
        let both: BTreeSet<Service> = FACTS_SERVICES.into_iter().collect();
        let (ctx, notes) = restart::context(host, o, &both);
        let pending = |svc: Service| {
            ctx.pending
                .iter()
                .find(|(s, _)| *s == svc)
                .map(|(s, why)| format!("{s} must restart: {why}"))
        };
        let imap = IMAP4
            .current(host, o, &IMAP_READ)
            .map_err(|x| format!("imap: {}", x.message));
        let imap_values = imap.as_deref().unwrap_or_default();
        for l in [
            Limit::MaxConnections,
            Limit::MaxConnectionFromSingleIP,
            Limit::MaxConnectionsPerUser,
        ] {
            e.limits.push(Observed {
                limit: l,
                value: value_of(imap_values, l.name()).and_then(LimitValue::from_value),
                source: "Get-ImapSettings".into(),
                pending: pending(l.service()),
            });
        }
        e.plain_ports = ports(value_of(imap_values, "UnencryptedOrTLSBindings"));
        e.ssl_ports = ports(value_of(imap_values, "SSLBindings"));
        // The throttling policy: its own value, or (blank) the default policy's. Get-
        // shows blank both for "not set" (inherits) and for $null (no limit); inheriting
        // is the reading that can be too low, so that is the one checked.
        let association = throttling_associations::current(&r.association.id, o)
            .map_err(|x| format!("throttling: {}", x.message));
        let policies = throttling_policies::listed(o, &POLICY_READ)
            .map_err(|x| format!("throttling: {}", x.message));
        let throttling_ok = association.is_ok() && policies.is_ok();
        let listed = policies.as_deref().unwrap_or_default();
        let default = listed.iter().find(|p| p.is_default);
        e.default_policy = default.map(|p| p.name.clone());
        let own_name = association.as_ref().ok().cloned().flatten();
        let own = own_name
            .as_deref()
            .and_then(|n| listed.iter().find(|p| p.name.eq_ignore_ascii_case(n)));
        e.policy = own_name.filter(|_| !own.is_some_and(|p| p.is_default));
        let imap_max =
            |p: &throttling_policies::Listed| value_of(&p.values, "IMAPMaxConcurrency").cloned();
        let default_value = default.and_then(imap_max);
        let (value, source) = match (&e.policy, own.and_then(imap_max)) {
            (Some(p), Some(v)) if v != Value::Null => {
                (LimitValue::from_value(&v), format!("policy {p}"))
            }
            (Some(p), _) => (
                default_value.as_ref().and_then(LimitValue::from_value),
                format!("policy {p}: blank, so the default policy's value (or unlimited)"),
            ),
            (None, _) => (
                default_value.as_ref().and_then(LimitValue::from_value),
                "the default policy".to_string(),
            ),
        };
        e.limits.push(Observed {
            limit: Limit::ImapMaxConcurrency,
            value: value.filter(|_| throttling_ok),
            source,
            pending: pending(imap::SERVICE),
        });
        let (value, source) = match registry_values::current(o, &r.store) {
            Ok(Some(v)) => (LimitValue::from_value(&v), "registry".to_string()),
            Ok(None) => (
                Some(Limit::StoreServiceSessions.exchange_default()),
                "registry value absent: the store's default".to_string(),
            ),
            Err(x) => {
                e.errors.push(format!("store: {}", x.message));
                (None, "registry".to_string())
            }
        };
        e.limits.push(Observed {
            limit: Limit::StoreServiceSessions,
            value,
            source,
            pending: pending(INFORMATION_STORE),
        });
        // In the order of the fragments, as the errors were reported before.
        let mut errors: Vec<String> = [imap.err(), association.err(), policies.err()]
            .into_iter()
            .flatten()
            .collect();
        errors.append(&mut e.errors);
        errors.extend(notes);
        e.errors = errors;
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
    let eff = Effective::from_observations(host, &d.account, observed);
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
    use exctl_exchange::RawValue;
    use exctl_exchange::record;

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

    fn s(v: &str) -> RawValue {
        RawValue::Str(v.into())
    }

    const ACCOUNT: &str = "CONTOSO\\uccx-agent";

    #[test]
    fn effective_limits_of_a_server_at_its_defaults() {
        let mut o = Observations::default();
        fixture::insert(
            &mut o,
            "EX01",
            ACCOUNT,
            &fixture::Server {
                imap: vec![
                    (
                        "UnencryptedOrTLSBindings",
                        RawValue::List(vec!["0.0.0.0:143".into()]),
                    ),
                    (
                        "SSLBindings",
                        RawValue::List(vec!["0.0.0.0:993".into(), "[::]:993".into()]),
                    ),
                ],
                ..fixture::Server::default()
            },
        );
        let e = Effective::from_observations("EX01", ACCOUNT, &o);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        assert_eq!(e.policy, None);
        assert_eq!(
            e.default_policy.as_deref(),
            Some("DefaultThrottlingPolicy_1")
        );
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
        let server = |own: &str| fixture::Server {
            policy_id: s("CN=UCCX,CN=Global Settings,CN=Contoso"),
            policies: vec![
                ("DefaultThrottlingPolicy_1", true, s("20")),
                ("UCCX", false, s(own)),
            ],
            ..fixture::Server::default()
        };
        let mut o = Observations::default();
        fixture::insert(&mut o, "EX01", ACCOUNT, &server(""));
        let e = Effective::from_observations("EX01", ACCOUNT, &o);
        let l = e.get(Limit::ImapMaxConcurrency).unwrap();
        assert_eq!(l.value, Some(LimitValue::Number(20)));
        assert!(l.source.contains("blank"));
        let mut o = Observations::default();
        fixture::insert(&mut o, "EX01", ACCOUNT, &server("500"));
        let e = Effective::from_observations("EX01", ACCOUNT, &o);
        let l = e.get(Limit::ImapMaxConcurrency).unwrap();
        assert_eq!(l.value, Some(LimitValue::Number(500)));
        assert_eq!(l.source, "policy UCCX");
        assert_eq!(e.policy.as_deref(), Some("UCCX"));
        // The store's value, as the registry kind decodes a DWORD.
        let mut o = Observations::default();
        fixture::insert(
            &mut o,
            "EX01",
            ACCOUNT,
            &fixture::Server {
                store: Some(s("250")),
                ..fixture::Server::default()
            },
        );
        let e = Effective::from_observations("EX01", ACCOUNT, &o);
        let l = e.get(Limit::StoreServiceSessions).unwrap();
        assert_eq!(
            (l.value, l.source.as_str()),
            (Some(LimitValue::Number(250)), "registry")
        );
    }

    #[test]
    fn unreadable_parts_are_errors_not_values() {
        let mut o = Observations::default();
        fixture::insert(&mut o, "EX01", ACCOUNT, &fixture::Server::default());
        o.insert("EX01", "__error", s("boom"));
        o.insert("uccx-agent", "ThrottlingPolicyIdError", s("no such user"));
        let e = Effective::from_observations("EX01", ACCOUNT, &o);
        assert_eq!(
            e.errors,
            ["imap: boom", "throttling: no such user"],
            "{:?}",
            e.errors
        );
        assert_eq!(e.get(Limit::MaxConnectionsPerUser).unwrap().value, None);
        assert_eq!(e.get(Limit::ImapMaxConcurrency).unwrap().value, None);
        // A server without the Client Access role has no IMAP4 settings: said, not read
        // as values.
        let mut o = Observations::default();
        fixture::insert(&mut o, "EX01", ACCOUNT, &fixture::Server::default());
        o.insert("EX01", "__exists", s("False"));
        let e = Effective::from_observations("EX01", ACCOUNT, &o);
        assert!(
            e.errors
                .iter()
                .any(|x| x.contains("Get-ImapSettings returned nothing")),
            "{:?}",
            e.errors
        );
    }

    #[test]
    fn the_observe_script_parses_and_is_the_kinds_fragments() {
        let s = observe_script("EX01", Version::Sp3, ACCOUNT);
        let full = format!("{}{s}", record::PRELUDE);
        if let Err(e) = exctl_pwsh_interp::parse(&full) {
            panic!("{e:?}\n{full}");
        }
        assert!(s.contains("Get-ImapSettings -Server 'EX01'"), "{s}");
        assert!(s.contains("'uccx-agent'\n)) {"), "{s}");
        assert!(
            s.contains("Get-ThrottlingPolicyAssociation -Identity $i"),
            "{s}"
        );
        assert!(s.contains("Get-ThrottlingPolicy -ErrorAction Stop"), "{s}");
        assert!(
            s.contains("'Maximum Allowed Service Sessions Per User'"),
            "{s}"
        );
        // Only what capacity reads.
        assert!(
            !s.contains("Banner") && !s.contains("EWSMaxConcurrency"),
            "{s}"
        );
    }
}

/// Observations as the kinds report a server's limits, for the tests of capacity and
/// doctor.
#[cfg(test)]
pub(crate) mod fixture {
    use exctl_exchange::RawValue;
    use exctl_exchange::kind::Resource;
    use exctl_exchange::kinds::{IMAP4, registry_values};
    use exctl_exchange::record::Observations;

    use super::{SERVICE_SESSIONS_VALUE, STORE_KEY, alias};

    /// What a server holds; [`Default`] is Exchange 2010 Setup's.
    pub struct Server {
        /// IMAP4 settings that differ from Setup's.
        pub imap: Vec<(&'static str, RawValue)>,
        /// The account's ThrottlingPolicyId (blank: the default policy).
        pub policy_id: RawValue,
        /// Every policy: name, whether it is the default, IMAPMaxConcurrency.
        pub policies: Vec<(&'static str, bool, RawValue)>,
        /// The store's service sessions value (`None`: absent).
        pub store: Option<RawValue>,
    }

    impl Default for Server {
        fn default() -> Server {
            Server {
                imap: Vec::new(),
                policy_id: RawValue::Str(String::new()),
                policies: vec![(
                    "DefaultThrottlingPolicy_1",
                    true,
                    RawValue::Str(String::new()),
                )],
                store: None,
            }
        }
    }

    /// Records `server` as `host`'s observation for `account`.
    pub fn insert(o: &mut Observations, host: &str, account: &str, server: &Server) {
        let key = IMAP4.observation_key(host);
        o.insert(&key, "__exists", RawValue::Str("True".into()));
        let s = |v: &str| RawValue::Str(v.into());
        for (name, v) in [
            ("MaxConnectionsPerUser", s("16")),
            ("MaxConnectionFromSingleIP", s("2000")),
            ("MaxConnections", s("2147483647")),
            (
                "UnencryptedOrTLSBindings",
                RawValue::List(vec!["0.0.0.0:143".into()]),
            ),
            ("SSLBindings", RawValue::List(vec!["0.0.0.0:993".into()])),
        ] {
            o.insert(&key, name, v);
        }
        for (name, v) in &server.imap {
            o.insert(&key, name, v.clone());
        }
        o.insert(
            alias(account),
            "ThrottlingPolicyId",
            server.policy_id.clone(),
        );
        let names = server
            .policies
            .iter()
            .map(|(n, ..)| n.to_string())
            .collect();
        o.insert("throttling_policies:*", "__members", RawValue::List(names));
        for (name, default, imap) in &server.policies {
            let key = format!("throttling_policies:{name}");
            o.insert(
                &key,
                "IsDefault",
                s(if *default { "True" } else { "False" }),
            );
            o.insert(&key, "IMAPMaxConcurrency", imap.clone());
        }
        let store: Resource = registry_values::reading(STORE_KEY, SERVICE_SESSIONS_VALUE);
        let key = format!("registry_values:{}", store.id);
        match &server.store {
            Some(v) => {
                o.insert(&key, "KeyExists", s("True"));
                o.insert(&key, "__exists", s("True"));
                o.insert(&key, "Type", s("DWord"));
                o.insert(&key, "Value", v.clone());
            }
            None => o.insert(&key, "__exists", s("False")),
        }
    }
}
