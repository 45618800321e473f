//! Hostile or broken servers, each refused with an error that names what happened: a
//! certificate from another CA, a certificate for another name, Basic offered over plain
//! HTTP, a tampered NTLM signature, a replayed sealed response, a response that is not
//! SOAP, a response longer than announced or than the client accepts.
//!
//! The man in the middle is a small loopback proxy between the client and
//! `exctl_sim::serve` that rewrites responses; the broken servers are a few lines of raw
//! HTTP on loopback. Every test is bounded in time.

use crate::common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exctl_secret::Secret;
use exctl_sim::{CmdExecutor, RunningSim, SimConfig};
use exctl_winrm::{
    AuthMethod, Client, ClientConfig, Error, RetryPolicy, ShellOptions, TrustPolicy,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::{SIM_PASSWORD, SIM_USER, Sim, exec, text};

const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test finished in time")
}

async fn sim(config: SimConfig) -> RunningSim {
    let config = SimConfig {
        password: SIM_PASSWORD.into(),
        ..config
    };
    exctl_sim::serve(config, Arc::new(CmdExecutor::new("EXCH01")))
        .await
        .expect("the simulator starts")
}

fn config(endpoint: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new(endpoint, SIM_USER, Secret::new(SIM_PASSWORD));
    cfg.operation_timeout = Duration::from_secs(2);
    cfg.read_timeout_margin = Duration::from_secs(2);
    cfg.retry = RetryPolicy::none();
    cfg
}

async fn open(cfg: ClientConfig) -> Result<exctl_winrm::Shell, Error> {
    Client::new(cfg)?.open_shell(&ShellOptions::default()).await
}

fn ca_file(dir: &tempfile::TempDir, sim: &RunningSim) -> std::path::PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, sim.ca_pem().expect("a TLS simulator")).unwrap();
    path
}

fn assert_no_secret(e: &Error) {
    let t = format!("{e} {e:?}");
    assert!(!t.contains(SIM_PASSWORD), "the password leaked: {t}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let target = sim(SimConfig {
            tls: true,
            ..SimConfig::default()
        })
        .await;
        let other = sim(SimConfig {
            tls: true,
            ..SimConfig::default()
        })
        .await;
        let mut cfg = config(target.url());
        cfg.trust = TrustPolicy::CaFile(ca_file(&dir, &other));
        let err = open(cfg).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "the TLS certificate of {} was not accepted",
                target.url()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("the certificate was issued by another CA than the trusted one"),
            "{msg}"
        );
        assert_no_secret(&err);
        // The right CA is accepted: the refusal is about the issuer, nothing else.
        let mut cfg = config(target.url());
        cfg.trust = TrustPolicy::CaFile(ca_file(&dir, &target));
        open(cfg).await.unwrap().close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        // The simulator's certificate names localhost and 127.0.0.1; 127.0.0.2 is
        // loopback too, but not a name the certificate vouches for.
        let target = sim(SimConfig {
            tls: true,
            listen: "127.0.0.2:0".parse().unwrap(),
            ..SimConfig::default()
        })
        .await;
        assert!(target.url().starts_with("https://127.0.0.2:"));
        let mut cfg = config(target.url());
        cfg.trust = TrustPolicy::CaFile(ca_file(&dir, &target));
        let err = open(cfg).await.unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("the certificate is for another host name"),
            "{msg}"
        );
        assert!(msg.contains("not valid for name \"127.0.0.2\""), "{msg}");
        assert!(msg.contains("fix the certificate's name"), "{msg}");
    })
    .await;
}

#[test]
fn exec_refuses_a_certificate_from_another_ca() {
    let target = Sim::start(&["--tls"]);
    let other = Sim::start(&["--tls", "--ca-out", "other.pem"]);
    common::wait_for(&other.path("other.pem"));
    let ca = other.path("other.pem");
    let out = exec(
        &target,
        SIM_PASSWORD,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "--raw",
            "--",
            "cmd.exe",
            "/c",
            "echo",
            "x",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("was not accepted") && err.contains("issued by another CA"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "");
}

/// What a raw loopback server saw, and how it answers.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<String>>,
}

