//! A simulated Windows Server 2008 R2 host with Exchange 2010, speaking WS-Management
//! (WinRS) over HTTP or HTTPS. It is what exctl's end-to-end tests talk to, so it is
//! faithful rather than convenient: the response shapes, fault codes and texts, quotas,
//! timeouts and refusals are those of real hosts (see `fixtures/winrm-recorded/`).
//!
//! This crate owns the wire: HTTP, authentication (Basic, NTLM with sealing, via
//! `exctl-ntlm`), the WinRS shell resource and the config resource. What a command does is
//! an [`Executor`]'s business; the built-in [`CmdExecutor`] is a small `cmd.exe`, and the
//! PowerShell/Exchange layer plugs in behind the same trait: [`exchange_host`] is that
//! `cmd.exe` with a `powershell.exe` ([`powershell`]) whose interpreter
//! (`exctl_pwsh_interp`) runs scripts against the Exchange model ([`exchange`]) through
//! [`pshost::SimHost`]. It deliberately shares no
//! code with the client crate `exctl-winrm`, so that it checks the client instead of
//! agreeing with its mistakes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), exctl_sim::SimError> {
//! use std::sync::Arc;
//! use exctl_sim::{CmdExecutor, SimConfig, serve};
//! let sim = serve(SimConfig::default(), Arc::new(CmdExecutor::new("EXCH01"))).await?;
//! println!("{}", sim.url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cmd;
pub mod codepage;
pub mod config;
pub mod error;
pub mod exchange;
pub mod fault;
pub mod framing;
pub mod imap;
pub mod inject;
pub mod powershell;
pub mod process;
pub mod pshost;
pub mod psrp;
mod server;
pub mod shell;
pub mod soap;
pub mod state;
mod tls;
pub mod xml;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use cmd::{CmdExecutor, ExitFuture, Invocation, Program};
pub use config::{AuthScheme, ExchangeRole, SimConfig};
pub use error::SimError;
pub use inject::{FaultPlan, FaultRule, Injected, On};
pub use powershell::{PowerShellProgram, exchange_host, exchange_host_with};
pub use process::{
    Executor, Process, ProcessEvent, ProcessGone, ProcessIo, ProcessRequest, Sink, StartError,
    spawn_process,
};
pub use pshost::{Account, HostOptions};
pub use state::{SimState, StateSnapshot};

