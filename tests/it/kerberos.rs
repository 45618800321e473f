//! Kerberos end to end against a real MIT KDC: `exctl exec --auth kerberos` against
//! `exctl sim --auth kerberos`, each test with its own throwaway realm (see
//! `common/kdc.rs`), with the operator's ticket cache or a password, both HTTP schemes,
//! HTTP (sealed) and HTTPS (channel bindings), and every failure an operator meets
//! giving its own message with the fix.
//!
//! The KDC tools come from `scripts/test` (krb5-kdc, krb5-admin-server, krb5-user); a
//! missing tool fails the test, it never skips.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::Sim;
use common::kdc::{Kdc, USER};

fn sim(kdc: &Kdc, extra: &[&str]) -> Sim {
    let keytab = kdc.keytab().display().to_string();
    let mut args = vec!["--keytab", keytab.as_str(), "--user", USER];
    args.extend_from_slice(extra);
    Sim::start_with_env(&args, &kdc.env())
}

/// The simulator's URL with `localhost` for the address: Kerberos needs a name.
fn by_name(sim: &Sim) -> String {
    sim.url.replace("127.0.0.1", "localhost")
}

fn exec(kdc: &Kdc, cache: &Path, endpoint: &str, extra: &[&str], password: Option<&str>) -> Output {
    let mut cmd = common::exctl();
    cmd.args([
        "exec",
        "--endpoint",
        endpoint,
        "--user",
        USER,
        "--auth",
        "kerberos",
    ])
    .args(extra)
    .args(["--raw", "--", "cmd.exe", "/c", "echo", "hi"])
    .envs(kdc.env())
    .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
    .env("EXCTL_KEYRING", "none");
    if let Some(p) = password {
        cmd.env("EXCTL_PASSWORD", p);
    }
    cmd.output().expect("exctl exec runs")
}

fn says_hi(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
}

fn fails_with(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "stderr: {stderr}");
    for w in words {
        assert!(stderr.contains(w), "expected {w:?} in: {stderr}");
    }
}

#[test]
fn the_operators_ticket_cache_is_used_without_any_password() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos", "ntlm"]);
    // The contract of the issue: Negotiate (the default) over HTTP, sealed.
    says_hi(&exec(&kdc, &cache, &by_name(&s), &[], None));
    // The Kerberos scheme, with its own encryption protocol.
    says_hi(&exec(
        &kdc,
        &cache,
        &by_name(&s),
        &["--kerberos-scheme", "kerberos"],
        None,
    ));
    // An SPN given explicitly, in the Windows spelling with the realm.
    says_hi(&exec(
        &kdc,
        &cache,
        &by_name(&s),
        &["--spn", "HTTP/localhost@LAB.TEST"],
        None,
    ));
}

#[test]
fn with_an_empty_cache_a_password_gets_a_ticket_in_memory() {
    let kdc = Kdc::start();
    let cache = kdc.path("operator.ccache");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let pw = kdc.password.clone();
    says_hi(&exec(&kdc, &cache, &by_name(&s), &[], Some(&pw)));
    // The ticket stayed in memory: no cache file was written where KRB5CCNAME points.
    assert!(!cache.exists(), "{} was written", cache.display());
}

#[test]
fn over_https_with_channel_bindings_required() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let ca = kdc.path("ca.pem");
    let ca_arg = ca.display().to_string();
    let s = sim(
        &kdc,
        &[
            "--auth",
            "kerberos",
            "--tls",
            "--cbt-strict",
            "--ca-out",
            &ca_arg,
        ],
    );
    for scheme in ["negotiate", "kerberos"] {
        says_hi(&exec(
            &kdc,
            &cache,
            &by_name(&s),
            &["--ca-file", &ca_arg, "--kerberos-scheme", scheme],
            None,
        ));
    }
}

