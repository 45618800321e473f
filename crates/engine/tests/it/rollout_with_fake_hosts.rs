//! Many sites at once, against scripted hosts: a repository of baselines and site and
//! host overrides, merged with provenance; site selection; plans of 30 sites with bounded
//! parallelism where a slow or unreachable site holds up nobody; rollouts with a canary,
//! batches and a failure budget, with one unreachable site and one that refuses a cmdlet;
//! and the pull-request comment within GitHub's limit.
//!
//! The fake hosts keep IMAP4 settings and services, answer the observe script from that
//! state and play the apply script's Set-ImapSettings and IMAP4 restart, with a latency
//! per script on tokio's paused clock, so timings are exact and the tests fast.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exctl_engine::apply::{ApplyOptions, FixedClock};
use exctl_engine::desired::{self, DesiredState, HostSpec};
use exctl_engine::observe::{RunError, Runner, ScriptOutput};
use exctl_engine::report::{self, MarkdownOptions};
use exctl_engine::rollout::{
    self, PlanOptions, RepoPlan, RolloutOptions, RolloutResult, Selector, SiteEvent, SiteStatus,
};
use exctl_engine::show;
use exctl_exchange::RawValue;
use exctl_exchange::record::encode;
use exctl_manifest::{Diagnostics, SourceMap};

use crate::support;
use support::command_in;

// ---------------------------------------------------------------------------------------
// Fake hosts.

#[derive(Debug, Clone)]
struct Host {
    imap: BTreeMap<String, String>,
    started: i64,
    marked: Option<i64>,
    clock: i64,
    /// Set-ImapSettings refuses with this text.
    refuse: Option<String>,
}

