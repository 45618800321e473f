//! Service restarts, the engine's side: what a host's restart facts and health mean for
//! its plan ([`context`], [`health`]). The services are data of the kinds that declare
//! them (`exctl_exchange::kinds::services`); the PowerShell that restarts them, marks and
//! reads pending restarts and observes their health, with its decoders, is
//! `exctl_exchange::services` (re-exported here for the engine's modules). Which
//! restarts a plan needs and where they run is [`crate::plan`]; the step wrapper and the
//! reporting of progress are [`crate::apply`].

use std::collections::BTreeSet;

use exctl_exchange::kind::Service;
use exctl_exchange::kinds;
use exctl_exchange::record::Observations;
pub use exctl_exchange::services::facts::{
    days_from_civil, facts_key, mark_restart_due, observe_facts, parse_utc,
};
pub use exctl_exchange::services::restart::{
    ERROR_TEXT_FUNCTION, RestartScriptOptions, record, recovery_body, restart_body,
};
pub use exctl_exchange::services::{Health, Recovery};

use crate::plan::RestartContext;

/// The observe-script fragment that reports the health of every registered service whose
/// spec asks for it (MSExchangeIS, MSExchangeIMAP4); part of every observation (plan,
/// apply's verification, doctor), whatever the resources. Decoded by [`health`].
pub fn observe_health(host: &str) -> String {
    exctl_exchange::services::facts::observe_health(host, kinds::services())
}

/// Decodes what [`observe_health`] reported.
pub fn health(host: &str, obs: &Observations) -> Health {
    Health::read(host, obs, kinds::services())
}

/// What the host's facts say about restarts: which are owed from before, what to warn
/// about, which protocol services are idle, and notes when the facts could not be read
/// (the services to bring back are added from [`health`] by the caller).
pub fn context(
    host: &str,
    obs: &Observations,
    services: &BTreeSet<Service>,
) -> (RestartContext, Vec<String>) {
    let (f, notes) = exctl_exchange::services::facts::facts(host, obs, services);
    (
        RestartContext {
            pending: f.pending,
            warnings: f.warnings,
            recover: Vec::new(),
            idle: f.idle,
        },
        notes,
    )
}
