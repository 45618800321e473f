//! The protocol settings of a Client Access server (Get-/Set-ImapSettings and
//! Get-/Set-PopSettings), one table of protocols ([`Protocol`]: [`IMAP4`], [`POP3`]): the
//! cmdlets, the property table in Get- order, Setup's defaults, and where the server keeps
//! the configured bag. The cmdlet tables (`cmdlets`), the parameter listing (`sp`) and the
//! organization's getters and setters (`ExchangeOrg::get_protocol_settings`,
//! `ExchangeOrg::set_protocol_settings`) walk [`PROTOCOLS`], so a third protocol of the
//! same shape is one more entry here and a field of `Server` for its bag.
//!
//! # IMAP4
//!
//! Defaults are those of the Exchange 2010 cmdlet help (ODP-2018 `Set-ImapSettings.md`,
//! its `!!! Exchange Server 2010` blocks), where the reference shows the documented
//! values conflict:
//! - MaxConnections 2147483647 (1–2147483647): the cmdlet help; the "Set Connection
//!   Limits for IMAP4" page says 2,000 / 1–25,000.
//! - MaxConnectionFromSingleIP 2000 (1–25000) and MaxConnectionsPerUser 16 (1–25000):
//!   both sources agree.
//! - MaxCommandSize 512 (40–1024): the 2010 help gives "40 bytes" as the default and
//!   40–1024 as the range; 40 is the lower bound (an IMAP AUTHENTICATE line alone is
//!   longer), and the 2016 help for the same 40–1024 range says 512, so 512 is used.
//! - AuthenticatedConnectionTimeout 00:30:00 (30 s–1 day) and
//!   PreAuthenticatedConnectionTimeout 00:01:00 (10 s–1 h): the 2010 help, in seconds.
//! - LogFileRollOverSettings Daily: the current help ("Daily ... in Exchange 2010"); the
//!   2010 block says hourly. LoginType SecureLogin, MessageRetrievalMimeFormat
//!   BestBodyFormat, CalendarItemRetrievalOption iCalendar, EnableGSSAPIAndNTLMAuth
//!   True, the rest False/empty.
//!
//! ExtendedProtectionPolicy and LiveIdBasicAuthReplacement are SP1+ ("Exchange Server
//! 2010 Service Pack 1 (SP1) supports Extended Protection for Authentication", E2010-help
//! `0d54c0e3…htm`; LiveIdBasicAuthReplacement appears in the SP2/SP3 syntax only, SP1
//! assumed). Internal/ExternalConnectionSettings (what OWA shows users for setting up an
//! IMAP4 client) are taken as RTM: they are in every 2010 syntax found, and the receive
//! connector's AdvertiseClientSettings, the SMTP half of the same OWA page, is in the
//! RTM-era syntax (technet `bb125140(EXCHG.140)`); no RTM Set-ImapSettings page was found.
//!
//! Changes take effect only when MSExchangeIMAP4 starts again (2010 help: "you must
//! restart the IMAP4 service"); the server keeps the configured bag and the bag the
//! running service loaded (see `services`).
//!
//! # POP3
//!
//! The parameters are Set-ImapSettings' (see IMAP4 above) without
//! ShowHiddenFoldersEnabled and with MessageRetrievalSortOrder (Ascending, Descending),
//! as the ODP `Set-PopSettings.md` lists them for Exchange 2010 and the 2007 syntax
//! (`aa997154(v=exchg.80)`) already had them. Ranges are 2010's: MaxCommandSize 40–1024
//! (default 512), MaxConnectionFromSingleIP and MaxConnectionsPerUser 1–25,000 (EXCHG.140
//! "Set Connection Limits for POP3", `aa997988`), MaxConnections any positive Int32.
//! Defaults: ports 110 and 995, the banner "The Microsoft Exchange POP3 service is
//! ready.", MaxConnectionsPerUser 16, MaxConnectionFromSingleIP 2000 (the 2010 page),
//! MaxConnections 2147483647 (the cmdlet help, as for IMAP4), ProxyTargetPort 1995, the
//! log under `Logging\Pop3`, MessageRetrievalSortOrder Ascending; the rest as IMAP4's.
//!
//! Changes take effect only when MSExchangePOP3 starts again ("After you set connection
//! limits, you must restart the POP3 service", `aa997988`); the simulator has no POP3
//! listener, so only the configured settings are kept.

