//! A small HTTP/1.1 client for remote write: one `POST` at a time over one kept-alive
//! connection (plain TCP or rustls), on the sender thread itself.
//!
//! It does only what remote write needs, and bounds all of it:
//!
//! - **One deadline per request.** `timeout` covers everything from resolving and
//!   connecting (or reusing the kept connection), through the TLS handshake and
//!   sending the body, to reading the response head, and is honoured to the
//!   millisecond: every socket call is armed with the time left ([`TimedSocket`]),
//!   so there is no helper thread, and a request that times out leaves nothing
//!   behind but a closed socket. Name resolution is the exception: `getaddrinfo` has
//!   no deadline of its own (resolv.conf's `timeout`/`attempts` bound it). It runs
//!   only when a connection is opened, not for every request.
//! - **Keep-alive.** The connection stays open between requests unless the server
//!   says `Connection: close`, answers in HTTP/1.0, or leaves a body unread past
//!   [`DRAIN_BYTES`]. Before it is reused it is checked without blocking: one the
//!   server closed while idle (or that was idle longer than [`MAX_IDLE`]) is replaced
//!   by a new one. If a reused connection turns out closed only once the request is
//!   written (the server closed it at that very moment), the request is sent again,
//!   once, on a new connection: the server never answered it, and remote write
//!   requests may be repeated. Neither case is a failed attempt.
//! - **Bounded reading.** The response head is at most [`MAX_HEAD_BYTES`]; of the
//!   body at most `keep_body` bytes are kept (for the log), and at most
//!   [`DRAIN_BYTES`] more read and discarded to reuse the connection. Content-Length,
//!   chunked and read-until-close bodies are understood; interim `1xx` answers are
//!   skipped.
//! - **Early answers.** A server that answers before it has read the whole body (a
//!   413, or a TLS alert refusing the client certificate) and closes breaks the
//!   write; its answer is still read and reported, rather than the broken pipe.
//! - **No redirects.** A 3xx is a response like any other: the caller decides.
//!
//! Buffers are kept across requests, so a steady stream of pushes allocates nothing
//! here (rustls keeps its own record buffers per connection).

use crate::config::remote_write::Endpoint;
#[cfg(feature = "tls")]
use crate::remote_write::tls::ClientTls;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest response head (status line and headers) read.
pub const MAX_HEAD_BYTES: usize = 16 << 10;
/// The most body bytes read past `keep_body` to keep the connection: a longer body
/// closes it instead.
pub const DRAIN_BYTES: usize = 64 << 10;
/// A connection idle longer than this is closed rather than reused: load balancers
/// drop idle connections after a minute or more (AWS ALB 60 s, nginx 75 s, Azure's
/// 4 minutes, silently), and a dead connection costs a whole `timeout` to notice.
pub const MAX_IDLE: Duration = Duration::from_secs(45);
/// The longest line of a chunked body's framing (size, extensions, trailers).
const MAX_LINE_BYTES: usize = 4 << 10;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 4 << 10;

/// Where requests go, and the part of every request that does not change: built once
/// per target (at start and at every reload).
pub struct Destination {
    endpoint: Endpoint,
    /// The request line and every header but `Content-Length`, each line ending in
    /// CRLF. It holds the `Authorization` header: never printed.
    head: Vec<u8>,
    /// For `https://`: the TLS configuration, or why there is none (no trusted
    /// certificate), which then fails every attempt.
    #[cfg(feature = "tls")]
    tls: Option<Result<Arc<ClientTls>, String>>,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// `headers` are written as given: the config has checked names and values
    /// (tokens, no control characters).
    pub fn new(
        endpoint: Endpoint,
        headers: &[(&str, &str)],
        #[cfg(feature = "tls")] tls: Option<Result<Arc<ClientTls>, String>>,
    ) -> Destination {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"POST ");
        head.extend_from_slice(endpoint.target.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        head.extend_from_slice(endpoint.authority.as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        Destination {
            endpoint,
            head,
            #[cfg(feature = "tls")]
            tls,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    #[cfg(test)]
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }
}

/// What went wrong, in the terms `sc_agent_send_failures_total{reason}` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The host name did not resolve, or the connection was refused or reset.
    Connection,
    /// The deadline passed.
    Timeout,
    /// TLS failed: a certificate refused (either way), a handshake or alert error.
    Tls,
    /// The answer was not HTTP/1.x as this client reads it.
    InvalidResponse,
}

/// A failed request: what kind of failure, and a message for the log.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    fn new(kind: ErrorKind, message: String) -> Error {
        Error { kind, message }
    }

    fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidResponse, message.into())
    }

    /// An I/O error during `stage`, classified: rustls' own errors (carried inside
    /// the I/O error) are TLS, an expired deadline is a timeout, the rest a
    /// connection failure.
    fn io(stage: Stage, error: io::Error, timeout: Duration) -> Error {
        #[cfg(feature = "tls")]
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            let message = match stage {
                Stage::Handshake => format!("TLS handshake failed: {tls}"),
                _ => format!("TLS error {stage}: {tls}"),
            };
            return Error::new(ErrorKind::Tls, message);
        }
        if error.kind() == io::ErrorKind::TimedOut {
            let ms = timeout.as_millis();
            return Error::new(
                ErrorKind::Timeout,
                format!("timed out {stage} (timeout {ms}ms)"),
            );
        }
        let message = match error.kind() {
            io::ErrorKind::UnexpectedEof => format!("the server closed the connection {stage}"),
            _ => format!("{error} {stage}"),
        };
        let kind = match stage {
            // An error in the middle of the handshake (a reset, an EOF) is the
            // server refusing the TLS session: a plain HTTP server on an https://
            // URL, or one refusing the client certificate.
            #[cfg(feature = "tls")]
            Stage::Handshake => ErrorKind::Tls,
            _ => ErrorKind::Connection,
        };
        Error::new(kind, message)
    }

    /// Whether the request might have met a connection the server had just closed:
    /// the connection broke before any byte of an answer came.
    fn is_closed_before_answer(&self, answered: bool) -> bool {
        !answered && self.kind == ErrorKind::Connection
    }
}

