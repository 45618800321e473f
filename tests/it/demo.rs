//! `exctl demo`, the README's first command: against the sample repository it plans,
//! applies and converges every host, with nothing leaving 127.0.0.1.

use crate::common;

use common::{exctl, text};

#[test]
fn the_demo_converges_the_sample_repository() {
    let out = exctl()
        .args(["demo", "--time-scale", "0.002"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("exctl demo runs");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for expected in [
        "=== exctl plan ===",
        "restart MSExchangeIS",
        "=== exctl apply --auto-approve ===",
        "=== exctl plan (again) ===",
        "Every host converged.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("Demo-Only-Pa55!"),
        "the password never appears"
    );
}