use super::Server;
use super::SimTime;
use super::props::{Bag, Kind, PropDef, def};
use super::sp::Sp;
use super::value::SimValue;

/// One protocol's settings object: what differs between IMAP4 and POP3.
#[derive(Debug)]
pub struct Protocol {
    /// The protocol as the object names it (`IMAP4`, `POP3`: `ProtocolName`, the AD
    /// container `CN=<name>,CN=Protocols`).
    pub name: &'static str,
    /// The short form in AD class names (`IMAP`: `protocolCfgIMAPServer`).
    pub short: &'static str,
    /// The .NET type's prefix (`Imap4`: `Imap4AdConfiguration`).
    pub class: &'static str,
    /// The getter (`Get-ImapSettings`).
    pub get: &'static str,
    /// The setter (`Set-ImapSettings`).
    pub set: &'static str,
    /// The settable properties, in Get- order.
    pub props: &'static [PropDef],
    /// The object's name in errors about a state file's bag (`ImapSettings`).
    pub what: &'static str,
    /// The settings a fresh Client Access server has: (computer name, FQDN) to bag.
    pub defaults: fn(&str, &str) -> Bag,
    /// The configured bag of a server (what Get- shows) and when it last changed (`None`:
    /// not since the organization was installed).
    pub configured: fn(&Server) -> (&Bag, Option<SimTime>),
    /// The configured bag of a server and when it last changed, to change them.
    pub configured_mut: fn(&mut Server) -> (&mut Bag, &mut Option<SimTime>),
}

/// IMAP4 (MSExchangeIMAP4).
pub static IMAP4: Protocol = Protocol {
    name: "IMAP4",
    short: "IMAP",
    class: "Imap4",
    get: "Get-ImapSettings",
    set: "Set-ImapSettings",
    props: IMAP_PROPS,
    what: "ImapSettings",
    defaults: default_imap_settings,
    configured: |s| (&s.imap, s.imap_changed),
    configured_mut: |s| (&mut s.imap, &mut s.imap_changed),
};

/// POP3 (MSExchangePOP3).
pub static POP3: Protocol = Protocol {
    name: "POP3",
    short: "POP",
    class: "Pop3",
    get: "Get-PopSettings",
    set: "Set-PopSettings",
    props: POP_PROPS,
    what: "PopSettings",
    defaults: default_pop_settings,
    configured: |s| (&s.pop, s.pop_changed),
    configured_mut: |s| (&mut s.pop, &mut s.pop_changed),
};

/// Every protocol, in the order the cmdlet tables list them.
pub static PROTOCOLS: &[&Protocol] = &[&IMAP4, &POP3];

/// The protocol whose getter (`false`) or setter (`true`) `cmdlet` is.
pub fn by_cmdlet(cmdlet: &str) -> Option<(&'static Protocol, bool)> {
    PROTOCOLS.iter().find_map(|p| {
        if p.get.eq_ignore_ascii_case(cmdlet) {
            Some((*p, false))
        } else if p.set.eq_ignore_ascii_case(cmdlet) {
            Some((*p, true))
        } else {
            None
        }
    })
}

