//! An established NTLM security context: signing and sealing with extended session security
//! (MS-NLMP 3.4.4.2 and 3.4.6, GSS_WrapEx / GSS_GetMICEx).
//!
//! WinRM uses NTLM connection-oriented: each direction has one RC4 stream that runs on across
//! messages and one sequence number counting every signed or sealed message. Sealing and
//! signing share both, so the two peers must see exactly the same sequence of calls.

use std::fmt;

use crate::crypto::{self, Direction};
use crate::error::{MessageKind, NtlmError};

/// Which side of the authentication a session belongs to; it decides which keys seal and
/// which unseal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The client: seals with the client-to-server keys.
    Initiator,
    /// The server: seals with the server-to-client keys.
    Acceptor,
}

/// One direction of a session.
struct Half {
    sign_key: [u8; 16],
    rc4: crypto::Rc4,
    seq: u32,
    /// Set when a signature check failed after the RC4 stream had advanced; see
    /// [`NtlmError::SessionBroken`].
    broken: bool,
}

impl Half {
    fn new(exported_session_key: &[u8; 16], direction: Direction) -> Self {
        Half {
            sign_key: crypto::sign_key(exported_session_key, direction),
            rc4: crypto::new_rc4(&crypto::seal_key(exported_session_key, direction)),
            seq: 0,
            broken: false,
        }
    }

    /// The signature of `plaintext` at the current sequence number (MS-NLMP 3.4.4.2). This
    /// encrypts the checksum with the RC4 stream, advancing it by 8 bytes.
    fn signature(&mut self, plaintext: &[u8]) -> [u8; 16] {
        let seq = self.seq.to_le_bytes();
        let mac = crypto::hmac_md5(&self.sign_key, &[&seq, plaintext]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&mac[..8]);
        // With key exchange negotiated (always, for us) the checksum is encrypted too.
        self.rc4.apply_keystream(&mut checksum);
        let mut signature = [0u8; 16];
        signature[..4].copy_from_slice(&1u32.to_le_bytes());
        signature[4..12].copy_from_slice(&checksum);
        signature[12..].copy_from_slice(&seq);
        signature
    }

    /// Checks version and sequence number of a received signature before touching the RC4
    /// stream, so a replayed or reordered message leaves the session as it was.
    fn precheck(&self, signature: &[u8]) -> Result<[u8; 16], NtlmError> {
        if self.broken {
            return Err(NtlmError::SessionBroken);
        }
        let signature: [u8; 16] = signature.try_into().map_err(|_| {
            NtlmError::malformed(
                MessageKind::Signature,
                format!("it is {} bytes, not 16", signature.len()),
            )
        })?;
        let version = u32::from_le_bytes([signature[0], signature[1], signature[2], signature[3]]);
        if version != 1 {
            return Err(NtlmError::malformed(
                MessageKind::Signature,
                format!("version {version}, not 1"),
            ));
        }
        let found =
            u32::from_le_bytes([signature[12], signature[13], signature[14], signature[15]]);
        if found != self.seq {
            return Err(NtlmError::SequenceMismatch {
                expected: self.seq,
                found,
            });
        }
        Ok(signature)
    }

    /// Compares the received signature with ours (which advances the RC4 stream). RC4 state
    /// cannot be rewound, so a mismatch breaks this direction for good.
    fn check(&mut self, plaintext: &[u8], received: &[u8; 16]) -> Result<(), NtlmError> {
        let expected = self.signature(plaintext);
        if crypto::constant_time_eq(&expected, received) {
            self.seq = self.seq.wrapping_add(1);
            Ok(())
        } else {
            self.broken = true;
            Err(NtlmError::SignatureMismatch)
        }
    }
}

/// One established security context, directional: an initiator's session seals with the
/// client keys and unseals with the server keys; an acceptor's the other way round. Separate
/// sequence numbers per direction; the RC4 handles persist across messages
/// (connection-oriented, as WinRM uses it).
pub struct Session {
    outbound: Half,
    inbound: Half,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and RC4 state stay out of logs; sequence numbers help debugging.
        f.debug_struct("Session")
            .field("next_outbound_seq", &self.outbound.seq)
            .field("next_inbound_seq", &self.inbound.seq)
            .field("inbound_broken", &self.inbound.broken)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session over an already agreed exported session key. [`crate::Initiator::into_session`]
    /// and [`crate::Acceptor::into_session`] are the normal way to get one; this exists for the
    /// specification's test vectors and for tests of message framing.
    pub fn from_exported_session_key(role: Role, exported_session_key: &[u8; 16]) -> Self {
        let (out, inn) = match role {
            Role::Initiator => (Direction::ClientToServer, Direction::ServerToClient),
            Role::Acceptor => (Direction::ServerToClient, Direction::ClientToServer),
        };
        Session {
            outbound: Half::new(exported_session_key, out),
            inbound: Half::new(exported_session_key, inn),
        }
    }

    /// Seal then sign, as MS-NLMP GSS_WrapEx: returns (16-byte signature, sealed bytes of the
    /// same length as msg). Signature = version 1 ‖ RC4(HMAC_MD5(signkey, seq‖msg)[0..8]) ‖
    /// seq, with the checksum encrypted by the same RC4 stream right after the message.
    pub fn seal(&mut self, msg: &[u8]) -> ([u8; 16], Vec<u8>) {
        let mut sealed = msg.to_vec();
        self.outbound.rc4.apply_keystream(&mut sealed);
        let signature = self.outbound.signature(msg);
        self.outbound.seq = self.outbound.seq.wrapping_add(1);
        (signature, sealed)
    }

    /// Decrypts a sealed message and verifies its signature and sequence number. A replayed or
    /// reordered message fails with [`NtlmError::SequenceMismatch`] and leaves the session
    /// unchanged; an altered one fails with [`NtlmError::SignatureMismatch`] and breaks the
    /// inbound direction.
    pub fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let signature = self.inbound.precheck(signature)?;
        let mut plaintext = sealed.to_vec();
        self.inbound.rc4.apply_keystream(&mut plaintext);
        self.inbound.check(&plaintext, &signature)?;
        Ok(plaintext)
    }

    /// Signs a message without encrypting it (GSS_GetMICEx). Uses and advances the same
    /// sequence number and RC4 stream as [`Session::seal`].
    pub fn sign(&mut self, msg: &[u8]) -> [u8; 16] {
        let signature = self.outbound.signature(msg);
        self.outbound.seq = self.outbound.seq.wrapping_add(1);
        signature
    }

    /// Verifies the signature of a message the peer signed with its `sign`; errors as for
    /// [`Session::unseal`].
    pub fn verify(&mut self, msg: &[u8], signature: &[u8]) -> Result<(), NtlmError> {
        let signature = self.inbound.precheck(signature)?;
        self.inbound.check(msg, &signature)
    }
}
