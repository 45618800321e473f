//! The registry of resource kinds, in plan order.
//!
//! | phase | key | scope | module |
//! |---|---|---|---|
//! | 10 | `ad_permissions` | organization | [`ad_permissions`] |
//! | 20 | `throttling_policies` | organization | [`throttling_policies`] |
//! | 30 | `throttling_associations` | organization | [`throttling_associations`] |
//! | 40 | `receive_connectors` | server | [`receive_connectors`] |
//! | 50 | `imap_settings` | server | [`protocol`] ([`protocol::IMAP4`]) |
//! | 55 | `pop_settings` | server | [`protocol`] ([`protocol::POP3`]) |
//! | 60 | `registry_values` | server | [`registry_values`] |
//!
//! Each module's `//!` documentation gives its manifest shape, semantics and rules. A kind
//! declares the services its changes may restart (`Kind::services`: `imap_settings`
//! MSExchangeIMAP4, `pop_settings` MSExchangePOP3, `registry_values` the Information
//! Store); [`services`] lists them in restart order. Their PowerShell is in
//! [`crate::services`].
//!
//! # What the scripts use (the contract with the simulator)
//!
//! Observe and apply scripts are PowerShell 2.0 and start with [`crate::record::PRELUDE`]
//! (functions `__exctl_b64` and `__exctl_emit`, which use `[Convert]::ToBase64String`,
//! `[Text.Encoding]::UTF8.GetBytes`, `ForEach-Object`, `-join`, `-is [array]`,
//! `Write-Output`). Beyond the prelude they use only these constructs:
//! `try`/`catch` (`$_.Exception.Message`), `if`/`else`, `foreach ($x in ...)`, variables
//! and assignment (including `$null = <command>`), `@(...)` (also around a `foreach`
//! statement), `-eq`, `+` joining strings (export), property access (`$o.Name`, and `$v.'quoted name'` for registry
//! values), indexing `$o[0]`, `.Count`, the cast `[string]`, parenthesised pipelines
//! (`(Get-OrganizationConfig).DistinguishedName`), array literals `@('a', 'b')` and
//! `@(,'a')` (also spread over lines after commas), `$null`, `$true`, `$false`, and the
//! common parameter `-ErrorAction SilentlyContinue|Stop`. No `ConvertTo-Json`, `-in`,
//! `[ordered]`, `.ForEach()` or member enumeration on arrays.
//!
//! Cmdlets and parameters, by kind (every argument is a single-quoted literal, a number,
//! `$null`/`$true`/`$false`, an array literal, or a variable the script set; each kind's
//! [`Kind::cmdlets`] names its Exchange cmdlets, held to its scripts by
//! `tests/it/kind_registry.rs`):
//!
//! - `ad_permissions`:
//!   - `Get-OrganizationConfig` (property `DistinguishedName`);
//!   - `Get-ADPermission -Identity -User -ErrorAction Stop` (output properties `IsInherited`, `Deny`,
//!     `InheritanceType`, `AccessRights`, `ExtendedRights`);
//!   - `Add-ADPermission -Identity -User [-ExtendedRights <string[]>] [-AccessRights
//!     <string[]>] [-InheritanceType] [-Deny]`;
//!   - `Remove-ADPermission -Identity -User [-ExtendedRights] [-AccessRights]
//!     -InheritanceType [-Deny] -Confirm:$false`.
//! - `throttling_policies`:
//!   - `Get-ThrottlingPolicy -Identity -ErrorAction SilentlyContinue` (output: the
//!     parameters below, by the same names), and for `exctl export`
//!     `Get-ThrottlingPolicy -ErrorAction Stop`, every policy (also `Name`, `IsDefault`);
//!   - `New-ThrottlingPolicy -Name` and `Set-ThrottlingPolicy -Identity` with any of the
//!     48 parameters of [`throttling_policies::PARAMS`] (values: numbers or `$null`);
//!   - `Remove-ThrottlingPolicy -Identity -Confirm:$false`.
//! - `throttling_associations`:
//!   - `Get-ThrottlingPolicyAssociation -Identity -ErrorAction Stop` (property
//!     `ThrottlingPolicyId`, `$null` for the default policy);
//!   - `Get-ThrottlingPolicy -Identity -ErrorAction SilentlyContinue`, and
//!     `Get-ThrottlingPolicy -ErrorAction Stop` walked by `foreach` for the policy whose
//!     `IsDefault` is true (its `Name`);
//!   - `Set-ThrottlingPolicyAssociation -Identity -ThrottlingPolicy` (a name, the default
//!     policy's included: never `$null`).
//! - `receive_connectors`:
//!   - `Get-ReceiveConnector -Server -ErrorAction Stop` (properties `Identity`, printed `SERVER\Name`, and
//!     the parameters below);
//!   - `Set-ReceiveConnector -Identity` with any parameter of
//!     [`receive_connectors::PARAMS`] (Unlimited values as `'Unlimited'`, sizes as
//!     `'<n>B'`, time spans as `'hh:mm:ss'` / `'d.hh:mm:ss'`, lists and flag sets as arrays).
//! - `imap_settings`:
//!   - `Get-ImapSettings -Server`; `Set-ImapSettings -Server` with the parameters of
//!     [`imap::PARAMS`].
//! - `pop_settings`:
//!   - `Get-PopSettings -Server`; `Set-PopSettings -Server` with the parameters of
//!     [`pop::PARAMS`].
//! - `registry_values` (plain PowerShell registry provider, paths `HKLM:\...`):
//!   - `Test-Path -Path`;
//!   - `Get-ItemProperty -Path -Name -ErrorAction SilentlyContinue` (the value is
//!     the property of that name);
//!   - `Get-Item -Path`, whose `Microsoft.Win32.RegistryKey` result is asked
//!     `.GetValueKind(<name>)` (a `RegistryValueKind`: `DWord`, `QWord`, `String`,
//!     `ExpandString`, `MultiString`, `Binary`) and, for expandstring values only,
//!     `.GetValue(<name>, $null, 'DoNotExpandEnvironmentNames')`;
//!   - `New-Item -Path -Force` (only when the key is missing);
//!   - `New-ItemProperty -Path -Name -PropertyType DWord|QWord|String|ExpandString|MultiString
//!     -Value -Force`;
//!   - `Remove-ItemProperty -Path -Name`.
//!
//! `exctl export` runs each kind's `export_script`, which uses the same cmdlets (AD
//! permissions of the users named on the organization, associations of the mailboxes
//! named, every receive connector, the known store limits) and reports IMAP settings
//! under `imap_settings:<host>`, POP3 settings under `pop_settings:<host>`, and policies under `throttling_policies:<name>` (the
//! listing under `throttling_policies:*`).
//!
//! Observation keys are `<kind>:<identity>` (`common::obs_key`) except three: IMAP
//! settings are reported under the host name, receive connector properties under the
//! connector's `Identity` (`SERVER\Name`, built by the script from server output), and
//! associations under the identity as written, with attribute names of their own
//! (`ThrottlingPolicyId`, `ThrottlingPolicyIdError`).

