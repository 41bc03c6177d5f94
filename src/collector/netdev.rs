//! `node_network_{receive,transmit}_*_total{device}`: the columns of /proc/net/dev,
//! one family per column, named as node_exporter names them (`receive_errs`,
//! `transmit_colls`), and `node_network_receive_nohandler_total`.
//!
//! node_exporter 1.12's netdev collector (unchanged in this since 1.5). Two sources
//! give the same series ([`NetSource`], the `netlink` option):
//! - **Netlink** (the default, as node_exporter's `--collector.netdev.netlink`): one
//!   dump holds every interface's `rtnl_link_stats64` ([`netlink`] tells which),
//!   which the kernel folds into the 16 columns of /proc/net/dev as
//!   [`proc_net_dev_columns`] does, in the same order (by interface index);
//!   `rx_nohandler` is one of its counters. Interfaces whose name is not UTF-8 are
//!   skipped. The socket and the interface names are the agent's shared ones
//!   ([`crate::netlink::Netlink`]). When no netlink socket can be created (a
//!   sandbox without `AF_NETLINK`), the collector says so once and reads the files.
//! - **Files**: `<procfs>/net/dev`, and `rx_nohandler` from
//!   `<sysfs>/class/net/<device>/statistics/rx_nohandler`, left out for a device
//!   whose file cannot be read. The two header lines are skipped; the name is what
//!   precedes the last `:` on the line. A line with fewer than 16 numbers, or a
//!   number that does not parse, fails the collector (node_exporter's parser panics
//!   on the former).

mod netlink;

use super::{
    read_file, read_value, set_path, Build, CollectError, Collector, Context, NetSource, Seen,
};
use crate::batch::{Batch, Kind};
use crate::config::Filter;
use crate::netlink::link::Stats64;
use crate::netlink::Netlink;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// `collectors.netdev`: which devices to report, and from where.
pub use super::device_options::Options;

/// The columns of /proc/net/dev, with node_exporter's names.
const COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

const HEADER_LINES: usize = 2;

/// One interface; `name` indexes `Netdev::buf` (the file, or the names of a dump).
struct Device {
    name: Range<usize>,
    counters: [u64; COLUMNS.len()],
    nohandler: Option<u64>,
}

pub struct Netdev {
    path: PathBuf,
    /// `<sysfs>/class/net`.
    class_net: PathBuf,
    /// The path of the file being read under `class_net`.
    scratch: PathBuf,
    filter: Filter,
    buf: String,
    value: String,
    devices: Vec<Device>,
    /// A device listed twice is reported once, the first time.
    seen: Seen,
    source: NetSource,
    netlink: netlink::Reader,
}

impl Netdev {
    pub fn new(
        procfs: &Path,
        sysfs: &Path,
        filter: Filter,
        source: NetSource,
        netlink: Netlink,
    ) -> Self {
        Netdev {
            path: procfs.join("net/dev"),
            class_net: sysfs.join("class/net"),
            scratch: PathBuf::new(),
            filter,
            buf: String::new(),
            value: String::new(),
            devices: Vec::new(),
            seen: Seen::default(),
            source,
            netlink: netlink::Reader::new(netlink),
        }
    }

