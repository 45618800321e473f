//! The host's registry as the PowerShell registry provider shows it: keys holding typed
//! values, reached through `HKLM:\...` (and `Registry::HKEY_LOCAL_MACHINE\...`) paths, with
//! Windows PowerShell 2.0's behaviour and error texts for Get-/Set-/New-/Remove-
//! ItemProperty, Test-Path, Get-Item and New-Item:
//!
//! - Set-ItemProperty on an existing value keeps its type (the provider converts the new
//!   value to it); on a missing value it creates one typed from the .NET value, as
//!   `RegistryKey.SetValue(name, object)` does: an Int32 becomes REG_DWORD, a string
//!   REG_SZ (so `-Value 40` and `-Value '40'` differ), a string array REG_MULTI_SZ,
//!   anything else REG_SZ of its text.
//! - New-ItemProperty refuses an existing value ("The property already exists.") unless
//!   `-Force`.
//! - New-Item on an existing key fails ("A key at this path already exists."); with
//!   `-Force` it RECREATES the key, discarding its values and subkeys, which is what the
//!   real provider does and a classic way to lose settings.
//!
//! - Get-Item returns the key as a `Microsoft.Win32.RegistryKey`, whose methods scripts
//!   call: [`Registry::value_kind`] is `GetValueKind(name)` (what `Get-ItemProperty`
//!   cannot tell: a DWORD 80 and a REG_SZ "80" print alike), [`Registry::raw_value`] is
//!   `GetValue(name, default, 'DoNotExpandEnvironmentNames')` (REG_EXPAND_SZ unexpanded).
//!
//! Keys are kept flat, by lower-cased full path, so a state file lists them plainly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{ErrorCategory, ExchangeError};
use super::value::{SimObject, SimValue, parse_ps_integer};

/// A typed registry value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegValue {
    /// REG_DWORD.
    DWord(u32),
    /// REG_QWORD.
    QWord(u64),
    /// REG_SZ.
    String(String),
    /// REG_EXPAND_SZ (shown expanded).
    ExpandString(String),
    /// REG_MULTI_SZ.
    MultiString(Vec<String>),
    /// REG_BINARY.
    Binary(Vec<u8>),
}

/// The `-PropertyType`/`-Type` names (`RegistryValueKind`).
pub const KINDS: &[&str] = &[
    "String",
    "ExpandString",
    "Binary",
    "DWord",
    "MultiString",
    "QWord",
    "Unknown",
];

impl RegValue {
    /// The `RegistryValueKind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            RegValue::DWord(_) => "DWord",
            RegValue::QWord(_) => "QWord",
            RegValue::String(_) => "String",
            RegValue::ExpandString(_) => "ExpandString",
            RegValue::MultiString(_) => "MultiString",
            RegValue::Binary(_) => "Binary",
        }
    }

    /// How Get-ItemProperty shows it: a DWORD as a signed Int32 (0xFFFFFFFF is -1), a
    /// QWORD as Int64, REG_EXPAND_SZ with its variables expanded.
    pub fn shown(&self) -> SimValue {
        match self {
            RegValue::DWord(d) => SimValue::Int(*d as i32),
            RegValue::QWord(q) => SimValue::Long(*q as i64),
            RegValue::String(s) => SimValue::String(s.clone()),
            RegValue::ExpandString(s) => SimValue::String(expand(s)),
            RegValue::MultiString(v) => SimValue::strings(v.iter().cloned()),
            RegValue::Binary(b) => {
                SimValue::List(b.iter().map(|x| SimValue::Int(i32::from(*x))).collect())
            }
        }
    }

    /// Converts a PowerShell value to `kind` (`None`: inferred from the value's type).
    pub fn convert(value: &SimValue, kind: Option<&str>) -> Option<RegValue> {
        let kind = kind.filter(|k| !k.eq_ignore_ascii_case("Unknown"));
        let Some(kind) = kind else {
            return Some(match value {
                SimValue::Int(i) => RegValue::DWord(*i as u32),
                SimValue::List(items) => {
                    RegValue::MultiString(items.iter().map(SimValue::to_text).collect())
                }
                other => RegValue::String(other.to_text()),
            });
        };
        let int = || value.as_i64();
        Some(match kind.to_ascii_lowercase().as_str() {
            "dword" => {
                let n = int()?;
                // PowerShell accepts an Int32 (negative wraps) or a UInt32.
                if n < i64::from(i32::MIN) || n > i64::from(u32::MAX) {
                    return None;
                }
                RegValue::DWord(n as u32)
            }
            "qword" => RegValue::QWord(int()? as u64),
            "string" => RegValue::String(value.to_text()),
            "expandstring" => RegValue::ExpandString(value.to_text()),
            "multistring" => {
                RegValue::MultiString(value.items().iter().map(SimValue::to_text).collect())
            }
            "binary" => RegValue::Binary(
                value
                    .items()
                    .iter()
                    .map(|v| v.as_i64().and_then(|n| u8::try_from(n).ok()))
                    .collect::<Option<Vec<u8>>>()?,
            ),
            _ => return None,
        })
    }

    /// The DWORD, if this is one.
    pub fn as_dword(&self) -> Option<u32> {
        match self {
            RegValue::DWord(d) => Some(*d),
            _ => None,
        }
    }
}

