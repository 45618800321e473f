//! `powershell.exe` on the simulated host: Windows PowerShell 2.0's command line, the
//! interpreter of `exctl-pwsh` running the script against the Exchange model (through
//! [`SimHost`]), and the streams as a WinRS client sees them.
//!
//! # Command line
//!
//! `powershell.exe [-NoLogo] [-NoProfile] [-NonInteractive] [-NoExit] [-Sta]
//! [-ExecutionPolicy P] [-InputFormat Text|XML] [-OutputFormat Text|XML]
//! [-WindowStyle S] [-Version 2.0] [-EncodedCommand B64 | -Command TEXT... | -Command - |
//! TEXT... | -]`. Parameters match by prefix, case-insensitively, with `-` or `/`, as
//! powershell.exe matches them (`-enc`, `-ec`, `-noni`, `-ep`). The first argument that is
//! not a parameter starts the command, which is every remaining argument joined with
//! spaces (`powershell.exe Write-Host hi`, as the WinRM recordings do). `-EncodedCommand`
//! is base64 of UTF-16LE. A malformed command line writes PowerShell's message to stderr
//! and exits with -196608 (0xFFFD0000), as powershell.exe does.
//!
//! # Stdin
//!
//! With a command (`-Command`, `-EncodedCommand`), the lines of stdin are the script's
//! `$input`, as when powershell.exe's stdin is redirected. They are read up to the
//! client's `End` only when the script mentions `$input` (exctl's bootstrap does, and
//! needs all of them); otherwise the script starts at once and stdin is left unread.
//! With `-Command -`, `-`, or no command at all, stdin is the script: it is read to its
//! end, then run as one script (real powershell.exe runs each complete statement as it
//! arrives; a WinRS client sends stdin before it receives, so only the timing differs).
//! Without a command, the logo is printed first unless `-NoLogo`. Stdin is bounded by
//! [`MAX_STDIN`].
//!
//! # Output
//!
//! The interpreter runs on a blocking thread; what it writes streams to the WinRS stdout
//! as it is produced, in the shell's code page, through a bounded queue: a script that
//! writes 20 MB waits for the client's Receives, and one that sleeps lets the client see
//! `TimedOut` faults and then its output. A WinRS Signal terminate (or the shell's
//! Delete) stops the script at its next statement.
//!
//! stderr is what Windows writes: when the command came with `-EncodedCommand` (or
//! `-OutputFormat XML`) and the streams are redirected, which they always are under
//! WinRS, the error, warning, verbose and debug streams are serialized as CLIXML: a
//! `#< CLIXML` line, then one `<Objs>` document, opened at the first such record and
//! closed when the process ends, holding one `<S S="Error">` element per line of the
//! error text (PowerShell 2.0's error view, [`ErrorRecord::format_v2`]) ended by
//! `_x000D__x000A_`, and `<S S="warning">`, `<S S="verbose">`, `<S S="debug">` messages.
//! Otherwise errors are plain text on stderr, and warnings, verbose and debug messages go
//! to stdout with their `WARNING: ` prefixes, as the console host writes them.
//! `-OutputFormat XML` does not serialize stdout's objects (they print as text).
//!
//! # Exit code
//!
//! The interpreter's contract ([`Interpreter::run`]): `exit N`, 1 after an unhandled
//! terminating error or a parse error, else 1 when the last statement failed.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use exctl_pwsh_interp::{ErrorRecord, Interpreter, Limits, OutputSink, StopSignal};
use tokio::sync::Notify;

use crate::cmd::{CmdExecutor, ExitFuture, Invocation, Program};
use crate::codepage;
use crate::config::SimConfig;
use crate::exchange::OrgHandle;
use crate::process::{Executor, ProcessIo};
use crate::pshost::{HostOptions, SimHost};

/// powershell.exe's exit code for a command line it cannot parse (0xFFFD0000).
pub const EXIT_BAD_COMMAND_LINE: u32 = 0xFFFD_0000;

/// The most stdin a process reads before giving up (a script of any reasonable length
/// fits many times over).
pub const MAX_STDIN: usize = 64 << 20;

