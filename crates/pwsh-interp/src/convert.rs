//! Types and conversions: resolving type names written in `[...]`, PowerShell's conversion
//! rules (`[int]'5'`, `-as`, parameter binding, the right operand of a comparison), and
//! number parsing from strings, with PowerShell's error texts.

use std::sync::Arc;

use super::value::{Value, format_double};

/// A type the interpreter knows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PsType {
    /// `[object]`: no conversion.
    Object,
    /// `[string]`
    String,
    /// `[char]`
    Char,
    /// `[bool]`
    Bool,
    /// `[int]` / `[int32]`
    Int,
    /// `[long]` / `[int64]`
    Long,
    /// `[uint32]` (held as an `Int64` value in range).
    UInt32,
    /// `[double]` (also `[single]` and `[decimal]`, approximated as doubles).
    Double,
    /// `[byte]`
    Byte,
    /// `[switch]`
    Switch,
    /// `[T[]]`; `[array]` is `[object[]]`.
    Array(Box<PsType>),
    /// `[hashtable]`
    Hashtable,
    /// `[scriptblock]`
    ScriptBlock,
    /// `[timespan]`
    TimeSpan,
    /// `[datetime]`
    DateTime,
    /// `[void]`: discards.
    Void,
    /// `[psobject]`: no conversion.
    PsObject,
    /// `[regex]` (static members only).
    Regex,
    /// `[Convert]` (static members only).
    Convert,
    /// `[Text.Encoding]` (static members only).
    Encoding,
    /// `[Math]` (static members only).
    Math,
    /// `[Environment]` (static members only).
    Environment,
    /// `[Console]` (static members only).
    Console,
}

impl PsType {
    /// The full .NET name, as PowerShell prints it in conversion errors.
    pub fn full_name(&self) -> String {
        match self {
            PsType::Object => "System.Object".into(),
            PsType::String => "System.String".into(),
            PsType::Char => "System.Char".into(),
            PsType::Bool => "System.Boolean".into(),
            PsType::Int => "System.Int32".into(),
            PsType::Long => "System.Int64".into(),
            PsType::UInt32 => "System.UInt32".into(),
            PsType::Double => "System.Double".into(),
            PsType::Byte => "System.Byte".into(),
            PsType::Switch => "System.Management.Automation.SwitchParameter".into(),
            PsType::Array(inner) => format!("{}[]", inner.full_name()),
            PsType::Hashtable => "System.Collections.Hashtable".into(),
            PsType::ScriptBlock => "System.Management.Automation.ScriptBlock".into(),
            PsType::TimeSpan => "System.TimeSpan".into(),
            PsType::DateTime => "System.DateTime".into(),
            PsType::Void => "System.Void".into(),
            PsType::PsObject => "System.Management.Automation.PSObject".into(),
            PsType::Regex => "System.Text.RegularExpressions.Regex".into(),
            PsType::Convert => "System.Convert".into(),
            PsType::Encoding => "System.Text.Encoding".into(),
            PsType::Math => "System.Math".into(),
            PsType::Environment => "System.Environment".into(),
            PsType::Console => "System.Console".into(),
        }
    }

    /// Whether values of this type can be converted to (not a static-only class).
    pub fn is_instantiable(&self) -> bool {
        !matches!(
            self,
            PsType::Regex
                | PsType::Convert
                | PsType::Encoding
                | PsType::Math
                | PsType::Environment
                | PsType::Console
        )
    }
}