pub mod ad_permissions;
pub(crate) mod common;
pub mod protocol;
pub mod receive_connectors;
pub mod registry_values;
pub mod throttling_associations;
pub mod throttling_policies;

/// The IMAP4 row of [`protocol`], at the path its users name (`kinds::imap::PARAMS`).
pub mod imap {
    pub use super::protocol::IMAP4_PARAMS as PARAMS;
    pub use super::protocol::IMAP4_SERVICE as SERVICE;
}

/// The POP3 row of [`protocol`], at the path its users name (`kinds::pop::PARAMS`).
pub mod pop {
    pub use super::protocol::POP3_PARAMS as PARAMS;
    pub use super::protocol::POP3_SERVICE as SERVICE;
}

pub use ad_permissions::AdPermissions;
pub use protocol::{IMAP4, POP3, Protocol};
pub use receive_connectors::ReceiveConnectors;
pub use registry_values::RegistryValues;
pub use throttling_associations::ThrottlingAssociations;
pub use throttling_policies::ThrottlingPolicies;

use std::sync::OnceLock;

use crate::kind::{Kind, SettingsCmdlet};
use crate::services::Service;
use crate::value::ParamSpec;
use crate::version::Version;

/// Every kind exctl knows, in the order their changes run.
pub static ALL: &[&dyn Kind] = &[
    &AdPermissions,
    &ThrottlingPolicies,
    &ThrottlingAssociations,
    &ReceiveConnectors,
    &IMAP4,
    &POP3,
    &RegistryValues,
];

