//! The observe and apply scripts run by the PowerShell 2.0 interpreter of `exctl-pwsh`
//! (the one the simulator embeds), through the real stdin bootstrap, against a small host
//! that models an Exchange 2010 server: IMAP settings in "Active Directory", services with
//! process start times and a start delay, mailbox databases that mount some time after
//! the store starts, a registry, and a clock that moves only when the script sleeps.
//!
//! So the scripts are checked as PowerShell, not as text: they parse, bind, loop until
//! the deadline, and report through the record protocol what the engine expects.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exctl_engine::apply::{
    self, ApplyOptions, ApplyResult, Event, FixedClock, HostStatus, RestartPolicy, StepStatus,
};
use exctl_engine::desired::{self, DesiredState, HostSpec};
use exctl_engine::observe::{self, RunError, Runner, ScriptOutput};
use exctl_engine::plan::{ChangeStep, HostPlan, Plan, RestartStep, Step};
use exctl_exchange::kind::{Action, AttrChange};
use exctl_exchange::kinds::imap;
use exctl_exchange::services::INFORMATION_STORE;
use exctl_exchange::{Value as XValue, Version};
use exctl_pwsh_interp::convert::datetime_ticks;
use exctl_pwsh_interp::value::Value;
use exctl_pwsh_interp::*;

const TICKS_PER_SEC: i64 = 10_000_000;

#[derive(Debug, Clone)]
struct Svc {
    name: &'static str,
    running: bool,
    auto: bool,
    started: i64,
    up_at: i64,
    pid: i64,
    start_delay: i64,
    /// When a stop completes.
    down_at: i64,
    stop_delay: i64,
    depends_on: Option<&'static str>,
}

impl Svc {
    fn status(&self, now: i64) -> &'static str {
        match (self.running, now < self.up_at, now < self.down_at) {
            (false, _, true) => "StopPending",
            (false, _, false) => "Stopped",
            (true, true, _) => "StartPending",
            (true, false, _) => "Running",
        }
    }
}

#[derive(Debug, Clone)]
struct Db {
    name: &'static str,
    /// When it mounts (again); `None`: it does not.
    mounted_at: Option<i64>,
    copies: usize,
    /// Whether it was mounted when the store stopped (it mounts again when it starts).
    was_mounted: bool,
}

#[derive(Debug)]
struct Server {
    now: i64,
    imap: BTreeMap<String, Value>,
    imap_changed: i64,
    services: Vec<Svc>,
    databases: Vec<Db>,
    /// Databases that do not mount again after a store restart.
    stuck: Vec<&'static str>,
    registry: BTreeMap<String, BTreeMap<String, Value>>,
    snapin_fails: bool,
    log: Vec<String>,
}

