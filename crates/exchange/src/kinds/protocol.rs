//! `imap_settings` and `pop_settings`: Set-ImapSettings and Set-PopSettings on each
//! target server, one kind driven by a table of protocols ([`Protocol`]: [`IMAP4`],
//! [`POP3`]). A third protocol of the same shape is one more table entry and one line in
//! [`super::ALL`].
//!
//! Exchange 2010 addresses the settings by `-Server` (there is no `-Identity`). A change
//! takes effect only after the protocol's service restarts, so every change requires that
//! restart: Microsoft Exchange IMAP4 (Exchange 2010 help: "you must restart the IMAP4
//! service") or Microsoft Exchange POP3 (EXCHG.140 "Set Connection Limits for POP3",
//! `aa997988`: "After you set connection limits, you must restart the POP3 service").
//! Exchange 2010 installs MSExchangePOP3 (like MSExchangeIMAP4) as Manual and stopped
//! (reference: guides.wmlcloud.com, "Exchange 2010 – Configuring POP3 and IMAP4"), so the
//! restart is owed only when the service runs or starts automatically; the plan says so
//! otherwise (see [`crate::services::ServiceSpec::protocol`]). The connection limits are plain Int32 values:
//! there is no `unlimited` for them.
//!
//! The POP3 parameters are Set-ImapSettings' with two differences: POP3 has
//! `MessageRetrievalSortOrder` (Ascending or Descending: the order of the messages a
//! client lists) and no `ShowHiddenFoldersEnabled` (POP3 sees the Inbox only). Sources:
//! ODP `Set-PopSettings.md` (MicrosoftDocs/office-docs-powershell, "Applicable: Exchange
//! Server 2010" on every parameter), the Exchange 2007 syntax (`aa997154(v=exchg.80)`,
//! which already has MessageRetrievalSortOrder) and EXCHG.140 `aa997988` for the 2010
//! connection limits. The sources of each parameter are beside it in [`IMAP4_PARAMS`] and
//! [`POP3_PARAMS`].
//!
//! Observation keys: IMAP4 settings are reported under the host name (as they always
//! were: plan files and tests name that key), POP3 settings under `pop_settings:<host>`;
//! `exctl export` reports both under `<key>:<host>` ([`Protocol::host_key`] says which).
//!
//! # The seam for other readers
//!
//! Capacity and doctor read a server's IMAP4 limits and bindings through this kind rather
//! than with PowerShell and a decoder of their own: [`Protocol::reading`] makes the
//! resource that names the parameters wanted, [`Kind::observe`] of that resource is the
//! PowerShell, and [`Protocol::current`] decodes what it reported with the parameters'
//! own types (the decoding [`Kind::diff`] uses).

use exctl_manifest::{Diagnostics, MapReader, Node};
use exctl_pwsh::{Command, quote};

use super::common;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext, Order, ParseContext,
    Payload, Resource, Scope, Service, SettingsCmdlet,
};
use crate::record::Observations;
use crate::services::{self, ServiceSpec};
use crate::value::{ParamSpec, ParamType::*, Value, read_params};
use crate::version::Version;

const INT32: std::ops::RangeInclusive<i64> = 1..=2_147_483_647;

/// One protocol's settings cmdlets: everything that differs between IMAP4 and POP3.
#[derive(Debug)]
pub struct Protocol {
    /// The manifest key (`imap_settings`).
    pub key: &'static str,
    /// The title in plans (`IMAP4 settings`).
    pub title: &'static str,
    /// The cmdlet that reads the settings (`Get-ImapSettings`).
    pub get: &'static str,
    /// The cmdlet that changes them (`Set-ImapSettings`).
    pub set: &'static str,
    /// The parameters a manifest may declare, with their types, ranges and releases.
    pub params: &'static [ParamSpec],
    /// Where its changes run, and why.
    pub order: Order,
    /// The section's help paragraph ([`Kind::help`]).
    pub help: &'static str,
    /// The Exchange cmdlets its scripts call: `get` and `set` ([`Kind::cmdlets`]).
    pub cmdlets: &'static [&'static str],
    /// The services its changes restart: the protocol's own (the first), declared to the
    /// registry through [`Kind::services`].
    pub services: &'static [Service],
    /// Whether the observation reports under the host name rather than `<key>:<host>`
    /// (IMAP4's key from before the kinds namespaced theirs).
    pub host_key: bool,
}