/// The most output bytes waiting for the client before the script is made to wait.
const MAX_QUEUED: usize = 1 << 20;

/// The largest piece of output handed to the shell at once.
const CHUNK: usize = 64 << 10;

/// The logo of an interactive start.
const LOGO: &str =
    "Windows PowerShell\r\nCopyright (C) 2009 Microsoft Corporation. All rights reserved.\r\n\r\n";

const USAGE: &str = "PowerShell[.exe] [-PSConsoleFile <file> | -Version <version>]\r\n    [-NoLogo] [-NoExit] [-Sta] [-NoProfile] [-NonInteractive]\r\n    [-InputFormat {Text | XML}] [-OutputFormat {Text | XML}]\r\n    [-WindowStyle <style>] [-EncodedCommand <Base64EncodedCommand>]\r\n    [-File <filePath> <args>] [-ExecutionPolicy <ExecutionPolicy>]\r\n    [-Command { - | <script-block> [-args <arg-array>]\r\n                  | <string> [<CommandParameters>] } ]\r\n\r\n";

/// Where the script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// `-Command TEXT` or bare arguments.
    Command(String),
    /// `-EncodedCommand`, decoded.
    Encoded(String),
    /// `-Command -` or `-`: the script is stdin.
    Stdin,
    /// No command at all: stdin too, after the logo.
    Interactive,
}

/// A parsed powershell.exe command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The script.
    pub source: ScriptSource,
    /// `-NoLogo`.
    pub no_logo: bool,
    /// `-OutputFormat XML`.
    pub output_xml: bool,
    /// `-Help`, `-?`, `/?`.
    pub help: bool,
}

impl CommandLine {
    /// Whether stderr carries CLIXML (see the module documentation).
    pub fn clixml_stderr(&self) -> bool {
        self.output_xml || matches!(self.source, ScriptSource::Encoded(_))
    }
}

/// A command line powershell.exe refuses, with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// PowerShell's prefix rule: `given` is a prefix of `full` at least as long as `min`.
fn matches(given: &str, full: &str, min: &str) -> bool {
    given.len() >= min.len() && full.starts_with(given)
}

