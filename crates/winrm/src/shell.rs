//! The remote shell: a client, its shells and their commands.
//!
//! A [`Client`] talks to one host. [`Client::open_shell`] creates a WinRS shell,
//! [`Shell::start`] starts a command in it, and [`RunningCommand`] feeds stdin and reads
//! output until the command is done. Output is read with one Receive outstanding at a
//! time; an OperationTimeout fault on Receive only means that nothing was written yet, so
//! the client asks again. Output can be streamed to a sink of the caller's (no limit) or
//! buffered, up to a hard limit ([`ClientConfig::max_buffered_output`]).

use std::sync::Arc;
use std::time::Duration;

use exctl_secret::Secret;

use crate::envelope::{self, HeaderContext, Request, ShellOptions, SignalCode};
use crate::error::Error;
use crate::response::{self, Checked, CommandState, Received};
use crate::retry::{self, RetryPolicy};
use crate::tls::TrustPolicy;
use crate::transport::{AuthMethod, KerberosScheme, Transport, TransportConfig};
use crate::xml::Element;

/// The default limit on output buffered for one command: 64 MiB.
pub const DEFAULT_MAX_BUFFERED_OUTPUT: usize = 64 * 1024 * 1024;

/// Everything needed to talk to one host.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:5985/wsman` or `https://host:5986/wsman`.
    pub endpoint: String,
    /// The authentication method.
    pub auth: AuthMethod,
    /// `DOMAIN\user`, `user@domain` or a local user name.
    pub user: String,
    /// The password. With Kerberos an empty password means the operator's ticket cache
    /// (`KRB5CCNAME` or the default cache).
    pub password: Secret,
    /// Kerberos: the service principal; `None` means `HTTP/<host of the endpoint>`.
    pub spn: Option<String>,
    /// Kerberos: the HTTP scheme (`Negotiate` or `Kerberos`).
    pub kerberos_scheme: KerberosScheme,
    /// Which TLS certificates to trust (HTTPS).
    pub trust: TrustPolicy,
    /// Allow Basic over plain HTTP. Off by default: the password would travel in clear.
    pub allow_basic_over_http: bool,
    /// How long the server may hold a Receive before answering TimedOut.
    pub operation_timeout: Duration,
    /// The HTTP connect timeout.
    pub connect_timeout: Duration,
    /// The largest response we accept (`MaxEnvelopeSize` header), in bytes.
    pub max_envelope_size: usize,
    /// The server's MaxEnvelopeSizekb: requests (stdin chunks) are kept below it.
    /// 150 is the Windows Server 2008 R2 default and safe for every later version.
    pub server_max_envelope_kb: usize,
    /// The most output one command may buffer in [`Shell::run`]; streaming has no limit.
    pub max_buffered_output: usize,
    /// The locale of messages the server writes.
    pub locale: String,
    /// How much longer than the OperationTimeout the HTTP read may take (network
    /// latency, a busy server). Default 10 s.
    pub read_timeout_margin: Duration,
    /// Which failed requests are repeated and how long the client waits in between; see
    /// [`crate::retry`].
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A configuration with the defaults: NTLM, system roots, OperationTimeout 20 s,
    /// MaxEnvelopeSize 150 KB both ways, 64 MiB output buffer.
    pub fn new(endpoint: impl Into<String>, user: impl Into<String>, password: Secret) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            auth: AuthMethod::Ntlm,
            user: user.into(),
            password,
            spn: None,
            kerberos_scheme: KerberosScheme::Auto,
            trust: TrustPolicy::SystemRoots,
            allow_basic_over_http: false,
            operation_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(15),
            max_envelope_size: 153_600,
            server_max_envelope_kb: 150,
            max_buffered_output: DEFAULT_MAX_BUFFERED_OUTPUT,
            locale: "en-US".into(),
            read_timeout_margin: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }

    /// The HTTP read timeout: longer than the OperationTimeout, so that the server's
    /// TimedOut fault always arrives before we give up on the connection.
    pub fn read_timeout(&self) -> Duration {
        self.operation_timeout + self.read_timeout_margin
    }
}

