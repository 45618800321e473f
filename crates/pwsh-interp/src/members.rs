//! Members: properties and methods of values (`$s.Length`, `$s.Split(',')`,
//! `$h.ContainsKey('k')`, `$_.Exception.Message`), of the interpreter's own objects
//! (`$Host.UI.WriteErrorLine`, `[Text.Encoding]::UTF8.GetString`), static members of the
//! supported .NET types (`[Convert]::FromBase64String`, `[ScriptBlock]::Create`,
//! `[Math]::Max` ...), and the host's methods on its objects ([`Host::call_method`]).
//!
//! PowerShell 2.0 has no member enumeration: `(1,2).Foo` is `$null`, and `.Count` of a
//! scalar is `$null` too; both are kept.
//!
//! [`Host::call_method`]: super::host::Host::call_method

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::ast::Span;
use super::convert::{
    Num, PsType, convert, datetime_parts, parse_datetime, parse_timespan, to_num,
};
use super::error::{ErrorCategory, ErrorRecord};
use super::format;
use super::interp::{Flow, Interp, R, unwrap_output};
use super::parser::parse;
use super::value::{Builtin, Hashtable, PsObject, ScriptBlock, TypeRef, Value};

fn method_not_found(it: &Interp<'_>, type_name: &str, name: &str, span: Span) -> Flow {
    it.runtime_error(
        format!("Method invocation failed because [{type_name}] doesn't contain a method named '{name}'."),
        ErrorCategory::InvalidOperation,
        "MethodNotFound",
        span,
    )
}

fn bad_count(it: &Interp<'_>, name: &str, count: usize, span: Span) -> Flow {
    let mut record = ErrorRecord::new(
        format!("Cannot find an overload for \"{name}\" and the argument count: \"{count}\"."),
        "System.Management.Automation.MethodException",
        ErrorCategory::NotSpecified,
        "MethodCountCouldNotFindBest",
    );
    record.exception_bases = vec!["System.Management.Automation.RuntimeException".into()];
    it.error_at(record, span)
}

/// "Exception calling "X" with "N" argument(s): "message"".
pub(crate) fn method_exception(
    it: &Interp<'_>,
    name: &str,
    count: usize,
    message: &str,
    span: Span,
) -> Flow {
    let mut record = ErrorRecord::new(
        format!("Exception calling \"{name}\" with \"{count}\" argument(s): \"{message}\""),
        "System.Management.Automation.MethodInvocationException",
        ErrorCategory::NotSpecified,
        "DotNetMethodException",
    );
    record.exception_bases = vec![
        "System.Management.Automation.MethodException".into(),
        "System.Management.Automation.RuntimeException".into(),
    ];
    it.error_at(record, span)
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Null)
}

fn int_arg(it: &Interp<'_>, name: &str, args: &[Value], i: usize, span: Span) -> R<i64> {
    match convert(&arg(args, i), &PsType::Long) {
        Ok(Value::Long(n)) => Ok(n),
        Ok(_) => Ok(0),
        Err(e) => Err(method_exception(it, name, args.len(), &e.message, span)),
    }
}

fn type_value(name: &str) -> Value {
    Value::Type(TypeRef(Arc::from(name)))
}

/// An exception object for `$_.Exception`.
fn exception_object(record: &ErrorRecord) -> Value {
    let mut names = vec![record.exception_type.clone()];
    names.extend(record.exception_bases.iter().cloned());
    names.push("System.Exception".into());
    names.push("System.Object".into());
    let obj = PsObject::with_display(names, record.message.clone())
        .with("Message", record.message.as_str())
        .with("InnerException", Value::Null)
        .with("Source", Value::Null);
    Value::Object(obj)
}

