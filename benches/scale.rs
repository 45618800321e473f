//! The scale benchmark: client CPU of `exctl validate` and `exctl plan` with one host and
//! N throttling associations, against a simulated organization with N mailboxes, measured
//! from outside the real release binary.
//!
//! ```sh
//! cargo bench --bench scale                      # N = 2,500, 10,000, 50,000
//! EXCTL_BENCH_QUICK=1 cargo bench --bench scale  # N = 2,500, 10,000
//! EXCTL_BENCH_SIZES=1000,5000 EXCTL_BENCH_ROUNDS=5 cargo bench --bench scale
//! ```
//!
//! For each N, one release `exctl sim --state` serves N mailboxes (every tenth already
//! associated with the default policy it asks for: in sync; the others move to a
//! declared policy), and the repository declares the policy and N associations, 10,000
//! to a file (a file holds at most 250,000 values). Each exctl process is reaped with `wait4`, which gives its own user +
//! system CPU time (the simulator's is not in it; it is read from `/proc` before and
//! after and shown beside). Medians over the rounds.
//!
//! Targets (issue 19): validate + plan client CPU under 0.5 s at N = 10,000, and
//! t(10,000) / t(2,500) at most 5 for each of them (linear would be 4).

mod measure;
use measure::{env_num, median, proc_cpu, timeval};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const USER: &str = "CONTOSO\\Administrator";
const PASSWORD: &str = "Bench-Pa55word!";

/// The cost of one exctl process.
#[derive(Clone, Copy, Default)]
struct Cost {
    cpu: Duration,
    sim_cpu: Duration,
    stdout_bytes: usize,
}

/// Runs exctl with `args` in `dir` to its end; panics with its stderr unless it exits
/// with one of `ok`.
// The child is reaped by wait4 (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(dir: &Path, args: &[&str], ok: &[i32], sim_pid: u32) -> Cost {
    let sim_before = proc_cpu(sim_pid);
    let mut child = Command::new(env!("CARGO_BIN_EXE_exctl"))
        .args(args)
        .current_dir(dir)
        .env("EXCTL_BENCH_PW", PASSWORD)
        .env("NO_COLOR", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exctl starts");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let mut out = Vec::new();
    let _ = child.stdout.take().expect("stdout").read_to_end(&mut out);
    let (code, usage) = measure::reap(pid);
    let sim_cpu = proc_cpu(sim_pid).saturating_sub(sim_before);
    let err = err_reader.join().unwrap_or_default();
    assert!(
        ok.contains(&code),
        "exctl {} exited with {code}: {}",
        args.join(" "),
        String::from_utf8_lossy(&err)
    );
    Cost {
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        sim_cpu,
        stdout_bytes: out.len(),
    }
}

/// A running `exctl sim`, killed when dropped.
struct Sim {
    child: std::process::Child,
    url: String,
}

impl Sim {
    fn start(state: &Path) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_exctl"))
            .args(["sim", "--listen", "127.0.0.1:0", "--time-scale", "0.001"])
            // Plans go through the snap-in: a host set up for delegation (issue 15).
            .arg("--delegation")
            .arg("--state")
            .arg(state)
            .env("EXCTL_SIM_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("exctl sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the simulator prints its URL");
        assert!(line.starts_with("http"), "unexpected first line: {line:?}");
        Sim {
            child,
            url: line.trim().to_string(),
        }
    }
}

impl Sim {
    /// The simulator's `/sim/state` document, by a plain HTTP/1.1 GET on loopback.
    fn state(&self) -> serde_json::Value {
        let url = self.url.replace("/wsman", "/sim/state");
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut stream = std::net::TcpStream::connect(authority).expect("the simulator accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout set");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .expect("request written");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("response read");
        let text = String::from_utf8_lossy(&response);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).expect("/sim/state is JSON")
    }

    /// What the simulator counted so far: requests, shells, PowerShell processes and
    /// Get-ThrottlingPolicyAssociation calls.
    fn counters(&self) -> [u64; 4] {
        let s = self.state();
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let x = &s["sections"]["exchange"];
        [
            n(&s["requests"]),
            n(&s["shells_created"]),
            n(&x["powershell_processes"]),
            n(&x["cmdlets"]["Get-ThrottlingPolicyAssociation"]),
        ]
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Associations per manifest file.
const PER_FILE: usize = 10_000;

/// Writes the simulator's state (N mailboxes) and the repository (one host, one policy,
/// N associations) under `dir`.
fn setup(dir: &Path, n: usize) -> std::path::PathBuf {
    let mailboxes: Vec<serde_json::Value> = (1..=n)
        .map(|i| serde_json::json!({ "alias": format!("user{i:06}") }))
        .collect();
    let state = serde_json::json!({
        "sp": "Sp3",
        "servers": [{ "name": "EXCH01" }],
        "mailboxes": mailboxes,
    });
    let state_file = dir.join("state.json");
    std::fs::write(&state_file, state.to_string()).expect("state written");
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).expect("directory");
    std::fs::write(
        manifests.join("policies.yaml"),
        "targets: [EXCH01]\nthrottling_policies:\n  Bulk:\n    IMAPMaxConcurrency: 100\n",
    )
    .expect("policies written");
    // At most PER_FILE associations a file: a manifest file holds at most 250,000 values
    // (manifest::too-many-values).
    for (f, first) in (1..=n).step_by(PER_FILE).enumerate() {
        let mut site = String::from("targets: [EXCH01]\nthrottling_associations:\n");
        for i in first..=(first + PER_FILE - 1).min(n) {
            let policy = if i % 10 == 0 { "default" } else { "Bulk" };
            site.push_str(&format!("  - identity: user{i:06}\n    policy: {policy}\n"));
        }
        std::fs::write(manifests.join(format!("associations-{f:02}.yaml")), site)
            .expect("associations written");
    }
    state_file
}

