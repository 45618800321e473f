//! Errors of the language: [`ParseError`] for scripts that cannot be parsed, and
//! [`ErrorRecord`], PowerShell's error object, which the interpreter, built-in commands and
//! host commands create, which scripts see as `$_` in `catch`/`trap`, and which
//! [`ErrorRecord::format_v2`] renders exactly as PowerShell 2.0's console shows it.

use std::fmt;

use super::value::Value;

/// PowerShell's `ErrorCategory` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// `NotSpecified`
    #[default]
    NotSpecified,
    /// `OpenError`
    OpenError,
    /// `CloseError`
    CloseError,
    /// `DeviceError`
    DeviceError,
    /// `DeadlockDetected`
    DeadlockDetected,
    /// `InvalidArgument`
    InvalidArgument,
    /// `InvalidData`
    InvalidData,
    /// `InvalidOperation`
    InvalidOperation,
    /// `InvalidResult`
    InvalidResult,
    /// `InvalidType`
    InvalidType,
    /// `MetadataError`
    MetadataError,
    /// `NotImplemented`
    NotImplemented,
    /// `NotInstalled`
    NotInstalled,
    /// `ObjectNotFound`
    ObjectNotFound,
    /// `OperationStopped`
    OperationStopped,
    /// `OperationTimeout`
    OperationTimeout,
    /// `SyntaxError`
    SyntaxError,
    /// `ParserError`
    ParserError,
    /// `PermissionDenied`
    PermissionDenied,
    /// `ResourceBusy`
    ResourceBusy,
    /// `ResourceExists`
    ResourceExists,
    /// `ResourceUnavailable`
    ResourceUnavailable,
    /// `ReadError`
    ReadError,
    /// `WriteError`
    WriteError,
    /// `FromStdErr`
    FromStdErr,
    /// `SecurityError`
    SecurityError,
}

