//! `exctl export HOST`: a host's current state as manifest YAML, ready to commit.
//!
//! The host comes from the inventory (as for `plan`: its endpoint, account, credential
//! reference and declared release), or, with `--endpoint`, is reached directly with the
//! password found as `exctl exec` finds it. The engine ([`exctl_engine::export`]) runs
//! one read-only script on it and renders the result; this module picks the kinds,
//! resolves the host and the password, and writes stdout or `-o FILE` (never over an
//! existing file without `--force`, and never half a file).
//!
//! Exit codes: 0 written, 1 anything refused or failed.

use crate::exit::ExitStatus;
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use exctl_engine::desired::{Access, Auth, HostSpec};
use exctl_engine::export::{self, ExportRequest, Provenance};
use exctl_engine::observe::Runner as _;
use exctl_engine::planfile::rfc3339;
use exctl_engine::winrm::WinRmRunner;
use exctl_exchange::kind::Kind;
use exctl_exchange::{Version, kinds};

use crate::cli::{AuthArg, ExportArgs};
use crate::credentials;

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitStatus::Failure.into()
}

/// The kinds named by `--kinds`, in plan order (all when none is named).
fn pick_kinds(names: &[String]) -> Result<Vec<&'static dyn Kind>, String> {
    let keys: Vec<&str> = kinds::ALL.iter().map(|k| k.key()).collect();
    for n in names {
        if kinds::by_key(n.trim()).is_none() {
            let hint = exctl_manifest::did_you_mean_hint(n.trim(), &keys)
                .unwrap_or_else(|| format!("the kinds are {}", keys.join(", ")));
            return Err(format!("--kinds: '{n}' is not a kind\nhint: {hint}"));
        }
    }
    Ok(kinds::ALL
        .iter()
        .copied()
        .filter(|k| names.is_empty() || names.iter().any(|n| n.trim() == k.key()))
        .collect())
}

/// `host@endpoint-host` as `exctl exec` names the keyring entry of a direct endpoint.
fn keyring_entry(user: &str, endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |x| x.1);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    format!(
        "{user}@{}",
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    )
}

/// The host, its site and the passwords to reach it.
type Target = (HostSpec, String, HashMap<String, exctl_secret::Secret>);

fn direct_target(a: &ExportArgs, endpoint: &str) -> Result<Target, String> {
    let user = a.user.clone().unwrap_or_default();
    let release = a.exchange.as_deref().unwrap_or_default();
    let version = Version::parse(release).ok_or_else(|| {
        format!(
            "--exchange: '{release}' is not a release; write one of {}",
            Version::NAMES.join(", ")
        )
    })?;
    let password = if matches!(a.auth, AuthArg::Kerberos | AuthArg::Negotiate) {
        // The operator's ticket, or a ticket from EXCTL_PASSWORD; never a prompt.
        credentials::kerberos_password(None)
    } else {
        credentials::password(&user, &keyring_entry(&user, endpoint)).map_err(|e| e.to_string())?
    };
    let host = HostSpec {
        name: a.host.clone(),
        endpoint: endpoint.to_string(),
        auth: match a.auth {
            AuthArg::Ntlm => Auth::Ntlm,
            AuthArg::Basic => Auth::Basic,
            AuthArg::Kerberos => Auth::Kerberos,
            AuthArg::Negotiate => Auth::Negotiate,
        },
        spn: a.spn.clone(),
        user,
        credential: None,
        version,
        access: Access::Snapin,
        session_uri: None,
        exchange_auth: exctl_engine::desired::Auth::Kerberos,
        capacity: None,
        declared_limits: None,
        site: None,
        baselines: None,
        ca_file: a.ca_file.clone(),
        tls_fingerprint: None,
        span: exctl_manifest::Span::point(exctl_manifest::FileId(0), Default::default()),
    };
    let passwords = HashMap::from([(host.name.to_ascii_uppercase(), password)]);
    let site = host.name.clone();
    Ok((host, site, passwords))
}

