//! `RTM_GETLINK`: every network interface of the namespace, with the attributes
//! node_exporter's netdev and netclass collectors export and `IFLA_STATS64`, in one
//! dump.
//!
//! The answer is one `RTM_NEWLINK` message per interface: an `ifinfomsg` (index,
//! type, flags) and attributes (<linux/if_link.h>). The kernel leaves an attribute
//! out when it does not apply: `IFLA_ADDRESS`/`IFLA_BROADCAST` for a device without
//! a hardware address, `IFLA_IFALIAS` when no alias is set, `IFLA_LINK` when the
//! device is its own link. Unknown attributes are skipped, so newer kernels parse.
//! Each [`Link`] is a slot of [`Links`], reused from dump to dump.

use super::socket::Dump;
use super::wire::{self, Attr, Message, Request, NLM_F_DUMP, NLM_F_REQUEST};
use super::Error;

/// `RTM_NEWLINK`, `RTM_DELLINK` and `RTM_GETLINK` of <linux/rtnetlink.h>.
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
/// `sizeof(struct ifinfomsg)`: family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;
/// `IFNAMSIZ`: an interface name is at most 15 bytes and a NUL.
pub const IFNAMSIZ: usize = 16;
/// `MAX_ADDR_LEN` of <linux/netdevice.h>: the longest hardware address.
pub const MAX_ADDR_LEN: usize = 32;
/// The most interfaces one dump holds (a [`Link`] is ~450 bytes, so 7 MiB at
/// most); a namespace with more is refused rather than held without bound.
pub const MAX_LINKS: usize = 1 << 14;
/// Slots this many times more than a dump needed are given back, so that a
/// one-off huge answer does not pin its memory.
const SHRINK_FACTOR: usize = 4;

// Attribute types of <linux/if_link.h> (enum, counted from IFLA_UNSPEC = 0).
const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_IFALIAS: u16 = 20;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_PROMISCUITY: u16 = 30;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_PROTO_DOWN: u16 = 39;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
const IFLA_ALLMULTI: u16 = 61;

/// Interface flags of <linux/if.h> as `ifi_flags` carries them (`dev_get_flags`).
pub const IFF_UP: u32 = 0x1;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_PROMISC: u32 = 0x100;
pub const IFF_ALLMULTI: u32 = 0x200;
pub const IFF_LOWER_UP: u32 = 0x1_0000;
pub const IFF_DORMANT: u32 = 0x2_0000;

/// `struct rtnl_link_stats64`, the kernel's counters of an interface, as
/// /proc/net/dev and /sys/class/net/<dev>/statistics/ show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats64 {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub multicast: u64,
    pub collisions: u64,
    pub rx_length_errors: u64,
    pub rx_over_errors: u64,
    pub rx_crc_errors: u64,
    pub rx_frame_errors: u64,
    pub rx_fifo_errors: u64,
    pub rx_missed_errors: u64,
    pub tx_aborted_errors: u64,
    pub tx_carrier_errors: u64,
    pub tx_fifo_errors: u64,
    pub tx_heartbeat_errors: u64,
    pub tx_window_errors: u64,
    pub rx_compressed: u64,
    pub tx_compressed: u64,
    /// Since Linux 4.6.
    pub rx_nohandler: Option<u64>,
    /// Since Linux 5.19.
    pub rx_otherhost_dropped: Option<u64>,
}

/// The fields every kernel's `rtnl_link_stats64` has (23 counters).
const STATS64_MIN_LEN: usize = 23 * 8;

impl Stats64 {
    fn parse(attr: &Attr<'_>, name: &str) -> Result<Stats64, Error> {
        let data = attr.data;
        if data.len() < STATS64_MIN_LEN {
            return Err(attr.error(
                name,
                format_args!("{} bytes, expected at least {STATS64_MIN_LEN}", data.len()),
            ));
        }
        let field = |n: usize| wire::u64_at(data, n * 8);
        let at = |n: usize| field(n).unwrap_or(0); // n < 23: checked above
        Ok(Stats64 {
            rx_packets: at(0),
            tx_packets: at(1),
            rx_bytes: at(2),
            tx_bytes: at(3),
            rx_errors: at(4),
            tx_errors: at(5),
            rx_dropped: at(6),
            tx_dropped: at(7),
            multicast: at(8),
            collisions: at(9),
            rx_length_errors: at(10),
            rx_over_errors: at(11),
            rx_crc_errors: at(12),
            rx_frame_errors: at(13),
            rx_fifo_errors: at(14),
            rx_missed_errors: at(15),
            tx_aborted_errors: at(16),
            tx_carrier_errors: at(17),
            tx_fifo_errors: at(18),
            tx_heartbeat_errors: at(19),
            tx_window_errors: at(20),
            rx_compressed: at(21),
            tx_compressed: at(22),
            rx_nohandler: field(23),
            rx_otherhost_dropped: field(24),
        })
    }
}

