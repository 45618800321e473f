//! Shells of other resources than cmd: what PowerShell remoting (MS-PSRP) runs on.
//!
//! A PSRP runspace pool is a WS-Management shell whose resource URI names the session
//! configuration (`http://schemas.microsoft.com/powershell/Microsoft.PowerShell`), whose
//! ShellId the client chooses (the pool's id), whose Create carries options and extra body
//! elements (`creationXml`), and whose Command, Send, Receive and Signal carry opaque
//! payloads on named streams (`stdin`, `pr`, `stdout`). This module sends those requests
//! and knows nothing of what the payloads mean; `exctl-psrp` does. The requests go
//! through the same checks, retries and sealing as the cmd shell's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::envelope::{self, Action, Request};
use crate::error::Error;
use crate::response::{self, Received};
use crate::retry;
use crate::shell::Client;
use crate::xml::escape;

/// What a new shell of another resource looks like.
#[derive(Debug, Clone, Default)]
pub struct ResourceShellSpec {
    /// The resource URI, e.g. `http://schemas.microsoft.com/powershell/Microsoft.Exchange`.
    pub resource_uri: String,
    /// The ShellId the client proposes (PSRP: the RunspacePool id), if any.
    pub shell_id: Option<String>,
    /// `rsp:InputStreams`, e.g. `stdin pr`.
    pub input_streams: String,
    /// `rsp:OutputStreams`, e.g. `stdout`.
    pub output_streams: String,
    /// Options the server must honour (`MustComply="true"`), e.g. `protocolversion`.
    pub options: Vec<(String, String)>,
    /// Raw XML appended inside `rsp:Shell` (the caller escapes it), e.g. `creationXml`.
    pub extra_body: String,
}

/// An open shell of another resource.
#[derive(Debug)]
pub struct ResourceShell {
    client: Client,
    id: String,
    resource_uri: String,
}

/// Marks every option MustComply, as Windows' PowerShell client does for
/// `protocolversion` (the shared builder writes plain options).
fn must_comply(mut req: Request) -> Request {
    req.xml = req.xml.replace(
        "<wsman:Option Name=",
        "<wsman:Option MustComply=\"true\" Name=",
    );
    req
}

impl Client {
    /// Creates a shell of another resource (see [`ResourceShellSpec`]).
    pub async fn open_resource_shell(
        &self,
        spec: &ResourceShellSpec,
    ) -> Result<ResourceShell, Error> {
        let ctx = self.header_ctx();
        let mut body = String::from("<rsp:Shell");
        if let Some(id) = &spec.shell_id {
            body.push_str(&format!(" ShellId=\"{}\"", escape(id)));
        }
        body.push_str(&format!(
            "><rsp:InputStreams>{}</rsp:InputStreams><rsp:OutputStreams>{}</rsp:OutputStreams>{}</rsp:Shell>",
            escape(&spec.input_streams),
            escape(&spec.output_streams),
            spec.extra_body
        ));
        let options: Vec<(&str, String)> = spec
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let req = must_comply(envelope::build(
            ctx,
            Action::Create,
            &spec.resource_uri,
            None,
            &options,
            &body,
            None,
        ));
        let checked = self.call(req).await?;
        let id = response::shell_id(&checked)?;
        Ok(ResourceShell {
            client: self.clone(),
            id,
            resource_uri: spec.resource_uri.clone(),
        })
    }
}

impl ResourceShell {
    /// The ShellId the server confirmed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The client this shell belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How many payload bytes one Command or Send can carry within the server's
    /// MaxEnvelopeSizekb (base64 and the envelope around it taken off).
    pub fn max_payload(&self) -> usize {
        let cfg = self.client.config();
        let limit = cfg.server_max_envelope_kb * 1024;
        let overhead =
            envelope::send_overhead(self.client.header_ctx()) + self.resource_uri.len() + 1024;
        (limit.saturating_sub(overhead) / 4 * 3).max(64)
    }

