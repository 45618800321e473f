//! `access: psrp`: Exchange's cmdlets through Exchange's own endpoint, called from the
//! host's PowerShell session.
//!
//! exctl's scripts (observe, apply, restart, doctor, export) run in the host's session on
//! its WinRM endpoint (`Microsoft.PowerShell`, full language: the registry, services and
//! WMI are there). With `access: psrp` that session has no Exchange snap-in: each Exchange
//! cmdlet the scripts call ([`exchange_cmdlets`], generated from the registry of kinds) is
//! a small advanced function ([`relay_prologue`]) that hands its bound parameters to the
//! client with `Read-Host -Prompt REQUEST`. PowerShell relays that prompt to the client's
//! host as a Prompt host call ([MS-PSRP] 2.2.3.17; PowerShell's ReadHostCommand asks
//! `Host.UI.Prompt` with one field named by the prompt), the client runs the command with
//! its parameters on Exchange's endpoint (`Microsoft.Exchange`, NoLanguage, RBAC, AD work
//! done by Exchange itself: no double hop), and answers with the objects, error records or
//! failure ([`encode_outcome`]), which the function writes as a cmdlet would (objects with
//! their properties, non-terminating errors through `Write-Error`, so `-ErrorAction` and
//! `$ErrorActionPreference` decide, and `throw` when the command failed).
//!
//! The wire format of both directions is one line of space-separated fields; free text is
//! base64 (UTF-8), so no quoting, code page or line ending can damage it. A value is
//! `n:` (null), `b:1`/`b:0`, `i:N` (Int32), `j:N` (Int64), `d:TICKS` (a DateTime's clock
//! time), `s:B64` (text; everything else, as its string), or `l:B64,B64,...` (a list of
//! encoded values). A request is `EXCTL-EXCHANGE1 B64(command) B64(name)~VALUE ...`; an
//! answer is records joined by `|`: `O` (a new object), `P B64(name) VALUE` (a property of
//! it), `V VALUE` (a value that is no object), `E B64(message) B64(id) B64(category)` (an
//! error record), `F ...` (the command failed).

use exctl_psrp::clixml::Value;
use exctl_pwsh::{Arg, Command};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The first word of every request.
pub const REQUEST_MARKER: &str = "EXCTL-EXCHANGE1";

/// The Exchange cmdlets exctl's scripts call, each once, sorted: every kind's
/// ([`exctl_exchange::Kind::cmdlets`]) and the host scripts'
/// ([`exctl_exchange::HOST_CMDLETS`]). Generated, so a new kind's cmdlets are relayed by
/// registering the kind; the order is only for a stable prologue.
pub fn exchange_cmdlets() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = exctl_exchange::kinds::ALL
        .iter()
        .flat_map(|k| k.cmdlets().iter().copied())
        .chain(exctl_exchange::HOST_CMDLETS.iter().copied())
        .collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    names
}

// The parameter names below are kept by hand: they are the arguments of the Get-, Add-
// and Remove- cmdlets and of the host scripts, which no parameter table types (the
// tables hold the settings of the Set- cmdlets, added by `parameter_names`). Their order
// is the relay functions' positional order, which PowerShell 2.0 binds in declaration
// order: `Identity` first, as position 0 of Exchange's cmdlets
// (`Get-ExchangeServer EX01`).
// A test of the root package (`tests/it/kind_registry.rs`) holds them to what the
// scripts pass.

/// Parameters of the relayed cmdlets that are switches (`-Status` of
/// Get-MailboxDatabase, `-Deny` of the AD permission cmdlets, the confirmation ones).
pub const SWITCHES: &[&str] = &["Status", "Deny", "Confirm", "Force", "WhatIf"];

/// Parameters that name or select what a cmdlet works on, `Identity` first.
pub const SELECTORS: &[&str] = &[
    "Identity",
    "Server",
    "Name",
    "User",
    "ResultSize",
    "DomainController",
    "ThrottlingPolicy",
    "ExtendedRights",
    "AccessRights",
    "InheritanceType",
    "Properties",
    "ChildObjectTypes",
    "InheritedObjectType",
    "Owner",
    "Filter",
    "OrganizationalUnit",
];

/// Common parameters PowerShell handles in the function itself.
pub const COMMON: &[&str] = &[
    "Verbose",
    "Debug",
    "ErrorAction",
    "WarningAction",
    "ErrorVariable",
    "WarningVariable",
    "OutVariable",
    "OutBuffer",
];

