//! The HTTP transport: one keep-alive connection per client, authentication, and
//! message encryption.
//!
//! Requests go out one at a time (a lock serialises them), which is what keeps NTLM
//! working: the handshake and the sealed traffic after it must share one TCP connection,
//! because the server binds the security context to the connection. When the server
//! answers 401 to a request on an established context (the connection was closed and a
//! new one opened, or the server forgot us), the client authenticates again and sends
//! that request once more: a 401 means the server did not act on it, so repeating it is
//! safe. A request that was cut off mid-flight leaves the context unusable (sequence
//! numbers no longer agree), so the next request starts with a fresh handshake.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use exctl_ntlm::{Initiator, InitiatorConfig, Session};
use exctl_secret::Secret;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use tokio::sync::Mutex;

use crate::error::Error;
use crate::framing;
use crate::tls::{self, TrustPolicy};

const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// How the client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// NTLM through the `Negotiate` scheme, with message encryption over HTTP.
    #[default]
    Ntlm,
    /// HTTP Basic; allowed over HTTPS only unless explicitly opted in.
    Basic,
}

impl AuthMethod {
    fn name(self) -> &'static str {
        match self {
            AuthMethod::Ntlm => "NTLM",
            AuthMethod::Basic => "Basic",
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
    /// The password.
    pub password: Secret,
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

/// Per-connection authentication state.
#[derive(Default)]
struct AuthState {
    /// The NTLM context, once the handshake succeeded.
    ntlm: Option<NtlmContext>,
    /// A request was started and not finished: the context can no longer be trusted.
    in_flight: bool,
}

struct NtlmContext {
    /// The sealing session over HTTP; over HTTPS TLS protects the traffic, no sealing.
    session: Option<Session>,
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
    http: reqwest::Client,
    config: TransportConfig,
    https: bool,
    state: Mutex<AuthState>,
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
        let url = reqwest::Url::parse(&config.endpoint).map_err(|e| {
            Error::Config(format!(
                "the endpoint '{}' is not a URL: {e}",
                config.endpoint
            ))
        })?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(Error::Config(format!(
                    "the endpoint scheme must be http or https, not '{other}'"
                )));
            }
        };
        if url.host_str().is_none() {
            return Err(Error::Config(format!(
                "the endpoint '{}' has no host",
                config.endpoint
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config(
                "the endpoint URL must not contain credentials; pass --user and the password separately".into(),
            ));
        }
        if config.auth == AuthMethod::Basic && !https && !config.allow_basic_over_http {
            return Err(Error::InsecureBasic {
                endpoint: config.endpoint.clone(),
            });
        }
        if config.user.is_empty() {
            return Err(Error::Config("no user name given".into()));
        }
        // reqwest prepares TLS even for plain HTTP clients and asks for the process-wide
        // provider; ours is ring. Installing fails harmlessly when one is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("exctl/", env!("CARGO_PKG_VERSION")));
        if https {
            builder = builder
                .use_preconfigured_tls(tls::client_config(&config.trust)?)
                .tls_info(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Transport {
            http,
            config,
            https,
            state: Mutex::new(AuthState::default()),
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
            // The previous request was abandoned mid-way: start over on a clean context.
            state.ntlm = None;
        }
        state.in_flight = true;
        let mut payload_sent = false;
        let result = self
            .send_locked(&mut state, action, xml, timeout, &mut payload_sent)
            .await;
        state.in_flight = false;
        if matches!(
            result,
            Err(Error::ConnectionLost { .. }
                | Error::Timeout { .. }
                | Error::Encryption(_)
                // A response that failed verification leaves the inbound RC4 stream out
                // of step (or was a replay): only a new context can go on.
                | Error::Ntlm(_))
        ) {
            state.ntlm = None;
        }
        result.map_err(|error| SendError {
            // A connection that could not be made carried nothing.
            payload_sent: payload_sent
                && !matches!(error, Error::Connect { .. } | Error::Tls { .. }),
            error,
        })
    }

    async fn send_locked(
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
                *payload_sent = true;
                let resp = self
                    .post(action, timeout)
                    .header(AUTHORIZATION, format!("Basic {token}"))
                    .header(CONTENT_TYPE, SOAP_CONTENT_TYPE)
                    .body(xml.to_string())
                    .send()
                    .await
                    .map_err(|e| self.map_err(e, action, timeout))?;
                if resp.status() == StatusCode::UNAUTHORIZED {
                    return Err(self.unauthorized(resp.headers()));
                }
                self.read_plain(resp, action, timeout).await
            }
            AuthMethod::Ntlm => {
                // One retry: a 401 on an established context means a new connection.
                for attempt in 0..2 {
                    if state.ntlm.is_none() {
                        state.ntlm = Some(self.ntlm_handshake(action, timeout).await?);
                    }
                    let Some(ctx) = state.ntlm.as_mut() else {
                        continue;
                    };
                    let req = self.post(action, timeout);
                    let req = match ctx.session.as_mut() {
                        Some(session) => {
                            let (signature, sealed) = session.seal(xml.as_bytes());
                            req.header(CONTENT_TYPE, framing::CONTENT_TYPE)
                                .body(framing::encode(&signature, &sealed))
                        }
                        None => req
                            .header(CONTENT_TYPE, SOAP_CONTENT_TYPE)
                            .body(xml.to_string()),
                    };
                    *payload_sent = true;
                    let resp = req
                        .send()
                        .await
                        .map_err(|e| self.map_err(e, action, timeout))?;
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        // A 401 means the server did not act on the request.
                        *payload_sent = false;
                        state.ntlm = None;
                        if attempt == 0 {
                            continue;
                        }
                        return Err(self.unauthorized(resp.headers()));
                    }
                    let ctx = state.ntlm.as_mut().ok_or_else(|| Error::Protocol {
                        what: "the NTLM context vanished".into(),
                    })?;
                    return match ctx.session.as_mut() {
                        Some(session) => self.read_sealed(resp, session, action, timeout).await,
                        None => self.read_plain(resp, action, timeout).await,
                    };
                }
                Err(Error::Unauthorized {
                    user: self.config.user.clone(),
                    scheme: "NTLM",
                    offered: String::new(),
                })
            }
        }
    }

