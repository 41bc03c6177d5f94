//! `node_btrfs_*{uuid}` for every mounted btrfs filesystem, from
//! `<sysfs>/fs/btrfs/<uuid>/` and, for its devices, from the btrfs ioctls on its
//! mount point ([`ioctl`]), as node_exporter 1.12's btrfs collector exports them.
//!
//! From sysfs (procfs's `btrfs.FS.Stats`), per filesystem directory (a name with a
//! `-`, so `features/` is not one):
//! - `info{label}` 1, `global_rsv_size_bytes` (`allocation/global_rsv_size`);
//! - `commits_total`, `last_commit_seconds`, `max_commit_seconds`,
//!   `commit_seconds_total` from `commit_stats` (Linux 6.0+; 0 without the file);
//! - per block group type (`data`, `metadata`, `system`) `reserved_bytes`, and per
//!   layout directory below it (`single`, `dup`, `raid1`...) `used_bytes`,
//!   `size_bytes` and `allocation_ratio` (1 for single and raid0, 2 for dup, raid1
//!   and raid10, 3 and 4 for raid1c3 and raid1c4, n/(n-1) for raid5 and n/(n-2) for
//!   raid6 with n devices, 0 otherwise), labelled `block_group_type` and `mode`;
//! - `device_size_bytes{device}`, 512 times `devices/<device>/size`, unless the
//!   ioctls answered for the filesystem.
//!
//! From the ioctls, for a filesystem node_exporter finds mounted (the first mount of
//! each source device in `<procfs>/1/mountinfo` of type btrfs, opened under
//! `<rootfs>`), matched to sysfs by fsid: `device_size_bytes`, `device_unused_bytes`
//! and `device_errors_total{type}` (write, read, flush, corruption, generation),
//! labelled `device` (the last component of the device path) and `btrfs_dev_uuid`.
//! The ioctls need no privilege beyond opening the mount point (see [`ioctl`]);
//! when they fail (a mount point the agent cannot open, no mount table), the sysfs
//! device sizes are reported instead, as node_exporter does, and the failure is
//! logged at debug level when it starts and when it ends, not every cycle.
//!
//! Quirks mirrored: the UUID is `metadata_uuid`, or the directory's name when that
//! file is missing or empty; a value file that is missing or does not parse reads 0;
//! a missing `devices/` or `allocation/<type>/` directory, an unreadable file, or a
//! `commit_stats` line that is not `<name> <number>` fails the collector. No btrfs
//! mounted (no `<uuid>` directory, or no `fs/btrfs` at all): no series and success,
//! not `ErrNoData`, as procfs's glob just matches nothing; the mount table is then
//! not read at all.
//!
//! Changed since node_exporter 1.5: the commit statistics (1.9) and the raid1c3 and
//! raid1c4 ratios (procfs; 1.5 reports 0 for them).
//!
//! Where node_exporter differs: a second directory claiming a UUID already reported
//! (a corrupt `metadata_uuid`) is skipped, where node_exporter would repeat its
//! series (and fail the scrape); procfs also reads (and can fail on) files it does
//! not export (`features/`, `nodesize`, `bytes_may_use`, ...); here only what is
//! exported is read. `device_unused_bytes` stops at 0 where Go's unsigned
//! subtraction would wrap if a device ever reported more bytes used than it has.

mod ioctl;

use super::mountinfo::{push_mount_point, MountTable};
use super::{
    list_dir, read_file_io, read_value, set_path, Build, CollectError, Collector, Context, Seen,
};
use crate::batch::{Batch, Kind};
use crate::config::collectors::NoOptions;
use std::io;
use std::path::{Path, PathBuf};

/// The block group types, the subdirectories of `allocation/`.
const BLOCK_GROUP_TYPES: [&str; 3] = ["data", "metadata", "system"];

/// The `type` label of `device_errors_total`, in the kernel's counter order.
const ERROR_TYPES: [&str; ioctl::ERROR_COUNTERS] =
    ["write", "read", "flush", "corruption", "generation"];

