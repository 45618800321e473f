//! Receive connectors of Hub Transport servers (Get-/Set-ReceiveConnector).
//!
//! Identity is `SERVER\Name` (reference §1: default names repeat on every server).
//! Defaults and ranges: ODP-2018 `Set-ReceiveConnector.md`, 2010 text (reference §1
//! table): MaxInboundConnection 5000 (1–2147483647 or unlimited),
//! MaxInboundConnectionPerSource 20 (1–10000 or unlimited), ...PercentagePerSource 2
//! (1–100), MessageRateLimit unlimited on Hub, MaxProtocolErrors 5, MaxRecipientsPerMessage
//! 200 (1–512000), MaxLogonFailures 3 (0–10), MaxHopCount 60 (1–500), MaxLocalHopCount 8
//! (0–50), MaxMessageSize 10 MB (65536 B–2147483647 B), MaxHeaderSize 64 KB,
//! ConnectionTimeout 00:10:00 and ConnectionInactivityTimeout 00:05:00 (00:00:01–1.00:00:00,
//! the first greater than the second), TarpitInterval 00:00:05 (0–00:10:00),
//! MaxAcknowledgementDelay 00:00:30.
//!
//! Parameters by release: the "Applies to: Exchange Server 2010" syntax (technet
//! `bb125140(EXCHG.140)`) has AdvertiseClientSettings and MessageRateSource, and the
//! RTM documentation set has the SuppressXAnonymousTls task (`dd876856(v=exchg.140)`), so
//! they exist from RTM; BareLinefeedRejectionEnabled and ExtendedProtectionPolicy appear
//! only in the SP1+ syntax (E2010-help `eb7f8960…htm`). TlsDomainCapabilities is documented
//! for 2010 with no service pack named (ODP-2018), so RTM.
//!
//! A fresh Hub server has two: "Default SERVER" (port 25, anonymous and Exchange
//! permission groups) and "Client SERVER" (port 587, ExchangeUsers).

use serde::{Deserialize, Serialize};

use super::error::ExchangeError;
use super::props::{Bag, Kind, PropDef, def};
use super::sp::Sp;
use super::value::SimValue;

const AUTH: &[&str] = &[
    "None",
    "Tls",
    "Integrated",
    "BasicAuth",
    "BasicAuthRequireTLS",
    "ExchangeServer",
    "ExternalAuthoritative",
];

const PERMISSION_GROUPS: &[&str] = &[
    "None",
    "AnonymousUsers",
    "ExchangeUsers",
    "ExchangeServers",
    "ExchangeLegacyServers",
    "Partners",
    "Custom",
];

/// TimeSpan.MaxValue in whole days, in seconds.
const MAX_TIMESPAN: u64 = 10_675_199 * 86_400;

const UNLIMITED_INT: Kind = Kind::Unlimited {
    min: 1,
    max: 2_147_483_647,
};

