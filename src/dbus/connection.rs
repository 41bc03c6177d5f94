//! A blocking D-Bus client connection over a Unix socket, every step bounded by a
//! deadline.
//!
//! [`Connection::open`] connects, authenticates with SASL `EXTERNAL` (the process's
//! uid, which the server checks against the socket's peer credentials) and, on a bus,
//! says `Hello` to get a unique name; on a peer-to-peer server such as systemd's
//! private socket there is no bus and no `Hello`. Method calls get increasing
//! serials; replies are matched by their reply serial, and everything else on the
//! connection (signals such as the bus's `NameAcquired`, calls to the agent, replies
//! to calls given up on) is read and dropped.
//!
//! The socket is non-blocking and every wait is a `poll` bounded by the caller's
//! deadline, so a peer that stops answering costs at most the deadline, never a hung
//! loop thread. Messages larger than [`MAX_MESSAGE_BYTES`] are refused. The read
//! buffer and the write buffer are kept for the connection's life: a steady stream of
//! calls allocates nothing.
//!
//! After any [`Error`] but [`Error::keeps_connection`] the connection is unusable (the
//! peer closed it, it timed out mid-message, or it sent bytes that do not parse);
//! the caller drops it and opens a new one, as after systemd re-executes.

use super::address::{Address, Endpoint};
use super::message::{self, Fields, Kind, Message, PREFIX_BYTES};
use super::wire::{DecodeError, Reader, Value};
use super::Error;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use nix::sys::time::{TimeVal, TimeValLike};
use std::io::{self, Read};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The largest message accepted. systemd's `ListUnits` reply is about 250 bytes a
/// unit, so this is room for some 16,000 units; the read buffer grows to the largest
/// message seen and stays that size.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// The read buffer's first size: most replies fit.
const INITIAL_READ_BUFFER: usize = 16 << 10;

/// The longest line of the SASL exchange accepted from a server.
const MAX_AUTH_LINE: usize = 1024;

/// The bus daemon's own name, object and interface.
pub const BUS_NAME: &str = "org.freedesktop.DBus";
pub const BUS_PATH: &str = "/org/freedesktop/DBus";
pub const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// A method call to make.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The bus name to deliver to (ignored on a peer-to-peer connection).
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: &'a [Value<'a>],
}

/// An error reply, borrowed from the connection's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteError<'a> {
    pub name: &'a str,
    pub message: &'a str,
}

impl RemoteError<'_> {
    pub fn to_error(self) -> Error {
        Error::Remote {
            name: self.name.to_owned(),
            message: self.message.to_owned(),
        }
    }
}

/// A property's value: the variant's type and a reader positioned at the value.
#[derive(Clone, Debug)]
pub struct Property<'a> {
    pub signature: &'a str,
    reader: Reader<'a>,
}

impl<'a> Property<'a> {
    /// The variant inside the body of a `Properties.Get` reply.
    pub fn from_reply(reply: &Message<'a>) -> Result<Self, Error> {
        expect_signature(reply, "v")?;
        let mut reader = reply.body();
        let signature = reader.variant().map_err(Error::Malformed)?;
        Ok(Property { signature, reader })
    }

    fn typed<T>(
        mut self,
        want: &str,
        read: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<T, Error> {
        if self.signature != want {
            return Err(Error::Unexpected(format!(
                "property of type {:?}, expected {want:?}",
                self.signature
            )));
        }
        read(&mut self.reader).map_err(Error::Malformed)
    }

    pub fn str(self) -> Result<&'a str, Error> {
        self.typed("s", Reader::str)
    }

    pub fn u32(self) -> Result<u32, Error> {
        self.typed("u", Reader::u32)
    }

    pub fn u64(self) -> Result<u64, Error> {
        self.typed("t", Reader::u64)
    }
}

/// Checks a reply's body signature.
pub fn expect_signature(reply: &Message<'_>, want: &str) -> Result<(), Error> {
    if reply.signature == want {
        Ok(())
    } else {
        Err(Error::Unexpected(format!(
            "reply of signature {:?}, expected {want:?}",
            reply.signature
        )))
    }
}

/// One open, authenticated connection.
pub struct Connection {
    stream: UnixStream,
    peer: String,
    /// Received bytes: `rbuf[rstart..rend]` is not consumed yet.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// The message last read, inside `rbuf`; dropped by the next read.
    frame: Range<usize>,
    /// Encoded calls not yet sent.
    wbuf: Vec<u8>,
    next_serial: u32,
    unique_name: Option<String>,
    /// Calls sent by [`Connection::get_properties`] and not yet answered.
    pending: Vec<(u32, usize)>,
}

