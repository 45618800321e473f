//! The interface between the interpreter and whoever embeds it: [`Host`] provides the
//! commands the language does not know (every Exchange cmdlet, `Get-ItemProperty`,
//! `Restart-Service` ...), declares their parameters as [`CommandInfo`] so that the
//! interpreter binds arguments the PowerShell way, and runs them through [`Call`];
//! [`OutputSink`] receives what the script writes, as it writes it.
//!
//! # Time and blocking
//!
//! The interpreter is synchronous: [`super::Interpreter::run`] returns when the script ends.
//! It is meant to run on a blocking thread (`tokio::task::spawn_blocking`, or the thread it
//! starts itself, see [`super::Limits::stack_size`]), and host calls may block: a simulated
//! Information Store restart can wait on the simulator's clock, a `Start-Sleep 30` calls
//! [`Host::sleep`], which the host implements against its own clock (tokio time, a
//! simulated clock, or the default real sleep). While it waits, the WinRM layer keeps
//! answering Receive requests with OperationTimeout faults, because output reaches it through
//! the sink, not through the return value. [`StopSignal`] lets the embedder stop a running
//! script (a WinRS Signal terminate); the interpreter checks it at every statement and loop
//! iteration, and `sleep` implementations should check it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::error::{ErrorCategory, ErrorRecord};
use super::value::{PsObject, Value};

/// Shared flag that stops a running script; clone it before `run` and call
/// [`StopSignal::stop`] from any thread.
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal that is not raised.
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Asks the script to stop as soon as possible.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Receives what a script writes, in order, as it is written.
pub trait OutputSink {
    /// Text for stdout: formatted pipeline output, `Write-Host`, `$Host.UI.Write*`,
    /// `[Console]::Out.Write`. Line breaks are included (`\r\n` by default, see
    /// [`super::Limits::newline`]).
    fn stdout(&mut self, text: &str);
    /// An error record on the error stream: a non-terminating error that was not
    /// suppressed, or the terminating error that ended the script.
    fn error(&mut self, record: &ErrorRecord);
    /// A line written with `$Host.UI.WriteErrorLine` (the runner's bootstrap writes the
    /// formatted error of its `trap` this way).
    fn host_error_line(&mut self, line: &str);
    /// A `Write-Warning` message (without the `WARNING: ` prefix).
    fn warning(&mut self, _message: &str) {}
    /// A `Write-Verbose` message that was not suppressed.
    fn verbose(&mut self, _message: &str) {}
    /// A `Write-Debug` message that was not suppressed.
    fn debug(&mut self, _message: &str) {}
    /// An object reaching the end of a top-level pipeline. A sink that returns true has
    /// taken it as an object (PowerShell remoting sends objects, not text) and it is not
    /// formatted for [`OutputSink::stdout`]; the default formats it, as powershell.exe
    /// does.
    fn object(&mut self, _value: &Value) -> bool {
        false
    }
}

/// An [`OutputSink`] that keeps everything, for tests and small scripts.
#[derive(Debug, Default)]
pub struct CollectSink {
    /// Everything written to stdout.
    pub stdout: String,
    /// Error records, in order.
    pub errors: Vec<ErrorRecord>,
    /// `$Host.UI.WriteErrorLine` lines, in order.
    pub host_error_lines: Vec<String>,
    /// Warnings, in order.
    pub warnings: Vec<String>,
    /// Verbose messages, in order.
    pub verbose: Vec<String>,
    /// Debug messages, in order.
    pub debug: Vec<String>,
}

impl OutputSink for CollectSink {
    fn stdout(&mut self, text: &str) {
        self.stdout.push_str(text);
    }
    fn error(&mut self, record: &ErrorRecord) {
        self.errors.push(record.clone());
    }
    fn host_error_line(&mut self, line: &str) {
        self.host_error_lines.push(line.to_owned());
    }
    fn warning(&mut self, message: &str) {
        self.warnings.push(message.to_owned());
    }
    fn verbose(&mut self, message: &str) {
        self.verbose.push(message.to_owned());
    }
    fn debug(&mut self, message: &str) {
        self.debug.push(message.to_owned());
    }
}

