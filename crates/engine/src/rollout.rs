//! Many sites at once: choosing sites, planning them with bounded parallelism, and
//! rolling `apply` out site by site with a canary, batches and a failure budget.
//!
//! # Sites
//!
//! A site ([`crate::desired::SiteSpec`]) is the unit: its hosts are planned together
//! (concurrently) and applied together (one after another, stopping at the first failed
//! host, as [`crate::apply::apply`] does). [`select`] picks sites by name (`--site`, a
//! host name standing for its site) and by a label [`Selector`], in inventory order,
//! which is also the rollout order.
//!
//! # Parallelism
//!
//! At most `parallel` sites are in flight; a new one starts as soon as any finishes
//! ([`crate::pool`]), so a slow or unreachable site holds up only its own slot. Its
//! failure is a result carrying the site's name, never an error of the run. Planning a
//! site may be bounded in time ([`PlanOptions::timeout`]); applying one is not, since
//! abandoning a host in the middle of its changes is worse than waiting.
//!
//! # Rollout ([`apply_sites`])
//!
//! 1. **Canary**: the first `canary` sites *that have changes or could not be planned*
//!    are applied alone (still in parallel among themselves). If any of them fails, or
//!    could not be planned, no other site starts.
//! 2. **Batches**: the remaining sites run in batches of `batch_size` (default: all in
//!    one), each batch starting when the previous one has finished.
//! 3. **Failure budget**: once `max_failures` sites have failed, no new site starts;
//!    sites already running finish. A site that could not be planned (unreachable) is a
//!    failed site too, counted before anything starts: a budget spent by unreachable
//!    sites starts nothing.
//!
//! Sites not started are reported as such, with the reason. A site without changes is
//! `nothing_to_do` and costs nothing. Applying a saved plan observes each site again
//! just before applying it and refuses that site if it moved
//! ([`PlanFile::check_fresh_hosts`]); after applying, each site is planned again to
//! verify it converged ([`crate::apply::verify`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

// tokio's clock: the same as std's in a run, and a paused one in tests.
use tokio::time::Instant;

use exctl_manifest::SourceMap;

use crate::apply::{self, ApplyOptions, ApplyResult, ApplySummary, Event, HostResult, StepStatus};
use crate::desired::{DesiredState, SiteSpec};
use crate::observe::{self, Runner};
use crate::plan::{HostPlan, Plan, Step};
use crate::planfile::PlanFile;
use crate::pool::{Job, run_bounded};

/// The default number of sites in flight.
pub const DEFAULT_PARALLEL: usize = 8;

/// Why sites cannot be selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// A `--selector` that is not a list of terms.
    #[error(
        "invalid selector '{0}': expected terms separated by commas, each label=value, label!=value, label or !label"
    )]
    BadSelector(String),
    /// A `--site` naming neither a site nor a host.
    #[error("'{name}' is neither a site nor a host of the inventory{hint}")]
    Unknown {
        /// The name given.
        name: String,
        /// `; did you mean 'x'?`, or nothing.
        hint: String,
    },
    /// Nothing is left to plan.
    #[error("no site {0}")]
    NothingSelected(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Has(String),
    Lacks(String),
}

/// A label selector: `region=emea,ring!=canary,pilot,!legacy` (every term must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    terms: Vec<Term>,
}

fn label_word(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| s.to_string())
}

impl FromStr for Selector {
    type Err = SelectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SelectError::BadSelector(s.to_string());
        let mut terms = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let term = if let Some((k, v)) = part.split_once("!=") {
                Term::Ne(
                    label_word(k).ok_or_else(bad)?,
                    label_word(v).ok_or_else(bad)?,
                )
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Term::Eq(
                    label_word(k).ok_or_else(bad)?,
                    label_word(v).ok_or_else(bad)?,
                )
            } else if let Some(k) = part.strip_prefix('!') {
                Term::Lacks(label_word(k).ok_or_else(bad)?)
            } else {
                Term::Has(label_word(part).ok_or_else(bad)?)
            };
            terms.push(term);
        }
        Ok(Selector {
            text: s.trim().to_string(),
            terms,
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Selector {
    /// Whether a site with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Eq(k, v) => labels.get(k) == Some(v),
            Term::Ne(k, v) => labels.get(k) != Some(v),
            Term::Has(k) => labels.contains_key(k),
            Term::Lacks(k) => !labels.contains_key(k),
        })
    }
}

