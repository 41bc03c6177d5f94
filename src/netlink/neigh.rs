//! `RTM_GETNEIGH`: the neighbour tables (ARP for IPv4, NDP for IPv6), one
//! `RTM_NEWNEIGH` message per entry: an `ndmsg` (family, interface, state, flags)
//! and attributes, of which `NDA_DST` (the neighbour's IP address) and `NDA_LLADDR`
//! (its hardware address, absent while unresolved) are kept (<linux/neighbour.h>).
//! For node_exporter's arp collector, which counts entries per device and state.

use super::link::HwAddr;
use super::socket::Dump;
use super::wire::{self, Message, Request, NLM_F_DUMP, NLM_F_REQUEST};
use super::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `RTM_NEWNEIGH` and `RTM_GETNEIGH` of <linux/rtnetlink.h>.
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
/// `sizeof(struct ndmsg)`.
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// The most entries one dump holds (the kernel's default `gc_thresh3` is 1024).
pub const MAX_NEIGHBOURS: usize = 1 << 16;

/// `NUD_*` states of <linux/neighbour.h>; `Neighbour::state` is one of them.
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_STALE: u16 = 0x04;
pub const NUD_DELAY: u16 = 0x08;
pub const NUD_PROBE: u16 = 0x10;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

/// Which table to dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Every table (IPv4, IPv6, and bridge FDBs).
    Unspec,
    /// ARP.
    Inet,
    /// NDP.
    Inet6,
}

impl Family {
    fn af(self) -> u8 {
        match self {
            Family::Unspec => 0,
            Family::Inet => nix::libc::AF_INET as u8,
            Family::Inet6 => nix::libc::AF_INET6 as u8,
        }
    }
}

/// One neighbour entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Neighbour {
    /// `AF_INET`, `AF_INET6` (or `AF_BRIDGE` for an FDB entry).
    pub family: u8,
    pub ifindex: i32,
    /// `NUD_*`.
    pub state: u16,
    /// `NTF_*`.
    pub flags: u8,
    /// `NDA_DST`, when it is an IPv4 or IPv6 address.
    pub destination: Option<IpAddr>,
    pub lladdr: Option<HwAddr>,
}

impl Neighbour {
    fn parse(message: &Message<'_>) -> Result<Neighbour, Error> {
        const NAME: &str = "RTM_NEWNEIGH";
        let (fixed, attrs) = message.split(NAME, NDMSG_LEN)?;
        let mut neighbour = Neighbour {
            family: fixed.first().copied().unwrap_or(0),
            ifindex: wire::i32_at(fixed, 4).unwrap_or(0),
            state: wire::u16_at(fixed, 8).unwrap_or(0),
            flags: fixed.get(10).copied().unwrap_or(0),
            destination: None,
            lladdr: None,
        };
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                NDA_DST => {
                    neighbour.destination = match attr.data.len() {
                        4 => <[u8; 4]>::try_from(attr.data)
                            .ok()
                            .map(|b| Ipv4Addr::from(b).into()),
                        16 => <[u8; 16]>::try_from(attr.data)
                            .ok()
                            .map(|b| Ipv6Addr::from(b).into()),
                        len => {
                            return Err(attr
                                .error("NDA_DST", format_args!("{len} bytes, expected 4 or 16")))
                        }
                    }
                }
                NDA_LLADDR => neighbour.lladdr = Some(HwAddr::parse(&attr, "NDA_LLADDR")?),
                _ => {}
            }
        }
        Ok(neighbour)
    }
}

/// The entries of one dump of a table.
pub struct Neighbours {
    family: Family,
    entries: Vec<Neighbour>,
}

impl Neighbours {
    pub fn new(family: Family) -> Self {
        Neighbours {
            family,
            entries: Vec::new(),
        }
    }

    pub fn as_slice(&self) -> &[Neighbour] {
        &self.entries
    }
}

