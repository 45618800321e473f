//! Keeping secrets out of manifests: [`CredentialRef`] (where a credential is
//! to be found: `keyring:NAME`, `env:VAR`, or `prompt`) and [`check_secrets`], which refuses
//! a password written in clear anywhere in a tree.
//!
//! Messages never quote the refused value, and their diagnostics forbid
//! renderers to print the source line, so a password that slipped into a pull
//! request does not also end up in CI logs.

use std::fmt;

use thiserror::Error;

use crate::diag::{Diagnostic, Diagnostics};
use crate::node::{Node, NodeKind};
use crate::source::Span;

/// Where a credential is read from at run time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialRef {
    /// `keyring:NAME`: an entry of the OS keyring.
    Keyring(String),
    /// `env:VAR`: an environment variable.
    Env(String),
    /// `prompt`: asked for on the terminal when a run needs it (once per account).
    Prompt,
}

/// Why a string is not a credential reference. No variant holds the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialRefError {
    /// Not a reference at all: most likely the secret itself.
    #[error("a password in clear is refused; use `keyring:NAME` or `env:VAR`")]
    Literal,
    /// `keyring:` with no name.
    #[error("`keyring:` must be followed by the name of a keyring entry")]
    EmptyKeyringName,
    /// A keyring name with control characters or surrounding spaces.
    #[error("a keyring entry name cannot have control characters or surrounding spaces")]
    BadKeyringName,
    /// `env:` with no name.
    #[error("`env:` must be followed by an environment variable name")]
    EmptyEnvName,
    /// An environment variable name that is not one.
    #[error(
        "an environment variable name has only letters, digits and '_', and does not start with a digit"
    )]
    BadEnvName,
}

impl CredentialRef {
    /// Parses `keyring:NAME`, `env:VAR` (the prefix in any case) or `prompt`.
    ///
    /// # Errors
    /// Anything else, including a plausible password, is refused.
    pub fn parse(text: &str) -> Result<CredentialRef, CredentialRefError> {
        if text.eq_ignore_ascii_case("prompt") {
            return Ok(CredentialRef::Prompt);
        }
        if let Some(name) = strip_prefix_ignore_case(text, "keyring:") {
            if name.is_empty() {
                return Err(CredentialRefError::EmptyKeyringName);
            }
            if name.trim() != name || name.chars().any(char::is_control) {
                return Err(CredentialRefError::BadKeyringName);
            }
            return Ok(CredentialRef::Keyring(name.to_owned()));
        }
        if let Some(var) = strip_prefix_ignore_case(text, "env:") {
            if var.is_empty() {
                return Err(CredentialRefError::EmptyEnvName);
            }
            let valid = var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !var.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(CredentialRefError::BadEnvName);
            }
            return Ok(CredentialRef::Env(var.to_owned()));
        }
        Err(CredentialRefError::Literal)
    }
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialRef::Keyring(name) => write!(f, "keyring:{name}"),
            CredentialRef::Env(var) => write!(f, "env:{var}"),
            CredentialRef::Prompt => f.write_str("prompt"),
        }
    }
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// Whether a key names a secret: it contains `password`, `passwd`,
/// `passphrase` or `secret`, or is `pwd` (ignoring case).
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "pwd"
        || ["password", "passwd", "passphrase", "secret"]
            .iter()
            .any(|w| k.contains(w))
}

/// Refuses secrets in clear: every scalar under a secret-named key (see
/// [`is_secret_key`]), however deeply nested, must be null or a
/// [`CredentialRef`]. Literal values give `manifest::secret-in-clear`,
/// malformed references `manifest::bad-credential-ref`.
pub fn check_secrets(root: &Node, diags: &mut Diagnostics) {
    walk(root, false, "", diags);
}

fn walk(node: &Node, secret: bool, path: &str, diags: &mut Diagnostics) {
    match &node.kind {
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                let child = if path.is_empty() {
                    key.text.clone()
                } else {
                    format!("{path}.{}", key.text)
                };
                walk(value, secret || is_secret_key(&key.text), &child, diags);
            }
        }
        NodeKind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, secret, &format!("item {} of {path}", i + 1), diags);
            }
        }
        NodeKind::Null => {}
        NodeKind::Str(s) if secret => {
            if let Err(e) = CredentialRef::parse(s) {
                diags.push(credential_diagnostic(path, node.span, &e));
            }
        }
        _ if secret => {
            diags.push(credential_diagnostic(
                path,
                node.span,
                &CredentialRefError::Literal,
            ));
        }
        _ => {}
    }
}

