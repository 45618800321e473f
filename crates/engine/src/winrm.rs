//! The [`Runner`] that runs scripts over WinRM: one PowerShell session per host for the
//! whole command.
//!
//! The first script for a host opens a runspace pool of one runspace on the host's WinRM
//! endpoint (PowerShell remoting, configuration `Microsoft.PowerShell`: one shell and one
//! `wsmprovhost.exe` process on the server); every later script of the same command runs
//! as a pipeline in that runspace, so plan's observation, apply's re-observation, its
//! changes and restarts, the verification and the lock's release share one session, one
//! snap-in load (or one imported Exchange session) and one domain controller's view.
//! [`Runner::close`] ends them all. A session whose script was abandoned mid-way (a
//! timeout dropped it) or whose connection failed is not reused: the next script opens a
//! new one. [`Runner::run_streaming`] hands output lines over as the pipeline writes
//! them, so apply reports each step as it completes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use exctl_psrp::protocol::{PipelineSpec, PipelineState, ServerEvent};
use exctl_psrp::{PoolOptions, RunspacePool};
use exctl_secret::Secret;
use exctl_winrm::{AuthMethod, Client, ClientConfig, TrustPolicy};
use zeroize::Zeroizing;

use crate::desired::{Access, HostSpec};
use crate::observe::{LineSink, RunError, Runner, ScriptOutput};

/// Runs scripts over WinRM with the passwords the caller resolved, by host name.
pub struct WinRmRunner {
    passwords: HashMap<String, Secret>,
    /// Applied to every host (`--insecure-skip-verify`).
    pub insecure_skip_verify: bool,
    /// The open session of each host (upper-case name).
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

/// A host's session, if one is open, and whether a script is running in it.
#[derive(Default)]
struct Slot {
    session: Option<Session>,
    /// Set while a script runs; still set afterwards when its future was dropped (a
    /// timeout), whose pipeline may still be running on the host.
    busy: bool,
}

/// One runspace pool on a host, with the host it was opened for (for closing it), and
/// with `access: psrp` the pool on Exchange's endpoint that answers its Exchange cmdlets
/// (opened on the first one; see [`crate::relay`]).
struct Session {
    pool: RunspacePool,
    host: HostSpec,
    exchange: Option<RunspacePool>,
}

/// Answers the relay requests of a host's scripts (`access: psrp`): runs each command on
/// Exchange's endpoint, in one pool for the whole run.
struct Relay<'a> {
    runner: &'a WinRmRunner,
    host: &'a HostSpec,
    exchange: &'a mut Option<RunspacePool>,
}

impl Relay<'_> {
    /// The outcome of `command` on Exchange's endpoint, as the relay's answer.
    async fn run(&mut self, command: &exctl_pwsh::Command) -> String {
        if self.exchange.is_none() {
            match self.runner.open_exchange(self.host).await {
                Ok(pool) => *self.exchange = Some(pool),
                Err(e) => return crate::relay::failure(e.message()),
            }
        }
        let Some(pool) = self.exchange.as_mut() else {
            return crate::relay::failure("no session to Exchange's endpoint");
        };
        match pool.run(&PipelineSpec::command(command.into())).await {
            Ok(result) => crate::relay::encode_outcome(&result),
            Err(e) => {
                // A pool whose connection failed is not used again.
                if let Some(old) = self.exchange.take() {
                    let _ = old.close().await;
                }
                crate::relay::failure(&format!(
                    "{} ({}): {e}",
                    self.host.name,
                    self.host.exchange_uri()
                ))
            }
        }
    }
}

impl exctl_psrp::HostCallHandler for Relay<'_> {
    fn answer<'a>(
        &'a mut self,
        call: &'a exctl_psrp::protocol::HostCall,
    ) -> Pin<Box<dyn Future<Output = Option<exctl_psrp::Value>> + Send + 'a>> {
        Box::pin(async move {
            // Only the relay's own prompt is answered; anything else is refused, as a
            // client without an interactive host refuses it.
            let fields = call.prompt_fields();
            let [field] = fields.as_slice() else {
                return None;
            };
            let answer = match crate::relay::parse_request(field)? {
                Ok(command) => self.run(&command).await,
                Err(e) => crate::relay::failure(&e.to_string()),
            };
            Some(exctl_psrp::protocol::HostCall::prompt_answer(vec![(
                field.clone(),
                answer,
            )]))
        })
    }
}

