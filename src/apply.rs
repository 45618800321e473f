//! `exctl apply`: manifests (a fresh plan, confirmed) or a saved plan file (checked
//! against the manifests and the servers), then the changes host by host with their
//! restarts, then a fresh plan to show what converged.
//!
//! Exit codes: 0 success (every step done or skipped by `--restart never`, and every
//! host converged or only waits for what was expected), 1 anything else: a refusal
//! (no confirmation, stale plan, changed manifests, maintenance window), a failed step,
//! a host that did not converge.

use crate::exit::ExitStatus;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use exctl_engine::apply::{
    self as engine, ApplyError, ApplyOptions, ApplyResult, Clock, Event, FixedClock, HostStatus,
    LocalClock, RestartPolicy, Service, StepStatus,
};
use exctl_engine::observe::Runner as _;
use exctl_engine::plan::Step;
use exctl_engine::planfile::PlanFile;
use exctl_engine::render::{self, TextOptions, for_people};
use exctl_engine::report;
use exctl_engine::rollout::{
    self, PlanOptions, RolloutOptions, RolloutResult, SiteEvent, SiteStatus,
};
use exctl_engine::winrm::WinRmRunner;

use serde_json::json;

use crate::cli::{ApplyArgs, ApplyFormat, RestartArg};
use crate::credentials;
use crate::journal::{self, Journal};
use crate::progress::{Progress, SeenStates};

/// Where progress goes: stdout for text, stderr when stdout carries JSON.
#[derive(Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    fn line(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
    }
}

/// Reads PATH: one plan file, or manifests.
/// Makes the manifests of a saved plan readable by its relative `inputs`: they are
/// relative to the directory the plan was made in (`root`). The process moves there
/// when it exists and holds them; otherwise the inputs are read here, or, failing that,
/// in the plan file's own directory (a plan saved at the root of a checkout that lives
/// elsewhere); otherwise it says where to run. The manifests' digests then prove that
/// they are the ones the plan was made from.
fn read_manifests_where_planned(file: &Path, pf: &PlanFile) -> Result<(), String> {
    let all_in = |base: &Path| pf.inputs.iter().all(|i| base.join(i).exists());
    let here = std::env::current_dir().ok();
    let mut candidates: Vec<PathBuf> = pf.root.iter().map(PathBuf::from).collect();
    candidates.extend(here.clone());
    if let Some(dir) = std::fs::canonicalize(file)
        .ok()
        .and_then(|f| f.parent().map(Path::to_path_buf))
    {
        candidates.push(dir);
    }
    for dir in candidates {
        if !(dir.is_dir() && all_in(&dir)) {
            continue;
        }
        if here.as_deref() == Some(dir.as_path()) {
            return Ok(());
        }
        std::env::set_current_dir(&dir)
            .map_err(|e| format!("cannot read the manifests in {}: {e}", dir.display()))?;
        eprintln!(
            "note: reading the plan's manifests ({}) in {}, where the plan was made",
            pf.inputs.join(", "),
            dir.display()
        );
        return Ok(());
    }
    Err(format!(
        "the plan was made from {} in {}, which are not found here: run exctl apply from that directory (the repository's root)",
        pf.inputs.join(", "),
        pf.root
            .as_deref()
            .unwrap_or("an unknown directory (an older plan file)")
    ))
}

