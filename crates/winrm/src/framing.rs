//! The `multipart/encrypted` framing of WinRM message encryption (MS-WSMV 2.2.9.1).
//!
//! Over HTTP with NTLM, Windows (AllowUnencrypted=false) accepts only sealed bodies: two
//! MIME parts, the first naming the protocol and the plaintext length, the second holding
//! a 4-byte little-endian signature length, the NTLM signature and the sealed SOAP. This
//! module only frames and unframes bytes; sealing is the NTLM session's job.
//!
//! Reading is lenient as real servers are: part headers with or without their leading tab,
//! `--Encrypted Boundary` or `-- Encrypted Boundary` (Exchange, openwsman), any casing of
//! header names. The sealed payload is located by the announced length, never by
//! searching for the boundary in binary data.

/// The MIME protocol of NTLM/Negotiate session encryption.
pub const SPNEGO_PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";

/// The MIME protocol of session encryption under the `Kerberos` HTTP scheme ("Kerberos
/// Encrypted Message", MS-WSMV 2.2.9.1,
/// https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wsmv/58421aa4-861a-4410-831a-c999f094cdb7);
/// under `Negotiate` Kerberos uses [`SPNEGO_PROTOCOL`] as NTLM does.
pub const KERBEROS_PROTOCOL: &str = "application/HTTP-Kerberos-session-encrypted";

/// The Content-Type of a request encrypted under the `Kerberos` HTTP scheme.
pub const KERBEROS_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"";

/// The Content-Type of an encrypted request.
pub const CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";

/// A sealed message larger than this is refused before allocating for it.
pub const MAX_SEALED_LEN: usize = 512 * 1024 * 1024;

/// Why a framed body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// A required header or part is missing.
    #[error("the encrypted body has no {0}")]
    Missing(&'static str),
    /// A length does not fit the body.
    #[error("the encrypted body is truncated: {0}")]
    Truncated(String),
    /// A value is not what the framing allows.
    #[error("the encrypted body is malformed: {0}")]
    Malformed(String),
}

/// Frames one sealed message.
pub fn encode(signature: &[u8], sealed: &[u8]) -> Vec<u8> {
    encode_with(SPNEGO_PROTOCOL, signature, sealed, sealed.len())
}

/// Frames one sealed message of `protocol` (SPNEGO or Kerberos session encryption):
/// `signature` is the NTLM signature or the GSS wrap token's header, `original_len` the
/// length of the plaintext (the sealed data may carry padding after it).
pub fn encode_with(
    protocol: &str,
    signature: &[u8],
    sealed: &[u8],
    original_len: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed.len() + 256);
    out.extend_from_slice(b"--Encrypted Boundary\r\n");
    out.extend_from_slice(format!("\tContent-Type: {protocol}\r\n").as_bytes());
    out.extend_from_slice(
        format!(
            "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={original_len}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"--Encrypted Boundary\r\n");
    out.extend_from_slice(b"\tContent-Type: application/octet-stream\r\n");
    out.extend_from_slice(&(signature.len() as u32).to_le_bytes());
    out.extend_from_slice(signature);
    out.extend_from_slice(sealed);
    out.extend_from_slice(b"--Encrypted Boundary--\r\n");
    out
}

/// One framed message: the signature and the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The NTLM signature (16 bytes for NTLM).
    pub signature: Vec<u8>,
    /// The sealed SOAP message.
    pub sealed: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| p + from)
}