/// Expands the environment variables a server has in REG_EXPAND_SZ values.
fn expand(s: &str) -> String {
    let vars = [
        ("%systemroot%", "C:\\Windows"),
        ("%windir%", "C:\\Windows"),
        ("%programfiles%", "C:\\Program Files"),
        ("%systemdrive%", "C:"),
    ];
    let mut out = s.to_string();
    for (var, val) in vars {
        while let Some(at) = out.to_ascii_lowercase().find(var) {
            out.replace_range(at..at + var.len(), val);
        }
    }
    out
}

/// One key: its path as created and its values in creation order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegKey {
    /// `HKEY_LOCAL_MACHINE\SYSTEM\...`, as spelled when created.
    pub path: String,
    /// Name and value; names compare case-insensitively.
    #[serde(default)]
    pub values: Vec<(String, RegValue)>,
}

impl RegKey {
    fn get(&self, name: &str) -> Option<&RegValue> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// A registry path resolved to its canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegPath {
    /// `HKEY_LOCAL_MACHINE\SYSTEM\...` (no trailing backslash).
    pub native: String,
    /// As the user wrote it (for error messages).
    pub given: String,
}

impl RegPath {
    fn key(&self) -> String {
        self.native.to_ascii_lowercase()
    }

    /// The PSPath: `Microsoft.PowerShell.Core\Registry::HKEY_LOCAL_MACHINE\...`.
    pub fn ps_path(&self) -> String {
        format!("Microsoft.PowerShell.Core\\Registry::{}", self.native)
    }

    fn parent(&self) -> Option<String> {
        self.native.rsplit_once('\\').map(|(p, _)| p.to_string())
    }

    fn child_name(&self) -> String {
        self.native
            .rsplit_once('\\')
            .map_or(self.native.clone(), |(_, c)| c.to_string())
    }
}

/// Parses the path forms PowerShell accepts for the registry provider.
pub fn parse_path(given: &str) -> Option<RegPath> {
    let t = given.trim();
    let lower = t.to_ascii_lowercase();
    let strip = |prefix: &str| {
        lower
            .starts_with(prefix)
            .then(|| t.get(prefix.len()..).unwrap_or(""))
    };
    let (hive, rest) = if let Some(r) = strip("hklm:") {
        ("HKEY_LOCAL_MACHINE", r)
    } else if let Some(r) = strip("hkcu:") {
        ("HKEY_CURRENT_USER", r)
    } else {
        let r = strip("microsoft.powershell.core\\registry::")
            .or_else(|| strip("registry::"))
            .unwrap_or(t);
        let rl = r.to_ascii_lowercase();
        if let Some(x) = rl.strip_prefix("hkey_local_machine") {
            (
                "HKEY_LOCAL_MACHINE",
                r.get(r.len() - x.len()..).unwrap_or(""),
            )
        } else if let Some(x) = rl.strip_prefix("hkey_current_user") {
            (
                "HKEY_CURRENT_USER",
                r.get(r.len() - x.len()..).unwrap_or(""),
            )
        } else {
            return None;
        }
    };
    let parts: Vec<&str> = rest.split(['\\', '/']).filter(|p| !p.is_empty()).collect();
    let mut native = hive.to_string();
    for p in parts {
        native.push('\\');
        native.push_str(p);
    }
    Some(RegPath {
        native,
        given: t.to_string(),
    })
}