impl Server {
    fn new() -> Server {
        let boot = datetime_ticks(2024, 5, 1, 6, 0, 0);
        let svc = |name, auto, delay, depends_on| Svc {
            name,
            running: true,
            auto,
            started: boot,
            up_at: boot,
            pid: 1000,
            start_delay: delay * TICKS_PER_SEC,
            down_at: boot,
            stop_delay: 5 * TICKS_PER_SEC,
            depends_on,
        };
        Server {
            now: datetime_ticks(2024, 5, 1, 8, 0, 0),
            imap: [
                ("MaxConnectionsPerUser", Value::Int(16)),
                ("MaxConnectionFromSingleIP", Value::Int(2000)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            imap_changed: datetime_ticks(2024, 4, 1, 0, 0, 0),
            services: vec![
                svc("MSExchangeIMAP4", false, 3, None),
                svc("MSExchangeIS", true, 20, None),
                svc("MSExchangeMailboxAssistants", true, 2, Some("MSExchangeIS")),
            ],
            databases: vec![
                Db {
                    name: "DB1",
                    mounted_at: Some(boot),
                    copies: 2,
                    was_mounted: false,
                },
                Db {
                    name: "DB2",
                    mounted_at: Some(boot),
                    copies: 1,
                    was_mounted: false,
                },
            ],
            stuck: Vec::new(),
            registry: [
                (r"hklm:\software".to_string(), BTreeMap::new()),
                (
                    r"hklm:\system\currentcontrolset\services\msexchangeis\parameterssystem"
                        .to_string(),
                    BTreeMap::new(),
                ),
            ]
            .into_iter()
            .collect(),
            snapin_fails: false,
            log: Vec::new(),
        }
    }

    fn svc(&mut self, name: &str) -> Option<&mut Svc> {
        self.services
            .iter_mut()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    fn mounted(&self, db: &Db) -> bool {
        db.mounted_at.is_some_and(|t| self.now >= t)
    }
}

struct PsHost(Arc<Mutex<Server>>);

fn p(name: &str, ty: ParamType) -> ParameterInfo {
    ParameterInfo::new(name, ty)
}

fn s(v: &Value) -> String {
    v.to_text()
}

impl Host for PsHost {
    fn command(&mut self, name: &str) -> Option<Arc<CommandInfo>> {
        use ParamType::*;
        let lower = name.to_ascii_lowercase();
        let info = match lower.as_str() {
            "add-pssnapin" => CommandInfo::new(
                "Add-PSSnapin",
                "Microsoft.PowerShell.Commands.AddPSSnapinCommand",
            )
            .param(p("Name", String).position(0)),
            // Each script runs in a new process here: no snap-in is ever added yet.
            "get-pssnapin" => CommandInfo::new(
                "Get-PSSnapin",
                "Microsoft.PowerShell.Commands.GetPSSnapinCommand",
            )
            .param(p("Name", String).position(0)),
            "get-exchangeserver" => CommandInfo::new("Get-ExchangeServer", "x.GetExchangeServer")
                .param(p("Identity", String).position(0)),
            "get-imapsettings" => {
                CommandInfo::new("Get-ImapSettings", "x.GetImapSettings").param(p("Server", String))
            }
            "set-imapsettings" => CommandInfo::new("Set-ImapSettings", "x.SetImapSettings")
                .param(p("Server", String))
                .param(p("MaxConnectionsPerUser", Int))
                .param(p("MaxConnectionFromSingleIP", Int)),
            "get-service" => CommandInfo::new("Get-Service", "x.GetService")
                .param(p("Name", String).position(0))
                .param(p("DependentServices", Switch)),
            "get-wmiobject" => CommandInfo::new("Get-WmiObject", "x.GetWmiObject")
                .param(p("Class", String).position(0))
                .param(p("Filter", String)),
            "get-process" => CommandInfo::new("Get-Process", "x.GetProcess").param(p("Id", Int)),
            "get-mailboxdatabase" => {
                CommandInfo::new("Get-MailboxDatabase", "x.GetMailboxDatabase")
                    .param(p("Identity", String).position(0))
                    .param(p("Server", String))
                    .param(p("Status", Switch))
            }
            "get-mailboxdatabasecopystatus" => CommandInfo::new(
                "Get-MailboxDatabaseCopyStatus",
                "x.GetMailboxDatabaseCopyStatus",
            )
            .param(p("Identity", String).position(0))
            .param(p("Server", String)),
            "test-path" => {
                CommandInfo::new("Test-Path", "x.TestPath").param(p("Path", String).position(0))
            }
            "new-item" => {
                CommandInfo::new("New-Item", "x.NewItem").param(p("Path", String).position(0))
            }
            "set-itemproperty" => CommandInfo::new("Set-ItemProperty", "x.SetItemProperty")
                .param(p("Path", String).position(0))
                .param(p("Name", String))
                .param(p("Value", Any)),
            "remove-itemproperty" => {
                CommandInfo::new("Remove-ItemProperty", "x.RemoveItemProperty")
                    .param(p("Path", String).position(0))
                    .param(p("Name", String))
            }
            "get-itemproperty" => CommandInfo::new("Get-ItemProperty", "x.GetItemProperty")
                .param(p("Path", String).position(0))
                .param(p("Name", String)),
            "join-path" => CommandInfo::new("Join-Path", "x.JoinPath")
                .param(p("Path", String).position(0))
                .param(p("ChildPath", String).position(1)),
            n if n.ends_with("dagservermaintenance.ps1") => {
                CommandInfo::new(name, name).param(p("serverName", String))
            }
            _ => return None,
        };
        Some(Arc::new(info))
    }

    fn invoke(&mut self, call: &mut Call<'_>) -> Result<(), ErrorRecord> {
        let state = self.0.clone();
        let mut st = state.lock().unwrap();
        let now = st.now;
        let arg = |n: &str| call.args.get(n).map(s).unwrap_or_default();
        let name = call.command.name.clone();
        let not_found = |call: &Call<'_>, msg: String| {
            call.error(
                msg,
                "System.Management.Automation.ItemNotFoundException",
                ErrorCategory::ObjectNotFound,
                "PathNotFound",
                Value::Null,
            )
        };
        match name.to_ascii_lowercase().as_str() {
            "add-pssnapin" if st.snapin_fails => {
                return Err(call.error(
                    "The Windows PowerShell snap-in 'Microsoft.Exchange.Management.PowerShell.E2010' is not installed on this machine.",
                    "System.Management.Automation.PSArgumentException",
                    ErrorCategory::InvalidArgument,
                    "AddPSSnapInRead",
                    Value::Null,
                ));
            }
            "get-exchangeserver" => call.write_output(
                PsObject::new(["Microsoft.Exchange.Data.Directory.Management.ExchangeServer"])
                    .with("AdminDisplayVersion", "Version 14.3 (Build 123.4)"),
            ),
            "get-imapsettings" => {
                let mut o = PsObject::new([
                    "Microsoft.Exchange.Data.Directory.SystemConfiguration.Imap4AdConfiguration",
                ])
                .with("WhenChangedUTC", Value::DateTime(st.imap_changed));
                for (k, v) in &st.imap {
                    o = o.with(k.as_str(), v.clone());
                }
                call.write_output(o);
            }
            "set-imapsettings" => {
                for (k, v) in call.args.iter() {
                    if k.eq_ignore_ascii_case("Server") {
                        continue;
                    }
                    if let Value::Int(n) = v
                        && !(1..=25_000).contains(n)
                    {
                        let e = call.error(
                            format!("The value {n} for {k} is out of range: it must be between 1 and 25000."),
                            "Microsoft.Exchange.Data.DataValidationException",
                            ErrorCategory::InvalidData,
                            "ValidationFailed",
                            Value::Null,
                        );
                        call.write_error(e)?;
                        return Ok(());
                    }
                    st.log.push(format!("set {k}={}", s(v)));
                    st.imap.insert(k.to_string(), v.clone());
                }
                st.imap_changed = now;
            }
            "get-service" => {
                let n = arg("Name");
                // A wildcard that matches nothing is no error (Get-Service's -Name takes
                // wildcards); only a literal name that matches nothing is.
                if let Some(prefix) = n.strip_suffix('*') {
                    let out: Vec<PsObject> = st
                        .services
                        .iter()
                        .filter(|x| {
                            x.name
                                .to_ascii_lowercase()
                                .starts_with(&prefix.to_ascii_lowercase())
                        })
                        .map(|x| {
                            PsObject::new(["System.ServiceProcess.ServiceController"])
                                .with("Name", x.name)
                                .with("Status", x.status(now))
                        })
                        .collect();
                    for o in out {
                        call.write_output(o);
                    }
                    return Ok(());
                }
                if st.svc(&n).is_none() {
                    return Err(not_found(
                        call,
                        format!("Cannot find any service with service name '{n}'."),
                    ));
                }
                let dependents = call
                    .args
                    .get("DependentServices")
                    .is_some_and(Value::is_true);
                let out: Vec<PsObject> = st
                    .services
                    .iter()
                    .filter(|x| {
                        if dependents {
                            x.depends_on.is_some_and(|d| d.eq_ignore_ascii_case(&n))
                        } else {
                            x.name.eq_ignore_ascii_case(&n)
                        }
                    })
                    .map(|x| {
                        PsObject::new(["System.ServiceProcess.ServiceController"])
                            .with("Name", x.name)
                            .with("Status", x.status(now))
                    })
                    .collect();
                for o in out {
                    call.write_output(o);
                }
            }
            "get-wmiobject" => {
                let filter = arg("Filter");
                let n = filter.split('\'').nth(1).unwrap_or_default().to_string();
                if let Some(svc) = st.svc(&n) {
                    let svc = svc.clone();
                    call.write_output(
                        PsObject::new([
                            "System.Management.ManagementObject#root\\cimv2\\Win32_Service",
                        ])
                        .with("State", if svc.running { "Running" } else { "Stopped" })
                        .with("StartMode", if svc.auto { "Auto" } else { "Manual" })
                        .with(
                            "ProcessId",
                            Value::Long(if svc.running { svc.pid } else { 0 }),
                        ),
                    );
                }
            }
            "get-process" => {
                let id = call.args.get("Id").and_then(|v| s(v).parse::<i64>().ok());
                let started = st
                    .services
                    .iter()
                    .find(|x| Some(x.pid) == id && x.running)
                    .map(|x| x.started);
                match started {
                    Some(t) => call.write_output(
                        PsObject::new(["System.Diagnostics.Process"])
                            .with("StartTime", Value::DateTime(t)),
                    ),
                    None => {
                        return Err(not_found(
                            call,
                            format!(
                                "Cannot find a process with the process identifier {}.",
                                id.unwrap_or(0)
                            ),
                        ));
                    }
                }
            }
            "get-mailboxdatabase" => {
                let identity = arg("Identity");
                let out: Vec<Value> = st
                    .databases
                    .iter()
                    .filter(|d| identity.is_empty() || d.name.eq_ignore_ascii_case(&identity))
                    .map(|d| {
                        let copies: Vec<Value> =
                            (0..d.copies).map(|i| Value::from(format!("{}\\EX0{}", d.name, i + 1))).collect();
                        Value::Object(
                            PsObject::new(["Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase"])
                                .with("Name", d.name)
                                .with("Mounted", st.mounted(d))
                                .with("DatabaseCopies", Value::from(copies)),
                        )
                    })
                    .collect();
                for v in out {
                    call.write_output(v);
                }
            }
            "get-mailboxdatabasecopystatus" => {
                let out: Vec<Value> = st
                    .databases
                    .iter()
                    .map(|d| {
                        Value::Object(
                            PsObject::new(["Microsoft.Exchange.Management.SystemConfigurationTasks.DatabaseCopyStatusEntry"])
                                .with("DatabaseName", d.name)
                                .with("Status", if st.mounted(d) { "Mounted" } else { "Dismounted" }),
                        )
                    })
                    .collect();
                for v in out {
                    call.write_output(v);
                }
            }
            "test-path" => {
                let exists = st.registry.contains_key(&arg("Path").to_ascii_lowercase());
                call.write_output(exists);
            }
            "new-item" => {
                let path = arg("Path").to_ascii_lowercase();
                let parent = path.rsplit_once('\\').map(|x| x.0).unwrap_or("");
                if !st.registry.contains_key(parent) {
                    return Err(not_found(
                        call,
                        format!("Cannot find path '{parent}' because it does not exist."),
                    ));
                }
                st.registry.entry(path).or_default();
                call.write_output("key");
            }
            "set-itemproperty" => {
                let path = arg("Path");
                let (n, v) = (
                    arg("Name"),
                    call.args.get("Value").cloned().unwrap_or_default(),
                );
                let Some(key) = st.registry.get_mut(&path.to_ascii_lowercase()) else {
                    return Err(not_found(
                        call,
                        format!("Cannot find path '{path}' because it does not exist."),
                    ));
                };
                key.insert(n.clone(), v.clone());
                st.log.push(format!("registry {n}={}", s(&v)));
            }
            "remove-itemproperty" => {
                let (path, n) = (arg("Path"), arg("Name"));
                if let Some(key) = st.registry.get_mut(&path.to_ascii_lowercase())
                    && key.remove(&n).is_some()
                {
                    st.log.push(format!("registry -{n}"));
                }
            }
            "get-itemproperty" => {
                let path = arg("Path");
                let n = arg("Name");
                let found = st
                    .registry
                    .get(&path.to_ascii_lowercase())
                    .and_then(|k| k.get(&n))
                    .cloned();
                match found {
                    Some(v) => call.write_output(
                        PsObject::new(["System.Management.Automation.PSCustomObject"])
                            .with(n.as_str(), v),
                    ),
                    None => {
                        let e = call.error(
                            format!("Property {n} does not exist at path {path}."),
                            "System.Management.Automation.PSArgumentException",
                            ErrorCategory::InvalidArgument,
                            "System.Management.Automation.PSArgumentException",
                            Value::Null,
                        );
                        call.write_error(e)?;
                    }
                }
            }
            "join-path" => call.write_output(format!("{}\\{}", arg("Path"), arg("ChildPath"))),
            n if n.ends_with("startdagservermaintenance.ps1") => {
                st.log.push("StartDagServerMaintenance".into());
                // The active copy with another copy moves away.
                if let Some(db) = st.databases.iter_mut().find(|d| d.copies > 1) {
                    db.mounted_at = None;
                }
            }
            n if n.ends_with("stopdagservermaintenance.ps1") => {
                st.log.push("StopDagServerMaintenance".into());
            }
            _ => {}
        }
        Ok(())
    }

    /// A ServiceController's `Refresh()`, `Stop()` (its running dependents first, as
    /// .NET does; stopping takes `stop_delay`) and `Start()`.
    fn call_method(
        &mut self,
        target: &PsObject,
        name: &str,
        _args: &[Value],
    ) -> Option<Result<Value, ErrorRecord>> {
        let n = target.get("Name").map(|v| s(&v))?;
        let mut st = self.0.lock().unwrap();
        let now = st.now;
        match name.to_ascii_lowercase().as_str() {
            "refresh" => {
                let status = st.svc(&n)?.status(now);
                target.set("Status", Value::from(status));
            }
            "stop" => {
                let dependents: Vec<&'static str> = st
                    .services
                    .iter()
                    .filter(|x| x.depends_on.is_some_and(|d| d.eq_ignore_ascii_case(&n)))
                    .filter(|x| x.running)
                    .map(|x| x.name)
                    .collect();
                for d in dependents
                    .into_iter()
                    .chain(std::iter::once(st.svc(&n)?.name))
                {
                    st.log.push(format!("stop {d}"));
                    let svc = st.svc(d)?;
                    svc.running = false;
                    svc.down_at = now + svc.stop_delay;
                }
                if n.eq_ignore_ascii_case("MSExchangeIS") {
                    for db in &mut st.databases {
                        db.was_mounted = db.mounted_at.is_some_and(|t| now >= t);
                        db.mounted_at = None;
                    }
                }
            }
            "start" => {
                st.log.push(format!("start {n}"));
                let is_store = n.eq_ignore_ascii_case("MSExchangeIS");
                let svc = st.svc(&n)?;
                svc.running = true;
                svc.started = now;
                svc.up_at = now + svc.start_delay;
                svc.pid += 4;
                let up = svc.up_at;
                if is_store {
                    let stuck = st.stuck.clone();
                    for (i, db) in st.databases.iter_mut().enumerate() {
                        if db.was_mounted {
                            let later = up + (10 + 10 * i as i64) * TICKS_PER_SEC;
                            db.mounted_at = (!stuck.contains(&db.name)).then_some(later);
                        }
                    }
                }
            }
            _ => return None,
        }
        Some(Ok(Value::Null))
    }

    fn now(&mut self) -> i64 {
        self.0.lock().unwrap().now
    }

    fn sleep(&mut self, duration: Duration, _stop: &StopSignal) -> bool {
        let mut st = self.0.lock().unwrap();
        st.now += i64::try_from(duration.as_nanos() / 100).unwrap_or(0);
        true
    }

    fn env_var(&mut self, name: &str) -> Option<String> {
        name.eq_ignore_ascii_case("ExchangeInstallPath")
            .then(|| r"C:\Program Files\Microsoft\Exchange Server\V14\".to_string())
    }
}

/// Runs each script as powershell.exe would: the bootstrap reads it from stdin.
struct InterpreterRunner(Arc<Mutex<Server>>);

impl Runner for InterpreterRunner {
    fn run<'a>(
        &'a self,
        _host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        let inv = exctl_pwsh::invocation(script);
        let input: Vec<String> = String::from_utf8_lossy(&inv.stdin)
            .lines()
            .map(str::to_owned)
            .collect();
        let mut interp = Interpreter::new(PsHost(self.0.clone()));
        let mut sink = CollectSink::default();
        let status = interp.run(exctl_pwsh::runner::BOOTSTRAP, Some(input), &mut sink);
        let mut stderr: Vec<String> = sink.host_error_lines.clone();
        stderr.extend(sink.errors.iter().map(ErrorRecord::format_v2));
        let out = ScriptOutput {
            stdout: sink.stdout,
            stderr: stderr.join("\n"),
            exit_code: i64::from(status.code),
        };
        Box::pin(async move { Ok(out) })
    }
}

const INVENTORY: &str = "hosts:\n  EX01:\n    endpoint: https://ex01.contoso.local:5986/wsman\n    user: CONTOSO\\svc-exctl\n    credential: env:EXCTL_TEST_PASSWORD\n    exchange: 2010-sp3\n    access: snapin\n";

fn load(site: &str) -> (tempfile::TempDir, exctl_manifest::SourceMap, DesiredState) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(dir.path().join("lon.yaml"), site).unwrap();
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.path().to_path_buf()]);
    let state = desired::build(&sources, &docs, &mut diags);
    assert!(!diags.has_errors(), "{:?}", diags.as_slice());
    (dir, sources, state)
}

