//! The NTLMv2 cryptography of MS-NLMP 3.3.2 and 3.4 as pure functions over bytes: password
//! hashes, the LMv2 and NTv2 responses, key exchange, the signing and sealing keys, the MIC and
//! the channel-binding hash. Public so that tests can check every intermediate value against
//! the worked example of MS-NLMP 4.2.4; the initiator and acceptor are built from these.

use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};

type HmacMd5 = Hmac<Md5>;

/// Which way a key protects traffic. NTLM with extended session security has separate signing
/// and sealing keys per direction (MS-NLMP 3.4.5.2, 3.4.5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Messages the initiator (client) sends.
    ClientToServer,
    /// Messages the acceptor (server) sends.
    ServerToClient,
}

/// HMAC-MD5 of the concatenation of `parts`.
pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = <HmacMd5 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// MD5 of the concatenation of `parts`.
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hash = Md5::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// UTF-16LE bytes of `text`, the encoding of every NTLM text field once UNICODE is negotiated.
pub fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Upper-cases one character at a time, keeping characters whose upper case is longer (such as
/// `ß`) unchanged. Windows upper-cases user names with a one-to-one table, so the length of the
/// name never changes; full Unicode upper-casing would give another NTOWFv2 for such names.
fn upcase(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// The NT hash of a password: MD4 of its UTF-16LE bytes (NTOWFv1 of MS-NLMP 3.3.1).
pub fn nt_hash(password: &str) -> [u8; 16] {
    Md4::digest(utf16le(password)).into()
}

/// NTOWFv2 (MS-NLMP 3.3.2): HMAC_MD5(MD4(UNICODE(password)), UNICODE(UPPER(user) ‖ domain)).
/// Only the user is upper-cased; the domain is hashed exactly as given, so an acceptor must use
/// the domain as the client sent it. LMOWFv2 is the same value.
pub fn nt_owf_v2(user: &str, domain: &str, password: &str) -> [u8; 16] {
    nt_owf_v2_from_hash(user, domain, &nt_hash(password))
}

/// NTOWFv2 from an NT hash instead of the password.
pub fn nt_owf_v2_from_hash(user: &str, domain: &str, nt_hash: &[u8; 16]) -> [u8; 16] {
    let identity = utf16le(&(upcase(user) + domain));
    hmac_md5(nt_hash, &[&identity])
}

/// The LMv2 response (MS-NLMP 3.3.2):
/// HMAC_MD5(LMOWFv2, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge.
pub fn lmv2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> [u8; 24] {
    let proof = hmac_md5(response_key, &[server_challenge, client_challenge]);
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&proof);
    out[16..].copy_from_slice(client_challenge);
    out
}

/// The NTLMv2 client challenge structure, called `temp` in MS-NLMP 3.3.2:
/// Responserversion 1 ‖ HiResponserversion 1 ‖ Z(6) ‖ Time ‖ ClientChallenge ‖ Z(4) ‖
/// AV pairs ‖ Z(4). `av_pairs` is the encoded AV pair list including its MsvAvEOL; `timestamp`
/// is a FILETIME (100 ns units since 1601).
pub fn ntv2_client_blob(timestamp: u64, client_challenge: &[u8; 8], av_pairs: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(32 + av_pairs.len());
    blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    blob.extend_from_slice(&timestamp.to_le_bytes());
    blob.extend_from_slice(client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(av_pairs);
    blob.extend_from_slice(&[0; 4]);
    blob
}

/// What the NTv2 response computation yields.
#[derive(Clone, PartialEq, Eq)]
pub struct NtV2Response {
    /// NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge ‖ blob); the NtChallengeResponse is this
    /// followed by the blob.
    pub nt_proof_str: [u8; 16],
    /// SessionBaseKey = HMAC_MD5(NTOWFv2, NTProofStr).
    pub session_base_key: [u8; 16],
}

impl std::fmt::Debug for NtV2Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session base key decrypts the exported session key; never print it.
        f.debug_struct("NtV2Response").finish_non_exhaustive()
    }
}

/// The NTv2 response over a client blob (see [`ntv2_client_blob`]), as MS-NLMP 3.3.2 computes it.
pub fn ntv2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    blob: &[u8],
) -> NtV2Response {
    let nt_proof_str = hmac_md5(response_key, &[server_challenge, blob]);
    let session_base_key = hmac_md5(response_key, &[&nt_proof_str]);
    NtV2Response {
        nt_proof_str,
        session_base_key,
    }
}