/// Set-ImapSettings parameters of Exchange 2010 that describe state (not -Server,
/// -DomainController, -Confirm, -WhatIf).
pub static IMAP4_PARAMS: &[ParamSpec] = &[
    ParamSpec::all("AuthenticatedConnectionTimeout", TimeSpan(30..=86_400)),
    ParamSpec::all("Banner", Str),
    ParamSpec::all(
        "CalendarItemRetrievalOption",
        Enum(&["iCalendar", "IntranetUrl", "InternetUrl", "Custom"]),
    ),
    ParamSpec::all("EnableExactRFC822Size", Bool),
    ParamSpec::all("EnableGSSAPIAndNTLMAuth", Bool),
    ParamSpec::all("EnforceCertificateErrors", Bool),
    // Extended Protection for Authentication came with SP1: "Exchange Server 2010 Service
    // Pack 1 (SP1) supports Extended Protection for Authentication" (E2010-help
    // `0d54c0e3…htm`, "Understanding Extended Protection for Authentication").
    ParamSpec::since(
        "ExtendedProtectionPolicy",
        Enum(&["None", "Allow", "Require"]),
        Version::Sp1,
    ),
    // What OWA shows users for configuring an IMAP4 client ("host:port:encryption").
    ParamSpec::all("ExternalConnectionSettings", StrList),
    ParamSpec::all("InternalConnectionSettings", StrList),
    // In the SP2/SP3 syntax only (E2010-help `58e51734…htm`), not in ODP-2018's 2010
    // list; SP1 assumed, as the simulator does.
    ParamSpec::since("LiveIdBasicAuthReplacement", Bool, Version::Sp1),
    ParamSpec::all(
        "LoginType",
        Enum(&["PlainTextLogin", "PlainTextAuthentication", "SecureLogin"]),
    ),
    ParamSpec::all("LogFileLocation", Str),
    ParamSpec::all(
        "LogFileRollOverSettings",
        Enum(&["Hourly", "Daily", "Weekly", "Monthly"]),
    ),
    ParamSpec::all("LogPerFileSizeQuota", UnlimitedBytes(0..=4_294_967_296)),
    // 40–1024 bytes in Exchange 2010 (ODP-2018 `Set-ImapSettings.md`, its `!!! Exchange
    // Server 2010` text); 1024–16384 is Exchange 2013's range.
    ParamSpec::all("MaxCommandSize", Int(40..=1024)),
    ParamSpec::all("MaxConnectionFromSingleIP", Int(1..=25_000)),
    ParamSpec::all("MaxConnections", Int(INT32)),
    ParamSpec::all("MaxConnectionsPerUser", Int(1..=25_000)),
    ParamSpec::all(
        "MessageRetrievalMimeFormat",
        Enum(&[
            "TextOnly",
            "HtmlOnly",
            "HtmlAndTextAlternative",
            "TextEnrichedOnly",
            "TextEnrichedAndTextAlternative",
            "BestBodyFormat",
            "Tnef",
        ]),
    ),
    ParamSpec::all("OwaServerUrl", Str),
    ParamSpec::all("PreAuthenticatedConnectionTimeout", TimeSpan(10..=3_600)),
    ParamSpec::all("ProtocolLogEnabled", Bool),
    ParamSpec::all("ProxyTargetPort", Int(0..=65_535)),
    ParamSpec::all("ShowHiddenFoldersEnabled", Bool),
    ParamSpec::all("SSLBindings", StrList),
    ParamSpec::all("SuppressReadReceipt", Bool),
    ParamSpec::all("UnencryptedOrTLSBindings", StrList),
    ParamSpec::all("X509CertificateName", Str),
];