/// The sites to work on, in inventory order: those named (a site, or a host standing for
/// its site; several may be given, or one comma-separated), or all; then those the
/// selector matches; then those with something to plan.
pub fn select<'a>(
    state: &'a DesiredState,
    names: &[String],
    selector: Option<&Selector>,
) -> Result<Vec<&'a SiteSpec>, SelectError> {
    let mut wanted: Option<Vec<&str>> = None;
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let site = state
            .site(name)
            .or_else(|| state.site_of(&name.to_ascii_uppercase()));
        match site {
            Some(s) => wanted.get_or_insert_with(Vec::new).push(&s.name),
            None => {
                let mut all: Vec<&str> = state.sites.iter().map(|s| s.name.as_str()).collect();
                all.extend(state.hosts.values().map(|h| h.name.as_str()));
                let hint = exctl_manifest::did_you_mean_hint(name, &all)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Err(SelectError::Unknown {
                    name: name.to_string(),
                    hint,
                });
            }
        }
    }
    let out: Vec<&SiteSpec> = state
        .sites
        .iter()
        .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.name.as_str())))
        .filter(|s| selector.is_none_or(|sel| sel.matches(&s.labels)))
        .filter(|s| !state.planned_hosts(s).is_empty())
        .collect();
    if out.is_empty() {
        let why = match (names.is_empty(), selector) {
            (true, None) => "declares anything to manage".to_string(),
            (_, Some(sel)) => format!("with something to manage matches the selector '{sel}'"),
            (false, None) => format!("among {} declares anything to manage", names.join(", ")),
        };
        return Err(SelectError::NothingSelected(why));
    }
    Ok(out)
}

/// One site's plan.
#[derive(Debug, Clone)]
pub struct SitePlan {
    /// The site.
    pub site: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its hosts' plans, in inventory order.
    pub hosts: Vec<HostPlan>,
    /// How long planning took.
    pub duration: Duration,
}

fn count(hosts: &[HostPlan], restart: bool) -> usize {
    hosts
        .iter()
        .flat_map(|h| &h.steps)
        .filter(|s| matches!(s, Step::Restart(_)) == restart)
        .count()
}

impl SitePlan {
    /// Resources that change (create, update, delete).
    pub fn changes(&self) -> usize {
        count(&self.hosts, false)
    }

    /// Service restarts.
    pub fn restarts(&self) -> usize {
        count(&self.hosts, true)
    }

    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(|h| !h.steps.is_empty())
    }

    /// Whether a host could not be planned.
    pub fn has_errors(&self) -> bool {
        self.hosts.iter().any(|h| !h.errors.is_empty())
    }

    /// The first problem, for one-line summaries: `EX01: <error>`.
    pub fn first_error(&self) -> Option<String> {
        self.hosts.iter().find_map(|h| {
            h.errors.first().map(|e| {
                if e.starts_with(&h.host) {
                    e.clone()
                } else {
                    format!("{}: {e}", h.host)
                }
            })
        })
    }

    /// The site's plan on its own.
    pub fn plan(&self) -> Plan {
        Plan::new(self.hosts.clone())
    }
}

/// The plan of many sites.
#[derive(Debug, Clone, Default)]
pub struct RepoPlan {
    /// Per site, in rollout order.
    pub sites: Vec<SitePlan>,
}

impl RepoPlan {
    /// Every host of every site as one plan (the JSON plan and plan files).
    pub fn plan(&self) -> Plan {
        Plan::new(self.sites.iter().flat_map(|s| s.hosts.clone()).collect())
    }

    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        self.sites.iter().any(SitePlan::has_changes)
    }

    /// Whether any site could not be (fully) planned.
    pub fn has_errors(&self) -> bool {
        self.sites.iter().any(SitePlan::has_errors)
    }

    /// A summary per site for the JSON plan (`sites`). No durations: a plan's JSON
    /// depends only on the manifests and the servers.
    pub fn sites_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.sites
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "name": s.site,
                        "labels": s.labels,
                        "hosts": s.hosts.iter().map(|h| &h.host).collect::<Vec<_>>(),
                        "changes": s.changes(),
                        "restarts": s.restarts(),
                        "errors": s.hosts.iter().flat_map(|h| h.errors.iter().map(move |e| format!("{}: {e}", h.host))).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What a site is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Observing its hosts and comparing.
    Plan,
    /// Running its changes.
    Apply,
    /// Observing again after apply.
    Verify,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Plan => "planning",
            Phase::Apply => "applying",
            Phase::Verify => "verifying",
        })
    }
}

