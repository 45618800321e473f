#![no_main]
//! `cargo +nightly fuzz run psrp_message`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("psrp_message").expect("registered").run)(data);
});
