//! What the PSRP messages exctl exchanges say (MS-PSRP 2.2.2 and 2.2.3), both ways.
//!
//! Building: the session capability, the pool's initialisation, a pipeline of commands
//! with parameters (or a script), input, and the refusal of a host call. Reading: every
//! message a server sends during a pool's life and a pipeline's run becomes a
//! [`ServerEvent`]. Pure: no I/O. Field names and enum values are those of MS-PSRP and of
//! traffic recorded from Windows hosts (`tests/fixtures/psrp-recorded`).

use std::sync::Arc;

use crate::clixml::{self, PsObject, Value};
use crate::error::Error;
use crate::message::{Message, MessageType};

/// The protocol version this client announces: PowerShell 2.0's, which Exchange 2010's
/// servers speak; later servers accept it.
pub const CLIENT_PROTOCOL_VERSION: &str = "2.1";
/// The PowerShell version announced with it.
pub const CLIENT_PS_VERSION: &str = "2.0";
/// The serialization version of PowerShell 2.0 and later.
pub const SERIALIZATION_VERSION: &str = "1.1.0.1";

const ENUM_BASES: [&str; 3] = ["System.Enum", "System.ValueType", "System.Object"];

fn enum_value(type_name: &str, name: &str, value: i32) -> Value {
    let mut type_names = vec![type_name.to_string()];
    type_names.extend(ENUM_BASES.iter().map(|s| s.to_string()));
    Value::object(PsObject {
        type_names,
        to_string: Some(name.to_string()),
        value: Some(Value::I32(value)),
        ..PsObject::default()
    })
}

fn ms(props: Vec<(&str, Value)>) -> Value {
    Value::object(PsObject {
        extended: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..PsObject::default()
    })
}

fn host_info(ui: bool) -> Value {
    if ui {
        // A host with a user interface but no raw UI (no console buffer): the server
        // relays Read-Host and prompts to the client as host calls ([MS-PSRP] 2.2.3.14,
        // https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/510fd8f3-e3ac-45b4-b622-0ad5508a5ac6),
        // which the caller answers (see [`crate::pool::HostCallHandler`]).
        return ms(vec![
            ("_isHostNull", Value::Bool(false)),
            ("_isHostUINull", Value::Bool(false)),
            ("_isHostRawUINull", Value::Bool(true)),
            ("_useRunspaceHost", Value::Bool(false)),
        ]);
    }
    // No host: the server must not call back for prompts, and answers Read-Host with an
    // error of its own.
    ms(vec![
        ("_isHostNull", Value::Bool(true)),
        ("_isHostUINull", Value::Bool(true)),
        ("_isHostRawUINull", Value::Bool(true)),
        ("_useRunspaceHost", Value::Bool(true)),
    ])
}

const LIST_OF_PSOBJECT: &str = "System.Collections.Generic.List`1[[System.Management.Automation.PSObject, System.Management.Automation, Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]";

fn list(items: Vec<Value>) -> Value {
    Value::object(PsObject {
        type_names: vec![LIST_OF_PSOBJECT.to_string(), "System.Object".to_string()],
        list: Some(items),
        ..PsObject::default()
    })
}

/// SESSION_CAPABILITY: the versions this client speaks.
pub fn session_capability() -> String {
    clixml::to_clixml(&ms(vec![
        (
            "protocolversion",
            Value::Version(CLIENT_PROTOCOL_VERSION.into()),
        ),
        ("PSVersion", Value::Version(CLIENT_PS_VERSION.into())),
        (
            "SerializationVersion",
            Value::Version(SERIALIZATION_VERSION.into()),
        ),
    ]))
}

/// INIT_RUNSPACEPOOL: `min`..`max` runspaces, a host with a user interface when `ui`
/// (else none), no application arguments.
pub fn init_runspace_pool(min: i32, max: i32, ui: bool) -> String {
    clixml::to_clixml(&ms(vec![
        ("MinRunspaces", Value::I32(min)),
        ("MaxRunspaces", Value::I32(max)),
        (
            "PSThreadOptions",
            enum_value(
                "System.Management.Automation.Runspaces.PSThreadOptions",
                "Default",
                0,
            ),
        ),
        (
            "ApartmentState",
            enum_value(
                "System.Management.Automation.Runspaces.ApartmentState",
                "UNKNOWN",
                2,
            ),
        ),
        ("HostInfo", host_info(ui)),
        ("ApplicationArguments", Value::Nil),
    ]))
}

