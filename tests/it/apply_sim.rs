//! `exctl apply` end to end against the simulator: the UCCX checklist converges on every
//! Exchange 2010 release with exactly one IMAP4 and one Information Store restart, and the
//! seed incident (agents refused with `NO LOGIN failed.`) is gone afterwards; a rejected
//! cmdlet stops the host and the next plan shows the rest; a stale saved plan is refused;
//! `--restart never` leaves the restart pending and visible; dropped connections during
//! the restart are survived.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{SIM_PASSWORD, SIM_USER, Sim, UCCX, exctl, text};

/// A simulator of `version` with its IMAP4 listener; returns it and the IMAP address.
fn sim(version: &str, extra: &[&str]) -> (Sim, String) {
    let mut args = vec![
        "--computer-name",
        "EXCH01",
        "--exchange",
        version,
        "--imap-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut sim = Sim::start_with_stderr(&args);
    let stderr = sim.stderr.as_mut().expect("stderr kept");
    let mut imap = None;
    for _ in 0..20 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(addr) = line.trim().strip_prefix("exctl sim: IMAP4 on ") {
            imap = Some(addr.to_string());
            break;
        }
    }
    let imap = imap.expect("the simulator announces its IMAP4 listener");
    (sim, imap)
}

fn repo(dir: &Path, sim: &Sim, version: &str, resources: &str) {
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: {version}\n{}",
            sim.url,
            SIM_USER,
            common::exchange_endpoint(&sim.url, 4)
        ),
    )
    .expect("inventory written");
    std::fs::write(dir.join("uccx.yaml"), resources).expect("manifest written");
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

/// Opens `n` IMAP sessions of the shared UCCX account at once (as 20 agent desktops with
/// two connections each would) and counts the logins accepted and refused.
fn agents_log_in(addr: &str, n: usize) -> (usize, usize) {
    let mut open = Vec::new();
    let (mut ok, mut no) = (0, 0);
    for i in 0..n {
        let Ok(s) = TcpStream::connect(addr) else {
            no += 1;
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut greeting = String::new();
        if r.read_line(&mut greeting).unwrap_or(0) == 0 {
            no += 1;
            continue;
        }
        let mut w = s;
        let _ = write!(w, "a{i} LOGIN uccx-agent Uccx-Agent-2010!\r\n");
        let mut reply = String::new();
        let _ = r.read_line(&mut reply);
        if reply.contains(" OK") {
            ok += 1;
        } else {
            assert!(
                reply.contains("NO LOGIN failed."),
                "unexpected reply: {reply:?}"
            );
            no += 1;
        }
        open.push((w, r));
    }
    (ok, no)
}

fn restarts(sim: &Sim, service: &str) -> u64 {
    let ex = sim.exchange_state();
    ex["servers"][0]["services"][service]["restarts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no restart counter for {service} in {ex}"))
}

#[test]
fn uccx_converges_on_every_release_and_the_agents_get_in() {
    for version in ["2010-rtm", "2010-sp1", "2010-sp2", "2010-sp3"] {
        let (sim, imap) = sim(version, &["--time-scale", "0.002"]);
        let dir = tempfile::tempdir().expect("temp dir");
        repo(dir.path(), &sim, version, UCCX);

        let (ok, no) = agents_log_in(&imap, 40);
        assert!(
            no > 0 && ok < 40,
            "{version}: the defaults must refuse some of 40 agents ({ok} ok)"
        );

        let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{version}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(
            restarts(&sim, "MSExchangeIS"),
            1,
            "{version}: one Information Store restart"
        );
        assert_eq!(
            restarts(&sim, "MSExchangeIMAP4"),
            1,
            "{version}: one IMAP4 restart"
        );

        let again = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
        assert_eq!(
            again.status.code(),
            Some(0),
            "{version}: converged, but: {}",
            text(&again.stdout)
        );

        assert_eq!(
            agents_log_in(&imap, 40),
            (40, 0),
            "{version}: every agent logs in after apply"
        );
    }
}

