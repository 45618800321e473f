//! The `multipart/encrypted` framing of MS-WSMV 2.2.9.1 that carries NTLM-sealed SOAP over
//! HTTP. Pure functions over bytes: sealing itself is the NTLM session's job.
//!
//! Reading is lenient as real peers demand: part headers with or without the leading tab
//! (WinRb omits it), `--Encrypted Boundary` or `-- Encrypted Boundary` (Exchange and
//! openwsman put a space), and the payload is delimited by its own lengths rather than by
//! searching for the closing boundary in binary data. Writing is byte-exact with what
//! Windows sends and what pywinrm's parser expects (tabs, no CRLF before the closing
//! boundary).

/// The protocol parameter for NTLM/Negotiate sealing.
pub const SPNEGO_PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";

/// The protocol parameter for Kerberos sealing under the `Kerberos` HTTP scheme.
pub const KERBEROS_PROTOCOL: &str = "application/HTTP-Kerberos-session-encrypted";

/// The Content-Type of a response sealed under the `Kerberos` HTTP scheme.
pub const KERBEROS_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"";

/// The Content-Type of a sealed request or response.
pub const ENCRYPTED_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";

/// Why a multipart/encrypted body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// No `--Encrypted Boundary` line where one must be.
    #[error("missing boundary line")]
    MissingBoundary,
    /// The first part lacks `OriginalContent: ...;Length=N`.
    #[error("missing or bad OriginalContent length")]
    MissingLength,
    /// The first part names a protocol other than SPNEGO session encryption.
    #[error("unsupported encryption protocol {0:?}")]
    UnsupportedProtocol(String),
    /// The second part is not `application/octet-stream`.
    #[error("missing octet-stream part")]
    MissingPayload,
    /// The payload is shorter than its lengths say.
    #[error("truncated payload")]
    Truncated,
}

/// One sealed message found in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPart<'a> {
    /// The NTLM signature (16 bytes for NTLM).
    pub signature: &'a [u8],
    /// The RC4-sealed SOAP bytes; as long as the original.
    pub sealed: &'a [u8],
}

/// Reads a boundary line (`--Encrypted Boundary` or `-- Encrypted Boundary`, optional
/// surrounding whitespace) at `pos`, returning the position after its CRLF and whether it
/// was the closing boundary (`...--`).
fn boundary_at(body: &[u8], pos: usize) -> Option<(usize, bool)> {
    let mut i = pos;
    // Tolerate stray CRLF between parts.
    while i < body.len() && (body[i] == b'\r' || body[i] == b'\n') {
        i += 1;
    }
    let rest = body.get(i..)?;
    let rest = rest.strip_prefix(b"--")?;
    let skipped = rest.len() - rest.trim_ascii_start().len();
    let rest = &rest[skipped..];
    let rest = rest.strip_prefix(b"Encrypted Boundary")?;
    let (rest, closing) = match rest.strip_prefix(b"--") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let consumed = body.len() - rest.len();
    let after = if rest.starts_with(b"\r\n") {
        consumed + 2
    } else if rest.starts_with(b"\n") {
        consumed + 1
    } else if rest.is_empty() && closing {
        consumed
    } else {
        return None;
    };
    Some((after, closing))
}

/// Reads one header line at `pos`: returns (line without CRLF, position after it).
fn line_at(body: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = body.get(pos..)?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, pos + end + 1))
}

fn header_value<'a>(line: &'a [u8], name: &str) -> Option<&'a str> {
    let line = std::str::from_utf8(line).ok()?.trim();
    let (k, v) = line.split_once(':')?;
    k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
}

