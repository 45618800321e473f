//! `exctl doctor`: what is wrong on a host when agents cannot get their mail, and the
//! manifest lines that fix it.
//!
//! Per host, from where exctl runs: the WinRM port (a TCP connect), then one read-only
//! script ([`script`]) whose success shows the credential is accepted, reporting the
//! Exchange version and roles, the MSExchangeIMAP4 service, the effective limits of the
//! shared account ([`crate::capacity`]), the restarts still owed, and the Application
//! log's recent events that match the known symptoms: 9646 from MSExchangeIS ("exceeded
//! the maximum of N objects of type session") and the IMAP4 service's own errors and
//! warnings. Then the IMAP ports (the server's bindings, or `--imap-port`): a TCP connect
//! and the greeting, as `telnet HOST 143` shows it; with a login account, a real
//! `AUTHENTICATE PLAIN`, whose `NO AUTHENTICATE failed.` is explained (the protocol is
//! [`crate::imap_probe`], apart from its socket).
//!
//! [`analyse`] turns those facts into [`Check`]s (one line each in the table) and
//! [`Finding`]s (what is wrong, what it most likely means, and the manifest lines to
//! add). Events older than the last start of their service are counted but are no
//! finding: the restart that applied a fix ends the symptom.

use std::time::Duration;

use exctl_exchange::RawValue;
use exctl_exchange::host as exhost;
use exctl_exchange::kind::Service;
use exctl_exchange::kinds::imap;
use exctl_exchange::record::Observations;
use exctl_exchange::services::INFORMATION_STORE;
use exctl_secret::Secret;

use crate::capacity::{self, Demand, Effective, Limit, LimitValue};
use crate::desired::HostSpec;
use crate::imap_probe;
pub use crate::imap_probe::LoginOutcome;
use crate::observe::Runner;
use crate::restart;
use crate::script::ScriptBuilder;

/// The record resource the doctor script reports under.
pub const RECORD: &str = "__doctor";

/// The JSON document's version.
pub const FORMAT_VERSION: u32 = 1;

/// What to check beyond the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The shared account whose limits to read (default: the login account, else the
    /// host's `capacity:` account).
    pub account: Option<String>,
    /// How far back to read the event log.
    pub since: Duration,
    /// Plain IMAP ports to probe instead of the server's UnencryptedOrTLSBindings.
    pub imap_ports: Option<Vec<u16>>,
    /// SSL IMAP ports to probe instead of the server's SSLBindings (a TCP connect).
    pub imaps_ports: Option<Vec<u16>>,
    /// A real login with this account.
    pub login: Option<Login>,
    /// How long a connection or an answer may take.
    pub timeout: Duration,
    /// The manifests the hosts come from, to name where each limit is declared.
    pub sources: Option<exctl_manifest::SourceMap>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            account: None,
            since: Duration::from_secs(24 * 3600),
            imap_ports: None,
            imaps_ports: None,
            login: None,
            timeout: Duration::from_secs(10),
            sources: None,
        }
    }
}

/// An IMAP login to try.
#[derive(Debug, Clone)]
pub struct Login {
    /// The account, as the desktops log in.
    pub account: String,
    /// Its password (never shown).
    pub password: Secret,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Worth a look.
    Warning,
    /// Broken.
    Failed,
    /// Not checked (something it needs failed first).
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "WARN",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// How it came out.
    pub status: Status,
    /// What was seen.
    pub detail: String,
}

/// Something wrong, with the change that fixes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// What is wrong.
    pub problem: String,
    /// What it most likely means.
    pub meaning: String,
    /// What to do.
    pub fix: String,
    /// The manifest lines to add (YAML of docs/manifests.md), when a manifest change fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_lines: Option<String>,
}

/// A limit as the host applies it to the account.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LimitRow {
    /// Which limit.
    pub limit: Limit,
    /// Its value (`None`: unreadable).
    pub value: Option<LimitValue>,
    /// What the declared demand needs.
    pub needed: Option<u64>,
    /// Where the value comes from.
    pub source: String,
    /// The restart it still waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// Events of one kind in the log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Events {
    /// What they are (`9646`, `MSExchangeIMAP4 errors and warnings`).
    pub event: String,
    /// How many in the period read.
    pub count: usize,
    /// How many since the service last started (these are current).
    pub since_restart: usize,
    /// The newest one's time (UTC, `yyyy-MM-ddTHH:mm:ss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// The newest one's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What doctor found on one host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostReport {
    /// The host.
    pub host: String,
    /// Its site.
    pub site: Option<String>,
    /// The account whose limits were read.
    pub account: Option<String>,
    /// The declared demand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demand: Option<Demand>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// The account's limits.
    pub limits: Vec<LimitRow>,
    /// Events matching the known symptoms.
    pub events: Vec<Events>,
    /// What is wrong.
    pub findings: Vec<Finding>,
    /// A limit is below the declared demand (some finding says which).
    #[serde(skip)]
    pub limits_low: bool,
}

