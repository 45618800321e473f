//! Commands about the manifest repository itself: `exctl show` (a site's effective state
//! with where each value comes from), `exctl sites` (which sites a selection picks), and
//! `exctl login`/`logout` (the keyring entries a site's hosts refer to).
//!
//! Exit codes: 0 done, 1 anything refused or failed (unknown site, invalid manifests,
//! keyring not available, no terminal to ask on).

use crate::exit::ExitStatus;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use exctl_engine::rollout;
use exctl_engine::show;
use exctl_manifest::CredentialRef;
use exctl_secret::Secret;

use crate::cli::{LoginArgs, ShowArgs, ShowFormat, SitesArgs};
use crate::credentials::{self, KEYRING_SERVICE, KEYRING_UNAVAILABLE_HINT, KeyringError};

/// Writes to stdout; a closed pipe (`exctl show lon | head`) is not an error.
fn emit(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitStatus::Failure.into()
}

/// The site or host `name` of the inventory, or why not (with a did-you-mean hint).
/// The hosts a target stands for: the host, or every host of the site.
pub(crate) fn target_hosts<'a>(
    state: &'a exctl_engine::DesiredState,
    target: &show::Target<'a>,
) -> Vec<&'a exctl_engine::HostSpec> {
    match target.host {
        Some(h) => vec![h],
        None => target
            .site
            .hosts
            .iter()
            .filter_map(|k| state.hosts.get(k))
            .collect(),
    }
}

pub(crate) fn find_target<'a>(
    state: &'a exctl_engine::DesiredState,
    name: &str,
) -> Result<show::Target<'a>, String> {
    show::find(state, name).ok_or_else(|| {
        let mut names: Vec<&str> = state.sites.iter().map(|s| s.name.as_str()).collect();
        names.extend(state.hosts.values().map(|h| h.name.as_str()));
        let hint = exctl_manifest::did_you_mean_hint(name, &names)
            .map(|h| format!("\nhint: {h}"))
            .unwrap_or_else(|| format!("\nhint: the sites and hosts are {}", names.join(", ")));
        format!("'{name}' is neither a site nor a host of the inventory{hint}")
    })
}

pub fn show(a: ShowArgs) -> ExitCode {
    let Some((sources, state)) = crate::plan::load(&a.paths, false, false) else {
        return ExitStatus::Failure.into();
    };
    let target = match find_target(&state, &a.target) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    match a.format {
        ShowFormat::Text => emit(&show::text(&state, &sources, &target)),
        ShowFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&show::json(&state, &sources, &target))
                .unwrap_or_default()
        )),
    }
    ExitStatus::Success.into()
}

