//! Replays PSRP traffic recorded from real Windows hosts (`tests/fixtures/psrp-recorded`,
//! from pypsrp's test suite: see `tests/fixtures/README.md`).
//!
//! A mock server answers each of our requests with the next recorded response of the same
//! action. It rewrites what legitimately differs between two clients: `RelatesTo` (our
//! MessageID), the CommandId (ours), and in each PSRP message the RunspacePool and
//! pipeline ids (ours, taken from our Create and Command). Requests the other client sent
//! and ours does not (a Signal after a finished pipeline, a second Send for a pipeline it
//! fragmented differently) are skipped; a Send of ours that the recording lacks is
//! answered with an empty SendResponse. Everything else must match: the action, the
//! resource URI, the ShellId. Then our client must make of the server's messages what the
//! server meant: outputs, records, states, versions.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use exctl_psrp::{Command, PipelineSpec, PipelineState, PoolOptions, RunspacePool, Value};
use exctl_secret::Secret;
use exctl_winrm::{AuthMethod, Client, ClientConfig};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(serde::Deserialize)]
struct Recording {
    messages: Vec<Exchange>,
}

#[derive(serde::Deserialize, Clone)]
struct Exchange {
    request: String,
    response: String,
}

fn load(name: &str) -> Vec<Exchange> {
    let p = format!(
        "{}/../../tests/fixtures/psrp-recorded/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"));
    let r: Recording = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"));
    r.messages
}

fn text_of<'a>(xml: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = xml.find(open)?;
    let after = &xml[start..];
    let gt = after.find('>')? + 1;
    let end = after.find(close)?;
    Some(&after[gt..end])
}

fn action(xml: &str) -> String {
    let a = text_of(xml, "Action", "Action>").unwrap_or_default();
    a.trim_end_matches("</wsa:")
        .trim_end_matches("</a:")
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The first start fragment's message header in a base64 stream chunk: (RPID, PID).
fn ids_in(b64: &str) -> Option<([u8; 16], [u8; 16])> {
    let raw = B64.decode(b64.trim()).ok()?;
    let msg = raw.get(21..61)?;
    let mut rp = [0u8; 16];
    let mut p = [0u8; 16];
    rp.copy_from_slice(&msg[8..24]);
    p.copy_from_slice(&msg[24..40]);
    Some((rp, p))
}

/// Rewrites the RPID and (non-nil) PID of every message in a base64 stream chunk.
fn rewrite_chunk(b64: &str, rpid: [u8; 16], pid: Option<[u8; 16]>) -> String {
    let Ok(mut raw) = B64.decode(b64.trim()) else {
        return b64.to_string();
    };
    let mut i = 0;
    while i + 21 <= raw.len() {
        let start = raw[i + 16] & 1 != 0;
        let len = u32::from_be_bytes([raw[i + 17], raw[i + 18], raw[i + 19], raw[i + 20]]) as usize;
        let body = i + 21;
        if start && body + 40 <= raw.len() {
            raw[body + 8..body + 24].copy_from_slice(&rpid);
            let nil = raw[body + 24..body + 40].iter().all(|b| *b == 0);
            if let (false, Some(pid)) = (nil, pid) {
                raw[body + 24..body + 40].copy_from_slice(&pid);
            }
        }
        i = body + len;
    }
    B64.encode(raw)
}

fn rewrite_streams(xml: &str, rpid: [u8; 16], pid: Option<[u8; 16]>) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(s) = rest.find("<rsp:Stream ") {
        let Some(gt) = rest[s..].find('>') else { break };
        let open_end = s + gt + 1;
        let Some(close) = rest[open_end..].find("</rsp:Stream>") else {
            break;
        };
        out.push_str(&rest[..open_end]);
        out.push_str(&rewrite_chunk(&rest[open_end..open_end + close], rpid, pid));
        rest = &rest[open_end + close..];
    }
    out.push_str(rest);
    out
}

#[derive(Default)]
struct State {
    next: usize,
    rpid: Option<[u8; 16]>,
    pid: Option<[u8; 16]>,
    recorded_cmd: Option<String>,
    our_cmd: Option<String>,
    problems: Vec<String>,
    answered: usize,
    our_sends: usize,
    our_send_bodies: Vec<String>,
}

struct Replay {
    messages: Arc<Vec<Exchange>>,
    state: Arc<Mutex<State>>,
}

const SEND_RESPONSE: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse</a:Action><a:RelatesTo>RELATES</a:RelatesTo></s:Header><s:Body><rsp:SendResponse/></s:Body></s:Envelope>"#;

