//! PowerShell for exctl: literals, the stdin script runner, and CLIXML decoding.
//!
//! - [`command`]: commands as data (a name, named parameters, typed literal values) and
//!   their one rendering to PowerShell text.
//! - [`literal`](mod@literal): the one function that turns a manifest value into PowerShell source.
//! - [`runner`]: the `powershell.exe` invocation that runs a script of any length, with its
//!   exit code contract and the PowerShell subset its bootstrap uses.
//! - [`clixml`]: decoding what powershell.exe writes to stderr.
//!
//! The parser and interpreter of the PowerShell 2.0 subset those scripts use is the crate
//! `exctl-pwsh-interp`, for the simulated host and tests only.
//!
//! Everything here is pure: no I/O, so the WinRM client and the simulated host share it.

pub mod clixml;
pub mod command;
pub mod literal;
pub mod runner;

pub use clixml::{ClixmlError, ErrorRecord, Stderr, decode_stderr, is_clixml};
pub use command::{Arg, Command, Param};
pub use literal::{Value, literal, quote};
pub use runner::{Invocation, decode_command, encode_command, invocation};
