//! `node_network_*` device properties from `<sysfs>/class/net/<device>/`, as
//! node_exporter 1.12's netclass collector exports them: `node_network_up` (1 when
//! `operstate` is `up`),
//! `node_network_info{address,adminstate,broadcast,duplex,ifalias,operstate}` and one
//! family per numeric attribute (`mtu_bytes`, `carrier`, `speed_bytes`...).
//!
//! `adminstate` is `up` when `flags` has IFF_UP (the interface was set up, whether or
//! not it has a link), `down` when not, `unknown` when there is no `flags` file.
//! Changed since node_exporter 1.5: that label is new (1.6).
//!
//! Two sources give the same series ([`NetSource`], the `netlink` option): netlink
//! dumps (the default; [`netlink`] says how each attribute maps, and which few are
//! still read from sysfs), or the sysfs files themselves, described here. When no
//! netlink socket can be created (a sandbox without `AF_NETLINK`) the collector
//! says so once and reads the files. node_exporter's own
//! `--collector.netclass.netlink` (off by default there) changes some series; this
//! one does not, so it is on by default.
//!
//! node_exporter quirks mirrored:
//! - Every entry of class/net that is not a regular file is a device (this skips
//!   `bonding_masters`); devices come in name order.
//! - An attribute whose read fails with ENOENT, EACCES/EPERM, EINVAL (`carrier`,
//!   `speed`, `duplex` of a link that is down) or EOPNOTSUPP is absent: its series is
//!   left out, its `node_network_info` label is empty. Any other error fails the
//!   collector.
//! - Numbers are read like Go's `ParseInt(s, 0, 64)`: `flags` is `0x1003`, a leading
//!   `0` means octal.
//! - `speed` is Mb/s, exported as bytes/s by integer arithmetic: an unknown speed (-1)
//!   becomes -125000, as node_exporter does unless `ignore-invalid-speed` is set.
//!
//! Differences: node_exporter reads every file of the directory and fails when one
//! of them fails in another way; here only the attributes exported are read. A
//! number that does not parse fails the collector (node_exporter exports it as 0). A
//! device whose directory vanishes between listing and reading is skipped rather
//! than failing the collector. `ifalias` is exported whole (node_exporter cuts
//! every value at 128 bytes). The device filter is this collector's own
//! (`collectors.netclass.device_include`/`device_exclude`, node_exporter's
//! `--collector.netclass.ignored-devices`), which ignores nothing by default.

mod netlink;

use super::go_parse::parse_int;
use super::{list_dir, read_value, set_path, Build, CollectError, Collector, Context, NetSource};
use crate::batch::{Batch, Kind};
use crate::config::Filter;
use crate::netlink::Netlink;
use nix::errno::Errno;
use std::io;
use std::path::{Path, PathBuf};

/// `collectors.netclass`: which devices to report, and from where.
pub use super::device_options::Options;

/// A numeric attribute file and the family it becomes.
struct Number {
    file: &'static str,
    /// The family name after `node_network_`, also used in its help text.
    name: &'static str,
    kind: Kind,
}

const fn gauge(file: &'static str, name: &'static str) -> Number {
    Number {
        file,
        name,
        kind: Kind::Gauge,
    }
}

const fn counter(file: &'static str, name: &'static str) -> Number {
    Number {
        file,
        name,
        kind: Kind::Counter,
    }
}

const NUMBERS: [Number; 17] = [
    gauge("addr_assign_type", "address_assign_type"),
    gauge("carrier", "carrier"),
    counter("carrier_changes", "carrier_changes_total"),
    counter("carrier_up_count", "carrier_up_changes_total"),
    counter("carrier_down_count", "carrier_down_changes_total"),
    gauge("dev_id", "device_id"),
    gauge("dormant", "dormant"),
    gauge("flags", "flags"),
    gauge("ifindex", "iface_id"),
    gauge("iflink", "iface_link"),
    gauge("link_mode", "iface_link_mode"),
    gauge("mtu", "mtu_bytes"),
    gauge("name_assign_type", "name_assign_type"),
    gauge("netdev_group", "net_dev_group"),
    gauge("speed", "speed_bytes"),
    gauge("tx_queue_len", "transmit_queue_length"),
    gauge("type", "protocol_type"),
];