fn plan_file(paths: &[PathBuf]) -> Result<Option<(PathBuf, PlanFile)>, String> {
    let mut found = None;
    for p in paths {
        if !p.is_file() {
            continue;
        }
        // Only the beginning decides; manifests are read by the manifest loader.
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        match PlanFile::read(&text) {
            Ok(Some(pf)) => found = Some((p.clone(), pf)),
            Ok(None) => {}
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    match found {
        Some(f) if paths.len() == 1 => Ok(Some(f)),
        Some((p, _)) => Err(format!(
            "{} is a plan file: apply it alone (exctl apply {}), without manifest paths",
            p.display(),
            p.display()
        )),
        None => Ok(None),
    }
}

#[cfg_attr(not(feature = "sim"), allow(dead_code))]
/// Prints apply's events for a person, one line per change of state (a service waited
/// for is said once per state it goes through, not once per poll).
pub(crate) fn print_event(out: Out, seen: &std::sync::Mutex<SeenStates>, e: &Event<'_>) {
    match e {
        Event::HostStarted { host, plan } => {
            out.line(&format!(
                "\nApplying to {host}: {} step{}",
                plan.steps.len(),
                if plan.steps.len() == 1 { "" } else { "s" }
            ));
        }
        Event::HostSkipped { host, reason } => out.line(&format!("\n{host}: {reason}")),
        Event::StepStarted {
            index,
            total,
            step,
            host,
        } => {
            out.line(&format!(
                "  [{index}/{total}] {} ...",
                engine::describe(step)
            ));
            if let Step::Restart(r) = step
                && r.service.disconnects_everyone()
                && r.verb() == "restart"
            {
                out.line(&format!("        {host}: {}", r.service.consequence()));
            }
        }
        Event::Dismounting {
            databases, host, ..
        } => {
            if databases.is_empty() {
                out.line(&format!("        no database is mounted on {host}"));
            } else {
                out.line(&format!(
                    "        databases that dismount now: {}",
                    databases.join(", ")
                ));
            }
        }
        Event::Progress {
            host,
            service,
            status,
            databases,
            elapsed,
            ..
        } => {
            let state = crate::progress::wait_state(status, *databases);
            let new = seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .changed(&format!("{host} {service}"), &state);
            if new {
                out.line(&format!(
                    "        {service}: {state} (after {})",
                    report::duration(*elapsed)
                ));
            }
        }
        Event::Note { text, .. } => out.line(&format!("        note: {text}")),
        Event::StepFinished { result, total, .. } => {
            let what = crate::progress::step_outcome(result);
            out.line(&format!(
                "  [{}/{total}] {}: {what}",
                result.index, result.description
            ));
        }
        Event::HostFinished { .. } => {}
    }
}

/// `3 with an unknown outcome, ` when any step's outcome is unknown.
fn unknown_count(sum: &engine::ApplySummary) -> String {
    if sum.unknown == 0 {
        String::new()
    } else {
        format!("{} with an unknown outcome, ", sum.unknown)
    }
}

fn status_word(s: HostStatus) -> &'static str {
    match s {
        HostStatus::Done => "done",
        HostStatus::Failed => "FAILED",
        HostStatus::Refused => "REFUSED",
        HostStatus::NotAttempted => "not attempted",
        HostStatus::NothingToDo => "nothing to do",
    }
}

/// The summary after apply, for people.
pub(crate) fn text_report(r: &ApplyResult) -> String {
    let mut s = String::new();
    let sum = &r.summary;
    s.push_str(&format!(
        "\nApply: {} done, {} failed, {}{} not attempted, {} skipped.\n",
        sum.done,
        sum.failed,
        unknown_count(sum),
        sum.not_attempted,
        sum.skipped
    ));
    for h in &r.hosts {
        s.push_str(&host_lines(h));
    }
    s.push_str(if r.succeeded() {
        "Apply complete.\n"
    } else {
        "Apply did not complete: see above. Running exctl apply again is safe; exctl plan shows what remains.\n"
    });
    s
}

/// What happened on one host, for people.
fn host_lines(h: &engine::HostResult) -> String {
    let mut s = String::new();
    {
        s.push_str(&format!("{}: {}\n", h.host, status_word(h.status)));
        if let Some(e) = &h.error {
            s.push_str(&format!("  {}\n", for_people(e)));
        }
        for st in &h.steps {
            match st.status {
                StepStatus::Failed => s.push_str(&format!(
                    "  step {} ({}) failed: {}\n",
                    st.index,
                    st.description,
                    for_people(st.error.as_deref().unwrap_or(""))
                )),
                StepStatus::Unknown => {
                    s.push_str(&format!(
                        "  step {} ({}) outcome unknown: {}\n",
                        st.index,
                        st.description,
                        st.error.as_deref().unwrap_or("")
                    ));
                    for n in &st.notes {
                        s.push_str(&format!("    {n}\n"));
                    }
                }
                StepStatus::NotAttempted if h.status != HostStatus::NothingToDo => s.push_str(
                    &format!("  step {} ({}) not attempted\n", st.index, st.description),
                ),
                _ => {}
            }
            if st.status == StepStatus::Failed
                && st.step_type == "restart"
                && Service::parse(&st.id).is_some_and(Service::disconnects_everyone)
            {
                s.push_str(&format!(
                    "  the Information Store of {} did not come back: users may be unable to reach their mailboxes; check Get-MailboxDatabase -Server {} -Status now (exctl plan shows what is still down; exctl apply brings it back)\n",
                    h.host, h.host
                ));
            }
        }
        for svc in &h.pending_restarts {
            s.push_str(&format!(
                "  settings are pending a restart of {svc}: they take effect when it restarts (exctl apply again with --restart auto, or restart it yourself); exctl plan shows it\n"
            ));
        }
        if let Some(v) = &h.verification {
            if v.converged {
                s.push_str("  verified: a fresh plan has nothing left to do\n");
            } else if !v.remaining.is_empty() {
                s.push_str("  a fresh plan still shows:\n");
                for rem in &v.remaining {
                    s.push_str(&format!("    - {rem}\n"));
                }
            }
            for n in &v.notes {
                s.push_str(&format!("  note: {n}\n"));
            }
        }
    }
    s
}

fn print_json(r: &RolloutResult) {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    print!("{s}");
}

/// Asks on the terminal; only `yes` is accepted.
fn confirm(hosts: usize, sites: usize) -> bool {
    eprint!(
        "\nApply these changes to {} in {}? Only 'yes' is accepted: ",
        plural(hosts, "host", "hosts"),
        plural(sites, "site", "sites")
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => line.trim() == "yes",
        Err(_) => false,
    }
}

fn refuse(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitStatus::Failure.into()
}

pub async fn run(mut a: ApplyArgs, clock: Result<LocalClock, ApplyError>) -> ExitCode {
    // A saved plan may move the process to the directory it was made in: paths given
    // here are relative to where exctl was started.
    if let Some(d) = &a.journal_dir
        && d.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        a.journal_dir = Some(cwd.join(d));
    }
    let out = Out {
        json: a.format == ApplyFormat::Json,
    };
    let saved = match plan_file(&a.paths) {
        Ok(s) => s,
        Err(e) => return refuse(&e),
    };
    let clock: Arc<dyn Clock> = match (clock, a.maintenance_window) {
        (Ok(c), _) => Arc::new(c),
        (Err(e), Some(_)) => {
            return refuse(&format!("{e}; --maintenance-window cannot be checked"));
        }
        // Unused without a window.
        (Err(_), None) => Arc::new(FixedClock(0)),
    };
    let paths: Vec<PathBuf> = match &saved {
        Some((file, pf)) => {
            if let Err(e) = read_manifests_where_planned(file, pf) {
                return refuse(&e);
            }
            pf.inputs.iter().map(PathBuf::from).collect()
        }
        None => a.paths.clone(),
    };
    let Some((sources, state)) = crate::plan::load(&paths, a.strict, false) else {
        return ExitStatus::Failure.into();
    };
    // A saved plan is for the sites it was made for.
    let (names, selector) = match &saved {
        Some(_) if !a.select.site.is_empty() || a.select.selector.is_some() => {
            return refuse(
                "a saved plan applies to the sites it was made for: make a new plan with --site or --selector instead",
            );
        }
        Some((_, pf)) => (pf.sites.clone().unwrap_or_default(), None),
        None => (a.select.site.clone(), a.select.selector.as_ref()),
    };
    let sites = match rollout::select(&state, &names, selector) {
        Ok(s) => s,
        Err(e) => return refuse(&e.to_string()),
    };
    // Refuse before connecting to anything (the manifests are checked first, so that
    // their problems are reported): there will be nobody to ask.
    if saved.is_none() && !a.auto_approve && !std::io::stdin().is_terminal() {
        return refuse(
            "refusing to apply without confirmation: there is no terminal to ask on.\n\
             Pass --auto-approve to apply without asking, or apply a saved plan: \
             exctl plan --out FILE, review it, then exctl apply FILE",
        );
    }
    if let Some((file, pf)) = &saved
        && let Err(problems) = pf.check_manifests(&sources)
    {
        eprintln!(
            "error: refusing to apply {}: the manifests changed since the plan was made:",
            file.display()
        );
        for p in problems {
            eprintln!("  {p}");
        }
        eprintln!("Make and review a new plan: exctl plan --out FILE");
        return ExitStatus::Failure.into();
    }
    // The record of this run, before anything connects.
    let journal =
        match journal::directory(a.journal_dir.as_deref()).and_then(|d| Journal::create(&d)) {
            Ok(j) => Arc::new(j),
            Err(e) => return refuse(e.as_str()),
        };
    journal.record(
        "started",
        json!({
            "who": journal::who(),
            "command": "apply",
            "inputs": paths,
            "plan_file": saved.as_ref().map(|(f, _)| f),
            "sites": sites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            "options": {
                "auto_approve": a.auto_approve,
                "restart": match a.restart { RestartArg::Auto => "auto", RestartArg::Never => "never" },
                "restart_timeout_secs": a.restart_timeout.as_secs(),
                "maintenance_window": a.maintenance_window.map(|w| w.to_string()),
                "move_active_databases": a.move_active_databases,
                "parallel": a.parallel,
                "canary": a.canary,
                "batch_size": a.batch_size,
                "max_failures": a.max_failures,
            },
        }),
    );
    let status = apply_journaled(&a, out, clock, &saved, &sources, &state, &sites, &journal).await;
    journal.record("exited", json!({ "exit_code": status.code() }));
    if !out.json {
        eprintln!("journal: {}", journal.path().display());
    }
    status.into()
}

