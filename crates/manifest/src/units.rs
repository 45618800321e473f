//! Exchange's value types that are not plain numbers: time spans
//! (`EnhancedTimeSpan`, written `00:30:00` or `1.00:00:00`), byte quantities
//! (`ByteQuantifiedSize`, written `10MB` or `10 MB (10,485,760 bytes)`), and
//! the [`Unlimited`] and [`Nullable`] wrappers.
//!
//! The parsers are pure functions over strings so that the code decoding what a
//! server reports (where remoting turns these values into strings) can share
//! them with the manifest readers; the formatters print the way Exchange does,
//! for plans.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// Exchange's `Unlimited<T>`: a number or the word `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unlimited<T> {
    /// No limit.
    Unlimited,
    /// This limit.
    Value(T),
}

impl<T: Copy> Unlimited<T> {
    /// The number, or `None` for unlimited.
    #[must_use]
    pub fn value(&self) -> Option<T> {
        match self {
            Unlimited::Unlimited => None,
            Unlimited::Value(v) => Some(*v),
        }
    }

    #[must_use]
    /// Whether it is `unlimited`.
    pub fn is_unlimited(&self) -> bool {
        matches!(self, Unlimited::Unlimited)
    }
}

impl<T: fmt::Display> fmt::Display for Unlimited<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlimited::Unlimited => f.write_str("Unlimited"),
            Unlimited::Value(v) => v.fmt(f),
        }
    }
}

/// A throttling value: a number, or `$null`, which Exchange reads as "no limit".
/// A key left out of a manifest is neither: readers return `None` for that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Nullable<T> {
    /// `$null`: unthrottled.
    Null,
    /// This value.
    Value(T),
}

impl<T: Copy> Nullable<T> {
    /// The number, or `None` for `$null`.
    #[must_use]
    pub fn value(&self) -> Option<T> {
        match self {
            Nullable::Null => None,
            Nullable::Value(v) => Some(*v),
        }
    }

    #[must_use]
    /// Whether it is `$null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Nullable::Null)
    }
}

impl<T: fmt::Display> fmt::Display for Nullable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nullable::Null => f.write_str("$null"),
            Nullable::Value(v) => v.fmt(f),
        }
    }
}

/// Why a time span was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TimeSpanError {
    /// Nothing given.
    #[error("a time span cannot be empty")]
    Empty,
    /// `30` alone: .NET reads a bare number as days, which nobody means.
    #[error("a bare number is not a time span")]
    BareNumber,
    /// A negative time span.
    #[error("negative time spans are not allowed")]
    Negative,
    /// Not `hh:mm:ss` or `d.hh:mm:ss`.
    #[error("not in the form hh:mm:ss or d.hh:mm:ss")]
    Format,
    /// A part beyond its range (`25:00:00`).
    #[error("{part} must be at most {max}")]
    OutOfRange {
        /// `hours`, `minutes` or `seconds`.
        part: &'static str,
        /// Its largest value.
        max: u64,
    },
}

/// Most days .NET's `TimeSpan` holds.
const MAX_DAYS: u64 = 10_675_199;

/// Parses Exchange's time span notation: `hh:mm:ss`, `d.hh:mm:ss`, either with
/// an optional fraction of a second of 1 to 7 digits (`00:00:01.5`). Hours go
/// to 23 and minutes and seconds to 59, as in .NET. Bare numbers and `hh:mm`
/// are refused because .NET reads them as days and as hours:minutes, which is
/// rarely what a person writing `30` or `00:30` means.
///
/// # Errors
/// Returns the reason the text is not a time span.
pub fn parse_timespan(text: &str) -> Result<Duration, TimeSpanError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(TimeSpanError::Empty);
    }
    if s.starts_with('-') {
        return Err(TimeSpanError::Negative);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeSpanError::BareNumber);
    }
    let mut parts = s.split(':');
    let (Some(first), Some(minutes), Some(last), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TimeSpanError::Format);
    };
    let (days, hours) = match first.split_once('.') {
        Some((d, h)) => (number(d, 8)?, number(h, 2)?),
        None => (0, number(first, 2)?),
    };
    let (seconds, fraction) = match last.split_once('.') {
        Some((sec, frac)) => (number(sec, 2)?, Some(frac)),
        None => (number(last, 2)?, None),
    };
    let minutes = number(minutes, 2)?;
    if days > MAX_DAYS {
        return Err(TimeSpanError::OutOfRange {
            part: "days",
            max: MAX_DAYS,
        });
    }
    for (part, value, max) in [
        ("hours", hours, 23),
        ("minutes", minutes, 59),
        ("seconds", seconds, 59),
    ] {
        if value > max {
            return Err(TimeSpanError::OutOfRange { part, max });
        }
    }
    let nanos = match fraction {
        None => 0,
        Some(f) => {
            let ticks = number(f, 7)?;
            // Pad to 7 digits (100 ns ticks), then to nanoseconds.
            let scale = 10u64.pow(7 - u32::try_from(f.len()).unwrap_or(7));
            u32::try_from(ticks * scale * 100).map_err(|_| TimeSpanError::Format)?
        }
    };
    let secs = days * 86_400 + hours * 3_600 + minutes * 60 + seconds;
    Ok(Duration::new(secs, nanos))
}

