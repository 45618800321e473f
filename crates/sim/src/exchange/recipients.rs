//! Mailboxes (Get-/Set-Mailbox) and their throttling policy association
//! (Get-/Set-ThrottlingPolicyAssociation).
//!
//! A mailbox is found by alias, name, UPN, primary SMTP address, `DOMAIN\sam`, its
//! canonical identity (`contoso.local/Users/name`) or its DN, through a HashMap of
//! lower-cased keys, so organizations of many thousands stay cheap.
//!
//! `ThrottlingPolicy` holds the associated policy's name, or nothing: "When the
//! ThrottlingPolicyId property is blank, the default policy is applied"
//! (ews-throttling-in-exchange.md). Associating the default policy explicitly stores
//! its name, as real Exchange does (the Remove-ThrottlingPolicy example re-points
//! mailboxes to it).
//!
//! The password is the simulator's own: the IMAP listener checks it. The UCCX shared
//! account `uccx-agent` has the password [`UCCX_PASSWORD`] unless a state file says
//! otherwise.

use serde::{Deserialize, Serialize};

/// The password of the seeded UCCX shared account.
pub const UCCX_PASSWORD: &str = "Uccx-Agent-2010!";

/// One mailbox user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The alias (mailNickname), also the sAMAccountName here.
    pub alias: String,
    /// The name (cn); the alias when not given.
    #[serde(default)]
    pub name: String,
    /// The display name; the name when not given.
    #[serde(default)]
    pub display_name: String,
    /// The simulator-side password for IMAP logins (never shown by cmdlets).
    #[serde(default)]
    pub password: Option<String>,
    /// The associated throttling policy's name, if any.
    #[serde(default)]
    pub throttling_policy: Option<String>,
    /// The database name; the server's first database when not given.
    #[serde(default)]
    pub database: String,
    /// Its GUID.
    #[serde(default = "super::new_guid")]
    pub guid: String,
}

impl Mailbox {
    /// A mailbox with only an alias and a password.
    pub fn new(alias: &str, password: Option<&str>) -> Self {
        Mailbox {
            alias: alias.to_string(),
            name: alias.to_string(),
            display_name: alias.to_string(),
            password: password.map(str::to_string),
            throttling_policy: None,
            database: String::new(),
            guid: super::new_guid(),
        }
    }
}
