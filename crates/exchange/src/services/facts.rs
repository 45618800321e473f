//! Pending restarts and health: the observe-script fragments that report, per service,
//! whether a restart is owed from before ([`observe_facts`], decoded by [`facts`]) and
//! whether the service, its dependants and (for the store) its databases are up
//! ([`observe_health`], decoded by [`Health::read`]).
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
//! # Health
//!
//! Every observation (plan, apply's verification, doctor) reports the health of the
//! services whose spec asks for it ([`super::ServiceSpec::health`]: MSExchangeIS and
//! MSExchangeIMAP4), whatever the resources: a host whose store is down is never in sync.
//!
//! The PowerShell these fragments use is listed in [`super::restart`]'s documentation.

use std::collections::BTreeSet;

use exctl_pwsh::quote;

use super::Service;
use super::restart::{
    dag_warning, databases_to_mount, dependents_where, mounted_databases, recorded_dependents,
    replicated_databases, set_value_or_note,
};
use crate::record::Observations;
use crate::value::RawValue;

/// Where applied changes leave the time a restart became due (one value per service).
pub const MARKER_KEY: &str = r"HKLM:\SOFTWARE\exctl\LastChangeRequiringRestart";

/// How much later than the service's start an Active Directory change time must be to
/// count as "changed after the service started": the skew a domain tolerates.
pub const AD_CLOCK_TOLERANCE_SECS: i64 = 300;

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

/// The observe-script fragment that reports, for each service, what [`facts`] needs.
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
        if let Some((_, getter)) = svc.protocol() {
            s.push_str(&format!(
                "try {{\n\
                 $__c = ({getter} -Server {}).WhenChangedUTC\n\
                 if ($__c -ne $null) {{ __exctl_emit {r} 'SettingsChangedUtc' ($__c.ToString('s')) }}\n\
                 }} catch {{ }}\n",
                quote(host)
            ));
        }
        if svc.spec().mailbox_databases {
            s.push_str(&format!(
                "try {{\n{}__exctl_emit {r} 'ActiveReplicated' $__replicated\n}} catch {{ }}\n",
                replicated_databases(host)
            ));
        }
    }
    s
}

/// The observation key of a service's health (`__health:MSExchangeIS`).
pub fn health_key(svc: Service) -> String {
    format!("__health:{}", svc.name())
}

/// The observe-script fragment that reports the health of the host: for each of
/// `services` whose spec asks for it (the Information Store, IMAP4), its status and start mode, whether a restart by exctl
/// is under way or was left unfinished ([`super::restart::UNDERWAY_KEY`]), and the
/// dependants that should run and do not; for the store (a service that mounts them), the databases that should be mounted and are not.
/// A service the host does not have (MSExchangeIS on a Client Access server) reports
/// nothing. Read by [`Health::read`]; part of every observation (plan, apply's
/// verification, doctor), whatever the resources.
pub fn observe_health(host: &str, services: &[Service]) -> String {
    let mut s = String::new();
    for svc in services.iter().copied().filter(|s| s.spec().health) {
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
        if svc.spec().mailbox_databases {
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
        s.push_str(&crate::record::guarded(&health_key(svc), &body));
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
    /// Decodes what [`observe_health`] reported of `services`.
    pub fn read(host: &str, obs: &Observations, services: &[Service]) -> Health {
        let mut h = Health::default();
        for svc in services.iter().copied().filter(|s| s.spec().health) {
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

/// What a host's facts say about restarts beyond the changes of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Restarts owed from before, with the reason.
    pub pending: Vec<(Service, String)>,
    /// Warnings by service, for its restart step (active DAG copies that dismount).
    pub warnings: Vec<(Service, String)>,
    /// Protocol services that are stopped and start by hand, with why no restart of
    /// theirs is due.
    pub idle: Vec<(Service, String)>,
}

/// Decodes what [`observe_facts`] reported of `services`: which restarts are owed from
/// before, what to warn about, and notes when the facts could not be read.
pub fn facts(host: &str, obs: &Observations, services: &BTreeSet<Service>) -> (Facts, Vec<String>) {
    let mut ctx = Facts::default();
    let mut notes = Vec::new();
    for svc in services {
        let key = facts_key(*svc);
        if let Some(e) = obs.error(&key) {
            notes.push(format!(
                "cannot tell whether {svc} on {host} owes a restart from before: {e}"
            ));
        }
        if svc.spec().mailbox_databases
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
    use crate::kinds::{imap, pop};
    use crate::services::INFORMATION_STORE;

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
            o.insert(&facts_key(INFORMATION_STORE), a, RawValue::Str((*v).into()));
        }
        o
    }

    fn is() -> BTreeSet<Service> {
        [INFORMATION_STORE].into_iter().collect()
    }

    #[test]
    fn a_change_marked_after_the_service_started_is_pending() {
        let o = obs(&[
            ("State", "Running"),
            ("StartedUtc", "2024-05-01 08:00:00Z"),
            ("MarkedUtc", "2024-05-01 09:00:00Z"),
        ]);
        let (ctx, notes) = facts("EX01", &o, &is());
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
        assert!(facts("EX01", &o, &is()).0.pending.is_empty());
        let o = obs(&[
            ("State", "Stopped"),
            ("StartedUtc", "2024-05-01 08:00:00Z"),
            ("MarkedUtc", "2024-05-01 09:00:00Z"),
        ]);
        assert!(facts("EX01", &o, &is()).0.pending.is_empty());
    }

    #[test]
    fn a_stopped_protocol_service_that_starts_by_hand_needs_no_restart() {
        let reported = |svc: Service, state: &str, mode: &str| {
            let mut o = Observations::default();
            let k = facts_key(svc);
            o.insert(&k, "State", RawValue::Str(state.into()));
            o.insert(&k, "StartMode", RawValue::Str(mode.into()));
            o
        };
        let pop: BTreeSet<Service> = [pop::SERVICE].into_iter().collect();
        let (ctx, _) = facts("EX01", &reported(pop::SERVICE, "Stopped", "Manual"), &pop);
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
            let (ctx, _) = facts("EX01", &reported(pop::SERVICE, state, mode), &pop);
            assert!(ctx.idle.is_empty(), "{state} {mode}");
        }
        // The Information Store is always restarted when a change needs it.
        let (ctx, _) = facts(
            "EX01",
            &reported(INFORMATION_STORE, "Stopped", "Manual"),
            &is(),
        );
        assert!(ctx.idle.is_empty());
    }

    #[test]
    fn active_directory_times_allow_for_clock_skew() {
        let mut o = Observations::default();
        let k = facts_key(imap::SERVICE);
        for (a, v) in [
            ("State", "Running"),
            ("StartedUtc", "2024-05-01 09:00:00Z"),
            ("SettingsChangedUtc", "2024-05-01 09:01:00Z"),
        ] {
            o.insert(&k, a, RawValue::Str(v.into()));
        }
        let imap: BTreeSet<Service> = [imap::SERVICE].into_iter().collect();
        assert!(facts("EX01", &o, &imap).0.pending.is_empty());
        o.insert(
            &k,
            "SettingsChangedUtc",
            RawValue::Str("2024-05-01 10:00:00Z".into()),
        );
        assert_eq!(facts("EX01", &o, &imap).0.pending.len(), 1);
    }
}
