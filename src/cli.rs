//! The command-line interface: clap types only, no behaviour.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use exctl_engine::apply::{MaintenanceWindow, parse_duration};
use exctl_engine::rollout::Selector;

/// Keeps Microsoft Exchange 2010 servers in a declared state over WinRM.
#[derive(Debug, Parser)]
#[command(name = "exctl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests without connecting to anything: every problem at once, with
    /// file:line:column. Exit 1 on any error (and on warnings with --strict).
    Validate(ValidateArgs),

    /// The main job against simulated Exchange 2010 hosts: plan, apply, plan again.
    ///
    /// Starts one simulator per host of the manifests (default: ./manifests) on
    /// 127.0.0.1, points the hosts at them, and runs plan and apply for real.
    #[cfg(feature = "sim")]
    Demo(DemoArgs),

    /// Print the JSON Schema of manifest documents (for editors).
    Schema,

    /// List the resource kinds a manifest may declare: each section's key, scope, place
    /// in the order, what it manages and the Exchange cmdlets it calls.
    Kinds,

    /// Show what would change on each host: observes the servers (read-only) and
    /// compares them with the manifests.
    Plan(PlanArgs),

    /// Make the servers match the manifests: plan, show, confirm, then run the changes
    /// host by host in order, with the service restarts they need, and check that each
    /// host converged.
    ///
    /// PATH is manifests (a fresh plan, confirmed on the terminal or with
    /// --auto-approve) or one plan file saved by `exctl plan --out FILE` (recognised by
    /// its content), which is refused if the manifests or the servers changed since.
    /// Each host stops at its first failed step, and later hosts are not attempted.
    /// Running apply again is always safe. Exit 0 on success, 1 on any failure.
    Apply(ApplyArgs),

    /// Run PowerShell (or, with --raw, a command line) on a host over WinRM.
    ///
    /// The output streams to this terminal and exctl exits with the remote exit code
    /// (exctl's own failures exit 255, like ssh). The password comes from
    /// EXCTL_PASSWORD, the OS keyring, or a prompt; never from an argument.
    Exec(ExecArgs),

    /// Show the effective desired state of a site (or host): its baselines, site and
    /// host values merged, each value with where it comes from (layer, file:line).
    Show(ShowArgs),

    /// Write a host's current state as a manifest (read-only), ready to commit: IMAP
    /// settings, every receive connector, the store limits, throttling policies that
    /// differ from Exchange's defaults, and the associations and AD permissions of the
    /// mailboxes and users named.
    ///
    /// HOST is a host of the inventory in PATH (its endpoint, account, credential and
    /// release), or, with --endpoint, a server reached directly. The output is a
    /// `site:` document (organization-wide sections) and a `host:` document; planning it
    /// against the same server shows no change. Exit 0 on success, 1 on any failure.
    Export(ExportArgs),

    /// List the sites a selection picks (--site, --selector), in rollout order.
    Sites(SitesArgs),

    /// Store the password of a site's (or host's) hosts in the OS keyring, under the
    /// keyring:NAME entries the inventory names for them (or --entry NAME).
    ///
    /// The password is asked on the terminal (twice), or read from stdin with
    /// --password-stdin; never an argument.
    Login(LoginArgs),

    /// Remove the keyring entries of a site's (or host's) hosts (or --entry NAME).
    Logout(LoginArgs),

    /// Remove the apply lock of a host (or of a site's hosts), left by a run that was
    /// killed: only with --force, after making sure that run is gone. Recorded in the
    /// journal.
    Unlock(UnlockArgs),

    /// Diagnose the hosts of a site (or one host) when agents cannot get their mail:
    /// WinRM and the credential, Exchange version and roles, the IMAP4 service and its
    /// ports (connect and greeting), optionally a real IMAP login, recent 9646 and IMAP4
    /// events, and the shared account's effective limits against the declared capacity.
    ///
    /// Read-only. Each finding says what to change, as the manifest lines to add.
    /// Exit 0 healthy, 2 findings, 1 when exctl could not run.
    Doctor(DoctorArgs),

    /// Serve a simulated Exchange 2010 host (WS-Management at /wsman) on loopback.
    ///
    /// Prints the endpoint URL as the first line of stdout, then serves until stopped
    /// (Ctrl+C or SIGTERM). The accepted account is --user with the password from
    /// EXCTL_SIM_PASSWORD (default account CONTOSO\Administrator, password P@ssw0rd!).
    #[cfg(feature = "sim")]
    Sim(SimArgs),

    /// Print a completion script for a shell, to be sourced or installed:
    /// `exctl completions bash > /etc/bash_completion.d/exctl`,
    /// `exctl completions zsh > "${fpath[1]}/_exctl"`,
    /// `exctl completions fish > ~/.config/fish/completions/exctl.fish`,
    /// `exctl completions powershell >> $PROFILE`.
    Completions(CompletionsArgs),

    /// Print the manual page (roff) of exctl or of one of its commands:
    /// `exctl man | man -l -`, or `exctl man > /usr/local/share/man/man1/exctl.1`.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's own page (`exctl-apply(1)`) instead of exctl's.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[cfg(feature = "sim")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimAuthArg {
    Basic,
    Ntlm,
    /// Kerberos by Negotiate (SPNEGO) or Kerberos scheme; needs --keytab and --user
    /// user@REALM (or REALM\user).
    Kerberos,
}

