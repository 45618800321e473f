//! The cmdlets the model provides: their parameter tables as data, per service pack,
//! for the binding layer to declare to the interpreter, and [`invoke`], which runs one
//! cmdlet with already-bound parameters against the model.
//!
//! Tables list the parameters the simulator models. For the Set-/New- cmdlets of
//! settings objects, the property parameters come from the property tables (`props`), so
//! a parameter missing from a release (CPAMaxConcurrency on RTM) is absent from that
//! release's table and refused with PowerShell's own text. Set-Mailbox lists only the
//! parameters modelled here (Identity, ThrottlingPolicy, DisplayName and the common
//! Exchange ones), so other real parameters are refused: a known limit.
//!
//! The common parameters (ErrorAction, WarningAction, Verbose, ...) are the
//! interpreter's and are ignored here ([`COMMON_PARAMETERS`]).
//!
//! [`invoke`] returns objects, warnings (Exchange writes several: "no settings ...
//! modified", "The appropriate access control entry is already present...") and, for
//! the service cmdlets, the simulated time the cmdlet returns at (Restart-Service waits
//! for the service to run again). Pipeline input binds by property name
//! (`Get-OrganizationConfig | Get-ADPermission`, `Get-Mailbox | Set-Mailbox`,
//! `Get-ADPermission | Remove-ADPermission` through `-Instance`), one run per object;
//! the first error stops the run.

use super::clock::SimTime;
use super::error::{ErrorCategory, ExchangeError};
use super::eventlog::Level;
use super::props::{self, PropDef};
use super::registry;
use super::sp::Sp;
use super::value::{SimObject, SimValue, TimeSpan, Unlimited};
use super::{EventQuery, ExchangeOrg, connector, protocol_settings, throttling};

/// The Exchange snap-in name.
pub const EXCHANGE_SNAPIN: &str = "Microsoft.Exchange.Management.PowerShell.E2010";

/// PowerShell's common parameters, accepted by every cmdlet and handled by the
/// interpreter.
pub const COMMON_PARAMETERS: &[&str] = &[
    "Verbose",
    "Debug",
    "ErrorAction",
    "WarningAction",
    "ErrorVariable",
    "WarningVariable",
    "OutVariable",
    "OutBuffer",
];

/// A parameter's .NET type, as far as binding needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `String`.
    String,
    /// `String[]`.
    StringArray,
    /// `Int32`.
    Int32,
    /// `Int64[]` (Get-EventLog -InstanceId).
    Int64Array,
    /// `Nullable<UInt32>` (throttling values; `$null` allowed).
    NullableUInt32,
    /// `Boolean` (`$true`/`$false`).
    Boolean,
    /// `SwitchParameter`.
    Switch,
    /// `EnhancedTimeSpan`.
    EnhancedTimeSpan,
    /// `ByteQuantifiedSize`.
    ByteQuantifiedSize,
    /// `Unlimited<...>`.
    Unlimited,
    /// `MultiValuedProperty<...>`.
    MultiValued,
    /// An enum (the binding layer passes the text).
    Enum,
    /// An Exchange identity parameter (`ServerIdParameter`, `MailboxIdParameter`...).
    Identity(&'static str),
    /// `Object` (any value).
    Object,
    /// `DateTime`.
    DateTime,
    /// `Fqdn`.
    Fqdn,
}

/// How a parameter takes pipeline input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    /// Not from the pipeline.
    No,
    /// The piped object itself.
    ByValue,
    /// A property of the piped object with the parameter's name.
    ByPropertyName,
    /// Both.
    ByValueAndPropertyName,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// Mandatory (in every parameter set the simulator models).
    pub mandatory: bool,
    /// Its position (0-based), if positional.
    pub position: Option<u8>,
    /// Pipeline binding.
    pub pipeline: Pipeline,
    /// The release that added it.
    pub since: Sp,
}

/// Where a cmdlet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// Windows PowerShell's own cmdlets (always there).
    Core,
    /// The Exchange snap-in / remote session.
    Exchange,
}

/// One cmdlet and the parameters it has in one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdletSpec {
    /// `Set-ImapSettings`.
    pub name: &'static str,
    /// Where it comes from.
    pub module: Module,
    /// The implementing class, as FullyQualifiedErrorIds name it
    /// (`Microsoft.Exchange.Management.SystemConfigurationTasks.RemoveThrottlingPolicy`,
    /// `Microsoft.PowerShell.Commands.GetItemPropertyCommand`).
    pub class: String,
    /// Its parameters (already filtered for the release).
    pub params: Vec<ParamSpec>,
}

impl CmdletSpec {
    /// A parameter by exact name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

const fn p(name: &'static str, ty: ParamType) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        mandatory: false,
        position: None,
        pipeline: Pipeline::No,
        since: Sp::Rtm,
    }
}

const fn pos(
    name: &'static str,
    ty: ParamType,
    position: u8,
    mandatory: bool,
    pipeline: Pipeline,
) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        mandatory,
        position: Some(position),
        pipeline,
        since: Sp::Rtm,
    }
}

use ParamType as T;
use Pipeline as P;

const CONFIRM: ParamSpec = p("Confirm", T::Switch);
const WHATIF: ParamSpec = p("WhatIf", T::Switch);
const DC: ParamSpec = p("DomainController", T::Fqdn);