/// The parameters of one settings cmdlet that the schema knows in a release.
#[derive(Debug, Clone)]
pub struct CmdletParameters {
    /// The parameters a manifest may declare, with their types and ranges.
    pub managed: Vec<&'static ParamSpec>,
    /// Parameters the cmdlet has that exctl deliberately does not manage, with why.
    pub not_managed: Vec<(&'static str, &'static str)>,
}

/// A parameter exctl leaves alone: its name, the first release that has it, and why.
pub type NotManaged = (&'static str, Version, &'static str);

/// The settings cmdlets whose parameters the kinds type ([`Kind::settings_cmdlets`]: for
/// Exchange 2010 Set-ImapSettings, Set-PopSettings, Set-ReceiveConnector,
/// Set-ThrottlingPolicy and New-ThrottlingPolicy), in registry order.
pub fn settings_cmdlets() -> Vec<SettingsCmdlet> {
    ALL.iter().flat_map(|k| k.settings_cmdlets()).collect()
}

/// What the schema accepts for `cmdlet` in `version` (`None` for a cmdlet that is not one
/// of [`settings_cmdlets`]). The simulator has the same listing
/// (`exctl_sim::exchange::sp::parameters`); a test holds the two equal.
pub fn cmdlet_parameters(cmdlet: &str, version: Version) -> Option<CmdletParameters> {
    let c = settings_cmdlets()
        .into_iter()
        .find(|c| c.cmdlet.eq_ignore_ascii_case(cmdlet))?;
    Some(CmdletParameters {
        managed: c
            .params
            .iter()
            .filter(|p| p.since <= version && !c.skip.contains(&p.name))
            .collect(),
        not_managed: c
            .not_managed
            .iter()
            .filter(|(_, since, _)| *since <= version)
            .map(|(name, _, why)| (*name, *why))
            .collect(),
    })
}

/// Every service a registered kind's changes may require restarting, in restart order
/// (the Information Store, which disconnects everyone, last), each once.
pub fn services() -> &'static [Service] {
    static SERVICES: OnceLock<Vec<Service>> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let mut all: Vec<Service> = ALL.iter().flat_map(|k| k.services()).copied().collect();
        all.sort();
        all.dedup();
        all
    })
}

