//! Interpreter tests: the runner's bootstrap end to end, the language, built-in commands,
//! error semantics and texts, parameter binding against a small test host, and the
//! literal round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use exctl_pwsh::literal::{self, literal};
use exctl_pwsh::runner::{BOOTSTRAP, invocation};
use exctl_pwsh_interp::value::Value;
use exctl_pwsh_interp::*;
use proptest::prelude::*;

/// A host with a few fake cmdlets, a fake clock and a place to capture values.
#[derive(Default)]
struct TestHost {
    captured: Arc<Mutex<Vec<Value>>>,
    slept: Duration,
    calls: Vec<String>,
}

fn thing_info() -> CommandInfo {
    CommandInfo::new("Get-Thing", "Test.Commands.GetThing")
        .param(ParameterInfo::new("Name", ParamType::String).position(0))
        .param(ParameterInfo::new("Count", ParamType::Int))
        .param(ParameterInfo::new("Force", ParamType::Switch))
        .param(ParameterInfo::new(
            "Tags",
            ParamType::Array(Box::new(ParamType::String)),
        ))
}

impl Host for TestHost {
    fn command(&mut self, name: &str) -> Option<Arc<CommandInfo>> {
        let info = match name.to_ascii_lowercase().as_str() {
            "get-thing" => thing_info(),
            "set-thing" => CommandInfo::new("Set-Thing", "Test.Commands.SetThing")
                .param(
                    ParameterInfo::new("Identity", ParamType::String)
                        .position(0)
                        .mandatory()
                        .from_pipeline_by_property_name()
                        .alias("Name"),
                )
                .param(ParameterInfo::new("Value", ParamType::Int))
                .should_process(),
            "fail-thing" => CommandInfo::new("Fail-Thing", "Test.Commands.FailThing"),
            "throw-thing" => CommandInfo::new("Throw-Thing", "Test.Commands.ThrowThing"),
            "get-server" => CommandInfo::new("Get-Server", "Test.Commands.GetServer")
                .param(ParameterInfo::new("Server", ParamType::String))
                .param(ParameterInfo::new("Status", ParamType::String)),
            "capture-value" => CommandInfo::new("Capture-Value", "Test.Commands.CaptureValue")
                .param(
                    ParameterInfo::new("Value", ParamType::Any)
                        .position(0)
                        .from_pipeline(),
                ),
            "restart-store" => CommandInfo::new("Restart-Store", "Test.Commands.RestartStore"),
            "set-policy" => CommandInfo::new("Set-Policy", "Test.Commands.SetPolicy")
                .param(
                    ParameterInfo::new("Identity", ParamType::String)
                        .position(0)
                        .mandatory(),
                )
                .param(ParameterInfo::new(
                    "MaxConcurrency",
                    ParamType::Nullable(Box::new(ParamType::UInt32)),
                )),
            "get-mailbox" => CommandInfo::new("Get-Mailbox", "Test.Commands.GetMailbox")
                .param(
                    ParameterInfo::new("Identity", ParamType::String)
                        .position(0)
                        .in_set("Identity")
                        .from_pipeline(),
                )
                .param(
                    ParameterInfo::new("Anr", ParamType::String)
                        .mandatory()
                        .in_set("AnrSet"),
                )
                .param(ParameterInfo::new("ResultSize", ParamType::Int))
                .default_set("Identity"),
            "export-all" => CommandInfo::new("Export-All", "Test.Commands.ExportAll")
                .input_mode(InputMode::Collect),
            "double-it" => CommandInfo::new("Double-It", "Test.Commands.DoubleIt").param(
                ParameterInfo::new("Number", ParamType::Int)
                    .mandatory()
                    .from_pipeline(),
            ),
            _ => return None,
        };
        Some(Arc::new(info))
    }

