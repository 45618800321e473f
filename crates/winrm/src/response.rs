//! Reading WS-Management responses (pure: no I/O).
//!
//! A response is checked before anything in it is believed: it must be a SOAP envelope,
//! relate to the request that was sent (`RelatesTo` equals our MessageID), and carry the
//! action that answers ours. Faults become [`WsmanFault`] with everything Windows put in
//! them: the SOAP code and subcode, the WS-Management code, the machine, the message and,
//! for quota faults, the WMI error code in `MSFT_WmiError`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::envelope::{Action, NS_ADDRESSING, NS_CONFIG, NS_SHELL, NS_SOAP, NS_TRANSFER, NS_WSMAN};
use crate::error::{Error, WsmanFault};
use crate::xml::{self, Element};

const FAULT_ACTIONS: [&str; 2] = [
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault",
];

/// A response envelope that passed the checks: its body element.
#[derive(Debug)]
pub(crate) struct Checked {
    pub body: Element,
}

/// Parses a response to `action` sent with `message_id`. A SOAP fault becomes
/// `Error::Fault`; anything that is not the answer to our request is `Error::Protocol`.
pub(crate) fn check(
    xml_text: &str,
    action: Action,
    message_id: &str,
    http_status: u16,
) -> Result<Checked, Error> {
    let root = xml::parse(xml_text).map_err(|e| Error::Protocol {
        what: format!("the {} response is not valid XML: {e}", action.name()),
    })?;
    if root.ns != NS_SOAP || root.local != "Envelope" {
        return Err(Error::Protocol {
            what: format!(
                "the {} response is not a SOAP 1.2 envelope (root element '{}')",
                action.name(),
                root.local
            ),
        });
    }
    let header = root.child(NS_SOAP, "Header");
    let body = root
        .child(NS_SOAP, "Body")
        .cloned()
        .ok_or_else(|| Error::Protocol {
            what: format!("the {} response has no SOAP body", action.name()),
        })?;
    let got_action = header
        .and_then(|h| h.child(NS_ADDRESSING, "Action"))
        .map(|a| a.text.trim().to_string());
    let relates_to = header
        .and_then(|h| h.child(NS_ADDRESSING, "RelatesTo"))
        .map(|a| a.text.trim().to_string());

    if let Some(fault) = body.child(NS_SOAP, "Fault") {
        let fault = parse_fault(fault, http_status);
        // A fault that relates to another request is still a protocol error, but a fault
        // without RelatesTo (some faults omit it) is believed.
        if let Some(r) = &relates_to
            && !r.eq_ignore_ascii_case(message_id)
        {
            return Err(Error::Protocol {
                what: format!(
                    "the server answered a different request (RelatesTo {r}, expected {message_id})"
                ),
            });
        }
        return Err(Error::Fault(Box::new(fault)));
    }
    if let Some(a) = &got_action
        && FAULT_ACTIONS.contains(&a.as_str())
    {
        return Err(Error::Protocol {
            what: format!(
                "the {} response is a fault without a SOAP Fault body",
                action.name()
            ),
        });
    }
    match &relates_to {
        Some(r) if r.eq_ignore_ascii_case(message_id) => {}
        Some(r) => {
            return Err(Error::Protocol {
                what: format!(
                    "the server answered a different request (RelatesTo {r}, expected {message_id})"
                ),
            });
        }
        None => {
            return Err(Error::Protocol {
                what: format!("the {} response has no RelatesTo header", action.name()),
            });
        }
    }
    if let Some(a) = &got_action
        && *a != action.response_uri()
    {
        return Err(Error::Protocol {
            what: format!(
                "expected a {}Response, the server sent action {a}",
                action.name()
            ),
        });
    }
    Ok(Checked { body })
}

/// Reads a `s:Fault` element.
pub(crate) fn parse_fault(fault: &Element, http_status: u16) -> WsmanFault {
    let code = fault.child(NS_SOAP, "Code");
    let value = code
        .and_then(|c| c.child(NS_SOAP, "Value"))
        .map(|v| strip_prefix(&v.text))
        .unwrap_or_default();
    let subcode = code
        .and_then(|c| c.path(&[(NS_SOAP, "Subcode"), (NS_SOAP, "Value")]))
        .map(|v| strip_prefix(&v.text));
    let reason = fault
        .path(&[(NS_SOAP, "Reason"), (NS_SOAP, "Text")])
        .map(|t| t.deep_text().trim().to_string())
        .unwrap_or_default();
    let detail = fault.child(NS_SOAP, "Detail");
    let wsman = detail.and_then(|d| find_local(d, "WSManFault"));
    let wsman_code = wsman
        .and_then(|w| w.attr("Code"))
        .and_then(|c| c.trim().parse().ok());
    let machine = wsman.and_then(|w| w.attr("Machine")).map(str::to_string);
    let message = wsman
        .and_then(|w| find_local(w, "Message"))
        .map(|m| m.deep_text().trim().to_string())
        .filter(|m| !m.is_empty());
    let wmi = detail.and_then(|d| find_local(d, "MSFT_WmiError"));
    let wmi_error_code = wmi
        .and_then(|w| find_local(w, "error_Code"))
        .and_then(|c| c.text.trim().parse().ok());
    let wmi_message = wmi
        .and_then(|w| find_local(w, "Message"))
        .map(|m| m.deep_text().trim().to_string())
        .filter(|m| !m.is_empty());
    WsmanFault {
        http_status,
        code: value,
        subcode,
        reason,
        wsman_code,
        machine,
        message: message.or(wmi_message),
        wmi_error_code,
    }
}

