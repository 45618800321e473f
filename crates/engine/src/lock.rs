//! One apply at a time per host: a lock kept on the host itself.
//!
//! Two applies of one host at once (two operators, a CI job and a jump host) would both
//! change it and restart its Information Store twice. So before its first change, the
//! apply script takes a lock on the server, where every exctl sees it whatever machine it
//! runs on: the registry value `Lock` under `HKLM:\SOFTWARE\exctl`, created with
//! `New-ItemProperty`, which refuses a value that already exists ("The property already
//! exists."): of two applies racing, exactly one creates it. The value holds who, from
//! where, the run, since when and until when, `|`-separated:
//!
//! ```text
//! CONTOSO\ops@jump01|2026-12-07T16-20-38Z-4711|2026-12-07T16:21:02|2026-12-07T16:51:02
//! ```
//!
//! (times are the server's UTC clock, `ToString('s')`, so they compare as text.)
//!
//! - A host whose lock is held by another run fails before anything changes, saying "locked
//!   by USER@HOST since T (run R, expires E)".
//! - A lock past its expiry (a run that was killed) is taken over by the next apply. The
//!   expiry covers the whole apply of the host: its restarts' timeout and a margin.
//! - The lock is kept through the restarts and the verification, and released after them
//!   ([`release_script`]: only the run that holds it removes it), also when a step failed;
//!   after Ctrl+C the scripts under way run to their end and release it. A run killed
//!   outright leaves it until it expires, or until `exctl unlock HOST --force`
//!   ([`unlock_script`]).
//! - Every observation reads it ([`observe_script`]): a plan shows a held lock as a note.

use std::time::Duration;

use exctl_exchange::record::Observations;
use exctl_exchange::value::RawValue;
use exctl_pwsh::quote;

/// The registry key of the lock.
pub const KEY: &str = r"HKLM:\SOFTWARE\exctl";
/// The registry value of the lock.
pub const VALUE: &str = "Lock";
/// The record the apply script reports a refused lock under (attribute `0`).
pub const LOCKED_RECORD: &str = "__locked";
/// The observation key of the lock.
pub const OBSERVE_KEY: &str = "__lock";

/// Who takes the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    /// `USER@MACHINE` of the operator or job.
    pub holder: String,
    /// The run (the journal's name for it).
    pub run_id: String,
}

/// A lock as the host holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    /// `USER@MACHINE`.
    pub holder: String,
    /// The run.
    pub run_id: String,
    /// Since (server UTC, `yyyy-MM-ddTHH:mm:ss`).
    pub since: String,
    /// Until (server UTC).
    pub expires: String,
}

impl HeldLock {
    /// Reads the registry value's text.
    pub fn parse(text: &str) -> Option<HeldLock> {
        let mut p = text.split('|');
        let lock = HeldLock {
            holder: p.next()?.to_string(),
            run_id: p.next()?.to_string(),
            since: p.next()?.to_string(),
            expires: p.next()?.to_string(),
        };
        (!lock.holder.is_empty()).then_some(lock)
    }

    /// "locked by X since T (run R, expires E)".
    pub fn describe(&self) -> String {
        format!(
            "locked by {} since {} (run {}, expires {})",
            self.holder, self.since, self.run_id, self.expires
        )
    }
}

/// A field of the lock value: no separator, no line break.
fn field(s: &str) -> String {
    s.chars()
        .map(|c| if c == '|' || c.is_control() { '_' } else { c })
        .collect()
}

/// The apply-script fragment that takes the lock (after `$__exctl_ok = $true`, before
/// the first step): on a lock held by another run that has not expired, it reports
/// [`LOCKED_RECORD`] and clears `$__exctl_ok`, so no step runs.
pub fn acquire_script(spec: &LockOwner, ttl: Duration) -> String {
    let ttl = ttl.as_secs().max(60);
    format!(
        "$__lock_now = (Get-Date).ToUniversalTime()\n\
         $__lock_mine = {prefix} + $__lock_now.ToString('s') + '|' + $__lock_now.AddSeconds({ttl}).ToString('s')\n\
         $__lock_held = $false\n\
         try {{\n\
         if (-not (Test-Path -Path {key})) {{ $null = New-Item -Path {key} }}\n\
         $null = New-ItemProperty -Path {key} -Name {value} -Value $__lock_mine\n\
         $__lock_held = $true\n\
         }} catch {{\n\
         $__lock_other = ''\n\
         try {{ $__lock_other = [string](Get-ItemProperty -Path {key} -Name {value}).{value} }} catch {{ }}\n\
         $__lock_parts = @($__lock_other.Split('|'))\n\
         if ($__lock_parts.Count -ge 4 -and [string]$__lock_parts[3] -lt $__lock_now.ToString('s')) {{\n\
         try {{\n\
         Remove-ItemProperty -Path {key} -Name {value}\n\
         $null = New-ItemProperty -Path {key} -Name {value} -Value $__lock_mine\n\
         $__lock_held = $true\n\
         __exctl_emit '{note}' '0' ({expired} + $__lock_other)\n\
         }} catch {{ }}\n\
         }}\n\
         if (-not $__lock_held) {{\n\
         $__exctl_ok = $false\n\
         if ($__lock_parts.Count -ge 4) {{\n\
         __exctl_emit '{locked}' '0' ('locked by ' + $__lock_parts[0] + ' since ' + $__lock_parts[2] + ' (run ' + $__lock_parts[1] + ', expires ' + $__lock_parts[3] + ')')\n\
         }} else {{\n\
         __exctl_emit '{locked}' '0' ({unreadable} + (__exctl_error_text $_))\n\
         }}\n\
         }}\n\
         }}\n",
        prefix = quote(&format!("{}|{}|", field(&spec.holder), field(&spec.run_id))),
        key = quote(KEY),
        value = VALUE,
        note = crate::restart::record::NOTE,
        locked = LOCKED_RECORD,
        expired = quote("took over an expired lock: "),
        unreadable = quote("cannot take the apply lock: "),
    )
}