/// Exchange 2010's built-in role groups, as `exctl sim --exchange-role` names them.
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimRoleArg {
    /// Organization Management: every cmdlet.
    OrganizationManagement,
    /// View-Only Organization Management: the Get- cmdlets only.
    #[value(alias = "view-only")]
    ViewOnlyOrganizationManagement,
    /// No management role: the Exchange session is refused.
    None,
}

#[cfg(feature = "sim")]
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Where to listen: a loopback address and port (0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5985")]
    pub listen: std::net::SocketAddr,

    /// Serve HTTPS with a self-signed certificate generated at start.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: write the certificate to trust (PEM) to this file.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca_out: Option<PathBuf>,

    /// With --tls: present one self-issued certificate with CA:TRUE (as `openssl req
    /// -x509` makes) instead of a leaf of a simulator CA; --ca-out writes it.
    #[arg(long, requires = "tls")]
    pub tls_self_issued: bool,

    /// The accepted authentication schemes (`--auth kerberos ntlm` or `--auth kerberos,ntlm`).
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1.., default_values_t = [SimAuthArg::Basic, SimAuthArg::Ntlm])]
    pub auth: Vec<SimAuthArg>,

    /// The accepted account, DOMAIN\NAME; with Kerberos also user@REALM. A local account
    /// (COMPUTER\NAME with the --computer-name, or .\NAME) is the only kind Basic
    /// accepts, as on Windows.
    #[arg(
        long,
        value_name = "DOMAIN\\NAME",
        default_value = "CONTOSO\\Administrator"
    )]
    pub user: String,

    /// Kerberos: the keytab with the service's keys (HTTP/<host>@REALM).
    #[arg(long, value_name = "FILE")]
    pub keytab: Option<PathBuf>,

    /// The host's computer name, which is also the Exchange server's name.
    #[arg(long, value_name = "NAME", default_value = "EXCH01")]
    pub computer_name: String,

    /// Accept Basic and unsealed NTLM over plain HTTP (AllowUnencrypted=true).
    #[arg(long)]
    pub allow_unencrypted: bool,

    /// Require NTLM channel binding over HTTPS (CbtHardeningLevel=Strict).
    #[arg(long)]
    pub cbt_strict: bool,

    /// The host's MaxEnvelopeSizekb.
    #[arg(long, value_name = "KB", default_value_t = 150)]
    pub max_envelope_kb: u32,

    /// The host's MaxShellsPerUser.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub max_shells: u32,

    /// Delay added to every request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Fault injection: close each connection after N requests, so clients must
    /// authenticate again.
    #[arg(long, value_name = "N")]
    pub close_connections_after: Option<u32>,

    /// Model a host set up for CredSSP or Kerberos delegation: WinRM logons can then
    /// authenticate onward to a domain controller, so the Exchange snap-in's cmdlets
    /// work in WinRS and /wsman sessions. Without it (Windows' default) they fail on
    /// Active Directory (the double hop); Exchange's /PowerShell endpoint and sessions
    /// imported from it work either way.
    #[arg(long)]
    pub delegation: bool,

    /// The account's Exchange management roles (RBAC), which decide the cmdlets of its
    /// Exchange remote sessions: all of them, the Get- ones only, or none (Exchange then
    /// refuses the session).
    #[arg(long, value_enum, value_name = "ROLE", default_value_t = SimRoleArg::OrganizationManagement)]
    pub exchange_role: SimRoleArg,

    #[command(flatten)]
    pub exchange: ExchangeSimArgs,
}

