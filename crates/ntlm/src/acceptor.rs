//! The server side of NTLMv2 (MS-NLMP 3.2.5): NEGOTIATE in, CHALLENGE out, AUTHENTICATE in,
//! checked against a fixed list of accounts, then a [`Session`]. This is what the simulated
//! Windows server authenticates with, so it checks what Windows checks: the NTv2 proof, the
//! MIC, and (with Extended Protection) the channel bindings.

use std::fmt;

use crate::crypto;
use crate::error::{MessageKind, NtlmError};
use crate::flags::{self, *};
use crate::message::{self, av};
use crate::session::{Role, Session};

/// Flags we echo when the client offers them. LM_KEY, OEM, DATAGRAM, anonymous and identify
/// are never granted.
const GRANTABLE: u32 = flags::REQUIRED | NEGOTIATE_ALWAYS_SIGN | NEGOTIATE_56;

/// The accounts and identity of an acceptor.
#[derive(Clone)]
pub struct AcceptorConfig {
    /// Accepted accounts: (domain, user, password).
    ///
    /// An account matches an AUTHENTICATE message when its user equals the message's user and
    /// its domain equals the message's domain, both compared case-insensitively. An empty
    /// domain in the message matches only accounts configured with an empty domain: we do not
    /// guess which domain the client meant. The password is then checked with the domain
    /// exactly as the client sent it, because that is what the client hashed (NTOWFv2 does not
    /// upper-case the domain). Several matching entries are each tried.
    pub accounts: Vec<(String, String, String)>,
    /// NetBIOS domain name, for MsvAvNbDomainName and the target name.
    pub netbios_domain: String,
    /// NetBIOS computer name, for MsvAvNbComputerName.
    pub netbios_computer: String,
    /// DNS domain name, for MsvAvDnsDomainName and MsvAvDnsTreeName (omitted when empty).
    pub dns_domain: String,
    /// DNS computer name, for MsvAvDnsComputerName (omitted when empty).
    pub dns_computer: String,
    /// When Some, the acceptor requires the client's MsvAvChannelBindings to equal the MD5 of
    /// these bindings (Extended Protection "Strict"); when None, it does not check. The value
    /// is the application data, as in [`crate::InitiatorConfig::channel_bindings`].
    pub required_channel_bindings: Option<Vec<u8>>,
}

impl fmt::Debug for AcceptorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accounts: Vec<String> = self
            .accounts
            .iter()
            .map(|(domain, user, _)| format!("{domain}\\{user} (password redacted)"))
            .collect();
        f.debug_struct("AcceptorConfig")
            .field("accounts", &accounts)
            .field("netbios_domain", &self.netbios_domain)
            .field("netbios_computer", &self.netbios_computer)
            .field("dns_domain", &self.dns_domain)
            .field("dns_computer", &self.dns_computer)
            .field(
                "required_channel_bindings",
                &self.required_channel_bindings.as_ref().map(|b| b.len()),
            )
            .finish()
    }
}

/// Randomness an acceptor normally draws itself, injected for deterministic tests.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct AcceptorRandomness {
    /// The 8-byte server challenge.
    pub server_challenge: [u8; 8],
    /// The FILETIME sent as MsvAvTimestamp.
    pub timestamp: u64,
}

/// Who authenticated: the matching configured account, spelled as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The account's domain as configured.
    pub domain: String,
    /// The account's user name as configured.
    pub user: String,
}

enum State {
    Initial,
    ChallengeSent {
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
        server_challenge: [u8; 8],
    },
    Accepted {
        exported_session_key: [u8; 16],
    },
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::ChallengeSent { .. } => "challenge sent",
            State::Accepted { .. } => "accepted",
            State::Failed => "failed",
        }
    }
}

/// The server side of one NTLM authentication.
pub struct Acceptor {
    config: AcceptorConfig,
    randomness: Option<AcceptorRandomness>,
    state: State,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", &self.config)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_uppercase() == b.to_uppercase()
}

impl Acceptor {
    /// An acceptor for the accounts in `config`.
    pub fn new(config: AcceptorConfig) -> Self {
        Acceptor {
            config,
            randomness: None,
            state: State::Initial,
        }
    }

    /// An acceptor with a fixed server challenge and timestamp, for reproducible tests. Never
    /// in production: a fixed challenge makes responses replayable.
    #[doc(hidden)]
    pub fn with_fixed_randomness(config: AcceptorConfig, randomness: AcceptorRandomness) -> Self {
        Acceptor {
            config,
            randomness: Some(randomness),
            state: State::Initial,
        }
    }