fn options(restart: RestartPolicy) -> ApplyOptions {
    let mut o = ApplyOptions::new(Arc::new(FixedClock(0)));
    o.restart = restart;
    o.restart_timeout = Duration::from_secs(120);
    o
}

async fn run_apply(
    plan: &Plan,
    state: &DesiredState,
    runner: &InterpreterRunner,
    opts: &ApplyOptions,
) -> (ApplyResult, Vec<String>) {
    let events = Mutex::new(Vec::new());
    let sink = |e: &Event<'_>| {
        let line = match e {
            Event::StepStarted { index, .. } => format!("start {index}"),
            Event::Dismounting { databases, .. } => format!("dismount {}", databases.join(",")),
            Event::Progress {
                service,
                status,
                databases,
                ..
            } => format!("progress {service} {status} {databases:?}"),
            Event::Note { text, .. } => format!("note {text}"),
            Event::StepFinished { result, .. } => format!(
                "finish {} {:?} {}",
                result.index,
                result.status,
                result.error.clone().unwrap_or_default()
            ),
            _ => return,
        };
        events.lock().unwrap().push(line);
    };
    let r = apply::apply(plan, &state.hosts, runner, opts, &sink)
        .await
        .unwrap();
    (r, events.into_inner().unwrap())
}

fn store_limit(value: i64) -> Step {
    Step::Change(ChangeStep {
        kind: "registry_values",
        title: "Registry value",
        id: "Maximum Allowed Service Sessions Per User".into(),
        actions: vec![Action::Update],
        attributes: vec![AttrChange {
            name: "Value".into(),
            before: Some(XValue::Int(16)),
            after: Some(XValue::Int(value)),
            sensitive: false,
        }],
        unchanged_attributes: 0,
        reason: "",
        requires_restart: Some(INFORMATION_STORE),
        no_restart: None,
        declared_at: "lon.yaml:9".into(),
        attributes_declared_at: Vec::new(),
        commands: vec![
            exctl_pwsh::Command::new("Set-ItemProperty")
                .param(
                    "Path",
                    "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem",
                )
                .param("Name", "Maximum Allowed Service Sessions Per User")
                .param("Value", value),
        ],
    })
}

