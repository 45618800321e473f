//! The engine: from manifests to a desired state per host, from observations to a plan,
//! and the plan's renderings.
//!
//! [`desired`] reads the inventory and resource documents; [`observe`] builds one observe
//! script per host, runs it through a [`observe::Runner`] and asks each kind for its
//! changes; [`plan`] orders them and places the restarts; [`render`] presents the plan as
//! text, markdown or JSON. [`planfile`] saves a plan and checks it before it is applied;
//! [`apply`] runs a plan's steps host by host, with the restart steps of
//! `exctl_exchange::services` ([`restart`] reads what a host's restart facts and health
//! mean for its plan).
//!
//! Over many sites: [`desired`] also merges baselines and site and host overrides (with
//! the origin of every value, which [`show`] presents); [`rollout`] selects sites, plans
//! them with bounded parallelism ([`pool`]) and rolls apply out with a canary, batches
//! and a failure budget; [`report`] renders many sites (text, a pull-request comment
//! within GitHub's limit, JSON, the summary table). [`export`] writes a host's current
//! state as a manifest. [`lock`] keeps one apply at a time per host. Every script sent to
//! a host is made by [`script::ScriptBuilder`], which owns its preamble.

pub mod apply;
pub mod capacity;
pub mod desired;
pub mod doctor;
pub mod export;
pub mod imap_probe;
pub mod lock;
pub mod observe;
pub mod plan;
pub mod planfile;
pub mod pool;
pub mod relay;
pub mod render;
pub mod report;
pub mod restart;
pub mod rollout;
pub mod schema;
pub mod script;
pub mod show;
pub mod winrm;

pub use desired::{Auth, DesiredState, HostSpec};
pub use plan::Plan;