impl Connection {
    /// Connects to `endpoint` and authenticates; says `Hello` when it is a bus.
    pub fn open(endpoint: &Endpoint, deadline: Instant) -> Result<Self, Error> {
        let peer = endpoint.address.to_string();
        let stream = connect(&endpoint.address, deadline).map_err(|source| Error::Connect {
            address: peer.clone(),
            source,
        })?;
        let mut connection = Connection {
            stream,
            peer,
            rbuf: vec![0; INITIAL_READ_BUFFER],
            rstart: 0,
            rend: 0,
            frame: 0..0,
            wbuf: Vec::new(),
            next_serial: 1,
            unique_name: None,
            pending: Vec::new(),
        };
        connection.authenticate(deadline)?;
        if endpoint.bus {
            let call = Call {
                destination: Some(BUS_NAME),
                path: BUS_PATH,
                interface: BUS_NAME,
                member: "Hello",
                args: &[],
            };
            let reply = connection.call(&call, deadline)?;
            expect_signature(&reply, "s")?;
            let name = reply.body().str().map_err(Error::Malformed)?.to_owned();
            connection.unique_name = Some(name);
        }
        Ok(connection)
    }

    /// The address this connection went to, for messages.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Whether this is a connection to a bus daemon rather than to a peer.
    pub fn is_bus(&self) -> bool {
        self.unique_name.is_some()
    }

    /// The unique name the bus gave (`:1.42`); `None` peer-to-peer.
    pub fn unique_name(&self) -> Option<&str> {
        self.unique_name.as_deref()
    }

    /// SASL: `AUTH EXTERNAL <uid in hex-encoded decimal>`, `OK <guid>`, `BEGIN`.
    fn authenticate(&mut self, deadline: Instant) -> Result<(), Error> {
        let uid = nix::unistd::getuid().as_raw();
        self.wbuf.extend_from_slice(b"\0AUTH EXTERNAL ");
        for digit in uid.to_string().bytes() {
            self.wbuf
                .extend_from_slice(format!("{digit:02x}").as_bytes());
        }
        self.wbuf.extend_from_slice(b"\r\n");
        self.flush(deadline)?;
        let line = self.read_line(deadline)?;
        if !line.starts_with("OK ") {
            return Err(Error::Auth(format!(
                "{} refused EXTERNAL authentication as uid {uid}: {line:?}",
                self.peer
            )));
        }
        self.wbuf.extend_from_slice(b"BEGIN\r\n");
        self.flush(deadline)?;
        self.wait_until_read(deadline)
    }

