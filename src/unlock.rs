//! `exctl unlock HOST --force`: removes the apply lock a killed run left on a host (see
//! `exctl_engine::lock`), and records it in the journal.

use std::process::ExitCode;

use exctl_engine::observe::Runner;
use exctl_engine::script::ScriptBuilder;
use exctl_engine::winrm::WinRmRunner;
use exctl_exchange::record::Observations;
use serde_json::json;

use crate::cli::UnlockArgs;
use crate::credentials;
use crate::exit::ExitStatus;
use crate::journal::{self, Journal};

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitStatus::Failure.into()
}

pub async fn run(a: UnlockArgs) -> ExitCode {
    if !a.force {
        eprintln!(
            "error: unlock removes the lock of another apply run; make sure that run is gone (its journal ends, its process no longer runs), then pass --force"
        );
        return ExitStatus::Usage.into();
    }
    let Some((_, state)) = crate::plan::load(&a.paths, false, false) else {
        return ExitStatus::Failure.into();
    };
    let target = match crate::repo::find_target(&state, &a.target) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let hosts = crate::repo::target_hosts(&state, &target);
    let journal =
        match journal::directory(a.journal_dir.as_deref()).and_then(|d| Journal::create(&d)) {
            Ok(j) => j,
            Err(e) => return fail(&e),
        };
    journal.record(
        "started",
        json!({ "who": journal::who(), "command": "unlock", "target": a.target }),
    );
    let passwords = match credentials::resolve(&state, &[target.site]) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let runner = WinRmRunner::new(passwords);
    let mut script = ScriptBuilder::host_only();
    script.raw(&exctl_engine::lock::unlock_script());
    let script = script.finish();
    let mut failed = false;
    for h in hosts {
        match runner.run(h, &script).await {
            Ok(out) if out.exit_code == 0 => {
                let removed = Observations::parse(&out.stdout).ok().and_then(|o| {
                    match o.get(exctl_engine::lock::OBSERVE_KEY, "Removed") {
                        Some(exctl_exchange::RawValue::Str(s)) => Some(s.clone()),
                        _ => None,
                    }
                });
                match removed
                    .as_deref()
                    .and_then(exctl_engine::lock::HeldLock::parse)
                {
                    Some(l) => {
                        println!("{}: removed the lock ({})", h.name, l.describe());
                        journal.record("unlocked", json!({ "host": h.name, "lock": removed }));
                    }
                    None => println!("{}: not locked", h.name),
                }
            }
            Ok(out) => {
                failed = true;
                eprintln!(
                    "error: {}: the unlock script failed (exit code {}): {}",
                    h.name,
                    out.exit_code,
                    out.stderr.trim()
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    runner.close().await;
    journal.record("exited", json!({ "failed": failed }));
    if failed {
        ExitStatus::Failure.into()
    } else {
        ExitStatus::Success.into()
    }
}
