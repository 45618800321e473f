//! Progress of a run over many sites, on stderr: on a terminal a live line per running
//! site under the lines already finished (a simple redraw, no dependency), elsewhere one
//! line per site event for logs. Only what the engine reports is shown: host errors and
//! step results, which never carry a credential (see `crates/engine/src/apply.rs`).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use exctl_engine::apply::{Event, StepStatus};
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
    detail: String,
    since: Instant,
}

struct Inner {
    running: Vec<Running>,
    drawn: usize,
    total: usize,
    finished: usize,
    failed: usize,
    tick: usize,
}

/// The progress display of one run.
pub struct Progress {
    mode: Mode,
    inner: Mutex<Inner>,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|w| *w >= 40)
        .unwrap_or(100)
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(max.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// Progress is one line per event: the rest of a message (a hint) is in the report.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn secs(d: Duration) -> String {
    report::duration(d)
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
        Progress {
            mode,
            inner: Mutex::new(Inner {
                running: Vec::new(),
                drawn: 0,
                total,
                finished: 0,
                failed: 0,
                tick: 0,
            }),
        }
    }

    /// Whether the display redraws (and wants [`Progress::tick`] called).
    pub fn live(&self) -> bool {
        self.mode == Mode::Bars
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints a finished line (above the live lines on a terminal).
    fn emit(&self, inner: &mut Inner, line: &str) {
        match self.mode {
            Mode::Off => {}
            Mode::Lines => {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, "{line}");
            }
            Mode::Bars => {
                let mut e = std::io::stderr().lock();
                erase(&mut e, inner.drawn);
                inner.drawn = 0;
                let _ = writeln!(e, "{line}");
                draw(&mut e, inner);
            }
        }
    }

    /// Redraws the live lines (elapsed times move on).
    pub fn tick(&self) {
        if self.mode != Mode::Bars {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let mut e = std::io::stderr().lock();
        erase(&mut e, inner.drawn);
        draw(&mut e, &mut inner);
    }

    /// Removes the live lines, before the results are printed.
    pub fn clear(&self) {
        if self.mode != Mode::Bars {
            return;
        }
        let mut inner = self.lock();
        let mut e = std::io::stderr().lock();
        erase(&mut e, inner.drawn);
        inner.drawn = 0;
        inner.running.clear();
    }

    fn set(&self, inner: &mut Inner, site: &str, phase: Phase, detail: String) {
        match inner.running.iter_mut().find(|r| r.site == site) {
            Some(r) => {
                if r.phase != phase {
                    r.since = Instant::now();
                }
                r.phase = phase;
                r.detail = detail;
            }
            None => inner.running.push(Running {
                site: site.to_string(),
                phase,
                detail,
                since: Instant::now(),
            }),
        }
    }

    fn done(&self, inner: &mut Inner, site: &str, failed: bool) {
        inner.running.retain(|r| r.site != site);
        inner.finished += 1;
        if failed {
            inner.failed += 1;
        }
    }

    /// Shows what the engine reported.
    pub fn event(&self, e: &SiteEvent<'_>) {
        if self.mode == Mode::Off {
            return;
        }
        let mut inner = self.lock();
        match e {
            SiteEvent::Started { site, phase, hosts } => {
                let detail = format!("{hosts} host{}", if *hosts == 1 { "" } else { "s" });
                self.set(&mut inner, site, *phase, detail);
                if self.mode == Mode::Lines && *phase != Phase::Plan {
                    let line = format!("[{site}] {phase}");
                    self.emit(&mut inner, &line);
                } else {
                    self.redraw(&mut inner);
                }
            }
            SiteEvent::Planned { plan } => {
                let failed = plan.has_errors();
                self.done(&mut inner, &plan.site, failed);
                let line = if let Some(err) = plan.first_error() {
                    format!(
                        "[{}] ERROR after {}: {}",
                        plan.site,
                        secs(plan.duration),
                        first_line(&err)
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
                self.emit(&mut inner, &line);
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
                        format!("[{}] FAILED after {took}: {}", result.site, first_line(e))
                    }
                    (SiteStatus::NothingToDo, _) => format!("[{}] no changes", result.site),
                    (s, _) => format!("[{}] {s} in {took}", result.site),
                };
                self.emit(&mut inner, &line);
            }
            SiteEvent::NotStarted { site, reason } => {
                let line = format!("[{site}] not started: {reason}");
                self.emit(&mut inner, &line);
            }
        }
    }

    fn redraw(&self, inner: &mut Inner) {
        if self.mode != Mode::Bars {
            return;
        }
        let mut e = std::io::stderr().lock();
        erase(&mut e, inner.drawn);
        draw(&mut e, inner);
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
                let dbs = databases
                    .map(|(m, t)| format!(", {m} of {t} databases mounted"))
                    .unwrap_or_default();
                let text = format!(
                    "{host} waiting for {service}: {status}{dbs}, {} s",
                    elapsed.as_secs()
                );
                if self.mode == Mode::Bars {
                    self.set(inner, site, Phase::Apply, text);
                    None
                } else {
                    Some(format!("[{site}] {text}"))
                }
            }
            Event::Note { host, text, .. } => Some(format!("[{site}] {host}: note: {text}")),
            Event::HostFinished { .. } => None,
        };
        match line {
            Some(l) => self.emit(inner, &l),
            None => self.redraw(inner),
        }
    }
}

fn erase(e: &mut impl Write, lines: usize) {
    if lines > 0 {
        // Up to the first live line, then clear to the end of the screen.
        let _ = write!(e, "\x1b[{lines}A\r\x1b[J");
    }
}

fn draw(e: &mut impl Write, inner: &mut Inner) {
    let w = width();
    let name_w = inner
        .running
        .iter()
        .map(|r| r.site.chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let spin = SPINNER[inner.tick % SPINNER.len()];
    let mut n = 0;
    for r in &inner.running {
        let line = format!(
            "  {spin} {:<name_w$}  {:>7}  {} {}",
            cut(&r.site, name_w),
            secs(r.since.elapsed()),
            r.phase,
            r.detail
        );
        let _ = writeln!(e, "{}", cut(&line, w.saturating_sub(1)));
        n += 1;
    }
    let status = format!(
        "  {}/{} sites finished, {} running{}",
        inner.finished,
        inner.total,
        inner.running.len(),
        if inner.failed > 0 {
            format!(", {} failed", inner.failed)
        } else {
            String::new()
        }
    );
    let _ = writeln!(e, "{}", cut(&status, w.saturating_sub(1)));
    n += 1;
    let _ = e.flush();
    inner.drawn = n;
}

/// How a finished step reads in progress lines: `done (1.2 s)`, `FAILED after 3.0 s: ...`.
pub(crate) fn step_outcome(result: &exctl_engine::apply::StepResult) -> String {
    let d = result
        .duration_ms
        .map(|ms| secs(Duration::from_millis(ms)))
        .unwrap_or_default();
    let error = result.error.as_deref().unwrap_or("(no error text)");
    match result.status {
        StepStatus::Done => format!("done ({d})"),
        StepStatus::Failed => format!("FAILED after {d}: {error}"),
        StepStatus::Unknown => format!("OUTCOME UNKNOWN: {error}"),
        StepStatus::NotAttempted => "not attempted".into(),
        StepStatus::Skipped => "skipped".into(),
    }
}
