//! Progress of a run over many sites, on stderr: on a terminal a live bar per running
//! site under the lines already finished (indicatif's `MultiProgress`, which sizes the
//! bars to the terminal, redraws them and prints finished lines above them), elsewhere
//! one line per change of state for logs: a site starts, a service waited for changes
//! state (once per state, never once per poll), a step or a site ends, with its
//! duration. Only what the engine reports is shown: host errors and step results, which
//! never carry a credential (see `crates/engine/src/apply.rs`).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use exctl_engine::apply::{Event, StepStatus};
use exctl_engine::render::for_people;
use exctl_engine::report;
use exctl_engine::rollout::{Phase, SiteEvent, SiteStatus};

use crate::cli::ProgressArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Off,
}

struct Running {
    site: String,
    phase: Phase,
    bar: ProgressBar,
}

struct Inner {
    running: Vec<Running>,
    total: usize,
    finished: usize,
    failed: usize,
    /// The last state said of each service waited for, so each is said once.
    seen: SeenStates,
    /// The hosts whose steps are under way, in the order they started.
    busy: Vec<String>,
}

/// The progress display of one run.
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
    /// The line under the bars: how many sites finished.
    status: Option<ProgressBar>,
    inner: Mutex<Inner>,
}

/// Progress is one line per event: the rest of a message (a hint) is in the report.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn secs(d: Duration) -> String {
    report::duration(d)
}

/// The states of the services waited for, as last said: a restart polls every few
/// seconds, and a log wants a line when the state changes, not one per poll.
#[derive(Default)]
pub(crate) struct SeenStates(Vec<(String, String)>);

impl SeenStates {
    /// Whether `state` is new for `key` (and remembers it).
    pub(crate) fn changed(&mut self, key: &str, state: &str) -> bool {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, s)) if s == state => false,
            Some((_, s)) => {
                *s = state.to_string();
                true
            }
            None => {
                self.0.push((key.to_string(), state.to_string()));
                true
            }
        }
    }
}

/// `StartPending, 0 of 1 databases mounted`: what a waited-for service is at.
pub(crate) fn wait_state(status: &str, databases: Option<(usize, usize)>) -> String {
    let dbs = databases
        .map(|(m, t)| format!(", {m} of {t} databases mounted"))
        .unwrap_or_default();
    format!("{status}{dbs}")
}

