//! `exctl exec`: run PowerShell, or a raw command line, on one host.
//!
//! PowerShell goes through the stdin runner of `exctl-pwsh` (a short `-EncodedCommand`
//! bootstrap; the script itself travels on stdin, so it has no length limit), and the
//! CLIXML that powershell.exe writes on stderr is decoded into readable error records.
//! `--raw` sends the command line as winrs does. Output streams as it arrives. The exit
//! status is the remote one (reduced to 0..=255 without ever turning a failure into 0);
//! exctl's own failures exit 255, as ssh does, so that scripts can tell them apart.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use exctl_engine::Auth;
use exctl_winrm::{
    AuthMethod, Client, ClientConfig, Error as WinrmError, KerberosScheme, ShellOptions, Stream,
    TrustPolicy,
};

use crate::cli::{AuthArg, ConnectArgs, ExecArgs, KerberosSchemeArg};
use crate::credentials::{self, CredentialError};

use crate::exit::ExitStatus;
/// stderr of a PowerShell run is buffered to decode its CLIXML; beyond this it is cut.
const MAX_STDERR: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error(transparent)]
    Winrm(#[from] WinrmError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read the script: {0}")]
    Script(std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

pub async fn run(args: ExecArgs) -> ExitCode {
    let args = match from_inventory(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::ExecOwnFailure.into();
        }
    };
    if args.psrp {
        return crate::exec_psrp::run(args).await;
    }
    match execute(args).await {
        Ok(code) => ExitStatus::Remote(exit_status(code)).into(),
        Err(ExecError::Interrupted) => {
            eprintln!("exctl: interrupted; the remote command was terminated");
            ExitStatus::Interrupted.into()
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::ExecOwnFailure.into()
        }
    }
}

/// Maps a Windows exit code (any 32-bit value) to a Unix exit status without turning a
/// failure into success: codes whose low byte is zero but are not zero become 1.
pub fn exit_status(code: i64) -> u8 {
    if code == 0 {
        return 0;
    }
    match (code & 0xff) as u8 {
        0 => 1,
        b => b,
    }
}

/// `exctl exec HOST [PATH…]`: fills what the flags leave out from the inventory's host
/// (endpoint, account, authentication, SPN, CA file) and reads the password of its
/// credential reference; `--exchange` points a `--psrp` run at the host's Exchange
/// endpoint.
fn from_inventory(mut args: ExecArgs) -> Result<ExecArgs, String> {
    let Some(name) = args.host.clone() else {
        return Ok(args);
    };
    let paths = if args.paths.is_empty() {
        vec![std::path::PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let Some((_, state)) = crate::plan::load(&paths, false, false) else {
        return Err("the manifests have errors (above)".into());
    };
    let Some(host) = state.hosts.get(&name.to_ascii_uppercase()) else {
        let names: Vec<&str> = state.hosts.values().map(|h| h.name.as_str()).collect();
        return Err(format!(
            "'{name}' is not a host of the inventory{}",
            exctl_manifest::did_you_mean_hint(&name, &names)
                .map(|h| format!("; {h}"))
                .unwrap_or_default()
        ));
    };
    let c = &mut args.connect;
    if c.endpoint.is_none() {
        c.endpoint = Some(if args.exchange {
            host.exchange_uri()
        } else {
            host.endpoint.clone()
        });
    }
    if args.exchange {
        args.configuration = "Microsoft.Exchange".to_string();
    }
    c.user.get_or_insert_with(|| host.user.clone());
    // Exchange's endpoint takes what the inventory says for it (`exchange_auth`, access:
    // psrp); other hosts name no method for it, and the host's own is tried.
    let auth = match host.access {
        exctl_engine::desired::Access::Psrp if args.exchange => host.exchange_auth,
        _ => host.auth,
    };
    c.auth = match auth {
        Auth::Basic => AuthArg::Basic,
        Auth::Kerberos => AuthArg::Kerberos,
        Auth::Negotiate => AuthArg::Negotiate,
        // NTLM is the flag's default: an explicit --auth stays.
        Auth::Ntlm => c.auth,
    };
    // The host's SPN names its WinRM endpoint, not Exchange's.
    if c.spn.is_none() && !args.exchange {
        c.spn = host.spn.clone();
    }
    if c.ca_file.is_none() {
        c.ca_file = host.ca_file.clone();
    }
    if c.tls_fingerprint.is_none() {
        c.tls_fingerprint = host.tls_fingerprint.clone();
    }
    let site = host.site.clone().unwrap_or_else(|| host.name.clone());
    let mut found = credentials::resolve_hosts(&[(host, site.as_str())])?;
    args.host_password = found.remove(&host.name.to_ascii_uppercase());
    Ok(args)
}

/// The endpoint of the run (the flag's, or the inventory host's).
pub fn endpoint_of(c: &ConnectArgs) -> &str {
    c.endpoint.as_deref().unwrap_or_default()
}

/// The account of the run (the flag's, or the inventory host's).
pub fn user_of(c: &ConnectArgs) -> &str {
    c.user.as_deref().unwrap_or_default()
}

pub fn client_config(c: &ConnectArgs, password: exctl_secret::Secret) -> ClientConfig {
    let mut cfg = ClientConfig::new(endpoint_of(c).to_string(), user_of(c).to_string(), password);
    cfg.auth = match c.auth {
        AuthArg::Ntlm => AuthMethod::Ntlm,
        AuthArg::Basic => AuthMethod::Basic,
        AuthArg::Kerberos => AuthMethod::Kerberos,
        AuthArg::Negotiate => AuthMethod::Negotiate,
    };
    cfg.spn = c.spn.clone();
    cfg.kerberos_scheme = match c.kerberos_scheme {
        KerberosSchemeArg::Auto => KerberosScheme::Auto,
        KerberosSchemeArg::Negotiate => KerberosScheme::Negotiate,
        KerberosSchemeArg::Kerberos => KerberosScheme::Kerberos,
    };
    cfg.trust = if c.insecure_skip_verify {
        TrustPolicy::InsecureSkipVerify
    } else if let Some(pin) = c
        .tls_fingerprint
        .as_deref()
        .and_then(exctl_winrm::tls::parse_fingerprint)
    {
        TrustPolicy::Pinned(vec![pin])
    } else if let Some(f) = &c.ca_file {
        TrustPolicy::CaFile(f.clone())
    } else {
        TrustPolicy::SystemRoots
    };
    cfg.allow_basic_over_http = c.allow_basic_over_http;
    cfg.operation_timeout = Duration::from_secs(c.operation_timeout.max(1));
    cfg.server_max_envelope_kb = c.max_envelope_kb;
    cfg
}

pub(crate) fn keyring_entry(c: &ConnectArgs) -> String {
    if let Some(e) = &c.keyring_entry {
        return e.clone();
    }
    let host = url_host(endpoint_of(c)).unwrap_or_else(|| endpoint_of(c).to_string());
    format!("{}@{}", user_of(c), host)
}

fn url_host(endpoint: &str) -> Option<String> {
    let parts = exctl_engine::desired::EndpointParts::of(endpoint);
    parts.scheme?;
    Some(parts.host.to_ascii_lowercase())
}

fn script_text(args: &ExecArgs) -> Result<String, ExecError> {
    match &args.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(ExecError::Script)?;
            Ok(s)
        }
        Some(f) => std::fs::read_to_string(f).map_err(ExecError::Script),
        None if args.script.is_empty() => Err(ExecError::Usage(
            "nothing to run: give the script after --, or --file FILE".into(),
        )),
        None => Ok(args.script.join(" ")),
    }
}

/// What goes to the host: a program, its arguments, and stdin.
struct Job {
    command: String,
    arguments: Vec<String>,
    stdin: Option<Vec<u8>>,
    powershell: bool,
}

fn job(args: &ExecArgs) -> Result<Job, ExecError> {
    if args.raw {
        let mut words = args.script.iter().cloned();
        let command = words.next().ok_or_else(|| {
            ExecError::Usage("nothing to run: give the command line after --".into())
        })?;
        return Ok(Job {
            command,
            arguments: words.collect(),
            stdin: None,
            powershell: false,
        });
    }
    let script = script_text(args)?;
    let inv = exctl_pwsh::runner::invocation(&script);
    Ok(Job {
        command: inv.command,
        arguments: inv.arguments,
        stdin: Some(inv.stdin),
        powershell: true,
    })
}

async fn execute(args: ExecArgs) -> Result<i64, ExecError> {
    let job = job(&args)?;
    let c = &args.connect;
    let password = if let Some(p) = &args.host_password {
        p.clone()
    } else if matches!(c.auth, AuthArg::Kerberos | AuthArg::Negotiate) {
        // Kerberos uses the operator's ticket; a password (EXCTL_PASSWORD, or the keyring
        // entry named explicitly) only gets a ticket in memory. Never a prompt: a jump
        // host's operator has run kinit.
        credentials::kerberos_password(c.keyring_entry.as_deref())
    } else {
        credentials::password(user_of(c), &keyring_entry(c))?
    };
    if c.insecure_skip_verify {
        eprintln!(
            "warning: TLS certificate verification is OFF for {}: anyone on the network path can read this session, credentials included",
            endpoint_of(c)
        );
    }
    let client = Client::new(client_config(c, password))?;
    let shell = client.open_shell(&ShellOptions::default()).await?;
    let deadline = args.timeout.map(Duration::from_secs);
    let outcome = run_job(&shell, &job, deadline).await;
    // Close the shell whatever happened, so it does not count against the user's quota.
    if let Err(e) = shell.close().await
        && outcome.is_ok()
    {
        eprintln!("warning: the remote shell could not be closed: {e}");
    }
    outcome
}

async fn run_job(
    shell: &exctl_winrm::Shell,
    job: &Job,
    deadline: Option<Duration>,
) -> Result<i64, ExecError> {
    let mut cmd = shell.start(&job.command, &job.arguments, false).await?;
    let mut stderr_buf = Vec::new();
    let mut stderr_cut = false;
    let powershell = job.powershell;
    let work = async {
        if let Some(stdin) = &job.stdin {
            cmd.send(stdin, true).await?;
        }
        let code = cmd
            .wait(|stream, bytes| {
                match stream {
                    Stream::Stdout => write_all(&mut std::io::stdout().lock(), bytes),
                    Stream::Stderr if powershell => {
                        let room = MAX_STDERR.saturating_sub(stderr_buf.len());
                        stderr_buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
                        stderr_cut |= bytes.len() > room;
                    }
                    Stream::Stderr => write_all(&mut std::io::stderr().lock(), bytes),
                }
                Ok(())
            })
            .await?;
        Ok::<i64, ExecError>(code)
    };
    let result = tokio::select! {
        r = with_deadline(work, deadline) => r,
        _ = tokio::signal::ctrl_c() => Err(ExecError::Interrupted),
    };
    if result.is_err() {
        let _ = cmd.terminate().await;
    }
    if powershell && !stderr_buf.is_empty() {
        print_powershell_stderr(&stderr_buf);
        if stderr_cut {
            eprintln!("exctl: stderr was longer than {MAX_STDERR} bytes and was cut");
        }
    }
    result
}

async fn with_deadline<F>(work: F, deadline: Option<Duration>) -> Result<i64, ExecError>
where
    F: std::future::Future<Output = Result<i64, ExecError>>,
{
    match deadline {
        Some(d) => tokio::time::timeout(d, work)
            .await
            .unwrap_or(Err(ExecError::Winrm(WinrmError::Deadline(d)))),
        None => work.await,
    }
}

fn write_all(w: &mut impl Write, bytes: &[u8]) {
    // A closed local pipe (| head) must not abort the remote run half-way.
    let _ = w.write_all(bytes);
    let _ = w.flush();
}

/// Prints powershell.exe's stderr: CLIXML error records as PowerShell would show them,
/// anything else as it came.
fn print_powershell_stderr(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    let mut err = std::io::stderr().lock();
    if !exctl_pwsh::clixml::is_clixml(raw) {
        write_all(&mut err, text.as_bytes());
        return;
    }
    match exctl_pwsh::clixml::decode_stderr(&text) {
        Ok(decoded) => {
            for line in &decoded.other_text {
                let _ = writeln!(err, "{line}");
            }
            for w in &decoded.warnings {
                let _ = writeln!(err, "WARNING: {w}");
            }
            for e in &decoded.errors {
                let _ = writeln!(err, "{}", e.message);
                if let Some(p) = &e.position {
                    let _ = writeln!(err, "{p}");
                }
                if let Some(c) = &e.category {
                    let _ = writeln!(err, "    + CategoryInfo          : {c}");
                }
                if let Some(id) = &e.fully_qualified_error_id {
                    let _ = writeln!(err, "    + FullyQualifiedErrorId : {id}");
                }
            }
        }
        // Undecodable CLIXML is still better shown than hidden.
        Err(_) => write_all(&mut err, text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_never_turns_failure_into_success() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(1), 1);
        assert_eq!(exit_status(256), 1);
        assert_eq!(exit_status(3221225477), 5); // 0xC0000005
        assert_eq!(exit_status(-1), 255);
    }

    #[test]
    fn keyring_entry_defaults_to_user_at_host() {
        assert_eq!(
            url_host("https://Mail01.Example.local:5986/wsman").as_deref(),
            Some("mail01.example.local")
        );
        assert_eq!(url_host("http://[::1]:5985/wsman").as_deref(), Some("::1"));
        assert_eq!(url_host("http://h/wsman").as_deref(), Some("h"));
    }
}
