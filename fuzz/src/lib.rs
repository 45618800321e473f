//! The fuzz targets of exctl, for cargo-fuzz. The bodies live in `targets.rs`, which the
//! stable corpus runner of the main test suite includes as well; see CONTRIBUTING.md.

mod targets;

pub use targets::*;