    /// Waits until the server has read everything sent (the socket's send queue,
    /// `SIOCOUTQ`, is empty).
    ///
    /// sd-bus (systemd's private socket, seen with systemd 252) reads the end of the
    /// authentication in one go with whatever follows it, then leaves a message read
    /// along with `BEGIN` unprocessed until more bytes arrive: a first call sent just
    /// after `BEGIN` waits forever. So the first message goes only once `BEGIN` is
    /// read, and then wakes the server as any later message does.
    fn wait_until_read(&self, deadline: Instant) -> Result<(), Error> {
        loop {
            let mut unread: nix::libc::c_int = 0;
            // SAFETY: TIOCOUTQ (SIOCOUTQ on a socket) writes one int, to `unread`,
            // which outlives the call; the descriptor is owned by `self.stream`.
            let rc = unsafe {
                nix::libc::ioctl(self.stream.as_raw_fd(), nix::libc::TIOCOUTQ, &mut unread)
            };
            if rc < 0 {
                return Err(self.io("authenticating", io::Error::last_os_error()));
            }
            if unread == 0 {
                return Ok(());
            }
            if poll_timeout(deadline).is_none() {
                return Err(Error::Timeout {
                    peer: self.peer.clone(),
                    doing: "waiting for the server to read BEGIN",
                });
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// One line of the SASL exchange, without its `\r\n`.
    fn read_line(&mut self, deadline: Instant) -> Result<String, Error> {
        loop {
            let pending = self.rbuf.get(self.rstart..self.rend).unwrap_or_default();
            if let Some(at) = pending.windows(2).position(|w| w == b"\r\n") {
                let line =
                    String::from_utf8_lossy(pending.get(..at).unwrap_or_default()).into_owned();
                self.rstart += at + 2;
                return Ok(line);
            }
            if pending.len() >= MAX_AUTH_LINE {
                return Err(Error::Auth(format!(
                    "{} sent an authentication line over {MAX_AUTH_LINE} bytes",
                    self.peer
                )));
            }
            self.room_for(pending.len() + 1);
            self.fill(deadline, "authentication")?;
        }
    }

    /// Encodes a call into the write buffer; returns its serial. Sent by the next
    /// [`Connection::flush`].
    pub fn queue(&mut self, call: &Call<'_>) -> u32 {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.checked_add(1).unwrap_or(1);
        let fields = Fields {
            path: Some(call.path),
            interface: Some(call.interface),
            member: Some(call.member),
            destination: call.destination,
            ..Fields::default()
        };
        message::encode(
            Kind::MethodCall,
            0,
            serial,
            &fields,
            call.args,
            &mut self.wbuf,
        );
        serial
    }

    /// Sends everything queued.
    pub fn flush(&mut self, deadline: Instant) -> Result<(), Error> {
        let mut sent = 0;
        while sent < self.wbuf.len() {
            let rest = self.wbuf.get(sent..).unwrap_or_default();
            match socket::send(self.stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
                Ok(0) => return Err(self.closed("sending")),
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => self.wait(PollFlags::POLLOUT, deadline, "sending")?,
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(self.io("sending", errno.into())),
            }
        }
        self.wbuf.clear();
        Ok(())
    }

    /// Makes a call and waits for its reply. An error reply is [`Error::Remote`].
    pub fn call(&mut self, call: &Call<'_>, deadline: Instant) -> Result<Message<'_>, Error> {
        let serial = self.queue(call);
        self.flush(deadline)?;
        while self.next_reply(deadline)? != serial {}
        let reply = self.last()?;
        if reply.kind == Kind::Error {
            return Err(remote_error(&reply).to_error());
        }
        Ok(reply)
    }

    /// `org.freedesktop.DBus.Properties.Get(interface, property)` on `path`.
    pub fn get_property(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        property: &str,
        deadline: Instant,
    ) -> Result<Property<'_>, Error> {
        let args = [Value::Str(interface), Value::Str(property)];
        let call = Call {
            destination: Some(destination),
            path,
            interface: PROPERTIES,
            member: "Get",
            args: &args,
        };
        let reply = self.call(&call, deadline)?;
        Property::from_reply(&reply)
    }

    /// `Properties.Get` for each `(path, interface, property)` of `requests`, with up
    /// to `window` calls in flight at once (one round trip per window rather than
    /// per call). `on_reply` gets each request's index and its answer, in the order
    /// the answers come. An error reply goes to `on_reply`; any other error ends the
    /// whole exchange.
    pub fn get_properties<'r, I, F>(
        &mut self,
        destination: &str,
        requests: I,
        window: usize,
        deadline: Instant,
        mut on_reply: F,
    ) -> Result<(), Error>
    where
        I: IntoIterator<Item = (&'r str, &'r str, &'r str)>,
        F: FnMut(usize, Result<Property<'_>, Error>),
    {
        let mut requests = requests.into_iter().enumerate();
        let mut pending = std::mem::take(&mut self.pending);
        pending.clear();
        let window = window.max(1);
        let result = loop {
            // Topped up when half the window is answered: one send per half window.
            if pending.len() <= window / 2 {
                let room = window - pending.len();
                for (index, (path, interface, property)) in requests.by_ref().take(room) {
                    let args = [Value::Str(interface), Value::Str(property)];
                    let call = Call {
                        destination: Some(destination),
                        path,
                        interface: PROPERTIES,
                        member: "Get",
                        args: &args,
                    };
                    pending.push((self.queue(&call), index));
                }
            }
            if pending.is_empty() {
                break Ok(());
            }
            if let Err(e) = self.flush(deadline) {
                break Err(e);
            }
            let serial = match self.next_reply(deadline) {
                Ok(serial) => serial,
                Err(e) => break Err(e),
            };
            // A reply to none of these is to a call given up on earlier: dropped.
            let Some(at) = pending.iter().position(|&(s, _)| s == serial) else {
                continue;
            };
            let (_, index) = pending.swap_remove(at);
            match self.last() {
                Ok(reply) if reply.kind == Kind::Error => {
                    on_reply(index, Err(remote_error(&reply).to_error()));
                }
                Ok(reply) => on_reply(index, Property::from_reply(&reply)),
                Err(e) => break Err(e),
            }
        };
        self.pending = pending;
        result
    }

    /// The next message of any kind (a call to this connection, a signal, a reply).
    pub fn receive(&mut self, deadline: Instant) -> Result<Message<'_>, Error> {
        self.read_frame(deadline)?;
        self.last()
    }

    /// Reads messages until a method return or error arrives; returns its reply
    /// serial. The message stays readable with [`Connection::last`].
    fn next_reply(&mut self, deadline: Instant) -> Result<u32, Error> {
        loop {
            self.read_frame(deadline)?;
            let message = self.last()?;
            if let (Kind::MethodReturn | Kind::Error, Some(serial)) =
                (message.kind, message.fields.reply_serial)
            {
                return Ok(serial);
            }
            log::trace!(
                "dbus: {} dropped a {:?} {:?}.{:?}",
                self.peer,
                message.kind,
                message.fields.interface,
                message.fields.member
            );
        }
    }

    /// The message last read.
    fn last(&self) -> Result<Message<'_>, Error> {
        let bytes = self.rbuf.get(self.frame.clone()).unwrap_or_default();
        Message::parse(bytes).map_err(Error::Malformed)
    }

    /// Reads until one whole message is in the buffer, and marks it as the last read.
    fn read_frame(&mut self, deadline: Instant) -> Result<(), Error> {
        // The previous message is done with.
        self.rstart = self.rstart.max(self.frame.end);
        self.frame = 0..0;
        loop {
            let pending = self.rbuf.get(self.rstart..self.rend).unwrap_or_default();
            let needed = match pending.get(..PREFIX_BYTES) {
                Some(prefix) => {
                    message::frame_length(prefix, MAX_MESSAGE_BYTES).map_err(Error::Malformed)?
                }
                None => PREFIX_BYTES,
            };
            if pending.len() >= needed {
                self.frame = self.rstart..self.rstart + needed;
                return Ok(());
            }
            self.room_for(needed);
            self.fill(deadline, "waiting for a reply")?;
        }
    }

    /// Makes the buffer hold at least `needed` bytes from `rstart` on.
    fn room_for(&mut self, needed: usize) {
        if self.rbuf.len() - self.rstart >= needed {
            return;
        }
        self.rbuf.copy_within(self.rstart..self.rend, 0);
        self.rend -= self.rstart;
        self.rstart = 0;
        self.frame = 0..0;
        if self.rbuf.len() < needed {
            // Doubling, up to the message limit (`needed` is never above it).
            let size = (2 * self.rbuf.len()).min(MAX_MESSAGE_BYTES).max(needed);
            self.rbuf.resize(size, 0);
        }
    }

    /// Reads what the socket has (at least one byte), waiting until `deadline`.
    fn fill(&mut self, deadline: Instant, doing: &'static str) -> Result<(), Error> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        loop {
            let space = self.rbuf.get_mut(self.rend..).unwrap_or_default();
            match (&self.stream).read(space) {
                Ok(0) => return Err(self.closed(doing)),
                Ok(n) => {
                    self.rend += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLIN, deadline, doing)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(doing, e)),
            }
        }
    }

