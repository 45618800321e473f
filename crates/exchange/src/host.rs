//! Reads of the host itself, for `exctl doctor`: the Exchange server's version and roles
//! (`Get-ExchangeServer`), a service's status and start mode, and the Application log's
//! events of a source. Each is a read-only fragment that reports through the record
//! protocol ([`crate::record`]) under a resource the caller names, guarded so that a
//! failed read is that read's `__error`, with its decoder.
//!
//! # The PowerShell these fragments use
//!
//! For the simulator, which interprets them: the record PRELUDE; `try`/`catch`, `if`,
//! `foreach` inside `@()`; `-eq -or -gt`; `[string]` casts; property access and `.Count`;
//! `Get-ExchangeServer -Identity` (`.AdminDisplayVersion`, `.ServerRole`);
//! `Get-Service -Name` (`.Status`); `Get-WmiObject -Class Win32_Service -Filter`
//! (`.StartMode`); `Get-Date` with `.AddSeconds(-n)`; `Get-EventLog -LogName
//! Application -Source -After -Newest -ErrorAction Stop` (`.EventID`, `.EntryType`,
//! `.TimeGenerated` with `.ToUniversalTime().ToString('s')`, `.Message`).

use exctl_pwsh::quote;

use crate::record::{self, Observations};
use crate::services::Service;
use crate::value::RawValue;

