//! `powershell.exe` on the simulated host: the interpreter bound to the Exchange model
//! (directly, through `SimHost`), and the program behind WinRS (streaming, timeouts,
//! termination, CLIXML on stderr, the stdin runner).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use exctl_pwsh_interp::{CollectSink, Interpreter};
use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, ScaledClock, Sp};
use exctl_sim::pshost::SimHost;
use exctl_sim::{Account, ExchangeRole, HostOptions, SimConfig, exchange_host};

use common::*;

fn org(sp: Sp) -> OrgHandle {
    org_at(sp, 0.001)
}

/// An organization whose simulated time runs `scale` real seconds per second.
fn org_at(sp: Sp, scale: f64) -> OrgHandle {
    let clock = ClockRef(Arc::new(ScaledClock::with_scale(scale)));
    OrgHandle::new(ExchangeOrg::seed_named(sp, clock, "EXCH01"))
}

fn run(org: &OrgHandle, script: &str) -> (i32, CollectSink) {
    let host = SimHost::new(org.clone(), HostOptions::default(), &[]);
    let mut it = Interpreter::new(host);
    let mut sink = CollectSink::default();
    let status = it.run(script, None, &mut sink);
    (status.code, sink)
}

const SNAPIN: &str = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010\n";

#[test]
fn exchange_cmdlets_exist_only_after_the_snapin() {
    let o = org(Sp::Sp3);
    let (code, sink) = run(&o, "Get-ImapSettings");
    assert_eq!(code, 1);
    assert_eq!(sink.errors.len(), 1);
    let e = &sink.errors[0];
    assert!(
        e.message
            .starts_with("The term 'Get-ImapSettings' is not recognized"),
        "{e:?}"
    );
    assert_eq!(e.fully_qualified_error_id, "CommandNotFoundException");

    let (code, sink) = run(
        &o,
        &format!(
            "{SNAPIN}$s = Get-ImapSettings -Server EXCH01\n$s.MaxConnectionsPerUser\n@($s).Count\n@($s)[0].Server\n[string]$s.Identity"
        ),
    );
    assert_eq!(code, 0, "{:?}", sink.errors);
    assert_eq!(sink.stdout, "16\r\n1\r\nEXCH01\r\nEXCH01\\1\r\n");
    let state = o.lock().state_section();
    assert_eq!(state["exchange_sessions"], 1);
    assert_eq!(state["cmdlets"]["Get-ImapSettings"], 1);
    assert_eq!(state["cmdlets"]["Add-PSSnapin"], 1);
}

#[test]
fn a_second_snapin_load_is_an_error_and_unknown_snapins_are_refused() {
    let o = org(Sp::Sp3);
    let (code, sink) = run(
        &o,
        &format!("{SNAPIN}{SNAPIN}Add-PSSnapin Nope -ErrorAction SilentlyContinue\n'after'"),
    );
    assert_eq!(code, 0);
    assert_eq!(sink.stdout, "after\r\n");
    assert_eq!(sink.errors.len(), 1, "{:?}", sink.errors);
    assert!(
        sink.errors[0]
            .message
            .contains("because it is already added")
    );
    assert_eq!(o.lock().state_section()["exchange_sessions"], 1);
}

