//! The WS-Management faults the simulator sends, in the shapes real hosts send them:
//! `s:Code`/`s:Subcode`, a reason with Windows' trailing spaces, and either an
//! `f:WSManFault` (with an optional `f:ProviderFault` for shell plugin errors) or, for
//! quota errors, a `p:MSFT_WmiError` (WinRb's wmi_error_v2.xml stub shows that shape).
//! Every fault goes out as HTTP 500.

use crate::soap::{NsSet, action, envelope};
use crate::xml::{escape_attr, escape_text};

/// `f:WSManFault` namespace.
const NS_F: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";

/// ERROR_WSMAN_OPERATION_TIMEDOUT.
pub const CODE_TIMED_OUT: u32 = 2_150_858_793;
/// ERROR_WSMAN_UNEXPECTED_SELECTORS: unknown shell or command id.
pub const CODE_INVALID_SELECTORS: u32 = 2_150_858_843;
/// ERROR_WSMAN_QUOTA_MAX_SHELLS.
pub const CODE_QUOTA_MAX_SHELLS: u32 = 2_150_859_173;
/// ERROR_WSMAN_INVALID_ACTIONURI.
pub const CODE_INVALID_ACTION: u32 = 2_150_858_753;
/// ERROR_WSMAN_RESOURCE_NOT_FOUND.
pub const CODE_RESOURCE_NOT_FOUND: u32 = 2_150_858_752;
/// ERROR_WSMAN_SCHEMA_VALIDATION_ERROR.
pub const CODE_SCHEMA_VALIDATION: u32 = 2_150_858_817;
/// ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER.
pub const CODE_INVALID_HEADER: u32 = 2_150_858_767;
/// E_ACCESSDENIED, as a session configuration's plugin refusing a user reports it.
pub const CODE_ACCESS_DENIED: u32 = 0x8007_0005;
/// ERROR_INVALID_PARAMETER, as the shell plugin reports it.
pub const CODE_INVALID_PARAMETER: u32 = 87;

/// What goes in `s:Detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Detail {
    WsMan {
        /// `w:FaultDetail` URI, when Windows sends one.
        fault_detail: Option<&'static str>,
        code: u32,
        message: String,
        /// The shell plugin wraps its own errors in `f:ProviderFault`.
        provider: bool,
    },
    WmiError {
        code: u32,
        message: String,
    },
}

/// A SOAP fault ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Sender` or `s:Receiver`.
    pub code: &'static str,
    /// The subcode QName, e.g. `w:TimedOut`.
    pub subcode: &'static str,
    /// `s:Reason/s:Text`.
    pub reason: String,
    detail: Detail,
}

impl Fault {
    /// The numeric code a client keys on: the WSManFault Code or the WMI error_Code.
    pub fn wsman_code(&self) -> u32 {
        match &self.detail {
            Detail::WsMan { code, .. } | Detail::WmiError { code, .. } => *code,
        }
    }

    /// No output within OperationTimeout (test_winrs_operation_timeout.yml).
    pub fn timed_out() -> Self {
        let text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ";
        Fault {
            code: "s:Receiver",
            subcode: "w:TimedOut",
            reason: text.to_string(),
            detail: Detail::WsMan {
                fault_detail: None,
                code: CODE_TIMED_OUT,
                message: text.to_string(),
                provider: false,
            },
        }
    }

    /// A CommandId the shell does not have (test_winrs_bad_cmd_id.yml).
    pub fn unknown_command() -> Self {
        Fault::invalid_selectors(
            "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. ".to_string(),
        )
    }

    /// A ShellId the host does not have (deleted, or never created).
    pub fn unknown_shell(shell_id: &str) -> Self {
        Fault::invalid_selectors(format!(
            "The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "
        ))
    }

    fn invalid_selectors(message: String) -> Self {
        Fault {
            code: "s:Sender",
            subcode: "w:InvalidSelectors",
            reason: "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ".to_string(),
            detail: Detail::WsMan {
                fault_detail: Some(
                    "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
                ),
                code: CODE_INVALID_SELECTORS,
                message,
                provider: false,
            },
        }
    }

