//! Every value of the NTLMv2 worked example in MS-NLMP 4.2.4, read from the fixture at
//! test time, recomputed with this crate's public functions.

use std::collections::HashMap;

use exctl_ntlm::crypto::{self, Direction};
use exctl_ntlm::{Initiator, InitiatorConfig, InitiatorRandomness, Role, Session};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/ntlm/ms-nlmp-4.2.4-ntlmv2.txt"
);

fn fixture() -> HashMap<String, String> {
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap_or_else(|e| panic!("cannot read the MS-NLMP fixture {FIXTURE}: {e}"));
    let values: HashMap<String, String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("fixture line without '=': {l}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    assert!(values.len() >= 20, "fixture looks truncated: {values:?}");
    values
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s}")))
        .collect()
}

fn get<'a>(f: &'a HashMap<String, String>, key: &str) -> &'a str {
    f.get(key).unwrap_or_else(|| panic!("fixture has no {key}"))
}

fn bytes<const N: usize>(f: &HashMap<String, String>, key: &str) -> [u8; N] {
    hex(get(f, key))
        .try_into()
        .unwrap_or_else(|v: Vec<u8>| panic!("{key} is {} bytes, expected {N}", v.len()))
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The target info of 4.2.4: MsvAvNbDomainName = domain, MsvAvNbComputerName = server, EOL.
/// Built by hand here, independently of the crate's encoder.
fn spec_av_pairs(domain: &str, server: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, value) in [(2u16, utf16(domain)), (1u16, utf16(server))] {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(&value);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

struct Derived {
    response_key: [u8; 16],
    nt_proof_str: [u8; 16],
    session_base_key: [u8; 16],
}

fn derive(f: &HashMap<String, String>) -> Derived {
    let response_key = crypto::nt_owf_v2(get(f, "user"), get(f, "user_domain"), get(f, "password"));
    let time = u64::from_le_bytes(bytes(f, "time"));
    let blob = crypto::ntv2_client_blob(
        time,
        &bytes(f, "client_challenge"),
        &spec_av_pairs(get(f, "user_domain"), get(f, "server_name")),
    );
    let response = crypto::ntv2_response(&response_key, &bytes(f, "server_challenge"), &blob);
    Derived {
        response_key,
        nt_proof_str: response.nt_proof_str,
        session_base_key: response.session_base_key,
    }
}

#[test]
fn ntowfv2() {
    let f = fixture();
    assert_eq!(derive(&f).response_key, bytes::<16>(&f, "ntowfv2"));
}

#[test]
fn ntowfv2_upper_cases_the_user_but_not_the_domain() {
    let f = fixture();
    let expected = bytes::<16>(&f, "ntowfv2");
    assert_eq!(crypto::nt_owf_v2("USER", "Domain", "Password"), expected);
    assert_ne!(crypto::nt_owf_v2("User", "DOMAIN", "Password"), expected);
    assert_ne!(crypto::nt_owf_v2("User", "Domain", "password"), expected);
}

#[test]
fn lmv2_response() {
    let f = fixture();
    let d = derive(&f);
    let lm = crypto::lmv2_response(
        &d.response_key,
        &bytes(&f, "server_challenge"),
        &bytes(&f, "client_challenge"),
    );
    assert_eq!(lm.to_vec(), hex(get(&f, "lmv2_response")));
}

#[test]
fn nt_proof_str_and_session_base_key() {
    let f = fixture();
    let d = derive(&f);
    assert_eq!(d.nt_proof_str, bytes::<16>(&f, "nt_proof_str"));
    assert_eq!(d.session_base_key, bytes::<16>(&f, "session_base_key"));
}

#[test]
fn key_exchange() {
    let f = fixture();
    let d = derive(&f);
    let kxk = crypto::key_exchange_key(&d.session_base_key);
    assert_eq!(kxk, bytes::<16>(&f, "key_exchange_key"));
    let random = bytes::<16>(&f, "random_session_key");
    let encrypted = crypto::encrypt_session_key(&kxk, &random);
    assert_eq!(encrypted, bytes::<16>(&f, "encrypted_random_session_key"));
    // The acceptor's direction: decrypting gives the random session key back.
    assert_eq!(crypto::encrypt_session_key(&kxk, &encrypted), random);
}

#[test]
fn signing_and_sealing_keys() {
    let f = fixture();
    let key = bytes::<16>(&f, "random_session_key");
    assert_eq!(
        crypto::sign_key(&key, Direction::ClientToServer),
        bytes::<16>(&f, "client_signing_key")
    );
    assert_eq!(
        crypto::seal_key(&key, Direction::ClientToServer),
        bytes::<16>(&f, "client_sealing_key")
    );
    // The other direction uses other magic constants.
    assert_ne!(
        crypto::sign_key(&key, Direction::ServerToClient),
        bytes::<16>(&f, "client_signing_key")
    );
}

#[test]
fn gss_wrap_ex_of_plaintext() {
    let f = fixture();
    let key = bytes::<16>(&f, "random_session_key");
    let plaintext = hex(get(&f, "plaintext_utf16le"));
    assert_eq!(plaintext, utf16("Plaintext"));

    let mut client = Session::from_exported_session_key(Role::Initiator, &key);
    let (signature, sealed) = client.seal(&plaintext);
    assert_eq!(sealed, hex(get(&f, "sealed")));
    assert_eq!(signature.to_vec(), hex(get(&f, "signature")));

    // And the server side of the same key opens it.
    let mut server = Session::from_exported_session_key(Role::Acceptor, &key);
    assert_eq!(
        server
            .unseal(&signature, &sealed)
            .expect("the spec's sealed message verifies"),
        plaintext
    );
}

/// The initiator, fed the spec's CHALLENGE (built here from the 4.2.4 inputs), produces the
/// spec's LMv2 response (the challenge has no timestamp, so LMv2 is sent) and flags.
#[test]
fn initiator_uses_the_spec_values_in_its_authenticate_message() {
    let f = fixture();
    // Written as a number in the fixture (0xe28a8233), not as message bytes.
    let flags = u32::from_str_radix(get(&f, "negotiate_flags"), 16).expect("hex flags");
    let target_name = utf16(get(&f, "server_name"));
    let target_info = spec_av_pairs(get(&f, "user_domain"), get(&f, "server_name"));
    let mut challenge = Vec::new();
    challenge.extend_from_slice(b"NTLMSSP\0");
    challenge.extend_from_slice(&2u32.to_le_bytes());
    challenge.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    challenge.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    challenge.extend_from_slice(&56u32.to_le_bytes());
    challenge.extend_from_slice(&flags.to_le_bytes());
    challenge.extend_from_slice(&bytes::<8>(&f, "server_challenge"));
    challenge.extend_from_slice(&[0; 8]);
    challenge.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
    challenge.extend_from_slice(&(target_info.len() as u16).to_le_bytes());
    challenge.extend_from_slice(&((56 + target_name.len()) as u32).to_le_bytes());
    challenge.extend_from_slice(&[6, 0, 0x70, 0x17, 0, 0, 0, 15]);
    challenge.extend_from_slice(&target_name);
    challenge.extend_from_slice(&target_info);

    let mut initiator = Initiator::with_fixed_randomness(
        InitiatorConfig {
            domain: get(&f, "user_domain").into(),
            user: get(&f, "user").into(),
            password: get(&f, "password").into(),
            workstation: Some(get(&f, "workstation_name").into()),
            channel_bindings: None,
            target_spn: None,
        },
        InitiatorRandomness {
            client_challenge: bytes(&f, "client_challenge"),
            exported_session_key: bytes(&f, "random_session_key"),
            timestamp: u64::from_le_bytes(bytes(&f, "time")),
        },
    );
    initiator.negotiate_message();
    let authenticate = initiator
        .authenticate_message(&challenge)
        .expect("the spec's challenge is acceptable");

    let field = |at: usize| {
        let len = u16::from_le_bytes([authenticate[at], authenticate[at + 1]]) as usize;
        let off = u32::from_le_bytes(authenticate[at + 4..at + 8].try_into().unwrap()) as usize;
        authenticate[off..off + len].to_vec()
    };
    assert_eq!(field(12), hex(get(&f, "lmv2_response")));
    assert_eq!(field(28), utf16(get(&f, "user_domain")));
    assert_eq!(field(36), utf16(get(&f, "user")));
    assert_eq!(field(44), utf16(get(&f, "workstation_name")));
    // The NTLMv2 blob: header, the spec's time and client challenge, then the server's pairs
    // followed by ours (flags, channel bindings).
    let nt = field(20);
    assert_eq!(&nt[16..24], &[1, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(nt[24..32].to_vec(), hex(get(&f, "time")));
    assert_eq!(nt[32..40].to_vec(), hex(get(&f, "client_challenge")));
    let server_pairs = &target_info[..target_info.len() - 4];
    assert_eq!(&nt[44..44 + server_pairs.len()], server_pairs);
    // Flags echo the spec's choice (except OEM, which we never offer) and add VERSION.
    let agreed = u32::from_le_bytes(authenticate[60..64].try_into().unwrap());
    assert_eq!(agreed, flags & !0x0000_0002 | 0x0200_0000);
}
