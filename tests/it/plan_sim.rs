//! `exctl plan` end to end against the simulator: every resource kind on every Exchange
//! 2010 release, and the sample repository (`manifests/`, the UCCX baseline) with one
//! simulator per host on every release it is valid for, in the three output formats
//! (insta snapshots under `tests/it/snapshots/`), and what the simulator saw
//! (`/sim/state`): one WinRS shell, one PowerShell process and one Exchange snap-in load
//! per host and plan, whatever the number of resources, and no cmdlet that changes
//! anything.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, text};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn inventory_entry(host: &str, url: &str, release: &str) -> String {
    format!(
        "  {host}:\n    endpoint: {url}\n    auth: ntlm\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: {release}\n    site: lab\n{}",
        common::exchange_endpoint(url, 4)
    )
}

fn sim(release: &str) -> Sim {
    Sim::start(&["--exchange", release, "--time-scale", "0.001"])
}

/// Runs `exctl plan manifests` in `dir` with extra arguments.
fn plan(dir: &Path, extra: &[&str]) -> Output {
    exctl()
        .arg("plan")
        .arg("manifests")
        .args(extra)
        .current_dir(dir)
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("exctl plan runs")
}

/// Replaces what changes between runs: the simulators' ports, and durations
/// (`in 0.1 s`, as progress lines report them).
fn normalize(s: &str, sims: &[(&str, &Sim)]) -> String {
    let mut out = s.to_string();
    for (host, sim) in sims {
        out = out.replace(&sim.url, &format!("http://127.0.0.1:PORT-{host}/wsman"));
    }
    in_any_order(&durations(&out))
}

