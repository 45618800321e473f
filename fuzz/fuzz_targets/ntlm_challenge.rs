#![no_main]
//! `cargo +nightly fuzz run ntlm_challenge`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("ntlm_challenge")
        .expect("registered")
        .run)(data);
});
