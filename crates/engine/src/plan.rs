//! The plan: what would change on each host, in the order it would run, with the
//! restarts those changes require. One data structure; the renderers in [`crate::render`]
//! only present it.
//!
//! Order within a host follows the kinds' phases (permissions, throttling policies,
//! associations, connectors, IMAP settings, POP settings, registry values). A restart is
//! a step of its own, placed right after the last change that requires it: the IMAP4
//! restart after the IMAP settings, the POP3 restart after the POP settings, the
//! Information Store restart last of all, once, whatever the number of store values that
//! changed. A protocol service (IMAP4, POP3) that is stopped and starts by hand gets no
//! restart: its changes say that they take effect when it starts (`no_restart`).
//!
//! A host that is not healthy (the Information Store or the IMAP4 service down, their
//! dependants stopped, databases dismounted: see [`crate::restart::Health`]) gets the
//! same step with `recover` set, placed where its restart would go: a host is never in
//! sync while its store is down.
//!
//! A restart can also be owed from before (`exctl apply --restart never`, or a change
//! made after the service last started): the host reports it (see [`crate::restart`])
//! and the plan shows it as a restart step with `pending` set, even when no change of
//! this plan requires it.

use exctl_exchange::kind::{Action, AttrChange, Change, Resource, Service};
use exctl_exchange::{Version, kinds};
use exctl_manifest::SourceMap;

use crate::restart::Recovery;

/// The version of the JSON plan format. Bumped only on incompatible changes.
///
/// 2: a value without limit is the string `"unlimited"` for every kind (throttling
/// values blank on the server, `$null` in a command, were `null` in version 1, which
/// could not be told from "no value", as `before` of a resource to create is).
pub const FORMAT_VERSION: u32 = 2;

/// A whole plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The exctl version that made it.
    pub exctl_version: &'static str,
    /// Per host, in inventory order.
    pub hosts: Vec<HostPlan>,
    /// Totals.
    pub summary: Summary,
}

/// Totals over all hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Resources to create.
    pub create: usize,
    /// Resources to update.
    pub update: usize,
    /// Resources to delete.
    pub delete: usize,
    /// Service restarts.
    pub restart: usize,
    /// Hosts that could not be planned.
    pub errors: usize,
}

/// What would happen on one host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostPlan {
    /// The host's name.
    pub host: String,
    /// Its site, if the inventory says.
    pub site: Option<String>,
    /// The Exchange version the manifest declares.
    pub expected_version: Version,
    /// The version the server reported, when it could be read.
    pub observed_version: Option<String>,
    /// The steps, in the order they would run.
    pub steps: Vec<Step>,
    /// Resources already in their desired state.
    pub in_sync: usize,
    /// Why (part of) this host could not be planned.
    pub errors: Vec<String>,
    /// Things worth knowing that are not errors (a fact about restarts that could not be
    /// read, for instance).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What may go wrong that the plan does not fix: a limit below the declared capacity
    /// (see [`crate::capacity`]), declared too low or read too low from the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One step of a host's plan.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Step {
    /// A resource changes.
    Change(ChangeStep),
    /// A service restarts.
    Restart(RestartStep),
}

/// A resource that changes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeStep {
    /// The kind's manifest key.
    pub kind: &'static str,
    /// The kind's title.
    pub title: &'static str,
    /// The resource's identity.
    pub id: String,
    /// Terraform-style list of actions (one element: create, update or delete).
    pub actions: Vec<Action>,
    /// Changed attributes with before and after (sensitive ones masked in every output).
    pub attributes: Vec<AttrChange>,
    /// How many declared attributes already have their value.
    pub unchanged_attributes: usize,
    /// Why this step runs where it does.
    pub reason: &'static str,
    /// The restart this change requires.
    pub requires_restart: Option<Service>,
    /// Why the plan has no restart for it although it requires one: the service (IMAP4,
    /// POP3) is stopped and does not start automatically, so it loads the change when it
    /// starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_restart: Option<String>,
    /// `file:line` of the declaration: of the first changed attribute's value (the layer
    /// it comes from: a baseline, a site or a host override), or of the resource.
    pub declared_at: String,
    /// `file:line` of each changed attribute's value, when they do not all come from
    /// `declared_at` (a baseline sets one, a site override another).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes_declared_at: Vec<AttrOrigin>,
    /// The commands that converge it.
    #[serde(skip)]
    pub commands: Vec<exctl_pwsh::Command>,
}

