//! Literals: every edge case by hand, then properties against a reference tokenizer that
//! scans single-quoted strings by PowerShell's rules (`IsSingleQuote`, `ScanStringLiteral`).

use exctl_pwsh::literal::{SINGLE_QUOTES, is_single_quote};
use exctl_pwsh::{Value, literal, quote};
use proptest::prelude::*;

/// Scans a single-quoted literal at the start of `src` as PowerShell's tokenizer does: a
/// quote followed by another quote stands for the second one, a lone quote ends the string,
/// everything else (NUL included) is literal. Returns the value and the number of bytes the
/// literal took, or `None` if `src` does not start with a complete literal.
fn scan_single_quoted(src: &str) -> Option<(String, usize)> {
    let mut chars = src.char_indices().peekable();
    let (_, open) = chars.next()?;
    if !is_reference_quote(open) {
        return None;
    }
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        if is_reference_quote(c) {
            match chars.peek() {
                Some(&(_, next)) if is_reference_quote(next) => {
                    value.push(next);
                    chars.next();
                }
                _ => return Some((value, i + c.len_utf8())),
            }
        } else {
            value.push(c);
        }
    }
    None // end of input before the closing quote
}

// Spelled out again rather than reusing the crate's list, so a mistake there shows up here.
fn is_reference_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// A reference reader for everything `literal` emits, with PowerShell's semantics for
/// `@(...)`: a single element that is itself an array is flattened unless it is written
/// with the unary comma.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn parse(src: &'a str) -> Option<Value> {
        let mut p = Parser { src, pos: 0 };
        let v = p.value()?;
        (p.pos == src.len()).then_some(v)
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while self.eat(" ") {}
    }

    fn string(&mut self) -> Option<String> {
        let (s, len) = scan_single_quoted(self.rest())?;
        self.pos += len;
        Some(s)
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        if self.eat("$null") {
            return Some(Value::Null);
        }
        if self.eat("$true") {
            return Some(Value::Bool(true));
        }
        if self.eat("$false") {
            return Some(Value::Bool(false));
        }
        if self.eat("([long]::MinValue)") {
            return Some(Value::Int(i64::MIN));
        }
        if self.rest().starts_with(is_reference_quote) {
            return self.string().map(Value::Str);
        }
        if self.eat("@(") {
            self.ws();
            if self.eat(")") {
                return Some(Value::Array(vec![]));
            }
            if self.eat(",") {
                let v = self.value()?;
                self.ws();
                return self.eat(")").then_some(Value::Array(vec![v]));
            }
            let mut items = vec![self.value()?];
            self.ws();
            while self.eat(",") {
                items.push(self.value()?);
                self.ws();
            }
            if !self.eat(")") {
                return None;
            }
            if items.len() == 1 {
                // `@(x)`: x's output is enumerated, so an array is flattened.
                return match items.pop()? {
                    Value::Array(inner) => Some(Value::Array(inner)),
                    scalar => Some(Value::Array(vec![scalar])),
                };
            }
            return Some(Value::Array(items));
        }
        if self.eat("@{") {
            let mut entries = vec![];
            self.ws();
            if self.eat("}") {
                return Some(Value::Hashtable(entries));
            }
            loop {
                self.ws();
                let key = self.string()?;
                self.ws();
                if !self.eat("=") {
                    return None;
                }
                let v = self.value()?;
                entries.push((key, v));
                self.ws();
                if self.eat("}") {
                    return Some(Value::Hashtable(entries));
                }
                if !self.eat(";") {
                    return None;
                }
            }
        }
        let digits_start = self.pos;
        self.eat("-");
        let len = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        self.pos += len;
        self.src[digits_start..self.pos]
            .parse()
            .ok()
            .map(Value::Int)
    }
}

// ------------------------------------------------------------------------------------------
// Unit tests

#[test]
fn plain_strings_are_single_quoted() {
    assert_eq!(quote(""), "''");
    assert_eq!(quote("abc"), "'abc'");
    assert_eq!(literal(&Value::Str("abc".into())), "'abc'");
}

