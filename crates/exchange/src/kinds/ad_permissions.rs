//! `ad_permissions`: access control entries granted with Add-ADPermission.
//!
//! ```yaml
//! ad_permissions:
//!   - target: organization        # the organization config; or any -Identity of Get-ADPermission
//!     user: CONTOSO\svc-uccx
//!     extended_rights: [View Information Store status]   # or ms-Exch-Store-Visible
//!     access_rights: [ExtendedRight]   # optional, ActiveDirectoryRights names
//!     inheritance: All              # optional: None | All | Descendents | SelfAndChildren | Children
//!     deny: false                   # optional
//!     ensure: present               # or absent
//! ```
//!
//! Each entry is a set of grants of one user on one target: each extended right (with
//! the access rights, if declared), or, without extended rights, the access rights alone.
//! `target: organization` means `(Get-OrganizationConfig).DistinguishedName`, read when
//! observing (reported as `TargetDistinguishedName`) so that the changes are plain commands
//! with that name literally in `-Identity`.
//!
//! Comparison is on the user's explicit (not inherited) entries of the target, as the
//! idempotent check of the reference does (`Get-ADPermission -User` filtered on
//! `IsInherited` false): a grant is present when an explicit entry with the same Deny,
//! the same InheritanceType (when `inheritance` is declared; otherwise any), carries the
//! extended right (compared by meaning: the display name `View Information Store status`
//! and the schema name `ms-Exch-Store-Visible` are the same right, ignoring case) and the
//! access rights (as bits: GenericAll holds ExtendedRight). An entry granting all
//! extended rights does not count as a grant of a named one: the manifest asks for that
//! one explicitly.
//!
//! Observation, under `ad_permissions:<target>|<user>` (one read per target and user,
//! `Get-ADPermission -Identity <target> -User <user> -ErrorAction Stop`, so that a target
//! or user Exchange cannot find is an error of the plan):
//! `__exists` and four lists with one element per explicit entry of the user and extended
//! right it carries (one element for an entry without extended rights): `Deny`,
//! `InheritanceType`, `AccessRights` (the entry's rights as text, `ReadProperty,
//! WriteProperty` or `ReadProperty WriteProperty`), `ExtendedRights` (the right, or empty).
//!
//! Changes:
//! - create/update: `Add-ADPermission -Identity <target> -User <user> -ExtendedRights
//!   <missing rights> [-AccessRights <rights>] [-InheritanceType <t>] [-Deny]`;
//! - delete (`ensure: absent`): for each explicit entry that carries a declared right,
//!   `Remove-ADPermission -Identity <target> -User <user> -ExtendedRights <right>
//!   [-AccessRights <rights>] -InheritanceType <the entry's> [-Deny] -Confirm:$false`.
//!
//! They run first (phase 10): later steps may rely on the permissions.
//!
//! Rules (each with its code):
//! - `exchange::adperm-no-rights`: neither extended_rights nor access_rights;
//! - `exchange::adperm-unknown-right` (warning): an extended right not in the table of
//!   known rights (Active Directory's and Exchange's), with a did-you-mean; unknown
//!   rights may exist (applications register their own), so it is not an error;
//! - `exchange::duplicate-resource`: the same right for the same user, target and
//!   deny declared twice (in one document or several);
//! - access rights and inheritance must be names of ActiveDirectoryRights and
//!   ActiveDirectorySecurityInheritance (`manifest::invalid-value` with a did-you-mean).

use std::collections::{HashMap, HashSet};

use exctl_manifest::{
    Diagnostic, Diagnostics, MapReader, Node, NodeKind, Span, ValueReader, did_you_mean,
};
use exctl_pwsh::{Command, quote};

use super::common;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    Action, AttrChange, Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext,
    Order, ParseContext, Payload, Resource, Scope,
};
use crate::record::{Observations, guarded};
use crate::value::{ParamType, RawValue, Value};

/// Known extended rights: (schema name, display name). Schema names from the
/// controlAccessRight GUID tables of public code (ms-Exch-Store-Visible is rightsGuid
/// d74a875e-22b9-11d3-aa62-00c04f8eedd8); display names from the Exchange deployment
/// permissions reference and the Remove-ADPermission help ("View Information Store
/// status"), only where that pairing is documented.
pub const EXTENDED_RIGHTS: &[(&str, Option<&str>)] = &[
    (
        "ms-Exch-Store-Visible",
        Some("View Information Store status"),
    ),
    ("ms-Exch-Store-Admin", Some("Administer information store")),
    (
        "ms-Exch-Store-Create-Named-Properties",
        Some("Create named properties in the information store"),
    ),
    ("ms-Exch-Store-Read-Access", Some("Store Read Access")),
    (
        "ms-Exch-Store-Read-Write-Access",
        Some("Store Read Write Access"),
    ),
    (
        "ms-Exch-Store-Transport-Access",
        Some("Store Transport Access"),
    ),
    (
        "ms-Exch-Store-Constrained-Delegation",
        Some("Store Constrained Delegation"),
    ),
    (
        "ms-Exch-EPI-Token-Serialization",
        Some("Exchange Web Services Token Serialization"),
    ),
    ("ms-Exch-EPI-Impersonation", None),
    ("ms-Exch-EPI-May-Impersonate", None),
    ("ms-Exch-Create-Public-Folder", Some("Create public folder")),
    (
        "ms-Exch-Create-Top-Level-Public-Folder",
        Some("Create top level public folder"),
    ),
    (
        "ms-Exch-Mail-Enabled-Public-Folder",
        Some("Mail Enable Public Folder"),
    ),
    ("ms-Exch-Modify-PF-ACL", Some("Modify public folder ACL")),
    (
        "ms-Exch-Modify-PF-Admin-ACL",
        Some("Modify public folder admin ACL"),
    ),
    (
        "ms-Exch-Modify-Public-Folder-Deleted-Item-Retention",
        Some("Modify public folder deleted item retention"),
    ),
    (
        "ms-Exch-Modify-Public-Folder-Expiry",
        Some("Modify public folder expiry"),
    ),
    (
        "ms-Exch-Modify-Public-Folder-Quotas",
        Some("Modify public folder quotas"),
    ),
    (
        "ms-Exch-Modify-Public-Folder-Replica-List",
        Some("Modify public folder replica list"),
    ),
    ("ms-Exch-Add-PF-To-Admin-Group", None),
    ("ms-Exch-Remove-PF-From-Admin-Group", None),
    (
        "ms-Exch-Download-OAB",
        Some("Download Offline Address Book"),
    ),
    ("ms-Exch-Open-Send-Queue", None),
    ("ms-Exch-Read-Metabase-Properties", None),
    ("ms-Exch-Recipient-Update-Access", None),
    ("ms-Exch-Admin-Role-Administrator", None),
    ("ms-Exch-Admin-Role-Full-Administrator", None),
    ("ms-Exch-Admin-Role-Read-Only-Administrator", None),
    ("ms-Exch-Admin-Role-Service", None),
    ("ms-Exch-SMTP-Submit", None),
    ("ms-Exch-SMTP-Submit-For-MLS", None),
    ("ms-Exch-SMTP-Accept-Any-Recipient", None),
    ("ms-Exch-SMTP-Accept-Any-Sender", None),
    ("ms-Exch-SMTP-Accept-Authentication-Flag", None),
    ("ms-Exch-SMTP-Accept-Authoritative-Domain-Sender", None),
    ("ms-Exch-SMTP-Accept-Exch50", None),
    ("ms-Exch-SMTP-Send-Exch50", None),
    ("ms-Exch-SMTP-Send-XShadow", None),
    ("ms-Exch-Accept-Headers-Forest", None),
    ("ms-Exch-Accept-Headers-Organization", None),
    ("ms-Exch-Accept-Headers-Routing", None),
    ("ms-Exch-Send-Headers-Forest", None),
    ("ms-Exch-Send-Headers-Organization", None),
    ("ms-Exch-Send-Headers-Routing", None),
    ("ms-Exch-Bypass-Anti-Spam", None),
    ("ms-Exch-Bypass-Message-Size-Limit", None),
    ("Send-As", Some("Send As")),
    ("Receive-As", Some("Receive As")),
    ("Send-To", None),
    ("User-Change-Password", None),
    ("User-Force-Change-Password", None),
    ("DS-Replication-Get-Changes", None),
    ("DS-Replication-Get-Changes-All", None),
    ("DS-Replication-Synchronize", None),
    ("DS-Replication-Manage-Topology", None),
    ("Allowed-To-Authenticate", None),
    ("Apply-Group-Policy", None),
    ("Certificate-Enrollment", None),
    ("Certificate-AutoEnrollment", None),
    ("Generate-RSoP-Planning", None),
    ("Generate-RSoP-Logging", None),
    ("Open-Address-Book", None),
    ("Reanimate-Tombstones", None),
    ("Unexpire-Password", None),
    ("Update-Password-Not-Required-Bit", None),
    ("Enable-Per-User-Reversibly-Encrypted-Password", None),
];