/// An Exchange 2010 release, as the inventory spells it.
#[cfg(feature = "sim")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExchangeRelease {
    /// Exchange 2010 RTM (14.0).
    #[value(name = "2010-rtm")]
    Rtm,
    /// Service Pack 1 (14.1).
    #[value(name = "2010-sp1")]
    Sp1,
    /// Service Pack 2 (14.2).
    #[value(name = "2010-sp2")]
    Sp2,
    /// Service Pack 3 (14.3).
    #[value(name = "2010-sp3")]
    Sp3,
}

/// The options of the simulated Exchange organization (flattened into `exctl sim`'s
/// arguments).
#[cfg(feature = "sim")]
#[derive(Debug, Args)]
pub struct ExchangeSimArgs {
    /// The Exchange 2010 release the server runs [default: 2010-sp3, or the state file's].
    #[arg(long, value_enum, value_name = "RELEASE")]
    pub exchange: Option<ExchangeRelease>,

    /// Start from this organization state (YAML; JSON when it ends in .json) instead of
    /// the seed; parts it leaves out get Setup's defaults. It must have a server named
    /// --computer-name.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// When stopped (Ctrl+C, SIGTERM), write the organization back to the --state file.
    #[arg(long, requires = "state")]
    pub write_state_on_exit: bool,

    /// Also serve the server's IMAP4 listener on this loopback address (port 0 picks a
    /// free one); its address is printed on stderr.
    #[arg(long, value_name = "ADDR")]
    pub imap_listen: Option<std::net::SocketAddr>,

    /// Real seconds per simulated second: service restarts, Start-Sleep and Get-Date run
    /// on simulated time (0.001 makes the Information Store's 45 s restart take 45 ms).
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_scale)]
    pub time_scale: f64,

    /// How long loading the Exchange snap-in, or opening a session on Exchange's endpoint,
    /// takes, in milliseconds (real servers take seconds; for benchmarks that should feel
    /// them).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub startup_ms: u64,

    /// How long a service of the host takes to stop and to start, in simulated seconds
    /// (default: MSExchangeIS 15,30; MSExchangeIMAP4 2,3; others 1,2). Repeatable; e.g.
    /// MSExchangeIS=15,3600 for a store that does not come back in time.
    #[arg(long, value_name = "NAME=STOP,START", value_parser = parse_service_timing)]
    pub service_timing: Vec<(String, f64, f64)>,
}

#[cfg(feature = "sim")]
fn parse_service_timing(s: &str) -> Result<(String, f64, f64), String> {
    let bad = || format!("'{s}' is not NAME=STOP,START (seconds, e.g. MSExchangeIS=15,3600)");
    let (name, secs) = s.split_once('=').ok_or_else(bad)?;
    let (stop, start) = secs.split_once(',').ok_or_else(bad)?;
    let secs = |x: &str| match x.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && (0.0..=86_400.0).contains(&f) => Ok(f),
        _ => Err(bad()),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(bad());
    }
    Ok((name.to_string(), secs(stop)?, secs(start)?))
}

