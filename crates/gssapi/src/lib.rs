//! Kerberos through the system's GSSAPI: a safe wrapper over the few calls exctl needs,
//! with the library (MIT krb5's `libgssapi_krb5`) loaded at run time on first use.
//!
//! This crate owns every `unsafe` block of exctl's Kerberos support (each with its
//! `SAFETY:` reasoning) and nothing else: names, credentials (the operator's ticket cache,
//! an in-memory ticket from a password, or an acceptor keytab), security contexts in
//! either role with channel bindings, WinRM's header/data split of wrapped messages, and
//! readable errors classified into the causes an operator can act on ([`Kind`]). It knows
//! nothing of HTTP or WinRM framing.
//!
//! [`SecurityContext`] is the seam for another provider: Windows' SSPI would implement
//! the same trait; only GSSAPI is implemented.

// Calling C (MIT krb5's GSSAPI through dlopen) is this crate's one job: the workspace
// denies unsafe code, this crate allows it, each block with its SAFETY note.
#![allow(unsafe_code)]

mod ffi;

use std::ffi::{CString, c_int, c_void};
use std::path::Path;
use std::sync::Arc;

use ffi::{
    OM_uint32, gss_OID, gss_OID_desc, gss_OID_set_desc, gss_buffer_desc,
    gss_channel_bindings_struct, gss_cred_id_t, gss_ctx_id_t, gss_iov_buffer_desc, gss_name_t,
};

// Object identifiers (DER contents, without tag and length).
/// Kerberos V5 mechanism, 1.2.840.113554.1.2.2 (RFC 1964).
const OID_KRB5: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
/// SPNEGO, 1.3.6.1.5.5.2 (RFC 4178).
const OID_SPNEGO: &[u8] = b"\x2b\x06\x01\x05\x05\x02";
/// GSS_C_NT_HOSTBASED_SERVICE, 1.2.840.113554.1.2.1.4 (RFC 2744): `service@host`.
const OID_NT_HOSTBASED: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04";
/// GSS_KRB5_NT_PRINCIPAL_NAME, 1.2.840.113554.1.2.2.1 (RFC 1964): `user@REALM`.
const OID_NT_KRB5_PRINCIPAL: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";

fn oid(bytes: &'static [u8]) -> Box<gss_OID_desc> {
    Box::new(gss_OID_desc {
        length: bytes.len() as OM_uint32,
        elements: bytes.as_ptr() as *mut c_void,
    })
}

/// Which GSSAPI mechanism a context speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    /// Raw Kerberos tokens (the HTTP `Kerberos` scheme).
    Kerberos,
    /// SPNEGO carrying Kerberos only (the HTTP `Negotiate` scheme).
    Spnego,
}

impl Mech {
    fn oid(self) -> Box<gss_OID_desc> {
        match self {
            Mech::Kerberos => oid(OID_KRB5),
            Mech::Spnego => oid(OID_SPNEGO),
        }
    }
}

/// The cause of a failure, as far as an operator can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No ticket for the principal in the cache (and no password given).
    NoCredentials,
    /// The ticket (or the context) has expired.
    Expired,
    /// No KDC of the realm answered, or the realm's KDC is not known.
    KdcUnreachable,
    /// The clocks of client, KDC or server differ by more than the allowed skew.
    ClockSkew,
    /// The service principal is not in the Kerberos database.
    UnknownServer,
    /// The client principal is not in the Kerberos database.
    UnknownClient,
    /// The password is wrong (pre-authentication or decryption failed).
    WrongPassword,
    /// The peer's token was not acceptable (wrong key, tampered, not Kerberos).
    BadToken,
    /// Anything else.
    Other,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GssError {
    /// The GSSAPI library could not be loaded.
    #[error(
        "Kerberos needs MIT krb5's GSSAPI library (libgssapi_krb5.so.2): install libgssapi-krb5-2 / krb5-user (Debian, Ubuntu) or krb5-libs / krb5-workstation (RHEL, Fedora); loading it failed: {0}"
    )]
    Unavailable(String),
    /// A GSSAPI call failed.
    #[error("{call} failed: {message}")]
    Call {
        /// The GSSAPI function.
        call: &'static str,
        /// The cause, classified.
        kind: Kind,
        /// The major status.
        major: u32,
        /// The (mechanism) minor status.
        minor: u32,
        /// The library's own words for both.
        message: String,
    },
    /// An argument cannot be passed to the library (an interior NUL, a bad state).
    #[error("{0}")]
    Invalid(String),
}

