//! Active Directory permissions on Exchange objects (Get-/Add-/Remove-ADPermission):
//! access control entries with their user, Allow/Deny, inheritance and rights.
//!
//! Extended rights are accepted by display name ('View Information Store status') or
//! LDAP name ('ms-Exch-Store-Visible') and always stored and shown by display name, as
//! Get-ADPermission shows them. Explicit entries are what Add-/Remove-ADPermission
//! change; inherited ones (IsInherited True) come from parent containers and cannot be
//! removed here. Rights granted on the organization with InheritanceType All are what
//! servers and databases inherit (reference §3).
//!
//! Reconstructed texts: Add-ADPermission for an entry that is already there warns
//! rather than failing, and Remove-ADPermission for an entry that is not there warns
//! too (their exact wording was not retrievable; see `already_present`/`not_present`).

use serde::{Deserialize, Serialize};

use super::value::{SimObject, SimValue};

/// Extended rights: (display name, LDAP name).
pub const EXTENDED_RIGHTS: &[(&str, &str)] = &[
    ("View Information Store status", "ms-Exch-Store-Visible"),
    ("Administer information store", "ms-Exch-Store-Admin"),
    ("Send As", "Send-As"),
    ("Receive As", "Receive-As"),
    ("ms-Exch-SMTP-Submit", "ms-Exch-SMTP-Submit"),
    (
        "ms-Exch-SMTP-Accept-Any-Recipient",
        "ms-Exch-SMTP-Accept-Any-Recipient",
    ),
    (
        "ms-Exch-SMTP-Accept-Authoritative-Domain-Sender",
        "ms-Exch-SMTP-Accept-Authoritative-Domain-Sender",
    ),
    ("ms-Exch-Bypass-Anti-Spam", "ms-Exch-Bypass-Anti-Spam"),
    ("ms-Exch-EPI-Impersonation", "ms-Exch-EPI-Impersonation"),
    ("ms-Exch-EPI-May-Impersonate", "ms-Exch-EPI-May-Impersonate"),
];

/// `ActiveDirectoryRights` member names.
pub const ACCESS_RIGHTS: &[&str] = &[
    "CreateChild",
    "DeleteChild",
    "ListChildren",
    "Self",
    "ReadProperty",
    "WriteProperty",
    "DeleteTree",
    "ListObject",
    "ExtendedRight",
    "Delete",
    "ReadControl",
    "GenericExecute",
    "GenericWrite",
    "GenericRead",
    "WriteDacl",
    "WriteOwner",
    "GenericAll",
    "Synchronize",
    "AccessSystemSecurity",
];

/// `ActiveDirectorySecurityInheritance` member names.
pub const INHERITANCE: &[&str] = &["None", "All", "Descendents", "SelfAndChildren", "Children"];

/// The display name of an extended right given by either name.
pub fn extended_right_display(name: &str) -> Option<&'static str> {
    let n = name.trim();
    EXTENDED_RIGHTS
        .iter()
        .find(|(d, l)| d.eq_ignore_ascii_case(n) || l.eq_ignore_ascii_case(n))
        .map(|(d, _)| *d)
}

/// The canonical spelling of an access right.
pub fn access_right(name: &str) -> Option<&'static str> {
    ACCESS_RIGHTS
        .iter()
        .copied()
        .find(|r| r.eq_ignore_ascii_case(name.trim()))
}

/// One access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ace {
    /// `DOMAIN\name`.
    pub user: String,
    /// A Deny entry.
    #[serde(default)]
    pub deny: bool,
    /// Inherited from a parent container.
    #[serde(default)]
    pub inherited: bool,
    /// `ActiveDirectoryRights` names.
    #[serde(default)]
    pub access_rights: Vec<String>,
    /// Extended right display names.
    #[serde(default)]
    pub extended_rights: Vec<String>,
    /// `All`, `None`, ...
    #[serde(default = "default_inheritance")]
    pub inheritance_type: String,
}

fn default_inheritance() -> String {
    "All".to_string()
}

impl Ace {
    /// The Get-ADPermission object for this entry on `identity`.
    pub fn to_object(&self, identity: &str) -> SimObject {
        SimObject::new("Microsoft.Exchange.Management.RecipientTasks.ADAcePresentationObject")
            .with(
                "AccessRights",
                SimValue::strings(self.access_rights.iter().cloned()),
            )
            .with(
                "ExtendedRights",
                if self.extended_rights.is_empty() {
                    SimValue::Null
                } else {
                    SimValue::strings(self.extended_rights.iter().cloned())
                },
            )
            .with("ChildObjectTypes", SimValue::Null)
            .with("InheritedObjectType", SimValue::Null)
            .with("Properties", SimValue::Null)
            .with("IsValid", true)
            .with("Deny", self.deny)
            .with("InheritanceType", SimValue::str(&self.inheritance_type))
            .with("User", SimValue::str(&self.user))
            .with("Identity", SimValue::str(identity))
            .with("IsInherited", self.inherited)
            .with("ObjectState", SimValue::str("Unchanged"))
    }
}

/// The warning for an Add-ADPermission whose entry is already there (reconstructed).
pub fn already_present(identity: &str, user: &str) -> String {
    format!(
        "The appropriate access control entry is already present on the object \"{identity}\" for account \"{user}\"."
    )
}

/// The warning for a Remove-ADPermission whose entry is not there (reconstructed).
pub fn not_present(identity: &str, user: &str) -> String {
    format!(
        "Can't remove the access control entry on the object \"{identity}\" for account \"{user}\" because the ACE doesn't exist on the object."
    )
}

/// The entries Setup leaves on the organization container: a few explicit grants, and
/// inherited ones from the Microsoft Exchange container (so that comparisons can be
/// checked to ignore inherited entries).
pub fn default_org_acl(netbios: &str) -> Vec<Ace> {
    let ace = |user: &str, inherited: bool, ar: &[&str], er: &[&str]| Ace {
        user: format!("{netbios}\\{user}"),
        deny: false,
        inherited,
        access_rights: ar.iter().map(|s| s.to_string()).collect(),
        extended_rights: er.iter().map(|s| s.to_string()).collect(),
        inheritance_type: "All".to_string(),
    };
    vec![
        ace("Exchange Trusted Subsystem", false, &["GenericAll"], &[]),
        ace("Organization Management", false, &["GenericAll"], &[]),
        ace(
            "Exchange Servers",
            true,
            &["ExtendedRight"],
            &["View Information Store status"],
        ),
        ace("Exchange Servers", true, &["GenericRead"], &[]),
        ace("Enterprise Admins", true, &["GenericAll"], &[]),
    ]
}
