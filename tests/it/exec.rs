//! `exctl exec` end to end: the real binary against the simulator, over HTTP with NTLM
//! message encryption and over HTTPS with Basic and NTLM (channel binding).

use crate::common;

use common::{LOCAL_USER, SIM_PASSWORD, Sim, exec, exec_as, text};

#[test]
fn raw_command_over_http_with_ntlm_encryption() {
    let sim = Sim::start(&[]);
    let out = exec(
        &sim,
        SIM_PASSWORD,
        &["--raw", "--", "cmd.exe", "/c", "echo", "hi"],
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "hi\r\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn remote_exit_code_and_stderr_pass_through() {
    let sim = Sim::start(&[]);
    let out = exec(
        &sim,
        SIM_PASSWORD,
        &[
            "--raw",
            "--",
            "cmd.exe",
            "/c",
            "echo out && echo err>&2 && exit 3",
        ],
    );
    assert_eq!(text(&out.stdout), "out \r\n");
    assert_eq!(text(&out.stderr), "err \r\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn wrong_password_is_refused_without_echoing_it() {
    let sim = Sim::start(&[]);
    let out = exec(
        &sim,
        "Wrong-Secret-42",
        &["--raw", "--", "cmd.exe", "/c", "echo", "hi"],
    );
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains("the server refused the credentials for 'CONTOSO\\Administrator'"),
        "{err}"
    );
    // Issue 17: a wrong password says so, not which schemes the server offers.
    assert!(err.contains("the user name or password is wrong"), "{err}");
    assert!(!err.contains("the server offers"), "{err}");
    assert!(!err.contains("Wrong-Secret-42") && !text(&out.stdout).contains("Wrong-Secret-42"));
}

#[test]
fn https_with_basic_and_the_simulator_ca() {
    // Basic takes local accounts only (issue 15).
    let sim = Sim::start(&["--tls", "--ca-out", "ca.pem", "--user", LOCAL_USER]);
    common::wait_for(&sim.path("ca.pem"));
    let ca = sim.path("ca.pem");
    let ca = ca.to_str().unwrap();
    let out = exec_as(
        &sim,
        LOCAL_USER,
        SIM_PASSWORD,
        &[
            "--auth",
            "basic",
            "--ca-file",
            ca,
            "--raw",
            "--",
            "cmd.exe",
            "/c",
            "echo",
            "tls",
        ],
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("tls\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn https_with_ntlm_and_strict_channel_binding() {
    let sim = Sim::start(&["--tls", "--ca-out", "ca.pem", "--cbt-strict"]);
    common::wait_for(&sim.path("ca.pem"));
    let ca = sim.path("ca.pem");
    let out = exec(
        &sim,
        SIM_PASSWORD,
        &[
            "--ca-file",
            ca.to_str().unwrap(),
            "--raw",
            "--",
            "cmd.exe",
            "/c",
            "echo",
            "cbt",
        ],
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("cbt\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let sim = Sim::start(&["--tls"]);
    let out = exec(
        &sim,
        SIM_PASSWORD,
        &[
            "--auth", "basic", "--raw", "--", "cmd.exe", "/c", "echo", "x",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains("TLS certificate") && err.contains("--ca-file"),
        "{err}"
    );
}

#[test]
fn basic_over_plain_http_is_refused_before_sending_anything() {
    let sim = Sim::start(&[]);
    let out = exec(
        &sim,
        SIM_PASSWORD,
        &[
            "--auth", "basic", "--raw", "--", "cmd.exe", "/c", "echo", "x",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("refusing Basic authentication over plain HTTP"));
}

#[test]
fn insecure_skip_verify_warns_loudly() {
    let sim = Sim::start(&["--tls", "--user", LOCAL_USER]);
    let out = exec_as(
        &sim,
        LOCAL_USER,
        SIM_PASSWORD,
        &[
            "--auth",
            "basic",
            "--insecure-skip-verify",
            "--raw",
            "--",
            "cmd.exe",
            "/c",
            "echo",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("warning: TLS certificate verification is OFF"));
}

#[test]
fn a_closed_connection_means_authenticating_again_transparently() {
    // The simulator drops every connection after 4 requests: the NTLM handshake (2) and
    // two sealed messages. The client must notice and authenticate again, mid-command.
    let sim = Sim::start(&["--close-connections-after", "4"]);
    let out = exec(
        &sim,
        SIM_PASSWORD,
        &["--raw", "--", "cmd.exe", "/c", "echo", "again"],
    );
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("again\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 17: a listener with a self-issued certificate (CA:TRUE, as `openssl req -x509`
/// makes) given as --ca-file is trusted, as curl and pywinrm trust it; a pinned
/// fingerprint trusts exactly that certificate, and another pin is refused.
#[test]
fn a_self_issued_listener_certificate_as_ca_file_or_pinned() {
    let sim = Sim::start(&[
        "--tls",
        "--tls-self-issued",
        "--ca-out",
        "self.pem",
        "--user",
        LOCAL_USER,
    ]);
    common::wait_for(&sim.path("self.pem"));
    let pem_path = sim.path("self.pem");
    let pem = pem_path.to_str().unwrap();
    let run = |trust: &[&str]| {
        let mut args = vec!["--auth", "basic"];
        args.extend_from_slice(trust);
        args.extend_from_slice(&["--raw", "--", "cmd.exe", "/c", "echo", "tls"]);
        exec_as(&sim, LOCAL_USER, SIM_PASSWORD, &args)
    };
    let out = run(&["--ca-file", pem]);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("tls\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    let pin = exctl_winrm::tls::pem_fingerprints(&pem_path)
        .expect("the PEM reads")
        .remove(0);
    let out = run(&["--tls-fingerprint", &pin]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let wrong = format!("sha256:{}", "AB".repeat(32));
    let out = run(&["--tls-fingerprint", &wrong]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("is not the pinned one"),
        "{}",
        text(&out.stderr)
    );
}