/// Resolves a type name as written in `[...]` (case-insensitive, `System.` optional).
pub fn resolve_type(name: &str) -> Option<PsType> {
    let lower = name.trim().to_ascii_lowercase();
    if let Some(inner) = lower.strip_suffix("[]") {
        return Some(PsType::Array(Box::new(resolve_type(inner)?)));
    }
    let n = lower.strip_prefix("system.").unwrap_or(&lower);
    Some(match n {
        "object" => PsType::Object,
        "string" => PsType::String,
        "char" => PsType::Char,
        "bool" | "boolean" => PsType::Bool,
        "int" | "int32" => PsType::Int,
        "long" | "int64" => PsType::Long,
        "uint32" => PsType::UInt32,
        "double" | "single" | "float" | "decimal" => PsType::Double,
        "byte" => PsType::Byte,
        "switch" | "management.automation.switchparameter" => PsType::Switch,
        "array" => PsType::Array(Box::new(PsType::Object)),
        "hashtable" | "collections.hashtable" => PsType::Hashtable,
        "scriptblock" | "management.automation.scriptblock" => PsType::ScriptBlock,
        "timespan" => PsType::TimeSpan,
        "datetime" => PsType::DateTime,
        "void" => PsType::Void,
        "psobject" | "management.automation.psobject" => PsType::PsObject,
        "regex" | "text.regularexpressions.regex" => PsType::Regex,
        "convert" => PsType::Convert,
        "text.encoding" => PsType::Encoding,
        "math" => PsType::Math,
        "environment" => PsType::Environment,
        "console" => PsType::Console,
        _ => return None,
    })
}

/// A failed conversion, with PowerShell's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConvertError {
    /// E.g. `Cannot convert value "abc" to type "System.Int32". Error: "Input string was
    /// not in a correct format."`
    pub message: String,
    /// The inner .NET message (`Input string was not in a correct format.`), when the
    /// source was a string.
    pub detail: Option<String>,
}

impl ConvertError {
    fn from_string(s: &str, target: &PsType, detail: &str) -> ConvertError {
        ConvertError {
            message: format!(
                "Cannot convert value \"{s}\" to type \"{}\". Error: \"{detail}\"",
                target.full_name()
            ),
            detail: Some(detail.to_owned()),
        }
    }

    fn from_value(v: &Value, target: &PsType) -> ConvertError {
        ConvertError {
            message: format!(
                "Cannot convert the \"{}\" value of type \"{}\" to type \"{}\".",
                v.to_text(),
                v.type_name(),
                target.full_name()
            ),
            detail: None,
        }
    }

    fn overflow(v: &Value, target: &PsType) -> ConvertError {
        let short = target.full_name().replace("System.", "");
        match v {
            Value::String(s) => ConvertError::from_string(
                s,
                target,
                &format!("Value was either too large or too small for an {short}."),
            ),
            _ => ConvertError {
                message: format!(
                    "Cannot convert value \"{}\" to type \"{}\". Error: \"Value was either too large or too small for an {short}.\"",
                    v.to_text(),
                    target.full_name()
                ),
                detail: Some(format!(
                    "Value was either too large or too small for an {short}."
                )),
            },
        }
    }
}

const BAD_FORMAT: &str = "Input string was not in a correct format.";

/// A number as arithmetic sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// `Int32`
    Int(i32),
    /// `Int64`
    Long(i64),
    /// `Double`
    Double(f64),
}

impl Num {
    /// As a value.
    pub fn value(self) -> Value {
        match self {
            Num::Int(i) => Value::Int(i),
            Num::Long(i) => Value::Long(i),
            Num::Double(d) => Value::Double(d),
        }
    }

    /// As a double.
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => f64::from(i),
            Num::Long(i) => i as f64,
            Num::Double(d) => d,
        }
    }
}