/// The rest of [`run`], once the run has its journal: returns how exctl ends.
#[allow(clippy::too_many_arguments)]
async fn apply_journaled(
    a: &ApplyArgs,
    out: Out,
    clock: Arc<dyn Clock>,
    saved: &Option<(PathBuf, PlanFile)>,
    sources: &exctl_manifest::SourceMap,
    state: &exctl_engine::DesiredState,
    sites: &[&exctl_engine::desired::SiteSpec],
    journal: &Arc<Journal>,
) -> ExitStatus {
    let fail = |msg: &str| {
        eprintln!("error: {msg}");
        journal.record("refused", json!({ "reason": msg }));
        ExitStatus::Failure
    };
    // A host without a usable credential fails its own site (which counts against
    // --max-failures like any site that cannot be planned); the others go on.
    let resolved = match credentials::resolve_each(state, sites) {
        Ok(r) => r,
        // Only an unknown EXCTL_KEYRING: a usage error, nothing was done.
        Err(e) => {
            fail(&e);
            return ExitStatus::Usage;
        }
    };
    let mut winrm = WinRmRunner::new(resolved.passwords);
    winrm.insecure_skip_verify = a.insecure_skip_verify;
    let runner = credentials::WithCredentials {
        inner: winrm,
        missing: resolved.missing,
    };
    let code = apply_with(
        a, out, clock, saved, sources, state, sites, journal, &runner,
    )
    .await;
    // One session per host for the whole run (observe, change, restart, verify, release
    // the lock): ended here, whatever the outcome.
    runner.close().await;
    code
}

