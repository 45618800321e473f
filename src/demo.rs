//! `exctl demo`: the main job, end to end, against simulated hosts, with no Windows and
//! nothing leaving 127.0.0.1.
//!
//! For every host of the manifests it starts a simulated Exchange 2010 server of the
//! declared version (named as the host, on a free loopback port, with simulated time
//! running fast so that an Information Store restart takes a fraction of a second), points
//! the host at it, then plans, applies and plans again, exactly as `plan` and
//! `apply --auto-approve` would against real servers.

use crate::exit::ExitStatus;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use exctl_engine::apply::{ApplyOptions, FixedClock};
use exctl_engine::observe::Runner as _;
use exctl_engine::render::{self, TextOptions};
use exctl_engine::winrm::WinRmRunner;
use exctl_exchange::Version;
use exctl_secret::Secret;
use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, ScaledClock, Sp};
use exctl_sim::{RunningSim, SimConfig, SimState};

use crate::apply::{Out, print_event, text_report};
use crate::cli::DemoArgs;
use crate::progress::SeenStates;

/// The password of the simulated account; it exists only inside this process.
const DEMO_PASSWORD: &str = "Demo-Only-Pa55!";

fn sp(v: Version) -> Sp {
    match v {
        Version::Rtm => Sp::Rtm,
        Version::Sp1 => Sp::Sp1,
        Version::Sp2 => Sp::Sp2,
        Version::Sp3 => Sp::Sp3,
    }
}

fn color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn banner(text: &str) {
    println!("\n=== {text} ===\n");
}

pub async fn run(a: DemoArgs) -> ExitCode {
    let paths = if a.paths.is_empty() {
        vec![PathBuf::from("manifests")]
    } else {
        a.paths.clone()
    };
    let Some((sources, mut state)) = crate::plan::load(&paths, false, false) else {
        return ExitStatus::Failure.into();
    };
    let mut sims: Vec<RunningSim> = Vec::new();
    let mut passwords = HashMap::new();
    let names: Vec<String> = state.hosts.keys().cloned().collect();
    for key in names {
        let Some(host) = state.hosts.get_mut(&key) else {
            continue;
        };
        let (domain, user) = host
            .user
            .split_once('\\')
            .map(|(d, u)| (d.to_string(), u.to_string()))
            .unwrap_or_else(|| ("CONTOSO".to_string(), host.user.clone()));
        let config = SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            user: (domain, user),
            password: DEMO_PASSWORD.to_string(),
            computer_name: host.name.clone(),
            // No delegation, as on a host set up by default: the sample repository goes
            // through Exchange's own endpoint (access: psrp), which the double hop does
            // not concern.
            ..SimConfig::default()
        };
        let clock = ClockRef(Arc::new(ScaledClock::with_scale(a.time_scale)));
        let state = Arc::new(SimState::default());
        let org = OrgHandle::with_state(
            ExchangeOrg::seed_named(sp(host.version), clock, &host.name),
            state.clone(),
        );
        let sim = match exctl_sim::serve_exchange(config, org, Default::default(), state).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot start the simulator for {}: {e}", host.name);
                return ExitStatus::Failure.into();
            }
        };
        println!(
            "simulated {} ({}) at {}",
            host.name,
            host.version,
            sim.url()
        );
        host.endpoint = sim.url().to_string();
        host.auth = exctl_engine::Auth::Ntlm;
        host.ca_file = None;
        // Exchange's cmdlets go to the simulated server's own Exchange endpoint (access:
        // psrp, unless the manifests say otherwise), which takes NTLM as /wsman does.
        host.session_uri = Some(sim.url().replace("/wsman", "/PowerShell/"));
        host.exchange_auth = exctl_engine::Auth::Ntlm;
        passwords.insert(key.clone(), Secret::new(DEMO_PASSWORD));
        sims.push(sim);
    }
    let runner = WinRmRunner::new(passwords);

    banner("exctl plan");
    let plan = exctl_engine::observe::plan(&state, &runner, &sources, 8).await;
    print!(
        "{}",
        render::text(
            &plan,
            TextOptions {
                color: color(),
                explain: false,
            }
        )
    );
    if plan.has_errors() {
        runner.close().await;
        return ExitStatus::Failure.into();
    }

    banner("exctl apply --auto-approve");
    let mut opts = ApplyOptions::new(Arc::new(FixedClock(12 * 60)));
    opts.poll_interval = std::time::Duration::from_secs(2);
    let out = Out { json: false };
    let seen = std::sync::Mutex::new(SeenStates::default());
    let sink = move |e: &exctl_engine::apply::Event<'_>| print_event(out, &seen, e);
    let mut result =
        match exctl_engine::apply::apply(&plan, &state.hosts, &runner, &opts, &sink).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                runner.close().await;
                return ExitStatus::Failure.into();
            }
        };
    let fresh = exctl_engine::observe::plan(&state, &runner, &sources, 8).await;
    runner.close().await;
    exctl_engine::apply::verify(&mut result, &fresh);
    print!("{}", text_report(&result));

    banner("exctl plan (again)");
    print!(
        "{}",
        render::text(
            &fresh,
            TextOptions {
                color: color(),
                explain: false,
            }
        )
    );
    for sim in sims {
        sim.shutdown().await;
    }
    if result.succeeded() && !fresh.has_changes() && !fresh.has_errors() {
        println!("\nEvery host converged.");
        ExitStatus::Success.into()
    } else {
        ExitStatus::Failure.into()
    }
}
