//! `throttling_associations`: which throttling policy governs a mailbox, user, contact or
//! computer (Set-ThrottlingPolicyAssociation).
//!
//! ```yaml
//! throttling_associations:
//!   - identity: uccx-agent@contoso.local     # a mailbox, user, contact or computer
//!     policy: UCCXThrottlingPolicy            # or 'default' for the default policy
//! ```
//!
//! Observation is targeted: `Get-ThrottlingPolicyAssociation -Identity <id>` for the named
//! identities only, never a listing, and compact: the identities are one array literal,
//! one line each, walked by one `foreach`, so a plan with thousands of associations yields
//! a script that grows by one line per identity. Each identity reports its
//! `ThrottlingPolicyId` under its own identity (blank: the default policy applies) or
//! `ThrottlingPolicyIdError` (an identity Exchange cannot find is an error of the plan;
//! kind-specific attribute names keep these records apart from other kinds' records
//! under the same name, such as a computer account named like a server). Each referenced
//! policy other than `default` is checked with `Get-ThrottlingPolicy -Identity <policy>
//! -ErrorAction SilentlyContinue`, reported as `__exists` of
//! `throttling_associations:policy:<name>`.
//!
//! Comparison is by policy name, ignoring case: the ThrottlingPolicyId may print as a name
//! or a distinguished name (`CN=<name>,CN=Global Settings,...`), so its leaf name is
//! compared. A blank id and any `DefaultThrottlingPolicy_<GUID>` both mean the default
//! policy. The change is `Set-ThrottlingPolicyAssociation -Identity <id> -ThrottlingPolicy
//! <policy>`; to return to the default policy the command assigns it by name, as the 2010
//! help's Remove-ThrottlingPolicy example does (`-ThrottlingPolicy $null` is not documented
//! for 2010). That name is found when observing, with `Get-ThrottlingPolicy` by its
//! `IsDefault` (only when some identity returns to the default policy), reported as `Name`
//! of `throttling_associations:policy:default`, so the change is a plain command.
//!
//! Rules (each with its code):
//! - `exchange::duplicate-resource`: an identity associated twice (in one document or
//!   across documents);
//! - `exchange::association-policy-undeclared` (warning): a policy neither `default` nor
//!   declared in `throttling_policies` in any document must already exist on the server;
//!   at plan time it is an error if the server does not have it (and no document declares
//!   it: the policy kind's records in the host's observation say so);
//! - `exchange::association-policy-absent`: the policy is declared `ensure: absent`.

use std::collections::{HashMap, HashSet};

use exctl_manifest::{Diagnostic, Diagnostics, MapReader, Node, NodeKind, ValueReader};
use exctl_pwsh::{Command, quote};

use super::common;
use super::throttling_policies::is_default_name;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    AttrChange, Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext, Order,
    ParseContext, Payload, Resource, Scope,
};
use crate::record::Observations;
use crate::value::{RawValue, Value};

/// The attribute under which an identity's read failure is reported (not the protocol's
/// `__error`: identities are reported under their own name, which another kind's record
/// could share).
const ERROR: &str = "ThrottlingPolicyIdError";

/// The word for the default policy.
pub const DEFAULT: &str = "default";

/// The attribute under which the observation reports the name of the organization's
/// default policy (the one Get-ThrottlingPolicy marks `IsDefault`), under
/// [`default_policy_key`].
const DEFAULT_NAME: &str = "Name";

/// The observation key of the default policy's name (no declared policy is looked up
/// under `policy:default`: `default` names the default policy).
fn default_policy_key() -> String {
    policy_key(DEFAULT)
}

/// Statements reporting the default policy's name, in the PowerShell 2.0 constructs the
/// scripts use (no Where-Object).
fn default_policy_lookup() -> String {
    let key = default_policy_key();
    crate::record::guarded(
        &key,
        &format!(
            "foreach ($p in @(Get-ThrottlingPolicy -ErrorAction Stop)) {{ if ($p.IsDefault) {{ __exctl_emit {} '{DEFAULT_NAME}' $p.Name }} }}",
            quote(&key)
        ),
    )
}

/// Associations of objects with throttling policies.
pub struct ThrottlingAssociations;

/// The resources `exctl export` reads: each named mailbox's association ([`reading`]).
fn export_resources(ctx: &ExportContext<'_>) -> Vec<Resource> {
    ctx.mailboxes.iter().map(|m| reading(m)).collect()
}

