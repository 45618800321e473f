//! The processes behind WinRS commands: the [`Executor`] and [`Process`] traits the shell
//! layer drives, and [`spawn_process`], a channel-backed implementation that executors
//! (the built-in `cmd.exe`, and later the PowerShell interpreter) build on.
//!
//! The shell layer never blocks on a process: it pushes stdin chunks without waiting and
//! pulls output events one at a time, only as many as fit in one ReceiveResponse. The
//! output channel is bounded, so a command that writes 20 MB waits for the client's
//! Receives instead of being buffered whole, and a command may run far longer than any
//! OperationTimeout (the client then sees `w:TimedOut` and receives again).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};
use tokio::task::AbortHandle;

/// What the shell asks an executor to start: the fields of a WinRS Command plus the shell's
/// settings, as Windows' `winrscmd.dll` would hand them to CreateProcess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRequest {
    /// `rsp:Command`, verbatim. It may be a whole command line (`cmd.exe /c echo hi`) when
    /// the client sent no `rsp:Arguments`.
    pub command: String,
    /// Each `rsp:Arguments`, verbatim, in order.
    pub arguments: Vec<String>,
    /// The shell's `WINRS_CODEPAGE` (437 when the client did not say).
    pub codepage: u32,
    /// The shell's `rsp:Environment` variables, in the order sent.
    pub environment: Vec<(String, String)>,
    /// The shell's `rsp:WorkingDirectory`.
    pub working_directory: Option<String>,
    /// The authenticated account, `DOMAIN\user`.
    pub user: String,
    /// `WINRS_SKIP_CMD_SHELL` on the Command: run the program directly instead of through
    /// `cmd.exe /c`, which changes how a missing program is reported.
    pub skip_cmd_shell: bool,
    /// `WINRS_NOPROFILE` on the shell.
    pub no_profile: bool,
}

impl ProcessRequest {
    /// The command line as WinRS builds it: the command followed by each argument,
    /// separated by single spaces (WinRS does no quoting of its own).
    pub fn command_line(&self) -> String {
        let mut line = self.command.clone();
        for arg in &self.arguments {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }
}

/// Something a running process produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// Bytes written to stdout, already in the shell's code page.
    Stdout(Bytes),
    /// Bytes written to stderr.
    Stderr(Bytes),
    /// The process ended with this exit code (a Windows DWORD).
    Exit(u32),
}

/// Why a process could not be started. Windows reports this as a fault on the Command
/// request itself (test_winrs_no_cmd_shell.yml: HRESULT 2147942402, "The system cannot
/// find the file specified.").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (0x{code:08X})")]
pub struct StartError {
    /// The HRESULT-wrapped Win32 error put in `f:WSManFault/@Code`.
    pub code: u32,
    /// The Win32 message text, with the trailing space Windows leaves in it.
    pub message: String,
}

impl StartError {
    /// ERROR_FILE_NOT_FOUND as an HRESULT: the program does not exist.
    pub fn file_not_found() -> Self {
        StartError {
            code: 0x8007_0002,
            message: "The system cannot find the file specified. ".to_string(),
        }
    }
}

/// The process has exited or was killed; stdin can no longer be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the process is no longer reading stdin")]
pub struct ProcessGone;

/// A boxed future, so that [`Process`] stays object safe without `async_trait`.
pub type EventFuture<'a> = Pin<Box<dyn Future<Output = Option<ProcessEvent>> + Send + 'a>>;

/// A running process as the shell layer sees it. All methods take `&self` so that a Send
/// can be delivered while a Receive is waiting for output (Windows allows both at once).
pub trait Process: Send + Sync {
    /// Delivers one stdin chunk; `end` closes stdin. Must not block.
    fn send_stdin(&self, data: Bytes, end: bool) -> Result<(), ProcessGone>;
    /// The next output event, or `None` once the process has gone without an exit code
    /// (killed, or its task failed). Must be cancel-safe: a Receive that times out drops
    /// this future and asks again later without losing output.
    fn next_event(&self) -> EventFuture<'_>;
    /// Ends the process now (Signal terminate / ctrl_c, shell Delete).
    fn kill(&self);
}

/// Starts processes for WinRS commands. The simulator holds one executor; the Exchange
/// layer later wraps the built-in one to add `powershell.exe`.
pub trait Executor: Send + Sync {
    /// Starts the process, or says why it cannot be started.
    fn start(&self, request: ProcessRequest) -> Result<Box<dyn Process>, StartError>;
}

/// How many output events may wait unread before the process is made to wait: enough to
/// keep a fast producer busy, small enough that a large output is never held whole.
const OUTPUT_QUEUE: usize = 16;

/// Where a process's stdout or stderr goes: `cmd.exe` redirections (`>nul`, `>&2`, `2>&1`)
/// re-point them for one command of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The command's stdout stream.
    Stdout,
    /// The command's stderr stream.
    Stderr,
    /// Discarded (`>nul`).
    Null,
}

struct StdinState {
    rx: mpsc::UnboundedReceiver<Bytes>,
    done: bool,
}

