//! The simulator's integration tests: faults, Python peers, powershell.exe, PSRP,
//! recorded traffic replayed, and properties of its SOAP and framing readers.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod common;

mod faults;
mod peers;
mod powershell;
mod psrp_peers;
mod replay;
mod soap_props;