/// The cmdlet tables without the property-derived parameters.
fn base_table() -> Vec<(&'static str, Module, Vec<ParamSpec>)> {
    use Module::{Core, Exchange};
    let mut table = vec![
        (
            "Add-PSSnapin",
            Core,
            vec![
                pos("Name", T::StringArray, 0, true, P::ByPropertyName),
                p("PassThru", T::Switch),
            ],
        ),
        (
            "Get-ExchangeServer",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ServerIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                DC,
                p("Domain", T::Fqdn),
                p("Status", T::Switch),
            ],
        ),
        (
            "Get-ReceiveConnector",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ReceiveConnectorIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p("Server", T::Identity("ServerIdParameter")),
                DC,
            ],
        ),
        (
            "Set-ReceiveConnector",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ReceiveConnectorIdParameter"),
                    0,
                    true,
                    P::ByValueAndPropertyName,
                ),
                p("Name", T::String),
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        (
            "Get-ThrottlingPolicy",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ThrottlingPolicyIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                DC,
                p("Organization", T::Identity("OrganizationIdParameter")),
            ],
        ),
        (
            "New-ThrottlingPolicy",
            Exchange,
            vec![
                pos("Name", T::String, 0, true, P::No),
                CONFIRM,
                WHATIF,
                DC,
                p("Organization", T::Identity("OrganizationIdParameter")),
            ],
        ),
        (
            "Set-ThrottlingPolicy",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ThrottlingPolicyIdParameter"),
                    0,
                    true,
                    P::ByValueAndPropertyName,
                ),
                p("Name", T::String),
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        (
            "Remove-ThrottlingPolicy",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ThrottlingPolicyIdParameter"),
                    0,
                    true,
                    P::ByValueAndPropertyName,
                ),
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        (
            "Get-ThrottlingPolicyAssociation",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ThrottlingPolicyAssociationIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p(
                    "ThrottlingPolicy",
                    T::Identity("ThrottlingPolicyIdParameter"),
                ),
                p("ResultSize", T::Unlimited),
                DC,
            ],
        ),
        (
            "Set-ThrottlingPolicyAssociation",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ThrottlingPolicyAssociationIdParameter"),
                    0,
                    true,
                    P::ByValueAndPropertyName,
                ),
                p(
                    "ThrottlingPolicy",
                    T::Identity("ThrottlingPolicyIdParameter"),
                ),
                p("IgnoreDefaultScope", T::Switch),
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        (
            "Get-Mailbox",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("MailboxIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p("ResultSize", T::Unlimited),
                p("Server", T::Identity("ServerIdParameter")),
                DC,
            ],
        ),
        (
            "Set-Mailbox",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("MailboxIdParameter"),
                    0,
                    true,
                    P::ByValueAndPropertyName,
                ),
                p(
                    "ThrottlingPolicy",
                    T::Identity("ThrottlingPolicyIdParameter"),
                ),
                p("DisplayName", T::String),
                p("Force", T::Switch),
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        ("Get-OrganizationConfig", Exchange, vec![DC]),
        (
            "Get-ADPermission",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ADRawEntryIdParameter"),
                    0,
                    true,
                    P::ByValueAndPropertyName,
                ),
                p("User", T::Identity("SecurityPrincipalIdParameter")),
                p("Owner", T::Switch),
                DC,
            ],
        ),
        (
            "Add-ADPermission",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ADRawEntryIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p("User", T::Identity("SecurityPrincipalIdParameter")),
                p("AccessRights", T::StringArray),
                p("ExtendedRights", T::StringArray),
                p("InheritanceType", T::Enum),
                p("InheritedObjectType", T::String),
                p("ChildObjectTypes", T::StringArray),
                p("Properties", T::StringArray),
                p("Deny", T::Switch),
                ParamSpec {
                    pipeline: P::ByValue,
                    ..p("Instance", T::Object)
                },
                p("Owner", T::Identity("SecurityPrincipalIdParameter")),
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        (
            "Remove-ADPermission",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("ADRawEntryIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p("User", T::Identity("SecurityPrincipalIdParameter")),
                p("AccessRights", T::StringArray),
                p("ExtendedRights", T::StringArray),
                p("InheritanceType", T::Enum),
                p("InheritedObjectType", T::String),
                p("ChildObjectTypes", T::StringArray),
                p("Properties", T::StringArray),
                p("Deny", T::Switch),
                ParamSpec {
                    pipeline: P::ByValue,
                    ..p("Instance", T::Object)
                },
                CONFIRM,
                WHATIF,
                DC,
            ],
        ),
        (
            "Get-MailboxDatabase",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("DatabaseIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p("Server", T::Identity("ServerIdParameter")),
                p("Status", T::Switch),
                DC,
            ],
        ),
        (
            "Get-MailboxDatabaseCopyStatus",
            Exchange,
            vec![
                pos(
                    "Identity",
                    T::Identity("DatabaseCopyIdParameter"),
                    0,
                    false,
                    P::ByValueAndPropertyName,
                ),
                p("Server", T::Identity("MailboxServerIdParameter")),
                p("Active", T::Switch),
                p("Local", T::Switch),
                DC,
            ],
        ),
        (
            "Get-WmiObject",
            Core,
            vec![
                pos("Class", T::String, 0, false, P::No),
                pos("Property", T::StringArray, 1, false, P::No),
                p("Filter", T::String),
                p("Namespace", T::String),
                p("ComputerName", T::StringArray),
            ],
        ),
        (
            "Get-Process",
            Core,
            vec![
                pos("Name", T::StringArray, 0, false, P::ByPropertyName),
                ParamSpec {
                    pipeline: P::ByPropertyName,
                    ..p("Id", T::Int64Array)
                },
                p("ComputerName", T::StringArray),
            ],
        ),
        (
            "Get-ItemProperty",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByPropertyName),
                pos("Name", T::StringArray, 1, false, P::No),
            ],
        ),
        (
            "Set-ItemProperty",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByPropertyName),
                pos("Name", T::String, 1, true, P::ByPropertyName),
                pos("Value", T::Object, 2, false, P::ByPropertyName),
                p("Type", T::Enum),
                p("Force", T::Switch),
                p("PassThru", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "New-ItemProperty",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByPropertyName),
                pos("Name", T::String, 1, true, P::ByPropertyName),
                p("PropertyType", T::Enum),
                p("Value", T::Object),
                p("Force", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Remove-ItemProperty",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByPropertyName),
                pos("Name", T::StringArray, 1, true, P::ByPropertyName),
                p("Force", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Get-Item",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByValueAndPropertyName),
                p("Force", T::Switch),
            ],
        ),
        (
            "Test-Path",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByValueAndPropertyName),
                p("PathType", T::Enum),
                p("IsValid", T::Switch),
            ],
        ),
        (
            "New-Item",
            Core,
            vec![
                pos("Path", T::StringArray, 0, true, P::ByPropertyName),
                p("Name", T::String),
                p("ItemType", T::String),
                p("Value", T::Object),
                p("Force", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Get-Service",
            Core,
            vec![
                pos("Name", T::StringArray, 0, false, P::ByValueAndPropertyName),
                p("DisplayName", T::StringArray),
                p("ComputerName", T::StringArray),
                p("DependentServices", T::Switch),
            ],
        ),
        (
            "ConvertTo-SecureString",
            Core,
            vec![
                pos("String", T::String, 0, true, P::ByValue),
                p("AsPlainText", T::Switch),
                p("Force", T::Switch),
            ],
        ),
        (
            "New-PSSession",
            Core,
            vec![
                p("ConfigurationName", T::String),
                pos("ConnectionUri", T::String, 0, false, P::No),
                p("Authentication", T::String),
                p("Credential", T::Object),
                p("Name", T::String),
                p("AllowRedirection", T::Switch),
                p("SessionOption", T::Object),
            ],
        ),
        (
            "Import-PSSession",
            Core,
            vec![
                pos("Session", T::Object, 0, true, P::No),
                p("DisableNameChecking", T::Switch),
                p("AllowClobber", T::Switch),
                p("CommandName", T::StringArray),
                p("Prefix", T::String),
            ],
        ),
        (
            "Read-Host",
            Core,
            vec![
                pos("Prompt", T::String, 0, false, P::No),
                p("AsSecureString", T::Switch),
            ],
        ),
        (
            "Get-PSSnapin",
            Core,
            vec![
                pos("Name", T::StringArray, 0, false, P::No),
                p("Registered", T::Switch),
            ],
        ),
        (
            "Remove-PSSession",
            Core,
            vec![pos("Session", T::Object, 0, false, P::ByValue)],
        ),
        (
            "Restart-Service",
            Core,
            vec![
                pos("Name", T::StringArray, 0, true, P::ByValueAndPropertyName),
                p("Force", T::Switch),
                p("PassThru", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Start-Service",
            Core,
            vec![
                pos("Name", T::StringArray, 0, true, P::ByValueAndPropertyName),
                p("PassThru", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Set-Service",
            Core,
            vec![
                pos("Name", T::String, 0, true, P::ByValueAndPropertyName),
                p("StartupType", T::String),
                p("PassThru", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Stop-Service",
            Core,
            vec![
                pos("Name", T::StringArray, 0, true, P::ByValueAndPropertyName),
                p("Force", T::Switch),
                p("PassThru", T::Switch),
                CONFIRM,
                WHATIF,
            ],
        ),
        (
            "Get-EventLog",
            Core,
            vec![
                pos("LogName", T::String, 0, true, P::No),
                pos("InstanceId", T::Int64Array, 1, false, P::No),
                p("Source", T::StringArray),
                p("EntryType", T::StringArray),
                p("Newest", T::Int32),
                p("After", T::DateTime),
                p("ComputerName", T::StringArray),
            ],
        ),
    ];
    // The protocol settings cmdlets, after Get-ExchangeServer as Exchange lists them: the
    // getter by -Server, the setter by -Server from the pipeline too.
    let protocols = protocol_settings::PROTOCOLS.iter().flat_map(|proto| {
        [
            (
                proto.get,
                Exchange,
                vec![p("Server", T::Identity("ServerIdParameter")), DC],
            ),
            (
                proto.set,
                Exchange,
                vec![
                    ParamSpec {
                        pipeline: P::ByValueAndPropertyName,
                        ..p("Server", T::Identity("ServerIdParameter"))
                    },
                    CONFIRM,
                    WHATIF,
                    DC,
                ],
            ),
        ]
    });
    let at = table
        .iter()
        .position(|row| row.0 == "Get-ExchangeServer")
        .map_or(table.len(), |i| i + 1);
    table.splice(at..at, protocols);
    table
}

fn prop_params(defs: &[PropDef], skip: &[&str]) -> Vec<ParamSpec> {
    defs.iter()
        .filter(|d| d.settable && !skip.contains(&d.name))
        .map(|d| ParamSpec {
            since: d.since,
            ty: match d.kind {
                props::Kind::Int { .. } => T::Int32,
                props::Kind::NullableUInt { .. } => T::NullableUInt32,
                props::Kind::Bool => T::Boolean,
                props::Kind::Str => T::String,
                props::Kind::Unlimited { .. } | props::Kind::UnlimitedBytes => T::Unlimited,
                props::Kind::Bytes { .. } => T::ByteQuantifiedSize,
                props::Kind::Span { .. } => T::EnhancedTimeSpan,
                props::Kind::Enum(_) | props::Kind::Flags(_) => T::Enum,
                props::Kind::Multi => T::MultiValued,
            },
            ..p(d.name, T::String)
        })
        .collect()
}

/// The implementing class of a cmdlet. Exchange's recipient cmdlets live in
/// `RecipientTasks` (Get-Mailbox, Add-ADPermission), the others in
/// `SystemConfigurationTasks` (RemoveThrottlingPolicy, as a real error id shows).
fn class_name(name: &str, module: Module) -> String {
    let joined: String = name.split('-').collect();
    match module {
        Module::Core => format!("Microsoft.PowerShell.Commands.{joined}Command"),
        Module::Exchange => {
            let noun = name.split_once('-').map_or(name, |(_, n)| n);
            let ns = match noun {
                "Mailbox" | "ADPermission" | "ThrottlingPolicyAssociation" => "RecipientTasks",
                _ => "SystemConfigurationTasks",
            };
            format!("Microsoft.Exchange.Management.{ns}.{joined}")
        }
    }
}

/// Every cmdlet with its parameters in `sp`.
pub fn cmdlet_specs(sp: Sp) -> Vec<CmdletSpec> {
    specs_of(sp).to_vec()
}

/// The tables of a release, built once: a script calls cmdlets thousands of times.
fn specs_of(sp: Sp) -> &'static [CmdletSpec] {
    static TABLES: [std::sync::OnceLock<Vec<CmdletSpec>>; 4] = [
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
    ];
    let i = match sp {
        Sp::Rtm => 0,
        Sp::Sp1 => 1,
        Sp::Sp2 => 2,
        Sp::Sp3 => 3,
    };
    TABLES[i].get_or_init(|| build_specs(sp))
}

fn build_specs(sp: Sp) -> Vec<CmdletSpec> {
    base_table()
        .into_iter()
        .map(|(name, module, mut params)| {
            match name {
                n if let Some((p, true)) = protocol_settings::by_cmdlet(n) => {
                    params.extend(prop_params(p.props, &[]))
                }
                "Set-ReceiveConnector" => params.extend(prop_params(connector::RC_PROPS, &[])),
                "Set-ThrottlingPolicy" => params.extend(prop_params(throttling::TP_PROPS, &[])),
                "New-ThrottlingPolicy" => {
                    params.extend(prop_params(throttling::TP_PROPS, throttling::DEFAULT_ONLY))
                }
                _ => {}
            }
            params.retain(|p| p.since <= sp);
            CmdletSpec {
                name,
                module,
                class: class_name(name, module),
                params,
            }
        })
        .collect()
}

/// One cmdlet's table in `sp`.
pub fn cmdlet_spec(name: &str, sp: Sp) -> Option<CmdletSpec> {
    specs_of(sp)
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .cloned()
}

/// What a cmdlet produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CmdletOutput {
    /// Output objects.
    pub objects: Vec<SimObject>,
    /// Primitive output values (Test-Path's Booleans), in order after `objects`.
    pub values: Vec<SimValue>,
    /// Warnings (the text after `WARNING: `).
    pub warnings: Vec<String>,
    /// The simulated time the cmdlet returns at, when it waits (Restart-Service): the
    /// binding layer sleeps `clock.real_duration(wait_until - now)` before finishing.
    pub wait_until: Option<SimTime>,
}

/// Bound arguments, resolved to the table's spelling.
struct Args<'a> {
    cmdlet: &'a str,
    values: Vec<(&'static str, SimValue)>,
}

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&SimValue> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.is_null())
            .map(SimValue::to_text)
    }

    fn texts(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| v.items().iter().map(SimValue::to_text).collect())
            .unwrap_or_default()
    }

    fn switch(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v.as_bool().unwrap_or(true))
    }

    fn required(&self, name: &str) -> Result<String, ExchangeError> {
        self.text(name)
            .ok_or_else(|| ExchangeError::missing_mandatory(&[name], self.cmdlet))
    }

    /// The property parameters (everything not in `skip`).
    fn rest(&self, skip: &[&str]) -> Vec<(String, SimValue)> {
        self.values
            .iter()
            .filter(|(n, _)| !skip.iter().any(|s| s.eq_ignore_ascii_case(n)))
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }
}

