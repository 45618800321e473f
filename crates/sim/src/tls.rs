//! TLS for the HTTPS listener: a throwaway CA and a `localhost`/`127.0.0.1` server
//! certificate signed by it, both generated at start, and the channel binding data
//! (RFC 5929 tls-server-end-point) that NTLM clients put in their AUTHENTICATE message.
//!
//! A separate CA (instead of one self-signed leaf) is what both OpenSSL (Python peers) and
//! webpki (reqwest) accept as a trust anchor without special flags.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::error::SimError;

/// What the HTTPS listener needs.
pub struct TlsMaterial {
    /// The rustls acceptor.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The CA certificate clients should trust, PEM.
    pub ca_pem: String,
    /// `tls-server-end-point:` followed by the SHA-256 of the server certificate (its
    /// signature is ECDSA with SHA-256, so RFC 5929 says SHA-256).
    pub channel_binding: Vec<u8>,
}

/// One self-issued certificate with CA:TRUE for `localhost` and `127.0.0.1`, served alone:
/// what `openssl req -x509` and many Windows listeners present. Clients that trust it
/// (`--ca-file` with this very certificate) meet a CA certificate used as an end entity.
pub fn generate_self_issued() -> Result<TlsMaterial, SimError> {
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.self_signed(&key)?;
    let der: CertificateDer<'static> = cert.der().clone();
    let mut channel_binding = b"tls-server-end-point:".to_vec();
    channel_binding.extend_from_slice(&Sha256::digest(der.as_ref()));
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![der], private)?;
    Ok(TlsMaterial {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_pem: cert.pem(),
        channel_binding,
    })
}

/// Generates the CA, the server certificate and the acceptor.
pub fn generate() -> Result<TlsMaterial, SimError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "exctl simulator CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

    let leaf_der: CertificateDer<'static> = leaf_cert.der().clone();
    let mut channel_binding = b"tls-server-end-point:".to_vec();
    channel_binding.extend_from_slice(&Sha256::digest(leaf_der.as_ref()));

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_der, ca_cert.der().clone()], key)?;
    Ok(TlsMaterial {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca_cert.pem(),
        channel_binding,
    })
}
