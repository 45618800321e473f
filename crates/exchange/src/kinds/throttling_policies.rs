//! `throttling_policies`: client throttling policies (New-/Set-/Remove-ThrottlingPolicy).
//!
//! ```yaml
//! throttling_policies:
//!   UCCXThrottlingPolicy:
//!     IMAPMaxConcurrency: unlimited     # unlimited / null / $null: no limit ($null)
//!     IMAPPercentTimeInCAS: unlimited
//!     RCAMaxConcurrency: 100            # a number in the parameter's range
//!   OldPolicy:
//!     ensure: absent
//! ```
//!
//! Keys are policy names; values are maps of Set-ThrottlingPolicy parameters under their
//! cmdlet names: every parameter of Exchange 2010 RTM, SP1, SP2 and SP3. RTM lacks the
//! Anonymous*, CPA*, EASMaxDevices, EASMaxDeviceDeletesPerMonth,
//! PowerShellMaxDestructiveCmdlets* and PowerShellMaxTenantConcurrency parameters (an RTM
//! default-policy dump shows none of them; inferred, not documented): declaring one for an
//! RTM host is an error. Every value is a UInt32 or `$null` (unthrottled).
//!
//! Ranges: `*MaxConcurrency` 0..=2147483647 (the help; on RTM, EASMaxConcurrency
//! 0..=100); CPUStartPercent and PowerShellMaxTenantConcurrency 0..=100; the
//! `*PercentTimeIn*` values (100 is 60 s of every minute; more is allowed) and the others,
//! for which the help states no range, the whole UInt32 range 0..=4294967295 (the 2010 SDK
//! types every value `Nullable<uint>`, learn.microsoft.com `ff811669(v=exchg.140)`).
//!
//! Semantics:
//! - a parameter left out of the manifest is not managed: it is neither compared nor set;
//! - a NEW policy gets exactly the declared values: "any parameters that you omit
//!   inherit the values from the default throttling policy" (New-ThrottlingPolicy help);
//! - on an existing non-default policy Get-ThrottlingPolicy prints both "inherited" and
//!   `$null` as blank; exctl reads blank as `$null`, so `unlimited` in the manifest and a
//!   blank value are taken as equal;
//! - `ensure: absent` removes the policy. Exchange refuses to remove a policy that is still
//!   associated with users: that error surfaces at apply (re-point the associations to
//!   the default policy first, with `throttling_associations`).
//! - Policies are cached by the Exchange processes for up to 15 minutes: a change may take
//!   that long to apply; no restart is required.
//!
//! Observation: `Get-ThrottlingPolicy -Identity <name> -ErrorAction SilentlyContinue`
//! under `throttling_policies:<name>`: `__exists` (false when nothing came back) and each
//! managed parameter. Changes: `New-ThrottlingPolicy -Name <name> ...`, `Set-ThrottlingPolicy
//! -Identity <name> ...`, `Remove-ThrottlingPolicy -Identity <name> -Confirm:$false`.
//!
//! Rules (each with its code):
//! - `exchange::parameter-not-in-version`: a parameter the declared release lacks;
//! - `exchange::throttling-reserved-name`: a policy named `default` (associations use
//!   that word for the default policy);
//! - `exchange::throttling-default-only`: PowerShellMaxTenantConcurrency on a policy that
//!   is not the default one (`DefaultThrottlingPolicy_<GUID>`);
//! - `exchange::throttling-remove-default`: `ensure: absent` on the default policy;
//! - `exchange::absent-with-attributes`: `ensure: absent` with values;
//! - `exchange::throttling-cmdlet-limits`: ExchangeMaxCmdlets above PowerShellMaxCmdlets;
//! - `exchange::throttling-time-period`: PowerShellMaxCmdlets without
//!   PowerShellMaxCmdletsTimePeriod, PowerShellMaxDestructiveCmdlets without its time
//!   period (and the reverse): "both values should be set at the same time";
//! - `exchange::out-of-range-in-version`: EASMaxConcurrency above 100 on RTM;
//! - warnings, from Exchange's "should" guidance: `exchange::throttling-percent-time-in-cas`
//!   (a component's PercentTimeInCAS below its PercentTimeInAD or PercentTimeInMailboxRPC),
//!   `exchange::throttling-unthrottled` (every MaxConcurrency of the release set to `$null`),
//!   `exchange::throttling-queue-depth` (PowerShellMaxCmdletQueueDepth below 3 ×
//!   PowerShellMaxConcurrency);
//! - `exchange::duplicate-resource`: a policy declared twice (names ignore case).

use std::collections::HashMap;

use exctl_manifest::{Diagnostic, Diagnostics, MapReader, Node, Span};
use exctl_pwsh::{Command, quote};

use super::common;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    Action, AttrChange, Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext,
    Order, ParseContext, Payload, Resource, Scope, SettingsCmdlet,
};
use crate::record::Observations;
use crate::value::{ParamSpec, ParamType::NullableInt, RawValue, Value, read_params};
use crate::version::Version;

/// `*MaxConcurrency`: 0 to 2147483647 (SP1+ help, ODP-2018 `Set-ThrottlingPolicy.md`).
const MAX: i64 = 2_147_483_647;
/// The others are `Nullable<UInt32>` without a documented range (the 2010 SDK's
/// `ThrottlingPolicy` types them `Nullable<uint>`, learn.microsoft.com `ff811669(v=exchg.140)`).
const UINT32: i64 = 4_294_967_295;

/// The parameter only the default policy has: New-ThrottlingPolicy lacks it ("can only be
/// set for the default throttling policy", ODP-2018 `Set-ThrottlingPolicy.md`).
pub const DEFAULT_ONLY: &[&str] = &["PowerShellMaxTenantConcurrency"];