const NON_PROPERTY: &[&str] = &[
    "Identity",
    "Server",
    "Confirm",
    "WhatIf",
    "DomainController",
    "Organization",
    "Name",
];

/// Resolves argument names against the table: exact, then a unique prefix, as
/// PowerShell does; unknown names get PowerShell's exact text.
fn bind(
    spec: &CmdletSpec,
    args: &[(String, SimValue)],
) -> Result<Vec<(&'static str, SimValue)>, ExchangeError> {
    let mut out = Vec::new();
    for (name, value) in args {
        let n = name.trim_start_matches('-');
        if COMMON_PARAMETERS.iter().any(|c| c.eq_ignore_ascii_case(n)) {
            continue;
        }
        let found = match spec.param(n) {
            Some(p) => p.name,
            None => {
                let lower = n.to_ascii_lowercase();
                let hits: Vec<&ParamSpec> = spec
                    .params
                    .iter()
                    .filter(|p| !n.is_empty() && p.name.to_ascii_lowercase().starts_with(&lower))
                    .collect();
                match hits.as_slice() {
                    [one] => one.name,
                    [] => return Err(ExchangeError::parameter_not_found(n, spec.name)),
                    many => {
                        let names: Vec<String> =
                            many.iter().map(|p| format!("-{}", p.name)).collect();
                        return Err(ExchangeError::new(
                            format!(
                                "Parameter cannot be processed because the parameter name '{n}' is ambiguous. Possible matches include: {}.",
                                names.join(" ")
                            ),
                            ErrorCategory::InvalidArgument,
                            "ParameterBindingException",
                            format!("AmbiguousParameter,{}", spec.name),
                        ));
                    }
                }
            }
        };
        out.push((found, value.clone()));
    }
    Ok(out)
}