fn text(o: &Observations, resource: &str, attr: &str) -> Option<String> {
    match o.get(resource, attr) {
        Some(RawValue::Str(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn list(o: &Observations, resource: &str, attr: &str) -> Vec<String> {
    match o.get(resource, attr) {
        Some(RawValue::List(l)) => l.clone(),
        Some(RawValue::Str(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The fragment that reports `AdminDisplayVersion` and `ServerRole` of the Exchange
/// server `host` under `resource` (a failed read: `__error` of `<resource>:server`).
pub fn exchange_server_script(resource: &str, host: &str) -> String {
    let r = quote(resource);
    let h = quote(host);
    record::guarded(
        &format!("{resource}:server"),
        &format!(
            "$__x = Get-ExchangeServer -Identity {h}\n\
             __exctl_emit {r} 'AdminDisplayVersion' ([string]$__x.AdminDisplayVersion)\n\
             __exctl_emit {r} 'ServerRole' ([string]$__x.ServerRole)"
        ),
    )
}

/// What [`exchange_server_script`] reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeServer {
    /// `Version 14.3 (Build 123.4)` (empty when not reported).
    pub admin_display_version: String,
    /// `Mailbox, ClientAccess, HubTransport` (empty when not reported).
    pub server_role: String,
}

impl ExchangeServer {
    /// Decodes what was reported under `resource`; the read's error, if it failed.
    pub fn read(o: &Observations, resource: &str) -> Result<ExchangeServer, String> {
        if let Some(e) = o.error(&format!("{resource}:server")) {
            return Err(e.to_string());
        }
        Ok(ExchangeServer {
            admin_display_version: text(o, resource, "AdminDisplayVersion").unwrap_or_default(),
            server_role: text(o, resource, "ServerRole").unwrap_or_default(),
        })
    }
}

/// The fragment that reports the status and start mode of `svc` under `resource`, as
/// `<prefix>Status` and `<prefix>StartMode` (a failed read: `__error` of
/// `<resource>:<guard>`).
pub fn service_state_script(resource: &str, guard: &str, prefix: &str, svc: Service) -> String {
    let r = quote(resource);
    record::guarded(
        &format!("{resource}:{guard}"),
        &format!(
            "$__svc = Get-Service -Name {n}\n\
             __exctl_emit {r} '{prefix}Status' ([string]$__svc.Status)\n\
             $__w = @(Get-WmiObject -Class Win32_Service -Filter {f})\n\
             if ($__w.Count -gt 0) {{ __exctl_emit {r} '{prefix}StartMode' ([string]$__w[0].StartMode) }}",
            n = quote(svc.name()),
            f = quote(&format!("Name='{}'", svc.name())),
        ),
    )
}

/// What [`service_state_script`] reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// `Running`, `Stopped`... (`None`: not reported).
    pub status: Option<String>,
    /// `Auto`, `Manual`, `Disabled` (`None`: WMI did not say).
    pub start_mode: Option<String>,
}

impl ServiceState {
    /// Decodes what was reported under `resource` with `guard` and `prefix`; the read's
    /// error, if it failed.
    pub fn read(
        o: &Observations,
        resource: &str,
        guard: &str,
        prefix: &str,
    ) -> Result<ServiceState, String> {
        if let Some(e) = o.error(&format!("{resource}:{guard}")) {
            return Err(e.to_string());
        }
        Ok(ServiceState {
            status: text(o, resource, &format!("{prefix}Status")),
            start_mode: text(o, resource, &format!("{prefix}StartMode")),
        })
    }
}

/// Which events of a source count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    /// One event ID (filtered on `EventID`: a real log's `InstanceId` carries severity
    /// bits).
    Id(u32),
    /// Every error and warning.
    ErrorsAndWarnings,
}

impl EventFilter {
    fn condition(self) -> String {
        match self {
            EventFilter::Id(id) => format!("$__e.EventID -eq {id}"),
            EventFilter::ErrorsAndWarnings => {
                "[string]$__e.EntryType -eq 'Error' -or [string]$__e.EntryType -eq 'Warning'".into()
            }
        }
    }
}

/// The statement that sets `$__since`, the start of the period [`events_script`] reads:
/// `secs` seconds ago (at least one).
pub fn events_since(secs: u64) -> String {
    format!("$__since = (Get-Date).AddSeconds(-{})\n", secs.max(1))
}

/// The fragment that reports the Application log's events of `source` since `$__since`
/// (see [`events_since`]) that match `filter`, newest first, at most 1000: their UTC
/// times as `<key>Times` and the newest one's message as `<key>Message`, under
/// `resource` (a failed read: `__error` of `<resource>:<key>`). A source the log does not
/// know reads as no events.
pub fn events_script(resource: &str, key: &str, source: &str, filter: EventFilter) -> String {
    let r = quote(resource);
    let filter = filter.condition();
    record::guarded(
        &format!("{resource}:{key}"),
        &format!(
            "$__all = @()\n\
             try {{ $__all = @(Get-EventLog -LogName Application -Source {src} -After $__since -Newest 1000 -ErrorAction Stop) }} catch {{ }}\n\
             $__hits = @(foreach ($__e in $__all) {{ if ({filter}) {{ $__e }} }})\n\
             $__times = @(foreach ($__e in $__hits) {{ $__e.TimeGenerated.ToUniversalTime().ToString('s') }})\n\
             __exctl_emit {r} '{key}Times' $__times\n\
             if ($__hits.Count -gt 0) {{ __exctl_emit {r} '{key}Message' ([string]$__hits[0].Message) }}",
            src = quote(source),
        ),
    )
}

/// What [`events_script`] reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTimes {
    /// The events' times (UTC, `yyyy-MM-ddTHH:mm:ss`), newest first.
    pub times: Vec<String>,
    /// The newest one's message.
    pub newest_message: Option<String>,
}

impl EventTimes {
    /// Decodes what was reported under `resource` for `key`; the read's error, if it
    /// failed.
    pub fn read(o: &Observations, resource: &str, key: &str) -> Result<EventTimes, String> {
        if let Some(e) = o.error(&format!("{resource}:{key}")) {
            return Err(e.to_string());
        }
        Ok(EventTimes {
            times: list(o, resource, &format!("{key}Times")),
            newest_message: text(o, resource, &format!("{key}Message")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::INFORMATION_STORE;

    #[test]
    fn reads_decode_what_the_fragments_report() {
        let mut o = Observations::default();
        o.insert(
            "__d",
            "AdminDisplayVersion",
            RawValue::Str("Version 14.3".into()),
        );
        o.insert("__d", "IsStatus", RawValue::Str("Running".into()));
        o.insert(
            "__d",
            "E1Times",
            RawValue::Str("2024-05-01T09:00:00".into()),
        );
        let server = ExchangeServer::read(&o, "__d").unwrap();
        assert_eq!(server.admin_display_version, "Version 14.3");
        assert_eq!(server.server_role, "");
        let st = ServiceState::read(&o, "__d", "is", "Is").unwrap();
        assert_eq!(st.status.as_deref(), Some("Running"));
        assert_eq!(st.start_mode, None);
        let ev = EventTimes::read(&o, "__d", "E1").unwrap();
        assert_eq!(ev.times, ["2024-05-01T09:00:00"]);
        o.insert("__d:E1", "__error", RawValue::Str("denied".into()));
        assert_eq!(EventTimes::read(&o, "__d", "E1").unwrap_err(), "denied");
        let s = service_state_script("__d", "is", "Is", INFORMATION_STORE);
        assert!(s.contains("Get-Service -Name 'MSExchangeIS'"));
        assert!(s.contains("-Filter 'Name=''MSExchangeIS'''"));
        let e = events_script("__d", "E1", "MSExchangeIS", EventFilter::Id(9646));
        assert!(e.contains("if ($__e.EventID -eq 9646)"));
    }
}
