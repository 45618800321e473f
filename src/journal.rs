//! The local journal of `exctl apply`: one file per run, recording what was done, when,
//! by whom and with what result, for the operator's own records and audits.
//!
//! Where: `--journal-dir DIR`, else `EXCTL_JOURNAL_DIR`, else the platform's place for
//! state: `$XDG_STATE_HOME/exctl/journal` (default `~/.local/state/exctl/journal`) on
//! Linux and other Unix systems, `%LOCALAPPDATA%\exctl\journal` on Windows. The file is
//! `<UTC time>-<process id>.jsonl`, created new (never appended to another run's), with
//! permissions for its owner only on Unix.
//!
//! What: JSON lines, each with `time` (UTC, RFC 3339) and `event`: `started` (who, on
//! which machine, exctl's version, the inputs and options), `planned` (the plan's
//! totals), `confirmed`, `step` (each step's outcome as it completes: site, host,
//! description, status, the server's error text), `interrupted`, and `finished` (the
//! whole result document of `--format json`, and the exit code). Never a secret:
//! passwords never reach apply's results, and values a manifest marks sensitive are
//! masked there, as in every output of apply.
//!
//! A journal that cannot be created refuses the run before anything is changed (an
//! apply without its record is what the journal exists to prevent); a write that fails
//! later is reported once on stderr and the run goes on.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

/// The environment variable that moves the journal.
pub const JOURNAL_DIR_ENV: &str = "EXCTL_JOURNAL_DIR";

/// One run's journal file.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    failed: AtomicBool,
}

/// The journal directory: `over` (`--journal-dir`), the environment, or the platform's
/// default.
pub fn directory(over: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(d) = over {
        return Ok(d.to_path_buf());
    }
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var(JOURNAL_DIR_ENV) {
        return Ok(d);
    }
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else {
        var("XDG_STATE_HOME").or_else(|| var("HOME").map(|h| h.join(".local").join("state")))
    };
    base.map(|b| b.join("exctl").join("journal")).ok_or_else(|| {
        format!(
            "cannot tell where to keep the apply journal (no home directory): pass --journal-dir DIR or set {JOURNAL_DIR_ENV}"
        )
    })
}

impl Journal {
    /// Creates this run's file in `dir` (and `dir` itself).
    pub fn create(dir: &Path) -> Result<Journal, String> {
        let fail = |what: &str, e: std::io::Error| {
            format!(
                "cannot {what} the apply journal in {}: {e}; pass --journal-dir DIR or set {JOURNAL_DIR_ENV} to a writable directory",
                dir.display()
            )
        };
        create_private_dir(dir).map_err(|e| fail("create", e))?;
        let stem = format!("{}-{}", utc_now().replace(':', "-"), std::process::id());
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        // Another run of this process in the same second takes the next free name.
        let mut n = 0u32;
        loop {
            let name = if n == 0 {
                format!("{stem}.jsonl")
            } else {
                format!("{stem}-{n}.jsonl")
            };
            let path = dir.join(name);
            match options.open(&path) {
                Ok(file) => {
                    return Ok(Journal {
                        path,
                        file: Mutex::new(file),
                        failed: AtomicBool::new(false),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(fail("write", e)),
            }
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's name: the file's name without `.jsonl` (a time and a process id).
    pub fn run_id(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Appends one record: `fields` (an object) with `time` and `event` added first.
    pub fn record(&self, event: &str, fields: Value) {
        let mut line = serde_json::Map::new();
        line.insert("time".into(), Value::String(utc_now()));
        line.insert("event".into(), Value::String(event.to_string()));
        if let Value::Object(m) = fields {
            line.extend(m);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
            Err(_) => Ok(()),
        };
        if let Err(e) = written
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            eprintln!(
                "warning: cannot write the apply journal {}: {e}; the run goes on",
                self.path.display()
            );
        }
    }
}

/// `USER@MACHINE` of this run, for the host locks (see `exctl_engine::lock`).
pub fn holder() -> String {
    let w = who();
    let user = w["user"].as_str().unwrap_or("unknown user");
    let machine = w["machine"].as_str().unwrap_or("unknown machine");
    format!("{user}@{machine}")
}

/// The `started` record's who and where.
pub fn who() -> Value {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let user = var("USER")
        .or_else(|| var("USERNAME"))
        .or_else(|| var("LOGNAME"));
    let domain = var("USERDOMAIN");
    let machine = var("COMPUTERNAME").or_else(|| var("HOSTNAME")).or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    });
    json!({
        "user": match (domain, user) {
            (Some(d), Some(u)) => Some(format!("{d}\\{u}")),
            (None, u) => u,
            (Some(_), None) => None,
        },
        "machine": machine,
        "pid": std::process::id(),
        "exctl_version": env!("CARGO_PKG_VERSION"),
        "working_directory": std::env::current_dir().ok(),
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Now, UTC, as `2026-12-04T13:40:12Z`.
pub fn utc_now() -> String {
    exctl_engine::planfile::rfc3339(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_writes_its_own_private_file_of_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a").join("journal");
        let j = Journal::create(&d).unwrap();
        j.record("started", json!({"who": who()}));
        j.record("finished", json!({"exit_code": 0}));
        let text = std::fs::read_to_string(j.path()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "started");
        assert_eq!(lines[1]["exit_code"], 0);
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(j.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // A second run gets another file.
        let k = Journal::create(&d).unwrap();
        assert_ne!(j.path(), k.path());
    }

    #[test]
    fn a_journal_that_cannot_be_created_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let e = Journal::create(&file.join("journal")).err().unwrap();
        assert!(e.contains("--journal-dir"), "{e}");
    }
}