/// A raw HTTP/1.1 server on loopback that answers every request with `answer`, once per
/// connection (then closes it), recording the requests' heads.
async fn raw_server(answer: Vec<u8>) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let Some((head, _)) = read_message(&mut sock, false).await else {
                    return;
                };
                record.requests.lock().unwrap().push(head);
                let _ = sock.write_all(&answer).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn basic_offered_over_http_is_never_answered_with_the_password() {
    bounded(async {
        let (addr, seen) = raw_server(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"WSMAN\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        )
        .await;
        let url = format!("http://{addr}/wsman");
        // Configured for NTLM: the server's offer of Basic does not change the scheme.
        let err = open(config(&url)).await.unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("the server offers only Basic"), "{msg}");
        assert_no_secret(&err);
        // Configured for Basic over plain HTTP: refused before anything is sent.
        let mut cfg = config(&url);
        cfg.auth = AuthMethod::Basic;
        let before = seen.requests.lock().unwrap().len();
        let err = open(cfg).await.unwrap_err();
        assert!(matches!(err, Error::InsecureBasic { .. }), "{err:?}");
        assert!(err.to_string().contains("refusing Basic authentication over plain HTTP"));
        let requests = seen.requests.lock().unwrap();
        assert_eq!(requests.len(), before, "nothing was sent");
        for head in requests.iter() {
            assert!(
                !head.to_ascii_lowercase().contains("authorization: basic"),
                "Basic credentials were sent: {head}"
            );
        }
    })
    .await;
}

/// Reads one HTTP message head and, if `body`, its Content-Length body. `None` at EOF.
async fn read_message(
    sock: &mut (impl tokio::io::AsyncRead + Unpin),
    body: bool,
) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).await.ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = content_length(&head).unwrap_or(0);
    let mut data = vec![0u8; if body { len } else { 0 }];
    sock.read_exact(&mut data).await.ok()?;
    if !body && len > 0 {
        let mut skip = vec![0u8; len];
        sock.read_exact(&mut skip).await.ok()?;
    }
    Some((head, data))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// An HTTP message: its head (status line and headers) and its body.
type Message = (String, Vec<u8>);

/// What the man in the middle does to the sealed responses, numbered from 0 in the order
/// they pass (the NTLM handshake's 401 and 200 are not sealed and pass untouched). It
/// returns the head and body to send instead.
type Rewrite = dyn Fn(usize, &str, &[u8]) -> (String, Vec<u8>) + Send + Sync;

