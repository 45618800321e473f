//! Runspace pools and pipelines over a WinRM shell: the I/O around [`crate::protocol`].
//!
//! [`RunspacePool::open`] creates the shell of the configuration's resource URI with the
//! pool's id as ShellId and the SESSION_CAPABILITY and INIT_RUNSPACEPOOL messages in
//! `creationXml`, then receives until the server says the pool is open.
//! [`RunspacePool::run`] sends CREATE_PIPELINE as the Command's argument (fragments that
//! do not fit the server's MaxEnvelopeSize follow in Sends), sends any input, and receives
//! the pipeline's messages until its final state. One pipeline runs at a time.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use exctl_winrm::{Client, CommandState, ResourceShell, ResourceShellSpec};
use uuid::Uuid;

use crate::clixml::{self, Value};
use crate::error::Error;
use crate::fragment::{self, Defragmenter, Fragmenter};
use crate::message::{Destination, Message, MessageType};
use crate::protocol::{
    self, ErrorRecord, InformationalRecord, PipelineSpec, PipelineState, PoolState, ServerEvent,
    Version,
};

/// The signal that stops a pipeline, spelled as Windows spells it ([MS-PSRP] 3.1.5.3.9,
/// https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/59bb0f35-1a5b-441d-a774-4411cb47899a).
pub const SIGNAL_STOP: &str = "powershell/signal/crtl_c";
/// The prefix of a session configuration's resource URI.
pub const RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/powershell/";

/// How to open a pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The configuration name (`Microsoft.PowerShell`, `Microsoft.Exchange`) or its
    /// whole resource URI.
    pub configuration: String,
    /// Runspaces kept open.
    pub min_runspaces: i32,
    /// Runspaces at most.
    pub max_runspaces: i32,
    /// How long opening may take.
    pub open_deadline: Duration,
    /// Whether the client has a host with a user interface: the server then relays
    /// `Read-Host` and prompts as host calls, which [`RunspacePool::run_with_host`]
    /// hands to its [`HostCallHandler`]. Without one (the default), the server refuses
    /// prompts itself.
    pub host_ui: bool,
}

impl PoolOptions {
    /// The default configuration of a WinRM endpoint: `Microsoft.PowerShell`.
    pub fn powershell() -> Self {
        Self::configuration("Microsoft.PowerShell")
    }

    /// Exchange's own endpoint's configuration: `Microsoft.Exchange`.
    pub fn exchange() -> Self {
        Self::configuration("Microsoft.Exchange")
    }

    /// A configuration by name or resource URI.
    pub fn configuration(name: impl Into<String>) -> Self {
        PoolOptions {
            configuration: name.into(),
            min_runspaces: 1,
            max_runspaces: 1,
            open_deadline: Duration::from_secs(120),
            host_ui: false,
        }
    }

    /// The resource URI of the configuration.
    pub fn resource_uri(&self) -> String {
        if self.configuration.contains("://") {
            self.configuration.clone()
        } else {
            format!("{RESOURCE_PREFIX}{}", self.configuration)
        }
    }
}

/// What a pipeline produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineResult {
    /// Output objects in order, as the client hands them on (see
    /// [`clixml::deserialized`]); empty after [`RunspacePool::run_with`].
    pub output: Vec<Value>,
    /// Error records (non-terminating errors).
    pub errors: Vec<ErrorRecord>,
    /// Warnings.
    pub warnings: Vec<InformationalRecord>,
    /// Verbose messages.
    pub verbose: Vec<InformationalRecord>,
    /// Debug messages.
    pub debug: Vec<InformationalRecord>,
    /// Information records (protocol 2.3).
    pub information: Vec<InformationalRecord>,
    /// The final state.
    pub state: PipelineState,
    /// The terminating error of a failed pipeline.
    pub failure: Option<ErrorRecord>,
}

impl PipelineResult {
    /// Whether the pipeline completed without any error record.
    pub fn succeeded(&self) -> bool {
        self.state == PipelineState::Completed && self.errors.is_empty() && self.failure.is_none()
    }
}

/// An open runspace pool.
#[derive(Debug)]
pub struct RunspacePool {
    shell: ResourceShell,
    rpid: Uuid,
    fragmenter: Fragmenter,
    defrag: Defragmenter,
    server_version: Version,
    server_ps_version: String,
    private_data: Option<Value>,
    running: Option<String>,
    host_ui: bool,
}