#[cfg(feature = "sim")]
fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// NTLM; over HTTP every message is encrypted.
    Ntlm,
    /// HTTP Basic; HTTPS only (see --allow-basic-over-http).
    Basic,
    /// Kerberos (Negotiate or Kerberos scheme) with the ticket in KRB5CCNAME, or one got
    /// in memory from EXCTL_PASSWORD; over HTTP every message is encrypted.
    Kerberos,
    /// Kerberos when the server and the KDC can do it, else NTLM with the password.
    Negotiate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KerberosSchemeArg {
    /// Negotiate, or Kerberos when the server offers only that.
    Auto,
    /// `Authorization: Negotiate` (SPNEGO carrying Kerberos).
    Negotiate,
    /// `Authorization: Kerberos` (raw Kerberos tokens).
    Kerberos,
}

/// Where and as whom to connect.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The WinRM endpoint, e.g. http://mail01.example.local:5985/wsman or https://…:5986/wsman
    /// (default with HOST: the inventory's).
    #[arg(long, value_name = "URL", required_unless_present = "host")]
    pub endpoint: Option<String>,

    /// The account: DOMAIN\user, user@domain or a local user (default with HOST: the
    /// inventory's).
    #[arg(long, value_name = "USER", required_unless_present = "host")]
    pub user: Option<String>,

    /// The authentication method.
    #[arg(long, value_enum, default_value_t = AuthArg::Ntlm)]
    pub auth: AuthArg,

    /// Kerberos: the server's service principal (default HTTP/<host of the endpoint>).
    #[arg(long, value_name = "SPN")]
    pub spn: Option<String>,

    /// Kerberos: the HTTP scheme; auto sends Negotiate and switches to Kerberos when the
    /// server offers only that.
    #[arg(long, value_enum, value_name = "SCHEME", default_value_t = KerberosSchemeArg::Auto)]
    pub kerberos_scheme: KerberosSchemeArg,

    /// Trust only the CA certificates in this PEM file (HTTPS); a self-issued listener
    /// certificate in it is trusted for its names and dates.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Trust exactly the listener certificate with this SHA-256 fingerprint (sha256:…),
    /// whatever its issuer, names or dates: a pin.
    #[arg(long, value_name = "sha256:HEX", value_parser = parse_pin)]
    pub tls_fingerprint: Option<String>,

    /// Do not verify the server's TLS certificate. Anyone on the path can then read the
    /// traffic, credentials included: for labs only.
    #[arg(long)]
    pub insecure_skip_verify: bool,

    /// Allow Basic authentication over plain HTTP, which sends the password in the clear.
    #[arg(long)]
    pub allow_basic_over_http: bool,

    /// The keyring entry holding the password (default: USER@HOST of the endpoint).
    #[arg(long, value_name = "NAME")]
    pub keyring_entry: Option<String>,

    /// How long the server may hold a request waiting for output, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub operation_timeout: u64,

    /// The server's MaxEnvelopeSizekb (150 on Windows Server 2008 R2, 500 later).
    #[arg(long, value_name = "KB", default_value_t = 150)]
    pub max_envelope_kb: usize,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A host of the inventory: its endpoint, account, authentication, CA file and
    /// credential are used (flags given here win).
    #[arg(value_name = "HOST")]
    pub host: Option<String>,

    /// With HOST: the manifest files or directories of the inventory (default: .).
    #[arg(value_name = "PATH", requires = "host")]
    pub paths: Vec<PathBuf>,

    /// With HOST and --psrp: run at the host's Exchange endpoint (its session_uri, by
    /// default http://HOST/PowerShell/, configuration Microsoft.Exchange) instead of its
    /// WinRM endpoint.
    #[arg(long, requires = "host", requires = "psrp")]
    pub exchange: bool,

    /// The password found from the inventory host's credential (not a flag).
    #[arg(skip)]
    pub host_password: Option<exctl_secret::Secret>,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Send the command line as it is, without the PowerShell runner (as winrs does):
    /// the first word is the program, the rest its arguments.
    #[arg(long)]
    pub raw: bool,

    /// Read the script from this file ('-' for stdin) instead of the arguments.
    #[arg(long, value_name = "FILE", conflicts_with = "raw")]
    pub file: Option<PathBuf>,

    /// Give up, and terminate the remote command, after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// Run over PowerShell remoting (PSRP): the script is one pipeline in a runspace
    /// pool of --configuration, and its objects come back as objects.
    #[arg(long, conflicts_with = "raw")]
    pub psrp: bool,

    /// With --psrp: the session configuration (Microsoft.Exchange on Exchange's
    /// http://SERVER/PowerShell/ endpoint).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "Microsoft.PowerShell",
        requires = "psrp"
    )]
    pub configuration: String,

    /// With --psrp: the endpoint's URL path instead of the one in --endpoint
    /// (e.g. PowerShell for Exchange's endpoint).
    #[arg(long, value_name = "PATH", requires = "psrp")]
    pub path: Option<String>,

    /// With --psrp: send this command with the parameters after -- (typed as PowerShell
    /// binds them) instead of a script, as NoLanguage endpoints such as
    /// Microsoft.Exchange require.
    #[arg(long, value_name = "NAME", requires = "psrp", conflicts_with = "file")]
    pub command: Option<String>,

    /// With --psrp: how output objects are printed.
    #[arg(long, value_enum, default_value_t = ExecFormat::Text, requires = "psrp")]
    pub format: ExecFormat,

    /// With --psrp: also print warning, verbose and debug records (to stderr).
    #[arg(long, requires = "psrp")]
    pub verbose: bool,

    /// The PowerShell script (joined with spaces), or with --raw the command line.
    #[arg(last = true, value_name = "SCRIPT")]
    pub script: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecFormat {
    /// As PowerShell's Out-String shows them: primitives one per line, objects as
    /// `Name : Value` blocks.
    Text,
    /// One JSON array of the objects (type names, properties).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Human-readable, coloured on a terminal.
    Text,
    /// For pull-request comments.
    Markdown,
    /// For machines (format_version 2).
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,

    /// Print problems as one `file:line:col: severity[code]: message` line each.
    #[arg(long)]
    pub short: bool,
}

