//! Our Initiator against our Acceptor: authentication outcomes, tampering at each step, channel
//! bindings, and sealed traffic both ways (sequence, replay, reordering, bit flips).

use exctl_ntlm::crypto;
use exctl_ntlm::{
    Acceptor, AcceptorConfig, AcceptorRandomness, AuthenticatedUser, Initiator, InitiatorConfig,
    InitiatorRandomness, NtlmError, Session,
};

const PASSWORD: &str = "Correct horse 1!";
const CBT: &[u8] = b"tls-server-end-point:\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20";

fn client(domain: &str, user: &str, password: &str) -> InitiatorConfig {
    InitiatorConfig {
        domain: domain.into(),
        user: user.into(),
        password: password.into(),
        workstation: Some("ADMINPC".into()),
        channel_bindings: None,
        target_spn: Some("HTTP/ex01.exctl.test".into()),
    }
}

fn alice() -> InitiatorConfig {
    client("EXCTL", "alice", PASSWORD)
}

fn server() -> AcceptorConfig {
    AcceptorConfig {
        accounts: vec![
            ("EXCTL".into(), "alice".into(), PASSWORD.into()),
            ("".into(), "localadmin".into(), "Local pw 2".into()),
        ],
        netbios_domain: "EXCTL".into(),
        netbios_computer: "EX01".into(),
        dns_domain: "exctl.test".into(),
        dns_computer: "ex01.exctl.test".into(),
        required_channel_bindings: None,
    }
}

/// The three messages of one exchange, with hooks to alter each in transit.
struct Mitm {
    negotiate: fn(&mut Vec<u8>),
    challenge: fn(&mut Vec<u8>),
    authenticate: fn(&mut Vec<u8>),
}

const HONEST: Mitm = Mitm {
    negotiate: |_| {},
    challenge: |_| {},
    authenticate: |_| {},
};

fn run(
    config: InitiatorConfig,
    server_config: AcceptorConfig,
    mitm: Mitm,
) -> (Result<AuthenticatedUser, NtlmError>, Initiator, Acceptor) {
    let mut initiator = Initiator::new(config);
    let mut acceptor = Acceptor::new(server_config);
    let mut negotiate = initiator.negotiate_message();
    (mitm.negotiate)(&mut negotiate);
    let mut challenge = acceptor
        .challenge_message(&negotiate)
        .expect("our negotiate is acceptable");
    (mitm.challenge)(&mut challenge);
    let mut authenticate = initiator
        .authenticate_message(&challenge)
        .expect("our challenge is acceptable");
    (mitm.authenticate)(&mut authenticate);
    (acceptor.accept(&authenticate), initiator, acceptor)
}

fn sessions(config: InitiatorConfig, server_config: AcceptorConfig) -> (Session, Session) {
    let (result, initiator, acceptor) = run(config, server_config, HONEST);
    result.expect("authentication succeeds");
    (
        initiator.into_session().expect("client session"),
        acceptor.into_session().expect("server session"),
    )
}

fn field(msg: &[u8], at: usize) -> std::ops::Range<usize> {
    let len = u16::from_le_bytes([msg[at], msg[at + 1]]) as usize;
    let off = u32::from_le_bytes(msg[at + 4..at + 8].try_into().unwrap()) as usize;
    off..off + len
}

#[test]
fn authenticates_and_reports_the_configured_account() {
    let (result, initiator, acceptor) = run(client("exctl", "ALICE", PASSWORD), server(), HONEST);
    assert_eq!(
        result.expect("case-insensitive user and domain match"),
        AuthenticatedUser {
            domain: "EXCTL".into(),
            user: "alice".into()
        }
    );
    assert!(initiator.into_session().is_ok());
    assert!(acceptor.into_session().is_ok());
}

