//! exctl: the command line.
fn main() {}