    /// The CHALLENGE message (type 2) answering the client's NEGOTIATE. Refuses clients that do
    /// not offer NTLMv2 session security with 128-bit keys, key exchange, signing, sealing and
    /// Unicode. A malformed NEGOTIATE leaves the acceptor as it was.
    pub fn challenge_message(&mut self, negotiate: &[u8]) -> Result<Vec<u8>, NtlmError> {
        if !matches!(self.state, State::Initial) {
            return Err(NtlmError::OutOfOrder {
                operation: "Acceptor::challenge_message",
                state: "a CHALLENGE was already sent; use a new Acceptor per authentication",
            });
        }
        let parsed = message::parse_negotiate(negotiate)?;
        let missing = flags::missing_required(parsed.flags);
        if !missing.is_empty() {
            return Err(NtlmError::Unsupported(format!(
                "the client did not offer {missing}; it is limited to NTLMv1-era security \
                 (check its LmCompatibilityLevel). This server requires NTLMv2 with extended \
                 session security, 128-bit keys, key exchange, signing and sealing"
            )));
        }

        let (server_challenge, timestamp) = match self.randomness {
            Some(r) => (r.server_challenge, r.timestamp),
            None => (rand::random(), crypto::filetime_now()),
        };
        let (target_name, target_type) = if self.config.netbios_domain.is_empty() {
            (&self.config.netbios_computer, TARGET_TYPE_SERVER)
        } else {
            (&self.config.netbios_domain, TARGET_TYPE_DOMAIN)
        };
        let nb_domain = crypto::utf16le(&self.config.netbios_domain);
        let nb_computer = crypto::utf16le(&self.config.netbios_computer);
        let dns_domain = crypto::utf16le(&self.config.dns_domain);
        let dns_computer = crypto::utf16le(&self.config.dns_computer);
        let time = timestamp.to_le_bytes();
        // Windows' order. The timestamp obliges the client to send a MIC (MS-NLMP 3.1.5.1.2).
        let mut pairs: Vec<(u16, &[u8])> = vec![
            (av::NB_DOMAIN_NAME, &nb_domain),
            (av::NB_COMPUTER_NAME, &nb_computer),
        ];
        if !dns_domain.is_empty() {
            pairs.push((av::DNS_DOMAIN_NAME, &dns_domain));
        }
        if !dns_computer.is_empty() {
            pairs.push((av::DNS_COMPUTER_NAME, &dns_computer));
        }
        if !dns_domain.is_empty() {
            pairs.push((av::DNS_TREE_NAME, &dns_domain));
        }
        pairs.push((av::TIMESTAMP, &time));
        let target_info = message::encode_av_pairs(&pairs)?;

        let flags = parsed.flags & GRANTABLE
            | REQUEST_TARGET
            | NEGOTIATE_NTLM
            | NEGOTIATE_TARGET_INFO
            | NEGOTIATE_VERSION
            | target_type;
        let challenge =
            message::build_challenge(flags, &server_challenge, target_name, &target_info)?;
        self.state = State::ChallengeSent {
            negotiate: negotiate.to_vec(),
            challenge: challenge.clone(),
            server_challenge,
        };
        Ok(challenge)
    }

    /// Checks the client's AUTHENTICATE message (type 3): NTLMv2 proof against the configured
    /// accounts, the MIC over all three messages, and channel bindings if required. After a
    /// failure the acceptor is spent, like a failed Windows security context.
    pub fn accept(&mut self, authenticate: &[u8]) -> Result<AuthenticatedUser, NtlmError> {
        let (negotiate, challenge, server_challenge) =
            match std::mem::replace(&mut self.state, State::Failed) {
                State::ChallengeSent {
                    negotiate,
                    challenge,
                    server_challenge,
                } => (negotiate, challenge, server_challenge),
                other => {
                    let state = match other {
                        State::Initial => "challenge_message has not been called",
                        State::Accepted { .. } => "the client was already accepted",
                        _ => "an earlier step failed; use a new Acceptor",
                    };
                    self.state = other;
                    return Err(NtlmError::OutOfOrder {
                        operation: "Acceptor::accept",
                        state,
                    });
                }
            };
        let (user, exported_session_key) =
            self.verify(&negotiate, &challenge, &server_challenge, authenticate)?;
        self.state = State::Accepted {
            exported_session_key,
        };
        Ok(user)
    }