/// The type a parameter declares; arguments are converted to it before the host sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamType {
    /// `Object`: taken as given.
    Any,
    /// `String`.
    String,
    /// `Int32`.
    Int,
    /// `Int64`.
    Long,
    /// `UInt32` (the value is an `Int64` in range).
    UInt32,
    /// `Double`.
    Double,
    /// `Boolean`: only booleans and numbers are accepted, as PowerShell binds them.
    Bool,
    /// `SwitchParameter`: `-Force`, `-Force:$false`.
    Switch,
    /// `T[]`: a scalar becomes a one-element array.
    Array(Box<ParamType>),
    /// `Hashtable`.
    Hashtable,
    /// `ScriptBlock`.
    ScriptBlock,
    /// `TimeSpan`.
    TimeSpan,
    /// `DateTime`.
    DateTime,
    /// `Nullable<T>`: `$null` stays `$null` (Exchange's throttling values, where `$null`
    /// means unlimited); anything else converts to `T`.
    Nullable(Box<ParamType>),
    /// A type only the host knows (`Unlimited`, `ByteQuantifiedSize`,
    /// `ServerIdParameter` ...): converted by [`Host::convert_argument`] with this name.
    Custom(String),
}

impl ParamType {
    /// The .NET type name used in binding error messages.
    pub fn type_name(&self) -> String {
        match self {
            ParamType::Any => "System.Object".into(),
            ParamType::String => "System.String".into(),
            ParamType::Int => "System.Int32".into(),
            ParamType::Long => "System.Int64".into(),
            ParamType::UInt32 => "System.UInt32".into(),
            ParamType::Double => "System.Double".into(),
            ParamType::Bool => "System.Boolean".into(),
            ParamType::Switch => "System.Management.Automation.SwitchParameter".into(),
            ParamType::Array(inner) => format!("{}[]", inner.type_name()),
            ParamType::Hashtable => "System.Collections.Hashtable".into(),
            ParamType::ScriptBlock => "System.Management.Automation.ScriptBlock".into(),
            ParamType::TimeSpan => "System.TimeSpan".into(),
            ParamType::DateTime => "System.DateTime".into(),
            ParamType::Nullable(inner) => format!("System.Nullable`1[{}]", inner.type_name()),
            ParamType::Custom(name) => name.clone(),
        }
    }
}

/// One declared parameter of a host command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterInfo {
    /// The name, as PowerShell prints it (`Server`).
    pub name: String,
    /// Other names (`Identity` might have none, `ErrorAction` has `ea`).
    pub aliases: Vec<String>,
    /// The declared type.
    pub ty: ParamType,
    /// Whether it must be given (in the parameter sets it belongs to).
    pub mandatory: bool,
    /// Its position for positional arguments, 0-based.
    pub position: Option<u32>,
    /// Whether pipeline objects bind to it by value.
    pub from_pipeline: bool,
    /// Whether pipeline objects bind to it by a property of the same name.
    pub from_pipeline_by_property_name: bool,
    /// The parameter sets it belongs to; empty means all of them.
    pub sets: Vec<String>,
    /// Whether it collects the positional arguments no other parameter takes
    /// (`ValueFromRemainingArguments`, e.g. `Write-Host a b c`).
    pub remaining_arguments: bool,
}

impl ParameterInfo {
    /// An optional, named-only parameter of all sets.
    pub fn new(name: impl Into<String>, ty: ParamType) -> ParameterInfo {
        ParameterInfo {
            name: name.into(),
            aliases: Vec::new(),
            ty,
            mandatory: false,
            position: None,
            from_pipeline: false,
            from_pipeline_by_property_name: false,
            sets: Vec::new(),
            remaining_arguments: false,
        }
    }

    /// Collects the positional arguments no other parameter takes.
    pub fn remaining_arguments(mut self) -> Self {
        self.remaining_arguments = true;
        self
    }

