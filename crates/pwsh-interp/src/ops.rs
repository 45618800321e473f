//! Operators: arithmetic with PowerShell's widening (Int32, then Int64, then Double),
//! string and array arithmetic, comparisons (the right operand converted to the left's
//! type, arrays on the left filtering), wildcards, regular expressions (`-match`,
//! `-replace`, `-split` through the `regex` crate), `-join`, `-f`, `-is`/`-as`, ranges and
//! indexing.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::ast::{BinaryOp, Case, CompareOp, Expr, ExprKind, Span, UnaryOp};
use super::convert::{Num, PsType, convert, resolve_type, to_num};
use super::error::ErrorCategory;
use super::format;
use super::interp::{Flow, Interp, R};
use super::value::{Hashtable, Value};

fn not_found_op(it: &Interp<'_>, l: &Value, op: &str, span: Span) -> Flow {
    it.runtime_error(
        format!(
            "Method invocation failed because [{}] doesn't contain a method named '{op}'.",
            l.type_name()
        ),
        ErrorCategory::InvalidOperation,
        "MethodNotFound",
        span,
    )
}

fn convert_error(it: &Interp<'_>, message: String, span: Span) -> Flow {
    it.runtime_error(
        message,
        ErrorCategory::InvalidArgument,
        "InvalidCastFromStringToInteger",
        span,
    )
}

fn num(it: &Interp<'_>, v: &Value, span: Span) -> R<Num> {
    to_num(v).map_err(|e| convert_error(it, e.message, span))
}

fn divide_by_zero(it: &Interp<'_>, span: Span) -> Flow {
    it.runtime_error(
        "Attempted to divide by zero.",
        ErrorCategory::NotSpecified,
        "RuntimeException",
        span,
    )
}

/// The smallest of Int32, Int64 and Double that holds an integer result.
fn int_result(v: i128) -> Value {
    if let Ok(i) = i32::try_from(v) {
        Value::Int(i)
    } else if let Ok(l) = i64::try_from(v) {
        Value::Long(l)
    } else {
        Value::Double(v as f64)
    }
}

fn long_result(v: i128) -> Value {
    match i64::try_from(v) {
        Ok(l) => Value::Long(l),
        Err(_) => Value::Double(v as f64),
    }
}

fn arith(it: &Interp<'_>, op: BinaryOp, a: Num, b: Num, span: Span) -> R<Value> {
    let ints = |n: Num| match n {
        Num::Int(i) => Some((i128::from(i), false)),
        Num::Long(l) => Some((i128::from(l), true)),
        Num::Double(_) => None,
    };
    if let (Some((x, xl)), Some((y, yl))) = (ints(a), ints(b)) {
        let wide = xl || yl;
        let make = |v: i128| if wide { long_result(v) } else { int_result(v) };
        return match op {
            BinaryOp::Add => Ok(make(x + y)),
            BinaryOp::Sub => Ok(make(x - y)),
            BinaryOp::Mul => Ok(x
                .checked_mul(y)
                .map_or(Value::Double(x as f64 * y as f64), make)),
            BinaryOp::Div => {
                if y == 0 {
                    return Err(divide_by_zero(it, span));
                }
                if x % y == 0 {
                    Ok(make(x / y))
                } else {
                    Ok(Value::Double(x as f64 / y as f64))
                }
            }
            BinaryOp::Rem => {
                if y == 0 {
                    return Err(divide_by_zero(it, span));
                }
                Ok(make(x % y))
            }
            _ => Ok(Value::Null),
        };
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    Ok(Value::Double(match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => {
            if y == 0.0 {
                return Err(divide_by_zero(it, span));
            }
            x / y
        }
        BinaryOp::Rem => {
            if y == 0.0 {
                return Err(divide_by_zero(it, span));
            }
            x % y
        }
        _ => 0.0,
    }))
}

