//! SOAP envelopes as Windows' WinRM service reads and writes them: the request header
//! fields the simulator acts on, and response envelopes with the namespace prefixes and
//! declaration sets of the recorded responses (`s`, `a`, `x`, `w`, `rsp`, `p`; faults also
//! declare `e` and `n`), a fresh upper-case `uuid:` MessageID and a RelatesTo that echoes
//! the request's MessageID.

use std::time::Duration;

use crate::xml::{Element, XmlError, escape_text, parse};

/// SOAP 1.2 envelope.
pub const NS_S: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (2004/08).
pub const NS_A: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Transfer.
pub const NS_X: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// WS-Eventing.
pub const NS_E: &str = "http://schemas.xmlsoap.org/ws/2004/08/eventing";
/// WS-Enumeration.
pub const NS_N: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
/// DMTF WS-Management.
pub const NS_W: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft WS-Management extensions.
pub const NS_P: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// Windows Remote Shell.
pub const NS_RSP: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// The WinRM configuration resource (and namespace of its elements).
pub const NS_CFG: &str = "http://schemas.microsoft.com/wbem/wsman/1/config";

/// The anonymous reply address every response is sent to.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Request actions the simulator serves.
pub mod action {
    /// WS-Transfer Create (open a shell).
    pub const CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
    /// WS-Transfer Delete (close a shell).
    pub const DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
    /// WS-Transfer Get (the config resource).
    pub const GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
    /// WinRS Command.
    pub const COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
    /// WinRS Send (stdin).
    pub const SEND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
    /// WinRS Receive (output).
    pub const RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
    /// WinRS Signal.
    pub const SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
    /// The action of every WS-Management fault.
    pub const FAULT: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";
}

/// The resource URI of the cmd shell.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";

/// What the simulator reads from a request envelope.
#[derive(Debug, Clone, Default)]
pub struct SoapRequest {
    /// `a:Action`.
    pub action: String,
    /// `w:ResourceURI`.
    pub resource_uri: Option<String>,
    /// `a:MessageID`, echoed in RelatesTo.
    pub message_id: Option<String>,
    /// `a:To`.
    pub to: Option<String>,
    /// `w:OperationTimeout`, when present and valid.
    pub operation_timeout: Option<Duration>,
    /// `w:OperationTimeout` was present but not a valid duration.
    pub bad_operation_timeout: bool,
    /// `w:MaxEnvelopeSize` in bytes.
    pub max_envelope_size: Option<u64>,
    /// `w:SelectorSet` entries (name, value).
    pub selectors: Vec<(String, String)>,
    /// `w:OptionSet` entries (name, value).
    pub options: Vec<(String, String)>,
    /// The first element inside `s:Body`, if any.
    pub body: Option<Element>,
}

impl SoapRequest {
    /// A selector's value by name (case-insensitive, as Windows matches them).
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.selectors
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An option's value by name (case-insensitive).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option as WinRS reads it (`TRUE`, `True`, `true`, `1`).
    pub fn option_bool(&self, name: &str) -> Option<bool> {
        self.option(name).map(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("true") || v == "1"
        })
    }
}

/// Why a request envelope is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// XML, but not a SOAP 1.2 envelope with a header carrying an action.
    #[error("not a SOAP envelope: {0}")]
    NotSoap(&'static str),
}

/// Reads a request envelope.
pub fn parse_request(bytes: &[u8]) -> Result<SoapRequest, EnvelopeError> {
    let root = parse(bytes)?;
    if root.ns != NS_S || root.name != "Envelope" {
        return Err(EnvelopeError::NotSoap("root is not s:Envelope"));
    }
    let header = root
        .child(NS_S, "Header")
        .ok_or(EnvelopeError::NotSoap("no s:Header"))?;
    let action = header
        .child(NS_A, "Action")
        .map(|a| a.text.trim().to_string())
        .ok_or(EnvelopeError::NotSoap("no a:Action"))?;
    let mut req = SoapRequest {
        action,
        resource_uri: header
            .child(NS_W, "ResourceURI")
            .map(|e| e.text.trim().to_string()),
        message_id: header
            .child(NS_A, "MessageID")
            .map(|e| e.text.trim().to_string()),
        to: header.child(NS_A, "To").map(|e| e.text.trim().to_string()),
        ..SoapRequest::default()
    };
    if let Some(t) = header.child(NS_W, "OperationTimeout") {
        match parse_duration(t.text.trim()) {
            Some(d) => req.operation_timeout = Some(d),
            None => req.bad_operation_timeout = true,
        }
    }
    req.max_envelope_size = header
        .child(NS_W, "MaxEnvelopeSize")
        .and_then(|e| e.text.trim().parse().ok());
    if let Some(set) = header.child(NS_W, "SelectorSet") {
        for s in set.children_named(NS_W, "Selector") {
            req.selectors.push((
                s.attr("Name").unwrap_or_default().to_string(),
                s.text.trim().to_string(),
            ));
        }
    }
    if let Some(set) = header.child(NS_W, "OptionSet") {
        for o in set.children_named(NS_W, "Option") {
            req.options.push((
                o.attr("Name").unwrap_or_default().to_string(),
                o.text.trim().to_string(),
            ));
        }
    }
    req.body = root
        .child(NS_S, "Body")
        .and_then(|b| b.children.first().cloned());
    Ok(req)
}