/// Answers the host calls of a pipeline run by [`RunspacePool::run_with_host`] (a
/// `Read-Host` the server relays to the client). `None` refuses the call, as a client
/// without that host method does.
pub trait HostCallHandler: Send {
    /// The return value of `call`, or `None` to refuse it.
    fn answer<'a>(
        &'a mut self,
        call: &'a protocol::HostCall,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Value>> + Send + 'a>>;
}

/// The handler of a client without an interactive host: refuses every call.
struct Refuse;

impl HostCallHandler for Refuse {
    fn answer<'a>(
        &'a mut self,
        _call: &'a protocol::HostCall,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Value>> + Send + 'a>> {
        Box::pin(async { None })
    }
}

impl RunspacePool {
    /// Opens a pool on the endpoint of `client`.
    pub async fn open(client: &Client, opts: &PoolOptions) -> Result<Self, Error> {
        let rpid = Uuid::new_v4();
        let mut fragmenter = Fragmenter::new();
        let mut creation = Vec::new();
        for (t, data) in [
            (
                MessageType::SessionCapability,
                protocol::session_capability(),
            ),
            (
                MessageType::InitRunspacePool,
                protocol::init_runspace_pool(opts.min_runspaces, opts.max_runspaces, opts.host_ui),
            ),
        ] {
            let m = Message {
                destination: Destination::Server,
                message_type: t,
                rpid,
                pid: Uuid::nil(),
                data,
            };
            for f in fragmenter.fragment(&m.encode(), usize::MAX) {
                f.encode(&mut creation);
            }
        }
        let spec = ResourceShellSpec {
            resource_uri: opts.resource_uri(),
            shell_id: Some(rpid.to_string().to_uppercase()),
            input_streams: "stdin pr".into(),
            output_streams: "stdout".into(),
            options: vec![(
                "protocolversion".into(),
                protocol::CLIENT_PROTOCOL_VERSION.into(),
            )],
            extra_body: format!(
                "<creationXml xmlns=\"http://schemas.microsoft.com/powershell\">{}</creationXml>",
                B64.encode(&creation)
            ),
        };
        let shell = client.open_resource_shell(&spec).await?;
        let mut pool = RunspacePool {
            shell,
            rpid,
            fragmenter,
            defrag: Defragmenter::new(),
            server_version: (2, 1),
            server_ps_version: String::new(),
            private_data: None,
            running: None,
            host_ui: opts.host_ui,
        };
        match tokio::time::timeout(opts.open_deadline, pool.wait_opened()).await {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => {
                let _ = pool.shell.close().await;
                Err(e)
            }
            Err(_) => {
                let _ = pool.shell.close().await;
                Err(Error::Deadline(opts.open_deadline))
            }
        }
    }

    async fn wait_opened(&mut self) -> Result<(), Error> {
        loop {
            let r = self.shell.receive(None, "stdout").await?;
            for m in self.messages(&r.stdout, None)? {
                match protocol::read_event(&m)? {
                    ServerEvent::SessionCapability {
                        protocol_version,
                        ps_version,
                    } => {
                        self.server_version = protocol_version;
                        self.server_ps_version = ps_version;
                    }
                    ServerEvent::ApplicationPrivateData(v) => self.private_data = Some(v),
                    ServerEvent::PoolState { state, error } => match state {
                        PoolState::Opened => return Ok(()),
                        PoolState::Broken | PoolState::Closed => {
                            return Err(Error::Pool {
                                state: if state == PoolState::Broken {
                                    "broke"
                                } else {
                                    "closed"
                                },
                                reason: error
                                    .map(|e| e.message)
                                    .unwrap_or_else(|| "the server gave no reason".into()),
                            });
                        }
                        _ => {}
                    },
                    ServerEvent::HostCall(call) => self.answer_host_call(&call, None).await?,
                    _ => {}
                }
            }
            if let Some(CommandState::Done { .. }) = r.state {
                return Err(Error::Protocol(
                    "the server ended the pool before it opened".into(),
                ));
            }
        }
    }

