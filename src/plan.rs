//! `exctl validate` and `exctl plan`: manifests to diagnostics, and to a plan.
//!
//! Exit codes (Terraform's convention): 0 nothing to do (or valid), 1 an error
//! (invalid manifests, a host that could not be planned), 2 changes present (only with
//! `--detailed-exitcode`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use exctl_engine::desired::{self, DesiredState};
use exctl_engine::planfile::PlanFile;
use exctl_engine::render::{self, TextOptions};
use exctl_engine::winrm::WinRmRunner;
use exctl_manifest::{CredentialRef, Diagnostics, SourceMap};
use exctl_secret::Secret;

use crate::cli::{PlanArgs, PlanFormat, ValidateArgs};
use crate::credentials::KEYRING_SERVICE;

fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Loads and validates; prints diagnostics to stderr. `None` when there are errors.
pub(crate) fn load(
    paths: &[std::path::PathBuf],
    strict: bool,
    short: bool,
) -> Option<(SourceMap, DesiredState)> {
    let (sources, docs, mut diags) = exctl_manifest::load_paths(paths);
    let state = desired::build(&sources, &docs, &mut diags);
    if strict {
        diags.promote_warnings();
    }
    report(&sources, &mut diags, short);
    if diags.has_errors() {
        None
    } else {
        Some((sources, state))
    }
}

fn report(sources: &SourceMap, diags: &mut Diagnostics, short: bool) {
    if diags.is_empty() {
        return;
    }
    diags.sort();
    let text = if short {
        exctl_manifest::render_short(sources, diags)
    } else {
        exctl_manifest::render(sources, diags, color_stderr())
    };
    eprint!("{text}");
    let (e, w) = (diags.error_count(), diags.warning_count());
    eprintln!(
        "{e} error{}, {w} warning{}",
        if e == 1 { "" } else { "s" },
        if w == 1 { "" } else { "s" }
    );
}

pub fn validate(a: ValidateArgs) -> ExitCode {
    match load(&a.paths, a.strict, a.short) {
        Some((_, state)) => {
            let n: usize = state.resources.values().map(Vec::len).sum();
            eprintln!(
                "valid: {} host{}, {n} resource{}",
                state.hosts.len(),
                if state.hosts.len() == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}

/// Resolves the password of every host that has resources.
pub(crate) fn passwords(state: &DesiredState) -> Result<HashMap<String, Secret>, String> {
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for (key, host) in &state.hosts {
        if state.resources.get(key).is_none_or(Vec::is_empty) {
            continue;
        }
        let secret = match &host.credential {
            Some(CredentialRef::Env(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(format!(
                    "{}: the environment variable {var} (credential env:{var}) is not set",
                    host.name
                )),
            },
            Some(CredentialRef::Keyring(name)) => keyring::Entry::new(KEYRING_SERVICE, name)
                .and_then(|e| e.get_password())
                .map(Secret::new)
                .map_err(|e| {
                    format!(
                        "{}: cannot read keyring entry '{name}' (service '{KEYRING_SERVICE}'): {e}",
                        host.name
                    )
                }),
            Some(_) => Err(format!("{}: unsupported credential reference", host.name)),
            None => Err(format!(
                "{}: no credential; add 'credential: keyring:NAME' or 'credential: env:VAR' to the host in the inventory",
                host.name
            )),
        };
        match secret {
            Ok(s) => {
                out.insert(key.clone(), s);
            }
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

pub async fn plan(a: PlanArgs) -> ExitCode {
    let Some((sources, state)) = load(&a.paths, a.strict, false) else {
        return ExitCode::from(1);
    };
    let passwords = match passwords(&state) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut runner = WinRmRunner::new(passwords);
    runner.insecure_skip_verify = a.insecure_skip_verify;
    if a.insecure_skip_verify {
        eprintln!("warning: TLS certificate verification is OFF for every host");
    }
    let plan = exctl_engine::observe::plan(&state, &runner, &sources, a.parallel).await;
    let out = match a.format {
        PlanFormat::Text => render::text(
            &plan,
            TextOptions {
                color: color_stdout(),
            },
        ),
        PlanFormat::Markdown => render::markdown(&plan),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&render::json(&plan)).unwrap_or_default();
            s.push('\n');
            s
        }
    };
    print!("{out}");
    if let Some(file) = &a.out {
        let inputs: Vec<String> = a.paths.iter().map(|p| p.display().to_string()).collect();
        match PlanFile::new(&plan, &state, &sources, &inputs) {
            Ok(pf) => match write_atomically(file, &pf.to_json()) {
                Ok(()) => eprintln!(
                    "Saved the plan to {f}. Apply it with: exctl apply {f}",
                    f = file.display()
                ),
                Err(e) => {
                    eprintln!("error: cannot write the plan to {}: {e}", file.display());
                    return ExitCode::from(1);
                }
            },
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if plan.has_errors() {
        ExitCode::from(1)
    } else if a.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes `text` to `path` through a temporary file in the same directory, so that a
/// reader never sees half a plan.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
