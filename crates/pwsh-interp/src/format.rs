//! Text formatting: how objects reaching the end of a pipeline print (`Out-Default`,
//! `Out-String`), and .NET composite formatting for `-f` and `[string]::Format`.
//!
//! Output formatting is a simplification of PowerShell's formatter, enough for tests:
//! strings and numbers print as their text, one per line; arrays print one element per
//! line; hashtables print as PowerShell's `Name`/`Value` table; objects (custom or from
//! the host) print in list format (`Name : Value`, names padded, a blank line before and
//! after), never as tables; objects with a display string print that string; error
//! records print in PowerShell 2.0's error view. Lines are not wrapped.

use super::convert::{Num, datetime_parts, to_num};
use super::value::{MAX_VALUE_DEPTH, Value, format_double};

/// The text `Out-Default` writes for one pipeline object, each line ended by `nl`.
pub(crate) fn format_for_output(v: &Value, nl: &str) -> String {
    let mut out = String::new();
    write_output(&mut out, v, nl, 0);
    out
}

fn write_output(out: &mut String, v: &Value, nl: &str, depth: usize) {
    match v {
        Value::Null => {}
        Value::Array(items) => {
            if depth >= MAX_VALUE_DEPTH {
                out.push_str("System.Object[]");
                out.push_str(nl);
                return;
            }
            for item in items.iter() {
                write_output(out, item, nl, depth + 1);
            }
        }
        Value::Bytes(b) => {
            for x in b.iter() {
                out.push_str(&x.to_string());
                out.push_str(nl);
            }
        }
        Value::Hashtable(h) => {
            let entries = h.entries();
            if entries.is_empty() {
                return;
            }
            out.push_str(nl);
            out.push_str(&format!("{:<30} {}", "Name", "Value"));
            out.push_str(nl);
            out.push_str(&format!("{:<30} {}", "----", "-----"));
            out.push_str(nl);
            for (k, val) in entries {
                let key = k.to_text();
                let line = format!("{key:<30} {}", property_text(&val));
                out.push_str(line.trim_end());
                out.push_str(nl);
            }
            out.push_str(nl);
        }
        Value::Object(o) if o.display().is_none() => {
            let props = o.properties();
            if props.is_empty() {
                out.push_str(&v.to_text());
                out.push_str(nl);
                return;
            }
            let width = props
                .iter()
                .map(|(n, _)| n.chars().count())
                .max()
                .unwrap_or(0);
            out.push_str(nl);
            for (name, value) in props {
                let line = format!("{name:<width$} : {}", property_text(&value));
                out.push_str(line.trim_end());
                out.push_str(nl);
            }
            out.push_str(nl);
        }
        Value::Error(e) => {
            out.push_str(&e.format_v2_with(nl));
            out.push_str(nl);
        }
        Value::DateTime(t) => {
            out.push_str(&long_date(*t));
            out.push_str(nl);
        }
        other => {
            // Line breaks inside a string are written as they are, as PowerShell does.
            out.push_str(&other.to_text());
            out.push_str(nl);
        }
    }
}

