//! The resource kind: the unit of Exchange knowledge.
//!
//! Each kind (IMAP and POP settings, receive connectors, registry values, AD permissions,
//! throttling policies, throttling associations) is one module implementing [`Kind`]:
//! it reads its manifest section once per document ([`Kind::parse`], into [`Declared`]
//! resources with the kind's own typed [`Payload`]) and binds it to each host
//! ([`Kind::expand`]), writes the PowerShell that observes its resources,
//! compares what the server reported with what the manifest wants, writes the commands
//! that converge each difference, and says where in the order they run and what they
//! require restarting; it also carries its JSON Schema, help text and the Exchange
//! cmdlets it calls, from which the engine generates the document schema and the relay of
//! `access: psrp`. The engine knows none of that; adding a kind means adding a module
//! and registering it in [`crate::kinds::ALL`] (a kind whose changes need a service
//! restart of their own declares that service, a [`crate::services::ServiceSpec`], in
//! its module and returns it from [`Kind::services`]).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use exctl_manifest::{Diagnostics, Node, Span};
use exctl_pwsh::Command;

use crate::export::{ExportContext, Section};
use crate::record::Observations;
use crate::value::Value;
use crate::version::Version;

/// Where a kind's resources live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One per server (IMAP settings, connectors, registry): applied on every target host.
    Server,
    /// Organization-wide (throttling, AD permissions on the organization): observed and
    /// applied once, through the first target host.
    Organization,
}

pub use crate::services::Service;

/// Where a kind's changes run in a plan, and why there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// Lower runs first.
    pub phase: u32,
    /// Why it runs at this point, shown in plans.
    pub reason: &'static str,
}

/// What the manifest says about a resource's existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensure {
    /// It must exist with the given attributes (created if missing, where the kind can).
    #[default]
    Present,
    /// It must not exist (deleted if present). Nothing is ever deleted otherwise.
    Absent,
}

/// One desired attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAttr {
    /// Exchange's parameter name.
    pub name: String,
    /// The desired value.
    pub value: Value,
    /// Where the manifest says it.
    pub span: Span,
}

/// A kind's own data about one resource, beyond the compared attributes (a registry
/// value's path, name and type; an AD permission's target and user; a connector's server
/// and name). Each kind defines its struct and reads it back with [`Payload::get`]; no
/// other code reads it except through accessors the kind exports.
pub trait PayloadData: Any + fmt::Debug + Send + Sync {
    /// The value as [`Any`], for [`Payload::get`].
    fn as_any(&self) -> &dyn Any;

    /// Equality with another payload: false when the types differ.
    fn eq_dyn(&self, other: &dyn PayloadData) -> bool;
}

impl<T: Any + fmt::Debug + PartialEq + Send + Sync> PayloadData for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn eq_dyn(&self, other: &dyn PayloadData) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
}

/// A resource's typed payload (see [`PayloadData`]), or none. Shared, so that one
/// declaration expanded for many hosts clones a pointer, not the data.
#[derive(Clone, Default)]
pub struct Payload(Option<Arc<dyn PayloadData>>);

impl Payload {
    /// No payload (kinds whose attributes say everything: IMAP settings, policies).
    pub fn none() -> Payload {
        Payload(None)
    }

    /// A payload holding `value`.
    pub fn new<T: PayloadData>(value: T) -> Payload {
        Payload(Some(Arc::new(value)))
    }

    /// The payload as a `T`; `None` when there is none or it is of another type.
    pub fn get<T: Any>(&self) -> Option<&T> {
        // Through `&dyn PayloadData`: `as_any` of the `Arc` itself would be the `Arc`.
        let data: &dyn PayloadData = self.0.as_deref()?;
        data.as_any().downcast_ref::<T>()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        match (self.0.as_deref(), other.0.as_deref()) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_dyn(b),
            _ => false,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref() {
            Some(d) => d.fmt(f),
            None => f.write_str("None"),
        }
    }
}

/// A resource the manifest declares, for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The kind's manifest key (`imap_settings`).
    pub kind: &'static str,
    /// The identity within the kind: `EX01`, `EX01\Default EX01`, `EX01\*`, a policy name,
    /// `HKLM:\...\Key\ValueName`.
    pub id: String,
    /// Present or absent.
    pub ensure: Ensure,
    /// Desired attributes, in manifest order.
    pub attrs: Vec<DesiredAttr>,
    /// The kind's own data that is not compared (registry type and path, AD permission
    /// target and user, ...).
    pub payload: Payload,
    /// The restart a change of this resource requires, if any.
    pub restart: Option<Service>,
    /// Attribute names whose values are never shown (`(sensitive)` in plans).
    pub sensitive: Vec<String>,
    /// Where the manifest declares it.
    pub span: Span,
}

