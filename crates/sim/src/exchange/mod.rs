//! The Exchange 2010 object model behind the simulator's cmdlets: an organization with
//! its servers (IMAP settings, receive connectors, databases, registry, services,
//! Application event log), throttling policies, mailboxes and AD permissions, per
//! service pack. Pure Rust, no interpreter: every operation is a method returning
//! `Result<_, ExchangeError>` with Exchange's or PowerShell's own error texts, and
//! getters return [`SimObject`]s shaped as a remote Exchange session shows them (see
//! `value`). [`cmdlets`] maps cmdlet names and bound parameters onto these methods.
//!
//! What takes effect when is modelled, because exctl's job is to get it right:
//! - Set-ImapSettings changes the configured settings at once (Get-ImapSettings shows
//!   them), but the running MSExchangeIMAP4 keeps the limits it loaded until it restarts.
//! - Set-PopSettings changes the configured POP3 settings likewise (there is no POP3
//!   listener: MSExchangePOP3 is Manual and stopped, as Setup leaves it).
//! - The store's "Maximum Allowed Service Sessions Per User" (default 16) and "Maximum
//!   Allowed Sessions Per User" (32) are registry values read when MSExchangeIS starts.
//! - Throttling policy values are cached by the IMAP service per user from first use
//!   until it restarts (reference §2: policies are cached per process).
//! - Restarts take simulated time (see `clock` and `services`).
//!
//! The whole organization serializes (YAML or JSON) as a state file: `--state FILE` can
//! describe a starting point, partially (missing parts get Setup's defaults), and the
//! model can be written back. Runtime-only parts (IMAP sessions, caches, counters) are
//! not saved.

pub mod clock;
pub mod cmdlets;
pub mod connector;
pub mod error;
pub mod eventlog;
pub mod permissions;
pub mod props;
pub mod protocol_settings;
pub mod recipients;
pub mod registry;
pub mod services;
pub mod sp;
pub mod throttling;
pub mod value;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use clock::{Clock, ClockRef, ManualClock, ScaledClock, SimTime};
pub use error::{ErrorCategory, ExchangeError};
pub use sp::Sp;
pub use value::{SimObject, SimValue};

use connector::ReceiveConnector;
use eventlog::{EventLog, Level};
use permissions::Ace;
use props::Bag;
use protocol_settings::{ImapLimits, Protocol};
use recipients::Mailbox;
use registry::{RegValue, Registry};
use services::{Service, Status, Steady};
use throttling::{Effective, ThrottlingPolicy};

/// The store's registry key.
pub const STORE_KEY: &str =
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem";
/// The store's per-user limit on non-MAPI service sessions (IMAP, POP, OWA, EAS, EWS).
pub const SERVICE_SESSIONS_VALUE: &str = "Maximum Allowed Service Sessions Per User";
/// The store's per-user MAPI session limit.
pub const SESSIONS_VALUE: &str = "Maximum Allowed Sessions Per User";
/// KB 980049: "service sessions per user are limited to 16".
pub const DEFAULT_SERVICE_SESSIONS: u32 = 16;
/// KB 980049: "sessions per user are limited to 32".
pub const DEFAULT_SESSIONS: u32 = 32;
/// The legacy administrative group every 2010 object lives in.
pub const ADMIN_GROUP: &str = "Exchange Administrative Group (FYDIBOHF23SPDLT)";

fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A mailbox database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxDatabase {
    /// Its name.
    pub name: String,
    /// Its GUID.
    #[serde(default = "new_guid")]
    pub guid: String,
}

/// The store limits MSExchangeIS loaded when it last started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreLimits {
    /// Maximum Allowed Service Sessions Per User.
    pub service_sessions_per_user: u32,
    /// Maximum Allowed Sessions Per User.
    pub sessions_per_user: u32,
}

/// One Exchange server (and the Windows host under it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Computer name (`EX01`).
    pub name: String,
    /// FQDN; `<name>.<domain>` when not given.
    #[serde(default)]
    pub fqdn: String,
    /// Roles, e.g. `Mailbox`, `ClientAccess`, `HubTransport`.
    #[serde(default = "default_roles")]
    pub roles: Vec<String>,
    /// `Standard` or `Enterprise`.
    #[serde(default = "default_edition")]
    pub edition: String,
    /// The configured IMAP settings (what Get-ImapSettings shows).
    #[serde(default)]
    pub imap: Bag,
    /// The settings the running MSExchangeIMAP4 loaded; the configured ones when absent
    /// from a state file.
    #[serde(default)]
    pub imap_running: Option<Bag>,
    /// The configured POP3 settings (what Get-PopSettings shows).
    #[serde(default)]
    pub pop: Bag,
    /// When the POP3 settings last changed; the organization's install time when absent.
    #[serde(default)]
    pub pop_changed: Option<SimTime>,
    /// Receive connectors.
    #[serde(default)]
    pub connectors: Vec<ReceiveConnector>,
    /// Mailbox databases.
    #[serde(default)]
    pub databases: Vec<MailboxDatabase>,
    /// The host's registry.
    #[serde(default)]
    pub registry: Registry,
    /// The host's services.
    #[serde(default)]
    pub services: Vec<Service>,
    /// The host's Application log.
    #[serde(default)]
    pub event_log: EventLog,
    /// The store limits in force; read from the registry when absent.
    #[serde(default)]
    pub store_limits: Option<StoreLimits>,
    /// Explicit ACEs on the server object.
    #[serde(default)]
    pub acl: Vec<Ace>,
    /// Its GUID.
    #[serde(default = "new_guid")]
    pub guid: String,
    /// When the IMAP settings last changed (their `WhenChanged`); the organization's
    /// install time when absent.
    #[serde(default)]
    pub imap_changed: Option<SimTime>,
}

fn default_roles() -> Vec<String> {
    vec![
        "Mailbox".to_string(),
        "ClientAccess".to_string(),
        "HubTransport".to_string(),
    ]
}

fn default_edition() -> String {
    "Enterprise".to_string()
}

impl Server {
    /// A server with Setup's defaults.
    pub fn new(name: &str) -> Self {
        Server {
            name: name.to_string(),
            fqdn: String::new(),
            roles: default_roles(),
            edition: default_edition(),
            imap: Bag::default(),
            imap_running: None,
            pop: Bag::default(),
            pop_changed: None,
            connectors: Vec::new(),
            databases: Vec::new(),
            registry: Registry::default(),
            services: Vec::new(),
            event_log: EventLog::default(),
            store_limits: None,
            acl: Vec::new(),
            guid: new_guid(),
            imap_changed: None,
        }
    }

    fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    fn service(&self, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    fn service_mut(&mut self, name: &str) -> Option<&mut Service> {
        self.services
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The names of the services that depend on `name`.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| s.depends_on.iter().any(|d| d.eq_ignore_ascii_case(name)))
            .map(|s| s.name.clone())
            .collect()
    }

    /// The store limits as the registry says now (what MSExchangeIS would load). A value
    /// of the wrong type is ignored, as the store reads DWORDs only.
    pub fn registry_store_limits(&self) -> StoreLimits {
        let dword = |name: &str, default: u32| {
            self.registry
                .value(STORE_KEY, name)
                .and_then(RegValue::as_dword)
                .unwrap_or(default)
        };
        StoreLimits {
            service_sessions_per_user: dword(SERVICE_SESSIONS_VALUE, DEFAULT_SERVICE_SESSIONS),
            sessions_per_user: dword(SESSIONS_VALUE, DEFAULT_SESSIONS),
        }
    }
}

/// Why an IMAP login was refused. The client sees `NO LOGIN failed.` /
/// `NO AUTHENTICATE failed.` for all of them; the reason is for tests and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Unknown account or wrong password.
    BadCredentials,
    /// The IMAP4 service or the store is not running.
    Unavailable,
    /// MaxConnections.
    MaxConnections,
    /// MaxConnectionFromSingleIP.
    MaxConnectionFromSingleIp,
    /// MaxConnectionsPerUser.
    MaxConnectionsPerUser,
    /// The throttling policy's IMAPMaxConcurrency.
    ImapMaxConcurrency,
    /// The store's Maximum Allowed Service Sessions Per User (event 9646 logged).
    StoreServiceSessions,
}

impl LoginRefusal {
    /// A short name for counters.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginRefusal::BadCredentials => "bad_credentials",
            LoginRefusal::Unavailable => "unavailable",
            LoginRefusal::MaxConnections => "max_connections",
            LoginRefusal::MaxConnectionFromSingleIp => "max_connection_from_single_ip",
            LoginRefusal::MaxConnectionsPerUser => "max_connections_per_user",
            LoginRefusal::ImapMaxConcurrency => "imap_max_concurrency",
            LoginRefusal::StoreServiceSessions => "store_service_sessions",
        }
    }
}

/// An IMAP connection as the model tracks it.
#[derive(Debug, Clone)]
struct ImapConn {
    server: String,
    ip: IpAddr,
    /// Lower-cased alias once authenticated.
    user: Option<String>,
}

/// What is not saved: live IMAP sessions, the IMAP service's policy cache, counters.
#[derive(Debug, Default)]
struct Runtime {
    next_conn: u64,
    conns: HashMap<u64, ImapConn>,
    /// Per lower-cased server name: bumped whenever existing IMAP connections must drop.
    imap_epoch: HashMap<String, u64>,
    /// (server, user) → the IMAPMaxConcurrency the IMAP service cached.
    policy_cache: HashMap<(String, String), Effective>,
    cmdlets: BTreeMap<String, u64>,
    exchange_sessions: u64,
    powershell_processes: u64,
    logins_ok: u64,
    refusals: BTreeMap<&'static str, u64>,
}

/// Errors loading or saving a state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The YAML did not parse into the model.
    #[error("invalid YAML state: {0}")]
    Yaml(String),
    /// The JSON did not parse into the model.
    #[error("invalid JSON state: {0}")]
    Json(#[from] serde_json::Error),
    /// A value in the state is not one Exchange would accept.
    #[error("invalid state: {0}")]
    Invalid(#[from] ExchangeError),
    /// The state file could not be read or written.
    #[error("cannot access state file {0}: {1}")]
    Io(String, std::io::Error),
}

/// The organization: everything the simulated Exchange knows.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExchangeOrg {
    /// The release every server runs.
    #[serde(default)]
    pub sp: Sp,
    /// The organization name.
    #[serde(default = "default_org_name")]
    pub org_name: String,
    /// The AD domain (`contoso.local`).
    #[serde(default = "default_domain")]
    pub domain: String,
    /// The NetBIOS domain name (`CONTOSO`).
    #[serde(default = "default_netbios")]
    pub netbios: String,
    /// The domain controller named in errors; `dc01.<domain>` when empty.
    #[serde(default)]
    pub domain_controller: String,
    /// The server whose host (registry, services, event log) the cmdlets run on; the
    /// first server when empty.
    #[serde(default)]
    pub host: String,
    /// Servers.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Throttling policies, the default one included.
    #[serde(default)]
    pub throttling_policies: Vec<ThrottlingPolicy>,
    /// Mailboxes.
    #[serde(default)]
    pub mailboxes: Vec<Mailbox>,
    /// Security principals without mailboxes (`CONTOSO\svc-monitor`), for permissions.
    #[serde(default)]
    pub principals: Vec<String>,
    /// ACEs on the organization container (explicit and inherited).
    #[serde(default)]
    pub org_acl: Option<Vec<Ace>>,
    /// When Exchange was installed: the `WhenCreated` of its objects (and their
    /// `WhenChanged` until they change); 30 days before the model was built when absent.
    #[serde(default)]
    pub installed: Option<SimTime>,
    /// When the host last booted: the start time of services that have not restarted
    /// since; a day before the model was built when absent.
    #[serde(default)]
    pub booted: Option<SimTime>,
    #[serde(skip)]
    index: HashMap<String, usize>,
    #[serde(skip)]
    clock: ClockRef,
    #[serde(skip)]
    runtime: Runtime,
}

fn default_org_name() -> String {
    "First Organization".to_string()
}

