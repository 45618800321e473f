//! The binding between the PowerShell interpreter (`exctl_pwsh_interp`) and the Exchange
//! model: [`SimHost`] is the [`Host`] of one simulated `powershell.exe` process.
//!
//! - Commands: every cmdlet of the model's tables for the organization's release
//!   ([`cmdlets::cmdlet_specs`]) is declared as a [`CommandInfo`] with its parameters'
//!   names, types, mandatory flags, positions and pipeline binding, so the interpreter
//!   binds arguments (and reports binding errors) the PowerShell way. Windows
//!   PowerShell's own cmdlets (registry, services, event log, `Test-Path`, `Get-Item`,
//!   `New-Item`, `Add-PSSnapin`) always exist; the Exchange ones only after
//!   `Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010` in the same process,
//!   before which they are unknown commands, as on a plain Windows host.
//! - Values: interpreter [`Value`]s become [`SimValue`]s for the model (an object given
//!   to an identity parameter becomes its identity text, an object given to `-Instance`
//!   is passed whole), and the model's [`SimObject`]s become property bags with the
//!   model's type names, so scripts read `$o.MaxConnectionsPerUser`, `@($x).Count`.
//! - Errors: an [`ExchangeError`] becomes an [`ErrorRecord`] with its message, category,
//!   exception type, FullyQualifiedErrorId and target. Binding failures are terminating
//!   (as PowerShell's ParameterBindingException is); everything else the model refuses is
//!   written as a non-terminating error, as Exchange tasks and the providers do, so
//!   `-ErrorAction` and `$ErrorActionPreference` decide what happens next.
//! - Logon: a process started through WinRM without delegation cannot authenticate to a
//!   domain controller (the double hop, [`HostOptions::double_hop`]): the snap-in loads,
//!   and every Exchange cmdlet run through it fails on Active Directory with the
//!   `ADInvalidCredentialException` a real server gives ([`double_hop_error`]). Windows'
//!   own cmdlets (registry, services, WMI, event log) work; so do the cmdlets of an
//!   imported Exchange session, which run in Exchange's endpoint under the session's own
//!   explicit credential.
//! - RBAC: an imported Exchange session (and Exchange's endpoint itself) holds only the
//!   cmdlets of the account's management roles ([`HostOptions::role`]); an account
//!   without any cannot open one. Roles apply where Exchange applies them, when it builds a
//!   remote session; the snap-in in a local process is not restricted by them.
//! - Time: `Get-Date`, `Start-Sleep` and the waits of `Restart-Service` (the model's
//!   `wait_until`) run on the model's clock, so `--time-scale` shortens them all alike.
//!   The organization's lock is never held while waiting.
//! - Methods the scripts call on host objects: a registry key's `GetValueKind`,
//!   `GetValue` (with `DoNotExpandEnvironmentNames`), `GetValueNames`, `ToString`; a
//!   service's `Refresh`, `WaitForStatus`, `Start`, `Stop`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use exctl_pwsh_interp::{
    ArgumentError, Call, CommandInfo, ErrorCategory as PsCategory, ErrorRecord, Host,
    ParamType as PsType, ParameterInfo, PsObject, StopSignal, Value,
};

use crate::config::ExchangeRole;
use crate::exchange::cmdlets::{self, CmdletSpec, EXCHANGE_SNAPIN, Module, ParamType, Pipeline};
use crate::exchange::registry::{self, KEY_TYPE_NAMES};
use crate::exchange::{ClockRef, ExchangeError, OrgHandle, SimObject, SimTime, SimValue};

/// How the simulated host behaves beyond the model.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// How long `Add-PSSnapin Microsoft.Exchange.Management.PowerShell.E2010` takes (real
    /// time), to model the seconds a real server spends loading the snap-in (and opening
    /// a remote Exchange session).
    pub snapin_delay: Duration,
    /// The account the Exchange remote PowerShell endpoint accepts (the simulator's).
    pub account: Option<Account>,
    /// The process's logon holds no credential a domain controller would accept: a
    /// WinRS or PSRP logon on `/wsman` by NTLM, Kerberos without delegation, or Basic,
    /// on a host not set up for CredSSP or delegation. Off for a host process of its own
    /// (a console logon), as tests that build a [`SimHost`] directly model.
    pub double_hop: bool,
    /// The account's Exchange management roles, for Exchange's endpoint and the sessions
    /// imported from it.
    pub role: ExchangeRole,
}

/// An account with its password (never shown by `Debug`).
#[derive(Clone, Default)]
pub struct Account {
    /// `DOMAIN\NAME`.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The DNS domain of the host (`contoso.local`), for `NAME@domain` and FQDNs.
    pub dns_domain: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .finish()
    }
}

/// The configuration name of Exchange's remote PowerShell endpoint.
pub const EXCHANGE_CONFIGURATION: &str = "Microsoft.Exchange";

/// The `DateTime` ticks of 1970-01-01T00:00:00.
fn epoch_ticks() -> i64 {
    exctl_pwsh_interp::convert::datetime_ticks(1970, 1, 1, 0, 0, 0)
}

/// A simulated time as `DateTime` ticks (the host runs in UTC).
pub fn ticks_of(t: SimTime) -> i64 {
    epoch_ticks().saturating_add(i64::try_from(t.0).unwrap_or(i64::MAX / 20_000) * 10_000)
}

/// `DateTime` ticks as a simulated time (clamped to 1970 and later).
pub fn time_of_ticks(ticks: i64) -> SimTime {
    SimTime(u64::try_from(ticks.saturating_sub(epoch_ticks()) / 10_000).unwrap_or(0))
}