/// A resource as a section declares it, read once per document and not yet bound to a
/// host: [`Kind::expand`] makes the resources of each host from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The resource as declared. Its `id` and payload are the kind's, as written: where
    /// the identity includes the host (IMAP settings, receive connectors) the kind
    /// completes them in [`Kind::expand`].
    pub resource: Resource,
}

/// What a change does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The resource does not exist and is created.
    Create,
    /// Some attributes differ and are set.
    Update,
    /// The manifest says `ensure: absent` and the resource exists.
    Delete,
}

/// One attribute of a change: before (as observed) and after (as desired).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttrChange {
    /// Exchange's parameter name.
    pub name: String,
    /// The observed value; `None` when the resource does not exist yet.
    pub before: Option<Value>,
    /// The desired value; `None` when the resource is deleted.
    pub after: Option<Value>,
    /// Whether values must be hidden in every output.
    pub sensitive: bool,
}

/// A difference between the manifest and the server, with the commands that remove it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The kind's manifest key.
    pub kind: &'static str,
    /// The concrete identity (a wildcard resource yields one change per member).
    pub id: String,
    /// Create, update or delete.
    pub action: Action,
    /// The attributes that change.
    pub attrs: Vec<AttrChange>,
    /// How many desired attributes already had their value.
    pub unchanged: usize,
    /// The restart this change requires.
    pub restart: Option<Service>,
    /// The commands that converge it, in order: plain commands with literal parameter
    /// values (no variables, no script blocks), so that they run on a NoLanguage endpoint
    /// too. Each throws on failure where it runs (apply's scripts stop on errors).
    pub commands: Vec<Command>,
    /// Where the manifest declares the resource.
    pub span: Span,
}

impl Change {
    /// The commands as PowerShell text, one line each (for messages and tests; apply
    /// renders them through its script builder).
    pub fn script(&self) -> String {
        self.commands
            .iter()
            .map(Command::to_script)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the server reported for one host, handed to [`Kind::diff`].
#[derive(Debug, Clone, Copy)]
pub struct ObserveContext<'a> {
    /// The host's computer name.
    pub host: &'a str,
    /// The Exchange version the host runs.
    pub version: Version,
}

// Here rather than in `export`, which knows nothing of kinds (`kind` uses `export`'s
// YAML tree, not the other way round).
impl ExportContext<'_> {
    /// The observe context of the same host, for kinds that export what their
    /// observation of some resources reports.
    pub fn observe_context(&self) -> ObserveContext<'_> {
        ObserveContext {
            host: self.host,
            version: self.version,
        }
    }

    /// The script that observes `resources` as `kind` observes declared ones: the export
    /// script of a kind that exports what it reads of resources it makes up.
    pub fn observe(&self, kind: &dyn Kind, resources: &[Resource]) -> String {
        let refs: Vec<&Resource> = resources.iter().collect();
        kind.observe(&refs, &self.observe_context())
    }
}

/// A difference that could not be computed (the server could not read a resource, or
/// reported something that is not a value of its type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {id}: {message}")]
pub struct DiffError {
    /// The kind's manifest key.
    pub kind: &'static str,
    /// The resource.
    pub id: String,
    /// What went wrong, in the server's words where it has them.
    pub message: String,
}

/// Context for reading a manifest section, once per document (not per host).
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// The Exchange version the targets run (declared in the inventory).
    pub version: Version,
    /// The computer names the document targets.
    pub hosts: Vec<String>,
    /// The path of the section in messages (`EX01.yaml: imap_settings`).
    pub path: String,
    /// Parts of the section that apply to fewer hosts than [`ParseContext::hosts`]: a
    /// host override merged into the tree of its host applies to that host alone. Each
    /// is the span of such a part and the hosts its values apply to.
    pub narrowed: Vec<(Span, Vec<String>)>,
}

impl ParseContext {
    /// The context of a document that targets `hosts` (nothing narrowed).
    pub fn new(version: Version, hosts: Vec<String>, path: impl Into<String>) -> ParseContext {
        ParseContext {
            version,
            hosts,
            path: path.into(),
            narrowed: Vec::new(),
        }
    }

