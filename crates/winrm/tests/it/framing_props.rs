//! The `multipart/encrypted` framing and the sealing under it, with generated input:
//! encoding round-trips, mutated or truncated bodies never panic, and no alteration of a
//! sealed response is ever read as anything but the original message.

use exctl_ntlm::{Role, Session};
use exctl_winrm::framing::{self, MAX_SEALED_LEN};
use proptest::prelude::*;

const KEY: [u8; 16] = [7; 16];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_round_trips(
        signature in proptest::collection::vec(any::<u8>(), 0..64),
        sealed in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let body = framing::encode(&signature, &sealed);
        let back = framing::decode(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.signature, signature);
        prop_assert_eq!(back.sealed, sealed);
    }

    #[test]
    fn mutated_bodies_never_panic_and_respect_the_announced_length(
        sealed in proptest::collection::vec(any::<u8>(), 0..512),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        insert in proptest::option::of((any::<prop::sample::Index>(), "[0-9;=A-Za-z:\r\n\t -]{0,24}")),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut body = framing::encode(&[1; 16], &sealed);
        for (i, v) in edits {
            let i = i.index(body.len());
            body[i] = v;
        }
        if let Some((at, text)) = insert {
            let at = at.index(body.len() + 1);
            body.splice(at..at, text.into_bytes());
        }
        if let Some(c) = cut {
            body.truncate(c.index(body.len() + 1));
        }
        if let Ok(f) = framing::decode(&body) {
            prop_assert!(f.sealed.len() <= MAX_SEALED_LEN);
            prop_assert!(f.signature.len() + f.sealed.len() <= body.len());
        }
        exctl_winrm::fuzzing::parse_framing(&body);
    }

    #[test]
    fn altered_sealed_responses_are_never_believed(
        message in proptest::collection::vec(any::<u8>(), 1..600),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        // The server seals; the client unseals whatever arrives.
        let mut server = Session::from_exported_session_key(Role::Acceptor, &KEY);
        let (signature, sealed) = server.seal(&message);
        let original = framing::encode(&signature, &sealed);
        let mut body = original.clone();
        for (i, v) in edits {
            let i = i.index(body.len());
            body[i] = v;
        }
        let mut client = Session::from_exported_session_key(Role::Initiator, &KEY);
        let unsealed = framing::decode(&body)
            .ok()
            .and_then(|f| client.unseal(&f.signature, &f.sealed).ok());
        if let Some(plain) = unsealed {
            // Only changes outside the signed bytes (header text the reader tolerates)
            // may pass, and then the message is the original one.
            prop_assert_eq!(plain, message);
        }
    }

    #[test]
    fn a_replayed_response_is_refused(
        first in proptest::collection::vec(any::<u8>(), 1..200),
        second in proptest::collection::vec(any::<u8>(), 1..200),
    ) {
        let mut server = Session::from_exported_session_key(Role::Acceptor, &KEY);
        let mut client = Session::from_exported_session_key(Role::Initiator, &KEY);
        let (s1, c1) = server.seal(&first);
        let (s2, c2) = server.seal(&second);
        prop_assert_eq!(client.unseal(&s1, &c1).ok(), Some(first));
        // The first response again, instead of the second: its sequence number is old.
        let replay = client.unseal(&s1, &c1);
        let is_sequence_mismatch = matches!(replay, Err(exctl_ntlm::NtlmError::SequenceMismatch { expected: 1, found: 0 }));
        prop_assert!(is_sequence_mismatch, "{:?}", replay);
        // The session is unchanged by the refusal: the real second response still reads.
        prop_assert_eq!(client.unseal(&s2, &c2).ok(), Some(second));
    }
}