/// Parses powershell.exe's arguments (already split as CommandLineToArgvW does).
pub fn parse_command_line(args: &[String]) -> Result<CommandLine, UsageError> {
    let mut cl = CommandLine {
        source: ScriptSource::Interactive,
        no_logo: false,
        output_xml: false,
        help: false,
    };
    let missing = |what: &str| {
        UsageError(format!(
            "Cannot process the command because of a missing parameter. A command must follow -{what}."
        ))
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "-" {
            cl.source = ScriptSource::Stdin;
            return Ok(cl);
        }
        let Some(key) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('/')) else {
            // The first argument that is not a parameter starts the command.
            cl.source = ScriptSource::Command(args[i..].join(" "));
            return Ok(cl);
        };
        let key = key.to_ascii_lowercase();
        let value = args.get(i + 1);
        i += 1;
        if key == "?" || matches(&key, "help", "h") {
            cl.help = true;
        } else if matches(&key, "noexit", "noe") || matches(&key, "sta", "s") {
            // No console to keep open and no apartment to choose under WinRS.
        } else if matches(&key, "noprofile", "nop") || matches(&key, "noninteractive", "noni") {
            // Profiles are not modelled; nothing here ever prompts.
        } else if matches(&key, "nologo", "nol") {
            cl.no_logo = true;
        } else if matches(&key, "outputformat", "o") || matches(&key, "inputformat", "i") {
            let output = key.starts_with('o');
            let v = value
                .ok_or_else(|| {
                    UsageError(format!(
                        "Cannot process the command because -{} requires an argument.",
                        if output {
                            "OutputFormat"
                        } else {
                            "InputFormat"
                        }
                    ))
                })?
                .to_ascii_lowercase();
            i += 1;
            let xml = if "xml".starts_with(&v) && !v.is_empty() {
                true
            } else if "text".starts_with(&v) && !v.is_empty() {
                false
            } else {
                return Err(UsageError(format!(
                    "Invalid argument '{v}' to the -{} parameter. Valid arguments are 'Text' and 'XML'.",
                    if output {
                        "OutputFormat"
                    } else {
                        "InputFormat"
                    }
                )));
            };
            if output {
                cl.output_xml = xml;
            }
        } else if matches(&key, "executionpolicy", "ex") || key == "ep" {
            value.ok_or_else(|| missing("ExecutionPolicy"))?;
            i += 1;
        } else if matches(&key, "windowstyle", "w") {
            value.ok_or_else(|| missing("WindowStyle"))?;
            i += 1;
        } else if matches(&key, "version", "v") {
            let v = value.ok_or_else(|| missing("Version"))?;
            i += 1;
            if !matches!(v.as_str(), "1" | "1.0" | "2" | "2.0") {
                return Err(UsageError(format!(
                    "Cannot start Windows PowerShell version {v} because it is not installed."
                )));
            }
        } else if matches(&key, "psconsolefile", "psc") {
            value.ok_or_else(|| missing("PSConsoleFile"))?;
            i += 1;
        } else if matches(&key, "encodedcommand", "e") || key == "ec" {
            let v = value.ok_or_else(|| missing("EncodedCommand"))?;
            let script = exctl_pwsh::runner::decode_command(v).map_err(|_| {
                UsageError(
                    "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded."
                        .to_string(),
                )
            })?;
            cl.source = ScriptSource::Encoded(script);
            i += 1;
        } else if matches(&key, "command", "c") {
            let rest = &args[i..];
            cl.source = match rest {
                [] => return Err(missing("Command")),
                [only] if only == "-" => ScriptSource::Stdin,
                _ => ScriptSource::Command(rest.join(" ")),
            };
            return Ok(cl);
        } else if matches(&key, "file", "f") {
            let f = value.ok_or_else(|| missing("File"))?;
            // The simulated host has no script files.
            return Err(UsageError(format!(
                "The argument '{f}' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter."
            )));
        } else {
            // An unknown parameter starts the command, and fails as an unknown command.
            cl.source = ScriptSource::Command(args[i - 1..].join(" "));
            return Ok(cl);
        }
    }
    Ok(cl)
}

/// Whether a script reads `$input` (then stdin must be read to its end first).
fn mentions_input(script: &str) -> bool {
    script.to_ascii_lowercase().contains("$input")
}

/// Why stdin could not be read.
#[derive(Debug, thiserror::Error)]
#[error("stdin is longer than {MAX_STDIN} bytes")]
struct StdinTooLong;

