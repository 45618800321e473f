//! The WinRM client's integration tests: faults, framing properties and recorded traffic.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod faults;
mod framing_props;
mod recorded;
