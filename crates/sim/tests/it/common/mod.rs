//! Helpers shared by the simulator's integration tests: starting a simulator with test
//! programs, a reqwest client that trusts its CA, and request envelopes written here
//! (not borrowed from the client crate, so the tests check the simulator independently).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use exctl_sim::{CmdExecutor, ExitFuture, Invocation, ProcessIo, RunningSim, SimConfig, serve};

pub const NS_DECLS: &str = r#"xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:wsmv="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd""#;
pub const SHELL_URI: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
pub const CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
pub const DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
pub const COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
pub const SEND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
pub const RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
pub const SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";

/// A test-only program: `bigout N` writes N bytes of `x` (CRLF every 78) in 64 KiB chunks.
fn bigout(inv: Invocation, io: ProcessIo) -> ExitFuture {
    let total: usize = inv.args.first().and_then(|n| n.parse().ok()).unwrap_or(0);
    Box::pin(async move {
        let line = {
            let mut l = vec![b'x'; 78];
            l.extend_from_slice(b"\r\n");
            l
        };
        let chunk: Vec<u8> = line.iter().cycle().take(64 * 1024).copied().collect();
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len());
            io.stdout(chunk[..n].to_vec()).await;
            left -= n;
        }
        0
    })
}

/// The executor the tests use: cmd.exe plus `bigout`.
pub fn executor() -> Arc<CmdExecutor> {
    let mut exec = CmdExecutor::new("EXCH01");
    exec.register("bigout", Arc::new(bigout));
    Arc::new(exec)
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn start(config: SimConfig) -> RunningSim {
    install_crypto();
    serve(config, executor()).await.expect("simulator starts")
}

pub async fn start_with(config: SimConfig, exec: Arc<dyn exctl_sim::Executor>) -> RunningSim {
    install_crypto();
    serve(config, exec).await.expect("simulator starts")
}

/// A reqwest client for the simulator: trusts its CA when it serves HTTPS.
pub fn client(sim: &RunningSim) -> reqwest::Client {
    install_crypto();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(1);
    if let Some(pem) = sim.ca_pem() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.expect("CA PEM parses"))
                .expect("CA is usable");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder = builder.tls_backend_preconfigured(tls);
    }
    builder.build().expect("client builds")
}

/// The host's own Administrator: a local account, the only kind Windows' Basic accepts.
pub const LOCAL_USER: (&str, &str) = ("EXCH01", "Administrator");

/// `config` with the local account [`LOCAL_USER`] (for the tests that authenticate with
/// Basic).
pub fn local(config: SimConfig) -> SimConfig {
    SimConfig {
        user: (LOCAL_USER.0.into(), LOCAL_USER.1.into()),
        ..config
    }
}

/// Basic credentials of [`LOCAL_USER`].
pub fn basic_auth() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("EXCH01\\Administrator:P@ssw0rd!")
    )
}

/// POSTs a SOAP envelope with Basic credentials; returns status and body text.
pub async fn post(client: &reqwest::Client, sim: &RunningSim, body: &str) -> (u16, String) {
    let resp = client
        .post(sim.url())
        .header("Authorization", basic_auth())
        .header("Content-Type", "application/soap+xml;charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .expect("request goes through");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body reads"))
}

/// A request envelope in the style of pypsrp's (which the recordings come from).
pub fn envelope(
    action: &str,
    resource: &str,
    shell_id: Option<&str>,
    options: &[(&str, &str)],
    timeout: &str,
    body: &str,
) -> String {
    let opts = if options.is_empty() {
        String::new()
    } else {
        let mut o = String::from("<wsman:OptionSet s:mustUnderstand=\"true\">");
        for (k, v) in options {
            o.push_str(&format!("<wsman:Option Name=\"{k}\">{v}</wsman:Option>"));
        }
        o.push_str("</wsman:OptionSet>");
        o
    };
    let sel = shell_id
        .map(|id| {
            format!(
                "<wsman:SelectorSet><wsman:Selector Name=\"ShellId\">{id}</wsman:Selector></wsman:SelectorSet>"
            )
        })
        .unwrap_or_default();
    let body = if body.is_empty() {
        "<s:Body />".to_string()
    } else {
        format!("<s:Body>{body}</s:Body>")
    };
    format!(
        "<s:Envelope {NS_DECLS}><s:Header><wsa:Action s:mustUnderstand=\"true\">{action}</wsa:Action>\
<wsman:MaxEnvelopeSize s:mustUnderstand=\"true\">153600</wsman:MaxEnvelopeSize>\
<wsa:MessageID>uuid:{}</wsa:MessageID><wsman:OperationTimeout>{timeout}</wsman:OperationTimeout>\
<wsa:ReplyTo><wsa:Address s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>\
<wsman:ResourceURI s:mustUnderstand=\"true\">{resource}</wsman:ResourceURI>\
<wsa:To>http://127.0.0.1/wsman</wsa:To>{opts}{sel}</s:Header>{body}</s:Envelope>",
        uuid_like()
    )
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012X}",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn create_body() -> &'static str {
    "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
}