/// The process side of a [`spawn_process`] process: its stdin, stdout and stderr. Cheap to
/// clone, so that a shell can hand it to the programs it runs with their own redirections.
#[derive(Clone)]
pub struct ProcessIo {
    stdin: std::sync::Arc<Mutex<StdinState>>,
    output: mpsc::Sender<ProcessEvent>,
    stdout_to: Sink,
    stderr_to: Sink,
}

impl ProcessIo {
    /// The same streams with stdout and stderr re-pointed.
    pub fn redirected(&self, stdout_to: Sink, stderr_to: Sink) -> ProcessIo {
        let map = |s: Sink| match s {
            Sink::Stdout => self.stdout_to,
            Sink::Stderr => self.stderr_to,
            Sink::Null => Sink::Null,
        };
        ProcessIo {
            stdin: self.stdin.clone(),
            output: self.output.clone(),
            stdout_to: map(stdout_to),
            stderr_to: map(stderr_to),
        }
    }

    async fn write(&self, sink: Sink, data: Bytes) {
        let event = match sink {
            _ if data.is_empty() => return,
            Sink::Stdout => ProcessEvent::Stdout(data),
            Sink::Stderr => ProcessEvent::Stderr(data),
            Sink::Null => return,
        };
        // A send error means the command was deleted: nobody reads any more.
        let _ = self.output.send(event).await;
    }

    /// Writes to stdout, waiting while the client has not received earlier output.
    pub async fn stdout(&self, data: impl Into<Bytes>) {
        self.write(self.stdout_to, data.into()).await;
    }

    /// Writes to stderr, waiting while the client has not received earlier output.
    pub async fn stderr(&self, data: impl Into<Bytes>) {
        self.write(self.stderr_to, data.into()).await;
    }

    /// The next stdin chunk, or `None` once the client sent `End="true"` (or went away).
    pub async fn read_stdin(&self) -> Option<Bytes> {
        let mut stdin = self.stdin.lock().await;
        if stdin.done {
            return None;
        }
        match stdin.rx.recv().await {
            // An empty chunk is the End marker (see ChannelProcess::send_stdin).
            Some(chunk) if !chunk.is_empty() => Some(chunk),
            _ => {
                stdin.done = true;
                None
            }
        }
    }

    /// All of stdin up to End, concatenated.
    pub async fn read_all_stdin(&self) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(chunk) = self.read_stdin().await {
            all.extend_from_slice(&chunk);
        }
        all
    }
}

struct ChannelProcess {
    stdin: mpsc::UnboundedSender<Bytes>,
    events: Mutex<mpsc::Receiver<ProcessEvent>>,
    task: AbortHandle,
}

impl Process for ChannelProcess {
    fn send_stdin(&self, data: Bytes, end: bool) -> Result<(), ProcessGone> {
        if !data.is_empty() {
            self.stdin.send(data).map_err(|_| ProcessGone)?;
        }
        if end {
            // The empty chunk marks End; real chunks are never empty (filtered above).
            self.stdin.send(Bytes::new()).map_err(|_| ProcessGone)?;
        }
        Ok(())
    }

    fn next_event(&self) -> EventFuture<'_> {
        Box::pin(async move { self.events.lock().await.recv().await })
    }

    fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for ChannelProcess {
    fn drop(&mut self) {
        // A deleted shell or command must not leave its process running.
        self.task.abort();
    }
}

/// Runs `body` as a process on the current tokio runtime. The future's output is the exit
/// code. Killing the process drops the future at its next await point.
pub fn spawn_process<F, Fut>(body: F) -> Box<dyn Process>
where
    F: FnOnce(ProcessIo) -> Fut,
    Fut: Future<Output = u32> + Send + 'static,
{
    let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel(OUTPUT_QUEUE);
    let io = ProcessIo {
        stdin: std::sync::Arc::new(Mutex::new(StdinState {
            rx: stdin_rx,
            done: false,
        })),
        output: out_tx.clone(),
        stdout_to: Sink::Stdout,
        stderr_to: Sink::Stderr,
    };
    let fut = body(io);
    let task = tokio::spawn(async move {
        let code = fut.await;
        let _ = out_tx.send(ProcessEvent::Exit(code)).await;
    });
    Box::new(ChannelProcess {
        stdin: stdin_tx,
        events: Mutex::new(out_rx),
        task: task.abort_handle(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdin_reaches_the_process_and_exit_follows_output() {
        let p = spawn_process(|io| async move {
            let input = io.read_all_stdin().await;
            io.stdout(input).await;
            7
        });
        p.send_stdin(Bytes::from_static(b"ab"), false).unwrap();
        p.send_stdin(Bytes::from_static(b"c"), true).unwrap();
        assert_eq!(
            p.next_event().await,
            Some(ProcessEvent::Stdout(Bytes::from_static(b"abc")))
        );
        assert_eq!(p.next_event().await, Some(ProcessEvent::Exit(7)));
        assert_eq!(p.next_event().await, None);
    }

    #[tokio::test]
    async fn kill_ends_a_process_that_never_finishes() {
        let p = spawn_process(|_io| async move {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            0
        });
        p.kill();
        assert_eq!(p.next_event().await, None);
    }
}