impl GssError {
    /// The classified cause.
    pub fn kind(&self) -> Kind {
        match self {
            GssError::Call { kind, .. } => *kind,
            _ => Kind::Other,
        }
    }
}

/// Whether the GSSAPI library can be loaded on this machine.
pub fn available() -> Result<(), GssError> {
    api().map(|_| ())
}

fn api() -> Result<&'static ffi::Api, GssError> {
    ffi::api().map_err(GssError::Unavailable)
}

// MIT krb5 error codes (com_err table krb5, base -1765328384; table k5g, base 39756032),
// as they come back in minor statuses.
const KRB5_BASE: i64 = -1_765_328_384;
fn krb5_code(offset: i64) -> u32 {
    (KRB5_BASE + offset) as i32 as u32
}
const K5G_BASE: u32 = 39_756_032;

fn classify(major: OM_uint32, minor: OM_uint32, message: &str) -> Kind {
    let by_code = [
        (krb5_code(6), Kind::UnknownClient), // KDC_ERR_C_PRINCIPAL_UNKNOWN
        (krb5_code(7), Kind::UnknownServer), // KDC_ERR_S_PRINCIPAL_UNKNOWN
        (krb5_code(24), Kind::WrongPassword), // KDC_ERR_PREAUTH_FAILED
        (krb5_code(31), Kind::WrongPassword), // KRB_AP_ERR_BAD_INTEGRITY
        (krb5_code(32), Kind::Expired),      // KRB_AP_ERR_TKT_EXPIRED
        (krb5_code(37), Kind::ClockSkew),    // KRB_AP_ERR_SKEW
        (krb5_code(154), Kind::KdcUnreachable), // KRB5_REALM_UNKNOWN
        (krb5_code(156), Kind::KdcUnreachable), // KRB5_KDC_UNREACH
        (krb5_code(141), Kind::NoCredentials), // KRB5_CC_NOTFOUND
        (krb5_code(195), Kind::NoCredentials), // KRB5_FCC_NOFILE
        (K5G_BASE, Kind::NoCredentials),     // KG_CCACHE_NOMATCH
        (K5G_BASE + 2, Kind::NoCredentials), // KG_TGT_MISSING
        (K5G_BASE + 12, Kind::NoCredentials), // KG_EMPTY_CCACHE
    ];
    if let Some((_, kind)) = by_code.iter().find(|(c, _)| *c == minor) {
        return *kind;
    }
    // The mechanism glue may renumber minor codes; the library's words are stable.
    let m = message.to_ascii_lowercase();
    let by_text = [
        ("clock skew", Kind::ClockSkew),
        ("cannot contact any kdc", Kind::KdcUnreachable),
        ("cannot find kdc", Kind::KdcUnreachable),
        ("not found in kerberos database", Kind::UnknownServer),
        ("preauthentication failed", Kind::WrongPassword),
        ("password incorrect", Kind::WrongPassword),
        ("integrity check failed", Kind::WrongPassword),
        ("expired", Kind::Expired),
        ("no kerberos credentials", Kind::NoCredentials),
        ("no credentials cache", Kind::NoCredentials),
        ("credential cache is empty", Kind::NoCredentials),
        ("can't find client principal", Kind::NoCredentials),
    ];
    if let Some((_, kind)) = by_text.iter().find(|(t, _)| m.contains(t)) {
        return *kind;
    }
    match ffi::routine_error(major) {
        ffi::GSS_S_NO_CRED => Kind::NoCredentials,
        ffi::GSS_S_CREDENTIALS_EXPIRED | ffi::GSS_S_CONTEXT_EXPIRED => Kind::Expired,
        ffi::GSS_S_DEFECTIVE_TOKEN | ffi::GSS_S_BAD_BINDINGS => Kind::BadToken,
        _ => Kind::Other,
    }
}

