//! The one builder of the scripts exctl sends to a host: it owns their preamble and end.
//!
//! Every script starts with the record PRELUDE (`__exctl_emit`, see
//! [`exctl_exchange::record`]) and, for scripts that use Exchange, the statements that make
//! its cmdlets available ([`exchange_prologue`]); what the prologue opens lives as long as
//! the host's session and is closed by [`session_epilogue`]. Observe, apply, export and doctor scripts are made with
//! [`ScriptBuilder`], so that the preamble is written once, here.
//!
//! Commands (a change's [`Command`]s) are rendered one per line with
//! [`Command::to_script`], their output discarded (`$null = ...`): a command is data, and
//! what a script does with its output is the script's business.

use exctl_exchange::record;
use exctl_pwsh::Command;

use crate::desired::{Access, HostSpec};

/// The variable the runner sets, before the script, to the host's password when the
/// script opens a remote Exchange session (see [`exchange_prologue`]).
pub const PASSWORD_VARIABLE: &str = "__exctl_password";

/// The statements that make the Exchange cmdlets available.
///
/// Every script of a command runs in one PowerShell session per host (see
/// [`crate::winrm`]), so these statements find what an earlier script of the same
/// session set up and leave it be: loading the snap-in a second time is PowerShell's
/// "already added" error, and a second remote session would count twice against the
/// account's PowerShellMaxConcurrency.
///
/// - `snapin`: the Exchange snap-in in this PowerShell process.
/// - `remote-session`: a session to Exchange's remote PowerShell endpoint
///   (`http://<server>/PowerShell/`, ConfigurationName Microsoft.Exchange, Kerberos, the
///   only method it accepts by default), imported into this process. The WinRS shell's
///   own logon cannot be delegated to it (the double hop), so the session is opened with
///   an explicit credential: the host's account, whose password the runner puts in
///   `$__exctl_password` before the script (never in the script text exctl builds, shows
///   or saves) and which is cleared whether or not it was needed.
pub fn exchange_prologue(host: &HostSpec) -> String {
    match host.access {
        // `Get-PSSnapin -Name` of a snap-in not added is a non-terminating error ("No
        // Windows PowerShell snap-ins matching the pattern … were found"), silenced here.
        Access::Snapin => format!(
            "if (@(Get-PSSnapin -Name {SNAPIN} -ErrorAction SilentlyContinue).Count -eq 0) {{ Add-PSSnapin {SNAPIN} -ErrorAction Stop }}\n"
        ),
        Access::RemoteSession => format!(
            "if ($__exctl_session -eq $null) {{\n\
             $__exctl_cred = New-Object System.Management.Automation.PSCredential -ArgumentList {user}, (ConvertTo-SecureString ${PASSWORD_VARIABLE} -AsPlainText -Force)\n\
             ${PASSWORD_VARIABLE} = $null\n\
             $__exctl_session = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri {uri} -Authentication Kerberos -Credential $__exctl_cred -ErrorAction Stop\n\
             $null = Import-PSSession $__exctl_session -DisableNameChecking -AllowClobber -ErrorAction Stop\n\
             }}\n\
             ${PASSWORD_VARIABLE} = $null\n",
            user = exctl_pwsh::quote(&host.user),
            uri = exctl_pwsh::quote(&host.exchange_uri()),
        ),
        // Exchange's cmdlets as functions that exctl answers through Exchange's endpoint.
        Access::Psrp => crate::relay::relay_prologue().to_string(),
    }
}

/// The Exchange snap-in of Exchange 2010.
const SNAPIN: &str = "Microsoft.Exchange.Management.PowerShell.E2010";

/// The statements run once before a host's session closes: a remote Exchange session
/// counts against the account's PowerShellMaxConcurrency until it is removed.
pub fn session_epilogue(host: &HostSpec) -> String {
    match host.access {
        Access::Snapin | Access::Psrp => String::new(),
        Access::RemoteSession => {
            "if ($__exctl_session -ne $null) { Remove-PSSession $__exctl_session; $__exctl_session = $null }\n".to_string()
        }
    }
}

/// The lines that run `commands` in order, each on its own line, output discarded.
pub fn command_lines(commands: &[Command]) -> String {
    let mut s = String::new();
    for c in commands {
        s.push_str("$null = ");
        s.push_str(&c.to_script());
        s.push('\n');
    }
    s
}

/// A script under construction (see the module docs).
#[derive(Debug, Clone)]
pub struct ScriptBuilder {
    text: String,
}

impl ScriptBuilder {
    /// A script for `host` that uses Exchange: the PRELUDE, then the Exchange prologue.
    pub fn new(host: &HostSpec) -> Self {
        let mut text = String::from(record::PRELUDE);
        text.push_str(&exchange_prologue(host));
        ScriptBuilder { text }
    }

    /// A script for `host` whose Exchange prologue must not fail silently: the PRELUDE,
    /// `functions` (definitions the handler uses), then the prologue inside `try`, with
    /// `on_failure` run if it throws (apply reports it and exits before any step).
    pub fn guarded(host: &HostSpec, functions: &str, on_failure: &str) -> Self {
        let mut text = String::from(record::PRELUDE);
        text.push_str(functions);
        let prologue = exchange_prologue(host);
        text.push_str(&format!("try {{\n{prologue}}} catch {{ {on_failure} }}\n"));
        ScriptBuilder { text }
    }

    /// A script that does not use Exchange (the host itself: locks): the PRELUDE only.
    pub fn host_only() -> Self {
        ScriptBuilder {
            text: String::from(record::PRELUDE),
        }
    }

    /// Appends a fragment of script text as it is.
    pub fn raw(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends `commands`, one line each (see [`command_lines`]).
    pub fn commands(&mut self, commands: &[Command]) -> &mut Self {
        self.text.push_str(&command_lines(commands));
        self
    }

    /// The whole script.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_one_line_each_with_their_output_discarded() {
        let c = [
            Command::new("New-Item")
                .param("Path", "HKLM:\\X")
                .switch("Force"),
            Command::new("Set-Thing").param("On", true),
        ];
        assert_eq!(
            command_lines(&c),
            "$null = New-Item -Path 'HKLM:\\X' -Force\n$null = Set-Thing -On:$true\n"
        );
        let mut b = ScriptBuilder::host_only();
        b.commands(&c).raw("# end\n");
        let s = b.finish();
        assert!(s.starts_with(record::PRELUDE));
        assert!(s.ends_with("$null = Set-Thing -On:$true\n# end\n"));
    }
}