fn default_domain() -> String {
    "contoso.local".to_string()
}

fn default_netbios() -> String {
    "CONTOSO".to_string()
}

/// The seed name of the UCCX shared account.
pub const UCCX_ACCOUNT: &str = "uccx-agent";

impl ExchangeOrg {
    /// The seed scenario: one SP3 server `EX01` (Mailbox, Client Access, Hub Transport)
    /// in `contoso.local`, MSExchangeIMAP4 running, Setup's defaults everywhere, and the
    /// mailboxes `Administrator` and the UCCX shared account `uccx-agent`
    /// (password [`recipients::UCCX_PASSWORD`]).
    pub fn seed(sp: Sp, clock: ClockRef) -> Self {
        Self::seed_named(sp, clock, "EX01")
    }

    /// The seed scenario with the server (and host) named `computer_name`, so that the
    /// Exchange server and the Windows host WinRM reaches agree (`exctl sim
    /// --computer-name`).
    pub fn seed_named(sp: Sp, clock: ClockRef, computer_name: &str) -> Self {
        let mut org = ExchangeOrg {
            sp,
            org_name: default_org_name(),
            domain: default_domain(),
            netbios: default_netbios(),
            domain_controller: String::new(),
            host: String::new(),
            servers: vec![Server::new(computer_name)],
            throttling_policies: Vec::new(),
            mailboxes: vec![
                Mailbox::new("Administrator", None),
                Mailbox::new(UCCX_ACCOUNT, Some(recipients::UCCX_PASSWORD)),
            ],
            principals: Vec::new(),
            org_acl: None,
            installed: None,
            booted: None,
            index: HashMap::new(),
            clock,
            runtime: Runtime::default(),
        };
        // Filling in defaults cannot fail on values we chose ourselves.
        let _ = org.complete();
        org
    }

    /// Adds `n` generated mailboxes `user00001`.. (for scale tests).
    pub fn add_generated_mailboxes(&mut self, n: usize) {
        let db = self.first_database();
        for i in 0..n {
            let mut m = Mailbox::new(&format!("user{:05}", i + 1), None);
            m.database = db.clone();
            self.mailboxes.push(m);
        }
        self.reindex();
    }

    /// Loads a YAML state file (see the module docs).
    pub fn from_yaml(text: &str, clock: ClockRef) -> Result<Self, StateError> {
        let mut org: ExchangeOrg =
            serde_saphyr::from_str(text).map_err(|e| StateError::Yaml(e.to_string()))?;
        org.clock = clock;
        org.complete()?;
        Ok(org)
    }

    /// Loads a JSON state file.
    pub fn from_json(text: &str, clock: ClockRef) -> Result<Self, StateError> {
        let mut org: ExchangeOrg = serde_json::from_str(text)?;
        org.clock = clock;
        org.complete()?;
        Ok(org)
    }