#[test]
fn every_single_quote_kind_is_doubled_as_itself() {
    assert_eq!(quote("it's"), "'it''s'");
    assert_eq!(
        quote("\u{2018}x\u{2019}"),
        "'\u{2018}\u{2018}x\u{2019}\u{2019}'"
    );
    assert_eq!(
        quote("\u{201A}\u{201B}"),
        "'\u{201A}\u{201A}\u{201B}\u{201B}'"
    );
    assert_eq!(quote("'"), "''''");
    assert_eq!(quote("''"), "''''''");
    for q in SINGLE_QUOTES {
        assert!(is_single_quote(q));
        let s = q.to_string();
        assert_eq!(
            scan_single_quoted(&quote(&s)),
            Some((s.clone(), quote(&s).len()))
        );
    }
}

#[test]
fn double_quotes_are_not_special() {
    // U+201C..U+201E are PowerShell's double quotes; inside single quotes they are literal.
    for s in ["\"", "\u{201C}", "\u{201D}", "\u{201E}", "\"\""] {
        assert_eq!(quote(s), format!("'{s}'"));
    }
}

#[test]
fn nothing_else_is_special_inside_single_quotes() {
    for s in [
        "$x",
        "$(Remove-Item C:\\)",
        "`n",
        "``",
        "a;b",
        "line1\nline2",
        "cr\r\nlf",
        "nul\0x",
        "#c",
        "<#",
        "@\"",
        "\u{2028}",
    ] {
        assert_eq!(quote(s), format!("'{s}'"), "{s:?}");
        let q = quote(s);
        assert_eq!(scan_single_quoted(&q), Some((s.to_owned(), q.len())));
    }
}

#[test]
fn backtick_before_quote_cannot_escape_it() {
    // In a single-quoted string a backtick is literal, so `'` is not an escape: the doubled
    // quote still reads back as one quote and the string goes on.
    let q = quote("`'; Remove-Item C:\\ #");
    assert_eq!(q, "'`''; Remove-Item C:\\ #'");
    assert_eq!(
        scan_single_quoted(&format!("{q}; rest")),
        Some(("`'; Remove-Item C:\\ #".to_owned(), q.len()))
    );
}

#[test]
fn a_quote_glued_after_a_literal_joins_it() {
    // PowerShell syntax, not an escaping bug: `'a'` followed at once by `'` reads as the
    // start of `'a''...`. Script templates put a space, `;`, `,` or `)` after a literal.
    let q = quote("a");
    assert_eq!(
        scan_single_quoted(&format!("{q}'b'")),
        Some(("a'b".to_owned(), 6))
    );
    assert_eq!(
        scan_single_quoted(&format!("{q} 'b'")),
        Some(("a".to_owned(), q.len()))
    );
}

#[test]
fn unicode_passes_through() {
    let s = "Zürich — 東京 😀 \u{FEFF}";
    assert_eq!(quote(s), format!("'{s}'"));
}

#[test]
fn null_and_booleans() {
    assert_eq!(literal(&Value::Null), "$null");
    assert_eq!(literal(&Value::Bool(true)), "$true");
    assert_eq!(literal(&Value::Bool(false)), "$false");
}

#[test]
fn integers_are_decimal() {
    assert_eq!(literal(&Value::Int(0)), "0");
    assert_eq!(literal(&Value::Int(42)), "42");
    assert_eq!(literal(&Value::Int(-7)), "-7");
    assert_eq!(literal(&Value::Int(i64::MAX)), "9223372036854775807");
    assert_eq!(literal(&Value::Int(i64::MIN + 1)), "-9223372036854775807");
}

#[test]
fn i64_min_is_not_written_as_a_number_powershell_would_read_as_double() {
    assert_eq!(literal(&Value::Int(i64::MIN)), "([long]::MinValue)");
    assert_eq!(
        Parser::parse("([long]::MinValue)"),
        Some(Value::Int(i64::MIN))
    );
}

