//! The ethtool generic-netlink family (Linux 5.6+): `ETHTOOL_MSG_LINKMODES_GET`
//! dumps every interface's speed and duplex at once, what sysfs `speed` and
//! `duplex` show one file and one ethtool call at a time
//! (<linux/ethtool_netlink.h>, <linux/genetlink.h>).
//!
//! The family's message type is assigned at boot, so it is looked up once by name
//! (`CTRL_CMD_GETFAMILY`). Interfaces whose driver has no link settings (lo, ifb)
//! are left out of the answer by the kernel, as sysfs refuses their files. The
//! kernel answers for interfaces that are down too, where sysfs refuses: the
//! caller decides (netclass takes the values of interfaces that are up only).

use super::socket::{Dump, Protocol};
use super::wire::{Message, Request, NLM_F_DUMP, NLM_F_REQUEST};
use super::{Error, Netlink};
use nix::errno::Errno;

/// `GENL_ID_CTRL`: the message type of the generic-netlink controller.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
/// The controller's version (`CTRL_CMD_GETFAMILY` is answered at any).
const CTRL_VERSION: u8 = 2;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `sizeof(struct genlmsghdr)`: command, version, reserved.
const GENLMSGHDR_LEN: usize = 4;
/// `NLM_F_ACK`: a request answered by one message and an acknowledgement.
const NLM_F_ACK: u16 = 0x4;

const FAMILY_NAME: &[u8] = b"ethtool\0";
/// `ETHTOOL_GENL_VERSION`.
const ETHTOOL_GENL_VERSION: u8 = 1;
/// `ETHTOOL_MSG_LINKMODES_GET`, and `ETHTOOL_MSG_LINKMODES_GET_REPLY` (same number).
const ETHTOOL_MSG_LINKMODES_GET: u8 = 4;
const ETHTOOL_A_LINKMODES_HEADER: u16 = 1;
const ETHTOOL_A_LINKMODES_SPEED: u16 = 5;
const ETHTOOL_A_LINKMODES_DUPLEX: u16 = 6;
const ETHTOOL_A_HEADER_DEV_INDEX: u16 = 1;
const ETHTOOL_A_HEADER_FLAGS: u16 = 3;
/// Link-mode bit sets as bit arrays rather than lists of names: a few dozen bytes
/// an interface instead of kilobytes.
const ETHTOOL_FLAG_COMPACT_BITSETS: u32 = 1;

/// `DUPLEX_HALF`, `DUPLEX_FULL` of <linux/ethtool.h> (anything else is unknown).
pub const DUPLEX_HALF: u8 = 0;
pub const DUPLEX_FULL: u8 = 1;

/// A family id for [`super::fuzz_parse`]: this machine's ethtool family.
pub const FUZZ_FAMILY_ID: u16 = 21;
/// The most interfaces one answer holds (as [`super::link::MAX_LINKS`]).
const MAX_MODES: usize = super::link::MAX_LINKS;

/// One interface's link settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkMode {
    pub index: i32,
    /// Mb/s; `u32::MAX` (`SPEED_UNKNOWN`) when unknown.
    pub speed: u32,
    pub duplex: u8,
}

impl LinkMode {
    /// The duplex as sysfs `duplex` names it.
    pub fn duplex_name(&self) -> &'static str {
        match self.duplex {
            DUPLEX_HALF => "half",
            DUPLEX_FULL => "full",
            _ => "unknown",
        }
    }
}

/// The answer of one `ETHTOOL_MSG_LINKMODES_GET` dump.
pub struct LinkModes {
    family: u16,
    entries: Vec<LinkMode>,
}

impl LinkModes {
    pub fn with_family(family: u16) -> Self {
        LinkModes {
            family,
            entries: Vec::new(),
        }
    }

    /// The settings of interface `index`, if the kernel reported them. Call
    /// [`LinkModes::sort`] after a dump first.
    pub fn get(&self, index: i32) -> Option<&LinkMode> {
        let at = self
            .entries
            .binary_search_by_key(&index, |m| m.index)
            .ok()?;
        self.entries.get(at)
    }

    pub fn sort(&mut self) {
        self.entries.sort_unstable_by_key(|m| m.index);
    }

    pub fn as_slice(&self) -> &[LinkMode] {
        &self.entries
    }