/// Reads a framed body.
pub fn decode(body: &[u8]) -> Result<Sealed, FramingError> {
    let oc = find(body, b"OriginalContent:", 0)
        .ok_or(FramingError::Missing("OriginalContent header"))?;
    let line_end =
        find(body, b"\n", oc).ok_or(FramingError::Truncated("OriginalContent line".into()))?;
    let line = String::from_utf8_lossy(&body[oc..line_end]);
    let length = line
        .split(';')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("length")
                .then(|| v.trim().to_string())
        })
        .ok_or(FramingError::Missing("Length in OriginalContent"))?;
    let length: usize = length
        .parse()
        .map_err(|_| FramingError::Malformed(format!("Length '{length}' is not a number")))?;
    if length > MAX_SEALED_LEN {
        return Err(FramingError::Malformed(format!(
            "Length {length} is too large"
        )));
    }
    let ct = find(body, b"application/octet-stream", line_end)
        .ok_or(FramingError::Missing("application/octet-stream part"))?;
    let mut pos =
        find(body, b"\n", ct).ok_or(FramingError::Truncated("octet-stream header".into()))? + 1;
    let header = body
        .get(pos..pos + 4)
        .ok_or_else(|| FramingError::Truncated("signature length".into()))?;
    let sig_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if sig_len > 1024 {
        return Err(FramingError::Malformed(format!(
            "signature length {sig_len} is implausible"
        )));
    }
    pos += 4;
    let signature = body
        .get(pos..pos + sig_len)
        .ok_or_else(|| FramingError::Truncated("signature".into()))?
        .to_vec();
    pos += sig_len;
    let sealed = body
        .get(pos..pos + length)
        .ok_or_else(|| {
            FramingError::Truncated(format!(
                "announced {length} bytes, {} present",
                body.len().saturating_sub(pos)
            ))
        })?
        .to_vec();
    Ok(Sealed { signature, sealed })
}

/// Whether a Content-Type header names the SPNEGO encrypted framing.
pub fn is_encrypted_content_type(content_type: &str) -> bool {
    is_encrypted_as(content_type, SPNEGO_PROTOCOL)
}

/// Whether a Content-Type header names the encrypted framing of `protocol`.
pub fn is_encrypted_as(content_type: &str, protocol: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("multipart/encrypted") && ct.contains(&protocol.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_byte_exact_windows_layout() {
        let body = encode(&[1u8; 16], b"abc");
        let mut expected = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=3\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n".to_vec();
        expected.extend_from_slice(&[16, 0, 0, 0]);
        expected.extend_from_slice(&[1u8; 16]);
        expected.extend_from_slice(b"abc--Encrypted Boundary--\r\n");
        assert_eq!(body, expected);
        let back = decode(&body).unwrap();
        assert_eq!(back.signature, vec![1u8; 16]);
        assert_eq!(back.sealed, b"abc");
    }

    #[test]
    fn reads_variants_without_tabs_and_with_a_spaced_boundary() {
        let mut body = b"-- Encrypted Boundary\r\ncontent-type: application/HTTP-SPNEGO-session-encrypted\r\nOriginalContent: type=application/soap+xml;charset=UTF-8;Length=4\r\n-- Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n".to_vec();
        body.extend_from_slice(&[16, 0, 0, 0]);
        body.extend_from_slice(&[7u8; 16]);
        // The sealed bytes contain the boundary text itself: the length decides, not a search.
        body.extend_from_slice(b"--En");
        body.extend_from_slice(b"-- Encrypted Boundary--\r\n");
        let back = decode(&body).unwrap();
        assert_eq!(back.sealed, b"--En");
    }

    #[test]
    fn truncated_and_garbage_bodies_are_errors() {
        let body = encode(&[1u8; 16], b"abcdef");
        for cut in 0..body.len() - "--Encrypted Boundary--\r\n".len() {
            assert!(decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"").is_err());
        assert!(decode(b"OriginalContent: Length=99999999999999999999\n").is_err());
    }

    #[test]
    fn recognises_the_content_type() {
        assert!(is_encrypted_content_type(CONTENT_TYPE));
        assert!(is_encrypted_content_type(
            "multipart/encrypted; protocol=\"application/HTTP-SPNEGO-session-encrypted\"; boundary=\"Encrypted Boundary\""
        ));
        assert!(!is_encrypted_content_type(
            "application/soap+xml;charset=UTF-8"
        ));
    }
}
