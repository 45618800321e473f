//! The POP3 service settings of a Client Access server (Get-/Set-PopSettings).
//!
//! The parameters are Set-ImapSettings' (see `imap_settings`) without
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

use super::props::{Bag, Kind, PropDef, def};
use super::sp::Sp;
use super::value::SimValue;

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
