//! The HTTP transport: one keep-alive connection per client, authentication, and
//! message encryption.
//!
//! The client owns its one TCP (or TLS) connection and speaks HTTP/1.1 on it directly
//! (hyper's connection-level API), because NTLM binds the security context to the
//! connection: the two legs of the handshake and every sealed message after it must go
//! over the same one. A pooling HTTP client cannot promise that: between two requests it
//! may open a new connection while the previous one is not yet back in its pool, and the
//! server then refuses the second leg (seen as intermittent 401s under load). When the
//! connection closes (the server's keep-alive limit, `Connection: close`, a reset), the
//! next request opens a new one and authenticates on it first.
//!
//! Requests go out one at a time (a lock serialises them). When the server answers 401 to
//! a request on an established context (it forgot us), the client authenticates again and
//! sends that request once more: a 401 means the server did not act on it, so repeating it
//! is safe. A request that was cut off mid-flight leaves the connection and its context
//! unusable (sequence numbers no longer agree), so the next request starts afresh.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use exctl_gssapi::{Credential, GssError, Kind, Mech, SecurityContext};
use exctl_ntlm::{Initiator, InitiatorConfig, Session};
use exctl_secret::Secret;
use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderValue,
    USER_AGENT, WWW_AUTHENTICATE,
};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::error::Error;
use crate::framing;
use crate::tls::{self, TrustPolicy};

const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";
/// The smallest keystream worth generating on another thread while a request is out
/// (below it the hand-over costs about what it saves).
const MIN_PREFETCH: usize = 32 * 1024;

/// How the client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// NTLM through the `Negotiate` scheme, with message encryption over HTTP.
    #[default]
    Ntlm,
    /// HTTP Basic; allowed over HTTPS only unless explicitly opted in.
    Basic,
    /// Kerberos through the system's GSSAPI, with the operator's ticket (or one obtained
    /// in memory from the password), mutual authentication, and message encryption over
    /// HTTP; see [`KerberosScheme`] for the HTTP scheme.
    Kerberos,
    /// Kerberos when the server and the KDC can do it, else NTLM with the password (as
    /// Windows' Negotiate). An endpoint given as an address goes straight to NTLM.
    Negotiate,
}

impl AuthMethod {
    fn name(self) -> &'static str {
        match self {
            AuthMethod::Ntlm => "NTLM",
            AuthMethod::Basic => "Basic",
            AuthMethod::Kerberos => "Kerberos",
            AuthMethod::Negotiate => "Negotiate",
        }
    }
}

/// The HTTP scheme that carries Kerberos. Windows accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KerberosScheme {
    /// `Negotiate` (SPNEGO restricted to Kerberos), switching to `Kerberos` when the
    /// server offers only that.
    #[default]
    Auto,
    /// `Negotiate` only.
    Negotiate,
    /// `Kerberos` only (raw Kerberos tokens).
    Kerberos,
}

impl KerberosScheme {
    fn http_name(self) -> &'static str {
        match self {
            KerberosScheme::Kerberos => "Kerberos",
            _ => "Negotiate",
        }
    }

    fn mech(self) -> Mech {
        match self {
            KerberosScheme::Kerberos => Mech::Kerberos,
            _ => Mech::Spnego,
        }
    }

    /// The MIME protocol of message encryption under this scheme.
    fn protocol(self) -> &'static str {
        match self {
            KerberosScheme::Kerberos => framing::KERBEROS_PROTOCOL,
            _ => framing::SPNEGO_PROTOCOL,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            KerberosScheme::Kerberos => framing::KERBEROS_CONTENT_TYPE,
            _ => framing::CONTENT_TYPE,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `http://host:5985/wsman` or `https://host:5986/wsman`.
    pub endpoint: String,
    /// The authentication method.
    pub auth: AuthMethod,
    /// `DOMAIN\user`, `user@domain` or a local `user`.
    pub user: String,
    /// The password. With Kerberos an empty password means the operator's ticket cache.
    pub password: Secret,
    /// Kerberos: the service principal (`HTTP/host`); `None` derives it from the
    /// endpoint's host.
    pub spn: Option<String>,
    /// Kerberos: the HTTP scheme.
    pub kerberos_scheme: KerberosScheme,
    /// Which TLS certificates to trust.
    pub trust: TrustPolicy,
    /// Allow Basic over plain HTTP (sends the password in the clear).
    pub allow_basic_over_http: bool,
    /// How long to wait for the TCP connection.
    pub connect_timeout: Duration,
    /// How long to wait for a response; must exceed the OperationTimeout.
    pub read_timeout: Duration,
    /// The largest response body accepted, in bytes (framing included).
    pub max_response_bytes: usize,
    /// The server's MaxEnvelopeSizekb as the client assumes it, for messages about 413.
    pub server_max_envelope_kb: usize,
}

/// The connection and what is bound to it.
#[derive(Default)]
struct AuthState {
    /// The open connection, if any.
    conn: Option<Conn>,
    /// A request was started and not finished: the connection can no longer be trusted.
    in_flight: bool,
}

/// One HTTP/1.1 connection, with the NTLM context established on it.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// The server's certificate (DER), over HTTPS: the channel binding of NTLM.
    peer_cert: Option<Vec<u8>>,
    /// The NTLM context, once the handshake on this connection succeeded.
    ntlm: Option<NtlmContext>,
    /// The Kerberos context, once the handshake on this connection succeeded.
    krb: Option<KrbContext>,
    /// The connection closed before a request could be written on it: that request was
    /// not sent, and the next attempt needs a new connection.
    dead: bool,
    /// The server said `Connection: close`: the next request needs a new connection.
    closing: bool,
}

