//! `exctl validate` and `exctl plan`: manifests to diagnostics, and to a plan of every
//! selected site (`--site`, `--selector`), `--parallel` sites at a time, with progress
//! on stderr and a summary table at the end.
//!
//! Exit codes (Terraform's convention): 0 nothing to do (or valid), 1 an error
//! (invalid manifests, a site that could not be planned, a file that could not be
//! written), 2 changes present (only with `--detailed-exitcode`).

use crate::exit::ExitStatus;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use exctl_engine::desired::{self, DesiredState};
use exctl_engine::observe::Runner as _;
use exctl_engine::planfile::PlanFile;
use exctl_engine::render::{self, TextOptions};
use exctl_engine::report::{self, MarkdownOptions};
use exctl_engine::rollout::{self, PlanOptions, SiteEvent};
use exctl_engine::winrm::WinRmRunner;
use exctl_manifest::{Diagnostics, SourceMap};

use crate::cli::{PlanArgs, PlanFormat, ProgressArg, ValidateArgs};
use crate::credentials;
use crate::progress::Progress;

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
                "valid: {} site{}, {} host{}, {n} resource{}",
                state.sites.len(),
                if state.sites.len() == 1 { "" } else { "s" },
                state.hosts.len(),
                if state.hosts.len() == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" }
            );
            ExitStatus::Success.into()
        }
        None => ExitStatus::Failure.into(),
    }
}

/// Runs `work` with a progress display for `total` sites, redrawn while it runs on a
/// terminal, and cleared before it returns.
pub(crate) async fn with_progress<T>(
    arg: ProgressArg,
    total: usize,
    work: impl AsyncFnOnce(&Arc<Progress>) -> T,
) -> T {
    // The bars tick on their own (indicatif's steady tick).
    let progress = Arc::new(Progress::new(arg, total));
    let out = work(&progress).await;
    progress.clear();
    out
}

pub async fn plan(a: PlanArgs) -> ExitCode {
    let Some((sources, state)) = load(&a.paths, a.strict, false) else {
        return ExitStatus::Failure.into();
    };
    let sites = match rollout::select(&state, &a.select.site, a.select.selector.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure.into();
        }
    };
    // A host without a usable credential fails its own site; the others are planned.
    let resolved = match credentials::resolve_each(&state, &sites) {
        Ok(r) => r,
        // Only an unknown EXCTL_KEYRING: a usage error, nothing was done.
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Usage.into();
        }
    };
    let mut winrm = WinRmRunner::new(resolved.passwords);
    winrm.insecure_skip_verify = a.insecure_skip_verify;
    let runner = credentials::WithCredentials {
        inner: winrm,
        missing: resolved.missing,
    };
    if a.insecure_skip_verify {
        eprintln!("warning: TLS certificate verification is OFF for every host");
    }
    let opts = PlanOptions {
        parallel: a.parallel,
        timeout: Some(a.site_timeout),
    };
    let repo = with_progress(a.progress, sites.len(), async |p: &Arc<Progress>| {
        let sink = |e: &SiteEvent<'_>| p.event(e);
        rollout::plan_sites(&state, &sites, &runner, &sources, opts, &sink).await
    })
    .await;
    runner.close().await;
    let md_opts = MarkdownOptions {
        max_bytes: a.markdown_max_bytes,
        full_plan: a.full_plan_url.clone(),
    };
    let out = match a.format {
        // One site reads as it always did: no site headings.
        PlanFormat::Text if repo.sites.len() == 1 => render::text(
            &repo.plan(),
            TextOptions {
                color: color_stdout(),
                explain: a.explain,
            },
        ),
        PlanFormat::Text => report::text(
            &repo,
            TextOptions {
                color: color_stdout(),
                explain: a.explain,
            },
        ),
        PlanFormat::Markdown => report::markdown(&repo, &md_opts),
        PlanFormat::Json => {
            // Written as it is serialized: no second copy of a large plan as one string.
            let mut o = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut o, &report::json(&repo));
            let _ = writeln!(o);
            String::new()
        }
    };
    print!("{out}");
    let mut code = if repo.has_errors() {
        ExitStatus::Failure.into()
    } else if a.detailed_exitcode && repo.has_changes() {
        ExitStatus::Attention.into()
    } else {
        ExitStatus::Success.into()
    };
    if let Some(file) = &a.markdown_out {
        match write_atomically(file, &report::markdown(&repo, &md_opts)) {
            Ok(()) => {}
            Err(e) => {
                eprintln!(
                    "error: cannot write the markdown to {}: {e}",
                    file.display()
                );
                code = ExitStatus::Failure.into();
            }
        }
    }
    if let Some(file) = &a.out {
        let inputs: Vec<String> = a.paths.iter().map(|p| p.display().to_string()).collect();
        match PlanFile::new(&repo.plan(), &state, &sources, &inputs) {
            Ok(mut pf) => {
                pf.sites = Some(repo.sites.iter().map(|s| s.site.clone()).collect());
                pf.root = std::env::current_dir()
                    .ok()
                    .map(|d| d.display().to_string());
                match write_atomically(file, &pf.to_json()) {
                    Ok(()) => eprintln!(
                        "Saved the plan to {f}. Apply it with: exctl apply {f}",
                        f = file.display()
                    ),
                    Err(e) => {
                        eprintln!("error: cannot write the plan to {}: {e}", file.display());
                        return ExitStatus::Failure.into();
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    // The table is progress (durations) for a person: `--progress none` is results only.
    if (repo.sites.len() > 1 || repo.has_errors()) && a.progress != ProgressArg::None {
        eprint!("\n{}", report::table(&report::plan_rows(&repo)));
    }
    code
}

/// Writes `text` to `path` through a temporary file in the same directory, so that a
/// reader never sees half a plan.
pub(crate) fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
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