#[test]
fn a_rejected_cmdlet_stops_the_host_and_the_next_plan_shows_the_rest() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    // A policy someone else still uses: validate cannot know, and Exchange refuses to
    // remove a policy with users associated (Remove-ThrottlingPolicy help), so the
    // throttling step fails on the server, before anything after it runs.
    let seeded = common::exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; New-ThrottlingPolicy -Name RetiredPolicy; Set-ThrottlingPolicyAssociation -Identity Administrator -ThrottlingPolicy RetiredPolicy",
        ],
    );
    assert_eq!(seeded.status.code(), Some(0), "{}", text(&seeded.stderr));
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        &UCCX.replace(
            "throttling_policies:\n",
            "throttling_policies:\n  RetiredPolicy:\n    ensure: absent\n",
        ),
    );
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("there are currently users associated with the policy"),
        "the server's error is shown: {all}"
    );
    assert!(all.contains("not attempted"), "{all}");
    assert_eq!(
        restarts(&sim, "MSExchangeIS"),
        0,
        "nothing after the failure ran"
    );
    assert_eq!(
        restarts(&sim, "MSExchangeIMAP4"),
        0,
        "nothing after the failure ran"
    );
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    let p = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{p}{}", text(&plan.stderr));
    // What failed and everything after it remain, in order.
    assert!(
        p.contains("RetiredPolicy")
            && p.contains("IMAP4 settings")
            && p.contains("restart MSExchangeIS"),
        "{p}"
    );
}

/// Back to the default policy: the apply assigns the policy Get-ThrottlingPolicy marks
/// IsDefault (the 2010 help's way), and the next plan finds the association in place.
#[test]
fn an_association_returns_to_the_default_policy() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = common::exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; New-ThrottlingPolicy -Name RetiredPolicy; Set-ThrottlingPolicyAssociation -Identity Administrator -ThrottlingPolicy RetiredPolicy",
        ],
    );
    assert_eq!(seeded.status.code(), Some(0), "{}", text(&seeded.stderr));
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        "targets: [EXCH01]\nthrottling_associations:\n  - identity: Administrator\n    policy: default\n",
    );
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    let again = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    let shown = common::exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; (Get-ThrottlingPolicyAssociation -Identity Administrator).ThrottlingPolicyId",
        ],
    );
    let id = text(&shown.stdout);
    assert!(id.contains("DefaultThrottlingPolicy_"), "{id}");
}

/// A registry value in a key that exists is added to it, the key kept as it is (`New-Item
/// -Force` would replace the key and drop its other values); a value in a key that does not
/// exist gets its key first. The observation says which (issue 13: changes are plain
/// commands, without a Test-Path of their own).
#[test]
fn registry_keys_are_created_only_when_missing() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = common::exec_ok(
        &sim,
        &[
            "--",
            "$null = New-Item -Path 'HKLM:\\SOFTWARE\\Contoso'; $null = New-ItemProperty -Path 'HKLM:\\SOFTWARE\\Contoso' -Name Keep -PropertyType DWord -Value 7",
        ],
    );
    assert_eq!(seeded.status.code(), Some(0), "{}", text(&seeded.stderr));
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        "targets: [EXCH01]\nregistry_values:\n  - {path: 'HKLM:\\SOFTWARE\\Contoso', name: Added, type: dword, value: 1, restart: none}\n  - {path: 'HKLM:\\SOFTWARE\\Contoso\\New', name: Fresh, type: string, value: x, restart: none}\n",
    );
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    let shown = common::exec_ok(
        &sim,
        &[
            "--",
            "(Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Contoso').Keep; (Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Contoso').Added; (Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Contoso\\New').Fresh",
        ],
    );
    let got: Vec<String> = text(&shown.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(got, ["7", "1", "x"], "{}", text(&shown.stderr));
    let again = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let planned = run(dir.path(), &["plan", ".", "--out", "plan.json"]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned.stderr));
    // Someone changes the server between review and apply.
    let moved = common::exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; Set-ImapSettings -Server EXCH01 -MaxConnectionsPerUser 20",
        ],
    );
    assert_eq!(moved.status.code(), Some(0), "{}", text(&moved.stderr));
    let out = run(dir.path(), &["apply", "plan.json"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("MaxConnectionsPerUser") && err.contains("16") && err.contains("20"),
        "{err}"
    );
}