/// A WinRM client for one host. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    ctx: HeaderContext,
    config: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.config.endpoint)
            .field("user", &self.inner.config.user)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the configuration and prepares the connection (nothing is sent yet).
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        if config.operation_timeout < Duration::from_secs(1) {
            return Err(Error::Config(
                "the OperationTimeout must be at least one second".into(),
            ));
        }
        if config.server_max_envelope_kb < 8 {
            return Err(Error::Config(
                "the server's MaxEnvelopeSizekb cannot be below 8 KB".into(),
            ));
        }
        let transport = Transport::new(TransportConfig {
            endpoint: config.endpoint.clone(),
            auth: config.auth,
            user: config.user.clone(),
            password: config.password.clone(),
            spn: config.spn.clone(),
            kerberos_scheme: config.kerberos_scheme,
            trust: config.trust.clone(),
            allow_basic_over_http: config.allow_basic_over_http,
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout(),
            // The framing adds a few hundred bytes around the envelope.
            max_response_bytes: config.max_envelope_size.saturating_mul(2).max(64 * 1024),
            server_max_envelope_kb: config.server_max_envelope_kb,
        })?;
        let ctx = HeaderContext {
            to: config.endpoint.clone(),
            session_id: envelope::new_message_id(),
            max_envelope_size: config.max_envelope_size,
            operation_timeout: config.operation_timeout,
            locale: config.locale.clone(),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                ctx,
                config,
            }),
        })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        self.inner.transport.endpoint()
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The header values shared by every request of this client.
    pub(crate) fn header_ctx(&self) -> &HeaderContext {
        &self.inner.ctx
    }

    /// Sends one request, repeating it after transient failures when that is safe, and
    /// marking failures whose effect on the host is unknown (see [`crate::retry`]).
    pub(crate) async fn call(&self, req: Request) -> Result<Checked, Error> {
        let policy = &self.inner.config.retry;
        let idempotent = retry::is_idempotent(req.action);
        let mut attempt = 1;
        let mut earlier_unknown = false;
        loop {
            let (error, outcome_unknown) = match self.call_once(&req).await {
                Ok(checked) => return Ok(checked),
                Err(e) => e,
            };
            // A repeated Signal or Delete that finds the command or shell gone shows that
            // an earlier attempt, whose answer was lost, did the job.
            if earlier_unknown
                && matches!(
                    req.action,
                    envelope::Action::Signal | envelope::Action::Delete
                )
                && error.fault().is_some_and(|f| f.is_unknown_selector())
            {
                return Ok(Checked {
                    body: Element::default(),
                });
            }
            if idempotent && error.is_transient() && attempt < policy.max_attempts.max(1) {
                earlier_unknown |= outcome_unknown;
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            if outcome_unknown && !idempotent {
                return Err(Error::OutcomeUnknown {
                    stage: retry::unknown_stage(req.action),
                    source: Box::new(error),
                });
            }
            return Err(error);
        }
    }

    /// One attempt: the error, and whether the server may have acted on the request.
    async fn call_once(&self, req: &Request) -> Result<Checked, (Error, bool)> {
        let resp = self
            .inner
            .transport
            .send(
                req.action.name(),
                &req.xml,
                self.inner.config.read_timeout(),
            )
            .await
            .map_err(|e| {
                let unknown = e.outcome_unknown();
                (e.error, unknown)
            })?;
        // A response that is not the answer to our request (not SOAP, another request's)
        // came after the request was sent: the server may have acted on it.
        response::check(&resp.body, req.action, &req.message_id, resp.status).map_err(|e| {
            let unknown = matches!(e, Error::Protocol { .. });
            (e, unknown)
        })
    }

    /// Opens a shell.
    pub async fn open_shell(&self, options: &ShellOptions) -> Result<Shell, Error> {
        let req = envelope::create_shell(&self.inner.ctx, options);
        let checked = self.call(req).await?;
        let id = response::shell_id(&checked)?;
        Ok(Shell {
            client: self.clone(),
            id,
        })
    }

    /// Reads `MaxEnvelopeSizekb` from the host's WinRM configuration (needs
    /// administrative rights; `Ok(None)` when the host does not say).
    pub async fn server_max_envelope_size_kb(&self) -> Result<Option<u32>, Error> {
        let checked = self.call(envelope::get_config(&self.inner.ctx)).await?;
        Ok(response::max_envelope_size_kb(&checked))
    }
}