fn find_local<'a>(el: &'a Element, local: &str) -> Option<&'a Element> {
    for c in &el.children {
        if c.local == local {
            return Some(c);
        }
        if let Some(f) = find_local(c, local) {
            return Some(f);
        }
    }
    None
}

fn strip_prefix(qname: &str) -> String {
    let t = qname.trim();
    t.rsplit_once(':').map(|(_, l)| l).unwrap_or(t).to_string()
}

/// The ShellId from a CreateResponse, exactly as the server wrote it (older hosts prefix
/// it with `uuid:`; it must be echoed back unchanged).
pub(crate) fn shell_id(c: &Checked) -> Result<String, Error> {
    let from_selector = c
        .body
        .path(&[
            (NS_TRANSFER, "ResourceCreated"),
            (NS_ADDRESSING, "ReferenceParameters"),
            (NS_WSMAN, "SelectorSet"),
        ])
        .and_then(|s| {
            s.children_named(NS_WSMAN, "Selector")
                .find(|sel| sel.attr("Name") == Some("ShellId"))
        })
        .map(|s| s.text.trim().to_string());
    let from_shell = c
        .body
        .path(&[(NS_SHELL, "Shell"), (NS_SHELL, "ShellId")])
        .map(|s| s.text.trim().to_string());
    from_selector
        .or(from_shell)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Protocol {
            what: "the CreateResponse carries no ShellId".into(),
        })
}

/// The CommandId from a CommandResponse.
pub(crate) fn command_id(c: &Checked) -> Result<String, Error> {
    c.body
        .path(&[(NS_SHELL, "CommandResponse"), (NS_SHELL, "CommandId")])
        .map(|s| s.text.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Protocol {
            what: "the CommandResponse carries no CommandId".into(),
        })
}

/// The state of a command as a ReceiveResponse reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandState {
    /// Still running; more output may come.
    Running,
    /// Waiting to start.
    Pending,
    /// Finished with this exit code (as Windows reports it, unsigned values included).
    Done {
        /// The process exit code.
        exit_code: i64,
    },
}

/// The output of one Receive: the bytes of each stream, already concatenated in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes written to stdout since the last Receive.
    pub stdout: Vec<u8>,
    /// Bytes written to stderr since the last Receive.
    pub stderr: Vec<u8>,
    /// The command's state; `None` when the response did not say.
    pub state: Option<CommandState>,
}

/// Reads a ReceiveResponse for `command_id`.
pub(crate) fn received(c: &Checked, command_id: &str) -> Result<Received, Error> {
    let rr = c
        .body
        .child(NS_SHELL, "ReceiveResponse")
        .ok_or_else(|| Error::Protocol {
            what: "the Receive response carries no ReceiveResponse".into(),
        })?;
    let mut out = Received {
        stdout: Vec::new(),
        stderr: Vec::new(),
        state: None,
    };
    for s in rr.children_named(NS_SHELL, "Stream") {
        if let Some(id) = s.attr("CommandId")
            && !id.eq_ignore_ascii_case(command_id)
        {
            continue;
        }
        let text = s.text.as_bytes();
        if text.is_empty() {
            continue;
        }
        let mut other = Vec::new();
        let buffer = match s.attr("Name") {
            Some("stdout") => &mut out.stdout,
            Some("stderr") => &mut out.stderr,
            _ => &mut other,
        };
        // A chunk is up to a whole MaxEnvelopeSize of base64: decoded straight into the
        // stream's buffer, and only when that fails (the text was wrapped, as some
        // servers do) with its whitespace taken out first.
        let before = buffer.len();
        if B64.decode_vec(text, buffer).is_err() {
            buffer.truncate(before);
            let unwrapped: Vec<u8> = text
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            B64.decode_vec(&unwrapped, buffer)
                .map_err(|e| Error::Protocol {
                    what: format!(
                        "a {} stream chunk is not valid base64: {e}",
                        s.attr("Name").unwrap_or("?")
                    ),
                })?;
        }
    }
    if let Some(st) = rr.child(NS_SHELL, "CommandState") {
        let uri = st.attr("State").unwrap_or_default();
        let name = uri.rsplit('/').next().unwrap_or_default();
        out.state = Some(match name {
            "Done" => {
                let exit_code = st
                    .child(NS_SHELL, "ExitCode")
                    .map(|e| e.text.trim())
                    .unwrap_or("0");
                let exit_code = exit_code.parse::<i64>().map_err(|_| Error::Protocol {
                    what: format!("the exit code '{exit_code}' is not a number"),
                })?;
                CommandState::Done { exit_code }
            }
            "Running" => CommandState::Running,
            "Pending" => CommandState::Pending,
            other => {
                return Err(Error::Protocol {
                    what: format!("unknown command state '{other}'"),
                });
            }
        });
    }
    Ok(out)
}