fn inventory_target(a: &ExportArgs) -> Result<Target, Option<String>> {
    let Some((_, state)) = crate::plan::load(&a.paths, false, false) else {
        return Err(None);
    };
    let key = a.host.to_ascii_uppercase();
    let Some(host) = state.hosts.get(&key) else {
        let names: Vec<&str> = state.hosts.values().map(|h| h.name.as_str()).collect();
        let hint = exctl_manifest::did_you_mean_hint(&a.host, &names).unwrap_or_else(|| {
            if names.is_empty() {
                "no inventory was found there: name the manifests (exctl export HOST PATH), or reach the server with --endpoint".to_string()
            } else {
                format!("the hosts are {}", names.join(", "))
            }
        });
        return Err(Some(format!(
            "'{}' is not a host of the inventory\nhint: {hint}",
            a.host
        )));
    };
    let site = state
        .site_of(&key)
        .map_or_else(|| host.name.clone(), |s| s.name.clone());
    let passwords = credentials::resolve_hosts(&[(host, &site)]).map_err(Some)?;
    Ok((host.clone(), site, passwords))
}

/// The command line for the header (arguments are never secrets: passwords are no
/// arguments).
fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"', '\\', '$', '`']) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect();
    format!("exctl {}", args.join(" "))
}

/// Writes `text` to `path` unless it exists (and `force` is off), through a temporary
/// file so that no reader sees half a manifest.
fn write_file(path: &std::path::Path, text: &str, force: bool) -> Result<(), String> {
    if !force && path.exists() {
        return Err(format!(
            "{} exists; refusing to overwrite it\nhint: choose another file, or add --force",
            path.display()
        ));
    }
    crate::plan::write_atomically(path, text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub async fn run(a: ExportArgs) -> ExitCode {
    let kinds = match pick_kinds(&a.kinds) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    // Refused before connecting: nothing is read for nothing.
    if let Some(out) = &a.out
        && !a.force
        && out.exists()
    {
        return fail(&format!(
            "{} exists; refusing to overwrite it\nhint: choose another file, or add --force",
            out.display()
        ));
    }
    for (key, given, flag) in [
        ("throttling_associations", &a.mailboxes, "--mailboxes"),
        ("ad_permissions", &a.users, "--users"),
    ] {
        if given.is_empty() && kinds.iter().any(|k| k.key() == key) {
            eprintln!("note: {key}: nothing is exported without {flag}");
        }
    }
    let target = match &a.endpoint {
        Some(endpoint) => direct_target(&a, endpoint).map_err(Some),
        None => inventory_target(&a),
    };
    let (host, site, passwords) = match target {
        Ok(t) => t,
        Err(Some(e)) => return fail(&e),
        Err(None) => return ExitStatus::Failure.into(),
    };
    let mut runner = WinRmRunner::new(passwords);
    runner.insecure_skip_verify = a.insecure_skip_verify;
    if a.insecure_skip_verify {
        eprintln!(
            "warning: TLS certificate verification is OFF for {}",
            host.name
        );
    }
    let req = ExportRequest {
        kinds: &kinds,
        mailboxes: &a.mailboxes,
        users: &a.users,
    };
    let exported = export::export_host(&host, &site, &req, &runner).await;
    runner.close().await;
    let exported = match exported {
        Ok(e) => e,
        Err(e) => return fail(&format!("cannot export {}: {e}", host.name)),
    };
    let text = export::render(
        &exported,
        &Provenance {
            command: command_line(),
            at: rfc3339(SystemTime::now()),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        },
    );
    match &a.out {
        Some(path) => match write_file(path, &text, a.force) {
            Ok(()) => {
                eprintln!(
                    "Wrote {} ({} section{} from {}).",
                    path.display(),
                    exported.sections.len(),
                    if exported.sections.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    host.name
                );
                ExitStatus::Success.into()
            }
            Err(e) => fail(&e),
        },
        None => {
            let mut o = std::io::stdout().lock();
            // A closed pipe (`exctl export EX01 | head`) is not an error.
            let _ = o.write_all(text.as_bytes());
            let _ = o.flush();
            ExitStatus::Success.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_picked_in_plan_order_and_unknown_ones_refused() {
        let all = pick_kinds(&[]).unwrap();
        assert_eq!(all.len(), kinds::ALL.len());
        let some = pick_kinds(&["imap_settings".into(), "ad_permissions".into()]).unwrap();
        let keys: Vec<&str> = some.iter().map(|k| k.key()).collect();
        assert_eq!(keys, ["ad_permissions", "imap_settings"]);
        let e = pick_kinds(&["imap_setting".into()]).err().unwrap();
        assert!(e.contains("did you mean 'imap_settings'?"), "{e}");
    }

    #[test]
    fn direct_endpoints_use_exec_s_keyring_entry() {
        assert_eq!(
            keyring_entry("CONTOSO\\svc", "https://EX01.contoso.local:5986/wsman"),
            "CONTOSO\\svc@ex01.contoso.local"
        );
    }
}