/// A loopback proxy in front of `upstream` that hands every sealed response to `rewrite`
/// before passing it on.
async fn mitm(upstream: SocketAddr, rewrite: Arc<Rewrite>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sealed = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let (mut client_rd, mut client_wr) = client.into_split();
            let (mut server_rd, mut server_wr) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
            });
            let rewrite = rewrite.clone();
            let sealed = sealed.clone();
            tokio::spawn(async move {
                while let Some((head, body)) = read_message(&mut server_rd, true).await {
                    let (head, body) = if head.contains("multipart/encrypted") {
                        let n = sealed.fetch_add(1, Ordering::SeqCst);
                        rewrite(n, &head, &body)
                    } else {
                        (head, body)
                    };
                    if client_wr.write_all(head.as_bytes()).await.is_err()
                        || client_wr.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The offset of the 16-byte NTLM signature in a sealed body (after the 4-byte length
/// that follows the octet-stream part's header line).
fn signature_offset(body: &[u8]) -> usize {
    let marker = b"application/octet-stream\r\n";
    let at = body
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("a sealed body");
    at + marker.len() + 4
}

#[tokio::test]
async fn a_tampered_signature_or_payload_is_refused() {
    bounded(async {
        let target = sim(SimConfig::default()).await;
        for (what, flip_payload) in [("signature", false), ("payload", true)] {
            let rewrite: Arc<Rewrite> = Arc::new(move |_, head: &str, body: &[u8]| {
                let mut body = body.to_vec();
                let at = signature_offset(&body) + if flip_payload { 20 } else { 6 };
                body[at] ^= 0x01;
                (head.to_string(), body)
            });
            let proxy = mitm(target.addr(), rewrite).await;
            let err = open(config(&format!("http://{proxy}/wsman")))
                .await
                .unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, Error::Ntlm(exctl_ntlm::NtlmError::SignatureMismatch)),
                "{what}: {err:?}"
            );
            assert!(
                msg.contains("NTLM signature mismatch: the message was altered"),
                "{what}: {msg}"
            );
            assert_no_secret(&err);
        }
    })
    .await;
}

#[tokio::test]
async fn a_replayed_sealed_response_is_refused() {
    bounded(async {
        let target = sim(SimConfig::default()).await;
        // The first sealed response (Create's) is kept and sent again in place of the
        // second (Command's).
        let first: Arc<Mutex<Option<Message>>> = Arc::new(Mutex::new(None));
        let rewrite: Arc<Rewrite> = Arc::new(move |n, head: &str, body: &[u8]| {
            let mut first = first.lock().unwrap();
            match (n, first.as_ref()) {
                (0, _) => {
                    *first = Some((head.to_string(), body.to_vec()));
                    (head.to_string(), body.to_vec())
                }
                (1, Some((h, b))) => (h.clone(), b.clone()),
                _ => (head.to_string(), body.to_vec()),
            }
        });
        let proxy = mitm(target.addr(), rewrite).await;
        let shell = open(config(&format!("http://{proxy}/wsman")))
            .await
            .unwrap();
        let args = vec!["/c".to_string(), "echo hi".to_string()];
        let err = shell.run("cmd.exe", &args, None, None).await.unwrap_err();
        assert!(
            matches!(
                err.cause(),
                Error::Ntlm(exctl_ntlm::NtlmError::SequenceMismatch {
                    expected: 1,
                    found: 0
                })
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("NTLM sequence number mismatch: expected 1, got 0 (replayed"),
            "{msg}"
        );
        // The Command was sent; its real answer was swallowed: the host may run it.
        assert!(err.is_outcome_unknown(), "{err:?}");
        assert!(
            msg.contains("the Command request may have started the command"),
            "{msg}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_unsealed_answer_on_a_sealed_session_is_refused() {
    bounded(async {
        let target = sim(SimConfig::default()).await;
        let rewrite: Arc<Rewrite> = Arc::new(|_, _: &str, _: &[u8]| {
            let body = b"<html><body>Welcome</body></html>".to_vec();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            (head, body)
        });
        let proxy = mitm(target.addr(), rewrite).await;
        let err = open(config(&format!("http://{proxy}/wsman")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Encryption(_)), "{err:?}");
        assert!(
            err.to_string().contains(
                "the server answered with unencrypted content (text/html) on an encrypted session"
            ),
            "{err}"
        );
    })
    .await;
}

fn basic_http(endpoint: &str) -> ClientConfig {
    let mut cfg = config(endpoint);
    cfg.auth = AuthMethod::Basic;
    cfg.allow_basic_over_http = true;
    cfg
}

#[tokio::test]
async fn a_response_that_is_not_soap_is_refused() {
    bounded(async {
        for (body, expected) in [
            (
                "<html><body>IIS</body></html>",
                "the Create response is not a SOAP 1.2 envelope (root element 'html')",
            ),
            ("{\"ok\": true}", "the Create response is not valid XML"),
            (
                "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/></s:Envelope>",
                "the Create response has no SOAP body",
            ),
        ] {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let (addr, _) = raw_server(answer.into_bytes()).await;
            let err = open(basic_http(&format!("http://{addr}/wsman")))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    })
    .await;
}

/// A server that answers with a valid-looking start and then far more bytes than it
/// announced or than the client accepts.
async fn flooding_server(head: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_message(&mut sock, false).await.is_none() {
                    return;
                }
                let _ = sock.write_all(head.as_bytes()).await;
                let chunk = vec![b'A'; 64 * 1024];
                // At most 64 MiB, whatever the client does.
                for _ in 0..1024 {
                    let piece = if head.contains("chunked") {
                        let mut p = format!("{:x}\r\n", chunk.len()).into_bytes();
                        p.extend_from_slice(&chunk);
                        p.extend_from_slice(b"\r\n");
                        p
                    } else {
                        chunk.clone()
                    };
                    if sock.write_all(&piece).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn responses_larger_than_announced_or_allowed_are_refused() {
    bounded(async {
        // A body that goes on past its announced length: only the announced bytes are
        // read, and they are not a WS-Management response.
        let addr = flooding_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 100\r\n\r\n<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">",
        )
        .await;
        let err = open(basic_http(&format!("http://{addr}/wsman")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        assert!(err.to_string().contains("not valid XML"), "{err}");

        // A body that streams past the client's limit (twice MaxEnvelopeSize): cut off.
        let addr = flooding_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
        let err = open(basic_http(&format!("http://{addr}/wsman")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("the response is larger than the 307200 bytes allowed"),
            "{err}"
        );

        // A length announced beyond the limit: refused before reading the body.
        let addr = flooding_server(
            "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 67108864\r\n\r\n",
        )
        .await;
        let err = open(basic_http(&format!("http://{addr}/wsman")))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "the response announces 67108864 bytes, more than the 307200 bytes allowed"
            ),
            "{err}"
        );
    })
    .await;
}