/// `MaxEnvelopeSizekb` from the configuration resource.
pub(crate) fn max_envelope_size_kb(c: &Checked) -> Option<u32> {
    c.body
        .path(&[(NS_CONFIG, "Config"), (NS_CONFIG, "MaxEnvelopeSizekb")])
        .and_then(|e| e.text.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMED_OUT: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action><a:RelatesTo>uuid:A</a:RelatesTo></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="h"><f:Message>m</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn faults_keep_code_subcode_machine_and_message() {
        let err = check(TIMED_OUT, Action::Receive, "uuid:A", 500).unwrap_err();
        let Error::Fault(f) = err else {
            panic!("expected a fault, got {err:?}")
        };
        assert_eq!(f.code, "Receiver");
        assert_eq!(f.subcode.as_deref(), Some("TimedOut"));
        assert_eq!(f.wsman_code, Some(2150858793));
        assert_eq!(f.machine.as_deref(), Some("h"));
        assert_eq!(f.message.as_deref(), Some("m"));
        assert!(f.is_timed_out());
    }

    #[test]
    fn a_response_to_another_request_is_refused() {
        let err = check(TIMED_OUT, Action::Receive, "uuid:B", 500).unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    }

    #[test]
    fn non_soap_is_a_protocol_error() {
        assert!(matches!(
            check("<html/>", Action::Create, "uuid:A", 200),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            check("not xml at all <", Action::Create, "uuid:A", 200),
            Err(Error::Protocol { .. })
        ));
    }
}

/// Generated input: responses built from arbitrary values read back as those values, and
/// arbitrary or mutated text never panics.
#[cfg(test)]
mod props {
    use super::*;
    use crate::xml::escape;
    use proptest::prelude::*;

    const ID: &str = "uuid:11111111-2222-3333-4444-555555555555";
    const CMD: &str = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE";

    /// Prefixes differ between Windows versions and peers; they must never matter.
    fn prefix() -> impl Strategy<Value = String> {
        prop_oneof![Just("s".to_string()), "[a-z][a-z0-9]{0,5}"]
    }

    /// Printable text without XML-illegal characters, as values in real faults are.
    fn text() -> impl Strategy<Value = String> {
        "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}\r]{0,40}"
    }

    fn envelope(p: &str, a: &str, action: &str, relates: &str, body: &str) -> String {
        format!(
            "<{p}:Envelope xmlns:{p}=\"{NS_SOAP}\" xmlns:{a}=\"{NS_ADDRESSING}\" xmlns:rsp=\"{NS_SHELL}\"><{p}:Header><{a}:Action>{action}</{a}:Action><{a}:RelatesTo>{relates}</{a}:RelatesTo></{p}:Header><{p}:Body>{body}</{p}:Body></{p}:Envelope>"
        )
    }

    fn wrap_base64(bytes: &[u8], width: usize) -> String {
        let b64 = B64.encode(bytes);
        let chunks: Vec<String> = b64
            .as_bytes()
            .chunks(width.max(4))
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        chunks.join("\r\n ")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn receive_responses_round_trip(
            p in prefix(),
            a in prefix(),
            chunks in proptest::collection::vec(
                (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200), 4usize..80),
                0..6,
            ),
            state in prop_oneof![
                Just(None),
                Just(Some(CommandState::Running)),
                Just(Some(CommandState::Pending)),
                any::<i64>().prop_map(|c| Some(CommandState::Done { exit_code: c })),
            ],
        ) {
            prop_assume!(p != a && p != "rsp" && a != "rsp");
            let mut body = String::from("<rsp:ReceiveResponse>");
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            for (is_out, bytes, width) in &chunks {
                let name = if *is_out { "stdout" } else { "stderr" };
                if *is_out { stdout.extend_from_slice(bytes) } else { stderr.extend_from_slice(bytes) }
                body.push_str(&format!(
                    "<rsp:Stream Name=\"{name}\" CommandId=\"{}\">{}</rsp:Stream>",
                    CMD.to_ascii_lowercase(),
                    wrap_base64(bytes, *width)
                ));
            }
            // Output of another command in the same shell is not ours.
            body.push_str(&format!("<rsp:Stream Name=\"stdout\" CommandId=\"OTHER\">{}</rsp:Stream>", B64.encode(b"not ours")));
            match &state {
                None => {}
                Some(s) => {
                    let (name, code) = match s {
                        CommandState::Running => ("Running", String::new()),
                        CommandState::Pending => ("Pending", String::new()),
                        CommandState::Done { exit_code } => ("Done", format!("<rsp:ExitCode>{exit_code}</rsp:ExitCode>")),
                    };
                    body.push_str(&format!("<rsp:CommandState CommandId=\"{CMD}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/{name}\">{code}</rsp:CommandState>"));
                }
            }
            body.push_str("</rsp:ReceiveResponse>");
            let xml = envelope(&p, &a, &Action::Receive.response_uri(), ID, &body);
            let checked = check(&xml, Action::Receive, ID, 200).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let got = received(&checked, CMD).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, Received { stdout, stderr, state });
        }

        #[test]
        fn a_stream_chunk_that_is_not_base64_is_refused(
            good in proptest::collection::vec(any::<u8>(), 1..100),
            bad in "[A-Za-z0-9+/]{0,20}[*!~.]{1,3}[A-Za-z0-9+/=]{0,20}",
        ) {
            let body = format!(
                "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"{CMD}\">{}</rsp:Stream><rsp:Stream Name=\"stdout\" CommandId=\"{CMD}\">{bad}</rsp:Stream></rsp:ReceiveResponse>",
                B64.encode(&good)
            );
            let xml = envelope("s", "a", &Action::Receive.response_uri(), ID, &body);
            let checked = check(&xml, Action::Receive, ID, 200).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let got = received(&checked, CMD);
            prop_assert!(matches!(got, Err(Error::Protocol { .. })), "{:?}", got);
        }

        #[test]
        fn faults_round_trip(
            p in prefix(),
            subcode in "[A-Za-z]{1,20}",
            reason in text(),
            code in any::<u32>(),
            machine in text(),
            message in text(),
            status in prop_oneof![Just(400u16), Just(500u16)],
        ) {
            prop_assume!(p != "a" && p != "rsp");
            let detail = format!(
                "<f:WSManFault xmlns:f=\"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault\" Code=\"{code}\" Machine=\"{}\"><f:Message>{}</f:Message></f:WSManFault>",
                escape(&machine),
                escape(&message)
            );
            let body = format!(
                "<{p}:Fault><{p}:Code><{p}:Value>{p}:Sender</{p}:Value><{p}:Subcode><{p}:Value>w:{subcode}</{p}:Value></{p}:Subcode></{p}:Code><{p}:Reason><{p}:Text xml:lang=\"en-US\">{}</{p}:Text></{p}:Reason><{p}:Detail>{detail}</{p}:Detail></{p}:Fault>",
                escape(&reason)
            );
            let xml = envelope(&p, "a", "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", ID, &body);
            let err = check(&xml, Action::Command, ID, status).unwrap_err();
            let f = err.fault().ok_or_else(|| TestCaseError::fail(format!("{err:?}")))?;
            prop_assert_eq!(f.http_status, status);
            prop_assert_eq!(&f.code, "Sender");
            prop_assert_eq!(f.subcode.as_deref(), Some(subcode.as_str()));
            prop_assert_eq!(&f.reason, reason.trim());
            prop_assert_eq!(f.wsman_code, Some(code));
            prop_assert_eq!(f.machine.as_deref(), Some(machine.as_str()));
            let message = message.trim();
            prop_assert_eq!(f.message.as_deref(), (!message.is_empty()).then_some(message));
            // The message an administrator sees is built from all of it without panicking.
            let _ = err.to_string();
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,400}") {
            for action in [Action::Create, Action::Command, Action::Receive, Action::Get] {
                if let Ok(c) = check(&s, action, ID, 200) {
                    let _ = (shell_id(&c), command_id(&c), received(&c, CMD), max_envelope_size_kb(&c));
                }
            }
        }

        #[test]
        fn mutated_responses_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let body = format!(
                "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"{CMD}\">aGk=</rsp:Stream><rsp:CommandState CommandId=\"{CMD}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done\"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
            );
            let mut bytes = envelope("s", "a", &Action::Receive.response_uri(), ID, &body).into_bytes();
            for (i, v) in edits {
                let i = i.index(bytes.len());
                bytes[i] = v;
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len()));
            }
            crate::fuzzing::parse_response(&bytes);
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(c) = check(&text, Action::Receive, ID, 200) {
                let _ = received(&c, CMD);
            }
        }
    }
}