/// The kind for a manifest key.
pub fn by_key(key: &str) -> Option<&'static dyn Kind> {
    ALL.iter().copied().find(|k| k.key() == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::{ParseContext, Resource};
    use exctl_manifest::Diagnostics;

    /// One section of every kind, for the parse-once tests.
    const SECTIONS: &str = r#"
ad_permissions:
  - {target: organization, user: 'CONTOSO\svc-uccx', extended_rights: [ms-Exch-Store-Visible]}
throttling_policies:
  UCCX: {IMAPMaxConcurrency: unlimited}
throttling_associations:
  - {identity: svc-uccx, policy: UCCX}
receive_connectors:
  "*": {MaxHopCount: 10}
  EX02\Relay: {MaxHopCount: 20}
imap_settings: {MaxConnectionsPerUser: 40}
pop_settings: {MaxConnectionsPerUser: 40}
registry_values:
  - {path: 'HKLM:\SOFTWARE\Contoso', name: Flag, type: dword, value: 1}
"#;

    #[test]
    fn a_section_parsed_once_expands_to_each_hosts_resources() {
        let (_, docs, d) = exctl_manifest::parse_str("site.yaml", SECTIONS);
        assert!(d.is_empty(), "{d:?}");
        let hosts = ["EX01", "EX02"];
        let ctx = ParseContext::new(
            Version::Sp3,
            hosts.iter().map(|h| h.to_string()).collect(),
            "site.yaml",
        );
        for kind in ALL {
            let node = docs[0]
                .root
                .get(kind.key())
                .expect("a section of every kind");
            let mut diags = Diagnostics::new();
            let declared = kind.parse(node, &ctx, &mut diags);
            assert!(diags.is_empty(), "{}: {diags:?}", kind.key());
            let per_host: Vec<Vec<Resource>> = hosts
                .iter()
                .map(|h| kind.expand(&declared, h, &mut diags))
                .collect();
            assert!(diags.is_empty(), "{}: {diags:?}", kind.key());
            let ids = |rs: &[Resource]| rs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
            // The identities a parse per host gave.
            let want: [Vec<&str>; 2] = match kind.key() {
                "imap_settings" | "pop_settings" => [vec!["EX01"], vec!["EX02"]],
                "receive_connectors" => [vec!["EX01\\*"], vec!["EX02\\*", "EX02\\Relay"]],
                "registry_values" => [
                    vec!["HKLM:\\SOFTWARE\\Contoso\\Flag"],
                    vec!["HKLM:\\SOFTWARE\\Contoso\\Flag"],
                ],
                "throttling_policies" => [vec!["UCCX"], vec!["UCCX"]],
                "throttling_associations" => [vec!["svc-uccx"], vec!["svc-uccx"]],
                "ad_permissions" => [
                    vec!["organization: CONTOSO\\svc-uccx allow ms-Exch-Store-Visible"],
                    vec!["organization: CONTOSO\\svc-uccx allow ms-Exch-Store-Visible"],
                ],
                other => panic!("no expectation for {other}"),
            };
            for (got, want) in per_host.iter().zip(&want) {
                assert_eq!(ids(got), *want, "{}", kind.key());
                assert!(
                    got.iter()
                        .all(|r| r.kind == kind.key() && !r.attrs.is_empty())
                );
            }
            // Host-independent kinds expand to the very same resources on every host.
            if !matches!(
                kind.key(),
                "imap_settings" | "pop_settings" | "receive_connectors"
            ) {
                assert_eq!(per_host[0], per_host[1], "{}", kind.key());
            }
        }
    }

    #[test]
    fn kinds_are_registered_in_plan_order_with_their_reasons() {
        let keys: Vec<(&str, u32)> = ALL.iter().map(|k| (k.key(), k.order().phase)).collect();
        assert_eq!(
            keys,
            [
                ("ad_permissions", 10),
                ("throttling_policies", 20),
                ("throttling_associations", 30),
                ("receive_connectors", 40),
                ("imap_settings", 50),
                ("pop_settings", 55),
                ("registry_values", 60),
            ]
        );
        for k in ALL {
            assert!(!k.order().reason.is_empty());
            // Keys are unique: the registry finds each kind by its own key.
            assert!(by_key(k.key()).is_some_and(|found| std::ptr::addr_eq(found, *k)));
        }
    }

    #[test]
    fn every_kind_carries_its_schema_help_and_cmdlets() {
        for k in ALL {
            let schema = k.schema();
            assert!(
                matches!(schema["type"].as_str(), Some("object" | "array")),
                "{}: {schema}",
                k.key()
            );
            assert!(k.help().ends_with('.'), "{}: a sentence", k.key());
            let mut c = k.cmdlets().to_vec();
            c.sort_unstable();
            c.dedup();
            assert_eq!(c.len(), k.cmdlets().len(), "{}: each once", k.key());
            assert!(
                c.iter().all(|n| n.contains('-') && !n.contains(' ')),
                "{}: {c:?}",
                k.key()
            );
        }
    }
}
