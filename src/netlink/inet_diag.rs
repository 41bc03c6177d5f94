//! The TCP sockets of the namespace, in every state, one `inet_diag_msg` each, on
//! `NETLINK_SOCK_DIAG` (<linux/inet_diag.h>, <linux/sock_diag.h>). What
//! node_exporter's tcpstat collector reports: `node_tcp_connection_states{state}`
//! and the queued bytes.
//!
//! Two requests ([`Scope`]): `SOCK_DIAG_BY_FAMILY` answers for one address family,
//! and the kernel walks its whole table of connections for it (262,144 buckets on
//! this 24 GiB VM, ~1.7 ms of kernel CPU however few sockets there are);
//! `TCPDIAG_GETSOCK`, the original request, answers for IPv4 and IPv6 in one
//! walk, half the cost of asking for both. The answers are the same messages.
//!
//! A busy server has hundreds of thousands of sockets, so [`TcpStates`] keeps
//! only counts and sums per IP version, never the sockets; [`TcpSocket::parse`]
//! reads one message for a caller that wants more. No extension
//! (`INET_DIAG_INFO`, the 232-byte `tcp_info`) is asked for: the fixed header has
//! the state and queues.

use super::socket::Dump;
use super::wire::{self, Message, Request, NLM_F_DUMP, NLM_F_REQUEST};
use super::Error;

/// `SOCK_DIAG_BY_FAMILY` of <linux/sock_diag.h>: the request's and the answers' type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK` of <linux/inet_diag.h>: the same for every family; the
/// answers carry the request's type.
const TCPDIAG_GETSOCK: u16 = 18;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
/// `sizeof(struct inet_diag_req_v2)`: family, protocol, ext, pad, states, sockid.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_req)`: family, two lengths, ext, sockid, states, dbs.
const INET_DIAG_REQ_LEN: usize = 60;
/// `idiag_states`: `TCPF_ALL` of the kernel before 6.5, every state from
/// `TCP_ESTABLISHED` to `TCP_CLOSING`, as node_exporter asks. The kernel adds
/// `TCP_NEW_SYN_RECV` to `TCP_SYN_RECV` itself and reports those sockets as
/// `TCP_SYN_RECV`, as /proc/net/tcp does; `TCP_BOUND_INACTIVE` (13, bound sockets
/// that neither listen nor connect, Linux 6.5+) is left out, as /proc/net/tcp
/// leaves them out.
const ALL_STATES: u32 = 0xfff;
/// Sockets are counted by state in this many slots; the last one also takes
/// every state past it (none exists).
pub const STATE_SLOTS: usize = 16;

/// TCP states of <netinet/tcp.h> (`TCP_ESTABLISHED` = 1 ... `TCP_CLOSING` = 11),
/// as `inet_diag_msg.idiag_state` carries them.
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_SYN_SENT: u8 = 2;
pub const TCP_SYN_RECV: u8 = 3;
pub const TCP_FIN_WAIT1: u8 = 4;
pub const TCP_FIN_WAIT2: u8 = 5;
pub const TCP_TIME_WAIT: u8 = 6;
pub const TCP_CLOSE: u8 = 7;
pub const TCP_CLOSE_WAIT: u8 = 8;
pub const TCP_LAST_ACK: u8 = 9;
pub const TCP_LISTEN: u8 = 10;
pub const TCP_CLOSING: u8 = 11;

/// An IP version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    fn af(self) -> u8 {
        match self {
            IpFamily::V4 => nix::libc::AF_INET as u8,
            IpFamily::V6 => nix::libc::AF_INET6 as u8,
        }
    }
}

/// What a dump asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// IPv4 and IPv6 in one walk (`TCPDIAG_GETSOCK`).
    Both,
    /// One family (`SOCK_DIAG_BY_FAMILY`).
    Only(IpFamily),
}

/// One socket as `inet_diag_msg` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub family: u8,
    pub state: u8,
    /// `idiag_rqueue`: bytes received and not read; for a listener, the
    /// connections waiting to be accepted.
    pub rqueue: u32,
    /// `idiag_wqueue`: bytes sent and not acknowledged; for a listener, its backlog.
    pub wqueue: u32,
    pub uid: u32,
    pub inode: u32,
}

impl TcpSocket {
    pub fn parse(message: &Message<'_>) -> Result<TcpSocket, Error> {
        let (fixed, _attrs) = message.split("SOCK_DIAG_BY_FAMILY", INET_DIAG_MSG_LEN)?;
        Ok(TcpSocket {
            family: fixed.first().copied().unwrap_or(0),
            state: fixed.get(1).copied().unwrap_or(0),
            rqueue: wire::u32_at(fixed, 56).unwrap_or(0),
            wqueue: wire::u32_at(fixed, 60).unwrap_or(0),
            uid: wire::u32_at(fixed, 64).unwrap_or(0),
            inode: wire::u32_at(fixed, 68).unwrap_or(0),
        })
    }
}