/// One parameter: named (`-Name value`) or positional.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The name without the dash; `None` for a positional value.
    pub name: Option<String>,
    /// The value, typed as the cmdlet should receive it.
    pub value: Value,
}

/// One command of a pipeline: a cmdlet (or function) with parameters, or a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The command's name, or the script's text.
    pub name: String,
    /// Whether `name` is script text (refused by NoLanguage endpoints).
    pub is_script: bool,
    /// The parameters in order.
    pub parameters: Vec<Parameter>,
}

impl Command {
    /// A command by name, without parameters.
    pub fn new(name: impl Into<String>) -> Self {
        Command {
            name: name.into(),
            is_script: false,
            parameters: Vec::new(),
        }
    }

    /// Script text (AddScript).
    pub fn script(text: impl Into<String>) -> Self {
        Command {
            name: text.into(),
            is_script: true,
            parameters: Vec::new(),
        }
    }

    /// Adds `-name value`.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters.push(Parameter {
            name: Some(name.into()),
            value: value.into(),
        });
        self
    }

    /// Adds a switch (`-name`, sent as `-name:$true`, which binds the same way).
    pub fn switch(self, name: impl Into<String>) -> Self {
        self.param(name, Value::Bool(true))
    }

    /// Adds a positional value.
    pub fn positional(mut self, value: impl Into<Value>) -> Self {
        self.parameters.push(Parameter {
            name: None,
            value: value.into(),
        });
        self
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::I32(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A change's command, sent as a command with parameters (what a NoLanguage endpoint
/// such as Exchange's accepts): strings as `S`, whole numbers as `I32` when they fit (the
/// type PowerShell gives such a literal) and `I64` otherwise, `$null` as `Nil`, lists as
/// `Object[]`, a switch as `$true` (which binds a switch parameter).
impl From<&exctl_pwsh::Command> for Command {
    fn from(c: &exctl_pwsh::Command) -> Self {
        let mut out = Command::new(c.name.clone());
        for p in &c.params {
            out = out.param(p.name.clone(), value_of(&p.value));
        }
        out
    }
}

fn value_of(a: &exctl_pwsh::Arg) -> Value {
    use exctl_pwsh::Arg;
    match a {
        Arg::Str(s) => Value::Str(s.clone()),
        Arg::Int(i) => i32::try_from(*i).map_or(Value::I64(*i), Value::I32),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Null => Value::Nil,
        Arg::List(items) => Value::object(PsObject {
            type_names: vec![
                "System.Object[]".to_string(),
                "System.Array".to_string(),
                "System.Object".to_string(),
            ],
            list: Some(items.iter().map(value_of).collect()),
            ..PsObject::default()
        }),
        Arg::Switch => Value::Bool(true),
    }
}

/// A pipeline: commands piped into one another, and optional input objects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineSpec {
    /// The commands, first to last.
    pub commands: Vec<Command>,
    /// Input objects for the first command (`$input`); none means NoInput.
    pub input: Vec<Value>,
}

impl PipelineSpec {
    /// A pipeline of one command.
    pub fn command(c: Command) -> Self {
        PipelineSpec {
            commands: vec![c],
            input: Vec::new(),
        }
    }

    /// A pipeline of one script.
    pub fn script(text: impl Into<String>) -> Self {
        Self::command(Command::script(text))
    }

    /// Pipes into another command.
    pub fn pipe(mut self, c: Command) -> Self {
        self.commands.push(c);
        self
    }
}

/// A protocol version as `(major, minor)`.
pub type Version = (u32, u32);

/// Reads `2.3` into `(2, 3)`.
pub fn parse_version(s: &str) -> Option<Version> {
    let mut it = s.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

fn result_types(v: i32, name: &str) -> Value {
    enum_value(
        "System.Management.Automation.Runspaces.PipelineResultTypes",
        name,
        v,
    )
}

fn command_object(c: &Command, server: Version) -> Value {
    let args = c
        .parameters
        .iter()
        .map(|p| {
            ms(vec![
                ("N", p.name.clone().map(Value::Str).unwrap_or(Value::Nil)),
                ("V", p.value.clone()),
            ])
        })
        .collect();
    let mut props = vec![
        ("Cmd", Value::Str(c.name.clone())),
        ("IsScript", Value::Bool(c.is_script)),
        ("UseLocalScope", Value::Nil),
        ("MergeMyResult", result_types(0, "None")),
        ("MergeToResult", result_types(0, "None")),
        ("MergePreviousResults", result_types(0, "None")),
        ("Args", list(args)),
    ];
    // The per-stream merge fields came with protocol 2.2 (PowerShell 3.0); a 2.1 server
    // does not know them.
    if server >= (2, 2) {
        props.push(("MergeError", result_types(0, "None")));
        props.push(("MergeWarning", result_types(0, "None")));
        props.push(("MergeVerbose", result_types(0, "None")));
        props.push(("MergeDebug", result_types(0, "None")));
    }
    if server >= (2, 3) {
        props.push(("MergeInformation", result_types(0, "None")));
    }
    ms(props)
}

/// CREATE_PIPELINE for `spec`, for a server speaking protocol `server`, with a host with a
/// user interface when `ui`.
pub fn create_pipeline(spec: &PipelineSpec, server: Version, ui: bool) -> String {
    let cmds = spec
        .commands
        .iter()
        .map(|c| command_object(c, server))
        .collect();
    let powershell = ms(vec![
        ("IsNested", Value::Bool(false)),
        ("Cmds", list(cmds)),
        ("History", Value::Nil),
        ("RedirectShellErrorOutputPipe", Value::Bool(false)),
    ]);
    clixml::to_clixml(&ms(vec![
        ("NoInput", Value::Bool(spec.input.is_empty())),
        (
            "ApartmentState",
            enum_value(
                "System.Management.Automation.Runspaces.ApartmentState",
                "UNKNOWN",
                2,
            ),
        ),
        (
            "RemoteStreamOptions",
            // AddInvocationInfo: records come with their position, as PowerShell shows them.
            enum_value(
                "System.Management.Automation.Runspaces.RemoteStreamOptions",
                "AddInvocationInfo",
                15,
            ),
        ),
        ("AddToHistory", Value::Bool(false)),
        ("HostInfo", host_info(ui)),
        ("PowerShell", powershell),
        ("IsNested", Value::Bool(false)),
    ]))
}

/// States of a runspace pool (MS-PSRP 2.2.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    /// Not opened yet.
    BeforeOpen,
    /// Opening.
    Opening,
    /// Open and usable.
    Opened,
    /// Closed.
    Closed,
    /// Closing.
    Closing,
    /// Failed.
    Broken,
    /// Any other value (negotiation, connect, disconnect).
    Other(i32),
}

impl PoolState {
    fn from_i32(v: i32) -> Self {
        match v {
            0 => PoolState::BeforeOpen,
            1 => PoolState::Opening,
            2 => PoolState::Opened,
            3 => PoolState::Closed,
            4 => PoolState::Closing,
            5 => PoolState::Broken,
            o => PoolState::Other(o),
        }
    }
}

/// States of a pipeline (MS-PSRP 2.2.3.5, PSInvocationState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineState {
    /// Not started.
    NotStarted,
    /// Running.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped by the client.
    Stopped,
    /// Completed.
    Completed,
    /// Failed (the state carries the error).
    Failed,
    /// Disconnected.
    Disconnected,
}