/// Every parameter name a relayed cmdlet accepts: the selectors and the settings of every
/// settings cmdlet the kinds' registry types (`kinds::settings_cmdlets`, in the newest
/// release, which has them all); the server refuses a parameter its cmdlet does not have,
/// as it would refuse it from a snap-in.
pub fn parameter_names() -> Vec<&'static str> {
    use exctl_exchange::kinds::{cmdlet_parameters, settings_cmdlets};
    let mut names: Vec<&'static str> = SELECTORS.to_vec();
    let specs = settings_cmdlets()
        .into_iter()
        .filter_map(|c| cmdlet_parameters(c.cmdlet, exctl_exchange::Version::Sp3))
        .flat_map(|p| p.managed);
    for p in specs {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(p.name))
            && !SWITCHES.iter().any(|n| n.eq_ignore_ascii_case(p.name))
        {
            names.push(p.name);
        }
    }
    names
}

/// The PowerShell 2.0 that defines the relay in a session (once per session: a later
/// script finds it defined). Expects the record PRELUDE (`__exctl_b64`) before it. Built
/// once per process: it depends only on the registry of kinds.
pub fn relay_prologue() -> &'static str {
    static PROLOGUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(build_prologue);
    &PROLOGUE
}

fn build_prologue() -> String {
    let mut params: Vec<String> = parameter_names().iter().map(|n| format!("${n}")).collect();
    params.extend(SWITCHES.iter().map(|n| format!("[switch]${n}")));
    let params = params.join(", ");
    let common = COMMON
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(",");
    let mut s = format!(
        r#"if ($__exctl_relay -ne $true) {{
function __exctl_unb64([string]$s) {{ [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($s)) }}
function __exctl_enc($v) {{
  if ($null -eq $v) {{ return 'n:' }}
  if ($v -is [System.Management.Automation.SwitchParameter]) {{ if ($v.IsPresent) {{ return 'b:1' }} else {{ return 'b:0' }} }}
  if ($v -is [bool]) {{ if ($v) {{ return 'b:1' }} else {{ return 'b:0' }} }}
  if ($v -is [int]) {{ return 'i:' + [string]$v }}
  if ($v -is [long]) {{ return 'j:' + [string]$v }}
  if ($v -is [array]) {{ return 'l:' + (@(foreach ($__x in $v) {{ __exctl_b64 (__exctl_enc $__x) }}) -join ',') }}
  return 's:' + (__exctl_b64 ([string]$v))
}}
function __exctl_dec([string]$e) {{
  $t = $e.Substring(0, 1)
  $r = $e.Substring(2)
  if ($t -eq 'n') {{ return $null }}
  if ($t -eq 'b') {{ return ($r -eq '1') }}
  if ($t -eq 'i') {{ return [int]$r }}
  if ($t -eq 'j') {{ return [long]$r }}
  if ($t -eq 'd') {{ return [datetime][long]$r }}
  if ($t -eq 'l') {{
    if ($r -eq '') {{ return ,@() }}
    return ,@(foreach ($__x in $r.Split(',')) {{ __exctl_dec (__exctl_unb64 $__x) }})
  }}
  return (__exctl_unb64 $r)
}}
function __exctl_exchange([string]$__cmd, $__bound) {{
  $__req = '{REQUEST_MARKER} ' + (__exctl_b64 $__cmd)
  foreach ($__k in @($__bound.Keys)) {{
    if (@({common}) -contains [string]$__k) {{ continue }}
    $__req = $__req + ' ' + (__exctl_b64 ([string]$__k)) + '~' + (__exctl_enc $__bound[$__k])
  }}
  $__ans = [string](Read-Host -Prompt $__req)
  $__o = $null
  foreach ($__r in $__ans.Split('|')) {{
    if ($__r -eq '') {{ continue }}
    $__f = $__r.Split(' ')
    if ($__f[0] -eq 'P') {{ Add-Member -InputObject $__o -MemberType NoteProperty -Name (__exctl_unb64 $__f[1]) -Value (__exctl_dec $__f[2]); continue }}
    if ($null -ne $__o) {{ $__o; $__o = $null }}
    if ($__f[0] -eq 'O') {{ $__o = New-Object PSObject }}
    elseif ($__f[0] -eq 'V') {{ __exctl_dec $__f[1] }}
    elseif ($__f[0] -eq 'E') {{ Write-Error -Message (__exctl_unb64 $__f[1]) -ErrorId (__exctl_unb64 $__f[2]) -Category (__exctl_unb64 $__f[3]) }}
    elseif ($__f[0] -eq 'F') {{ throw (__exctl_unb64 $__f[1]) }}
  }}
  if ($null -ne $__o) {{ $__o }}
}}
"#
    );
    for name in exchange_cmdlets() {
        s.push_str(&format!(
            "function {name} {{\n  [CmdletBinding()]\n  param({params})\n  __exctl_exchange '{name}' $PSBoundParameters\n}}\n"
        ));
    }
    s.push_str("$__exctl_relay = $true\n}\n");
    s
}

