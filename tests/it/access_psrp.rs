//! `access: psrp` end to end against the simulator: Exchange's cmdlets go to Exchange's
//! own endpoint (`/PowerShell`, Microsoft.Exchange, commands with parameters only), the
//! host's own work to its WinRM endpoint, with no snap-in anywhere. The UCCX checklist
//! plans, applies (with both restarts) and converges on every Exchange 2010 release; plan
//! files, doctor and export work the same; Exchange's own errors come back in its words;
//! an Exchange endpoint that cannot be reached fails the host and says which.

use crate::common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{SIM_PASSWORD, SIM_USER, Sim, UCCX, exctl, text};

/// An inventory of one host reached with `access: psrp`; `session_uri` defaults to the
/// simulator's own `/PowerShell/`. The simulator takes NTLM on both endpoints (a real
/// Exchange virtual directory takes Kerberos unless configured otherwise).
fn repo(dir: &Path, sim: &Sim, version: &str, session_uri: Option<&str>, resources: &str) {
    let uri = session_uri
        .map(str::to_string)
        .unwrap_or_else(|| sim.url.replace("/wsman", "/PowerShell/"));
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: {version}\n    access: psrp\n    session_uri: {uri}\n    exchange_auth: ntlm\n",
            sim.url
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

fn count(v: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// What one exctl run asked of the host: Exchange sessions (snap-in loads, imported or
/// remote ones), Exchange endpoint pools, `Add-PSSnapin` calls, shells left open.
fn cost(sim: &Sim, f: impl FnOnce()) -> [u64; 3] {
    let before = sim.state();
    f();
    let after = sim.state();
    assert_eq!(after["shells_open"], 0, "every session closed: {after}");
    let d = |p: &[&str]| count(&after, p) - count(&before, p);
    [
        d(&["sections", "exchange", "exchange_sessions"]),
        d(&["counters", "psrp_exchange_sessions_opened"]),
        d(&["sections", "exchange", "cmdlets", "Add-PSSnapin"]),
    ]
}

fn restarts(sim: &Sim, service: &str) -> u64 {
    let ex = sim.exchange_state();
    ex["servers"][0]["services"][service]["restarts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no restart counter for {service} in {ex}"))
}

#[test]
fn uccx_converges_through_exchanges_endpoint_on_every_release() {
    for version in ["2010-rtm", "2010-sp1", "2010-sp2", "2010-sp3"] {
        let sim = Sim::start(&[
            "--computer-name",
            "EXCH01",
            "--exchange",
            version,
            "--time-scale",
            "0.002",
        ]);
        let dir = tempfile::tempdir().expect("temp dir");
        repo(dir.path(), &sim, version, None, UCCX);
        // One Exchange session on Exchange's endpoint per run, never a snap-in.
        let one_session = [1, 1, 0];
        let c = cost(&sim, || {
            let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
            assert_eq!(
                plan.status.code(),
                Some(2),
                "{version}: {}",
                text(&plan.stderr)
            );
            assert!(
                text(&plan.stdout).contains("~ MaxConnectionsPerUser: 16 → 250"),
                "{version}: {}",
                text(&plan.stdout)
            );
        });
        assert_eq!(c, one_session, "{version}: plan");
        let c = cost(&sim, || {
            let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert_eq!(out.status.code(), Some(0), "{version}: {all}");
            assert!(
                all.contains("verified: a fresh plan has nothing left to do"),
                "{version}: {all}"
            );
            assert!(!all.contains(SIM_PASSWORD), "{all}");
        });
        assert_eq!(c, one_session, "{version}: apply");
        assert_eq!(restarts(&sim, "MSExchangeIMAP4"), 1, "{version}");
        assert_eq!(restarts(&sim, "MSExchangeIS"), 1, "{version}");
        let c = cost(&sim, || {
            let again = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
            assert_eq!(
                again.status.code(),
                Some(0),
                "{version}: {}",
                text(&again.stdout)
            );
        });
        assert_eq!(c, one_session, "{version}: plan after apply");
    }
}

#[test]
fn plan_files_doctor_and_export_work_over_psrp() {
    let sim = Sim::start(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp2",
        "--time-scale",
        "0.002",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp2", None, UCCX);
    let plan = run(dir.path(), &["plan", ".", "--out", "plan.json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let apply = run(dir.path(), &["apply", "plan.json", "--auto-approve"]);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}{}",
        text(&apply.stdout),
        text(&apply.stderr)
    );
    let doctor = run(dir.path(), &["doctor", "EXCH01", ".", "--imaps-port", "0"]);
    let report = text(&doctor.stdout);
    assert!(
        matches!(doctor.status.code(), Some(0 | 2)),
        "{report}{}",
        text(&doctor.stderr)
    );
    assert!(report.contains("Information Store"), "{report}");
    let export = run(
        dir.path(),
        &[
            "export",
            "EXCH01",
            ".",
            "--kinds",
            "imap_settings",
            "-o",
            "export.yaml",
        ],
    );
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let exported = std::fs::read_to_string(dir.path().join("export.yaml")).expect("written");
    assert!(
        exported.contains("MaxConnectionsPerUser: 250"),
        "{exported}"
    );
    assert_eq!(
        sim.exchange_state()["cmdlets"]["Add-PSSnapin"],
        serde_json::Value::Null
    );
}

#[test]
fn exchanges_own_error_comes_back_in_its_words() {
    let sim = Sim::start(&["--computer-name", "EXCH01", "--exchange", "2010-sp3"]);
    let dir = tempfile::tempdir().expect("temp dir");
    // A policy still associated with a mailbox cannot be removed: Exchange says why.
    let seeded = exctl()
        .args(["exec", "--endpoint", &sim.url, "--user", SIM_USER, "--"])
        .arg("Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; New-ThrottlingPolicy -Name RetiredPolicy; Set-ThrottlingPolicyAssociation -Identity Administrator -ThrottlingPolicy RetiredPolicy")
        .env("EXCTL_PASSWORD", SIM_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("exec runs");
    assert_eq!(seeded.status.code(), Some(0), "{}", text(&seeded.stderr));
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        None,
        "targets: [EXCH01]\nthrottling_policies:\n  RetiredPolicy:\n    ensure: absent\n",
    );
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("there are currently users associated with the policy"),
        "{all}"
    );
}

#[test]
fn an_unreachable_exchange_endpoint_fails_the_host_naming_it() {
    let sim = Sim::start(&["--computer-name", "EXCH01", "--exchange", "2010-sp3"]);
    let dir = tempfile::tempdir().expect("temp dir");
    // Nothing listens on port 9 of loopback.
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        Some("http://127.0.0.1:9/PowerShell/"),
        UCCX,
    );
    let out = run(dir.path(), &["plan", "."]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("http://127.0.0.1:9/PowerShell/"), "{all}");
    assert!(!all.contains(SIM_PASSWORD), "{all}");
}

/// A host set up by default (no CredSSP, no delegation): the snap-in's cmdlets fail on
/// Active Directory there, Exchange's endpoint does not care.
#[test]
fn the_double_hop_does_not_concern_exchanges_endpoint() {
    let sim = Sim::start_without_delegation(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp3",
        "--time-scale",
        "0.002",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", None, UCCX);
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("verified: a fresh plan has nothing left to do"),
        "{all}"
    );
    // The same host through the snap-in: Exchange's cmdlets fail on AD.
    let inventory = dir.path().join("inventory.yaml");
    let snapin = std::fs::read_to_string(&inventory)
        .expect("inventory")
        .replace("    access: psrp\n", "    access: snapin\n")
        .replace(
            &format!(
                "    session_uri: {}\n    exchange_auth: ntlm\n",
                sim.url.replace("/wsman", "/PowerShell/")
            ),
            "",
        );
    std::fs::write(&inventory, snapin).expect("written");
    let plan = run(dir.path(), &["plan", "."]);
    let all = format!("{}{}", text(&plan.stdout), text(&plan.stderr));
    assert_eq!(plan.status.code(), Some(1), "{all}");
    assert!(all.contains("Active Directory operation failed"), "{all}");
    assert!(all.contains("manifest::snapin-unsupported"), "{all}");
}

/// RBAC applies through Exchange's endpoint: a View-Only Organization Management account
/// plans (the Get- cmdlets are in its session) and cannot apply (Set- cmdlets are not);
/// an account without any management role cannot even read.
#[test]
fn rbac_decides_what_the_account_may_do() {
    let sim = Sim::start(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp3",
        "--exchange-role",
        "view-only",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(
        dir.path(),
        &sim,
        "2010-sp3",
        None,
        "targets: [EXCH01]\nimap_settings:\n  MaxConnectionsPerUser: 250\n",
    );
    let plan = run(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stderr));
    let out = run(dir.path(), &["apply", ".", "--auto-approve"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("The term 'Set-ImapSettings' is not recognized"),
        "{all}"
    );
    assert_eq!(
        sim.exchange_state()["servers"][0]["imap_configured"]["MaxConnectionsPerUser"],
        16
    );

    let none = Sim::start(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp3",
        "--exchange-role",
        "none",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(
        dir.path(),
        &none,
        "2010-sp3",
        None,
        "targets: [EXCH01]\nimap_settings:\n  MaxConnectionsPerUser: 250\n",
    );
    let plan = run(dir.path(), &["plan", "."]);
    let all = format!("{}{}", text(&plan.stdout), text(&plan.stderr));
    assert_eq!(plan.status.code(), Some(1), "{all}");
    assert!(
        all.contains("isn't assigned to any management roles"),
        "{all}"
    );
}

/// `--move-active-databases` runs the DAG maintenance scripts in the host's session,
/// which has no Exchange Management Shell under `access: psrp`: refused before anything
/// changes, saying what to do instead.
#[test]
fn moving_active_databases_is_refused_over_psrp_before_any_change() {
    let sim = Sim::start(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp3",
        "--time-scale",
        "0.002",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), &sim, "2010-sp3", None, UCCX);
    let out = run(
        dir.path(),
        &["apply", ".", "--auto-approve", "--move-active-databases"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("access: psrp has none there"), "{all}");
    assert!(all.contains("nothing was changed on EXCH01"), "{all}");
    assert_eq!(restarts(&sim, "MSExchangeIS"), 0);
}