/// The Set-ImapSettings parameters that are properties, in Get-ImapSettings order.
pub const IMAP_PROPS: &[PropDef] = &[
    def("MaxCommandSize", Kind::Int { min: 40, max: 1024 }, Sp::Rtm),
    def("ShowHiddenFoldersEnabled", Kind::Bool, Sp::Rtm),
    def("UnencryptedOrTLSBindings", Kind::Multi, Sp::Rtm),
    def("SSLBindings", Kind::Multi, Sp::Rtm),
    def("InternalConnectionSettings", Kind::Multi, Sp::Rtm),
    def("ExternalConnectionSettings", Kind::Multi, Sp::Rtm),
    def("X509CertificateName", Kind::Str, Sp::Rtm),
    def("Banner", Kind::Str, Sp::Rtm),
    def(
        "LoginType",
        Kind::Enum(&[
            "",
            "PlainTextLogin",
            "PlainTextAuthentication",
            "SecureLogin",
        ]),
        Sp::Rtm,
    ),
    def(
        "AuthenticatedConnectionTimeout",
        Kind::Span {
            min: 30,
            max: 86_400,
        },
        Sp::Rtm,
    ),
    def(
        "PreAuthenticatedConnectionTimeout",
        Kind::Span { min: 10, max: 3600 },
        Sp::Rtm,
    ),
    def(
        "MaxConnections",
        Kind::Int {
            min: 1,
            max: 2_147_483_647,
        },
        Sp::Rtm,
    ),
    def(
        "MaxConnectionFromSingleIP",
        Kind::Int {
            min: 1,
            max: 25_000,
        },
        Sp::Rtm,
    ),
    def(
        "MaxConnectionsPerUser",
        Kind::Int {
            min: 1,
            max: 25_000,
        },
        Sp::Rtm,
    ),
    def(
        "MessageRetrievalMimeFormat",
        Kind::Enum(&[
            "TextOnly",
            "HtmlOnly",
            "HtmlAndTextAlternative",
            "TextEnrichedOnly",
            "TextEnrichedAndTextAlternative",
            "BestBodyFormat",
            "Tnef",
        ]),
        Sp::Rtm,
    ),
    def(
        "ProxyTargetPort",
        Kind::Int {
            min: 0,
            max: 65_535,
        },
        Sp::Rtm,
    ),
    def(
        "CalendarItemRetrievalOption",
        Kind::Enum(&["iCalendar", "intranetUrl", "InternetUrl", "Custom"]),
        Sp::Rtm,
    ),
    def("OwaServerUrl", Kind::Str, Sp::Rtm),
    def("EnableExactRFC822Size", Kind::Bool, Sp::Rtm),
    def("LiveIdBasicAuthReplacement", Kind::Bool, Sp::Sp1),
    def("SuppressReadReceipt", Kind::Bool, Sp::Rtm),
    def("ProtocolLogEnabled", Kind::Bool, Sp::Rtm),
    def("EnforceCertificateErrors", Kind::Bool, Sp::Rtm),
    def("LogFileLocation", Kind::Str, Sp::Rtm),
    def(
        "LogFileRollOverSettings",
        Kind::Enum(&["", "Hourly", "Daily", "Weekly", "Monthly"]),
        Sp::Rtm,
    ),
    def("LogPerFileSizeQuota", Kind::UnlimitedBytes, Sp::Rtm),
    def(
        "ExtendedProtectionPolicy",
        Kind::Enum(&["None", "Allow", "Require"]),
        Sp::Sp1,
    ),
    def("EnableGSSAPIAndNTLMAuth", Kind::Bool, Sp::Rtm),
];

/// The banner a fresh IMAP4 service greets with.
pub const DEFAULT_BANNER: &str = "The Microsoft Exchange IMAP4 service is ready.";

/// The settings a fresh Client Access server has (see the module docs for sources).
pub fn default_imap_settings(server: &str, fqdn: &str) -> Bag {
    Bag::from_defaults(vec![
        ("MaxCommandSize", SimValue::Int(512)),
        ("ShowHiddenFoldersEnabled", false.into()),
        (
            "UnencryptedOrTLSBindings",
            SimValue::strings([":::143", "0.0.0.0:143"]),
        ),
        ("SSLBindings", SimValue::strings([":::993", "0.0.0.0:993"])),
        (
            "InternalConnectionSettings",
            SimValue::strings([format!("{fqdn}:993:SSL"), format!("{fqdn}:143:TLS")]),
        ),
        ("ExternalConnectionSettings", SimValue::List(Vec::new())),
        ("X509CertificateName", SimValue::str(server)),
        ("Banner", SimValue::str(DEFAULT_BANNER)),
        ("LoginType", SimValue::str("SecureLogin")),
        ("AuthenticatedConnectionTimeout", SimValue::str("00:30:00")),
        (
            "PreAuthenticatedConnectionTimeout",
            SimValue::str("00:01:00"),
        ),
        ("MaxConnections", SimValue::Int(i32::MAX)),
        ("MaxConnectionFromSingleIP", SimValue::Int(2000)),
        ("MaxConnectionsPerUser", SimValue::Int(16)),
        (
            "MessageRetrievalMimeFormat",
            SimValue::str("BestBodyFormat"),
        ),
        ("ProxyTargetPort", SimValue::Int(143)),
        ("CalendarItemRetrievalOption", SimValue::str("iCalendar")),
        ("OwaServerUrl", SimValue::Null),
        ("EnableExactRFC822Size", false.into()),
        ("LiveIdBasicAuthReplacement", false.into()),
        ("SuppressReadReceipt", false.into()),
        ("ProtocolLogEnabled", false.into()),
        ("EnforceCertificateErrors", false.into()),
        (
            "LogFileLocation",
            SimValue::str("C:\\Program Files\\Microsoft\\Exchange Server\\V14\\Logging\\Imap4"),
        ),
        ("LogFileRollOverSettings", SimValue::str("Daily")),
        ("LogPerFileSizeQuota", SimValue::str("0 B (0 bytes)")),
        ("ExtendedProtectionPolicy", SimValue::str("None")),
        ("EnableGSSAPIAndNTLMAuth", true.into()),
    ])
}

