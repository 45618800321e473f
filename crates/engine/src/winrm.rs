//! The [`Runner`] that runs scripts over WinRM: one shell and one PowerShell process per
//! script, through the stdin runner of `exctl-pwsh`. [`Runner::run_streaming`] hands
//! stdout lines over as the Receive responses bring them, so apply reports each step as
//! it completes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use exctl_secret::Secret;
use exctl_winrm::{AuthMethod, Client, ClientConfig, ShellOptions, Stream, TrustPolicy};
use zeroize::Zeroizing;

use crate::desired::{Access, HostSpec};
use crate::observe::{LineSink, RunError, Runner, ScriptOutput};

/// Runs scripts over WinRM with the passwords the caller resolved, by host name.
pub struct WinRmRunner {
    passwords: HashMap<String, Secret>,
    /// Applied to every host (`--insecure-skip-verify`).
    pub insecure_skip_verify: bool,
}

impl WinRmRunner {
    /// A runner with a password per host (upper-case host name).
    pub fn new(passwords: HashMap<String, Secret>) -> Self {
        WinRmRunner {
            passwords,
            insecure_skip_verify: false,
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
        cfg.auth = match host.auth.as_str() {
            "basic" => AuthMethod::Basic,
            "kerberos" => AuthMethod::Kerberos,
            "negotiate" => AuthMethod::Negotiate,
            _ => AuthMethod::Ntlm,
        };
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

    async fn run_script(
        &self,
        host: &HostSpec,
        script: &str,
        on_line: Option<LineSink<'_>>,
    ) -> Result<ScriptOutput, RunError> {
        // Whether the host may have acted is the transport's to say (a lost Receive, a
        // Command whose answer never came); apply re-observes on such failures.
        let at = |e: exctl_winrm::Error| {
            let mut message = format!("{} ({}): {e}", host.name, host.endpoint);
            // The transport's hint names exec's flag; here the CA comes from the inventory.
            if matches!(e, exctl_winrm::Error::Tls { .. }) {
                message = message.replace(
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
                );
            }
            if e.is_outcome_unknown() {
                RunError::outcome_unknown(message)
            } else {
                RunError::new(message)
            }
        };
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
        let client = Client::new(config).map_err(at)?;
        let shell = client
            .open_shell(&ShellOptions::default())
            .await
            .map_err(at)?;
        let mut inv = exctl_pwsh::invocation(script);
        let result = match on_line {
            None => shell
                .run(&inv.command, &inv.arguments, Some(&inv.stdin), None)
                .await
                .map(|o| (o.stdout, o.stderr, o.exit_code)),
            Some(sink) => streamed(&shell, &inv, sink).await,
        };
        // The script on stdin may carry the password (remote-session hosts).
        zeroize::Zeroize::zeroize(&mut inv.stdin);
        // Close whatever happened: an open shell counts against MaxShellsPerUser.
        let _ = shell.close().await;
        let (stdout, stderr, exit_code) = result.map_err(at)?;
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
            stdout: hide(String::from_utf8_lossy(&stdout).into_owned()),
            stderr: hide(readable_stderr(&stderr)),
            exit_code,
        })
    }
}

/// stdout and stderr beyond this are not kept (apply's records are small; a runaway
/// script must not exhaust memory).
const MAX_STREAMED: usize = 64 * 1024 * 1024;

/// Runs the invocation, handing each complete stdout line to `sink` as it arrives.
async fn streamed(
    shell: &exctl_winrm::Shell,
    inv: &exctl_pwsh::Invocation,
    sink: LineSink<'_>,
) -> Result<(Vec<u8>, Vec<u8>, i64), exctl_winrm::Error> {
    let mut cmd = shell.start(&inv.command, &inv.arguments, false).await?;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let work = async {
        cmd.send(&inv.stdin, true).await?;
        cmd.wait(|stream, bytes| {
            let buf = match stream {
                Stream::Stdout => {
                    pending.extend_from_slice(bytes);
                    // Each complete line handed over in place, and the consumed bytes
                    // dropped once per chunk: draining line by line would move the rest
                    // of the chunk for every line (thousands of step records a chunk).
                    let mut start = 0;
                    while let Some(i) = pending[start..].iter().position(|b| *b == b'\n') {
                        let end = start + i;
                        let text = String::from_utf8_lossy(&pending[start..=end]);
                        sink(text.trim_end_matches(['\r', '\n']));
                        start = end + 1;
                    }
                    pending.drain(..start);
                    &mut stdout
                }
                Stream::Stderr => &mut stderr,
            };
            if buf.len() + bytes.len() > MAX_STREAMED {
                return Err(exctl_winrm::Error::OutputTooLarge {
                    limit: MAX_STREAMED,
                });
            }
            buf.extend_from_slice(bytes);
            Ok(())
        })
        .await
    };
    let code = match work.await {
        Ok(code) => code,
        Err(e) => {
            // Best effort: do not leave the process running on the host.
            let _ = cmd.terminate().await;
            return Err(e);
        }
    };
    if !pending.is_empty() {
        let text = String::from_utf8_lossy(&pending);
        sink(text.trim_end_matches('\r'));
    }
    Ok((stdout, stderr, code))
}

/// stderr with CLIXML decoded into PowerShell's own error text.
pub fn readable_stderr(raw: &[u8]) -> String {
    if !exctl_pwsh::is_clixml(raw) {
        return String::from_utf8_lossy(raw).into_owned();
    }
    match exctl_pwsh::clixml::decode_stderr_bytes(raw) {
        Ok(d) => {
            let mut parts: Vec<String> = d.other_text.clone();
            parts.extend(d.errors.iter().map(|e| e.to_string()));
            parts.join("\n")
        }
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
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
}