    /// The shell plugin's ERROR_INVALID_PARAMETER, e.g. a Receive without CommandId
    /// (test_winrs_fail_poll_process.yml).
    pub fn invalid_parameter() -> Self {
        Fault {
            code: "s:Sender",
            subcode: "w:InvalidParameter",
            reason: "The parameter is incorrect. ".to_string(),
            detail: Detail::WsMan {
                fault_detail: Some(
                    "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue",
                ),
                code: CODE_INVALID_PARAMETER,
                message: "The parameter is incorrect. ".to_string(),
                provider: true,
            },
        }
    }

    /// The shell plugin could not start the process (test_winrs_no_cmd_shell.yml).
    pub fn process_start(code: u32, message: &str) -> Self {
        Fault {
            code: "s:Receiver",
            subcode: "w:InternalError",
            reason: message.to_string(),
            detail: Detail::WsMan {
                fault_detail: None,
                code,
                message: message.to_string(),
                provider: true,
            },
        }
    }

    /// A session configuration's plugin refused the session while setting it up (Exchange's
    /// RBAC for an account without any management role). The message is the plugin's;
    /// the numeric code, E_ACCESSDENIED, is reconstructed (no recording of this fault).
    pub fn plugin_refused(message: &str) -> Self {
        Self::process_start(CODE_ACCESS_DENIED, message)
    }

    /// More shells than MaxShellsPerUser: a WMI error, not a WSManFault (WinRb
    /// wmi_error_v2.xml).
    pub fn quota_max_shells(limit: u32) -> Self {
        Fault {
            code: "s:Sender",
            subcode: "w:QuotaLimit",
            reason: "The WS-Management service cannot process the request. The maximum number of concurrent shells for this user has been exceeded. Close existing shells or raise the quota for this user. ".to_string(),
            detail: Detail::WmiError {
                code: CODE_QUOTA_MAX_SHELLS,
                message: format!(
                    "The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. "
                ),
            },
        }
    }

    /// An action the resource does not support.
    pub fn action_not_supported(action_uri: &str) -> Self {
        Fault {
            code: "s:Sender",
            subcode: "a:ActionNotSupported",
            reason: "The action is not supported by the service. ".to_string(),
            detail: Detail::WsMan {
                fault_detail: None,
                code: CODE_INVALID_ACTION,
                message: format!(
                    "The WS-Management service cannot process the request. The WS-Addressing action URI {action_uri} is invalid. Check the documentation for information on how to construct an action URI. "
                ),
                provider: false,
            },
        }
    }

    /// A resource URI this host does not serve.
    pub fn destination_unreachable() -> Self {
        Fault {
            code: "s:Sender",
            subcode: "w:DestinationUnreachable",
            reason: "The WS-Management service cannot process the request. The resource URI is not valid or the resource cannot be found. ".to_string(),
            detail: Detail::WsMan {
                fault_detail: Some(
                    "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidResourceURI",
                ),
                code: CODE_RESOURCE_NOT_FOUND,
                message: "The WS-Management service cannot process the request. The service cannot find the resource identified by the resource URI and selectors. ".to_string(),
                provider: false,
            },
        }
    }

    /// An envelope that is not valid XML or misses required parts.
    pub fn schema_validation() -> Self {
        let text = "The WS-Management service cannot process the request. The SOAP packet contains an element that is not valid or a required element is missing. ";
        Fault {
            code: "s:Sender",
            subcode: "w:SchemaValidationError",
            reason: "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. ".to_string(),
            detail: Detail::WsMan {
                fault_detail: None,
                code: CODE_SCHEMA_VALIDATION,
                message: text.to_string(),
                provider: false,
            },
        }
    }

    /// A header value that cannot be honoured, such as OperationTimeout `PT-1S`.
    pub fn invalid_header() -> Self {
        Fault {
            code: "s:Sender",
            subcode: "w:InvalidMessageInformationHeader",
            reason: "The WS-Management service cannot process the request because a header in the message is not valid. ".to_string(),
            detail: Detail::WsMan {
                fault_detail: Some(
                    "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue",
                ),
                code: CODE_INVALID_HEADER,
                message: "The WS-Management service cannot process the request because the value of a header is not valid. ".to_string(),
                provider: false,
            },
        }
    }

