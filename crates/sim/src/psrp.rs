//! PowerShell remoting (MS-PSRP) on the simulated host: runspace pools and pipelines.
//!
//! Two endpoints serve it, as on an Exchange 2010 server:
//! - `/wsman`, configuration `Microsoft.PowerShell`: full language; a pipeline's commands
//!   run in the interpreter with the host's cmdlets (the Exchange ones only after
//!   `Add-PSSnapin`, as in powershell.exe).
//! - `/PowerShell` (IIS on a real server), configuration `Microsoft.Exchange`: NoLanguage.
//!   Only commands with parameters are accepted; a script is refused with the error a
//!   NoLanguage runspace gives (its text and FullyQualifiedErrorId `ScriptsNotAllowed` as
//!   a real JEA endpoint sent them, `tests/fixtures/psrp-recorded/
//!   test_psrp_with_jea_configuration.yml`); only the Exchange cmdlets exist (anything
//!   else is PowerShell's CommandNotFoundException); objects leave deserialized. RBAC:
//!   of those, only the cmdlets of the account's management roles exist
//!   ([`crate::ExchangeRole`]); an account without any role gets Exchange's refusal as a
//!   fault on the pool's first Receive, as Exchange refuses it while setting the session
//!   up. The double hop does not apply here: Exchange does the directory work itself.
//!
//! Exchange's endpoint and configuration are those Microsoft documents for connecting to
//! Exchange servers with remote PowerShell (`New-PSSession -ConfigurationName
//! Microsoft.Exchange -ConnectionUri http://<ServerFQDN>/PowerShell/ -Authentication
//! Kerberos`, https://docs.microsoft.com/en-us/powershell/exchange/connect-to-exchange-servers-using-remote-powershell).
//! Output goes in the `stdout` stream only ([MS-PSRP] 3.2.5.3.8,
//! https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/a1d094a0-cb40-41fd-9e3c-8033ccf27cb0).
//!
//! The server speaks protocol 2.1 with PSVersion 2.0, as Exchange 2010's Windows
//! PowerShell 2.0 does. Messages are cut into fragments that fit the client's
//! MaxEnvelopeSize. Counters in `/sim/state`: `psrp_pools_opened`,
//! `psrp_exchange_sessions_opened`, `psrp_pipelines`, `psrp_pools_closed`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use exctl_psrp::clixml::{self, PsObject as Obj, Value as Cv};
use exctl_psrp::fragment::{self, Defragmenter, Fragmenter};
use exctl_psrp::message::{Destination, Message, MessageType};
use exctl_pwsh_interp::{
    ErrorRecord, ExitReason, Interpreter, Limits, OutputSink, StopSignal, Value as Pv,
};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::ExchangeRole;
use crate::exchange::OrgHandle;
use crate::fault::Fault;
use crate::pshost::{HostOptions, SimHost, no_management_role_message};
use crate::soap::{self, NS_RSP, NsSet, SoapRequest, action, envelope};
use crate::state::SimState;
use crate::xml::escape_text;

/// The resource URI prefix of session configurations.
pub const RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/powershell/";
/// The default configuration of `/wsman`.
pub const POWERSHELL_CONFIGURATION: &str = "Microsoft.PowerShell";
/// Exchange's configuration on `/PowerShell`.
pub const EXCHANGE_CONFIGURATION: &str = "Microsoft.Exchange";

/// What a NoLanguage runspace says of a script (recorded from a real restricted endpoint).
pub const NO_LANGUAGE_MESSAGE: &str = "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode.";