/// Parses an xs:duration as WS-Management uses it (`PT20S`, `PT0.5S`, `P0DT0H1M0S`).
/// Negative or unparsable durations give `None`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut secs = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let mult = units.iter().find(|(u, _)| *u == c)?.1;
                let v: f64 = num.parse().ok()?;
                secs += v * mult;
                num.clear();
                any = true;
            }
        }
        if num.is_empty() { Some(()) } else { None }
    };
    take(
        date,
        &[('Y', 31_536_000.0), ('M', 2_592_000.0), ('D', 86_400.0)],
    )?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any || !secs.is_finite() || secs > 1e9 {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// Formats a duration the way WinRS echoes IdleTimeOut (`PT7200.000S`).
pub fn format_idle_timeout(d: Duration) -> String {
    format!("PT{}.{:03}S", d.as_secs(), d.subsec_millis())
}

/// A fresh MessageID: `uuid:` and an upper-case v4 UUID, as Windows writes them.
pub fn new_message_id() -> String {
    format!("uuid:{}", new_guid())
}

/// An upper-case GUID as Windows prints ShellId and CommandId.
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}

/// Which namespace declarations an envelope carries: Windows varies them by response kind,
/// and the recordings keep them, so the simulator does too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsSet {
    /// CreateResponse, CommandResponse, SendResponse, SignalResponse: s a x w rsp p.
    Shell,
    /// ReceiveResponse: s a w rsp p.
    Receive,
    /// DeleteResponse: s a w p.
    Delete,
    /// GetResponse: s a x w p.
    Transfer,
    /// Faults: s a x e n w p.
    Fault,
}

impl NsSet {
    fn declarations(self) -> String {
        let all: &[(&str, &str)] = match self {
            NsSet::Shell => &[
                ("s", NS_S),
                ("a", NS_A),
                ("x", NS_X),
                ("w", NS_W),
                ("rsp", NS_RSP),
                ("p", NS_P),
            ],
            NsSet::Receive => &[
                ("s", NS_S),
                ("a", NS_A),
                ("w", NS_W),
                ("rsp", NS_RSP),
                ("p", NS_P),
            ],
            NsSet::Delete => &[("s", NS_S), ("a", NS_A), ("w", NS_W), ("p", NS_P)],
            NsSet::Transfer => &[
                ("s", NS_S),
                ("a", NS_A),
                ("x", NS_X),
                ("w", NS_W),
                ("p", NS_P),
            ],
            NsSet::Fault => &[
                ("s", NS_S),
                ("a", NS_A),
                ("x", NS_X),
                ("e", NS_E),
                ("n", NS_N),
                ("w", NS_W),
                ("p", NS_P),
            ],
        };
        all.iter()
            .map(|(p, ns)| format!(" xmlns:{p}=\"{ns}\""))
            .collect()
    }
}

/// Writes a response envelope around `body` (already serialized XML).
pub fn envelope(ns: NsSet, action: &str, relates_to: Option<&str>, body: &str) -> String {
    let relates = relates_to
        .map(|id| format!("<a:RelatesTo>{}</a:RelatesTo>", escape_text(id)))
        .unwrap_or_default();
    format!(
        "<s:Envelope xml:lang=\"en-US\"{decl}><s:Header><a:Action>{action}</a:Action>\
         <a:MessageID>{mid}</a:MessageID><a:To>{ANONYMOUS}</a:To>{relates}</s:Header>\
         <s:Body>{body}</s:Body></s:Envelope>",
        decl = ns.declarations(),
        action = escape_text(action),
        mid = new_message_id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT20S"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("PT0.5S"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("P0DT0H1M0S"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("PT-1S"), None);
        assert_eq!(parse_duration("20"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(
            format_idle_timeout(Duration::from_secs(7200)),
            "PT7200.000S"
        );
    }

    #[test]
    fn reads_the_recorded_create_request() {
        let req = br#"<s:Envelope xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><wsa:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</wsa:Action><wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize><wsa:MessageID>uuid:FC40E3CD-53E9-4315-B486-6D538B25D1F5</wsa:MessageID><wsman:OperationTimeout>PT20S</wsman:OperationTimeout><wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</wsman:ResourceURI><wsman:OptionSet s:mustUnderstand="true"><wsman:Option MustComply="true" Name="WINRS_NOPROFILE">TRUE</wsman:Option></wsman:OptionSet></s:Header><s:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell></s:Body></s:Envelope>"#;
        let r = parse_request(req).unwrap();
        assert_eq!(r.action, action::CREATE);
        assert_eq!(r.resource_uri.as_deref(), Some(RESOURCE_CMD));
        assert_eq!(r.operation_timeout, Some(Duration::from_secs(20)));
        assert_eq!(r.max_envelope_size, Some(153600));
        assert_eq!(r.option_bool("winrs_noprofile"), Some(true));
        assert_eq!(r.body.unwrap().name, "Shell");
    }
}
