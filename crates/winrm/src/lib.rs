//! A WS-Management shell (WinRS) client for Windows hosts, with no Exchange knowledge.
//!
//! It opens a remote shell over HTTP (5985) or HTTPS (5986), runs commands, feeds their
//! stdin and reads their output, with NTLM (message encryption over HTTP, channel
//! binding over HTTPS) or Basic (HTTPS only) authentication. The pure parts (envelopes,
//! response parsing, faults, the encrypted framing) do no I/O and are tested against
//! traffic recorded from real Windows hosts; [`transport`] is the thin HTTP shell around
//! them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exctl_winrm::Error> {
//! use exctl_winrm::{Client, ClientConfig, ShellOptions};
//! let client = Client::new(ClientConfig::new(
//!     "http://mail01.example.local:5985/wsman",
//!     "EXAMPLE\\admin",
//!     exctl_secret::Secret::new("…"),
//! ))?;
//! let shell = client.open_shell(&ShellOptions::default()).await?;
//! let out = shell.run("cmd.exe", &["/c".into(), "echo hi".into()], None, None).await?;
//! assert_eq!(out.exit_code, 0);
//! shell.close().await?;
//! # Ok(()) }
//! ```
//!
//! Output limit: [`Shell::run`] buffers at most [`ClientConfig::max_buffered_output`]
//! bytes (64 MiB by default) and fails with [`Error::OutputTooLarge`] beyond it; stream
//! larger outputs with [`RunningCommand::wait`], which holds no more than one Receive's
//! worth (bounded by MaxEnvelopeSize) at a time.
//!
//! Failures: Create, Get, Signal and Delete are repeated with a bounded backoff after
//! transient failures ([`retry`]); Command, Send and Receive never are. When a failure
//! leaves open whether the host carried out a command, the error says so:
//! [`Error::is_outcome_unknown`] tells a caller that changes state to look at the host
//! before it does anything else.
//!
//! Responses are believed only after checks: SOAP 1.2, `RelatesTo` our MessageID, the
//! expected action, at most twice MaxEnvelopeSize long (framing included), and over HTTP
//! sealed with the NTLM session in sequence (a tampered or replayed response fails
//! verification and ends the session).

pub mod envelope;
mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod resource_shell;
mod response;
pub mod retry;
mod shell;
pub mod tls;
pub mod transport;
mod xml;

pub use envelope::{ShellOptions, SignalCode};
pub use error::{Error, WsmanFault, codes};
pub use exctl_gssapi::Kind as KerberosFailure;
pub use resource_shell::{ResourceShell, ResourceShellSpec};
pub use response::{CommandState, Received};
pub use retry::RetryPolicy;
pub use shell::{
    Client, ClientConfig, DEFAULT_MAX_BUFFERED_OUTPUT, Output, RunningCommand, Shell, Stream,
};
pub use tls::TrustPolicy;
pub use transport::{AuthMethod, KerberosScheme};
pub use xml::XmlError;