/// Sites are planned in parallel: their progress lines (`[site] ...`) come in the order
/// they finish, and the summary table's last column is a duration. Both made stable.
fn in_any_order(s: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut progress: Vec<String> = Vec::new();
    for line in s.split_inclusive('\n') {
        if line.starts_with('[') {
            progress.push(line.to_string());
            continue;
        }
        progress.sort();
        out.append(&mut progress);
        let trimmed = line.trim_end();
        let table_row = trimmed.ends_with(" s")
            && trimmed.rsplit(' ').nth(1).is_some_and(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
        if table_row {
            let cut = trimmed.rsplit_once(' ').map_or(trimmed, |x| x.0);
            let cut = cut.rsplit_once(' ').map_or(cut, |x| x.0);
            out.push(format!("{cut} N s\n"));
        } else {
            out.push(line.to_string());
        }
    }
    progress.sort();
    out.append(&mut progress);
    out.concat()
}

/// `in <number> s` with the number replaced by `N`.
fn durations(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(" in ") {
        let (before, after) = rest.split_at(at + 4);
        out.push_str(before);
        let number_len = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        let unit = &after[number_len..];
        let seconds =
            unit.starts_with(" s") && !unit[2..].starts_with(|c: char| c.is_alphanumeric());
        if number_len > 0 && seconds {
            out.push('N');
            rest = &after[number_len..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn progress_and_table_durations_do_not_depend_on_timing() {
    assert_eq!(
        in_any_order(
            "[b] planned\n[a] planned\n\nSITE  RESULT  DURATION\nlon   done       0.3 s\n"
        ),
        "[a] planned\n[b] planned\n\nSITE  RESULT  DURATION\nlon   done       N s\n"
    );
}

#[test]
fn durations_are_normalized() {
    assert_eq!(
        durations("[lab] planned in 0.1 s: 1 change; in 12 steps; in 3 s"),
        "[lab] planned in N s: 1 change; in 12 steps; in N s"
    );
}

/// The three formats of one plan, as one snapshot; each run checked against the
/// simulators' counters. Returns the exit code of `--detailed-exitcode`.
fn plan_all_formats(dir: &Path, sims: &[(&str, &Sim)]) -> (String, Option<i32>) {
    let mut snapshot = String::new();
    let mut detailed = None;
    for (format, extra) in [
        ("text", &["--detailed-exitcode"][..]),
        ("markdown", &["--format", "markdown"][..]),
        ("json", &["--format", "json"][..]),
    ] {
        let before: Vec<serde_json::Value> = sims.iter().map(|(_, s)| s.state()).collect();
        let out = plan(dir, extra);
        let stderr = text(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "plan failed ({:?}):\n{stderr}\n{}",
            out.status.code(),
            text(&out.stdout)
        );
        if format == "text" {
            detailed = out.status.code();
        }
        for ((host, sim), before) in sims.iter().zip(&before) {
            let after = sim.state();
            let delta = |path: &[&str]| {
                let get = |v: &serde_json::Value| {
                    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
                };
                get(&after) - get(before)
            };
            // access: psrp (the default): one session on the host's WinRM endpoint
            // and one on Exchange's, whatever the number of resources.
            assert_eq!(delta(&["shells_created"]), 2, "{host}: two shells per plan");
            assert_eq!(
                delta(&["sections", "exchange", "powershell_processes"]),
                1,
                "{host}: one PowerShell process per plan"
            );
            assert_eq!(
                delta(&["counters", "psrp_exchange_sessions_opened"]),
                1,
                "{host}: one session on Exchange's endpoint per plan"
            );
            assert_eq!(
                delta(&["sections", "exchange", "exchange_sessions"]),
                1,
                "{host}: one Exchange session per plan"
            );
            assert_eq!(
                delta(&["sections", "exchange", "cmdlets", "Add-PSSnapin"]),
                0,
                "{host}: no snap-in"
            );
            assert_eq!(after["shells_open"], 0, "{host}: the shell was closed");
        }
        snapshot.push_str(&format!("===== {format} =====\n"));
        snapshot.push_str(&normalize(&text(&out.stdout), sims));
        if !stderr.trim().is_empty() {
            snapshot.push_str(&format!("----- stderr -----\n{}", normalize(&stderr, sims)));
        }
    }
    (snapshot, detailed)
}

/// Asserts that nothing but reads ran on a simulator: no Set-, New-, Add- (other than
/// Add-PSSnapin) or Remove- cmdlet.
fn assert_read_only(sim: &Sim) {
    let state = sim.exchange_state();
    let cmdlets = state["cmdlets"].as_object().expect("cmdlet counters");
    assert!(!cmdlets.is_empty());
    for name in cmdlets.keys() {
        let writes = [
            "Set-", "New-", "Add-", "Remove-", "Restart-", "Stop-", "Start-",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        assert!(
            !writes || name == "Add-PSSnapin",
            "plan ran {name}: {cmdlets:?}"
        );
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("directory");
    }
    std::fs::write(path, content).expect("file written");
}

/// The manifests of one case for one release (`None`: not valid there).
fn case_manifest(case: &str, release: &str) -> Option<String> {
    let rtm = release == "2010-rtm";
    let body = match case {
        "imap_settings" => {
            "imap_settings:\n  MaxConnectionsPerUser: 250\n  MaxConnectionFromSingleIP: 250\n".into()
        }
        "receive_connectors" => "receive_connectors:\n  \"Default EXCH01\":\n    MaxInboundConnectionPerSource: unlimited\n    MaxMessageSize: 20MB\n  \"EXCH01\\\\Client EXCH01\":\n    ConnectionTimeout: '00:15:00'\n".into(),
        "receive_connectors_all" => {
            "receive_connectors:\n  \"*\":\n    MaxInboundConnectionPerSource: unlimited\n    MaxInboundConnectionPercentagePerSource: 100\n".into()
        }
        "registry_values" => "registry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: 250\n  - path: 'HKLM:\\SOFTWARE\\Contoso\\Lab'\n    name: Owner\n    type: string\n    value: Messaging team\n  - path: 'HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup'\n    name: MsiProductMajor\n    type: dword\n    value: 14\n  - path: 'HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup'\n    name: MsiInstallPath\n    type: expandstring\n    value: '%ProgramFiles%\\Microsoft\\Exchange Server\\V14\\'\n".into(),
        "ad_permissions" => "ad_permissions:\n  - target: organization\n    user: CONTOSO\\uccx-agent\n    extended_rights: [View Information Store status]\n".into(),
        "throttling_policies" => {
            let mut s = String::from(
                "throttling_policies:\n  UCCXThrottlingPolicy:\n    IMAPMaxConcurrency: unlimited\n    IMAPPercentTimeInCAS: 200\n    OWAMaxConcurrency: 10\n",
            );
            if !rtm {
                s.push_str("    CPAMaxConcurrency: 50\n");
            }
            s
        }
        "throttling_associations" => "throttling_policies:\n  AgentPolicy:\n    IMAPMaxConcurrency: unlimited\nthrottling_associations:\n  - identity: uccx-agent\n    policy: AgentPolicy\n  - identity: Administrator\n    policy: default\n".into(),
        "in_sync" => "imap_settings:\n  MaxConnectionsPerUser: 16\nthrottling_associations:\n  - identity: uccx-agent\n    policy: default\n".into(),
        other => panic!("unknown case {other}"),
    };
    Some(format!("targets: [EXCH01]\n{body}"))
}

const CASES: [&str; 8] = [
    "imap_settings",
    "receive_connectors",
    "receive_connectors_all",
    "registry_values",
    "ad_permissions",
    "throttling_policies",
    "throttling_associations",
    "in_sync",
];

/// Copies the sample repository's files into `dst`.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("directory");
    for entry in std::fs::read_dir(src).expect("readable directory") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copied");
        }
    }
}

/// Every case, then the UCCX baseline, on one release.
fn release_cases(release: &str) {
    let sim = sim(release);
    for case in CASES {
        let Some(manifest) = case_manifest(case, release) else {
            continue;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        write(
            dir.path(),
            "manifests/inventory.yaml",
            &format!("hosts:\n{}", inventory_entry("EXCH01", &sim.url, release)),
        );
        write(dir.path(), &format!("manifests/{case}.yaml"), &manifest);
        let (snapshot, code) = plan_all_formats(dir.path(), &[("EXCH01", &sim)]);
        let expected = if case == "in_sync" { 0 } else { 2 };
        assert_eq!(code, Some(expected), "{case} on {release}:\n{snapshot}");
        insta::assert_snapshot!(format!("{case}-{release}"), snapshot);
    }

    assert_read_only(&sim);
}

#[test]
fn plans_on_exchange_2010_rtm() {
    release_cases("2010-rtm");
}

#[test]
fn plans_on_exchange_2010_sp1() {
    release_cases("2010-sp1");
}

#[test]
fn plans_on_exchange_2010_sp2() {
    release_cases("2010-sp2");
}

#[test]
fn plans_on_exchange_2010_sp3() {
    release_cases("2010-sp3");
}

/// `(host, endpoint, release)` of every host of an inventory, by a line scan that does not
/// depend on its layout: a key alone on its line (`NAME:`) names the host whose
/// `endpoint:` and `exchange:` lines follow.
fn inventory_hosts(text: &str) -> Vec<(String, String, String)> {
    let mut hosts: Vec<(String, String, String)> = Vec::new();
    let mut key = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if let Some(k) = t.strip_suffix(':')
            && !k.contains([' ', ':'])
        {
            key = k.to_string();
        } else if let Some(endpoint) = t.strip_prefix("endpoint:") {
            hosts.push((key.clone(), endpoint.trim().to_string(), String::new()));
        } else if let Some(release) = t.strip_prefix("exchange:")
            && let Some(h) = hosts.last_mut()
            && h.2.is_empty()
        {
            h.2 = release.trim().to_string();
        }
    }
    hosts
}

/// The sample repository (`manifests/`) as shipped, with one simulator per host, each
/// host's SP1-or-later release replaced by `later` (RTM hosts stay RTM: the SP1 baseline
/// is not valid there): the whole UCCX baseline, planned on every release.
fn sample_repository(later: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifests = dir.path().join("manifests");
    copy_dir(&workspace().join("manifests"), &manifests);
    let path = manifests.join("inventory.yaml");
    let mut inventory = std::fs::read_to_string(&path).expect("inventory");
    for release in ["2010-sp1", "2010-sp2", "2010-sp3"] {
        inventory = inventory.replace(
            &format!("exchange: {release}"),
            &format!("exchange: {later}"),
        );
    }
    let hosts = inventory_hosts(&inventory);
    assert!(hosts.len() >= 2, "{hosts:?}");
    let mut sims = Vec::new();
    for (host, endpoint, release) in &hosts {
        let sim = Sim::start(&[
            "--exchange",
            release,
            "--computer-name",
            host,
            "--time-scale",
            "0.001",
        ]);
        // The endpoint and the Exchange endpoint beside it (`session_uri`).
        inventory = inventory.replace(
            endpoint.trim_end_matches("/wsman"),
            sim.url.trim_end_matches("/wsman"),
        );
        sims.push((host.as_str(), sim));
    }
    std::fs::write(&path, &inventory).expect("inventory written");
    let refs: Vec<(&str, &Sim)> = sims.iter().map(|(h, s)| (*h, s)).collect();
    let (snapshot, code) = plan_all_formats(dir.path(), &refs);
    assert_eq!(code, Some(2));
    insta::assert_snapshot!(format!("uccx_baseline-rtm+{later}"), snapshot);
    for (_, sim) in &sims {
        assert_read_only(sim);
    }
}

#[test]
fn the_sample_repository_on_rtm_and_sp1() {
    sample_repository("2010-sp1");
}

#[test]
fn the_sample_repository_on_rtm_and_sp2() {
    sample_repository("2010-sp2");
}

#[test]
fn the_sample_repository_on_rtm_and_sp3() {
    sample_repository("2010-sp3");
}

#[test]
fn a_host_on_another_release_than_declared_is_an_error_of_that_host() {
    let sim = sim("2010-sp1");
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "manifests/inventory.yaml",
        &format!(
            "hosts:\n{}",
            inventory_entry("EXCH01", &sim.url, "2010-sp3")
        ),
    );
    write(
        dir.path(),
        "manifests/site.yaml",
        &case_manifest("imap_settings", "2010-sp3").expect("valid"),
    );
    let out = plan(dir.path(), &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("(Version 14.1 (Build 218.15)) but the inventory declares 2010-sp3"),
        "{stdout}"
    );
}

#[test]
fn an_inventory_name_that_is_not_the_computer_name_says_both_and_where() {
    let sim = Sim::start(&["--computer-name", "EXCH01", "--exchange", "2010-sp3"]);
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "manifests/inventory.yaml",
        &format!("hosts:\n{}", inventory_entry("EX3B", &sim.url, "2010-sp3")),
    );
    write(
        dir.path(),
        "manifests/site.yaml",
        "targets: [EX3B]\nimap_settings:\n  MaxConnectionsPerUser: 250\n",
    );
    let out = plan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "error: the inventory names this host EX3B (manifests/inventory.yaml:2), but the server at {} is EXCH01: Exchange knows a server by its computer name, so name the host EXCH01 in the inventory (Exchange said: ",
            sim.url
        )),
        "{stdout}"
    );
    // PowerShell's ErrorActionPreference preamble is not shown; the error it wraps is.
    assert!(!stdout.contains("ErrorActionPreference"), "{stdout}");
    assert!(stdout.contains("'EX3B' couldn't be found"), "{stdout}");
}