struct NtlmContext {
    /// The sealing session over HTTP; over HTTPS TLS protects the traffic, no sealing.
    session: Option<Session>,
}

struct KrbContext {
    /// The established context; it seals over HTTP, over HTTPS TLS protects the traffic.
    ctx: Box<dyn SecurityContext>,
    /// The scheme it was established with, which names the encryption protocol.
    scheme: KerberosScheme,
}

/// A whole response: status, headers and body (bounded by the response limit).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The body and status of a response the caller should read as SOAP.
#[derive(Debug)]
pub(crate) struct SoapResponse {
    pub status: u16,
    pub body: String,
}

/// A failed [`Transport::send`]: the error, and whether the request itself (not only an
/// authentication leg before it) may have reached the server. The client decides from it
/// whether a request that changes state may have taken effect.
#[derive(Debug)]
pub(crate) struct SendError {
    pub error: Error,
    pub payload_sent: bool,
}

impl SendError {
    /// Whether the server may have acted on the request: it was sent, and what came back
    /// (if anything) does not prove that it was refused.
    pub(crate) fn outcome_unknown(&self) -> bool {
        self.payload_sent
            && match &self.error {
                Error::ConnectionLost { .. }
                | Error::Timeout { .. }
                | Error::Encryption(_)
                | Error::Protocol { .. }
                | Error::Ntlm(_) => true,
                // A 5xx without a SOAP fault may come from a proxy after the server acted;
                // a 4xx says the request was refused as it stood.
                Error::Http { status, .. } => *status >= 500,
                _ => false,
            }
    }
}

pub(crate) struct Transport {
    config: TransportConfig,
    https: bool,
    /// Host and port to connect to (an IPv6 address without brackets).
    host: String,
    port: u16,
    /// The `Host` header: the endpoint's authority as written.
    authority: String,
    /// The request target: the endpoint's path and query.
    target: String,
    tls: Option<tokio_rustls::TlsConnector>,
    state: Mutex<AuthState>,
    /// Kerberos: the service principal.
    spn: String,
    /// Kerberos: the credential, acquired once per mechanism (a password costs the KDC
    /// one AS exchange, not one per connection).
    krb_cred: std::sync::Mutex<Option<(Mech, Arc<Credential>)>>,
    /// Negotiate: Kerberos could not be used, NTLM is.
    ntlm_fallback: std::sync::atomic::AtomicBool,
}

