//! Hostile input: arbitrary bytes, and valid messages with arbitrary alterations, go into every
//! parser (NEGOTIATE, CHALLENGE, AUTHENTICATE, signatures). Nothing may panic, and an altered
//! AUTHENTICATE message must never be accepted.

use exctl_ntlm::{Acceptor, AcceptorConfig, Initiator, InitiatorConfig, Role, Session};
use proptest::prelude::*;

fn initiator() -> Initiator {
    Initiator::new(InitiatorConfig {
        domain: "EXCTL".into(),
        user: "alice".into(),
        password: "pw".into(),
        workstation: None,
        channel_bindings: Some(b"tls-server-end-point:abc".to_vec()),
        target_spn: None,
    })
}

fn acceptor() -> Acceptor {
    Acceptor::new(AcceptorConfig {
        accounts: vec![("EXCTL".into(), "alice".into(), "pw".into())],
        netbios_domain: "EXCTL".into(),
        netbios_computer: "EX01".into(),
        dns_domain: "exctl.test".into(),
        dns_computer: "ex01.exctl.test".into(),
        required_channel_bindings: Some(b"tls-server-end-point:abc".to_vec()),
    })
}

/// Arbitrary bytes, often behind a valid signature and message type so parsing gets past the
/// first check.
fn message(message_type: u32) -> impl Strategy<Value = Vec<u8>> {
    let body = prop::collection::vec(any::<u8>(), 0..400);
    prop_oneof![
        body.clone(),
        body.prop_map(move |b| {
            let mut m = b"NTLMSSP\0".to_vec();
            m.extend_from_slice(&message_type.to_le_bytes());
            m.extend_from_slice(&b);
            m
        }),
    ]
}

/// A valid exchange, returning the acceptor waiting for `authenticate`.
fn exchange() -> (Acceptor, Vec<u8>, Initiator, Vec<u8>) {
    let mut client = initiator();
    let mut server = acceptor();
    let negotiate = client.negotiate_message();
    let challenge = server.challenge_message(&negotiate).unwrap();
    let mut fresh_client = initiator();
    fresh_client.negotiate_message();
    let authenticate = client.authenticate_message(&challenge).unwrap();
    (server, authenticate, fresh_client, challenge)
}

proptest! {
    #[test]
    fn negotiate_parsing_never_panics(bytes in message(1)) {
        let _ = acceptor().challenge_message(&bytes);
    }

    #[test]
    fn challenge_parsing_never_panics(bytes in message(2)) {
        let mut client = initiator();
        client.negotiate_message();
        let _ = client.authenticate_message(&bytes);
    }

    #[test]
    fn authenticate_parsing_never_panics(bytes in message(3)) {
        let (mut server, ..) = exchange();
        prop_assert!(server.accept(&bytes).is_err());
    }

    #[test]
    fn altered_authenticate_is_never_accepted(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (mut server, original, ..) = exchange();
        let mut altered = original.clone();
        for (index, value) in edits {
            let i = index.index(altered.len());
            altered[i] = value;
        }
        if let Some(cut) = cut {
            altered.truncate(cut.index(altered.len()));
        }
        let result = server.accept(&altered);
        if altered == original {
            prop_assert!(result.is_ok(), "{:?}", result);
        } else {
            prop_assert!(result.is_err(), "altered message accepted");
        }
    }

    #[test]
    fn altered_challenge_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (_, _, mut client, mut challenge) = exchange();
        for (index, value) in edits {
            let i = index.index(challenge.len());
            challenge[i] = value;
        }
        if let Some(cut) = cut {
            challenge.truncate(cut.index(challenge.len()));
        }
        let _ = client.authenticate_message(&challenge);
    }

    #[test]
    fn unseal_and_verify_never_panic(
        signature in prop::collection::vec(any::<u8>(), 0..24),
        sealed in prop::collection::vec(any::<u8>(), 0..300),
        seq_zero in any::<bool>(),
    ) {
        let mut signature = signature;
        if seq_zero && signature.len() == 16 {
            // Pass the version and sequence checks to reach decryption.
            signature[..4].copy_from_slice(&1u32.to_le_bytes());
            signature[12..].copy_from_slice(&0u32.to_le_bytes());
        }
        let mut session = Session::from_exported_session_key(Role::Acceptor, &[9; 16]);
        prop_assert!(session.unseal(&signature, &sealed).is_err());
        let mut session = Session::from_exported_session_key(Role::Initiator, &[9; 16]);
        prop_assert!(session.verify(&sealed, &signature).is_err());
    }
}
