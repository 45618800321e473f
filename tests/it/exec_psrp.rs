//! `exctl exec --psrp` end to end: the real binary against `exctl sim`'s PowerShell
//! remoting endpoints, `Microsoft.PowerShell` on `/wsman` and Exchange's
//! `Microsoft.Exchange` on `/PowerShell/`.

use crate::common;

use common::{LOCAL_USER, SIM_PASSWORD, Sim, exec, exec_as, exec_ok, text};

const EXCHANGE: &[&str] = &[
    "--psrp",
    "--path",
    "PowerShell/",
    "--configuration",
    "Microsoft.Exchange",
];

#[test]
fn a_script_prints_primitives_and_objects_as_out_string() {
    let sim = Sim::start(&[]);
    let out = exec_ok(
        &sim,
        &[
            "--psrp",
            "--",
            "1+1; 'two'; Get-Service -Name MSExchangeIMAP4",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("2\ntwo\n\n"), "{stdout}");
    assert!(stdout.contains("\nName"), "{stdout}");
    assert!(stdout.contains(" : MSExchangeIMAP4\n"), "{stdout}");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn error_records_go_to_stderr_and_exit_1() {
    let sim = Sim::start(&[]);
    let out = exec_ok(
        &sim,
        &[
            "--psrp",
            "--",
            "Get-Item -Path HKLM:\\SOFTWARE\\NoSuchKey; 'after'",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "after\n");
    let err = text(&out.stderr);
    assert!(err.contains("because it does not exist"), "{err}");
    assert!(
        err.contains("+ CategoryInfo          : ObjectNotFound"),
        "{err}"
    );
    assert!(
        err.contains("+ FullyQualifiedErrorId : PathNotFound"),
        "{err}"
    );
}

#[test]
fn exchange_endpoint_takes_commands_with_typed_parameters() {
    let sim = Sim::start(&[]);
    let mut set = EXCHANGE.to_vec();
    set.extend([
        "--command",
        "Set-ImapSettings",
        "--",
        "-Server",
        "EXCH01",
        "-MaxConnectionsPerUser",
        "24",
    ]);
    let out = exec_ok(&sim, &set);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let mut get = EXCHANGE.to_vec();
    get.extend([
        "--format",
        "json",
        "--command",
        "Get-ImapSettings",
        "--",
        "-Server",
        "EXCH01",
    ]);
    let out = exec_ok(&sim, &get);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let o = &json[0];
    assert!(
        o["type_names"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("Deserialized.Microsoft.Exchange")),
        "{json}"
    );
    assert_eq!(o["properties"]["MaxConnectionsPerUser"], 24, "{json}");
    assert_eq!(o["properties"]["Server"], "EXCH01", "{json}");

    let state = sim.exchange_state();
    assert_eq!(state["exchange_sessions"], 2, "{state}");
    assert!(state["cmdlets"].get("Add-PSSnapin").is_none(), "{state}");
}

#[test]
fn exchange_endpoint_refuses_a_script() {
    let sim = Sim::start(&[]);
    let mut args = EXCHANGE.to_vec();
    args.extend(["--", "Get-ImapSettings"]);
    let out = exec_ok(&sim, &args);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no-language mode"), "{err}");
    assert!(err.contains("ScriptsNotAllowed"), "{err}");
}

#[test]
fn own_failures_exit_255() {
    let sim = Sim::start(&[]);
    let out = exec(&sim, "Wrong-Secret-42", &["--psrp", "--", "1"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(!text(&out.stderr).contains("Wrong-Secret-42"));
    let out = exec(&sim, SIM_PASSWORD, &["--psrp"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("nothing to run"));
}

#[test]
fn exchange_endpoint_over_https_with_basic() {
    // Basic takes local accounts only (issue 15): a domain account is refused as a
    // wrong password is, on /PowerShell as on /wsman.
    let sim = Sim::start(&["--tls", "--ca-out", "ca.pem", "--user", LOCAL_USER]);
    common::wait_for(&sim.path("ca.pem"));
    let ca = sim.path("ca.pem");
    let ca = ca.to_str().unwrap();
    let mut args = vec!["--auth", "basic", "--ca-file", ca];
    args.extend(EXCHANGE);
    args.extend(["--command", "Get-ImapSettings", "--", "-Server", "EXCH01"]);
    let out = exec_as(&sim, LOCAL_USER, SIM_PASSWORD, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("MaxConnectionsPerUser"));
}

/// Issue 15: Basic with a domain account is refused (401, reported as rejected
/// credentials), on Exchange's endpoint and on /wsman, over HTTPS.
#[test]
fn basic_with_a_domain_account_is_refused() {
    let sim = Sim::start(&["--tls", "--ca-out", "ca.pem"]);
    common::wait_for(&sim.path("ca.pem"));
    let ca = sim.path("ca.pem");
    let ca = ca.to_str().unwrap();
    let mut exchange = vec!["--auth", "basic", "--ca-file", ca];
    exchange.extend(EXCHANGE);
    exchange.extend(["--command", "Get-ImapSettings", "--", "-Server", "EXCH01"]);
    let wsman = ["--auth", "basic", "--ca-file", ca, "--psrp", "--", "1"];
    for args in [&exchange[..], &wsman[..]] {
        let out = exec_ok(&sim, args);
        assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains("the user name or password is wrong"), "{err}");
        assert!(!err.contains(SIM_PASSWORD), "{err}");
    }
}

/// Issue 15: Exchange's own endpoint is unaffected by the double hop (Exchange does the
/// directory work itself): a host without delegation answers Get-ImapSettings there.
#[test]
fn exchange_endpoint_works_without_delegation() {
    let sim = Sim::start_without_delegation(&[]);
    assert_eq!(sim.state()["sections"]["host"]["delegation"], false);
    let mut args = EXCHANGE.to_vec();
    args.extend(["--command", "Get-ImapSettings", "--", "-Server", "EXCH01"]);
    let out = exec_ok(&sim, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("MaxConnectionsPerUser"));
}

/// Issue 15, RBAC: a View-Only Organization Management account's Exchange session
/// holds the Get- cmdlets only; Set-ImapSettings is not in it at all.
#[test]
fn a_view_only_account_cannot_run_set_cmdlets() {
    let sim = Sim::start(&["--exchange-role", "view-only"]);
    let mut get = EXCHANGE.to_vec();
    get.extend(["--command", "Get-ImapSettings", "--", "-Server", "EXCH01"]);
    let out = exec_ok(&sim, &get);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let mut set = EXCHANGE.to_vec();
    set.extend([
        "--command",
        "Set-ImapSettings",
        "--",
        "-Server",
        "EXCH01",
        "-MaxConnectionsPerUser",
        "24",
    ]);
    let out = exec_ok(&sim, &set);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("The term 'Set-ImapSettings' is not recognized"),
        "{err}"
    );
    assert!(err.contains("CommandNotFoundException"), "{err}");
    assert_eq!(
        sim.state()["sections"]["host"]["exchange_role"],
        "view-only-organization-management"
    );
}

/// Issue 15, RBAC: an account without any management role cannot open an Exchange
/// session: the pool's opening fails with Exchange's text.
#[test]
fn an_account_without_roles_cannot_open_an_exchange_session() {
    let sim = Sim::start(&["--exchange-role", "none"]);
    let mut get = EXCHANGE.to_vec();
    get.extend(["--command", "Get-ImapSettings", "--", "-Server", "EXCH01"]);
    let out = exec_ok(&sim, &get);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "The user \"contoso.local/Users/Administrator\" isn't assigned to any management roles."
        ),
        "{err}"
    );
    assert_eq!(sim.exchange_state()["exchange_sessions"], 0);
}

#[test]
fn timeout_stops_the_pipeline() {
    let sim = Sim::start(&[]);
    let out = exec_ok(
        &sim,
        &[
            "--psrp",
            "--timeout",
            "1",
            "--",
            "Start-Sleep -Seconds 600; 'never'",
        ],
    );
    assert_eq!(out.status.code(), Some(255));
    assert!(!text(&out.stdout).contains("never"));
    assert!(
        text(&out.stderr).contains("did not finish"),
        "{}",
        text(&out.stderr)
    );
}

/// An inventory with one host on `sim`, its password read from `EXCTL_SIM_PASSWORD`;
/// its Exchange endpoint (session_uri) is the simulator's `/PowerShell/`.
fn inventory(dir: &std::path::Path, sim: &Sim) {
    let base = sim.url.trim_end_matches("/wsman");
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {}\n    user: {}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n    access: remote-session\n    session_uri: {base}/PowerShell/\n",
            sim.url,
            common::SIM_USER
        ),
    )
    .expect("inventory written");
}

