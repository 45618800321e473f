//! The simulator's refusals and limits, each as a real host shows it: unknown ids, the
//! shell quota, oversized envelopes, authentication, unencrypted NTLM traffic, channel
//! binding, OperationTimeout, unknown actions and resources; plus streaming of a large
//! output, Signal, latency injection and the `/sim/state` document.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use exctl_ntlm::{Initiator, InitiatorConfig, Session};
use exctl_sim::{SimConfig, framing};

fn https() -> SimConfig {
    local(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
}

#[tokio::test]
async fn unknown_shell_id_is_invalid_selectors() {
    let sim = start(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let delete = envelope(DELETE, SHELL_URI, Some(&shell), &[], "PT20S", "");
    assert_eq!(post(&c, &sim, &delete).await.0, 200);
    // The shell is gone: every later use of its id is refused.
    let (status, body) = run_command(&c, &sim, &shell, "cmd.exe", &["/c", "echo", "hi"]).await;
    assert_eq!(status, 500);
    assert_eq!(find_text(&body, "Value").as_deref(), Some("s:Sender"));
    assert!(
        body.contains("<s:Value>w:InvalidSelectors</s:Value>"),
        "{body}"
    );
    assert_eq!(
        find_attr(&body, "WSManFault", "Code").as_deref(),
        Some("2150858843")
    );
    assert!(body.contains(&format!(
        "The request for the Windows Remote Shell with ShellId {shell} failed because the shell was not found on the server."
    )));
    let (status, body) = post(&c, &sim, &delete).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(sim.state().snapshot().faults.get("2150858843"), Some(&2));
}

#[tokio::test]
async fn shell_quota_is_a_wmi_error() {
    let sim = start(SimConfig {
        max_shells_per_user: 2,
        ..https()
    })
    .await;
    let c = client(&sim);
    let first = create_shell(&c, &sim).await;
    create_shell(&c, &sim).await;
    let (status, body) = post(
        &c,
        &sim,
        &envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body()),
    )
    .await;
    assert_eq!(status, 500);
    assert!(body.contains("<s:Value>w:QuotaLimit</s:Value>"), "{body}");
    assert_eq!(
        find_text(&body, "error_Code").as_deref(),
        Some("2150859173")
    );
    assert!(body.contains("maximum number of 2 concurrent shells"));
    assert!(!body.contains("WSManFault"));
    // Closing one makes room again.
    let delete = envelope(DELETE, SHELL_URI, Some(&first), &[], "PT20S", "");
    assert_eq!(post(&c, &sim, &delete).await.0, 200);
    create_shell(&c, &sim).await;
    assert_eq!(sim.state().snapshot().shells_open, 2);
}

#[tokio::test]
async fn oversized_envelope_is_413_without_a_body() {
    let sim = start(SimConfig {
        allow_unencrypted: true,
        ..local(SimConfig::default())
    })
    .await;
    let c = client(&sim);
    let padding = "x".repeat(200 * 1024);
    let body = envelope(
        CREATE,
        SHELL_URI,
        None,
        &[],
        "PT20S",
        &format!("<rsp:Shell><rsp:Name>{padding}</rsp:Name></rsp:Shell>"),
    );
    let (status, text) = post(&c, &sim, &body).await;
    assert_eq!(status, 413);
    assert!(text.is_empty());
    // Just under the limit (150 KiB) is served.
    let padding = "x".repeat(140 * 1024);
    let body = envelope(
        CREATE,
        SHELL_URI,
        None,
        &[],
        "PT20S",
        &format!("<rsp:Shell><rsp:Name>{padding}</rsp:Name></rsp:Shell>"),
    );
    assert_eq!(post(&c, &sim, &body).await.0, 200);
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401() {
    let sim = start(https()).await;
    let c = client(&sim);
    let create = envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body());
    let resp = c
        .post(sim.url())
        .header("Content-Type", "application/soap+xml;charset=UTF-8")
        .body(create.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let offered: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(offered, vec!["Negotiate", "Basic realm=\"WSMAN\""]);
    let wrong = format!("Basic {}", B64.encode("EXCH01\\Administrator:nope"));
    let resp = c
        .post(sim.url())
        .header("Authorization", wrong)
        .header("Content-Type", "application/soap+xml;charset=UTF-8")
        .body(create)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(sim.state().snapshot().auth_failures, 1);
}

#[tokio::test]
async fn basic_over_plain_http_is_refused_and_not_offered() {
    let sim = start(SimConfig::default()).await;
    let c = client(&sim);
    let create = envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body());
    let resp = c
        .post(sim.url())
        .header("Authorization", basic_auth())
        .header("Content-Type", "application/soap+xml;charset=UTF-8")
        .body(create)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let offered: Vec<_> = resp.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(offered, vec!["Negotiate"]);
}

fn initiator(channel_bindings: Option<Vec<u8>>) -> Initiator {
    Initiator::new(InitiatorConfig {
        domain: LOCAL_USER.0.into(),
        user: LOCAL_USER.1.into(),
        password: "P@ssw0rd!".into(),
        workstation: None,
        channel_bindings,
        target_spn: Some("HTTP/127.0.0.1".into()),
    })
}

/// NTLM over one connection with the empty-body POST; returns the session or the status
/// of the failed leg.
async fn ntlm_login(
    c: &reqwest::Client,
    url: &str,
    channel_bindings: Option<Vec<u8>>,
) -> Result<Session, u16> {
    ntlm_login_as(c, url, channel_bindings, "Negotiate").await
}

async fn ntlm_login_as(
    c: &reqwest::Client,
    url: &str,
    channel_bindings: Option<Vec<u8>>,
    scheme: &str,
) -> Result<Session, u16> {
    let mut init = initiator(channel_bindings);
    let resp = c
        .post(url)
        .header(
            "Authorization",
            format!("{scheme} {}", B64.encode(init.negotiate_message())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(&format!("{scheme} ")))
        .map(|b| B64.decode(b).unwrap())
        .expect("challenge");
    let auth = init.authenticate_message(&challenge).unwrap();
    let resp = c
        .post(url)
        .header("Authorization", format!("{scheme} {}", B64.encode(auth)))
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        200 => Ok(init.into_session().unwrap()),
        other => Err(other),
    }
}

async fn sealed_post(
    c: &reqwest::Client,
    url: &str,
    session: &mut Session,
    soap: &str,
) -> (u16, String) {
    let (signature, sealed) = session.seal(soap.as_bytes());
    let resp = c
        .post(url)
        .header("Content-Type", framing::ENCRYPTED_CONTENT_TYPE)
        .body(framing::build(soap.len(), &signature, &sealed))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.bytes().await.unwrap();
    assert_eq!(ct.as_deref(), Some(framing::ENCRYPTED_CONTENT_TYPE));
    let part = &framing::parse(&body).unwrap()[0];
    let plain = session.unseal(part.signature, part.sealed).unwrap();
    (status, String::from_utf8(plain).unwrap())
}

#[tokio::test]
async fn ntlm_over_http_must_be_sealed() {
    let sim = start(local(SimConfig::default())).await;
    let c = client(&sim);
    let mut session = ntlm_login(&c, sim.url(), None).await.expect("login");
    let create = envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body());
    // Plain SOAP on the authenticated connection: refused as with AllowUnencrypted=false.
    let resp = c
        .post(sim.url())
        .header("Content-Type", "application/soap+xml;charset=UTF-8")
        .body(create.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    assert!(resp.bytes().await.unwrap().is_empty());
    // Sealed, it works, and faults come back sealed too.
    let (status, body) = sealed_post(&c, sim.url(), &mut session, &create).await;
    assert_eq!(status, 200, "{body}");
    let shell = find_text(&body, "ShellId").unwrap();
    let bad = receive_envelope(&shell, "00000000-0000-0000-0000-000000000000", "PT5S");
    let (status, body) = sealed_post(&c, sim.url(), &mut session, &bad).await;
    assert_eq!(status, 500);
    assert!(body.contains("2150858843"));
    // A new connection is a new authentication.
    let other = client(&sim);
    let resp = other
        .post(sim.url())
        .header("Content-Type", framing::ENCRYPTED_CONTENT_TYPE)
        .body(create)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn channel_binding_is_enforced_when_strict() {
    let sim = start(SimConfig {
        cbt_strict: true,
        ..https()
    })
    .await;
    let wrong = b"tls-server-end-point:0123456789abcdef0123456789abcdef".to_vec();
    let c = client(&sim);
    assert_eq!(
        ntlm_login(&c, sim.url(), Some(wrong)).await.err(),
        Some(401)
    );
    let c = client(&sim);
    assert_eq!(ntlm_login(&c, sim.url(), None).await.err(), Some(401));
}

#[tokio::test]
async fn receive_times_out_then_completes() {
    let sim = start(SimConfig {
        max_timeout_ms: 1000,
        ..https()
    })
    .await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(&c, &sim, &shell, "cmd.exe", &["/c", "timeout", "/t", "2"]).await;
    let cmd = find_text(&body, "CommandId").unwrap();
    // PT60S is capped by MaxTimeoutms (1 s here).
    let started = Instant::now();
    let (status, body) = post(&c, &sim, &receive_envelope(&shell, &cmd, "PT60S")).await;
    let waited = started.elapsed();
    assert_eq!(status, 500, "{body}");
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(2));
    assert!(body.contains("<s:Value>s:Receiver</s:Value>"));
    assert!(body.contains("<s:Value>w:TimedOut</s:Value>"));
    assert_eq!(
        find_attr(&body, "WSManFault", "Code").as_deref(),
        Some("2150858793")
    );
    let (out, err, code, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!((out.len(), err.len(), code), (0, 0, 0));
}

#[tokio::test]
async fn signal_terminate_kills_and_forgets_the_command() {
    let sim = start(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(&c, &sim, &shell, "cmd.exe", &["/c", "timeout", "/t", "600"]).await;
    let cmd = find_text(&body, "CommandId").unwrap();
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
    assert!(body.contains("<rsp:SignalResponse/>"));
    let (status, body) = post(&c, &sim, &receive_envelope(&shell, &cmd, "PT5S")).await;
    assert_eq!(status, 500);
    assert!(body.contains("command identifier that does not exist"));
}

#[tokio::test]
async fn unknown_action_and_resource() {
    let sim = start(https()).await;
    let c = client(&sim);
    let (status, body) = post(
        &c,
        &sim,
        &envelope(
            "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
            SHELL_URI,
            None,
            &[],
            "PT20S",
            "",
        ),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<s:Value>a:ActionNotSupported</s:Value>"),
        "{body}"
    );
    let (status, body) = post(
        &c,
        &sim,
        &envelope(
            CREATE,
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/nosuch",
            None,
            &[],
            "PT20S",
            create_body(),
        ),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<s:Value>w:DestinationUnreachable</s:Value>"),
        "{body}"
    );
    let (status, body) = post(&c, &sim, "<not-soap/>").await;
    assert_eq!(status, 500);
    assert!(body.contains("w:SchemaValidationError"), "{body}");
}

#[tokio::test]
async fn twenty_megabytes_stream_in_bounded_responses() {
    let sim = start(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let total = 20 * 1024 * 1024;
    let (_, body) = run_command(&c, &sim, &shell, "bigout", &[&total.to_string()]).await;
    let cmd = find_text(&body, "CommandId").unwrap();
    let before = sim.state().snapshot().bytes_out;
    let (out, _, code, receives) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(code, 0);
    assert_eq!(out.len(), total);
    assert!(out.starts_with(&[b'x'; 78]) && out[78..80] == *b"\r\n");
    let sent = sim.state().snapshot().bytes_out - before;
    // Every response stays under the client's MaxEnvelopeSize (153600).
    assert!(receives >= total * 4 / 3 / 153_600, "{receives} receives");
    assert!(sent as usize / receives <= 153_600);
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let sim = start(SimConfig {
        latency: Duration::from_millis(300),
        ..https()
    })
    .await;
    let c = client(&sim);
    let started = Instant::now();
    create_shell(&c, &sim).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn state_document_counts_what_happened() {
    let sim = start(https()).await;
    let c = client(&sim);
    let shell = create_shell(&c, &sim).await;
    let (_, body) = run_command(&c, &sim, &shell, "cmd.exe", &["/c", "echo", "hi"]).await;
    let cmd = find_text(&body, "CommandId").unwrap();
    let (out, _, _, _) = receive_all(&c, &sim, &shell, &cmd).await;
    assert_eq!(out, b"hi\r\n");
    let text = c
        .get(sim.state_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["shells_created"], 1);
    assert_eq!(json["shells_open"], 1);
    assert_eq!(json["commands"], 1);
    assert_eq!(json["actions"]["Create"], 1);
    assert_eq!(json["http_status"]["200"], 3);
    assert!(json["bytes_in"].as_u64().unwrap() > 0);
    assert!(json["bytes_out"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn ntlm_scheme_name_is_accepted_too() {
    let sim = start(local(SimConfig::default())).await;
    let c = client(&sim);
    let mut session = ntlm_login_as(&c, sim.url(), None, "NTLM")
        .await
        .expect("login");
    let create = envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body());
    let (status, body) = sealed_post(&c, sim.url(), &mut session, &create).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn basic_over_http_when_unencrypted_is_allowed() {
    let sim = start(SimConfig {
        allow_unencrypted: true,
        ..local(SimConfig::default())
    })
    .await;
    let c = client(&sim);
    create_shell(&c, &sim).await;
}

#[tokio::test]
async fn oversized_chunked_body_is_cut_off_with_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start(SimConfig {
        allow_unencrypted: true,
        ..local(SimConfig::default())
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "POST /wsman HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
         Content-Type: application/soap+xml;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n",
        basic_auth()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'<'; 64 * 1024];
    // Far more than 150 KiB; the simulator stops reading long before the end.
    for _ in 0..8 {
        let frame = format!("{:x}\r\n", chunk.len());
        if tcp.write_all(frame.as_bytes()).await.is_err()
            || tcp.write_all(&chunk).await.is_err()
            || tcp.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

#[tokio::test]
async fn oversized_content_length_is_refused_before_the_body_arrives() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start(SimConfig {
        allow_unencrypted: true,
        ..local(SimConfig::default())
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "POST /wsman HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\
         Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: 10485760\r\n\r\n<s:Envelope",
        basic_auth()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // The 10 MB never come: the answer must not wait for them.
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("content-length: 0"), "{text}");
}

/// Issue 15: Windows' Basic authenticates local accounts only. A domain account's Basic
/// logon is refused as a wrong password is (401, counted as an authentication failure),
/// on `/wsman` and on Exchange's `/PowerShell` alike; the same host takes a local
/// account by any spelling of it.
#[tokio::test]
async fn basic_refuses_a_domain_account_and_takes_a_local_one() {
    let sim = start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .await;
    let c = client(&sim);
    let create = envelope(CREATE, SHELL_URI, None, &[], "PT20S", create_body());
    for path in ["/wsman", "/PowerShell/"] {
        let url = sim.url().replace("/wsman", path);
        for name in ["CONTOSO\\Administrator", "Administrator@contoso.local"] {
            let resp = c
                .post(&url)
                .header(
                    "Authorization",
                    format!("Basic {}", B64.encode(format!("{name}:P@ssw0rd!"))),
                )
                .header("Content-Type", "application/soap+xml;charset=UTF-8")
                .body(create.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{path} {name}");
        }
    }
    let state = sim.state().snapshot();
    assert_eq!(state.auth_failures, 4);
    assert_eq!(state.sections["host"]["local_account"], false);
    assert_eq!(state.sections["host"]["delegation"], false);
    assert_eq!(
        state.sections["host"]["exchange_role"],
        "organization-management"
    );

    let sim = start(https()).await;
    let c = client(&sim);
    for name in ["EXCH01\\Administrator", ".\\Administrator", "Administrator"] {
        let resp = c
            .post(sim.url())
            .header(
                "Authorization",
                format!("Basic {}", B64.encode(format!("{name}:P@ssw0rd!"))),
            )
            .header("Content-Type", "application/soap+xml;charset=UTF-8")
            .body(create.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        let body = resp.text().await.unwrap();
        // A local account owns its shells by its name alone.
        assert!(
            body.contains("<rsp:Owner>Administrator</rsp:Owner>"),
            "{body}"
        );
    }
    assert_eq!(
        sim.state().snapshot().sections["host"]["account"],
        "EXCH01\\Administrator"
    );
}