/// Parses a string the way PowerShell converts strings to numbers: surrounding whitespace
/// ignored, empty is 0, hex `0x..`, `kb`..`pb` multipliers, the smallest of Int32, Int64,
/// Double that holds it.
pub fn parse_number(s: &str) -> Option<Num> {
    let t = s.trim();
    if t.is_empty() {
        return Some(Num::Int(0));
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let (digits, mult) = ["kb", "mb", "gb", "tb", "pb"]
        .iter()
        .enumerate()
        .find_map(|(i, suf)| {
            lower
                .strip_suffix(suf)
                .map(|d| (d.to_owned(), 1i128 << (10 * (i + 1))))
        })
        .unwrap_or((lower.clone(), 1));
    if digits.is_empty() {
        return None;
    }
    if let Some(hex) = digits.strip_prefix("0x") {
        let v = u64::from_str_radix(hex, 16).ok()?;
        let v: i128 = if v <= u64::from(u32::MAX) {
            i128::from(v as u32 as i32)
        } else {
            i128::from(v as i64)
        };
        return int_num(if neg { -v } else { v }.checked_mul(mult)?);
    }
    if digits.chars().all(|c| c.is_ascii_digit()) {
        let v: i128 = digits.parse().ok()?;
        let v = if neg { -v } else { v };
        return match v.checked_mul(mult) {
            Some(v) => int_num(v),
            None => Some(Num::Double(v as f64 * mult as f64)),
        };
    }
    let valid = digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        && digits.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    let d: f64 = digits.parse().ok()?;
    let d = d * mult as f64;
    Some(Num::Double(if neg { -d } else { d }))
}

fn int_num(v: i128) -> Option<Num> {
    if let Ok(i) = i32::try_from(v) {
        Some(Num::Int(i))
    } else if let Ok(l) = i64::try_from(v) {
        Some(Num::Long(l))
    } else {
        Some(Num::Double(v as f64))
    }
}

/// The value as a number for arithmetic: `$null` is 0, booleans 0/1, chars their code,
/// strings parsed. Errors say "Cannot convert value ... to type System.Int32" as
/// PowerShell does when a string is not a number.
pub fn to_num(v: &Value) -> Result<Num, ConvertError> {
    match v {
        Value::Null => Ok(Num::Int(0)),
        Value::Bool(b) => Ok(Num::Int(i32::from(*b))),
        Value::Int(i) => Ok(Num::Int(*i)),
        Value::Long(i) => Ok(Num::Long(*i)),
        Value::Double(d) => Ok(Num::Double(*d)),
        Value::Char(c) => Ok(Num::Int(*c as i32)),
        Value::String(s) => {
            parse_number(s).ok_or_else(|| ConvertError::from_string(s, &PsType::Int, BAD_FORMAT))
        }
        Value::TimeSpan(t) => Ok(Num::Long(*t)),
        Value::Array(a) if a.len() == 1 => match a.first() {
            Some(inner) => to_num(inner),
            None => Err(ConvertError::from_value(v, &PsType::Int)),
        },
        _ => Err(ConvertError::from_value(v, &PsType::Int)),
    }
}

/// Converts `v` to `target` with PowerShell's rules (`[T]$v`).
pub fn convert(v: &Value, target: &PsType) -> Result<Value, ConvertError> {
    match target {
        PsType::Object | PsType::PsObject => Ok(v.clone()),
        PsType::Void => Ok(Value::Null),
        PsType::String => Ok(match v {
            Value::Null => Value::from(""),
            Value::String(_) => v.clone(),
            _ => Value::from(v.to_text()),
        }),
        PsType::Bool | PsType::Switch => Ok(Value::Bool(v.is_true())),
        PsType::Int => integer(v, target, i64::from(i32::MIN), i64::from(i32::MAX))
            .map(|i| Value::Int(i32::try_from(i).unwrap_or_default())),
        PsType::Long => integer(v, target, i64::MIN, i64::MAX).map(Value::Long),
        PsType::UInt32 => integer(v, target, 0, i64::from(u32::MAX)).map(Value::Long),
        PsType::Byte => {
            integer(v, target, 0, 255).map(|i| Value::Int(i32::try_from(i).unwrap_or_default()))
        }
        PsType::Double => match v {
            Value::String(s) if s.trim().is_empty() => Ok(Value::Double(0.0)),
            _ => to_num(v)
                .map(|n| Value::Double(n.as_f64()))
                .map_err(|_| match v {
                    Value::String(s) => ConvertError::from_string(s, target, BAD_FORMAT),
                    _ => ConvertError::from_value(v, target),
                }),
        },
        PsType::Char => match v {
            Value::Char(_) => Ok(v.clone()),
            Value::String(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(Value::Char(c)),
                    _ => Err(ConvertError::from_string(
                        s,
                        target,
                        "String must be exactly one character long.",
                    )),
                }
            }
            Value::Int(_) | Value::Long(_) | Value::Double(_) => {
                let i = integer(v, target, 0, 0xFFFF)?;
                u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .map(Value::Char)
                    .ok_or_else(|| ConvertError::from_value(v, target))
            }
            _ => Err(ConvertError::from_value(v, target)),
        },
        PsType::Array(inner) => {
            let items = match v {
                Value::Null => return Ok(Value::Null),
                Value::Bytes(b) if **inner == PsType::Byte => return Ok(Value::Bytes(b.clone())),
                Value::Array(a) => a.as_ref().clone(),
                Value::Bytes(_) => v.as_array().unwrap_or_default(),
                other => vec![other.clone()],
            };
            let converted = items
                .iter()
                .map(|item| convert(item, inner))
                .collect::<Result<Vec<_>, _>>()?;
            if **inner == PsType::Byte {
                let bytes = converted
                    .iter()
                    .map(|b| match b {
                        Value::Int(i) => u8::try_from(*i).unwrap_or_default(),
                        _ => 0,
                    })
                    .collect();
                return Ok(Value::Bytes(Arc::new(bytes)));
            }
            Ok(Value::from(converted))
        }
        PsType::Hashtable => match v {
            Value::Hashtable(_) => Ok(v.clone()),
            _ => Err(ConvertError::from_value(v, target)),
        },
        PsType::ScriptBlock => match v {
            Value::ScriptBlock(_) => Ok(v.clone()),
            _ => Err(ConvertError::from_value(v, target)),
        },
        PsType::TimeSpan => match v {
            Value::TimeSpan(_) => Ok(v.clone()),
            Value::Int(i) => Ok(Value::TimeSpan(i64::from(*i))),
            Value::Long(i) => Ok(Value::TimeSpan(*i)),
            Value::String(s) => parse_timespan(s).map(Value::TimeSpan).ok_or_else(|| {
                ConvertError::from_string(
                    s,
                    target,
                    "String was not recognized as a valid TimeSpan.",
                )
            }),
            _ => Err(ConvertError::from_value(v, target)),
        },
        PsType::DateTime => match v {
            Value::DateTime(_) => Ok(v.clone()),
            Value::Long(i) => Ok(Value::DateTime(*i)),
            Value::String(s) => parse_datetime(s).map(Value::DateTime).ok_or_else(|| {
                ConvertError::from_string(
                    s,
                    target,
                    "String was not recognized as a valid DateTime.",
                )
            }),
            _ => Err(ConvertError::from_value(v, target)),
        },
        PsType::Regex
        | PsType::Convert
        | PsType::Encoding
        | PsType::Math
        | PsType::Environment
        | PsType::Console => Err(ConvertError::from_value(v, target)),
    }
}

