//! The transport benchmark: `exctl exec` against the Python peers pywinrm and pypsrp, on
//! the same workloads through NTLM with message encryption against one simulator.
//!
//! ```sh
//! cargo bench --bench transport                  # 1 MB and 20 MB outputs, 50 small commands, 3 rounds
//! EXCTL_BENCH_QUICK=1 cargo bench --bench transport
//! EXCTL_BENCH_SIZES_MB=1,5,50 EXCTL_BENCH_BURST=20 EXCTL_BENCH_ROUNDS=5 cargo bench --bench transport
//! ```
//!
//! One release `exctl sim` serves every client; each client runs as its own process and
//! is measured from outside with `wait4`: wall time, user + system CPU time and peak
//! resident memory (the simulator's CPU is not counted; it is shown beside, read from
//! `/proc`). Every client's stdout is checked byte by byte against what the workload
//! must print. Medians over the rounds; the rounds interleave the clients so that a busy
//! moment of the machine does not fall on one client only.
//!
//! Workloads:
//! - large output: the PowerShell script `'x' * N`, which prints N bytes and CRLF. exctl
//!   runs it with `exctl exec` (the script goes on stdin to a `-EncodedCommand`
//!   bootstrap), pywinrm with `Session.run_ps` (`powershell -encodedcommand`), pypsrp with
//!   a WinRS `Process` running `powershell.exe -EncodedCommand`;
//! - a burst of small commands: `echo burst-I` through cmd.exe, I = 0..N. exctl runs one
//!   `exctl exec --raw` process per command, each with its own connection, NTLM
//!   handshake and shell, as a shell script would call it; each peer runs the whole burst
//!   in one Python process on one authenticated connection (pywinrm's `run_cmd` opens a
//!   shell per command, pypsrp runs every command in one WinRS shell). The burst's
//!   figures are the sums over its processes (peak memory: the largest).
//!
//! The interpreter is `$EXCTL_PYTHON`, else `<workspace>/.venv/bin/python` (as for the
//! tests: `python3 -m venv .venv && .venv/bin/python -m pip install -r
//! tests/peers/requirements.txt`).
//!
//! Targets: exctl at least 3x faster than pywinrm on large output, never slower on small
//! commands, and its peak memory flat in the output size (exec streams).

mod measure;
use measure::{env_num, median, proc_cpu, timeval};

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "CONTOSO\\Administrator";
const PASSWORD: &str = "Bench-Pa55word!";

/// Large output through pywinrm's `run_ps`.
const PYWINRM_LARGE: &str = r#"
import os, sys, winrm
url, n = sys.argv[1], int(sys.argv[2])
s = winrm.Session(url, auth=(os.environ["BENCH_USER"], os.environ["BENCH_PW"]),
                  transport="ntlm", message_encryption="always")
r = s.run_ps("'x' * %d" % n)
sys.stdout.buffer.write(r.std_out)
sys.exit(r.status_code)
"#;

/// A burst of small commands through pywinrm's `run_cmd`, on one session.
const PYWINRM_BURST: &str = r#"
import os, sys, winrm
url, n = sys.argv[1], int(sys.argv[2])
s = winrm.Session(url, auth=(os.environ["BENCH_USER"], os.environ["BENCH_PW"]),
                  transport="ntlm", message_encryption="always")
for i in range(n):
    r = s.run_cmd("echo", ["burst-%d" % i])
    if r.status_code != 0:
        sys.exit(r.status_code)
    sys.stdout.buffer.write(r.std_out)
"#;

/// Large output through pypsrp's WinRS client.
const PYPSRP_LARGE: &str = r#"
import base64, os, sys
from urllib.parse import urlparse
from pypsrp.wsman import WSMan
from pypsrp.shell import Process, WinRS
url, n = urlparse(sys.argv[1]), int(sys.argv[2])
script = base64.b64encode(("'x' * %d" % n).encode("utf-16-le")).decode()
wsman = WSMan(url.hostname, port=url.port, path=url.path.lstrip("/"), ssl=False,
              username=os.environ["BENCH_USER"], password=os.environ["BENCH_PW"],
              auth="ntlm", encryption="always")
