//! Netlink: the kernel's own answers about network devices, neighbours and sockets,
//! asked over sockets kept open across cycles, parsed in place.
//!
//! - [`link`]: `RTM_GETLINK`, every interface with its attributes and `IFLA_STATS64`
//!   in one dump (netclass reads it instead of ~24 sysfs files a device);
//!   `RTM_GETSTATS`, the counters alone (netdev); the `RTNLGRP_LINK` announcements.
//! - [`neigh`]: `RTM_GETNEIGH`, the neighbour (ARP/NDP) tables.
//! - [`inet_diag`]: `TCPDIAG_GETSOCK` and `SOCK_DIAG_BY_FAMILY`, the TCP sockets of
//!   IPv4 and IPv6.
//! - [`ethtool`]: the ethtool generic-netlink family's link modes (speed, duplex).
//! - [`interfaces`]: the interface names by index, kept by the kernel's link
//!   announcements (the counters and the neighbours name interfaces by index).
//! - [`socket`]: the sockets, dumps and change notifications; [`wire`]: the format.
//! - [`shared`]: the [`Netlink`] handle the collectors share: one socket per
//!   protocol and one interface table for the whole agent.
//!
//! A dump is bounded in time (a receive timeout and a deadline), in size, and in
//! retries: when the kernel flags `NLM_F_DUMP_INTR` (the set changed while it was
//! dumped) it is asked again, a few times at most. Sequence numbers and the sender
//! are checked, so the answer of an abandoned dump is never taken for a new one.
//! Anything that does not parse is an [`Error`] naming the message type and the
//! byte offset; nothing here panics on what the kernel (or a fuzzer) sends.
//! [`fuzz_parse`] feeds raw bytes to every parser.
//!
//! ## Why a parser of our own, not netlink-packet-route
//!
//! Measured once, on release builds without TLS (glibc, `opt-level = "z"`, LTO,
//! stripped), from the same tree: the agent was 997,264 bytes. A link dump through
//! netlink-packet-route 0.34 + netlink-packet-core 0.9 + netlink-sys 0.9, reading
//! only the name, MTU, alias, carrier, address, queue length, operstate and
//! `IFLA_STATS64`, made it 1,509,344 bytes: +512,080, half as much again, against a
//! budget of 2 MiB for the whole static binary. This module and the netlink modes
//! of netdev and netclass (links, counters, announcements, ethtool; the neighbour
//! and sock_diag parsers are not linked until a collector uses them) made it
//! 1,053,816 bytes: +56,552. The crates would also allocate for every message (a
//! `Vec` of attributes, a `String` per name), cover only the route family
//! (sock_diag and ethtool are further crates), and leave the dump loop (sequence
//! numbers, `NLM_F_DUMP_INTR`, timeouts) to be written here anyway.
//!
//! The constants come from this machine's kernel headers (`<linux/netlink.h>`,
//! `rtnetlink.h`, `if_link.h`, `neighbour.h`, `inet_diag.h`, `sock_diag.h`,
//! `genetlink.h`, `ethtool_netlink.h`), printed by a C program once; the tests
//! check them against the `libc` crate's where it has them.

pub mod ethtool;
pub mod inet_diag;
pub mod interfaces;
pub mod link;
pub mod neigh;
pub mod shared;
pub mod socket;
pub mod wire;

pub use interfaces::Interfaces;
pub use shared::Netlink;
pub use socket::{Dump, Events, Protocol, Socket};

use nix::errno::Errno;
use std::fmt;
use std::time::Duration;

