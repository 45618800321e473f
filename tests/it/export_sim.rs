//! `exctl export` end to end against the simulator: the round trip (export a host, then
//! plan the exported manifest against it: no change) on a fresh server of every Exchange
//! 2010 release and on every host of the sample repository (`manifests/`, the whole UCCX
//! baseline) after it was applied; the exported manifest passes `exctl validate
//! --strict`; the export only reads (one shell, one PowerShell process, no cmdlet that
//! changes anything); and a change made on the server afterwards shows in the plan, so the
//! round trip is no plan that never looks.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl, exec_ok, text};

const UCCX_USER: &str = "CONTOSO\\uccx-agent";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sim(release: &str, computer: &str) -> Sim {
    Sim::start(&[
        "--exchange",
        release,
        "--computer-name",
        computer,
        "--time-scale",
        "0.001",
    ])
}

fn run(dir: &Path, args: &[&str]) -> Output {
    exctl()
        .args(args)
        .current_dir(dir)
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .env("EXCTL_KEYRING", "none")
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs")
}

fn ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed:\n{}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
}

/// A directory `manifests/` with an inventory of one host (no baselines).
fn one_host_repo(host: &str, site: &str, url: &str, release: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("manifests")).expect("directory");
    std::fs::write(
        dir.path().join("manifests/inventory.yaml"),
        format!(
            "hosts:\n  {host}:\n    endpoint: {url}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: {release}\n    site: {site}\n{}",
            common::exchange_endpoint(url, 4)
        ),
    )
    .expect("inventory written");
    dir
}

/// Exports `host` into `manifests/export.yaml` of `dir` (named mailboxes and users
/// included), checking that the export only read the server; returns the manifest.
fn export(dir: &Path, sim: &Sim, host: &str) -> String {
    let before = sim.state();
    let out = run(
        dir,
        &[
            "export",
            host,
            "manifests",
            "--mailboxes",
            "uccx-agent,Administrator",
            "--users",
            UCCX_USER,
            "-o",
            "manifests/export.yaml",
        ],
    );
    ok(&out, &format!("export of {host}"));
    assert!(
        text(&out.stderr).contains("Wrote manifests/export.yaml"),
        "{}",
        text(&out.stderr)
    );
    let after = sim.state();
    let delta = |path: &[&str]| {
        let get = |v: &serde_json::Value| path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0);
        get(&after) - get(&before)
    };
    // The host's session and Exchange's (access: psrp, the default).
    assert_eq!(delta(&["shells_created"]), 2, "two shells per export");
    assert_eq!(
        delta(&["counters", "psrp_exchange_sessions_opened"]),
        1,
        "one session on Exchange's endpoint per export"
    );
    assert_eq!(
        delta(&["sections", "exchange", "powershell_processes"]),
        1,
        "one PowerShell process per export"
    );
    std::fs::read_to_string(dir.join("manifests/export.yaml")).expect("the export was written")
}

/// Asserts that nothing but reads ran on a simulator since it started.
fn assert_read_only(sim: &Sim) {
    let state = sim.exchange_state();
    let cmdlets = state["cmdlets"].as_object().expect("cmdlet counters");
    for name in cmdlets.keys() {
        let writes = ["Set-", "New-", "Add-", "Remove-", "Restart-", "Stop-"]
            .iter()
            .any(|p| name.starts_with(p));
        assert!(
            !writes || name == "Add-PSSnapin",
            "export ran {name}: {cmdlets:?}"
        );
    }
}

/// `plan --detailed-exitcode` of `dir`'s manifests: its exit code and output.
fn plan(dir: &Path, paths: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["plan"];
    args.extend_from_slice(paths);
    args.extend_from_slice(&["--detailed-exitcode", "--progress", "none"]);
    let out = run(dir, &args);
    (
        out.status.code(),
        format!("{}\n{}", text(&out.stdout), text(&out.stderr)),
    )
}

fn validate_strict(dir: &Path) {
    let out = run(dir, &["validate", "manifests", "--strict"]);
    ok(&out, "validate --strict of the export");
}

