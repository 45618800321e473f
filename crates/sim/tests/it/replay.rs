//! Faithfulness check: every request of the recordings from real Windows hosts
//! (`tests/fixtures/winrm-recorded/*.yml`) is replayed against the simulator, with the
//! simulator's ShellId and CommandId put in place of the recorded ones, and each response
//! is compared with the recorded one: HTTP status, root namespace declarations, element
//! names and order, actions, fault codes, subcodes and texts, stream names, End markers,
//! decoded stream contents and exit codes. Values that are the host's own (ids, owner,
//! client IP, machine name) are not compared.
//!
//! Commands the recordings run with `powershell.exe` are served by a tiny fake PowerShell
//! registered here (Write-Host, Start-Sleep, `(pwd).Path`): the point is the shell
//! protocol, not PowerShell.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use exctl_sim::xml::{Element, parse};
use exctl_sim::{AuthScheme, CmdExecutor, ExitFuture, Invocation, ProcessIo, SimConfig};

#[derive(serde::Deserialize)]
struct Recording {
    messages: Vec<Message>,
}

#[derive(serde::Deserialize)]
struct Message {
    request: String,
    response: String,
    #[serde(default)]
    transport_error: Option<TransportError>,
}

#[derive(serde::Deserialize)]
struct TransportError {
    code: u16,
}

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/winrm-recorded/"
);

/// How much faster than real time the fake `Start-Sleep` runs; the replay shrinks the
/// OperationTimeout by the same factor.
const TIME_SCALE: f64 = 12.0;

fn load(name: &str) -> Recording {
    let path = format!("{FIXTURES}{name}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read recording {path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {path}: {e}"))
}

/// A fake powershell.exe that understands what the recordings run.
fn fake_powershell(inv: Invocation, io: ProcessIo) -> ExitFuture {
    Box::pin(async move {
        let script = if inv.raw_args.trim() == "-" {
            String::from_utf8_lossy(&io.read_all_stdin().await).into_owned()
        } else {
            inv.raw_args.clone()
        };
        for statement in script.split(';') {
            let s = statement.trim();
            if let Some(rest) = s.strip_prefix("Write-Host") {
                let text = rest.trim().trim_matches('"');
                io.stdout(text.to_string()).await;
                io.stdout("\n").await;
            } else if let Some(n) = s.strip_prefix("Start-Sleep") {
                let secs: f64 = n.trim().parse().unwrap_or(0.0);
                tokio::time::sleep(Duration::from_secs_f64(secs / TIME_SCALE)).await;
            } else if s == "(pwd).Path" {
                let wd = inv
                    .request
                    .working_directory
                    .clone()
                    .unwrap_or_else(|| "C:\\Users\\Administrator".into());
                io.stdout(format!("{wd}\r\n")).await;
            } else if !s.is_empty() {
                io.stderr(format!("fake powershell cannot run {s:?}\n"))
                    .await;
                return 1;
            }
        }
        0
    })
}

fn executor() -> Arc<CmdExecutor> {
    let mut exec = CmdExecutor::new("SERVER2008R2");
    exec.register("powershell", Arc::new(fake_powershell));
    Arc::new(exec)
}

/// Elements whose text is protocol, not host identity, and so must match.
const COMPARED_TEXT: &[&str] = &[
    "Action",
    "To",
    "Value",
    "Text",
    "Message",
    "ProviderFault",
    "FaultDetail",
    "ExitCode",
    "ResourceURI",
    "ResourceUri",
    "Address",
    "InputStreams",
    "OutputStreams",
    "IdleTimeOut",
    "WorkingDirectory",
    "ShellRunTime",
    "ShellInactivity",
    "Stream",
    "MaxEnvelopeSizekb",
];

/// Attributes whose value must match; others only need to be present.
const COMPARED_ATTRS: &[&str] = &["Name", "End", "State", "Code", "provider", "path", "lang"];

/// Merges consecutive data streams of the same name (how a host chunks output is timing,
/// not protocol) and decodes them.
fn normalize(el: &Element) -> Element {
    let mut out = el.clone();
    out.children.clear();
    for child in &el.children {
        let mut child = normalize(child);
        if child.name == "Stream" {
            let b64: String = child.text.split_whitespace().collect();
            let data = B64
                .decode(&b64)
                .unwrap_or_else(|e| panic!("bad base64 {b64:?}: {e}"));
            child.text = String::from_utf8_lossy(&data).into_owned();
        }
        let data_stream = child.name == "Stream" && child.attr("End").is_none();
        if data_stream
            && let Some(prev) = out.children.last_mut()
            && prev.name == "Stream"
            && prev.attr("End").is_none()
            && prev.attr("Name") == child.attr("Name")
        {
            prev.text.push_str(&child.text);
            continue;
        }
        out.children.push(child);
    }
    out
}

fn skeleton(el: &Element, depth: usize, lines: &mut Vec<String>) {
    let mut attrs: Vec<String> = el
        .attrs
        .iter()
        .map(|(_, name, value)| {
            if COMPARED_ATTRS.contains(&name.as_str()) {
                format!("{name}={value:?}")
            } else {
                name.clone()
            }
        })
        .collect();
    attrs.sort();
    let text = if COMPARED_TEXT.contains(&el.name.as_str()) {
        if el.name == "Stream" {
            format!(" data={:?}", el.text)
        } else {
            format!(" text={:?}", el.text)
        }
    } else {
        String::new()
    };
    lines.push(format!(
        "{}{{{}}}{} [{}]{}",
        "  ".repeat(depth),
        el.ns,
        el.name,
        attrs.join(" "),
        text
    ));
    for c in &el.children {
        // Server 2016 (the recordings from 192.168.56.15) adds w:ActivityId; 2008 R2, which
        // the simulator is, does not (test_winrs_no_cmd_shell.yml from server2008r2).
        if c.name == "ActivityId" {
            continue;
        }
        skeleton(c, depth + 1, lines);
    }
}