fn store_plan() -> Plan {
    Plan::new(vec![HostPlan {
        host: "EX01".into(),
        site: None,
        expected_version: Version::Sp3,
        observed_version: None,
        steps: vec![
            store_limit(64),
            Step::Restart(RestartStep {
                service: INFORMATION_STORE,
                required_by: vec!["registry_values x".into()],
                consequence: INFORMATION_STORE.consequence(),
                pending: None,
                warnings: Vec::new(),
                recover: None,
            }),
        ],
        in_sync: 0,
        errors: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    }])
}

#[tokio::test]
async fn imap_settings_then_the_imap4_restart_then_nothing_left() {
    let (_d, sources, state) =
        load("targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n");
    let server = Arc::new(Mutex::new(Server::new()));
    let runner = InterpreterRunner(server.clone());
    let plan = observe::plan(&state, &runner, &sources, 1).await;
    assert!(!plan.has_errors(), "{:?}", plan.hosts[0].errors);
    assert!(plan.hosts[0].notes.is_empty(), "{:?}", plan.hosts[0].notes);
    assert_eq!(plan.hosts[0].steps.len(), 2);

    let (r, events) = run_apply(&plan, &state, &runner, &options(RestartPolicy::Auto)).await;
    assert!(r.succeeded(), "{r:#?}\n{events:?}");
    assert_eq!(
        server.lock().unwrap().log,
        [
            "set MaxConnectionsPerUser=40",
            "registry MSExchangeIMAP4=2024-05-01T08:00:00",
            "registry MSExchangeIMAP4=",
            "stop MSExchangeIMAP4",
            "start MSExchangeIMAP4",
            "registry -MSExchangeIMAP4"
        ]
    );
    // The service stops in 5 s and starts in 3 s; the script polls every 5 s.
    assert_eq!(
        events,
        [
            "start 1",
            "finish 1 Done ",
            "start 2",
            "progress MSExchangeIMAP4 StopPending None",
            "progress MSExchangeIMAP4 Stopped None",
            "progress MSExchangeIMAP4 StartPending None",
            "progress MSExchangeIMAP4 Running None",
            "finish 2 Done ",
        ]
    );
    let fresh = observe::plan(&state, &runner, &sources, 1).await;
    assert!(!fresh.has_changes(), "{:#?}", fresh.hosts[0].steps);
}

