//! Apply against scripted hosts that keep state: each fake host answers the observe
//! script from its state and plays the apply script step by step (setting values,
//! restarting services on a fake clock, mounting databases), reporting through the same
//! records a server would. So these tests check the order, the stop at the first
//! failure, re-runs, stale plans, pending restarts, the maintenance window, the IS
//! timeout and the JSON result, end to end through the engine.

use std::collections::{BTreeMap, HashMap};
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
use exctl_engine::planfile::PlanFile;
use exctl_engine::render::{self, TextOptions};
use exctl_exchange::kind::{Action, AttrChange};
use exctl_exchange::kinds::imap;
use exctl_exchange::record::encode;
use exctl_exchange::services::INFORMATION_STORE;
use exctl_exchange::{RawValue, Value};
use exctl_pwsh::Command;

use crate::support;
use support::{command_in, text};

// ---------------------------------------------------------------------------------------
// The fake host.

#[derive(Debug, Clone)]
struct Svc {
    running: bool,
    auto: bool,
    started: i64,
}

#[derive(Debug, Clone)]
struct HostState {
    imap: BTreeMap<String, String>,
    imap_svc: Svc,
    is_svc: Svc,
    databases: Vec<(String, bool)>,
    registry: BTreeMap<String, String>,
    markers: BTreeMap<String, i64>,
    clock: i64,
    /// Set-ImapSettings refuses this parameter with this text.
    refuse: Option<(String, String)>,
    /// Registry writes of this value name fail with this text.
    refuse_registry: Option<(String, String)>,
    /// After an IS restart, this database does not mount again.
    stuck_database: Option<String>,
    /// What happened, in order.
    log: Vec<String>,
}