/// 1 to `max_len` ASCII digits.
fn number(s: &str, max_len: usize) -> Result<u64, TimeSpanError> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeSpanError::Format);
    }
    s.parse().map_err(|_| TimeSpanError::Format)
}

/// Formats a duration as Exchange prints it: `00:30:00`, `1.00:00:00`,
/// `00:00:01.5000000`.
#[must_use]
pub fn format_timespan(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3_600, rem % 3_600 / 60, rem % 60);
    let mut out = if days > 0 {
        format!("{days}.{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    };
    let ticks = d.subsec_nanos() / 100;
    if ticks > 0 {
        out.push_str(&format!(".{ticks:07}"));
    }
    out
}

/// Why a byte quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ByteSizeError {
    /// Nothing given.
    #[error("a byte quantity cannot be empty")]
    Empty,
    /// Not a number with an optional unit.
    #[error("not a byte quantity such as 65536, 64KB or 10 MB (10,485,760 bytes)")]
    Format,
    /// A unit that is not B, KB, MB, GB or TB.
    #[error("unknown unit '{0}' (use B, KB, MB, GB or TB)")]
    Unit(String),
    /// A fraction of a byte.
    #[error("is not a whole number of bytes")]
    NotWhole,
    /// More than a 64-bit count of bytes.
    #[error("is too large")]
    TooLarge,
    /// Exchange's `10 MB (10,485,760 bytes)` form whose two halves disagree.
    #[error("the byte count in parentheses does not match the size before it")]
    Mismatch,
}

const UNITS: [(&str, u64); 5] = [
    ("B", 1),
    ("KB", 1 << 10),
    ("MB", 1 << 20),
    ("GB", 1 << 30),
    ("TB", 1 << 40),
];

/// Parses a byte quantity as Exchange accepts and prints it: `65536` (bytes),
/// `64KB`, `64 KB`, `1.5MB` (units B, KB, MB, GB, TB, powers of 1024, any case),
/// or Exchange's own output `10 MB (10,485,760 bytes)`, where the exact count in
/// parentheses wins and must agree with the rounded size before it.
///
/// # Errors
/// Returns the reason the text is not a byte quantity.
pub fn parse_byte_quantity(text: &str) -> Result<u64, ByteSizeError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(ByteSizeError::Empty);
    }
    if let Some(open) = s.find('(') {
        let (head, tail) = s.split_at(open);
        let inner = tail
            .strip_prefix('(')
            .and_then(|t| t.strip_suffix(')'))
            .ok_or(ByteSizeError::Format)?
            .trim();
        let count = inner
            .strip_suffix("bytes")
            .ok_or(ByteSizeError::Format)?
            .trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit() || b == b',') {
            return Err(ByteSizeError::Format);
        }
        let digits: String = count.chars().filter(|&c| c != ',').collect();
        let exact: u64 = digits.parse().map_err(|_| ByteSizeError::TooLarge)?;
        let (int, frac, mult) = split_quantity(head)?;
        // The head is rounded for display: accept it if it is within half of
        // its last digit of the exact count.
        let shown = decimal_value(int, frac)? * mult as f64;
        let tolerance =
            mult as f64 * 0.5 / 10f64.powi(i32::try_from(frac.len()).unwrap_or(0)) + 1.0;
        if (shown - exact as f64).abs() > tolerance {
            return Err(ByteSizeError::Mismatch);
        }
        return Ok(exact);
    }
    let (int, frac, mult) = split_quantity(s)?;
    let int: u128 = int.parse().map_err(|_| ByteSizeError::TooLarge)?;
    let mut total = int
        .checked_mul(u128::from(mult))
        .ok_or(ByteSizeError::TooLarge)?;
    if !frac.is_empty() {
        let scale = 10u128
            .checked_pow(u32::try_from(frac.len()).map_err(|_| ByteSizeError::Format)?)
            .ok_or(ByteSizeError::Format)?;
        let f: u128 = frac.parse().map_err(|_| ByteSizeError::Format)?;
        let scaled = f
            .checked_mul(u128::from(mult))
            .ok_or(ByteSizeError::TooLarge)?;
        if scaled % scale != 0 {
            return Err(ByteSizeError::NotWhole);
        }
        total = total
            .checked_add(scaled / scale)
            .ok_or(ByteSizeError::TooLarge)?;
    }
    u64::try_from(total).map_err(|_| ByteSizeError::TooLarge)
}

