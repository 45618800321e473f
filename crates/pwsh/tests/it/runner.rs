//! The runner: a fixed, short command line whatever the script, and a lossless stdin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use exctl_pwsh::runner::{
    BOOTSTRAP, DecodeError, Invocation, MAX_COMMAND_LINE, POWERSHELL, decode_stdin,
};
use exctl_pwsh::{decode_command, encode_command, invocation};
use proptest::prelude::*;

/// A script of exactly `len` bytes that exercises unicode, quotes and line breaks.
fn script_of_len(len: usize) -> String {
    let unit = "Set-Item -Name 'it''s' -Value \u{2018}Zürich 😀\u{2019}; $x = \"`$(y)\"\r\n";
    let mut s = String::with_capacity(len + unit.len());
    while s.len() + unit.len() <= len {
        s.push_str(unit);
    }
    while s.len() < len {
        s.push('#');
    }
    s
}

fn assert_valid(inv: &Invocation, script: &str) {
    assert_eq!(inv.command, POWERSHELL);
    assert_eq!(
        &inv.arguments[..6],
        [
            "-NoLogo",
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-EncodedCommand"
        ]
    );
    assert_eq!(inv.arguments.len(), 7);
    assert_eq!(decode_command(&inv.arguments[6]).unwrap(), BOOTSTRAP);
    assert!(inv.stdin.is_ascii());
    assert!(inv.stdin.ends_with(b"\r\n"));
    // What the bootstrap does: base64 of the text, then UTF-8.
    let b64 = std::str::from_utf8(&inv.stdin).unwrap().trim_end();
    assert_eq!(STANDARD.decode(b64).unwrap(), script.as_bytes());
    assert_eq!(decode_stdin(&inv.stdin).unwrap(), script);
}

#[test]
fn command_line_does_not_depend_on_script_length() {
    let small = script_of_len(1024);
    let large = script_of_len(1024 * 1024);
    assert_eq!(small.len(), 1024);
    assert_eq!(large.len(), 1024 * 1024);
    let a = invocation(&small);
    let b = invocation(&large);
    assert_valid(&a, &small);
    assert_valid(&b, &large);
    assert_eq!(a.command_line(), b.command_line());
    assert_eq!(a.arguments, b.arguments);
    let len = a.command_line().len();
    assert!(len < 2048, "command line is {len} characters");
    assert!(len < MAX_COMMAND_LINE);
}

#[test]
fn command_line_is_safe_for_cmd_exe() {
    let line = invocation("Get-Date").command_line();
    assert!(line.is_ascii());
    for c in ['"', '&', '|', '<', '>', '^', '%', '\'', '\t', '\r', '\n'] {
        assert!(!line.contains(c), "{c:?} in {line}");
    }
    for arg in invocation("x").arguments {
        assert!(!arg.is_empty() && !arg.contains(' '), "{arg:?}");
    }
}

#[test]
fn bootstrap_is_short_ascii_powershell_2() {
    assert!(BOOTSTRAP.is_ascii());
    assert!(!BOOTSTRAP.contains('\n'));
    assert!(BOOTSTRAP.starts_with("$ProgressPreference='SilentlyContinue';"));
    assert!(BOOTSTRAP.contains("$ErrorActionPreference='Stop'"));
    assert!(BOOTSTRAP.contains("exit 1"));
    // It reads the script from pipeline input: powershell.exe already reads redirected stdin
    // itself, so a second reader of the console stream would race with it.
    assert!(BOOTSTRAP.contains("@($input)"));
    assert!(!BOOTSTRAP.contains("[Console]::In"));
    for newer in [
        "ConvertTo-Json",
        "ConvertFrom-Json",
        "[ordered]",
        "::new(",
        "-in ",
        "?.",
    ] {
        assert!(
            !BOOTSTRAP.contains(newer),
            "{newer} is newer than PowerShell 2.0"
        );
    }
    assert!(encode_command(BOOTSTRAP).len() < 1024);
}

#[test]
fn bootstrap_brackets_balance() {
    // Outside the two '' literals, every bracket closes in order.
    let mut stack = Vec::new();
    let mut in_quote = false;
    for c in BOOTSTRAP.chars() {
        match c {
            '\'' => in_quote = !in_quote,
            _ if in_quote => {}
            '(' | '{' | '[' => stack.push(c),
            ')' => assert_eq!(stack.pop(), Some('(')),
            '}' => assert_eq!(stack.pop(), Some('{')),
            ']' => assert_eq!(stack.pop(), Some('[')),
            _ => {}
        }
    }
    assert!(stack.is_empty() && !in_quote);
}

#[test]
fn empty_script() {
    let inv = invocation("");
    assert_eq!(inv.stdin, b"\r\n");
    assert_eq!(decode_stdin(&inv.stdin).unwrap(), "");
}

#[test]
fn encode_command_known_vectors() {
    // UTF-16LE: 'd' 00 'i' 00 'r' 00.
    assert_eq!(encode_command("dir"), "ZABpAHIA");
    assert_eq!(encode_command("a"), "YQA=");
    assert_eq!(encode_command(""), "");
    // A character outside the BMP becomes a surrogate pair: 3D D8 00 DE.
    assert_eq!(encode_command("😀"), "PdgA3g==");
}

#[test]
fn decode_command_errors() {
    assert!(matches!(
        decode_command("not base64!"),
        Err(DecodeError::Base64(_))
    ));
    assert!(matches!(
        decode_command("YQ=="),
        Err(DecodeError::OddLength { len: 1 })
    ));
    // 0xD800 alone: an unpaired high surrogate.
    assert!(matches!(decode_command("ANg="), Err(DecodeError::Utf16)));
}

#[test]
fn decode_stdin_tolerates_line_breaks_and_replaces_invalid_utf8() {
    assert_eq!(decode_stdin(b"YWJj\r\nZGVm\r\n").unwrap(), "abcdef");
    assert_eq!(decode_stdin(b"/w==").unwrap(), "\u{FFFD}");
    assert!(decode_stdin(b"***").is_err());
}

proptest! {
    #[test]
    fn encode_decode_command_round_trip(s in any::<String>()) {
        prop_assert_eq!(decode_command(&encode_command(&s)).unwrap(), s);
    }

    #[test]
    fn stdin_round_trip(s in any::<String>()) {
        prop_assert_eq!(decode_stdin(&invocation(&s).stdin).unwrap(), s);
    }
}
