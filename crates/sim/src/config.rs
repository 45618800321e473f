//! The simulator's settings: the listener, the accepted authentication, the one account
//! it knows (a domain account, or a local one), what that account may do beyond the host
//! (delegation, Exchange management roles), and the WinRM service configuration values
//! a Windows Server 2008 R2 host has by default (MaxEnvelopeSizekb 150, MaxShellsPerUser
//! 30, MaxTimeoutms 60000, AllowUnencrypted false).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::inject::FaultPlan;

/// An HTTP authentication scheme the simulated WinRM service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Basic`; only over TLS unless `allow_unencrypted`.
    Basic,
    /// NTLM, carried in `Authorization: Negotiate` (or `NTLM`).
    Ntlm,
    /// Kerberos, carried in `Authorization: Negotiate` (SPNEGO) or `Kerberos`; needs
    /// [`SimConfig::keytab`].
    Kerberos,
}

/// The management roles the account holds in the Exchange organization (Exchange 2010's
/// role-based access control), which decide the cmdlets of its Exchange remote sessions.
///
/// Exchange builds each remote session from the user's role assignments: a cmdlet outside
/// them is not in the session at all (PowerShell's "The term 'New-ManagementRoleAssignment'
/// is not recognized ..." for a user without the role, dmaasland/proxyshell-poc#4), and a
/// user without any role cannot open one (KB 3058293: "The user ".../Users/Administrator"
/// isn't assigned to any management roles."). The role groups are Exchange 2010's
/// built-in ones ("Built-in Role Groups", Exchange Server 2010,
/// https://learn.microsoft.com/en-us/previous-versions/exchange-server/exchange-140/dd351266(v=exchg.140)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExchangeRole {
    /// The "Organization Management" role group: every cmdlet.
    #[default]
    OrganizationManagement,
    /// The "View-Only Organization Management" role group: the `Get-*` cmdlets only.
    ViewOnlyOrganizationManagement,
    /// No management role: Exchange refuses the remote session.
    None,
}

impl ExchangeRole {
    /// The name `/sim/state` and `exctl sim --exchange-role` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeRole::OrganizationManagement => "organization-management",
            ExchangeRole::ViewOnlyOrganizationManagement => "view-only-organization-management",
            ExchangeRole::None => "none",
        }
    }

    /// Whether a remote session of this role holds the cmdlet `name` (an Exchange one).
    pub fn allows(self, name: &str) -> bool {
        match self {
            ExchangeRole::OrganizationManagement => true,
            // View-Only Organization Management holds the View-Only Configuration and
            // View-Only Recipients roles: their cmdlets are the Get- ones.
            ExchangeRole::ViewOnlyOrganizationManagement => name
                .get(..4)
                .is_some_and(|verb| verb.eq_ignore_ascii_case("Get-")),
            ExchangeRole::None => false,
        }
    }
}