/// A script that releases the lock of `run_id` (and nobody else's).
pub fn release_script(run_id: &str) -> String {
    format!(
        "try {{\n\
         $__v = [string](Get-ItemProperty -Path {key} -Name {value} -ErrorAction Stop).{value}\n\
         if (@($__v.Split('|'))[1] -eq {run}) {{ Remove-ItemProperty -Path {key} -Name {value} }}\n\
         }} catch {{ }}\n",
        key = quote(KEY),
        value = VALUE,
        run = quote(&field(run_id)),
    )
}

/// The observe-script fragment that reports the lock, if one is held.
pub fn observe_script() -> String {
    format!(
        "try {{\n\
         $__p = Get-ItemProperty -Path {key} -Name {value} -ErrorAction SilentlyContinue\n\
         if ($__p -ne $null) {{ __exctl_emit '{k}' 'Value' ([string]$__p.{value})\n\
         __exctl_emit '{k}' 'Now' ((Get-Date).ToUniversalTime().ToString('s')) }}\n\
         }} catch {{ }}\n",
        key = quote(KEY),
        value = VALUE,
        k = OBSERVE_KEY,
    )
}

/// The lock an observation found, with the server's time then.
pub fn observed(obs: &Observations) -> Option<(HeldLock, String)> {
    let text = match obs.get(OBSERVE_KEY, "Value")? {
        RawValue::Str(s) => s.clone(),
        _ => return None,
    };
    let now = match obs.get(OBSERVE_KEY, "Now") {
        Some(RawValue::Str(s)) => s.clone(),
        _ => String::new(),
    };
    HeldLock::parse(&text).map(|l| (l, now))
}

/// The plan's note for a lock the host holds.
pub fn note(host: &str, lock: &HeldLock, now: &str) -> String {
    if !now.is_empty() && lock.expires.as_str() < now {
        format!(
            "{host}: a lock left by run {} of {} expired at {} (server time): the next apply takes it over",
            lock.run_id, lock.holder, lock.expires
        )
    } else {
        format!(
            "{host} is {}: an apply is under way there, or was cut off (exctl unlock {host} --force removes it once you know that run is gone)",
            lock.describe()
        )
    }
}

/// A script that removes the lock whoever holds it (`exctl unlock HOST --force`), and
/// reports what it removed under [`OBSERVE_KEY`] `Removed`.
pub fn unlock_script() -> String {
    format!(
        "$__p = Get-ItemProperty -Path {key} -Name {value} -ErrorAction SilentlyContinue\n\
         if ($__p -ne $null) {{\n\
         __exctl_emit '{k}' 'Removed' ([string]$__p.{value})\n\
         Remove-ItemProperty -Path {key} -Name {value}\n\
         }}\n",
        key = quote(KEY),
        value = VALUE,
        k = OBSERVE_KEY,
    )
}

/// The lock's lifetime for an apply of a host whose plan restarts `restarts` services
/// with `restart_timeout` each: long enough for the whole apply, short enough that a
/// killed run does not block the host for long.
pub fn ttl_for(restarts: usize, restart_timeout: Duration) -> Duration {
    let restarts = u32::try_from(restarts.max(1)).unwrap_or(u32::MAX);
    restart_timeout.saturating_mul(restarts) + Duration::from_secs(15 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_value_reads_back() {
        let l =
            HeldLock::parse("CONTOSO\\ops@jump01|run-1|2026-12-07T16:21:02|2026-12-07T16:51:02")
                .expect("parses");
        assert_eq!(
            l.describe(),
            "locked by CONTOSO\\ops@jump01 since 2026-12-07T16:21:02 (run run-1, expires 2026-12-07T16:51:02)"
        );
        assert!(HeldLock::parse("garbage").is_none());
        assert!(note("EX01", &l, "2026-12-07T17:00:00").contains("expired"));
        assert!(note("EX01", &l, "2026-12-07T16:30:00").contains("exctl unlock EX01 --force"));
    }

    #[test]
    fn fields_cannot_break_the_value() {
        let s = acquire_script(
            &LockOwner {
                holder: "a|b\nc".into(),
                run_id: "r".into(),
            },
            Duration::from_secs(600),
        );
        assert!(s.contains("'a_b_c|r|'"), "{s}");
        assert!(ttl_for(0, Duration::from_secs(60)) >= Duration::from_secs(60 + 900));
    }
}