/// The registry of one host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Registry {
    /// Keys by lower-cased native path.
    pub keys: BTreeMap<String, RegKey>,
}

fn no_property(name: &str, path: &RegPath, class: &str) -> ExchangeError {
    ExchangeError::new(
        format!("Property {name} does not exist at path {}.", path.native),
        ErrorCategory::InvalidArgument,
        "PSArgumentException",
        format!(
            "System.Management.Automation.PSArgumentException,Microsoft.PowerShell.Commands.{class}"
        ),
    )
    .with_target(name)
}

impl Registry {
    /// Creates a key and every missing parent (for seeding).
    pub fn ensure_key(&mut self, native: &str) {
        let Some(p) = parse_path(native) else { return };
        let mut cur = String::new();
        for part in p.native.split('\\') {
            if !cur.is_empty() {
                cur.push('\\');
            }
            cur.push_str(part);
            self.keys
                .entry(cur.to_ascii_lowercase())
                .or_insert_with(|| RegKey {
                    path: cur.clone(),
                    values: Vec::new(),
                });
        }
    }

    /// Sets a value directly (for seeding and tests).
    pub fn put(&mut self, native: &str, name: &str, value: RegValue) {
        self.ensure_key(native);
        if let Some(p) = parse_path(native)
            && let Some(k) = self.keys.get_mut(&p.key())
        {
            match k
                .values
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                Some(slot) => slot.1 = value,
                None => k.values.push((name.to_string(), value)),
            }
        }
    }

    /// A value, if present.
    pub fn value(&self, native: &str, name: &str) -> Option<&RegValue> {
        let p = parse_path(native)?;
        self.keys.get(&p.key())?.get(name)
    }

    fn resolve(&self, path: &str, class: &str) -> Result<RegPath, ExchangeError> {
        let p = parse_path(path).ok_or_else(|| ExchangeError::path_not_found(path, class))?;
        if self.keys.contains_key(&p.key()) {
            Ok(p)
        } else {
            Err(ExchangeError::path_not_found(&p.given, class))
        }
    }

    fn item_object(&self, p: &RegPath, names: Option<&[String]>) -> SimObject {
        let mut o = SimObject::new("System.Management.Automation.PSCustomObject");
        if let Some(k) = self.keys.get(&p.key()) {
            for (n, v) in &k.values {
                let wanted =
                    names.is_none_or(|ns| ns.iter().any(|w| w == "*" || w.eq_ignore_ascii_case(n)));
                if wanted {
                    o.push(n, v.shown());
                }
            }
        }
        o.push("PSPath", SimValue::String(p.ps_path()));
        o.push(
            "PSParentPath",
            SimValue::String(format!(
                "Microsoft.PowerShell.Core\\Registry::{}",
                p.parent().unwrap_or_default()
            )),
        );
        o.push("PSChildName", SimValue::String(p.child_name()));
        let drive = if p.native.starts_with("HKEY_CURRENT_USER") {
            "HKCU"
        } else {
            "HKLM"
        };
        o.push("PSDrive", SimValue::str(drive));
        o.push(
            "PSProvider",
            SimValue::str("Microsoft.PowerShell.Core\\Registry"),
        );
        o
    }

    /// Get-ItemProperty -Path [-Name].
    pub fn get_item_property(
        &self,
        path: &str,
        names: Option<&[String]>,
    ) -> Result<SimObject, ExchangeError> {
        let p = self.resolve(path, "GetItemPropertyCommand")?;
        if let (Some(ns), Some(k)) = (names, self.keys.get(&p.key())) {
            for n in ns {
                if n != "*" && k.get(n).is_none() {
                    return Err(no_property(n, &p, "GetItemPropertyCommand"));
                }
            }
        }
        Ok(self.item_object(&p, names))
    }

    /// Set-ItemProperty -Path -Name -Value [-Type].
    pub fn set_item_property(
        &mut self,
        path: &str,
        name: &str,
        value: &SimValue,
        kind: Option<&str>,
    ) -> Result<(), ExchangeError> {
        let p = self.resolve(path, "SetItemPropertyCommand")?;
        let key = self
            .keys
            .get_mut(&p.key())
            .ok_or_else(|| ExchangeError::path_not_found(&p.given, "SetItemPropertyCommand"))?;
        let existing_kind = key.get(name).map(RegValue::kind);
        let kind = kind.or(existing_kind);
        let v = RegValue::convert(value, kind).ok_or_else(|| {
            ExchangeError::cannot_convert(
                "Value",
                &value.to_text(),
                kind.unwrap_or("Object"),
                "Set-ItemProperty",
            )
        })?;
        match key
            .values
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = v,
            None => key.values.push((name.to_string(), v)),
        }
        Ok(())
    }

    /// New-ItemProperty -Path -Name [-PropertyType] [-Value] [-Force]: the new property
    /// as an object.
    pub fn new_item_property(
        &mut self,
        path: &str,
        name: &str,
        kind: Option<&str>,
        value: &SimValue,
        force: bool,
    ) -> Result<SimObject, ExchangeError> {
        let p = self.resolve(path, "NewItemPropertyCommand")?;
        let v = RegValue::convert(value, kind).ok_or_else(|| {
            ExchangeError::cannot_convert(
                "Value",
                &value.to_text(),
                kind.unwrap_or("Object"),
                "New-ItemProperty",
            )
        })?;
        let key = self
            .keys
            .get_mut(&p.key())
            .ok_or_else(|| ExchangeError::path_not_found(&p.given, "NewItemPropertyCommand"))?;
        match key
            .values
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(_) if !force => {
                return Err(ExchangeError::new(
                    "The property already exists.",
                    ErrorCategory::ResourceExists,
                    "IOException",
                    "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemPropertyCommand",
                )
                .with_target(p.native.clone()));
            }
            Some(slot) => slot.1 = v,
            None => key.values.push((name.to_string(), v)),
        }
        Ok(self.item_object(&p, Some(&[name.to_string()])))
    }

    /// Remove-ItemProperty -Path -Name.
    pub fn remove_item_property(&mut self, path: &str, name: &str) -> Result<(), ExchangeError> {
        let p = self.resolve(path, "RemoveItemPropertyCommand")?;
        let key = self
            .keys
            .get_mut(&p.key())
            .ok_or_else(|| ExchangeError::path_not_found(&p.given, "RemoveItemPropertyCommand"))?;
        let before = key.values.len();
        key.values.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if key.values.len() == before {
            return Err(no_property(name, &p, "RemoveItemPropertyCommand"));
        }
        Ok(())
    }

    /// Test-Path: true for an existing key (a value is not an item).
    pub fn test_path(&self, path: &str) -> bool {
        parse_path(path).is_some_and(|p| self.keys.contains_key(&p.key()))
    }

    /// New-Item -Path [-Force]: the key as an object.
    pub fn new_item(&mut self, path: &str, force: bool) -> Result<SimObject, ExchangeError> {
        let p = parse_path(path)
            .ok_or_else(|| ExchangeError::path_not_found(path, "NewItemCommand"))?;
        let k = p.key();
        if self.keys.contains_key(&k) {
            if !force {
                return Err(ExchangeError::new(
                    "A key at this path already exists.",
                    ErrorCategory::ResourceExists,
                    "IOException",
                    "System.IO.IOException,Microsoft.PowerShell.Commands.NewItemCommand",
                )
                .with_target(p.native.clone()));
            }
            // -Force recreates the key: its values and subkeys are gone.
            let prefix = format!("{k}\\");
            self.keys
                .retain(|key, _| key != &k && !key.starts_with(&prefix));
        }
        if let Some(parent) = p.parent()
            && !self.keys.contains_key(&parent.to_ascii_lowercase())
        {
            if !force {
                return Err(ExchangeError::path_not_found(&parent, "NewItemCommand"));
            }
            self.ensure_key(&parent);
        }
        self.keys.insert(
            k,
            RegKey {
                path: p.native.clone(),
                values: Vec::new(),
            },
        );
        Ok(self.key_object(&p))
    }
}