impl HostReport {
    /// Whether nothing is wrong.
    pub fn healthy(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Whether every host is healthy.
    pub healthy: bool,
    /// Each host.
    pub hosts: Vec<HostReport>,
}

impl Report {
    /// A report of these hosts.
    pub fn new(hosts: Vec<HostReport>) -> Report {
        Report {
            format_version: FORMAT_VERSION,
            healthy: hosts.iter().all(HostReport::healthy),
            hosts,
        }
    }
}

/// The host and port of a WinRM endpoint URL (`http://h:5985/wsman`).
pub fn endpoint_address(endpoint: &str) -> Option<(String, u16)> {
    let parts = crate::desired::EndpointParts::of(endpoint);
    let default = if parts.scheme?.eq_ignore_ascii_case("https") {
        5986
    } else {
        5985
    };
    let port = match parts.port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    Some((parts.host.to_string(), port))
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The read-only script doctor runs on a host: the reads of `exctl_exchange::host`
/// (the server, the IMAP4 service, the events of the known symptoms), the account's
/// limits or the restart facts, and the services' health.
pub fn script(host: &HostSpec, account: Option<&str>, since: Duration) -> String {
    let mut s = ScriptBuilder::new(host);
    s.raw(&exhost::exchange_server_script(RECORD, &host.name));
    s.raw(&exhost::service_state_script(
        RECORD,
        "imap4",
        "Imap4",
        imap::SERVICE,
    ));
    // Events: read by source and filtered on EventID (a real log's InstanceId carries
    // severity bits), newest first, at most 1000 of each.
    s.raw(&exhost::events_since(since.as_secs()));
    for (key, svc, filter) in EVENTS {
        s.raw(&exhost::events_script(RECORD, key, svc.name(), filter));
    }
    if let Some(a) = account {
        s.raw(&capacity::observe_script(&host.name, host.version, a));
    }
    s.raw(&restart::observe_facts(
        &host.name,
        &capacity::FACTS_SERVICES.into_iter().collect(),
    ));
    s.raw(&restart::observe_health(&host.name));
    s.finish()
}

/// The Application-log events of the known symptoms: the record key, the service whose
/// source writes them (its start tells current from old ones), and which of its events.
const EVENTS: [(&str, Service, exhost::EventFilter); 2] = [
    ("E9646", INFORMATION_STORE, exhost::EventFilter::Id(9646)),
    (
        "Imap4Events",
        imap::SERVICE,
        exhost::EventFilter::ErrorsAndWarnings,
    ),
];

/// Network facts gathered from where exctl runs.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// The WinRM endpoint's address and whether it accepted a connection.
    pub winrm: Option<(String, Result<(), String>)>,
    /// Each IMAP port probed: (port, TLS port, greeting or error).
    pub imap: Vec<(u16, bool, Result<String, String>)>,
    /// The login, if one was tried: (account, outcome).
    pub login: Option<(String, LoginOutcome)>,
}

/// When a service's process started (UTC seconds), from the restart facts.
fn started(o: &Observations, svc: Service) -> Option<i64> {
    match o.get(&restart::facts_key(svc), "StartedUtc") {
        Some(RawValue::Str(s)) => restart::parse_utc(s),
        _ => None,
    }
}

fn events(o: &Observations, read: exhost::EventTimes, label: &str, svc: Service) -> Events {
    let times = read.times;
    let since = started(o, svc);
    let mut parsed: Vec<(i64, &String)> = times
        .iter()
        .filter_map(|t| restart::parse_utc(t).map(|s| (s, t)))
        .collect();
    parsed.sort();
    Events {
        event: label.to_string(),
        count: times.len(),
        since_restart: parsed
            .iter()
            .filter(|(t, _)| since.is_none_or(|s| *t >= s))
            .count(),
        newest: parsed.last().map(|(_, t)| (*t).clone()),
        message: read.newest_message,
    }
}

/// The N of "exceeded the maximum of N objects".
fn limit_in_9646(message: &str) -> Option<u64> {
    let rest = message.split("maximum of ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// What the facts mean: the table's checks, the limits, the events and the findings.
pub fn analyse(
    host: &HostSpec,
    account: Option<&str>,
    demand: Option<&Demand>,
    run: Result<&Observations, String>,
    net: &Network,
    sources: Option<&exctl_manifest::SourceMap>,
) -> HostReport {
    let mut rep = HostReport {
        host: host.name.clone(),
        site: host.site.clone(),
        account: account.map(str::to_string),
        demand: demand.cloned(),
        checks: Vec::new(),
        limits: Vec::new(),
        events: Vec::new(),
        findings: Vec::new(),
        limits_low: false,
    };
    if let Some((addr, r)) = &net.winrm {
        match r {
            Ok(()) => rep.checks.push(Check {
                check: format!("WinRM port {addr}"),
                status: Status::Ok,
                detail: "accepts connections".into(),
            }),
            Err(e) => {
                rep.checks.push(Check {
                    check: format!("WinRM port {addr}"),
                    status: Status::Failed,
                    detail: e.clone(),
                });
                rep.findings.push(Finding {
                    problem: format!("WinRM on {} is not reachable: {e}", host.name),
                    meaning: "the server is down, the WinRM service is not listening, or a firewall blocks the port between here and the server".into(),
                    fix: "check `winrm quickconfig` on the server and the firewall (5985 for HTTP, 5986 for HTTPS)".into(),
                    manifest_lines: None,
                });
            }
        }
    }
    let obs = match run {
        Ok(o) => {
            rep.checks.push(Check {
                check: "WinRM credential".into(),
                status: Status::Ok,
                detail: format!("{} accepted", host.user),
            });
            Some(o)
        }
        Err(e) => {
            let reachable = net.winrm.as_ref().is_none_or(|(_, r)| r.is_ok());
            rep.checks.push(Check {
                check: "WinRM credential".into(),
                status: if reachable {
                    Status::Failed
                } else {
                    Status::Skipped
                },
                detail: e.clone(),
            });
            if reachable {
                rep.findings.push(Finding {
                    problem: format!("the read-only script could not run on {}: {e}", host.name),
                    meaning: "the credential is refused, the account lacks rights, or WinRM refuses the request (see the error)".into(),
                    fix: format!(
                        "check the password of {} (exctl login) and that the account is a local administrator with Exchange rights",
                        host.user
                    ),
                    manifest_lines: None,
                });
            }
            None
        }
    };
    if let Some(o) = obs {
        server_checks(&mut rep, o);
        health_checks(&mut rep, o);
        if let Some(a) = account {
            limit_checks(&mut rep, host, a, demand, o, sources);
        } else {
            rep.checks.push(Check {
                check: "limits".into(),
                status: Status::Skipped,
                detail:
                    "no account: pass --account, --imap-login or declare capacity: for the host"
                        .into(),
            });
        }
        event_checks(&mut rep, host, account, demand, o, sources);
    }
    network_checks(&mut rep, net, demand);
    rep
}

/// The Information Store, its dependants and databases, read as plan reads them
/// ([`restart::Health`]): a store that is down is a finding, and so is what a plan would
/// bring back. (The IMAP4 service has its own check in [`server_checks`].)
fn health_checks(rep: &mut HostReport, o: &Observations) {
    let health = restart::health(&rep.host, o);
    for n in &health.notes {
        rep.checks.push(Check {
            check: "Information Store".into(),
            status: Status::Warning,
            detail: n.clone(),
        });
    }
    let Some(store) = health.service(INFORMATION_STORE) else {
        return;
    };
    let recovery = health.recovery(INFORMATION_STORE);
    rep.checks.push(Check {
        check: "Information Store".into(),
        status: if recovery.is_some() {
            Status::Failed
        } else {
            Status::Ok
        },
        detail: match &recovery {
            Some(r) => r.reason.clone(),
            None => format!("{} (start mode {})", store.status, store.start_mode),
        },
    });
    if let Some(r) = recovery {
        rep.findings.push(Finding {
            problem: format!("the Information Store of {} is not healthy: {}", rep.host, r.reason),
            meaning: "mailbox users on this server cannot reach their mailboxes (or some of them), and IMAP logins to them fail".into(),
            fix: format!(
                "exctl apply brings it back (plan shows the step: it starts the store if it is down, waits for a start under way, starts the dependent services and waits for the databases); by hand: Start-Service MSExchangeIS, then Get-MailboxDatabase -Server {} -Status",
                rep.host
            ),
            manifest_lines: None,
        });
    }
}

fn server_checks(rep: &mut HostReport, o: &Observations) {
    match exhost::ExchangeServer::read(o, RECORD) {
        Err(e) => {
            rep.checks.push(Check {
                check: "Exchange".into(),
                status: Status::Failed,
                detail: e.to_string(),
            });
            rep.findings.push(Finding {
                problem: format!("cannot read the Exchange server {}: {e}", rep.host),
                meaning: "the Exchange snap-in is missing or the server name is not the Exchange server's".into(),
                fix: "check the host's name in the inventory and that Exchange 2010 management tools are installed".into(),
                manifest_lines: None,
            });
        }
        Ok(server) => {
            let version = server.admin_display_version;
            let roles = server.server_role;
            let known = exctl_exchange::Version::from_admin_display_version(&version);
            rep.checks.push(Check {
                check: "Exchange".into(),
                status: if known.is_some() {
                    Status::Ok
                } else {
                    Status::Warning
                },
                detail: format!(
                    "{} ({version}), roles {}",
                    known.map_or("not Exchange 2010", |v| v.as_str()),
                    if roles.is_empty() { "?" } else { &roles }
                ),
            });
        }
    }
    match exhost::ServiceState::read(o, RECORD, "imap4", "Imap4") {
        Err(e) => rep.checks.push(Check {
            check: "IMAP4 service".into(),
            status: Status::Failed,
            detail: e,
        }),
        Ok(state) => {
            let status = state.status.unwrap_or_else(|| "unknown".into());
            let mode = state.start_mode.unwrap_or_else(|| "unknown".into());
            let running = status.eq_ignore_ascii_case("Running");
            rep.checks.push(Check {
                check: "IMAP4 service".into(),
                status: if running { Status::Ok } else { Status::Failed },
                detail: format!("{status} (start mode {mode})"),
            });
            if !running {
                rep.findings.push(Finding {
                    problem: format!("MSExchangeIMAP4 on {} is {status}", rep.host),
                    meaning: "no IMAP client can connect: Exchange 2010 installs the IMAP4 service with Manual start".into(),
                    fix: "start it and set it to start automatically: Set-Service MSExchangeIMAP4 -StartupType Automatic; Start-Service MSExchangeIMAP4".into(),
                    manifest_lines: None,
                });
            }
        }
    }
}

/// `file:line` of a span, or its line alone without the manifests.
fn origin(sources: Option<&exctl_manifest::SourceMap>, span: exctl_manifest::Span) -> String {
    match sources {
        Some(src) => format!("{}:{}", src.path(span.file).display(), span.start.line),
        None => format!("line {}", span.start.line),
    }
}

/// The store limit the manifests declare for `host`, when it meets `need`.
fn declared_store(host: &HostSpec, need: Option<u64>) -> Option<&capacity::Declared> {
    let d = host
        .declared_limits
        .as_ref()?
        .get(Limit::StoreServiceSessions)?;
    fits(d.value, need?).then_some(d)
}

/// Whether a declared value meets a need.
fn fits(v: LimitValue, needed: u64) -> bool {
    match v {
        LimitValue::Unlimited => true,
        LimitValue::Number(n) => n >= needed,
    }
}

fn limit_checks(
    rep: &mut HostReport,
    host: &HostSpec,
    account: &str,
    demand: Option<&Demand>,
    o: &Observations,
    sources: Option<&exctl_manifest::SourceMap>,
) {
    let eff = Effective::from_observations(&host.name, account, o);
    for e in &eff.errors {
        rep.checks.push(Check {
            check: "limits".into(),
            status: Status::Warning,
            detail: e.clone(),
        });
    }
    for l in &eff.limits {
        rep.limits.push(LimitRow {
            limit: l.limit,
            value: l.value,
            needed: demand.map(|d| l.limit.required(d)),
            source: l.source.clone(),
            pending: l.pending.clone(),
        });
    }
    match demand {
        Some(d) => {
            for s in eff.shortfalls(d) {
                let meaning = format!(
                    "once more than {} of the account's connections are open, the next login is refused with NO AUTHENTICATE failed.",
                    s.value
                );
                let problem = format!("on {}: {}", host.name, s.message(capacity::alias(account)));
                // What the manifests already say about this limit decides the fix.
                let declared = host.declared_limits.as_ref().and_then(|x| x.get(s.limit));
                let at = |span: exctl_manifest::Span| origin(sources, span);
                let finding = match declared {
                    Some(dv) if fits(dv.value, s.needed) => Finding {
                        problem: format!(
                            "{problem}; the manifests declare {} at {}: not applied",
                            dv.value,
                            at(dv.span)
                        ),
                        meaning,
                        fix: format!(
                            "run exctl apply: it sets {} and restarts {}",
                            s.limit,
                            s.limit.service()
                        ),
                        manifest_lines: None,
                    },
                    Some(dv) => Finding {
                        problem: format!(
                            "{problem}; the manifests declare {} at {}, below the {} needed",
                            dv.value,
                            at(dv.span),
                            s.needed
                        ),
                        meaning,
                        fix: format!(
                            "raise it at {} to at least {}, then exctl apply (it restarts {})",
                            at(dv.span),
                            s.needed,
                            s.limit.service()
                        ),
                        manifest_lines: Some(s.manifest_lines),
                    },
                    None => Finding {
                        problem: format!("{problem}; the manifests do not declare it"),
                        meaning,
                        fix: format!(
                            "add it (at least {}), then exctl apply (it restarts {})",
                            s.needed,
                            s.limit.service()
                        ),
                        manifest_lines: Some(s.manifest_lines),
                    },
                };
                rep.findings.push(finding);
                rep.limits_low = true;
            }
        }
        None => {
            let low: Vec<String> = eff
                .limits
                .iter()
                .filter(|l| l.value.is_some_and(|v| v == LimitValue::Number(16)))
                .map(|l| l.limit.to_string())
                .collect();
            rep.findings.push(Finding {
                problem: format!(
                    "no capacity is declared for {}, so doctor cannot tell which limits are too low{}",
                    host.name,
                    if low.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} still at 16, the Exchange default)", low.join(", "))
                    }
                ),
                meaning: "the limits must fit the agent desktops that share the account".into(),
                fix: "declare the demand (then exctl validate and plan check every limit against it)".into(),
                manifest_lines: Some(format!(
                    "capacity:\n  account: {}\n  desktops: 20                 # agent desktops logged in at peak\n  connections_per_desktop: 2   # UCCX/CAD\n  server_connections: 2        # held by the contact-centre server\n",
                    exctl_manifest::yaml::scalar(account)
                )),
            });
        }
    }
    // A value high enough that is not in force yet.
    let mut owed: Vec<(Service, String)> = Vec::new();
    for l in &eff.limits {
        if let Some(p) = &l.pending
            && !owed.iter().any(|(s, _)| *s == l.limit.service())
        {
            owed.push((l.limit.service(), p.clone()));
        }
    }
    for (svc, why) in owed {
        rep.findings.push(Finding {
            problem: format!("a change on {} is not in force yet: {why}", host.name),
            meaning: format!("{svc} still runs with the values it read when it started"),
            fix: format!("restart {svc}: exctl apply (with --restart auto, in a maintenance window for MSExchangeIS) does it"),
            manifest_lines: None,
        });
    }
}

