//! The runner: how a script of any length becomes one `powershell.exe` process on the host.
//!
//! A command line is limited (cmd.exe's 8191 characters, and `-EncodedCommand` inflates a
//! script about 2.67 times), stdin is not. So the command line carries only a short, fixed
//! bootstrap ([`BOOTSTRAP`], passed with `-EncodedCommand`), and the real script travels on
//! stdin: UTF-8, base64-encoded so that it is plain ASCII on the wire and no console code page
//! can mangle it, followed by CRLF. [`invocation`] builds both halves; the WinRS layer sends
//! `command` and `arguments` with the Command message and `stdin` with Send messages, the last
//! one flagged `End` so the bootstrap sees end of input.
//!
//! # What the bootstrap does
//!
//! ```text
//! $ProgressPreference='SilentlyContinue';
//! $ErrorActionPreference='Stop';
//! trap{$Host.UI.WriteErrorLine(($_|Out-String));exit 1};
//! &([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String((@($input)-join'')))));
//! exit 0
//! ```
//! (one line, without the line breaks shown here).
//!
//! - Progress records would otherwise be serialized onto stderr as CLIXML noise.
//! - The script is read from `$input`, not `[Console]::In`: when stdin is redirected,
//!   powershell.exe itself reads it line by line on another thread and feeds the lines to the
//!   command as pipeline input, so a second reader of the console stream would race with it.
//!   `@($input)-join''` reassembles the lines; base64 does not care where they were split.
//! - The script runs as a script block invoked with `&`, i.e. in a child scope.
//!
//! # Exit code contract
//!
//! - `exit N` anywhere in the script ends the process with exit code `N` (`exit` in a script
//!   block that is not a script file exits the host).
//! - An error nobody handles ends the process with exit code 1, after writing the error in
//!   PowerShell's usual format (message, `At line:` position, `+ CategoryInfo`,
//!   `+ FullyQualifiedErrorId`) to the error stream, i.e. to stderr as CLIXML
//!   (see [`crate::clixml`]). Because the bootstrap sets `$ErrorActionPreference = 'Stop'`,
//!   which the script inherits, *every* error counts: non-terminating errors (a cmdlet's
//!   `Write-Error`) and statement-terminating ones (an unknown parameter, a .NET exception)
//!   become terminating and reach the bootstrap's `trap`. A script that means to tolerate an
//!   error says so locally (`-ErrorAction SilentlyContinue`, `try`/`catch`, or its own
//!   `$ErrorActionPreference`). A script that cannot be parsed fails the same way, before any
//!   of it has run. So do stdin that is not valid base64.
//! - Otherwise the exit code is 0. The exit code of a native program the script ran last is
//!   not propagated; a script that cares checks `$LASTEXITCODE` and calls `exit` itself.
//!
//! # The PowerShell subset the bootstrap uses
//!
//! Everything here exists in PowerShell 2.0, and is all that a simulated host must interpret
//! to run the bootstrap:
//!
//! - statements separated by `;`;
//! - assignment of a single-quoted string to a variable (`$ProgressPreference`,
//!   `$ErrorActionPreference`);
//! - an untyped `trap{...}` statement whose body calls a method and then `exit 1`;
//! - `exit` with an integer literal;
//! - the automatic variables `$Host`, `$_` (in the trap, the error record) and `$input` (the
//!   command's pipeline input: the lines of stdin, without their line terminators);
//! - property access then a method call on an instance: `$Host.UI.WriteErrorLine(...)`,
//!   `[Text.Encoding]::UTF8.GetString(...)`;
//! - a pipeline in parentheses into a cmdlet without parameters: `($_|Out-String)`;
//! - the array subexpression `@(...)` and the binary `-join` operator with `''`;
//! - static members with the type names `Convert`, `Text.Encoding` (= `System.Text.Encoding`)
//!   and `ScriptBlock`: `[Convert]::FromBase64String(string)` (which skips whitespace),
//!   `[Text.Encoding]::UTF8` (invalid UTF-8 decodes to U+FFFD), `[ScriptBlock]::Create(string)`;
//! - the call operator `&` applied to a parenthesized expression that yields a script block.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The bootstrap passed with `-EncodedCommand`; see the module documentation.
pub const BOOTSTRAP: &str = concat!(
    "$ProgressPreference='SilentlyContinue';",
    "$ErrorActionPreference='Stop';",
    "trap{$Host.UI.WriteErrorLine(($_|Out-String));exit 1};",
    "&([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString(",
    "[Convert]::FromBase64String((@($input)-join'')))));",
    "exit 0",
);

/// The program every invocation runs.
pub const POWERSHELL: &str = "powershell.exe";

/// cmd.exe's limit on a command line, in characters.
pub const MAX_COMMAND_LINE: usize = 8191;

/// One `powershell.exe` process: what to start and what to write to its stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The program, always [`POWERSHELL`].
    pub command: String,
    /// Its arguments; none contains a space or a character special to cmd.exe.
    pub arguments: Vec<String>,
    /// The script, for stdin: base64 of its UTF-8 bytes, then CRLF. ASCII only.
    pub stdin: Vec<u8>,
}

impl Invocation {
    /// The command line as WinRS hands it to the host: the command and the arguments joined
    /// by single spaces. Its length does not depend on the script.
    pub fn command_line(&self) -> String {
        let mut line = self.command.clone();
        for arg in &self.arguments {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// Builds the invocation that runs `script` on the host, whatever its length.
pub fn invocation(script: &str) -> Invocation {
    let mut stdin = STANDARD.encode(script.as_bytes()).into_bytes();
    stdin.extend_from_slice(b"\r\n");
    Invocation {
        command: POWERSHELL.to_owned(),
        arguments: [
            "-NoLogo",
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-EncodedCommand",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(std::iter::once(encode_command(BOOTSTRAP)))
        .collect(),
        stdin,
    }
}

/// Encodes a script for `powershell.exe -EncodedCommand`: base64 of its UTF-16LE code units.
pub fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    STANDARD.encode(bytes)
}

/// Why an encoded command or an encoded stdin script could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text is not standard, padded base64.
    #[error("not valid base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// An `-EncodedCommand` value decoded to an odd number of bytes, so it cannot be UTF-16.
    #[error("an encoded command must decode to UTF-16LE, but it has an odd length of {len} bytes")]
    OddLength {
        /// The number of decoded bytes.
        len: usize,
    },
    /// An `-EncodedCommand` value holds an unpaired UTF-16 surrogate.
    #[error("an encoded command holds an unpaired UTF-16 surrogate")]
    Utf16,
}

/// Decodes an `-EncodedCommand` value back to the script; the inverse of [`encode_command`].
pub fn decode_command(encoded: &str) -> Result<String, DecodeError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(DecodeError::Base64)?;
    if bytes.len() % 2 != 0 {
        return Err(DecodeError::OddLength { len: bytes.len() });
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| DecodeError::Utf16)
}

/// Decodes the stdin of an [`Invocation`] back to the script, as the bootstrap does: ASCII
/// whitespace (the line breaks) is skipped like `[Convert]::FromBase64String` skips it, and
/// invalid UTF-8 becomes U+FFFD like `[Text.Encoding]::UTF8.GetString` makes it.
pub fn decode_stdin(stdin: &[u8]) -> Result<String, DecodeError> {
    let compact: Vec<u8> = stdin
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD.decode(compact).map_err(DecodeError::Base64)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