/// The PowerShell process's host: the commands, the organization, the clock.
pub struct SimHost {
    org: OrgHandle,
    clock: ClockRef,
    core: HashMap<String, Arc<CommandInfo>>,
    exchange: HashMap<String, Arc<CommandInfo>>,
    snapin_loaded: bool,
    /// `Import-PSSession` of an Exchange session: its commands are available, and what
    /// they return arrives deserialized.
    session_imported: bool,
    /// The SecureStrings this process made, with their text (the host keeps it; the
    /// object shows only its Length, as a real SecureString does).
    secure: Vec<(PsObject, String)>,
    /// The PSSessions opened by this process.
    sessions: Vec<PsObject>,
    options: HostOptions,
    env: Vec<(String, String)>,
    stop: StopSignal,
    /// The client's host, when the process is a PowerShell remoting runspace whose
    /// client has a user interface: `Read-Host` asks it.
    remote_ui: Option<Arc<dyn RemoteUi>>,
}

/// The user interface of a remoting client, as the server's host reaches it: `Read-Host
/// -Prompt TEXT` becomes a Prompt host call with one field named TEXT (PowerShell's
/// ReadHostCommand asks `Host.UI.Prompt` when a prompt is given), answered by the client.
pub trait RemoteUi: Send + Sync {
    /// The client's answer for the field `field`, or why it gave none (the message of
    /// the client's error).
    fn prompt(&self, field: &str, stop: &StopSignal) -> Result<String, String>;
}

/// What `Read-Host` says in a PowerShell without an interactive user interface:
/// powershell.exe started with `-NonInteractive` (as WinRS commands are), verbatim from
/// PowerShell 2.0.
const NON_INTERACTIVE: &str =
    "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.";

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost")
            .field("snapin_loaded", &self.snapin_loaded)
            .finish_non_exhaustive()
    }
}

/// The snap-ins PowerShell 2.0 loads into every process (`Get-PSSnapin` on a fresh
/// Windows Server 2008 R2 console).
const CORE_SNAPINS: &[&str] = &[
    "Microsoft.PowerShell.Diagnostics",
    "Microsoft.WSMan.Management",
    "Microsoft.PowerShell.Core",
    "Microsoft.PowerShell.Utility",
    "Microsoft.PowerShell.Host",
    "Microsoft.PowerShell.Management",
    "Microsoft.PowerShell.Security",
];

/// Aliases Windows PowerShell 2.0 defines for the host's cmdlets.
const ALIASES: &[(&str, &str)] = &[
    ("gi", "Get-Item"),
    ("gp", "Get-ItemProperty"),
    ("sp", "Set-ItemProperty"),
    ("ni", "New-Item"),
    ("rp", "Remove-ItemProperty"),
    ("gsv", "Get-Service"),
    ("sasv", "Start-Service"),
    ("spsv", "Stop-Service"),
    ("asnp", "Add-PSSnapin"),
    ("gsnp", "Get-PSSnapin"),
    ("gwmi", "Get-WmiObject"),
    ("gps", "Get-Process"),
    ("ps", "Get-Process"),
];

fn param_type(ty: ParamType) -> PsType {
    match ty {
        ParamType::String | ParamType::Fqdn => PsType::String,
        ParamType::StringArray => PsType::Array(Box::new(PsType::String)),
        ParamType::Int32 => PsType::Int,
        ParamType::Int64Array => PsType::Array(Box::new(PsType::Long)),
        ParamType::NullableUInt32 => PsType::Nullable(Box::new(PsType::UInt32)),
        ParamType::Boolean => PsType::Bool,
        ParamType::Switch => PsType::Switch,
        ParamType::DateTime => PsType::DateTime,
        // Exchange's own types (identities, Unlimited, sizes, spans, enums, lists) take
        // what the script gives; the model converts and validates with Exchange's texts.
        ParamType::EnhancedTimeSpan
        | ParamType::ByteQuantifiedSize
        | ParamType::Unlimited
        | ParamType::MultiValued
        | ParamType::Enum
        | ParamType::Identity(_)
        | ParamType::Object => PsType::Any,
    }
}

/// The declaration of one cmdlet of the tables.
pub fn command_info(spec: &CmdletSpec) -> CommandInfo {
    let mut info = CommandInfo::new(spec.name, spec.class.clone());
    for p in &spec.params {
        if p.name == "WhatIf" || p.name == "Confirm" {
            // Declared by the interpreter with ShouldProcess, passed on when bound.
            info = info.should_process();
            continue;
        }
        let mut pi = ParameterInfo::new(p.name, param_type(p.ty));
        if p.mandatory {
            pi = pi.mandatory();
        }
        if let Some(position) = p.position {
            pi = pi.position(u32::from(position));
        }
        pi = match p.pipeline {
            Pipeline::No => pi,
            Pipeline::ByValue => pi.from_pipeline(),
            Pipeline::ByPropertyName => pi.from_pipeline_by_property_name(),
            Pipeline::ByValueAndPropertyName => pi.from_pipeline().from_pipeline_by_property_name(),
        };
        // The providers' -Path takes a piped item's PSPath (`Get-Item x | Get-ItemProperty`).
        if p.name == "Path" && spec.module == Module::Core {
            pi = pi.alias("PSPath");
        }
        info = info.param(pi);
    }
    info
}

/// The text an object stands for when given to an identity parameter: its display
/// string, else its `Identity`, `DistinguishedName` or `Name`.
fn identity_text(o: &PsObject) -> String {
    if let Some(d) = o.display() {
        return d.to_string();
    }
    for name in ["Identity", "DistinguishedName", "Name"] {
        if let Some(v) = o.get(name)
            && !v.is_null()
        {
            return v.to_text();
        }
    }
    Value::Object(o.clone()).to_text()
}

/// An interpreter value as the model takes it.
pub fn to_sim(v: &Value) -> SimValue {
    to_sim_depth(v, 0)
}