/// Splits a multipart/encrypted body into its sealed messages.
pub fn parse(body: &[u8]) -> Result<Vec<SealedPart<'_>>, FramingError> {
    let mut parts = Vec::new();
    let mut pos = 0;
    loop {
        let (after, closing) = boundary_at(body, pos).ok_or(FramingError::MissingBoundary)?;
        if closing {
            break;
        }
        pos = after;
        // Part 1: headers until the next boundary.
        let mut length: Option<usize> = None;
        let mut protocol_ok = false;
        loop {
            if boundary_at(body, pos).is_some() {
                break;
            }
            let (line, next) = line_at(body, pos).ok_or(FramingError::MissingBoundary)?;
            if let Some(v) = header_value(line, "Content-Type") {
                if !v.eq_ignore_ascii_case(SPNEGO_PROTOCOL)
                    && !v.eq_ignore_ascii_case(KERBEROS_PROTOCOL)
                {
                    return Err(FramingError::UnsupportedProtocol(v.to_string()));
                }
                protocol_ok = true;
            }
            if let Some(v) = header_value(line, "OriginalContent") {
                length = v
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("Length="))
                    .and_then(|n| n.trim().parse().ok());
            }
            pos = next;
        }
        let length = length.ok_or(FramingError::MissingLength)?;
        if !protocol_ok {
            return Err(FramingError::UnsupportedProtocol(String::new()));
        }
        let (after, closing) = boundary_at(body, pos).ok_or(FramingError::MissingBoundary)?;
        if closing {
            return Err(FramingError::MissingPayload);
        }
        pos = after;
        // Part 2: one header line, then the binary payload.
        let (line, next) = line_at(body, pos).ok_or(FramingError::MissingPayload)?;
        match header_value(line, "Content-Type") {
            Some(v) if v.eq_ignore_ascii_case("application/octet-stream") => {}
            _ => return Err(FramingError::MissingPayload),
        }
        pos = next;
        let len_bytes = body.get(pos..pos + 4).ok_or(FramingError::Truncated)?;
        let sig_len =
            u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        pos += 4;
        let signature = body
            .get(pos..pos.checked_add(sig_len).ok_or(FramingError::Truncated)?)
            .ok_or(FramingError::Truncated)?;
        pos += sig_len;
        let sealed = body
            .get(pos..pos.checked_add(length).ok_or(FramingError::Truncated)?)
            .ok_or(FramingError::Truncated)?;
        pos += length;
        parts.push(SealedPart { signature, sealed });
    }
    if parts.is_empty() {
        return Err(FramingError::MissingPayload);
    }
    Ok(parts)
}

/// Writes one sealed message as Windows frames it.
pub fn build(original_len: usize, signature: &[u8], sealed: &[u8]) -> Vec<u8> {
    build_with(SPNEGO_PROTOCOL, original_len, signature, sealed)
}

/// Writes one sealed message of `protocol` (SPNEGO or Kerberos session encryption);
/// with Kerberos `signature` is the GSS wrap token's header.
pub fn build_with(protocol: &str, original_len: usize, signature: &[u8], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed.len() + signature.len() + 256);
    out.extend_from_slice(b"--Encrypted Boundary\r\n");
    out.extend_from_slice(b"\tContent-Type: ");
    out.extend_from_slice(protocol.as_bytes());
    out.extend_from_slice(b"\r\n");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let sig = [1u8; 16];
        let body = build(5, &sig, b"hello");
        let parts = parse(&body).unwrap();
        assert_eq!(
            parts,
            vec![SealedPart {
                signature: &sig,
                sealed: b"hello"
            }]
        );
    }

    #[test]
    fn lenient_without_tabs_and_with_a_spaced_boundary() {
        let mut body = Vec::new();
        body.extend_from_slice(b"-- Encrypted Boundary\r\nContent-Type: application/HTTP-SPNEGO-session-encrypted\r\nOriginalContent: type=application/soap+xml;charset=UTF-8;Length=3\r\n-- Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n");
        body.extend_from_slice(&16u32.to_le_bytes());
        body.extend_from_slice(&[9u8; 16]);
        // The sealed bytes may look like anything, even a boundary.
        body.extend_from_slice(b"--E");
        body.extend_from_slice(b"-- Encrypted Boundary--\r\n");
        let parts = parse(&body).unwrap();
        assert_eq!(parts[0].sealed, b"--E");
    }

    #[test]
    fn refuses_truncated_and_foreign_bodies() {
        let body = build(10, &[0u8; 16], b"short");
        assert!(parse(&body[..body.len() - 30]).is_err());
        assert!(parse(&body).is_err());
        assert_eq!(parse(b"<s:Envelope/>"), Err(FramingError::MissingBoundary));
        let credssp = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-CredSSP-session-encrypted\r\n";
        assert!(matches!(
            parse(credssp),
            Err(FramingError::UnsupportedProtocol(_))
        ));
    }
}
