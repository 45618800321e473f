//! Counters of what the simulator saw, served as JSON on `GET /sim/state` so tests can
//! check what a client really did (how many shells it opened, whether it retried after a
//! TimedOut, how many bytes went over the wire).
//!
//! The WS-Management counters are fixed fields; later layers (the Exchange model) add
//! their own named counters with [`SimState::count`] and whole JSON sections with
//! [`SimState::set_section`] or, computed afresh for every snapshot, with
//! [`SimState::set_provider`], without this module knowing them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Computes a section of the state document when a snapshot is taken.
pub type SectionProvider = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Live counters, shared by every connection of one simulator.
#[derive(Default)]
pub struct SimState {
    requests: AtomicU64,
    auth_failures: AtomicU64,
    shells_created: AtomicU64,
    shells_open: AtomicU64,
    commands: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    maps: Mutex<Maps>,
    providers: Mutex<Vec<(String, SectionProvider)>>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("requests", &self.requests)
            .field("shells_open", &self.shells_open)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Maps {
    faults: BTreeMap<String, u64>,
    http_status: BTreeMap<String, u64>,
    actions: BTreeMap<String, u64>,
    counters: BTreeMap<String, u64>,
    sections: BTreeMap<String, serde_json::Value>,
}

/// A point-in-time copy of [`SimState`]; its JSON form is the `/sim/state` document.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StateSnapshot {
    /// HTTP requests on `/wsman`, including authentication legs.
    pub requests: u64,
    /// Rejected credentials and refused authentication attempts.
    pub auth_failures: u64,
    /// Shells created since start.
    pub shells_created: u64,
    /// Shells currently open.
    pub shells_open: u64,
    /// Commands started since start.
    pub commands: u64,
    /// Request body bytes received on `/wsman`.
    pub bytes_in: u64,
    /// Response body bytes sent on `/wsman`.
    pub bytes_out: u64,
    /// Faults sent, by WSManFault (or WMI) code in decimal.
    pub faults: BTreeMap<String, u64>,
    /// Responses by HTTP status.
    pub http_status: BTreeMap<String, u64>,
    /// SOAP requests by the last segment of their action (`Create`, `Receive`...).
    pub actions: BTreeMap<String, u64>,
    /// Named counters added by other layers.
    pub counters: BTreeMap<String, u64>,
    /// JSON sections added by other layers.
    pub sections: BTreeMap<String, serde_json::Value>,
}

impl SimState {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic elsewhere must not take the counters down with it.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn request(&self, bytes_in: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in as u64, Ordering::Relaxed);
    }

    pub(crate) fn response(&self, status: u16, bytes_out: usize) {
        self.bytes_out
            .fetch_add(bytes_out as u64, Ordering::Relaxed);
        *self
            .maps()
            .http_status
            .entry(status.to_string())
            .or_default() += 1;
    }

    pub(crate) fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn action(&self, action: &str) {
        let name = action.rsplit('/').next().unwrap_or(action).to_string();
        *self.maps().actions.entry(name).or_default() += 1;
    }

    pub(crate) fn fault(&self, code: u32) {
        *self.maps().faults.entry(code.to_string()).or_default() += 1;
    }

    pub(crate) fn shell_created(&self) {
        self.shells_created.fetch_add(1, Ordering::Relaxed);
        self.shells_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn shell_closed(&self) {
        self.shells_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `delta` to a named counter of another layer.
    pub fn count(&self, name: &str, delta: u64) {
        *self.maps().counters.entry(name.to_string()).or_default() += delta;
    }

    /// Sets a whole JSON section of another layer (replacing the previous value).
    pub fn set_section(&self, name: &str, value: serde_json::Value) {
        self.maps().sections.insert(name.to_string(), value);
    }

    /// Registers a section computed on every snapshot (replacing a provider of the same
    /// name), so that `/sim/state` is exact at the moment it is read rather than as of
    /// the last publication. The provider must not call back into this state.
    pub fn set_provider(&self, name: &str, provider: SectionProvider) {
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        providers.retain(|(n, _)| n != name);
        providers.push((name.to_string(), provider));
    }

    /// A copy of everything.
    pub fn snapshot(&self) -> StateSnapshot {
        // Providers run without any lock of ours held: they take locks of their own.
        let providers: Vec<(String, SectionProvider)> = self
            .providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let computed: Vec<(String, serde_json::Value)> =
            providers.into_iter().map(|(n, f)| (n, f())).collect();
        let maps = self.maps();
        let mut sections = maps.sections.clone();
        sections.extend(computed);
        StateSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            auth_failures: self.auth_failures.load(Ordering::Relaxed),
            shells_created: self.shells_created.load(Ordering::Relaxed),
            shells_open: self.shells_open.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            faults: maps.faults.clone(),
            http_status: maps.http_status.clone(),
            actions: maps.actions.clone(),
            counters: maps.counters.clone(),
            sections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_serializes_with_every_section() {
        let s = SimState::default();
        s.request(10);
        s.fault(2150858793);
        s.count("imap_logins", 2);
        s.set_section("exchange", serde_json::json!({"sp": 3}));
        let json = serde_json::to_value(s.snapshot()).unwrap();
        assert_eq!(json["requests"], 1);
        assert_eq!(json["faults"]["2150858793"], 1);
        assert_eq!(json["counters"]["imap_logins"], 2);
        assert_eq!(json["sections"]["exchange"]["sp"], 3);
    }

    #[test]
    fn providers_are_computed_at_every_snapshot() {
        let s = SimState::default();
        let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = n.clone();
        s.set_section("live", serde_json::json!("stale"));
        s.set_provider(
            "live",
            Arc::new(move || serde_json::json!(seen.load(Ordering::Relaxed))),
        );
        n.store(7, Ordering::Relaxed);
        assert_eq!(s.snapshot().sections["live"], 7);
        n.store(8, Ordering::Relaxed);
        assert_eq!(s.snapshot().sections["live"], 8);
    }
}