/// Why a prompt is not a relay request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an exctl relay request: {0}")]
pub struct RequestError(&'static str);

fn text(field: &str) -> Result<String, RequestError> {
    let bytes = B64
        .decode(field)
        .map_err(|_| RequestError("a field is not base64"))?;
    String::from_utf8(bytes).map_err(|_| RequestError("a field is not UTF-8"))
}

fn decode_value(v: &str) -> Result<Arg, RequestError> {
    let (tag, rest) = v
        .split_once(':')
        .ok_or(RequestError("a value has no type"))?;
    Ok(match tag {
        "n" => Arg::Null,
        "b" => Arg::Bool(rest == "1"),
        "i" | "j" => Arg::Int(rest.parse().map_err(|_| RequestError("a bad number"))?),
        "s" => Arg::Str(text(rest)?),
        "l" if rest.is_empty() => Arg::List(Vec::new()),
        "l" => Arg::List(
            rest.split(',')
                .map(|e| text(e).and_then(|t| decode_value(&t)))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(RequestError("an unknown value type")),
    })
}

/// The command a relay request asks for, or `None` when the prompt is none of ours.
pub fn parse_request(prompt: &str) -> Option<Result<Command, RequestError>> {
    let mut words = prompt.split(' ');
    if words.next() != Some(REQUEST_MARKER) {
        return None;
    }
    Some((|| {
        let name = text(words.next().ok_or(RequestError("no command"))?)?;
        let mut c = Command::new(name);
        for w in words.filter(|w| !w.is_empty()) {
            let (k, v) = w
                .split_once('~')
                .ok_or(RequestError("a parameter has no value"))?;
            c = c.param(text(k)?, decode_value(v)?);
        }
        Ok(c)
    })())
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// The ticks (100 ns since 0001-01-01) of the clock time an ISO 8601 date says, whatever
/// its offset; `None` when it is not one.
fn iso_ticks(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let time = time.trim_end_matches('Z');
    let time = match time.find(['+', '-']) {
        Some(i) => &time[..i],
        None => time,
    };
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec = t.next().unwrap_or("0");
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let whole: i64 = whole.parse().ok()?;
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(7).collect();
    let frac: i64 = frac.parse().ok()?;
    let days = crate::restart::days_from_civil(y, m, day) + 719_162;
    Some((((days * 24 + h) * 60 + mi) * 60 + whole) * 10_000_000 + frac)
}

/// An xs:duration (`PT30M`, `P1DT2H`, `-PT0.5S`) as .NET shows a TimeSpan
/// (`00:30:00`, `1.02:00:00`, `-00:00:00.5000000`), as a string of it reads.
fn timespan_text(s: &str) -> String {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let Some(rest) = rest.strip_prefix('P') else {
        return s.to_string();
    };
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut ticks: i128 = 0;
    let mut take = |part: &str, units: &[(char, i128)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let unit = units.iter().find(|(u, _)| *u == c)?.1;
            let (w, f) = num.split_once('.').unwrap_or((&num, ""));
            let w: i128 = w.parse().ok()?;
            let f: String = f.chars().chain(std::iter::repeat('0')).take(7).collect();
            let f: i128 = f.parse().ok()?;
            ticks += w * unit + f * unit / 10_000_000;
            num.clear();
        }
        Some(())
    };
    const SEC: i128 = 10_000_000;
    if take(
        date,
        &[
            ('Y', 365 * 86_400 * SEC),
            ('M', 30 * 86_400 * SEC),
            ('D', 86_400 * SEC),
        ],
    )
    .is_none()
        || take(time, &[('H', 3_600 * SEC), ('M', 60 * SEC), ('S', SEC)]).is_none()
    {
        return s.to_string();
    }
    let days = ticks / (86_400 * SEC);
    let rem = ticks % (86_400 * SEC);
    let (h, rem) = (rem / (3_600 * SEC), rem % (3_600 * SEC));
    let (m, rem) = (rem / (60 * SEC), rem % (60 * SEC));
    let (sec, frac) = (rem / SEC, rem % SEC);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{sec:02}"));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

/// One value in the wire format (see the module docs).
fn encode_value(v: &Value) -> String {
    match v {
        Value::Nil => "n:".into(),
        Value::Bool(b) => format!("b:{}", u8::from(*b)),
        Value::I32(i) => format!("i:{i}"),
        Value::U8(_) | Value::I8(_) | Value::U16(_) | Value::I16(_) => {
            format!("i:{}", v.as_i64().unwrap_or_default())
        }
        Value::U32(_) | Value::I64(_) => format!("j:{}", v.as_i64().unwrap_or_default()),
        Value::U64(u) => match i64::try_from(*u) {
            Ok(i) => format!("j:{i}"),
            Err(_) => format!("s:{}", b64(&u.to_string())),
        },
        Value::DateTime(s) => match iso_ticks(s) {
            Some(t) => format!("d:{t}"),
            None => format!("s:{}", b64(s)),
        },
        Value::TimeSpan(s) => format!("s:{}", b64(&timespan_text(s))),
        Value::Object(o) => match &o.list {
            Some(items) => list_value(items),
            None => format!("s:{}", b64(&v.display())),
        },
        _ => format!("s:{}", b64(&v.display())),
    }
}

fn list_value(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(|i| b64(&encode_value(i))).collect();
    format!("l:{}", parts.join(","))
}

/// One error record as an `E`/`F` record.
fn error_fields(e: &exctl_psrp::protocol::ErrorRecord) -> String {
    let category = e
        .category
        .as_deref()
        .and_then(|c| c.split(':').next())
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphabetic()))
        .unwrap_or("NotSpecified");
    format!(
        "{} {} {}",
        b64(&e.message),
        b64(e.fully_qualified_error_id.as_deref().unwrap_or("")),
        b64(category)
    )
}

/// What a relayed command produced, as the answer to its request (see the module docs).
pub fn encode_outcome(result: &exctl_psrp::PipelineResult) -> String {
    let mut records: Vec<String> = Vec::new();
    for v in &result.output {
        match v.as_object() {
            Some(o) if o.list.is_none() && o.dict.is_none() && o.value.is_none() => {
                records.push("O".into());
                for (name, value) in o.properties() {
                    records.push(format!("P {} {}", b64(name), encode_value(value)));
                }
            }
            _ => records.push(format!("V {}", encode_value(v))),
        }
    }
    for e in &result.errors {
        records.push(format!("E {}", error_fields(e)));
    }
    if let Some(f) = &result.failure {
        records.push(format!("F {}", error_fields(f)));
    } else if result.state != exctl_psrp::protocol::PipelineState::Completed {
        records.push(format!(
            "F {} {} {}",
            b64(&format!("the command {}", result.state.name())),
            b64(""),
            b64("OperationStopped")
        ));
    }
    records.join("|")
}

/// The answer for a request that could not be run (the Exchange endpoint could not be
/// reached, or the request was not understood): the command fails with `message`.
pub fn failure(message: &str) -> String {
    format!(
        "F {} {} {}",
        b64(message),
        b64("ExchangeEndpointUnavailable"),
        b64("ConnectionError")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_as_commands_with_typed_values() {
        let enc = |s: &str| B64.encode(s);
        let req = format!(
            "{REQUEST_MARKER} {} {}~s:{} {}~i:20 {}~b:1 {}~l:{},{} {}~n:",
            enc("Set-ImapSettings"),
            enc("Server"),
            enc("EX 01 'x'"),
            enc("MaxConnections"),
            enc("Confirm"),
            enc("SSLBindings"),
            enc(&format!("s:{}", enc("0.0.0.0:993"))),
            enc(&format!("s:{}", enc("[::]:993"))),
            enc("Banner"),
        );
        let c = parse_request(&req).expect("ours").expect("valid");
        assert_eq!(
            c,
            Command::new("Set-ImapSettings")
                .param("Server", "EX 01 'x'")
                .param("MaxConnections", 20)
                .param("Confirm", true)
                .param("SSLBindings", vec!["0.0.0.0:993", "[::]:993"])
                .param("Banner", Arg::Null)
        );
        assert!(parse_request("What is your name?").is_none());
        assert!(matches!(
            parse_request(&format!("{REQUEST_MARKER} !!")),
            Some(Err(_))
        ));
    }

    #[test]
    fn dates_and_durations_read_as_dotnet_shows_them() {
        // .NET's `new DateTime(2026, 12, 7, 10, 0, 0, 500).Ticks`, written out so that a
        // wrong epoch in iso_ticks cannot agree with itself.
        let t = iso_ticks("2026-12-07T10:00:00.5Z").expect("a date");
        assert_eq!(t, 639_322_344_005_000_000);
        assert_eq!(
            iso_ticks("2026-12-07T10:00:00+02:00"),
            iso_ticks("2026-12-07T10:00:00")
        );
        assert_eq!(timespan_text("PT30M"), "00:30:00");
        assert_eq!(timespan_text("P1DT2H"), "1.02:00:00");
        assert_eq!(timespan_text("-PT0.5S"), "-00:00:00.5000000");
        assert_eq!(timespan_text("nonsense"), "nonsense");
    }

    #[test]
    fn the_prologue_defines_every_relayed_cmdlet_once_per_session() {
        let p = relay_prologue();
        for c in exchange_cmdlets() {
            assert!(p.contains(&format!("function {c} {{")), "{c}");
        }
        assert!(p.starts_with("if ($__exctl_relay -ne $true)"));
        assert!(p.contains("[switch]$Status"));
        assert!(p.contains("$MaxConnectionsPerUser"));
    }
}
