//! netclass over netlink: the same values sysfs shows, from one `RTM_GETLINK` dump
//! (asking the kernel to skip the counters it can) and one ethtool link-modes dump
//! a cycle, instead of ~24 files per device.
//!
//! Each sysfs attribute and where it comes from here (the kernel's net-sysfs.c
//! decides what sysfs shows; the comments say how the netlink value maps):
//! - `ifindex`, `type`, `mtu`, `tx_queue_len`, `netdev_group`, `link_mode`,
//!   `carrier_changes`, `carrier_up_count`, `carrier_down_count`, `operstate`,
//!   `address`, `broadcast`, `ifalias`: their attributes, printed as sysfs prints
//!   them (`%d`, so a queue length or group of 2^32-1 is -1; addresses as
//!   `aa:bb:..`; the alias trimmed as the file reader trims it).
//! - `iflink`: `IFLA_LINK`, which the kernel leaves out when it equals the index.
//! - `carrier`, `dormant`: sysfs refuses them (EINVAL) unless the device is up;
//!   then they are `IFF_LOWER_UP`/`IFLA_CARRIER` and `IFF_DORMANT` of `ifi_flags`.
//! - `flags`: sysfs shows `dev->flags`; `ifi_flags` is that without the
//!   promiscuity and allmulti the kernel set itself (a bridge port's), so those two
//!   bits come from `IFLA_PROMISCUITY` and `IFLA_ALLMULTI` (Linux 6.6+) and the
//!   computed `IFF_RUNNING`, `IFF_LOWER_UP`, `IFF_DORMANT` are dropped. A kernel
//!   without `IFLA_ALLMULTI` gets the `flags` file read.
//! - `speed`, `duplex`: sysfs asks the driver (ethtool) when the device is up; the
//!   ethtool netlink family answers for all devices in one dump, of which the
//!   devices that are up are taken. Without the family (before 5.6, or compiled
//!   out) the two files of each device that is up are read.
//! - `addr_assign_type`, `dev_id`, `name_assign_type`: no netlink attribute has
//!   them. They are read from sysfs when a device is first seen and kept
//!   ([`Statics`]) until the kernel announces a change of that device on
//!   `RTNLGRP_LINK` (setting an address changes `addr_assign_type`, a rename
//!   `name_assign_type`) or the announcements overflow: the generation of the
//!   device in the agent's interface table ([`crate::netlink::Interfaces`]) then
//!   moves. Reading them every cycle would cost three files per device, most of
//!   the budget: measured on this VM, a sysfs attribute read is ~10 µs.
//!
//! The sockets (route, and generic for ethtool) and the interface table are the
//! agent's shared ones ([`crate::netlink::Netlink`]).

use super::{Device, Files, FLAGS, NUMBERS, OPERSTATE, TEXTS};
use crate::collector::CollectError;
use crate::config::Filter;
use crate::netlink::ethtool::{Ethtool, LinkModes};
use crate::netlink::link::{
    Link, Links, Name, IFF_ALLMULTI, IFF_DORMANT, IFF_LOWER_UP, IFF_PROMISC, IFF_RUNNING,
};
use crate::netlink::{self, Interfaces, Netlink, Protocol};
use nix::errno::Errno;