    /// Waits until the socket is ready for `events`, or `deadline`.
    fn wait(&self, events: PollFlags, deadline: Instant, doing: &'static str) -> Result<(), Error> {
        loop {
            let timeout = poll_timeout(deadline).ok_or_else(|| Error::Timeout {
                peer: self.peer.clone(),
                doing,
            })?;
            let mut fds = [PollFd::new(self.stream.as_fd(), events)];
            match poll(&mut fds, timeout) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => return Ok(()),
                Err(errno) => return Err(self.io(doing, errno.into())),
            }
        }
    }

    fn closed(&self, doing: &'static str) -> Error {
        Error::Closed {
            peer: self.peer.clone(),
            doing,
        }
    }

    fn io(&self, doing: &'static str, source: io::Error) -> Error {
        Error::Io {
            peer: self.peer.clone(),
            doing,
            source,
        }
    }
}

fn remote_error<'a>(reply: &Message<'a>) -> RemoteError<'a> {
    RemoteError {
        name: reply.fields.error_name.unwrap_or_default(),
        message: reply.error_text(),
    }
}

/// The time left until `deadline` as a poll timeout (rounded up to a millisecond),
/// or `None` when it has passed.
fn poll_timeout(deadline: Instant) -> Option<PollTimeout> {
    let left = deadline.checked_duration_since(Instant::now())?;
    if left.is_zero() {
        return None;
    }
    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    PollTimeout::try_from(ms).ok()
}

/// Connects a non-blocking Unix stream socket to `address` before `deadline`.
///
/// A Unix `connect` blocks only while the server's listen queue is full (a server
/// that stopped accepting); the socket's send timeout bounds that wait, so the
/// connect is made blocking with that timeout, then the socket turned non-blocking.
fn connect(address: &Address, deadline: Instant) -> io::Result<UnixStream> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = match address {
        Address::Path(path) => UnixAddr::new(path.as_path())?,
        Address::Abstract(name) => UnixAddr::new_abstract(name)?,
    };
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
    // A zero timeval means "no timeout": at least a microsecond.
    let left = left.max(Duration::from_micros(1));
    let micros = i64::try_from(left.as_micros()).unwrap_or(i64::MAX);
    socket::setsockopt(&fd, sockopt::SendTimeout, &TimeVal::microseconds(micros))?;
    match socket::connect(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        // The send timeout ran out with the listen queue still full.
        Err(Errno::EAGAIN) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
        Err(errno) => return Err(errno.into()),
    }
    socket::setsockopt(&fd, sockopt::SendTimeout, &TimeVal::microseconds(0))?;
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    Ok(stream)
}
