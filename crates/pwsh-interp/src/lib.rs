//! A PowerShell 2.0 subset: a parser and an interpreter, so that the simulated Windows host
//! can run the scripts exctl sends (and other clients' test scripts) with PowerShell's
//! semantics and error texts.
//!
//! A crate of its own so that the client (`exctl-pwsh`, the jump-host binary) does not carry
//! it: only the simulator (`exctl-sim`) and tests depend on it.
//!
//! - [`parse`] turns text into an [`ast::Script`], or a [`ParseError`] with PowerShell's
//!   message, line and column. Syntax outside the subset is refused with
//!   [`ParseErrorKind::Unsupported`], never guessed at.
//! - [`Interpreter`] runs a script against a [`Host`] (which provides every command the
//!   language does not know, declared with [`CommandInfo`]) and streams what it writes to
//!   an [`OutputSink`]. See [`host`] for the interface, time and blocking, and
//!   [`Interpreter::run`] for the exit code contract.
//! - [`Value`] is the value model shared with hosts; [`ErrorRecord`] is PowerShell's error,
//!   with [`ErrorRecord::format_v2`] printing it as PowerShell 2.0 does.
//!
//! # Supported
//!
//! - Statements separated by line breaks or `;`; `#` and `<# #>` comments; backtick line
//!   continuation.
//! - Literals: single-quoted strings (the five single quotes of `literal`, doubled),
//!   double-quoted strings with `$var`, `${name}`, `$scope:var`, `$(...)` and backtick
//!   escapes, both here-strings, integers (decimal, `0x` hex, `l` suffix, `kb`..`pb`),
//!   doubles, `@(...)`, `$(...)`, comma arrays and unary `,`, hash literals (keys in
//!   order, duplicate constant keys refused), script blocks, type literals.
//! - Types (`[...]`, case-insensitive, `System.` optional): `string char bool int int32
//!   long int64 uint32 double single decimal byte switch array object hashtable
//!   scriptblock timespan datetime void psobject regex Convert Text.Encoding Math
//!   Environment Console` and `T[]`; casts, `-as`, `-is`, statics (`[long]::MinValue`,
//!   `[Convert]::ToBase64String/FromBase64String/ToInt32`, `[Text.Encoding]::UTF8`/`Unicode`
//!   /`ASCII` with `GetString`/`GetBytes`, `[ScriptBlock]::Create`, `[Math]::Max/Min/Abs/
//!   Round/Floor/Ceiling/Pow/Sqrt`, `[string]::Join/IsNullOrEmpty/Format/Concat`,
//!   `[Environment]::NewLine`, `[Console]::Out.Write`, `[DateTime]::Now`,
//!   `[TimeSpan]::FromSeconds`, `[regex]::Escape`). Other type names are a run-time
//!   "Unable to find type" error, as in PowerShell; in `catch [T]` and `-is [T]` they
//!   match by name against error and host object type names.
//! - Variables: automatic `$_ $input $args $Host $true $false $null $? $Error $matches
//!   $PSVersionTable $LASTEXITCODE` (null: no native programs) and the preferences
//!   (`$ErrorActionPreference`, `$VerbosePreference`, `$WarningPreference`, ...);
//!   `$env:NAME` (read from the host); scopes are dynamic as in PowerShell: every function
//!   and `&` call has its own scope, `.` runs in the caller's, `ForEach-Object` and
//!   `Where-Object` blocks run in the caller's; `$script:` and `$global:` both name the
//!   outermost scope (one script per process); assignment to `$null` discards.
//! - Operators with PowerShell's precedence: `+ - * / %` (Int32, then Int64, then Double on
//!   overflow; string and array `+` and `*`, hashtable `+`), `-eq -ne -gt -ge -lt -le -like
//!   -notlike -match -notmatch -contains -notcontains -replace -split` with `i` and `c`
//!   variants (arrays on the left filter; the right operand is converted to the left's
//!   type), `-is -isnot -as -join -f -and -or -xor -not ! -band -bor -bxor -bnot`,
//!   unary `-`, `++`/`--`, `= += -= *= /= %=` (also `[T]$x = v`), ranges, indexing (negative
//!   and slices), `.Member`, `.$name`, method calls, `::` statics. Not `-in`/`-notin`
//!   (PowerShell 3.0): they fail the parse with 2.0's own texts, as on a real server.
//! - Pipelines with objects flowing one at a time; commands with named (unique prefix,
//!   aliases, `-Name:value`), switch and positional arguments, splatting `@h`/`@a`, `&` and
//!   `.` on script blocks and names; `> $null`, `2> $null`, `2>&1`.
//! - `if/elseif/else`, `foreach`, `for`, `while`, `do/while`, `do/until`, labels,
//!   `break`/`continue` (outside a loop they end the script, as in PowerShell),
//!   `function`/`filter` with `param(...)`, typed parameters and defaults,
//!   `[Parameter(Mandatory, ValueFromPipeline)]`, `[CmdletBinding()]`, `begin/process/end`,
//!   `return`, `try/catch [T]/finally`, `trap [T] {}` with `break`/`continue`, `throw`,
//!   `exit N`.
//! - Errors: non-terminating errors follow `-ErrorAction`/`$ErrorActionPreference`
//!   (`Stop` wraps them as PowerShell 2.0's `ActionPreferenceStopException`, whose message
//!   starts "Command execution stopped because ..."); statement-terminating errors
//!   (binding errors, unknown commands, a host's `Err`, run-time errors) end the statement
//!   and, outside `try`/`trap` and unless the preference is `Stop`, are written while the
//!   script goes on; `throw` and `Stop` end the script unless handled.
//! - Built-in commands: `Write-Output Write-Host Write-Error
//!   Write-Warning Write-Verbose Write-Debug Out-String Out-Null Out-Default Out-Host
//!   ForEach-Object Where-Object Select-Object Sort-Object Measure-Object Group-Object
//!   New-Object (PSObject, Hashtable) Add-Member (NoteProperty) Start-Sleep Get-Date
//!   Get-Command Format-List` (text, not format objects), `Set-StrictMode` (accepted, no
//!   effect) and the aliases `% ? foreach where select sort measure group echo write sleep
//!   gcm fl`.
//! - Output text: see [`format`](mod@format).
//!
//! # Refused (parse error) or left out
//!
//! - `switch`, `data`, `dynamicparam`, classes, `using`, workflows; generic type names;
//!   redirection to files and `>>`; `&&`/`||`; variables inside barewords (`a$b`) and
//!   composite arguments (`$a+1` in argument mode); provider-qualified variables other
//!   than `env:`; attributes other than `[Parameter(...)]` and `[CmdletBinding()]`;
//!   assigning a statement's output (`$x = if ...`, not in 2.0 either).
//! - Member enumeration (`(Get-X).Prop` over an array is `$null`, as in 2.0) and `.Count`
//!   on scalars (`$null`, as in 2.0). `foreach ($x in $null)` runs once, as in 2.0.
//! - `-split` does not return captured groups; regular expressions use Rust's `regex`
//!   syntax (no look-around or back-references: a pattern using them is an "Invalid regular
//!   expression pattern" error).
//! - Arrays are values (copied on element assignment), hashtables and objects references.
//! - Strict mode, `$OFS`, `[ref]`, `ArrayList`, `Add-Member` other than note properties.
//!
//! # Bounds
//!
//! See [`Limits`]: call depth (PowerShell's call depth overflow error), string and array
//! sizes (an `OutOfMemoryException` error), a step budget and a [`StopSignal`]; the parser
//! bounds nesting ([`parser::MAX_NESTING`]). Nothing here panics on script input.

pub mod ast;
mod binding;
mod builtins;
pub mod command;
pub mod convert;
pub mod error;
pub mod format;
pub mod host;
mod interp;
mod members;
mod ops;
pub mod parser;
pub mod value;

pub use ast::Script;
pub use command::{CommandParseError, parse_command};
pub use error::{ErrorCategory, ErrorPosition, ErrorRecord, ParseError, ParseErrorKind};
pub use host::{
    ActionPreference, ArgumentError, BoundArguments, Call, CollectSink, CommandInfo, Host,
    InputMode, OutputSink, ParamType, ParameterInfo, StopSignal,
};
pub use interp::{ExitReason, ExitStatus, Interpreter, Limits, SessionState};
pub use parser::parse;
pub use value::{Hashtable, PsObject, Value};
