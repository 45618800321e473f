//! Commands as data: a cmdlet name with named parameters whose values are typed literals.
//!
//! A change that exctl makes on a server is a list of [`Command`]s, not script text, so
//! that it can be stored in plan files and compared structurally, and sent either as
//! PowerShell text (through [`Command::to_script`], the one renderer) or as a PSRP
//! command with parameters (which a NoLanguage endpoint such as Exchange's
//! `Microsoft.Exchange` accepts: no variables, no script blocks, literals only).
//!
//! # Rendering
//!
//! `Set-ImapSettings -Server 'EX01' -MaxConnections 20 -Banner 'a''b' -SSLBindings
//! '0.0.0.0:993','[::]:993' -Confirm:$false -Force`:
//!
//! | argument | rendered as |
//! |---|---|
//! | `Str` | single-quoted by [`crate::quote`] |
//! | `Int` | decimal (`i64::MIN` as `([long]::MinValue)`, see [`crate::literal`]) |
//! | `Bool` | attached with a colon, `-Name:$true` / `-Name:$false` (a switch parameter then binds too) |
//! | `Null` | `-Name $null` |
//! | `List` | `a,b` for two or more elements, `@(,a)` for one (an array, not a scalar), `@()` for none |
//! | `Switch` | `-Name` alone |
//!
//! Command and parameter names come from exctl's code, never from a manifest; values may
//! come from anywhere and are only ever written as literals.
//!
//! `exctl_pwsh_interp::parse_command` reads a rendered command back with the interpreter's
//! parser (for tests and fakes that receive script text).

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::literal::{Value, literal, quote};

/// One command: a cmdlet or function by name, with named parameters in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The command's name (`Set-ImapSettings`).
    pub name: String,
    /// Its parameters, in the order they are rendered.
    pub params: Vec<Param>,
}

/// A named parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The name without the dash.
    pub name: String,
    /// Its value.
    pub value: Arg,
}

/// A typed literal value of a parameter.
///
/// In a plan file (serde) an argument is the JSON value itself (`"text"`, `42`, `true`,
/// `null`, `[...]`), and a switch is `{"switch": true}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Text; nothing in it is interpreted.
    Str(String),
    /// A whole number.
    Int(i64),
    /// `$true` / `$false`.
    Bool(bool),
    /// `$null`.
    Null,
    /// An array of values.
    List(Vec<Arg>),
    /// A switch parameter that is present (`-Force`).
    Switch,
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Str(s.to_owned())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Str(s)
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Str(s.clone())
    }
}

impl From<i64> for Arg {
    fn from(i: i64) -> Self {
        Arg::Int(i)
    }
}

impl From<i32> for Arg {
    fn from(i: i32) -> Self {
        Arg::Int(i64::from(i))
    }
}

impl From<u32> for Arg {
    fn from(i: u32) -> Self {
        Arg::Int(i64::from(i))
    }
}

impl From<bool> for Arg {
    fn from(b: bool) -> Self {
        Arg::Bool(b)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl<T: Into<Arg>> From<Vec<T>> for Arg {
    fn from(v: Vec<T>) -> Self {
        Arg::List(v.into_iter().map(Into::into).collect())
    }
}

impl Command {
    /// A command without parameters.
    pub fn new(name: impl Into<String>) -> Self {
        Command {
            name: name.into(),
            params: Vec::new(),
        }
    }

    /// Adds `-name value`.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Arg>) -> Self {
        self.params.push(Param {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a switch (`-name`).
    pub fn switch(self, name: impl Into<String>) -> Self {
        self.param(name, Arg::Switch)
    }

    /// The value of parameter `name` (compared ignoring case, as PowerShell binds).
    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| &p.value)
    }

    /// The command as one line of PowerShell 2.0 (see the module docs).
    pub fn to_script(&self) -> String {
        let mut out = self.name.clone();
        for p in &self.params {
            out.push_str(" -");
            out.push_str(&p.name);
            match &p.value {
                Arg::Switch => {}
                Arg::Bool(b) => out.push_str(if *b { ":$true" } else { ":$false" }),
                v => {
                    out.push(' ');
                    write_argument(&mut out, v);
                }
            }
        }
        out
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_script())
    }
}

impl Arg {
    /// The argument as a literal value (a switch is `$true`).
    pub fn to_value(&self) -> Value {
        match self {
            Arg::Str(s) => Value::Str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Null => Value::Null,
            Arg::List(l) => Value::Array(l.iter().map(Arg::to_value).collect()),
            Arg::Switch => Value::Bool(true),
        }
    }
}

/// A parameter's value in argument mode.
fn write_argument(out: &mut String, v: &Arg) {
    match v {
        Arg::Str(s) => out.push_str(&quote(s)),
        // Two or more elements: argument mode's own array syntax. The elements are
        // expressions that end before the comma (literals never end in a quote that the
        // comma could join).
        Arg::List(items) if items.len() >= 2 => {
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&literal(&item.to_value()));
            }
        }
        // One element stays an array (`@(,x)`), none is `@()`: `literal` writes both so.
        other => out.push_str(&literal(&other.to_value())),
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Str(v) => s.serialize_str(v),
            Arg::Int(i) => s.serialize_i64(*i),
            Arg::Bool(b) => s.serialize_bool(*b),
            Arg::Null => s.serialize_none(),
            Arg::List(l) => l.serialize(s),
            Arg::Switch => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("switch", &true)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ArgVisitor)
    }
}