#[test]
fn model_errors_follow_error_action() {
    let o = org(Sp::Sp3);
    // Not found is non-terminating: SilentlyContinue hides it, the script goes on.
    let (code, sink) = run(
        &o,
        &format!(
            "{SNAPIN}$p = Get-ThrottlingPolicy -Identity Nope -ErrorAction SilentlyContinue\nif ($null -eq $p) {{ 'none' }}"
        ),
    );
    assert_eq!((code, sink.stdout.as_str()), (0, "none\r\n"));
    assert!(sink.errors.is_empty());
    // With Stop it is terminating and catchable, with Exchange's text.
    let (code, sink) = run(
        &o,
        &format!(
            "{SNAPIN}try {{ Get-Mailbox -Identity nobody -ErrorAction Stop; 'no' }} catch {{ $_.Exception.Message }}"
        ),
    );
    assert_eq!(code, 0, "{:?}", sink.errors);
    // PowerShell 2.0 wraps a non-terminating error made terminating by -ErrorAction Stop.
    assert_eq!(
        sink.stdout,
        "Command execution stopped because the preference variable \"ErrorActionPreference\" or common parameter is set to Stop: The operation couldn't be performed because object 'nobody' couldn't be found on 'dc01.contoso.local'.\r\n"
    );
    // Written, with its category and id, when nothing handles it.
    let (_, sink) = run(&o, &format!("{SNAPIN}Get-Mailbox -Identity nobody\n'next'"));
    assert_eq!(sink.stdout, "next\r\n");
    let e = &sink.errors[0];
    assert_eq!(e.command_name.as_deref(), Some("Get-Mailbox"));
    assert_eq!(e.reason(), "ManagementObjectNotFoundException");
    assert!(
        e.fully_qualified_error_id
            .ends_with(",Microsoft.Exchange.Management.RecipientTasks.GetMailbox"),
        "{}",
        e.fully_qualified_error_id
    );
    // An unknown parameter is a binding error (terminating for the statement).
    let (code, sink) = run(&o, &format!("{SNAPIN}Set-ImapSettings -Bogus 1"));
    assert_eq!(code, 1);
    assert!(
        sink.errors[0]
            .message
            .contains("A parameter cannot be found that matches parameter name 'Bogus'."),
        "{:?}",
        sink.errors
    );
}

#[test]
fn rtm_refuses_sp1_parameters() {
    let o = org(Sp::Rtm);
    let (code, sink) = run(
        &o,
        &format!("{SNAPIN}New-ThrottlingPolicy -Name T -CPAMaxConcurrency 5"),
    );
    assert_eq!(code, 1);
    assert!(
        sink.errors[0]
            .message
            .contains("parameter name 'CPAMaxConcurrency'"),
        "{:?}",
        sink.errors
    );
}

/// A script using PowerShell 3.0's `-in` is refused whole, as Exchange 2010's PowerShell
/// 2.0 refuses it: not even the statements before it run.
#[test]
fn a_script_with_powershell_3_operators_changes_nothing() {
    let o = org(Sp::Sp3);
    let (code, sink) = run(
        &o,
        &format!(
            "{SNAPIN}Set-ImapSettings -MaxConnectionsPerUser 40\nif ('EXCH01' -in @('EXCH01')) {{ Write-Output yes }}"
        ),
    );
    assert_eq!(code, 1);
    assert_eq!(
        sink.errors[0].message,
        "You must provide a value expression on the right-hand side of the '-' operator."
    );
    let (_, sink) = run(
        &o,
        &format!("{SNAPIN}(Get-ImapSettings).MaxConnectionsPerUser"),
    );
    assert_eq!(sink.stdout.trim(), "16");
}

#[test]
fn registry_keys_answer_get_value_kind_and_get_value() {
    let o = org(Sp::Sp3);
    let key = "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem";
    let script = format!(
        "New-ItemProperty -Path '{key}' -Name 'Maximum Allowed Service Sessions Per User' -PropertyType DWord -Value 80 -Force | Out-Null\n\
         New-ItemProperty -Path '{key}' -Name 'E' -PropertyType ExpandString -Value '%SystemRoot%\\x' | Out-Null\n\
         if (Test-Path -Path '{key}') {{ 'exists' }}\n\
         $v = Get-ItemProperty -Path '{key}' -Name 'Maximum Allowed Service Sessions Per User' -ErrorAction SilentlyContinue\n\
         $v.'Maximum Allowed Service Sessions Per User'\n\
         $k = Get-Item -Path '{key}'\n\
         [string]$k.GetValueKind('Maximum Allowed Service Sessions Per User')\n\
         [string]$k.GetValueKind('E')\n\
         $k.GetValue('E')\n\
         $k.GetValue('E', $null, 'DoNotExpandEnvironmentNames')\n\
         $null -eq $k.GetValue('nope')\n\
         try {{ $k.GetValueKind('nope') }} catch {{ $_.Exception.Message }}"
    );
    let (code, sink) = run(&o, &script);
    assert_eq!(code, 0, "{:?}", sink.errors);
    assert_eq!(
        sink.stdout,
        "exists\r\n80\r\nDWord\r\nExpandString\r\nC:\\Windows\\x\r\n%SystemRoot%\\x\r\nTrue\r\n\
         Exception calling \"GetValueKind\" with \"1\" argument(s): \"The system cannot find the file specified.\"\r\n"
    );
    let state = o.lock().state_section();
    assert_eq!(state["cmdlets"]["New-ItemProperty"], 2);
    assert_eq!(state["cmdlets"]["Get-Item"], 1);
}