/// Set-PopSettings parameters of Exchange 2010 that describe state (not -Server,
/// -DomainController, -Confirm, -WhatIf).
pub static POP3_PARAMS: &[ParamSpec] = &[
    // 30 s–1 day and 10 s–1 h as for IMAP4 (the 2010 help, in seconds); the current ODP
    // text gives 30 s for the pre-authenticated floor, which is Exchange 2013's.
    ParamSpec::all("AuthenticatedConnectionTimeout", TimeSpan(30..=86_400)),
    ParamSpec::all("Banner", Str),
    ParamSpec::all(
        "CalendarItemRetrievalOption",
        Enum(&["iCalendar", "IntranetUrl", "InternetUrl", "Custom"]),
    ),
    ParamSpec::all("EnableExactRFC822Size", Bool),
    ParamSpec::all("EnableGSSAPIAndNTLMAuth", Bool),
    ParamSpec::all("EnforceCertificateErrors", Bool),
    // Extended Protection for Authentication came with SP1 for both protocols (E2010-help
    // `0d54c0e3…htm`, as for Set-ImapSettings).
    ParamSpec::since(
        "ExtendedProtectionPolicy",
        Enum(&["None", "Allow", "Require"]),
        Version::Sp1,
    ),
    ParamSpec::all("ExternalConnectionSettings", StrList),
    ParamSpec::all("InternalConnectionSettings", StrList),
    // In Set-ImapSettings' SP2/SP3 syntax (E2010-help `58e51734…htm`); the two cmdlets
    // share their parameter class, so SP1 is assumed here as there.
    ParamSpec::since("LiveIdBasicAuthReplacement", Bool, Version::Sp1),
    ParamSpec::all(
        "LoginType",
        Enum(&["PlainTextLogin", "PlainTextAuthentication", "SecureLogin"]),
    ),
    ParamSpec::all("LogFileLocation", Str),
    ParamSpec::all(
        "LogFileRollOverSettings",
        Enum(&["Hourly", "Daily", "Weekly", "Monthly"]),
    ),
    ParamSpec::all("LogPerFileSizeQuota", UnlimitedBytes(0..=4_294_967_296)),
    // "Valid values are from 40 through 1024. The default value is 512." (ODP).
    ParamSpec::all("MaxCommandSize", Int(40..=1024)),
    // 1–25,000 in 2010 (EXCHG.140 `aa997988`); 1–2147483647 is Exchange 2013's.
    ParamSpec::all("MaxConnectionFromSingleIP", Int(1..=25_000)),
    // The cmdlet accepts any positive Int32, as for IMAP4 (the EMC page's 25,000 is the
    // console's limit).
    ParamSpec::all("MaxConnections", Int(INT32)),
    ParamSpec::all("MaxConnectionsPerUser", Int(1..=25_000)),
    ParamSpec::all(
        "MessageRetrievalMimeFormat",
        Enum(&[
            "TextOnly",
            "HtmlOnly",
            "HtmlAndTextAlternative",
            "TextEnrichedOnly",
            "TextEnrichedAndTextAlternative",
            "BestBodyFormat",
            "Tnef",
        ]),
    ),
    ParamSpec::all(
        "MessageRetrievalSortOrder",
        Enum(&["Ascending", "Descending"]),
    ),
    ParamSpec::all("OwaServerUrl", Str),
    ParamSpec::all("PreAuthenticatedConnectionTimeout", TimeSpan(10..=3_600)),
    ParamSpec::all("ProtocolLogEnabled", Bool),
    ParamSpec::all("ProxyTargetPort", Int(0..=65_535)),
    ParamSpec::all("SSLBindings", StrList),
    ParamSpec::all("SuppressReadReceipt", Bool),
    ParamSpec::all("UnencryptedOrTLSBindings", StrList),
    ParamSpec::all("X509CertificateName", Str),
];

// Each protocol's names, shared by its row and its service's spec (which says what the
// service loads when it starts).
const IMAP4_KEY: &str = "imap_settings";
const IMAP4_GET: &str = "Get-ImapSettings";
const IMAP4_SET: &str = "Set-ImapSettings";
const POP3_KEY: &str = "pop_settings";
const POP3_GET: &str = "Get-PopSettings";
const POP3_SET: &str = "Set-PopSettings";

/// Microsoft Exchange IMAP4 (MSExchangeIMAP4): loads the settings when it starts, so every
/// change of `imap_settings` requires its restart.
pub static IMAP4_SERVICE_SPEC: ServiceSpec = ServiceSpec {
    name: "MSExchangeIMAP4",
    consequence: "IMAP4 clients on this server are disconnected and reconnect",
    order: 50,
    protocol: Some(services::Protocol {
        kind: IMAP4_KEY,
        read_cmdlet: IMAP4_GET,
    }),
    health: true,
    mailbox_databases: false,
};

