//! Exchange 2010 releases and what the server says about itself.
//!
//! Parameters appear by service pack (the CPA* and Anonymous* throttling parameters,
//! for example, exist from SP1 on), so the manifest declares a version, validation
//! checks parameters against it before any connection, and `plan` checks the declared
//! version against the server's `AdminDisplayVersion`.

use std::fmt;

/// An Exchange 2010 release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Version {
    /// Exchange 2010 RTM, version 14.0.
    #[serde(rename = "2010-rtm")]
    Rtm,
    /// Service Pack 1, version 14.1.
    #[serde(rename = "2010-sp1")]
    Sp1,
    /// Service Pack 2, version 14.2.
    #[serde(rename = "2010-sp2")]
    Sp2,
    /// Service Pack 3, version 14.3.
    #[serde(rename = "2010-sp3")]
    Sp3,
}

impl Version {
    /// Every release, oldest first.
    pub const ALL: [Version; 4] = [Version::Rtm, Version::Sp1, Version::Sp2, Version::Sp3];

    /// The manifest spelling: `2010-rtm`, `2010-sp1`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Rtm => "2010-rtm",
            Version::Sp1 => "2010-sp1",
            Version::Sp2 => "2010-sp2",
            Version::Sp3 => "2010-sp3",
        }
    }

    /// Every manifest spelling, for messages and validation.
    pub const NAMES: [&'static str; 4] = ["2010-rtm", "2010-sp1", "2010-sp2", "2010-sp3"];

    /// Reads a manifest spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Reads `AdminDisplayVersion` as Exchange prints it: `Version 14.3 (Build 123.4)`,
    /// or the bare `14.3.123.4`.
    pub fn from_admin_display_version(s: &str) -> Option<Version> {
        let t = s.trim();
        let t = t.strip_prefix("Version").unwrap_or(t).trim();
        let mut parts = t.split(|c: char| c == '.' || c.is_whitespace());
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        if major != 14 {
            return None;
        }
        match minor {
            0 => Some(Version::Rtm),
            1 => Some(Version::Sp1),
            2 => Some(Version::Sp2),
            3 => Some(Version::Sp3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Rtm => "Exchange 2010 RTM",
            Version::Sp1 => "Exchange 2010 SP1",
            Version::Sp2 => "Exchange 2010 SP2",
            Version::Sp3 => "Exchange 2010 SP3",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_admin_display_version() {
        assert_eq!(
            Version::from_admin_display_version("Version 14.3 (Build 123.4)"),
            Some(Version::Sp3)
        );
        assert_eq!(
            Version::from_admin_display_version("Version 14.0 (Build 639.21)"),
            Some(Version::Rtm)
        );
        assert_eq!(
            Version::from_admin_display_version("14.1.218.15"),
            Some(Version::Sp1)
        );
        assert_eq!(
            Version::from_admin_display_version("Version 15.0 (Build 1)"),
            None
        );
        assert_eq!(Version::from_admin_display_version("garbage"), None);
    }

    #[test]
    fn manifest_spellings_round_trip() {
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()), Some(v));
        }
        assert_eq!(Version::parse("2010-SP2"), Some(Version::Sp2));
        assert_eq!(Version::parse("sp2"), None);
    }
}
