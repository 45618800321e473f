//! Windows services whose restart a change may require, as data, and the PowerShell that
//! restarts them, reads whether a restart is owed and observes their health.
//!
//! A service is a [`ServiceSpec`] (its name, what restarting it does to users, whether it
//! loads the settings of a kind, whether its health is observed, whether it mounts the
//! server's mailbox databases); [`Service`] is a copyable handle to one. Each kind
//! declares the services its changes may restart ([`crate::kind::Kind::services`]: the
//! IMAP kind MSExchangeIMAP4, the POP kind MSExchangePOP3, registry values the
//! Information Store, declared here once as [`INFORMATION_STORE`]);
//! [`crate::kinds::services`] lists them all in restart order. Nothing else names a
//! service: a kind with a service of its own touches only its module.
//!
//! [`restart`] writes the restart and recovery steps (and the DAG helpers they use);
//! [`facts`] the observation of pending restarts and of health, with their decoders.

pub mod facts;
pub mod restart;

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

pub use facts::{Facts, Health, Recovery, ServiceHealth};
pub use restart::RestartScriptOptions;

/// A protocol service's settings: the kind whose settings it loads when it starts, and
/// the cmdlet that reads them (their `WhenChangedUTC` tells a plan that a change made by
/// hand is waiting for a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// The kind's manifest key (`imap_settings`).
    pub kind: &'static str,
    /// The cmdlet that reads the settings, with `-Server` (`Get-ImapSettings`).
    pub read_cmdlet: &'static str,
}

/// What exctl knows of a service whose restart a change may require.
#[derive(Debug)]
pub struct ServiceSpec {
    /// The Windows service name (`MSExchangeIMAP4`): its identity in manifests, plans and
    /// plan files.
    pub name: &'static str,
    /// What restarting it does to users, for plans and prompts.
    pub consequence: &'static str,
    /// Where its restart runs among the restarts due at the same point (lower first; the
    /// phase of the kind that declares it is a good choice). Ties go by name.
    pub order: u32,
    /// For a protocol service: the settings it loads. Such a service is restarted only
    /// when it runs or starts automatically (Exchange 2010 installs IMAP4 and POP3 as
    /// Manual and stopped, and a stopped service reads its settings when it starts).
    /// `None`: the restart is always owed.
    pub protocol: Option<Protocol>,
    /// Whether every observation reports its health (status, start mode, dependants
    /// down), so that a plan brings it back when it is down.
    pub health: bool,
    /// It mounts the server's mailbox databases (the Information Store): its restart
    /// dismounts them and waits for them, warns of active DAG copies (or moves them with
    /// `--move-active-databases`), disconnects every user and so runs last of all and
    /// only in the maintenance window; its health includes the databases.
    pub mailbox_databases: bool,
}

/// Microsoft Exchange Information Store: the restart store limits (registry values under
/// its `ParametersSystem` key) require.
pub static INFORMATION_STORE_SPEC: ServiceSpec = ServiceSpec {
    name: "MSExchangeIS",
    consequence: "every mailbox database on this server dismounts until the store is back; users on them are disconnected",
    order: 1000,
    protocol: None,
    health: true,
    mailbox_databases: true,
};

/// The Information Store (see [`INFORMATION_STORE_SPEC`]).
pub const INFORMATION_STORE: Service = Service::new(&INFORMATION_STORE_SPEC);

/// A service a change may require restarting: a handle to its [`ServiceSpec`]. Equal,
/// ordered and hashed by its spec's restart order and name, so that a sorted set of
/// services is in restart order; serialized as its Windows name.
#[derive(Clone, Copy)]
pub struct Service(&'static ServiceSpec);

impl Service {
    /// The handle of `spec`.
    pub const fn new(spec: &'static ServiceSpec) -> Service {
        Service(spec)
    }

    /// What exctl knows of it.
    pub fn spec(self) -> &'static ServiceSpec {
        self.0
    }

    /// The Windows service name.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// What restarting it does to users, for plans and prompts.
    pub fn consequence(self) -> &'static str {
        self.0.consequence
    }

    /// The registered service named `s` (a manifest or plan-file spelling,
    /// case-insensitive), from [`crate::kinds::services`].
    pub fn parse(s: &str) -> Option<Service> {
        crate::kinds::services()
            .iter()
            .copied()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
    }

    /// For a protocol service: the kind whose settings it loads and the cmdlet that
    /// reads them (see [`ServiceSpec::protocol`]). `None` for the Information Store,
    /// whose restart is always owed.
    pub fn protocol(self) -> Option<(&'static str, &'static str)> {
        self.0.protocol.map(|p| (p.kind, p.read_cmdlet))
    }

    /// Whether its restart disconnects every user of the server (it mounts the mailbox
    /// databases): plans run it last of all and apply only in the maintenance window.
    pub fn disconnects_everyone(self) -> bool {
        self.0.mailbox_databases
    }

    fn sort_key(self) -> (u32, &'static str) {
        (self.0.order, self.0.name)
    }
}