#[tokio::test]
async fn restart_never_is_remembered_by_the_server() {
    let (_d, sources, state) =
        load("targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n");
    let server = Arc::new(Mutex::new(Server::new()));
    let runner = InterpreterRunner(server.clone());
    let plan = observe::plan(&state, &runner, &sources, 1).await;
    let (r, _) = run_apply(&plan, &state, &runner, &options(RestartPolicy::Never)).await;
    assert!(r.succeeded());
    assert_eq!(r.hosts[0].pending_restarts, [imap::SERVICE]);

    let next = observe::plan(&state, &runner, &sources, 1).await;
    let [Step::Restart(rs)] = next.hosts[0].steps.as_slice() else {
        panic!("one restart step: {:#?}", next.hosts[0].steps)
    };
    assert_eq!(rs.service, imap::SERVICE);
    let why = rs.pending.as_deref().unwrap_or_default();
    assert!(
        why.starts_with("exctl changed settings at 2024-05-01T08:00:00 (server time)"),
        "{why}"
    );

    let (r, _) = run_apply(&next, &state, &runner, &options(RestartPolicy::Auto)).await;
    assert!(r.succeeded());
    assert!(
        !observe::plan(&state, &runner, &sources, 1)
            .await
            .has_changes()
    );
}

#[tokio::test]
async fn a_refused_value_stops_the_host_with_exchanges_text() {
    let (_d, sources, state) =
        load("targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 20000\n");
    let server = Arc::new(Mutex::new(Server::new()));
    let runner = InterpreterRunner(server.clone());
    let plan = observe::plan(&state, &runner, &sources, 1).await;
    // A server stricter than the manifest's range (documented ranges disagree).
    let mut plan = plan;
    if let Step::Change(c) = &mut plan.hosts[0].steps[0] {
        for cmd in &mut c.commands {
            for p in &mut cmd.params {
                if p.value == exctl_pwsh::Arg::Int(20000) {
                    p.value = exctl_pwsh::Arg::Int(30000);
                }
            }
        }
    }
    let (r, _) = run_apply(&plan, &state, &runner, &options(RestartPolicy::Auto)).await;
    assert_eq!(r.hosts[0].status, HostStatus::Failed);
    let steps = &r.hosts[0].steps;
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert!(
        steps[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("The value 30000 for MaxConnectionsPerUser is out of range"),
        "{:?}",
        steps[0].error
    );
    assert_eq!(steps[1].status, StepStatus::NotAttempted);
    assert!(server.lock().unwrap().log.is_empty());
}

#[tokio::test]
async fn the_store_restart_waits_for_every_database() {
    let (_d, _sources, state) = load("targets: [EX01]\n");
    let server = Arc::new(Mutex::new(Server::new()));
    let runner = InterpreterRunner(server.clone());
    let (r, events) = run_apply(
        &store_plan(),
        &state,
        &runner,
        &options(RestartPolicy::Auto),
    )
    .await;
    assert!(r.succeeded(), "{r:#?}\n{events:?}");
    assert!(
        events.contains(&"dismount DB1,DB2".to_string()),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("note EX01 holds the active copies of DB1")),
        "{events:?}"
    );
    // Up after 20 s, DB1 10 s later, DB2 20 s later; polls every 5 s.
    let progress: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("progress"))
        .collect();
    assert_eq!(
        progress.first().map(|s| s.as_str()),
        Some("progress MSExchangeIS StopPending Some((0, 2))")
    );
    assert!(events.contains(&"progress MSExchangeIS StartPending Some((0, 2))".to_string()));
    assert!(events.contains(&"progress MSExchangeIS Running Some((1, 2))".to_string()));
    assert_eq!(
        progress.last().map(|s| s.as_str()),
        Some("progress MSExchangeIS Running Some((2, 2))")
    );
    let st = server.lock().unwrap();
    assert_eq!(
        st.log,
        [
            "registry Maximum Allowed Service Sessions Per User=64",
            "registry MSExchangeIS=2024-05-01T08:00:00",
            "registry MSExchangeIS=MSExchangeMailboxAssistants",
            "stop MSExchangeMailboxAssistants",
            "stop MSExchangeIS",
            "start MSExchangeIS",
            "start MSExchangeMailboxAssistants",
            "registry -MSExchangeIS"
        ]
    );
    // The dependent service runs again.
    let assistants = st
        .services
        .iter()
        .find(|x| x.name == "MSExchangeMailboxAssistants");
    assert_eq!(assistants.map(|x| x.status(st.now)), Some("Running"));
}

