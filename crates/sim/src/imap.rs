//! The simulated MSExchangeIMAP4 listener: enough IMAP4rev1 for a client to connect,
//! authenticate and open its inbox, enforcing the limits behind the UCCX seed incident
//! with the model's EFFECTIVE values (those in force after the last restarts).
//!
//! Greeting: `* OK <Banner>` (by default "The Microsoft Exchange IMAP4 service is
//! ready."). Commands: CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE PLAIN (initial
//! response on the command line, or after the `+ ` continuation), SELECT/EXAMINE INBOX.
//! Unknown commands get `BAD Command Error. 10`, commands in the wrong state
//! `BAD Command received in Invalid state.`.
//!
//! A login is checked, in order: the credentials (the simulator's mailbox passwords),
//! the store being up, then the counts of authenticated sessions against
//! MaxConnections (this server), MaxConnectionFromSingleIP (every test client comes from
//! 127.0.0.1, so this counts all of them), MaxConnectionsPerUser, the account's
//! IMAPMaxConcurrency (its policy, else the default policy; `$null` = no limit; cached
//! per user until MSExchangeIMAP4 restarts), and last the store's "Maximum Allowed
//! Service Sessions Per User" as MSExchangeIS loaded it (default 16), whose refusal also
//! logs event 9646. With all defaults the per-user IMAP limit (16) refuses first; once
//! the IMAP limits are raised, the store's 16 still refuses and logs 9646 (KB 980049:
//! MaxConnectionsPerUser does not raise the store limit). Every refusal answers
//! `NO AUTHENTICATE failed.` or `NO LOGIN failed.`, as the Cisco UCCX document shows.
//!
//! While MSExchangeIMAP4 is stopped or restarting, a new connection is accepted and
//! closed at once without a greeting (the simulator keeps its port bound), and a restart
//! (of MSExchangeIMAP4, or of MSExchangeIS whose sessions the IMAP sessions use) drops
//! every existing connection.
//!
//! Not modelled: STARTTLS/SSL, NTLM/GSSAPI, LoginType (plain LOGIN is always allowed, and
//! CAPABILITY advertises AUTH=PLAIN only), idle timeouts, and mailbox content.
//!
//! Bounds: loopback only; lines longer than [`MAX_LINE`] close the connection; at most
//! [`MAX_SOCKETS`] connections are open at once (more are closed on accept).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::exchange::OrgHandle;

/// The longest command line accepted (Exchange's own MaxCommandSize is far smaller;
/// this only bounds memory).
pub const MAX_LINE: usize = 8 * 1024;
/// The most connections open at once.
pub const MAX_SOCKETS: usize = 4096;
/// How often the listener looks at the model for restarts (real time).
const POLL: Duration = Duration::from_millis(10);

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// Not a loopback address.
    #[error("refusing to listen on {0}: the IMAP listener binds loopback addresses only")]
    NotLoopback(SocketAddr),
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model has no Client Access server to serve.
    #[error("the organization has no Client Access server")]
    NoServer,
}

/// A running listener; dropping it stops accepting and closes every connection.
pub struct ImapHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ImapHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl ImapHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for ImapHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves IMAP for the model's host server (its `host`, or the first Client Access
/// server) on `addr`. Time comes from the model's clock.
pub async fn serve_imap(addr: SocketAddr, org: OrgHandle) -> Result<ImapHandle, ImapError> {
    let server = {
        let o = org.lock();
        let host = o.host.clone();
        o.servers
            .iter()
            .find(|s| {
                s.name.eq_ignore_ascii_case(&host) && s.roles.iter().any(|r| r == "ClientAccess")
            })
            .or_else(|| {
                o.servers
                    .iter()
                    .find(|s| s.roles.iter().any(|r| r == "ClientAccess"))
            })
            .map(|s| s.name.clone())
            .ok_or(ImapError::NoServer)?
    };
    serve_imap_for(addr, org, server).await
}

