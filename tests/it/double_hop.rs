//! Issue 15, the double hop: on a host without CredSSP or Kerberos delegation (Windows'
//! default, `exctl sim` without `--delegation`), a WinRM logon cannot authenticate
//! onward to a domain controller, so the Exchange snap-in loaded in a WinRS
//! `powershell.exe` fails on Active Directory; a remote session imported with an explicit
//! credential (`access: remote-session`) works, as does Exchange's own endpoint.

use std::path::Path;
use std::process::{Output, Stdio};

use crate::common;

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, text};

const IMAP: &str = "targets: [EXCH01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n";

/// A repository of one host on `sim` reached by `access`.
fn repo(dir: &Path, sim: &Sim, access: &str) {
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    access: {access}\n",
            sim.url
        ),
    )
    .expect("inventory written");
    std::fs::write(dir.join("imap.yaml"), IMAP).expect("manifest written");
}

fn run(dir: &Path, args: &[&str]) -> Output {
    exctl()
        .args(args)
        .current_dir(dir)
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs")
}

#[test]
fn the_snapin_meets_the_double_hop_and_a_remote_session_does_not() {
    let sim = Sim::start_without_delegation(&["--computer-name", "EXCH01"]);
    assert_eq!(sim.state()["sections"]["host"]["delegation"], false);
    let dir = tempfile::tempdir().expect("temp dir");

    repo(dir.path(), &sim, "snapin");
    let out = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "Active Directory operation failed on . The supplied credential for 'CONTOSO\\Administrator' is invalid."
        ),
        "{all}"
    );
    assert!(!all.contains(SIM_PASSWORD), "{all}");
    // The snap-in loaded; its cmdlets are what failed.
    let ex = sim.exchange_state();
    assert_eq!(ex["cmdlets"]["Add-PSSnapin"], 1, "{ex}");

    repo(dir.path(), &sim, "remote-session");
    let out = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("MaxConnectionsPerUser"), "{all}");
    let ex = sim.exchange_state();
    assert_eq!(ex["cmdlets"]["Import-PSSession"], 1, "{ex}");
}

/// The same across PowerShell remoting on `/wsman`: the snap-in loads in the pool's
/// runspace and its cmdlets fail on Active Directory, Windows' own cmdlets answer, and
/// Exchange's endpoint answers Get-ImapSettings.
#[test]
fn psrp_on_wsman_meets_the_double_hop_and_the_exchange_endpoint_does_not() {
    let sim = Sim::start_without_delegation(&[]);
    let out = common::exec_ok(
        &sim,
        &[
            "--psrp",
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; (Get-Service -Name MSExchangeIMAP4).Status; Get-ImapSettings -Server EXCH01",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "Running\n");
    let err = text(&out.stderr);
    assert!(
        err.contains("The supplied credential for 'CONTOSO\\Administrator' is invalid."),
        "{err}"
    );
    assert!(err.contains("ADInvalidCredentialException"), "{err}");

    let out = common::exec_ok(
        &sim,
        &[
            "--psrp",
            "--path",
            "PowerShell/",
            "--configuration",
            "Microsoft.Exchange",
            "--command",
            "Get-ImapSettings",
            "--",
            "-Server",
            "EXCH01",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("MaxConnectionsPerUser"));
}