impl HostState {
    fn new() -> HostState {
        HostState {
            imap: [
                ("MaxConnectionsPerUser", "16"),
                ("MaxConnectionFromSingleIP", "2000"),
                ("Banner", "The Microsoft Exchange IMAP4 service is ready."),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            imap_svc: Svc {
                running: true,
                auto: true,
                started: 0,
            },
            is_svc: Svc {
                running: true,
                auto: true,
                started: 0,
            },
            databases: vec![("DB1".into(), true), ("DB2".into(), true)],
            registry: BTreeMap::new(),
            markers: BTreeMap::new(),
            clock: 8 * 3600,
            refuse: None,
            refuse_registry: None,
            stuck_database: None,
            log: Vec::new(),
        }
    }

    fn tick(&mut self) -> i64 {
        self.clock += 10;
        self.clock
    }
}

fn utc(t: i64) -> String {
    format!(
        "2024-05-01T{:02}:{:02}:{:02}",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

fn s(v: &str) -> RawValue {
    RawValue::Str(v.into())
}

fn list(v: &[String]) -> RawValue {
    RawValue::List(v.to_vec())
}

impl HostState {
    fn observe(&self, name: &str, script: &str) -> Vec<String> {
        let mut out = vec![
            "WARNING: noise".to_string(),
            encode(
                "__host",
                "AdminDisplayVersion",
                &s("Version 14.3 (Build 123.4)"),
            ),
        ];
        // The key the imap kind uses: plain identity or namespaced (both are accepted).
        for key in [name.to_string(), format!("imap_settings:{name}")] {
            out.push(encode(&key, "__exists", &s("True")));
            for (k, v) in &self.imap {
                out.push(encode(&key, k, &s(v)));
            }
        }
        for (svc, st) in [
            ("MSExchangeIMAP4", &self.imap_svc),
            ("MSExchangeIS", &self.is_svc),
        ] {
            let key = format!("__restart:{svc}");
            if !script.contains(&key) {
                continue;
            }
            out.push(encode(
                &key,
                "State",
                &s(if st.running { "Running" } else { "Stopped" }),
            ));
            out.push(encode(
                &key,
                "StartMode",
                &s(if st.auto { "Auto" } else { "Manual" }),
            ));
            if st.running {
                out.push(encode(&key, "StartedUtc", &s(&utc(st.started))));
            }
            if let Some(t) = self.markers.get(svc) {
                out.push(encode(&key, "MarkedUtc", &s(&utc(*t))));
            }
        }
        out
    }

    /// Plays an apply script the way PowerShell would run it.
    fn apply(&mut self, name: &str, script: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut ok = true;
        for chunk in script.split("# exctl step ").skip(1) {
            let (head, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let n = head.split(':').next().unwrap_or("").to_string();
            if head.contains("skipped (--restart never)") {
                assert!(!body.contains("$__sc.Stop()"), "a skipped restart ran");
                continue;
            }
            assert!(body.starts_with("if ($__exctl_ok) {"), "{body}");
            if !ok {
                continue;
            }
            out.push(encode("__apply", &n, &s("start")));
            match self.step(name, &n, body, &mut out) {
                Ok(()) => out.push(encode("__apply", &n, &s("ok"))),
                Err(e) => {
                    out.push(encode("__apply_error", &n, &s(&e)));
                    ok = false;
                }
            }
        }
        out
    }

    fn step(
        &mut self,
        host: &str,
        n: &str,
        body: &str,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        let t = self.tick();
        if let Some(c) = command_in(body, "Set-ImapSettings") {
            let set = c
                .params
                .iter()
                .filter(|p| !p.name.eq_ignore_ascii_case("Server"))
                .map(|p| (p.name.clone(), text(&p.value)));
            for (k, v) in set {
                if let Some((p, text)) = &self.refuse
                    && p == &k
                {
                    return Err(text.clone());
                }
                self.log.push(format!("set {k}={v}"));
                self.imap.insert(k, v);
            }
        }
        if let Some(c) = command_in(body, "Set-ItemProperty")
            && c.get("Path")
                .is_some_and(|p| text(p).starts_with("HKLM:\\SYSTEM"))
        {
            let name = c.get("Name").map_or_else(|| "?".to_string(), text);
            if let Some((p, text)) = &self.refuse_registry
                && *p == name
            {
                return Err(text.clone());
            }
            let value = c.get("Value").map(text).unwrap_or_default();
            self.log.push(format!("registry {name}={value}"));
            self.registry.insert(name, value);
        }
        for svc in ["MSExchangeIMAP4", "MSExchangeIS"] {
            if body.contains(&format!("-Name '{svc}' -Value ((Get-Date)")) {
                self.markers.insert(svc.to_string(), t);
            }
        }
        // The restart sequence (see exctl_engine::restart): Stop(), a wait, Start(), a wait.
        if body.contains("$__sc = Get-Service -Name 'MSExchangeIMAP4'") {
            if self.imap_svc.running || self.imap_svc.auto {
                self.imap_svc.running = true;
                self.imap_svc.started = self.tick();
                self.log.push("restart MSExchangeIMAP4".into());
                out.push(encode("__progress", n, &s("StartPending")));
                out.push(encode("__progress", n, &s("Running")));
            } else {
                out.push(encode(
                    "__note",
                    n,
                    &s("MSExchangeIMAP4 is not running and does not start automatically: nothing to restart, the settings take effect when it starts"),
                ));
            }
        }
        if body.contains("$__sc = Get-Service -Name 'MSExchangeIS'") {
            assert!(body.contains(&format!("Get-MailboxDatabase -Server '{host}' -Status")));
            if body.contains("StartDagServerMaintenance.ps1") {
                self.log.push("StartDagServerMaintenance".into());
            }
            let mounted: Vec<String> = self
                .databases
                .iter()
                .filter(|d| d.1)
                .map(|d| d.0.clone())
                .collect();
            out.push(encode("__dismount", n, &list(&mounted)));
            self.log.push("restart MSExchangeIS".into());
            self.is_svc.started = self.tick();
            out.push(encode("__missing", n, &list(&mounted)));
            out.push(encode("__progress", n, &s("StartPending")));
            let still: Vec<String> = mounted
                .iter()
                .filter(|d| Some(*d) == self.stuck_database.as_ref())
                .cloned()
                .collect();
            out.push(encode("__missing", n, &list(&still)));
            out.push(encode("__progress", n, &s("Running")));
            if !still.is_empty() {
                let secs = body
                    .split_once("(Get-Date).AddSeconds(")
                    .and_then(|x| x.1.split_once(')'))
                    .map(|x| x.0)
                    .unwrap_or("?");
                return Err(format!(
                    "MSExchangeIS on {host} did not come back within {secs} s: the service is Running; databases still dismounted: {}",
                    still.join(", ")
                ));
            }
            if body.contains("StopDagServerMaintenance.ps1") {
                self.log.push("StopDagServerMaintenance".into());
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Fleet {
    hosts: HashMap<String, Mutex<HostState>>,
    scripts: Mutex<Vec<(String, String)>>,
}

impl Fleet {
    fn with(hosts: &[&str]) -> Fleet {
        Fleet {
            hosts: hosts
                .iter()
                .map(|h| (h.to_string(), Mutex::new(HostState::new())))
                .collect(),
            scripts: Mutex::new(Vec::new()),
        }
    }

    fn state(&self, host: &str) -> std::sync::MutexGuard<'_, HostState> {
        self.hosts[host].lock().unwrap()
    }

    fn apply_scripts(&self) -> Vec<(String, String)> {
        self.scripts
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.contains("'__apply'"))
            .cloned()
            .collect()
    }
}

impl Runner for Fleet {
    fn run<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        self.scripts
            .lock()
            .unwrap()
            .push((host.name.clone(), script.to_string()));
        let result = match self.hosts.get(&host.name) {
            None => Err(RunError::new(format!("{}: no route to host", host.name))),
            Some(h) => {
                let mut h = h.lock().unwrap();
                let lines = if script.contains("'__apply'") {
                    h.apply(&host.name, script)
                } else {
                    h.observe(&host.name, script)
                };
                Ok(ScriptOutput {
                    stdout: lines.join("\r\n"),
                    stderr: String::new(),
                    exit_code: 0,
                })
            }
        };
        Box::pin(async move { result })
    }
}

// ---------------------------------------------------------------------------------------
// Manifests and helpers.

const INVENTORY: &str = "hosts:\n  EX01:\n    endpoint: https://ex01.contoso.local:5986/wsman\n    user: CONTOSO\\svc-exctl\n    credential: env:EXCTL_TEST_PASSWORD\n    exchange: 2010-sp3\n    site: lon\n  EX02:\n    endpoint: https://ex02.contoso.local:5986/wsman\n    user: CONTOSO\\svc-exctl\n    credential: env:EXCTL_TEST_PASSWORD\n    exchange: 2010-sp3\n    site: lon\n";
const SITE: &str = "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n";

struct Manifests {
    dir: tempfile::TempDir,
}

impl Manifests {
    fn new(site: &str) -> Manifests {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).unwrap();
        std::fs::write(dir.path().join("lon.yaml"), site).unwrap();
        Manifests { dir }
    }

    fn load(&self) -> (exctl_manifest::SourceMap, DesiredState) {
        let (sources, docs, mut diags) =
            exctl_manifest::load_paths(&[self.dir.path().to_path_buf()]);
        let state = desired::build(&sources, &docs, &mut diags);
        assert!(!diags.has_errors(), "{:?}", diags.as_slice());
        (sources, state)
    }
}

fn options(restart: RestartPolicy) -> ApplyOptions {
    let mut o = ApplyOptions::new(Arc::new(FixedClock(23 * 60)));
    o.restart = restart;
    o.restart_timeout = Duration::from_secs(60);
    o
}

/// Runs apply, collecting the events as text lines.
async fn run_apply(
    plan: &Plan,
    state: &DesiredState,
    fleet: &Fleet,
    opts: &ApplyOptions,
) -> (ApplyResult, Vec<String>) {
    let events = Mutex::new(Vec::new());
    let sink = |e: &Event<'_>| {
        let line = match e {
            Event::HostStarted { host, .. } => format!("host {host}"),
            Event::HostSkipped { host, reason } => format!("skip {host}: {reason}"),
            Event::StepStarted { host, index, .. } => format!("start {host} {index}"),
            Event::Dismounting {
                host,
                index,
                databases,
            } => format!("dismount {host} {index} {}", databases.join(",")),
            Event::Progress {
                host,
                index,
                service,
                status,
                databases,
                ..
            } => format!("progress {host} {index} {service} {status} {databases:?}"),
            Event::Note { host, index, text } => format!("note {host} {index} {text}"),
            Event::StepFinished { host, result, .. } => format!(
                "finish {host} {} {:?}{}",
                result.index,
                result.status,
                result
                    .error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            Event::HostFinished { result } => format!("done {} {:?}", result.host, result.status),
        };
        events.lock().unwrap().push(line);
    };
    let r = apply::apply(plan, &state.hosts, fleet, opts, &sink)
        .await
        .expect("apply runs");
    (r, events.into_inner().unwrap())
}

fn statuses(r: &ApplyResult, host: &str) -> Vec<StepStatus> {
    r.hosts
        .iter()
        .find(|h| h.host == host)
        .unwrap()
        .steps
        .iter()
        .map(|s| s.status)
        .collect()
}

/// A store limit change (a registry value requiring the IS restart), written by hand so
/// that these tests do not depend on the registry kind.
fn store_limit(name: &str, value: i64) -> Step {
    Step::Change(ChangeStep {
        kind: "registry_values",
        title: "Registry value",
        id: format!(
            "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem\\{name}"
        ),
        actions: vec![Action::Update],
        attributes: vec![AttrChange {
            name: "Value".into(),
            before: Some(Value::Int(16)),
            after: Some(Value::Int(value)),
            sensitive: false,
        }],
        unchanged_attributes: 0,
        reason: "registry values run last",
        requires_restart: Some(INFORMATION_STORE),
        no_restart: None,
        declared_at: "lon.yaml:9".into(),
        attributes_declared_at: Vec::new(),
        commands: vec![
            Command::new("Set-ItemProperty")
                .param(
                    "Path",
                    "HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem",
                )
                .param("Name", name)
                .param("Value", value),
        ],
    })
}

fn store_restart() -> Step {
    Step::Restart(RestartStep {
        service: INFORMATION_STORE,
        required_by: vec!["registry_values ...".into()],
        consequence: INFORMATION_STORE.consequence(),
        pending: None,
        warnings: Vec::new(),
        recover: None,
    })
}

fn host_plan(host: &str, steps: Vec<Step>) -> HostPlan {
    HostPlan {
        host: host.into(),
        site: Some("lon".into()),
        expected_version: exctl_exchange::Version::Sp3,
        observed_version: Some("Version 14.3 (Build 123.4)".into()),
        steps,
        in_sync: 0,
        errors: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn changes_then_the_restart_in_plan_order_then_converged() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let fleet = Fleet::with(&["EX01", "EX02"]);
    let plan = observe::plan(&state, &fleet, &sources, 4).await;
    assert_eq!(
        plan.hosts[0].steps.len(),
        2,
        "the change and the IMAP4 restart"
    );

    let (mut r, events) = run_apply(&plan, &state, &fleet, &options(RestartPolicy::Auto)).await;
    assert_eq!(
        events,
        [
            "host EX01",
            "start EX01 1",
            "finish EX01 1 Done",
            "start EX01 2",
            "progress EX01 2 MSExchangeIMAP4 StartPending None",
            "progress EX01 2 MSExchangeIMAP4 Running None",
            "finish EX01 2 Done",
            "done EX01 Done",
        ]
    );
    assert_eq!(
        fleet.state("EX01").log,
        ["set MaxConnectionsPerUser=40", "restart MSExchangeIMAP4"]
    );
    // One script per host for the changes.
    assert_eq!(fleet.apply_scripts().len(), 1);
    assert!(r.hosts[0].pending_restarts.is_empty());

    let fresh = observe::plan(&state, &fleet, &sources, 4).await;
    assert!(
        !fresh.has_changes(),
        "{}",
        render::text(&fresh, TextOptions::default())
    );
    apply::verify(&mut r, &fresh);
    let v = r.hosts[0].verification.as_ref().unwrap();
    assert!(v.converged && v.settled);
    assert!(r.succeeded());
}

#[tokio::test]
async fn running_apply_again_is_safe() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    let plan = observe::plan(&state, &fleet, &sources, 4).await;
    let opts = options(RestartPolicy::Auto);
    let (first, _) = run_apply(&plan, &state, &fleet, &opts).await;
    // The same steps once more (an operator re-running an old plan by hand): the Set-*
    // is idempotent, the restart harmless.
    let (second, _) = run_apply(&plan, &state, &fleet, &opts).await;
    assert!(first.succeeded() && second.succeeded());
    assert_eq!(fleet.state("EX01").imap["MaxConnectionsPerUser"], "40");
    // And a fresh apply has nothing to do.
    let fresh = observe::plan(&state, &fleet, &sources, 4).await;
    assert!(!fresh.has_changes());
    let (third, events) = run_apply(&fresh, &state, &fleet, &opts).await;
    assert!(events.is_empty());
    assert_eq!(third.hosts[0].status, HostStatus::NothingToDo);
    assert!(third.succeeded());
}

#[tokio::test]
async fn the_first_failure_stops_the_host_and_the_rollout() {
    let m = Manifests::new(SITE);
    let (_, state) = m.load();
    let fleet = Fleet::with(&["EX01", "EX02"]);
    fleet.state("EX01").refuse_registry = Some((
        "Maximum Allowed Sessions Per User".into(),
        "Requested registry access is not allowed.".into(),
    ));
    let plan = Plan::new(vec![
        host_plan(
            "EX01",
            vec![
                store_limit("Maximum Allowed Service Sessions Per User", 64),
                store_limit("Maximum Allowed Sessions Per User", 64),
                store_limit("Maximum Allowed Exchange Sessions Per Service", 20000),
                store_restart(),
            ],
        ),
        host_plan(
            "EX02",
            vec![store_limit("Maximum Allowed Service Sessions Per User", 64)],
        ),
    ]);
    let (r, events) = run_apply(&plan, &state, &fleet, &options(RestartPolicy::Auto)).await;
    assert_eq!(
        statuses(&r, "EX01"),
        [
            StepStatus::Done,
            StepStatus::Failed,
            StepStatus::NotAttempted,
            StepStatus::NotAttempted
        ]
    );
    let h = &r.hosts[0];
    assert_eq!(h.status, HostStatus::Failed);
    assert_eq!(
        h.steps[1].error.as_deref(),
        Some("Requested registry access is not allowed.")
    );
    // The first change was made and needs the store restart, which never ran.
    assert_eq!(h.pending_restarts, [INFORMATION_STORE]);
    // Nothing after the failure ran on EX01, and EX02 was not attempted at all.
    assert_eq!(
        fleet.state("EX01").log,
        ["registry Maximum Allowed Service Sessions Per User=64"]
    );
    assert!(fleet.state("EX02").log.is_empty());
    assert_eq!(r.hosts[1].status, HostStatus::NotAttempted);
    assert_eq!(statuses(&r, "EX02"), [StepStatus::NotAttempted]);
    assert!(
        events.contains(
            &"skip EX02: not attempted: EX01 failed first, and apply stops at the first failure"
                .to_string()
        )
    );
    assert_eq!(
        (r.summary.done, r.summary.failed, r.summary.not_attempted),
        (1, 1, 3)
    );
    assert!(!r.succeeded());
}

#[tokio::test]
async fn a_script_that_dies_mid_step_fails_that_step_with_the_servers_text() {
    struct Dies;
    impl Runner for Dies {
        fn run<'a>(
            &'a self,
            _host: &'a HostSpec,
            _script: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
            Box::pin(async {
                Ok(ScriptOutput {
                    stdout: [
                        encode("__apply", "1", &s("start")),
                        encode("__apply", "1", &s("ok")),
                        encode("__apply", "2", &s("start")),
                    ]
                    .join("\n"),
                    stderr: "The pipeline has been stopped.".into(),
                    exit_code: 1,
                })
            })
        }
    }
    let m = Manifests::new(SITE);
    let (_, state) = m.load();
    let plan = Plan::new(vec![host_plan(
        "EX01",
        vec![
            store_limit("Maximum Allowed Service Sessions Per User", 64),
            store_limit("Maximum Allowed Sessions Per User", 64),
            store_restart(),
        ],
    )]);
    let opts = options(RestartPolicy::Auto);
    let r = apply::apply(&plan, &state.hosts, &Dies, &opts, &|_: &Event<'_>| {})
        .await
        .unwrap();
    let steps = &r.hosts[0].steps;
    assert_eq!(steps[0].status, StepStatus::Done);
    assert_eq!(steps[1].status, StepStatus::Failed);
    assert_eq!(
        steps[1].error.as_deref(),
        Some("The pipeline has been stopped.")
    );
    assert_eq!(steps[2].status, StepStatus::NotAttempted);
}

#[tokio::test]
async fn a_stale_plan_is_refused_saying_exactly_what_moved() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    let plan = observe::plan(&state, &fleet, &sources, 4).await;
    let saved = PlanFile::new(&plan, &state, &sources, &["manifests".into()]).unwrap();
    // Through the file and back.
    let json = saved.to_json();
    let saved = PlanFile::read(&json).unwrap().unwrap();
    assert_eq!(saved.check_fresh(&plan), Ok(()));
    // A service this exctl does not know is refused when the file is read.
    let unknown = json.replace("\"MSExchangeIMAP4\"", "\"MSExchangeFoo\"");
    assert_ne!(unknown, json);
    let e = PlanFile::read(&unknown).unwrap_err().to_string();
    assert_eq!(
        e,
        "host EX01 of this plan file: unknown service 'MSExchangeFoo': exctl restarts MSExchangeIMAP4, MSExchangePOP3, MSExchangeIS; make the plan again with this exctl"
    );

    fleet
        .state("EX01")
        .imap
        .insert("MaxConnectionsPerUser".into(), "20".into());
    let fresh = observe::plan(&state, &fleet, &sources, 4).await;
    assert_eq!(
        saved.check_fresh(&fresh),
        Err(vec![
            "EX01 imap_settings EX01 MaxConnectionsPerUser: the plan expected 16, the server now has 20"
                .to_string()
        ])
    );

    // Someone else already set the desired value: nothing of the plan is needed any more.
    fleet
        .state("EX01")
        .imap
        .insert("MaxConnectionsPerUser".into(), "40".into());
    let fresh = observe::plan(&state, &fleet, &sources, 4).await;
    assert_eq!(
        saved.check_fresh(&fresh),
        Err(vec![
            "EX01 imap_settings EX01 MaxConnectionsPerUser: the plan expected 16, the server now has 40".to_string(),
            "EX01 MSExchangeIMAP4: the plan expected a restart, the server no longer needs one".to_string(),
        ])
    );

    // An attribute the plan relied on being in sync moved too.
    fleet
        .state("EX01")
        .imap
        .insert("MaxConnectionsPerUser".into(), "16".into());
    let m2 = Manifests::new(
        "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n  MaxConnectionFromSingleIP: 2000\n",
    );
    let (sources2, state2) = m2.load();
    let plan2 = observe::plan(&state2, &fleet, &sources2, 4).await;
    let saved2 = PlanFile::new(&plan2, &state2, &sources2, &[]).unwrap();
    fleet
        .state("EX01")
        .imap
        .insert("MaxConnectionFromSingleIP".into(), "50".into());
    let fresh2 = observe::plan(&state2, &fleet, &sources2, 4).await;
    assert_eq!(
        saved2.check_fresh(&fresh2),
        Err(vec![
            "EX01 imap_settings EX01 MaxConnectionFromSingleIP: the plan expected 2000, the server now has 50".to_string()
        ])
    );
}

#[test]
fn changed_manifests_are_refused_naming_the_file() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let plan = Plan::new(vec![host_plan("EX01", Vec::new())]);
    let saved = PlanFile::new(&plan, &state, &sources, &[]).unwrap();
    assert_eq!(saved.check_manifests(&sources), Ok(()));
    assert_eq!(saved.manifests.len(), 2);
    assert!(saved.manifests.iter().all(|d| d.sha256.len() == 64));

    std::fs::write(
        m.dir.path().join("lon.yaml"),
        "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 80\n",
    )
    .unwrap();
    std::fs::write(m.dir.path().join("new.yaml"), "targets: [EX02]\n").unwrap();
    let (sources2, _) = m.load();
    let problems = saved.check_manifests(&sources2).unwrap_err();
    let lon = m.dir.path().join("lon.yaml").display().to_string();
    let new = m.dir.path().join("new.yaml").display().to_string();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "{lon}: this manifest changed since the plan was made (SHA-256 "
        )),
        "{problems:?}"
    );
    assert_eq!(
        problems[1],
        format!("{new}: this manifest is new since the plan was made")
    );

    std::fs::remove_file(m.dir.path().join("lon.yaml")).unwrap();
    std::fs::remove_file(m.dir.path().join("new.yaml")).unwrap();
    let (sources3, _) = m.load();
    assert_eq!(
        saved.check_manifests(&sources3),
        Err(vec![format!(
            "{lon}: the plan was made from this manifest, which is no longer there"
        )])
    );
}

