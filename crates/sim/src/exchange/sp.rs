//! Exchange 2010 service packs: what the model varies by release (parameters that exist,
//! default values) and the version strings servers report.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An Exchange 2010 release. Ordered, so `since <= sp` says whether a feature exists.
/// Written as the command line and the manifests spell it (`2010-sp1`); read in that
/// spelling and in the older ones (`Sp1`, `SP1`, `sp1`) of state files written before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Sp {
    /// The original release (14.0).
    Rtm,
    /// Service Pack 1 (14.1).
    Sp1,
    /// Service Pack 2 (14.2).
    Sp2,
    /// Service Pack 3 (14.3), the last and the default.
    #[default]
    Sp3,
}

impl Sp {
    /// `AdminDisplayVersion` as Get-ExchangeServer shows it. The builds are those of each
    /// release's setup (14.0.639.21, 14.1.218.15, 14.2.247.5, 14.3.123.4).
    pub fn admin_display_version(self) -> &'static str {
        match self {
            Sp::Rtm => "Version 14.0 (Build 639.21)",
            Sp::Sp1 => "Version 14.1 (Build 218.15)",
            Sp::Sp2 => "Version 14.2 (Build 247.5)",
            Sp::Sp3 => "Version 14.3 (Build 123.4)",
        }
    }

    /// The `ExchangeVersion` stamped on objects (the RTM dump shows `0.10 (14.0.100.0)`,
    /// which every 2010 release keeps for these object classes).
    pub fn object_version(self) -> &'static str {
        "0.10 (14.0.100.0)"
    }

    /// The one spelling exctl uses everywhere: `2010-rtm`, `2010-sp1`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Sp::Rtm => "2010-rtm",
            Sp::Sp1 => "2010-sp1",
            Sp::Sp2 => "2010-sp2",
            Sp::Sp3 => "2010-sp3",
        }
    }

    /// Parses `2010-sp1`, and the older `RTM`, `SP1`.. (any case).
    pub fn parse(s: &str) -> Option<Sp> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("2010-").unwrap_or(&s);
        match s {
            "rtm" | "sp0" => Some(Sp::Rtm),
            "sp1" => Some(Sp::Sp1),
            "sp2" => Some(Sp::Sp2),
            "sp3" => Some(Sp::Sp3),
            _ => None,
        }
    }
}

impl Serialize for Sp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Sp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sp, D::Error> {
        let s = String::deserialize(d)?;
        Sp::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown Exchange 2010 release '{s}': one of 2010-rtm, 2010-sp1, 2010-sp2, 2010-sp3"
            ))
        })
    }
}

impl fmt::Display for Sp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sp::Rtm => "RTM",
            Sp::Sp1 => "SP1",
            Sp::Sp2 => "SP2",
            Sp::Sp3 => "SP3",
        })
    }
}

/// One parameter of a settings cmdlet as the simulator binds it in a release: its name and
/// its Exchange type with the range the cmdlet enforces. The listing exists so a test can
/// hold the simulator and exctl's schema to the same parameters per release.
#[derive(Debug, Clone, Copy)]
pub struct Parameter {
    /// Exchange's parameter name.
    pub name: &'static str,
    /// Its type and range.
    pub kind: super::props::Kind,
}

/// The settings cmdlets whose parameters come from a property table: the setter of each
/// protocol of [`super::protocol_settings::PROTOCOLS`] (Set-ImapSettings, Set-PopSettings),
/// Set-ReceiveConnector, Set-ThrottlingPolicy and New-ThrottlingPolicy.
pub fn settings_cmdlets() -> Vec<&'static str> {
    super::protocol_settings::PROTOCOLS
        .iter()
        .map(|p| p.set)
        .chain([
            "Set-ReceiveConnector",
            "Set-ThrottlingPolicy",
            "New-ThrottlingPolicy",
        ])
        .collect()
}

/// The state-describing parameters `cmdlet` accepts in `release` (not -Identity, -Server,
/// -Name, -DomainController, -Confirm, -WhatIf), in table order; `None` for a cmdlet that is
/// not one of [`settings_cmdlets`].
pub fn parameters(release: Sp, cmdlet: &str) -> Option<Vec<Parameter>> {
    use super::{connector, protocol_settings, throttling};
    let (defs, skip): (&[super::props::PropDef], &[&str]) = match cmdlet {
        c if let Some((p, true)) = protocol_settings::by_cmdlet(c) => (p.props, &[]),
        c if c.eq_ignore_ascii_case("Set-ReceiveConnector") => (connector::RC_PROPS, &[]),
        c if c.eq_ignore_ascii_case("Set-ThrottlingPolicy") => (throttling::TP_PROPS, &[]),
        c if c.eq_ignore_ascii_case("New-ThrottlingPolicy") => {
            (throttling::TP_PROPS, throttling::DEFAULT_ONLY)
        }
        _ => return None,
    };
    Some(
        defs.iter()
            .filter(|d| d.settable && d.since <= release && !skip.contains(&d.name))
            .map(|d| Parameter {
                name: d.name,
                kind: d.kind,
            })
            .collect(),
    )
}
