//! `exctl sim`'s organization options end to end: a state file in and out, the IMAP4
//! listener, the snap-in's load time, and restarts on the scaled clock.

use crate::common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{Sim, exec_ok, text};

const SNAPIN: &str = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010;";

#[test]
fn a_state_file_is_loaded_and_written_back_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("org.yaml");
    std::fs::write(
        &state,
        "sp: Sp1\nservers:\n  - name: EXCH01\n    imap:\n      MaxConnectionsPerUser: 40\nmailboxes:\n  - alias: agent1\n",
    )
    .expect("state written");
    let mut sim = Sim::start(&[
        "--state",
        state.to_str().expect("UTF-8 path"),
        "--write-state-on-exit",
        "--time-scale",
        "0.001",
    ]);
    let out = exec_ok(
        &sim,
        &[
            "--",
            SNAPIN,
            "Write-Output ([string](Get-ImapSettings).MaxConnectionsPerUser + ' ' + (Get-Mailbox agent1).Alias + ' ' + (Get-ExchangeServer EXCH01).AdminDisplayVersion);",
            "Set-ImapSettings -MaxConnectionsPerUser 90",
        ],
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("40 agent1 Version 14.1 (Build 218.15)\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &sim.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert_eq!(sim.wait(), Some(0));
    let saved = std::fs::read_to_string(&state).expect("state read back");
    assert!(saved.contains("MaxConnectionsPerUser: 90"), "{saved}");
    assert!(saved.contains("agent1"), "{saved}");
}

#[test]
fn a_state_file_without_the_computer_name_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("org.json");
    std::fs::write(&state, r#"{"servers": [{"name": "OTHER"}]}"#).expect("state written");
    let out = common::exctl()
        .args(["sim", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .output()
        .expect("exctl sim runs");
    assert_eq!(out.status.code(), Some(64));
    let err = text(&out.stderr);
    assert!(
        err.contains("no server named 'EXCH01'") && err.contains("OTHER"),
        "{err}"
    );
}

#[test]
fn the_imap_listener_greets_on_the_printed_address() {
    let mut sim =
        Sim::start_with_stderr(&["--imap-listen", "127.0.0.1:0", "--time-scale", "0.001"]);
    let stderr = sim.stderr.as_mut().expect("stderr kept");
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a line on stderr");
    let addr = line
        .trim()
        .strip_prefix("exctl sim: IMAP4 on ")
        .unwrap_or_else(|| panic!("unexpected stderr line: {line:?}"))
        .to_string();
    let stream = std::net::TcpStream::connect(&addr).expect("IMAP accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let mut greeting = String::new();
    BufReader::new(stream)
        .read_line(&mut greeting)
        .expect("greeting");
    assert_eq!(
        greeting,
        "* OK The Microsoft Exchange IMAP4 service is ready.\r\n"
    );
}

#[test]
fn the_snapin_takes_its_startup_time() {
    let sim = Sim::start(&["--startup-ms", "400"]);
    let started = Instant::now();
    let out = exec_ok(&sim, &["--", SNAPIN, "Write-Output loaded"]);
    assert_eq!(text(&out.stdout), "loaded\r\n", "{}", text(&out.stderr));
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn restarts_wait_on_the_scaled_clock_and_are_counted() {
    // 0.001: the Information Store's 45 simulated seconds take 45 ms.
    let sim = Sim::start(&["--time-scale", "0.001"]);
    let started = Instant::now();
    let out = exec_ok(
        &sim,
        &[
            "--",
            "Restart-Service -Name MSExchangeIS -Force -WarningAction SilentlyContinue;",
            "Write-Output ([string](Get-Service MSExchangeIS).Status)",
        ],
    );
    assert_eq!(text(&out.stdout), "Running\r\n", "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30));
    let state = sim.exchange_state();
    let services = &state["servers"][0]["services"];
    assert_eq!(services["MSExchangeIS"]["restarts"], 1);
    // Its running dependents went down and up with it.
    assert_eq!(services["MSExchangeMailboxAssistants"]["restarts"], 1);
    assert_eq!(state["cmdlets"]["Restart-Service"], 1);
}