/// An integer in `[min, max]`; doubles round half to even as .NET does.
fn integer(v: &Value, target: &PsType, min: i64, max: i64) -> Result<i64, ConvertError> {
    let n = match v {
        Value::String(s) => {
            parse_number(s).ok_or_else(|| ConvertError::from_string(s, target, BAD_FORMAT))?
        }
        Value::Null => Num::Int(0),
        Value::Bool(b) => Num::Int(i32::from(*b)),
        Value::Int(i) => Num::Int(*i),
        Value::Long(i) => Num::Long(*i),
        Value::Double(d) => Num::Double(*d),
        Value::Char(c) => Num::Int(*c as i32),
        _ => return Err(ConvertError::from_value(v, target)),
    };
    let i: i128 = match n {
        Num::Int(i) => i128::from(i),
        Num::Long(i) => i128::from(i),
        Num::Double(d) => {
            if !d.is_finite() {
                return Err(ConvertError::overflow(v, target));
            }
            let r = d.round_ties_even();
            if r.abs() > 1e19 {
                return Err(ConvertError::overflow(v, target));
            }
            r as i128
        }
    };
    if i < i128::from(min) || i > i128::from(max) {
        return Err(ConvertError::overflow(v, target));
    }
    i64::try_from(i).map_err(|_| ConvertError::overflow(v, target))
}

