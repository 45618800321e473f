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
use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;

use exctl_engine::desired::{DesiredState, HostSpec, SiteSpec};
use exctl_engine::observe::{LineSink, RunError, Runner, ScriptOutput};
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
    /// An `EXCTL_KEYRING` exctl does not know (refused as plan and login refuse it).
    #[error("{0}")]
    Keyring(KeyringError),
}

/// Finds the password for `user`, trying the environment, then the keyring entry
/// `entry`, then a prompt on the terminal.
pub fn password(user: &str, entry: &str) -> Result<Secret, CredentialError> {
    check_keyring_mode().map_err(CredentialError::Keyring)?;
    if let Ok(p) = std::env::var(PASSWORD_ENV)
        && !p.is_empty()
    {
        return Ok(Secret::new(p));
    }
    // The same keyring as plan's and login's (EXCTL_KEYRING included).
    let keyring_note = match keyring_get(entry) {
        Ok(p) => return Ok(p),
        Err(KeyringError::NoEntry(_)) => String::new(),
        // A keyring that is not there (a headless server without a secret service) is
        // not an error in itself: the next source may have the password.
        Err(e) => format!(" ({e})"),
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
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// `EXCTL_KEYRING` is unset, `none` or `env`: any other value is refused rather than
/// read as "the OS keyring" (a typo such as `EXCTL_KEYRING=nonw` on a CI runner would
/// otherwise try a keyring that is not there, or store where nobody looks).
pub fn check_keyring_mode() -> Result<(), KeyringError> {
    match keyring_mode().as_deref() {
        None | Some("none") | Some("env") => Ok(()),
        Some(other) => Err(KeyringError::UnknownMode(other.to_string())),
    }
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
    /// `EXCTL_KEYRING` has a value exctl does not know.
    #[error(
        "{KEYRING_ENV}={0} is not a setting exctl knows: leave it unset for the OS keyring, or set it to none (no keyring) or env (entries from EXCTL_SECRET_* variables)"
    )]
    UnknownMode(String),
    /// `EXCTL_KEYRING=env`: nothing can be stored.
    #[error(
        "{KEYRING_ENV}=env reads keyring entries from the environment: nothing can be stored or removed"
    )]
    ReadOnly,
}

fn keyring_entry(name: &str) -> Result<keyring::Entry, KeyringError> {
    check_keyring_mode()?;
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
    check_keyring_mode()?;
    match keyring_mode().as_deref() {
        Some("none") => Err(KeyringError::Disabled),
        Some("env") => Err(KeyringError::ReadOnly),
        _ => Ok(()),
    }
}

/// The password stored under `name`.
pub fn keyring_get(name: &str) -> Result<Secret, KeyringError> {
    check_keyring_mode()?;
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

/// The passwords found, and why the others were not, by upper-case host name.
pub struct Resolved {
    /// The passwords found.
    pub passwords: HashMap<String, Secret>,
    /// For each host without a usable credential, what is wrong and what to do.
    pub missing: HashMap<String, String>,
}

/// Like [`resolve`], but a host without a usable credential fails alone (its site
/// cannot be planned, the others go on): `Err` only when nothing can be read at all
/// (an unknown `EXCTL_KEYRING`).
pub fn resolve_each(state: &DesiredState, sites: &[&SiteSpec]) -> Result<Resolved, String> {
    check_keyring_mode().map_err(|e| e.to_string())?;
    let hosts: Vec<(&HostSpec, &str)> = sites
        .iter()
        .flat_map(|site| {
            state
                .planned_hosts(site)
                .into_iter()
                .map(|h| (h, site.name.as_str()))
        })
        .collect();
    Ok(resolve_hosts_each(&hosts))
}

/// [`resolve`] for given hosts, each with its site's name (for `exctl export`, whose
/// host may have nothing to plan).
pub fn resolve_hosts(hosts: &[(&HostSpec, &str)]) -> Result<HashMap<String, Secret>, String> {
    check_keyring_mode().map_err(|e| e.to_string())?;
    let r = resolve_hosts_each(hosts);
    if r.missing.is_empty() {
        return Ok(r.passwords);
    }
    // One message per reference, however many hosts share it.
    let mut problems: Vec<&String> = r.missing.values().collect();
    problems.sort();
    problems.dedup();
    Err(problems
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n"))
}

fn resolve_hosts_each(hosts: &[(&HostSpec, &str)]) -> Resolved {
    // Each distinct reference, with who uses it. `prompt` is one per account.
    let mut refs: BTreeMap<String, (Option<CredentialRef>, Users)> = BTreeMap::new();
    for &(host, site) in hosts {
        if host.credential.is_none() && host.auth.is_kerberos() {
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
    let mut by_ref: HashMap<String, Result<Secret, String>> = HashMap::new();
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
                Err(e @ KeyringError::UnknownMode(_)) => Err(e.to_string()),
                Err(e) if on_terminal() => {
                    // Suggest `exctl login` only where it can work (as login says).
                    match &e {
                        KeyringError::NoEntry(_) => eprintln!(
                            "note: {e}; asking instead (store it with: exctl login {})",
                            users.site()
                        ),
                        _ => eprintln!("note: {e}; asking instead ({KEYRING_UNAVAILABLE_HINT})"),
                    }
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
        by_ref.insert(id.clone(), got);
    }
    let mut out = Resolved {
        passwords: HashMap::new(),
        missing: HashMap::new(),
    };
    for (id, (_, users)) in &refs {
        for h in &users.hosts {
            match by_ref.get(id) {
                Some(Ok(s)) => {
                    out.passwords.insert(h.to_ascii_uppercase(), s.clone());
                }
                Some(Err(e)) => {
                    out.missing.insert(h.to_ascii_uppercase(), e.clone());
                }
                None => {}
            }
        }
    }
    out
}

/// A [`Runner`] whose hosts without a usable credential fail with the reason (their
/// site cannot be planned; the other sites go on), the others run on `inner`.
pub struct WithCredentials<R> {
    /// The runner of the hosts that have a password.
    pub inner: R,
    /// Why each host (upper-case name) has none.
    pub missing: HashMap<String, String>,
}

impl<R: Runner> Runner for WithCredentials<R> {
    fn run<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        match self.missing.get(&host.name.to_ascii_uppercase()) {
            Some(why) => {
                let e = RunError::new(why.clone());
                Box::pin(async move { Err(e) })
            }
            None => self.inner.run(host, script),
        }
    }

    fn run_streaming<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
        on_line: LineSink<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        match self.missing.get(&host.name.to_ascii_uppercase()) {
            Some(why) => {
                let e = RunError::new(why.clone());
                Box::pin(async move { Err(e) })
            }
            None => self.inner.run_streaming(host, script, on_line),
        }
    }

    fn close<'a>(&'a self) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        self.inner.close()
    }
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
