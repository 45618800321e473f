//! NTLMv2 (MS-NLMP): initiator and acceptor, signing and sealing.
//!
//! This crate owns NTLM for exctl: the client side that `exctl-winrm` authenticates to WinRM
//! with, the server side that the simulator accepts clients with, and the [`Session`] both use
//! to seal WinRM messages over HTTP. It does no I/O: callers move the tokens.
//!
//! Only NTLMv2 with extended session security, 128-bit keys, key exchange, signing and sealing
//! is spoken, on both sides; an NTLMv1 or LM-only peer is refused with
//! [`NtlmError::Unsupported`] rather than served with weaker keys. The initiator always sends a
//! MIC and can bind the authentication to the TLS channel (Extended Protection); the acceptor
//! checks both.
//!
//! A typical client exchange:
//!
//! ```
//! use exctl_ntlm::{Acceptor, AcceptorConfig, Initiator, InitiatorConfig};
//!
//! let mut client = Initiator::new(InitiatorConfig {
//!     domain: "EXAMPLE".into(),
//!     user: "alice".into(),
//!     password: "s3cret!".into(),
//!     workstation: None,
//!     channel_bindings: None,
//!     target_spn: Some("HTTP/mail.example.com".into()),
//! });
//! let mut server = Acceptor::new(AcceptorConfig {
//!     accounts: vec![("EXAMPLE".into(), "alice".into(), "s3cret!".into())],
//!     netbios_domain: "EXAMPLE".into(),
//!     netbios_computer: "MAIL".into(),
//!     dns_domain: "example.com".into(),
//!     dns_computer: "mail.example.com".into(),
//!     required_channel_bindings: None,
//! });
//! let challenge = server.challenge_message(&client.negotiate_message())?;
//! let user = server.accept(&client.authenticate_message(&challenge)?)?;
//! assert_eq!(user.user, "alice");
//!
//! let (mut client, mut server) = (client.into_session()?, server.into_session()?);
//! let (signature, sealed) = client.seal(b"<s:Envelope/>");
//! assert_eq!(server.unseal(&signature, &sealed)?, b"<s:Envelope/>");
//! # Ok::<(), exctl_ntlm::NtlmError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acceptor;
pub mod crypto;
mod error;
pub mod flags;
#[doc(hidden)]
pub mod fuzzing;
mod initiator;
mod message;
mod session;

#[doc(hidden)]
pub use acceptor::AcceptorRandomness;
pub use acceptor::{Acceptor, AcceptorConfig, AuthenticatedUser};
pub use error::{MessageKind, NtlmError};
#[doc(hidden)]
pub use initiator::InitiatorRandomness;
pub use initiator::{Initiator, InitiatorConfig};
pub use message::MAX_MESSAGE_LEN;
pub use session::{Prefetch, Role, Session};
