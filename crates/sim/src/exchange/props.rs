//! Typed property bags: the settings objects (IMAP settings, receive connectors,
//! throttling policies) are tables of property definitions — name, Exchange type, range,
//! the release that added it — over a map of values. One table drives the Set- cmdlet's
//! validation, the Get- cmdlet's output, the cmdlet parameter lists and the state file.
//!
//! Values are stored already normalized to the form a remote session shows, so a bag
//! serializes readably (`MaxMessageSize: 10 MB (10,485,760 bytes)`), a state file may use
//! any accepted input form (`MaxMessageSize: 20MB`), and Get- output is a plain copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ExchangeError;
use super::sp::Sp;
use super::value::{ByteSize, SimValue, TimeSpan, Unlimited};

/// The Exchange type of a property, with its accepted range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Int32` within `min..=max`.
    Int {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
    /// `Nullable<UInt32>` within `min..=max`; `$null` means no limit.
    NullableUInt {
        /// The smallest value accepted.
        min: i64,
        /// The largest value accepted.
        max: i64,
    },
    /// `Boolean`.
    Bool,
    /// `String` (may be `$null`).
    Str,
    /// `Unlimited<int>` within `min..=max`, or `unlimited`.
    Unlimited {
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// `ByteQuantifiedSize` within `min..=max` bytes.
    Bytes {
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// `Unlimited<ByteQuantifiedSize>` (the log quota): bytes or `unlimited`.
    UnlimitedBytes,
    /// `EnhancedTimeSpan` within `min..=max` seconds.
    Span {
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// An enum: one of the names (matched case-insensitively, stored as spelled here).
    Enum(&'static [&'static str]),
    /// A flags enum: a comma-separated set of names, shown `A, B`.
    Flags(&'static [&'static str]),
    /// `MultiValuedProperty` of strings.
    Multi,
}

impl Kind {
    /// The accepted range, where the type has one: numbers, bytes, and time spans in
    /// seconds.
    pub fn range(self) -> Option<(i128, i128)> {
        match self {
            Kind::Int { min, max } | Kind::NullableUInt { min, max } => {
                Some((i128::from(min), i128::from(max)))
            }
            Kind::Unlimited { min, max } | Kind::Bytes { min, max } | Kind::Span { min, max } => {
                Some((i128::from(min), i128::from(max)))
            }
            _ => None,
        }
    }

    /// The .NET type name a parameter table shows.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Int { .. } => "Int32",
            Kind::NullableUInt { .. } => "UInt32",
            Kind::Bool => "Boolean",
            Kind::Str => "String",
            Kind::Unlimited { .. } | Kind::UnlimitedBytes => "Unlimited",
            Kind::Bytes { .. } => "ByteQuantifiedSize",
            Kind::Span { .. } => "EnhancedTimeSpan",
            Kind::Enum(_) | Kind::Flags(_) => "Enum",
            Kind::Multi => "MultiValuedProperty",
        }
    }
}

/// One property of a settings object.
#[derive(Debug, Clone, Copy)]
pub struct PropDef {
    /// Exchange's property (and Set- parameter) name.
    pub name: &'static str,
    /// Its type and range.
    pub kind: Kind,
    /// The release that added it.
    pub since: Sp,
    /// Whether the Set- cmdlet has a parameter for it.
    pub settable: bool,
}

/// A settable property.
pub const fn def(name: &'static str, kind: Kind, since: Sp) -> PropDef {
    PropDef {
        name,
        kind,
        since,
        settable: true,
    }
}

/// A read-only property (shown by Get-, no Set- parameter).
pub const fn read_only(name: &'static str, kind: Kind, since: Sp) -> PropDef {
    PropDef {
        name,
        kind,
        since,
        settable: false,
    }
}

/// The definition of `name` in `defs` that exists in `sp`.
pub fn find<'a>(defs: &'a [PropDef], name: &str, sp: Sp) -> Option<&'a PropDef> {
    defs.iter()
        .find(|d| d.name.eq_ignore_ascii_case(name) && d.since <= sp)
}

fn convert_error(def: &PropDef, value: &SimValue, cmdlet: &str) -> ExchangeError {
    let type_name = match def.kind {
        Kind::Int { .. } => "System.Int32",
        Kind::NullableUInt { .. } => "System.UInt32",
        Kind::Bool => "System.Boolean",
        Kind::Unlimited { .. } => "Microsoft.Exchange.Data.Unlimited`1[System.Int32]",
        Kind::UnlimitedBytes => {
            "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]"
        }
        Kind::Bytes { .. } => "Microsoft.Exchange.Data.ByteQuantifiedSize",
        Kind::Span { .. } => "Microsoft.Exchange.Data.EnhancedTimeSpan",
        _ => "System.String",
    };
    ExchangeError::cannot_convert(def.name, &value.to_text(), type_name, cmdlet)
}

