//! The client side of NTLMv2 (MS-NLMP 3.1.5): NEGOTIATE out, CHALLENGE in, AUTHENTICATE out
//! with a MIC and an explicit key exchange, then a [`Session`].

use std::fmt;

use exctl_secret::Secret;

use crate::crypto;
use crate::error::NtlmError;
use crate::flags::{self, *};
use crate::message::{self, AuthenticateParts, av};
use crate::session::{Role, Session};

/// The flags our NEGOTIATE message offers: what we require, plus what every Windows client
/// sends (NTLM, ALWAYS_SIGN, REQUEST_TARGET, VERSION, 56).
const NEGOTIATE_FLAGS: u32 = flags::REQUIRED
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_VERSION
    | NEGOTIATE_56;

/// Who we authenticate as, and what we bind the authentication to.
#[derive(Clone)]
pub struct InitiatorConfig {
    /// NetBIOS or DNS domain of the account; may be empty (then the server's own accounts).
    pub domain: String,
    /// The account name, without domain.
    pub user: String,
    /// The password: a [`Secret`], so no formatting shows it and its bytes are overwritten
    /// when the configuration is dropped (a plain `String` would leave a copy in freed
    /// memory).
    pub password: Secret,
    /// Our computer name for the AUTHENTICATE message; None sends none.
    pub workstation: Option<String>,
    /// Application data of the gss_channel_bindings_struct (for WinRM over HTTPS:
    /// `b"tls-server-end-point:"` ++ certificate hash). When Some, the MsvAvChannelBindings AV
    /// pair carries MD5 of the full gss_channel_bindings_struct (initiator/acceptor address
    /// types and lengths zero, application data length as u32 LE, then the data), as Windows
    /// expects. When None, 16 zero bytes.
    pub channel_bindings: Option<Vec<u8>>,
    /// Optional MsvAvTargetName (e.g. "HTTP/host.example"); None omits it.
    pub target_spn: Option<String>,
}

impl fmt::Debug for InitiatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatorConfig")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("workstation", &self.workstation)
            .field(
                "channel_bindings",
                &self.channel_bindings.as_ref().map(|b| b.len()),
            )
            .field("target_spn", &self.target_spn)
            .finish()
    }
}

/// Randomness an initiator normally draws itself, injected for deterministic tests.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct InitiatorRandomness {
    /// The 8-byte client challenge of the NTLMv2 response.
    pub client_challenge: [u8; 8],
    /// The random session key sent (encrypted) in the AUTHENTICATE message.
    pub exported_session_key: [u8; 16],
    /// FILETIME used when the CHALLENGE carries no MsvAvTimestamp.
    pub timestamp: u64,
}

enum State {
    Initial,
    NegotiateSent { negotiate: Vec<u8> },
    Authenticated { exported_session_key: [u8; 16] },
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::NegotiateSent { .. } => "negotiate sent",
            State::Authenticated { .. } => "authenticated",
            State::Failed => "failed",
        }
    }
}

/// The client side of one NTLM authentication.
pub struct Initiator {
    config: InitiatorConfig,
    randomness: Option<InitiatorRandomness>,
    state: State,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("config", &self.config)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// An initiator that will authenticate with `config`.
    pub fn new(config: InitiatorConfig) -> Self {
        Initiator {
            config,
            randomness: None,
            state: State::Initial,
        }
    }

    /// An initiator whose client challenge, session key and (absent a server timestamp) time
    /// are fixed, so that its messages are reproducible. Tests only: reusing a client challenge
    /// or session key defeats NTLM's protection.
    #[doc(hidden)]
    pub fn with_fixed_randomness(config: InitiatorConfig, randomness: InitiatorRandomness) -> Self {
        Initiator {
            config,
            randomness: Some(randomness),
            state: State::Initial,
        }
    }