impl Host {
    fn new() -> Host {
        Host {
            imap: [
                ("MaxConnectionsPerUser", "16"),
                ("MaxConnectionFromSingleIP", "2000"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            started: 0,
            marked: None,
            clock: 8 * 3600,
            refuse: None,
        }
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

impl Host {
    fn observe(&self, name: &str, script: &str) -> Vec<String> {
        let mut out = vec![encode(
            "__host",
            "AdminDisplayVersion",
            &s("Version 14.3 (Build 123.4)"),
        )];
        for key in [name.to_string(), format!("imap_settings:{name}")] {
            out.push(encode(&key, "__exists", &s("True")));
            for (k, v) in &self.imap {
                out.push(encode(&key, k, &s(v)));
            }
        }
        let key = "__restart:MSExchangeIMAP4";
        if script.contains(key) {
            out.push(encode(key, "State", &s("Running")));
            out.push(encode(key, "StartMode", &s("Auto")));
            out.push(encode(key, "StartedUtc", &s(&utc(self.started))));
            if let Some(t) = self.marked {
                out.push(encode(key, "MarkedUtc", &s(&utc(t))));
            }
        }
        out
    }

    fn apply(&mut self, script: &str) -> Vec<String> {
        let mut out = Vec::new();
        for chunk in script.split("# exctl step ").skip(1) {
            let (head, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let n = head.split(':').next().unwrap_or("").to_string();
            out.push(encode("__apply", &n, &s("start")));
            self.clock += 10;
            if let Some(c) = command_in(body, "Set-ImapSettings") {
                if let Some(text) = &self.refuse {
                    out.push(encode("__apply_error", &n, &s(text)));
                    return out;
                }
                for p in c
                    .params
                    .iter()
                    .filter(|p| !p.name.eq_ignore_ascii_case("Server"))
                {
                    self.imap.insert(p.name.clone(), support::text(&p.value));
                }
                self.marked = Some(self.clock);
            }
            if body.contains("$__sc = Get-Service -Name 'MSExchangeIMAP4'") {
                self.started = self.clock + 5;
                self.clock += 10;
                out.push(encode("__progress", &n, &s("Running")));
            }
            out.push(encode("__apply", &n, &s("ok")));
        }
        out
    }
}

/// Hosts by name; a name not here is unreachable. Every script takes `latency` (more
/// for the hosts in `slow`); the start and end of every apply script are recorded.
struct Fleet {
    hosts: HashMap<String, Mutex<Host>>,
    latency: Duration,
    slow: HashMap<String, Duration>,
    log: Mutex<Vec<(String, &'static str, Duration)>>,
    t0: tokio::time::Instant,
}

impl Fleet {
    fn new(names: &[String]) -> Fleet {
        Fleet {
            hosts: names
                .iter()
                .map(|n| (n.clone(), Mutex::new(Host::new())))
                .collect(),
            latency: Duration::from_millis(100),
            slow: HashMap::new(),
            log: Mutex::new(Vec::new()),
            t0: tokio::time::Instant::now(),
        }
    }

    fn host(&self, name: &str) -> std::sync::MutexGuard<'_, Host> {
        self.hosts[name].lock().unwrap()
    }
}

impl Runner for Fleet {
    fn run<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        Box::pin(async move {
            let applying = script.contains("'__apply'");
            if applying {
                self.log
                    .lock()
                    .unwrap()
                    .push((host.name.clone(), "start", self.t0.elapsed()));
            }
            let delay = self.slow.get(&host.name).copied().unwrap_or(self.latency);
            tokio::time::sleep(delay).await;
            let Some(h) = self.hosts.get(&host.name) else {
                return Err(RunError::new(format!(
                    "{} ({}): cannot connect: connection refused",
                    host.name, host.endpoint
                )));
            };
            let lines = {
                let mut h = h.lock().unwrap();
                if applying {
                    h.apply(script)
                } else {
                    h.observe(&host.name, script)
                }
            };
            if applying {
                self.log
                    .lock()
                    .unwrap()
                    .push((host.name.clone(), "end", self.t0.elapsed()));
            }
            Ok(ScriptOutput {
                stdout: lines.join("\r\n"),
                stderr: String::new(),
                exit_code: 0,
            })
        })
    }
}

// ---------------------------------------------------------------------------------------
// Repositories.

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn load(dir: &std::path::Path) -> (SourceMap, DesiredState, Diagnostics) {
    let (sources, docs, mut diags) = exctl_manifest::load_paths(&[dir.to_path_buf()]);
    let state = desired::build(&sources, &docs, &mut diags);
    (sources, state, diags)
}

fn load_ok(dir: &std::path::Path) -> (SourceMap, DesiredState) {
    let (sources, state, diags) = load(dir);
    assert!(
        !diags.has_errors(),
        "{}",
        exctl_manifest::render_short(&sources, &diags)
    );
    (sources, state)
}

const BASELINE: &str = "baseline: uccx\nimap_settings:\n  MaxConnectionsPerUser: 250\n  MaxConnectionFromSingleIP: 250\n";

/// `n` sites `s01..`, one host each (`S01EX`), labels ring=canary for the first two.
fn repository(n: usize) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = String::from("sites:\n");
    let mut hosts = Vec::new();
    for i in 1..=n {
        let ring = if i <= 2 { "canary" } else { "main" };
        let host = format!("S{i:02}EX");
        inv.push_str(&format!(
            "  s{i:02}:\n    labels: {{ ring: {ring}, region: r{} }}\n    baselines: [uccx]\n    hosts:\n      {host}:\n        endpoint: http://{}.example:5985/wsman\n        user: CONTOSO\\svc\n        credential: env:EXCTL_TEST_PASSWORD\n        exchange: 2010-sp3\n",
            i % 3,
            host.to_lowercase()
        ));
        hosts.push(host);
    }
    write(dir.path(), "inventory.yaml", &inv);
    write(dir.path(), "baselines/uccx.yaml", BASELINE);
    (dir, hosts)
}

fn apply_options() -> ApplyOptions {
    let mut o = ApplyOptions::new(Arc::new(FixedClock(12 * 60)));
    o.restart_timeout = Duration::from_secs(60);
    o
}

fn no_events() -> impl Fn(&SiteEvent<'_>) + Send + Sync {
    |_: &SiteEvent<'_>| {}
}

async fn plan_all(
    state: &DesiredState,
    sources: &SourceMap,
    fleet: &Fleet,
    parallel: usize,
) -> RepoPlan {
    let sites = rollout::select(state, &[], None).unwrap();
    rollout::plan_sites(
        state,
        &sites,
        fleet,
        sources,
        PlanOptions {
            parallel,
            timeout: None,
        },
        &no_events(),
    )
    .await
}

async fn rollout(
    state: &DesiredState,
    sources: &SourceMap,
    fleet: &Fleet,
    opts: RolloutOptions,
) -> (RepoPlan, RolloutResult, Vec<String>) {
    let plan = plan_all(state, sources, fleet, opts.parallel).await;
    let events = Mutex::new(Vec::new());
    let sink = |e: &SiteEvent<'_>| {
        let line = match e {
            SiteEvent::Finished { result } => {
                format!("finished {} {:?}", result.site, result.status)
            }
            SiteEvent::NotStarted { site, .. } => format!("not started {site}"),
            _ => return,
        };
        events.lock().unwrap().push(line);
    };
    let r = rollout::apply_sites(
        &plan,
        state,
        fleet,
        sources,
        &apply_options(),
        opts,
        None,
        &sink,
    )
    .await;
    (plan, r, events.into_inner().unwrap())
}

fn status_of(r: &RolloutResult) -> BTreeMap<String, SiteStatus> {
    r.sites.iter().map(|s| (s.site.clone(), s.status)).collect()
}

// ---------------------------------------------------------------------------------------
// The repository: layers, merge rules, provenance.

#[test]
fn baselines_then_site_then_host_with_the_origin_of_every_value() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inventory.yaml",
        "sites:\n  ams:\n    labels: { region: emea }\n    baselines: [uccx, extra]\n    hosts:\n      AMS1: { endpoint: 'http://a1:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp2 }\n      AMS2: { endpoint: 'http://a2:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp2 }\n",
    );
    write(
        dir.path(),
        "baselines/uccx.yaml",
        "baseline: uccx\nimap_settings:\n  MaxConnectionsPerUser: 250\n  MaxConnectionFromSingleIP: 250\nregistry_values:\n  - path: 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: Maximum Allowed Service Sessions Per User\n    type: dword\n    value: 250\n  - path: 'HKLM:\\SOFTWARE\\Contoso'\n    name: Old\n    type: dword\n    value: 1\n",
    );
    write(
        dir.path(),
        "baselines/extra.yaml",
        "baseline: extra\nimap_settings:\n  MaxConnectionFromSingleIP: 300\n",
    );
    write(
        dir.path(),
        "sites/ams.yaml",
        "site: ams\nimap_settings:\n  MaxConnectionsPerUser: 850\nregistry_values:\n  - path: 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem'\n    name: maximum allowed service sessions per user\n    value: 850\n  - path: 'HKLM:\\SOFTWARE\\Contoso'\n    name: Old\n    ensure: absent\n---\nhost: AMS1\nimap_settings:\n  MaxConnectionsPerUser: 900\n  Banner: hello\n",
    );
    let (sources, state) = load_ok(dir.path());
    let imap = |host: &str| -> BTreeMap<String, String> {
        state.resources[host]
            .iter()
            .find(|r| r.kind == "imap_settings")
            .unwrap()
            .attrs
            .iter()
            .map(|a| (a.name.clone(), a.value.to_string()))
            .collect()
    };
    // The host beats the site, which beats the baselines; a later baseline beats an earlier one.
    assert_eq!(
        imap("AMS1"),
        BTreeMap::from([
            ("Banner".to_string(), "\"hello\"".to_string()),
            ("MaxConnectionFromSingleIP".into(), "300".into()),
            ("MaxConnectionsPerUser".into(), "900".into()),
        ])
    );
    assert_eq!(imap("AMS2")["MaxConnectionsPerUser"], "850");
    assert!(!imap("AMS2").contains_key("Banner"));
    // The registry value merged by identity (another spelling of the same path and name),
    // keeping the baseline's type; `ensure: absent` replaced the other wholesale.
    let reg: Vec<_> = state.resources["AMS2"]
        .iter()
        .filter(|r| r.kind == "registry_values")
        .collect();
    assert_eq!(reg.len(), 2, "{reg:#?}");
    assert!(reg[0].attrs.iter().any(|a| a.value.to_string() == "850"));
    assert_eq!(
        exctl_exchange::kinds::registry_values::type_name(reg[0]),
        Some("dword")
    );
    assert_eq!(reg[1].ensure, exctl_exchange::kind::Ensure::Absent);
    assert!(reg[1].attrs.is_empty());

