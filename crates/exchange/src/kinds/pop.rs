//! `pop_settings`: Set-PopSettings on each target server.
//!
//! The POP3 twin of [`super::imap`]: Exchange 2010 addresses the settings by `-Server`
//! (there is no `-Identity`), and a change takes effect only after the Microsoft Exchange
//! POP3 service restarts (EXCHG.140 "Set Connection Limits for POP3", `aa997988`: "After
//! you set connection limits, you must restart the POP3 service"). Exchange 2010 installs
//! MSExchangePOP3 as Manual and stopped (reference: guides.wmlcloud.com, "Exchange 2010 –
//! Configuring POP3 and IMAP4"), so the restart is owed only when the service runs or
//! starts automatically; the plan says so otherwise (see [`Service::protocol`]).
//!
//! The parameters are Set-ImapSettings' with two differences: POP3 has
//! `MessageRetrievalSortOrder` (Ascending or Descending: the order of the messages a
//! client lists) and no `ShowHiddenFoldersEnabled` (POP3 sees the Inbox only). Sources:
//! ODP `Set-PopSettings.md` (MicrosoftDocs/office-docs-powershell, "Applicable: Exchange
//! Server 2010" on every parameter), the Exchange 2007 syntax (`aa997154(v=exchg.80)`,
//! which already has MessageRetrievalSortOrder) and EXCHG.140 `aa997988` for the 2010
//! connection limits.

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

/// Set-PopSettings parameters of Exchange 2010 that describe state (not -Server,
/// -DomainController, -Confirm, -WhatIf).
pub static PARAMS: &[ParamSpec] = &[
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

/// What a server without POP3 settings (no Client Access role) makes the plan say.
const NO_SETTINGS: &str =
    "Get-PopSettings returned nothing: is the Client Access role installed on this server?";

/// The POP3 settings of a server.
pub struct PopSettings;

impl PopSettings {
    fn missing(&self, id: &str) -> DiffError {
        DiffError {
            kind: self.key(),
            id: id.to_string(),
            message: NO_SETTINGS.into(),
        }
    }
}

impl Kind for PopSettings {
    fn key(&self) -> &'static str {
        "pop_settings"
    }

    fn title(&self) -> &'static str {
        "POP3 settings"
    }

    fn scope(&self) -> Scope {
        Scope::Server
    }

    fn order(&self) -> Order {
        Order {
            phase: 55,
            reason: "POP3 settings run after the IMAP4 settings and before registry values, so the POP3 restart that follows them sees the final configuration and the Information Store restart stays last",
        }
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let Some(reader) = MapReader::new(node, format!("{}.pop_settings", ctx.path), diags) else {
            return Vec::new();
        };
        let reader = reader.with_unknown_label("not a Set-PopSettings parameter of Exchange 2010");
        let attrs = read_params(reader, PARAMS, ctx.version, "Set-PopSettings", &[]);
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
            restart: Some(Service::Pop3),
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
                &common::obs_key(self.key(), &r.id),
                &format!("Get-PopSettings -Server {}", quote(&r.id)),
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
            let key = common::obs_key(self.key(), &r.id);
            if !common::existence(self.key(), &r.id, &key, observed)? {
                return Err(self.missing(&r.id));
            }
            let (attrs, unchanged) = common::compare_attrs(self.key(), r, &key, PARAMS, observed)?;
            if attrs.is_empty() {
                continue;
            }
            let cmd = common::with_parameters(
                Command::new("Set-PopSettings").param("Server", &r.id),
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
            &format!("Get-PopSettings -Server {}", quote(ctx.host)),
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
            return Err(self.missing(ctx.host));
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
    use crate::kinds::common::testutil;
    use crate::value::{RawValue, Value};

    fn parse_v(yaml: &str, version: Version) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str("site.yaml", yaml);
        let ctx = ParseContext::new(version, vec!["EX01".into()], "site.yaml");
        let r = read_for_host(&PopSettings, &docs[0].root, &ctx, "EX01", &mut diags);
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
        assert_eq!(r[0].restart, Some(Service::Pop3));
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
        let changes = PopSettings.diff(&refs, &o, &ctx).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].unchanged, 1);
        assert_eq!(changes[0].restart, Some(Service::Pop3));
        assert_eq!(
            changes[0].script(),
            "Set-PopSettings -Server 'EX01' -MaxConnectionsPerUser 40"
        );
        testutil::assert_plain(&changes[0]);
        let script = PopSettings.observe(&refs, &ctx);
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
        let e = PopSettings.diff(&refs, &o, &ctx).unwrap_err();
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
        let hostile = PopSettings
            .diff(&r.iter().collect::<Vec<_>>(), &o, &ctx)
            .unwrap();
        let harmless = PopSettings
            .diff(&benign.iter().collect::<Vec<_>>(), &o, &ctx)
            .unwrap();
        testutil::assert_contained(
            &hostile[0].script(),
            &harmless[0].script(),
            testutil::HOSTILE,
        );
    }
}
