//! Inventory checks that happen before any connection.

use exctl_engine::desired;

#[test]
fn remote_session_access_is_refused_until_it_is_implemented() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "hosts:\n  EX01:\n    endpoint: https://ex01:5986/wsman\n    user: C\\u\n    credential: env:X\n    exchange: 2010-sp3\n    access: remote-session\n",
    )
    .unwrap();
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.path().to_path_buf()]);
    let _ = desired::build(&sources, &docs, &mut diags);
    let d = diags
        .iter()
        .find(|d| d.code == "manifest::unsupported-access")
        .expect("remote-session is refused");
    assert!(d.is_error());
    assert_eq!(
        d.span.map(|s| (s.start.line, s.start.column)),
        Some((7, 13))
    );
    assert!(d.hint.as_deref().unwrap_or("").contains("access: snapin"));
}