    /// Marks it mandatory.
    pub fn mandatory(mut self) -> Self {
        self.mandatory = true;
        self
    }

    /// Gives it a position.
    pub fn position(mut self, position: u32) -> Self {
        self.position = Some(position);
        self
    }

    /// Adds an alias.
    pub fn alias(mut self, alias: impl Into<String>) -> Self {
        self.aliases.push(alias.into());
        self
    }

    /// Binds pipeline objects by value.
    pub fn from_pipeline(mut self) -> Self {
        self.from_pipeline = true;
        self
    }

    /// Binds pipeline objects by property name.
    pub fn from_pipeline_by_property_name(mut self) -> Self {
        self.from_pipeline_by_property_name = true;
        self
    }

    /// Puts it in a parameter set (call again for more sets).
    pub fn in_set(mut self, set: impl Into<String>) -> Self {
        self.sets.push(set.into());
        self
    }

    fn in_set_named(&self, set: &str) -> bool {
        self.sets.is_empty() || self.sets.iter().any(|s| s.eq_ignore_ascii_case(set))
    }

    pub(crate) fn belongs_to(&self, set: Option<&str>) -> bool {
        set.is_none_or(|s| self.in_set_named(s))
    }
}

/// How a host command receives pipeline input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InputMode {
    /// [`Host::invoke`] runs once per pipeline object, after binding the object to the
    /// parameters that take pipeline input (or once without input). Most cmdlets.
    #[default]
    PerRecord,
    /// [`Host::invoke`] runs once, at the end, with every pipeline object in
    /// [`Call::pipeline_input`] and no pipeline binding (`Export-Clixml`, `Format-Table`).
    Collect,
}

/// A host command's declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// The name as PowerShell prints it, e.g. `Set-ImapSettings`.
    pub name: String,
    /// The implementing type, used in fully qualified error ids, e.g.
    /// `Microsoft.Exchange.Management.SystemConfigurationTasks.SetImapSettings`.
    pub full_name: String,
    /// The parameters (common parameters are added by the interpreter).
    pub parameters: Vec<ParameterInfo>,
    /// The set used when the arguments fit several.
    pub default_parameter_set: Option<String>,
    /// Whether `-WhatIf` and `-Confirm` exist (they are passed on in the bound arguments).
    pub supports_should_process: bool,
    /// How pipeline input arrives.
    pub input: InputMode,
}

impl CommandInfo {
    /// A command without parameters.
    pub fn new(name: impl Into<String>, full_name: impl Into<String>) -> CommandInfo {
        CommandInfo {
            name: name.into(),
            full_name: full_name.into(),
            parameters: Vec::new(),
            default_parameter_set: None,
            supports_should_process: false,
            input: InputMode::PerRecord,
        }
    }

    /// Adds a parameter, builder style.
    pub fn param(mut self, p: ParameterInfo) -> Self {
        self.parameters.push(p);
        self
    }

    /// Sets the default parameter set.
    pub fn default_set(mut self, set: impl Into<String>) -> Self {
        self.default_parameter_set = Some(set.into());
        self
    }

    /// Adds `-WhatIf` and `-Confirm`.
    pub fn should_process(mut self) -> Self {
        self.supports_should_process = true;
        self
    }

    /// Sets the input mode.
    pub fn input_mode(mut self, mode: InputMode) -> Self {
        self.input = mode;
        self
    }

    /// The declared parameter sets, in order of first appearance.
    pub fn sets(&self) -> Vec<String> {
        let mut sets: Vec<String> = Vec::new();
        for p in &self.parameters {
            for s in &p.sets {
                if !sets.iter().any(|x| x.eq_ignore_ascii_case(s)) {
                    sets.push(s.clone());
                }
            }
        }
        sets
    }
}

/// The arguments bound to a command's parameters, by canonical parameter name, converted
/// to the declared types. Common parameters other than `-WhatIf`/`-Confirm` are not
/// included (see [`Call::error_action`]).
#[derive(Clone, Debug, Default)]
pub struct BoundArguments {
    values: Vec<(String, Value)>,
}