#[test]
fn a_mailbox_that_does_not_exist_is_named_with_its_manifest_line() {
    let sim = sim("2010-sp3");
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "manifests/inventory.yaml",
        &format!(
            "hosts:\n{}",
            inventory_entry("EXCH01", &sim.url, "2010-sp3")
        ),
    );
    write(
        dir.path(),
        "manifests/site.yaml",
        "targets: [EXCH01]\nthrottling_associations:\n  - identity: nobody\n    policy: default\n",
    );
    let out = plan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("nobody"), "{stdout}");
    assert!(
        stdout.contains("(declared at manifests/site.yaml:3)"),
        "{stdout}"
    );
    assert!(!stdout.contains("ErrorActionPreference"), "{stdout}");
}

#[test]
fn an_untrusted_certificate_names_the_inventory_key_not_execs_flag() {
    let sim = Sim::start(&["--tls", "--computer-name", "EXCH01"]);
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "manifests/inventory.yaml",
        &format!(
            "hosts:\n{}",
            inventory_entry("EXCH01", &sim.url, "2010-sp3")
        ),
    );
    write(
        dir.path(),
        "manifests/site.yaml",
        "targets: [EXCH01]\nimap_settings:\n  MaxConnectionsPerUser: 250\n",
    );
    let out = plan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("give the issuing CA as `ca_file:` of EXCH01 in the inventory"),
        "{all}"
    );
    assert!(!all.contains("--ca-file"), "{all}");
}
