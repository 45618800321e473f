//! `pop_settings` end to end against `exctl sim`: with MSExchangePOP3 as Exchange 2010
//! installs it (Manual, stopped) a change applies without a restart and the plan says
//! why; once the service runs and starts automatically, a change restarts it once. The
//! export of the kind pins what the server holds.

use crate::common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, text};

fn repo(dir: &Path, sim: &Sim, resources: &str) {
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n{}",
            sim.url,
            SIM_USER,
            common::exchange_endpoint(&sim.url, 4)
        ),
    )
    .expect("inventory written");
    std::fs::write(dir.join("pop.yaml"), resources).expect("manifest written");
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

fn all(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn pop3(sim: &Sim) -> serde_json::Value {
    sim.exchange_state()["servers"][0]["services"]["MSExchangePOP3"].clone()
}

#[test]
fn a_stopped_manual_pop3_takes_the_change_without_a_restart_and_a_running_one_restarts_once() {
    let sim = Sim::start(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp3",
        "--time-scale",
        "0.002",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(
        dir.path(),
        &sim,
        "targets: [EXCH01]\npop_settings:\n  MaxConnectionsPerUser: 40\n  MessageRetrievalSortOrder: Descending\n",
    );

    // Exchange 2010's POP3: Manual and stopped. The plan changes the settings and says
    // why there is no restart.
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    let shown = all(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("POP3 settings EXCH01"), "{shown}");
    assert!(
        shown.contains(
            "MSExchangePOP3 is Stopped and its start mode is Manual: no restart, the settings take effect when it starts"
        ),
        "{shown}"
    );
    assert!(!shown.contains("restart MSExchangePOP3"), "{shown}");
    assert!(shown.contains("0 restarts"), "{shown}");
    let md = text(&run(dir.path(), &["plan", ".", "--format", "markdown"]).stdout);
    assert!(
        md.contains("- ℹ️ MSExchangePOP3 is Stopped and its start mode is Manual: no restart"),
        "{md}"
    );
    let json = run(dir.path(), &["plan", ".", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON plan");
    let step = &v["hosts"][0]["steps"][0];
    assert_eq!(step["kind"], "pop_settings", "{v}");
    assert_eq!(step["requires_restart"], "MSExchangePOP3", "{v}");
    assert!(
        step["no_restart"]
            .as_str()
            .is_some_and(|s| s.contains("Manual")),
        "{v}"
    );

    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(pop3(&sim)["restarts"], 0, "{}", pop3(&sim));
    assert_eq!(pop3(&sim)["status"], "Stopped", "{}", pop3(&sim));
    let again = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", all(&again));

    // An administrator turns POP3 on; the next change restarts it, once.
    let on = common::exec_ok(
        &sim,
        &[
            "--",
            "Set-Service MSExchangePOP3 -StartupType Automatic; Start-Service MSExchangePOP3",
        ],
    );
    assert_eq!(on.status.code(), Some(0), "{}", all(&on));
    assert_eq!(pop3(&sim)["status"], "Running", "{}", pop3(&sim));
    let nothing = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(
        nothing.status.code(),
        Some(0),
        "the service loaded the settings when it started: {}",
        all(&nothing)
    );
    repo(
        dir.path(),
        &sim,
        "targets: [EXCH01]\npop_settings:\n  MaxConnectionsPerUser: 50\n  MessageRetrievalSortOrder: Descending\n",
    );
    let plan = run(dir.path(), &["plan", "."]);
    let shown = all(&plan);
    assert!(shown.contains("restart MSExchangePOP3"), "{shown}");
    assert!(
        shown.contains("POP3 clients on this server are disconnected and reconnect"),
        "{shown}"
    );
    assert!(!shown.contains("no restart"), "{shown}");
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(pop3(&sim)["restarts"], 1, "{}", all(&out));
    assert_eq!(pop3(&sim)["status"], "Running");
    let again = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", all(&again));

    // The export pins every parameter the server holds, and plans clean.
    let out = run(
        dir.path(),
        &[
            "export",
            "EXCH01",
            ".",
            "--kinds",
            "pop_settings",
            "-o",
            "export.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let exported = std::fs::read_to_string(dir.path().join("export.yaml")).expect("written");
    assert!(exported.contains("pop_settings:"), "{exported}");
    assert!(exported.contains("MaxConnectionsPerUser: 50"), "{exported}");
    assert!(
        exported.contains("MessageRetrievalSortOrder: Descending"),
        "{exported}"
    );
    assert!(!exported.contains("ShowHiddenFoldersEnabled"), "{exported}");
    std::fs::remove_file(dir.path().join("pop.yaml")).expect("removed");
    let clean = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", all(&clean));
}
