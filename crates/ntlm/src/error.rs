//! The one error type of this crate. Messages say what went wrong and where in the exchange;
//! none ever carries a password, a hash or a key, only user and domain names.

use std::fmt;

/// Which NTLM structure an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// NEGOTIATE_MESSAGE (type 1), client to server.
    Negotiate,
    /// CHALLENGE_MESSAGE (type 2), server to client.
    Challenge,
    /// AUTHENTICATE_MESSAGE (type 3), client to server.
    Authenticate,
    /// The 16-byte NTLMSSP_MESSAGE_SIGNATURE of a signed or sealed message.
    Signature,
}

impl MessageKind {
    /// The MessageType field value of this message (0 for a signature, which has none).
    pub fn message_type(self) -> u32 {
        match self {
            MessageKind::Negotiate => 1,
            MessageKind::Challenge => 2,
            MessageKind::Authenticate => 3,
            MessageKind::Signature => 0,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::Negotiate => "NEGOTIATE (type 1)",
            MessageKind::Challenge => "CHALLENGE (type 2)",
            MessageKind::Authenticate => "AUTHENTICATE (type 3)",
            MessageKind::Signature => "message signature",
        })
    }
}

/// Everything that can go wrong while authenticating or protecting messages with NTLM.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum NtlmError {
    /// A message from the peer cannot be parsed: it is too short or longer than 64 KiB, lacks the
    /// `NTLMSSP\0` signature, has a field pointing outside the message or into its header, text
    /// that is not UTF-16, AV pairs without a terminator, or a signature of the wrong size or
    /// version.
    #[error("malformed NTLM {message}: {detail}")]
    Malformed {
        /// The structure being parsed.
        message: MessageKind,
        /// What is wrong, with offsets where they help.
        detail: String,
    },

    /// The message is well-formed NTLM but of another type than the step expects (for example a
    /// NEGOTIATE where the AUTHENTICATE should be).
    #[error("expected an NTLM {expected} message but got message type {found}")]
    WrongMessageType {
        /// The message the step expects.
        expected: MessageKind,
        /// The MessageType field found.
        found: u32,
    },

    /// The peer does not offer what we require: NTLMv2 with extended session security, 128-bit
    /// keys, key exchange, signing, sealing and Unicode. Happens with NTLMv1- or LM-only peers
    /// (for example a server or client with a low LmCompatibilityLevel).
    #[error("unsupported NTLM peer: {0}")]
    Unsupported(String),

    /// Acceptor side: no configured account matches the user and domain of the AUTHENTICATE
    /// message, or the response does not match the account's password. The two cases are not
    /// told apart, so that a client cannot probe for user names.
    #[error("authentication of {domain}\\{user} failed: unknown user or wrong password")]
    BadCredentials {
        /// The domain as the client sent it (may be empty).
        domain: String,
        /// The user name as the client sent it.
        user: String,
    },

    /// Initiator side: the server refused the AUTHENTICATE message (for WinRM, a second 401).
    /// NTLM itself carries no verdict, so the transport constructs this error; the NTLM code
    /// never does.
    #[error(
        "the server refused the NTLM credentials of {account}: wrong password, unknown or locked-out account, or the account may not log on to this server"
    )]
    ServerRefused {
        /// `DOMAIN\user` (or `user`) as sent.
        account: String,
    },

    /// Acceptor side: the AUTHENTICATE message carries no MIC although our CHALLENGE had a
    /// timestamp, which obliges an NTLMv2 client to send one (MS-NLMP 3.1.5.1.2). Without it the
    /// negotiated flags could have been downgraded in transit.
    #[error("the NTLM AUTHENTICATE message has no MIC; refusing it (possible downgrade)")]
    MissingMic,

    /// Acceptor side: the MIC over NEGOTIATE, CHALLENGE and AUTHENTICATE does not match; one of
    /// the three messages was altered in transit.
    #[error(
        "NTLM message integrity check (MIC) mismatch: the authentication messages were altered in transit"
    )]
    MicMismatch,

    /// Acceptor side, when channel bindings are required: the client's MsvAvChannelBindings is
    /// missing, all zero, or differs from the hash of our bindings (for WinRM over HTTPS: the
    /// client saw another TLS certificate, i.e. something intercepts the connection).
    #[error("channel binding mismatch: {0}")]
    ChannelBindingMismatch(&'static str),

    /// A signed or sealed message fails verification: it was altered, or was sealed with other
    /// keys. After this the inbound RC4 stream is out of step, see [`NtlmError::SessionBroken`].
    #[error("NTLM signature mismatch: the message was altered or sealed with other keys")]
    SignatureMismatch,

    /// A signed or sealed message carries another sequence number than the next one expected:
    /// it is a replay, arrived out of order, or a message was lost. The session is unchanged
    /// and still expects the same number.
    #[error(
        "NTLM sequence number mismatch: expected {expected}, got {found} (replayed, reordered or lost message)"
    )]
    SequenceMismatch {
        /// The sequence number the session expects next.
        expected: u32,
        /// The sequence number in the signature.
        found: u32,
    },

    /// An unseal or verify after an earlier signature mismatch. The inbound RC4 stream has
    /// consumed bytes the peer never sent it, so no later message can be decrypted; the
    /// caller must authenticate a new session.
    #[error(
        "the inbound direction of this NTLM session failed verification earlier and cannot be used any more; authenticate again"
    )]
    SessionBroken,

    /// A method was called in the wrong state, for example `authenticate_message` before
    /// `negotiate_message`, `into_session` before authentication completed, or again after a
    /// failure.
    #[error("NTLM {operation} called out of order: {state}")]
    OutOfOrder {
        /// The method called.
        operation: &'static str,
        /// Why it cannot run now.
        state: &'static str,
    },

    /// One of our own inputs (user, domain, workstation, target SPN, channel binding data) is
    /// too long to fit a 16-bit NTLM length field.
    #[error("the {0} is too long for an NTLM message")]
    FieldTooLong(&'static str),
}

impl NtlmError {
    pub(crate) fn malformed(message: MessageKind, detail: impl Into<String>) -> Self {
        NtlmError::Malformed {
            message,
            detail: detail.into(),
        }
    }
}
