//! `imap_settings`: Set-ImapSettings on each target server.
//!
//! Exchange 2010 addresses the settings by `-Server` (there is no `-Identity`). A change
//! takes effect only after the Microsoft Exchange IMAP4 service restarts (Exchange 2010
//! help: "you must restart the IMAP4 service"), so every change requires that restart.
//! The connection limits are plain Int32 values: there is no `unlimited` for them.

use exctl_manifest::{Diagnostics, MapReader, Node};
use exctl_pwsh::{Command, quote};

use super::common;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext, Order, ParseContext,
    Payload, Resource, Scope, Service,
};
use crate::record::Observations;
use crate::value::{ParamSpec, ParamType::*, read_params};
use crate::version::Version;

const INT32: std::ops::RangeInclusive<i64> = 1..=2_147_483_647;

/// Set-ImapSettings parameters of Exchange 2010 that describe state (not -Server,
/// -DomainController, -Confirm, -WhatIf).
pub static PARAMS: &[ParamSpec] = &[
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

/// The IMAP4 settings of a server.
pub struct ImapSettings;

impl Kind for ImapSettings {
    fn key(&self) -> &'static str {
        "imap_settings"
    }

    fn title(&self) -> &'static str {
        "IMAP4 settings"
    }

    fn scope(&self) -> Scope {
        Scope::Server
    }

    fn order(&self) -> Order {
        Order {
            phase: 50,
            reason: "IMAP4 settings run after permissions, throttling and connectors, so the IMAP4 restart that follows them sees the final configuration",
        }
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let Some(reader) = MapReader::new(node, format!("{}.imap_settings", ctx.path), diags)
        else {
            return Vec::new();
        };
        let reader = reader.with_unknown_label("not a Set-ImapSettings parameter of Exchange 2010");
        let attrs = read_params(reader, PARAMS, ctx.version, "Set-ImapSettings", &[]);
        if attrs.is_empty() {
            return Vec::new();
        }
        // The host is the identity: `expand` sets it.
        vec![common::declared(Resource {
            kind: self.key(),
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
            restart: Some(Service::Imap4),
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
            let props = common::specs_of(PARAMS, &[r]);
            s.push_str(&common::observe_object(
                &r.id,
                &format!("Get-ImapSettings -Server {}", quote(&r.id)),
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
            let key = &r.id;
            if !common::existence(self.key(), &r.id, key, observed)? {
                return Err(DiffError {
                    kind: self.key(),
                    id: r.id.clone(),
                    message: "Get-ImapSettings returned nothing: is the Client Access role installed on this server?".into(),
                });
            }
            let (attrs, unchanged) = common::compare_attrs(self.key(), r, key, PARAMS, observed)?;
            if attrs.is_empty() {
                continue;
            }
            let cmd = common::with_parameters(
                Command::new("Set-ImapSettings").param("Server", &r.id),
                &attrs,
            );
            out.push(common::update(r, &r.id, attrs, unchanged, vec![cmd]));
        }
        Ok(out)
    }

    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        let props: Vec<&ParamSpec> = PARAMS.iter().filter(|p| p.since <= ctx.version).collect();
        common::observe_object(
            &common::obs_key(self.key(), ctx.host),
            &format!("Get-ImapSettings -Server {}", quote(ctx.host)),
            &props,
        )
    }

    /// Every parameter, as the server holds it: the export pins the whole service.
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let key = common::obs_key(self.key(), ctx.host);
        if !common::existence(self.key(), ctx.host, &key, observed)? {
            return Err(DiffError {
                kind: self.key(),
                id: ctx.host.to_string(),
                message: "Get-ImapSettings returned nothing: is the Client Access role installed on this server?".into(),
            });
        }
        let mut body = Yaml::map();
        for spec in PARAMS.iter().filter(|p| p.since <= ctx.version) {
            let v = common::observed_value(self.key(), ctx.host, &key, spec, observed)?;
            export::push_param(&mut body, spec, &v);
        }
        Ok(Some(Section {
            body,
            notes: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::value::{RawValue, Value};
    use crate::version::Version;

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_v(yaml, Version::Sp3)
    }

    fn parse_v(yaml: &str, version: Version) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
        let ctx = ParseContext::new(version, vec!["EX01".into()], "site.yaml");
        let r = read_for_host(&ImapSettings, &docs[0].root, &ctx, "EX01", &mut diags);
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
        let changes = ImapSettings.diff(&refs, &o, &ctx).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].unchanged, 1);
        assert_eq!(changes[0].restart, Some(Service::Imap4));
        assert_eq!(
            changes[0].script(),
            "Set-ImapSettings -Server 'EX01' -MaxConnectionsPerUser 40"
        );
        let script = ImapSettings.observe(&refs, &ctx);
        assert!(script.contains("Get-ImapSettings -Server 'EX01'"));
    }
}
