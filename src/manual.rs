//! `exctl completions SHELL` and `exctl man [COMMAND]`: both made from the clap
//! definition in [`crate::cli`] when asked for, so they always match the binary that
//! prints them (nothing generated at build time to go stale, no build script), which is
//! also how a packager gets them: `exctl man > exctl.1`.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::ExitStatus;

pub fn completions(a: CompletionsArgs) -> ExitCode {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "exctl", &mut out);
    match out.flush() {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => {
            eprintln!("error: cannot write the completions: {e}");
            ExitStatus::Failure.into()
        }
    }
}

pub fn man(a: ManArgs) -> ExitCode {
    let cmd = Cli::command();
    let (page, title) = match &a.command {
        None => (cmd, "exctl".to_string()),
        Some(name) => match cmd.find_subcommand(name) {
            // Titled as man pages of subcommands are: exctl-apply(1).
            Some(sub) => (
                sub.clone()
                    .display_name(format!("exctl-{}", sub.get_name()))
                    .bin_name(format!("exctl {}", sub.get_name())),
                format!("exctl-{}", sub.get_name()),
            ),
            None => {
                let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!("error: no command '{name}'; one of: {}", names.join(", "));
                return ExitStatus::Usage.into();
            }
        },
    };
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).title(title).render(&mut buf) {
        eprintln!("error: cannot render the manual page: {e}");
        return ExitStatus::Failure.into();
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(&buf).and_then(|()| out.flush()) {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => {
            eprintln!("error: cannot write the manual page: {e}");
            ExitStatus::Failure.into()
        }
    }
}