    fn parse(message: &Message<'_>) -> Result<LinkMode, Error> {
        const NAME: &str = "ETHTOOL_MSG_LINKMODES_GET_REPLY";
        let (_, attrs) = message.split(NAME, GENLMSGHDR_LEN)?;
        let (mut index, mut speed, mut duplex) = (None, None, None);
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                ETHTOOL_A_LINKMODES_HEADER => {
                    for inner in attr.nested() {
                        let inner = inner?;
                        if inner.kind == ETHTOOL_A_HEADER_DEV_INDEX {
                            index = Some(inner.u32("ETHTOOL_A_HEADER_DEV_INDEX")? as i32);
                        }
                    }
                }
                ETHTOOL_A_LINKMODES_SPEED => speed = Some(attr.u32("ETHTOOL_A_LINKMODES_SPEED")?),
                ETHTOOL_A_LINKMODES_DUPLEX => duplex = Some(attr.u8("ETHTOOL_A_LINKMODES_DUPLEX")?),
                _ => {}
            }
        }
        match (index, speed, duplex) {
            (Some(index), Some(speed), Some(duplex)) => Ok(LinkMode {
                index,
                speed,
                duplex,
            }),
            _ => Err(Error::malformed(
                NAME,
                message.offset,
                "expected a device index, a speed and a duplex".to_owned(),
            )),
        }
    }
}

impl Dump for LinkModes {
    fn request_name(&self) -> &'static str {
        "ETHTOOL_MSG_LINKMODES_GET"
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        request.begin(self.family, NLM_F_REQUEST | NLM_F_DUMP, seq);
        request.push(&[ETHTOOL_MSG_LINKMODES_GET, ETHTOOL_GENL_VERSION, 0, 0]);
        request.nested(ETHTOOL_A_LINKMODES_HEADER, |header| {
            header.attr(
                ETHTOOL_A_HEADER_FLAGS,
                &ETHTOOL_FLAG_COMPACT_BITSETS.to_ne_bytes(),
            );
        });
    }

    fn answer_type(&self) -> u16 {
        self.family
    }

    fn clear(&mut self) {
        self.entries.clear();
    }

    /// Sorted by index for [`LinkModes::get`] (kernels before 6.7 dump in hash order).
    fn finish(&mut self) {
        self.entries.sort_unstable_by_key(|m| m.index);
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        if self.entries.len() >= MAX_MODES {
            return Err(Error::TooLarge {
                request: "ETHTOOL_MSG_LINKMODES_GET",
                what: format!("more than {MAX_MODES} interfaces"),
            });
        }
        self.entries.push(LinkModes::parse(message)?);
        Ok(())
    }
}

/// The `CTRL_CMD_GETFAMILY` request for the ethtool family, and its answer.
#[derive(Default)]
pub struct FamilyId(Option<u16>);

impl FamilyId {
    /// The family's message type, once answered.
    pub fn id(&self) -> Option<u16> {
        self.0
    }
}

impl Dump for FamilyId {
    fn request_name(&self) -> &'static str {
        "CTRL_CMD_GETFAMILY"
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        request.begin(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq);
        request.push(&[CTRL_CMD_GETFAMILY, CTRL_VERSION, 0, 0]);
        request.attr(CTRL_ATTR_FAMILY_NAME, FAMILY_NAME);
    }

    fn answer_type(&self) -> u16 {
        GENL_ID_CTRL
    }

    fn clear(&mut self) {
        self.0 = None;
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        let (_, attrs) = message.split("CTRL_CMD_NEWFAMILY", GENLMSGHDR_LEN)?;
        for attr in attrs {
            let attr = attr?;
            if attr.kind == CTRL_ATTR_FAMILY_ID {
                self.0 = Some(attr.u16("CTRL_ATTR_FAMILY_ID")?);
            }
        }
        Ok(())
    }
}

/// Parses a recorded answer to the family lookup; for tests and fuzzing.
pub fn parse_family(bytes: &[u8]) -> Result<Option<u16>, Error> {
    let mut family = FamilyId::default();
    super::socket::parse_answer(bytes, &mut family)?;
    Ok(family.0)
}

/// The link-modes dump, with the family looked up once (over the agent's shared
/// generic-netlink socket).
#[derive(Default)]
pub struct Ethtool {
    modes: Option<LinkModes>,
}

impl Ethtool {
    /// The answer of the last successful [`Ethtool::link_modes`].
    pub fn last(&self) -> Option<&LinkModes> {
        self.modes.as_ref()
    }