fn split_user(user: &str) -> (String, String) {
    if let Some((d, u)) = user.split_once('\\') {
        (d.to_string(), u.to_string())
    } else if let Some((u, d)) = user.split_once('@') {
        // UPN form: NTLM accepts it with an empty domain and the whole UPN as user name.
        let _ = d;
        (String::new(), format!("{u}@{d}"))
    } else {
        (String::new(), user.to_string())
    }
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Result<Self, Error> {
        let uri: Uri = config.endpoint.parse().map_err(|e| {
            Error::Config(format!(
                "the endpoint '{}' is not a URL: {e}",
                config.endpoint
            ))
        })?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            other => {
                return Err(Error::Config(format!(
                    "the endpoint scheme must be http or https, not '{}'",
                    other.unwrap_or_default()
                )));
            }
        };
        let Some(authority) = uri.authority() else {
            return Err(Error::Config(format!(
                "the endpoint '{}' has no host",
                config.endpoint
            )));
        };
        if authority.as_str().contains('@') {
            return Err(Error::Config(
                "the endpoint URL must not contain credentials; pass --user and the password separately".into(),
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(Error::Config(format!(
                "the endpoint '{}' has no host",
                config.endpoint
            )));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        if config.auth == AuthMethod::Basic && !https && !config.allow_basic_over_http {
            return Err(Error::InsecureBasic {
                endpoint: config.endpoint.clone(),
            });
        }
        if config.user.is_empty() && config.auth != AuthMethod::Kerberos {
            return Err(Error::Config("no user name given".into()));
        }
        // Negotiate to an address without an SPN: NTLM from the start, as Windows does.
        let ntlm_fallback = config.auth == AuthMethod::Negotiate
            && config.spn.as_deref().is_none_or(|s| s.trim().is_empty())
            && host.parse::<std::net::IpAddr>().is_ok();
        let spn = match (&config.spn, config.auth) {
            (Some(spn), _) if !spn.trim().is_empty() => spn.trim().to_string(),
            (_, AuthMethod::Kerberos) if host.parse::<std::net::IpAddr>().is_ok() => {
                // A ticket is issued for a service principal name, and an address is not
                // one: Windows clients fall back to NTLM here, silently; we say so.
                return Err(Error::Config(format!(
                    "Kerberos needs the server's name, not the address {host}: tickets are issued for service principals like HTTP/ex01.contoso.local\nhint: use the host name in the endpoint, or set spn: HTTP/<name> in the inventory (--spn on the command line)"
                )));
            }
            _ => format!("HTTP/{host}"),
        };
        let tls = if https {
            let mut tls_config = tls::client_config(&config.trust)?;
            tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsConnector::from(Arc::new(tls_config)))
        } else {
            None
        };
        Ok(Transport {
            https,
            host,
            port,
            authority: authority.as_str().to_string(),
            target,
            tls,
            config,
            state: Mutex::new(AuthState::default()),
            spn,
            krb_cred: std::sync::Mutex::new(None),
            ntlm_fallback: std::sync::atomic::AtomicBool::new(ntlm_fallback),
        })
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.config.endpoint
    }

    /// Sends one SOAP request and returns the SOAP response (decrypted when sealed).
    pub(crate) async fn send(
        &self,
        action: &'static str,
        xml: &str,
        timeout: Duration,
    ) -> Result<SoapResponse, SendError> {
        let mut state = self.state.lock().await;
        if state.in_flight {
            // The previous request was abandoned mid-way: start over on a new connection.
            state.conn = None;
        }
        state.in_flight = true;
        let mut payload_sent = false;
        let result = self
            .send_locked(&mut state, action, xml, timeout, &mut payload_sent)
            .await;
        state.in_flight = false;
        if result.is_err() {
            // After any failure the connection is suspect: a response may be half read
            // or still on its way, or (when it failed verification) the inbound RC4
            // stream is out of step or was replayed. A new connection and context cost a
            // handshake; reusing a broken one could misread the next answer.
            state.conn = None;
        }
        result.map_err(|error| SendError {
            // A connection that could not be made carried nothing.
            payload_sent: payload_sent
                && !matches!(error, Error::Connect { .. } | Error::Tls { .. }),
            error,
        })
    }

    /// Sends on the current connection; when it turns out to have closed before the
    /// request left (an idle keep-alive connection the server dropped), sends again on a
    /// new one, authenticating afresh.
    async fn send_locked(
        &self,
        state: &mut AuthState,
        action: &'static str,
        xml: &str,
        timeout: Duration,
        payload_sent: &mut bool,
    ) -> Result<SoapResponse, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .send_once(state, action, xml, timeout, payload_sent)
                .await;
            if result.is_err() && state.conn.as_ref().is_some_and(|c| c.dead) {
                state.conn = None;
                *payload_sent = false;
                if attempt < 3 {
                    continue;
                }
            }
            return result;
        }
    }

    async fn send_once(
        &self,
        state: &mut AuthState,
        action: &'static str,
        xml: &str,
        timeout: Duration,
        payload_sent: &mut bool,
    ) -> Result<SoapResponse, Error> {
        match self.config.auth {
            AuthMethod::Basic => {
                let token = B64.encode(format!(
                    "{}:{}",
                    self.config.user,
                    self.config.password.expose()
                ));
                let conn = self.connection(state, action).await?;
                *payload_sent = true;
                let reply = self
                    .exchange(
                        conn,
                        Some(format!("Basic {token}")),
                        SOAP_CONTENT_TYPE,
                        xml.as_bytes().to_vec(),
                        action,
                        timeout,
                    )
                    .await?;
                if reply.status == StatusCode::UNAUTHORIZED {
                    return Err(self.unauthorized(&reply.headers));
                }
                self.read_plain(reply)
            }
            AuthMethod::Kerberos => {
                self.send_kerberos(state, action, xml, timeout, payload_sent)
                    .await
            }
            AuthMethod::Ntlm => {
                self.send_ntlm(state, action, xml, timeout, payload_sent)
                    .await
            }
            AuthMethod::Negotiate => {
                // Kerberos first; NTLM when the server or the KDC cannot do Kerberos (and
                // there is a password to do NTLM with), as Windows' Negotiate does. The
                // choice is kept for the client's life.
                if !self
                    .ntlm_fallback
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    match self
                        .send_kerberos(state, action, xml, timeout, payload_sent)
                        .await
                    {
                        Err(Error::Kerberos { .. })
                            if !*payload_sent && !self.config.password.expose().is_empty() =>
                        {
                            self.ntlm_fallback
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                            // The connection saw a refused handshake: start NTLM afresh.
                            state.conn = None;
                        }
                        other => return other,
                    }
                }
                self.send_ntlm(state, action, xml, timeout, payload_sent)
                    .await
            }
        }
    }

    /// One request with Kerberos: authenticates the connection first when needed.
    async fn send_kerberos(
        &self,
        state: &mut AuthState,
        action: &'static str,
        xml: &str,
        timeout: Duration,
        payload_sent: &mut bool,
    ) -> Result<SoapResponse, Error> {
        // One retry: a 401 on an established context means the server forgot us.
        for attempt in 0..2 {
            let conn = self.connection(state, action).await?;
            if conn.krb.is_none() {
                let context = self.kerberos_handshake(conn, action, timeout).await?;
                conn.krb = Some(context);
            }
            let Some(krb) = conn.krb.as_mut() else {
                return Err(Error::Protocol {
                    what: "the Kerberos context vanished".into(),
                });
            };
            let (content_type, body) = if self.https {
                (SOAP_CONTENT_TYPE, xml.as_bytes().to_vec())
            } else {
                let (header, data) = krb
                    .ctx
                    .wrap_winrm(xml.as_bytes())
                    .map_err(|e| Error::Encryption(e.to_string()))?;
                (
                    krb.scheme.content_type(),
                    framing::encode_with(krb.scheme.protocol(), &header, &data, xml.len()),
                )
            };
            *payload_sent = true;
            let reply = self
                .exchange(conn, None, content_type, body, action, timeout)
                .await?;
            if reply.status == StatusCode::UNAUTHORIZED {
                // A 401 means the server did not act on the request.
                *payload_sent = false;
                conn.krb = None;
                if attempt == 0 {
                    continue;
                }
                return Err(self.unauthorized(&reply.headers));
            }
            return match (self.https, conn.krb.as_mut()) {
                (false, Some(krb)) => self.read_krb_sealed(reply, krb),
                _ => self.read_plain(reply),
            };
        }
        Err(Error::Unauthorized {
            user: self.config.user.clone(),
            scheme: "Kerberos",
            offered: String::new(),
        })
    }

    /// One request with NTLM: authenticates the connection first when needed.
    async fn send_ntlm(
        &self,
        state: &mut AuthState,
        action: &'static str,
        xml: &str,
        timeout: Duration,
        payload_sent: &mut bool,
    ) -> Result<SoapResponse, Error> {
        // One retry: a 401 on an established context means the server forgot us.
        for attempt in 0..2 {
            let conn = self.connection(state, action).await?;
            if conn.ntlm.is_none() {
                let context = self.ntlm_handshake(conn, action, timeout).await?;
                conn.ntlm = Some(context);
            }
            let mut prefetch = None;
            let (content_type, body) = match conn.ntlm.as_mut().and_then(|c| c.session.as_mut()) {
                Some(session) => {
                    let (signature, sealed) = session.seal(xml.as_bytes());
                    prefetch = Some(session.prefetch_inbound());
                    (framing::CONTENT_TYPE, framing::encode(&signature, &sealed))
                }
                None => (SOAP_CONTENT_TYPE, xml.as_bytes().to_vec()),
            };
            // While the server works on the answer, generate the keystream that
            // will decrypt it (a guess: as long as the last answer). Not worth a
            // thread for small answers.
            let prefetch = prefetch
                .filter(|p| p.len() >= MIN_PREFETCH)
                .map(|p| tokio::task::spawn_blocking(move || p.run()));
            *payload_sent = true;
            let reply = self
                .exchange(conn, None, content_type, body, action, timeout)
                .await?;
            if let Some(job) = prefetch {
                // Unsealing would wait for it anyway; awaiting does not block.
                let _ = job.await;
            }
            if reply.status == StatusCode::UNAUTHORIZED {
                // A 401 means the server did not act on the request.
                *payload_sent = false;
                conn.ntlm = None;
                if attempt == 0 {
                    continue;
                }
                return Err(self.unauthorized(&reply.headers));
            }
            let session = conn.ntlm.as_mut().and_then(|c| c.session.as_mut());
            return match session {
                Some(session) => self.read_sealed(reply, session),
                None => self.read_plain(reply),
            };
        }
        Err(Error::Unauthorized {
            user: self.config.user.clone(),
            scheme: "NTLM",
            offered: String::new(),
        })
    }

    /// The open connection, or a new one when there is none or the server closed it (a
    /// new connection has no NTLM context).
    async fn connection<'s>(
        &self,
        state: &'s mut AuthState,
        action: &'static str,
    ) -> Result<&'s mut Conn, Error> {
        if let Some(conn) = state.conn.as_mut() {
            // Waits until the connection can take a request, or says it cannot.
            if !conn.closing && !conn.sender.is_closed() && conn.sender.ready().await.is_ok() {
                return state.conn.as_mut().ok_or_else(|| Error::Protocol {
                    what: "the connection vanished".into(),
                });
            }
        }
        state.conn = None;
        let conn = self.connect(action).await?;
        Ok(state.conn.insert(conn))
    }

    async fn connect(&self, action: &'static str) -> Result<Conn, Error> {
        let endpoint = || self.config.endpoint.clone();
        let limit = self.config.connect_timeout;
        let tcp = tokio::time::timeout(limit, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| Error::Connect {
                endpoint: endpoint(),
                reason: format!("no connection within {limit:?}"),
            })?
            .map_err(|e| Error::Connect {
                endpoint: endpoint(),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let (sender, peer_cert) = match &self.tls {
            Some(connector) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                    Error::Config(format!("'{}' is not a host name: {e}", self.host))
                })?;
                let stream = tokio::time::timeout(limit, connector.connect(name, tcp))
                    .await
                    .map_err(|_| Error::Tls {
                        endpoint: endpoint(),
                        reason: format!("no TLS handshake within {limit:?}"),
                    })?
                    .map_err(|e| {
                        let reason = error_chain(&e);
                        if is_tls_error(&e) || reason.contains("peer certificate") {
                            Error::Tls {
                                endpoint: endpoint(),
                                reason: explain_tls(reason),
                            }
                        } else {
                            Error::ConnectionLost {
                                endpoint: endpoint(),
                                action,
                                reason,
                            }
                        }
                    })?;
                let peer_cert = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                (
                    self.handshake(TokioIo::new(stream), action).await?,
                    peer_cert,
                )
            }
            None => (self.handshake(TokioIo::new(tcp), action).await?, None),
        };
        Ok(Conn {
            sender,
            peer_cert,
            ntlm: None,
            krb: None,
            dead: false,
            closing: false,
        })
    }

    async fn handshake<IO>(
        &self,
        io: IO,
        action: &'static str,
    ) -> Result<SendRequest<Full<Bytes>>, Error>
    where
        IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| Error::ConnectionLost {
                    endpoint: self.config.endpoint.clone(),
                    action,
                    reason: error_chain(&e),
                })?;
        // The connection's I/O runs in its own task until either side closes it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// One request and its whole response on `conn`, within `timeout`.
    async fn exchange(
        &self,
        conn: &mut Conn,
        authorization: Option<String>,
        content_type: &'static str,
        body: Vec<u8>,
        action: &'static str,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let lost = |e: &(dyn std::error::Error + 'static)| Error::ConnectionLost {
            endpoint: self.config.endpoint.clone(),
            action,
            reason: error_chain(e),
        };
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri(self.target.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONNECTION, "Keep-Alive")
            // Exchange's IIS endpoint compresses when asked; we never ask.
            .header("Accept-Encoding", "identity")
            .header(USER_AGENT, concat!("exctl/", env!("CARGO_PKG_VERSION")))
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, body.len());
        if let Some(a) = authorization {
            let mut value = HeaderValue::from_str(&a)
                .map_err(|_| Error::Config("the credentials cannot be sent in a header".into()))?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Config(format!("cannot build the request: {e}")))?;
        let limit = self.config.max_response_bytes;
        let work = async {
            // try_send_request hands the request back when the connection closed before
            // it was written: then nothing reached the server and it is safe to resend.
            // hyper takes a request only once the connection has asked for one (right
            // after a response it may not have yet): wait for that, or for the close.
            if let Err(e) = conn.sender.ready().await {
                conn.dead = true;
                return Err(lost(&e));
            }
            let resp = match conn.sender.try_send_request(req).await {
                Ok(r) => r,
                Err(mut e) => {
                    if e.take_message().is_some() {
                        conn.dead = true;
                    }
                    return Err(lost(e.error()));
                }
            };
            let (parts, mut incoming) = resp.into_parts();
            if parts
                .headers
                .get_all(CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            {
                conn.closing = true;
            }
            let announced = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(len) = announced
                && len > limit as u64
            {
                return Err(Error::Protocol {
                    what: format!(
                        "the response announces {len} bytes, more than the {limit} bytes allowed"
                    ),
                });
            }
            let mut body = Vec::new();
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(|e| lost(&e))?;
                if let Ok(data) = frame.into_data() {
                    if body.len() + data.len() > limit {
                        return Err(Error::Protocol {
                            what: format!("the response is larger than the {limit} bytes allowed"),
                        });
                    }
                    body.extend_from_slice(&data);
                }
            }
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let reply = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                endpoint: self.config.endpoint.clone(),
                action,
                after: timeout,
            }),
        };
        if reply.is_err() {
            // Whatever is left of that exchange must not be read as the next response.
            conn.ntlm = None;
            conn.krb = None;
        }
        reply
    }

    async fn ntlm_handshake(
        &self,
        conn: &mut Conn,
        action: &'static str,
        timeout: Duration,
    ) -> Result<NtlmContext, Error> {
        let (domain, user) = split_user(&self.config.user);
        let mut initiator = Initiator::new(InitiatorConfig {
            domain,
            user,
            password: self.config.password.clone(),
            workstation: None,
            channel_bindings: None,
            target_spn: None,
        });
        let type1 = initiator.negotiate_message();
        let reply = self
            .exchange(
                conn,
                Some(format!("Negotiate {}", B64.encode(&type1))),
                SOAP_CONTENT_TYPE,
                Vec::new(),
                action,
                timeout,
            )
            .await?;
        if reply.status != StatusCode::UNAUTHORIZED {
            return Err(Error::Http {
                status: reply.status.as_u16(),
                detail: ": the server did not answer the NTLM negotiation with a challenge".into(),
            });
        }
        let challenge =
            negotiate_token(&reply.headers).ok_or_else(|| self.unauthorized(&reply.headers))?;
        if conn.closing {
            // The answer to the challenge would arrive on another connection, where the
            // server knows nothing of it.
            return Err(Error::Protocol {
                what: "the server closed the connection after the NTLM challenge; NTLM needs the handshake and the requests on one kept-alive connection (is a proxy in between?)".into(),
            });
        }
        if let Some(cert) = &conn.peer_cert {
            // Extended Protection: bind the authentication to this TLS channel.
            initiator.set_channel_bindings(Some(tls::tls_server_end_point(cert)));
        }
        let type3 = initiator.authenticate_message(&challenge)?;
        let reply = self
            .exchange(
                conn,
                Some(format!("Negotiate {}", B64.encode(&type3))),
                SOAP_CONTENT_TYPE,
                Vec::new(),
                action,
                timeout,
            )
            .await?;
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(&reply.headers));
        }
        if !reply.status.is_success() {
            return Err(Error::Http {
                status: reply.status.as_u16(),
                detail: ": the NTLM authentication was not completed".into(),
            });
        }
        let session = initiator.into_session()?;
        Ok(NtlmContext {
            session: if self.https { None } else { Some(session) },
        })
    }

    /// The Kerberos credential for `mech`: a ticket from the password when one is given
    /// (kept in memory by the library), else the operator's cache. Acquiring may ask the
    /// KDC, so it runs off the async threads.
    async fn kerberos_credential(&self, mech: Mech) -> Result<Arc<Credential>, Error> {
        if let Ok(slot) = self.krb_cred.lock()
            && let Some((m, cred)) = slot.as_ref()
            && *m == mech
        {
            return Ok(cred.clone());
        }
        let user = (!self.config.user.is_empty()).then(|| self.config.user.clone());
        let password = self.config.password.clone();
        let user_for_call = user.clone();
        let cred = tokio::task::spawn_blocking(move || {
            let pw = password.expose();
            Credential::initiator(
                user_for_call.as_deref(),
                (!pw.is_empty()).then_some(pw),
                mech,
            )
        })
        .await
        .map_err(|e| Error::Protocol {
            what: format!("the Kerberos credential lookup stopped: {e}"),
        })?
        .map_err(|e| self.kerberos_error(e, !self.config.password.expose().is_empty()))?;
        let cred = Arc::new(cred);
        if let Ok(mut slot) = self.krb_cred.lock() {
            *slot = Some((mech, cred.clone()));
        }
        Ok(cred)
    }

    /// Authenticates the connection with Kerberos: the client's token in an empty POST,
    /// then the server's answer token, which must prove the server knows the service's
    /// key (mutual authentication): a 200 without it is refused.
    async fn kerberos_handshake(
        &self,
        conn: &mut Conn,
        action: &'static str,
        timeout: Duration,
    ) -> Result<KrbContext, Error> {
        let mut scheme = match self.config.kerberos_scheme {
            KerberosScheme::Auto => KerberosScheme::Negotiate,
            other => other,
        };
        let mut switched = false;
        'scheme: loop {
            let credential = self.kerberos_credential(scheme.mech()).await?;
            let bindings = conn.peer_cert.as_deref().map(tls::tls_server_end_point);
            let mut ctx: Box<dyn SecurityContext> = Box::new(
                exctl_gssapi::Initiator::new(exctl_gssapi::InitiatorConfig {
                    target: self.spn.clone(),
                    mech: scheme.mech(),
                    credential,
                    channel_bindings: bindings,
                })
                .map_err(|e| self.kerberos_error(e, false))?,
            );
            let mut input: Option<Vec<u8>> = None;
            // SPNEGO may take more than one round; Kerberos takes one.
            for _ in 0..4 {
                // The first step asks the KDC for a service ticket: off the async threads.
                let (back, step) = tokio::task::spawn_blocking(move || {
                    let step = ctx.step(input.as_deref());
                    (ctx, step)
                })
                .await
                .map_err(|e| Error::Protocol {
                    what: format!("the Kerberos handshake stopped: {e}"),
                })?;
                ctx = back;
                let step = step.map_err(|e| self.kerberos_error(e, false))?;
                let reply = self
                    .exchange(
                        conn,
                        Some(format!(
                            "{} {}",
                            scheme.http_name(),
                            B64.encode(&step.token)
                        )),
                        SOAP_CONTENT_TYPE,
                        Vec::new(),
                        action,
                        timeout,
                    )
                    .await?;
                let token = scheme_token(&reply.headers, scheme.http_name());
                if reply.status == StatusCode::UNAUTHORIZED {
                    let offered = offered_schemes(&reply.headers);
                    let offers = |name: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(name));
                    if token.is_some() && !ctx.is_complete() {
                        input = token;
                        continue;
                    }
                    if self.config.kerberos_scheme == KerberosScheme::Auto
                        && !switched
                        && !offers(scheme.http_name())
                        && offers("Kerberos")
                    {
                        // The server offers the Kerberos scheme only: speak that.
                        switched = true;
                        scheme = KerberosScheme::Kerberos;
                        continue 'scheme;
                    }
                    if !offers("Negotiate") && !offers("Kerberos") {
                        return Err(Error::Kerberos {
                            kind: Kind::Other,
                            message: format!(
                                "{} does not offer Kerberos (it offers {})\nhint: enable it on the host ('winrm set winrm/config/service/auth @{{Kerberos=\"true\"}}'), or use auth: ntlm",
                                self.config.endpoint,
                                if offered.is_empty() {
                                    "nothing".to_string()
                                } else {
                                    offered.join(", ")
                                }
                            ),
                        });
                    }
                    if !offers(scheme.http_name()) {
                        return Err(Error::Kerberos {
                            kind: Kind::Other,
                            message: format!(
                                "{} does not offer the {} HTTP scheme (it offers {})\nhint: let exctl choose (--kerberos-scheme auto)",
                                self.config.endpoint,
                                scheme.http_name(),
                                offered.join(", ")
                            ),
                        });
                    }
                    return Err(Error::Kerberos {
                        kind: Kind::BadToken,
                        message: format!(
                            "{} refused the Kerberos ticket of {} for {} (HTTP 401; it offers {})\nhint: check that {} is the host's service principal (setspn -L <host>) and that the account may use WinRM; a host that accepts only NTLM refuses Kerberos this way",
                            self.config.endpoint,
                            self.user_display(),
                            self.spn,
                            offered.join(", "),
                            self.spn
                        ),
                    });
                }
                if !reply.status.is_success() {
                    return Err(Error::Http {
                        status: reply.status.as_u16(),
                        detail: ": the Kerberos authentication was not completed".into(),
                    });
                }
                if conn.closing {
                    return Err(Error::Protocol {
                        what: "the server closed the connection right after Kerberos authentication; the context is bound to one kept-alive connection (is a proxy in between?)".into(),
                    });
                }
                if !ctx.is_complete() {
                    // Mutual authentication: the answer token proves the server's identity.
                    let Some(token) = token else {
                        return Err(Error::Kerberos {
                            kind: Kind::BadToken,
                            message: format!(
                                "{} accepted the Kerberos ticket but did not prove its own identity (no answer token for mutual authentication); refusing to talk to it",
                                self.config.endpoint
                            ),
                        });
                    };
                    let step = ctx
                        .step(Some(&token))
                        .map_err(|e| self.kerberos_error(e, false))?;
                    if !step.complete {
                        return Err(Error::Kerberos {
                            kind: Kind::BadToken,
                            message: format!(
                                "{} did not complete mutual authentication",
                                self.config.endpoint
                            ),
                        });
                    }
                }
                return Ok(KrbContext { ctx, scheme });
            }
            return Err(Error::Protocol {
                what: "the Kerberos handshake did not finish within four rounds".into(),
            });
        }
    }

    fn user_display(&self) -> String {
        if self.config.user.is_empty() {
            "the default principal".into()
        } else {
            exctl_gssapi::principal_name(&self.config.user)
        }
    }

    /// A GSSAPI failure in words that name the fix.
    fn kerberos_error(&self, e: GssError, with_password: bool) -> Error {
        let user = self.user_display();
        let spn = &self.spn;
        let detail = e.to_string();
        let kind = e.kind();
        let config_file = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
        let message = match (&e, kind) {
            (GssError::Unavailable(_), _) => detail,
            (_, Kind::NoCredentials) if with_password => format!(
                "cannot get a Kerberos ticket for {user} with the password given ({detail})"
            ),
            (_, Kind::NoCredentials) if self.config.user.is_empty() => format!(
                "no Kerberos ticket in the credential cache: run kinit user@REALM, or give the host a user and a credential ({detail})"
            ),
            (_, Kind::NoCredentials) => format!(
                "no Kerberos ticket for {user}: run kinit {user}, or give the host a credential ({detail})"
            ),
            (_, Kind::Expired) => format!(
                "the Kerberos ticket of {user} has expired: run kinit {user} again, or give the host a credential ({detail})"
            ),
            (_, Kind::KdcUnreachable) => format!(
                "no Kerberos KDC answered for the realm of {user}: check the realm's kdc entries in {config_file} (or the domain's DNS SRV records) and that port 88 is reachable ({detail})"
            ),
            (_, Kind::ClockSkew) => format!(
                "the clocks of this machine and the KDC or {spn} differ by more than Kerberos allows (5 minutes by default): synchronise this machine's clock with the domain (chrony, ntpd) ({detail})"
            ),
            (_, Kind::UnknownServer) => format!(
                "{spn} is not in the Kerberos database: check the host name or set spn: ({detail})"
            ),
            (_, Kind::UnknownClient) => format!(
                "{user} is not in the Kerberos database: check the user name and its realm ({detail})"
            ),
            (_, Kind::WrongPassword) => format!(
                "the KDC refused the password of {user}: check the host's credential ({detail})"
            ),
            _ => format!("Kerberos authentication to {spn} failed: {detail}"),
        };
        Error::Kerberos { kind, message }
    }

    fn read_krb_sealed(&self, reply: Reply, krb: &mut KrbContext) -> Result<SoapResponse, Error> {
        let status = reply.status;
        let ct = content_type(&reply.headers);
        if !framing::is_encrypted_as(&ct, krb.scheme.protocol()) {
            if status.is_success() {
                // An unencrypted answer on an encrypted channel could come from anyone
                // between us and the server.
                return Err(Error::Encryption(format!(
                    "the server answered with unencrypted content ({ct}) on an encrypted session"
                )));
            }
            return Err(self.status_error(status, &reply.body));
        }
        let framed = framing::decode(&reply.body).map_err(|e| Error::Encryption(e.to_string()))?;
        let plain = krb
            .ctx
            .unwrap_winrm(&framed.signature, &framed.sealed)
            .map_err(|e| Error::Encryption(e.to_string()))?;
        let body = String::from_utf8(plain).map_err(|_| Error::Protocol {
            what: "the decrypted response is not UTF-8".into(),
        })?;
        Ok(SoapResponse {
            status: status.as_u16(),
            body,
        })
    }

    fn unauthorized(&self, headers: &HeaderMap) -> Error {
        let offered: Vec<String> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        // A scheme the server offers that carries ours: then it is the credentials it
        // refused (a wrong password, a locked account, no right to use WinRM), not the
        // scheme; otherwise say what it would take.
        let carries = |s: &str| match self.config.auth {
            AuthMethod::Ntlm => {
                s.eq_ignore_ascii_case("Negotiate") || s.eq_ignore_ascii_case("NTLM")
            }
            AuthMethod::Basic => s.eq_ignore_ascii_case("Basic"),
            AuthMethod::Kerberos | AuthMethod::Negotiate => {
                s.eq_ignore_ascii_case("Negotiate") || s.eq_ignore_ascii_case("Kerberos")
            }
        };
        Error::Unauthorized {
            user: self.config.user.clone(),
            scheme: self.config.auth.name(),
            offered: if offered.is_empty() {
                String::new()
            } else if offered.iter().any(|o| carries(o)) {
                ": the user name or password is wrong, or the account is locked or may not use WinRM".to_string()
            } else {
                format!(
                    "; the server offers only {}: choose that authentication (auth: in the inventory, --auth on the command line)",
                    offered.join(", ")
                )
            },
        }
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> Error {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Error::EnvelopeTooLarge {
                max_kb: self.config.server_max_envelope_kb,
            };
        }
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.trim().chars().take(200).collect();
        let mut detail = if excerpt.is_empty() {
            String::new()
        } else {
            format!(": {excerpt}")
        };
        // What a web server that is not WinRM answers a POST to an unknown path or with
        // an unknown method (IIS: 404, 405, 501): not a WinRM listener.
        if matches!(status.as_u16(), 400 | 404 | 405 | 501) {
            detail.push_str(&format!(
                "\nhint: {} is not a WinRM endpoint: check the port (5985 for HTTP, 5986 for HTTPS) and the /wsman path",
                self.config.endpoint
            ));
        }
        Error::Http {
            status: status.as_u16(),
            detail,
        }
    }

    fn read_plain(&self, reply: Reply) -> Result<SoapResponse, Error> {
        let status = reply.status;
        let ct = content_type(&reply.headers);
        // Some servers and proxies label SOAP faults text/plain or not at all; the body
        // decides.
        let is_soap = ct.contains("soap+xml") || looks_like_soap(&reply.body);
        if status.is_success()
            || (is_soap && (status.is_server_error() || status.is_client_error()))
        {
            let body = String::from_utf8(reply.body).map_err(|_| Error::Protocol {
                what: "the response is not UTF-8".into(),
            })?;
            return Ok(SoapResponse {
                status: status.as_u16(),
                body,
            });
        }
        Err(self.status_error(status, &reply.body))
    }

    fn read_sealed(&self, reply: Reply, session: &mut Session) -> Result<SoapResponse, Error> {
        let status = reply.status;
        let ct = content_type(&reply.headers);
        if !framing::is_encrypted_content_type(&ct) {
            if status.is_success() {
                // An unencrypted answer on an encrypted channel could come from anyone
                // between us and the server.
                return Err(Error::Encryption(format!(
                    "the server answered with unencrypted content ({ct}) on an encrypted session"
                )));
            }
            return Err(self.status_error(status, &reply.body));
        }
        let framed = framing::decode(&reply.body).map_err(|e| Error::Encryption(e.to_string()))?;
        let plain = session.unseal(&framed.signature, &framed.sealed)?;
        let body = String::from_utf8(plain).map_err(|_| Error::Protocol {
            what: "the decrypted response is not UTF-8".into(),
        })?;
        Ok(SoapResponse {
            status: status.as_u16(),
            body,
        })
    }
}