/// A property value in list or table format: collections in braces.
pub(crate) fn property_text(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().take(4).map(Value::to_text).collect();
            let more = if items.len() > 4 { "..." } else { "" };
            format!("{{{}{more}}}", parts.join(", "))
        }
        Value::Bytes(b) => {
            let parts: Vec<String> = b.iter().take(4).map(|x| x.to_string()).collect();
            let more = if b.len() > 4 { "..." } else { "" };
            format!("{{{}{more}}}", parts.join(", "))
        }
        other => other.to_text(),
    }
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// How powershell.exe (en-US) prints a DateTime: `Tuesday, November 24, 2026 8:22:44 AM`.
pub(crate) fn long_date(ticks: i64) -> String {
    let (y, m, d, h, mi, s, _) = datetime_parts(ticks);
    let day_number = ticks.div_euclid(864_000_000_000);
    // 0001-01-01 was a Monday.
    let dow = DAYS
        .get(usize::try_from(day_number.rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("");
    let month = MONTHS
        .get(usize::try_from(m - 1).unwrap_or(0))
        .copied()
        .unwrap_or("");
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!("{dow}, {month} {d}, {y} {h12}:{mi:02}:{s:02} {ampm}")
}

/// .NET composite formatting: `{index[,alignment][:format]}`, `{{` and `}}`. The error
/// is the .NET message.
pub fn composite(fmt: &str, args: &[Value]) -> Result<String, String> {
    const BAD: &str = "Input string was not in a correct format.";
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(BAD.into()),
            '{' => {
                let mut spec = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    spec.push(n);
                }
                if !closed {
                    return Err(BAD.into());
                }
                let (head, format) = match spec.split_once(':') {
                    Some((h, f)) => (h, Some(f)),
                    None => (spec.as_str(), None),
                };
                let (index, align) = match head.split_once(',') {
                    Some((i, a)) => (
                        i,
                        Some(a.trim().parse::<i64>().map_err(|_| BAD.to_string())?),
                    ),
                    None => (head, None),
                };
                let index: usize = index.trim().parse().map_err(|_| BAD.to_string())?;
                let arg = args.get(index).ok_or_else(|| {
                    "Index (zero based) must be greater than or equal to zero and less than the size of the argument list.".to_string()
                })?;
                let text = match format {
                    Some(f) => format_value(arg, f)?,
                    None => arg.to_text(),
                };
                let width = usize::try_from(align.unwrap_or(0).unsigned_abs())
                    .unwrap_or(0)
                    .min(10_000);
                let len = text.chars().count();
                match align {
                    Some(a) if a > 0 && len < width => {
                        out.push_str(&" ".repeat(width - len));
                        out.push_str(&text);
                    }
                    Some(a) if a < 0 && len < width => {
                        out.push_str(&text);
                        out.push_str(&" ".repeat(width - len));
                    }
                    _ => out.push_str(&text),
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

fn group_thousands(int_part: &str) -> String {
    let digits: Vec<char> = int_part.chars().collect();
    let mut out = String::new();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*d);
    }
    out
}

fn fixed(d: f64, decimals: usize, thousands: bool) -> String {
    let s = format!("{:.*}", decimals, d.abs());
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (s.clone(), None),
    };
    let mut out = String::new();
    if d < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('-');
    }
    out.push_str(&if thousands {
        group_thousands(&int_part)
    } else {
        int_part
    });
    if let Some(f) = frac {
        out.push('.');
        out.push_str(&f);
    }
    out
}

/// Formats one value with a .NET format string (standard numeric formats, simple custom
/// numeric formats, custom date formats).
pub fn format_value(v: &Value, f: &str) -> Result<String, String> {
    const BAD: &str = "Input string was not in a correct format.";
    if let Value::DateTime(t) = v {
        return Ok(format_date(*t, f));
    }
    let n = match v {
        Value::Int(_) | Value::Long(_) | Value::Double(_) => to_num(v).map_err(|e| e.message)?,
        _ => return Ok(v.to_text()),
    };
    let mut cs = f.chars();
    let kind = cs.next().unwrap_or('G');
    let rest: String = cs.collect();
    let precision: Option<usize> = if rest.is_empty() {
        None
    } else if rest.chars().all(|c| c.is_ascii_digit()) {
        rest.parse().ok().filter(|p| *p <= 99)
    } else {
        return custom_numeric(n.as_f64(), f);
    };
    if f.chars().count() > 1 && precision.is_none() {
        return custom_numeric(n.as_f64(), f);
    }
    let int = match n {
        Num::Int(i) => Some(i64::from(i)),
        Num::Long(l) => Some(l),
        Num::Double(_) => None,
    };
    Ok(match kind.to_ascii_uppercase() {
        'D' => {
            let i = int.ok_or_else(|| "Format specifier was invalid.".to_string())?;
            let digits = i.unsigned_abs().to_string();
            let pad = precision.unwrap_or(0).saturating_sub(digits.len());
            format!(
                "{}{}{digits}",
                if i < 0 { "-" } else { "" },
                "0".repeat(pad)
            )
        }
        'X' => {
            let i = int.ok_or_else(|| "Format specifier was invalid.".to_string())?;
            let hex = match n {
                Num::Int(x) => format!("{:x}", x as u32),
                _ => format!("{:x}", i as u64),
            };
            let hex = if kind == 'X' { hex.to_uppercase() } else { hex };
            let pad = precision.unwrap_or(0).saturating_sub(hex.len());
            format!("{}{hex}", "0".repeat(pad))
        }
        'N' => fixed(n.as_f64(), precision.unwrap_or(2), true),
        'F' => fixed(n.as_f64(), precision.unwrap_or(2), false),
        'P' => format!(
            "{} %",
            fixed(n.as_f64() * 100.0, precision.unwrap_or(2), true)
        ),
        'C' => {
            let d = n.as_f64();
            let body = fixed(d.abs(), precision.unwrap_or(2), true);
            if d < 0.0 {
                format!("(${body})")
            } else {
                format!("${body}")
            }
        }
        'E' => {
            let p = precision.unwrap_or(6);
            let s = format!("{:.*e}", p, n.as_f64());
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            let letter = if kind == 'e' { 'e' } else { 'E' };
            format!(
                "{m}{letter}{}{:03}",
                if e < 0 { '-' } else { '+' },
                e.unsigned_abs()
            )
        }
        'G' | 'R' => match n {
            Num::Double(d) => format_double(d),
            _ => v.to_text(),
        },
        _ => return Err(BAD.into()),
    })
}

