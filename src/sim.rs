//! `exctl sim`: the simulated Exchange 2010 host as a foreground server, for demos and
//! for end-to-end tests of the real binary.
//!
//! One organization (the seed, or `--state FILE`) serves both the WinRM endpoint, whose
//! `powershell.exe` runs scripts against it, and, with `--imap-listen`, the IMAP4
//! listener. Its counters (PowerShell processes, snap-in loads, cmdlets run, restarts)
//! appear in `/sim/state` under `sections.exchange`, computed when read.

use crate::exit::ExitStatus;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use exctl_sim::exchange::{ClockRef, ExchangeOrg, OrgHandle, ScaledClock, Sp};
use exctl_sim::{AuthScheme, ExchangeRole, HostOptions, SimConfig, SimState};

use crate::cli::{ExchangeRelease, SimArgs, SimAuthArg, SimRoleArg};

impl ExchangeRelease {
    fn sp(self) -> Sp {
        match self {
            ExchangeRelease::Rtm => Sp::Rtm,
            ExchangeRelease::Sp1 => Sp::Sp1,
            ExchangeRelease::Sp2 => Sp::Sp2,
            ExchangeRelease::Sp3 => Sp::Sp3,
        }
    }
}

/// Builds the organization the simulator serves.
fn organization(a: &SimArgs) -> Result<ExchangeOrg, String> {
    let mut org = base_organization(a)?;
    for (name, stop, start) in &a.exchange.service_timing {
        org.set_service_timing(None, name, *stop, *start)
            .map_err(|e| format!("--service-timing {name}: {}", e.message))?;
    }
    Ok(org)
}

fn base_organization(a: &SimArgs) -> Result<ExchangeOrg, String> {
    let x = &a.exchange;
    let clock = ClockRef(Arc::new(ScaledClock::with_scale(x.time_scale)));
    let Some(path) = &x.state else {
        let sp = x.exchange.map_or(Sp::Sp3, ExchangeRelease::sp);
        return Ok(ExchangeOrg::seed_named(sp, clock, &a.computer_name));
    };
    let mut org = ExchangeOrg::load_state_file(path, clock).map_err(|e| e.to_string())?;
    if let Some(release) = x.exchange
        && release.sp() != org.sp
    {
        return Err(format!(
            "{} describes Exchange 2010 {} (its 'sp', {} when absent) but --exchange says {}; make them agree",
            path.display(),
            org.sp,
            Sp::default(),
            release.sp()
        ));
    }
    org.set_host(&a.computer_name)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(org)
}

/// The environment variable with the simulated account's password.
pub const SIM_PASSWORD_ENV: &str = "EXCTL_SIM_PASSWORD";

pub fn config(a: &SimArgs) -> Result<SimConfig, String> {
    let kerberos = a.auth.contains(&SimAuthArg::Kerberos);
    // DOMAIN\NAME, or with Kerberos user@REALM; the NetBIOS domain of a realm is its first
    // label, as AD names them by default (LAB.TEST: LAB).
    let (domain, name, principal) = if let Some((d, n)) = a.user.split_once('\\') {
        (
            d.split('.').next().unwrap_or(d).to_string(),
            n.to_string(),
            format!("{n}@{}", d.to_ascii_uppercase()),
        )
    } else if let Some((n, realm)) = a.user.split_once('@')
        && kerberos
    {
        (
            realm
                .split('.')
                .next()
                .unwrap_or(realm)
                .to_ascii_uppercase(),
            n.to_string(),
            format!("{n}@{}", realm.to_ascii_uppercase()),
        )
    } else {
        return Err(format!(
            "--user must be DOMAIN\\NAME (or user@REALM with --auth kerberos), not '{}'",
            a.user
        ));
    };
    if kerberos && a.keytab.is_none() {
        return Err("--auth kerberos needs --keytab FILE with the service's keys".into());
    }
    let mut cfg = SimConfig {
        listen: a.listen,
        tls: a.tls,
        tls_self_issued: a.tls_self_issued,
        auth: a
            .auth
            .iter()
            .map(|s| match s {
                SimAuthArg::Basic => AuthScheme::Basic,
                SimAuthArg::Ntlm => AuthScheme::Ntlm,
                SimAuthArg::Kerberos => AuthScheme::Kerberos,
            })
            .collect(),
        user: (domain, name),
        keytab: a.keytab.clone(),
        kerberos_principal: kerberos.then_some(principal),
        max_envelope_size_kb: a.max_envelope_kb,
        max_shells_per_user: a.max_shells,
        latency: Duration::from_millis(a.latency_ms),
        allow_unencrypted: a.allow_unencrypted,
        cbt_strict: a.cbt_strict,
        computer_name: a.computer_name.clone(),
        close_after_requests: a.close_connections_after,
        delegation: a.delegation,
        exchange_role: match a.exchange_role {
            SimRoleArg::OrganizationManagement => ExchangeRole::OrganizationManagement,
            SimRoleArg::ViewOnlyOrganizationManagement => {
                ExchangeRole::ViewOnlyOrganizationManagement
            }
            SimRoleArg::None => ExchangeRole::None,
        },
        ..SimConfig::default()
    };
    if let Ok(p) = std::env::var(SIM_PASSWORD_ENV)
        && !p.is_empty()
    {
        cfg.password = p;
    }
    Ok(cfg)
}

pub async fn run(a: SimArgs) -> ExitCode {
    let cfg = match config(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Usage.into();
        }
    };
    let org = match organization(&a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Usage.into();
        }
    };
    let state = Arc::new(SimState::default());
    let org = OrgHandle::with_state(org, state.clone());
    let live = org.clone();
    state.set_provider("exchange", Arc::new(move || live.lock().state_section()));
    let options = HostOptions {
        snapin_delay: Duration::from_millis(a.exchange.startup_ms),
        ..HostOptions::default()
    };
    let sim = match exctl_sim::serve_exchange(cfg, org.clone(), options, state).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure.into();
        }
    };
    let imap = match a.exchange.imap_listen {
        Some(addr) => match exctl_sim::imap::serve_imap(addr, org.clone()).await {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitStatus::Failure.into();
            }
        },
        None => None,
    };
    if let (Some(path), Some(pem)) = (&a.ca_out, sim.ca_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitStatus::Failure.into();
    }
    // The first line of stdout is the endpoint: tests and scripts read it.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", sim.url());
    let _ = out.flush();
    drop(out);
    if let Some(h) = &imap {
        eprintln!("exctl sim: IMAP4 on {}", h.addr());
    }
    eprintln!(
        "exctl sim: serving {} (state at {}); Ctrl+C stops",
        sim.url(),
        sim.state_url()
    );
    wait_for_stop().await;
    sim.shutdown().await;
    if let Some(h) = imap {
        h.shutdown().await;
    }
    if a.exchange.write_state_on_exit
        && let Some(path) = &a.exchange.state
    {
        if let Err(e) = org.lock().save_state_file(path) {
            eprintln!("error: {e}");
            return ExitStatus::Failure.into();
        }
        eprintln!("exctl sim: state written to {}", path.display());
    }
    ExitStatus::Success.into()
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