/// The text attributes, which become `node_network_info` labels of the same name.
const TEXTS: [&str; 5] = ["address", "broadcast", "duplex", "ifalias", "operstate"];
const OPERSTATE: usize = 4;
/// The index of `flags` in [`NUMBERS`], whose IFF_UP bit gives `adminstate`.
const FLAGS: usize = 7;
/// IFF_UP of `<linux/if.h>`.
const IFF_UP: i64 = 0x1;

/// node_exporter's `getAdminState`.
fn admin_state(flags: Option<i64>) -> &'static str {
    match flags {
        None => "unknown",
        Some(flags) if flags & IFF_UP == IFF_UP => "up",
        Some(_) => "down",
    }
}

/// What was read for one device. Slots are reused from cycle to cycle.
#[derive(Default)]
struct Device {
    numbers: [Option<i64>; NUMBERS.len()],
    texts: [String; TEXTS.len()],
}

pub struct Netclass {
    /// `<sysfs>/class/net`.
    dir: PathBuf,
    /// The path of the attribute being read.
    scratch: PathBuf,
    filter: Filter,
    value: String,
    /// This cycle's device names in the first `len` slots.
    names: Vec<String>,
    /// What was read for each of `names`, same index.
    devices: Vec<Device>,
    len: usize,
    source: NetSource,
    netlink: netlink::Reader,
}

impl Netclass {
    pub fn new(sysfs: &Path, filter: Filter, source: NetSource, netlink: Netlink) -> Self {
        Netclass {
            dir: sysfs.join("class/net"),
            scratch: PathBuf::new(),
            filter,
            value: String::new(),
            names: Vec::new(),
            devices: Vec::new(),
            len: 0,
            source,
            netlink: netlink::Reader::new(netlink),
        }
    }

    /// Netlink mode: the devices from the dumps, the few sysfs-only files as needed.
    fn read_netlink(&mut self) -> Result<(), CollectError> {
        let mut files = Files {
            dir: &self.dir,
            path: &mut self.scratch,
            value: &mut self.value,
        };
        self.len =
            self.netlink
                .read(&self.filter, &mut files, &mut self.names, &mut self.devices)?;
        Ok(())
    }

    /// Lists this cycle's devices: every entry that is not a regular file.
    fn list(&mut self) -> Result<(), CollectError> {
        let filter = &self.filter;
        let keep = |entry: &std::fs::DirEntry, name: &str| {
            !entry.file_type().is_ok_and(|t| t.is_file()) && filter.allows(name)
        };
        self.len = list_dir(&self.dir, &mut self.names, keep)
            .map_err(|e| CollectError::io(&self.dir, &e))?;
        if self.devices.len() < self.len {
            self.devices.resize_with(self.len, Device::default);
        }
        Ok(())
    }

    /// Reads the attributes of the listed devices; drops devices that vanished.
    fn read(&mut self) -> Result<(), CollectError> {
        let mut kept = 0;
        for index in 0..self.len {
            let mut files = Files {
                dir: &self.dir,
                path: &mut self.scratch,
                value: &mut self.value,
            };
            if files.read_device(&self.names[index], &mut self.devices[index])? {
                self.names.swap(kept, index);
                self.devices.swap(kept, index);
                kept += 1;
            }
        }
        self.len = kept;
        Ok(())
    }

    fn write(&self, out: &mut Batch) {
        let devices = || self.names.iter().zip(&self.devices).take(self.len);
        let mut family = out.family(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            Kind::Gauge,
        );
        for (name, device) in devices() {
            let up = device.texts[OPERSTATE] == "up";
            family
                .series()
                .label_str("device", name)
                .value(f64::from(u8::from(up)));
        }
        let mut family = out.family(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            Kind::Gauge,
        );
        for (name, device) in devices() {
            let mut series = family
                .series()
                .label_str("device", name)
                .label_str("adminstate", admin_state(device.numbers[FLAGS]));
            for (label, text) in TEXTS.iter().zip(&device.texts) {
                series = series.label_str(label, text);
            }
            series.value(1.0);
        }
        for (index, number) in NUMBERS.iter().enumerate() {
            let mut family = out.family(
                format_args!("node_network_{}", number.name),
                format_args!("Network device property: {}", number.name),
                number.kind,
            );
            for (name, device) in devices() {
                let Some(mut value) = device.numbers[index] else {
                    continue;
                };
                if number.file == "speed" {
                    value = value.wrapping_mul(1000 * 1000) / 8; // Mb/s to bytes/s
                }
                family
                    .series()
                    .label_str("device", name)
                    .value(value as f64);
            }
        }
    }
}

