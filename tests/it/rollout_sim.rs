//! Many sites end to end: the real `exctl` against a repository of 30 sites, each served
//! by a simulated Exchange 2010 host in this process, one of them unreachable and one
//! whose server refuses a cmdlet. `validate`, `plan` (markdown comment, plan file, summary
//! table, exit codes) and `apply` with parallelism, a canary and a failure budget: the
//! two broken sites are reported with their names and everything else converges. Then
//! every output of the run, files included, is searched for the password.

use crate::common;
use crate::fleet;

use std::path::Path;
use std::process::{Output, Stdio};

use common::{exctl, text};
use fleet::{HostSetup, SimHost, SiteSetup};

/// Distinctive, so that finding it anywhere means it leaked.
const PASSWORD: &str = "Rollout-S3cret-7f3a9c";

const SITES: usize = 30;
const UNREACHABLE: &str = "s07";
const REFUSING: &str = "s12";

fn host_name(i: usize) -> String {
    format!("S{i:02}EX")
}

/// The refusing site's server has a policy the manifests remove, still used by a
/// mailbox: Remove-ThrottlingPolicy refuses, as Exchange does.
fn legacy_policy_in_use(org: &mut exctl_sim::exchange::ExchangeOrg) {
    let mut policy = org.throttling_policies[0].clone();
    policy.name = "LegacyPolicy".into();
    policy.is_default = false;
    policy.guid = "0b6f8a54-6c2d-4b43-9d54-1a1a2b3c4d5e".into();
    org.throttling_policies.push(policy);
    if let Some(m) = org.mailboxes.first_mut() {
        m.throttling_policy = Some("LegacyPolicy".into());
    }
}

struct World {
    dir: tempfile::TempDir,
    _hosts: Vec<SimHost>,
    _rt: tokio::runtime::Runtime,
}