fn to_sim_depth(v: &Value, depth: usize) -> SimValue {
    match v {
        Value::Null => SimValue::Null,
        Value::Bool(b) => SimValue::Bool(*b),
        Value::Int(i) => SimValue::Int(*i),
        Value::Long(l) => SimValue::Long(*l),
        Value::String(s) => SimValue::String(s.to_string()),
        Value::Char(c) => SimValue::String(c.to_string()),
        Value::DateTime(t) => SimValue::DateTime(time_of_ticks(*t)),
        Value::Array(items) if depth < 8 => SimValue::List(
            items
                .iter()
                .map(|item| to_sim_depth(item, depth + 1))
                .collect(),
        ),
        Value::Bytes(b) => SimValue::List(b.iter().map(|x| SimValue::Int(i32::from(*x))).collect()),
        Value::Object(o) => SimValue::String(identity_text(o)),
        // Doubles, time spans and the rest reach Exchange as their text, which its
        // parameter types parse (`'00:10:00'`, `1.5`).
        other => SimValue::String(other.to_text()),
    }
}

/// A model value as the interpreter sees it.
pub fn from_sim(v: &SimValue) -> Value {
    match v {
        SimValue::Null => Value::Null,
        SimValue::Bool(b) => Value::Bool(*b),
        SimValue::Int(i) => Value::Int(*i),
        SimValue::UInt(u) => Value::Long(i64::from(*u)),
        SimValue::Long(l) => Value::Long(*l),
        SimValue::String(s) => Value::from(s.as_str()),
        SimValue::DateTime(t) => Value::DateTime(ticks_of(*t)),
        SimValue::List(items) => Value::from(items.iter().map(from_sim).collect::<Vec<_>>()),
    }
}

/// A model object as a property bag with its type names.
pub fn object_from_sim(o: &SimObject) -> PsObject {
    let obj = PsObject::new(o.type_names.iter().cloned());
    for (name, value) in &o.properties {
        obj.set(name, from_sim(value));
    }
    obj
}

/// An object as implicit remoting hands it over: the same properties, the type names
/// prefixed with `Deserialized.` (and no methods: the host knows none for those types).
/// The model's objects mostly carry the prefix already (they were modelled on CLIXML),
/// so it is added where it is missing.
fn deserialized(o: &PsObject) -> PsObject {
    let copy = PsObject::new(o.type_names().iter().map(|t| {
        if t.starts_with("Deserialized.") {
            t.clone()
        } else {
            format!("Deserialized.{t}")
        }
    }));
    for (n, v) in o.properties().iter() {
        copy.set(n, v.clone());
    }
    copy
}

/// A script's object back as a model object (`-Instance`, pipeline input).
pub fn object_to_sim(o: &PsObject) -> SimObject {
    SimObject {
        type_names: o
            .type_names()
            .iter()
            .map(|t| t.strip_prefix("Deserialized.").unwrap_or(t).to_string())
            .collect(),
        properties: o
            .properties()
            .iter()
            .map(|(n, v)| (n.clone(), to_sim(v)))
            .collect(),
    }
}

/// The full .NET name of an exception the model names by its short name.
fn exception_type(reason: &str) -> String {
    let ns = match reason {
        "ParameterBindingException"
        | "ParameterBindingArgumentTransformationException"
        | "ParameterBindingValidationException"
        | "ItemNotFoundException"
        | "PSArgumentException"
        | "CommandNotFoundException"
        | "RuntimeException"
        | "PSInvalidOperationException" => "System.Management.Automation",
        "ServiceCommandException" => "Microsoft.PowerShell.Commands",
        "IOException" => "System.IO",
        "ArgumentException" | "InvalidOperationException" | "UnauthorizedAccessException" => {
            "System"
        }
        "DataValidationException" => "Microsoft.Exchange.Data",
        r if r.starts_with("Management") || r.starts_with("Task") => {
            "Microsoft.Exchange.Configuration.Tasks"
        }
        _ => "Microsoft.Exchange.Data",
    };
    format!("{ns}.{reason}")
}

/// The error record of a model error raised by `cmdlet`.
pub fn record_of(e: &ExchangeError, cmdlet: &str) -> ErrorRecord {
    let category = PsCategory::from_name(e.category.as_str()).unwrap_or_default();
    let mut record = ErrorRecord::new(
        e.message.clone(),
        exception_type(&e.reason),
        category,
        e.fully_qualified_error_id.clone(),
    );
    if !e.target.is_empty() {
        record = record.with_target(Value::from(e.target.as_str()));
    }
    if e.reason != "CommandNotFoundException" {
        record.command_name = Some(cmdlet.to_string());
    }
    record
}

/// Whether PowerShell reports this error as terminating (binding failures are thrown
/// before the cmdlet runs; everything else cmdlets write).
fn is_terminating(e: &ExchangeError) -> bool {
    e.reason.starts_with("ParameterBinding") || e.reason == "CommandNotFoundException"
}

/// The error of an Exchange cmdlet run through the snap-in by a process whose logon
/// cannot reach a domain controller (the double hop): Exchange's directory session
/// cannot bind, and its `ADInvalidCredentialException` ends the command.
///
/// The text and category are those a real Exchange server printed for `Get-ExchangeServer`
/// in a session whose logon held no credential (PowerShell/Win32-OpenSSH#1881: "Active
/// Directory operation failed on . The supplied credential for 'DOMAIN\Administrator' is
/// invalid.", `NotSpecified: (:) [], ADInvalidCredentialException`): a WinRM network
/// logon without CredSSP or delegation is the same case, a token without a password or
/// a forwardable ticket to present to the DC. The recording cuts off the
/// FullyQualifiedErrorId; this one is reconstructed on the pattern Exchange 2010 uses for
/// an exception escaping a task (`System.ArgumentNullException,Microsoft.Exchange.
/// Management.RecipientTasks.GetMailbox`, PowerShell/Win32-OpenSSH#1115). The exception
/// class and its bases are Exchange's (`Microsoft.Exchange.Data.Directory`).
pub fn double_hop_error(account: &str, class: &str) -> ErrorRecord {
    let exception = "Microsoft.Exchange.Data.Directory.ADInvalidCredentialException";
    let mut record = ErrorRecord::new(
        format!(
            "Active Directory operation failed on . The supplied credential for '{account}' is invalid."
        ),
        exception,
        PsCategory::NotSpecified,
        format!("{exception},{class}"),
    );
    record.exception_bases = vec![
        "Microsoft.Exchange.Data.Directory.ADOperationException".into(),
        "Microsoft.Exchange.Data.DataSourceOperationException".into(),
        "Microsoft.Exchange.Data.LocalizedException".into(),
        "System.Exception".into(),
    ];
    record
}