impl Build for Netclass {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &[
        "sys/class/net/eth0/operstate",
        "sys/class/net/eth0/mtu",
        "sys/class/net/eth0/address",
        "sys/class/net/eth0/speed",
        "sys/class/net/eth0/flags",
        "sys/class/net/eth0/carrier",
        "sys/class/net/eth0/duplex",
        "sys/class/net/eth0/ifalias",
    ];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        Netclass::new(
            &context.paths.sysfs,
            options.filter(),
            NetSource::netlink_if(options.netlink),
            context.resources.netlink.clone(),
        )
    }
}

impl Collector for Netclass {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        if self.source == NetSource::Netlink {
            match self.netlink.connect() {
                Err(e) if e.is_unavailable() => {
                    log::warn!("netclass: {e}; reading {} instead", self.dir.display());
                    self.source = NetSource::Files;
                }
                _ => {
                    self.read_netlink()?;
                    self.write(out);
                    return Ok(());
                }
            }
        }
        self.list()?;
        self.read()?;
        self.write(out);
        Ok(())
    }
}

/// `class/net` and the buffers to read the attributes under it.
struct Files<'a> {
    dir: &'a Path,
    path: &'a mut PathBuf,
    value: &'a mut String,
}

impl Files<'_> {
    /// Reads one device's attributes; `false` when none of them exists, which means
    /// the device went away after the listing.
    fn read_device(&mut self, name: &str, device: &mut Device) -> Result<bool, CollectError> {
        let mut found = false;
        for (number, slot) in NUMBERS.iter().zip(&mut device.numbers) {
            *slot = self.read_number(name, number.file, &mut found)?;
        }
        for (file, slot) in TEXTS.iter().zip(&mut device.texts) {
            self.read_text(name, file, slot, &mut found)?;
        }
        Ok(found)
    }

    /// Reads the integer in `device/file`; `None` when it is absent.
    fn read_number(
        &mut self,
        device: &str,
        file: &str,
        found: &mut bool,
    ) -> Result<Option<i64>, CollectError> {
        if !self.read(device, file, found)? {
            return Ok(None);
        }
        let text = self.value.trim();
        parse_int(text).map(Some).ok_or_else(|| {
            CollectError::parse(self.path, 1, format!("expected an integer, got {text:?}"))
        })
    }

    /// Reads the text in `device/file` into `out`, trimmed; empty when absent.
    fn read_text(
        &mut self,
        device: &str,
        file: &str,
        out: &mut String,
        found: &mut bool,
    ) -> Result<(), CollectError> {
        out.clear();
        if self.read(device, file, found)? {
            out.push_str(self.value.trim());
        }
        Ok(())
    }

    /// Reads `device/file` into `value`; `false` when node_exporter would treat it as
    /// absent. Sets `found` when the file exists.
    fn read(&mut self, device: &str, file: &str, found: &mut bool) -> Result<bool, CollectError> {
        set_path(self.path, self.dir, &[device, file]);
        match read_value(self.path, self.value) {
            Ok(_) => {
                *found = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) if is_absent(&e) => {
                *found = true;
                Ok(false)
            }
            Err(e) => Err(CollectError::io(self.path, &e)),
        }
    }
}