#[test]
fn the_plan_file_holds_what_apply_needs_and_no_secret() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let mut secret = store_limit("Password", 1);
    if let Step::Change(c) = &mut secret {
        c.attributes[0].sensitive = true;
        c.attributes[0].after = Some(Value::Str("Hunter2-Secret".into()));
        c.commands = vec![Command::new("Set-Thing").param("Password", "Hunter2-Secret")];
    }
    let plan = Plan::new(vec![host_plan(
        "EX01",
        vec![
            store_limit("Maximum Allowed Sessions Per User", 64),
            secret,
            store_restart(),
        ],
    )]);
    let pf = PlanFile::new(&plan, &state, &sources, &["manifests".into()]).unwrap();
    let text = pf.to_json();
    assert!(!text.contains("Hunter2-Secret"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "exctl-plan");
    assert_eq!(v["format_version"], 3);
    assert_eq!(
        v["hosts"][0]["endpoint"],
        "https://ex01.contoso.local:5986/wsman"
    );
    assert_eq!(v["hosts"][0]["user"], "CONTOSO\\svc-exctl");
    let steps = &v["hosts"][0]["steps"];
    assert_eq!(steps[0]["attributes"][0]["before"], 16);
    // The commands as data, each parameter with its typed value.
    assert_eq!(steps[0]["commands"][0]["name"], "Set-ItemProperty");
    assert_eq!(steps[0]["commands"][0]["params"][2]["name"], "Value");
    assert_eq!(steps[0]["commands"][0]["params"][2]["value"], 64);
    assert_eq!(steps[1]["commands"], serde_json::Value::Null);
    assert_eq!(steps[1]["attributes"][0]["after_text"], "(sensitive)");
    assert_eq!(steps[2]["type"], "restart");
    assert_eq!(steps[2]["service"], "MSExchangeIS");
}