impl PipelineState {
    fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => PipelineState::NotStarted,
            1 => PipelineState::Running,
            2 => PipelineState::Stopping,
            3 => PipelineState::Stopped,
            4 => PipelineState::Completed,
            5 => PipelineState::Failed,
            6 => PipelineState::Disconnected,
            _ => return None,
        })
    }

    /// Whether the pipeline is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PipelineState::Stopped | PipelineState::Completed | PipelineState::Failed
        )
    }

    /// The name PowerShell gives it.
    pub fn name(self) -> &'static str {
        match self {
            PipelineState::NotStarted => "NotStarted",
            PipelineState::Running => "Running",
            PipelineState::Stopping => "Stopping",
            PipelineState::Stopped => "Stopped",
            PipelineState::Completed => "Completed",
            PipelineState::Failed => "Failed",
            PipelineState::Disconnected => "Disconnected",
        }
    }
}

/// An error record as the server sent it, with what PowerShell shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRecord {
    /// The message (ErrorDetails, else the exception's message, else ToString).
    pub message: String,
    /// `FullyQualifiedErrorId`.
    pub fully_qualified_error_id: Option<String>,
    /// `ErrorCategory_Message`, e.g. `NotSpecified: (:) [Write-Error], WriteErrorException`.
    pub category: Option<String>,
    /// The position message (`At line:1 char:1` and the line).
    pub position: Option<String>,
    /// The command the error came from, when the server said.
    pub command: Option<String>,
    /// The whole record.
    pub raw: Value,
}