#[test]
fn empty_domain_matches_only_accounts_without_domain() {
    let (result, ..) = run(client("", "LocalAdmin", "Local pw 2"), server(), HONEST);
    assert_eq!(
        result.expect("local account").user,
        "localadmin".to_string()
    );
    let (result, ..) = run(client("", "alice", PASSWORD), server(), HONEST);
    assert!(
        matches!(result, Err(NtlmError::BadCredentials { .. })),
        "{result:?}"
    );
    let (result, ..) = run(client("OTHER", "alice", PASSWORD), server(), HONEST);
    assert!(
        matches!(result, Err(NtlmError::BadCredentials { .. })),
        "{result:?}"
    );
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    let (result, _, acceptor) = run(
        client("EXCTL", "alice", "Correct horse 2!"),
        server(),
        HONEST,
    );
    let err = result.expect_err("wrong password");
    assert!(
        matches!(&err, NtlmError::BadCredentials { domain, user } if domain == "EXCTL" && user == "alice")
    );
    assert_eq!(
        err.to_string(),
        "authentication of EXCTL\\alice failed: unknown user or wrong password"
    );
    assert!(matches!(
        acceptor.into_session(),
        Err(NtlmError::OutOfOrder { .. })
    ));

    let (result, ..) = run(client("EXCTL", "mallory", PASSWORD), server(), HONEST);
    assert!(
        matches!(result, Err(NtlmError::BadCredentials { .. })),
        "{result:?}"
    );
}

#[test]
fn tampered_mic_is_refused() {
    let (result, ..) = run(
        alice(),
        server(),
        Mitm {
            authenticate: |m| m[72] ^= 0x01,
            ..HONEST
        },
    );
    assert!(matches!(result, Err(NtlmError::MicMismatch)), "{result:?}");
}

#[test]
fn tampered_workstation_is_caught_by_the_mic() {
    // The workstation name is outside the NTv2 proof; only the MIC protects it.
    let (result, ..) = run(
        alice(),
        server(),
        Mitm {
            authenticate: |m| {
                let r = field(m, 44);
                m[r.start] = b'X';
            },
            ..HONEST
        },
    );
    assert!(matches!(result, Err(NtlmError::MicMismatch)), "{result:?}");
}

#[test]
fn downgraded_negotiate_is_caught_by_the_mic() {
    // A man in the middle strips NEGOTIATE_56 and the Version from the client's offer.
    let (result, ..) = run(
        alice(),
        server(),
        Mitm {
            negotiate: |m| {
                let flags =
                    u32::from_le_bytes(m[12..16].try_into().unwrap()) & !0x8000_0000 & !0x0200_0000;
                m[12..16].copy_from_slice(&flags.to_le_bytes());
            },
            ..HONEST
        },
    );
    assert!(matches!(result, Err(NtlmError::MicMismatch)), "{result:?}");
}

#[test]
fn altered_challenge_is_caught_by_the_mic() {
    // The target name is not part of the NTv2 proof.
    let (result, ..) = run(
        alice(),
        server(),
        Mitm {
            challenge: |m| {
                let r = field(m, 12);
                m[r.start] = b'Z';
            },
            ..HONEST
        },
    );
    assert!(matches!(result, Err(NtlmError::MicMismatch)), "{result:?}");
}

#[test]
fn altered_server_challenge_fails_the_proof() {
    let (result, ..) = run(
        alice(),
        server(),
        Mitm {
            challenge: |m| m[24] ^= 0x80,
            ..HONEST
        },
    );
    assert!(
        matches!(result, Err(NtlmError::BadCredentials { .. })),
        "{result:?}"
    );
}

#[test]
fn tampered_nt_response_fails_the_proof() {
    let (result, ..) = run(
        alice(),
        server(),
        Mitm {
            // Inside the blob: the client's AV pairs.
            authenticate: |m| {
                let r = field(m, 20);
                m[r.end - 10] ^= 0x04;
            },
            ..HONEST
        },
    );
    assert!(
        matches!(result, Err(NtlmError::BadCredentials { .. })),
        "{result:?}"
    );
}