/// What a run over many sites reports as it goes (for progress displays).
#[derive(Debug)]
pub enum SiteEvent<'a> {
    /// A site entered a phase.
    Started {
        /// The site.
        site: &'a str,
        /// What it does now.
        phase: Phase,
        /// Its hosts with something to do.
        hosts: usize,
    },
    /// A site's plan is ready.
    Planned {
        /// The plan.
        plan: &'a SitePlan,
    },
    /// Progress of a host of a site being applied.
    Apply {
        /// The site.
        site: &'a str,
        /// What the host reported.
        event: &'a Event<'a>,
    },
    /// A site finished applying (or was found to have nothing to do, or failed).
    Finished {
        /// Its result.
        result: &'a SiteResult,
    },
    /// A site was not started.
    NotStarted {
        /// The site.
        site: &'a str,
        /// Why.
        reason: &'a str,
    },
}

/// Receives [`SiteEvent`]s.
pub type SiteSink<'a> = &'a (dyn Fn(&SiteEvent<'_>) + Send + Sync);

/// How sites are planned.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// Sites in flight at once.
    pub parallel: usize,
    /// A site not planned within this time is an error of that site.
    pub timeout: Option<Duration>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            parallel: DEFAULT_PARALLEL,
            timeout: None,
        }
    }
}

/// Plans one site: its hosts concurrently.
pub async fn plan_site(
    state: &DesiredState,
    site: &SiteSpec,
    runner: &dyn Runner,
    sources: &SourceMap,
    timeout: Option<Duration>,
) -> SitePlan {
    let t0 = Instant::now();
    let hosts = state.planned_hosts(site);
    let empty = Vec::new();
    let futs = hosts.iter().map(|h| {
        let resources = state
            .resources
            .get(&h.name.to_ascii_uppercase())
            .unwrap_or(&empty);
        observe::plan_host(h, resources, runner, sources)
    });
    let all = observe::join_all(futs);
    let plans = match timeout {
        None => all.await,
        Some(t) => match tokio::time::timeout(t, all).await {
            Ok(p) => p,
            Err(_) => hosts
                .iter()
                .map(|h| HostPlan {
                    host: h.name.clone(),
                    site: h.site.clone(),
                    expected_version: h.version,
                    observed_version: None,
                    steps: Vec::new(),
                    in_sync: 0,
                    errors: vec![format!(
                        "site {} was not planned within {} s (--site-timeout); its hosts are slow or unreachable",
                        site.name,
                        t.as_secs()
                    )],
                    notes: Vec::new(),
                    warnings: Vec::new(),
                })
                .collect(),
        },
    };
    SitePlan {
        site: site.name.clone(),
        labels: site.labels.clone(),
        hosts: plans,
        duration: t0.elapsed(),
    }
}

/// Plans `sites`, at most `opts.parallel` at a time.
pub async fn plan_sites(
    state: &DesiredState,
    sites: &[&SiteSpec],
    runner: &dyn Runner,
    sources: &SourceMap,
    opts: PlanOptions,
    on_event: SiteSink<'_>,
) -> RepoPlan {
    let results: RefCell<Vec<Option<SitePlan>>> = RefCell::new(vec![None; sites.len()]);
    let jobs: Vec<Job<'_, SitePlan>> = sites
        .iter()
        .map(|site| {
            Box::pin(async move {
                on_event(&SiteEvent::Started {
                    site: &site.name,
                    phase: Phase::Plan,
                    hosts: state.planned_hosts(site).len(),
                });
                plan_site(state, site, runner, sources, opts.timeout).await
            }) as Job<'_, SitePlan>
        })
        .collect();
    run_bounded(
        jobs,
        opts.parallel,
        || true,
        |i, plan| {
            on_event(&SiteEvent::Planned { plan: &plan });
            if let Some(slot) = results.borrow_mut().get_mut(i) {
                *slot = Some(plan);
            }
        },
    )
    .await;
    RepoPlan {
        sites: results.into_inner().into_iter().flatten().collect(),
    }
}