/// The library's messages for a status (`kind` is GSS_C_GSS_CODE or GSS_C_MECH_CODE).
fn status_text(api: &ffi::Api, status: OM_uint32, kind: c_int) -> Vec<String> {
    let mut out = Vec::new();
    let mut context: OM_uint32 = 0;
    let mut mech = oid(OID_KRB5);
    let mech_ptr: gss_OID = if kind == ffi::GSS_C_MECH_CODE {
        &mut *mech
    } else {
        std::ptr::null_mut()
    };
    // A bound against a library that never clears the message context.
    for _ in 0..8 {
        let mut minor = 0;
        let mut buf = gss_buffer_desc::EMPTY;
        // SAFETY: every pointer is to a live local; the output buffer is released below.
        let major = unsafe {
            (api.display_status)(&mut minor, status, kind, mech_ptr, &mut context, &mut buf)
        };
        if major != ffi::GSS_S_COMPLETE {
            break;
        }
        // SAFETY: on success the buffer holds `length` bytes owned by the library.
        let text = unsafe { buffer_bytes(&buf) };
        // SAFETY: the buffer was allocated by the library and is released once.
        unsafe { (api.release_buffer)(&mut minor, &mut buf) };
        let text = String::from_utf8_lossy(&text).trim().to_string();
        if !text.is_empty() {
            out.push(text);
        }
        if context == 0 {
            break;
        }
    }
    out
}

/// Copies a library-owned buffer.
///
/// # Safety
/// `buf` must be empty or point to `length` readable bytes.
unsafe fn buffer_bytes(buf: &gss_buffer_desc) -> Vec<u8> {
    let (length, value) = (buf.length, buf.value);
    if length == 0 || value.is_null() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(value as *const u8, length) }.to_vec()
}

fn failure(api: &ffi::Api, call: &'static str, major: OM_uint32, minor: OM_uint32) -> GssError {
    let mut parts = Vec::new();
    if minor != 0 {
        parts.extend(status_text(api, minor, ffi::GSS_C_MECH_CODE));
    }
    if parts.is_empty() {
        parts.extend(status_text(api, major, ffi::GSS_C_GSS_CODE));
    }
    let message = if parts.is_empty() {
        format!("major {major:#x}, minor {minor}")
    } else {
        parts.join(": ")
    };
    GssError::Call {
        call,
        kind: classify(major, minor, &message),
        major,
        minor,
        message,
    }
}

fn is_error(major: OM_uint32) -> bool {
    // The calling and routine error fields; the supplementary bits are informational.
    major & 0xffff_0000 != 0
}

fn c_string(what: &str, s: &str) -> Result<CString, GssError> {
    CString::new(s).map_err(|_| GssError::Invalid(format!("the {what} contains a NUL byte")))
}

/// A GSSAPI name.
struct Name {
    raw: gss_name_t,
}

impl Name {
    fn import(text: &str, kind: &'static [u8]) -> Result<Name, GssError> {
        let api = api()?;
        let mut ty = oid(kind);
        let mut buf = gss_buffer_desc::borrowed(text.as_bytes());
        let mut raw: gss_name_t = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: the buffer borrows `text` for the call; the library copies the name;
        // `raw` receives a name released in Drop.
        let major = unsafe { (api.import_name)(&mut minor, &mut buf, &mut *ty, &mut raw) };
        if is_error(major) {
            return Err(failure(api, "gss_import_name", major, minor));
        }
        Ok(Name { raw })
    }

    fn display(api: &ffi::Api, raw: gss_name_t) -> Option<String> {
        let mut buf = gss_buffer_desc::EMPTY;
        let mut minor = 0;
        // SAFETY: `raw` is a valid name; the output buffer is released below.
        let major = unsafe { (api.display_name)(&mut minor, raw, &mut buf, std::ptr::null_mut()) };
        if is_error(major) {
            return None;
        }
        // SAFETY: on success the buffer holds the name's bytes.
        let text = unsafe { buffer_bytes(&buf) };
        // SAFETY: released once.
        unsafe { (api.release_buffer)(&mut minor, &mut buf) };
        String::from_utf8(text).ok()
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            let mut minor = 0;
            // SAFETY: the name came from gss_import_name/accept and is released once.
            unsafe { (api.release_name)(&mut minor, &mut self.raw) };
        }
    }
}

/// A user principal as GSSAPI wants it: `user@REALM` stays, `REALM\user` (the Windows
/// spelling) becomes `user@REALM` with the realm in upper case.
pub fn principal_name(user: &str) -> String {
    match user.split_once('\\') {
        Some((domain, name)) => format!("{name}@{}", domain.to_ascii_uppercase()),
        None => user.to_string(),
    }
}

/// Credentials: an initiator's ticket (from the cache or a password) or an acceptor's
/// keys (from a keytab).
pub struct Credential {
    raw: gss_cred_id_t,
}

// SAFETY: MIT krb5 credentials carry their own lock and may be used from any thread;
// exctl never releases one while a context uses it (contexts hold an Arc).
unsafe impl Send for Credential {}
// SAFETY: as above; GSSAPI calls taking a credential only read it under its lock.
unsafe impl Sync for Credential {}

