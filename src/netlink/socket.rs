//! Netlink sockets: dumps with their retries and limits ([`Socket`]), and change
//! notifications ([`Events`]).
//!
//! A [`Socket`] is opened at its first dump and kept for the next ones, with its
//! request and receive buffers, so a steady-state dump allocates nothing. After
//! anything but a clean end of a dump (a parse error, a timeout, a lost datagram)
//! it is closed, and the next dump opens a fresh one: no half-read answer is ever
//! left in a socket that is used again.

use super::wire::{
    self, Message, Messages, Request, HEADER_LEN, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
    NLMSG_OVERRUN, NLM_F_DUMP_INTR,
};
use super::Error;
use nix::errno::Errno;
use nix::sys::socket::{
    bind, getsockname, recvmsg, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
    NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long one receive may wait for the kernel. Dumps are produced as fast as
/// they are read, so this is only ever reached when something is badly wrong; it
/// keeps the agent's single loop thread from waiting forever.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one dump may take, retries included (checked between datagrams, so a
/// dump ends within this plus one [`RECEIVE_TIMEOUT`]).
const DUMP_DEADLINE: Duration = Duration::from_secs(2);
/// How many times a dump is asked for when the kernel reports that the set changed
/// under it (`NLM_F_DUMP_INTR`) or a datagram was larger than the buffer.
pub const MAX_ATTEMPTS: u32 = 4;
/// The receive buffer to start with: the kernel fills dump datagrams up to 32 KiB
/// (less the skb overhead) when the reader offers that much.
const INITIAL_BUFFER: usize = 32 << 10;
/// The largest datagram accepted. A single message larger than 32 KiB (an
/// interface with hundreds of VFs asked for with RTEXT_FILTER_VF) makes the kernel
/// send a larger datagram; the buffer grows to it, up to this.
const MAX_DATAGRAM: usize = 1 << 20;
/// How many datagrams one [`Events::drain`] reads; more means the changes come
/// faster than the agent reads them, which is reported as lost.
const MAX_DRAIN: usize = 1024;

/// A kind of dump: its request, and where its answers go.
pub trait Dump {
    /// The request's name, for errors (`RTM_GETLINK`).
    fn request_name(&self) -> &'static str;
    /// Writes the whole request message with `seq`.
    fn write_request(&self, request: &mut Request, seq: u32);
    /// The message type of the answers (`RTM_NEWLINK`). Messages of other types in
    /// the answer are skipped.
    fn answer_type(&self) -> u16;
    /// Forgets what an earlier attempt added.
    fn clear(&mut self);
    /// Takes one answer message.
    fn add(&mut self, message: &Message<'_>) -> Result<(), Error>;
    /// Called once the answer is complete.
    fn finish(&mut self) {}
}

/// The protocols this module speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Route,
    SockDiag,
    Generic,
}

impl Protocol {
    fn nix(self) -> SockProtocol {
        match self {
            Protocol::Route => SockProtocol::NetlinkRoute,
            Protocol::SockDiag => SockProtocol::NetlinkSockDiag,
            Protocol::Generic => SockProtocol::NetlinkGeneric,
        }
    }

    /// The call that makes such a socket, as errors name it.
    pub fn socket_call(self) -> &'static str {
        match self {
            Protocol::Route => "socket(NETLINK_ROUTE)",
            Protocol::SockDiag => "socket(NETLINK_SOCK_DIAG)",
            Protocol::Generic => "socket(NETLINK_GENERIC)",
        }
    }
}

/// A netlink socket of one protocol that dumps, opened lazily.
pub struct Socket {
    protocol: Protocol,
    open: Option<Open>,
    seq: u32,
    request: Request,
    buf: Vec<u8>,
}

struct Open {
    fd: OwnedFd,
    /// The port id the kernel gave the socket; answers are addressed to it.
    port: u32,
}

impl Socket {
    /// A socket of `protocol`; nothing is opened until the first dump.
    pub fn new(protocol: Protocol) -> Self {
        Socket {
            protocol,
            open: None,
            seq: 0,
            request: Request::default(),
            buf: Vec::new(),
        }
    }

    /// Opens the socket now if it is not open, so that a caller can tell early
    /// whether netlink is there at all (see [`Error::is_unavailable`]).
    pub fn connect(&mut self) -> Result<(), Error> {
        if self.open.is_none() {
            self.open = Some(open(self.protocol, 0, SockFlag::SOCK_CLOEXEC)?);
            self.buf.resize(INITIAL_BUFFER, 0);
        }
        Ok(())
    }