#[test]
fn restart_never_leaves_the_restart_pending_and_visible() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--restart", "never"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("pending"), "{all}");
    assert_eq!(restarts(&sim, "MSExchangeIS"), 0);
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stdout));
    assert!(
        text(&plan.stdout).contains("restart MSExchangeIS"),
        "{}",
        text(&plan.stdout)
    );
}

#[test]
fn dropped_connections_during_the_restart_are_survived() {
    let (sim, _) = sim(
        "2010-sp3",
        &["--time-scale", "0.002", "--close-connections-after", "6"],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1);
}

#[test]
fn a_store_that_does_not_come_back_in_time_fails_the_apply_clearly() {
    // The store takes an hour to start; apply waits 2 minutes (simulated: 240 ms here).
    let (sim, _) = sim(
        "2010-sp3",
        &[
            "--time-scale",
            "0.002",
            "--service-timing",
            "MSExchangeIS=15,3600",
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--restart-timeout", "2m"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "MSExchangeIS on EXCH01 did not come back within 120 s: the service is StartPending"
        ),
        "{all}"
    );
    assert!(
        all.contains("databases still dismounted: Mailbox Database"),
        "{all}"
    );
    assert!(
        all.contains("the Information Store of EXCH01 did not come back"),
        "{all}"
    );
    // It was restarted once and not waited for beyond the deadline.
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1);
}

/// The status of `service` on the simulated host, as `/sim/state` shows it.
fn service_status(sim: &Sim, service: &str) -> String {
    let ex = sim.exchange_state();
    ex["servers"][0]["services"][service]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status for {service} in {ex}"))
        .to_string()
}

/// Issue 12: a store left down by a restart that timed out is never reported as
/// converged; plan shows the step that brings it back, apply performs it (the store,
/// the dependants it stopped, the databases), and then everything is clean.
#[test]
fn a_store_left_down_by_a_failed_restart_is_shown_and_brought_back() {
    // The store takes 50 minutes to start; apply waits 1 minute (simulated time). At
    // 0.002 that is 6 s of real time for the failed apply's verification, a plan and a
    // doctor to see it still starting, even on a loaded machine (10 minutes, 1.2 s, was
    // not always enough).
    let (sim, _) = sim(
        "2010-sp3",
        &[
            "--time-scale",
            "0.002",
            "--service-timing",
            "MSExchangeIS=15,3000",
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--restart-timeout", "60s"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("did not come back within 60 s"), "{all}");
    assert!(
        !all.contains("nothing left to do") && !all.contains("converged"),
        "a failed restart is never converged: {all}"
    );
    assert!(
        all.contains("start MSExchangeIS: not healthy: MSExchangeIS is StartPending"),
        "the verification names the store: {all}"
    );
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1);

    // Plan right away: the host is not in sync.
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}{}", text(&plan.stderr));
    assert!(shown.contains("start MSExchangeIS"), "{shown}");
    assert!(
        shown.contains("MSExchangeIS is StartPending (a restart by exctl did not finish)"),
        "{shown}"
    );
    assert!(
        shown.contains("databases not mounted: Mailbox Database"),
        "{shown}"
    );
    let doc = run(dir.path(), &["doctor", "EXCH01", ".", "--imaps-port", "0"]);
    let report = text(&doc.stdout);
    assert_eq!(doc.status.code(), Some(2), "{report}{}", text(&doc.stderr));
    assert!(
        report.contains(
            "the Information Store of EXCH01 is not healthy: MSExchangeIS is StartPending"
        ),
        "{report}"
    );

    // Apply brings it back: it waits for the start under way (no second restart) and
    // starts the dependants exctl stopped.
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--restart-timeout", "120m"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("verified: a fresh plan has nothing left to do"),
        "{all}"
    );
    assert_eq!(
        restarts(&sim, "MSExchangeIS"),
        1,
        "brought back, not restarted"
    );
    for svc in [
        "MSExchangeIS",
        "MSExchangeMailboxAssistants",
        "MSExchangeMailSubmission",
    ] {
        assert_eq!(service_status(&sim, svc), "Running", "{svc}: {all}");
    }

    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        text(&plan.stdout),
        text(&plan.stderr)
    );
    let doc = run(dir.path(), &["doctor", "EXCH01", ".", "--imaps-port", "0"]);
    let report = text(&doc.stdout);
    assert!(!report.contains("not healthy"), "{report}");
    assert!(report.contains("Information Store"), "{report}");
}

