//! Where a password comes from: the environment, the OS keyring, or a prompt.
//!
//! Never from a command-line argument (visible to every user in the process list) and
//! never printed: the value travels as a [`Secret`] from here to the transport.
//!
//! Manifests name where each host's password is: `env:VAR`, `keyring:NAME` (an entry of
//! the OS keyring under service `exctl`, stored by `exctl login`) or `prompt`.
//! [`resolve`] reads each reference once, whatever the number of hosts and sites sharing
//! it. A keyring that is not usable here (a headless Linux without a kernel keyring or
//! secret service, a locked store) is a clear message with what to do instead, never a
//! panic; `EXCTL_KEYRING=none` turns the keyring off (for machines where it is known not
//! to work, and for tests), and `EXCTL_KEYRING=env` reads `keyring:NAME` from the
//! variable `EXCTL_SECRET_NAME` (CI runners, which have secrets but no keyring).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;

use exctl_engine::desired::{DesiredState, HostSpec, SiteSpec};
use exctl_manifest::CredentialRef;
use exctl_secret::Secret;

/// The environment variable checked first.
pub const PASSWORD_ENV: &str = "EXCTL_PASSWORD";
/// The keyring service name exctl's entries live under.
pub const KEYRING_SERVICE: &str = "exctl";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "no password for {user}: {PASSWORD_ENV} is not set, the keyring has no entry '{entry}'{keyring_note}, and there is no terminal to ask on\nhint: set {PASSWORD_ENV}, or store the password in the keyring under service '{KEYRING_SERVICE}', entry '{entry}'"
    )]
    Missing {
        user: String,
        entry: String,
        keyring_note: String,
    },
    #[error("cannot read the password from the terminal: {0}")]
    Prompt(std::io::Error),
}

/// Finds the password for `user`, trying the environment, then the keyring entry
/// `entry`, then a prompt on the terminal.
pub fn password(user: &str, entry: &str) -> Result<Secret, CredentialError> {
    if let Ok(p) = std::env::var(PASSWORD_ENV)
        && !p.is_empty()
    {
        return Ok(Secret::new(p));
    }
    let keyring_note =
        match keyring::Entry::new(KEYRING_SERVICE, entry).and_then(|e| e.get_password()) {
            Ok(p) => return Ok(Secret::new(p)),
            Err(keyring::Error::NoEntry) => String::new(),
            // A keyring that is not there (a headless server without a secret service) is
            // not an error in itself: the next source may have the password.
            Err(e) => format!(" (the keyring is not usable here: {e})"),
        };
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {user}: "))
            .map_err(CredentialError::Prompt)?;
        return Ok(Secret::new(p));
    }
    Err(CredentialError::Missing {
        user: user.to_string(),
        entry: entry.to_string(),
        keyring_note,
    })
}

/// The password for Kerberos on the command line: `EXCTL_PASSWORD`, else the keyring
/// entry when one is named, else none (an empty secret: the operator's ticket cache).
pub fn kerberos_password(entry: Option<&str>) -> Secret {
    if let Ok(p) = std::env::var(PASSWORD_ENV)
        && !p.is_empty()
    {
        return Secret::new(p);
    }
    if let Some(entry) = entry
        && let Ok(p) = keyring::Entry::new(KEYRING_SERVICE, entry).and_then(|e| e.get_password())
    {
        return Secret::new(p);
    }
    Secret::new(String::new())
}

/// `none`: never use the OS keyring; `env`: read `keyring:NAME` from the environment
/// variable [`keyring_env_var`] instead (CI runners have no keyring, jump hosts do: the
/// same manifests serve both).
pub const KEYRING_ENV: &str = "EXCTL_KEYRING";

/// The variable `keyring:NAME` is read from under `EXCTL_KEYRING=env`:
/// `EXCTL_SECRET_` and NAME upper-cased, every other character than letters and digits
/// as `_` (`keyring:contoso-exchange` → `EXCTL_SECRET_CONTOSO_EXCHANGE`).
pub fn keyring_env_var(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("EXCTL_SECRET_{tail}")
}

fn keyring_mode() -> Option<String> {
    std::env::var(KEYRING_ENV)
        .ok()
        .map(|v| v.to_ascii_lowercase())
}

/// What to do when the keyring cannot be used.
pub const KEYRING_UNAVAILABLE_HINT: &str = "on a server without a desktop session (no secret service, no kernel keyring) refer to the password with 'credential: env:VAR' and set VAR from your CI's or vault's secret store, or use 'credential: prompt' on a terminal";