fn event_checks(
    rep: &mut HostReport,
    host: &HostSpec,
    account: Option<&str>,
    demand: Option<&Demand>,
    o: &Observations,
    sources: Option<&exctl_manifest::SourceMap>,
) {
    for ((key, svc, _), label) in EVENTS.into_iter().zip([
        "event 9646 (MSExchangeIS)",
        "MSExchangeIMAP4 errors and warnings",
    ]) {
        let read = match exhost::EventTimes::read(o, RECORD, key) {
            Ok(read) => read,
            Err(e) => {
                rep.checks.push(Check {
                    check: label.into(),
                    status: Status::Warning,
                    detail: format!("cannot read the Application log: {e}"),
                });
                continue;
            }
        };
        let ev = events(o, read, label, svc);
        let status = if ev.since_restart > 0 {
            Status::Failed
        } else if ev.count > 0 {
            Status::Warning
        } else {
            Status::Ok
        };
        let detail = if ev.count == 0 {
            "none".to_string()
        } else {
            format!(
                "{} ({} since {svc} last started), newest {}",
                ev.count,
                ev.since_restart,
                ev.newest.as_deref().unwrap_or("?")
            )
        };
        rep.checks.push(Check {
            check: label.into(),
            status,
            detail,
        });
        if ev.since_restart > 0 {
            let message = ev.message.clone().unwrap_or_default();
            if key == "E9646" {
                let n = limit_in_9646(&message);
                let need = demand.map(|d| Limit::StoreServiceSessions.required(d));
                rep.findings.push(Finding {
                    problem: format!(
                        "the store refused sessions {} time{} on {} (event 9646, newest {}): {message}",
                        ev.since_restart,
                        if ev.since_restart == 1 { "" } else { "s" },
                        host.name,
                        ev.newest.as_deref().unwrap_or("?")
                    ),
                    meaning: format!(
                        "an account used more store service sessions than Maximum Allowed Service Sessions Per User{} allows; IMAP logins beyond it fail with NO AUTHENTICATE failed. (raising MaxConnectionsPerUser alone does not lift it, KB 980049)",
                        n.map(|n| format!(" ({n})")).unwrap_or_default()
                    ),
                    // A limit the manifests already raise enough is applied, not added.
                    fix: match (declared_store(host, need.or(n.map(|n| n + 1))), need) {
                        (Some(d), _) => format!(
                            "run exctl apply: the manifests declare {} at {}, which the server does not have in force yet (it restarts MSExchangeIS)",
                            d.value,
                            origin(sources, d.span)
                        ),
                        (None, Some(need)) => format!("raise the store limit to at least {need} and restart MSExchangeIS"),
                        (None, None) => "raise the store limit above the account's connections (declare capacity: to compute it) and restart MSExchangeIS".into(),
                    },
                    manifest_lines: declared_store(host, need.or(n.map(|n| n + 1)))
                        .is_none()
                        .then(|| {
                            Limit::StoreServiceSessions.manifest_lines(
                                need.or(n.map(|n| n * 2)).unwrap_or(32),
                                account.unwrap_or("uccx-agent"),
                                None,
                            )
                        }),
                });
                rep.limits_low = true;
            } else {
                rep.findings.push(Finding {
                    problem: format!(
                        "MSExchangeIMAP4 on {} logged {} error{} or warning{} (newest {}): {message}",
                        host.name,
                        ev.since_restart,
                        if ev.since_restart == 1 { "" } else { "s" },
                        if ev.since_restart == 1 { "" } else { "s" },
                        ev.newest.as_deref().unwrap_or("?")
                    ),
                    meaning: "the IMAP4 service reports trouble; connection-limit refusals, certificate and binding problems show here".into(),
                    fix: "read the events (Get-EventLog -LogName Application -Source MSExchangeIMAP4 -Newest 20)".into(),
                    manifest_lines: None,
                });
            }
        }
        rep.events.push(ev);
    }
}

