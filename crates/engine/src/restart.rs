//! Service restarts: the PowerShell that restarts the protocol services (MSExchangeIMAP4,
//! MSExchangePOP3) and MSExchangeIS and waits for them, and how a plan learns that a
//! restart is still owed, or not needed at all.
//!
//! # Restart scripts
//!
//! A restart is a step of the apply script (see [`crate::apply`]); these functions write
//! its body. The step wrapper reports `start`, `ok` or the error; the body reports
//! progress while it waits, through the record protocol (`__exctl_emit`):
//!
//! | record (resource, attribute = step number) | value | meaning |
//! |---|---|---|
//! | `__progress` | the service's status | one poll of the wait loop |
//! | `__missing` | list of database names | databases mounted before the restart and not yet again (sent just before `__progress`) |
//! | `__dismount` | list of database names | the databases mounted now, which the IS restart dismounts |
//! | `__note` | text | something the operator should read (service not running, DAG copies) |
//!
//! - **MSExchangeIMAP4** and **MSExchangePOP3** (the protocol services,
//!   [`Service::protocol`]) restart only when they are running or their start mode is
//!   `Auto` (Exchange 2010 installs both as Manual and stopped). A plan that sees such a
//!   service stopped and not starting automatically plans no restart and says why (see
//!   [`context`]); should the service have started between plan and apply, the step
//!   still checks, and otherwise reports "not running, settings take effect when it
//!   starts" and succeeds.
//! - **MSExchangeIS**: the script lists the mailbox databases of the server that are
//!   mounted (`Get-MailboxDatabase -Server <host> -Status`), restarts the service (its
//!   running dependants go down and up with it), then polls until the service and those
//!   dependants are `Running` and every database that was mounted before is mounted
//!   again. A graceful
//!   stop dismounts the active copies; they do not fail over (reference §4). With
//!   `--move-active-databases`, `StartDagServerMaintenance.ps1` (from `$exscripts`, or
//!   `$env:ExchangeInstallPath\Scripts` when the snap-in, not the Exchange Management
//!   Shell, loaded the cmdlets) moves them away first and `StopDagServerMaintenance.ps1`
//!   runs once the store is back; a server left in maintenance by a failure is named in
//!   the error. Without it, the script warns when the server holds active copies that
//!   have copies elsewhere.
//! - A restart is not `Restart-Service`, which blocks until the service runs however long
//!   that takes, but the service's `ServiceController`: `Stop()` (which stops the running
//!   dependants first), a wait for `Stopped`, `Start()`, the dependants that were running
//!   started again once it runs, and a wait for all of it. Every wait polls, reports
//!   progress and ends at one deadline for the whole restart (`--restart-timeout`,
//!   `(Get-Date).AddSeconds(n)`): a service that is not back by then fails the step with
//!   what is still missing.
//!
//! # Pending restarts
//!
//! State lives on the server, so a restart skipped by `--restart never` (or a change made
//! by hand after the service started) must be visible to the next plan from the server
//! alone. Two server-side facts are compared with the start time of the service's
//! process (`Win32_Service.ProcessId`, then `(Get-Process -Id n).StartTime`):
//!
//! 1. Every applied change that requires a restart writes the server's UTC time to
//!    `HKLM:\SOFTWARE\exctl\LastChangeRequiringRestart`, value = the service name
//!    ([`MARKER_KEY`]). Same clock as the process start time, so the comparison is exact
//!    (both in whole seconds; the restart always starts after the mark).
//! 2. For IMAP4 and POP3 also the settings object's `WhenChangedUTC` (Active Directory), which
//!    catches changes made by hand. Its clock is a domain controller's, so it counts only
//!    when it is more than [`AD_CLOCK_TOLERANCE_SECS`] after the service started (domain
//!    members keep within Kerberos' five minutes of skew).
//!
//! A restart is pending when the service is running and started before the latest of
//! those times. A stopped service owes nothing: it reads its settings when it starts.
//! Registry values have no change time a PowerShell 2.0 script can read without
//! compiling code (`RegQueryInfoKey`), so for MSExchangeIS only the mark of (1) counts:
//! a store limit changed by hand, outside exctl, is not detected.
//!
//! # The PowerShell these scripts use
//!
//! For the simulator, which interprets them: the record PRELUDE; `try`/`catch`, `if`/
//! `elseif`/`else`, `while`, `foreach` (also inside `@()`), `throw` with a string;
//! variables; `-eq -ne -gt -lt -contains -not -and -or -join`, string `+`;
//! `[string]` casts; property access and `.Count`; `Get-Service -Name` (also with
//! `-DependentServices`) and the service's `Stop()`, `Start()` and `Refresh()`,
//! `Get-MailboxDatabase -Server -Status` and `-Identity`
//! (`.Mounted`, `.Name`, `.DatabaseCopies`), `Get-MailboxDatabaseCopyStatus -Server`
//! (`.Status`, `.DatabaseName`), `Start-Sleep -Seconds`, `Get-Date` with `.AddSeconds(n)`,
//! `.ToUniversalTime()` and `.ToString('s')`; `Get-WmiObject -Class Win32_Service -Filter`
//! (`.State`, `.StartMode`, `.ProcessId`), `(Get-Process -Id n).StartTime`; `Test-Path`,
//! `New-Item`, `Set-ItemProperty`, `Get-ItemProperty -Name -ErrorAction
//! SilentlyContinue` on `HKLM:`; `Join-Path`, `$env:ExchangeInstallPath`, and `&` on a
//! script path (DAG maintenance only).

use std::collections::BTreeSet;