    fn invoke(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        self.calls.push(call.command.name.clone());
        match call.command.name.as_str() {
            "Get-Thing" => {
                let obj = PsObject::new(["Test.Thing", "System.Object"])
                    .with("Name", call.args.get("Name").cloned().unwrap_or_default())
                    .with(
                        "Count",
                        call.args.get("Count").cloned().unwrap_or(Value::Int(0)),
                    )
                    .with("Force", call.args.switch("Force"));
                call.write_output(obj);
                Ok(())
            }
            "Set-Thing" => {
                let id = call
                    .args
                    .get("Identity")
                    .map(Value::to_text)
                    .unwrap_or_default();
                if call.args.switch("WhatIf") {
                    call.write_host(format!("What if: set {id}\r\n"));
                } else {
                    call.write_output(format!("set {id}"));
                }
                Ok(())
            }
            "Fail-Thing" => {
                let e = call.error(
                    "The thing was not found.",
                    "Test.ThingNotFoundException",
                    ErrorCategory::ObjectNotFound,
                    "ThingNotFound",
                    Value::from("x"),
                );
                call.write_error(e)?;
                call.write_output("after error");
                Ok(())
            }
            "Throw-Thing" => Err(call.error(
                "The thing broke.",
                "Test.ThingBrokeException",
                ErrorCategory::InvalidOperation,
                "ThingBroke",
                Value::Null,
            )),
            "Capture-Value" => {
                let v = call
                    .input
                    .cloned()
                    .or_else(|| call.args.get("Value").cloned())
                    .unwrap_or_default();
                if let Ok(mut c) = self.captured.lock() {
                    c.push(v);
                }
                Ok(())
            }
            "Set-Policy" => {
                let v = call.args.get("MaxConcurrency").cloned();
                call.write_output(match v {
                    None => "unset".to_string(),
                    Some(Value::Null) => "null".to_string(),
                    Some(other) => format!("{other:?}"),
                });
                Ok(())
            }
            "Get-Mailbox" => {
                call.write_output(format!(
                    "{}:{}",
                    call.parameter_set.unwrap_or(""),
                    call.args
                        .get("Identity")
                        .or(call.args.get("Anr"))
                        .map(Value::to_text)
                        .unwrap_or_default()
                ));
                Ok(())
            }
            "Export-All" => {
                call.write_output(Value::Int(
                    i32::try_from(call.pipeline_input.len()).unwrap_or(0),
                ));
                Ok(())
            }
            "Double-It" => {
                let n = call.args.get("Number").cloned().unwrap_or_default();
                call.write_output(format!("{n:?}"));
                Ok(())
            }
            "Restart-Store" => {
                // A restart that takes five simulated minutes.
                self.slept += Duration::from_secs(300);
                call.write_output("restarted");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn sleep(&mut self, duration: Duration, _stop: &StopSignal) -> bool {
        self.slept += duration;
        true
    }

    fn env_var(&mut self, name: &str) -> Option<String> {
        name.eq_ignore_ascii_case("COMPUTERNAME")
            .then(|| "EXCH01".into())
    }
}

fn run_with(script: &str, host: TestHost) -> (CollectSink, ExitStatus, TestHost) {
    let mut interp = Interpreter::new(host);
    let mut sink = CollectSink::default();
    let status = interp.run(script, None, &mut sink);
    (sink, status, interp.into_host())
}

fn run(script: &str) -> (CollectSink, ExitStatus) {
    let (sink, status, _) = run_with(script, TestHost::default());
    (sink, status)
}

/// The stdout of a script, with line breaks as `\n`.
fn out(script: &str) -> String {
    let (sink, status) = run(script);
    assert!(
        sink.errors.is_empty(),
        "{script:?} wrote errors: {:?}",
        sink.errors
            .iter()
            .map(ErrorRecord::format_v2)
            .collect::<Vec<_>>()
    );
    assert_eq!(status.code, 0, "{script:?}");
    sink.stdout.replace("\r\n", "\n")
}

fn lines(script: &str) -> Vec<String> {
    out(script).lines().map(str::to_owned).collect()
}

fn first_error(script: &str) -> ErrorRecord {
    let (sink, _) = run(script);
    sink.errors
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{script:?} wrote no error"))
}

fn run_bootstrap(script: &str) -> (CollectSink, ExitStatus) {
    let inv = invocation(script);
    let stdin = String::from_utf8(inv.stdin).expect("ascii");
    let input: Vec<String> = stdin.lines().map(str::to_owned).collect();
    let mut interp = Interpreter::new(TestHost::default());
    let mut sink = CollectSink::default();
    let status = interp.run(BOOTSTRAP, Some(input), &mut sink);
    (sink, status)
}

#[test]
fn bootstrap_runs_a_script_from_stdin() {
    let (sink, status) = run_bootstrap("Write-Output 'hello'\n$x = 2\n$x * 21");
    assert_eq!(sink.stdout, "hello\r\n42\r\n");
    assert_eq!(status.code, 0);
    assert!(sink.host_error_lines.is_empty());
}

#[test]
fn bootstrap_exit_code() {
    let (_, status) = run_bootstrap("'x'\nexit 3\n'not reached'");
    assert_eq!(status.code, 3);
    assert_eq!(status.reason, ExitReason::Exit);
}

#[test]
fn bootstrap_throw_is_exit_1_with_a_formatted_error() {
    let (sink, status) = run_bootstrap("'before'\nthrow 'boom'\n'after'");
    assert_eq!(status.code, 1);
    assert_eq!(sink.stdout, "before\r\n");
    let text = sink.host_error_lines.join("\n");
    assert!(
        text.starts_with("boom\r\nAt line:2 char:6\r\n+ throw <<<<  'boom'\r\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "    + CategoryInfo          : OperationStopped: (boom:String) [], RuntimeException"
        ),
        "{text}"
    );
    assert!(
        text.contains("    + FullyQualifiedErrorId : boom"),
        "{text}"
    );
}

#[test]
fn bootstrap_non_terminating_errors_stop_the_script() {
    let (sink, status) = run_bootstrap("Fail-Thing\n'not reached'");
    assert_eq!(status.code, 1);
    assert_eq!(sink.stdout, "");
    let text = sink.host_error_lines.join("\n");
    assert!(text.starts_with("Fail-Thing : Command execution stopped because the preference variable \"ErrorActionPreference\" or common parameter is set to Stop: The thing was not found."), "{text}");
    assert!(
        text.contains("FullyQualifiedErrorId : ThingNotFound,Test.Commands.FailThing"),
        "{text}"
    );
    // Tolerated locally.
    let (sink, status) = run_bootstrap("Fail-Thing -ErrorAction SilentlyContinue\n'reached'");
    assert_eq!(
        (status.code, sink.stdout.as_str()),
        (0, "after error\r\nreached\r\n")
    );
}

#[test]
fn bootstrap_unicode_round_trip() {
    // U+2019 is a single quote to PowerShell: doubled inside a single-quoted string.
    let (sink, status) = run_bootstrap("'こんにちは ’’quoted’’' + \" $([char]0x263A)\"");
    assert_eq!(status.code, 0);
    assert_eq!(sink.stdout, "こんにちは ’quoted’ ☺\r\n");
}

#[test]
fn bootstrap_syntax_error_in_the_script() {
    let (sink, status) = run_bootstrap("if ($x) {");
    assert_eq!(status.code, 1);
    let text = sink.host_error_lines.join("\n");
    assert!(text.starts_with("Exception calling \"Create\" with \"1\" argument(s): \"Missing closing '}' in statement block.\""), "{text}");
}

#[test]
fn output_formatting() {
    assert_eq!(
        out("1; 'a'; $true; $false; $null; 2.5; 1/3; 1e20"),
        "1\na\nTrue\nFalse\n2.5\n0.333333333333333\n1E+20\n"
    );
    assert_eq!(out("@(1, @(2, 3))"), "1\n2\n3\n");
    assert_eq!(
        out("New-Object PSObject -Property @{Name = 'x'; LongName = 1}"),
        "\nName     : x\nLongName : 1\n\n"
    );
    assert_eq!(
        out("@{a = 1}"),
        "\nName                           Value\n----                           -----\na                              1\n\n"
    );
    assert_eq!(
        out("[int]::MaxValue + 1; [long]::MaxValue + 1"),
        "2147483648\n9.22337203685478E+18\n"
    );
}

#[test]
fn unknown_command_text() {
    let (sink, status) = run("fake cmdlet");
    assert_eq!(status.code, 1);
    let e = &sink.errors[0];
    assert_eq!(
        e.format_v2(),
        "The term 'fake' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\n\
         At line:1 char:5\n\
         + fake <<<<  cmdlet\n    \
         + CategoryInfo          : ObjectNotFound: (fake:String) [], CommandNotFoundException\n    \
         + FullyQualifiedErrorId : CommandNotFoundException"
    );
}

#[test]
fn statement_terminating_errors_continue_without_handlers() {
    let (sink, status) = run("fake\n'next'");
    assert_eq!(sink.stdout, "next\r\n");
    assert_eq!(sink.errors.len(), 1);
    assert_eq!(status.code, 0);
    let (sink, status) = run("$ErrorActionPreference = 'Stop'\nfake\n'next'");
    assert_eq!((sink.stdout.as_str(), status.code), ("", 1));
}

#[test]
fn parameter_binding_errors() {
    let e = first_error("Get-Thing -Bogus 1");
    assert_eq!(
        e.message,
        "A parameter cannot be found that matches parameter name 'Bogus'."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "NamedParameterNotFound,Test.Commands.GetThing"
    );
    assert_eq!(e.category, ErrorCategory::InvalidArgument);
    assert_eq!(e.reason(), "ParameterBindingException");
    assert_eq!(
        e.category_info(),
        "InvalidArgument: (:) [Get-Thing], ParameterBindingException"
    );
    assert!(e.format_v2().starts_with("Get-Thing : A parameter cannot be found that matches parameter name 'Bogus'.\nAt line:1 char:17\n+ Get-Thing -Bogus <<<<  1\n"), "{}", e.format_v2());

    let e = first_error("Get-Thing -Count abc");
    assert_eq!(
        e.message,
        "Cannot bind parameter 'Count'. Cannot convert value \"abc\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\""
    );
    assert!(
        e.fully_qualified_error_id
            .starts_with("CannotConvertArgumentNoMessage,")
    );

    let e = first_error("Set-Thing -Value 1");
    assert_eq!(
        e.message,
        "Cannot process command because of one or more missing mandatory parameters: Identity."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "MissingMandatoryParameter,Test.Commands.SetThing"
    );

    let e = first_error("Get-Server -S x");
    assert_eq!(
        e.message,
        "Parameter cannot be processed because the parameter name 'S' is ambiguous. Possible matches include: -Server -Status."
    );
    let e = first_error("Get-Thing a b");
    assert_eq!(
        e.message,
        "A positional parameter cannot be found that accepts argument 'b'."
    );
    let e = first_error("Get-Thing -Name");
    assert_eq!(
        e.message,
        "Missing an argument for parameter 'Name'. Specify a parameter of type 'System.String' and try again."
    );
    let e = first_error("Get-Thing -Name a -Name b");
    assert!(e.message.starts_with(
        "Cannot bind parameter because parameter 'Name' is specified more than once."
    ));
    let e = first_error("Get-Thing -ErrorAction Bogus");
    assert!(
        e.message.contains("due to invalid enumeration values"),
        "{}",
        e.message
    );
}

#[test]
fn parameter_binding_success() {
    assert_eq!(lines("(Get-Thing -na x -cou '5' -f).Count"), ["5"]);
    assert_eq!(
        lines("(Get-Thing x).Name; (Get-Thing -Force:$false).Force"),
        ["x", "False"]
    );
    assert_eq!(
        lines("$p = @{Name = 'splat'; Count = 3}; $t = Get-Thing @p; $t.Name; $t.Count"),
        ["splat", "3"]
    );
    assert_eq!(lines("Get-Thing -Name a | Set-Thing"), ["set a"]);
    assert_eq!(
        lines("'p1','p2' | ForEach-Object { Set-Thing $_ }"),
        ["set p1", "set p2"]
    );
    assert_eq!(out("Set-Thing x -WhatIf"), "What if: set x\n");
    assert_eq!(lines("(Get-Command Get-Thing).Parameters.Count"), ["4"]);
}

#[test]
fn member_access_on_results() {
    assert_eq!(lines("(Get-Thing -Name x).Name"), ["x"]);
    // PowerShell 2.0 has no member enumeration and no .Count on scalars.
    assert_eq!(out("@((Get-Thing -Name a), (Get-Thing -Name b)).Name"), "");
    assert_eq!(out("(5).Count"), "");
    assert_eq!(
        lines("@(Get-Thing).Count; (1,2).Count; 'abc'.Length"),
        ["1", "2", "3"]
    );
}

#[test]
fn non_terminating_errors_and_error_action() {
    let (sink, status) = run("Fail-Thing; 'next'");
    assert_eq!(sink.stdout, "after error\r\nnext\r\n");
    assert_eq!(sink.errors.len(), 1);
    assert_eq!(
        sink.errors[0].format_v2(),
        "Fail-Thing : The thing was not found.\nAt line:1 char:11\n+ Fail-Thing <<<< ; 'next'\n    + CategoryInfo          : ObjectNotFound: (x:String) [Fail-Thing], ThingNotFoundException\n    + FullyQualifiedErrorId : ThingNotFound,Test.Commands.FailThing"
    );
    assert_eq!(status.code, 0);
    let (sink, _) = run("Fail-Thing -ea SilentlyContinue; $Error.Count");
    assert_eq!(
        (sink.stdout.as_str(), sink.errors.len()),
        ("after error\r\n1\r\n", 0)
    );
    assert_eq!(
        lines(
            "try { Fail-Thing -ErrorAction Stop; 'no' } catch { 'caught: ' + $_.FullyQualifiedErrorId }"
        ),
        ["caught: ThingNotFound,Test.Commands.FailThing"]
    );
    assert_eq!(
        lines(
            "$ErrorActionPreference = 'Stop'; try { Write-Error 'bad' } catch { $_.Exception.Message }"
        ),
        [
            "Command execution stopped because the preference variable \"ErrorActionPreference\" or common parameter is set to Stop: bad"
        ]
    );
    assert_eq!(lines("Fail-Thing 2>$null; 'x'"), ["after error", "x"]);
    assert_eq!(
        lines("$r = Fail-Thing 2>&1; $r.Count; $r[1].FullyQualifiedErrorId"),
        ["2", "ThingNotFound,Test.Commands.FailThing"]
    );
    let (sink, _) = run("Throw-Thing; 'next'");
    assert_eq!(sink.stdout, "next\r\n");
    assert_eq!(sink.errors[0].message, "The thing broke.");
    // The last statement failing makes the exit code 1 (-Command's rule).
    let (_, status) = run("'a'; Fail-Thing");
    assert_eq!(status.code, 1);
}

#[test]
fn write_error_and_warning() {
    let (sink, _) = run(
        "Write-Error 'oops' -Category InvalidData -ErrorId Custom; Write-Warning 'careful'; Write-Verbose 'hidden'; Write-Verbose 'shown' -Verbose",
    );
    let e = &sink.errors[0];
    assert_eq!(e.message, "oops");
    assert_eq!(e.fully_qualified_error_id, "Custom");
    assert_eq!(
        e.category_info(),
        "InvalidData: (:) [Write-Error], WriteErrorException"
    );
    assert_eq!(sink.warnings, ["careful"]);
    assert_eq!(sink.verbose, ["shown"]);
}

#[test]
fn pipelines_and_builtins() {
    assert_eq!(
        lines("1..5 | Where-Object { $_ -gt 2 } | ForEach-Object { $_ * 2 }"),
        ["6", "8", "10"]
    );
    assert_eq!(
        lines("1..3 | % -Begin { 'b' } -Process { $_ } -End { 'e' }"),
        ["b", "1", "2", "3", "e"]
    );
    assert_eq!(
        lines("1..3 | % { 'b' } { $_ } { 'e' }"),
        ["b", "1", "2", "3", "e"]
    );
    assert_eq!(lines("5,3,9 | Sort-Object"), ["3", "5", "9"]);
    assert_eq!(
        lines("5,3,9 | sort -Descending | select -First 2"),
        ["9", "5"]
    );
    assert_eq!(lines("1..10 | Select-Object -Last 2"), ["9", "10"]);
    assert_eq!(
        lines("(1..4 | Measure-Object -Sum).Sum; (1..4 | Measure-Object).Count"),
        ["10", "4"]
    );
    assert_eq!(
        lines("'a','b' | % { Get-Thing -Name $_ } | Select-Object -ExpandProperty Name"),
        ["a", "b"]
    );
    assert_eq!(
        lines(
            "$o = Get-Thing -Name n | Select-Object Name, @{n='Twice'; e={$_.Name * 2}}; $o.Twice"
        ),
        ["nn"]
    );
    assert_eq!(lines("$x = 0; 1..3 | % { $x += $_ }; $x"), ["6"]);
    assert_eq!(
        lines("(1,1,2 | Group-Object | Sort-Object Count -Descending)[0].Name"),
        ["1"]
    );
    assert_eq!(out("'a' | Out-Null; 'b' | Out-String"), "b\n\n");
    assert_eq!(
        lines("$o = New-Object PSObject; $o | Add-Member NoteProperty Size 4; $o.Size"),
        ["4"]
    );
    assert_eq!(lines("Write-Output 1,2 | % { $_ + 1 }"), ["2", "3"]);
    assert_eq!(
        out("Write-Host 'a' 'b' -NoNewline; Write-Host '!'"),
        "a b!\n"
    );
    assert_eq!(
        lines(
            "$h = @{b = 2; a = 1}; $h.GetEnumerator() | Sort-Object Key | % { $_.Key + '=' + $_.Value }"
        ),
        ["a=1", "b=2"]
    );
}

#[test]
fn comparisons() {
    assert_eq!(lines("(1,2,3,2) -eq 2"), ["2", "2"]);
    assert_eq!(
        lines("'10' -eq 10; 10 -eq '10'; 10 -eq '10.0'; 'abc' -eq 'ABC'; 'abc' -ceq 'ABC'"),
        ["True", "True", "True", "True", "False"]
    );
    assert_eq!(
        lines("$null -eq $x; $x = 1,$null,2; ($x -eq $null).Count; $x -ne $null"),
        ["True", "1", "1", "2"]
    );
    assert_eq!(
        lines("'file.txt' -like '*.TXT'; 'a' -notlike 'b*'; 'x[1]' -like 'x`[1`]'"),
        ["True", "True", "True"]
    );
    assert_eq!(
        lines("if ('Server01' -match 'server(\\d+)') { $matches[1] }"),
        ["01"]
    );
    assert_eq!(
        lines("'abc' -match '(?<word>b)'; $matches.word"),
        ["True", "b"]
    );
    assert_eq!(
        lines("1,2,3 -contains '2'; 4 -notcontains 1; 1,2 -contains 2; 'a','b' -notcontains 'z'"),
        ["True", "True", "True", "True"]
    );
    assert_eq!(
        lines("$true -eq 'false'; 2 -gt 10; '2' -gt '10'; 5 -le 5.0"),
        ["True", "False", "True", "True"]
    );
    assert_eq!(
        lines(
            "'a' -is [string]; 5 -is [int]; 5 -isnot [string]; @() -is [array]; '5' -as [int]; 'x' -as [int]"
        ),
        ["True", "True", "True", "True", "5"]
    );
    let e = first_error("5 -lt 'abc'");
    assert!(
        e.message.starts_with("Could not compare \"5\" to \"abc\"."),
        "{}",
        e.message
    );
}

#[test]
fn operators() {
    let start = std::time::Instant::now();
    assert_eq!(lines("$s = 'x' * 1000000; $s.Length"), ["1000000"]);
    assert!(start.elapsed() < Duration::from_secs(5));
    let e = first_error("$s = 'x' * 1e12");
    assert_eq!(
        e.message,
        "Exception of type 'System.OutOfMemoryException' was thrown."
    );
    assert_eq!(
        lines("'a' + 1; 1 + '2'; 7 / 2; 6 / 2; 7 % 3; -5 + 2; 2 * '3'"),
        ["a1", "3", "3.5", "3", "1", "-3", "6"]
    );
    assert_eq!(
        lines("(@(1) + @(2, 3)).Count; (@{a=1} + @{b=2}).Count; ,1 * 3"),
        ["3", "2", "1", "1", "1"]
    );
    assert_eq!(
        lines(
            "'a,b,,c' -split ','; 'a b' -replace 'b', 'c'; 'John Smith' -replace '(\\w+) (\\w+)', '$2, $1'"
        ),
        ["a", "b", "", "c", "a c", "Smith, John"]
    );
    assert_eq!(
        lines("(1,2,3) -join '-'; -join ('a','b'); (-split ' a  b ').Count"),
        ["1-2-3", "ab", "2"]
    );
    assert_eq!(
        lines("'{0:N2}|{1,5}|{2:D3}|{0:F1}|{3:X}|{{}}' -f 3.14159, 'ab', 7, 255"),
        ["3.14|   ab|007|3.1|FF|{}"]
    );
    assert_eq!(
        lines("$i = 1; $i++; ++$i; $i; $i += 10; $i -= 2; $i *= 2; $i"),
        ["3", "22"]
    );
    assert_eq!(
        lines("$a = 1,2,3; $a[0]; $a[-1]; $a[0,2] -join ''; $a[1..2] -join ''"),
        ["1", "3", "13", "23"]
    );
    assert_eq!(
        lines(
            "$a = 1,2,3; $b = $a; $a[0] = 9; $a -join ''; $h = @{}; $h['k'] = 'v'; $h.k; $h.x = 1; $h.Count"
        ),
        ["923", "v", "2"]
    );
    assert_eq!(
        lines("[int]'5' + 1; [string]5 + 1; [bool]'false'; [long]::MinValue; [int]2.5; [int]3.5"),
        ["6", "51", "True", "-9223372036854775808", "2", "4"]
    );
    let e = first_error("[int]'abc'");
    assert_eq!(
        e.message,
        "Cannot convert value \"abc\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\""
    );
    let e = first_error("1/0");
    assert_eq!(e.message, "Attempted to divide by zero.");
    assert_eq!(
        lines("0x10 + 1kb; 1..3 -join ','; 3..1 -join ','"),
        ["1040", "1,2,3", "3,2,1"]
    );
}

#[test]
fn strings_and_methods() {
    assert_eq!(
        lines("$n = 'w'; \"a $n ${n} $($n.ToUpper()) `$n `t|\""),
        ["a w w W $n \t|"]
    );
    assert_eq!(
        lines(
            "'it''s'; 'a,b'.Split(',')[1]; ' x '.Trim(); 'abc'.Replace('b', 'x'); 'abc'.Contains('b'); 'abc'.StartsWith('a')"
        ),
        ["it's", "b", "x", "axc", "True", "True"]
    );
    assert_eq!(
        lines("'abcdef'.Substring(2, 3); 'abc'.IndexOf('c'); 'A'.ToLower(); 'abc'.GetType().Name"),
        ["cde", "2", "a", "String"]
    );
    assert_eq!(out("@'\nline 1\n'$x'\n'@"), "line 1\n'$x'\n");
    assert_eq!(out("$x = 'X'; @\"\nv=$x\n\"@"), "v=X\n");
    assert_eq!(
        lines(
            "[string]::Join(',', @(1,2)); [string]::IsNullOrEmpty(''); [Math]::Max(3, 7); [Environment]::NewLine.Length"
        ),
        ["1,2", "True", "7", "2"]
    );
    assert_eq!(
        lines(
            "$b = [Text.Encoding]::UTF8.GetBytes('hé'); $b.Length; [Convert]::ToBase64String($b); [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(' aMOp '))"
        ),
        ["3", "aMOp", "hé"]
    );
    assert_eq!(
        lines("[Text.Encoding]::Unicode.GetString([Text.Encoding]::Unicode.GetBytes('ü'))"),
        ["ü"]
    );
    assert_eq!(
        lines("$env:COMPUTERNAME; $PSVersionTable.PSVersion.Major; $Host.Name"),
        ["EXCH01", "2", "ConsoleHost"]
    );
    let e = first_error("$null.Foo()");
    assert_eq!(
        e.message,
        "You cannot call a method on a null-valued expression."
    );
    let e = first_error("'x'.Bogus()");
    assert_eq!(
        e.message,
        "Method invocation failed because [System.String] doesn't contain a method named 'Bogus'."
    );
}

#[test]
fn functions() {
    assert_eq!(
        lines("function f($a, $b = 2) { $a + $b }; f 1; f 1 5; f -b 3 -a 1"),
        ["3", "6", "4"]
    );
    assert_eq!(
        lines(
            "function g { param([string]$Name = 'def', [switch]$Loud, [int]$N) if ($Loud) { $Name.ToUpper() } else { $Name }; $N }; g; g -Loud x -N '4'"
        ),
        ["def", "0", "X", "4"]
    );
    assert_eq!(
        lines("function h { $args.Count; $args[0] }; h a b"),
        ["2", "a"]
    );
    assert_eq!(lines("function r { return 5; 'no' }; r"), ["5"]);
    assert_eq!(
        lines("function p { process { $_ * 10 } }; 1,2 | p"),
        ["10", "20"]
    );
    assert_eq!(
        lines("function s { $input | % { $_ + 1 } }; 1,2 | s"),
        ["2", "3"]
    );
    assert_eq!(lines("filter dbl { $_ * 2 }; 1,2 | dbl"), ["2", "4"]);
    assert_eq!(
        lines("function fact($n) { if ($n -le 1) { 1 } else { $n * (fact ($n - 1)) } }; fact 10"),
        ["3628800"]
    );
    assert_eq!(
        lines("$x = 1; function set-x { $x = 2; $script:y = 3 }; set-x; $x; $y"),
        ["1", "3"]
    );
    assert_eq!(
        lines("$sb = { param($v) $v * 3 }; & $sb 2; $sb.Invoke(3)[0]; . { $z = 7 }; $z"),
        ["6", "9", "7"]
    );
    assert_eq!(lines("& 'Write-Output' hi"), ["hi"]);
    let e = first_error("function m { param([Parameter(Mandatory=$true)]$Name) $Name }; m");
    assert_eq!(
        e.message,
        "Cannot process command because of one or more missing mandatory parameters: Name."
    );
    let e = first_error("function deep { deep }; deep");
    assert!(
        e.message
            .starts_with("The script failed due to call depth overflow."),
        "{}",
        e.message
    );
    assert_eq!(
        lines(
            "function a2 { [CmdletBinding()] param([Parameter(ValueFromPipeline=$true)]$In) process { \"<$In>\" } }; 1,2 | a2"
        ),
        ["<1>", "<2>"]
    );
}

#[test]
fn control_flow() {
    assert_eq!(
        lines("foreach ($i in 1..5) { if ($i -eq 2) { continue }; if ($i -eq 4) { break }; $i }"),
        ["1", "3"]
    );
    assert_eq!(
        lines("for ($i = 0; $i -lt 3; $i++) { $i }"),
        ["0", "1", "2"]
    );
    assert_eq!(
        lines("$i = 0; while ($i -lt 2) { $i++; $i }; do { $i-- } until ($i -le 0); $i"),
        ["1", "2", "0"]
    );
    assert_eq!(
        lines(
            ":o foreach ($a in 1,2) { foreach ($b in 1,2) { if ($b -eq 2) { continue o }; \"$a$b\" } }"
        ),
        ["11", "21"]
    );
    assert_eq!(
        lines("if ($false) { 1 } elseif (0) { 2 } else { 3 }"),
        ["3"]
    );
    // PowerShell 2.0 runs a foreach body once for $null.
    assert_eq!(lines("foreach ($n in $null) { 'once' }"), ["once"]);
}

#[test]
fn try_catch_finally_trap() {
    assert_eq!(
        lines("try { throw 'x' } catch { 'c:' + $_ } finally { 'f' }"),
        ["c:x", "f"]
    );
    assert_eq!(
        lines(
            "try { fake } catch [System.Management.Automation.CommandNotFoundException] { 'typed' } catch { 'any' }"
        ),
        ["typed"]
    );
    assert_eq!(
        lines("try { 1/0 } catch [System.IO.IOException] { 'io' } catch { $_.Exception.Message }"),
        ["Attempted to divide by zero."]
    );
    assert_eq!(
        lines("try { try { throw 'in' } finally { 'f1' } } catch { 'outer ' + $_ }"),
        ["f1", "outer in"]
    );
    assert_eq!(
        lines("trap { 'trapped ' + $_; continue }; 'a'; throw 'boom'; 'b'"),
        ["a", "trapped boom", "b"]
    );
    let (sink, status) = run("trap { 'handled' }; throw 'boom'; 'b'");
    assert_eq!(sink.stdout.replace("\r\n", "\n"), "handled\nb\n");
    assert_eq!(sink.errors.len(), 1);
    assert_eq!(status.code, 0);
    let (sink, status) = run("trap { break }; throw 'boom'; 'b'");
    assert_eq!((sink.stdout.as_str(), status.code), ("", 1));
    let (sink, status) = run("throw 'top'");
    assert_eq!(status.code, 1);
    assert_eq!(sink.errors[0].fully_qualified_error_id, "top");
    assert_eq!(
        lines("try { Throw-Thing } catch { $_.CategoryInfo.Reason; $_.Exception.GetType().Name }"),
        ["ThingBrokeException", "ThingBrokeException"]
    );
}

#[test]
fn time_is_the_hosts() {
    let (sink, status, host) = run_with(
        "Start-Sleep 30; Start-Sleep -Milliseconds 500; Restart-Store",
        TestHost::default(),
    );
    assert_eq!((sink.stdout.as_str(), status.code), ("restarted\r\n", 0));
    assert_eq!(host.slept, Duration::from_millis(330_500));
}

#[test]
fn stop_signal_and_step_budget() {
    let limits = Limits {
        step_budget: Some(10_000),
        ..Limits::default()
    };
    let mut interp = Interpreter::with_limits(TestHost::default(), limits);
    let mut sink = CollectSink::default();
    let status = interp.run("while ($true) { }", None, &mut sink);
    assert_eq!(status.reason, ExitReason::Stopped);

    let mut interp = Interpreter::new(TestHost::default());
    let stop = interp.stop_signal();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        stop.stop();
    });
    let status = interp.run("while ($true) { $x = 1 }", None, &mut sink);
    assert_eq!(status.reason, ExitReason::Stopped);
    handle.join().expect("stopper");
}

#[test]
fn parse_errors_are_reported() {
    let (sink, status) = run("1 +");
    assert_eq!(status.code, 1);
    assert_eq!(
        sink.errors[0].fully_qualified_error_id,
        "ExpectedExpression"
    );
    assert_eq!(sink.errors[0].category, ErrorCategory::ParserError);
}

#[test]
fn output_streams_incrementally() {
    struct Counting {
        writes: usize,
    }
    impl OutputSink for Counting {
        fn stdout(&mut self, _: &str) {
            self.writes += 1;
        }
        fn error(&mut self, _: &ErrorRecord) {}
        fn host_error_line(&mut self, _: &str) {}
    }
    let mut interp = Interpreter::new(TestHost::default());
    let mut sink = Counting { writes: 0 };
    interp.run("& { foreach ($i in 1..1000) { 'line' } }", None, &mut sink);
    // Each string and its line break, as they are produced.
    assert_eq!(sink.writes, 2000);
}

/// Structural equality for the literal round trip.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Long(x), Value::Long(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same(p, q))
        }
        (Value::Hashtable(x), Value::Hashtable(y)) => {
            let (ex, ey) = (x.entries(), y.entries());
            ex.len() == ey.len()
                && ex
                    .iter()
                    .zip(ey.iter())
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => false,
    }
}