    /// Whether a socket is open now.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// How many requests this socket has sent (dumps, and their retries).
    #[cfg(test)]
    pub(crate) fn dumps(&self) -> u32 {
        self.seq
    }

    /// Asks for `dump` and hands every answer to it; retried when the kernel says
    /// the set changed under it. On success `dump` holds one consistent answer.
    pub fn dump(&mut self, dump: &mut impl Dump) -> Result<(), Error> {
        let result = self.dump_with_retries(dump);
        match &result {
            Ok(()) | Err(Error::Refused { .. } | Error::Interrupted { .. }) => {}
            // The socket may hold the rest of an answer: start afresh next time.
            Err(_) => self.open = None,
        }
        result
    }

    fn dump_with_retries(&mut self, dump: &mut impl Dump) -> Result<(), Error> {
        self.connect()?;
        let deadline = Instant::now() + DUMP_DEADLINE;
        for _ in 0..MAX_ATTEMPTS {
            dump.clear();
            if self.dump_once(dump, deadline)? == Outcome::Complete {
                dump.finish();
                return Ok(());
            }
        }
        dump.clear();
        Err(Error::Interrupted {
            request: dump.request_name(),
            attempts: MAX_ATTEMPTS,
        })
    }

    fn dump_once(&mut self, dump: &mut impl Dump, deadline: Instant) -> Result<Outcome, Error> {
        let Some(open) = &self.open else {
            return Err(Error::Socket {
                call: self.protocol.socket_call(),
                errno: Errno::EBADF,
            });
        };
        let fd = open.fd.as_raw_fd();
        self.seq = self.seq.wrapping_add(1);
        dump.write_request(&mut self.request, self.seq);
        retry_eintr(|| send(fd, self.request.bytes(), MsgFlags::empty())).map_err(|errno| {
            Error::Socket {
                call: "send",
                errno,
            }
        })?;
        let request = dump.request_name();
        let mut progress = Progress::default();
        let mut offset = 0;
        loop {
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    request,
                    waited: DUMP_DEADLINE,
                });
            }
            let (len, from_kernel) = match receive(fd, &mut self.buf) {
                Ok(received) => received,
                Err(Errno::EAGAIN) => {
                    return Err(Error::Timeout {
                        request,
                        waited: RECEIVE_TIMEOUT,
                    })
                }
                Err(errno) => {
                    return Err(Error::Socket {
                        call: "recvmsg",
                        errno,
                    })
                }
            };
            if len > self.buf.len() {
                // The datagram did not fit and is lost: grow, finish this answer,
                // and ask again.
                if len > MAX_DATAGRAM {
                    return Err(Error::TooLarge {
                        request,
                        what: format!("a datagram of {len} bytes, more than {MAX_DATAGRAM}"),
                    });
                }
                self.buf.resize(len, 0);
                progress.lost = true;
                continue;
            }
            let Some(datagram) = self.buf.get(..len).filter(|_| from_kernel) else {
                continue;
            };
            for message in Messages::new(datagram, offset) {
                let message = message?;
                if message.header.seq != self.seq || message.header.port != open.port {
                    continue; // the answer to an earlier request
                }
                if take(dump, &message, &mut progress)? == Step::Done {
                    return Ok(progress.outcome());
                }
            }
            offset += len;
        }
    }
}

/// Wraps a dump to keep a copy of every answer message, as [`parse_answer`]
/// reads them back: for recording fixtures (`testkit/src/bin/netlink-record.rs`).
pub struct Recording<'a, D> {
    pub inner: &'a mut D,
    pub bytes: Vec<u8>,
}

impl<D: Dump> Dump for Recording<'_, D> {
    fn request_name(&self) -> &'static str {
        self.inner.request_name()
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        self.inner.write_request(request, seq);
    }

    fn answer_type(&self) -> u16 {
        self.inner.answer_type()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.inner.clear();
    }

    fn finish(&mut self) {
        self.inner.finish();
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        let header = message.header;
        self.bytes.extend_from_slice(&header.len.to_ne_bytes());
        self.bytes.extend_from_slice(&header.kind.to_ne_bytes());
        self.bytes.extend_from_slice(&header.flags.to_ne_bytes());
        self.bytes.extend_from_slice(&header.seq.to_ne_bytes());
        self.bytes.extend_from_slice(&header.port.to_ne_bytes());
        self.bytes.extend_from_slice(message.payload);
        self.bytes.resize(wire::align(self.bytes.len()), 0);
        self.inner.add(message)
    }
}

