//! Interoperability with pyspnego (an independent NTLM implementation, pinned in
//! tests/peers/requirements.txt): our Initiator against its acceptor, its initiator against our
//! Acceptor, then sealed and signed messages both ways with WinRM's framing (`wrap_winrm` /
//! `unwrap_winrm`: 16-byte signature header, sealed body).
//!
//! The peer is `tests/peers/pyspnego_peer.py`, driven line by line over stdin/stdout. Its
//! interpreter is `$EXCTL_PYTHON`, else `<workspace>/.venv/bin/python`; when either or
//! pyspnego is missing the tests fail and say to run `scripts/test`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exctl_ntlm::{Acceptor, AcceptorConfig, Initiator, InitiatorConfig, NtlmError, Session};

/// How long one reply of the peer may take before the test fails instead of hanging.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Pässword-01!";
const CBT: &[u8] = b"tls-server-end-point:0123456789abcdef0123456789abcdef";

fn workspace() -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    // Resolve the `..`s here: Python finds its venv lexically from the interpreter's path.
    std::fs::canonicalize(&path).unwrap_or(path)
}

fn python() -> PathBuf {
    let python = std::env::var_os("EXCTL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "Python interpreter {} not found (set EXCTL_PYTHON or create the venv): run scripts/test, \
         which creates .venv and installs tests/peers/requirements.txt",
        python.display()
    );
    python
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    if text == "-" {
        return Vec::new();
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("peer sent bad hex"))
        .collect()
}

/// A credential file for pyspnego's acceptor, removed when dropped.
struct UserFile(PathBuf);

impl UserFile {
    fn new(lines: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "exctl-ntlm-users-{}-{}.txt",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, lines).expect("write NTLM_USER_FILE");
        UserFile(path)
    }
}

impl Drop for UserFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    _user_file: Option<UserFile>,
}

impl Peer {
    fn spawn(role: &str, env: &[(&str, &str)], user_file: Option<UserFile>) -> Peer {
        let script = workspace().join("crates/ntlm/tests/peers/pyspnego_peer.py");
        let mut command = Command::new(python());
        command
            .arg(&script)
            .arg(role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Defaults of pyspnego's NTLM: NTLMv2 only (level 3), fixed workstation name.
            .env_remove("LM_COMPAT_LEVEL")
            .env_remove("NTLM_USER_FILE")
            .env_remove("PEER_CBT_HEX")
            .env("NETBIOS_COMPUTER_NAME", "PYCLIENT");
        if let Some(file) = &user_file {
            command.env("NTLM_USER_FILE", &file.0);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; run scripts/test", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        let mut peer = Peer {
            child,
            stdin,
            lines,
            stderr,
            _user_file: user_file,
        };
        let ready = peer.read_line();
        if let Some(reason) = ready.strip_prefix("MISSING ") {
            panic!(
                "pyspnego is not installed for {} ({reason}): run scripts/test, which installs \
                 tests/peers/requirements.txt into .venv",
                python().display()
            );
        }
        assert!(
            ready.starts_with("READY "),
            "unexpected first line: {ready}"
        );
        peer
    }

    fn read_line(&mut self) -> String {
        match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                // Give the stderr reader a moment to collect the traceback.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "the pyspnego peer did not answer ({e:?}); its stderr:\n{}\nIf pyspnego is \
                     missing, run scripts/test.",
                    self.stderr.lock().unwrap()
                );
            }
        }
    }

    /// Sends one command and returns the reply.
    fn call(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("write to the peer");
        self.stdin.flush().expect("flush to the peer");
        self.read_line()
    }

    /// Sends one command whose reply must start with `expected`; returns the reply's words.
    fn expect(&mut self, command: &str, expected: &str) -> Vec<String> {
        let reply = self.call(command);
        let mut words = reply.split(' ').map(str::to_string);
        let first = words.next().unwrap_or_default();
        assert_eq!(
            first,
            expected,
            "peer replied {reply:?} to {}",
            command.chars().take(80).collect::<String>()
        );
        words.collect()
    }

    /// Feeds a token to the peer's `step`; returns its output token and whether it completed.
    fn step(&mut self, token: &[u8]) -> (Vec<u8>, bool) {
        let words = self.expect(&format!("STEP {}", hex(token)), "TOKEN");
        (unhex(&words[0]), words[1] == "1")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "QUIT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn our_client(password: &str, channel_bindings: Option<&[u8]>) -> Initiator {
    Initiator::new(InitiatorConfig {
        domain: "EXCTL".into(),
        user: "alice".into(),
        password: password.into(),
        workstation: Some("ADMINPC".into()),
        channel_bindings: channel_bindings.map(<[u8]>::to_vec),
        target_spn: Some("HTTP/ex01.exctl.test".into()),
    })
}

