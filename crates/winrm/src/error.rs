//! The errors of the WinRM client, each saying what happened and what to do about it.
//!
//! Faults keep everything Windows sent (codes, machine, message), so that a caller can
//! decide on retries by code and an administrator can search for the text. No variant
//! ever holds a password or any other secret: credentials are never formatted.

use std::fmt;
use std::time::Duration;

/// WS-Management fault codes the client treats specially (MS-WSMV; names as in the
/// Windows SDK's `ERROR_WSMAN_*`).
pub mod codes {
    /// OperationTimeout elapsed without output: ask again.
    pub const OPERATION_TIMEDOUT: u32 = 2150858793;
    /// The ShellId or CommandId is not known to the server (closed or expired).
    pub const UNEXPECTED_SELECTORS: u32 = 2150858843;
    /// More shells than MaxShellsPerUser (reported in `MSFT_WmiError`).
    pub const QUOTA_MAX_SHELLS: u32 = 2150859173;
    /// More concurrent operations than MaxConcurrentOperationsPerUser.
    pub const QUOTA_MAX_OPERATIONS: u32 = 2150859174;
    /// The request was larger than MaxEnvelopeSizekb.
    pub const MAX_ENVELOPE_SIZE_EXCEEDED: u32 = 2150858824;
    /// The envelope was too large for the server.
    pub const ENVELOPE_TOO_LARGE: u32 = 2150858790;
    /// The command line is too long (HRESULT of ERROR_FILENAME_EXCED_RANGE).
    pub const FILENAME_TOO_LONG: u32 = 2147942606;
    /// Access is denied (Win32 error 5).
    pub const ACCESS_DENIED: u32 = 5;
}

/// A SOAP fault as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsmanFault {
    /// The HTTP status the fault came with (Windows uses 500).
    pub http_status: u16,
    /// The SOAP code without prefix: `Sender` or `Receiver`.
    pub code: String,
    /// The WS-Management subcode without prefix, e.g. `TimedOut`, `InvalidSelectors`.
    pub subcode: Option<String>,
    /// The SOAP reason text.
    pub reason: String,
    /// The `Code` of `f:WSManFault`: a WS-Management or Win32 error code.
    pub wsman_code: Option<u32>,
    /// The machine that raised the fault.
    pub machine: Option<String>,
    /// The fault message (from `f:Message`, or from `MSFT_WmiError`).
    pub message: Option<String>,
    /// The WMI error code of an `MSFT_WmiError` detail (quota faults carry their code here).
    pub wmi_error_code: Option<u32>,
}

impl WsmanFault {
    /// The code that identifies the fault best: the WMI code when present, else the
    /// WS-Management code.
    pub fn effective_code(&self) -> Option<u32> {
        self.wmi_error_code.or(self.wsman_code)
    }

    /// Whether this is the OperationTimeout fault, which only means "no output yet".
    pub fn is_timed_out(&self) -> bool {
        self.wsman_code == Some(codes::OPERATION_TIMEDOUT)
            || self.subcode.as_deref() == Some("TimedOut")
    }

    /// Whether the shell or command the request named no longer exists.
    pub fn is_unknown_selector(&self) -> bool {
        self.wsman_code == Some(codes::UNEXPECTED_SELECTORS)
            || self.subcode.as_deref() == Some("InvalidSelectors")
    }

