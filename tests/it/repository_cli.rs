//! The repository commands of the real binary on the sample repository (`manifests/`),
//! without any host: `validate`, `show`, `sites`, selections that match nothing, and
//! `login`/`logout` where no keyring can be used (a clear message, never a panic).

use crate::common;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use common::{exctl, text};

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

fn run(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    use std::io::Write;
    let mut cmd = exctl();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("exctl runs");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("exctl ends")
}

#[test]
fn the_sample_repository_is_valid_and_shows_where_each_value_comes_from() {
    let m = manifests();
    let m = m.to_str().unwrap();
    let out = run(&["validate", m], &[], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("valid: 4 sites, 5 hosts"));

    let out = run(&["show", "ams", m], &[], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.starts_with("site ams (labels: region=emea, ring=main; baselines: uccx, uccx-sp1)\n"),
        "{s}"
    );
    let line = |needle: &str| {
        s.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("MaxConnectionsPerUser: 850").contains("# site ams"),
        "{s}"
    );
    assert!(
        line("MaxConnectionsPerUser: 850").contains("sites/ams.yaml:5"),
        "{s}"
    );
    assert!(
        line("MessageRateLimit: unlimited").contains("# host AMSEX01"),
        "{s}"
    );
    assert!(
        line("RecipientRateLimit").contains("# baseline uccx-sp1"),
        "{s}"
    );
    // Organization-wide values once per site, through its first host.
    assert_eq!(
        s.matches("# organization-wide, applied through AMSEX01:")
            .count(),
        1
    );

    let out = run(&["show", "EXCH02", m, "--format", "json"], &[], "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["site"], "nyc");
    assert_eq!(
        v["hosts"][0]["state"]["imap_settings"]["MaxConnectionsPerUser"]["from"],
        "baseline uccx"
    );

    let out = run(&["show", "amss", m], &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("hint: did you mean 'ams'?"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["sites", m, "--selector", "region=emea"], &[], "");
    let names: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["lon", "ams"]);
    let out = run(&["sites", m, "--site", "SGPEX01,nyc"], &[], "");
    assert!(
        text(&out.stdout).starts_with("nyc\thosts=EXCH02"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["plan", m, "--selector", "region=mars"], &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("no site with something to manage matches the selector 'region=mars'")
    );
    let out = run(&["plan", m, "--selector", "region="], &[], "");
    assert_eq!(out.status.code(), Some(64), "a usage error");
    assert!(text(&out.stderr).contains("invalid selector"));
}

#[test]
fn login_and_logout_without_a_usable_keyring_say_what_to_do() {
    let m = manifests();
    let m = m.to_str().unwrap();
    let out = run(
        &["login", "--entry", "lab", "--password-stdin"],
        &[("EXCTL_KEYRING", "none")],
        "Not-Stored-9\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("error: the OS keyring is turned off (EXCTL_KEYRING=none)"),
        "{e}"
    );
    assert!(
        e.contains("hint: on a server without a desktop session"),
        "{e}"
    );
    assert!(!e.contains("Not-Stored-9") && !e.contains("panicked"));

    let out = run(
        &["logout", "--entry", "lab"],
        &[("EXCTL_KEYRING", "env")],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("EXCTL_KEYRING=env reads keyring entries from the environment")
    );

    // The sample hosts use env:, not the keyring: nothing to store, and why.
    let out = run(&["login", "lon", m, "--password-stdin"], &[], "x\n");
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("no host of lon refers to the keyring (EXCH01 uses env:EXCTL_SIM_PASSWORD)"),
        "{e}"
    );

    // An EXCTL_KEYRING exctl does not know is refused (a usage error), never read as
    // "the OS keyring".
    for args in [
        vec!["logout", "--entry", "lab"],
        vec!["login", "--entry", "lab", "--password-stdin"],
        vec!["plan", m],
    ] {
        let out = run(&args, &[("EXCTL_KEYRING", "nonw")], "x\n");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(
            text(&out.stderr).contains("EXCTL_KEYRING=nonw is not a setting exctl knows"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // exec refuses it too (with its own-failure code).
    let out = run(
        &[
            "exec",
            "--endpoint",
            "http://127.0.0.1:1/wsman",
            "--user",
            "a",
            "--",
            "hostname",
        ],
        &[("EXCTL_KEYRING", "nonw"), ("EXCTL_PASSWORD", "x")],
        "",
    );
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("EXCTL_KEYRING=nonw is not a setting exctl knows"));

    // Logging out of an entry that is not there says so and exits 2 ("look at this");
    // where this machine has no usable keyring, that is what it says instead.
    let out = run(&["logout", "--entry", "exctl-test-never-stored"], &[], "");
    let e = text(&out.stderr);
    match out.status.code() {
        Some(2) => assert!(
            e.contains("Nothing to remove: the OS keyring has no entry 'exctl-test-never-stored'"),
            "{e}"
        ),
        Some(1) => assert!(e.contains("the OS keyring is not available here"), "{e}"),
        other => panic!("{other:?}: {e}"),
    }

    // Without a terminal and without --password-stdin, nothing is asked.
    let out = run(&["login", "--entry", "lab"], &[], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("there is no terminal to ask for the password on"));
}

/// Issue 12: a usage error has a code no command uses for anything else, so a CI job
/// that accepts 0 and 2 from `plan --detailed-exitcode` fails on a mistyped flag; `exec`
/// keeps every code but 255 for the remote command.
#[test]
fn usage_errors_have_their_own_exit_code() {
    let m = manifests();
    let m = m.to_str().expect("utf-8 path");
    for args in [
        vec!["plan", m, "--detailed-exitcod"],
        vec!["doctor"],
        vec!["apply", m, "--restart", "sometimes"],
        vec!["no-such-command"],
        vec![],
    ] {
        let out = run(&args, &[], "");
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} says why");
    }
    let out = run(&["exec", "--bogus"], &[], "");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    for args in [vec!["--help"], vec!["plan", "--help"], vec!["--version"]] {
        let out = run(&args, &[], "");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
}

/// Issue 12: validate refuses, with file:line, what plan would refuse without
/// connecting (endpoint scheme, host, port and path, Basic over http, a missing CA
/// file), checks every baseline, used or not (an unused one is named), and names the
/// file an error is in, whatever layer the section started in.
#[test]
fn validate_sees_what_plan_would_refuse_and_every_baseline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = |name: &str, endpoint: &str, extra: &str| {
        format!(
            "      {name}: {{endpoint: \"{endpoint}\", user: ops, credential: \"env:X\", exchange: 2010-sp3{extra}}}\n"
        )
    };
    let mut inventory = String::from("sites:\n  lon:\n    baselines: [used]\n    hosts:\n");
    for (name, endpoint, extra) in [
        ("EX01", "ftp://ex01/wsman", ""),
        ("EX02", "ex02.contoso.local:5985/wsman", ""),
        ("EX03", "http://ex03:5985/wsman", ", auth: basic"),
        ("EX04", "http://ex04:70000/wsman", ""),
        ("EX05", "https://ex05:5986", ""),
        ("EX06", "https://ex06:5986/wsman", ", ca_file: nowhere.pem"),
        ("EX07", "https://ex07.contoso.local:5986/wsman", ""),
    ] {
        inventory.push_str(&host(name, endpoint, extra));
    }
    std::fs::write(dir.path().join("inventory.yaml"), inventory).expect("written");
    std::fs::write(
        dir.path().join("baselines.yaml"),
        "baseline: used\nimap_settings:\n  MaxConnectionsPerUser: 40\n---\nbaseline: forgotten\nimap_settings:\n  MaxConnectionsPerUser: lots\n",
    )
    .expect("written");
    std::fs::write(
        dir.path().join("lon.yaml"),
        "site: lon\nimap_settings:\n  MaxConnectionFromSingleIP: many\n",
    )
    .expect("written");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = run(&["validate", d], &[("NO_COLOR", "1")], "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for (what, line) in [
        (
            "'ftp://ex01/wsman': WinRM speaks http or https, not ftp",
            "inventory.yaml:5:",
        ),
        (
            "'ex02.contoso.local:5985/wsman' has no scheme",
            "inventory.yaml:6:",
        ),
        ("auth: basic over http://", "inventory.yaml:7:"),
        ("'70000' is not a port", "inventory.yaml:8:"),
        ("'https://ex05:5986' has no path", "inventory.yaml:9:"),
        ("nowhere.pem does not exist", "inventory.yaml:10:"),
        (
            "baseline 'forgotten' is not used by any site or host",
            "baselines.yaml:5:",
        ),
        (
            "baselines.yaml.imap_settings.MaxConnectionsPerUser: expected a whole number",
            "baselines.yaml:7:",
        ),
        (
            "lon.yaml.imap_settings.MaxConnectionFromSingleIP: expected a whole number",
            "lon.yaml:3:",
        ),
    ] {
        let at = err
            .find(what)
            .unwrap_or_else(|| panic!("{what} not reported:\n{err}"));
        assert!(err[at..].contains(line), "{what} at {line}:\n{err}");
    }
    assert!(!err.contains("EX07"), "a good endpoint passes: {err}");
}