/// The type names of a live registry key (local PowerShell objects are not
/// deserialized: the key's methods work on them).
pub const KEY_TYPE_NAMES: &[&str] = &[
    "Microsoft.Win32.RegistryKey",
    "System.MarshalByRefObject",
    "System.Object",
];

/// .NET's message when a value or key is missing (Win32 ERROR_FILE_NOT_FOUND), as
/// `RegistryKey.GetValueKind` throws it.
pub const FILE_NOT_FOUND: &str = "The system cannot find the file specified.";

impl Registry {
    /// The key object Get-Item and New-Item return: `Name` (the native path, which the
    /// key's methods use), `SubKeyCount`, `ValueCount`, `Property` (the value names) and
    /// the provider's `PS*` properties.
    fn key_object(&self, p: &RegPath) -> SimObject {
        let key = p.key();
        let prefix = format!("{key}\\");
        let sub_keys = self
            .keys
            .keys()
            .filter(|k| {
                k.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('\\'))
            })
            .count();
        let names: Vec<String> = self
            .keys
            .get(&key)
            .map(|k| k.values.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        let native = self
            .keys
            .get(&key)
            .map_or_else(|| p.native.clone(), |k| k.path.clone());
        SimObject {
            type_names: KEY_TYPE_NAMES.iter().map(|t| t.to_string()).collect(),
            properties: Vec::new(),
        }
        .with("Name", SimValue::String(native))
        .with(
            "SubKeyCount",
            SimValue::Int(i32::try_from(sub_keys).unwrap_or(i32::MAX)),
        )
        .with(
            "ValueCount",
            SimValue::Int(i32::try_from(names.len()).unwrap_or(i32::MAX)),
        )
        .with("Property", SimValue::strings(names))
        .with("PSPath", SimValue::String(p.ps_path()))
        .with(
            "PSParentPath",
            SimValue::String(format!(
                "Microsoft.PowerShell.Core\\Registry::{}",
                p.parent().unwrap_or_default()
            )),
        )
        .with("PSChildName", SimValue::String(p.child_name()))
        .with(
            "PSProvider",
            SimValue::str("Microsoft.PowerShell.Core\\Registry"),
        )
        .with("PSIsContainer", true)
    }