/// The sectors of `devices/<device>/size`: Linux's 512 bytes whatever the device's.
const SECTOR_BYTES: u64 = 512;

/// `commit_stats`'s lines node_exporter exports, in [`Filesystem::commits`] order.
const COMMIT_STATS: [&str; 4] = ["commits", "last_commit_ms", "max_commit_ms", "total_commit_ms"];

/// One layout of one block group type.
#[derive(Default)]
struct Layout {
    mode: String,
    total_bytes: u64,
    used_bytes: u64,
}

#[derive(Default)]
struct Allocation {
    reserved_bytes: u64,
    /// Slots reused; the first `len` hold this cycle's layouts.
    layouts: Vec<Layout>,
    len: usize,
}

/// What sysfs says about one filesystem. Slots are reused from cycle to cycle.
#[derive(Default)]
struct Filesystem {
    uuid: String,
    label: String,
    global_rsv_size: u64,
    commits: [u64; COMMIT_STATS.len()],
    allocations: [Allocation; BLOCK_GROUP_TYPES.len()],
    /// `devices/` entries and their sizes in bytes, the first `devices_len`.
    devices: Vec<(String, u64)>,
    devices_len: usize,
}

/// What the ioctls say about one mounted filesystem.
#[derive(Default)]
struct Mounted {
    /// The fsid, 32 hex digits.
    fsid: String,
    devices: Vec<ioctl::Device>,
    len: usize,
}

pub struct Btrfs {
    /// `<sysfs>/fs/btrfs`.
    dir: PathBuf,
    /// `<rootfs>` without trailing `/`, for mount points.
    root_text: String,
    table: MountTable,
    path: PathBuf,
    value: String,
    names: Vec<String>,
    /// The listings inside one filesystem directory.
    entries: Vec<String>,
    filesystems: Vec<Filesystem>,
    len: usize,
    mounted: Vec<Mounted>,
    mounted_len: usize,
    /// Mount sources already asked this cycle, and the mount point being built.
    sources: Vec<String>,
    mount_point: String,
    /// The last ioctl failure logged, to log each change once.
    ioctl_error: Option<String>,
    /// UUIDs already reported this cycle: two directories claiming one (a corrupt
    /// `metadata_uuid`) would repeat every series.
    seen: Seen,
}

impl Btrfs {
    pub fn new(procfs: &Path, sysfs: &Path, rootfs: &Path) -> Self {
        let root = rootfs.to_string_lossy();
        Btrfs {
            dir: sysfs.join("fs/btrfs"),
            root_text: root.trim_end_matches('/').to_owned(),
            table: MountTable::new(procfs),
            path: PathBuf::new(),
            value: String::new(),
            names: Vec::new(),
            entries: Vec::new(),
            filesystems: Vec::new(),
            len: 0,
            mounted: Vec::new(),
            mounted_len: 0,
            sources: Vec::new(),
            mount_point: String::new(),
            ioctl_error: None,
            seen: Seen::default(),
        }
    }

    /// Reads every filesystem directory of `<sysfs>/fs/btrfs`.
    fn read_sysfs(&mut self) -> Result<(), CollectError> {
        self.len = 0;
        let has_dash = |_: &std::fs::DirEntry, name: &str| name.contains('-');
        let Ok(listed) = list_dir(&self.dir, &mut self.names, has_dash) else {
            // No btrfs module, or no sysfs: nothing to report, as node_exporter's glob.
            return Ok(());
        };
        self.seen.clear();
        for index in 0..listed {
            if self.filesystems.len() <= self.len {
                self.filesystems.push(Filesystem::default());
            }
            let mut reader = Reader {
                base: &self.dir,
                path: &mut self.path,
                value: &mut self.value,
                names: &mut self.entries,
            };
            let fs = &mut self.filesystems[self.len];
            reader.filesystem(&self.names[index], fs)?;
            if self.seen.first(&fs.uuid) {
                self.len += 1;
            }
        }
        Ok(())
    }

