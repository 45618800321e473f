//! The value model of the interpreter: what variables hold, pipelines carry and host
//! commands take and return.
//!
//! Values are cheap to clone: strings, arrays and byte arrays are `Arc`s; hashtables and
//! objects are shared mutable references (`Arc<Mutex<..>>`), as in .NET, so that a function
//! that adds to a hashtable it was given changes the caller's hashtable. Arrays are
//! immutable and copied on element assignment (`$a[0] = 1` changes the variable's array, not
//! other variables holding the same array); scripts rarely alias arrays, and this keeps
//! `Value` simple. Everything is `Send + Sync`, so a host may keep values in shared state.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::ast::ScriptBlockAst;
use super::error::ErrorRecord;

/// A PowerShell value.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Value {
    /// `$null`.
    #[default]
    Null,
    /// `System.Boolean`.
    Bool(bool),
    /// `System.Int32`.
    Int(i32),
    /// `System.Int64`.
    Long(i64),
    /// `System.Double`.
    Double(f64),
    /// `System.Char`.
    Char(char),
    /// `System.String`.
    String(Arc<str>),
    /// `System.Object[]`.
    Array(Arc<Vec<Value>>),
    /// `System.Byte[]`.
    Bytes(Arc<Vec<u8>>),
    /// `System.Collections.Hashtable`.
    Hashtable(Hashtable),
    /// `System.Management.Automation.ScriptBlock`.
    ScriptBlock(ScriptBlock),
    /// A property bag with type names: `PSCustomObject`s and every object a host returns.
    Object(PsObject),
    /// `System.Management.Automation.ErrorRecord`.
    Error(Arc<ErrorRecord>),
    /// `System.TimeSpan`, in 100 ns ticks.
    TimeSpan(i64),
    /// `System.DateTime`, in 100 ns ticks since 0001-01-01 (kind unspecified).
    DateTime(i64),
    /// A type (`[int]` evaluated as a value).
    Type(TypeRef),
    /// Objects the interpreter provides itself (`$Host`, encodings, `[Console]::Out`).
    Builtin(Builtin),
}

/// A type as a value: its full .NET name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRef(pub Arc<str>);

