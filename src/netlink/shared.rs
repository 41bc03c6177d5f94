//! The agent's netlink sockets, shared: one per protocol for every collector that
//! asks the kernel (route: netdev, netclass, arp; sock_diag: tcpstat; generic:
//! netclass's ethtool dump), and the table of interface names ([`Interfaces`])
//! that netdev, netclass and arp all need.
//!
//! A [`Netlink`] is a handle; clones share the sockets. The collector registry
//! keeps one in its `Resources` for the life of the process, so the sockets, their
//! buffers and the interface table survive reloads and rebuilt collectors. Nothing
//! is opened until a collector first asks. Collectors run one after another on the
//! loop thread, so one socket per protocol is never wanted by two at once: a dump
//! is one request and its whole answer (the socket checks sequence numbers, so an
//! answer abandoned by one collector is never taken for another's).
//!
//! Tests and the fuzz harness get stand-ins: [`Netlink::unavailable`] (no socket
//! can be made, as under a seccomp filter: collectors read their files) and, in
//! unit tests, `Netlink::replaying`, which answers each request from a recorded
//! dump (src/netlink/fixtures/).

use super::interfaces::Interfaces;
use super::socket::{Dump, Protocol};
use super::{Error, Socket};
use nix::errno::Errno;
use std::cell::RefCell;
use std::rc::Rc;

/// A handle on the agent's netlink sockets; clones share them.
#[derive(Clone, Default)]
pub struct Netlink(Rc<RefCell<State>>);

#[derive(Default)]
struct State {
    backend: Backend,
    interfaces: Interfaces,
}

/// Where dumps are answered.
pub(super) enum Backend {
    /// The kernel, one socket per protocol, each opened at its first dump.
    Kernel {
        route: Socket,
        sock_diag: Socket,
        generic: Socket,
    },
    /// No netlink socket can be made.
    Unavailable,
    /// Recorded answers, chosen by request name and bytes.
    #[cfg(test)]
    Replay(Box<Answers>),
}

/// Picks the recorded answer to a request (its name and bytes); `None` when there
/// is none, which the kernel would refuse.
#[cfg(test)]
pub(super) type Answers = dyn Fn(&str, &[u8]) -> Option<&'static [u8]>;

impl Default for Backend {
    fn default() -> Self {
        Backend::Kernel {
            route: Socket::new(Protocol::Route),
            sock_diag: Socket::new(Protocol::SockDiag),
            generic: Socket::new(Protocol::Generic),
        }
    }
}

impl Backend {
    /// Whether the kernel answers (announcements can then be subscribed to).
    pub(super) fn is_kernel(&self) -> bool {
        matches!(self, Backend::Kernel { .. })
    }

    pub(super) fn connect(&mut self, protocol: Protocol) -> Result<(), Error> {
        match self {
            Backend::Kernel { .. } => self.socket(protocol).map_or(Ok(()), Socket::connect),
            Backend::Unavailable => Err(unavailable(protocol)),
            #[cfg(test)]
            Backend::Replay(_) => Ok(()),
        }
    }

    pub(super) fn dump(&mut self, protocol: Protocol, dump: &mut impl Dump) -> Result<(), Error> {
        match self {
            Backend::Kernel { .. } => match self.socket(protocol) {
                Some(socket) => socket.dump(dump),
                None => Err(unavailable(protocol)),
            },
            Backend::Unavailable => Err(unavailable(protocol)),
            #[cfg(test)]
            Backend::Replay(answers) => {
                let mut request = super::wire::Request::default();
                dump.write_request(&mut request, 1);
                let name = dump.request_name();
                let answer = answers(name, request.bytes()).ok_or(Error::Refused {
                    request: name,
                    errno: Errno::EOPNOTSUPP,
                })?;
                super::socket::parse_answer(answer, dump).map(|_| ())
            }
        }
    }

    fn socket(&mut self, protocol: Protocol) -> Option<&mut Socket> {
        match self {
            Backend::Kernel {
                route,
                sock_diag,
                generic,
            } => Some(match protocol {
                Protocol::Route => route,
                Protocol::SockDiag => sock_diag,
                Protocol::Generic => generic,
            }),
            _ => None,
        }
    }
}

/// The error a sandbox without `AF_NETLINK` gives.
fn unavailable(protocol: Protocol) -> Error {
    Error::Socket {
        call: protocol.socket_call(),
        errno: Errno::EAFNOSUPPORT,
    }
}

impl Netlink {
    /// A stand-in where no netlink socket can be made (every call fails as a
    /// seccomp filter refusing `AF_NETLINK` makes it fail): collectors with a file
    /// mode read their files. For the fuzz harness, which feeds files.
    pub fn unavailable() -> Self {
        Netlink::with(Backend::Unavailable)
    }