#[test]
fn no_ticket_and_no_credential_says_to_run_kinit() {
    let kdc = Kdc::start();
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = exec(&kdc, &kdc.path("empty.ccache"), &by_name(&s), &[], None);
    fails_with(
        &out,
        &[
            "no Kerberos ticket for ops@LAB.TEST: run kinit ops@LAB.TEST, or give the host a credential",
        ],
    );
}

#[test]
fn a_wrong_password_is_named() {
    let kdc = Kdc::start();
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = exec(
        &kdc,
        &kdc.path("empty.ccache"),
        &by_name(&s),
        &[],
        Some("not-the-password"),
    );
    fails_with(&out, &["the KDC refused the password of ops@LAB.TEST"]);
}

#[test]
fn an_unknown_service_principal_is_named_with_the_fix() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = exec(
        &kdc,
        &cache,
        &by_name(&s),
        &["--spn", "HTTP/nothere.lab.test"],
        None,
    );
    fails_with(
        &out,
        &["HTTP/nothere.lab.test is not in the Kerberos database: check the host name or set spn:"],
    );
}

#[test]
fn an_ip_address_is_refused_with_the_reason() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = exec(&kdc, &cache, &s.url, &[], None);
    fails_with(
        &out,
        &[
            "Kerberos needs the server's name, not the address 127.0.0.1",
            "spn:",
        ],
    );
    // With the SPN set, the address is fine.
    says_hi(&exec(
        &kdc,
        &cache,
        &s.url,
        &["--spn", "HTTP/localhost"],
        None,
    ));
}

#[test]
fn an_unreachable_kdc_is_named() {
    let mut kdc = Kdc::start();
    let s = sim(&kdc, &["--auth", "kerberos"]);
    kdc.stop();
    let pw = kdc.password.clone();
    let out = exec(
        &kdc,
        &kdc.path("empty.ccache"),
        &by_name(&s),
        &[],
        Some(&pw),
    );
    fails_with(
        &out,
        &[
            "no Kerberos KDC answered for the realm of ops@LAB.TEST",
            "krb5.conf",
        ],
    );
}

#[test]
fn an_expired_ticket_says_to_renew_it() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "2s");
    // Wait (bounded) until klist itself says the ticket has expired.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let valid = std::process::Command::new(common::kdc::tool("klist"))
            .arg("-s")
            .envs(kdc.env())
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .status()
            .expect("klist runs")
            .success();
        if !valid {
            // klist counts the last second as expired, the library the one after it.
            std::thread::sleep(std::time::Duration::from_millis(1500));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ticket never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = exec(&kdc, &cache, &by_name(&s), &[], None);
    fails_with(
        &out,
        &["the Kerberos ticket of ops@LAB.TEST has expired: run kinit ops@LAB.TEST"],
    );
}

#[test]
fn a_host_without_kerberos_refuses_and_a_kerberos_only_host_refuses_ntlm() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    // NTLM only: the SPNEGO token is refused; the message says what the host offers.
    let ntlm_only = Sim::start_with_env(&["--auth", "ntlm"], &kdc.env());
    let out = exec(
        &kdc,
        &cache,
        &by_name(&ntlm_only),
        &["--kerberos-scheme", "kerberos"],
        None,
    );
    fails_with(
        &out,
        &[
            "does not offer the Kerberos HTTP scheme",
            "it offers Negotiate",
        ],
    );
    let out = exec(&kdc, &cache, &by_name(&ntlm_only), &[], None);
    fails_with(&out, &["refused the Kerberos ticket", "accepts only NTLM"]);
    // Kerberos only: NTLM is refused, as Windows does.
    let krb_only = sim(&kdc, &["--auth", "kerberos"]);
    let out = common::exctl()
        .args([
            "exec",
            "--endpoint",
            &by_name(&krb_only),
            "--user",
            "LAB\\ops",
        ])
        .args(["--raw", "--", "cmd.exe", "/c", "echo", "hi"])
        .envs(kdc.env())
        .env("EXCTL_PASSWORD", common::SIM_PASSWORD)
        .output()
        .expect("exctl exec runs");
    fails_with(&out, &["refused the credentials", "NTLM, HTTP 401"]);
}