struct ArgVisitor;

impl<'de> Visitor<'de> for ArgVisitor {
    type Value = Arg;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a whole number, a boolean, null, a list or {\"switch\": true}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Arg, E> {
        Ok(Arg::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Arg, E> {
        Ok(Arg::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Arg, E> {
        Ok(Arg::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Arg, E> {
        i64::try_from(v)
            .map(Arg::Int)
            .map_err(|_| E::custom(format!("{v} does not fit a 64-bit signed number")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Arg, E> {
        Ok(Arg::Bool(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Arg, E> {
        Ok(Arg::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Arg, E> {
        Ok(Arg::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arg, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Arg>()? {
            items.push(item);
        }
        Ok(Arg::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Arg, A::Error> {
        let mut switch = false;
        while let Some(key) = map.next_key::<String>()? {
            if key != "switch" {
                return Err(de::Error::unknown_field(&key, &["switch"]));
            }
            switch = map.next_value::<bool>()?;
        }
        if switch {
            Ok(Arg::Switch)
        } else {
            Err(de::Error::custom("a switch is {\"switch\": true}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imap() -> Command {
        Command::new("Set-ImapSettings")
            .param("Server", "EX01")
            .param("MaxConnections", 20)
            .param("Banner", "a'b")
            .param("SSLBindings", vec!["0.0.0.0:993", "[::]:993"])
            .param("Confirm", false)
            .param("Enabled", true)
    }

    #[test]
    fn renders_powershell_2_text() {
        assert_eq!(
            imap().to_script(),
            "Set-ImapSettings -Server 'EX01' -MaxConnections 20 -Banner 'a''b' -SSLBindings '0.0.0.0:993','[::]:993' -Confirm:$false -Enabled:$true"
        );
        assert_eq!(imap().to_string(), imap().to_script());
        let c = Command::new("New-Item")
            .param("Path", "HKLM:\\X")
            .switch("Force")
            .param("Value", Arg::Null)
            .param("One", vec!["x"])
            .param("None", Vec::<String>::new())
            .param("Min", i64::MIN)
            .param("Neg", vec![-1, 2]);
        assert_eq!(
            c.to_script(),
            "New-Item -Path 'HKLM:\\X' -Force -Value $null -One @(,'x') -None @() -Min ([long]::MinValue) -Neg -1,2"
        );
    }

    #[test]
    fn serde_keeps_every_argument() {
        let c = imap().switch("Force").param("Nothing", Arg::Null).param(
            "Nested",
            Arg::List(vec![Arg::Int(1), Arg::List(vec![]), Arg::Null]),
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#"{"name":"Force","value":{"switch":true}}"#),
            "{json}"
        );
        assert!(
            json.contains(r#"{"name":"MaxConnections","value":20}"#),
            "{json}"
        );
        let back: Command = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<Arg>(r#"{"switch": false}"#).is_err());
        assert!(serde_json::from_str::<Arg>("1.5").is_err());
        assert!(serde_json::from_str::<Arg>("18446744073709551615").is_err());
    }
}