/// How the simulator is set up. `Default` is a 2008 R2 host on `127.0.0.1:0`, plain HTTP,
/// Basic and NTLM enabled, account `CONTOSO\Administrator` (a domain account, so Basic
/// refuses it: see [`SimConfig::is_local_account`]), no delegation, Organization
/// Management.
#[derive(Clone)]
pub struct SimConfig {
    /// Where to listen; must be a loopback address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Serve HTTPS with a certificate generated at start.
    pub tls: bool,
    /// With `tls`: serve one self-issued certificate with CA:TRUE (as `openssl req -x509`
    /// and `New-SelfSignedCertificate` make, and many Windows listeners use) instead of a
    /// leaf issued by a simulator CA.
    pub tls_self_issued: bool,
    /// Accepted schemes.
    pub auth: Vec<AuthScheme>,
    /// The account: (NetBIOS domain, user name). A local account has the computer name
    /// (or an empty domain, or `.`) as its domain.
    pub user: (String, String),
    /// The account's password.
    pub password: String,
    /// Kerberos: the keytab holding the service's keys (`HTTP/<name>@REALM`).
    pub keytab: Option<std::path::PathBuf>,
    /// Kerberos: the accepted client principal, `user@REALM`.
    pub kerberos_principal: Option<String>,
    /// `MaxEnvelopeSizekb`: larger requests get HTTP 413.
    pub max_envelope_size_kb: u32,
    /// `Winrs/MaxShellsPerUser`.
    pub max_shells_per_user: u32,
    /// `MaxTimeoutms`: the cap on a request's OperationTimeout.
    pub max_timeout_ms: u32,
    /// Added before every request is answered.
    pub latency: Duration,
    /// `Service/AllowUnencrypted`: accept Basic over HTTP and unsealed NTLM over HTTP.
    pub allow_unencrypted: bool,
    /// Require NTLM channel binding over HTTPS (`CbtHardeningLevel=Strict`).
    pub cbt_strict: bool,
    /// The host's NetBIOS name (`hostname`, `COMPUTERNAME`, NTLM target info).
    pub computer_name: String,
    /// The AD DNS domain (NTLM target info).
    pub dns_domain: String,
    /// The host is set up for CredSSP or Kerberos delegation, so a WinRM logon can reach
    /// a domain controller in turn. Without it (Windows' default), a WinRS or PSRP
    /// session on `/wsman` is a network logon that cannot authenticate onward (the double
    /// hop): the Exchange snap-in loads, and its cmdlets fail on Active Directory.
    pub delegation: bool,
    /// The account's Exchange management roles (RBAC), for Exchange's endpoint and the
    /// sessions imported from it.
    pub exchange_role: ExchangeRole,
    /// Fault injection: close each connection after this many requests (as a load
    /// balancer or an idle timeout would), so clients must authenticate again.
    pub close_after_requests: Option<u32>,
    /// Fault injection on demand (see [`crate::inject`]): keep a clone of the handle to
    /// add rules while the simulator runs.
    pub faults: FaultPlan,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: false,
            tls_self_issued: false,
            auth: vec![AuthScheme::Basic, AuthScheme::Ntlm],
            user: ("CONTOSO".to_string(), "Administrator".to_string()),
            password: "P@ssw0rd!".to_string(),
            keytab: None,
            kerberos_principal: None,
            max_envelope_size_kb: 150,
            max_shells_per_user: 30,
            max_timeout_ms: 60_000,
            latency: Duration::ZERO,
            allow_unencrypted: false,
            cbt_strict: false,
            computer_name: "EXCH01".to_string(),
            dns_domain: "contoso.local".to_string(),
            delegation: false,
            exchange_role: ExchangeRole::OrganizationManagement,
            close_after_requests: None,
            faults: FaultPlan::new(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never appears in logs or test failure output.
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("keytab", &self.keytab)
            .field("kerberos_principal", &self.kerberos_principal)
            .field("max_envelope_size_kb", &self.max_envelope_size_kb)
            .field("max_shells_per_user", &self.max_shells_per_user)
            .field("max_timeout_ms", &self.max_timeout_ms)
            .field("latency", &self.latency)
            .field("allow_unencrypted", &self.allow_unencrypted)
            .field("cbt_strict", &self.cbt_strict)
            .field("computer_name", &self.computer_name)
            .field("dns_domain", &self.dns_domain)
            .field("delegation", &self.delegation)
            .field("exchange_role", &self.exchange_role)
            .field("close_after_requests", &self.close_after_requests)
            .field("faults", &self.faults)
            .finish()
    }
}

impl SimConfig {
    /// `DOMAIN\user`, the account as processes and quotas see it (a local account as
    /// `COMPUTER\user`).
    pub fn account(&self) -> String {
        if self.is_local_account() {
            format!("{}\\{}", self.computer_name, self.user.1)
        } else {
            format!("{}\\{}", self.user.0, self.user.1)
        }
    }

    /// Whether the account is one of the host's own (its domain the computer name, empty,
    /// or `.`) rather than a domain account.
    pub fn is_local_account(&self) -> bool {
        let d = &self.user.0;
        d.is_empty() || d == "." || d.eq_ignore_ascii_case(&self.computer_name)
    }