fn is_numeric(v: &Value) -> bool {
    matches!(
        v,
        Value::Int(_) | Value::Long(_) | Value::Double(_) | Value::Bool(_) | Value::Char(_)
    )
}

/// Applies a binary operator (not `-and`/`-or`, which short-circuit in the evaluator).
pub(crate) fn binary(
    it: &mut Interp<'_>,
    op: BinaryOp,
    l: Value,
    r: Value,
    span: Span,
) -> R<Value> {
    match op {
        BinaryOp::Add => add(it, l, r, span),
        BinaryOp::Sub | BinaryOp::Div | BinaryOp::Rem => match (&l, &r) {
            (Value::DateTime(a), Value::DateTime(b)) if op == BinaryOp::Sub => {
                Ok(Value::TimeSpan(a - b))
            }
            (Value::DateTime(a), Value::TimeSpan(b)) if op == BinaryOp::Sub => {
                Ok(Value::DateTime(a - b))
            }
            (Value::TimeSpan(a), Value::TimeSpan(b)) if op == BinaryOp::Sub => {
                Ok(Value::TimeSpan(a - b))
            }
            _ if is_numeric(&l) || matches!(l, Value::Null | Value::String(_)) => {
                let a = num(it, &l, span)?;
                let b = num(it, &r, span)?;
                arith(it, op, a, b, span)
            }
            _ => Err(not_found_op(
                it,
                &l,
                match op {
                    BinaryOp::Sub => "op_Subtraction",
                    BinaryOp::Div => "op_Division",
                    _ => "op_Modulus",
                },
                span,
            )),
        },
        BinaryOp::Mul => multiply(it, l, r, span),
        BinaryOp::Format => {
            let args = match r {
                Value::Array(a) => a.as_ref().clone(),
                other => vec![other],
            };
            let text = format::composite(&l.to_text(), &args).map_err(|m| {
                it.runtime_error(
                    format!("Error formatting a string: {m}."),
                    ErrorCategory::InvalidOperation,
                    "FormatError",
                    span,
                )
            })?;
            it.check_string(text.len())?;
            Ok(Value::from(text))
        }
        BinaryOp::Range => {
            let a = int_of(it, &l, span)?;
            let b = int_of(it, &r, span)?;
            let len = (i64::from(a) - i64::from(b)).unsigned_abs() + 1;
            it.check_len(usize::try_from(len).unwrap_or(usize::MAX))?;
            let items: Vec<Value> = if a <= b {
                (a..=b).map(Value::Int).collect()
            } else {
                (b..=a).rev().map(Value::Int).collect()
            };
            Ok(Value::from(items))
        }
        BinaryOp::Compare(cop, case) => compare_op(it, cop, case, l, r, span),
        BinaryOp::Is | BinaryOp::IsNot => {
            let result = is_type(&l, &r);
            Ok(Value::Bool(if op == BinaryOp::Is {
                result
            } else {
                !result
            }))
        }
        BinaryOp::As => {
            let name = match &r {
                Value::Type(t) => t.0.to_string(),
                other => other.to_text(),
            };
            Ok(match resolve_type(&name) {
                Some(ty) if ty.is_instantiable() => convert(&l, &ty).unwrap_or(Value::Null),
                _ => Value::Null,
            })
        }
        BinaryOp::Join => {
            let sep = r.to_text();
            let items = enumerate_ref(&l);
            join(it, &items, &sep)
        }
        BinaryOp::Split(case) => split(it, l, r, case, span),
        BinaryOp::Replace(case) => replace(it, l, r, case, span),
        BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor => {
            let a = num(it, &l, span)?;
            let b = num(it, &r, span)?;
            let (x, y) = (bits(a), bits(b));
            let v = match op {
                BinaryOp::BitAnd => x & y,
                BinaryOp::BitOr => x | y,
                _ => x ^ y,
            };
            Ok(if matches!((a, b), (Num::Int(_), Num::Int(_))) {
                Value::Int(v as i32)
            } else {
                Value::Long(v)
            })
        }
        BinaryOp::Xor => Ok(Value::Bool(l.is_true() ^ r.is_true())),
        BinaryOp::And => Ok(Value::Bool(l.is_true() && r.is_true())),
        BinaryOp::Or => Ok(Value::Bool(l.is_true() || r.is_true())),
    }
}