fn network_checks(rep: &mut HostReport, net: &Network, demand: Option<&Demand>) {
    for (port, tls, r) in &net.imap {
        let check = format!("IMAP4 port {port}{}", if *tls { " (SSL)" } else { "" });
        match r {
            Ok(g) if g.starts_with("* OK") || (*tls && g.is_empty()) => rep.checks.push(Check {
                check,
                status: Status::Ok,
                detail: if g.is_empty() {
                    "accepts connections (TCP; the TLS greeting is not read)".into()
                } else {
                    g.clone()
                },
            }),
            Ok(g) => {
                rep.checks.push(Check {
                    check,
                    status: Status::Failed,
                    detail: format!("unexpected greeting: {g}"),
                });
                rep.findings.push(Finding {
                    problem: format!("IMAP4 on port {port} answers '{g}' instead of '* OK'"),
                    meaning: "the service is not ready, or something else listens on the port"
                        .into(),
                    fix: "check the IMAP4 service and its bindings (Get-ImapSettings)".into(),
                    manifest_lines: None,
                });
            }
            Err(e) => {
                rep.checks.push(Check {
                    check,
                    status: Status::Failed,
                    detail: e.clone(),
                });
                rep.findings.push(Finding {
                    problem: format!("IMAP4 port {port} of {} cannot be reached from here: {e}", rep.host),
                    meaning: "the IMAP4 service is stopped, not bound to this port, or a firewall blocks it; agent desktops see greyed-out buttons".into(),
                    fix: "start MSExchangeIMAP4, check its bindings (UnencryptedOrTLSBindings, SSLBindings) and the firewall".into(),
                    manifest_lines: None,
                });
            }
        }
    }
    if let Some((account, outcome)) = &net.login {
        let check = format!("IMAP4 login {account}");
        match outcome {
            LoginOutcome::Accepted => rep.checks.push(Check {
                check,
                status: Status::Ok,
                detail: "AUTHENTICATE PLAIN accepted".into(),
            }),
            LoginOutcome::Refused(line) => {
                rep.checks.push(Check {
                    check,
                    status: Status::Failed,
                    detail: line.clone(),
                });
                let limits_low = rep.limits_low;
                rep.findings.push(Finding {
                    problem: format!("{account} cannot log in to IMAP4 on {}: {line}", rep.host),
                    meaning: format!(
                        "Exchange answers NO AUTHENTICATE failed. both to a wrong password and to a login that a connection limit refuses (MaxConnectionsPerUser, MaxConnectionFromSingleIP, MaxConnections, IMAPMaxConcurrency, or the store's sessions: event 9646). {}",
                        if limits_low {
                            "Here a limit is too low (see the other findings): the account's other connections have used it up."
                        } else if demand.is_some() {
                            "The limits fit the declared demand, so the password (or the account's mailbox) is the likely cause."
                        } else {
                            "Check the password, then the limits and events above."
                        }
                    ),
                    fix: if limits_low {
                        "fix the limits of the other findings (their manifest lines, or exctl apply where the manifests already have them)".into()
                    } else {
                        "check the account's password and that it has a mailbox".into()
                    },
                    manifest_lines: None,
                });
            }
            LoginOutcome::Error(e) => {
                rep.checks.push(Check {
                    check,
                    status: Status::Failed,
                    detail: e.clone(),
                });
                rep.findings.push(Finding {
                    problem: format!(
                        "the IMAP4 login of {account} on {} got no answer: {e}",
                        rep.host
                    ),
                    meaning: "the IMAP4 service is not serving".into(),
                    fix: "check the IMAP4 service and port".into(),
                    manifest_lines: None,
                });
            }
        }
    }
}