    /// Asks the mounted btrfs filesystems for their devices; on failure keeps what
    /// was found and says why.
    fn read_ioctls(&mut self) -> Result<(), String> {
        self.mounted_len = 0;
        self.table.read().map_err(|e| e.to_string())?;
        let mut sources = 0;
        let mut failure = None;
        for mount in self.table.mounts() {
            // node_exporter gives up on the ioctls when the table does not parse.
            let mount = match mount {
                Ok(mount) => mount,
                Err(e) => {
                    self.mounted_len = 0;
                    return Err(e.to_string());
                }
            };
            if mount.fs_type != "btrfs" || self.sources[..sources].iter().any(|s| s == mount.source)
            {
                continue;
            }
            // `<rootfs>` + the mount point as node_exporter labels it.
            self.mount_point.clear();
            self.mount_point.push_str(&self.root_text);
            push_mount_point(&mut self.mount_point, mount.mount_point, &self.root_text);
            if self.mounted.len() <= self.mounted_len {
                self.mounted.push(Mounted::default());
            }
            let slot = &mut self.mounted[self.mounted_len];
            match ioctl::read(Path::new(&self.mount_point), &mut slot.fsid, &mut slot.devices) {
                Ok(len) => slot.len = len,
                // Perhaps another mount point of it can be opened.
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            }
            let fsid = &self.mounted[self.mounted_len].fsid;
            if self.mounted[..self.mounted_len].iter().any(|m| m.fsid == *fsid) {
                continue;
            }
            if self.sources.len() <= sources {
                self.sources.push(String::new());
            }
            self.sources[sources].clear();
            self.sources[sources].push_str(mount.source);
            sources += 1;
            self.mounted_len += 1;
        }
        failure.map_or(Ok(()), Err)
    }

    /// The ioctl answers for the filesystem whose sysfs UUID is `uuid`.
    fn mounted(&self, uuid: &str) -> Option<&Mounted> {
        let undashed = || uuid.bytes().filter(|b| *b != b'-');
        self.mounted[..self.mounted_len]
            .iter()
            .find(|m| m.fsid.bytes().eq(undashed()))
    }

    fn log_ioctl_result(&mut self, result: Result<(), String>) {
        match (result, self.ioctl_error.is_some()) {
            (Ok(()), true) => {
                log::debug!("btrfs device statistics: the ioctls answer again");
                self.ioctl_error = None;
            }
            (Err(e), _) if self.ioctl_error.as_deref() != Some(e.as_str()) => {
                log::debug!(
                    "btrfs device statistics: {e}; reporting the device sizes of sysfs instead"
                );
                self.ioctl_error = Some(e);
            }
            _ => {}
        }
    }

