//! `node_arp_entries{device}`: the IPv4 neighbour (ARP) entries per network device,
//! and `node_arp_states{device,state}`: the same by neighbour state, as node_exporter
//! 1.12's arp collector reports them (1.5 had the entries only, read from the file).
//!
//! Two sources ([`NetSource`], the `netlink` option, node_exporter's
//! `--collector.arp.netlink`, default true):
//! - **Netlink**: one `RTM_GETNEIGH` dump of the IPv4 table over the agent's shared
//!   route socket; the devices are named through the shared interface table (the
//!   answer has only their index; an entry whose device went away since is left
//!   out). Entries in state `NUD_NOARP` are skipped, as node_exporter skips them to
//!   match the file. States are node_exporter's names: `incomplete`, `reachable`,
//!   `stale`, `delay`, `probe`, `failed`, `permanent`; any other state is the empty
//!   name, as node_exporter's map lookup gives it. When no netlink socket can be
//!   made (a sandbox without `AF_NETLINK`), the collector says so once and reads
//!   the file.
//! - **Files**: `<procfs>/net/arp`, checked as node_exporter's procfs library checks
//!   it: the 9-word header and blank lines skipped, every other line 6 columns, its
//!   flags a number (`0x2`, Go's `ParseUint(s, 0, 32)`) and its hardware address
//!   one that Go's `net.ParseMAC` accepts (so an InfiniBand address, which the
//!   kernel cuts short in this file, fails the collector: the reason node_exporter
//!   added the netlink mode); the device is the last column. No states: the file
//!   has none (node_exporter reports them in netlink mode only, as here).
//!
//! Deliberate differences, both so that the two modes give the same entries:
//! an entry in state `NUD_NONE` (0, a new entry not yet resolved, for a moment) is
//! skipped in netlink mode too, as /proc/net/arp skips it (the kernel's
//! `NEIGH_SEQ_SKIP_NOARP` leaves out every entry with no state but `NUD_NOARP`);
//! node_exporter counts it, under an empty state. Devices come in name order
//! (node_exporter's order is its map's, random). Proxy entries (`ip neigh add
//! proxy`) are in the file and not in the dump, in node_exporter as here. An entry
//! whose device name is not UTF-8 is left out of the netlink mode.
//!
//! The device filter is `device_include`/`device_exclude` (node_exporter's
//! `--collector.arp.device-include`/`-exclude`), applied to every series.

use super::{for_each_line, Build, CollectError, Collector, Context, NetSource};
use crate::batch::{Batch, Kind};
use crate::config::Filter;
use crate::netlink::neigh::{
    Family, Neighbours, NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP, NUD_PERMANENT, NUD_PROBE,
    NUD_REACHABLE, NUD_STALE,
};
use crate::netlink::{self, Netlink, Protocol};
use std::path::{Path, PathBuf};

/// The most of /proc/net/arp read: the entries of the largest neighbour dump
/// accepted ([`crate::netlink::neigh::MAX_NEIGHBOURS`]) at ~80 bytes a line.
pub const MAX_BYTES: u64 = 8 << 20;

/// `collectors.arp`: which devices to report, and from where.
pub use super::device_options::Options;

/// node_exporter's state names, by `NUD_*` bit; the slot after them counts the
/// entries in any other state (the empty name).
const STATES: [(u16, &str); 7] = [
    (NUD_INCOMPLETE, "incomplete"),
    (NUD_REACHABLE, "reachable"),
    (NUD_STALE, "stale"),
    (NUD_DELAY, "delay"),
    (NUD_PROBE, "probe"),
    (NUD_FAILED, "failed"),
    (NUD_PERMANENT, "permanent"),
];
const OTHER_STATE: usize = STATES.len();

/// The slot of `state` in [`Device::states`].
fn state_slot(state: u16) -> usize {
    STATES
        .iter()
        .position(|(bit, _)| *bit == state)
        .unwrap_or(OTHER_STATE)
}

/// `AF_INET`: the dump asks for the IPv4 table only; anything else is not counted.
const AF_INET: u8 = nix::libc::AF_INET as u8;