fn our_server(required_channel_bindings: Option<&[u8]>) -> Acceptor {
    Acceptor::new(AcceptorConfig {
        accounts: vec![("EXCTL".into(), "alice".into(), PASSWORD.into())],
        netbios_domain: "EXCTL".into(),
        netbios_computer: "EX01".into(),
        dns_domain: "exctl.test".into(),
        dns_computer: "ex01.exctl.test".into(),
        required_channel_bindings: required_channel_bindings.map(<[u8]>::to_vec),
    })
}

fn pyspnego_server(channel_bindings: Option<&[u8]>) -> Peer {
    let cbt = channel_bindings.map(hex);
    let env: Vec<(&str, &str)> = cbt.iter().map(|c| ("PEER_CBT_HEX", c.as_str())).collect();
    Peer::spawn(
        "accept",
        &env,
        Some(UserFile::new(&format!("EXCTL:alice:{PASSWORD}\n"))),
    )
}

fn pyspnego_client(
    password: &str,
    channel_bindings: Option<&[u8]>,
    extra: &[(&str, &str)],
) -> Peer {
    let cbt = channel_bindings.map(hex);
    let mut env = vec![("PEER_USER", "EXCTL\\alice"), ("PEER_PASSWORD", password)];
    if let Some(c) = &cbt {
        env.push(("PEER_CBT_HEX", c));
    }
    env.extend_from_slice(extra);
    Peer::spawn("initiate", &env, None)
}

/// Our initiator through the three legs against pyspnego's acceptor; returns our initiator
/// and pyspnego's verdict on the AUTHENTICATE message (None when it accepted).
fn authenticate_to_pyspnego(client: &mut Initiator, server: &mut Peer) -> Option<String> {
    let (challenge, complete) = server.step(&client.negotiate_message());
    assert!(!complete);
    let authenticate = client
        .authenticate_message(&challenge)
        .expect("pyspnego's CHALLENGE is acceptable");
    let reply = server.call(&format!("STEP {}", hex(&authenticate)));
    if reply.starts_with("ERR ") {
        return Some(reply);
    }
    assert_eq!(reply, "TOKEN - 1", "pyspnego did not complete");
    None
}

/// pyspnego's initiator through the three legs against our acceptor.
fn authenticate_to_us(client: &mut Peer, server: &mut Acceptor) -> Result<String, NtlmError> {
    let (negotiate, complete) = client.step(&[]);
    assert!(!complete);
    let challenge = server.challenge_message(&negotiate)?;
    let (authenticate, complete) = client.step(&challenge);
    assert!(
        complete,
        "pyspnego's initiator should be done after AUTHENTICATE"
    );
    server
        .accept(&authenticate)
        .map(|u| format!("{}\\{}", u.domain, u.user))
}

fn message(i: usize) -> Vec<u8> {
    let text = format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>{}</s:Body></s:Envelope>",
        "Get-Mailbox -Identity ümlaut; ".repeat(i % 40)
    );
    text.into_bytes()
}

/// Sealed and signed traffic both ways between our session and the peer.
fn exchange_messages(ours: &mut Session, peer: &mut Peer) {
    for i in 0..30 {
        let request = message(i);
        let (signature, sealed) = ours.seal(&request);
        let plain = peer.expect(
            &format!("UNWRAP {} {}", hex(&signature), hex(&sealed)),
            "PLAIN",
        );
        assert_eq!(
            unhex(&plain[0]),
            request,
            "pyspnego unsealed message {i} differently"
        );

        let reply = message(i + 7);
        let wrapped = peer.expect(&format!("WRAP {}", hex(&reply)), "WRAPPED");
        let unsealed = ours
            .unseal(&unhex(&wrapped[0]), &unhex(&wrapped[1]))
            .unwrap_or_else(|e| panic!("our unseal of pyspnego's message {i}: {e}"));
        assert_eq!(unsealed, reply);

        if i % 6 == 0 {
            let signature = ours.sign(b"signed by exctl");
            peer.expect(
                &format!("VERIFY {} {}", hex(b"signed by exctl"), hex(&signature)),
                "VERIFIED",
            );
            let words = peer.expect(&format!("SIGN {}", hex(b"signed by pyspnego")), "SIGNATURE");
            ours.verify(b"signed by pyspnego", &unhex(&words[0]))
                .expect("pyspnego's signature verifies");
        }
    }
    // A large message, as a big WinRM response would be.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let wrapped = peer.expect(&format!("WRAP {}", hex(&big)), "WRAPPED");
    assert_eq!(
        ours.unseal(&unhex(&wrapped[0]), &unhex(&wrapped[1]))
            .unwrap(),
        big
    );

    // pyspnego refuses a message we altered, and we refuse one it sent twice.
    let (signature, mut sealed) = ours.seal(b"tamper with me");
    sealed[3] ^= 1;
    let reply = peer.call(&format!("UNWRAP {} {}", hex(&signature), hex(&sealed)));
    assert!(
        reply.starts_with("ERR "),
        "pyspnego accepted an altered message: {reply}"
    );
    let wrapped = peer.expect(&format!("WRAP {}", hex(b"once")), "WRAPPED");
    ours.unseal(&unhex(&wrapped[0]), &unhex(&wrapped[1]))
        .unwrap();
    assert!(matches!(
        ours.unseal(&unhex(&wrapped[0]), &unhex(&wrapped[1])),
        Err(NtlmError::SequenceMismatch { .. })
    ));
}