/// Validates and normalizes a value for a property: the stored (and displayed) form.
pub fn normalize(def: &PropDef, value: &SimValue, cmdlet: &str) -> Result<SimValue, ExchangeError> {
    let bad = || convert_error(def, value, cmdlet);
    match def.kind {
        Kind::Int { min, max } => {
            let n = value.as_i64().ok_or_else(bad)?;
            if n < i64::from(i32::MIN) || n > i64::from(i32::MAX) {
                return Err(ExchangeError::cannot_convert_because(
                    def.name,
                    &value.to_text(),
                    "System.Int32",
                    cmdlet,
                    "Value was either too large or too small for an Int32.",
                ));
            }
            if n < min || n > max {
                return Err(ExchangeError::out_of_range(
                    def.name,
                    &min.to_string(),
                    &max.to_string(),
                    &n.to_string(),
                ));
            }
            Ok(SimValue::Int(n as i32))
        }
        Kind::NullableUInt { min, max } => {
            if value.is_null() {
                return Ok(SimValue::Null);
            }
            let n = value.as_i64().ok_or_else(bad)?;
            if n < 0 || n > i64::from(u32::MAX) {
                return Err(ExchangeError::cannot_convert_because(
                    def.name,
                    &value.to_text(),
                    "System.UInt32",
                    cmdlet,
                    "Value was either too large or too small for a UInt32.",
                ));
            }
            if n < min || n > max {
                return Err(ExchangeError::out_of_range(
                    def.name,
                    &min.to_string(),
                    &max.to_string(),
                    &n.to_string(),
                ));
            }
            Ok(SimValue::UInt(n as u32))
        }
        Kind::Bool => value.as_bool().map(SimValue::Bool).ok_or_else(bad),
        Kind::Str => Ok(if value.is_null() {
            SimValue::Null
        } else {
            SimValue::String(value.to_text())
        }),
        Kind::Unlimited { min, max } => match Unlimited::parse(value).ok_or_else(bad)? {
            Unlimited::Unlimited => Ok(SimValue::str("unlimited")),
            Unlimited::Value(n) if n < min || n > max => Err(ExchangeError::out_of_range(
                def.name,
                &min.to_string(),
                &max.to_string(),
                &n.to_string(),
            )),
            Unlimited::Value(n) => Ok(SimValue::String(n.to_string())),
        },
        Kind::UnlimitedBytes => {
            if let SimValue::String(s) = value
                && s.trim().eq_ignore_ascii_case("unlimited")
            {
                return Ok(SimValue::str("unlimited"));
            }
            let b = ByteSize::parse(value).ok_or_else(bad)?;
            Ok(SimValue::String(b.to_string()))
        }
        Kind::Bytes { min, max } => {
            let b = ByteSize::parse(value).ok_or_else(bad)?;
            if b.0 < min || b.0 > max {
                return Err(ExchangeError::out_of_range(
                    def.name,
                    &format!("{min}B"),
                    &format!("{max}B"),
                    &b.to_string(),
                ));
            }
            Ok(SimValue::String(b.to_string()))
        }
        Kind::Span { min, max } => {
            let t = TimeSpan::parse(value).ok_or_else(bad)?;
            if t.0 < min || t.0 > max {
                return Err(ExchangeError::out_of_range(
                    def.name,
                    &TimeSpan(min).to_string(),
                    &TimeSpan(max).to_string(),
                    &t.to_string(),
                ));
            }
            Ok(SimValue::String(t.to_string()))
        }
        Kind::Enum(names) => {
            let text = value.to_text();
            let t = text.trim();
            // Enums also accept their numeric value (Exchange documents "1:Hourly"...);
            // a table starting at 1 puts an empty placeholder at 0.
            let by_number = t
                .parse::<usize>()
                .ok()
                .and_then(|n| names.get(n).copied())
                .filter(|n| !n.is_empty());
            let listed: Vec<&str> = names.iter().copied().filter(|n| !n.is_empty()).collect();
            listed
                .iter()
                .copied()
                .find(|n| n.eq_ignore_ascii_case(t))
                .or(by_number)
                .map(SimValue::str)
                .ok_or_else(|| ExchangeError::not_in_set(def.name, t, &listed, cmdlet))
        }
        Kind::Flags(names) => {
            let mut chosen: Vec<&str> = Vec::new();
            for item in value.items() {
                for part in item.to_text().split(',') {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    let Some(n) = names.iter().copied().find(|n| n.eq_ignore_ascii_case(part))
                    else {
                        return Err(ExchangeError::not_in_set(def.name, part, names, cmdlet));
                    };
                    if !chosen.contains(&n) {
                        chosen.push(n);
                    }
                }
            }
            // Shown in declaration order, as .NET formats a flags enum.
            let shown: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| chosen.contains(n))
                .collect();
            Ok(SimValue::String(if shown.is_empty() {
                "None".to_string()
            } else {
                shown.join(", ")
            }))
        }
        Kind::Multi => Ok(SimValue::List(
            value
                .items()
                .into_iter()
                .map(|v| SimValue::String(v.to_text()))
                .collect(),
        )),
    }
}

