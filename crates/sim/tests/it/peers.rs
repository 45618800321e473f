//! Independent clients against the simulator: pywinrm 0.5.0 and pypsrp 0.9.1 (from
//! `tests/peers/requirements.txt`). They implement NTLM, sealing and WinRS on their own, so
//! a simulator that satisfies them speaks the protocol the way Windows does, not the way
//! our client happens to.
//!
//! The interpreter is `$EXCTL_PYTHON`, else `<workspace>/.venv/bin/python`. A missing
//! interpreter or module fails the test (with a hint to run `scripts/test`); it never
//! skips, so CI cannot go green without these checks.

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use exctl_sim::{AuthScheme, SimConfig};

const PEER_TIMEOUT: Duration = Duration::from_secs(120);

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EXCTL_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/python"
    ))
}

/// Runs a Python snippet with arguments; returns (exit status, stdout, stderr).
async fn run_python(script: &str, args: &[&str]) -> (i32, String, String) {
    let py = python();
    assert!(
        py.exists(),
        "Python peer interpreter {} not found: run scripts/test (it creates .venv and installs \
         tests/peers/requirements.txt), or set EXCTL_PYTHON",
        py.display()
    );
    let mut cmd = tokio::process::Command::new(&py);
    cmd.arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // A proxy or CA bundle from the environment must not redirect loopback traffic.
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let child = cmd.spawn().expect("python starts");
    let out = tokio::time::timeout(PEER_TIMEOUT, child.wait_with_output())
        .await
        .expect("python peer finished within its timeout")
        .expect("python peer ran");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn require_modules() {
    let (code, _, err) = run_python("import winrm, pypsrp, spnego", &[]).await;
    assert_eq!(
        code,
        0,
        "the Python peers (pywinrm, pypsrp, pyspnego) are not installed for {}: run scripts/test\n{err}",
        python().display()
    );
}

const PYWINRM_RUN: &str = r#"
import sys, winrm
url, transport, password = sys.argv[1], sys.argv[2], sys.argv[3]
# Basic takes local accounts only: the host's own Administrator.
user = "EXCH01\\Administrator" if transport == "basic" else "CONTOSO\\Administrator"
kwargs = dict(auth=(user, password), transport=transport)
if transport == "ntlm" and url.startswith("http:"):
    kwargs["message_encryption"] = "always"
if len(sys.argv) > 4:
    kwargs["server_cert_validation"] = "validate"
    kwargs["ca_trust_path"] = sys.argv[4]
s = winrm.Session(url, **kwargs)
try:
    r = s.run_cmd("cmd.exe", ["/c", "echo", "hi"])
except winrm.exceptions.InvalidCredentialsError as e:
    print("auth-error:", e)
    sys.exit(0)
print(repr((r.std_out, r.std_err, r.status_code)))
"#;

#[tokio::test]
async fn pywinrm_ntlm_with_message_encryption_over_http() {
    require_modules().await;
    let sim = common::start(SimConfig::default()).await;
    let (code, out, err) = run_python(PYWINRM_RUN, &[sim.url(), "ntlm", "P@ssw0rd!"]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), r"(b'hi\r\n', b'', 0)", "stderr: {err}");
    let state = sim.state().snapshot();
    assert_eq!(state.shells_created, 1);
    assert_eq!(state.shells_open, 0, "pywinrm closes its shell");
    assert_eq!(state.auth_failures, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn pywinrm_basic_over_https_with_the_ca() {
    require_modules().await;
    let sim = common::start(common::local(SimConfig {
        tls: true,
        ..SimConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().expect("CA")).expect("CA written");
    let ca = ca.to_string_lossy().into_owned();
    let (code, out, err) = run_python(PYWINRM_RUN, &[sim.url(), "basic", "P@ssw0rd!", &ca]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), r"(b'hi\r\n', b'', 0)", "stderr: {err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn pywinrm_ntlm_over_https_with_channel_binding_required() {
    require_modules().await;
    let sim = common::start(SimConfig {
        tls: true,
        cbt_strict: true,
        auth: vec![AuthScheme::Ntlm],
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().expect("CA")).expect("CA written");
    let ca = ca.to_string_lossy().into_owned();
    let (code, out, err) = run_python(PYWINRM_RUN, &[sim.url(), "ntlm", "P@ssw0rd!", &ca]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), r"(b'hi\r\n', b'', 0)", "stderr: {err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn pywinrm_wrong_password_is_an_auth_error() {
    require_modules().await;
    let sim = common::start(SimConfig::default()).await;
    let (code, out, err) = run_python(PYWINRM_RUN, &[sim.url(), "ntlm", "wrong"]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.starts_with("auth-error:"),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(sim.state().snapshot().auth_failures >= 1);
    assert_eq!(sim.state().snapshot().shells_created, 0);
    sim.shutdown().await;
}

const PYPSRP_WINRS: &str = r#"
import sys
from pypsrp.wsman import WSMan
from pypsrp.shell import Process, SignalCode, WinRS
port = int(sys.argv[1])
wsman = WSMan("127.0.0.1", port=port, username="CONTOSO\\Administrator", password="P@ssw0rd!",
              ssl=False, auth="ntlm", encryption="always", operation_timeout=5, read_timeout=15)
with wsman, WinRS(wsman) as shell:
    p = Process(shell, "cmd.exe", ["/c", "echo", "hi"])
    p.invoke()
    p.signal(SignalCode.CTRL_C)
    print(repr((p.stdout, p.stderr, p.rc)))
    p = Process(shell, "cmd.exe", ["/c", "more"])
    p.begin_invoke()
    p.send(b"line one\r\n", end=False)
    p.send(b"line two\r\n", end=True)
    p.end_invoke()
    p.signal(SignalCode.TERMINATE)
    print(repr((p.stdout, p.stderr, p.rc)))
    p = Process(shell, "cmd.exe", ["/c", "timeout", "/t", "7"])
    p.invoke()
    print(repr((p.stdout, p.stderr, p.rc)))
"#;

#[tokio::test]
async fn pypsrp_winrs_with_ntlm_encryption_stdin_and_timeouts() {
    require_modules().await;
    let sim = common::start(SimConfig::default()).await;
    let port = sim.addr().port().to_string();
    let (code, out, err) = run_python(PYPSRP_WINRS, &[&port]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            r"(b'hi\r\n', b'', 0)",
            r"(b'line one\r\nline two\r\n', b'', 0)",
            r"(b'', b'', 0)",
        ],
        "stderr: {err}"
    );
    let state = sim.state().snapshot();
    // The 7 s wait with a 5 s OperationTimeout costs pypsrp one TimedOut it shrugs off.
    assert_eq!(state.faults.get("2150858793"), Some(&1), "{state:?}");
    assert_eq!(state.shells_open, 0);
    sim.shutdown().await;
}