fn arb_string() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('\''),
        Just('\u{2018}'),
        Just('\u{2019}'),
        Just('\u{201A}'),
        Just('\u{201B}'),
        Just('"'),
        Just('$'),
        Just('`'),
        Just('\n'),
        Just('\r'),
        Just('\0'),
        Just('#'),
        Just('@'),
        Just('('),
        Just('{'),
        Just('}'),
        Just(';'),
        Just('|'),
        Just(' '),
        Just('こ'),
    ];
    proptest::collection::vec(prop_oneof![3 => special, 2 => any::<char>()], 0..12)
        .prop_map(|v| v.into_iter().collect())
}

fn arb_arg() -> impl Strategy<Value = exctl_pwsh::Arg> {
    use exctl_pwsh::Arg;
    let leaf = prop_oneof![
        Just(Arg::Null),
        any::<bool>().prop_map(Arg::Bool),
        any::<i64>().prop_map(Arg::Int),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1),
            Just(i64::from(i32::MIN))
        ]
        .prop_map(Arg::Int),
        arb_string().prop_map(Arg::Str),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        proptest::collection::vec(inner, 0..4).prop_map(Arg::List)
    })
}

fn arb_literal() -> impl Strategy<Value = literal::Value> {
    let leaf = prop_oneof![
        Just(literal::Value::Null),
        any::<bool>().prop_map(literal::Value::Bool),
        any::<i64>().prop_map(literal::Value::Int),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(i64::from(i32::MIN)),
            Just(i64::from(i32::MAX) + 1)
        ]
        .prop_map(literal::Value::Int),
        arb_string().prop_map(literal::Value::Str),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(literal::Value::Array),
            proptest::collection::vec((arb_string(), inner), 0..4).prop_map(|entries| {
                let mut seen: Vec<String> = Vec::new();
                let unique = entries
                    .into_iter()
                    .filter(|(k, _)| {
                        let lower = k.to_lowercase();
                        let fresh = !seen.contains(&lower);
                        seen.push(lower);
                        fresh
                    })
                    .collect();
                literal::Value::Hashtable(unique)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every literal reads back as exactly its value, in expression and argument mode.
    #[test]
    fn literals_round_trip(v in arb_literal()) {
        let lit = literal(&v);
        let script = format!("$x = {lit}\nCapture-Value -Value $x\nCapture-Value {lit}\n");
        let host = TestHost::default();
        let captured = host.captured.clone();
        let (sink, status, _) = run_with(&script, host);
        prop_assert!(sink.errors.is_empty(), "{lit}: {:?}", sink.errors);
        prop_assert_eq!(status.code, 0);
        let got = captured.lock().map(|c| c.clone()).unwrap_or_default();
        let expected = Value::from(&v);
        prop_assert_eq!(got.len(), 2);
        for g in &got {
            prop_assert!(same(g, &expected), "{} evaluated to {:?}, expected {:?}", lit, g, expected);
        }
    }

    /// A command's every argument binds as exactly its value: hostile strings stay one
    /// string, lists (also of one element or none) stay arrays, whatever the numbers.
    #[test]
    fn command_arguments_round_trip(a in arb_arg()) {
        let cmd = exctl_pwsh::Command::new("Capture-Value").param("Value", a.clone());
        let script = format!("{cmd}\n$null = {cmd}\n");
        let host = TestHost::default();
        let captured = host.captured.clone();
        let (sink, status, _) = run_with(&script, host);
        prop_assert!(sink.errors.is_empty(), "{}: {:?}", cmd, sink.errors);
        prop_assert_eq!(status.code, 0);
        let got = captured.lock().map(|c| c.clone()).unwrap_or_default();
        let expected = Value::from(&a.to_value());
        prop_assert_eq!(got.len(), 2);
        for g in &got {
            prop_assert!(same(g, &expected), "{} bound {:?}, expected {:?}", cmd, g, expected);
        }
    }

    /// No script, however malformed, panics the parser or the interpreter.
    #[test]
    fn arbitrary_scripts_never_panic(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("$x"), Just("("), Just(")"), Just("{"), Just("}"), Just("@("), Just("@{"),
                Just("'a'"), Just("\"$x\""), Just("-eq"), Just(" "), Just("\n"), Just(";"),
                Just("|"), Just("Get-Thing"), Just("-Name"), Just("1"), Just(","), Just(".Length"),
                Just("[int]"), Just("::MaxValue"), Just("="), Just("$("), Just("%"), Just("?"),
                Just("foreach ($i in 1..3)"), Just("while ($true)"), Just("function f"), Just("f"),
                Just("try"), Just("catch"), Just("throw"), Just("+"), Just("-"), Just("*"),
                Just("'x' * 100"), Just("trap"), Just("break"), Just("exit"), Just("$_"), Just("$x = $x + $x"),
                Just("Start-Sleep 1"), Just("[ScriptBlock]::Create('f')"), Just("&"), Just("."),
            ],
            0..30,
        )
    ) {
        let script = parts.concat();
        let limits = Limits { step_budget: Some(20_000), stack_size: Some(64 << 20), max_string_bytes: 1 << 20, ..Limits::default() };
        let mut interp = Interpreter::with_limits(TestHost::default(), limits);
        let mut sink = CollectSink::default();
        let _ = interp.run(&script, None, &mut sink);
    }
}

