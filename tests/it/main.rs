//! The end-to-end tests of the `exctl` binary, one test binary (link time dominates a
//! suite of many small binaries): the real binary against the simulator and the Python
//! peers. Each module is one subject; `common` starts simulators and runs exctl, `fleet`
//! starts many simulated hosts in this process. (`tests/fuzz_corpus.rs` stays a binary of
//! its own: its counting global allocator must see nothing else.)

mod common;
mod fleet;

mod access_psrp;
mod apply_cli;
mod apply_lock;
mod apply_sim;
mod capacity;
mod demo;
mod doctor_sim;
mod double_hop;
mod exec;
mod exec_powershell;
mod exec_psrp;
mod export_sim;
mod faults;
mod hostile;
mod kerberos;
mod kind_registry;
mod manual;
mod plan_scale;
mod plan_sim;
mod pop_sim;
mod psrp_sim;
mod pywinrm;
mod repository_cli;
mod rollout_sim;
mod schema_sim_agreement;
mod sim_options;
