//! The errors of the PSRP client.

/// Why a PSRP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The WS-Management layer failed (connection, authentication, fault).
    #[error(transparent)]
    Winrm(#[from] exctl_winrm::Error),
    /// A fragment could not be read or does not fit the ones before it.
    #[error("bad PSRP fragment: {0}")]
    Fragment(String),
    /// A message header could not be read.
    #[error("bad PSRP message: {0}")]
    Message(String),
    /// CLIXML that could not be read.
    #[error("bad CLIXML from the server: {0}")]
    Clixml(String),
    /// The server broke the protocol (an unexpected message, a missing field).
    #[error("PSRP protocol error: {0}")]
    Protocol(String),
    /// The runspace pool did not open, or broke.
    #[error("the runspace pool {state}: {reason}")]
    Pool {
        /// `broken`, `closed`.
        state: &'static str,
        /// The server's error, as it said it.
        reason: String,
    },
    /// The pipeline could not be stopped or ran past the caller's deadline.
    #[error("the pipeline did not finish within {0:?}")]
    Deadline(std::time::Duration),
    /// A misuse of this API.
    #[error("{0}")]
    Usage(String),
}
