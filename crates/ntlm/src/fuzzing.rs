//! Entry points for the fuzz targets (`fuzz/`) and the stable corpus runner
//! (`tests/fuzz_corpus.rs`), one per message a peer sends: the client reads CHALLENGE and
//! sealed responses, the server (the simulator) reads NEGOTIATE, AUTHENTICATE and sealed
//! requests. Randomness is fixed so that a seed made by [`authenticate_seed`] stays valid
//! and the fuzzer can explore around a message that is accepted. Not part of the API.
//!
//! Each function must return normally for every input.

use crate::{
    Acceptor, AcceptorConfig, AcceptorRandomness, Initiator, InitiatorConfig, InitiatorRandomness,
    Role, Session,
};

fn initiator() -> Initiator {
    Initiator::with_fixed_randomness(
        InitiatorConfig {
            domain: "CONTOSO".into(),
            user: "Administrator".into(),
            password: "P@ssw0rd!".into(),
            workstation: Some("JUMP01".into()),
            channel_bindings: Some(b"tls-server-end-point:fuzz".to_vec()),
            target_spn: Some("HTTP/exch01.contoso.local".into()),
        },
        InitiatorRandomness {
            client_challenge: [0x11; 8],
            exported_session_key: [0x22; 16],
            timestamp: 0x01d0_0000_0000_0000,
        },
    )
}

fn acceptor() -> Acceptor {
    Acceptor::with_fixed_randomness(
        AcceptorConfig {
            accounts: vec![("CONTOSO".into(), "Administrator".into(), "P@ssw0rd!".into())],
            netbios_domain: "CONTOSO".into(),
            netbios_computer: "EXCH01".into(),
            dns_domain: "contoso.local".into(),
            dns_computer: "exch01.contoso.local".into(),
            required_channel_bindings: Some(b"tls-server-end-point:fuzz".to_vec()),
        },
        AcceptorRandomness {
            server_challenge: [0x33; 8],
            timestamp: 0x01d0_0000_0000_0000,
        },
    )
}

/// Server side: a NEGOTIATE message from a client.
pub fn negotiate(data: &[u8]) {
    if let Err(e) = acceptor().challenge_message(data) {
        let _ = e.to_string();
    }
}

/// Client side: a CHALLENGE message from a server, then sealing with the session it
/// gives.
pub fn challenge(data: &[u8]) {
    let mut client = initiator();
    let _ = client.negotiate_message();
    match client.authenticate_message(data) {
        Ok(_) => {
            if let Ok(mut session) = client.into_session() {
                let _ = session.seal(b"<s:Envelope/>");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The CHALLENGE the fixed acceptor sends: the seed of the challenge target.
pub fn challenge_seed() -> Vec<u8> {
    let mut client = initiator();
    acceptor()
        .challenge_message(&client.negotiate_message())
        .unwrap_or_default()
}

/// The AUTHENTICATE the fixed initiator sends to the fixed acceptor: the seed of the
/// authenticate target, accepted as it is.
pub fn authenticate_seed() -> Vec<u8> {
    let mut client = initiator();
    let Ok(challenge) = acceptor().challenge_message(&client.negotiate_message()) else {
        return Vec::new();
    };
    client.authenticate_message(&challenge).unwrap_or_default()
}

/// Server side: an AUTHENTICATE message after a proper NEGOTIATE/CHALLENGE.
pub fn authenticate(data: &[u8]) {
    let mut server = acceptor();
    let mut client = initiator();
    if server
        .challenge_message(&client.negotiate_message())
        .is_err()
    {
        return;
    }
    match server.accept(data) {
        Ok(_) => {
            if let Ok(mut session) = server.into_session() {
                let _ = session.seal(b"<s:Envelope/>");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Both sides: a 16-byte signature followed by a sealed message, unsealed and verified
/// by each role. Nothing made up may verify, and a failure must leave the session
/// refusing cleanly.
pub fn unseal(data: &[u8]) {
    let (signature, sealed) = data.split_at(data.len().min(16));
    for role in [Role::Initiator, Role::Acceptor] {
        let mut session = Session::from_exported_session_key(role, &[0x44; 16]);
        let _ = session.unseal(signature, sealed);
        let _ = session.unseal(signature, sealed);
        let mut session = Session::from_exported_session_key(role, &[0x44; 16]);
        let _ = session.verify(sealed, signature);
    }
}
