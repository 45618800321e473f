#![no_main]
//! `cargo +nightly fuzz run winrm_framing`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("winrm_framing").expect("registered").run)(data);
});