/// The IMAP4 service (see [`IMAP4_SERVICE_SPEC`]).
pub const IMAP4_SERVICE: Service = Service::new(&IMAP4_SERVICE_SPEC);

/// Microsoft Exchange POP3 (MSExchangePOP3): loads the settings when it starts, so every
/// change of `pop_settings` requires its restart.
pub static POP3_SERVICE_SPEC: ServiceSpec = ServiceSpec {
    name: "MSExchangePOP3",
    consequence: "POP3 clients on this server are disconnected and reconnect",
    order: 55,
    protocol: Some(services::Protocol {
        kind: POP3_KEY,
        read_cmdlet: POP3_GET,
    }),
    health: false,
    mailbox_databases: false,
};

/// The POP3 service (see [`POP3_SERVICE_SPEC`]).
pub const POP3_SERVICE: Service = Service::new(&POP3_SERVICE_SPEC);

/// The IMAP4 settings of a server (`imap_settings`).
pub static IMAP4: Protocol = Protocol {
    key: IMAP4_KEY,
    title: "IMAP4 settings",
    get: IMAP4_GET,
    set: IMAP4_SET,
    params: IMAP4_PARAMS,
    order: Order {
        phase: 50,
        reason: "IMAP4 settings run after permissions, throttling and connectors, so the IMAP4 restart that follows them sees the final configuration",
    },
    help: "IMAP4 settings of each target server (Set-ImapSettings -Server): a map of its parameters, e.g. MaxConnectionsPerUser: 40. A change takes effect when MSExchangeIMAP4 restarts, which the plan schedules if the service runs or starts automatically.",
    cmdlets: &[IMAP4_GET, IMAP4_SET],
    services: &[IMAP4_SERVICE],
    host_key: true,
};

/// The POP3 settings of a server (`pop_settings`).
pub static POP3: Protocol = Protocol {
    key: POP3_KEY,
    title: "POP3 settings",
    get: POP3_GET,
    set: POP3_SET,
    params: POP3_PARAMS,
    order: Order {
        phase: 55,
        reason: "POP3 settings run after the IMAP4 settings and before registry values, so the POP3 restart that follows them sees the final configuration and the Information Store restart stays last",
    },
    help: "POP3 settings of each target server (Set-PopSettings -Server): a map of its parameters, e.g. MaxConnectionsPerUser: 40. A change takes effect when MSExchangePOP3 restarts, which the plan schedules if the service runs or starts automatically (Exchange 2010 installs it Manual and stopped).",
    cmdlets: &[POP3_GET, POP3_SET],
    services: &[POP3_SERVICE],
    host_key: false,
};

impl Protocol {
    /// The key the observation of `host`'s settings reports under.
    pub fn observation_key(&self, host: &str) -> String {
        if self.host_key {
            host.to_string()
        } else {
            common::obs_key(self.key, host)
        }
    }

    /// What a server without these settings (no Client Access role) makes the plan say.
    fn missing(&self, id: &str) -> DiffError {
        DiffError {
            kind: self.key,
            id: id.to_string(),
            message: format!(
                "{} returned nothing: is the Client Access role installed on this server?",
                self.get
            ),
        }
    }

    /// A resource no manifest declared that names `params` of `host`'s settings, for a
    /// reader that wants them observed ([`Kind::observe`]) and decoded
    /// ([`Protocol::current`]). Names not in the table are left out.
    pub fn reading(&self, host: &str, params: &[&str]) -> Resource {
        let mut r = common::synthetic(self.key, host.to_string(), Payload::none());
        r.attrs = params
            .iter()
            .filter_map(|p| common::spec(self.params, p))
            .map(|s| DesiredAttr {
                name: s.name.to_string(),
                // Observation reads only the names; no value is compared.
                value: Value::Null,
                span: r.span,
            })
            .collect();
        r
    }

