//! The HTTP side of the simulated WinRM service, as HTTP.sys and the WinRM service behave:
//! the listener (HTTP or HTTPS), per-connection authentication, message sealing, size
//! limits, and the `/sim/state` document.
//!
//! Authentication belongs to the TCP connection, as with HTTP.sys: NTLM's three legs must
//! share a connection, the established NTLM session then covers every later request on
//! it, and a new connection starts unauthenticated. Basic is checked on every request.
//!
//! Refusals, and why they look the way they do:
//! - Basic with a domain account: 401, as for a wrong password (Windows' Basic knows
//!   local accounts only).
//! - No or bad credentials: 401 with one `WWW-Authenticate` per usable scheme
//!   (`Negotiate`, and `Basic realm="WSMAN"` only where Basic would be accepted).
//! - Basic over plain HTTP with AllowUnencrypted=false: 401 — Windows does not offer Basic
//!   there, so clients report rejected credentials (pywinrm #79).
//! - A plain SOAP request on an NTLM-authenticated HTTP connection with
//!   AllowUnencrypted=false: HTTP 500 with an empty body. That is what pywinrm users saw
//!   against such hosts ("Bad HTTP response returned from server. Code 500", pywinrm #129,
//!   #208; winrm4j #151), the event log saying unencrypted traffic is disabled (MS-WSMV
//!   "MUST NOT accept requests if either the SOAP request or response would be
//!   unencrypted").
//! - Content-Length beyond MaxEnvelopeSizekb (plus framing): 413 with no body, before the
//!   body is read (MS-WSMV 3.1.4.1.x; masterzen #156, ansible.windows #391).
//!
//! Faults planned in [`SimConfig::faults`] (see [`crate::inject`]) are applied once a
//! request has been read as SOAP; `/sim/faults` is their loopback control endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use exctl_gssapi::SecurityContext as _;
use exctl_ntlm::{Acceptor, AcceptorConfig, Session};

use crate::config::{AuthScheme, SimConfig};
use crate::fault::Fault;
use crate::framing;
use crate::inject::{self, Injected};
use crate::shell::{Caller, WsmanService};
use crate::soap;
use crate::state::SimState;

/// Content type of SOAP envelopes, spelled as Windows spells it.
pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// The smallest keystream worth generating ahead on another thread.
const MIN_PREFETCH: usize = 32 * 1024;
/// Room for the multipart framing around a sealed envelope.
const FRAMING_SLACK: usize = 4096;

/// What every connection shares.
pub(crate) struct Shared {
    pub config: Arc<SimConfig>,
    pub state: Arc<SimState>,
    pub wsman: WsmanService,
    pub psrp: crate::psrp::PsrpService,
    pub channel_binding: Option<Vec<u8>>,
    pub endpoint: String,
    /// The service's Kerberos keys, when Kerberos is accepted.
    pub kerberos: Option<Arc<exctl_gssapi::Credential>>,
}

enum ConnAuth {
    None,
    /// Between NTLM NEGOTIATE and AUTHENTICATE.
    Negotiating(Box<Acceptor>),
    /// NTLM done: the session seals this connection's messages.
    Ntlm {
        account: String,
        session: Box<Session>,
    },
    /// A Kerberos (SPNEGO) handshake that needs another round.
    KerberosNegotiating(Box<exctl_gssapi::Acceptor>),
    /// Kerberos done: the context seals this connection's messages with the protocol of
    /// the scheme it was established under.
    Kerberos {
        account: String,
        ctx: Box<exctl_gssapi::Acceptor>,
        kerberos_scheme: bool,
    },
}

impl ConnAuth {
    fn account(&self) -> Option<&str> {
        match self {
            ConnAuth::Ntlm { account, .. } | ConnAuth::Kerberos { account, .. } => Some(account),
            _ => None,
        }
    }
}

/// One TCP connection's authentication state.
struct Conn {
    tls: bool,
    peer: SocketAddr,
    auth: Mutex<ConnAuth>,
    /// The `WWW-Authenticate` header with the server's final Kerberos token (mutual
    /// authentication), for the response to the request that completed the handshake.
    mutual: Mutex<Option<HeaderValue>>,
}