fn world() -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut hosts = Vec::new();
    let mut sites = Vec::new();
    for i in 1..=SITES {
        let name = format!("s{i:02}");
        let host = host_name(i);
        let endpoint = if name == UNREACHABLE {
            fleet::closed_endpoint()
        } else {
            let mut setup = HostSetup::new(&host);
            if name == REFUSING {
                setup.edit = Some(legacy_policy_in_use);
            }
            let h = rt.block_on(fleet::start(&setup, PASSWORD));
            let url = h.sim.url().to_string();
            hosts.push(h);
            url
        };
        // Half the sites read the password from the keyring (here: EXCTL_KEYRING=env),
        // half from an environment variable: each reference is read once.
        let credential = if i % 2 == 0 {
            "keyring:lab".to_string()
        } else {
            "env:EXCTL_ROLLOUT_PW".to_string()
        };
        let ring = if i <= 2 { "canary" } else { "main" };
        sites.push(SiteSetup {
            name: name.clone(),
            labels: vec![("ring".into(), ring.into())],
            baselines: vec!["uccx".into(), "uccx-sp1".into()],
            hosts: vec![(host, "2010-sp3".into(), endpoint, credential)],
            override_body: match name.as_str() {
                REFUSING => {
                    Some("throttling_policies:\n  LegacyPolicy:\n    ensure: absent\n".into())
                }
                "s05" => Some("imap_settings:\n  MaxConnectionsPerUser: 850\n".into()),
                _ => None,
            },
        });
    }
    let dir = tempfile::tempdir().expect("temp dir");
    fleet::write_repository(&dir.path().join("repo"), &sites);
    World {
        dir,
        _hosts: hosts,
        _rt: rt,
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    exctl()
        .args(args)
        .current_dir(dir)
        .env("EXCTL_ROLLOUT_PW", PASSWORD)
        .env("EXCTL_KEYRING", "env")
        .env("EXCTL_SECRET_LAB", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs")
}

fn all_text(outs: &[&Output]) -> String {
    outs.iter()
        .map(|o| format!("{}{}", text(&o.stdout), text(&o.stderr)))
        .collect()
}

#[test]
fn thirty_sites_plan_and_apply_with_a_canary_an_unreachable_and_a_refusing_site() {
    let w = world();
    let dir = w.dir.path();

    let validate = run(dir, &["validate", "repo"]);
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        text(&validate.stderr)
    );
    assert!(text(&validate.stderr).contains("valid: 30 sites, 30 hosts"));

    let show = run(dir, &["show", "s05", "repo"]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    let show_out = text(&show.stdout);
    assert!(
        show_out
            .lines()
            .any(|l| l.contains("MaxConnectionsPerUser: 850") && l.contains("# site s05")),
        "{show_out}"
    );

    // Plan: every site, 8 at a time; the unreachable one is an error of its own.
    let plan = run(
        dir,
        &[
            "plan",
            "repo",
            "--parallel",
            "8",
            "--detailed-exitcode",
            "--format",
            "markdown",
            "--markdown-out",
            "comment.md",
            "--out",
            "plan.json",
            "--progress",
            "lines",
            "--full-plan-url",
            "https://ci.example/runs/1",
        ],
    );
    let (md, err) = (text(&plan.stdout), text(&plan.stderr));
    assert_eq!(plan.status.code(), Some(1), "{err}");
    assert!(md.starts_with("<!-- exctl-plan -->"), "{md}");
    assert!(
        md.contains("30 sites: 29 with changes, 0 without, 1 could not be planned."),
        "{md}"
    );
    assert!(
        md.contains(&format!("❌ <b>{UNREACHABLE}</b>: could not be planned")),
        "{md}"
    );
    assert!(md.contains("LegacyPolicy"), "{md}");
    assert!(md.len() <= 65_536);
    assert_eq!(std::fs::read_to_string(dir.join("comment.md")).unwrap(), md);
    // A plan with a site in error is not saved.
    assert!(
        err.contains("the plan was not saved: 1 host(s) could not be planned"),
        "{err}"
    );
    // A line per site, and the table naming the broken site.
    assert_eq!(err.matches("] planned in ").count(), 29, "{err}");
    assert!(
        err.contains(&format!("[{UNREACHABLE}] ERROR after")),
        "{err}"
    );
    let row = err
        .lines()
        .find(|l| l.starts_with(&format!("{UNREACHABLE} ")))
        .expect("a row for the unreachable site");
    assert!(row.contains("ERROR"), "{row}");

    // Apply: canary of two, then the rest 6 at a time; three failures allowed.
    let apply = run(
        dir,
        &[
            "apply",
            "repo",
            "--auto-approve",
            "--parallel",
            "6",
            "--canary",
            "2",
            "--max-failures",
            "3",
            "--format",
            "json",
            "--progress",
            "lines",
        ],
    );
    let (out, err) = (text(&apply.stdout), text(&apply.stderr));
    assert_eq!(apply.status.code(), Some(1), "{err}");
    let result: serde_json::Value = serde_json::from_str(&out).expect("JSON result");
    assert_eq!(result["format_version"], 1);
    let sites = result["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), SITES);
    let status = |name: &str| {
        sites
            .iter()
            .find(|s| s["site"] == name)
            .map(|s| {
                (
                    s["status"].as_str().unwrap_or("").to_string(),
                    s["error"].as_str().unwrap_or("").to_string(),
                )
            })
            .expect("site in the result")
    };
    let (st, e) = status(UNREACHABLE);
    assert_eq!(st, "failed");
    assert!(
        e.starts_with("could not be planned; nothing was applied: S07EX"),
        "{e}"
    );
    let (st, e) = status(REFUSING);
    assert_eq!(st, "failed");
    assert!(
        e.contains("can't be removed because there are currently users associated with the policy"),
        "{e}"
    );
    assert_eq!(result["rollout"]["done"], 28, "{out}");
    assert_eq!(result["rollout"]["failed"], 2);
    assert_eq!(result["rollout"]["not_started"], 0);
    assert_eq!(sites[0]["canary"], true);
    assert_eq!(sites[1]["canary"], true);
    // The canaries were done before any other site was applied.
    let pos = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("no {needle} in {err}"))
    };
    let canaries_done = pos("[s01] done").max(pos("[s02] done"));
    assert!(canaries_done < pos("[s03] applying"), "{err}");
    assert!(err.contains(&format!("[{REFUSING}] FAILED after")), "{err}");

    // The other sites converged; the refusing one still shows its change.
    let again = run(
        dir,
        &[
            "plan",
            "repo",
            "--detailed-exitcode",
            "--format",
            "json",
            "--progress",
            "none",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    let fresh: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON plan");
    for s in fresh["sites"].as_array().expect("sites") {
        let name = s["name"].as_str().unwrap_or("");
        let changes = s["changes"].as_u64().unwrap_or(99);
        match name {
            UNREACHABLE => assert_eq!(s["errors"].as_array().map(Vec::len), Some(1)),
            // Its host stopped at the refused step: what was not attempted remains.
            REFUSING => assert!(changes >= 1, "{s}"),
            _ => assert_eq!(changes, 0, "{s}"),
        }
    }
    let converged = run(
        dir,
        &[
            "plan",
            "repo",
            "--detailed-exitcode",
            "--selector",
            "ring=canary",
            "--progress",
            "none",
        ],
    );
    assert_eq!(
        converged.status.code(),
        Some(0),
        "{}",
        text(&converged.stderr)
    );

    // A keyring that is not usable: a clear message, not a panic, and only the site
    // whose host needs it fails (s02 uses keyring:lab, s03 env:).
    let nokeyring = exctl()
        .args(["plan", "repo", "--site", "s02,s03"])
        .current_dir(dir)
        .env("EXCTL_KEYRING", "none")
        .env("EXCTL_ROLLOUT_PW", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs");
    assert_eq!(nokeyring.status.code(), Some(1));
    let e = format!("{}{}", text(&nokeyring.stdout), text(&nokeyring.stderr));
    assert!(
        e.contains("credential keyring:lab: the OS keyring is turned off"),
        "{e}"
    );
    assert!(
        e.contains("2 sites: 0 with changes, 1 without, 1 could not be planned."),
        "{e}"
    );
    assert!(
        e.contains("hint: on a server without a desktop session"),
        "{e}"
    );

    // No output of the run, and no file it wrote, holds the password.
    let everything = all_text(&[
        &validate, &show, &plan, &apply, &again, &converged, &nokeyring,
    ]);
    assert!(!everything.contains(PASSWORD));
    for entry in std::fs::read_dir(dir).expect("dir") {
        let p = entry.expect("entry").path();
        if p.is_file() {
            let content = std::fs::read(&p).expect("file");
            assert!(
                !String::from_utf8_lossy(&content).contains(PASSWORD),
                "{} holds the password",
                p.display()
            );
        }
    }
}

#[test]
fn a_saved_plan_of_some_sites_applies_to_those_sites_with_a_failed_canary_stopping_the_rest() {
    let w = world();
    let dir = w.dir.path();
    // The refusing site first: as the canary it stops the rollout.
    let plan = run(
        dir,
        &[
            "plan",
            "repo",
            "--site",
            "s12,s13,s14,s15",
            "--out",
            "plan.json",
            "--progress",
            "none",
        ],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let saved = std::fs::read_to_string(dir.join("plan.json")).expect("plan file");
    assert!(saved.contains("\"sites\""), "{saved}");
    assert!(!saved.contains(PASSWORD));
    let refused = run(dir, &["apply", "plan.json", "--site", "s13"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("a saved plan applies to the sites it was made for"));

    let apply = run(
        dir,
        &["apply", "plan.json", "--canary", "1", "--progress", "lines"],
    );
    let (out, err) = (text(&apply.stdout), text(&apply.stderr));
    assert_eq!(apply.status.code(), Some(1), "{err}");
    let tail = &out[out.find("\nApply:").unwrap_or(0)..];
    assert!(tail.contains("Not started (3): s13, s14, s15"), "{tail}");
    assert!(
        tail.contains("not started: the canary failed: s12"),
        "{tail}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("s12 (canary)"))
        .expect("canary row");
    assert!(row.contains("FAILED"), "{row}");
    assert!(
        out.contains("Apply did not complete: 1 site failed, 3 not started, 0 done."),
        "{out}"
    );
    assert!(!format!("{out}{err}").contains(PASSWORD));
}

/// Four sites, the first unreachable (issue 12's rollout story).
fn four_sites_first_unreachable() -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut hosts = Vec::new();
    let mut sites = Vec::new();
    for i in 1..=4 {
        let host = host_name(i);
        let endpoint = if i == 1 {
            fleet::closed_endpoint()
        } else {
            let h = rt.block_on(fleet::start(&HostSetup::new(&host), PASSWORD));
            let url = h.sim.url().to_string();
            hosts.push(h);
            url
        };
        sites.push(SiteSetup {
            name: format!("s{i:02}"),
            labels: Vec::new(),
            baselines: vec!["uccx".into(), "uccx-sp1".into()],
            hosts: vec![(
                host,
                "2010-sp3".into(),
                endpoint,
                "env:EXCTL_ROLLOUT_PW".into(),
            )],
            override_body: None,
        });
    }
    let dir = tempfile::tempdir().expect("temp dir");
    fleet::write_repository(&dir.path().join("repo"), &sites);
    World {
        dir,
        _hosts: hosts,
        _rt: rt,
    }
}

/// Issue 12: with the canary site unreachable, `--canary 1` does not make the next site
/// the canary, and a failure budget spent by an unreachable site starts nothing: no
/// server changes, and the summary says why each site did not start.
#[test]
fn an_unreachable_canary_or_a_spent_budget_changes_nothing() {
    let w = four_sites_first_unreachable();
    let dir = w.dir.path();
    for (extra, why) in [
        (
            vec!["--canary", "1", "--max-failures", "3"],
            "the canary failed: s01 could not be planned",
        ),
        (
            vec!["--max-failures", "1"],
            "1 site could not be planned before anything started (--max-failures 1): s01",
        ),
    ] {
        let mut args = vec!["apply", "repo", "--auto-approve", "--format", "json"];
        args.extend(extra.iter().copied());
        let out = run(dir, &args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON result");
        assert_eq!(r["rollout"]["failed"], 1, "{r}");
        assert_eq!(r["rollout"]["not_started"], 3, "{r}");
        for site in &r["sites"].as_array().expect("sites")[1..] {
            assert_eq!(site["status"], "not_started", "{site}");
            assert_eq!(
                site["error"].as_str(),
                Some(format!("not started: {why}").as_str()),
                "{site}"
            );
        }
        // Nothing changed anywhere: every reachable site still has its changes to make.
        let plan = run(
            dir,
            &[
                "plan",
                "repo",
                "--site",
                "s02,s03,s04",
                "--detailed-exitcode",
            ],
        );
        assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stderr));
    }
}
