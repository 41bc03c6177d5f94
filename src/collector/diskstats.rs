//! `node_disk_*` from /proc/diskstats, with the device labels node_exporter 1.12 takes
//! from the udev database (`<rootfs>/run/udev/data/b<major>:<minor>`) and sysfs.
//!
//! Per device line, as node_exporter does it:
//! - A line with fewer than 14 columns is skipped; a column that is not a number fails
//!   the collector. The statistics exported are the first (columns − 3) of the 17 the
//!   kernel may print: 11 before Linux 4.18, 15 with discards, 17 with flushes.
//! - Sectors are the kernel's 512-byte units whatever the device's block size, so
//!   `read_bytes`/`written_bytes` are sectors × 512; `discarded_sectors` stays in
//!   sectors. Milliseconds are multiplied by 0.001 (not divided by 1000: the last
//!   digit can differ, and node_exporter multiplies).
//! - `node_disk_info` has `path`, `wwn`, `model`, `serial`, `revision` from udev's
//!   `ID_PATH`, `ID_WWN`, `ID_MODEL`, the serial, `ID_REVISION` (empty when there is
//!   no udev data: containers without /run/udev, systems without udev), and
//!   `rotational` from `<sysfs>/block/<device>/queue/rotational` (`"0"` when the file
//!   is missing or unreadable, as for partitions). The serial is `SCSI_IDENT_SERIAL`
//!   (the one printed on the disk's label), else `ID_SERIAL_SHORT`, else `ID_SERIAL`
//!   (which virtio disks have).
//! - `node_disk_filesystem_info` when udev knows a filesystem on the whole device
//!   (`ID_FS_TYPE`), `node_disk_device_mapper_info` for device-mapper devices
//!   (`DM_NAME`), and `node_disk_ata_*` for ATA disks (`ID_ATA`), each ATA value only
//!   when it is a number.
//!
//! Changed since node_exporter 1.5: the `rotational` label (1.9) and the serial's
//! `SCSI_IDENT_SERIAL` (1.6) and `ID_SERIAL` (later) fallbacks; 1.5's serial is
//! `ID_SERIAL_SHORT` only.
//!
//! Where node_exporter differs: it reads all of `queue/` through procfs and writes
//! `"0"` when any of its twenty-odd files cannot be read; here only `rotational` is
//! read, so one missing unrelated file (older kernels lack some) does not hide it.
//! The value is written in base 2 as node_exporter writes it (`FormatUint(v, 2)`),
//! which for the kernel's 0 and 1 is the same text.
//!
//! node_exporter reads udev data from `--path.udev.data` (default /run/udev/data, not
//! under `--path.rootfs`); here it is `<rootfs>/run/udev/data`, which is the same path
//! on a host and the right one in a container with the host's root mounted.

use super::{read_file, read_value, set_path, Build, CollectError, Collector, Context, Seen};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{self, Filter, Pattern};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A statistic column of /proc/diskstats (after major, minor, name) and its family.
struct Stat {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    /// Multiplies the raw column: 512 for sectors to bytes, 0.001 for ms to seconds.
    factor: f64,
}

const SECTOR_BYTES: f64 = 512.0;
const SECONDS_PER_MS: f64 = 1.0 / 1000.0;

const fn counter(name: &'static str, help: &'static str, factor: f64) -> Stat {
    Stat {
        name,
        help,
        kind: Kind::Counter,
        factor,
    }
}

const STATS: [Stat; 17] = [
    counter(
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        1.0,
    ),
    counter(
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        1.0,
    ),
    counter(
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
    ),
    counter(
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        SECONDS_PER_MS,
    ),
    counter(
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        1.0,
    ),
    counter(
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        1.0,
    ),
    counter(
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
    ),
    counter(
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        SECONDS_PER_MS,
    ),
    Stat {
        name: "node_disk_io_now",
        help: "The number of I/Os currently in progress.",
        kind: Kind::Gauge,
        factor: 1.0,
    },
    counter(
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        SECONDS_PER_MS,
    ),
    counter(
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        SECONDS_PER_MS,
    ),
    counter(
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
    ),
    counter(
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        1.0,
    ),
    counter(
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
    ),
    counter(
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        SECONDS_PER_MS,
    ),
    // node_exporter's help text has no final period here.
    counter(
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
    ),
    counter(
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        SECONDS_PER_MS,
    ),
];