    fn write(&self, out: &mut Batch) {
        let filesystems = &self.filesystems[..self.len];
        let mut family = out.family("node_btrfs_info", "Filesystem information", Kind::Gauge);
        for fs in filesystems {
            family.sample(&[("uuid", &fs.uuid), ("label", &fs.label)], 1.0);
        }
        let mut family = out.family(
            "node_btrfs_global_rsv_size_bytes",
            "Size of global reserve.",
            Kind::Gauge,
        );
        for fs in filesystems {
            family.sample(&[("uuid", &fs.uuid)], fs.global_rsv_size as f64);
        }
        for (index, (name, help, kind, seconds)) in [
            ("node_btrfs_commits_total", "The total number of commits that have occurred.", Kind::Counter, false),
            ("node_btrfs_last_commit_seconds", "Duration of the most recent commit, in seconds.", Kind::Gauge, true),
            ("node_btrfs_max_commit_seconds", "Duration of the slowest commit, in seconds.", Kind::Gauge, true),
            ("node_btrfs_commit_seconds_total", "Sum of the duration of all commits, in seconds.", Kind::Counter, true),
        ]
        .into_iter()
        .enumerate()
        {
            let mut family = out.family(name, help, kind);
            for fs in filesystems {
                let value = fs.commits[index] as f64;
                let value = if seconds { value / 1000.0 } else { value };
                family.sample(&[("uuid", &fs.uuid)], value);
            }
        }
        let mut family = out.family(
            "node_btrfs_reserved_bytes",
            "Amount of space reserved for a data type",
            Kind::Gauge,
        );
        for fs in filesystems {
            for (kind, allocation) in BLOCK_GROUP_TYPES.iter().zip(&fs.allocations) {
                family.sample(
                    &[("uuid", &fs.uuid), ("block_group_type", kind)],
                    allocation.reserved_bytes as f64,
                );
            }
        }
        for (name, help, value) in [
            ("node_btrfs_used_bytes", "Amount of used space by a layout/data type", LayoutValue::Used),
            ("node_btrfs_size_bytes", "Amount of space allocated for a layout/data type", LayoutValue::Total),
            ("node_btrfs_allocation_ratio", "Data allocation ratio for a layout/data type", LayoutValue::Ratio),
        ] {
            let mut family = out.family(name, help, Kind::Gauge);
            for fs in filesystems {
                for (kind, allocation) in BLOCK_GROUP_TYPES.iter().zip(&fs.allocations) {
                    for layout in &allocation.layouts[..allocation.len] {
                        let number = match value {
                            LayoutValue::Used => layout.used_bytes as f64,
                            LayoutValue::Total => layout.total_bytes as f64,
                            LayoutValue::Ratio => ratio(&layout.mode, fs.devices_len),
                        };
                        family.sample(
                            &[("uuid", &fs.uuid), ("block_group_type", kind), ("mode", &layout.mode)],
                            number,
                        );
                    }
                }
            }
        }
        self.write_devices(out, filesystems);
    }

    fn write_devices(&self, out: &mut Batch, filesystems: &[Filesystem]) {
        let mut family = out.family(
            "node_btrfs_device_size_bytes",
            "Size of a device that is part of the filesystem.",
            Kind::Gauge,
        );
        for fs in filesystems {
            match self.mounted(&fs.uuid) {
                Some(mounted) => {
                    for device in &mounted.devices[..mounted.len] {
                        family.sample(
                            &[("uuid", &fs.uuid), ("device", &device.name), ("btrfs_dev_uuid", &device.uuid)],
                            device.total_bytes as f64,
                        );
                    }
                }
                None => {
                    for (name, size) in &fs.devices[..fs.devices_len] {
                        family.sample(&[("uuid", &fs.uuid), ("device", name)], *size as f64);
                    }
                }
            }
        }
        let mounted = || {
            filesystems
                .iter()
                .filter_map(|fs| Some((fs, self.mounted(&fs.uuid)?)))
                .flat_map(|(fs, m)| m.devices[..m.len].iter().map(move |d| (fs, d)))
        };
        let mut family = out.family(
            "node_btrfs_device_unused_bytes",
            "Unused bytes unused on a device that is part of the filesystem.",
            Kind::Gauge,
        );
        for (fs, device) in mounted() {
            family.sample(
                &[("uuid", &fs.uuid), ("device", &device.name), ("btrfs_dev_uuid", &device.uuid)],
                device.total_bytes.saturating_sub(device.bytes_used) as f64,
            );
        }
        let mut family = out.family(
            "node_btrfs_device_errors_total",
            "Errors reported for the device",
            Kind::Counter,
        );
        for (fs, device) in mounted() {
            for (kind, count) in ERROR_TYPES.iter().zip(device.errors) {
                family.sample(
                    &[
                        ("uuid", &fs.uuid),
                        ("type", kind),
                        ("device", &device.name),
                        ("btrfs_dev_uuid", &device.uuid),
                    ],
                    count as f64,
                );
            }
        }
    }
}

#[derive(Clone, Copy)]
enum LayoutValue {
    Used,
    Total,
    Ratio,
}

