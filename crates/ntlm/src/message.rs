//! Wire format of the three NTLM messages (MS-NLMP 2.2.1) and of AV pairs (2.2.2.1): building
//! ours and parsing the peer's.
//!
//! Parsing trusts nothing: every read goes through `get`, every payload field is checked to lie
//! inside the message and after its fixed header, and messages over [`MAX_MESSAGE_LEN`] are
//! refused before anything else, so no input can panic or make us allocate more than a small
//! multiple of its own size.

use crate::error::{MessageKind, NtlmError};

/// The largest NTLM message we parse. Real ones are a few hundred bytes; the limit only keeps
/// hostile input from costing memory or time.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

const SIGNATURE: [u8; 8] = *b"NTLMSSP\0";

/// Our Version field (MS-NLMP 2.2.2.10): Windows 6.1 build 7601, NTLMSSP_REVISION_W2K3. Windows
/// peers and pyspnego only look at it for the MIC layout, but some servers expect it present.
pub(crate) const VERSION: [u8; 8] = [6, 1, 0xb1, 0x1d, 0, 0, 0, 15];

/// AV pair identifiers (MS-NLMP 2.2.2.1).
pub(crate) mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const DNS_TREE_NAME: u16 = 5;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    pub const TARGET_NAME: u16 = 9;
    pub const CHANNEL_BINDINGS: u16 = 10;

    /// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
    pub const FLAG_MIC: u32 = 0x0000_0002;
}

/// Offset of the MIC in AUTHENTICATE messages that carry a Version field (all of ours).
pub(crate) const MIC_OFFSET: usize = 72;
/// Fixed part of our AUTHENTICATE message: fields, flags, Version and MIC.
const AUTHENTICATE_FIXED_LEN: usize = 88;
/// Fixed part of our CHALLENGE message, Version included.
const CHALLENGE_FIXED_LEN: usize = 56;

/// One AV pair of a target info list, borrowed from the message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AvPair<'a> {
    pub id: u16,
    pub value: &'a [u8],
}

/// Finds the value of the first AV pair with this id.
pub(crate) fn find_av<'a>(pairs: &[AvPair<'a>], id: u16) -> Option<&'a [u8]> {
    pairs.iter().find(|p| p.id == id).map(|p| p.value)
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn read_u16(kind: MessageKind, bytes: &[u8], at: usize) -> Result<u16, NtlmError> {
    array(bytes, at)
        .map(u16::from_le_bytes)
        .ok_or_else(|| NtlmError::malformed(kind, format!("truncated at byte {at}")))
}

fn read_u32(kind: MessageKind, bytes: &[u8], at: usize) -> Result<u32, NtlmError> {
    array(bytes, at)
        .map(u32::from_le_bytes)
        .ok_or_else(|| NtlmError::malformed(kind, format!("truncated at byte {at}")))
}

/// Checks size, signature and type of a message; `min_len` is the size of the fixed part we read.
fn check_header(kind: MessageKind, bytes: &[u8], min_len: usize) -> Result<(), NtlmError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(NtlmError::malformed(
            kind,
            format!(
                "the message is {} bytes, more than the {MAX_MESSAGE_LEN} accepted",
                bytes.len()
            ),
        ));
    }
    if bytes.get(..8) != Some(&SIGNATURE[..]) {
        return Err(NtlmError::malformed(
            kind,
            "it does not start with the NTLMSSP signature (is the token SPNEGO-wrapped or not NTLM at all?)",
        ));
    }
    let found = read_u32(kind, bytes, 8)?;
    if found != kind.message_type() {
        return Err(NtlmError::WrongMessageType {
            expected: kind,
            found,
        });
    }
    if bytes.len() < min_len {
        return Err(NtlmError::malformed(
            kind,
            format!(
                "the message is {} bytes, shorter than its {min_len}-byte fixed part",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// A payload field: (length u16, max length u16, offset u32) at `at`, pointing into `bytes`.
/// Non-empty fields must lie after the fixed part (`fixed_len`) and inside the message.
fn field<'a>(
    kind: MessageKind,
    bytes: &'a [u8],
    at: usize,
    name: &str,
    fixed_len: usize,
) -> Result<Field<'a>, NtlmError> {
    let len = usize::from(read_u16(kind, bytes, at)?);
    let offset = read_u32(kind, bytes, at + 4)?;
    if len == 0 {
        return Ok(Field { data: &[], offset });
    }
    // u32 always fits usize on the platforms we build for; if not, the range check fails.
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    if start < fixed_len {
        return Err(NtlmError::malformed(
            kind,
            format!(
                "the {name} field (offset {offset}, {len} bytes) overlaps the {fixed_len}-byte fixed part"
            ),
        ));
    }
    let data = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| {
            NtlmError::malformed(
                kind,
                format!(
                    "the {name} field (offset {offset}, {len} bytes) extends past the end of the {}-byte message",
                    bytes.len()
                ),
            )
        })?;
    Ok(Field { data, offset })
}

struct Field<'a> {
    data: &'a [u8],
    offset: u32,
}