const IMAP_LIMITS: &str = "targets: [EXCH01]\nimap_settings:\n  MaxConnectionsPerUser: 250\n  MaxConnectionFromSingleIP: 250\n";

#[test]
fn plan_and_apply_a_site_whose_host_uses_kerberos_without_a_credential() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(
        &kdc,
        &[
            "--auth",
            "kerberos",
            "--computer-name",
            "EXCH01",
            "--exchange",
            "2010-sp3",
            "--time-scale",
            "0.002",
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    auth: kerberos\n    user: {USER}\n    exchange: 2010-sp3\n    session_uri: {}\n",
            by_name(&s),
            // Exchange's endpoint on the simulator's port, by name, with the same ticket.
            by_name(&s).replace("/wsman", "/PowerShell/")
        ),
    )
    .expect("inventory");
    std::fs::write(dir.path().join("imap.yaml"), IMAP_LIMITS).expect("manifest");
    let run = |args: &[&str]| {
        common::exctl()
            .args(args)
            .current_dir(dir.path())
            .envs(kdc.env())
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .env("EXCTL_KEYRING", "none")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("exctl runs")
    };
    let show = |o: &Output| {
        format!(
            "exit {:?}\n{}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let plan = run(&["plan", ".", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "changes expected: {}",
        show(&plan)
    );
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("MaxConnectionsPerUser"),
        "{}",
        show(&plan)
    );
    let apply = run(&["apply", ".", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(0), "{}", show(&apply));
    let again = run(&["plan", ".", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "converged: {}", show(&again));
    // export and doctor reach the host the same way, from the inventory ...
    let export = run(&["export", "EXCH01", "."]);
    assert_eq!(export.status.code(), Some(0), "{}", show(&export));
    assert!(
        String::from_utf8_lossy(&export.stdout).contains("MaxConnectionsPerUser: 250"),
        "{}",
        show(&export)
    );
    let doctor = run(&["doctor", "EXCH01", ".", "--format", "json"]);
    // Findings about IMAP (no IMAP listener here) are fine; the credential check is not.
    assert!(
        String::from_utf8_lossy(&doctor.stdout).contains("\"detail\": \"ops@LAB.TEST accepted\""),
        "{}",
        show(&doctor)
    );
    // ... and export with --endpoint and --auth kerberos.
    let endpoint = by_name(&s);
    let direct = run(&[
        "export",
        "EXCH01",
        "--endpoint",
        &endpoint,
        "--user",
        USER,
        "--exchange",
        "2010-sp3",
        "--auth",
        "kerberos",
    ]);
    assert_eq!(direct.status.code(), Some(0), "{}", show(&direct));
    assert!(
        String::from_utf8_lossy(&direct.stdout).contains("MaxConnectionsPerUser: 250"),
        "{}",
        show(&direct)
    );
}

#[test]
fn an_inventory_host_given_by_address_is_refused_at_validation() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: http://192.0.2.10:5985/wsman\n    auth: kerberos\n    user: {USER}\n    exchange: 2010-sp3\n"
        ),
    )
    .expect("inventory");
    std::fs::write(dir.path().join("imap.yaml"), IMAP_LIMITS).expect("manifest");
    let out = common::exctl()
        .args(["validate", "."])
        .current_dir(dir.path())
        .output()
        .expect("exctl runs");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Kerberos needs the server's name") && text.contains("spn:"),
        "{text}"
    );
}