/// procfs's `calcRatio`: raw bytes per byte of data for a layout over `devices`.
fn ratio(mode: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid1c3" => 3.0,
        "raid1c4" => 4.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

/// Reads the files of one filesystem directory, with procfs's leniency.
struct Reader<'a> {
    base: &'a Path,
    path: &'a mut PathBuf,
    value: &'a mut String,
    /// Directory listings, slots reused.
    names: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn filesystem(&mut self, name: &str, fs: &mut Filesystem) -> Result<(), CollectError> {
        let mut devices = std::mem::take(self.names);
        let result = self.list(&[name, "devices"], &mut devices, |_, _| true);
        let result = result.and_then(|count| {
            fs.devices_len = 0;
            for device in &devices[..count] {
                let size = self.number(&[name, "devices", device, "size"])?;
                if fs.devices.len() <= fs.devices_len {
                    fs.devices.push((String::new(), 0));
                }
                let slot = &mut fs.devices[fs.devices_len];
                slot.0.clear();
                slot.0.push_str(device);
                slot.1 = size.wrapping_mul(SECTOR_BYTES);
                fs.devices_len += 1;
            }
            Ok(())
        });
        *self.names = devices;
        result?;
        fs.label.clear();
        if let Some(label) = self.text(&[name, "label"])? {
            fs.label.push_str(label);
        }
        fs.uuid.clear();
        match self.text(&[name, "metadata_uuid"])? {
            Some(uuid) if !uuid.is_empty() => fs.uuid.push_str(uuid),
            _ => fs.uuid.push_str(name),
        }
        fs.global_rsv_size = self.number(&[name, "allocation", "global_rsv_size"])?;
        for (kind, allocation) in BLOCK_GROUP_TYPES.iter().zip(&mut fs.allocations) {
            self.allocation(name, kind, allocation)?;
        }
        self.commit_stats(name, &mut fs.commits)
    }

    fn allocation(
        &mut self,
        name: &str,
        kind: &str,
        allocation: &mut Allocation,
    ) -> Result<(), CollectError> {
        allocation.reserved_bytes = self.number(&[name, "allocation", kind, "bytes_reserved"])?;
        let mut modes = std::mem::take(self.names);
        let is_dir =
            |entry: &std::fs::DirEntry, _: &str| entry.file_type().is_ok_and(|t| t.is_dir());
        let result = self.list(&[name, "allocation", kind], &mut modes, is_dir);
        let result = result.and_then(|count| {
            allocation.len = 0;
            for mode in &modes[..count] {
                let total_bytes = self.number(&[name, "allocation", kind, mode, "total_bytes"])?;
                let used_bytes = self.number(&[name, "allocation", kind, mode, "used_bytes"])?;
                if allocation.layouts.len() <= allocation.len {
                    allocation.layouts.push(Layout::default());
                }
                let layout = &mut allocation.layouts[allocation.len];
                layout.mode.clear();
                layout.mode.push_str(mode);
                layout.total_bytes = total_bytes;
                layout.used_bytes = used_bytes;
                allocation.len += 1;
            }
            Ok(())
        });
        *self.names = modes;
        result
    }

    /// Lists a directory that must exist, as procfs's `listFiles`.
    fn list(
        &mut self,
        parts: &[&str],
        names: &mut Vec<String>,
        keep: impl Fn(&std::fs::DirEntry, &str) -> bool,
    ) -> Result<usize, CollectError> {
        set_path(self.path, self.base, parts);
        list_dir(self.path, names, keep).map_err(|e| CollectError::io(self.path, &e))
    }

    /// `commit_stats`: `commits 12` lines; a missing file (before Linux 6.0) is zeros.
    fn commit_stats(&mut self, name: &str, commits: &mut [u64; COMMIT_STATS.len()]) -> Result<(), CollectError> {
        *commits = [0; COMMIT_STATS.len()];
        set_path(self.path, self.base, &[name, "commit_stats"]);
        match read_file_io(self.path, self.value) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CollectError::io(self.path, &e)),
        }
        for (index, line) in self.value.lines().enumerate() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(key), Some(number), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(CollectError::parse(
                    self.path,
                    index + 1,
                    format!("expected `<name> <number>`, got {line:?}"),
                ));
            };
            let number: u64 = number.parse().map_err(|_| {
                CollectError::parse(self.path, index + 1, format!("{key}: expected a whole number, got {number:?}"))
            })?;
            if let Some(at) = COMMIT_STATS.iter().position(|k| *k == key) {
                commits[at] = number;
            }
        }
        Ok(())
    }

    /// A file's text without surrounding whitespace; `None` when it does not exist.
    fn text(&mut self, parts: &[&str]) -> Result<Option<&str>, CollectError> {
        set_path(self.path, self.base, parts);
        match read_value(self.path, self.value) {
            Ok(_) => Ok(Some(self.value.trim())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CollectError::io(self.path, &e)),
        }
    }

    /// A number file; 0 when it does not exist or does not parse, as in procfs.
    fn number(&mut self, parts: &[&str]) -> Result<u64, CollectError> {
        Ok(self
            .text(parts)?
            .and_then(|text| text.parse().ok())
            .unwrap_or(0))
    }
}

