//! Apply: running a plan's steps on each host, in order, stopping at the first failure.
//!
//! # One script per host
//!
//! Each host gets one apply script, run in the host's PowerShell session (see [`crate::winrm`]):
//!
//! ```text
//! (made by crate::script::ScriptBuilder, which owns the preamble and the end)
//! <record PRELUDE>                 __exctl_emit (see exctl_exchange::record)
//! function __exctl_error_text ...  the server's own error text of an error record
//! try { <Exchange prologue> } catch { __exctl_emit '__apply_error' '0' <text>; throw }
//! $__exctl_ok = $true
//! # exctl step 1: IMAP4 settings EX01
//! if ($__exctl_ok) {
//!   __exctl_emit '__apply' '1' 'start'
//!   try {
//!     $null = Set-ImapSettings -Server 'EX01' -MaxConnectionsPerUser 40   (the step's commands)
//!     <mark MSExchangeIMAP4 restart due>                         (changes that need one)
//!     __exctl_emit '__apply' '1' 'ok'
//!   } catch {
//!     $__exctl_ok = $false
//!     __exctl_emit '__apply_error' '1' (__exctl_error_text $_)
//!   }
//! }
//! # exctl step 2: restart MSExchangeIMAP4
//! if ($__exctl_ok) { ... restart body (see crate::restart) ... }
//! ```
//!
//! The first failure clears `$__exctl_ok`, so nothing after it runs. Records stream back
//! as the host prints them ([`Runner::run_streaming`]), so each step is reported as it
//! completes, with its duration measured here, and the waits of restarts report progress
//! (`__progress`, `__missing`, `__dismount`, `__note`: see [`crate::restart`]). A step
//! that started and never reported (the connection dropped, the process died) is failed
//! with what is known: the decoded CLIXML stderr. When the transport says the host may
//! have acted ([`crate::observe::RunError::is_outcome_unknown`]: the connection was lost
//! after the script was sent), the step under way and every later one is `unknown`, not
//! failed or not attempted, since the script may have gone on on the host; the host
//! fails, nothing after it runs, and the fresh observation that follows (the
//! verification) says of each such step whether its change is in place.
//!
//! Every step's script is idempotent (a `Set-*` to the desired value; a restart), so
//! running apply again is always safe, and a re-plan shows exactly what remains.
//!
//! # Restarts
//!
//! The plan places them (IMAP4 after the IMAP settings, POP3 after the POP settings, the
//! Information Store last).
//! [`RestartPolicy::Never`] leaves them out of the script and reports them as skipped and
//! pending; the servers remember that they are due (see [`crate::restart`]) so the next
//! plan shows them. A [`MaintenanceWindow`] refuses a host whose plan restarts the
//! Information Store outside the window, before anything runs on that host; it is checked
//! with this machine's local time when the host starts.
//!
//! # Hosts
//!
//! Hosts run one after another, in plan order. After a host fails (or is refused), the
//! remaining hosts are not attempted: a rollout stops on the first failure.
//!
//! # Result
//!
//! [`ApplyResult`] (JSON `format_version` [`RESULT_FORMAT_VERSION`]): per host a status
//! (`done`, `failed`, `refused`, `not_attempted`, `nothing_to_do`), per step `done`,
//! `failed` (with the server's error text), `unknown` (the connection was lost while it
//! ran or before it reported, with what the fresh observation after apply says of it),
//! `not_attempted` or `skipped` (a restart left
//! out by `--restart never`), durations in milliseconds, the restarts still pending, and
//! the verification: a fresh plan after apply, empty when the host converged, otherwise
//! what still differs and why ([`verify`]). Sensitive values are masked in every text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use exctl_exchange::kind::Service;
use exctl_exchange::record::{self, Observations};
use exctl_exchange::value::{RawValue, Value};

use crate::desired::{Access, HostSpec};
use crate::observe::Runner;
use crate::plan::{HostPlan, Plan, Step};
use crate::restart::{self, RestartScriptOptions};
use crate::script::{ScriptBuilder, command_lines};

/// The version of the JSON apply result. Bumped only on incompatible changes.
pub const RESULT_FORMAT_VERSION: u32 = 1;

/// The record resource a step reports `start` and `ok` under (attribute: step number).
pub const APPLY_RECORD: &str = "__apply";
/// The record resource a step reports its failure under (attribute: step number; `0`:
/// the Exchange cmdlets could not be loaded).
pub const APPLY_ERROR_RECORD: &str = "__apply_error";

/// Errors of apply's inputs; failures on hosts are results, not errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A maintenance window that is not `HH:MM-HH:MM`.
    #[error(
        "invalid maintenance window '{0}': expected HH:MM-HH:MM in this machine's local time, e.g. 22:00-04:00"
    )]
    Window(String),
    /// A restart timeout that is not a duration.
    #[error("invalid duration '{0}': expected seconds, or a number with s, m or h (e.g. 15m)")]
    Duration(String),
    /// The local time zone could not be determined.
    #[error("cannot determine this machine's local time zone: {0}")]
    LocalTime(String),
    /// Some hosts could not be planned: nothing is applied.
    #[error("{0} host(s) could not be planned; nothing was applied")]
    PlanHasErrors(usize),
    /// The plan names a host the inventory does not have.
    #[error("the plan names host {0}, which the inventory does not declare")]
    UnknownHost(String),
}

/// What to do with the restarts a plan contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// Run them where the plan places them.
    Auto,
    /// Apply the changes, skip the restarts, and report the settings as pending.
    Never,
}