/// Serves IMAP for a named server.
pub async fn serve_imap_for(
    addr: SocketAddr,
    org: OrgHandle,
    server: String,
) -> Result<ImapHandle, ImapError> {
    if !addr.ip().is_loopback() {
        return Err(ImapError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ImapError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ImapError::Bind { addr, source })?;
    let (stop, mut stopped) = watch::channel(false);
    // The epoch channel: connections close when it moves (a restart began).
    let (epoch_tx, epoch_rx) = watch::channel(org.lock().imap_service_state(&server).1);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        let mut tick = tokio::time::interval(POLL);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    // Keep /sim/state current (every 10 polls, about 100 ms).
                    if ticks.is_multiple_of(10) {
                        org.publish_attached();
                    }
                    let epoch = org.lock().imap_service_state(&server).1;
                    epoch_tx.send_if_modified(|e| {
                        let changed = *e != epoch;
                        *e = epoch;
                        changed
                    });
                }
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    if connections.len() >= MAX_SOCKETS {
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let org = org.clone();
                    let server = server.clone();
                    let epochs = epoch_rx.clone();
                    connections.spawn(serve_connection(stream, peer, org, server, epochs));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    });
    Ok(ImapHandle {
        addr: bound,
        stop,
        task: Some(task),
    })
}

/// Reads one line (without CRLF); `None` at EOF or when the line is too long.
///
/// Cancel-safe: the bytes of a line are gathered in `buf`, owned by the caller, so a
/// call dropped by `select!` (a settings change woke the session) loses nothing, and
/// the next call goes on with the same line. A client may send a line in several
/// segments.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> Option<String> {
    let room = (MAX_LINE + 1).saturating_sub(buf.len());
    let mut limited = (&mut *reader).take(room as u64);
    let n = limited.read_until(b'\n', buf).await.ok()?;
    if n == 0 || buf.len() > MAX_LINE || buf.last() != Some(&b'\n') {
        return None;
    }
    let mut line = std::mem::take(buf);
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// Splits IMAP arguments: atoms and quoted strings (with `\"` and `\\` escapes).
fn parse_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut cur = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            cur.push(n);
                        }
                    }
                    '"' => break,
                    c => cur.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                cur.push(c);
                chars.next();
            }
        }
        out.push(cur);
    }
    out
}

/// Decodes an AUTHENTICATE PLAIN response: `authzid NUL authcid NUL password`.
fn decode_plain(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let mut parts = raw.split(|b| *b == 0);
    let _authz = parts.next()?;
    let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let pass = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((user, pass))
}