/// Objects provided by the interpreter itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Builtin {
    /// `$Host`.
    Host,
    /// `$Host.UI`.
    HostUi,
    /// `[Text.Encoding]::UTF8`.
    Utf8,
    /// `[Text.Encoding]::Unicode` (UTF-16LE).
    Unicode,
    /// `[Text.Encoding]::ASCII`.
    Ascii,
    /// `[Console]::Out`.
    ConsoleOut,
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("$null"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Long(i) => write!(f, "Long({i})"),
            Value::Double(d) => write!(f, "Double({d})"),
            Value::Char(c) => write!(f, "Char({c:?})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::Array(a) => f.debug_list().entries(a.iter()).finish(),
            Value::Bytes(b) => write!(f, "Bytes(len {})", b.len()),
            Value::Hashtable(h) => f.debug_map().entries(h.entries()).finish(),
            Value::ScriptBlock(sb) => write!(f, "ScriptBlock({:?})", sb.text()),
            Value::Object(o) => write!(f, "Object({:?}, {:?})", o.type_names(), o.properties()),
            Value::Error(e) => write!(f, "Error({:?})", e.message),
            Value::TimeSpan(t) => write!(f, "TimeSpan({t})"),
            Value::DateTime(t) => write!(f, "DateTime({t})"),
            Value::Type(t) => write!(f, "Type({})", t.0),
            Value::Builtin(b) => write!(f, "Builtin({b:?})"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A script block value: code that can be invoked.
#[derive(Clone, Debug)]
pub struct ScriptBlock(pub Arc<ScriptBlockAst>);

impl ScriptBlock {
    /// The text between the braces.
    pub fn text(&self) -> String {
        self.0.body_text()
    }
}

/// How a hashtable key compares: strings case-insensitively, other values by type and value,
/// reference types by identity (as .NET's `Hashtable` with PowerShell's key comparer).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(u64),
    Char(char),
    Str(String),
    Ref(usize),
}

fn key_of(v: &Value) -> Key {
    match v {
        Value::Null => Key::Null,
        Value::Bool(b) => Key::Bool(*b),
        Value::Int(i) => Key::Int(*i),
        Value::Long(i) => Key::Long(*i),
        Value::Double(d) => Key::Double(d.to_bits()),
        Value::Char(c) => Key::Char(*c),
        Value::String(s) => Key::Str(s.to_lowercase()),
        Value::Array(a) => Key::Ref(Arc::as_ptr(a) as usize),
        Value::Bytes(a) => Key::Ref(Arc::as_ptr(a) as usize),
        Value::Hashtable(h) => Key::Ref(Arc::as_ptr(&h.0) as usize),
        Value::ScriptBlock(s) => Key::Ref(Arc::as_ptr(&s.0) as usize),
        Value::Object(o) => Key::Ref(Arc::as_ptr(&o.0) as usize),
        Value::Error(e) => Key::Ref(Arc::as_ptr(e) as usize),
        Value::TimeSpan(t) => Key::Long(*t),
        Value::DateTime(t) => Key::Long(*t),
        Value::Type(t) => Key::Str(format!("[type]{}", t.0.to_lowercase())),
        Value::Builtin(b) => Key::Str(format!("[builtin]{b:?}")),
    }
}

#[derive(Debug, Default)]
struct HashData {
    entries: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

/// `System.Collections.Hashtable`: keys in insertion order, string keys case-insensitive.
/// A shared reference: clones see the same table.
#[derive(Clone, Default)]
pub struct Hashtable(Arc<Mutex<HashData>>);

impl fmt::Debug for Hashtable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

/// `Add` found the key already present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateKey;

impl Hashtable {
    /// An empty table.
    pub fn new() -> Hashtable {
        Hashtable::default()
    }

    /// A table with these entries; later duplicates replace earlier ones.
    pub fn from_entries(entries: impl IntoIterator<Item = (Value, Value)>) -> Hashtable {
        let table = Hashtable::new();
        for (k, v) in entries {
            table.insert(k, v);
        }
        table
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        lock(&self.0).entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value for a key.
    pub fn get(&self, key: &Value) -> Option<Value> {
        let data = lock(&self.0);
        let i = *data.index.get(&key_of(key))?;
        data.entries.get(i).map(|(_, v)| v.clone())
    }

    /// The value for a string key.
    pub fn get_str(&self, key: &str) -> Option<Value> {
        self.get(&Value::from(key))
    }

    /// Whether the key is present.
    pub fn contains_key(&self, key: &Value) -> bool {
        lock(&self.0).index.contains_key(&key_of(key))
    }

    /// Sets a key, replacing its value if present (the indexer's semantics).
    pub fn insert(&self, key: Value, value: Value) {
        let mut data = lock(&self.0);
        let k = key_of(&key);
        if let Some(&i) = data.index.get(&k) {
            if let Some(slot) = data.entries.get_mut(i) {
                slot.1 = value;
            }
        } else {
            let i = data.entries.len();
            data.entries.push((key, value));
            data.index.insert(k, i);
        }
    }

    /// Adds a key that must not be present (`Add`).
    pub fn add(&self, key: Value, value: Value) -> Result<(), DuplicateKey> {
        if self.contains_key(&key) {
            return Err(DuplicateKey);
        }
        self.insert(key, value);
        Ok(())
    }

    /// Removes a key; returns whether it was there.
    pub fn remove(&self, key: &Value) -> bool {
        let mut data = lock(&self.0);
        let Some(i) = data.index.remove(&key_of(key)) else {
            return false;
        };
        if i < data.entries.len() {
            data.entries.remove(i);
        }
        let data = &mut *data;
        for (n, (k, _)) in data.entries.iter().enumerate().skip(i) {
            data.index.insert(key_of(k), n);
        }
        true
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let mut data = lock(&self.0);
        data.entries.clear();
        data.index.clear();
    }

    /// The entries, in insertion order.
    pub fn entries(&self) -> Vec<(Value, Value)> {
        lock(&self.0).entries.clone()
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> Vec<Value> {
        lock(&self.0)
            .entries
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The values, in insertion order.
    pub fn values(&self) -> Vec<Value> {
        lock(&self.0)
            .entries
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether two handles refer to the same table.
    pub fn same(&self, other: &Hashtable) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug)]
struct ObjectData {
    type_names: Vec<String>,
    properties: Mutex<Vec<(String, Value)>>,
    display: Option<String>,
}

/// A property bag with a list of type names, most derived first: a `PSCustomObject` made by
/// a script, or any object a host returns (an Exchange `ImapAdConfiguration`, a registry
/// key, a service ...). Property names are case-insensitive and kept in order. A shared
/// reference: clones see the same properties.
#[derive(Clone)]
pub struct PsObject(Arc<ObjectData>);

impl fmt::Debug for PsObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.type_names(), self.properties())
    }
}

/// The type names of a script's custom objects.
pub const PS_CUSTOM_OBJECT: &str = "System.Management.Automation.PSCustomObject";

impl PsObject {
    /// An object with these type names (most derived first) and no properties.
    pub fn new<S: Into<String>>(type_names: impl IntoIterator<Item = S>) -> PsObject {
        PsObject(Arc::new(ObjectData {
            type_names: type_names.into_iter().map(Into::into).collect(),
            properties: Mutex::new(Vec::new()),
            display: None,
        }))
    }

    /// A `PSCustomObject`, as `New-Object PSObject -Property` makes.
    pub fn custom() -> PsObject {
        PsObject::new([PS_CUSTOM_OBJECT, "System.Object"])
    }

    /// An object with these type names whose string form (`ToString()`, `"$x"`, and how it
    /// prints as a property value) is `display`, like an Exchange `Unlimited` value prints
    /// `unlimited` or an identity prints its name.
    pub fn with_display<S: Into<String>>(
        type_names: impl IntoIterator<Item = S>,
        display: impl Into<String>,
    ) -> PsObject {
        PsObject(Arc::new(ObjectData {
            type_names: type_names.into_iter().map(Into::into).collect(),
            properties: Mutex::new(Vec::new()),
            display: Some(display.into()),
        }))
    }

    /// Adds or replaces a property, builder style.
    pub fn with(self, name: impl Into<String>, value: impl Into<Value>) -> PsObject {
        self.set(&name.into(), value.into());
        self
    }

    /// The type names, most derived first.
    pub fn type_names(&self) -> &[String] {
        &self.0.type_names
    }

    /// The string form given with [`PsObject::with_display`].
    pub fn display(&self) -> Option<&str> {
        self.0.display.as_deref()
    }

    /// A property's value (case-insensitive name).
    pub fn get(&self, name: &str) -> Option<Value> {
        lock(&self.0.properties)
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Whether the property exists.
    pub fn has(&self, name: &str) -> bool {
        lock(&self.0.properties)
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Sets a property, adding it at the end if absent.
    pub fn set(&self, name: &str, value: Value) {
        let mut props = lock(&self.0.properties);
        if let Some(slot) = props.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            slot.1 = value;
        } else {
            props.push((name.to_owned(), value));
        }
    }

    /// The properties, in order.
    pub fn properties(&self) -> Vec<(String, Value)> {
        lock(&self.0.properties).clone()
    }

    /// Whether two handles refer to the same object.
    pub fn same(&self, other: &PsObject) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether one of its type names is `name` (case-insensitive; a leading `System.` is
    /// optional on either side).
    pub fn is_type(&self, name: &str) -> bool {
        let want = name.trim_start_matches("System.");
        self.0
            .type_names
            .iter()
            .any(|t| t.trim_start_matches("System.").eq_ignore_ascii_case(want))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Long(i)
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Long(i64::from(i))
    }
}
impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}
impl From<char> for Value {
    fn from(c: char) -> Self {
        Value::Char(c)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Arc::from(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(Arc::from(s))
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(Arc::new(v))
    }
}
impl From<Hashtable> for Value {
    fn from(h: Hashtable) -> Self {
        Value::Hashtable(h)
    }
}
impl From<PsObject> for Value {
    fn from(o: PsObject) -> Self {
        Value::Object(o)
    }
}
impl From<ErrorRecord> for Value {
    fn from(e: ErrorRecord) -> Self {
        Value::Error(Arc::new(e))
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<&exctl_pwsh::literal::Value> for Value {
    /// The value a [`exctl_pwsh::literal::literal`] evaluates to in PowerShell: integers that
    /// fit an `Int32` are `Int32`, others `Int64`.
    fn from(v: &exctl_pwsh::literal::Value) -> Self {
        use exctl_pwsh::literal::Value as L;
        match v {
            L::Null => Value::Null,
            L::Bool(b) => Value::Bool(*b),
            L::Int(i) => match i32::try_from(*i) {
                Ok(small) => Value::Int(small),
                Err(_) => Value::Long(*i),
            },
            L::Str(s) => Value::from(s.as_str()),
            L::Array(items) => Value::from(items.iter().map(Value::from).collect::<Vec<_>>()),
            L::Hashtable(entries) => Value::Hashtable(Hashtable::from_entries(
                entries
                    .iter()
                    .map(|(k, v)| (Value::from(k.as_str()), Value::from(v))),
            )),
        }
    }
}

/// How deep conversions to text and comparisons of nested values go before giving up
/// (a value can nest arbitrarily deep: `$a = ,$a` in a loop).
pub(crate) const MAX_VALUE_DEPTH: usize = 64;

impl Value {
    /// A string value.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// Whether this is `$null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is an array (`Object[]` or `Byte[]`).
    pub fn as_array(&self) -> Option<Vec<Value>> {
        match self {
            Value::Array(a) => Some(a.as_ref().clone()),
            Value::Bytes(b) => Some(b.iter().map(|x| Value::Int(i32::from(*x))).collect()),
            _ => None,
        }
    }

    /// Whether this is an array that the pipeline enumerates.
    pub fn is_collection(&self) -> bool {
        matches!(self, Value::Array(_) | Value::Bytes(_))
    }

    /// The value as a `PsObject`, if it is one.
    pub fn as_object(&self) -> Option<&PsObject> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// PowerShell's conversion to bool (`if ($x)`).
    pub fn is_true(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Long(i) => *i != 0,
            Value::Double(d) => *d != 0.0,
            Value::Char(c) => *c != '\0',
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => match a.as_slice() {
                [] => false,
                [one] => one.is_true(),
                _ => true,
            },
            Value::Bytes(b) => match b.as_slice() {
                [] => false,
                [one] => *one != 0,
                _ => true,
            },
            Value::TimeSpan(t) => *t != 0,
            _ => true,
        }
    }

    /// The full .NET type name, e.g. `System.String`, `System.Object[]`.
    pub fn type_name(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(_) => "System.Boolean".into(),
            Value::Int(_) => "System.Int32".into(),
            Value::Long(_) => "System.Int64".into(),
            Value::Double(_) => "System.Double".into(),
            Value::Char(_) => "System.Char".into(),
            Value::String(_) => "System.String".into(),
            Value::Array(_) => "System.Object[]".into(),
            Value::Bytes(_) => "System.Byte[]".into(),
            Value::Hashtable(_) => "System.Collections.Hashtable".into(),
            Value::ScriptBlock(_) => "System.Management.Automation.ScriptBlock".into(),
            Value::Object(o) => o
                .type_names()
                .first()
                .cloned()
                .unwrap_or_else(|| PS_CUSTOM_OBJECT.into()),
            Value::Error(_) => "System.Management.Automation.ErrorRecord".into(),
            Value::TimeSpan(_) => "System.TimeSpan".into(),
            Value::DateTime(_) => "System.DateTime".into(),
            Value::Type(_) => "System.RuntimeType".into(),
            Value::Builtin(b) => match b {
                Builtin::Host => "System.Management.Automation.Internal.Host.InternalHost".into(),
                Builtin::HostUi => {
                    "System.Management.Automation.Internal.Host.InternalHostUserInterface".into()
                }
                Builtin::Utf8 => "System.Text.UTF8Encoding".into(),
                Builtin::Unicode => "System.Text.UnicodeEncoding".into(),
                Builtin::Ascii => "System.Text.ASCIIEncoding".into(),
                Builtin::ConsoleOut => "System.IO.TextWriter".into(),
            },
        }
    }

    /// All type names the value is an instance of, most derived first (for `-is`).
    pub fn type_names(&self) -> Vec<String> {
        let mut names = match self {
            Value::Object(o) => o.type_names().to_vec(),
            Value::Null => return Vec::new(),
            _ => vec![self.type_name()],
        };
        match self {
            Value::Int(_)
            | Value::Long(_)
            | Value::Double(_)
            | Value::Bool(_)
            | Value::Char(_)
            | Value::TimeSpan(_)
            | Value::DateTime(_) => names.push("System.ValueType".into()),
            Value::Array(_) | Value::Bytes(_) => names.push("System.Array".into()),
            Value::Error(_) | Value::Object(_) => {
                names.push("System.Management.Automation.PSObject".into());
            }
            _ => {}
        }
        names.push("System.Object".into());
        names
    }

    /// The type name as it appears in a category info: the last segment, e.g. `String`,
    /// `Object[]`, `PSCustomObject`. Empty for `$null`.
    pub fn short_type_name(&self) -> String {
        if self.is_null() {
            return String::new();
        }
        let full = self.type_name();
        full.rsplit('.').next().unwrap_or(&full).to_owned()
    }

    /// PowerShell's conversion to string (`[string]$x`, `"$x"`): numbers in the invariant
    /// culture, `True`/`False`, arrays joined with spaces.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        write_text(&mut out, self, 0);
        out
    }
}

fn write_text(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => {}
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Long(i) => out.push_str(&i.to_string()),
        Value::Double(d) => out.push_str(&format_double(*d)),
        Value::Char(c) => out.push(*c),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            if depth >= MAX_VALUE_DEPTH {
                out.push_str("System.Object[]");
                return;
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_text(out, item, depth + 1);
            }
        }
        Value::Bytes(bytes) => {
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&b.to_string());
            }
        }
        Value::Hashtable(_) => out.push_str("System.Collections.Hashtable"),
        Value::ScriptBlock(sb) => out.push_str(&sb.text()),
        Value::Object(o) => {
            if let Some(display) = o.display() {
                out.push_str(display);
            } else if o.is_type(PS_CUSTOM_OBJECT) {
                // PowerShell 2.0 renders a custom object as `@{a=1; b=2}`.
                out.push_str("@{");
                for (i, (name, value)) in o.properties().iter().enumerate() {
                    if i > 0 {
                        out.push_str("; ");
                    }
                    out.push_str(name);
                    out.push('=');
                    if depth < MAX_VALUE_DEPTH {
                        write_text(out, value, depth + 1);
                    }
                }
                out.push('}');
            } else {
                out.push_str(&v.type_name());
            }
        }
        Value::Error(e) => out.push_str(&e.message),
        Value::TimeSpan(t) => out.push_str(&format_timespan(*t)),
        Value::DateTime(t) => out.push_str(&super::convert::format_datetime(*t)),
        Value::Type(t) => out.push_str(&t.0),
        Value::Builtin(_) => out.push_str(&v.type_name()),
    }
}

/// `TimeSpan.ToString()`: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_timespan(ticks: i64) -> String {
    let neg = ticks < 0;
    let t = ticks.unsigned_abs();
    let frac = t % 10_000_000;
    let secs = t / 10_000_000;
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if d > 0 {
        out.push_str(&format!("{d}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

/// `Double.ToString()` as .NET Framework does it: up to 15 significant digits, scientific
/// notation below 1E-05 and from 1E+15.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if d == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.14e}", d);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-5..15).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('E');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            let (a, b) = digits.split_at(int_len);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        }
    }
    out
}