fn exec_host(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    common::exctl()
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("exctl runs")
}

/// Issue 18: `exctl exec HOST [PATH…]` takes endpoint, account, authentication and
/// credential from the inventory, over WinRS and over PSRP; `--exchange` sends a command
/// to the host's Exchange endpoint.
#[test]
fn exec_by_inventory_host_over_winrs_psrp_and_the_exchange_endpoint() {
    let sim = Sim::start(&["--computer-name", "EXCH01"]);
    let dir = tempfile::tempdir().expect("temp dir");
    inventory(dir.path(), &sim);
    let d = dir.path().to_str().expect("utf-8 path");

    let out = exec_host(
        dir.path(),
        &["EXCH01", d, "--", "Write-Output", "'hi there'"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi there\r\n");

    let out = exec_host(dir.path(), &["exch01", "--psrp", "--", "'over psrp'"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "over psrp\n");

    let out = exec_host(
        dir.path(),
        &[
            "EXCH01",
            "--psrp",
            "--exchange",
            "--command",
            "Get-ImapSettings",
            "--",
            "-Server",
            "EXCH01",
        ],
    );
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", text(&out.stderr));
    assert!(shown.contains("MaxConnectionsPerUser"), "{shown}");
    assert_eq!(sim.exchange_state()["exchange_sessions"], 1);

    // A script is refused by the Exchange endpoint (NoLanguage): exit 1, the server's error.
    let out = exec_host(dir.path(), &["EXCH01", "--psrp", "--exchange", "--", "1+1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    let out = exec_host(dir.path(), &["EXCH99", "--", "1"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("'EXCH99' is not a host of the inventory"),
        "{}",
        text(&out.stderr)
    );
    // --exchange needs --psrp (and a host): a usage error, exec's 255.
    let out = exec_host(dir.path(), &["EXCH01", "--exchange", "--", "1"]);
    assert_eq!(out.status.code(), Some(255));
}