    /// Get-Item -Path on a registry path: the key, or PowerShell's "Cannot find path".
    pub fn get_item(&self, path: &str) -> Result<SimObject, ExchangeError> {
        let p = self.resolve(path, "GetItemCommand")?;
        Ok(self.key_object(&p))
    }

    /// `RegistryKey.GetValueKind(name)` on the key at `key_path` (a native path, as a
    /// key object's `Name`): the `RegistryValueKind` name, or .NET's IOException text
    /// when the key or value is missing.
    pub fn value_kind(&self, key_path: &str, name: &str) -> Result<&'static str, String> {
        let p = parse_path(key_path).ok_or_else(|| FILE_NOT_FOUND.to_string())?;
        let key = self
            .keys
            .get(&p.key())
            .ok_or_else(|| FILE_NOT_FOUND.to_string())?;
        key.get(name)
            .map(RegValue::kind)
            .ok_or_else(|| FILE_NOT_FOUND.to_string())
    }

    /// `RegistryKey.GetValue(name)` (`expand` true: REG_EXPAND_SZ expanded, as by
    /// default) or with `DoNotExpandEnvironmentNames` (`expand` false). `None` when the
    /// key or value is missing: .NET then returns the caller's default.
    pub fn raw_value(&self, key_path: &str, name: &str, expand: bool) -> Option<SimValue> {
        let p = parse_path(key_path)?;
        let v = self.keys.get(&p.key())?.get(name)?;
        Some(match v {
            RegValue::ExpandString(s) if !expand => SimValue::String(s.clone()),
            // GetValue returns a DWORD as Int32 and a QWORD as Int64, like the provider.
            other => other.shown(),
        })
    }

    /// `RegistryKey.GetValueNames()`.
    pub fn value_names(&self, key_path: &str) -> Option<Vec<String>> {
        let p = parse_path(key_path)?;
        Some(
            self.keys
                .get(&p.key())?
                .values
                .iter()
                .map(|(n, _)| n.clone())
                .collect(),
        )
    }
}