    // exctl show: every value with its layer and file:line.
    let t = show::find(&state, "ams").unwrap();
    let text = show::text(&state, &sources, &t);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in\n{text}"))
            .to_string()
    };
    assert!(
        text.starts_with("site ams (labels: region=emea; baselines: uccx, extra)\n"),
        "{text}"
    );
    let l = line("MaxConnectionsPerUser: 900");
    assert!(
        l.contains("# host AMS1") && l.contains("sites/ams.yaml:14"),
        "{l}"
    );
    let l = line("MaxConnectionFromSingleIP: 300");
    assert!(
        l.contains("# baseline extra") && l.contains("baselines/extra.yaml:3"),
        "{l}"
    );
    let l = line("type: dword");
    assert!(
        l.contains("# baseline uccx") && l.contains("baselines/uccx.yaml:8"),
        "{l}"
    );
    assert!(line("ensure: absent").contains("# site ams"));
    let json = show::json(&state, &sources, &show::find(&state, "AMS2").unwrap());
    assert_eq!(json["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["hosts"][0]["state"]["imap_settings"]["MaxConnectionsPerUser"]["from"],
        "site ams"
    );
    assert_eq!(
        json["hosts"][0]["state"]["imap_settings"]["MaxConnectionsPerUser"]["value"],
        850
    );
}