/// The value of `target.name`.
pub(crate) fn get_member(it: &mut Interp<'_>, target: &Value, name: &str, _span: Span) -> R<Value> {
    let lower = name.to_ascii_lowercase();
    Ok(match target {
        Value::Null => Value::Null,
        Value::String(s) => match lower.as_str() {
            "length" => Value::Int(i32::try_from(s.encode_utf16().count()).unwrap_or(i32::MAX)),
            _ => Value::Null,
        },
        Value::Array(a) => match lower.as_str() {
            "length" | "count" => Value::Int(i32::try_from(a.len()).unwrap_or(i32::MAX)),
            "longlength" => Value::Long(i64::try_from(a.len()).unwrap_or(i64::MAX)),
            "rank" => Value::Int(1),
            _ => Value::Null,
        },
        Value::Bytes(b) => match lower.as_str() {
            "length" | "count" => Value::Int(i32::try_from(b.len()).unwrap_or(i32::MAX)),
            _ => Value::Null,
        },
        Value::Hashtable(h) => match lower.as_str() {
            "count" => Value::Int(i32::try_from(h.len()).unwrap_or(i32::MAX)),
            "keys" => Value::from(h.keys()),
            "values" => Value::from(h.values()),
            "isreadonly" | "isfixedsize" | "issynchronized" => Value::Bool(false),
            _ => h.get(&Value::from(name)).unwrap_or(Value::Null),
        },
        Value::Object(o) => {
            if let Some(v) = o.get(name) {
                v
            } else if lower == "psobject" {
                psobject_view(o)
            } else {
                Value::Null
            }
        }
        Value::Error(e) => match lower.as_str() {
            "exception" => exception_object(e),
            "categoryinfo" => Value::Object(
                PsObject::with_display(
                    [
                        "System.Management.Automation.ErrorCategoryInfo",
                        "System.Object",
                    ],
                    e.category_info(),
                )
                .with("Category", e.category.name())
                .with("Activity", e.command_name.clone().unwrap_or_default())
                .with("Reason", e.reason())
                .with("TargetName", e.target_name.as_str())
                .with("TargetType", e.target_type.as_str()),
            ),
            "fullyqualifiederrorid" => Value::from(e.fully_qualified_error_id.as_str()),
            "targetobject" => e.target_object.clone(),
            "errordetails" => Value::Null,
            "invocationinfo" => {
                let nl = it.limits.newline.clone();
                let mut obj = PsObject::new([
                    "System.Management.Automation.InvocationInfo",
                    "System.Object",
                ])
                .with(
                    "PositionMessage",
                    e.position_message(&nl).unwrap_or_default(),
                )
                .with("MyCommand", e.command_name.clone());
                if let Some(p) = &e.position {
                    obj = obj
                        .with("ScriptLineNumber", i64::from(p.line))
                        .with("OffsetInLine", i64::from(p.column))
                        .with("Line", p.line_text.as_str());
                }
                Value::Object(obj)
            }
            _ => Value::Null,
        },
        Value::TimeSpan(t) => {
            let t = *t;
            let secs = t as f64 / 1e7;
            match lower.as_str() {
                "ticks" => Value::Long(t),
                "days" => Value::Int((t / 864_000_000_000) as i32),
                "hours" => Value::Int((t / 36_000_000_000 % 24) as i32),
                "minutes" => Value::Int((t / 600_000_000 % 60) as i32),
                "seconds" => Value::Int((t / 10_000_000 % 60) as i32),
                "milliseconds" => Value::Int((t / 10_000 % 1000) as i32),
                "totaldays" => Value::Double(secs / 86400.0),
                "totalhours" => Value::Double(secs / 3600.0),
                "totalminutes" => Value::Double(secs / 60.0),
                "totalseconds" => Value::Double(secs),
                "totalmilliseconds" => Value::Double(t as f64 / 1e4),
                _ => Value::Null,
            }
        }
        Value::DateTime(t) => {
            let (y, mo, d, h, mi, s, frac) = datetime_parts(*t);
            let int = |v: i64| Value::Int(i32::try_from(v).unwrap_or(0));
            match lower.as_str() {
                "year" => int(y),
                "month" => int(mo),
                "day" => int(d),
                "hour" => int(h),
                "minute" => int(mi),
                "second" => int(s),
                "millisecond" => int(frac / 10_000),
                "ticks" => Value::Long(*t),
                "date" => Value::DateTime(t - t.rem_euclid(864_000_000_000)),
                "dayofweek" => Value::from(
                    [
                        "Monday",
                        "Tuesday",
                        "Wednesday",
                        "Thursday",
                        "Friday",
                        "Saturday",
                        "Sunday",
                    ]
                    .get(usize::try_from(t.div_euclid(864_000_000_000).rem_euclid(7)).unwrap_or(0))
                    .copied()
                    .unwrap_or(""),
                ),
                _ => Value::Null,
            }
        }
        Value::Type(t) => match lower.as_str() {
            "fullname" => Value::from(t.0.as_ref()),
            "name" => Value::from(t.0.rsplit('.').next().unwrap_or(&t.0)),
            "namespace" => Value::from(t.0.rsplit_once('.').map_or("", |(ns, _)| ns)),
            _ => Value::Null,
        },
        Value::Builtin(Builtin::Host) => match lower.as_str() {
            "name" => Value::from("ConsoleHost"),
            "version" => Value::Object(
                PsObject::with_display(["System.Version", "System.Object"], "2.0")
                    .with("Major", 2)
                    .with("Minor", 0),
            ),
            "ui" => Value::Builtin(Builtin::HostUi),
            _ => Value::Null,
        },
        Value::Builtin(b @ (Builtin::Utf8 | Builtin::Unicode | Builtin::Ascii)) => {
            match lower.as_str() {
                "webname" | "bodyname" => Value::from(match b {
                    Builtin::Utf8 => "utf-8",
                    Builtin::Unicode => "utf-16",
                    _ => "us-ascii",
                }),
                "encodingname" => Value::from(match b {
                    Builtin::Utf8 => "Unicode (UTF-8)",
                    Builtin::Unicode => "Unicode",
                    _ => "US-ASCII",
                }),
                _ => Value::Null,
            }
        }
        _ => Value::Null,
    })
}