/// Parses `[-][d.]hh:mm[:ss[.fffffff]]` or a whole number of days.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (days, rest) = match t.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<i64>().ok()?, r),
        _ => (0, t),
    };
    if !rest.contains(':') {
        let d: i64 = rest.parse().ok()?;
        let ticks = d.checked_mul(864_000_000_000)?;
        return Some(if neg { -ticks } else { ticks });
    }
    let mut parts = rest.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let (sec, frac) = match parts.next() {
        Some(sp) => match sp.split_once('.') {
            Some((s, f)) => {
                let mut f = f.to_owned();
                if f.len() > 7 || !f.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                while f.len() < 7 {
                    f.push('0');
                }
                (s.parse::<i64>().ok()?, f.parse::<i64>().ok()?)
            }
            None => (sp.parse::<i64>().ok()?, 0),
        },
        None => (0, 0),
    };
    if parts.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let ticks = (((days * 24 + h) * 60 + m) * 60 + sec) * 10_000_000 + frac;
    Some(if neg { -ticks } else { ticks })
}

const TICKS_PER_DAY: i64 = 864_000_000_000;

/// Days since 0001-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // Days since 0000-03-01, shifted to 0001-01-01.
    era * 146_097 + doe - 306
}

/// The date of a day number since 0001-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 306;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Ticks of a date and time.
pub fn datetime_ticks(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, mo, d) * TICKS_PER_DAY + ((h * 60 + mi) * 60 + s) * 10_000_000
}

/// The parts of a tick count: year, month, day, hour, minute, second, ticks of the second.
pub fn datetime_parts(ticks: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let days = ticks.div_euclid(TICKS_PER_DAY);
    let rem = ticks.rem_euclid(TICKS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 10_000_000;
    (
        y,
        m,
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 10_000_000,
    )
}

/// `[string]$date`: the invariant culture's `MM/dd/yyyy HH:mm:ss`.
pub fn format_datetime(ticks: i64) -> String {
    let (y, m, d, h, mi, s, _) = datetime_parts(ticks);
    format!("{m:02}/{d:02}/{y:04} {h:02}:{mi:02}:{s:02}")
}

/// Parses `yyyy-MM-dd[( |T)HH:mm[:ss]]` or `M/d/yyyy[ H:mm[:ss]]`.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let t = s.trim();
    let (date, time) = match t.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (t, None),
    };
    let (y, m, d) = if date.contains('-') {
        let mut p = date.split('-');
        (
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
            p.next()?.parse().ok()?,
        )
    } else {
        let mut p = date.split('/');
        let m = p.next()?.parse().ok()?;
        let d = p.next()?.parse().ok()?;
        (p.next()?.parse().ok()?, m, d)
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
        return None;
    }
    let (h, mi, sec) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let mut p = t.trim_end_matches('Z').split(':');
            let h: i64 = p.next()?.parse().ok()?;
            let mi: i64 = p.next()?.parse().ok()?;
            let sec: i64 = match p.next() {
                Some(x) => x.split('.').next()?.parse().ok()?,
                None => 0,
            };
            (h, mi, sec)
        }
    };
    Some(datetime_ticks(y, m, d, h, mi, sec))
}

/// A double as PowerShell prints it (re-exported for formatting code).
pub fn double_text(d: f64) -> String {
    format_double(d)
}