use exctl_exchange::kind::Service;
use exctl_exchange::record::Observations;
use exctl_exchange::value::RawValue;
use exctl_pwsh::quote;

use crate::plan::RestartContext;

/// Where applied changes leave the time a restart became due (one value per service).
pub const MARKER_KEY: &str = r"HKLM:\SOFTWARE\exctl\LastChangeRequiringRestart";

/// Where a restart or start by exctl records, while it runs, the service it is bringing
/// back (value name) and the dependants it must start again (value: comma-separated
/// names). Removed when the service and its dependants run again; left behind by a
/// restart that failed or was cut off, so the next observation knows what exctl stopped.
pub const UNDERWAY_KEY: &str = r"HKLM:\SOFTWARE\exctl\RestartUnderway";

/// How much later than the service's start an Active Directory change time must be to
/// count as "changed after the service started": the skew a domain tolerates.
pub const AD_CLOCK_TOLERANCE_SECS: i64 = 300;

/// The records the restart scripts send, by resource name (the attribute is the step
/// number).
pub mod record {
    /// One poll of a wait loop: the service's status.
    pub const PROGRESS: &str = "__progress";
    /// The databases not mounted again yet (list), sent before each `__progress`.
    pub const MISSING: &str = "__missing";
    /// The databases the Information Store restart dismounts (list).
    pub const DISMOUNT: &str = "__dismount";
    /// A note for the operator.
    pub const NOTE: &str = "__note";
}

/// How the restart scripts behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartScriptOptions {
    /// How long a service may take to come back, in seconds.
    pub timeout_secs: u64,
    /// Seconds between two polls.
    pub poll_secs: u64,
    /// Move active databases away (DAG maintenance scripts) before the IS restart.
    pub move_active_databases: bool,
}

impl Default for RestartScriptOptions {
    fn default() -> Self {
        RestartScriptOptions {
            timeout_secs: 15 * 60,
            poll_secs: 5,
            move_active_databases: false,
        }
    }
}

/// The statements that make `$__e` the text of the error record `$_`: the original
/// record's text when `$ErrorActionPreference = 'Stop'` wrapped a non-terminating error
/// (PowerShell 2.0 prefixes the message with "Command execution stopped because...").
pub const ERROR_TEXT_FUNCTION: &str = r#"function __exctl_error_text($e) {
  $t = [string]$e.Exception.Message
  if ($e.Exception.ErrorRecord -ne $null) { $t = [string]$e.Exception.ErrorRecord }
  $t
}
"#;

/// The body of restart step `n` of a protocol service (MSExchangeIMAP4,
/// MSExchangePOP3): restarted when it runs or starts automatically, otherwise a note.
pub fn protocol_body(service: Service, n: usize, opts: &RestartScriptOptions) -> String {
    let svc = service.name();
    let name = quote(svc);
    let step = quote(&n.to_string());
    let filter = quote(&format!("Name='{svc}'"));
    let not_running = quote(&format!(
        "{svc} is not running and does not start automatically: nothing to restart, the settings take effect when it starts"
    ));
    let wait = restart_sequence(svc, n, None, opts);
    format!(
        "$__svc = Get-Service -Name {name}\n\
         $__mode = ''\n\
         try {{ $__mode = [string](Get-WmiObject -Class Win32_Service -Filter {filter}).StartMode }} catch {{ }}\n\
         if ([string]$__svc.Status -eq 'Running' -or $__mode -eq 'Auto') {{\n\
         {wait}\
         }} else {{\n\
         __exctl_emit '{note}' {step} {not_running}\n\
         }}\n",
        note = record::NOTE,
    )
}

/// The body of step `n` that brings back a protocol service without stopping it (see
/// [`Health`]).
pub fn protocol_recovery_body(service: Service, n: usize, opts: &RestartScriptOptions) -> String {
    recovery_sequence(service.name(), n, None, opts)
}

/// The body of step `n` that brings back the Information Store of `host`, its
/// dependants and its databases, without stopping it (see [`Health`]).
pub fn information_store_recovery_body(
    host: &str,
    n: usize,
    opts: &RestartScriptOptions,
) -> String {
    recovery_sequence(Service::InformationStore.name(), n, Some(host), opts)
}

/// The statements that make `$__mounted` the names of the mounted databases of `host`.
fn mounted_databases(var: &str, host: &str) -> String {
    format!(
        "${var} = @(foreach ($__d in @(Get-MailboxDatabase -Server {} -Status)) {{ if ($__d.Mounted -eq $true) {{ [string]$__d.Name }} }})\n",
        quote(host)
    )
}

/// Statements that make `$__replicated` the databases whose active copy is mounted on
/// `host` and that have copies on other servers: those dismount, rather than fail over,
/// when the store stops. Errors propagate (callers decide).
fn replicated_databases(host: &str) -> String {
    format!(
        "$__active = @(foreach ($__c in @(Get-MailboxDatabaseCopyStatus -Server {h})) {{ if ([string]$__c.Status -eq 'Mounted') {{ [string]$__c.DatabaseName }} }})\n\
         $__replicated = @(foreach ($__n in $__active) {{ if (@((Get-MailboxDatabase -Identity $__n).DatabaseCopies).Count -gt 1) {{ $__n }} }})\n",
        h = quote(host),
    )
}

/// The warning for active copies that have copies elsewhere.
pub fn dag_warning(host: &str, databases: &[String]) -> String {
    format!(
        "{host} holds the active copies of {}, which have copies on other DAG members: restarting the Information Store dismounts them rather than moving them; pass --move-active-databases to move them first (StartDagServerMaintenance.ps1)",
        databases.join(", ")
    )
}