impl PartialEq for Service {
    fn eq(&self, other: &Service) -> bool {
        self.sort_key() == other.sort_key()
    }
}

impl Eq for Service {}

impl PartialOrd for Service {
    fn partial_cmp(&self, other: &Service) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Service {
    fn cmp(&self, other: &Service) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl Hash for Service {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sort_key().hash(state);
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Service {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A service name that no registered kind declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service '{name}': exctl restarts {known}")]
pub struct UnknownService {
    /// The name as written.
    pub name: String,
    /// The names it knows, for the message.
    pub known: String,
}

impl std::str::FromStr for Service {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Service, UnknownService> {
        Service::parse(s).ok_or_else(|| UnknownService {
            name: s.to_string(),
            known: crate::kinds::services()
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

impl<'de> serde::Deserialize<'de> for Service {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Service, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service no kind declares: what a new protocol kind would bring.
    static TEST_SPEC: ServiceSpec = ServiceSpec {
        name: "MSExchangeTest",
        consequence: "test clients reconnect",
        order: 52,
        protocol: Some(Protocol {
            kind: "test_settings",
            read_cmdlet: "Get-TestSettings",
        }),
        health: false,
        mailbox_databases: false,
    };

    #[test]
    fn services_sort_in_restart_order_and_read_back_by_name() {
        let test = Service::new(&TEST_SPEC);
        let mut all: Vec<Service> = crate::kinds::services().to_vec();
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["MSExchangeIMAP4", "MSExchangePOP3", "MSExchangeIS"]);
        all.push(test);
        all.sort();
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "MSExchangeIMAP4",
                "MSExchangeTest",
                "MSExchangePOP3",
                "MSExchangeIS"
            ]
        );
        assert_eq!(Service::parse(" msexchangeis "), Some(INFORMATION_STORE));
        assert_eq!(Service::parse("MSExchangeTest"), None);
        let e = "MSExchangeFoo".parse::<Service>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown service 'MSExchangeFoo': exctl restarts MSExchangeIMAP4, MSExchangePOP3, MSExchangeIS"
        );
    }

    #[test]
    fn a_new_service_gets_facts_health_and_steps_from_its_spec_alone() {
        let test = Service::new(&TEST_SPEC);
        let set: std::collections::BTreeSet<Service> = [test].into_iter().collect();
        let facts = facts::observe_facts("EX01", &set);
        assert!(facts.contains("(Get-TestSettings -Server 'EX01').WhenChangedUTC"));
        assert!(!facts.contains("Get-MailboxDatabaseCopyStatus"));
        // Its spec says no health: the health fragment leaves it out.
        let both = [test, INFORMATION_STORE];
        let health = facts::observe_health("EX01", &both);
        assert!(!health.contains("MSExchangeTest") && health.contains("MSExchangeIS"));
        let opts = RestartScriptOptions::default();
        let body = restart::restart_body(test, "EX01", 1, &opts);
        assert!(body.contains("Get-Service -Name 'MSExchangeTest'"));
        assert!(!body.contains("Get-MailboxDatabase"));
        let back = restart::recovery_body(test, "EX01", 1, &opts);
        assert!(!back.contains("Get-MailboxDatabase"));
        assert!(
            restart::recovery_body(INFORMATION_STORE, "EX01", 1, &opts)
                .contains("Get-MailboxDatabase")
        );
    }
}
