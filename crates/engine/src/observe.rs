//! Observing hosts and planning: one script, one PowerShell process, one WinRS shell per
//! host, whatever the number of resources.
//!
//! The observe script starts with the record PRELUDE, loads the Exchange snap-in, reports
//! the server's AdminDisplayVersion, then runs every kind's observation fragment in plan
//! order. Its stdout is decoded into [`Observations`]; each kind compares and returns its
//! changes. A host that cannot be reached or read becomes an error of that host only.
//!
//! The script ends with the host's health (the Information Store, the IMAP4 service,
//! their dependants and the databases: see [`crate::restart::Health`]), which every plan
//! checks whatever the resources, and with the restart facts of the services the host's
//! resources may require (see [`crate::restart`]), so that a plan shows a restart still
//! owed from an earlier run.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;

use exctl_exchange::kind::{ObserveContext, Resource, Service};
use exctl_exchange::record::{self, Observations};
use exctl_exchange::{Version, kinds};
use exctl_manifest::{SourceMap, Span};

use crate::desired::{DesiredState, HostSpec};
use crate::plan::{HostPlan, Plan, order_steps_for};
use crate::restart;
use crate::script::ScriptBuilder;

/// The pseudo-resource under which the observe script reports facts about the host.
pub const HOST_RESOURCE: &str = "__host";

/// What a script run produced.
#[derive(Debug, Clone, Default)]
pub struct ScriptOutput {
    /// stdout, decoded as UTF-8 (WinRS code page 65001).
    pub stdout: String,
    /// stderr with CLIXML already decoded into readable text.
    pub stderr: String,
    /// The process exit code.
    pub exit_code: i64,
}

/// A failure to run a script (connection, credentials, protocol), and whether the host
/// may have acted on it anyway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    message: String,
    outcome_unknown: bool,
}

impl RunError {
    /// The script did not run (nothing reached the host, or the host refused it).
    pub fn new(message: impl Into<String>) -> Self {
        RunError {
            message: message.into(),
            outcome_unknown: false,
        }
    }

    /// The script may have run, in part or whole: the connection was lost after it was
    /// sent. A caller that changes state must observe again before anything else.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        RunError {
            message: message.into(),
            outcome_unknown: true,
        }
    }

    /// Whether the host may have acted although the run failed.
    pub fn is_outcome_unknown(&self) -> bool {
        self.outcome_unknown
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Receives each complete line of a script's stdout as it arrives (without its line
/// break).
pub type LineSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// Runs scripts on hosts. The WinRM implementation is [`crate::winrm::WinRmRunner`],
/// which runs every script for a host in one session until [`Runner::close`]; tests may
/// use their own.
pub trait Runner: Send + Sync {
    /// Runs `script` on `host` (in the host's session: what an earlier script of the same
    /// command defined, it finds).
    fn run<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>>;

    /// Runs `script` like [`Runner::run`], handing every line of stdout to `on_line` as
    /// soon as the host sends it, so that apply can report each step as it completes.
    /// The default runs the script to completion first and then hands over the lines:
    /// right for runners that have no stream (tests), without live progress.
    fn run_streaming<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
        on_line: LineSink<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        Box::pin(async move {
            let out = self.run(host, script).await?;
            for line in out.stdout.lines() {
                on_line(line.trim_end_matches('\r'));
            }
            Ok(out)
        })
    }

    /// Ends whatever the runner keeps open between scripts (the sessions of
    /// [`crate::winrm::WinRmRunner`]). Called once when a command is done with its
    /// hosts; a runner without sessions has nothing to do.
    fn close<'a>(&'a self) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async {})
    }
}