/// Text of the first element whose local name is `name` (any namespace).
pub fn find_text(xml: &str, name: &str) -> Option<String> {
    fn walk(el: &exctl_sim::xml::Element, name: &str) -> Option<String> {
        if el.name == name {
            return Some(el.text.clone());
        }
        el.children.iter().find_map(|c| walk(c, name))
    }
    walk(&exctl_sim::xml::parse(xml.as_bytes()).ok()?, name)
}

/// An attribute of the first element whose local name is `name`.
pub fn find_attr(xml: &str, name: &str, attr: &str) -> Option<String> {
    fn walk(el: &exctl_sim::xml::Element, name: &str, attr: &str) -> Option<String> {
        if el.name == name
            && let Some(v) = el.attr(attr)
        {
            return Some(v.to_string());
        }
        el.children.iter().find_map(|c| walk(c, name, attr))
    }
    walk(&exctl_sim::xml::parse(xml.as_bytes()).ok()?, name, attr)
}

/// Creates a shell over Basic and returns its id.
pub async fn create_shell(client: &reqwest::Client, sim: &RunningSim) -> String {
    let (status, body) = post(
        client,
        sim,
        &envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    find_text(&body, "ShellId").expect("ShellId")
}

/// Runs a command in the shell; returns its id.
pub async fn run_command(
    client: &reqwest::Client,
    sim: &RunningSim,
    shell: &str,
    command: &str,
    args: &[&str],
) -> (u16, String) {
    let mut body = format!("<rsp:CommandLine><rsp:Command>{command}</rsp:Command>");
    for a in args {
        body.push_str(&format!("<rsp:Arguments>{a}</rsp:Arguments>"));
    }
    body.push_str("</rsp:CommandLine>");
    post(
        client,
        sim,
        &envelope(
            COMMAND,
            SHELL_URI,
            Some(shell),
            &[("WINRS_SKIP_CMD_SHELL", "False")],
            "PT20S",
            &body,
        ),
    )
    .await
}

pub fn receive_envelope(shell: &str, command: &str, timeout: &str) -> String {
    envelope(
        RECEIVE,
        SHELL_URI,
        Some(shell),
        &[("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True")],
        timeout,
        &format!(
            "<rsp:Receive><rsp:DesiredStream CommandId=\"{command}\">stdout stderr</rsp:DesiredStream></rsp:Receive>"
        ),
    )
}

/// Receives until Done; returns (stdout, stderr, exit code, number of Receives).
pub async fn receive_all(
    client: &reqwest::Client,
    sim: &RunningSim,
    shell: &str,
    command: &str,
) -> (Vec<u8>, Vec<u8>, u32, usize) {
    use base64::Engine;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for n in 1.. {
        let (status, body) = post(client, sim, &receive_envelope(shell, command, "PT20S")).await;
        assert_eq!(status, 200, "{body}");
        let root = exctl_sim::xml::parse(body.as_bytes()).expect("response parses");
        let rr = &root.children[1].children[0];
        let mut done = None;
        for c in &rr.children {
            if c.name == "Stream" {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(c.text.trim())
                    .expect("base64");
                match c.attr("Name") {
                    Some("stdout") => out.extend_from_slice(&data),
                    Some("stderr") => err.extend_from_slice(&data),
                    other => panic!("stream {other:?}"),
                }
            }
            if c.name == "CommandState" && c.attr("State").is_some_and(|s| s.ends_with("/Done")) {
                done = Some(
                    c.children
                        .first()
                        .map(|e| e.text.parse().expect("exit code"))
                        .expect("ExitCode"),
                );
            }
        }
        if let Some(code) = done {
            return (out, err, code, n);
        }
    }
    unreachable!()
}