#[test]
fn negotiate_uses_kerberos_and_falls_back_to_ntlm_where_kerberos_cannot_work() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let negotiate = |endpoint: &str, user: &str, password: Option<&str>| {
        let mut cmd = common::exctl();
        cmd.args([
            "exec",
            "--endpoint",
            endpoint,
            "--user",
            user,
            "--auth",
            "negotiate",
        ])
        .args(["--raw", "--", "cmd.exe", "/c", "echo", "hi"])
        .envs(kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .env("EXCTL_KEYRING", "none")
        .stdin(std::process::Stdio::null());
        if let Some(p) = password {
            cmd.env("EXCTL_PASSWORD", p);
        }
        cmd.output().expect("exctl runs")
    };
    // A Kerberos-only host: Negotiate authenticates with the ticket (NTLM would be
    // refused there, and there is no password for it anyway).
    let krb_only = sim(&kdc, &["--auth", "kerberos"]);
    says_hi(&negotiate(&by_name(&krb_only), USER, None));
    // An NTLM-only host: Kerberos is refused, NTLM with the password works.
    let ntlm_only = Sim::start_with_env(&["--auth", "ntlm"], &kdc.env());
    says_hi(&negotiate(
        &by_name(&ntlm_only),
        common::SIM_USER,
        Some(common::SIM_PASSWORD),
    ));
    // An address: NTLM from the start, as Windows does.
    says_hi(&negotiate(
        &ntlm_only.url,
        common::SIM_USER,
        Some(common::SIM_PASSWORD),
    ));
}

/// pypsrp's WinRS client (Kerberos through pyspnego and python-gssapi), one command.
const PYPSRP_EXEC: &str = r#"
import sys
from pypsrp.client import Client
port, auth, ssl = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "https"
user = sys.argv[4] if len(sys.argv) > 4 else None
password = sys.argv[5] if len(sys.argv) > 5 else None
c = Client("localhost", port=port, ssl=ssl, auth=auth, encryption="auto" if ssl else "always",
           cert_validation=False, negotiate_service="HTTP", username=user, password=password)
out, err, rc = c.execute_cmd("echo hi")
print(out.strip(), rc)
"#;

fn python() -> std::path::PathBuf {
    let py = std::env::var_os("EXCTL_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").into());
    assert!(
        py.exists(),
        "Python peer interpreter {} not found: run scripts/test, or set EXCTL_PYTHON",
        py.display()
    );
    py
}

