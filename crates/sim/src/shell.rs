//! The WS-Management service behind `/wsman`: the WinRS cmd shell resource (Create,
//! Command, Send, Receive, Signal, Delete) and the config resource (Get), with the
//! quotas, timeouts and faults of a Windows Server 2008 R2 host.
//!
//! Shells and commands live in maps behind short-lived locks; a Receive waits for output
//! holding only its own command's receive lock, so Sends, other commands and other shells
//! go on meanwhile, and a slow process never blocks the listener.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::fault::Fault;
use crate::process::{Executor, Process, ProcessEvent, ProcessRequest};
use crate::soap::{
    self, NS_CFG, NS_RSP, NsSet, RESOURCE_CMD, SoapRequest, action, envelope, new_guid,
};
use crate::state::SimState;
use crate::xml::{escape_attr, escape_text};

/// After the first output of a Receive, how long to wait for more before answering, so
/// that `echo hi` comes back as output, End and Done in one response as on Windows.
const COALESCE: Duration = Duration::from_millis(25);
/// The longest a Receive keeps collecting once it has something to return.
const COALESCE_MAX: Duration = Duration::from_millis(250);
/// Room kept in a ReceiveResponse for the envelope, CommandState and End markers.
const ENVELOPE_OVERHEAD: usize = 2048;
/// What one `rsp:Stream` element costs besides its base64 text.
const STREAM_OVERHEAD: usize = 128;
/// WinRS's default shell code page (OEM United States) when the client sends none.
const DEFAULT_CODEPAGE: u32 = 437;
/// The default shell IdleTimeOut of WinRM 2.0 (Winrs/IdleTimeout 7200000 ms).
const DEFAULT_IDLE: Duration = Duration::from_secs(7200);

/// Who is asking, as the HTTP layer established it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `DOMAIN\user`.
    pub account: String,
    /// The client's IP address as the shell's ClientIP shows it.
    pub client_ip: String,
    /// The host name the client addressed (the `Machine` of faults).
    pub machine: String,
    /// This endpoint's URL, used when the request has no `a:To`.
    pub endpoint: String,
}

struct Shell {
    owner: String,
    codepage: u32,
    no_profile: bool,
    environment: Vec<(String, String)>,
    working_directory: Option<String>,
    commands: Mutex<HashMap<String, Arc<Command>>>,
}

impl Shell {
    fn commands(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Command>>> {
        self.commands.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Command {
    process: Box<dyn Process>,
    receive: tokio::sync::Mutex<ReceiveState>,
    terminated: AtomicBool,
}

#[derive(Default)]
struct ReceiveState {
    /// Output taken from the process that did not fit in the last response.
    pending: Option<ProcessEvent>,
    /// The exit code, once seen.
    exit: Option<u32>,
}

/// The WS-Management service of one simulated host.
pub struct WsmanService {
    config: Arc<SimConfig>,
    executor: Arc<dyn Executor>,
    state: Arc<SimState>,
    shells: Mutex<HashMap<String, Arc<Shell>>>,
}

/// A successful response: the envelope XML.
pub type Reply = Result<String, Fault>;

fn rsp_child<'a>(el: &'a crate::xml::Element, name: &str) -> Option<&'a crate::xml::Element> {
    el.child(NS_RSP, name)
}

impl WsmanService {
    /// A service with no shells.
    pub fn new(config: Arc<SimConfig>, executor: Arc<dyn Executor>, state: Arc<SimState>) -> Self {
        WsmanService {
            config,
            executor,
            state,
            shells: Mutex::new(HashMap::new()),
        }
    }