    /// The values `host` reported for `params` (in that order, by the table's names),
    /// decoded with the parameters' types. An error when the read failed, the server
    /// has no such settings, or a value is not one of its type.
    pub fn current(
        &self,
        host: &str,
        observed: &Observations,
        params: &[&str],
    ) -> Result<Vec<(&'static str, Value)>, DiffError> {
        let key = self.observation_key(host);
        if !common::existence(self.key, host, &key, observed)? {
            return Err(self.missing(host));
        }
        params
            .iter()
            .filter_map(|p| common::spec(self.params, p))
            .map(|spec| {
                common::observed_value(self.key, host, &key, spec, observed).map(|v| (spec.name, v))
            })
            .collect()
    }
}

impl Kind for Protocol {
    fn key(&self) -> &'static str {
        self.key
    }

    fn title(&self) -> &'static str {
        self.title
    }

    fn scope(&self) -> Scope {
        Scope::Server
    }

    fn order(&self) -> Order {
        self.order
    }

    fn services(&self) -> &'static [Service] {
        self.services
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let Some(reader) = MapReader::new(node, format!("{}.{}", ctx.path, self.key), diags) else {
            return Vec::new();
        };
        let reader =
            reader.with_unknown_label(format!("not a {} parameter of Exchange 2010", self.set));
        let attrs = read_params(reader, self.params, ctx.version, self.set, &[]);
        if attrs.is_empty() {
            return Vec::new();
        }
        // The host is the identity: `expand` sets it.
        vec![common::declared(Resource {
            kind: self.key,
            id: String::new(),
            ensure: Ensure::Present,
            attrs: attrs
                .into_iter()
                .map(|(name, value, node)| DesiredAttr {
                    name: name.to_string(),
                    value,
                    span: node.span,
                })
                .collect(),
            payload: Payload::none(),
            restart: self.services.first().copied(),
            sensitive: Vec::new(),
            span: node.span,
        })]
    }

    /// The settings of each host are that host's.
    fn expand(&self, declared: &[Declared], host: &str, _diags: &mut Diagnostics) -> Vec<Resource> {
        common::host_is_identity(declared, host)
    }

    fn observe(&self, resources: &[&Resource], _ctx: &ObserveContext<'_>) -> String {
        let mut s = String::new();
        for r in resources {
            let props = common::specs_of(self.params, &[r]);
            s.push_str(&common::observe_object(
                &self.observation_key(&r.id),
                &format!("{} -Server {}", self.get, quote(&r.id)),
                &props,
            ));
        }
        s
    }

    fn diff(
        &self,
        resources: &[&Resource],
        observed: &Observations,
        _ctx: &ObserveContext<'_>,
    ) -> Result<Vec<Change>, DiffError> {
        let mut out = Vec::new();
        for r in resources {
            let key = self.observation_key(&r.id);
            if !common::existence(self.key, &r.id, &key, observed)? {
                return Err(self.missing(&r.id));
            }
            let (attrs, unchanged) =
                common::compare_attrs(self.key, r, &key, self.params, observed)?;
            if attrs.is_empty() {
                continue;
            }
            let cmd =
                common::with_parameters(Command::new(self.set).param("Server", &r.id), &attrs);
            out.push(common::update(r, &r.id, attrs, unchanged, vec![cmd]));
        }
        Ok(out)
    }

    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        let props: Vec<&ParamSpec> = self
            .params
            .iter()
            .filter(|p| p.since <= ctx.version)
            .collect();
        common::observe_object(
            &common::obs_key(self.key, ctx.host),
            &format!("{} -Server {}", self.get, quote(ctx.host)),
            &props,
        )
    }

    /// Every parameter, as the server holds it: the export pins the whole service.
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let key = common::obs_key(self.key, ctx.host);
        if !common::existence(self.key, ctx.host, &key, observed)? {
            return Err(self.missing(ctx.host));
        }
        let mut body = Yaml::map();
        for spec in self.params.iter().filter(|p| p.since <= ctx.version) {
            let v = common::observed_value(self.key, ctx.host, &key, spec, observed)?;
            export::push_param(&mut body, spec, &v);
        }
        Ok(Some(Section {
            body,
            notes: Vec::new(),
        }))
    }

    fn schema(&self) -> serde_json::Value {
        crate::schema::params_object(self.params, &[])
    }

    fn help(&self) -> &'static str {
        self.help
    }

    fn cmdlets(&self) -> &'static [&'static str] {
        self.cmdlets
    }

    fn settings_cmdlets(&self) -> Vec<SettingsCmdlet> {
        vec![SettingsCmdlet {
            cmdlet: self.set,
            params: self.params,
            skip: &[],
            not_managed: &[],
        }]
    }
}