/// The body of the MSExchangeIS restart step `n` on `host`.
pub fn information_store_body(host: &str, n: usize, opts: &RestartScriptOptions) -> String {
    let svc = Service::InformationStore.name();
    let step = quote(&n.to_string());
    let h = quote(host);
    let mut s = String::new();
    s.push_str("$__maint = $false\n$__maint_tried = $false\n$__fail = $null\ntry {\n");
    if opts.move_active_databases {
        s.push_str(
            "if ($exscripts -eq $null -or [string]$exscripts -eq '') { $exscripts = Join-Path $env:ExchangeInstallPath 'Scripts' }\n",
        );
        s.push_str(&format!(
            "__exctl_emit '{}' {step} {}\n",
            record::NOTE,
            quote(&format!(
                "moving the active databases off {host} (StartDagServerMaintenance.ps1)"
            ))
        ));
        // In maintenance only once the script succeeded: a script that failed half-way
        // is reported as such, not as a server left in maintenance.
        s.push_str("$__maint_tried = $true\n");
        s.push_str(&format!(
            "& (Join-Path $exscripts 'StartDagServerMaintenance.ps1') -serverName {h}\n"
        ));
        s.push_str("$__maint = $true\n");
    } else {
        // Warn, in the server's own terms, right before the restart.
        s.push_str(&format!(
            "$__replicated = @()\ntry {{\n{}}} catch {{ }}\n",
            replicated_databases(host)
        ));
        s.push_str(&format!(
            "if ($__replicated.Count -gt 0) {{ __exctl_emit '{}' {step} ({} + ($__replicated -join ', ') + {}) }}\n",
            record::NOTE,
            quote(&format!("{host} holds the active copies of ")),
            quote(
                ", which have copies on other DAG members: they dismount rather than move (pass --move-active-databases to move them first)"
            ),
        ));
    }
    s.push_str(&mounted_databases("__mounted", host));
    s.push_str(&format!(
        "__exctl_emit '{}' {step} $__mounted\n",
        record::DISMOUNT
    ));
    s.push_str(&restart_sequence(svc, n, Some(host), opts));
    if opts.move_active_databases {
        s.push_str(&format!(
            "& (Join-Path $exscripts 'StopDagServerMaintenance.ps1') -serverName {h}\n$__maint = $false\n"
        ));
    }
    s.push_str("} catch { $__fail = (__exctl_error_text $_) }\n");
    s.push_str("if ($__fail -ne $null) {\n");
    if opts.move_active_databases {
        s.push_str(&format!(
        "if ($__maint) {{ $__fail = $__fail + {} }} elseif ($__maint_tried) {{ $__fail = {} + $__fail + {} }}\n",
        quote(&format!(
            " -- {host} is still in DAG maintenance mode: run StopDagServerMaintenance.ps1 -serverName {host} once the Information Store is healthy"
        )),
        quote("StartDagServerMaintenance.ps1 failed: "),
        quote(&format!(
            " -- it may have done part of its work (paused the cluster node, blocked activation): run StopDagServerMaintenance.ps1 -serverName {host} to undo it; the Information Store was not restarted"
        ))
    ));
    }
    s.push_str("throw $__fail\n}\n");
    s
}

/// The statements that restart `svc` within one deadline: `Restart-Service` would block
/// until the service runs again, however long that takes, so the restart is driven with
/// the service's own `ServiceController`. `Stop()` stops the running dependents first
/// (.NET does), the script waits until the service is Stopped, `Start()`s it, starts the
/// dependents that were running once it runs, and waits until it and they run (and, with
/// `host`, until the databases in `$__mounted` are mounted again). Every wait polls and
/// reports; past the deadline the step fails with what is still missing.
fn restart_sequence(
    svc: &str,
    n: usize,
    host: Option<&str>,
    opts: &RestartScriptOptions,
) -> String {
    let step = quote(&n.to_string());
    let name = quote(svc);
    let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let sleep = opts.poll_secs.max(1);
    let progress = record::PROGRESS;
    let mut s = format!(
        "$__deadline = (Get-Date).AddSeconds({})\n",
        opts.timeout_secs
    );
    s.push_str(&dependents_to_start(svc));
    s.push_str(&format!("$__sc = Get-Service -Name {name}\n"));
    s.push_str(&record_underway(svc, n));
    s.push_str(&format!(
        "if ([string]$__sc.Status -ne 'Stopped') {{ $__sc.Stop() }}\n\
         $__waiting = $true\n\
         while ($__waiting) {{\n\
         $__status = 'unknown'\n\
         try {{ $__sc.Refresh()\n$__status = [string]$__sc.Status }} catch {{ }}\n\
         __exctl_emit '{progress}' {step} $__status\n\
         if ($__status -eq 'Stopped') {{ $__waiting = $false }} elseif ((Get-Date) -gt $__deadline) {{\n\
         throw ({stop_msg} + $__status)\n\
         }} else {{ Start-Sleep -Seconds {sleep} }}\n\
         }}\n\
         $__sc.Start()\n",
        stop_msg = quote(&format!(
            "{svc}{on} did not stop within {} s: the service is ",
            opts.timeout_secs
        )),
    ));
    s.push_str(&start_phase(svc, n, host, opts));
    s
}

