//! PSRP fragments (MS-PSRP 2.2.4): how one message travels in one or more pieces.
//!
//! Every fragment has a 21-byte header: ObjectId (u64, big endian), FragmentId (u64, big
//! endian), a flags byte (bit 0 start, bit 1 end) and the blob length (u32, big endian).
//! A WS-Management stream chunk may hold several fragments back to back; a message longer
//! than the room in one envelope is split across several. Pure: no I/O.

use std::collections::HashMap;

use crate::error::Error;

/// The size of a fragment header.
pub const HEADER_LEN: usize = 21;
const FLAG_START: u8 = 0x1;
const FLAG_END: u8 = 0x2;

/// The largest message we reassemble: far more than any PowerShell object a server sends
/// in one piece, and a bound on what a hostile server can make us hold.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// One fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The message this fragment belongs to.
    pub object_id: u64,
    /// Its position in the message, from 0.
    pub fragment_id: u64,
    /// The first fragment of its message.
    pub start: bool,
    /// The last fragment of its message.
    pub end: bool,
    /// The piece of the message.
    pub data: Vec<u8>,
}

impl Fragment {
    /// The fragment as it travels.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.object_id.to_be_bytes());
        out.extend_from_slice(&self.fragment_id.to_be_bytes());
        let mut flags = 0;
        if self.start {
            flags |= FLAG_START;
        }
        if self.end {
            flags |= FLAG_END;
        }
        out.push(flags);
        // A fragment is never near 4 GiB: it fits one envelope.
        out.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.data);
    }
}

/// Reads every fragment in `bytes` (one or more, back to back).
pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Fragment>, Error> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Fragment(format!(
                "{} bytes left, fewer than a fragment header",
                bytes.len()
            )));
        }
        let be64 = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_be_bytes(a)
        };
        let object_id = be64(&bytes[0..8]);
        let fragment_id = be64(&bytes[8..16]);
        let flags = bytes[16];
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[17..21]);
        let len = u32::from_be_bytes(len) as usize;
        let rest = &bytes[HEADER_LEN..];
        if rest.len() < len {
            return Err(Error::Fragment(format!(
                "fragment {fragment_id} of object {object_id} announces {len} bytes, {} remain",
                rest.len()
            )));
        }
        out.push(Fragment {
            object_id,
            fragment_id,
            start: flags & FLAG_START != 0,
            end: flags & FLAG_END != 0,
            data: rest[..len].to_vec(),
        });
        bytes = &rest[len..];
    }
    Ok(out)
}

/// Splits messages into fragments and numbers them (ObjectIds count up per session).
#[derive(Debug, Default)]
pub struct Fragmenter {
    next_object_id: u64,
}

impl Fragmenter {
    /// A fragmenter whose first message is ObjectId 1.
    pub fn new() -> Self {
        Fragmenter { next_object_id: 1 }
    }

    /// Splits `message` into fragments of at most `max_fragment` bytes (header included).
    pub fn fragment(&mut self, message: &[u8], max_fragment: usize) -> Vec<Fragment> {
        let object_id = self.next_object_id.max(1);
        self.next_object_id = object_id + 1;
        let room = max_fragment.saturating_sub(HEADER_LEN).max(1);
        let chunks: Vec<&[u8]> = if message.is_empty() {
            vec![&[][..]]
        } else {
            message.chunks(room).collect()
        };
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| Fragment {
                object_id,
                fragment_id: i as u64,
                start: i == 0,
                end: i + 1 == n,
                data: c.to_vec(),
            })
            .collect()
    }
}

/// Puts fragments back together into messages, in the order their last fragments arrive.
#[derive(Debug, Default)]
pub struct Defragmenter {
    partial: HashMap<u64, (u64, Vec<u8>)>,
}

impl Defragmenter {
    /// An empty defragmenter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one fragment; returns the message it completes, if any.
    pub fn push(&mut self, f: Fragment) -> Result<Option<Vec<u8>>, Error> {
        if f.start && f.end {
            if f.fragment_id != 0 {
                return Err(Error::Fragment(format!(
                    "a whole message in fragment {} of object {}",
                    f.fragment_id, f.object_id
                )));
            }
            return Ok(Some(f.data));
        }
        if f.start {
            if f.fragment_id != 0 || self.partial.contains_key(&f.object_id) {
                return Err(Error::Fragment(format!(
                    "object {} started twice or not at fragment 0",
                    f.object_id
                )));
            }
            // Bounded: at most a few messages are in flight at once.
            if self.partial.len() >= 64 {
                return Err(Error::Fragment("too many unfinished messages".into()));
            }
            self.partial.insert(f.object_id, (1, f.data));
            return Ok(None);
        }
        let Some((next, buf)) = self.partial.get_mut(&f.object_id) else {
            return Err(Error::Fragment(format!(
                "fragment {} of object {} without its start",
                f.fragment_id, f.object_id
            )));
        };
        if f.fragment_id != *next {
            return Err(Error::Fragment(format!(
                "fragment {} of object {} out of order (expected {next})",
                f.fragment_id, f.object_id
            )));
        }
        if buf.len() + f.data.len() > MAX_MESSAGE_LEN {
            return Err(Error::Fragment(format!(
                "object {} is longer than {MAX_MESSAGE_LEN} bytes",
                f.object_id
            )));
        }
        buf.extend_from_slice(&f.data);
        *next += 1;
        if f.end {
            let (_, buf) = self.partial.remove(&f.object_id).unwrap_or_default();
            return Ok(Some(buf));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_split_small_comes_back_whole() {
        let msg: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut f = Fragmenter::new();
        let frags = f.fragment(&msg, 100);
        assert!(frags.len() > 10);
        let mut wire = Vec::new();
        for fr in &frags {
            fr.encode(&mut wire);
        }
        let mut d = Defragmenter::new();
        let mut got = None;
        for fr in decode_all(&wire).unwrap() {
            if let Some(m) = d.push(fr).unwrap() {
                got = Some(m);
            }
        }
        assert_eq!(got.unwrap(), msg);
    }

    #[test]
    fn truncated_and_orphaned_fragments_are_refused() {
        let mut wire = Vec::new();
        Fragment {
            object_id: 3,
            fragment_id: 1,
            start: false,
            end: true,
            data: b"x".to_vec(),
        }
        .encode(&mut wire);
        let frags = decode_all(&wire).unwrap();
        assert!(Defragmenter::new().push(frags[0].clone()).is_err());
        assert!(decode_all(&wire[..wire.len() - 1]).is_err());
    }
}
