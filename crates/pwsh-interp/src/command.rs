//! Reading a rendered [`Command`] back (for tests and fakes that receive script text): the
//! text goes through the interpreter's own parser, so a literal that does not stay one
//! literal is caught as PowerShell would read it.

use exctl_pwsh::command::{Arg, Command, Param};

/// Why text is not one rendered command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandParseError {
    /// The text is not PowerShell the interpreter's parser reads.
    #[error("{0}")]
    Syntax(String),
    /// The text parses but is not one command with named literal parameters.
    #[error("not one command with named literal parameters: {0}")]
    NotACommand(&'static str),
}

/// Reads one rendered command back with the interpreter's parser: one statement that
/// is a command by name with named parameters whose values are literals (optionally
/// assigned to `$null` or piped to `Out-Null`, as scripts discard output).
pub fn parse_command(text: &str) -> Result<Command, CommandParseError> {
    use crate::ast::{CommandElement, CommandTarget, ElementKind, StatementKind};

    let script = crate::parse(text).map_err(|e| CommandParseError::Syntax(e.message))?;
    let block = &script.block.end;
    let [statement] = block.statements.as_slice() else {
        return Err(CommandParseError::NotACommand("not exactly one statement"));
    };
    let pipeline = match &statement.kind {
        StatementKind::Pipeline(p) => p,
        StatementKind::Assign { value, .. } => match &value.kind {
            StatementKind::Pipeline(p) => p,
            _ => return Err(CommandParseError::NotACommand("a nested assignment")),
        },
        _ => return Err(CommandParseError::NotACommand("not a pipeline")),
    };
    let Some((first, rest)) = pipeline.elements.split_first() else {
        return Err(CommandParseError::NotACommand("an empty pipeline"));
    };
    for e in rest {
        let discards = matches!(&e.kind, ElementKind::Command(c)
            if matches!(&c.target, CommandTarget::Name(n) if n.eq_ignore_ascii_case("Out-Null")));
        if !discards {
            return Err(CommandParseError::NotACommand(
                "piped to something else than Out-Null",
            ));
        }
    }
    let ElementKind::Command(c) = &first.kind else {
        return Err(CommandParseError::NotACommand("an expression"));
    };
    let CommandTarget::Name(name) = &c.target else {
        return Err(CommandParseError::NotACommand("a computed command name"));
    };
    let mut out = Command::new(name.clone());
    let mut elements = c.elements.iter().peekable();
    while let Some(e) = elements.next() {
        let CommandElement::Parameter { name, argument, .. } = e else {
            return Err(CommandParseError::NotACommand(
                "a positional argument or a splat",
            ));
        };
        let value = match argument {
            Some(a) => arg_of(a)?,
            None => match elements.peek() {
                Some(CommandElement::Argument(a)) => {
                    elements.next();
                    arg_of(a)?
                }
                _ => Arg::Switch,
            },
        };
        out.params.push(Param {
            name: name.clone(),
            value,
        });
    }
    Ok(out)
}

