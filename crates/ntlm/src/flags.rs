//! The NEGOTIATE flags of MS-NLMP 2.2.2.5, and the set this crate insists on.
//!
//! Public so that callers (the simulator, diagnostics) can read the flags of a message without
//! redefining the constants.

/// Text fields are UTF-16LE. Required.
pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
/// Text fields are in the OEM code page. Never used by us.
pub const NEGOTIATE_OEM: u32 = 0x0000_0002;
/// The client asks the server for its target name.
pub const REQUEST_TARGET: u32 = 0x0000_0004;
/// Message integrity (signing). Required.
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
/// Message confidentiality (sealing). Required.
pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
/// Connectionless NTLM. Not supported.
pub const NEGOTIATE_DATAGRAM: u32 = 0x0000_0040;
/// LAN Manager session key. Not supported (it weakens the keys).
pub const NEGOTIATE_LM_KEY: u32 = 0x0000_0080;
/// NTLM v1 session security; every NTLM client sets it, NTLMv2 included.
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
/// Anonymous connection. Not supported.
pub const ANONYMOUS: u32 = 0x0000_0800;
/// The NEGOTIATE message carries a domain name.
pub const NEGOTIATE_OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
/// The NEGOTIATE message carries a workstation name.
pub const NEGOTIATE_OEM_WORKSTATION_SUPPLIED: u32 = 0x0000_2000;
/// Sign even when neither side asked for integrity.
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
/// The target name is a domain.
pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
/// The target name is a server.
pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
/// NTLM2 session security: the signing and sealing keys of MS-NLMP 3.4.5. Required.
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
/// Identify-level token requested.
pub const NEGOTIATE_IDENTIFY: u32 = 0x0010_0000;
/// Request a non-NT session key (LM). Not supported.
pub const REQUEST_NON_NT_SESSION_KEY: u32 = 0x0040_0000;
/// The CHALLENGE message carries target information (AV pairs).
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
/// The message carries the 8-byte Version field.
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
/// 128-bit session keys. Required.
pub const NEGOTIATE_128: u32 = 0x2000_0000;
/// Explicit key exchange (EncryptedRandomSessionKey). Required.
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
/// 56-bit session keys; offered for compatibility, 128 wins when both are set.
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// What both our initiator and our acceptor require of the peer. Anything less is NTLMv1-era
/// security (weak keys, no key exchange, or no sealing, which WinRM over HTTP cannot do
/// without), so we refuse it rather than silently degrade.
pub const REQUIRED: u32 = NEGOTIATE_UNICODE
    | NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH;

const NAMES: [(u32, &str); 6] = [
    (NEGOTIATE_UNICODE, "NTLMSSP_NEGOTIATE_UNICODE"),
    (NEGOTIATE_SIGN, "NTLMSSP_NEGOTIATE_SIGN"),
    (NEGOTIATE_SEAL, "NTLMSSP_NEGOTIATE_SEAL"),
    (
        NEGOTIATE_EXTENDED_SESSIONSECURITY,
        "NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY",
    ),
    (NEGOTIATE_128, "NTLMSSP_NEGOTIATE_128"),
    (NEGOTIATE_KEY_EXCH, "NTLMSSP_NEGOTIATE_KEY_EXCH"),
];

/// The names of the [`REQUIRED`] flags missing from `flags`, joined with ", " (empty if none).
pub fn missing_required(flags: u32) -> String {
    NAMES
        .iter()
        .filter(|(bit, _)| flags & bit == 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_missing_required_flag() {
        assert_eq!(missing_required(REQUIRED), "");
        assert_eq!(
            missing_required(REQUIRED & !NEGOTIATE_EXTENDED_SESSIONSECURITY & !NEGOTIATE_128),
            "NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY, NTLMSSP_NEGOTIATE_128"
        );
        assert_eq!(missing_required(0).matches("NTLMSSP_").count(), 6);
    }
}
