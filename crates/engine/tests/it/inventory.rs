//! Inventory checks that happen before any connection.

use exctl_engine::desired::{self, Access};

fn build(inventory: &str) -> (desired::DesiredState, exctl_manifest::Diagnostics) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), inventory).unwrap();
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.path().to_path_buf()]);
    let state = desired::build(&sources, &docs, &mut diags);
    (state, diags)
}

const HOST: &str = "hosts:\n  EX01:\n    endpoint: https://ex01:5986/wsman\n    user: C\\u\n    credential: env:X\n    exchange: 2010-sp3\n";

#[test]
fn remote_session_access_with_its_default_and_declared_endpoint() {
    let (state, diags) = build(&format!("{HOST}    access: remote-session\n"));
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    let h = &state.hosts["EX01"];
    assert_eq!(h.access, Access::RemoteSession);
    assert_eq!(h.exchange_uri(), "http://EX01/PowerShell/");
    let (state, diags) = build(&format!(
        "{HOST}    access: remote-session\n    session_uri: https://ex01.contoso.local/PowerShell/\n"
    ));
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    assert_eq!(
        state.hosts["EX01"].exchange_uri(),
        "https://ex01.contoso.local/PowerShell/"
    );
}

#[test]
fn a_session_uri_is_checked_where_it_is_written() {
    let (_, diags) = build(&format!(
        "{HOST}    access: remote-session\n    session_uri: https://ex01:5986/wsman\n"
    ));
    let d = diags
        .iter()
        .find(|d| d.code == "manifest::session-uri")
        .expect("not the PowerShell virtual directory");
    assert!(d.is_error());
    assert_eq!(
        d.span.map(|s| (s.start.line, s.start.column)),
        Some((8, 18))
    );
    assert!(d.hint.as_deref().unwrap_or("").contains("/PowerShell/"));
    let (_, diags) = build(&format!(
        "{HOST}    access: snapin\n    session_uri: http://ex01/PowerShell/\n"
    ));
    let d = diags
        .iter()
        .find(|d| d.code == "manifest::session-uri-without-session")
        .expect("session_uri needs remote-session or psrp");
    assert!(d.hint.as_deref().unwrap_or("").contains("access: psrp"));
}

#[test]
fn psrp_is_the_default_and_snapin_warns() {
    let (state, diags) = build(HOST);
    assert_eq!(state.hosts["EX01"].access, Access::Psrp);
    assert!(diags.is_empty(), "{:?}", diags.as_slice());
    let (state, diags) = build(&format!("{HOST}    access: snapin\n"));
    assert_eq!(state.hosts["EX01"].access, Access::Snapin);
    let d = diags
        .iter()
        .find(|d| d.code == "manifest::snapin-unsupported")
        .expect("a warning");
    assert!(!d.is_error());
    assert_eq!(d.span.map(|s| s.start.line), Some(7));
    assert!(d.hint.as_deref().unwrap_or("").contains("access: psrp"));
}

#[test]
fn psrp_access_reaches_exchanges_endpoint_by_the_endpoints_name() {
    let (state, diags) = build(&format!(
        "{HOST}    access: psrp
"
    ));
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    let h = &state.hosts["EX01"];
    assert_eq!(h.exchange_auth, exctl_engine::desired::Auth::Kerberos);
    // The endpoint's host, without its WinRM port.
    assert_eq!(h.exchange_uri(), "http://ex01/PowerShell/");
    let (_, diags) = build(&format!(
        "{HOST}    access: snapin\n    exchange_auth: ntlm\n"
    ));
    assert!(
        diags
            .iter()
            .any(|d| d.code == "manifest::exchange-auth-without-psrp" && d.is_error()),
        "{:?}",
        diags.as_slice()
    );
}

#[test]
fn kerberos_to_exchanges_endpoint_by_address_is_refused_where_it_is_written() {
    let by_address = "hosts:\n  EX01:\n    endpoint: http://10.0.0.5:5985/wsman\n    user: C\\u\n    credential: env:X\n    exchange: 2010-sp3\n";
    let (_, diags) = build(by_address);
    let d = diags
        .iter()
        .find(|d| d.code == "manifest::kerberos-address")
        .expect("Kerberos to an address");
    assert!(
        d.message.contains("http://10.0.0.5/PowerShell/"),
        "{}",
        d.message
    );
    assert!(d.hint.as_deref().unwrap_or("").contains("session_uri"));
    // By name, or with NTLM there, it is fine.
    let (_, diags) = build(&format!(
        "{by_address}    session_uri: http://ex01.contoso.local/PowerShell/\n"
    ));
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    let (_, diags) = build(&format!("{by_address}    exchange_auth: ntlm\n"));
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
}