#[tokio::test]
async fn restart_never_leaves_the_restart_pending_and_the_next_plan_shows_it() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    let plan = observe::plan(&state, &fleet, &sources, 4).await;
    let (mut r, _) = run_apply(&plan, &state, &fleet, &options(RestartPolicy::Never)).await;
    assert_eq!(
        statuses(&r, "EX01"),
        [StepStatus::Done, StepStatus::Skipped]
    );
    assert_eq!(r.hosts[0].pending_restarts, [imap::SERVICE]);
    let script = &fleet.apply_scripts()[0].1;
    assert!(!script.contains("Restart-Service"));
    assert!(script.contains("LastChangeRequiringRestart"));
    assert_eq!(fleet.state("EX01").log, ["set MaxConnectionsPerUser=40"]);

    // The server remembers: the next plan shows the restart, with nothing else.
    let next = observe::plan(&state, &fleet, &sources, 4).await;
    let steps = &next.hosts[0].steps;
    assert_eq!(steps.len(), 1);
    let Step::Restart(rs) = &steps[0] else {
        panic!("a restart step")
    };
    assert_eq!(rs.service, imap::SERVICE);
    assert!(rs.required_by.is_empty());
    assert_eq!(
        rs.pending.as_deref(),
        Some(
            "exctl changed settings at 2024-05-01T08:00:10 (server time), after MSExchangeIMAP4 started at 2024-05-01T00:00:00"
        )
    );
    let text = render::text(&next, TextOptions::default());
    assert!(text.contains("↻ restart MSExchangeIMAP4"), "{text}");
    assert!(
        text.contains("pending from before: exctl changed settings"),
        "{text}"
    );

    // Verification says so, and it is what --restart never asked for.
    apply::verify(&mut r, &next);
    let v = r.hosts[0].verification.as_ref().unwrap();
    assert!(!v.converged && v.settled);
    assert!(v.remaining[0].starts_with("restart MSExchangeIMAP4: skipped by --restart never"));
    assert!(r.succeeded());

    // Applying that plan restarts the service once, and then nothing is left.
    let (r2, _) = run_apply(&next, &state, &fleet, &options(RestartPolicy::Auto)).await;
    assert!(r2.succeeded());
    assert_eq!(
        fleet.state("EX01").log,
        ["set MaxConnectionsPerUser=40", "restart MSExchangeIMAP4"]
    );
    assert!(
        !observe::plan(&state, &fleet, &sources, 4)
            .await
            .has_changes()
    );
}

