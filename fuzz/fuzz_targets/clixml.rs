#![no_main]
//! `cargo +nightly fuzz run clixml`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("clixml").expect("registered").run)(data);
});