#[cfg(test)]
mod imap_tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::value::{RawValue, Value};

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_v(yaml, Version::Sp3)
    }

    fn parse_v(yaml: &str, version: Version) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
        let ctx = ParseContext::new(version, vec!["EX01".into()], "site.yaml");
        let r = read_for_host(&IMAP4, &docs[0].root, &ctx, "EX01", &mut diags);
        (r, diags)
    }

    #[test]
    fn reads_parameters_case_insensitively_and_reports_unknown_ones() {
        let (r, d) = parse("maxconnectionsperuser: 40\nMaxConnectionPerIP: 5\n");
        assert_eq!(r[0].attrs[0].name, "MaxConnectionsPerUser");
        assert_eq!(r[0].attrs[0].value, Value::Int(40));
        let msgs: Vec<String> = d
            .iter()
            .map(|d| format!("{} {:?}", d.message, d.hint))
            .collect();
        assert!(
            msgs.iter().any(|m| m.contains("MaxConnectionPerIP")),
            "{msgs:?}"
        );
    }

    #[test]
    fn exchange_2010_ranges_and_releases() {
        // 40–1024 in 2010; 16384 is 2013's ceiling.
        let (_, d) = parse("MaxCommandSize: 1025\n");
        assert!(d.iter().any(|d| d.is_error()), "1025");
        let (r, d) = parse("MaxCommandSize: 1024\n");
        assert!(d.is_empty() && r.len() == 1);
        // Extended Protection came with SP1.
        let (_, d) = parse_v("ExtendedProtectionPolicy: Allow\n", Version::Rtm);
        let e = d.iter().next().expect("a diagnostic");
        assert_eq!(e.code, "exchange::parameter-not-in-version");
        let (r, d) = parse_v("ExtendedProtectionPolicy: Allow\n", Version::Sp1);
        assert!(d.is_empty() && r.len() == 1);
        // The connection settings OWA shows exist from RTM.
        let (r, d) = parse_v(
            "ExternalConnectionSettings: [mail.contoso.com:993:SSL]\nInternalConnectionSettings: []\n",
            Version::Rtm,
        );
        assert!(
            d.is_empty(),
            "{:?}",
            d.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
        assert_eq!(r[0].attrs.len(), 2);
    }

    #[test]
    fn out_of_range_is_an_error_at_its_location() {
        let (_, d) = parse("MaxConnectionsPerUser: 0\n");
        let e = d.iter().next().expect("a diagnostic");
        assert!(e.is_error());
        assert_eq!(
            e.span.map(|s| (s.start.line, s.start.column)),
            Some((1, 24))
        );
    }

    #[test]
    fn diff_sets_only_what_differs_and_requires_the_imap_restart() {
        let (r, _) = parse("MaxConnectionsPerUser: 40\nMaxConnectionFromSingleIP: 2000\n");
        let mut o = Observations::default();
        o.insert("EX01", "__exists", RawValue::Str("True".into()));
        o.insert("EX01", "MaxConnectionsPerUser", RawValue::Str("16".into()));
        o.insert(
            "EX01",
            "MaxConnectionFromSingleIP",
            RawValue::Str("2000".into()),
        );
        let ctx = ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        };
        let refs: Vec<&Resource> = r.iter().collect();
        let changes = IMAP4.diff(&refs, &o, &ctx).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].unchanged, 1);
        assert_eq!(changes[0].restart, Some(IMAP4_SERVICE));
        assert_eq!(
            changes[0].script(),
            "Set-ImapSettings -Server 'EX01' -MaxConnectionsPerUser 40"
        );
        let script = IMAP4.observe(&refs, &ctx);
        assert!(script.contains("Get-ImapSettings -Server 'EX01'"));
    }
}

