//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`) and
//! the stable corpus runner of the normal test suite (`tests/fuzz_corpus.rs`, which
//! includes this file), so that both exercise exactly the same code.
//!
//! One target per parser that reads outside input: what a WinRM server sends the client
//! (SOAP responses and faults, the encrypted framing, NTLM CHALLENGE and sealed
//! messages), what a client sends the simulator (SOAP requests, framing, NTLM NEGOTIATE
//! and AUTHENTICATE, PowerShell scripts and their encodings), what powershell.exe writes
//! on stderr (CLIXML), and what a pull request proposes (manifests). Every body must
//! return normally for every input.

/// A target: its name (as the cargo-fuzz binary is called) and its body.
pub struct Target {
    /// The binary's name, also the directory name of its seeds and regressions.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Tokens the mutator of the stable runner splices in.
    pub dictionary: &'static [&'static str],
}

const XML_TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "=\"",
    "\"",
    "&amp;",
    "&#x0;",
    "&#65;",
    "&unknown;",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE a [<!ENTITY e \"x\">]>",
    "<?xml version=\"1.0\"?>",
    "xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"",
    "xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"",
    "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"",
    "xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"",
    "xmlns=\"\"",
    "s:Envelope",
    "s:Header",
    "s:Body",
    "s:Fault",
    "a:RelatesTo",
    "a:Action",
    "rsp:Stream",
    "rsp:CommandState",
    "rsp:ExitCode",
    "Name=\"stdout\"",
    "End=\"true\"",
    "uuid:00000000-0000-0000-0000-000000000000",
    "4294967295",
    "-9223372036854775809",
];

/// Every target, in the order the runner reports them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "winrm_response",
        run: exctl_winrm::fuzzing::parse_response,
        dictionary: XML_TOKENS,
    },
    Target {
        name: "winrm_framing",
        run: exctl_winrm::fuzzing::parse_framing,
        dictionary: &[
            "--Encrypted Boundary\r\n",
            "-- Encrypted Boundary--\r\n",
            "\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n",
            "OriginalContent: type=application/soap+xml;charset=UTF-8;Length=",
            "\tContent-Type: application/octet-stream\r\n",
            "\x10\0\0\0",
            "\x01\0\0\0",
            "\u{ff}\u{ff}\u{ff}\u{ff}",
            "18446744073709551616",
            "Length=0",
        ],
    },
    Target {
        name: "winrm_xml",
        run: exctl_winrm::fuzzing::parse_xml,
        dictionary: XML_TOKENS,
    },
    Target {
        name: "ntlm_negotiate",
        run: exctl_ntlm::fuzzing::negotiate,
        dictionary: NTLM_TOKENS,
    },
    Target {
        name: "ntlm_challenge",
        run: exctl_ntlm::fuzzing::challenge,
        dictionary: NTLM_TOKENS,
    },
    Target {
        name: "ntlm_authenticate",
        run: exctl_ntlm::fuzzing::authenticate,
        dictionary: NTLM_TOKENS,
    },
    Target {
        name: "ntlm_unseal",
        run: exctl_ntlm::fuzzing::unseal,
        dictionary: &["\x01\0\0\0", "\0\0\0\0", "\u{ff}\u{ff}\u{ff}\u{ff}"],
    },
    Target {
        name: "clixml",
        run: clixml,
        dictionary: &[
            "#< CLIXML\r\n",
            "<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">",
            "</Objs>",
            "<S S=\"Error\">",
            "<S S=\"Warning\">",
            "</S>",
            "_x000D__x000A_",
            "_x",
            "_xD800_",
            "<Obj S=\"progress\" RefId=\"0\">",
            "<TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN>",
            "<TNRef RefId=\"0\" />",
            "<MS>",
            "</MS>",
            "<Ref RefId=\"0\" />",
            "<I32 N=\"x\">",
        ],
    },
    Target {
        name: "pwsh_parse",
        run: pwsh_parse,
        dictionary: &[
            "$",
            "${",
            "@(",
            "@{",
            "$(",
            "'",
            "\"",
            "`",
            "\u{2018}",
            "\u{201c}",
            "{",
            "}",
            "(",
            ")",
            "[",
            "]",
            "|",
            ";",
            "\n",
            "-eq",
            "-f",
            "..",
            "::",
            "function ",
            "param(",
            "foreach(",
            "try{",
            "}catch{",
            "}finally{",
            "if(",
            "else",
            "@'\n",
            "\n'@",
            "@\"\n",
            "\n\"@",
            "#",
            "<#",
            "#>",
            "[int]",
            "[string[]]",
            "-Name",
            "Set-ImapSettings",
            "2>&1",
            "$null",
            "0x",
            "1e9999",
            "1kb",
        ],
    },
    Target {
        name: "manifest_load",
        run: manifest_load,
        dictionary: &[
            "---\n",
            "...\n",
            ": ",
            "- ",
            "  ",
            "\t",
            "&a ",
            "*a",
            "!!str ",
            "? ",
            "{",
            "}",
            "[",
            "]",
            ",",
            "'",
            "\"",
            "|\n",
            ">-\n",
            "#",
            "%YAML 1.2\n",
            "password: ",
            "kind: ",
            "\\u0000",
            "\u{feff}",
            "~",
            "null",
        ],
    },
    Target {
        name: "psrp_message",
        run: psrp_message,
        dictionary: &[
            "\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\x03",
            "\x01\0\0\0\x04\x10\x04\0",
            "\x01\0\0\0\x06\x10\x04\0",
            "\u{feff}",
            "<Obj RefId=\"0\">",
            "<Ref RefId=\"0\" />",
            "<TNRef RefId=\"0\" />",
            "<TN RefId=\"0\"><T>System.Object</T></TN>",
            "<MS>",
            "<LST>",
            "<DCT><En><S N=\"Key\">k</S>",
            "<I32 N=\"PipelineState\">5</I32>",
            "_x000A_",
            "_xD800_",
        ],
    },
    Target {
        name: "sim_soap",
        run: sim_soap,
        dictionary: XML_TOKENS,
    },
    Target {
        name: "sim_framing",
        run: sim_framing,
        dictionary: &[
            "--Encrypted Boundary\r\n",
            "-- Encrypted Boundary--\r\n",
            "\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n",
            "OriginalContent: type=application/soap+xml;charset=UTF-8;Length=",
            "\tContent-Type: application/octet-stream\r\n",
            "\x10\0\0\0",
            "\u{ff}\u{ff}\u{ff}\u{ff}",
        ],
    },
];

