//! The multi-site benchmark: `exctl plan` over the sample repository scaled to many
//! sites, against simulated hosts with realistic latency, measured from outside the real
//! release binary.
//!
//! ```sh
//! cargo bench --bench multisite
//! EXCTL_BENCH_SITES=50 EXCTL_BENCH_PARALLEL=8 EXCTL_BENCH_LATENCY_MS=20 \
//!   EXCTL_BENCH_STARTUP_MS=2000 cargo bench --bench multisite
//! ```
//!
//! The repository repeats `manifests/`'s four sites (lon: one SP3 host; nyc: one RTM host;
//! ams: two SP2 hosts with a site and a host override; sgp: one SP3 host with a site
//! override) until it has N sites, each host served by an `exctl_sim` server in this
//! process with a delay on every WS-Management request and a slow Exchange snap-in load.
//! It then runs `exctl plan`:
//!
//! 1. for one site alone, to learn one site's time (as exctl reports it);
//! 2. for all N sites with `--parallel P`: the wall time against the ideal,
//!    ceil(N / P) × one site's time, and per host the requests, shells and PowerShell
//!    processes the simulators counted (`/sim/state`);
//! 3. for a quarter of the sites, to compare exctl's peak memory (VmHWM, read from
//!    `/proc` while it runs) with the full run's: it should not grow with the output of
//!    the sites already handled beyond their small plans.
//!
//! Targets: within 1.2× of the ideal; one PowerShell process per host.

#[path = "../tests/it/fleet/mod.rs"]
mod fleet;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use exctl_sim::exchange::Sp;
use fleet::{HostSetup, SimHost, SiteSetup};

const PASSWORD: &str = "Bench-Pa55word!";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One site of the scaled repository, after the sample site it copies.
fn site(k: usize, endpoint: &mut dyn FnMut(&str, Sp) -> String) -> SiteSetup {
    let n = format!("{k:03}");
    let quarter = ("quarter".to_string(), "yes".to_string());
    let mut labels = vec![(
        "template".to_string(),
        ["lon", "nyc", "ams", "sgp"][k % 4].to_string(),
    )];
    let sp1 = vec!["uccx".to_string(), "uccx-sp1".to_string()];
    let host = |name: &str, release: &str, sp: Sp, endpoint: &mut dyn FnMut(&str, Sp) -> String| {
        (
            name.to_string(),
            release.to_string(),
            endpoint(name, sp),
            "env:EXCTL_BENCH_PW".to_string(),
        )
    };
    let mut s = match k % 4 {
        0 => SiteSetup {
            name: format!("lon-{n}"),
            labels: Vec::new(),
            baselines: sp1,
            hosts: vec![host(&format!("EXCH01-{n}"), "2010-sp3", Sp::Sp3, endpoint)],
            override_body: None,
        },
        1 => SiteSetup {
            name: format!("nyc-{n}"),
            labels: Vec::new(),
            baselines: vec!["uccx".into()],
            hosts: vec![host(&format!("EXCH02-{n}"), "2010-rtm", Sp::Rtm, endpoint)],
            override_body: None,
        },
        2 => SiteSetup {
            name: format!("ams-{n}"),
            labels: Vec::new(),
            baselines: sp1,
            hosts: vec![
                host(&format!("AMSEX01-{n}"), "2010-sp2", Sp::Sp2, endpoint),
                host(&format!("AMSEX02-{n}"), "2010-sp2", Sp::Sp2, endpoint),
            ],
            override_body: Some(format!(
                "imap_settings:\n  MaxConnectionsPerUser: 850\n  MaxConnectionFromSingleIP: 850\nregistry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Maximum Allowed Service Sessions Per User\n    value: 850\n---\nhost: AMSEX01-{n}\nreceive_connectors:\n  \"Default AMSEX01-{n}\":\n    MessageRateLimit: unlimited\n"
            )),
        },
        _ => SiteSetup {
            name: format!("sgp-{n}"),
            labels: Vec::new(),
            baselines: sp1,
            hosts: vec![host(&format!("SGPEX01-{n}"), "2010-sp3", Sp::Sp3, endpoint)],
            override_body: Some(
                "imap_settings:\n  Banner: Contoso Singapore IMAP4 service ready\n".into(),
            ),
        },
    };
    labels.push(quarter);
    s.labels = labels;
    s
}

/// What one run of exctl did.
struct Run {
    wall: Duration,
    peak_kib: u64,
    code: Option<i32>,
    stderr: String,
}

/// Runs exctl, sampling its peak resident memory from /proc while it runs.
fn measure(dir: &Path, args: &[&str]) -> Run {
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exctl"))
        .args(args)
        .current_dir(dir)
        .env("EXCTL_BENCH_PW", PASSWORD)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exctl starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for exctl: {e}"),
        }
    };
    Run {
        wall: t0.elapsed(),
        peak_kib: peak,
        code: status.code(),
        stderr: reader.join().unwrap_or_default(),
    }
}

/// `[lon-000] planned in 2.4 s: ...` → 2.4 s.
fn reported_site_time(stderr: &str, site: &str) -> Option<Duration> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("[{site}] planned in ")))?;
    let secs = line
        .split("planned in ")
        .nth(1)?
        .split(" s")
        .next()?
        .parse::<f64>()
        .ok()?;
    Some(Duration::from_secs_f64(secs))
}

fn counters(hosts: &[SimHost]) -> Vec<(u64, u64, u64, u64)> {
    hosts
        .iter()
        .map(|h| {
            let s = h.state();
            let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            (
                n(&s["requests"]),
                n(&s["shells_created"]),
                n(&s["sections"]["exchange"]["powershell_processes"]),
                n(&s["sections"]["exchange"]["exchange_sessions"]),
            )
        })
        .collect()
}

