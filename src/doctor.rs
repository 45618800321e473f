//! `exctl doctor SITE|HOST`: read-only checks of the hosts of a site (or one host) from
//! where exctl runs, for when agents cannot get their mail: a table per host, the
//! findings with the manifest lines that fix them (`--format json` for machines).
//!
//! Exit codes: 0 healthy, 2 findings on some host, 1 exctl could not run (manifests,
//! selection, credentials).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use exctl_engine::doctor::{self, Login, Options, Report};
use exctl_engine::observe::Runner as _;
use exctl_engine::winrm::WinRmRunner;
use exctl_manifest::CredentialRef;
use exctl_secret::Secret;

use crate::cli::{DoctorArgs, DoctorFormat};
use crate::credentials;

use crate::exit::ExitStatus;

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitStatus::Failure.into()
}

/// Reads the IMAP login's password from its reference; never shows it.
fn imap_password(account: &str, reference: &str) -> Result<Secret, String> {
    let r = CredentialRef::parse(reference).map_err(|e| format!("--imap-credential: {e}"))?;
    match r {
        CredentialRef::Env(var) => match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(format!(
                "the password of {account} for --imap-login: the environment variable {var} is not set\nhint: set it, or pass --imap-credential keyring:NAME (stored with exctl login --entry NAME)"
            )),
        },
        CredentialRef::Keyring(name) => credentials::keyring_get(&name).map_err(|e| {
            format!("the password of {account} for --imap-login (keyring:{name}): {e}")
        }),
        CredentialRef::Prompt => {
            use std::io::IsTerminal;
            if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
                return Err(format!(
                    "--imap-credential prompt: there is no terminal to ask for the password of {account} on"
                ));
            }
            rpassword::prompt_password(format!("IMAP password for {account}: "))
                .map(Secret::new)
                .map_err(|e| format!("cannot read the password from the terminal: {e}"))
        }
        other => Err(format!("--imap-credential: unsupported reference {other}")),
    }
}

pub async fn run(a: DoctorArgs) -> ExitCode {
    let Some((sources, state)) = crate::plan::load(&a.paths, false, false) else {
        return ExitStatus::Failure.into();
    };
    let target = match crate::repo::find_target(&state, &a.target) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let hosts = crate::repo::target_hosts(&state, &target);
    if hosts.is_empty() {
        return fail(&format!("site {} has no hosts", target.site.name));
    }
    // Passwords of the hosts that have something to plan; another host's run reports
    // the missing password as its own failure.
    let passwords = match credentials::resolve(&state, &[target.site]) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let login = match &a.imap_login {
        Some(account) => match imap_password(account, &a.imap_credential) {
            Ok(password) => Some(Login {
                account: account.clone(),
                password,
            }),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    let mut runner = WinRmRunner::new(passwords);
    runner.insecure_skip_verify = a.insecure_skip_verify;
    if a.insecure_skip_verify {
        eprintln!("warning: TLS certificate verification is OFF for every host");
    }
    let opts = Options {
        account: a.account.clone(),
        since: a.since,
        imap_ports: (!a.imap_port.is_empty()).then(|| a.imap_port.clone()),
        imaps_ports: (!a.imaps_port.is_empty())
            .then(|| a.imaps_port.iter().copied().filter(|p| *p != 0).collect()),
        login,
        timeout: Duration::from_secs(a.timeout.max(1)),
        sources: Some(sources.clone()),
    };
    let mut reports = Vec::new();
    for h in hosts {
        eprintln!("checking {} ...", h.name);
        reports.push(doctor::diagnose_host(h, &runner, &opts).await);
    }
    runner.close().await;
    let report = Report::new(reports);
    let mut out = std::io::stdout().lock();
    match a.format {
        DoctorFormat::Text => {
            let _ = write!(out, "{}", doctor::text(&report));
        }
        DoctorFormat::Json => {
            let _ = serde_json::to_writer_pretty(&mut out, &report);
            let _ = writeln!(out);
        }
    }
    if report.healthy {
        ExitStatus::Success.into()
    } else {
        ExitStatus::Attention.into()
    }
}