#[test]
fn restart_service_waits_on_the_scaled_clock() {
    let o = org(Sp::Sp3);
    // The Information Store takes 45 simulated seconds: 45 ms at this scale.
    let started = Instant::now();
    let (code, sink) = run(
        &o,
        "Restart-Service -Name MSExchangeIS -Force -WarningAction SilentlyContinue\n[string](Get-Service -Name MSExchangeIS).Status",
    );
    assert_eq!(code, 0, "{:?}", sink.errors);
    assert_eq!(sink.stdout, "Running\r\n");
    assert!(started.elapsed() >= Duration::from_millis(40));
    let state = o.lock().state_section();
    assert_eq!(
        state["servers"][0]["services"]["MSExchangeIS"]["restarts"],
        1
    );
    assert_eq!(state["cmdlets"]["Restart-Service"], 1);
}

#[test]
fn pipelines_bind_exchange_objects_by_value() {
    let o = org(Sp::Sp3);
    let (code, sink) = run(
        &o,
        &format!(
            "{SNAPIN}New-ThrottlingPolicy -Name P | Out-Null\n\
             Get-Mailbox -Identity uccx-agent | Set-Mailbox -ThrottlingPolicy P\n\
             [string](Get-ThrottlingPolicyAssociation -Identity uccx-agent).ThrottlingPolicyId"
        ),
    );
    assert_eq!(code, 0, "{:?}", sink.errors);
    assert!(sink.stdout.trim_end().ends_with('P'), "{}", sink.stdout);
}

// ---------------------------------------------------------------------------------------
// Through WinRS.

async fn exchange_sim(config: SimConfig) -> (exctl_sim::RunningSim, OrgHandle) {
    exchange_sim_at(config, 0.001).await
}

async fn exchange_sim_at(config: SimConfig, scale: f64) -> (exctl_sim::RunningSim, OrgHandle) {
    let o = org_at(Sp::Sp3, scale);
    let exec = exchange_host(&config, o.clone());
    (start_with(config, exec).await, o)
}

/// A host set up for delegation (no double hop), reached with Basic as its local
/// Administrator: the scripts here load the snap-in and run its cmdlets.
fn https() -> SimConfig {
    local(SimConfig {
        tls: true,
        delegation: true,
        ..SimConfig::default()
    })
}