impl Conn {
    fn auth(&self) -> std::sync::MutexGuard<'_, ConnAuth> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Resp = Response<Full<Bytes>>;

/// Marks a response that must not be sent: the connection is closed instead, as when it
/// breaks mid-request (fault injection).
#[derive(Clone, Copy)]
struct DropConnection;

fn drop_connection() -> Resp {
    let mut r = empty(StatusCode::INTERNAL_SERVER_ERROR);
    r.extensions_mut().insert(DropConnection);
    r
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// Serves one accepted connection until the client closes it.
pub(crate) async fn serve_connection<IO>(io: IO, tls: bool, peer: SocketAddr, shared: Arc<Shared>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(Conn {
        tls,
        peer,
        auth: Mutex::new(ConnAuth::None),
        mutual: Mutex::new(None),
    });
    let served = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let conn = conn.clone();
        let shared = shared.clone();
        let served = served.clone();
        async move {
            let mut resp = handle(req, &conn, &shared).await;
            let mutual = conn.mutual.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(token) = mutual {
                resp.headers_mut().insert(WWW_AUTHENTICATE, token);
            }
            if resp.extensions().get::<DropConnection>().is_some() {
                // An error from the service makes hyper close the connection unanswered.
                return Err(std::io::Error::other(
                    "connection dropped (fault injection)",
                ));
            }
            resp.headers_mut()
                .insert("server", HeaderValue::from_static("Microsoft-HTTPAPI/2.0"));
            let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if shared
                .config
                .close_after_requests
                .is_some_and(|max| n >= max)
            {
                // hyper closes the connection after a response that says so.
                resp.headers_mut()
                    .insert("connection", HeaderValue::from_static("close"));
            }
            Ok::<_, std::io::Error>(resp)
        }
    });
    // Errors here are the client going away mid-request: nothing to report to anyone.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn handle(req: Request<Incoming>, conn: &Conn, shared: &Shared) -> Resp {
    let config = &shared.config;
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    let path = req.uri().path().to_string();
    if path == "/sim/state" {
        return state_document(&req, shared);
    }
    if path == "/sim/faults" {
        return faults_endpoint(req, shared).await;
    }
    // Exchange's remote PowerShell endpoint (IIS's /PowerShell on a real server) is
    // served beside WinRM's /wsman, behind the same authentication.
    let exchange_endpoint = path
        .trim_end_matches('/')
        .eq_ignore_ascii_case("/powershell");
    if !path.eq_ignore_ascii_case("/wsman") && !exchange_endpoint {
        return count(shared, empty(StatusCode::NOT_FOUND));
    }
    if req.method() != Method::POST {
        let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert("allow", HeaderValue::from_static("POST"));
        return count(shared, r);
    }

