//! `SOCK_DIAG_BY_FAMILY` on `NETLINK_SOCK_DIAG`: the TCP sockets of one address
//! family, in every state, one `inet_diag_msg` each (<linux/inet_diag.h>,
//! <linux/sock_diag.h>). What node_exporter's tcpstat collector reports:
//! `node_tcp_connection_states{state}` and the queued bytes.
//!
//! A busy server has hundreds of thousands of sockets, so [`TcpStates`] keeps
//! only counts and sums per state, never the sockets; [`TcpSocket::parse`] reads
//! one message for a caller that wants more. No extension (`INET_DIAG_INFO`, the
//! 232-byte `tcp_info`) is asked for: the fixed header has the state and queues.

use super::socket::Dump;
use super::wire::{self, Message, Request, NLM_F_DUMP, NLM_F_REQUEST};
use super::Error;

/// `SOCK_DIAG_BY_FAMILY` of <linux/sock_diag.h>: the request's and the answers' type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
/// `sizeof(struct inet_diag_req_v2)`.
const INET_DIAG_REQ_V2_LEN: usize = 56;
/// `idiag_states`: `TCPF_ALL` of the kernel before 6.5, every state from
/// `TCP_ESTABLISHED` to `TCP_CLOSING`, as node_exporter asks. The kernel adds
/// `TCP_NEW_SYN_RECV` to `TCP_SYN_RECV` itself and reports those sockets as
/// `TCP_SYN_RECV`, as /proc/net/tcp does; `TCP_BOUND_INACTIVE` (13, bound sockets
/// that neither listen nor connect, Linux 6.5+) is left out, as /proc/net/tcp
/// leaves them out.
const ALL_STATES: u32 = 0xfff;

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

/// Per TCP state: how many sockets, and the sums of their queues.
pub struct TcpStates {
    family: IpFamily,
    /// Indexed by state.
    pub count: [u64; 256],
    pub rqueue: [u64; 256],
    pub wqueue: [u64; 256],
}

impl TcpStates {
    pub fn new(family: IpFamily) -> Self {
        TcpStates {
            family,
            count: [0; 256],
            rqueue: [0; 256],
            wqueue: [0; 256],
        }
    }

    pub fn total(&self) -> u64 {
        self.count.iter().sum()
    }
}

impl Default for TcpStates {
    fn default() -> Self {
        TcpStates::new(IpFamily::V4)
    }
}