#[cfg(test)]
mod pop_tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::kinds::common::testutil;
    use crate::value::{RawValue, Value};

    fn parse_v(yaml: &str, version: Version) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
        let ctx = ParseContext::new(version, vec!["EX01".into()], "site.yaml");
        let r = read_for_host(&POP3, &docs[0].root, &ctx, "EX01", &mut diags);
        (r, diags)
    }

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_v(yaml, Version::Sp3)
    }

    fn messages(d: &Diagnostics) -> Vec<String> {
        d.iter()
            .map(|d| format!("{} {:?}", d.message, d.hint))
            .collect()
    }

    #[test]
    fn reads_parameters_case_insensitively_and_requires_the_pop3_restart() {
        let (r, d) = parse("maxconnectionsperuser: 40\nMessageRetrievalSortOrder: Descending\n");
        assert!(d.is_empty(), "{:?}", messages(&d));
        assert_eq!(r[0].attrs[0].name, "MaxConnectionsPerUser");
        assert_eq!(r[0].attrs[0].value, Value::Int(40));
        assert_eq!(r[0].restart, Some(POP3_SERVICE));
        assert_eq!(r[0].kind, "pop_settings");
    }

    #[test]
    fn imap_only_parameters_are_refused() {
        // POP3 sees the Inbox only: there are no hidden folders to show.
        let (r, d) = parse("ShowHiddenFoldersEnabled: true\n");
        assert!(r.is_empty());
        let msgs = messages(&d);
        assert!(
            msgs.iter().any(|m| m.contains("ShowHiddenFoldersEnabled")),
            "{msgs:?}"
        );
        assert!(d.iter().any(|d| d.is_error()));
    }

    #[test]
    fn exchange_2010_ranges_and_releases() {
        for (yaml, ok) in [
            ("MaxCommandSize: 1025\n", false),
            ("MaxCommandSize: 39\n", false),
            ("MaxCommandSize: 1024\n", true),
            // 25,000 in 2010; 2147483647 is 2013's ceiling.
            ("MaxConnectionsPerUser: 25001\n", false),
            ("MaxConnectionFromSingleIP: 25000\n", true),
            ("MaxConnections: 2147483647\n", true),
            ("MaxConnections: 0\n", false),
            ("MessageRetrievalSortOrder: Sideways\n", false),
            ("LoginType: PlainTextLogin\n", true),
        ] {
            let (_, d) = parse(yaml);
            assert_eq!(
                !d.iter().any(|d| d.is_error()),
                ok,
                "{yaml}: {:?}",
                messages(&d)
            );
        }
        // Extended Protection and the Live ID replacement came with SP1.
        for p in [
            "ExtendedProtectionPolicy: Allow\n",
            "LiveIdBasicAuthReplacement: true\n",
        ] {
            let (_, d) = parse_v(p, Version::Rtm);
            let e = d.iter().next().expect("a diagnostic");
            assert_eq!(e.code, "exchange::parameter-not-in-version", "{p}");
            let (r, d) = parse_v(p, Version::Sp1);
            assert!(d.is_empty() && r.len() == 1, "{p}");
        }
    }

    #[test]
    fn diff_sets_only_what_differs_with_plain_commands() {
        let (r, _) = parse("MaxConnectionsPerUser: 40\nMessageRetrievalSortOrder: Ascending\n");
        let mut o = Observations::default();
        let key = "pop_settings:EX01";
        o.insert(key, "__exists", RawValue::Str("True".into()));
        o.insert(key, "MaxConnectionsPerUser", RawValue::Str("16".into()));
        o.insert(
            key,
            "MessageRetrievalSortOrder",
            RawValue::Str("Ascending".into()),
        );
        let ctx = ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        };
        let refs: Vec<&Resource> = r.iter().collect();
        let changes = POP3.diff(&refs, &o, &ctx).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].unchanged, 1);
        assert_eq!(changes[0].restart, Some(POP3_SERVICE));
        assert_eq!(
            changes[0].script(),
            "Set-PopSettings -Server 'EX01' -MaxConnectionsPerUser 40"
        );
        testutil::assert_plain(&changes[0]);
        let script = POP3.observe(&refs, &ctx);
        assert!(script.contains("Get-PopSettings -Server 'EX01'"));
        testutil::assert_parses(&script);
    }

    #[test]
    fn a_server_without_pop3_settings_is_an_error_not_a_change() {
        let (r, _) = parse("Banner: hello\n");
        let mut o = Observations::default();
        o.insert(
            "pop_settings:EX01",
            "__exists",
            RawValue::Str("False".into()),
        );
        let ctx = ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        };
        let refs: Vec<&Resource> = r.iter().collect();
        let e = POP3.diff(&refs, &o, &ctx).unwrap_err();
        assert!(e.message.contains("Client Access"), "{e}");
    }

    #[test]
    fn a_hostile_banner_stays_one_literal() {
        let yaml = format!("Banner: {}\n", testutil::yaml_quote(testutil::HOSTILE));
        let (r, d) = parse(&yaml);
        assert!(d.is_empty(), "{:?}", messages(&d));
        let (benign, _) = parse("Banner: harmless\n");
        let mut o = Observations::default();
        o.insert(
            "pop_settings:EX01",
            "__exists",
            RawValue::Str("True".into()),
        );
        o.insert("pop_settings:EX01", "Banner", RawValue::Str("old".into()));
        let ctx = ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        };
        let hostile = POP3.diff(&r.iter().collect::<Vec<_>>(), &o, &ctx).unwrap();
        let harmless = POP3
            .diff(&benign.iter().collect::<Vec<_>>(), &o, &ctx)
            .unwrap();
        testutil::assert_contained(
            &hostile[0].script(),
            &harmless[0].script(),
            testutil::HOSTILE,
        );
    }
}