    fn read_files(&mut self) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        self.parse()?;
        self.read_nohandler();
        Ok(())
    }

    /// The same devices and counters from the kernel's netlink answers.
    fn read_netlink(&mut self) -> Result<(), crate::netlink::Error> {
        self.buf.clear();
        self.devices.clear();
        self.seen.clear();
        let (buf, devices, seen, filter) = (
            &mut self.buf,
            &mut self.devices,
            &mut self.seen,
            &self.filter,
        );
        self.netlink.read(|name, stats| {
            if filter.allows(name) && seen.first(name) {
                let start = buf.len();
                buf.push_str(name);
                devices.push(Device {
                    name: start..buf.len(),
                    counters: proc_net_dev_columns(stats),
                    nohandler: stats.rx_nohandler,
                });
            }
        })
    }

    fn parse(&mut self) -> Result<(), CollectError> {
        self.devices.clear();
        self.seen.clear();
        let base = self.buf.as_ptr() as usize;
        let lines = self.buf.lines().enumerate().skip(HEADER_LINES);
        for (index, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let device = parse_line(line, line.as_ptr() as usize - base)
                .map_err(|e| CollectError::parse(&self.path, index + 1, e))?;
            let name = &self.buf[device.name.clone()];
            if self.filter.allows(name) && self.seen.first(name) {
                self.devices.push(device);
            }
        }
        Ok(())
    }

    fn read_nohandler(&mut self) {
        for device in &mut self.devices {
            let name = &self.buf[device.name.clone()];
            let parts = [name, "statistics", "rx_nohandler"];
            set_path(&mut self.scratch, &self.class_net, &parts);
            device.nohandler = read_value(&self.scratch, &mut self.value)
                .ok()
                .and_then(|v| v.parse().ok());
        }
    }

    fn write(&self, out: &mut Batch) {
        for (column, key) in COLUMNS.iter().enumerate() {
            let mut family = out.family(
                format_args!("node_network_{key}_total"),
                format_args!("Network device statistic {key}."),
                Kind::Counter,
            );
            for device in &self.devices {
                family
                    .series()
                    .label_str("device", &self.buf[device.name.clone()])
                    .value(device.counters[column] as f64);
            }
        }
        let mut family = out.family(
            "node_network_receive_nohandler_total",
            "Network device statistic receive_nohandler.",
            Kind::Counter,
        );
        for device in &self.devices {
            if let Some(count) = device.nohandler {
                family
                    .series()
                    .label_str("device", &self.buf[device.name.clone()])
                    .value(count as f64);
            }
        }
    }
}

impl Build for Netdev {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/net/dev"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Netdev::new(
            &context.paths.procfs,
            &context.paths.sysfs,
            options.filter(),
            NetSource::netlink_if(options.netlink),
            context.resources.netlink.clone(),
        )
    }
}

impl Collector for Netdev {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        if self.source == NetSource::Netlink {
            match self.netlink.connect() {
                Err(e) if e.is_unavailable() => {
                    log::warn!("netdev: {e}; reading {} instead", self.path.display());
                    self.source = NetSource::Files;
                }
                _ => {
                    self.read_netlink()?;
                    self.write(out);
                    return Ok(());
                }
            }
        }
        self.read_files()?;
        self.write(out);
        Ok(())
    }
}

/// The 16 columns of /proc/net/dev from an interface's counters, folded as the
/// kernel folds them when it prints the file (`dev_seq_printf_stats()` in
/// net/core/net-procfs.c), with its unsigned wrap-around.
pub fn proc_net_dev_columns(s: &Stats64) -> [u64; COLUMNS.len()] {
    let sum = |values: &[u64]| values.iter().fold(0u64, |a, &b| a.wrapping_add(b));
    [
        s.rx_bytes,
        s.rx_packets,
        s.rx_errors,
        sum(&[s.rx_dropped, s.rx_missed_errors]),
        s.rx_fifo_errors,
        sum(&[
            s.rx_length_errors,
            s.rx_over_errors,
            s.rx_crc_errors,
            s.rx_frame_errors,
        ]),
        s.rx_compressed,
        s.multicast,
        s.tx_bytes,
        s.tx_packets,
        s.tx_errors,
        s.tx_dropped,
        s.tx_fifo_errors,
        s.collisions,
        sum(&[
            s.tx_carrier_errors,
            s.tx_aborted_errors,
            s.tx_window_errors,
            s.tx_heartbeat_errors,
        ]),
        s.tx_compressed,
    ]
}