/// Lines with fewer columns than this are skipped, as node_exporter skips them.
const MIN_COLUMNS: usize = 14;

/// Labels of an info family: the label name and the udev property it comes from.
type UdevLabels = [(&'static str, &'static str)];

const FILESYSTEM_LABELS: &UdevLabels = &[
    ("type", "ID_FS_TYPE"),
    ("usage", "ID_FS_USAGE"),
    ("uuid", "ID_FS_UUID"),
    ("version", "ID_FS_VERSION"),
];

const DEVICE_MAPPER_LABELS: &UdevLabels = &[
    ("name", "DM_NAME"),
    ("uuid", "DM_UUID"),
    ("vg_name", "DM_VG_NAME"),
    ("lv_name", "DM_LV_NAME"),
    ("lv_layer", "DM_LV_LAYER"),
];

/// ATA udev properties exported as numbers: property, family, help.
const ATA: [(&str, &str, &str); 3] = [
    (
        "ID_ATA_WRITE_CACHE",
        "node_disk_ata_write_cache",
        "ATA disk has a write cache.",
    ),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

/// One device line; `name` indexes the file buffer.
struct Disk {
    name: Range<usize>,
    major: u32,
    minor: u32,
    /// How many of `stats` the line had.
    stats_len: usize,
    stats: [u64; STATS.len()],
}

/// node_exporter's default: partitions, RAM disks, loop and floppy devices.
pub const DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// `collectors.diskstats`: which devices to report, as node_exporter's
/// `--collector.diskstats.device-include` and `-exclude`. Both with a regex are
/// refused, as node_exporter refuses them; the default exclude included, so an
/// include goes with `device_exclude: ''`, as `--collector.diskstats.device-exclude=`
/// goes with it there. An empty regex is no filter.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Only devices whose name matches (anywhere, unless anchored).
    #[serde(deserialize_with = "pattern::filter")]
    pub device_include: Option<Pattern>,
    /// Devices whose name matches are left out.
    #[serde(deserialize_with = "pattern::filter")]
    pub device_exclude: Option<Pattern>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device_include: None,
            // A constant checked by the tests below.
            device_exclude: Pattern::new(DEVICE_EXCLUDE).ok(),
        }
    }
}

impl Options {
    pub fn filter(&self) -> Filter {
        Filter {
            include: self.device_include.clone(),
            exclude: self.device_exclude.clone(),
        }
    }
}

impl collectors::Options for Options {
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("ignored_devices", "device_exclude")];

    fn resolve(&mut self, _written: &dyn Fn(&str) -> bool) -> Result<(), String> {
        pattern::exclusive(
            ("device_include", &self.device_include),
            ("device_exclude", &self.device_exclude),
        )
    }
}

pub struct Diskstats {
    path: PathBuf,
    /// `<sysfs>/block`.
    block_dir: PathBuf,
    /// `<rootfs>/run/udev/data`.
    udev_dir: PathBuf,
    /// The path of the udev file being read.
    scratch: PathBuf,
    filter: Filter,
    buf: String,
    name: String,
    disks: Vec<Disk>,
    /// The udev database entry of each disk in `disks`, same index; slots are reused.
    udev: Vec<String>,
    /// `queue/rotational` of each disk in `disks`, same index: 0 when unreadable.
    rotational: Vec<u64>,
    /// A device listed twice is reported once, the first time.
    seen: Seen,
}