/// The statements that bring back `svc` without stopping it: a stop under way is waited
/// out, a stopped service is started, a pending start is waited for; then, as after a
/// restart, the dependants that should run are started and (with `host`) the databases
/// that should be mounted are waited for, within one deadline. Used for a host that is
/// not healthy (see [`Health`]): a store left down by a failed restart, its dependants
/// left stopped, a store that is still starting.
fn recovery_sequence(
    svc: &str,
    n: usize,
    host: Option<&str>,
    opts: &RestartScriptOptions,
) -> String {
    let step = quote(&n.to_string());
    let name = quote(svc);
    let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let sleep = opts.poll_secs.max(1);
    let progress = record::PROGRESS;
    let mut s = format!(
        "$__deadline = (Get-Date).AddSeconds({})\n",
        opts.timeout_secs
    );
    s.push_str(&dependents_to_start(svc));
    s.push_str(&format!("$__sc = Get-Service -Name {name}\n"));
    s.push_str(&record_underway(svc, n));
    if let Some(h) = host {
        s.push_str(&databases_to_mount("__mounted", h));
    }
    s.push_str(&format!(
        "$__waiting = $true\n\
         while ($__waiting) {{\n\
         $__status = 'unknown'\n\
         try {{ $__sc.Refresh()\n$__status = [string]$__sc.Status }} catch {{ }}\n\
         __exctl_emit '{progress}' {step} $__status\n\
         if ($__status -ne 'StopPending') {{ $__waiting = $false }} elseif ((Get-Date) -gt $__deadline) {{\n\
         throw ({stop_msg} + $__status)\n\
         }} else {{ Start-Sleep -Seconds {sleep} }}\n\
         }}\n\
         if ($__status -eq 'Stopped') {{ $__sc.Start() }}\n",
        stop_msg = quote(&format!(
            "{svc}{on} did not finish stopping within {} s: the service is ",
            opts.timeout_secs
        )),
    ));
    s.push_str(&start_phase(svc, n, host, opts));
    s
}

/// The statements that make `$__deps` the dependants of `svc` to start once it runs:
/// those running now (a stop takes them down), those that start automatically, and
/// those an earlier restart by exctl stopped and did not see start again (recorded under
/// [`UNDERWAY_KEY`]).
fn dependents_to_start(svc: &str) -> String {
    let mut s = recorded_dependents(svc);
    s.push_str(&dependents_where(
        svc,
        "__deps",
        "[string]$__x.Status -eq 'Running' -or ($__xm -eq 'Auto') -or ($__rec -contains [string]$__x.Name)",
    ));
    s
}

/// The statements that make `$__rec` the dependants of `svc` an unfinished restart by
/// exctl recorded as stopped ([`UNDERWAY_KEY`]; `$__p` is the record, `$null` without).
fn recorded_dependents(svc: &str) -> String {
    format!(
        "$__rec = @()\n\
         try {{\n\
         $__p = Get-ItemProperty -Path {k} -Name {n} -ErrorAction SilentlyContinue\n\
         if ($__p -ne $null) {{ $__rec = @(([string]$__p.{svc}) -split ',') }}\n\
         }} catch {{ }}\n",
        k = quote(UNDERWAY_KEY),
        n = quote(svc),
    )
}

/// The statements that make `$var` the names of the dependants of `svc` for which
/// `condition` holds (`$__x` the dependant, `$__xm` its WMI start mode, `$__rec` from
/// [`recorded_dependents`]).
fn dependents_where(svc: &str, var: &str, condition: &str) -> String {
    format!(
        "${var} = @(foreach ($__x in @(Get-Service -Name {n} -DependentServices)) {{\n\
         $__xm = ''\n\
         try {{ $__xm = [string](Get-WmiObject -Class Win32_Service -Filter (\"Name='\" + [string]$__x.Name + \"'\")).StartMode }} catch {{ }}\n\
         if ({condition}) {{ [string]$__x.Name }}\n\
         }})\n",
        n = quote(svc),
    )
}

/// Statements that record on the server that exctl is stopping or starting `svc`, and
/// which dependants it must start again (`$__deps`): if the restart does not finish,
/// the next observation knows the service and those dependants must run (see
/// [`Health`]). Cleared when the service and its dependants are back.
fn record_underway(svc: &str, n: usize) -> String {
    set_value_or_note(
        UNDERWAY_KEY,
        svc,
        "($__deps -join ',')",
        n,
        &format!(
            "could not record on the server that {svc} is being restarted (should it not come back, the next plan cannot name the dependent services to start): "
        ),
    )
}

/// Statements that set the registry value `name` of `key` (created with its parent when
/// absent) to the PowerShell expression `value`; a failure is a note of step `n` starting
/// with `failure`, not a failure of the step.
fn set_value_or_note(key: &str, name: &str, value: &str, n: usize, failure: &str) -> String {
    let parent = key.rsplit_once('\\').map(|(p, _)| p).unwrap_or(key);
    format!(
        "try {{\n\
         if (-not (Test-Path -Path {p})) {{ $null = New-Item -Path {p} }}\n\
         if (-not (Test-Path -Path {k})) {{ $null = New-Item -Path {k} }}\n\
         Set-ItemProperty -Path {k} -Name {s} -Value {value}\n\
         }} catch {{ __exctl_emit '{note}' {step} ({msg} + (__exctl_error_text $_)) }}\n",
        p = quote(parent),
        k = quote(key),
        s = quote(name),
        note = record::NOTE,
        step = quote(&n.to_string()),
        msg = quote(failure),
    )
}