/// `$obj.PSObject`: its properties and type names.
fn psobject_view(o: &PsObject) -> Value {
    let props: Vec<Value> = o
        .properties()
        .into_iter()
        .map(|(n, v)| {
            Value::Object(
                PsObject::new([
                    "System.Management.Automation.PSNoteProperty",
                    "System.Object",
                ])
                .with("Name", n.as_str())
                .with("MemberType", "NoteProperty")
                .with("TypeNameOfValue", v.type_name())
                .with("Value", v),
            )
        })
        .collect();
    let names: Vec<Value> = o
        .type_names()
        .iter()
        .map(|t| Value::from(t.as_str()))
        .collect();
    Value::Object(
        PsObject::new(["System.Management.Automation.PSObject", "System.Object"])
            .with("Properties", Value::from(props))
            .with("TypeNames", Value::from(names)),
    )
}

/// `target.name = value`.
pub(crate) fn set_member(
    it: &mut Interp<'_>,
    target: &Value,
    name: &str,
    value: Value,
    span: Span,
) -> R<()> {
    match target {
        Value::Hashtable(h) => {
            h.insert(Value::from(name), value);
            Ok(())
        }
        Value::Object(o) if o.has(name) => {
            o.set(name, value);
            Ok(())
        }
        _ => Err(it.runtime_error(
            format!("Property '{name}' cannot be found on this object; make sure it exists and is settable."),
            ErrorCategory::InvalidOperation,
            "PropertyAssignmentException",
            span,
        )),
    }
}