impl Diskstats {
    pub fn new(procfs: &Path, sysfs: &Path, rootfs: &Path, filter: Filter) -> Self {
        Diskstats {
            path: procfs.join("diskstats"),
            block_dir: sysfs.join("block"),
            udev_dir: rootfs.join("run/udev/data"),
            scratch: PathBuf::new(),
            filter,
            buf: String::new(),
            name: String::new(),
            disks: Vec::new(),
            udev: Vec::new(),
            rotational: Vec::new(),
            seen: Seen::default(),
        }
    }

    /// Reads the devices the filter lets through into `self.disks`.
    fn parse(&mut self) -> Result<(), CollectError> {
        self.disks.clear();
        self.seen.clear();
        let base = self.buf.as_ptr() as usize;
        for (index, line) in self.buf.lines().enumerate() {
            let disk = parse_line(line, line.as_ptr() as usize - base)
                .map_err(|e| CollectError::parse(&self.path, index + 1, e))?;
            if let Some(disk) = disk {
                let name = &self.buf[disk.name.clone()];
                if self.filter.allows(name) && self.seen.first(name) {
                    self.disks.push(disk);
                }
            }
        }
        Ok(())
    }

    /// Reads each disk's udev entry; a disk without one gets an empty entry.
    fn read_udev(&mut self) {
        if self.udev.len() < self.disks.len() {
            self.udev.resize_with(self.disks.len(), String::new);
        }
        for (disk, entry) in self.disks.iter().zip(&mut self.udev) {
            self.name.clear();
            let _ = write!(self.name, "b{}:{}", disk.major, disk.minor);
            set_path(&mut self.scratch, &self.udev_dir, &[&self.name]);
            if read_file(&self.scratch, entry).is_err() {
                entry.clear();
            }
        }
    }

    /// Reads each disk's `queue/rotational`; 0 when it cannot be read or parsed.
    fn read_rotational(&mut self) {
        self.rotational.clear();
        for disk in &self.disks {
            let name = &self.buf[disk.name.clone()];
            set_path(&mut self.scratch, &self.block_dir, &[name, "queue", "rotational"]);
            let value = read_value(&self.scratch, &mut self.name)
                .ok()
                .and_then(|text| text.parse().ok());
            self.rotational.push(value.unwrap_or(0));
        }
    }

    fn write_stats(&self, out: &mut Batch) {
        for (column, stat) in STATS.iter().enumerate() {
            let mut family = out.family(stat.name, stat.help, stat.kind);
            for disk in self.disks.iter().filter(|d| column < d.stats_len) {
                family
                    .series()
                    .label("device", &self.buf[disk.name.clone()])
                    .value(disk.stats[column] as f64 * stat.factor);
            }
        }
    }

    fn write_info(&self, out: &mut Batch) {
        let mut family = out.family(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            Kind::Gauge,
        );
        let disks = self.disks.iter().zip(&self.udev).zip(&self.rotational);
        for ((disk, udev), rotational) in disks {
            let property = |key| udev_property(udev, key).unwrap_or_default();
            let serial = ["SCSI_IDENT_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"]
                .into_iter()
                .map(property)
                .find(|serial| !serial.is_empty())
                .unwrap_or_default();
            family
                .series()
                .label("device", &self.buf[disk.name.clone()])
                .label("major", disk.major)
                .label("minor", disk.minor)
                .label("path", property("ID_PATH"))
                .label("wwn", property("ID_WWN"))
                .label("model", property("ID_MODEL"))
                .label("serial", serial)
                .label("revision", property("ID_REVISION"))
                .label("rotational", format_args!("{rotational:b}"))
                .value(1.0);
        }
        self.write_udev_info(
            out,
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            FILESYSTEM_LABELS,
        );
        self.write_udev_info(
            out,
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            DEVICE_MAPPER_LABELS,
        );
    }

