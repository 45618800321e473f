//! Entry points for the fuzz targets (`fuzz/`) and the stable corpus runner
//! (`tests/fuzz_corpus.rs`): each takes raw bytes as a hostile server would send them and
//! runs them through the parsers the client uses on responses. Not part of the API.
//!
//! Each function must return normally for every input; a panic, a hang or an allocation
//! out of proportion to the input is a bug in the parser, not in the target.

use exctl_ntlm::{Role, Session};

use crate::envelope::Action;
use crate::{framing, response, xml};

/// The MessageID the targets pretend to have sent; seeds relate to it so that the fuzzer
/// gets past the RelatesTo check.
pub const MESSAGE_ID: &str = "uuid:00000000-0000-0000-0000-000000000000";

/// The exported session key of the session the framing target unseals with.
pub const SESSION_KEY: [u8; 16] = [0x55; 16];

const ACTIONS: [Action; 7] = [
    Action::Create,
    Action::Command,
    Action::Send,
    Action::Receive,
    Action::Signal,
    Action::Delete,
    Action::Get,
];

/// A response body as every request would read it: envelope checks, faults, and what
/// each action takes from a successful answer (ShellId, CommandId, streams and state,
/// MaxEnvelopeSizekb). Error messages are rendered too, since they quote the input.
pub fn parse_response(data: &[u8]) {
    // The transport refuses bodies that are not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (i, action) in ACTIONS.into_iter().enumerate() {
        let status = if i % 2 == 0 { 200 } else { 500 };
        match response::check(text, action, MESSAGE_ID, status) {
            Ok(checked) => {
                let results = [
                    response::shell_id(&checked).err(),
                    response::command_id(&checked).err(),
                    response::received(&checked, "1A2B3C4D-0000-0000-0000-000000000000").err(),
                ];
                for e in results.into_iter().flatten() {
                    let _ = e.to_string();
                }
                let _ = response::max_envelope_size_kb(&checked);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// A `multipart/encrypted` body as the transport reads it: the framing, then unsealing
/// with a session (which must refuse everything the fuzzer can make up). A body that
/// frames must frame the same after encoding it again.
pub fn parse_framing(data: &[u8]) {
    let _ =
        framing::is_encrypted_content_type(&String::from_utf8_lossy(&data[..data.len().min(256)]));
    let Ok(framed) = framing::decode(data) else {
        return;
    };
    let again = framing::decode(&framing::encode(&framed.signature, &framed.sealed));
    assert_eq!(again.as_ref(), Ok(&framed), "framing does not round-trip");
    let mut session = Session::from_exported_session_key(Role::Initiator, &SESSION_KEY);
    if let Ok(plain) = session.unseal(&framed.signature, &framed.sealed) {
        parse_response(&plain);
    }
}

/// The namespace-resolving XML reader alone.
pub fn parse_xml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(root) = xml::parse(text)
    {
        let _ = root.deep_text();
    }
}