/// How a rollout proceeds.
#[derive(Debug, Clone, Copy)]
pub struct RolloutOptions {
    /// Sites in flight at once.
    pub parallel: usize,
    /// The first this many sites with changes go alone, first.
    pub canary: usize,
    /// The other sites go in batches of this many (`None`: one batch).
    pub batch_size: Option<usize>,
    /// After this many failed sites, no new site starts.
    pub max_failures: usize,
    /// Bound on observing a site again (saved plans, verification).
    pub plan_timeout: Option<Duration>,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions {
            parallel: DEFAULT_PARALLEL,
            canary: 0,
            batch_size: None,
            max_failures: 1,
            plan_timeout: None,
        }
    }
}

/// A site's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteStatus {
    /// Applied and verified.
    Done,
    /// The plan had nothing to do there.
    NothingToDo,
    /// Could not be planned, was refused (a stale saved plan), a step failed, or it did
    /// not converge.
    Failed,
    /// Not started: the canary or too many sites failed first.
    NotStarted,
}

impl fmt::Display for SiteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SiteStatus::Done => "done",
            SiteStatus::NothingToDo => "no changes",
            SiteStatus::Failed => "FAILED",
            SiteStatus::NotStarted => "not started",
        })
    }
}

/// One site's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SiteResult {
    /// The site.
    pub site: String,
    /// Its outcome.
    pub status: SiteStatus,
    /// Whether it was a canary.
    pub canary: bool,
    /// Resources it changes (as planned).
    pub changes: usize,
    /// Restarts it plans.
    pub restarts: usize,
    /// Its hosts.
    pub hosts: Vec<String>,
    /// Why it failed or was not started.
    pub error: Option<String>,
    /// Wall time from its start to its end.
    pub duration_ms: u64,
    /// The results of its hosts (in the top-level `hosts` of the JSON).
    #[serde(skip)]
    pub host_results: Vec<HostResult>,
}

/// Totals of a rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RolloutSummary {
    /// Sites in the rollout.
    pub sites: usize,
    /// Applied and verified.
    pub done: usize,
    /// Nothing to do.
    pub nothing_to_do: usize,
    /// Failed.
    pub failed: usize,
    /// Not started.
    pub not_started: usize,
    /// Every site done or with nothing to do (exit code 0 exactly then).
    pub success: bool,
}

/// The result of a rollout: the apply result of every host (format version
/// [`apply::RESULT_FORMAT_VERSION`], as for one site), with per-site results beside it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolloutResult {
    /// Every host of every site started, as [`ApplyResult`].
    #[serde(flatten)]
    pub apply: ApplyResult,
    /// Per site, in rollout order.
    pub sites: Vec<SiteResult>,
    /// Per-site totals.
    pub rollout: RolloutSummary,
}

impl RolloutResult {
    /// Whether every site succeeded.
    pub fn succeeded(&self) -> bool {
        self.rollout.success
    }
}

/// One line on why a site failed, from its hosts' results.
fn failure_of(hosts: &[HostResult]) -> Option<String> {
    for h in hosts {
        if let Some(s) = h.steps.iter().find(|s| s.status == StepStatus::Failed) {
            return Some(format!(
                "{}: step {} ({}) failed: {}",
                h.host,
                s.index,
                s.description,
                s.error.as_deref().unwrap_or("no error text")
            ));
        }
        if let Some(e) = &h.error
            && !matches!(h.status, apply::HostStatus::NotAttempted)
        {
            return Some(format!("{}: {e}", h.host));
        }
        if let Some(v) = &h.verification
            && !v.settled
        {
            let what = v
                .remaining
                .first()
                .or(v.notes.first())
                .cloned()
                .unwrap_or_else(|| "it did not converge".into());
            return Some(format!("{}: not converged: {what}", h.host));
        }
    }
    None
}

