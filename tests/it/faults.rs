//! Faults injected by the simulator (`exctl_sim::inject`), and what the client does about
//! each: reads are repeated with backoff, requests that change state never are, and every
//! failure ends in a message that says what happened and whether the host may have acted
//! (`Error::is_outcome_unknown`), with exit status 255 from `exctl exec`.
//!
//! The first half drives the WinRM client in-process against `exctl_sim::serve` (NTLM
//! with message encryption over HTTP, as against a real host); the second runs the real
//! binary against `exctl sim`, planning faults through its `/sim/faults` endpoint. Every
//! test is bounded in time.

use crate::common;

use std::future::Future;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exctl_secret::Secret;
use exctl_sim::{CmdExecutor, FaultPlan, FaultRule, Injected, On, RunningSim, SimConfig};
use exctl_winrm::{Client, ClientConfig, Error, RetryPolicy, ShellOptions};

use common::{SIM_PASSWORD, SIM_USER, Sim, text};

const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test finished in time")
}

async fn sim_with(plan: &FaultPlan) -> RunningSim {
    let config = SimConfig {
        faults: plan.clone(),
        password: SIM_PASSWORD.into(),
        ..SimConfig::default()
    };
    exctl_sim::serve(config, Arc::new(CmdExecutor::new("EXCH01")))
        .await
        .expect("the simulator starts")
}

fn client(sim: &RunningSim) -> Client {
    let mut cfg = ClientConfig::new(sim.url(), SIM_USER, Secret::new(SIM_PASSWORD));
    cfg.operation_timeout = Duration::from_secs(1);
    cfg.read_timeout_margin = Duration::from_millis(800);
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    Client::new(cfg).expect("valid configuration")
}

fn echo() -> Vec<String> {
    vec!["/c".into(), "echo hi".into()]
}

/// How many requests the rule watching `on` saw.
fn seen(plan: &FaultPlan, on: On) -> u32 {
    plan.rules()
        .iter()
        .find(|r| r.rule.on == on)
        .map(|r| r.seen)
        .unwrap_or(0)
}

#[tokio::test]
async fn a_connection_reset_during_receive_is_an_unknown_outcome_and_receive_is_not_repeated() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Receive, 1, Injected::ResetAfter));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        let err = shell.run("cmd.exe", &echo(), None, None).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{err:?}");
        assert!(
            matches!(err.cause(), Error::ConnectionLost { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("was lost during Receive"), "{msg}");
        assert!(msg.contains("the outcome is unknown"), "{msg}");
        assert!(
            msg.contains("output carried by the lost answer is gone"),
            "{msg}"
        );
        // The output the lost answer carried is gone: asking again would skip it silently.
        assert_eq!(seen(&plan, On::Receive), 1);
        // The client authenticates again on a new connection for what follows.
        shell.close().await.unwrap();
        assert_eq!(sim.state().snapshot().shells_open, 0);
    })
    .await;
}

#[tokio::test]
async fn create_and_get_are_repeated_with_backoff_after_transient_failures() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Create, 1, Injected::ResetBefore).times(2));
        plan.add(FaultRule::new(On::Get, 1, Injected::Http500));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let started = Instant::now();
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        assert_eq!(seen(&plan, On::Create), 3, "two resets, then success");
        // 20 ms, then 40 ms between the attempts.
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert_eq!(c.server_max_envelope_size_kb().await.unwrap(), Some(150));
        assert_eq!(seen(&plan, On::Get), 2);
        let out = shell.run("cmd.exe", &echo(), None, None).await.unwrap();
        assert_eq!(out.stdout, b"hi\r\n");
        shell.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn retries_are_bounded() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Create, 1, Injected::Http500).times(100));
        let sim = sim_with(&plan).await;
        let err = client(&sim)
            .open_shell(&ShellOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Http { status: 500, .. }), "{err:?}");
        assert!(!err.is_outcome_unknown());
        assert_eq!(
            err.to_string(),
            "the server answered HTTP 500 without a WS-Management response"
        );
        assert_eq!(seen(&plan, On::Create), 4);
    })
    .await;
}