/// Where in a request an error happened, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Connect,
    #[cfg(feature = "tls")]
    Handshake,
    Send,
    Response,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "while connecting",
            #[cfg(feature = "tls")]
            Stage::Handshake => "in the TLS handshake",
            Stage::Send => "while sending the request",
            Stage::Response => "while reading the response",
        })
    }
}

/// The answer to a request: its status, the headers remote write acts on, and the
/// start of its body.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    /// At most `keep_body` bytes of the body.
    pub body: &'a [u8],
    /// Whether `body` is the whole body.
    pub body_complete: bool,
}

/// Counters about the connections, for the debug log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections opened.
    pub opened: u64,
    /// Of those, TLS sessions resumed rather than fully negotiated.
    pub resumed: u64,
    /// Requests sent again on a new connection because the reused one was closed.
    pub resent: u64,
}

/// The client: at most one open connection, and the buffers it reuses.
#[derive(Default)]
pub struct Client {
    connection: Option<Connection>,
    /// The request head, then the response as it is read.
    buf: Vec<u8>,
    /// The part of the body kept for the caller.
    body: Vec<u8>,
    /// A line of a chunked body's framing.
    line: Vec<u8>,
    pub stats: ConnectionStats,
}

impl Client {
    pub fn new() -> Client {
        Client::default()
    }

    /// Closes the kept connection, if any (the target changed).
    pub fn close(&mut self) {
        self.connection = None;
    }

    /// Whether a connection is kept open for the next request.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Sends `body` to `to` and reads the answer's head and up to `keep_body` bytes
    /// of its body, all within `timeout`.
    pub fn post(
        &mut self,
        to: &Destination,
        body: &[u8],
        timeout: Duration,
        keep_body: usize,
    ) -> Result<Response<'_>, Error> {
        let deadline = Instant::now() + timeout;
        let reused = match self.connection.as_mut().map(Connection::reusable) {
            Some(true) => true,
            Some(false) => {
                log::debug!(
                    "remote write: the kept connection to {} was closed or idle too long; \
                     reconnecting",
                    to.endpoint.authority
                );
                self.connection = None;
                false
            }
            None => false,
        };
        let head = match self.exchange(to, body, deadline, timeout) {
            Err((error, answered)) if reused && error.is_closed_before_answer(answered) => {
                log::debug!(
                    "remote write: {} closed the kept connection as the request went out \
                     ({error}); sending it again on a new connection",
                    to.endpoint.authority
                );
                self.stats.resent += 1;
                self.connection = None;
                self.exchange(to, body, deadline, timeout)
            }
            other => other,
        }
        .map_err(|(error, _)| {
            self.connection = None;
            error
        })?;
        let complete = self.read_body(&head, keep_body);
        if let Some(connection) = &mut self.connection {
            connection.idle_since = Instant::now();
        }
        Ok(Response {
            status: head.status,
            retry_after: head.retry_after,
            location: head.location,
            body: &self.body,
            body_complete: complete,
        })
    }

    /// One request on the kept connection or a new one, up to the end of the
    /// response head. The flag says whether any byte of an answer came.
    fn exchange(
        &mut self,
        to: &Destination,
        body: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Head, (Error, bool)> {
        let connection = match &mut self.connection {
            Some(connection) => {
                connection.socket.deadline = deadline;
                connection
            }
            None => {
                let connection = Connection::open(to, deadline, timeout).map_err(|e| (e, false))?;
                self.stats.opened += 1;
                let session = match (connection.is_tls(), connection.resumed()) {
                    (true, true) => {
                        self.stats.resumed += 1;
                        ", TLS session resumed"
                    }
                    (true, false) => ", new TLS session",
                    (false, _) => "",
                };
                log::debug!(
                    "remote write: connection {} to {}{session}",
                    self.stats.opened,
                    to.endpoint.authority
                );
                self.connection.insert(connection)
            }
        };
        self.buf.clear();
        self.buf.extend_from_slice(&to.head);
        // Writing into a Vec cannot fail.
        let _ = write!(self.buf, "Content-Length: {}\r\n\r\n", body.len());
        let sent = connection.send(&self.buf, body);
        self.buf.clear();
        if let Err(e) = sent {
            let error = Error::io(Stage::Send, e, timeout);
            // A server refusing a body may answer (413) and close before reading it
            // all, and a TLS server refusing the client's certificate sends an alert:
            // either, if it came, says more than the broken pipe.
            if error.kind == ErrorKind::Connection {
                match read_head(connection, &mut self.buf, timeout) {
                    Ok(head) => return Ok(head),
                    Err((refusal, _)) if refusal.kind == ErrorKind::Tls => {
                        return Err((refusal, false))
                    }
                    Err(_) => {}
                }
            }
            return Err((error, false));
        }
        read_head(connection, &mut self.buf, timeout)
    }

    /// Reads the body after `head`: up to `keep_body` bytes into `self.body`, then
    /// up to [`DRAIN_BYTES`] more to reach its end. The connection is kept only if
    /// the end was reached and the server allows it. Returns whether the kept part
    /// is the whole body.
    fn read_body(&mut self, head: &Head, keep_body: usize) -> bool {
        self.body.clear();
        let Some(connection) = self.connection.as_mut() else {
            return false;
        };
        let mut reader = BodyReader {
            connection,
            buf: &mut self.buf,
            pos: head.len,
            framing: head.framing,
            left: match head.framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            in_chunk: false,
            line: &mut self.line,
        };
        let complete = reader.read_into(&mut self.body, keep_body);
        let reached_end = match complete {
            Ok(true) => true,
            Ok(false) => reader.skip(DRAIN_BYTES).unwrap_or(false),
            Err(_) => false,
        };
        // Bytes past the answer would be an answer to nothing: not reusable.
        let clean = reached_end && reader.pos == reader.buf.len();
        if !(clean && head.keep_alive) {
            self.connection = None;
        }
        complete.unwrap_or(false)
    }
}

