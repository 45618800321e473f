//! The PowerShell interpreter's integration tests: the parser and the interpreter.
//!
//! One test binary per package (`autotests = false`, see Cargo.toml): linking one binary
//! instead of one per file is most of the suite's time on two cores. Add a module here.

mod interp;
mod parse;