/// Which sites to work on.
#[derive(Debug, Args, Default)]
pub struct SelectArgs {
    /// Only this site (or the site of this host); repeat or separate with commas.
    #[arg(long = "site", value_name = "NAME")]
    pub site: Vec<String>,

    /// Only sites whose labels match: label=value, label!=value, label or !label,
    /// separated by commas (all must hold).
    #[arg(long, short = 'l', value_name = "SELECTOR", value_parser = parse_selector)]
    pub selector: Option<Selector>,
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".into()),
    }
}

fn parse_selector(s: &str) -> Result<Selector, String> {
    s.parse()
        .map_err(|e: exctl_engine::rollout::SelectError| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Bars when stderr is a terminal, lines otherwise.
    Auto,
    /// A live bar per running site, finished steps and sites printed above the bars
    /// (lines when stderr is not a terminal).
    Bars,
    /// One line per change of state, for logs: a site starts, a service waited for
    /// reaches each state (once, not once per poll), a step or a site ends (with its
    /// duration).
    Lines,
    /// No progress: only the results (plan's timing table left out too).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// YAML-like, a comment with the origin on every value.
    Text,
    /// Every value as {value, from, at}.
    Json,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A site, or a host of the inventory.
    #[arg(value_name = "SITE|HOST")]
    pub target: String,

    /// Manifest files or directories.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// A table per host, then the findings.
    Text,
    /// For machines (format_version 1).
    Json,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// A host, or a site of the inventory.
    #[arg(value_name = "SITE|HOST")]
    pub target: String,

    /// Manifest files or directories.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Required: the lock belongs to another run, which must be gone.
    #[arg(long)]
    pub force: bool,

    /// Where the journal of this run goes (as for apply).
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A site, or a host of the inventory.
    #[arg(value_name = "SITE|HOST")]
    pub target: String,

    /// Manifest files or directories.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,

    /// The shared account whose limits to read (default: --imap-login, else the
    /// account of the host's capacity: section).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,

    /// Also log in to IMAP4 with this account (AUTHENTICATE PLAIN, as agent desktops do).
    #[arg(long, value_name = "ACCOUNT")]
    pub imap_login: Option<String>,

    /// Where the --imap-login password is: env:VAR, keyring:NAME or prompt.
    #[arg(long, value_name = "REF", default_value = "env:EXCTL_IMAP_PASSWORD")]
    pub imap_credential: String,

    /// Plain IMAP ports to check (default: the server's UnencryptedOrTLSBindings, else 143).
    #[arg(long, value_name = "PORT", value_delimiter = ',')]
    pub imap_port: Vec<u16>,

    /// SSL IMAP ports to check with a TCP connect (default: the server's SSLBindings,
    /// else 993); 0 checks none.
    #[arg(long, value_name = "PORT", value_delimiter = ',')]
    pub imaps_port: Vec<u16>,

    /// How far back to read the event log: seconds, or a number with s, m or h.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_timeout)]
    pub since: Duration,

    /// Seconds a connection or an answer may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,

    /// Do not verify TLS certificates of any host (labs only).
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A host of the inventory, or with --endpoint the server's computer name.
    #[arg(value_name = "HOST")]
    pub host: String,

    /// Manifest files or directories holding the inventory (not read with --endpoint).
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Only these kinds (repeat or separate with commas; default: all).
    #[arg(long, value_name = "KIND", value_delimiter = ',', help = kinds_help(), long_help = kinds_long_help())]
    pub kinds: Vec<String>,

    /// Mailboxes (or users, contacts, computers) whose throttling policy association to
    /// export (repeat or separate with commas).
    #[arg(long, value_name = "IDENTITY", value_delimiter = ',')]
    pub mailboxes: Vec<String>,

    /// Users whose AD permissions on the organization to export, DOMAIN\user (repeat or
    /// separate with commas).
    #[arg(long, value_name = "USER", value_delimiter = ',')]
    pub users: Vec<String>,

    /// Write the manifest to FILE instead of stdout (an existing file is refused unless
    /// --force).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Overwrite the -o file if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,

    /// Reach HOST at this WinRM endpoint instead of through an inventory (with --user
    /// and --exchange; the password as for `exctl exec`).
    #[arg(long, value_name = "URL", requires_all = ["user", "exchange"])]
    pub endpoint: Option<String>,

    /// With --endpoint: the account, DOMAIN\user.
    #[arg(long, value_name = "USER", requires = "endpoint")]
    pub user: Option<String>,

    /// With --endpoint: the authentication method.
    #[arg(long, value_enum, default_value_t = AuthArg::Ntlm, requires = "endpoint")]
    pub auth: AuthArg,

    /// With --endpoint and Kerberos: the server's service principal (default
    /// HTTP/<host of the endpoint>).
    #[arg(long, value_name = "SPN", requires = "endpoint")]
    pub spn: Option<String>,

    /// With --endpoint: the release the server runs (2010-rtm, 2010-sp1, 2010-sp2,
    /// 2010-sp3; checked against the server).
    #[arg(long, value_name = "RELEASE", requires = "endpoint")]
    pub exchange: Option<String>,

    /// With --endpoint: trust only the CA certificates in this PEM file (HTTPS).
    #[arg(long, value_name = "FILE", requires = "endpoint")]
    pub ca_file: Option<PathBuf>,

    /// Do not verify the server's TLS certificate (labs only).
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    /// Manifest files or directories.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub select: SelectArgs,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// A site, or a host of the inventory, whose keyring:NAME credentials to store.
    #[arg(value_name = "SITE|HOST", required_unless_present = "entry")]
    pub target: Option<String>,

    /// Manifest files or directories.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Store (or remove) this keyring entry, without reading manifests.
    #[arg(long, value_name = "NAME", conflicts_with = "target")]
    pub entry: Option<String>,

    /// Read the password from the first line of stdin instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Manifest files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Give up on a site not planned within this time (its hosts are slow or
    /// unreachable); the others go on. Seconds, or a number with s, m or h.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    pub site_timeout: Duration,

    /// Progress on stderr (see the values).
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Also write the plan as a pull-request comment to FILE (markdown within GitHub's
    /// comment limit, whatever --format says).
    #[arg(long, value_name = "FILE")]
    pub markdown_out: Option<PathBuf>,

    /// Where the full plan can be read, linked from a markdown comment that had to be
    /// cut to fit (e.g. the CI run's URL).
    #[arg(long, value_name = "URL")]
    pub full_plan_url: Option<String>,

    /// The largest markdown comment, in bytes (GitHub allows 65536 characters).
    #[arg(long, value_name = "BYTES", default_value_t = exctl_engine::report::GITHUB_COMMENT_LIMIT)]
    pub markdown_max_bytes: usize,

    /// Also say why the steps run in their order (once, after the plan).
    #[arg(long)]
    pub explain: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,

    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Treat manifest warnings as errors.
    #[arg(long)]
    pub strict: bool,

    /// How many sites to plan at once (the hosts of a site are observed together).
    #[arg(long, value_name = "N", default_value_t = exctl_engine::rollout::DEFAULT_PARALLEL, value_parser = parse_positive)]
    pub parallel: usize,

    /// Do not verify TLS certificates of any host (labs only).
    #[arg(long)]
    pub insecure_skip_verify: bool,

    /// Also save the plan to FILE (JSON, no secrets), to apply it later with
    /// `exctl apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    /// Progress and a summary for people.
    Text,
    /// The result for machines (format_version 1) on stdout; progress goes to stderr.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartArg {
    /// Restart services where the plan says (IMAP4 after IMAP settings, POP3 after POP
    /// settings, the Information Store last), and wait until they are back.
    Auto,
    /// Apply the changes but restart nothing: the settings stay pending until the
    /// service restarts, and the next plan shows the restart.
    Never,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files or directories, or one plan file.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Where the journal of this run goes (one file per run, no secrets) [default:
    /// EXCTL_JOURNAL_DIR, else ~/.local/state/exctl/journal, %LOCALAPPDATA%\exctl\journal
    /// on Windows].
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,

    /// Apply without asking for confirmation (for scripts).
    #[arg(long)]
    pub auto_approve: bool,

    /// Whether to restart the services the changes need.
    #[arg(long, value_enum, default_value_t = RestartArg::Auto)]
    pub restart: RestartArg,

    /// Allow the Information Store restart only in this daily window of this machine's
    /// local time (it may span midnight, e.g. 22:00-04:00). A host whose plan restarts it
    /// outside the window is refused before anything changes on it.
    #[arg(long, value_name = "HH:MM-HH:MM", value_parser = parse_window)]
    pub maintenance_window: Option<MaintenanceWindow>,

    /// How long a restarted service (and its databases) may take to come back: seconds,
    /// or a number with s, m or h.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_timeout)]
    pub restart_timeout: Duration,

    /// On DAG members, move the active databases away before the Information Store
    /// restart (StartDagServerMaintenance.ps1) and end the maintenance after it
    /// (StopDagServerMaintenance.ps1).
    #[arg(long)]
    pub move_active_databases: bool,

    /// Also say why the steps run in their order (once, after the plan).
    #[arg(long)]
    pub explain: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ApplyFormat::Text)]
    pub format: ApplyFormat,

    /// Treat manifest warnings as errors.
    #[arg(long)]
    pub strict: bool,

    /// How many sites to work on at once (the hosts of a site change one after
    /// another).
    #[arg(long, value_name = "N", default_value_t = exctl_engine::rollout::DEFAULT_PARALLEL, value_parser = parse_positive)]
    pub parallel: usize,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Apply the first N sites that have changes alone first; if any of them fails, no
    /// other site starts.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub canary: usize,

    /// After the canary, start the other sites in batches of N, each batch when the
    /// previous one has finished (default: all in one batch).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    pub batch_size: Option<usize>,

    /// Start no new site once this many sites have failed (sites already running
    /// finish).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    pub max_failures: usize,

    /// Give up on observing a site that takes longer than this (before and after its
    /// changes; changes themselves are never abandoned).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_timeout)]
    pub site_timeout: Duration,

    /// Progress on stderr (see the values).
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Do not verify TLS certificates of any host (labs only).
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

fn parse_window(s: &str) -> Result<MaintenanceWindow, String> {
    s.parse()
        .map_err(|e: exctl_engine::apply::ApplyError| e.to_string())
}

fn parse_pin(s: &str) -> Result<String, String> {
    exctl_winrm::tls::parse_fingerprint(s)
        .map(|_| s.to_string())
        .ok_or_else(|| {
            "expected sha256: followed by 64 hexadecimal digits (colons allowed)".to_string()
        })
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(feature = "sim")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Manifest files or directories (default: manifests).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Real seconds per simulated second (service restarts take 45 simulated seconds).
    #[arg(long, value_name = "F", default_value_t = 0.01)]
    pub time_scale: f64,
}

/// The help of `export --kinds`, from the registry of kinds (a new kind shows up here by
/// being registered).
fn kinds_help() -> String {
    let keys: Vec<&str> = exctl_exchange::kinds::ALL.iter().map(|k| k.key()).collect();
    format!(
        "Only these kinds (repeat or separate with commas; default: all): {}",
        keys.join(", ")
    )
}

/// What `exctl kinds` prints: every kind of the registry, in plan order, in its own
/// words (`Kind::help`, `Kind::cmdlets`) and the services its changes may restart
/// (`Kind::services`).
pub fn kinds_listing() -> String {
    let mut s = String::new();
    for k in exctl_exchange::kinds::ALL {
        let scope = match k.scope() {
            exctl_exchange::Scope::Server => "each target server",
            exctl_exchange::Scope::Organization => "the organization, once",
        };
        let cmdlets = match k.cmdlets() {
            [] => "none (PowerShell's own)".to_string(),
            c => c.join(", "),
        };
        let restarts = match k.services() {
            [] => "none".to_string(),
            services => services
                .iter()
                .map(|svc| format!("{} ({})", svc.name(), svc.consequence()))
                .collect::<Vec<_>>()
                .join("; "),
        };
        s.push_str(&format!(
            "{} ({}): {}, phase {}\n  {}\n  Exchange cmdlets: {}\n  Restarts: {}\n\n",
            k.key(),
            k.title(),
            scope,
            k.order().phase,
            k.help(),
            cmdlets,
            restarts
        ));
    }
    s
}

/// The long help of `export --kinds` (`--help`): each kind of the registry with what it
/// manages, in its own words (`Kind::help`).
fn kinds_long_help() -> String {
    let mut s = String::from("Only these kinds (repeat or separate with commas; default: all):");
    for k in exctl_exchange::kinds::ALL {
        s.push_str(&format!("\n\n{}: {}", k.key(), k.help()));
    }
    s
}