fn pypsrp(kdc: &Kdc, cache: &Path, sim: &Sim, auth: &str, creds: Option<(&str, &str)>) {
    let port = sim
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches("/wsman");
    let scheme = if sim.url.starts_with("https") {
        "https"
    } else {
        "http"
    };
    let mut cmd = std::process::Command::new(python());
    cmd.args(["-c", PYPSRP_EXEC, port, auth, scheme])
        .envs(kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .env("NO_PROXY", "127.0.0.1,localhost");
    if let Some((u, p)) = creds {
        cmd.args([u, p]);
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "hi 0",
        "pypsrp {auth} {scheme}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pypsrp_kerberos_client_against_the_simulator() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let http = sim(&kdc, &["--auth", "kerberos", "ntlm"]);
    // With the ticket cache, by either scheme pypsrp knows, sealed over HTTP.
    pypsrp(&kdc, &cache, &http, "kerberos", None);
    pypsrp(&kdc, &cache, &http, "negotiate", None);
    // With a password and no cache.
    let empty = kdc.path("empty.ccache");
    pypsrp(&kdc, &empty, &http, "kerberos", Some((USER, &kdc.password)));
    // Over HTTPS with channel bindings required.
    let https = sim(&kdc, &["--auth", "kerberos", "--tls", "--cbt-strict"]);
    pypsrp(&kdc, &cache, &https, "kerberos", None);
}

#[test]
fn without_the_gssapi_library_kerberos_says_what_to_install() {
    // No realm needed: the library is loaded before anything else happens.
    let s = Sim::start(&[]);
    let out = common::exctl()
        .args([
            "exec",
            "--endpoint",
            &by_name(&s),
            "--user",
            USER,
            "--auth",
            "kerberos",
        ])
        .args(["--raw", "--", "cmd.exe", "/c", "echo", "hi"])
        .env("EXCTL_GSSAPI_LIBRARY", "/nonexistent/libgssapi_krb5.so.2")
        .env("EXCTL_KEYRING", "none")
        .output()
        .expect("exctl runs");
    fails_with(
        &out,
        &[
            "Kerberos needs MIT krb5's GSSAPI library (libgssapi_krb5.so.2)",
            "krb5-user",
        ],
    );
}

#[test]
fn clock_skew_is_named_with_the_fix() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    // exctl runs two hours ahead (libfaketime, installed by scripts/test): the
    // simulator's acceptor refuses the authenticator and its KRB-ERROR says why.
    let faketime = common::kdc::tool("faketime");
    let out = std::process::Command::new(faketime)
        .args(["-f", "+2h", env!("CARGO_BIN_EXE_exctl")])
        .args([
            "exec",
            "--endpoint",
            &by_name(&s),
            "--user",
            USER,
            "--auth",
            "kerberos",
        ])
        .args(["--raw", "--", "cmd.exe", "/c", "echo", "hi"])
        .envs(kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .env("EXCTL_KEYRING", "none")
        .env_remove("EXCTL_PASSWORD")
        .output()
        .expect("faketime runs");
    fails_with(
        &out,
        &[
            "the clocks of this machine and the KDC or HTTP/localhost differ by more than Kerberos allows",
            "synchronise",
        ],
    );
}

/// pywinrm's Kerberos transport (pykerberos and its own message encryption), one command.
const PYWINRM_EXEC: &str = r#"
import sys, winrm
s = winrm.Session(sys.argv[1], auth=(None, None), transport="kerberos",
                  message_encryption="always", service="HTTP")
r = s.run_cmd("cmd.exe", ["/c", "echo", "hi"])
print(r.std_out.decode().strip(), r.status_code)
"#;

#[test]
fn pywinrm_kerberos_client_against_the_simulator() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = std::process::Command::new(python())
        .args(["-c", PYWINRM_EXEC, &by_name(&s)])
        .envs(kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .expect("python runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "hi 0",
        "pywinrm kerberos: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_simulator_accepts_only_its_principal() {
    let kdc = Kdc::start();
    kdc.kadmin("addprinc -pw Other-Pa55 other@LAB.TEST");
    let cache = kdc.path("other.ccache");
    kdc.kinit_as("other@LAB.TEST", "Other-Pa55", &cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let out = common::exctl()
        .args([
            "exec",
            "--endpoint",
            &by_name(&s),
            "--user",
            "other@LAB.TEST",
        ])
        .args([
            "--auth", "kerberos", "--raw", "--", "cmd.exe", "/c", "echo", "hi",
        ])
        .envs(kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .env("EXCTL_KEYRING", "none")
        .output()
        .expect("exctl runs");
    // A valid ticket of another account: refused as a host's ACL refuses it.
    fails_with(&out, &["refused the Kerberos ticket of other@LAB.TEST"]);
}

/// Issue 18: `exec --psrp` with the operator's ticket, on both simulator endpoints
/// (Microsoft.PowerShell on /wsman, Microsoft.Exchange on /PowerShell/), sealed over HTTP.
#[test]
fn exec_over_psrp_with_the_operators_ticket_on_both_endpoints() {
    let kdc = Kdc::start();
    let cache = kdc.path("ops.ccache");
    kdc.kinit(&cache, "10h");
    let s = sim(&kdc, &["--auth", "kerberos"]);
    let run = |extra: &[&str]| {
        common::exctl()
            .args([
                "exec",
                "--endpoint",
                &by_name(&s),
                "--user",
                USER,
                "--auth",
                "kerberos",
                "--psrp",
            ])
            .args(extra)
            .envs(kdc.env())
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .env("EXCTL_KEYRING", "none")
            .output()
            .expect("exctl exec runs")
    };
    let out = run(&["--", "'hi over psrp'"]);
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).trim(),
            out.status.code()
        ),
        ("hi over psrp", Some(0)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "--path",
        "PowerShell/",
        "--configuration",
        "Microsoft.Exchange",
        "--command",
        "Get-ImapSettings",
    ]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("MaxConnectionsPerUser"), "{shown}");
}