    /// The whole response envelope. `machine` is what Windows puts in `Machine`: the host
    /// name the client addressed.
    pub fn to_envelope(&self, relates_to: Option<&str>, machine: &str) -> String {
        let detail = match &self.detail {
            Detail::WsMan {
                fault_detail,
                code,
                message,
                provider,
            } => {
                let fd = fault_detail
                    .map(|u| format!("<w:FaultDetail>{u}</w:FaultDetail>"))
                    .unwrap_or_default();
                let msg = if *provider {
                    format!(
                        "<f:ProviderFault provider=\"Shell cmd plugin\" path=\"%systemroot%\\system32\\winrscmd.dll\">{}</f:ProviderFault>",
                        escape_text(message)
                    )
                } else {
                    escape_text(message)
                };
                format!(
                    "{fd}<f:WSManFault xmlns:f=\"{NS_F}\" Code=\"{code}\" Machine=\"{}\"><f:Message>{msg}</f:Message></f:WSManFault>",
                    escape_attr(machine)
                )
            }
            Detail::WmiError { code, message } => {
                let m = escape_text(message);
                format!(
                    "<p:MSFT_WmiError b:IsCIM_Error=\"true\" xmlns:b=\"http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd\" \
xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\" xmlns:p=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError\" \
xsi:type=\"p:MSFT_WmiError_Type\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
<p:CIMStatusCode xsi:type=\"cim:cimUnsignedInt\">27</p:CIMStatusCode>\
<p:CIMStatusCodeDescription xsi:nil=\"true\" xsi:type=\"cim:cimString\"/>\
<p:ErrorSource xsi:nil=\"true\" xsi:type=\"cim:cimString\"/>\
<p:ErrorSourceFormat xsi:type=\"cim:cimUnsignedShort\">0</p:ErrorSourceFormat>\
<p:ErrorType xsi:type=\"cim:cimUnsignedShort\">0</p:ErrorType>\
<p:Message xsi:type=\"cim:cimString\">{m}</p:Message>\
<p:MessageID xsi:type=\"cim:cimString\">HRESULT 0x{code:08x}</p:MessageID>\
<p:OtherErrorSourceFormat xsi:nil=\"true\" xsi:type=\"cim:cimString\"/>\
<p:OtherErrorType xsi:nil=\"true\" xsi:type=\"cim:cimString\"/>\
<p:OwningEntity xsi:nil=\"true\" xsi:type=\"cim:cimString\"/>\
<p:PerceivedSeverity xsi:type=\"cim:cimUnsignedShort\">0</p:PerceivedSeverity>\
<p:ProbableCause xsi:type=\"cim:cimUnsignedShort\">0</p:ProbableCause>\
<p:ProbableCauseDescription xsi:nil=\"true\" xsi:type=\"cim:cimString\"/>\
<p:error_Category xsi:type=\"cim:cimUnsignedInt\">30</p:error_Category>\
<p:error_Code xsi:type=\"cim:cimUnsignedInt\">{code}</p:error_Code>\
<p:error_Type xsi:type=\"cim:cimString\">HRESULT</p:error_Type>\
<p:error_WindowsErrorMessage xsi:type=\"cim:cimString\">{m}</p:error_WindowsErrorMessage>\
</p:MSFT_WmiError>"
                )
            }
        };
        let body = format!(
            "<s:Fault><s:Code><s:Value>{}</s:Value><s:Subcode><s:Value>{}</s:Value></s:Subcode></s:Code>\
             <s:Reason><s:Text xml:lang=\"en-US\">{}</s:Text></s:Reason><s:Detail>{detail}</s:Detail></s:Fault>",
            self.code,
            self.subcode,
            escape_text(&self.reason)
        );
        envelope(NsSet::Fault, action::FAULT, relates_to, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn every_fault_is_well_formed_xml() {
        for f in [
            Fault::timed_out(),
            Fault::unknown_command(),
            Fault::unknown_shell("ABC"),
            Fault::invalid_parameter(),
            Fault::process_start(0x8007_0002, "The system cannot find the file specified. "),
            Fault::quota_max_shells(30),
            Fault::action_not_supported("urn:x"),
            Fault::destination_unreachable(),
            Fault::schema_validation(),
            Fault::invalid_header(),
        ] {
            let xml = f.to_envelope(Some("uuid:1"), "host<&>");
            parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"));
        }
    }

    #[test]
    fn quota_fault_carries_the_code_in_the_wmi_error() {
        let xml = Fault::quota_max_shells(30).to_envelope(None, "h");
        assert!(xml.contains(">2150859173</p:error_Code>"));
        assert!(xml.contains("HRESULT 0x803381a5"));
        assert!(!xml.contains("WSManFault"));
    }
}