/// `System.DirectoryServices.ActiveDirectoryRights`: names and bits.
pub const ACCESS_RIGHTS: &[(&str, u32)] = &[
    ("CreateChild", 0x1),
    ("DeleteChild", 0x2),
    ("ListChildren", 0x4),
    ("Self", 0x8),
    ("ReadProperty", 0x10),
    ("WriteProperty", 0x20),
    ("DeleteTree", 0x40),
    ("ListObject", 0x80),
    ("ExtendedRight", 0x100),
    ("Delete", 0x1_0000),
    ("ReadControl", 0x2_0000),
    ("GenericExecute", 0x2_0004),
    ("GenericWrite", 0x2_0028),
    ("GenericRead", 0x2_0094),
    ("WriteDacl", 0x4_0000),
    ("WriteOwner", 0x8_0000),
    ("GenericAll", 0xF_01FF),
    ("Synchronize", 0x10_0000),
    ("AccessSystemSecurity", 0x100_0000),
];

const ACCESS_NAMES: &[&str] = &[
    "CreateChild",
    "DeleteChild",
    "ListChildren",
    "Self",
    "ReadProperty",
    "WriteProperty",
    "DeleteTree",
    "ListObject",
    "ExtendedRight",
    "Delete",
    "ReadControl",
    "GenericExecute",
    "GenericWrite",
    "GenericRead",
    "WriteDacl",
    "WriteOwner",
    "GenericAll",
    "Synchronize",
    "AccessSystemSecurity",
];

/// `ActiveDirectorySecurityInheritance` names, as Add-ADPermission spells them.
pub const INHERITANCE: &[&str] = &["None", "All", "Descendents", "SelfAndChildren", "Children"];

/// The comparison form of an extended right: its schema name, lower-cased, when known.
pub fn canonical_right(s: &str) -> String {
    let t = s.trim();
    EXTENDED_RIGHTS
        .iter()
        .find(|(ldap, display)| {
            ldap.eq_ignore_ascii_case(t) || display.is_some_and(|d| d.eq_ignore_ascii_case(t))
        })
        .map_or_else(
            || t.to_ascii_lowercase(),
            |(ldap, _)| ldap.to_ascii_lowercase(),
        )
}

/// The spelling of a known right the manifest used, with the table's case.
fn known_spelling(s: &str) -> Option<&'static str> {
    let t = s.trim();
    EXTENDED_RIGHTS.iter().find_map(|(ldap, display)| {
        if ldap.eq_ignore_ascii_case(t) {
            Some(*ldap)
        } else {
            display.filter(|d| d.eq_ignore_ascii_case(t))
        }
    })
}

/// The bits of access rights written as names (separated by commas or spaces).
pub fn access_mask(text: &str) -> u32 {
    text.split([',', ' '])
        .filter(|t| !t.is_empty())
        .filter_map(|t| {
            ACCESS_RIGHTS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(t))
        })
        .fold(0, |m, (_, b)| m | b)
}

/// AD permission grants.
pub struct AdPermissions;

fn list(r: &Resource, name: &str) -> Vec<String> {
    match r.attrs.iter().find(|a| a.name == name).map(|a| &a.value) {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    }
}

/// What a permission holds beyond its rights: on what, for whom, allow or deny.
#[derive(Debug, Clone, PartialEq)]
struct Grant {
    /// `organization` or an object's identity, as written.
    target: String,
    /// The user or group, as written.
    user: String,
    /// A deny entry rather than an allow.
    deny: bool,
    /// The InheritanceType, when the manifest names one.
    inheritance: Option<&'static str>,
}

fn grant(r: &Resource) -> Option<&Grant> {
    r.payload.get::<Grant>()
}

fn target(r: &Resource) -> &str {
    grant(r).map_or("", |g| g.target.as_str())
}

fn user(r: &Resource) -> &str {
    grant(r).map_or("", |g| g.user.as_str())
}

fn deny(r: &Resource) -> bool {
    grant(r).is_some_and(|g| g.deny)
}

fn inheritance(r: &Resource) -> Option<&str> {
    grant(r).and_then(|g| g.inheritance)
}