struct Ctx<'a> {
    state: &'a DesiredState,
    runner: &'a dyn Runner,
    sources: &'a SourceMap,
    apply: &'a ApplyOptions,
    opts: RolloutOptions,
    saved: Option<&'a PlanFile>,
    on_event: SiteSink<'a>,
}

async fn run_site(cx: &Ctx<'_>, sp: &SitePlan, canary: bool) -> SiteResult {
    let t0 = Instant::now();
    let mut r = SiteResult {
        site: sp.site.clone(),
        status: SiteStatus::Failed,
        canary,
        changes: sp.changes(),
        restarts: sp.restarts(),
        hosts: sp.hosts.iter().map(|h| h.host.clone()).collect(),
        error: None,
        duration_ms: 0,
        host_results: Vec::new(),
    };
    let done = |mut r: SiteResult| {
        r.duration_ms = millis(t0.elapsed());
        r
    };
    if sp.has_errors() {
        r.error = Some(format!(
            "could not be planned; nothing was applied: {}",
            sp.first_error().unwrap_or_default()
        ));
        return done(r);
    }
    if !sp.has_changes() {
        r.status = SiteStatus::NothingToDo;
        return done(r);
    }
    let Some(site) = cx.state.site(&sp.site) else {
        r.error = Some("the site is no longer in the inventory".into());
        return done(r);
    };
    let hosts = r.hosts.len();
    let fresh_plan;
    let to_apply: Plan = match cx.saved {
        Some(pf) => {
            (cx.on_event)(&SiteEvent::Started {
                site: &sp.site,
                phase: Phase::Plan,
                hosts,
            });
            let fresh =
                plan_site(cx.state, site, cx.runner, cx.sources, cx.opts.plan_timeout).await;
            fresh_plan = fresh.plan();
            if let Err(moved) = pf.check_fresh_hosts(&fresh_plan, &r.hosts) {
                r.error = Some(format!(
                    "refused: the saved plan is stale for this site, the servers changed since it was made: {}",
                    moved.join("; ")
                ));
                return done(r);
            }
            fresh_plan
        }
        None => sp.plan(),
    };
    (cx.on_event)(&SiteEvent::Started {
        site: &sp.site,
        phase: Phase::Apply,
        hosts,
    });
    let name = sp.site.as_str();
    let on_event = cx.on_event;
    let sink = move |e: &Event<'_>| {
        on_event(&SiteEvent::Apply {
            site: name,
            event: e,
        })
    };
    let mut result =
        match apply::apply(&to_apply, &cx.state.hosts, cx.runner, cx.apply, &sink).await {
            Ok(res) => res,
            Err(e) => {
                r.error = Some(e.to_string());
                return done(r);
            }
        };
    (cx.on_event)(&SiteEvent::Started {
        site: &sp.site,
        phase: Phase::Verify,
        hosts,
    });
    let fresh = plan_site(cx.state, site, cx.runner, cx.sources, cx.opts.plan_timeout).await;
    apply::verify(&mut result, &fresh.plan());
    // The lock is kept through the verification, then released by the run that took it
    // (a host refused before its script ran never took it).
    if let Some(owner) = &cx.apply.lock {
        let release = crate::lock::release_script(&owner.run_id);
        for h in &result.hosts {
            if matches!(
                h.status,
                apply::HostStatus::Done | apply::HostStatus::Failed
            ) && let Some(spec) = cx.state.hosts.get(&h.host.to_ascii_uppercase())
            {
                let _ = cx.runner.run(spec, &release).await;
            }
        }
    }
    r.status = if result.succeeded() {
        SiteStatus::Done
    } else {
        SiteStatus::Failed
    };
    if r.status == SiteStatus::Failed {
        r.error = failure_of(&result.hosts).or_else(|| Some("did not complete".into()));
    }
    r.host_results = result.hosts;
    done(r)
}