fn text_arg(args: &[Value], i: usize) -> String {
    arg(args, i).to_text()
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.as_ref().clone()),
        Value::Array(items) => items
            .iter()
            .map(|x| match convert(x, &PsType::Byte) {
                Ok(Value::Int(i)) => u8::try_from(i).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `target.name(args)`.
pub(crate) fn call_method(
    it: &mut Interp<'_>,
    target: &Value,
    name: &str,
    args: Vec<Value>,
    span: Span,
) -> R<Value> {
    let lower = name.to_ascii_lowercase();
    let n = args.len();
    if target.is_null() {
        return Err(it.runtime_error(
            "You cannot call a method on a null-valued expression.",
            ErrorCategory::InvalidOperation,
            "InvokeMethodOnNull",
            span,
        ));
    }
    if let Value::Object(o) = target
        && let Some(result) = it.host.call_method(o, name, &args)
    {
        return result.map_err(|e| it.error_at(e, span));
    }
    let specific = match target {
        Value::String(s) => string_method(it, s, &lower, name, &args, span)?,
        Value::Hashtable(h) => hashtable_method(it, h, &lower, name, &args, span)?,
        Value::Array(a) if lower == "clone" && n == 0 => Some(Value::from(a.as_ref().clone())),
        Value::ScriptBlock(sb) => match lower.as_str() {
            "invoke" => Some(Value::from(it.invoke_block_collect(
                sb,
                args.clone(),
                span,
            )?)),
            "invokereturnasis" => Some(unwrap_output(it.invoke_block_collect(
                sb,
                args.clone(),
                span,
            )?)),
            "getnewclosure" => Some(target.clone()),
            _ => None,
        },
        Value::Builtin(b) => builtin_method(it, *b, &lower, name, &args, span)?,
        Value::DateTime(t) => {
            let add = |unit: f64| -> R<Value> {
                let v = to_num(&arg(&args, 0))
                    .map_err(|e| method_exception(it, name, n, &e.message, span))?;
                Ok(Value::DateTime(t + (v.as_f64() * unit) as i64))
            };
            match lower.as_str() {
                "addseconds" => Some(add(1e7)?),
                "addminutes" => Some(add(6e8)?),
                "addhours" => Some(add(3.6e10)?),
                "adddays" => Some(add(8.64e11)?),
                "addmilliseconds" => Some(add(1e4)?),
                "addticks" => Some(add(1.0)?),
                "tostring" if n == 1 => {
                    Some(Value::from(format::format_date(*t, &text_arg(&args, 0))))
                }
                "touniversaltime" | "tolocaltime" => Some(target.clone()),
                _ => None,
            }
        }
        Value::TimeSpan(t) => match lower.as_str() {
            "add" => match arg(&args, 0) {
                Value::TimeSpan(d) => Some(Value::TimeSpan(t + d)),
                _ => None,
            },
            "subtract" => match arg(&args, 0) {
                Value::TimeSpan(d) => Some(Value::TimeSpan(t - d)),
                _ => None,
            },
            _ => None,
        },
        Value::Int(_) | Value::Long(_) | Value::Double(_) if lower == "tostring" && n == 1 => {
            let f = text_arg(&args, 0);
            Some(Value::from(
                format::format_value(target, &f)
                    .map_err(|m| method_exception(it, name, n, &m, span))?,
            ))
        }
        _ => None,
    };
    if let Some(v) = specific {
        return Ok(v);
    }
    match (lower.as_str(), n) {
        ("tostring", 0) => Ok(Value::from(target.to_text())),
        ("gettype", 0) => Ok(type_value(&target.type_name())),
        ("equals", 1) => Ok(Value::Bool(super::ops::equals(
            target,
            &arg(&args, 0),
            super::ast::Case::Sensitive,
        ))),
        ("gethashcode", 0) => Ok(Value::Int(0)),
        _ => Err(method_not_found(it, &target.type_name(), name, span)),
    }
}

fn string_method(
    it: &mut Interp<'_>,
    s: &str,
    lower: &str,
    name: &str,
    args: &[Value],
    span: Span,
) -> R<Option<Value>> {
    let n = args.len();
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let range_error = |param: &str| {
        method_exception(
            it,
            name,
            n,
            &format!(
                "Index and length must refer to a location within the string.\r\nParameter name: {param}"
            ),
            span,
        )
    };
    let v = match (lower, n) {
        ("toupper" | "toupperinvariant", 0) => Value::from(s.to_uppercase()),
        ("tolower" | "tolowerinvariant", 0) => Value::from(s.to_lowercase()),
        ("trim", 0) => Value::from(s.trim()),
        ("trimstart", 0) => Value::from(s.trim_start()),
        ("trimend", 0) => Value::from(s.trim_end()),
        ("trim" | "trimstart" | "trimend", _) => {
            let set: Vec<char> = args
                .iter()
                .flat_map(|a| a.to_text().chars().collect::<Vec<_>>())
                .collect();
            let f = |c: char| set.contains(&c);
            Value::from(match lower {
                "trim" => s.trim_matches(f),
                "trimstart" => s.trim_start_matches(f),
                _ => s.trim_end_matches(f),
            })
        }
        ("split", _) => {
            // .NET 2.0's String.Split(params char[]): every character of the argument
            // is a separator.
            let mut set: Vec<char> = args
                .iter()
                .flat_map(|a| a.to_text().chars().collect::<Vec<_>>())
                .collect();
            if set.is_empty() {
                set = vec![' ', '\t', '\n', '\r', '\u{b}', '\u{c}'];
            }
            let parts: Vec<Value> = s.split(|c| set.contains(&c)).map(Value::from).collect();
            it.check_len(parts.len())?;
            Value::from(parts)
        }
        ("replace", 2) => {
            let old = text_arg(args, 0);
            if old.is_empty() {
                return Err(method_exception(
                    it,
                    name,
                    n,
                    "String cannot be of zero length.\r\nParameter name: oldValue",
                    span,
                ));
            }
            let new = text_arg(args, 1);
            let out = s.replace(&old, &new);
            it.check_string(out.len())?;
            Value::from(out)
        }
        ("contains", 1) => Value::Bool(s.contains(&text_arg(args, 0))),
        ("startswith", 1) => Value::Bool(s.starts_with(&text_arg(args, 0))),
        ("endswith", 1) => Value::Bool(s.ends_with(&text_arg(args, 0))),
        ("indexof" | "lastindexof", 1) => {
            let needle: Vec<char> = text_arg(args, 0).chars().collect();
            let positions = (0..=chars.len().saturating_sub(needle.len()))
                .filter(|&i| chars.get(i..i + needle.len()) == Some(&needle[..]));
            let found = if lower == "indexof" {
                positions.min()
            } else {
                positions.max()
            };
            Value::Int(found.map_or(-1, |i| i32::try_from(i).unwrap_or(-1)))
        }
        ("substring", 1 | 2) => {
            let start = int_arg(it, name, args, 0, span)?;
            if start < 0 || start > len {
                return Err(range_error("startIndex"));
            }
            let count = if n == 2 {
                int_arg(it, name, args, 1, span)?
            } else {
                len - start
            };
            if count < 0 || start + count > len {
                return Err(range_error("length"));
            }
            Value::from(
                chars[start as usize..(start + count) as usize]
                    .iter()
                    .collect::<String>(),
            )
        }
        ("padleft" | "padright", 1 | 2) => {
            let width = int_arg(it, name, args, 0, span)?;
            let width = usize::try_from(width).unwrap_or(0);
            it.check_string(width)?;
            let pad = if n == 2 {
                text_arg(args, 1).chars().next().unwrap_or(' ')
            } else {
                ' '
            };
            let fill: String =
                std::iter::repeat_n(pad, width.saturating_sub(chars.len())).collect();
            Value::from(if lower == "padleft" {
                format!("{fill}{s}")
            } else {
                format!("{s}{fill}")
            })
        }
        ("insert", 2) => {
            let at = int_arg(it, name, args, 0, span)?;
            if at < 0 || at > len {
                return Err(range_error("startIndex"));
            }
            let mut out: String = chars[..at as usize].iter().collect();
            out.push_str(&text_arg(args, 1));
            out.extend(&chars[at as usize..]);
            Value::from(out)
        }
        ("remove", 1 | 2) => {
            let start = int_arg(it, name, args, 0, span)?;
            let count = if n == 2 {
                int_arg(it, name, args, 1, span)?
            } else {
                len - start
            };
            if start < 0 || count < 0 || start + count > len {
                return Err(range_error("count"));
            }
            let mut out: String = chars[..start as usize].iter().collect();
            out.extend(&chars[(start + count) as usize..]);
            Value::from(out)
        }
        ("tochararray", 0) => {
            Value::from(chars.iter().map(|c| Value::Char(*c)).collect::<Vec<_>>())
        }
        ("compareto", 1) => Value::Int(
            match s.to_lowercase().cmp(&text_arg(args, 0).to_lowercase()) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            },
        ),
        ("equals", 1) => Value::Bool(matches!(arg(args, 0), Value::String(o) if *o == *s)),
        (
            "toupper" | "tolower" | "replace" | "contains" | "startswith" | "endswith" | "indexof"
            | "lastindexof" | "substring" | "padleft" | "padright" | "insert" | "remove",
            _,
        ) => return Err(bad_count(it, name, n, span)),
        _ => return Ok(None),
    };
    Ok(Some(v))
}

fn hashtable_method(
    it: &mut Interp<'_>,
    h: &Hashtable,
    lower: &str,
    name: &str,
    args: &[Value],
    span: Span,
) -> R<Option<Value>> {
    let n = args.len();
    let v = match (lower, n) {
        ("containskey" | "contains", 1) => Value::Bool(h.contains_key(&arg(args, 0))),
        ("containsvalue", 1) => {
            let wanted = arg(args, 0);
            Value::Bool(
                h.values()
                    .iter()
                    .any(|v| super::ops::equals(v, &wanted, super::ast::Case::Sensitive)),
            )
        }
        ("add", 2) => {
            let key = arg(args, 0);
            if key.is_null() {
                return Err(method_exception(
                    it,
                    name,
                    n,
                    "Key cannot be null.\r\nParameter name: key",
                    span,
                ));
            }
            if h.add(key.clone(), arg(args, 1)).is_err() {
                let k = key.to_text();
                return Err(method_exception(
                    it,
                    name,
                    n,
                    &format!(
                        "Item has already been added. Key in dictionary: '{k}'  Key being added: '{k}'"
                    ),
                    span,
                ));
            }
            void()
        }
        ("remove", 1) => {
            h.remove(&arg(args, 0));
            void()
        }
        ("clear", 0) => {
            h.clear();
            void()
        }
        ("clone", 0) => Value::Hashtable(Hashtable::from_entries(h.entries())),
        ("get_item", 1) => h.get(&arg(args, 0)).unwrap_or(Value::Null),
        ("set_item", 2) => {
            h.insert(arg(args, 0), arg(args, 1));
            void()
        }
        ("getenumerator", 0) => Value::from(
            h.entries()
                .into_iter()
                .map(|(k, v)| {
                    Value::Object(
                        PsObject::new([
                            "System.Collections.DictionaryEntry",
                            "System.ValueType",
                            "System.Object",
                        ])
                        .with("Name", k.clone())
                        .with("Key", k)
                        .with("Value", v),
                    )
                })
                .collect::<Vec<_>>(),
        ),
        ("containskey" | "contains" | "add" | "remove", _) => {
            return Err(bad_count(it, name, n, span));
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// What a `void` method returns: nothing (written as `$null`, which prints nothing).
fn void() -> Value {
    Value::Null
}

fn encoding_bytes(b: Builtin, s: &str) -> Vec<u8> {
    match b {
        Builtin::Unicode => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Builtin::Ascii => s
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        _ => s.as_bytes().to_vec(),
    }
}

fn encoding_string(b: Builtin, bytes: &[u8]) -> String {
    match b {
        Builtin::Unicode => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_le_bytes([p[0], *p.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        Builtin::Ascii => bytes
            .iter()
            .map(|&x| if x < 128 { x as char } else { '?' })
            .collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn builtin_method(
    it: &mut Interp<'_>,
    b: Builtin,
    lower: &str,
    name: &str,
    args: &[Value],
    span: Span,
) -> R<Option<Value>> {
    let n = args.len();
    let nl = it.limits.newline.clone();
    let v = match (b, lower) {
        (Builtin::HostUi, "writeerrorline") => {
            let text = text_arg(args, 0);
            let text = text
                .strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .unwrap_or(&text);
            it.sink.host_error_line(text);
            void()
        }
        (Builtin::HostUi | Builtin::ConsoleOut, "writeline") => {
            let mut text = if n == 0 {
                String::new()
            } else {
                text_arg(args, 0)
            };
            text.push_str(&nl);
            it.write_host_text(&text);
            void()
        }
        (Builtin::HostUi | Builtin::ConsoleOut, "write") => {
            let text = args.last().map(Value::to_text).unwrap_or_default();
            it.write_host_text(&text);
            void()
        }
        (Builtin::ConsoleOut, "flush") => void(),
        (Builtin::HostUi, "writewarningline") => {
            it.sink.warning(&text_arg(args, 0));
            void()
        }
        (Builtin::HostUi, "writeverboseline") => {
            it.sink.verbose(&text_arg(args, 0));
            void()
        }
        (Builtin::HostUi, "writedebugline") => {
            it.sink.debug(&text_arg(args, 0));
            void()
        }
        (Builtin::Utf8 | Builtin::Unicode | Builtin::Ascii, "getstring") => {
            let Some(bytes) = bytes_of(&arg(args, 0)) else {
                return Err(method_exception(
                    it,
                    name,
                    n,
                    "Array cannot be null.\r\nParameter name: bytes",
                    span,
                ));
            };
            let slice = if n == 3 {
                let start =
                    usize::try_from(int_arg(it, name, args, 1, span)?).unwrap_or(usize::MAX);
                let count =
                    usize::try_from(int_arg(it, name, args, 2, span)?).unwrap_or(usize::MAX);
                match bytes.get(start..start.saturating_add(count)) {
                    Some(s) => s.to_vec(),
                    None => {
                        return Err(method_exception(
                            it,
                            name,
                            n,
                            "Index and count must refer to a location within the buffer.\r\nParameter name: bytes",
                            span,
                        ));
                    }
                }
            } else {
                bytes
            };
            let s = encoding_string(b, &slice);
            it.check_string(s.len())?;
            Value::from(s)
        }
        (Builtin::Utf8 | Builtin::Unicode | Builtin::Ascii, "getbytes") => {
            Value::Bytes(Arc::new(encoding_bytes(b, &text_arg(args, 0))))
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// `[T]::Name`.
pub(crate) fn static_member(it: &mut Interp<'_>, ty: &PsType, name: &str, _span: Span) -> R<Value> {
    let lower = name.to_ascii_lowercase();
    Ok(match (ty, lower.as_str()) {
        (PsType::Int, "maxvalue") => Value::Int(i32::MAX),
        (PsType::Int, "minvalue") => Value::Int(i32::MIN),
        (PsType::Long, "maxvalue") => Value::Long(i64::MAX),
        (PsType::Long, "minvalue") => Value::Long(i64::MIN),
        (PsType::UInt32, "maxvalue") => Value::Long(i64::from(u32::MAX)),
        (PsType::UInt32, "minvalue") => Value::Long(0),
        (PsType::Byte, "maxvalue") => Value::Int(255),
        (PsType::Byte, "minvalue") => Value::Int(0),
        (PsType::Double, "maxvalue") => Value::Double(f64::MAX),
        (PsType::Double, "minvalue") => Value::Double(f64::MIN),
        (PsType::Double, "nan") => Value::Double(f64::NAN),
        (PsType::Double, "positiveinfinity") => Value::Double(f64::INFINITY),
        (PsType::Double, "negativeinfinity") => Value::Double(f64::NEG_INFINITY),
        (PsType::String, "empty") => Value::from(""),
        (PsType::Encoding, "utf8") => Value::Builtin(Builtin::Utf8),
        (PsType::Encoding, "unicode") => Value::Builtin(Builtin::Unicode),
        (PsType::Encoding, "ascii") => Value::Builtin(Builtin::Ascii),
        (PsType::Environment, "newline") => Value::from(it.limits.newline.as_str()),
        (PsType::Environment, "machinename") => Value::from(
            it.host
                .env_var("COMPUTERNAME")
                .unwrap_or_else(|| "localhost".into()),
        ),
        (PsType::Environment, "username") => {
            it.host.env_var("USERNAME").map_or(Value::Null, Value::from)
        }
        (PsType::Console, "out") => Value::Builtin(Builtin::ConsoleOut),
        (PsType::DateTime, "now" | "utcnow") => Value::DateTime(it.host.now()),
        (PsType::DateTime, "today") => {
            let now = it.host.now();
            Value::DateTime(now - now.rem_euclid(864_000_000_000))
        }
        (PsType::DateTime, "minvalue") => Value::DateTime(0),
        (PsType::TimeSpan, "zero") => Value::TimeSpan(0),
        (PsType::Math, "pi") => Value::Double(std::f64::consts::PI),
        (PsType::Math, "e") => Value::Double(std::f64::consts::E),
        _ => Value::Null,
    })
}

fn nums(it: &Interp<'_>, name: &str, args: &[Value], span: Span) -> R<Vec<Num>> {
    args.iter()
        .map(|a| to_num(a).map_err(|e| method_exception(it, name, args.len(), &e.message, span)))
        .collect()
}

/// `[T]::Name(args)`.
pub(crate) fn static_call(
    it: &mut Interp<'_>,
    ty: &PsType,
    name: &str,
    args: Vec<Value>,
    span: Span,
) -> R<Value> {
    let lower = name.to_ascii_lowercase();
    let n = args.len();
    let fail = |it: &Interp<'_>, m: &str| method_exception(it, name, n, m, span);
    match (ty, lower.as_str(), n) {
        (PsType::Convert, "tobase64string", 1) => {
            let Some(bytes) = bytes_of(&arg(&args, 0)) else {
                return Err(fail(it, "Value cannot be null.\r\nParameter name: inArray"));
            };
            let s = STANDARD.encode(bytes);
            it.check_string(s.len())?;
            Ok(Value::from(s))
        }
        (PsType::Convert, "frombase64string", 1) => {
            let text: String = text_arg(&args, 0)
                .chars()
                .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                .collect();
            if !text.len().is_multiple_of(4) {
                return Err(fail(it, "Invalid length for a Base-64 char array."));
            }
            STANDARD
                .decode(text.as_bytes())
                .map(|b| Value::Bytes(Arc::new(b)))
                .map_err(|_| fail(it, "Invalid character in a Base-64 string."))
        }
        (PsType::Convert, "toint32" | "toint64", 1) => {
            let target = if lower == "toint32" {
                PsType::Int
            } else {
                PsType::Long
            };
            convert(&arg(&args, 0), &target)
                .map_err(|e| fail(it, e.detail.as_deref().unwrap_or(&e.message)))
        }
        (PsType::Convert, "toint32" | "toint64", 2) => {
            let base = int_arg(it, name, &args, 1, span)?;
            let text = text_arg(&args, 0);
            let digits = text
                .trim()
                .trim_start_matches("0x")
                .trim_start_matches("0X");
            let radix = u32::try_from(base).unwrap_or(10);
            if ![2, 8, 10, 16].contains(&radix) {
                return Err(fail(it, "Invalid Base."));
            }
            let v = i64::from_str_radix(digits, radix)
                .map_err(|_| fail(it, "Could not find any recognizable digits."))?;
            Ok(if lower == "toint32" {
                Value::Int(v as i32)
            } else {
                Value::Long(v)
            })
        }
        (PsType::Convert, "tostring", 1) => Ok(Value::from(arg(&args, 0).to_text())),
        (PsType::Convert, "toboolean", 1) => Ok(Value::Bool(match arg(&args, 0) {
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(fail(it, "String was not recognized as a valid Boolean.")),
            },
            other => other.is_true(),
        })),
        (PsType::Convert, "todouble", 1) => convert(&arg(&args, 0), &PsType::Double)
            .map_err(|e| fail(it, e.detail.as_deref().unwrap_or(&e.message))),
        (PsType::ScriptBlock, "create", 1) => match parse(&text_arg(&args, 0)) {
            Ok(script) => Ok(Value::ScriptBlock(ScriptBlock(script.block))),
            Err(e) => Err(fail(it, &e.message)),
        },
        (PsType::String, "join", _) if n >= 2 => {
            let sep = text_arg(&args, 0);
            let items: Vec<Value> = if n == 2 {
                match arg(&args, 1) {
                    Value::Array(a) => a.as_ref().clone(),
                    other => vec![other],
                }
            } else {
                args[1..].to_vec()
            };
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&sep);
                }
                out.push_str(&item.to_text());
                it.check_string(out.len())?;
            }
            Ok(Value::from(out))
        }
        (PsType::String, "isnullorempty", 1) => Ok(Value::Bool(match arg(&args, 0) {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        })),
        (PsType::String, "format", _) if n >= 1 => {
            let rest: Vec<Value> = match (n, args.get(1)) {
                (2, Some(Value::Array(a))) => a.as_ref().clone(),
                _ => args[1..].to_vec(),
            };
            format::composite(&text_arg(&args, 0), &rest)
                .map(Value::from)
                .map_err(|m| fail(it, &m))
        }
        (PsType::String, "concat", _) => {
            let mut out = String::new();
            for a in &args {
                out.push_str(&a.to_text());
                it.check_string(out.len())?;
            }
            Ok(Value::from(out))
        }
        (PsType::String, "compare", 2 | 3) => {
            let ignore = n == 3 && arg(&args, 2).is_true();
            let (a, b) = (text_arg(&args, 0), text_arg(&args, 1));
            let ord = if ignore {
                a.to_lowercase().cmp(&b.to_lowercase())
            } else {
                a.cmp(&b)
            };
            Ok(Value::Int(ord as i32))
        }
        (PsType::Math, "max" | "min", 2) | (PsType::Math, "pow", 2) => {
            let v = nums(it, name, &args, span)?;
            let (a, b) = (v[0], v[1]);
            if lower == "pow" {
                return Ok(Value::Double(a.as_f64().powf(b.as_f64())));
            }
            let pick_a = if lower == "max" {
                a.as_f64() >= b.as_f64()
            } else {
                a.as_f64() <= b.as_f64()
            };
            let both_int = |x: Num| matches!(x, Num::Int(_) | Num::Long(_));
            let chosen = if pick_a { a } else { b };
            Ok(if both_int(a) && both_int(b) {
                chosen.value()
            } else {
                Value::Double(chosen.as_f64())
            })
        }
        (PsType::Math, "abs" | "floor" | "ceiling" | "sqrt" | "truncate" | "sign" | "round", 1) => {
            let v = nums(it, name, &args, span)?[0];
            Ok(match (lower.as_str(), v) {
                ("abs", Num::Int(i)) => i
                    .checked_abs()
                    .map_or(Value::Long(i64::from(i).abs()), Value::Int),
                ("abs", Num::Long(l)) => Value::Long(l.saturating_abs()),
                ("abs", n) => Value::Double(n.as_f64().abs()),
                ("sign", n) => Value::Int(n.as_f64().partial_cmp(&0.0).map_or(0, |o| o as i32)),
                ("floor", n) => Value::Double(n.as_f64().floor()),
                ("ceiling", n) => Value::Double(n.as_f64().ceil()),
                ("sqrt", n) => Value::Double(n.as_f64().sqrt()),
                ("truncate", n) => Value::Double(n.as_f64().trunc()),
                (_, n) => Value::Double(n.as_f64().round_ties_even()),
            })
        }
        (PsType::Math, "round", 2) => {
            let v = nums(it, name, &args, span)?;
            let digits = i32::try_from(bits_of(v[1])).unwrap_or(0).clamp(0, 15);
            let factor = 10f64.powi(digits);
            Ok(Value::Double(
                (v[0].as_f64() * factor).round_ties_even() / factor,
            ))
        }
        (
            PsType::Int | PsType::Long | PsType::Double | PsType::UInt32 | PsType::Byte,
            "parse",
            1,
        ) => convert(&Value::from(text_arg(&args, 0)), ty)
            .map_err(|e| fail(it, e.detail.as_deref().unwrap_or(&e.message))),
        (PsType::DateTime, "parse", 1) => parse_datetime(&text_arg(&args, 0))
            .map(Value::DateTime)
            .ok_or_else(|| fail(it, "String was not recognized as a valid DateTime.")),
        (PsType::TimeSpan, "parse", 1) => parse_timespan(&text_arg(&args, 0))
            .map(Value::TimeSpan)
            .ok_or_else(|| fail(it, "String was not recognized as a valid TimeSpan.")),
        (PsType::TimeSpan, unit, 1) if unit.starts_with("from") => {
            let v = nums(it, name, &args, span)?[0].as_f64();
            let ticks = match unit {
                "fromdays" => v * 8.64e11,
                "fromhours" => v * 3.6e10,
                "fromminutes" => v * 6e8,
                "fromseconds" => v * 1e7,
                "frommilliseconds" => v * 1e4,
                "fromticks" => v,
                _ => return Err(method_not_found(it, &ty.full_name(), name, span)),
            };
            Ok(Value::TimeSpan(ticks.round() as i64))
        }
        (PsType::Environment, "getenvironmentvariable", 1) => Ok(it
            .host
            .env_var(&text_arg(&args, 0))
            .map_or(Value::Null, Value::from)),
        (PsType::Console, "writeline" | "write", _) => {
            builtin_method(it, Builtin::ConsoleOut, &lower, name, &args, span)
                .map(Option::unwrap_or_default)
        }
        (PsType::Regex, "escape", 1) => Ok(Value::from(regex::escape(&text_arg(&args, 0)))),
        (PsType::Regex, "ismatch", 2) => {
            let re =
                regex::Regex::new(&text_arg(&args, 1)).map_err(|_| fail(it, "Invalid pattern."))?;
            Ok(Value::Bool(re.is_match(&text_arg(&args, 0))))
        }
        _ => Err(method_not_found(it, &ty.full_name(), name, span)),
    }
}

fn bits_of(n: Num) -> i64 {
    match n {
        Num::Int(i) => i64::from(i),
        Num::Long(l) => l,
        Num::Double(d) => d as i64,
    }
}