    /// A name for well-known codes, for messages.
    pub fn code_name(&self) -> Option<&'static str> {
        Some(match self.effective_code()? {
            codes::OPERATION_TIMEDOUT => "OperationTimeout elapsed",
            codes::UNEXPECTED_SELECTORS => "unknown shell or command",
            codes::QUOTA_MAX_SHELLS => "MaxShellsPerUser quota reached",
            codes::QUOTA_MAX_OPERATIONS => "MaxConcurrentOperationsPerUser quota reached",
            codes::MAX_ENVELOPE_SIZE_EXCEEDED | codes::ENVELOPE_TOO_LARGE => {
                "envelope larger than MaxEnvelopeSizekb"
            }
            codes::FILENAME_TOO_LONG => "command line too long",
            codes::ACCESS_DENIED => "access denied",
            _ => return None,
        })
    }

    fn hint(&self) -> Option<&'static str> {
        Some(match self.effective_code()? {
            codes::QUOTA_MAX_SHELLS => {
                "close idle sessions to this host (or wait for their IdleTimeout), or raise \
                 'winrm set winrm/config/winrs @{MaxShellsPerUser=\"N\"}'"
            }
            codes::QUOTA_MAX_OPERATIONS => {
                "too many operations run at once for this user; lower --parallel or raise \
                 MaxConcurrentOperationsPerUser"
            }
            codes::UNEXPECTED_SELECTORS => {
                "the shell was closed on the server (idle timeout, WinRM restart); run again"
            }
            codes::ACCESS_DENIED => "the account needs administrative rights on the host",
            _ => return None,
        })
    }
}