/// A daily window of local time, `HH:MM-HH:MM`; it may span midnight (`22:00-04:00`).
/// The start is inside, the end is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    start: u16,
    end: u16,
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl FromStr for MaintenanceWindow {
    type Err = ApplyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ApplyError::Window(s.to_string());
        let (a, b) = s.split_once('-').ok_or_else(err)?;
        let (start, end) = (
            parse_hhmm(a).ok_or_else(err)?,
            parse_hhmm(b).ok_or_else(err)?,
        );
        if start == end {
            return Err(err());
        }
        Ok(MaintenanceWindow { start, end })
    }
}

impl MaintenanceWindow {
    /// Whether `minute` (since local midnight) is inside.
    pub fn contains(&self, minute: u16) -> bool {
        if self.start < self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

/// Reads `900`, `900s`, `15m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, ApplyError> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num.parse().map_err(|_| ApplyError::Duration(s.into()))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| ApplyError::Duration(s.into()))?;
    Ok(Duration::from_secs(secs))
}

/// This machine's local time of day.
pub trait Clock: Send + Sync {
    /// Minutes since local midnight.
    fn minute_of_day(&self) -> u16;
}

/// The local clock of the jump host. The UTC offset is read once, by [`LocalClock::capture`]:
/// on Unix it can be read only while the process is single-threaded, so the CLI captures it
/// before starting its runtime. (A change of daylight saving time during a run is not seen.)
#[derive(Debug, Clone, Copy)]
pub struct LocalClock {
    offset: time::UtcOffset,
}

impl LocalClock {
    /// Reads the local UTC offset. Call before starting threads.
    pub fn capture() -> Result<LocalClock, ApplyError> {
        time::UtcOffset::current_local_offset()
            .map(|offset| LocalClock { offset })
            .map_err(|e| ApplyError::LocalTime(e.to_string()))
    }
}

impl Clock for LocalClock {
    fn minute_of_day(&self) -> u16 {
        let now = time::OffsetDateTime::now_utc().to_offset(self.offset);
        u16::from(now.hour()) * 60 + u16::from(now.minute())
    }
}

/// A clock that always says the same time (tests, dry runs).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u16);

impl Clock for FixedClock {
    fn minute_of_day(&self) -> u16 {
        self.0
    }
}

/// A request from outside to stop (the operator pressed Ctrl+C): no host or site starts
/// after it, and what runs goes on to its end, since a script cut off half-way would
/// leave its host in an unknown state.
#[derive(Debug, Clone, Default)]
pub struct StopRequest(Arc<std::sync::atomic::AtomicBool>);

impl StopRequest {
    /// Asks apply to stop starting hosts and sites.
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Why a host did not start after a [`StopRequest`].
pub const STOPPED_BY_OPERATOR: &str = "stopped by the operator (interrupt) before it started";

/// How apply behaves.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Run or skip restarts.
    pub restart: RestartPolicy,
    /// When the Information Store may restart.
    pub maintenance_window: Option<MaintenanceWindow>,
    /// How long a restarted service may take to come back.
    pub restart_timeout: Duration,
    /// Seconds between two polls while waiting.
    pub poll_interval: Duration,
    /// Move active DAG databases away before the IS restart.
    pub move_active_databases: bool,
    /// This machine's local time, for the maintenance window.
    pub clock: Arc<dyn Clock>,
    /// Set from outside to start nothing more.
    pub stop: StopRequest,
    /// Who takes each host's lock (see [`crate::lock`]); `None`: no lock (tests).
    pub lock: Option<crate::lock::LockOwner>,
}

impl ApplyOptions {
    /// The defaults: restarts on, no window, 15 minutes timeout, 5 s polls.
    pub fn new(clock: Arc<dyn Clock>) -> ApplyOptions {
        ApplyOptions {
            restart: RestartPolicy::Auto,
            maintenance_window: None,
            restart_timeout: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_secs(5),
            move_active_databases: false,
            clock,
            stop: StopRequest::default(),
            lock: None,
        }
    }

    fn script_options(&self) -> RestartScriptOptions {
        RestartScriptOptions {
            timeout_secs: self.restart_timeout.as_secs().max(1),
            poll_secs: self.poll_interval.as_secs().max(1),
            move_active_databases: self.move_active_databases,
        }
    }
}

impl fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("restart", &self.restart)
            .field("maintenance_window", &self.maintenance_window)
            .field("restart_timeout", &self.restart_timeout)
            .field("move_active_databases", &self.move_active_databases)
            .finish_non_exhaustive()
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and reported success.
    Done,
    /// It ran and failed.
    Failed,
    /// It may have run: the connection was lost while it ran or before it reported, and
    /// the script may have gone on on the host. The fresh observation after apply says
    /// whether its change is in place (see [`StepResult::notes`]).
    Unknown,
    /// It did not run: an earlier step or host failed, or the host was refused.
    NotAttempted,
    /// A restart left out by `--restart never`.
    Skipped,
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepResult {
    /// 1-based, as in the plan.
    pub index: usize,
    /// `change` or `restart`.
    #[serde(rename = "type")]
    pub step_type: &'static str,
    /// `IMAP4 settings EX01`, `restart MSExchangeIS`.
    pub description: String,
    /// The kind's key (changes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The resource (changes) or the service (restarts).
    pub id: String,
    /// What happened.
    pub status: StepStatus,
    /// Why it failed, in the server's words.
    pub error: Option<String>,
    /// What the step said along the way.
    pub notes: Vec<String>,
    /// How long it ran (steps that ran).
    pub duration_ms: Option<u64>,
}

/// A host's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Every step done (or skipped by policy).
    Done,
    /// A step failed, or the script could not run.
    Failed,
    /// Refused before anything ran (maintenance window).
    Refused,
    /// Not attempted: an earlier host failed.
    NotAttempted,
    /// The plan had nothing to do here.
    NothingToDo,
}

