//! `exctl apply` end to end, for what is decided before any host is contacted: the
//! confirmation rule, plan files recognised by content and refused when the manifests
//! changed, and option validation. (Applying to a host is covered by the engine's tests
//! with a fake host, and will be against the simulator once it interprets PowerShell.)

use crate::common;

use std::process::Stdio;

use common::{exctl, text};

const INVENTORY: &str = "hosts:\n  EX01:\n    endpoint: http://127.0.0.1:9/wsman\n    user: CONTOSO\\Administrator\n    credential: env:EXCTL_TEST_APPLY_PASSWORD\n    exchange: 2010-sp3\n    exchange_auth: ntlm\n";
const SITE: &str = "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n";

fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(dir.path().join("lon.yaml"), SITE).unwrap();
    dir
}

fn apply(args: &[&str]) -> std::process::Output {
    exctl()
        .arg("apply")
        .args(args)
        .env("EXCTL_TEST_APPLY_PASSWORD", "Not-Used-42")
        .stdin(Stdio::null())
        .output()
        .expect("exctl apply runs")
}

#[test]
fn without_a_terminal_and_without_auto_approve_it_refuses_before_connecting() {
    let dir = manifests();
    let out = apply(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing to apply without confirmation"),
        "{err}"
    );
    assert!(err.contains("--auto-approve"), "{err}");
    assert!(err.contains("exctl plan --out FILE"), "{err}");
    // Nothing was planned: the host (a closed port) was never contacted.
    assert!(!err.contains("127.0.0.1:9"), "{err}");
    assert_eq!(text(&out.stdout), "");
}

fn plan_file(dir: &std::path::Path, digest: &str) -> String {
    let inventory = dir.join("inventory.yaml").display().to_string();
    let lon = dir.join("lon.yaml").display().to_string();
    serde_json::json!({
        "format": "exctl-plan",
        "format_version": 3,
        "exctl_version": "0.1.0",
        "created_utc": "2024-05-01T09:00:00Z",
        "inputs": [dir.display().to_string()],
        "manifests": [
            { "path": inventory, "sha256": digest },
            { "path": lon, "sha256": digest }
        ],
        "hosts": [],
        "summary": { "create": 0, "update": 0, "delete": 0, "restart": 0 }
    })
    .to_string()
}

#[test]
fn a_plan_file_is_recognised_by_content_and_refused_when_the_manifests_changed() {
    let dir = manifests();
    // Any name: the content decides.
    let file = dir.path().join("reviewed-change.txt");
    std::fs::write(&file, plan_file(dir.path(), &"0".repeat(64))).unwrap();
    let out = apply(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: refusing to apply {}: the manifests changed since the plan was made:",
            file.display()
        )),
        "{err}"
    );
    let lon = dir.path().join("lon.yaml").display().to_string();
    assert!(
        err.contains(&format!(
            "{lon}: this manifest changed since the plan was made (SHA-256 "
        )),
        "{err}"
    );
    assert!(!err.contains("Not-Used-42"));
}

#[test]
fn damaged_or_mixed_plan_files_are_refused() {
    let dir = manifests();
    let damaged = dir.path().join("plan.json");
    std::fs::write(
        &damaged,
        "{\"format\": \"exctl-plan\", \"format_version\": 1, \"hosts\": [",
    )
    .unwrap();
    let out = apply(&[damaged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("looks like an exctl plan file, but it cannot be read"),
        "{}",
        text(&out.stderr)
    );

    let newer = dir.path().join("newer.json");
    std::fs::write(
        &newer,
        "{\"format\": \"exctl-plan\", \"format_version\": 7}",
    )
    .unwrap();
    let out = apply(&[newer.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("format_version 7"),
        "{}",
        text(&out.stderr)
    );

    // Format 2 held each change as script text: made by an older exctl.
    let older = dir.path().join("older.json");
    std::fs::write(
        &older,
        "{\"format\": \"exctl-plan\", \"format_version\": 2, \"hosts\": []}",
    )
    .unwrap();
    let out = apply(&[older.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("made by an older exctl"), "{err}");
    assert!(err.contains("run plan again"), "{err}");

    let good = dir.path().join("good.plan");
    std::fs::write(&good, plan_file(dir.path(), &"0".repeat(64))).unwrap();
    let inventory = dir.path().join("inventory.yaml");
    let out = apply(&[good.to_str().unwrap(), inventory.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is a plan file: apply it alone"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_maintenance_window_is_a_usage_error() {
    let dir = manifests();
    let out = apply(&[
        "--auto-approve",
        "--maintenance-window",
        "25:00-03:00",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("expected HH:MM-HH:MM"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn manifest_problems_come_before_the_confirmation_rule() {
    let dir = manifests();
    std::fs::write(
        dir.path().join("lon.yaml"),
        "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUsr: 40\n",
    )
    .unwrap();
    let out = apply(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("MaxConnectionsPerUsr"), "{err}");
    assert!(!err.contains("refusing to apply"), "{err}");
}
