//! A fleet of simulated Exchange 2010 hosts in the calling process, for the multi-site
//! end-to-end tests and the benchmark: one `exctl_sim` server per host on a free
//! loopback port, each with its own organization, counters (`/sim/state`, also read
//! directly) and optional latency and snap-in load time; and a manifest repository of
//! many sites pointing at them.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, ScaledClock, Sp};
use exctl_sim::{HostOptions, RunningSim, SimConfig, SimState};

/// How a simulated host behaves.
#[derive(Debug, Clone)]
pub struct HostSetup {
    /// Its computer (and Exchange server) name.
    pub name: String,
    /// Its release.
    pub sp: Sp,
    /// Added to every WS-Management request.
    pub latency: Duration,
    /// How long loading the Exchange snap-in takes.
    pub snapin_delay: Duration,
    /// Real seconds per simulated second (restarts, Start-Sleep).
    pub time_scale: f64,
    /// Changes to the seeded organization before it serves.
    pub edit: Option<fn(&mut ExchangeOrg)>,
}

impl HostSetup {
    /// An SP3 host without latency, on fast simulated time.
    pub fn new(name: &str) -> HostSetup {
        HostSetup {
            name: name.to_string(),
            sp: Sp::Sp3,
            latency: Duration::ZERO,
            snapin_delay: Duration::ZERO,
            time_scale: 0.001,
            edit: None,
        }
    }
}

/// A running simulated host.
pub struct SimHost {
    /// Its name.
    pub name: String,
    /// The server.
    pub sim: RunningSim,
    /// Its organization.
    pub org: OrgHandle,
}

impl SimHost {
    /// `/sim/state`, as JSON.
    pub fn state(&self) -> serde_json::Value {
        serde_json::to_value(self.sim.state().snapshot()).unwrap_or_default()
    }
}

/// Starts one simulated host; the account is `CONTOSO\Administrator` with `password`.
pub async fn start(setup: &HostSetup, password: &str) -> SimHost {
    let config = SimConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        user: ("CONTOSO".into(), "Administrator".into()),
        password: password.to_string(),
        computer_name: setup.name.clone(),
        latency: setup.latency,
        // No delegation: the rollouts go through Exchange's own endpoint (access: psrp,
        // the default), which the double hop does not concern.
        ..SimConfig::default()
    };
    let clock = ClockRef(Arc::new(ScaledClock::with_scale(setup.time_scale)));
    let mut org = ExchangeOrg::seed_named(setup.sp, clock, &setup.name);
    if let Some(edit) = setup.edit {
        edit(&mut org);
    }
    let state = Arc::new(SimState::default());
    let org = OrgHandle::with_state(org, state.clone());
    let live = org.clone();
    state.set_provider("exchange", Arc::new(move || live.lock().state_section()));
    let sim = exctl_sim::serve_exchange(
        config,
        org.clone(),
        HostOptions {
            snapin_delay: setup.snapin_delay,
            ..HostOptions::default()
        },
        state,
    )
    .await
    .expect("the simulator starts");
    SimHost {
        name: setup.name.clone(),
        sim,
        org,
    }
}

/// A loopback URL nothing listens on (a port bound, then released).
pub fn closed_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}/wsman")
}

/// One site of a generated repository.
#[derive(Debug, Clone)]
pub struct SiteSetup {
    /// Its name.
    pub name: String,
    /// Labels, as `key: value` pairs.
    pub labels: Vec<(String, String)>,
    /// Baselines it lists.
    pub baselines: Vec<String>,
    /// (host name, release name, endpoint, credential reference).
    pub hosts: Vec<(String, String, String, String)>,
    /// A site override document's body, if any.
    pub override_body: Option<String>,
}

/// Writes a repository: the inventory of `sites`, the sample repository's baselines, and
/// each site's override document.
pub fn write_repository(dir: &Path, sites: &[SiteSetup]) {
    let mut inv = String::from("sites:\n");
    for s in sites {
        inv.push_str(&format!("  {}:\n", s.name));
        if !s.labels.is_empty() {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            inv.push_str(&format!("    labels: {{ {} }}\n", labels.join(", ")));
        }
        inv.push_str(&format!(
            "    baselines: [{}]\n    hosts:\n",
            s.baselines.join(", ")
        ));
        for (host, release, endpoint, credential) in &s.hosts {
            // access: psrp (the default) reaches the simulator's own Exchange endpoint,
            // which takes NTLM.
            inv.push_str(&format!(
                "      {host}:\n        endpoint: {endpoint}\n        user: CONTOSO\\Administrator\n        credential: {credential}\n        exchange: {release}\n        session_uri: {}\n        exchange_auth: ntlm\n",
                endpoint.replace("/wsman", "/PowerShell/")
            ));
        }
    }
    std::fs::create_dir_all(dir.join("baselines")).expect("directory");
    std::fs::create_dir_all(dir.join("sites")).expect("directory");
    std::fs::write(dir.join("inventory.yaml"), inv).expect("inventory");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/baselines");
    for entry in std::fs::read_dir(samples).expect("sample baselines") {
        let p = entry.expect("entry").path();
        if let Some(name) = p.file_name() {
            std::fs::copy(&p, dir.join("baselines").join(name)).expect("baseline copied");
        }
    }
    for s in sites {
        if let Some(body) = &s.override_body {
            std::fs::write(
                dir.join("sites").join(format!("{}.yaml", s.name)),
                format!("site: {}\n{body}", s.name),
            )
            .expect("site written");
        }
    }
}