/// A settings object's values, by property name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bag(pub BTreeMap<String, SimValue>);

impl Bag {
    /// A bag with these defaults.
    pub fn from_defaults(values: Vec<(&str, SimValue)>) -> Self {
        Bag(values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect())
    }

    /// The stored value, if set.
    pub fn get(&self, name: &str) -> Option<&SimValue> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// An Int32 property (0 when missing, which valid bags never are).
    pub fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(SimValue::as_i64).unwrap_or(0)
    }

    /// A timespan property in seconds.
    pub fn seconds(&self, name: &str) -> u64 {
        self.get(name)
            .and_then(TimeSpan::parse)
            .map(|t| t.0)
            .unwrap_or(0)
    }

    /// Sets a value under the definition's spelling.
    pub fn set(&mut self, def: &PropDef, value: SimValue) {
        self.0.retain(|k, _| !k.eq_ignore_ascii_case(def.name));
        self.0.insert(def.name.to_string(), value);
    }

    /// Removes a value (throttling policies: back to "not set").
    pub fn unset(&mut self, name: &str) {
        self.0.retain(|k, _| !k.eq_ignore_ascii_case(name));
    }

    /// Re-normalizes every value against `defs` (after loading a state file, where
    /// values may be in any accepted input form). Unknown names are refused so a typo in
    /// a state file does not go unnoticed.
    pub fn normalize_all(&mut self, defs: &[PropDef], what: &str) -> Result<(), ExchangeError> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(d) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(k)) else {
                return Err(ExchangeError::invalid_value(format!(
                    "{what}: unknown property '{k}'"
                )));
            };
            out.insert(d.name.to_string(), normalize(d, v, what)?);
        }
        self.0 = out;
        Ok(())
    }

    /// The properties of `defs` existing in `sp`, in table order, for Get- output
    /// (a missing value shows as `$null`).
    pub fn shown(&self, defs: &[PropDef], sp: Sp) -> Vec<(String, SimValue)> {
        defs.iter()
            .filter(|d| d.since <= sp)
            .map(|d| {
                (
                    d.name.to_string(),
                    self.get(d.name).cloned().unwrap_or(SimValue::Null),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &[PropDef] = &[
        def(
            "MaxConnectionsPerUser",
            Kind::Int {
                min: 1,
                max: 25_000,
            },
            Sp::Rtm,
        ),
        def(
            "MaxMessageSize",
            Kind::Bytes {
                min: 65_536,
                max: 2_147_483_647,
            },
            Sp::Rtm,
        ),
        def(
            "Flags",
            Kind::Flags(&["Tls", "Integrated", "BasicAuth"]),
            Sp::Rtm,
        ),
        def("Roll", Kind::Enum(&["Zero", "Hourly", "Daily"]), Sp::Sp1),
    ];

    #[test]
    fn ranges_and_conversions() {
        let d = &DEFS[0];
        assert_eq!(
            normalize(d, &SimValue::str("40"), "Set-X"),
            Ok(SimValue::Int(40))
        );
        let e = normalize(d, &SimValue::Int(30_000), "Set-X").unwrap_err();
        assert_eq!(e.reason, "DataValidationException");
        assert!(e.message.contains("between 1 and 25000"), "{}", e.message);
        let e = normalize(d, &SimValue::str("forty"), "Set-X").unwrap_err();
        assert_eq!(
            e.fully_qualified_error_id,
            "ParameterArgumentTransformationError,Set-X"
        );
        assert!(normalize(&DEFS[1], &SimValue::str("1KB"), "Set-X").is_err());
        assert_eq!(
            normalize(&DEFS[1], &SimValue::str("20MB"), "Set-X"),
            Ok(SimValue::str("20 MB (20,971,520 bytes)"))
        );
    }

    #[test]
    fn flags_and_enums() {
        assert_eq!(
            normalize(&DEFS[2], &SimValue::str("basicauth, tls"), "Set-X"),
            Ok(SimValue::str("Tls, BasicAuth"))
        );
        assert_eq!(
            normalize(&DEFS[3], &SimValue::str("daily"), "Set-X"),
            Ok(SimValue::str("Daily"))
        );
        assert_eq!(
            normalize(&DEFS[3], &SimValue::str("1"), "Set-X"),
            Ok(SimValue::str("Hourly"))
        );
        assert!(normalize(&DEFS[3], &SimValue::str("Yearly"), "Set-X").is_err());
        assert!(find(DEFS, "roll", Sp::Rtm).is_none());
        assert!(find(DEFS, "roll", Sp::Sp1).is_some());
    }
}