fn utf16(kind: MessageKind, name: &str, bytes: &[u8]) -> Result<String, NtlmError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(NtlmError::malformed(
            kind,
            format!(
                "the {name} is {} bytes, an odd length for UTF-16",
                bytes.len()
            ),
        ));
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map_err(|_| NtlmError::malformed(kind, format!("the {name} is not valid UTF-16")))
}

/// Parses an AV pair list up to its MsvAvEOL (which is not returned). Bytes after the EOL are
/// ignored, as Windows does.
pub(crate) fn parse_av_pairs(
    kind: MessageKind,
    bytes: &[u8],
) -> Result<Vec<AvPair<'_>>, NtlmError> {
    let mut pairs = Vec::new();
    let mut pos = 0usize;
    loop {
        let header: [u8; 4] = array(bytes, pos).ok_or_else(|| {
            NtlmError::malformed(
                kind,
                format!("the AV pair list ends at byte {pos} without MsvAvEOL"),
            )
        })?;
        let id = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let value = bytes.get(pos + 4..pos + 4 + len).ok_or_else(|| {
            NtlmError::malformed(
                kind,
                format!(
                    "AV pair {id} at byte {pos} of the list claims {len} bytes, past its end ({} bytes)",
                    bytes.len()
                ),
            )
        })?;
        if id == av::EOL {
            return Ok(pairs);
        }
        pairs.push(AvPair { id, value });
        pos += 4 + len;
    }
}

/// Encodes AV pairs followed by MsvAvEOL.
pub(crate) fn encode_av_pairs(pairs: &[(u16, &[u8])]) -> Result<Vec<u8>, NtlmError> {
    let mut out = Vec::new();
    for (id, value) in pairs {
        let len = u16::try_from(value.len()).map_err(|_| NtlmError::FieldTooLong("target info"))?;
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&[0; 4]);
    Ok(out)
}

/// Builds a message from its fixed part and appends payload fields after it.
struct Builder {
    fixed: Vec<u8>,
    payload: Vec<u8>,
}

impl Builder {
    fn new(message_type: u32, fixed_len: usize) -> Self {
        let mut fixed = vec![0u8; fixed_len];
        fixed[..8].copy_from_slice(&SIGNATURE);
        fixed[8..12].copy_from_slice(&message_type.to_le_bytes());
        Builder {
            fixed,
            payload: Vec::new(),
        }
    }

    fn set(&mut self, at: usize, bytes: &[u8]) {
        self.fixed[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Appends `value` to the payload and points the field at `at` to it.
    fn field(&mut self, at: usize, value: &[u8], what: &'static str) -> Result<(), NtlmError> {
        let len = u16::try_from(value.len()).map_err(|_| NtlmError::FieldTooLong(what))?;
        let offset = u32::try_from(self.fixed.len() + self.payload.len())
            .map_err(|_| NtlmError::FieldTooLong(what))?;
        self.set(at, &len.to_le_bytes());
        self.set(at + 2, &len.to_le_bytes());
        self.set(at + 4, &offset.to_le_bytes());
        self.payload.extend_from_slice(value);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.fixed.extend_from_slice(&self.payload);
        self.fixed
    }
}

/// The part of a NEGOTIATE message we use.
#[derive(Debug)]
pub(crate) struct Negotiate {
    pub flags: u32,
}

/// Our NEGOTIATE message: no domain or workstation (Windows omits them too), with Version.
pub(crate) fn build_negotiate(flags: u32) -> Vec<u8> {
    let mut b = Builder::new(1, 40);
    b.set(12, &flags.to_le_bytes());
    // Empty domain and workstation fields point at the end of the fixed part.
    b.set(20, &40u32.to_le_bytes());
    b.set(28, &40u32.to_le_bytes());
    b.set(32, &VERSION);
    b.finish()
}

/// Parses a NEGOTIATE message. Only the flags matter to an acceptor; the optional domain and
/// workstation are informational and some clients send a 16-byte message without them.
pub(crate) fn parse_negotiate(bytes: &[u8]) -> Result<Negotiate, NtlmError> {
    let kind = MessageKind::Negotiate;
    check_header(kind, bytes, 16)?;
    Ok(Negotiate {
        flags: read_u32(kind, bytes, 12)?,
    })
}

/// A parsed CHALLENGE message.
#[derive(Debug)]
pub(crate) struct Challenge<'a> {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: Vec<AvPair<'a>>,
}

pub(crate) fn build_challenge(
    flags: u32,
    server_challenge: &[u8; 8],
    target_name: &str,
    target_info: &[u8],
) -> Result<Vec<u8>, NtlmError> {
    let mut b = Builder::new(2, CHALLENGE_FIXED_LEN);
    b.field(12, &crate::crypto::utf16le(target_name), "target name")?;
    b.set(20, &flags.to_le_bytes());
    b.set(24, server_challenge);
    b.field(40, target_info, "target info")?;
    b.set(48, &VERSION);
    Ok(b.finish())
}

pub(crate) fn parse_challenge(bytes: &[u8]) -> Result<Challenge<'_>, NtlmError> {
    let kind = MessageKind::Challenge;
    // Fixed part up to the target info field; the Version after it is optional.
    const FIXED: usize = 48;
    check_header(kind, bytes, FIXED)?;
    // The target name is informational, but a field pointing outside the message is still
    // a malformed message.
    field(kind, bytes, 12, "target name", FIXED)?;
    let flags = read_u32(kind, bytes, 20)?;
    let server_challenge =
        array(bytes, 24).ok_or_else(|| NtlmError::malformed(kind, "truncated server challenge"))?;
    let info = field(kind, bytes, 40, "target info", FIXED)?;
    let target_info = if info.data.is_empty() {
        Vec::new()
    } else {
        parse_av_pairs(kind, info.data)?
    };
    Ok(Challenge {
        flags,
        server_challenge,
        target_info,
    })
}

