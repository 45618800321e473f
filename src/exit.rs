//! Exit statuses: the one table every command's outcome maps to (docs/exit-codes.md).
//!
//! A code means one thing across commands: 0 success, 1 a failure of the work (an
//! error, a host that failed), 2 "look at this" (`plan --detailed-exitcode`: changes;
//! `doctor`: findings), 64 a usage error (an unknown flag, a missing argument: what
//! clap reports), 130 interrupted. `exec` passes the remote command's code through, so
//! its own failures, usage errors included, are 255 (as ssh does).

use std::ffi::OsString;
use std::process::ExitCode;

/// How exctl ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked (and, with `--detailed-exitcode`, nothing would change).
    Success,
    /// The work failed: an error, a host or site that failed, an invalid manifest.
    Failure,
    /// `plan --detailed-exitcode`: changes to make; `doctor`: findings.
    Attention,
    /// The command line was wrong; nothing was done.
    Usage,
    /// The operator interrupted the run (Ctrl+C).
    Interrupted,
    /// `exec`: exctl itself failed (connection, credential, usage), not the remote
    /// command.
    ExecOwnFailure,
    /// `exec`: the remote command's own exit code, passed through (a Windows code mapped
    /// to a byte by `exec::exit_status`, never turning a failure into 0).
    Remote(u8),
}

impl ExitStatus {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Attention => 2,
            ExitStatus::Usage => 64,
            ExitStatus::Interrupted => 130,
            ExitStatus::ExecOwnFailure => 255,
            ExitStatus::Remote(code) => code,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}

/// Prints a command-line error as clap does and says how exctl ends: help and version
/// requests succeed; every other parse error is a usage error (255 for `exec`, whose
/// other codes are the remote command's).
pub fn parse_error(e: &clap::Error, args: &[OsString]) -> ExitStatus {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitStatus::Success,
        _ if is_exec(args) => ExitStatus::ExecOwnFailure,
        _ => ExitStatus::Usage,
    }
}

/// Whether the command line names the `exec` subcommand (the first argument that is not
/// an option; exctl has no global options taking values).
fn is_exec(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "exec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            ExitStatus::Success,
            ExitStatus::Failure,
            ExitStatus::Attention,
            ExitStatus::Usage,
            ExitStatus::Interrupted,
            ExitStatus::ExecOwnFailure,
        ];
        let mut codes: Vec<u8> = all.iter().map(|s| s.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn a_remote_code_passes_through() {
        assert_eq!(ExitStatus::Remote(0).code(), 0);
        assert_eq!(ExitStatus::Remote(5).code(), 5);
        assert_eq!(ExitCode::from(ExitStatus::Remote(7)), ExitCode::from(7));
    }

    #[test]
    fn exec_is_found_after_options() {
        let v = |s: &[&str]| s.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_exec(&v(&["exctl", "exec", "--bogus"])));
        assert!(is_exec(&v(&["exctl", "--color", "exec"])));
        assert!(!is_exec(&v(&["exctl", "plan", "exec"])));
        assert!(!is_exec(&v(&["exctl"])));
    }
}
