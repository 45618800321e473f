//! `exctl exec` in PowerShell mode end to end: the real binary's stdin runner against the
//! simulator's `powershell.exe` (NTLM with message encryption over HTTP), with stderr
//! decoded from CLIXML and the exit code passed through.

use crate::common;

use common::{Sim, exec_ok, text};

fn sim() -> Sim {
    Sim::start(&["--time-scale", "0.001"])
}

#[test]
fn write_output_reaches_stdout() {
    let sim = sim();
    let out = exec_ok(&sim, &["--", "Write-Output", "'hello", "world'"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "hello world\r\n");
    assert_eq!(out.status.code(), Some(0));
    let state = sim.exchange_state();
    assert_eq!(state["powershell_processes"], 1);
    assert_eq!(state["exchange_sessions"], 0);
}

#[test]
fn a_script_of_one_megabyte_runs_from_stdin() {
    let sim = sim();
    let script = format!("$s = '{}'\n$s.Length\n", "x".repeat(1 << 20));
    let file = sim.path("big.ps1");
    std::fs::write(&file, script).expect("script written");
    let out = exec_ok(&sim, &["--file", file.to_str().unwrap()]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("1048576\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    let state = sim.state();
    assert_eq!(state["shells_created"], 1);
    assert_eq!(state["commands"], 1);
    // The script went over stdin in several Send requests (150 KB envelopes).
    assert!(state["actions"]["Send"].as_u64().unwrap() > 5, "{state}");
}

#[test]
fn exit_passes_the_code_through() {
    let sim = sim();
    let out = exec_ok(&sim, &["--", "Write-Output", "x;", "exit", "3"]);
    assert_eq!(text(&out.stdout), "x\r\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn an_unknown_cmdlet_fails_with_powershells_error_text() {
    let sim = sim();
    let out = exec_ok(&sim, &["--", "Get-Nothing"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "The term 'Get-Nothing' is not recognized as the name of a cmdlet, function, script file, or operable program."
        ),
        "{err}"
    );
    assert!(
        err.contains("+ CategoryInfo          : ObjectNotFound: (Get-Nothing:String) [], CommandNotFoundException"),
        "{err}"
    );
    assert!(
        err.contains("+ FullyQualifiedErrorId : CommandNotFoundException"),
        "{err}"
    );
    assert!(!err.contains("CLIXML") && !err.contains("_x000D_"), "{err}");
}

#[test]
fn unicode_round_trips() {
    let sim = sim();
    let out = exec_ok(
        &sim,
        &[
            "--",
            "$s = 'こんにちは'; Write-Output ($s + ' ' + $s.Length)",
        ],
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "こんにちは 5\r\n");
}

#[test]
fn exchange_cmdlets_need_the_snapin() {
    let sim = sim();
    let out = exec_ok(&sim, &["--", "Get-ImapSettings"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("The term 'Get-ImapSettings' is not recognized"),
        "{}",
        text(&out.stderr)
    );
    let out = exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010;",
            "$s = Get-ImapSettings;",
            "Write-Output ([string]$s.Identity + ' ' + $s.MaxConnectionsPerUser)",
        ],
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("EXCH01\\1 16\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    let state = sim.exchange_state();
    assert_eq!(state["powershell_processes"], 2);
    assert_eq!(state["exchange_sessions"], 1);
    assert_eq!(state["cmdlets"]["Get-ImapSettings"], 1);
}

#[test]
fn the_release_and_the_computer_name_are_the_servers() {
    let sim = Sim::start(&["--exchange", "2010-rtm", "--computer-name", "MBX7"]);
    let out = exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010;",
            "$x = Get-ExchangeServer -Identity $env:COMPUTERNAME;",
            "Write-Output ([string]$x.Identity + ': ' + $x.AdminDisplayVersion)",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        "MBX7: Version 14.0 (Build 639.21)\r\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_remote_exchange_session_needs_the_endpoint_kerberos_and_an_explicit_credential() {
    let sim = sim();
    let script = format!(
        r#"$ErrorActionPreference = 'Continue'
$uri = 'http://EXCH01/PowerShell/'
$s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $uri -Authentication Kerberos
Write-Output ('no credential: ' + ($s -eq $null))
$bad = New-Object System.Management.Automation.PSCredential -ArgumentList '{user}', (ConvertTo-SecureString 'wrong' -AsPlainText -Force)
$s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $uri -Credential $bad
Write-Output ('wrong password: ' + ($s -eq $null))
$good = New-Object System.Management.Automation.PSCredential -ArgumentList '{user}', (ConvertTo-SecureString '{password}' -AsPlainText -Force)
$s = New-PSSession -ConfigurationName Microsoft.PowerShell -ConnectionUri $uri -Credential $good
Write-Output ('wrong configuration: ' + ($s -eq $null))
$s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $uri -Authentication Kerberos -Credential $good
Write-Output ('state: ' + $s.State)
Write-Output ('before import: ' + ((Get-Command Get-ImapSettings -ErrorAction SilentlyContinue) -eq $null))
$null = Import-PSSession $s -DisableNameChecking -AllowClobber
$imap = Get-ImapSettings -Server EXCH01
Write-Output ('limit: ' + $imap.MaxConnectionsPerUser)
Write-Output ('type: ' + $imap.PSObject.TypeNames[0])
Remove-PSSession $s
"#,
        user = common::SIM_USER,
        password = common::SIM_PASSWORD,
    );
    let file = sim.path("session.ps1");
    std::fs::write(&file, script).expect("script written");
    let out = common::exec(
        &sim,
        common::SIM_PASSWORD,
        &["--file", file.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    for line in [
        "no credential: True",
        "wrong password: True",
        "wrong configuration: True",
        "state: Opened",
        "before import: True",
        "limit: 16",
        "type: Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.Imap4AdConfiguration",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}\n{stderr}");
    }
    assert!(stderr.contains("Access is denied."), "{stderr}");
    assert!(
        stderr.contains("Cannot find the Microsoft.PowerShell session configuration"),
        "{stderr}"
    );
    assert!(!stderr.contains(common::SIM_PASSWORD));
    assert_eq!(sim.exchange_state()["exchange_sessions"], 1);
}