/// What /proc/net/arp shows: every entry with a state besides `NUD_NOARP`.
fn is_listed(state: u16) -> bool {
    state & !NUD_NOARP != 0
}

/// One device's entries. Slots are reused from cycle to cycle.
#[derive(Default)]
struct Device {
    name: String,
    entries: u64,
    states: [u64; STATES.len() + 1],
}

/// The devices seen this cycle, sorted by name, in the first `len` slots.
#[derive(Default)]
struct Devices {
    slots: Vec<Device>,
    len: usize,
}

impl Devices {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn as_slice(&self) -> &[Device] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    /// The slot of `name`, added in name order (zeroed) if it is not there.
    fn get(&mut self, name: &str) -> Option<&mut Device> {
        let at = match self
            .as_slice()
            .binary_search_by(|d| d.name.as_str().cmp(name))
        {
            Ok(at) => at,
            Err(at) => {
                if self.len == self.slots.len() {
                    self.slots.push(Device::default());
                }
                // The spare slot at `len` moves to `at`, the rest one further.
                self.slots.get_mut(at..=self.len)?.rotate_right(1);
                let device = self.slots.get_mut(at)?;
                device.name.clear();
                device.name.push_str(name);
                device.entries = 0;
                device.states = [0; STATES.len() + 1];
                self.len += 1;
                at
            }
        };
        self.slots.get_mut(at)
    }
}

pub struct Arp {
    path: PathBuf,
    filter: Filter,
    source: NetSource,
    netlink: Netlink,
    neighbours: Neighbours,
    buf: Vec<u8>,
    devices: Devices,
}

impl Arp {
    pub fn new(procfs: &Path, filter: Filter, source: NetSource, netlink: Netlink) -> Self {
        Arp {
            path: procfs.join("net/arp"),
            filter,
            source,
            netlink,
            neighbours: Neighbours::new(Family::Inet),
            buf: Vec::new(),
            devices: Devices::default(),
        }
    }

    /// Counts the IPv4 neighbour table's entries from one dump.
    fn read_netlink(&mut self) -> Result<(), netlink::Error> {
        self.netlink.dump(Protocol::Route, &mut self.neighbours)?;
        let (neighbours, devices, filter) = (&self.neighbours, &mut self.devices, &self.filter);
        self.netlink.interfaces(|table| {
            let listed = neighbours
                .as_slice()
                .iter()
                .filter(|n| n.family == AF_INET && is_listed(n.state));
            for neighbour in listed {
                let Some(name) = table.name(neighbour.ifindex) else {
                    continue; // the device went away after the dump
                };
                if !filter.allows(name) {
                    continue;
                }
                if let Some(device) = devices.get(name) {
                    device.entries += 1;
                    if let Some(count) = device.states.get_mut(state_slot(neighbour.state)) {
                        *count += 1;
                    }
                }
            }
        })
    }

    /// Counts the lines of /proc/net/arp per device.
    fn read_file(&mut self) -> Result<(), CollectError> {
        let (path, devices, filter) = (&self.path, &mut self.devices, &self.filter);
        let found = for_each_line(path, &mut self.buf, MAX_BYTES, |number, line| {
            let device =
                parse_line(line).map_err(|what| CollectError::parse(path, number, what))?;
            if let Some(device) = device.filter(|d| filter.allows(d)) {
                if let Some(slot) = devices.get(device) {
                    slot.entries += 1;
                }
            }
            Ok(())
        })?;
        if !found {
            let missing = std::io::Error::from_raw_os_error(nix::libc::ENOENT);
            return Err(CollectError::io(path, &missing));
        }
        Ok(())
    }

    fn write(&self, out: &mut Batch, states: bool) {
        let mut family = out.family("node_arp_entries", "ARP entries by device", Kind::Gauge);
        for device in self.devices.as_slice() {
            family
                .series()
                .label_str("device", &device.name)
                .value(device.entries as f64);
        }
        if !states {
            return;
        }
        let mut family = out.family("node_arp_states", "ARP states by device", Kind::Gauge);
        let names = STATES.iter().map(|(_, name)| *name).chain([""]);
        for device in self.devices.as_slice() {
            for (count, state) in device.states.iter().zip(names.clone()) {
                if *count > 0 {
                    family
                        .series()
                        .label_str("device", &device.name)
                        .label_str("state", state)
                        .value(*count as f64);
                }
            }
        }
    }
}

