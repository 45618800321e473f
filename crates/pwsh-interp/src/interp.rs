//! The interpreter: runs a parsed script against a [`Host`], streaming output to an
//! [`OutputSink`]. It owns scopes and variables, statements and control flow, pipelines
//! (objects pushed one at a time through the commands), function calls, error handling
//! (non-terminating errors, statement- and script-terminating errors, `try`/`trap`), and
//! the resource bounds in [`Limits`].

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::*;
use super::binding::{self, ArgItem, BindError, Binding};
use super::builtins::{self, BuiltinStage};
use super::convert::{PsType, convert, resolve_type};
use super::error::{ErrorCategory, ErrorPosition, ErrorRecord};
use super::format;
use super::host::{
    ActionPreference, Call, CommandInfo, Host, InputMode, OutputSink, ParamType, ParameterInfo,
    StopSignal, Written,
};
use super::members;
use super::ops;
use super::parser::parse;
use super::value::{Builtin, Hashtable, PsObject, ScriptBlock, TypeRef, Value};

/// Bounds that keep a script from exhausting the process.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Nested script calls (functions, script blocks) before PowerShell's call depth
    /// overflow error; PowerShell's own limit is 100.
    pub max_call_depth: usize,
    /// The longest string an operator may build, in bytes; longer is an
    /// `OutOfMemoryException` error instead of an allocation failure.
    pub max_string_bytes: usize,
    /// The most elements an operator may build into one array (ranges, `*`, `+`).
    pub max_collection_len: usize,
    /// Statements and loop iterations before the script is stopped; `None` for no limit.
    pub step_budget: Option<u64>,
    /// The stack size of the thread [`Interpreter::run`] starts; `None` runs on the
    /// caller's thread (whose stack must then be large enough for `max_call_depth`).
    pub stack_size: Option<usize>,
    /// The line break used in output text (`\r\n`, as Windows writes it).
    pub newline: String,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_call_depth: 100,
            max_string_bytes: 256 << 20,
            max_collection_len: 16 << 20,
            step_budget: None,
            stack_size: Some(256 << 20),
            newline: "\r\n".into(),
        }
    }
}

/// How a script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// It ran to its end (or `return`/`break` at top level).
    Completed,
    /// `exit N`.
    Exit,
    /// A terminating error nobody handled (reported to the sink), or a parse error.
    Error,
    /// The stop signal or the step budget ended it.
    Stopped,
}

/// The exit code and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// The process exit code (a Windows DWORD is `code as u32`).
    pub code: i32,
    /// Why the script ended.
    pub reason: ExitReason,
}

/// The global scope of a runspace kept between scripts: the variables and functions a
/// script defines at its top level, which the next script of the same runspace sees (as
/// in a PowerShell remoting session, whose pipelines run in the runspace's global scope).
#[derive(Default)]
pub struct SessionState(Option<Scope>);

impl std::fmt::Debug for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("kept", &self.0.is_some())
            .finish()
    }
}

/// Runs scripts against a host.
pub struct Interpreter<H: Host> {
    host: H,
    limits: Limits,
    stop: StopSignal,
}

impl<H: Host + Send> Interpreter<H> {
    /// An interpreter with the default [`Limits`].
    pub fn new(host: H) -> Self {
        Interpreter::with_limits(host, Limits::default())
    }

    /// An interpreter with the given limits.
    pub fn with_limits(host: H, limits: Limits) -> Self {
        Interpreter {
            host,
            limits,
            stop: StopSignal::new(),
        }
    }

    /// The signal that stops a running script (clone it before calling `run`).
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// The host, mutably.
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// Gives the host back.
    pub fn into_host(self) -> H {
        self.host
    }

    /// Runs `script` as `powershell.exe -Command` would, with `input` as the lines of
    /// stdin (`$input`). Output is written to `sink` as it is produced.
    ///
    /// Exit code: `exit N` gives `N`; a terminating error nobody handled is written to the
    /// sink and gives 1, as does a script that does not parse; otherwise 1 if the last
    /// top-level statement failed (`$?` false, PowerShell's rule for `-Command`), else 0.
    pub fn run(
        &mut self,
        script: &str,
        input: Option<Vec<String>>,
        sink: &mut (dyn OutputSink + Send),
    ) -> ExitStatus {
        self.run_in(&mut SessionState::default(), script, input, sink)
    }

    /// Runs `script` like [`Interpreter::run`], in the global scope `session` kept from
    /// the scripts before it, and keeps that scope for the next.
    pub fn run_in(
        &mut self,
        session: &mut SessionState,
        script: &str,
        input: Option<Vec<String>>,
        sink: &mut (dyn OutputSink + Send),
    ) -> ExitStatus {
        let host: &mut (dyn Host + Send) = &mut self.host;
        let limits = &self.limits;
        let stop = &self.stop;
        let session = &mut session.0;
        match limits.stack_size {
            None => run_script(host, sink, limits, stop, script, input, session),
            Some(size) => std::thread::scope(|s| {
                let handle = std::thread::Builder::new()
                    .name("pwsh-interpreter".into())
                    .stack_size(size)
                    .spawn_scoped(s, move || {
                        run_script(host, sink, limits, stop, script, input, session)
                    });
                match handle {
                    Ok(h) => h.join().unwrap_or(ExitStatus {
                        code: 1,
                        reason: ExitReason::Error,
                    }),
                    Err(_) => ExitStatus {
                        code: 1,
                        reason: ExitReason::Error,
                    },
                }
            }),
        }
    }
}

fn run_script(
    host: &mut (dyn Host + Send),
    sink: &mut (dyn OutputSink + Send),
    limits: &Limits,
    stop: &StopSignal,
    script: &str,
    input: Option<Vec<String>>,
    session: &mut Option<Scope>,
) -> ExitStatus {
    let parsed = match parse(script) {
        Ok(p) => p,
        Err(e) => {
            sink.error(&e.to_record());
            return ExitStatus {
                code: 1,
                reason: ExitReason::Error,
            };
        }
    };
    let mut it = Interp::new(host, sink, limits, stop);
    if let Some(global) = session.take() {
        it.scopes = vec![global];
    }
    let lines: Vec<Value> = input
        .unwrap_or_default()
        .into_iter()
        .map(Value::from)
        .collect();
    it.set_local("input", Value::from(lines));
    let block = parsed.block;
    it.source = block.source.clone();
    let mut out = OutDefault;
    let result = it.exec_block(&block.end, &mut out);
    let status = match result {
        Ok(()) => ExitStatus {
            code: i32::from(!it.last_success),
            reason: ExitReason::Completed,
        },
        Err(Flow::Exit(code)) => ExitStatus {
            code,
            reason: ExitReason::Exit,
        },
        Err(Flow::Error(record, _)) => {
            it.sink.error(&record);
            ExitStatus {
                code: 1,
                reason: ExitReason::Error,
            }
        }
        Err(Flow::Stopped) => ExitStatus {
            code: 1,
            reason: ExitReason::Stopped,
        },
        Err(Flow::Return | Flow::Break(_) | Flow::Continue(_)) => ExitStatus {
            code: 0,
            reason: ExitReason::Completed,
        },
    };
    // Keep the global scope for the session's next script; drop the rest here, on the
    // big stack: deeply nested values drop recursively.
    if !it.scopes.is_empty() {
        *session = Some(it.scopes.swap_remove(0));
    }
    it.scopes.clear();
    status
}

/// How far an error unwinds when nothing handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Ends the statement; without an enclosing `try`/`trap` the script goes on.
    Statement,
    /// Ends the script unless handled (`throw`, `-ErrorAction Stop`).
    Script,
}

/// Non-local control flow.
#[derive(Debug)]
pub(crate) enum Flow {
    Error(Box<ErrorRecord>, Severity),
    Break(Option<String>),
    Continue(Option<String>),
    Return,
    Exit(i32),
    Stopped,
}

pub(crate) type R<T> = Result<T, Flow>;

/// Where pipeline output goes.
pub(crate) trait Downstream {
    fn push(&mut self, it: &mut Interp<'_>, v: Value) -> R<()>;
}

/// Collects output.
#[derive(Default)]
pub(crate) struct Collector(pub Vec<Value>);

impl Downstream for Collector {
    fn push(&mut self, it: &mut Interp<'_>, v: Value) -> R<()> {
        if self.0.len() >= it.limits.max_collection_len {
            return Err(it.out_of_memory());
        }
        self.0.push(v);
        Ok(())
    }
}

/// Discards output.
pub(crate) struct Discard;

impl Downstream for Discard {
    fn push(&mut self, _: &mut Interp<'_>, _: Value) -> R<()> {
        Ok(())
    }
}

/// The end of a top-level pipeline: format and write to stdout.
pub(crate) struct OutDefault;

impl Downstream for OutDefault {
    fn push(&mut self, it: &mut Interp<'_>, v: Value) -> R<()> {
        if it.sink.object(&v) {
            return Ok(());
        }
        if let Value::String(s) = &v {
            // Written as is, without a copy: a 20 MB string goes to the sink once.
            it.sink.stdout(s);
            it.sink.stdout(&it.limits.newline);
            return Ok(());
        }
        let text = format::format_for_output(&v, &it.limits.newline);
        if !text.is_empty() {
            it.sink.stdout(&text);
        }
        Ok(())
    }
}

/// The commands after the current one, then the tail.
struct Chain<'a> {
    stages: &'a mut [Stage],
    tail: &'a mut dyn Downstream,
}