/// Why the keyring gave no password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// `EXCTL_KEYRING=none`.
    #[error("the OS keyring is turned off ({KEYRING_ENV}=none)")]
    Disabled,
    /// The keyring works but has no such entry.
    #[error("the OS keyring has no entry '{0}' (service '{KEYRING_SERVICE}')")]
    NoEntry(String),
    /// The keyring cannot be used here.
    #[error("the OS keyring is not available here: {0}")]
    Unavailable(String),
    /// `EXCTL_KEYRING=env` and the variable is not set.
    #[error("{KEYRING_ENV}=env, and {0} is not set")]
    NoVariable(String),
    /// `EXCTL_KEYRING=env`: nothing can be stored.
    #[error(
        "{KEYRING_ENV}=env reads keyring entries from the environment: nothing can be stored or removed"
    )]
    ReadOnly,
}

fn keyring_entry(name: &str) -> Result<keyring::Entry, KeyringError> {
    match keyring_mode().as_deref() {
        Some("none") => return Err(KeyringError::Disabled),
        Some("env") => return Err(KeyringError::ReadOnly),
        _ => {}
    }
    keyring::Entry::new(KEYRING_SERVICE, name).map_err(|e| unavailable(name, e))
}

fn unavailable(name: &str, e: keyring::Error) -> KeyringError {
    match e {
        keyring::Error::NoEntry => KeyringError::NoEntry(name.to_string()),
        // Its Display lists the matching credentials: say less.
        keyring::Error::Ambiguous(v) => KeyringError::Unavailable(format!(
            "{} entries match '{name}'; remove the extra ones with your keyring's tool",
            v.len()
        )),
        other => KeyringError::Unavailable(other.to_string()),
    }
}

/// Whether exctl may store entries at all (`EXCTL_KEYRING` says neither `none` nor
/// `env`), checked before asking for a password that could not be stored.
pub fn keyring_writable() -> Result<(), KeyringError> {
    match keyring_mode().as_deref() {
        Some("none") => Err(KeyringError::Disabled),
        Some("env") => Err(KeyringError::ReadOnly),
        _ => Ok(()),
    }
}

/// The password stored under `name`.
pub fn keyring_get(name: &str) -> Result<Secret, KeyringError> {
    if keyring_mode().as_deref() == Some("env") {
        let var = keyring_env_var(name);
        return match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            _ => Err(KeyringError::NoVariable(var)),
        };
    }
    keyring_entry(name)?
        .get_password()
        .map(Secret::new)
        .map_err(|e| unavailable(name, e))
}

/// Stores `secret` under `name`.
pub fn keyring_set(name: &str, secret: &Secret) -> Result<(), KeyringError> {
    keyring_entry(name)?
        .set_password(secret.expose())
        .map_err(|e| match e {
            // Storing cannot miss an entry: the store itself is missing (on Linux, a
            // process without a session keyring, as in many containers and cron jobs).
            keyring::Error::NoEntry => KeyringError::Unavailable(
                "there is no keyring to store the entry in (on Linux: no kernel session keyring for this process)".into(),
            ),
            other => unavailable(name, other),
        })
}

/// Removes the entry `name`; `Ok(false)` when there was none.
pub fn keyring_delete(name: &str) -> Result<bool, KeyringError> {
    match keyring_entry(name)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(unavailable(name, e)),
    }
}

fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Who shares a credential reference, for messages: `EX01, EX02 (sites lon, ams)`.
struct Users {
    hosts: Vec<String>,
    sites: Vec<String>,
    user: String,
}

impl Users {
    fn site(&self) -> &str {
        self.sites.first().map_or("SITE", String::as_str)
    }

    fn describe(&self) -> String {
        let mut sites = self.sites.clone();
        sites.dedup();
        format!(
            "{} (site{} {})",
            self.hosts.join(", "),
            if sites.len() == 1 { "" } else { "s" },
            sites.join(", ")
        )
    }
}

/// Reads the password of every host of `sites` that has something to plan, each
/// reference once. On a terminal, a keyring entry that is missing (or a keyring that is
/// not usable) is asked for instead; elsewhere it is an error naming the hosts and what
/// to do. Errors name references and hosts, never a value.
pub fn resolve(
    state: &DesiredState,
    sites: &[&SiteSpec],
) -> Result<HashMap<String, Secret>, String> {
    let hosts: Vec<(&HostSpec, &str)> = sites
        .iter()
        .flat_map(|site| {
            state
                .planned_hosts(site)
                .into_iter()
                .map(|h| (h, site.name.as_str()))
        })
        .collect();
    resolve_hosts(&hosts)
}

