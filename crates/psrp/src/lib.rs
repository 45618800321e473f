//! A PowerShell remoting (MS-PSRP) client over the WS-Management client of `exctl-winrm`.
//!
//! PowerShell remoting is how Microsoft supports talking to Exchange 2010: a runspace pool
//! opened on the server's `/PowerShell` endpoint (configuration `Microsoft.Exchange`,
//! NoLanguage mode) runs pipelines built from commands with parameters. This crate holds
//! the protocol in pure layers without I/O ([`fragment`], [`message`], [`clixml`],
//! [`protocol`]) and a thin async layer ([`pool`]) that carries them over a WinRM shell
//! of the configuration's resource URI.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exctl_psrp::Error> {
//! use exctl_psrp::{Command, PipelineSpec, RunspacePool, PoolOptions};
//! let client = exctl_winrm::Client::new(exctl_winrm::ClientConfig::new(
//!     "http://ex01.example.local/PowerShell/",
//!     "EXAMPLE\\admin",
//!     exctl_secret::Secret::new("…"),
//! ))?;
//! let mut pool = RunspacePool::open(&client, &PoolOptions::exchange()).await?;
//! let out = pool
//!     .run(&PipelineSpec::command(Command::new("Get-ImapSettings").param("Server", "EX01")))
//!     .await?;
//! println!("{} objects, {} errors", out.output.len(), out.errors.len());
//! pool.close().await?;
//! # Ok(()) }
//! ```
//!
//! Protocol versions: the client announces 2.1 (PowerShell 2.0, what Exchange 2010's
//! servers speak) and works with servers announcing 2.1, 2.2 and 2.3. Host calls are
//! answered with a clean refusal (the client declares no host). Secure strings are not
//! supported (no key exchange).

pub mod clixml;
mod error;
pub mod fragment;
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod pool;
pub mod protocol;

pub use clixml::{PsObject, Value};
pub use error::Error;
pub use pool::{HostCallHandler, PipelineResult, PoolOptions, RunspacePool};
pub use protocol::{
    Command, ErrorRecord, InformationalRecord, Parameter, PipelineSpec, PipelineState,
};
