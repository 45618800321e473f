//! The engine's integration tests: plans, applies and rollouts against fake hosts, the
//! inventory, and the generated scripts run by the PowerShell interpreter.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod apply_with_fake_host;
mod inventory;
mod many_resources;
mod plan_with_fake_host;
mod rollout_with_fake_hosts;
mod scripts_in_interpreter;
mod support;