    // Size first, from the header alone: an oversized envelope is never read.
    let limit = config.max_envelope_bytes() + FRAMING_SLACK;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        shared.state.request(0);
        return count(shared, too_large());
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            shared.state.request(0);
            return count(shared, too_large());
        }
    };
    shared.state.request(body.len());

    // Authentication.
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let account = match authorization {
        Some(value) => match authenticate(&value, conn, shared) {
            Ok(account) => account,
            Err(resp) => return count(shared, *resp),
        },
        None => match conn.auth().account() {
            Some(account) => account.to_string(),
            None => return count(shared, unauthorized(shared, conn.tls)),
        },
    };

    // The empty POST clients send to finish authentication before sealing anything.
    if body.is_empty() {
        return count(shared, empty(StatusCode::OK));
    }

    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let sealed_request = content_type.starts_with("multipart/encrypted");
    // NTLM or Kerberos: a connection whose messages can be sealed.
    let ntlm_connection = matches!(
        &*conn.auth(),
        ConnAuth::Ntlm { .. } | ConnAuth::Kerberos { .. }
    );
    let plaintext: Vec<u8> = if sealed_request {
        if !ntlm_connection {
            return count(shared, empty(StatusCode::BAD_REQUEST));
        }
        match unseal(&body, conn) {
            Some(p) => p,
            None => {
                // A message that does not verify breaks the session for good.
                *conn.auth() = ConnAuth::None;
                shared.state.auth_failure();
                return count(shared, unauthorized(shared, conn.tls));
            }
        }
    } else if content_type.starts_with("application/soap+xml") {
        if ntlm_connection && !conn.tls && !config.allow_unencrypted {
            return count(shared, empty(StatusCode::INTERNAL_SERVER_ERROR));
        }
        body.to_vec()
    } else {
        return count(shared, empty(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    };
    if plaintext.len() > config.max_envelope_bytes() {
        return count(shared, too_large());
    }

    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_without_port)
        .unwrap_or_else(|| config.computer_name.clone());
    let caller = Caller {
        account,
        client_ip: conn.peer.ip().to_string(),
        machine: host,
        endpoint: shared.endpoint.clone(),
    };
    let mut reset_after = false;
    let (status, xml) = match soap::parse_request(&plaintext) {
        Ok(request) => {
            let injected = config.faults.next(&request.action);
            match injected {
                Some(Injected::ResetBefore) => return drop_connection(),
                Some(Injected::Http500) => {
                    return count(shared, empty(StatusCode::INTERNAL_SERVER_ERROR));
                }
                Some(Injected::ResetAfter) => reset_after = true,
                Some(Injected::DropShell) => {
                    if let Some(id) = request.selector("ShellId") {
                        shared.wsman.forget_shell(id);
                    }
                }
                Some(i @ Injected::DelayMs(_)) => {
                    if let Some(d) = inject::delay(i) {
                        tokio::time::sleep(d).await;
                    }
                }
                Some(Injected::Quota) | None => {}
            }
            if injected == Some(Injected::Quota) {
                let quota = Fault::quota_max_shells(config.max_shells_per_user);
                fault_reply(shared, &quota, request.message_id.as_deref(), &caller)
            } else {
                let resource = request.resource_uri.as_deref().unwrap_or_default();
                let psrp = if exchange_endpoint {
                    Some(crate::psrp::Endpoint::Exchange)
                } else if crate::psrp::PsrpService::is_psrp_resource(resource) {
                    Some(crate::psrp::Endpoint::Wsman)
                } else {
                    None
                };
                let reply = match psrp {
                    Some(endpoint) => {
                        shared
                            .psrp
                            .handle(&request, &caller.account, endpoint)
                            .await
                    }
                    None => shared.wsman.handle(&request, &caller).await,
                };
                match reply {
                    Ok(xml) => (StatusCode::OK, xml),
                    Err(fault) => {
                        fault_reply(shared, &fault, request.message_id.as_deref(), &caller)
                    }
                }
            }
        }
        Err(_) => fault_reply(shared, &Fault::schema_validation(), None, &caller),
    };

    let resp = if sealed_request {
        let mut auth = conn.auth();
        match &mut *auth {
            ConnAuth::Ntlm { session, .. } => {
                let (signature, sealed) = session.seal(xml.as_bytes());
                // While the client reads this answer, generate the keystream of the next
                // one (as long as this one: a stream of output comes in full envelopes).
                let prefetch = session.prefetch_outbound();
                if prefetch.len() >= MIN_PREFETCH {
                    tokio::task::spawn_blocking(move || prefetch.run());
                }
                let body = framing::build(xml.len(), &signature, &sealed);
                respond(status, framing::ENCRYPTED_CONTENT_TYPE, body)
            }
            ConnAuth::Kerberos {
                ctx,
                kerberos_scheme,
                ..
            } => match ctx.wrap_winrm(xml.as_bytes()) {
                Ok((header, data)) => {
                    // The answer names the protocol the request named (pywinrm sends
                    // Kerberos-session-encrypted under the Negotiate scheme), else the
                    // scheme's.
                    let kerberos_protocol = *kerberos_scheme
                        || content_type.contains(&framing::KERBEROS_PROTOCOL.to_ascii_lowercase());
                    let (protocol, content_type) = if kerberos_protocol {
                        (framing::KERBEROS_PROTOCOL, framing::KERBEROS_CONTENT_TYPE)
                    } else {
                        (framing::SPNEGO_PROTOCOL, framing::ENCRYPTED_CONTENT_TYPE)
                    };
                    let body = framing::build_with(protocol, xml.len(), &header, &data);
                    respond(status, content_type, body)
                }
                Err(_) => empty(StatusCode::INTERNAL_SERVER_ERROR),
            },
            // The connection re-authenticated meanwhile; nothing can be sealed.
            _ => empty(StatusCode::UNAUTHORIZED),
        }
    } else {
        respond(status, SOAP_CONTENT_TYPE, xml.into_bytes())
    };
    if reset_after {
        // Handled (and sealed, advancing the session), but never delivered.
        return drop_connection();
    }
    count(shared, resp)
}