impl<D> Recording<'_, D> {
    /// The recorded answer, ended as the kernel ends a dump.
    pub fn finish(mut self) -> Vec<u8> {
        let len = (HEADER_LEN + 4) as u32;
        let multi: u16 = 0x2; // NLM_F_MULTI
        for field in [
            &len.to_ne_bytes()[..],
            &NLMSG_DONE.to_ne_bytes(),
            &multi.to_ne_bytes(),
            &[0; 8], // sequence number and port
            &0i32.to_ne_bytes(),
        ] {
            self.bytes.extend_from_slice(field);
        }
        self.bytes
    }
}

/// Parses a recorded answer (whole messages, as the socket receives them) into
/// `dump`, as [`Socket::dump`] does with each datagram but without sequence
/// numbers. For tests and fuzzing; an answer without `NLMSG_DONE` is an error.
pub fn parse_answer(bytes: &[u8], dump: &mut impl Dump) -> Result<Outcome, Error> {
    dump.clear();
    let mut progress = Progress::default();
    for message in Messages::new(bytes, 0) {
        if take(dump, &message?, &mut progress)? == Step::Done {
            let outcome = progress.outcome();
            if outcome == Outcome::Complete {
                dump.finish();
            }
            return Ok(outcome);
        }
    }
    Err(Error::malformed(
        "nlmsghdr",
        bytes.len(),
        "the answer ends without NLMSG_DONE".to_owned(),
    ))
}

/// How an attempt at a dump ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// The kernel flagged `NLM_F_DUMP_INTR`, or a datagram was lost: ask again.
    Retry,
}

#[derive(Default)]
struct Progress {
    interrupted: bool,
    lost: bool,
}

impl Progress {
    fn outcome(&self) -> Outcome {
        if self.interrupted || self.lost {
            Outcome::Retry
        } else {
            Outcome::Complete
        }
    }
}

#[derive(PartialEq, Eq)]
enum Step {
    More,
    Done,
}

/// Takes one message of a dump's answer.
fn take(
    dump: &mut impl Dump,
    message: &Message<'_>,
    progress: &mut Progress,
) -> Result<Step, Error> {
    if message.header.flags & NLM_F_DUMP_INTR != 0 {
        progress.interrupted = true;
    }
    let request = dump.request_name();
    match message.header.kind {
        // The payload is the dump's final status, 0 when it succeeded.
        NLMSG_DONE => match wire::i32_at(message.payload, 0) {
            Some(code) if code < 0 => Err(refused(request, code)),
            _ => Ok(Step::Done),
        },
        NLMSG_ERROR => {
            let code = wire::i32_at(message.payload, 0).ok_or_else(|| {
                Error::malformed(
                    "NLMSG_ERROR",
                    message.offset,
                    format!("payload of {} bytes, no error code", message.payload.len()),
                )
            })?;
            if code == 0 {
                Ok(Step::Done) // the acknowledgement that ends a request (NLM_F_ACK)
            } else {
                Err(refused(request, code))
            }
        }
        NLMSG_OVERRUN => Err(Error::malformed(
            "NLMSG_OVERRUN",
            message.offset,
            "the kernel reports lost data".to_owned(),
        )),
        NLMSG_NOOP => Ok(Step::More),
        kind if kind == dump.answer_type() => dump.add(message).map(|()| Step::More),
        _ => Ok(Step::More),
    }
}

fn refused(request: &'static str, code: i32) -> Error {
    Error::Refused {
        request,
        errno: Errno::from_raw(code.saturating_abs()),
    }
}

/// Notifications of a multicast group (interfaces added, changed, removed), read
/// without blocking.
pub struct Events {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// `RTNLGRP_LINK` of <linux/rtnetlink.h>, as a bind mask (`RTMGRP_LINK`).
const RTMGRP_LINK: u32 = 1;

impl Events {
    /// Subscribes to the changes of network interfaces (`RTNLGRP_LINK`).
    pub fn links() -> Result<Events, Error> {
        let open = open(
            Protocol::Route,
            RTMGRP_LINK,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )?;
        Ok(Events {
            fd: open.fd,
            buf: vec![0; INITIAL_BUFFER],
        })
    }