#[tokio::test]
async fn a_command_whose_answer_is_lost_is_never_repeated() {
    bounded(async {
        for fault in [Injected::ResetAfter, Injected::Http500] {
            let plan = FaultPlan::new();
            plan.add(FaultRule::new(On::Command, 1, fault));
            let sim = sim_with(&plan).await;
            let c = client(&sim);
            let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
            let err = shell.run("cmd.exe", &echo(), None, None).await.unwrap_err();
            assert!(err.is_outcome_unknown(), "{fault:?}: {err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("the Command request may have started the command on the host"),
                "{msg}"
            );
            assert!(msg.contains("nothing was repeated"), "{msg}");
            assert_eq!(seen(&plan, On::Command), 1, "{fault:?}");
            shell.close().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_command_is_known_not_to_have_run() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Command, 1, Injected::Quota));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        let err = shell.run("cmd.exe", &echo(), None, None).await.unwrap_err();
        assert!(!err.is_outcome_unknown(), "{err:?}");
        assert_eq!(sim.state().snapshot().commands, 0);
        shell.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn input_whose_answer_is_lost_is_never_sent_again() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Send, 1, Injected::ResetAfter));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        let args = vec!["/c".into(), "more".into()];
        let err = shell
            .run("cmd.exe", &args, Some(b"line\r\n"), None)
            .await
            .unwrap_err();
        assert!(err.is_outcome_unknown(), "{err:?}");
        assert!(
            err.to_string()
                .contains("the Send request may have delivered input")
        );
        assert_eq!(seen(&plan, On::Send), 1);
        shell.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn slow_answers_within_the_read_timeout_are_only_slow() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Any, 1, Injected::DelayMs(300)).times(3));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let started = Instant::now();
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        let out = shell.run("cmd.exe", &echo(), None, None).await.unwrap();
        assert_eq!((out.stdout.as_slice(), out.exit_code), (&b"hi\r\n"[..], 0));
        assert!(started.elapsed() >= Duration::from_millis(900));
        shell.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn answers_later_than_the_read_timeout() {
    bounded(async {
        // Create: timed out, repeated, and the second attempt goes through.
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Create, 1, Injected::DelayMs(2500)));
        plan.add(FaultRule::new(On::Command, 1, Injected::DelayMs(2500)));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        assert_eq!(seen(&plan, On::Create), 2);
        // Command: timed out, and not repeated: the command may be running.
        let err = shell.run("cmd.exe", &echo(), None, None).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{err:?}");
        assert!(matches!(err.cause(), Error::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains("no response from"), "{err}");
        assert_eq!(seen(&plan, On::Command), 1);
        shell.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_shell_that_disappears_mid_command() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Receive, 1, Injected::DropShell));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        let err = shell.run("cmd.exe", &echo(), None, None).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{err:?}");
        let fault = err.fault().expect("the InvalidSelectors fault");
        assert!(fault.is_unknown_selector(), "{fault:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("2150858843 (unknown shell or command)"),
            "{msg}"
        );
        assert!(
            msg.contains("hint: the shell was closed on the server"),
            "{msg}"
        );
        assert!(
            msg.contains("the command had been started on the host"),
            "{msg}"
        );
        // Closing a shell that is gone says so; nothing is retried in a loop.
        let close = shell.close().await.unwrap_err();
        assert!(close.fault().is_some_and(|f| f.is_unknown_selector()));
    })
    .await;
}

#[tokio::test]
async fn the_quota_fault_is_reported_with_its_hint_and_not_repeated() {
    bounded(async {
        let plan = FaultPlan::new();
        plan.add(FaultRule::new(On::Create, 1, Injected::Quota));
        let sim = sim_with(&plan).await;
        let err = client(&sim)
            .open_shell(&ShellOptions::default())
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("2150859173 (MaxShellsPerUser quota reached)"),
            "{msg}"
        );
        assert!(msg.contains("hint: close idle sessions"), "{msg}");
        assert!(!err.is_outcome_unknown() && !err.is_transient());
        assert_eq!(seen(&plan, On::Create), 1);
    })
    .await;
}

#[tokio::test]
async fn signal_and_delete_whose_answers_are_lost_are_repeated_and_succeed() {
    bounded(async {
        let plan = FaultPlan::new();
        // The first Terminate and the first Delete are carried out, but their answers
        // are lost; the repeats find the command and the shell gone, which is success.
        plan.add(FaultRule::new(On::Signal, 1, Injected::ResetAfter));
        plan.add(FaultRule::new(On::Delete, 1, Injected::ResetAfter));
        let sim = sim_with(&plan).await;
        let c = client(&sim);
        let shell = c.open_shell(&ShellOptions::default()).await.unwrap();
        let out = shell.run("cmd.exe", &echo(), None, None).await.unwrap();
        assert_eq!(out.exit_code, 0);
        shell.close().await.unwrap();
        assert_eq!(seen(&plan, On::Signal), 2);
        assert_eq!(seen(&plan, On::Delete), 2);
        assert_eq!(sim.state().snapshot().shells_open, 0);
    })
    .await;
}