/// A one-element OID set on the stack of the caller.
struct OidSet {
    _oid: Box<gss_OID_desc>,
    set: gss_OID_set_desc,
}

impl OidSet {
    fn of(bytes: &'static [u8]) -> Box<OidSet> {
        let mut o = oid(bytes);
        let elements: gss_OID = &mut *o;
        Box::new(OidSet {
            _oid: o,
            set: gss_OID_set_desc { count: 1, elements },
        })
    }
}

impl Credential {
    /// An initiator credential for `mech`: with a password, a new ticket for `user`
    /// obtained from the KDC and kept in memory (MIT keeps it in a `MEMORY:` cache, no
    /// file is written); without one, the ticket of `user` (or the default principal)
    /// from the operator's cache (`KRB5CCNAME`, or the default cache).
    pub fn initiator(
        user: Option<&str>,
        password: Option<&str>,
        mech: Mech,
    ) -> Result<Credential, GssError> {
        let api = api()?;
        let name = match user {
            Some(u) if !u.is_empty() => {
                Some(Name::import(&principal_name(u), OID_NT_KRB5_PRINCIPAL)?)
            }
            _ => None,
        };
        let name_raw = name.as_ref().map_or(std::ptr::null_mut(), |n| n.raw);
        let mut mechs = OidSet::of(match mech {
            Mech::Kerberos => OID_KRB5,
            Mech::Spnego => OID_SPNEGO,
        });
        let mut raw: gss_cred_id_t = std::ptr::null_mut();
        let mut minor = 0;
        let major = match password {
            Some(password) => {
                if name.is_none() {
                    return Err(GssError::Invalid(
                        "a password needs a user principal to get a ticket for".into(),
                    ));
                }
                let mut pw = gss_buffer_desc::borrowed(password.as_bytes());
                // SAFETY: name, password buffer and mech set are live for the call; the
                // library copies what it keeps; `raw` is released in Drop.
                unsafe {
                    (api.acquire_cred_with_password)(
                        &mut minor,
                        name_raw,
                        &mut pw,
                        ffi::GSS_C_INDEFINITE,
                        &mut mechs.set,
                        ffi::GSS_C_INITIATE,
                        &mut raw,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                }
            }
            // SAFETY: as above, without a password.
            None => unsafe {
                (api.acquire_cred)(
                    &mut minor,
                    name_raw,
                    ffi::GSS_C_INDEFINITE,
                    &mut mechs.set,
                    ffi::GSS_C_INITIATE,
                    &mut raw,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            },
        };
        let call = if password.is_some() {
            "gss_acquire_cred_with_password"
        } else {
            "gss_acquire_cred"
        };
        if is_error(major) {
            return Err(failure(api, call, major, minor));
        }
        let cred = Credential { raw };
        if mech == Mech::Spnego {
            cred.negotiate_kerberos_only(api)?;
        }
        Ok(cred)
    }

    /// An acceptor credential for Kerberos and SPNEGO from the keys in `keytab`.
    pub fn acceptor(keytab: &Path) -> Result<Credential, GssError> {
        let api = api()?;
        let path = keytab
            .to_str()
            .ok_or_else(|| GssError::Invalid("the keytab path is not UTF-8".into()))?;
        let key = c_string("keytab key", "keytab")?;
        let value = c_string("keytab path", &format!("FILE:{path}"))?;
        let mut elements = [ffi::gss_key_value_element_desc {
            key: key.as_ptr(),
            value: value.as_ptr(),
        }];
        let store = ffi::gss_key_value_set_desc {
            count: 1,
            elements: elements.as_mut_ptr(),
        };
        // Both mechanisms: the HTTP `Kerberos` scheme sends raw Kerberos tokens,
        // `Negotiate` SPNEGO ones.
        let mut list = [OID_KRB5, OID_SPNEGO].map(|bytes| gss_OID_desc {
            length: bytes.len() as OM_uint32,
            elements: bytes.as_ptr() as *mut c_void,
        });
        let mut set = gss_OID_set_desc {
            count: 2,
            elements: list.as_mut_ptr(),
        };
        let mut raw: gss_cred_id_t = std::ptr::null_mut();
        let mut minor = 0;
        // SAFETY: the store, its C strings and the OID set live until the call returns;
        // `raw` is released in Drop.
        let major = unsafe {
            (api.acquire_cred_from)(
                &mut minor,
                std::ptr::null_mut(),
                ffi::GSS_C_INDEFINITE,
                &mut set,
                ffi::GSS_C_ACCEPT,
                &store,
                &mut raw,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err(failure(api, "gss_acquire_cred_from", major, minor));
        }
        let cred = Credential { raw };
        cred.negotiate_kerberos_only(api)?;
        Ok(cred)
    }

    /// Restricts what SPNEGO offers and accepts to Kerberos: `auth: kerberos` must never
    /// turn into NTLM (or another mechanism a GSSAPI plug-in adds) behind the operator's
    /// back.
    fn negotiate_kerberos_only(&self, api: &ffi::Api) -> Result<(), GssError> {
        let mut krb5 = OidSet::of(OID_KRB5);
        let mut minor = 0;
        // SAFETY: the credential is valid and the set lives for the call (SPNEGO copies it).
        let major = unsafe { (api.set_neg_mechs)(&mut minor, self.raw, &mut krb5.set) };
        if is_error(major) {
            return Err(failure(api, "gss_set_neg_mechs", major, minor));
        }
        Ok(())
    }
}

impl Drop for Credential {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            let mut minor = 0;
            // SAFETY: the credential came from an acquire call and is released once.
            unsafe { (api.release_cred)(&mut minor, &mut self.raw) };
        }
    }
}

/// One step of a handshake: the token to send (possibly empty) and whether the context is
/// established.
#[derive(Debug)]
pub struct Step {
    /// The token for the peer; empty when there is nothing to send.
    pub token: Vec<u8>,
    /// The context is established (and, for an initiator asking for mutual
    /// authentication, the acceptor has proven itself).
    pub complete: bool,
}

/// A security context of either role: the seam another provider (SSPI) would implement.
pub trait SecurityContext: Send {
    /// Feeds the peer's token (none for an initiator's first step) and returns the next.
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, GssError>;
    /// Whether the handshake is complete.
    fn is_complete(&self) -> bool;
    /// Encrypts `data` as WinRM does: the wrap token's header apart from the encrypted
    /// data, which is as long as `data` plus any padding. MS-WSMV 2.2.9.1.1.2.2
    /// (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-wsmv/3fc54d8b-b087-486e-9f50-8253e9e30b43):
    /// "For Kerberos, [the encryption header] MUST be the per-message token as specified
    /// in [RFC4121]", its length in the 4-byte field, "the remaining bytes" the data.
    fn wrap_winrm(&mut self, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), GssError>;
    /// Decrypts and verifies a message framed as WinRM does.
    fn unwrap_winrm(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, GssError>;
    /// The authenticated peer (`user@REALM`), for an acceptor once complete.
    fn peer(&self) -> Option<&str>;
}

/// Settings of an initiator.
pub struct InitiatorConfig {
    /// The service principal: `HTTP/host` or `HTTP/host@REALM` (Windows' spelling),
    /// or `HTTP@host` (GSSAPI's host-based form).
    pub target: String,
    /// Kerberos or SPNEGO.
    pub mech: Mech,
    /// The credential; it must have been acquired for the same `mech`.
    pub credential: Arc<Credential>,
    /// The application data of the channel bindings (TLS `tls-server-end-point:`).
    pub channel_bindings: Option<Vec<u8>>,
}

/// Parses a service principal into a GSSAPI name: `svc/host@REALM` as a Kerberos
/// principal, `svc/host` (no realm: the realm follows from the host, as krb5.conf's
/// `domain_realm` says) and `svc@host` as a host-based service.
fn import_target(target: &str) -> Result<Name, GssError> {
    match target.split_once('/') {
        Some((svc, rest)) if rest.contains('@') => {
            Name::import(&format!("{svc}/{rest}"), OID_NT_KRB5_PRINCIPAL)
        }
        Some((svc, host)) => Name::import(&format!("{svc}@{host}"), OID_NT_HOSTBASED),
        None => Name::import(target, OID_NT_HOSTBASED),
    }
}

/// A GSSAPI context handle with what its calls need to stay valid.
struct Context {
    raw: gss_ctx_id_t,
    complete: bool,
    /// The channel bindings' application data, kept for every handshake step.
    bindings: Option<Vec<u8>>,
}

// SAFETY: a GSSAPI context is used by one thread at a time (the owner holds it by
// `&mut`); MIT contexts have no affinity to the thread that created them.
unsafe impl Send for Context {}

impl Context {
    fn bindings_struct(&self) -> Option<gss_channel_bindings_struct> {
        self.bindings
            .as_ref()
            .map(|data| gss_channel_bindings_struct {
                initiator_addrtype: ffi::GSS_C_AF_UNSPEC,
                initiator_address: gss_buffer_desc::EMPTY,
                acceptor_addrtype: ffi::GSS_C_AF_UNSPEC,
                acceptor_address: gss_buffer_desc::EMPTY,
                application_data: gss_buffer_desc::borrowed(data),
            })
    }