/// KXKEY (MS-NLMP 3.4.5.1). For NTLMv2 the key exchange key is the session base key itself;
/// the LM-based variants only apply to NTLMv1, which this crate refuses.
pub fn key_exchange_key(session_base_key: &[u8; 16]) -> [u8; 16] {
    *session_base_key
}

/// RC4K: one-shot RC4 of `data` under a fresh 128-bit key.
pub fn rc4k(key: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    new_rc4(key).apply_keystream(&mut out);
    out
}

/// EncryptedRandomSessionKey = RC4K(KeyExchangeKey, ExportedSessionKey). RC4 is its own
/// inverse, so the acceptor recovers the exported key with the same function.
pub fn encrypt_session_key(key_exchange_key: &[u8; 16], session_key: &[u8; 16]) -> [u8; 16] {
    let mut out = *session_key;
    new_rc4(key_exchange_key).apply_keystream(&mut out);
    out
}

/// SIGNKEY with extended session security (MS-NLMP 3.4.5.2):
/// MD5(ExportedSessionKey ‖ "session key to <direction> signing key magic constant\0").
pub fn sign_key(exported_session_key: &[u8; 16], direction: Direction) -> [u8; 16] {
    let magic: &[u8] = match direction {
        Direction::ClientToServer => {
            b"session key to client-to-server signing key magic constant\0"
        }
        Direction::ServerToClient => {
            b"session key to server-to-client signing key magic constant\0"
        }
    };
    md5(&[exported_session_key, magic])
}

/// SEALKEY with extended session security and 128-bit keys (MS-NLMP 3.4.5.3):
/// MD5(ExportedSessionKey ‖ "session key to <direction> sealing key magic constant\0").
/// The 56- and 40-bit variants truncate the exported key first; we always require 128.
pub fn seal_key(exported_session_key: &[u8; 16], direction: Direction) -> [u8; 16] {
    let magic: &[u8] = match direction {
        Direction::ClientToServer => {
            b"session key to client-to-server sealing key magic constant\0"
        }
        Direction::ServerToClient => {
            b"session key to server-to-client sealing key magic constant\0"
        }
    };
    md5(&[exported_session_key, magic])
}

/// The MIC of MS-NLMP 3.1.5.1.2: HMAC_MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖
/// AUTHENTICATE), the AUTHENTICATE message with its MIC field zeroed.
pub fn mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate_zeroed_mic: &[u8],
) -> [u8; 16] {
    hmac_md5(
        exported_session_key,
        &[negotiate, challenge, authenticate_zeroed_mic],
    )
}

/// The gss_channel_bindings_struct (RFC 2744 3.11) that Windows hashes for NTLM: initiator and
/// acceptor address types and lengths all zero, then the application data length (u32 LE) and
/// the data. For WinRM over HTTPS the data is `tls-server-end-point:` followed by the hash of the
/// server certificate (RFC 5929).
pub fn channel_bindings_struct(application_data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + application_data.len());
    out.extend_from_slice(&[0; 16]);
    // Callers bound the data far below 4 GiB; saturate rather than wrap if one did not.
    let len = u32::try_from(application_data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(application_data);
    out
}

/// The MsvAvChannelBindings value: MD5 of [`channel_bindings_struct`].
pub fn channel_bindings_hash(application_data: &[u8]) -> [u8; 16] {
    md5(&[&channel_bindings_struct(application_data)])
}

/// The current time as a Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
pub fn filetime_now() -> u64 {
    // Seconds between 1601-01-01 and 1970-01-01, times 10^7.
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ticks = since_unix.as_secs().saturating_mul(10_000_000)
        + u64::from(since_unix.subsec_nanos() / 100);
    UNIX_EPOCH_AS_FILETIME.saturating_add(ticks)
}

/// Comparison whose time does not depend on where the inputs first differ, for proofs, MICs
/// and signatures.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn new_rc4(key: &[u8; 16]) -> Rc4 {
    Rc4::new(key)
}

