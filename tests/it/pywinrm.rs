//! An independent client against `exctl sim`'s PowerShell: pywinrm's `run_ps` (which
//! sends `powershell -encodedcommand ...` over NTLM with message encryption, in code page
//! 437) runs Exchange cmdlets, and its CLIXML error cleaning reads the simulator's stderr.
//!
//! The interpreter is `$EXCTL_PYTHON`, else `<workspace>/.venv/bin/python` (`scripts/test`
//! creates it from `tests/peers/requirements.txt`). A missing interpreter or module fails
//! the test; it never skips.

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{SIM_PASSWORD, Sim};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EXCTL_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
}

fn run_python(script: &str, args: &[&str]) -> (i32, String, String) {
    let py = python();
    assert!(
        py.exists(),
        "Python peer interpreter {} not found: run scripts/test (it creates .venv and installs \
         tests/peers/requirements.txt), or set EXCTL_PYTHON",
        py.display()
    );
    let mut cmd = Command::new(&py);
    cmd.arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A proxy or CA bundle from the environment must not redirect loopback traffic.
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let out = cmd.output().expect("python runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const RUN_PS: &str = r#"
import sys, winrm
url, password = sys.argv[1], sys.argv[2]
s = winrm.Session(url, auth=("CONTOSO\\Administrator", password), transport="ntlm",
                  message_encryption="always")
r = s.run_ps("Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010\n"
             "$s = Get-ImapSettings -Server EXCH01\n"
             "Write-Output ('imap ' + $s.MaxConnectionsPerUser + ' ' + (Get-Mailbox uccx-agent).Alias)")
print(repr((r.std_out, r.std_err, r.status_code)))
r = s.run_ps("Write-Output 'before'; Get-Nothing -Bogus 1")
print(repr((r.std_out, r.status_code)))
print(r.std_err.decode("utf-8"))
"#;

#[test]
fn pywinrm_run_ps_over_ntlm_with_encryption() {
    let (code, _, err) = run_python("import winrm", &[]);
    assert_eq!(
        code,
        0,
        "pywinrm is not installed for {}: run scripts/test\n{err}",
        python().display()
    );
    let sim = Sim::start(&["--time-scale", "0.001"]);
    let (code, out, err) = run_python(RUN_PS, &[&sim.url, SIM_PASSWORD]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(r"(b'imap 16 uccx-agent\r\n', b'', 0)"),
        "stdout: {out}\nstderr: {err}"
    );
    assert_eq!(lines.next(), Some(r"(b'before\r\n', 1)"), "{out}");
    // pywinrm turned the CLIXML into PowerShell's error text.
    let cleaned: String = lines.collect::<Vec<_>>().join("\n");
    assert!(
        cleaned.contains("The term 'Get-Nothing' is not recognized as the name of a cmdlet"),
        "{cleaned}"
    );
    assert!(
        cleaned.contains("FullyQualifiedErrorId : CommandNotFoundException"),
        "{cleaned}"
    );
    assert!(
        !cleaned.contains("CLIXML") && !cleaned.contains("_x000D_"),
        "{cleaned}"
    );
    let state = sim.state();
    assert_eq!(state["auth_failures"], 0);
    assert_eq!(state["shells_open"], 0, "pywinrm closes its shells");
    let exchange = &state["sections"]["exchange"];
    assert_eq!(exchange["powershell_processes"], 2);
    assert_eq!(exchange["exchange_sessions"], 1);
    assert_eq!(exchange["cmdlets"]["Get-Mailbox"], 1);
}
