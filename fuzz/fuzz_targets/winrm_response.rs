#![no_main]
//! `cargo +nightly fuzz run winrm_response`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("winrm_response")
        .expect("registered")
        .run)(data);
});