    fn shells(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Shell>>> {
        self.shells.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves one SOAP request.
    pub async fn handle(&self, req: &SoapRequest, caller: &Caller) -> Reply {
        self.state.action(&req.action);
        if req.bad_operation_timeout {
            return Err(Fault::invalid_header());
        }
        let resource = req.resource_uri.as_deref().unwrap_or_default();
        if resource.eq_ignore_ascii_case(RESOURCE_CMD) {
            match req.action.as_str() {
                action::CREATE => self.create(req, caller),
                action::COMMAND => self.command(req, caller),
                action::SEND => self.send(req),
                action::RECEIVE => self.receive(req).await,
                action::SIGNAL => self.signal(req),
                action::DELETE => self.delete(req),
                other => Err(Fault::action_not_supported(other)),
            }
        } else if resource.eq_ignore_ascii_case(NS_CFG) {
            match req.action.as_str() {
                action::GET => Ok(self.get_config(req)),
                other => Err(Fault::action_not_supported(other)),
            }
        } else {
            Err(Fault::destination_unreachable())
        }
    }

    fn shell(&self, req: &SoapRequest) -> Result<Arc<Shell>, Fault> {
        let id = req.selector("ShellId").unwrap_or_default();
        self.shells()
            .get(&id.to_ascii_uppercase())
            .cloned()
            .ok_or_else(|| Fault::unknown_shell(id))
    }

    fn create(&self, req: &SoapRequest, caller: &Caller) -> Reply {
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Shell")
            .ok_or_else(Fault::schema_validation)?;
        let codepage = match req.option("WINRS_CODEPAGE") {
            Some(v) => v.trim().parse().map_err(|_| Fault::invalid_parameter())?,
            None => DEFAULT_CODEPAGE,
        };
        let no_profile = req.option_bool("WINRS_NOPROFILE").unwrap_or(false);
        let text = |name: &str| rsp_child(body, name).map(|e| e.text.trim().to_string());
        let input_streams = text("InputStreams").unwrap_or_else(|| "stdin".to_string());
        let output_streams = text("OutputStreams")
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "stdout stderr".to_string());
        let working_directory = text("WorkingDirectory").filter(|s| !s.is_empty());
        let idle = text("IdleTimeOut")
            .and_then(|t| soap::parse_duration(&t))
            .unwrap_or(DEFAULT_IDLE);
        let environment: Vec<(String, String)> = rsp_child(body, "Environment")
            .map(|env| {
                env.children_named(NS_RSP, "Variable")
                    .map(|v| {
                        (
                            v.attr("Name").unwrap_or_default().to_string(),
                            v.text.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();

        let id = new_guid();
        {
            let mut shells = self.shells();
            let open = shells
                .values()
                .filter(|s| s.owner.eq_ignore_ascii_case(&caller.account))
                .count();
            if open >= self.config.max_shells_per_user as usize {
                return Err(Fault::quota_max_shells(self.config.max_shells_per_user));
            }
            shells.insert(
                id.clone(),
                Arc::new(Shell {
                    owner: caller.account.clone(),
                    codepage,
                    no_profile,
                    environment: environment.clone(),
                    working_directory: working_directory.clone(),
                    commands: Mutex::new(HashMap::new()),
                }),
            );
        }
        self.state.shell_created();

        let address = req.to.clone().unwrap_or_else(|| caller.endpoint.clone());
        let mut shell = format!(
            "<rsp:Shell xmlns:rsp=\"{NS_RSP}\"><rsp:ShellId>{id}</rsp:ShellId>\
             <rsp:ResourceUri>{RESOURCE_CMD}</rsp:ResourceUri><rsp:Owner>{}</rsp:Owner>\
             <rsp:ClientIP>{}</rsp:ClientIP>",
            escape_text(&self.config.owner()),
            escape_text(&caller.client_ip)
        );
        if !environment.is_empty() {
            shell.push_str("<rsp:Environment>");
            for (k, v) in &environment {
                shell.push_str(&format!(
                    "<rsp:Variable Name=\"{}\">{}</rsp:Variable>",
                    escape_attr(k),
                    // Windows echoes quotes in the value as &quot; too.
                    escape_attr(v)
                ));
            }
            shell.push_str("</rsp:Environment>");
        }
        if let Some(wd) = &working_directory {
            shell.push_str(&format!(
                "<rsp:WorkingDirectory>{}</rsp:WorkingDirectory>",
                escape_text(wd)
            ));
        }
        shell.push_str(&format!(
            "<rsp:IdleTimeOut>{}</rsp:IdleTimeOut><rsp:InputStreams>{}</rsp:InputStreams>\
             <rsp:OutputStreams>{}</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>\
             <rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>",
            soap::format_idle_timeout(idle),
            escape_text(&input_streams),
            escape_text(&output_streams)
        ));
        let body = format!(
            "<x:ResourceCreated><a:Address>{}</a:Address><a:ReferenceParameters>\
             <w:ResourceURI>{RESOURCE_CMD}</w:ResourceURI><w:SelectorSet>\
             <w:Selector Name=\"ShellId\">{id}</w:Selector></w:SelectorSet>\
             </a:ReferenceParameters></x:ResourceCreated>{shell}",
            escape_text(&address)
        );
        Ok(envelope(
            NsSet::Shell,
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
            req.message_id.as_deref(),
            &body,
        ))
    }

    fn command(&self, req: &SoapRequest, caller: &Caller) -> Reply {
        let shell = self.shell(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "CommandLine")
            .ok_or_else(Fault::schema_validation)?;
        let command = rsp_child(body, "Command")
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default();
        let arguments: Vec<String> = body
            .children_named(NS_RSP, "Arguments")
            .map(|a| a.text.clone())
            .collect();
        let request = ProcessRequest {
            command,
            arguments,
            codepage: shell.codepage,
            environment: shell.environment.clone(),
            working_directory: shell.working_directory.clone(),
            user: caller.account.clone(),
            skip_cmd_shell: req.option_bool("WINRS_SKIP_CMD_SHELL").unwrap_or(false),
            no_profile: shell.no_profile,
        };
        let process = self
            .executor
            .start(request)
            .map_err(|e| Fault::process_start(e.code, &e.message))?;
        // A client may choose the id (PSRP does); WinRS clients let the host pick.
        let id = body
            .attr("CommandId")
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_else(new_guid);
        shell.commands().insert(
            id.clone(),
            Arc::new(Command {
                process,
                receive: tokio::sync::Mutex::new(ReceiveState::default()),
                terminated: AtomicBool::new(false),
            }),
        );
        self.state.command();
        Ok(envelope(
            NsSet::Shell,
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse",
            req.message_id.as_deref(),
            &format!(
                "<rsp:CommandResponse><rsp:CommandId>{id}</rsp:CommandId></rsp:CommandResponse>"
            ),
        ))
    }

    fn find_command(shell: &Shell, id: Option<&str>) -> Result<Arc<Command>, Fault> {
        let id = id.ok_or_else(Fault::invalid_parameter)?;
        shell
            .commands()
            .get(&id.to_ascii_uppercase())
            .cloned()
            .ok_or_else(Fault::unknown_command)
    }

    fn send(&self, req: &SoapRequest) -> Reply {
        let shell = self.shell(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Send")
            .ok_or_else(Fault::schema_validation)?;
        for stream in body.children_named(NS_RSP, "Stream") {
            let command = Self::find_command(&shell, stream.attr("CommandId"))?;
            let data: String = stream.text.split_whitespace().collect();
            let data = B64.decode(data).map_err(|_| Fault::invalid_parameter())?;
            let end = stream
                .attr("End")
                .is_some_and(|e| e.eq_ignore_ascii_case("true") || e == "1");
            // Stdin after the process exited goes nowhere, as with a closed pipe.
            let _ = command.process.send_stdin(Bytes::from(data), end);
        }
        Ok(envelope(
            NsSet::Shell,
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse",
            req.message_id.as_deref(),
            "<rsp:SendResponse/>",
        ))
    }

    async fn receive(&self, req: &SoapRequest) -> Reply {
        let shell = self.shell(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Receive")
            .ok_or_else(Fault::schema_validation)?;
        let desired = rsp_child(body, "DesiredStream").ok_or_else(Fault::invalid_parameter)?;
        // The cmd shell has no shell-level streams: a Receive without CommandId is
        // ERROR_INVALID_PARAMETER (test_winrs_fail_poll_process.yml).
        let command_id = desired
            .attr("CommandId")
            .ok_or_else(Fault::invalid_parameter)?
            .to_ascii_uppercase();
        let command = Self::find_command(&shell, Some(&command_id))?;
        let streams: Vec<String> = desired
            .text
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let wants = |name: &str| streams.is_empty() || streams.iter().any(|s| s == name);

        let timeout = req
            .operation_timeout
            .unwrap_or(Duration::from_millis(u64::from(self.config.max_timeout_ms)))
            .min(Duration::from_millis(u64::from(self.config.max_timeout_ms)));
        let deadline = Instant::now() + timeout;
        let envelope_limit = req
            .max_envelope_size
            .map(|n| n as usize)
            .unwrap_or(usize::MAX)
            .min(self.config.max_envelope_bytes());
        let mut room = envelope_limit.saturating_sub(ENVELOPE_OVERHEAD).max(1024);

        // One Receive at a time per command; a second one waits for the first.
        let mut rs = match tokio::time::timeout_at(deadline, command.receive.lock()).await {
            Ok(guard) => guard,
            Err(_) => return Err(Fault::timed_out()),
        };
        let mut items: Vec<(&'static str, Bytes)> = Vec::new();
        let mut first_at: Option<Instant> = None;
        while rs.exit.is_none() {
            let event = if let Some(p) = rs.pending.take() {
                Some(p)
            } else {
                let wait_until = match first_at {
                    None => deadline,
                    Some(t) => (Instant::now() + COALESCE).min(t + COALESCE_MAX),
                };
                match tokio::time::timeout_at(wait_until, command.process.next_event()).await {
                    Ok(ev) => ev,
                    Err(_) if first_at.is_none() => return Err(Fault::timed_out()),
                    Err(_) => break,
                }
            };
            let (name, data) = match event {
                None if command.terminated.load(Ordering::SeqCst) => {
                    return Err(Fault::unknown_command());
                }
                // The process vanished without an exit code: report a failure code.
                None => {
                    rs.exit = Some(1);
                    break;
                }
                Some(ProcessEvent::Exit(code)) => {
                    rs.exit = Some(code);
                    break;
                }
                Some(ProcessEvent::Stdout(d)) => ("stdout", d),
                Some(ProcessEvent::Stderr(d)) => ("stderr", d),
            };
            first_at.get_or_insert_with(Instant::now);
            if !wants(name) {
                continue;
            }
            // Fit as much as the envelope allows; keep the rest for the next Receive.
            let max_raw = room.saturating_sub(STREAM_OVERHEAD) / 4 * 3;
            if max_raw == 0 {
                rs.pending = Some(restore(name, data));
                break;
            }
            if data.len() > max_raw {
                let (now, later) = (data.slice(..max_raw), data.slice(max_raw..));
                items.push((name, now));
                rs.pending = Some(restore(name, later));
                break;
            }
            room = room.saturating_sub(STREAM_OVERHEAD + data.len().div_ceil(3) * 4);
            items.push((name, data));
        }

        let mut out = String::from("<rsp:ReceiveResponse>");
        for (name, data) in &items {
            out.push_str(&format!(
                "<rsp:Stream Name=\"{name}\" CommandId=\"{command_id}\">{}</rsp:Stream>",
                B64.encode(data)
            ));
        }
        let state = match rs.exit {
            Some(code) if rs.pending.is_none() => {
                for name in ["stdout", "stderr"].into_iter().filter(|n| wants(n)) {
                    out.push_str(&format!(
                        "<rsp:Stream Name=\"{name}\" CommandId=\"{command_id}\" End=\"true\"></rsp:Stream>"
                    ));
                }
                format!(
                    "<rsp:CommandState CommandId=\"{command_id}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done\"><rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>"
                )
            }
            _ => format!(
                "<rsp:CommandState CommandId=\"{command_id}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running\"></rsp:CommandState>"
            ),
        };
        out.push_str(&state);
        out.push_str("</rsp:ReceiveResponse>");
        Ok(envelope(
            NsSet::Receive,
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse",
            req.message_id.as_deref(),
            &out,
        ))
    }

    fn signal(&self, req: &SoapRequest) -> Reply {
        let shell = self.shell(req)?;
        let body = req
            .body
            .as_ref()
            .filter(|b| b.ns == NS_RSP && b.name == "Signal")
            .ok_or_else(Fault::schema_validation)?;
        let id = body
            .attr("CommandId")
            .ok_or_else(Fault::invalid_parameter)?
            .to_ascii_uppercase();
        let code = rsp_child(body, "Code")
            .map(|c| c.text.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let known = [
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break",
            "powershell/signal/ctrl_c",
        ];
        if !known.contains(&code.as_str()) {
            return Err(Fault::invalid_parameter());
        }
        let command = shell
            .commands()
            .remove(&id)
            .ok_or_else(Fault::unknown_command)?;
        command.terminated.store(true, Ordering::SeqCst);
        command.process.kill();
        Ok(envelope(
            NsSet::Shell,
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse",
            req.message_id.as_deref(),
            "<rsp:SignalResponse/>",
        ))
    }

    fn delete(&self, req: &SoapRequest) -> Reply {
        let id = req
            .selector("ShellId")
            .unwrap_or_default()
            .to_ascii_uppercase();
        let shell = self
            .shells()
            .remove(&id)
            .ok_or_else(|| Fault::unknown_shell(req.selector("ShellId").unwrap_or_default()))?;
        for (_, command) in shell.commands().drain() {
            command.terminated.store(true, Ordering::SeqCst);
            command.process.kill();
        }
        self.state.shell_closed();
        Ok(envelope(
            NsSet::Delete,
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse",
            req.message_id.as_deref(),
            "",
        ))
    }

    fn get_config(&self, req: &SoapRequest) -> String {
        let c = &self.config;
        let basic = c.auth.contains(&crate::config::AuthScheme::Basic);
        let negotiate = c.auth.contains(&crate::config::AuthScheme::Ntlm)
            || c.auth.contains(&crate::config::AuthScheme::Kerberos);
        let cbt = if c.cbt_strict { "Strict" } else { "Relaxed" };
        let body = format!(
            "<cfg:Config xmlns:cfg=\"{NS_CFG}\"><cfg:MaxEnvelopeSizekb>{}</cfg:MaxEnvelopeSizekb>\
<cfg:MaxTimeoutms>{}</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>\
<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests><cfg:Client>\
<cfg:NetworkDelayms>5000</cfg:NetworkDelayms><cfg:URLPrefix>wsman</cfg:URLPrefix>\
<cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic>\
<cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>\
<cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP></cfg:Auth>\
<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>\
<cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client><cfg:Service>\
<cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)</cfg:RootSDDL>\
<cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations>\
<cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser>\
<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>\
<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds>\
<cfg:AllowUnencrypted>{}</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>{basic}</cfg:Basic>\
<cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>{negotiate}</cfg:Negotiate>\
<cfg:Certificate>false</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP>\
<cfg:CbtHardeningLevel>{cbt}</cfg:CbtHardeningLevel></cfg:Auth><cfg:DefaultPorts>\
<cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>\
<cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter>\
<cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener>\
<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener>\
<cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess></cfg:Service><cfg:Winrs>\
<cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess><cfg:IdleTimeout>7200000</cfg:IdleTimeout>\
<cfg:MaxConcurrentUsers>10</cfg:MaxConcurrentUsers><cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime>\
<cfg:MaxProcessesPerShell>25</cfg:MaxProcessesPerShell><cfg:MaxMemoryPerShellMB>150</cfg:MaxMemoryPerShellMB>\
<cfg:MaxShellsPerUser>{}</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>",
            c.max_envelope_size_kb, c.max_timeout_ms, c.allow_unencrypted, c.max_shells_per_user,
        );
        envelope(
            NsSet::Transfer,
            "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse",
            req.message_id.as_deref(),
            &body,
        )
    }

    /// Makes a shell vanish as after its idle timeout or a restart of the WinRM service:
    /// its commands are killed and its id is unknown from now on (fault injection).
    pub(crate) fn forget_shell(&self, id: &str) -> bool {
        let Some(shell) = self.shells().remove(&id.to_ascii_uppercase()) else {
            return false;
        };
        for (_, command) in shell.commands().drain() {
            command.terminated.store(true, Ordering::SeqCst);
            command.process.kill();
        }
        self.state.shell_closed();
        true
    }

    /// How many shells are open (for tests and the state document).
    pub fn open_shells(&self) -> usize {
        self.shells().len()
    }
}

fn restore(name: &str, data: Bytes) -> ProcessEvent {
    if name == "stdout" {
        ProcessEvent::Stdout(data)
    } else {
        ProcessEvent::Stderr(data)
    }
}
