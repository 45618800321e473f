//! The raw GSSAPI ABI of MIT krb5 (RFC 2744 C bindings plus the MIT extensions exctl
//! uses), and the one place that loads `libgssapi_krb5` with `dlopen`.
//!
//! Loading at run time instead of linking keeps the default build free of Kerberos
//! headers and libraries: a machine without krb5 builds and runs exctl, and only the
//! first use of Kerberos needs the library (as .NET and PowerShell on Linux do).

#![allow(non_camel_case_types)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

pub type OM_uint32 = u32;
pub type gss_name_t = *mut c_void;
pub type gss_cred_id_t = *mut c_void;
pub type gss_ctx_id_t = *mut c_void;

// MIT's gssapi.h packs its structures to 2 bytes on macOS (`#pragma pack(push,2)`).
#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
#[derive(Clone, Copy)]
pub struct gss_buffer_desc {
    pub length: usize,
    pub value: *mut c_void,
}

impl gss_buffer_desc {
    pub const EMPTY: gss_buffer_desc = gss_buffer_desc {
        length: 0,
        value: std::ptr::null_mut(),
    };

    /// A descriptor of borrowed bytes; the library only reads through it.
    pub fn borrowed(bytes: &[u8]) -> gss_buffer_desc {
        gss_buffer_desc {
            length: bytes.len(),
            value: bytes.as_ptr() as *mut c_void,
        }
    }
}

#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
pub struct gss_OID_desc {
    pub length: OM_uint32,
    pub elements: *mut c_void,
}
pub type gss_OID = *mut gss_OID_desc;

#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
pub struct gss_OID_set_desc {
    pub count: usize,
    pub elements: gss_OID,
}
pub type gss_OID_set = *mut gss_OID_set_desc;

#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
pub struct gss_channel_bindings_struct {
    pub initiator_addrtype: OM_uint32,
    pub initiator_address: gss_buffer_desc,
    pub acceptor_addrtype: OM_uint32,
    pub acceptor_address: gss_buffer_desc,
    pub application_data: gss_buffer_desc,
}

#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
pub struct gss_iov_buffer_desc {
    pub type_: OM_uint32,
    pub buffer: gss_buffer_desc,
}

#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
pub struct gss_key_value_element_desc {
    pub key: *const c_char,
    pub value: *const c_char,
}

#[cfg_attr(target_os = "macos", repr(C, packed(2)))]
#[cfg_attr(not(target_os = "macos"), repr(C))]
pub struct gss_key_value_set_desc {
    pub count: OM_uint32,
    pub elements: *mut gss_key_value_element_desc,
}

// Constants of RFC 2744 and MIT's gssapi_ext.h.
pub const GSS_S_COMPLETE: OM_uint32 = 0;
pub const GSS_S_CONTINUE_NEEDED: OM_uint32 = 1;
pub const GSS_C_GSS_CODE: c_int = 1;
pub const GSS_C_MECH_CODE: c_int = 2;
pub const GSS_C_INITIATE: c_int = 1;
pub const GSS_C_ACCEPT: c_int = 2;
pub const GSS_C_INDEFINITE: OM_uint32 = 0xffff_ffff;
pub const GSS_C_AF_UNSPEC: OM_uint32 = 0;
pub const GSS_C_MUTUAL_FLAG: OM_uint32 = 2;
pub const GSS_C_REPLAY_FLAG: OM_uint32 = 4;
pub const GSS_C_SEQUENCE_FLAG: OM_uint32 = 8;
pub const GSS_C_CONF_FLAG: OM_uint32 = 16;
pub const GSS_C_INTEG_FLAG: OM_uint32 = 32;
pub const GSS_IOV_BUFFER_TYPE_DATA: OM_uint32 = 1;
pub const GSS_IOV_BUFFER_TYPE_HEADER: OM_uint32 = 2;
pub const GSS_IOV_BUFFER_TYPE_PADDING: OM_uint32 = 9;
pub const GSS_IOV_BUFFER_FLAG_ALLOCATE: OM_uint32 = 0x0001_0000;