/// A hardware address (`IFLA_ADDRESS`, `IFLA_BROADCAST`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwAddr {
    bytes: [u8; MAX_ADDR_LEN],
    len: u8,
}

impl HwAddr {
    pub(crate) fn parse(attr: &Attr<'_>, name: &str) -> Result<HwAddr, Error> {
        let mut addr = HwAddr::default();
        let slot = addr.bytes.get_mut(..attr.data.len()).ok_or_else(|| {
            attr.error(
                name,
                format_args!("{} bytes, more than {MAX_ADDR_LEN}", attr.data.len()),
            )
        })?;
        slot.copy_from_slice(attr.data);
        addr.len = attr.data.len() as u8;
        Ok(addr)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// Formats as sysfs does (`%*phC`): lowercase hex bytes joined by `:`.
impl std::fmt::Display for HwAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Built in place and written once: hundreds of addresses a cycle.
        let mut text = [0u8; 3 * MAX_ADDR_LEN];
        let mut len = 0;
        for (i, byte) in self.as_bytes().iter().enumerate() {
            let digits = [
                b':',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ];
            let digits = if i == 0 { &digits[1..] } else { &digits[..] };
            if let Some(slot) = text.get_mut(len..len + digits.len()) {
                slot.copy_from_slice(digits);
                len += digits.len();
            }
        }
        f.write_str(std::str::from_utf8(text.get(..len).unwrap_or(&[])).unwrap_or(""))
    }
}

/// An interface name (`IFLA_IFNAME`): at most 15 bytes, kept inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; IFNAMSIZ],
    len: u8,
}