fn bar_style() -> ProgressStyle {
    // `{wide_msg}` takes the rest of the line and is cut to the terminal's width.
    ProgressStyle::with_template("  {spinner} {prefix}  {elapsed:>4}  {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

impl Progress {
    /// A display for `total` sites, as `--progress` says.
    pub fn new(arg: ProgressArg, total: usize) -> Progress {
        let tty =
            std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let mode = match arg {
            ProgressArg::Auto if tty => Mode::Bars,
            ProgressArg::Auto | ProgressArg::Lines => Mode::Lines,
            ProgressArg::Bars if tty => Mode::Bars,
            ProgressArg::Bars => Mode::Lines,
            ProgressArg::None => Mode::Off,
        };
        let multi = if mode == Mode::Bars {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        let status = (mode == Mode::Bars).then(|| {
            let s = multi.add(ProgressBar::new_spinner());
            s.set_style(
                ProgressStyle::with_template("  {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            s
        });
        let p = Progress {
            mode,
            multi,
            status,
            inner: Mutex::new(Inner {
                running: Vec::new(),
                total,
                finished: 0,
                failed: 0,
                seen: SeenStates::default(),
                busy: Vec::new(),
            }),
        };
        p.update_status(&p.lock());
        p
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints a line (above the bars on a terminal).
    pub fn line(&self, line: &str) {
        match self.mode {
            Mode::Off => {}
            Mode::Lines => {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{line}");
            }
            Mode::Bars => {
                let _ = self.multi.println(line);
            }
        }
    }

    /// Says something that must be read whatever `--progress` is (the Ctrl+C message):
    /// above the bars on a terminal, a plain line otherwise.
    pub fn say(&self, line: &str) {
        if self.mode == Mode::Bars {
            let _ = self.multi.println(line);
        } else {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{line}");
        }
    }

    /// The hosts whose steps are under way (for the Ctrl+C message).
    pub fn hosts_under_way(&self) -> Vec<String> {
        self.lock().busy.clone()
    }

    /// Removes the bars, before the results are printed.
    pub fn clear(&self) {
        if self.mode != Mode::Bars {
            return;
        }
        let mut inner = self.lock();
        for r in inner.running.drain(..) {
            r.bar.finish_and_clear();
            self.multi.remove(&r.bar);
        }
        if let Some(s) = &self.status {
            s.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    fn update_status(&self, inner: &Inner) {
        if let Some(s) = &self.status {
            s.set_message(format!(
                "{}/{} sites finished, {} running{}",
                inner.finished,
                inner.total,
                inner.running.len(),
                if inner.failed > 0 {
                    format!(", {} failed", inner.failed)
                } else {
                    String::new()
                }
            ));
        }
    }

    /// Shows `detail` on the bar of `site` (started when it has none), its clock set
    /// back when the phase changes.
    fn set(&self, inner: &mut Inner, site: &str, phase: Phase, detail: String) {
        if self.mode != Mode::Bars {
            return;
        }
        match inner.running.iter_mut().find(|r| r.site == site) {
            Some(r) => {
                if r.phase != phase {
                    r.phase = phase;
                    r.bar.reset_elapsed();
                }
                r.bar.set_message(format!("{phase} {detail}"));
            }
            None => {
                let bar = match &self.status {
                    Some(s) => self.multi.insert_before(s, ProgressBar::new_spinner()),
                    None => self.multi.add(ProgressBar::new_spinner()),
                };
                bar.set_style(bar_style());
                bar.set_prefix(site.to_string());
                bar.set_message(format!("{phase} {detail}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                inner.running.push(Running {
                    site: site.to_string(),
                    phase,
                    bar,
                });
            }
        }
        self.update_status(inner);
    }

    fn done(&self, inner: &mut Inner, site: &str, failed: bool) {
        if let Some(i) = inner.running.iter().position(|r| r.site == site) {
            let r = inner.running.remove(i);
            r.bar.finish_and_clear();
            self.multi.remove(&r.bar);
        }
        inner.finished += 1;
        if failed {
            inner.failed += 1;
        }
        self.update_status(inner);
    }

    /// Shows what the engine reported.
    pub fn event(&self, e: &SiteEvent<'_>) {
        let mut inner = self.lock();
        // Which hosts are under way, in every mode (the Ctrl+C message names them).
        match e {
            SiteEvent::Apply {
                event: Event::HostStarted { host, .. },
                ..
            } => inner.busy.push(host.to_string()),
            SiteEvent::Apply {
                event: Event::HostFinished { result },
                ..
            } => inner.busy.retain(|h| *h != result.host),
            _ => {}
        }
        if self.mode == Mode::Off {
            return;
        }
        match e {
            SiteEvent::Started { site, phase, hosts } => {
                let detail = format!("{hosts} host{}", if *hosts == 1 { "" } else { "s" });
                if self.mode == Mode::Lines {
                    self.line(&format!("[{site}] {phase}: {detail}"));
                }
                self.set(&mut inner, site, *phase, detail);
            }
            SiteEvent::Planned { plan } => {
                let failed = plan.has_errors();
                self.done(&mut inner, &plan.site, failed);
                let line = if let Some(err) = plan.first_error() {
                    format!(
                        "[{}] ERROR after {}: {}",
                        plan.site,
                        secs(plan.duration),
                        first_line(&for_people(&err))
                    )
                } else {
                    format!(
                        "[{}] planned in {}: {} change{}, {} restart{}",
                        plan.site,
                        secs(plan.duration),
                        plan.changes(),
                        if plan.changes() == 1 { "" } else { "s" },
                        plan.restarts(),
                        if plan.restarts() == 1 { "" } else { "s" }
                    )
                };
                self.line(&line);
            }
            SiteEvent::Apply { site, event } => self.apply_event(&mut inner, site, event),
            SiteEvent::Finished { result } => {
                self.done(
                    &mut inner,
                    &result.site,
                    result.status == SiteStatus::Failed,
                );
                let took = secs(Duration::from_millis(result.duration_ms));
                let line = match (result.status, &result.error) {
                    (SiteStatus::Failed, Some(e)) => {
                        let e = for_people(e);
                        format!("[{}] FAILED after {took}: {}", result.site, first_line(&e))
                    }
                    (SiteStatus::NothingToDo, _) => format!("[{}] no changes", result.site),
                    (s, _) => format!("[{}] {s} in {took}", result.site),
                };
                self.line(&line);
            }
            SiteEvent::NotStarted { site, reason } => {
                self.line(&format!("[{site}] not started: {reason}"));
            }
        }
    }

    fn apply_event(&self, inner: &mut Inner, site: &str, e: &Event<'_>) {
        let line = match e {
            Event::HostStarted { host, plan } => {
                self.set(
                    inner,
                    site,
                    Phase::Apply,
                    format!("{host}: {} steps", plan.steps.len()),
                );
                None
            }
            Event::HostSkipped { host, reason } => Some(format!("[{site}] {host}: {reason}")),
            Event::StepStarted {
                host,
                index,
                total,
                step,
            } => {
                self.set(
                    inner,
                    site,
                    Phase::Apply,
                    format!(
                        "{host} [{index}/{total}] {}",
                        exctl_engine::apply::describe(step)
                    ),
                );
                None
            }
            Event::StepFinished {
                host,
                total,
                result,
            } => {
                let what = step_outcome(result);
                Some(format!(
                    "[{site}] {host} [{}/{total}] {}: {what}",
                    result.index, result.description
                ))
            }
            Event::Dismounting {
                host, databases, ..
            } => Some(if databases.is_empty() {
                format!("[{site}] {host}: no database is mounted")
            } else {
                format!(
                    "[{site}] {host}: databases that dismount now: {}",
                    databases.join(", ")
                )
            }),
            Event::Progress {
                host,
                service,
                status,
                databases,
                elapsed,
                ..
            } => {
                let state = wait_state(status, *databases);
                if self.mode == Mode::Bars {
                    self.set(
                        inner,
                        site,
                        Phase::Apply,
                        format!("{host} waiting for {service}: {state}"),
                    );
                    None
                } else if inner
                    .seen
                    .changed(&format!("{site} {host} {service}"), &state)
                {
                    Some(format!(
                        "[{site}] {host} {service}: {state} (after {})",
                        secs(*elapsed)
                    ))
                } else {
                    None
                }
            }
            Event::Note { host, text, .. } => Some(format!("[{site}] {host}: note: {text}")),
            Event::HostFinished { .. } => None,
        };
        if let Some(l) = line {
            self.line(&l);
        }
    }
}

/// How a finished step reads in progress lines: `done (1.2 s)`, `FAILED after 3.0 s: ...`.
pub(crate) fn step_outcome(result: &exctl_engine::apply::StepResult) -> String {
    let d = result
        .duration_ms
        .map(|ms| secs(Duration::from_millis(ms)))
        .unwrap_or_default();
    let error = for_people(result.error.as_deref().unwrap_or("(no error text)"));
    match result.status {
        StepStatus::Done => format!("done ({d})"),
        StepStatus::Failed => format!("FAILED after {d}: {error}"),
        StepStatus::Unknown => format!("OUTCOME UNKNOWN: {error}"),
        StepStatus::NotAttempted => "not attempted".into(),
        StepStatus::Skipped => "skipped".into(),
    }
}
