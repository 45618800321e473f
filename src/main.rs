//! exctl: the command line.
//!
//! The definition of the command-line interface and the glue between it and the
//! libraries under `crates/`: argument parsing lives in [`cli`], each subcommand in a
//! module of its own, and this file maps every outcome to an exit status in one place.

mod apply;
mod cli;
mod credentials;
#[cfg(feature = "sim")]
mod demo;
mod doctor;
mod exec;
mod exec_psrp;
mod exit;
mod export;
mod journal;
mod manual;
mod plan;
mod progress;
mod repo;
#[cfg(feature = "sim")]
mod sim;
mod unlock;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::ExitStatus;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = match cli::Cli::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => return exit::parse_error(&e, &argv).into(),
    };
    // The local UTC offset can be read only while the process is single-threaded (on
    // Unix), so before the runtime starts; apply needs it for --maintenance-window.
    let clock = exctl_engine::apply::LocalClock::capture();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return match args.command {
                cli::Command::Exec(_) => ExitStatus::ExecOwnFailure,
                _ => ExitStatus::Failure,
            }
            .into();
        }
    };
    match args.command {
        cli::Command::Exec(a) => runtime.block_on(exec::run(a)),
        cli::Command::Validate(a) => plan::validate(a),
        #[cfg(feature = "sim")]
        cli::Command::Demo(a) => runtime.block_on(demo::run(a)),
        cli::Command::Schema => {
            let schema = exctl_engine::schema::manifest_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitStatus::Success.into()
        }
        cli::Command::Kinds => {
            print!("{}", cli::kinds_listing());
            ExitStatus::Success.into()
        }
        cli::Command::Plan(a) => runtime.block_on(plan::plan(a)),
        cli::Command::Apply(a) => runtime.block_on(apply::run(a, clock)),
        cli::Command::Doctor(a) => runtime.block_on(doctor::run(a)),
        #[cfg(feature = "sim")]
        cli::Command::Sim(a) => runtime.block_on(sim::run(a)),
        cli::Command::Show(a) => repo::show(a),
        cli::Command::Export(a) => runtime.block_on(export::run(a)),
        cli::Command::Sites(a) => repo::sites(a),
        cli::Command::Login(a) => repo::login(a),
        cli::Command::Logout(a) => repo::logout(a),
        cli::Command::Unlock(a) => runtime.block_on(unlock::run(a)),
        cli::Command::Completions(a) => manual::completions(a),
        cli::Command::Man(a) => manual::man(a),
    }
}