/// Room kept in a ReceiveResponse for the envelope around the streams.
const ENVELOPE_OVERHEAD: usize = 2048;

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/wsman`.
    Wsman,
    /// `/PowerShell`.
    Exchange,
}

/// Runs pipelines against the organization: what the PSRP service needs of the host.
#[derive(Debug, Clone)]
pub struct PsrpHost {
    org: OrgHandle,
    options: HostOptions,
}

impl PsrpHost {
    /// A host for `org`.
    pub fn new(org: OrgHandle, options: HostOptions) -> Self {
        PsrpHost { org, options }
    }
}

struct Pipeline {
    pid: Uuid,
    outbox: Mutex<Outbox>,
    finished: Mutex<bool>,
    notify: Notify,
    stop: StopSignal,
    receive: tokio::sync::Mutex<()>,
    input: Mutex<Vec<String>>,
    no_input: Mutex<Option<bool>>,
    spec: Mutex<Option<Arc<Obj>>>,
    started: Mutex<bool>,
    /// Whether the client's host has a user interface for this pipeline (its HostInfo,
    /// or the pool's when it says to use the runspace's host).
    host_ui: Mutex<bool>,
    /// The client's answers to this pipeline's host calls, by call id.
    host_replies: Mutex<HashMap<i64, Arc<Obj>>>,
    host_replied: std::sync::Condvar,
}

struct Pool {
    rpid: Uuid,
    exchange: bool,
    /// Exchange refused the session (an account without management roles): the pool's
    /// first Receive answers with this fault instead of the opening messages.
    refused: Mutex<Option<Fault>>,
    outbox: Mutex<Outbox>,
    notify: Notify,
    defrag: Mutex<Defragmenter>,
    fragmenter: Mutex<Fragmenter>,
    pipelines: Mutex<HashMap<String, Arc<Pipeline>>>,
    /// The runspace between pipelines (taken while one runs).
    runspace: Mutex<Option<SimHost>>,
    /// Its global scope between pipelines: a pipeline's script runs in the runspace's
    /// global scope, so what it defines at its top level the next one sees (as
    /// `Invoke-Command -Session` shows on Windows).
    session: Mutex<exctl_pwsh_interp::SessionState>,
    /// Whether the client's host (INIT_RUNSPACEPOOL's HostInfo) has a user interface.
    host_ui: bool,
    /// Host call ids, unique in the pool.
    next_call: std::sync::atomic::AtomicI64,
}

/// Whether a HostInfo ([MS-PSRP] 2.2.3.14) describes a host with a user interface;
/// `None` when it says to use the runspace pool's host.
fn host_has_ui(info: Option<&Cv>) -> Option<bool> {
    let flag = |name: &str| {
        info.and_then(|i| i.property(name))
            .is_some_and(|v| matches!(v, Cv::Bool(true)))
    };
    if info.is_some() && flag("_useRunspaceHost") {
        return None;
    }
    Some(info.is_some() && !flag("_isHostNull") && !flag("_isHostUINull"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The PSRP service of one simulated host.
pub struct PsrpService {
    host: Option<PsrpHost>,
    state: Arc<SimState>,
    max_timeout: Duration,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
}

/// A successful response or a fault.
pub type Reply = Result<String, Fault>;

fn message(pool: &Pool, t: MessageType, pid: Uuid, data: String) -> Vec<u8> {
    Message {
        destination: Destination::Client,
        message_type: t,
        rpid: pool.rpid,
        pid,
        // Windows writes a byte-order mark before the CLIXML.
        data: format!("\u{FEFF}{data}"),
    }
    .encode()
}

fn ms(props: Vec<(&str, Cv)>) -> Cv {
    Cv::object(Obj {
        extended: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..Obj::default()
    })
}

/// Messages waiting for a Receive, and fragments of a message that did not fit the
/// last one (already numbered, so they go out as they were cut).
#[derive(Default)]
struct Outbox {
    messages: VecDeque<Vec<u8>>,
    fragments: VecDeque<Vec<u8>>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.fragments.is_empty()
    }

    /// Takes whole fragments worth at most `room` bytes of envelope (at least one).
    fn take(&mut self, fragmenter: &Mutex<Fragmenter>, room: usize) -> Vec<Vec<u8>> {
        // Base64 grows by 4/3; each stream element costs about 100 bytes more.
        let cost = |f: &Vec<u8>| f.len().div_ceil(3) * 4 + 128;
        let fragment_max = (room.saturating_sub(128) / 4 * 3).max(64);
        let mut out = Vec::new();
        let mut used = 0;
        loop {
            if self.fragments.is_empty() {
                let Some(msg) = self.messages.pop_front() else {
                    break;
                };
                for f in lock(fragmenter).fragment(&msg, fragment_max) {
                    let mut b = Vec::new();
                    f.encode(&mut b);
                    self.fragments.push_back(b);
                }
            }
            let Some(next) = self.fragments.front() else {
                break;
            };
            if !out.is_empty() && used + cost(next) > room {
                break;
            }
            used += cost(next);
            out.extend(self.fragments.pop_front());
        }
        out
    }
}

impl PsrpService {
    /// A service without pools; `host` runs the pipelines (none: every Create fails).
    pub fn new(host: Option<PsrpHost>, state: Arc<SimState>, max_timeout: Duration) -> Self {
        PsrpService {
            host,
            state,
            max_timeout,
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a resource URI is a session configuration's.
    pub fn is_psrp_resource(uri: &str) -> bool {
        uri.len() > RESOURCE_PREFIX.len()
            && uri[..RESOURCE_PREFIX.len()].eq_ignore_ascii_case(RESOURCE_PREFIX)
    }

    fn pool(&self, req: &SoapRequest) -> Result<Arc<Pool>, Fault> {
        let id = req.selector("ShellId").unwrap_or_default();
        lock(&self.pools)
            .get(&id.to_ascii_uppercase())
            .cloned()
            .ok_or_else(|| Fault::unknown_shell(id))
    }

    /// Serves one SOAP request for a session configuration's resource.
    pub async fn handle(&self, req: &SoapRequest, account: &str, endpoint: Endpoint) -> Reply {
        let resource = req.resource_uri.clone().unwrap_or_default();
        let configuration = &resource[RESOURCE_PREFIX.len().min(resource.len())..];
        let expected = match endpoint {
            Endpoint::Wsman => POWERSHELL_CONFIGURATION,
            Endpoint::Exchange => EXCHANGE_CONFIGURATION,
        };
        // Each endpoint has its one configuration: Microsoft.Exchange lives in IIS, not
        // in the WinRM service, and IIS's /PowerShell serves nothing else.
        if !configuration.eq_ignore_ascii_case(expected) {
            return Err(Fault::destination_unreachable());
        }
        match req.action.as_str() {
            action::CREATE if endpoint == Endpoint::Exchange => {
                // An Exchange runspace takes seconds to open on a real server (RBAC and
                // the cmdlets' initialisation), as the snap-in does to load: the same
                // configured time (`--startup-ms`).
                let delay = self
                    .host
                    .as_ref()
                    .map(|h| h.options.snapin_delay)
                    .unwrap_or_default();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                self.create(req, account, endpoint)
            }
            action::CREATE => self.create(req, account, endpoint),
            action::COMMAND => self.command(req),
            action::SEND => self.send(req),
            action::RECEIVE => self.receive(req).await,
            action::SIGNAL => self.signal(req),
            action::DELETE => self.delete(req),
            other => Err(Fault::action_not_supported(other)),
        }
    }

    fn create(&self, req: &SoapRequest, account: &str, endpoint: Endpoint) -> Reply {
        if self.host.is_none() {
            return Err(Fault::destination_unreachable());
        }
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Shell")
            .ok_or_else(Fault::schema_validation)?;
        let creation = body
            .children
            .iter()
            .find(|c| c.name == "creationXml")
            .ok_or_else(Fault::invalid_parameter)?;
        let raw = B64
            .decode(creation.text.trim())
            .map_err(|_| Fault::invalid_parameter())?;
        let mut defrag = Defragmenter::new();
        let mut rpid = None;
        let mut host_ui = false;
        let frags = fragment::decode_all(&raw).map_err(|_| Fault::invalid_parameter())?;
        for f in frags {
            if let Some(m) = defrag.push(f).map_err(|_| Fault::invalid_parameter())? {
                let m = Message::decode(&m).map_err(|_| Fault::invalid_parameter())?;
                rpid = Some(m.rpid);
                if m.message_type == MessageType::InitRunspacePool
                    && let Ok(init) = clixml::parse_object(&m.data)
                {
                    host_ui = host_has_ui(init.property("HostInfo")).unwrap_or(false);
                }
            }
        }
        let rpid = rpid.ok_or_else(Fault::invalid_parameter)?;
        let id = body
            .attr("ShellId")
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_else(|| rpid.to_string().to_ascii_uppercase());
        // Exchange sets the session up from the account's management roles once the shell
        // exists; without any role that fails, and the client learns it from its first
        // Receive ("Processing data from remote server failed ...", KB 3058293).
        let refused = match &self.host {
            Some(h) if endpoint == Endpoint::Exchange && h.options.role == ExchangeRole::None => {
                Some(Fault::plugin_refused(&no_management_role_message(
                    h.options.account.as_ref(),
                )))
            }
            _ => None,
        };
        let opened = refused.is_none();
        let pool = Arc::new(Pool {
            rpid,
            exchange: endpoint == Endpoint::Exchange,
            refused: Mutex::new(refused),
            outbox: Mutex::new(Outbox::default()),
            notify: Notify::new(),
            defrag: Mutex::new(defrag),
            fragmenter: Mutex::new(Fragmenter::new()),
            pipelines: Mutex::new(HashMap::new()),
            runspace: Mutex::new(None),
            session: Mutex::new(exctl_pwsh_interp::SessionState::default()),
            host_ui,
            next_call: std::sync::atomic::AtomicI64::new(1),
        });
        if opened {
            let mut ob = lock(&pool.outbox);
            ob.messages.push_back(message(
                &pool,
                MessageType::SessionCapability,
                Uuid::nil(),
                clixml::to_clixml(&ms(vec![
                    ("protocolversion", Cv::Version("2.1".into())),
                    ("PSVersion", Cv::Version("2.0".into())),
                    ("SerializationVersion", Cv::Version("1.1.0.1".into())),
                ])),
            ));
            ob.messages.push_back(message(
                &pool,
                MessageType::ApplicationPrivateData,
                Uuid::nil(),
                clixml::to_clixml(&application_private_data()),
            ));
            ob.messages.push_back(message(
                &pool,
                MessageType::RunspacePoolState,
                Uuid::nil(),
                clixml::to_clixml(&ms(vec![("RunspaceState", Cv::I32(2))])),
            ));
        }
        lock(&self.pools).insert(id.clone(), pool);
        self.state.count("psrp_pools_opened", 1);
        // A pool is a WinRM shell (Windows lists it among the shells and counts it
        // against MaxShellsPerUser); on /wsman its runspace lives in a wsmprovhost.exe
        // process, a PowerShell host.
        self.state.shell_created();
        if endpoint == Endpoint::Wsman
            && let Some(h) = &self.host
        {
            h.org.lock().count_powershell_process();
        }
        if endpoint == Endpoint::Exchange && opened {
            self.state.count("psrp_exchange_sessions_opened", 1);
            // The organization counts Exchange sessions of every kind (snap-in loads,
            // imported sessions, and these).
            if let Some(h) = &self.host {
                h.org.lock().count_exchange_session();
            }
        }
        let address = req.to.clone().unwrap_or_default();
        let resource = req.resource_uri.clone().unwrap_or_default();
        let body = format!(
            "<x:ResourceCreated><a:Address>{}</a:Address><a:ReferenceParameters><w:ResourceURI>{}</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">{id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell xmlns:rsp=\"{NS_RSP}\"><rsp:ShellId>{id}</rsp:ShellId><rsp:ResourceUri>{}</rsp:ResourceUri><rsp:Owner>{}</rsp:Owner><rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams></rsp:Shell>",
            escape_text(&address),
            escape_text(&resource),
            escape_text(&resource),
            escape_text(account),
        );
        Ok(envelope(
            NsSet::Shell,
            &format!("{}Response", action::CREATE),
            req.message_id.as_deref(),
            &body,
        ))
    }

    /// Reads fragments sent by the client into the pool and its pipelines.
    fn take_in(&self, pool: &Arc<Pool>, bytes: &[u8]) -> Result<(), Fault> {
        let frags = fragment::decode_all(bytes).map_err(|_| Fault::invalid_parameter())?;
        for f in frags {
            let done = lock(&pool.defrag)
                .push(f)
                .map_err(|_| Fault::invalid_parameter())?;
            let Some(raw) = done else { continue };
            let m = Message::decode(&raw).map_err(|_| Fault::invalid_parameter())?;
            let pid_key = m.pid.to_string().to_ascii_uppercase();
            let pipeline = lock(&pool.pipelines).get(&pid_key).cloned();
            match (m.message_type, pipeline) {
                (MessageType::CreatePipeline, Some(p)) => {
                    let spec =
                        clixml::parse_object(&m.data).map_err(|_| Fault::invalid_parameter())?;
                    let no_input = spec
                        .property("NoInput")
                        .map(|v| matches!(v, Cv::Bool(true)))
                        .unwrap_or(true);
                    *lock(&p.no_input) = Some(no_input);
                    *lock(&p.host_ui) =
                        host_has_ui(spec.property("HostInfo")).unwrap_or(pool.host_ui);
                    *lock(&p.spec) = Some(spec);
                    if no_input {
                        self.start(pool, &p);
                    }
                }
                (MessageType::PipelineInput, Some(p)) => {
                    let v = clixml::parse(&m.data).map_err(|_| Fault::invalid_parameter())?;
                    lock(&p.input).push(v.display());
                }
                (MessageType::EndOfPipelineInput, Some(p)) => self.start(pool, &p),
                // The client's answer to a host call of the pipeline (on `pr`).
                (MessageType::PipelineHostResponse, Some(p)) => {
                    let reply =
                        clixml::parse_object(&m.data).map_err(|_| Fault::invalid_parameter())?;
                    if let Some(ci) = reply.property("ci").and_then(Cv::as_i64) {
                        lock(&p.host_replies).insert(ci, reply);
                        p.host_replied.notify_all();
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn command(&self, req: &SoapRequest) -> Reply {
        let pool = self.pool(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "CommandLine")
            .ok_or_else(Fault::schema_validation)?;
        let id = body
            .attr("CommandId")
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_else(soap::new_guid);
        let pid = Uuid::parse_str(&id).map_err(|_| Fault::invalid_parameter())?;
        let args = body
            .child(NS_RSP, "Arguments")
            .ok_or_else(Fault::invalid_parameter)?;
        let raw = B64
            .decode(args.text.trim())
            .map_err(|_| Fault::invalid_parameter())?;
        let pipeline = Arc::new(Pipeline {
            pid,
            outbox: Mutex::new(Outbox::default()),
            finished: Mutex::new(false),
            notify: Notify::new(),
            stop: StopSignal::new(),
            receive: tokio::sync::Mutex::new(()),
            input: Mutex::new(Vec::new()),
            no_input: Mutex::new(None),
            spec: Mutex::new(None),
            started: Mutex::new(false),
            host_ui: Mutex::new(false),
            host_replies: Mutex::new(HashMap::new()),
            host_replied: std::sync::Condvar::new(),
        });
        lock(&pool.pipelines).insert(id.clone(), pipeline);
        self.state.count("psrp_pipelines", 1);
        // A pipeline is a Command of the pool's shell.
        self.state.command();
        self.take_in(&pool, &raw)?;
        Ok(envelope(
            NsSet::Shell,
            &format!("{}Response", action::COMMAND),
            req.message_id.as_deref(),
            &format!(
                "<rsp:CommandResponse><rsp:CommandId>{id}</rsp:CommandId></rsp:CommandResponse>"
            ),
        ))
    }

    fn send(&self, req: &SoapRequest) -> Reply {
        let pool = self.pool(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Send")
            .ok_or_else(Fault::schema_validation)?;
        for s in body.children_named(NS_RSP, "Stream") {
            let raw = B64
                .decode(s.text.trim())
                .map_err(|_| Fault::invalid_parameter())?;
            self.take_in(&pool, &raw)?;
        }
        Ok(envelope(
            NsSet::Shell,
            &format!("{}Response", action::SEND),
            req.message_id.as_deref(),
            "<rsp:SendResponse/>",
        ))
    }

    async fn receive(&self, req: &SoapRequest) -> Reply {
        let pool = self.pool(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Receive")
            .ok_or_else(Fault::schema_validation)?;
        let desired = body
            .child(NS_RSP, "DesiredStream")
            .ok_or_else(Fault::invalid_parameter)?;
        let timeout = req
            .operation_timeout
            .unwrap_or(self.max_timeout)
            .min(self.max_timeout);
        let deadline = Instant::now() + timeout;
        let room = req
            .max_envelope_size
            .map(|n| n as usize)
            .unwrap_or(153_600)
            .saturating_sub(ENVELOPE_OVERHEAD)
            .max(1024);
        if let Some(fault) = lock(&pool.refused).take() {
            return Err(fault);
        }
        let Some(cmd) = desired.attr("CommandId").map(|c| c.to_ascii_uppercase()) else {
            // The pool's own messages.
            loop {
                let notified = pool.notify.notified();
                let frags = lock(&pool.outbox).take(&pool.fragmenter, room);
                if !frags.is_empty() {
                    return Ok(receive_response(req, None, &frags, false));
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(Fault::timed_out());
                }
            }
        };
        let pipeline = lock(&pool.pipelines)
            .get(&cmd)
            .cloned()
            .ok_or_else(Fault::unknown_command)?;
        let _one = match tokio::time::timeout_at(deadline, pipeline.receive.lock()).await {
            Ok(g) => g,
            Err(_) => return Err(Fault::timed_out()),
        };
        loop {
            let notified = pipeline.notify.notified();
            let finished = *lock(&pipeline.finished);
            let frags = lock(&pipeline.outbox).take(&pool.fragmenter, room);
            let drained = lock(&pipeline.outbox).is_empty();
            if !frags.is_empty() || (finished && drained) {
                return Ok(receive_response(
                    req,
                    Some(&cmd),
                    &frags,
                    finished && drained,
                ));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Fault::timed_out());
            }
        }
    }

    fn signal(&self, req: &SoapRequest) -> Reply {
        let pool = self.pool(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Signal")
            .ok_or_else(Fault::schema_validation)?;
        let cmd = body
            .attr("CommandId")
            .map(|c| c.to_ascii_uppercase())
            .unwrap_or_default();
        let code = body
            .child(NS_RSP, "Code")
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default();
        let pipeline = lock(&pool.pipelines).get(&cmd).cloned();
        if let Some(p) = pipeline {
            if code.ends_with("crtl_c") || code.ends_with("ctrl_c") {
                p.stop.stop();
            } else {
                // terminate: the client is done with the command.
                p.stop.stop();
                lock(&pool.pipelines).remove(&cmd);
            }
        }
        Ok(envelope(
            NsSet::Shell,
            &format!("{}Response", action::SIGNAL),
            req.message_id.as_deref(),
            "<rsp:SignalResponse/>",
        ))
    }

    fn delete(&self, req: &SoapRequest) -> Reply {
        let pool = self.pool(req)?;
        for p in lock(&pool.pipelines).values() {
            p.stop.stop();
        }
        let id = req
            .selector("ShellId")
            .unwrap_or_default()
            .to_ascii_uppercase();
        if lock(&self.pools).remove(&id).is_some() {
            self.state.shell_closed();
        }
        self.state.count("psrp_pools_closed", 1);
        Ok(envelope(
            NsSet::Delete,
            &format!("{}Response", action::DELETE),
            req.message_id.as_deref(),
            "",
        ))
    }

    /// Starts a pipeline once its definition (and input, if any) arrived.
    fn start(&self, pool: &Arc<Pool>, p: &Arc<Pipeline>) {
        {
            let mut started = lock(&p.started);
            if *started {
                return;
            }
            let Some(spec) = lock(&p.spec).clone() else {
                return;
            };
            *started = true;
            drop(started);
            let Some(host) = self.host.clone() else {
                return;
            };
            let pool = pool.clone();
            let p = p.clone();
            tokio::task::spawn_blocking(move || run_pipeline(&host, &pool, &p, &spec));
        }
    }
}

fn receive_response(req: &SoapRequest, cmd: Option<&str>, frags: &[Vec<u8>], done: bool) -> String {
    let attr = cmd
        .map(|c| format!(" CommandId=\"{c}\""))
        .unwrap_or_default();
    let mut body = String::from("<rsp:ReceiveResponse>");
    for f in frags {
        body.push_str(&format!(
            "<rsp:Stream Name=\"stdout\"{attr}>{}</rsp:Stream>",
            B64.encode(f)
        ));
    }
    if let Some(c) = cmd {
        let state = if done { "Done" } else { "Running" };
        body.push_str(&format!(
            "<rsp:CommandState CommandId=\"{c}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/{state}\"/>"
        ));
    }
    body.push_str("</rsp:ReceiveResponse>");
    envelope(
        NsSet::Receive,
        &format!("{}Response", action::RECEIVE),
        req.message_id.as_deref(),
        &body,
    )
}

fn application_private_data() -> Cv {
    let table = Cv::object(Obj {
        type_names: vec![
            "System.Management.Automation.PSPrimitiveDictionary".into(),
            "System.Collections.Hashtable".into(),
            "System.Object".into(),
        ],
        dict: Some(vec![
            (Cv::str("PSVersion"), Cv::Version("2.0".into())),
            (
                Cv::str("PSRemotingProtocolVersion"),
                Cv::Version("2.1".into()),
            ),
            (
                Cv::str("BuildVersion"),
                Cv::Version("6.1.7601.17514".into()),
            ),
            (Cv::str("CLRVersion"), Cv::Version("2.0.50727.5420".into())),
            (Cv::str("WSManStackVersion"), Cv::Version("2.0".into())),
            (
                Cv::str("SerializationVersion"),
                Cv::Version("1.1.0.1".into()),
            ),
        ]),
        ..Obj::default()
    });
    ms(vec![(
        "ApplicationPrivateData",
        Cv::object(Obj {
            type_names: vec![
                "System.Management.Automation.PSPrimitiveDictionary".into(),
                "System.Collections.Hashtable".into(),
                "System.Object".into(),
            ],
            dict: Some(vec![(Cv::str("PSVersionTable"), table)]),
            ..Obj::default()
        }),
    )])
}

/// A value as a PowerShell literal, to rebuild a command line from commands as data.
fn literal(v: &Cv) -> String {
    match v {
        Cv::Nil => "$null".into(),
        Cv::Bool(true) => "$true".into(),
        Cv::Bool(false) => "$false".into(),
        Cv::U8(_)
        | Cv::I8(_)
        | Cv::U16(_)
        | Cv::I16(_)
        | Cv::U32(_)
        | Cv::I32(_)
        | Cv::U64(_)
        | Cv::I64(_)
        | Cv::Double(_)
        | Cv::Single(_) => v.display(),
        Cv::Object(o) if o.list.is_some() => {
            let items: Vec<String> = o.list.iter().flatten().map(literal).collect();
            format!("@({})", items.join(","))
        }
        other => format!("'{}'", other.display().replace('\'', "''")),
    }
}

struct Command {
    name: String,
    is_script: bool,
    args: Vec<(Option<String>, Cv)>,
}

fn commands(spec: &Obj) -> Vec<Command> {
    let cmds = spec
        .property("PowerShell")
        .and_then(|p| p.property("Cmds"))
        .and_then(Cv::as_object)
        .and_then(|o| o.list.clone())
        .unwrap_or_default();
    cmds.iter()
        .map(|c| Command {
            name: c.property("Cmd").map(Cv::display).unwrap_or_default(),
            is_script: matches!(c.property("IsScript"), Some(Cv::Bool(true))),
            args: c
                .property("Args")
                .and_then(Cv::as_object)
                .and_then(|o| o.list.clone())
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    let name = match a.property("N") {
                        Some(Cv::Nil) | None => None,
                        Some(n) => Some(n.display()),
                    };
                    (name, a.property("V").cloned().unwrap_or(Cv::Nil))
                })
                .collect(),
        })
        .collect()
}

fn script_of(cmds: &[Command]) -> String {
    cmds.iter()
        .map(|c| {
            if c.is_script {
                return c.name.clone();
            }
            let mut s = c.name.clone();
            for (n, v) in &c.args {
                match n {
                    Some(n) => {
                        s.push_str(&format!(" -{}:{}", n.trim_start_matches('-'), literal(v)))
                    }
                    None => {
                        s.push(' ');
                        s.push_str(&literal(v));
                    }
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// An interpreter value as CLIXML.
pub fn to_clixml_value(v: &Pv) -> Cv {
    match v {
        Pv::Null => Cv::Nil,
        Pv::Bool(b) => Cv::Bool(*b),
        Pv::Int(i) => Cv::I32(*i),
        Pv::Long(i) => Cv::I64(*i),
        Pv::Double(d) => Cv::Double(*d),
        Pv::Char(c) => Cv::Char(*c),
        Pv::String(s) => Cv::Str(s.to_string()),
        Pv::Bytes(b) => Cv::Bytes(b.to_vec()),
        Pv::Array(items) => Cv::object(Obj {
            type_names: vec![
                "Deserialized.System.Object[]".into(),
                "Deserialized.System.Array".into(),
                "Deserialized.System.Object".into(),
            ],
            list: Some(items.iter().map(to_clixml_value).collect()),
            ..Obj::default()
        }),
        Pv::Hashtable(h) => Cv::object(Obj {
            type_names: vec![
                "Deserialized.System.Collections.Hashtable".into(),
                "Deserialized.System.Object".into(),
            ],
            dict: Some(
                h.entries()
                    .iter()
                    .map(|(k, v)| (to_clixml_value(k), to_clixml_value(v)))
                    .collect(),
            ),
            ..Obj::default()
        }),
        Pv::TimeSpan(ticks) => {
            let secs = *ticks as f64 / 10_000_000.0;
            Cv::TimeSpan(format!("PT{secs}S"))
        }
        Pv::DateTime(ticks) => {
            // xs:dateTime, as PowerShell serializes a DateTime (its Kind unspecified).
            let (y, mo, d, h, mi, sec, frac) = exctl_pwsh_interp::convert::datetime_parts(*ticks);
            Cv::DateTime(format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{frac:07}"
            ))
        }
        Pv::Error(e) => error_value(e),
        Pv::Object(o) => Cv::object(Obj {
            // The server serializes its live objects under their own names; the client
            // marks them deserialized. The host model's copies already marked for
            // imported sessions are live objects here.
            type_names: o
                .type_names()
                .iter()
                .map(|t| t.strip_prefix("Deserialized.").unwrap_or(t).to_string())
                .collect(),
            to_string: Some(v.to_text()),
            extended: o
                .properties()
                .iter()
                .map(|(n, v)| (n.clone(), to_clixml_value(v)))
                .collect(),
            ..Obj::default()
        }),
        other => Cv::Str(other.to_text()),
    }
}

/// An error record as PSRP carries it (the fields a client reads).
pub fn error_value(e: &ErrorRecord) -> Cv {
    let mut extended = vec![
        (
            "Exception".to_string(),
            Cv::object(Obj {
                type_names: std::iter::once(e.exception_type.clone())
                    .chain(e.exception_bases.iter().cloned())
                    .collect(),
                to_string: Some(format!("{}: {}", e.exception_type, e.message)),
                adapted: vec![("Message".into(), Cv::Str(e.message.clone()))],
                ..Obj::default()
            }),
        ),
        (
            "TargetObject".to_string(),
            to_clixml_value(&e.target_object),
        ),
        (
            "FullyQualifiedErrorId".to_string(),
            Cv::Str(e.fully_qualified_error_id.clone()),
        ),
        ("ErrorCategory_Category".to_string(), Cv::I32(0)),
        (
            "ErrorCategory_Activity".to_string(),
            Cv::Str(e.command_name.clone().unwrap_or_default()),
        ),
        (
            "ErrorCategory_Reason".to_string(),
            Cv::Str(e.reason().to_string()),
        ),
        (
            "ErrorCategory_TargetName".to_string(),
            Cv::Str(e.target_name.clone()),
        ),
        (
            "ErrorCategory_TargetType".to_string(),
            Cv::Str(e.target_type.clone()),
        ),
        (
            "ErrorCategory_Message".to_string(),
            Cv::Str(e.category_info()),
        ),
        (
            "SerializeExtendedInfo".to_string(),
            Cv::Bool(e.position.is_some()),
        ),
    ];
    if let Some(pos) = e.position_message("\r\n") {
        extended.push(("InvocationInfo_PositionMessage".to_string(), Cv::Str(pos)));
    }
    if let Some(c) = &e.command_name {
        extended.push((
            "InvocationInfo_InvocationName".to_string(),
            Cv::Str(c.clone()),
        ));
    }
    Cv::object(Obj {
        type_names: vec![
            "System.Management.Automation.ErrorRecord".into(),
            "System.Object".into(),
        ],
        to_string: Some(e.message.clone()),
        extended,
        ..Obj::default()
    })
}

fn informational(type_name: &str, message: &str) -> String {
    clixml::to_clixml(&Cv::object(Obj {
        type_names: vec![
            format!("System.Management.Automation.{type_name}"),
            "System.Management.Automation.InformationalRecord".into(),
            "System.Object".into(),
        ],
        to_string: Some(message.to_string()),
        extended: vec![
            ("InformationalRecord_Message".into(), Cv::str(message)),
            (
                "InformationalRecord_SerializeInvocationInfo".into(),
                Cv::Bool(false),
            ),
        ],
        ..Obj::default()
    }))
}

/// The client's user interface as a pipeline reaches it: a Prompt host call
/// ([MS-PSRP] 2.2.2.27 PIPELINE_HOST_CALL, method 23) in the pipeline's output, and the
/// wait for the client's PIPELINE_HOST_RESPONSE.
struct PipelineUi {
    pool: Arc<Pool>,
    p: Arc<Pipeline>,
}

impl crate::pshost::RemoteUi for PipelineUi {
    fn prompt(&self, field: &str, stop: &StopSignal) -> Result<String, String> {
        let ci = self
            .pool
            .next_call
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let field_description = Cv::object(Obj {
            type_names: vec![
                "System.Management.Automation.Host.FieldDescription".into(),
                "System.Object".into(),
            ],
            to_string: Some("System.Management.Automation.Host.FieldDescription".into()),
            adapted: vec![
                ("name".into(), Cv::str(field)),
                ("label".into(), Cv::str("")),
                ("parameterTypeName".into(), Cv::str("String")),
                ("parameterTypeFullName".into(), Cv::str("System.String")),
                (
                    "parameterAssemblyFullName".into(),
                    Cv::str(
                        "mscorlib, Version=2.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
                    ),
                ),
                ("helpMessage".into(), Cv::str("")),
                ("isMandatory".into(), Cv::Bool(false)),
                ("metadata".into(), Cv::Nil),
                ("defaultValue".into(), Cv::Nil),
            ],
            ..Obj::default()
        });
        let list = |items: Vec<Cv>, t: &str| {
            Cv::object(Obj {
                type_names: vec![t.into(), "System.Object".into()],
                list: Some(items),
                ..Obj::default()
            })
        };
        let call = ms(vec![
            ("ci", Cv::I64(ci)),
            (
                "mi",
                Cv::object(Obj {
                    type_names: vec![
                        "System.Management.Automation.Remoting.RemoteHostMethodId".into(),
                        "System.Enum".into(),
                        "System.ValueType".into(),
                        "System.Object".into(),
                    ],
                    to_string: Some("Prompt".into()),
                    value: Some(Cv::I32(exctl_psrp::protocol::HOST_PROMPT as i32)),
                    ..Obj::default()
                }),
            ),
            (
                "mp",
                list(
                    vec![
                        Cv::str(""),
                        Cv::str(""),
                        list(
                            vec![field_description],
                            "System.Collections.ObjectModel.Collection`1[[System.Management.Automation.Host.FieldDescription, System.Management.Automation, Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
                        ),
                    ],
                    "System.Collections.ArrayList",
                ),
            ),
        ]);
        lock(&self.p.outbox).messages.push_back(message(
            &self.pool,
            MessageType::PipelineHostCall,
            self.p.pid,
            clixml::to_clixml(&call),
        ));
        self.p.notify.notify_waiters();
        self.p.notify.notify_one();
        let mut replies = lock(&self.p.host_replies);
        let reply = loop {
            if let Some(r) = replies.remove(&ci) {
                break r;
            }
            if stop.is_stopped() || self.p.stop.is_stopped() {
                return Err("The pipeline has been stopped.".into());
            }
            replies = self
                .p
                .host_replied
                .wait_timeout(replies, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        };
        drop(replies);
        if let Some(e) = reply.property("me") {
            let text = e
                .property("Exception")
                .and_then(|x| x.property("Message"))
                .map(Cv::display)
                .unwrap_or_else(|| e.display());
            return Err(text);
        }
        let answers = reply
            .property("mr")
            .and_then(Cv::as_object)
            .and_then(|o| o.dict.clone())
            .unwrap_or_default();
        Ok(answers
            .iter()
            .find(|(k, _)| k.display() == field)
            .map(|(_, v)| v.display())
            .unwrap_or_default())
    }
}