/// The routine-error field of a major status (RFC 2744 section 3.9.1).
pub fn routine_error(major: OM_uint32) -> OM_uint32 {
    major & 0x00ff_0000
}
pub const GSS_S_NO_CRED: OM_uint32 = 7 << 16;
pub const GSS_S_DEFECTIVE_TOKEN: OM_uint32 = 9 << 16;
pub const GSS_S_CREDENTIALS_EXPIRED: OM_uint32 = 11 << 16;
pub const GSS_S_CONTEXT_EXPIRED: OM_uint32 = 12 << 16;
#[cfg(test)]
pub const GSS_S_FAILURE: OM_uint32 = 13 << 16;
pub const GSS_S_BAD_BINDINGS: OM_uint32 = 4 << 16;

type Minor = *mut OM_uint32;

/// The functions exctl calls, resolved once from the loaded library.
pub struct Api {
    pub import_name:
        unsafe extern "C" fn(Minor, *mut gss_buffer_desc, gss_OID, *mut gss_name_t) -> OM_uint32,
    pub display_name:
        unsafe extern "C" fn(Minor, gss_name_t, *mut gss_buffer_desc, *mut gss_OID) -> OM_uint32,
    pub release_name: unsafe extern "C" fn(Minor, *mut gss_name_t) -> OM_uint32,
    pub release_buffer: unsafe extern "C" fn(Minor, *mut gss_buffer_desc) -> OM_uint32,
    pub release_cred: unsafe extern "C" fn(Minor, *mut gss_cred_id_t) -> OM_uint32,
    pub acquire_cred: unsafe extern "C" fn(
        Minor,
        gss_name_t,
        OM_uint32,
        gss_OID_set,
        c_int,
        *mut gss_cred_id_t,
        *mut gss_OID_set,
        *mut OM_uint32,
    ) -> OM_uint32,
    pub acquire_cred_with_password: unsafe extern "C" fn(
        Minor,
        gss_name_t,
        *mut gss_buffer_desc,
        OM_uint32,
        gss_OID_set,
        c_int,
        *mut gss_cred_id_t,
        *mut gss_OID_set,
        *mut OM_uint32,
    ) -> OM_uint32,
    pub acquire_cred_from: unsafe extern "C" fn(
        Minor,
        gss_name_t,
        OM_uint32,
        gss_OID_set,
        c_int,
        *const gss_key_value_set_desc,
        *mut gss_cred_id_t,
        *mut gss_OID_set,
        *mut OM_uint32,
    ) -> OM_uint32,
    pub set_neg_mechs: unsafe extern "C" fn(Minor, gss_cred_id_t, gss_OID_set) -> OM_uint32,
    pub init_sec_context: unsafe extern "C" fn(
        Minor,
        gss_cred_id_t,
        *mut gss_ctx_id_t,
        gss_name_t,
        gss_OID,
        OM_uint32,
        OM_uint32,
        *mut gss_channel_bindings_struct,
        *mut gss_buffer_desc,
        *mut gss_OID,
        *mut gss_buffer_desc,
        *mut OM_uint32,
        *mut OM_uint32,
    ) -> OM_uint32,
    pub accept_sec_context: unsafe extern "C" fn(
        Minor,
        *mut gss_ctx_id_t,
        gss_cred_id_t,
        *mut gss_buffer_desc,
        *mut gss_channel_bindings_struct,
        *mut gss_name_t,
        *mut gss_OID,
        *mut gss_buffer_desc,
        *mut OM_uint32,
        *mut OM_uint32,
        *mut gss_cred_id_t,
    ) -> OM_uint32,
    pub delete_sec_context:
        unsafe extern "C" fn(Minor, *mut gss_ctx_id_t, *mut gss_buffer_desc) -> OM_uint32,
    pub wrap_iov: unsafe extern "C" fn(
        Minor,
        gss_ctx_id_t,
        c_int,
        OM_uint32,
        *mut c_int,
        *mut gss_iov_buffer_desc,
        c_int,
    ) -> OM_uint32,
    pub release_iov_buffer:
        unsafe extern "C" fn(Minor, *mut gss_iov_buffer_desc, c_int) -> OM_uint32,
    pub unwrap: unsafe extern "C" fn(
        Minor,
        gss_ctx_id_t,
        *mut gss_buffer_desc,
        *mut gss_buffer_desc,
        *mut c_int,
        *mut OM_uint32,
    ) -> OM_uint32,
    pub display_status: unsafe extern "C" fn(
        Minor,
        OM_uint32,
        c_int,
        gss_OID,
        *mut OM_uint32,
        *mut gss_buffer_desc,
    ) -> OM_uint32,
}

