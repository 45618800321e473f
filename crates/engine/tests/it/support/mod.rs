//! Reading the commands of an apply script back, for the fake hosts: each line that is
//! one rendered command (see `exctl_pwsh::Command`) is read with the interpreter's
//! parser, never by splitting text.

use exctl_pwsh::{Arg, Command};

/// The commands of `body`, in order: every line that parses as one command with named
/// literal parameters (other lines, such as records and restart logic, are not).
pub fn commands_in(body: &str) -> Vec<Command> {
    body.lines()
        .filter_map(|l| exctl_pwsh_interp::parse_command(l.trim()).ok())
        .collect()
}

/// The first command named `name` (ignoring case) in `body`.
pub fn command_in(body: &str, name: &str) -> Option<Command> {
    commands_in(body)
        .into_iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

/// An argument as the fake hosts keep values: as text.
pub fn text(a: &Arg) -> String {
    match a {
        Arg::Str(s) => s.clone(),
        Arg::Int(i) => i.to_string(),
        Arg::Bool(true) | Arg::Switch => "True".into(),
        Arg::Bool(false) => "False".into(),
        Arg::Null => String::new(),
        Arg::List(l) => l.iter().map(text).collect::<Vec<_>>().join(","),
    }
}