/// The limits the IMAP4 listener enforces, read from a bag (the running service's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapLimits {
    /// MaxConnections.
    pub max_connections: u32,
    /// MaxConnectionFromSingleIP.
    pub max_from_single_ip: u32,
    /// MaxConnectionsPerUser.
    pub max_per_user: u32,
    /// The greeting text.
    pub banner: String,
}

impl ImapLimits {
    /// The limits in `bag`.
    pub fn from_bag(bag: &Bag) -> Self {
        let n = |name: &str| u32::try_from(bag.int(name)).unwrap_or(u32::MAX);
        ImapLimits {
            max_connections: n("MaxConnections"),
            max_from_single_ip: n("MaxConnectionFromSingleIP"),
            max_per_user: n("MaxConnectionsPerUser"),
            banner: bag
                .get("Banner")
                .filter(|v| !v.is_null())
                .map(SimValue::to_text)
                .unwrap_or_else(|| DEFAULT_BANNER.to_string()),
        }
    }
}

/// The Set-PopSettings parameters that are properties, in Get-PopSettings order.
pub const POP_PROPS: &[PropDef] = &[
    def("MaxCommandSize", Kind::Int { min: 40, max: 1024 }, Sp::Rtm),
    def(
        "MessageRetrievalSortOrder",
        Kind::Enum(&["Ascending", "Descending"]),
        Sp::Rtm,
    ),
    def("UnencryptedOrTLSBindings", Kind::Multi, Sp::Rtm),
    def("SSLBindings", Kind::Multi, Sp::Rtm),
    def("InternalConnectionSettings", Kind::Multi, Sp::Rtm),
    def("ExternalConnectionSettings", Kind::Multi, Sp::Rtm),
    def("X509CertificateName", Kind::Str, Sp::Rtm),
    def("Banner", Kind::Str, Sp::Rtm),
    def(
        "LoginType",
        Kind::Enum(&[
            "",
            "PlainTextLogin",
            "PlainTextAuthentication",
            "SecureLogin",
        ]),
        Sp::Rtm,
    ),
    def(
        "AuthenticatedConnectionTimeout",
        Kind::Span {
            min: 30,
            max: 86_400,
        },
        Sp::Rtm,
    ),
    def(
        "PreAuthenticatedConnectionTimeout",
        Kind::Span { min: 10, max: 3600 },
        Sp::Rtm,
    ),
    def(
        "MaxConnections",
        Kind::Int {
            min: 1,
            max: 2_147_483_647,
        },
        Sp::Rtm,
    ),
    def(
        "MaxConnectionFromSingleIP",
        Kind::Int {
            min: 1,
            max: 25_000,
        },
        Sp::Rtm,
    ),
    def(
        "MaxConnectionsPerUser",
        Kind::Int {
            min: 1,
            max: 25_000,
        },
        Sp::Rtm,
    ),
    def(
        "MessageRetrievalMimeFormat",
        Kind::Enum(&[
            "TextOnly",
            "HtmlOnly",
            "HtmlAndTextAlternative",
            "TextEnrichedOnly",
            "TextEnrichedAndTextAlternative",
            "BestBodyFormat",
            "Tnef",
        ]),
        Sp::Rtm,
    ),
    def(
        "ProxyTargetPort",
        Kind::Int {
            min: 0,
            max: 65_535,
        },
        Sp::Rtm,
    ),
    def(
        "CalendarItemRetrievalOption",
        Kind::Enum(&["iCalendar", "intranetUrl", "InternetUrl", "Custom"]),
        Sp::Rtm,
    ),
    def("OwaServerUrl", Kind::Str, Sp::Rtm),
    def("EnableExactRFC822Size", Kind::Bool, Sp::Rtm),
    def("LiveIdBasicAuthReplacement", Kind::Bool, Sp::Sp1),
    def("SuppressReadReceipt", Kind::Bool, Sp::Rtm),
    def("ProtocolLogEnabled", Kind::Bool, Sp::Rtm),
    def("EnforceCertificateErrors", Kind::Bool, Sp::Rtm),
    def("LogFileLocation", Kind::Str, Sp::Rtm),
    def(
        "LogFileRollOverSettings",
        Kind::Enum(&["", "Hourly", "Daily", "Weekly", "Monthly"]),
        Sp::Rtm,
    ),
    def("LogPerFileSizeQuota", Kind::UnlimitedBytes, Sp::Rtm),
    def(
        "ExtendedProtectionPolicy",
        Kind::Enum(&["None", "Allow", "Require"]),
        Sp::Sp1,
    ),
    def("EnableGSSAPIAndNTLMAuth", Kind::Bool, Sp::Rtm),
];