/// The device of one line of /proc/net/arp, `None` for the header and blank lines
/// (procfs's `parseARPEntries`).
fn parse_line(line: &str) -> Result<Option<&str>, String> {
    let mut columns = [""; 6];
    let mut count = 0;
    for column in line.split_ascii_whitespace() {
        if let Some(slot) = columns.get_mut(count) {
            *slot = column;
        }
        count += 1;
    }
    // The header is `IP address HW type Flags HW address Mask Device`: 9 words.
    if count == 0 || count == 9 {
        return Ok(None);
    }
    if count != columns.len() {
        return Err(format!(
            "{count} columns, expected 6 (IP address, HW type, Flags, HW address, Mask, Device)"
        ));
    }
    let [_, _, flags, address, _, device] = columns;
    if !is_mac(address) {
        return Err(format!("HW address: not a MAC address: {address:?}"));
    }
    if super::parse_go_uint(flags).is_none_or(|f| f > u64::from(u32::MAX)) {
        return Err(format!("Flags: expected a number, got {flags:?}"));
    }
    Ok(Some(device))
}

/// Whether Go's `net.ParseMAC` accepts `text`: 6, 8 or 20 bytes as two hex digits
/// each joined by `:` or `-`, or as four hex digits each joined by `.`.
fn is_mac(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (separator, digits) = match (bytes.get(2), bytes.get(4)) {
        (Some(&separator @ (b':' | b'-')), _) => (separator, 2),
        (_, Some(b'.')) => (b'.', 4),
        _ => return false,
    };
    let groups = text.split(char::from(separator));
    let mut count = 0;
    for group in groups {
        if group.len() != digits || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        count += 1;
    }
    let octets = count * digits / 2;
    text.len() >= 14 && matches!(octets, 6 | 8 | 20)
}

impl Build for Arp {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/net/arp"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Arp::new(
            &context.paths.procfs,
            options.filter(),
            NetSource::netlink_if(options.netlink),
            context.resources.netlink.clone(),
        )
    }
}

