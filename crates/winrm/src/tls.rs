//! TLS for the HTTPS transport: which certificates are trusted, and the channel binding
//! token (RFC 5929 `tls-server-end-point`) that NTLM sends so that hosts with Extended
//! Protection set to Strict accept it.
//!
//! Verification is on by default against the system's roots, or only against a CA file
//! the caller names. Turning it off is an explicit option that the CLI announces loudly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;

use crate::error::Error;

/// Which server certificates are trusted.
#[derive(Debug, Clone, Default)]
pub enum TrustPolicy {
    /// The operating system's root certificates.
    #[default]
    SystemRoots,
    /// Only the CA certificates in this PEM file. A certificate of the file that the
    /// server presents itself (a self-issued one with CA:TRUE, as `openssl req -x509` and
    /// many Windows listeners make) is trusted for its names and validity, as curl and
    /// pywinrm do.
    CaFile(PathBuf),
    /// Exactly the certificates with these SHA-256 fingerprints (of their DER), whatever
    /// their issuer, names or dates: a pin.
    Pinned(Vec<[u8; 32]>),
    /// Any certificate. Only for labs; a man in the middle can read everything.
    InsecureSkipVerify,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for a policy.
pub(crate) fn client_config(policy: &TrustPolicy) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?;
    let config = match policy {
        TrustPolicy::SystemRoots => {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A single unreadable system certificate must not make HTTPS unusable.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(Error::Config(
                    "no system root certificates were found; pass the CA with --ca-file".into(),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TrustPolicy::CaFile(path) => {
            let (roots, certs) = load_ca_file(path)?;
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier {
                    check: Check::CaFile { webpki, certs },
                    provider,
                }))
                .with_no_client_auth()
        }
        TrustPolicy::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                check: Check::Pinned(pins.clone()),
                provider,
            }))
            .with_no_client_auth(),
        TrustPolicy::InsecureSkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                check: Check::Any,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

fn load_ca_file(
    path: &Path,
) -> Result<(rustls::RootCertStore, Vec<CertificateDer<'static>>), Error> {
    let mut roots = rustls::RootCertStore::empty();
    let mut certs = Vec::new();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Config(format!("cannot read the CA file {}: {e}", path.display())))?;
    for cert in iter {
        let cert = cert.map_err(|e| {
            Error::Config(format!(
                "the CA file {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
        certs.push(cert.clone());
        roots.add(cert).map_err(|e| {
            Error::Config(format!(
                "the CA file {} holds a certificate that cannot be used: {e}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::Config(format!(
            "the CA file {} contains no certificate",
            path.display()
        )));
    }
    Ok((roots, certs))
}

/// Reads `sha256:` followed by 64 hexadecimal digits (colons and spaces between them
/// allowed, as Windows and openssl print fingerprints).
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text
        .trim()
        .strip_prefix("sha256:")
        .or_else(|| text.trim().strip_prefix("SHA256:"))?
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The fingerprints ([`fingerprint`]) of the certificates of a PEM file.
pub fn pem_fingerprints(path: &Path) -> Result<Vec<String>, Error> {
    let (_, certs) = load_ca_file(path)?;
    Ok(certs.iter().map(|c| fingerprint(c.as_ref())).collect())
}

/// The SHA-256 fingerprint of a certificate, as `sha256:AB:CD:…`.
pub fn fingerprint(cert_der: &[u8]) -> String {
    let hex: Vec<String> = sha2::Sha256::digest(cert_der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("sha256:{}", hex.join(":"))
}

/// `notBefore` and `notAfter` of a DER certificate, in seconds since 1970.
fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    let (tag, start, _) = der_header(cert, 0)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut pos, _) = der_header(cert, start)?;
    if tag != 0x30 {
        return None;
    }
    let skip = |pos: usize| -> Option<usize> {
        let (_, s, l) = der_header(cert, pos)?;
        s.checked_add(l)
    };
    // [0] version (optional), serialNumber, signature, issuer, then validity.
    if cert.get(pos) == Some(&0xa0) {
        pos = skip(pos)?;
    }
    for _ in 0..3 {
        pos = skip(pos)?;
    }
    let (tag, vstart, _) = der_header(cert, pos)?;
    if tag != 0x30 {
        return None;
    }
    let time = |pos: usize| -> Option<(u64, usize)> {
        let (tag, s, l) = der_header(cert, pos)?;
        let text = std::str::from_utf8(cert.get(s..s.checked_add(l)?)?).ok()?;
        let text = text.strip_suffix('Z')?;
        let (year, rest) = match tag {
            // UTCTime: YYMMDDHHMMSS, years 1950..2049 (RFC 5280).
            0x17 => {
                let yy: i64 = text.get(0..2)?.parse().ok()?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
            }
            // GeneralizedTime: YYYYMMDDHHMMSS.
            0x18 => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
            _ => return None,
        };
        let n = |a: usize| -> Option<i64> { rest.get(a..a + 2)?.parse().ok() };
        let (m, d, hh, mm, ss) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
        let days = days_from_civil(year, m, d);
        let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
        Some((u64::try_from(secs).unwrap_or(0), s.checked_add(l)?))
    };
    let (from, next) = time(vstart)?;
    let (until, _) = time(next)?;
    Some((from, until))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a [`Verifier`] checks of the server's certificate.
#[derive(Debug)]
enum Check {
    /// Nothing (`--insecure-skip-verify`).
    Any,
    /// The usual chain to the CA file's certificates; and a certificate of the file
    /// presented as it is (self-issued with CA:TRUE, which WebPKI refuses as an end
    /// entity) for its names and dates.
    CaFile {
        webpki: Arc<rustls::client::WebPkiServerVerifier>,
        certs: Vec<CertificateDer<'static>>,
    },
    /// The certificate is one of these (SHA-256 of the DER); nothing else.
    Pinned(Vec<[u8; 32]>),
}

/// The verifiers that are not rustls' own: whatever [`Check`] says of the certificate,
/// the handshake signatures are always checked, so the connection is bound to the key
/// the server presented.
#[derive(Debug)]
struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            Check::Any => Ok(ServerCertVerified::assertion()),
            Check::Pinned(pins) => {
                let got: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
                if pins.contains(&got) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "the certificate's fingerprint {} is not the pinned one",
                        fingerprint(end_entity.as_ref())
                    )))
                }
            }
            Check::CaFile { webpki, certs } => {
                match webpki.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    Ok(v) => Ok(v),
                    Err(e) if certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) => {
                        self_issued(end_entity, server_name, now).ok_or(e)?
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The very certificate the operator trusts, presented as it is: still its names and
/// dates. `None` when it cannot be read (the chain check's error then stands).
fn self_issued(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Option<Result<ServerCertVerified, rustls::Error>> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    if parsed
        .verify_is_valid_for_subject_name(server_name)
        .is_err()
    {
        return Some(Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        )));
    }
    let (from, until) = validity(cert.as_ref())?;
    let now = now.as_secs();
    Some(if now < from {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidYet,
        ))
    } else if now > until {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ))
    } else {
        Ok(ServerCertVerified::assertion())
    })
}