/// The user as Exchange names it in RBAC errors: its canonical name
/// (`contoso.local/Users/Administrator`, KB 3058293 shows `<domain>/Users/Administrator`).
fn canonical_user(account: &Account) -> String {
    let name = account
        .user
        .rsplit_once('\\')
        .map_or(account.user.as_str(), |(_, n)| n);
    format!("{}/Users/{name}", account.dns_domain)
}

/// Exchange's refusal of a remote session to an account without any management role.
/// Its text is Exchange's, as KB 3058293 quotes it ("The user "<domain>/Users/
/// Administrator" isn't assigned to any management roles."); Exchange raises it while
/// the session is being set up, so the client sees it as a failure in processing the
/// remote server's data, not in connecting.
pub fn no_management_role_message(account: Option<&Account>) -> String {
    let user = account.map(canonical_user).unwrap_or_default();
    format!("The user \"{user}\" isn't assigned to any management roles.")
}

/// "Exception calling "X" with "N" argument(s): "message"".
fn method_error(name: &str, count: usize, message: &str) -> ErrorRecord {
    let mut record = ErrorRecord::new(
        format!("Exception calling \"{name}\" with \"{count}\" argument(s): \"{message}\""),
        "System.Management.Automation.MethodInvocationException",
        PsCategory::NotSpecified,
        "DotNetMethodException",
    );
    record.exception_bases = vec![
        "System.Management.Automation.MethodException".into(),
        "System.Management.Automation.RuntimeException".into(),
    ];
    record
}