/// What goes into our AUTHENTICATE message.
pub(crate) struct AuthenticateParts<'a> {
    pub flags: u32,
    pub lm_response: &'a [u8],
    pub nt_response: &'a [u8],
    pub domain: &'a str,
    pub user: &'a str,
    pub workstation: &'a str,
    pub encrypted_session_key: &'a [u8],
}

/// Our AUTHENTICATE message, with Version and a zeroed MIC at [`MIC_OFFSET`] for the caller to
/// fill in once it has hashed the message.
pub(crate) fn build_authenticate(parts: &AuthenticateParts<'_>) -> Result<Vec<u8>, NtlmError> {
    let mut b = Builder::new(3, AUTHENTICATE_FIXED_LEN);
    b.field(12, parts.lm_response, "LM response")?;
    b.field(20, parts.nt_response, "NT response (target info too large)")?;
    b.field(28, &crate::crypto::utf16le(parts.domain), "domain name")?;
    b.field(36, &crate::crypto::utf16le(parts.user), "user name")?;
    b.field(
        44,
        &crate::crypto::utf16le(parts.workstation),
        "workstation name",
    )?;
    b.field(52, parts.encrypted_session_key, "session key")?;
    b.set(60, &parts.flags.to_le_bytes());
    b.set(64, &VERSION);
    Ok(b.finish())
}

/// A parsed AUTHENTICATE message.
#[derive(Debug)]
pub(crate) struct Authenticate<'a> {
    pub flags: u32,
    pub nt_response: &'a [u8],
    pub domain: String,
    pub user: String,
    pub encrypted_session_key: &'a [u8],
    /// Where a MIC would be, if the fixed part has room for one.
    pub mic_offset: Option<usize>,
}