/// `ad_permissions:<target>|<user>`.
fn obs_key(r: &Resource) -> String {
    common::obs_key("ad_permissions", &format!("{}|{}", target(r), user(r)))
}

/// The attribute under which the observation reports the organization's distinguished
/// name (for `target: organization`).
const TARGET_DN: &str = "TargetDistinguishedName";

/// Whether a target is the organization configuration.
fn is_organization(t: &str) -> bool {
    t.eq_ignore_ascii_case("organization")
}

/// The `-Identity` of the commands of `r`: the target as written, or for the
/// organization the distinguished name the observation reported.
fn target_identity(
    kind: &'static str,
    r: &Resource,
    observed: &Observations,
) -> Result<String, DiffError> {
    let t = target(r);
    if !is_organization(t) {
        return Ok(t.to_string());
    }
    match observed.get(&obs_key(r), TARGET_DN) {
        Some(RawValue::Str(dn)) if !dn.trim().is_empty() => Ok(dn.clone()),
        _ => Err(DiffError {
            kind,
            id: r.id.clone(),
            message: "the server did not report the organization's distinguished name ((Get-OrganizationConfig).DistinguishedName)".into(),
        }),
    }
}

/// The statement that sets `$t` to the target's identity.
fn target_statement(t: &str) -> String {
    if is_organization(t) {
        "$t = (Get-OrganizationConfig).DistinguishedName".to_string()
    } else {
        format!("$t = {}", quote(t))
    }
}

fn read_item(item: &Node, what: &str, diags: &mut Diagnostics) -> Option<Resource> {
    let mut m = MapReader::new(item, what.to_string(), diags)?;
    let target = m.required("target").and_then(ValueReader::non_empty_string);
    let user = m.required("user").and_then(ValueReader::non_empty_string);
    let ext_node = m.node_of("extended_rights");
    let ext = m.value("extended_rights").and_then(|v| {
        let node = v.node();
        if let NodeKind::Seq(items) = &node.kind {
            let what = v.what().to_string();
            let mut v = v;
            let mut out = Vec::new();
            for (i, n) in items.iter().enumerate() {
                let r = ValueReader::new(n, format!("item {} of {what}", i + 1), v.diags())
                    .non_empty_string()?;
                out.push((r, n.span));
            }
            Some(out)
        } else {
            let span = node.span;
            v.non_empty_string().map(|s| vec![(s, span)])
        }
    });
    let access_node = m.node_of("access_rights");
    let access = m
        .value("access_rights")
        .and_then(|v| ParamType::Flags(ACCESS_NAMES).read(v));
    let inherit = m.value("inheritance").and_then(|v| v.one_of(INHERITANCE));
    let deny = m.bool("deny").unwrap_or(false);
    let ensure = common::read_ensure(&mut m).unwrap_or_default();
    m.finish();
    let (target, user) = (target?, user?);
    if (ext_node.is_some() && ext.is_none()) || (access_node.is_some() && access.is_none()) {
        return None; // already reported
    }
    let ext = ext.unwrap_or_default();
    let access = match access {
        Some(Value::List(l)) => l,
        _ => Vec::new(),
    };
    if ext.is_empty() && access.is_empty() {
        let span = ext_node.or(access_node).map_or(item.span, |n| n.span);
        diags.push(
            Diagnostic::error(
                "exchange::adperm-no-rights",
                format!("{what}: no rights to grant"),
            )
            .with_span(span)
            .with_label("no extended_rights nor access_rights")
            .with_hint("add extended_rights: [View Information Store status] (or access_rights)"),
        );
        return None;
    }
    let all_names: Vec<&str> = EXTENDED_RIGHTS
        .iter()
        .flat_map(|(l, d)| std::iter::once(*l).chain(*d))
        .collect();
    let mut rights = Vec::new();
    for (r, span) in &ext {
        match known_spelling(r) {
            Some(k) => rights.push(k.to_string()),
            None => {
                let hint = did_you_mean(r, &all_names).map_or_else(
                    || "check the right's name (Get-ADPermission shows the names in use); unknown names fail at apply".to_string(),
                    |s| format!("did you mean '{s}'?"),
                );
                diags.push(
                    Diagnostic::warning(
                        "exchange::adperm-unknown-right",
                        format!("{what}: '{r}' is not an extended right exctl knows"),
                    )
                    .with_span(*span)
                    .with_label("unknown extended right")
                    .with_hint(hint),
                );
                rights.push(r.trim().to_string());
            }
        }
    }
    let mut attrs = Vec::new();
    let span_of = |n: Option<&Node>| n.map_or(item.span, |n| n.span);
    if !rights.is_empty() {
        attrs.push(DesiredAttr {
            name: "ExtendedRights".into(),
            value: Value::List(rights.clone()),
            span: span_of(ext_node),
        });
    }
    if !access.is_empty() {
        attrs.push(DesiredAttr {
            name: "AccessRights".into(),
            value: Value::List(access.clone()),
            span: span_of(access_node),
        });
    }
    let described = if rights.is_empty() {
        access.join(", ")
    } else {
        rights.join(", ")
    };
    let id = format!(
        "{target}: {user} {} {described}",
        if deny { "deny" } else { "allow" }
    );
    Some(Resource {
        kind: "ad_permissions",
        id,
        ensure,
        attrs,
        payload: Payload::new(Grant {
            target,
            user,
            deny,
            inheritance: inherit,
        }),
        restart: None,
        sensitive: Vec::new(),
        span: item.span,
    })
}

/// The grants of a resource, as comparison keys (`canonical right` or `""` for an
/// access-rights-only grant).
fn grants(r: &Resource) -> Vec<String> {
    let ext = list(r, "ExtendedRights");
    if ext.is_empty() {
        vec![String::new()]
    } else {
        ext.iter().map(|e| canonical_right(e)).collect()
    }
}

/// Two resources that grant the same thing to the same user on the same target.
fn overlap(a: &Resource, b: &Resource) -> bool {
    target(a).eq_ignore_ascii_case(target(b))
        && user(a).eq_ignore_ascii_case(user(b))
        && deny(a) == deny(b)
        && grants(a).iter().any(|g| grants(b).contains(g))
}

/// What two overlapping resources share: target and user (ignoring case) and `deny`.
/// Resources are grouped by it so that [`overlap`] is asked only within a group.
fn overlap_group(r: &Resource) -> (String, String, bool) {
    (
        target(r).to_ascii_lowercase(),
        user(r).to_ascii_lowercase(),
        deny(r),
    )
}