/// Sleeps `duration` of real time in slices, checking `stop`; false when stopped.
fn sleep_real(duration: Duration, stop: &StopSignal) -> bool {
    let deadline = std::time::Instant::now() + duration;
    loop {
        if stop.is_stopped() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

impl SimHost {
    /// The host of one process: `environment` is the WinRS shell's variables.
    pub fn new(org: OrgHandle, options: HostOptions, environment: &[(String, String)]) -> Self {
        let (sp, clock, host, domain, netbios) = {
            let o = org.lock();
            (
                o.sp,
                o.clock().clone(),
                o.host.clone(),
                o.domain.clone(),
                o.netbios.clone(),
            )
        };
        let mut core = HashMap::new();
        let mut exchange = HashMap::new();
        for spec in cmdlets::cmdlet_specs(sp) {
            let info = Arc::new(command_info(&spec));
            let table = match spec.module {
                Module::Core => &mut core,
                Module::Exchange => &mut exchange,
            };
            table.insert(spec.name.to_ascii_lowercase(), info);
        }
        let mut env: Vec<(String, String)> = [
            ("COMPUTERNAME", host.clone()),
            ("USERDOMAIN", netbios),
            ("USERDNSDOMAIN", domain.to_ascii_uppercase()),
            ("SystemRoot", "C:\\Windows".to_string()),
            ("windir", "C:\\Windows".to_string()),
            ("SystemDrive", "C:".to_string()),
            ("ProgramFiles", "C:\\Program Files".to_string()),
            ("TEMP", "C:\\Windows\\TEMP".to_string()),
            ("TMP", "C:\\Windows\\TEMP".to_string()),
            ("OS", "Windows_NT".to_string()),
            ("PROCESSOR_ARCHITECTURE", "AMD64".to_string()),
            (
                "ExchangeInstallPath",
                "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\".to_string(),
            ),
            (
                "PSModulePath",
                "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules\\".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in environment {
            env.retain(|(ek, _)| !ek.eq_ignore_ascii_case(k));
            env.push((k.clone(), v.clone()));
        }
        SimHost {
            org,
            clock,
            core,
            exchange,
            snapin_loaded: false,
            session_imported: false,
            secure: Vec::new(),
            sessions: Vec::new(),
            options,
            env,
            stop: StopSignal::new(),
            remote_ui: None,
        }
    }

    /// Makes `ui` the client's user interface that `Read-Host` asks (a remoting
    /// pipeline whose client declared one); `None` for a host without one.
    pub fn set_remote_ui(&mut self, ui: Option<Arc<dyn RemoteUi>>) {
        self.remote_ui = ui;
    }

    /// `Read-Host [-Prompt] TEXT`: asks the client's host through a Prompt host call, or
    /// fails as a host without an interactive user interface does.
    #[allow(clippy::result_large_err)]
    fn read_host(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        let prompt = call
            .args
            .get("Prompt")
            .map(Value::to_text)
            .unwrap_or_default();
        let Some(ui) = self.remote_ui.clone() else {
            return Err(ErrorRecord::new(
                NON_INTERACTIVE,
                "System.Management.Automation.PSInvalidOperationException",
                PsCategory::InvalidOperation,
                "ReadHostCommand",
            )
            .with_command("Read-Host"));
        };
        match ui.prompt(&prompt, call.stop_signal()) {
            Ok(answer) => {
                call.write_output(Value::from(answer));
                Ok(())
            }
            Err(message) => Err(ErrorRecord::new(
                message,
                "System.Management.Automation.Host.HostException",
                PsCategory::NotImplemented,
                "HostFunctionNotImplemented,Microsoft.PowerShell.Commands.ReadHostCommand",
            )
            .with_command("Read-Host")),
        }
    }

    /// Gives the host the interpreter's stop signal, so that waits inside methods
    /// (`WaitForStatus`) end when the process is stopped.
    pub fn set_stop_signal(&mut self, stop: StopSignal) {
        self.stop = stop;
    }

    /// Makes this the runspace of Exchange's remote PowerShell endpoint: the Exchange
    /// cmdlets exist without the snap-in, and their objects leave it deserialized.
    pub fn serve_exchange_endpoint(&mut self) {
        self.session_imported = true;
    }

    /// Whether `name` is one of the Exchange cmdlets of this release.
    pub fn is_exchange_cmdlet(&self, name: &str) -> bool {
        self.exchange.contains_key(&name.to_ascii_lowercase())
    }

    /// Whether an Exchange remote session of this account holds `name`: an Exchange
    /// cmdlet of this release within the account's management roles.
    pub fn session_has(&self, name: &str) -> bool {
        self.is_exchange_cmdlet(name) && self.options.role.allows(name)
    }

    /// Whether the Exchange snap-in was loaded in this process.
    pub fn snapin_loaded(&self) -> bool {
        self.snapin_loaded
    }

    /// Waits until simulated time `until`, on the model's clock; false when stopped.
    fn wait_until(&self, until: SimTime, stop: &StopSignal) -> bool {
        let now = self.clock.now();
        if until <= now {
            return true;
        }
        sleep_real(self.clock.0.real_duration(until.since(now)), stop)
    }

    /// `Add-PSSnapin`: loading the Exchange snap-in twice in one process is PowerShell's
    /// "already added" error; a successful load takes the configured time.
    #[allow(clippy::result_large_err)]
    fn add_snapin(
        &mut self,
        call: &mut Call<'_>,
        args: &[(String, SimValue)],
    ) -> Result<(), ErrorRecord> {
        let names: Vec<String> = args
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Name"))
            .flat_map(|(_, v)| v.items())
            .map(|v| v.to_text())
            .collect();
        if self.snapin_loaded
            && names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(EXCHANGE_SNAPIN))
        {
            let record = ErrorRecord::new(
                format!(
                    "Cannot add Windows PowerShell snap-in {EXCHANGE_SNAPIN} because it is already added. Verify the name of the snap-in and try again."
                ),
                "System.Management.Automation.PSArgumentException",
                PsCategory::InvalidArgument,
                "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand",
            )
            .with_target(Value::from(EXCHANGE_SNAPIN))
            .with_command("Add-PSSnapin");
            return call.write_error(record);
        }
        let result = {
            let mut org = self.org.lock();
            cmdlets::invoke(&mut org, "Add-PSSnapin", args, &[])
        };
        match result {
            Ok(_) => {
                if !sleep_real(self.options.snapin_delay, call.stop_signal()) {
                    return Ok(());
                }
                self.snapin_loaded = true;
                Ok(())
            }
            Err(e) => self.report(call, &e),
        }
    }

    /// `Get-PSSnapin [-Name PATTERN] [-Registered]`: the snap-ins added to this process
    /// (PowerShell 2.0's own core snap-ins, and Exchange's once added), or with
    /// `-Registered` those installed and not built in. A pattern that matches none is a
    /// non-terminating error, as `Get-PSSnapin` reports it (its resource string
    /// NoPSSnapInsFound: "No Windows PowerShell snap-ins matching the pattern '{0}' were
    /// found. Check the pattern and then try the command again.").
    #[allow(clippy::result_large_err)]
    fn get_snapin(
        &mut self,
        call: &mut Call<'_>,
        args: &[(String, SimValue)],
    ) -> Result<(), ErrorRecord> {
        let registered = args
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("Registered") && v.to_text() != "False");
        let mut present: Vec<&str> = if registered {
            Vec::new()
        } else {
            CORE_SNAPINS.to_vec()
        };
        if registered || self.snapin_loaded {
            present.push(EXCHANGE_SNAPIN);
        }
        if registered {
            present.push("Microsoft.Exchange.Management.PowerShell.Support");
        }
        let patterns: Vec<String> = args
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Name"))
            .flat_map(|(_, v)| v.items())
            .map(|v| v.to_text())
            .collect();
        let matching = |p: &str, n: &str| crate::exchange::glob(p, n);
        let mut shown: Vec<&str> = Vec::new();
        if patterns.is_empty() {
            shown = present.clone();
        }
        for pat in &patterns {
            let hits: Vec<&str> = present
                .iter()
                .copied()
                .filter(|n| matching(pat, n))
                .collect();
            if hits.is_empty() {
                let record = ErrorRecord::new(
                    format!(
                        "No Windows PowerShell snap-ins matching the pattern '{pat}' were found. Check the pattern and then try the command again."
                    ),
                    "System.Management.Automation.PSArgumentException",
                    PsCategory::InvalidArgument,
                    "NoPSSnapInsFound,Microsoft.PowerShell.Commands.GetPSSnapinCommand",
                )
                .with_target(Value::from(pat.as_str()))
                .with_command("Get-PSSnapin");
                call.write_error(record)?;
            }
            for h in hits {
                if !shown.contains(&h) {
                    shown.push(h);
                }
            }
        }
        for name in shown {
            call.write_output(
                PsObject::new(["System.Management.Automation.PSSnapInInfo", "System.Object"])
                    .with("Name", Value::from(name))
                    .with("PSVersion", Value::from("2.0"))
                    .with(
                        "IsDefault",
                        Value::Bool(name.starts_with("Microsoft.PowerShell.")),
                    ),
            );
        }
        Ok(())
    }

    /// `ConvertTo-SecureString TEXT -AsPlainText -Force`.
    #[allow(clippy::result_large_err)]
    fn convert_to_secure_string(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        let switch = |n: &str| call.args.get(n).is_some_and(Value::is_true);
        if !switch("AsPlainText") {
            // Without -AsPlainText the text must be an encrypted standard string.
            return Err(ErrorRecord::new(
                "Input string was not in a correct format.",
                "System.FormatException",
                PsCategory::InvalidArgument,
                "ImportSecureString_InvalidArgument,Microsoft.PowerShell.Commands.ConvertToSecureStringCommand",
            )
            .with_command("ConvertTo-SecureString"));
        }
        if !switch("Force") {
            return Err(ErrorRecord::new(
                "The system cannot protect plain text input. To suppress this warning and convert the plain text to a SecureString, reissue the command specifying the Force parameter. For more information ,type: get-help ConvertTo-SecureString.",
                "System.ArgumentException",
                PsCategory::InvalidArgument,
                "ImportSecureString_InvalidArgument,Microsoft.PowerShell.Commands.ConvertToSecureStringCommand",
            )
            .with_command("ConvertTo-SecureString"));
        }
        let text = call
            .args
            .get("String")
            .map(Value::to_text)
            .unwrap_or_default();
        let secure = PsObject::new(["System.Security.SecureString", "System.Object"]).with(
            "Length",
            Value::Int(i32::try_from(text.chars().count()).unwrap_or(i32::MAX)),
        );
        self.secure.push((secure.clone(), text));
        call.write_output(secure);
        Ok(())
    }

    /// The text of a SecureString this process made.
    fn secure_text(&self, v: Option<&Value>) -> Option<String> {
        let Some(Value::Object(o)) = v else {
            return None;
        };
        self.secure
            .iter()
            .find(|(s, _)| s.same(o))
            .map(|(_, t)| t.clone())
    }

    /// `New-PSSession` to Exchange's remote PowerShell endpoint on this server
    /// (`-ConfigurationName Microsoft.Exchange -ConnectionUri http://SERVER/PowerShell/
    /// -Credential ...`), as a WinRS shell's PowerShell can reach it: only with an explicit
    /// credential (the shell's own NTLM logon cannot be delegated: the double hop), with
    /// Kerberos (the endpoint's only method by default, which needs the server's name,
    /// not an address), and with the account the host accepts.
    #[allow(clippy::result_large_err)]
    fn new_pssession(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        let (host, domain) = {
            let o = self.org.lock();
            (o.host.clone(), o.domain.clone())
        };
        let fail = |detail: &str| {
            ErrorRecord::new(
                format!(
                    "Connecting to remote server failed with the following error message : {detail} For more information, see the about_Remote_Troubleshooting Help topic."
                ),
                "System.Management.Automation.Remoting.PSRemotingTransportException",
                PsCategory::OpenError,
                "PSSessionOpenFailed",
            )
        };
        let text = |n: &str| call.args.get(n).map(Value::to_text).unwrap_or_default();
        let configuration = text("ConfigurationName");
        let uri = text("ConnectionUri");
        let authentication = text("Authentication");
        let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri.as_str()));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let target = authority.split(':').next().unwrap_or_default().to_string();
        let fqdn = format!("{host}.{domain}");
        let record = if uri.is_empty() {
            // -ComputerName: the default WinRM endpoint, not Exchange's.
            Some(fail(
                "The WS-Management service cannot process the request. This resource requires the ConnectionUri of the Exchange server's PowerShell virtual directory (http://SERVER/PowerShell/).",
            ))
        } else if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            Some(fail(&format!(
                "The WinRM client cannot process the request. The URI {uri} is not valid."
            )))
        } else if !target.eq_ignore_ascii_case(&host) && !target.eq_ignore_ascii_case(&fqdn) {
            Some(fail(&format!(
                "WinRM cannot process the request. The following error occured while using Kerberos authentication: Cannot find the computer {target}. Verify that the computer exists on the network and that the name provided is spelled correctly."
            )))
        } else if !path
            .trim_end_matches('/')
            .eq_ignore_ascii_case("PowerShell")
        {
            Some(fail(
                "The WinRM client received an HTTP status code of 404 from the remote WS-Management service.",
            ))
        } else if !configuration.eq_ignore_ascii_case(EXCHANGE_CONFIGURATION) {
            Some(fail(&format!(
                "The WS-Management service cannot process the request. Cannot find the {configuration} session configuration in the WSMan: drive on the {host} computer."
            )))
        } else if !authentication.is_empty()
            && !authentication.eq_ignore_ascii_case("Kerberos")
            && !authentication.eq_ignore_ascii_case("Default")
        {
            Some(fail("Access is denied."))
        } else {
            let password = self.secure_text(
                call.args
                    .get("Credential")
                    .and_then(|c| c.as_object())
                    .and_then(|c| c.get("Password"))
                    .as_ref(),
            );
            let user = call
                .args
                .get("Credential")
                .and_then(|c| c.as_object())
                .and_then(|c| c.get("UserName"))
                .map(|u| u.to_text())
                .unwrap_or_default();
            let accepted = self.options.account.as_ref().is_some_and(|a| {
                let (d, n) = a.user.split_once('\\').unwrap_or(("", a.user.as_str()));
                let same_user = user.eq_ignore_ascii_case(&a.user)
                    || user.eq_ignore_ascii_case(&format!("{n}@{}", a.dns_domain))
                    || (user.eq_ignore_ascii_case(n) && !d.is_empty());
                same_user && password.as_deref() == Some(a.password.as_str())
            });
            if !accepted {
                Some(fail("Access is denied."))
            } else if self.options.role == ExchangeRole::None {
                // Exchange refuses the session while setting it up: PowerShell reports
                // it as data it could not process (KB 3058293).
                Some(ErrorRecord::new(
                    format!(
                        "Processing data from remote server failed with the following error message: {} For more information, see the about_Remote_Troubleshooting Help topic.",
                        no_management_role_message(self.options.account.as_ref())
                    ),
                    "System.Management.Automation.Remoting.PSRemotingTransportException",
                    PsCategory::OpenError,
                    "PSSessionOpenFailed",
                ))
            } else {
                None
            }
        };
        if let Some(record) = record {
            return call.write_error(record.with_command("New-PSSession"));
        }
        if !sleep_real(self.options.snapin_delay, call.stop_signal()) {
            return Ok(());
        }
        self.org.lock().count_exchange_session();
        let id = i32::try_from(self.sessions.len() + 1).unwrap_or(i32::MAX);
        let session = PsObject::new([
            "System.Management.Automation.Runspaces.PSSession",
            "System.Object",
        ])
        .with("Id", Value::Int(id))
        .with("Name", Value::from(format!("Session{id}")))
        .with("ComputerName", Value::from(target))
        .with("State", Value::from("Opened"))
        .with("ConfigurationName", Value::from(EXCHANGE_CONFIGURATION))
        .with("Availability", Value::from("Available"));
        self.sessions.push(session.clone());
        call.write_output(session);
        Ok(())
    }

    /// The PSSession of this process given as `-Session` (or positionally).
    fn session_arg(&self, call: &Call<'_>) -> Option<PsObject> {
        let v = call.args.get("Session")?;
        let items = v.as_array().unwrap_or_else(|| vec![v.clone()]);
        items.iter().find_map(|i| {
            let o = i.as_object()?;
            self.sessions.iter().find(|s| s.same(o)).cloned()
        })
    }

    /// `Import-PSSession`: the session's commands become this process's (proxies that
    /// run them remotely and hand back deserialized objects).
    #[allow(clippy::result_large_err)]
    fn import_pssession(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        let opened = self
            .session_arg(call)
            .filter(|s| s.get("State").is_some_and(|v| v.to_text() == "Opened"));
        if opened.is_none() {
            return call.write_error(
                ErrorRecord::new(
                    "Cannot bind parameter 'Session'. The session is not an open session of this process.",
                    "System.Management.Automation.ParameterBindingException",
                    PsCategory::InvalidArgument,
                    "CannotConvertArgumentNoMessage,Microsoft.PowerShell.Commands.ImportPSSessionCommand",
                )
                .with_command("Import-PSSession"),
            );
        }
        self.session_imported = true;
        call.write_output(
            PsObject::new(["System.Management.Automation.PSModuleInfo", "System.Object"])
                .with("Name", Value::from("tmp_exchange_session"))
                .with("ModuleType", Value::from("Script"))
                .with("Version", Value::from("1.0")),
        );
        Ok(())
    }

    /// `Remove-PSSession`: the session closes, and with it the imported commands.
    #[allow(clippy::result_large_err)]
    fn remove_pssession(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        if let Some(s) = self.session_arg(call) {
            s.set("State", Value::from("Closed"));
            s.set("Availability", Value::from("None"));
            self.sessions.retain(|x| !x.same(&s));
            if self.sessions.is_empty() {
                self.session_imported = false;
            }
        }
        Ok(())
    }

    #[allow(clippy::result_large_err)]
    fn report(&self, call: &mut Call<'_>, e: &ExchangeError) -> Result<(), ErrorRecord> {
        let record = record_of(e, &call.command.name);
        if is_terminating(e) {
            Err(record)
        } else {
            call.write_error(record)
        }
    }

    fn registry_method(
        &mut self,
        target: &PsObject,
        name: &str,
        args: &[Value],
    ) -> Option<Result<Value, ErrorRecord>> {
        let key = target.get("Name").map(|v| v.to_text()).unwrap_or_default();
        let arg = |i: usize| args.get(i).map(Value::to_text).unwrap_or_default();
        let org = self.org.lock();
        let reg = org.registry();
        let lower = name.to_ascii_lowercase();
        Some(match (lower.as_str(), args.len()) {
            ("getvaluekind", 1) => match reg.map(|r| r.value_kind(&key, &arg(0))) {
                Some(Ok(kind)) => Ok(Value::Object(PsObject::with_display(
                    [
                        "Microsoft.Win32.RegistryValueKind",
                        "System.Enum",
                        "System.ValueType",
                        "System.Object",
                    ],
                    kind,
                ))),
                Some(Err(message)) => Err(method_error(name, 1, &message)),
                None => Err(method_error(name, 1, registry::FILE_NOT_FOUND)),
            },
            ("getvalue", 1..=3) => {
                let expand = !args
                    .get(2)
                    .is_some_and(|o| o.to_text().contains("DoNotExpandEnvironmentNames"));
                match reg.and_then(|r| r.raw_value(&key, &arg(0), expand)) {
                    Some(v) => Ok(from_sim(&v)),
                    None => Ok(args.get(1).cloned().unwrap_or(Value::Null)),
                }
            }
            ("getvaluenames", 0) => Ok(Value::from(
                reg.and_then(|r| r.value_names(&key))
                    .unwrap_or_default()
                    .into_iter()
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            )),
            ("tostring", 0) => Ok(Value::from(key)),
            ("close", 0) | ("dispose", 0) | ("flush", 0) => Ok(Value::Null),
            _ => return None,
        })
    }

    fn service_method(
        &mut self,
        target: &PsObject,
        name: &str,
        args: &[Value],
    ) -> Option<Result<Value, ErrorRecord>> {
        let service = target.get("Name").map(|v| v.to_text()).unwrap_or_default();
        let status_now = |org: &OrgHandle| -> Option<String> {
            let mut o = org.lock();
            let host = o.host.clone();
            o.service_status(&host, &service)
                .map(|s| s.as_str().to_string())
        };
        match name.to_ascii_lowercase().as_str() {
            "refresh" => {
                if let Some(s) = status_now(&self.org) {
                    target.set("Status", Value::from(s));
                }
                Some(Ok(Value::Null))
            }
            "waitforstatus" if !args.is_empty() => {
                let wanted = args.first().map(Value::to_text).unwrap_or_default();
                let timeout = match args.get(1) {
                    Some(Value::TimeSpan(t)) => Some(Duration::from_millis(
                        u64::try_from(*t / 10_000).unwrap_or(0),
                    )),
                    Some(other) => exctl_pwsh_interp::convert::parse_timespan(&other.to_text())
                        .map(|t| Duration::from_millis(u64::try_from(t / 10_000).unwrap_or(0))),
                    None => None,
                };
                let began = self.clock.now();
                // Bounded even without a timeout: a service that never comes back must not
                // hold the process forever (a day of simulated time).
                let limit = began.plus(timeout.unwrap_or(Duration::from_secs(86_400)));
                let stop = self.stop.clone();
                loop {
                    let status = status_now(&self.org).unwrap_or_default();
                    if status.eq_ignore_ascii_case(&wanted) {
                        target.set("Status", Value::from(status));
                        return Some(Ok(Value::Null));
                    }
                    if self.clock.now() >= limit {
                        return Some(Err(method_error(
                            name,
                            args.len(),
                            "Time out has expired and the operation has not been completed.",
                        )));
                    }
                    let next = self.clock.now().plus(Duration::from_millis(250)).min(limit);
                    if !self.wait_until(next, &stop) {
                        return Some(Ok(Value::Null));
                    }
                }
            }
            "start" | "stop" if args.is_empty() => {
                let result = {
                    let mut o = self.org.lock();
                    if name.eq_ignore_ascii_case("start") {
                        o.start_service(None, &service)
                    } else {
                        // .NET's ServiceController.Stop() stops the running dependents
                        // first (Stop-Service refuses them without -Force).
                        o.stop_service(None, &service, true)
                    }
                };
                Some(
                    result
                        .map(|_| Value::Null)
                        .map_err(|e| method_error(name, 0, &e.message)),
                )
            }
            _ => None,
        }
    }
}

