//! `registry_values`: values in the registry of each target server (HKLM only).
//!
//! ```yaml
//! registry_values:
//!   - path: 'HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem'
//!     name: Maximum Allowed Service Sessions Per User
//!     type: dword          # dword | qword | string | expandstring | multistring
//!     value: 80            # dword 0..=4294967295, qword 0..=18446744073709551615,
//!                          # a list for multistring, text otherwise
//!     restart: MSExchangeIS   # optional: a service of kinds::services() (MSExchangeIS,
//!                             # MSExchangeIMAP4, MSExchangePOP3) or none
//!   - path: 'HKLM\SOFTWARE\Contoso\Old'
//!     name: Obsolete
//!     ensure: absent       # removes the value (never the key)
//! ```
//!
//! Paths may be written `HKLM:\...`, `HKLM\...` or `HKEY_LOCAL_MACHINE\...` (also with the
//! `Registry::` provider prefix) and are normalised to `HKLM:\...`. Only HKLM is managed:
//! the scripts run as a service account, whose HKCU is nobody's. Value names and paths
//! compare ignoring case, as the registry does. The identity is `<path>\<name>`.
//!
//! Restart. Values under `HKLM:\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem`
//! (the store limits, including the `MaxObjsPerMapiSession` subkey) take effect when the
//! Information Store restarts, so they require `MSExchangeIS` by default; other values
//! require nothing unless `restart:` says so; `restart: none` opts out. That restart
//! dismounts the server's databases, which is why this kind runs last.
//!
//! Observation (per value): `Test-Path -Path <key>`; then `Get-ItemProperty
//! -Path <key> -Name <name> -ErrorAction SilentlyContinue` (nothing: the value is
//! absent) and, as a separate type probe, `(Get-Item -Path <key>).GetValueKind(<name>)`
//! (a `Microsoft.Win32.RegistryValueKind`: `DWord`, `QWord`, `String`, `ExpandString`,
//! `MultiString`, `Binary`, ...). For an expandstring value the unexpanded text is read
//! with `GetValue(<name>, $null, 'DoNotExpandEnvironmentNames')`, since Get-ItemProperty
//! expands `%variables%`. A DWORD reads back as a signed Int32 and a QWORD as an Int64:
//! negative numbers are their unsigned values. Reported under `registry_values:<identity>`:
//! `KeyExists` (the key, from the Test-Path probe), `__exists`, `Type`, `Value`, `Raw`.
//!
//! Comparison is of the value AND its type: a REG_SZ "80" is not a DWORD 80; the change
//! then says `Type: string → dword` and re-creates the value with its type. Changes:
//! - create/update: `New-Item -Path <key> -Force` when the observation found the key
//!   missing (only then: `New-Item -Force` on an existing key would replace it), then `New-ItemProperty
//!   -Path <key> -Name <name> -PropertyType <DWord|QWord|String|ExpandString|MultiString>
//!   -Value <v> -Force`;
//! - delete (`ensure: absent`): `Remove-ItemProperty -Path <key> -Name <name>`.
//!
//! Rules (each with its code):
//! - `exchange::registry-path`: a path outside HKLM, or one naming no key;
//! - `exchange::registry-wildcard`: `*`, `?`, `[`, `]` or a backtick in a path or a value
//!   name (the provider reads `-Path`, and the `-Name` of Get-ItemProperty and
//!   Remove-ItemProperty, as patterns; refusing them keeps every path literal);
//! - `exchange::registry-value-required` / `exchange::registry-type-required`;
//! - `exchange::absent-with-attributes`: `ensure: absent` with a value;
//! - `exchange::registry-service-typo` (warning): a service name close to a known
//!   Exchange service (the Cisco checklist's "MSEExchangeIS"), with a did-you-mean;
//! - `exchange::registry-value-name-typo` (warning): a name close to a known store limit;
//! - `exchange::registry-store-limit-type` (warning): a known store limit that is not a DWORD;
//! - `exchange::duplicate-resource`: the same path and name twice for a host, in one
//!   document or across documents.

use std::collections::HashMap;

use exctl_manifest::{
    Diagnostic, Diagnostics, MapReader, Node, NodeKind, Span, Style, ValueReader, edit_distance,
};
use exctl_pwsh::{Arg, Command, quote};

use super::common;
use crate::export::{self, ExportContext, Section, Yaml};
use crate::kind::{
    Action, AttrChange, Change, Declared, DesiredAttr, DiffError, Ensure, Kind, ObserveContext,
    Order, ParseContext, Payload, Resource, Scope, Service,
};
use crate::record::{Observations, guarded};
use crate::services::INFORMATION_STORE;
use crate::value::{RawValue, Value};

/// The store-limits key: values under it require the Information Store restart.
pub const STORE_KEY: &str =
    "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem";

/// Known store limits (Exchange 2010 store limits, KB 980049 and the store limits pages),
/// all REG_DWORD: a close misspelling of one of these is warned about.
pub const STORE_LIMITS: &[&str] = &[
    "Maximum Allowed Sessions Per User",
    "Maximum Allowed Service Sessions Per User",
    "Maximum Allowed Exchange Sessions Per Service",
    "Maximum Allowed Sessions Per Administrator",
    "Disable Session Limit",
    "objtFolder",
    "objtMessage",
    "objtAttachment",
    "objtStream",
    "objtNotify",
    "objtFolderView",
    "objtMessageView",
    "objtAttachView",
    "objtACLView",
    "objtFXSrcStrm",
    "objtFXDstStrm",
];

/// Exchange 2010 service names, for the did-you-mean on a misspelt `Services\<name>`.
pub const EXCHANGE_SERVICES: &[&str] = &[
    "MSExchangeIS",
    "MSExchangeSA",
    "MSExchangeIMAP4",
    "MSExchangePOP3",
    "MSExchangeTransport",
    "MSExchangeTransportLogSearch",
    "MSExchangeRPC",
    "MSExchangeAB",
    "MSExchangeADTopology",
    "MSExchangeAntispamUpdate",
    "MSExchangeEdgeSync",
    "MSExchangeFBA",
    "MSExchangeFDS",
    "MSExchangeMailboxAssistants",
    "MSExchangeMailboxReplication",
    "MSExchangeMailSubmission",
    "MSExchangeMonitoring",
    "MSExchangeProtectedServiceHost",
    "MSExchangeRepl",
    "MSExchangeSearch",
    "MSExchangeServiceHost",
    "MSExchangeThrottling",
];

/// Characters the registry provider reads as a pattern or its escape in `-Path` and in
/// the `-Name` of Get-ItemProperty and Remove-ItemProperty.
const WILDCARDS: [char; 5] = ['*', '?', '[', ']', '`'];

fn wildcard_error(what: &str, text: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "exchange::registry-wildcard",
        format!("{what}: '{text}' contains a wildcard or escape character (* ? [ ] `)"),
    )
    .with_span(span)
    .with_label("would be read as a pattern")
    .with_hint("the registry cmdlets expand patterns in paths and value names; exctl refuses them rather than touch other keys or values")
}

/// The registry value types exctl writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegType {
    /// REG_DWORD.
    Dword,
    /// REG_QWORD.
    Qword,
    /// REG_SZ.
    String,
    /// REG_EXPAND_SZ.
    ExpandString,
    /// REG_MULTI_SZ.
    MultiString,
}