/// A store an administrator stopped (not exctl) is not in sync either: it starts
/// automatically, so plan shows it and apply starts it, with its dependants.
#[test]
fn a_stopped_store_is_started_by_apply() {
    let (sim, _) = sim("2010-sp2", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp2", UCCX);
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    common::exec_ok(&sim, &["--", "Stop-Service", "MSExchangeIS", "-Force"]);
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("MSExchangeIS is Stopped"), "{shown}");
    assert!(
        shown.contains("dependent services not running: "),
        "{shown}"
    );
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--restart", "never"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a down store is started even with --restart never: {all}"
    );
    for svc in [
        "MSExchangeIS",
        "MSExchangeMailboxAssistants",
        "MSExchangeMailSubmission",
    ] {
        assert_eq!(service_status(&sim, svc), "Running", "{svc}: {all}");
    }
}

#[test]
fn a_lost_apply_is_an_unknown_outcome_observed_again_before_anything_else() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    // The snap-in, so that every Command is one of the host's session (through
    // Exchange's endpoint each Exchange cmdlet is a Command of its own).
    let inventory = dir.path().join("inventory.yaml");
    let snapin = std::fs::read_to_string(&inventory)
        .expect("inventory")
        .replace(
            &common::exchange_endpoint(&sim.url, 4),
            "    access: snapin\n",
        );
    std::fs::write(&inventory, snapin).expect("written");
    let plan = run(dir.path(), &["plan", ".", "--out", "plan.json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    // Apply observes again (the first Command), observes the site again just before
    // applying it (the second), then starts the apply script (the third): the host
    // starts it, and the answer is lost.
    sim.inject(r#"{"on":"Command","nth":3,"fault":"reset_after"}"#);
    let out = run(dir.path(), &["apply", "plan.json"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("outcome unknown"), "{all}");
    assert!(
        !all.contains(") not attempted"),
        "nothing can be said not attempted: {all}"
    );
    // Observed again at once: the script never got its input, so nothing is in place.
    assert!(
        all.contains("observed again after the loss: the change is not in place"),
        "{all}"
    );
    assert_eq!(restarts(&sim, "MSExchangeIS"), 0);
    // Running apply again is safe and converges.
    let again = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1);
}

/// The journal of the run: its JSON lines.
fn journal_lines(dir: &Path) -> Vec<serde_json::Value> {
    let files: Vec<_> = std::fs::read_dir(dir)
        .expect("journal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one file per run: {files:?}");
    let text = std::fs::read_to_string(&files[0]).expect("journal read");
    assert!(!text.contains(SIM_PASSWORD), "no secret in the journal");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn apply_keeps_a_journal_of_the_run_without_secrets() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let journal = dir.path().join("journal");
    let out = run(
        dir.path(),
        &[
            "apply",
            ".",
            "--auto-approve",
            "--journal-dir",
            journal.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("journal: "),
        "{}",
        text(&out.stderr)
    );
    let lines = journal_lines(&journal);
    let events: Vec<&str> = lines
        .iter()
        .map(|l| l["event"].as_str().expect("event"))
        .collect();
    assert_eq!(events.first(), Some(&"started"));
    assert_eq!(
        events.iter().filter(|e| **e == "step").count(),
        9,
        "{events:?}"
    );
    assert_eq!(
        &events[events.len() - 3..],
        ["site_finished", "finished", "exited"]
    );
    assert!(events.contains(&"planned") && events.contains(&"confirmed"));
    let started = &lines[0];
    assert_eq!(started["options"]["auto_approve"], true);
    assert!(started["who"]["exctl_version"].is_string());
    assert!(started["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let confirmed = lines
        .iter()
        .find(|l| l["event"] == "confirmed")
        .expect("confirmed");
    assert_eq!(confirmed["by"], "--auto-approve");
    let restart = lines
        .iter()
        .find(|l| l["event"] == "step" && l["description"] == "restart MSExchangeIS")
        .expect("the IS restart step");
    assert_eq!(restart["status"], "done");
    let finished = lines
        .iter()
        .find(|l| l["event"] == "finished")
        .expect("finished");
    assert_eq!(finished["result"]["summary"]["success"], true, "{finished}");
    assert_eq!(lines.last().expect("exited")["exit_code"], 0);
}

#[test]
fn ctrl_c_lets_the_host_under_way_finish_and_starts_no_other() {
    // Two hosts in two sites, one after the other; the store takes about a second to
    // restart, so the interrupt lands while the first site is being changed.
    let slow = ["--time-scale", "0.02"];
    let (a, _) = sim("2010-sp3", &slow);
    let (b, _) = {
        let mut args = vec!["--computer-name", "EXCH02", "--exchange", "2010-sp3"];
        args.extend_from_slice(&slow);
        (Sim::start(&args), ())
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    site: s1\n{}  EXCH02:\n    endpoint: {}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    site: s2\n{}",
            a.url,
            common::exchange_endpoint(&a.url, 4),
            b.url,
            common::exchange_endpoint(&b.url, 4)
        ),
    )
    .expect("inventory");
    std::fs::write(
        dir.path().join("store.yaml"),
        "targets: [EXCH01, EXCH02]\nregistry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: 250\n",
    )
    .expect("manifest");
    let journal = dir.path().join("journal");
    let mut child = exctl()
        .args([
            "apply",
            ".",
            "--auto-approve",
            "--parallel",
            "1",
            "--progress",
            "lines",
        ])
        .arg("--journal-dir")
        .arg(&journal)
        .current_dir(dir.path())
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exctl starts");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("apply ended before the store restart began: {seen}");
        }
        seen.push_str(&line);
        // The registry change is done: the store restart (step 2 of 2) is under way.
        if line.contains("[1/2]") {
            break;
        }
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().expect("exctl ends");
    let all = format!("{seen}{rest}{}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Said at once, naming the host whose steps are under way.
    assert!(
        all.contains("interrupt: finishing the steps under way on EXCH01 (so that none is left half-changed); nothing new starts; Ctrl+C again to abort"),
        "{all}"
    );
    // The store's states are said once each, never once per poll.
    let states: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("[s1] EXCH01 MSExchangeIS: "))
        .collect();
    let mut unique = states.clone();
    unique.dedup();
    assert_eq!(states, unique, "{all}");
    // The first host finished its script, restart included; the second never started.
    assert_eq!(restarts(&a, "MSExchangeIS"), 1, "{all}");
    assert_eq!(restarts(&b, "MSExchangeIS"), 0, "{all}");
    assert!(all.contains("stopped by the operator"), "{all}");
    let events: Vec<String> = journal_lines(&journal)
        .iter()
        .map(|l| l["event"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(events.contains(&"interrupted".to_string()), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("exited"));
}

#[test]
fn remote_session_access_plans_and_applies_through_the_exchange_endpoint() {
    let (sim, imap) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let inventory = dir.path().join("inventory.yaml");
    // Not psrp, the default: the host's session opens Exchange's endpoint itself.
    let text_of = std::fs::read_to_string(&inventory)
        .expect("inventory")
        .replace(&common::exchange_endpoint(&sim.url, 4), "");
    std::fs::write(&inventory, format!("{text_of}    access: remote-session\n")).expect("written");
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains(SIM_PASSWORD), "{all}");
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));
    let ex = sim.exchange_state();
    assert_eq!(
        ex["cmdlets"]["Add-PSSnapin"],
        serde_json::Value::Null,
        "{ex}"
    );
    // One session per run, whatever the run does: apply (observe, change, restart,
    // verify, release the lock) imports the Exchange session once, plan once; each
    // removed when its run ends.
    assert_eq!(ex["cmdlets"]["Import-PSSession"], 2, "{ex}");
    assert_eq!(ex["cmdlets"]["New-PSSession"], 2, "{ex}");
    assert_eq!(
        ex["cmdlets"]["Import-PSSession"],
        ex["cmdlets"]["Remove-PSSession"]
    );
    assert_eq!(ex["powershell_processes"], 2, "{ex}");
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1);
    assert_eq!(agents_log_in(&imap, 40), (40, 0));
}

#[test]
fn a_remote_session_to_the_wrong_endpoint_is_the_servers_error() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let inventory = dir.path().join("inventory.yaml");
    // Not psrp, the default: the host's session opens Exchange's endpoint itself.
    let text_of = std::fs::read_to_string(&inventory)
        .expect("inventory")
        .replace(&common::exchange_endpoint(&sim.url, 4), "");
    std::fs::write(
        &inventory,
        format!(
            "{text_of}    access: remote-session\n    session_uri: http://127.0.0.1/PowerShell/\n"
        ),
    )
    .expect("written");
    let out = run(dir.path(), &["plan", "."]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Kerberos authentication: Cannot find the computer 127.0.0.1"),
        "{all}"
    );
}