/// A running simulator. Dropping it stops the listener and every connection.
pub struct RunningSim {
    addr: SocketAddr,
    url: String,
    ca_pem: Option<String>,
    state: Arc<SimState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RunningSim {
    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The WS-Management endpoint, `http(s)://127.0.0.1:PORT/wsman`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `/sim/state` URL.
    pub fn state_url(&self) -> String {
        self.url.replace("/wsman", "/sim/state")
    }

    /// The `/sim/faults` URL, the control endpoint of fault injection ([`inject`]).
    pub fn faults_url(&self) -> String {
        self.url.replace("/wsman", "/sim/faults")
    }

    /// The CA certificate to trust, PEM, when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The live counters (also served as `/sim/state`).
    pub fn state(&self) -> Arc<SimState> {
        self.state.clone()
    }

    /// Stops listening, closes every connection and waits until that is done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts a simulator on `config.listen` (loopback only) and returns once it accepts
/// connections.
pub async fn serve(config: SimConfig, executor: Arc<dyn Executor>) -> Result<RunningSim, SimError> {
    serve_with_state(config, executor, Arc::new(SimState::default())).await
}

/// Like [`serve`], with counters created beforehand, so that layers built before the
/// server (the Exchange model, through [`SimState::set_provider`]) report in its
/// `/sim/state`.
pub async fn serve_with_state(
    config: SimConfig,
    executor: Arc<dyn Executor>,
    state: Arc<SimState>,
) -> Result<RunningSim, SimError> {
    serve_with_psrp(config, executor, state, None).await
}

/// A simulated Exchange server, as a real one answers: WinRS commands run in simulated
/// `powershell.exe` processes, and PowerShell remoting is served on `/wsman`
/// (`Microsoft.PowerShell`) and `/PowerShell` (`Microsoft.Exchange`), all on the one
/// organization `org`, with the host's account for its remote Exchange sessions. What
/// the account may do beyond the host comes from `config`: [`SimConfig::delegation`]
/// (else the snap-in's cmdlets meet the double hop) and [`SimConfig::exchange_role`].
pub async fn serve_exchange(
    config: SimConfig,
    org: exchange::OrgHandle,
    options: HostOptions,
    state: Arc<SimState>,
) -> Result<RunningSim, SimError> {
    let options = powershell::for_winrm(&config, options);
    let psrp = psrp::PsrpHost::new(org.clone(), options.clone());
    let executor = powershell::exchange_host_with(&config, org, options);
    serve_with_psrp(config, executor, state, Some(psrp)).await
}

/// Like [`serve_with_state`], also serving PowerShell remoting (MS-PSRP) with `psrp`
/// running the pipelines: `Microsoft.PowerShell` on `/wsman` and Exchange's
/// `Microsoft.Exchange` on `/PowerShell` (see [`psrp`]). Without it, those resources
/// are unknown, as on a host without them.
pub async fn serve_with_psrp(
    config: SimConfig,
    executor: Arc<dyn Executor>,
    state: Arc<SimState>,
    psrp: Option<psrp::PsrpHost>,
) -> Result<RunningSim, SimError> {
    if !config.listen.ip().is_loopback() {
        return Err(SimError::NotLoopback(config.listen));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let tls = if config.tls && config.tls_self_issued {
        Some(tls::generate_self_issued()?)
    } else if config.tls {
        Some(tls::generate()?)
    } else {
        None
    };
    let kerberos = if config.auth.contains(&AuthScheme::Kerberos) {
        let keytab = config.keytab.as_deref().ok_or_else(|| {
            SimError::Kerberos("Kerberos needs the service's keytab (--keytab FILE)".into())
        })?;
        if config.kerberos_principal.is_none() {
            return Err(SimError::Kerberos(
                "Kerberos needs the accepted principal (--user user@REALM)".into(),
            ));
        }
        let cred = exctl_gssapi::Credential::acceptor(keytab)
            .map_err(|e| SimError::Kerberos(format!("{}: {e}", keytab.display())))?;
        Some(Arc::new(cred))
    } else {
        None
    };
    let scheme = if config.tls { "https" } else { "http" };
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let url = format!("{scheme}://{host}:{}/wsman", addr.port());
    // What the host is set up for, beside the counters: tests and demos read it back.
    state.set_section(
        "host",
        serde_json::json!({
            "computer_name": config.computer_name,
            "account": config.account(),
            "local_account": config.is_local_account(),
            "delegation": config.delegation,
            "exchange_role": config.exchange_role.as_str(),
        }),
    );
    let config = Arc::new(config);
    let shared = Arc::new(server::Shared {
        config: config.clone(),
        state: state.clone(),
        wsman: shell::WsmanService::new(config.clone(), executor, state.clone()),
        psrp: psrp::PsrpService::new(
            psrp,
            state.clone(),
            std::time::Duration::from_millis(u64::from(config.max_timeout_ms)),
        ),
        channel_binding: tls.as_ref().map(|t| t.channel_binding.clone()),
        endpoint: url.clone(),
        kerberos,
    });
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let acceptor = tls.map(|t| t.acceptor);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        // Connections live in the set: when the loop ends, dropping it aborts them all.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let acceptor = acceptor.clone();
                    connections.spawn(async move {
                        match acceptor {
                            Some(acceptor) => {
                                if let Ok(tls_stream) = acceptor.accept(stream).await {
                                    server::serve_connection(tls_stream, true, peer, shared).await;
                                }
                            }
                            None => server::serve_connection(stream, false, peer, shared).await,
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    });
    Ok(RunningSim {
        addr,
        url,
        ca_pem,
        state,
        stop,
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_non_loopback_addresses() {
        let config = SimConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            ..SimConfig::default()
        };
        let err = serve(config, Arc::new(CmdExecutor::new("EXCH01")))
            .await
            .unwrap_err();
        assert!(matches!(err, SimError::NotLoopback(_)));
    }
}