impl RegType {
    /// Manifest spellings.
    pub const NAMES: &'static [&'static str] =
        &["dword", "qword", "string", "expandstring", "multistring"];

    fn parse(s: &str) -> Option<RegType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "dword" => RegType::Dword,
            "qword" => RegType::Qword,
            "string" => RegType::String,
            "expandstring" => RegType::ExpandString,
            "multistring" => RegType::MultiString,
            _ => return None,
        })
    }

    /// The manifest spelling.
    pub fn name(self) -> &'static str {
        match self {
            RegType::Dword => "dword",
            RegType::Qword => "qword",
            RegType::String => "string",
            RegType::ExpandString => "expandstring",
            RegType::MultiString => "multistring",
        }
    }

    /// The `-PropertyType` of New-ItemProperty (and the RegistryValueKind name).
    pub fn property_type(self) -> &'static str {
        match self {
            RegType::Dword => "DWord",
            RegType::Qword => "QWord",
            RegType::String => "String",
            RegType::ExpandString => "ExpandString",
            RegType::MultiString => "MultiString",
        }
    }
}

/// The manifest spelling of a `RegistryValueKind` the server reported.
fn kind_name(kind: &str) -> String {
    RegType::NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(kind.trim()))
        .map_or_else(|| kind.trim().to_ascii_lowercase(), |n| n.to_string())
}

/// `HKLM:\...`, from any accepted spelling.
pub fn normalize_path(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    const PREFIXES: &[&str] = &[
        "Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE",
        "Registry::HKEY_LOCAL_MACHINE",
        "Registry::HKLM",
        "HKEY_LOCAL_MACHINE",
        "HKLM:",
        "HKLM",
    ];
    let rest = PREFIXES.iter().find_map(|p| {
        let head = s.get(..p.len())?;
        let rest = s.get(p.len()..)?;
        (head.eq_ignore_ascii_case(p) && (rest.is_empty() || rest.starts_with('\\')))
            .then_some(rest)
    });
    let Some(rest) = rest else {
        let hive = s.split([':', '\\']).next().unwrap_or(s);
        return Err(
            if [
                "HKCU",
                "HKEY_CURRENT_USER",
                "HKU",
                "HKEY_USERS",
                "HKCR",
                "HKEY_CLASSES_ROOT",
                "HKCC",
                "HKEY_CURRENT_CONFIG",
            ]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(hive))
            {
                format!(
                    "only HKLM is managed, not {hive}: scripts run as a service account whose user hive is nobody's"
                )
            } else {
                "a registry path starts with HKLM:\\, HKLM\\ or HKEY_LOCAL_MACHINE\\".to_string()
            },
        );
    };
    let parts: Vec<&str> = rest.split('\\').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("the path names no key under HKLM".into());
    }
    Ok(format!("HKLM:\\{}", parts.join("\\")))
}

/// Whether a normalised path is the store-limits key or under it.
pub fn under_store_key(path: &str) -> bool {
    path.get(..STORE_KEY.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(STORE_KEY))
        && path
            .get(STORE_KEY.len()..)
            .is_some_and(|r| r.is_empty() || r.starts_with('\\'))
}

/// The desired data, typed.
#[derive(Debug, Clone, PartialEq)]
enum Data {
    Number(u64),
    Text(String),
    Lines(Vec<String>),
}

impl Data {
    fn to_value(&self) -> Value {
        match self {
            Data::Number(n) => {
                i64::try_from(*n).map_or_else(|_| Value::Str(n.to_string()), Value::Int)
            }
            Data::Text(s) => Value::Str(s.clone()),
            Data::Lines(l) => Value::List(l.clone()),
        }
    }

    fn from_value(v: &Value, ty: RegType) -> Option<Data> {
        Some(match (ty, v) {
            (RegType::Dword | RegType::Qword, Value::Int(i)) => {
                Data::Number(u64::try_from(*i).ok()?)
            }
            (RegType::Dword | RegType::Qword, Value::Str(s)) => Data::Number(s.parse().ok()?),
            (RegType::String | RegType::ExpandString, Value::Str(s)) => Data::Text(s.clone()),
            (RegType::String | RegType::ExpandString, Value::Int(i)) => Data::Text(i.to_string()),
            (RegType::MultiString, Value::List(l)) => Data::Lines(l.clone()),
            _ => return None,
        })
    }

    /// The argument of `-Value`. DWORDs above Int32 and QWORDs above Int64 are written as
    /// their two's-complement negative numbers, which is what the registry provider stores.
    fn arg(&self, ty: RegType) -> Arg {
        match (self, ty) {
            (Data::Number(n), RegType::Dword) => Arg::Int(i64::from(*n as u32 as i32)),
            (Data::Number(n), _) => Arg::Int(*n as i64),
            (Data::Text(s), _) => Arg::Str(s.clone()),
            (Data::Lines(l), _) => Arg::List(l.iter().map(|s| Arg::Str(s.clone())).collect()),
        }
    }
}

/// The attribute under which the observation reports whether the value's key exists.
const KEY_EXISTS: &str = "KeyExists";

/// Whether the key of `r` exists, as observed (a value that exists implies it).
fn key_exists(
    kind: &'static str,
    r: &Resource,
    key: &str,
    observed: &Observations,
) -> Result<bool, DiffError> {
    match observed.get(key, KEY_EXISTS) {
        Some(RawValue::Str(s)) => Ok(s.eq_ignore_ascii_case("true")),
        _ => Err(DiffError {
            kind,
            id: r.id.clone(),
            message: "the server did not report whether the key exists".into(),
        }),
    }
}

/// Reads `value` for a type.
fn read_data(v: ValueReader<'_, '_>, ty: RegType) -> Option<Data> {
    match ty {
        RegType::Dword => v
            .int_in_range(0..=4_294_967_295)
            .map(|n| Data::Number(n as u64)),
        RegType::Qword => {
            let node = v.node();
            if let NodeKind::Str(s) = &node.kind
                && node.style == Style::Plain
                && let Ok(n) = s.trim().parse::<u64>()
            {
                return Some(Data::Number(n));
            }
            v.int_in_range(0..=i64::MAX).map(|n| Data::Number(n as u64))
        }
        RegType::String | RegType::ExpandString => v.string().map(Data::Text),
        RegType::MultiString => v.string_list().map(Data::Lines),
    }
}

/// Decodes what the server reported for a value of kind `kind`.
fn decode_observed(kind: &str, raw: &RawValue) -> Data {
    match raw {
        RawValue::List(l) => Data::Lines(l.clone()),
        RawValue::Null => Data::Text(String::new()),
        RawValue::Str(s) => {
            let n = s.trim().parse::<i64>();
            match (kind_name(kind).as_str(), n) {
                ("dword", Ok(n)) => Data::Number(u64::from(n as i32 as u32)),
                ("qword", Ok(n)) => Data::Number(n as u64),
                ("multistring", _) => Data::Lines(vec![s.clone()]),
                _ => Data::Text(s.clone()),
            }
        }
    }
}

/// Registry values of a server.
pub struct RegistryValues;