impl Build for Btrfs {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &[
        "sys/fs/btrfs/edcb1ec0-8e24-47dc-a421-a58faf5b8f56/commit_stats",
        "sys/fs/btrfs/edcb1ec0-8e24-47dc-a421-a58faf5b8f56/metadata_uuid",
    ];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        let paths = context.paths;
        Btrfs::new(&paths.procfs, &paths.sysfs, &paths.rootfs)
    }
}

impl Collector for Btrfs {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.read_sysfs()?;
        if self.len == 0 {
            self.mounted_len = 0;
            return Ok(());
        }
        let result = self.read_ioctls();
        self.log_ioctl_result(result);
        self.write(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const UUID: &str = "0abb23a9-579b-43e6-ad30-227ef47fcb9d";

    /// A two-device raid1 filesystem as Linux 6.x lays it out in sysfs.
    fn write_filesystem(dir: &TempDir, uuid: &str) {
        let fs = format!("sys/fs/btrfs/{uuid}");
        for (file, text) in [
            ("label", "fixture\n"),
            ("metadata_uuid", &format!("{uuid}\n")),
            ("devices/loop25/size", "20971520\n"),
            ("devices/loop26/size", "20971520\n"),
            ("allocation/global_rsv_size", "16777216\n"),
            ("allocation/data/bytes_reserved", "0\n"),
            ("allocation/data/raid1/total_bytes", "2147483648\n"),
            ("allocation/data/raid1/used_bytes", "808189952\n"),
            ("allocation/metadata/bytes_reserved", "16384\n"),
            ("allocation/metadata/raid1/total_bytes", "1073741824\n"),
            ("allocation/metadata/raid1/used_bytes", "933888\n"),
            ("allocation/system/bytes_reserved", "0\n"),
            ("allocation/system/raid1/total_bytes", "8388608\n"),
            ("allocation/system/raid1/used_bytes", "16384\n"),
            (
                "commit_stats",
                "commits 258051\ncur_commit_ms 0\nlast_commit_ms 1000\nmax_commit_ms 51462\ntotal_commit_ms 47836090\n",
            ),
        ] {
            dir.write(&format!("{fs}/{file}"), text);
        }
        std::fs::create_dir_all(dir.path().join(format!("sys/fs/btrfs/{uuid}/features"))).unwrap();
    }

    fn collector(dir: &TempDir) -> Btrfs {
        let (proc, sys) = (dir.path().join("proc"), dir.path().join("sys"));
        Btrfs::new(&proc, &sys, &dir.path().join("root"))
    }

    fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .collect()
    }

