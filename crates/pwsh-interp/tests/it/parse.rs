//! Parser tests: every construct of the subset parses to the expected shape, malformed input
//! fails with PowerShell's message and position, unsupported syntax is refused, and nothing
//! panics.

use exctl_pwsh::runner::BOOTSTRAP;
use exctl_pwsh_interp::ast::*;
use exctl_pwsh_interp::{ParseErrorKind, parse};
use proptest::prelude::*;

fn ok(src: &str) -> Script {
    match parse(src) {
        Ok(s) => s,
        Err(e) => panic!("{src:?} should parse: {e}"),
    }
}

fn err(src: &str) -> exctl_pwsh_interp::ParseError {
    match parse(src) {
        Ok(s) => panic!("{src:?} should not parse: {:?}", s.block.end.statements),
        Err(e) => e,
    }
}

fn statements(src: &str) -> usize {
    ok(src).block.end.statements.len()
}

fn only_expr(src: &str) -> String {
    let script = ok(src);
    let st = &script.block.end.statements[0];
    match &st.kind {
        StatementKind::Pipeline(p) => {
            format!("{:?}", p.as_expression().expect("an expression").kind)
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn bootstrap_parses() {
    let script = ok(BOOTSTRAP);
    assert_eq!(script.block.end.statements.len(), 4);
    assert_eq!(script.block.end.traps.len(), 1);
}

#[test]
fn separators_comments_continuation() {
    assert_eq!(statements("1; 2\n3\r\n4"), 4);
    assert_eq!(statements("1 # comment ; 2\n<# block\n comment #> 3"), 2);
    assert_eq!(statements("Write-Output `\n  a `\n  b"), 1);
    assert_eq!(statements(";;\n\n"), 0);
}

#[test]
fn strings() {
    assert!(only_expr("'it''s'").contains("it's"));
    // Unicode single quotes double like '.
    assert!(only_expr("'a\u{2019}\u{2019}b'").contains("a\u{2019}b"));
    assert!(only_expr("\"a`tb`n\"").contains("a\\tb\\n"));
    let e = only_expr("\"x $y ${z} $($a + 1) `$n\"");
    assert!(
        e.contains("Variable") && e.contains("SubExpression") && e.contains("$n"),
        "{e}"
    );
    assert!(only_expr("@'\nline1\n'quoted'\n'@").contains("line1\\n'quoted'"));
    let e = only_expr("@\"\nhello $name\n\"@");
    assert!(e.contains("hello ") && e.contains("name"), "{e}");
}

#[test]
fn numbers() {
    assert_eq!(only_expr("42"), "Constant(Int(42))");
    assert_eq!(only_expr("3000000000"), "Constant(Long(3000000000))");
    assert_eq!(only_expr("1.5"), "Constant(Double(1.5))");
    assert_eq!(only_expr("1kb"), "Constant(Int(1024))");
    assert_eq!(only_expr("10GB"), "Constant(Long(10737418240))");
    assert_eq!(only_expr("0x10"), "Constant(Int(16))");
    assert_eq!(only_expr("0xFFFFFFFF"), "Constant(Int(-1))");
    assert_eq!(only_expr("-2147483648"), "Constant(Int(-2147483648))");
    assert_eq!(only_expr("1e3"), "Constant(Double(1000.0))");
}

#[test]
fn expressions() {
    for src in [
        "$a = @(1, 2, 3)",
        "$h = @{a = 1; 'b c' = 2\n d = Get-Date}",
        "$x = ,1",
        "$s = {param($a) $a + 1}",
        "[int]'5' + [long]::MinValue",
        "[Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes('x'))",
        "$a[0]; $h['k']; $x.Prop; $x.$name; $s.ToUpper(); $s.Split(',')[1]",
        "1..10 -contains 5 -and -not $false -or !$true",
        "'a' -like 'A*' -and 'b' -cmatch 'b' -and 'x','y' -contains 'x'",
        "'{0:N2}' -f 3.14159",
        "'a,b' -split ',' -join ';' -replace 'a', 'b'",
        "$x -is [string] -and ($y -as [int]) -isnot [array]",
        "$i++; $i--; ++$i; --$i; $i += 2; $i -= 1; $i *= 3; $i /= 2; $i %= 2",
        "$env:COMPUTERNAME; $script:x = 1; $global:y = 2",
        "(Get-Thing).Prop",
        "$(Get-Thing; 1)",
        "-split 'a b c'",
        "-join ('a','b')",
        "$x = $y = 3",
        "[string[]]$a = 'x'",
        "$a[-1]; $a[0,1]; $a[1..2]",
        "5 % 3; 7 / 2 * 3 - -1",
        "$h.Keys | ForEach-Object { $_ }",
        "@{}.Count",
    ] {
        ok(src);
    }
}

#[test]
fn commands() {
    let script =
        ok("Get-Thing -Name 'x' -Count:5 -Force pos1 pos2 @splat | Select-Object -First 1");
    let StatementKind::Pipeline(p) = &script.block.end.statements[0].kind else {
        panic!()
    };
    assert_eq!(p.elements.len(), 2);
    let ElementKind::Command(c) = &p.elements[0].kind else {
        panic!()
    };
    assert_eq!(c.elements.len(), 7);
    assert!(
        matches!(&c.elements[2], CommandElement::Parameter { name, argument: Some(_), .. } if name == "Count")
    );
    assert!(matches!(&c.elements[6], CommandElement::Splat { name, .. } if name == "splat"));
    for src in [
        "& $sb 1 2",
        "& 'Get-Thing' -Name x",
        ". { $x = 1 }",
        "Get-Thing -Name a,b, c",
        "Write-Output 1.2.3.4 HKLM:\\SYSTEM\\x *.txt -5",
        "Write-Output (1 + 2) $(3) @(4) @{a=1} {5}",
        "Get-Thing 2>&1 > $null",
        "Get-Thing 2> $null",
        "Get-Thing |\n  Where-Object { $_.x -gt 1 } |\n  % { $_ }",
        "dir | ? { $_ } | Out-Null",
        "Write-Host -NoNewline -ForegroundColor Red 'x'",
        "Get-ItemProperty -Path 'HKLM:\\SOFTWARE' -Name 'x' -ErrorAction SilentlyContinue",
    ] {
        ok(src);
    }
}

#[test]
fn control_flow() {
    for src in [
        "if ($a) { 1 } elseif ($b) { 2 } else { 3 }",
        "if ($a)\n{\n 1\n}\nelse\n{\n 2\n}",
        "foreach ($x in 1..3) { if ($x -eq 2) { continue }; $x }",
        "for ($i = 0; $i -lt 3; $i++) { $i }",
        "for (;;) { break }",
        "while ($true) { break }",
        "do { $i++ } while ($i -lt 3)",
        "do { $i++ } until ($i -ge 3)",
        ":outer foreach ($a in 1,2) { foreach ($b in 3,4) { break outer } }",
        "function Get-X { param($a, [string]$b = 'x', [switch]$s) $a }",
        "function Get-Y($a, $b) { return $a + $b }",
        "function Z { [CmdletBinding()] param([Parameter(Mandatory=$true, ValueFromPipeline=$true)][string]$Name) process { $Name } }",
        "filter Double { $_ * 2 }",
        "function B { begin { 1 } process { $_ } end { 2 } }",
        "try { throw 'x' } catch [System.Management.Automation.RuntimeException], [Exception] { $_ } catch { 2 } finally { 3 }",
        "try { 1 } finally { 2 }",
        "trap { 'trapped'; continue }\n throw 'boom'",
        "trap [Exception] { break }",
        "exit 3",
        "exit",
        "return",
        "throw",
    ] {
        ok(src);
    }
    let script = ok("trap { 1 }; 2; trap { 3 }");
    assert_eq!(script.block.end.traps.len(), 2);
    assert_eq!(script.block.end.statements.len(), 1);
}

#[test]
fn error_messages_and_positions() {
    let e = err("if ($x) { 1");
    assert_eq!(e.kind, ParseErrorKind::MissingEndCurlyBrace);
    assert_eq!(e.message, "Missing closing '}' in statement block.");
    assert_eq!((e.line, e.column), (1, 12));

    let e = err("1 2");
    assert_eq!(
        e.message,
        "Unexpected token '2' in expression or statement."
    );
    assert_eq!((e.line, e.column, e.line_text.as_str()), (1, 4, "1 2"));

    let e = err("$x = 1\n$y = (2 + 3\n");
    assert_eq!(e.message, "Missing closing ')' in expression.");
    assert_eq!(e.line, 3);

    let e = err("'abc");
    assert_eq!(e.kind, ParseErrorKind::TerminatorExpectedAtEndOfString);
    assert_eq!(e.message, "The string is missing the terminator: '.");

    let e = err("\"abc");
    assert_eq!(e.message, "The string is missing the terminator: \".");

    let e = err("1 +");
    assert_eq!(
        e.message,
        "You must provide a value expression on the right-hand side of the '+' operator."
    );

    let e = err("@{a = 1; A = 2}");
    assert_eq!(e.kind, ParseErrorKind::DuplicateKeyInHashLiteral);
    assert_eq!(
        e.message,
        "Duplicate keys 'A' are not allowed in hash literals."
    );

    let e = err("@{a 1}");
    assert_eq!(e.message, "Missing '=' operator after key in hash literal.");

    let e = err("if 1");
    assert_eq!(e.message, "Missing opening '(' after keyword 'if'.");

    let e = err("try { 1 }");
    assert_eq!(
        e.message,
        "The Try statement is missing its Catch or Finally block."
    );

    let e = err("foreach ($x 1) {}");
    assert_eq!(e.message, "Missing 'in' after variable in foreach loop.");

    let e = err("$x.Foo(1,");
    assert_eq!(e.kind, ParseErrorKind::ExpectedExpression);

    let e = err("}");
    assert_eq!(
        e.message,
        "Unexpected token '}' in expression or statement."
    );

    let e = err("1 | 2");
    assert_eq!(
        e.message,
        "Expressions are only allowed as the first element of a pipeline."
    );

    let e = err("$x -bogus 1");
    assert_eq!(e.kind, ParseErrorKind::UnexpectedToken);
}

/// `-in` and `-notin` are PowerShell 3.0: a 2.0 host refuses the whole script before running
/// any of it, with 2.0's own texts (see `Parser::unexpected` for the sources).
#[test]
fn powershell_3_membership_operators_are_refused_as_2_0_refuses_them() {
    let e = err("Write-Output 'first'\nif ($Action -in 'a', 'b') { 1 }");
    assert_eq!(e.kind, ParseErrorKind::ExpectedExpression);
    assert_eq!(
        e.message,
        "You must provide a value expression on the right-hand side of the '-' operator."
    );
    // The marker goes right after the dash: `$Action - <<<< in`.
    assert_eq!((e.line, e.column), (2, 14));
    let e = err("$x = 'z' -IN 'a'");
    assert_eq!(e.kind, ParseErrorKind::ExpectedExpression);

    let e = err("'z' -notin 'a','b'");
    assert_eq!(e.kind, ParseErrorKind::UnexpectedToken);
    assert_eq!(
        e.message,
        "Unexpected token '-notin' in expression or statement."
    );
    for src in ["1 -cin 1", "1 -inotin 1", "$a.Contains($b -in $c)"] {
        let _ = err(src);
    }
    // The 2.0 spelling of the same test parses.
    ok("if ('a', 'b' -contains $Action) { 1 }");
    ok("if ('a', 'b' -notcontains $Action) { 1 }");
    // In command mode `-in` is a parameter name, as in 2.0.
    ok("Get-Thing -in 1");
}

#[test]
fn unsupported_syntax_is_refused() {
    for src in [
        "switch ($x) { 1 { 'one' } }",
        "Get-Thing > file.txt",
        "Get-Thing >> $null",
        "Write-Output a$b",
        "Write-Output $a+1",
        "[System.Collections.Generic.List[string]]::new()",
        "$function:foo",
        "data { 1 }",
        "function f { param([ValidateSet('a')]$x) }",
        "$x = if ($a) { 1 }",
        "a && b",
        "class Foo {}",
    ] {
        let e = err(src);
        assert_eq!(e.kind, ParseErrorKind::Unsupported, "{src}: {e}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(err(&deep).kind, ParseErrorKind::TooDeep);
    let deep = format!("{}1", "!".repeat(5000));
    assert_eq!(err(&deep).kind, ParseErrorKind::TooDeep);
    let deep = format!("{}1{}", "{".repeat(5000), "}".repeat(5000));
    assert_eq!(err(&deep).kind, ParseErrorKind::TooDeep);
    let deep = format!("{}1{}", "@{a=".repeat(5000), "}".repeat(5000));
    assert_eq!(err(&deep).kind, ParseErrorKind::TooDeep);
    let deep = format!("\"{}\"", "$(\"".repeat(5000));
    assert!(parse(&deep).is_err());
}

#[test]
fn function_names_with_multibyte_characters_where_a_scope_would_end() {
    // Found by fuzzing (fuzz/regressions/pwsh_parse): the scope prefix check sliced the
    // name at byte 6 or 7, inside the character.
    for src in [
        "function abcde\u{e9}fg { 1 }",
        "function abcdef\u{e9}g { 1 }",
        "function __e\\\u{fffd}\u{5}\u{19}\u{fffd}xctl { 1 }",
    ] {
        let _ = parse(src);
    }
    assert!(parse("function abcde\u{e9}fg { 1 }").is_ok());
    assert!(parse("function Global:f { 1 }").is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
        let _ = parse(&s);
    }

    #[test]
    fn powershell_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("$x"), Just("("), Just(")"), Just("{"), Just("}"), Just("@("), Just("@{"),
                Just("'"), Just("\""), Just("`"), Just("-eq"), Just(" "), Just("\n"), Just(";"),
                Just("|"), Just("Get-Thing"), Just("-Name"), Just("1"), Just(","), Just("."),
                Just("["), Just("]"), Just("int"), Just("::"), Just("="), Just("$("), Just("@'\n"),
                Just("\n'@"), Just("#"), Just("<#"), Just("#>"), Just("if"), Just("foreach"),
                Just("function"), Just("param"), Just("try"), Just("catch"), Just("+"), Just("-"),
            ],
            0..40,
        )
    ) {
        let _ = parse(&parts.concat());
    }
}
