//! Errors of starting and running the simulator (not of the requests it serves: those are
//! HTTP statuses and SOAP faults sent to the client).

use std::net::SocketAddr;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The listen address is not loopback; tests must never touch the network.
    #[error("refusing to listen on {0}: the simulator binds loopback addresses only")]
    NotLoopback(SocketAddr),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate the TLS certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The Kerberos acceptor could not be set up (no keytab, no GSSAPI library).
    #[error("cannot accept Kerberos: {0}")]
    Kerberos(String),
    /// Building the TLS configuration failed.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}