/// A TCP socket whose every read and write is armed with the time left until the
/// deadline (`SO_RCVTIMEO`/`SO_SNDTIMEO`), failing with `TimedOut` once it has passed.
struct TimedSocket {
    tcp: TcpStream,
    deadline: Instant,
}

impl TimedSocket {
    fn time_left(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// A socket timeout shows as `WouldBlock`; it is the deadline passing.
    fn timed_out(error: io::Error) -> io::Error {
        match error.kind() {
            io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
            _ => error,
        }
    }
}

impl Read for TimedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.time_left()?))?;
        self.tcp.read(buf).map_err(TimedSocket::timed_out)
    }
}

impl Write for TimedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.time_left()?))?;
        self.tcp.write(buf).map_err(TimedSocket::timed_out)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.time_left()?))?;
        self.tcp
            .write_vectored(bufs)
            .map_err(TimedSocket::timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One open connection.
struct Connection {
    socket: TimedSocket,
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::ClientConnection>>,
    idle_since: Instant,
}

impl Connection {
    /// Resolves, connects and (for `https://`) completes the TLS handshake.
    fn open(to: &Destination, deadline: Instant, timeout: Duration) -> Result<Connection, Error> {
        let endpoint = &to.endpoint;
        #[cfg(feature = "tls")]
        let tls = match &to.tls {
            Some(Ok(tls)) => Some(Arc::clone(tls)),
            Some(Err(why)) => return Err(Error::new(ErrorKind::Tls, why.clone())),
            None => None,
        };
        let addresses = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Connection,
                    format!("cannot resolve {}: {e}", endpoint.host),
                )
            })?;
        let tcp = connect(addresses, deadline, timeout, &endpoint.authority)?;
        // Head and body go out as they are written, not held back for an ACK.
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            socket: TimedSocket { tcp, deadline },
            #[cfg(feature = "tls")]
            tls: None,
            idle_since: Instant::now(),
        };
        #[cfg(feature = "tls")]
        if let Some(tls) = tls {
            return connection.handshake(&tls, timeout);
        }
        Ok(connection)
    }

    /// Completes the TLS handshake on a new connection.
    #[cfg(feature = "tls")]
    fn handshake(mut self, tls: &ClientTls, timeout: Duration) -> Result<Connection, Error> {
        let mut session =
            rustls::ClientConnection::new(Arc::clone(&tls.config), tls.server_name.clone())
                .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS setup: {e}")))?;
        while session.is_handshaking() {
            session
                .complete_io(&mut self.socket)
                .map_err(|e| Error::io(Stage::Handshake, e, timeout))?;
        }
        self.tls = Some(Box::new(session));
        Ok(self)
    }

    fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Whether the TLS session was resumed from an earlier connection's ticket.
    fn resumed(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        }
        false
    }

    /// Whether the kept connection can carry the next request: not idle too long,
    /// and nothing waiting on it but what TLS may send unasked (session tickets).
    /// Data, an EOF or an error on an idle connection all mean the server is done
    /// with it. Never blocks.
    fn reusable(&mut self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        if self.idle_since.elapsed() > MAX_IDLE {
            return false;
        }
        let readable = {
            let mut fds = [PollFd::new(self.socket.tcp.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(0) => false,
                Ok(_) => true,
                Err(_) => return false,
            }
        };
        if !readable {
            return true;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return idle_tls_still_open(tls, &self.socket.tcp);
        }
        // A plain HTTP server says nothing unasked: this is its FIN, or junk.
        false
    }

    /// Writes the request head and body.
    fn send(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            for piece in [head, body] {
                let mut rest = piece;
                while !rest.is_empty() {
                    match tls.writer().write(rest)? {
                        // rustls' buffer is full: send what it holds.
                        0 if tls.wants_write() => flush_tls(tls, &mut self.socket)?,
                        0 => return Err(io::ErrorKind::WriteZero.into()),
                        n => rest = rest.get(n..).unwrap_or_default(),
                    }
                }
            }
            return flush_tls(tls, &mut self.socket);
        }
        write_all_vectored(&mut self.socket, head, body)
    }

    /// Reads response bytes into `out`; 0 is the end of the stream.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            loop {
                match tls.reader().read(out) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => return other,
                }
                // No plaintext yet: read a record (an EOF is seen by the reader).
                tls.read_tls(&mut self.socket)?;
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if tls.wants_write() {
                    // A key update or an alert to answer.
                    flush_tls(tls, &mut self.socket)?;
                }
            }
        }
        self.socket.read(out)
    }
}