impl Dump for Neighbours {
    fn request_name(&self) -> &'static str {
        "RTM_GETNEIGH"
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        request.begin(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq);
        let mut ndmsg = [0u8; NDMSG_LEN];
        ndmsg[0] = self.family.af();
        request.push(&ndmsg);
    }

    fn answer_type(&self) -> u16 {
        RTM_NEWNEIGH
    }

    fn clear(&mut self) {
        self.entries.clear();
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        if self.entries.len() >= MAX_NEIGHBOURS {
            return Err(Error::TooLarge {
                request: "RTM_GETNEIGH",
                what: format!("more than {MAX_NEIGHBOURS} neighbours"),
            });
        }
        self.entries.push(Neighbour::parse(message)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::socket::{parse_answer, Outcome};
    use crate::netlink::wire::build;

    /// `RTM_GETNEIGH` answered in a namespace holding a veth pair with two
    /// permanent IPv4 entries, one IPv6 entry and one incomplete entry
    /// (src/netlink/fixtures/README tells how it was recorded).
    const RECORDED: &[u8] = include_bytes!("fixtures/neighbours.bin");

    fn ndmsg(family: u8, ifindex: i32, state: u16, flags: u8) -> Vec<u8> {
        let mut out = vec![family, 0, 0, 0];
        out.extend(ifindex.to_ne_bytes());
        out.extend(state.to_ne_bytes());
        out.extend([flags, 1]);
        out
    }

    #[test]
    fn parses_a_recorded_dump() {
        let mut table = Neighbours::new(Family::Unspec);
        assert_eq!(parse_answer(RECORDED, &mut table), Ok(Outcome::Complete));
        let entries = table.as_slice();
        let find = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            entries.iter().find(|n| n.destination == Some(ip)).copied()
        };
        let first = find("192.0.2.1").expect("192.0.2.1");
        assert_eq!(first.family, nix::libc::AF_INET as u8);
        assert_eq!(first.state, NUD_PERMANENT);
        assert_eq!(first.lladdr.unwrap().to_string(), "02:00:00:00:00:01");
        assert!(first.ifindex > 1);
        let second = find("192.0.2.2").expect("192.0.2.2");
        assert_eq!(second.lladdr.unwrap().to_string(), "02:00:00:00:00:02");
        let six = find("2001:db8::1").expect("2001:db8::1");
        assert_eq!(six.family, nix::libc::AF_INET6 as u8);
        assert_eq!(six.lladdr.unwrap().to_string(), "02:00:00:00:00:06");
        let incomplete = find("192.0.2.9").expect("192.0.2.9");
        assert_eq!(incomplete.lladdr, None);
        assert_ne!(incomplete.state, NUD_PERMANENT);
    }

    #[test]
    fn hand_built_entries_and_their_errors() {
        let mut payload = ndmsg(2, 3, NUD_REACHABLE, 0x80);
        payload.extend(build::attr(NDA_DST, &[10, 0, 0, 1]));
        payload.extend(build::attr(NDA_LLADDR, &[2, 0, 0, 0, 0, 9]));
        payload.extend(build::attr(77, &[1])); // unknown: skipped
        let mut bytes = build::message(RTM_NEWNEIGH, 2, 1, &payload);
        bytes.extend(build::done(2, 1));
        let mut table = Neighbours::new(Family::Inet);
        parse_answer(&bytes, &mut table).unwrap();
        assert_eq!(
            table.as_slice(),
            [Neighbour {
                family: 2,
                ifindex: 3,
                state: NUD_REACHABLE,
                flags: 0x80,
                destination: Some("10.0.0.1".parse().unwrap()),
                lladdr: HwAddr::parse(
                    &wire::Attrs::new("X", &build::attr(2, &[2, 0, 0, 0, 0, 9]), 0)
                        .next()
                        .unwrap()
                        .unwrap(),
                    "X"
                )
                .ok(),
            }]
        );
        let mut payload = ndmsg(2, 3, NUD_REACHABLE, 0);
        payload.extend(build::attr(NDA_DST, &[10, 0, 0]));
        let mut bytes = build::message(RTM_NEWNEIGH, 2, 1, &payload);
        bytes.extend(build::done(2, 1));
        let err = parse_answer(&bytes, &mut table).unwrap_err().to_string();
        assert_eq!(
            err,
            "netlink RTM_NEWNEIGH at offset 28: NDA_DST: 3 bytes, expected 4 or 16"
        );
        // An ndmsg cut short.
        let mut bytes = build::message(RTM_NEWNEIGH, 2, 1, &[2, 0, 0]);
        bytes.extend(build::done(2, 1));
        assert!(parse_answer(&bytes, &mut table).is_err());
    }

    #[test]
    fn requests_the_family_asked_for() {
        let mut request = Request::default();
        Neighbours::new(Family::Inet6).write_request(&mut request, 4);
        let bytes = request.bytes();
        assert_eq!(bytes.len(), 16 + NDMSG_LEN);
        assert_eq!(wire::u16_at(bytes, 4), Some(RTM_GETNEIGH));
        assert_eq!(bytes[16], nix::libc::AF_INET6 as u8);
    }

    #[test]
    fn dumps_the_kernel_table() {
        let mut socket = crate::netlink::Socket::new(crate::netlink::socket::Protocol::Route);
        let mut table = Neighbours::new(Family::Inet);
        socket.dump(&mut table).unwrap();
        assert!(table.as_slice().iter().all(|n| n.family == 2));
    }

    #[test]
    fn constants_match_the_libc_crate() {
        use nix::libc;
        assert_eq!(RTM_NEWNEIGH, libc::RTM_NEWNEIGH);
        assert_eq!(RTM_GETNEIGH, libc::RTM_GETNEIGH);
        assert_eq!(NDA_DST, libc::NDA_DST);
        assert_eq!(NDA_LLADDR, libc::NDA_LLADDR);
        assert_eq!(NUD_INCOMPLETE, libc::NUD_INCOMPLETE);
        assert_eq!(NUD_REACHABLE, libc::NUD_REACHABLE);
        assert_eq!(NUD_STALE, libc::NUD_STALE);
        assert_eq!(NUD_DELAY, libc::NUD_DELAY);
        assert_eq!(NUD_PROBE, libc::NUD_PROBE);
        assert_eq!(NUD_FAILED, libc::NUD_FAILED);
        assert_eq!(NUD_NOARP, libc::NUD_NOARP);
        assert_eq!(NUD_PERMANENT, libc::NUD_PERMANENT);
    }
}
