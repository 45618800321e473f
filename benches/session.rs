//! The session benchmark (issue 16): `exctl plan` and `exctl apply` of one host, each one
//! run of the real release binary against an `exctl sim` whose Exchange snap-in takes
//! 2 s to load and which answers every WS-Management request 20 ms late, as a real
//! server roughly does.
//!
//! ```sh
//! cargo bench --bench session
//! EXCTL_BENCH_RUNS=5 EXCTL_BENCH_STARTUP_MS=5000 cargo bench --bench session
//! ```
//!
//! Each apply changes the IMAP4 settings (and so restarts MSExchangeIMAP4) and a store
//! limit (and so restarts the Information Store), on a simulator whose clock runs 100×
//! faster than the wall's. The report gives, per run, plan's wall time, apply's, the
//! restarts' own time (from apply's JSON: the restart steps' durations) and apply minus
//! restarts as a multiple of plan; and the shells, PowerShell processes and Exchange
//! sessions (snap-in loads, or sessions on Exchange's endpoint under `access: psrp`) each
//! command cost the host (`/sim/state`). Target (issue 16): apply minus restarts within
//! 1.4 × plan; one host session and one Exchange session per command.

#[path = "../tests/it/common/mod.rs"]
#[allow(unused_imports)]
mod common;

#[path = "measure/mod.rs"]
#[allow(dead_code)]
mod measure;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{SIM_PASSWORD, SIM_USER, Sim, exctl};

const RESOURCES: &str = r#"targets: [EXCH01]
throttling_policies:
  UCCXThrottlingPolicy:
    IMAPMaxConcurrency: unlimited
throttling_associations:
  - identity: uccx-agent
    policy: UCCXThrottlingPolicy
receive_connectors:
  "*":
    MaxInboundConnectionPerSource: unlimited
imap_settings:
  MaxConnectionsPerUser: {imap}
registry_values:
  - path: 'HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem'
    name: Maximum Allowed Service Sessions Per User
    type: dword
    value: {store}
"#;

fn write_repo(dir: &Path, url: &str, run: u64) {
    std::fs::write(
        dir.join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {url}\n    user: {SIM_USER}\n    credential: env:EXCTL_SIM_PASSWORD\n    exchange: 2010-sp3\n{}",
            common::exchange_endpoint(url, 4)
        ),
    )
    .expect("inventory written");
    let resources = RESOURCES
        .replace("{imap}", &(250 + run).to_string())
        .replace("{store}", &(250 + run).to_string());
    std::fs::write(dir.join("ex01.yaml"), resources).expect("manifest written");
}

fn run(dir: &Path, args: &[&str]) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = exctl()
        .args(args)
        .current_dir(dir)
        .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("exctl runs");
    (out, t0.elapsed())
}

/// The restart steps' own durations in apply's JSON report.
fn restart_ms(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::Object(m) => {
            let own = (m.get("type").and_then(|t| t.as_str()) == Some("restart"))
                .then(|| m.get("duration_ms").and_then(|d| d.as_u64()))
                .flatten()
                .unwrap_or(0);
            own + m.values().map(restart_ms).sum::<u64>()
        }
        serde_json::Value::Array(a) => a.iter().map(restart_ms).sum(),
        _ => 0,
    }
}

/// Shells, PowerShell processes and Exchange sessions (a snap-in load, or a session on
/// Exchange's endpoint) a command cost the host.
fn cost(sim: &Sim, f: impl FnOnce() -> (Output, Duration)) -> ((Output, Duration), [u64; 3]) {
    let get = |s: &serde_json::Value, path: &[&str]| {
        path.iter().fold(s, |v, k| &v[*k]).as_u64().unwrap_or(0)
    };
    let before = sim.state();
    let r = f();
    let after = sim.state();
    let d = |p: &[&str]| get(&after, p) - get(&before, p);
    (
        r,
        [
            d(&["shells_created"]),
            d(&["sections", "exchange", "powershell_processes"]),
            d(&["sections", "exchange", "exchange_sessions"]),
        ],
    )
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs benches as tests: then
    // do nothing (the measurement takes a while and asserts nothing).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs = measure::env_num("EXCTL_BENCH_RUNS", 3);
    let startup = measure::env_num("EXCTL_BENCH_STARTUP_MS", 2000).to_string();
    let latency = measure::env_num("EXCTL_BENCH_LATENCY_MS", 20).to_string();
    let sim = Sim::start(&[
        "--computer-name",
        "EXCH01",
        "--exchange",
        "2010-sp3",
        "--startup-ms",
        &startup,
        "--latency-ms",
        &latency,
        "--time-scale",
        "0.01",
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "session benchmark: one host, Exchange session start {startup} ms, {latency} ms per request, {runs} runs"
    );
    println!(
        "{:>3}  {:>8}  {:>8}  {:>9}  {:>15}  {:>7}  {:>14}  {:>14}",
        "run",
        "plan s",
        "apply s",
        "restart s",
        "apply-restart",
        "× plan",
        "plan sh/ps/ex",
        "apply sh/ps/ex"
    );
    let mut ratios = Vec::new();
    for k in 1..=runs {
        write_repo(dir.path(), &sim.url, k);
        let ((plan, t_plan), plan_cost) = cost(&sim, || run(dir.path(), &["plan", "."]));
        assert!(
            plan.status.success(),
            "plan: {}",
            String::from_utf8_lossy(&plan.stderr)
        );
        let ((apply, t_apply), apply_cost) = cost(&sim, || {
            run(
                dir.path(),
                &[
                    "apply",
                    ".",
                    "--auto-approve",
                    "--format",
                    "json",
                    "--progress",
                    "none",
                ],
            )
        });
        assert!(
            apply.status.success(),
            "apply: {}",
            String::from_utf8_lossy(&apply.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&apply.stdout).expect("apply's JSON report");
        let restarts = Duration::from_millis(restart_ms(&report));
        let net = t_apply.saturating_sub(restarts);
        let ratio = net.as_secs_f64() / t_plan.as_secs_f64();
        ratios.push(ratio);
        let c = |c: [u64; 3]| format!("{}/{}/{}", c[0], c[1], c[2]);
        println!(
            "{k:>3}  {:>8.2}  {:>8.2}  {:>9.2}  {:>15.2}  {:>7.2}  {:>14}  {:>14}",
            t_plan.as_secs_f64(),
            t_apply.as_secs_f64(),
            restarts.as_secs_f64(),
            net.as_secs_f64(),
            ratio,
            c(plan_cost),
            c(apply_cost)
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "median (apply - restarts) / plan: {median:.2} (target: at most 1.4); sh/ps/ex = shells, PowerShell processes, Exchange sessions (snap-in loads or sessions on Exchange's endpoint)"
    );
}