#[test]
fn lists_replace_or_extend_and_organization_values_go_through_the_first_host() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inventory.yaml",
        "sites:\n  lon:\n    baselines: [b]\nhosts:\n  L1: { endpoint: 'http://l1:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp3, site: lon }\n  L2: { endpoint: 'http://l2:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp3, site: lon }\n",
    );
    write(
        dir.path(),
        "b.yaml",
        "baseline: b\nimap_settings:\n  SSLBindings: ['0.0.0.0:993']\n  UnencryptedOrTLSBindings: ['0.0.0.0:143']\nthrottling_policies:\n  P:\n    IMAPMaxConcurrency: unlimited\n",
    );
    write(
        dir.path(),
        "lon.yaml",
        "site: lon\nimap_settings:\n  SSLBindings+: ['[::]:993']\n  UnencryptedOrTLSBindings: ['[::]:143']\n",
    );
    let (_, state) = load_ok(dir.path());
    let attr = |host: &str, name: &str| {
        state.resources[host]
            .iter()
            .find(|r| r.kind == "imap_settings")
            .unwrap()
            .attrs
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .value
            .to_string()
    };
    assert_eq!(attr("L2", "SSLBindings"), r#"["0.0.0.0:993", "[::]:993"]"#);
    assert_eq!(attr("L2", "UnencryptedOrTLSBindings"), r#"["[::]:143"]"#);
    let policies = |host: &str| {
        state.resources[host]
            .iter()
            .filter(|r| r.kind == "throttling_policies")
            .count()
    };
    assert_eq!((policies("L1"), policies("L2")), (1, 0));
}

#[test]
fn repository_mistakes_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inventory.yaml",
        "sites:\n  lon:\n    labels: { ring: 'a,b' }\n    baselines: [uccs]\n    hosts:\n      L1: { endpoint: 'http://l1:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp3, site: nyc }\n      L2: { endpoint: 'http://l2:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp3 }\n",
    );
    write(dir.path(), "b.yaml", BASELINE);
    write(
        dir.path(),
        "lon-a.yaml",
        "site: lon\nimap_settings:\n  MaxConnectionsPerUser: 1\n---\nsite: lno\nimap_settings: {}\n---\nhost: L2\nthrottling_policies:\n  P: {}\n---\nsite: lon\ntargets: [L1]\n---\nbaseline: x\nimap_setings: {}\n",
    );
    write(
        dir.path(),
        "lon-b.yaml",
        "site: lon\nimap_settings:\n  MaxConnectionsPerUser: 2\n",
    );
    let (sources, _, diags) = load(dir.path());
    let short = exctl_manifest::render_short(&sources, &diags);
    for expected in [
        "inventory.yaml:3:21: error[manifest::bad-label]",
        "inventory.yaml:4:17: error[manifest::unknown-baseline]: baseline 'uccs' is not declared by any document",
        "inventory.yaml:6:107: error[manifest::host-site-mismatch]: sites.lon.hosts.L1: this host is listed under site lon but says site: nyc",
        "lon-a.yaml:5:7: error[manifest::unknown-site]: site: 'lno' is not a site of the inventory",
        "lon-a.yaml:9:1: error[manifest::organization-in-host-override]",
        "lon-a.yaml:12:1: error[manifest::document-shape]: this document has both site and targets",
        "lon-a.yaml:16:1: error[manifest::unknown-key]: unknown key 'imap_setings'",
        "lon-b.yaml:3:26: error[manifest::conflicting-values]: imap_settings.MaxConnectionsPerUser is set twice at the same level (site lon), so neither wins",
    ] {
        assert!(short.contains(expected), "missing {expected} in\n{short}");
    }
    let hints: Vec<&str> = diags.iter().filter_map(|d| d.hint.as_deref()).collect();
    for h in [
        "did you mean 'uccx'?",
        "did you mean 'lon'?",
        "did you mean 'imap_settings'?",
    ] {
        assert!(hints.contains(&h), "{hints:?}");
    }
}