impl Downstream for Chain<'_> {
    fn push(&mut self, it: &mut Interp<'_>, v: Value) -> R<()> {
        it.step()?;
        let Chain { stages, tail } = self;
        match stages.split_first_mut() {
            None => tail.push(it, v),
            Some((first, rest)) => {
                let mut down = Chain {
                    stages: rest,
                    tail: &mut **tail,
                };
                first.process(it, Some(v), &mut down)
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Scope {
    vars: HashMap<String, Value>,
    functions: HashMap<String, Arc<FunctionDef>>,
}

/// How non-terminating errors of the running command are routed.
#[derive(Default)]
struct Route {
    discard: bool,
    to_output: bool,
    buffer: Vec<ErrorRecord>,
}

/// The state of one run.
pub(crate) struct Interp<'a> {
    pub(crate) host: &'a mut dyn Host,
    pub(crate) sink: &'a mut dyn OutputSink,
    pub(crate) limits: &'a Limits,
    pub(crate) stop: &'a StopSignal,
    scopes: Vec<Scope>,
    steps: u64,
    call_depth: usize,
    handlers: usize,
    error_log: Vec<Value>,
    routes: Vec<Route>,
    /// Open `-ErrorVariable` captures.
    captures: Vec<Vec<ErrorRecord>>,
    pub(crate) last_success: bool,
    pub(crate) source: Arc<Source>,
    /// The function whose code is running, for `Write-Error`'s message prefix.
    pub(crate) current_function: Option<String>,
}

const MAX_ERROR_LOG: usize = 256;

impl<'a> Interp<'a> {
    fn new(
        host: &'a mut dyn Host,
        sink: &'a mut dyn OutputSink,
        limits: &'a Limits,
        stop: &'a StopSignal,
    ) -> Interp<'a> {
        let mut global = Scope::default();
        for (name, value) in [
            ("ErrorActionPreference", "Continue"),
            ("ProgressPreference", "Continue"),
            ("VerbosePreference", "SilentlyContinue"),
            ("DebugPreference", "SilentlyContinue"),
            ("WarningPreference", "Continue"),
            ("ConfirmPreference", "High"),
            ("ShellId", "Microsoft.PowerShell"),
        ] {
            global
                .vars
                .insert(name.to_ascii_lowercase(), Value::from(value));
        }
        global
            .vars
            .insert("whatifpreference".into(), Value::Bool(false));
        global.vars.insert("args".into(), Value::from(Vec::new()));
        global.vars.insert("psversiontable".into(), version_table());
        Interp {
            host,
            sink,
            limits,
            stop,
            scopes: vec![global],
            steps: 0,
            call_depth: 0,
            handlers: 0,
            error_log: Vec::new(),
            routes: Vec::new(),
            captures: Vec::new(),
            last_success: true,
            source: Arc::new(Source::new("")),
            current_function: None,
        }
    }

    // ---------------------------------------------------------------------------------
    // Bounds.

    pub(crate) fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.stop.is_stopped() || self.limits.step_budget.is_some_and(|b| self.steps > b) {
            return Err(Flow::Stopped);
        }
        Ok(())
    }

    pub(crate) fn out_of_memory(&self) -> Flow {
        let mut record = ErrorRecord::new(
            "Exception of type 'System.OutOfMemoryException' was thrown.",
            "System.OutOfMemoryException",
            ErrorCategory::NotSpecified,
            "System.OutOfMemoryException",
        );
        record.exception_bases = vec!["System.SystemException".into()];
        Flow::Error(Box::new(record), Severity::Script)
    }

    pub(crate) fn check_string(&self, len: usize) -> R<()> {
        if len > self.limits.max_string_bytes {
            return Err(self.out_of_memory());
        }
        Ok(())
    }

    pub(crate) fn check_len(&self, len: usize) -> R<()> {
        if len > self.limits.max_collection_len {
            return Err(self.out_of_memory());
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Errors.

    pub(crate) fn position(&self, offset: u32) -> ErrorPosition {
        let (line, column, line_text) = self.source.position(offset);
        ErrorPosition {
            line,
            column,
            line_text,
        }
    }

    /// A statement-terminating error at the end of `span`.
    pub(crate) fn error_at(&self, mut record: ErrorRecord, span: Span) -> Flow {
        if record.position.is_none() {
            record.position = Some(self.position(span.end));
        }
        Flow::Error(Box::new(record), Severity::Statement)
    }

    /// A `RuntimeException` at the end of `span`.
    pub(crate) fn runtime_error(
        &self,
        message: impl Into<String>,
        category: ErrorCategory,
        id: &str,
        span: Span,
    ) -> Flow {
        self.error_at(ErrorRecord::runtime(message, category, id), span)
    }

    fn log_error(&mut self, record: &ErrorRecord) {
        self.error_log
            .insert(0, Value::Error(Arc::new(record.clone())));
        self.error_log.truncate(MAX_ERROR_LOG);
    }

    /// Reports an error that ended a statement and that nobody handled.
    fn report(&mut self, record: &ErrorRecord) {
        self.log_error(record);
        self.last_success = false;
        self.sink.error(record);
    }

    pub(crate) fn error_action_preference(&self) -> ActionPreference {
        self.get_var("ErrorActionPreference")
            .and_then(|v| ActionPreference::parse(&v.to_text()))
            .unwrap_or(ActionPreference::Continue)
    }

    pub(crate) fn preference_enabled(&self, var: &str) -> bool {
        self.get_var(var)
            .and_then(|v| ActionPreference::parse(&v.to_text()))
            .is_some_and(|p| p != ActionPreference::SilentlyContinue)
    }

    /// Writes a non-terminating error with the given action (default: the preference).
    pub(crate) fn write_error(
        &mut self,
        record: ErrorRecord,
        action: Option<ActionPreference>,
    ) -> R<()> {
        self.last_success = false;
        self.log_error(&record);
        for capture in &mut self.captures {
            capture.push(record.clone());
        }
        let action = action.unwrap_or_else(|| self.error_action_preference());
        match action {
            ActionPreference::SilentlyContinue => Ok(()),
            ActionPreference::Stop | ActionPreference::Inquire => {
                Err(Flow::Error(Box::new(stop_wrap(record)), Severity::Script))
            }
            ActionPreference::Continue => {
                match self.routes.last_mut() {
                    Some(route) if route.discard => {}
                    Some(route) if route.to_output => route.buffer.push(record),
                    _ => self.sink.error(&record),
                }
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Variables and scopes.

    pub(crate) fn get_var(&self, name: &str) -> Option<Value> {
        let key = name.to_ascii_lowercase();
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.vars.get(&key))
            .cloned()
    }

    pub(crate) fn set_local(&mut self, name: &str, value: Value) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.vars.insert(name.to_ascii_lowercase(), value);
        }
    }

    fn remove_local(&mut self, name: &str) -> Option<Value> {
        self.scopes
            .last_mut()
            .and_then(|s| s.vars.remove(&name.to_ascii_lowercase()))
    }

    fn variable(&mut self, path: &VariablePath) -> Value {
        let name = path.name.as_str();
        match path.qualifier.as_deref() {
            Some("env") => return self.host.env_var(name).map_or(Value::Null, Value::from),
            Some("script" | "global") => {
                return self
                    .scopes
                    .first()
                    .and_then(|s| s.vars.get(&name.to_ascii_lowercase()))
                    .cloned()
                    .unwrap_or(Value::Null);
            }
            Some(_) => {
                return self
                    .scopes
                    .last()
                    .and_then(|s| s.vars.get(&name.to_ascii_lowercase()))
                    .cloned()
                    .unwrap_or(Value::Null);
            }
            None => {}
        }
        match name.to_ascii_lowercase().as_str() {
            "null" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "host" => Value::Builtin(Builtin::Host),
            "?" => Value::Bool(self.last_success),
            "error" => Value::from(self.error_log.clone()),
            _ => self.get_var(name).unwrap_or(Value::Null),
        }
    }

    fn set_variable(&mut self, path: &VariablePath, value: Value, span: Span) -> R<()> {
        let lower = path.name.to_ascii_lowercase();
        match path.qualifier.as_deref() {
            Some("env") => {
                return Err(self.runtime_error(
                    "Setting environment variables is not supported by this PowerShell interpreter.",
                    ErrorCategory::NotImplemented,
                    "NotSupported",
                    span,
                ));
            }
            Some("script" | "global") => {
                if let Some(s) = self.scopes.first_mut() {
                    s.vars.insert(lower, value);
                }
                return Ok(());
            }
            _ => {}
        }
        match lower.as_str() {
            "null" => Ok(()),
            "true" | "false" | "host" | "?" | "error" => Err(self.error_at(
                ErrorRecord::new(
                    format!(
                        "Cannot overwrite variable {} because it is read-only or constant.",
                        path.name
                    ),
                    "System.Management.Automation.SessionStateUnauthorizedAccessException",
                    ErrorCategory::WriteError,
                    "VariableNotWritable",
                )
                .with_target(Value::from(path.name.as_str())),
                span,
            )),
            _ => {
                self.set_local(&path.name, value);
                Ok(())
            }
        }
    }

    fn find_function(&self, name: &str) -> Option<Arc<FunctionDef>> {
        let key = name.to_ascii_lowercase();
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.functions.get(&key))
            .cloned()
    }

    // ---------------------------------------------------------------------------------
    // Statements.

    pub(crate) fn exec_block(&mut self, block: &Block, out: &mut dyn Downstream) -> R<()> {
        let has_traps = !block.traps.is_empty();
        if has_traps {
            self.handlers += 1;
        }
        let result = self.exec_statements(block, out);
        if has_traps {
            self.handlers -= 1;
        }
        result
    }

    fn exec_statements(&mut self, block: &Block, out: &mut dyn Downstream) -> R<()> {
        for statement in &block.statements {
            self.step()?;
            match self.exec_statement(statement, out) {
                Ok(()) => {}
                Err(Flow::Error(record, severity)) => {
                    if let Some(trap) = block.traps.iter().find(|t| {
                        t.type_name
                            .as_ref()
                            .is_none_or(|tn| record.matches_type(&tn.name))
                    }) {
                        self.handlers -= 1;
                        let outcome = self.run_handler(&trap.body, &record, out);
                        self.handlers += 1;
                        match outcome {
                            Ok(()) => self.report(&record),
                            Err(Flow::Continue(None)) => {}
                            Err(Flow::Break(None)) => {
                                return Err(Flow::Error(record, Severity::Script));
                            }
                            Err(other) => return Err(other),
                        }
                    } else if severity == Severity::Statement
                        && self.handlers == 0
                        && !matches!(
                            self.error_action_preference(),
                            ActionPreference::Stop | ActionPreference::Inquire
                        )
                    {
                        self.report(&record);
                    } else {
                        return Err(Flow::Error(record, severity));
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Runs a `catch` or `trap` body with `$_` set to the error.
    fn run_handler(
        &mut self,
        body: &Block,
        record: &ErrorRecord,
        out: &mut dyn Downstream,
    ) -> R<()> {
        let saved = self.remove_local("_");
        self.set_local("_", Value::Error(Arc::new(record.clone())));
        let result = self.exec_block(body, out);
        self.remove_local("_");
        if let Some(v) = saved {
            self.set_local("_", v);
        }
        result
    }

    fn exec_statement(&mut self, statement: &Statement, out: &mut dyn Downstream) -> R<()> {
        match &statement.kind {
            StatementKind::Pipeline(p) => {
                if let Some(e) = p.as_expression()
                    && is_silent_expression(e)
                {
                    self.eval(e)?;
                    return Ok(());
                }
                self.run_pipeline(p, out)
            }
            StatementKind::Assign { .. } => {
                self.assign_statement(statement)?;
                Ok(())
            }
            StatementKind::If { clauses, otherwise } => {
                for (cond, body) in clauses {
                    if self.pipeline_value(cond)?.is_true() {
                        return self.exec_block(body, out);
                    }
                }
                if let Some(body) = otherwise {
                    return self.exec_block(body, out);
                }
                Ok(())
            }
            StatementKind::While { label, cond, body } => {
                while self.pipeline_value(cond)?.is_true() {
                    self.step()?;
                    if !self.loop_body(label, body, out)? {
                        break;
                    }
                }
                Ok(())
            }
            StatementKind::DoLoop {
                label,
                body,
                cond,
                until,
            } => {
                loop {
                    self.step()?;
                    if !self.loop_body(label, body, out)? {
                        break;
                    }
                    let c = self.pipeline_value(cond)?.is_true();
                    if c == *until {
                        break;
                    }
                }
                Ok(())
            }
            StatementKind::For {
                label,
                init,
                cond,
                step,
                body,
            } => {
                if let Some(init) = init {
                    self.exec_statement(init, &mut Discard)?;
                }
                loop {
                    if let Some(cond) = cond
                        && !self.pipeline_value(cond)?.is_true()
                    {
                        break;
                    }
                    self.step()?;
                    if !self.loop_body(label, body, out)? {
                        break;
                    }
                    if let Some(step) = step {
                        self.exec_statement(step, &mut Discard)?;
                    }
                }
                Ok(())
            }
            StatementKind::Foreach {
                label,
                variable,
                collection,
                body,
            } => {
                let items = match collection.as_expression() {
                    // PowerShell 2.0 runs the body once for a $null value.
                    Some(e) => {
                        let v = self.eval(e)?;
                        match v {
                            Value::Array(a) => a.as_ref().clone(),
                            Value::Bytes(_) => v.as_array().unwrap_or_default(),
                            other => vec![other],
                        }
                    }
                    None => {
                        let mut c = Collector::default();
                        self.run_pipeline(collection, &mut c)?;
                        c.0
                    }
                };
                for item in items {
                    self.step()?;
                    self.set_local(variable, item);
                    if !self.loop_body(label, body, out)? {
                        break;
                    }
                }
                Ok(())
            }
            StatementKind::Function(def) => {
                if let Some(scope) = self.scopes.last_mut() {
                    scope
                        .functions
                        .insert(def.name.to_ascii_lowercase(), def.clone());
                }
                Ok(())
            }
            StatementKind::Try {
                body,
                catches,
                finally,
            } => {
                self.handlers += 1;
                let result = self.exec_block(body, out);
                self.handlers -= 1;
                let result = match result {
                    Err(Flow::Error(record, severity)) => {
                        let handler = catches.iter().find(|c| {
                            c.types.is_empty()
                                || c.types.iter().any(|t| record.matches_type(&t.name))
                        });
                        match handler {
                            Some(c) => self.run_handler(&c.body, &record, out),
                            None => Err(Flow::Error(record, severity)),
                        }
                    }
                    other => other,
                };
                if let Some(fin) = finally
                    && !matches!(result, Err(Flow::Stopped))
                {
                    self.exec_block(fin, out)?;
                }
                result
            }
            StatementKind::Throw(p) => {
                let value = match p {
                    Some(p) => self.pipeline_value(p)?,
                    None => Value::Null,
                };
                let keyword_end = statement.span.start + 5;
                let mut record = match &value {
                    Value::Error(e) => (**e).clone(),
                    Value::Null => ErrorRecord::runtime(
                        "ScriptHalted",
                        ErrorCategory::OperationStopped,
                        "ScriptHalted",
                    ),
                    other => {
                        let text = other.to_text();
                        ErrorRecord::runtime(text.clone(), ErrorCategory::OperationStopped, &text)
                            .with_target(other.clone())
                    }
                };
                if record.position.is_none() {
                    record.position = Some(self.position(keyword_end));
                }
                Err(Flow::Error(Box::new(record), Severity::Script))
            }
            StatementKind::Return(p) => {
                if let Some(p) = p {
                    self.run_pipeline(p, out)?;
                }
                Err(Flow::Return)
            }
            StatementKind::Exit(p) => {
                let code = match p {
                    Some(p) => {
                        let v = self.pipeline_value(p)?;
                        match convert(&v, &PsType::Int) {
                            Ok(Value::Int(i)) => i,
                            _ => 0,
                        }
                    }
                    None => 0,
                };
                Err(Flow::Exit(code))
            }
            StatementKind::Break(label) => Err(Flow::Break(label.clone())),
            StatementKind::Continue(label) => Err(Flow::Continue(label.clone())),
        }
    }

    /// Runs a loop body; `Ok(false)` means the loop ends (break).
    fn loop_body(
        &mut self,
        label: &Option<String>,
        body: &Block,
        out: &mut dyn Downstream,
    ) -> R<bool> {
        let mine = |l: &Option<String>| {
            l.as_ref()
                .is_none_or(|l| label.as_ref().is_some_and(|x| x.eq_ignore_ascii_case(l)))
        };
        match self.exec_block(body, out) {
            Ok(()) => Ok(true),
            Err(Flow::Break(l)) if mine(&l) => Ok(false),
            Err(Flow::Continue(l)) if mine(&l) => Ok(true),
            Err(other) => Err(other),
        }
    }

    /// The value of a pipeline used as a value: an expression's value as is, a command's
    /// output collected (none is `$null`, one is itself, more an array).
    pub(crate) fn pipeline_value(&mut self, p: &Pipeline) -> R<Value> {
        if let Some(e) = p.as_expression() {
            return self.eval(e);
        }
        let mut c = Collector::default();
        self.run_pipeline(p, &mut c)?;
        Ok(unwrap_output(c.0))
    }

    fn statement_value(&mut self, s: &Statement) -> R<Value> {
        match &s.kind {
            StatementKind::Pipeline(p) => self.pipeline_value(p),
            StatementKind::Assign { .. } => self.assign_statement(s),
            _ => {
                let mut c = Collector::default();
                self.exec_statement(s, &mut c)?;
                Ok(unwrap_output(c.0))
            }
        }
    }

    fn assign_statement(&mut self, s: &Statement) -> R<Value> {
        let StatementKind::Assign {
            target,
            op,
            value,
            op_span,
        } = &s.kind
        else {
            return Ok(Value::Null);
        };
        let rhs = self.statement_value(value)?;
        let new = match op {
            AssignOp::Assign => rhs,
            _ => {
                let current = self.eval(target)?;
                let bop = match op {
                    AssignOp::Add => BinaryOp::Add,
                    AssignOp::Sub => BinaryOp::Sub,
                    AssignOp::Mul => BinaryOp::Mul,
                    AssignOp::Div => BinaryOp::Div,
                    _ => BinaryOp::Rem,
                };
                ops::binary(self, bop, current, rhs, *op_span)?
            }
        };
        self.assign_to(target, new.clone(), *op_span)?;
        Ok(new)
    }

    /// Stores `value` into an assignable expression.
    fn assign_to(&mut self, target: &Expr, value: Value, op_span: Span) -> R<()> {
        match &target.kind {
            ExprKind::Variable(path) => self.set_variable(path, value, target.span),
            ExprKind::Cast(t, inner) => {
                let ty = self.resolve(t)?;
                let converted = convert(&value, &ty).map_err(|e| {
                    self.runtime_error(
                        e.message,
                        ErrorCategory::InvalidArgument,
                        "RuntimeException",
                        op_span,
                    )
                })?;
                self.assign_to(inner, converted, op_span)
            }
            ExprKind::Member {
                target: obj,
                name,
                is_static: false,
            } => {
                let container = self.eval(obj)?;
                let name = self.member_name(name)?;
                members::set_member(self, &container, &name, value, target.span)
            }
            ExprKind::Index { target: obj, index } => {
                let container = self.eval(obj)?;
                let idx = self.eval(index)?;
                match container {
                    Value::Hashtable(h) => {
                        h.insert(idx, value);
                        Ok(())
                    }
                    Value::Array(mut a) => {
                        let len = a.len();
                        let i = match ops::index_number(&idx) {
                            Some(i) if i < 0 => i + len as i64,
                            Some(i) => i,
                            None => -1,
                        };
                        let slot = usize::try_from(i).ok().filter(|i| *i < len);
                        let Some(slot) = slot else {
                            return Err(self.runtime_error(
                                format!(
                                    "Array assignment to [{}] failed because index '{}' was out of range.",
                                    idx.to_text(),
                                    idx.to_text()
                                ),
                                ErrorCategory::InvalidOperation,
                                "IndexOutOfRange",
                                target.span,
                            ));
                        };
                        if let Some(elem) = Arc::make_mut(&mut a).get_mut(slot) {
                            *elem = value;
                        }
                        self.assign_to(obj, Value::Array(a), op_span)
                    }
                    Value::Null => Err(self.runtime_error(
                        "Cannot index into a null array.",
                        ErrorCategory::InvalidOperation,
                        "NullArray",
                        target.span,
                    )),
                    other => Err(self.runtime_error(
                        format!(
                            "Unable to index into an object of type {}.",
                            other.type_name()
                        ),
                        ErrorCategory::InvalidOperation,
                        "CannotIndex",
                        target.span,
                    )),
                }
            }
            _ => Err(self.runtime_error(
                "The assignment expression is not valid.",
                ErrorCategory::InvalidOperation,
                "InvalidLeftHandSide",
                target.span,
            )),
        }
    }

    // ---------------------------------------------------------------------------------
    // Pipelines.

    pub(crate) fn run_pipeline(&mut self, p: &Pipeline, out: &mut dyn Downstream) -> R<()> {
        let mut stages: Vec<Stage> = Vec::new();
        let mut first_expr: Option<(&Expr, bool)> = None;
        let count = p.elements.len();
        for (i, element) in p.elements.iter().enumerate() {
            let discard = element.redirections.contains(&Redirection::OutputToNull);
            match &element.kind {
                ElementKind::Expression(e) => first_expr = Some((e, discard)),
                ElementKind::Command(c) => {
                    let has_input = i > 0;
                    let mut stage = self.prepare_command(c, has_input)?;
                    stage.discard_output = discard;
                    stage.error_to_null = element.redirections.contains(&Redirection::ErrorToNull);
                    stage.error_to_output =
                        element.redirections.contains(&Redirection::ErrorToOutput);
                    let _ = count;
                    stages.push(stage);
                }
            }
        }
        self.last_success = true;
        let mut discard = Discard;
        for i in 0..stages.len() {
            let (head, tail) = stages.split_at_mut(i + 1);
            if let Some(stage) = head.last_mut() {
                let mut down = Chain {
                    stages: tail,
                    tail: &mut *out,
                };
                stage.begin(self, &mut down)?;
            }
        }
        match first_expr {
            Some((e, discard_output)) => {
                let v = self.eval(e)?;
                let target: &mut dyn Downstream = if discard_output {
                    &mut discard
                } else {
                    &mut *out
                };
                let mut chain = Chain {
                    stages: &mut stages,
                    tail: target,
                };
                for item in enumerate(v) {
                    chain.push(self, item)?;
                }
            }
            None => {
                if let Some((first, rest)) = stages.split_first_mut() {
                    let mut down = Chain {
                        stages: rest,
                        tail: &mut *out,
                    };
                    first.process(self, None, &mut down)?;
                }
            }
        }
        for i in 0..stages.len() {
            let (head, tail) = stages.split_at_mut(i + 1);
            if let Some(stage) = head.last_mut() {
                let mut down = Chain {
                    stages: tail,
                    tail: &mut *out,
                };
                stage.end(self, &mut down)?;
            }
        }
        Ok(())
    }

    /// Evaluates a command's arguments and resolves it into a stage.
    fn prepare_command(&mut self, c: &Command, has_input: bool) -> R<Stage> {
        let items = self.eval_arguments(c)?;
        let target = match &c.target {
            CommandTarget::Name(name) => Target::Name(name.clone()),
            CommandTarget::Expression(e) => match self.eval(e)? {
                Value::ScriptBlock(sb) => Target::Block(sb),
                Value::String(s) => Target::Name(s.to_string()),
                _ => {
                    return Err(self.runtime_error(
                        format!(
                            "The expression after '{}' in a pipeline element produced an invalid object. It must result in a command name, script block or CommandInfo object.",
                            if c.dot_source { "." } else { "&" }
                        ),
                        ErrorCategory::InvalidOperation,
                        "BadExpression",
                        c.name_span,
                    ));
                }
            },
        };
        let mut common = binding::Common::default();
        let (kind, name) = match target {
            Target::Block(sb) => {
                let stage =
                    self.script_stage(sb.0.clone(), None, items, c.dot_source, c.name_span)?;
                (StageKind::Script(Box::new(stage)), String::new())
            }
            Target::Name(name) => {
                let canonical = builtins::resolve_alias(&name);
                if let Some(def) = self.find_function(canonical) {
                    let stage = self.script_stage(
                        def.body.clone(),
                        Some(def.name.clone()),
                        items,
                        c.dot_source,
                        c.name_span,
                    )?;
                    (StageKind::Script(Box::new(stage)), def.name.clone())
                } else if let Some(info) = builtins::info(canonical) {
                    let binding = self.bind(&info, items, has_input, c.name_span)?;
                    common = binding.common.clone();
                    let stage = BuiltinStage::new(info.clone(), binding);
                    (StageKind::Builtin(Box::new(stage)), info.name.clone())
                } else if let Some(info) = self.host.command(&name) {
                    let binding = self.bind(&info, items, has_input, c.name_span)?;
                    common = binding.common.clone();
                    (
                        StageKind::Host(Box::new(HostStage {
                            info: info.clone(),
                            binding,
                            collected: Vec::new(),
                        })),
                        info.name.clone(),
                    )
                } else {
                    return Err(self.error_at(command_not_found(&name), c.name_span));
                }
            }
        };
        Ok(Stage {
            kind,
            name,
            span: c.name_span,
            discard_output: false,
            error_to_null: false,
            error_to_output: false,
            error_variable: common.error_variable,
            out_variable: common.out_variable,
            captured_errors: Vec::new(),
            captured_output: Vec::new(),
        })
    }

    fn bind(
        &mut self,
        info: &CommandInfo,
        items: Vec<ArgItem>,
        has_input: bool,
        span: Span,
    ) -> R<Binding> {
        binding::bind(info, items, self.host, has_input, span).map_err(|e| self.bind_error(e, span))
    }

    pub(crate) fn bind_error(&self, e: BindError, fallback: Span) -> Flow {
        self.error_at(*e.record, e.span.unwrap_or(fallback))
    }

    fn eval_arguments(&mut self, c: &Command) -> R<Vec<ArgItem>> {
        let mut items = Vec::new();
        for element in &c.elements {
            match element {
                CommandElement::Parameter {
                    name,
                    argument,
                    span,
                } => {
                    let value = match argument {
                        Some(a) => Some(self.eval(a)?),
                        None => None,
                    };
                    items.push(ArgItem::Named {
                        name: name.clone(),
                        value,
                        span: *span,
                    });
                }
                CommandElement::Argument(e) => {
                    let value = self.eval(e)?;
                    items.push(ArgItem::Positional {
                        value,
                        span: e.span,
                    });
                }
                CommandElement::Splat { name, span } => match self.get_var(name) {
                    Some(Value::Hashtable(h)) => {
                        for (k, v) in h.entries() {
                            let value = match &v {
                                // `@{Force = $true}` splats as the switch `-Force:$true`.
                                Value::Bool(_) => Some(v),
                                _ => Some(v),
                            };
                            items.push(ArgItem::Named {
                                name: k.to_text(),
                                value,
                                span: *span,
                            });
                        }
                    }
                    Some(Value::Array(a)) => {
                        for v in a.iter() {
                            items.push(ArgItem::Positional {
                                value: v.clone(),
                                span: *span,
                            });
                        }
                    }
                    Some(Value::Null) | None => {}
                    Some(other) => items.push(ArgItem::Positional {
                        value: other,
                        span: *span,
                    }),
                },
            }
        }
        Ok(items)
    }

    /// Prepares a function or script block call: binds its parameters into a new scope.
    fn script_stage(
        &mut self,
        block: Arc<ScriptBlockAst>,
        function: Option<String>,
        items: Vec<ArgItem>,
        dot: bool,
        span: Span,
    ) -> R<ScriptStage> {
        let name = function.clone().unwrap_or_default();
        let advanced = block.params.iter().any(|p| p.mandatory || p.from_pipeline);
        let mut scope = Scope::default();
        let mut args_rest: Vec<Value> = Vec::new();
        let mut bound: Vec<String> = Vec::new();
        let mut error_action: Option<ActionPreference> = None;
        let positional_params: Vec<&ParamDecl> =
            block.params.iter().filter(|p| !is_switch_decl(p)).collect();
        let info = CommandInfo::new(name.clone(), name.clone());
        let mut positional: Vec<(Value, Span)> = Vec::new();
        let mut iter = items.into_iter().peekable();
        let saved_source = self.source.clone();
        self.source = block.source.clone();
        while let Some(item) = iter.next() {
            match item {
                ArgItem::Positional { value, span } => positional.push((value, span)),
                ArgItem::Named {
                    name: pname,
                    value,
                    span: pspan,
                } => {
                    let lower = pname.to_ascii_lowercase();
                    let matches: Vec<&ParamDecl> = block
                        .params
                        .iter()
                        .filter(|p| p.name.to_ascii_lowercase().starts_with(&lower))
                        .collect();
                    let exact = block
                        .params
                        .iter()
                        .find(|p| p.name.eq_ignore_ascii_case(&pname));
                    let decl = match (exact, matches.as_slice()) {
                        (Some(d), _) => Some(d),
                        (None, [one]) => Some(*one),
                        (None, []) => None,
                        (None, many) => {
                            let names: Vec<String> =
                                many.iter().map(|d| format!("-{}", d.name)).collect();
                            self.source = saved_source;
                            return Err(self.bind_error(
                                binding::binding_error(
                                    &info,
                                    format!(
                                        "Parameter cannot be processed because the parameter name '{pname}' is ambiguous. Possible matches include: {}.",
                                        names.join(" ")
                                    ),
                                    "AmbiguousParameter",
                                    Some(pspan),
                                ),
                                span,
                            ));
                        }
                    };
                    let Some(decl) = decl else {
                        if "erroraction".starts_with(&lower) || lower == "ea" {
                            let v = match value {
                                Some(v) => Some(v),
                                None => match iter.next() {
                                    Some(ArgItem::Positional { value, .. }) => Some(value),
                                    _ => None,
                                },
                            };
                            error_action = v.and_then(|v| ActionPreference::parse(&v.to_text()));
                            continue;
                        }
                        if ["verbose", "debug", "warningaction"]
                            .iter()
                            .any(|c| c.starts_with(&lower))
                            && advanced
                        {
                            continue;
                        }
                        if advanced {
                            self.source = saved_source;
                            return Err(self.bind_error(
                                binding::binding_error(
                                    &info,
                                    format!("A parameter cannot be found that matches parameter name '{pname}'."),
                                    "NamedParameterNotFound",
                                    Some(pspan),
                                ),
                                span,
                            ));
                        }
                        // A simple function receives unknown parameters in $args.
                        args_rest.push(Value::from(format!("-{pname}")));
                        if let Some(v) = value {
                            args_rest.push(v);
                        }
                        continue;
                    };
                    let v = match value {
                        Some(v) => v,
                        None if is_switch_decl(decl) => Value::Bool(true),
                        None => match iter.peek() {
                            Some(ArgItem::Positional { .. }) => match iter.next() {
                                Some(ArgItem::Positional { value, .. }) => value,
                                _ => Value::Null,
                            },
                            _ => {
                                self.source = saved_source;
                                return Err(self.bind_error(
                                    binding::binding_error(
                                        &info,
                                        format!(
                                            "Missing an argument for parameter '{}'. Specify a parameter of type '{}' and try again.",
                                            decl.name,
                                            decl.type_name.as_ref().map_or("System.Object".into(), |t| {
                                                resolve_type(&t.name).map_or(t.name.clone(), |t| t.full_name())
                                            })
                                        ),
                                        "MissingArgument",
                                        Some(pspan),
                                    ),
                                    span,
                                ));
                            }
                        },
                    };
                    let v = self.convert_decl(&info, decl, v, pspan)?;
                    bound.push(decl.name.to_ascii_lowercase());
                    scope.vars.insert(decl.name.to_ascii_lowercase(), v);
                }
            }
        }
        let free_params: Vec<&ParamDecl> = positional_params
            .iter()
            .copied()
            .filter(|p| !bound.contains(&p.name.to_ascii_lowercase()))
            .collect();
        let mut free = free_params.into_iter();
        for (value, pspan) in positional {
            match free.next() {
                Some(decl) => {
                    let v = self.convert_decl(&info, decl, value, pspan)?;
                    bound.push(decl.name.to_ascii_lowercase());
                    scope.vars.insert(decl.name.to_ascii_lowercase(), v);
                }
                None if advanced => {
                    self.source = saved_source;
                    return Err(self.bind_error(
                        binding::binding_error(
                            &info,
                            format!(
                                "A positional parameter cannot be found that accepts argument '{}'.",
                                value.to_text()
                            ),
                            "PositionalParameterNotFound",
                            Some(pspan),
                        ),
                        span,
                    ));
                }
                None => args_rest.push(value),
            }
        }
        let pipeline_param = block
            .params
            .iter()
            .find(|p| p.from_pipeline && !bound.contains(&p.name.to_ascii_lowercase()))
            .map(|p| p.name.clone());
        let missing: Vec<String> = block
            .params
            .iter()
            .filter(|p| p.mandatory && !bound.contains(&p.name.to_ascii_lowercase()))
            .filter(|p| pipeline_param.as_deref() != Some(p.name.as_str()))
            .map(|p| p.name.clone())
            .collect();
        self.source = saved_source;
        if !missing.is_empty() {
            return Err(self.bind_error(
                binding::binding_error(
                    &info,
                    format!(
                        "Cannot process command because of one or more missing mandatory parameters: {}.",
                        missing.join(" ")
                    ),
                    "MissingMandatoryParameter",
                    Some(span),
                ),
                span,
            ));
        }
        scope.vars.insert("args".into(), Value::from(args_rest));
        // $PSBoundParameters: the parameters the call bound, by their declared names (a
        // switch as given), for functions that pass their arguments on.
        let bound_parameters = crate::value::Hashtable::new();
        for decl in &block.params {
            let lower = decl.name.to_ascii_lowercase();
            if bound.contains(&lower)
                && let Some(v) = scope.vars.get(&lower)
            {
                bound_parameters.insert(Value::from(decl.name.as_str()), v.clone());
            }
        }
        scope.vars.insert(
            "psboundparameters".into(),
            Value::Hashtable(bound_parameters),
        );
        if let Some(action) = error_action {
            let text = match action {
                ActionPreference::Stop => "Stop",
                ActionPreference::SilentlyContinue => "SilentlyContinue",
                ActionPreference::Inquire => "Inquire",
                _ => "Continue",
            };
            scope
                .vars
                .insert("erroractionpreference".into(), Value::from(text));
        }
        let unbound: Vec<String> = block
            .params
            .iter()
            .filter(|p| !bound.contains(&p.name.to_ascii_lowercase()))
            .map(|p| p.name.clone())
            .collect();
        Ok(ScriptStage {
            block,
            scope: Some(scope),
            dot,
            function,
            input: Vec::new(),
            pipeline_param,
            defaults_pending: unbound,
            started: false,
        })
    }

    fn convert_decl(
        &mut self,
        info: &CommandInfo,
        decl: &ParamDecl,
        v: Value,
        span: Span,
    ) -> R<Value> {
        let Some(t) = &decl.type_name else {
            return Ok(v);
        };
        let ty = self.resolve(t)?;
        let p = ParameterInfo {
            mandatory: decl.mandatory,
            ..ParameterInfo::new(decl.name.clone(), param_type_of(&ty))
        };
        binding::convert_param(info, &p, v, self.host, span).map_err(|e| self.bind_error(e, span))
    }

    pub(crate) fn resolve(&self, t: &TypeName) -> R<PsType> {
        resolve_type(&t.name).ok_or_else(|| {
            self.error_at(
                ErrorRecord::runtime(
                    format!(
                        "Unable to find type [{}]: make sure that the assembly containing this type is loaded.",
                        t.name
                    ),
                    ErrorCategory::InvalidOperation,
                    "TypeNotFound",
                )
                .with_target(Value::from(t.name.as_str())),
                t.span,
            )
        })
    }

    /// Invokes a script block with `$_` set (ForEach-Object, Where-Object, calculated
    /// properties): in the current scope, as PowerShell runs them.
    pub(crate) fn invoke_with_underscore(
        &mut self,
        sb: &ScriptBlock,
        underscore: Option<Value>,
        out: &mut dyn Downstream,
    ) -> R<()> {
        self.enter_call(sb.0.span)?;
        let saved = self.remove_local("_");
        if let Some(v) = underscore {
            self.set_local("_", v);
        }
        let saved_source = std::mem::replace(&mut self.source, sb.0.source.clone());
        let result = self.exec_block(&sb.0.end, out);
        self.source = saved_source;
        self.remove_local("_");
        if let Some(v) = saved {
            self.set_local("_", v);
        }
        self.call_depth -= 1;
        match result {
            Err(Flow::Return) => Ok(()),
            other => other,
        }
    }

    /// Invokes a script block in a new scope with positional arguments
    /// (`$sb.Invoke(...)`), collecting its output.
    pub(crate) fn invoke_block_collect(
        &mut self,
        sb: &ScriptBlock,
        args: Vec<Value>,
        span: Span,
    ) -> R<Vec<Value>> {
        let items = args
            .into_iter()
            .map(|value| ArgItem::Positional { value, span })
            .collect();
        let mut stage = self.script_stage(sb.0.clone(), None, items, false, span)?;
        let mut c = Collector::default();
        stage.run_all(self, &mut c)?;
        Ok(c.0)
    }

    fn enter_call(&mut self, span: Span) -> R<()> {
        if self.call_depth >= self.limits.max_call_depth {
            let record = ErrorRecord::new(
                format!(
                    "The script failed due to call depth overflow.  The call depth reached {} and the maximum is {}.",
                    self.call_depth + 1,
                    self.limits.max_call_depth
                ),
                "System.Management.Automation.ScriptCallDepthException",
                ErrorCategory::InvalidOperation,
                "CallDepthOverflow",
            );
            let mut record = record;
            record.exception_bases = vec!["System.Management.Automation.RuntimeException".into()];
            record.position = Some(self.position(span.end));
            return Err(Flow::Error(Box::new(record), Severity::Script));
        }
        self.call_depth += 1;
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Expressions.

    pub(crate) fn member_name(&mut self, name: &Expr) -> R<String> {
        match &name.kind {
            ExprKind::Constant(Constant::Str(s)) => Ok(s.to_string()),
            _ => Ok(self.eval(name)?.to_text()),
        }
    }

    pub(crate) fn eval(&mut self, e: &Expr) -> R<Value> {
        match &e.kind {
            ExprKind::Constant(c) => Ok(match c {
                Constant::Str(s) => Value::String(s.clone()),
                Constant::Int(i) => Value::Int(*i),
                Constant::Long(i) => Value::Long(*i),
                Constant::Double(d) => Value::Double(*d),
            }),
            ExprKind::Expandable(parts) => {
                let mut s = String::new();
                for part in parts {
                    match part {
                        StringPart::Text(t) => s.push_str(t),
                        StringPart::Variable(v) => s.push_str(&self.variable(v).to_text()),
                        StringPart::SubExpression(block) => {
                            let mut c = Collector::default();
                            self.exec_block(block, &mut c)?;
                            s.push_str(&unwrap_output(c.0).to_text());
                        }
                    }
                    self.check_string(s.len())?;
                }
                Ok(Value::from(s))
            }
            ExprKind::Variable(v) => Ok(self.variable(v)),
            ExprKind::ArrayLiteral(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Value::from(out))
            }
            ExprKind::UnaryComma(inner) => Ok(Value::from(vec![self.eval(inner)?])),
            ExprKind::ArraySubExpression(block) => {
                let mut c = Collector::default();
                self.exec_block(block, &mut c)?;
                Ok(Value::from(c.0))
            }
            ExprKind::SubExpression(block) => {
                let mut c = Collector::default();
                self.exec_block(block, &mut c)?;
                Ok(unwrap_output(c.0))
            }
            ExprKind::Paren(statement) => self.statement_value(statement),
            ExprKind::Hashtable(entries) => {
                let table = Hashtable::new();
                for (k, v) in entries {
                    let key = self.eval(k)?;
                    let value = self.statement_value(v)?;
                    table.insert(key, value);
                }
                Ok(Value::Hashtable(table))
            }
            ExprKind::ScriptBlock(sb) => Ok(Value::ScriptBlock(ScriptBlock(sb.clone()))),
            ExprKind::TypeLiteral(t) => {
                let ty = self.resolve(t)?;
                Ok(Value::Type(TypeRef(Arc::from(ty.full_name().as_str()))))
            }
            ExprKind::Cast(t, inner) => {
                let v = self.eval(inner)?;
                let ty = self.resolve(t)?;
                if !ty.is_instantiable() {
                    return Err(self.runtime_error(
                        format!(
                            "Cannot convert the \"{}\" value of type \"{}\" to type \"{}\".",
                            v.to_text(),
                            v.type_name(),
                            ty.full_name()
                        ),
                        ErrorCategory::InvalidArgument,
                        "ConvertToFinalInvalidCastException",
                        t.span,
                    ));
                }
                convert(&v, &ty).map_err(|err| {
                    let id = if matches!(v, Value::String(_))
                        && matches!(ty, PsType::Int | PsType::Long | PsType::Double)
                    {
                        "InvalidCastFromStringToInteger"
                    } else {
                        "ConvertToFinalInvalidCastException"
                    };
                    self.runtime_error(err.message, ErrorCategory::InvalidArgument, id, t.span)
                })
            }
            ExprKind::Unary(op, inner) => ops::unary(self, *op, inner, e.span),
            ExprKind::Binary(BinaryOp::And, l, r, _) => Ok(Value::Bool(
                self.eval(l)?.is_true() && self.eval(r)?.is_true(),
            )),
            ExprKind::Binary(BinaryOp::Or, l, r, _) => Ok(Value::Bool(
                self.eval(l)?.is_true() || self.eval(r)?.is_true(),
            )),
            ExprKind::Binary(op, l, r, span) => {
                let lv = self.eval(l)?;
                let rv = if matches!(op, BinaryOp::Is | BinaryOp::IsNot | BinaryOp::As)
                    && let ExprKind::TypeLiteral(t) = &r.kind
                {
                    match resolve_type(&t.name) {
                        Some(ty) => Value::Type(TypeRef(Arc::from(ty.full_name().as_str()))),
                        None => Value::Type(TypeRef(Arc::from(t.name.as_str()))),
                    }
                } else {
                    self.eval(r)?
                };
                ops::binary(self, *op, lv, rv, *span)
            }
            ExprKind::Member {
                target,
                name,
                is_static,
            } => {
                let name = self.member_name(name)?;
                if *is_static {
                    let ExprKind::TypeLiteral(t) = &target.kind else {
                        return Ok(Value::Null);
                    };
                    let ty = self.resolve(t)?;
                    return members::static_member(self, &ty, &name, e.span);
                }
                let v = self.eval(target)?;
                members::get_member(self, &v, &name, e.span)
            }
            ExprKind::MethodCall {
                target,
                name,
                args,
                is_static,
            } => {
                let name = self.member_name(name)?;
                let mut values = Vec::with_capacity(args.len());
                if *is_static {
                    let ExprKind::TypeLiteral(t) = &target.kind else {
                        return Ok(Value::Null);
                    };
                    let ty = self.resolve(t)?;
                    for a in args {
                        values.push(self.eval(a)?);
                    }
                    return members::static_call(self, &ty, &name, values, e.span);
                }
                let v = self.eval(target)?;
                for a in args {
                    values.push(self.eval(a)?);
                }
                members::call_method(self, &v, &name, values, e.span)
            }
            ExprKind::Index { target, index } => {
                let v = self.eval(target)?;
                let idx = self.eval(index)?;
                ops::index(self, &v, &idx, e.span)
            }
        }
    }

    /// Applies `++`/`--` to an assignable expression; returns (old, new).
    pub(crate) fn increment(&mut self, target: &Expr, delta: i32, span: Span) -> R<(Value, Value)> {
        let old = self.eval(target)?;
        let new = ops::binary(self, BinaryOp::Add, old.clone(), Value::Int(delta), span)?;
        self.assign_to(target, new.clone(), span)?;
        Ok((old, new))
    }

    /// Writes host text to stdout.
    pub(crate) fn write_host_text(&mut self, text: &str) {
        self.sink.stdout(text);
    }

    /// Runs a host command's written records in order.
    fn deliver(
        &mut self,
        written: Vec<Written>,
        action: ActionPreference,
        warnings: Option<ActionPreference>,
        out: &mut dyn Downstream,
    ) -> R<()> {
        let warnings = match warnings {
            Some(a) => a != ActionPreference::SilentlyContinue,
            None => self.preference_enabled("WarningPreference"),
        };
        for w in written {
            match w {
                Written::Output(v) => out.push(self, v)?,
                Written::Error(e) => self.write_error(*e, Some(action))?,
                Written::Warning(m) => {
                    if warnings {
                        self.sink.warning(&m);
                    }
                }
                Written::Verbose(m) => self.sink.verbose(&m),
                Written::Host(t) => self.sink.stdout(&t),
            }
        }
        Ok(())
    }
}

/// A non-terminating error escalated by `Stop`, as PowerShell 2.0 reports it.
fn stop_wrap(mut record: ErrorRecord) -> ErrorRecord {
    record.message = format!(
        "Command execution stopped because the preference variable \"ErrorActionPreference\" or common parameter is set to Stop: {}",
        record.message
    );
    record.exception_type = "System.Management.Automation.ActionPreferenceStopException".into();
    record.exception_bases = vec!["System.Management.Automation.RuntimeException".into()];
    record
}

/// PowerShell's error for an unknown command.
pub(crate) fn command_not_found(name: &str) -> ErrorRecord {
    let mut record = ErrorRecord::new(
        format!(
            "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
        ),
        "System.Management.Automation.CommandNotFoundException",
        ErrorCategory::ObjectNotFound,
        "CommandNotFoundException",
    )
    .with_target(Value::from(name));
    record.exception_bases = vec!["System.Management.Automation.RuntimeException".into()];
    record
}

fn is_switch_decl(p: &ParamDecl) -> bool {
    p.type_name
        .as_ref()
        .is_some_and(|t| matches!(resolve_type(&t.name), Some(PsType::Switch)))
}

fn param_type_of(t: &PsType) -> ParamType {
    match t {
        PsType::String => ParamType::String,
        PsType::Int => ParamType::Int,
        PsType::Long => ParamType::Long,
        PsType::UInt32 => ParamType::UInt32,
        PsType::Double => ParamType::Double,
        PsType::Bool => ParamType::Bool,
        PsType::Switch => ParamType::Switch,
        PsType::Array(inner) => ParamType::Array(Box::new(param_type_of(inner))),
        PsType::Hashtable => ParamType::Hashtable,
        PsType::ScriptBlock => ParamType::ScriptBlock,
        PsType::TimeSpan => ParamType::TimeSpan,
        PsType::DateTime => ParamType::DateTime,
        _ => ParamType::Any,
    }
}

/// Increments and assignments used as statements write nothing.
fn is_silent_expression(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Unary(
            UnaryOp::PreIncrement
                | UnaryOp::PreDecrement
                | UnaryOp::PostIncrement
                | UnaryOp::PostDecrement,
            _
        )
    )
}

/// Collected output as a value: nothing is `$null`, one object is itself.
pub(crate) fn unwrap_output(mut items: Vec<Value>) -> Value {
    match items.len() {
        0 => Value::Null,
        1 => items.pop().unwrap_or(Value::Null),
        _ => Value::from(items),
    }
}

/// What the pipeline enumerates: the elements of an array, else the value itself.
pub(crate) fn enumerate(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => Arc::try_unwrap(a).unwrap_or_else(|a| a.as_ref().clone()),
        Value::Bytes(_) => v.as_array().unwrap_or_default(),
        other => vec![other],
    }
}

fn version_table() -> Value {
    let version = PsObject::with_display(["System.Version", "System.Object"], "2.0")
        .with("Major", 2)
        .with("Minor", 0)
        .with("Build", -1)
        .with("Revision", -1);
    let table = Hashtable::new();
    table.insert(Value::from("CLRVersion"), Value::from("2.0.50727.5420"));
    table.insert(Value::from("BuildVersion"), Value::from("6.1.7601.17514"));
    table.insert(Value::from("PSVersion"), Value::Object(version));
    table.insert(Value::from("WSManStackVersion"), Value::from("2.0"));
    table.insert(
        Value::from("PSCompatibleVersions"),
        Value::from(vec![Value::from("1.0"), Value::from("2.0")]),
    );
    table.insert(Value::from("SerializationVersion"), Value::from("1.1.0.1"));
    table.insert(Value::from("PSRemotingProtocolVersion"), Value::from("2.1"));
    Value::Hashtable(table)
}

enum Target {
    Name(String),
    Block(ScriptBlock),
}

/// One command of a running pipeline.
pub(crate) struct Stage {
    kind: StageKind,
    name: String,
    span: Span,
    discard_output: bool,
    error_to_null: bool,
    error_to_output: bool,
    /// `-ErrorVariable` / `-OutVariable` (a leading `+` appends).
    error_variable: Option<String>,
    out_variable: Option<String>,
    captured_errors: Vec<Value>,
    captured_output: Vec<Value>,
}

/// Passes output on and keeps a copy (`-OutVariable`).
struct Tee<'a> {
    inner: &'a mut dyn Downstream,
    seen: &'a mut Vec<Value>,
}

impl Downstream for Tee<'_> {
    fn push(&mut self, it: &mut Interp<'_>, v: Value) -> R<()> {
        it.check_len(self.seen.len() + 1)?;
        self.seen.push(v.clone());
        self.inner.push(it, v)
    }
}

/// Sets a `-ErrorVariable`/`-OutVariable` target.
fn set_capture(it: &mut Interp<'_>, name: &str, mut values: Vec<Value>) {
    let (name, append) = match name.strip_prefix('+') {
        Some(n) => (n, true),
        None => (name, false),
    };
    if append && let Some(existing) = it.get_var(name) {
        let mut all = enumerate(existing);
        all.append(&mut values);
        values = all;
    }
    it.set_local(name, Value::from(values));
}

enum StageKind {
    Script(Box<ScriptStage>),
    Builtin(Box<BuiltinStage>),
    Host(Box<HostStage>),
}

#[derive(Clone, Copy)]
enum Phase {
    Begin,
    Process,
    End,
}

impl Stage {
    fn begin(&mut self, it: &mut Interp<'_>, down: &mut dyn Downstream) -> R<()> {
        self.run(it, Phase::Begin, None, down)
    }

    fn process(
        &mut self,
        it: &mut Interp<'_>,
        input: Option<Value>,
        down: &mut dyn Downstream,
    ) -> R<()> {
        self.run(it, Phase::Process, input, down)
    }

    fn end(&mut self, it: &mut Interp<'_>, down: &mut dyn Downstream) -> R<()> {
        self.run(it, Phase::End, None, down)
    }

    fn run(
        &mut self,
        it: &mut Interp<'_>,
        phase: Phase,
        input: Option<Value>,
        down: &mut dyn Downstream,
    ) -> R<()> {
        let mut discard = Discard;
        let mut seen = std::mem::take(&mut self.captured_output);
        let mut tee;
        let down: &mut dyn Downstream = if self.discard_output {
            &mut discard
        } else if self.out_variable.is_some() {
            tee = Tee {
                inner: down,
                seen: &mut seen,
            };
            &mut tee
        } else {
            down
        };
        if self.error_variable.is_some() {
            it.captures.push(Vec::new());
        }
        let routed = self.error_to_null || self.error_to_output;
        if routed {
            it.routes.push(Route {
                discard: self.error_to_null,
                to_output: self.error_to_output,
                buffer: Vec::new(),
            });
        }
        let saved_function = it.current_function.clone();
        let result = match &mut self.kind {
            StageKind::Script(s) => s.run(it, phase, input, down),
            StageKind::Builtin(b) => match phase {
                Phase::Begin => b.begin(it, down),
                Phase::Process => b.process(it, input, down, self.span),
                Phase::End => b.end(it, down, self.span),
            },
            StageKind::Host(h) => h.run(it, phase, input, down, self.span),
        };
        it.current_function = saved_function;
        if self.error_variable.is_some() {
            let captured = it.captures.pop().unwrap_or_default();
            self.captured_errors
                .extend(captured.into_iter().map(|e| Value::Error(Arc::new(e))));
        }
        if routed {
            let route = it.routes.pop().unwrap_or_default();
            for record in route.buffer {
                down.push(it, Value::Error(Arc::new(record)))?;
            }
        }
        let _ = &self.name;
        self.captured_output = seen;
        if matches!(phase, Phase::End) || result.is_err() {
            if let Some(name) = self.error_variable.clone() {
                let errors = std::mem::take(&mut self.captured_errors);
                set_capture(it, &name, errors);
            }
            if let Some(name) = self.out_variable.clone() {
                let output = std::mem::take(&mut self.captured_output);
                set_capture(it, &name, output);
            }
        }
        result
    }
}

/// A function or script block in a pipeline.
pub(crate) struct ScriptStage {
    block: Arc<ScriptBlockAst>,
    scope: Option<Scope>,
    dot: bool,
    function: Option<String>,
    input: Vec<Value>,
    pipeline_param: Option<String>,
    defaults_pending: Vec<String>,
    started: bool,
}

impl ScriptStage {
    fn run_all(&mut self, it: &mut Interp<'_>, out: &mut dyn Downstream) -> R<()> {
        self.run(it, Phase::Begin, None, out)?;
        self.run(it, Phase::Process, None, out)?;
        self.run(it, Phase::End, None, out)
    }

    fn run(
        &mut self,
        it: &mut Interp<'_>,
        phase: Phase,
        input: Option<Value>,
        out: &mut dyn Downstream,
    ) -> R<()> {
        let block = self.block.clone();
        let body = match phase {
            Phase::Begin => block.begin.as_ref(),
            Phase::Process => match &block.process {
                Some(p) => Some(p),
                None => {
                    if let Some(v) = input {
                        it.check_len(self.input.len() + 1)?;
                        self.input.push(v);
                    }
                    return Ok(());
                }
            },
            Phase::End => Some(&block.end),
        };
        let Some(body) = body else {
            if !self.started {
                return self.enter_leave(it, None, &Block::default(), out);
            }
            return Ok(());
        };
        let underscore = match phase {
            Phase::Process => input,
            _ => None,
        };
        self.enter_leave(it, underscore, body, out)
    }

    /// Runs one block in the function's scope.
    fn enter_leave(
        &mut self,
        it: &mut Interp<'_>,
        underscore: Option<Value>,
        body: &Block,
        out: &mut dyn Downstream,
    ) -> R<()> {
        it.enter_call(self.block.span)?;
        let saved_source = std::mem::replace(&mut it.source, self.block.source.clone());
        if !self.dot {
            it.scopes.push(self.scope.take().unwrap_or_default());
        }
        it.current_function = self.function.clone();
        let result = self.body_in_scope(it, underscore, body, out);
        if !self.dot {
            self.scope = it.scopes.pop();
        }
        it.source = saved_source;
        it.call_depth -= 1;
        match result {
            Err(Flow::Return) => Ok(()),
            other => other,
        }
    }

    fn body_in_scope(
        &mut self,
        it: &mut Interp<'_>,
        underscore: Option<Value>,
        body: &Block,
        out: &mut dyn Downstream,
    ) -> R<()> {
        if !self.started {
            self.started = true;
            if self.dot
                && let Some(scope) = self.scope.take()
            {
                for (k, v) in scope.vars {
                    it.set_local(&k, v);
                }
            }
            // Defaults are evaluated in the function's scope, in declaration order.
            for name in std::mem::take(&mut self.defaults_pending) {
                let decl = self.block.params.iter().find(|p| p.name == name);
                let Some(decl) = decl else { continue };
                let v = match &decl.default {
                    Some(e) => it.eval(e)?,
                    None if is_switch_decl(decl) => Value::Bool(false),
                    None => Value::Null,
                };
                let v = match &decl.type_name {
                    Some(t) => {
                        let ty = it.resolve(t)?;
                        convert(&v, &ty).unwrap_or(v)
                    }
                    _ => v,
                };
                it.set_local(&decl.name, v);
            }
        }
        let is_process = self
            .block
            .process
            .as_ref()
            .is_some_and(|p| std::ptr::eq(p, body));
        if is_process {
            match &underscore {
                Some(v) => {
                    it.set_local("_", v.clone());
                    it.set_local("input", Value::from(vec![v.clone()]));
                    if let Some(p) = &self.pipeline_param {
                        let decl = self.block.params.iter().find(|d| &d.name == p);
                        let v = match decl.and_then(|d| d.type_name.as_ref()) {
                            Some(t) => {
                                let ty = it.resolve(t)?;
                                convert(v, &ty).unwrap_or_else(|_| v.clone())
                            }
                            None => v.clone(),
                        };
                        it.set_local(p, v);
                    }
                }
                None => {
                    it.set_local("input", Value::from(Vec::new()));
                }
            }
        } else if std::ptr::eq(&self.block.end, body) {
            let input = std::mem::take(&mut self.input);
            if self.block.process.is_none() {
                if let Some(p) = &self.pipeline_param
                    && let Some(last) = input.last()
                {
                    it.set_local(p, last.clone());
                }
                it.set_local("input", Value::from(input));
            }
        }
        it.exec_block(body, out)
    }
}

/// A host command in a pipeline.
struct HostStage {
    info: Arc<CommandInfo>,
    binding: Binding,
    collected: Vec<Value>,
}

impl HostStage {
    fn run(
        &mut self,
        it: &mut Interp<'_>,
        phase: Phase,
        input: Option<Value>,
        out: &mut dyn Downstream,
        span: Span,
    ) -> R<()> {
        match (phase, self.info.input) {
            (Phase::Begin, _) => Ok(()),
            (Phase::Process, InputMode::Collect) => {
                if let Some(v) = input {
                    self.collected.push(v);
                }
                Ok(())
            }
            (Phase::End, InputMode::Collect) => {
                let binding = self.binding.clone();
                let collected = std::mem::take(&mut self.collected);
                self.invoke(it, &binding, None, &collected, out, span)
            }
            (Phase::Process, _) => match input {
                None => {
                    let binding = self.binding.clone();
                    self.invoke(it, &binding, None, &[], out, span)
                }
                Some(v) => {
                    let action = self
                        .binding
                        .common
                        .error_action
                        .unwrap_or_else(|| it.error_action_preference());
                    match binding::bind_pipeline(&self.info, &self.binding, &v, it.host, span) {
                        Ok(binding) => self.invoke(it, &binding, Some(&v), &[], out, span),
                        Err(e) => {
                            let mut record = *e.record;
                            record.position = Some(it.position(span.end));
                            it.write_error(record, Some(action))
                        }
                    }
                }
            },
            (Phase::End, _) => Ok(()),
        }
    }

    fn invoke(
        &mut self,
        it: &mut Interp<'_>,
        binding: &Binding,
        input: Option<&Value>,
        all: &[Value],
        out: &mut dyn Downstream,
        span: Span,
    ) -> R<()> {
        it.step()?;
        let action = binding
            .common
            .error_action
            .unwrap_or_else(|| it.error_action_preference());
        let verbose = binding
            .common
            .verbose
            .unwrap_or_else(|| it.preference_enabled("VerbosePreference"));
        let stop = it.stop;
        let mut call = Call {
            command: &self.info,
            args: &binding.args,
            parameter_set: binding.set.as_deref(),
            input,
            pipeline_input: all,
            error_action: action,
            written: Vec::new(),
            stop_error: None,
            stop,
            verbose,
        };
        let result = it.host.invoke(&mut call);
        let written = std::mem::take(&mut call.written);
        let stop_error = call.stop_error.take();
        let position = it.position(span.end);
        let fix = |mut r: ErrorRecord| {
            if r.position.is_none() {
                r.position = Some(position.clone());
            }
            if r.command_name.is_none() {
                r.command_name = Some(self.info.name.clone());
            }
            r
        };
        let written: Vec<Written> = written
            .into_iter()
            .map(|w| match w {
                Written::Error(e) => Written::Error(Box::new(fix(*e))),
                other => other,
            })
            .collect();
        it.deliver(written, action, binding.common.warning_action, out)?;
        if let Some(e) = stop_error {
            it.log_error(&e);
            return Err(Flow::Error(Box::new(stop_wrap(fix(e))), Severity::Script));
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                it.last_success = false;
                Err(Flow::Error(Box::new(fix(e)), Severity::Statement))
            }
        }
    }
}
