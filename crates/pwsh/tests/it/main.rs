//! exctl-pwsh's integration tests: CLIXML, literals and the stdin runner.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod clixml;
mod literal;
mod runner;