    /// Sets the channel bindings (the application data of `gss_channel_bindings_struct`)
    /// before the AUTHENTICATE message is built. Over HTTPS the server certificate, and so
    /// the binding, is known only after the NEGOTIATE leg has gone out on the connection.
    pub fn set_channel_bindings(&mut self, channel_bindings: Option<Vec<u8>>) {
        self.config.channel_bindings = channel_bindings;
    }

    /// `DOMAIN\user`, or `user` when the domain is empty, as the account appears in messages.
    pub fn account(&self) -> String {
        if self.config.domain.is_empty() {
            self.config.user.clone()
        } else {
            format!("{}\\{}", self.config.domain, self.config.user)
        }
    }

    /// The error a transport returns when the server refuses our AUTHENTICATE message.
    pub fn refused(&self) -> NtlmError {
        NtlmError::ServerRefused {
            account: self.account(),
        }
    }

    /// The NEGOTIATE message (type 1). Calling it again starts the authentication over.
    pub fn negotiate_message(&mut self) -> Vec<u8> {
        let negotiate = message::build_negotiate(NEGOTIATE_FLAGS);
        self.state = State::NegotiateSent {
            negotiate: negotiate.clone(),
        };
        negotiate
    }

    /// The AUTHENTICATE message (type 3) answering the server's CHALLENGE: NTLMv2 response,
    /// encrypted random session key and MIC. Fails if the challenge is malformed or the server
    /// does not agree to NTLMv2 session security with 128-bit keys, key exchange, signing and
    /// sealing. After a failure the initiator is spent; start a new one.
    pub fn authenticate_message(&mut self, challenge: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let negotiate = match std::mem::replace(&mut self.state, State::Failed) {
            State::NegotiateSent { negotiate } => negotiate,
            other => {
                let state = match other {
                    State::Initial => "negotiate_message has not been called",
                    State::Authenticated { .. } => "the AUTHENTICATE message was already built",
                    _ => "an earlier step failed; start a new Initiator",
                };
                self.state = other;
                return Err(NtlmError::OutOfOrder {
                    operation: "Initiator::authenticate_message",
                    state,
                });
            }
        };
        let (authenticate, exported_session_key) = self.respond(&negotiate, challenge)?;
        self.state = State::Authenticated {
            exported_session_key,
        };
        Ok(authenticate)
    }