/// RC4, the cipher of NTLM sealing. Written out here rather than taken through a generic
/// stream-cipher interface: sealing runs it over every byte of every message in both
/// directions, and a plain loop that keeps the two indices in registers is several times
/// faster than a cipher framework's one-byte blocks (it was the largest cost of streaming
/// large outputs).
#[derive(Clone)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// The key-scheduling algorithm; `key` must not be empty (ours are always 16 bytes).
    pub fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (k, v) in s.iter_mut().enumerate() {
            *v = k as u8;
        }
        if !key.is_empty() {
            let mut j = 0u8;
            for k in 0..256 {
                j = j.wrapping_add(s[k]).wrapping_add(key[k % key.len()]);
                s.swap(k, usize::from(j));
            }
        }
        Rc4 { s, i: 0, j: 0 }
    }

    /// XORs `data` with the next `data.len()` bytes of the keystream.
    pub fn apply_keystream(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        let s = &mut self.s;
        for b in data {
            i = i.wrapping_add(1);
            let si = s[usize::from(i)];
            j = j.wrapping_add(si);
            let sj = s[usize::from(j)];
            s[usize::from(i)] = sj;
            s[usize::from(j)] = si;
            *b ^= s[usize::from(si.wrapping_add(sj))];
        }
        self.i = i;
        self.j = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcase_keeps_length() {
        assert_eq!(upcase("user"), "USER");
        assert_eq!(upcase("straße"), "STRAßE");
    }

    #[test]
    fn nt_hash_of_password() {
        // The NT hash of "Password" (MS-NLMP 4.2.2.1.2).
        assert_eq!(
            nt_hash("Password"),
            [
                0xa4, 0xf4, 0x9c, 0x40, 0x65, 0x10, 0xbd, 0xca, 0xb6, 0x82, 0x4e, 0xe7, 0xc3, 0x0f,
                0xd8, 0x52
            ]
        );
    }

    #[test]
    fn channel_bindings_struct_layout() {
        let s = channel_bindings_struct(b"abc");
        assert_eq!(&s[..16], &[0; 16]);
        assert_eq!(&s[16..20], &[3, 0, 0, 0]);
        assert_eq!(&s[20..], b"abc");
    }

    #[test]
    fn filetime_is_after_2020() {
        // 2020-01-01 as FILETIME.
        assert!(filetime_now() > 132_223_104_000_000_000);
    }

    #[test]
    fn rc4_matches_the_rfc_6229_vectors() {
        // RFC 6229: the 40-bit key 0x0102030405 at offsets 0 and 768, and the 128-bit key
        // 0x0102..10 at offset 0.
        let mut ks = vec![0u8; 784];
        Rc4::new(&[1, 2, 3, 4, 5]).apply_keystream(&mut ks);
        assert_eq!(
            ks[..16],
            [
                0xb2, 0x39, 0x63, 0x05, 0xf0, 0x3d, 0xc0, 0x27, 0xcc, 0xc3, 0x52, 0x4a, 0x0a, 0x11,
                0x18, 0xa8
            ]
        );
        assert_eq!(
            ks[768..],
            [
                0xeb, 0x62, 0x63, 0x8d, 0x4f, 0x0b, 0xa1, 0xfe, 0x9f, 0xca, 0x20, 0xe0, 0x5b, 0xf8,
                0xff, 0x2b
            ]
        );
        let key: Vec<u8> = (1..=16).collect();
        let mut ks = [0u8; 16];
        Rc4::new(&key).apply_keystream(&mut ks);
        assert_eq!(
            ks,
            [
                0x9a, 0xc7, 0xcc, 0x9a, 0x60, 0x9d, 0x1e, 0xf7, 0xb2, 0x93, 0x28, 0x99, 0xcd, 0xe4,
                0x1b, 0x97
            ]
        );
    }

    #[test]
    fn rc4_is_one_stream_across_calls() {
        let key = [7u8; 16];
        let mut whole = vec![0u8; 1000];
        Rc4::new(&key).apply_keystream(&mut whole);
        let mut rc4 = Rc4::new(&key);
        let mut parts = vec![0u8; 1000];
        let (a, rest) = parts.split_at_mut(1);
        let (b, c) = rest.split_at_mut(500);
        rc4.apply_keystream(a);
        rc4.apply_keystream(b);
        rc4.apply_keystream(c);
        assert_eq!(whole, parts);
    }

    proptest::proptest! {
        #[test]
        fn rc4_agrees_with_rustcrypto(
            key in proptest::collection::vec(proptest::num::u8::ANY, 16),
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            split in 0usize..2000,
        ) {
            use rc4::{KeyInit, StreamCipher};
            let mut expected = data.clone();
            let key16: [u8; 16] = key.as_slice().try_into().expect("16 bytes");
            rc4::Rc4::<rc4::consts::U16>::new(&key16.into()).apply_keystream(&mut expected);
            let mut got = data;
            let (a, b) = got.split_at_mut(split.min(expected.len()));
            let mut ours = Rc4::new(&key);
            ours.apply_keystream(a);
            ours.apply_keystream(b);
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