impl WinRmRunner {
    /// A runner with a password per host (upper-case host name).
    pub fn new(passwords: HashMap<String, Secret>) -> Self {
        WinRmRunner {
            passwords,
            insecure_skip_verify: false,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn config(&self, host: &HostSpec) -> Result<ClientConfig, RunError> {
        let kerberos = matches!(host.auth.as_str(), "kerberos" | "negotiate");
        let password = match self.passwords.get(&host.name.to_ascii_uppercase()) {
            Some(p) => p.clone(),
            // Kerberos without a credential: the operator's ticket cache.
            None if kerberos => Secret::new(String::new()),
            None => return Err(RunError::new(format!("no password for {}", host.name))),
        };
        let mut cfg = ClientConfig::new(host.endpoint.clone(), host.user.clone(), password);
        cfg.auth = method(host.auth);
        cfg.spn = host.spn.clone();
        cfg.trust = if self.insecure_skip_verify {
            TrustPolicy::InsecureSkipVerify
        } else if let Some(pin) = host
            .tls_fingerprint
            .as_deref()
            .and_then(exctl_winrm::tls::parse_fingerprint)
        {
            TrustPolicy::Pinned(vec![pin])
        } else if let Some(f) = &host.ca_file {
            TrustPolicy::CaFile(f.clone())
        } else {
            TrustPolicy::SystemRoots
        };
        Ok(cfg)
    }

    /// The client of Exchange's endpoint of `host` (`access: psrp`): its `session_uri`,
    /// `exchange_auth`, the host's account and the host's trust settings.
    fn exchange_config(&self, host: &HostSpec) -> Result<ClientConfig, RunError> {
        let mut cfg = self.config(host)?;
        cfg.endpoint = host.exchange_uri();
        cfg.auth = method(host.exchange_auth);
        // The host's SPN names its WinRM endpoint; Exchange's is found by its own name.
        cfg.spn = None;
        Ok(cfg)
    }

    /// Opens a pool on Exchange's endpoint of `host` (configuration Microsoft.Exchange).
    async fn open_exchange(&self, host: &HostSpec) -> Result<RunspacePool, RunError> {
        let config = self.exchange_config(host)?;
        let uri = config.endpoint.clone();
        // The transport's hints name exec's flags and the host's `auth:`; here the CA and
        // the authentication come from the inventory's `ca_file:` and `exchange_auth:`.
        let fail = |e: String| {
            let e = inventory_hints(e, host)
                .replace(
                    "(auth: in the inventory, --auth on the command line)",
                    &format!("(exchange_auth: of {} in the inventory)", host.name),
                )
                .replace(
                    "or use auth: ntlm",
                    &format!("or set exchange_auth: ntlm for {}", host.name),
                );
            RunError::new(format!("{} ({uri}): {e}", host.name))
        };
        let client = Client::new(config).map_err(|e| fail(e.to_string()))?;
        RunspacePool::open(&client, &PoolOptions::exchange())
            .await
            .map_err(|e| fail(e.to_string()))
    }

    /// The slot of a host's session.
    fn slot(&self, host: &HostSpec) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut map = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(host.name.to_ascii_uppercase())
            .or_default()
            .clone()
    }

    async fn run_script(
        &self,
        host: &HostSpec,
        script: &str,
        on_line: Option<LineSink<'_>>,
    ) -> Result<ScriptOutput, RunError> {
        let at = |e: exctl_psrp::Error| self.run_error(host, e);
        let config = self.config(host)?;
        // A remote Exchange session needs the password in the script (see
        // `script::exchange_prologue`): set here, in front, and nowhere else.
        // Copies of the password live in buffers wiped when dropped.
        let with_password;
        let script = if host.access == Access::RemoteSession {
            with_password = Zeroizing::new(format!(
                "${} = {}\n{script}",
                crate::script::PASSWORD_VARIABLE,
                exctl_pwsh::quote(config.password.expose())
            ));
            with_password.as_str()
        } else {
            script
        };
        let secret = Zeroizing::new(config.password.expose().to_string());
        let slot = self.slot(host);
        let mut slot = slot.lock().await;
        if slot.busy {
            // The last script was abandoned while it ran: its pipeline may still hold
            // the runspace. That session is given up (best effort) for a new one.
            slot.busy = false;
            if let Some(old) = slot.session.take() {
                let _ = old.pool.close().await;
            }
        }
        if slot.session.is_none() {
            let client = Client::new(config)
                .map_err(|e| self.run_error(host, exctl_psrp::Error::Winrm(e)))?;
            let mut opts = PoolOptions::powershell();
            // With `access: psrp` the scripts' Exchange cmdlets prompt this client.
            opts.host_ui = host.access == Access::Psrp;
            let pool = RunspacePool::open(&client, &opts).await.map_err(at)?;
            slot.session = Some(Session {
                pool,
                host: host.clone(),
                exchange: None,
            });
        }
        let slot = &mut *slot;
        let Some(session) = slot.session.as_mut() else {
            return Err(RunError::new(format!("{}: no session", host.name)));
        };
        slot.busy = true;
        let mut relay = Relay {
            runner: self,
            host,
            exchange: &mut session.exchange,
        };
        let ran = run_pipeline(&mut session.pool, script, on_line, &mut relay).await;
        slot.busy = false;
        let out = match ran {
            Ok(out) => out,
            Err(e) => {
                // A session whose connection failed is not trusted again.
                if let Some(old) = slot.session.take() {
                    let _ = old.pool.close().await;
                }
                return Err(at(e));
            }
        };
        // Whatever the host echoes (an error quoting a script line), the password does
        // not come back out.
        let hide = |t: String| {
            if secret.is_empty() {
                t
            } else {
                t.replace(secret.as_str(), "(secret)")
            }
        };
        Ok(ScriptOutput {
            stdout: hide(out.stdout),
            stderr: hide(out.stderr),
            exit_code: out.exit_code,
        })
    }

    /// A failure on `host`, in words an operator can act on, and whether the host may
    /// have acted on the script anyway.
    fn run_error(&self, host: &HostSpec, e: exctl_psrp::Error) -> RunError {
        let unknown = match &e {
            exctl_psrp::Error::Winrm(w) => w.is_outcome_unknown(),
            // The pipeline was sent; what it did is not known.
            exctl_psrp::Error::Deadline(_) => true,
            _ => false,
        };
        let mut message = format!("{} ({}): {e}", host.name, host.endpoint);
        if matches!(e, exctl_psrp::Error::Winrm(exctl_winrm::Error::Tls { .. })) {
            message = inventory_hints(message, host);
        }
        if unknown {
            RunError::outcome_unknown(message)
        } else {
            RunError::new(message)
        }
    }

    /// Ends every open session: first what the Exchange prologue opened in it (see
    /// [`crate::script::session_epilogue`]), then the runspace pool itself (its shell
    /// counts against the host's MaxShellsPerUser until closed).
    async fn close_all(&self) {
        let slots: Vec<_> = {
            let mut map = self
                .sessions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.drain().map(|(_, s)| s).collect()
        };
        for slot in slots {
            let mut slot = slot.lock().await;
            let Some(mut s) = slot.session.take() else {
                continue;
            };
            let epilogue = crate::script::session_epilogue(&s.host);
            if !slot.busy && !epilogue.is_empty() {
                let mut relay = Relay {
                    runner: self,
                    host: &s.host,
                    exchange: &mut s.exchange,
                };
                let _ = run_pipeline(&mut s.pool, &epilogue, None, &mut relay).await;
            }
            if let Some(exchange) = s.exchange.take() {
                let _ = exchange.close().await;
            }
            let _ = s.pool.close().await;
        }
    }
}

/// The transport's method for an inventory's `auth:` / `exchange_auth:`.
fn method(auth: crate::Auth) -> AuthMethod {
    match auth {
        crate::Auth::Basic => AuthMethod::Basic,
        crate::Auth::Kerberos => AuthMethod::Kerberos,
        crate::Auth::Negotiate => AuthMethod::Negotiate,
        crate::Auth::Ntlm => AuthMethod::Ntlm,
    }
}

/// Output beyond this is not kept (apply's records are small; a runaway script must not
/// exhaust memory).
const MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// What a pipeline wrote, in the shape of a process's: output objects as text lines,
/// error records as PowerShell renders them, and 1 as the exit code when the pipeline
/// failed (an error nobody caught ends it, as it ends `powershell.exe` with 1).
struct PipelineText {
    stdout: String,
    stderr: String,
    exit_code: i64,
}

/// What every script runs under, as under the WinRS runner's bootstrap (see
/// `exctl_pwsh::runner`): no progress records, and every error terminating unless the
/// script tolerates it locally. The script runs in the runspace's global scope (a
/// pipeline's script does unless it asks for a local one), so what the Exchange
/// prologue set up stays for the next script.
const SESSION_PREAMBLE: &str =
    "$ProgressPreference = 'SilentlyContinue'\n$ErrorActionPreference = 'Stop'\n";

async fn run_pipeline(
    pool: &mut RunspacePool,
    script: &str,
    mut on_line: Option<LineSink<'_>>,
    host: &mut dyn exctl_psrp::HostCallHandler,
) -> Result<PipelineText, exctl_psrp::Error> {
    let mut stdout = String::new();
    let mut too_large = false;
    let script = Zeroizing::new(format!("{SESSION_PREAMBLE}{script}"));
    let result = pool
        .run_with_host(
            &PipelineSpec::script(script.as_str()),
            |ev| {
                let ServerEvent::Output(v) = ev else {
                    return;
                };
                let text = exctl_psrp::clixml::deserialized(v).display();
                for line in text.split('\n') {
                    let line = line.trim_end_matches('\r');
                    if let Some(sink) = on_line.as_mut() {
                        sink(line);
                    }
                    if stdout.len() + line.len() < MAX_OUTPUT {
                        stdout.push_str(line);
                        stdout.push('\n');
                    } else {
                        too_large = true;
                    }
                }
            },
            host,
        )
        .await?;
    let mut stderr: Vec<String> = result
        .warnings
        .iter()
        .map(|w| format!("WARNING: {}", w.message))
        .collect();
    stderr.extend(result.errors.iter().map(|e| e.render()));
    if let Some(f) = &result.failure {
        stderr.push(f.render());
    }
    if too_large {
        stderr.push(format!("output beyond {MAX_OUTPUT} bytes was dropped"));
    }
    let exit_code = match result.state {
        PipelineState::Completed if result.failure.is_none() => 0,
        _ => 1,
    };
    Ok(PipelineText {
        stdout,
        stderr: stderr.join("\n"),
        exit_code,
    })
}

/// A transport error's hint in the inventory's words: the CA of a host comes from its
/// `ca_file:`, not from exec's `--ca-file`.
fn inventory_hints(message: String, host: &HostSpec) -> String {
    message.replace(
        "pass the issuing CA with --ca-file",
        &format!(
            "give the issuing CA as `ca_file:` of {} in the inventory{}",
            host.name,
            if host.ca_file.is_some() {
                " (the one it names did not verify this certificate)"
            } else {
                ""
            }
        ),
    )
}

impl Runner for WinRmRunner {
    fn run<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        Box::pin(self.run_script(host, script, None))
    }

    fn run_streaming<'a>(
        &'a self,
        host: &'a HostSpec,
        script: &'a str,
        on_line: LineSink<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<ScriptOutput, RunError>> + Send + 'a>> {
        Box::pin(self.run_script(host, script, Some(on_line)))
    }

    fn close<'a>(&'a self) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.close_all())
    }
}