/// Runs one cmdlet. `args` are the bound named parameters (positional ones already
/// named by the interpreter from the table), `pipeline` the objects piped in.
pub fn invoke(
    org: &mut ExchangeOrg,
    cmdlet: &str,
    args: &[(String, SimValue)],
    pipeline: &[SimObject],
) -> Result<CmdletOutput, ExchangeError> {
    let spec = cmdlet_spec(cmdlet, org.sp).ok_or_else(|| {
        ExchangeError::new(
            format!(
                "The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
            ),
            ErrorCategory::ObjectNotFound,
            "CommandNotFoundException",
            "CommandNotFoundException",
        )
    })?;
    org.count_cmdlet(spec.name);
    run_all(org, &spec, args, pipeline).map_err(|e| complete_fqid(e, &spec))
}

/// Exchange errors carry "<code>,<task class>"; fill in the class where the model left
/// the id empty.
fn complete_fqid(e: ExchangeError, spec: &CmdletSpec) -> ExchangeError {
    if !e.fully_qualified_error_id.is_empty() {
        return e;
    }
    let id = super::error::exchange_fqid(None, &e.reason, &spec.class);
    e.with_fqid(id)
}

fn run_all(
    org: &mut ExchangeOrg,
    spec: &CmdletSpec,
    args: &[(String, SimValue)],
    pipeline: &[SimObject],
) -> Result<CmdletOutput, ExchangeError> {
    let spec = spec.clone();
    let bound = bind(&spec, args)?;
    org.settle();
    if pipeline.is_empty() {
        return run(
            org,
            &spec,
            Args {
                cmdlet: spec.name,
                values: bound,
            },
        );
    }
    let mut total = CmdletOutput::default();
    for obj in pipeline {
        let mut values = bound.clone();
        for ps in &spec.params {
            if ps.pipeline == Pipeline::No || values.iter().any(|(n, _)| *n == ps.name) {
                continue;
            }
            if ps.name == "Instance" {
                values.push(("Instance", SimValue::Null));
                continue;
            }
            let from = match ps.name {
                "Path" => obj.get("PSPath").or_else(|| obj.get("Path")),
                name => obj.get(name),
            };
            if let Some(v) = from {
                values.push((ps.name, v.clone()));
            }
        }
        let out = run_with_instance(
            org,
            &spec,
            Args {
                cmdlet: spec.name,
                values,
            },
            Some(obj),
        )?;
        total.objects.extend(out.objects);
        total.values.extend(out.values);
        total.warnings.extend(out.warnings);
        total.wait_until = total.wait_until.max(out.wait_until);
    }
    Ok(total)
}

