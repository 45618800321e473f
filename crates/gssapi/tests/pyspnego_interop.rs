//! Interoperability of exctl's Kerberos with pyspnego (pinned in
//! tests/peers/requirements.txt, `pyspnego[kerberos]`) against a real MIT KDC: our
//! initiator against its acceptor and its initiator against ours, by both mechanisms
//! (raw Kerberos and SPNEGO), then messages both ways in WinRM's layout
//! (`wrap_winrm`/`unwrap_winrm`: the wrap token's header apart, then the data).
//!
//! The realm is a throwaway one (`tests/it/common/kdc.rs` of the workspace). GSSAPI reads
//! `KRB5_CONFIG` from the environment of the process, so the test runs itself again as a
//! child with the realm's environment instead of changing its own. A missing KDC, Python
//! or pyspnego fails the test with what to install.

#[path = "../../../tests/it/common/kdc.rs"]
mod kdc;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use exctl_gssapi::{Acceptor, Credential, Initiator, InitiatorConfig, Mech, SecurityContext};

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Set in the child run: where the realm's keytab is.
const CHILD_MARK: &str = "EXCTL_GSSAPI_INTEROP_KEYTAB";

fn python() -> PathBuf {
    let py = std::env::var_os("EXCTL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../.venv/bin/python"
            ))
        });
    assert!(
        py.exists(),
        "Python interpreter {} not found (set EXCTL_PYTHON or create the venv): run scripts/test",
        py.display()
    );
    py
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    fn spawn(role: &str, protocol: &str) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/krb_peer.py");
        let mut child = Command::new(python())
            .args([script, role, protocol])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the Python peer starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = Peer {
            child,
            stdin,
            lines,
        };
        let ready = peer.read();
        assert!(
            !ready.starts_with("MISSING"),
            "pyspnego[kerberos] is not installed ({ready}): run scripts/test"
        );
        assert!(ready.starts_with("READY"), "unexpected: {ready}");
        peer
    }

    fn read(&mut self) -> String {
        self.lines
            .recv_timeout(REPLY_TIMEOUT)
            .expect("the Python peer answers in time")
    }

    fn call(&mut self, line: &str) -> Vec<String> {
        writeln!(self.stdin, "{line}").expect("write to the peer");
        let reply = self.read();
        assert!(!reply.starts_with("ERROR"), "{line:.40}: {reply}");
        reply.split_whitespace().map(str::to_string).collect()
    }

    fn step(&mut self, token: &[u8]) -> (Vec<u8>, bool) {
        let r = self.call(&format!("step {}", hex(token)));
        (unhex(&r[1]), r[2] == "1")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn mech(protocol: &str) -> Mech {
    if protocol == "kerberos" {
        Mech::Kerberos
    } else {
        Mech::Spnego
    }
}

/// Sealed messages both ways, in WinRM's layout, several in a row (sequence numbers).
fn messages_both_ways(ours: &mut dyn SecurityContext, theirs: &mut Peer) {
    for n in 0..3 {
        let text = format!(
            "<s:Envelope>message {n} ü {}</s:Envelope>",
            "x".repeat(n * 700)
        );
        let (header, data) = ours.wrap_winrm(text.as_bytes()).expect("wrap");
        assert_ne!(data, text.as_bytes(), "the data is encrypted");
        let plain = theirs.call(&format!("unwrap {} {}", hex(&header), hex(&data)));
        assert_eq!(unhex(&plain[1]), text.as_bytes());
        let reply = format!("reply {n} {}", "y".repeat(n * 300));
        let w = theirs.call(&format!("wrap {}", hex(reply.as_bytes())));
        let back = ours
            .unwrap_winrm(&unhex(&w[1]), &unhex(&w[2]))
            .expect("unwrap");
        assert_eq!(back, reply.as_bytes());
    }
}

fn our_client_against_pyspnego(protocol: &str) {
    let cred =
        Arc::new(Credential::initiator(Some(kdc::USER), None, mech(protocol)).expect("ticket"));
    let mut ours = Initiator::new(InitiatorConfig {
        target: "HTTP/localhost".into(),
        mech: mech(protocol),
        credential: cred,
        channel_bindings: None,
    })
    .expect("initiator");
    let mut theirs = Peer::spawn("server", protocol);
    let mut token = ours.step(None).expect("first token").token;
    loop {
        let (answer, their_done) = theirs.step(&token);
        if ours.is_complete() {
            assert!(their_done);
            break;
        }
        let step = ours.step(Some(&answer)).expect("our step");
        token = step.token;
        if step.complete && token.is_empty() {
            assert!(their_done, "{protocol}: both sides complete");
            break;
        }
    }
    assert_eq!(theirs.call("peer")[1], kdc::USER);
    messages_both_ways(&mut ours, &mut theirs);
}

fn pyspnego_client_against_ours(protocol: &str, keytab: &str) {
    let cred = Arc::new(Credential::acceptor(std::path::Path::new(keytab)).expect("keytab"));
    let mut ours = Acceptor::new(cred, None);
    let mut theirs = Peer::spawn("client", protocol);
    let (mut token, _) = theirs.step(&[]);
    loop {
        let step = ours.step(Some(&token)).expect("our acceptor step");
        let (next, their_done) = theirs.step(&step.token);
        if step.complete {
            assert!(
                their_done,
                "{protocol}: pyspnego verified our answer (mutual)"
            );
            break;
        }
        token = next;
    }
    assert_eq!(ours.peer(), Some(kdc::USER));
    messages_both_ways(&mut ours, &mut theirs);
}

/// Our initiator and acceptor with channel bindings: equal ones pass, others fail (the
/// acceptor of a host with CbtHardeningLevel=Strict passes its TLS binding).
fn channel_bindings_must_match(keytab: &str) {
    for (client, server, ok) in [
        (
            &b"tls-server-end-point:AAAA"[..],
            &b"tls-server-end-point:AAAA"[..],
            true,
        ),
        (
            &b"tls-server-end-point:AAAA"[..],
            &b"tls-server-end-point:BBBB"[..],
            false,
        ),
    ] {
        let cred =
            Arc::new(Credential::initiator(Some(kdc::USER), None, Mech::Kerberos).expect("ticket"));
        let mut ours = Initiator::new(InitiatorConfig {
            target: "HTTP/localhost".into(),
            mech: Mech::Kerberos,
            credential: cred,
            channel_bindings: Some(client.to_vec()),
        })
        .expect("initiator");
        let keys = Arc::new(Credential::acceptor(std::path::Path::new(keytab)).expect("keytab"));
        let mut acceptor = Acceptor::new(keys, Some(server.to_vec()));
        let token = ours.step(None).expect("token").token;
        assert_eq!(
            acceptor.step(Some(&token)).is_ok(),
            ok,
            "bindings equal: {ok}"
        );
    }
}

#[test]
fn kerberos_interop_with_pyspnego() {
    if let Ok(keytab) = std::env::var(CHILD_MARK) {
        // The child run, inside the realm's environment.
        for protocol in ["kerberos", "negotiate"] {
            our_client_against_pyspnego(protocol);
            pyspnego_client_against_ours(protocol, &keytab);
        }
        channel_bindings_must_match(&keytab);
        return;
    }
    let realm = kdc::Kdc::start();
    let cache = realm.path("ops.ccache");
    realm.kinit(&cache, "10h");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "kerberos_interop_with_pyspnego",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .envs(realm.env())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .env("KRB5_KTNAME", format!("FILE:{}", realm.keytab().display()))
        .env(CHILD_MARK, realm.keytab())
        .output()
        .expect("the test runs itself");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the interop run failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