    #[test]
    fn exports_sysfs_like_node_exporter() {
        let dir = TempDir::new();
        write_filesystem(&dir, UUID);
        std::fs::create_dir_all(dir.path().join("sys/fs/btrfs/features")).unwrap();
        let text = render(&mut collector(&dir)).unwrap();
        let uuid = format!("uuid=\"{UUID}\"");
        assert_eq!(
            series(&text, "node_btrfs_info"),
            [format!("node_btrfs_info{{label=\"fixture\",{uuid}}} 1")]
        );
        for (name, value) in [
            ("node_btrfs_global_rsv_size_bytes", "16777216"),
            ("node_btrfs_commits_total", "258051"),
            ("node_btrfs_last_commit_seconds", "1"),
            ("node_btrfs_max_commit_seconds", "51.462"),
            ("node_btrfs_commit_seconds_total", "47836.09"),
        ] {
            assert_eq!(series(&text, name), [format!("{name}{{{uuid}}} {value}")]);
        }
        assert_eq!(
            series(&text, "node_btrfs_reserved_bytes"),
            [
                format!("node_btrfs_reserved_bytes{{block_group_type=\"data\",{uuid}}} 0"),
                format!("node_btrfs_reserved_bytes{{block_group_type=\"metadata\",{uuid}}} 16384"),
                format!("node_btrfs_reserved_bytes{{block_group_type=\"system\",{uuid}}} 0"),
            ]
        );
        assert_eq!(
            series(&text, "node_btrfs_used_bytes")[0],
            format!("node_btrfs_used_bytes{{block_group_type=\"data\",mode=\"raid1\",{uuid}}} 808189952")
        );
        assert_eq!(
            series(&text, "node_btrfs_size_bytes")[2],
            format!("node_btrfs_size_bytes{{block_group_type=\"system\",mode=\"raid1\",{uuid}}} 8388608")
        );
        assert_eq!(series(&text, "node_btrfs_allocation_ratio").len(), 3);
        assert!(series(&text, "node_btrfs_allocation_ratio")
            .iter()
            .all(|l| l.ends_with("} 2")));
        // No mount table here: the device sizes come from sysfs, without dev UUIDs.
        assert_eq!(
            series(&text, "node_btrfs_device_size_bytes"),
            [
                format!("node_btrfs_device_size_bytes{{device=\"loop25\",{uuid}}} 10737418240"),
                format!("node_btrfs_device_size_bytes{{device=\"loop26\",{uuid}}} 10737418240"),
            ]
        );
        assert!(!text.contains("device_errors_total{"), "{text}");
        for (name, kind) in [
            ("node_btrfs_info", "gauge"),
            ("node_btrfs_commits_total", "counter"),
            ("node_btrfs_commit_seconds_total", "counter"),
            ("node_btrfs_last_commit_seconds", "gauge"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
    }

    #[test]
    fn a_uuid_claimed_twice_is_reported_once() {
        let dir = TempDir::new();
        write_filesystem(&dir, UUID);
        write_filesystem(&dir, "1abb23a9-579b-43e6-ad30-227ef47fcb9d");
        dir.write("sys/fs/btrfs/1abb23a9-579b-43e6-ad30-227ef47fcb9d/metadata_uuid", UUID);
        let text = render(&mut collector(&dir)).unwrap();
        assert_eq!(series(&text, "node_btrfs_info").len(), 1, "{text}");
        assert_eq!(series(&text, "node_btrfs_device_size_bytes").len(), 2);
    }

    #[test]
    fn ratios_follow_procfs() {
        for (mode, devices, ratio_expected) in [
            ("single", 1, 1.0),
            ("raid0", 4, 1.0),
            ("dup", 1, 2.0),
            ("raid10", 4, 2.0),
            ("raid1c3", 3, 3.0),
            ("raid1c4", 4, 4.0),
            ("raid5", 3, 1.5),
            ("raid6", 4, 2.0),
            ("mixed", 2, 0.0),
        ] {
            assert_eq!(ratio(mode, devices), ratio_expected, "{mode}");
        }
        assert_eq!(ratio("raid5", 1), f64::INFINITY);
    }

    #[test]
    fn missing_files_read_as_zero_or_the_directory_name() {
        let dir = TempDir::new();
        write_filesystem(&dir, UUID);
        let fs = dir.path().join(format!("sys/fs/btrfs/{UUID}"));
        for file in ["label", "metadata_uuid", "commit_stats", "allocation/global_rsv_size"] {
            std::fs::remove_file(fs.join(file)).unwrap();
        }
        std::fs::write(fs.join("devices/loop26/size"), "lots\n").unwrap();
        let text = render(&mut collector(&dir)).unwrap();
        let uuid = format!("uuid=\"{UUID}\"");
        assert!(text.contains(&format!("node_btrfs_info{{label=\"\",{uuid}}} 1\n")), "{text}");
        assert!(text.contains(&format!("node_btrfs_commits_total{{{uuid}}} 0\n")));
        assert!(text.contains(&format!("node_btrfs_global_rsv_size_bytes{{{uuid}}} 0\n")));
        assert!(text.contains(&format!("node_btrfs_device_size_bytes{{device=\"loop26\",{uuid}}} 0\n")));
    }

    #[test]
    fn no_btrfs_is_success_without_series() {
        let dir = TempDir::new();
        assert_eq!(render(&mut collector(&dir)).unwrap(), "");
        // The module loaded, nothing mounted: only features/ (no dash).
        std::fs::create_dir_all(dir.path().join("sys/fs/btrfs/features")).unwrap();
        assert_eq!(render(&mut collector(&dir)).unwrap(), "");
    }

    #[test]
    fn broken_trees_fail_naming_what() {
        for (breaking, message) in [
            ("devices", "devices: "),
            ("allocation/metadata", "allocation/metadata: "),
        ] {
            let dir = TempDir::new();
            write_filesystem(&dir, UUID);
            std::fs::remove_dir_all(dir.path().join(format!("sys/fs/btrfs/{UUID}/{breaking}"))).unwrap();
            let err = render(&mut collector(&dir)).unwrap_err().to_string();
            assert!(err.contains(message), "{breaking}: {err}");
        }
        let dir = TempDir::new();
        write_filesystem(&dir, UUID);
        let commit_stats = format!("sys/fs/btrfs/{UUID}/commit_stats");
        for (bad, message) in [
            ("commits 1 2\n", "commit_stats line 1: expected `<name> <number>`, got \"commits 1 2\""),
            ("commits 1\nmax_commit_ms x\n", "commit_stats line 2: max_commit_ms: expected a whole number, got \"x\""),
        ] {
            dir.write(&commit_stats, bad);
            let err = render(&mut collector(&dir)).unwrap_err().to_string();
            assert!(err.ends_with(message), "{err}");
        }
    }

    #[test]
    fn without_mounts_the_ioctl_failure_is_kept_once() {
        let dir = TempDir::new();
        write_filesystem(&dir, UUID);
        let mut btrfs = collector(&dir);
        render(&mut btrfs).unwrap();
        let first = btrfs.ioctl_error.clone();
        assert!(first.as_deref().is_some_and(|e| e.contains("mountinfo")), "{first:?}");
        render(&mut btrfs).unwrap();
        assert_eq!(btrfs.ioctl_error, first);
        // A mount table without btrfs mounts: nothing to ask, nothing failing.
        dir.write("proc/1/mountinfo", "1 0 8:1 / / rw - ext4 /dev/vda rw\n");
        render(&mut btrfs).unwrap();
        assert_eq!(btrfs.ioctl_error, None);
        // A btrfs mount whose mount point is not btrfs (or is missing): sysfs sizes.
        dir.write(
            "proc/1/mountinfo",
            "1 0 0:40 / /srv rw - btrfs /dev/loop25 rw\n2 0 0:41 / /gone rw - btrfs /dev/loop9 rw\n",
        );
        std::fs::create_dir_all(dir.path().join("root/srv")).unwrap();
        let text = render(&mut btrfs).unwrap();
        let error = btrfs.ioctl_error.clone().unwrap_or_default();
        assert!(error.starts_with("BTRFS_IOC_FS_INFO: "), "{error}");
        assert_eq!(series(&text, "node_btrfs_device_size_bytes").len(), 2);
    }
}
