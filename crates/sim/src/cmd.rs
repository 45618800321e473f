//! The built-in executor: a small `cmd.exe` as WinRS runs it on Windows Server 2008 R2.
//!
//! WinRS (with `WINRS_SKIP_CMD_SHELL` false, the default) runs every command line through
//! `cmd.exe /c`, so a missing program is cmd's "is not recognized" on stderr with exit
//! code 1; with `WINRS_SKIP_CMD_SHELL` true, 2008 R2 calls CreateProcess itself and a
//! program that is not an absolute path fails the Command request with
//! ERROR_FILE_NOT_FOUND (test_winrs_no_cmd_shell.yml).
//!
//! cmd builtins covered: `echo` (CRLF, trailing spaces kept as cmd keeps them), `exit`
//! (`/b`), `set` (list), `ver`, `more` (copies stdin), and the operators `&`, `&&`, `||` with
//! the redirections `>nul`, `2>nul`, `>&2`, `1>&2`, `2>&1`. Programs (`hostname`,
//! `whoami`, `timeout /t N`, and whatever the next layer registers, such as
//! `powershell.exe`) live in a registry of [`Program`]s so they can be reached both
//! directly and through `cmd /c`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::codepage;
use crate::process::{
    Executor, Process, ProcessIo, ProcessRequest, Sink, StartError, spawn_process,
};

/// One program invocation: the program name as typed, its Windows-style parsed arguments
/// and the raw rest of the line (PowerShell wants the raw text).
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The program as typed (`powershell.exe`, `C:\Windows\system32\hostname.exe`).
    pub program: String,
    /// The arguments split as CommandLineToArgvW would.
    pub args: Vec<String>,
    /// The text after the program name, untouched.
    pub raw_args: String,
    /// The request that started the WinRS command (environment, user, code page...).
    pub request: Arc<ProcessRequest>,
}

/// A boxed exit-code future, so programs stay object safe.
pub type ExitFuture = Pin<Box<dyn Future<Output = u32> + Send + 'static>>;

/// An executable the simulated host has on its PATH.
pub trait Program: Send + Sync {
    /// Runs the program with the given streams; the output is its exit code.
    fn run(&self, invocation: Invocation, io: ProcessIo) -> ExitFuture;
}

impl<F> Program for F
where
    F: Fn(Invocation, ProcessIo) -> ExitFuture + Send + Sync,
{
    fn run(&self, invocation: Invocation, io: ProcessIo) -> ExitFuture {
        self(invocation, io)
    }
}

/// The executor of the simulated host: cmd.exe plus a registry of programs.
#[derive(Clone)]
pub struct CmdExecutor {
    computer_name: String,
    programs: HashMap<String, Arc<dyn Program>>,
}

impl std::fmt::Debug for CmdExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.programs.keys().collect();
        names.sort();
        f.debug_struct("CmdExecutor")
            .field("computer_name", &self.computer_name)
            .field("programs", &names)
            .finish()
    }
}

/// Program names are looked up without directory, without `.exe`, case-insensitively.
fn program_key(program: &str) -> String {
    let base = program.rsplit(['\\', '/']).next().unwrap_or(program);
    let lower = base.to_ascii_lowercase();
    lower
        .strip_suffix(".exe")
        .map(str::to_string)
        .unwrap_or(lower)
}

