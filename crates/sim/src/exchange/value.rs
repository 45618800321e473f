//! The values the model hands to the cmdlet binding layer, and the Exchange data types
//! behind them (Unlimited, ByteQuantifiedSize, EnhancedTimeSpan) with their parsing and
//! their text forms.
//!
//! Values are shaped as a REMOTE Exchange session shows them (the supported route, and
//! what exctl reads): remoting deserializes Exchange's rich types into strings, so an
//! `Unlimited<int>` arrives as `"unlimited"` or `"5000"`, a ByteQuantifiedSize as
//! `"10 MB (10,485,760 bytes)"`, an EnhancedTimeSpan as `"00:10:00"`, while primitives
//! (Int32, UInt32, Boolean, DateTime) keep their CLIXML types, `$null` stays null (it
//! prints blank) and multi-valued properties are lists (reference §1, "Remoting turns
//! values into strings").

use std::fmt;

use serde::{Deserialize, Serialize};

use super::clock::SimTime;

/// One property value, as the binding layer will put it in CLIXML.
///
/// It serializes untagged (`16`, `"00:10:00"`, `[a, b]`, `null`) so state files read
/// naturally; a DateTime serializes as its milliseconds and reads back as a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SimValue {
    /// `$null`: printed blank by Format-List.
    Null,
    /// `<B>`: printed `True`/`False`.
    Bool(bool),
    /// `<I32>`.
    Int(i32),
    /// `<U32>` (throttling policy values are `Nullable<UInt32>`).
    UInt(u32),
    /// `<I64>` (QWORD registry values, event log indexes).
    Long(i64),
    /// `<S>`: strings, and every Exchange type remoting flattens to its text.
    String(String),
    /// `<DT>`.
    DateTime(SimTime),
    /// A multi-valued property or an array (`<Obj><LST>`).
    List(Vec<SimValue>),
}

impl SimValue {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        SimValue::String(s.into())
    }

    /// A list of strings.
    pub fn strings<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SimValue::List(
            items
                .into_iter()
                .map(|s| SimValue::String(s.into()))
                .collect(),
        )
    }

    /// `None` as `$null`, else the string.
    pub fn opt_str(s: Option<&str>) -> Self {
        s.map_or(SimValue::Null, SimValue::str)
    }

    /// True for `$null`.
    pub fn is_null(&self) -> bool {
        matches!(self, SimValue::Null)
    }

    /// The text PowerShell would convert this value to (`[string]$x`): what a
    /// `[string]` parameter receives.
    pub fn to_text(&self) -> String {
        match self {
            SimValue::Null => String::new(),
            SimValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            SimValue::Int(i) => i.to_string(),
            SimValue::UInt(u) => u.to_string(),
            SimValue::Long(l) => l.to_string(),
            SimValue::String(s) => s.clone(),
            SimValue::DateTime(t) => t.to_string(),
            SimValue::List(items) => items
                .iter()
                .map(SimValue::to_text)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The value as an integer, if PowerShell would convert it to one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SimValue::Int(i) => Some(i64::from(*i)),
            SimValue::UInt(u) => Some(i64::from(*u)),
            SimValue::Long(l) => Some(*l),
            SimValue::Bool(b) => Some(i64::from(*b)),
            SimValue::String(s) => parse_ps_integer(s),
            _ => None,
        }
    }

    /// The value as the PowerShell truth of a `[bool]` parameter.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            SimValue::Bool(b) => Some(*b),
            SimValue::Int(i) => Some(*i != 0),
            SimValue::UInt(u) => Some(*u != 0),
            SimValue::Long(l) => Some(*l != 0),
            SimValue::String(s) if s.eq_ignore_ascii_case("true") || s == "$true" => Some(true),
            SimValue::String(s) if s.eq_ignore_ascii_case("false") || s == "$false" => Some(false),
            _ => None,
        }
    }

    /// The items of a list, or the value itself as a one-item list (`$null` is empty).
    pub fn items(&self) -> Vec<SimValue> {
        match self {
            SimValue::List(items) => items.clone(),
            SimValue::Null => Vec::new(),
            other => vec![other.clone()],
        }
    }

    /// A JSON rendering for `/sim/state` and debugging.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SimValue::Null => serde_json::Value::Null,
            SimValue::Bool(b) => (*b).into(),
            SimValue::Int(i) => (*i).into(),
            SimValue::UInt(u) => (*u).into(),
            SimValue::Long(l) => (*l).into(),
            SimValue::String(s) => s.clone().into(),
            SimValue::DateTime(t) => t.to_string().into(),
            SimValue::List(items) => items.iter().map(SimValue::to_json).collect(),
        }
    }
}

impl From<&str> for SimValue {
    fn from(s: &str) -> Self {
        SimValue::String(s.to_string())
    }
}

impl From<String> for SimValue {
    fn from(s: String) -> Self {
        SimValue::String(s)
    }
}

impl From<bool> for SimValue {
    fn from(b: bool) -> Self {
        SimValue::Bool(b)
    }
}

impl From<i32> for SimValue {
    fn from(i: i32) -> Self {
        SimValue::Int(i)
    }
}