struct PipeSink<'a> {
    pool: &'a Pool,
    p: &'a Pipeline,
    last_error: Option<ErrorRecord>,
}

impl PipeSink<'_> {
    fn push(&self, t: MessageType, data: String) {
        lock(&self.p.outbox)
            .messages
            .push_back(message(self.pool, t, self.p.pid, data));
        self.p.notify.notify_waiters();
        self.p.notify.notify_one();
    }
}

impl OutputSink for PipeSink<'_> {
    fn stdout(&mut self, text: &str) {
        // Write-Host and the like: text from the host, sent as a string.
        let t = text.trim_end_matches(['\r', '\n']);
        if !t.is_empty() {
            self.push(MessageType::PipelineOutput, clixml::to_clixml(&Cv::str(t)));
        }
    }
    fn error(&mut self, record: &ErrorRecord) {
        if let Some(prev) = self.last_error.replace(record.clone()) {
            self.push(
                MessageType::ErrorRecord,
                clixml::to_clixml(&error_value(&prev)),
            );
        }
    }
    fn host_error_line(&mut self, line: &str) {
        self.push(
            MessageType::WarningRecord,
            informational("WarningRecord", line),
        );
    }
    fn warning(&mut self, message: &str) {
        self.push(
            MessageType::WarningRecord,
            informational("WarningRecord", message),
        );
    }
    fn verbose(&mut self, message: &str) {
        self.push(
            MessageType::VerboseRecord,
            informational("VerboseRecord", message),
        );
    }
    fn debug(&mut self, message: &str) {
        self.push(
            MessageType::DebugRecord,
            informational("DebugRecord", message),
        );
    }
    fn object(&mut self, value: &Pv) -> bool {
        self.push(
            MessageType::PipelineOutput,
            clixml::to_clixml(&to_clixml_value(value)),
        );
        true
    }
}

