//! Fault injection on demand: the failures a real network and a real WinRM service
//! produce now and then, made to happen at a chosen request so that tests can show what
//! the client does about each.
//!
//! A [`FaultPlan`] is a shared handle: put a clone in [`crate::SimConfig::faults`] and add
//! rules to it from the test at any time, or, for a running `exctl sim`, send them to
//! the loopback control endpoint:
//!
//! ```text
//! POST   /sim/faults   {"on":"Receive","nth":1,"fault":"reset_after"}   add one rule
//!                      [{...}, {...}]                                  or several
//! GET    /sim/faults   the rules with how often each matched and fired
//! DELETE /sim/faults   remove every rule
//! ```
//!
//! A rule names the requests it watches (`on`: an action name, `Create`, `Command`,
//! `Send`, `Receive`, `Signal`, `Delete`, `Get`, or `Any`), counts them from the moment it
//! was added, and fires on the `nth` of them (1-based) and the `times - 1` after it
//! (`times` defaults to 1). What it does ([`Injected`]):
//!
//! | `fault` | what the client sees | did the host act? |
//! | --- | --- | --- |
//! | `reset_before` | the connection closes without an answer | no |
//! | `reset_after` | the same, after the request was carried out (a Receive's output is gone) | yes |
//! | `http500` | HTTP 500 with an empty body, as from a proxy or a broken listener | no |
//! | `{"delay_ms": N}` | the answer comes N ms late (beyond the client's read timeout: a timeout) | yes, late |
//! | `drop_shell` | the shell vanished first (idle timeout, WinRM restart): `InvalidSelectors` | no |
//! | `quota` | the MaxShellsPerUser quota fault (`MSFT_WmiError` 2150859173) | no |
//!
//! Only requests that reach the WS-Management layer count (authenticated, unsealed, and
//! parsed as SOAP); the authentication legs of NTLM never do.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which requests a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum On {
    /// Every WS-Management request.
    Any,
    /// WS-Transfer Create (open a shell).
    Create,
    /// WinRS Command.
    Command,
    /// WinRS Send.
    Send,
    /// WinRS Receive.
    Receive,
    /// WinRS Signal.
    Signal,
    /// WS-Transfer Delete (close a shell).
    Delete,
    /// WS-Transfer Get (the config resource).
    Get,
}

impl On {
    /// Whether a request with this `a:Action` URI is watched.
    pub fn matches(self, action_uri: &str) -> bool {
        let name = action_uri.rsplit('/').next().unwrap_or_default();
        match self {
            On::Any => true,
            On::Create => name == "Create",
            On::Command => name == "Command",
            On::Send => name == "Send",
            On::Receive => name == "Receive",
            On::Signal => name == "Signal",
            On::Delete => name == "Delete",
            On::Get => name == "Get",
        }
    }
}

/// What a rule does to the request it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Injected {
    /// Close the connection without answering, before the request is handled.
    ResetBefore,
    /// Handle the request, then close the connection without answering.
    ResetAfter,
    /// Answer HTTP 500 with an empty body, without handling the request.
    Http500,
    /// Wait this many milliseconds, then handle and answer the request.
    DelayMs(u64),
    /// Forget the shell the request names (killing its commands), then handle it.
    DropShell,
    /// Answer with the MaxShellsPerUser quota fault, without handling the request.
    Quota,
}

/// One rule of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The requests it watches.
    pub on: On,
    /// The first watched request it fires on, 1-based.
    #[serde(default = "one")]
    pub nth: u32,
    /// On how many watched requests in a row it fires.
    #[serde(default = "one")]
    pub times: u32,
    /// What it does.
    pub fault: Injected,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// A rule firing once, on the `nth` request it watches.
    pub fn new(on: On, nth: u32, fault: Injected) -> Self {
        FaultRule {
            on,
            nth,
            times: 1,
            fault,
        }
    }

    /// The same rule, firing on `times` requests in a row.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
}

/// A rule with its counters, as `GET /sim/faults` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleState {
    /// The rule.
    #[serde(flatten)]
    pub rule: FaultRule,
    /// Watched requests seen since it was added.
    pub seen: u32,
    /// How often it fired.
    pub fired: u32,
}