/// Where one attribute's value is declared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttrOrigin {
    /// Exchange's parameter name.
    pub name: String,
    /// `file:line`.
    pub declared_at: String,
}

impl ChangeStep {
    /// Where the value of attribute `name` is declared.
    pub fn origin_of(&self, name: &str) -> &str {
        self.attributes_declared_at
            .iter()
            .find(|o| o.name == name)
            .map_or(self.declared_at.as_str(), |o| o.declared_at.as_str())
    }
}

/// A service restart.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestartStep {
    /// The service.
    pub service: Service,
    /// The identities of the changes that require it.
    pub required_by: Vec<String>,
    /// What it does to users.
    pub consequence: &'static str,
    /// Set when the restart is owed from before this plan: why, in the server's terms
    /// (`settings changed at ... after the service started at ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// What to know before it runs (active DAG copies that dismount instead of moving).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Set when the host is not healthy: the service, its dependants or its databases are
    /// down. The step brings them back (a start when the service is down, which also
    /// loads changed settings; never a stop of a service that is down or starting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recover: Option<Recovery>,
}

impl RestartStep {
    /// What the step does, for people: `start` (the service is down), `restart`, or
    /// `recover` (the service runs; its dependants or databases do not, and no restart
    /// is owed).
    pub fn verb(&self) -> &'static str {
        match &self.recover {
            Some(r) if r.service_down => "start",
            Some(_) if !self.restart_owed() => "recover",
            _ => "restart",
        }
    }

    /// Whether a restart is owed: changes of this plan require it, or it is pending
    /// from before (a host that is only unhealthy owes none).
    pub fn restart_owed(&self) -> bool {
        !self.required_by.is_empty() || self.pending.is_some()
    }
}

/// What a host reported about its restarts beyond the changes of the plan: restarts
/// owed from before, and warnings for the restarts that would run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartContext {
    /// Restarts owed from before, with the reason.
    pub pending: Vec<(Service, String)>,
    /// Warnings by service, shown with its restart step when there is one.
    pub warnings: Vec<(Service, String)>,
    /// Services the host must bring back (see [`crate::restart::Health`]).
    pub recover: Vec<(Service, Recovery)>,
    /// Protocol services that are stopped and start by hand, with why no restart of
    /// theirs is planned (see [`crate::restart::context`]).
    pub idle: Vec<(Service, String)>,
}

impl Plan {
    /// Assembles a plan from per-host results and computes the summary.
    pub fn new(hosts: Vec<HostPlan>) -> Plan {
        let mut summary = Summary::default();
        for h in &hosts {
            if !h.errors.is_empty() {
                summary.errors += 1;
            }
            for s in &h.steps {
                match s {
                    Step::Change(c) => match c.actions.first() {
                        Some(Action::Create) => summary.create += 1,
                        Some(Action::Update) => summary.update += 1,
                        Some(Action::Delete) => summary.delete += 1,
                        None => {}
                    },
                    Step::Restart(_) => summary.restart += 1,
                }
            }
        }
        Plan {
            format_version: FORMAT_VERSION,
            exctl_version: env!("CARGO_PKG_VERSION"),
            hosts,
            summary,
        }
    }

    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(|h| !h.steps.is_empty())
    }

    /// Whether any host failed to plan.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }
}

/// Orders the changes of one host and inserts the restarts they require.
pub fn order_steps(changes: Vec<Change>, sources: &SourceMap) -> Vec<Step> {
    order_steps_in(changes, &RestartContext::default(), sources)
}