fn finish(pool: &Pool, p: &Pipeline, state: i32, error: Option<Cv>) {
    let mut props = vec![("PipelineState", Cv::I32(state))];
    if let Some(e) = error {
        props.push(("ExceptionAsErrorRecord", e));
    }
    lock(&p.outbox).messages.push_back(message(
        pool,
        MessageType::PipelineState,
        p.pid,
        clixml::to_clixml(&ms(props)),
    ));
    *lock(&p.finished) = true;
    p.notify.notify_waiters();
    p.notify.notify_one();
}

fn run_pipeline(host: &PsrpHost, pool: &Arc<Pool>, p: &Arc<Pipeline>, spec: &Obj) {
    let cmds = commands(spec);
    if pool.exchange {
        // NoLanguage: commands with parameters only.
        if cmds.iter().any(|c| c.is_script) {
            let target = cmds
                .iter()
                .find(|c| c.is_script)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let mut e = ErrorRecord::new(
                NO_LANGUAGE_MESSAGE,
                "System.Management.Automation.ParseException",
                exctl_pwsh_interp::ErrorCategory::ParserError,
                "ScriptsNotAllowed",
            );
            e.target_object = Pv::from(target.as_str());
            e.target_name = target;
            e.target_type = "String".into();
            finish(pool, p, 5, Some(error_value(&e)));
            return;
        }
    }
    // The pool's runspace: what one pipeline does to it (a snap-in loaded, a session
    // imported) the next one finds, as in a real runspace pool of one runspace.
    let mut sim_host = lock(&pool.runspace)
        .take()
        .unwrap_or_else(|| SimHost::new(host.org.clone(), host.options.clone(), &[]));
    // Read-Host asks the client when its host has a user interface (never on Exchange's
    // endpoint, which runs commands only).
    let ui: Option<Arc<dyn crate::pshost::RemoteUi>> =
        (!pool.exchange && *lock(&p.host_ui)).then(|| {
            Arc::new(PipelineUi {
                pool: pool.clone(),
                p: p.clone(),
            }) as Arc<dyn crate::pshost::RemoteUi>
        });
    sim_host.set_remote_ui(ui);
    if pool.exchange {
        sim_host.serve_exchange_endpoint();
        if let Some(c) = cmds.iter().find(|c| !sim_host.session_has(&c.name)) {
            // Only Exchange's cmdlets exist in its runspace, and of those only the ones of
            // the account's management roles (RBAC: the others are not there at all).
            let e = ErrorRecord::new(
                format!(
                    "The term '{}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
                    c.name
                ),
                "System.Management.Automation.CommandNotFoundException",
                exctl_pwsh_interp::ErrorCategory::ObjectNotFound,
                "CommandNotFoundException",
            )
            .with_target(Pv::from(c.name.as_str()));
            let mut e = e;
            e.target_name = c.name.clone();
            e.target_type = "String".into();
            *lock(&pool.runspace) = Some(sim_host);
            finish(pool, p, 5, Some(error_value(&e)));
            return;
        }
    }
    let script = script_of(&cmds);
    let input = lock(&p.input).clone();
    let mut interpreter = Interpreter::with_limits(sim_host, Limits::default());
    let stop = interpreter.stop_signal();
    interpreter.host_mut().set_stop_signal(stop.clone());
    let mut sink = PipeSink {
        pool,
        p,
        last_error: None,
    };
    // The client's stop (Signal crtl_c) reaches the interpreter through the pipeline's
    // own signal: a watcher thread copies it over.
    let watch_stop = p.stop.clone();
    let interp_stop = stop.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = done.clone();
    let watcher = std::thread::spawn(move || {
        while !done2.load(std::sync::atomic::Ordering::SeqCst) {
            if watch_stop.is_stopped() {
                interp_stop.stop();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut session = std::mem::take(&mut *lock(&pool.session));
    let status = interpreter.run_in(
        &mut session,
        &script,
        (!input.is_empty()).then_some(input),
        &mut sink,
    );
    *lock(&pool.session) = session;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watcher.join();
    *lock(&pool.runspace) = Some(interpreter.into_host());
    let last = sink.last_error.take();
    match status.reason {
        ExitReason::Stopped => {
            if let Some(e) = last {
                sink.push(
                    MessageType::ErrorRecord,
                    clixml::to_clixml(&error_value(&e)),
                );
            }
            finish(pool, p, 3, None)
        }
        ExitReason::Error => finish(pool, p, 5, last.as_ref().map(error_value)),
        _ => {
            if let Some(e) = last {
                sink.push(
                    MessageType::ErrorRecord,
                    clixml::to_clixml(&error_value(&e)),
                );
            }
            finish(pool, p, 4, None)
        }
    }
}