    /// Hands every notification queued since the last call to `each`. Returns
    /// `false` when some were lost (the kernel's queue overflowed, or more came
    /// than one call reads): the caller must then assume that anything changed.
    pub fn drain(&mut self, mut each: impl FnMut(&Message<'_>)) -> Result<bool, Error> {
        let fd = self.fd.as_raw_fd();
        let mut complete = true;
        for _ in 0..MAX_DRAIN {
            let (len, from_kernel) = match receive(fd, &mut self.buf) {
                Ok(received) => received,
                Err(Errno::EAGAIN) => return Ok(complete),
                Err(Errno::ENOBUFS) => {
                    complete = false;
                    continue;
                }
                Err(errno) => {
                    return Err(Error::Socket {
                        call: "recvmsg",
                        errno,
                    })
                }
            };
            if len > self.buf.len() {
                complete = false;
                self.buf.resize(len.min(MAX_DATAGRAM), 0);
                continue;
            }
            let Some(datagram) = self.buf.get(..len).filter(|_| from_kernel) else {
                continue;
            };
            for message in Messages::new(datagram, 0) {
                match message {
                    Ok(message) => each(&message),
                    Err(_) => complete = false,
                }
            }
        }
        Ok(false)
    }
}

/// Opens a netlink socket of `protocol` bound to `groups`, with a receive timeout.
fn open(protocol: Protocol, groups: u32, flags: SockFlag) -> Result<Open, Error> {
    let fd =
        socket(AddressFamily::Netlink, SockType::Raw, flags, protocol.nix()).map_err(|errno| {
            Error::Socket {
                call: protocol.socket_call(),
                errno,
            }
        })?;
    let timeout = TimeVal::new(
        RECEIVE_TIMEOUT.as_secs() as _,
        RECEIVE_TIMEOUT.subsec_micros() as _,
    );
    setsockopt(&fd, sockopt::ReceiveTimeout, &timeout).map_err(|errno| Error::Socket {
        call: "setsockopt(SO_RCVTIMEO)",
        errno,
    })?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(|errno| Error::Socket {
        call: "bind",
        errno,
    })?;
    let port = getsockname::<NetlinkAddr>(fd.as_raw_fd())
        .map_err(|errno| Error::Socket {
            call: "getsockname",
            errno,
        })?
        .pid();
    Ok(Open { fd, port })
}

/// Receives one datagram into `buf`: its full length (larger than `buf` when it
/// did not fit, thanks to `MSG_TRUNC`), and whether the kernel sent it.
fn receive(fd: i32, buf: &mut [u8]) -> Result<(usize, bool), Errno> {
    retry_eintr(|| {
        let mut iov = [IoSliceMut::new(buf)];
        let received = recvmsg::<NetlinkAddr>(fd, &mut iov, None, MsgFlags::MSG_TRUNC)?;
        let from_kernel = received.address.is_some_and(|a| a.pid() == 0);
        Ok((received.bytes, from_kernel))
    })
}

fn retry_eintr<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::build;

    /// Counts the messages of type 16 it is given; fails on a payload of 0xEE.
    #[derive(Default)]
    struct Count {
        seen: usize,
        cleared: usize,
    }