/// Applies `plan` site by site (see the module docs). `saved`: the plan file it comes
/// from, whose sites are each checked against a fresh observation before they apply.
#[allow(clippy::too_many_arguments)]
pub async fn apply_sites(
    plan: &RepoPlan,
    state: &DesiredState,
    runner: &dyn Runner,
    sources: &SourceMap,
    apply_opts: &ApplyOptions,
    opts: RolloutOptions,
    saved: Option<&PlanFile>,
    on_event: SiteSink<'_>,
) -> RolloutResult {
    let cx = Ctx {
        state,
        runner,
        sources,
        apply: apply_opts,
        opts,
        saved,
        on_event,
    };
    let n = plan.sites.len();
    // A site that could not be planned has failed before anything starts: it counts
    // against the budget at once, and, among the first `canary` sites of the rollout
    // order, it is a failed canary.
    let unplanned: Vec<usize> = (0..n).filter(|&i| plan.sites[i].has_errors()).collect();
    let canaries: Vec<usize> = (0..n)
        .filter(|&i| plan.sites[i].has_changes() || plan.sites[i].has_errors())
        .take(opts.canary)
        .collect();
    let rest: Vec<usize> = (0..n)
        .filter(|i| !canaries.contains(i) && !unplanned.contains(i))
        .collect();
    let mut groups: Vec<(bool, Vec<usize>)> = Vec::new();
    if !canaries.is_empty() {
        groups.push((true, canaries.clone()));
    }
    match opts.batch_size {
        Some(b) if b > 0 => groups.extend(rest.chunks(b).map(|c| (false, c.to_vec()))),
        _ if !rest.is_empty() => groups.push((false, rest)),
        _ => {}
    }
    let results: RefCell<Vec<Option<SiteResult>>> = RefCell::new(vec![None; n]);
    let failures = Cell::new(0usize);
    let mut stop: Option<String> = None;
    let budget = opts.max_failures.max(1);
    for &i in &unplanned {
        let r = unplanned_result(&plan.sites[i], canaries.contains(&i));
        failures.set(failures.get() + 1);
        on_event(&SiteEvent::Finished { result: &r });
        store(&results, i, r);
    }
    let failed_canaries: Vec<&str> = canaries
        .iter()
        .filter(|i| unplanned.contains(i))
        .map(|&i| plan.sites[i].site.as_str())
        .collect();
    if !failed_canaries.is_empty() {
        stop = Some(format!(
            "the canary failed: {} could not be planned",
            failed_canaries.join(", ")
        ));
    } else if failures.get() >= budget {
        stop = Some(format!(
            "{} site{} could not be planned before anything started (--max-failures {budget}): {}",
            failures.get(),
            if failures.get() == 1 { "" } else { "s" },
            failed_sites(&results).join(", ")
        ));
    }
    for (is_canary, group) in groups {
        if let Some(why) = &stop {
            for &i in &group {
                if results.borrow()[i].is_none() {
                    not_started(i, &plan.sites[i], is_canary, why, &results, on_event);
                }
            }
            continue;
        }
        // The canary group's unplanned sites have their result already.
        let group: Vec<usize> = group
            .into_iter()
            .filter(|&i| results.borrow()[i].is_none())
            .collect();
        let jobs: Vec<Job<'_, SiteResult>> = group
            .iter()
            .map(|&i| {
                let cx = &cx;
                Box::pin(run_site(cx, &plan.sites[i], is_canary)) as Job<'_, SiteResult>
            })
            .collect();
        let left = run_bounded(
            jobs,
            opts.parallel,
            || failures.get() < budget && !apply_opts.stop.is_requested(),
            |k, r| {
                if r.status == SiteStatus::Failed {
                    failures.set(failures.get() + 1);
                }
                on_event(&SiteEvent::Finished { result: &r });
                if let Some(&i) = group.get(k) {
                    store(&results, i, r);
                }
            },
        )
        .await;
        let failed_here: Vec<String> = group
            .iter()
            .filter_map(|&i| {
                results.borrow()[i]
                    .as_ref()
                    .filter(|r| r.status == SiteStatus::Failed)
                    .map(|r| r.site.clone())
            })
            .collect();
        if apply_opts.stop.is_requested() {
            stop = Some(crate::apply::STOPPED_BY_OPERATOR.to_string());
        } else if is_canary && !failed_here.is_empty() {
            stop = Some(format!("the canary failed: {}", failed_here.join(", ")));
        } else if failures.get() >= budget {
            stop = Some(format!(
                "{} site{} failed (--max-failures {budget}): {}",
                failures.get(),
                if failures.get() == 1 { "" } else { "s" },
                failed_sites(&results).join(", ")
            ));
        }
        let why = stop.clone().unwrap_or_default();
        for k in left {
            if let Some(&i) = group.get(k) {
                not_started(i, &plan.sites[i], is_canary, &why, &results, on_event);
            }
        }
    }
    finish(plan, results.into_inner(), apply_opts)
}