/// The statements that make `$var` the databases of `host` that should be mounted: those
/// whose active copy is on `host` and that mount when the store starts (`MountAtStartup`,
/// true unless an administrator cleared it; Set-MailboxDatabase, Exchange 2010).
fn databases_to_mount(var: &str, host: &str) -> String {
    format!(
        "${var} = @(foreach ($__d in @(Get-MailboxDatabase -Server {h} -Status)) {{ if ($__d.MountAtStartup -ne $false -and [string]$__d.Server -eq {h}) {{ [string]$__d.Name }} }})\n",
        h = quote(host)
    )
}

/// The second half of a restart or recovery: once `svc` runs, the dependants in `$__deps`
/// are started, and the step waits until it and they run (and, with `host`, until the
/// databases in `$__mounted` are mounted), then clears the record of
/// [`record_underway`]. Every wait polls and reports; past the deadline the step fails
/// with what is still missing.
fn start_phase(svc: &str, n: usize, host: Option<&str>, opts: &RestartScriptOptions) -> String {
    let step = quote(&n.to_string());
    let name = quote(svc);
    let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let sleep = opts.poll_secs.max(1);
    let progress = record::PROGRESS;
    let mut s = format!(
        "$__depstarted = $false\n\
         $__waiting = $true\n\
         while ($__waiting) {{\n\
         $__status = 'unknown'\n\
         try {{ $__status = [string](Get-Service -Name {name}).Status }} catch {{ }}\n\
         if ($__status -eq 'Running' -and -not $__depstarted) {{\n\
         $__depstarted = $true\n\
         foreach ($__d in $__deps) {{\n\
         try {{ $__ds = Get-Service -Name $__d\n\
         if ([string]$__ds.Status -eq 'Stopped') {{ $__ds.Start() }} }} catch {{ __exctl_emit '{note}' {step} ({dep_fail} + $__d + ': ' + (__exctl_error_text $_)) }}\n\
         }}\n\
         }}\n\
         $__down = @(foreach ($__d in $__deps) {{\n\
         $__ds = 'unknown'\n\
         try {{ $__ds = [string](Get-Service -Name $__d).Status }} catch {{ }}\n\
         if ($__ds -ne 'Running') {{ $__d }}\n\
         }})\n",
        note = record::NOTE,
        dep_fail = quote(&format!(
            "could not start again, after {svc}, the dependent service "
        )),
    );
    let mut done_condition = "$__status -eq 'Running' -and $__down.Count -eq 0".to_string();
    if let Some(h) = host {
        s.push_str("$__now = @()\ntry {\n");
        s.push_str(&mounted_databases("__now", h));
        s.push_str("} catch { }\n");
        s.push_str(
            "$__missing = @(foreach ($__m in $__mounted) { if (-not ($__now -contains $__m)) { $__m } })\n",
        );
        s.push_str(&format!(
            "__exctl_emit '{}' {step} $__missing\n",
            record::MISSING
        ));
        done_condition.push_str(" -and $__missing.Count -eq 0");
    }
    s.push_str(&format!("__exctl_emit '{progress}' {step} $__status\n"));
    let mut timeout = format!(
        "$__msg = {} + $__status\n\
         if ($__down.Count -gt 0) {{ $__msg = $__msg + {} + ($__down -join ', ') }}\n",
        quote(&format!(
            "{svc}{on} did not come back within {} s: the service is ",
            opts.timeout_secs
        )),
        quote("; dependent services not running again: "),
    );
    if host.is_some() {
        timeout.push_str(&format!(
            "if ($__missing.Count -gt 0) {{ $__msg = $__msg + {} + ($__missing -join ', ') }}\n",
            quote("; databases still dismounted: ")
        ));
    }
    timeout.push_str("throw $__msg\n");
    // `elseif` and `else` on the line of the closing brace: the form every PowerShell
    // parser reads, interactive or not.
    s.push_str(&format!(
        "if ({done_condition}) {{ $__waiting = $false }} elseif ((Get-Date) -gt $__deadline) {{\n\
         {timeout}}} else {{ Start-Sleep -Seconds {sleep} }}\n}}\n"
    ));
    s.push_str(&format!(
        "try {{ Remove-ItemProperty -Path {k} -Name {name} -ErrorAction SilentlyContinue }} catch {{ }}\n",
        k = quote(UNDERWAY_KEY),
    ));
    s
}

/// Statements, for a step that changed something requiring `svc` to restart, that mark
/// on the server when that restart became due (see the module docs). A failure to mark
/// is a note, not a failure of the change, which has been made.
pub fn mark_restart_due(svc: Service, n: usize) -> String {
    set_value_or_note(
        MARKER_KEY,
        svc.name(),
        "((Get-Date).ToUniversalTime().ToString('s'))",
        n,
        &format!(
            "could not record on the server that {svc} needs a restart (the next plan cannot show it as pending): "
        ),
    )
}

/// The observation key of the restart facts of `svc`.
pub fn facts_key(svc: Service) -> String {
    format!("__restart:{}", svc.name())
}