    /// A stand-in that answers each dump with the recorded answer `answers` picks
    /// for its request (name and bytes), and refuses the rest with EOPNOTSUPP.
    /// Interface announcements cannot be subscribed to: names come from
    /// `RTM_GETLINK` answers each time they are needed.
    #[cfg(test)]
    pub fn replaying(answers: impl Fn(&str, &[u8]) -> Option<&'static [u8]> + 'static) -> Self {
        Netlink::with(Backend::Replay(Box::new(answers)))
    }

    fn with(backend: Backend) -> Self {
        Netlink(Rc::new(RefCell::new(State {
            backend,
            interfaces: Interfaces::default(),
        })))
    }

    /// Opens the socket of `protocol` if it is not open, so that a caller can tell
    /// early whether netlink is there at all (see [`Error::is_unavailable`]).
    pub fn connect(&self, protocol: Protocol) -> Result<(), Error> {
        self.state()?.backend.connect(protocol)
    }

    /// Asks for `dump` on the socket of `protocol` (see [`Socket::dump`]).
    pub fn dump(&self, protocol: Protocol, dump: &mut impl Dump) -> Result<(), Error> {
        self.state()?.backend.dump(protocol, dump)
    }

    /// Whether the interface table follows the kernel's link announcements (it
    /// then knows which interfaces changed: [`Interfaces::generation`]). Subscribes
    /// at the first call; `false` where that is refused.
    pub fn tracks_links(&self) -> Result<bool, Error> {
        let mut state = self.state()?;
        let State {
            backend,
            interfaces,
        } = &mut *state;
        Ok(interfaces.subscribe(backend))
    }

    /// Brings the interface table up to date with what the kernel announced (or
    /// dumps it again), then hands it to `f`.
    pub fn interfaces<T>(&self, f: impl FnOnce(&Interfaces) -> T) -> Result<T, Error> {
        let mut state = self.state()?;
        let State {
            backend,
            interfaces,
        } = &mut *state;
        interfaces.update(backend)?;
        Ok(f(interfaces))
    }

    fn state(&self) -> Result<std::cell::RefMut<'_, State>, Error> {
        // Never fails: nothing that holds the state calls back into it.
        self.0.try_borrow_mut().map_err(|_| Error::InUse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::link::Links;

    #[test]
    fn clones_share_one_socket_per_protocol() {
        let netlink = Netlink::default();
        let other = netlink.clone();
        let (mut a, mut b) = (Links::without_stats(), Links::without_stats());
        netlink.dump(Protocol::Route, &mut a).unwrap();
        other.dump(Protocol::Route, &mut b).unwrap();
        assert!(!a.as_slice().is_empty());
        assert_eq!(a.as_slice().len(), b.as_slice().len());
        let state = netlink.0.borrow();
        let Backend::Kernel {
            route,
            sock_diag,
            generic,
        } = &state.backend
        else {
            panic!("the kernel backend");
        };
        assert_eq!(route.dumps(), 2, "both dumps on the one route socket");
        assert!(route.is_open() && !sock_diag.is_open() && !generic.is_open());
    }

    #[test]
    fn unavailable_refuses_as_a_sandbox_does() {
        let netlink = Netlink::unavailable();
        let err = netlink.connect(Protocol::Route).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert_eq!(
            err.to_string(),
            "netlink socket(NETLINK_ROUTE): EAFNOSUPPORT: Address family not supported by protocol"
        );
        assert!(netlink
            .dump(Protocol::SockDiag, &mut Links::default())
            .unwrap_err()
            .is_unavailable());
        assert_eq!(netlink.tracks_links(), Ok(false));
        assert!(netlink.interfaces(|_| ()).unwrap_err().is_unavailable());
    }

    #[test]
    fn replaying_answers_from_the_recording_it_picks() {
        const LINKS: &[u8] = include_bytes!("fixtures/links.bin");
        let netlink = Netlink::replaying(|name, _| (name == "RTM_GETLINK").then_some(LINKS));
        let mut links = Links::default();
        netlink.dump(Protocol::Route, &mut links).unwrap();
        assert_eq!(links.as_slice().len(), 4);
        let names = netlink
            .interfaces(|table| [1, 4].map(|i| table.name(i).map(str::to_owned)))
            .unwrap();
        assert_eq!(names, [Some("lo".to_owned()), Some("eth0".to_owned())]);
        let err = netlink
            .dump(
                Protocol::Route,
                &mut crate::netlink::link::Counters::default(),
            )
            .unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EOPNOTSUPP));
    }
}