/// One explicit entry of the user on the target, as observed.
#[derive(Debug)]
struct Ace {
    deny: bool,
    inheritance: String,
    mask: u32,
    right: String,
}

fn observed_aces(
    kind: &'static str,
    r: &Resource,
    observed: &Observations,
) -> Result<Vec<Ace>, DiffError> {
    let key = obs_key(r);
    let err = |message: String| DiffError {
        kind,
        id: r.id.clone(),
        message,
    };
    let get = |attr: &str| -> Result<Vec<String>, DiffError> {
        match observed.get(&key, attr) {
            Some(RawValue::List(l)) => Ok(l.clone()),
            Some(RawValue::Str(s)) => Ok(vec![s.clone()]),
            Some(RawValue::Null) => Ok(Vec::new()),
            None => Err(err(format!("the server did not report {attr}"))),
        }
    };
    let (d, i, a, e) = (
        get("Deny")?,
        get("InheritanceType")?,
        get("AccessRights")?,
        get("ExtendedRights")?,
    );
    if !(d.len() == i.len() && i.len() == a.len() && a.len() == e.len()) {
        return Err(err(format!(
            "the server reported {} Deny, {} InheritanceType, {} AccessRights and {} ExtendedRights values for the same entries",
            d.len(),
            i.len(),
            a.len(),
            e.len()
        )));
    }
    Ok((0..d.len())
        .map(|n| Ace {
            deny: d[n].trim().eq_ignore_ascii_case("true"),
            inheritance: i[n].trim().to_string(),
            mask: access_mask(&a[n]),
            right: e[n].trim().to_string(),
        })
        .collect())
}

/// The resources `exctl export` reads: each named user on the organization.
fn export_resources(ctx: &ExportContext<'_>) -> Vec<Resource> {
    ctx.users
        .iter()
        .map(|u| {
            common::synthetic(
                "ad_permissions",
                format!("organization: {u}"),
                Payload::new(Grant {
                    target: "organization".to_string(),
                    user: u.to_string(),
                    deny: false,
                    inheritance: None,
                }),
            )
        })
        .collect()
}

/// The manifest entry for one user's explicit entries of one kind (allow or deny), and
/// what it cannot say. One entry per (target, user, deny), as a list merges by that.
fn export_entry(user: &str, deny: bool, aces: &[&Ace]) -> (Option<Yaml>, Vec<String>) {
    let mut notes = Vec::new();
    let what = if deny { "deny" } else { "allow" };
    let ext_bit = access_mask("ExtendedRight");
    let (with_right, without): (Vec<&Ace>, Vec<&Ace>) =
        aces.iter().copied().partition(|a| !a.right.is_empty());
    let mut item = Yaml::map();
    item.push("target", Yaml::Scalar("organization".into()));
    item.push("user", Yaml::Scalar(export::string(user)));
    let chosen: Vec<&Ace> = if !with_right.is_empty() {
        // A right without the ExtendedRight bit would not read back as granted.
        let (usable, odd): (Vec<&Ace>, Vec<&Ace>) = with_right
            .into_iter()
            .partition(|a| a.mask & ext_bit == ext_bit);
        for a in odd {
            notes.push(format!(
                "{user} ({what}): {} without the ExtendedRight access right: not exported",
                a.right
            ));
        }
        if usable.is_empty() {
            return (None, notes);
        }
        let mut rights: Vec<String> = Vec::new();
        for a in &usable {
            let shown = known_spelling(&a.right).map_or_else(|| a.right.clone(), str::to_string);
            if !rights
                .iter()
                .any(|r| canonical_right(r) == canonical_right(&shown))
            {
                rights.push(shown);
            }
        }
        rights.sort_by_key(|r| r.to_lowercase());
        item.push("extended_rights", Yaml::Scalar(export::flow_list(&rights)));
        for a in &without {
            notes.push(format!(
                "{user} ({what}): an entry of access rights alone ({}) beside extended rights: not exported (one manifest entry per user and deny)",
                access_names(a.mask).join(", ")
            ));
        }
        usable
    } else {
        // Access rights alone: the widest entry (the others it holds are implied).
        let Some(widest) = without
            .iter()
            .copied()
            .filter(|a| !access_names(a.mask).is_empty())
            .max_by_key(|a| a.mask.count_ones())
        else {
            return (None, notes);
        };
        for a in &without {
            if a.mask & widest.mask != a.mask {
                notes.push(format!(
                    "{user} ({what}): another entry of access rights alone ({}): not exported (one manifest entry per user and deny)",
                    access_names(a.mask).join(", ")
                ));
            }
        }
        item.push(
            "access_rights",
            Yaml::Scalar(export::flow_list(&access_names(widest.mask))),
        );
        vec![widest]
    };
    // Inheritance is written when the entries agree (compared then); else any matches.
    if let Some(first) = chosen.first()
        && !first.inheritance.is_empty()
        && chosen
            .iter()
            .all(|a| a.inheritance.eq_ignore_ascii_case(&first.inheritance))
        && let Some(i) = INHERITANCE
            .iter()
            .find(|i| i.eq_ignore_ascii_case(&first.inheritance))
    {
        item.push("inheritance", Yaml::Scalar((*i).to_string()));
    }
    if deny {
        item.push("deny", Yaml::Scalar("true".into()));
    }
    (Some(item), notes)
}

/// The names of the bits of an access mask (the plain rights, not the Generic* sums).
fn access_names(mask: u32) -> Vec<String> {
    ACCESS_RIGHTS
        .iter()
        .filter(|(n, b)| !n.starts_with("Generic") && mask & b == *b)
        .map(|(n, _)| n.to_string())
        .collect()
}