    fn wrap_winrm(&mut self, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), GssError> {
        let api = api()?;
        if !self.complete {
            return Err(GssError::Invalid(
                "the security context is not established".into(),
            ));
        }
        // The data is encrypted in place, in a copy we own.
        let mut body = data.to_vec();
        let mut iov = [
            gss_iov_buffer_desc {
                type_: ffi::GSS_IOV_BUFFER_TYPE_HEADER | ffi::GSS_IOV_BUFFER_FLAG_ALLOCATE,
                buffer: gss_buffer_desc::EMPTY,
            },
            gss_iov_buffer_desc {
                type_: ffi::GSS_IOV_BUFFER_TYPE_DATA,
                buffer: gss_buffer_desc {
                    length: body.len(),
                    value: body.as_mut_ptr() as *mut c_void,
                },
            },
            gss_iov_buffer_desc {
                type_: ffi::GSS_IOV_BUFFER_TYPE_PADDING | ffi::GSS_IOV_BUFFER_FLAG_ALLOCATE,
                buffer: gss_buffer_desc::EMPTY,
            },
        ];
        let mut minor = 0;
        let mut conf: c_int = 0;
        // SAFETY: the context is established; the data buffer points into `body`, which
        // outlives the call; header and padding are allocated by the library and
        // released below. No trailer buffer: the trailer goes into the header, which is
        // the layout WinRM sends (the header apart, then the data).
        let major =
            unsafe { (api.wrap_iov)(&mut minor, self.raw, 1, 0, &mut conf, iov.as_mut_ptr(), 3) };
        if is_error(major) {
            // SAFETY: releases whatever the library allocated (nothing on most failures).
            unsafe { (api.release_iov_buffer)(&mut minor, iov.as_mut_ptr(), 3) };
            return Err(failure(api, "gss_wrap_iov", major, minor));
        }
        // SAFETY: on success header and padding hold `length` library-owned bytes.
        let (header, padding) =
            unsafe { (buffer_bytes(&iov[0].buffer), buffer_bytes(&iov[2].buffer)) };
        let mut m2 = 0;
        // SAFETY: releases the library's allocations once; `body` is ours and untouched.
        unsafe { (api.release_iov_buffer)(&mut m2, iov.as_mut_ptr(), 3) };
        if conf == 0 {
            return Err(GssError::Invalid(
                "the security context cannot encrypt (confidentiality was not negotiated)".into(),
            ));
        }
        body.extend_from_slice(&padding);
        Ok((header, body))
    }