/// Tries each address in turn until one connects or the deadline passes.
fn connect(
    addresses: impl Iterator<Item = SocketAddr>,
    deadline: Instant,
    timeout: Duration,
    authority: &str,
) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in addresses {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| Error::io(Stage::Connect, io::ErrorKind::TimedOut.into(), timeout))?;
        match TcpStream::connect_timeout(&address, left) {
            Ok(tcp) => return Ok(tcp),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(Error::io(Stage::Connect, e, timeout))
            }
            Err(e) => last = Some((address, e)),
        }
    }
    Err(match last {
        Some((address, e)) => Error::new(
            ErrorKind::Connection,
            format!("cannot connect to {address}: {e}"),
        ),
        None => Error::new(
            ErrorKind::Connection,
            format!("{authority} resolved to no address"),
        ),
    })
}

/// Writes `head` then `body`, together where the kernel takes them.
fn write_all_vectored(socket: &mut TimedSocket, head: &[u8], body: &[u8]) -> io::Result<()> {
    let (mut head, mut body) = (head, body);
    while !head.is_empty() || !body.is_empty() {
        let written = socket.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = written.min(head.len());
        head = head.get(from_head..).unwrap_or_default();
        body = body.get(written - from_head..).unwrap_or_default();
    }
    Ok(())
}

#[cfg(feature = "tls")]
fn flush_tls(tls: &mut rustls::ClientConnection, socket: &mut TimedSocket) -> io::Result<()> {
    while tls.wants_write() {
        if tls.write_tls(socket)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Reads, without blocking, what came on an idle TLS connection: post-handshake
/// messages (session tickets, key updates) leave it usable; application data, a
/// `close_notify`, an EOF or an error do not.
#[cfg(feature = "tls")]
fn idle_tls_still_open(tls: &mut rustls::ClientConnection, tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return false;
    }
    let mut plain = tcp;
    let open = loop {
        match tls.read_tls(&mut plain) {
            Ok(0) => break false,
            Ok(_) => match tls.process_new_packets() {
                Ok(state) if state.peer_has_closed() || state.plaintext_bytes_to_read() > 0 => {
                    break false
                }
                Ok(_) => {}
                Err(_) => break false,
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(_) => break false,
        }
    };
    tcp.set_nonblocking(false).is_ok() && open
}

/// How the body of a response ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (204, 304) or `Content-Length: 0`.
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed response head. `len` is where the body starts in the buffer.
#[derive(Debug)]
struct Head {
    status: u16,
    retry_after: Option<String>,
    location: Option<String>,
    framing: Framing,
    keep_alive: bool,
    len: usize,
}

/// Reads responses into `buf` until a final (non-1xx) head is complete, and parses it.
fn read_head(
    connection: &mut Connection,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Head, (Error, bool)> {
    let mut searched = 0;
    loop {
        if let Some(end) = find_head_end(buf, searched) {
            let head = parse_head(buf.get(..end).unwrap_or_default()).map_err(|e| (e, true))?;
            if (100..200).contains(&head.status) {
                if head.status == 101 {
                    return Err((Error::invalid("101 Switching Protocols, unasked"), true));
                }
                // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                buf.drain(..end);
                searched = 0;
                continue;
            }
            return Ok(Head { len: end, ..head });
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err((
                Error::invalid(format!(
                    "the response head is longer than {MAX_HEAD_BYTES} bytes"
                )),
                true,
            ));
        }
        searched = buf.len().saturating_sub(3);
        let answered = !buf.is_empty();
        match fill(connection, buf, MAX_HEAD_BYTES) {
            Ok(0) => {
                let message = if answered {
                    "the server closed the connection in the middle of the response head"
                } else {
                    "the server closed the connection without answering"
                };
                return Err((
                    Error::new(ErrorKind::Connection, message.to_owned()),
                    answered,
                ));
            }
            Ok(_) => {}
            Err(e) => return Err((Error::io(Stage::Response, e, timeout), answered)),
        }
    }
}

/// Reads once from the connection, appending to `buf` (at most up to `limit` bytes
/// in all). Returns how many bytes came; 0 is the end of the stream.
fn fill(connection: &mut Connection, buf: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    let start = buf.len();
    let want = READ_CHUNK.min(limit.saturating_sub(start)).max(1);
    buf.resize(start + want, 0);
    let result = connection.read(buf.get_mut(start..).unwrap_or_default());
    buf.truncate(start + *result.as_ref().unwrap_or(&0));
    result
}

/// The index just past the blank line ending the head, searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4)
}

/// Parses a status line and headers (`head` ends with the blank line).
fn parse_head(head: &[u8]) -> Result<Head, Error> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let shown =
        || String::from_utf8_lossy(status_line.get(..80).unwrap_or(status_line)).into_owned();
    let (http_1_1, rest) = if let Some(rest) = status_line.strip_prefix(b"HTTP/1.1 ") {
        (true, rest)
    } else if let Some(rest) = status_line.strip_prefix(b"HTTP/1.0 ") {
        (false, rest)
    } else {
        return Err(Error::invalid(format!(
            "expected an HTTP/1.x status line, got {:?}",
            shown()
        )));
    };
    let status = match rest.get(..3) {
        Some(digits)
            if digits.iter().all(u8::is_ascii_digit) && rest.get(3).is_none_or(|&b| b == b' ') =>
        {
            digits
                .iter()
                .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
        }
        _ => {
            return Err(Error::invalid(format!(
                "expected a 3-digit status code, got {:?}",
                shown()
            )))
        }
    };
    let mut head = Head {
        status,
        retry_after: None,
        location: None,
        framing: Framing::UntilClose,
        keep_alive: http_1_1,
        len: head.len(),
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Error::invalid(format!(
                "a header line without ':': {:?}",
                String::from_utf8_lossy(line.get(..80).unwrap_or(line))
            )));
        };
        let (name, value) = line.split_at(colon);
        let value = trim(value.get(1..).unwrap_or_default());
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted.as_bytes());
        if is("content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Error::invalid("a malformed Content-Length"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(Error::invalid("two different Content-Length headers"));
            }
            length = Some(parsed);
        } else if is("transfer-encoding") {
            transfer_encoding = true;
            // Chunked must be the last coding; anything else is read until close.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if is("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                }
            }
        } else if is("retry-after") {
            head.retry_after = Some(String::from_utf8_lossy(value).into_owned());
        } else if is("location") {
            head.location = Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    head.framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    if head.framing == Framing::UntilClose {
        head.keep_alive = false;
    }
    Ok(head)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Reads a body through its framing from what is buffered (`buf[pos..]`), then from
/// the connection. It can stop at a byte budget and go on later.
struct BodyReader<'a> {
    connection: &'a mut Connection,
    buf: &'a mut Vec<u8>,
    pos: usize,
    framing: Framing,
    /// Bytes left: of the body (`Length`) or of the current chunk (`Chunked`).
    left: u64,
    /// Inside a chunk's data, whose CRLF is still to come.
    in_chunk: bool,
    /// A chunk-size or trailer line being read.
    line: &'a mut Vec<u8>,
}