impl Kind for AdPermissions {
    fn key(&self) -> &'static str {
        "ad_permissions"
    }

    fn title(&self) -> &'static str {
        "AD permissions"
    }

    fn scope(&self) -> Scope {
        Scope::Organization
    }

    fn order(&self) -> Order {
        Order {
            phase: 10,
            reason: "AD permissions run first: later steps may rely on them",
        }
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let path = format!("{}.ad_permissions", ctx.path);
        let mut out: Vec<Resource> = Vec::new();
        // The indexes in `out` of the resources accepted, by overlap group.
        let mut groups: HashMap<(String, String, bool), Vec<usize>> = HashMap::new();
        match &node.kind {
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let what = format!("item {} of {path}", i + 1);
                    let Some(r) = read_item(item, &what, diags) else {
                        continue;
                    };
                    let group = groups.entry(overlap_group(&r)).or_default();
                    if let Some(first) = group
                        .iter()
                        .filter_map(|&i| out.get(i))
                        .find(|o| overlap(o, &r))
                    {
                        diags.push(common::duplicate(
                            &format!("the permission '{}'", r.id),
                            r.span,
                            first.span,
                        ));
                        continue;
                    }
                    group.push(out.len());
                    out.push(r);
                }
            }
            NodeKind::Null if node.raw.trim().is_empty() => {}
            _ => diags.push(
                Diagnostic::error(
                    "manifest::wrong-type",
                    format!(
                        "{path}: expected a list of permissions, found {}",
                        node.describe()
                    ),
                )
                .with_span(node.span)
                .with_label("expected a list")
                .with_hint("write each permission as a list item: - target: organization"),
            ),
        }
        out.into_iter().map(common::declared).collect()
    }

    /// A permission entry is the user's allow (or deny) entries on a target: an
    /// override of the same target, user and `deny` replaces the rights it grants.
    fn merge_identity(&self, entry: &Node) -> Option<String> {
        let deny = common::entry_field(entry, "deny").unwrap_or_else(|| "false".into());
        Some(format!(
            "{}|{}|{deny}",
            common::entry_field(entry, "target")?,
            common::entry_field(entry, "user")?
        ))
    }

    fn cross_check(&self, all: &[Resource], diags: &mut Diagnostics) {
        // One declaration read for several hosts is one declaration.
        let mut mine: Vec<&Resource> = Vec::new();
        let mut spans: HashSet<Span> = HashSet::new();
        for r in all.iter().filter(|r| r.kind == self.key()) {
            if spans.insert(r.span) {
                mine.push(r);
            }
        }
        mine.sort_by_key(|r| (r.span.file, r.span.start.offset, r.span.end.offset));
        // Only resources of one overlap group can overlap: each is compared with the
        // later members of its group (in the order above), not with every later one.
        let mut groups: HashMap<(String, String, bool), Vec<usize>> = HashMap::new();
        for (i, r) in mine.iter().enumerate() {
            groups.entry(overlap_group(r)).or_default().push(i);
        }
        let mut reported: HashSet<Span> = HashSet::new();
        for (i, a) in mine.iter().enumerate() {
            let group = groups.get(&overlap_group(a)).map_or(&[][..], Vec::as_slice);
            // The group's indexes ascend: the later members start after `i`.
            let from = group.partition_point(|&j| j <= i);
            let later = group[from..].iter().filter_map(|&j| mine.get(j));
            for b in later {
                if a.span == b.span || !overlap(a, b) {
                    continue;
                }
                let (first, later) = (a, b);
                if reported.insert(later.span) {
                    diags.push(common::duplicate(
                        &format!("the permission '{}'", later.id),
                        later.span,
                        first.span,
                    ));
                }
            }
        }
    }

    fn observe(&self, resources: &[&Resource], _ctx: &ObserveContext<'_>) -> String {
        // Each observation key once (ignoring case), in the order first met.
        let mut done: HashSet<String> = HashSet::new();
        let mut s = String::new();
        for r in resources {
            let key = obs_key(r);
            if !done.insert(key.to_ascii_lowercase()) {
                continue;
            }
            let k = quote(&key);
            // One row per (explicit entry, extended right): an entry may carry several
            // rights, and `[string]` on a list would join names that contain spaces.
            let rows = |var: &str, none: &str, each: &str| {
                format!(
                    "${var} = @(foreach ($a in $x) {{ if ($null -eq $a.ExtendedRights) {{ {none} }} else {{ foreach ($g in @($a.ExtendedRights)) {{ {each} }} }} }})\n"
                )
            };
            let mut body = format!(
                "{}\n$x = @(foreach ($a in @(Get-ADPermission -Identity $t -User {} -ErrorAction Stop)) {{ if ($a.IsInherited -eq $false) {{ $a }} }})\n__exctl_emit {k} '__exists' $true\n",
                target_statement(target(r)),
                quote(user(r)),
            );
            if is_organization(target(r)) {
                // The changes name the organization by this distinguished name: they are
                // plain commands, with no lookup of their own.
                body.push_str(&format!("__exctl_emit {k} '{TARGET_DN}' $t\n"));
            }
            for (var, attr, none, each) in [
                ("d", "Deny", "$a.Deny", "$a.Deny"),
                (
                    "i",
                    "InheritanceType",
                    "$a.InheritanceType",
                    "$a.InheritanceType",
                ),
                (
                    "r",
                    "AccessRights",
                    "[string]$a.AccessRights",
                    "[string]$a.AccessRights",
                ),
                ("e", "ExtendedRights", "''", "[string]$g"),
            ] {
                body.push_str(&rows(var, none, each));
                body.push_str(&format!("__exctl_emit {k} '{attr}' ${var}\n"));
            }
            body.pop();
            s.push_str(&guarded(&key, &body));
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
            common::existence(kind, &r.id, &obs_key(r), observed)?;
            let aces = observed_aces(kind, r, observed)?;
            let want_access = list(r, "AccessRights");
            let want_mask = if want_access.is_empty() {
                access_mask("ExtendedRight")
            } else {
                access_mask(&want_access.join(","))
            };
            let matching: Vec<&Ace> = aces
                .iter()
                .filter(|a| a.deny == deny(r))
                .filter(|a| inheritance(r).is_none_or(|i| a.inheritance.eq_ignore_ascii_case(i)))
                .collect();
            let ext = list(r, "ExtendedRights");
            // (right as written or "" for access-only, present?)
            let status: Vec<(String, bool)> = if ext.is_empty() {
                let present = matching
                    .iter()
                    .any(|a| a.right.is_empty() && a.mask & want_mask == want_mask);
                vec![(String::new(), present)]
            } else {
                ext.iter()
                    .map(|e| {
                        let c = canonical_right(e);
                        let present = matching.iter().any(|a| {
                            !a.right.is_empty()
                                && canonical_right(&a.right) == c
                                && a.mask & want_mask == want_mask
                        });
                        (e.clone(), present)
                    })
                    .collect()
            };
            // Add-/Remove-ADPermission: -Identity, -User, then the rights.
            let base = |verb: &str| -> Result<Command, DiffError> {
                Ok(Command::new(verb)
                    .param("Identity", target_identity(kind, r, observed)?)
                    .param("User", user(r)))
            };
            let with_access = |c: Command| {
                if want_access.is_empty() {
                    c
                } else {
                    c.param("AccessRights", want_access.clone())
                }
            };
            let with_deny = |c: Command| if deny(r) { c.switch("Deny") } else { c };
            let present: Vec<String> = status
                .iter()
                .filter(|(_, p)| *p)
                .map(|(e, _)| e.clone())
                .collect();
            let name = if ext.is_empty() {
                "AccessRights"
            } else {
                "ExtendedRights"
            };
            let shown = |l: &[String]| {
                if ext.is_empty() {
                    Value::List(if l.is_empty() {
                        Vec::new()
                    } else {
                        want_access.clone()
                    })
                } else {
                    Value::List(l.to_vec())
                }
            };
            match r.ensure {
                Ensure::Present => {
                    let missing: Vec<String> = status
                        .iter()
                        .filter(|(_, p)| !*p)
                        .map(|(e, _)| e.clone())
                        .collect();
                    if missing.is_empty() {
                        continue;
                    }
                    let mut cmd = base("Add-ADPermission")?;
                    if !ext.is_empty() {
                        cmd = cmd.param("ExtendedRights", missing.clone());
                    }
                    cmd = with_access(cmd);
                    if let Some(i) = inheritance(r) {
                        cmd = cmd.param("InheritanceType", i);
                    }
                    let cmd = with_deny(cmd);
                    let action = if present.is_empty() {
                        Action::Create
                    } else {
                        Action::Update
                    };
                    let attrs = vec![AttrChange {
                        name: name.into(),
                        before: Some(shown(&present)),
                        after: Some(shown(
                            &status.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
                        )),
                        sensitive: false,
                    }];
                    out.push(common::change(
                        r,
                        &r.id,
                        action,
                        attrs,
                        status.len() - missing.len(),
                        vec![cmd],
                    ));
                }
                Ensure::Absent => {
                    // Every explicit entry that carries a declared right goes.
                    let mut commands = Vec::new();
                    for a in &matching {
                        let carries = if ext.is_empty() {
                            a.right.is_empty() && a.mask & want_mask != 0
                        } else {
                            !a.right.is_empty()
                                && ext
                                    .iter()
                                    .any(|e| canonical_right(e) == canonical_right(&a.right))
                        };
                        if !carries {
                            continue;
                        }
                        let mut cmd = base("Remove-ADPermission")?;
                        if !ext.is_empty() {
                            cmd = cmd.param("ExtendedRights", a.right.as_str());
                        }
                        let inh = if a.inheritance.is_empty() {
                            "None"
                        } else {
                            a.inheritance.as_str()
                        };
                        cmd = with_access(cmd).param("InheritanceType", inh);
                        commands.push(with_deny(cmd).param("Confirm", false));
                    }
                    if commands.is_empty() {
                        continue;
                    }
                    let attrs = vec![AttrChange {
                        name: name.into(),
                        before: Some(shown(&present)),
                        after: None,
                        sensitive: false,
                    }];
                    out.push(common::change(r, &r.id, Action::Delete, attrs, 0, commands));
                }
            }
        }
        Ok(out)
    }

    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        ctx.observe(self, &export_resources(ctx))
    }

    /// The explicit entries of each named user on the organization: one manifest entry
    /// for the allowed ones and one for the denied ones.
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let mut items = Vec::new();
        let mut notes = Vec::new();
        for r in export_resources(ctx) {
            common::existence(self.key(), &r.id, &obs_key(&r), observed)?;
            let aces = observed_aces(self.key(), &r, observed)?;
            for deny in [false, true] {
                let mine: Vec<&Ace> = aces.iter().filter(|a| a.deny == deny).collect();
                if mine.is_empty() {
                    continue;
                }
                let (item, n) = export_entry(user(&r), deny, &mine);
                items.extend(item);
                notes.extend(n);
            }
            if aces.is_empty() {
                notes.push(format!(
                    "{}: no explicit permission on the organization",
                    user(&r)
                ));
            }
        }
        if items.is_empty() && notes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Section {
            body: Yaml::Seq(items),
            notes,
        }))
    }

    fn schema(&self) -> serde_json::Value {
        use crate::schema::{ensure, string_list};
        serde_json::json!({
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["target", "user"],
                "properties": {
                    "target": {"type": "string", "description": "'organization' or an identity Get-ADPermission accepts"},
                    "user": {"type": "string"},
                    "extended_rights": string_list(),
                    "access_rights": string_list(),
                    "inheritance": {"type": "string", "enum": INHERITANCE},
                    "deny": {"type": "boolean"},
                    "ensure": ensure()
                },
                "patternProperties": {"^(extended_rights|access_rights)\\+$": string_list()}
            }
        })
    }

    fn help(&self) -> &'static str {
        "Access control entries granted with Add-ADPermission: a list of {target, user, extended_rights, access_rights, inheritance, deny, ensure}, target 'organization' or any identity Get-ADPermission accepts; ensure: absent removes the grants (Remove-ADPermission). No restart."
    }

    fn cmdlets(&self) -> &'static [&'static str] {
        &[
            "Get-OrganizationConfig",
            "Get-ADPermission",
            "Add-ADPermission",
            "Remove-ADPermission",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::kinds::common::testutil::{HOSTILE, assert_contained, yaml_quote};
    use crate::version::Version;

    fn parse_all(changes: &[Change]) {
        for c in changes {
            crate::kinds::common::testutil::assert_plain(c);
        }
    }

    fn parse_in(file: &str, yaml: &str) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str(file, yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let ctx = ParseContext::new(Version::Sp3, vec!["EX01".into()], file);
        let r = read_for_host(&AdPermissions, &docs[0].root, &ctx, "EX01", &mut diags);
        diags.sort();
        (r, diags)
    }

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_in("org.yaml", yaml)
    }

    const UCCX: &str = "- target: organization\n  user: CONTOSO\\svc-uccx\n  extended_rights: [View Information Store status]\n";

    fn ctx() -> ObserveContext<'static> {
        ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        }
    }

    /// The organization's distinguished name the observations report.
    const ORG_DN: &str = "CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local";

    fn obs(r: &Resource, aces: &[(&str, &str, &str, &str)]) -> Observations {
        let key = obs_key(r);
        let mut o = Observations::default();
        o.insert(&key, "__exists", RawValue::Str("True".into()));
        if is_organization(target(r)) {
            o.insert(&key, TARGET_DN, RawValue::Str(ORG_DN.into()));
        }
        let col = |n: usize| {
            RawValue::List(
                aces.iter()
                    .map(|a| [a.0, a.1, a.2, a.3][n].to_string())
                    .collect(),
            )
        };
        o.insert(&key, "Deny", col(0));
        o.insert(&key, "InheritanceType", col(1));
        o.insert(&key, "AccessRights", col(2));
        o.insert(&key, "ExtendedRights", col(3));
        o
    }

    #[test]
    fn export_groups_a_user_s_entries_and_reads_back_in_sync() {
        let users = vec!["CONTOSO\\svc-uccx".to_string()];
        let ectx = ExportContext {
            host: "EX01",
            version: Version::Sp3,
            mailboxes: &[],
            users: &users,
        };
        let script = AdPermissions.export_script(&ectx);
        crate::kinds::common::testutil::assert_parses(&script);
        assert!(script.contains("Get-ADPermission -Identity $t -User 'CONTOSO\\svc-uccx'"));
        let r = &export_resources(&ectx)[0];
        let o = obs(
            r,
            &[
                ("False", "All", "ExtendedRight", "ms-Exch-Store-Visible"),
                ("False", "All", "ExtendedRight", "ms-Exch-Store-Admin"),
                (
                    "False",
                    "All",
                    "ReadProperty, ExtendedRight",
                    "ms-Exch-Store-Visible",
                ),
                ("True", "None", "ExtendedRight", "Send As"),
                ("False", "None", "ReadProperty, WriteProperty", ""),
            ],
        );
        let section = AdPermissions.export(&o, &ectx).unwrap().unwrap();
        let yaml = section.body.render(0);
        assert_eq!(
            yaml,
            "- target: organization\n  user: CONTOSO\\svc-uccx\n  extended_rights: [ms-Exch-Store-Admin, ms-Exch-Store-Visible]\n  inheritance: All\n- target: organization\n  user: CONTOSO\\svc-uccx\n  extended_rights: [Send As]\n  inheritance: None\n  deny: true\n"
        );
        assert_eq!(
            section.notes,
            [
                "CONTOSO\\svc-uccx (allow): an entry of access rights alone (ReadProperty, WriteProperty) beside extended rights: not exported (one manifest entry per user and deny)"
            ]
        );
        let (parsed, d) = parse(&yaml);
        assert!(d.is_empty(), "{d:?}");
        let refs: Vec<&Resource> = parsed.iter().collect();
        assert_eq!(AdPermissions.diff(&refs, &o, &ctx()).unwrap(), vec![]);
        // Access rights alone: the widest entry.
        let o = obs(
            r,
            &[
                ("False", "All", "ReadProperty", ""),
                ("False", "All", "ReadProperty, WriteProperty", ""),
            ],
        );
        let yaml = AdPermissions
            .export(&o, &ectx)
            .unwrap()
            .unwrap()
            .body
            .render(0);
        assert!(
            yaml.contains("  access_rights: [ReadProperty, WriteProperty]\n"),
            "{yaml}"
        );
        let (parsed, d) = parse(&yaml);
        assert!(d.is_empty(), "{d:?}");
        let refs: Vec<&Resource> = parsed.iter().collect();
        assert_eq!(AdPermissions.diff(&refs, &o, &ctx()).unwrap(), vec![]);
    }

    #[test]
    fn reads_the_uccx_grant() {
        let (r, d) = parse(UCCX);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            r[0].id,
            "organization: CONTOSO\\svc-uccx allow View Information Store status"
        );
        assert_eq!(r[0].ensure, Ensure::Present);
        assert_eq!(
            r[0].attrs[0].value,
            Value::List(vec!["View Information Store status".into()])
        );
    }

    #[test]
    fn rules_with_codes_locations_and_hints() {
        let (r, d) = parse(
            "- {target: organization, user: u}\n- {target: organization, user: u, extended_rights: [View Information Store Statu]}\n- {target: organization, user: u, access_rights: [GenericRaed], inheritance: Descendants}\n- {target: x, user: u, extended_rights: [Acme-Custom-Right]}\n",
        );
        let got: Vec<_> = d
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.span.unwrap().start.line,
                    d.span.unwrap().start.column,
                    d.hint.clone(),
                )
            })
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        // An invalid value is reported once, not also as 'no rights'.
        assert_eq!(got[0].0, "exchange::adperm-no-rights");
        assert_eq!((got[0].1, got[0].2), (1, 3));
        assert_eq!(got[1].0, "exchange::adperm-unknown-right");
        assert_eq!((got[1].1, got[1].2), (2, 53));
        assert_eq!(
            got[1].3.as_deref(),
            Some("did you mean 'View Information Store status'?")
        );
        assert_eq!((got[2].0, got[2].1), ("manifest::invalid-value", 3));
        assert_eq!(got[2].3.as_deref(), Some("did you mean 'GenericRead'?"));
        assert_eq!((got[3].0, got[3].1), ("manifest::invalid-value", 3));
        assert_eq!(got[3].3.as_deref(), Some("did you mean 'Descendents'?"));
        assert_eq!(got[4].0, "exchange::adperm-unknown-right");
        assert!(got[4].3.as_deref().unwrap().contains("Get-ADPermission"));
        assert_eq!(r.len(), 2, "unknown rights are warnings");
    }

    #[test]
    fn both_spellings_of_a_right_are_one_right() {
        assert_eq!(
            canonical_right("view information store STATUS"),
            "ms-exch-store-visible"
        );
        assert_eq!(
            canonical_right("MS-EXCH-STORE-VISIBLE"),
            "ms-exch-store-visible"
        );
        let (r, d) = parse(&format!(
            "{UCCX}- target: Organization\n  user: contoso\\SVC-UCCX\n  extended_rights: [ms-Exch-Store-Visible]\n"
        ));
        assert_eq!(r.len(), 1);
        assert_eq!(d.as_slice()[0].code, "exchange::duplicate-resource");
        assert_eq!(d.as_slice()[0].span.unwrap().start.line, 4);
        // Across documents, through cross_check.
        let (a, _) = parse(UCCX);
        let (b, _) = parse_in(
            "other.yaml",
            "\n- target: organization\n  user: CONTOSO\\svc-uccx\n  extended_rights: [ms-exch-store-visible, Send-As]\n",
        );
        let all: Vec<Resource> = a.iter().chain(&b).chain(&a).cloned().collect();
        let mut dd = Diagnostics::new();
        AdPermissions.cross_check(&all, &mut dd);
        assert_eq!(dd.len(), 1, "{dd:?}");
        // A deny of the same right is another permission.
        let (c, _) = parse(
            "- {target: organization, user: CONTOSO\\svc-uccx, extended_rights: [Send-As], deny: true}\n",
        );
        let mut dd = Diagnostics::new();
        AdPermissions.cross_check(&[b[0].clone(), c[0].clone()], &mut dd);
        assert!(dd.is_empty());
    }

    #[test]
    fn observe_reads_explicit_entries_of_the_user_once_per_target() {
        let (r, _) = parse(&format!(
            "{UCCX}- {{target: organization, user: CONTOSO\\svc-uccx, extended_rights: [Send-As], deny: true}}\n"
        ));
        let refs: Vec<&Resource> = r.iter().collect();
        let s = AdPermissions.observe(&refs, &ctx());
        crate::kinds::common::testutil::assert_parses(&s);
        assert_eq!(s.matches("Get-ADPermission").count(), 1);
        assert!(s.contains("$t = (Get-OrganizationConfig).DistinguishedName"));
        assert!(s.contains(
            "__exctl_emit 'ad_permissions:organization|CONTOSO\\svc-uccx' 'TargetDistinguishedName' $t"
        ));
        assert!(
            s.contains("Get-ADPermission -Identity $t -User 'CONTOSO\\svc-uccx' -ErrorAction Stop")
        );
        assert!(s.contains("if ($a.IsInherited -eq $false) { $a }"));
        assert!(s.contains(
            "$e = @(foreach ($a in $x) { if ($null -eq $a.ExtendedRights) { '' } else { foreach ($g in @($a.ExtendedRights)) { [string]$g } } })"
        ));
        assert!(s.contains(
            "__exctl_emit 'ad_permissions:organization|CONTOSO\\svc-uccx' 'ExtendedRights' $e"
        ));
    }

    #[test]
    fn a_missing_grant_is_added_and_a_present_one_in_either_spelling_is_not() {
        let (r, _) = parse(UCCX);
        let refs: Vec<&Resource> = r.iter().collect();
        let c = AdPermissions.diff(&refs, &obs(&r[0], &[]), &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(
            c[0].script(),
            "Add-ADPermission -Identity 'CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local' -User 'CONTOSO\\svc-uccx' -ExtendedRights @(,'View Information Store status')"
        );
        // Without the distinguished name there is no command to make.
        let mut o = obs(&r[0], &[]);
        o.insert(&obs_key(&r[0]), TARGET_DN, RawValue::Null);
        let e = AdPermissions.diff(&refs, &o, &ctx()).unwrap_err();
        assert!(e.message.contains("distinguished name"), "{e}");
        for right in ["ms-Exch-Store-Visible", "VIEW INFORMATION STORE STATUS"] {
            let o = obs(&r[0], &[("False", "All", "ExtendedRight", right)]);
            assert!(
                AdPermissions.diff(&refs, &o, &ctx()).unwrap().is_empty(),
                "{right}"
            );
        }
        // A deny entry, or another user's right, does not count; inherited entries are
        // filtered by the script already.
        let o = obs(
            &r[0],
            &[
                ("True", "All", "ExtendedRight", "ms-Exch-Store-Visible"),
                ("False", "None", "ExtendedRight", "Send-As"),
            ],
        );
        assert_eq!(AdPermissions.diff(&refs, &o, &ctx()).unwrap().len(), 1);
    }

    #[test]
    fn declared_inheritance_and_access_rights_are_compared() {
        let (r, _) = parse(
            "- {target: 'CN=DB1,CN=Databases', user: u, extended_rights: [Receive-As, ms-Exch-Store-Admin], access_rights: [ExtendedRight], inheritance: All}\n",
        );
        let refs: Vec<&Resource> = r.iter().collect();
        let o = obs(
            &r[0],
            &[
                ("False", "None", "ExtendedRight", "Receive-As"),
                ("False", "All", "GenericAll", "ms-Exch-Store-Admin"),
            ],
        );
        let c = AdPermissions.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Update);
        assert_eq!(c[0].unchanged, 1);
        assert_eq!(
            c[0].script(),
            "Add-ADPermission -Identity 'CN=DB1,CN=Databases' -User 'u' -ExtendedRights @(,'Receive-As') -AccessRights @(,'ExtendedRight') -InheritanceType 'All'"
        );
        assert_eq!(
            c[0].attrs[0].before,
            Some(Value::List(vec!["ms-Exch-Store-Admin".into()]))
        );
    }

    #[test]
    fn absent_removes_each_explicit_entry_with_its_inheritance() {
        let (r, _) = parse(
            "- {target: organization, user: u, extended_rights: [View Information Store status], ensure: absent}\n",
        );
        let refs: Vec<&Resource> = r.iter().collect();
        assert!(
            AdPermissions
                .diff(&refs, &obs(&r[0], &[]), &ctx())
                .unwrap()
                .is_empty()
        );
        let o = obs(
            &r[0],
            &[(
                "False",
                "Descendents",
                "ExtendedRight",
                "ms-Exch-Store-Visible",
            )],
        );
        let c = AdPermissions.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Delete);
        assert_eq!(
            c[0].script(),
            "Remove-ADPermission -Identity 'CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local' -User 'u' -ExtendedRights 'ms-Exch-Store-Visible' -InheritanceType 'Descendents' -Confirm:$false"
        );
    }

    #[test]
    fn errors_and_inconsistent_reports_are_diff_errors() {
        let (r, _) = parse(UCCX);
        let refs: Vec<&Resource> = r.iter().collect();
        let mut o = Observations::default();
        o.insert(
            &obs_key(&r[0]),
            "__error",
            RawValue::Str("The user CONTOSO\\svc-uccx wasn't found.".into()),
        );
        assert!(
            AdPermissions
                .diff(&refs, &o, &ctx())
                .unwrap_err()
                .message
                .contains("wasn't found")
        );
        let mut o = obs(&r[0], &[("False", "All", "ExtendedRight", "x")]);
        o.insert(&obs_key(&r[0]), "Deny", RawValue::List(vec![]));
        assert!(
            AdPermissions
                .diff(&refs, &o, &ctx())
                .unwrap_err()
                .message
                .contains("0 Deny")
        );
    }

    #[test]
    fn hostile_targets_users_and_rights_stay_inside_literals() {
        let build = |v: &str| {
            let yaml = format!(
                "- target: {}\n  user: {}\n  extended_rights: [{}]\n  ensure: present\n",
                yaml_quote(v),
                yaml_quote(v),
                yaml_quote(v)
            );
            let (r, _) = parse(&yaml);
            let refs: Vec<&Resource> = r.iter().collect();
            let observe = AdPermissions.observe(&refs, &ctx());
            let apply = AdPermissions.diff(&refs, &obs(&r[0], &[]), &ctx()).unwrap()[0]
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