/// The observe-script fragment that reports, for each service, what [`context`] needs.
pub fn observe_facts(host: &str, services: &BTreeSet<Service>) -> String {
    let mut s = String::new();
    for svc in services {
        let r = quote(&facts_key(*svc));
        let filter = quote(&format!("Name='{}'", svc.name()));
        s.push_str(&format!(
            "try {{\n\
             $__w = @(Get-WmiObject -Class Win32_Service -Filter {filter})\n\
             if ($__w.Count -gt 0) {{\n\
             __exctl_emit {r} 'State' ([string]$__w[0].State)\n\
             __exctl_emit {r} 'StartMode' ([string]$__w[0].StartMode)\n\
             if ($__w[0].ProcessId -gt 0) {{ __exctl_emit {r} 'StartedUtc' ((Get-Process -Id $__w[0].ProcessId).StartTime.ToUniversalTime().ToString('s')) }}\n\
             }}\n\
             }} catch {{ __exctl_emit {r} '__error' ([string]$_.Exception.Message) }}\n\
             try {{\n\
             $__p = Get-ItemProperty -Path {k} -Name {n} -ErrorAction SilentlyContinue\n\
             if ($__p -ne $null) {{ __exctl_emit {r} 'MarkedUtc' ([string]$__p.{prop}) }}\n\
             }} catch {{ }}\n",
            k = quote(MARKER_KEY),
            n = quote(svc.name()),
            prop = svc.name(),
        ));
        match svc.protocol() {
            Some((_, getter)) => s.push_str(&format!(
                "try {{\n\
                 $__c = ({getter} -Server {}).WhenChangedUTC\n\
                 if ($__c -ne $null) {{ __exctl_emit {r} 'SettingsChangedUtc' ($__c.ToString('s')) }}\n\
                 }} catch {{ }}\n",
                quote(host)
            )),
            None => s.push_str(&format!(
                "try {{\n{}__exctl_emit {r} 'ActiveReplicated' $__replicated\n}} catch {{ }}\n",
                replicated_databases(host)
            )),
        }
    }
    s
}

/// The observation key of a service's health (`__health:MSExchangeIS`).
pub fn health_key(svc: Service) -> String {
    format!("__health:{}", svc.name())
}

/// The observe-script fragment that reports the health of the host: for the Information
/// Store and the IMAP4 service, their status and start mode, whether a restart by exctl
/// is under way or was left unfinished ([`UNDERWAY_KEY`]), and the dependants that should
/// run and do not; for the store, the databases that should be mounted and are not.
/// A service the host does not have (MSExchangeIS on a Client Access server) reports
/// nothing. Read by [`Health::read`]; part of every observation (plan, apply's
/// verification, doctor), whatever the resources.
pub fn observe_health(host: &str) -> String {
    let mut s = String::new();
    for svc in [Service::InformationStore, Service::Imap4] {
        let name = svc.name();
        let mut body = format!(
            "$__hs = @(foreach ($__s in @(Get-Service -Name {wild})) {{ if ([string]$__s.Name -eq {n}) {{ $__s }} }})\n\
             if ($__hs.Count -gt 0) {{\n\
             __exctl_emit {r} 'Status' ([string]$__hs[0].Status)\n\
             $__hw = @(Get-WmiObject -Class Win32_Service -Filter {f})\n\
             if ($__hw.Count -gt 0) {{ __exctl_emit {r} 'StartMode' ([string]$__hw[0].StartMode) }}\n\
             $__p = $null\n\
             {recorded}\
             if ($__p -ne $null) {{ __exctl_emit {r} 'Underway' 'True' }}\n\
             {down}\
             __exctl_emit {r} 'DependentsDown' $__down\n",
            wild = quote(&format!("{name}*")),
            n = quote(name),
            r = quote(&health_key(svc)),
            f = quote(&format!("Name='{name}'")),
            recorded = recorded_dependents(name),
            down = dependents_where(
                name,
                "__down",
                "[string]$__x.Status -ne 'Running' -and (($__xm -eq 'Auto') -or ($__rec -contains [string]$__x.Name))",
            ),
        );
        if svc == Service::InformationStore {
            body.push_str(&format!(
                "$__should = @()\n{}\
                 $__now = @()\n{}\
                 __exctl_emit {r} 'DatabasesDown' @(foreach ($__m in $__should) {{ if (-not ($__now -contains $__m)) {{ $__m }} }})\n",
                databases_to_mount("__should", host),
                mounted_databases("__now", host),
                r = quote(&health_key(svc)),
            ));
        }
        body.push_str("}\n");
        s.push_str(&exctl_exchange::record::guarded(&health_key(svc), &body));
    }
    s
}

/// What the host reported of one service's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceHealth {
    /// `Running`, `Stopped`, `StartPending`, `StopPending`...
    pub status: String,
    /// `Auto`, `Manual`, `Disabled` (empty when WMI could not say).
    pub start_mode: String,
    /// A restart or start by exctl was under way and has not finished.
    pub underway: bool,
    /// Dependants that should run (they start automatically, or exctl stopped them) and
    /// do not.
    pub dependents_down: Vec<String>,
    /// Databases that should be mounted (active here, MountAtStartup) and are not (the
    /// Information Store only).
    pub databases_down: Vec<String>,
}

impl ServiceHealth {
    /// Whether the service runs.
    pub fn running(&self) -> bool {
        self.status.eq_ignore_ascii_case("Running")
    }
}

/// Why a service of the host must be brought back before the host is in its desired
/// state: a plan shows it as a step, apply performs it, doctor reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recovery {
    /// What is wrong, in the server's terms (`MSExchangeIS is StartPending; databases not
    /// mounted: DB01`).
    pub reason: String,
    /// The service itself is not running (a start, not a restart, brings it back).
    pub service_down: bool,
}

/// The health of a host's Exchange services, from [`observe_health`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// By service; absent when the host does not have it or it could not be read.
    pub services: Vec<(Service, ServiceHealth)>,
    /// Reads that failed, for the plan's notes.
    pub notes: Vec<String>,
}