    fn post(&self, _action: &'static str, timeout: Duration) -> reqwest::RequestBuilder {
        self.http
            .post(&self.config.endpoint)
            .header(CONNECTION, "Keep-Alive")
            // Exchange's IIS endpoint compresses when asked; we never ask.
            .header("Accept-Encoding", "identity")
            .timeout(timeout)
    }

    async fn ntlm_handshake(
        &self,
        action: &'static str,
        timeout: Duration,
    ) -> Result<NtlmContext, Error> {
        let (domain, user) = split_user(&self.config.user);
        let mut initiator = Initiator::new(InitiatorConfig {
            domain,
            user,
            password: self.config.password.expose().to_string(),
            workstation: None,
            channel_bindings: None,
            target_spn: None,
        });
        let type1 = initiator.negotiate_message();
        let resp = self
            .post(action, timeout)
            .header(AUTHORIZATION, format!("Negotiate {}", B64.encode(&type1)))
            .header(CONTENT_TYPE, SOAP_CONTENT_TYPE)
            .body(Vec::new())
            .send()
            .await
            .map_err(|e| self.map_err(e, action, timeout))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Err(Error::Http {
                status: resp.status().as_u16(),
                detail: ": the server did not answer the NTLM negotiation with a challenge".into(),
            });
        }
        let challenge =
            negotiate_token(resp.headers()).ok_or_else(|| self.unauthorized(resp.headers()))?;
        if self.https {
            // Extended Protection: bind the authentication to this TLS channel.
            let cert = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|i| i.peer_certificate())
                .map(|c| c.to_vec());
            if let Some(cert) = cert {
                initiator.set_channel_bindings(Some(tls::tls_server_end_point(&cert)));
            }
        }
        // Drain the body so the connection can be reused for the next leg.
        let _ = resp.bytes().await;
        let type3 = initiator.authenticate_message(&challenge)?;
        let resp = self
            .post(action, timeout)
            .header(AUTHORIZATION, format!("Negotiate {}", B64.encode(&type3)))
            .header(CONTENT_TYPE, SOAP_CONTENT_TYPE)
            .body(Vec::new())
            .send()
            .await
            .map_err(|e| self.map_err(e, action, timeout))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(resp.headers()));
        }
        let _ = resp.bytes().await;
        if !status.is_success() {
            return Err(Error::Http {
                status: status.as_u16(),
                detail: ": the NTLM authentication was not completed".into(),
            });
        }
        let session = initiator.into_session()?;
        Ok(NtlmContext {
            session: if self.https { None } else { Some(session) },
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
        Error::Unauthorized {
            user: self.config.user.clone(),
            scheme: self.config.auth.name(),
            offered: if offered.is_empty() {
                String::new()
            } else {
                format!("; the server offers {}", offered.join(", "))
            },
        }
    }

    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        action: &'static str,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let limit = self.config.max_response_bytes;
        if let Some(len) = resp.content_length()
            && len as usize > limit
        {
            return Err(Error::Protocol {
                what: format!(
                    "the response announces {len} bytes, more than the {limit} bytes allowed"
                ),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.map_err(e, action, timeout))?
        {
            if body.len() + chunk.len() > limit {
                return Err(Error::Protocol {
                    what: format!("the response is larger than the {limit} bytes allowed"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn status_error(&self, status: StatusCode, body: &[u8]) -> Error {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Error::EnvelopeTooLarge {
                max_kb: self.config.server_max_envelope_kb,
            };
        }
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.trim().chars().take(200).collect();
        Error::Http {
            status: status.as_u16(),
            detail: if excerpt.is_empty() {
                String::new()
            } else {
                format!(": {excerpt}")
            },
        }
    }

    async fn read_plain(
        &self,
        resp: reqwest::Response,
        action: &'static str,
        timeout: Duration,
    ) -> Result<SoapResponse, Error> {
        let status = resp.status();
        let ct = content_type(resp.headers());
        let body = self.read_body(resp, action, timeout).await?;
        // Some servers and proxies label SOAP faults text/plain or not at all; the body
        // decides.
        let is_soap = ct.contains("soap+xml") || looks_like_soap(&body);
        if status.is_success()
            || (is_soap && (status.is_server_error() || status.is_client_error()))
        {
            let body = String::from_utf8(body).map_err(|_| Error::Protocol {
                what: "the response is not UTF-8".into(),
            })?;
            return Ok(SoapResponse {
                status: status.as_u16(),
                body,
            });
        }
        Err(self.status_error(status, &body))
    }

    async fn read_sealed(
        &self,
        resp: reqwest::Response,
        session: &mut Session,
        action: &'static str,
        timeout: Duration,
    ) -> Result<SoapResponse, Error> {
        let status = resp.status();
        let ct = content_type(resp.headers());
        let body = self.read_body(resp, action, timeout).await?;
        if !framing::is_encrypted_content_type(&ct) {
            if status.is_success() {
                // An unencrypted answer on an encrypted channel could come from anyone
                // between us and the server.
                return Err(Error::Encryption(format!(
                    "the server answered with unencrypted content ({ct}) on an encrypted session"
                )));
            }
            return Err(self.status_error(status, &body));
        }
        let framed = framing::decode(&body).map_err(|e| Error::Encryption(e.to_string()))?;
        let plain = session.unseal(&framed.signature, &framed.sealed)?;
        let body = String::from_utf8(plain).map_err(|_| Error::Protocol {
            what: "the decrypted response is not UTF-8".into(),
        })?;
        Ok(SoapResponse {
            status: status.as_u16(),
            body,
        })
    }

    fn map_err(&self, e: reqwest::Error, action: &'static str, timeout: Duration) -> Error {
        let endpoint = self.config.endpoint.clone();
        let reason = error_chain(&e);
        // rustls errors reach us wrapped in hyper's and io errors, not always as a
        // source chain; their text is stable ("invalid peer certificate: ...").
        if is_tls_error(&e)
            || reason.contains("invalid peer certificate")
            || reason.contains("peer is incompatible")
        {
            let reason = match tls_explanation(&reason) {
                Some(plain) => format!("{plain} ({reason})"),
                None => reason,
            };
            return Error::Tls { endpoint, reason };
        }
        if e.is_timeout() {
            return Error::Timeout {
                endpoint,
                action,
                after: timeout,
            };
        }
        if e.is_connect() {
            return Error::Connect { endpoint, reason };
        }
        Error::ConnectionLost {
            endpoint,
            action,
            reason,
        }
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
    use reqwest::header::HeaderValue;

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
