//! The stable fuzz runner: every fuzz target of `fuzz/` (the same bodies, included from
//! `fuzz/src/targets.rs`) over its seeds and recorded regressions, then over inputs
//! mutated from them for a bounded time. No input may panic, take longer than
//! [`SLOW_INPUT`], or allocate more than [`alloc_budget`] for its size.
//!
//! In the normal suite each target gets a fraction of a second. For a real run on a
//! stable toolchain (no coverage guidance; cargo-fuzz on nightly has it):
//!
//! ```text
//! EXCTL_FUZZ_SECS=120 cargo test --release --test fuzz_corpus -- --nocapture
//! EXCTL_FUZZ_TARGET=winrm_framing EXCTL_FUZZ_SEED=7 EXCTL_FUZZ_SECS=60 cargo test --release --test fuzz_corpus -- --nocapture
//! ```
//!
//! A failing input is written to `target/fuzz-findings/<target>-<hash>`; copy it to
//! `fuzz/regressions/<target>/` with the fix, so that it is replayed from then on.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use targets::{TARGETS, Target};

/// Counts live and peak heap bytes, so that an input that makes a parser allocate far more
/// than its own size is caught. The runner is the only test of this binary, so nothing
/// else allocates meanwhile (apart from the test harness, which stays idle).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// A global allocator is unsafe to implement by definition; this one only forwards to the
// system allocator and counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// An input that takes longer than this (in a debug build) is reported as a hang.
const SLOW_INPUT: Duration = Duration::from_secs(3);
/// The longest input the mutator makes.
const MAX_LEN: usize = 64 * 1024;

/// What one input may allocate at its peak: a generous multiple of its size (trees,
/// decoded copies, error texts quoting it) plus a fixed allowance.
fn alloc_budget(len: usize) -> usize {
    32 * 1024 * 1024 + len.saturating_mul(256)
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'<', b'>', b'"', b'&', b'\n', b'\r', b'0',
];