/// The slot of `file` in [`NUMBERS`], found at compile time.
const fn number(file: &str) -> usize {
    let mut i = 0;
    while i < NUMBERS.len() {
        if eq(NUMBERS[i].file.as_bytes(), file.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("not an attribute of NUMBERS")
}

/// The slot of `file` in [`TEXTS`].
const fn text(file: &str) -> usize {
    let mut i = 0;
    while i < TEXTS.len() {
        if eq(TEXTS[i].as_bytes(), file.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("not an attribute of TEXTS")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const ADDR_ASSIGN_TYPE: usize = number("addr_assign_type");
const CARRIER: usize = number("carrier");
const CARRIER_CHANGES: usize = number("carrier_changes");
const CARRIER_UP_COUNT: usize = number("carrier_up_count");
const CARRIER_DOWN_COUNT: usize = number("carrier_down_count");
const DEV_ID: usize = number("dev_id");
const DORMANT: usize = number("dormant");
const IFINDEX: usize = number("ifindex");
const IFLINK: usize = number("iflink");
const LINK_MODE: usize = number("link_mode");
const MTU: usize = number("mtu");
const NAME_ASSIGN_TYPE: usize = number("name_assign_type");
const NETDEV_GROUP: usize = number("netdev_group");
const SPEED: usize = number("speed");
const TX_QUEUE_LEN: usize = number("tx_queue_len");
const TYPE: usize = number("type");
const ADDRESS: usize = text("address");
const BROADCAST: usize = text("broadcast");
const DUPLEX: usize = text("duplex");
const IFALIAS: usize = text("ifalias");

/// The attributes only sysfs has, read once per device and kept.
const STATIC_FILES: [(&str, usize); 3] = [
    ("addr_assign_type", ADDR_ASSIGN_TYPE),
    ("dev_id", DEV_ID),
    ("name_assign_type", NAME_ASSIGN_TYPE),
];

/// `operstates[]` of net-sysfs.c, indexed by `IF_OPER_*`.
const OPERSTATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// The bits `dev_get_flags()` computes or replaces, which `dev->flags` (sysfs
/// `flags`) does not hold as such.
const COMPUTED_FLAGS: u32 = IFF_PROMISC | IFF_ALLMULTI | IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT;

/// The netlink side of netclass: the last dumps, the kept attributes.
pub(super) struct Reader {
    netlink: Netlink,
    links: Links,
    /// `None` once the kernel said it has no ethtool family: sysfs then.
    ethtool: Option<Ethtool>,
    statics: Statics,
}

impl Reader {
    pub(super) fn new(netlink: Netlink) -> Self {
        Reader {
            netlink,
            // netclass exports no counters: the kernel may leave some out.
            links: Links::without_stats(),
            ethtool: Some(Ethtool::default()),
            statics: Statics::default(),
        }
    }

    /// Opens the route socket if it is not open: an error that
    /// [`netlink::Error::is_unavailable`] means there is no netlink here.
    pub(super) fn connect(&mut self) -> Result<(), netlink::Error> {
        self.netlink.connect(Protocol::Route)
    }

    /// Fills the first slots of `names` and `devices` with this cycle's devices,
    /// sorted by name; returns how many.
    pub(super) fn read(
        &mut self,
        filter: &Filter,
        files: &mut Files<'_>,
        names: &mut Vec<String>,
        devices: &mut Vec<Device>,
    ) -> Result<usize, CollectError> {
        let tracked = self.netlink.tracks_links()?;
        self.netlink.dump(Protocol::Route, &mut self.links)?;
        let modes = link_modes(&mut self.ethtool, &self.netlink);
        let (links, statics) = (&mut self.links, &mut self.statics);
        let mut fill_all = |table: Option<&Interfaces>| {
            statics.begin();
            let mut len = 0;
            for link in links.by_name() {
                let Some(name) = link.name().filter(|n| filter.allows(n)) else {
                    continue;
                };
                if len == names.len() {
                    names.push(String::new());
                }
                if len == devices.len() {
                    devices.push(Device::default());
                }
                let (Some(slot_name), Some(device)) = (names.get_mut(len), devices.get_mut(len))
                else {
                    break;
                };
                slot_name.clear();
                slot_name.push_str(name);
                let generation = table.and_then(|t| t.generation(link.index));
                fill(link, modes, files, statics, generation, device)?;
                len += 1;
            }
            statics.forget_unseen();
            Ok(len)
        };
        if tracked {
            // The table after the dump: any change the dump shows was announced.
            self.netlink.interfaces(|table| fill_all(Some(table)))?
        } else {
            fill_all(None)
        }
    }
}

/// This cycle's speeds and duplexes, or `None` to read them from sysfs (and no
/// more ethtool dumps once the kernel said it has no ethtool family).
fn link_modes<'a>(ethtool: &'a mut Option<Ethtool>, netlink: &Netlink) -> Option<&'a LinkModes> {
    let failure = ethtool.as_mut()?.link_modes(netlink).err();
    match failure {
        None => ethtool.as_ref().and_then(Ethtool::last),
        Some(e) if e.errno() == Some(Errno::ENOENT) || e.is_unavailable() => {
            log::info!("netclass: no ethtool netlink ({e}); reading speed and duplex from sysfs");
            *ethtool = None;
            None
        }
        Some(e) => {
            log::debug!("netclass: {e}; reading speed and duplex from sysfs this cycle");
            None
        }
    }
}

/// Fills `device` from `link` as sysfs would show it (see the module doc).
fn fill(
    link: &Link,
    modes: Option<&LinkModes>,
    files: &mut Files<'_>,
    statics: &mut Statics,
    generation: Option<u64>,
    device: &mut Device,
) -> Result<(), CollectError> {
    let name = link.name().unwrap_or_default();
    let up = link.is_up();
    let numbers = &mut device.numbers;
    *numbers = [None; NUMBERS.len()];
    // sysfs prints these `int`/`unsigned int` fields with %d.
    let int = |v: Option<u32>| v.map(|v| i64::from(v as i32));
    numbers[IFINDEX] = Some(i64::from(link.index));
    numbers[TYPE] = Some(i64::from(link.kind));
    numbers[MTU] = int(link.mtu);
    numbers[TX_QUEUE_LEN] = int(link.txqlen);
    numbers[NETDEV_GROUP] = int(link.group);
    numbers[LINK_MODE] = link.link_mode.map(i64::from);
    numbers[CARRIER_CHANGES] = int(link.carrier_changes);
    numbers[CARRIER_UP_COUNT] = int(link.carrier_up_count);
    numbers[CARRIER_DOWN_COUNT] = int(link.carrier_down_count);
    numbers[IFLINK] = Some(int(link.link).unwrap_or(i64::from(link.index)));
    if up {
        let carrier = link
            .carrier
            .map_or(link.flags & IFF_LOWER_UP != 0, |c| c != 0);
        numbers[CARRIER] = Some(i64::from(carrier));
        numbers[DORMANT] = Some(i64::from(link.flags & IFF_DORMANT != 0));
    }
    let mut found = false;
    numbers[FLAGS] = match (link.promiscuity, link.allmulti) {
        (Some(promiscuity), Some(allmulti)) => {
            let mut flags = link.flags & !COMPUTED_FLAGS;
            if promiscuity > 0 {
                flags |= IFF_PROMISC;
            }
            if allmulti > 0 {
                flags |= IFF_ALLMULTI;
            }
            Some(i64::from(flags))
        }
        _ => files.read_number(name, "flags", &mut found)?,
    };
    statics.fill(link, generation, files, numbers)?;

    let texts = &mut device.texts;
    for text in texts.iter_mut() {
        text.clear();
    }
    use std::fmt::Write as _;
    if let Some(address) = &link.address {
        let _ = write!(texts[ADDRESS], "{address}");
    }
    if let Some(broadcast) = &link.broadcast {
        let _ = write!(texts[BROADCAST], "{broadcast}");
    }
    if let Some(alias) = link.alias() {
        texts[IFALIAS].push_str(alias.trim());
    }
    let operstate = link.operstate.and_then(|s| OPERSTATES.get(usize::from(s)));
    texts[OPERSTATE].push_str(operstate.copied().unwrap_or_default());

    if up {
        match modes {
            Some(modes) => {
                if let Some(mode) = modes.get(link.index) {
                    numbers[SPEED] = Some(i64::from(mode.speed as i32));
                    texts[DUPLEX].push_str(mode.duplex_name());
                }
            }
            None => {
                numbers[SPEED] = files.read_number(name, "speed", &mut found)?;
                files.read_text(name, "duplex", &mut texts[DUPLEX], &mut found)?;
            }
        }
    }
    Ok(())
}

/// The sysfs-only attributes of each device, by interface index, kept as long as
/// the device's generation in the interface table stays the same. Without the
/// announcements (no generation) nothing is kept.
#[derive(Default)]
struct Statics {
    /// Sorted by index.
    entries: Vec<Kept>,
}

struct Kept {
    index: i32,
    name: Name,
    generation: u64,
    values: [Option<i64>; STATIC_FILES.len()],
    seen: bool,
}

impl Statics {
    /// Starts a cycle: nothing seen yet.
    fn begin(&mut self) {
        for kept in &mut self.entries {
            kept.seen = false;
        }
    }

    /// Sets the kept attributes of `link`, reading them first if they are not kept
    /// for this `generation`.
    fn fill(
        &mut self,
        link: &Link,
        generation: Option<u64>,
        files: &mut Files<'_>,
        numbers: &mut [Option<i64>; NUMBERS.len()],
    ) -> Result<(), CollectError> {
        let name = link.name().unwrap_or_default();
        let at = self.entries.binary_search_by_key(&link.index, |k| k.index);
        if let Ok(at) = at {
            let valid =
                |k: &&mut Kept| Some(k.generation) == generation && k.name == *link.name_value();
            if let Some(kept) = self.entries.get_mut(at).filter(valid) {
                kept.seen = true;
                for ((_, slot), value) in STATIC_FILES.iter().zip(kept.values) {
                    numbers[*slot] = value;
                }
                return Ok(());
            }
        }
        let mut found = false;
        let mut values = [None; STATIC_FILES.len()];
        for ((file, slot), value) in STATIC_FILES.iter().zip(&mut values) {
            *value = files.read_number(name, file, &mut found)?;
            numbers[*slot] = *value;
        }
        // A device whose directory is gone was removed after the dump: keep nothing.
        let Some(generation) = generation.filter(|_| found) else {
            if let Ok(at) = at {
                self.entries.remove(at);
            }
            return Ok(());
        };
        let kept = Kept {
            index: link.index,
            name: *link.name_value(),
            generation,
            values,
            seen: true,
        };
        match at {
            Ok(at) => {
                if let Some(slot) = self.entries.get_mut(at) {
                    *slot = kept;
                }
            }
            Err(at) => self.entries.insert(at, kept),
        }
        Ok(())
    }

    fn forget_unseen(&mut self) {
        self.entries.retain(|kept| kept.seen);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Netclass;
    use crate::collector::NetSource;
    use crate::config::Filter;
    use crate::netlink::Netlink;
    use crate::testing::{render, TempDir};
    use sc_agent_testkit::netns::{in_new_netns, in_new_netns_with_sysfs, ip};

    /// Builds devices of many kinds in the calling thread's namespace.
    fn devices() {
        ip("link set lo up");
        ip("link add na0 type veth peer name nb0");
        ip("link set na0 up");
        ip("link set nb0 up");
        ip("link set na0 allmulticast on");
        ip("link set nb0 promisc on");
        ip("link add na1 mtu 9000 type veth peer name nb1");
        ip("link set na1 up");
        ip("link set na1 alias uplink");
        ip("link add br0 type bridge");
        ip("link set nb1 master br0");
        ip("link set br0 up");
        ip("link set nb1 up");
        ip("link add na2 type veth peer name nb2");
        ip("link set na2 address 02:11:22:33:44:55");
        ip("link set na2 name renamed");
        ip("tuntap add dev tun0 mode tun");
        ip("link set tun0 up");
    }

    #[test]
    fn netlink_shows_what_sysfs_shows() {
        let (netlink, files) = in_new_netns_with_sysfs(|sysfs| {
            devices();
            let netclass =
                |source| Netclass::new(sysfs, Filter::default(), source, Netlink::default());
            let (mut netlink, mut files) =
                (netclass(NetSource::Netlink), netclass(NetSource::Files));
            // The kernel settles operstate and carrier of new devices up to a second
            // later: compare once two file readings around netlink's agree.
            for _ in 0..20 {
                let before = render(&mut files).unwrap();
                let ours = render(&mut netlink).unwrap();
                // The second cycle takes the kept attributes.
                let again = render(&mut netlink).unwrap();
                if render(&mut files).unwrap() == before {
                    assert_eq!(again, ours);
                    return (ours, before);
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            panic!("the namespace did not settle");
        });
        assert_eq!(netlink, files);
        for expected in [
            "node_network_info{address=\"02:11:22:33:44:55\",adminstate=\"down\",broadcast=\"ff:ff:ff:ff:ff:ff\",device=\"renamed\",duplex=\"\",ifalias=\"\",operstate=\"down\"} 1",
            "node_network_address_assign_type{device=\"renamed\"} 3",
            "node_network_name_assign_type{device=\"renamed\"} 4",
            "node_network_mtu_bytes{device=\"na1\"} 9000",
            "node_network_speed_bytes{device=\"na0\"} 1250000000",
        ] {
            assert!(netlink.contains(&format!("{expected}\n")), "{expected}\n{netlink}");
        }
        assert!(!netlink.contains("node_network_carrier{device=\"renamed\"}"));
    }

    /// With a stand-in sysfs, the sysfs-only attributes show where they come from:
    /// read at the first cycle, kept, read again after the kernel announced a change.
    #[test]
    fn kept_attributes_are_read_again_after_a_change() {
        let sysfs = TempDir::new();
        let root = sysfs.path().to_owned();
        let texts = in_new_netns(move || {
            ip("link add kx0 type veth peer name kx1");
            let write = |value: &str| {
                for file in ["addr_assign_type", "dev_id", "name_assign_type"] {
                    let dir = root.join("class/net/kx0");
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(dir.join(file), format!("{value}\n")).unwrap();
                }
            };
            let mut collector = Netclass::new(
                &root,
                Filter::default(),
                NetSource::Netlink,
                Netlink::default(),
            );
            write("7");
            let first = render(&mut collector).unwrap();
            write("8");
            let kept = render(&mut collector).unwrap();
            ip("link set kx0 address 02:00:00:00:00:09");
            let changed = render(&mut collector).unwrap();
            ip("link set kx0 name kx9");
            let renamed = render(&mut collector).unwrap();
            [first, kept, changed, renamed]
        });
        let value = |text: &str, device: &str| {
            let series = format!("node_network_address_assign_type{{device=\"{device}\"}} ");
            let line = text.lines().find(|l| l.starts_with(&series));
            line.map(|l| l[series.len()..].to_owned())
        };
        assert_eq!(value(&texts[0], "kx0").as_deref(), Some("7"));
        assert_eq!(
            value(&texts[1], "kx0").as_deref(),
            Some("7"),
            "kept, not read"
        );
        assert_eq!(
            value(&texts[2], "kx0").as_deref(),
            Some("8"),
            "read after the change"
        );
        // Renamed: the stand-in has no kx9, so the attributes are absent.
        assert_eq!(value(&texts[3], "kx9"), None);
        assert!(texts[3].contains("node_network_up{device=\"kx9\"} 0"));
        // Devices without stand-in files (kx1) have no such series at all.
        assert_eq!(value(&texts[0], "kx1"), None);
    }
}