/// The sockets of one IP version: how many in each state, and the sums of their
/// queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// By state (`TCP_ESTABLISHED` = 1 ...); the last slot also counts any
    /// state past it.
    pub sockets: [u64; STATE_SLOTS],
    /// The sums of `idiag_rqueue` and `idiag_wqueue`.
    pub rqueue: u64,
    pub wqueue: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.sockets.iter().fold(0, |a, b| a.saturating_add(*b))
    }

    fn add(&mut self, socket: &TcpSocket) {
        let slot = usize::from(socket.state).min(STATE_SLOTS - 1);
        if let Some(count) = self.sockets.get_mut(slot) {
            *count = count.saturating_add(1);
        }
        self.rqueue = self.rqueue.saturating_add(u64::from(socket.rqueue));
        self.wqueue = self.wqueue.saturating_add(u64::from(socket.wqueue));
    }
}

/// The answer of one dump, as counts per IP version.
pub struct TcpStates {
    scope: Scope,
    pub ipv4: Counts,
    pub ipv6: Counts,
}

impl TcpStates {
    pub fn new(scope: Scope) -> Self {
        TcpStates {
            scope,
            ipv4: Counts::default(),
            ipv6: Counts::default(),
        }
    }
}

impl Default for TcpStates {
    fn default() -> Self {
        TcpStates::new(Scope::Both)
    }
}

