//! `node_network_{receive,transmit}_*_total{device}` from /proc/net/dev, one family
//! per column, named as node_exporter names them (`receive_errs`, `transmit_colls`).
//!
//! node_exporter (1.12, unchanged in this since 1.5) reads these counters over netlink
//! by default, which gives the same numbers as /proc/net/dev (the kernel folds the
//! detailed error counters the same way for both) plus one more:
//! `node_network_receive_nohandler_total`. That one is read here from
//! `<sysfs>/class/net/<device>/statistics/rx_nohandler` and left out for a device
//! whose file cannot be read.
//!
//! The two header lines are skipped; the name is what precedes the last `:` on the
//! line. A line with fewer than 16 numbers, or a number that does not parse, fails
//! the collector (node_exporter's parser panics on the former).

use super::{Build, CollectError, Collector, Context, Seen, read_file, read_value, set_path};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::{Filter, Pattern};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// `collectors.netdev`: which devices to report.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Only devices whose name matches (anywhere, unless anchored).
    pub device_include: Option<Pattern>,
    /// Devices whose name matches are left out.
    pub device_exclude: Option<Pattern>,
}

impl Options {
    pub fn filter(&self) -> Filter {
        Filter {
            include: self.device_include.clone(),
            exclude: self.device_exclude.clone(),
        }
    }
}

impl collectors::Options for Options {}

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

/// One interface line; `name` indexes the file buffer.
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
}

impl Netdev {
    pub fn new(procfs: &Path, sysfs: &Path, filter: Filter) -> Self {
        Netdev {
            path: procfs.join("net/dev"),
            class_net: sysfs.join("class/net"),
            scratch: PathBuf::new(),
            filter,
            buf: String::new(),
            value: String::new(),
            devices: Vec::new(),
            seen: Seen::default(),
        }
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
                    .label("device", &self.buf[device.name.clone()])
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
                    .label("device", &self.buf[device.name.clone()])
                    .value(count as f64);
            }
        }
    }
}

impl Build for Netdev {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/net/dev"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Netdev::new(&context.paths.procfs, &context.paths.sysfs, options.filter())
    }
}

impl Collector for Netdev {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        self.parse()?;
        self.read_nohandler();
        self.write(out);
        Ok(())
    }
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
        Netdev::new(dir.path(), dir.path(), filter)
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
}