/// All of stdin, decoded from the shell's code page, as lines without terminators.
async fn stdin_lines(io: &ProcessIo, codepage: u32) -> Result<Vec<String>, StdinTooLong> {
    let mut bytes = Vec::new();
    while let Some(chunk) = io.read_stdin().await {
        if bytes.len() + chunk.len() > MAX_STDIN {
            return Err(StdinTooLong);
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = codepage::decode(&bytes, codepage);
    Ok(text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect())
}

// ---------------------------------------------------------------------------------------
// Output: a bounded queue between the interpreter thread and the process's streams.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(Stream, Vec<u8>)>,
    queued: usize,
    /// The interpreter has finished writing.
    done: bool,
    /// Nobody reads any more (the process was killed): writes are dropped.
    closed: bool,
}

#[derive(Default)]
struct Outbox {
    queue: Mutex<Queue>,
    space: Condvar,
    wake: Notify,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues bytes, blocking the (interpreter) thread while too much waits unread.
    fn push(&self, stream: Stream, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let mut q = self.lock();
        while !q.closed && q.queued >= MAX_QUEUED {
            q = self.space.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        if q.closed {
            return;
        }
        q.queued += bytes.len();
        // Small writes (a line, then its line break) travel together.
        match q.items.back_mut() {
            Some((s, buf)) if *s == stream && buf.len() + bytes.len() <= CHUNK => {
                buf.extend_from_slice(&bytes)
            }
            _ => q.items.push_back((stream, bytes)),
        }
        drop(q);
        self.wake.notify_one();
    }

    fn finish(&self) {
        self.lock().done = true;
        self.wake.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.space.notify_all();
    }

    /// Moves queued output to the process's streams until the interpreter is done.
    async fn pump(&self, io: &ProcessIo) {
        loop {
            let next = {
                let mut q = self.lock();
                match q.items.pop_front() {
                    Some(item) => Some(item),
                    None if q.done => return,
                    None => None,
                }
            };
            match next {
                Some((stream, data)) => {
                    let n = data.len();
                    match stream {
                        Stream::Stdout => io.stdout(data).await,
                        Stream::Stderr => io.stderr(data).await,
                    }
                    {
                        let mut q = self.lock();
                        q.queued = q.queued.saturating_sub(n);
                    }
                    self.space.notify_all();
                }
                None => self.wake.notified().await,
            }
        }
    }
}

/// Marks the output finished when the interpreter thread ends, even by a panic.
struct FinishOnDrop(Arc<Outbox>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Stops the script when the process is killed (its future dropped).
struct StopOnDrop {
    stop: StopSignal,
    outbox: Arc<Outbox>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.stop.stop();
        self.outbox.close();
    }
}

/// Escapes text for a CLIXML `<S>` element: XML's entities, and PowerShell's `_xHHHH_`
/// for control characters, characters XML cannot carry, and an underscore that would
/// otherwise read as the start of an escape.
pub fn clixml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '_' if matches!(chars.peek(), Some('x' | 'X')) => out.push_str("_x005F_"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("_x{:04X}_", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The interpreter's output sink: text into the queue, in the shell's code page.
struct ProcessSink {
    outbox: Arc<Outbox>,
    codepage: u32,
    clixml: bool,
    clixml_open: bool,
}

impl ProcessSink {
    fn write(&mut self, stream: Stream, text: &str) {
        // A long string goes out in pieces (cut at character boundaries), so that the
        // queue stays bounded whatever one write holds.
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = rest.len().min(CHUNK);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (piece, tail) = rest.split_at(cut);
            self.outbox
                .push(stream, codepage::encode(piece, self.codepage));
            rest = tail;
        }
    }

    /// One CLIXML string element on stderr, opening the document first if needed.
    fn clixml_element(&mut self, stream_name: &str, line: &str) {
        let mut s = String::new();
        if !self.clixml_open {
            self.clixml_open = true;
            s.push_str("#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">");
        }
        s.push_str(&format!(
            "<S S=\"{stream_name}\">{}_x000D__x000A_</S>",
            clixml_escape(line)
        ));
        self.write(Stream::Stderr, &s);
    }

    fn error_text(&mut self, text: &str) {
        if self.clixml {
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                self.clixml_element("Error", line);
            }
        } else {
            self.write(Stream::Stderr, &format!("{text}\r\n"));
        }
    }

    fn informational(&mut self, stream_name: &str, prefix: &str, message: &str) {
        if self.clixml {
            self.clixml_element(stream_name, message);
        } else {
            self.write(Stream::Stdout, &format!("{prefix}{message}\r\n"));
        }
    }

    /// Closes the CLIXML document, if one was opened.
    fn finish(&mut self) {
        if self.clixml_open {
            self.clixml_open = false;
            self.write(Stream::Stderr, "</Objs>");
        }
    }
}

impl OutputSink for ProcessSink {
    fn stdout(&mut self, text: &str) {
        self.write(Stream::Stdout, text);
    }

    fn error(&mut self, record: &ErrorRecord) {
        let text = record.format_v2_with("\r\n");
        self.error_text(&text);
    }

    fn host_error_line(&mut self, line: &str) {
        // `$Host.UI.WriteErrorLine(($_ | Out-String))`: one element per line; the
        // trailing line break of Out-String's text adds no empty element.
        let text = line.strip_suffix("\r\n").unwrap_or(line);
        self.error_text(text);
    }

    fn warning(&mut self, message: &str) {
        self.informational("warning", "WARNING: ", message);
    }

    fn verbose(&mut self, message: &str) {
        self.informational("verbose", "VERBOSE: ", message);
    }

    fn debug(&mut self, message: &str) {
        self.informational("debug", "DEBUG: ", message);
    }
}

/// The `powershell` program of the simulated host.
#[derive(Debug, Clone)]
pub struct PowerShellProgram {
    org: OrgHandle,
    options: HostOptions,
}

impl PowerShellProgram {
    /// powershell.exe running against `org`.
    pub fn new(org: OrgHandle, options: HostOptions) -> Self {
        PowerShellProgram { org, options }
    }
}

impl Program for PowerShellProgram {
    fn run(&self, invocation: Invocation, io: ProcessIo) -> ExitFuture {
        let org = self.org.clone();
        let options = self.options.clone();
        Box::pin(run_powershell(org, options, invocation, io))
    }
}

async fn run_powershell(
    org: OrgHandle,
    options: HostOptions,
    invocation: Invocation,
    io: ProcessIo,
) -> u32 {
    org.lock().count_powershell_process();
    let codepage = invocation.request.codepage;
    let cl = match parse_command_line(&invocation.args) {
        Ok(cl) => cl,
        Err(e) => {
            io.stderr(codepage::encode(&format!("{e}\r\n"), codepage))
                .await;
            return EXIT_BAD_COMMAND_LINE;
        }
    };
    if cl.help {
        io.stdout(codepage::encode(USAGE, codepage)).await;
        return 0;
    }
    let clixml = cl.clixml_stderr();
    let (script, input) = match cl.source {
        ScriptSource::Command(s) | ScriptSource::Encoded(s) => {
            let input = if mentions_input(&s) {
                match stdin_lines(&io, codepage).await {
                    Ok(lines) => Some(lines),
                    Err(e) => {
                        io.stderr(codepage::encode(&format!("{e}\r\n"), codepage))
                            .await;
                        return 1;
                    }
                }
            } else {
                None
            };
            (s, input)
        }
        ScriptSource::Stdin | ScriptSource::Interactive => {
            if cl.source == ScriptSource::Interactive && !cl.no_logo {
                io.stdout(codepage::encode(LOGO, codepage)).await;
            }
            match stdin_lines(&io, codepage).await {
                Ok(lines) => (lines.join("\r\n"), None),
                Err(e) => {
                    io.stderr(codepage::encode(&format!("{e}\r\n"), codepage))
                        .await;
                    return 1;
                }
            }
        }
    };

    let outbox = Arc::new(Outbox::default());
    let mut sink = ProcessSink {
        outbox: outbox.clone(),
        codepage,
        clixml,
        clixml_open: false,
    };
    let host = SimHost::new(org, options, &invocation.request.environment);
    let mut interpreter = Interpreter::with_limits(host, Limits::default());
    let stop = interpreter.stop_signal();
    interpreter.host_mut().set_stop_signal(stop.clone());
    let _stop_on_drop = StopOnDrop {
        stop,
        outbox: outbox.clone(),
    };
    let finished = FinishOnDrop(outbox.clone());
    let task = tokio::task::spawn_blocking(move || {
        let _finished = finished;
        let status = interpreter.run(&script, input, &mut sink);
        sink.finish();
        status
    });
    outbox.pump(&io).await;
    match task.await {
        // A Windows exit code is a DWORD: `exit -1` is 4294967295.
        Ok(status) => status.code as u32,
        Err(_) => 1,
    }
}

/// The executor of a simulated Exchange host: `cmd.exe` and its programs, with
/// `powershell.exe` running scripts against `org`.
pub fn exchange_host(config: &SimConfig, org: OrgHandle) -> Arc<dyn Executor> {
    exchange_host_with(config, org, HostOptions::default())
}

/// [`exchange_host`] with options (the snap-in's load time).
pub fn exchange_host_with(
    config: &SimConfig,
    org: OrgHandle,
    options: HostOptions,
) -> Arc<dyn Executor> {
    let mut exec = CmdExecutor::new(config.computer_name.clone());
    exec.register(
        "powershell",
        Arc::new(PowerShellProgram::new(org, for_winrm(config, options))),
    );
    Arc::new(exec)
}

/// `options` for the processes and runspaces WinRM starts on the host: the account
/// ([`with_account`]), its management roles, and the double hop unless the host is set
/// up for delegation ([`SimConfig::delegation`]).
pub fn for_winrm(config: &SimConfig, options: HostOptions) -> HostOptions {
    let mut options = with_account(config, options);
    options.double_hop = !config.delegation;
    options.role = config.exchange_role;
    options
}

/// `options` with the account the Exchange remote PowerShell endpoint accepts: the
/// host's own, unless one is given.
pub fn with_account(config: &SimConfig, mut options: HostOptions) -> HostOptions {
    options
        .account
        .get_or_insert_with(|| crate::pshost::Account {
            user: config.account(),
            password: config.password.clone(),
            dns_domain: config.dns_domain.clone(),
        });
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_lines_as_windows_runs_them() {
        let inv = exctl_pwsh::runner::invocation("Write-Output hi");
        let cl = parse_command_line(&inv.arguments).unwrap();
        assert_eq!(
            cl.source,
            ScriptSource::Encoded(exctl_pwsh::runner::BOOTSTRAP.to_string())
        );
        assert!(cl.no_logo && cl.clixml_stderr());
        let cl = parse_command_line(&args(&["Write-Host", "hi"])).unwrap();
        assert_eq!(cl.source, ScriptSource::Command("Write-Host hi".into()));
        assert!(!cl.clixml_stderr());
        let cl = parse_command_line(&args(&["-nop", "-c", "Get-Date;", "exit", "2"])).unwrap();
        assert_eq!(cl.source, ScriptSource::Command("Get-Date; exit 2".into()));
        for stdin in [&["-"][..], &["-NoLogo", "-Command", "-"][..]] {
            assert_eq!(
                parse_command_line(&args(stdin)).unwrap().source,
                ScriptSource::Stdin
            );
        }
        assert_eq!(
            parse_command_line(&args(&["-NonInteractive"]))
                .unwrap()
                .source,
            ScriptSource::Interactive
        );
        let enc = exctl_pwsh::runner::encode_command("1+1");
        for flag in ["-e", "-ec", "-enc", "/EncodedCommand"] {
            let cl = parse_command_line(&args(&["-ep", "Bypass", flag, &enc])).unwrap();
            assert_eq!(cl.source, ScriptSource::Encoded("1+1".into()), "{flag}");
        }
        let cl = parse_command_line(&args(&["-OutputFormat", "xml", "-Command", "1"])).unwrap();
        assert!(cl.clixml_stderr());
        // An unknown parameter is the start of the command.
        assert_eq!(
            parse_command_line(&args(&["-Bogus", "x"])).unwrap().source,
            ScriptSource::Command("-Bogus x".into())
        );
    }

    #[test]
    fn bad_command_lines_have_powershells_messages() {
        let e = parse_command_line(&args(&["-EncodedCommand", "not base64!"])).unwrap_err();
        assert!(e.0.contains("is not properly encoded"), "{e}");
        let e = parse_command_line(&args(&["-Command"])).unwrap_err();
        assert!(e.0.contains("A command must follow -Command"), "{e}");
        let e = parse_command_line(&args(&["-OutputFormat", "json"])).unwrap_err();
        assert!(e.0.contains("Valid arguments are 'Text' and 'XML'"), "{e}");
        let e = parse_command_line(&args(&["-File", "x.ps1"])).unwrap_err();
        assert!(e.0.contains("-File parameter does not exist"), "{e}");
    }

    #[test]
    fn clixml_escapes_round_trip_through_the_decoder() {
        let line = "a_x0041_b <&> \t\u{1} こんにちは";
        let doc = format!(
            "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"warning\">{}_x000D__x000A_</S></Objs>",
            clixml_escape(line)
        );
        let decoded = exctl_pwsh::clixml::decode_stderr(&doc).unwrap();
        assert_eq!(decoded.warnings, vec![line.to_string()]);
    }
}
