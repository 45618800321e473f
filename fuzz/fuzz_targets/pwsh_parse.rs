#![no_main]
//! `cargo +nightly fuzz run pwsh_parse`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("pwsh_parse").expect("registered").run)(data);
});