with wsman, WinRS(wsman) as shell:
    p = Process(shell, "powershell.exe", ["-NoProfile", "-EncodedCommand", script])
    p.invoke()
    sys.stdout.buffer.write(p.stdout)
sys.exit(p.rc)
"#;

/// A burst of small commands through pypsrp, in one WinRS shell.
const PYPSRP_BURST: &str = r#"
import os, sys
from urllib.parse import urlparse
from pypsrp.wsman import WSMan
from pypsrp.shell import Process, WinRS
url, n = urlparse(sys.argv[1]), int(sys.argv[2])
wsman = WSMan(url.hostname, port=url.port, path=url.path.lstrip("/"), ssl=False,
              username=os.environ["BENCH_USER"], password=os.environ["BENCH_PW"],
              auth="ntlm", encryption="always")
with wsman, WinRS(wsman) as shell:
    for i in range(n):
        p = Process(shell, "echo", ["burst-%d" % i])
        p.invoke()
        if p.rc != 0:
            sys.exit(p.rc)
        sys.stdout.buffer.write(p.stdout)
"#;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EXCTL_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
}

/// What a client must print, checked as it streams (the large outputs are not kept).
#[derive(Clone)]
enum Expected {
    /// `count` times `byte`, then CRLF.
    Repeat { byte: u8, count: usize },
    /// Exactly these bytes.
    Exact(Vec<u8>),
}

impl Expected {
    fn len(&self) -> usize {
        match self {
            Expected::Repeat { count, .. } => count + 2,
            Expected::Exact(v) => v.len(),
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        match self {
            Expected::Repeat { byte, count } => match i {
                i if i < *count => Some(*byte),
                i if i == *count => Some(b'\r'),
                i if i == count + 1 => Some(b'\n'),
                _ => None,
            },
            Expected::Exact(v) => v.get(i).copied(),
        }
    }
}

/// Reads a client's stdout to the end, comparing it with what it must be.
struct Checker {
    expected: Expected,
    pos: usize,
    first_mismatch: Option<usize>,
}

impl Checker {
    fn new(expected: Expected) -> Self {
        Checker {
            expected,
            pos: 0,
            first_mismatch: None,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.first_mismatch.is_none() {
            // The common case of the large outputs: a run of the repeated byte.
            if let Expected::Repeat { byte, count } = self.expected
                && self.pos + chunk.len() <= count
            {
                if let Some(k) = chunk.iter().position(|b| *b != byte) {
                    self.first_mismatch = Some(self.pos + k);
                }
            } else {
                for (k, b) in chunk.iter().enumerate() {
                    if self.expected.at(self.pos + k) != Some(*b) {
                        self.first_mismatch = Some(self.pos + k);
                        break;
                    }
                }
            }
        }
        self.pos += chunk.len();
    }

    /// `None` when the output was exactly right, else what was wrong.
    fn verdict(&self) -> Option<String> {
        match self.first_mismatch {
            Some(at) => Some(format!("wrong byte at offset {at}")),
            None if self.pos != self.expected.len() => Some(format!(
                "{} bytes instead of {}",
                self.pos,
                self.expected.len()
            )),
            None => None,
        }
    }
}

/// The cost of one or more client processes.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    cpu: Duration,
    peak_kib: u64,
    /// The simulator's CPU time meanwhile (not part of the client's).
    sim_cpu: Duration,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.wall += other.wall;
        self.cpu += other.cpu;
        self.peak_kib = self.peak_kib.max(other.peak_kib);
        self.sim_cpu += other.sim_cpu;
    }
}