/// Diagnoses one host.
pub async fn diagnose_host(host: &HostSpec, runner: &dyn Runner, opts: &Options) -> HostReport {
    let demand = host.capacity.as_ref();
    let account = opts
        .account
        .clone()
        .or_else(|| opts.login.as_ref().map(|l| l.account.clone()))
        .or_else(|| demand.map(|d| d.account.clone()));
    let mut net = Network::default();
    let address = endpoint_address(&host.endpoint);
    if let Some((h, p)) = &address {
        let addr = join(h, *p);
        let r = imap_probe::connect(&addr, opts.timeout).await.map(|_| ());
        net.winrm = Some((addr, r));
    }
    let winrm_ok = net.winrm.as_ref().is_none_or(|(_, r)| r.is_ok());
    let observed = if winrm_ok {
        let s = script(host, account.as_deref(), opts.since);
        match runner.run(host, &s).await {
            Ok(out) if out.exit_code == 0 => {
                Observations::parse(&out.stdout).map_err(|e| e.to_string())
            }
            Ok(out) => Err(format!(
                "the script failed (exit code {}): {}",
                out.exit_code,
                out.stderr.trim()
            )),
            Err(e) => Err(e.to_string()),
        }
    } else {
        Err("not tried: the WinRM port is not reachable".into())
    };
    // The IMAP ports: what the caller says, else the server's bindings, else 143/993.
    let eff = match (&observed, &account) {
        (Ok(o), Some(a)) => Some(Effective::from_observations(&host.name, a, o)),
        _ => None,
    };
    let pick = |given: &Option<Vec<u16>>, bound: Option<Vec<u16>>, default: u16| {
        given
            .clone()
            .or(bound.filter(|b| !b.is_empty()))
            .unwrap_or_else(|| vec![default])
    };
    let plain = pick(
        &opts.imap_ports,
        eff.as_ref().map(|e| e.plain_ports.clone()),
        143,
    );
    let ssl = pick(
        &opts.imaps_ports,
        eff.as_ref().map(|e| e.ssl_ports.clone()),
        993,
    );
    if let Some((h, _)) = &address {
        for p in &plain {
            let g = imap_probe::greeting(&join(h, *p), opts.timeout).await;
            net.imap.push((*p, false, g));
        }
        for p in &ssl {
            let g = imap_probe::connect(&join(h, *p), opts.timeout)
                .await
                .map(|_| String::new());
            net.imap.push((*p, true, g));
        }
        if let (Some(login), Some(p)) = (&opts.login, plain.first()) {
            let outcome =
                imap_probe::login(&join(h, *p), &login.account, &login.password, opts.timeout)
                    .await;
            net.login = Some((login.account.clone(), outcome));
        }
    }
    analyse(
        host,
        account.as_deref(),
        demand,
        observed.as_ref().map_err(Clone::clone),
        &net,
        opts.sources.as_ref(),
    )
}