    /// An info family for the disks whose udev entry has the first property set.
    fn write_udev_info(&self, out: &mut Batch, name: &str, help: &str, labels: &UdevLabels) {
        let mut family = out.family(name, help, Kind::Gauge);
        for (disk, udev) in self.disks.iter().zip(&self.udev) {
            let present = labels
                .first()
                .and_then(|(_, key)| udev_property(udev, key))
                .is_some_and(|v| !v.is_empty());
            if !present {
                continue;
            }
            let mut series = family
                .series()
                .label("device", &self.buf[disk.name.clone()]);
            for (label, key) in labels {
                series = series.label(label, udev_property(udev, key).unwrap_or_default());
            }
            series.value(1.0);
        }
    }

    fn write_ata(&self, out: &mut Batch) {
        for (key, name, help) in ATA {
            let mut family = out.family(name, help, Kind::Gauge);
            for (disk, udev) in self.disks.iter().zip(&self.udev) {
                if udev_property(udev, "ID_ATA").unwrap_or_default().is_empty() {
                    continue;
                }
                let Some(text) = udev_property(udev, key) else {
                    continue;
                };
                match text.parse::<f64>() {
                    Ok(value) => family
                        .series()
                        .label("device", &self.buf[disk.name.clone()])
                        .value(value),
                    Err(_) => log::debug!(
                        "udev {key} of {} is not a number: {text:?}",
                        &self.buf[disk.name.clone()]
                    ),
                }
            }
        }
    }
}

impl Build for Diskstats {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/diskstats", "sys/block/sda/queue/rotational"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        let paths = context.paths;
        Diskstats::new(&paths.procfs, &paths.sysfs, &paths.rootfs, options.filter())
    }
}

impl Collector for Diskstats {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        read_file(&self.path, &mut self.buf)?;
        self.parse()?;
        self.read_udev();
        self.read_rotational();
        self.write_stats(out);
        self.write_info(out);
        self.write_ata(out);
        Ok(())
    }
}

/// Parses one line that starts at byte `offset` of the file; `None` when it has too
/// few columns to be a device line (node_exporter skips those).
fn parse_line(line: &str, offset: usize) -> Result<Option<Disk>, String> {
    let mut words = line.split_ascii_whitespace();
    let (Some(major), Some(minor), Some(name)) = (words.next(), words.next(), words.next()) else {
        return Ok(None);
    };
    let number = |what: &str, word: &str| format!("{what}: expected a number, got {word:?}");
    let major = major.parse().map_err(|_| number("major", major))?;
    let minor = minor.parse().map_err(|_| number("minor", minor))?;
    let start = offset + (name.as_ptr() as usize - line.as_ptr() as usize);
    let mut disk = Disk {
        name: start..start + name.len(),
        major,
        minor,
        stats_len: 0,
        stats: [0; STATS.len()],
    };
    for (slot, word) in disk.stats.iter_mut().zip(words) {
        *slot = word.parse().map_err(|_| number(name, word))?;
        disk.stats_len += 1;
    }
    Ok((3 + disk.stats_len >= MIN_COLUMNS).then_some(disk))
}