/// The observe script for one host.
pub fn observe_script(host: &HostSpec, resources: &[Resource]) -> String {
    let mut s = ScriptBuilder::new(host);
    let h = exctl_pwsh::quote(HOST_RESOURCE);
    s.raw(&record::guarded(
        HOST_RESOURCE,
        &format!(
            // The computer name first: when Exchange knows no server by the inventory's
            // name, it says which name the inventory should have used.
            "__exctl_emit {h} 'ComputerName' ([string]$env:COMPUTERNAME)\n\
             __exctl_emit {h} 'AdminDisplayVersion' ([string](Get-ExchangeServer -Identity {}).AdminDisplayVersion)",
            exctl_pwsh::quote(&host.name)
        ),
    ));
    let ctx = ObserveContext {
        host: &host.name,
        version: host.version,
    };
    for kind in kinds::ALL {
        let mine: Vec<&Resource> = resources.iter().filter(|r| r.kind == kind.key()).collect();
        if !mine.is_empty() {
            s.raw(&kind.observe(&mine, &ctx));
        }
    }
    // The services the resources may restart, and those the capacity check reads: one
    // read of each service's facts.
    let mut services = services_of(resources);
    if host.capacity.is_some() {
        services.extend(crate::capacity::FACTS_SERVICES);
    }
    s.raw(&restart::observe_facts(&host.name, &services));
    s.raw(&restart::observe_health(&host.name));
    s.raw(&crate::lock::observe_script());
    // The limits a declared demand meets, for the capacity warnings of the plan.
    if let Some(d) = &host.capacity {
        s.raw(&crate::capacity::observe_script(
            &host.name,
            host.version,
            &d.account,
        ));
    }
    s.finish()
}

/// The services whose restart the resources may require.
pub fn services_of(resources: &[Resource]) -> BTreeSet<Service> {
    resources.iter().filter_map(|r| r.restart).collect()
}

/// `file:line` of a span.
fn at(sources: &SourceMap, span: exctl_manifest::Span) -> String {
    format!("{}:{}", sources.path(span.file).display(), span.start.line)
}

