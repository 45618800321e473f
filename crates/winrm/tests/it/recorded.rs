//! Replays traffic recorded from real Windows hosts (`tests/fixtures/winrm-recorded`).
//!
//! A mock server answers each of our requests with the recorded response, rewritten only
//! so that `RelatesTo` names our MessageID. Before answering it compares our request with
//! the recorded one: same action, resource, selectors, recorded options (ours may add
//! more), and body. The client must then produce the recorded outputs, exit codes and
//! faults.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use exctl_secret::Secret;
use exctl_winrm::{AuthMethod, Client, ClientConfig, Error, ShellOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(serde::Deserialize)]
struct Recording {
    messages: Vec<Message>,
}

#[derive(serde::Deserialize)]
struct Message {
    request: String,
    response: String,
}

fn load(name: &str) -> Vec<Message> {
    let p = format!(
        "{}/../../tests/fixtures/winrm-recorded/{name}",
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

fn options(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<wsman:Option Name=\"") {
        rest = &rest[i + 20..];
        let Some(q) = rest.find('"') else { break };
        let name = rest[..q].to_string();
        let Some(gt) = rest.find('>') else { break };
        let Some(end) = rest.find("</wsman:Option>") else {
            break;
        };
        out.push((name, rest[gt + 1..end].to_string()));
    }
    out
}

fn body(xml: &str) -> String {
    match xml.find("<s:Body>") {
        Some(i) => xml[i + 8..xml.rfind("</s:Body>").unwrap_or(xml.len())].to_string(),
        None => String::new(),
    }
}

/// Normalises what legitimately differs between two clients: attribute order of the
/// Send stream, boolean spelling, and the signal code (pypsrp sends ctrl_c where MS-WSMV
/// asks for terminate).
fn normalise_body(b: &str) -> String {
    // `"` and `'` may be escaped or not in element text; both mean the same.
    let b = b.replace("&quot;", "\"").replace("&apos;", "'");
    let mut b = b
        .replace("End=\"False\" ", "")
        .replace("End=\"True\"", "End=\"true\"");
    b = b.replace("/signal/ctrl_c", "/signal/terminate");
    if let (Some(s), Some(e)) = (b.find("<rsp:Stream "), b.find("\">")) {
        // Attributes in a canonical order.
        let attrs = &b[s + 12..e + 1];
        let mut parts: Vec<&str> = attrs
            .split("\" ")
            .map(|p| p.trim_end_matches('"'))
            .collect();
        parts.sort();
        b = format!(
            "{}<rsp:Stream {}\">{}",
            &b[..s],
            parts.join("\" "),
            &b[e + 2..]
        );
    }
    b
}

fn compare(ours: &str, recorded: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (open, close) in [
        ("<wsa:Action", "</wsa:Action>"),
        ("<wsman:ResourceURI", "</wsman:ResourceURI>"),
        ("<wsman:MaxEnvelopeSize", "</wsman:MaxEnvelopeSize>"),
    ] {
        let (a, b) = (text_of(ours, open, close), text_of(recorded, open, close));
        if a != b {
            problems.push(format!("{open}: ours {a:?}, recorded {b:?}"));
        }
    }
    let (a, b) = (
        text_of(
            ours,
            "<wsman:Selector Name=\"ShellId\"",
            "</wsman:Selector>",
        ),
        text_of(
            recorded,
            "<wsman:Selector Name=\"ShellId\"",
            "</wsman:Selector>",
        ),
    );
    if a != b {
        problems.push(format!("ShellId selector: ours {a:?}, recorded {b:?}"));
    }
    if text_of(ours, "<wsa:MessageID", "</wsa:MessageID>").is_none_or(|m| !m.starts_with("uuid:")) {
        problems.push("no uuid: MessageID".into());
    }
    let ours_opts = options(ours);
    for (name, value) in options(recorded) {
        match ours_opts.iter().find(|(n, _)| *n == name) {
            Some((_, v)) if v.eq_ignore_ascii_case(&value) => {}
            other => problems.push(format!("option {name}={value}: ours {other:?}")),
        }
    }
    let (ob, rb) = (normalise_body(&body(ours)), normalise_body(&body(recorded)));
    if rb.starts_with("<rsp:Shell>") {
        // Each element the recording put in rsp:Shell must be in ours, except Lifetime
        // and Name, which exctl does not use.
        for part in shell_parts(&rb) {
            let unused_by_exctl =
                part.starts_with("<rsp:Lifetime>") || part.starts_with("<rsp:Name>");
            if !unused_by_exctl && !ob.contains(&part) {
                problems.push(format!("rsp:Shell lacks {part}\n ours {ob}"));
            }
        }
    } else if ob != rb {
        problems.push(format!("body differs:\n ours     {ob}\n recorded {rb}"));
    }
    problems
}

/// The child elements of rsp:Shell, and each rsp:Variable on its own.
fn shell_parts(b: &str) -> Vec<String> {
    let inner = b
        .trim_start_matches("<rsp:Shell>")
        .trim_end_matches("</rsp:Shell>");
    let inner = inner
        .replace("<rsp:Environment>", "")
        .replace("</rsp:Environment>", "");
    let mut parts = Vec::new();
    let mut rest = inner.as_str();
    while let Some(start) = rest.find("<rsp:") {
        let after = &rest[start + 5..];
        let name_end = after.find(['>', ' ']).unwrap_or(after.len());
        let close = format!("</rsp:{}>", &after[..name_end]);
        let Some(end) = rest.find(&close) else { break };
        parts.push(rest[start..end + close.len()].to_string());
        rest = &rest[end + close.len()..];
    }
    parts
}

struct Replay {
    messages: Arc<Vec<Message>>,
    next: Arc<AtomicUsize>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Respond for Replay {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        let ours = String::from_utf8_lossy(&req.body).into_owned();
        let Some(m) = self.messages.get(i) else {
            self.problems
                .lock()
                .unwrap()
                .push(format!("unexpected request #{i}: {ours}"));
            return ResponseTemplate::new(400);
        };
        for p in compare(&ours, &m.request) {
            self.problems
                .lock()
                .unwrap()
                .push(format!("request #{i}: {p}"));
        }
        let recorded_id = text_of(&m.request, "<wsa:MessageID", "</wsa:MessageID>").unwrap_or("?");
        let our_id = text_of(&ours, "<wsa:MessageID", "</wsa:MessageID>").unwrap_or("?");
        let response = m.response.replace(recorded_id, our_id);
        let status = if response.contains("<s:Fault>") {
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
    next: Arc<AtomicUsize>,
    total: usize,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Harness {
    async fn new(file: &str) -> Self {
        Self::with(file, |_| {}).await
    }

    async fn with(file: &str, adjust: impl FnOnce(&mut ClientConfig)) -> Self {
        let messages = Arc::new(load(file));
        let total = messages.len();
        let server = MockServer::start().await;
        let next = Arc::new(AtomicUsize::new(0));
        let problems = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .and(path("/wsman"))
            .respond_with(Replay {
                messages,
                next: next.clone(),
                problems: problems.clone(),
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
        let client = Client::new(cfg).unwrap();
        Harness {
            _server: server,
            client,
            next,
            total,
            problems,
        }
    }

    fn finish(self) {
        let problems = self.problems.lock().unwrap().clone();
        assert!(
            problems.is_empty(),
            "requests differ from the recording:\n{}",
            problems.join("\n")
        );
        assert_eq!(
            self.next.load(Ordering::SeqCst),
            self.total,
            "not every recorded exchange was replayed"
        );
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn default_shell() -> ShellOptions {
    // The recordings were made with pypsrp's defaults (codepage 437, profile loaded);
    // the options only compare where the recording set them.
    ShellOptions::default()
}

#[tokio::test]
async fn standard_echo() {
    let h = Harness::new("test_winrs_standard.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    assert_eq!(shell.id(), "4283CBDC-3706-415B-88BD-B385F3E51A53");
    let out = shell
        .run("cmd.exe", &args(&["/c", "echo", "hi"]), None, None)
        .await
        .unwrap();
    assert_eq!(out.stdout, b"hi\r\n");
    assert_eq!(out.stderr, b"");
    assert_eq!(out.exit_code, 0);
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn buffered_output_has_a_hard_limit() {
    // "hi\r\n" is 4 bytes; a 3-byte buffer must refuse it, then terminate the command.
    let h = Harness::with("test_winrs_standard.yml", |c| c.max_buffered_output = 3).await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let err = shell
        .run("cmd.exe", &args(&["/c", "echo", "hi"]), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutputTooLarge { limit: 3 }), "{err:?}");
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn stderr_and_exit_code() {
    let h = Harness::new("test_winrs_stderr_rc.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let out = shell
        .run(
            "cmd.exe",
            &args(&["/c echo out && echo err>&2 && exit 1"]),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"out \r\n");
    assert_eq!(out.stderr, b"err \r\n");
    assert_eq!(out.exit_code, 1);
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn stdin_in_two_sends() {
    let h = Harness::new("test_winrs_send.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let mut cmd = shell
        .start("powershell.exe", &args(&["-"]), false)
        .await
        .unwrap();
    cmd.send(b"Write-Host \"output 1\";", false).await.unwrap();
    cmd.send(b"Write-Host \"output 2\";", true).await.unwrap();
    let mut stdout = Vec::new();
    let code = cmd
        .wait(|_, b| {
            stdout.extend_from_slice(b);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(stdout, b"output 1\noutput 2\n");
    assert_eq!(code, 0);
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn utf8_output_with_codepage_65001() {
    let h = Harness::new("test_winrs_unicode.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let out = shell
        .run(
            "powershell.exe",
            &args(&["Write-Host こんにちは"]),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "こんにちは\n");
    // The recording's DeleteResponse relates to a request of another session (pypsrp
    // does not check RelatesTo). A client that believed it would accept any response.
    let err = shell.close().await.unwrap_err();
    assert!(
        err.to_string().contains("answered a different request"),
        "{err}"
    );
    h.finish();
}

#[tokio::test]
async fn operation_timeout_faults_mean_ask_again() {
    let h = Harness::new("test_winrs_operation_timeout.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let out = shell
        .run(
            "powershell.exe",
            &args(&["Write-Host hi; Start-Sleep 30; Write-Host hi again"]),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"hi\nhi again\n");
    assert_eq!(out.exit_code, 0);
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn environment_variables() {
    let h = Harness::new("test_winrs_environment.yml").await;
    let opts = ShellOptions {
        environment: vec![
            ("env1".into(), "var1".into()),
            ("1234".into(), "5678".into()),
            (
                r#"_-(){}[]<>*+-/\?"!@#$^&|;:i,.`~0"#.into(),
                r#"_-(){}[]<>*+-/\?"!@#$^&|;:i,.`~0"#.into(),
            ),
        ],
        ..default_shell()
    };
    let shell = h.client.open_shell(&opts).await.unwrap();
    let out = shell
        .run("cmd.exe", &args(&["/c", "set"]), None, None)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1234=5678\r\n"));
    assert!(text.contains("env1=var1\r\n"));
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn working_directory_and_idle_timeout() {
    let h = Harness::new("test_winrs_extra_opts.yml").await;
    let opts = ShellOptions {
        working_directory: Some(r"C:\Windows".into()),
        idle_timeout: Some(std::time::Duration::from_secs(60)),
        ..default_shell()
    };
    let shell = h.client.open_shell(&opts).await.unwrap();
    let out = shell
        .run("powershell.exe", &args(&["(pwd).Path"]), None, None)
        .await
        .unwrap();
    assert_eq!(out.stdout, b"C:\\Windows\r\n");
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn unknown_command_id_is_a_typed_fault() {
    let h = Harness::new("test_winrs_bad_cmd_id.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let mut cmd = shell
        .start("cmd.exe", &args(&["/c", "echo", "hi"]), false)
        .await
        .unwrap();
    // The recording polled a made-up id; the server answers InvalidSelectors.
    let err = cmd.receive().await.unwrap_err();
    let fault = err.fault().expect("a fault");
    assert!(fault.is_unknown_selector());
    assert_eq!(fault.wsman_code, Some(2150858843));
    assert_eq!(fault.subcode.as_deref(), Some("InvalidSelectors"));
    cmd.terminate().await.unwrap();
    shell.close().await.unwrap();
    // Our Receive names our CommandId, the recording a bogus one: that one difference
    // is the point of the recording.
    let problems: Vec<String> = h
        .problems
        .lock()
        .unwrap()
        .drain(..)
        .filter(|p| !p.starts_with("request #2: body differs"))
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    h.finish();
}

#[tokio::test]
async fn missing_executable_without_cmd_shell() {
    let h = Harness::new("test_winrs_no_cmd_shell.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    let err = shell
        .start("powershell.exe", &args(&["Write-Host", "hi"]), true)
        .await
        .unwrap_err();
    let Error::Fault(f) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(f.wsman_code, Some(2147942402));
    assert_eq!(f.subcode.as_deref(), Some("InternalError"));
    assert_eq!(f.machine.as_deref(), Some("server2008r2.domain.local"));
    assert!(
        err.to_string()
            .contains("The system cannot find the file specified.")
    );
    let mut cmd = shell
        .start(
            r"C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe",
            &args(&["Write-Host", "hi"]),
            true,
        )
        .await
        .unwrap();
    let mut stdout = Vec::new();
    let code = cmd
        .wait(|_, b| {
            stdout.extend_from_slice(b);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((stdout.as_slice(), code), (&b"hi\n"[..], 0));
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn create_and_delete() {
    let h = Harness::new("test_winrs_open_already_opened.yml").await;
    let shell = h.client.open_shell(&default_shell()).await.unwrap();
    shell.close().await.unwrap();
    h.finish();
}

#[tokio::test]
async fn max_envelope_size_from_the_configuration() {
    for (file, kb) in [
        ("test_wsman_update_envelope_size_150.yml", 150),
        ("test_wsman_update_envelope_size_500.yml", 500),
        ("test_wsman_update_envelope_size_4096.yml", 4096),
    ] {
        let h = Harness::new(file).await;
        assert_eq!(
            h.client.server_max_envelope_size_kb().await.unwrap(),
            Some(kb),
            "{file}"
        );
        h.finish();
    }
}

#[test]
fn every_recorded_response_relates_to_its_request() {
    let dir = format!(
        "{}/../../tests/fixtures/winrm-recorded",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        for m in load(&name) {
            let id = text_of(&m.request, "<wsa:MessageID", "</wsa:MessageID>").unwrap();
            let relates = m.response.contains(&format!("RelatesTo>{id}<"));
            // The one known exception, checked in utf8_output_with_codepage_65001.
            let known = name == "test_winrs_unicode.yml" && m.request.contains("transfer/Delete");
            assert!(relates != known, "{name}: {id}");
            n += 1;
        }
    }
    assert!(n >= 60, "only {n} exchanges found in {dir}");
}