/// Converts a `-PropertyType`/`-Type` argument to a kind name, or the error PowerShell
/// gives for an unknown one.
pub fn parse_kind(arg: &SimValue, param: &str, cmdlet: &str) -> Result<String, ExchangeError> {
    let t = arg.to_text();
    // Numeric RegistryValueKind values: 1 String, 2 ExpandString, 3 Binary, 4 DWord,
    // 7 MultiString, 11 QWord.
    let by_number = parse_ps_integer(&t).and_then(|n| match n {
        1 => Some("String"),
        2 => Some("ExpandString"),
        3 => Some("Binary"),
        4 => Some("DWord"),
        7 => Some("MultiString"),
        11 => Some("QWord"),
        _ => None,
    });
    KINDS
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(t.trim()))
        .or(by_number)
        .map(str::to_string)
        .ok_or_else(|| ExchangeError::not_in_set(param, t.trim(), KINDS, cmdlet))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem";

    fn reg() -> Registry {
        let mut r = Registry::default();
        r.ensure_key(PS);
        r
    }

    #[test]
    fn paths_in_every_form_reach_one_key() {
        let r = reg();
        assert!(r.test_path(PS));
        assert!(r.test_path(
            "Registry::HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem\\"
        ));
        assert!(r.test_path("hklm:/system/currentcontrolset/services/msexchangeis"));
        assert!(!r.test_path("HKLM:\\SOFTWARE\\Nope"));
        assert!(!r.test_path("C:\\Windows"));
    }

    #[test]
    fn set_item_property_types_new_values_from_the_dotnet_type() {
        let mut r = reg();
        r.set_item_property(PS, "A", &SimValue::Int(40), None)
            .unwrap();
        r.set_item_property(PS, "B", &SimValue::str("40"), None)
            .unwrap();
        assert_eq!(r.value(PS, "A"), Some(&RegValue::DWord(40)));
        assert_eq!(r.value(PS, "B"), Some(&RegValue::String("40".into())));
        // An existing value keeps its type.
        r.set_item_property(PS, "A", &SimValue::str("50"), None)
            .unwrap();
        assert_eq!(r.value(PS, "A"), Some(&RegValue::DWord(50)));
        assert!(
            r.set_item_property(PS, "A", &SimValue::str("x"), None)
                .is_err()
        );
    }

    #[test]
    fn errors_have_powershell_texts() {
        let mut r = reg();
        let e = r
            .get_item_property("HKLM:\\SOFTWARE\\Nope", None)
            .unwrap_err();
        assert_eq!(
            e.message,
            "Cannot find path 'HKLM:\\SOFTWARE\\Nope' because it does not exist."
        );
        assert_eq!(
            e.fully_qualified_error_id,
            "PathNotFound,Microsoft.PowerShell.Commands.GetItemPropertyCommand"
        );
        let e = r
            .get_item_property(
                PS,
                Some(&["Maximum Allowed Service Sessions Per User".into()]),
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            "Property Maximum Allowed Service Sessions Per User does not exist at path HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem."
        );
        r.new_item_property(PS, "X", Some("DWord"), &SimValue::Int(1), false)
            .unwrap();
        let e = r
            .new_item_property(PS, "X", Some("DWord"), &SimValue::Int(2), false)
            .unwrap_err();
        assert_eq!(e.message, "The property already exists.");
        assert_eq!(e.category, ErrorCategory::ResourceExists);
        r.new_item_property(PS, "X", Some("QWord"), &SimValue::Int(2), true)
            .unwrap();
        assert_eq!(r.value(PS, "X"), Some(&RegValue::QWord(2)));
        assert!(r.remove_item_property(PS, "X").is_ok());
        assert!(r.remove_item_property(PS, "X").is_err());
    }

    #[test]
    fn typed_values_show_like_the_provider() {
        let mut r = reg();
        r.put(PS, "D", RegValue::DWord(u32::MAX));
        r.put(PS, "E", RegValue::ExpandString("%SystemRoot%\\x".into()));
        r.put(PS, "M", RegValue::MultiString(vec!["a".into(), "b".into()]));
        let o = r.get_item_property(PS, None).unwrap();
        assert_eq!(o.get("D"), Some(&SimValue::Int(-1)));
        assert_eq!(o.get("E"), Some(&SimValue::str("C:\\Windows\\x")));
        assert_eq!(o.get("M"), Some(&SimValue::strings(["a", "b"])));
        assert_eq!(o.text("PSChildName"), "ParametersSystem");
        let kind = parse_kind(&SimValue::str("dword"), "PropertyType", "New-ItemProperty");
        assert_eq!(kind.as_deref(), Ok("DWord"));
        assert!(
            parse_kind(
                &SimValue::str("REG_DWORD"),
                "PropertyType",
                "New-ItemProperty"
            )
            .is_err()
        );
    }

    #[test]
    fn get_item_keys_tell_value_kinds_and_raw_values() {
        let mut r = reg();
        r.put(PS, "D", RegValue::DWord(80));
        r.put(PS, "S", RegValue::String("80".into()));
        r.put(PS, "E", RegValue::ExpandString("%SystemRoot%\\x".into()));
        r.ensure_key(&format!("{PS}\\Sub"));
        let k = r.get_item(PS).unwrap();
        assert_eq!(k.type_names[0], "Microsoft.Win32.RegistryKey");
        assert_eq!(
            k.text("Name"),
            "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem"
        );
        assert_eq!(k.get("SubKeyCount"), Some(&SimValue::Int(1)));
        assert_eq!(k.get("Property"), Some(&SimValue::strings(["D", "S", "E"])));
        let name = k.text("Name");
        assert_eq!(r.value_kind(&name, "d"), Ok("DWord"));
        assert_eq!(r.value_kind(&name, "S"), Ok("String"));
        assert_eq!(r.value_kind(&name, "E"), Ok("ExpandString"));
        assert_eq!(r.value_kind(&name, "nope"), Err(FILE_NOT_FOUND.to_string()));
        assert_eq!(
            r.raw_value(&name, "E", false),
            Some(SimValue::str("%SystemRoot%\\x"))
        );
        assert_eq!(
            r.raw_value(&name, "E", true),
            Some(SimValue::str("C:\\Windows\\x"))
        );
        assert_eq!(r.raw_value(&name, "D", false), Some(SimValue::Int(80)));
        assert_eq!(r.raw_value(&name, "nope", false), None);
        let e = r.get_item("HKLM:\\SOFTWARE\\Nope").unwrap_err();
        assert_eq!(
            e.fully_qualified_error_id,
            "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
        );
    }

    #[test]
    fn new_item_force_recreates_the_key() {
        let mut r = reg();
        r.put(PS, "V", RegValue::DWord(1));
        r.ensure_key(&format!("{PS}\\Sub"));
        let e = r.new_item(PS, false).unwrap_err();
        assert_eq!(e.message, "A key at this path already exists.");
        r.new_item(PS, true).unwrap();
        assert_eq!(r.value(PS, "V"), None);
        assert!(!r.test_path(&format!("{PS}\\Sub")));
        assert!(r.new_item("HKLM:\\SOFTWARE\\A\\B", false).is_err());
        assert!(r.new_item("HKLM:\\SOFTWARE\\A\\B", true).is_ok());
    }
}