/// The result of a site that could not be planned: failed, nothing applied.
fn unplanned_result(sp: &SitePlan, canary: bool) -> SiteResult {
    SiteResult {
        site: sp.site.clone(),
        status: SiteStatus::Failed,
        canary,
        changes: sp.changes(),
        restarts: sp.restarts(),
        hosts: sp.hosts.iter().map(|h| h.host.clone()).collect(),
        error: Some(format!(
            "could not be planned; nothing was applied: {}",
            sp.first_error().unwrap_or_default()
        )),
        duration_ms: 0,
        host_results: Vec::new(),
    }
}

fn store(results: &RefCell<Vec<Option<SiteResult>>>, i: usize, r: SiteResult) {
    if let Some(slot) = results.borrow_mut().get_mut(i) {
        *slot = Some(r);
    }
}

fn failed_sites(results: &RefCell<Vec<Option<SiteResult>>>) -> Vec<String> {
    results
        .borrow()
        .iter()
        .flatten()
        .filter(|r| r.status == SiteStatus::Failed)
        .map(|r| r.site.clone())
        .collect()
}

fn not_started(
    i: usize,
    sp: &SitePlan,
    canary: bool,
    why: &str,
    results: &RefCell<Vec<Option<SiteResult>>>,
    on_event: SiteSink<'_>,
) {
    let status = if sp.has_changes() || sp.has_errors() {
        SiteStatus::NotStarted
    } else {
        // Nothing was to be done there: not starting it changes nothing.
        SiteStatus::NothingToDo
    };
    let r = SiteResult {
        site: sp.site.clone(),
        status,
        canary,
        changes: sp.changes(),
        restarts: sp.restarts(),
        hosts: sp.hosts.iter().map(|h| h.host.clone()).collect(),
        error: (status == SiteStatus::NotStarted).then(|| format!("not started: {why}")),
        duration_ms: 0,
        host_results: Vec::new(),
    };
    if status == SiteStatus::NotStarted {
        on_event(&SiteEvent::NotStarted {
            site: &sp.site,
            reason: why,
        });
    }
    store(results, i, r);
}

fn finish(
    plan: &RepoPlan,
    results: Vec<Option<SiteResult>>,
    apply_opts: &ApplyOptions,
) -> RolloutResult {
    let sites: Vec<SiteResult> = results
        .into_iter()
        .zip(&plan.sites)
        .map(|(r, sp)| {
            r.unwrap_or_else(|| SiteResult {
                site: sp.site.clone(),
                status: SiteStatus::NotStarted,
                canary: false,
                changes: sp.changes(),
                restarts: sp.restarts(),
                hosts: sp.hosts.iter().map(|h| h.host.clone()).collect(),
                error: Some("not started".into()),
                duration_ms: 0,
                host_results: Vec::new(),
            })
        })
        .collect();
    let mut summary = RolloutSummary {
        sites: sites.len(),
        ..RolloutSummary::default()
    };
    for s in &sites {
        match s.status {
            SiteStatus::Done => summary.done += 1,
            SiteStatus::NothingToDo => summary.nothing_to_do += 1,
            SiteStatus::Failed => summary.failed += 1,
            SiteStatus::NotStarted => summary.not_started += 1,
        }
    }
    summary.success = summary.failed == 0 && summary.not_started == 0;
    let mut apply = ApplyResult {
        format_version: apply::RESULT_FORMAT_VERSION,
        exctl_version: env!("CARGO_PKG_VERSION"),
        restart_policy: apply_opts.restart,
        hosts: sites.iter().flat_map(|s| s.host_results.clone()).collect(),
        summary: ApplySummary::default(),
    };
    apply.summarize();
    apply.summary.success = apply.summary.success && summary.success;
    RolloutResult {
        apply,
        sites,
        rollout: summary,
    }
}