/// Integers as PowerShell converts strings to them: decimal, `0x` hex, with
/// surrounding spaces.
pub fn parse_ps_integer(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// An object in the output: its type names (most derived first, with the
/// `Deserialized.` prefix a remote session gives them) and its properties in the order
/// Format-List shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimObject {
    /// `TN` entries, e.g. `Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox`.
    pub type_names: Vec<String>,
    /// Name and value, in display order.
    pub properties: Vec<(String, SimValue)>,
}

impl SimObject {
    /// An object of one deserialized type (`System.Object` follows it, as in CLIXML).
    pub fn new(type_name: &str) -> Self {
        SimObject {
            type_names: vec![
                format!("Deserialized.{type_name}"),
                "Deserialized.System.Object".to_string(),
            ],
            properties: Vec::new(),
        }
    }

    /// Appends a property.
    pub fn with(mut self, name: &str, value: impl Into<SimValue>) -> Self {
        self.properties.push((name.to_string(), value.into()));
        self
    }

    /// Appends a property in place.
    pub fn push(&mut self, name: &str, value: impl Into<SimValue>) {
        self.properties.push((name.to_string(), value.into()));
    }

    /// A property by name, case-insensitively (PowerShell member lookup).
    pub fn get(&self, name: &str) -> Option<&SimValue> {
        self.properties
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// A property's text, or empty when missing or null.
    pub fn text(&self, name: &str) -> String {
        self.get(name).map(SimValue::to_text).unwrap_or_default()
    }

    /// A JSON rendering (name → value).
    pub fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .properties
            .iter()
            .map(|(n, v)| (n.clone(), v.to_json()))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Exchange's `Unlimited<T>`: a number or "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unlimited {
    /// No limit; shown `unlimited`.
    Unlimited,
    /// A limit.
    Value(u64),
}

impl fmt::Display for Unlimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlimited::Unlimited => f.write_str("unlimited"),
            Unlimited::Value(v) => write!(f, "{v}"),
        }
    }
}

impl Unlimited {
    /// Parses what a parameter of type `Unlimited` accepts: `unlimited` (any case) or a
    /// non-negative integer.
    pub fn parse(v: &SimValue) -> Option<Self> {
        match v {
            SimValue::String(s) if s.trim().eq_ignore_ascii_case("unlimited") => {
                Some(Unlimited::Unlimited)
            }
            other => other
                .as_i64()
                .and_then(|n| u64::try_from(n).ok())
                .map(Unlimited::Value),
        }
    }
}

/// A size in bytes (`ByteQuantifiedSize`), shown like `10 MB (10,485,760 bytes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ByteSize(pub u64);

const UNITS: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("KB", 1 << 10),
    ("B", 1),
];

/// `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        let (unit, size) = UNITS
            .iter()
            .copied()
            .find(|(_, size)| bytes >= *size)
            .unwrap_or(("B", 1));
        // Exchange prints up to three decimals and drops trailing zeros ("9.766 MB").
        let whole = bytes / size;
        let frac = ((bytes % size) as f64 / size as f64 * 1000.0).round() as u64;
        let (whole, frac) = if frac >= 1000 {
            (whole + 1, 0)
        } else {
            (whole, frac)
        };
        let mut number = whole.to_string();
        if frac > 0 {
            let f3 = format!("{frac:03}");
            number.push('.');
            number.push_str(f3.trim_end_matches('0'));
        }
        write!(f, "{number} {unit} ({} bytes)", group_thousands(bytes))
    }
}

impl ByteSize {
    /// Parses a ByteQuantifiedSize argument: a number of bytes, `10MB`, `10 MB`, `1.5GB`,
    /// or the text Exchange shows (`10 MB (10,485,760 bytes)`).
    pub fn parse(v: &SimValue) -> Option<Self> {
        if let Some(n) = match v {
            SimValue::String(_) => None,
            other => other.as_i64(),
        } {
            return u64::try_from(n).ok().map(ByteSize);
        }
        let SimValue::String(s) = v else { return None };
        let s = s.trim();
        // The displayed form carries the exact byte count in parentheses.
        if let Some(open) = s.find('(') {
            let inner = s.get(open + 1..)?.trim_end_matches(')').trim();
            let digits = inner.strip_suffix("bytes")?.trim().replace(',', "");
            return digits.parse::<u64>().ok().map(ByteSize);
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let unit = unit.trim().to_ascii_uppercase();
        let mult = match unit.as_str() {
            "" | "B" => 1u64,
            "KB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            "TB" => 1 << 40,
            _ => return None,
        };
        if num.contains('.') {
            let f: f64 = num.parse().ok()?;
            if !f.is_finite() || f < 0.0 {
                return None;
            }
            let bytes = f * mult as f64;
            if bytes > u64::MAX as f64 {
                return None;
            }
            Some(ByteSize(bytes as u64))
        } else {
            num.parse::<u64>().ok()?.checked_mul(mult).map(ByteSize)
        }
    }
}

/// A duration in whole seconds (`EnhancedTimeSpan`), shown as .NET shows a TimeSpan:
/// `[d.]hh:mm:ss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeSpan(pub u64);

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
        if d > 0 {
            write!(f, "{d}.{h:02}:{m:02}:{sec:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{sec:02}")
        }
    }
}