impl Name {
    fn parse(attr: &Attr<'_>) -> Result<Name, Error> {
        let text = attr.c_str();
        let mut name = Name::default();
        let slot = name
            .bytes
            .get_mut(..text.len())
            .filter(|_| text.len() < IFNAMSIZ);
        let slot = slot.ok_or_else(|| {
            attr.error(
                "IFLA_IFNAME",
                format_args!("{} bytes, longer than IFNAMSIZ", text.len()),
            )
        })?;
        slot.copy_from_slice(text);
        name.len = text.len() as u8;
        Ok(name)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The name, when it is UTF-8 (the kernel allows any bytes but `/`, `:`,
    /// whitespace and NUL).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }
}

/// One interface. Numbers are as the kernel sends them; `None` where the
/// attribute was not in the message.
#[derive(Clone, Debug, Default)]
pub struct Link {
    /// `ifi_index`.
    pub index: i32,
    /// `ifi_type`: the ARPHRD_* hardware type.
    pub kind: u16,
    /// `ifi_flags`: `dev_get_flags()`, i.e. the device's flags without the
    /// promiscuity and allmulti the kernel set itself, with `IFF_RUNNING`,
    /// `IFF_LOWER_UP` and `IFF_DORMANT` computed from its state.
    pub flags: u32,
    name: Name,
    pub mtu: Option<u32>,
    pub txqlen: Option<u32>,
    /// `IF_OPER_*` (RFC 2863), `IF_OPER_DOWN` whenever the device is not up.
    pub operstate: Option<u8>,
    pub link_mode: Option<u8>,
    pub carrier: Option<u8>,
    pub carrier_changes: Option<u32>,
    pub carrier_up_count: Option<u32>,
    pub carrier_down_count: Option<u32>,
    pub group: Option<u32>,
    pub promiscuity: Option<u32>,
    /// Since Linux 6.6.
    pub allmulti: Option<u32>,
    /// `IFLA_LINK`: the index of the device this one sits on, when that is not itself.
    pub link: Option<u32>,
    pub master: Option<u32>,
    pub proto_down: Option<u8>,
    pub num_tx_queues: Option<u32>,
    pub num_rx_queues: Option<u32>,
    pub address: Option<HwAddr>,
    pub broadcast: Option<HwAddr>,
    alias: String,
    has_alias: bool,
    pub stats: Option<Stats64>,
}

impl Link {
    /// The name, when it is UTF-8 (the kernel allows any bytes but `/`, `:`,
    /// whitespace and NUL).
    pub fn name(&self) -> Option<&str> {
        self.name.as_str()
    }

    pub fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    pub fn name_value(&self) -> &Name {
        &self.name
    }

    /// `IFLA_IFALIAS`, invalid UTF-8 replaced by U+FFFD.
    pub fn alias(&self) -> Option<&str> {
        self.has_alias.then_some(self.alias.as_str())
    }

    /// Whether the device is up (`netif_running`), which is when the kernel
    /// reports carrier, dormant, speed and duplex in sysfs.
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    fn reset(&mut self) {
        let alias = std::mem::take(&mut self.alias);
        *self = Link {
            alias,
            ..Link::default()
        };
        self.alias.clear();
    }

    /// Fills this slot from an `RTM_NEWLINK` message.
    fn parse(&mut self, message: &Message<'_>) -> Result<(), Error> {
        const NAME: &str = "RTM_NEWLINK";
        self.reset();
        let (fixed, attrs) = message.split(NAME, IFINFOMSG_LEN)?;
        self.kind = wire::u16_at(fixed, 2).unwrap_or(0);
        self.index = wire::i32_at(fixed, 4).unwrap_or(0);
        self.flags = wire::u32_at(fixed, 8).unwrap_or(0);
        let mut named = false;
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                IFLA_IFNAME => {
                    self.name = Name::parse(&attr)?;
                    named = true;
                }
                IFLA_ADDRESS => self.address = Some(HwAddr::parse(&attr, "IFLA_ADDRESS")?),
                IFLA_BROADCAST => self.broadcast = Some(HwAddr::parse(&attr, "IFLA_BROADCAST")?),
                IFLA_MTU => self.mtu = Some(attr.u32("IFLA_MTU")?),
                IFLA_LINK => self.link = Some(attr.u32("IFLA_LINK")?),
                IFLA_MASTER => self.master = Some(attr.u32("IFLA_MASTER")?),
                IFLA_TXQLEN => self.txqlen = Some(attr.u32("IFLA_TXQLEN")?),
                IFLA_OPERSTATE => self.operstate = Some(attr.u8("IFLA_OPERSTATE")?),
                IFLA_LINKMODE => self.link_mode = Some(attr.u8("IFLA_LINKMODE")?),
                IFLA_IFALIAS => {
                    self.alias.push_str(&String::from_utf8_lossy(attr.c_str()));
                    self.has_alias = true;
                }
                IFLA_STATS64 => self.stats = Some(Stats64::parse(&attr, "IFLA_STATS64")?),
                IFLA_GROUP => self.group = Some(attr.u32("IFLA_GROUP")?),
                IFLA_PROMISCUITY => self.promiscuity = Some(attr.u32("IFLA_PROMISCUITY")?),
                IFLA_NUM_TX_QUEUES => self.num_tx_queues = Some(attr.u32("IFLA_NUM_TX_QUEUES")?),
                IFLA_NUM_RX_QUEUES => self.num_rx_queues = Some(attr.u32("IFLA_NUM_RX_QUEUES")?),
                IFLA_CARRIER => self.carrier = Some(attr.u8("IFLA_CARRIER")?),
                IFLA_CARRIER_CHANGES => {
                    self.carrier_changes = Some(attr.u32("IFLA_CARRIER_CHANGES")?)
                }
                IFLA_PROTO_DOWN => self.proto_down = Some(attr.u8("IFLA_PROTO_DOWN")?),
                IFLA_CARRIER_UP_COUNT => {
                    self.carrier_up_count = Some(attr.u32("IFLA_CARRIER_UP_COUNT")?)
                }
                IFLA_CARRIER_DOWN_COUNT => {
                    self.carrier_down_count = Some(attr.u32("IFLA_CARRIER_DOWN_COUNT")?)
                }
                IFLA_ALLMULTI => self.allmulti = Some(attr.u32("IFLA_ALLMULTI")?),
                _ => {}
            }
        }
        if !named {
            return Err(Error::malformed(
                NAME,
                message.offset,
                format!("interface {} has no IFLA_IFNAME", self.index),
            ));
        }
        Ok(())
    }
}

/// The interfaces of one dump, in the kernel's order (by index), in slots that are
/// kept from dump to dump.
#[derive(Default)]
pub struct Links {
    slots: Vec<Link>,
    len: usize,
    /// Slot numbers in name order, for [`Links::by_name`].
    order: Vec<u32>,
    /// `IFLA_EXT_MASK` of the request.
    ext_mask: u32,
}

/// `RTEXT_FILTER_SKIP_STATS` of <linux/rtnetlink.h>.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
const IFLA_EXT_MASK: u16 = 29;

impl Links {
    /// A dump for readers that need no counters (`RTEXT_FILTER_SKIP_STATS`): the
    /// kernel leaves out the IPv6 statistics, a quarter of the bytes and about a
    /// fifth of its work for veth interfaces. (Linux 6.18 still sends
    /// `IFLA_STATS64` with it, so `stats` may be there or not.)
    pub fn without_stats() -> Self {
        Links {
            ext_mask: RTEXT_FILTER_SKIP_STATS,
            ..Links::default()
        }
    }

