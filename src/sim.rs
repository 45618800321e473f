//! `exctl sim`: the simulated Exchange 2010 host as a foreground server, for demos and
//! for end-to-end tests of the real binary.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use exctl_sim::{AuthScheme, CmdExecutor, SimConfig};

use crate::cli::{SimArgs, SimAuthArg};

/// The environment variable with the simulated account's password.
pub const SIM_PASSWORD_ENV: &str = "EXCTL_SIM_PASSWORD";

pub fn config(a: &SimArgs) -> Result<SimConfig, String> {
    let (domain, name) = a
        .user
        .split_once('\\')
        .ok_or_else(|| format!("--user must be DOMAIN\\NAME, not '{}'", a.user))?;
    let mut cfg = SimConfig {
        listen: a.listen,
        tls: a.tls,
        auth: a
            .auth
            .iter()
            .map(|s| match s {
                SimAuthArg::Basic => AuthScheme::Basic,
                SimAuthArg::Ntlm => AuthScheme::Ntlm,
            })
            .collect(),
        user: (domain.to_string(), name.to_string()),
        max_envelope_size_kb: a.max_envelope_kb,
        max_shells_per_user: a.max_shells,
        latency: Duration::from_millis(a.latency_ms),
        allow_unencrypted: a.allow_unencrypted,
        cbt_strict: a.cbt_strict,
        computer_name: a.computer_name.clone(),
        close_after_requests: a.close_connections_after,
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
            return ExitCode::from(2);
        }
    };
    let executor = Arc::new(CmdExecutor::new(cfg.computer_name.clone()));
    let sim = match exctl_sim::serve(cfg, executor).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let (Some(path), Some(pem)) = (&a.ca_out, sim.ca_pem())
        && let Err(e) = std::fs::write(path, pem)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::from(1);
    }
    // The first line of stdout is the endpoint: tests and scripts read it.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", sim.url());
    let _ = out.flush();
    drop(out);
    eprintln!(
        "exctl sim: serving {} (state at {}); Ctrl+C stops",
        sim.url(),
        sim.state_url()
    );
    wait_for_stop().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
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