impl Respond for Replay {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let ours = String::from_utf8_lossy(&req.body).into_owned();
        let our_action = action(&ours);
        let our_id = text_of(&ours, "<wsa:MessageID", "</wsa:MessageID>")
            .unwrap_or("?")
            .to_string();
        let mut st = self.state.lock().unwrap();
        if our_action == "Send" {
            st.our_sends += 1;
        }
        if our_action == "Send" {
            st.our_send_bodies.push(ours.clone());
        }
        // Skip what the recorded client sent and ours does not: a Signal after a
        // finished pipeline, Sends (the key exchange, input it fragmented differently),
        // and the Receive that fetched the session key of its key exchange.
        while let Some(m) = self.messages.get(st.next) {
            let rec = action(&m.request);
            let session_key = rec == "Receive"
                && text_of(&m.response, "<rsp:Stream", "</rsp:Stream>")
                    .and_then(|b| B64.decode(b.trim()).ok())
                    .is_some_and(|raw| raw.get(25..29) == Some(&[0x06, 0x00, 0x01, 0x00]));
            if rec != our_action && (rec == "Signal" || rec == "Send" || session_key) {
                st.next += 1;
            } else {
                break;
            }
        }
        let Some(m) = self.messages.get(st.next).cloned() else {
            st.problems
                .push(format!("unexpected {our_action} after the recording ended"));
            return ResponseTemplate::new(400);
        };
        let rec_action = action(&m.request);
        if our_action == "Send" && rec_action != "Send" {
            return ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/soap+xml;charset=UTF-8")
                .set_body_string(SEND_RESPONSE.replace("RELATES", &our_id));
        }
        st.next += 1;
        st.answered += 1;
        if rec_action != our_action {
            st.problems.push(format!(
                "ours is a {our_action}, the recording has a {rec_action}"
            ));
        }
        for (open, close) in [
            ("<wsman:ResourceURI", "</wsman:ResourceURI>"),
            ("<wsman:Selector Name=\"ShellId\"", "</wsman:Selector>"),
        ] {
            let (a, b) = (
                text_of(&ours, open, close),
                text_of(&m.request, open, close),
            );
            if a != b {
                st.problems
                    .push(format!("{our_action} {open}: ours {a:?}, recorded {b:?}"));
            }
        }
        match our_action.as_str() {
            "Create" => {
                st.rpid = text_of(&ours, "<creationXml", "</creationXml>")
                    .and_then(ids_in)
                    .map(|(r, _)| r);
            }
            "Command" => {
                st.pid = text_of(&ours, "<rsp:Arguments", "</rsp:Arguments>")
                    .and_then(ids_in)
                    .map(|(_, p)| p);
                st.recorded_cmd =
                    text_of(&m.response, "<rsp:CommandId", "</rsp:CommandId>").map(str::to_string);
                let ours_cmd = ours
                    .split("CommandId=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .map(str::to_string);
                st.our_cmd = ours_cmd;
            }
            _ => {}
        }
        let recorded_id = text_of(&m.request, "<wsa:MessageID", "</wsa:MessageID>").unwrap_or("?");
        let mut response = m.response.replace(recorded_id, &our_id);
        if let (Some(r), Some(o)) = (&st.recorded_cmd, &st.our_cmd) {
            response = response.replace(r.as_str(), o);
        }
        if let Some(rpid) = st.rpid {
            response = rewrite_streams(&response, rpid, st.pid);
        }
        let status = if response.contains(":Fault>") {
            500
        } else {
            200
        };
        ResponseTemplate::new(status)
            .insert_header("Content-Type", "application/soap+xml;charset=UTF-8")
            .set_body_string(response)
    }
}

struct Harness {
    _server: MockServer,
    client: Client,
    total: usize,
    state: Arc<Mutex<State>>,
}

impl Harness {
    async fn new(file: &str, adjust: impl FnOnce(&mut ClientConfig)) -> Self {
        let messages = Arc::new(load(file));
        let total = messages.len();
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        Mock::given(method("POST"))
            .respond_with(Replay {
                messages,
                state: state.clone(),
            })
            .mount(&server)
            .await;
        let mut cfg = ClientConfig::new(
            format!("{}/wsman", server.uri()),
            "vagrant",
            Secret::new("not-used"),
        );
        cfg.auth = AuthMethod::Basic;
        cfg.allow_basic_over_http = true;
        adjust(&mut cfg);
        Harness {
            _server: server,
            client: Client::new(cfg).unwrap(),
            total,
            state,
        }
    }

    fn finish(self) {
        let st = self.state.lock().unwrap();
        assert!(st.problems.is_empty(), "{}", st.problems.join("\n"));
        assert!(
            st.next == self.total,
            "only {} of {} recorded requests were made",
            st.next,
            self.total
        );
    }
}