impl BodyReader<'_> {
    /// How many bytes are buffered, reading more when none are left. 0 is the end of
    /// the stream.
    fn available(&mut self) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            fill(self.connection, self.buf, READ_CHUNK)?;
        }
        Ok(self.buf.len() - self.pos)
    }

    /// Appends up to `limit` body bytes to `out`. Returns whether the body's end was
    /// reached.
    fn read_into(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
        self.consume(limit, |bytes| out.extend_from_slice(bytes))
    }

    /// Reads and discards up to `limit` body bytes. Returns whether the end was reached.
    fn skip(&mut self, limit: usize) -> io::Result<bool> {
        self.consume(limit, |_| {})
    }

    /// Passes up to `limit` body bytes to `sink`; returns whether the end was reached.
    fn consume(&mut self, limit: usize, mut sink: impl FnMut(&[u8])) -> io::Result<bool> {
        let mut budget = limit;
        loop {
            match self.framing {
                Framing::Empty => return Ok(true),
                Framing::Length(_) if self.left == 0 => {
                    self.framing = Framing::Empty;
                    return Ok(true);
                }
                Framing::Chunked if self.left == 0 => {
                    if self.in_chunk {
                        self.chunk_end()?;
                        self.in_chunk = false;
                    }
                    match self.chunk_size()? {
                        0 => {
                            self.trailers()?;
                            self.framing = Framing::Empty;
                            return Ok(true);
                        }
                        size => {
                            self.left = size;
                            self.in_chunk = true;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            if budget == 0 {
                return Ok(false);
            }
            let available = self.available()?;
            if available == 0 {
                if self.framing == Framing::UntilClose {
                    self.framing = Framing::Empty;
                    return Ok(true);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut take = available.min(budget);
            if self.framing != Framing::UntilClose {
                take = take.min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= take as u64;
            }
            sink(self.buf.get(self.pos..self.pos + take).unwrap_or_default());
            self.pos += take;
            budget -= take;
        }
    }

    /// A chunk-size line: hex digits, maybe `;extensions`.
    fn chunk_size(&mut self) -> io::Result<u64> {
        self.read_line()?;
        let size = self
            .line
            .split(|&b| b == b';')
            .next()
            .map(trim)
            .unwrap_or_default();
        std::str::from_utf8(size)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 15)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a malformed chunk size"))
    }

    /// The CRLF after a chunk's data.
    fn chunk_end(&mut self) -> io::Result<()> {
        self.read_line()?;
        if self.line.is_empty() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk data longer than its size",
            ))
        }
    }

    /// Trailer lines after the last chunk, up to the blank line.
    fn trailers(&mut self) -> io::Result<()> {
        loop {
            self.read_line()?;
            if self.line.is_empty() {
                return Ok(());
            }
        }
    }

    /// The next line into `self.line` (without CRLF), at most [`MAX_LINE_BYTES`].
    fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        loop {
            let available = self.available()?;
            if available == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let bytes = self.buf.get(self.pos..).unwrap_or_default();
            let (taken, done) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (bytes.len(), false),
            };
            self.line
                .extend_from_slice(bytes.get(..taken).unwrap_or_default());
            self.pos += taken + usize::from(done);
            if self.line.len() > MAX_LINE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a chunked-body line longer than 4 KiB",
                ));
            }
            if done {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sc_agent_testkit::receiver::{Receiver, Reply};
    use std::net::TcpListener;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// An empty WriteRequest, snappy-compressed: what the test receiver decodes.
    fn empty_batch() -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&[]).unwrap()
    }

    fn destination(url: &str) -> Destination {
        Destination::new(
            Endpoint::parse(url).unwrap(),
            &[("Content-Encoding", "snappy")],
            #[cfg(feature = "tls")]
            None,
        )
    }

    fn post(client: &mut Client, to: &Destination) -> Result<u16, Error> {
        client
            .post(to, &empty_batch(), TIMEOUT, 256)
            .map(|r| r.status)
    }

    /// A server for one connection that reads each request and writes the next of
    /// `answers` as given, then closes. Returns its port and the requests it read.
    fn canned(answers: Vec<Vec<u8>>) -> (u16, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut requests = 0;
            for answer in answers {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return requests;
                    }
                    request.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                stream.read_exact(&mut body).unwrap();
                requests += 1;
                stream.write_all(&answer).unwrap();
            }
            requests
        });
        (port, server)
    }

    fn url(port: u16) -> String {
        format!("http://127.0.0.1:{port}/write")
    }

    #[test]
    fn keep_alive_carries_many_requests_over_one_connection() {
        let receiver = Receiver::start(|_| Reply::ok());
        let to = destination(&receiver.url());
        let mut client = Client::new();
        for _ in 0..5 {
            assert_eq!(post(&mut client, &to).unwrap(), 204);
            assert!(client.is_connected());
        }
        assert_eq!(receiver.connections(), 1);
        let positions: Vec<_> = receiver
            .received()
            .iter()
            .map(|r| (r.connection, r.on_connection))
            .collect();
        assert_eq!(positions, [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]);
        assert_eq!(client.stats.opened, 1);
    }

    #[test]
    fn a_connection_the_server_closed_while_idle_is_replaced_before_sending() {
        let receiver = Receiver::start(|_| Reply::ok());
        receiver.close_idle_after(Duration::from_millis(50));
        let to = destination(&receiver.url());
        let mut client = Client::new();
        for _ in 0..3 {
            assert_eq!(post(&mut client, &to).unwrap(), 204);
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(receiver.connections(), 3);
        assert_eq!(
            receiver.received().len(),
            3,
            "no request was lost or repeated"
        );
        assert_eq!((client.stats.opened, client.stats.resent), (3, 0));
    }

    #[test]
    fn a_request_meeting_a_closing_connection_is_sent_again_once() {
        // The second request finds the kept connection closed as it arrives.
        let receiver = Receiver::start(|n| if n == 1 { Reply::Close } else { Reply::ok() });
        let to = destination(&receiver.url());
        let mut client = Client::new();
        assert_eq!(post(&mut client, &to).unwrap(), 204);
        assert_eq!(post(&mut client, &to).unwrap(), 204);
        assert_eq!(client.stats.resent, 1);
        assert_eq!(receiver.connections(), 2);
        assert_eq!(receiver.received().len(), 3);

        // On a new connection the same is a failure: the server never answers.
        let receiver = Receiver::start(|_| Reply::Close);
        let to = destination(&receiver.url());
        let mut client = Client::new();
        let error = post(&mut client, &to).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Connection, "{error}");
        assert!(error.to_string().contains("without answering"), "{error}");
        assert_eq!(receiver.received().len(), 1, "not sent again");
        assert!(!client.is_connected());
    }

    #[test]
    fn timeouts_below_a_second_are_honoured() {
        let receiver = Receiver::start(|_| Reply::Hang);
        let to = destination(&receiver.url());
        let mut client = Client::new();
        let started = Instant::now();
        let error = client
            .post(&to, &empty_batch(), Duration::from_millis(250), 0)
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.kind, ErrorKind::Timeout, "{error}");
        assert_eq!(
            error.to_string(),
            "timed out while reading the response (timeout 250ms)"
        );
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(450),
            "{took:?}"
        );
        assert!(!client.is_connected(), "a timed-out connection is dropped");
    }

    #[test]
    fn bodies_are_read_by_their_framing_and_bounded() {
        let chunked = "HTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\n\
                       5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
        let answers: Vec<String> = vec![
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nDate: x\r\n\r\n".into(),
            chunked.into(),
            chunked.into(),
            "HTTP/1.1 503 E\r\nRetry-After:  2 \r\ncontent-length: 4\r\n\r\nbusy".into(),
            "HTTP/1.1 307 R\r\nLocation: http://elsewhere/?auth=x\r\nContent-Length: 0\r\n\r\n"
                .into(),
            // Longer than what is kept, within the drain limit: the connection stays.
            format!(
                "HTTP/1.1 400 E\r\nContent-Length: 10000\r\n\r\n{}",
                "x".repeat(10_000)
            ),
            // Longer than both: the rest is left unread and the connection closed.
            format!(
                "HTTP/1.1 500 E\r\nContent-Length: {}\r\n\r\n{}",
                1 << 20,
                "y".repeat(1 << 20)
            ),
        ];
        let (port, server) = canned(answers.into_iter().map(String::into_bytes).collect());
        let to = destination(&url(port));
        let mut client = Client::new();
        type Seen = (u16, String, bool, Option<String>, Option<String>, bool);
        let mut send = |keep: usize| -> Seen {
            let r = client.post(&to, b"body", TIMEOUT, keep).unwrap();
            let seen = (
                r.status,
                String::from_utf8_lossy(r.body).into_owned(),
                r.body_complete,
                r.retry_after.clone(),
                r.location.clone(),
            );
            (
                seen.0,
                seen.1,
                seen.2,
                seen.3,
                seen.4,
                client.is_connected(),
            )
        };
        let text = |t: &str| t.to_owned();
        assert_eq!(send(256), (204, text(""), true, None, None, true));
        assert_eq!(
            send(256),
            (500, text("hello world"), true, None, None, true)
        );
        // Kept in part, the rest of the chunks drained: still reusable.
        assert_eq!(send(2), (500, text("he"), false, None, None, true));
        assert_eq!(
            send(256),
            (503, text("busy"), true, Some(text("2")), None, true)
        );
        let location = Some(text("http://elsewhere/?auth=x"));
        assert_eq!(send(256), (307, text(""), true, None, location, true));
        let kept = send(256);
        assert_eq!((kept.1.len(), kept.2, kept.5), (256, false, true));
        let kept = send(256);
        assert_eq!(
            (kept.0, kept.1.len(), kept.2, kept.5),
            (500, 256, false, false)
        );
        assert_eq!(server.join().unwrap(), 7, "all over one connection");
        assert_eq!(client.stats.opened, 1);
    }

    #[test]
    fn the_server_decides_whether_the_connection_stays() {
        for (answer, stays) in [
            ("HTTP/1.1 204 N\r\n\r\n", true),
            (
                "HTTP/1.1 204 N\r\nConnection: keep-alive, Close\r\n\r\n",
                false,
            ),
            ("HTTP/1.0 204 N\r\n\r\n", false),
            // No length: the body runs to the end of the connection.
            ("HTTP/1.1 200 OK\r\n\r\nall of it", false),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz",
                false,
            ),
            // Bytes after the answer belong to no request.
            ("HTTP/1.1 204 N\r\n\r\nHTTP/1.1 204 N\r\n\r\n", false),
        ] {
            let (port, server) = canned(vec![answer.as_bytes().to_vec()]);
            let mut client = Client::new();
            let response = client.post(&destination(&url(port)), b"x", TIMEOUT, 64);
            assert!(response.is_ok(), "{answer:?}: {:?}", response.err());
            assert_eq!(client.is_connected(), stays, "{answer:?}");
            drop(client);
            server.join().unwrap();
        }
    }

    #[test]
    fn malformed_answers_are_invalid_responses() {
        let long = format!(
            "HTTP/1.1 204 N\r\nX-Long: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        for (answer, expected) in [
            (
                "SSH-2.0-OpenSSH_9.2\r\n\r\n",
                "expected an HTTP/1.x status line",
            ),
            ("HTTP/1.1 2x4 OK\r\n\r\n", "3-digit status code"),
            ("HTTP/1.1 2040 OK\r\n\r\n", "3-digit status code"),
            ("HTTP/1.1 204 N\r\nno colon here\r\n\r\n", "without ':'"),
            (
                "HTTP/1.1 200 N\r\nContent-Length: -1\r\n\r\n",
                "malformed Content-Length",
            ),
            (
                "HTTP/1.1 200 N\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "two different",
            ),
            ("HTTP/1.1 101 Switching\r\n\r\n", "101"),
            (long.as_str(), "longer than 16384 bytes"),
        ] {
            let (port, server) = canned(vec![answer.as_bytes().to_vec()]);
            let mut client = Client::new();
            let error = client
                .post(&destination(&url(port)), b"x", TIMEOUT, 64)
                .unwrap_err();
            assert_eq!(
                error.kind,
                ErrorKind::InvalidResponse,
                "{answer:?}: {error}"
            );
            assert!(error.to_string().contains(expected), "{answer:?}: {error}");
            assert!(!client.is_connected());
            drop(client);
            server.join().unwrap();
        }
        // A broken chunked body still gives the status; the connection goes.
        let (port, server) = canned(vec![
            b"HTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n".to_vec(),
        ]);
        let mut client = Client::new();
        let response = client
            .post(&destination(&url(port)), b"x", TIMEOUT, 64)
            .unwrap();
        assert_eq!((response.status, response.body_complete), (500, false));
        assert!(!client.is_connected());
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn an_answer_before_the_whole_body_was_taken_is_read() {
        // The server reads the head only, refuses the body and closes: the client's
        // write breaks, but the 413 is what it reports.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let answer =
                "HTTP/1.1 413 Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!";
            stream.write_all(answer.as_bytes()).unwrap();
        });
        let body = vec![b'x'; 16 << 20];
        let mut client = Client::new();
        let response = client
            .post(&destination(&url(port)), &body, TIMEOUT, 64)
            .unwrap();
        assert_eq!((response.status, response.body), (413, &b"too big!"[..]));
        assert!(!client.is_connected());
        server.join().unwrap();
    }

    #[test]
    fn a_refused_connection_is_a_connection_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = post(&mut Client::new(), &destination(&url(port))).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Connection);
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
            "{error}"
        );
        let error = post(
            &mut Client::new(),
            &destination("http://no-such-host.invalid/"),
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Connection);
        assert!(
            error
                .to_string()
                .starts_with("cannot resolve no-such-host.invalid"),
            "{error}"
        );
    }

    #[cfg(feature = "tls")]
    mod tls {
        use super::*;
        use crate::config::tls::TlsOptions;
        use sc_agent_testkit::receiver::tls::{
            make_certificates, make_client_certificate, mtls_receiver, tls_receiver,
        };
        use std::path::Path;

        fn https(url: &str, ca: &Path, client: Option<(&Path, &Path)>) -> Destination {
            let mut options = TlsOptions {
                ca_file: Some(ca.to_owned()),
                cert_file: client.map(|(cert, _)| cert.to_owned()),
                key_file: client.map(|(_, key)| key.to_owned()),
                ..TlsOptions::default()
            };
            options.read_files().unwrap();
            let endpoint = Endpoint::parse(url).unwrap();
            let tls = crate::remote_write::tls::build(&options, &endpoint.host).map(Arc::new);
            Destination::new(endpoint, &[("Content-Encoding", "snappy")], Some(tls))
        }

        #[test]
        fn a_reconnection_resumes_the_tls_session() {
            let dir = crate::testing::TempDir::new();
            let (ca, cert, key) = make_certificates(dir.path());
            let receiver = tls_receiver(&cert, &key);
            receiver.close_idle_after(Duration::from_millis(50));
            let to = https(&receiver.https_url(), &ca, None);
            let mut client = Client::new();
            assert_eq!(post(&mut client, &to).unwrap(), 204);
            assert_eq!(
                post(&mut client, &to).unwrap(),
                204,
                "kept: no new handshake"
            );
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                post(&mut client, &to).unwrap(),
                204,
                "after the server closed it"
            );
            assert_eq!(receiver.connections(), 2);
            assert_eq!(receiver.resumed_sessions(), 1);
            assert_eq!((client.stats.opened, client.stats.resumed), (2, 1));
        }

        #[test]
        fn mutual_tls_needs_the_client_certificate() {
            let dir = crate::testing::TempDir::new();
            let (ca, cert, key) = make_certificates(dir.path());
            let (client_cert, client_key) = make_client_certificate(dir.path(), "agent");
            let receiver = mtls_receiver(&cert, &key, &ca);
            let with = https(
                &receiver.https_url(),
                &ca,
                Some((&client_cert, &client_key)),
            );
            assert_eq!(post(&mut Client::new(), &with).unwrap(), 204);
            let without = https(&receiver.https_url(), &ca, None);
            let error = post(&mut Client::new(), &without).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Tls, "{error}");
            assert_eq!(
                receiver.received().len(),
                1,
                "the anonymous request never arrived"
            );
        }

        #[test]
        fn an_untrusted_certificate_and_a_silent_server_fail_as_tls_and_timeout() {
            let dir = crate::testing::TempDir::new();
            let (_, cert, key) = make_certificates(dir.path());
            let other = crate::testing::TempDir::new();
            let (other_ca, _, _) = make_certificates(other.path());
            let receiver = tls_receiver(&cert, &key);
            let error = post(
                &mut Client::new(),
                &https(&receiver.https_url(), &other_ca, None),
            )
            .unwrap_err();
            assert_eq!(error.kind, ErrorKind::Tls, "{error}");
            // The other CA has the same name: the chain is found, its signature fails.
            assert!(
                error.to_string().contains("invalid peer certificate"),
                "{error}"
            );
            assert!(receiver.received().is_empty());

            // Accepts the connection (in the kernel's backlog) but never speaks TLS.
            let silent = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("https://127.0.0.1:{}/", silent.local_addr().unwrap().port());
            let started = Instant::now();
            let error = Client::new()
                .post(
                    &https(&url, &other_ca, None),
                    b"x",
                    Duration::from_millis(200),
                    0,
                )
                .unwrap_err();
            assert_eq!(error.kind, ErrorKind::Timeout, "{error}");
            assert!(
                error.to_string().contains("in the TLS handshake"),
                "{error}"
            );
            assert!(started.elapsed() < Duration::from_millis(400));
        }
    }
}