fn write_inventory(dir: &Path, url: &str) {
    std::fs::write(
        dir.join("manifests").join("inventory.yaml"),
        format!(
            "hosts:\n  EXCH01:\n    endpoint: {url}\n    auth: ntlm\n    user: {USER}\n    credential: env:EXCTL_BENCH_PW\n    exchange: 2010-sp3\n    access: snapin\n"
        ),
    )
    .expect("inventory written");
}

/// The medians at one size.
struct Row {
    n: usize,
    validate: f64,
    plan: f64,
    plan_md: f64,
    sim: f64,
    text_bytes: usize,
    md_bytes: usize,
    /// Per plan: WS-Management requests, shells, PowerShell processes, association reads.
    per_plan: [u64; 4],
}

fn measure(n: usize, rounds: usize) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = setup(dir.path(), n);
    let sim = Sim::start(&state);
    let sim_pid = sim.child.id();
    write_inventory(dir.path(), &sim.url);
    // The plan exits 2: changes pending (--detailed-exitcode).
    let plan_args = [
        "plan",
        "manifests",
        "--detailed-exitcode",
        "--progress",
        "none",
    ];
    // Warm the page cache and the simulator's PowerShell host; count what one plan asks
    // of the simulator.
    let before = sim.counters();
    run(dir.path(), &plan_args, &[2], sim_pid);
    let after = sim.counters();
    let per_plan = [0, 1, 2, 3].map(|i| after[i] - before[i]);
    assert_eq!(
        per_plan[1..3],
        [1, 1],
        "one shell and one PowerShell process per plan and host"
    );
    let (mut validate, mut plan, mut plan_md, mut sim_cpu) = (vec![], vec![], vec![], vec![]);
    let (mut text_bytes, mut md_bytes) = (0, 0);
    for _ in 0..rounds {
        let v = run(dir.path(), &["validate", "manifests"], &[0], sim_pid);
        validate.push(v.cpu.as_secs_f64());
        let p = run(dir.path(), &plan_args, &[2], sim_pid);
        plan.push(p.cpu.as_secs_f64());
        sim_cpu.push(p.sim_cpu.as_secs_f64());
        text_bytes = p.stdout_bytes;
        let mut md = plan_args.to_vec();
        md.extend(["--format", "markdown"]);
        let m = run(dir.path(), &md, &[2], sim_pid);
        plan_md.push(m.cpu.as_secs_f64());
        md_bytes = m.stdout_bytes;
    }
    Row {
        n,
        validate: median(validate),
        plan: median(plan),
        plan_md: median(plan_md),
        sim: median(sim_cpu),
        text_bytes,
        md_bytes,
        per_plan,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` lists with --list.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = env_num("EXCTL_BENCH_QUICK", 0) != 0;
    let sizes: Vec<usize> = std::env::var("EXCTL_BENCH_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| {
            if quick {
                vec![2_500, 10_000]
            } else {
                vec![2_500, 10_000, 50_000]
            }
        });
    let rounds = usize::try_from(env_num("EXCTL_BENCH_ROUNDS", if quick { 1 } else { 3 }))
        .unwrap_or(3)
        .max(1);
    println!(
        "exctl scale benchmark: one host, N throttling associations against N simulated mailboxes; client CPU (user+sys, wait4), {rounds} round(s), medians"
    );
    println!(
        "| associations | validate | plan (text) | validate + plan | plan (markdown) | simulator, per plan | text / markdown output |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for n in sizes {
        let r = measure(n, rounds);
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {} / {} KiB |",
            r.n,
            r.validate,
            r.plan,
            r.validate + r.plan,
            r.plan_md,
            r.sim,
            r.text_bytes / 1024,
            r.md_bytes / 1024
        );
        println!(
            "  per plan of {}: {} WS-Management requests, {} shell, {} PowerShell process, {} Get-ThrottlingPolicyAssociation",
            r.n, r.per_plan[0], r.per_plan[1], r.per_plan[2], r.per_plan[3]
        );
        rows.push(r);
    }
    let at = |n: usize| rows.iter().find(|r| r.n == n);
    if let (Some(a), Some(b)) = (at(2_500), at(10_000)) {
        println!(
            "t(10,000) / t(2,500): validate {:.1}, plan {:.1} (target: 5 or less each); validate + plan at 10,000: {:.2} s (target: under 0.5 s)",
            b.validate / a.validate,
            b.plan / a.plan,
            b.validate + b.plan
        );
    }
    if let (Some(a), Some(b)) = (at(10_000), at(50_000)) {
        println!(
            "t(50,000) / t(10,000): validate {:.1}, plan {:.1} (linear: 5)",
            b.validate / a.validate,
            b.plan / a.plan
        );
    }
}