/// Orders the changes of one host and inserts the restarts they require and those the
/// host owes from before (`ctx`). A restart owed without a change of this plan goes
/// where a change requiring it would: the IMAP4 (POP3) restart after the last change that
/// runs no later than the IMAP (POP) settings, the Information Store restart last. A
/// protocol service that is stopped and starts by hand (`ctx.idle`) gets no restart; the
/// changes that require one say why.
pub fn order_steps_in(
    changes: Vec<Change>,
    ctx: &RestartContext,
    sources: &SourceMap,
) -> Vec<Step> {
    order_steps_for(changes, &[], ctx, sources)
}

/// [`order_steps_in`], with the declared `resources` the changes come from, so that each
/// change names where each of its values is declared.
pub fn order_steps_for(
    changes: Vec<Change>,
    resources: &[&Resource],
    ctx: &RestartContext,
    sources: &SourceMap,
) -> Vec<Step> {
    let phase_of = |key: &str| {
        kinds::by_key(key)
            .map(|k| k.order().phase)
            .unwrap_or(u32::MAX)
    };
    let mut changes = changes;
    // Stable: within a kind, manifest order is kept.
    changes.sort_by_key(|c| phase_of(c.kind));
    let pending_of = |svc: Service| {
        ctx.pending
            .iter()
            .find(|(s, _)| *s == svc)
            .map(|(_, why)| why.clone())
    };
    let recover_of = |svc: Service| {
        ctx.recover
            .iter()
            .find(|(s, _)| *s == svc)
            .map(|(_, r)| r.clone())
    };
    // A stopped protocol service that starts by hand owes no restart (nothing pending,
    // nothing to recover): its changes say why instead.
    let idle_of = |svc: Service| {
        ctx.idle
            .iter()
            .find(|(s, _)| *s == svc)
            .map(|(_, why)| why.clone())
            .filter(|_| pending_of(svc).is_none() && recover_of(svc).is_none())
    };
    // Where each restart goes: after the change at this index (None: before them all).
    let mut anchors: Vec<(Service, Option<usize>)> = Vec::new();
    // The services involved, in restart order (a sorted set: `Service` orders by its
    // spec): whichever kinds declare them, none is named here.
    let services: std::collections::BTreeSet<Service> = changes
        .iter()
        .filter_map(|c| c.restart)
        .chain(ctx.pending.iter().map(|(s, _)| *s))
        .chain(ctx.recover.iter().map(|(s, _)| *s))
        .collect();
    for svc in services {
        let last = changes.iter().rposition(|c| c.restart == Some(svc));
        if idle_of(svc).is_some() {
            continue;
        }
        if last.is_some() {
            anchors.push((svc, last));
        } else if pending_of(svc).is_some() || recover_of(svc).is_some() {
            // After the last change that runs no later than the settings the service
            // loads; the Information Store last of all.
            let limit = svc.protocol().map_or(u32::MAX, |(kind, _)| phase_of(kind));
            anchors.push((svc, changes.iter().rposition(|c| phase_of(c.kind) <= limit)));
        }
    }
    let restart_step = |svc: Service| RestartStep {
        service: svc,
        required_by: changes
            .iter()
            .filter(|c| c.restart == Some(svc))
            .map(|c| format!("{} {}", c.kind, c.id))
            .collect(),
        consequence: svc.consequence(),
        pending: pending_of(svc),
        warnings: ctx
            .warnings
            .iter()
            .filter(|(s, _)| *s == svc)
            .map(|(_, w)| w.clone())
            .collect(),
        recover: recover_of(svc),
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut is_restart: Option<RestartStep> = None;
    let mut place = |at: Option<usize>, steps: &mut Vec<Step>| {
        for (svc, anchor) in &anchors {
            if *anchor == at {
                // The Information Store goes last of all: it disconnects every user.
                if svc.disconnects_everyone() {
                    is_restart = Some(restart_step(*svc));
                } else {
                    steps.push(Step::Restart(restart_step(*svc)));
                }
            }
        }
    };
    place(None, &mut steps);
    let at = |span: exctl_manifest::Span| {
        format!("{}:{}", sources.path(span.file).display(), span.start.line)
    };
    // The resource each change comes from, by declaration or by identity: indexed, so
    // thousands of changes stay linear. The first declaration wins, as in a scan.
    let mut by_span: std::collections::HashMap<(&str, exctl_manifest::Span), &Resource> =
        std::collections::HashMap::new();
    let mut by_id: std::collections::HashMap<(&str, String), &Resource> =
        std::collections::HashMap::new();
    for r in resources {
        by_span.entry((r.kind, r.span)).or_insert(r);
        by_id
            .entry((r.kind, r.id.to_ascii_lowercase()))
            .or_insert(r);
    }
    for (i, c) in changes.iter().enumerate() {
        let kind = kinds::by_key(c.kind);
        let resource = by_span
            .get(&(c.kind, c.span))
            .or_else(|| by_id.get(&(c.kind, c.id.to_ascii_lowercase())))
            .copied();
        let origins: Vec<(AttrOrigin, exctl_manifest::FileId)> = c
            .attrs
            .iter()
            .filter_map(|a| {
                let d = resource?
                    .attrs
                    .iter()
                    .find(|d| d.name.eq_ignore_ascii_case(&a.name))?;
                Some((
                    AttrOrigin {
                        name: a.name.clone(),
                        declared_at: at(d.span),
                    },
                    d.span.file,
                ))
            })
            .collect();
        // Lines of one file read as one place: the resource's line when its values are
        // in its own file, the first value's when they all come from another (a site
        // override of a baseline's section); each value's own when files differ.
        let files: std::collections::BTreeSet<exctl_manifest::FileId> =
            origins.iter().map(|(_, f)| *f).collect();
        let (declared_at, attributes_declared_at) = match (files.len(), origins.first()) {
            (0, _) | (_, None) => (at(c.span), Vec::new()),
            (1, _) if files.contains(&c.span.file) => (at(c.span), Vec::new()),
            (1, Some((o, _))) => (o.declared_at.clone(), Vec::new()),
            (_, Some((o, _))) => (
                o.declared_at.clone(),
                origins.into_iter().map(|(o, _)| o).collect(),
            ),
        };
        steps.push(Step::Change(ChangeStep {
            kind: c.kind,
            title: kind.map(|k| k.title()).unwrap_or(c.kind),
            id: c.id.clone(),
            actions: vec![c.action],
            attributes: c.attrs.clone(),
            unchanged_attributes: c.unchanged,
            reason: kind.map(|k| k.order().reason).unwrap_or(""),
            requires_restart: c.restart,
            no_restart: c.restart.and_then(idle_of),
            declared_at,
            attributes_declared_at,
            commands: c.commands.clone(),
        }));
        place(Some(i), &mut steps);
    }
    if let Some(s) = is_restart {
        steps.push(Step::Restart(s));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use exctl_exchange::kinds::{imap, pop};
    use exctl_exchange::services::{INFORMATION_STORE, Protocol, ServiceSpec};

    fn change(kind: &'static str, restart: Option<Service>) -> Change {
        Change {
            kind,
            id: "EX01".into(),
            action: Action::Update,
            attrs: Vec::new(),
            unchanged: 0,
            restart,
            commands: Vec::new(),
            span: exctl_manifest::Span::point(exctl_manifest::FileId(0), Default::default()),
        }
    }

    fn shape(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Change(c) => c.kind.to_string(),
                Step::Restart(r) => format!("restart {}", r.service),
            })
            .collect()
    }

    fn changes() -> Vec<Change> {
        vec![
            change("registry_values", Some(INFORMATION_STORE)),
            change("pop_settings", Some(pop::SERVICE)),
            change("imap_settings", Some(imap::SERVICE)),
        ]
    }

    #[test]
    fn each_protocol_service_restarts_after_its_settings_and_the_store_last() {
        let steps = order_steps(changes(), &SourceMap::new());
        assert_eq!(
            shape(&steps),
            [
                "imap_settings",
                "restart MSExchangeIMAP4",
                "pop_settings",
                "restart MSExchangePOP3",
                "registry_values",
                "restart MSExchangeIS",
            ]
        );
    }

    #[test]
    fn a_stopped_manual_protocol_service_gets_no_restart_and_its_changes_say_why() {
        let why = "MSExchangePOP3 is Stopped and its start mode is Manual: no restart, the settings take effect when it starts";
        let ctx = RestartContext {
            idle: vec![(pop::SERVICE, why.into())],
            ..RestartContext::default()
        };
        let steps = order_steps_in(changes(), &ctx, &SourceMap::new());
        assert_eq!(
            shape(&steps),
            [
                "imap_settings",
                "restart MSExchangeIMAP4",
                "pop_settings",
                "registry_values",
                "restart MSExchangeIS",
            ]
        );
        let no_restart: Vec<Option<&str>> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Change(c) => Some(c.no_restart.as_deref()),
                Step::Restart(_) => None,
            })
            .collect();
        assert_eq!(no_restart, [None, Some(why), None]);
        // A restart owed from before wins: the service runs with old settings.
        let owed = RestartContext {
            pending: vec![(pop::SERVICE, "changed after it started".into())],
            ..ctx
        };
        let steps = order_steps_in(changes(), &owed, &SourceMap::new());
        assert!(shape(&steps).contains(&"restart MSExchangePOP3".to_string()));
    }

    /// A service of a kind that is not registered: a new protocol kind brings it in its
    /// own module; plans, apply's scripts and plan renderings need nothing else.
    static CONNECTOR_SPEC: ServiceSpec = ServiceSpec {
        name: "MSExchangeFrontEndTransport",
        consequence: "SMTP clients on this server are disconnected and retry",
        order: 40,
        protocol: Some(Protocol {
            kind: "receive_connectors",
            read_cmdlet: "Get-ReceiveConnector",
        }),
        health: false,
        mailbox_databases: false,
    };
    const CONNECTOR: Service = Service::new(&CONNECTOR_SPEC);

    #[test]
    fn a_service_no_engine_code_names_restarts_after_its_changes() {
        let mut cs = changes();
        cs.push(change("receive_connectors", Some(CONNECTOR)));
        let steps = order_steps(cs, &SourceMap::new());
        assert_eq!(
            shape(&steps),
            [
                "receive_connectors",
                "restart MSExchangeFrontEndTransport",
                "imap_settings",
                "restart MSExchangeIMAP4",
                "pop_settings",
                "restart MSExchangePOP3",
                "registry_values",
                "restart MSExchangeIS",
            ]
        );
        let Some(Step::Restart(r)) = steps.get(1) else {
            panic!("no restart step");
        };
        assert_eq!(r.consequence, CONNECTOR_SPEC.consequence);
        assert_eq!(r.required_by, ["receive_connectors EX01"]);
        // Owed from before without a change: after the changes up to its settings' phase.
        let owed = RestartContext {
            pending: vec![(CONNECTOR, "changed after it started".into())],
            ..RestartContext::default()
        };
        let steps = order_steps_in(changes(), &owed, &SourceMap::new());
        assert_eq!(shape(&steps)[0], "restart MSExchangeFrontEndTransport");
        // Its restart step is a protocol service's: restarted only when it runs or
        // starts automatically, never the store's databases.
        let body = crate::restart::restart_body(CONNECTOR, "EX01", 2, &Default::default());
        assert!(body.contains("Get-Service -Name 'MSExchangeFrontEndTransport'"));
        assert!(body.contains("-eq 'Auto'") && !body.contains("Get-MailboxDatabase"));
        // Plans show it like any other.
        let plan = Plan::new(vec![HostPlan {
            host: "EX01".into(),
            site: None,
            expected_version: exctl_exchange::Version::Sp3,
            observed_version: None,
            steps: order_steps(
                vec![change("receive_connectors", Some(CONNECTOR))],
                &SourceMap::new(),
            ),
            in_sync: 0,
            errors: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        }]);
        let opts = crate::render::TextOptions {
            color: false,
            explain: false,
        };
        let text = crate::render::text(&plan, opts);
        assert!(
            text.contains("restart MSExchangeFrontEndTransport"),
            "{text}"
        );
    }
}