fn arg_of(e: &crate::ast::Expr) -> Result<Arg, CommandParseError> {
    use crate::ast::{Constant, ExprKind, StatementKind};

    fn lone(s: &crate::ast::Statement) -> Option<&crate::ast::Expr> {
        match &s.kind {
            StatementKind::Pipeline(p) => p.as_expression(),
            _ => None,
        }
    }
    Ok(match &e.kind {
        ExprKind::Constant(Constant::Str(s)) => Arg::Str(s.to_string()),
        ExprKind::Constant(Constant::Int(i)) => Arg::Int(i64::from(*i)),
        ExprKind::Constant(Constant::Long(i)) => Arg::Int(*i),
        ExprKind::Variable(v) if v.qualifier.is_none() => {
            match v.name.to_ascii_lowercase().as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "null" => Arg::Null,
                _ => return Err(CommandParseError::NotACommand("a variable")),
            }
        }
        ExprKind::ArrayLiteral(items) => {
            Arg::List(items.iter().map(arg_of).collect::<Result<_, _>>()?)
        }
        ExprKind::UnaryComma(x) => Arg::List(vec![arg_of(x)?]),
        ExprKind::ArraySubExpression(block) => match block.statements.as_slice() {
            [] => Arg::List(Vec::new()),
            [s] => match lone(s).map(arg_of).transpose()? {
                Some(Arg::List(l)) => Arg::List(l),
                Some(other) => Arg::List(vec![other]),
                None => return Err(CommandParseError::NotACommand("a statement in @()")),
            },
            _ => return Err(CommandParseError::NotACommand("statements in @()")),
        },
        // `([long]::MinValue)`, the one integer that has no literal.
        ExprKind::Paren(s) => match lone(s).map(|x| &x.kind) {
            Some(ExprKind::Member {
                target,
                name,
                is_static: true,
            }) if matches!(&target.kind, ExprKind::TypeLiteral(t) if t.name.eq_ignore_ascii_case("long"))
                && matches!(&name.kind, ExprKind::Constant(Constant::Str(n)) if n.eq_ignore_ascii_case("MinValue")) =>
            {
                Arg::Int(i64::MIN)
            }
            _ => {
                return Err(CommandParseError::NotACommand(
                    "an expression in parentheses",
                ));
            }
        },
        _ => {
            return Err(CommandParseError::NotACommand(
                "an expression that is no literal",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn imap() -> Command {
        Command::new("Set-ImapSettings")
            .param("Server", "EX01")
            .param("MaxConnections", 20)
            .param("Banner", "a'b")
            .param("SSLBindings", vec!["0.0.0.0:993", "[::]:993"])
            .param("Confirm", false)
            .param("Enabled", true)
    }

    #[test]
    fn reads_back_what_it_renders() {
        for c in [
            imap(),
            Command::new("Get-Thing"),
            Command::new("X").switch("Force"),
        ] {
            assert_eq!(parse_command(&c.to_script()), Ok(c));
        }
        assert_eq!(
            parse_command("$null = New-Item -Path 'p' -Force"),
            Ok(Command::new("New-Item").param("Path", "p").switch("Force"))
        );
        assert_eq!(
            parse_command("New-Item -Path 'p' | Out-Null"),
            Ok(Command::new("New-Item").param("Path", "p"))
        );
        for bad in [
            "Set-X -Identity $t",
            "Set-X 'positional'",
            "$a = 1; Set-X",
            "& $x",
        ] {
            assert!(parse_command(bad).is_err(), "{bad}");
        }
    }

    /// Text meant to escape a literal: every single quote PowerShell knows, a
    /// subexpression, separators, line breaks.
    fn hostile() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("'".to_string()),
                Just("\u{2018}".to_string()),
                Just("\u{2019}".to_string()),
                Just("\u{201A}".to_string()),
                Just("\u{201B}".to_string()),
                Just("$(Remove-Item C:\\ -Recurse)".to_string()),
                Just("`".to_string()),
                Just("\"".to_string()),
                Just(";".to_string()),
                Just(",".to_string()),
                Just(" -Force".to_string()),
                Just("\r\n".to_string()),
                Just("@{".to_string()),
                "[a-zA-Z0-9 ]{0,4}",
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    fn arg() -> impl Strategy<Value = Arg> {
        let leaf = prop_oneof![
            hostile().prop_map(Arg::Str),
            any::<i64>().prop_map(Arg::Int),
            Just(Arg::Null),
            any::<bool>().prop_map(Arg::Bool),
        ];
        prop_oneof![
            4 => leaf.clone(),
            1 => prop::collection::vec(leaf, 0..4).prop_map(Arg::List),
            1 => Just(Arg::Switch),
        ]
    }

    proptest! {
        /// Whatever the values, the rendered text is exactly one command with exactly
        /// these parameters: every hostile string stays one literal.
        #[test]
        fn rendering_round_trips_through_the_parser(
            params in prop::collection::vec(("[A-Z][a-zA-Z]{0,12}", arg()), 0..6)
        ) {
            let mut c = Command::new("Set-Thing");
            for (name, value) in params {
                c = c.param(name, value);
            }
            let text = c.to_script();
            prop_assert_eq!(parse_command(&text), Ok(c), "{}", text);
        }
    }
}