/// An open shell on the host. Close it with [`Shell::close`]; a shell that is only
/// dropped stays open on the server until its idle timeout.
#[derive(Debug)]
pub struct Shell {
    client: Client,
    id: String,
}

/// The buffered result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr.
    pub stderr: Vec<u8>,
    /// The process exit code.
    pub exit_code: i64,
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Shell {
    /// The ShellId the server assigned.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Starts a command. `skip_cmd_shell` runs `command` directly instead of through
    /// cmd.exe (then it must be an absolute path on 2008 R2).
    pub async fn start(
        &self,
        command: &str,
        arguments: &[String],
        skip_cmd_shell: bool,
    ) -> Result<RunningCommand<'_>, Error> {
        let ctx = &self.client.inner.ctx;
        let req = envelope::command(ctx, &self.id, command, arguments, skip_cmd_shell);
        let checked = self.client.call(req).await?;
        // An answer without a CommandId still came after the host acted on the request.
        let id = response::command_id(&checked).map_err(|e| Error::OutcomeUnknown {
            stage: retry::unknown_stage(envelope::Action::Command),
            source: Box::new(e),
        })?;
        Ok(RunningCommand {
            shell: self,
            id,
            exit_code: None,
            stdin_closed: false,
        })
    }

    /// Runs a command to completion with `stdin`, buffering its output up to the
    /// configured limit. `deadline` bounds the whole run; the command is terminated when
    /// it passes.
    pub async fn run(
        &self,
        command: &str,
        arguments: &[String],
        stdin: Option<&[u8]>,
        deadline: Option<Duration>,
    ) -> Result<Output, Error> {
        let limit = self.client.inner.config.max_buffered_output;
        let mut cmd = self.start(command, arguments, false).await?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let work = async {
            if let Some(data) = stdin {
                cmd.send(data, true).await?;
            }
            cmd.wait(|stream, bytes| {
                let buf = match stream {
                    Stream::Stdout => &mut stdout,
                    Stream::Stderr => &mut stderr,
                };
                if buf.len() + bytes.len() > limit {
                    return Err(Error::OutputTooLarge { limit });
                }
                buf.extend_from_slice(bytes);
                Ok(())
            })
            .await
        };
        let exit_code = match deadline {
            Some(d) => match tokio::time::timeout(d, work).await {
                Ok(r) => r,
                Err(_) => Err(Error::Deadline(d)),
            },
            None => work.await,
        };
        let exit_code = match exit_code {
            Ok(code) => code,
            Err(e) => {
                // Best effort: do not leave the process running on the host.
                let _ = cmd.terminate().await;
                return Err(e);
            }
        };
        Ok(Output {
            stdout,
            stderr,
            exit_code,
        })
    }

    /// Closes the shell on the server.
    pub async fn close(self) -> Result<(), Error> {
        let req = envelope::delete_shell(&self.client.inner.ctx, &self.id);
        self.client.call(req).await.map(|_| ())
    }
}

/// A command started in a shell.
#[derive(Debug)]
pub struct RunningCommand<'a> {
    shell: &'a Shell,
    id: String,
    exit_code: Option<i64>,
    stdin_closed: bool,
}

