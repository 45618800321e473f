//! Doctor's IMAP4 probe: the greeting, and a real `AUTHENTICATE PLAIN` as the agent
//! desktops log in (RFC 3501 §6.2.2 with the PLAIN mechanism of RFC 4616).
//!
//! The protocol is [`PlainLogin`], a small state machine fed the server's lines and
//! answering with what to send; it knows no socket, so every answer a server may give is
//! tested without one. [`greeting`] and [`login`] drive it over TCP with a deadline per
//! line and a bound on line length (a server that sends endless bytes is cut off).

use std::time::Duration;

use base64::Engine as _;
use exctl_secret::Secret;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// How the IMAP login went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Authenticated.
    Accepted,
    /// The server said no (its tagged answer).
    Refused(String),
    /// No answer to judge (connection, greeting, timeout).
    Error(String),
}

/// What the probe does after a server line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this (with its CRLF) and read the next line. Zeroized when dropped: the
    /// AUTHENTICATE PLAIN answer is the password, merely base64-encoded.
    Send(Zeroizing<String>),
    /// Read the next line.
    Read,
    /// Done: the outcome, and what to send before closing (the LOGOUT), if anything.
    Done(LoginOutcome, Option<String>),
}

/// Where the login is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Continuation,
    Tagged { untagged: u8 },
}

/// Untagged lines tolerated before the tagged answer (a capability list, an alert).
const MAX_UNTAGGED: u8 = 16;

/// `AUTHENTICATE PLAIN` of one account, line by line (see the module docs).
pub struct PlainLogin {
    account: String,
    password: Secret,
    state: State,
}

impl PlainLogin {
    /// A login of `account` with `password`.
    pub fn new(account: impl Into<String>, password: Secret) -> Self {
        PlainLogin {
            account: account.into(),
            password,
            state: State::Greeting,
        }
    }

    /// The next step after the server's `line` (without its line end).
    pub fn on_line(&mut self, line: &str) -> Step {
        match self.state {
            State::Greeting if line.starts_with("* OK") => {
                self.state = State::Continuation;
                Step::Send(Zeroizing::new("x1 AUTHENTICATE PLAIN".into()))
            }
            State::Greeting => Step::Done(
                LoginOutcome::Error(format!("unexpected greeting: {line}")),
                None,
            ),
            State::Continuation if line.starts_with('+') => {
                self.state = State::Tagged { untagged: 0 };
                let login =
                    Zeroizing::new(format!("\0{}\0{}", self.account, self.password.expose()));
                Step::Send(Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(login.as_bytes()),
                ))
            }
            State::Continuation => Step::Done(LoginOutcome::Refused(line.to_string()), None),
            State::Tagged { .. } if line.starts_with("x1 OK") => {
                Step::Done(LoginOutcome::Accepted, Some("x2 LOGOUT".into()))
            }
            State::Tagged { .. } if line.starts_with("x1 ") => {
                Step::Done(LoginOutcome::Refused(line.to_string()), None)
            }
            State::Tagged { untagged } if untagged < MAX_UNTAGGED => {
                self.state = State::Tagged {
                    untagged: untagged + 1,
                };
                Step::Read
            }
            State::Tagged { .. } => Step::Done(
                LoginOutcome::Error("no answer to AUTHENTICATE".into()),
                None,
            ),
        }
    }
}

/// A TCP connection to `addr` within `timeout`, or why not (in words for doctor's report).
pub(crate) async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {addr}: no answer within {} s",
            timeout.as_secs()
        )),
    }
}

async fn read_line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    timeout: Duration,
) -> Result<String, String> {
    let mut line = String::new();
    // A line, bounded: a server that sends endless bytes without a line end is cut.
    let mut limited = tokio::io::AsyncReadExt::take(&mut *r, 8 * 1024);
    match tokio::time::timeout(timeout, limited.read_line(&mut line)).await {
        Ok(Ok(0)) => Err("the server closed the connection".into()),
        Ok(Ok(_)) => Ok(line.trim_end().to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// Connects to an IMAP port and reads the greeting (`* OK ...`).
pub async fn greeting(addr: &str, timeout: Duration) -> Result<String, String> {
    let s = connect(addr, timeout).await?;
    let (r, _w) = s.into_split();
    let mut r = BufReader::new(r);
    read_line(&mut r, timeout)
        .await
        .map_err(|e| format!("connected to {addr}, but no greeting: {e}"))
}

/// Logs `account` in on a plain IMAP port with `AUTHENTICATE PLAIN`, then logs out.
pub async fn login(
    addr: &str,
    account: &str,
    password: &Secret,
    timeout: Duration,
) -> LoginOutcome {
    let s = match connect(addr, timeout).await {
        Ok(s) => s,
        Err(e) => return LoginOutcome::Error(e),
    };
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut probe = PlainLogin::new(account, password.clone());
    let mut greeted = false;
    loop {
        let line = match read_line(&mut r, timeout).await {
            Ok(l) => l,
            Err(e) if !greeted => return LoginOutcome::Error(format!("no greeting: {e}")),
            Err(e) => return LoginOutcome::Error(e),
        };
        greeted = true;
        match probe.on_line(&line) {
            Step::Send(text) => {
                let line = Zeroizing::new(format!("{}\r\n", text.as_str()));
                if w.write_all(line.as_bytes()).await.is_err() {
                    return LoginOutcome::Error("the connection closed".into());
                }
            }
            Step::Read => {}
            Step::Done(outcome, last) => {
                if let Some(text) = last {
                    let _ = w.write_all(format!("{text}\r\n").as_bytes()).await;
                }
                return outcome;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> PlainLogin {
        PlainLogin::new("uccx-agent", Secret::new("pw".to_string()))
    }

    #[test]
    fn a_login_that_succeeds_logs_out() {
        let mut p = probe();
        assert_eq!(
            p.on_line("* OK The Microsoft Exchange IMAP4 service is ready."),
            Step::Send(Zeroizing::new("x1 AUTHENTICATE PLAIN".into()))
        );
        // "\0uccx-agent\0pw", base64.
        assert_eq!(
            p.on_line("+ "),
            Step::Send(Zeroizing::new("AHVjY3gtYWdlbnQAcHc=".into()))
        );
        assert_eq!(p.on_line("* CAPABILITY IMAP4rev1"), Step::Read);
        assert_eq!(
            p.on_line("x1 OK AUTHENTICATE completed."),
            Step::Done(LoginOutcome::Accepted, Some("x2 LOGOUT".into()))
        );
    }

    #[test]
    fn refusals_and_odd_servers_are_told_apart() {
        let mut p = probe();
        p.on_line("* OK ready");
        p.on_line("+");
        assert_eq!(
            p.on_line("x1 NO AUTHENTICATE failed."),
            Step::Done(
                LoginOutcome::Refused("x1 NO AUTHENTICATE failed.".into()),
                None
            )
        );
        let mut p = probe();
        assert!(matches!(
            p.on_line("* BYE too many connections"),
            Step::Done(LoginOutcome::Error(_), None)
        ));
        let mut p = probe();
        p.on_line("* OK ready");
        assert_eq!(
            p.on_line("x1 BAD unknown mechanism"),
            Step::Done(
                LoginOutcome::Refused("x1 BAD unknown mechanism".into()),
                None
            )
        );
        // A server that never answers the tag is cut off.
        let mut p = probe();
        p.on_line("* OK ready");
        p.on_line("+");
        let mut last = Step::Read;
        for _ in 0..=MAX_UNTAGGED {
            last = p.on_line("* noise");
        }
        assert!(matches!(last, Step::Done(LoginOutcome::Error(_), None)));
    }
}