#[test]
fn channel_bindings_required_and_matching() {
    let mut config = alice();
    config.channel_bindings = Some(CBT.to_vec());
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let (result, ..) = run(config, server_config, HONEST);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn channel_bindings_set_after_the_negotiate_leg_are_sent() {
    // Over HTTPS the certificate is known only once the first leg has gone out.
    let mut initiator = Initiator::new(alice());
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let mut acceptor = Acceptor::new(server_config);
    let challenge = acceptor
        .challenge_message(&initiator.negotiate_message())
        .unwrap();
    initiator.set_channel_bindings(Some(CBT.to_vec()));
    let authenticate = initiator.authenticate_message(&challenge).unwrap();
    assert!(acceptor.accept(&authenticate).is_ok());
}

#[test]
fn channel_bindings_required_but_mismatching() {
    let mut config = alice();
    let mut other = CBT.to_vec();
    *other.last_mut().unwrap() ^= 1;
    config.channel_bindings = Some(other);
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let (result, ..) = run(config, server_config, HONEST);
    let err = result.expect_err("bindings differ");
    assert!(
        matches!(err, NtlmError::ChannelBindingMismatch(m) if m.contains("differ")),
        "{err:?}"
    );
}

#[test]
fn channel_bindings_required_but_client_sends_none() {
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let (result, ..) = run(alice(), server_config, HONEST);
    let err = result.expect_err("client has no bindings");
    assert!(
        matches!(err, NtlmError::ChannelBindingMismatch(m) if m.contains("empty")),
        "{err:?}"
    );
}

#[test]
fn channel_bindings_not_required_are_not_checked() {
    let mut config = alice();
    config.channel_bindings = Some(CBT.to_vec());
    let (result, ..) = run(config, server(), HONEST);
    assert!(result.is_ok(), "{result:?}");
}

/// Hand-built AUTHENTICATE messages from the crate's public crypto functions, to reach the
/// acceptor's checks our own Initiator never trips.
mod hand_built {
    use super::*;

    pub struct Options {
        pub announce_mic: bool,
        pub fill_mic: bool,
        pub channel_bindings: Option<[u8; 16]>,
        pub nt_v1: bool,
    }

    pub fn authenticate(negotiate: &[u8], challenge: &[u8], o: Options) -> Vec<u8> {
        let server_challenge: [u8; 8] = challenge[24..32].try_into().unwrap();
        let target_info = &challenge[field(challenge, 40)];
        let mut pairs = target_info[..target_info.len() - 4].to_vec();
        if o.announce_mic {
            pairs.extend_from_slice(&[6, 0, 4, 0, 2, 0, 0, 0]);
        }
        if let Some(cb) = o.channel_bindings {
            pairs.extend_from_slice(&[10, 0, 16, 0]);
            pairs.extend_from_slice(&cb);
        }
        pairs.extend_from_slice(&[0; 4]);

        let key = crypto::nt_owf_v2("alice", "EXCTL", PASSWORD);
        let blob = crypto::ntv2_client_blob(0x01d0_0000_0000_0000, &[7; 8], &pairs);
        let response = crypto::ntv2_response(&key, &server_challenge, &blob);
        let nt: Vec<u8> = if o.nt_v1 {
            vec![0x11; 24]
        } else {
            [&response.nt_proof_str[..], &blob].concat()
        };
        let exported = [0x42u8; 16];
        let encrypted = crypto::encrypt_session_key(
            &crypto::key_exchange_key(&response.session_base_key),
            &exported,
        );
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let payloads: [Vec<u8>; 6] = [
            vec![0; 24],
            nt,
            utf16("EXCTL"),
            utf16("alice"),
            utf16("HAND"),
            encrypted.to_vec(),
        ];
        let mut msg = vec![0u8; 88];
        msg[..8].copy_from_slice(b"NTLMSSP\0");
        msg[8..12].copy_from_slice(&3u32.to_le_bytes());
        for (i, p) in payloads.iter().enumerate() {
            let at = 12 + 8 * i;
            let off = msg.len() as u32;
            msg[at..at + 2].copy_from_slice(&(p.len() as u16).to_le_bytes());
            msg[at + 2..at + 4].copy_from_slice(&(p.len() as u16).to_le_bytes());
            msg[at + 4..at + 8].copy_from_slice(&off.to_le_bytes());
            msg.extend_from_slice(p);
        }
        msg[60..64].copy_from_slice(&0xe208_8235u32.to_le_bytes());
        if o.fill_mic {
            let mic = crypto::mic(&exported, negotiate, challenge, &msg);
            msg[72..88].copy_from_slice(&mic);
        }
        msg
    }

    pub fn against(
        server_config: AcceptorConfig,
        o: Options,
    ) -> Result<AuthenticatedUser, NtlmError> {
        let mut initiator = Initiator::new(alice());
        let mut acceptor = Acceptor::new(server_config);
        let negotiate = initiator.negotiate_message();
        let challenge = acceptor.challenge_message(&negotiate).unwrap();
        acceptor.accept(&authenticate(&negotiate, &challenge, o))
    }
}

#[test]
fn hand_built_client_is_accepted() {
    // Guards the hand-built helper itself: with MIC and bindings it must pass.
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let result = hand_built::against(
        server_config,
        hand_built::Options {
            announce_mic: true,
            fill_mic: true,
            channel_bindings: Some(crypto::channel_bindings_hash(CBT)),
            nt_v1: false,
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn authenticate_without_mic_is_refused() {
    let result = hand_built::against(
        server(),
        hand_built::Options {
            announce_mic: false,
            fill_mic: false,
            channel_bindings: None,
            nt_v1: false,
        },
    );
    assert!(matches!(result, Err(NtlmError::MissingMic)), "{result:?}");
}

#[test]
fn announced_but_zero_mic_is_refused() {
    let result = hand_built::against(
        server(),
        hand_built::Options {
            announce_mic: true,
            fill_mic: false,
            channel_bindings: None,
            nt_v1: false,
        },
    );
    assert!(matches!(result, Err(NtlmError::MicMismatch)), "{result:?}");
}

#[test]
fn absent_channel_bindings_are_refused_when_required() {
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let result = hand_built::against(
        server_config,
        hand_built::Options {
            announce_mic: true,
            fill_mic: true,
            channel_bindings: None,
            nt_v1: false,
        },
    );
    let err = result.expect_err("no bindings");
    assert!(
        matches!(err, NtlmError::ChannelBindingMismatch(m) if m.contains("no channel bindings")),
        "{err:?}"
    );
}

#[test]
fn ntlmv1_response_is_refused() {
    let result = hand_built::against(
        server(),
        hand_built::Options {
            announce_mic: true,
            fill_mic: false,
            channel_bindings: None,
            nt_v1: true,
        },
    );
    let err = result.expect_err("NTLMv1");
    assert!(
        matches!(&err, NtlmError::Unsupported(m) if m.contains("NTLMv1")),
        "{err:?}"
    );
}

#[test]
fn client_without_extended_session_security_is_refused() {
    let mut initiator = Initiator::new(alice());
    let mut negotiate = initiator.negotiate_message();
    let flags = u32::from_le_bytes(negotiate[12..16].try_into().unwrap()) & !0x0008_0000;
    negotiate[12..16].copy_from_slice(&flags.to_le_bytes());
    let err = Acceptor::new(server())
        .challenge_message(&negotiate)
        .expect_err("no ESS");
    assert!(
        matches!(&err, NtlmError::Unsupported(m) if m.contains("NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY")),
        "{err:?}"
    );
}

#[test]
fn server_without_sealing_or_key_exchange_is_refused() {
    for bit in [0x0000_0020u32, 0x4000_0000, 0x2000_0000, 0x0008_0000] {
        let mut initiator = Initiator::new(alice());
        let negotiate = initiator.negotiate_message();
        let mut challenge = Acceptor::new(server())
            .challenge_message(&negotiate)
            .unwrap();
        let flags = u32::from_le_bytes(challenge[20..24].try_into().unwrap()) & !bit;
        challenge[20..24].copy_from_slice(&flags.to_le_bytes());
        let err = initiator
            .authenticate_message(&challenge)
            .expect_err("weak server");
        assert!(
            matches!(err, NtlmError::Unsupported(_)),
            "{bit:#x}: {err:?}"
        );
        assert!(matches!(
            initiator.into_session(),
            Err(NtlmError::OutOfOrder { .. })
        ));
    }
}

#[test]
fn calls_out_of_order_are_errors() {
    let mut initiator = Initiator::new(alice());
    assert!(matches!(
        initiator.authenticate_message(b"NTLMSSP\0"),
        Err(NtlmError::OutOfOrder { .. })
    ));
    let mut acceptor = Acceptor::new(server());
    assert!(matches!(
        acceptor.accept(b"NTLMSSP\0"),
        Err(NtlmError::OutOfOrder { .. })
    ));
    let negotiate = initiator.negotiate_message();
    let challenge = acceptor.challenge_message(&negotiate).unwrap();
    assert!(matches!(
        acceptor.challenge_message(&negotiate),
        Err(NtlmError::OutOfOrder { .. })
    ));
    let authenticate = initiator.authenticate_message(&challenge).unwrap();
    assert!(matches!(
        initiator.authenticate_message(&challenge),
        Err(NtlmError::OutOfOrder { .. })
    ));
    acceptor.accept(&authenticate).unwrap();
    assert!(matches!(
        acceptor.accept(&authenticate),
        Err(NtlmError::OutOfOrder { .. })
    ));
    assert!(matches!(
        Initiator::new(alice()).into_session(),
        Err(NtlmError::OutOfOrder { .. })
    ));
    // The wrong message type at a step.
    let mut fresh = Acceptor::new(server());
    assert!(matches!(
        fresh.challenge_message(&challenge),
        Err(NtlmError::WrongMessageType { found: 2, .. })
    ));
}

#[test]
fn fixed_randomness_is_reproducible_and_accepted() {
    let exchange = || {
        let mut initiator = Initiator::with_fixed_randomness(
            alice(),
            InitiatorRandomness {
                client_challenge: [1; 8],
                exported_session_key: [2; 16],
                timestamp: 3,
            },
        );
        let mut acceptor = Acceptor::with_fixed_randomness(
            server(),
            AcceptorRandomness {
                server_challenge: [4; 8],
                timestamp: 0x01da_0000_0000_0000,
            },
        );
        let negotiate = initiator.negotiate_message();
        let challenge = acceptor.challenge_message(&negotiate).unwrap();
        let authenticate = initiator.authenticate_message(&challenge).unwrap();
        acceptor.accept(&authenticate).unwrap();
        (negotiate, challenge, authenticate)
    };
    let first = exchange();
    assert_eq!(first, exchange());
    assert_eq!(&first.1[24..32], &[4; 8]);
    // With a server timestamp the LM response is all zero (MS-NLMP 3.1.5.1.2).
    assert_eq!(&first.2[field(&first.2, 12)], &[0; 24]);
    // And unfixed randomness differs from run to run.
    let mut a = Initiator::new(alice());
    let mut b = Initiator::new(alice());
    let mut server_a = Acceptor::new(server());
    let challenge = server_a.challenge_message(&a.negotiate_message()).unwrap();
    b.negotiate_message();
    assert_ne!(
        a.authenticate_message(&challenge).unwrap(),
        b.authenticate_message(&challenge).unwrap()
    );
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let config = alice();
    let mut server_config = server();
    server_config.required_channel_bindings = Some(CBT.to_vec());
    let debug = format!(
        "{config:?} {:?} {server_config:?} {:?}",
        Initiator::new(config.clone()),
        Acceptor::new(server_config.clone())
    );
    assert!(!debug.contains(PASSWORD), "{debug}");
    assert!(!debug.contains("Local pw 2"), "{debug}");
    assert!(debug.contains("alice"), "{debug}");

    let (result, ..) = run(client("EXCTL", "alice", "Wrong pw"), server(), HONEST);
    let err = result.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("Wrong pw"));

    let (client_session, _) = sessions(alice(), server());
    let debug = format!("{client_session:?}");
    assert!(debug.contains("next_outbound_seq: 0"), "{debug}");
}

#[test]
fn refused_error_names_the_account() {
    let err = Initiator::new(alice()).refused();
    assert!(err.to_string().contains("EXCTL\\alice"), "{err}");
    assert!(!err.to_string().contains(PASSWORD));
}

fn message(i: usize) -> Vec<u8> {
    (0..(i * 37) % 1500).map(|b| (b * 7 + i) as u8).collect()
}

#[test]
fn many_messages_both_ways() {
    let (mut client, mut server) = sessions(alice(), server());
    for i in 0..60 {
        let request = message(i);
        let (signature, sealed) = client.seal(&request);
        assert_eq!(sealed.len(), request.len());
        if request.len() > 8 {
            assert_ne!(sealed, request, "message {i} was not encrypted");
        }
        assert_eq!(server.unseal(&signature, &sealed).unwrap(), request);

        let reply = message(i + 1000);
        let (signature, sealed) = server.seal(&reply);
        assert_eq!(client.unseal(&signature, &sealed).unwrap(), reply);

        // Signing shares the sequence and RC4 stream with sealing.
        if i % 7 == 0 {
            let signature = client.sign(b"signed only");
            server.verify(b"signed only", &signature).unwrap();
            let signature = server.sign(b"signed back");
            client.verify(b"signed back", &signature).unwrap();
        }
    }
}

#[test]
fn a_session_cannot_unseal_its_own_messages() {
    // The two directions use different keys.
    let (mut client, _) = sessions(alice(), server());
    let (signature, sealed) = client.seal(b"hello");
    assert!(matches!(
        client.unseal(&signature, &sealed),
        Err(NtlmError::SignatureMismatch)
    ));
}

#[test]
fn sessions_of_different_authentications_do_not_interoperate() {
    let (mut client, _) = sessions(alice(), server());
    let (_, mut other_server) = sessions(alice(), server());
    let (signature, sealed) = client.seal(b"hello");
    assert!(matches!(
        other_server.unseal(&signature, &sealed),
        Err(NtlmError::SignatureMismatch)
    ));
}

#[test]
fn replayed_message_fails_and_leaves_the_session_usable() {
    let (mut client, mut server) = sessions(alice(), server());
    let first = client.seal(b"first");
    let second = client.seal(b"second");
    server.unseal(&first.0, &first.1).unwrap();
    server.unseal(&second.0, &second.1).unwrap();
    let err = server.unseal(&second.0, &second.1).unwrap_err();
    assert!(
        matches!(
            err,
            NtlmError::SequenceMismatch {
                expected: 2,
                found: 1
            }
        ),
        "{err:?}"
    );
    let third = client.seal(b"third");
    assert_eq!(server.unseal(&third.0, &third.1).unwrap(), b"third");
}

#[test]
fn reordered_messages_fail_until_in_order() {
    let (mut client, mut server) = sessions(alice(), server());
    let first = client.seal(b"first");
    let second = client.seal(b"second");
    assert!(matches!(
        server.unseal(&second.0, &second.1),
        Err(NtlmError::SequenceMismatch {
            expected: 0,
            found: 1
        })
    ));
    assert_eq!(server.unseal(&first.0, &first.1).unwrap(), b"first");
    assert_eq!(server.unseal(&second.0, &second.1).unwrap(), b"second");
}

#[test]
fn flipped_bit_in_the_body_fails_and_breaks_the_direction() {
    let (mut client, mut server) = sessions(alice(), server());
    let (signature, mut sealed) = client.seal(b"<s:Envelope>important</s:Envelope>");
    sealed[5] ^= 0x20;
    assert!(matches!(
        server.unseal(&signature, &sealed),
        Err(NtlmError::SignatureMismatch)
    ));
    let (signature, sealed) = client.seal(b"next");
    assert!(matches!(
        server.unseal(&signature, &sealed),
        Err(NtlmError::SessionBroken)
    ));
    // The other direction is unaffected.
    let (signature, sealed) = server.seal(b"reply");
    assert_eq!(client.unseal(&signature, &sealed).unwrap(), b"reply");
}

#[test]
fn flipped_bits_in_the_signature_fail() {
    for (byte, expect_sequence_error) in [(4usize, false), (11, false), (12, true), (15, true)] {
        let (mut client, mut server) = sessions(alice(), server());
        let (mut signature, sealed) = client.seal(b"payload");
        signature[byte] ^= 0x01;
        let err = server.unseal(&signature, &sealed).unwrap_err();
        if expect_sequence_error {
            assert!(
                matches!(err, NtlmError::SequenceMismatch { .. }),
                "{byte}: {err:?}"
            );
        } else {
            assert!(
                matches!(err, NtlmError::SignatureMismatch),
                "{byte}: {err:?}"
            );
        }
    }
    let (mut client, mut server) = sessions(alice(), server());
    let (mut signature, sealed) = client.seal(b"payload");
    signature[0] = 2;
    assert!(matches!(
        server.unseal(&signature, &sealed),
        Err(NtlmError::Malformed { .. })
    ));
    assert!(matches!(
        server.unseal(&signature[..15], &sealed),
        Err(NtlmError::Malformed { .. })
    ));
}

#[test]
fn verify_catches_altered_messages() {
    let (mut client, mut server) = sessions(alice(), server());
    let signature = client.sign(b"signed");
    assert!(matches!(
        server.verify(b"signeD", &signature),
        Err(NtlmError::SignatureMismatch)
    ));
}

#[test]
fn contexts_can_move_between_threads() {
    // The WinRM client and the simulator hold these across await points on a multi-threaded
    // runtime.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Initiator>();
    assert_send_sync::<Acceptor>();
    assert_send_sync::<Session>();
    assert_send_sync::<NtlmError>();
}
