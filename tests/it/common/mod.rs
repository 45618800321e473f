//! Shared pieces of the end-to-end tests: the real `exctl` binary, and a simulator it
//! serves (`exctl sim`) on a free loopback port, stopped when the test ends.

#![allow(dead_code)]

pub mod kdc;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

pub const SIM_USER: &str = "CONTOSO\\Administrator";
pub const SIM_PASSWORD: &str = "Sim-Pa55word!";
/// A local account of the simulated host (its computer name is `EXCH01` by default):
/// the only kind Windows' Basic authentication accepts.
pub const LOCAL_USER: &str = "EXCH01\\admin";

pub fn exctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exctl"));
    // Apply journals go to a scratch place, not the home directory of whoever runs tests.
    c.env_remove("EXCTL_PASSWORD").env("NO_COLOR", "1").env(
        "EXCTL_JOURNAL_DIR",
        std::env::temp_dir().join("exctl-test-journals"),
    );
    c
}

/// A running `exctl sim`.
pub struct Sim {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The simulator's stderr, when started with [`Sim::start_with_stderr`].
    pub stderr: Option<BufReader<ChildStderr>>,
}

impl Sim {
    /// A simulator set up for delegation (`--delegation`): most tests plan and apply
    /// through the snap-in (exctl's default access until `psrp` becomes it), which meets
    /// the double hop on a host without it.
    pub fn start(extra: &[&str]) -> Sim {
        Sim::spawn(extra, false)
    }

    /// A simulator as Windows is by default, without delegation: the snap-in's cmdlets
    /// fail on Active Directory in WinRM sessions (the double hop).
    pub fn start_without_delegation(extra: &[&str]) -> Sim {
        Sim::spawn_env_delegation(extra, false, &[], false)
    }

    /// Like [`Sim::start`], keeping the simulator's stderr readable.
    pub fn start_with_stderr(extra: &[&str]) -> Sim {
        Sim::spawn(extra, true)
    }

    /// Like [`Sim::start`], with more environment variables (a test realm's
    /// `KRB5_CONFIG`).
    pub fn start_with_env(extra: &[&str], env: &[(String, String)]) -> Sim {
        Sim::spawn_env(extra, false, env)
    }

    fn spawn(extra: &[&str], keep_stderr: bool) -> Sim {
        Sim::spawn_env(extra, keep_stderr, &[])
    }

    fn spawn_env(extra: &[&str], keep_stderr: bool, env: &[(String, String)]) -> Sim {
        Sim::spawn_env_delegation(extra, keep_stderr, env, true)
    }

    fn spawn_env_delegation(
        extra: &[&str],
        keep_stderr: bool,
        env: &[(String, String)],
        delegation: bool,
    ) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = exctl()
            .args(["sim", "--listen", "127.0.0.1:0"])
            .args(delegation.then_some("--delegation"))
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if keep_stderr {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("exctl sim starts");
        let stderr = child.stderr.take().map(BufReader::new);
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the simulator prints its URL");
        assert!(line.starts_with("http"), "unexpected first line: {line:?}");
        Sim {
            child,
            url: line.trim().to_string(),
            dir,
            stderr,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The simulator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the simulator to exit (after a signal), with its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// The `/sim/state` document.
    pub fn state(&self) -> serde_json::Value {
        let url = self.url.replace("/wsman", "/sim/state");
        serde_json::from_str(&http_get(&url)).expect("/sim/state is JSON")
    }

    /// The Exchange section of `/sim/state` (PowerShell processes, snap-in loads,
    /// cmdlets by name, services).
    pub fn exchange_state(&self) -> serde_json::Value {
        self.state()["sections"]["exchange"].clone()
    }
}

/// A plain HTTP/1.1 GET of a loopback `http://` URL (the simulator's `/sim/state`),
/// with `Connection: close`; returns the body.
pub fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(authority).expect("the simulator accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("request written");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("response read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The simulator answers with Content-Length and closes: the body is the rest.
    body.to_string()
}

impl Sim {
    /// Adds fault rules (`exctl_sim::inject`) to the running simulator.
    pub fn inject(&self, rules_json: &str) {
        let url = self.url.replace("/wsman", "/sim/faults");
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut stream = std::net::TcpStream::connect(authority).expect("the simulator accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout set");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{rules_json}",
            rules_json.len()
        )
        .expect("request written");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `exctl exec` against `sim` with the password in the environment.
pub fn exec(sim: &Sim, password: &str, args: &[&str]) -> Output {
    exec_as(sim, SIM_USER, password, args)
}

/// [`exec`] as `user` (a local account for Basic: [`LOCAL_USER`]).
pub fn exec_as(sim: &Sim, user: &str, password: &str, args: &[&str]) -> Output {
    exctl()
        .args(["exec", "--endpoint", &sim.url, "--user", user])
        .args(args)
        .env("EXCTL_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .expect("exctl exec runs")
}

/// [`exec`] with the simulator's password.
pub fn exec_ok(sim: &Sim, args: &[&str]) -> Output {
    exec(sim, SIM_PASSWORD, args)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn wait_for(path: &Path) {
    for _ in 0..100 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not appear", path.display());
}

/// The inventory lines (indented by `indent` spaces) that send a host's Exchange cmdlets
/// to the simulator at `url` under `access: psrp`, the default: its own `/PowerShell/`
/// and NTLM, which the simulator takes there (a real PowerShell virtual directory takes
/// Kerberos unless configured otherwise).
pub fn exchange_endpoint(url: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}session_uri: {}\n{pad}exchange_auth: ntlm\n",
        url.replace("/wsman", "/PowerShell/")
    )
}

/// The Cisco UCCX checklist for one host, EXCH01: what the apply and psrp tests converge.
pub const UCCX: &str = r#"targets: [EXCH01]
ad_permissions:
  - target: organization
    user: CONTOSO\uccx-agent
    extended_rights: [View Information Store status]
throttling_policies:
  UCCXThrottlingPolicy:
    IMAPMaxConcurrency: unlimited
    IMAPPercentTimeInAD: unlimited
    IMAPPercentTimeInCAS: unlimited
    IMAPPercentTimeInMailboxRPC: unlimited
throttling_associations:
  - identity: uccx-agent
    policy: UCCXThrottlingPolicy
receive_connectors:
  "*":
    MaxInboundConnectionPerSource: unlimited
    MaxInboundConnectionPercentagePerSource: 100
imap_settings:
  MaxConnectionsPerUser: 250
  MaxConnectionFromSingleIP: 250
registry_values:
  - path: 'HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem'
    name: Maximum Allowed Service Sessions Per User
    type: dword
    value: 250
"#;