fn typo_warnings(
    path: &str,
    name: &str,
    what: &str,
    span: Span,
    name_span: Span,
    ty: Option<(RegType, Span)>,
    diags: &mut Diagnostics,
) {
    let parts: Vec<&str> = path.split('\\').collect();
    if let Some(i) = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("Services"))
        && let Some(service) = parts.get(i + 1)
        && !EXCHANGE_SERVICES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(service))
    {
        let chars: Vec<char> = service.to_ascii_lowercase().chars().collect();
        let best = EXCHANGE_SERVICES
            .iter()
            .map(|s| {
                (
                    edit_distance(&chars, &s.to_ascii_lowercase().chars().collect::<Vec<_>>()),
                    *s,
                )
            })
            .min();
        if let Some((d, s)) = best
            && d <= 2
        {
            let mut msg = format!(
                "{what}: service '{service}' is not an Exchange service; did you mean '{s}'?"
            );
            if s == "MSExchangeIS" {
                msg.push_str(" (the Cisco UCCX checklist misspells it \"MSEExchangeIS\"); as written, the value is no store limit and restarts nothing");
            }
            diags.push(
                Diagnostic::warning("exchange::registry-service-typo", msg)
                    .with_span(span)
                    .with_label(format!("did you mean '{s}'?"))
                    .with_hint(format!("write ...\\Services\\{s}\\...")),
            );
        }
    }
    if under_store_key(path) {
        let known = STORE_LIMITS.iter().find(|k| k.eq_ignore_ascii_case(name));
        if known.is_none() {
            let chars: Vec<char> = name.to_ascii_lowercase().chars().collect();
            let best = STORE_LIMITS
                .iter()
                .map(|s| {
                    (
                        edit_distance(&chars, &s.to_ascii_lowercase().chars().collect::<Vec<_>>()),
                        *s,
                    )
                })
                .min();
            if let Some((d, s)) = best
                && d <= 2
            {
                diags.push(
                    Diagnostic::warning(
                        "exchange::registry-value-name-typo",
                        format!("{what}: '{name}' is not a store limit the Information Store reads; did you mean '{s}'?"),
                    )
                    .with_span(name_span)
                    .with_label(format!("did you mean '{s}'?"))
                    .with_hint(format!("write name: {s}")),
                );
            }
        }
        if known.is_some()
            && let Some((t, tspan)) = ty
            && t != RegType::Dword
        {
            diags.push(
                Diagnostic::warning(
                    "exchange::registry-store-limit-type",
                    format!(
                        "{what}: the store limit '{name}' is a REG_DWORD, not a {}",
                        t.name()
                    ),
                )
                .with_span(tspan)
                .with_label("the store reads a DWORD")
                .with_hint("write type: dword"),
            );
        }
    }
}

/// One entry of the list, read and checked.
/// What a registry value holds beyond its identity: where it is, and its type.
#[derive(Debug, Clone, PartialEq)]
struct RegistryValue {
    /// The key, normalised (`HKLM:\\...`).
    path: String,
    /// The value's name.
    name: String,
    /// The type to write (`None` for `ensure: absent`).
    ty: Option<RegType>,
}

fn payload(r: &Resource) -> Option<&RegistryValue> {
    r.payload.get::<RegistryValue>()
}

/// The key path (normalised, `HKLM:\\...`) and value name of a registry value; `None` for
/// a resource of another kind.
pub fn target(r: &Resource) -> Option<(&str, &str)> {
    payload(r).map(|v| (v.path.as_str(), v.name.as_str()))
}

/// The manifest spelling of a registry value's type (`dword`); `None` for `ensure:
/// absent` and for a resource of another kind.
pub fn type_name(r: &Resource) -> Option<&'static str> {
    payload(r).and_then(|v| v.ty).map(RegType::name)
}

fn read_item(item: &Node, what: &str, diags: &mut Diagnostics) -> Option<Resource> {
    let mut m = MapReader::new(item, what.to_string(), diags)?;
    let path_node = m.node_of("path");
    let path_raw = m.required("path").and_then(ValueReader::non_empty_string);
    let name_node = m.node_of("name");
    let name = m.required("name").and_then(ValueReader::non_empty_string);
    let ensure = common::read_ensure(&mut m).unwrap_or_default();
    let type_node = m.node_of("type");
    let ty = m
        .value("type")
        .and_then(|v| v.one_of(RegType::NAMES))
        .and_then(RegType::parse);
    let value_node = m.node_of("value");
    let data = match (ty, value_node) {
        (Some(t), Some(_)) if ensure == Ensure::Present => {
            m.value("value").and_then(|v| read_data(v, t))
        }
        _ => None,
    };
    // Any service a registered kind declares (`kinds::services`), or none.
    let restart_names: Vec<&str> = std::iter::once("none")
        .chain(crate::kinds::services().iter().map(|s| s.name()))
        .collect();
    let restart = m.value("restart").and_then(|v| v.one_of(&restart_names));
    // A value that must not be shown (a key, a shared secret): plans, results, plan files
    // and the journal say "(sensitive)" instead, and a plan file keeps no script for it.
    let sensitive = m.bool("sensitive").unwrap_or(false);
    m.finish();

    let mut ok = true;
    let path = match (path_raw, path_node) {
        (Some(p), Some(n)) => match normalize_path(&p) {
            Ok(p) if p.contains(WILDCARDS) => {
                diags.push(wildcard_error(&format!("{what}.path"), &p, n.span));
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                diags.push(
                    Diagnostic::error("exchange::registry-path", format!("{what}.path: {e}"))
                        .with_span(n.span)
                        .with_label("not an HKLM path")
                        .with_hint("write it as HKLM:\\SYSTEM\\CurrentControlSet\\..."),
                );
                None
            }
        },
        _ => None,
    };
    if let (Some(n), Some(node)) = (&name, name_node)
        && n.contains(WILDCARDS)
    {
        diags.push(wildcard_error(&format!("{what}.name"), n, node.span));
        ok = false;
    }
    if ensure == Ensure::Present {
        if type_node.is_none() {
            diags.push(
                Diagnostic::error(
                    "exchange::registry-type-required",
                    format!("{what}: a value to set needs its type"),
                )
                .with_span(item.span)
                .with_label("no type")
                .with_hint("add type: dword (or qword, string, expandstring, multistring)"),
            );
            ok = false;
        }
        if value_node.is_none() {
            diags.push(
                Diagnostic::error(
                    "exchange::registry-value-required",
                    format!("{what}: no value to set"),
                )
                .with_span(item.span)
                .with_label("no value")
                .with_hint("add value: ..., or ensure: absent to remove the value"),
            );
            ok = false;
        }
    } else if let Some(v) = value_node {
        diags.push(common::absent_with_attributes(what, v.span));
        ok = false;
    }
    let (path, name) = (path?, name?);
    if let (Some(pn), Some(nn)) = (path_node, name_node) {
        typo_warnings(
            &path,
            &name,
            what,
            pn.span,
            nn.span,
            ty.zip(type_node.map(|n| n.span)),
            diags,
        );
    }
    let data = match ensure {
        Ensure::Present => Some(data?),
        Ensure::Absent => None,
    };
    if !ok {
        return None;
    }
    let restart = match restart {
        Some("none") => None,
        Some(s) => Service::parse(s),
        None if under_store_key(&path) => Some(INFORMATION_STORE),
        None => None,
    };
    let mut attrs = Vec::new();
    let mut written_type = None;
    if let (Some(t), Some(d)) = (ty, &data) {
        let tspan = type_node.map_or(item.span, |n| n.span);
        let vspan = value_node.map_or(item.span, |n| n.span);
        attrs.push(DesiredAttr {
            name: "Type".into(),
            value: Value::Str(t.name().into()),
            span: tspan,
        });
        attrs.push(DesiredAttr {
            name: "Value".into(),
            value: d.to_value(),
            span: vspan,
        });
        written_type = Some(t);
    }
    Some(Resource {
        kind: "registry_values",
        id: format!("{path}\\{name}"),
        ensure,
        attrs,
        payload: Payload::new(RegistryValue {
            path,
            name,
            ty: written_type,
        }),
        restart,
        sensitive: if sensitive {
            vec!["Value".to_string()]
        } else {
            Vec::new()
        },
        span: item.span,
    })
}