    fn unwrap_winrm(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, GssError> {
        let api = api()?;
        if !self.complete {
            return Err(GssError::Invalid(
                "the security context is not established".into(),
            ));
        }
        // Header and data together are one wrap token whose trailer was rotated into the
        // header (RFC 4121 RRC); MIT's gss_unwrap undoes the rotation.
        let mut token = Vec::with_capacity(header.len() + data.len());
        token.extend_from_slice(header);
        token.extend_from_slice(data);
        let mut input = gss_buffer_desc::borrowed(&token);
        let mut output = gss_buffer_desc::EMPTY;
        let mut minor = 0;
        let mut conf: c_int = 0;
        // SAFETY: the input borrows `token` for the call; the output is released below.
        let major = unsafe {
            (api.unwrap)(
                &mut minor,
                self.raw,
                &mut input,
                &mut output,
                &mut conf,
                std::ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err(failure(api, "gss_unwrap", major, minor));
        }
        // SAFETY: on success the output holds the plaintext.
        let plain = unsafe { buffer_bytes(&output) };
        // SAFETY: released once.
        unsafe { (api.release_buffer)(&mut minor, &mut output) };
        if conf == 0 {
            return Err(GssError::Invalid(
                "the peer sent a message that was signed but not encrypted".into(),
            ));
        }
        Ok(plain)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.raw.is_null() {
            return;
        }
        if let Ok(api) = api() {
            let mut minor = 0;
            // SAFETY: the context came from init/accept and is deleted once.
            unsafe { (api.delete_sec_context)(&mut minor, &mut self.raw, std::ptr::null_mut()) };
        }
    }
}

/// The client side of a context.
pub struct Initiator {
    ctx: Context,
    target: Name,
    mech: Box<gss_OID_desc>,
    credential: Arc<Credential>,
    /// Flags asked for: mutual authentication, confidentiality, integrity, and the
    /// replay and sequence detection Windows' own client asks for.
    flags: OM_uint32,
}

// SAFETY: the name and OID are only read by GSSAPI calls made through `&mut self`.
unsafe impl Send for Initiator {}

impl Initiator {
    /// Prepares a context for `config.target`; nothing is sent until [`Initiator::step`].
    pub fn new(config: InitiatorConfig) -> Result<Initiator, GssError> {
        api()?;
        Ok(Initiator {
            ctx: Context {
                raw: std::ptr::null_mut(),
                complete: false,
                bindings: config.channel_bindings,
            },
            target: import_target(&config.target)?,
            mech: config.mech.oid(),
            credential: config.credential,
            flags: ffi::GSS_C_MUTUAL_FLAG
                | ffi::GSS_C_REPLAY_FLAG
                | ffi::GSS_C_SEQUENCE_FLAG
                | ffi::GSS_C_CONF_FLAG
                | ffi::GSS_C_INTEG_FLAG,
        })
    }
}

impl SecurityContext for Initiator {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, GssError> {
        let api = api()?;
        if self.ctx.complete {
            return Err(GssError::Invalid(
                "the security context is already established".into(),
            ));
        }
        let mut cb = self.ctx.bindings_struct();
        let cb_ptr = cb.as_mut().map_or(std::ptr::null_mut(), |c| {
            c as *mut gss_channel_bindings_struct
        });
        let mut in_buf = input.map(gss_buffer_desc::borrowed);
        let in_ptr = in_buf
            .as_mut()
            .map_or(std::ptr::null_mut(), |b| b as *mut gss_buffer_desc);
        let mut out = gss_buffer_desc::EMPTY;
        let mut ret_flags: OM_uint32 = 0;
        let mut minor = 0;
        // SAFETY: credential, name, mech OID and bindings live in `self` (or this frame)
        // for the call; the input borrows the caller's token; the context handle is ours
        // and updated in place; the output token is released below.
        let major = unsafe {
            (api.init_sec_context)(
                &mut minor,
                self.credential.raw,
                &mut self.ctx.raw,
                self.target.raw,
                &mut *self.mech,
                self.flags,
                ffi::GSS_C_INDEFINITE,
                cb_ptr,
                in_ptr,
                std::ptr::null_mut(),
                &mut out,
                &mut ret_flags,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: the output buffer is empty or library-owned bytes.
        let token = unsafe { buffer_bytes(&out) };
        let mut m2 = 0;
        // SAFETY: released once (a no-op for an empty buffer).
        unsafe { (api.release_buffer)(&mut m2, &mut out) };
        if is_error(major) {
            return Err(failure(api, "gss_init_sec_context", major, minor));
        }
        let complete = (major & ffi::GSS_S_CONTINUE_NEEDED) == 0;
        if complete {
            // Mutual authentication and sealing are requirements, not wishes.
            if ret_flags & ffi::GSS_C_MUTUAL_FLAG == 0 {
                return Err(GssError::Invalid(
                    "the server did not authenticate itself (no mutual authentication)".into(),
                ));
            }
            if ret_flags & ffi::GSS_C_CONF_FLAG == 0 {
                return Err(GssError::Invalid(
                    "the security context offers no encryption".into(),
                ));
            }
            self.ctx.complete = true;
        }
        Ok(Step { token, complete })
    }

    fn is_complete(&self) -> bool {
        self.ctx.complete
    }

    fn wrap_winrm(&mut self, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), GssError> {
        self.ctx.wrap_winrm(data)
    }

    fn unwrap_winrm(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, GssError> {
        self.ctx.unwrap_winrm(header, data)
    }

    fn peer(&self) -> Option<&str> {
        None
    }
}

/// The server side of a context.
pub struct Acceptor {
    ctx: Context,
    credential: Arc<Credential>,
    peer: Option<String>,
    /// The token the library made when a step failed (a KRB-ERROR, such as clock skew),
    /// for the client to read the cause from.
    error_token: Vec<u8>,
}

impl Acceptor {
    /// A context accepting with `credential`; `channel_bindings`, when given, must match
    /// the client's.
    pub fn new(credential: Arc<Credential>, channel_bindings: Option<Vec<u8>>) -> Acceptor {
        Acceptor {
            ctx: Context {
                raw: std::ptr::null_mut(),
                complete: false,
                bindings: channel_bindings,
            },
            credential,
            peer: None,
            error_token: Vec::new(),
        }
    }

    /// The error token of the last failed step, empty when the library made none.
    pub fn error_token(&self) -> &[u8] {
        &self.error_token
    }
}

impl SecurityContext for Acceptor {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, GssError> {
        let api = api()?;
        let Some(input) = input else {
            return Err(GssError::Invalid(
                "an acceptor needs the client's token".into(),
            ));
        };
        if self.ctx.complete {
            return Err(GssError::Invalid(
                "the security context is already established".into(),
            ));
        }
        let mut cb = self.ctx.bindings_struct();
        let cb_ptr = cb.as_mut().map_or(std::ptr::null_mut(), |c| {
            c as *mut gss_channel_bindings_struct
        });
        let mut in_buf = gss_buffer_desc::borrowed(input);
        let mut out = gss_buffer_desc::EMPTY;
        let mut src: gss_name_t = std::ptr::null_mut();
        let mut ret_flags: OM_uint32 = 0;
        let mut minor = 0;
        // SAFETY: credential and bindings live for the call, the input borrows the
        // client's token, the context handle is ours; output token and source name are
        // released below.
        let major = unsafe {
            (api.accept_sec_context)(
                &mut minor,
                &mut self.ctx.raw,
                self.credential.raw,
                &mut in_buf,
                cb_ptr,
                &mut src,
                std::ptr::null_mut(),
                &mut out,
                &mut ret_flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        // SAFETY: the output buffer is empty or library-owned bytes.
        let token = unsafe { buffer_bytes(&out) };
        let mut m2 = 0;
        // SAFETY: released once.
        unsafe { (api.release_buffer)(&mut m2, &mut out) };
        let src = Name { raw: src };
        if is_error(major) {
            // MIT answers some failures (clock skew among them) with a KRB-ERROR token;
            // Windows sends it back in the 401, and the client reads the cause from it.
            self.error_token = token;
            return Err(failure(api, "gss_accept_sec_context", major, minor));
        }
        let complete = (major & ffi::GSS_S_CONTINUE_NEEDED) == 0;
        if complete {
            if !src.raw.is_null() {
                self.peer = Name::display(api, src.raw);
            }
            self.ctx.complete = true;
        }
        Ok(Step { token, complete })
    }

    fn is_complete(&self) -> bool {
        self.ctx.complete
    }

    fn wrap_winrm(&mut self, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), GssError> {
        self.ctx.wrap_winrm(data)
    }

    fn unwrap_winrm(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, GssError> {
        self.ctx.unwrap_winrm(header, data)
    }

    fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_spelling_of_a_principal_becomes_kerberos_spelling() {
        assert_eq!(principal_name("LAB.TEST\\ops"), "ops@LAB.TEST");
        assert_eq!(principal_name("lab.test\\ops"), "ops@LAB.TEST");
        assert_eq!(principal_name("ops@LAB.TEST"), "ops@LAB.TEST");
    }

    #[test]
    fn causes_are_classified_by_code_and_by_words() {
        assert_eq!(
            classify(ffi::GSS_S_FAILURE, krb5_code(37), ""),
            Kind::ClockSkew
        );
        assert_eq!(
            classify(ffi::GSS_S_FAILURE, krb5_code(7), ""),
            Kind::UnknownServer
        );
        assert_eq!(
            classify(ffi::GSS_S_FAILURE, krb5_code(156), ""),
            Kind::KdcUnreachable
        );
        assert_eq!(
            classify(ffi::GSS_S_FAILURE, krb5_code(24), ""),
            Kind::WrongPassword
        );
        assert_eq!(
            classify(ffi::GSS_S_FAILURE, 1, "Clock skew too great"),
            Kind::ClockSkew
        );
        assert_eq!(classify(ffi::GSS_S_NO_CRED, 1, ""), Kind::NoCredentials);
        assert_eq!(
            classify(ffi::GSS_S_CREDENTIALS_EXPIRED, 1, ""),
            Kind::Expired
        );
        assert_eq!(classify(ffi::GSS_S_FAILURE, 1, "whatever"), Kind::Other);
    }
}