/// What an association holds beyond its identity: the policy it names.
#[derive(Debug, Clone, PartialEq)]
struct Association {
    /// The policy as written (`default` for the default policy).
    policy: String,
}

/// The policy an association names, as written (`default` for the default policy);
/// `None` for a resource of another kind.
pub fn policy_of(r: &Resource) -> Option<&str> {
    r.payload.get::<Association>().map(|a| a.policy.as_str())
}

fn policy(r: &Resource) -> &str {
    policy_of(r).unwrap_or(DEFAULT)
}

fn is_default(p: &str) -> bool {
    p.eq_ignore_ascii_case(DEFAULT) || is_default_name(p)
}

/// The policy name an observed ThrottlingPolicyId designates (`None`: the default).
pub fn policy_name(id: &str) -> Option<String> {
    let t = id.trim();
    if t.is_empty() {
        return None;
    }
    let name = if t.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("CN=")) {
        // The first RDN's value, up to an unescaped comma.
        let mut out = String::new();
        let mut chars = t[3..].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                ',' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        t.rsplit(['\\', '/']).next().unwrap_or(t).to_string()
    };
    (!is_default_name(&name)).then_some(name)
}

/// A resource no manifest declared that names `identity`'s association, with no wanted
/// policy (so that no policy is looked up, not even the default one's name), for readers
/// that want it observed ([`Kind::observe`]) and decoded ([`current`]), such as
/// `exctl export` and the engine's capacity check of a shared account.
pub fn reading(identity: &str) -> Resource {
    common::synthetic(
        "throttling_associations",
        identity.to_string(),
        Payload::none(),
    )
}

/// The policy `identity` is associated with, as the observation reported it (`None`: the
/// default policy): the decoding [`Kind::diff`] compares. An error when Exchange could
/// not read the association or the identity matches several objects.
pub fn current(identity: &str, observed: &Observations) -> Result<Option<String>, DiffError> {
    let kind = "throttling_associations";
    if let Some(RawValue::Str(e)) = observed.get(identity, ERROR) {
        return Err(DiffError {
            kind,
            id: identity.to_string(),
            message: e.to_string(),
        });
    }
    let raw = observed
        .get(identity, "ThrottlingPolicyId")
        .ok_or_else(|| common::not_reported(kind, identity))?;
    match raw {
        RawValue::Str(s) => Ok(policy_name(s)),
        RawValue::Null => Ok(None),
        RawValue::List(l) => Err(DiffError {
            kind,
            id: identity.to_string(),
            message: format!("the identity matches {} objects: name one object", l.len()),
        }),
    }
}

/// The name of the organization's default policy, as the observation reported it.
fn default_policy_name(
    kind: &'static str,
    r: &Resource,
    observed: &Observations,
) -> Result<String, DiffError> {
    let key = default_policy_key();
    if let Some(e) = observed.error(&key) {
        return Err(DiffError {
            kind,
            id: r.id.clone(),
            message: format!("the default throttling policy could not be read: {e}"),
        });
    }
    match observed.get(&key, DEFAULT_NAME) {
        Some(RawValue::Str(n)) if !n.trim().is_empty() => Ok(n.clone()),
        _ => Err(DiffError {
            kind,
            id: r.id.clone(),
            message: "the server reported no default throttling policy (none that Get-ThrottlingPolicy marks IsDefault)".into(),
        }),
    }
}

fn policy_key(p: &str) -> String {
    common::obs_key("throttling_associations", &format!("policy:{p}"))
}