// Multi-threaded: the control requests below block a thread while the simulator answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_endpoint_plans_faults() {
    bounded(async {
        let plan = FaultPlan::new();
        let sim = sim_with(&plan).await;
        let (status, _) = http(
            &sim.faults_url(),
            "POST",
            r#"[{"on":"Receive","nth":2,"fault":"reset_after"},{"on":"Create","fault":{"delay_ms":10}}]"#,
        );
        assert_eq!(status, 204);
        assert_eq!(plan.rules().len(), 2);
        let (status, body) = http(&sim.faults_url(), "GET", "");
        assert_eq!(status, 200);
        assert!(body.contains(r#""on":"Receive","nth":2,"times":1,"fault":"reset_after","seen":0,"fired":0"#), "{body}");
        let (status, body) = http(&sim.faults_url(), "POST", r#"{"on":"Receive","fault":"explode"}"#);
        assert_eq!(status, 400);
        assert!(body.contains("not a fault rule"), "{body}");
        assert_eq!(http(&sim.faults_url(), "DELETE", "").0, 204);
        assert!(plan.rules().is_empty());
    })
    .await;
}

/// A minimal HTTP/1.1 exchange with the simulator's loopback control endpoint.
fn http(url: &str, method: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_once('/').expect("a path");
    let mut sock = std::net::TcpStream::connect(authority).expect("connects");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        sock,
        "{method} /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = sock.read_to_string(&mut answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs `exctl exec` against `sim`, killing it if it outlives [`LIMIT`].
fn exec(sim: &Sim, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exctl"))
        .args(["exec", "--endpoint", &sim.url, "--user", SIM_USER])
        .args(args)
        .env("EXCTL_PASSWORD", SIM_PASSWORD)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exctl exec starts");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("exctl exec did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn plan_faults(sim: &Sim, json: &str) {
    let url = sim.url.replace("/wsman", "/sim/faults");
    assert_eq!(http(&url, "POST", json).0, 204, "{json}");
}

const ECHO: &[&str] = &["--raw", "--", "cmd.exe", "/c", "echo", "hi"];

#[test]
fn exec_reports_a_reset_during_receive_as_an_unknown_outcome() {
    let sim = Sim::start(&[]);
    plan_faults(&sim, r#"{"on":"Receive","fault":"reset_after"}"#);
    let out = exec(&sim, ECHO);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("was lost during Receive"), "{err}");
    assert!(err.contains("the outcome is unknown"), "{err}");
    assert_eq!(text(&out.stdout), "", "the lost output is not made up");
}

#[test]
fn exec_goes_through_transient_failures_of_reads() {
    let sim = Sim::start(&[]);
    plan_faults(
        &sim,
        r#"[{"on":"Create","times":2,"fault":"reset_before"},{"on":"Delete","fault":"http500"}]"#,
    );
    let out = exec(&sim, ECHO);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("hi\r\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_reports_a_lost_command_answer_a_vanished_shell_and_the_quota() {
    let cases = [
        (
            r#"{"on":"Command","fault":"http500"}"#,
            &[
                "HTTP 500",
                "the Command request may have started the command",
            ][..],
        ),
        (
            r#"{"on":"Receive","fault":"drop_shell"}"#,
            &["unknown shell or command", "the outcome is unknown"][..],
        ),
        (
            r#"{"on":"Create","fault":"quota"}"#,
            &[
                "MaxShellsPerUser quota reached",
                "hint: close idle sessions",
            ][..],
        ),
    ];
    for (faults, expected) in cases {
        let sim = Sim::start(&[]);
        plan_faults(&sim, faults);
        let out = exec(&sim, ECHO);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{faults}: {err}");
        for e in expected {
            assert!(err.contains(e), "{faults}: expected {e:?} in {err}");
        }
        assert!(!err.contains(SIM_PASSWORD));
    }
}
