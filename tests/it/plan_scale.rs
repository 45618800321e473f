//! A plan at scale: 5,000 throttling associations against a simulated organization with
//! 5,000 mailboxes (`exctl sim --state`). The observe script grows by one line per
//! identity and runs in one PowerShell process; the simulator answers each
//! Get-ThrottlingPolicyAssociation from an index. The run is bounded generously (it must
//! finish), and its time is printed, not asserted. Then an apply of 2,000 associations,
//! every step done and the next plan empty.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, text};

const MAILBOXES: usize = 5000;

#[test]
fn five_thousand_associations_plan_in_one_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mailboxes: Vec<serde_json::Value> = (1..=MAILBOXES)
        .map(|i| serde_json::json!({ "alias": format!("user{i:05}") }))
        .collect();
    let state = serde_json::json!({
        "sp": "2010-sp3",
        "servers": [{ "name": "EXCH01" }],
        "mailboxes": mailboxes,
    });
    let state_file = dir.path().join("state.json");
    std::fs::write(&state_file, state.to_string()).expect("state written");
    let sim = Sim::start(&[
        "--state",
        state_file.to_str().expect("UTF-8 path"),
        "--time-scale",
        "0.001",
    ]);
    assert_eq!(sim.exchange_state()["mailboxes"], MAILBOXES);

    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).expect("directory");
    std::fs::write(
        manifests.join("inventory.yaml"),
        format!(
            // The snap-in: this measures the client and one observe script; through
            // Exchange's endpoint (access: psrp) every association read is a relayed call.
            "hosts:\n  EXCH01:\n    endpoint: {}\n    auth: ntlm\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    access: snapin\n",
            sim.url
        ),
    )
    .expect("inventory written");
    let mut site = String::from(
        "targets: [EXCH01]\nthrottling_policies:\n  Bulk:\n    IMAPMaxConcurrency: 100\nthrottling_associations:\n",
    );
    for i in 1..=MAILBOXES {
        // Every tenth keeps the default policy it already has: in sync.
        let policy = if i % 10 == 0 { "default" } else { "Bulk" };
        site.push_str(&format!("  - identity: user{i:05}\n    policy: {policy}\n"));
    }
    std::fs::write(manifests.join("site.yaml"), site).expect("site written");

    let started = Instant::now();
    let out = {
        let child = exctl()
            .args([
                "plan",
                "manifests",
                "--format",
                "json",
                "--detailed-exitcode",
            ])
            .current_dir(dir.path())
            .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("exctl plan starts");
        let pid = child.id();
        // Collected on a thread (the pipes must be drained while it runs), waited
        // for with a generous bound: a debug build on a busy machine takes seconds.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(out) => out.expect("exctl plan ran"),
            Err(_) => {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
                panic!("the plan of {MAILBOXES} associations did not finish in 300 s");
            }
        }
    };
    let elapsed = started.elapsed();
    eprintln!("plan of {MAILBOXES} associations: {elapsed:?}");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    let host = &plan["hosts"][0];
    assert_eq!(host["errors"], serde_json::json!([]));
    let steps = host["steps"].as_array().expect("steps");
    // The policy to create, and 4,500 associations to move to it.
    assert_eq!(steps.len(), 1 + MAILBOXES * 9 / 10);
    assert_eq!(host["in_sync"], MAILBOXES / 10);

    let state = sim.state();
    assert_eq!(state["shells_created"], 1);
    let exchange = &state["sections"]["exchange"];
    assert_eq!(exchange["powershell_processes"], 1);
    assert_eq!(exchange["exchange_sessions"], 1);
    assert_eq!(
        exchange["cmdlets"]["Get-ThrottlingPolicyAssociation"], MAILBOXES,
        "one targeted read per identity, no listing"
    );
}

/// Apply at scale: 2,000 associations move to a declared policy in one apply script, each
/// step reported done (apply follows the step records it streams by lookup, and verifies
/// against the fresh plan by identity), and the next plan has nothing to do.
#[test]
fn two_thousand_associations_apply_and_converge() {
    const N: usize = 2000;
    let dir = tempfile::tempdir().expect("temp dir");
    let mailboxes: Vec<serde_json::Value> = (1..=N)
        .map(|i| serde_json::json!({ "alias": format!("user{i:05}") }))
        .collect();
    let state = serde_json::json!({
        "sp": "Sp3",
        "servers": [{ "name": "EXCH01" }],
        "mailboxes": mailboxes,
    });
    let state_file = dir.path().join("state.json");
    std::fs::write(&state_file, state.to_string()).expect("state written");
    let sim = Sim::start(&[
        "--state",
        state_file.to_str().expect("UTF-8 path"),
        "--time-scale",
        "0.001",
    ]);
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).expect("directory");
    std::fs::write(
        manifests.join("inventory.yaml"),
        format!(
            // The snap-in: this measures the client and one observe script; through
            // Exchange's endpoint (access: psrp) every association read is a relayed call.
            "hosts:\n  EXCH01:\n    endpoint: {}\n    auth: ntlm\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    access: snapin\n",
            sim.url
        ),
    )
    .expect("inventory written");
    let mut site = String::from(
        "targets: [EXCH01]\nthrottling_policies:\n  Bulk:\n    IMAPMaxConcurrency: 100\nthrottling_associations:\n",
    );
    for i in 1..=N {
        site.push_str(&format!("  - identity: user{i:05}\n    policy: Bulk\n"));
    }
    std::fs::write(manifests.join("site.yaml"), site).expect("site written");
    let run = |args: &[&str]| {
        exctl()
            .args(args)
            .current_dir(dir.path())
            .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("exctl runs")
    };

    let out = run(&[
        "apply",
        "manifests",
        "--auto-approve",
        "--format",
        "json",
        "--progress",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON result");
    let host = &result["hosts"][0];
    let steps = host["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1 + N);
    assert!(
        steps.iter().all(|s| s["status"] == "done"),
        "{}",
        text(&out.stdout)
    );
    let state = sim.state();
    assert_eq!(
        state["sections"]["exchange"]["cmdlets"]["Set-ThrottlingPolicyAssociation"],
        N
    );

    let again = run(&["plan", "manifests", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    assert!(
        text(&again.stdout).contains(&format!("no changes ({} resources in sync)", N + 1)),
        "{}",
        text(&again.stdout)
    );
}