impl Kind for ThrottlingAssociations {
    fn key(&self) -> &'static str {
        "throttling_associations"
    }

    fn title(&self) -> &'static str {
        "Throttling policy associations"
    }

    fn scope(&self) -> Scope {
        Scope::Organization
    }

    fn order(&self) -> Order {
        Order {
            phase: 30,
            reason: "associations run after the throttling policies: an association needs its policy",
        }
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let path = format!("{}.throttling_associations", ctx.path);
        let mut out: Vec<Resource> = Vec::new();
        // The index in `out` of each identity accepted, by its lower-case form (Exchange
        // compares identities ignoring case): thousands of associations are checked in
        // linear time, not each against all before it.
        let mut accepted: HashMap<String, usize> = HashMap::new();
        let items = match &node.kind {
            NodeKind::Seq(items) => items.as_slice(),
            NodeKind::Null if node.raw.trim().is_empty() => &[],
            _ => {
                diags.push(
                    Diagnostic::error(
                        "manifest::wrong-type",
                        format!(
                            "{path}: expected a list of associations, found {}",
                            node.describe()
                        ),
                    )
                    .with_span(node.span)
                    .with_label("expected a list")
                    .with_hint(
                        "write each association as a list item: - identity: ...\n  policy: ...",
                    ),
                );
                return Vec::new();
            }
        };
        for (i, item) in items.iter().enumerate() {
            let what = format!("item {} of {path}", i + 1);
            let Some(mut m) = MapReader::new(item, what.clone(), diags) else {
                continue;
            };
            let identity = m
                .required("identity")
                .and_then(ValueReader::non_empty_string);
            let policy_node = m.node_of("policy");
            let policy = m.required("policy").and_then(ValueReader::non_empty_string);
            m.finish();
            let (Some(identity), Some(policy)) = (identity, policy) else {
                continue;
            };
            let identity = identity.trim().to_string();
            let policy = policy.trim().to_string();
            if let Some(first) = accepted
                .get(&identity.to_ascii_lowercase())
                .and_then(|&i| out.get(i))
            {
                diags.push(common::duplicate(
                    &format!("the association of {identity}"),
                    item.span,
                    first.span,
                ));
                continue;
            }
            accepted.insert(identity.to_ascii_lowercase(), out.len());
            out.push(Resource {
                kind: self.key(),
                id: identity,
                ensure: Ensure::Present,
                attrs: vec![DesiredAttr {
                    name: "ThrottlingPolicy".into(),
                    value: Value::Str(policy.clone()),
                    span: policy_node.map_or(item.span, |n| n.span),
                }],
                payload: Payload::new(Association { policy }),
                restart: None,
                sensitive: Vec::new(),
                span: item.span,
            });
        }
        out.into_iter().map(common::declared).collect()
    }

    /// An association is the object it associates.
    fn merge_identity(&self, entry: &Node) -> Option<String> {
        common::entry_field(entry, "identity")
    }

    fn cross_check(&self, all: &[Resource], diags: &mut Diagnostics) {
        common::report_duplicates(
            all,
            self.key(),
            |r| Some(r.id.to_ascii_lowercase()),
            |r| format!("the association of {}", r.id),
            diags,
        );
        // The declared policies by lower-case name, in declaration order: each
        // association looks its policy up instead of scanning them all.
        let mut policies: HashMap<String, Vec<&Resource>> = HashMap::new();
        for d in all.iter().filter(|r| r.kind == "throttling_policies") {
            policies
                .entry(d.id.to_ascii_lowercase())
                .or_default()
                .push(d);
        }
        let mut seen: HashSet<exctl_manifest::Span> = HashSet::new();
        for r in all.iter().filter(|r| r.kind == self.key()) {
            if !seen.insert(r.span) {
                continue;
            }
            let p = policy(r);
            if p.eq_ignore_ascii_case(DEFAULT) {
                continue;
            }
            let span = r.attrs.first().map_or(r.span, |a| a.span);
            let declared: &[&Resource] = policies
                .get(&p.to_ascii_lowercase())
                .map_or(&[], Vec::as_slice);
            if let Some(gone) = declared.iter().find(|d| d.ensure == Ensure::Absent) {
                diags.push(
                    Diagnostic::error(
                        "exchange::association-policy-absent",
                        format!("{} is associated with throttling policy {p}, which a manifest removes", r.id),
                    )
                    .with_span(span)
                    .with_label("this policy is removed")
                    .with_related(gone.span, "declared ensure: absent here")
                    .with_hint("associate the identity with another policy (or 'default'), or keep the policy"),
                );
            } else if declared.is_empty() && !is_default_name(p) {
                diags.push(
                    Diagnostic::warning(
                        "exchange::association-policy-undeclared",
                        format!("{}: throttling policy {p} is not declared in throttling_policies; it must already exist on the server", r.id),
                    )
                    .with_span(span)
                    .with_label("not declared")
                    .with_hint(format!("declare it under throttling_policies, or check the name (the plan fails if the server has no policy {p})")),
                );
            }
        }
    }

    fn observe(&self, resources: &[&Resource], _ctx: &ObserveContext<'_>) -> String {
        if resources.is_empty() {
            return String::new();
        }
        let ids: Vec<String> = resources.iter().map(|r| quote(&r.id)).collect();
        let mut s = format!(
            "foreach ($i in @(\n{}\n)) {{\ntry {{ $a = Get-ThrottlingPolicyAssociation -Identity $i -ErrorAction Stop\n__exctl_emit $i 'ThrottlingPolicyId' $a.ThrottlingPolicyId }}\ncatch {{ __exctl_emit $i 'ThrottlingPolicyIdError' ([string]$_.Exception.Message) }}\n}}\n",
            ids.join(",\n")
        );
        // Each policy a declared association names, once, in the order first named (a
        // reading names none).
        let mut policies: Vec<&str> = Vec::new();
        let mut named: HashSet<String> = HashSet::new();
        for p in resources.iter().filter_map(|r| policy_of(r)) {
            if !is_default(p) && named.insert(p.to_ascii_lowercase()) {
                policies.push(p);
            }
        }
        // The default policy's name, for the changes back to it: they name it literally.
        if resources
            .iter()
            .any(|r| policy_of(r).is_some_and(is_default))
        {
            s.push_str(&default_policy_lookup());
        }
        for p in policies {
            let key = policy_key(p);
            s.push_str(&common::observe_object(
                &key,
                &format!(
                    "Get-ThrottlingPolicy -Identity {} -ErrorAction SilentlyContinue",
                    quote(p)
                ),
                &[],
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
            let want = policy(r);
            if !is_default(want) {
                let key = policy_key(want);
                let exists = common::existence(kind, &r.id, &key, observed)?;
                // The policy kind reports `throttling_policies:<name>` for a policy some
                // document declares: it is created before the associations run.
                let declared = observed
                    .get(&common::obs_key("throttling_policies", want), "__exists")
                    .is_some();
                if !exists && !declared {
                    return Err(DiffError {
                        kind,
                        id: r.id.clone(),
                        message: format!(
                            "throttling policy {want} does not exist on the server and no manifest declares it: declare it under throttling_policies or correct the name"
                        ),
                    });
                }
            }
            let have = current(&r.id, observed)?;
            let same = match &have {
                None => is_default(want),
                Some(h) => h.eq_ignore_ascii_case(want),
            };
            if same {
                continue;
            }
            let shown = |p: Option<&str>| Value::Str(p.unwrap_or(DEFAULT).to_string());
            let attrs = vec![AttrChange {
                name: "ThrottlingPolicy".into(),
                before: Some(shown(have.as_deref())),
                after: Some(shown(Some(want))),
                sensitive: false,
            }];
            let target = if is_default(want) {
                // Back to the default policy by assigning it, as the 2010 help does
                // (Remove-ThrottlingPolicy, Example 2: `$defaultPolicy = Get-ThrottlingPolicy
                // | where-object {$_.IsDefault -eq $true}` then `-ThrottlingPolicy
                // $defaultPolicy`); `-ThrottlingPolicy $null` is not documented for 2010.
                // The default policy is found by IsDefault (its name carries a GUID) when
                // observing, so the command names it literally.
                default_policy_name(kind, r, observed)?
            } else {
                want.to_string()
            };
            let cmd = Command::new("Set-ThrottlingPolicyAssociation")
                .param("Identity", r.id.as_str())
                .param("ThrottlingPolicy", target);
            out.push(common::update(r, &r.id, attrs, 0, vec![cmd]));
        }
        Ok(out)
    }

    /// The association of each named mailbox, read as [`Kind::observe`] reads a
    /// declared one.
    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        ctx.observe(self, &export_resources(ctx))
    }

    /// `identity` and `policy` (a policy's name, or `default`) of each named mailbox, in
    /// the order named.
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let mut items = Vec::new();
        for id in ctx.mailboxes {
            let policy = current(id, observed)?.unwrap_or_else(|| DEFAULT.to_string());
            let mut item = Yaml::map();
            item.push("identity", Yaml::Scalar(export::string(id)));
            item.push("policy", Yaml::Scalar(export::string(&policy)));
            items.push(item);
        }
        if items.is_empty() {
            return Ok(None);
        }
        Ok(Some(Section {
            body: Yaml::Seq(items),
            notes: Vec::new(),
        }))
    }

    fn schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["identity", "policy"],
                "properties": {
                    "identity": {"type": "string"},
                    "policy": {"type": "string", "description": "a policy name, or 'default'"}
                }
            }
        })
    }

    fn help(&self) -> &'static str {
        "Which throttling policy governs a mailbox, user, contact or computer (Set-ThrottlingPolicyAssociation): a list of {identity, policy}, policy a name or 'default'. No restart."
    }

    fn cmdlets(&self) -> &'static [&'static str] {
        &[
            "Get-ThrottlingPolicyAssociation",
            "Get-ThrottlingPolicy",
            "Set-ThrottlingPolicyAssociation",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::kinds::common::testutil::{HOSTILE, assert_contained, assert_parses, yaml_quote};
    use crate::kinds::throttling_policies::ThrottlingPolicies;
    use crate::version::Version;

    fn parse_all(changes: &[Change]) {
        for c in changes {
            crate::kinds::common::testutil::assert_plain(c);
        }
    }

    fn parse_in(kind: &dyn Kind, file: &str, yaml: &str) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str(file, yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let ctx = ParseContext::new(Version::Sp3, vec!["EX01".into()], file);
        let r = read_for_host(kind, &docs[0].root, &ctx, "EX01", &mut diags);
        diags.sort();
        (r, diags)
    }

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_in(&ThrottlingAssociations, "org.yaml", yaml)
    }

    fn ctx() -> ObserveContext<'static> {
        ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        }
    }

    const UCCX: &str = "- identity: uccx-agent@contoso.local\n  policy: UCCXThrottlingPolicy\n";

    fn observed(
        id: &str,
        policy_id: RawValue,
        policy_exists: Option<(&str, bool)>,
    ) -> Observations {
        let mut o = Observations::default();
        o.insert(id, "ThrottlingPolicyId", policy_id);
        if let Some((p, e)) = policy_exists {
            o.insert(
                &policy_key(p),
                "__exists",
                RawValue::Str(if e { "True" } else { "False" }.into()),
            );
        }
        o
    }

    #[test]
    fn reads_identities_and_policies() {
        let (r, d) = parse(&format!(
            "{UCCX}- {{identity: 'CONTOSO\\svc', policy: default}}\n"
        ));
        assert!(d.is_empty());
        assert_eq!(r[0].id, "uccx-agent@contoso.local");
        assert_eq!(policy_of(&r[0]), Some("UCCXThrottlingPolicy"));
        assert_eq!(policy_of(&r[1]), Some("default"));
    }

    #[test]
    fn missing_keys_and_duplicates() {
        let (r, d) = parse(&format!(
            "{UCCX}- {{identity: x}}\n- {{identity: UCCX-AGENT@contoso.local, policy: default}}\n"
        ));
        assert_eq!(r.len(), 1);
        let got: Vec<_> = d
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.span.unwrap().start.line,
                    d.span.unwrap().start.column,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("manifest::missing-key", 3, 3),
                ("exchange::duplicate-resource", 4, 3)
            ]
        );
        assert_eq!(d.as_slice()[1].related[0].0.start.line, 1);
    }

    #[test]
    fn cross_checks_against_declared_policies_in_any_document() {
        let (a, _) = parse(&format!(
            "{UCCX}- {{identity: b, policy: Missing}}\n- {{identity: c, policy: Old}}\n- {{identity: d, policy: DEFAULT}}\n"
        ));
        let (p, _) = parse_in(
            &ThrottlingPolicies,
            "policies.yaml",
            "UCCXThrottlingPolicy:\n  IMAPMaxConcurrency: null\nOld:\n  ensure: absent\n",
        );
        let (dup, _) = parse_in(
            &ThrottlingAssociations,
            "more.yaml",
            "\n\n- {identity: B, policy: default}\n",
        );
        let all: Vec<Resource> = a.iter().chain(&p).chain(&dup).cloned().collect();
        let mut d = Diagnostics::new();
        ThrottlingAssociations.cross_check(&all, &mut d);
        d.sort();
        let got: Vec<_> = d
            .iter()
            .map(|d| (d.code, d.severity, d.span.unwrap().start.line))
            .collect();
        use exctl_manifest::Severity::*;
        assert_eq!(
            got,
            [
                ("exchange::duplicate-resource", Error, 3),
                ("exchange::association-policy-undeclared", Warning, 3),
                ("exchange::association-policy-absent", Error, 4),
            ]
        );
        let undeclared = d
            .iter()
            .find(|d| d.code == "exchange::association-policy-undeclared")
            .unwrap();
        assert_eq!(
            undeclared.message,
            "b: throttling policy Missing is not declared in throttling_policies; it must already exist on the server"
        );
        assert!(
            undeclared
                .hint
                .as_deref()
                .unwrap()
                .contains("declare it under throttling_policies")
        );
    }

    #[test]
    fn observe_is_targeted_and_checks_referenced_policies_once() {
        let (r, _) = parse(&format!(
            "{UCCX}- {{identity: b, policy: uccxthrottlingpolicy}}\n- {{identity: c, policy: default}}\n"
        ));
        let refs: Vec<&Resource> = r.iter().collect();
        let s = ThrottlingAssociations.observe(&refs, &ctx());
        assert_parses(&s);
        assert!(s.contains("foreach ($i in @(\n'uccx-agent@contoso.local',\n'b',\n'c'\n)) {"));
        assert!(s.contains("$a = Get-ThrottlingPolicyAssociation -Identity $i -ErrorAction Stop"));
        assert!(!s.contains("ResultSize"));
        assert_eq!(s.matches("Get-ThrottlingPolicy -Identity").count(), 1);
        assert!(s.contains("'throttling_associations:policy:UCCXThrottlingPolicy'"));
    }

    #[test]
    fn five_thousand_associations_make_a_linear_script() {
        let build = |n: usize| {
            let resources: Vec<Resource> = (0..n)
                .map(|i| {
                    let (mut r, _) = parse(UCCX);
                    let mut r = r.remove(0);
                    r.id = format!("agent{i:05}@contoso.local");
                    r
                })
                .collect();
            let refs: Vec<&Resource> = resources.iter().collect();
            ThrottlingAssociations.observe(&refs, &ctx())
        };
        let small = build(1000);
        let big = build(5000);
        let per_line = "'agent00000@contoso.local',\n".len();
        assert_eq!(
            big.len() - small.len(),
            4000 * per_line,
            "one line per identity, nothing else grows"
        );
        assert_eq!(big.lines().count() - small.lines().count(), 4000);
        for i in [0, 1, 2499, 4999] {
            let id = format!("'agent{i:05}@contoso.local'");
            assert_eq!(big.matches(&id).count(), 1, "{id} appears once");
        }
        assert_parses(&big);
    }

    #[test]
    fn compares_names_dns_and_default_case_insensitively() {
        let (r, _) = parse(&format!("{UCCX}- {{identity: d, policy: default}}\n"));
        let refs = vec![&r[0]];
        for id in [
            "uccxthrottlingpolicy",
            "CN=UCCXThrottlingPolicy,CN=Global Settings,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local",
            "contoso.local/Configuration/UCCXThrottlingPolicy",
        ] {
            let o = observed(
                "uccx-agent@contoso.local",
                RawValue::Str(id.into()),
                Some(("UCCXThrottlingPolicy", true)),
            );
            assert!(
                ThrottlingAssociations
                    .diff(&refs, &o, &ctx())
                    .unwrap()
                    .is_empty(),
                "{id}"
            );
        }
        let o = observed(
            "uccx-agent@contoso.local",
            RawValue::Null,
            Some(("UCCXThrottlingPolicy", true)),
        );
        let c = ThrottlingAssociations.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(c[0].attrs[0].before, Some(Value::Str("default".into())));
        assert_eq!(
            c[0].script(),
            "Set-ThrottlingPolicyAssociation -Identity 'uccx-agent@contoso.local' -ThrottlingPolicy 'UCCXThrottlingPolicy'"
        );
        // Back to the default policy: blank and DefaultThrottlingPolicy_<GUID> are the default.
        let refs = vec![&r[1]];
        for id in [
            RawValue::Str(String::new()),
            RawValue::Null,
            RawValue::Str("DefaultThrottlingPolicy_1f2e".into()),
        ] {
            assert!(
                ThrottlingAssociations
                    .diff(&refs, &observed("d", id, None), &ctx())
                    .unwrap()
                    .is_empty()
            );
        }
        // The default policy is named by what the observation found marked IsDefault.
        let s = ThrottlingAssociations.observe(&refs, &ctx());
        assert!(s.contains(
            "foreach ($p in @(Get-ThrottlingPolicy -ErrorAction Stop)) { if ($p.IsDefault) { __exctl_emit 'throttling_associations:policy:default' 'Name' $p.Name } }"
        ));
        let mut o = observed("d", RawValue::Str("Other".into()), None);
        let e = ThrottlingAssociations.diff(&refs, &o, &ctx()).unwrap_err();
        assert!(e.message.contains("no default throttling policy"), "{e}");
        o.insert(
            &default_policy_key(),
            DEFAULT_NAME,
            RawValue::Str("DefaultThrottlingPolicy_1f2e".into()),
        );
        let c = ThrottlingAssociations.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(
            c[0].script(),
            "Set-ThrottlingPolicyAssociation -Identity 'd' -ThrottlingPolicy 'DefaultThrottlingPolicy_1f2e'"
        );
        // No lookup when no identity returns to the default policy.
        assert!(
            !ThrottlingAssociations
                .observe(&[&r[0]], &ctx())
                .contains("IsDefault")
        );
    }

    #[test]
    fn a_policy_missing_everywhere_is_a_diff_error_unless_declared() {
        let (r, _) = parse(UCCX);
        let refs: Vec<&Resource> = r.iter().collect();
        let o = observed(
            "uccx-agent@contoso.local",
            RawValue::Null,
            Some(("UCCXThrottlingPolicy", false)),
        );
        let e = ThrottlingAssociations.diff(&refs, &o, &ctx()).unwrap_err();
        assert!(
            e.message
                .contains("does not exist on the server and no manifest declares it"),
            "{e}"
        );
        // Declared in throttling_policies: the policy kind reported it (to be created).
        let mut o = o;
        o.insert(
            "throttling_policies:UCCXThrottlingPolicy",
            "__exists",
            RawValue::Str("False".into()),
        );
        assert_eq!(
            ThrottlingAssociations
                .diff(&refs, &o, &ctx())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn errors_of_an_identity_are_diff_errors() {
        let (r, _) = parse("- {identity: ghost, policy: default}\n");
        let refs: Vec<&Resource> = r.iter().collect();
        let mut o = Observations::default();
        o.insert(
            "ghost",
            "ThrottlingPolicyIdError",
            RawValue::Str(
                "The operation couldn't be performed because object 'ghost' couldn't be found."
                    .into(),
            ),
        );
        let e = ThrottlingAssociations.diff(&refs, &o, &ctx()).unwrap_err();
        assert!(e.message.contains("couldn't be found"));
        assert!(
            ThrottlingAssociations
                .diff(&refs, &Observations::default(), &ctx())
                .unwrap_err()
                .message
                .contains("did not report")
        );
    }

    #[test]
    fn hostile_identities_and_policies_stay_inside_literals() {
        let build = |v: &str| {
            let (r, d) = parse(&format!(
                "- identity: {}\n  policy: {}\n",
                yaml_quote(v),
                yaml_quote(v)
            ));
            assert!(d.is_empty(), "{d:?}");
            let refs: Vec<&Resource> = r.iter().collect();
            let observe = ThrottlingAssociations.observe(&refs, &ctx());
            let apply = ThrottlingAssociations
                .diff(&refs, &observed(v, RawValue::Null, Some((v, true))), &ctx())
                .unwrap()[0]
                .script()
                .clone();
            (observe, apply)
        };
        let (ob, ab) = build("benign");
        let (oh, ah) = build(HOSTILE);
        assert_contained(&oh, &ob, HOSTILE);
        assert_contained(&ah, &ab, HOSTILE);
    }
}

#[cfg(test)]
mod reading_tests {
    use super::*;

    #[test]
    fn a_reading_observes_one_association_and_current_names_its_policy() {
        let r = reading("uccx-agent");
        let ctx = ObserveContext {
            host: "EX01",
            version: crate::version::Version::Sp3,
        };
        let script = ThrottlingAssociations.observe(&[&r], &ctx);
        common::testutil::assert_parses(&script);
        assert!(script.contains("'uccx-agent'"), "{script}");
        let mut o = Observations::default();
        o.insert(
            "uccx-agent",
            "ThrottlingPolicyId",
            RawValue::Str("CN=UCCX,CN=Global Settings,CN=Contoso".into()),
        );
        assert_eq!(current("uccx-agent", &o), Ok(Some("UCCX".into())));
        o.insert(
            "uccx-agent",
            "ThrottlingPolicyId",
            RawValue::Str(String::new()),
        );
        assert_eq!(current("uccx-agent", &o), Ok(None));
        o.insert(
            "uccx-agent",
            "ThrottlingPolicyId",
            RawValue::List(vec!["a".into(), "b".into()]),
        );
        assert!(
            current("uccx-agent", &o)
                .unwrap_err()
                .message
                .contains("2 objects")
        );
        assert!(current("someone-else", &o).is_err());
    }
}