/// What a fresh plan after apply says about a host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verification {
    /// The fresh plan is empty.
    pub converged: bool,
    /// What still differs, each with why.
    pub remaining: Vec<String>,
    /// Explanations (throttling caches, pending restarts, errors of the re-observation).
    pub notes: Vec<String>,
    /// Converged, or all that remains is expected (restarts skipped by policy, throttling
    /// changes on their way to the servers' caches).
    pub settled: bool,
}

/// One host's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostResult {
    /// The host's name.
    pub host: String,
    /// Its outcome.
    pub status: HostStatus,
    /// A failure outside any step, or why it was refused or not attempted.
    pub error: Option<String>,
    /// Every step of its plan.
    pub steps: Vec<StepResult>,
    /// Services whose restart is still owed (skipped, not attempted or failed after
    /// changes that need them).
    pub pending_restarts: Vec<Service>,
    /// Wall time of the host's script.
    pub duration_ms: u64,
    /// The fresh plan after apply, when [`verify`] ran.
    pub verification: Option<Verification>,
}

/// Totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplySummary {
    /// Steps done.
    pub done: usize,
    /// Steps failed.
    pub failed: usize,
    /// Steps whose outcome is unknown (the connection was lost).
    pub unknown: usize,
    /// Steps not attempted.
    pub not_attempted: usize,
    /// Restarts skipped by policy.
    pub skipped: usize,
    /// Whether the apply succeeded (the exit code is 0 exactly then).
    pub success: bool,
}

/// The result of an apply.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApplyResult {
    /// [`RESULT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The exctl that applied.
    pub exctl_version: &'static str,
    /// `auto` or `never`.
    pub restart_policy: RestartPolicy,
    /// Per host, in plan order.
    pub hosts: Vec<HostResult>,
    /// Totals.
    pub summary: ApplySummary,
}

impl ApplyResult {
    /// Recomputes the summary from the hosts.
    pub fn summarize(&mut self) {
        let mut s = ApplySummary::default();
        for h in &self.hosts {
            for st in &h.steps {
                match st.status {
                    StepStatus::Done => s.done += 1,
                    StepStatus::Failed => s.failed += 1,
                    StepStatus::Unknown => s.unknown += 1,
                    StepStatus::NotAttempted => s.not_attempted += 1,
                    StepStatus::Skipped => s.skipped += 1,
                }
            }
        }
        s.success = self.hosts.iter().all(|h| {
            matches!(h.status, HostStatus::Done | HostStatus::NothingToDo)
                && h.verification.as_ref().is_none_or(|v| v.settled)
        });
        self.summary = s;
    }

    /// Whether everything succeeded.
    pub fn succeeded(&self) -> bool {
        self.summary.success
    }
}

/// What apply reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// A host's script starts.
    HostStarted {
        /// The host.
        host: &'a str,
        /// Its plan.
        plan: &'a HostPlan,
    },
    /// A host is refused or not attempted.
    HostSkipped {
        /// The host.
        host: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// A step starts on the host.
    StepStarted {
        /// The host.
        host: &'a str,
        /// 1-based.
        index: usize,
        /// Steps of the host.
        total: usize,
        /// The step.
        step: &'a Step,
    },
    /// The Information Store restart is about to dismount these databases.
    Dismounting {
        /// The host.
        host: &'a str,
        /// The step.
        index: usize,
        /// Names of the mounted databases.
        databases: &'a [String],
    },
    /// A restart's wait loop polled.
    Progress {
        /// The host.
        host: &'a str,
        /// The step.
        index: usize,
        /// The service waited for.
        service: Service,
        /// Its status (`StartPending`, `Running`).
        status: &'a str,
        /// Databases mounted again of those mounted before (IS only).
        databases: Option<(usize, usize)>,
        /// Since the step started.
        elapsed: Duration,
    },
    /// A step said something the operator should read.
    Note {
        /// The host.
        host: &'a str,
        /// The step.
        index: usize,
        /// The text.
        text: &'a str,
    },
    /// A step finished (done or failed).
    StepFinished {
        /// The host.
        host: &'a str,
        /// Steps of the host.
        total: usize,
        /// The result.
        result: &'a StepResult,
    },
    /// A host finished.
    HostFinished {
        /// The result.
        result: &'a HostResult,
    },
}