    /// Loads a state file: JSON when it ends in `.json`, YAML otherwise.
    pub fn load_state_file(path: &std::path::Path, clock: ClockRef) -> Result<Self, StateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StateError::Io(path.display().to_string(), e))?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json(&text, clock)
        } else {
            Self::from_yaml(&text, clock)
        }
    }

    /// Writes the state back (JSON for `.json`, YAML otherwise).
    pub fn save_state_file(&self, path: &std::path::Path) -> Result<(), StateError> {
        let text = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            self.to_json()?
        } else {
            self.to_yaml()?
        };
        std::fs::write(path, text).map_err(|e| StateError::Io(path.display().to_string(), e))
    }

    /// Sets how long a service takes to stop and to start (simulated seconds), e.g. a
    /// slower Information Store.
    pub fn set_service_timing(
        &mut self,
        server: Option<&str>,
        name: &str,
        stop_secs: f64,
        start_secs: f64,
    ) -> Result<(), ExchangeError> {
        let si = self.server_index(server)?;
        let svc = self
            .servers
            .get_mut(si)
            .and_then(|s| s.service_mut(name))
            .ok_or_else(|| Self::no_service(name, "GetServiceCommand"))?;
        svc.timing = services::ServiceTiming {
            stop_secs,
            start_secs,
        };
        Ok(())
    }

    /// The state as YAML.
    pub fn to_yaml(&self) -> Result<String, StateError> {
        serde_saphyr::to_string(self).map_err(|e| StateError::Yaml(e.to_string()))
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Result<String, StateError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Fills in what a partial state left out, normalizes values and builds indexes.
    fn complete(&mut self) -> Result<(), ExchangeError> {
        let now = self.clock.now();
        let installed = *self
            .installed
            .get_or_insert(SimTime(now.0.saturating_sub(30 * 86_400_000)));
        let booted = *self
            .booted
            .get_or_insert(SimTime(now.0.saturating_sub(86_400_000).max(installed.0)));
        if self.domain_controller.is_empty() {
            self.domain_controller = format!("dc01.{}", self.domain);
        }
        if self.servers.is_empty() {
            self.servers.push(Server::new("EX01"));
        }
        if self.host.is_empty() {
            self.host = self
                .servers
                .first()
                .map(|s| s.name.clone())
                .unwrap_or_default();
        }
        let sp = self.sp;
        for s in &mut self.servers {
            if s.fqdn.is_empty() {
                s.fqdn = format!("{}.{}", s.name, self.domain);
            }
            if s.has_role("ClientAccess") {
                for p in protocol_settings::PROTOCOLS {
                    let mut full = (p.defaults)(&s.name, &s.fqdn);
                    let (bag, _) = (p.configured_mut)(s);
                    bag.normalize_all(p.props, p.what)?;
                    for (k, v) in &bag.0 {
                        full.0.insert(k.clone(), v.clone());
                    }
                    *bag = full;
                }
                if let Some(r) = &mut s.imap_running {
                    r.normalize_all(protocol_settings::IMAP_PROPS, protocol_settings::IMAP4.what)?;
                }
            }
            if s.has_role("HubTransport") {
                if s.connectors.is_empty() {
                    s.connectors = connector::default_connectors(&s.name, &s.fqdn);
                } else {
                    let defaults = connector::default_connectors(&s.name, &s.fqdn);
                    for c in &mut s.connectors {
                        c.settings
                            .normalize_all(connector::RC_PROPS, "ReceiveConnector")?;
                        let mut full = defaults
                            .first()
                            .map(|d| d.settings.clone())
                            .unwrap_or_default();
                        for (k, v) in &c.settings.0 {
                            full.0.insert(k.clone(), v.clone());
                        }
                        c.settings = full;
                    }
                }
            }
            if s.has_role("Mailbox") && s.databases.is_empty() {
                // Setup names the first database "Mailbox Database <10 random digits>".
                s.databases.push(MailboxDatabase {
                    name: "Mailbox Database 1908128376".to_string(),
                    guid: new_guid(),
                });
            }
            if s.services.is_empty() {
                s.services = services::default_services();
            }
            for (i, svc) in s.services.iter_mut().enumerate() {
                if svc.state == Steady::Running && svc.started.is_none() {
                    svc.started = Some(booted);
                }
                if svc.pid == 0 {
                    svc.pid = services::pid_for(i, svc.restarts);
                }
            }
            s.registry.ensure_key(STORE_KEY);
            let setup = "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup";
            if s.registry.value(setup, "MsiProductMajor").is_none() {
                let (minor, build, rev) = match sp {
                    Sp::Rtm => (0, 639, 21),
                    Sp::Sp1 => (1, 218, 15),
                    Sp::Sp2 => (2, 247, 5),
                    Sp::Sp3 => (3, 123, 4),
                };
                s.registry
                    .put(setup, "MsiProductMajor", RegValue::DWord(14));
                s.registry
                    .put(setup, "MsiProductMinor", RegValue::DWord(minor));
                s.registry
                    .put(setup, "MsiBuildMajor", RegValue::DWord(build));
                s.registry.put(setup, "MsiBuildMinor", RegValue::DWord(rev));
                s.registry.put(
                    setup,
                    "MsiInstallPath",
                    RegValue::String("C:\\Program Files\\Microsoft\\Exchange Server\\V14\\".into()),
                );
            }
            if s.store_limits.is_none() {
                s.store_limits = Some(s.registry_store_limits());
            }
            if s.imap_running.is_none()
                && s.service("MSExchangeIMAP4")
                    .is_some_and(|svc| svc.state == Steady::Running)
            {
                s.imap_running = Some(s.imap.clone());
            }
        }
        if !self.throttling_policies.iter().any(|p| p.is_default) {
            let suffix = new_guid();
            self.throttling_policies
                .insert(0, throttling::default_policy(self.sp, &suffix, now));
        }
        for p in &mut self.throttling_policies {
            p.values
                .normalize_all(throttling::TP_PROPS, "ThrottlingPolicy")?;
            p.created.get_or_insert(now);
            p.changed.get_or_insert(now);
        }
        if self.org_acl.is_none() {
            self.org_acl = Some(permissions::default_org_acl(&self.netbios));
        }
        let db = self.first_database();
        for m in &mut self.mailboxes {
            if m.name.is_empty() {
                m.name = m.alias.clone();
            }
            if m.display_name.is_empty() {
                m.display_name = m.name.clone();
            }
            if m.database.is_empty() {
                m.database = db.clone();
            }
        }
        self.reindex();
        Ok(())
    }

    fn first_database(&self) -> String {
        self.servers
            .iter()
            .flat_map(|s| s.databases.iter())
            .next()
            .map(|d| d.name.clone())
            .unwrap_or_default()
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, m) in self.mailboxes.iter().enumerate() {
            let keys = [
                m.alias.clone(),
                m.name.clone(),
                format!("{}@{}", m.alias, self.domain),
                format!("{}\\{}", self.netbios, m.alias),
                format!("{}/Users/{}", self.domain, m.name),
                self.mailbox_dn(m),
                m.guid.clone(),
            ];
            for k in keys {
                self.index.entry(k.to_ascii_lowercase()).or_insert(i);
            }
        }
    }

    /// The model's clock.
    pub fn clock(&self) -> &ClockRef {
        &self.clock
    }

    /// Replaces the clock (e.g. a scaled one after loading a state file).
    pub fn set_clock(&mut self, clock: ClockRef) {
        self.clock = clock;
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.clock.now()
    }

    // ----- identities ---------------------------------------------------------------

    fn config_root(&self) -> String {
        let dcs: Vec<String> = self.domain.split('.').map(|p| format!("DC={p}")).collect();
        format!(
            "CN={},CN=Microsoft Exchange,CN=Services,CN=Configuration,{}",
            self.org_name,
            dcs.join(",")
        )
    }

    fn domain_dn(&self) -> String {
        self.domain
            .split('.')
            .map(|p| format!("DC={p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn mailbox_dn(&self, m: &Mailbox) -> String {
        format!("CN={},CN=Users,{}", m.name, self.domain_dn())
    }

    fn legacy_dn(&self, m: &Mailbox) -> String {
        format!(
            "/o={}/ou={ADMIN_GROUP}/cn=Recipients/cn={}",
            self.org_name, m.alias
        )
    }

    fn server_dn(&self, s: &Server) -> String {
        format!(
            "CN={},CN=Servers,CN={ADMIN_GROUP},CN=Administrative Groups,{}",
            s.name,
            self.config_root()
        )
    }

    fn policy_dn(&self, p: &ThrottlingPolicy) -> String {
        format!("CN={},CN=Global Settings,{}", p.name, self.config_root())
    }

    fn not_found(&self, identity: &str) -> ExchangeError {
        ExchangeError::not_found(identity, &self.domain_controller)
    }

    fn server_index(&self, identity: Option<&str>) -> Result<usize, ExchangeError> {
        let Some(id) = identity.map(str::trim).filter(|s| !s.is_empty()) else {
            return self
                .servers
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(&self.host))
                .or(if self.servers.is_empty() {
                    None
                } else {
                    Some(0)
                })
                .ok_or_else(|| self.not_found(&self.host));
        };
        self.servers
            .iter()
            .position(|s| {
                s.name.eq_ignore_ascii_case(id)
                    || s.fqdn.eq_ignore_ascii_case(id)
                    || self.server_dn(s).eq_ignore_ascii_case(id)
            })
            .ok_or_else(|| self.not_found(id))
    }

    fn host_index(&self) -> Result<usize, ExchangeError> {
        self.server_index(None)
    }

    fn mailbox_index(&self, identity: &str) -> Result<usize, ExchangeError> {
        self.index
            .get(&identity.trim().to_ascii_lowercase())
            .copied()
            .ok_or_else(|| self.not_found(identity))
    }

    fn policy_index(&self, identity: &str) -> Result<usize, ExchangeError> {
        let id = identity.trim();
        self.throttling_policies
            .iter()
            .position(|p| {
                p.name.eq_ignore_ascii_case(id)
                    || p.guid.eq_ignore_ascii_case(id)
                    || self.policy_dn(p).eq_ignore_ascii_case(id)
            })
            .ok_or_else(|| self.not_found(id))
    }

    fn default_policy(&self) -> Option<&ThrottlingPolicy> {
        self.throttling_policies.iter().find(|p| p.is_default)
    }

    /// Common AD properties at the end of Exchange objects.
    fn ad_tail(
        &self,
        o: &mut SimObject,
        name: &str,
        dn: &str,
        guid: &str,
        category: &str,
        classes: &[&str],
    ) {
        // Objects keep their install time until something changes them (callers that
        // track changes replace WhenChanged).
        let now = SimValue::DateTime(self.installed.unwrap_or_else(|| self.now()));
        o.push("AdminDisplayName", SimValue::Null);
        o.push("ExchangeVersion", SimValue::str(self.sp.object_version()));
        o.push("Name", SimValue::str(name));
        o.push("DistinguishedName", SimValue::str(dn));
        o.push("Guid", SimValue::str(guid));
        o.push(
            "ObjectCategory",
            SimValue::String(format!("{}/Configuration/Schema/{category}", self.domain)),
        );
        o.push("ObjectClass", SimValue::strings(classes.iter().copied()));
        o.push("WhenChanged", now.clone());
        o.push("WhenCreated", now.clone());
        o.push("WhenChangedUTC", now.clone());
        o.push("WhenCreatedUTC", now);
        o.push("OrganizationId", SimValue::Null);
        o.push("OriginatingServer", SimValue::str(&self.domain_controller));
        o.push("IsValid", true);
    }

    // ----- time ---------------------------------------------------------------------

    /// Applies every restart moment that has passed (see `services`).
    pub fn settle(&mut self) {
        let now = self.now();
        let mut started: Vec<(usize, String)> = Vec::new();
        for (si, server) in self.servers.iter_mut().enumerate() {
            for (i, svc) in server.services.iter_mut().enumerate() {
                let Some(mut t) = svc.transition else {
                    continue;
                };
                if !t.stop_applied && now >= t.stop_done {
                    t.stop_applied = true;
                    svc.state = Steady::Stopped;
                }
                match t.start_done {
                    Some(done) if now >= done => {
                        svc.state = Steady::Running;
                        svc.transition = None;
                        svc.started = Some(done);
                        // A started service is a new process.
                        svc.pid = services::pid_for(i, svc.restarts);
                        started.push((si, svc.name.clone()));
                        continue;
                    }
                    None if t.stop_applied => {
                        svc.transition = None;
                        continue;
                    }
                    _ => {}
                }
                svc.transition = Some(t);
            }
            // A stopped IMAP4 service has no settings loaded.
            if server
                .service("MSExchangeIMAP4")
                .is_some_and(|s| s.state == Steady::Stopped && s.transition.is_none())
            {
                server.imap_running = None;
            }
        }
        for (si, name) in started {
            self.on_started(si, &name);
        }
    }

    fn on_started(&mut self, si: usize, name: &str) {
        let Some(server) = self.servers.get_mut(si) else {
            return;
        };
        if name.eq_ignore_ascii_case("MSExchangeIMAP4") {
            server.imap_running = Some(server.imap.clone());
            let key = server.name.to_ascii_lowercase();
            self.runtime.policy_cache.retain(|(s, _), _| s != &key);
        } else if name.eq_ignore_ascii_case("MSExchangeIS") {
            server.store_limits = Some(server.registry_store_limits());
        }
    }

    /// Makes existing IMAP connections of a server drop.
    fn drop_imap_connections(&mut self, server: &str) {
        let key = server.to_ascii_lowercase();
        *self.runtime.imap_epoch.entry(key.clone()).or_default() += 1;
        self.runtime.conns.retain(|_, c| c.server != key);
    }

    fn on_stopping(&mut self, si: usize, name: &str) {
        if name.eq_ignore_ascii_case("MSExchangeIMAP4") {
            if let Some(s) = self.servers.get(si) {
                let n = s.name.clone();
                self.drop_imap_connections(&n);
            }
        } else if name.eq_ignore_ascii_case("MSExchangeIS") {
            // The store's sessions end with it; IMAP sessions over them break, and
            // clients must reconnect.
            let names: Vec<String> = self.servers.iter().map(|s| s.name.clone()).collect();
            for n in names {
                self.drop_imap_connections(&n);
            }
        }
    }

    // ----- services -----------------------------------------------------------------

    fn no_service(name: &str, class: &str) -> ExchangeError {
        ExchangeError::new(
            format!("Cannot find any service with service name '{name}'."),
            ErrorCategory::ObjectNotFound,
            "ServiceCommandException",
            format!("NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{class}"),
        )
        .with_target(name)
    }

    /// Get-Service [-Name] (wildcards allowed) on the host.
    pub fn get_service(&mut self, names: &[String]) -> Result<Vec<SimObject>, ExchangeError> {
        self.settle();
        let now = self.now();
        let si = self.host_index()?;
        let server = self
            .servers
            .get(si)
            .ok_or_else(|| self.not_found(&self.host))?;
        let mut out = Vec::new();
        let patterns: Vec<String> = if names.is_empty() {
            vec!["*".to_string()]
        } else {
            names.to_vec()
        };
        for pat in &patterns {
            let matching: Vec<&Service> = server
                .services
                .iter()
                .filter(|s| glob(pat, &s.name) || glob(pat, &s.display_name))
                .collect();
            if matching.is_empty() && !pat.contains(['*', '?']) {
                return Err(Self::no_service(pat, "GetServiceCommand"));
            }
            for s in matching {
                out.push(s.to_object(now, &server.dependents(&s.name)));
            }
        }
        Ok(out)
    }

    /// `Get-Service -Name X -DependentServices`: the services that depend on X (once
    /// each, in the host's order), as ServiceController objects.
    pub fn get_dependent_services(
        &mut self,
        names: &[String],
    ) -> Result<Vec<SimObject>, ExchangeError> {
        let wanted: Vec<String> = self
            .get_service(names)?
            .iter()
            .filter_map(|o| o.get("Name").map(|v| v.to_text()))
            .collect();
        let now = self.now();
        let si = self.host_index()?;
        let Some(server) = self.servers.get(si) else {
            return Ok(Vec::new());
        };
        let mut dependents: Vec<String> = Vec::new();
        for w in &wanted {
            for d in server.dependents(w) {
                if !dependents.iter().any(|x| x.eq_ignore_ascii_case(&d)) {
                    dependents.push(d);
                }
            }
        }
        Ok(server
            .services
            .iter()
            .filter(|s| dependents.iter().any(|d| d.eq_ignore_ascii_case(&s.name)))
            .map(|s| s.to_object(now, &server.dependents(&s.name)))
            .collect())
    }

    /// The status of a host service now (for tests and the IMAP listener).
    pub fn service_status(&mut self, server: &str, name: &str) -> Option<Status> {
        self.settle();
        let now = self.now();
        let si = self.server_index(Some(server)).ok()?;
        self.servers.get(si)?.service(name).map(|s| s.status(now))
    }

    fn dependents_error(svc: &Service, class: &str) -> ExchangeError {
        ExchangeError::new(
            format!(
                "Cannot stop service '{} ({})' because it has dependent services. It can only be stopped if the Force flag is set.",
                svc.display_name, svc.name
            ),
            ErrorCategory::InvalidOperation,
            "ServiceCommandException",
            format!("ServiceHasDependentServices,Microsoft.PowerShell.Commands.{class}"),
        )
        .with_target(svc.name.clone())
    }

    /// Restart-Service -Name [-Force] on the host (or `server`). Returns when the
    /// service (and the dependents restarted with it) will be Running: Restart-Service
    /// returns only then, so the binding layer waits until that simulated time.
    pub fn restart_service(
        &mut self,
        server: Option<&str>,
        name: &str,
        force: bool,
    ) -> Result<SimTime, ExchangeError> {
        self.stop_or_restart(server, name, force, true)
    }

    /// Stop-Service -Name [-Force]: returns when it will be Stopped.
    pub fn stop_service(
        &mut self,
        server: Option<&str>,
        name: &str,
        force: bool,
    ) -> Result<SimTime, ExchangeError> {
        self.stop_or_restart(server, name, force, false)
    }

    fn stop_or_restart(
        &mut self,
        server: Option<&str>,
        name: &str,
        force: bool,
        restart: bool,
    ) -> Result<SimTime, ExchangeError> {
        self.settle();
        let now = self.now();
        let class = if restart {
            "RestartServiceCommand"
        } else {
            "StopServiceCommand"
        };
        let si = self.server_index(server)?;
        let srv = self.servers.get(si).ok_or_else(|| self.not_found(name))?;
        let svc = srv
            .service(name)
            .ok_or_else(|| Self::no_service(name, class))?
            .clone();
        if svc.transition.is_some() {
            return Err(ExchangeError::new(
                format!(
                    "Service '{} ({})' cannot be stopped due to the following error: Cannot stop {} service on computer '.'.",
                    svc.display_name, svc.name, svc.name
                ),
                ErrorCategory::InvalidOperation,
                "ServiceCommandException",
                format!("CouldNotStopService,Microsoft.PowerShell.Commands.{class}"),
            ));
        }
        let running_dependents: Vec<String> = srv
            .dependents(&svc.name)
            .into_iter()
            .filter(|d| {
                srv.service(d)
                    .is_some_and(|s| s.status(now) == Status::Running)
            })
            .collect();
        if !running_dependents.is_empty() && !force {
            return Err(Self::dependents_error(&svc, class));
        }
        if !restart && svc.state == Steady::Stopped {
            return Ok(now);
        }
        let Some(srv) = self.servers.get_mut(si) else {
            return Ok(now);
        };
        let mut done = now;
        if let Some(s) = srv.service_mut(&svc.name) {
            done = if restart {
                s.restarts += 1;
                s.begin_restart(now)
            } else {
                s.begin_stop(now)
            };
        }
        let main_done = done;
        for d in &running_dependents {
            if let Some(s) = srv.service_mut(d) {
                let stop_done = now.plus(s.timing.stop());
                let start_done = restart.then(|| main_done.plus(s.timing.start()));
                if restart {
                    s.restarts += 1;
                }
                s.transition = Some(services::Transition {
                    began: now,
                    stop_done,
                    start_done,
                    stop_applied: false,
                });
                done = done.max(start_done.unwrap_or(stop_done));
            }
        }
        if svc.state == Steady::Running {
            self.on_stopping(si, &svc.name);
        }
        Ok(done)
    }

    /// Set-Service -Name -StartupType Automatic|Manual|Disabled (PowerShell 2.0's names).
    pub fn set_service_startup(&mut self, name: &str, startup: &str) -> Result<(), ExchangeError> {
        self.settle();
        let start_type = match startup.trim().to_ascii_lowercase().as_str() {
            "automatic" => services::StartType::Automatic,
            "manual" => services::StartType::Manual,
            "disabled" => services::StartType::Disabled,
            _ => {
                return Err(ExchangeError::new(
                    format!(
                        "Cannot bind parameter 'StartupType'. Cannot convert value \"{startup}\" to type \"System.ServiceProcess.ServiceStartMode\" due to invalid enumeration values. Specify one of the following enumeration values and try again. The possible enumeration values are \"Automatic, Manual, Disabled\"."
                    ),
                    ErrorCategory::InvalidArgument,
                    "ParameterBindingException",
                    "CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.SetServiceCommand",
                ));
            }
        };
        let si = self.server_index(None)?;
        let srv = self
            .servers
            .get_mut(si)
            .ok_or_else(|| ExchangeError::not_found(name, ""))?;
        let svc = srv
            .service_mut(name)
            .ok_or_else(|| Self::no_service(name, "SetServiceCommand"))?;
        svc.start_type = start_type;
        Ok(())
    }

    /// Start-Service -Name: returns when it will be Running (now if it already runs).
    pub fn start_service(
        &mut self,
        server: Option<&str>,
        name: &str,
    ) -> Result<SimTime, ExchangeError> {
        self.settle();
        let now = self.now();
        let si = self.server_index(server)?;
        let srv = self
            .servers
            .get_mut(si)
            .ok_or_else(|| ExchangeError::not_found(name, ""))?;
        let svc = srv
            .service_mut(name)
            .ok_or_else(|| Self::no_service(name, "StartServiceCommand"))?;
        if svc.start_type == services::StartType::Disabled {
            return Err(ExchangeError::new(
                format!(
                    "Service '{} ({})' cannot be started due to the following error: Cannot start service {} on computer '.'.",
                    svc.display_name, svc.name, svc.name
                ),
                ErrorCategory::InvalidOperation,
                "ServiceCommandException",
                "CouldNotStartService,Microsoft.PowerShell.Commands.StartServiceCommand",
            ));
        }
        match (svc.state, svc.transition) {
            (Steady::Running, None) => Ok(now),
            (_, Some(t)) => Ok(t.start_done.unwrap_or(t.stop_done)),
            (Steady::Stopped, None) => {
                // A stop and a start of a service that had run is a restart too (what a
                // ServiceController's Stop() and Start() do); its process is a new one.
                if svc.started.is_some() {
                    svc.restarts += 1;
                }
                Ok(svc.begin_start(now))
            }
        }
    }

    /// `Get-WmiObject -Class Win32_Service [-Filter "Prop='value'"]` on the host: the
    /// services whose property `Prop` equals `value` (case-insensitively, as WQL
    /// compares strings), or all of them.
    pub fn get_wmi_services(
        &mut self,
        filter: Option<(&str, &str)>,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        self.settle();
        let now = self.now();
        let si = self.host_index()?;
        let s = self
            .servers
            .get(si)
            .ok_or_else(|| self.not_found(&self.host))?;
        Ok(s.services
            .iter()
            .map(|svc| svc.to_wmi_object(now, &s.name))
            .filter(|o| {
                filter.is_none_or(|(prop, value)| {
                    o.get(prop)
                        .is_some_and(|v| v.to_text().eq_ignore_ascii_case(value))
                })
            })
            .collect())
    }

    /// `Get-Process -Id n` / `-Name x` on the host: the processes of running services.
    pub fn get_process(
        &mut self,
        ids: &[i64],
        names: &[String],
    ) -> Result<Vec<SimObject>, ExchangeError> {
        self.settle();
        let now = self.now();
        let si = self.host_index()?;
        let s = self
            .servers
            .get(si)
            .ok_or_else(|| self.not_found(&self.host))?;
        let running: Vec<SimObject> = s
            .services
            .iter()
            .filter_map(|svc| svc.to_process_object(now))
            .collect();
        let mut out = Vec::new();
        for id in ids {
            match running
                .iter()
                .find(|o| o.get("Id").and_then(SimValue::as_i64) == Some(*id))
            {
                Some(o) => out.push(o.clone()),
                None => {
                    return Err(ExchangeError::new(
                        format!("Cannot find a process with the process identifier {id}."),
                        ErrorCategory::ObjectNotFound,
                        "ProcessCommandException",
                        "NoProcessFoundForGivenId,Microsoft.PowerShell.Commands.GetProcessCommand",
                    )
                    .with_target(id.to_string()));
                }
            }
        }
        for name in names {
            let hits: Vec<&SimObject> = running
                .iter()
                .filter(|o| glob(name, &o.text("ProcessName")))
                .collect();
            if hits.is_empty() && !name.contains(['*', '?']) {
                return Err(ExchangeError::new(
                    format!("Cannot find a process with the name \"{name}\". Verify the process name and call the cmdlet again."),
                    ErrorCategory::ObjectNotFound,
                    "ProcessCommandException",
                    "NoProcessFoundForGivenName,Microsoft.PowerShell.Commands.GetProcessCommand",
                )
                .with_target(name.clone()));
            }
            out.extend(hits.into_iter().cloned());
        }
        if ids.is_empty() && names.is_empty() {
            out = running;
        }
        Ok(out)
    }

    /// `Get-MailboxDatabaseCopyStatus [-Identity] [-Server]`: one copy per database (the
    /// model has no DAG), `Mounted` while the store serves, `Dismounted` otherwise.
    pub fn get_mailbox_database_copy_status(
        &mut self,
        identity: Option<&str>,
        server: Option<&str>,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        self.settle();
        let now = self.now();
        let servers: Vec<usize> = match server {
            Some(s) => vec![self.server_index(Some(s))?],
            None => vec![self.host_index()?],
        };
        let mut out = Vec::new();
        for si in servers {
            let Some(s) = self.servers.get(si) else {
                continue;
            };
            let mounted = s
                .service("MSExchangeIS")
                .is_some_and(|svc| svc.is_serving(now));
            for db in &s.databases {
                let name = format!("{}\\{}", db.name, s.name);
                if let Some(id) = identity
                    && !db.name.eq_ignore_ascii_case(id.trim())
                    && !name.eq_ignore_ascii_case(id.trim())
                {
                    continue;
                }
                out.push(
                    SimObject::new(
                        "Microsoft.Exchange.Management.SystemConfigurationTasks.DatabaseCopyStatusEntry",
                    )
                    .with("Name", SimValue::String(name.clone()))
                    .with("Id", SimValue::String(name.clone()))
                    .with("Identity", SimValue::String(name))
                    .with("DatabaseName", SimValue::str(&db.name))
                    .with(
                        "Status",
                        SimValue::str(if mounted { "Mounted" } else { "Dismounted" }),
                    )
                    .with("MailboxServer", SimValue::str(&s.name))
                    .with("ActiveDatabaseCopy", SimValue::String(s.name.to_ascii_lowercase()))
                    .with("ActivationSuspended", false)
                    .with("CopyQueueLength", SimValue::Long(0))
                    .with("ReplayQueueLength", SimValue::Long(0))
                    .with("ContentIndexState", SimValue::str("Healthy")),
                );
            }
        }
        if out.is_empty()
            && let Some(id) = identity
        {
            return Err(self.not_found(id));
        }
        Ok(out)
    }

    // ----- Exchange servers and databases --------------------------------------------

    /// Get-ExchangeServer [-Identity].
    pub fn get_exchange_server(
        &mut self,
        identity: Option<&str>,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        let idx: Vec<usize> = match identity {
            Some(id) => vec![self.server_index(Some(id))?],
            None => (0..self.servers.len()).collect(),
        };
        let mut out = Vec::new();
        for i in idx {
            let Some(s) = self.servers.get(i) else {
                continue;
            };
            let mut o =
                SimObject::new("Microsoft.Exchange.Data.Directory.Management.ExchangeServer")
                    .with("Name", SimValue::str(&s.name))
                    .with("Fqdn", SimValue::str(&s.fqdn))
                    .with("Edition", SimValue::str(&s.edition))
                    .with(
                        "AdminDisplayVersion",
                        SimValue::str(self.sp.admin_display_version()),
                    )
                    .with("ServerRole", SimValue::String(s.roles.join(", ")))
                    .with("IsMailboxServer", s.has_role("Mailbox"))
                    .with("IsClientAccessServer", s.has_role("ClientAccess"))
                    .with("IsHubTransportServer", s.has_role("HubTransport"))
                    .with("IsEdgeServer", s.has_role("Edge"))
                    .with("IsExchange2007OrLater", true)
                    .with("Domain", SimValue::str(&self.domain))
                    .with(
                        "Site",
                        SimValue::String(format!(
                            "{}/Configuration/Sites/Default-First-Site-Name",
                            self.domain
                        )),
                    )
                    .with("Identity", SimValue::str(&s.name));
            o.properties.retain(|(n, _)| n != "Name");
            let dn = self.server_dn(s);
            self.ad_tail(
                &mut o,
                &s.name,
                &dn,
                &s.guid,
                "ms-Exch-Exchange-Server",
                &["top", "server", "msExchExchangeServer"],
            );
            out.push(o);
        }
        Ok(out)
    }

    /// Get-MailboxDatabase [-Identity] [-Server] [-Status]: `Mounted` is `$null`
    /// without `-Status`, as in Exchange; with it, False while the store is not running
    /// (during an MSExchangeIS restart too).
    pub fn get_mailbox_database(
        &mut self,
        identity: Option<&str>,
        server: Option<&str>,
        status: bool,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        self.settle();
        let now = self.now();
        let servers: Vec<usize> = match server {
            Some(s) => vec![self.server_index(Some(s))?],
            None => (0..self.servers.len()).collect(),
        };
        let mut out = Vec::new();
        for si in servers {
            let Some(s) = self.servers.get(si) else {
                continue;
            };
            let mounted = s
                .service("MSExchangeIS")
                .is_some_and(|svc| svc.is_serving(now));
            for db in &s.databases {
                if let Some(id) = identity
                    && !db.name.eq_ignore_ascii_case(id.trim())
                    && !db.guid.eq_ignore_ascii_case(id.trim())
                {
                    continue;
                }
                let dn = format!(
                    "CN={},CN=Databases,CN={ADMIN_GROUP},CN=Administrative Groups,{}",
                    db.name,
                    self.config_root()
                );
                let mut o = SimObject::new(
                    "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase",
                )
                .with("Server", SimValue::str(&s.name))
                .with("MasterServerOrAvailabilityGroup", SimValue::str(&s.name))
                .with("Recovery", false)
                // Exchange 2010 mounts a database when the store starts unless
                // Set-MailboxDatabase -MountAtStartup $false cleared it (the model's
                // databases all mount, so it is always true here).
                .with("MountAtStartup", true)
                .with(
                    "Mounted",
                    if status {
                        SimValue::Bool(mounted)
                    } else {
                        SimValue::Null
                    },
                )
                .with(
                    "EdbFilePath",
                    SimValue::String(format!(
                        "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\Mailbox\\{0}\\{0}.edb",
                        db.name
                    )),
                )
                .with(
                    "DatabaseCopies",
                    SimValue::strings([format!("{}\\{}", db.name, s.name)]),
                )
                .with("Identity", SimValue::str(&db.name));
                self.ad_tail(
                    &mut o,
                    &db.name,
                    &dn,
                    &db.guid,
                    "ms-Exch-Private-MDB",
                    &["top", "msExchMDB", "msExchPrivateMDB"],
                );
                out.push(o);
            }
        }
        if out.is_empty()
            && let Some(id) = identity
        {
            return Err(self.not_found(id));
        }
        Ok(out)
    }

    // ----- IMAP settings --------------------------------------------------------------

    fn imap_server(&self, server: Option<&str>) -> Result<usize, ExchangeError> {
        let si = self.server_index(server)?;
        match self.servers.get(si) {
            Some(s) if s.has_role("ClientAccess") => Ok(si),
            Some(s) => Err(self.not_found(&format!("{}\\1", s.name))),
            None => Err(self.not_found(server.unwrap_or(&self.host))),
        }
    }

    /// The settings object of a protocol service (`IMAP4`/`IMAP`, `POP3`/`POP`): what
    /// Get-ImapSettings and Get-PopSettings show, with the AD tail of the object under
    /// `CN=<protocol>,CN=Protocols` of the server.
    fn protocol_object(&self, s: &Server, p: &Protocol) -> SimObject {
        let (protocol, short) = (p.name, p.short);
        let (bag, changed) = (p.configured)(s);
        let mut o = SimObject::new(&format!(
            "Microsoft.Exchange.Data.Directory.SystemConfiguration.{}AdConfiguration",
            p.class
        ))
        .with("ProtocolName", SimValue::str(protocol))
        .with("Name", SimValue::str("1"));
        o.properties.extend(bag.shown(p.props, self.sp));
        o.push("Server", SimValue::str(&s.name));
        let identity = format!("{}\\1", s.name);
        o.push("Identity", SimValue::String(identity));
        let dn = format!("CN=1,CN={protocol},CN=Protocols,{}", self.server_dn(s));
        let guid = s.guid.clone();
        let cfg = format!("protocolCfg{short}");
        let server_cfg = format!("protocolCfg{short}Server");
        // "Name" already shown first, as Get-ImapSettings does; keep the AD tail's.
        self.ad_tail(
            &mut o,
            "1",
            &dn,
            &guid,
            &format!("ms-Exch-Protocol-Cfg-{short}-Server"),
            &["top", "protocolCfg", &cfg, &server_cfg],
        );
        let mut seen_name = false;
        o.properties.retain(|(n, _)| {
            if n == "Name" {
                if seen_name {
                    return false;
                }
                seen_name = true;
            }
            true
        });
        if let Some(changed) = changed {
            for (n, v) in &mut o.properties {
                if n == "WhenChanged" || n == "WhenChangedUTC" {
                    *v = SimValue::DateTime(changed);
                }
            }
        }
        o
    }

    /// Get-ImapSettings [-Server]: the configured settings.
    pub fn get_imap_settings(&mut self, server: Option<&str>) -> Result<SimObject, ExchangeError> {
        self.get_protocol_settings(&protocol_settings::IMAP4, server)
    }

    /// `Set-ImapSettings [-Server] -<Param> <value>...`: see [`Self::set_protocol_settings`].
    pub fn set_imap_settings(
        &mut self,
        server: Option<&str>,
        params: &[(String, SimValue)],
    ) -> Result<Vec<String>, ExchangeError> {
        self.set_protocol_settings(&protocol_settings::IMAP4, server, params)
    }

    /// Get-ImapSettings, Get-PopSettings [-Server]: the configured settings of servers
    /// with the Client Access role.
    pub fn get_protocol_settings(
        &mut self,
        p: &Protocol,
        server: Option<&str>,
    ) -> Result<SimObject, ExchangeError> {
        let si = self.imap_server(server)?;
        let s = self
            .servers
            .get(si)
            .ok_or_else(|| self.not_found(&self.host))?;
        Ok(self.protocol_object(s, p))
    }

    /// `Set-ImapSettings`, `Set-PopSettings [-Server] -<Param> <value>...`: validated as a
    /// whole, then saved; a warning when nothing changed (Exchange's text).
    pub fn set_protocol_settings(
        &mut self,
        p: &Protocol,
        server: Option<&str>,
        params: &[(String, SimValue)],
    ) -> Result<Vec<String>, ExchangeError> {
        let si = self.imap_server(server)?;
        let sp = self.sp;
        let now = self.now();
        let s = self
            .servers
            .get_mut(si)
            .ok_or_else(|| ExchangeError::not_found("", ""))?;
        let mut next = (p.configured)(s).0.clone();
        for (name, value) in params {
            let d = props::find(p.props, name, sp)
                .ok_or_else(|| ExchangeError::parameter_not_found(name, p.set))?;
            next.set(d, props::normalize(d, value, p.set)?);
        }
        let id = format!("{}\\1", s.name);
        let (bag, changed) = (p.configured_mut)(s);
        if next == *bag {
            return Ok(vec![no_change_warning(&id)]);
        }
        *bag = next;
        *changed = Some(now);
        Ok(Vec::new())
    }

    /// The limits the running IMAP4 service enforces (`None` when it is not running).
    pub fn effective_imap_limits(&mut self, server: Option<&str>) -> Option<ImapLimits> {
        self.settle();
        let si = self.imap_server(server).ok()?;
        let now = self.now();
        let s = self.servers.get(si)?;
        if !s.service("MSExchangeIMAP4")?.is_serving(now) {
            return None;
        }
        s.imap_running.as_ref().map(ImapLimits::from_bag)
    }

    /// The store limits MSExchangeIS runs with.
    pub fn effective_store_limits(&mut self, server: Option<&str>) -> Option<StoreLimits> {
        self.settle();
        let si = self.server_index(server).ok()?;
        self.servers.get(si)?.store_limits
    }

    // ----- receive connectors ---------------------------------------------------------

    fn connector_object(&self, s: &Server, c: &ReceiveConnector) -> SimObject {
        let mut o = SimObject::new(
            "Microsoft.Exchange.Data.Directory.SystemConfiguration.ReceiveConnector",
        );
        o.properties
            .extend(c.settings.shown(connector::RC_PROPS, self.sp));
        o.push("Server", SimValue::str(&s.name));
        o.push("TransportRole", SimValue::str("HubTransport"));
        let identity = format!("{}\\{}", s.name, c.name);
        o.push("Identity", SimValue::String(identity));
        let dn = format!(
            "CN={},CN=SMTP Receive Connectors,CN=Protocols,{}",
            c.name,
            self.server_dn(s)
        );
        self.ad_tail(
            &mut o,
            &c.name,
            &dn,
            &c.guid,
            "ms-Exch-Smtp-Receive-Connector",
            &["top", "msExchSmtpReceiveConnector"],
        );
        if let Some(changed) = c.changed {
            for (n, v) in &mut o.properties {
                if n == "WhenChanged" || n == "WhenChangedUTC" {
                    *v = SimValue::DateTime(changed);
                }
            }
        }
        o
    }

    fn find_connector(&self, identity: &str) -> Result<(usize, usize), ExchangeError> {
        let id = identity.trim();
        let (server, name) = match id.split_once('\\') {
            Some((s, n)) => (Some(s), n),
            None => (None, id),
        };
        let mut hits = Vec::new();
        for (si, s) in self.servers.iter().enumerate() {
            if let Some(sv) = server
                && !s.name.eq_ignore_ascii_case(sv)
            {
                continue;
            }
            for (ci, c) in s.connectors.iter().enumerate() {
                if c.name.eq_ignore_ascii_case(name) || c.guid.eq_ignore_ascii_case(name) {
                    hits.push((si, ci));
                }
            }
        }
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(self.not_found(id)),
            _ => Err(ExchangeError::ambiguous(id)),
        }
    }

    /// Get-ReceiveConnector [-Identity] [-Server].
    pub fn get_receive_connector(
        &mut self,
        identity: Option<&str>,
        server: Option<&str>,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        if let Some(id) = identity {
            let (si, ci) = self.find_connector(id)?;
            let s = self.servers.get(si).ok_or_else(|| self.not_found(id))?;
            let c = s.connectors.get(ci).ok_or_else(|| self.not_found(id))?;
            return Ok(vec![self.connector_object(s, c)]);
        }
        let servers: Vec<usize> = match server {
            Some(s) => vec![self.server_index(Some(s))?],
            None => (0..self.servers.len()).collect(),
        };
        let mut out = Vec::new();
        for si in servers {
            if let Some(s) = self.servers.get(si) {
                for c in &s.connectors {
                    out.push(self.connector_object(s, c));
                }
            }
        }
        Ok(out)
    }

    /// Set-ReceiveConnector -Identity -<Param> <value>... (`Name` renames).
    pub fn set_receive_connector(
        &mut self,
        identity: &str,
        params: &[(String, SimValue)],
    ) -> Result<Vec<String>, ExchangeError> {
        let (si, ci) = self.find_connector(identity)?;
        let sp = self.sp;
        let now = self.now();
        let taken: Vec<String> = self
            .servers
            .get(si)
            .map(|s| {
                s.connectors
                    .iter()
                    .map(|c| c.name.to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let s = self
            .servers
            .get_mut(si)
            .ok_or_else(|| ExchangeError::not_found(identity, ""))?;
        let server_name = s.name.clone();
        let c = s
            .connectors
            .get_mut(ci)
            .ok_or_else(|| ExchangeError::not_found(identity, ""))?;
        let mut next = c.clone();
        for (name, value) in params {
            if name.eq_ignore_ascii_case("Name") {
                let new_name = value.to_text();
                if new_name.trim().is_empty() {
                    return Err(ExchangeError::invalid_value(
                        "The Name property can't be empty.",
                    ));
                }
                if !new_name.eq_ignore_ascii_case(&c.name)
                    && taken.contains(&new_name.to_ascii_lowercase())
                {
                    return Err(ExchangeError::invalid_value(format!(
                        "A receive connector with the name '{new_name}' already exists on server '{server_name}'."
                    )));
                }
                next.name = new_name;
                continue;
            }
            let d = props::find(connector::RC_PROPS, name, sp)
                .ok_or_else(|| ExchangeError::parameter_not_found(name, "Set-ReceiveConnector"))?;
            next.settings
                .set(d, props::normalize(d, value, "Set-ReceiveConnector")?);
        }
        connector::validate(&next.settings)?;
        if next == *c {
            return Ok(vec![no_change_warning(&format!(
                "{server_name}\\{}",
                c.name
            ))]);
        }
        next.changed = Some(now);
        *c = next;
        Ok(Vec::new())
    }

    // ----- throttling policies --------------------------------------------------------

    fn policy_object(&self, p: &ThrottlingPolicy) -> SimObject {
        let mut o = SimObject::new("Microsoft.Exchange.Data.Directory.Management.ThrottlingPolicy")
            .with("IsDefault", p.is_default);
        o.properties
            .extend(p.values.shown(throttling::TP_PROPS, self.sp));
        // A value that is not set shows blank, like an explicit $null (module docs).
        let dn = self.policy_dn(p);
        o.push("Identity", SimValue::str(&p.name));
        self.ad_tail(
            &mut o,
            &p.name,
            &dn,
            &p.guid,
            "ms-Exch-Throttling-Policy",
            &["top", "msExchGenericPolicy", "msExchThrottlingPolicy"],
        );
        for (n, v) in &mut o.properties {
            if n == "WhenChanged" || n == "WhenChangedUTC" {
                *v = SimValue::DateTime(p.changed.unwrap_or(SimTime(0)));
            } else if n == "WhenCreated" || n == "WhenCreatedUTC" {
                *v = SimValue::DateTime(p.created.unwrap_or(SimTime(0)));
            }
        }
        o
    }

    /// Get-ThrottlingPolicy [-Identity].
    pub fn get_throttling_policy(
        &mut self,
        identity: Option<&str>,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        match identity {
            Some(id) => {
                let i = self.policy_index(id)?;
                let p = self
                    .throttling_policies
                    .get(i)
                    .ok_or_else(|| self.not_found(id))?;
                Ok(vec![self.policy_object(p)])
            }
            None => Ok(self
                .throttling_policies
                .iter()
                .map(|p| self.policy_object(p))
                .collect()),
        }
    }

    fn apply_policy_params(
        &self,
        p: &mut ThrottlingPolicy,
        params: &[(String, SimValue)],
        cmdlet: &str,
    ) -> Result<(), ExchangeError> {
        for (name, value) in params {
            let d = props::find(throttling::TP_PROPS, name, self.sp)
                .filter(|d| {
                    cmdlet != "New-ThrottlingPolicy"
                        || !throttling::DEFAULT_ONLY
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(d.name))
                })
                .ok_or_else(|| ExchangeError::parameter_not_found(name, cmdlet))?;
            let v = props::normalize(d, value, cmdlet)?;
            // RTM help: EASMaxConcurrency 0–100 (technet dd298094(EXCHG.140)).
            if self.sp == Sp::Rtm
                && d.name == "EASMaxConcurrency"
                && v.as_i64().is_some_and(|n| n > 100)
            {
                return Err(ExchangeError::out_of_range(
                    d.name,
                    "0",
                    "100",
                    &v.to_text(),
                ));
            }
            if throttling::DEFAULT_ONLY.contains(&d.name) && !p.is_default {
                return Err(ExchangeError::invalid_value(format!(
                    "{} can only be set for the default throttling policy.",
                    d.name
                )));
            }
            p.values.set(d, v);
        }
        Ok(())
    }

    /// New-ThrottlingPolicy -Name [-<Param> <value>...]: unset values inherit.
    pub fn new_throttling_policy(
        &mut self,
        name: &str,
        params: &[(String, SimValue)],
    ) -> Result<SimObject, ExchangeError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ExchangeError::invalid_value(
                "The Name property can't be empty.",
            ));
        }
        let now = self.now();
        let mut p = ThrottlingPolicy {
            name: name.to_string(),
            guid: new_guid(),
            is_default: false,
            values: Bag::default(),
            created: Some(now),
            changed: Some(now),
        };
        if self.policy_index(name).is_ok() {
            return Err(ExchangeError::new(
                format!(
                    "Active Directory operation failed on {}. The object '{}' already exists.",
                    self.domain_controller,
                    self.policy_dn(&p)
                ),
                ErrorCategory::NotSpecified,
                "ADObjectAlreadyExistsException",
                "",
            ));
        }
        self.apply_policy_params(&mut p, params, "New-ThrottlingPolicy")?;
        let o = self.policy_object(&p);
        self.throttling_policies.push(p);
        Ok(o)
    }

    /// Set-ThrottlingPolicy -Identity -<Param> <value>... (`$null` = unthrottled;
    /// `Name` renames, and the associations follow).
    pub fn set_throttling_policy(
        &mut self,
        identity: &str,
        params: &[(String, SimValue)],
    ) -> Result<Vec<String>, ExchangeError> {
        let i = self.policy_index(identity)?;
        let mut p = self
            .throttling_policies
            .get(i)
            .cloned()
            .ok_or_else(|| self.not_found(identity))?;
        let (names, values): (Vec<_>, Vec<_>) = params
            .iter()
            .cloned()
            .partition(|(n, _)| n.eq_ignore_ascii_case("Name"));
        self.apply_policy_params(&mut p, &values, "Set-ThrottlingPolicy")?;
        let old_name = p.name.clone();
        if let Some((_, v)) = names.last() {
            let new_name = v.to_text().trim().to_string();
            if new_name.is_empty() {
                return Err(ExchangeError::invalid_value(
                    "The Name property can't be empty.",
                ));
            }
            if !new_name.eq_ignore_ascii_case(&old_name) && self.policy_index(&new_name).is_ok() {
                let mut other = p.clone();
                other.name = new_name;
                return Err(ExchangeError::new(
                    format!(
                        "Active Directory operation failed on {}. The object '{}' already exists.",
                        self.domain_controller,
                        self.policy_dn(&other)
                    ),
                    ErrorCategory::NotSpecified,
                    "ADObjectAlreadyExistsException",
                    "",
                ));
            }
            p.name = new_name;
        }
        if p.name != old_name {
            for m in &mut self.mailboxes {
                if m.throttling_policy
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(&old_name))
                {
                    m.throttling_policy = Some(p.name.clone());
                }
            }
        }
        let now = self.now();
        let slot = self
            .throttling_policies
            .get_mut(i)
            .ok_or_else(|| ExchangeError::not_found(identity, ""))?;
        if p.values == slot.values && p.name == slot.name {
            return Ok(vec![no_change_warning(&slot.name)]);
        }
        p.changed = Some(now);
        *slot = p;
        Ok(Vec::new())
    }

    /// Remove-ThrottlingPolicy -Identity: never the default policy, never one still
    /// associated with a mailbox.
    pub fn remove_throttling_policy(&mut self, identity: &str) -> Result<(), ExchangeError> {
        let i = self.policy_index(identity)?;
        let p = self
            .throttling_policies
            .get(i)
            .ok_or_else(|| self.not_found(identity))?;
        if p.is_default {
            // Reconstructed text: the help says "You can't remove the default client
            // throttling policy"; the exact error wording was not retrievable.
            return Err(ExchangeError::new(
                format!(
                    "Throttling policy \"{}\" can't be removed because it is the default throttling policy.",
                    self.policy_dn(p)
                ),
                ErrorCategory::InvalidOperation,
                "CannotRemoveDefaultThrottlingPolicyException",
                "",
            ));
        }
        let name = p.name.to_ascii_lowercase();
        if self.mailboxes.iter().any(|m| {
            m.throttling_policy
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&name))
        }) {
            // Verbatim from a real 2010 session (practical365.com), with its FQEID code.
            return Err(ExchangeError::new(
                format!(
                    "Throttling policy \"{}\" can't be removed because there are currently users associated with the policy. Reset the throttling policy for those users using Set-Mailbox, and then try again.",
                    self.policy_dn(p)
                ),
                ErrorCategory::InvalidOperation,
                "CannotRemoveAssociatedThrottlingPolicyException",
                error::exchange_fqid(
                    Some("1481B319"),
                    "",
                    "Microsoft.Exchange.Management.SystemConfigurationTasks.RemoveThrottlingPolicy",
                ),
            ));
        }
        self.throttling_policies.remove(i);
        Ok(())
    }

    /// The effective IMAPMaxConcurrency for a user right now (from the policy data,
    /// without the IMAP service's cache).
    pub fn imap_max_concurrency(&self, user: &str) -> Result<Effective, ExchangeError> {
        let m = self
            .mailboxes
            .get(self.mailbox_index(user)?)
            .ok_or_else(|| self.not_found(user))?;
        let own = m.throttling_policy.as_deref().and_then(|n| {
            self.throttling_policies
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(n))
        });
        Ok(throttling::effective(
            own,
            self.default_policy(),
            "IMAPMaxConcurrency",
        ))
    }

    // ----- mailboxes and associations ------------------------------------------------

    fn mailbox_object(&self, m: &Mailbox) -> SimObject {
        let server = self
            .servers
            .iter()
            .find(|s| s.databases.iter().any(|d| d.name == m.database))
            .map(|s| s.name.to_ascii_lowercase())
            .unwrap_or_default();
        let identity = format!("{}/Users/{}", self.domain, m.name);
        let smtp = format!("{}@{}", m.alias, self.domain);
        let mut o = SimObject::new("Microsoft.Exchange.Data.Directory.Management.Mailbox")
            .with("Database", SimValue::str(&m.database))
            .with(
                "ThrottlingPolicy",
                SimValue::opt_str(m.throttling_policy.as_deref()),
            )
            .with("ProhibitSendQuota", SimValue::str("unlimited"))
            .with("ServerName", SimValue::String(server))
            .with("SamAccountName", SimValue::str(&m.alias))
            .with("UserPrincipalName", SimValue::String(smtp.clone()))
            .with("Alias", SimValue::str(&m.alias))
            .with(
                "OrganizationalUnit",
                SimValue::String(format!("{}/Users", self.domain)),
            )
            .with("DisplayName", SimValue::str(&m.display_name))
            .with("LegacyExchangeDN", SimValue::String(self.legacy_dn(m)))
            .with("PrimarySmtpAddress", SimValue::String(smtp.clone()))
            .with("RecipientType", SimValue::str("UserMailbox"))
            .with("RecipientTypeDetails", SimValue::str("UserMailbox"))
            .with("WindowsEmailAddress", SimValue::String(smtp))
            .with("Identity", SimValue::String(identity));
        let dn = self.mailbox_dn(m);
        self.ad_tail(
            &mut o,
            &m.name,
            &dn,
            &m.guid,
            "Person",
            &["top", "person", "organizationalPerson", "user"],
        );
        if let Some(cat) = o.properties.iter_mut().find(|(n, _)| n == "ObjectCategory") {
            cat.1 = SimValue::String(format!("{}/Configuration/Schema/Person", self.domain));
        }
        o
    }

    /// Get-Mailbox [-Identity] [-ResultSize]: without an identity, the first 1000 unless
    /// `-ResultSize` says otherwise, with Exchange's warning when more exist.
    pub fn get_mailbox(
        &mut self,
        identity: Option<&str>,
        result_size: Option<value::Unlimited>,
    ) -> Result<(Vec<SimObject>, Vec<String>), ExchangeError> {
        if let Some(id) = identity {
            let i = self.mailbox_index(id)?;
            let m = self.mailboxes.get(i).ok_or_else(|| self.not_found(id))?;
            return Ok((vec![self.mailbox_object(m)], Vec::new()));
        }
        let limit = match result_size {
            Some(value::Unlimited::Unlimited) => usize::MAX,
            Some(value::Unlimited::Value(n)) => usize::try_from(n).unwrap_or(usize::MAX),
            None => 1000,
        };
        let out: Vec<SimObject> = self
            .mailboxes
            .iter()
            .take(limit)
            .map(|m| self.mailbox_object(m))
            .collect();
        let mut warnings = Vec::new();
        if self.mailboxes.len() > limit && result_size.is_none() {
            warnings.push("By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the number of items returned. To return all items, specify \"-ResultSize Unlimited\". Be aware that, depending on the actual number of items, returning all items can take a long time and consume a large amount of memory. Also, we don't recommend storing the results in a variable. Instead, pipe the results to another task or script to perform batch changes.".to_string());
        }
        Ok((out, warnings))
    }

    /// Sets a mailbox's policy association (`None` or `$null` clears it).
    fn associate(
        &mut self,
        identity: &str,
        policy: &SimValue,
    ) -> Result<Vec<String>, ExchangeError> {
        let i = self.mailbox_index(identity)?;
        let new = if policy.is_null() || policy.to_text().trim().is_empty() {
            None
        } else {
            let pi = self.policy_index(&policy.to_text())?;
            self.throttling_policies.get(pi).map(|p| p.name.clone())
        };
        let m = self
            .mailboxes
            .get_mut(i)
            .ok_or_else(|| ExchangeError::not_found(identity, ""))?;
        if m.throttling_policy == new {
            let id = format!("{}/Users/{}", self.domain, m.name);
            return Ok(vec![no_change_warning(&id)]);
        }
        m.throttling_policy = new;
        Ok(Vec::new())
    }

    /// Set-Mailbox -Identity -ThrottlingPolicy.
    pub fn set_mailbox(
        &mut self,
        identity: &str,
        params: &[(String, SimValue)],
    ) -> Result<Vec<String>, ExchangeError> {
        let i = self.mailbox_index(identity)?;
        let mut warnings = Vec::new();
        let mut changed = false;
        for (name, value) in params {
            if name.eq_ignore_ascii_case("ThrottlingPolicy") {
                let w = self.associate(identity, value)?;
                changed |= w.is_empty();
            } else if name.eq_ignore_ascii_case("DisplayName") {
                let text = value.to_text();
                if let Some(m) = self.mailboxes.get_mut(i)
                    && m.display_name != text
                {
                    m.display_name = text;
                    changed = true;
                }
            } else {
                return Err(ExchangeError::parameter_not_found(name, "Set-Mailbox"));
            }
        }
        if !changed && let Some(m) = self.mailboxes.get(i) {
            warnings.push(no_change_warning(&format!(
                "{}/Users/{}",
                self.domain, m.name
            )));
        }
        Ok(warnings)
    }

    /// Get-ThrottlingPolicyAssociation -Identity.
    pub fn get_throttling_policy_association(
        &mut self,
        identity: &str,
    ) -> Result<SimObject, ExchangeError> {
        let i = self.mailbox_index(identity)?;
        let m = self
            .mailboxes
            .get(i)
            .ok_or_else(|| self.not_found(identity))?;
        let id = format!("{}/Users/{}", self.domain, m.name);
        Ok(SimObject::new(
            "Microsoft.Exchange.Data.Directory.Management.ThrottlingPolicyAssociation",
        )
        .with("ObjectId", SimValue::String(id.clone()))
        .with(
            "ThrottlingPolicyId",
            SimValue::opt_str(m.throttling_policy.as_deref()),
        )
        .with("Name", SimValue::str(&m.name))
        .with("Identity", SimValue::String(id))
        .with("DistinguishedName", SimValue::String(self.mailbox_dn(m)))
        .with("Guid", SimValue::str(&m.guid))
        .with("IsValid", true))
    }

    /// Set-ThrottlingPolicyAssociation -Identity -ThrottlingPolicy.
    pub fn set_throttling_policy_association(
        &mut self,
        identity: &str,
        policy: &SimValue,
    ) -> Result<Vec<String>, ExchangeError> {
        self.associate(identity, policy)
    }

    // ----- organization config and AD permissions ---------------------------------------

    /// Get-OrganizationConfig.
    pub fn get_organization_config(&mut self) -> SimObject {
        let mut o =
            SimObject::new("Microsoft.Exchange.Data.Directory.Management.OrganizationConfig")
                .with("DefaultPublicFolderAgeLimit", SimValue::Null)
                .with("MailTipsAllTipsEnabled", true)
                .with("ReadTrackingEnabled", false)
                .with("ActivityBasedAuthenticationTimeoutEnabled", true)
                .with("Identity", SimValue::str(&self.org_name));
        let root = self.config_root();
        let guid = self
            .servers
            .first()
            .map(|s| s.guid.clone())
            .unwrap_or_default();
        self.ad_tail(
            &mut o,
            &self.org_name.clone(),
            &root,
            &guid,
            "ms-Exch-Organization-Container",
            &["top", "container", "msExchOrganizationContainer"],
        );
        o
    }

    /// The ACL target named by `identity`: the organization, a server, or a database.
    fn acl_target(&self, identity: &str) -> Result<AclTarget, ExchangeError> {
        let id = identity.trim();
        if id.eq_ignore_ascii_case(&self.org_name) || id.eq_ignore_ascii_case(&self.config_root()) {
            return Ok(AclTarget::Org);
        }
        if let Ok(si) = self.server_index(Some(id)) {
            return Ok(AclTarget::Server(si));
        }
        Err(self.not_found(id))
    }

    /// Resolves a security principal to `DOMAIN\name`.
    fn resolve_user(&self, user: &str) -> Result<String, ExchangeError> {
        let u = user.trim();
        if let Some(&i) = self.index.get(&u.to_ascii_lowercase())
            && let Some(m) = self.mailboxes.get(i)
        {
            return Ok(format!("{}\\{}", self.netbios, m.alias));
        }
        let wellknown = [
            "Exchange Servers",
            "Exchange Trusted Subsystem",
            "Exchange Windows Permissions",
            "Organization Management",
            "Domain Admins",
            "Enterprise Admins",
        ];
        let bare = u.rsplit_once('\\').map_or(u, |(_, n)| n);
        if let Some(w) = wellknown.iter().find(|w| w.eq_ignore_ascii_case(bare)) {
            return Ok(format!("{}\\{w}", self.netbios));
        }
        if let Some(p) = self.principals.iter().find(|p| {
            p.eq_ignore_ascii_case(u)
                || p.rsplit_once('\\')
                    .is_some_and(|(_, n)| n.eq_ignore_ascii_case(bare))
        }) {
            return Ok(p.clone());
        }
        Err(self.not_found(u))
    }

    fn acl_view(&self, target: AclTarget) -> (String, Vec<Ace>) {
        match target {
            AclTarget::Org => (
                self.org_name.clone(),
                self.org_acl.clone().unwrap_or_default(),
            ),
            AclTarget::Server(si) => {
                let Some(s) = self.servers.get(si) else {
                    return (String::new(), Vec::new());
                };
                let mut aces = s.acl.clone();
                // What the organization grants to all descendants shows here as inherited.
                for a in self.org_acl.iter().flatten() {
                    if a.inheritance_type == "All" || a.inheritance_type == "Descendents" {
                        let mut x = a.clone();
                        x.inherited = true;
                        aces.push(x);
                    }
                }
                (s.name.clone(), aces)
            }
        }
    }

    /// Get-ADPermission -Identity [-User].
    pub fn get_ad_permission(
        &mut self,
        identity: &str,
        user: Option<&str>,
    ) -> Result<Vec<SimObject>, ExchangeError> {
        let target = self.acl_target(identity)?;
        let user = user.map(|u| self.resolve_user(u)).transpose()?;
        let (shown_id, aces) = self.acl_view(target);
        Ok(aces
            .iter()
            .filter(|a| {
                user.as_deref()
                    .is_none_or(|u| a.user.eq_ignore_ascii_case(u))
            })
            .map(|a| a.to_object(&shown_id))
            .collect())
    }

    fn explicit_acl_mut(&mut self, target: AclTarget) -> Option<&mut Vec<Ace>> {
        match target {
            AclTarget::Org => self.org_acl.as_mut(),
            AclTarget::Server(si) => self.servers.get_mut(si).map(|s| &mut s.acl),
        }
    }

    /// Builds the entry an Add-/Remove-ADPermission describes.
    pub fn build_ace(
        &self,
        user: &str,
        access_rights: &[String],
        extended_rights: &[String],
        inheritance: Option<&str>,
        deny: bool,
    ) -> Result<Ace, ExchangeError> {
        let user = self.resolve_user(user)?;
        let mut ar: Vec<String> = Vec::new();
        for r in access_rights.iter().flat_map(|r| r.split(',')) {
            if r.trim().is_empty() {
                continue;
            }
            let name = permissions::access_right(r).ok_or_else(|| {
                ExchangeError::not_in_set(
                    "AccessRights",
                    r.trim(),
                    permissions::ACCESS_RIGHTS,
                    "Add-ADPermission",
                )
            })?;
            if !ar.iter().any(|x| x == name) {
                ar.push(name.to_string());
            }
        }
        let mut er = Vec::new();
        for r in extended_rights {
            let name =
                permissions::extended_right_display(r).ok_or_else(|| self.not_found(r.trim()))?;
            if !er.iter().any(|x| x == name) {
                er.push(name.to_string());
            }
        }
        if !er.is_empty() && !ar.iter().any(|x| x == "ExtendedRight") {
            ar.push("ExtendedRight".to_string());
        }
        if ar.is_empty() {
            return Err(ExchangeError::invalid_value(
                "You must specify either the AccessRights or the ExtendedRights parameter.",
            ));
        }
        let inheritance_type = match inheritance {
            None => "All".to_string(),
            Some(i) => permissions::INHERITANCE
                .iter()
                .find(|x| x.eq_ignore_ascii_case(i.trim()))
                .map(|x| x.to_string())
                .ok_or_else(|| {
                    ExchangeError::not_in_set(
                        "InheritanceType",
                        i.trim(),
                        permissions::INHERITANCE,
                        "Add-ADPermission",
                    )
                })?,
        };
        Ok(Ace {
            user,
            deny,
            inherited: false,
            access_rights: ar,
            extended_rights: er,
            inheritance_type,
        })
    }

    /// Add-ADPermission -Identity -User ...: the added entry, or a warning when it is
    /// already there.
    pub fn add_ad_permission(
        &mut self,
        identity: &str,
        ace: Ace,
    ) -> Result<(Vec<SimObject>, Vec<String>), ExchangeError> {
        let target = self.acl_target(identity)?;
        let (shown_id, _) = self.acl_view(target);
        let acl = self
            .explicit_acl_mut(target)
            .ok_or_else(|| ExchangeError::not_found(identity, ""))?;
        let covered = acl.iter().any(|a| {
            !a.inherited
                && a.user.eq_ignore_ascii_case(&ace.user)
                && a.deny == ace.deny
                && a.inheritance_type == ace.inheritance_type
                && ace
                    .access_rights
                    .iter()
                    .all(|r| a.access_rights.contains(r))
                && ace
                    .extended_rights
                    .iter()
                    .all(|r| a.extended_rights.contains(r))
        });
        if covered {
            return Ok((
                Vec::new(),
                vec![permissions::already_present(&shown_id, &ace.user)],
            ));
        }
        let o = ace.to_object(&shown_id);
        acl.push(ace);
        Ok((vec![o], Vec::new()))
    }

    /// Remove-ADPermission -Identity -User ...: removes those rights from the user's
    /// explicit entries (an entry left with no rights goes); inherited entries stay.
    pub fn remove_ad_permission(
        &mut self,
        identity: &str,
        ace: Ace,
    ) -> Result<Vec<String>, ExchangeError> {
        let target = self.acl_target(identity)?;
        let (shown_id, _) = self.acl_view(target);
        let acl = self
            .explicit_acl_mut(target)
            .ok_or_else(|| ExchangeError::not_found(identity, ""))?;
        let mut touched = false;
        for a in acl.iter_mut() {
            if a.inherited || !a.user.eq_ignore_ascii_case(&ace.user) || a.deny != ace.deny {
                continue;
            }
            let extended_only = !ace.extended_rights.is_empty();
            if extended_only {
                let before = a.extended_rights.len();
                a.extended_rights
                    .retain(|r| !ace.extended_rights.contains(r));
                touched |= a.extended_rights.len() != before;
                if a.extended_rights.is_empty() {
                    a.access_rights.retain(|r| r != "ExtendedRight");
                }
                let others: Vec<&String> = ace
                    .access_rights
                    .iter()
                    .filter(|r| *r != "ExtendedRight")
                    .collect();
                let before = a.access_rights.len();
                a.access_rights.retain(|r| !others.contains(&r));
                touched |= a.access_rights.len() != before;
            } else {
                let before = a.access_rights.len();
                a.access_rights.retain(|r| !ace.access_rights.contains(r));
                touched |= a.access_rights.len() != before;
            }
        }
        acl.retain(|a| a.inherited || !a.access_rights.is_empty());
        if !touched {
            return Ok(vec![permissions::not_present(&shown_id, &ace.user)]);
        }
        Ok(Vec::new())
    }

    // ----- host registry and event log -----------------------------------------------

    /// The host's registry.
    pub fn registry(&self) -> Option<&Registry> {
        let si = self.host_index().ok()?;
        self.servers.get(si).map(|s| &s.registry)
    }

    /// The host's registry, to change.
    pub fn registry_mut(&mut self) -> Result<&mut Registry, ExchangeError> {
        let si = self.host_index()?;
        let host = self.host.clone();
        self.servers
            .get_mut(si)
            .map(|s| &mut s.registry)
            .ok_or_else(|| ExchangeError::not_found(&host, ""))
    }

    /// Get-EventLog -LogName Application [-InstanceId] [-Source] [-Newest] [-After]
    /// [-EntryType]: newest first; "No matches found" when nothing matches.
    pub fn get_event_log(&mut self, query: &EventQuery) -> Result<Vec<SimObject>, ExchangeError> {
        if !query.log_name.eq_ignore_ascii_case("Application") {
            return Err(ExchangeError::new(
                format!(
                    "The event log '{}' on computer '.' does not exist.",
                    query.log_name
                ),
                ErrorCategory::NotSpecified,
                "InvalidOperationException",
                "System.InvalidOperationException,Microsoft.PowerShell.Commands.GetEventLogCommand",
            ));
        }
        let si = self.host_index()?;
        let s = self
            .servers
            .get(si)
            .ok_or_else(|| self.not_found(&self.host))?;
        let mut out = Vec::new();
        for e in s.event_log.entries.iter().rev() {
            if !query.instance_ids.is_empty()
                && !query.instance_ids.contains(&i64::from(e.event_id))
            {
                continue;
            }
            if !query.sources.is_empty() && !query.sources.iter().any(|p| glob(p, &e.source)) {
                continue;
            }
            if !query.entry_types.is_empty()
                && !query
                    .entry_types
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(e.level.as_str()))
            {
                continue;
            }
            if query.after.is_some_and(|a| e.time <= a) {
                continue;
            }
            out.push(e.to_object(&s.name));
            if query.newest.is_some_and(|n| out.len() >= n) {
                break;
            }
        }
        if out.is_empty() {
            return Err(ExchangeError::new(
                "No matches found",
                ErrorCategory::ObjectNotFound,
                "ArgumentException",
                "GetEventLogNoEntriesFound,Microsoft.PowerShell.Commands.GetEventLogCommand",
            ));
        }
        Ok(out)
    }

    /// Writes an Application log entry on a server (for tests and the store).
    pub fn write_event(
        &mut self,
        server: Option<&str>,
        event_id: u32,
        source: &str,
        level: Level,
        message: String,
    ) {
        let now = self.now();
        if let Ok(si) = self.server_index(server)
            && let Some(s) = self.servers.get_mut(si)
        {
            s.event_log.write(event_id, source, level, now, message);
        }
    }

    // ----- IMAP sessions (the listener's side) ----------------------------------------

    /// Whether the server's IMAP4 service accepts connections now, with the epoch that
    /// changes whenever existing connections must be dropped and the banner to greet with.
    pub fn imap_service_state(&mut self, server: &str) -> (bool, u64, String) {
        self.settle();
        let epoch = self
            .runtime
            .imap_epoch
            .get(&server.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        match self.effective_imap_limits(Some(server)) {
            Some(l) => (true, epoch, l.banner),
            None => (false, epoch, String::new()),
        }
    }

    /// A new IMAP connection from `ip`; `None` when the service does not run.
    pub fn imap_open(&mut self, server: &str, ip: IpAddr) -> Option<u64> {
        let (serving, _, _) = self.imap_service_state(server);
        if !serving {
            return None;
        }
        self.runtime.next_conn += 1;
        let id = self.runtime.next_conn;
        self.runtime.conns.insert(
            id,
            ImapConn {
                server: server.to_ascii_lowercase(),
                ip,
                user: None,
            },
        );
        Some(id)
    }

    /// Whether a connection is still alive (not dropped by a restart).
    pub fn imap_alive(&mut self, conn: u64) -> bool {
        self.settle();
        self.runtime.conns.contains_key(&conn)
    }

    /// The connection closed.
    pub fn imap_close(&mut self, conn: u64) {
        self.runtime.conns.remove(&conn);
    }

    /// How many authenticated IMAP sessions a user has on a server now.
    pub fn imap_sessions_of(&self, server: &str, user: &str) -> usize {
        let key = server.to_ascii_lowercase();
        let u = self
            .index
            .get(&user.to_ascii_lowercase())
            .and_then(|&i| self.mailboxes.get(i))
            .map(|m| m.alias.to_ascii_lowercase());
        self.runtime
            .conns
            .values()
            .filter(|c| c.server == key && c.user.is_some() && c.user == u)
            .count()
    }

    /// LOGIN/AUTHENTICATE on a connection: checks the credentials, then every limit in
    /// the order the request meets them (see `imap`), and records the session.
    pub fn imap_login(
        &mut self,
        conn: u64,
        user: &str,
        password: &str,
    ) -> Result<(), LoginRefusal> {
        let result = self.imap_login_inner(conn, user, password);
        match result {
            Ok(()) => self.runtime.logins_ok += 1,
            Err(r) => *self.runtime.refusals.entry(r.as_str()).or_default() += 1,
        }
        result
    }

    fn imap_login_inner(
        &mut self,
        conn: u64,
        user: &str,
        password: &str,
    ) -> Result<(), LoginRefusal> {
        self.settle();
        let now = self.now();
        let c = self
            .runtime
            .conns
            .get(&conn)
            .cloned()
            .ok_or(LoginRefusal::Unavailable)?;
        if c.user.is_some() {
            return Err(LoginRefusal::BadCredentials);
        }
        // Exchange accepts user@domain, DOMAIN\user and the alias.
        let mi = self
            .index
            .get(&user.trim().to_ascii_lowercase())
            .copied()
            .ok_or(LoginRefusal::BadCredentials)?;
        let m = self
            .mailboxes
            .get(mi)
            .ok_or(LoginRefusal::BadCredentials)?
            .clone();
        if m.password.as_deref() != Some(password) {
            return Err(LoginRefusal::BadCredentials);
        }
        let limits = self
            .effective_imap_limits(Some(&c.server))
            .ok_or(LoginRefusal::Unavailable)?;
        let store_si = self
            .servers
            .iter()
            .position(|s| s.databases.iter().any(|d| d.name == m.database))
            .ok_or(LoginRefusal::Unavailable)?;
        let store_up = self
            .servers
            .get(store_si)
            .and_then(|s| s.service("MSExchangeIS"))
            .is_some_and(|s| s.is_serving(now));
        if !store_up {
            return Err(LoginRefusal::Unavailable);
        }
        let alias = m.alias.to_ascii_lowercase();
        let authed = || self.runtime.conns.values().filter(|x| x.user.is_some());
        let total = authed().filter(|x| x.server == c.server).count();
        let from_ip = authed()
            .filter(|x| x.server == c.server && x.ip == c.ip)
            .count();
        let of_user = authed()
            .filter(|x| x.server == c.server && x.user.as_deref() == Some(&alias))
            .count();
        let store_sessions = authed()
            .filter(|x| x.user.as_deref() == Some(&alias))
            .count();
        let over = |n: usize, limit: u32| n >= usize::try_from(limit).unwrap_or(usize::MAX);
        if over(total, limits.max_connections) {
            return Err(LoginRefusal::MaxConnections);
        }
        if over(from_ip, limits.max_from_single_ip) {
            return Err(LoginRefusal::MaxConnectionFromSingleIp);
        }
        if over(of_user, limits.max_per_user) {
            return Err(LoginRefusal::MaxConnectionsPerUser);
        }
        let cache_key = (c.server.clone(), alias.clone());
        let policy = match self.runtime.policy_cache.get(&cache_key) {
            Some(e) => *e,
            None => {
                let e = self
                    .imap_max_concurrency(&m.alias)
                    .map_err(|_| LoginRefusal::BadCredentials)?;
                self.runtime.policy_cache.insert(cache_key, e);
                e
            }
        };
        if let Effective::Limit(n) = policy
            && over(of_user, n)
        {
            return Err(LoginRefusal::ImapMaxConcurrency);
        }
        let store_limit = self
            .servers
            .get(store_si)
            .and_then(|s| s.store_limits)
            .map_or(DEFAULT_SERVICE_SESSIONS, |l| l.service_sessions_per_user);
        if over(store_sessions, store_limit) {
            let msg = eventlog::session_limit_message(&self.legacy_dn(&m), store_limit);
            let name = self.servers.get(store_si).map(|s| s.name.clone());
            self.write_event(name.as_deref(), 9646, "MSExchangeIS", Level::Error, msg);
            return Err(LoginRefusal::StoreServiceSessions);
        }
        if let Some(x) = self.runtime.conns.get_mut(&conn) {
            x.user = Some(alias);
        }
        Ok(())
    }

    // ----- counters --------------------------------------------------------------------

    /// Counts one cmdlet run (the dispatcher calls this).
    pub fn count_cmdlet(&mut self, name: &str) {
        *self.runtime.cmdlets.entry(name.to_string()).or_default() += 1;
    }

    /// Counts an Exchange session (snap-in loaded or remote session opened).
    pub fn count_exchange_session(&mut self) {
        self.runtime.exchange_sessions += 1;
    }

    /// Counts a `powershell.exe` process started on the host.
    pub fn count_powershell_process(&mut self) {
        self.runtime.powershell_processes += 1;
    }

    /// Makes `name` the server whose host the cmdlets run on (the WinRM host's computer
    /// name). A state file that does not have that server is refused.
    pub fn set_host(&mut self, name: &str) -> Result<(), StateError> {
        let found = self
            .servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| s.name.clone());
        match found {
            Some(n) => {
                self.host = n;
                Ok(())
            }
            None => Err(StateError::Invalid(ExchangeError::invalid_value(format!(
                "the organization has no server named '{name}' (servers: {}); the simulated host's computer name must be one of them",
                self.servers
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))),
        }
    }

    /// The `/sim/state` section: restarts per service, cmdlets run, Exchange sessions,
    /// IMAP logins and refusals, and a summary of the state.
    pub fn state_section(&mut self) -> serde_json::Value {
        self.settle();
        let now = self.now();
        let servers: Vec<serde_json::Value> = self
            .servers
            .iter()
            .map(|s| {
                let services: serde_json::Map<String, serde_json::Value> = s
                    .services
                    .iter()
                    .map(|svc| {
                        (
                            svc.name.clone(),
                            serde_json::json!({
                                "status": svc.status(now).as_str(),
                                "restarts": svc.restarts,
                            }),
                        )
                    })
                    .collect();
                let limits = ImapLimits::from_bag(&s.imap);
                serde_json::json!({
                    "name": s.name,
                    "services": services,
                    "imap_configured": {
                        "MaxConnections": limits.max_connections,
                        "MaxConnectionFromSingleIP": limits.max_from_single_ip,
                        "MaxConnectionsPerUser": limits.max_per_user,
                    },
                    "imap_running": s.imap_running.as_ref().map(|b| {
                        let l = ImapLimits::from_bag(b);
                        serde_json::json!({
                            "MaxConnections": l.max_connections,
                            "MaxConnectionFromSingleIP": l.max_from_single_ip,
                            "MaxConnectionsPerUser": l.max_per_user,
                        })
                    }),
                    "store_limits": s.store_limits.map(|l| serde_json::json!({
                        "service_sessions_per_user": l.service_sessions_per_user,
                        "sessions_per_user": l.sessions_per_user,
                    })),
                    "events": s.event_log.entries.len(),
                })
            })
            .collect();
        serde_json::json!({
            "sp": self.sp.to_string(),
            "servers": servers,
            "throttling_policies": self.throttling_policies.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            "mailboxes": self.mailboxes.len(),
            "cmdlets": self.runtime.cmdlets,
            "exchange_sessions": self.runtime.exchange_sessions,
            "powershell_processes": self.runtime.powershell_processes,
            "imap": {
                "open_connections": self.runtime.conns.len(),
                "authenticated": self.runtime.conns.values().filter(|c| c.user.is_some()).count(),
                "logins_ok": self.runtime.logins_ok,
                "refusals": self.runtime.refusals,
            },
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum AclTarget {
    Org,
    Server(usize),
}

/// Get-EventLog's filters.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// -LogName.
    pub log_name: String,
    /// -InstanceId.
    pub instance_ids: Vec<i64>,
    /// -Source (wildcards allowed).
    pub sources: Vec<String>,
    /// -EntryType.
    pub entry_types: Vec<String>,
    /// -Newest.
    pub newest: Option<usize>,
    /// -After.
    pub after: Option<SimTime>,
}

/// Exchange's warning when a Set- cmdlet changes nothing.
pub fn no_change_warning(identity: &str) -> String {
    format!(
        "The command completed successfully but no settings of '{identity}' have been modified."
    )
}

/// PowerShell wildcard matching (`*`, `?`), case-insensitive; bounded work.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// A shared handle to the model: the WinRM side (cmdlets) and the IMAP listener use the
/// same organization. Critical sections are short and never await.
#[derive(Clone)]
pub struct OrgHandle {
    org: Arc<Mutex<ExchangeOrg>>,
    state: Option<Arc<crate::state::SimState>>,
}

impl std::fmt::Debug for OrgHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgHandle")
    }
}

impl OrgHandle {
    /// Wraps a model.
    pub fn new(org: ExchangeOrg) -> Self {
        OrgHandle {
            org: Arc::new(Mutex::new(org)),
            state: None,
        }
    }

    /// Wraps a model whose section is published to a simulator's `/sim/state` (by
    /// [`OrgHandle::publish_attached`], which the IMAP listener also calls periodically).
    pub fn with_state(org: ExchangeOrg, state: Arc<crate::state::SimState>) -> Self {
        OrgHandle {
            org: Arc::new(Mutex::new(org)),
            state: Some(state),
        }
    }

    /// Locks the model (a panic elsewhere does not poison it for everyone).
    pub fn lock(&self) -> MutexGuard<'_, ExchangeOrg> {
        self.org.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the model's section (`exchange`) into `/sim/state`.
    pub fn publish(&self, state: &crate::state::SimState) {
        let section = self.lock().state_section();
        state.set_section("exchange", section);
    }

    /// Publishes to the attached `/sim/state`, if any.
    pub fn publish_attached(&self) {
        if let Some(state) = &self.state {
            self.publish(state);
        }
    }
}

#[cfg(test)]
mod tests;