/// The Set-ReceiveConnector parameters that are properties, in Get- order.
pub const RC_PROPS: &[PropDef] = &[
    def("AuthMechanism", Kind::Flags(AUTH), Sp::Rtm),
    def("Banner", Kind::Str, Sp::Rtm),
    def("BinaryMimeEnabled", Kind::Bool, Sp::Rtm),
    def("Bindings", Kind::Multi, Sp::Rtm),
    def("ChunkingEnabled", Kind::Bool, Sp::Rtm),
    def("DefaultDomain", Kind::Str, Sp::Rtm),
    def("DeliveryStatusNotificationEnabled", Kind::Bool, Sp::Rtm),
    def("EightBitMimeEnabled", Kind::Bool, Sp::Rtm),
    // Absent from the EXCHG.140 syntax, present in the SP2/SP3 one (E2010-help
    // `eb7f8960…htm`): SP1.
    def("BareLinefeedRejectionEnabled", Kind::Bool, Sp::Sp1),
    def("DomainSecureEnabled", Kind::Bool, Sp::Rtm),
    def("EnhancedStatusCodesEnabled", Kind::Bool, Sp::Rtm),
    def("LongAddressesEnabled", Kind::Bool, Sp::Rtm),
    def("OrarEnabled", Kind::Bool, Sp::Rtm),
    // "Suppress Anonymous TLS Connections" is an Exchange 2010 (RTM documentation set)
    // task: technet dd876856(v=exchg.140).
    def("SuppressXAnonymousTls", Kind::Bool, Sp::Rtm),
    // In the "Applies to: Exchange Server 2010" syntax, technet bb125140(EXCHG.140).
    def("AdvertiseClientSettings", Kind::Bool, Sp::Rtm),
    def("Fqdn", Kind::Str, Sp::Rtm),
    def("Comment", Kind::Str, Sp::Rtm),
    def("Enabled", Kind::Bool, Sp::Rtm),
    def(
        "ConnectionTimeout",
        Kind::Span {
            min: 1,
            max: 86_400,
        },
        Sp::Rtm,
    ),
    def(
        "ConnectionInactivityTimeout",
        Kind::Span {
            min: 1,
            max: 86_400,
        },
        Sp::Rtm,
    ),
    def("MessageRateLimit", UNLIMITED_INT, Sp::Rtm),
    // In the EXCHG.140 syntax too.
    def(
        "MessageRateSource",
        Kind::Enum(&["None", "IPAddress", "User", "All"]),
        Sp::Rtm,
    ),
    def("MaxInboundConnection", UNLIMITED_INT, Sp::Rtm),
    def(
        "MaxInboundConnectionPerSource",
        Kind::Unlimited {
            min: 1,
            max: 10_000,
        },
        Sp::Rtm,
    ),
    def(
        "MaxInboundConnectionPercentagePerSource",
        Kind::Int { min: 1, max: 100 },
        Sp::Rtm,
    ),
    def(
        "MaxHeaderSize",
        Kind::Bytes {
            min: 1,
            max: 2_147_483_647,
        },
        Sp::Rtm,
    ),
    def("MaxHopCount", Kind::Int { min: 1, max: 500 }, Sp::Rtm),
    def("MaxLocalHopCount", Kind::Int { min: 0, max: 50 }, Sp::Rtm),
    def("MaxLogonFailures", Kind::Int { min: 0, max: 10 }, Sp::Rtm),
    def(
        "MaxMessageSize",
        Kind::Bytes {
            min: 65_536,
            max: 2_147_483_647,
        },
        Sp::Rtm,
    ),
    def(
        "MaxProtocolErrors",
        Kind::Unlimited {
            min: 0,
            max: 2_147_483_647,
        },
        Sp::Rtm,
    ),
    def(
        "MaxRecipientsPerMessage",
        Kind::Int {
            min: 1,
            max: 512_000,
        },
        Sp::Rtm,
    ),
    def("PermissionGroups", Kind::Flags(PERMISSION_GROUPS), Sp::Rtm),
    def("PipeliningEnabled", Kind::Bool, Sp::Rtm),
    def(
        "ProtocolLoggingLevel",
        Kind::Enum(&["None", "Verbose"]),
        Sp::Rtm,
    ),
    def("RemoteIPRanges", Kind::Multi, Sp::Rtm),
    def("RequireEHLODomain", Kind::Bool, Sp::Rtm),
    def("RequireTLS", Kind::Bool, Sp::Rtm),
    def("EnableAuthGSSAPI", Kind::Bool, Sp::Rtm),
    // Extended Protection came with SP1 (E2010-help `0d54c0e3…htm`).
    def(
        "ExtendedProtectionPolicy",
        Kind::Enum(&["None", "Allow", "Require"]),
        Sp::Sp1,
    ),
    def("LiveCredentialEnabled", Kind::Bool, Sp::Rtm),
    def(
        "SizeEnabled",
        Kind::Enum(&["Disabled", "Enabled", "EnabledWithoutValue"]),
        Sp::Rtm,
    ),
    def("TarpitInterval", Kind::Span { min: 0, max: 600 }, Sp::Rtm),
    // The help states no range (ODP-2018, 2010 text): any TimeSpan from zero.
    def(
        "MaxAcknowledgementDelay",
        Kind::Span {
            min: 0,
            max: MAX_TIMESPAN,
        },
        Sp::Rtm,
    ),
    // Documented for Exchange 2010 with no service pack named (ODP-2018, `!!! Exchange
    // Server 2010, Exchange Server 2013` text): "domain:capability,..." entries.
    def("TlsDomainCapabilities", Kind::Multi, Sp::Rtm),
];

/// One receive connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiveConnector {
    /// The connector name (unique per server).
    pub name: String,
    /// Its GUID.
    #[serde(default = "super::new_guid")]
    pub guid: String,
    /// The settings, by property name.
    #[serde(default)]
    pub settings: Bag,
    /// When it last changed (its `WhenChanged`); the install time when absent.
    #[serde(default)]
    pub changed: Option<super::SimTime>,
}