impl RunningCommand<'_> {
    /// The CommandId the server assigned.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The exit code, once the command is done.
    pub fn exit_code(&self) -> Option<i64> {
        self.exit_code
    }

    /// How many bytes of stdin fit in one Send within the server's MaxEnvelopeSizekb.
    pub fn max_send_chunk(&self) -> usize {
        let inner = &self.shell.client.inner;
        let limit = inner.config.server_max_envelope_kb * 1024;
        // Room for longer ids and the encrypted framing, which wraps the envelope.
        let overhead = envelope::send_overhead(&inner.ctx) + 512;
        let room = limit.saturating_sub(overhead);
        (room / 4 * 3).max(1)
    }

    /// Sends stdin, split into as many Send messages as the envelope size requires;
    /// `end` closes stdin after the last byte. The command is running: every failure
    /// (other than a misuse of this method) leaves its outcome unknown
    /// ([`Error::is_outcome_unknown`]).
    pub async fn send(&mut self, data: &[u8], end: bool) -> Result<(), Error> {
        self.send_inner(data, end)
            .await
            .map_err(retry::while_running)
    }

    async fn send_inner(&mut self, data: &[u8], end: bool) -> Result<(), Error> {
        if self.stdin_closed {
            return Err(Error::Config(
                "stdin of this command is already closed".into(),
            ));
        }
        let chunk = self.max_send_chunk();
        let inner = &self.shell.client.inner;
        let mut chunks = data.chunks(chunk).peekable();
        if chunks.peek().is_none() {
            if end {
                let req = envelope::send(&inner.ctx, &self.shell.id, &self.id, &[], true);
                self.shell.client.call(req).await?;
                self.stdin_closed = true;
            }
            return Ok(());
        }
        while let Some(c) = chunks.next() {
            let last = chunks.peek().is_none();
            let req = envelope::send(&inner.ctx, &self.shell.id, &self.id, c, end && last);
            self.shell.client.call(req).await?;
        }
        if end {
            self.stdin_closed = true;
        }
        Ok(())
    }

    /// One Receive. An OperationTimeout fault is not an error: it yields an empty
    /// [`Received`] without a state. Receive is never repeated (the output a lost answer
    /// carried cannot be asked for again), and every failure leaves the command's outcome
    /// unknown ([`Error::is_outcome_unknown`]).
    pub async fn receive(&mut self) -> Result<Received, Error> {
        self.receive_inner().await.map_err(retry::while_running)
    }

    async fn receive_inner(&mut self) -> Result<Received, Error> {
        let inner = &self.shell.client.inner;
        let req = envelope::receive(&inner.ctx, &self.shell.id, &self.id);
        match self.shell.client.call(req).await {
            Ok(checked) => {
                let r = response::received(&checked, &self.id)?;
                if let Some(CommandState::Done { exit_code }) = r.state {
                    self.exit_code = Some(exit_code);
                }
                Ok(r)
            }
            Err(Error::Fault(f)) if f.is_timed_out() => Ok(Received {
                stdout: Vec::new(),
                stderr: Vec::new(),
                state: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// Reads output until the command is done, handing each chunk to `sink`, then
    /// signals the command to release it (MS-WSMV requires a Terminate after the last
    /// output). Returns the exit code. Once the exit code is known the command's outcome
    /// is too: a failure of that last Terminate is ignored (closing the shell releases
    /// the command as well).
    pub async fn wait(
        &mut self,
        mut sink: impl FnMut(Stream, &[u8]) -> Result<(), Error>,
    ) -> Result<i64, Error> {
        loop {
            let r = self.receive().await?;
            if !r.stdout.is_empty() {
                sink(Stream::Stdout, &r.stdout)?;
            }
            if !r.stderr.is_empty() {
                sink(Stream::Stderr, &r.stderr)?;
            }
            if let Some(CommandState::Done { exit_code }) = r.state {
                let _ = self.signal(SignalCode::Terminate).await;
                return Ok(exit_code);
            }
        }
    }

    /// Terminates the command.
    pub async fn terminate(&mut self) -> Result<(), Error> {
        self.signal(SignalCode::Terminate).await
    }

    async fn signal(&mut self, code: SignalCode) -> Result<(), Error> {
        let inner = &self.shell.client.inner;
        let req = envelope::signal(&inner.ctx, &self.shell.id, &self.id, code);
        self.shell.client.call(req).await.map(|_| ())
    }
}