/// [`apply_journaled`] once the hosts' runner exists.
#[allow(clippy::too_many_arguments)]
async fn apply_with(
    a: &ApplyArgs,
    out: Out,
    clock: Arc<dyn Clock>,
    saved: &Option<(PathBuf, PlanFile)>,
    sources: &exctl_manifest::SourceMap,
    state: &exctl_engine::DesiredState,
    sites: &[&exctl_engine::desired::SiteSpec],
    journal: &Arc<Journal>,
    runner: &dyn exctl_engine::observe::Runner,
) -> ExitStatus {
    let fail = |msg: &str| {
        eprintln!("error: {msg}");
        journal.record("refused", json!({ "reason": msg }));
        ExitStatus::Failure
    };
    if a.insecure_skip_verify {
        eprintln!("warning: TLS certificate verification is OFF for every host");
    }
    let plan_opts = PlanOptions {
        parallel: a.parallel,
        timeout: Some(a.site_timeout),
    };
    let repo = crate::plan::with_progress(a.progress, sites.len(), async |p: &Arc<Progress>| {
        let sink = |e: &SiteEvent<'_>| p.event(e);
        rollout::plan_sites(state, sites, runner, sources, plan_opts, &sink).await
    })
    .await;
    let text_opts = TextOptions {
        color: !out.json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none(),
        explain: a.explain,
    };
    let shown = if repo.sites.len() == 1 {
        render::text(&repo.plan(), text_opts)
    } else {
        report::text(&repo, text_opts)
    };
    if out.json {
        eprint!("{shown}");
    } else {
        print!("{shown}");
    }
    if let Some((file, pf)) = saved
        && pf.edited
    {
        let edits = PlanFile::new(&repo.plan(), state, sources, &pf.inputs)
            .map(|now| pf.edits_against(&now))
            .unwrap_or_default();
        eprintln!(
            "error: refusing to apply {}: it was edited after exctl wrote it (its digest does not match its content{})",
            file.display(),
            if pf.digest.is_none() {
                ": it has none"
            } else {
                ""
            }
        );
        for e in &edits {
            eprintln!("  {e}");
        }
        eprintln!("Make and review a new plan: exctl plan --out FILE");
        journal.record(
            "refused",
            json!({ "reason": "the plan file was edited", "edits": edits }),
        );
        return ExitStatus::Failure;
    }
    if !repo.has_changes() {
        if repo.has_errors() {
            eprint!("\n{}", report::table(&report::plan_rows(&repo)));
            return fail("some sites could not be observed, and nothing else is to be done");
        }
        out.line("Nothing to do: every host is in its desired state.");
        if out.json {
            let nothing = rollout::RepoPlan::default();
            let r = rollout::apply_sites(
                &nothing,
                state,
                runner,
                sources,
                &ApplyOptions::new(clock),
                RolloutOptions::default(),
                None,
                &|_: &SiteEvent<'_>| {},
            )
            .await;
            print_json(&r);
        }
        journal.record("finished", json!({ "result": "nothing to do" }));
        return ExitStatus::Success;
    }
    let mut opts = ApplyOptions::new(clock);
    opts.restart = match a.restart {
        RestartArg::Auto => RestartPolicy::Auto,
        RestartArg::Never => RestartPolicy::Never,
    };
    opts.maintenance_window = a.maintenance_window;
    opts.restart_timeout = a.restart_timeout;
    opts.move_active_databases = a.move_active_databases;
    opts.lock = Some(exctl_engine::lock::LockOwner {
        holder: journal::holder(),
        run_id: journal.run_id(),
    });
    let whole = repo.plan();
    if opts.restart == RestartPolicy::Never && whole.summary.restart > 0 {
        eprintln!(
            "note: --restart never: the changes are made but no service restarts; settings that need a restart stay pending, and the next plan shows the restart"
        );
    }
    for hp in &whole.hosts {
        let access = state
            .hosts
            .get(&hp.host.to_ascii_uppercase())
            .map_or(exctl_engine::desired::Access::Psrp, |h| h.access);
        if let Some(why) =
            engine::window_refusal(hp, &opts).or_else(|| engine::move_refusal(hp, access, &opts))
        {
            eprintln!("warning: {why}: {} will be refused", hp.host);
        }
    }
    if repo.has_errors() {
        eprintln!(
            "warning: {} could not be planned and will count as failed: {}",
            plural(
                repo.sites.iter().filter(|s| s.has_errors()).count(),
                "site",
                "sites"
            ),
            repo.sites
                .iter()
                .filter(|s| s.has_errors())
                .map(|s| s.site.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    journal.record(
        "planned",
        json!({
            "summary": whole.summary,
            "hosts": whole.hosts.iter().filter(|h| !h.steps.is_empty()).map(|h| h.host.as_str()).collect::<Vec<_>>(),
        }),
    );
    let confirmed_by = if saved.is_some() {
        "a saved plan"
    } else if a.auto_approve {
        "--auto-approve"
    } else {
        let hosts = whole.hosts.iter().filter(|h| !h.steps.is_empty()).count();
        let with = repo.sites.iter().filter(|s| s.has_changes()).count();
        if !confirm(hosts, with) {
            journal.record(
                "cancelled",
                json!({ "reason": "not confirmed on the terminal" }),
            );
            return fail("apply cancelled; nothing was changed");
        }
        "the terminal"
    };
    journal.record("confirmed", json!({ "by": confirmed_by }));
    let rollout_opts = RolloutOptions {
        parallel: a.parallel,
        canary: a.canary,
        batch_size: a.batch_size,
        max_failures: a.max_failures,
        plan_timeout: Some(a.site_timeout),
    };
    let saved_plan = saved.as_ref().map(|(_, pf)| pf);
    let result =
        crate::plan::with_progress(a.progress, repo.sites.len(), async |p: &Arc<Progress>| {
            interrupt_handler(&opts.stop, journal, p);
            let sink = |e: &SiteEvent<'_>| {
                journal_event(journal, e);
                p.event(e)
            };
            rollout::apply_sites(
                &repo,
                state,
                runner,
                sources,
                &opts,
                rollout_opts,
                saved_plan,
                &sink,
            )
            .await
        })
        .await;
    if out.json {
        print_json(&result);
    } else {
        print!("{}", rollout_report(&result));
    }
    journal.record(
        "finished",
        json!({ "result": serde_json::to_value(&result).unwrap_or_default() }),
    );
    if result.succeeded() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}

/// Records in the journal what apply reports as it goes: each step's outcome, each
/// site's end.
fn journal_event(journal: &Journal, e: &SiteEvent<'_>) {
    match e {
        SiteEvent::Apply {
            site,
            event: Event::StepFinished { host, result, .. },
        } => journal.record(
            "step",
            json!({
                "site": site,
                "host": host,
                "index": result.index,
                "description": result.description,
                "status": result.status,
                "error": result.error,
                "notes": result.notes,
                "duration_ms": result.duration_ms,
            }),
        ),
        SiteEvent::Apply {
            site,
            event: Event::HostSkipped { host, reason },
        } => journal.record(
            "host_skipped",
            json!({ "site": site, "host": host, "reason": reason }),
        ),
        SiteEvent::Finished { result } => journal.record(
            "site_finished",
            json!({ "site": result.site, "status": result.status.to_string() }),
        ),
        SiteEvent::NotStarted { site, reason } => journal.record(
            "site_not_started",
            json!({ "site": site, "reason": reason }),
        ),
        _ => {}
    }
}

/// From here on, Ctrl+C stops apply from starting another host or site, and lets the
/// scripts under way finish (a script cut off half-way leaves its host in an unknown
/// state); a second Ctrl+C exits at once, saying so.
fn interrupt_handler(stop: &engine::StopRequest, journal: &Arc<Journal>, progress: &Arc<Progress>) {
    let stop = stop.clone();
    let journal = journal.clone();
    let progress = progress.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        stop.request();
        // Said at once, above the bars (a plain eprintln would be drawn over): what
        // happens next, so that nobody presses again to find out.
        progress.say(&interrupt_message(&progress.hosts_under_way()));
        journal.record("interrupted", json!({ "then": "no host or site starts" }));
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        progress.clear();
        eprintln!(
            "aborted: the apply scripts under way may go on running on their hosts, with outcomes unknown here; run exctl plan to see what they did"
        );
        journal.record(
            "aborted",
            json!({ "exit_code": ExitStatus::Interrupted.code() }),
        );
        std::process::exit(i32::from(ExitStatus::Interrupted.code()));
    });
}