#[test]
fn host_parameter_types_sets_and_input_modes() {
    assert_eq!(
        lines(
            "Set-Policy p -MaxConcurrency $null; Set-Policy p -MaxConcurrency '20'; Set-Policy p"
        ),
        ["null", "Long(20)", "unset"]
    );
    let e = first_error("Set-Policy p -MaxConcurrency -1");
    assert!(e.message.starts_with("Cannot bind parameter 'MaxConcurrency'. Cannot convert value \"-1\" to type \"System.UInt32\"."), "{}", e.message);
    assert_eq!(
        lines("Get-Mailbox a; Get-Mailbox -Anr b; 'c' | Get-Mailbox"),
        ["Identity:a", "AnrSet:b", "Identity:c"]
    );
    let e = first_error("Get-Mailbox -Identity a -Anr b");
    assert_eq!(
        e.message,
        "Parameter set cannot be resolved using the specified named parameters."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "AmbiguousParameterSet,Test.Commands.GetMailbox"
    );
    assert_eq!(lines("1..4 | Export-All"), ["4"]);
    assert_eq!(lines("1, '2' | Double-It"), ["Int(1)", "Int(2)"]);
    let e = first_error("'x' | Double-It");
    assert!(
        e.message
            .starts_with("The input object cannot be bound to any parameters"),
        "{}",
        e.message
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "InputObjectNotBound,Test.Commands.DoubleIt"
    );
    let e = first_error("Double-It");
    assert_eq!(
        e.message,
        "Cannot process command because of one or more missing mandatory parameters: Number."
    );
}

