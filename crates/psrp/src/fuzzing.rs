//! Entry points for the fuzz targets (`fuzz/`): not part of the API.

use crate::fragment::{self, Defragmenter};
use crate::message::Message;
use crate::protocol::{self, ServerEvent};
use crate::{Value, clixml};

/// Reads `data` as a server's stdout stream: fragments, messages, events, and renders
/// what a client would show of them.
pub fn server_stream(data: &[u8]) {
    let mut d = Defragmenter::new();
    if let Ok(frags) = fragment::decode_all(data) {
        for f in frags {
            let Ok(Some(raw)) = d.push(f) else { continue };
            let Ok(m) = Message::decode(&raw) else {
                continue;
            };
            match protocol::read_event(&m) {
                Ok(ServerEvent::Output(v)) => show(&v),
                Ok(ServerEvent::Error(e)) => {
                    let _ = e.render();
                }
                Ok(ServerEvent::PipelineState { error: Some(e), .. }) => {
                    let _ = e.render();
                }
                Ok(ServerEvent::HostCall(c)) => {
                    let _ = c.refusal();
                }
                _ => {}
            }
        }
    }
    // The same bytes as one message's CLIXML.
    if let Ok(v) = clixml::parse(&String::from_utf8_lossy(data)) {
        show(&v);
    }
}

fn show(v: &Value) {
    let d = clixml::deserialized(v);
    let _ = (d.display(), clixml::to_clixml(&d));
}