fn bits(n: Num) -> i64 {
    match n {
        Num::Int(i) => i64::from(i),
        Num::Long(l) => l,
        Num::Double(d) => d.round_ties_even() as i64,
    }
}

fn int_of(it: &Interp<'_>, v: &Value, span: Span) -> R<i32> {
    match convert(v, &PsType::Int) {
        Ok(Value::Int(i)) => Ok(i),
        Ok(_) => Ok(0),
        Err(e) => Err(convert_error(it, e.message, span)),
    }
}

fn enumerate_ref(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.as_ref().clone(),
        Value::Bytes(_) => v.as_array().unwrap_or_default(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn join(it: &Interp<'_>, items: &[Value], sep: &str) -> R<Value> {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&item.to_text());
        it.check_string(out.len())?;
    }
    Ok(Value::from(out))
}

fn add(it: &mut Interp<'_>, l: Value, r: Value, span: Span) -> R<Value> {
    match l {
        Value::Null => Ok(match r {
            Value::Array(_) | Value::String(_) => r,
            Value::Null => Value::Null,
            other if is_numeric(&other) => to_num(&other).map(Num::value).unwrap_or(other),
            other => other,
        }),
        Value::Array(a) => {
            let mut items = Arc::try_unwrap(a).unwrap_or_else(|a| a.as_ref().clone());
            match r {
                Value::Array(b) => {
                    it.check_len(items.len() + b.len())?;
                    items.extend(b.iter().cloned());
                }
                other => {
                    it.check_len(items.len() + 1)?;
                    items.push(other);
                }
            }
            Ok(Value::from(items))
        }
        Value::Bytes(_) => {
            let items = l.as_array().unwrap_or_default();
            add(it, Value::from(items), r, span)
        }
        Value::Hashtable(h) => match r {
            Value::Hashtable(other) => {
                let merged = Hashtable::from_entries(h.entries());
                for (k, v) in other.entries() {
                    if merged.add(k.clone(), v).is_err() {
                        let key = k.to_text();
                        return Err(it.runtime_error(
                            format!(
                                "Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'"
                            ),
                            ErrorCategory::InvalidOperation,
                            "System.ArgumentException",
                            span,
                        ));
                    }
                }
                Ok(Value::Hashtable(merged))
            }
            _ => Err(it.runtime_error(
                "A hash table can only be added to another hash table.",
                ErrorCategory::InvalidOperation,
                "AddHashTableToNonHashTable",
                span,
            )),
        },
        Value::String(s) => {
            let rt = r.to_text();
            it.check_string(s.len() + rt.len())?;
            let mut out = String::with_capacity(s.len() + rt.len());
            out.push_str(&s);
            out.push_str(&rt);
            Ok(Value::from(out))
        }
        Value::Char(c) => {
            let mut out = c.to_string();
            out.push_str(&r.to_text());
            Ok(Value::from(out))
        }
        Value::DateTime(t) => match r {
            Value::TimeSpan(d) => Ok(Value::DateTime(t + d)),
            other => Err(not_found_op(it, &other, "op_Addition", span)),
        },
        Value::TimeSpan(t) => match r {
            Value::TimeSpan(d) => Ok(Value::TimeSpan(t + d)),
            Value::DateTime(d) => Ok(Value::DateTime(t + d)),
            other => Err(not_found_op(it, &other, "op_Addition", span)),
        },
        ref v if is_numeric(v) => {
            let a = num(it, &l, span)?;
            let b = num(it, &r, span)?;
            arith(it, BinaryOp::Add, a, b, span)
        }
        other => Err(not_found_op(it, &other, "op_Addition", span)),
    }
}

fn multiply(it: &mut Interp<'_>, l: Value, r: Value, span: Span) -> R<Value> {
    match l {
        Value::String(s) => {
            let n = match convert(&r, &PsType::Long) {
                Ok(Value::Long(n)) => n,
                Ok(_) => 0,
                Err(_) if to_num(&r).is_ok() => return Err(it.out_of_memory()),
                Err(e) => return Err(convert_error(it, e.message, span)),
            };
            let n = usize::try_from(n).unwrap_or(0);
            match s.len().checked_mul(n) {
                Some(total) if total <= it.limits.max_string_bytes => Ok(Value::from(s.repeat(n))),
                _ => Err(it.out_of_memory()),
            }
        }
        Value::Array(a) => {
            let n = match convert(&r, &PsType::Long) {
                Ok(Value::Long(n)) => usize::try_from(n).unwrap_or(0),
                Ok(_) => 0,
                Err(_) if to_num(&r).is_ok() => return Err(it.out_of_memory()),
                Err(e) => return Err(convert_error(it, e.message, span)),
            };
            match a.len().checked_mul(n) {
                Some(total) if total <= it.limits.max_collection_len => {
                    let mut out = Vec::with_capacity(total);
                    for _ in 0..n {
                        out.extend(a.iter().cloned());
                    }
                    Ok(Value::from(out))
                }
                _ => Err(it.out_of_memory()),
            }
        }
        ref v if is_numeric(v) || v.is_null() => {
            let a = num(it, &l, span)?;
            let b = num(it, &r, span)?;
            arith(it, BinaryOp::Mul, a, b, span)
        }
        other => Err(not_found_op(it, &other, "op_Multiply", span)),
    }
}

/// Whether `v` is an instance of the type `t` (a type value or a type name).
fn is_type(v: &Value, t: &Value) -> bool {
    let name = match t {
        Value::Type(t) => t.0.to_string(),
        other => {
            let text = other.to_text();
            resolve_type(&text).map_or(text, |ty| ty.full_name())
        }
    };
    let want = name.trim_start_matches("System.").to_ascii_lowercase();
    if want == "management.automation.psobject" {
        return !v.is_null();
    }
    if want == "object[]" && v.is_collection() {
        return matches!(v, Value::Array(_));
    }
    v.type_names()
        .iter()
        .any(|n| n.trim_start_matches("System.").eq_ignore_ascii_case(&want))
}

fn lower_if(case: Case, s: &str) -> String {
    match case {
        Case::Insensitive => s.to_lowercase(),
        Case::Sensitive => s.to_owned(),
    }
}

/// PowerShell's equality with the right operand converted to the left's type.
pub(crate) fn equals(l: &Value, r: &Value, case: Case) -> bool {
    match (l, r) {
        (Value::Null, _) => r.is_null(),
        (_, Value::Null) => false,
        (Value::String(a), _) => lower_if(case, a) == lower_if(case, &r.to_text()),
        (Value::Char(a), Value::Char(b)) => {
            lower_if(case, &a.to_string()) == lower_if(case, &b.to_string())
        }
        (Value::Char(a), Value::String(b)) => lower_if(case, &a.to_string()) == lower_if(case, b),
        (Value::Bool(a), _) => *a == r.is_true(),
        (Value::Int(_) | Value::Long(_) | Value::Double(_) | Value::Char(_), _) => {
            match (to_num(l), to_num(r)) {
                (Ok(a), Ok(b)) => num_cmp(a, b) == Some(Ordering::Equal),
                _ => false,
            }
        }
        (Value::TimeSpan(a), Value::TimeSpan(b)) | (Value::DateTime(a), Value::DateTime(b)) => {
            a == b
        }
        (Value::Hashtable(a), Value::Hashtable(b)) => a.same(b),
        (Value::Object(a), Value::Object(b)) => a.same(b),
        (Value::Object(a), _) if a.display().is_some() => {
            // Host values with a string form (identities, sizes) compare as that string.
            lower_if(case, a.display().unwrap_or_default()) == lower_if(case, &r.to_text())
        }
        (Value::Array(a), Value::Array(b)) => Arc::ptr_eq(a, b),
        (Value::Error(a), Value::Error(b)) => Arc::ptr_eq(a, b),
        (Value::ScriptBlock(a), Value::ScriptBlock(b)) => Arc::ptr_eq(&a.0, &b.0),
        (Value::Type(a), _) => a.0.eq_ignore_ascii_case(&r.to_text()),
        (Value::Builtin(a), Value::Builtin(b)) => a == b,
        _ => false,
    }
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Double(_), _) | (_, Num::Double(_)) => a.as_f64().partial_cmp(&b.as_f64()),
        _ => {
            let x = match a {
                Num::Int(i) => i64::from(i),
                Num::Long(l) => l,
                Num::Double(_) => 0,
            };
            let y = match b {
                Num::Int(i) => i64::from(i),
                Num::Long(l) => l,
                Num::Double(_) => 0,
            };
            Some(x.cmp(&y))
        }
    }
}