impl ErrorRecord {
    /// Reads an ErrorRecord object.
    pub fn from_value(v: &Value) -> ErrorRecord {
        let s = |name: &str| {
            v.property(name)
                .map(Value::display)
                .filter(|s| !s.is_empty())
        };
        let exception_message = v
            .property("Exception")
            .and_then(|e| e.property("Message"))
            .map(Value::display)
            .filter(|m| !m.is_empty());
        let message = s("ErrorDetails_Message")
            .or(exception_message)
            .or_else(|| v.as_object().and_then(|o| o.to_string.clone()))
            .unwrap_or_else(|| v.display());
        let position = s("InvocationInfo_PositionMessage").or_else(|| {
            v.property("InvocationInfo")
                .and_then(|i| i.property("PositionMessage"))
                .map(Value::display)
                .filter(|p| !p.is_empty())
        });
        let command = s("InvocationInfo_InvocationName").or_else(|| {
            v.property("InvocationInfo")
                .and_then(|i| i.property("InvocationName"))
                .map(Value::display)
                .filter(|p| !p.is_empty())
        });
        ErrorRecord {
            message,
            fully_qualified_error_id: s("FullyQualifiedErrorId"),
            category: s("ErrorCategory_Message"),
            position,
            command,
            raw: v.clone(),
        }
    }

    /// The record as PowerShell's console shows it.
    pub fn render(&self) -> String {
        let mut out = match &self.command {
            Some(c) => format!("{c} : {}", self.message),
            None => self.message.clone(),
        };
        if let Some(p) = &self.position {
            out.push('\n');
            out.push_str(p.trim_end());
        }
        if let Some(c) = &self.category {
            out.push_str(&format!("\n    + CategoryInfo          : {c}"));
        }
        if let Some(id) = &self.fully_qualified_error_id {
            out.push_str(&format!("\n    + FullyQualifiedErrorId : {id}"));
        }
        out
    }
}

/// A warning, verbose, debug or information record.
#[derive(Debug, Clone, PartialEq)]
pub struct InformationalRecord {
    /// The message.
    pub message: String,
    /// The whole record.
    pub raw: Value,
}

impl InformationalRecord {
    fn from_value(v: &Value) -> Self {
        let message = v
            .property("InformationalRecord_Message")
            .or_else(|| v.property("MessageData"))
            .map(Value::display)
            .unwrap_or_else(|| v.display());
        InformationalRecord {
            message,
            raw: v.clone(),
        }
    }
}

/// A host method call from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct HostCall {
    /// The call id (`ci`), echoed in the response.
    pub call_id: i64,
    /// The method (`mi`), as sent.
    pub method: Value,
    /// The method's number.
    pub method_id: i64,
    /// Whether the call came for the pool rather than a pipeline.
    pub pool_level: bool,
    /// The method's parameters (`mp`), in order.
    pub parameters: Vec<Value>,
}