#[test]
fn a_value_marked_sensitive_is_never_shown_saved_or_journaled() {
    const SECRET: &str = "Sup3r-S3cret-Value";
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        &format!(
            "targets: [EXCH01]\nregistry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Contoso Relay Key\n    type: string\n    value: {SECRET}\n    restart: none\n    sensitive: true\n"
        ),
    );
    for format in ["text", "markdown", "json"] {
        let out = run(dir.path(), &["plan", ".", "--format", format]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(!all.contains(SECRET), "{format}: {all}");
        assert!(all.contains("(sensitive)"), "{format}: {all}");
    }
    let saved = run(dir.path(), &["plan", ".", "--out", "plan.json"]);
    assert_eq!(saved.status.code(), Some(0));
    let file = std::fs::read_to_string(dir.path().join("plan.json")).expect("plan file");
    assert!(!file.contains(SECRET), "{file}");
    let journal = dir.path().join("journal");
    let out = run(
        dir.path(),
        &[
            "apply",
            "plan.json",
            "--journal-dir",
            journal.to_str().expect("utf-8"),
        ],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains(SECRET), "{all}");
    let lines = journal_lines(&journal);
    assert!(
        !lines.iter().any(|l| l.to_string().contains(SECRET)),
        "the journal holds no sensitive value"
    );
    // It was set, as written: nothing left to do.
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));
}