fn is_absolute_windows_path(program: &str) -> bool {
    let b = program.as_bytes();
    (b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || program.starts_with("\\\\")
}

impl CmdExecutor {
    /// A host named `computer_name` with `hostname`, `whoami`, `timeout` and a placeholder
    /// `powershell` that refuses to run.
    pub fn new(computer_name: impl Into<String>) -> Self {
        let computer_name = computer_name.into();
        let mut exec = CmdExecutor {
            computer_name: computer_name.clone(),
            programs: HashMap::new(),
        };
        let name = computer_name.clone();
        exec.register(
            "hostname",
            Arc::new(move |inv: Invocation, io: ProcessIo| -> ExitFuture {
                let line = codepage::encode(&format!("{name}\r\n"), inv.request.codepage);
                Box::pin(async move {
                    io.stdout(line).await;
                    0
                })
            }),
        );
        exec.register(
            "whoami",
            Arc::new(|inv: Invocation, io: ProcessIo| -> ExitFuture {
                let line = codepage::encode(
                    &format!("{}\r\n", inv.request.user.to_lowercase()),
                    inv.request.codepage,
                );
                Box::pin(async move {
                    io.stdout(line).await;
                    0
                })
            }),
        );
        exec.register("timeout", Arc::new(timeout_program));
        exec.register(
            "powershell",
            Arc::new(|_inv: Invocation, io: ProcessIo| -> ExitFuture {
                Box::pin(async move {
                    io.stderr(
                        "powershell.exe is not implemented by this simulator's cmd executor; \
                         use an executor that provides it.\r\n",
                    )
                    .await;
                    1
                })
            }),
        );
        exec
    }

    /// Adds or replaces a program (`name` without `.exe`, any case).
    pub fn register(&mut self, name: &str, program: Arc<dyn Program>) {
        self.programs.insert(program_key(name), program);
    }

    /// Whether `program` (as typed) names a registered program or cmd itself.
    fn knows(&self, program: &str) -> bool {
        let key = program_key(program);
        key == "cmd" || self.programs.contains_key(&key)
    }
}

/// `timeout /t N [/nobreak]`: waits N seconds and prints nothing. It is how tests make a
/// command outlive an OperationTimeout.
fn timeout_program(inv: Invocation, io: ProcessIo) -> ExitFuture {
    let mut secs = None;
    let mut args = inv.args.iter();
    while let Some(a) = args.next() {
        if a.eq_ignore_ascii_case("/t") {
            secs = args.next().and_then(|n| n.parse::<i64>().ok());
        }
    }
    Box::pin(async move {
        match secs {
            Some(n) if (-1..=99999).contains(&n) => {
                if n > 0 {
                    tokio::time::sleep(Duration::from_secs(n as u64)).await;
                }
                0
            }
            _ => {
                io.stderr("ERROR: Invalid syntax. Default option is not allowed more than '1' time(s).\r\nType \"TIMEOUT /?\" for usage.\r\n").await;
                1
            }
        }
    })
}

impl Executor for CmdExecutor {
    fn start(&self, request: ProcessRequest) -> Result<Box<dyn Process>, StartError> {
        let request = Arc::new(request);
        let line = request.command_line();
        let (program, raw_args) = split_program(&line);
        if request.skip_cmd_shell {
            // 2008 R2 resolves nothing itself: a bare name is not found, nor is an absolute
            // path to a program this host does not have.
            if program.is_empty() || !is_absolute_windows_path(&program) || !self.knows(&program) {
                return Err(StartError::file_not_found());
            }
            let exec = self.clone();
            return Ok(spawn_process(move |io| async move {
                exec.run_program(&program, &raw_args, request, io).await
            }));
        }
        // Through cmd.exe /c: the whole line is a cmd line.
        let exec = self.clone();
        Ok(spawn_process(move |io| async move {
            exec.run_line(&line, request, io).await
        }))
    }
}

impl CmdExecutor {
    /// Runs a program found by name (not a cmd builtin).
    fn run_program<'a>(
        &'a self,
        program: &'a str,
        raw_args: &'a str,
        request: Arc<ProcessRequest>,
        io: ProcessIo,
    ) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>> {
        Box::pin(async move {
            let key = program_key(program);
            if key == "cmd" {
                return self.run_cmd(raw_args, request, io).await;
            }
            match self.programs.get(&key) {
                Some(p) => {
                    let invocation = Invocation {
                        program: program.to_string(),
                        args: split_args(raw_args),
                        raw_args: raw_args.to_string(),
                        request,
                    };
                    p.run(invocation, io).await
                }
                None => {
                    let message = format!(
                        "'{program}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
                    );
                    io.stderr(codepage::encode(&message, request.codepage))
                        .await;
                    1
                }
            }
        })
    }

    /// `cmd.exe [/q] [/d] [/c|/k] line`: runs the line; without /c there is nothing to do
    /// because WinRS gives cmd no console to prompt on, so it just exits.
    async fn run_cmd(&self, raw_args: &str, request: Arc<ProcessRequest>, io: ProcessIo) -> u32 {
        let mut rest = raw_args.trim_start();
        loop {
            let lower = rest.get(..2).map(|s| s.to_ascii_lowercase());
            match lower.as_deref() {
                Some("/c") | Some("/k") | Some("/s") if rest.len() >= 2 => {
                    let is_s = lower.as_deref() == Some("/s");
                    rest = rest[2..].trim_start();
                    if !is_s {
                        break;
                    }
                }
                Some("/q") | Some("/d") | Some("/a") | Some("/u") => rest = rest[2..].trim_start(),
                _ => return 0,
            }
        }
        // cmd's quote rule: a line that starts with a quote loses that quote and the last one.
        let line: String = if let Some(inner) = rest.strip_prefix('"') {
            match inner.rfind('"') {
                Some(i) => format!("{}{}", &inner[..i], &inner[i + 1..]),
                None => inner.to_string(),
            }
        } else {
            rest.to_string()
        };
        self.run_line(&line, request, io).await
    }

    /// Runs one cmd line with its operators; the result is the last command's errorlevel,
    /// or the code given to `exit`.
    fn run_line<'a>(
        &'a self,
        line: &'a str,
        request: Arc<ProcessRequest>,
        io: ProcessIo,
    ) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>> {
        Box::pin(async move {
            let mut level = 0u32;
            let mut run_next = true;
            for (segment, op_after) in split_operators(line) {
                if run_next {
                    match self.run_simple(&segment, request.clone(), io.clone()).await {
                        Outcome::Level(l) => level = l,
                        Outcome::Exit(code) => return code,
                    }
                }
                run_next = match op_after {
                    Some(Op::And) => level == 0,
                    Some(Op::Or) => level != 0,
                    Some(Op::Seq) | None => true,
                };
            }
            level
        })
    }

    async fn run_simple(
        &self,
        segment: &str,
        request: Arc<ProcessRequest>,
        io: ProcessIo,
    ) -> Outcome {
        let (text, stdout_to, stderr_to) = parse_redirections(segment);
        let io = io.redirected(stdout_to, stderr_to);
        let trimmed = text.trim_start();
        if trimmed.trim().is_empty() {
            return Outcome::Level(0);
        }
        // echo keeps everything after "echo " verbatim, trailing spaces included.
        let word_end = trimmed
            .find(|c: char| c.is_whitespace() || c == '.' || c == '"')
            .unwrap_or(trimmed.len());
        let word = &trimmed[..word_end];
        let after = &trimmed[word_end..];
        match word.to_ascii_lowercase().as_str() {
            "echo" => {
                let out = if let Some(rest) = after.strip_prefix('.') {
                    format!("{rest}\r\n")
                } else if after.trim().is_empty() {
                    "ECHO is on.\r\n".to_string()
                } else {
                    // Drop the one separator after "echo" (which may be any whitespace).
                    let text = after.char_indices().nth(1).map_or("", |(i, _)| &after[i..]);
                    format!("{text}\r\n")
                };
                io.stdout(codepage::encode(&out, request.codepage)).await;
                Outcome::Level(0)
            }
            "exit" => {
                let args = split_args(after);
                let mut it = args.iter().peekable();
                let is_b = it.peek().is_some_and(|a| a.eq_ignore_ascii_case("/b"));
                if is_b {
                    it.next();
                }
                let code = it
                    .next()
                    .and_then(|n| n.parse::<i64>().ok())
                    .map(|n| n as u32)
                    .unwrap_or(0);
                // With or without /b, under `cmd /c` the process ends with that code.
                Outcome::Exit(code)
            }
            "ver" => {
                io.stdout("\r\nMicrosoft Windows [Version 6.1.7601]\r\n")
                    .await;
                Outcome::Level(0)
            }
            "set" if after.trim().is_empty() => {
                let mut out = String::new();
                for (k, v) in self.environment(&request) {
                    out.push_str(&format!("{k}={v}\r\n"));
                }
                io.stdout(codepage::encode(&out, request.codepage)).await;
                Outcome::Level(0)
            }
            "more" => {
                while let Some(chunk) = io.read_stdin().await {
                    io.stdout(chunk).await;
                }
                Outcome::Level(0)
            }
            _ => {
                // The raw rest keeps its trailing spaces: a nested `cmd /c echo x ` echoes them.
                let (program, raw_args) = split_program(trimmed);
                Outcome::Level(self.run_program(&program, &raw_args, request, io).await)
            }
        }
    }

    /// The environment `set` shows: a plain 2008 R2 session plus the shell's variables,
    /// sorted as cmd sorts them (case-insensitively).
    fn environment(&self, request: &ProcessRequest) -> Vec<(String, String)> {
        let user = request
            .user
            .rsplit('\\')
            .next()
            .unwrap_or(&request.user)
            .to_string();
        let domain = request.user.split('\\').next().unwrap_or("").to_string();
        let mut env: Vec<(String, String)> = vec![
            ("ALLUSERSPROFILE", "C:\\ProgramData".to_string()),
            ("APPDATA", format!("C:\\Users\\{user}\\AppData\\Roaming")),
            ("CommonProgramFiles", "C:\\Program Files\\Common Files".to_string()),
            ("COMPUTERNAME", self.computer_name.clone()),
            ("ComSpec", "C:\\Windows\\system32\\cmd.exe".to_string()),
            ("LOCALAPPDATA", format!("C:\\Users\\{user}\\AppData\\Local")),
            ("NUMBER_OF_PROCESSORS", "2".to_string()),
            ("OS", "Windows_NT".to_string()),
            ("Path", "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\".to_string()),
            ("PATHEXT", ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC".to_string()),
            ("PROCESSOR_ARCHITECTURE", "AMD64".to_string()),
            ("ProgramData", "C:\\ProgramData".to_string()),
            ("ProgramFiles", "C:\\Program Files".to_string()),
            ("PROMPT", "$P$G".to_string()),
            ("PUBLIC", "C:\\Users\\Public".to_string()),
            ("SystemDrive", "C:".to_string()),
            ("SystemRoot", "C:\\Windows".to_string()),
            ("TEMP", format!("C:\\Users\\{user}\\AppData\\Local\\Temp")),
            ("TMP", format!("C:\\Users\\{user}\\AppData\\Local\\Temp")),
            ("USERDOMAIN", domain),
            ("USERNAME", user.clone()),
            ("USERPROFILE", format!("C:\\Users\\{user}")),
            ("windir", "C:\\Windows".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in &request.environment {
            env.retain(|(ek, _)| !ek.eq_ignore_ascii_case(k));
            env.push((k.clone(), v.clone()));
        }
        env.sort_by_key(|(k, _)| k.to_ascii_uppercase());
        env
    }
}

enum Outcome {
    Level(u32),
    Exit(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Seq,
    And,
    Or,
}

/// Splits a cmd line at `&`, `&&`, `||` outside double quotes. `>&2` and `2>&1` are
/// redirections, not operators, so an `&` right after `>` stays in its segment.
fn split_operators(line: &str) -> Vec<(String, Option<Op>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            '^' if !in_quotes && i + 1 < chars.len() => {
                cur.push(chars[i + 1]);
                i += 1;
            }
            '&' if !in_quotes && !cur.ends_with('>') => {
                let op = if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                    Op::And
                } else {
                    Op::Seq
                };
                out.push((std::mem::take(&mut cur), Some(op)));
            }
            '|' if !in_quotes && chars.get(i + 1) == Some(&'|') => {
                i += 1;
                out.push((std::mem::take(&mut cur), Some(Op::Or)));
            }
            _ => cur.push(c),
        }
        i += 1;
    }
    out.push((cur, None));
    out
}

/// Removes the redirections of one simple command and says where its streams go.
fn parse_redirections(segment: &str) -> (String, Sink, Sink) {
    let mut text = segment.to_string();
    let mut stdout_to = Sink::Stdout;
    let mut stderr_to = Sink::Stderr;
    // Longest patterns first so that "2>&1" is not read as "2" + ">&1".
    let patterns: [(&str, u8, Sink); 7] = [
        ("2>&1", 2, Sink::Stdout),
        ("1>&2", 1, Sink::Stderr),
        ("2>nul", 2, Sink::Null),
        ("1>nul", 1, Sink::Null),
        (">&2", 1, Sink::Stderr),
        (">nul", 1, Sink::Null),
        (">&1", 1, Sink::Stdout),
    ];
    loop {
        let lower = text.to_ascii_lowercase();
        let found = patterns
            .iter()
            .filter_map(|(p, fd, sink)| lower.find(p).map(|at| (at, p.len(), *fd, *sink)))
            .min_by_key(|(at, len, _, _)| (*at, usize::MAX - len));
        match found {
            Some((at, len, fd, sink)) => {
                text.replace_range(at..at + len, "");
                if fd == 1 {
                    stdout_to = sink;
                } else {
                    stderr_to = sink;
                }
            }
            None => break,
        }
    }
    (text, stdout_to, stderr_to)
}

/// The program (first word, quotes removed) and the raw rest of a command line.
fn split_program(line: &str) -> (String, String) {
    let line = line.trim_start();
    if let Some(rest) = line.strip_prefix('"') {
        match rest.find('"') {
            Some(end) => (rest[..end].to_string(), rest[end + 1..].to_string()),
            None => (rest.to_string(), String::new()),
        }
    } else {
        let end = line.find(char::is_whitespace).unwrap_or(line.len());
        (line[..end].to_string(), line[end..].to_string())
    }
}

/// Splits arguments as CommandLineToArgvW does (quotes group; `\"` is a literal quote).
pub fn split_args(raw: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut in_quotes = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
                have = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                have = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if have {
                    args.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        args.push(cur);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::ProcessEvent;

    fn request(command: &str, args: &[&str]) -> ProcessRequest {
        ProcessRequest {
            command: command.to_string(),
            arguments: args.iter().map(|s| s.to_string()).collect(),
            codepage: 437,
            environment: vec![("env1".into(), "var1".into())],
            working_directory: None,
            user: "CONTOSO\\admin".to_string(),
            skip_cmd_shell: false,
            no_profile: false,
        }
    }

    async fn run(req: ProcessRequest) -> (String, String, u32) {
        let p = CmdExecutor::new("EXCH01").start(req).expect("starts");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match p.next_event().await {
                Some(ProcessEvent::Stdout(b)) => out.extend_from_slice(&b),
                Some(ProcessEvent::Stderr(b)) => err.extend_from_slice(&b),
                Some(ProcessEvent::Exit(c)) => {
                    return (
                        String::from_utf8(out).unwrap(),
                        String::from_utf8(err).unwrap(),
                        c,
                    );
                }
                None => panic!("process vanished"),
            }
        }
    }

    #[tokio::test]
    async fn echo_as_separate_arguments_and_as_one_line() {
        assert_eq!(
            run(request("cmd.exe", &["/c", "echo", "hi"])).await,
            ("hi\r\n".into(), "".into(), 0)
        );
        assert_eq!(
            run(request("cmd.exe /c echo hi", &[])).await,
            ("hi\r\n".into(), "".into(), 0)
        );
    }

    #[tokio::test]
    async fn stderr_and_exit_code_like_the_stderr_rc_recording() {
        // test_winrs_stderr_rc.yml: stdout "out \r\n", stderr "err \r\n", exit 1.
        let got = run(request(
            "cmd.exe",
            &["/c echo out && echo err>&2 && exit 1"],
        ))
        .await;
        assert_eq!(got, ("out \r\n".into(), "err \r\n".into(), 1));
    }

    #[tokio::test]
    async fn quoted_line_and_exit_b() {
        let got = run(request("cmd", &["/c", "\"echo a & exit /b 3\""])).await;
        assert_eq!(got, ("a \r\n".into(), "".into(), 3));
    }

    #[tokio::test]
    async fn unknown_program_through_cmd() {
        let got = run(request("nosuch.exe", &["x"])).await;
        assert_eq!(
            got,
            (
                "".into(),
                "'nosuch.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n".into(),
                1
            )
        );
    }

    #[tokio::test]
    async fn skip_cmd_shell_needs_an_absolute_known_program() {
        let exec = CmdExecutor::new("EXCH01");
        let mut req = request("powershell.exe", &["Write-Host", "hi"]);
        req.skip_cmd_shell = true;
        assert_eq!(
            exec.start(req.clone()).err(),
            Some(StartError::file_not_found())
        );
        req.command = "C:\\Windows\\system32\\hostname.exe".into();
        req.arguments.clear();
        assert!(exec.start(req).is_ok());
    }

    #[tokio::test]
    async fn hostname_set_and_or() {
        assert_eq!(
            run(request("hostname", &[])).await,
            ("EXCH01\r\n".into(), "".into(), 0)
        );
        let (out, _, _) = run(request("cmd.exe", &["/c", "set"])).await;
        assert!(out.contains("COMPUTERNAME=EXCH01\r\n"));
        assert!(out.contains("env1=var1\r\n"));
        let got = run(request("cmd.exe", &["/c", "nosuch 2>nul || echo fallback"])).await;
        assert_eq!(got, ("fallback\r\n".into(), "".into(), 0));
    }

    #[tokio::test]
    async fn output_follows_the_shell_code_page() {
        let mut req = request("cmd.exe", &["/c", "echo", "é"]);
        let p = CmdExecutor::new("EXCH01").start(req.clone()).unwrap();
        assert_eq!(
            p.next_event().await,
            Some(ProcessEvent::Stdout(bytes::Bytes::from_static(b"\x82\r\n")))
        );
        req.codepage = 65001;
        assert_eq!(run(req).await.0, "é\r\n");
    }

    #[tokio::test]
    async fn echo_after_a_wide_space_does_not_split_a_character() {
        let got = run(request("cmd.exe", &["/c echo\u{3000}x"])).await;
        assert_eq!(got, ("x\r\n".into(), "".into(), 0));
    }

    #[test]
    fn args_split_like_windows() {
        assert_eq!(
            split_args(r#"-Command "Write-Host \"hi\"" x"#),
            vec!["-Command", "Write-Host \"hi\"", "x"]
        );
    }
}