#[tokio::test]
async fn a_store_that_does_not_come_back_fails_at_the_deadline() {
    let (_d, _sources, state) = load("targets: [EX01]\n");
    let server = Arc::new(Mutex::new(Server::new()));
    server.lock().unwrap().stuck = vec!["DB2"];
    let runner = InterpreterRunner(server.clone());
    let (r, events) = run_apply(
        &store_plan(),
        &state,
        &runner,
        &options(RestartPolicy::Auto),
    )
    .await;
    assert!(!r.succeeded());
    let step = &r.hosts[0].steps[1];
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(
        step.error.as_deref(),
        Some(
            "MSExchangeIS on EX01 did not come back within 120 s: the service is Running; databases still dismounted: DB2"
        ),
        "{events:?}"
    );
    // It waited on the server's clock until the deadline.
    assert!(server.lock().unwrap().now >= datetime_ticks(2024, 5, 1, 8, 2, 0));
}

#[tokio::test]
async fn a_store_that_does_not_stop_fails_at_the_deadline_without_starting_it() {
    let (_d, _sources, state) = load("targets: [EX01]\n");
    let server = Arc::new(Mutex::new(Server::new()));
    if let Some(is) = server.lock().unwrap().svc("MSExchangeIS") {
        is.stop_delay = 3600 * TICKS_PER_SEC;
    }
    let runner = InterpreterRunner(server.clone());
    let (r, events) = run_apply(
        &store_plan(),
        &state,
        &runner,
        &options(RestartPolicy::Auto),
    )
    .await;
    assert!(!r.succeeded());
    assert_eq!(
        r.hosts[0].steps[1].error.as_deref(),
        Some("MSExchangeIS on EX01 did not stop within 120 s: the service is StopPending"),
        "{events:?}"
    );
    let st = server.lock().unwrap();
    assert!(
        !st.log.iter().any(|l| l.starts_with("start")),
        "{:?}",
        st.log
    );
    // Bounded by the deadline, not by the service.
    assert!(st.now < datetime_ticks(2024, 5, 1, 8, 3, 0));
}