/// The library file names tried in order; `EXCTL_GSSAPI_LIBRARY` names another.
#[cfg(target_os = "macos")]
const CANDIDATES: &[&str] = &[
    "libgssapi_krb5.2.2.dylib",
    "/opt/homebrew/opt/krb5/lib/libgssapi_krb5.2.2.dylib",
    "/usr/local/opt/krb5/lib/libgssapi_krb5.2.2.dylib",
];
#[cfg(not(target_os = "macos"))]
const CANDIDATES: &[&str] = &["libgssapi_krb5.so.2", "libgssapi_krb5.so"];

/// The loaded library, or why it could not be loaded (kept: the answer does not change
/// while the process runs).
pub fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn dlerror_text() -> String {
    // SAFETY: dlerror returns a thread-local, NUL-terminated string or null; it is copied
    // before any other dl* call can overwrite it.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

fn load() -> Result<Api, String> {
    let names: Vec<String> = match std::env::var("EXCTL_GSSAPI_LIBRARY") {
        Ok(path) if !path.is_empty() => vec![path],
        _ => CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    let mut reasons = Vec::new();
    let mut handle = std::ptr::null_mut();
    for name in &names {
        let Ok(c) = CString::new(name.as_str()) else {
            reasons.push(format!("{name}: not a file name"));
            continue;
        };
        // SAFETY: `c` is a valid C string; dlopen has no other preconditions. The handle
        // is never closed, so the function pointers taken from it stay valid for the
        // life of the process.
        handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if !handle.is_null() {
            break;
        }
        reasons.push(dlerror_text());
    }
    if handle.is_null() {
        return Err(reasons.join("; "));
    }
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol named is the GSSAPI function whose C signature (RFC 2744,
            // MIT gssapi_ext.h) the receiving field's type spells out.
            unsafe { symbol(handle, concat!($name, "\0"))? }
        };
    }
    Ok(Api {
        import_name: sym!("gss_import_name"),
        display_name: sym!("gss_display_name"),
        release_name: sym!("gss_release_name"),
        release_buffer: sym!("gss_release_buffer"),
        release_cred: sym!("gss_release_cred"),
        acquire_cred: sym!("gss_acquire_cred"),
        acquire_cred_with_password: sym!("gss_acquire_cred_with_password"),
        acquire_cred_from: sym!("gss_acquire_cred_from"),
        set_neg_mechs: sym!("gss_set_neg_mechs"),
        init_sec_context: sym!("gss_init_sec_context"),
        accept_sec_context: sym!("gss_accept_sec_context"),
        delete_sec_context: sym!("gss_delete_sec_context"),
        wrap_iov: sym!("gss_wrap_iov"),
        release_iov_buffer: sym!("gss_release_iov_buffer"),
        unwrap: sym!("gss_unwrap"),
        display_status: sym!("gss_display_status"),
    })
}

/// Resolves a function symbol of the open library.
///
/// # Safety
/// `handle` must be an open dlopen handle and `T` the function pointer type of the C
/// function `name` (NUL-terminated).
unsafe fn symbol<T: Copy>(handle: *mut c_void, name: &str) -> Result<T, String> {
    if std::mem::size_of::<T>() != std::mem::size_of::<*mut c_void>() {
        return Err(format!("{name} is not a function pointer type"));
    }
    // SAFETY: the handle is open (caller) and the name NUL-terminated (caller).
    let p = unsafe { libc::dlsym(handle, name.as_ptr() as *const c_char) };
    if p.is_null() {
        return Err(format!(
            "the library lacks {}: {}",
            name.trim_end_matches('\0'),
            dlerror_text()
        ));
    }
    // SAFETY: T is a function pointer of the symbol's signature (caller) and has the
    // size of a data pointer (checked above), as dlsym's result is on POSIX systems.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}