fn spread(v: &mut [u64]) -> String {
    v.sort_unstable();
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(a), Some(_), Some(b)) if a == b => format!("{a} on every host"),
        (Some(a), Some(m), Some(b)) => format!("min {a}, median {m}, max {b}"),
        _ => "-".into(),
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sites = usize::try_from(env_num("EXCTL_BENCH_SITES", 200))
        .unwrap_or(200)
        .max(4);
    let parallel = usize::try_from(env_num("EXCTL_BENCH_PARALLEL", 16))
        .unwrap_or(16)
        .max(1);
    let latency = Duration::from_millis(env_num("EXCTL_BENCH_LATENCY_MS", 20));
    let startup = Duration::from_millis(env_num("EXCTL_BENCH_STARTUP_MS", 2000));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut hosts: Vec<SimHost> = Vec::new();
    let mut setups = Vec::new();
    {
        let mut endpoint = |name: &str, sp: Sp| {
            let mut setup = HostSetup::new(name);
            setup.sp = sp;
            setup.latency = latency;
            setup.snapin_delay = startup;
            let h = rt.block_on(fleet::start(&setup, PASSWORD));
            let url = h.sim.url().to_string();
            hosts.push(h);
            url
        };
        for k in 0..sites {
            let mut s = site(k, &mut endpoint);
            if k >= sites / 4 {
                s.labels.retain(|(key, _)| key != "quarter");
            }
            setups.push(s);
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    fleet::write_repository(&dir.path().join("repo"), &setups);
    let first = setups[0].name.clone();
    println!(
        "exctl multi-site benchmark: {sites} sites ({} hosts), --parallel {parallel}, {} ms per request, {} ms Exchange snap-in load",
        hosts.len(),
        latency.as_millis(),
        startup.as_millis()
    );

    // 1. One site alone.
    let solo = measure(
        dir.path(),
        &[
            "plan",
            "repo",
            "--site",
            &first,
            "--progress",
            "lines",
            "--format",
            "json",
        ],
    );
    // The whole process: its start and the repository's loading are paid once in the
    // full run too. (exctl's own figure, to 0.1 s, is shown beside it.)
    let one = solo.wall;
    let reported = reported_site_time(&solo.stderr, &first).unwrap_or(solo.wall);
    println!(
        "one site alone ({first}): {:.2} s for the whole exctl process ({:.1} s as exctl reports the site)",
        one.as_secs_f64(),
        reported.as_secs_f64()
    );

    // 2. Every site.
    let before = counters(&hosts);
    let parallel_arg = parallel.to_string();
    let full = measure(
        dir.path(),
        &[
            "plan",
            "repo",
            "--parallel",
            &parallel_arg,
            "--progress",
            "lines",
            "--format",
            "json",
        ],
    );
    let after = counters(&hosts);
    assert!(
        matches!(full.code, Some(0) | Some(2)),
        "exctl plan failed: {}",
        full.stderr
    );
    let rounds = sites.div_ceil(parallel);
    let ideal = one * u32::try_from(rounds).unwrap_or(u32::MAX);
    println!(
        "ideal: ceil({sites} / {parallel}) = {rounds} x {:.2} s = {:.1} s",
        one.as_secs_f64(),
        ideal.as_secs_f64()
    );
    println!(
        "wall time, {sites} sites: {:.1} s = {:.2} x the ideal (target: 1.2 x or less)",
        full.wall.as_secs_f64(),
        full.wall.as_secs_f64() / ideal.as_secs_f64()
    );
    let delta: Vec<(u64, u64, u64, u64)> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b.0, a.1 - b.1, a.2 - b.2, a.3 - b.3))
        .collect();
    println!(
        "per host: requests {}; shells {}; PowerShell processes {}; Exchange snap-in loads {}",
        spread(&mut delta.iter().map(|d| d.0).collect::<Vec<_>>()),
        spread(&mut delta.iter().map(|d| d.1).collect::<Vec<_>>()),
        spread(&mut delta.iter().map(|d| d.2).collect::<Vec<_>>()),
        spread(&mut delta.iter().map(|d| d.3).collect::<Vec<_>>()),
    );

    // 3. Peak memory at a quarter of the sites and at all of them.
    let quarter = measure(
        dir.path(),
        &[
            "plan",
            "repo",
            "--parallel",
            &parallel_arg,
            "--selector",
            "quarter",
            "--progress",
            "none",
            "--format",
            "json",
        ],
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "peak memory of exctl (VmHWM): {} sites {:.1} MiB, {sites} sites {:.1} MiB ({:.0} KiB more per site: its plan, kept for the output at the end)",
        sites / 4,
        mib(quarter.peak_kib),
        mib(full.peak_kib),
        full.peak_kib.saturating_sub(quarter.peak_kib) as f64 / (sites - sites / 4) as f64
    );
    // What that is made of: the manifests and the desired state alone, and the plan
    // without the JSON document built for output.
    let validate = measure(dir.path(), &["validate", "repo"]);
    let text_full = measure(
        dir.path(),
        &[
            "plan",
            "repo",
            "--parallel",
            &parallel_arg,
            "--progress",
            "none",
            "--format",
            "text",
        ],
    );
    println!(
        "  loading the {sites}-site repository alone (exctl validate): {:.1} MiB",
        mib(validate.peak_kib)
    );
    println!(
        "  plan of {sites} sites as text (no JSON document built): {:.1} MiB",
        mib(text_full.peak_kib)
    );
    rt.block_on(async {
        for h in hosts {
            h.sim.shutdown().await;
        }
    });
}