fn fault_reply(
    shared: &Shared,
    fault: &Fault,
    relates_to: Option<&str>,
    caller: &Caller,
) -> (StatusCode, String) {
    shared.state.fault(fault.wsman_code());
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        fault.to_envelope(relates_to, &caller.machine),
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Resp {
    let len = body.len();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn count(shared: &Shared, resp: Resp) -> Resp {
    let len = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    shared.state.response(resp.status().as_u16(), len);
    resp
}

fn too_large() -> Resp {
    let mut r = empty(StatusCode::PAYLOAD_TOO_LARGE);
    // The body was not (entirely) read, so the connection cannot carry another request.
    r.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn host_without_port(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    host.rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .to_string()
}

/// A 401 offering the schemes this connection could use.
fn unauthorized(shared: &Shared, tls: bool) -> Resp {
    let mut r = empty(StatusCode::UNAUTHORIZED);
    let config = &shared.config;
    // Windows offers Negotiate when NTLM or Kerberos is on, and Kerberos on its own line
    // when Kerberos is on.
    if config.auth.contains(&AuthScheme::Ntlm) || config.auth.contains(&AuthScheme::Kerberos) {
        r.headers_mut()
            .append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
    }
    if config.auth.contains(&AuthScheme::Kerberos) {
        r.headers_mut()
            .append(WWW_AUTHENTICATE, HeaderValue::from_static("Kerberos"));
    }
    if config.auth.contains(&AuthScheme::Basic) && (tls || config.allow_unencrypted) {
        r.headers_mut().append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"WSMAN\""),
        );
    }
    r
}

fn refuse(shared: &Shared, conn: &Conn) -> Box<Resp> {
    shared.state.auth_failure();
    Box::new(unauthorized(shared, conn.tls))
}

/// Handles an `Authorization` header: `Ok(account)` when the request may proceed, or the
/// 401 to send.
fn authenticate(value: &str, conn: &Conn, shared: &Shared) -> Result<String, Box<Resp>> {
    let config = &shared.config;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("Basic") {
        if !config.auth.contains(&AuthScheme::Basic) || !(conn.tls || config.allow_unencrypted) {
            return Err(refuse(shared, conn));
        }
        let decoded = B64
            .decode(token)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| refuse(shared, conn))?;
        let (name, password) = decoded
            .split_once(':')
            .ok_or_else(|| refuse(shared, conn))?;
        // Windows' Basic authenticates local accounts only: credentials go "for a domain
        // account when using negotiate or Kerberos authentication, or for a local account
        // with Basic authentication" (WinRM's ConnectionOptions.UserName,
        // https://learn.microsoft.com/en-us/windows/win32/winrm/connectionoptions-username).
        // A domain account's Basic logon fails like a wrong password, on /wsman and on
        // /PowerShell alike.
        if !config.is_local_account() || !config.credentials_match(name, password) {
            return Err(refuse(shared, conn));
        }
        return Ok(config.account());
    }
    let kerberos_scheme = scheme.eq_ignore_ascii_case("Kerberos");
    if !(scheme.eq_ignore_ascii_case("Negotiate")
        || scheme.eq_ignore_ascii_case("NTLM")
        || kerberos_scheme)
    {
        return Err(refuse(shared, conn));
    }
    let message = B64.decode(token).map_err(|_| refuse(shared, conn))?;
    let ntlmssp = message.len() >= 12 && &message[..8] == b"NTLMSSP\0";
    if !ntlmssp && !scheme.eq_ignore_ascii_case("NTLM") {
        // A GSSAPI token: SPNEGO under Negotiate, raw Kerberos under Kerberos. A host
        // without Kerberos refuses it, as a workgroup Windows host does.
        if !config.auth.contains(&AuthScheme::Kerberos) {
            return Err(refuse(shared, conn));
        }
        return authenticate_kerberos(&message, scheme, kerberos_scheme, conn, shared);
    }
    // NTLM, raw NTLMSSP only (an SPNEGO-wrapped NTLM token is refused); a host offering
    // only Kerberos refuses NTLM as Windows does with Negotiate restricted to Kerberos.
    if !ntlmssp || kerberos_scheme || !config.auth.contains(&AuthScheme::Ntlm) {
        return Err(refuse(shared, conn));
    }
    let kind = u32::from_le_bytes([message[8], message[9], message[10], message[11]]);
    let mut auth = conn.auth();
    match kind {
        1 => {
            // A local account answers to the computer name, `.` and no domain at all.
            let domains = if config.is_local_account() {
                vec![config.computer_name.clone(), ".".into(), String::new()]
            } else {
                vec![config.user.0.clone()]
            };
            let mut acceptor = Acceptor::new(AcceptorConfig {
                accounts: domains
                    .into_iter()
                    .map(|d| (d, config.user.1.clone(), config.password.clone()))
                    .collect(),
                netbios_domain: config.user.0.clone(),
                netbios_computer: config.computer_name.clone(),
                dns_domain: config.dns_domain.clone(),
                dns_computer: format!(
                    "{}.{}",
                    config.computer_name.to_ascii_lowercase(),
                    config.dns_domain
                ),
                required_channel_bindings: if conn.tls && config.cbt_strict {
                    shared.channel_binding.clone()
                } else {
                    None
                },
            });
            match acceptor.challenge_message(&message) {
                Ok(challenge) => {
                    *auth = ConnAuth::Negotiating(Box::new(acceptor));
                    let mut r = empty(StatusCode::UNAUTHORIZED);
                    let header = format!("{scheme} {}", B64.encode(challenge));
                    if let Ok(v) = HeaderValue::from_str(&header) {
                        r.headers_mut().insert(WWW_AUTHENTICATE, v);
                    }
                    Err(Box::new(r))
                }
                Err(_) => {
                    *auth = ConnAuth::None;
                    drop(auth);
                    Err(refuse(shared, conn))
                }
            }
        }
        3 => {
            let state = std::mem::replace(&mut *auth, ConnAuth::None);
            let ConnAuth::Negotiating(mut acceptor) = state else {
                drop(auth);
                return Err(refuse(shared, conn));
            };
            let user = acceptor.accept(&message);
            let session = user.and_then(|u| acceptor.into_session().map(|s| (u, s)));
            match session {
                Ok((user, session)) => {
                    let account = if config.is_local_account() {
                        config.account()
                    } else {
                        format!("{}\\{}", user.domain, user.user)
                    };
                    *auth = ConnAuth::Ntlm {
                        account: account.clone(),
                        session: Box::new(session),
                    };
                    Ok(account)
                }
                Err(_) => {
                    drop(auth);
                    Err(refuse(shared, conn))
                }
            }
        }
        _ => {
            *auth = ConnAuth::None;
            drop(auth);
            Err(refuse(shared, conn))
        }
    }
}