#[test]
fn error_and_out_variables() {
    let (sink, _) = run(
        "Fail-Thing -ErrorVariable ev -ErrorAction SilentlyContinue -OutVariable ov; $ev.Count; $ev[0].FullyQualifiedErrorId; $ov",
    );
    assert!(sink.errors.is_empty());
    assert_eq!(
        sink.stdout.replace("\r\n", "\n"),
        "after error\n1\nThingNotFound,Test.Commands.FailThing\nafter error\n"
    );
    assert_eq!(
        lines(
            "Fail-Thing -ev +e 2>$null | Out-Null; Fail-Thing -ev +e 2>$null | Out-Null; $e.Count"
        ),
        ["2"]
    );
}

#[test]
fn large_output_is_written_once() {
    #[derive(Default)]
    struct Sizes(Vec<usize>);
    impl OutputSink for Sizes {
        fn stdout(&mut self, text: &str) {
            self.0.push(text.len());
        }
        fn error(&mut self, _: &ErrorRecord) {}
        fn host_error_line(&mut self, _: &str) {}
    }
    let mut interp = Interpreter::new(TestHost::default());
    let mut sink = Sizes::default();
    let status = interp.run("'x' * 20MB", None, &mut sink);
    assert_eq!(status.code, 0);
    assert_eq!(sink.0, [20 << 20, 2]);
}

#[test]
fn format_list() {
    assert_eq!(
        out("Get-Thing -Name a | Format-List Name, Count"),
        "\nName  : a\nCount : 0\n\n"
    );
    assert_eq!(
        lines("(Get-Thing -Name a | fl Name | Out-String).Trim()"),
        ["Name : a"]
    );
}