const NTLM_TOKENS: &[&str] = &[
    "NTLMSSP\0",
    "\x01\0\0\0",
    "\x02\0\0\0",
    "\x03\0\0\0",
    "\u{ff}\u{ff}",
    "\0\0\0\0",
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// What powershell.exe writes on stderr, as exctl decodes it.
pub fn clixml(data: &[u8]) {
    let _ = exctl_pwsh::clixml::is_clixml(data);
    match exctl_pwsh::clixml::decode_stderr_bytes(data) {
        Ok(decoded) => {
            for e in &decoded.errors {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// What a PowerShell remoting server sends in its stdout stream: fragments, reassembled
/// into messages, read as events (CLIXML included), as `exctl-psrp` does.
pub fn psrp_message(data: &[u8]) {
    exctl_psrp::fuzzing::server_stream(data);
}

/// The simulator's PowerShell: the `-EncodedCommand` and stdin encodings a client sends,
/// and the parser of the PowerShell 2.0 subset that runs what they carry.
pub fn pwsh_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = exctl_pwsh_interp::parse(&text) {
        let _ = e.to_string();
    }
    if let Ok(script) = exctl_pwsh::runner::decode_command(&text) {
        let _ = exctl_pwsh_interp::parse(&script);
    }
    if let Ok(script) = exctl_pwsh::runner::decode_stdin(data) {
        let _ = exctl_pwsh_interp::parse(&script);
    }
}

/// A manifest file from a pull request: YAML parsing with its refusals and bounds, the
/// secrets-in-clear check, and the rendering of every diagnostic (which quotes the
/// source around the spans it points at).
pub fn manifest_load(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (sources, docs, mut diags) = exctl_manifest::parse_str("fuzz.yaml", text.into_owned());
    for doc in &docs {
        exctl_manifest::check_secrets(&doc.root, &mut diags);
    }
    diags.sort();
    let _ = exctl_manifest::render(&sources, &diags, false);
    let _ = exctl_manifest::render_short(&sources, &diags);
    let _ = exctl_manifest::render_json(&sources, &diags);
}

/// A request envelope as the simulator reads it, with the header values it acts on.
pub fn sim_soap(data: &[u8]) {
    if let Ok(req) = exctl_sim::soap::parse_request(data) {
        let _ = req.selector("ShellId");
        let _ = req.option_bool("WINRS_NOPROFILE");
        if let Some(body) = &req.body {
            let _ = body.attr("CommandId");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = exctl_sim::soap::parse_duration(text);
    }
}

/// A sealed request as the simulator reads it: the framing, then unsealing every part
/// with an acceptor's session.
pub fn sim_framing(data: &[u8]) {
    let Ok(parts) = exctl_sim::framing::parse(data) else {
        return;
    };
    let mut session =
        exctl_ntlm::Session::from_exported_session_key(exctl_ntlm::Role::Acceptor, &[0x55; 16]);
    for part in parts {
        if session.unseal(part.signature, part.sealed).is_err() {
            break;
        }
    }
}
