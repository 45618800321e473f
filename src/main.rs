//! exctl: the command line.
//!
//! The definition of the command-line interface and the glue between it and the
//! libraries under `crates/`: argument parsing lives in [`cli`], each subcommand in a
//! module of its own, and this file maps every outcome to an exit status in one place.

mod cli;
mod credentials;
mod exec;
mod plan;
mod sim;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exec::EXIT_EXCTL_ERROR);
        }
    };
    match args.command {
        cli::Command::Exec(a) => runtime.block_on(exec::run(a)),
        cli::Command::Validate(a) => plan::validate(a),
        cli::Command::Plan(a) => runtime.block_on(plan::plan(a)),
        cli::Command::Sim(a) => runtime.block_on(sim::run(a)),
    }
}
