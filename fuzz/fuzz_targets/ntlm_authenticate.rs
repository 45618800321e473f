#![no_main]
//! `cargo +nightly fuzz run ntlm_authenticate`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("ntlm_authenticate")
        .expect("registered")
        .run)(data);
});