/// Host methods that return nothing: no response is sent for them (MS-PSRP 2.2.3.17).
const VOID_METHODS: [i64; 29] = [
    6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 28, 30, 32, 34, 36, 38, 40, 42, 47, 48,
    49, 51, 52, 53,
];

/// `RemoteHostMethodId.ReadLine` ([MS-PSRP] 2.2.3.17): `Read-Host` without a prompt.
pub const HOST_READ_LINE: i64 = 11;
/// `RemoteHostMethodId.Prompt`: `Read-Host -Prompt TEXT` asks through it, with one field
/// named by the prompt (PowerShell's ReadHostCommand).
pub const HOST_PROMPT: i64 = 23;

impl HostCall {
    /// For a Prompt call: the names of the fields asked for, in order.
    pub fn prompt_fields(&self) -> Vec<String> {
        if self.method_id != HOST_PROMPT {
            return Vec::new();
        }
        let Some(fields) = self
            .parameters
            .get(2)
            .and_then(Value::as_object)
            .and_then(|o| o.list.as_ref())
        else {
            return Vec::new();
        };
        fields
            .iter()
            .filter_map(|f| f.property("name").map(Value::display))
            .collect()
    }

    /// The response carrying `value` as the method's return value (`mr`).
    pub fn answer(&self, value: Value) -> String {
        clixml::to_clixml(&ms(vec![
            ("ci", Value::I64(self.call_id)),
            ("mi", self.method.clone()),
            ("mr", value),
        ]))
    }

    /// The return value of a Prompt: the dictionary of the answers by field name.
    pub fn prompt_answer(answers: Vec<(String, String)>) -> Value {
        Value::object(PsObject {
            type_names: vec![
                "System.Collections.Generic.Dictionary`2[[System.String, mscorlib, Version=2.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089],[System.Management.Automation.PSObject, System.Management.Automation, Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]".into(),
                "System.Object".into(),
            ],
            dict: Some(
                answers
                    .into_iter()
                    .map(|(k, v)| (Value::Str(k), Value::Str(v)))
                    .collect(),
            ),
            ..PsObject::default()
        })
    }

    /// Whether the server waits for an answer.
    pub fn wants_response(&self) -> bool {
        !VOID_METHODS.contains(&self.method_id)
    }

    /// The CLIXML of a refusal: the call fails on the server with our message.
    pub fn refusal(&self) -> String {
        let reason = format!(
            "exctl has no interactive host: the host method {} is not supported",
            self.method.display()
        );
        let exception = Value::object(PsObject {
            type_names: vec![
                "System.Management.Automation.Host.HostException".into(),
                "System.Exception".into(),
                "System.Object".into(),
            ],
            to_string: Some(reason.clone()),
            adapted: vec![("Message".into(), Value::Str(reason.clone()))],
            ..PsObject::default()
        });
        let record = Value::object(PsObject {
            type_names: vec![
                "System.Management.Automation.ErrorRecord".into(),
                "System.Object".into(),
            ],
            to_string: Some(reason),
            extended: vec![
                ("Exception".into(), exception),
                ("TargetObject".into(), Value::Nil),
                (
                    "FullyQualifiedErrorId".into(),
                    Value::str("HostFunctionNotImplemented"),
                ),
                ("InvocationInfo".into(), Value::Nil),
                ("ErrorCategory_Category".into(), Value::I32(28)),
                ("ErrorCategory_Activity".into(), Value::str("")),
                ("ErrorCategory_Reason".into(), Value::str("HostException")),
                ("ErrorCategory_TargetName".into(), Value::str("")),
                ("ErrorCategory_TargetType".into(), Value::str("")),
                (
                    "ErrorCategory_Message".into(),
                    Value::str("NotImplemented: (:) [], HostException"),
                ),
                ("SerializeExtendedInfo".into(), Value::Bool(false)),
            ],
            ..PsObject::default()
        });
        clixml::to_clixml(&ms(vec![
            ("ci", Value::I64(self.call_id)),
            ("mi", self.method.clone()),
            ("me", record),
        ]))
    }
}