impl Dump for TcpStates {
    fn request_name(&self) -> &'static str {
        "SOCK_DIAG_BY_FAMILY"
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        request.begin(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq);
        // inet_diag_req_v2: family, protocol, ext, pad, states, then a zero sockid.
        let mut req = [0u8; INET_DIAG_REQ_V2_LEN];
        req[0] = self.family.af();
        req[1] = nix::libc::IPPROTO_TCP as u8;
        req[4..8].copy_from_slice(&ALL_STATES.to_ne_bytes());
        request.push(&req);
    }

    fn answer_type(&self) -> u16 {
        SOCK_DIAG_BY_FAMILY
    }

    fn clear(&mut self) {
        self.count = [0; 256];
        self.rqueue = [0; 256];
        self.wqueue = [0; 256];
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        let socket = TcpSocket::parse(message)?;
        let state = usize::from(socket.state);
        let slot = |array: &mut [u64; 256], value: u64| {
            if let Some(sum) = array.get_mut(state) {
                *sum = sum.saturating_add(value);
            }
        };
        slot(&mut self.count, 1);
        slot(&mut self.rqueue, u64::from(socket.rqueue));
        slot(&mut self.wqueue, u64::from(socket.wqueue));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::socket::{parse_answer, Outcome, Protocol};
    use crate::netlink::wire::build;
    use crate::netlink::Socket;

    /// TCP over IPv4 in a namespace with a listener on 127.0.0.1:7000, one
    /// connection to it with 5 unread bytes at the server, and over IPv6 a listener
    /// on [::1]:7001 (src/netlink/fixtures/README tells how it was recorded).
    const RECORDED_V4: &[u8] = include_bytes!("fixtures/tcp4.bin");
    const RECORDED_V6: &[u8] = include_bytes!("fixtures/tcp6.bin");

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
    fn parses_recorded_dumps() {
        let mut v4 = TcpStates::new(IpFamily::V4);
        assert_eq!(parse_answer(RECORDED_V4, &mut v4), Ok(Outcome::Complete));
        let listen = usize::from(TCP_LISTEN);
        let established = usize::from(TCP_ESTABLISHED);
        assert_eq!(v4.count[listen], 1);
        assert_eq!(v4.count[established], 2, "both ends of the connection");
        assert_eq!(v4.rqueue[established], 5);
        assert_eq!(v4.total(), 3);
        let mut v6 = TcpStates::new(IpFamily::V6);
        assert_eq!(parse_answer(RECORDED_V6, &mut v6), Ok(Outcome::Complete));
        assert_eq!(v6.count[listen], 1);
        assert_eq!(v6.total(), 1);
    }

    #[test]
    fn counts_and_sums_per_state() {
        let mut bytes = Vec::new();
        for (state, rq, wq) in [
            (TCP_ESTABLISHED, 10, 20),
            (TCP_ESTABLISHED, 1, 2),
            (TCP_TIME_WAIT, 0, 0),
        ] {
            let mut payload = diag_msg(2, state, rq, wq);
            payload.extend(build::attr(8, &[0])); // INET_DIAG_SHUTDOWN, skipped
            bytes.extend(build::message(SOCK_DIAG_BY_FAMILY, 2, 1, &payload));
        }
        bytes.extend(build::done(2, 1));
        let mut states = TcpStates::new(IpFamily::V4);
        parse_answer(&bytes, &mut states).unwrap();
        let established = usize::from(TCP_ESTABLISHED);
        assert_eq!(states.count[established], 2);
        assert_eq!(
            (states.rqueue[established], states.wqueue[established]),
            (11, 22)
        );
        assert_eq!(states.count[usize::from(TCP_TIME_WAIT)], 1);
        let message = wire::Messages::new(&bytes, 0).next().unwrap().unwrap();
        let socket = TcpSocket::parse(&message).unwrap();
        assert_eq!((socket.uid, socket.inode), (1000, 42));
        // Parsing the same answer again starts from zero.
        parse_answer(&bytes, &mut states).unwrap();
        assert_eq!(states.total(), 3);
    }

    #[test]
    fn a_short_message_is_an_error() {
        let mut bytes = build::message(SOCK_DIAG_BY_FAMILY, 2, 1, &[2, 1, 0, 0]);
        bytes.extend(build::done(2, 1));
        let err = parse_answer(&bytes, &mut TcpStates::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "netlink SOCK_DIAG_BY_FAMILY at offset 0: payload of 4 bytes, shorter than its 72-byte header"
        );
    }

    #[test]
    fn asks_for_the_states_node_exporter_asks_for() {
        let mut request = Request::default();
        TcpStates::new(IpFamily::V6).write_request(&mut request, 3);
        let bytes = request.bytes();
        assert_eq!(bytes.len(), 16 + INET_DIAG_REQ_V2_LEN);
        assert_eq!(wire::u16_at(bytes, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(&bytes[16..20], &[nix::libc::AF_INET6 as u8, 6, 0, 0]);
        assert_eq!(
            wire::u32_at(bytes, 20),
            Some(0xfff),
            "TCP_ESTABLISHED..TCP_CLOSING"
        );
    }

    #[test]
    fn dumps_this_machines_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut socket = Socket::new(Protocol::SockDiag);
        let mut states = TcpStates::new(IpFamily::V4);
        socket.dump(&mut states).unwrap();
        assert!(states.count[usize::from(TCP_LISTEN)] >= 1);
        let mut v6 = TcpStates::new(IpFamily::V6);
        socket.dump(&mut v6).unwrap();
        drop(listener);
    }
}