#[test]
fn our_initiator_authenticates_to_pyspnego_and_seals_both_ways() {
    let mut server = pyspnego_server(None);
    let mut client = our_client(PASSWORD, None);
    assert_eq!(authenticate_to_pyspnego(&mut client, &mut server), None);
    let principal = server.expect("INFO", "INFO");
    assert_eq!(principal[0].to_lowercase(), "exctl\\alice");
    let mut session = client.into_session().expect("session");
    exchange_messages(&mut session, &mut server);
}

#[test]
fn pyspnego_refuses_our_initiator_with_a_wrong_password() {
    let mut server = pyspnego_server(None);
    let mut client = our_client("wrong", None);
    let verdict = authenticate_to_pyspnego(&mut client, &mut server);
    assert!(
        verdict
            .as_deref()
            .is_some_and(|v| v.contains("Invalid NTLM response")),
        "{verdict:?}"
    );
}

#[test]
fn pyspnego_checks_our_channel_bindings() {
    let mut server = pyspnego_server(Some(CBT));
    let mut client = our_client(PASSWORD, Some(CBT));
    assert_eq!(authenticate_to_pyspnego(&mut client, &mut server), None);

    let mut server = pyspnego_server(Some(CBT));
    let mut client = our_client(PASSWORD, Some(b"tls-server-end-point:another certificate"));
    let verdict = authenticate_to_pyspnego(&mut client, &mut server);
    assert!(
        verdict
            .as_deref()
            .is_some_and(|v| v.contains("BadBindings")),
        "{verdict:?}"
    );
}

#[test]
fn pyspnego_initiator_authenticates_to_our_acceptor_and_seals_both_ways() {
    let mut client = pyspnego_client(PASSWORD, None, &[]);
    let mut server = our_server(None);
    assert_eq!(
        authenticate_to_us(&mut client, &mut server).expect("pyspnego is accepted"),
        "EXCTL\\alice"
    );
    let mut session = server.into_session().expect("session");
    exchange_messages(&mut session, &mut client);
}

#[test]
fn our_acceptor_refuses_pyspnego_with_a_wrong_password() {
    let mut client = pyspnego_client("Password-01!", None, &[]);
    let mut server = our_server(None);
    let result = authenticate_to_us(&mut client, &mut server);
    assert!(
        matches!(result, Err(NtlmError::BadCredentials { .. })),
        "{result:?}"
    );
}

#[test]
fn our_acceptor_checks_pyspnego_channel_bindings() {
    let mut client = pyspnego_client(PASSWORD, Some(CBT), &[]);
    let mut server = our_server(Some(CBT));
    let result = authenticate_to_us(&mut client, &mut server);
    assert!(result.is_ok(), "{result:?}");

    let mut client = pyspnego_client(PASSWORD, Some(b"tls-server-end-point:elsewhere"), &[]);
    let mut server = our_server(Some(CBT));
    let result = authenticate_to_us(&mut client, &mut server);
    assert!(
        matches!(result, Err(NtlmError::ChannelBindingMismatch(_))),
        "{result:?}"
    );

    // pyspnego without bindings omits the AV pair entirely.
    let mut client = pyspnego_client(PASSWORD, None, &[]);
    let mut server = our_server(Some(CBT));
    let result = authenticate_to_us(&mut client, &mut server);
    assert!(
        matches!(result, Err(NtlmError::ChannelBindingMismatch(m)) if m.contains("no channel bindings")),
        "{result:?}"
    );
}

#[test]
fn our_acceptor_refuses_pyspnego_in_ntlmv1_modes() {
    // LmCompatibilityLevel 0: no extended session security at all; refused at NEGOTIATE.
    let mut client = pyspnego_client(PASSWORD, None, &[("LM_COMPAT_LEVEL", "0")]);
    let mut server = our_server(None);
    let result = authenticate_to_us(&mut client, &mut server);
    assert!(
        matches!(&result, Err(NtlmError::Unsupported(m)) if m.contains("EXTENDED_SESSIONSECURITY")),
        "{result:?}"
    );

    // Level 2: NTLMv1 responses with extended session security; refused at AUTHENTICATE.
    let mut client = pyspnego_client(PASSWORD, None, &[("LM_COMPAT_LEVEL", "2")]);
    let mut server = our_server(None);
    let result = authenticate_to_us(&mut client, &mut server);
    assert!(
        matches!(&result, Err(NtlmError::Unsupported(m)) if m.contains("NTLMv1")),
        "{result:?}"
    );
}