/// PowerShell's ordering (`-lt` and `Sort-Object`); `None` means not comparable.
pub(crate) fn ordering(l: &Value, r: &Value, case: Case) -> Result<Ordering, String> {
    match (l, r) {
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        (Value::Null, _) => Ok(Ordering::Less),
        (_, Value::Null) => Ok(Ordering::Greater),
        (Value::String(a), _) => {
            let b = r.to_text();
            Ok(match case {
                Case::Insensitive => a.to_lowercase().cmp(&b.to_lowercase()),
                Case::Sensitive => a.as_ref().cmp(b.as_str()),
            })
        }
        (
            Value::Int(_) | Value::Long(_) | Value::Double(_) | Value::Char(_) | Value::Bool(_),
            _,
        ) => {
            let a = to_num(l).map_err(|e| e.message)?;
            match to_num(r) {
                Ok(b) => Ok(num_cmp(a, b).unwrap_or(Ordering::Equal)),
                Err(e) => Err(format!(
                    "Could not compare \"{}\" to \"{}\". Error: \"{}\"",
                    l.to_text(),
                    r.to_text(),
                    e.message
                )),
            }
        }
        (Value::TimeSpan(a), Value::TimeSpan(b)) | (Value::DateTime(a), Value::DateTime(b)) => {
            Ok(a.cmp(b))
        }
        (Value::Object(a), _) if a.display().is_some() => Ok(a
            .display()
            .unwrap_or_default()
            .to_lowercase()
            .cmp(&r.to_text().to_lowercase())),
        _ => Err(format!(
            "Cannot compare \"{}\" because it is not IComparable.",
            l.to_text()
        )),
    }
}