/// Issue 12: a plan file edited by hand is refused, naming what was edited, and nothing
/// changes; an untouched plan applies from any directory (it records where it was made).
#[test]
fn an_edited_plan_file_is_refused_and_a_plan_applies_from_anywhere() {
    let (sim, _) = sim("2010-sp3", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", UCCX);
    let planned = run(dir.path(), &["plan", ".", "--out", "plan.json"]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned.stderr));
    let path = dir.path().join("plan.json");
    let original = std::fs::read_to_string(&path).expect("plan file");
    let mut file: serde_json::Value = serde_json::from_str(&original).expect("JSON");
    assert!(
        file["digest"].as_str().is_some_and(|d| d.len() == 64),
        "{file}"
    );

    // A value changed (consistently: after, after_text and the command's parameter).
    let steps = file["hosts"][0]["steps"].as_array_mut().expect("steps");
    let imap = steps
        .iter_mut()
        .find(|s| s["kind"] == "imap_settings")
        .expect("an IMAP step");
    for a in imap["attributes"].as_array_mut().expect("attributes") {
        if a["name"] == "MaxConnectionsPerUser" {
            a["after"] = serde_json::json!(999);
            a["after_text"] = serde_json::json!("999");
        }
    }
    for c in imap["commands"].as_array_mut().expect("commands") {
        for p in c["params"].as_array_mut().expect("params") {
            if p["name"] == "MaxConnectionsPerUser" {
                p["value"] = serde_json::json!(999);
            }
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).expect("written");
    let out = run(dir.path(), &["apply", "plan.json"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("it was edited after exctl wrote it"), "{err}");
    assert!(
        err.contains("MaxConnectionsPerUser: the file says 999, the manifests say 250"),
        "{err}"
    );
    assert_eq!(restarts(&sim, "MSExchangeIMAP4"), 0, "nothing ran");

    // A host removed.
    let mut file: serde_json::Value = serde_json::from_str(&original).expect("JSON");
    file["hosts"] = serde_json::json!([]);
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).expect("written");
    let out = run(dir.path(), &["apply", "plan.json"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("host EXCH01: the manifests plan"), "{err}");

    // Reformatted but not edited: applies, from another directory.
    let file: serde_json::Value = serde_json::from_str(&original).expect("JSON");
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).expect("written");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let out = run(
        elsewhere.path(),
        &["apply", path.to_str().expect("utf-8 path")],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("where the plan was made"), "{all}");
    assert_eq!(restarts(&sim, "MSExchangeIMAP4"), 1);
}

/// Issue 12: `--move-active-databases` needs StartDagServerMaintenance.ps1, which came
/// with Exchange 2010 SP1: an RTM host is refused before anything changes.
#[test]
fn moving_active_databases_is_refused_on_rtm_before_any_change() {
    let (sim, _) = sim("2010-rtm", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-rtm", UCCX);
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--move-active-databases"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "StartDagServerMaintenance.ps1, which came with Exchange 2010 SP1, and EXCH01 runs RTM"
        ),
        "{all}"
    );
    assert!(all.contains("nothing was changed on EXCH01"), "{all}");
    assert_eq!(restarts(&sim, "MSExchangeIS"), 0);
    assert_eq!(restarts(&sim, "MSExchangeIMAP4"), 0);
}