impl BoundArguments {
    /// The value of a parameter (case-insensitive canonical name).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a parameter was bound.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether a switch was given and true.
    pub fn switch(&self, name: &str) -> bool {
        self.get(name).is_some_and(Value::is_true)
    }

    /// The bound parameters in binding order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The number of bound parameters.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub(crate) fn set(&mut self, name: &str, value: Value) {
        if let Some(slot) = self
            .values
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
        } else {
            self.values.push((name.to_owned(), value));
        }
    }
}

/// `$ErrorActionPreference` / `-ErrorAction` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionPreference {
    /// Write the error and go on.
    Continue,
    /// Record it in `$Error` only.
    SilentlyContinue,
    /// Make it terminating.
    Stop,
    /// Ask (non-interactive: treated as `Stop`).
    Inquire,
}

impl ActionPreference {
    /// Parses a preference (case-insensitive), as PowerShell converts the string.
    pub fn parse(s: &str) -> Option<ActionPreference> {
        match s.trim().to_ascii_lowercase().as_str() {
            "continue" => Some(ActionPreference::Continue),
            "silentlycontinue" => Some(ActionPreference::SilentlyContinue),
            "stop" => Some(ActionPreference::Stop),
            "inquire" => Some(ActionPreference::Inquire),
            _ => None,
        }
    }
}

/// What a host command wrote, in order.
#[derive(Debug)]
pub(crate) enum Written {
    Output(Value),
    Error(Box<ErrorRecord>),
    Warning(String),
    Verbose(String),
    Host(String),
}

/// One invocation of a host command: its bound arguments and input, and the streams it
/// writes to. Output is delivered down the pipeline when [`Host::invoke`] returns.
pub struct Call<'a> {
    /// The command's declaration.
    pub command: &'a CommandInfo,
    /// The bound arguments (including, in [`InputMode::PerRecord`], the parameters bound
    /// from the current pipeline object).
    pub args: &'a BoundArguments,
    /// The resolved parameter set, if the command declares sets.
    pub parameter_set: Option<&'a str>,
    /// The current pipeline object ([`InputMode::PerRecord`]), if any.
    pub input: Option<&'a Value>,
    /// Every pipeline object ([`InputMode::Collect`]).
    pub pipeline_input: &'a [Value],
    pub(crate) error_action: ActionPreference,
    pub(crate) written: Vec<Written>,
    pub(crate) stop_error: Option<ErrorRecord>,
    pub(crate) stop: &'a StopSignal,
    pub(crate) verbose: bool,
}

impl Call<'_> {
    /// Writes an object to the output (the next pipeline element, or the console).
    pub fn write_output(&mut self, v: impl Into<Value>) {
        self.written.push(Written::Output(v.into()));
    }

    /// Writes a non-terminating error. When the effective error action is `Stop`, the
    /// error becomes terminating: this returns it as `Err`, and the command should return
    /// it (`call.write_error(e)?`); the interpreter stops the command either way.
    // The error record is the currency of host code; boxing it would burden every host.
    #[allow(clippy::result_large_err)]
    pub fn write_error(&mut self, record: ErrorRecord) -> Result<(), ErrorRecord> {
        let record = self.complete(record);
        if matches!(
            self.error_action,
            ActionPreference::Stop | ActionPreference::Inquire
        ) {
            if self.stop_error.is_none() {
                self.stop_error = Some(record.clone());
            }
            return Err(record);
        }
        self.written.push(Written::Error(Box::new(record)));
        Ok(())
    }

    /// Writes a warning.
    pub fn write_warning(&mut self, message: impl Into<String>) {
        self.written.push(Written::Warning(message.into()));
    }

    /// Writes a verbose message (shown only with `-Verbose` or `$VerbosePreference`).
    pub fn write_verbose(&mut self, message: impl Into<String>) {
        if self.verbose {
            self.written.push(Written::Verbose(message.into()));
        }
    }

    /// Writes text to the host (stdout), as `Write-Host` does; include line breaks.
    pub fn write_host(&mut self, text: impl Into<String>) {
        self.written.push(Written::Host(text.into()));
    }

    /// The effective error action for this command (`-ErrorAction`, else
    /// `$ErrorActionPreference`).
    pub fn error_action(&self) -> ActionPreference {
        self.error_action
    }

    /// Whether the script is being stopped; long-running commands should check it.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_stopped()
    }

    /// The stop signal, for host sleeps.
    pub fn stop_signal(&self) -> &StopSignal {
        self.stop
    }

    /// An error record for this command: its name in the message prefix and category,
    /// `FullyQualifiedErrorId` = `id,<full name>`, the exception type given, and the target.
    pub fn error(
        &self,
        message: impl Into<String>,
        exception_type: &str,
        category: ErrorCategory,
        id: &str,
        target: Value,
    ) -> ErrorRecord {
        let mut record = ErrorRecord::new(
            message,
            exception_type,
            category,
            format!("{id},{}", self.command.full_name),
        )
        .with_target(target);
        record.command_name = Some(self.command.name.clone());
        record
    }

    fn complete(&self, mut record: ErrorRecord) -> ErrorRecord {
        if record.command_name.is_none() {
            record.command_name = Some(self.command.name.clone());
        }
        record
    }
}