/// Runs one client process to its end, feeding its stdout to `check`; panics with its
/// stderr when it fails.
// The child is reaped by wait4 (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(mut cmd: Command, check: &mut Checker, sim_pid: u32, what: &str) -> Cost {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("NO_COLOR", "1")
        .env("BENCH_USER", USER)
        .env("BENCH_PW", PASSWORD)
        .env("EXCTL_PASSWORD", PASSWORD);
    let sim_before = proc_cpu(sim_pid);
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("the client starts");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => check.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading {what}'s stdout: {e}"),
        }
    }
    let (code, usage) = measure::reap(pid);
    let wall = t0.elapsed();
    let sim_cpu = proc_cpu(sim_pid).saturating_sub(sim_before);
    let err = err_reader.join().unwrap_or_default();
    assert!(
        code == 0,
        "{what} failed with {code}: {}",
        String::from_utf8_lossy(&err)
    );
    Cost {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        sim_cpu,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    Exctl,
    Pywinrm,
    Pypsrp,
}

const CLIENTS: [Client; 3] = [Client::Exctl, Client::Pywinrm, Client::Pypsrp];

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Exctl => "exctl",
            Client::Pywinrm => "pywinrm",
            Client::Pypsrp => "pypsrp",
        }
    }
}

#[derive(Clone, Copy)]
enum Workload {
    /// `'x' * bytes`.
    Large { bytes: usize },
    /// `echo burst-I`, I = 0..n.
    Burst { n: usize },
}

impl Workload {
    fn label(self) -> String {
        match self {
            Workload::Large { bytes } if bytes % (1 << 20) == 0 => {
                format!("output {} MiB", bytes >> 20)
            }
            Workload::Large { bytes } => format!("output {bytes} B"),
            Workload::Burst { n } => format!("{n} x echo"),
        }
    }

    fn expected(self) -> Expected {
        match self {
            Workload::Large { bytes } => Expected::Repeat {
                byte: b'x',
                count: bytes,
            },
            Workload::Burst { n } => Expected::Exact(
                (0..n)
                    .flat_map(|i| format!("burst-{i}\r\n").into_bytes())
                    .collect(),
            ),
        }
    }
}

fn exctl_exec(url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exctl"));
    c.args(["exec", "--endpoint", url, "--user", USER]);
    c
}

fn python_script(script: &str, url: &str, n: usize) -> Command {
    let mut c = Command::new(python());
    c.arg("-c").arg(script).arg(url).arg(n.to_string());
    c
}

/// One measurement of one client on one workload.
fn measure(client: Client, work: Workload, url: &str, sim_pid: u32) -> Cost {
    let mut check = Checker::new(work.expected());
    let what = format!("{} ({})", client.name(), work.label());
    let cost = match (client, work) {
        (Client::Exctl, Workload::Large { bytes }) => {
            let mut c = exctl_exec(url);
            c.args(["--", &format!("'x' * {bytes}")]);
            run(c, &mut check, sim_pid, &what)
        }
        (Client::Exctl, Workload::Burst { n }) => {
            let mut total = Cost::default();
            for i in 0..n {
                let mut c = exctl_exec(url);
                c.args(["--raw", "--", "echo", &format!("burst-{i}")]);
                total.add(run(c, &mut check, sim_pid, &what));
            }
            total
        }
        (Client::Pywinrm, Workload::Large { bytes }) => run(
            python_script(PYWINRM_LARGE, url, bytes),
            &mut check,
            sim_pid,
            &what,
        ),
        (Client::Pywinrm, Workload::Burst { n }) => run(
            python_script(PYWINRM_BURST, url, n),
            &mut check,
            sim_pid,
            &what,
        ),
        (Client::Pypsrp, Workload::Large { bytes }) => run(
            python_script(PYPSRP_LARGE, url, bytes),
            &mut check,
            sim_pid,
            &what,
        ),
        (Client::Pypsrp, Workload::Burst { n }) => run(
            python_script(PYPSRP_BURST, url, n),
            &mut check,
            sim_pid,
            &what,
        ),
    };
    if let Some(wrong) = check.verdict() {
        panic!("{what} printed the wrong output: {wrong}");
    }
    cost
}

/// The medians of one client on one workload.
#[derive(Clone, Copy)]
struct Summary {
    wall: f64,
    cpu: f64,
    peak_mib: f64,
    sim_cpu: f64,
}