impl Collector for Arp {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.devices.clear();
        if self.source == NetSource::Netlink {
            match self.netlink.connect(Protocol::Route) {
                Err(e) if e.is_unavailable() => {
                    log::warn!("arp: {e}; reading {} instead", self.path.display());
                    self.source = NetSource::Files;
                }
                _ => {
                    self.read_netlink()?;
                    self.write(out, true);
                    return Ok(());
                }
            }
        }
        self.read_file()?;
        self.write(out, false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const HEADER: &str =
        "IP address       HW type     Flags       HW address            Mask     Device\n";

    fn files(dir: &TempDir, filter: Filter) -> Arp {
        Arp::new(dir.path(), filter, NetSource::Files, Netlink::unavailable())
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn counts_the_lines_of_each_device_in_name_order() {
        let dir = TempDir::new();
        dir.write(
            "net/arp",
            &format!(
                "{HEADER}\
                 192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n\
                 10.0.0.7         0x1         0x0         00:00:00:00:00:00     *        br-lan\n\
                 192.0.2.9        0x1         0x6         02:fc:00:00:00:09     *        eth0\n\
                 \n"
            ),
        );
        let text = render(&mut files(&dir, Filter::default())).unwrap();
        assert_eq!(
            text,
            "# HELP node_arp_entries ARP entries by device\n\
             # TYPE node_arp_entries gauge\n\
             node_arp_entries{device=\"br-lan\"} 1\n\
             node_arp_entries{device=\"eth0\"} 2\n"
        );
        // The filter; an empty table has no series.
        let filter = Filter {
            include: None,
            exclude: Some(crate::config::Pattern::new("^br").unwrap()),
        };
        let text = render(&mut files(&dir, filter)).unwrap();
        assert_eq!(series(&text), ["node_arp_entries{device=\"eth0\"} 2"]);
        dir.write("net/arp", HEADER);
        assert_eq!(render(&mut files(&dir, Filter::default())).unwrap(), "");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let dir = TempDir::new();
        for (bad, message) in [
            (
                "192.0.2.1 0x1 0x2 02:fc:00:00:00:05 eth0\n",
                "line 2: 5 columns, expected 6 (IP address, HW type, Flags, HW address, Mask, Device)",
            ),
            (
                "192.0.2.1 0x1 0x2 00:00:00:02:fe:80:00:00:00 * ib0\n",
                "line 2: HW address: not a MAC address: \"00:00:00:02:fe:80:00:00:00\"",
            ),
            (
                "192.0.2.1 0x1 two 02:fc:00:00:00:05 * eth0\n",
                "line 2: Flags: expected a number, got \"two\"",
            ),
        ] {
            dir.write("net/arp", &format!("{HEADER}{bad}"));
            let err = render(&mut files(&dir, Filter::default())).unwrap_err();
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
            assert!(err.to_string().contains("net/arp line 2"), "{err}");
        }
        let missing = TempDir::new();
        let err = render(&mut files(&missing, Filter::default())).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("net/arp: No such file or directory (os error 2)"),
            "{err}"
        );
        assert!(!err.is_no_data());
    }

    #[test]
    fn mac_addresses_parse_as_go_parses_them() {
        for (text, ok) in [
            ("02:fc:00:00:00:05", true),
            ("02-FC-00-00-00-05", true),
            ("0000.5e00.5301", true),
            ("02:00:5e:10:00:00:00:01", true),
            (
                "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01",
                true,
            ),
            ("00:00:00:02:fe:80:00:00:00", false),
            ("02:fc:00:00:00", false),
            ("02:fc:00-00:00:05", false),
            ("02:fc:00:00:00:5", false),
            ("02:fc:00:00:00:0g", false),
            ("0000.5e00.530", false),
            ("", false),
            ("*", false),
        ] {
            assert_eq!(is_mac(text), ok, "{text:?}");
        }
    }

    #[test]
    fn noarp_and_none_entries_are_not_listed() {
        assert!(!is_listed(NUD_NOARP));
        assert!(!is_listed(0));
        for (bit, _) in STATES {
            assert!(is_listed(bit));
            assert_eq!(STATES[state_slot(bit)].0, bit);
        }
        assert_eq!(state_slot(NUD_NOARP | NUD_PERMANENT), OTHER_STATE);
    }

    /// The recorded dump of a namespace with two permanent IPv4 entries, an
    /// incomplete one, and IPv6 entries (one permanent, the rest NOARP) on v0 and
    /// v1 (src/netlink/fixtures/README), with that namespace's interface names.
    #[test]
    fn netlink_counts_the_recorded_table_by_device_and_state() {
        use crate::netlink::link::tests::link_message;
        use crate::netlink::wire::build;
        const NEIGHBOURS: &[u8] = include_bytes!("../netlink/fixtures/neighbours.bin");
        // The recording's interfaces: v1 was made first, as the peer of v0.
        let mut links: Vec<u8> = [(1, "lo"), (2, "v1"), (3, "v0")]
            .iter()
            .flat_map(|(index, name)| link_message(*index, name, 2, &[]))
            .collect();
        links.extend(build::done(2, 1));
        let links: &'static [u8] = Box::leak(links.into_boxed_slice());
        let netlink = Netlink::replaying(move |name, _| match name {
            "RTM_GETNEIGH" => Some(NEIGHBOURS),
            "RTM_GETLINK" => Some(links),
            _ => None,
        });
        let nowhere = Path::new("/nonexistent");
        let mut arp = Arp::new(nowhere, Filter::default(), NetSource::Netlink, netlink);
        let text = render(&mut arp).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_arp_entries{device=\"v0\"} 3",
                "node_arp_states{device=\"v0\",state=\"incomplete\"} 1",
                "node_arp_states{device=\"v0\",state=\"permanent\"} 2",
            ],
            "{text}"
        );
        assert!(text.contains("# HELP node_arp_states ARP states by device\n"));
    }
}