/// A fresh server of `release`: export, validate, plan (no change); then a value changed
/// on the server shows in the plan of the same export.
fn fresh_round_trip(release: &str) {
    let sim = sim(release, "EXCH01");
    let dir = one_host_repo("EXCH01", "lab", &sim.url, release);
    let manifest = export(dir.path(), &sim, "EXCH01");
    assert_read_only(&sim);
    assert!(
        manifest.starts_with("# Exported from EXCH01 ("),
        "{manifest}"
    );
    assert!(manifest.contains("\nsite: lab\n"), "{manifest}");
    assert!(manifest.contains("\nhost: EXCH01\n"), "{manifest}");
    for section in [
        "receive_connectors:",
        "imap_settings:",
        "throttling_associations:",
        "  Default EXCH01:",
        "  Client EXCH01:",
    ] {
        assert!(
            manifest.contains(&format!("\n{section}\n")),
            "{section}:\n{manifest}"
        );
    }
    // The whole IMAP configuration, the client connection settings OWA shows included.
    assert!(
        manifest.contains("\n  InternalConnectionSettings: ['EXCH01.contoso.local:993:SSL'")
            && manifest.contains("\n  ExternalConnectionSettings: []\n"),
        "{manifest}"
    );
    // A fresh server's default policy has Exchange's values: nothing to manage.
    assert!(
        manifest.contains("has Exchange's default values: not exported"),
        "{manifest}"
    );
    validate_strict(dir.path());
    let (code, out) = plan(dir.path(), &["manifests"]);
    assert_eq!(
        code,
        Some(0),
        "the export of {release} is not in sync:\n{out}"
    );

    // The exported values are compared: a change on the server is a change in the plan.
    let set = exec_ok(
        &sim,
        &[
            "--",
            "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010; Set-ImapSettings -Server EXCH01 -MaxConnectionsPerUser 40; Set-ReceiveConnector -Identity 'EXCH01\\Client EXCH01' -MaxInboundConnectionPerSource Unlimited",
        ],
    );
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    let (code, out) = plan(dir.path(), &["manifests"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("MaxConnectionsPerUser: 40 → 16"), "{out}");
    assert!(
        out.contains("MaxInboundConnectionPerSource: unlimited → 20"),
        "{out}"
    );
}

#[test]
fn round_trip_on_exchange_2010_rtm() {
    fresh_round_trip("2010-rtm");
}

#[test]
fn round_trip_on_exchange_2010_sp1() {
    fresh_round_trip("2010-sp1");
}

#[test]
fn round_trip_on_exchange_2010_sp2() {
    fresh_round_trip("2010-sp2");
}

#[test]
fn round_trip_on_exchange_2010_sp3() {
    fresh_round_trip("2010-sp3");
}

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

/// `(host, endpoint, release, site)` of each host of the sample inventory, by a line
/// scan: a `sites:` entry `NAME:` at two spaces, a host `NAME:` at six, then its
/// `endpoint:` and `exchange:` lines.
fn sample_hosts(inventory: &str) -> Vec<(String, String, String, String)> {
    let mut out: Vec<(String, String, String, String)> = Vec::new();
    let (mut site, mut host) = (String::new(), String::new());
    for line in inventory.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if let Some(k) = t.strip_suffix(':')
            && !k.contains([' ', ':'])
        {
            match indent {
                2 => site = k.to_string(),
                6 => host = k.to_string(),
                _ => {}
            }
        } else if let Some(e) = t.strip_prefix("endpoint:") {
            out.push((
                host.clone(),
                e.trim().to_string(),
                String::new(),
                site.clone(),
            ));
        } else if let Some(r) = t.strip_prefix("exchange:")
            && let Some(h) = out.last_mut()
        {
            h.2 = r.trim().to_string();
        }
    }
    out
}