fn summarize(costs: &[Cost]) -> Summary {
    Summary {
        wall: median(costs.iter().map(|c| c.wall.as_secs_f64()).collect()),
        cpu: median(costs.iter().map(|c| c.cpu.as_secs_f64()).collect()),
        peak_mib: median(costs.iter().map(|c| c.peak_kib as f64 / 1024.0).collect()),
        sim_cpu: median(costs.iter().map(|c| c.sim_cpu.as_secs_f64()).collect()),
    }
}

/// A running `exctl sim`, killed when dropped.
struct Sim {
    child: std::process::Child,
    url: String,
}

impl Sim {
    fn start() -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_exctl"))
            .args(["sim", "--listen", "127.0.0.1:0", "--auth", "ntlm"])
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
        assert!(
            line.starts_with("http://"),
            "unexpected first line: {line:?}"
        );
        Sim {
            child,
            url: line.trim().to_string(),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` lists with --list.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = env_num("EXCTL_BENCH_QUICK", 0) != 0;
    let sizes: Vec<usize> = std::env::var("EXCTL_BENCH_SIZES_MB")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().parse::<usize>().ok())
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| if quick { vec![1, 5] } else { vec![1, 20] });
    let burst = usize::try_from(env_num("EXCTL_BENCH_BURST", if quick { 10 } else { 50 }))
        .unwrap_or(50)
        .max(1);
    let rounds = usize::try_from(env_num("EXCTL_BENCH_ROUNDS", if quick { 1 } else { 3 }))
        .unwrap_or(3)
        .max(1);

    let py = python();
    let probe = Command::new(&py)
        .args(["-c", "import winrm, pypsrp"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "the Python peers are not installed for {}: python3 -m venv .venv && \
             .venv/bin/python -m pip install -r tests/peers/requirements.txt (or set EXCTL_PYTHON)",
            py.display()
        ),
    }

    let sim = Sim::start();
    let sim_pid = sim.child.id();
    let mut workloads: Vec<Workload> = sizes
        .iter()
        .map(|mb| Workload::Large { bytes: mb << 20 })
        .collect();
    workloads.push(Workload::Burst { n: burst });
    println!(
        "exctl transport benchmark: one simulator ({}), NTLM with message encryption over HTTP, {rounds} round(s), medians",
        sim.url
    );
    println!(
        "clients: exctl exec (release), pywinrm and pypsrp ({}); burst: exctl one process per command, each peer one process",
        py.display()
    );

    // Warm the page cache and the simulator (its first PowerShell, the interpreters).
    measure(Client::Exctl, Workload::Burst { n: 1 }, &sim.url, sim_pid);
    measure(Client::Pywinrm, Workload::Burst { n: 1 }, &sim.url, sim_pid);
    measure(
        Client::Pypsrp,
        Workload::Large { bytes: 16 },
        &sim.url,
        sim_pid,
    );

    let mut costs: Vec<Vec<Vec<Cost>>> = vec![vec![Vec::new(); CLIENTS.len()]; workloads.len()];
    for round in 0..rounds {
        for (w, work) in workloads.iter().enumerate() {
            // Rotate the order each round: no client always goes first.
            for k in 0..CLIENTS.len() {
                let c = (k + round) % CLIENTS.len();
                let cost = measure(CLIENTS[c], *work, &sim.url, sim_pid);
                eprintln!(
                    "  round {} {:<14} {:<8} wall {:7.3} s  cpu {:7.3} s  peak {:6.1} MiB  sim cpu {:6.3} s",
                    round + 1,
                    work.label(),
                    CLIENTS[c].name(),
                    cost.wall.as_secs_f64(),
                    cost.cpu.as_secs_f64(),
                    cost.peak_kib as f64 / 1024.0,
                    cost.sim_cpu.as_secs_f64()
                );
                costs[w][c].push(cost);
            }
        }
    }

    println!();
    println!(
        "{:<14} {:<8} {:>9} {:>9} {:>10} {:>11} | {:>21} {:>21}",
        "workload",
        "client",
        "wall s",
        "cpu s",
        "peak MiB",
        "sim cpu s",
        "exctl/pywinrm w/c/m",
        "exctl/pypsrp w/c/m",
    );
    let mut large_speedups = Vec::new();
    let mut burst_ratio = None;
    for (w, work) in workloads.iter().enumerate() {
        let s: Vec<Summary> = costs[w].iter().map(|c| summarize(c)).collect();
        let ratio = |o: &Summary| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                s[0].wall / o.wall,
                s[0].cpu / o.cpu,
                s[0].peak_mib / o.peak_mib
            )
        };
        for (c, client) in CLIENTS.iter().enumerate() {
            let (r1, r2) = if c == 0 {
                (ratio(&s[1]), ratio(&s[2]))
            } else {
                (String::new(), String::new())
            };
            println!(
                "{:<14} {:<8} {:>9.3} {:>9.3} {:>10.1} {:>11.3} | {:>21} {:>21}",
                if c == 0 { work.label() } else { String::new() },
                client.name(),
                s[c].wall,
                s[c].cpu,
                s[c].peak_mib,
                s[c].sim_cpu,
                r1,
                r2
            );
        }
        match work {
            Workload::Large { .. } => large_speedups.push((work.label(), s[1].wall / s[0].wall)),
            Workload::Burst { .. } => {
                burst_ratio = Some((s[0].wall / s[1].wall, s[0].wall / s[2].wall))
            }
        }
    }
    println!();
    println!(
        "ratios are exctl / peer (below 1: exctl is faster or smaller): wall / cpu / peak memory"
    );
    for (label, speedup) in &large_speedups {
        println!(
            "{label}: exctl {speedup:.1}x faster than pywinrm (target: 3x) {}",
            if *speedup >= 3.0 { "ok" } else { "MISSED" }
        );
    }
    if let Some((a, b)) = burst_ratio {
        println!(
            "{burst} small commands: exctl takes {a:.2}x pywinrm's and {b:.2}x pypsrp's wall time (target: 1 or less) {}",
            if a <= 1.0 && b <= 1.0 { "ok" } else { "MISSED" }
        );
    }
    // The simulator answers while exctl waits: its CPU time is part of exctl's wall time.
    let shares: Vec<String> = workloads
        .iter()
        .enumerate()
        .map(|(w, work)| {
            let s = summarize(&costs[w][0]);
            format!("{} {:.0}%", work.label(), 100.0 * s.sim_cpu / s.wall)
        })
        .collect();
    println!(
        "the simulator's CPU time as a share of exctl's wall time: {}",
        shares.join(", ")
    );
    // (bytes, the clients' medians) of each large-output workload.
    let large: Vec<(usize, Vec<Summary>)> = workloads
        .iter()
        .enumerate()
        .filter_map(|(w, work)| match work {
            Workload::Large { bytes } => {
                Some((*bytes, costs[w].iter().map(|c| summarize(c)).collect()))
            }
            Workload::Burst { .. } => None,
        })
        .collect();
    if let (Some((small, s0)), Some((big, s1))) = (large.first(), large.last())
        && large.len() > 1
    {
        // The difference between two sizes leaves out what does not depend on the
        // output: process start, a Python interpreter's imports, the handshake.
        let extra = |c: usize| s1[c].wall - s0[c].wall;
        println!(
            "the {} MiB between {} and {} MiB alone (no start-up): exctl {:.3} s, pywinrm {:.3} s ({:.1}x), pypsrp {:.3} s ({:.1}x)",
            (big - small) >> 20,
            small >> 20,
            big >> 20,
            extra(0),
            extra(1),
            extra(1) / extra(0),
            extra(2),
            extra(2) / extra(0)
        );
        let (first, last) = ((small, s0[0].peak_mib), (big, s1[0].peak_mib));
        println!(
            "exctl peak memory: {:.1} MiB at {} MiB of output, {:.1} MiB at {} MiB ({:.2}x for {}x the output; target: flat)",
            first.1,
            first.0 >> 20,
            last.1,
            last.0 >> 20,
            last.1 / first.1,
            last.0 / first.0
        );
    }
}
