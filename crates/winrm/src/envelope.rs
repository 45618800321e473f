//! Building WS-Management request envelopes (pure: no I/O).
//!
//! Every request has the header Windows' own client sends (see the recordings in
//! `tests/fixtures/winrm-recorded`): Action, locales, MaxEnvelopeSize, a fresh MessageID,
//! OperationTimeout, ReplyTo, ResourceURI, SessionId, To, then options and selectors. The
//! shell-level operations (Create, Command, Send, Receive, Signal, Delete, and Get of the
//! configuration) each have one builder here, so the transport never assembles XML.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::xml::escape;

/// SOAP 1.2 envelope namespace.
pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing namespace.
pub const NS_ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// DMTF WS-Management namespace.
pub const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft's WS-Management extensions.
pub const NS_WSMV: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// The Windows remote shell namespace.
pub const NS_SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// WS-Transfer namespace.
pub const NS_TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// The namespace of Microsoft's fault detail.
pub const NS_WSMANFAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
/// The namespace of the configuration resource.
pub const NS_CONFIG: &str = "http://schemas.microsoft.com/wbem/wsman/1/config";

/// The cmd shell resource.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// The WinRM configuration resource.
pub const RESOURCE_CONFIG: &str = "http://schemas.microsoft.com/wbem/wsman/1/config";

const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// The actions exctl sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open a shell (WS-Transfer Create).
    Create,
    /// Start a command in a shell.
    Command,
    /// Send stdin to a command.
    Send,
    /// Read output of a command.
    Receive,
    /// Signal a command (terminate, Ctrl+C).
    Signal,
    /// Close a shell (WS-Transfer Delete).
    Delete,
    /// Read a resource (WS-Transfer Get), e.g. the WinRM configuration.
    Get,
}

impl Action {
    /// The `wsa:Action` URI of the request.
    pub fn uri(self) -> &'static str {
        match self {
            Action::Create => "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
            Action::Command => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
            Action::Send => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
            Action::Receive => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
            Action::Signal => "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
            Action::Delete => "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
            Action::Get => "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
        }
    }

    /// The `wsa:Action` URI a successful response carries.
    pub fn response_uri(self) -> String {
        format!("{}Response", self.uri())
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "Create",
            Action::Command => "Command",
            Action::Send => "Send",
            Action::Receive => "Receive",
            Action::Signal => "Signal",
            Action::Delete => "Delete",
            Action::Get => "Get",
        }
    }
}

/// Signal codes (MS-WSMV 2.2.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalCode {
    /// Ends the process.
    Terminate,
    /// Ctrl+C.
    CtrlC,
}

impl SignalCode {
    fn uri(self) -> &'static str {
        match self {
            SignalCode::Terminate => {
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
            }
            SignalCode::CtrlC => {
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
            }
        }
    }
}

/// The parts of the header that are the same for every request of one client.
#[derive(Debug, Clone)]
pub struct HeaderContext {
    /// The endpoint URL, echoed in `wsa:To`.
    pub to: String,
    /// `wsmv:SessionId`, one per client, `uuid:` prefixed.
    pub session_id: String,
    /// The largest response we accept, in bytes (`wsman:MaxEnvelopeSize`).
    pub max_envelope_size: usize,
    /// `wsman:OperationTimeout`.
    pub operation_timeout: Duration,
    /// `xml:lang` of the locale headers.
    pub locale: String,
}

/// One request: its envelope and the MessageID the response must relate to.
#[derive(Debug, Clone)]
pub struct Request {
    /// What the request does.
    pub action: Action,
    /// The `uuid:`-prefixed MessageID.
    pub message_id: String,
    /// The SOAP envelope.
    pub xml: String,
}

/// `PT20S`, `PT0.500S`: the xs:duration form Windows sends and accepts.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("PT{}S", ms / 1000)
    } else {
        format!("PT{}.{:03}S", ms / 1000, ms % 1000)
    }
}

/// A fresh `uuid:`-prefixed identifier, upper case as Windows writes them.
pub fn new_message_id() -> String {
    format!("uuid:{}", uuid::Uuid::new_v4().to_string().to_uppercase())
}