/// Values compare ignoring case, as the registry compares them (the resources a kind
/// is handed are one host's: the host is no part of the key).
fn dup_key(r: &Resource) -> Option<String> {
    Some(r.id.to_ascii_lowercase())
}

/// The key of a known store limit: the `objt*` limits live in the
/// `MaxObjsPerMapiSession` subkey, the others in the store-limits key itself.
fn store_limit_key(name: &str) -> String {
    if name.starts_with("objt") {
        format!("{STORE_KEY}\\MaxObjsPerMapiSession")
    } else {
        STORE_KEY.to_string()
    }
}

/// The resources `exctl export` reads: every known store limit.
fn store_limit_resources() -> Vec<Resource> {
    STORE_LIMITS
        .iter()
        .map(|name| reading(&store_limit_key(name), name))
        .collect()
}

/// A resource no manifest declared that names the DWORD value `name` under `path`, for
/// readers that want it observed ([`Kind::observe`]) and decoded ([`current`]), such as
/// the engine's capacity check of the store's service sessions.
pub fn reading(path: &str, name: &str) -> Resource {
    common::synthetic(
        "registry_values",
        format!("{path}\\{name}"),
        Payload::new(RegistryValue {
            path: path.to_string(),
            name: name.to_string(),
            ty: Some(RegType::Dword),
        }),
    )
}

/// The value of `r` as the server holds it, decoded as [`Kind::diff`] decodes it
/// (`None`: the value or its key is absent). An error when the read failed.
pub fn current(observed: &Observations, r: &Resource) -> Result<Option<Value>, DiffError> {
    let kind = "registry_values";
    let key = common::obs_key(kind, &r.id);
    if !common::existence(kind, &r.id, &key, observed)? {
        return Ok(None);
    }
    Ok(Some(observed_data(observed, &key).to_value()))
}

/// The value reported under `key` (it exists), decoded by its reported type; for an
/// expandstring, its unexpanded text.
fn observed_data(observed: &Observations, key: &str) -> Data {
    let observed_kind = match observed.get(key, "Type") {
        Some(RawValue::Str(k)) => k.as_str(),
        _ => "",
    };
    let raw = if kind_name(observed_kind) == "expandstring" {
        observed
            .get(key, "Raw")
            .or_else(|| observed.get(key, "Value"))
    } else {
        observed.get(key, "Value")
    };
    decode_observed(observed_kind, raw.unwrap_or(&RawValue::Null))
}