pub fn sites(a: SitesArgs) -> ExitCode {
    let Some((_, state)) = crate::plan::load(&a.paths, false, false) else {
        return ExitStatus::Failure.into();
    };
    let selected = match rollout::select(&state, &a.select.site, a.select.selector.as_ref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    for site in selected {
        let hosts: Vec<&str> = state
            .planned_hosts(site)
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        let labels: Vec<String> = site
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        emit(&format!(
            "{}\thosts={}\tlabels={}\tbaselines={}\n",
            site.name,
            hosts.join(","),
            labels.join(","),
            site.baselines
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    ExitStatus::Success.into()
}

/// The keyring entries `target` (a site or a host) refers to, with their hosts.
fn entries_of(a: &LoginArgs) -> Result<BTreeMap<String, Vec<String>>, ExitCode> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(name) = &a.entry {
        out.insert(name.clone(), Vec::new());
        return Ok(out);
    }
    let Some(target) = a.target.as_deref() else {
        return Err(fail(
            "name a site or host of the manifests (exctl login SITE [PATH...]), or a keyring entry with --entry NAME",
        ));
    };
    let Some((_, state)) = crate::plan::load(&a.paths, false, false) else {
        return Err(ExitStatus::Failure.into());
    };
    let Some(t) = show::find(&state, target) else {
        return Err(fail(&format!(
            "'{target}' is neither a site nor a host of the inventory"
        )));
    };
    let mut others = Vec::new();
    for key in &t.site.hosts {
        let Some(h) = state.hosts.get(key) else {
            continue;
        };
        if t.host.is_some_and(|x| x.name != h.name) {
            continue;
        }
        match &h.credential {
            Some(CredentialRef::Keyring(name)) => {
                out.entry(name.clone()).or_default().push(h.name.clone())
            }
            Some(other) => others.push(format!("{} uses {other}", h.name)),
            None => others.push(format!("{} has no credential", h.name)),
        }
    }
    if out.is_empty() {
        return Err(fail(&format!(
            "no host of {target} refers to the keyring ({}); nothing to store\nhint: write 'credential: keyring:NAME' for its hosts in the inventory, or use --entry NAME",
            others.join("; ")
        )));
    }
    Ok(out)
}

fn read_password(a: &LoginArgs, name: &str, hosts: &[String]) -> Result<Secret, String> {
    if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            return Err("stdin gave an empty password".into());
        }
        return Ok(Secret::new(p));
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(
            "there is no terminal to ask for the password on\nhint: pass it on stdin with --password-stdin (never as an argument)"
                .into(),
        );
    }
    let who = if hosts.is_empty() {
        String::new()
    } else {
        format!(" ({})", hosts.join(", "))
    };
    let first = rpassword::prompt_password(format!("Password for keyring:{name}{who}: "))
        .map_err(|e| format!("cannot read the password from the terminal: {e}"))?;
    let again = rpassword::prompt_password("Again: ")
        .map_err(|e| format!("cannot read the password from the terminal: {e}"))?;
    if first != again {
        return Err("the two passwords differ; nothing was stored".into());
    }
    if first.is_empty() {
        return Err("an empty password; nothing was stored".into());
    }
    Ok(Secret::new(first))
}

fn keyring_failure(e: &KeyringError) -> ExitCode {
    match e {
        // A value of EXCTL_KEYRING exctl does not know: a usage error, nothing done.
        KeyringError::UnknownMode(_) => {
            eprintln!("error: {e}");
            ExitStatus::Usage.into()
        }
        KeyringError::NoEntry(_) | KeyringError::NoVariable(_) | KeyringError::ReadOnly => {
            fail(&e.to_string())
        }
        _ => fail(&format!("{e}\nhint: {KEYRING_UNAVAILABLE_HINT}")),
    }
}

pub fn login(a: LoginArgs) -> ExitCode {
    let entries = match entries_of(&a) {
        Ok(e) => e,
        Err(code) => return code,
    };
    if let Err(e) = credentials::keyring_writable() {
        return keyring_failure(&e);
    }
    for (name, hosts) in &entries {
        let secret = match read_password(&a, name, hosts) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        if let Err(e) = credentials::keyring_set(name, &secret) {
            return keyring_failure(&e);
        }
        let who = if hosts.is_empty() {
            String::new()
        } else {
            format!(" for {}", hosts.join(", "))
        };
        eprintln!("Stored keyring:{name} (service '{KEYRING_SERVICE}'){who}.");
    }
    ExitStatus::Success.into()
}

pub fn logout(a: LoginArgs) -> ExitCode {
    let entries = match entries_of(&a) {
        Ok(e) => e,
        Err(code) => return code,
    };
    // Nothing to remove is not a failure, but worth a look (a mistyped entry, another
    // machine's keyring): exit 2, as the README's table has it for "look at this".
    let mut absent = 0;
    for name in entries.keys() {
        match credentials::keyring_delete(name) {
            Ok(true) => eprintln!("Removed keyring:{name} (service '{KEYRING_SERVICE}')."),
            Ok(false) => {
                absent += 1;
                eprintln!(
                    "Nothing to remove: the OS keyring has no entry '{name}' (service '{KEYRING_SERVICE}') on this machine."
                );
            }
            Err(e) => return keyring_failure(&e),
        }
    }
    if absent > 0 {
        ExitStatus::Attention.into()
    } else {
        ExitStatus::Success.into()
    }
}