/// What the first Ctrl+C does, naming the hosts whose steps are under way.
pub(crate) fn interrupt_message(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "interrupt: nothing new starts; Ctrl+C again to abort".to_string()
    } else {
        format!(
            "interrupt: finishing the steps under way on {} (so that none is left half-changed); nothing new starts; Ctrl+C again to abort",
            hosts.join(", ")
        )
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The result of a rollout, for people: the details of each site that did not succeed
/// (all of them when there is only one), the summary table, and the outcome.
fn rollout_report(r: &RolloutResult) -> String {
    // One site that ran reads as apply always did.
    if let [site] = r.sites.as_slice()
        && !site.host_results.is_empty()
    {
        return text_report(&r.apply);
    }
    let mut s = String::new();
    let sum = &r.apply.summary;
    s.push_str(&format!(
        "\nApply: {} done, {} failed, {}{} not attempted, {} skipped.\n",
        sum.done,
        sum.failed,
        unknown_count(sum),
        sum.not_attempted,
        sum.skipped
    ));
    let one = r.sites.len() == 1;
    // Every site that ran, with every host's lines (verified, notes, pending restarts):
    // the same lines as for one site, under a heading per site.
    for site in &r.sites {
        let detailed = one || site.status == SiteStatus::Failed || !site.host_results.is_empty();
        if !detailed {
            continue;
        }
        if !one {
            s.push_str(&format!("\nSite {}: {}\n", site.site, site.status));
        }
        if let Some(e) = &site.error
            && (site.host_results.is_empty() || site.status != SiteStatus::Failed)
        {
            s.push_str(&format!("  {e}\n"));
        }
        for h in &site.host_results {
            s.push_str(&host_lines(h));
        }
    }
    let not_started: Vec<&str> = r
        .sites
        .iter()
        .filter(|x| x.status == SiteStatus::NotStarted)
        .map(|x| x.site.as_str())
        .collect();
    if !not_started.is_empty() {
        let why = r
            .sites
            .iter()
            .find(|x| x.status == SiteStatus::NotStarted)
            .and_then(|x| x.error.clone())
            .unwrap_or_default();
        s.push_str(&format!(
            "\nNot started ({}): {}\n  {why}\n",
            not_started.len(),
            not_started.join(", ")
        ));
    }
    if !one {
        s.push('\n');
        s.push_str(&report::table(&report::rollout_rows(r)));
    }
    let k = &r.rollout;
    s.push_str(&if r.succeeded() {
        format!(
            "\nApply complete: {} done, {} without changes.\n",
            plural(k.done, "site", "sites"),
            k.nothing_to_do
        )
    } else {
        format!(
            "\nApply did not complete: {} failed, {} not started, {} done. Running exctl apply again is safe; exctl plan shows what remains.\n",
            plural(k.failed, "site", "sites"),
            k.not_started,
            k.done
        )
    });
    s
}