fn run(
    org: &mut ExchangeOrg,
    spec: &CmdletSpec,
    a: Args<'_>,
) -> Result<CmdletOutput, ExchangeError> {
    run_with_instance(org, spec, a, None)
}

fn objects(objects: Vec<SimObject>) -> CmdletOutput {
    CmdletOutput {
        objects,
        ..CmdletOutput::default()
    }
}

fn warnings(warnings: Vec<String>) -> CmdletOutput {
    CmdletOutput {
        warnings,
        ..CmdletOutput::default()
    }
}

fn missing(spec: &CmdletSpec, a: &Args<'_>) -> Result<(), ExchangeError> {
    let absent: Vec<&str> = spec
        .params
        .iter()
        .filter(|p| p.mandatory && a.get(p.name).is_none())
        .map(|p| p.name)
        .collect();
    if absent.is_empty() {
        Ok(())
    } else {
        Err(ExchangeError::missing_mandatory(&absent, spec.name))
    }
}

/// The file-system paths the simulated host has (for Test-Path on non-registry paths).
const KNOWN_DIRS: &[&str] = &[
    "c:\\",
    "c:\\windows",
    "c:\\windows\\system32",
    "c:\\program files",
    "c:\\program files\\microsoft\\exchange server\\v14",
    "c:\\program files\\microsoft\\exchange server\\v14\\bin",
    "c:\\program files\\microsoft\\exchange server\\v14\\scripts",
    "c:\\program files\\microsoft\\exchange server\\v14\\logging\\imap4",
];