/// Parses `  eth0: 1 2 ... 16` starting at byte `offset` of the file.
fn parse_line(line: &str, offset: usize) -> Result<Device, String> {
    let (name, numbers) = line
        .rsplit_once(':')
        .ok_or_else(|| format!("expected `device: counters`, got {line:?}"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("expected a device name before `:`, got {line:?}"));
    }
    let start = offset + (name.as_ptr() as usize - line.as_ptr() as usize);
    let mut device = Device {
        name: start..start + name.len(),
        counters: [0; COLUMNS.len()],
        nohandler: None,
    };
    let mut words = numbers.split_ascii_whitespace();
    for (key, slot) in COLUMNS.iter().zip(&mut device.counters) {
        let word = words.next().ok_or_else(|| {
            format!(
                "{name}: expected {} counters, got none for {key}",
                COLUMNS.len()
            )
        })?;
        *slot = word
            .parse()
            .map_err(|_| format!("{name}: {key}: expected a whole number, got {word:?}"))?;
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;
    use crate::testing::{render, TempDir};

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n \
        face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";
    const LO: &str = "    lo:   62905      62    0    0    0     0          0         0    62905      62    0    0    0     0       0          0\n";
    const ETH0: &str = "  eth0: 146638420    6180    1    2    3     4          5         6   300956    3441    7    8    9    10       11          12\n";

    fn netdev(dir: &TempDir, filter: Filter) -> Netdev {
        let netlink = Netlink::unavailable();
        Netdev::new(dir.path(), dir.path(), filter, NetSource::Files, netlink)
    }

    fn lines_for<'a>(text: &'a str, device: &str) -> Vec<&'a str> {
        let label = format!("{{device=\"{device}\"}}");
        text.lines().filter(|l| l.contains(&label)).collect()
    }

    #[test]
    fn a_device_listed_twice_is_reported_once() {
        let dir = TempDir::new();
        dir.write("net/dev", &format!("{HEADER}{ETH0}{LO}{ETH0}"));
        let text = render(&mut netdev(&dir, Filter::default())).unwrap();
        assert_eq!(
            text.matches("node_network_receive_bytes_total{device=\"eth0\"}")
                .count(),
            1
        );
    }

    #[test]
    fn every_column_becomes_a_counter_family() {
        let dir = TempDir::new();
        dir.write("net/dev", &format!("{HEADER}{LO}{ETH0}"));
        dir.write("class/net/eth0/statistics/rx_nohandler", "13\n");
        let text = render(&mut netdev(&dir, Filter::default())).unwrap();
        assert!(text.starts_with(
            "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
             # TYPE node_network_receive_bytes_total counter\n\
             node_network_receive_bytes_total{device=\"lo\"} 62905\n\
             node_network_receive_bytes_total{device=\"eth0\"} 146638420\n"
        ));
        assert_eq!(
            lines_for(&text, "eth0"),
            [
                "node_network_receive_bytes_total{device=\"eth0\"} 146638420",
                "node_network_receive_packets_total{device=\"eth0\"} 6180",
                "node_network_receive_errs_total{device=\"eth0\"} 1",
                "node_network_receive_drop_total{device=\"eth0\"} 2",
                "node_network_receive_fifo_total{device=\"eth0\"} 3",
                "node_network_receive_frame_total{device=\"eth0\"} 4",
                "node_network_receive_compressed_total{device=\"eth0\"} 5",
                "node_network_receive_multicast_total{device=\"eth0\"} 6",
                "node_network_transmit_bytes_total{device=\"eth0\"} 300956",
                "node_network_transmit_packets_total{device=\"eth0\"} 3441",
                "node_network_transmit_errs_total{device=\"eth0\"} 7",
                "node_network_transmit_drop_total{device=\"eth0\"} 8",
                "node_network_transmit_fifo_total{device=\"eth0\"} 9",
                "node_network_transmit_colls_total{device=\"eth0\"} 10",
                "node_network_transmit_carrier_total{device=\"eth0\"} 11",
                "node_network_transmit_compressed_total{device=\"eth0\"} 12",
                "node_network_receive_nohandler_total{device=\"eth0\"} 13",
            ]
        );
        // lo has no rx_nohandler file here: that one series is left out.
        assert_eq!(lines_for(&text, "lo").len(), 16);
        assert!(text.contains(
            "# HELP node_network_receive_nohandler_total Network device statistic receive_nohandler.\n"
        ));
    }

    #[test]
    fn filter_and_devices_coming_and_going() {
        let dir = TempDir::new();
        let filter = Filter {
            include: None,
            exclude: Some(Pattern::new("lo").unwrap()),
        };
        let mut collector = netdev(&dir, filter);
        dir.write("net/dev", &format!("{HEADER}{LO}{ETH0}"));
        let text = render(&mut collector).unwrap();
        assert!(lines_for(&text, "lo").is_empty());
        assert_eq!(lines_for(&text, "eth0").len(), 16);
        let veth = "veth1a2b: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        dir.write("net/dev", &format!("{HEADER}{veth}"));
        let text = render(&mut collector).unwrap();
        assert!(lines_for(&text, "eth0").is_empty());
        assert!(text.contains("node_network_transmit_compressed_total{device=\"veth1a2b\"} 16\n"));
    }

    #[test]
    fn huge_counters_keep_their_magnitude() {
        let dir = TempDir::new();
        let line = ETH0.replace("146638420", "18446744073709551615");
        dir.write("net/dev", &format!("{HEADER}{line}"));
        let text = render(&mut netdev(&dir, Filter::default())).unwrap();
        assert!(
            text.contains("{device=\"eth0\"} 18446744073709552000\n"),
            "{text}"
        );
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let dir = TempDir::new();
        for (bad, message) in [
            (
                "eth1 1 2 3\n",
                "line 4: expected `device: counters`, got \"eth1 1 2 3\"",
            ),
            (
                ": 1 2 3\n",
                "line 4: expected a device name before `:`, got \": 1 2 3\"",
            ),
            (
                "eth1: 1 2 3\n",
                "line 4: eth1: expected 16 counters, got none for receive_drop",
            ),
            (
                &ETH0.replace("6180", "-1"),
                "line 4: eth0: receive_packets: expected a whole number, got \"-1\"",
            ),
        ] {
            dir.write("net/dev", &format!("{HEADER}{LO}{bad}"));
            let err = render(&mut netdev(&dir, Filter::default())).unwrap_err();
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut netdev(&dir, Filter::default())).is_err());
    }

    /// Netlink and file mode in a namespace of their own, with some traffic: the
    /// same series, counters of the files read after netlink's never smaller.
    #[test]
    fn netlink_gives_the_series_of_the_files() {
        use sc_agent_testkit::netns::{in_new_netns_with_sysfs, ip};
        let (netlink, files) = in_new_netns_with_sysfs(|sysfs| {
            ip("link set lo up");
            ip("link add nd0 type veth peer name nd1 address 02:00:00:00:00:02");
            ip("link set nd0 up");
            ip("link set nd1 up");
            ip("addr add 192.0.2.1/24 dev nd0");
            // A neighbour known in advance: the datagrams leave by nd0 at once.
            ip("neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev nd0 nud permanent");
            let socket = std::net::UdpSocket::bind("192.0.2.1:0").unwrap();
            for _ in 0..5 {
                socket.send_to(b"hello", "192.0.2.2:9").unwrap();
            }
            let proc = Path::new("/proc/thread-self");
            let netdev =
                |source| Netdev::new(proc, sysfs, Filter::default(), source, Netlink::default());
            let netlink = render(&mut netdev(NetSource::Netlink));
            let files = render(&mut netdev(NetSource::Files));
            (netlink.unwrap(), files.unwrap())
        });
        let series = |text: &str| -> Vec<(String, f64)> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| {
                    let (name, value) = l.rsplit_once(' ').unwrap();
                    (name.to_owned(), value.parse().unwrap())
                })
                .collect()
        };
        let (netlink_series, file_series) = (series(&netlink), series(&files));
        let names = |s: &[(String, f64)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&netlink_series), names(&file_series));
        for ((name, ours), (_, theirs)) in netlink_series.iter().zip(&file_series) {
            assert!(
                ours <= theirs,
                "{name}: netlink {ours}, files later {theirs}"
            );
        }
        let help = |t: &str| {
            t.lines()
                .filter(|l| l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(help(&netlink), help(&files));
        // The traffic shows.
        let sent = netlink_series
            .iter()
            .find(|(n, _)| n == "node_network_transmit_packets_total{device=\"nd0\"}")
            .unwrap();
        assert!(sent.1 >= 5.0, "{sent:?}");
        assert!(netlink.contains("node_network_receive_nohandler_total{device=\"nd1\"} "));
    }

    #[test]
    fn the_kernel_folds_counters_into_columns_as_proc_net_dev_does() {
        let stats = Stats64 {
            rx_dropped: 1,
            rx_missed_errors: 2,
            rx_length_errors: 3,
            rx_over_errors: 4,
            rx_crc_errors: 5,
            rx_frame_errors: u64::MAX,
            tx_carrier_errors: 7,
            tx_aborted_errors: 8,
            tx_window_errors: 9,
            tx_heartbeat_errors: 10,
            multicast: 11,
            collisions: 12,
            ..Stats64::default()
        };
        let columns = proc_net_dev_columns(&stats);
        let column = |name: &str| columns[COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(column("receive_drop"), 3);
        assert_eq!(
            column("receive_frame"),
            11,
            "wraps around as the kernel's u64 sum"
        );
        assert_eq!(column("transmit_carrier"), 34);
        assert_eq!(column("receive_multicast"), 11);
        assert_eq!(column("transmit_colls"), 12);
    }
}