/// The two connectors Setup creates on a Hub Transport server.
pub fn default_connectors(server: &str, fqdn: &str) -> Vec<ReceiveConnector> {
    let common = |bindings: &str, groups: &str, auth: &str| {
        Bag::from_defaults(vec![
            ("AuthMechanism", SimValue::str(auth)),
            ("Banner", SimValue::Null),
            ("BinaryMimeEnabled", true.into()),
            ("Bindings", SimValue::strings([bindings])),
            ("ChunkingEnabled", true.into()),
            ("DefaultDomain", SimValue::Null),
            ("DeliveryStatusNotificationEnabled", true.into()),
            ("EightBitMimeEnabled", true.into()),
            ("BareLinefeedRejectionEnabled", false.into()),
            ("DomainSecureEnabled", false.into()),
            ("EnhancedStatusCodesEnabled", true.into()),
            ("LongAddressesEnabled", false.into()),
            ("OrarEnabled", false.into()),
            ("SuppressXAnonymousTls", false.into()),
            ("AdvertiseClientSettings", false.into()),
            ("Fqdn", SimValue::str(fqdn)),
            ("Comment", SimValue::Null),
            ("Enabled", true.into()),
            ("ConnectionTimeout", SimValue::str("00:10:00")),
            ("ConnectionInactivityTimeout", SimValue::str("00:05:00")),
            ("MessageRateLimit", SimValue::str("unlimited")),
            ("MessageRateSource", SimValue::str("IPAddress")),
            ("MaxInboundConnection", SimValue::str("5000")),
            ("MaxInboundConnectionPerSource", SimValue::str("20")),
            ("MaxInboundConnectionPercentagePerSource", SimValue::Int(2)),
            ("MaxHeaderSize", SimValue::str("64 KB (65,536 bytes)")),
            ("MaxHopCount", SimValue::Int(60)),
            ("MaxLocalHopCount", SimValue::Int(8)),
            ("MaxLogonFailures", SimValue::Int(3)),
            ("MaxMessageSize", SimValue::str("10 MB (10,485,760 bytes)")),
            ("MaxProtocolErrors", SimValue::str("5")),
            ("MaxRecipientsPerMessage", SimValue::Int(200)),
            ("PermissionGroups", SimValue::str(groups)),
            ("PipeliningEnabled", true.into()),
            ("ProtocolLoggingLevel", SimValue::str("None")),
            (
                "RemoteIPRanges",
                SimValue::strings(["0.0.0.0-255.255.255.255"]),
            ),
            ("RequireEHLODomain", false.into()),
            ("RequireTLS", false.into()),
            ("EnableAuthGSSAPI", false.into()),
            ("ExtendedProtectionPolicy", SimValue::str("None")),
            ("LiveCredentialEnabled", false.into()),
            ("SizeEnabled", SimValue::str("Enabled")),
            ("TarpitInterval", SimValue::str("00:00:05")),
            ("MaxAcknowledgementDelay", SimValue::str("00:00:30")),
            ("TlsDomainCapabilities", SimValue::List(Vec::new())),
        ])
    };
    vec![
        ReceiveConnector {
            name: format!("Default {server}"),
            guid: super::new_guid(),
            settings: common(
                "0.0.0.0:25",
                "AnonymousUsers, ExchangeUsers, ExchangeServers, ExchangeLegacyServers",
                "Tls, Integrated, BasicAuth, BasicAuthRequireTLS, ExchangeServer",
            ),
            changed: None,
        },
        ReceiveConnector {
            name: format!("Client {server}"),
            guid: super::new_guid(),
            settings: common(
                "0.0.0.0:587",
                "ExchangeUsers",
                "Tls, Integrated, BasicAuth, BasicAuthRequireTLS",
            ),
            changed: None,
        },
    ]
}

/// The checks Exchange makes across properties when a connector is saved.
pub fn validate(settings: &Bag) -> Result<(), ExchangeError> {
    // Set-ReceiveConnector help: "The value of the ConnectionTimeout parameter must be
    // greater than the value of the ConnectionInactivityTimeout parameter."
    if settings.seconds("ConnectionTimeout") <= settings.seconds("ConnectionInactivityTimeout") {
        return Err(ExchangeError::invalid_value(
            "The value of ConnectionTimeout must be greater than the value of ConnectionInactivityTimeout.",
        ));
    }
    Ok(())
}