    fn verify(
        &self,
        negotiate: &[u8],
        challenge: &[u8],
        server_challenge: &[u8; 8],
        authenticate: &[u8],
    ) -> Result<(AuthenticatedUser, [u8; 16]), NtlmError> {
        let kind = MessageKind::Authenticate;
        let auth = message::parse_authenticate(authenticate)?;
        let missing = flags::missing_required(auth.flags);
        if !missing.is_empty() {
            return Err(NtlmError::Unsupported(format!(
                "the client's AUTHENTICATE message does not agree to {missing}"
            )));
        }
        // An NTLMv2 response is NTProofStr (16) plus a blob of at least 28 bytes; NTLMv1
        // responses are exactly 24 bytes, and LM-only or anonymous clients send none.
        match auth.nt_response.len() {
            0 => {
                return Err(NtlmError::Unsupported(
                    "the client sent no NT response (LM-only or anonymous logon)".into(),
                ));
            }
            24 => {
                return Err(NtlmError::Unsupported(
                    "the client sent an NTLMv1 response; this server accepts only NTLMv2 \
                     (raise the client's LmCompatibilityLevel to 3 or more)"
                        .into(),
                ));
            }
            n if n < 16 + 28 => {
                return Err(NtlmError::malformed(
                    kind,
                    format!("the NTLMv2 response is {n} bytes, shorter than the 44-byte minimum"),
                ));
            }
            _ => {}
        }
        let (proof, blob) = auth.nt_response.split_at(16);
        if blob.first() != Some(&1) {
            return Err(NtlmError::malformed(
                kind,
                "the NTLMv2 response has an unknown structure version",
            ));
        }
        let client_pairs = message::parse_av_pairs(kind, blob.get(28..).unwrap_or_default())?;

        let mut matched = None;
        for (domain, user, password) in &self.config.accounts {
            if !same_name(user, &auth.user) || !same_name(domain, &auth.domain) {
                continue;
            }
            let key = crypto::nt_owf_v2(&auth.user, &auth.domain, password);
            let response = crypto::ntv2_response(&key, server_challenge, blob);
            if crypto::constant_time_eq(&response.nt_proof_str, proof) {
                matched = Some((domain, user, response));
                break;
            }
        }
        let Some((domain, user, response)) = matched else {
            return Err(NtlmError::BadCredentials {
                domain: auth.domain,
                user: auth.user,
            });
        };

        let encrypted_key: [u8; 16] = auth.encrypted_session_key.try_into().map_err(|_| {
            NtlmError::malformed(
                kind,
                format!(
                    "the encrypted random session key is {} bytes, not 16",
                    auth.encrypted_session_key.len()
                ),
            )
        })?;
        let key_exchange_key = crypto::key_exchange_key(&response.session_base_key);
        let exported_session_key = crypto::encrypt_session_key(&key_exchange_key, &encrypted_key);

        // Our CHALLENGE always has a timestamp, so a genuine NTLMv2 client always announces and
        // sends a MIC. A client that does not may have had its flags stripped in transit.
        let av_flags = message::find_av(&client_pairs, av::FLAGS)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        if av_flags & av::FLAG_MIC == 0 {
            return Err(NtlmError::MissingMic);
        }
        let mic_offset = auth.mic_offset.ok_or_else(|| {
            NtlmError::malformed(
                kind,
                "MsvAvFlags announces a MIC but the message has no room for one",
            )
        })?;
        let mut zeroed = authenticate.to_vec();
        let mic_field = zeroed
            .get_mut(mic_offset..mic_offset + 16)
            .ok_or_else(|| NtlmError::malformed(kind, "truncated MIC"))?;
        let received_mic = <[u8; 16]>::try_from(&*mic_field)
            .map_err(|_| NtlmError::malformed(kind, "truncated MIC"))?;
        mic_field.fill(0);
        let expected_mic = crypto::mic(&exported_session_key, negotiate, challenge, &zeroed);
        if !crypto::constant_time_eq(&expected_mic, &received_mic) {
            return Err(NtlmError::MicMismatch);
        }

        if let Some(required) = &self.config.required_channel_bindings {
            match message::find_av(&client_pairs, av::CHANNEL_BINDINGS) {
                None => {
                    return Err(NtlmError::ChannelBindingMismatch(
                        "the client sent no channel bindings, but this server requires them \
                         (Extended Protection)",
                    ));
                }
                Some(v) if v.iter().all(|b| *b == 0) => {
                    return Err(NtlmError::ChannelBindingMismatch(
                        "the client sent empty channel bindings, but this server requires them \
                         (Extended Protection); the client does not bind to the TLS channel",
                    ));
                }
                Some(v) => {
                    if !crypto::constant_time_eq(v, &crypto::channel_bindings_hash(required)) {
                        return Err(NtlmError::ChannelBindingMismatch(
                            "the client's channel bindings differ from this server's: the \
                             client saw another TLS certificate (is something intercepting \
                             the connection?)",
                        ));
                    }
                }
            }
        }

        Ok((
            AuthenticatedUser {
                domain: domain.clone(),
                user: user.clone(),
            },
            exported_session_key,
        ))
    }

    /// The established session, after [`Acceptor::accept`] succeeded.
    pub fn into_session(self) -> Result<Session, NtlmError> {
        match self.state {
            State::Accepted {
                exported_session_key,
            } => Ok(Session::from_exported_session_key(
                Role::Acceptor,
                &exported_session_key,
            )),
            other => Err(NtlmError::OutOfOrder {
                operation: "Acceptor::into_session",
                state: match other {
                    State::Failed => "authentication failed",
                    _ => "the client has not been accepted yet",
                },
            }),
        }
    }
}