    pub fn as_slice(&self) -> &[Link] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    /// The interfaces in name order, as directory listings of sysfs are read.
    pub fn by_name(&mut self) -> impl Iterator<Item = &Link> {
        self.order.clear();
        self.order.extend(0..self.len as u32);
        let slots = &self.slots;
        let name = |i: &u32| slots.get(*i as usize).map(Link::name_bytes);
        self.order.sort_unstable_by(|a, b| name(a).cmp(&name(b)));
        self.order.iter().filter_map(|&i| slots.get(i as usize))
    }

    /// Parses one `RTM_NEWLINK` message into the next slot.
    pub fn push(&mut self, message: &Message<'_>) -> Result<(), Error> {
        if self.len >= MAX_LINKS {
            return Err(Error::TooLarge {
                request: "RTM_GETLINK",
                what: format!("more than {MAX_LINKS} interfaces"),
            });
        }
        if self.len == self.slots.len() {
            self.slots.push(Link::default());
        }
        let slot = self
            .slots
            .get_mut(self.len)
            .ok_or_else(|| Error::TooLarge {
                request: "RTM_GETLINK",
                what: "no slot".to_owned(),
            })?;
        slot.parse(message)?;
        self.len += 1;
        Ok(())
    }
}

impl Dump for Links {
    fn request_name(&self) -> &'static str {
        "RTM_GETLINK"
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        request.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
        // ifinfomsg with family AF_UNSPEC: every interface.
        request.push(&[0; IFINFOMSG_LEN]);
        if self.ext_mask != 0 {
            request.attr(IFLA_EXT_MASK, &self.ext_mask.to_ne_bytes());
        }
    }

    fn answer_type(&self) -> u16 {
        RTM_NEWLINK
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        self.push(message)
    }

    fn finish(&mut self) {
        if self.slots.len() > SHRINK_FACTOR * self.len + 64 {
            self.slots.truncate(self.len);
            self.slots.shrink_to_fit();
        }
    }
}

/// The interface index an `RTM_NEWLINK`/`RTM_DELLINK` notification is about;
/// `None` for other messages.
pub fn changed_index(message: &Message<'_>) -> Option<i32> {
    if !matches!(message.header.kind, RTM_NEWLINK | RTM_DELLINK) {
        return None;
    }
    wire::i32_at(message.payload, 4)
}

/// What an `RTNLGRP_LINK` notification says of an interface's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// `RTM_NEWLINK`: the interface exists (new, or changed) with this name.
    Named(i32, Name),
    /// `RTM_DELLINK`: the interface is gone (or left the namespace).
    Removed(i32),
}

impl Announcement {
    /// Reads a notification; `None` for a message of another type.
    pub fn parse(message: &Message<'_>) -> Option<Result<Announcement, Error>> {
        const NAME: &str = "RTM_NEWLINK";
        let index = changed_index(message)?;
        if message.header.kind == RTM_DELLINK {
            return Some(Ok(Announcement::Removed(index)));
        }
        let parsed = message.split(NAME, IFINFOMSG_LEN).and_then(|(_, attrs)| {
            for attr in attrs {
                let attr = attr?;
                if attr.kind == IFLA_IFNAME {
                    return Ok(Announcement::Named(index, Name::parse(&attr)?));
                }
            }
            Err(Error::malformed(
                NAME,
                message.offset,
                format!("interface {index} has no IFLA_IFNAME"),
            ))
        });
        Some(parsed)
    }
}

/// `RTM_NEWSTATS`, `RTM_GETSTATS` of <linux/rtnetlink.h> (Linux 4.7+).
const RTM_NEWSTATS: u16 = 92;
const RTM_GETSTATS: u16 = 94;
/// `sizeof(struct if_stats_msg)`: family, pads, index, filter mask.
const IF_STATS_MSG_LEN: usize = 12;
const IFLA_STATS_LINK_64: u16 = 1;
/// `IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64)`.
const FILTER_LINK_64: u32 = 1 << (IFLA_STATS_LINK_64 - 1);

/// One interface's counters, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexedStats {
    pub index: i32,
    pub stats: Stats64,
}

/// `RTM_GETSTATS` for `IFLA_STATS_LINK_64` only: every interface's counters and
/// nothing else, in the kernel's order (by index). A tenth of the kernel's work
/// of an `RTM_GETLINK` dump; the names come from elsewhere.
#[derive(Default)]
pub struct Counters {
    entries: Vec<IndexedStats>,
}

impl Counters {
    pub fn as_slice(&self) -> &[IndexedStats] {
        &self.entries
    }
}