/// The hash a certificate's signature algorithm names, as RFC 5929 section 4.1 uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

/// The application data of the channel bindings for a server certificate:
/// `tls-server-end-point:` followed by the certificate's hash. MD5 and SHA-1 signatures
/// use SHA-256 (RFC 5929), as do algorithms we cannot read.
pub fn tls_server_end_point(cert_der: &[u8]) -> Vec<u8> {
    let hash = match signature_hash(cert_der) {
        Some(h) => h,
        None => EndPointHash::Sha256,
    };
    let digest: Vec<u8> = match hash {
        EndPointHash::Sha256 => sha2::Sha256::digest(cert_der).to_vec(),
        EndPointHash::Sha384 => sha2::Sha384::digest(cert_der).to_vec(),
        EndPointHash::Sha512 => sha2::Sha512::digest(cert_der).to_vec(),
    };
    let mut out = b"tls-server-end-point:".to_vec();
    out.extend_from_slice(&digest);
    out
}

/// Reads a DER header at `pos`: (tag, content start, content length).
fn der_header(b: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *b.get(pos)?;
    let first = *b.get(pos + 1)? as usize;
    if first < 0x80 {
        return Some((tag, pos + 2, first));
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *b.get(pos + 2 + i)? as usize;
    }
    Some((tag, pos + 2 + n, len))
}

/// The hash of `Certificate.signatureAlgorithm`, by OID.
fn signature_hash(cert: &[u8]) -> Option<EndPointHash> {
    let (tag, start, _) = der_header(cert, 0)?;
    if tag != 0x30 {
        return None;
    }
    // Skip tbsCertificate.
    let (tag, tbs_start, tbs_len) = der_header(cert, start)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg_start, _) = der_header(cert, tbs_start.checked_add(tbs_len)?)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid_start, oid_len) = der_header(cert, alg_start)?;
    if tag != 0x06 {
        return None;
    }
    let oid = cert.get(oid_start..oid_start.checked_add(oid_len)?)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    if let Some(last) = oid.strip_prefix(RSA) {
        return Some(match last {
            [0x0c] => EndPointHash::Sha384,
            [0x0d] => EndPointHash::Sha512,
            _ => EndPointHash::Sha256,
        });
    }
    if let Some(last) = oid.strip_prefix(ECDSA) {
        return Some(match last {
            [0x03] => EndPointHash::Sha384,
            [0x04] => EndPointHash::Sha512,
            _ => EndPointHash::Sha256,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal DER certificate skeleton with the given signature OID.
    fn fake_cert(oid: &[u8]) -> Vec<u8> {
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x01];
        let mut alg = vec![0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        let mut alg_seq = vec![0x30, alg.len() as u8];
        alg_seq.extend_from_slice(&alg);
        let sig = [0x03, 0x01, 0x00];
        let mut body = Vec::new();
        body.extend_from_slice(&tbs);
        body.extend_from_slice(&alg_seq);
        body.extend_from_slice(&sig);
        let mut cert = vec![0x30, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn picks_the_hash_of_the_signature_algorithm() {
        let sha384_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
        let sha1_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let ecdsa512 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
        assert_eq!(
            signature_hash(&fake_cert(&sha384_rsa)),
            Some(EndPointHash::Sha384)
        );
        assert_eq!(
            signature_hash(&fake_cert(&sha1_rsa)),
            Some(EndPointHash::Sha256)
        );
        assert_eq!(
            signature_hash(&fake_cert(&ecdsa512)),
            Some(EndPointHash::Sha512)
        );
        let cbt = tls_server_end_point(&fake_cert(&sha384_rsa));
        assert_eq!(cbt.len(), "tls-server-end-point:".len() + 48);
    }

    #[test]
    fn garbage_falls_back_to_sha256_without_panicking() {
        for b in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x02, 0x30, 0x7f],
        ] {
            let cbt = tls_server_end_point(b);
            assert_eq!(cbt.len(), "tls-server-end-point:".len() + 32);
        }
    }
}
