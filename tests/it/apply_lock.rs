//! One apply at a time per host (issue 16): the lock on the host itself. A held lock
//! refuses a second apply before anything changes and names its holder; plan shows it;
//! an expired one is taken over; `exctl unlock HOST --force` removes one left by a killed
//! run; two applies started together restart the Information Store once.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, text};

const IMAP: &str = "targets: [EXCH01]\nimap_settings:\n  MaxConnectionsPerUser: 250\nregistry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: 250\n";

fn sim(extra: &[&str]) -> Sim {
    let mut args = vec!["--computer-name", "EXCH01", "--exchange", "2010-sp3"];
    args.extend_from_slice(extra);
    Sim::start(&args)
}

fn repo(dir: &Path, sim: &Sim) {
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
    std::fs::write(dir.join("site.yaml"), IMAP).expect("manifest written");
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = exctl();
    c.args(args)
        .current_dir(dir)
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .env("EXCTL_JOURNAL_DIR", dir.join("journal"))
        .stdin(Stdio::null());
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("exctl runs")
}

fn restarts(sim: &Sim, service: &str) -> u64 {
    sim.exchange_state()["servers"][0]["services"][service]["restarts"]
        .as_u64()
        .unwrap_or_default()
}

/// The lock value on the host, if any.
fn lock_on(sim: &Sim) -> Option<String> {
    let out = common::exec_ok(
        sim,
        &[
            "--",
            "$p = Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\exctl' -Name Lock -ErrorAction SilentlyContinue; if ($p -ne $null) { $p.Lock }",
        ],
    );
    let t = text(&out.stdout).trim().to_string();
    (!t.is_empty()).then_some(t)
}

fn set_lock(sim: &Sim, value: &str) {
    common::exec_ok(
        sim,
        &[
            "--",
            &format!(
                "if (-not (Test-Path -Path 'HKLM:\\SOFTWARE\\exctl')) {{ $null = New-Item -Path 'HKLM:\\SOFTWARE\\exctl' }}; $null = New-ItemProperty -Path 'HKLM:\\SOFTWARE\\exctl' -Name Lock -Value '{value}'"
            ),
        ],
    );
}

#[test]
fn a_held_lock_refuses_apply_and_unlock_force_removes_it() {
    let sim = sim(&["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim);
    set_lock(
        &sim,
        "CONTOSO\\ana@jump02|2026-12-07T09-00-00Z-99|2026-12-07T09:00:05|2099-01-01T00:00:00",
    );

    let plan = run(dir.path(), &["plan", "."]);
    let shown = text(&plan.stdout);
    assert!(
        shown.contains("EXCH01 is locked by CONTOSO\\ana@jump02 since 2026-12-07T09:00:05 (run 2026-12-07T09-00-00Z-99, expires 2099-01-01T00:00:00)"),
        "{shown}"
    );

    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("EXCH01 is locked by CONTOSO\\ana@jump02 since 2026-12-07T09:00:05 (run 2026-12-07T09-00-00Z-99, expires 2099-01-01T00:00:00); nothing was changed on it"),
        "{all}"
    );
    assert_eq!(restarts(&sim, "MSExchangeIMAP4"), 0);
    assert_eq!(restarts(&sim, "MSExchangeIS"), 0);
    assert!(
        lock_on(&sim).is_some_and(|l| l.contains("ana@jump02")),
        "not ours to remove"
    );

    let refused = run(dir.path(), &["unlock", "EXCH01", "."]);
    assert_eq!(refused.status.code(), Some(64), "{}", text(&refused.stderr));
    let unlocked = run(dir.path(), &["unlock", "EXCH01", ".", "--force"]);
    assert_eq!(
        unlocked.status.code(),
        Some(0),
        "{}",
        text(&unlocked.stderr)
    );
    assert!(
        text(&unlocked.stdout).contains("EXCH01: removed the lock (locked by CONTOSO\\ana@jump02"),
        "{}",
        text(&unlocked.stdout)
    );
    assert_eq!(lock_on(&sim), None);
    let journals: String = std::fs::read_dir(dir.path().join("journal"))
        .expect("journal dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default())
        .collect();
    assert!(journals.contains("\"event\":\"unlocked\""), "{journals}");

    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1);
    assert_eq!(lock_on(&sim), None, "released after the verification");
}

#[test]
fn an_expired_lock_is_taken_over() {
    let sim = sim(&["--time-scale", "0.002"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim);
    set_lock(
        &sim,
        "old@box|run-1|2001-01-01T00:00:00|2001-01-01T00:30:00",
    );
    let plan = run(dir.path(), &["plan", "."]);
    assert!(text(&plan.stdout).contains("expired at 2001-01-01T00:30:00"));
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(lock_on(&sim), None);
}

#[test]
fn two_applies_at_once_restart_the_store_once() {
    // The store takes 2 simulated minutes to restart (0.6 s here): the second apply
    // reaches the host while the first holds the lock.
    let sim = sim(&[
        "--time-scale",
        "0.005",
        "--service-timing",
        "MSExchangeIS=30,90",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim);
    let a = command(dir.path(), &["apply", ".", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("first apply");
    let b = command(dir.path(), &["apply", ".", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("second apply");
    let (a, b) = (
        a.wait_with_output().expect("first ends"),
        b.wait_with_output().expect("second ends"),
    );
    let codes = [a.status.code(), b.status.code()];
    let all = format!(
        "{}{}\n----\n{}{}",
        text(&a.stdout),
        text(&a.stderr),
        text(&b.stdout),
        text(&b.stderr)
    );
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?}\n{all}"
    );
    assert!(all.contains("EXCH01 is locked by "), "{all}");
    assert_eq!(restarts(&sim, "MSExchangeIS"), 1, "{all}");
    assert_eq!(lock_on(&sim), None);
}

#[test]
fn a_killed_apply_leaves_a_lock_that_blocks_until_forced() {
    let sim = sim(&[
        "--time-scale",
        "0.005",
        "--service-timing",
        "MSExchangeIS=30,90",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim);
    let mut child = command(dir.path(), &["apply", ".", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("apply");
    // Wait until the apply script holds the lock, then kill exctl outright.
    let started = Instant::now();
    while lock_on(&sim).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let held = lock_on(&sim).expect("the killed run's lock is still there");
    let before = restarts(&sim, "MSExchangeIS");

    // Whatever the killed run left, the next apply is refused before any change.
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("EXCH01 is locked by"), "{all}");
    assert!(all.contains("nothing was changed on it"), "{all}");
    assert_eq!(restarts(&sim, "MSExchangeIS"), before, "{all}");
    let plan = run(dir.path(), &["plan", "."]);
    assert!(
        text(&plan.stdout).contains("is locked by"),
        "{}",
        text(&plan.stdout)
    );

    let unlocked = run(dir.path(), &["unlock", "EXCH01", ".", "--force"]);
    assert_eq!(
        unlocked.status.code(),
        Some(0),
        "{}",
        text(&unlocked.stderr)
    );
    assert!(text(&unlocked.stdout).contains(held.split('|').next().unwrap_or("?")));
    assert_eq!(lock_on(&sim), None);
    // Forced open, the next apply converges the host (whatever the killed run left).
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--restart-timeout", "30m"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(lock_on(&sim), None);
}