fn compare_op(
    it: &mut Interp<'_>,
    op: CompareOp,
    case: Case,
    l: Value,
    r: Value,
    span: Span,
) -> R<Value> {
    match op {
        CompareOp::Contains | CompareOp::NotContains => {
            let found = enumerate_ref(&l).iter().any(|item| equals(item, &r, case));
            Ok(Value::Bool(found == (op == CompareOp::Contains)))
        }
        _ => {
            if let Value::Array(items) = &l {
                let mut out = Vec::new();
                for item in items.iter() {
                    if scalar_compare(it, op, case, item, &r, span, false)? {
                        out.push(item.clone());
                    }
                }
                return Ok(Value::from(out));
            }
            Ok(Value::Bool(scalar_compare(
                it, op, case, &l, &r, span, true,
            )?))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn scalar_compare(
    it: &mut Interp<'_>,
    op: CompareOp,
    case: Case,
    l: &Value,
    r: &Value,
    span: Span,
    set_matches: bool,
) -> R<bool> {
    let ord = |it: &Interp<'_>| {
        ordering(l, r, case).map_err(|m| {
            it.runtime_error(
                m,
                ErrorCategory::InvalidOperation,
                "ComparisonFailure",
                span,
            )
        })
    };
    Ok(match op {
        CompareOp::Eq => equals(l, r, case),
        CompareOp::Ne => !equals(l, r, case),
        CompareOp::Gt => ord(it)? == Ordering::Greater,
        CompareOp::Ge => ord(it)? != Ordering::Less,
        CompareOp::Lt => ord(it)? == Ordering::Less,
        CompareOp::Le => ord(it)? != Ordering::Greater,
        CompareOp::Like | CompareOp::NotLike => {
            let re = wildcard_regex(&r.to_text(), case).map_err(|m| {
                it.runtime_error(m, ErrorCategory::InvalidArgument, "RuntimeException", span)
            })?;
            re.is_match(&l.to_text()) == (op == CompareOp::Like)
        }
        CompareOp::Match | CompareOp::NotMatch => {
            let re = regex_of(it, &r.to_text(), case, span)?;
            let text = l.to_text();
            let m = re.captures(&text);
            if set_matches && let Some(caps) = &m {
                let table = Hashtable::new();
                for (i, name) in re.capture_names().enumerate() {
                    if let Some(g) = caps.get(i) {
                        let key = match name {
                            Some(n) => Value::from(n),
                            None => Value::Int(i32::try_from(i).unwrap_or(0)),
                        };
                        table.insert(key, Value::from(g.as_str()));
                    }
                }
                it.set_local("matches", Value::Hashtable(table));
            }
            m.is_some() == (op == CompareOp::Match)
        }
        _ => false,
    })
}

fn regex_of(it: &Interp<'_>, pattern: &str, case: Case, span: Span) -> R<Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(case == Case::Insensitive)
        .size_limit(1 << 22)
        .build()
        .map_err(|_| {
            it.runtime_error(
                format!("Invalid regular expression pattern: {pattern}."),
                ErrorCategory::InvalidOperation,
                "InvalidRegularExpression",
                span,
            )
        })
}

/// A PowerShell wildcard (`*`, `?`, `[a-z]`, backtick escapes) as an anchored regex.
pub(crate) fn wildcard_regex(pattern: &str, case: Case) -> Result<Regex, String> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '`' => match chars.next() {
                Some(n) => re.push_str(&regex::escape(&n.to_string())),
                None => re.push_str(&regex::escape("`")),
            },
            '[' => {
                let mut class = String::from("[");
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == ']' {
                        closed = true;
                        break;
                    }
                    if matches!(n, '\\' | '^' | '[' | '&' | '~') {
                        class.push('\\');
                    }
                    class.push(n);
                }
                if !closed || class.len() == 1 {
                    return Err(format!(
                        "The specified wildcard pattern is not valid: {pattern}"
                    ));
                }
                class.push(']');
                re.push_str(&class);
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    RegexBuilder::new(&re)
        .case_insensitive(case == Case::Insensitive)
        .dot_matches_new_line(true)
        .build()
        .map_err(|_| format!("The specified wildcard pattern is not valid: {pattern}"))
}

fn split(it: &mut Interp<'_>, l: Value, r: Value, case: Case, span: Span) -> R<Value> {
    let (pattern, max, options) = match &r {
        Value::Array(a) => (
            a.first().map(Value::to_text).unwrap_or_default(),
            a.get(1)
                .map(|v| int_of(it, v, span))
                .transpose()?
                .unwrap_or(0),
            a.get(2).map(Value::to_text).unwrap_or_default(),
        ),
        other => (other.to_text(), 0, String::new()),
    };
    let simple = options.to_ascii_lowercase().contains("simplematch");
    let pattern = if simple {
        regex::escape(&pattern)
    } else {
        pattern
    };
    let re = regex_of(it, &pattern, case, span)?;
    let mut out = Vec::new();
    for item in enumerate_ref(&l) {
        let text = item.to_text();
        if max > 0 {
            out.extend(
                re.splitn(&text, usize::try_from(max).unwrap_or(1))
                    .map(Value::from),
            );
        } else {
            out.extend(re.split(&text).map(Value::from));
        }
        it.check_len(out.len())?;
    }
    Ok(Value::from(out))
}

fn replace(it: &mut Interp<'_>, l: Value, r: Value, case: Case, span: Span) -> R<Value> {
    let (pattern, replacement) = match &r {
        Value::Array(a) => (
            a.first().map(Value::to_text).unwrap_or_default(),
            a.get(1).map(Value::to_text).unwrap_or_default(),
        ),
        other => (other.to_text(), String::new()),
    };
    let re = regex_of(it, &pattern, case, span)?;
    let one = |it: &Interp<'_>, text: &str| -> R<Value> {
        let mut out = String::new();
        let mut last = 0;
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(0) else { continue };
            out.push_str(text.get(last..m.start()).unwrap_or(""));
            expand_replacement(&re, &caps, &replacement, &mut out);
            last = m.end();
            it.check_string(out.len())?;
        }
        out.push_str(text.get(last..).unwrap_or(""));
        Ok(Value::from(out))
    };
    match &l {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                out.push(one(it, &item.to_text())?);
            }
            Ok(Value::from(out))
        }
        other => one(it, &other.to_text()),
    }
}