    fn respond(
        &self,
        negotiate: &[u8],
        challenge_bytes: &[u8],
    ) -> Result<(Vec<u8>, [u8; 16]), NtlmError> {
        let challenge = message::parse_challenge(challenge_bytes)?;
        let missing = flags::missing_required(challenge.flags);
        if !missing.is_empty() {
            return Err(NtlmError::Unsupported(format!(
                "the server did not agree to {missing}. It offers only NTLMv1-era security \
                 (check the server's LmCompatibilityLevel and NTLM restrictions); exctl requires \
                 NTLMv2 with extended session security, 128-bit keys, key exchange, signing and \
                 sealing"
            )));
        }

        // MS-NLMP 3.1.5.1.2: use the server's time when it sends one, and then a MIC and an
        // empty LM response are mandatory.
        let server_time = match message::find_av(&challenge.target_info, av::TIMESTAMP) {
            Some(value) => Some(u64::from_le_bytes(value.try_into().map_err(|_| {
                NtlmError::malformed(
                    crate::MessageKind::Challenge,
                    format!("MsvAvTimestamp is {} bytes, not 8", value.len()),
                )
            })?)),
            None => None,
        };
        let (client_challenge, exported_session_key, own_time) = match self.randomness {
            Some(r) => (r.client_challenge, r.exported_session_key, r.timestamp),
            None => (rand::random(), rand::random(), crypto::filetime_now()),
        };
        let timestamp = server_time.unwrap_or(own_time);

        let av_pairs = self.target_info_for_response(&challenge.target_info)?;
        let response_key = crypto::nt_owf_v2(
            &self.config.user,
            &self.config.domain,
            self.config.password.expose(),
        );
        let blob = crypto::ntv2_client_blob(timestamp, &client_challenge, &av_pairs);
        let response = crypto::ntv2_response(&response_key, &challenge.server_challenge, &blob);
        let mut nt_response = Vec::with_capacity(16 + blob.len());
        nt_response.extend_from_slice(&response.nt_proof_str);
        nt_response.extend_from_slice(&blob);
        let lm_response = match server_time {
            Some(_) => [0u8; 24],
            None => crypto::lmv2_response(
                &response_key,
                &challenge.server_challenge,
                &client_challenge,
            ),
        };
        let key_exchange_key = crypto::key_exchange_key(&response.session_base_key);
        let encrypted_session_key =
            crypto::encrypt_session_key(&key_exchange_key, &exported_session_key);

        // Echo what the server chose of what we offered; we always send a Version field.
        let agreed = challenge.flags
            & (NEGOTIATE_FLAGS | NEGOTIATE_TARGET_INFO | TARGET_TYPE_DOMAIN | TARGET_TYPE_SERVER)
            | NEGOTIATE_VERSION;
        let mut authenticate = message::build_authenticate(&AuthenticateParts {
            flags: agreed,
            lm_response: &lm_response,
            nt_response: &nt_response,
            domain: &self.config.domain,
            user: &self.config.user,
            workstation: self.config.workstation.as_deref().unwrap_or(""),
            encrypted_session_key: &encrypted_session_key,
        })?;
        let mic = crypto::mic(
            &exported_session_key,
            negotiate,
            challenge_bytes,
            &authenticate,
        );
        authenticate[message::MIC_OFFSET..message::MIC_OFFSET + 16].copy_from_slice(&mic);
        Ok((authenticate, exported_session_key))
    }

    /// The server's AV pairs with ours added: MsvAvFlags announcing the MIC, the channel
    /// binding hash and the target SPN. Any such pairs from the server are replaced, since
    /// they describe the client.
    fn target_info_for_response(
        &self,
        server_pairs: &[message::AvPair<'_>],
    ) -> Result<Vec<u8>, NtlmError> {
        let server_flags = message::find_av(server_pairs, av::FLAGS)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        let av_flags = (server_flags | av::FLAG_MIC).to_le_bytes();
        let bindings = match &self.config.channel_bindings {
            Some(data) => {
                if data.len() > message::MAX_MESSAGE_LEN {
                    return Err(NtlmError::FieldTooLong("channel binding data"));
                }
                crypto::channel_bindings_hash(data)
            }
            None => [0u8; 16],
        };
        let spn = self.config.target_spn.as_deref().map(crypto::utf16le);

        let mut pairs: Vec<(u16, &[u8])> = server_pairs
            .iter()
            .filter(|p| !matches!(p.id, av::FLAGS | av::CHANNEL_BINDINGS | av::TARGET_NAME))
            .map(|p| (p.id, p.value))
            .collect();
        pairs.push((av::FLAGS, &av_flags));
        pairs.push((av::CHANNEL_BINDINGS, &bindings));
        if let Some(spn) = &spn {
            pairs.push((av::TARGET_NAME, spn));
        }
        message::encode_av_pairs(&pairs)
    }

    /// The established session, after [`Initiator::authenticate_message`] succeeded. Whether
    /// the server accepted us shows only in the transport's answer (for WinRM: 200, not 401).
    pub fn into_session(self) -> Result<Session, NtlmError> {
        match self.state {
            State::Authenticated {
                exported_session_key,
            } => Ok(Session::from_exported_session_key(
                Role::Initiator,
                &exported_session_key,
            )),
            other => Err(NtlmError::OutOfOrder {
                operation: "Initiator::into_session",
                state: match other {
                    State::Failed => "authentication failed",
                    _ => "the AUTHENTICATE message has not been built yet",
                },
            }),
        }
    }
}