#[cfg(test)]
mod reading_tests {
    use super::*;
    use crate::value::RawValue;

    #[test]
    fn a_reading_observes_the_named_parameters_and_current_decodes_them() {
        let r = IMAP4.reading("EX01", &["maxconnections", "SSLBindings", "NoSuchThing"]);
        let names: Vec<&str> = r.attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["MaxConnections", "SSLBindings"]);
        let ctx = ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        };
        let script = IMAP4.observe(&[&r], &ctx);
        assert!(
            script.contains("Get-ImapSettings -Server 'EX01'"),
            "{script}"
        );
        assert!(
            script.contains("'SSLBindings' @($o.SSLBindings)"),
            "{script}"
        );
        assert!(!script.contains("Banner"), "{script}");
        let mut o = Observations::default();
        o.insert("EX01", "__exists", RawValue::Str("True".into()));
        o.insert("EX01", "MaxConnections", RawValue::Str("2147483647".into()));
        o.insert(
            "EX01",
            "SSLBindings",
            RawValue::List(vec!["0.0.0.0:993".into()]),
        );
        let got = IMAP4
            .current("EX01", &o, &["MaxConnections", "SSLBindings"])
            .unwrap();
        assert_eq!(
            got,
            vec![
                ("MaxConnections", Value::Int(2_147_483_647)),
                ("SSLBindings", Value::List(vec!["0.0.0.0:993".into()])),
            ]
        );
        // A server without the Client Access role, and a refused read, are errors.
        let mut none = Observations::default();
        none.insert("EX01", "__exists", RawValue::Str("False".into()));
        let e = IMAP4
            .current("EX01", &none, &["MaxConnections"])
            .unwrap_err();
        assert!(
            e.message.contains("Get-ImapSettings returned nothing"),
            "{e}"
        );
        let mut failed = Observations::default();
        failed.insert("EX01", "__error", RawValue::Str("boom".into()));
        let e = IMAP4
            .current("EX01", &failed, &["MaxConnections"])
            .unwrap_err();
        assert_eq!(e.message, "boom");
    }

    #[test]
    fn the_two_protocols_differ_only_where_exchange_does() {
        let names = |p: &Protocol| -> Vec<&str> { p.params.iter().map(|s| s.name).collect() };
        let (imap, pop) = (names(&IMAP4), names(&POP3));
        let only_imap: Vec<&&str> = imap.iter().filter(|n| !pop.contains(n)).collect();
        let only_pop: Vec<&&str> = pop.iter().filter(|n| !imap.contains(n)).collect();
        assert_eq!(only_imap, [&"ShowHiddenFoldersEnabled"]);
        assert_eq!(only_pop, [&"MessageRetrievalSortOrder"]);
        assert_eq!(IMAP4.observation_key("EX01"), "EX01");
        assert_eq!(POP3.observation_key("EX01"), "pop_settings:EX01");
    }
}
