//! The registry of resource kinds, in plan order.

mod common;
mod imap;

pub use imap::ImapSettings;

use crate::kind::Kind;

/// Every kind exctl knows, in the order their changes run.
pub static ALL: &[&dyn Kind] = &[&ImapSettings];

/// The kind for a manifest key.
pub fn by_key(key: &str) -> Option<&'static dyn Kind> {
    ALL.iter().copied().find(|k| k.key() == key)
}