/// The reason of a certificate error, with plain words first where rustls only names a
/// variant.
fn explain_tls(reason: String) -> String {
    match tls_explanation(&reason) {
        Some(plain) => format!("{plain} ({reason})"),
        None => reason,
    }
}

/// Plain words for the certificate errors rustls names by variant, which an administrator
/// would otherwise have to look up.
fn tls_explanation(reason: &str) -> Option<&'static str> {
    Some(if reason.contains("UnknownIssuer") {
        "the certificate was issued by a CA that is not trusted"
    } else if reason.contains("BadSignature") {
        "the certificate was issued by another CA than the trusted one of that name"
    } else if reason.contains("not valid for name") {
        "the certificate is for another host name"
    } else if reason.contains("Expired") {
        "the certificate has expired"
    } else if reason.contains("NotValidYet") {
        "the certificate is not valid yet"
    } else {
        return None;
    })
}

fn looks_like_soap(body: &[u8]) -> bool {
    let head = &body[..body.len().min(512)];
    let head = String::from_utf8_lossy(head);
    head.trim_start().starts_with('<') && head.contains("http://www.w3.org/2003/05/soap-envelope")
}

fn content_type(h: &HeaderMap) -> String {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The schemes a 401 offers, by name.
fn offered_schemes(h: &HeaderMap) -> Vec<String> {
    h.get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|c| c.split_whitespace().next())
        .filter(|s| !s.contains('='))
        .map(str::to_string)
        .collect()
}