impl Host for SimHost {
    fn command(&mut self, name: &str) -> Option<Arc<CommandInfo>> {
        let canonical = ALIASES
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map_or(name, |(_, c)| c);
        let key = canonical.to_ascii_lowercase();
        if let Some(info) = self.core.get(&key) {
            return Some(info.clone());
        }
        if self.snapin_loaded {
            // Roles restrict remote sessions only: every cmdlet of the release is here.
            return self.exchange.get(&key).cloned();
        }
        if self.session_imported && self.options.role.allows(canonical) {
            // An imported session holds what the account's roles hold, nothing more.
            return self.exchange.get(&key).cloned();
        }
        None
    }

    fn invoke(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        let name = call.command.name.clone();
        if matches!(
            name.as_str(),
            "ConvertTo-SecureString" | "New-PSSession" | "Import-PSSession" | "Remove-PSSession"
        ) {
            self.org.lock().count_cmdlet(&name);
        }
        match name.as_str() {
            "ConvertTo-SecureString" => return self.convert_to_secure_string(call),
            "New-PSSession" => return self.new_pssession(call),
            "Import-PSSession" => return self.import_pssession(call),
            "Remove-PSSession" => return self.remove_pssession(call),
            _ => {}
        }
        // Through an imported session, Exchange's objects arrive deserialized.
        let deserialize = self.session_imported
            && !self.snapin_loaded
            && self.exchange.contains_key(&name.to_ascii_lowercase());
        let mut args: Vec<(String, SimValue)> = Vec::with_capacity(call.args.len());
        let mut pipeline: Vec<SimObject> = Vec::new();
        for (param, value) in call.args.iter() {
            if param.eq_ignore_ascii_case("Instance")
                && let Value::Object(o) = value
            {
                // -Instance (Get-ADPermission output) is the object itself; the model
                // takes it as the piped object.
                pipeline.push(object_to_sim(o));
                continue;
            }
            args.push((param.to_string(), to_sim(value)));
        }
        if name == "Add-PSSnapin" {
            return self.add_snapin(call, &args);
        }
        if name == "Get-PSSnapin" {
            return self.get_snapin(call, &args);
        }
        if name == "Read-Host" {
            return self.read_host(call);
        }
        if self.snapin_loaded
            && self.options.double_hop
            && let Some(info) = self.exchange.get(&name.to_ascii_lowercase())
        {
            // Through the snap-in, the cmdlet's directory session binds as this process's
            // logon, which the domain controller cannot authenticate.
            let account = self
                .options
                .account
                .as_ref()
                .map(|a| a.user.clone())
                .unwrap_or_default();
            return Err(double_hop_error(&account, &info.full_name));
        }
        let (result, now) = {
            let mut org = self.org.lock();
            let result = cmdlets::invoke(&mut org, &name, &args, &pipeline);
            (result, org.now())
        };
        let out = match result {
            Ok(out) => out,
            Err(e) => return self.report(call, &e),
        };
        if let Some(until) = out.wait_until
            && until > now
        {
            // Restart-Service returns once the service runs again; the lock is free
            // meanwhile, so other processes and the IMAP listener see it restarting.
            self.wait_until(until, call.stop_signal());
        }
        for w in out.warnings {
            call.write_warning(w);
        }
        for o in &out.objects {
            let obj = object_from_sim(o);
            if deserialize {
                call.write_output(deserialized(&obj));
            } else {
                call.write_output(obj);
            }
        }
        for v in &out.values {
            call.write_output(from_sim(v));
        }
        Ok(())
    }

    fn convert_argument(&mut self, type_name: &str, value: &Value) -> Result<Value, ArgumentError> {
        // No parameter is declared with a custom type (see `param_type`).
        let _ = value;
        Err(ArgumentError::Conversion(format!(
            "No conversion to {type_name} is available."
        )))
    }

    fn call_method(
        &mut self,
        target: &PsObject,
        name: &str,
        args: &[Value],
    ) -> Option<Result<Value, ErrorRecord>> {
        if KEY_TYPE_NAMES.first().is_some_and(|t| target.is_type(t)) {
            return self.registry_method(target, name, args);
        }
        if target.is_type("System.ServiceProcess.ServiceController")
            || target.is_type("Deserialized.System.ServiceProcess.ServiceController")
        {
            return self.service_method(target, name, args);
        }
        None
    }

    fn now(&mut self) -> i64 {
        ticks_of(self.clock.now())
    }

    fn sleep(&mut self, duration: Duration, stop: &StopSignal) -> bool {
        // Start-Sleep sleeps on the host's clock: with --time-scale, a script's polling
        // loop runs as fast as the restarts it waits for.
        sleep_real(self.clock.0.real_duration(duration), stop)
    }

    fn env_var(&mut self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}