/// One Kerberos handshake step (SPNEGO under `Negotiate`, raw Kerberos under
/// `Kerberos`): `Ok(account)` once the client is authenticated as the accepted principal
/// (the server's answer token then goes out with the response), or the 401 to send.
fn authenticate_kerberos(
    message: &[u8],
    scheme: &str,
    kerberos_scheme: bool,
    conn: &Conn,
    shared: &Shared,
) -> Result<String, Box<Resp>> {
    let config = &shared.config;
    let Some(credential) = shared.kerberos.clone() else {
        return Err(refuse(shared, conn));
    };
    let mut auth = conn.auth();
    let mut acceptor = match std::mem::replace(&mut *auth, ConnAuth::None) {
        ConnAuth::KerberosNegotiating(a) => a,
        _ => {
            // Channel bindings are checked when the host requires them, as for NTLM.
            let bindings = if conn.tls && config.cbt_strict {
                shared.channel_binding.clone()
            } else {
                None
            };
            Box::new(exctl_gssapi::Acceptor::new(credential, bindings))
        }
    };
    let step = match acceptor.step(Some(message)) {
        Ok(step) => step,
        Err(_) => {
            drop(auth);
            shared.state.auth_failure();
            let mut r = unauthorized(shared, conn.tls);
            // The KRB-ERROR (clock skew, a ticket for another key) goes back to the client
            // in place of the bare challenge, as HTTP.sys does.
            if !acceptor.error_token().is_empty()
                && let Ok(v) = HeaderValue::from_str(&format!(
                    "{scheme} {}",
                    B64.encode(acceptor.error_token())
                ))
            {
                r.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
            return Err(Box::new(r));
        }
    };
    let header = (!step.token.is_empty())
        .then(|| HeaderValue::from_str(&format!("{scheme} {}", B64.encode(&step.token))).ok())
        .flatten();
    if !step.complete {
        *auth = ConnAuth::KerberosNegotiating(acceptor);
        let mut r = empty(StatusCode::UNAUTHORIZED);
        if let Some(v) = header {
            r.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        return Err(Box::new(r));
    }
    let principal = acceptor.peer().unwrap_or_default().to_string();
    if !config.kerberos_principal_matches(&principal) {
        // A valid ticket of another account: the host's ACL refuses it.
        drop(auth);
        return Err(refuse(shared, conn));
    }
    let account = config.account();
    *auth = ConnAuth::Kerberos {
        account: account.clone(),
        ctx: acceptor,
        kerberos_scheme,
    };
    drop(auth);
    if let Some(v) = header {
        *conn.mutual.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
    Ok(account)
}

/// Unseals a multipart/encrypted body with the connection's session; `None` when the
/// framing is bad or a signature does not verify.
fn unseal(body: &[u8], conn: &Conn) -> Option<Vec<u8>> {
    let parts = framing::parse(body).ok()?;
    let mut auth = conn.auth();
    let mut plaintext = Vec::new();
    match &mut *auth {
        ConnAuth::Ntlm { session, .. } => {
            for part in parts {
                plaintext.extend_from_slice(&session.unseal(part.signature, part.sealed).ok()?);
            }
        }
        ConnAuth::Kerberos { ctx, .. } => {
            for part in parts {
                plaintext.extend_from_slice(&ctx.unwrap_winrm(part.signature, part.sealed).ok()?);
            }
        }
        _ => return None,
    }
    Some(plaintext)
}

/// `/sim/faults`: GET the planned faults with their counters, POST a rule or a list of
/// rules (JSON, see [`crate::inject`]), DELETE them all. Loopback-only like the whole
/// listener.
async fn faults_endpoint(req: Request<Incoming>, shared: &Shared) -> Resp {
    let plan = &shared.config.faults;
    match *req.method() {
        Method::GET => {
            let json = serde_json::to_vec(&plan.rules()).unwrap_or_default();
            respond(StatusCode::OK, "application/json", json)
        }
        Method::DELETE => {
            plan.clear();
            empty(StatusCode::NO_CONTENT)
        }
        Method::POST => {
            let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
                return empty(StatusCode::PAYLOAD_TOO_LARGE);
            };
            match plan.add_json(&body.to_bytes()) {
                Ok(_) => empty(StatusCode::NO_CONTENT),
                Err(e) => {
                    let text = format!("not a fault rule: {e}\n");
                    respond(StatusCode::BAD_REQUEST, "text/plain", text.into_bytes())
                }
            }
        }
        _ => {
            let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, POST, DELETE"));
            r
        }
    }
}

/// `GET /sim/state`: the counters as JSON. Loopback-only like the whole listener.
fn state_document(req: &Request<Incoming>, shared: &Shared) -> Resp {
    if req.method() != Method::GET {
        return empty(StatusCode::METHOD_NOT_ALLOWED);
    }
    let json = serde_json::to_vec(&shared.state.snapshot()).unwrap_or_default();
    let len = json.len();
    let mut r = Response::new(Full::new(Bytes::from(json)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}
