#![no_main]
//! `cargo +nightly fuzz run sim_framing`: see `fuzz/src/targets.rs` for what it covers.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (exctl_fuzz::target("sim_framing").expect("registered").run)(data);
});