/// Durations (`0.4 s`, `(after 1.2 s)`, `1 min 05 s`) as `N s`: they change between runs.
fn durations(s: &str) -> String {
    s.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let mut out: Vec<String> = Vec::new();
            let mut i = 0;
            while i < words.len() {
                let w = words[i];
                let bare = w.trim_start_matches('(');
                let next = words.get(i + 1).copied().unwrap_or("");
                if bare.contains('.') && bare.parse::<f64>().is_ok() && next.starts_with('s') {
                    out.push(format!("{}N", &w[..w.len() - bare.len()]));
                } else if bare.parse::<u64>().is_ok() && next == "min" {
                    out.push(format!("{}N", &w[..w.len() - bare.len()]));
                    i += 2; // `min` and the seconds
                } else {
                    out.push(w.to_string());
                }
                i += 1;
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Two sites, each its own simulator, with a manifest for both.
fn two_sites(resources: &str) -> (Sim, Sim, tempfile::TempDir) {
    let a = Sim::start(&["--computer-name", "EXCH01", "--time-scale", "0.002"]);
    let b = Sim::start(&["--computer-name", "EXCH02", "--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    site: s1\n{}  EXCH02:\n    endpoint: {}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    site: s2\n{}",
            a.url,
            common::exchange_endpoint(&a.url, 4),
            b.url,
            common::exchange_endpoint(&b.url, 4)
        ),
    )
    .expect("inventory");
    std::fs::write(
        dir.path().join("both.yaml"),
        format!("targets: [EXCH01, EXCH02]\n{resources}"),
    )
    .expect("manifest");
    (a, b, dir)
}

#[test]
fn apply_reads_the_same_for_two_sites_and_its_table_counts_what_happened() {
    let (_a, _b, dir) =
        // The policy is the organization's (planned on the first host); the IMAP
        // settings are each server's.
        two_sites(
            "throttling_policies:\n  UCCX:\n    IMAPMaxConcurrency: unlimited\nimap_settings:\n  MaxConnectionsPerUser: 40\n",
        );
    let out = run(
        dir.path(),
        &[
            "apply",
            ".",
            "--auto-approve",
            "--parallel",
            "1",
            "--progress",
            "lines",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    // Every site keeps its verified line and the BudgetCache note, as one site does.
    assert_eq!(
        stdout
            .matches("verified: a fresh plan has nothing left to do")
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(stdout.matches("BudgetCache").count(), 1, "{stdout}");
    // The states a restart is seen in depend on when the polls fall: each is said once
    // (checked here), and they are left out of the snapshot, as is the journal's path.
    let stderr = text(&out.stderr);
    let is_state = |l: &str| l.contains(" MSExchangeIMAP4: ") && l.contains("(after ");
    let states: Vec<&str> = stderr.lines().filter(|l| is_state(l)).collect();
    let mut unique = states.clone();
    unique.dedup();
    assert_eq!(states, unique, "{stderr}");
    assert!(
        states.iter().any(|l| l.contains(": Running (after ")),
        "{stderr}"
    );
    let stable: String = stderr
        .lines()
        .filter(|l| !is_state(l) && !l.starts_with("journal: "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(
        "two_sites_apply",
        format!(
            "===== stdout =====\n{}\n===== stderr (--progress lines) =====\n{}",
            durations(&stdout),
            durations(&stable)
        )
    );
}

#[test]
fn with_restart_never_the_table_counts_no_restart() {
    let (a, b, dir) = two_sites(
        "registry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: 250\n",
    );
    let out = run(
        dir.path(),
        &[
            "apply",
            ".",
            "--auto-approve",
            "--restart",
            "never",
            "--progress",
            "none",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        restarts(&a, "MSExchangeIS") + restarts(&b, "MSExchangeIS"),
        0
    );
    for site in ["s1", "s2"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{site} ")))
            .unwrap_or_else(|| panic!("no row for {site}: {stdout}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        // SITE CHANGES RESTARTS RESULT ...: one change done, no restart.
        assert_eq!(&cells[1..3], ["1", "0"], "{row}");
    }
    // --progress none: nothing on stderr but the notes apply owes the operator.
    assert!(!text(&out.stderr).contains("[s1]"), "{}", text(&out.stderr));
}

/// What one exctl run cost the host, from the simulator's counters before and after.
fn sessions_used(sim: &Sim, run: impl FnOnce()) -> [u64; 4] {
    let count = |s: &serde_json::Value, path: &[&str]| {
        path.iter().fold(s, |v, k| &v[*k]).as_u64().unwrap_or(0)
    };
    let before = sim.state();
    run();
    let after = sim.state();
    let delta = |path: &[&str]| count(&after, path) - count(&before, path);
    assert_eq!(after["shells_open"], 0, "every session was closed: {after}");
    [
        delta(&["shells_created"]),
        delta(&["sections", "exchange", "powershell_processes"]),
        delta(&["sections", "exchange", "exchange_sessions"]),
        delta(&["commands"]),
    ]
}

#[test]
fn apply_runs_in_one_session_per_host_from_a_directory_and_from_a_plan_file() {
    let (sim, _imap) = sim("2010-sp2", &["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp2", UCCX);
    // apply DIR: observe, every change, both restarts, the verification and the lock's
    // release, in one session on the host (one shell, one PowerShell process) and one on
    // Exchange's endpoint (access: psrp, the default): two shells, one Exchange session.
    let [shells, processes, loads, scripts] = sessions_used(&sim, || {
        let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    });
    assert_eq!((shells, processes, loads), (2, 1, 1));
    // observe, apply, verify, release: several scripts, one session.
    assert!(scripts >= 3, "{scripts}");
    // apply plan.json re-observes the host (the stale-plan check) in the same session.
    let more = UCCX.replace("MaxConnectionsPerUser: 250", "MaxConnectionsPerUser: 260");
    repo(dir.path(), &sim, "2010-sp2", &more);
    let plan = run(dir.path(), &["plan", ".", "--out", "plan.json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let [shells, processes, loads, _] = sessions_used(&sim, || {
        let out = run(dir.path(), &["apply", "plan.json", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    });
    assert_eq!((shells, processes, loads), (2, 1, 1));
    // doctor, however many checks it makes: one session too.
    let [shells, processes, loads, _] = sessions_used(&sim, || {
        let out = run(dir.path(), &["doctor", "EXCH01", ".", "--imaps-port", "0"]);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "{}",
            text(&out.stderr)
        );
    });
    assert_eq!((shells, processes, loads), (2, 1, 1));
}