pub(crate) fn parse_authenticate(bytes: &[u8]) -> Result<Authenticate<'_>, NtlmError> {
    let kind = MessageKind::Authenticate;
    const FIXED: usize = 64;
    check_header(kind, bytes, FIXED)?;
    let flags = read_u32(kind, bytes, 60)?;
    if flags & crate::flags::NEGOTIATE_UNICODE == 0 {
        return Err(NtlmError::Unsupported(
            "the client's AUTHENTICATE message uses OEM code-page text, not Unicode".into(),
        ));
    }
    let lm = field(kind, bytes, 12, "LM response", FIXED)?;
    let nt = field(kind, bytes, 20, "NT response", FIXED)?;
    let domain = field(kind, bytes, 28, "domain name", FIXED)?;
    let user = field(kind, bytes, 36, "user name", FIXED)?;
    let workstation = field(kind, bytes, 44, "workstation name", FIXED)?;
    let key = field(kind, bytes, 52, "session key", FIXED)?;
    // The MIC has no field of its own: it sits between the fixed part and the payload, after
    // the Version if there is one. Windows always sends both (payload from 88); pyspnego omits
    // the Version unless the server sent one (payload from 80). So the first payload byte tells
    // where the MIC is, as in other implementations.
    let first_payload = [&lm, &nt, &domain, &user, &workstation, &key]
        .iter()
        .filter(|f| !f.data.is_empty())
        .map(|f| f.offset)
        .min();
    let mic_offset = match first_payload {
        Some(o) if o >= 88 => Some(MIC_OFFSET),
        Some(o) if o >= 80 => Some(64),
        _ => None,
    };
    Ok(Authenticate {
        flags,
        nt_response: nt.data,
        domain: utf16(kind, "domain name", domain.data)?,
        user: utf16(kind, "user name", user.data)?,
        encrypted_session_key: key.data,
        mic_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(message_type: u32, len: usize) -> Vec<u8> {
        let mut m = vec![0u8; len];
        m[..8].copy_from_slice(b"NTLMSSP\0");
        m[8..12].copy_from_slice(&message_type.to_le_bytes());
        m
    }

    #[test]
    fn refuses_oversized_messages() {
        let mut m = header(1, MAX_MESSAGE_LEN + 1);
        m[12..16].copy_from_slice(&crate::flags::REQUIRED.to_le_bytes());
        let err = parse_negotiate(&m).unwrap_err();
        assert!(err.to_string().contains("more than the 65536"), "{err}");
        assert!(parse_negotiate(&m[..MAX_MESSAGE_LEN]).is_ok());
    }

    #[test]
    fn refuses_wrong_signature_and_type() {
        assert!(matches!(
            parse_negotiate(b"NTLMSSX\0\x01\0\0\0\0\0\0\0"),
            Err(NtlmError::Malformed { .. })
        ));
        assert!(matches!(
            parse_negotiate(&header(2, 40)),
            Err(NtlmError::WrongMessageType { found: 2, .. })
        ));
    }

    #[test]
    fn refuses_field_past_the_end() {
        let mut m = header(2, 56);
        m[40..42].copy_from_slice(&10u16.to_le_bytes());
        m[44..48].copy_from_slice(&50u32.to_le_bytes());
        let err = parse_challenge(&m).unwrap_err().to_string();
        assert!(
            err.contains("target info field (offset 50, 10 bytes) extends past"),
            "{err}"
        );
    }

    #[test]
    fn refuses_field_overlapping_header() {
        let mut m = header(2, 80);
        m[40..42].copy_from_slice(&4u16.to_le_bytes());
        m[44..48].copy_from_slice(&8u32.to_le_bytes());
        let err = parse_challenge(&m).unwrap_err().to_string();
        assert!(err.contains("overlaps"), "{err}");
    }

    #[test]
    fn field_offset_near_u32_max_does_not_overflow() {
        let mut m = header(2, 56);
        m[40..42].copy_from_slice(&0xffffu16.to_le_bytes());
        m[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_challenge(&m),
            Err(NtlmError::Malformed { .. })
        ));
    }

    #[test]
    fn av_pairs_need_a_terminator() {
        assert!(parse_av_pairs(MessageKind::Challenge, &[1, 0, 2, 0, b'a', 0]).is_err());
        assert!(parse_av_pairs(MessageKind::Challenge, &[1, 0, 9, 0, b'a', 0]).is_err());
        let pairs = parse_av_pairs(MessageKind::Challenge, &[1, 0, 2, 0, b'a', 0, 0, 0, 0, 0])
            .expect("valid list");
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].id, 1);
        assert_eq!(pairs[0].value, b"a\0");
    }

    #[test]
    fn challenge_round_trips() {
        let info = encode_av_pairs(&[(av::NB_DOMAIN_NAME, b"D\0"), (av::TIMESTAMP, &[7; 8])])
            .expect("small");
        let m = build_challenge(0x1234_5678, &[9; 8], "SRV", &info).expect("small");
        let c = parse_challenge(&m).expect("our own message parses");
        assert_eq!(c.flags, 0x1234_5678);
        assert_eq!(c.server_challenge, [9; 8]);
        assert_eq!(find_av(&c.target_info, av::TIMESTAMP), Some(&[7u8; 8][..]));
        assert_eq!(
            find_av(&c.target_info, av::NB_DOMAIN_NAME),
            Some(&b"D\0"[..])
        );
    }

    #[test]
    fn authenticate_round_trips_and_locates_mic() {
        let m = build_authenticate(&AuthenticateParts {
            flags: crate::flags::REQUIRED,
            lm_response: &[0; 24],
            nt_response: &[1; 60],
            domain: "Dom",
            user: "Ü",
            workstation: "WS",
            encrypted_session_key: &[2; 16],
        })
        .expect("small");
        let a = parse_authenticate(&m).expect("our own message parses");
        assert_eq!(a.domain, "Dom");
        assert_eq!(a.user, "Ü");
        assert_eq!(a.nt_response, &[1; 60][..]);
        assert_eq!(a.encrypted_session_key, &[2; 16][..]);
        assert_eq!(a.mic_offset, Some(MIC_OFFSET));
    }

    #[test]
    fn odd_utf16_is_malformed() {
        assert!(utf16(MessageKind::Authenticate, "user name", &[0x41]).is_err());
        // An unpaired surrogate.
        assert!(utf16(MessageKind::Authenticate, "user name", &[0x00, 0xd8]).is_err());
    }
}