/// Splits `10.5 MB` into ("10", "5", 1 MiB). Digits are checked here.
fn split_quantity(s: &str) -> Result<(&str, &str, u64), ByteSizeError> {
    let s = s.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(num_end);
    if number.is_empty() {
        return Err(ByteSizeError::Format);
    }
    let unit = unit.trim();
    let mult = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|&(_, m)| m)
            .ok_or_else(|| ByteSizeError::Unit(unit.to_owned()))?
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ByteSizeError::Format);
    }
    if number.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
        return Err(ByteSizeError::Format);
    }
    Ok((int, frac, mult))
}

fn decimal_value(int: &str, frac: &str) -> Result<f64, ByteSizeError> {
    let text = if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    };
    text.parse().map_err(|_| ByteSizeError::Format)
}

/// Formats a byte count as Exchange prints it: `10 MB (10,485,760 bytes)`,
/// `9.766 MB (10,240,000 bytes)`, `512 B (512 bytes)`.
#[must_use]
pub fn format_byte_quantity(bytes: u64) -> String {
    let &(unit, mult) = UNITS
        .iter()
        .rev()
        .find(|(_, m)| bytes >= *m)
        .unwrap_or(&("B", 1));
    let whole = bytes / mult;
    let rem = bytes % mult;
    let shown = if rem == 0 {
        whole.to_string()
    } else {
        // Three decimals, trailing zeros trimmed, as Exchange shows it.
        let v = format!("{:.3}", bytes as f64 / mult as f64);
        v.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    format!("{shown} {unit} ({} bytes)", group_thousands(bytes))
}

fn group_thousands(n: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_in_exchange_notation() {
        assert_eq!(parse_timespan("00:30:00"), Ok(Duration::from_secs(1800)));
        assert_eq!(
            parse_timespan("1.00:00:00"),
            Ok(Duration::from_secs(86_400))
        );
        assert_eq!(parse_timespan(" 0:0:30 "), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_timespan("2.03:04:05"),
            Ok(Duration::from_secs(2 * 86_400 + 3 * 3600 + 4 * 60 + 5))
        );
        assert_eq!(
            parse_timespan("00:00:01.5"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_timespan("00:00:00.0000001"),
            Ok(Duration::from_nanos(100))
        );
    }

    #[test]
    fn timespans_refused_with_reasons() {
        assert_eq!(parse_timespan(""), Err(TimeSpanError::Empty));
        assert_eq!(parse_timespan("30"), Err(TimeSpanError::BareNumber));
        assert_eq!(parse_timespan("-00:00:30"), Err(TimeSpanError::Negative));
        assert_eq!(parse_timespan("00:30"), Err(TimeSpanError::Format));
        assert_eq!(parse_timespan("1:2:3:4"), Err(TimeSpanError::Format));
        assert_eq!(parse_timespan("aa:bb:cc"), Err(TimeSpanError::Format));
        assert_eq!(
            parse_timespan("00:00:00.12345678"),
            Err(TimeSpanError::Format)
        );
        assert_eq!(
            parse_timespan("24:00:00"),
            Err(TimeSpanError::OutOfRange {
                part: "hours",
                max: 23
            })
        );
        assert_eq!(
            parse_timespan("00:60:00"),
            Err(TimeSpanError::OutOfRange {
                part: "minutes",
                max: 59
            })
        );
        assert_eq!(
            parse_timespan("99999999.00:00:00"),
            Err(TimeSpanError::OutOfRange {
                part: "days",
                max: MAX_DAYS
            })
        );
    }

    #[test]
    fn timespans_format_like_exchange() {
        assert_eq!(format_timespan(Duration::from_secs(1800)), "00:30:00");
        assert_eq!(format_timespan(Duration::from_secs(86_400)), "1.00:00:00");
        assert_eq!(
            format_timespan(Duration::from_millis(1500)),
            "00:00:01.5000000"
        );
        for s in ["00:00:30", "1.02:03:04", "00:00:01.2500000"] {
            assert_eq!(format_timespan(parse_timespan(s).unwrap()), s);
        }
    }

    #[test]
    fn byte_quantities_in_every_spelling() {
        assert_eq!(parse_byte_quantity("65536"), Ok(65_536));
        assert_eq!(parse_byte_quantity("10MB"), Ok(10 << 20));
        assert_eq!(parse_byte_quantity("10 mb"), Ok(10 << 20));
        assert_eq!(parse_byte_quantity("64KB"), Ok(65_536));
        assert_eq!(parse_byte_quantity("1.5MB"), Ok(1_572_864));
        assert_eq!(parse_byte_quantity("2 GB"), Ok(2 << 30));
        assert_eq!(parse_byte_quantity("1TB"), Ok(1 << 40));
        assert_eq!(
            parse_byte_quantity("10 MB (10,485,760 bytes)"),
            Ok(10_485_760)
        );
        assert_eq!(
            parse_byte_quantity("9.766 MB (10,240,000 bytes)"),
            Ok(10_240_000)
        );
        assert_eq!(parse_byte_quantity("512 B (512 bytes)"), Ok(512));
    }

    #[test]
    fn byte_quantities_refused_with_reasons() {
        assert_eq!(parse_byte_quantity(" "), Err(ByteSizeError::Empty));
        assert_eq!(
            parse_byte_quantity("10 XB"),
            Err(ByteSizeError::Unit("XB".into()))
        );
        assert_eq!(parse_byte_quantity("1.1KB"), Err(ByteSizeError::NotWhole));
        assert_eq!(parse_byte_quantity("MB"), Err(ByteSizeError::Format));
        assert_eq!(parse_byte_quantity("1.MB"), Err(ByteSizeError::Format));
        assert_eq!(parse_byte_quantity("-5"), Err(ByteSizeError::Format));
        assert_eq!(
            parse_byte_quantity("99999999999 TB"),
            Err(ByteSizeError::TooLarge)
        );
        assert_eq!(
            parse_byte_quantity("10 MB (20,000,000 bytes)"),
            Err(ByteSizeError::Mismatch)
        );
        assert_eq!(
            parse_byte_quantity("10 MB (10,485,760"),
            Err(ByteSizeError::Format)
        );
    }

    #[test]
    fn byte_quantities_format_like_exchange() {
        assert_eq!(format_byte_quantity(10 << 20), "10 MB (10,485,760 bytes)");
        assert_eq!(
            format_byte_quantity(10_240_000),
            "9.766 MB (10,240,000 bytes)"
        );
        assert_eq!(format_byte_quantity(512), "512 B (512 bytes)");
        assert_eq!(format_byte_quantity(0), "0 B (0 bytes)");
        for n in [0, 1, 65_536, 10_240_000, 2_147_483_647, u64::MAX] {
            assert_eq!(parse_byte_quantity(&format_byte_quantity(n)), Ok(n), "{n}");
        }
    }

    #[test]
    fn wrappers_display_like_powershell() {
        assert_eq!(Unlimited::<i64>::Unlimited.to_string(), "Unlimited");
        assert_eq!(Unlimited::Value(5).to_string(), "5");
        assert_eq!(Nullable::<i64>::Null.to_string(), "$null");
        assert_eq!(Nullable::Value(5).value(), Some(5));
    }
}