/// What went wrong talking to the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A socket call failed; `call` names it (`socket(NETLINK_ROUTE)`, `recvmsg`).
    Socket { call: &'static str, errno: Errno },
    /// The kernel answered the request with an error (`NLMSG_ERROR`, or a failed
    /// `NLMSG_DONE`).
    Refused { request: &'static str, errno: Errno },
    /// A message that does not parse.
    Malformed {
        /// The message type (`RTM_NEWLINK`), or `nlmsghdr` for the framing.
        message: &'static str,
        /// Where the message or attribute starts, from the start of the answer.
        offset: usize,
        problem: String,
    },
    /// The set changed during every attempt to dump it (`NLM_F_DUMP_INTR`).
    Interrupted {
        request: &'static str,
        attempts: u32,
    },
    /// The kernel did not finish answering in time.
    Timeout {
        request: &'static str,
        waited: Duration,
    },
    /// The answer is larger than this module accepts.
    TooLarge { request: &'static str, what: String },
    /// A shared socket was asked for while in use (a dump's parser asking for
    /// another dump); nothing does, but it is an error, not a panic.
    InUse,
}

impl Error {
    pub(crate) fn malformed(message: &'static str, offset: usize, problem: String) -> Self {
        Error::Malformed {
            message,
            offset,
            problem,
        }
    }

    /// True when netlink cannot be had at all: the socket could not be created
    /// (a sandbox without `AF_NETLINK`, a seccomp filter, a kernel without the
    /// family). Callers may then read files instead.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Socket { call, errno }
                if call.starts_with("socket")
                    && matches!(
                        errno,
                        Errno::EAFNOSUPPORT | Errno::EPROTONOSUPPORT | Errno::EPERM | Errno::EACCES
                    )
        )
    }

    /// The kernel's error code, for a refused request or a failed call.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Socket { errno, .. } | Error::Refused { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Socket { call, errno } => write!(f, "netlink {call}: {errno}"),
            Error::Refused { request, errno } => {
                write!(f, "netlink {request}: the kernel answered {errno}")
            }
            Error::Malformed {
                message,
                offset,
                problem,
            } => write!(f, "netlink {message} at offset {offset}: {problem}"),
            Error::Interrupted { request, attempts } => write!(
                f,
                "netlink {request}: the set changed during each of {attempts} dumps (NLM_F_DUMP_INTR)"
            ),
            Error::Timeout { request, waited } => write!(
                f,
                "netlink {request}: no complete answer within {} ms",
                waited.as_millis()
            ),
            Error::TooLarge { request, what } => write!(f, "netlink {request}: {what}"),
            Error::InUse => f.write_str("netlink: the shared socket is already in use"),
        }
    }
}

impl std::error::Error for Error {}

/// Parses `bytes` as the answer to each kind of dump in turn, as a fuzz target
/// does: every parser must return (an error or not) and never panic, whatever the
/// bytes. The bytes are whole netlink messages, as a socket receives them.
pub fn fuzz_parse(bytes: &[u8]) {
    let mut links = link::Links::default();
    let _ = socket::parse_answer(bytes, &mut links);
    let _ = links.by_name().count();
    let mut counters = link::Counters::default();
    let _ = socket::parse_answer(bytes, &mut counters);
    let mut neighbours = neigh::Neighbours::new(neigh::Family::Unspec);
    let _ = socket::parse_answer(bytes, &mut neighbours);
    let mut tcp = inet_diag::TcpStates::default();
    let _ = socket::parse_answer(bytes, &mut tcp);
    let mut tcp = inet_diag::TcpStates::new(inet_diag::Scope::Only(inet_diag::IpFamily::V6));
    let _ = socket::parse_answer(bytes, &mut tcp);
    let mut modes = ethtool::LinkModes::with_family(ethtool::FUZZ_FAMILY_ID);
    let _ = socket::parse_answer(bytes, &mut modes);
    let _ = ethtool::parse_family(bytes);
    for message in wire::Messages::new(bytes, 0).flatten() {
        let _ = link::Announcement::parse(&message);
        let _ = inet_diag::TcpSocket::parse(&message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_and_where() {
        let err = Error::malformed("RTM_NEWLINK", 1234, "IFLA_MTU: 2 bytes, expected 4".into());
        assert_eq!(
            err.to_string(),
            "netlink RTM_NEWLINK at offset 1234: IFLA_MTU: 2 bytes, expected 4"
        );
        let err = Error::Refused {
            request: "RTM_GETLINK",
            errno: Errno::EINVAL,
        };
        assert_eq!(
            err.to_string(),
            "netlink RTM_GETLINK: the kernel answered EINVAL: Invalid argument"
        );
        assert_eq!(err.errno(), Some(Errno::EINVAL));
        assert!(!err.is_unavailable());
        let unavailable = Error::Socket {
            call: "socket(NETLINK_ROUTE)",
            errno: Errno::EAFNOSUPPORT,
        };
        assert!(unavailable.is_unavailable());
        let recv = Error::Socket {
            call: "recvmsg",
            errno: Errno::EPERM,
        };
        assert!(!recv.is_unavailable());
    }

    #[test]
    fn fuzz_parse_survives_garbage() {
        fuzz_parse(&[]);
        fuzz_parse(&[0xff; 3]);
        fuzz_parse(&[0xff; 64]);
        let mut bytes = wire::build::message(16, 2, 1, &[0; 16]);
        bytes.extend(wire::build::attr(23, &[1; 7]));
        fuzz_parse(&bytes);
        for len in 0..bytes.len() {
            fuzz_parse(&bytes[..len]);
        }
    }
}