/// The report as text: a table per host, then the findings with their manifest lines.
pub fn text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for h in &report.hosts {
        let _ = writeln!(
            out,
            "Host {}{}",
            h.host,
            h.site
                .as_deref()
                .map(|s| format!(" (site {s})"))
                .unwrap_or_default()
        );
        let w = h
            .checks
            .iter()
            .map(|c| c.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(out, "  {:<w$}  {:<7}  DETAIL", "CHECK", "STATUS");
        for c in &h.checks {
            let _ = writeln!(
                out,
                "  {:<w$}  {:<7}  {}",
                c.check,
                c.status.label(),
                c.detail.replace('\n', " ")
            );
        }
        if !h.limits.is_empty() {
            let _ = writeln!(
                out,
                "\n  Limits for {}{}",
                h.account.as_deref().unwrap_or("?"),
                h.demand
                    .as_ref()
                    .map(|d| format!(
                        " ({} desktops × {} + {} server connections = {})",
                        d.desktops,
                        d.connections_per_desktop,
                        d.server_connections,
                        d.total()
                    ))
                    .unwrap_or_default()
            );
            let lw = h
                .limits
                .iter()
                .map(|l| l.limit.name().len())
                .max()
                .unwrap_or(5);
            let _ = writeln!(
                out,
                "  {:<lw$}  {:>10}  {:>6}  SOURCE",
                "LIMIT", "VALUE", "NEEDS"
            );
            for l in &h.limits {
                let value = l.value.map_or("?".to_string(), |v| v.to_string());
                let needs = l.needed.map_or("-".to_string(), |n| n.to_string());
                let mark = match (l.value, l.needed) {
                    (Some(v), Some(n)) if !v.allows(n) => "  TOO LOW",
                    _ => "",
                };
                let pending = l
                    .pending
                    .as_deref()
                    .map(|p| format!("; pending: {p}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<lw$}  {value:>10}  {needs:>6}  {}{pending}{mark}",
                    l.limit.name(),
                    l.source
                );
            }
        }
        if h.findings.is_empty() {
            let _ = writeln!(out, "\n  healthy: nothing found\n");
            continue;
        }
        let _ = writeln!(out, "\n  Findings");
        for (i, f) in h.findings.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, f.problem);
            let _ = writeln!(out, "     Most likely: {}", f.meaning);
            let _ = writeln!(out, "     Fix: {}", f.fix);
            if let Some(lines) = &f.manifest_lines {
                let _ = writeln!(out, "     Add to the manifests (site or host document):");
                for l in lines.lines() {
                    let _ = writeln!(out, "       {l}");
                }
            }
        }
        let _ = writeln!(out);
    }
    let n: usize = report.hosts.iter().map(|h| h.findings.len()).sum();
    if report.healthy {
        let _ = writeln!(
            out,
            "healthy: {} host{} checked, nothing found",
            report.hosts.len(),
            if report.hosts.len() == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            out,
            "{n} finding{} on {} host{}",
            if n == 1 { "" } else { "s" },
            report.hosts.iter().filter(|h| !h.healthy()).count(),
            if report.hosts.iter().filter(|h| !h.healthy()).count() == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use exctl_exchange::record::encode;

    #[test]
    fn endpoints_give_the_host_and_port() {
        assert_eq!(
            endpoint_address("http://127.0.0.1:5985/wsman"),
            Some(("127.0.0.1".into(), 5985))
        );
        assert_eq!(
            endpoint_address("https://ex01.contoso.local/wsman"),
            Some(("ex01.contoso.local".into(), 5986))
        );
        assert_eq!(
            endpoint_address("http://[::1]:1/wsman"),
            Some(("::1".into(), 1))
        );
        assert_eq!(endpoint_address("nonsense"), None);
    }

    #[test]
    fn the_9646_message_names_its_limit() {
        assert_eq!(
            limit_in_9646(
                "Mapi session \"/o=X/cn=u\" exceeded the maximum of 16 objects of type \"session\"."
            ),
            Some(16)
        );
        assert_eq!(limit_in_9646("other"), None);
    }

    fn host() -> HostSpec {
        HostSpec {
            name: "EX01".into(),
            endpoint: "http://127.0.0.1:5985/wsman".into(),
            auth: crate::Auth::Ntlm,
            spn: None,
            user: "CONTOSO\\Administrator".into(),
            credential: None,
            version: exctl_exchange::Version::Sp3,
            access: crate::desired::Access::Snapin,
            session_uri: None,
            exchange_auth: crate::desired::Auth::Kerberos,
            site: Some("lon".into()),
            baselines: None,
            ca_file: None,
            tls_fingerprint: None,
            span: exctl_manifest::Span::point(exctl_manifest::FileId(0), Default::default()),
            capacity: None,
            declared_limits: None,
        }
    }

    fn demand() -> Demand {
        Demand {
            account: "uccx-agent".into(),
            desktops: 20,
            connections_per_desktop: 2,
            server_connections: 2,
            desktops_per_address: 1,
            span: exctl_manifest::Span::point(exctl_manifest::FileId(0), Default::default()),
        }
    }

    fn observations(records: &[(&str, &str, RawValue)]) -> Observations {
        let t: Vec<String> = records.iter().map(|(r, a, v)| encode(r, a, v)).collect();
        Observations::parse(&t.join("\n")).unwrap()
    }

    fn s(v: &str) -> RawValue {
        RawValue::Str(v.into())
    }

    fn incident() -> Observations {
        let is = restart::facts_key(INFORMATION_STORE);
        let mut o = observations(&[
            (
                RECORD,
                "AdminDisplayVersion",
                s("Version 14.3 (Build 123.4)"),
            ),
            (
                RECORD,
                "ServerRole",
                s("Mailbox, ClientAccess, HubTransport"),
            ),
            (RECORD, "Imap4Status", s("Running")),
            (RECORD, "Imap4StartMode", s("Auto")),
            (
                RECORD,
                "E9646Times",
                RawValue::List(vec![
                    "2024-05-01T10:00:00".into(),
                    "2024-05-01T10:05:00".into(),
                ]),
            ),
            (
                RECORD,
                "E9646Message",
                s(
                    "Mapi session \"/o=X/cn=uccx-agent\" exceeded the maximum of 16 objects of type \"session\".",
                ),
            ),
            (RECORD, "Imap4EventsTimes", RawValue::List(Vec::new())),
            (&is, "State", s("Running")),
            (&is, "StartedUtc", s("2024-05-01T08:00:00")),
        ]);
        capacity::fixture::insert(
            &mut o,
            &host().name,
            "uccx-agent",
            &capacity::fixture::Server {
                imap: vec![
                    ("MaxConnectionsPerUser", s("40")),
                    ("MaxConnectionFromSingleIP", s("40")),
                ],
                ..capacity::fixture::Server::default()
            },
        );
        o
    }

    #[test]
    fn the_seed_incident_finds_the_store_limit_and_the_low_limits() {
        let o = incident();
        let net = Network {
            winrm: Some(("127.0.0.1:5985".into(), Ok(()))),
            imap: vec![(143, false, Ok("* OK ready".into()))],
            login: Some((
                "uccx-agent".into(),
                LoginOutcome::Refused("x1 NO AUTHENTICATE failed.".into()),
            )),
        };
        let d = demand();
        let r = analyse(&host(), Some("uccx-agent"), Some(&d), Ok(&o), &net, None);
        let problems: Vec<&str> = r.findings.iter().map(|f| f.problem.as_str()).collect();
        assert!(!r.healthy());
        // MaxConnectionsPerUser 40 < 42, the store's default 16 < 42, 9646 since the
        // store started, and the refused login.
        assert!(
            problems
                .iter()
                .any(|p| p.contains("MaxConnectionsPerUser is 40")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("Maximum Allowed Service Sessions Per User is 16")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("event 9646")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("NO AUTHENTICATE failed.")),
            "{problems:#?}"
        );
        let lines: Vec<&str> = r
            .findings
            .iter()
            .filter_map(|f| f.manifest_lines.as_deref())
            .collect();
        assert!(
            lines.contains(&"imap_settings:\n  MaxConnectionsPerUser: 42\n"),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("value: 42")), "{lines:#?}");
        let login = r.findings.last().unwrap();
        assert!(
            login.meaning.contains("a limit is too low"),
            "{}",
            login.meaning
        );
        let t = text(&Report::new(vec![r]));
        assert!(
            t.contains("TOO LOW") && t.contains("Add to the manifests"),
            "{t}"
        );
    }

    #[test]
    fn old_events_and_fitting_limits_are_healthy() {
        let is = restart::facts_key(INFORMATION_STORE);
        let mut o = incident();
        // The store restarted after the events; the limits were raised.
        o.insert(&is, "StartedUtc", s("2024-05-01T11:00:00"));
        capacity::fixture::insert(
            &mut o,
            &host().name,
            "uccx-agent",
            &capacity::fixture::Server {
                imap: vec![
                    ("MaxConnectionsPerUser", s("250")),
                    ("MaxConnectionFromSingleIP", s("40")),
                ],
                store: Some(s("250")),
                ..capacity::fixture::Server::default()
            },
        );
        let net = Network {
            winrm: Some(("127.0.0.1:5985".into(), Ok(()))),
            imap: vec![(143, false, Ok("* OK ready".into()))],
            login: Some(("uccx-agent".into(), LoginOutcome::Accepted)),
        };
        let d = demand();
        let r = analyse(&host(), Some("uccx-agent"), Some(&d), Ok(&o), &net, None);
        assert!(r.healthy(), "{:#?}", r.findings);
        let e = &r.events[0];
        assert_eq!((e.count, e.since_restart), (2, 0));
    }

    #[test]
    fn an_unreachable_host_is_a_finding_and_skips_the_rest() {
        let net = Network {
            winrm: Some(("127.0.0.1:1".into(), Err("refused".into()))),
            ..Network::default()
        };
        let r = analyse(&host(), None, None, Err("not tried".into()), &net, None);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.checks[1].status, Status::Skipped);
    }

    #[test]
    fn the_script_parses() {
        let s = script(&host(), Some("uccx-agent"), Duration::from_secs(3600));
        if let Err(e) = exctl_pwsh_interp::parse(&s) {
            panic!("{e:?}\n{s}");
        }
    }
}