/// The token of a `WWW-Authenticate: <scheme> <token>` header.
fn scheme_token(h: &HeaderMap, scheme: &str) -> Option<Vec<u8>> {
    h.get_all(WWW_AUTHENTICATE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        v.split(',').find_map(|c| {
            let mut parts = c.split_whitespace();
            if !parts.next()?.eq_ignore_ascii_case(scheme) {
                return None;
            }
            B64.decode(parts.next()?.trim()).ok()
        })
    })
}

/// The token of a `WWW-Authenticate: Negotiate <token>` (or `NTLM <token>`) header.
fn negotiate_token(h: &HeaderMap) -> Option<Vec<u8>> {
    h.get_all(WWW_AUTHENTICATE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        // A header may list several challenges separated by commas.
        v.split(',').find_map(|c| {
            let mut parts = c.split_whitespace();
            let scheme = parts.next()?;
            if !scheme.eq_ignore_ascii_case("Negotiate") && !scheme.eq_ignore_ascii_case("NTLM") {
                return None;
            }
            B64.decode(parts.next()?.trim()).ok()
        })
    })
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        src = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_forms_split_into_domain_and_name() {
        assert_eq!(split_user("DOM\\svc"), ("DOM".into(), "svc".into()));
        assert_eq!(
            split_user("svc@dom.local"),
            (String::new(), "svc@dom.local".into())
        );
        assert_eq!(split_user("admin"), (String::new(), "admin".into()));
    }

    #[test]
    fn finds_the_negotiate_token_among_challenges() {
        let mut h = HeaderMap::new();
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"WSMAN\""),
        );
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Negotiate TlRMTVNTUAAC"),
        );
        assert_eq!(
            negotiate_token(&h).unwrap(),
            B64.decode("TlRMTVNTUAAC").unwrap()
        );
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
        assert!(negotiate_token(&h).is_none());
    }

    #[test]
    fn basic_over_http_is_refused_unless_opted_in() {
        let mut cfg = TransportConfig {
            endpoint: "http://h:5985/wsman".into(),
            auth: AuthMethod::Basic,
            user: "u".into(),
            password: Secret::new("p"),
            spn: None,
            kerberos_scheme: KerberosScheme::Auto,
            trust: TrustPolicy::SystemRoots,
            allow_basic_over_http: false,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            max_response_bytes: 1 << 20,
            server_max_envelope_kb: 150,
        };
        assert!(matches!(
            Transport::new(cfg.clone()),
            Err(Error::InsecureBasic { .. })
        ));
        cfg.allow_basic_over_http = true;
        assert!(Transport::new(cfg).is_ok());
    }
}