fn run_with_instance(
    org: &mut ExchangeOrg,
    spec: &CmdletSpec,
    a: Args<'_>,
    instance: Option<&SimObject>,
) -> Result<CmdletOutput, ExchangeError> {
    let what_if = a.switch("WhatIf");
    // Add-/Remove-ADPermission may take everything from -Instance.
    if !(spec.name.ends_with("ADPermission") && instance.is_some()) {
        missing(spec, &a)?;
    }
    match spec.name {
        "Add-PSSnapin" => {
            for name in a.texts("Name") {
                if !name.eq_ignore_ascii_case(EXCHANGE_SNAPIN)
                    && !name
                        .eq_ignore_ascii_case("Microsoft.Exchange.Management.PowerShell.Support")
                {
                    return Err(ExchangeError::new(
                        format!("The Windows PowerShell snap-in '{name}' is not installed on this machine."),
                        ErrorCategory::InvalidArgument,
                        "PSArgumentException",
                        "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand",
                    )
                    .with_target(name));
                }
            }
            org.count_exchange_session();
            Ok(CmdletOutput::default())
        }
        "Get-ExchangeServer" => Ok(objects(
            org.get_exchange_server(a.text("Identity").as_deref())?,
        )),
        n if let Some((p, set)) = protocol_settings::by_cmdlet(n) => {
            let server = a.text("Server");
            if !set {
                return Ok(objects(vec![
                    org.get_protocol_settings(p, server.as_deref())?,
                ]));
            }
            if what_if {
                return Ok(CmdletOutput::default());
            }
            Ok(warnings(org.set_protocol_settings(
                p,
                server.as_deref(),
                &a.rest(NON_PROPERTY),
            )?))
        }
        "Set-Service" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let name = a.text("Name").unwrap_or_default();
            if let Some(t) = a.text("StartupType") {
                org.set_service_startup(&name, &t)?;
            }
            if a.switch("PassThru") {
                return Ok(objects(org.get_service(&[name])?));
            }
            Ok(CmdletOutput::default())
        }
        "Get-ReceiveConnector" => Ok(objects(
            org.get_receive_connector(a.text("Identity").as_deref(), a.text("Server").as_deref())?,
        )),
        "Set-ReceiveConnector" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let mut rest = a.rest(NON_PROPERTY);
            if let Some(n) = a.get("Name") {
                rest.push(("Name".to_string(), n.clone()));
            }
            Ok(warnings(
                org.set_receive_connector(&a.required("Identity")?, &rest)?,
            ))
        }
        "Get-ThrottlingPolicy" => Ok(objects(
            org.get_throttling_policy(a.text("Identity").as_deref())?,
        )),
        "New-ThrottlingPolicy" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            Ok(objects(vec![org.new_throttling_policy(
                &a.required("Name")?,
                &a.rest(NON_PROPERTY),
            )?]))
        }
        "Set-ThrottlingPolicy" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let mut rest = a.rest(NON_PROPERTY);
            if let Some(n) = a.get("Name") {
                rest.push(("Name".to_string(), n.clone()));
            }
            Ok(warnings(
                org.set_throttling_policy(&a.required("Identity")?, &rest)?,
            ))
        }
        "Remove-ThrottlingPolicy" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            org.remove_throttling_policy(&a.required("Identity")?)?;
            Ok(CmdletOutput::default())
        }
        "Get-ThrottlingPolicyAssociation" => {
            let id = match a.text("Identity") {
                Some(id) => id,
                None => {
                    // Without -Identity: every association (of the policy, if given).
                    let policy = a.text("ThrottlingPolicy");
                    let mut out = Vec::new();
                    let names: Vec<String> =
                        org.mailboxes.iter().map(|m| m.alias.clone()).collect();
                    for n in names {
                        let o = org.get_throttling_policy_association(&n)?;
                        if policy
                            .as_deref()
                            .is_none_or(|p| o.text("ThrottlingPolicyId").eq_ignore_ascii_case(p))
                        {
                            out.push(o);
                        }
                    }
                    return Ok(objects(out));
                }
            };
            Ok(objects(vec![org.get_throttling_policy_association(&id)?]))
        }
        "Set-ThrottlingPolicyAssociation" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let policy = a.get("ThrottlingPolicy").cloned().unwrap_or(SimValue::Null);
            Ok(warnings(org.set_throttling_policy_association(
                &a.required("Identity")?,
                &policy,
            )?))
        }
        "Get-Mailbox" => {
            let rs = match a.get("ResultSize") {
                Some(v) => Some(Unlimited::parse(v).ok_or_else(|| {
                    ExchangeError::cannot_convert(
                        "ResultSize",
                        &v.to_text(),
                        "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
                        "Get-Mailbox",
                    )
                })?),
                None => None,
            };
            let (objs, w) = org.get_mailbox(a.text("Identity").as_deref(), rs)?;
            Ok(CmdletOutput {
                objects: objs,
                warnings: w,
                ..CmdletOutput::default()
            })
        }
        "Set-Mailbox" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let rest: Vec<(String, SimValue)> =
                a.rest(&["Identity", "Confirm", "WhatIf", "DomainController", "Force"]);
            Ok(warnings(org.set_mailbox(&a.required("Identity")?, &rest)?))
        }
        "Get-OrganizationConfig" => Ok(objects(vec![org.get_organization_config()])),
        "Get-ADPermission" => Ok(objects(
            org.get_ad_permission(&a.required("Identity")?, a.text("User").as_deref())?,
        )),
        "Add-ADPermission" | "Remove-ADPermission" => {
            // -Instance (a Get-ADPermission object) supplies what was not given.
            let inst = instance.filter(|o| o.get("User").is_some());
            let from = |name: &str| -> Vec<String> {
                let given = a.texts(name);
                if !given.is_empty() {
                    return given;
                }
                inst.and_then(|o| o.get(name))
                    .map(|v| v.items().iter().map(SimValue::to_text).collect())
                    .unwrap_or_default()
            };
            let identity = a
                .text("Identity")
                .or_else(|| inst.map(|o| o.text("Identity")))
                .ok_or_else(|| ExchangeError::missing_mandatory(&["Identity"], spec.name))?;
            let user = a
                .text("User")
                .or_else(|| inst.map(|o| o.text("User")))
                .ok_or_else(|| ExchangeError::missing_mandatory(&["User"], spec.name))?;
            let inheritance = a
                .text("InheritanceType")
                .or_else(|| inst.map(|o| o.text("InheritanceType")));
            let deny = a.switch("Deny")
                || inst.is_some_and(|o| o.get("Deny") == Some(&SimValue::Bool(true)));
            let ace = org.build_ace(
                &user,
                &from("AccessRights"),
                &from("ExtendedRights"),
                inheritance.as_deref(),
                deny,
            )?;
            if what_if {
                return Ok(CmdletOutput::default());
            }
            if spec.name == "Add-ADPermission" {
                let (objs, w) = org.add_ad_permission(&identity, ace)?;
                Ok(CmdletOutput {
                    objects: objs,
                    warnings: w,
                    ..CmdletOutput::default()
                })
            } else {
                Ok(warnings(org.remove_ad_permission(&identity, ace)?))
            }
        }
        "Get-MailboxDatabase" => Ok(objects(org.get_mailbox_database(
            a.text("Identity").as_deref(),
            a.text("Server").as_deref(),
            a.switch("Status"),
        )?)),
        "Get-MailboxDatabaseCopyStatus" => Ok(objects(org.get_mailbox_database_copy_status(
            a.text("Identity").as_deref(),
            a.text("Server").as_deref(),
        )?)),
        "Get-WmiObject" => {
            let class = a.text("Class").unwrap_or_default();
            let namespace = a.text("Namespace").unwrap_or_else(|| "root\\cimv2".into());
            if !namespace.eq_ignore_ascii_case("root\\cimv2")
                || !class.eq_ignore_ascii_case("Win32_Service")
            {
                // The simulated host's WMI has Win32_Service only.
                return Err(ExchangeError::new(
                    "Invalid class ",
                    ErrorCategory::InvalidOperation,
                    "ManagementException",
                    "GetWMIManagementException,Microsoft.PowerShell.Commands.GetWmiObjectCommand",
                ));
            }
            let filter = match a.text("Filter") {
                Some(f) => Some(parse_wql_filter(&f).ok_or_else(|| {
                    ExchangeError::new(
                        "Invalid query ",
                        ErrorCategory::InvalidOperation,
                        "ManagementException",
                        "GetWMIManagementException,Microsoft.PowerShell.Commands.GetWmiObjectCommand",
                    )
                })?),
                None => None,
            };
            let filter = filter.as_ref().map(|(p, v)| (p.as_str(), v.as_str()));
            Ok(objects(org.get_wmi_services(filter)?))
        }
        "Get-Process" => {
            let mut ids = Vec::new();
            for v in a.get("Id").map(SimValue::items).unwrap_or_default() {
                ids.push(v.as_i64().ok_or_else(|| {
                    ExchangeError::cannot_convert("Id", &v.to_text(), "System.Int32", spec.name)
                })?);
            }
            Ok(objects(org.get_process(&ids, &a.texts("Name"))?))
        }
        "Get-ItemProperty" => {
            let names = a.texts("Name");
            let names = (!names.is_empty()).then_some(names);
            let reg = org
                .registry()
                .ok_or_else(|| ExchangeError::not_found("registry", ""))?;
            let mut out = Vec::new();
            for path in a.texts("Path") {
                out.push(reg.get_item_property(&path, names.as_deref())?);
            }
            Ok(objects(out))
        }
        "Set-ItemProperty" => {
            let kind = a
                .get("Type")
                .map(|t| registry::parse_kind(t, "Type", spec.name))
                .transpose()?;
            let value = a.get("Value").cloned().unwrap_or(SimValue::Null);
            let name = a.required("Name")?;
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let reg = org.registry_mut()?;
            let mut out = Vec::new();
            for path in a.texts("Path") {
                reg.set_item_property(&path, &name, &value, kind.as_deref())?;
                if a.switch("PassThru") {
                    out.push(reg.get_item_property(&path, Some(std::slice::from_ref(&name)))?);
                }
            }
            Ok(objects(out))
        }
        "New-ItemProperty" => {
            let kind = a
                .get("PropertyType")
                .map(|t| registry::parse_kind(t, "PropertyType", spec.name))
                .transpose()?;
            let value = a.get("Value").cloned().unwrap_or(SimValue::Null);
            let name = a.required("Name")?;
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let force = a.switch("Force");
            let reg = org.registry_mut()?;
            let mut out = Vec::new();
            for path in a.texts("Path") {
                out.push(reg.new_item_property(&path, &name, kind.as_deref(), &value, force)?);
            }
            Ok(objects(out))
        }
        "Remove-ItemProperty" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let names = a.texts("Name");
            let reg = org.registry_mut()?;
            for path in a.texts("Path") {
                for n in &names {
                    reg.remove_item_property(&path, n)?;
                }
            }
            Ok(CmdletOutput::default())
        }
        "Get-Item" => {
            let reg = org
                .registry()
                .ok_or_else(|| ExchangeError::not_found("registry", ""))?;
            let mut out = Vec::new();
            for path in a.texts("Path") {
                if registry::parse_path(&path).is_some() {
                    out.push(reg.get_item(&path)?);
                    continue;
                }
                let dir = path.trim_end_matches('\\').to_ascii_lowercase();
                let known = KNOWN_DIRS
                    .iter()
                    .any(|d| d.trim_end_matches('\\') == dir.as_str());
                if !known {
                    return Err(ExchangeError::path_not_found(&path, "GetItemCommand"));
                }
                let full = path.trim_end_matches('\\').to_string();
                let name = full.rsplit('\\').next().unwrap_or(&full).to_string();
                out.push(SimObject {
                    type_names: vec![
                        "System.IO.DirectoryInfo".to_string(),
                        "System.IO.FileSystemInfo".to_string(),
                        "System.Object".to_string(),
                    ],
                    properties: vec![
                        ("Name".to_string(), SimValue::String(name)),
                        ("FullName".to_string(), SimValue::String(full)),
                        ("Mode".to_string(), SimValue::str("d----")),
                        ("PSIsContainer".to_string(), SimValue::Bool(true)),
                    ],
                });
            }
            Ok(objects(out))
        }
        "Test-Path" => {
            let reg = org
                .registry()
                .ok_or_else(|| ExchangeError::not_found("registry", ""))?;
            let leaf_only = a
                .text("PathType")
                .is_some_and(|t| t.eq_ignore_ascii_case("Leaf"));
            let out = a
                .texts("Path")
                .iter()
                .map(|path| {
                    let dir = path.trim_end_matches('\\').to_ascii_lowercase();
                    let dir_known = KNOWN_DIRS
                        .iter()
                        .any(|d| d.trim_end_matches('\\') == dir.as_str());
                    let found = reg.test_path(path) || dir_known;
                    // Registry keys and directories are containers, never leaves.
                    SimValue::Bool(found && !leaf_only)
                })
                .collect();
            Ok(CmdletOutput {
                values: out,
                ..CmdletOutput::default()
            })
        }
        "New-Item" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let force = a.switch("Force");
            let name = a.text("Name");
            let reg = org.registry_mut()?;
            let mut out = Vec::new();
            for path in a.texts("Path") {
                let full = match &name {
                    Some(n) => format!("{}\\{n}", path.trim_end_matches('\\')),
                    None => path,
                };
                out.push(reg.new_item(&full, force)?);
            }
            Ok(objects(out))
        }
        "Get-Service" if a.switch("DependentServices") => {
            Ok(objects(org.get_dependent_services(&a.texts("Name"))?))
        }
        "Get-Service" => Ok(objects(org.get_service(&a.texts("Name"))?)),
        "Restart-Service" | "Stop-Service" | "Start-Service" => {
            if what_if {
                return Ok(CmdletOutput::default());
            }
            let force = a.switch("Force");
            let mut wait = org.now();
            let names = a.texts("Name");
            for n in &names {
                let done = match spec.name {
                    "Restart-Service" => org.restart_service(None, n, force)?,
                    "Stop-Service" => org.stop_service(None, n, force)?,
                    _ => org.start_service(None, n)?,
                };
                wait = wait.max(done);
            }
            let mut out = CmdletOutput {
                wait_until: Some(wait),
                ..CmdletOutput::default()
            };
            // PowerShell warns while it waits (about every 2 s of waiting).
            let verb = if spec.name == "Stop-Service" {
                "stopping"
            } else {
                "starting"
            };
            let waited = wait.since(org.now()).as_secs();
            for n in names.iter().take(8) {
                for _ in 0..(waited / 2).min(30) {
                    let display = org
                        .servers
                        .iter()
                        .flat_map(|s| s.services.iter())
                        .find(|s| s.name.eq_ignore_ascii_case(n))
                        .map(|s| format!("{} ({})", s.display_name, s.name))
                        .unwrap_or_else(|| n.clone());
                    out.warnings.push(format!(
                        "Waiting for service '{display}' to finish {verb}..."
                    ));
                }
            }
            if a.switch("PassThru") {
                out.objects = org.get_service(&names)?;
            }
            Ok(out)
        }
        "Get-EventLog" => {
            let after = match a.get("After") {
                Some(SimValue::DateTime(t)) => Some(*t),
                Some(other) => Some(SimTime(
                    u64::try_from(other.as_i64().ok_or_else(|| {
                        ExchangeError::cannot_convert(
                            "After",
                            &other.to_text(),
                            "System.DateTime",
                            spec.name,
                        )
                    })?)
                    .unwrap_or(0),
                )),
                None => None,
            };
            let newest = a
                .get("Newest")
                .map(|v| {
                    v.as_i64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            ExchangeError::cannot_convert(
                                "Newest",
                                &v.to_text(),
                                "System.Int32",
                                spec.name,
                            )
                        })
                })
                .transpose()?;
            let mut ids = Vec::new();
            for v in a.get("InstanceId").map(SimValue::items).unwrap_or_default() {
                ids.push(v.as_i64().ok_or_else(|| {
                    ExchangeError::cannot_convert(
                        "InstanceId",
                        &v.to_text(),
                        "System.Int64",
                        spec.name,
                    )
                })?);
            }
            let q = EventQuery {
                log_name: a.required("LogName")?,
                instance_ids: ids,
                sources: a.texts("Source"),
                entry_types: a.texts("EntryType"),
                newest,
                after,
            };
            Ok(objects(org.get_event_log(&q)?))
        }
        other => Err(ExchangeError::parameter_not_found(other, other)),
    }
}

/// A WQL filter of the one form the simulator understands, `Property = 'value'` (or
/// with double quotes): the property and the value.
fn parse_wql_filter(filter: &str) -> Option<(String, String)> {
    let (prop, value) = filter.split_once('=')?;
    let prop = prop.trim();
    let value = value.trim();
    let quote = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = value.strip_prefix(quote)?.strip_suffix(quote)?;
    let valid = !prop.is_empty() && prop.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (valid && !inner.contains(quote)).then(|| (prop.to_string(), inner.to_string()))
}

/// Writes an entry as the store would (exposed for tests of Get-EventLog).
pub fn log_store_event(org: &mut ExchangeOrg, event_id: u32, message: &str) {
    org.write_event(
        None,
        event_id,
        "MSExchangeIS",
        Level::Error,
        message.to_string(),
    );
}

/// A time span argument in seconds (for callers building arguments).
pub fn seconds(text: &str) -> Option<u64> {
    TimeSpan::parse(&SimValue::str(text)).map(|t| t.0)
}