/// The value of `E:<key>=<value>` in a udev database entry; the last one wins.
fn udev_property<'a>(entry: &'a str, key: &str) -> Option<&'a str> {
    entry
        .lines()
        .filter_map(|line| line.strip_prefix("E:")?.split_once('='))
        .filter(|(name, _)| *name == key)
        .map(|(_, value)| value)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;
    use crate::testing::{render, TempDir};

    const VDA: &str =
        " 254       0 vda 69364 6562 5542498 53044 6743 17607 4116880 15798 0 10712 71521 5277 51 1026136 1801 512 878\n";

    fn collector(dir: &TempDir) -> Diskstats {
        Diskstats::new(dir.path(), dir.path(), dir.path(), Filter::default())
    }

    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn a_device_listed_twice_is_reported_once() {
        let dir = TempDir::new();
        dir.write("diskstats", &format!("{VDA}{VDA}"));
        let text = render(&mut collector(&dir)).unwrap();
        let reads = series(&text)
            .into_iter()
            .filter(|l| l.starts_with("node_disk_reads_completed_total"))
            .count();
        assert_eq!(reads, 1, "{text}");
    }

    #[test]
    fn converts_every_column_like_node_exporter() {
        let dir = TempDir::new();
        dir.write("diskstats", VDA);
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(
            series(&text),
            [
                "node_disk_reads_completed_total{device=\"vda\"} 69364",
                "node_disk_reads_merged_total{device=\"vda\"} 6562",
                "node_disk_read_bytes_total{device=\"vda\"} 2837758976",
                "node_disk_read_time_seconds_total{device=\"vda\"} 53.044000000000004",
                "node_disk_writes_completed_total{device=\"vda\"} 6743",
                "node_disk_writes_merged_total{device=\"vda\"} 17607",
                "node_disk_written_bytes_total{device=\"vda\"} 2107842560",
                "node_disk_write_time_seconds_total{device=\"vda\"} 15.798",
                "node_disk_io_now{device=\"vda\"} 0",
                "node_disk_io_time_seconds_total{device=\"vda\"} 10.712",
                "node_disk_io_time_weighted_seconds_total{device=\"vda\"} 71.521",
                "node_disk_discards_completed_total{device=\"vda\"} 5277",
                "node_disk_discards_merged_total{device=\"vda\"} 51",
                "node_disk_discarded_sectors_total{device=\"vda\"} 1026136",
                "node_disk_discard_time_seconds_total{device=\"vda\"} 1.801",
                "node_disk_flush_requests_total{device=\"vda\"} 512",
                "node_disk_flush_requests_time_seconds_total{device=\"vda\"} 0.878",
                "node_disk_info{device=\"vda\",major=\"254\",minor=\"0\",model=\"\",path=\"\",revision=\"\",rotational=\"0\",serial=\"\",wwn=\"\"} 1",
            ]
        );
        assert!(text.contains(
            "# HELP node_disk_io_now The number of I/Os currently in progress.\n\
             # TYPE node_disk_io_now gauge\n"
        ));
        assert!(text.contains(
            "# HELP node_disk_flush_requests_total The total number of flush requests completed successfully\n"
        ));
    }

    #[test]
    fn exports_only_the_columns_the_line_has() {
        let dir = TempDir::new();
        dir.write(
            "diskstats",
            "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n\
                8      16 sdb 1 2 3 4 5 6 7 8 9 10 11 12\n\
                9       0 md0 1 2 3\n\n",
        );
        let text = render(&mut collector(&dir)).unwrap();
        let names: Vec<_> = series(&text)
            .iter()
            .filter(|l| l.contains("\"sda\""))
            .map(|l| l.split('{').next().unwrap())
            .collect();
        assert_eq!(names.len(), 12, "{names:?}");
        assert_eq!(names[10], "node_disk_io_time_weighted_seconds_total");
        assert!(text.contains("node_disk_discards_completed_total{device=\"sdb\"} 12\n"));
        assert!(!text.contains("discards_merged"), "{text}");
        assert!(!text.contains("md0"), "{text}");
    }

    #[test]
    fn serial_falls_back_from_scsi_ident_to_short_to_full_serial() {
        let dir = TempDir::new();
        dir.write("diskstats", VDA);
        let info = |dir: &TempDir| {
            let text = render(&mut collector(dir)).unwrap();
            let line = series(&text)
                .into_iter()
                .find(|l| l.starts_with("node_disk_info"))
                .map(str::to_owned);
            line.unwrap_or_default()
        };
        for (entry, serial) in [
            ("E:ID_SERIAL=virtio-1\nE:ID_SERIAL_SHORT=\n", "virtio-1"),
            ("E:ID_SERIAL=long\nE:ID_SERIAL_SHORT=short\n", "short"),
            ("E:SCSI_IDENT_SERIAL=label\nE:ID_SERIAL_SHORT=short\n", "label"),
            ("E:ID_MODEL=m\n", ""),
        ] {
            dir.write("run/udev/data/b254:0", entry);
            assert!(
                info(&dir).contains(&format!("serial=\"{serial}\"")),
                "{entry:?}: {}",
                info(&dir)
            );
        }
    }

    fn options(yaml: &str) -> Result<Options, String> {
        serde_yaml::from_str::<crate::collector::table::Settings>(yaml)
            .map(|s| s.diskstats.options)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_options_follow_node_exporters_flags() {
        let default = options("diskstats: {}\n").unwrap();
        assert_eq!(default, Options::default());
        assert_eq!(default.filter().exclude.unwrap().as_str(), DEVICE_EXCLUDE);
        // An include with the default exclude is refused, as node_exporter refuses it.
        let err = options("diskstats:\n  device_include: ^vd\n").unwrap_err();
        assert!(
            err.starts_with("diskstats: device_include: device_include and device_exclude exclude each other"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
        // `device_exclude: ''` (node_exporter's `--collector.diskstats.device-exclude=`)
        // drops the default.
        let include = options("diskstats: {device_include: ^vd, device_exclude: ''}\n").unwrap();
        let filter = include.filter();
        assert!(filter.exclude.is_none());
        assert!(filter.allows("vda1") && !filter.allows("sda"));
        let none = options("diskstats: {device_exclude: ''}\n").unwrap().filter();
        assert!(none.allows("loop0") && none.allows("vda1"));
        let err = options("diskstats:\n  ignored_devices: ^loop\n").unwrap_err();
        assert!(
            err.contains("ignored_devices: renamed: write `device_exclude`, node_exporter's current name for the option"),
            "{err}"
        );
    }

    #[test]
    fn filter_and_devices_coming_and_going() {
        let dir = TempDir::new();
        let filter = Filter {
            include: None,
            exclude: Some(Pattern::new(DEVICE_EXCLUDE).unwrap()),
        };
        let mut collector = Diskstats::new(dir.path(), dir.path(), dir.path(), filter);
        let loop0 = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let vda1 = " 254       1 vda1 1 0 0 0 0 0 0 0 0 0 0\n";
        dir.write("diskstats", &format!("{loop0}{VDA}{vda1}"));
        let text = render(&mut collector).unwrap();
        assert!(text.contains("{device=\"vda\"}"));
        assert!(!text.contains("loop0") && !text.contains("vda1"), "{text}");
        let vdb = " 254      16 vdb 7 0 0 0 0 0 0 0 0 0 0\n";
        dir.write("diskstats", &format!("{VDA}{vdb}"));
        let text = render(&mut collector).unwrap();
        assert!(text.contains("node_disk_reads_completed_total{device=\"vdb\"} 7\n"));
        dir.write("diskstats", vdb);
        let text = render(&mut collector).unwrap();
        assert!(!text.contains("vda"), "{text}");
    }

    #[test]
    fn labels_and_info_families_come_from_udev() {
        let dir = TempDir::new();
        dir.write(
            "diskstats",
            "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n 252 0 dm-0 1 2 3 4 5 6 7 8 9 10 11\n",
        );
        dir.write(
            "run/udev/data/b8:0",
            "S:disk/by-id/ata-QEMU_HARDDISK_QM00001\nW:2\nE:ID_ATA=1\nE:ID_MODEL=QEMU_HARDDISK\n\
             E:ID_REVISION=2.5+\nE:ID_SERIAL_SHORT=QM00001\nE:ID_WWN=0x5000c500a1b2c3d4\n\
             E:ID_PATH=pci-0000:00:01.1-ata-1\nE:ID_ATA_WRITE_CACHE=1\n\
             E:ID_ATA_WRITE_CACHE_ENABLED=0\nE:ID_ATA_ROTATION_RATE_RPM=7200\n\
             E:ID_FS_TYPE=ext4\nE:ID_FS_USAGE=filesystem\nE:ID_FS_UUID=0d9e\nE:ID_FS_VERSION=1.0\n\
             G:systemd\n",
        );
        dir.write(
            "run/udev/data/b252:0",
            "E:DM_NAME=vg0-root\nE:DM_UUID=LVM-abc\nE:DM_VG_NAME=vg0\nE:DM_LV_NAME=root\n\
             E:DM_LV_LAYER=\nE:ID_ATA=1\nE:ID_ATA_WRITE_CACHE=yes\nE:SCSI_IDENT_SERIAL=xyz\n\
             E:ID_SERIAL_SHORT=short\n",
        );
        dir.write("block/sda/queue/rotational", "1\n");
        dir.write("block/dm-0/queue/rotational", "not a number\n");
        let text = render(&mut collector(&dir)).unwrap();
        let tail: Vec<_> = series(&text)
            .into_iter()
            .filter(|l| !l.contains("_total") && !l.starts_with("node_disk_io_now"))
            .collect();
        assert_eq!(
            tail,
            [
                "node_disk_info{device=\"sda\",major=\"8\",minor=\"0\",model=\"QEMU_HARDDISK\",path=\"pci-0000:00:01.1-ata-1\",revision=\"2.5+\",rotational=\"1\",serial=\"QM00001\",wwn=\"0x5000c500a1b2c3d4\"} 1",
                "node_disk_info{device=\"dm-0\",major=\"252\",minor=\"0\",model=\"\",path=\"\",revision=\"\",rotational=\"0\",serial=\"xyz\",wwn=\"\"} 1",
                "node_disk_filesystem_info{device=\"sda\",type=\"ext4\",usage=\"filesystem\",uuid=\"0d9e\",version=\"1.0\"} 1",
                "node_disk_device_mapper_info{device=\"dm-0\",lv_layer=\"\",lv_name=\"root\",name=\"vg0-root\",uuid=\"LVM-abc\",vg_name=\"vg0\"} 1",
                "node_disk_ata_write_cache{device=\"sda\"} 1",
                "node_disk_ata_write_cache_enabled{device=\"sda\"} 0",
                "node_disk_ata_rotation_rate_rpm{device=\"sda\"} 7200",
            ]
        );
        assert!(text.contains(
            "# HELP node_disk_ata_rotation_rate_rpm ATA disk rotation rate in RPMs (0 for SSDs).\n"
        ));
    }

    #[test]
    fn huge_counters_keep_their_magnitude() {
        let dir = TempDir::new();
        dir.write(
            "diskstats",
            "8 0 sda 18446744073709551615 0 18446744073709551615 0 0 0 0 0 0 0 0\n",
        );
        let text = render(&mut collector(&dir)).unwrap();
        assert!(
            text.contains("node_disk_reads_completed_total{device=\"sda\"} 18446744073709552000\n")
        );
        assert!(text.contains("node_disk_read_bytes_total{device=\"sda\"} 9.44473296573929e21\n"));
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let dir = TempDir::new();
        for (bad, message) in [
            (
                "8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n",
                "line 2: sda: expected a number, got \"x\"",
            ),
            (
                "8 0 sda 1 2 3 4 5 6 7 8 9 10 -11\n",
                "line 2: sda: expected a number, got \"-11\"",
            ),
            (
                "a 0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
                "line 2: major: expected a number, got \"a\"",
            ),
            ("8 0 sda 1 x\n", "line 2: sda: expected a number, got \"x\""),
        ] {
            dir.write("diskstats", &format!("{VDA}{bad}"));
            let err = render(&mut collector(&dir)).unwrap_err().to_string();
            assert!(err.ends_with(message), "{bad:?}: {err}");
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = TempDir::new();
        assert!(render(&mut collector(&dir)).is_err());
    }

    #[test]
    fn udev_property_takes_the_last_value() {
        let entry = "E:A=1\nS:E:A=2\nE:B\nE:A=3=4\n";
        assert_eq!(udev_property(entry, "A"), Some("3=4"));
        assert_eq!(udev_property(entry, "B"), None);
        assert_eq!(udev_property("", "A"), None);
    }
}