async fn send_stdin(
    c: &reqwest::Client,
    sim: &exctl_sim::RunningSim,
    shell: &str,
    cmd: &str,
    data: &[u8],
) {
    use base64::Engine;
    let body = format!(
        "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"{cmd}\" End=\"true\">{}</rsp:Stream></rsp:Send>",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    let (status, body) = post(
        c,
        sim,
        &envelope(SEND, SHELL_URI, Some(shell), &[], "PT20S", &body),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_stdin_runner_bootstrap_runs_scripts_and_reports_errors_as_clixml() {
    let (sim, o) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let script = "Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010\n\
                  Write-Output ('imap ' + (Get-ImapSettings).MaxConnectionsPerUser)\n\
                  Get-Nothing";
    let inv = exctl_pwsh::runner::invocation(script);
    let args: Vec<&str> = inv.arguments.iter().map(String::as_str).collect();
    let (_, body) = run_command(&c, &sim, &shell, &inv.command, &args).await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    send_stdin(&c, &sim, &shell, &cmd, &inv.stdin).await;
    let (out, err, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(String::from_utf8_lossy(&out), "imap 16\r\n");
    assert_eq!(code, 1);
    // Code page 437; the error text is ASCII.
    let err = String::from_utf8(err).expect("ASCII stderr");
    assert!(err.starts_with("#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">"), "{err}");
    assert!(err.ends_with("</Objs>"), "{err}");
    let decoded = exctl_pwsh::clixml::decode_stderr(&err).expect("decodes");
    assert_eq!(decoded.errors.len(), 1, "{decoded:?}");
    let e = &decoded.errors[0];
    assert!(
        e.message
            .contains("The term 'Get-Nothing' is not recognized as the name of a cmdlet"),
        "{e:?}"
    );
    assert_eq!(
        e.fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException")
    );
    assert_eq!(
        e.category.as_deref(),
        Some("ObjectNotFound: (Get-Nothing:String) [], CommandNotFoundException")
    );
    let state = o.lock().state_section();
    assert_eq!(state["powershell_processes"], 1);
    assert_eq!(state["exchange_sessions"], 1);
}

#[tokio::test]
async fn written_error_records_decode_back_to_the_same_record() {
    let o = org(Sp::Sp3);
    // The record the interpreter reports, and the one decoded from what the process wrote.
    let script = "Get-Service -Name NoSuchService";
    let (_, sink) = run(&o, script);
    let original = sink.errors[0].clone();
    let config = https();
    let sim = start_with(config.clone(), exchange_host(&config, o.clone())).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let enc = exctl_pwsh::runner::encode_command(script);
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &["-NoProfile", "-EncodedCommand", &enc],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    let (_, err, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(code, 1);
    let decoded = exctl_pwsh::clixml::decode_stderr_bytes(&err).expect("decodes");
    assert_eq!(decoded.errors.len(), 1, "{decoded:?}");
    let e = &decoded.errors[0];
    assert_eq!(
        e.message,
        format!(
            "{} : {}",
            original.command_name.as_deref().unwrap_or(""),
            original.message
        )
    );
    assert_eq!(
        e.category.as_deref(),
        Some(original.category_info().as_str())
    );
    assert_eq!(
        e.fully_qualified_error_id.as_deref(),
        Some(original.fully_qualified_error_id.as_str())
    );
    assert_eq!(e.position, original.position_message("\n"));
}

#[tokio::test]
async fn plain_command_lines_write_plain_stderr_and_warnings_to_stdout() {
    let (sim, _) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &[
            "Write-Warning",
            "careful;",
            "Write-Error",
            "bad;",
            "Write-Host",
            "hi",
        ],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    let (out, err, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(String::from_utf8_lossy(&out), "WARNING: careful\r\nhi\r\n");
    let err = String::from_utf8_lossy(&err);
    assert!(err.contains(": bad\r\n"), "{err}");
    assert!(!err.contains("CLIXML"));
    assert_eq!(code, 0);
}

#[tokio::test]
async fn a_sleeping_script_times_out_receives_then_delivers() {
    // Real time: Start-Sleep sleeps on the host's clock.
    let (sim, _) = exchange_sim_at(
        SimConfig {
            max_timeout_ms: 500,
            ..https()
        },
        1.0,
    )
    .await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &[
            "-Command",
            "Write-Output",
            "before;",
            "Start-Sleep",
            "-Seconds",
            "2;",
            "Write-Output",
            "after",
        ],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    // Receive until Done: what was written before the sleep arrives first, then the
    // Receives time out while the script sleeps, then the rest arrives.
    let mut seen = Vec::new();
    let mut timeouts = 0;
    let code = loop {
        let (status, body) = post(&c, &sim, &receive_envelope(&shell, &cmd, "PT5S")).await;
        if status == 500 && body.contains("w:TimedOut") {
            timeouts += 1;
            seen.push("TimedOut".to_string());
            continue;
        }
        assert_eq!(status, 200, "{body}");
        for (name, data) in streams(&body) {
            if name == "stdout" && !data.is_empty() {
                // Output between two timeouts is one piece, however many Receives
                // carried it.
                let text = String::from_utf8_lossy(&data).into_owned();
                match seen.last_mut() {
                    Some(last) if last != "TimedOut" => last.push_str(&text),
                    _ => seen.push(text),
                }
            }
        }
        if let Some(code) = find_text(&body, "ExitCode") {
            break code;
        }
    };
    assert_eq!(code, "0");
    assert!(timeouts >= 2, "{seen:?}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("before\r\n"),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("after\r\n"),
        "{seen:?}"
    );
    let faults = sim.state().snapshot().faults;
    assert_eq!(
        faults.get("2150858793").copied(),
        Some(timeouts),
        "{faults:?}"
    );
}

/// The (stream name, bytes) of a ReceiveResponse.
fn streams(body: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let root = exctl_sim::xml::parse(body.as_bytes()).expect("response parses");
    let mut out = Vec::new();
    fn walk(el: &exctl_sim::xml::Element, out: &mut Vec<(String, Vec<u8>)>) {
        if el.name == "Stream" {
            let data = base64::engine::general_purpose::STANDARD
                .decode(el.text.trim())
                .unwrap_or_default();
            out.push((el.attr("Name").unwrap_or("").to_string(), data));
        }
        for c in &el.children {
            walk(c, out);
        }
    }
    walk(&root, &mut out);
    out
}

#[tokio::test]
async fn twenty_megabytes_of_output_stream_through() {
    let (sim, _) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &["-Command", "('x'", "*", "(20MB))"],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    let (out, err, code, receives) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(
        (code, err.len()),
        (0, 0),
        "{}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(out.len(), 20 * 1024 * 1024 + 2);
    assert!(receives > 100, "{receives}");
}

#[tokio::test]
async fn signal_terminate_stops_the_interpreter() {
    let (sim, o) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &[
            "-Command",
            "while",
            "($true)",
            "{",
            "Get-Service",
            "-Name",
            "WinRM",
            "|",
            "Out-Null",
            "}",
        ],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    // The loop stops: the count of Get-Service runs soon no longer grows.
    let count = || {
        o.lock().state_section()["cmdlets"]["Get-Service"]
            .as_u64()
            .unwrap_or(0)
    };
    // Terminate once the loop runs (its first Get-Service), not after a guessed delay.
    let started = std::time::Instant::now();
    while count() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the script never ran Get-Service"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let signal = envelope(
        SIGNAL,
        SHELL_URI,
        Some(&shell),
        &[],
        "PT20S",
        &format!(
            "<rsp:Signal CommandId=\"{cmd}\"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate</rsp:Code></rsp:Signal>"
        ),
    );
    let (status, body) = post(&c, &sim, &signal).await;
    assert_eq!(status, 200, "{body}");
    let mut stopped = false;
    for _ in 0..20 {
        let a = count();
        tokio::time::sleep(Duration::from_millis(250)).await;
        if count() == a {
            stopped = a > 0;
            break;
        }
    }
    assert!(stopped, "the script still runs after terminate");
}

#[tokio::test]
async fn unicode_round_trips_under_utf8_and_degrades_under_437() {
    let (sim, _) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let enc = exctl_pwsh::runner::encode_command("Write-Output 'こんにちは é'");
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &["-EncodedCommand", &enc],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    let (out, _, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    // The shell was created without WINRS_CODEPAGE: 437.
    assert_eq!((out, code), (b"????? \x82\r\n".to_vec(), 0));
}

#[tokio::test]
async fn scripts_from_stdin_and_the_interactive_logo() {
    let (sim, o) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    // `-Command -`: stdin is the script, run once it ends; variables live across lines.
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &["-NoLogo", "-Command", "-"],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    send_stdin(
        &c,
        &sim,
        &shell,
        &cmd,
        b"Write-Output a\r\n$x = 2\r\n$x * 3\r\n",
    )
    .await;
    let (out, err, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(
        (String::from_utf8_lossy(&out).as_ref(), err.len(), code),
        ("a\r\n6\r\n", 0, 0)
    );
    // No command at all: the logo first, then stdin as the script.
    let (_, body) = run_command(&c, &sim, &shell, "powershell", &[]).await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    send_stdin(&c, &sim, &shell, &cmd, b"'hi'\r\n").await;
    let (out, _, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(
        String::from_utf8_lossy(&out),
        "Windows PowerShell\r\nCopyright (C) 2009 Microsoft Corporation. All rights reserved.\r\n\r\nhi\r\n"
    );
    assert_eq!(code, 0);
    assert_eq!(o.lock().state_section()["powershell_processes"], 2);
}

#[tokio::test]
async fn a_bad_command_line_is_refused_like_powershell_exe() {
    let (sim, _) = exchange_sim(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(
        &c,
        &sim,
        &shell,
        "powershell.exe",
        &["-EncodedCommand", "%%%"],
    )
    .await;
    let cmd = find_text(&body, "CommandId").expect("CommandId");
    let (out, err, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(out.len(), 0);
    assert!(
        String::from_utf8_lossy(&err).contains("-EncodedCommand is not properly encoded"),
        "{}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(code, exctl_sim::powershell::EXIT_BAD_COMMAND_LINE);
}

/// The options of a process WinRM started on a host without delegation, for the
/// account `CONTOSO\Administrator` with `role`.
fn winrm_options(role: ExchangeRole) -> HostOptions {
    HostOptions {
        account: Some(Account {
            user: "CONTOSO\\Administrator".into(),
            password: "P@ssw0rd!".into(),
            dns_domain: "contoso.local".into(),
        }),
        double_hop: true,
        role,
        ..HostOptions::default()
    }
}

fn run_with(org: &OrgHandle, options: HostOptions, script: &str) -> (i32, CollectSink) {
    let host = SimHost::new(org.clone(), options, &[]);
    let mut it = Interpreter::new(host);
    let mut sink = CollectSink::default();
    let status = it.run(script, None, &mut sink);
    (status.code, sink)
}

/// An explicit credential's remote Exchange session, imported into the process.
const IMPORT: &str = "$c = New-Object System.Management.Automation.PSCredential -ArgumentList 'CONTOSO\\Administrator', (ConvertTo-SecureString 'P@ssw0rd!' -AsPlainText -Force)\n\
$s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri http://EXCH01/PowerShell/ -Authentication Kerberos -Credential $c\n\
$null = Import-PSSession $s\n";

/// Issue 15, the double hop: in a WinRM logon without delegation the snap-in loads, its
/// cmdlets fail on Active Directory with Exchange's ADInvalidCredentialException, and
/// Windows' own cmdlets keep working.
#[test]
fn without_delegation_the_snapins_cmdlets_fail_on_active_directory() {
    let o = org(Sp::Sp3);
    let script = format!(
        "$ErrorActionPreference = 'Continue'\n{SNAPIN}Get-ImapSettings -Server EXCH01\n\
         Set-ImapSettings -Server EXCH01 -MaxConnectionsPerUser 40\n\
         (Get-Service -Name MSExchangeIMAP4).Status\n\
         Test-Path -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n\
         @(Get-PSSnapin -Name Microsoft.Exchange.Management.PowerShell.E2010).Count"
    );
    let (_, sink) = run_with(
        &o,
        winrm_options(ExchangeRole::OrganizationManagement),
        &script,
    );
    assert_eq!(sink.stdout, "Running\r\nTrue\r\n1\r\n", "{:?}", sink.errors);
    assert_eq!(sink.errors.len(), 2, "{:?}", sink.errors);
    let e = &sink.errors[0];
    assert_eq!(
        e.message,
        "Active Directory operation failed on . The supplied credential for 'CONTOSO\\Administrator' is invalid."
    );
    assert_eq!(
        e.fully_qualified_error_id,
        "Microsoft.Exchange.Data.Directory.ADInvalidCredentialException,Microsoft.Exchange.Management.SystemConfigurationTasks.GetImapSettings"
    );
    assert!(
        e.category_info().starts_with("NotSpecified: (:) ["),
        "{}",
        e.category_info()
    );
    assert!(
        e.category_info()
            .ends_with("], ADInvalidCredentialException")
    );
    // Nothing reached the organization.
    let (_, sink) = run(
        &o,
        &format!("{SNAPIN}(Get-ImapSettings -Server EXCH01).MaxConnectionsPerUser"),
    );
    assert_eq!(sink.stdout, "16\r\n");

    // With delegation (no double hop) the same script works.
    let options = HostOptions {
        double_hop: false,
        ..winrm_options(ExchangeRole::OrganizationManagement)
    };
    let (_, sink) = run_with(&o, options, &script);
    assert!(sink.errors.is_empty(), "{:?}", sink.errors);
}

/// Issue 15: an imported session runs its cmdlets in Exchange's endpoint under the
/// session's own explicit credential, so the double hop does not touch it.
#[test]
fn an_imported_session_works_across_the_double_hop() {
    let o = org(Sp::Sp3);
    let script = format!(
        "{IMPORT}Set-ImapSettings -Server EXCH01 -MaxConnectionsPerUser 40\n(Get-ImapSettings -Server EXCH01).MaxConnectionsPerUser"
    );
    let (code, sink) = run_with(
        &o,
        winrm_options(ExchangeRole::OrganizationManagement),
        &script,
    );
    assert_eq!(
        (code, sink.stdout.as_str()),
        (0, "40\r\n"),
        "{:?}",
        sink.errors
    );
}

/// Issue 15, RBAC: a View-Only Organization Management account's session holds the Get-
/// cmdlets only (the others are not in it: PowerShell does not know them); the snap-in
/// bypasses RBAC.
#[test]
fn a_view_only_session_has_no_set_cmdlets() {
    let o = org(Sp::Sp3);
    let script = format!(
        "$ErrorActionPreference = 'Continue'\n{IMPORT}(Get-ImapSettings -Server EXCH01).MaxConnectionsPerUser\nSet-ImapSettings -Server EXCH01 -MaxConnectionsPerUser 40"
    );
    let (_, sink) = run_with(
        &o,
        winrm_options(ExchangeRole::ViewOnlyOrganizationManagement),
        &script,
    );
    assert_eq!(sink.stdout, "16\r\n", "{:?}", sink.errors);
    assert_eq!(sink.errors.len(), 1, "{:?}", sink.errors);
    assert!(
        sink.errors[0]
            .message
            .starts_with("The term 'Set-ImapSettings' is not recognized as the name of a cmdlet"),
        "{:?}",
        sink.errors
    );
    assert_eq!(
        sink.errors[0].fully_qualified_error_id,
        "CommandNotFoundException"
    );

    let options = HostOptions {
        double_hop: false,
        ..winrm_options(ExchangeRole::ViewOnlyOrganizationManagement)
    };
    let (code, sink) = run_with(
        &o,
        options,
        &format!("{SNAPIN}Set-ImapSettings -Server EXCH01 -MaxConnectionsPerUser 40"),
    );
    assert_eq!(code, 0, "{:?}", sink.errors);
}

/// Issue 15, RBAC: an account without any management role cannot open an Exchange
/// session; New-PSSession reports Exchange's refusal (KB 3058293's text).
#[test]
fn an_account_without_roles_cannot_open_an_exchange_session() {
    let o = org(Sp::Sp3);
    let script = format!(
        "$ErrorActionPreference = 'Continue'\n{IMPORT}Write-Output ('session: ' + ($s -eq $null))"
    );
    let (_, sink) = run_with(&o, winrm_options(ExchangeRole::None), &script);
    assert!(sink.stdout.contains("session: True"), "{}", sink.stdout);
    let e = &sink.errors[0];
    assert_eq!(
        e.message,
        "Processing data from remote server failed with the following error message: The user \"contoso.local/Users/Administrator\" isn't assigned to any management roles. For more information, see the about_Remote_Troubleshooting Help topic."
    );
    assert_eq!(e.fully_qualified_error_id, "PSSessionOpenFailed");
}