    /// The id of the pool (and of its shell).
    pub fn id(&self) -> Uuid {
        self.rpid
    }

    /// The protocol version the server announced.
    pub fn server_protocol_version(&self) -> Version {
        self.server_version
    }

    /// The PowerShell version the server announced.
    pub fn server_ps_version(&self) -> &str {
        &self.server_ps_version
    }

    /// The server's application private data (PSVersionTable and the like).
    pub fn application_private_data(&self) -> Option<&Value> {
        self.private_data.as_ref()
    }

    /// Decodes the fragments in `bytes` into the messages they complete, checking that
    /// they are for this client, this pool and (when given) this pipeline.
    fn messages(&mut self, bytes: &[u8], pid: Option<Uuid>) -> Result<Vec<Message>, Error> {
        let mut out = Vec::new();
        for f in fragment::decode_all(bytes)? {
            if let Some(raw) = self.defrag.push(f)? {
                let m = Message::decode(&raw)?;
                if m.destination != Destination::Client {
                    return Err(Error::Protocol(format!(
                        "a {:?} message addressed to the server",
                        m.message_type
                    )));
                }
                if m.rpid != self.rpid {
                    return Err(Error::Protocol(format!(
                        "a message for runspace pool {} (ours is {})",
                        m.rpid, self.rpid
                    )));
                }
                if let Some(pid) = pid
                    && !m.pid.is_nil()
                    && m.pid != pid
                {
                    return Err(Error::Protocol(format!(
                        "a message for pipeline {} (ours is {pid})",
                        m.pid
                    )));
                }
                out.push(m);
            }
        }
        Ok(out)
    }

    fn encode(&mut self, t: MessageType, pid: Uuid, data: String) -> Vec<Vec<u8>> {
        let m = Message {
            destination: Destination::Server,
            message_type: t,
            rpid: self.rpid,
            pid,
            data,
        };
        let max = self.shell.max_payload();
        self.fragmenter
            .fragment(&m.encode(), max)
            .into_iter()
            .map(|f| {
                let mut b = Vec::new();
                f.encode(&mut b);
                b
            })
            .collect()
    }

    async fn answer_host_call(
        &mut self,
        call: &protocol::HostCall,
        command_id: Option<&str>,
    ) -> Result<(), Error> {
        self.respond_host_call(call, command_id, None).await
    }

    /// Sends the response to `call`: `answer` as its return value, or a refusal.
    async fn respond_host_call(
        &mut self,
        call: &protocol::HostCall,
        command_id: Option<&str>,
        answer: Option<Value>,
    ) -> Result<(), Error> {
        if !call.wants_response() {
            return Ok(());
        }
        let (t, pid) = if call.pool_level {
            (MessageType::RunspacePoolHostResponse, Uuid::nil())
        } else {
            (
                MessageType::PipelineHostResponse,
                command_id
                    .and_then(|c| Uuid::parse_str(c).ok())
                    .unwrap_or_default(),
            )
        };
        let target = if call.pool_level { None } else { command_id };
        let data = match answer {
            Some(v) => call.answer(v),
            None => call.refusal(),
        };
        for chunk in self.encode(t, pid, data) {
            // Host responses go on the prompt-response stream `pr`, which the server reads
            // even while the pipeline's input is closed ([MS-PSRP] 3.1.5.3.5,
            // https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/f1686d55-ba3e-43a5-9d76-1140e9d550ae).
            self.shell.send(target, "pr", &chunk).await?;
        }
        Ok(())
    }

    /// Runs a pipeline to its end, collecting everything it writes.
    pub async fn run(&mut self, spec: &PipelineSpec) -> Result<PipelineResult, Error> {
        let mut output = Vec::new();
        let mut result = self
            .run_with(spec, |ev| {
                if let ServerEvent::Output(v) = ev {
                    output.push(clixml::deserialized(v));
                }
            })
            .await?;
        result.output = output;
        Ok(result)
    }

    /// Runs a pipeline, handing each event to `on_event` as it arrives (to print output
    /// while the pipeline still runs). Output objects are not kept (the result's `output`
    /// is empty), so a pipeline that writes without end does not fill memory; records
    /// and the final state are.
    pub async fn run_with(
        &mut self,
        spec: &PipelineSpec,
        on_event: impl FnMut(&ServerEvent),
    ) -> Result<PipelineResult, Error> {
        self.run_with_host(spec, on_event, &mut Refuse).await
    }

