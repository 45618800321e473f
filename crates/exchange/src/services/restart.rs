//! The restart and recovery steps of apply: the PowerShell that restarts a service
//! (protocol services such as MSExchangeIMAP4 and MSExchangePOP3, and MSExchangeIS with
//! its databases and DAG copies) or brings it back, and waits for it.
//!
//! # Restart scripts
//!
//! A restart is a step of the apply script (the engine's `apply`); these functions write
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
//!   [`super::facts::facts`]); should the service have started between plan and apply, the step
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
//! Which body a service gets is its spec's business ([`restart_body`],
//! [`recovery_body`]): a service that mounts the mailbox databases gets the store's, any
//! other the protocol service's. The step wrapper and the order of steps are the
//! engine's.
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
//! script path (DAG maintenance only); `Remove-ItemProperty -Path -Name -ErrorAction
//! SilentlyContinue` clears the record of a restart under way. The observation fragments
//! of [`super::facts`] use the same, `Get-Service -Name` with a wildcard
//! (`MSExchangeIS*`: a service the host does not have is no error), and a protocol
//! service's settings cmdlet with `-Server` (`Get-ImapSettings`, `Get-PopSettings`:
//! `.WhenChangedUTC`).

use exctl_pwsh::quote;

use super::Service;

/// Where a restart or start by exctl records, while it runs, the service it is bringing
/// back (value name) and the dependants it must start again (value: comma-separated
/// names). Removed when the service and its dependants run again; left behind by a
/// restart that failed or was cut off, so the next observation knows what exctl stopped.
pub const UNDERWAY_KEY: &str = r"HKLM:\SOFTWARE\exctl\RestartUnderway";

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
fn protocol_body(service: Service, n: usize, opts: &RestartScriptOptions) -> String {
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

/// The statements that make `$__mounted` the names of the mounted databases of `host`.
pub(super) fn mounted_databases(var: &str, host: &str) -> String {
    format!(
        "${var} = @(foreach ($__d in @(Get-MailboxDatabase -Server {} -Status)) {{ if ($__d.Mounted -eq $true) {{ [string]$__d.Name }} }})\n",
        quote(host)
    )
}

/// Statements that make `$__replicated` the databases whose active copy is mounted on
/// `host` and that have copies on other servers: those dismount, rather than fail over,
/// when the store stops. Errors propagate (callers decide).
pub(super) fn replicated_databases(host: &str) -> String {
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

/// The body of the restart step `n` on `host` of a service that mounts the mailbox
/// databases (MSExchangeIS).
fn store_body(service: Service, host: &str, n: usize, opts: &RestartScriptOptions) -> String {
    let svc = service.name();
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

/// What a restart and a recovery of `svc` (step `n`) both begin with: the deadline, the
/// dependants to start afterwards, the service's controller in `$__sc`, and the record
/// that a restart by exctl is under way.
fn sequence_start(svc: &str, n: usize, opts: &RestartScriptOptions) -> String {
    let mut s = format!(
        "$__deadline = (Get-Date).AddSeconds({})\n",
        opts.timeout_secs
    );
    s.push_str(&dependents_to_start(svc));
    s.push_str(&format!("$__sc = Get-Service -Name {}\n", quote(svc)));
    s.push_str(&record_underway(svc, n));
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
    let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let sleep = opts.poll_secs.max(1);
    let progress = record::PROGRESS;
    let mut s = sequence_start(svc, n, opts);
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
/// not healthy (see [`super::Health`]): a store left down by a failed restart, its dependants
/// left stopped, a store that is still starting.
fn recovery_sequence(
    svc: &str,
    n: usize,
    host: Option<&str>,
    opts: &RestartScriptOptions,
) -> String {
    let step = quote(&n.to_string());
    let on = host.map(|h| format!(" on {h}")).unwrap_or_default();
    let sleep = opts.poll_secs.max(1);
    let progress = record::PROGRESS;
    let mut s = sequence_start(svc, n, opts);
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
pub(super) fn recorded_dependents(svc: &str) -> String {
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
pub(super) fn dependents_where(svc: &str, var: &str, condition: &str) -> String {
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
/// [`super::Health`]). Cleared when the service and its dependants are back.
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
pub(super) fn set_value_or_note(
    key: &str,
    name: &str,
    value: &str,
    n: usize,
    failure: &str,
) -> String {
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
pub(super) fn databases_to_mount(var: &str, host: &str) -> String {
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

/// The body of restart step `n` of `svc` on `host`: the store's restart (databases, DAG
/// copies) for a service that mounts the mailbox databases, a protocol service's
/// otherwise.
pub fn restart_body(svc: Service, host: &str, n: usize, opts: &RestartScriptOptions) -> String {
    if svc.spec().mailbox_databases {
        store_body(svc, host, n, opts)
    } else {
        protocol_body(svc, n, opts)
    }
}

/// The body of step `n` that brings back `svc` on `host` without stopping it (see
/// [`super::Health`]): with the databases for a service that mounts them.
pub fn recovery_body(svc: Service, host: &str, n: usize, opts: &RestartScriptOptions) -> String {
    let databases = svc.spec().mailbox_databases.then_some(host);
    recovery_sequence(svc.name(), n, databases, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::INFORMATION_STORE;

    #[test]
    fn scripts_poll_until_back_and_fail_at_the_deadline() {
        let opts = RestartScriptOptions {
            timeout_secs: 60,
            poll_secs: 2,
            move_active_databases: false,
        };
        let s = restart_body(INFORMATION_STORE, "EX01", 3, &opts);
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
        let m = restart_body(
            INFORMATION_STORE,
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
        let i = restart_body(crate::kinds::imap::SERVICE, "EX01", 2, &opts);
        assert!(
            i.contains("-eq 'Auto'")
                && i.contains("$__sc = Get-Service -Name 'MSExchangeIMAP4'")
                && i.contains("did not stop within 60 s")
        );
    }
}