    /// The hosts a value written at `span` applies to: those of the narrowed part that
    /// holds it, or every target.
    pub fn hosts_at(&self, span: Span) -> &[String] {
        self.narrowed
            .iter()
            .find(|(part, _)| {
                part.file == span.file
                    && part.start.offset <= span.start.offset
                    && span.start.offset <= part.end.offset
            })
            .map_or(self.hosts.as_slice(), |(_, hosts)| hosts.as_slice())
    }
}

/// Reads a section and binds it to one host: [`Kind::parse`] then [`Kind::expand`]
/// (for tests and one-host callers; the desired state parses once and expands per host).
pub fn read_for_host(
    kind: &dyn Kind,
    node: &Node,
    ctx: &ParseContext,
    host: &str,
    diags: &mut Diagnostics,
) -> Vec<Resource> {
    let declared = kind.parse(node, ctx, diags);
    kind.expand(&declared, host, diags)
}

/// A resource kind. Implementations are stateless and registered in
/// [`crate::kinds::ALL`].
pub trait Kind: Send + Sync {
    /// The manifest key of the section (`imap_settings`).
    fn key(&self) -> &'static str;

    /// A title for plans (`IMAP4 settings`).
    fn title(&self) -> &'static str;

    /// Server or organization scope.
    fn scope(&self) -> Scope;

    /// Where its changes run, and why.
    fn order(&self) -> Order;

