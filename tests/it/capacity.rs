//! Capacity warnings: `validate` checks every declared limit on the shared account's
//! path against the declared demand (and the Exchange default of an undeclared one);
//! `plan` reads the server's value of the limits the manifests leave out.

use crate::common;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, text};

/// 20 desktops × 2 + 2 = 42 connections; 10 desktops behind one address = 20.
const DEMAND: &str = "capacity:\n  account: CONTOSO\\uccx-agent\n  desktops: 20\n  server_connections: 2\n  desktops_per_address: 10\n";

/// Every limit high enough.
const FITTING: &str = "imap_settings:
  MaxConnectionsPerUser: 42
  MaxConnectionFromSingleIP: 20
  MaxConnections: 1000
throttling_policies:
  UCCX:
    IMAPMaxConcurrency: 42
throttling_associations:
  - identity: uccx-agent
    policy: UCCX
registry_values:
  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'
    name: Maximum Allowed Service Sessions Per User
    type: dword
    value: 42
";

fn repo(dir: &Path, endpoint: &str, site: &str) {
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "sites:\n  lon:\n    hosts:\n      EXCH01:\n        endpoint: {endpoint}\n        user: {SIM_USER}\n        credential: env:EXCTL_SIM_PASSWORD\n        exchange: 2010-sp3\n{}",
            common::exchange_endpoint(endpoint, 8)
        ),
    )
    .expect("inventory written");
    std::fs::write(dir.join("lon.yaml"), format!("site: lon\n{site}")).expect("site written");
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

fn validate(site: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), "http://127.0.0.1:1/wsman", site);
    let out = run(dir.path(), &["validate", ".", "--short"]);
    (out.status.code(), text(&out.stderr))
}

#[test]
fn limits_that_fit_the_demand_are_quiet() {
    let (code, err) = validate(&format!("{DEMAND}{FITTING}"));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("capacity::"), "{err}");
}

#[test]
fn each_declared_limit_below_the_demand_is_a_warning_at_its_value() {
    for (from, to, limit, line, need) in [
        (
            "MaxConnectionsPerUser: 42",
            "MaxConnectionsPerUser: 41",
            "MaxConnectionsPerUser is 41",
            8,
            42,
        ),
        (
            "MaxConnectionFromSingleIP: 20",
            "MaxConnectionFromSingleIP: 19",
            "MaxConnectionFromSingleIP is 19",
            9,
            20,
        ),
        (
            "MaxConnections: 1000",
            "MaxConnections: 30",
            "MaxConnections is 30",
            10,
            42,
        ),
        (
            "IMAPMaxConcurrency: 42",
            "IMAPMaxConcurrency: 16",
            "IMAPMaxConcurrency is 16",
            13,
            42,
        ),
        (
            "value: 42",
            "value: 16",
            "Maximum Allowed Service Sessions Per User is 16",
            21,
            42,
        ),
    ] {
        let (code, err) = validate(&format!("{DEMAND}{}", FITTING.replace(from, to)));
        assert_eq!(code, Some(0), "warnings are not errors: {err}");
        let want = format!("./lon.yaml:{line}:");
        let hit = err
            .lines()
            .find(|l| l.contains("capacity::limit-too-low"))
            .unwrap_or_else(|| panic!("{limit}: no warning in {err}"));
        assert!(hit.starts_with(&want), "{limit}: {hit}");
        assert!(
            hit.contains(limit) && hit.contains(&format!("needs {need}")),
            "{hit}"
        );
        assert_eq!(err.matches("capacity::").count(), 1, "{err}");
    }
}

#[test]
fn unlimited_throttling_allows_any_demand() {
    let (code, err) = validate(&format!(
        "{DEMAND}{}",
        FITTING.replace("IMAPMaxConcurrency: 42", "IMAPMaxConcurrency: unlimited")
    ));
    assert_eq!(code, Some(0));
    assert!(!err.contains("capacity::"), "{err}");
}