impl fmt::Display for WsmanFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.message.as_deref().unwrap_or(self.reason.as_str());
        write!(f, "WS-Management fault")?;
        match (self.effective_code(), self.code_name()) {
            (Some(c), Some(n)) => write!(f, " {c} ({n})")?,
            (Some(c), None) => write!(f, " {c}")?,
            _ => {}
        }
        if let Some(sub) = &self.subcode {
            write!(f, " [{}:{}]", self.code, sub)?;
        }
        if let Some(m) = &self.machine {
            write!(f, " from {m}")?;
        }
        write!(f, ": {}", text.trim())?;
        if let Some(h) = self.hint() {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a WinRM host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint URL, options or credentials cannot work, found before any connection.
    #[error("invalid WinRM configuration: {0}")]
    Config(String),

    /// Basic authentication was asked for over plain HTTP, which would send the password
    /// in the clear.
    #[error(
        "refusing Basic authentication over plain HTTP to {endpoint}: the password would cross the network in the clear\nhint: use https:// (port 5986) or NTLM, which encrypts WinRM traffic over HTTP"
    )]
    InsecureBasic {
        /// The endpoint that was asked for.
        endpoint: String,
    },

    /// The server answered 401: the user name or password is wrong, the account is locked
    /// or lacks the right to log on remotely, or the scheme is not enabled.
    #[error(
        "the server refused the credentials for '{user}' ({scheme}, HTTP 401){offered}\nhint: check the user name (DOMAIN\\user), the password, and that the account may use WinRM (local Administrators or Remote Management Users)"
    )]
    Unauthorized {
        /// The account that was refused.
        user: String,
        /// The scheme that was tried.
        scheme: &'static str,
        /// What the server offers instead, already formatted (", the server offers ...").
        offered: String,
    },

    /// The server answered 413: the request was larger than its MaxEnvelopeSizekb.
    #[error(
        "the envelope exceeded MaxEnvelopeSize {max_kb} KB on the server (HTTP 413)\nhint: the host's MaxEnvelopeSizekb is smaller than assumed; set the client's envelope size lower or raise 'winrm set winrm/config @{{MaxEnvelopeSizekb=\"500\"}}'"
    )]
    EnvelopeTooLarge {
        /// The size the client assumed.
        max_kb: usize,
    },

    /// The server sent a WS-Management fault.
    #[error("{0}")]
    Fault(Box<WsmanFault>),

    /// An HTTP error status without a SOAP fault (a proxy, IIS, a broken listener).
    #[error("the server answered HTTP {status} without a WS-Management response{detail}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// A short, already formatted excerpt of the body (": ...") or empty.
        detail: String,
    },

    /// The TCP connection could not be made.
    #[error(
        "cannot connect to {endpoint}: {reason}\nhint: check the host name and port (5985 for HTTP, 5986 for HTTPS), that WinRM listens ('winrm quickconfig') and that a firewall lets the port through"
    )]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// What the operating system said.
        reason: String,
    },

    /// The server's TLS certificate was not accepted.
    #[error(
        "the TLS certificate of {endpoint} was not accepted: {reason}\nhint: pass the issuing CA with --ca-file, or fix the certificate's name; --insecure-skip-verify turns verification off (not for production)"
    )]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },

    /// The connection broke while a request was under way; whether the server acted on
    /// it is unknown.
    #[error("the connection to {endpoint} was lost during {action}: {reason}")]
    ConnectionLost {
        /// The endpoint.
        endpoint: String,
        /// The operation that was under way.
        action: &'static str,
        /// What the operating system said.
        reason: String,
    },

    /// No HTTP response arrived within the read timeout.
    #[error("no response from {endpoint} within {after:?} during {action}")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The operation that was under way.
        action: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },

    /// The command ran longer than the deadline the caller set; it was terminated.
    #[error("the command did not finish within {0:?} and was terminated")]
    Deadline(Duration),

    /// NTLM authentication failed on our side (a malformed challenge, a bad signature).
    #[error("NTLM: {0}")]
    Ntlm(#[from] exctl_ntlm::NtlmError),

    /// Kerberos authentication failed; the message names the cause and its fix.
    #[error("{message}")]
    Kerberos {
        /// The cause, classified.
        kind: exctl_gssapi::Kind,
        /// What happened and what to do.
        message: String,
    },

    /// The encrypted framing of a response could not be read.
    #[error("cannot decrypt the server's response: {0}")]
    Encryption(String),

    /// The response was not what WS-Management requires (wrong request, missing element).
    #[error("unexpected response from the server: {what}")]
    Protocol {
        /// What was wrong.
        what: String,
    },

    /// The host may have carried out what was asked, wholly, partly or not at all, and the
    /// client cannot tell: a Command or Send whose answer was lost, or a command that was
    /// running when the connection, the shell or the response failed. Nothing was
    /// repeated. See [`Error::is_outcome_unknown`].
    #[error(
        "{source}\nthe outcome is unknown: {stage}; nothing was repeated\nhint: look at the host's current state (exctl plan shows it) before changing anything else"
    )]
    OutcomeUnknown {
        /// What may have happened on the host.
        stage: &'static str,
        /// What went wrong.
        source: Box<Error>,
    },

    /// A command's output exceeded what one command may buffer.
    #[error(
        "the command's output exceeded the buffer limit of {limit} bytes\nhint: stream the output instead of buffering it, or raise the limit"
    )]
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// The fault, if this is one (also behind [`Error::OutcomeUnknown`]).
    pub fn fault(&self) -> Option<&WsmanFault> {
        match self.cause() {
            Error::Fault(f) => Some(f),
            _ => None,
        }
    }

    /// What went wrong, without the [`Error::OutcomeUnknown`] wrapper.
    pub fn cause(&self) -> &Error {
        match self {
            Error::OutcomeUnknown { source, .. } => source.cause(),
            other => other,
        }
    }

    /// Whether something may have changed on the host although the call failed.
    ///
    /// `true`: a command was started (or its Command request was sent and the answer
    /// lost), and it may have run wholly, partly or not at all: the connection broke, the
    /// shell disappeared, the response could not be read or trusted, the deadline or the
    /// output limit stopped it. The client never repeats such a request. A caller that
    /// changes state must re-observe the host before doing anything else; a caller that
    /// only reads may run its (read-only) command again.
    ///
    /// `false`: no command of this call ran on the host. Either nothing was sent
    /// (configuration, connection, TLS, authentication), the server refused the request
    /// as it stood (a fault, 401, 413, another 4xx), or the request changes nothing that
    /// matters (Create, Get, Signal and Delete, which the client retries by itself on
    /// transient failures).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::OutcomeUnknown { .. } | Error::Deadline(_) | Error::OutputTooLarge { .. }
        )
    }

    /// Whether the failure may well not happen again on an identical request: the
    /// connection could not be made or broke, no answer came in time, or the server (or a
    /// proxy) answered 500, 502, 503 or 504 without a WS-Management fault. Integrity
    /// failures (a response that does not decrypt or verify) are never transient: they
    /// are refused, not retried.
    pub fn is_transient(&self) -> bool {
        match self.cause() {
            Error::Connect { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } => true,
            Error::Http { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}