fn structure(xml: &str) -> Vec<String> {
    let root = parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let mut lines = Vec::new();
    skeleton(&normalize(&root), 0, &mut lines);
    lines
}

/// The namespace declarations on the root element, sorted.
fn root_namespaces(xml: &str) -> Vec<String> {
    let start = xml.find("<s:Envelope").expect("envelope");
    let end = start + xml[start..].find('>').expect("root tag ends");
    let tag = &xml[start..end];
    let mut decls: Vec<String> = tag
        .split_whitespace()
        .filter(|t| t.starts_with("xmlns") || t.starts_with("xml:lang"))
        .map(|t| t.trim_end_matches('/').to_string())
        .collect();
    decls.sort();
    decls
}

fn first_text(xml: &str, name: &str) -> Option<String> {
    fn walk(el: &Element, name: &str) -> Option<String> {
        if el.name == name {
            return Some(el.text.trim().to_string());
        }
        el.children.iter().find_map(|c| walk(c, name))
    }
    walk(&parse(xml.as_bytes()).ok()?, name)
}

async fn replay(file: &str, config: SimConfig, rewrite: &dyn Fn(String) -> String) {
    let recording = load(file);
    let sim = common::start_with(
        SimConfig {
            tls: true,
            auth: vec![AuthScheme::Basic],
            ..common::local(config)
        },
        executor(),
    )
    .await;
    let client = common::client(&sim);
    let mut ids: Vec<(String, String)> = Vec::new();
    for (i, message) in recording.messages.iter().enumerate() {
        let mut request = rewrite(message.request.clone());
        for (recorded, ours) in &ids {
            request = request.replace(recorded.as_str(), ours);
        }
        let (status, body) = common::post(&client, &sim, &request).await;
        let expected_status = message.transport_error.as_ref().map_or(200, |t| t.code);
        let context = format!("{file} message {i}\nrequest: {request}\nresponse: {body}");
        assert_eq!(status, expected_status, "{context}");
        assert_eq!(
            root_namespaces(&body),
            root_namespaces(&message.response),
            "namespace declarations differ: {context}"
        );
        let (want, got) = (structure(&message.response), structure(&body));
        assert!(
            want == got,
            "structure differs: {context}\n--- recorded\n{}\n--- simulator\n{}",
            want.join("\n"),
            got.join("\n")
        );
        // RelatesTo must echo the request (checked against the request, because one
        // recording, test_winrs_unicode.yml's Delete, relates to another message).
        assert_eq!(
            first_text(&body, "RelatesTo"),
            first_text(&request, "MessageID"),
            "{context}"
        );
        for name in ["ShellId", "CommandId"] {
            if let (Some(recorded), Some(ours)) =
                (first_text(&message.response, name), first_text(&body, name))
            {
                ids.push((recorded, ours));
            }
        }
    }
    sim.shutdown().await;
}

fn same(s: String) -> String {
    s
}

#[tokio::test]
async fn standard_echo() {
    replay("test_winrs_standard.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn stderr_and_exit_code() {
    replay("test_winrs_stderr_rc.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn stdin_with_send() {
    replay("test_winrs_send.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn unicode_output() {
    replay("test_winrs_unicode.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn unknown_command_id() {
    replay("test_winrs_bad_cmd_id.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn receive_without_command_id() {
    replay(
        "test_winrs_fail_poll_process.yml",
        SimConfig::default(),
        &same,
    )
    .await;
}

#[tokio::test]
async fn skip_cmd_shell_needs_a_full_path() {
    replay("test_winrs_no_cmd_shell.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn working_directory_and_idle_timeout() {
    replay("test_winrs_extra_opts.yml", SimConfig::default(), &same).await;
}

#[tokio::test]
async fn open_and_close() {
    replay(
        "test_winrs_open_already_opened.yml",
        SimConfig::default(),
        &same,
    )
    .await;
}

#[tokio::test]
async fn operation_timeout_then_done() {
    // Recorded: PT10S and a 30 s sleep, giving Running, TimedOut, TimedOut, Done. Scaled
    // down twelvefold, the same sequence takes under 3 s.
    let scale = |s: String| {
        s.replace(
            "<wsman:OperationTimeout>PT10S<",
            "<wsman:OperationTimeout>PT1S<",
        )
    };
    let _ = TIME_SCALE;
    replay(
        "test_winrs_operation_timeout.yml",
        SimConfig::default(),
        &scale,
    )
    .await;
}

#[tokio::test]
async fn config_get_150() {
    replay(
        "test_wsman_update_envelope_size_150.yml",
        SimConfig::default(),
        &same,
    )
    .await;
}

#[tokio::test]
async fn config_get_500() {
    let config = SimConfig {
        max_envelope_size_kb: 500,
        ..SimConfig::default()
    };
    replay("test_wsman_update_envelope_size_500.yml", config, &same).await;
}

#[tokio::test]
async fn config_get_4096() {
    let config = SimConfig {
        max_envelope_size_kb: 4096,
        ..SimConfig::default()
    };
    replay("test_wsman_update_envelope_size_4096.yml", config, &same).await;
}