/// [`resolve`] for given hosts, each with its site's name (for `exctl export`, whose
/// host may have nothing to plan).
pub fn resolve_hosts(hosts: &[(&HostSpec, &str)]) -> Result<HashMap<String, Secret>, String> {
    // Each distinct reference, with who uses it. `prompt` is one per account.
    let mut refs: BTreeMap<String, (Option<CredentialRef>, Users)> = BTreeMap::new();
    for &(host, site) in hosts {
        if host.credential.is_none() && matches!(host.auth.as_str(), "kerberos" | "negotiate") {
            // Kerberos with the operator's own ticket: no password to find.
            continue;
        }
        let id = match &host.credential {
            Some(CredentialRef::Prompt) => format!("prompt:{}", host.user.to_lowercase()),
            Some(r) => r.to_string(),
            None => format!("none:{}", host.name),
        };
        let entry = refs.entry(id).or_insert_with(|| {
            (
                host.credential.clone(),
                Users {
                    hosts: Vec::new(),
                    sites: Vec::new(),
                    user: host.user.clone(),
                },
            )
        });
        entry.1.hosts.push(host.name.clone());
        entry.1.sites.push(site.to_string());
    }
    let mut by_ref: HashMap<String, Secret> = HashMap::new();
    let mut problems = Vec::new();
    for (id, (cred, users)) in &refs {
        let got = match cred {
            Some(CredentialRef::Env(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(format!(
                    "{}: the environment variable {var} (credential env:{var}) is not set",
                    users.describe()
                )),
            },
            Some(CredentialRef::Keyring(name)) => match keyring_get(name) {
                Ok(s) => Ok(s),
                Err(e) if on_terminal() => {
                    eprintln!(
                        "note: {e}; asking instead (store it with: exctl login {})",
                        users.site()
                    );
                    prompt(&format!(
                        "Password for {} (keyring:{name}, {}): ",
                        users.user,
                        users.describe()
                    ))
                }
                Err(e @ KeyringError::NoVariable(_)) => Err(format!(
                    "{}: credential keyring:{name}: {e}\nhint: set it from your CI's secret store",
                    users.describe()
                )),
                Err(e @ KeyringError::NoEntry(_)) => Err(format!(
                    "{}: {e}\nhint: store it with `exctl login {}` (or `exctl login --entry {name}`) on this machine, or refer to the password with env:VAR",
                    users.describe(),
                    users.site()
                )),
                Err(e) => Err(format!(
                    "{}: credential keyring:{name}: {e}\nhint: {KEYRING_UNAVAILABLE_HINT}",
                    users.describe()
                )),
            },
            Some(CredentialRef::Prompt) => {
                if on_terminal() {
                    prompt(&format!(
                        "Password for {} ({}): ",
                        users.user,
                        users.describe()
                    ))
                } else {
                    Err(format!(
                        "{}: the credential is 'prompt' and there is no terminal to ask on\nhint: for unattended runs refer to the password with env:VAR or keyring:NAME",
                        users.describe()
                    ))
                }
            }
            Some(other) => Err(format!(
                "{}: unsupported credential reference {other}",
                users.describe()
            )),
            None => Err(format!(
                "{}: no credential; add 'credential: keyring:NAME', 'credential: env:VAR' or 'credential: prompt' to the host in the inventory",
                users.describe()
            )),
        };
        match got {
            Ok(s) => {
                by_ref.insert(id.clone(), s);
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let mut out = HashMap::new();
    for (id, (_, users)) in &refs {
        if let Some(s) = by_ref.get(id) {
            for h in &users.hosts {
                out.insert(h.to_ascii_uppercase(), s.clone());
            }
        }
    }
    Ok(out)
}

fn prompt(text: &str) -> Result<Secret, String> {
    rpassword::prompt_password(text)
        .map(Secret::new)
        .map_err(|e| format!("cannot read the password from the terminal: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_names_map_to_variables() {
        assert_eq!(
            keyring_env_var("contoso-exchange"),
            "EXCTL_SECRET_CONTOSO_EXCHANGE"
        );
        assert_eq!(
            keyring_env_var("lon/svc.exctl"),
            "EXCTL_SECRET_LON_SVC_EXCTL"
        );
    }

    #[test]
    fn keyring_errors_say_what_to_do_and_never_list_entries() {
        let e = unavailable("x", keyring::Error::PlatformFailure("no session".into()));
        assert!(matches!(e, KeyringError::Unavailable(_)));
        assert!(
            e.to_string()
                .starts_with("the OS keyring is not available here: ")
        );
        assert_eq!(
            unavailable("x", keyring::Error::NoEntry),
            KeyringError::NoEntry("x".into())
        );
        let e = unavailable("x", keyring::Error::Ambiguous(Vec::new()));
        assert!(e.to_string().contains("0 entries match 'x'"));
    }
}