    impl Dump for Count {
        fn request_name(&self) -> &'static str {
            "TEST"
        }
        fn write_request(&self, request: &mut Request, seq: u32) {
            request.begin(18, wire::NLM_F_REQUEST | wire::NLM_F_DUMP, seq);
        }
        fn answer_type(&self) -> u16 {
            16
        }
        fn clear(&mut self) {
            self.seen = 0;
            self.cleared += 1;
        }
        fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
            if message.payload.first() == Some(&0xee) {
                return Err(Error::malformed("TEST", message.offset, "bad".into()));
            }
            self.seen += 1;
            Ok(())
        }
    }

    #[test]
    fn an_answer_is_complete_at_done_and_skips_other_types() {
        let mut bytes = build::message(16, 2, 1, &[1]);
        bytes.extend(build::message(NLMSG_NOOP, 2, 1, &[]));
        bytes.extend(build::message(99, 2, 1, &[0xee]));
        bytes.extend(build::message(16, 2, 1, &[2]));
        bytes.extend(build::done(2, 1));
        bytes.extend(build::message(16, 2, 1, &[3])); // after DONE: not read
        let mut count = Count::default();
        assert_eq!(parse_answer(&bytes, &mut count), Ok(Outcome::Complete));
        assert_eq!(count.seen, 2);
    }

    #[test]
    fn an_interrupted_dump_asks_for_a_retry() {
        let mut bytes = build::message(16, 2, 1, &[1]);
        bytes.extend(build::message(16, 2 | NLM_F_DUMP_INTR, 1, &[2]));
        bytes.extend(build::done(2 | NLM_F_DUMP_INTR, 1));
        let mut count = Count::default();
        assert_eq!(parse_answer(&bytes, &mut count), Ok(Outcome::Retry));
        // The flag on NLMSG_DONE alone is enough.
        let mut bytes = build::message(16, 2, 1, &[1]);
        bytes.extend(build::done(2 | NLM_F_DUMP_INTR, 1));
        assert_eq!(parse_answer(&bytes, &mut count), Ok(Outcome::Retry));
    }

    #[test]
    fn kernel_errors_and_bad_messages_are_errors() {
        let mut count = Count::default();
        // NLMSG_ERROR with -EPERM, then the original header.
        let mut payload = (-1i32).to_ne_bytes().to_vec();
        payload.extend([0; 16]);
        let bytes = build::message(NLMSG_ERROR, 0, 1, &payload);
        assert_eq!(
            parse_answer(&bytes, &mut count),
            Err(Error::Refused {
                request: "TEST",
                errno: Errno::EPERM
            })
        );
        // A failed dump reported in NLMSG_DONE.
        let bytes = build::message(NLMSG_DONE, 2, 1, &(-22i32).to_ne_bytes());
        assert_eq!(
            parse_answer(&bytes, &mut count).unwrap_err().errno(),
            Some(Errno::EINVAL)
        );
        // An error message too short for its code.
        let bytes = build::message(NLMSG_ERROR, 0, 1, &[1]);
        let err = parse_answer(&bytes, &mut count).unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink NLMSG_ERROR at offset 0: payload of 1 bytes, no error code"
        );
        // A parser's error is passed on.
        let bytes = build::message(16, 2, 1, &[0xee]);
        assert!(parse_answer(&bytes, &mut count).is_err());
        // No NLMSG_DONE: incomplete.
        let bytes = build::message(16, 2, 1, &[1]);
        let err = parse_answer(&bytes, &mut count).unwrap_err();
        assert!(err.to_string().contains("without NLMSG_DONE"), "{err}");
        // An acknowledgement ends a request, and is not an error.
        let mut bytes = build::message(16, 0, 1, &[1]);
        bytes.extend(build::message(NLMSG_ERROR, 0, 1, &[0; 20]));
        assert_eq!(parse_answer(&bytes, &mut count), Ok(Outcome::Complete));
        assert_eq!(count.seen, 1);
    }

    /// A real dump from the kernel: the socket is reused and sequence numbers move.
    #[test]
    fn dumps_links_from_the_kernel_on_one_socket() {
        let mut socket = Socket::new(Protocol::Route);
        let mut count = CountLinks(0);
        socket.dump(&mut count).unwrap();
        assert!(count.0 >= 1, "at least lo");
        let first = socket.open.as_ref().unwrap().fd.as_raw_fd();
        socket.dump(&mut count).unwrap();
        assert_eq!(socket.open.as_ref().unwrap().fd.as_raw_fd(), first);
        assert_eq!(socket.seq, 2);
    }

    struct CountLinks(usize);

    impl Dump for CountLinks {
        fn request_name(&self) -> &'static str {
            "RTM_GETLINK"
        }
        fn write_request(&self, request: &mut Request, seq: u32) {
            request.begin(18, wire::NLM_F_REQUEST | wire::NLM_F_DUMP, seq);
            request.push(&[0; 16]);
        }
        fn answer_type(&self) -> u16 {
            16
        }
        fn clear(&mut self) {
            self.0 = 0;
        }
        fn add(&mut self, _: &Message<'_>) -> Result<(), Error> {
            self.0 += 1;
            Ok(())
        }
    }

    #[test]
    fn a_datagram_larger_than_the_buffer_grows_it_and_retries() {
        let mut socket = Socket::new(Protocol::Route);
        socket.connect().unwrap();
        socket.buf.truncate(64); // far smaller than any link message
        let mut count = CountLinks(0);
        socket.dump(&mut count).unwrap();
        assert!(count.0 >= 1);
        assert!(socket.buf.len() > 64);
    }

    #[test]
    fn a_parse_error_closes_the_socket_and_the_next_dump_reopens_it() {
        let mut socket = Socket::new(Protocol::Route);
        // A link dump answered to a parser that refuses everything with 0xee.
        struct Refuse;
        impl Dump for Refuse {
            fn request_name(&self) -> &'static str {
                "RTM_GETLINK"
            }
            fn write_request(&self, request: &mut Request, seq: u32) {
                CountLinks(0).write_request(request, seq);
            }
            fn answer_type(&self) -> u16 {
                16
            }
            fn clear(&mut self) {}
            fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
                Err(Error::malformed(
                    "RTM_NEWLINK",
                    message.offset,
                    "refused".into(),
                ))
            }
        }
        assert!(socket.dump(&mut Refuse).is_err());
        assert!(socket.open.is_none());
        let mut count = CountLinks(0);
        socket.dump(&mut count).unwrap();
        assert!(count.0 >= 1);
        // A request the kernel refuses leaves the socket open.
        struct Bad;
        impl Dump for Bad {
            fn request_name(&self) -> &'static str {
                "BAD"
            }
            fn write_request(&self, request: &mut Request, seq: u32) {
                // RTM_GETLINK without its ifinfomsg, and a type the kernel lacks.
                request.begin(0x7ff0, wire::NLM_F_REQUEST | wire::NLM_F_DUMP, seq);
            }
            fn answer_type(&self) -> u16 {
                16
            }
            fn clear(&mut self) {}
            fn add(&mut self, _: &Message<'_>) -> Result<(), Error> {
                Ok(())
            }
        }
        let err = socket.dump(&mut Bad).unwrap_err();
        assert!(matches!(err, Error::Refused { .. }), "{err}");
        assert!(socket.open.is_some());
        socket.dump(&mut count).unwrap();
    }

    #[test]
    fn events_report_changes_and_nothing_when_idle() {
        use sc_agent_testkit::netns::{in_new_netns, ip};
        let (added, removed) = in_new_netns(|| {
            let mut events = Events::links().unwrap();
            let mut seen = Vec::new();
            assert!(events.drain(|m| seen.push(m.header.kind)).unwrap());
            assert!(seen.is_empty(), "{seen:?}");
            ip("link add ev0 type veth peer name ev1");
            let mut added = Vec::new();
            let complete = events.drain(|m| added.extend(crate::netlink::link::changed_index(m)));
            assert!(complete.unwrap());
            ip("link del ev0");
            let mut removed = Vec::new();
            events
                .drain(|m| removed.extend(crate::netlink::link::changed_index(m)))
                .unwrap();
            (added, removed)
        });
        // Both ends of the pair, then their removal (the kernel may repeat one).
        assert!(added.len() >= 2, "{added:?}");
        assert!(
            removed.iter().any(|i| added.contains(i)),
            "{added:?} {removed:?}"
        );
    }

    /// Counts links; on its first message ever it adds an interface, so the
    /// kernel's next datagram of that dump carries NLM_F_DUMP_INTR.
    struct ChangeDuringDump {
        links: usize,
        attempts: usize,
        changed: bool,
    }

    impl Dump for ChangeDuringDump {
        fn request_name(&self) -> &'static str {
            "RTM_GETLINK"
        }
        fn write_request(&self, request: &mut Request, seq: u32) {
            CountLinks(0).write_request(request, seq);
        }
        fn answer_type(&self) -> u16 {
            16
        }
        fn clear(&mut self) {
            self.links = 0;
            self.attempts += 1;
        }
        fn add(&mut self, _: &Message<'_>) -> Result<(), Error> {
            if !self.changed {
                sc_agent_testkit::netns::ip("link add late0 type veth peer name late1");
                self.changed = true;
            }
            self.links += 1;
            Ok(())
        }
    }

    #[test]
    fn a_set_changed_mid_dump_is_dumped_again() {
        use sc_agent_testkit::netns::in_new_netns;
        let dump = in_new_netns(|| {
            // Enough interfaces that the answer takes several datagrams.
            let batch: String = (0..40)
                .map(|n| format!("link add m{n} type veth peer name n{n}\n"))
                .collect();
            sc_agent_testkit::netns::ip_batch(&batch);
            let mut dump = ChangeDuringDump {
                links: 0,
                attempts: 0,
                changed: false,
            };
            Socket::new(Protocol::Route).dump(&mut dump).unwrap();
            dump
        });
        assert_eq!(
            dump.attempts, 2,
            "the interrupted dump was asked again once"
        );
        assert_eq!(
            dump.links,
            1 + 80 + 2,
            "lo, the pairs, and the one added mid-dump"
        );
    }
}
