//! The [`Runner`] that runs scripts over WinRM: one shell and one PowerShell process per
//! script, through the stdin runner of `exctl-pwsh`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use exctl_secret::Secret;
use exctl_winrm::{AuthMethod, Client, ClientConfig, ShellOptions, TrustPolicy};

use crate::desired::HostSpec;
use crate::observe::{RunError, Runner, ScriptOutput};

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
        let password = self
            .passwords
            .get(&host.name.to_ascii_uppercase())
            .cloned()
            .ok_or_else(|| RunError(format!("no password for {}", host.name)))?;
        let mut cfg = ClientConfig::new(host.endpoint.clone(), host.user.clone(), password);
        cfg.auth = if host.auth == "basic" {
            AuthMethod::Basic
        } else {
            AuthMethod::Ntlm
        };
        cfg.trust = if self.insecure_skip_verify {
            TrustPolicy::InsecureSkipVerify
        } else if let Some(f) = &host.ca_file {
            TrustPolicy::CaFile(f.clone())
        } else {
            TrustPolicy::SystemRoots
        };
        Ok(cfg)
    }

    async fn run_script(&self, host: &HostSpec, script: &str) -> Result<ScriptOutput, RunError> {
        let at =
            |e: exctl_winrm::Error| RunError(format!("{} ({}): {e}", host.name, host.endpoint));
        let client = Client::new(self.config(host)?).map_err(at)?;
        let shell = client
            .open_shell(&ShellOptions::default())
            .await
            .map_err(at)?;
        let inv = exctl_pwsh::invocation(script);
        let result = shell
            .run(&inv.command, &inv.arguments, Some(&inv.stdin), None)
            .await;
        // Close whatever happened: an open shell counts against MaxShellsPerUser.
        let _ = shell.close().await;
        let out = result.map_err(at)?;
        Ok(ScriptOutput {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: readable_stderr(&out.stderr),
            exit_code: out.exit_code,
        })
    }
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
        Box::pin(self.run_script(host, script))
    }
}