/// Receives [`Event`]s.
pub type EventSink<'a> = &'a (dyn Fn(&Event<'_>) + Send + Sync);

/// Makes a comment line safe: no line breaks or other control characters, ASCII only.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The short description of a step (`IMAP4 settings EX01`, `restart MSExchangeIS`).
pub fn describe(step: &Step) -> String {
    match step {
        Step::Change(c) => format!("{} {}", c.title, c.id),
        Step::Restart(r) => format!("{} {}", r.verb(), r.service),
    }
}

/// The apply script for one host (see the module docs).
pub fn apply_script(host: &HostSpec, steps: &[Step], opts: &ApplyOptions) -> String {
    let ro = opts.script_options();
    let mut s = ScriptBuilder::guarded(
        host,
        restart::ERROR_TEXT_FUNCTION,
        &format!("__exctl_emit '{APPLY_ERROR_RECORD}' '0' (__exctl_error_text $_); throw"),
    );
    s.raw("$__exctl_ok = $true\n");
    if let Some(owner) = &opts.lock {
        let restarts = steps
            .iter()
            .filter(|s| matches!(s, Step::Restart(_)))
            .count();
        s.raw(&crate::lock::acquire_script(
            owner,
            crate::lock::ttl_for(restarts, opts.restart_timeout),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let body = match step {
            Step::Change(c) => {
                let mut b = command_lines(&c.commands);
                if let Some(svc) = c.requires_restart {
                    b.push_str(&restart::mark_restart_due(svc, n));
                }
                b
            }
            Step::Restart(r) => match restart_run(r, opts) {
                RestartRun::Skip => {
                    s.raw(&format!(
                        "# exctl step {n}: restart {} skipped (--restart never)\n",
                        r.service
                    ));
                    continue;
                }
                RestartRun::Recover => restart::recovery_body(r.service, &host.name, n, &ro),
                RestartRun::Restart => restart::restart_body(r.service, &host.name, n, &ro),
            },
        };
        s.raw(&format!(
            "# exctl step {n}: {}\nif ($__exctl_ok) {{\n__exctl_emit '{APPLY_RECORD}' '{n}' 'start'\ntry {{\n{body}__exctl_emit '{APPLY_RECORD}' '{n}' 'ok'\n}} catch {{\n$__exctl_ok = $false\n__exctl_emit '{APPLY_ERROR_RECORD}' '{n}' (__exctl_error_text $_)\n}}\n}}\n",
            comment(&describe(step))
        ));
    }
    s.finish()
}

/// How a restart step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RestartRun {
    /// Stop and start the service (and its dependants).
    Restart,
    /// Bring back a host that is not healthy without stopping anything: a service that
    /// is down is started (which also loads changed settings), one that is starting is
    /// waited for, dependants are started, databases waited for.
    Recover,
    /// Left out by `--restart never`.
    Skip,
}

/// How `r` runs under `opts`. Bringing back a store that is down is never skipped: it
/// disconnects nobody, and a store left down is an outage. A running service whose
/// dependants or databases are down is restarted when a restart is owed anyway, and
/// otherwise (or with `--restart never`) only brought back.
fn restart_run(r: &crate::plan::RestartStep, opts: &ApplyOptions) -> RestartRun {
    match &r.recover {
        Some(rec) if rec.service_down => RestartRun::Recover,
        Some(_) if opts.restart == RestartPolicy::Never => RestartRun::Recover,
        Some(_) if !r.restart_owed() => RestartRun::Recover,
        _ if opts.restart == RestartPolicy::Never => RestartRun::Skip,
        _ => RestartRun::Restart,
    }
}

/// Whether the step stops the Information Store (a service whose restart disconnects
/// every user).
fn is_store_restart(step: &Step, opts: &ApplyOptions) -> bool {
    matches!(step, Step::Restart(r) if r.service.disconnects_everyone() && restart_run(r, opts) == RestartRun::Restart)
}

/// Why a host must be refused before anything runs on it: its plan restarts the
/// Information Store outside the maintenance window. The CLI also shows it before asking
/// for confirmation.
pub fn window_refusal(hp: &HostPlan, opts: &ApplyOptions) -> Option<String> {
    if opts.restart == RestartPolicy::Never {
        return None;
    }
    let window = opts.maintenance_window?;
    if !hp.steps.iter().any(|s| is_store_restart(s, opts)) {
        return None;
    }
    let now = opts.clock.minute_of_day();
    if window.contains(now) {
        return None;
    }
    Some(format!(
        "the Information Store restart of {} is outside the maintenance window {window} (it is {} on this machine)",
        hp.host,
        hhmm(now),
    ))
}

/// Why a host must be refused before anything runs on it because of
/// `--move-active-databases`: the DAG maintenance scripts (`StartDagServerMaintenance.ps1`)
/// came with Exchange 2010 SP1, so an RTM server has none to run; and they run in the
/// host's own session with the Exchange Management Shell's cmdlets (Get-MailboxServer,
/// Move-ActiveMailboxDatabase, …), which `access: psrp` does not load there.
pub fn move_refusal(hp: &HostPlan, access: Access, opts: &ApplyOptions) -> Option<String> {
    if !opts.move_active_databases || !hp.steps.iter().any(|s| is_store_restart(s, opts)) {
        return None;
    }
    if hp.expected_version == exctl_exchange::Version::Rtm {
        return Some(format!(
            "--move-active-databases needs StartDagServerMaintenance.ps1, which came with Exchange 2010 SP1, and {} runs RTM: leave the option out (its active copies then dismount during the restart) or install SP1 or later",
            hp.host
        ));
    }
    (access == Access::Psrp).then(|| {
        format!(
            "--move-active-databases runs StartDagServerMaintenance.ps1 on {}, which needs the Exchange Management Shell in the host's session, and access: psrp has none there: move the active copies first (Move-ActiveMailboxDatabase), or use access: remote-session for this host",
            hp.host
        )
    })
}

/// Replaces every sensitive value of the host's plan in `text`.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            t = t.replace(s.as_str(), "(sensitive)");
        }
    }
    t
}