/// .NET replacement syntax: `$0`..`$99`, `${name}`, `$&`, `$$`.
fn expand_replacement(re: &Regex, caps: &regex::Captures<'_>, replacement: &str, out: &mut String) {
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('&') => {
                out.push_str(caps.get(0).map_or("", |m| m.as_str()));
                i += 2;
            }
            Some('{') => {
                let end = chars[i + 2..].iter().position(|&c| c == '}');
                match end {
                    Some(e) => {
                        let name: String = chars[i + 2..i + 2 + e].iter().collect();
                        let group = match name.parse::<usize>() {
                            Ok(n) => caps.get(n),
                            Err(_) => caps.name(&name),
                        };
                        if re.capture_names().flatten().any(|n| n == name)
                            || name.parse::<usize>().is_ok_and(|n| n < re.captures_len())
                        {
                            out.push_str(group.map_or("", |m| m.as_str()));
                        } else {
                            out.extend(&chars[i..i + 3 + e]);
                        }
                        i += 3 + e;
                    }
                    None => {
                        out.push('$');
                        i += 1;
                    }
                }
            }
            Some(d) if d.is_ascii_digit() => {
                // The longest group number that exists, as .NET reads it.
                let mut j = i + 1;
                let mut best: Option<(usize, usize)> = None;
                let mut n = 0usize;
                while let Some(d) = chars.get(j).and_then(|c| c.to_digit(10)) {
                    n = n * 10 + d as usize;
                    j += 1;
                    if n < re.captures_len() {
                        best = Some((n, j));
                    }
                    if n > 1000 {
                        break;
                    }
                }
                match best {
                    Some((g, end)) => {
                        out.push_str(caps.get(g).map_or("", |m| m.as_str()));
                        i = end;
                    }
                    None => {
                        out.push('$');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
}

/// An index as an integer.
pub(crate) fn index_number(v: &Value) -> Option<i64> {
    match convert(v, &PsType::Long) {
        Ok(Value::Long(i)) => Some(i),
        _ => None,
    }
}

/// `target[index]`.
pub(crate) fn index(it: &mut Interp<'_>, target: &Value, idx: &Value, span: Span) -> R<Value> {
    if let Value::Array(indices) = idx
        && !matches!(target, Value::Hashtable(_))
    {
        let mut out = Vec::new();
        for i in indices.iter() {
            let v = index(it, target, i, span)?;
            if !v.is_null() {
                out.push(v);
            }
        }
        return Ok(Value::from(out));
    }
    let pick = |len: usize, i: Option<i64>| -> Option<usize> {
        let i = i?;
        let i = if i < 0 { i + len as i64 } else { i };
        usize::try_from(i).ok().filter(|i| *i < len)
    };
    match target {
        Value::Null => Err(it.runtime_error(
            "Cannot index into a null array.",
            ErrorCategory::InvalidOperation,
            "NullArray",
            span,
        )),
        Value::Array(a) => Ok(pick(a.len(), index_number(idx))
            .and_then(|i| a.get(i).cloned())
            .unwrap_or(Value::Null)),
        Value::Bytes(b) => Ok(pick(b.len(), index_number(idx))
            .and_then(|i| b.get(i).map(|x| Value::Int(i32::from(*x))))
            .unwrap_or(Value::Null)),
        Value::String(s) => {
            let chars: Vec<char> = s.chars().collect();
            Ok(pick(chars.len(), index_number(idx))
                .and_then(|i| chars.get(i).copied().map(Value::Char))
                .unwrap_or(Value::Null))
        }
        Value::Hashtable(h) => match idx {
            Value::Array(keys) => Ok(Value::from(
                keys.iter().filter_map(|k| h.get(k)).collect::<Vec<_>>(),
            )),
            key => Ok(h.get(key).unwrap_or(Value::Null)),
        },
        other => Err(it.runtime_error(
            format!(
                "Unable to index into an object of type {}.",
                other.type_name()
            ),
            ErrorCategory::InvalidOperation,
            "CannotIndex",
            span,
        )),
    }
}

/// Applies a unary operator.
pub(crate) fn unary(it: &mut Interp<'_>, op: UnaryOp, operand: &Expr, span: Span) -> R<Value> {
    match op {
        UnaryOp::PreIncrement
        | UnaryOp::PreDecrement
        | UnaryOp::PostIncrement
        | UnaryOp::PostDecrement => {
            if !matches!(
                operand.kind,
                ExprKind::Variable(_) | ExprKind::Index { .. } | ExprKind::Member { .. }
            ) {
                return Err(it.runtime_error(
                    "The '++' and '--' operators work only on variables, properties and array elements.",
                    ErrorCategory::InvalidOperation,
                    "OperatorRequiresVariableOrProperty",
                    span,
                ));
            }
            let delta = if matches!(op, UnaryOp::PreIncrement | UnaryOp::PostIncrement) {
                1
            } else {
                -1
            };
            let (old, new) = it.increment(operand, delta, span)?;
            Ok(
                if matches!(op, UnaryOp::PreIncrement | UnaryOp::PreDecrement) {
                    new
                } else {
                    old
                },
            )
        }
        _ => {
            let v = it.eval(operand)?;
            match op {
                UnaryOp::Not => Ok(Value::Bool(!v.is_true())),
                UnaryOp::Negate => {
                    let n = num(it, &v, span)?;
                    Ok(match n {
                        Num::Int(i) => i
                            .checked_neg()
                            .map_or(Value::Long(-i64::from(i)), Value::Int),
                        Num::Long(l) => l
                            .checked_neg()
                            .map_or(Value::Double(-(l as f64)), Value::Long),
                        Num::Double(d) => Value::Double(-d),
                    })
                }
                UnaryOp::Plus => Ok(num(it, &v, span)?.value()),
                UnaryOp::BitNot => Ok(match num(it, &v, span)? {
                    Num::Int(i) => Value::Int(!i),
                    n => Value::Long(!bits(n)),
                }),
                UnaryOp::Split => {
                    let mut out = Vec::new();
                    for item in enumerate_ref(&v) {
                        out.extend(item.to_text().split_whitespace().map(Value::from));
                    }
                    Ok(Value::from(out))
                }
                UnaryOp::Join => join(it, &enumerate_ref(&v), ""),
                _ => Ok(Value::Null),
            }
        }
    }
}