fn list(obs: &Observations, key: &str, attr: &str) -> Vec<String> {
    match obs.get(key, attr) {
        Some(RawValue::List(l)) => l.iter().filter(|s| !s.is_empty()).cloned().collect(),
        Some(RawValue::Str(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl Health {
    /// Decodes what [`observe_health`] reported.
    pub fn read(host: &str, obs: &Observations) -> Health {
        let mut h = Health::default();
        for svc in [Service::InformationStore, Service::Imap4] {
            let key = health_key(svc);
            if let Some(e) = obs.error(&key) {
                h.notes
                    .push(format!("cannot read the state of {svc} on {host}: {e}"));
                continue;
            }
            let Some(status) = text(obs, &key, "Status") else {
                continue;
            };
            h.services.push((
                svc,
                ServiceHealth {
                    status,
                    start_mode: text(obs, &key, "StartMode").unwrap_or_default(),
                    underway: text(obs, &key, "Underway").is_some(),
                    dependents_down: list(obs, &key, "DependentsDown"),
                    databases_down: list(obs, &key, "DatabasesDown"),
                },
            ));
        }
        h
    }

    /// What the host reported of `svc`.
    pub fn service(&self, svc: Service) -> Option<&ServiceHealth> {
        self.services
            .iter()
            .find(|(s, _)| *s == svc)
            .map(|(_, h)| h)
    }

    /// Why `svc` must be brought back, if it must: it does not run although it starts
    /// automatically or exctl stopped it (a restart left unfinished); dependants that
    /// should run do not; databases that should be mounted are not. A service an
    /// administrator disabled, or a Manual one exctl did not stop, is left as it is.
    pub fn recovery(&self, svc: Service) -> Option<Recovery> {
        let h = self.service(svc)?;
        let mut why = Vec::new();
        let wanted = !h.start_mode.eq_ignore_ascii_case("Disabled")
            && (h.start_mode.eq_ignore_ascii_case("Auto") || h.underway);
        let service_down = !h.running() && wanted;
        if service_down {
            why.push(format!(
                "{svc} is {}{}",
                h.status,
                if h.underway {
                    " (a restart by exctl did not finish)"
                } else {
                    ""
                }
            ));
        }
        if !h.dependents_down.is_empty() {
            why.push(format!(
                "dependent services not running: {}",
                h.dependents_down.join(", ")
            ));
        }
        if !h.databases_down.is_empty() {
            why.push(format!(
                "databases not mounted: {}",
                h.databases_down.join(", ")
            ));
        }
        if why.is_empty() || (!h.running() && !wanted) {
            return None;
        }
        Some(Recovery {
            reason: why.join("; "),
            service_down,
        })
    }
}

fn text(obs: &Observations, key: &str, attr: &str) -> Option<String> {
    match obs.get(key, attr) {
        Some(RawValue::Str(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// Reads a `yyyy-MM-ddTHH:mm:ss` time (`.ToString('s')` of a UTC time: culture-invariant;
/// `'u'`'s `yyyy-MM-dd HH:mm:ssZ` is accepted too) as seconds since 1970-01-01 UTC.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What the host's facts say about restarts: which are owed from before, what to warn
/// about, and notes when the facts could not be read.
pub fn context(
    host: &str,
    obs: &Observations,
    services: &BTreeSet<Service>,
) -> (RestartContext, Vec<String>) {
    let mut ctx = RestartContext::default();
    let mut notes = Vec::new();
    for svc in services {
        let key = facts_key(*svc);
        if let Some(e) = obs.error(&key) {
            notes.push(format!(
                "cannot tell whether {svc} on {host} owes a restart from before: {e}"
            ));
        }
        if *svc == Service::InformationStore
            && let Some(RawValue::List(dbs)) = obs.get(&key, "ActiveReplicated")
            && !dbs.is_empty()
        {
            ctx.warnings.push((*svc, dag_warning(host, dbs)));
        }
        let state = text(obs, &key, "State");
        let running = state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Running"));
        // A protocol service that is stopped and starts by hand reads its settings when
        // someone starts it: restarting it would start it, which nobody asked for.
        if svc.protocol().is_some()
            && let Some(state) = &state
            && !running
        {
            // An unknown start mode decides nothing: the restart step checks again.
            if let Some(mode) = text(obs, &key, "StartMode")
                && !mode.eq_ignore_ascii_case("Auto")
            {
                ctx.idle.push((
                    *svc,
                    format!(
                        "{svc} is {state} and its start mode is {mode}: no restart, the settings take effect when it starts"
                    ),
                ));
            }
        }
        let Some(started) = text(obs, &key, "StartedUtc") else {
            continue;
        };
        let Some(started_at) = parse_utc(&started) else {
            notes.push(format!(
                "{svc} on {host}: cannot read its start time '{started}'"
            ));
            continue;
        };
        if !running {
            continue;
        }
        let marked = text(obs, &key, "MarkedUtc").and_then(|m| parse_utc(&m).map(|t| (t, m)));
        let changed =
            text(obs, &key, "SettingsChangedUtc").and_then(|m| parse_utc(&m).map(|t| (t, m)));
        let why = match (marked, changed) {
            (Some((t, m)), _) if t > started_at => Some(format!(
                "exctl changed settings at {m} (server time), after {svc} started at {started}"
            )),
            (_, Some((t, m))) if t > started_at + AD_CLOCK_TOLERANCE_SECS => Some(format!(
                "the settings changed at {m} (Active Directory), after {svc} started at {started}"
            )),
            _ => None,
        };
        if let Some(why) = why {
            ctx.pending.push((*svc, why));
        }
    }
    (ctx, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_universal_sortable_times() {
        assert_eq!(parse_utc("1970-01-01 00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2000-03-01 00:00:01Z"), Some(951_868_801));
        assert_eq!(parse_utc("2024-02-29T12:30:00Z"), Some(1_709_209_800));
        assert_eq!(parse_utc("garbage"), None);
        assert_eq!(parse_utc("2024-13-01 00:00:00Z"), None);
    }

    fn obs(records: &[(&str, &str)]) -> Observations {
        let mut o = Observations::default();
        for (a, v) in records {
            o.insert(
                &facts_key(Service::InformationStore),
                a,
                RawValue::Str((*v).into()),
            );
        }
        o
    }

    fn is() -> BTreeSet<Service> {
        [Service::InformationStore].into_iter().collect()
    }

    #[test]
    fn a_change_marked_after_the_service_started_is_pending() {
        let o = obs(&[
            ("State", "Running"),
            ("StartedUtc", "2024-05-01 08:00:00Z"),
            ("MarkedUtc", "2024-05-01 09:00:00Z"),
        ]);
        let (ctx, notes) = context("EX01", &o, &is());
        assert!(notes.is_empty());
        assert_eq!(ctx.pending.len(), 1);
        assert!(ctx.pending[0].1.contains("2024-05-01 09:00:00Z"));
    }

    #[test]
    fn a_restart_after_the_mark_or_a_stopped_service_owes_nothing() {
        let o = obs(&[
            ("State", "Running"),
            ("StartedUtc", "2024-05-01 09:00:00Z"),
            ("MarkedUtc", "2024-05-01 09:00:00Z"),
        ]);
        assert!(context("EX01", &o, &is()).0.pending.is_empty());
        let o = obs(&[
            ("State", "Stopped"),
            ("StartedUtc", "2024-05-01 08:00:00Z"),
            ("MarkedUtc", "2024-05-01 09:00:00Z"),
        ]);
        assert!(context("EX01", &o, &is()).0.pending.is_empty());
    }

    #[test]
    fn a_stopped_protocol_service_that_starts_by_hand_needs_no_restart() {
        let facts = |svc: Service, state: &str, mode: &str| {
            let mut o = Observations::default();
            let k = facts_key(svc);
            o.insert(&k, "State", RawValue::Str(state.into()));
            o.insert(&k, "StartMode", RawValue::Str(mode.into()));
            o
        };
        let pop: BTreeSet<Service> = [Service::Pop3].into_iter().collect();
        let (ctx, _) = context("EX01", &facts(Service::Pop3, "Stopped", "Manual"), &pop);
        assert_eq!(ctx.idle.len(), 1);
        assert_eq!(
            ctx.idle[0].1,
            "MSExchangePOP3 is Stopped and its start mode is Manual: no restart, the settings take effect when it starts"
        );
        for (state, mode) in [
            ("Running", "Manual"),
            ("Stopped", "Auto"),
            ("Running", "Auto"),
        ] {
            let (ctx, _) = context("EX01", &facts(Service::Pop3, state, mode), &pop);
            assert!(ctx.idle.is_empty(), "{state} {mode}");
        }
        // The Information Store is always restarted when a change needs it.
        let (ctx, _) = context(
            "EX01",
            &facts(Service::InformationStore, "Stopped", "Manual"),
            &is(),
        );
        assert!(ctx.idle.is_empty());
    }

    #[test]
    fn active_directory_times_allow_for_clock_skew() {
        let mut o = Observations::default();
        let k = facts_key(Service::Imap4);
        for (a, v) in [
            ("State", "Running"),
            ("StartedUtc", "2024-05-01 09:00:00Z"),
            ("SettingsChangedUtc", "2024-05-01 09:01:00Z"),
        ] {
            o.insert(&k, a, RawValue::Str(v.into()));
        }
        let imap: BTreeSet<Service> = [Service::Imap4].into_iter().collect();
        assert!(context("EX01", &o, &imap).0.pending.is_empty());
        o.insert(
            &k,
            "SettingsChangedUtc",
            RawValue::Str("2024-05-01 10:00:00Z".into()),
        );
        assert_eq!(context("EX01", &o, &imap).0.pending.len(), 1);
    }

    #[test]
    fn scripts_poll_until_back_and_fail_at_the_deadline() {
        let opts = RestartScriptOptions {
            timeout_secs: 60,
            poll_secs: 2,
            move_active_databases: false,
        };
        let s = information_store_body("EX01", 3, &opts);
        assert!(s.contains("Get-MailboxDatabase -Server 'EX01' -Status"));
        assert!(s.contains("$__sc = Get-Service -Name 'MSExchangeIS'"));
        assert!(s.contains("Get-Service -Name 'MSExchangeIS' -DependentServices"));
        assert!(
            !s.contains("Restart-Service"),
            "Restart-Service waits without a bound"
        );
        assert!(s.contains("(Get-Date).AddSeconds(60)"));
        assert!(s.contains("Start-Sleep -Seconds 2"));
        assert!(s.contains("throw $__msg"));
        assert!(!s.contains("StartDagServerMaintenance"));
        let m = information_store_body(
            "EX01",
            3,
            &RestartScriptOptions {
                move_active_databases: true,
                ..opts
            },
        );
        let start = m.find("StartDagServerMaintenance.ps1").unwrap();
        let restart = m.find("$__sc.Stop()").unwrap();
        let stop = m.find("StopDagServerMaintenance.ps1").unwrap();
        assert!(start < restart && restart < stop);
        let i = protocol_body(Service::Imap4, 2, &opts);
        assert!(
            i.contains("-eq 'Auto'")
                && i.contains("$__sc = Get-Service -Name 'MSExchangeIMAP4'")
                && i.contains("did not stop within 60 s")
        );
    }
}