/// The faults to inject, shared between the test that plans them and the server.
/// Cloning gives another handle on the same plan.
#[derive(Clone, Default)]
pub struct FaultPlan {
    rules: Arc<Mutex<Vec<RuleState>>>,
}

impl std::fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.rules().iter()).finish()
    }
}

impl FaultPlan {
    /// An empty plan: nothing is injected.
    pub fn new() -> Self {
        FaultPlan::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RuleState>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule; it counts requests from now on.
    pub fn add(&self, rule: FaultRule) {
        self.lock().push(RuleState {
            rule,
            seen: 0,
            fired: 0,
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The rules with their counters.
    pub fn rules(&self) -> Vec<RuleState> {
        self.lock().clone()
    }

    /// How often rules fired in all.
    pub fn fired(&self) -> u32 {
        self.lock().iter().map(|r| r.fired).sum()
    }

    /// Counts a request with this action and returns what to do to it, if anything. The
    /// first rule that fires wins; every watching rule counts the request.
    pub(crate) fn next(&self, action_uri: &str) -> Option<Injected> {
        let mut chosen = None;
        for state in self.lock().iter_mut() {
            if !state.rule.on.matches(action_uri) {
                continue;
            }
            state.seen = state.seen.saturating_add(1);
            let first = state.rule.nth.max(1);
            let last = first.saturating_add(state.rule.times.max(1) - 1);
            if chosen.is_none() && (first..=last).contains(&state.seen) {
                state.fired += 1;
                chosen = Some(state.rule.fault);
            }
        }
        chosen
    }

    /// Adds the rules of a `POST /sim/faults` body: one rule or a list of them.
    pub fn add_json(&self, body: &[u8]) -> Result<usize, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(FaultRule),
            Many(Vec<FaultRule>),
        }
        let rules = match serde_json::from_slice::<OneOrMany>(body)? {
            OneOrMany::One(r) => vec![r],
            OneOrMany::Many(r) => r,
        };
        let n = rules.len();
        for r in rules {
            self.add(r);
        }
        Ok(n)
    }
}

/// The delay of a [`Injected::DelayMs`].
pub(crate) fn delay(i: Injected) -> Option<Duration> {
    match i {
        Injected::DelayMs(ms) => Some(Duration::from_millis(ms)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
    const CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";

    #[test]
    fn rules_fire_on_the_nth_watched_request_for_times_requests() {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Receive, 2, Injected::ResetAfter).times(2));
        let seen: Vec<Option<Injected>> = [CREATE, RECEIVE, RECEIVE, CREATE, RECEIVE, RECEIVE]
            .iter()
            .map(|a| plan.next(a))
            .collect();
        assert_eq!(
            seen,
            [
                None,
                None,
                Some(Injected::ResetAfter),
                None,
                Some(Injected::ResetAfter),
                None
            ]
        );
        assert_eq!(plan.fired(), 2);
        plan.clear();
        assert_eq!(plan.next(RECEIVE), None);
    }

    #[test]
    fn the_control_endpoint_body_reads_one_rule_or_several() {
        let plan = FaultPlan::new();
        let n = plan
            .add_json(br#"{"on":"Receive","fault":"reset_after"}"#)
            .unwrap();
        assert_eq!(n, 1);
        let n = plan
            .add_json(
                br#"[{"on":"Create","nth":2,"times":3,"fault":{"delay_ms":1500}},{"on":"Any","fault":"http500"}]"#,
            )
            .unwrap();
        assert_eq!(n, 2);
        let rules = plan.rules();
        assert_eq!(
            rules[0].rule,
            FaultRule::new(On::Receive, 1, Injected::ResetAfter)
        );
        assert_eq!(
            rules[1].rule,
            FaultRule::new(On::Create, 2, Injected::DelayMs(1500)).times(3)
        );
        assert_eq!(
            delay(rules[1].rule.fault),
            Some(Duration::from_millis(1500))
        );
        assert!(
            plan.add_json(br#"{"on":"Nothing","fault":"quota"}"#)
                .is_err()
        );
        let json = serde_json::to_string(&plan.rules()).unwrap();
        assert!(json.contains(r#""seen":0,"fired":0"#), "{json}");
    }
}
