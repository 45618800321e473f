//! NTLM's integration tests: the spec's vectors, both roles over loopback, hostile input,
//! and interop with pyspnego.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod loopback;
mod no_panic;
mod pyspnego_interop;
mod spec_vectors;
