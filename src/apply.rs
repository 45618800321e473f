//! `exctl apply`: manifests (a fresh plan, confirmed) or a saved plan file (checked
//! against the manifests and the servers), then the changes host by host with their
//! restarts, then a fresh plan to show what converged.
//!
//! Exit codes: 0 success (every step done or skipped by `--restart never`, and every
//! host converged or only waits for what was expected), 1 anything else: a refusal
//! (no confirmation, stale plan, changed manifests, maintenance window), a failed step,
//! a host that did not converge.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use exctl_engine::apply::{
    self as engine, ApplyError, ApplyOptions, ApplyResult, Clock, Event, FixedClock, HostStatus,
    LocalClock, RestartPolicy, Service, StepStatus,
};
use exctl_engine::plan::{Plan, Step};
use exctl_engine::planfile::PlanFile;
use exctl_engine::render::{self, TextOptions};
use exctl_engine::winrm::WinRmRunner;

use crate::cli::{ApplyArgs, ApplyFormat, RestartArg};

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

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

pub(crate) fn print_event(out: Out, e: &Event<'_>) {
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
                && r.service == Service::InformationStore
            {
                out.line(&format!(
                    "        {host}: {}",
                    Service::InformationStore.consequence()
                ));
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
            service,
            status,
            databases,
            elapsed,
            ..
        } => {
            let dbs = databases
                .map(|(m, t)| format!(", {m} of {t} databases mounted"))
                .unwrap_or_default();
            out.line(&format!(
                "        waiting for {service}: {status}{dbs}, {} s",
                elapsed.as_secs()
            ));
        }
        Event::Note { text, .. } => out.line(&format!("        note: {text}")),
        Event::StepFinished { result, total, .. } => {
            let d = result.duration_ms.map(secs).unwrap_or_default();
            let what = match result.status {
                StepStatus::Done => format!("done ({d})"),
                StepStatus::Failed => format!(
                    "FAILED after {d}: {}",
                    result.error.as_deref().unwrap_or("(no error text)")
                ),
                StepStatus::NotAttempted => "not attempted".into(),
                StepStatus::Skipped => "skipped".into(),
            };
            out.line(&format!(
                "  [{}/{total}] {}: {what}",
                result.index, result.description
            ));
        }
        Event::HostFinished { .. } => {}
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
        "\nApply: {} done, {} failed, {} not attempted, {} skipped.\n",
        sum.done, sum.failed, sum.not_attempted, sum.skipped
    ));
    for h in &r.hosts {
        s.push_str(&format!("{}: {}\n", h.host, status_word(h.status)));
        if let Some(e) = &h.error {
            s.push_str(&format!("  {e}\n"));
        }
        for st in &h.steps {
            match st.status {
                StepStatus::Failed => s.push_str(&format!(
                    "  step {} ({}) failed: {}\n",
                    st.index,
                    st.description,
                    st.error.as_deref().unwrap_or("")
                )),
                StepStatus::NotAttempted if h.status != HostStatus::NothingToDo => s.push_str(
                    &format!("  step {} ({}) not attempted\n", st.index, st.description),
                ),
                _ => {}
            }
            if st.status == StepStatus::Failed
                && st.step_type == "restart"
                && st.id == Service::InformationStore.name()
            {
                s.push_str(&format!(
                    "  the Information Store of {} did not come back: users may be unable to reach their mailboxes; check Get-MailboxDatabase -Server {} -Status now\n",
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
    s.push_str(if r.succeeded() {
        "Apply complete.\n"
    } else {
        "Apply did not complete: see above. Running exctl apply again is safe; exctl plan shows what remains.\n"
    });
    s
}

fn print_json(r: &ApplyResult) {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    print!("{s}");
}

/// Asks on the terminal; only `yes` is accepted.
fn confirm(hosts: usize) -> bool {
    eprint!(
        "\nApply these changes to {hosts} host{}? Only 'yes' is accepted: ",
        if hosts == 1 { "" } else { "s" }
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
    ExitCode::from(1)
}

pub async fn run(a: ApplyArgs, clock: Result<LocalClock, ApplyError>) -> ExitCode {
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
        Some((_, pf)) => pf.inputs.iter().map(PathBuf::from).collect(),
        None => a.paths.clone(),
    };
    let Some((sources, state)) = crate::plan::load(&paths, a.strict, false) else {
        return ExitCode::from(1);
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
        return ExitCode::from(1);
    }
    let passwords = match crate::plan::passwords(&state) {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    let mut runner = WinRmRunner::new(passwords);
    runner.insecure_skip_verify = a.insecure_skip_verify;
    if a.insecure_skip_verify {
        eprintln!("warning: TLS certificate verification is OFF for every host");
    }
    let plan = exctl_engine::observe::plan(&state, &runner, &sources, a.parallel).await;
    let text_opts = TextOptions {
        color: !out.json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none(),
    };
    if plan.has_errors() {
        eprint!("{}", render::text(&plan, TextOptions::default()));
        return refuse("some hosts could not be observed; nothing was applied");
    }
    if let Some((file, pf)) = &saved
        && let Err(moved) = pf.check_fresh(&plan)
    {
        eprintln!(
            "error: refusing to apply {}: the plan is stale, the servers changed since it was made:",
            file.display()
        );
        for m in moved {
            eprintln!("  {m}");
        }
        eprintln!("Make and review a new plan: exctl plan --out FILE");
        return ExitCode::from(1);
    }
    let mut opts = ApplyOptions::new(clock);
    opts.restart = match a.restart {
        RestartArg::Auto => RestartPolicy::Auto,
        RestartArg::Never => RestartPolicy::Never,
    };
    opts.maintenance_window = a.maintenance_window;
    opts.restart_timeout = a.restart_timeout;
    opts.move_active_databases = a.move_active_databases;

    let shown = render::text(&plan, text_opts);
    if out.json {
        eprint!("{shown}");
    } else {
        print!("{shown}");
    }
    if !plan.has_changes() {
        out.line("Nothing to do: every host is in its desired state.");
        let mut result = empty_result(&plan, opts.restart);
        result.summarize();
        if out.json {
            print_json(&result);
        }
        return ExitCode::SUCCESS;
    }
    if opts.restart == RestartPolicy::Never && plan.summary.restart > 0 {
        eprintln!(
            "note: --restart never: the changes are made but no service restarts; settings that need a restart stay pending, and the next plan shows the restart"
        );
    }
    for hp in &plan.hosts {
        if let Some(why) = engine::window_refusal(hp, &opts) {
            eprintln!("warning: {why}: {} will be refused", hp.host);
        }
    }
    if saved.is_none() && !a.auto_approve {
        let hosts = plan.hosts.iter().filter(|h| !h.steps.is_empty()).count();
        if !confirm(hosts) {
            return refuse("apply cancelled; nothing was changed");
        }
    }
    let sink = move |e: &Event<'_>| print_event(out, e);
    let mut result = match engine::apply(&plan, &state.hosts, &runner, &opts, &sink).await {
        Ok(r) => r,
        Err(e) => return refuse(&e.to_string()),
    };
    // Verify: what a fresh plan says now.
    let fresh = exctl_engine::observe::plan(&state, &runner, &sources, a.parallel).await;
    engine::verify(&mut result, &fresh);
    if out.json {
        print_json(&result);
    } else {
        print!("{}", text_report(&result));
    }
    if result.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn empty_result(plan: &Plan, restart: RestartPolicy) -> ApplyResult {
    ApplyResult {
        format_version: engine::RESULT_FORMAT_VERSION,
        exctl_version: env!("CARGO_PKG_VERSION"),
        restart_policy: restart,
        hosts: plan
            .hosts
            .iter()
            .map(|h| engine::HostResult {
                host: h.host.clone(),
                status: HostStatus::NothingToDo,
                error: None,
                steps: Vec::new(),
                pending_restarts: Vec::new(),
                duration_ms: 0,
                verification: None,
            })
            .collect(),
        summary: Default::default(),
    }
}