#[tokio::test]
async fn a_stopped_manual_imap4_is_not_started() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    {
        let mut h = fleet.state("EX01");
        h.imap_svc.running = false;
        h.imap_svc.auto = false;
    }
    let plan = observe::plan(&state, &fleet, &sources, 4).await;
    // The plan knows: no restart step, and the change says why.
    let steps = &plan.hosts[0].steps;
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Restart(_))),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| matches!(s, Step::Change(c)
            if c.no_restart.as_deref().is_some_and(|w| w.starts_with("MSExchangeIMAP4 is Stopped")))),
        "{steps:?}"
    );
    let (r, _) = run_apply(&plan, &state, &fleet, &options(RestartPolicy::Auto)).await;
    assert!(r.succeeded());
    assert_eq!(fleet.state("EX01").log, ["set MaxConnectionsPerUser=40"]);
    // A stopped service owes no restart: it reads its settings when it starts.
    assert!(
        !observe::plan(&state, &fleet, &sources, 4)
            .await
            .has_changes()
    );
}

#[tokio::test]
async fn an_information_store_restart_outside_the_window_is_refused_before_any_change() {
    let m = Manifests::new(SITE);
    let (_, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    let plan = Plan::new(vec![host_plan(
        "EX01",
        vec![
            store_limit("Maximum Allowed Service Sessions Per User", 64),
            store_restart(),
        ],
    )]);
    let mut opts = options(RestartPolicy::Auto);
    opts.maintenance_window = Some("22:00-04:00".parse().unwrap());
    opts.clock = Arc::new(FixedClock(14 * 60 + 3));
    let (r, events) = run_apply(&plan, &state, &fleet, &opts).await;
    let h = &r.hosts[0];
    assert_eq!(h.status, HostStatus::Refused);
    assert_eq!(
        h.error.as_deref(),
        Some(
            "refused before any change: the Information Store restart of EX01 is outside the maintenance window 22:00-04:00 (it is 14:03 on this machine); nothing was changed on EX01"
        )
    );
    assert_eq!(
        statuses(&r, "EX01"),
        [StepStatus::NotAttempted, StepStatus::NotAttempted]
    );
    assert!(fleet.apply_scripts().is_empty(), "nothing ran on the host");
    assert_eq!(events.len(), 1);
    assert!(!r.succeeded());

    // Inside the window it runs; with --restart never the window does not matter.
    opts.clock = Arc::new(FixedClock(23 * 60 + 30));
    let (r, events) = run_apply(&plan, &state, &fleet, &opts).await;
    assert!(r.succeeded(), "{r:?}");
    assert!(events.contains(&"dismount EX01 2 DB1,DB2".to_string()));
    assert!(events.contains(&"progress EX01 2 MSExchangeIS StartPending Some((0, 2))".to_string()));
    assert!(events.contains(&"progress EX01 2 MSExchangeIS Running Some((2, 2))".to_string()));
    opts.clock = Arc::new(FixedClock(12 * 60));
    opts.restart = RestartPolicy::Never;
    let (r, _) = run_apply(&plan, &state, &fleet, &opts).await;
    assert_eq!(
        statuses(&r, "EX01"),
        [StepStatus::Done, StepStatus::Skipped]
    );
}

#[tokio::test]
async fn an_information_store_that_does_not_come_back_fails_loudly() {
    let m = Manifests::new(SITE);
    let (_, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    fleet.state("EX01").stuck_database = Some("DB2".into());
    let plan = Plan::new(vec![host_plan(
        "EX01",
        vec![
            store_limit("Maximum Allowed Service Sessions Per User", 64),
            store_restart(),
        ],
    )]);
    let (r, events) = run_apply(&plan, &state, &fleet, &options(RestartPolicy::Auto)).await;
    let h = &r.hosts[0];
    assert_eq!(h.status, HostStatus::Failed);
    assert_eq!(statuses(&r, "EX01"), [StepStatus::Done, StepStatus::Failed]);
    assert_eq!(
        h.steps[1].error.as_deref(),
        Some(
            "MSExchangeIS on EX01 did not come back within 60 s: the service is Running; databases still dismounted: DB2"
        )
    );
    assert!(events.contains(&"progress EX01 2 MSExchangeIS Running Some((1, 2))".to_string()));
    assert_eq!(h.pending_restarts, [INFORMATION_STORE]);
    assert!(!r.succeeded());
}

#[tokio::test]
async fn dag_maintenance_wraps_the_store_restart_when_asked() {
    let m = Manifests::new(SITE);
    let (_, mut state) = m.load();
    // The DAG scripts need the Exchange Management Shell in the host's session: the
    // snap-in route (psrp, the default, is refused with the option).
    for h in state.hosts.values_mut() {
        h.access = exctl_engine::desired::Access::Snapin;
    }
    let fleet = Fleet::with(&["EX01"]);
    let plan = Plan::new(vec![host_plan(
        "EX01",
        vec![
            store_limit("Maximum Allowed Service Sessions Per User", 64),
            store_restart(),
        ],
    )]);
    let mut opts = options(RestartPolicy::Auto);
    opts.move_active_databases = true;
    let (r, _) = run_apply(&plan, &state, &fleet, &opts).await;
    assert!(r.succeeded());
    assert_eq!(
        fleet.state("EX01").log,
        [
            "registry Maximum Allowed Service Sessions Per User=64",
            "StartDagServerMaintenance",
            "restart MSExchangeIS",
            "StopDagServerMaintenance"
        ]
    );
}

fn zero_durations(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k.ends_with("duration_ms") && x.is_number() {
                    *x = 0.into();
                } else {
                    zero_durations(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(zero_durations),
        _ => {}
    }
}

#[tokio::test]
async fn the_json_result() {
    let m = Manifests::new(SITE);
    let (_, state) = m.load();
    let fleet = Fleet::with(&["EX01", "EX02"]);
    fleet.state("EX01").refuse_registry = Some((
        "Maximum Allowed Sessions Per User".into(),
        "Requested registry access is not allowed.".into(),
    ));
    let plan = Plan::new(vec![
        host_plan(
            "EX01",
            vec![
                store_limit("Maximum Allowed Service Sessions Per User", 64),
                store_limit("Maximum Allowed Sessions Per User", 64),
                store_restart(),
            ],
        ),
        host_plan(
            "EX02",
            vec![store_limit("Maximum Allowed Service Sessions Per User", 64)],
        ),
    ]);
    let (mut r, _) = run_apply(&plan, &state, &fleet, &options(RestartPolicy::Auto)).await;
    // What a plan made right after would show.
    let mut owed = store_restart();
    if let Step::Restart(rs) = &mut owed {
        rs.required_by.clear();
        rs.pending = Some("exctl changed settings at 2024-05-01T08:00:10 (server time), after MSExchangeIS started at 2024-05-01T00:00:00".into());
    }
    let fresh = Plan::new(vec![
        host_plan(
            "EX01",
            vec![store_limit("Maximum Allowed Sessions Per User", 64), owed],
        ),
        host_plan(
            "EX02",
            vec![store_limit("Maximum Allowed Service Sessions Per User", 64)],
        ),
    ]);
    apply::verify(&mut r, &fresh);
    let mut json = serde_json::to_value(&r).unwrap();
    zero_durations(&mut json);
    json["exctl_version"] = "(version)".into();
    insta::assert_json_snapshot!("apply_result", json);
}

#[test]
fn the_apply_script() {
    let m = Manifests::new(SITE);
    let (_, state) = m.load();
    let steps = vec![
        store_limit("Maximum Allowed Service Sessions Per User", 64),
        Step::Restart(RestartStep {
            service: imap::SERVICE,
            required_by: vec![],
            consequence: imap::SERVICE.consequence(),
            pending: None,
            warnings: vec![],
            recover: None,
        }),
        store_restart(),
    ];
    let script = apply::apply_script(&state.hosts["EX01"], &steps, &options(RestartPolicy::Auto));
    assert!(script.starts_with(exctl_exchange::record::PRELUDE));
    insta::assert_snapshot!("apply_script", script);
}

/// A connection that is lost while the apply script runs: the host plays the whole script
/// (the script goes on without the client), but only the first `deliver` lines of its
/// output arrive before the transport reports a loss whose outcome is unknown.
struct LosesConnection {
    fleet: Fleet,
    deliver: usize,
    host_acts: bool,
}

impl Runner for LosesConnection {
    fn run<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        self.fleet.run(host, script)
    }

    fn run_streaming<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
        on_line: observe::LineSink<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        Box::pin(async move {
            let lines = if self.host_acts {
                self.fleet.state(&host.name).apply(&host.name, script)
            } else {
                Vec::new()
            };
            for line in lines.iter().take(self.deliver) {
                on_line(line);
            }
            Err(RunError::outcome_unknown(format!(
                "{}: the connection was reset while receiving output",
                host.name
            )))
        })
    }
}

#[tokio::test]
async fn a_lost_connection_makes_the_outcome_unknown_and_the_fresh_observation_settles_it() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let runner = LosesConnection {
        fleet: Fleet::with(&["EX01"]),
        deliver: 1,
        host_acts: true,
    };
    let plan = observe::plan(&state, &runner, &sources, 4).await;
    assert_eq!(plan.hosts[0].steps.len(), 2);
    let opts = options(RestartPolicy::Auto);
    let mut r = apply::apply(&plan, &state.hosts, &runner, &opts, &|_: &Event<'_>| {})
        .await
        .unwrap();
    let steps = &r.hosts[0].steps;
    // Step 1 started and never reported; step 2 may have run after the loss: neither is
    // "failed" nor "not attempted".
    assert_eq!(steps[0].status, StepStatus::Unknown, "{steps:#?}");
    assert_eq!(steps[1].status, StepStatus::Unknown, "{steps:#?}");
    assert!(
        steps[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("its outcome is unknown")),
        "{steps:#?}"
    );
    assert_eq!(r.hosts[0].status, HostStatus::Failed);
    assert_eq!(r.summary.unknown, 2);
    assert!(!r.succeeded());
    // The host went on: observed again, both are in place.
    let fresh = observe::plan(&state, &runner, &sources, 4).await;
    apply::verify(&mut r, &fresh);
    let steps = &r.hosts[0].steps;
    assert_eq!(
        steps[0].notes,
        ["observed again after the loss: the change is in place"]
    );
    assert_eq!(
        steps[1].notes,
        ["observed again after the loss: no restart is owed"]
    );
    let v = r.hosts[0].verification.as_ref().unwrap();
    assert!(v.converged, "{v:#?}");
    assert!(v.notes.iter().any(|n| n.contains("was lost during apply")));
}

#[tokio::test]
async fn a_lost_connection_before_anything_ran_is_settled_as_not_in_place() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let runner = LosesConnection {
        fleet: Fleet::with(&["EX01"]),
        deliver: 0,
        host_acts: false,
    };
    let plan = observe::plan(&state, &runner, &sources, 4).await;
    let opts = options(RestartPolicy::Auto);
    let mut r = apply::apply(&plan, &state.hosts, &runner, &opts, &|_: &Event<'_>| {})
        .await
        .unwrap();
    assert_eq!(
        statuses(&r, "EX01"),
        [StepStatus::Unknown, StepStatus::Unknown]
    );
    let fresh = observe::plan(&state, &runner, &sources, 4).await;
    apply::verify(&mut r, &fresh);
    let steps = &r.hosts[0].steps;
    assert_eq!(
        steps[0].notes,
        ["observed again after the loss: the change is not in place"]
    );
    assert_eq!(
        steps[1].notes,
        ["observed again after the loss: the restart is still owed"]
    );
    let v = r.hosts[0].verification.as_ref().unwrap();
    assert!(!v.converged);
    assert!(
        v.remaining
            .iter()
            .any(|x| x.contains("its step's outcome was unknown, and the server does not show it")),
        "{v:#?}"
    );
}

#[tokio::test]
async fn a_connection_that_cannot_be_made_attempts_nothing() {
    let m = Manifests::new(SITE);
    let (sources, state) = m.load();
    let fleet = Fleet::with(&["EX01"]);
    let plan = observe::plan(&state, &fleet, &sources, 4).await;
    // EX01 is planned, then unreachable: nothing was sent, so nothing is unknown.
    let empty = Fleet::with(&[]);
    let opts = options(RestartPolicy::Auto);
    let r = apply::apply(&plan, &state.hosts, &empty, &opts, &|_: &Event<'_>| {})
        .await
        .unwrap();
    assert_eq!(
        statuses(&r, "EX01"),
        [StepStatus::NotAttempted, StepStatus::NotAttempted]
    );
    assert!(
        r.hosts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no route to host"))
    );
}