pub(crate) fn build(
    ctx: &HeaderContext,
    action: Action,
    resource_uri: &str,
    shell_id: Option<&str>,
    options: &[(&str, String)],
    body: &str,
    timeout: Option<Duration>,
) -> Request {
    let message_id = new_message_id();
    let mut x = String::with_capacity(1536 + body.len());
    x.push_str(r#"<s:Envelope xmlns:s=""#);
    x.push_str(NS_SOAP);
    x.push_str(r#"" xmlns:wsa=""#);
    x.push_str(NS_ADDRESSING);
    x.push_str(r#"" xmlns:wsman=""#);
    x.push_str(NS_WSMAN);
    x.push_str(r#"" xmlns:wsmv=""#);
    x.push_str(NS_WSMV);
    x.push_str(r#"" xmlns:rsp=""#);
    x.push_str(NS_SHELL);
    x.push_str(r#""><s:Header><wsa:Action s:mustUnderstand="true">"#);
    x.push_str(action.uri());
    x.push_str("</wsa:Action>");
    let lang = escape(&ctx.locale);
    x.push_str(&format!(
        r#"<wsmv:DataLocale s:mustUnderstand="false" xml:lang="{lang}"/><wsman:Locale s:mustUnderstand="false" xml:lang="{lang}"/>"#
    ));
    x.push_str(&format!(
        r#"<wsman:MaxEnvelopeSize s:mustUnderstand="true">{}</wsman:MaxEnvelopeSize>"#,
        ctx.max_envelope_size
    ));
    x.push_str(&format!("<wsa:MessageID>{message_id}</wsa:MessageID>"));
    x.push_str(&format!(
        "<wsman:OperationTimeout>{}</wsman:OperationTimeout>",
        format_duration(timeout.unwrap_or(ctx.operation_timeout))
    ));
    x.push_str(r#"<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">"#);
    x.push_str(ANONYMOUS);
    x.push_str("</wsa:Address></wsa:ReplyTo>");
    x.push_str(&format!(
        r#"<wsman:ResourceURI s:mustUnderstand="true">{resource_uri}</wsman:ResourceURI>"#
    ));
    x.push_str(&format!(
        r#"<wsmv:SessionId s:mustUnderstand="false">{}</wsmv:SessionId>"#,
        escape(&ctx.session_id)
    ));
    x.push_str(&format!("<wsa:To>{}</wsa:To>", escape(&ctx.to)));
    if !options.is_empty() {
        x.push_str(r#"<wsman:OptionSet s:mustUnderstand="true">"#);
        for (name, value) in options {
            x.push_str(&format!(
                r#"<wsman:Option Name="{}">{}</wsman:Option>"#,
                escape(name),
                escape(value)
            ));
        }
        x.push_str("</wsman:OptionSet>");
    }
    if let Some(id) = shell_id {
        x.push_str(&format!(
            r#"<wsman:SelectorSet><wsman:Selector Name="ShellId">{}</wsman:Selector></wsman:SelectorSet>"#,
            escape(id)
        ));
    }
    x.push_str("</s:Header>");
    if body.is_empty() {
        x.push_str("<s:Body/>");
    } else {
        x.push_str("<s:Body>");
        x.push_str(body);
        x.push_str("</s:Body>");
    }
    x.push_str("</s:Envelope>");
    Request {
        action,
        message_id,
        xml: x,
    }
}

/// Options of a new shell.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// `WINRS_CODEPAGE`; 65001 (UTF-8) so output of any language arrives intact.
    pub codepage: u32,
    /// `WINRS_NOPROFILE`: do not load the user's profile (faster, no side effects).
    pub no_profile: bool,
    /// Working directory of the shell's processes.
    pub working_directory: Option<String>,
    /// Environment variables for the shell's processes.
    pub environment: Vec<(String, String)>,
    /// The shell closes itself after this much idle time.
    pub idle_timeout: Option<Duration>,
}

impl Default for ShellOptions {
    fn default() -> Self {
        ShellOptions {
            codepage: 65001,
            no_profile: true,
            working_directory: None,
            environment: Vec::new(),
            idle_timeout: None,
        }
    }
}

/// Create: opens a cmd shell with stdin and stdout/stderr.
pub fn create_shell(ctx: &HeaderContext, opts: &ShellOptions) -> Request {
    let options = [
        (
            "WINRS_NOPROFILE",
            if opts.no_profile { "TRUE" } else { "FALSE" }.to_string(),
        ),
        ("WINRS_CODEPAGE", opts.codepage.to_string()),
    ];
    // The order of a real Windows client's request (InputStreams, OutputStreams, then
    // the optional elements), which every Windows version accepts.
    let mut body = String::from(
        "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>",
    );
    if let Some(idle) = opts.idle_timeout {
        body.push_str(&format!(
            "<rsp:IdleTimeOut>{}</rsp:IdleTimeOut>",
            format_duration(idle)
        ));
    }
    if let Some(dir) = &opts.working_directory {
        body.push_str(&format!(
            "<rsp:WorkingDirectory>{}</rsp:WorkingDirectory>",
            escape(dir)
        ));
    }
    if !opts.environment.is_empty() {
        body.push_str("<rsp:Environment>");
        for (k, v) in &opts.environment {
            body.push_str(&format!(
                r#"<rsp:Variable Name="{}">{}</rsp:Variable>"#,
                escape(k),
                escape(v)
            ));
        }
        body.push_str("</rsp:Environment>");
    }
    body.push_str("</rsp:Shell>");
    build(
        ctx,
        Action::Create,
        RESOURCE_CMD,
        None,
        &options,
        &body,
        None,
    )
}

/// Command: starts `command` with `arguments` in the shell.
pub fn command(
    ctx: &HeaderContext,
    shell_id: &str,
    command: &str,
    arguments: &[String],
    skip_cmd_shell: bool,
) -> Request {
    let options = [
        ("WINRS_CONSOLEMODE_STDIN", "TRUE".to_string()),
        (
            "WINRS_SKIP_CMD_SHELL",
            if skip_cmd_shell { "TRUE" } else { "FALSE" }.to_string(),
        ),
    ];
    let mut body = format!(
        "<rsp:CommandLine><rsp:Command>{}</rsp:Command>",
        escape(command)
    );
    for a in arguments {
        body.push_str(&format!("<rsp:Arguments>{}</rsp:Arguments>", escape(a)));
    }
    body.push_str("</rsp:CommandLine>");
    build(
        ctx,
        Action::Command,
        RESOURCE_CMD,
        Some(shell_id),
        &options,
        &body,
        None,
    )
}

/// Send: one chunk of stdin; `end` closes the stream.
pub fn send(
    ctx: &HeaderContext,
    shell_id: &str,
    command_id: &str,
    data: &[u8],
    end: bool,
) -> Request {
    let mut body = format!(
        r#"<rsp:Send><rsp:Stream Name="stdin" CommandId="{}""#,
        escape(command_id)
    );
    if end {
        body.push_str(r#" End="true""#);
    }
    body.push('>');
    body.push_str(&B64.encode(data));
    body.push_str("</rsp:Stream></rsp:Send>");
    build(
        ctx,
        Action::Send,
        RESOURCE_CMD,
        Some(shell_id),
        &[],
        &body,
        None,
    )
}

/// The size of a Send envelope around `payload_len` bytes of stdin, without the payload.
pub fn send_overhead(ctx: &HeaderContext) -> usize {
    send(
        ctx,
        "00000000-0000-0000-0000-000000000000",
        "00000000-0000-0000-0000-000000000000",
        &[],
        true,
    )
    .xml
    .len()
}

/// Receive: asks for stdout and stderr of a command.
pub fn receive(ctx: &HeaderContext, shell_id: &str, command_id: &str) -> Request {
    let options = [("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE".to_string())];
    let body = format!(
        r#"<rsp:Receive><rsp:DesiredStream CommandId="{}">stdout stderr</rsp:DesiredStream></rsp:Receive>"#,
        escape(command_id)
    );
    build(
        ctx,
        Action::Receive,
        RESOURCE_CMD,
        Some(shell_id),
        &options,
        &body,
        None,
    )
}

/// Signal: sends `code` to a command.
pub fn signal(ctx: &HeaderContext, shell_id: &str, command_id: &str, code: SignalCode) -> Request {
    let body = format!(
        r#"<rsp:Signal CommandId="{}"><rsp:Code>{}</rsp:Code></rsp:Signal>"#,
        escape(command_id),
        code.uri()
    );
    build(
        ctx,
        Action::Signal,
        RESOURCE_CMD,
        Some(shell_id),
        &[],
        &body,
        None,
    )
}

/// Delete: closes a shell.
pub fn delete_shell(ctx: &HeaderContext, shell_id: &str) -> Request {
    build(
        ctx,
        Action::Delete,
        RESOURCE_CMD,
        Some(shell_id),
        &[],
        "",
        None,
    )
}

/// Get of the WinRM configuration (needs administrative rights on the host).
pub fn get_config(ctx: &HeaderContext) -> Request {
    build(ctx, Action::Get, RESOURCE_CONFIG, None, &[], "", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ctx() -> HeaderContext {
        HeaderContext {
            to: "http://host:5985/wsman".into(),
            session_id: "uuid:11111111-1111-1111-1111-111111111111".into(),
            max_envelope_size: 153600,
            operation_timeout: Duration::from_secs(20),
            locale: "en-US".into(),
        }
    }

    #[test]
    fn durations_use_the_xs_duration_form() {
        assert_eq!(format_duration(Duration::from_secs(20)), "PT20S");
        assert_eq!(format_duration(Duration::from_millis(1500)), "PT1.500S");
    }

    #[test]
    fn every_request_gets_a_fresh_message_id() {
        let a = receive(&ctx(), "S", "C");
        let b = receive(&ctx(), "S", "C");
        assert_ne!(a.message_id, b.message_id);
        assert!(a.xml.contains(&a.message_id));
    }

    #[test]
    fn values_are_escaped() {
        let r = command(&ctx(), "S", "cmd.exe", &["<&>\"".to_string()], false);
        assert!(
            r.xml
                .contains("<rsp:Arguments>&lt;&amp;&gt;&quot;</rsp:Arguments>")
        );
        crate::xml::parse(&r.xml).unwrap();
    }
}