/// The read errors node_exporter (Go procfs) takes as "no such attribute", plus
/// EISDIR, as node_exporter only reads regular files.
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    ) || err.raw_os_error().is_some_and(|code| {
        [Errno::EINVAL, Errno::EOPNOTSUPP, Errno::EISDIR].contains(&Errno::from_raw(code))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;
    use crate::testing::{render, TempDir};

    /// eth0 of this machine's sysfs, trimmed to the attributes read.
    const ETH0: [(&str, &str); 22] = [
        ("addr_assign_type", "0"),
        ("address", "02:fc:00:00:00:01"),
        ("broadcast", "ff:ff:ff:ff:ff:ff"),
        ("carrier", "1"),
        ("carrier_changes", "2"),
        ("carrier_up_count", "1"),
        ("carrier_down_count", "1"),
        ("dev_id", "0x0"),
        ("dormant", "0"),
        ("duplex", "unknown"),
        ("flags", "0x1003"),
        ("ifalias", ""),
        ("ifindex", "4"),
        ("iflink", "4"),
        ("link_mode", "0"),
        ("mtu", "1400"),
        ("name_assign_type", "1"),
        ("netdev_group", "0"),
        ("operstate", "up"),
        ("speed", "-1"),
        ("tx_queue_len", "1000"),
        ("type", "1"),
    ];

    fn write_device(dir: &TempDir, name: &str, skip: &[&str]) {
        for (file, value) in ETH0.iter().filter(|(f, _)| !skip.contains(f)) {
            dir.write(&format!("class/net/{name}/{file}"), &format!("{value}\n"));
        }
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn exports_every_property_like_node_exporter() {
        let dir = TempDir::new();
        write_device(&dir, "eth0", &[]);
        dir.write("class/net/bonding_masters", "\n");
        let text = render(&mut Netclass::new(
            dir.path(),
            Filter::default(),
            NetSource::Files,
            Netlink::unavailable(),
        ))
        .unwrap();
        assert_eq!(
            series(&text),
            [
                "node_network_up{device=\"eth0\"} 1",
                "node_network_info{address=\"02:fc:00:00:00:01\",adminstate=\"up\",broadcast=\"ff:ff:ff:ff:ff:ff\",device=\"eth0\",duplex=\"unknown\",ifalias=\"\",operstate=\"up\"} 1",
                "node_network_address_assign_type{device=\"eth0\"} 0",
                "node_network_carrier{device=\"eth0\"} 1",
                "node_network_carrier_changes_total{device=\"eth0\"} 2",
                "node_network_carrier_up_changes_total{device=\"eth0\"} 1",
                "node_network_carrier_down_changes_total{device=\"eth0\"} 1",
                "node_network_device_id{device=\"eth0\"} 0",
                "node_network_dormant{device=\"eth0\"} 0",
                "node_network_flags{device=\"eth0\"} 4099",
                "node_network_iface_id{device=\"eth0\"} 4",
                "node_network_iface_link{device=\"eth0\"} 4",
                "node_network_iface_link_mode{device=\"eth0\"} 0",
                "node_network_mtu_bytes{device=\"eth0\"} 1400",
                "node_network_name_assign_type{device=\"eth0\"} 1",
                "node_network_net_dev_group{device=\"eth0\"} 0",
                "node_network_speed_bytes{device=\"eth0\"} -125000",
                "node_network_transmit_queue_length{device=\"eth0\"} 1000",
                "node_network_protocol_type{device=\"eth0\"} 1",
            ]
        );
        assert!(text.contains(
            "# HELP node_network_carrier_changes_total Network device property: carrier_changes_total\n\
             # TYPE node_network_carrier_changes_total counter\n"
        ));
        assert!(text.contains(
            "# HELP node_network_info Non-numeric data from /sys/class/net/<iface>, value is always 1.\n"
        ));
        assert!(
            text.contains("# HELP node_network_up Value is 1 if operstate is 'up', 0 otherwise.\n")
        );
    }

    #[test]
    fn missing_attributes_are_left_out() {
        let dir = TempDir::new();
        // A link that is down: the kernel refuses carrier, speed, duplex (EINVAL).
        write_device(&dir, "ifb0", &["carrier", "speed", "duplex", "dormant"]);
        dir.write("class/net/ifb0/operstate", "down\n");
        dir.write("class/net/ifb0/speed", "10000\n");
        let text = render(&mut Netclass::new(
            dir.path(),
            Filter::default(),
            NetSource::Files,
            Netlink::unavailable(),
        ))
        .unwrap();
        assert!(text.contains("node_network_up{device=\"ifb0\"} 0\n"));
        assert!(text.contains("duplex=\"\""), "{text}");
        assert!(!text.contains("node_network_carrier{"), "{text}");
        assert!(!text.contains("node_network_dormant"), "{text}");
        assert!(text.contains("node_network_speed_bytes{device=\"ifb0\"} 1250000000\n"));
    }

    #[test]
    fn errors_node_exporter_takes_as_absent() {
        for code in [
            Errno::EINVAL,
            Errno::EOPNOTSUPP,
            Errno::EACCES,
            Errno::EISDIR,
        ] {
            assert!(
                is_absent(&io::Error::from_raw_os_error(code as i32)),
                "{code}"
            );
        }
        assert!(!is_absent(&io::Error::from_raw_os_error(Errno::EIO as i32)));
        // A directory in place of an attribute is skipped, like a non-regular file.
        let dir = TempDir::new();
        write_device(&dir, "eth0", &["mtu"]);
        dir.write("class/net/eth0/mtu/x", "");
        let text = render(&mut Netclass::new(
            dir.path(),
            Filter::default(),
            NetSource::Files,
            Netlink::unavailable(),
        ))
        .unwrap();
        assert!(!text.contains("mtu_bytes{"), "{text}");
    }

    #[test]
    fn devices_are_sorted_filtered_and_may_come_and_go() {
        let dir = TempDir::new();
        let filter = Filter {
            include: None,
            exclude: Some(Pattern::new("veth.*").unwrap()),
        };
        let mut collector =
            Netclass::new(dir.path(), filter, NetSource::Files, Netlink::unavailable());
        write_device(&dir, "lo", &[]);
        write_device(&dir, "eth0", &[]);
        write_device(&dir, "veth0", &[]);
        let text = render(&mut collector).unwrap();
        let up: Vec<_> = series(&text)
            .into_iter()
            .filter(|l| l.starts_with("node_network_up"))
            .collect();
        assert_eq!(
            up,
            [
                "node_network_up{device=\"eth0\"} 1",
                "node_network_up{device=\"lo\"} 1"
            ]
        );
        std::fs::remove_dir_all(dir.path().join("class/net/eth0")).unwrap();
        write_device(&dir, "eth1", &[]);
        let text = render(&mut collector).unwrap();
        assert!(!text.contains("eth0") && text.contains("node_network_up{device=\"eth1\"} 1"));
        // An empty directory (a device removed while it was read) is skipped.
        std::fs::create_dir_all(dir.path().join("class/net/gone")).unwrap();
        let text = render(&mut collector).unwrap();
        assert!(!text.contains("gone"), "{text}");
    }

    #[test]
    fn malformed_number_is_an_error_naming_the_file() {
        let dir = TempDir::new();
        write_device(&dir, "eth0", &[]);
        dir.write("class/net/eth0/mtu", "lots\n");
        let err = render(&mut Netclass::new(
            dir.path(),
            Filter::default(),
            NetSource::Files,
            Netlink::unavailable(),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("eth0/mtu line 1: expected an integer, got \"lots\""),
            "{err}"
        );
    }

    #[test]
    fn missing_class_directory_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut Netclass::new(
            dir.path(),
            Filter::default(),
            NetSource::Files,
            Netlink::unavailable(),
        ))
        .is_err());
    }

    #[test]
    fn huge_speed_wraps_like_go() {
        let dir = TempDir::new();
        write_device(&dir, "eth0", &["speed"]);
        dir.write("class/net/eth0/speed", "9223372036854775807\n");
        let text = render(&mut Netclass::new(
            dir.path(),
            Filter::default(),
            NetSource::Files,
            Netlink::unavailable(),
        ))
        .unwrap();
        let expected = (i64::MAX.wrapping_mul(1_000_000) / 8) as f64;
        assert!(text.contains(&format!("speed_bytes{{device=\"eth0\"}} {expected}\n")));
    }

    #[test]
    fn operstate_index_names_operstate() {
        assert_eq!(TEXTS[OPERSTATE], "operstate");
        assert_eq!(NUMBERS[FLAGS].file, "flags");
    }

    #[test]
    fn adminstate_is_the_iff_up_bit_of_flags() {
        assert_eq!(admin_state(Some(0x1003)), "up");
        assert_eq!(admin_state(Some(0x1002)), "down");
        assert_eq!(admin_state(Some(0)), "down");
        assert_eq!(admin_state(Some(-1)), "up");
        assert_eq!(admin_state(None), "unknown");
    }
}