/// Plans one host.
pub async fn plan_host(
    host: &HostSpec,
    resources: &[Resource],
    runner: &dyn Runner,
    sources: &SourceMap,
) -> HostPlan {
    let mut hp = HostPlan {
        host: host.name.clone(),
        site: host.site.clone(),
        expected_version: host.version,
        observed_version: None,
        steps: Vec::new(),
        in_sync: 0,
        errors: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    };
    // Declared limits below the declared demand: said in the plan too (validate says
    // them on stderr), before anything connects, so a host that cannot be reached keeps
    // them.
    if let (Some(d), Some(declared)) = (&host.capacity, &host.declared_limits) {
        let mut diags = exctl_manifest::Diagnostics::new();
        crate::capacity::check_declared(d, declared, &mut diags);
        for x in diags.into_vec() {
            let at = x.span.map_or(String::new(), |s| {
                format!(" ({}:{})", sources.path(s.file).display(), s.start.line)
            });
            let hint = x.hint.map_or(String::new(), |h| format!("; {h}"));
            hp.warnings
                .push(format!("capacity warning: {}{at}{hint}", x.message));
        }
    }
    if resources.is_empty() {
        return hp;
    }
    let script = observe_script(host, resources);
    let out = match runner.run(host, &script).await {
        Ok(o) => o,
        Err(e) => {
            hp.errors.push(e.to_string());
            return hp;
        }
    };
    if out.exit_code != 0 {
        let detail = out.stderr.trim();
        hp.errors.push(format!(
            "the observe script failed on {} (exit code {}){}",
            host.name,
            out.exit_code,
            if detail.is_empty() {
                String::new()
            } else {
                format!(":\n{detail}")
            }
        ));
        return hp;
    }
    let observed = match Observations::parse(&out.stdout) {
        Ok(o) => o,
        Err(e) => {
            hp.errors.push(e.to_string());
            return hp;
        }
    };
    if let Some(e) = observed.error(HOST_RESOURCE) {
        let computer = match observed.get(HOST_RESOURCE, "ComputerName") {
            Some(exctl_exchange::RawValue::Str(c)) if !c.trim().is_empty() => Some(c.trim()),
            _ => None,
        };
        match computer {
            Some(c) if !c.eq_ignore_ascii_case(&host.name) => hp.errors.push(format!(
                "the inventory names this host {} ({}), but the server at {} is {c}: Exchange knows a server by its computer name, so name the host {c} in the inventory (Exchange said: {})",
                host.name,
                at(sources, host.span),
                host.endpoint,
                e
            )),
            _ => hp.errors.push(format!(
                "cannot read the Exchange server {}: {e}",
                host.name
            )),
        }
        return hp;
    }
    if let Some(exctl_exchange::RawValue::Str(v)) =
        observed.get(HOST_RESOURCE, "AdminDisplayVersion")
    {
        hp.observed_version = Some(v.clone());
        match Version::from_admin_display_version(v) {
            Some(actual) if actual != host.version => {
                hp.errors.push(format!(
                    "{} runs {actual} ({v}) but the inventory declares {}; fix 'exchange:' for this host so parameters are checked against the right version",
                    host.name,
                    host.version.as_str()
                ));
                return hp;
            }
            Some(_) => {}
            None => {
                hp.errors.push(format!(
                    "{} reports AdminDisplayVersion '{v}', which is not Exchange 2010",
                    host.name
                ));
                return hp;
            }
        }
    }
    let ctx = ObserveContext {
        host: &host.name,
        version: host.version,
    };
    let mut changes = Vec::new();
    for kind in kinds::ALL {
        let mine: Vec<&Resource> = resources.iter().filter(|r| r.kind == kind.key()).collect();
        if mine.is_empty() {
            continue;
        }
        match kind.diff(&mine, &observed, &ctx) {
            Ok(c) => {
                // A resource is in sync when no change comes from it: by identity, or,
                // for a wildcard (`"*"` connectors), by the declaration its members'
                // changes carry.
                // Looked up in sets of the changes' spans and lower-case identities, not
                // by scanning the changes for each resource.
                let spans: HashSet<Span> = c.iter().map(|c| c.span).collect();
                let ids: HashSet<String> = c.iter().map(|c| c.id.to_ascii_lowercase()).collect();
                hp.in_sync += mine
                    .iter()
                    .filter(|r| {
                        !spans.contains(&r.span) && !ids.contains(&r.id.to_ascii_lowercase())
                    })
                    .count();
                changes.extend(c);
            }
            // Where the resource is declared, so that a name the server does not know
            // (a mailbox that does not exist) is fixed where it is written.
            Err(e) => match mine.iter().find(|r| r.id.eq_ignore_ascii_case(&e.id)) {
                Some(r) => hp
                    .errors
                    .push(format!("{e} (declared at {})", at(sources, r.span))),
                None => hp.errors.push(e.to_string()),
            },
        }
    }
    let (mut restarts, mut notes) =
        restart::context(&host.name, &observed, &services_of(resources));
    // A host whose store (or IMAP4 service) is down is never in sync.
    let health = restart::health(&host.name, &observed);
    notes.extend(health.notes.iter().cloned());
    if let Some((held, now)) = crate::lock::observed(&observed) {
        notes.push(crate::lock::note(&host.name, &held, &now));
    }
    for (svc, _) in &health.services {
        if let Some(r) = health.recovery(*svc) {
            restarts.recover.push((*svc, r));
        }
    }
    if let (Some(d), Some(declared)) = (&host.capacity, &host.declared_limits) {
        hp.warnings.extend(crate::capacity::check_observed(
            &host.name, d, declared, &observed,
        ));
    }
    hp.notes = notes;
    let declared: Vec<&Resource> = resources.iter().collect();
    hp.steps = order_steps_for(changes, &declared, &restarts, sources);
    hp
}

/// Plans every host that has resources, at most `parallel` at a time.
pub async fn plan(
    state: &DesiredState,
    runner: &dyn Runner,
    sources: &SourceMap,
    parallel: usize,
) -> Plan {
    let empty = Vec::new();
    let jobs: Vec<(&HostSpec, &Vec<Resource>)> = state
        .hosts
        .iter()
        .map(|(k, h)| (h, state.resources.get(k).unwrap_or(&empty)))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    // A new host starts as soon as any finishes: a slow host holds up nobody.
    let mut results: Vec<Option<HostPlan>> = vec![None; jobs.len()];
    let futs: Vec<crate::pool::Job<'_, HostPlan>> = jobs
        .iter()
        .map(|(h, r)| Box::pin(plan_host(h, r, runner, sources)) as crate::pool::Job<'_, HostPlan>)
        .collect();
    crate::pool::run_bounded(
        futs,
        parallel,
        || true,
        |i, hp| {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(hp);
            }
        },
    )
    .await;
    Plan::new(results.into_iter().flatten().collect())
}

/// Runs futures concurrently and returns their outputs in order (a small join_all,
/// to keep the dependency tree lean).
pub(crate) async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => out[i] = Some(v),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