/// Every Set-ThrottlingPolicy parameter of Exchange 2010, with the release that has it.
pub static PARAMS: &[ParamSpec] = &[
    ParamSpec::since(
        "AnonymousMaxConcurrency",
        NullableInt(0..=MAX),
        Version::Sp1,
    ),
    ParamSpec::since(
        "AnonymousPercentTimeInAD",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::since(
        "AnonymousPercentTimeInCAS",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::since(
        "AnonymousPercentTimeInMailboxRPC",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::since("CPAMaxConcurrency", NullableInt(0..=MAX), Version::Sp1),
    ParamSpec::since("CPAPercentTimeInCAS", NullableInt(0..=UINT32), Version::Sp1),
    ParamSpec::since(
        "CPAPercentTimeInMailboxRPC",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::all("CPUStartPercent", NullableInt(0..=100)),
    ParamSpec::all("EASMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::since(
        "EASMaxDeviceDeletesPerMonth",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::since("EASMaxDevices", NullableInt(0..=UINT32), Version::Sp1),
    ParamSpec::all("EASPercentTimeInAD", NullableInt(0..=UINT32)),
    ParamSpec::all("EASPercentTimeInCAS", NullableInt(0..=UINT32)),
    ParamSpec::all("EASPercentTimeInMailboxRPC", NullableInt(0..=UINT32)),
    ParamSpec::all("EWSFastSearchTimeoutInSeconds", NullableInt(0..=UINT32)),
    ParamSpec::all("EWSFindCountLimit", NullableInt(0..=UINT32)),
    ParamSpec::all("EWSMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::all("EWSMaxSubscriptions", NullableInt(0..=UINT32)),
    ParamSpec::all("EWSPercentTimeInAD", NullableInt(0..=UINT32)),
    ParamSpec::all("EWSPercentTimeInCAS", NullableInt(0..=UINT32)),
    ParamSpec::all("EWSPercentTimeInMailboxRPC", NullableInt(0..=UINT32)),
    ParamSpec::all("ExchangeMaxCmdlets", NullableInt(0..=UINT32)),
    ParamSpec::all("ForwardeeLimit", NullableInt(0..=UINT32)),
    ParamSpec::all("IMAPMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::all("IMAPPercentTimeInAD", NullableInt(0..=UINT32)),
    ParamSpec::all("IMAPPercentTimeInCAS", NullableInt(0..=UINT32)),
    ParamSpec::all("IMAPPercentTimeInMailboxRPC", NullableInt(0..=UINT32)),
    ParamSpec::all("MessageRateLimit", NullableInt(0..=UINT32)),
    ParamSpec::all("OWAMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::all("OWAPercentTimeInAD", NullableInt(0..=UINT32)),
    ParamSpec::all("OWAPercentTimeInCAS", NullableInt(0..=UINT32)),
    ParamSpec::all("OWAPercentTimeInMailboxRPC", NullableInt(0..=UINT32)),
    ParamSpec::all("POPMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::all("POPPercentTimeInAD", NullableInt(0..=UINT32)),
    ParamSpec::all("POPPercentTimeInCAS", NullableInt(0..=UINT32)),
    ParamSpec::all("POPPercentTimeInMailboxRPC", NullableInt(0..=UINT32)),
    ParamSpec::all("PowerShellMaxCmdletQueueDepth", NullableInt(0..=UINT32)),
    ParamSpec::all("PowerShellMaxCmdlets", NullableInt(0..=UINT32)),
    ParamSpec::all("PowerShellMaxCmdletsTimePeriod", NullableInt(0..=UINT32)),
    ParamSpec::all("PowerShellMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::since(
        "PowerShellMaxDestructiveCmdlets",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::since(
        "PowerShellMaxDestructiveCmdletsTimePeriod",
        NullableInt(0..=UINT32),
        Version::Sp1,
    ),
    ParamSpec::since(
        "PowerShellMaxTenantConcurrency",
        NullableInt(0..=100),
        Version::Sp1,
    ),
    ParamSpec::all("RCAMaxConcurrency", NullableInt(0..=MAX)),
    ParamSpec::all("RCAPercentTimeInAD", NullableInt(0..=UINT32)),
    ParamSpec::all("RCAPercentTimeInCAS", NullableInt(0..=UINT32)),
    ParamSpec::all("RCAPercentTimeInMailboxRPC", NullableInt(0..=UINT32)),
    ParamSpec::all("RecipientRateLimit", NullableInt(0..=UINT32)),
];

/// The prefix of the default policy's name (`DefaultThrottlingPolicy_<GUID>`).
pub const DEFAULT_PREFIX: &str = "DefaultThrottlingPolicy_";

/// The components that have PercentTimeIn* values.
const COMPONENTS: &[&str] = &[
    "Anonymous",
    "CPA",
    "EAS",
    "EWS",
    "IMAP",
    "OWA",
    "POP",
    "RCA",
];

/// Whether a policy name is the default policy's.
pub fn is_default_name(name: &str) -> bool {
    name.get(..DEFAULT_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(DEFAULT_PREFIX))
}

/// The values Exchange Setup gives the default policy (`DefaultThrottlingPolicy_<GUID>`)
/// in each release, for `exctl export`, which writes the default policy only where it
/// differs from them; every parameter not listed is blank (`$null`). Sources (reference
/// §2): RTM from Brian Desmond's dump of an RTM default policy (EAS 10, EWS 10,
/// EWSFastSearchTimeoutInSeconds 60, OWA 5, POP 20, PowerShell 18, RCA 20,
/// CPUStartPercent 75); SP1 and later add AnonymousMaxConcurrency 1, EASMaxDevices 10,
/// EASMaxDeviceDeletesPerMonth 20 (SP1+ help) and EWSFindCountLimit 1000 (the EWS
/// throttling documentation). The SP1+ PercentTimeIn* defaults could not be found and
/// are taken as blank, as in RTM; the simulator's default policy is built from the
/// same facts.
pub fn exchange_default(name: &str, version: Version) -> Option<i64> {
    const ALL: &[(&str, i64)] = &[
        ("EASMaxConcurrency", 10),
        ("EWSMaxConcurrency", 10),
        ("EWSFastSearchTimeoutInSeconds", 60),
        ("OWAMaxConcurrency", 5),
        ("POPMaxConcurrency", 20),
        ("PowerShellMaxConcurrency", 18),
        ("RCAMaxConcurrency", 20),
        ("CPUStartPercent", 75),
    ];
    const SP1: &[(&str, i64)] = &[
        ("AnonymousMaxConcurrency", 1),
        ("EASMaxDevices", 10),
        ("EASMaxDeviceDeletesPerMonth", 20),
        ("EWSFindCountLimit", 1000),
    ];
    let sp1 = if version >= Version::Sp1 { SP1 } else { &[] };
    ALL.iter()
        .chain(sp1)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The observation key of the policy listing `exctl export` reads.
const EXPORT_LIST: &str = "throttling_policies:*";

/// Statements that list every policy of the organization (one `Get-ThrottlingPolicy`)
/// with its `IsDefault` and the values of `params`, each policy under
/// `throttling_policies:<name>` and the names under the listing's own key: what
/// [`Kind::export_script`] reports, for readers that need a policy known only once the
/// server answers (the engine's capacity check: the policy an association names, and the
/// default policy whose values a blank one inherits). Decoded by [`listed`].
pub fn listing(params: &[&ParamSpec]) -> String {
    let mut body = format!(
        "$all = @(Get-ThrottlingPolicy -ErrorAction Stop)\n$m = @(foreach ($p in $all) {{ $p.Name }})\n__exctl_emit {} '__members' $m\nforeach ($p in $all) {{\n$k = {} + $p.Name\n__exctl_emit $k 'IsDefault' $p.IsDefault\n",
        quote(EXPORT_LIST),
        quote(&common::obs_key("throttling_policies", ""))
    );
    for p in params {
        body.push_str(&format!(
            "__exctl_emit $k {} {}\n",
            quote(p.name),
            common::prop_expr("p", p)
        ));
    }
    body.push('}');
    crate::record::guarded(EXPORT_LIST, &body)
}

/// One policy as [`listing`] reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Whether it is the organization's default policy.
    pub is_default: bool,
    /// The values of the parameters asked for, decoded with their types (`$null`: blank).
    pub values: Vec<(&'static str, Value)>,
}

/// The policies [`listing`] reported, with the values of `params` (names of [`PARAMS`])
/// decoded as [`Kind::diff`] decodes them. An error when the listing failed or a value is
/// not one of its type.
pub fn listed(observed: &Observations, params: &[&str]) -> Result<Vec<Listed>, DiffError> {
    let kind = "throttling_policies";
    let err = |message: String| DiffError {
        kind,
        id: "*".into(),
        message,
    };
    if let Some(e) = observed.error(EXPORT_LIST) {
        return Err(err(e.to_string()));
    }
    let names = observed
        .members(EXPORT_LIST)
        .ok_or_else(|| err("the server did not list the throttling policies".into()))?;
    let specs: Vec<&ParamSpec> = params
        .iter()
        .filter_map(|p| common::spec(PARAMS, p))
        .collect();
    names
        .iter()
        .map(|name| {
            let key = common::obs_key(kind, name);
            let is_default = match observed.get(&key, "IsDefault") {
                Some(RawValue::Str(s)) => s.eq_ignore_ascii_case("true"),
                _ => is_default_name(name),
            };
            let values = specs
                .iter()
                .map(|spec| {
                    common::observed_value(kind, name, &key, spec, observed).map(|v| (spec.name, v))
                })
                .collect::<Result<_, _>>()?;
            Ok(Listed {
                name: name.clone(),
                is_default,
                values,
            })
        })
        .collect()
}

/// Client throttling policies of the organization.
pub struct ThrottlingPolicies;

type Read = (&'static str, Value, Node);

/// The attributes as a person reads them: a blank (`$null`) throttling value means "no
/// limit" on Exchange 2010 (the property is a `Nullable<UInt32>`, see
/// learn.microsoft.com/powershell/module/exchange/set-throttlingpolicy), so it is shown
/// as `unlimited`, the word the manifest and the receive connectors use. Called after the
/// script is made: the command still passes `$null`, which is what the cmdlet takes.
fn shown_unlimited(mut attrs: Vec<AttrChange>) -> Vec<AttrChange> {
    for a in &mut attrs {
        for v in [&mut a.before, &mut a.after].into_iter().flatten() {
            if *v == Value::Null {
                *v = Value::Unlimited;
            }
        }
    }
    attrs
}

fn find<'a>(attrs: &'a [Read], name: &str) -> Option<&'a Read> {
    attrs.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name))
}

fn number(attrs: &[Read], name: &str) -> Option<(i64, Span)> {
    match find(attrs, name)? {
        (_, Value::Int(i), node) => Some((*i, node.span)),
        _ => None,
    }
}

/// The rules between parameters of one policy.
fn check(attrs: &[Read], what: &str, version: Version, diags: &mut Diagnostics) {
    if let (Some((e, es)), Some((p, ps))) = (
        number(attrs, "ExchangeMaxCmdlets"),
        number(attrs, "PowerShellMaxCmdlets"),
    ) && e > p
    {
        diags.push(
            Diagnostic::error(
                "exchange::throttling-cmdlet-limits",
                format!("{what}: ExchangeMaxCmdlets ({e}) is above PowerShellMaxCmdlets ({p})"),
            )
            .with_span(es)
            .with_label("above PowerShellMaxCmdlets")
            .with_related(ps, "PowerShellMaxCmdlets")
            .with_hint("ExchangeMaxCmdlets slows cmdlets down before PowerShellMaxCmdlets stops them: it should be less"),
        );
    }
    for (count, period) in [
        ("PowerShellMaxCmdlets", "PowerShellMaxCmdletsTimePeriod"),
        (
            "PowerShellMaxDestructiveCmdlets",
            "PowerShellMaxDestructiveCmdletsTimePeriod",
        ),
    ] {
        for (have, lacks) in [(count, period), (period, count)] {
            if let Some((_, Value::Int(_), node)) = find(attrs, have)
                && find(attrs, lacks).is_none()
            {
                diags.push(
                    Diagnostic::error(
                        "exchange::throttling-time-period",
                        format!("{what}: {have} is set without {lacks}"),
                    )
                    .with_span(node.span)
                    .with_label(format!("needs {lacks}"))
                    .with_hint(format!(
                        "set {count} and {period} (in seconds) together, as Exchange asks"
                    )),
                );
            }
        }
    }
    if version == Version::Rtm
        && let Some((n, span)) = number(attrs, "EASMaxConcurrency")
        && n > 100
    {
        diags.push(
            Diagnostic::error(
                "exchange::out-of-range-in-version",
                format!("{what}: EASMaxConcurrency must be between 0 and 100 in Exchange 2010 RTM, found {n}"),
            )
            .with_span(span)
            .with_label("0..=100 in RTM")
            .with_hint("lower it, or declare the host's version if it runs SP1 or later"),
        );
    }
    for c in COMPONENTS {
        let Some((cas, cas_span)) = number(attrs, &format!("{c}PercentTimeInCAS")) else {
            continue;
        };
        for other in ["AD", "MailboxRPC"] {
            let name = format!("{c}PercentTimeIn{other}");
            if let Some((o, os)) = number(attrs, &name)
                && cas < o
            {
                diags.push(
                    Diagnostic::warning(
                        "exchange::throttling-percent-time-in-cas",
                        format!("{what}: {c}PercentTimeInCAS ({cas}) is below {name} ({o})"),
                    )
                    .with_span(cas_span)
                    .with_label(format!("below {name}"))
                    .with_related(os, name.clone())
                    .with_hint("time in AD and mailbox RPC is spent inside time in CAS: raise PercentTimeInCAS to at least the others"),
                );
            }
        }
    }
    if let (Some((q, qs)), Some((c, cs))) = (
        number(attrs, "PowerShellMaxCmdletQueueDepth"),
        number(attrs, "PowerShellMaxConcurrency"),
    ) && q < 3 * c
    {
        diags.push(
            Diagnostic::warning(
                "exchange::throttling-queue-depth",
                format!("{what}: PowerShellMaxCmdletQueueDepth ({q}) is below 3 × PowerShellMaxConcurrency ({c})"),
            )
            .with_span(qs)
            .with_label(format!("below {}", 3 * c))
            .with_related(cs, "PowerShellMaxConcurrency")
            .with_hint(format!("Exchange recommends at least three times PowerShellMaxConcurrency: {}", 3 * c)),
        );
    }
}

impl Kind for ThrottlingPolicies {
    fn key(&self) -> &'static str {
        "throttling_policies"
    }

    fn title(&self) -> &'static str {
        "Throttling policies"
    }

    fn scope(&self) -> Scope {
        Scope::Organization
    }

    fn order(&self) -> Order {
        Order {
            phase: 20,
            reason: "throttling policies run before the associations: an association needs its policy",
        }
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let path = format!("{}.throttling_policies", ctx.path);
        let Some(reader) = MapReader::new(node, path.clone(), diags) else {
            return Vec::new();
        };
        let entries = reader.entries();
        drop(reader);
        let mut out: Vec<Resource> = Vec::new();
        // The index in `out` of each policy accepted, by lower-case name.
        let mut accepted: HashMap<String, usize> = HashMap::new();
        for (key, value) in entries {
            let name = key.text.trim();
            let what = format!("{path}.{name}");
            if name.is_empty() || name.eq_ignore_ascii_case("default") {
                diags.push(
                    Diagnostic::error(
                        "exchange::throttling-reserved-name",
                        format!("{what}: '{name}' cannot name a policy here"),
                    )
                    .with_span(key.span)
                    .with_label("reserved")
                    .with_hint("'default' means the default policy in throttling_associations; declare the default policy by its full name, DefaultThrottlingPolicy_<GUID>"),
                );
                continue;
            }
            let Some(mut m) = MapReader::new(value, what.clone(), diags) else {
                continue;
            };
            let ensure_node = m.node_of("ensure");
            let ensure = common::read_ensure(&mut m).unwrap_or_default();
            let m = m.with_unknown_label("not a Set-ThrottlingPolicy parameter of Exchange 2010");
            let attrs = read_params(m, PARAMS, ctx.version, "Set-ThrottlingPolicy", &["ensure"]);
            check(&attrs, &what, ctx.version, diags);
            if let Some((_, _, n)) = find(&attrs, "PowerShellMaxTenantConcurrency")
                && !is_default_name(name)
            {
                diags.push(
                    Diagnostic::error(
                        "exchange::throttling-default-only",
                        format!("{what}: PowerShellMaxTenantConcurrency can only be set on the default throttling policy"),
                    )
                    .with_span(n.span)
                    .with_label("default policy only")
                    .with_hint("move it to the policy named DefaultThrottlingPolicy_<GUID> (Get-ThrottlingPolicy shows the name)"),
                );
            }
            if ensure == Ensure::Absent {
                let span = ensure_node.map_or(key.span, |n| n.span);
                if is_default_name(name) {
                    diags.push(
                        Diagnostic::error(
                            "exchange::throttling-remove-default",
                            format!("{what}: the default throttling policy cannot be removed"),
                        )
                        .with_span(span)
                        .with_label("cannot be removed")
                        .with_hint("there is no way to replace, re-create or remove the default policy: remove `ensure: absent`"),
                    );
                    continue;
                }
                if let Some((_, _, n)) = attrs.first() {
                    diags.push(common::absent_with_attributes(&what, n.span));
                    continue;
                }
            }
            if let Some(first) = accepted
                .get(&name.to_ascii_lowercase())
                .and_then(|&i| out.get(i))
            {
                diags.push(common::duplicate(
                    &format!("throttling policy {name}"),
                    key.span,
                    first.span,
                ));
                continue;
            }
            accepted.insert(name.to_ascii_lowercase(), out.len());
            out.push(Resource {
                kind: self.key(),
                id: name.to_string(),
                ensure,
                attrs: attrs
                    .into_iter()
                    .map(|(n, value, node)| DesiredAttr {
                        name: n.to_string(),
                        value,
                        span: node.span,
                    })
                    .collect(),
                payload: Payload::none(),
                restart: None,
                sensitive: Vec::new(),
                span: key.span,
            });
        }
        // Every MaxConcurrency of the release set to $null: nothing is throttled.
        let all_max: Vec<&ParamSpec> = PARAMS
            .iter()
            .filter(|p| {
                p.name.ends_with("MaxConcurrency")
                    && p.since <= ctx.version
                    && p.name != "PowerShellMaxTenantConcurrency"
            })
            .collect();
        for r in &out {
            let unthrottled = all_max.iter().all(|p| {
                r.attrs
                    .iter()
                    .any(|a| a.name == p.name && a.value == Value::Null)
            });
            if unthrottled {
                diags.push(
                    Diagnostic::warning(
                        "exchange::throttling-unthrottled",
                        format!("{path}.{}: every client protocol is unthrottled ($null MaxConcurrency everywhere)", r.id),
                    )
                    .with_span(r.span)
                    .with_label("no limit at all")
                    .with_hint("Microsoft warns: \"Do not set throttling policies to null\"; lift only the limits the application needs (IMAPMaxConcurrency for UCCX)"),
                );
            }
        }
        out.into_iter().map(common::declared).collect()
    }

    fn cross_check(&self, all: &[Resource], diags: &mut Diagnostics) {
        common::report_duplicates(
            all,
            self.key(),
            |r| Some(r.id.to_ascii_lowercase()),
            |r| format!("throttling policy {}", r.id),
            diags,
        );
    }

    fn observe(&self, resources: &[&Resource], _ctx: &ObserveContext<'_>) -> String {
        let mut s = String::new();
        for r in resources {
            let props = common::specs_of(PARAMS, &[r]);
            s.push_str(&common::observe_object(
                &common::obs_key(self.key(), &r.id),
                &format!(
                    "Get-ThrottlingPolicy -Identity {} -ErrorAction SilentlyContinue",
                    quote(&r.id)
                ),
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
        let kind = self.key();
        let mut out = Vec::new();
        for r in resources {
            let key = common::obs_key(kind, &r.id);
            let exists = common::existence(kind, &r.id, &key, observed)?;
            let name = r.id.as_str();
            match (r.ensure, exists) {
                (Ensure::Absent, true) => out.push(common::change(
                    r,
                    &r.id,
                    Action::Delete,
                    Vec::new(),
                    0,
                    vec![
                        Command::new("Remove-ThrottlingPolicy")
                            .param("Identity", name)
                            .param("Confirm", false),
                    ],
                )),
                (Ensure::Absent, false) => {}
                (Ensure::Present, false) => {
                    if is_default_name(&r.id) {
                        return Err(DiffError {
                            kind,
                            id: r.id.clone(),
                            message: "the default throttling policy does not exist under this name, and it cannot be created: check the name with Get-ThrottlingPolicy".into(),
                        });
                    }
                    let attrs: Vec<AttrChange> = r
                        .attrs
                        .iter()
                        .map(|a| AttrChange {
                            name: a.name.clone(),
                            before: None,
                            after: Some(a.value.clone()),
                            sensitive: false,
                        })
                        .collect();
                    let cmd = common::with_parameters(
                        Command::new("New-ThrottlingPolicy").param("Name", name),
                        &attrs,
                    );
                    let attrs = shown_unlimited(attrs);
                    out.push(common::change(
                        r,
                        &r.id,
                        Action::Create,
                        attrs,
                        0,
                        vec![cmd],
                    ));
                }
                (Ensure::Present, true) => {
                    let (attrs, unchanged) =
                        common::compare_attrs(kind, r, &key, PARAMS, observed)?;
                    if attrs.is_empty() {
                        continue;
                    }
                    let cmd = common::with_parameters(
                        Command::new("Set-ThrottlingPolicy").param("Identity", name),
                        &attrs,
                    );
                    let attrs = shown_unlimited(attrs);
                    out.push(common::update(r, &r.id, attrs, unchanged, vec![cmd]));
                }
            }
        }
        Ok(out)
    }

    /// One listing of every policy of the organization, each with `IsDefault` and every
    /// parameter of the release.
    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        let specs: Vec<&ParamSpec> = PARAMS.iter().filter(|p| p.since <= ctx.version).collect();
        listing(&specs)
    }

    /// The policies that differ from Exchange's defaults:
    /// - the default policy, with the values that differ from what Setup gives it
    ///   ([`exchange_default`]); not at all when none does;
    /// - every other policy (it exists, so it differs), with its numbers, and `unlimited`
    ///   for each blank value whose default-policy value is blank too (no limit either
    ///   way). A blank value where the default policy has a number is ambiguous:
    ///   Get-ThrottlingPolicy prints both "inherited from the default policy" and
    ///   `$null` (no limit) as blank, so it is left out (unmanaged, which plan reads as
    ///   no change) and named in a comment.
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let kind = self.key();
        let err = |message: String| DiffError {
            kind,
            id: "*".into(),
            message,
        };
        if let Some(e) = observed.error(EXPORT_LIST) {
            return Err(err(e.to_string()));
        }
        let mut names: Vec<&String> = observed
            .members(EXPORT_LIST)
            .ok_or_else(|| err("the server did not list the throttling policies".into()))?
            .iter()
            .collect();
        names.sort_by_key(|n| n.to_lowercase());
        let specs: Vec<&ParamSpec> = PARAMS.iter().filter(|p| p.since <= ctx.version).collect();
        let is_default = |name: &str| match observed.get(&common::obs_key(kind, name), "IsDefault")
        {
            Some(RawValue::Str(s)) => s.eq_ignore_ascii_case("true"),
            _ => is_default_name(name),
        };
        let values = |name: &str| -> Result<Vec<(&ParamSpec, Value)>, DiffError> {
            let key = common::obs_key(kind, name);
            specs
                .iter()
                .map(|spec| {
                    common::observed_value(kind, name, &key, spec, observed).map(|v| (*spec, v))
                })
                .collect()
        };
        let default_name = names.iter().find(|n| is_default(n)).map(|n| n.as_str());
        let default_values = match default_name {
            Some(n) => values(n)?,
            None => Vec::new(),
        };
        let default_is_blank = |name: &str| {
            default_values
                .iter()
                .any(|(s, v)| s.name == name && *v == Value::Null)
        };
        let mut body = Yaml::map();
        let mut notes = Vec::new();
        for name in names {
            if name.trim().is_empty() || name.trim().eq_ignore_ascii_case("default") {
                notes.push(format!(
                    "throttling policy '{name}': a name a manifest cannot use: not exported"
                ));
                continue;
            }
            let mut entry = Yaml::map();
            if Some(name.as_str()) == default_name {
                for (spec, v) in &default_values {
                    let builtin =
                        exchange_default(spec.name, ctx.version).map_or(Value::Null, Value::Int);
                    if *v != builtin {
                        export::push_param(&mut entry, spec, v);
                    }
                }
                if entry.is_empty() {
                    notes.push(format!(
                        "the default policy {name} has Exchange's default values: not exported"
                    ));
                    continue;
                }
            } else {
                let mut ambiguous = Vec::new();
                for (spec, v) in values(name)? {
                    // The default policy's alone (exchange::throttling-default-only).
                    if spec.name == "PowerShellMaxTenantConcurrency" {
                        continue;
                    }
                    if v == Value::Null && !default_is_blank(spec.name) {
                        ambiguous.push(spec.name);
                        continue;
                    }
                    export::push_param(&mut entry, spec, &v);
                }
                if !ambiguous.is_empty() {
                    let mut text = String::from(
                        "Blank on the server where the default policy has a value: inherited from it,\nor $null (no limit)? Get-ThrottlingPolicy does not tell, so not exported:",
                    );
                    for chunk in ambiguous.chunks(3) {
                        text.push_str(&format!("\n  {}", chunk.join(", ")));
                    }
                    let Yaml::Map(items) = &mut entry else {
                        continue;
                    };
                    items.insert(0, crate::export::Item::Comment(text));
                }
            }
            body.push(name, entry);
        }
        if body.is_empty() && notes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Section { body, notes }))
    }

    fn schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "additionalProperties": crate::schema::params_object(
                PARAMS,
                &[("ensure", crate::schema::ensure())]
            )
        })
    }

    fn help(&self) -> &'static str {
        "Client throttling policies of the organization (New-, Set-, Remove-ThrottlingPolicy): keys are policy names, values maps of Set-ThrottlingPolicy parameters (a number in range, or unlimited/$null), ensure: absent removes one. No restart."
    }

    fn cmdlets(&self) -> &'static [&'static str] {
        &[
            "Get-ThrottlingPolicy",
            "New-ThrottlingPolicy",
            "Set-ThrottlingPolicy",
            "Remove-ThrottlingPolicy",
        ]
    }

    fn settings_cmdlets(&self) -> Vec<SettingsCmdlet> {
        vec![
            SettingsCmdlet {
                cmdlet: "Set-ThrottlingPolicy",
                params: PARAMS,
                skip: &[],
                not_managed: &[],
            },
            // The same parameters, without those only the default policy has.
            SettingsCmdlet {
                cmdlet: "New-ThrottlingPolicy",
                params: PARAMS,
                skip: DEFAULT_ONLY,
                not_managed: &[],
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::kinds::common::testutil::{HOSTILE, assert_contained, yaml_quote};
    use crate::value::RawValue;

    fn parse_all(changes: &[Change]) {
        for c in changes {
            crate::kinds::common::testutil::assert_plain(c);
        }
    }

    fn parse_v(yaml: &str, version: Version) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str("org.yaml", yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let ctx = ParseContext::new(version, vec!["EX01".into()], "org.yaml");
        let r = read_for_host(&ThrottlingPolicies, &docs[0].root, &ctx, "EX01", &mut diags);
        diags.sort();
        (r, diags)
    }

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_v(yaml, Version::Sp3)
    }

    #[test]
    fn values_are_uint32_and_max_concurrency_keeps_its_documented_range() {
        let (r, d) = parse("P:\n  IMAPPercentTimeInCAS: 4294967295\n");
        assert!(d.iter().all(|d| !d.is_error()), "{:?}", got(&d));
        assert_eq!(r.len(), 1);
        for bad in [
            "P:\n  IMAPPercentTimeInCAS: 4294967296\n",
            "P:\n  IMAPMaxConcurrency: 2147483648\n",
        ] {
            let (_, d) = parse(bad);
            assert!(d.iter().any(|d| d.is_error()), "{bad}");
        }
    }

    type Got = (&'static str, String, u32, u32, Option<String>);

    fn got(d: &Diagnostics) -> Vec<Got> {
        d.iter()
            .map(|d| {
                let s = d.span.expect("located");
                (
                    d.code,
                    d.message.clone(),
                    s.start.line,
                    s.start.column,
                    d.hint.clone(),
                )
            })
            .collect()
    }

    fn one(d: &Diagnostics) -> Got {
        let g = got(d);
        assert_eq!(g.len(), 1, "{g:?}");
        g.into_iter().next().unwrap()
    }

    fn ctx() -> ObserveContext<'static> {
        ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        }
    }

    const UCCX: &str = "UCCXThrottlingPolicy:\n  IMAPMaxConcurrency: unlimited\n  IMAPPercentTimeInCAS: unlimited\n  RCAMaxConcurrency: 100\n";

    /// What the export script reports for a default policy with Exchange's values
    /// (changed as `changes` says) and a UCCX policy.
    fn listing(
        version: Version,
        changes: &[(&str, RawValue)],
        uccx: &[(&str, RawValue)],
    ) -> Observations {
        let mut o = Observations::default();
        let default = "DefaultThrottlingPolicy_0a20fffc";
        o.insert(
            EXPORT_LIST,
            "__members",
            RawValue::List(vec!["UCCXThrottlingPolicy".into(), default.into()]),
        );
        for (name, is_default) in [(default, true), ("UCCXThrottlingPolicy", false)] {
            let key = common::obs_key("throttling_policies", name);
            o.insert(
                &key,
                "IsDefault",
                RawValue::Str(if is_default { "True" } else { "False" }.into()),
            );
            for p in PARAMS.iter().filter(|p| p.since <= version) {
                let builtin = if is_default {
                    exchange_default(p.name, version)
                } else {
                    None
                };
                o.insert(
                    &key,
                    p.name,
                    builtin.map_or(RawValue::Null, |n| RawValue::Str(n.to_string())),
                );
            }
            let extra = if is_default { changes } else { uccx };
            for (n, v) in extra {
                o.insert(&key, n, v.clone());
            }
        }
        o
    }

    #[test]
    fn export_writes_what_differs_from_exchange_s_defaults() {
        let ectx = ExportContext {
            host: "EX01",
            version: Version::Rtm,
            mailboxes: &[],
            users: &[],
        };
        let script = ThrottlingPolicies.export_script(&ectx);
        crate::kinds::common::testutil::assert_parses(&script);
        assert!(
            !script.contains("CPAMaxConcurrency"),
            "RTM has no CPA parameters"
        );
        // A fresh organization: nothing.
        let s = ThrottlingPolicies
            .export(&listing(Version::Rtm, &[], &[]), &ectx)
            .unwrap()
            .unwrap();
        assert!(s.notes[0].contains("has Exchange's default values: not exported"));
        let yaml = s.body.render(0);
        assert!(yaml.starts_with("UCCXThrottlingPolicy:\n"), "{yaml}");
        // The default policy's changed values; the UCCX policy's numbers, its blanks
        // where the default is blank too as unlimited, the others named as ambiguous.
        let o = listing(
            Version::Rtm,
            &[
                ("POPMaxConcurrency", RawValue::Str("50".into())),
                ("EASMaxConcurrency", RawValue::Null),
            ],
            &[("RCAMaxConcurrency", RawValue::Str("100".into()))],
        );
        let s = ThrottlingPolicies.export(&o, &ectx).unwrap().unwrap();
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        let yaml = s.body.render(0);
        assert!(
            yaml.starts_with("DefaultThrottlingPolicy_0a20fffc:\n  EASMaxConcurrency: unlimited\n  POPMaxConcurrency: 50\nUCCXThrottlingPolicy:\n  # Blank on the server where the default policy has a value"),
            "{yaml}"
        );
        assert!(
            yaml.contains("\n  IMAPMaxConcurrency: unlimited\n"),
            "{yaml}"
        );
        assert!(yaml.contains("\n  RCAMaxConcurrency: 100\n"), "{yaml}");
        assert!(
            yaml.contains(
                "#   CPUStartPercent, EWSFastSearchTimeoutInSeconds, EWSMaxConcurrency\n"
            ),
            "{yaml}"
        );
        assert!(!yaml.contains("  OWAMaxConcurrency:"), "{yaml}");
        // It reads back, and plans no change against the same values.
        let (r, d) = parse_v(&yaml, Version::Rtm);
        assert!(!d.has_errors(), "{d:?}");
        let mut observed = o.clone();
        for res in &r {
            observed.insert(
                &common::obs_key("throttling_policies", &res.id),
                "__exists",
                RawValue::Str("True".into()),
            );
        }
        let refs: Vec<&Resource> = r.iter().collect();
        assert_eq!(
            ThrottlingPolicies.diff(&refs, &observed, &ctx()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn exchange_defaults_follow_the_release() {
        assert_eq!(
            exchange_default("PowerShellMaxConcurrency", Version::Rtm),
            Some(18)
        );
        assert_eq!(exchange_default("EWSFindCountLimit", Version::Rtm), None);
        assert_eq!(
            exchange_default("EWSFindCountLimit", Version::Sp2),
            Some(1000)
        );
        assert_eq!(exchange_default("IMAPMaxConcurrency", Version::Sp3), None);
    }

    #[test]
    fn every_2010_parameter_is_known_once() {
        assert_eq!(PARAMS.len(), 48);
        let rtm = PARAMS.iter().filter(|p| p.since == Version::Rtm).count();
        assert_eq!(rtm, 36);
        for p in PARAMS {
            assert_eq!(
                PARAMS
                    .iter()
                    .filter(|q| q.name.eq_ignore_ascii_case(p.name))
                    .count(),
                1
            );
        }
    }

    #[test]
    fn reads_null_unlimited_and_numbers() {
        let (r, d) = parse(UCCX);
        assert!(d.is_empty(), "{d:?}");
        let values: Vec<(&str, &Value)> = r[0]
            .attrs
            .iter()
            .map(|a| (a.name.as_str(), &a.value))
            .collect();
        assert_eq!(
            values,
            [
                ("IMAPMaxConcurrency", &Value::Null),
                ("IMAPPercentTimeInCAS", &Value::Null),
                ("RCAMaxConcurrency", &Value::Int(100))
            ]
        );
    }

    #[test]
    fn sp1_parameters_are_refused_on_rtm() {
        let (_, d) = parse_v("P:\n  CPAMaxConcurrency: 5\n", Version::Rtm);
        let g = one(&d);
        assert_eq!(g.0, "exchange::parameter-not-in-version");
        assert_eq!(
            g.1,
            "CPAMaxConcurrency is not a parameter of Set-ThrottlingPolicy in Exchange 2010 RTM; it exists from Exchange 2010 SP1 on"
        );
        assert_eq!((g.2, g.3), (2, 22));
        assert!(g.4.unwrap().contains("exchange: 2010-sp1"));
        assert!(
            parse_v("P:\n  CPAMaxConcurrency: 5\n", Version::Sp1)
                .1
                .is_empty()
        );
        let (_, d) = parse_v("P:\n  EASMaxConcurrency: 101\n", Version::Rtm);
        let g = one(&d);
        assert_eq!(
            (g.0, g.2, g.3),
            ("exchange::out-of-range-in-version", 2, 22)
        );
    }

    #[test]
    fn ranges() {
        let g = one(&parse("P:\n  CPUStartPercent: 101\n").1);
        assert_eq!((g.0, g.2, g.3), ("manifest::out-of-range", 2, 20));
        let g = one(&parse("P:\n  IMAPMaxConcurrency: 2147483648\n").1);
        assert_eq!(g.0, "manifest::out-of-range");
        assert!(
            parse("P:\n  IMAPPercentTimeInCAS: 500\n  IMAPPercentTimeInAD: 150\n")
                .1
                .is_empty()
        );
        let g = one(&parse("P:\n  IMAPMaxConcurrency:\n").1);
        assert_eq!(g.0, "manifest::missing-value");
    }

    #[test]
    fn exchange_max_cmdlets_above_powershell_max_cmdlets_is_an_error() {
        let g = one(&parse("P:\n  PowerShellMaxCmdlets: 10\n  PowerShellMaxCmdletsTimePeriod: 60\n  ExchangeMaxCmdlets: 20\n").1);
        assert_eq!(g.0, "exchange::throttling-cmdlet-limits");
        assert_eq!(
            g.1,
            "org.yaml.throttling_policies.P: ExchangeMaxCmdlets (20) is above PowerShellMaxCmdlets (10)"
        );
        assert_eq!((g.2, g.3), (4, 23));
        assert!(g.4.unwrap().contains("should be less"));
    }

    #[test]
    fn cmdlet_limits_need_their_time_period() {
        let g = one(&parse("P:\n  PowerShellMaxCmdlets: 10\n").1);
        assert_eq!(g.0, "exchange::throttling-time-period");
        assert_eq!(
            g.1,
            "org.yaml.throttling_policies.P: PowerShellMaxCmdlets is set without PowerShellMaxCmdletsTimePeriod"
        );
        assert_eq!((g.2, g.3), (2, 25));
        assert_eq!(
            g.4.as_deref(),
            Some(
                "set PowerShellMaxCmdlets and PowerShellMaxCmdletsTimePeriod (in seconds) together, as Exchange asks"
            )
        );
        let g = one(&parse("P:\n  PowerShellMaxDestructiveCmdletsTimePeriod: 60\n").1);
        assert_eq!(g.0, "exchange::throttling-time-period");
        assert!(g.1.contains("PowerShellMaxDestructiveCmdletsTimePeriod is set without PowerShellMaxDestructiveCmdlets"));
        // $null needs no period.
        assert!(parse("P:\n  PowerShellMaxCmdlets: null\n").1.is_empty());
    }

    #[test]
    fn guidance_warnings() {
        let g =
            one(&parse("P:\n  IMAPPercentTimeInCAS: 50\n  IMAPPercentTimeInMailboxRPC: 80\n").1);
        assert_eq!(g.0, "exchange::throttling-percent-time-in-cas");
        assert_eq!((g.2, g.3), (2, 25));
        assert!(!d_is_error(
            &parse("P:\n  IMAPPercentTimeInCAS: 50\n  IMAPPercentTimeInMailboxRPC: 80\n").1
        ));
        let g = one(&parse(
            "P:\n  PowerShellMaxConcurrency: 18\n  PowerShellMaxCmdletQueueDepth: 50\n",
        )
        .1);
        assert_eq!(g.0, "exchange::throttling-queue-depth");
        assert_eq!((g.2, g.3), (3, 34));
        assert_eq!(
            g.4.as_deref(),
            Some("Exchange recommends at least three times PowerShellMaxConcurrency: 54")
        );
        let everything: String = PARAMS
            .iter()
            .filter(|p| {
                p.name.ends_with("MaxConcurrency") && p.name != "PowerShellMaxTenantConcurrency"
            })
            .map(|p| format!("  {}: null\n", p.name))
            .collect();
        let g = one(&parse(&format!("Open:\n{everything}")).1);
        assert_eq!((g.0, g.2, g.3), ("exchange::throttling-unthrottled", 1, 1));
    }

    fn d_is_error(d: &Diagnostics) -> bool {
        d.has_errors()
    }

    #[test]
    fn default_policy_rules() {
        let g = one(&parse("P:\n  PowerShellMaxTenantConcurrency: 9\n").1);
        assert_eq!(
            (g.0, g.2, g.3),
            ("exchange::throttling-default-only", 2, 35)
        );
        assert!(
            parse("DefaultThrottlingPolicy_5a7e1c2d:\n  PowerShellMaxTenantConcurrency: 9\n")
                .1
                .is_empty()
        );
        let g = one(&parse("DefaultThrottlingPolicy_5a7e1c2d:\n  ensure: absent\n").1);
        assert_eq!(
            (g.0, g.2, g.3),
            ("exchange::throttling-remove-default", 2, 11)
        );
        let g = one(&parse("default:\n  IMAPMaxConcurrency: 1\n").1);
        assert_eq!(
            (g.0, g.2, g.3),
            ("exchange::throttling-reserved-name", 1, 1)
        );
        let g = one(&parse("Old:\n  ensure: absent\n  IMAPMaxConcurrency: 1\n").1);
        assert_eq!((g.0, g.2, g.3), ("exchange::absent-with-attributes", 3, 23));
    }

    #[test]
    fn duplicates_ignore_case() {
        let (r, d) = parse("Pol:\n  IMAPMaxConcurrency: 1\npol:\n  IMAPMaxConcurrency: 2\n");
        assert_eq!(r.len(), 1);
        let g = one(&d);
        assert_eq!((g.0, g.2, g.3), ("exchange::duplicate-resource", 3, 1));
    }

    #[test]
    fn observe_reads_only_the_managed_parameters() {
        let (r, _) = parse(UCCX);
        let refs: Vec<&Resource> = r.iter().collect();
        let s = ThrottlingPolicies.observe(&refs, &ctx());
        crate::kinds::common::testutil::assert_parses(&s);
        assert!(s.contains("$o = @(Get-ThrottlingPolicy -Identity 'UCCXThrottlingPolicy' -ErrorAction SilentlyContinue)"));
        assert!(s.contains("__exctl_emit 'throttling_policies:UCCXThrottlingPolicy' 'IMAPMaxConcurrency' $o.IMAPMaxConcurrency"));
        assert!(!s.contains("POPMaxConcurrency"));
    }

    fn observed(name: &str, exists: bool, values: &[(&str, RawValue)]) -> Observations {
        let key = common::obs_key("throttling_policies", name);
        let mut o = Observations::default();
        o.insert(
            &key,
            "__exists",
            RawValue::Str(if exists { "True" } else { "False" }.into()),
        );
        for (k, v) in values {
            o.insert(&key, k, v.clone());
        }
        o
    }

    #[test]
    fn a_new_policy_gets_exactly_the_declared_values() {
        let (r, _) = parse(UCCX);
        let refs: Vec<&Resource> = r.iter().collect();
        let c = ThrottlingPolicies
            .diff(&refs, &observed("UCCXThrottlingPolicy", false, &[]), &ctx())
            .unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(
            c[0].script(),
            "New-ThrottlingPolicy -Name 'UCCXThrottlingPolicy' -IMAPMaxConcurrency $null -IMAPPercentTimeInCAS $null -RCAMaxConcurrency 100"
        );
    }

    #[test]
    fn blank_null_and_unlimited_are_the_same_and_only_declared_values_compare() {
        let (r, _) = parse(UCCX);
        let refs: Vec<&Resource> = r.iter().collect();
        let o = observed(
            "uccxthrottlingpolicy",
            true,
            &[
                ("IMAPMaxConcurrency", RawValue::Str(String::new())),
                ("IMAPPercentTimeInCAS", RawValue::Null),
                ("RCAMaxConcurrency", RawValue::Str("100".into())),
                ("POPMaxConcurrency", RawValue::Str("20".into())),
            ],
        );
        assert!(
            ThrottlingPolicies
                .diff(&refs, &o, &ctx())
                .unwrap()
                .is_empty()
        );
        let o = observed(
            "UCCXThrottlingPolicy",
            true,
            &[
                ("IMAPMaxConcurrency", RawValue::Str("20".into())),
                ("IMAPPercentTimeInCAS", RawValue::Null),
                ("RCAMaxConcurrency", RawValue::Str("20".into())),
            ],
        );
        let c = ThrottlingPolicies.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Update);
        assert_eq!(c[0].unchanged, 1);
        assert_eq!(c[0].attrs[0].before, Some(Value::Int(20)));
        // Shown as unlimited; the command still passes $null.
        assert_eq!(c[0].attrs[0].after, Some(Value::Unlimited));
        assert_eq!(
            c[0].script(),
            "Set-ThrottlingPolicy -Identity 'UCCXThrottlingPolicy' -IMAPMaxConcurrency $null -RCAMaxConcurrency 100"
        );
    }

    #[test]
    fn absent_policies_are_removed_and_a_missing_default_is_an_error() {
        let (r, _) = parse("OldPolicy:\n  ensure: absent\n");
        let refs: Vec<&Resource> = r.iter().collect();
        let c = ThrottlingPolicies
            .diff(&refs, &observed("OldPolicy", true, &[]), &ctx())
            .unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Delete);
        assert_eq!(
            c[0].script(),
            "Remove-ThrottlingPolicy -Identity 'OldPolicy' -Confirm:$false"
        );
        assert!(
            ThrottlingPolicies
                .diff(&refs, &observed("OldPolicy", false, &[]), &ctx())
                .unwrap()
                .is_empty()
        );
        let (r, _) = parse("DefaultThrottlingPolicy_x:\n  IMAPMaxConcurrency: 5\n");
        let refs: Vec<&Resource> = r.iter().collect();
        let e = ThrottlingPolicies
            .diff(
                &refs,
                &observed("DefaultThrottlingPolicy_x", false, &[]),
                &ctx(),
            )
            .unwrap_err();
        assert!(e.message.contains("cannot be created"));
        let mut o = Observations::default();
        o.insert(
            "throttling_policies:DefaultThrottlingPolicy_x",
            "__error",
            RawValue::Str("Active Directory is unavailable.".into()),
        );
        let e = ThrottlingPolicies.diff(&refs, &o, &ctx()).unwrap_err();
        assert_eq!(e.message, "Active Directory is unavailable.");
    }

    #[test]
    fn hostile_policy_names_stay_inside_literals() {
        let build = |v: &str| {
            let (r, d) = parse(&format!("{}:\n  IMAPMaxConcurrency: 5\n", yaml_quote(v)));
            assert!(d.is_empty(), "{d:?}");
            let refs: Vec<&Resource> = r.iter().collect();
            let observe = ThrottlingPolicies.observe(&refs, &ctx());
            let new = ThrottlingPolicies
                .diff(&refs, &observed(v, false, &[]), &ctx())
                .unwrap()[0]
                .script()
                .clone();
            let set = ThrottlingPolicies
                .diff(
                    &refs,
                    &observed(v, true, &[("IMAPMaxConcurrency", RawValue::Null)]),
                    &ctx(),
                )
                .unwrap()[0]
                .script()
                .clone();
            (observe, new, set)
        };
        let (ob, nb, sb) = build("benign");
        let (oh, nh, sh) = build(HOSTILE);
        assert_contained(&oh, &ob, HOSTILE);
        assert_contained(&nh, &nb, HOSTILE);
        assert_contained(&sh, &sb, HOSTILE);
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn the_listing_reads_the_asked_values_of_every_policy_and_listed_decodes_them() {
        let specs: Vec<&ParamSpec> = PARAMS
            .iter()
            .filter(|p| p.name == "IMAPMaxConcurrency")
            .collect();
        let script = listing(&specs);
        common::testutil::assert_parses(&script);
        assert!(script.contains("Get-ThrottlingPolicy -ErrorAction Stop"));
        assert!(script.contains("'IMAPMaxConcurrency'") && !script.contains("EWSMaxConcurrency"));
        let mut o = Observations::default();
        o.insert(
            EXPORT_LIST,
            "__members",
            RawValue::List(vec!["DefaultThrottlingPolicy_1".into(), "UCCX".into()]),
        );
        let d = "throttling_policies:DefaultThrottlingPolicy_1";
        o.insert(d, "IsDefault", RawValue::Str("True".into()));
        o.insert(d, "IMAPMaxConcurrency", RawValue::Str(String::new()));
        let u = "throttling_policies:UCCX";
        o.insert(u, "IsDefault", RawValue::Str("False".into()));
        o.insert(u, "IMAPMaxConcurrency", RawValue::Str("500".into()));
        let got = listed(&o, &["IMAPMaxConcurrency"]).unwrap();
        assert_eq!(
            got,
            vec![
                Listed {
                    name: "DefaultThrottlingPolicy_1".into(),
                    is_default: true,
                    values: vec![("IMAPMaxConcurrency", Value::Null)],
                },
                Listed {
                    name: "UCCX".into(),
                    is_default: false,
                    values: vec![("IMAPMaxConcurrency", Value::Int(500))],
                },
            ]
        );
        o.insert(EXPORT_LIST, "__error", RawValue::Str("denied".into()));
        assert_eq!(listed(&o, &[]).unwrap_err().message, "denied");
    }
}