/// The sample repository (`manifests/`, the whole UCCX baseline, every host on the
/// release its inventory gives) applied to one simulator per host; then each host is
/// exported and its export alone, with an inventory of that host only, plans with no
/// change, as does the repository with the exports of its sites' first hosts over it.
#[test]
fn round_trip_after_applying_the_uccx_baseline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifests = dir.path().join("manifests");
    copy_dir(&workspace().join("manifests"), &manifests);
    let path = manifests.join("inventory.yaml");
    let mut inventory = std::fs::read_to_string(&path).expect("inventory");
    let hosts = sample_hosts(&inventory);
    assert_eq!(hosts.len(), 5, "{hosts:?}");
    let mut sims = Vec::new();
    for (host, endpoint, release, _) in &hosts {
        let sim = sim(release, host);
        // The endpoint and the Exchange endpoint beside it (`session_uri`).
        inventory = inventory.replace(
            endpoint.trim_end_matches("/wsman"),
            sim.url.trim_end_matches("/wsman"),
        );
        sims.push(sim);
    }
    std::fs::write(&path, &inventory).expect("inventory written");
    let out = run(
        dir.path(),
        &["apply", "manifests", "--auto-approve", "--progress", "none"],
    );
    ok(&out, "apply of the sample repository");

    let mut releases = Vec::new();
    let mut exports_of_first_hosts = Vec::new();
    let mut sites_seen: Vec<String> = Vec::new();
    for ((host, _, release, site), sim) in hosts.iter().zip(&sims) {
        let alone = one_host_repo(host, site, &sim.url, release);
        let manifest = export(alone.path(), sim, host);
        validate_strict(alone.path());
        let (code, out) = plan(alone.path(), &["manifests"]);
        assert_eq!(
            code,
            Some(0),
            "the export of {host} is not in sync:\n{out}\n{manifest}"
        );
        // The effective values are there, spelled as manifests spell them (ams raises
        // the baseline's 250 to 850).
        let n = if site == "ams" { 850 } else { 250 };
        for line in [
            format!("  MaxConnectionsPerUser: {n}\n"),
            format!("  MaxConnectionFromSingleIP: {n}\n"),
            "    MaxInboundConnectionPerSource: unlimited\n".to_string(),
            "    MaxInboundConnectionPercentagePerSource: 100\n".to_string(),
            format!(
                "    name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: {n}\n"
            ),
        ] {
            assert!(
                manifest.contains(&line),
                "{host}: {line:?} missing:\n{manifest}"
            );
        }
        let first_of_site = !sites_seen.contains(site);
        if first_of_site {
            // Organization-wide values were applied through the site's first host.
            sites_seen.push(site.clone());
            for line in [
                "  UCCXThrottlingPolicy:\n",
                "    IMAPMaxConcurrency: unlimited\n",
                "    policy: UCCXThrottlingPolicy\n",
                "    user: CONTOSO\\uccx-agent\n    extended_rights: [View Information Store status]\n",
            ] {
                assert!(
                    manifest.contains(line),
                    "{host}: {line:?} missing:\n{manifest}"
                );
            }
            if release != "2010-rtm" {
                assert!(
                    manifest.contains("    MessageRateLimit: unlimited\n"),
                    "{manifest}"
                );
            }
            // Not over ams: its repository already has a `host: AMSEX01` document, and
            // two documents of one level may not both set a value.
            if site != "ams" {
                let name = format!("export-{host}.yaml");
                std::fs::write(manifests.join(&name), &manifest).expect("export copied");
                exports_of_first_hosts.push(name);
            }
        }
        releases.push(release.clone());
    }
    releases.sort();
    releases.dedup();
    assert_eq!(releases, ["2010-rtm", "2010-sp2", "2010-sp3"]);
    // Over the repository, the exports are layers that change nothing.
    assert_eq!(exports_of_first_hosts.len(), 3);
    let (code, out) = plan(dir.path(), &["manifests"]);
    assert_eq!(code, Some(0), "the repository with the exports:\n{out}");
}

#[test]
fn an_existing_file_is_kept_and_kinds_narrow_the_export() {
    let sim = sim("2010-sp3", "EXCH01");
    let dir = one_host_repo("EXCH01", "lab", &sim.url, "2010-sp3");
    let file = dir.path().join("manifests/export.yaml");
    std::fs::write(&file, "# mine\n").expect("written");
    let args = [
        "export",
        "EXCH01",
        "manifests",
        "--kinds",
        "imap_settings",
        "-o",
        "manifests/export.yaml",
    ];
    let out = run(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists; refusing to overwrite it"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "# mine\n");
    // Refused before connecting.
    assert_eq!(sim.state()["shells_created"].as_u64().unwrap_or(0), 0);

    let mut forced = args.to_vec();
    forced.push("--force");
    ok(&run(dir.path(), &forced), "export --force");
    let manifest = std::fs::read_to_string(&file).expect("written");
    assert!(manifest.contains("\nimap_settings:\n"), "{manifest}");
    for other in [
        "site:",
        "receive_connectors:",
        "registry_values:",
        "throttling",
    ] {
        assert!(!manifest.contains(other), "{other} in:\n{manifest}");
    }

    let out = run(
        dir.path(),
        &["export", "EXCH01", "manifests", "--kinds", "imap"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("'imap' is not a kind"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &["export", "EXCH02", "manifests"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("'EXCH02' is not a host of the inventory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_direct_endpoint_exports_to_stdout() {
    let sim = sim("2010-sp1", "EXCH01");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = exctl()
        .args([
            "export",
            "EXCH01",
            "--endpoint",
            &sim.url,
            "--user",
            SIM_USER,
            "--exchange",
            "2010-sp1",
            "--kinds",
            "imap_settings,registry_values",
        ])
        .current_dir(dir.path())
        .env("EXCTL_PASSWORD", SIM_PASSWORD)
        .env("EXCTL_KEYRING", "none")
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs");
    ok(&out, "export --endpoint");
    let manifest = text(&out.stdout);
    assert!(
        manifest.contains("\nhost: EXCH01\nimap_settings:\n"),
        "{manifest}"
    );
    // A wrong release is refused: the script would read another release's parameters.
    let out = exctl()
        .args([
            "export",
            "EXCH01",
            "--endpoint",
            &sim.url,
            "--user",
            SIM_USER,
            "--exchange",
            "2010-sp3",
        ])
        .current_dir(dir.path())
        .env("EXCTL_PASSWORD", SIM_PASSWORD)
        .env("EXCTL_KEYRING", "none")
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("EXCH01 runs Exchange 2010 SP1"),
        "{}",
        text(&out.stderr)
    );
}