    /// The shell Owner as Windows prints it: a local account by name alone, a domain
    /// account as `DOMAIN\user` (compare the recordings' `vagrant` and
    /// `DOMAIN\vagrant-domain`).
    pub fn owner(&self) -> String {
        if self.is_local_account() {
            self.user.1.clone()
        } else {
            self.account()
        }
    }

    /// Whether the Kerberos principal a client authenticated as (`user@REALM`, as
    /// GSSAPI displays it) is the accepted one.
    pub fn kerberos_principal_matches(&self, principal: &str) -> bool {
        let Some(accepted) = &self.kerberos_principal else {
            return false;
        };
        let split = |p: &str| {
            p.rsplit_once('@')
                .map(|(u, r)| (u.to_string(), r.to_string()))
        };
        match (split(accepted), split(principal)) {
            // User names are case-insensitive in AD; realms are compared as AD does too.
            (Some((au, ar)), Some((pu, pr))) => {
                au.eq_ignore_ascii_case(&pu) && ar.eq_ignore_ascii_case(&pr)
            }
            _ => false,
        }
    }

    /// MaxEnvelopeSizekb in bytes.
    pub fn max_envelope_bytes(&self) -> usize {
        self.max_envelope_size_kb as usize * 1024
    }

    /// Whether `name` (`user`, `DOMAIN\user` or `user@domain`) and `password` are the
    /// configured account.
    pub fn credentials_match(&self, name: &str, password: &str) -> bool {
        let (domain, user) = &self.user;
        let local = self.is_local_account();
        let name_ok = if let Some((d, u)) = name.split_once('\\') {
            (d.eq_ignore_ascii_case(domain)
                || d == "."
                || (local && d.eq_ignore_ascii_case(&self.computer_name)))
                && u.eq_ignore_ascii_case(user)
        } else if let Some((u, d)) = name.split_once('@') {
            u.eq_ignore_ascii_case(user)
                && (d.eq_ignore_ascii_case(&self.dns_domain) || d.eq_ignore_ascii_case(domain))
        } else {
            name.eq_ignore_ascii_case(user)
        };
        name_ok && password == self.password
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_every_spelling() {
        let c = SimConfig::default();
        assert!(c.credentials_match("administrator", "P@ssw0rd!"));
        assert!(c.credentials_match("contoso\\Administrator", "P@ssw0rd!"));
        assert!(c.credentials_match("Administrator@contoso.local", "P@ssw0rd!"));
        assert!(!c.credentials_match("OTHER\\Administrator", "P@ssw0rd!"));
        assert!(!c.credentials_match("Administrator", "wrong"));
        assert!(!format!("{c:?}").contains("P@ss"));
    }

    #[test]
    fn local_accounts_by_every_spelling_of_their_domain() {
        let mut c = SimConfig::default();
        assert!(!c.is_local_account());
        for domain in ["EXCH01", "exch01", "", "."] {
            c.user = (domain.into(), "admin".into());
            assert!(c.is_local_account(), "{domain:?}");
            assert_eq!(c.account(), "EXCH01\\admin");
            assert_eq!(c.owner(), "admin");
            assert!(c.credentials_match("EXCH01\\admin", "P@ssw0rd!"));
            assert!(c.credentials_match(".\\admin", "P@ssw0rd!"));
            assert!(c.credentials_match("admin", "P@ssw0rd!"));
        }
    }

    #[test]
    fn view_only_holds_the_get_cmdlets() {
        let r = ExchangeRole::ViewOnlyOrganizationManagement;
        assert!(r.allows("Get-ImapSettings") && r.allows("get-mailbox"));
        assert!(!r.allows("Set-ImapSettings") && !r.allows("Add-ADPermission"));
        assert!(ExchangeRole::OrganizationManagement.allows("Set-ImapSettings"));
        assert!(!ExchangeRole::None.allows("Get-ImapSettings"));
    }
}