impl Dump for TcpStates {
    fn request_name(&self) -> &'static str {
        match self.scope {
            Scope::Both => "TCPDIAG_GETSOCK",
            Scope::Only(_) => "SOCK_DIAG_BY_FAMILY",
        }
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        match self.scope {
            Scope::Both => {
                request.begin(TCPDIAG_GETSOCK, NLM_F_REQUEST | NLM_F_DUMP, seq);
                // inet_diag_req: the family is not read for a dump; a zero
                // sockid, the states, no tables.
                let mut req = [0u8; INET_DIAG_REQ_LEN];
                req[52..56].copy_from_slice(&ALL_STATES.to_ne_bytes());
                request.push(&req);
            }
            Scope::Only(family) => {
                request.begin(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq);
                // inet_diag_req_v2: family, protocol, ext, pad, states, a zero sockid.
                let mut req = [0u8; INET_DIAG_REQ_V2_LEN];
                req[0] = family.af();
                req[1] = nix::libc::IPPROTO_TCP as u8;
                req[4..8].copy_from_slice(&ALL_STATES.to_ne_bytes());
                request.push(&req);
            }
        }
    }

    fn answer_type(&self) -> u16 {
        match self.scope {
            Scope::Both => TCPDIAG_GETSOCK,
            Scope::Only(_) => SOCK_DIAG_BY_FAMILY,
        }
    }

    fn clear(&mut self) {
        self.ipv4 = Counts::default();
        self.ipv6 = Counts::default();
    }

    /// Counts the socket under its family; another family than IPv4 and IPv6
    /// (which neither request gives) is not counted.
    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        let socket = TcpSocket::parse(message)?;
        if socket.family == IpFamily::V4.af() {
            self.ipv4.add(&socket);
        } else if socket.family == IpFamily::V6.af() {
            self.ipv6.add(&socket);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::socket::{parse_answer, Outcome, Protocol};
    use crate::netlink::wire::build;
    use crate::netlink::Socket;

    /// TCP in a namespace with a listener on 127.0.0.1:7000, one connection to it
    /// with 5 unread bytes at the server, and a listener on [::1]:7001: both IP
    /// versions in one answer, and each alone (src/netlink/fixtures/README).
    const RECORDED: &[u8] = include_bytes!("fixtures/tcp.bin");
    const RECORDED_V4: &[u8] = include_bytes!("fixtures/tcp4.bin");
    const RECORDED_V6: &[u8] = include_bytes!("fixtures/tcp6.bin");

    const LISTEN: usize = TCP_LISTEN as usize;
    const ESTABLISHED: usize = TCP_ESTABLISHED as usize;

    fn diag_msg(family: u8, state: u8, rqueue: u32, wqueue: u32) -> Vec<u8> {
        let mut out = vec![family, state, 0, 0];
        out.extend([0u8; 48]);
        out.extend(0u32.to_ne_bytes()); // expires
        out.extend(rqueue.to_ne_bytes());
        out.extend(wqueue.to_ne_bytes());
        out.extend(1000u32.to_ne_bytes()); // uid
        out.extend(42u32.to_ne_bytes()); // inode
        out
    }

    #[test]
    fn parses_recorded_dumps_and_both_versions_are_each_alone() {
        let mut both = TcpStates::new(Scope::Both);
        assert_eq!(parse_answer(RECORDED, &mut both), Ok(Outcome::Complete));
        assert_eq!(both.ipv4.sockets[LISTEN], 1);
        assert_eq!(
            both.ipv4.sockets[ESTABLISHED], 2,
            "both ends of the connection"
        );
        assert_eq!(both.ipv4.rqueue, 5);
        assert_eq!(both.ipv4.total(), 3);
        assert_eq!(both.ipv6.sockets[LISTEN], 1);
        assert_eq!(both.ipv6.total(), 1);
        let mut v4 = TcpStates::new(Scope::Only(IpFamily::V4));
        assert_eq!(parse_answer(RECORDED_V4, &mut v4), Ok(Outcome::Complete));
        assert_eq!((v4.ipv4, v4.ipv6), (both.ipv4, Counts::default()));
        let mut v6 = TcpStates::new(Scope::Only(IpFamily::V6));
        assert_eq!(parse_answer(RECORDED_V6, &mut v6), Ok(Outcome::Complete));
        assert_eq!((v6.ipv4, v6.ipv6), (Counts::default(), both.ipv6));
    }

    #[test]
    fn counts_and_sums_per_version_and_state() {
        let mut bytes = Vec::new();
        for (family, state, rq, wq) in [
            (2, TCP_ESTABLISHED, 10, 20),
            (2, TCP_ESTABLISHED, 1, 2),
            (2, TCP_TIME_WAIT, 0, 0),
            (10, TCP_LISTEN, 0, 4096),
            (10, 200, 0, 0),       // no such state: the last slot
            (1, TCP_LISTEN, 9, 9), // AF_UNIX: not counted
        ] {
            let mut payload = diag_msg(family, state, rq, wq);
            payload.extend(build::attr(8, &[0])); // INET_DIAG_SHUTDOWN, skipped
            bytes.extend(build::message(TCPDIAG_GETSOCK, 2, 1, &payload));
        }
        bytes.extend(build::done(2, 1));
        let mut states = TcpStates::new(Scope::Both);
        parse_answer(&bytes, &mut states).unwrap();
        assert_eq!(states.ipv4.sockets[ESTABLISHED], 2);
        assert_eq!(states.ipv4.sockets[usize::from(TCP_TIME_WAIT)], 1);
        assert_eq!((states.ipv4.rqueue, states.ipv4.wqueue), (11, 22));
        assert_eq!(states.ipv6.sockets[LISTEN], 1);
        assert_eq!(states.ipv6.sockets[STATE_SLOTS - 1], 1);
        assert_eq!((states.ipv6.rqueue, states.ipv6.wqueue), (0, 4096));
        let message = wire::Messages::new(&bytes, 0).next().unwrap().unwrap();
        let socket = TcpSocket::parse(&message).unwrap();
        assert_eq!((socket.uid, socket.inode), (1000, 42));
        // Parsing the same answer again starts from zero.
        parse_answer(&bytes, &mut states).unwrap();
        assert_eq!(states.ipv4.total() + states.ipv6.total(), 5);
        // A by-family dump takes only its own type of message.
        let mut v4 = TcpStates::new(Scope::Only(IpFamily::V4));
        parse_answer(&bytes, &mut v4).unwrap();
        assert_eq!(v4.ipv4.total(), 0);
    }

    #[test]
    fn a_short_message_is_an_error() {
        let mut bytes = build::message(SOCK_DIAG_BY_FAMILY, 2, 1, &[2, 1, 0, 0]);
        bytes.extend(build::done(2, 1));
        let mut states = TcpStates::new(Scope::Only(IpFamily::V4));
        let err = parse_answer(&bytes, &mut states).unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink SOCK_DIAG_BY_FAMILY at offset 0: payload of 4 bytes, shorter than its 72-byte header"
        );
    }

    #[test]
    fn asks_for_the_states_node_exporter_asks_for() {
        let mut request = Request::default();
        TcpStates::new(Scope::Only(IpFamily::V6)).write_request(&mut request, 3);
        let bytes = request.bytes();
        assert_eq!(bytes.len(), 16 + INET_DIAG_REQ_V2_LEN);
        assert_eq!(wire::u16_at(bytes, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(&bytes[16..20], &[nix::libc::AF_INET6 as u8, 6, 0, 0]);
        assert_eq!(wire::u32_at(bytes, 20), Some(ALL_STATES));
        let mut request = Request::default();
        TcpStates::new(Scope::Both).write_request(&mut request, 3);
        let bytes = request.bytes();
        assert_eq!(bytes.len(), 16 + INET_DIAG_REQ_LEN);
        assert_eq!(wire::u16_at(bytes, 4), Some(TCPDIAG_GETSOCK));
        assert_eq!(wire::u32_at(bytes, 16 + 52), Some(ALL_STATES));
    }

    #[test]
    fn dumps_this_machines_sockets_both_ways_alike() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let mut socket = Socket::new(Protocol::SockDiag);
        let mut both = TcpStates::new(Scope::Both);
        socket.dump(&mut both).unwrap();
        assert!(both.ipv4.sockets[LISTEN] >= 1 && both.ipv6.sockets[LISTEN] >= 1);
        let (mut only_v4, mut only_v6) = (
            TcpStates::new(Scope::Only(IpFamily::V4)),
            TcpStates::new(Scope::Only(IpFamily::V6)),
        );
        socket.dump(&mut only_v4).unwrap();
        socket.dump(&mut only_v6).unwrap();
        // Other tests' sockets come and go; these listeners stay.
        assert!(only_v4.ipv4.sockets[LISTEN] >= 1 && only_v6.ipv6.sockets[LISTEN] >= 1);
        assert_eq!(only_v4.ipv6, Counts::default());
        drop((v4, v6));
    }
}
