//! Where a password comes from: the environment, the OS keyring, or a prompt.
//!
//! Never from a command-line argument (visible to every user in the process list) and
//! never printed: the value travels as a [`Secret`] from here to the transport.

use std::io::IsTerminal;

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