impl TimeSpan {
    /// Parses like `TimeSpan.Parse`: `hh:mm`, `hh:mm:ss`, `d.hh:mm:ss`, or `d` (days).
    /// An integer value (not a string) is a tick count, as PowerShell converts it, so
    /// `60` is 6 microseconds: rounded down to whole seconds here.
    pub fn parse(v: &SimValue) -> Option<Self> {
        let s = match v {
            SimValue::String(s) => s.trim().to_string(),
            other => {
                let ticks = u64::try_from(other.as_i64()?).ok()?;
                return Some(TimeSpan(ticks / 10_000_000));
            }
        };
        let (days, rest) = match s.split_once('.') {
            // "1.00:00:00": the dot before the first colon separates days.
            Some((d, r)) if !d.contains(':') => (d.parse::<u64>().ok()?, r.to_string()),
            _ => (0, s.clone()),
        };
        // Fractions of a second are dropped (the model keeps whole seconds).
        let rest = match rest.split_once('.') {
            Some((hms, _)) => hms.to_string(),
            None => rest,
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let num = |p: &str| p.trim().parse::<u64>().ok();
        let secs = match parts.as_slice() {
            [d] if days == 0 => num(d)?.checked_mul(86_400)?,
            [h, m] => {
                let (h, m) = (num(h)?, num(m)?);
                if h > 23 || m > 59 {
                    return None;
                }
                h * 3600 + m * 60
            }
            [h, m, sec] => {
                let (h, m, sec) = (num(h)?, num(m)?, num(sec)?);
                if h > 23 || m > 59 || sec > 59 {
                    return None;
                }
                h * 3600 + m * 60 + sec
            }
            _ => return None,
        };
        days.checked_mul(86_400)?.checked_add(secs).map(TimeSpan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_print_like_exchange() {
        assert_eq!(ByteSize(10_485_760).to_string(), "10 MB (10,485,760 bytes)");
        assert_eq!(ByteSize(65_536).to_string(), "64 KB (65,536 bytes)");
        assert_eq!(ByteSize(512).to_string(), "512 B (512 bytes)");
        assert_eq!(
            ByteSize(10_240_000).to_string(),
            "9.766 MB (10,240,000 bytes)"
        );
        assert_eq!(
            ByteSize(2_039_480_320).to_string(),
            "1.899 GB (2,039,480,320 bytes)"
        );
    }

    #[test]
    fn byte_sizes_parse_from_arguments_and_display_text() {
        let p = |s: &str| ByteSize::parse(&SimValue::str(s));
        assert_eq!(p("10MB"), Some(ByteSize(10_485_760)));
        assert_eq!(p("10 mb"), Some(ByteSize(10_485_760)));
        assert_eq!(p("1.5KB"), Some(ByteSize(1536)));
        assert_eq!(p("65536"), Some(ByteSize(65_536)));
        assert_eq!(p("10 MB (10,485,760 bytes)"), Some(ByteSize(10_485_760)));
        assert_eq!(p("ten"), None);
        assert_eq!(p("10 PB"), None);
        assert_eq!(ByteSize::parse(&SimValue::Int(42)), Some(ByteSize(42)));
        assert_eq!(ByteSize::parse(&SimValue::Int(-1)), None);
    }

    #[test]
    fn timespans_print_and_parse_like_dotnet() {
        assert_eq!(TimeSpan(600).to_string(), "00:10:00");
        assert_eq!(TimeSpan(86_400).to_string(), "1.00:00:00");
        let p = |s: &str| TimeSpan::parse(&SimValue::str(s));
        assert_eq!(p("00:05:00"), Some(TimeSpan(300)));
        assert_eq!(p("1.00:00:00"), Some(TimeSpan(86_400)));
        assert_eq!(p("01:30"), Some(TimeSpan(5400)));
        assert_eq!(p("2"), Some(TimeSpan(172_800)));
        assert_eq!(p("00:61:00"), None);
        assert_eq!(p("soon"), None);
        assert_eq!(TimeSpan::parse(&SimValue::Int(600)), Some(TimeSpan(0)));
    }

    #[test]
    fn unlimited_values() {
        assert_eq!(
            Unlimited::parse(&SimValue::str("Unlimited")),
            Some(Unlimited::Unlimited)
        );
        assert_eq!(
            Unlimited::parse(&SimValue::Int(20)),
            Some(Unlimited::Value(20))
        );
        assert_eq!(Unlimited::Unlimited.to_string(), "unlimited");
        assert_eq!(Unlimited::parse(&SimValue::str("lots")), None);
    }

    #[test]
    fn integers_convert_like_powershell() {
        assert_eq!(parse_ps_integer(" 40 "), Some(40));
        assert_eq!(parse_ps_integer("0x28"), Some(40));
        assert_eq!(parse_ps_integer("-3"), Some(-3));
        assert_eq!(parse_ps_integer("4O"), None);
    }
}
