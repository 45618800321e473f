//! Which requests the client repeats after a transient failure, and how long it waits.
//!
//! A request is repeated only when doing it twice cannot do more than doing it once:
//!
//! | request | repeated | why |
//! | --- | --- | --- |
//! | Create | yes | opens a shell, runs nothing; at worst a shell is left to its idle timeout |
//! | Get (config) | yes | reads |
//! | Signal | yes | terminating twice is terminating; an "unknown command" answer to a repeat means the first one worked |
//! | Delete | yes | the same for closing a shell |
//! | Command | never | it starts a process: a lost answer means the process may be running |
//! | Send | never | stdin delivered twice is a different script |
//! | Receive | never | the output a lost answer carried is gone; asking again would silently skip it |
//!
//! "Transient" is [`Error::is_transient`]: the connection could not be made or broke, no
//! answer came in time, or a 500/502/503/504 came without a WS-Management fault. Waits grow
//! exponentially from [`RetryPolicy::initial_backoff`] up to [`RetryPolicy::max_backoff`],
//! for at most [`RetryPolicy::max_attempts`] attempts in all. There is no jitter: a client
//! talks to one host, and hosts are not shared between the clients of one run.
//!
//! A Command, Send or Receive that fails after it may have reached the host becomes
//! [`Error::OutcomeUnknown`], so that the caller knows to look before it does anything else.

use std::time::Duration;

use crate::envelope::Action;
use crate::error::Error;

/// How often and how patiently idempotent requests are repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 turns repeating off.
    pub max_attempts: u32,
    /// The wait before the second attempt; each later wait doubles it.
    pub initial_backoff: Duration,
    /// The longest single wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, waiting 250 ms, 500 ms and 1 s: long enough for a WinRM service that
    /// restarts its listener or a load balancer that drops a connection, short enough that
    /// a host that is really down is reported within seconds.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Never repeat anything.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Whether repeating `action` can do no more than doing it once.
pub(crate) fn is_idempotent(action: Action) -> bool {
    match action {
        Action::Create | Action::Get | Action::Signal | Action::Delete => true,
        Action::Command | Action::Send | Action::Receive => false,
    }
}

/// What may have happened on the host when a request that changes state, or reads
/// output that cannot be read again, failed after it was sent.
pub(crate) fn unknown_stage(action: Action) -> &'static str {
    match action {
        Action::Command => "the Command request may have started the command on the host",
        Action::Send => {
            "the Send request may have delivered input to the command, which may have run in whole, in part or not at all"
        }
        Action::Receive => {
            "the command was running on the host; output carried by the lost answer is gone, and the command may have run in whole, in part or not at all"
        }
        Action::Create | Action::Get | Action::Signal | Action::Delete => {
            "the request may have been carried out on the host"
        }
    }
}

/// Wraps an error that happened while a started command was running, unless it already
/// says that the outcome is unknown, or it is a mistake of the caller's own.
pub(crate) fn while_running(e: Error) -> Error {
    if e.is_outcome_unknown() || matches!(e, Error::Config(_)) {
        return e;
    }
    Error::OutcomeUnknown {
        stage: "the command had been started on the host and may have run in whole, in part or not at all",
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(200), Duration::from_millis(500));
    }

    #[test]
    fn only_requests_that_change_nothing_are_repeated() {
        for a in [Action::Create, Action::Get, Action::Signal, Action::Delete] {
            assert!(is_idempotent(a), "{a:?}");
        }
        for a in [Action::Command, Action::Send, Action::Receive] {
            assert!(!is_idempotent(a), "{a:?}");
        }
    }

    #[test]
    fn errors_while_running_become_unknown_once() {
        let e = while_running(Error::Protocol { what: "x".into() });
        assert!(e.is_outcome_unknown());
        let again = while_running(e);
        assert!(
            matches!(again, Error::OutcomeUnknown { ref source, .. } if matches!(**source, Error::Protocol { .. }))
        );
        assert!(!while_running(Error::Config("c".into())).is_outcome_unknown());
    }
}