/// The settings a fresh Client Access server has (see the module docs for sources).
pub fn default_pop_settings(server: &str, fqdn: &str) -> Bag {
    Bag::from_defaults(vec![
        ("MaxCommandSize", SimValue::Int(512)),
        ("MessageRetrievalSortOrder", SimValue::str("Ascending")),
        (
            "UnencryptedOrTLSBindings",
            SimValue::strings([":::110", "0.0.0.0:110"]),
        ),
        ("SSLBindings", SimValue::strings([":::995", "0.0.0.0:995"])),
        (
            "InternalConnectionSettings",
            SimValue::strings([format!("{fqdn}:995:SSL"), format!("{fqdn}:110:TLS")]),
        ),
        ("ExternalConnectionSettings", SimValue::List(Vec::new())),
        ("X509CertificateName", SimValue::str(server)),
        (
            "Banner",
            SimValue::str("The Microsoft Exchange POP3 service is ready."),
        ),
        ("LoginType", SimValue::str("SecureLogin")),
        ("AuthenticatedConnectionTimeout", SimValue::str("00:30:00")),
        (
            "PreAuthenticatedConnectionTimeout",
            SimValue::str("00:01:00"),
        ),
        ("MaxConnections", SimValue::Int(i32::MAX)),
        ("MaxConnectionFromSingleIP", SimValue::Int(2000)),
        ("MaxConnectionsPerUser", SimValue::Int(16)),
        (
            "MessageRetrievalMimeFormat",
            SimValue::str("BestBodyFormat"),
        ),
        ("ProxyTargetPort", SimValue::Int(1995)),
        ("CalendarItemRetrievalOption", SimValue::str("iCalendar")),
        ("OwaServerUrl", SimValue::Null),
        ("EnableExactRFC822Size", false.into()),
        ("LiveIdBasicAuthReplacement", false.into()),
        ("SuppressReadReceipt", false.into()),
        ("ProtocolLogEnabled", false.into()),
        ("EnforceCertificateErrors", false.into()),
        (
            "LogFileLocation",
            SimValue::str("C:\\Program Files\\Microsoft\\Exchange Server\\V14\\Logging\\Pop3"),
        ),
        ("LogFileRollOverSettings", SimValue::str("Daily")),
        ("LogPerFileSizeQuota", SimValue::str("0 B (0 bytes)")),
        ("ExtendedProtectionPolicy", SimValue::str("None")),
        ("EnableGSSAPIAndNTLMAuth", true.into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::cmdlets::cmdlet_spec;

    #[test]
    fn the_cmdlet_tables_come_from_the_protocols() {
        assert!(matches!(by_cmdlet("get-imapsettings"), Some((p, false)) if p.name == "IMAP4"));
        assert!(matches!(by_cmdlet("Set-PopSettings"), Some((p, true)) if p.name == "POP3"));
        assert!(by_cmdlet("Get-Mailbox").is_none());
        for p in PROTOCOLS {
            let get = cmdlet_spec(p.get, Sp::Sp3).expect("the getter");
            assert!(get.param("Server").is_some(), "{}", p.get);
            let set = cmdlet_spec(p.set, Sp::Sp3).expect("the setter");
            assert_eq!(
                set.class,
                format!(
                    "Microsoft.Exchange.Management.SystemConfigurationTasks.{}",
                    p.set.replace('-', "")
                )
            );
            for d in p.props.iter().filter(|d| d.settable) {
                assert!(set.param(d.name).is_some(), "{} -{}", p.set, d.name);
            }
            // Releases: the SP1 parameters are not there in RTM.
            let rtm = cmdlet_spec(p.set, Sp::Rtm).expect("the setter in RTM");
            assert!(rtm.param("ExtendedProtectionPolicy").is_none(), "{}", p.set);
        }
    }
}