/// What a server message means.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The server's versions.
    SessionCapability {
        /// Its protocol version.
        protocol_version: Version,
        /// Its PowerShell version, as sent.
        ps_version: String,
    },
    /// The server's application private data.
    ApplicationPrivateData(Value),
    /// The pool's state changed.
    PoolState {
        /// The new state.
        state: PoolState,
        /// Why it broke, if it did.
        error: Option<ErrorRecord>,
    },
    /// An output object.
    Output(Value),
    /// An error record.
    Error(ErrorRecord),
    /// A warning.
    Warning(InformationalRecord),
    /// A verbose message.
    Verbose(InformationalRecord),
    /// A debug message.
    Debug(InformationalRecord),
    /// An information record (protocol 2.3).
    Information(InformationalRecord),
    /// Progress (not shown).
    Progress,
    /// The pipeline's state changed.
    PipelineState {
        /// The new state.
        state: PipelineState,
        /// Why it failed, if it did.
        error: Option<ErrorRecord>,
    },
    /// A host call that needs an answer (or none, for void methods).
    HostCall(HostCall),
    /// A message this client has no use for.
    Ignored(MessageType),
}

fn state_error(o: &Arc<PsObject>) -> Option<ErrorRecord> {
    o.property("ExceptionAsErrorRecord")
        .filter(|v| !matches!(v, Value::Nil))
        .map(ErrorRecord::from_value)
}