    /// The services its changes may require restarting (the IMAP kind MSExchangeIMAP4,
    /// registry values the Information Store): [`crate::kinds::services`] collects them,
    /// so plans, apply and the `restart:` field of registry values know them. The
    /// default restarts nothing.
    fn services(&self) -> &'static [Service] {
        &[]
    }

    /// Reads and validates the section once for its document (whatever the number of
    /// hosts it targets): every problem that does not depend on the host is reported to
    /// `diags` with its location.
    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared>;

    /// Binds the section's declarations (one [`Kind::parse`]) to `host`: the resources
    /// of that host, and the problems only that host has (a connector reached both as
    /// `Name` and `HOST\Name`). Organization-scoped kinds are expanded once, for the host
    /// they go through. The default takes every declaration as it is (the same on every
    /// host: registry values, organization-wide kinds).
    fn expand(
        &self,
        declared: &[Declared],
        _host: &str,
        _diags: &mut Diagnostics,
    ) -> Vec<Resource> {
        declared.iter().map(|d| d.resource.clone()).collect()
    }

    /// Checks that need every resource of the plan (e.g. an association names a policy
    /// that is declared or already exists, a resource is declared in two documents).
    /// `all` is every resource of the plan, of every kind, from every document and (for
    /// server-scoped kinds) every host's expansion; a kind filters by [`Resource::kind`]. The
    /// same declaration read for several hosts has the same span and is no duplicate.
    /// The default checks nothing.
    fn cross_check(&self, _all: &[Resource], _diags: &mut Diagnostics) {}

    /// For kinds whose section is a list of resources: the identity of one list entry,
    /// so that a site or host override can change a baseline's entry instead of adding a
    /// second one (a site's registry value with the baseline's path and name overrides
    /// the baseline's). `None` when the entry has no identity yet (it is then added, and
    /// parsing reports what is missing). Map-shaped sections merge by key and need
    /// nothing here; the default says that list entries have no identity, so a list
    /// replaces the list it overrides.
    fn merge_identity(&self, _entry: &Node) -> Option<String> {
        None
    }

    /// PowerShell statements that report the current state of `resources` through
    /// `__exctl_emit` (see [`crate::record`]). Targeted: only what is named is read.
    /// Record keys are namespaced `<kind>:<identity>` where the kind builds them, so the
    /// fragments of every kind can run in one script per host.
    fn observe(&self, resources: &[&Resource], ctx: &ObserveContext<'_>) -> String;

    /// Compares and returns the changes, each with its converging commands. `observed` is
    /// what the host's observe script reported for every kind (one script per host), so a
    /// kind may read another kind's records (the association kind learns from the policy
    /// kind's records whether a policy it names is declared).
    fn diff(
        &self,
        resources: &[&Resource],
        observed: &Observations,
        ctx: &ObserveContext<'_>,
    ) -> Result<Vec<Change>, DiffError>;

    /// For `exctl export`: PowerShell statements that report, through `__exctl_emit`,
    /// everything this kind exports from the host (read-only, like [`Kind::observe`];
    /// record keys namespaced by the kind, as the fragments of every kind run in one
    /// script). Empty when the context names nothing to export (no users for AD
    /// permissions).
    fn export_script(&self, ctx: &ExportContext<'_>) -> String;

    /// For `exctl export`: the kind's manifest section made from what
    /// [`Kind::export_script`] reported, such that planning it against the same host
    /// shows no change. `None` when there is nothing to write. A read the server refused
    /// is an error (the export would otherwise silently lack it).
    fn export(
        &self,
        observed: &Observations,
        ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError>;

    /// The JSON Schema of the section (what a manifest may write under [`Kind::key`]),
    /// for editors; built from the kind's own parameter tables with the pieces of
    /// [`crate::schema`]. The engine assembles the document schema from every kind's.
    fn schema(&self) -> serde_json::Value;

    /// A short paragraph for people: what the section manages, its shape, and what a
    /// change requires restarting. Shown by the CLI wherever it describes kinds, and as
    /// the section's description in the JSON Schema.
    fn help(&self) -> &'static str;

    /// The Exchange cmdlets its observe, apply and export scripts call (not PowerShell's
    /// own, such as `Get-ItemProperty`): `access: psrp` relays each to Exchange's
    /// endpoint, so one missing here is "not recognized" on such a host. A test holds the
    /// list equal to what the scripts call.
    fn cmdlets(&self) -> &'static [&'static str];

    /// The settings cmdlets whose parameters the kind types (Set-ImapSettings,
    /// Set-ReceiveConnector, ...): [`crate::kinds::cmdlet_parameters`] answers from them
    /// for the schema, the simulator agreement test and the relay's parameter names. The
    /// default has none.
    fn settings_cmdlets(&self) -> Vec<SettingsCmdlet> {
        Vec::new()
    }
}

/// A settings cmdlet whose parameters a kind types.
#[derive(Debug, Clone, Copy)]
pub struct SettingsCmdlet {
    /// The cmdlet (`Set-ImapSettings`).
    pub cmdlet: &'static str,
    /// Its parameters a manifest may declare, with their types, ranges and releases.
    pub params: &'static [crate::value::ParamSpec],
    /// Parameters of `params` this cmdlet lacks (New-ThrottlingPolicy has none of those
    /// only the default policy has).
    pub skip: &'static [&'static str],
    /// Parameters the cmdlet has that exctl deliberately leaves alone, from which release,
    /// and why.
    pub not_managed: &'static [crate::kinds::NotManaged],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct A(u32);

    #[derive(Debug, PartialEq)]
    struct B(u32);

    #[test]
    fn a_payload_reads_back_as_its_own_type_only_and_compares_by_value() {
        let a = Payload::new(A(1));
        assert_eq!(a.get::<A>(), Some(&A(1)));
        assert_eq!(a.get::<B>(), None);
        assert_eq!(Payload::none().get::<A>(), None);
        assert_eq!(a, a.clone());
        assert_eq!(a, Payload::new(A(1)));
        assert_ne!(a, Payload::new(A(2)));
        assert_ne!(a, Payload::new(B(1)));
        assert_ne!(a, Payload::none());
        assert_eq!(Payload::none(), Payload::default());
        assert_eq!(format!("{a:?}"), "A(1)");
    }

    #[test]
    fn a_narrowed_part_applies_to_its_hosts_only() {
        let file = exctl_manifest::FileId(1);
        let at = |start: usize, end: usize| {
            let mut s = Span::point(file, Default::default());
            s.start.offset = start;
            s.end.offset = end;
            s
        };
        let mut ctx = ParseContext::new(Version::Sp3, vec!["EX01".into(), "EX02".into()], "x");
        ctx.narrowed.push((at(100, 200), vec!["EX02".into()]));
        assert_eq!(ctx.hosts_at(at(150, 160)), ["EX02"]);
        assert_eq!(ctx.hosts_at(at(10, 20)), ["EX01", "EX02"]);
        let mut elsewhere = at(150, 160);
        elsewhere.file = exctl_manifest::FileId(2);
        assert_eq!(ctx.hosts_at(elsewhere), ["EX01", "EX02"]);
    }
}