impl ErrorCategory {
    /// The name PowerShell prints.
    pub fn name(self) -> &'static str {
        use ErrorCategory::*;
        match self {
            NotSpecified => "NotSpecified",
            OpenError => "OpenError",
            CloseError => "CloseError",
            DeviceError => "DeviceError",
            DeadlockDetected => "DeadlockDetected",
            InvalidArgument => "InvalidArgument",
            InvalidData => "InvalidData",
            InvalidOperation => "InvalidOperation",
            InvalidResult => "InvalidResult",
            InvalidType => "InvalidType",
            MetadataError => "MetadataError",
            NotImplemented => "NotImplemented",
            NotInstalled => "NotInstalled",
            ObjectNotFound => "ObjectNotFound",
            OperationStopped => "OperationStopped",
            OperationTimeout => "OperationTimeout",
            SyntaxError => "SyntaxError",
            ParserError => "ParserError",
            PermissionDenied => "PermissionDenied",
            ResourceBusy => "ResourceBusy",
            ResourceExists => "ResourceExists",
            ResourceUnavailable => "ResourceUnavailable",
            ReadError => "ReadError",
            WriteError => "WriteError",
            FromStdErr => "FromStdErr",
            SecurityError => "SecurityError",
        }
    }

    /// Parses a category name (case-insensitive), as `Write-Error -Category` does.
    pub fn from_name(name: &str) -> Option<ErrorCategory> {
        use ErrorCategory::*;
        [
            NotSpecified,
            OpenError,
            CloseError,
            DeviceError,
            DeadlockDetected,
            InvalidArgument,
            InvalidData,
            InvalidOperation,
            InvalidResult,
            InvalidType,
            MetadataError,
            NotImplemented,
            NotInstalled,
            ObjectNotFound,
            OperationStopped,
            OperationTimeout,
            SyntaxError,
            ParserError,
            PermissionDenied,
            ResourceBusy,
            ResourceExists,
            ResourceUnavailable,
            ReadError,
            WriteError,
            FromStdErr,
            SecurityError,
        ]
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an error happened, as `InvocationInfo` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorPosition {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column where PowerShell 2.0 puts its `<<<<` marker (just after the token
    /// that failed).
    pub column: u32,
    /// The text of that line.
    pub line_text: String,
}

impl ErrorPosition {
    /// `At line:L char:C` and the marked line, lines joined by `newline`.
    pub fn message(&self, newline: &str) -> String {
        let split = usize::try_from(self.column.saturating_sub(1)).unwrap_or(usize::MAX);
        let before: String = self.line_text.chars().take(split).collect();
        let after: String = self.line_text.chars().skip(split).collect();
        format!(
            "At line:{} char:{}{newline}+ {before} <<<< {after}",
            self.line, self.column
        )
    }
}

/// A PowerShell error record.
#[derive(Clone, Debug)]
pub struct ErrorRecord {
    /// The exception's message.
    pub message: String,
    /// The exception's full .NET type name, e.g.
    /// `System.Management.Automation.CommandNotFoundException`; its last segment is the
    /// `Reason` of the category info.
    pub exception_type: String,
    /// Base types of the exception, most derived first, for `catch [T]` matching
    /// (`System.Exception` always matches and need not be listed).
    pub exception_bases: Vec<String>,
    /// The error category.
    pub category: ErrorCategory,
    /// The command that failed, shown before the message (`Get-Thing : ...`) and as the
    /// activity in the category info (`[Get-Thing]`).
    pub command_name: Option<String>,
    /// The target's display name in the category info (`(fake:String)`).
    pub target_name: String,
    /// The target's type name in the category info.
    pub target_type: String,
    /// The target object itself (`$_.TargetObject`).
    pub target_object: Value,
    /// `FullyQualifiedErrorId`, e.g. `NamedParameterNotFound,Microsoft.Exchange...`.
    pub fully_qualified_error_id: String,
    /// Where the error happened, if in a script.
    pub position: Option<ErrorPosition>,
}

impl ErrorRecord {
    /// A record with the given message, exception type, category and id; no target, no
    /// command, no position.
    pub fn new(
        message: impl Into<String>,
        exception_type: impl Into<String>,
        category: ErrorCategory,
        fully_qualified_error_id: impl Into<String>,
    ) -> ErrorRecord {
        ErrorRecord {
            message: message.into(),
            exception_type: exception_type.into(),
            exception_bases: Vec::new(),
            category,
            command_name: None,
            target_name: String::new(),
            target_type: String::new(),
            target_object: Value::Null,
            fully_qualified_error_id: fully_qualified_error_id.into(),
            position: None,
        }
    }

    /// A `RuntimeException` with id `id` (PowerShell's generic script error).
    pub fn runtime(message: impl Into<String>, category: ErrorCategory, id: &str) -> ErrorRecord {
        ErrorRecord::new(
            message,
            "System.Management.Automation.RuntimeException",
            category,
            id,
        )
    }

    /// Sets the target: its display name is `target` as text and its type name the
    /// short .NET name of the value (`String`, `Int32` ...).
    pub fn with_target(mut self, target: Value) -> ErrorRecord {
        self.target_name = target.to_text();
        self.target_type = target.short_type_name();
        self.target_object = target;
        self
    }

    /// Sets the command name (message prefix and category activity).
    pub fn with_command(mut self, command: impl Into<String>) -> ErrorRecord {
        self.command_name = Some(command.into());
        self
    }

    /// The `Reason` of the category info: the exception type's last segment.
    pub fn reason(&self) -> &str {
        self.exception_type
            .rsplit('.')
            .next()
            .unwrap_or(&self.exception_type)
    }

    /// `$_.CategoryInfo.ToString()`:
    /// `ObjectNotFound: (fake:String) [], CommandNotFoundException`.
    pub fn category_info(&self) -> String {
        format!(
            "{}: ({}:{}) [{}], {}",
            self.category,
            self.target_name,
            self.target_type,
            self.command_name.as_deref().unwrap_or(""),
            self.reason()
        )
    }

    /// `$_.InvocationInfo.PositionMessage`, if the error has a position.
    pub fn position_message(&self, newline: &str) -> Option<String> {
        self.position.as_ref().map(|p| p.message(newline))
    }

    /// Whether `catch [type_name]` catches this error.
    pub fn matches_type(&self, type_name: &str) -> bool {
        let wanted = type_name.trim_start_matches("System.");
        let same = |t: &str| {
            let t = t.trim_start_matches("System.");
            t.eq_ignore_ascii_case(wanted)
                || t.rsplit('.').next().is_some_and(|short| {
                    !wanted.contains('.') && short.eq_ignore_ascii_case(wanted)
                })
        };
        wanted.eq_ignore_ascii_case("Exception")
            || same(&self.exception_type)
            || self.exception_bases.iter().any(|b| same(b))
            || (wanted.eq_ignore_ascii_case("Management.Automation.RuntimeException")
                && self
                    .exception_type
                    .starts_with("System.Management.Automation."))
    }

    /// The record as PowerShell 2.0's console prints it, lines separated by `\n`; see
    /// [`ErrorRecord::format_v2_with`].
    pub fn format_v2(&self) -> String {
        self.format_v2_with("\n")
    }

    /// The record as PowerShell 2.0's console prints it, without a trailing line break:
    ///
    /// ```text
    /// Get-Thing : message
    /// At line:1 char:10
    /// + Get-Thing <<<<  -Bad
    ///     + CategoryInfo          : InvalidArgument: (:) [Get-Thing], ParameterBindingException
    ///     + FullyQualifiedErrorId : NamedParameterNotFound,Get-Thing
    /// ```
    pub fn format_v2_with(&self, newline: &str) -> String {
        let mut out = String::new();
        if let Some(command) = &self.command_name {
            out.push_str(command);
            out.push_str(" : ");
        }
        out.push_str(&self.message.replace('\n', newline));
        if let Some(position) = self.position_message(newline) {
            out.push_str(newline);
            out.push_str(&position);
        }
        out.push_str(newline);
        out.push_str("    + CategoryInfo          : ");
        out.push_str(&self.category_info());
        out.push_str(newline);
        out.push_str("    + FullyQualifiedErrorId : ");
        out.push_str(&self.fully_qualified_error_id);
        out
    }
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorRecord {}

/// What kind of parse error; each has PowerShell's error id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A token that cannot appear where it is.
    UnexpectedToken,
    /// A `{` without its `}`.
    MissingEndCurlyBrace,
    /// A `(` without its `)`.
    MissingEndParenthesis,
    /// A `[` without its `]`.
    MissingEndSquareBracket,
    /// A string without its closing quote.
    TerminatorExpectedAtEndOfString,
    /// An operator without its right operand, a statement without its expression.
    ExpectedExpression,
    /// A keyword statement missing a part (condition, body, variable ...).
    MissingStatementPart,
    /// A hash literal that is malformed.
    InvalidHashLiteral,
    /// The same key twice in a hash literal.
    DuplicateKeyInHashLiteral,
    /// A variable reference that is malformed.
    InvalidVariableReference,
    /// A number literal that is malformed or out of range.
    BadNumericConstant,
    /// Valid PowerShell that this interpreter does not support; refused rather than
    /// mis-executed.
    Unsupported,
    /// Nesting deeper than the parser allows.
    TooDeep,
}

impl ParseErrorKind {
    /// The error id PowerShell uses (ours for [`ParseErrorKind::Unsupported`] and
    /// [`ParseErrorKind::TooDeep`]).
    pub fn error_id(self) -> &'static str {
        match self {
            ParseErrorKind::UnexpectedToken => "UnexpectedToken",
            ParseErrorKind::MissingEndCurlyBrace => "MissingEndCurlyBrace",
            ParseErrorKind::MissingEndParenthesis => "MissingEndParenthesisInExpression",
            ParseErrorKind::MissingEndSquareBracket => "MissingEndSquareBracket",
            ParseErrorKind::TerminatorExpectedAtEndOfString => "TerminatorExpectedAtEndOfString",
            ParseErrorKind::ExpectedExpression => "ExpectedExpression",
            ParseErrorKind::MissingStatementPart => "MissingStatementPart",
            ParseErrorKind::InvalidHashLiteral => "InvalidHashLiteral",
            ParseErrorKind::DuplicateKeyInHashLiteral => "DuplicateKeysInHashLiteral",
            ParseErrorKind::InvalidVariableReference => "InvalidVariableReference",
            ParseErrorKind::BadNumericConstant => "BadNumericConstant",
            ParseErrorKind::Unsupported => "UnsupportedSyntax",
            ParseErrorKind::TooDeep => "ScriptTooDeeplyNested",
        }
    }
}

/// A script that cannot be parsed, with PowerShell's message and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ParseError {
    /// What kind of error.
    pub kind: ParseErrorKind,
    /// PowerShell's message, e.g. `Missing closing '}' in statement block.`
    pub message: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column of the marker (just after the last good token, as PowerShell 2.0
    /// places it).
    pub column: u32,
    /// The text of that line.
    pub line_text: String,
}

impl ParseError {
    /// The error as a record (`ParseException`, category `ParserError`).
    pub fn to_record(&self) -> ErrorRecord {
        let mut record = ErrorRecord::new(
            self.message.clone(),
            "System.Management.Automation.ParseException",
            ErrorCategory::ParserError,
            self.kind.error_id(),
        );
        record.exception_bases = vec!["System.Management.Automation.RuntimeException".into()];
        record.position = Some(ErrorPosition {
            line: self.line,
            column: self.column,
            line_text: self.line_text.clone(),
        });
        record
    }
}