#[test]
fn targets_documents_keep_working_beside_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "inventory.yaml",
        "hosts:\n  EX01: { endpoint: 'http://e:5985/wsman', user: 'C\\u', credential: 'env:P', exchange: 2010-sp3 }\n",
    );
    write(
        dir.path(),
        "lon.yaml",
        "targets: [EX01]\nimap_settings:\n  MaxConnectionsPerUser: 40\n",
    );
    let (sources, state) = load_ok(dir.path());
    // A host without a site is a site of its own.
    assert_eq!(state.sites.len(), 1);
    assert_eq!(state.sites[0].name, "EX01");
    assert_eq!(state.resources["EX01"].len(), 1);
    let text = show::text(&state, &sources, &show::find(&state, "EX01").unwrap());
    assert!(text.contains("declared by targets: documents"), "{text}");
    assert!(text.contains("MaxConnectionsPerUser: 40"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Selection.

#[test]
fn sites_are_selected_by_name_host_and_labels_in_inventory_order() {
    let (dir, _) = repository(6);
    let (_, state) = load_ok(dir.path());
    let names = |names: &[&str], sel: Option<&str>| -> Result<Vec<String>, String> {
        let sel: Option<Selector> = sel.map(|s| s.parse().unwrap());
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        rollout::select(&state, &names, sel.as_ref())
            .map(|v| v.iter().map(|s| s.name.clone()).collect())
            .map_err(|e| e.to_string())
    };
    assert_eq!(names(&[], Some("ring=canary")).unwrap(), ["s01", "s02"]);
    assert_eq!(
        names(&[], Some("ring!=canary,region=r0")).unwrap(),
        ["s03", "s06"]
    );
    assert_eq!(names(&["s05,S02EX"], None).unwrap(), ["s02", "s05"]);
    assert_eq!(names(&[], Some("ring,!pilot")).unwrap().len(), 6);
    assert!(
        names(&["s7x"], None)
            .unwrap_err()
            .starts_with("'s7x' is neither a site nor a host of the inventory")
    );
    assert!(
        names(&[], Some("ring=none"))
            .unwrap_err()
            .contains("matches the selector 'ring=none'")
    );
    for bad in ["", "a=", "=b", "a=b,", "a b=c"] {
        assert!(bad.parse::<Selector>().is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Plans of many sites.

#[tokio::test(start_paused = true)]
async fn thirty_sites_plan_in_parallel_and_one_slow_or_unreachable_site_holds_up_nobody() {
    let (dir, hosts) = repository(30);
    let (sources, state) = load_ok(dir.path());
    let mut fleet = Fleet::new(&hosts);
    fleet.hosts.remove("S07EX"); // unreachable
    fleet.slow.insert("S03EX".into(), Duration::from_secs(30));
    let t0 = tokio::time::Instant::now();
    let plan = plan_all(&state, &sources, &fleet, 4).await;
    let took = t0.elapsed();
    // 29 sites of 100 ms on 3 free slots while the slow one holds the fourth:
    // ceil(29 / 3) x 100 ms = 1 s, well before the slow site's 30 s.
    assert_eq!(took, Duration::from_secs(30), "the slow site finishes last");
    assert_eq!(plan.sites.len(), 30);
    let names: Vec<&str> = plan.sites.iter().map(|s| s.site.as_str()).collect();
    assert_eq!(names[..3], ["s01", "s02", "s03"], "inventory order is kept");
    let broken: Vec<&str> = plan
        .sites
        .iter()
        .filter(|s| s.has_errors())
        .map(|s| s.site.as_str())
        .collect();
    assert_eq!(broken, ["s07"]);
    assert!(plan.sites[6].first_error().unwrap().contains("S07EX"));
    assert_eq!(plan.sites.iter().filter(|s| s.has_changes()).count(), 29);
    assert!(plan.sites[2].duration >= Duration::from_secs(30));
    assert!(plan.sites[3].duration < Duration::from_secs(1));

    // Without the slow site, the wall time is the ideal: ceil(30 / 4) x 100 ms.
    fleet.slow.clear();
    let t0 = tokio::time::Instant::now();
    let _ = plan_all(&state, &sources, &fleet, 4).await;
    assert_eq!(t0.elapsed(), Duration::from_millis(800));

    // A site that takes too long is an error of that site, named.
    fleet.slow.insert("S03EX".into(), Duration::from_secs(600));
    let sites = rollout::select(&state, &[], None).unwrap();
    let plan = rollout::plan_sites(
        &state,
        &sites,
        &fleet,
        &sources,
        PlanOptions {
            parallel: 8,
            timeout: Some(Duration::from_secs(5)),
        },
        &no_events(),
    )
    .await;
    let e = plan.sites[2].first_error().unwrap();
    assert!(e.contains("site s03 was not planned within 5 s"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Rollouts.

#[tokio::test(start_paused = true)]
async fn a_rollout_of_thirty_sites_with_a_canary_an_unreachable_and_a_failing_site() {
    let (dir, hosts) = repository(30);
    let (sources, state) = load_ok(dir.path());
    let mut fleet = Fleet::new(&hosts);
    fleet.hosts.remove("S07EX");
    fleet.host("S12EX").refuse =
        Some("The value of property 'MaxConnectionsPerUser' is out of range".into());
    let opts = RolloutOptions {
        parallel: 4,
        canary: 2,
        batch_size: None,
        max_failures: 3,
        plan_timeout: None,
    };
    let (_, r, events) = rollout(&state, &sources, &fleet, opts).await;
    let st = status_of(&r);
    assert_eq!(st["s07"], SiteStatus::Failed);
    assert_eq!(st["s12"], SiteStatus::Failed);
    assert_eq!(
        st.values().filter(|s| **s == SiteStatus::Done).count(),
        28,
        "{st:?}"
    );
    assert!(!r.succeeded());
    assert_eq!(
        (r.rollout.done, r.rollout.failed, r.rollout.not_started),
        (28, 2, 0)
    );
    let s07 = r.sites.iter().find(|s| s.site == "s07").unwrap();
    assert!(s07.error.as_deref().unwrap().starts_with("could not be planned; nothing was applied: S07EX (http://s07ex.example:5985/wsman): cannot connect"));
    let s12 = r.sites.iter().find(|s| s.site == "s12").unwrap();
    assert!(
        s12.error.as_deref().unwrap().contains("S12EX: step 1 (IMAP4 settings S12EX) failed: The value of property 'MaxConnectionsPerUser' is out of range"),
        "{:?}",
        s12.error
    );
    // The others converged: their hosts have the baseline's values.
    assert_eq!(fleet.host("S30EX").imap["MaxConnectionsPerUser"], "250");
    assert_eq!(fleet.host("S12EX").imap["MaxConnectionsPerUser"], "16");
    // The canaries (s01, s02) finished before any other site started.
    let log = fleet.log.lock().unwrap().clone();
    let canary_end = log
        .iter()
        .filter(|(h, e, _)| (h == "S01EX" || h == "S02EX") && *e == "end")
        .map(|x| x.2)
        .max()
        .unwrap();
    let others_start = log
        .iter()
        .filter(|(h, e, _)| h != "S01EX" && h != "S02EX" && *e == "start")
        .map(|x| x.2)
        .min()
        .unwrap();
    assert!(canary_end <= others_start, "{log:?}");
    assert!(r.sites[0].canary && r.sites[1].canary && !r.sites[2].canary);
    assert_eq!(events.len(), 30);
    // The JSON keeps format_version 1 with every host, and adds the sites.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["hosts"].as_array().unwrap().len(), 29);
    assert_eq!(json["sites"].as_array().unwrap().len(), 30);
    assert_eq!(json["rollout"]["failed"], 2);
    // The summary table names every site.
    let table = report::table(&report::rollout_rows(&r));
    assert!(table.starts_with("SITE"), "{table}");
    assert!(table.contains("s01 (canary)"), "{table}");
    let s12_row = table.lines().find(|l| l.starts_with("s12 ")).unwrap();
    assert!(s12_row.contains("FAILED"), "{s12_row}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_canary_stops_the_rollout() {
    let (dir, hosts) = repository(10);
    let (sources, state) = load_ok(dir.path());
    let fleet = Fleet::new(&hosts);
    fleet.host("S02EX").refuse = Some("Access is denied".into());
    let opts = RolloutOptions {
        parallel: 4,
        canary: 2,
        batch_size: None,
        max_failures: 5,
        plan_timeout: None,
    };
    let (_, r, _) = rollout(&state, &sources, &fleet, opts).await;
    let st = status_of(&r);
    assert_eq!(st["s01"], SiteStatus::Done);
    assert_eq!(st["s02"], SiteStatus::Failed);
    for i in 3..=10 {
        assert_eq!(st[&format!("s{i:02}")], SiteStatus::NotStarted);
    }
    let s03 = r.sites.iter().find(|s| s.site == "s03").unwrap();
    assert_eq!(
        s03.error.as_deref(),
        Some("not started: the canary failed: s02")
    );
    assert_eq!(fleet.host("S03EX").imap["MaxConnectionsPerUser"], "16");
}

#[tokio::test(start_paused = true)]
async fn no_new_site_starts_after_too_many_failures_and_running_ones_finish() {
    let (dir, hosts) = repository(12);
    let (sources, state) = load_ok(dir.path());
    let fleet = Fleet::new(&hosts);
    fleet.host("S02EX").refuse = Some("Access is denied".into());
    let opts = RolloutOptions {
        parallel: 3,
        canary: 0,
        batch_size: None,
        max_failures: 1,
        plan_timeout: None,
    };
    let (_, r, events) = rollout(&state, &sources, &fleet, opts).await;
    let st = status_of(&r);
    // s02 fails while s01 and s03 run: they finish, nothing new starts.
    assert_eq!(st["s01"], SiteStatus::Done);
    assert_eq!(st["s02"], SiteStatus::Failed);
    assert_eq!(st["s03"], SiteStatus::Done);
    let not_started: Vec<&str> = r
        .sites
        .iter()
        .filter(|s| s.status == SiteStatus::NotStarted)
        .map(|s| s.site.as_str())
        .collect();
    assert_eq!(not_started.len(), 9, "{st:?}");
    assert!(
        r.sites[5]
            .error
            .as_deref()
            .unwrap()
            .contains("1 site failed (--max-failures 1): s02")
    );
    assert!(events.iter().any(|e| e == "not started s12"));
}

/// Issue 12: a site that cannot be planned has failed before anything starts; when that
/// spends the budget, no site changes.
#[tokio::test(start_paused = true)]
async fn a_budget_spent_by_unplannable_sites_starts_nothing() {
    let (dir, hosts) = repository(12);
    let (sources, state) = load_ok(dir.path());
    let mut fleet = Fleet::new(&hosts);
    fleet.hosts.remove("S05EX");
    let opts = RolloutOptions {
        parallel: 3,
        canary: 0,
        batch_size: None,
        max_failures: 1,
        plan_timeout: None,
    };
    let (_, r, _) = rollout(&state, &sources, &fleet, opts).await;
    let st = status_of(&r);
    assert_eq!(st["s05"], SiteStatus::Failed);
    assert_eq!(
        (r.rollout.done, r.rollout.failed, r.rollout.not_started),
        (0, 1, 11),
        "{st:?}"
    );
    let s01 = r.sites.iter().find(|s| s.site == "s01").unwrap();
    assert_eq!(
        s01.error.as_deref(),
        Some(
            "not started: 1 site could not be planned before anything started (--max-failures 1): s05"
        )
    );
    assert_eq!(fleet.host("S01EX").imap["MaxConnectionsPerUser"], "16");
}

/// Issue 12: with the canary site unreachable, the next site does not become the canary:
/// the canary failed, and nothing else starts.
#[tokio::test(start_paused = true)]
async fn an_unplannable_canary_is_a_failed_canary() {
    let (dir, hosts) = repository(10);
    let (sources, state) = load_ok(dir.path());
    let mut fleet = Fleet::new(&hosts);
    fleet.hosts.remove("S01EX");
    let opts = RolloutOptions {
        parallel: 4,
        canary: 1,
        batch_size: None,
        max_failures: 5,
        plan_timeout: None,
    };
    let (_, r, _) = rollout(&state, &sources, &fleet, opts).await;
    let st = status_of(&r);
    assert_eq!(st["s01"], SiteStatus::Failed);
    assert!(r.sites[0].canary && !r.sites[1].canary);
    for i in 2..=10 {
        assert_eq!(st[&format!("s{i:02}")], SiteStatus::NotStarted, "{st:?}");
    }
    let s02 = r.sites.iter().find(|s| s.site == "s02").unwrap();
    assert_eq!(
        s02.error.as_deref(),
        Some("not started: the canary failed: s01 could not be planned")
    );
    assert_eq!(fleet.host("S02EX").imap["MaxConnectionsPerUser"], "16");
}

#[tokio::test(start_paused = true)]
async fn batches_start_when_the_previous_batch_has_finished() {
    let (dir, hosts) = repository(9);
    let (sources, state) = load_ok(dir.path());
    let mut fleet = Fleet::new(&hosts);
    // A slow site in the first batch holds the next batch back, not its own batch.
    fleet.slow.insert("S02EX".into(), Duration::from_secs(5));
    let opts = RolloutOptions {
        parallel: 8,
        canary: 0,
        batch_size: Some(3),
        max_failures: 1,
        plan_timeout: None,
    };
    let (_, r, _) = rollout(&state, &sources, &fleet, opts).await;
    assert!(r.succeeded(), "{:?}", status_of(&r));
    let log = fleet.log.lock().unwrap().clone();
    let at = |host: &str, what: &str| {
        log.iter()
            .find(|(h, e, _)| h == host && *e == what)
            .map(|x| x.2)
            .unwrap()
    };
    let batch_end = |hs: &[&str]| hs.iter().map(|h| at(h, "end")).max().unwrap();
    let batch_start = |hs: &[&str]| hs.iter().map(|h| at(h, "start")).min().unwrap();
    assert!(batch_end(&["S01EX", "S02EX", "S03EX"]) <= batch_start(&["S04EX", "S05EX", "S06EX"]));
    assert!(batch_end(&["S04EX", "S05EX", "S06EX"]) <= batch_start(&["S07EX", "S08EX", "S09EX"]));
    // Within a batch, sites run together.
    assert_eq!(at("S01EX", "start"), at("S03EX", "start"));
}

#[tokio::test(start_paused = true)]
async fn sites_without_changes_cost_nothing_and_a_second_rollout_has_nothing_to_do() {
    let (dir, hosts) = repository(5);
    let (sources, state) = load_ok(dir.path());
    let fleet = Fleet::new(&hosts);
    let (_, r, _) = rollout(&state, &sources, &fleet, RolloutOptions::default()).await;
    assert!(r.succeeded());
    let (plan, r, _) = rollout(&state, &sources, &fleet, RolloutOptions::default()).await;
    assert!(!plan.has_changes());
    assert!(r.sites.iter().all(|s| s.status == SiteStatus::NothingToDo));
    assert!(r.succeeded());
}

// ---------------------------------------------------------------------------------------
// The pull-request comment.

#[tokio::test(start_paused = true)]
async fn the_comment_has_a_section_per_site_with_changes_and_one_line_for_the_rest() {
    let (dir, hosts) = repository(6);
    let (sources, state) = load_ok(dir.path());
    let mut fleet = Fleet::new(&hosts);
    for h in ["S02EX", "S03EX", "S05EX", "S06EX"] {
        let mut host = fleet.host(h);
        host.imap
            .insert("MaxConnectionsPerUser".into(), "250".into());
        host.imap
            .insert("MaxConnectionFromSingleIP".into(), "250".into());
    }
    fleet.hosts.remove("S04EX");
    let plan = plan_all(&state, &sources, &fleet, 4).await;
    let md = report::markdown(&plan, &MarkdownOptions::default());
    assert!(md.starts_with("<!-- exctl-plan -->\n### exctl plan\n\n**Plan: 0 to create, 1 to update, 0 to delete, 1 restart. 1 host could not be planned.** 6 sites: 1 with changes, 4 without, 1 could not be planned.\n"), "{md}");
    assert!(
        md.contains("> **MSExchangeIMAP4** restarts on 1 host: S01EX (s01)."),
        "{md}"
    );
    // Errors first, then changes.
    let err = md
        .find("❌ <b>s04</b>: could not be planned (1 host)")
        .unwrap();
    let s01 = md
        .find("<b>s01</b>: 1 to update, 1 restart (1 host)")
        .unwrap();
    assert!(err < s01);
    assert!(
        md.contains("✅ **No changes** (4 sites): s02, s03, s05, s06\n"),
        "{md}"
    );
    // The order of the steps is explained once, at the end, collapsed.
    assert_eq!(md.matches("Order of the steps").count(), 1, "{md}");
    assert!(md.ends_with("</details>\n\n"), "{md}");
    assert!(!md.contains("<b>s02</b>"));
}

#[tokio::test(start_paused = true)]
async fn the_comment_of_two_hundred_sites_stays_within_the_limit_and_says_what_it_left_out() {
    let (dir, hosts) = repository(200);
    let (sources, state) = load_ok(dir.path());
    let fleet = Fleet::new(&hosts);
    let plan = plan_all(&state, &sources, &fleet, 16).await;
    let full = report::markdown(
        &plan,
        &MarkdownOptions {
            max_bytes: usize::MAX,
            full_plan: None,
        },
    );
    assert!(full.len() > report::GITHUB_COMMENT_LIMIT, "{}", full.len());
    let opts = MarkdownOptions {
        full_plan: Some("https://ci.example/run/42".into()),
        ..MarkdownOptions::default()
    };
    let md = report::markdown(&plan, &opts);
    assert!(md.len() <= report::GITHUB_COMMENT_LIMIT, "{}", md.len());
    assert!(md.chars().count() <= 65_536);
    assert!(
        md.contains("This comment is cut to fit GitHub's limit"),
        "{}",
        &md[md.len() - 2000..]
    );
    assert!(md.contains("[the full plan](https://ci.example/run/42)"));
    let shown = md.matches("<details open><summary><b>s").count();
    assert!(shown > 20 && shown < 200, "{shown}");
    // Every site is either shown or named as left out.
    assert!(
        md.contains(&format!(
            "{} sites with changes or errors are not shown",
            200 - shown
        )),
        "{}",
        &md[md.len() - 1500..]
    );
    // A tiny limit still gives a valid, bounded comment.
    let tiny = report::markdown(
        &plan,
        &MarkdownOptions {
            max_bytes: 300,
            full_plan: None,
        },
    );
    assert!(tiny.len() <= 300, "{}", tiny.len());
    assert!(tiny.starts_with("<!-- exctl-plan -->"));
    // Every budget gives a well-formed comment: the marker whole (an unclosed `<!--`
    // hides the whole comment) and every section closed.
    for max in (0..3000).chain((3000..70_000).step_by(997)) {
        let md = report::markdown(
            &plan,
            &MarkdownOptions {
                max_bytes: max,
                full_plan: Some("https://ci.example/run/42".into()),
            },
        );
        assert_well_formed(&md, max);
    }
}

/// A comment within `max` bytes, starting with the whole marker (or empty when not even
/// the marker fits), with every `<details>` and code block closed.
fn assert_well_formed(md: &str, max: usize) {
    assert!(md.len() <= max, "{max}: {}", md.len());
    if max > report::COMMENT_MARKER.len() {
        assert!(md.starts_with(report::COMMENT_MARKER), "{max}: {md}");
    }
    assert_eq!(
        md.matches("<!--").count(),
        md.matches("-->").count(),
        "{max}: {md}"
    );
    assert_eq!(
        md.matches("<details").count(),
        md.matches("</details>").count(),
        "{max}: {md}"
    );
    assert_eq!(md.matches("```").count() % 2, 0, "{max}: {md}");
}