/// The diagnostic for a refused credential reference (never shows the value).
pub(crate) fn credential_diagnostic(what: &str, span: Span, e: &CredentialRefError) -> Diagnostic {
    let code = match e {
        CredentialRefError::Literal => "manifest::secret-in-clear",
        _ => "manifest::bad-credential-ref",
    };
    Diagnostic::error(code, format!("{what}: {e}"))
        .with_span(span)
        .with_hint("use `keyring:NAME` (OS keyring) or `env:VAR` (environment variable)")
        .without_source()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;

    #[test]
    fn credential_refs_parse() {
        assert_eq!(
            CredentialRef::parse("keyring:exctl/svc"),
            Ok(CredentialRef::Keyring("exctl/svc".into()))
        );
        assert_eq!(
            CredentialRef::parse("ENV:EXCTL_PASSWORD"),
            Ok(CredentialRef::Env("EXCTL_PASSWORD".into()))
        );
        assert_eq!(
            CredentialRef::parse("env:EXCTL_PASSWORD")
                .unwrap()
                .to_string(),
            "env:EXCTL_PASSWORD"
        );
        assert_eq!(
            CredentialRef::parse("hunter2"),
            Err(CredentialRefError::Literal)
        );
        assert_eq!(
            CredentialRef::parse("vault:x"),
            Err(CredentialRefError::Literal)
        );
        assert_eq!(
            CredentialRef::parse("keyring:"),
            Err(CredentialRefError::EmptyKeyringName)
        );
        assert_eq!(
            CredentialRef::parse("keyring: x"),
            Err(CredentialRefError::BadKeyringName)
        );
        assert_eq!(
            CredentialRef::parse("env:"),
            Err(CredentialRefError::EmptyEnvName)
        );
        assert_eq!(
            CredentialRef::parse("env:1X"),
            Err(CredentialRefError::BadEnvName)
        );
        assert_eq!(
            CredentialRef::parse("env:A-B"),
            Err(CredentialRefError::BadEnvName)
        );
        assert_eq!(CredentialRef::parse("é"), Err(CredentialRefError::Literal));
        assert_eq!(CredentialRef::parse("Prompt"), Ok(CredentialRef::Prompt));
        assert_eq!(CredentialRef::Prompt.to_string(), "prompt");
    }

    #[test]
    fn secrets_in_clear_are_refused_without_quoting_them() {
        let text = "\
hosts:
  ex1:
    username: svc
    password: hunter2
    Password: env:EXCTL_PW
  ex2:
    credentials:
      api_secret: 1234
      pwd: 'keyring:'
    db_password: ~
secrets:
  - keyring:a
  - plain
";
        let (_, docs, mut diags) = parse_str("inv.yaml", text);
        assert!(diags.is_empty());
        check_secrets(&docs[0].root, &mut diags);
        let got: Vec<_> = diags
            .iter()
            .map(|d| {
                let s = d.span.unwrap();
                (
                    d.code,
                    d.message.as_str(),
                    s.start.line,
                    s.start.column,
                    d.show_source,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "manifest::secret-in-clear",
                    "hosts.ex1.password: a password in clear is refused; use `keyring:NAME` or `env:VAR`",
                    4,
                    15,
                    false
                ),
                (
                    "manifest::secret-in-clear",
                    "hosts.ex2.credentials.api_secret: a password in clear is refused; use `keyring:NAME` or `env:VAR`",
                    8,
                    19,
                    false
                ),
                (
                    "manifest::bad-credential-ref",
                    "hosts.ex2.credentials.pwd: `keyring:` must be followed by the name of a keyring entry",
                    9,
                    12,
                    false
                ),
                (
                    "manifest::secret-in-clear",
                    "item 2 of secrets: a password in clear is refused; use `keyring:NAME` or `env:VAR`",
                    13,
                    5,
                    false
                ),
            ]
        );
        assert!(diags.iter().all(|d| !d.message.contains("hunter2")));
        assert_eq!(
            diags.as_slice()[0].hint.as_deref(),
            Some("use `keyring:NAME` (OS keyring) or `env:VAR` (environment variable)")
        );
    }

    #[test]
    fn secret_key_names() {
        for k in [
            "password",
            "AdminPassword",
            "passwd",
            "client_secret",
            "PWD",
            "Passphrase",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["user", "pw", "MaxConnections", "keyring"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }
}