/// One to eight stacked mutations of `input`, with pieces of `corpus` and `dictionary`.
fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dictionary: &[&str]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(out.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(i..i, bytes);
            }
            3 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(64));
                out.drain(i..i + n);
            }
            4 if !out.is_empty() => {
                // Duplicate a range: repeats, deep nesting, long runs.
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(256));
                let piece = out[i..i + n].to_vec();
                let at = rng.below(out.len() + 1);
                for _ in 0..=rng.below(16) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - i);
                    let at = rng.below(out.len() + 1);
                    out.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            6 if !dictionary.is_empty() => {
                let token = dictionary[rng.below(dictionary.len())].as_bytes();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, token.iter().copied());
            }
            7 if !out.is_empty() => {
                out.truncate(rng.below(out.len()));
            }
            8 if out.len() >= 4 => {
                // Overwrite a little-endian length field with something extreme.
                let i = rng.below(out.len() - 3);
                let v: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff, rng.next() as u32][rng.below(5)];
                out[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    out.truncate(MAX_LEN);
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs one input; `Err` says what went wrong (and the input is saved).
fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let took = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let problem = match result {
        Err(panic) => Some(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
        Ok(()) if took > SLOW_INPUT => Some(format!("took {took:?} (hang?)")),
        Ok(()) if peak > alloc_budget(input.len()) => Some(format!(
            "allocated {peak} bytes for a {}-byte input",
            input.len()
        )),
        Ok(()) => None,
    };
    match problem {
        None => Ok(()),
        Some(p) => {
            let dir = repo().join("target/fuzz-findings");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{}-{:016x}", target.name, fnv(input)));
            let _ = std::fs::write(&file, input);
            Err(format!(
                "{}: {p}; input saved as {}",
                target.name,
                file.display()
            ))
        }
    }
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations() {
    let secs: f64 = std::env::var("EXCTL_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.25);
    let only = std::env::var("EXCTL_FUZZ_TARGET").ok();
    let seed: u64 = std::env::var("EXCTL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_f00d_d00d);
    // Panics are caught and reported with their input; the default hook would also print
    // each one, which drowns the report.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut ran = 0;
    for target in TARGETS {
        if only.as_deref().is_some_and(|o| o != target.name) {
            continue;
        }
        ran += 1;
        let mut corpus = files_in(&repo().join("fuzz/seeds").join(target.name));
        corpus.extend(files_in(&repo().join("fuzz/regressions").join(target.name)));
        corpus.push(Vec::new());
        assert!(
            corpus.len() > 1 || target.name.starts_with("ntlm_unseal"),
            "{} has no seeds in fuzz/seeds/{}",
            target.name,
            target.name
        );
        let mut execs = 0u64;
        for input in &corpus {
            execs += 1;
            if let Err(e) = run_one(target, input) {
                failures.push(e);
            }
        }
        let mut rng = Rng(seed ^ fnv(target.name.as_bytes()) | 1);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < deadline && failures.len() < 20 {
            let base = &corpus[rng.below(corpus.len())];
            let input = mutate(&mut rng, base, &corpus, target.dictionary);
            execs += 1;
            if let Err(e) = run_one(target, &input) {
                failures.push(e);
            }
        }
        println!("{}: {execs} execs in {secs} s (seed {seed})", target.name);
    }
    std::panic::set_hook(hook);
    assert!(ran > 0, "no target called {only:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes the seeds that are binary or need the crates to build (NTLM messages, sealed
/// bodies) into `fuzz/seeds/`; the text seeds come from the recorded fixtures. Run once
/// after a change to the fixed keys of the targets:
/// `cargo test --test fuzz_corpus -- --ignored write_binary_seeds`.
#[test]
#[ignore]
fn write_binary_seeds() {
    use exctl_ntlm::{Initiator, InitiatorConfig, Role, Session};
    let put = |target: &str, data: &[u8]| {
        let dir = repo().join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{:016x}", fnv(data))), data).unwrap();
    };
    let mut initiator = Initiator::new(InitiatorConfig {
        domain: "CONTOSO".into(),
        user: "Administrator".into(),
        password: "x".into(),
        workstation: None,
        channel_bindings: None,
        target_spn: None,
    });
    put("ntlm_negotiate", &initiator.negotiate_message());
    put("ntlm_challenge", &exctl_ntlm::fuzzing::challenge_seed());
    put(
        "ntlm_authenticate",
        &exctl_ntlm::fuzzing::authenticate_seed(),
    );
    for role in [Role::Initiator, Role::Acceptor] {
        let (sig, sealed) =
            Session::from_exported_session_key(role, &[0x44; 16]).seal(b"<s:Envelope/>");
        put("ntlm_unseal", &[&sig[..], &sealed].concat());
    }
    // Sealed responses the client can unseal, and sealed requests the simulator can.
    let responses = files_in(&repo().join("fuzz/seeds/winrm_response"));
    for r in responses.iter().take(8) {
        let mut server =
            Session::from_exported_session_key(Role::Acceptor, &exctl_winrm::fuzzing::SESSION_KEY);
        let (sig, sealed) = server.seal(r);
        put(
            "winrm_framing",
            &exctl_winrm::framing::encode(&sig, &sealed),
        );
    }
    let requests = files_in(&repo().join("fuzz/seeds/sim_soap"));
    for r in requests.iter().take(8) {
        let mut client = Session::from_exported_session_key(Role::Initiator, &[0x55; 16]);
        let (sig, sealed) = client.seal(r);
        put(
            "sim_framing",
            &exctl_sim::framing::build(r.len(), &sig, &sealed),
        );
    }
    // Scripts the simulator runs: the runner's bootstrap and its stdin encoding.
    let script = "$ErrorActionPreference = 'Stop'\r\nSet-ImapSettings -LoginType PlainTextLogin -MaxCommandSize 10240\r\nforeach ($c in @(Get-ReceiveConnector)) { if ($c.Name -like 'Default*') { \"$($c.Identity)\" } }\r\n";
    let inv = exctl_pwsh::runner::invocation(script);
    put("pwsh_parse", script.as_bytes());
    put("pwsh_parse", &inv.stdin);
    put("pwsh_parse", inv.command_line().as_bytes());
    for arg in &inv.arguments {
        put("pwsh_parse", arg.as_bytes());
    }
}