const CAPABILITY: &str =
    "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN UIDPLUS CHILDREN IDLE NAMESPACE LITERAL+\r\n";

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    org: OrgHandle,
    server: String,
    mut epochs: watch::Receiver<u64>,
) {
    let Some(conn) = org.lock().imap_open(&server, peer.ip()) else {
        // The service is not running: the connection closes without a greeting.
        return;
    };
    let banner = org.lock().imap_service_state(&server).2;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut pending = Vec::new();
    let mut authenticated = false;
    if write
        .write_all(format!("* OK {banner}\r\n").as_bytes())
        .await
        .is_err()
    {
        org.lock().imap_close(conn);
        return;
    }
    loop {
        let line = tokio::select! {
            line = read_line(&mut reader, &mut pending) => line,
            changed = epochs.changed() => {
                if changed.is_err() || !org.lock().imap_alive(conn) {
                    break;
                }
                continue;
            }
        };
        let Some(line) = line else { break };
        if !org.lock().imap_alive(conn) {
            break;
        }
        let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if tag.is_empty() {
            if write
                .write_all(b"* BAD Command Error. 10\r\n")
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        let (command, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let command = command.to_ascii_uppercase();
        let reply = match command.as_str() {
            "CAPABILITY" => format!("{CAPABILITY}{tag} OK CAPABILITY completed.\r\n"),
            "NOOP" => format!("{tag} OK NOOP completed.\r\n"),
            "LOGOUT" => {
                let _ = write
                    .write_all(
                        format!("* BYE Microsoft Exchange Server 2010 IMAP4 server signing off.\r\n{tag} OK LOGOUT completed.\r\n")
                            .as_bytes(),
                    )
                    .await;
                break;
            }
            "LOGIN" | "AUTHENTICATE" if authenticated => {
                format!("{tag} BAD Command received in Invalid state.\r\n")
            }
            "LOGIN" => {
                let a = parse_args(args);
                let ok = match (a.first(), a.get(1)) {
                    (Some(u), Some(p)) => org.lock().imap_login(conn, u, p).is_ok(),
                    _ => false,
                };
                if ok {
                    authenticated = true;
                    format!("{tag} OK LOGIN completed.\r\n")
                } else {
                    format!("{tag} NO LOGIN failed.\r\n")
                }
            }
            "AUTHENTICATE" => {
                let a = parse_args(args);
                if !a.first().is_some_and(|m| m.eq_ignore_ascii_case("PLAIN")) {
                    format!("{tag} NO AUTHENTICATE failed.\r\n")
                } else {
                    let response = match a.get(1) {
                        Some(initial) => Some(initial.clone()),
                        None => {
                            if write.write_all(b"+ \r\n").await.is_err() {
                                break;
                            }
                            read_line(&mut reader, &mut pending).await
                        }
                    };
                    let Some(response) = response else { break };
                    let ok = response.trim() != "*"
                        && decode_plain(&response)
                            .is_some_and(|(u, p)| org.lock().imap_login(conn, &u, &p).is_ok());
                    if ok {
                        authenticated = true;
                        format!("{tag} OK AUTHENTICATE completed.\r\n")
                    } else {
                        format!("{tag} NO AUTHENTICATE failed.\r\n")
                    }
                }
            }
            "SELECT" | "EXAMINE" if !authenticated => {
                format!("{tag} BAD Command received in Invalid state.\r\n")
            }
            "SELECT" | "EXAMINE" => {
                let a = parse_args(args);
                if a.first().is_some_and(|m| m.eq_ignore_ascii_case("INBOX")) {
                    let mode = if command == "SELECT" {
                        "READ-WRITE"
                    } else {
                        "READ-ONLY"
                    };
                    format!(
                        "* 0 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)\r\n\
                         * OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)] Permanent flags\r\n\
                         * OK [UIDVALIDITY 14] UIDVALIDITY value\r\n* OK [UIDNEXT 1] The next unique identifier value\r\n\
                         {tag} OK [{mode}] {command} completed.\r\n"
                    )
                } else {
                    format!("{tag} NO {command} failed.\r\n")
                }
            }
            _ => format!("{tag} BAD Command Error. 10\r\n"),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
    org.lock().imap_close(conn);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::time::timeout;

    use super::*;
    use crate::exchange::recipients::UCCX_PASSWORD;
    use crate::exchange::registry::RegValue;
    use crate::exchange::{
        ClockRef, ExchangeOrg, SERVICE_SESSIONS_VALUE, STORE_KEY, ScaledClock, SimTime, SimValue,
        Sp, UCCX_ACCOUNT,
    };

    #[tokio::test]
    async fn a_line_in_segments_survives_a_cancelled_read() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut reader = BufReader::new(server);
        let mut pending = Vec::new();
        client.write_all(b"a1").await.unwrap();
        // The session's select! drops the read when the epoch moves.
        let cancelled = timeout(
            Duration::from_millis(50),
            read_line(&mut reader, &mut pending),
        )
        .await;
        assert!(cancelled.is_err());
        client.write_all(b" NOOP\r\n").await.unwrap();
        assert_eq!(
            read_line(&mut reader, &mut pending).await.as_deref(),
            Some("a1 NOOP")
        );
        client.write_all(b"a2 LOGOUT\r\n").await.unwrap();
        assert_eq!(
            read_line(&mut reader, &mut pending).await.as_deref(),
            Some("a2 LOGOUT")
        );
        // A line cut by the end of the connection is no command.
        client.write_all(b"a3 NO").await.unwrap();
        drop(client);
        assert_eq!(read_line(&mut reader, &mut pending).await, None);
    }

    /// Every network step of a test is bounded by this.
    const STEP: Duration = Duration::from_secs(5);

    struct Client {
        reader: BufReader<OwnedReadHalf>,
        writer: OwnedWriteHalf,
    }

    impl Client {
        /// Connects and reads the greeting; `None` when the server closes without one.
        async fn connect(addr: SocketAddr) -> Option<(Client, String)> {
            let stream = timeout(STEP, TcpStream::connect(addr)).await.ok()?.ok()?;
            let (r, w) = stream.into_split();
            let mut c = Client {
                reader: BufReader::new(r),
                writer: w,
            };
            let greeting = c.line().await?;
            Some((c, greeting))
        }

        async fn line(&mut self) -> Option<String> {
            let mut s = String::new();
            let n = timeout(STEP, self.reader.read_line(&mut s))
                .await
                .ok()?
                .ok()?;
            (n > 0).then(|| s.trim_end().to_string())
        }

        async fn send(&mut self, line: &str) -> Option<()> {
            timeout(
                STEP,
                self.writer.write_all(format!("{line}\r\n").as_bytes()),
            )
            .await
            .ok()?
            .ok()
        }

        /// Sends a command and returns every line up to its tagged reply.
        async fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
            let mut lines = Vec::new();
            if self.send(&format!("{tag} {command}")).await.is_none() {
                return lines;
            }
            // Bounded: a reply never has more than a few untagged lines here.
            for _ in 0..32 {
                let Some(l) = self.line().await else { break };
                let done = l.starts_with(&format!("{tag} "));
                lines.push(l);
                if done {
                    break;
                }
            }
            lines
        }
    }

    fn plain(user: &str, pass: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
    }

    fn scaled(scale: f64) -> (ClockRef, OrgHandle) {
        let clock = ClockRef(Arc::new(ScaledClock::with_scale(scale)));
        let org = OrgHandle::new(ExchangeOrg::seed(Sp::Sp3, clock.clone()));
        (clock, org)
    }

    /// Opens `n` connections at once, each authenticating as the UCCX account (as 20
    /// agent desktops with two connections each do); returns the replies and the open
    /// clients.
    async fn agents_log_in(addr: SocketAddr, n: usize) -> (Vec<String>, Vec<Client>) {
        let mut tasks = JoinSet::new();
        for i in 0..n {
            tasks.spawn(async move {
                let (mut c, _) = Client::connect(addr).await?;
                let reply = c
                    .command(
                        &format!("a{i}"),
                        &format!("AUTHENTICATE PLAIN {}", plain(UCCX_ACCOUNT, UCCX_PASSWORD)),
                    )
                    .await;
                Some((reply.last().cloned().unwrap_or_default(), c))
            });
        }
        let mut replies = Vec::new();
        let mut clients = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(Some((reply, c))) = r {
                replies.push(reply);
                clients.push(c);
            }
        }
        (replies, clients)
    }

    fn count(replies: &[String], suffix: &str) -> usize {
        replies.iter().filter(|r| r.ends_with(suffix)).count()
    }

    /// Waits (bounded) until the model has seen every session of the account close.
    async fn sessions_drain(org: &OrgHandle) {
        for _ in 0..500 {
            if org.lock().imap_sessions_of("EX01", UCCX_ACCOUNT) == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("IMAP sessions did not close");
    }

    /// Waits (bounded) until a restart finishing at `done` is over and the service runs.
    async fn restart_done(clock: &ClockRef, org: &OrgHandle, service: &str, done: SimTime) {
        let left = done.since(clock.now());
        tokio::time::sleep(clock.0.real_duration(left)).await;
        for _ in 0..500 {
            if org.lock().service_status("EX01", service)
                == Some(crate::exchange::services::Status::Running)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{service} did not come back");
    }

    fn store_events(org: &OrgHandle) -> Vec<String> {
        org.lock()
            .servers
            .first()
            .map(|s| {
                s.event_log
                    .entries
                    .iter()
                    .filter(|e| e.event_id == 9646)
                    .map(|e| e.message.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uccx_seed_incident_then_the_fix() {
        let test = async {
            // 45 s of Information Store restart take 45 ms.
            let (clock, org) = scaled(0.001);
            let imap = serve_imap("127.0.0.1:0".parse().unwrap(), org.clone())
                .await
                .unwrap();
            let addr = imap.addr();

            // 1. Defaults: 20 desktops x 2 connections, one account. The IMAP per-user
            //    limit (16) refuses the rest before they reach the store.
            let (replies, clients) = agents_log_in(addr, 40).await;
            assert_eq!(replies.len(), 40);
            assert_eq!(
                count(&replies, "OK AUTHENTICATE completed."),
                16,
                "{replies:?}"
            );
            assert_eq!(
                count(&replies, "NO AUTHENTICATE failed."),
                24,
                "{replies:?}"
            );
            assert!(store_events(&org).is_empty());
            drop(clients);
            sessions_drain(&org).await;

            // 2. Raise the IMAP limits and the throttling policy, restart IMAP4: the
            //    store's 16 service sessions still refuse, and the store logs 9646.
            let done = {
                let mut o = org.lock();
                let set = [
                    ("MaxConnectionsPerUser".to_string(), SimValue::Int(40)),
                    ("MaxConnectionFromSingleIP".to_string(), SimValue::Int(40)),
                ];
                assert!(o.set_imap_settings(Some("EX01"), &set).unwrap().is_empty());
                o.new_throttling_policy(
                    "UCCX",
                    &[("IMAPMaxConcurrency".to_string(), SimValue::Null)],
                )
                .unwrap();
                o.set_throttling_policy_association(UCCX_ACCOUNT, &SimValue::str("UCCX"))
                    .unwrap();
                o.restart_service(None, "MSExchangeIMAP4", false).unwrap()
            };
            restart_done(&clock, &org, "MSExchangeIMAP4", done).await;
            let (replies, clients) = agents_log_in(addr, 40).await;
            assert_eq!(
                count(&replies, "OK AUTHENTICATE completed."),
                16,
                "{replies:?}"
            );
            assert_eq!(count(&replies, "NO AUTHENTICATE failed."), 24);
            let events = store_events(&org);
            assert_eq!(events.len(), 24);
            assert_eq!(
                events.first().map(String::as_str),
                Some(
                    "Mapi session \"/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=uccx-agent\" exceeded the maximum of 16 objects of type \"session\"."
                )
            );

            // 3. Raise the store limit and restart the Information Store (with -Force:
            //    it has dependents); the restart drops the sessions.
            let done = {
                let mut o = org.lock();
                o.registry_mut().unwrap().put(
                    STORE_KEY,
                    SERVICE_SESSIONS_VALUE,
                    RegValue::DWord(40),
                );
                assert!(o.restart_service(None, "MSExchangeIS", false).is_err());
                o.restart_service(None, "MSExchangeIS", true).unwrap()
            };
            assert_eq!(
                org.lock().service_status("EX01", "MSExchangeIS"),
                Some(crate::exchange::services::Status::StopPending)
            );
            restart_done(&clock, &org, "MSExchangeIS", done).await;
            drop(clients);
            sessions_drain(&org).await;
            let (replies, _clients) = agents_log_in(addr, 40).await;
            assert_eq!(
                count(&replies, "OK AUTHENTICATE completed."),
                40,
                "{replies:?}"
            );
            assert_eq!(store_events(&org).len(), 24, "no new 9646");
            let section = org.lock().state_section();
            assert_eq!(section["imap"]["authenticated"], 40);
            assert_eq!(section["imap"]["refusals"]["max_connections_per_user"], 24);
            assert_eq!(section["imap"]["refusals"]["store_service_sessions"], 24);
            imap.shutdown().await;
        };
        timeout(Duration::from_secs(60), test)
            .await
            .expect("the test took too long");
    }

    #[tokio::test]
    async fn protocol_basics_login_select_logout() {
        let test = async {
            let (_, org) = scaled(1.0);
            let imap = serve_imap("127.0.0.1:0".parse().unwrap(), org.clone())
                .await
                .unwrap();
            let (mut c, greeting) = Client::connect(imap.addr()).await.unwrap();
            assert_eq!(
                greeting,
                "* OK The Microsoft Exchange IMAP4 service is ready."
            );
            let cap = c.command("c1", "CAPABILITY").await;
            assert!(
                cap.first()
                    .is_some_and(|l| l.starts_with("* CAPABILITY IMAP4 IMAP4rev1"))
            );
            assert_eq!(
                cap.last().map(String::as_str),
                Some("c1 OK CAPABILITY completed.")
            );
            assert_eq!(
                c.command("c2", "SELECT INBOX")
                    .await
                    .last()
                    .map(String::as_str),
                Some("c2 BAD Command received in Invalid state.")
            );
            assert_eq!(
                c.command("c3", "LOGIN uccx-agent wrong")
                    .await
                    .last()
                    .map(String::as_str),
                Some("c3 NO LOGIN failed.")
            );
            let ok = c
                .command(
                    "c4",
                    &format!("LOGIN \"uccx-agent@contoso.local\" \"{UCCX_PASSWORD}\""),
                )
                .await;
            assert_eq!(
                ok.last().map(String::as_str),
                Some("c4 OK LOGIN completed.")
            );
            let sel = c.command("c5", "SELECT INBOX").await;
            assert!(sel.contains(&"* 0 EXISTS".to_string()));
            assert_eq!(
                sel.last().map(String::as_str),
                Some("c5 OK [READ-WRITE] SELECT completed.")
            );
            assert_eq!(
                c.command("c6", "NOOP").await.last().map(String::as_str),
                Some("c6 OK NOOP completed.")
            );
            assert_eq!(
                c.command("c7", "FROB").await.last().map(String::as_str),
                Some("c7 BAD Command Error. 10")
            );
            let bye = c.command("c8", "LOGOUT").await;
            assert_eq!(
                bye.first().map(String::as_str),
                Some("* BYE Microsoft Exchange Server 2010 IMAP4 server signing off.")
            );
            assert_eq!(
                bye.last().map(String::as_str),
                Some("c8 OK LOGOUT completed.")
            );

            // AUTHENTICATE with the continuation.
            let (mut c, _) = Client::connect(imap.addr()).await.unwrap();
            c.send("d1 AUTHENTICATE PLAIN").await.unwrap();
            assert_eq!(c.line().await.as_deref(), Some("+"));
            c.send(&plain("CONTOSO\\uccx-agent", UCCX_PASSWORD))
                .await
                .unwrap();
            assert_eq!(
                c.line().await.as_deref(),
                Some("d1 OK AUTHENTICATE completed.")
            );

            // An over-long line closes the connection.
            let (mut c, _) = Client::connect(imap.addr()).await.unwrap();
            c.send(&format!("e1 NOOP {}", "x".repeat(MAX_LINE + 10)))
                .await;
            assert_eq!(c.line().await, None);
            imap.shutdown().await;
        };
        timeout(Duration::from_secs(30), test)
            .await
            .expect("the test took too long");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn imap4_restart_drops_connections_and_refuses_new_ones() {
        let test = async {
            // A manual clock: the restart lasts until the test moves time on, so the
            // "during the restart" checks do not depend on how fast this machine is.
            let manual = Arc::new(crate::exchange::ManualClock::new(SimTime(
                1_700_000_000_000,
            )));
            let org = OrgHandle::new(ExchangeOrg::seed(Sp::Sp3, ClockRef(manual.clone())));
            let imap = serve_imap("127.0.0.1:0".parse().unwrap(), org.clone())
                .await
                .unwrap();
            let (mut c, _) = Client::connect(imap.addr()).await.unwrap();
            let r = c
                .command("a", &format!("LOGIN uccx-agent {UCCX_PASSWORD}"))
                .await;
            assert_eq!(r.last().map(String::as_str), Some("a OK LOGIN completed."));
            org.lock()
                .restart_service(None, "MSExchangeIMAP4", false)
                .unwrap();
            // The existing connection is dropped.
            assert_eq!(c.line().await, None);
            // A new one is closed without a greeting while the service restarts.
            assert!(Client::connect(imap.addr()).await.is_none());
            manual.advance(Duration::from_secs(5));
            let (mut c, greeting) = Client::connect(imap.addr()).await.unwrap();
            assert_eq!(
                greeting,
                "* OK The Microsoft Exchange IMAP4 service is ready."
            );
            let r = c
                .command("b", &format!("LOGIN uccx-agent {UCCX_PASSWORD}"))
                .await;
            assert_eq!(r.last().map(String::as_str), Some("b OK LOGIN completed."));
            imap.shutdown().await;
        };
        timeout(Duration::from_secs(30), test)
            .await
            .expect("the test took too long");
    }

    #[tokio::test]
    async fn refuses_non_loopback_addresses() {
        let (_, org) = scaled(1.0);
        let err = serve_imap("0.0.0.0:0".parse().unwrap(), org)
            .await
            .unwrap_err();
        assert!(matches!(err, ImapError::NotLoopback(_)));
    }

    #[test]
    fn arguments_and_plain_responses_parse() {
        assert_eq!(parse_args("\"a b\" c \"d\\\"e\""), vec!["a b", "c", "d\"e"]);
        assert_eq!(
            decode_plain(&plain("u", "p")),
            Some(("u".to_string(), "p".to_string()))
        );
        assert_eq!(decode_plain("!!"), None);
    }
}