fn secrets_of(hp: &HostPlan) -> Vec<String> {
    let mut out = Vec::new();
    for s in &hp.steps {
        if let Step::Change(c) = s {
            for a in c.attributes.iter().filter(|a| a.sensitive) {
                for v in [&a.before, &a.after].into_iter().flatten() {
                    match v {
                        Value::Str(s) => out.push(s.clone()),
                        Value::List(l) => out.extend(l.iter().cloned()),
                        other => out.push(other.to_string()),
                    }
                }
            }
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

#[derive(Debug, Default)]
struct StepState {
    started: Option<Instant>,
    finished: Option<(StepStatus, Option<String>, Duration)>,
    notes: Vec<String>,
    dismounted: Option<usize>,
    missing: Option<usize>,
}

/// Follows a host's records as they arrive.
struct Tracker<'a> {
    hp: &'a HostPlan,
    states: Vec<StepState>,
    host_error: Option<String>,
    /// Another run holds the host's lock: nothing ran.
    locked: Option<String>,
    secrets: Vec<String>,
    on_event: EventSink<'a>,
}

fn value_text(v: &RawValue) -> String {
    match v {
        RawValue::Str(s) => s.clone(),
        RawValue::List(l) => l.join(", "),
        RawValue::Null => String::new(),
    }
}

impl<'a> Tracker<'a> {
    fn new(hp: &'a HostPlan, on_event: EventSink<'a>) -> Tracker<'a> {
        Tracker {
            hp,
            states: hp.steps.iter().map(|_| StepState::default()).collect(),
            host_error: None,
            locked: None,
            secrets: secrets_of(hp),
            on_event,
        }
    }

    fn result(&self, i: usize) -> StepResult {
        let step = &self.hp.steps[i];
        let st = &self.states[i];
        let (status, error, duration) = match &st.finished {
            Some((s, e, d)) => (*s, e.clone(), Some(*d)),
            None => (StepStatus::NotAttempted, None, None),
        };
        let (step_type, kind, id) = match step {
            Step::Change(c) => ("change", Some(c.kind), c.id.clone()),
            Step::Restart(r) => ("restart", None, r.service.name().to_string()),
        };
        StepResult {
            index: i + 1,
            step_type,
            description: describe(step),
            kind,
            id,
            status,
            error,
            notes: st.notes.clone(),
            duration_ms: duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    fn line(&mut self, line: &str) {
        if !line.starts_with(record::MARKER) {
            return;
        }
        // A damaged line is noise: the step it belonged to ends up without an outcome
        // and is reported as such.
        let Ok(obs) = Observations::parse(line) else {
            return;
        };
        if let Some(v) = obs.get(APPLY_ERROR_RECORD, "0") {
            self.host_error = Some(redact(&value_text(v), &self.secrets));
        }
        if let Some(v) = obs.get(crate::lock::LOCKED_RECORD, "0") {
            self.locked = Some(value_text(v));
        }
        // The steps this line speaks of (attribute N: step N), looked up rather than
        // asking the line about every step of the plan: a plan of thousands of steps
        // prints thousands of lines.
        let mut named: Vec<usize> = obs
            .keys()
            .filter_map(|(_, a)| a.parse::<usize>().ok())
            .filter(|n| (1..=self.states.len()).contains(n))
            .map(|n| n - 1)
            .collect();
        named.sort_unstable();
        named.dedup();
        for i in named {
            let n = (i + 1).to_string();
            if let Some(RawValue::Str(v)) = obs.get(APPLY_RECORD, &n) {
                match v.as_str() {
                    "start" => self.start(i),
                    "ok" => self.finish(i, StepStatus::Done, None),
                    _ => {}
                }
            }
            if let Some(v) = obs.get(APPLY_ERROR_RECORD, &n) {
                let text = redact(&value_text(v), &self.secrets);
                self.finish(i, StepStatus::Failed, Some(text));
            }
            if let Some(v) = obs.get(restart::record::NOTE, &n) {
                let text = redact(&value_text(v), &self.secrets);
                (self.on_event)(&Event::Note {
                    host: &self.hp.host,
                    index: i + 1,
                    text: &text,
                });
                self.states[i].notes.push(text);
            }
            if let Some(RawValue::List(dbs)) = obs.get(restart::record::DISMOUNT, &n) {
                self.states[i].dismounted = Some(dbs.len());
                (self.on_event)(&Event::Dismounting {
                    host: &self.hp.host,
                    index: i + 1,
                    databases: dbs,
                });
            }
            if let Some(RawValue::List(dbs)) = obs.get(restart::record::MISSING, &n) {
                self.states[i].missing = Some(dbs.len());
            }
            if let Some(RawValue::Str(status)) = obs.get(restart::record::PROGRESS, &n) {
                self.progress(i, status);
            }
        }
    }

    fn start(&mut self, i: usize) {
        self.states[i].started = Some(Instant::now());
        (self.on_event)(&Event::StepStarted {
            host: &self.hp.host,
            index: i + 1,
            total: self.states.len(),
            step: &self.hp.steps[i],
        });
    }

    fn finish(&mut self, i: usize, status: StepStatus, error: Option<String>) {
        let elapsed = self.states[i]
            .started
            .map(|t| t.elapsed())
            .unwrap_or_default();
        self.states[i].finished = Some((status, error, elapsed));
        let result = self.result(i);
        (self.on_event)(&Event::StepFinished {
            host: &self.hp.host,
            total: self.states.len(),
            result: &result,
        });
    }

    fn progress(&mut self, i: usize, status: &str) {
        let Step::Restart(r) = &self.hp.steps[i] else {
            return;
        };
        let st = &self.states[i];
        let databases = match st.dismounted {
            Some(total) if r.service.spec().mailbox_databases => {
                Some((total.saturating_sub(st.missing.unwrap_or(total)), total))
            }
            _ => None,
        };
        (self.on_event)(&Event::Progress {
            host: &self.hp.host,
            index: i + 1,
            service: r.service,
            status,
            databases,
            elapsed: st.started.map(|t| t.elapsed()).unwrap_or_default(),
        });
    }
}

fn not_attempted(hp: &HostPlan, status: HostStatus, reason: String) -> HostResult {
    let tracker_free: Vec<StepResult> = hp
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (step_type, kind, id) = match step {
                Step::Change(c) => ("change", Some(c.kind), c.id.clone()),
                Step::Restart(r) => ("restart", None, r.service.name().to_string()),
            };
            StepResult {
                index: i + 1,
                step_type,
                description: describe(step),
                kind,
                id,
                status: StepStatus::NotAttempted,
                error: None,
                notes: Vec::new(),
                duration_ms: None,
            }
        })
        .collect();
    HostResult {
        host: hp.host.clone(),
        status,
        error: Some(reason),
        steps: tracker_free,
        pending_restarts: pending_from_before(hp),
        duration_ms: 0,
        verification: None,
    }
}

/// Restarts the plan says are owed from before.
fn pending_from_before(hp: &HostPlan) -> Vec<Service> {
    hp.steps
        .iter()
        .filter_map(|s| match s {
            Step::Restart(r) if r.pending.is_some() => Some(r.service),
            _ => None,
        })
        .collect()
}

/// Applies one host's plan.
pub async fn apply_host(
    hp: &HostPlan,
    spec: &HostSpec,
    runner: &dyn Runner,
    opts: &ApplyOptions,
    on_event: EventSink<'_>,
) -> HostResult {
    if hp.steps.is_empty() {
        return HostResult {
            host: hp.host.clone(),
            status: HostStatus::NothingToDo,
            error: None,
            steps: Vec::new(),
            pending_restarts: Vec::new(),
            duration_ms: 0,
            verification: None,
        };
    }
    if opts.stop.is_requested() {
        let reason = format!("{STOPPED_BY_OPERATOR}; nothing was changed on {}", hp.host);
        on_event(&Event::HostSkipped {
            host: &hp.host,
            reason: &reason,
        });
        return not_attempted(hp, HostStatus::NotAttempted, reason);
    }
    if let Some(why) = window_refusal(hp, opts).or_else(|| move_refusal(hp, spec.access, opts)) {
        let reason = format!(
            "refused before any change: {why}; nothing was changed on {}",
            hp.host
        );
        on_event(&Event::HostSkipped {
            host: &hp.host,
            reason: &reason,
        });
        return not_attempted(hp, HostStatus::Refused, reason);
    }
    let script = apply_script(spec, &hp.steps, opts);
    on_event(&Event::HostStarted {
        host: &hp.host,
        plan: hp,
    });
    let t0 = Instant::now();
    let mut tracker = Tracker::new(hp, on_event);
    let outcome = {
        let mut sink = |line: &str| tracker.line(line);
        runner.run_streaming(spec, &script, &mut sink).await
    };
    let duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    // What ended the script, if it did not end well.
    let (lost, exit_text) = match &outcome {
        Err(e) => (
            Some((
                redact(e.message(), &tracker.secrets),
                e.is_outcome_unknown(),
            )),
            None,
        ),
        Ok(out) if out.exit_code != 0 => {
            let detail = out.stderr.trim();
            let text = if detail.is_empty() {
                format!("the apply script exited with code {}", out.exit_code)
            } else {
                detail.to_string()
            };
            (None, Some(redact(&text, &tracker.secrets)))
        }
        Ok(_) => (None, None),
    };
    let mut failed_step = false;
    // After a loss whose outcome is unknown, the script may have gone on on the host
    // without us: no step after the last one reported can be called "not attempted".
    let unknown_from = match &lost {
        Some((_, true)) => tracker.states.iter().position(|st| st.finished.is_none()),
        _ => None,
    };
    for i in 0..tracker.states.len() {
        let skipped =
            matches!(&hp.steps[i], Step::Restart(r) if restart_run(r, opts) == RestartRun::Skip);
        let st = &mut tracker.states[i];
        if skipped {
            st.finished = Some((StepStatus::Skipped, None, Duration::ZERO));
            continue;
        }
        if st.finished.is_none()
            && st.started.is_none()
            && unknown_from.is_some_and(|from| i >= from)
        {
            st.finished = Some((
                StepStatus::Unknown,
                Some(
                    "the connection was lost before this step reported; the apply script may have gone on on the host: its outcome is unknown"
                        .to_string(),
                ),
                Duration::ZERO,
            ));
            let result = tracker.result(i);
            on_event(&Event::StepFinished {
                host: &hp.host,
                total: hp.steps.len(),
                result: &result,
            });
        }
        let st = &mut tracker.states[i];
        if st.finished.is_none()
            && let Some(t) = st.started
        {
            let unknown = matches!(lost, Some((_, true)));
            let why = match (&lost, &exit_text) {
                (Some((e, true)), _) => format!(
                    "the connection was lost while this step ran ({e}); its outcome is unknown"
                ),
                (Some((e, false)), _) => format!(
                    "the connection was lost while this step ran ({e}); run exctl plan to see what remains"
                ),
                (None, Some(t)) => t.clone(),
                (None, None) => {
                    "the apply script ended without reporting the outcome of this step".to_string()
                }
            };
            let status = if unknown {
                StepStatus::Unknown
            } else {
                StepStatus::Failed
            };
            st.finished = Some((status, Some(why), t.elapsed()));
            let result = tracker.result(i);
            on_event(&Event::StepFinished {
                host: &hp.host,
                total: hp.steps.len(),
                result: &result,
            });
        }
        if matches!(
            tracker.states[i].finished,
            Some((StepStatus::Failed | StepStatus::Unknown, ..))
        ) {
            failed_step = true;
        }
    }
    let steps: Vec<StepResult> = (0..hp.steps.len()).map(|i| tracker.result(i)).collect();
    let mut error = None;
    if !failed_step {
        if let Some(l) = &tracker.locked {
            error = Some(format!("{} is {l}; nothing was changed on it", hp.host));
        } else if let Some(e) = &tracker.host_error {
            error = Some(format!(
                "cannot load the Exchange cmdlets on {}: {e}",
                hp.host
            ));
        } else if let Some((e, _)) = &lost {
            error = Some(e.clone());
        } else if let Some(t) = &exit_text {
            error = Some(format!("the apply script failed on {}: {t}", hp.host));
        } else if let Some(s) = steps.iter().find(|s| s.status == StepStatus::NotAttempted) {
            error = Some(format!(
                "the apply script ended before step {} without saying why",
                s.index
            ));
        }
    }
    // The steps say their outcome is unknown; the host says why.
    if error.is_none()
        && unknown_from.is_some()
        && let Some((e, _)) = &lost
    {
        error = Some(e.clone());
    }
    let status = if failed_step || error.is_some() {
        HostStatus::Failed
    } else {
        HostStatus::Done
    };
    // Restarts still owed: a restart that did not run although changes needing it were
    // made, or that was owed from before.
    let mut pending_restarts = Vec::new();
    for (i, s) in hp.steps.iter().enumerate() {
        let Step::Restart(r) = s else { continue };
        if steps[i].status == StepStatus::Done {
            continue;
        }
        let needed = r.pending.is_some()
            || hp.steps.iter().zip(&steps).any(|(s, res)| {
                matches!(s, Step::Change(c) if c.requires_restart == Some(r.service))
                    && res.status == StepStatus::Done
            });
        if needed {
            pending_restarts.push(r.service);
        }
    }
    let result = HostResult {
        host: hp.host.clone(),
        status,
        error,
        steps,
        pending_restarts,
        duration_ms,
        verification: None,
    };
    on_event(&Event::HostFinished { result: &result });
    result
}

/// Applies a plan: host after host, stopping after the first host that fails.
pub async fn apply(
    plan: &Plan,
    hosts: &BTreeMap<String, HostSpec>,
    runner: &dyn Runner,
    opts: &ApplyOptions,
    on_event: EventSink<'_>,
) -> Result<ApplyResult, ApplyError> {
    if plan.has_errors() {
        return Err(ApplyError::PlanHasErrors(plan.summary.errors));
    }
    let mut specs = Vec::new();
    for hp in &plan.hosts {
        let spec = hosts
            .get(&hp.host.to_ascii_uppercase())
            .ok_or_else(|| ApplyError::UnknownHost(hp.host.clone()))?;
        specs.push(spec);
    }
    let mut results = Vec::new();
    let mut stopped_by: Option<String> = None;
    for (hp, spec) in plan.hosts.iter().zip(specs) {
        if let Some(first) = &stopped_by
            && !hp.steps.is_empty()
        {
            let reason = format!(
                "not attempted: {first} failed first, and apply stops at the first failure"
            );
            on_event(&Event::HostSkipped {
                host: &hp.host,
                reason: &reason,
            });
            results.push(not_attempted(hp, HostStatus::NotAttempted, reason));
            continue;
        }
        let r = apply_host(hp, spec, runner, opts, on_event).await;
        if matches!(r.status, HostStatus::Failed | HostStatus::Refused) {
            stopped_by = Some(hp.host.clone());
        }
        results.push(r);
    }
    let mut result = ApplyResult {
        format_version: RESULT_FORMAT_VERSION,
        exctl_version: env!("CARGO_PKG_VERSION"),
        restart_policy: opts.restart,
        hosts: results,
        summary: ApplySummary::default(),
    };
    result.summarize();
    Ok(result)
}

fn show(v: &Option<Value>, sensitive: bool) -> String {
    match (v, sensitive) {
        (_, true) => "(sensitive)".to_string(),
        (Some(v), false) => v.to_string(),
        (None, false) => "(none)".to_string(),
    }
}

/// Whether a kind's changes go through the throttling BudgetCache.
fn is_throttling(kind: &str) -> bool {
    kind.starts_with("throttling")
}

/// The throttling note.
pub const THROTTLING_NOTE: &str = "throttling policy changes take up to 15 minutes to reach the servers' BudgetCache (and may take a while to replicate between domain controllers): run exctl plan again later";

/// Compares the result with a fresh plan made after apply, and records per host whether
/// it converged, or what still differs and why.
pub fn verify(result: &mut ApplyResult, fresh: &Plan) {
    // The fresh plan of each host by lower-case name (the first, as a scan would find).
    let mut fresh_hosts: HashMap<String, &HostPlan> = HashMap::new();
    for f in &fresh.hosts {
        fresh_hosts.entry(f.host.to_ascii_lowercase()).or_insert(f);
    }
    for h in &mut result.hosts {
        let Some(fp) = fresh_hosts.get(&h.host.to_ascii_lowercase()).copied() else {
            continue;
        };
        // The step that ran for each change, by kind and lower-case identity (the first
        // of its identity): looked up for each step of the fresh plan.
        let mut ran_steps: HashMap<(&'static str, String), usize> = HashMap::new();
        for (i, s) in h.steps.iter().enumerate() {
            if let Some(kind) = s.kind {
                ran_steps
                    .entry((kind, s.id.to_ascii_lowercase()))
                    .or_insert(i);
            }
        }
        let mut v = Verification {
            converged: fp.steps.is_empty() && fp.errors.is_empty(),
            remaining: Vec::new(),
            notes: Vec::new(),
            settled: false,
        };
        for e in &fp.errors {
            v.notes
                .push(format!("cannot observe {} again: {e}", h.host));
        }
        let applied_throttling = h
            .steps
            .iter()
            .any(|s| s.status == StepStatus::Done && s.kind.is_some_and(is_throttling));
        let mut all_expected = fp.errors.is_empty();
        let mut only_throttling = true;
        for step in &fp.steps {
            match step {
                Step::Change(c) => {
                    only_throttling &= is_throttling(c.kind);
                    let ran = ran_steps
                        .get(&(c.kind, c.id.to_ascii_lowercase()))
                        .and_then(|&i| h.steps.get(i));
                    let why = match ran.map(|s| s.status) {
                        Some(StepStatus::Done) if is_throttling(c.kind) => {
                            "applied; not yet visible to every reader".to_string()
                        }
                        Some(StepStatus::Done) => {
                            "applied, but the server still reports the old value".to_string()
                        }
                        Some(StepStatus::Failed) => "its step failed".to_string(),
                        Some(StepStatus::Unknown) => {
                            "its step's outcome was unknown, and the server does not show it"
                                .to_string()
                        }
                        Some(StepStatus::NotAttempted) => "not attempted".to_string(),
                        Some(StepStatus::Skipped) | None => {
                            "changed on the server while apply ran, or not part of the plan applied"
                                .to_string()
                        }
                    };
                    let attrs: Vec<String> = c
                        .attributes
                        .iter()
                        .map(|a| {
                            format!(
                                "{} is {}, wanted {}",
                                a.name,
                                show(&a.before, a.sensitive),
                                show(&a.after, a.sensitive)
                            )
                        })
                        .collect();
                    v.remaining.push(format!(
                        "{} {}: {} ({why})",
                        c.title,
                        c.id,
                        if attrs.is_empty() {
                            format!("{:?}", c.actions.first())
                        } else {
                            attrs.join("; ")
                        }
                    ));
                    if !is_throttling(c.kind) {
                        all_expected = false;
                    }
                }
                Step::Restart(r) if r.recover.is_some() => {
                    // A host that is not healthy is never settled, whatever the policy.
                    only_throttling = false;
                    all_expected = false;
                    let why = r.recover.as_ref().map(|x| x.reason.as_str()).unwrap_or("");
                    v.remaining
                        .push(format!("{} {}: not healthy: {why}", r.verb(), r.service));
                }
                Step::Restart(r) => {
                    only_throttling = false;
                    let why = match (&result.restart_policy, &r.pending) {
                        (RestartPolicy::Never, _) => {
                            "skipped by --restart never: the settings take effect when it restarts (exctl apply with --restart auto, or restart it yourself)".to_string()
                        }
                        (RestartPolicy::Auto, Some(p)) => format!("still pending: {p}"),
                        (RestartPolicy::Auto, None) => "still required".to_string(),
                    };
                    v.remaining.push(format!("restart {}: {why}", r.service));
                    if result.restart_policy != RestartPolicy::Never {
                        all_expected = false;
                    }
                }
            }
        }
        // Steps whose outcome was unknown: what the fresh observation says about each.
        if fp.errors.is_empty() {
            // What the fresh plan still holds: changes by kind and lower-case identity,
            // restarts by service name.
            let mut left_changes: HashSet<(&'static str, String)> = HashSet::new();
            let mut left_restarts: HashSet<&str> = HashSet::new();
            for f in &fp.steps {
                match f {
                    Step::Change(c) => {
                        left_changes.insert((c.kind, c.id.to_ascii_lowercase()));
                    }
                    Step::Restart(r) => {
                        left_restarts.insert(r.service.name());
                    }
                }
            }
            for st in h
                .steps
                .iter_mut()
                .filter(|s| s.status == StepStatus::Unknown)
            {
                let remains = st
                    .kind
                    .is_some_and(|k| left_changes.contains(&(k, st.id.to_ascii_lowercase())))
                    || (st.step_type == "restart" && left_restarts.contains(st.id.as_str()));
                st.notes.push(
                    match (st.step_type == "restart", remains) {
                        (false, false) => "observed again after the loss: the change is in place",
                        (false, true) => {
                            "observed again after the loss: the change is not in place"
                        }
                        (true, false) => "observed again after the loss: no restart is owed",
                        (true, true) => "observed again after the loss: the restart is still owed",
                    }
                    .to_string(),
                );
            }
        }
        if h.steps.iter().any(|s| s.status == StepStatus::Unknown) {
            v.notes.push(format!(
                "the connection to {} was lost during apply; the apply script may still have been running there when it was observed again: run exctl plan in a few minutes to see the final state",
                h.host
            ));
        }
        if !fp.steps.is_empty() && only_throttling {
            v.notes.push(format!(
                "only throttling policy changes remain: {THROTTLING_NOTE}"
            ));
        } else if applied_throttling {
            v.notes.push(THROTTLING_NOTE.to_string());
        }
        v.settled = v.converged || (all_expected && !fp.steps.is_empty());
        h.verification = Some(v);
    }
    result.summarize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_may_span_midnight() {
        let w: MaintenanceWindow = "22:00-04:00".parse().unwrap();
        assert!(w.contains(23 * 60) && w.contains(0) && w.contains(3 * 60 + 59));
        assert!(!w.contains(4 * 60) && !w.contains(12 * 60));
        let d: MaintenanceWindow = "01:30-02:00".parse().unwrap();
        assert!(d.contains(90) && !d.contains(120));
        assert_eq!(d.to_string(), "01:30-02:00");
        for bad in ["", "1-2", "25:00-01:00", "10:00-10:00", "10:0-11:00", "x"] {
            assert!(bad.parse::<MaintenanceWindow>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn comments_cannot_break_out_of_their_line() {
        assert_eq!(comment("a\nb\r'c'\u{2028}"), "a?b?'c'?");
    }
}