#[test]
fn arrays() {
    assert_eq!(literal(&Value::Array(vec![])), "@()");
    assert_eq!(literal(&Value::Array(vec![Value::Int(1)])), "@(,1)");
    assert_eq!(
        literal(&Value::Array(vec![Value::Int(1), Value::Str("a".into())])),
        "@(1, 'a')"
    );
}

#[test]
fn one_element_array_holding_an_array_stays_nested() {
    let v = Value::Array(vec![Value::Array(vec![Value::Int(1), Value::Int(2)])]);
    assert_eq!(literal(&v), "@(,@(1, 2))");
    // Without the comma PowerShell would flatten it to @(1, 2).
    assert_eq!(
        Parser::parse("@(@(1, 2))"),
        Some(Value::Array(vec![Value::Int(1), Value::Int(2)]))
    );
    assert_eq!(Parser::parse(&literal(&v)), Some(v));
}

#[test]
fn hashtables() {
    assert_eq!(literal(&Value::Hashtable(vec![])), "@{}");
    let v = Value::Hashtable(vec![
        ("Name".into(), Value::Str("x".into())),
        ("it's".into(), Value::Array(vec![Value::Null])),
        (
            "n".into(),
            Value::Hashtable(vec![("b".into(), Value::Bool(true))]),
        ),
    ]);
    assert_eq!(
        literal(&v),
        "@{'Name' = 'x'; 'it''s' = @(,$null); 'n' = @{'b' = $true}}"
    );
    assert_eq!(Parser::parse(&literal(&v)), Some(v));
}

#[test]
fn conversions() {
    assert_eq!(Value::from("a"), Value::Str("a".into()));
    assert_eq!(Value::from(3_i32), Value::Int(3));
    assert_eq!(Value::from(Some(true)), Value::Bool(true));
    assert_eq!(Value::from(None::<i64>), Value::Null);
    assert_eq!(
        Value::from(vec!["a", "b"]),
        Value::Array(vec![Value::Str("a".into()), Value::Str("b".into())])
    );
}

// ------------------------------------------------------------------------------------------
// Properties

/// Strings biased toward everything that could break out of a literal.
fn nasty_string() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('\''),
        Just('\u{2018}'),
        Just('\u{2019}'),
        Just('\u{201A}'),
        Just('\u{201B}'),
        Just('"'),
        Just('\u{201C}'),
        Just('\u{201D}'),
        Just('\u{201E}'),
        Just('`'),
        Just('$'),
        Just('('),
        Just(')'),
        Just(';'),
        Just('#'),
        Just('@'),
        Just('\n'),
        Just('\r'),
        Just('\0'),
        Just(' '),
    ];
    let c = prop_oneof![4 => special, 1 => any::<char>(), 1 => proptest::char::range('a', 'z')];
    proptest::collection::vec(c, 0..48).prop_map(|v| v.into_iter().collect())
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), any::<i64>()].prop_map(Value::Int),
        nasty_string().prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((nasty_string(), inner), 0..4).prop_map(Value::Hashtable),
        ]
    })
}

proptest! {
    #[test]
    fn quoted_strings_read_back_exactly(s in nasty_string(), suffix in nasty_string()) {
        let q = quote(&s);
        // Whatever follows the literal in a script (except a quote glued to it, see
        // `a_quote_glued_after_a_literal_joins_it`), the tokenizer stops exactly at its end.
        prop_assume!(!suffix.starts_with(is_reference_quote));
        let script = format!("{q}{suffix}");
        prop_assert_eq!(scan_single_quoted(&script), Some((s.clone(), q.len())));
        prop_assert_eq!(literal(&Value::Str(s)), q);
    }

    #[test]
    fn arbitrary_strings_read_back_exactly(s in any::<String>()) {
        let q = quote(&s);
        prop_assert_eq!(scan_single_quoted(&format!("{q};x")), Some((s, q.len())));
    }

    #[test]
    fn values_read_back_exactly(v in any_value()) {
        prop_assert_eq!(Parser::parse(&literal(&v)), Some(v));
    }
}