#[test]
fn undeclared_limits_whose_default_is_too_low_are_warnings_and_strict_makes_them_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    repo(dir.path(), "http://127.0.0.1:1/wsman", DEMAND);
    let out = run(dir.path(), &["validate", ".", "--short"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The per-user IMAP limit and the store default to 16; the others allow 42.
    assert!(err.contains("./lon.yaml:3:3: warning[capacity::default-too-low]: MaxConnectionsPerUser is not declared, and Exchange 2010's default 16 is below the 42"), "{err}");
    assert!(
        err.contains("Maximum Allowed Service Sessions Per User is not declared"),
        "{err}"
    );
    assert_eq!(err.matches("capacity::").count(), 2, "{err}");
    // Each names the host and site it concerns.
    assert_eq!(err.matches("(on EXCH01 (site lon))").count(), 2, "{err}");
    let strict = run(dir.path(), &["validate", ".", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stderr));
}

#[test]
fn declared_capacity_warnings_are_in_the_text_plan_and_the_comment() {
    let sim = Sim::start(&["--computer-name", "EXCH01"]);
    let dir = tempfile::tempdir().expect("temp dir");
    repo(
        dir.path(),
        &sim.url,
        &format!(
            "{DEMAND}{}",
            FITTING.replace("MaxConnectionsPerUser: 42", "MaxConnectionsPerUser: 30")
        ),
    );
    let out = run(dir.path(), &["plan", "."]);
    let plan = text(&out.stdout);
    assert!(
        plan.contains("Host EXCH01 (site lon)\n  capacity warning: MaxConnectionsPerUser is 30 but uccx-agent needs 42"),
        "{plan}"
    );
    assert!(
        plan.contains("(./lon.yaml:8); raise it to at least 42"),
        "{plan}"
    );
    let out = run(dir.path(), &["plan", ".", "--format", "markdown"]);
    let md = text(&out.stdout);
    assert!(
        md.contains("> **Capacity**: a limit is below the declared demand on 1 host: EXCH01 (site lon); see its section."),
        "{md}"
    );
    assert!(
        md.contains("- ⚠️ capacity warning: MaxConnectionsPerUser is 30 but uccx-agent needs 42"),
        "{md}"
    );
}

#[test]
fn a_capacity_section_is_validated_like_the_rest() {
    let (code, err) = validate("capacity:\n  account: x\n  desktops: many\n  per_desktop: 2\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("./lon.yaml:5:3:") && err.contains("per_desktop"),
        "{err}"
    );
    assert!(err.contains("./lon.yaml:4:13:"), "{err}");
}

#[test]
fn plan_reads_the_server_value_of_each_undeclared_limit() {
    let sim = Sim::start(&["--computer-name", "EXCH01"]);
    // Lower what the manifests will not mention: MaxConnections, MaxConnectionFromSingleIP
    // and the default policy's IMAPMaxConcurrency; MaxConnectionsPerUser and the store
    // stay at their 16.
    let set = common::exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; Set-ImapSettings -Server EXCH01 -MaxConnections 30 -MaxConnectionFromSingleIP 5; foreach ($p in @(Get-ThrottlingPolicy)) { if ($p.IsDefault) { Set-ThrottlingPolicy -Identity $p.Name -IMAPMaxConcurrency 10 } }",
        ],
    );
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    let dir = tempfile::tempdir().expect("temp dir");
    repo(
        dir.path(),
        &sim.url,
        &format!("{DEMAND}imap_settings:\n  Banner: hello\n"),
    );
    let out = run(dir.path(), &["plan", "."]);
    let plan = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{plan}{}", text(&out.stderr));
    for (want, lines) in [
        (
            "MaxConnections is 30 (Get-ImapSettings), below the 42",
            "MaxConnections: 42",
        ),
        (
            "MaxConnectionFromSingleIP is 5 (Get-ImapSettings), below the 20",
            "MaxConnectionFromSingleIP: 20",
        ),
        (
            "MaxConnectionsPerUser is 16 (Get-ImapSettings), below the 42",
            "MaxConnectionsPerUser: 42",
        ),
        (
            "IMAPMaxConcurrency is 10 (the default policy), below the 42",
            "policy: uccx-agent-imap",
        ),
        (
            "Maximum Allowed Service Sessions Per User is 16 (registry value absent: the store's default)",
            "value: 42",
        ),
    ] {
        assert!(
            plan.contains(&format!("capacity warning: {want}")),
            "{want}: {plan}"
        );
        assert!(plan.contains(lines), "{lines}: {plan}");
    }
    // Once the manifests declare fitting values, the plan has no capacity warning.
    repo(dir.path(), &sim.url, &format!("{DEMAND}{FITTING}"));
    let out = run(dir.path(), &["plan", "."]);
    let plan = text(&out.stdout);
    assert!(!plan.contains("capacity warning"), "{plan}");
}