    /// Command: starts a command whose id the client chose, with `arguments` (bytes,
    /// sent base64) and an empty command line, as PSRP does for a pipeline ([MS-PSRP]
    /// 3.1.5.3.3: Command MUST be empty, Arguments the first fragment,
    /// https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-psrp/900d9399-f8bd-40d2-992a-0a2a2bae0f46).
    pub async fn command(&self, command_id: &str, arguments: &[u8]) -> Result<String, Error> {
        let body = format!(
            "<rsp:CommandLine CommandId=\"{}\"><rsp:Command></rsp:Command><rsp:Arguments>{}</rsp:Arguments></rsp:CommandLine>",
            escape(command_id),
            B64.encode(arguments)
        );
        let req = envelope::build(
            self.client.header_ctx(),
            Action::Command,
            &self.resource_uri,
            Some(&self.id),
            &[],
            &body,
            None,
        );
        let checked = self.client.call(req).await?;
        response::command_id(&checked).map_err(|e| Error::OutcomeUnknown {
            stage: retry::unknown_stage(Action::Command),
            source: Box::new(e),
        })
    }

    /// Send: `data` on `stream` (`stdin` or `pr`), to a command or to the shell itself.
    pub async fn send(
        &self,
        command_id: Option<&str>,
        stream: &str,
        data: &[u8],
    ) -> Result<(), Error> {
        let cmd = command_id
            .map(|c| format!(" CommandId=\"{}\"", escape(c)))
            .unwrap_or_default();
        let body = format!(
            "<rsp:Send><rsp:Stream Name=\"{}\"{cmd}>{}</rsp:Stream></rsp:Send>",
            escape(stream),
            B64.encode(data)
        );
        let req = envelope::build(
            self.client.header_ctx(),
            Action::Send,
            &self.resource_uri,
            Some(&self.id),
            &[],
            &body,
            None,
        );
        self.client.call(req).await.map(|_| ())
    }

    /// One Receive of `streams` (e.g. `stdout`), for a command or the shell itself. An
    /// OperationTimeout fault only means nothing was written yet: it yields an empty
    /// [`Received`] without a state.
    pub async fn receive(
        &self,
        command_id: Option<&str>,
        streams: &str,
    ) -> Result<Received, Error> {
        let cmd = command_id
            .map(|c| format!(" CommandId=\"{}\"", escape(c)))
            .unwrap_or_default();
        let body = format!(
            "<rsp:Receive><rsp:DesiredStream{cmd}>{}</rsp:DesiredStream></rsp:Receive>",
            escape(streams)
        );
        let options = [("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE".to_string())];
        let req = envelope::build(
            self.client.header_ctx(),
            Action::Receive,
            &self.resource_uri,
            Some(&self.id),
            &options,
            &body,
            None,
        );
        match self.client.call(req).await {
            Ok(checked) => response::received(&checked, command_id.unwrap_or_default()),
            Err(Error::Fault(f)) if f.is_timed_out() => Ok(Received {
                stdout: Vec::new(),
                stderr: Vec::new(),
                state: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// Signal: `code` (a URI, or PSRP's `powershell/signal/crtl_c`) to a command.
    pub async fn signal(&self, command_id: &str, code: &str) -> Result<(), Error> {
        let body = format!(
            "<rsp:Signal CommandId=\"{}\"><rsp:Code>{}</rsp:Code></rsp:Signal>",
            escape(command_id),
            escape(code)
        );
        let req = envelope::build(
            self.client.header_ctx(),
            Action::Signal,
            &self.resource_uri,
            Some(&self.id),
            &[],
            &body,
            None,
        );
        self.client.call(req).await.map(|_| ())
    }

    /// Delete: closes the shell.
    pub async fn close(self) -> Result<(), Error> {
        let req = envelope::build(
            self.client.header_ctx(),
            Action::Delete,
            &self.resource_uri,
            Some(&self.id),
            &[],
            "",
            None,
        );
        self.client.call(req).await.map(|_| ())
    }
}