    /// Runs a pipeline like [`RunspacePool::run_with`], answering the host calls it makes
    /// (a pool opened with [`PoolOptions::host_ui`]) through `host`.
    pub async fn run_with_host(
        &mut self,
        spec: &PipelineSpec,
        mut on_event: impl FnMut(&ServerEvent),
        host: &mut dyn HostCallHandler,
    ) -> Result<PipelineResult, Error> {
        if spec.commands.is_empty() {
            return Err(Error::Usage("a pipeline needs at least one command".into()));
        }
        let pid = Uuid::new_v4();
        let data = protocol::create_pipeline(spec, self.server_version, self.host_ui);
        let mut chunks = self
            .encode(MessageType::CreatePipeline, pid, data)
            .into_iter();
        let first = chunks.next().unwrap_or_default();
        let command_id = self
            .shell
            .command(&pid.to_string().to_uppercase(), &first)
            .await?;
        self.running = Some(command_id.clone());
        for c in chunks {
            self.shell.send(Some(&command_id), "stdin", &c).await?;
        }
        if !spec.input.is_empty() {
            let mut batch = Vec::new();
            let max = self.shell.max_payload();
            let mut msgs: Vec<(MessageType, String)> = spec
                .input
                .iter()
                .map(|v| (MessageType::PipelineInput, clixml::to_clixml(v)))
                .collect();
            msgs.push((MessageType::EndOfPipelineInput, String::new()));
            for (t, d) in msgs {
                for c in self.encode(t, pid, d) {
                    if !batch.is_empty() && batch.len() + c.len() > max {
                        self.shell
                            .send(Some(&command_id), "stdin", &std::mem::take(&mut batch))
                            .await?;
                    }
                    batch.extend_from_slice(&c);
                }
            }
            if !batch.is_empty() {
                self.shell.send(Some(&command_id), "stdin", &batch).await?;
            }
        }
        let mut result = PipelineResult {
            output: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            verbose: Vec::new(),
            debug: Vec::new(),
            information: Vec::new(),
            state: PipelineState::Running,
            failure: None,
        };
        let mut done = false;
        while !done {
            let r = self.shell.receive(Some(&command_id), "stdout").await?;
            for m in self.messages(&r.stdout, Some(pid))? {
                let ev = protocol::read_event(&m)?;
                on_event(&ev);
                match ev {
                    ServerEvent::Output(_) => {}
                    ServerEvent::Error(e) => result.errors.push(e),
                    ServerEvent::Warning(w) => result.warnings.push(w),
                    ServerEvent::Verbose(w) => result.verbose.push(w),
                    ServerEvent::Debug(w) => result.debug.push(w),
                    ServerEvent::Information(w) => result.information.push(w),
                    ServerEvent::PipelineState { state, error } => {
                        result.state = state;
                        if state.is_terminal() {
                            result.failure = error;
                            done = true;
                        }
                    }
                    ServerEvent::HostCall(call) => {
                        let answer = host.answer(&call).await;
                        self.respond_host_call(&call, Some(&command_id), answer)
                            .await?;
                    }
                    ServerEvent::PoolState {
                        state: PoolState::Broken,
                        error,
                    } => {
                        return Err(Error::Pool {
                            state: "broke",
                            reason: error
                                .map(|e| e.message)
                                .unwrap_or_else(|| "the server gave no reason".into()),
                        });
                    }
                    _ => {}
                }
            }
            if !done && matches!(r.state, Some(CommandState::Done { .. })) {
                return Err(Error::Protocol(
                    "the server ended the pipeline without its final state".into(),
                ));
            }
        }
        self.running = None;
        Ok(result)
    }

    /// Stops the pipeline that a dropped [`RunspacePool::run`] left running, if any.
    pub async fn stop_running(&mut self) -> Result<(), Error> {
        if let Some(id) = self.running.take() {
            self.shell.signal(&id, SIGNAL_STOP).await?;
        }
        Ok(())
    }

    /// Closes the pool (its shell) on the server.
    pub async fn close(self) -> Result<(), Error> {
        self.shell.close().await.map_err(Error::from)
    }
}