/// Reads one message from the server.
pub fn read_event(m: &Message) -> Result<ServerEvent, Error> {
    let field = |o: &Arc<PsObject>, name: &str| {
        o.property(name)
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("{:?} without {name}", m.message_type)))
    };
    Ok(match m.message_type {
        MessageType::SessionCapability => {
            let o = clixml::parse_object(&m.data)?;
            let v = field(&o, "protocolversion")?.display();
            let protocol_version = parse_version(&v)
                .ok_or_else(|| Error::Protocol(format!("protocol version '{v}'")))?;
            let ps_version = o
                .property("PSVersion")
                .map(Value::display)
                .unwrap_or_default();
            ServerEvent::SessionCapability {
                protocol_version,
                ps_version,
            }
        }
        MessageType::ApplicationPrivateData => {
            ServerEvent::ApplicationPrivateData(clixml::parse(&m.data)?)
        }
        MessageType::RunspacePoolState => {
            let o = clixml::parse_object(&m.data)?;
            let s = field(&o, "RunspaceState")?
                .as_i64()
                .ok_or_else(|| Error::Protocol("RunspaceState is not a number".into()))?;
            ServerEvent::PoolState {
                state: PoolState::from_i32(s as i32),
                error: state_error(&o),
            }
        }
        MessageType::PipelineState => {
            let o = clixml::parse_object(&m.data)?;
            let s = field(&o, "PipelineState")?
                .as_i64()
                .ok_or_else(|| Error::Protocol("PipelineState is not a number".into()))?;
            let state = PipelineState::from_i32(s as i32)
                .ok_or_else(|| Error::Protocol(format!("unknown pipeline state {s}")))?;
            ServerEvent::PipelineState {
                state,
                error: state_error(&o),
            }
        }
        MessageType::PipelineOutput => ServerEvent::Output(clixml::parse(&m.data)?),
        MessageType::ErrorRecord => {
            ServerEvent::Error(ErrorRecord::from_value(&clixml::parse(&m.data)?))
        }
        MessageType::WarningRecord => {
            ServerEvent::Warning(InformationalRecord::from_value(&clixml::parse(&m.data)?))
        }
        MessageType::VerboseRecord => {
            ServerEvent::Verbose(InformationalRecord::from_value(&clixml::parse(&m.data)?))
        }
        MessageType::DebugRecord => {
            ServerEvent::Debug(InformationalRecord::from_value(&clixml::parse(&m.data)?))
        }
        MessageType::InformationRecord => {
            ServerEvent::Information(InformationalRecord::from_value(&clixml::parse(&m.data)?))
        }
        MessageType::ProgressRecord => ServerEvent::Progress,
        MessageType::RunspacePoolHostCall | MessageType::PipelineHostCall => {
            let o = clixml::parse_object(&m.data)?;
            let call_id = field(&o, "ci")?
                .as_i64()
                .ok_or_else(|| Error::Protocol("host call id is not a number".into()))?;
            let method = field(&o, "mi")?;
            let method_id = method.as_i64().unwrap_or(-1);
            let parameters = o
                .property("mp")
                .and_then(Value::as_object)
                .and_then(|p| p.list.clone())
                .unwrap_or_default();
            ServerEvent::HostCall(HostCall {
                call_id,
                method,
                method_id,
                pool_level: m.message_type == MessageType::RunspacePoolHostCall,
                parameters,
            })
        }
        other => ServerEvent::Ignored(other),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_change_command_becomes_a_command_with_parameters() {
        let c = exctl_pwsh::Command::new("Set-ImapSettings")
            .param("Server", "EX01")
            .param("MaxConnections", 20)
            .param("Big", 5_000_000_000i64)
            .param("Banner", exctl_pwsh::Arg::Null)
            .param("SSLBindings", vec!["0.0.0.0:993", "[::]:993"])
            .param("Confirm", false)
            .switch("Force");
        let p = Command::from(&c);
        assert_eq!(p.name, "Set-ImapSettings");
        assert!(!p.is_script);
        let got: Vec<(Option<&str>, &Value)> = p
            .parameters
            .iter()
            .map(|p| (p.name.as_deref(), &p.value))
            .collect();
        assert_eq!(got[0], (Some("Server"), &Value::Str("EX01".into())));
        assert_eq!(got[1], (Some("MaxConnections"), &Value::I32(20)));
        assert_eq!(got[2], (Some("Big"), &Value::I64(5_000_000_000)));
        assert_eq!(got[3], (Some("Banner"), &Value::Nil));
        let list = got[4].1.as_object().and_then(|o| o.list.clone());
        assert_eq!(
            list,
            Some(vec![
                Value::Str("0.0.0.0:993".into()),
                Value::Str("[::]:993".into())
            ])
        );
        assert_eq!(got[5], (Some("Confirm"), &Value::Bool(false)));
        assert_eq!(got[6], (Some("Force"), &Value::Bool(true)));
        // It serializes as CLIXML like any other pipeline.
        assert!(clixml::to_clixml(got[4].1).contains("<LST>"));
    }

    use super::*;

    #[test]
    fn a_pipeline_for_a_2_1_server_has_no_per_stream_merges() {
        let spec = PipelineSpec::command(
            Command::new("Get-ImapSettings")
                .param("Server", "EX01")
                .switch("Verbose")
                .positional(3),
        );
        let old = create_pipeline(&spec, (2, 1), false);
        assert!(!old.contains("MergeError"));
        let new = create_pipeline(&spec, (2, 3), false);
        assert!(new.contains("MergeInformation"));
        let v = clixml::parse(&old).unwrap();
        let cmds = v
            .property("PowerShell")
            .and_then(|p| p.property("Cmds"))
            .and_then(Value::as_object)
            .and_then(|o| o.list.clone())
            .unwrap();
        assert_eq!(
            cmds[0].property("Cmd").unwrap().as_str(),
            Some("Get-ImapSettings")
        );
        let args = cmds[0].property("Args").unwrap().as_object().unwrap();
        let args = args.list.as_ref().unwrap();
        assert_eq!(args.len(), 3);
        assert_eq!(args[2].property("N"), Some(&Value::Nil));
    }

    #[test]
    fn host_call_refusals_name_the_call() {
        let call = HostCall {
            call_id: 7,
            method: enum_value(
                "System.Management.Automation.Remoting.RemoteHostMethodId",
                "ReadLine",
                11,
            ),
            method_id: 11,
            pool_level: false,
            parameters: Vec::new(),
        };
        assert!(call.wants_response());
        let r = clixml::parse(&call.refusal()).unwrap();
        assert_eq!(r.property("ci"), Some(&Value::I64(7)));
        let write = HostCall {
            method_id: 15,
            ..call
        };
        assert!(!write.wants_response());
    }
}
