//! PowerShell literals: the one place where a value from a manifest becomes PowerShell source.
//!
//! Every value that reaches a script comes from a pull request, so it is rendered by
//! [`literal`] and never spliced into a script by string concatenation. The rendered text is
//! a self-contained expression that reads back as exactly the value, whatever it contains,
//! and that nothing inside it can end early: it is valid both in expression mode
//! (`$x = <literal>`) and in argument mode (`Set-Thing -Name <literal>`), on PowerShell 2.0
//! and later.
//!
//! # Rendering rules
//!
//! | value | rendered as |
//! |---|---|
//! | `Null` | `$null` |
//! | `Bool` | `$true` / `$false` |
//! | `Int` | decimal, e.g. `42`, `-7`; `i64::MIN` as `([long]::MinValue)` |
//! | `Str` | single-quoted, see below |
//! | `Array` | `@()`, `@(,x)` for one element, `@(a, b, ...)` otherwise |
//! | `Hashtable` | `@{}` or `@{'key' = value; 'key2' = value2}` |
//!
//! Strings are single-quoted ("verbatim") strings. Inside them PowerShell expands nothing:
//! `$`, backtick, `"`, `$(...)`, newlines and NUL are all literal. The only special
//! characters are the single quotes, and PowerShell's tokenizer (`CharExtensions.IsSingleQuote`
//! in `System.Management.Automation/engine/parser/CharTraits.cs`) counts five of them: `'`,
//! U+2018, U+2019, U+201A and U+201B. Its string scanner (`ScanStringLiteral` in
//! `tokenizer.cs`) ends the string at a quote that is not followed by another quote, and for a
//! pair appends the second one. So each of the five is written twice, as itself, and reads
//! back as one.
//!
//! Integers: PowerShell reads `9223372036854775808` (the magnitude of `i64::MIN`) as a
//! double before negating it, so `i64::MIN` is written as the static property instead. A
//! literal that fits an `Int32` is typed `Int32` by PowerShell, a larger one `Int64`;
//! parameter binding converts either to the parameter's type.
//!
//! Arrays: inside `@(...)` the statement's output is enumerated once, so `@(x)` would flatten
//! an `x` that is itself an array. A single element is therefore written with the unary comma,
//! `@(,x)`, which wraps it in a one-element array that the enumeration then unwraps. With two
//! or more elements `a, b` already builds an array whose elements are kept as they are.
//!
//! A literal must not be followed directly by a single-quote character in the surrounding
//! script: `'a'` then `'` reads as the start of `'a''...` (PowerShell's syntax, not an
//! escaping problem). Templates put whitespace, `;`, `,`, `)` or `}` after a literal.
//!
//! Hashtables keep the order given. PowerShell refuses duplicate keys in a hash literal
//! (compared case-insensitively) with a parse error; as the whole script is parsed before any
//! of it runs, such a script fails without doing anything, but callers should not pass
//! duplicates.

use std::fmt::Write as _;

/// A value that can be written into a PowerShell script.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `$null`.
    Null,
    /// `$true` or `$false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// Any string; nothing in it is interpreted.
    Str(String),
    /// An array; a one-element array stays an array and nested arrays stay nested.
    Array(Vec<Value>),
    /// A hashtable literal, keys in the given order.
    Hashtable(Vec<(String, Value)>),
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i64::from(i))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// The characters PowerShell's tokenizer treats as a single quote (`IsSingleQuote`).
pub const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// Whether PowerShell treats `c` as a single quote.
pub fn is_single_quote(c: char) -> bool {
    SINGLE_QUOTES.contains(&c)
}

/// Renders `v` as a PowerShell literal that reads back as exactly `v`.
pub fn literal(v: &Value) -> String {
    let mut out = String::new();
    write_literal(&mut out, v);
    out
}

/// Renders `s` as a single-quoted PowerShell string; the same as
/// `literal(&Value::Str(s.into()))`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_quoted(&mut out, s);
    out
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        if is_single_quote(c) {
            // Doubled as itself: the tokenizer keeps the second of a pair, so the value keeps
            // the exact quote character the manifest had.
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
}

// Recursion depth equals the nesting of the value the caller built, so it is bounded by the
// caller's own data structure.
fn write_literal(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("$null"),
        Value::Bool(true) => out.push_str("$true"),
        Value::Bool(false) => out.push_str("$false"),
        Value::Int(i64::MIN) => out.push_str("([long]::MinValue)"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Str(s) => write_quoted(out, s),
        Value::Array(items) => {
            out.push_str("@(");
            if let [only] = items.as_slice() {
                out.push(',');
                write_literal(out, only);
            } else {
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    write_literal(out, item);
                }
            }
            out.push(')');
        }
        Value::Hashtable(entries) => {
            out.push_str("@{");
            for (n, (key, value)) in entries.iter().enumerate() {
                if n > 0 {
                    out.push_str("; ");
                }
                write_quoted(out, key);
                out.push_str(" = ");
                write_literal(out, value);
            }
            out.push('}');
        }
    }
}