#[tokio::test]
async fn dag_maintenance_moves_the_active_copies_first() {
    let (_d, _sources, state) = load("targets: [EX01]\n");
    let server = Arc::new(Mutex::new(Server::new()));
    let runner = InterpreterRunner(server.clone());
    let mut opts = options(RestartPolicy::Auto);
    opts.move_active_databases = true;
    let (r, events) = run_apply(&store_plan(), &state, &runner, &opts).await;
    assert!(r.succeeded(), "{r:#?}\n{events:?}");
    // DB1 moved away: only DB2 dismounts here.
    assert!(events.contains(&"dismount DB2".to_string()), "{events:?}");
    let log = server.lock().unwrap().log.clone();
    assert_eq!(
        log[2..],
        [
            "StartDagServerMaintenance",
            // Recorded while under way, so a restart cut off is known (issue 12).
            "registry MSExchangeIS=MSExchangeMailboxAssistants",
            "stop MSExchangeMailboxAssistants",
            "stop MSExchangeIS",
            "start MSExchangeIS",
            "start MSExchangeMailboxAssistants",
            "registry -MSExchangeIS",
            "StopDagServerMaintenance"
        ]
    );
}

#[tokio::test]
async fn a_missing_snapin_is_a_host_error_before_any_step() {
    let (_d, _sources, state) = load("targets: [EX01]\n");
    let server = Arc::new(Mutex::new(Server::new()));
    server.lock().unwrap().snapin_fails = true;
    let runner = InterpreterRunner(server.clone());
    let (r, _) = run_apply(
        &store_plan(),
        &state,
        &runner,
        &options(RestartPolicy::Auto),
    )
    .await;
    let h = &r.hosts[0];
    assert_eq!(h.status, HostStatus::Failed);
    assert!(
        h.error.as_deref().unwrap_or_default().starts_with(
            "cannot load the Exchange cmdlets on EX01: The Windows PowerShell snap-in"
        ),
        "{:?}",
        h.error
    );
    assert!(h.steps.iter().all(|s| s.status == StepStatus::NotAttempted));
    assert!(server.lock().unwrap().log.is_empty());
}