/// Why the host could not convert an argument to a [`ParamType::Custom`] type.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgumentError {
    /// The .NET error text; the interpreter writes `Cannot bind parameter 'X'. Cannot convert
    /// value "v" to type "T". Error: "<detail>"`.
    Conversion(String),
    /// A whole message of the host's own (e.g. Exchange's "Cannot process argument
    /// transformation on parameter ..."), used as is.
    Message(String),
}

/// What the interpreter needs from its environment. Only [`Host::command`] and
/// [`Host::invoke`] are required.
pub trait Host {
    /// Resolves a command the language does not provide (after functions and built-ins),
    /// aliases included. `None` makes it a `CommandNotFoundException`.
    fn command(&mut self, name: &str) -> Option<Arc<CommandInfo>>;

    /// Runs a command. Output, non-terminating errors, warnings and host text go through
    /// `call`; an `Err` is a terminating error of the command (`ThrowTerminatingError`).
    /// Errors without a position get the command's.
    #[allow(clippy::result_large_err)]
    fn invoke(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord>;

    /// Converts an argument for a [`ParamType::Custom`] parameter. The default accepts
    /// nothing.
    fn convert_argument(&mut self, type_name: &str, value: &Value) -> Result<Value, ArgumentError> {
        let _ = (type_name, value);
        Err(ArgumentError::Conversion(format!(
            "No conversion to {type_name} is available."
        )))
    }

    /// Calls a method on one of the host's objects (`$size.ToBytes()`,
    /// `$svc.WaitForStatus('Running')`). `None` means no such method; the interpreter then
    /// tries the methods every object has (`ToString`, `GetType`) and else reports
    /// PowerShell's "Method invocation failed" error.
    fn call_method(
        &mut self,
        target: &PsObject,
        name: &str,
        args: &[Value],
    ) -> Option<Result<Value, ErrorRecord>> {
        let _ = (target, name, args);
        None
    }

    /// The current local time as `DateTime` ticks (`Get-Date`, `[DateTime]::Now`). The
    /// default is the system clock (as UTC).
    fn now(&mut self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let epoch = super::convert::datetime_ticks(1970, 1, 1, 0, 0, 0);
        epoch + i64::try_from(since_epoch.as_nanos() / 100).unwrap_or(i64::MAX / 2)
    }

    /// Waits for `duration` (`Start-Sleep`). Return `false` if `stop` was raised while
    /// waiting. The default sleeps on the real clock in short slices, checking `stop`.
    fn sleep(&mut self, duration: Duration, stop: &StopSignal) -> bool {
        let deadline = std::time::Instant::now() + duration;
        loop {
            if stop.is_stopped() {
                return false;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// An environment variable (`$env:NAME`). The default has none.
    fn env_var(&mut self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
}
