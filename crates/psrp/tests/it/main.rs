//! The PSRP client's integration tests: recorded traffic and hostile input.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod no_panic;
mod recorded;
