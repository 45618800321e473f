#![no_main]
//! `cargo +nightly fuzz run manifest_load`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("manifest_load").expect("registered").run)(data);
});