impl Dump for Counters {
    fn request_name(&self) -> &'static str {
        "RTM_GETSTATS"
    }

    fn write_request(&self, request: &mut Request, seq: u32) {
        request.begin(RTM_GETSTATS, NLM_F_REQUEST | NLM_F_DUMP, seq);
        let mut header = [0u8; IF_STATS_MSG_LEN];
        header[8..12].copy_from_slice(&FILTER_LINK_64.to_ne_bytes());
        request.push(&header);
    }

    fn answer_type(&self) -> u16 {
        RTM_NEWSTATS
    }

    fn clear(&mut self) {
        self.entries.clear();
    }

    fn add(&mut self, message: &Message<'_>) -> Result<(), Error> {
        const NAME: &str = "RTM_NEWSTATS";
        if self.entries.len() >= MAX_LINKS {
            return Err(Error::TooLarge {
                request: "RTM_GETSTATS",
                what: format!("more than {MAX_LINKS} interfaces"),
            });
        }
        let (fixed, attrs) = message.split(NAME, IF_STATS_MSG_LEN)?;
        let index = wire::i32_at(fixed, 4).unwrap_or(0);
        for attr in attrs {
            let attr = attr?;
            if attr.kind == IFLA_STATS_LINK_64 {
                let stats = Stats64::parse(&attr, "IFLA_STATS_LINK_64")?;
                self.entries.push(IndexedStats { index, stats });
                return Ok(());
            }
        }
        Err(Error::malformed(
            NAME,
            message.offset,
            format!("interface {index} has no IFLA_STATS_LINK_64"),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::netlink::socket::{parse_answer, Outcome};
    use crate::netlink::wire::build;

    /// A recorded dump of this machine's kernel (6.18): lo, ifb0, ifb1 and eth0,
    /// as `RTM_GETLINK` answered it (tests/fixtures/netlink/README tells how).
    const RECORDED: &[u8] = include_bytes!("fixtures/links.bin");

    /// `RTM_GETSTATS` answered in the same namespace.
    const RECORDED_COUNTERS: &[u8] = include_bytes!("fixtures/counters.bin");

    #[test]
    fn parses_recorded_counters_in_the_order_of_the_links() {
        let mut counters = Counters::default();
        assert_eq!(
            parse_answer(RECORDED_COUNTERS, &mut counters),
            Ok(Outcome::Complete)
        );
        let indexes: Vec<_> = counters.as_slice().iter().map(|c| c.index).collect();
        assert_eq!(indexes, [1, 2, 3, 4]);
        let eth0 = counters.as_slice()[3].stats;
        assert!(eth0.rx_bytes > 0 && eth0.rx_nohandler.is_some());
        // Without the counters attribute: an error naming the interface.
        let mut header = vec![0u8; IF_STATS_MSG_LEN];
        header[4..8].copy_from_slice(&7i32.to_ne_bytes());
        let mut bytes = build::message(RTM_NEWSTATS, 2, 1, &header);
        bytes.extend(build::done(2, 1));
        let err = parse_answer(&bytes, &mut counters).unwrap_err().to_string();
        assert!(
            err.ends_with("interface 7 has no IFLA_STATS_LINK_64"),
            "{err}"
        );
    }

    #[test]
    fn announcements_name_or_remove_an_interface() {
        let new = link_message(5, "veth5", 0, &[]);
        let message = wire::Messages::new(&new, 0).next().unwrap().unwrap();
        let Some(Ok(Announcement::Named(5, name))) = Announcement::parse(&message) else {
            panic!("not named");
        };
        assert_eq!(name.as_str(), Some("veth5"));
        let mut gone = new.clone();
        gone[4..6].copy_from_slice(&RTM_DELLINK.to_ne_bytes());
        let message = wire::Messages::new(&gone, 0).next().unwrap().unwrap();
        assert_eq!(
            Announcement::parse(&message),
            Some(Ok(Announcement::Removed(5)))
        );
        let done = build::done(0, 1);
        let message = wire::Messages::new(&done, 0).next().unwrap().unwrap();
        assert_eq!(Announcement::parse(&message), None);
        let nameless = build::message(RTM_NEWLINK, 0, 1, &ifinfomsg(6, 1, 0));
        let message = wire::Messages::new(&nameless, 0).next().unwrap().unwrap();
        assert!(matches!(Announcement::parse(&message), Some(Err(_))));
    }

    /// An `ifinfomsg` for `index` with `flags`.
    pub fn ifinfomsg(index: i32, kind: u16, flags: u32) -> Vec<u8> {
        let mut out = vec![0u8, 0];
        out.extend(kind.to_ne_bytes());
        out.extend(index.to_ne_bytes());
        out.extend(flags.to_ne_bytes());
        out.extend(0u32.to_ne_bytes());
        out
    }

    pub fn stats64(first: u64) -> Vec<u8> {
        (0..25u64).flat_map(|n| (first + n).to_ne_bytes()).collect()
    }

    /// A hand-built RTM_NEWLINK message for `name` at `index`.
    pub fn link_message(index: i32, name: &str, flags: u16, extra: &[Vec<u8>]) -> Vec<u8> {
        let mut payload = ifinfomsg(index, 1, IFF_UP | IFF_LOWER_UP);
        payload.extend(build::attr(IFLA_IFNAME, format!("{name}\0").as_bytes()));
        payload.extend(build::attr(IFLA_MTU, &1500u32.to_ne_bytes()));
        payload.extend(build::attr(IFLA_STATS64, &stats64(100)));
        for attr in extra {
            payload.extend(attr);
        }
        build::message(RTM_NEWLINK, flags, 1, &payload)
    }

    #[test]
    fn parses_a_recorded_dump() {
        let mut links = Links::default();
        assert_eq!(parse_answer(RECORDED, &mut links), Ok(Outcome::Complete));
        let names: Vec<_> = links.as_slice().iter().filter_map(Link::name).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        let lo = &links.as_slice()[0];
        assert_eq!((lo.index, lo.kind, lo.mtu), (1, 772, Some(65536)));
        assert_eq!(lo.address.unwrap().to_string(), "00:00:00:00:00:00");
        assert!(lo.is_up());
        assert_eq!(lo.link, None);
        let eth0 = &links.as_slice()[3];
        assert_eq!(eth0.index, 4);
        assert_eq!(eth0.kind, 1); // ARPHRD_ETHER
        assert_eq!(eth0.address.unwrap().to_string(), "02:fc:00:00:00:01");
        assert_eq!(eth0.broadcast.unwrap().to_string(), "ff:ff:ff:ff:ff:ff");
        assert_eq!(eth0.mtu, Some(1400));
        assert_eq!(eth0.txqlen, Some(1000));
        assert_eq!(eth0.operstate, Some(6)); // IF_OPER_UP
        assert_eq!(eth0.carrier, Some(1));
        assert!(eth0.flags & IFF_LOWER_UP != 0);
        let stats = eth0.stats.unwrap();
        assert!(stats.rx_bytes > 0 && stats.rx_packets > 0 && stats.tx_bytes > 0);
        assert!(stats.rx_nohandler.is_some() && stats.rx_otherhost_dropped.is_some());
        let ifb0 = &links.as_slice()[1];
        assert!(!ifb0.is_up());
        assert_eq!(ifb0.operstate, Some(2)); // IF_OPER_DOWN
        assert!(links.as_slice().iter().all(|l| l.alias().is_none()));
    }

    #[test]
    fn the_same_slots_serve_the_next_dump() {
        let mut links = Links::default();
        parse_answer(RECORDED, &mut links).unwrap();
        let first = links.as_slice().as_ptr();
        let with_alias = link_message(7, "veth0", 2, &[build::attr(IFLA_IFALIAS, b"uplink\0")]);
        let mut bytes = with_alias.clone();
        bytes.extend(build::done(2, 1));
        parse_answer(&bytes, &mut links).unwrap();
        assert_eq!(links.as_slice().len(), 1);
        assert_eq!(links.as_slice().as_ptr(), first);
        let veth = &links.as_slice()[0];
        assert_eq!((veth.name(), veth.alias()), (Some("veth0"), Some("uplink")));
        // What the previous occupant of the slot had is gone.
        assert_eq!(veth.address, None);
        assert_eq!(veth.operstate, None);
        let stats = veth.stats.unwrap();
        assert_eq!((stats.rx_packets, stats.tx_compressed), (100, 122));
        assert_eq!(stats.rx_nohandler, Some(123));
        let mut bytes = link_message(8, "veth1", 2, &[]);
        bytes.extend(build::done(2, 1));
        parse_answer(&bytes, &mut links).unwrap();
        assert_eq!(links.as_slice()[0].alias(), None);
    }

    #[test]
    fn slots_of_a_huge_dump_are_given_back() {
        let mut bytes = Vec::new();
        for index in 0..300 {
            bytes.extend(link_message(index, &format!("v{index}"), 2, &[]));
        }
        bytes.extend(build::done(2, 1));
        let mut links = Links::default();
        parse_answer(&bytes, &mut links).unwrap();
        assert_eq!(links.slots.len(), 300);
        let mut small = link_message(1, "lo", 2, &[]);
        small.extend(build::done(2, 1));
        parse_answer(&small, &mut links).unwrap();
        assert_eq!(links.as_slice().len(), 1);
        assert!(links.slots.len() < 300, "{}", links.slots.len());
    }

    #[test]
    fn unknown_attributes_are_skipped() {
        let mut bytes = link_message(
            3,
            "eth1",
            2,
            &[build::attr(999, &[1, 2, 3]), build::attr(0x3fff, &[])],
        );
        bytes.extend(build::done(2, 1));
        let mut links = Links::default();
        parse_answer(&bytes, &mut links).unwrap();
        assert_eq!(links.as_slice()[0].name(), Some("eth1"));
    }

    #[test]
    fn an_interface_that_vanishes_mid_dump_makes_it_retry() {
        // The kernel flags every message after the change with NLM_F_DUMP_INTR.
        let mut bytes = link_message(1, "lo", 2, &[]);
        bytes.extend(link_message(5, "veth9", 2 | wire::NLM_F_DUMP_INTR, &[]));
        bytes.extend(build::done(2 | wire::NLM_F_DUMP_INTR, 1));
        let mut links = Links::default();
        assert_eq!(parse_answer(&bytes, &mut links), Ok(Outcome::Retry));
    }

    #[test]
    fn a_truncated_message_is_an_error_naming_its_offset() {
        let mut bytes = link_message(1, "lo", 2, &[]);
        let second = bytes.len();
        bytes.extend(link_message(2, "eth0", 2, &[]));
        bytes.extend(build::done(2, 1));
        // Cut in the middle of the second message.
        let cut = &bytes[..second + 40];
        let err = parse_answer(cut, &mut Links::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("netlink nlmsghdr at offset {second}: message of type 16 claims {} bytes, but 40 are left", bytes.len() - second - 20)
        );
        // Every prefix of the recorded dump fails cleanly or parses.
        for len in 0..RECORDED.len() {
            let _ = parse_answer(&RECORDED[..len], &mut Links::default());
        }
    }

    #[test]
    fn malformed_attributes_are_errors_naming_them() {
        let cases: [(Vec<u8>, &str); 5] = [
            (
                build::attr(IFLA_STATS64, &[0; 100]),
                "IFLA_STATS64: 100 bytes, expected at least 184",
            ),
            (
                build::attr(IFLA_OPERSTATE, &[0; 4]),
                "IFLA_OPERSTATE: 4 bytes, expected 1",
            ),
            (
                build::attr(IFLA_ADDRESS, &[0; 40]),
                "IFLA_ADDRESS: 40 bytes, more than 32",
            ),
            (
                build::attr(IFLA_IFNAME, b"a-name-much-longer-than-ifnamsiz\0"),
                "IFLA_IFNAME: 32 bytes, longer than IFNAMSIZ",
            ),
            (
                build::attr(IFLA_TXQLEN, &[0; 2]),
                "IFLA_TXQLEN: 2 bytes, expected 4",
            ),
        ];
        for (attr, expected) in cases {
            let mut bytes = link_message(3, "eth1", 2, &[attr]);
            bytes.extend(build::done(2, 1));
            let err = parse_answer(&bytes, &mut Links::default())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("netlink RTM_NEWLINK at offset "), "{err}");
            assert!(err.ends_with(expected), "{err}");
        }
        // A stats attribute longer than the message holding it.
        let mut bytes = link_message(3, "eth1", 2, &[]);
        let at = bytes.len() - 200 - 4; // the IFLA_STATS64 header
        bytes[at..at + 2].copy_from_slice(&400u16.to_ne_bytes());
        bytes.extend(build::done(2, 1));
        let err = parse_answer(&bytes, &mut Links::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "at offset {at}: attribute of type 23 claims 400 bytes"
            )),
            "{err}"
        );
        // No name at all.
        let mut bytes = build::message(RTM_NEWLINK, 2, 1, &ifinfomsg(9, 1, 0));
        bytes.extend(build::done(2, 1));
        let err = parse_answer(&bytes, &mut Links::default())
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("interface 9 has no IFLA_IFNAME"), "{err}");
    }

    #[test]
    fn old_kernels_without_newer_counters_parse() {
        let mut bytes = link_message(3, "eth1", 2, &[]);
        // Drop the last two counters: a kernel before 4.6.
        let at = bytes.len() - 200 - 4;
        bytes[at..at + 2].copy_from_slice(&(4u16 + 184).to_ne_bytes());
        bytes.truncate(at + 4 + 184);
        let len = bytes.len() as u32;
        bytes[..4].copy_from_slice(&len.to_ne_bytes());
        bytes.extend(build::done(2, 1));
        let mut links = Links::default();
        parse_answer(&bytes, &mut links).unwrap();
        let stats = links.as_slice()[0].stats.unwrap();
        assert_eq!((stats.tx_compressed, stats.rx_nohandler), (122, None));
    }

    #[test]
    fn names_and_addresses_are_read_as_sysfs_shows_them() {
        let mut bytes = link_message(
            3,
            "br0",
            2,
            &[
                build::attr(IFLA_ADDRESS, &[0x02, 0xab, 0, 0x10, 0xff, 0x01]),
                build::attr(IFLA_IFALIAS, b"caf\xc3\xa9 \xff\0junk"),
            ],
        );
        bytes.extend(build::done(2, 1));
        let mut links = Links::default();
        parse_answer(&bytes, &mut links).unwrap();
        let link = &links.as_slice()[0];
        assert_eq!(link.address.unwrap().to_string(), "02:ab:00:10:ff:01");
        let long = HwAddr::parse(
            &wire::Attrs::new("X", &build::attr(1, &[0xab; 32]), 0)
                .next()
                .unwrap()
                .unwrap(),
            "X",
        )
        .unwrap();
        assert_eq!(long.to_string(), ["ab"; 32].join(":"));
        assert_eq!(link.alias(), Some("café \u{fffd}"));
        assert_eq!(HwAddr::default().to_string(), "");
    }

    #[test]
    fn sorts_by_name_and_reports_changed_indexes() {
        let mut bytes = link_message(2, "veth1", 2, &[]);
        bytes.extend(link_message(3, "eth0", 2, &[]));
        bytes.extend(link_message(1, "lo", 2, &[]));
        bytes.extend(build::done(2, 1));
        let mut links = Links::default();
        parse_answer(&bytes, &mut links).unwrap();
        let names: Vec<_> = links.by_name().filter_map(Link::name).collect();
        assert_eq!(names, ["eth0", "lo", "veth1"]);
        let names: Vec<_> = links.as_slice().iter().filter_map(Link::name).collect();
        assert_eq!(names, ["veth1", "eth0", "lo"], "the dump's order is kept");
        let message = wire::Messages::new(&bytes, 0).next().unwrap().unwrap();
        assert_eq!(changed_index(&message), Some(2));
        let done = build::done(0, 1);
        let done = wire::Messages::new(&done, 0).next().unwrap().unwrap();
        assert_eq!(changed_index(&done), None);
    }

    #[test]
    fn constants_match_the_libc_crate() {
        use nix::libc;
        assert_eq!(IFLA_ADDRESS, libc::IFLA_ADDRESS);
        assert_eq!(IFLA_BROADCAST, libc::IFLA_BROADCAST);
        assert_eq!(IFLA_IFNAME, libc::IFLA_IFNAME);
        assert_eq!(IFLA_MTU, libc::IFLA_MTU);
        assert_eq!(IFLA_LINK, libc::IFLA_LINK);
        assert_eq!(IFLA_MASTER, libc::IFLA_MASTER);
        assert_eq!(IFLA_TXQLEN, libc::IFLA_TXQLEN);
        assert_eq!(IFLA_OPERSTATE, libc::IFLA_OPERSTATE);
        assert_eq!(IFLA_LINKMODE, libc::IFLA_LINKMODE);
        assert_eq!(IFLA_IFALIAS, libc::IFLA_IFALIAS);
        assert_eq!(IFLA_STATS64, libc::IFLA_STATS64);
        assert_eq!(IFLA_GROUP, libc::IFLA_GROUP);
        assert_eq!(IFLA_PROMISCUITY, libc::IFLA_PROMISCUITY);
        assert_eq!(IFLA_NUM_TX_QUEUES, libc::IFLA_NUM_TX_QUEUES);
        assert_eq!(IFLA_NUM_RX_QUEUES, libc::IFLA_NUM_RX_QUEUES);
        assert_eq!(IFLA_CARRIER, libc::IFLA_CARRIER);
        assert_eq!(IFLA_CARRIER_CHANGES, libc::IFLA_CARRIER_CHANGES);
        assert_eq!(IFLA_PROTO_DOWN, libc::IFLA_PROTO_DOWN);
        assert_eq!(IFLA_CARRIER_UP_COUNT, libc::IFLA_CARRIER_UP_COUNT);
        assert_eq!(IFLA_CARRIER_DOWN_COUNT, libc::IFLA_CARRIER_DOWN_COUNT);
        assert_eq!(RTM_NEWLINK, libc::RTM_NEWLINK);
        assert_eq!(RTM_DELLINK, libc::RTM_DELLINK);
        assert_eq!(RTM_GETLINK, libc::RTM_GETLINK);
        assert_eq!(IFNAMSIZ, libc::IFNAMSIZ);
        assert_eq!(IFF_UP, libc::IFF_UP as u32);
        assert_eq!(IFF_RUNNING, libc::IFF_RUNNING as u32);
        assert_eq!(IFF_PROMISC, libc::IFF_PROMISC as u32);
        assert_eq!(IFF_ALLMULTI, libc::IFF_ALLMULTI as u32);
        assert_eq!(IFF_LOWER_UP, libc::IFF_LOWER_UP as u32);
        assert_eq!(IFF_DORMANT, libc::IFF_DORMANT as u32);
        assert_eq!(IFINFOMSG_LEN, std::mem::size_of::<libc::ifinfomsg>());
    }
}