fn type_name(v: &Value) -> Option<&str> {
    v.as_object()
        .and_then(|o| o.type_names.first())
        .map(String::as_str)
}

const DEBUG_SCRIPT: &str = "begin {\n    $DebugPreference = 'Continue'\n    Write-Debug \"Start Block\"\n    Write-Error \"error\"\n}\nprocess {\n    $input\n}\nend {\n    Write-Debug \"End Block\"\n}";

async fn run_versioned(file: &str, version: (u32, u32)) {
    let h = Harness::new(file, |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    assert_eq!(pool.server_protocol_version(), version);
    assert!(pool.application_private_data().is_some());
    let mut spec = PipelineSpec::script(DEBUG_SCRIPT);
    spec.input = vec![
        Value::str("message 1"),
        Value::I32(2),
        Value::object(exctl_psrp::PsObject {
            type_names: vec![
                "System.Object[]".into(),
                "System.Array".into(),
                "System.Object".into(),
            ],
            list: Some(vec![Value::str("3"), Value::I32(3)]),
            ..Default::default()
        }),
    ];
    let r = pool.run(&spec).await.unwrap();
    assert_eq!(r.state, PipelineState::Completed);
    // The recorded client merged the error stream into output.
    assert_eq!(r.output.len(), 4, "{:?}", r.output);
    assert_eq!(
        type_name(&r.output[0]),
        Some("System.Management.Automation.ErrorRecord")
    );
    assert_eq!(r.output[1], Value::str("message 1"));
    assert_eq!(r.output[2], Value::I32(2));
    assert_eq!(
        type_name(&r.output[3]),
        Some("Deserialized.System.Object[]")
    );
    assert_eq!(
        r.output[3]
            .as_object()
            .unwrap()
            .list
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    let debug: Vec<&str> = r.debug.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(debug, ["Start Block", "End Block"]);
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn protocol_2_1_server() {
    run_versioned("test_psrp_run_protocol_version_2.1.yml", (2, 1)).await;
}

#[tokio::test]
async fn protocol_2_2_server() {
    run_versioned("test_psrp_run_protocol_version_2.2.yml", (2, 2)).await;
}

#[tokio::test]
async fn protocol_2_3_server() {
    run_versioned("test_psrp_run_protocol_version_2.3.yml", (2, 3)).await;
}

#[tokio::test]
async fn opening_and_closing_a_pool() {
    let h = Harness::new("test_psrp_open_runspace.yml", |_| {}).await;
    let pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    assert_eq!(pool.server_protocol_version(), (2, 3));
    let psv = pool
        .application_private_data()
        .and_then(|d| d.property("ApplicationPrivateData"))
        .and_then(|d| d.as_object())
        .and_then(|d| d.dict.as_ref())
        .and_then(|d| d.iter().find(|(k, _)| k.as_str() == Some("PSVersionTable")))
        .map(|(_, v)| v.clone());
    assert!(psv.is_some(), "PSVersionTable in the private data");
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn a_failed_pipeline_keeps_its_output_and_error() {
    let h = Harness::new("test_psrp_error_failed.yml", |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::script(
            "$ErrorActionPreference = 'Stop'; Write-Output before; Write-Error error; Write-Output after",
        ))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Failed);
    assert_eq!(r.output, vec![Value::str("before")]);
    let f = r.failure.clone().expect("the failure's error record");
    assert_eq!(f.message, "error");
    assert!(f.fully_qualified_error_id.is_some());
    assert!(!r.succeeded());
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn small_max_envelope_size_fragments_the_pipeline() {
    let h = Harness::new("test_psrp_small_msg_size.yml", |c| {
        c.server_max_envelope_kb = 32;
        c.max_envelope_size = 32768;
    })
    .await;
    assert_eq!(
        h.client.server_max_envelope_size_kb().await.unwrap(),
        Some(32)
    );
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    // A script longer than one envelope: CREATE_PIPELINE goes out in several fragments.
    let script = format!("# {}\n$input; 'a' * 20000; 'a' * 10000", "x".repeat(40_000));
    let mut spec = PipelineSpec::script(script);
    spec.input = vec![Value::str("input")];
    let r = pool.run(&spec).await.unwrap();
    // The rest of CREATE_PIPELINE and the input went out in Sends of at most 32 KB each.
    assert!(h.state.lock().unwrap().our_sends >= 2);
    assert_eq!(r.state, PipelineState::Completed);
    assert_eq!(r.output.len(), 3);
    assert_eq!(r.output[0], Value::str("input"));
    assert_eq!(r.output[1].as_str().map(str::len), Some(20000));
    assert_eq!(r.output[2].as_str().map(str::len), Some(10000));
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn a_jea_endpoint_runs_commands_and_refuses_scripts() {
    let h = Harness::new("test_psrp_with_jea_configuration.yml", |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::configuration("JEARole"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r =
        pool.run(&PipelineSpec::command(
            Command::new("Get-Item").param("Path", "WSMan:\\localhost\\Service\\AllowUnencrypted"),
        ))
        .await
        .unwrap();
    assert!(r.succeeded());
    assert_eq!(
        type_name(&r.output[0]),
        Some("Deserialized.Microsoft.WSMan.Management.WSManConfigLeafElement")
    );
    let r = pool
        .run(&PipelineSpec::script(
            "Set-Item -Path WSMan:\\localhost\\Service\\AllowUnencrypted -Value $false",
        ))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Failed);
    assert_eq!(
        r.errors[0].message,
        "Cannot find a provider with the name 'FileSystem'."
    );
    let f = r.failure.unwrap();
    assert_eq!(
        f.fully_qualified_error_id.as_deref(),
        Some("ScriptsNotAllowed")
    );
    assert!(f.message.contains("no-language mode"), "{}", f.message);
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn every_stream_arrives_in_its_place() {
    let h = Harness::new("test_psrp_merge_commands.yml", |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::script("Write-Output 'output stream'"))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Completed);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].message, "error stream");
    assert!(r.errors[0].category.is_some());
    assert_eq!(r.warnings[0].message, "warning stream");
    assert_eq!(r.verbose[0].message, "verbose stream");
    assert_eq!(r.debug[0].message, "debug stream");
    assert_eq!(r.information[0].message, "information stream");
    assert!(r.output.contains(&Value::str("output stream")));
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn several_pipelines_in_one_pool() {
    let h = Harness::new("test_psrp_multiple_invocations.yml", |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    for _ in 0..2 {
        let r = pool.run(&PipelineSpec::script("1+1")).await.unwrap();
        assert_eq!(r.output, vec![Value::I32(2)]);
    }
    pool.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn a_long_running_cmdlet_survives_operation_timeouts() {
    let h = Harness::new("test_psrp_long_running_cmdlet.yml", |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::command(
            Command::new("Start-Sleep").param("Seconds", 30),
        ))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Completed);
    assert_eq!(r.output, vec![Value::str("hi")]);
    pool.close().await.unwrap();
    h.finish();
}

/// Decodes the PSRP messages of every `rsp:Stream` of a request: (stream name, type, data).
fn sent_messages(xml: &str) -> Vec<(String, u32, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find("<rsp:Stream ") {
        let after = &rest[s..];
        let name = after
            .split("Name=\"")
            .nth(1)
            .and_then(|n| n.split('"').next())
            .unwrap_or_default()
            .to_string();
        let (Some(gt), Some(end)) = (after.find('>'), after.find("</rsp:Stream>")) else {
            break;
        };
        let raw = B64.decode(after[gt + 1..end].trim()).unwrap_or_default();
        if raw.len() >= 61 {
            let t = u32::from_le_bytes([raw[25], raw[26], raw[27], raw[28]]);
            out.push((name, t, String::from_utf8_lossy(&raw[61..]).into_owned()));
        }
        rest = &after[end..];
    }
    out
}

#[tokio::test]
async fn host_calls_are_refused_and_void_ones_ignored() {
    let h = Harness::new("test_psrp_pshost_ui_mocked_methods.yml", |_| {}).await;
    let mut pool = RunspacePool::open(&h.client, &PoolOptions::powershell())
        .await
        .unwrap();
    let r = pool
        .run(&PipelineSpec::script("$host.UI.ReadLine()"))
        .await
        .unwrap();
    assert_eq!(r.state, PipelineState::Completed);
    pool.close().await.unwrap();
    let bodies = h.state.lock().unwrap().our_send_bodies.clone();
    let responses: Vec<(String, u32, String)> =
        bodies.iter().flat_map(|b| sent_messages(b)).collect();
    // Five calls wanted an answer (ReadLine, ReadLineAsSecureString, Prompt,
    // PromptForCredential2, PromptForChoice); the Write* ones (call id -100) do not.
    assert_eq!(responses.len(), 5, "{responses:?}");
    for (i, (stream, t, data)) in responses.iter().enumerate() {
        assert_eq!(stream, "pr");
        assert_eq!(*t, 0x0004_1101, "PIPELINE_HOST_RESPONSE");
        assert!(
            data.contains(&format!("<I64 N=\"ci\">{}</I64>", i + 1)),
            "{data}"
        );
        assert!(
            data.contains("N=\"me\"") && data.contains("HostException"),
            "{data}"
        );
    }
    h.finish();
}
