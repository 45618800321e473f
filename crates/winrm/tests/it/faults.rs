//! Each class of failure becomes its own error, with a message an administrator can act on.

use std::time::Duration;

use exctl_secret::Secret;
use exctl_winrm::{AuthMethod, Client, ClientConfig, Error, RetryPolicy, ShellOptions};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(endpoint: String) -> ClientConfig {
    let mut cfg = ClientConfig::new(endpoint, "DOM\\svc", Secret::new("s3cret-Pa55"));
    cfg.auth = AuthMethod::Basic;
    cfg.allow_basic_over_http = true;
    cfg.operation_timeout = Duration::from_secs(1);
    cfg.read_timeout_margin = Duration::from_millis(500);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
    };
    cfg
}

fn client(endpoint: String) -> Client {
    Client::new(config(endpoint)).unwrap()
}

async fn server_answering(t: ResponseTemplate) -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("POST")).respond_with(t).mount(&s).await;
    s
}

fn assert_no_secret(e: &Error) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains("s3cret-Pa55"), "secret leaked: {text}");
}

#[tokio::test]
async fn unauthorized_names_the_user_and_what_the_server_offers() {
    let s = server_answering(
        ResponseTemplate::new(401)
            .append_header("WWW-Authenticate", "Negotiate")
            .append_header("WWW-Authenticate", "Kerberos"),
    )
    .await;
    let err = client(format!("{}/wsman", s.uri()))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("the server refused the credentials for 'DOM\\svc'"),
        "{text}"
    );
    // Basic is not among them: the message says what the server would take.
    assert!(
        text.contains("the server offers only Negotiate, Kerberos: choose that authentication"),
        "{text}"
    );
    assert_no_secret(&err);
}

#[tokio::test]
async fn http_413_is_the_envelope_limit() {
    let s = server_answering(ResponseTemplate::new(413)).await;
    let err = client(format!("{}/wsman", s.uri()))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::EnvelopeTooLarge { max_kb: 150 }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the envelope exceeded MaxEnvelopeSize 150 KB")
    );
}

#[tokio::test]
async fn server_error_without_soap_is_an_http_error() {
    let s = server_answering(
        ResponseTemplate::new(503)
            .insert_header("Content-Type", "text/html")
            .set_body_string("<html>Service Unavailable</html>"),
    )
    .await;
    let err = client(format!("{}/wsman", s.uri()))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 503, .. }), "{err:?}");
    let s = server_answering(ResponseTemplate::new(500)).await;
    let err = client(format!("{}/wsman", s.uri()))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Http { status: 500, .. }), "{err:?}");
}

#[tokio::test]
async fn a_200_that_is_not_soap_is_a_protocol_error() {
    let s = server_answering(ResponseTemplate::new(200).set_body_string("hello")).await;
    let err = client(format!("{}/wsman", s.uri()))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let s = server_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).await;
    let cfg = ClientConfig {
        retry: RetryPolicy::none(),
        ..config(format!("{}/wsman", s.uri()))
    };
    let err = Client::new(cfg)
        .unwrap()
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    // Bind, learn the port, close: nothing listens there any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = client(format!("http://127.0.0.1:{port}/wsman"))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("hint: check the host name and port")
    );
}

#[tokio::test]
async fn a_connection_reset_mid_request_is_connection_lost() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            // Read a little of the request, then drop the socket without answering.
            let mut buf = [0u8; 64];
            let _ = sock.readable().await;
            let _ = sock.try_read(&mut buf);
            let _ = sock.set_zero_linger();
            drop(sock);
        }
    });
    let err = client(format!("http://{addr}/wsman"))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
}

const QUOTA_FAULT: &str = r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. </s:Text></s:Reason><s:Detail><p:MSFT_WmiError xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" b:IsCIM_Error="true" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"><p:CIMStatusCode b:CIMType="uint32">27</p:CIMStatusCode><p:CIMStatusCodeDescription b:CIMType="string" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><p:ErrorSource b:CIMType="string" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><p:ErrorSourceFormat b:CIMType="uint16">0</p:ErrorSourceFormat><p:ErrorType b:CIMType="uint16">0</p:ErrorType><p:Message b:CIMType="string">The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. </p:Message><p:MessageID b:CIMType="string">HRESULT 0x803381a5</p:MessageID><p:OtherErrorSourceFormat b:CIMType="string" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><p:OtherErrorType b:CIMType="string" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><p:OwningEntity b:CIMType="string" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><p:PerceivedSeverity b:CIMType="uint16">0</p:PerceivedSeverity><p:ProbableCause b:CIMType="uint16">0</p:ProbableCause><p:ProbableCauseDescription b:CIMType="string" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/><p:error_Category b:CIMType="uint32">30</p:error_Category><p:error_Code b:CIMType="uint32">2150859173</p:error_Code><p:error_Type b:CIMType="string">HRESULT</p:error_Type><p:error_WindowsErrorMessage b:CIMType="string">The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. </p:error_WindowsErrorMessage></p:MSFT_WmiError></s:Detail></s:Fault></s:Body></s:Envelope>"#;

#[tokio::test]
async fn the_shell_quota_fault_keeps_its_wmi_code() {
    let s = server_answering(
        ResponseTemplate::new(500)
            .insert_header("Content-Type", "application/soap+xml;charset=UTF-8")
            .set_body_string(QUOTA_FAULT),
    )
    .await;
    let err = client(format!("{}/wsman", s.uri()))
        .open_shell(&ShellOptions::default())
        .await
        .unwrap_err();
    let f = err.fault().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(f.wmi_error_code, Some(2150859173));
    assert_eq!(f.subcode.as_deref(), Some("InternalError"));
    let text = err.to_string();
    assert!(
        text.contains("2150859173 (MaxShellsPerUser quota reached)"),
        "{text}"
    );
    assert!(
        text.contains("maximum number of 30 concurrent shells"),
        "{text}"
    );
    assert!(text.contains("hint: close idle sessions"), "{text}");
}

#[tokio::test]
async fn basic_over_http_is_refused_before_connecting() {
    let cfg = ClientConfig {
        auth: AuthMethod::Basic,
        ..ClientConfig::new("http://127.0.0.1:9/wsman", "u", Secret::new("p"))
    };
    let err = Client::new(cfg).unwrap_err();
    assert!(matches!(err, Error::InsecureBasic { .. }));
    assert!(err.to_string().contains("in the clear"));
}

/// Issue 17: a web server that is not WinRM (a wrong port or path) is named as such.
#[tokio::test]
async fn a_server_that_is_not_winrm_is_named_as_such() {
    for status in [404, 405, 501] {
        let s = server_answering(ResponseTemplate::new(status).set_body_string("Not here")).await;
        let err = client(format!("{}/", s.uri()))
            .open_shell(&ShellOptions::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("HTTP {status}"))
                && text.contains("is not a WinRM endpoint: check the port"),
            "{text}"
        );
    }
}
