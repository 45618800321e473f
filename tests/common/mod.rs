//! Shared pieces of the end-to-end tests: the real `exctl` binary, and a simulator it
//! serves (`exctl sim`) on a free loopback port, stopped when the test ends.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const SIM_USER: &str = "CONTOSO\\Administrator";
pub const SIM_PASSWORD: &str = "Sim-Pa55word!";

pub fn exctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_exctl"));
    c.env_remove("EXCTL_PASSWORD").env("NO_COLOR", "1");
    c
}

/// A running `exctl sim`.
pub struct Sim {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = exctl()
            .args(["sim", "--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(dir.path())
            .env("EXCTL_SIM_PASSWORD", SIM_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("exctl sim starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the simulator prints its URL");
        assert!(line.starts_with("http"), "unexpected first line: {line:?}");
        Sim {
            child,
            url: line.trim().to_string(),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `exctl exec` against `sim` with the password in the environment.
pub fn exec(sim: &Sim, password: &str, args: &[&str]) -> Output {
    exctl()
        .args(["exec", "--endpoint", &sim.url, "--user", SIM_USER])
        .args(args)
        .env("EXCTL_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .expect("exctl exec runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn wait_for(path: &Path) {
    for _ in 0..100 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not appear", path.display());
}