/// Custom numeric formats made of `0`, `#`, `,` and `.` (e.g. `00`, `0.00`, `#,##0`).
fn custom_numeric(d: f64, f: &str) -> Result<String, String> {
    if !f.chars().all(|c| matches!(c, '0' | '#' | ',' | '.')) {
        return Err("Format specifier was invalid.".into());
    }
    let (int_spec, frac_spec) = f.split_once('.').unwrap_or((f, ""));
    let decimals = frac_spec.chars().filter(|c| matches!(c, '0' | '#')).count();
    let min_frac = frac_spec.chars().filter(|c| *c == '0').count();
    let min_int = int_spec.chars().filter(|c| *c == '0').count();
    let thousands = int_spec.contains(',');
    let s = format!("{:.*}", decimals, d.abs());
    let (ip, fp) = s.split_once('.').unwrap_or((&s, ""));
    let mut ip = ip.trim_start_matches('0').to_owned();
    while ip.len() < min_int {
        ip.insert(0, '0');
    }
    let mut fp = fp.to_owned();
    while fp.len() > min_frac && fp.ends_with('0') {
        fp.pop();
    }
    let mut out = String::new();
    if d < 0.0 && (ip.chars().any(|c| c != '0') || fp.chars().any(|c| c != '0')) {
        out.push('-');
    }
    out.push_str(&if thousands { group_thousands(&ip) } else { ip });
    if !fp.is_empty() {
        out.push('.');
        out.push_str(&fp);
    }
    Ok(out)
}

/// Custom date formats: `yyyy`, `yy`, `MM`, `M`, `dd`, `d`, `HH`, `H`, `hh`, `h`, `mm`,
/// `ss`, `fff`, `tt`; anything else is copied. A one-letter format is a standard one
/// (`s` sortable, `d` short date; others print the default text).
pub fn format_date(ticks: i64, f: &str) -> String {
    let (y, mo, d, h, mi, s, frac) = datetime_parts(ticks);
    match f {
        "s" => return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
        "d" => return format!("{mo}/{d}/{y:04}"),
        "o" | "O" => return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:07}"),
        _ if f.chars().count() == 1 => return long_date(ticks),
        _ => {}
    }
    let chars: Vec<char> = f.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let h12 = if h % 12 == 0 { 12 } else { h % 12 };
        let piece = match (c, run) {
            ('y', 4..) => format!("{y:04}"),
            ('y', _) => format!("{:02}", y % 100),
            ('M', 2..) => format!("{mo:02}"),
            ('M', _) => mo.to_string(),
            ('d', 2) => format!("{d:02}"),
            ('d', 1) => d.to_string(),
            ('H', 2..) => format!("{h:02}"),
            ('H', _) => h.to_string(),
            ('h', 2..) => format!("{h12:02}"),
            ('h', _) => h12.to_string(),
            ('m', 2..) => format!("{mi:02}"),
            ('m', _) => mi.to_string(),
            ('s', 2..) => format!("{s:02}"),
            ('s', _) => s.to_string(),
            ('f', n) => format!("{frac:07}").chars().take(n.min(7)).collect(),
            ('t', _) => (if h < 12 { "AM" } else { "PM" }).to_string(),
            (other, n) => std::iter::repeat_n(other, n).collect(),
        };
        out.push_str(&piece);
        i += run;
    }
    out
}