    /// Every interface's link settings. `Err` with
    /// [`Error::Refused`] and `ENOENT` when the kernel has no ethtool family.
    pub fn link_modes(&mut self, netlink: &Netlink) -> Result<&LinkModes, Error> {
        let modes = match &mut self.modes {
            Some(modes) => modes,
            slot => {
                let mut family = FamilyId::default();
                netlink.dump(Protocol::Generic, &mut family)?;
                let id = family.0.ok_or(Error::Refused {
                    request: "CTRL_CMD_GETFAMILY",
                    errno: Errno::ENOENT,
                })?;
                slot.insert(LinkModes::with_family(id))
            }
        };
        netlink.dump(Protocol::Generic, modes)?;
        Ok(modes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::socket::{parse_answer, Outcome};
    use crate::netlink::wire::{self, build};

    /// This machine's answers: the family lookup, and the link modes of a
    /// namespace holding a veth pair (one end up), a tun device and lo
    /// (src/netlink/fixtures/README tells how they were recorded).
    const RECORDED_FAMILY: &[u8] = include_bytes!("fixtures/ethtool_family.bin");
    const RECORDED_MODES: &[u8] = include_bytes!("fixtures/ethtool_linkmodes.bin");

    #[test]
    fn parses_recorded_answers() {
        let id = parse_family(RECORDED_FAMILY).unwrap().expect("a family id");
        assert!(id > GENL_ID_CTRL);
        let mut modes = LinkModes::with_family(id);
        assert_eq!(
            parse_answer(RECORDED_MODES, &mut modes),
            Ok(Outcome::Complete)
        );
        let list = modes.as_slice();
        // veth (both ends) and tun answer; lo has no link settings.
        assert_eq!(list.len(), 3, "{list:?}");
        assert!(list.iter().all(|m| m.index > 1));
        // Down or up, each reports its driver's settings (veth and tun: 10 Gb/s full).
        assert!(
            list.iter()
                .all(|m| m.speed == 10_000 && m.duplex_name() == "full"),
            "{list:?}"
        );
        assert_eq!(modes.get(list[1].index), Some(&list[1]));
        assert_eq!(modes.get(1), None);
    }

    #[test]
    fn hand_built_reply() {
        let mut header = build::attr(ETHTOOL_A_HEADER_DEV_INDEX, &7u32.to_ne_bytes());
        header.extend(build::attr(2, b"eth0\0"));
        let mut payload = vec![ETHTOOL_MSG_LINKMODES_GET, 1, 0, 0];
        payload.extend(build::attr(ETHTOOL_A_LINKMODES_HEADER | 0x8000, &header));
        payload.extend(build::attr(
            ETHTOOL_A_LINKMODES_SPEED,
            &u32::MAX.to_ne_bytes(),
        ));
        payload.extend(build::attr(ETHTOOL_A_LINKMODES_DUPLEX, &[0xff]));
        let mut bytes = build::message(30, 2, 1, &payload);
        bytes.extend(build::done(2, 1));
        let mut modes = LinkModes::with_family(30);
        parse_answer(&bytes, &mut modes).unwrap();
        let mode = modes.as_slice()[0];
        assert_eq!(
            (mode.index, mode.speed as i32, mode.duplex_name()),
            (7, -1, "unknown")
        );
        // Without a speed: an error.
        let mut payload = vec![ETHTOOL_MSG_LINKMODES_GET, 1, 0, 0];
        payload.extend(build::attr(ETHTOOL_A_LINKMODES_HEADER, &header));
        let mut bytes = build::message(30, 2, 1, &payload);
        bytes.extend(build::done(2, 1));
        let err = parse_answer(&bytes, &mut modes).unwrap_err().to_string();
        assert!(
            err.ends_with("expected a device index, a speed and a duplex"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_family_is_refused_with_enoent() {
        let mut payload = (-2i32).to_ne_bytes().to_vec();
        payload.extend([0; 16]);
        let bytes = build::message(wire::NLMSG_ERROR, 0, 1, &payload);
        assert_eq!(
            parse_family(&bytes).unwrap_err().errno(),
            Some(Errno::ENOENT)
        );
    }

    #[test]
    fn dumps_this_machines_link_modes() {
        let (netlink, mut ethtool) = (Netlink::default(), Ethtool::default());
        let count = ethtool.link_modes(&netlink).unwrap().as_slice().len();
        // The family is looked up once; the second dump reuses it.
        let again = ethtool.link_modes(&netlink).unwrap().as_slice().len();
        assert_eq!(count, again);
    }
}