impl Kind for RegistryValues {
    fn key(&self) -> &'static str {
        "registry_values"
    }

    fn title(&self) -> &'static str {
        "Registry values"
    }

    fn scope(&self) -> Scope {
        Scope::Server
    }

    fn order(&self) -> Order {
        Order {
            phase: 60,
            reason: "registry values run last: the Information Store restart that store limits require disconnects users, so it happens once, at the end",
        }
    }

    fn services(&self) -> &'static [Service] {
        &[INFORMATION_STORE]
    }

    fn parse(&self, node: &Node, ctx: &ParseContext, diags: &mut Diagnostics) -> Vec<Declared> {
        let path = format!("{}.registry_values", ctx.path);
        let mut out: Vec<Resource> = Vec::new();
        // The index in `out` of each value accepted, by its duplicate key: looked up, not
        // scanned, for each new value.
        let mut accepted: HashMap<Option<String>, usize> = HashMap::new();
        match &node.kind {
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let what = format!("item {} of {path}", i + 1);
                    let Some(r) = read_item(item, &what, diags) else {
                        continue;
                    };
                    let k = dup_key(&r);
                    if let Some(first) = accepted.get(&k).and_then(|&i| out.get(i)) {
                        diags.push(common::duplicate(
                            &format!("registry value {}", r.id),
                            r.span,
                            first.span,
                        ));
                        continue;
                    }
                    accepted.insert(k, out.len());
                    out.push(r);
                }
            }
            NodeKind::Null if node.raw.trim().is_empty() => {}
            _ => diags.push(
                Diagnostic::error(
                    "manifest::wrong-type",
                    format!(
                        "{path}: expected a list of registry values, found {}",
                        node.describe()
                    ),
                )
                .with_span(node.span)
                .with_label("expected a list")
                .with_hint("write each value as a list item: - path: ...\\n  name: ..."),
            ),
        }
        out.into_iter().map(common::declared).collect()
    }

    /// A registry value is its key path and value name; the path in any accepted
    /// spelling (`HKEY_LOCAL_MACHINE\...` is `HKLM:\...`).
    fn merge_identity(&self, entry: &Node) -> Option<String> {
        let path = common::entry_field(entry, "path")?;
        let path = normalize_path(&path).map_or(path, |p| p.to_lowercase());
        Some(format!("{path}|{}", common::entry_field(entry, "name")?))
    }

    fn cross_check(&self, all: &[Resource], diags: &mut Diagnostics) {
        common::report_duplicates(
            all,
            self.key(),
            dup_key,
            |r| format!("registry value {}", r.id),
            diags,
        );
    }

    fn observe(&self, resources: &[&Resource], _ctx: &ObserveContext<'_>) -> String {
        let mut s = String::new();
        for r in resources {
            let Some((path, name)) = target(r) else {
                continue;
            };
            let key = quote(&common::obs_key(self.key(), &r.id));
            let (p, n) = (quote(path), quote(name));
            let raw = if type_name(r) == Some("expandstring") {
                format!(
                    "$r = $k.GetValue({n}, $null, 'DoNotExpandEnvironmentNames')\n__exctl_emit {key} 'Raw' $r\n"
                )
            } else {
                String::new()
            };
            let body = format!(
                "if (Test-Path -Path {p}) {{\n__exctl_emit {key} '{KEY_EXISTS}' $true\n$v = Get-ItemProperty -Path {p} -Name {n} -ErrorAction SilentlyContinue\nif ($null -eq $v) {{ __exctl_emit {key} '__exists' $false }} else {{\n__exctl_emit {key} '__exists' $true\n$k = Get-Item -Path {p}\n$t = $k.GetValueKind({n})\n__exctl_emit {key} 'Type' $t\n$d = $v.{n}\n__exctl_emit {key} 'Value' $d\n{raw}}}\n}} else {{\n__exctl_emit {key} '{KEY_EXISTS}' $false\n__exctl_emit {key} '__exists' $false\n}}"
            );
            s.push_str(&guarded(&common::obs_key(self.key(), &r.id), &body));
        }
        s
    }

    fn diff(
        &self,
        resources: &[&Resource],
        observed: &Observations,
        _ctx: &ObserveContext<'_>,
    ) -> Result<Vec<Change>, DiffError> {
        let kind = self.key();
        let mut out = Vec::new();
        for r in resources {
            let Some((path, name)) = target(r) else {
                continue;
            };
            let key = common::obs_key(kind, &r.id);
            let exists = common::existence(kind, &r.id, &key, observed)?;
            let observed_kind = match observed.get(&key, "Type") {
                Some(RawValue::Str(k)) => k.clone(),
                _ => String::new(),
            };
            let observed_data = || observed_data(observed, &key);
            match r.ensure {
                Ensure::Absent => {
                    if exists {
                        let before = observed_data().to_value();
                        out.push(common::change(
                            r,
                            &r.id,
                            Action::Delete,
                            vec![AttrChange {
                                name: "Value".into(),
                                before: Some(before),
                                after: None,
                                sensitive: r.sensitive.iter().any(|a| a == "Value"),
                            }],
                            0,
                            vec![
                                Command::new("Remove-ItemProperty")
                                    .param("Path", path)
                                    .param("Name", name),
                            ],
                        ));
                    }
                }
                Ensure::Present => {
                    let ty = payload(r).and_then(|v| v.ty).ok_or_else(|| DiffError {
                        kind,
                        id: r.id.clone(),
                        message: "the resource has no type (a validation error was ignored)".into(),
                    })?;
                    let want = r
                        .attrs
                        .iter()
                        .find(|a| a.name == "Value")
                        .and_then(|a| Data::from_value(&a.value, ty))
                        .ok_or_else(|| DiffError {
                            kind,
                            id: r.id.clone(),
                            message: "the resource has no value (a validation error was ignored)"
                                .into(),
                        })?;
                    let mut attrs = Vec::new();
                    let mut unchanged = 0;
                    let action = if exists {
                        let have_kind = kind_name(&observed_kind);
                        let have = observed_data();
                        if have_kind != ty.name() {
                            attrs.push(AttrChange {
                                name: "Type".into(),
                                before: Some(Value::Str(have_kind)),
                                after: Some(Value::Str(ty.name().into())),
                                sensitive: false,
                            });
                        } else {
                            unchanged += 1;
                        }
                        if have != want || !attrs.is_empty() {
                            attrs.push(AttrChange {
                                name: "Value".into(),
                                before: Some(have.to_value()),
                                after: Some(want.to_value()),
                                sensitive: r.sensitive.iter().any(|a| a == "Value"),
                            });
                        } else {
                            unchanged += 1;
                        }
                        Action::Update
                    } else {
                        attrs.push(AttrChange {
                            name: "Type".into(),
                            before: None,
                            after: Some(Value::Str(ty.name().into())),
                            sensitive: false,
                        });
                        attrs.push(AttrChange {
                            name: "Value".into(),
                            before: None,
                            after: Some(want.to_value()),
                            sensitive: r.sensitive.iter().any(|a| a == "Value"),
                        });
                        Action::Create
                    };
                    if attrs.is_empty() {
                        continue;
                    }
                    let mut commands = Vec::new();
                    // Only a missing key is created: on the registry provider `New-Item
                    // -Force` replaces an existing key, values and subkeys included.
                    if !exists && !key_exists(kind, r, &key, observed)? {
                        commands.push(Command::new("New-Item").param("Path", path).switch("Force"));
                    }
                    commands.push(
                        Command::new("New-ItemProperty")
                            .param("Path", path)
                            .param("Name", name)
                            .param("PropertyType", ty.property_type())
                            .param("Value", want.arg(ty))
                            .switch("Force"),
                    );
                    out.push(common::change(r, &r.id, action, attrs, unchanged, commands));
                }
            }
        }
        Ok(out)
    }

    /// The known store limits (the values `exctl export` is about): each read as
    /// [`Kind::observe`] reads a declared value.
    fn export_script(&self, ctx: &ExportContext<'_>) -> String {
        ctx.observe(self, &store_limit_resources())
    }

    /// Every known store limit that exists, with its type and value, in the order of
    /// [`STORE_LIMITS`]; absent ones are not written (the server's built-in value holds).
    fn export(
        &self,
        observed: &Observations,
        _ctx: &ExportContext<'_>,
    ) -> Result<Option<Section>, DiffError> {
        let kind = self.key();
        let mut items = Vec::new();
        let mut notes = Vec::new();
        for r in store_limit_resources() {
            let key = common::obs_key(kind, &r.id);
            if !common::existence(kind, &r.id, &key, observed)? {
                continue;
            }
            let Some((path, name)) = target(&r) else {
                continue;
            };
            let observed_kind = match observed.get(&key, "Type") {
                Some(RawValue::Str(k)) => kind_name(k),
                _ => String::new(),
            };
            // An expandstring would need its unexpanded text, other kinds (binary) have no
            // manifest type: store limits are DWORDs, anything else is reported.
            let ty = match RegType::parse(&observed_kind) {
                Some(t) if t != RegType::ExpandString => t,
                _ => {
                    notes.push(format!(
                        "registry value {}: type {observed_kind}, which exctl does not export: not exported",
                        r.id
                    ));
                    continue;
                }
            };
            let data = decode_observed(
                &observed_kind,
                observed.get(&key, "Value").unwrap_or(&RawValue::Null),
            );
            let value = match &data {
                Data::Number(n) => n.to_string(),
                Data::Text(t) => export::string(t),
                Data::Lines(l) => export::flow_list(l),
            };
            let mut item = Yaml::map();
            item.push("path", Yaml::Scalar(export::string(path)));
            item.push("name", Yaml::Scalar(export::string(name)));
            item.push("type", Yaml::Scalar(ty.name().to_string()));
            item.push("value", Yaml::Scalar(value));
            items.push(item);
        }
        if items.is_empty() && notes.is_empty() {
            return Ok(None);
        }
        Ok(Some(Section {
            body: Yaml::Seq(items),
            notes,
        }))
    }

    fn schema(&self) -> serde_json::Value {
        // Every service a registered kind restarts, as `restart:` accepts them.
        let restarts: Vec<&str> = crate::kinds::services()
            .iter()
            .map(|s| s.name())
            .chain(std::iter::once("none"))
            .collect();
        serde_json::json!({
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["path", "name"],
                "properties": {
                    "path": {"type": "string"},
                    "name": {"type": "string"},
                    "type": {"type": "string", "enum": RegType::NAMES},
                    "value": {},
                    "restart": {"type": "string", "enum": restarts},
                    "sensitive": {"type": "boolean", "description": "never show the value (plans, results, journal)"},
                    "ensure": crate::schema::ensure()
                }
            }
        })
    }

    fn help(&self) -> &'static str {
        "Values in the registry of each target server (HKLM only): a list of {path, name, type, value, restart, sensitive, ensure}. Values under MSExchangeIS\\ParametersSystem (the store limits) require restarting MSExchangeIS, which dismounts the server's databases; others restart nothing unless restart: says so."
    }

    // PowerShell's registry provider only: nothing to relay to Exchange.
    fn cmdlets(&self) -> &'static [&'static str] {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::read_for_host;
    use crate::kinds::common::testutil::{HOSTILE, assert_contained};
    use crate::version::Version;

    fn parse_all(changes: &[Change]) {
        for c in changes {
            crate::kinds::common::testutil::assert_plain(c);
        }
    }

    fn parse_in(
        file: &str,
        yaml: &str,
        hosts: &[&str],
        host: &str,
    ) -> (Vec<Resource>, Diagnostics) {
        let (_, docs, mut diags) = exctl_manifest::parse_str(file, yaml);
        assert!(diags.is_empty(), "{diags:?}");
        let ctx = ParseContext::new(
            Version::Sp3,
            hosts.iter().map(|h| h.to_string()).collect(),
            file,
        );
        let r = read_for_host(&RegistryValues, &docs[0].root, &ctx, host, &mut diags);
        diags.sort();
        (r, diags)
    }

    fn parse(yaml: &str) -> (Vec<Resource>, Diagnostics) {
        parse_in("ex01.yaml", yaml, &["EX01"], "EX01")
    }

    fn got(d: &Diagnostics) -> Vec<(&'static str, String, u32, u32, Option<String>)> {
        d.iter()
            .map(|d| {
                let s = d.span.expect("located");
                (
                    d.code,
                    d.message.clone(),
                    s.start.line,
                    s.start.column,
                    d.hint.clone(),
                )
            })
            .collect()
    }

    const SESSIONS: &str = "- path: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n  name: Maximum Allowed Service Sessions Per User\n  type: dword\n  value: 80\n";

    fn ctx() -> ObserveContext<'static> {
        ObserveContext {
            host: "EX01",
            version: Version::Sp3,
        }
    }

    fn obs(r: &Resource, kind: Option<&str>, value: RawValue) -> Observations {
        let key = common::obs_key("registry_values", &r.id);
        let mut o = Observations::default();
        o.insert(
            &key,
            "__exists",
            RawValue::Str(if kind.is_some() { "True" } else { "False" }.into()),
        );
        // Without the value, without its key too (see `a_missing_value_is_created_with_its_key`
        // for a value missing from an existing key).
        o.insert(
            &key,
            KEY_EXISTS,
            RawValue::Str(if kind.is_some() { "True" } else { "False" }.into()),
        );
        if let Some(k) = kind {
            o.insert(&key, "Type", RawValue::Str(k.into()));
            o.insert(&key, "Value", value);
        }
        o
    }

    #[test]
    fn paths_are_normalised_and_store_limits_restart_the_store() {
        for p in [
            "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem",
            "hklm\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem\\",
            "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\\\ParametersSystem",
            "Registry::HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem",
        ] {
            assert_eq!(normalize_path(p).as_deref(), Ok(STORE_KEY), "{p}");
        }
        assert!(
            normalize_path("HKCU\\Software")
                .unwrap_err()
                .contains("only HKLM")
        );
        assert!(normalize_path("HKLM:\\").is_err());
        assert!(normalize_path("HKLMX\\a").is_err());
        let (r, d) = parse(SESSIONS);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            r[0].id,
            format!("{STORE_KEY}\\Maximum Allowed Service Sessions Per User")
        );
        assert_eq!(r[0].restart, Some(INFORMATION_STORE));
        assert!(under_store_key(&format!(
            "{STORE_KEY}\\MaxObjsPerMapiSession"
        )));
        assert!(!under_store_key(&format!("{STORE_KEY}X")));
        let (r, _) = parse(
            "- path: HKLM\\SOFTWARE\\X\n  name: a\n  type: string\n  value: b\n- path: HKLM\\SOFTWARE\\X\n  name: c\n  type: string\n  value: d\n  restart: msexchangeimap4\n- path: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem\\MaxObjsPerMapiSession'\n  name: objtMessage\n  type: dword\n  value: 500\n  restart: none\n",
        );
        assert_eq!(
            r.iter().map(|r| r.restart).collect::<Vec<_>>(),
            [None, Some(crate::kinds::imap::SERVICE), None]
        );
        // Any service a kind declares: POP3 too; anything else is refused with the list.
        let (r, d) = parse(
            "- {path: HKLM\\S, name: a, type: dword, value: 1, restart: MSExchangePOP3}\n- {path: HKLM\\S, name: b, type: dword, value: 1, restart: MSExchangeFoo}\n",
        );
        assert_eq!(r[0].restart, Some(crate::kinds::pop::SERVICE));
        let g = got(&d);
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(
            g[0].1
                .contains("none, MSExchangeIMAP4, MSExchangePOP3, MSExchangeIS"),
            "{g:?}"
        );
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let (r, d) = parse(
            "- {path: HKLM\\S, name: a, type: dword, value: 4294967296}\n- {path: HKLM\\S, name: b, type: dword, value: '80'}\n- {path: HKLM\\S, name: c, type: qword, value: 18446744073709551615}\n- {path: HKLM\\S, name: d, type: multistring, value: [x, y]}\n- {path: HKLM\\S, name: e, type: dword, value: 4294967295}\n- {path: HKLM\\S, name: f, type: word, value: 1}\n",
        );
        let g = got(&d);
        assert_eq!(g.len(), 3, "{g:?}");
        assert_eq!((g[0].0, g[0].2, g[0].3), ("manifest::out-of-range", 1, 47));
        assert_eq!((g[1].0, g[1].2), ("manifest::wrong-type", 2));
        assert_eq!(
            g[1].4.as_deref(),
            Some("remove the quotes to write a number: 80")
        );
        assert_eq!((g[2].0, g[2].2), ("manifest::invalid-value", 6));
        assert_eq!(g[2].4.as_deref(), Some("did you mean 'dword'?"));
        let values: Vec<&Value> = r.iter().map(|r| &r.attrs[1].value).collect();
        assert_eq!(
            values,
            [
                &Value::Str("18446744073709551615".into()),
                &Value::List(vec!["x".into(), "y".into()]),
                &Value::Int(4_294_967_295)
            ]
        );
    }

    #[test]
    fn missing_fields_paths_wildcards_and_absent_with_a_value() {
        let (_, d) = parse("- {path: 'HKLM\\SOFTWARE\\[x]', name: a, type: dword, value: 1}\n");
        assert_eq!(d.as_slice()[0].code, "exchange::registry-wildcard");
        assert!(
            d.as_slice()[0]
                .message
                .contains("item 1 of ex01.yaml.registry_values.path")
        );
        let (r, d) = parse(
            "- {path: HKCU\\Software\\X, name: a, type: dword, value: 1}\n- {path: HKLM\\S, name: 'a*', type: dword, value: 1}\n- {path: HKLM\\S, name: b}\n- {path: HKLM\\S, name: c, ensure: absent, value: 1}\n- {name: d, type: dword, value: 1}\n",
        );
        let codes: Vec<&str> = d.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [
                "exchange::registry-path",
                "exchange::registry-wildcard",
                "exchange::registry-type-required",
                "exchange::registry-value-required",
                "exchange::absent-with-attributes",
                "manifest::missing-key",
            ]
        );
        let g = got(&d);
        assert_eq!((g[0].2, g[0].3), (1, 10));
        assert!(g[0].4.as_deref().unwrap().starts_with("write it as HKLM"));
        assert_eq!((g[1].2, g[1].3), (2, 24));
        assert_eq!(
            g[3].4.as_deref(),
            Some("add value: ..., or ensure: absent to remove the value")
        );
        assert_eq!((g[4].2, g[4].3), (4, 50));
        assert!(r.is_empty());
    }

    #[test]
    fn the_cisco_spelling_trap_gets_a_did_you_mean() {
        let (r, d) = parse(
            "- path: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSEExchangeIS\\ParametersSystem'\n  name: Maximum Allowed Service Sessions Per User\n  type: dword\n  value: 80\n- path: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n  name: Maximum Allowed Service Session Per User\n  type: string\n  value: '80'\n- path: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeSA\\Parameters'\n  name: x\n  type: dword\n  value: 1\n",
        );
        let g = got(&d);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g[0].0, "exchange::registry-service-typo");
        assert!(
            g[0].1.contains("did you mean 'MSExchangeIS'?"),
            "{}",
            g[0].1
        );
        assert!(g[0].1.contains("MSEExchangeIS"));
        assert_eq!((g[0].2, g[0].3), (1, 9));
        assert_eq!(
            g[0].4.as_deref(),
            Some("write ...\\Services\\MSExchangeIS\\...")
        );
        assert_eq!(g[1].0, "exchange::registry-value-name-typo");
        assert_eq!((g[1].2, g[1].3), (6, 9));
        // The misspelt path is no store limit: no restart.
        assert_eq!(r[0].restart, None);
        let (_, d) = parse(
            "- path: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n  name: Maximum Allowed Sessions Per User\n  type: string\n  value: '80'\n",
        );
        assert_eq!(d.as_slice()[0].code, "exchange::registry-store-limit-type");
        assert_eq!(d.as_slice()[0].hint.as_deref(), Some("write type: dword"));
    }

    #[test]
    fn duplicates_in_one_document_and_across_documents() {
        let twice = format!("{SESSIONS}{}", SESSIONS.replace("Services", "services"));
        let (r, d) = parse(&twice);
        assert_eq!(r.len(), 1);
        let g = got(&d);
        assert_eq!(g[0].0, "exchange::duplicate-resource");
        assert_eq!((g[0].2, g[0].3), (5, 3));
        assert_eq!(d.as_slice()[0].related[0].0.start.line, 1);
        let (a, _) = parse(SESSIONS);
        let (b, _) = parse_in(
            "site.yaml",
            &format!("\n{SESSIONS}"),
            &["EX01", "EX02"],
            "EX01",
        );
        let (c, _) = parse_in(
            "site.yaml",
            &format!("\n{SESSIONS}"),
            &["EX01", "EX02"],
            "EX02",
        );
        let all: Vec<Resource> = a.into_iter().chain(b).chain(c).collect();
        let mut dd = Diagnostics::new();
        RegistryValues.cross_check(&all, &mut dd);
        // EX01 twice (two documents); EX02 once.
        assert_eq!(dd.len(), 1, "{dd:?}");
        assert_eq!(dd.as_slice()[0].span.unwrap().start.line, 2);
    }

    #[test]
    fn observe_probes_existence_type_and_value() {
        let (r, _) = parse(SESSIONS);
        let refs: Vec<&Resource> = r.iter().collect();
        let s = RegistryValues.observe(&refs, &ctx());
        crate::kinds::common::testutil::assert_parses(&s);
        assert!(s.contains(&format!("if (Test-Path -Path '{STORE_KEY}') {{")));
        let key =
            format!("'registry_values:{STORE_KEY}\\Maximum Allowed Service Sessions Per User'");
        assert!(s.contains(&format!("__exctl_emit {key} 'KeyExists' $true")));
        assert!(s.contains(&format!("__exctl_emit {key} 'KeyExists' $false")));
        assert!(s.contains("Get-ItemProperty -Path"));
        assert!(s.contains(
            "-Name 'Maximum Allowed Service Sessions Per User' -ErrorAction SilentlyContinue"
        ));
        assert!(s.contains("$t = $k.GetValueKind('Maximum Allowed Service Sessions Per User')"));
        assert!(s.contains("$d = $v.'Maximum Allowed Service Sessions Per User'"));
        assert!(!s.contains("GetValue("), "no raw read unless expandstring");
    }

    #[test]
    fn a_missing_value_is_created_with_its_key() {
        let (r, _) = parse(SESSIONS);
        let refs: Vec<&Resource> = r.iter().collect();
        let c = RegistryValues
            .diff(&refs, &obs(&r[0], None, RawValue::Null), &ctx())
            .unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(c[0].restart, Some(INFORMATION_STORE));
        assert_eq!(
            c[0].script(),
            format!(
                "New-Item -Path '{STORE_KEY}' -Force\nNew-ItemProperty -Path '{STORE_KEY}' -Name 'Maximum Allowed Service Sessions Per User' -PropertyType 'DWord' -Value 80 -Force"
            )
        );
        // An existing key is never created again: New-Item -Force would replace it.
        let mut o = obs(&r[0], None, RawValue::Null);
        let key = common::obs_key("registry_values", &r[0].id);
        o.insert(&key, KEY_EXISTS, RawValue::Str("True".into()));
        let c = RegistryValues.diff(&refs, &o, &ctx()).unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Create);
        assert_eq!(
            c[0].commands,
            vec![
                Command::new("New-ItemProperty")
                    .param("Path", STORE_KEY)
                    .param("Name", "Maximum Allowed Service Sessions Per User")
                    .param("PropertyType", "DWord")
                    .param("Value", 80)
                    .switch("Force")
            ]
        );
        // Not knowing whether the key exists is an error, not a guess.
        let mut o = Observations::default();
        o.insert(&key, "__exists", RawValue::Str("False".into()));
        let e = RegistryValues.diff(&refs, &o, &ctx()).unwrap_err();
        assert!(e.message.contains("whether the key exists"), "{e}");
    }

    #[test]
    fn a_string_80_is_not_a_dword_80() {
        let (r, _) = parse(SESSIONS);
        let refs: Vec<&Resource> = r.iter().collect();
        let c = RegistryValues
            .diff(
                &refs,
                &obs(&r[0], Some("String"), RawValue::Str("80".into())),
                &ctx(),
            )
            .unwrap();
        parse_all(&c);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].action, Action::Update);
        assert_eq!(c[0].attrs[0].name, "Type");
        assert_eq!(c[0].attrs[0].before, Some(Value::Str("string".into())));
        assert_eq!(c[0].attrs[0].after, Some(Value::Str("dword".into())));
        assert_eq!(c[0].attrs[1].before, Some(Value::Str("80".into())));
        assert_eq!(c[0].attrs[1].after, Some(Value::Int(80)));
        assert!(
            c[0].script()
                .contains("-PropertyType 'DWord' -Value 80 -Force")
        );
        // Same type and value: nothing to do; other value: an update of the value only.
        let none = RegistryValues
            .diff(
                &refs,
                &obs(&r[0], Some("DWord"), RawValue::Str("80".into())),
                &ctx(),
            )
            .unwrap();
        assert!(none.is_empty());
        let c = RegistryValues
            .diff(
                &refs,
                &obs(&r[0], Some("DWord"), RawValue::Str("16".into())),
                &ctx(),
            )
            .unwrap();
        parse_all(&c);
        assert_eq!((c[0].attrs.len(), c[0].unchanged), (1, 1));
        assert_eq!(c[0].attrs[0].before, Some(Value::Int(16)));
    }

    #[test]
    fn large_dwords_and_qwords_read_back_signed() {
        let (r, _) = parse(
            "- {path: HKLM\\S, name: a, type: dword, value: 4294967295}\n- {path: HKLM\\S, name: b, type: qword, value: 18446744073709551615}\n",
        );
        let refs = vec![&r[0]];
        assert!(
            RegistryValues
                .diff(
                    &refs,
                    &obs(&r[0], Some("DWord"), RawValue::Str("-1".into())),
                    &ctx()
                )
                .unwrap()
                .is_empty()
        );
        let c = RegistryValues
            .diff(&refs, &obs(&r[0], None, RawValue::Null), &ctx())
            .unwrap();
        parse_all(&c);
        assert!(
            c[0].script()
                .contains("-PropertyType 'DWord' -Value -1 -Force"),
            "{}",
            c[0].script()
        );
        let refs = vec![&r[1]];
        assert!(
            RegistryValues
                .diff(
                    &refs,
                    &obs(&r[1], Some("QWord"), RawValue::Str("-1".into())),
                    &ctx()
                )
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn multistrings_and_expandstrings_compare_exactly() {
        let (r, _) = parse(
            "- {path: HKLM\\S, name: m, type: multistring, value: [a, b]}\n- {path: HKLM\\S, name: e, type: expandstring, value: '%SystemRoot%\\x'}\n",
        );
        let refs = vec![&r[0]];
        let same = obs(
            &r[0],
            Some("MultiString"),
            RawValue::List(vec!["a".into(), "b".into()]),
        );
        assert!(
            RegistryValues
                .diff(&refs, &same, &ctx())
                .unwrap()
                .is_empty()
        );
        let other = obs(
            &r[0],
            Some("MultiString"),
            RawValue::List(vec!["b".into(), "a".into()]),
        );
        let c = RegistryValues.diff(&refs, &other, &ctx()).unwrap();
        parse_all(&c);
        assert!(
            c[0].script()
                .contains("-PropertyType 'MultiString' -Value 'a','b' -Force")
        );
        let refs = vec![&r[1]];
        assert!(
            RegistryValues
                .observe(&refs, &ctx())
                .contains("$r = $k.GetValue('e', $null, 'DoNotExpandEnvironmentNames')")
        );
        let mut o = obs(
            &r[1],
            Some("ExpandString"),
            RawValue::Str("C:\\Windows\\x".into()),
        );
        o.insert(
            &common::obs_key("registry_values", &r[1].id),
            "Raw",
            RawValue::Str("%SystemRoot%\\x".into()),
        );
        assert!(RegistryValues.diff(&refs, &o, &ctx()).unwrap().is_empty());
    }

    #[test]
    fn absent_values_are_removed_and_errors_surface() {
        let (r, _) = parse("- {path: HKLM\\S, name: old, ensure: absent}\n");
        let refs: Vec<&Resource> = r.iter().collect();
        let c = RegistryValues
            .diff(
                &refs,
                &obs(&r[0], Some("DWord"), RawValue::Str("1".into())),
                &ctx(),
            )
            .unwrap();
        parse_all(&c);
        assert_eq!(c[0].action, Action::Delete);
        assert_eq!(
            c[0].script(),
            "Remove-ItemProperty -Path 'HKLM:\\S' -Name 'old'"
        );
        assert!(
            RegistryValues
                .diff(&refs, &obs(&r[0], None, RawValue::Null), &ctx())
                .unwrap()
                .is_empty()
        );
        let mut o = Observations::default();
        o.insert(
            &common::obs_key("registry_values", &r[0].id),
            "__error",
            RawValue::Str("Requested registry access is not allowed.".into()),
        );
        let e = RegistryValues.diff(&refs, &o, &ctx()).unwrap_err();
        assert_eq!(e.message, "Requested registry access is not allowed.");
    }

    #[test]
    fn hostile_paths_names_and_data_stay_inside_literals() {
        let build = |v: &str| {
            let name = v.replace(['*', '?', '[', ']', '`'], "-");
            let yaml_path = format!(
                "HKLM\\SOFTWARE\\{}",
                v.replace('\\', "/").replace(['*', '?', '[', ']', '`'], "-")
            );
            let r = Resource {
                kind: "registry_values",
                id: format!("{yaml_path}\\{name}"),
                ensure: Ensure::Present,
                attrs: vec![
                    DesiredAttr {
                        name: "Type".into(),
                        value: Value::Str("expandstring".into()),
                        span: Span::point(exctl_manifest::FileId(0), Default::default()),
                    },
                    DesiredAttr {
                        name: "Value".into(),
                        value: Value::Str(v.into()),
                        span: Span::point(exctl_manifest::FileId(0), Default::default()),
                    },
                ],
                payload: Payload::new(RegistryValue {
                    path: normalize_path(&yaml_path).unwrap(),
                    name,
                    ty: Some(RegType::ExpandString),
                }),
                restart: None,
                sensitive: vec![],
                span: Span::point(exctl_manifest::FileId(0), Default::default()),
            };
            let refs = vec![&r];
            let observe = RegistryValues.observe(&refs, &ctx());
            let apply = RegistryValues
                .diff(&refs, &obs(&r, None, RawValue::Null), &ctx())
                .unwrap()[0]
                .script()
                .clone();
            (observe, apply)
        };
        let (ob, ab) = build("benign");
        let (oh, ah) = build(HOSTILE);
        assert_contained(&ah, &ab, HOSTILE);
        assert_contained(&oh, &ob, &HOSTILE.replace(['*', '?', '[', ']', '`'], "-"));
    }
}

#[cfg(test)]
mod reading_tests {
    use super::*;

    #[test]
    fn a_reading_observes_one_dword_and_current_decodes_it_as_diff_does() {
        let name = "Maximum Allowed Service Sessions Per User";
        let r = reading(STORE_KEY, name);
        let ctx = ObserveContext {
            host: "EX01",
            version: crate::version::Version::Sp3,
        };
        let script = RegistryValues.observe(&[&r], &ctx);
        common::testutil::assert_parses(&script);
        assert!(script.contains(&format!("-Name '{name}'")), "{script}");
        let key = common::obs_key("registry_values", &r.id);
        let mut o = Observations::default();
        o.insert(&key, "__exists", RawValue::Str("False".into()));
        assert_eq!(current(&o, &r), Ok(None));
        o.insert(&key, "__exists", RawValue::Str("True".into()));
        o.insert(&key, "Type", RawValue::Str("DWord".into()));
        o.insert(&key, "Value", RawValue::Str("-1".into()));
        // A DWORD is unsigned: PowerShell prints 0xFFFFFFFF as -1.
        assert_eq!(current(&o, &r), Ok(Some(Value::Int(4_294_967_295))));
        o.insert(&key, "__error", RawValue::Str("access denied".into()));
        assert_eq!(current(&o, &r).unwrap_err().message, "access denied");
    }
}
