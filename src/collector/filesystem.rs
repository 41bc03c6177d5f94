//! `node_filesystem_*` for every mounted filesystem: the mount table from
//! `<procfs>/1/mountinfo` (or `<procfs>/self/mountinfo` when that is missing, as under
//! `hidepid`; see [`mountinfo`](super::mountinfo)), then statfs(2) on `<rootfs>` +
//! mount point.
//!
//! Families, as node_exporter 1.12 names them, labelled `device`, `device_error`,
//! `fstype`, `mountpoint`: `size_bytes`, `free_bytes`, `avail_bytes` (blocks times
//! `f_bsize`), `files`, `files_free`, `purgeable_bytes` (always 0 on Linux: it is
//! macOS's purgeable space, but node_exporter writes the family on every platform),
//! `readonly`, `device_error`; and `node_filesystem_mount_info{device,major,minor,
//! mountpoint}` 1 for each mount statfs answered for.
//!
//! `device_error` is 1, and the label `device_error` says why, when statfs failed
//! (Go's text for the errno: `no such file or directory`, `permission denied`) or the
//! mount is stuck (`mountpoint timeout`); such a mount has only `readonly` (0 when
//! stuck) and `device_error`. Otherwise the label is empty.
//!
//! Quirks mirrored:
//! - a mount whose mount point or type the configured includes and excludes filter
//!   out is skipped (node_exporter 1.9 added the includes);
//! - in a mount point, `\040` becomes a space and `\011` a tab; other escapes
//!   (`\012`, `\134`) stay as the kernel wrote them;
//! - a mount point under `<rootfs>` is reported without that prefix, `<rootfs>`
//!   itself as `/`, so a containerised agent reports the host's paths (node_exporter
//!   strips the prefix as a plain string, turning `/hostile` under `/host` into
//!   `ile`; here it is stripped only at a `/`);
//! - a mount listed twice with the same device, mount point and type (an overmount
//!   with other options) is reported once, the first; the same mount point with
//!   another device is reported again (node_exporter does both). node_exporter also
//!   tells two such mounts apart by device number, which repeats every series but
//!   `mount_info` (its labels are the same), and reports `mount_info` per mount,
//!   which repeats it for two types mounted from one device on one mount point; a
//!   receiver refuses the request that repeats a series, so here the device number
//!   does not make a mount new and `mount_info` is reported once per its labels.
//!
//! Changed since node_exporter 1.5: mountinfo instead of /proc/1/mounts (1.9), the
//! `device_error` label (1.8), `mount_info` and `purgeable_bytes` (1.9), `readonly`
//! also for a mount statfs fails on (1.7), `erofs` among the excluded types.
//!
//! Where node_exporter differs: 1.9 and later decide `readonly` by joining the mount
//! options without commas before splitting them on commas, so only a mount whose
//! options are `ro` and nothing else reads as read-only; here `readonly` is 1 when
//! `ro` is among the per-mount or the superblock options, which is what that code
//! means and what 1.5 reported from /proc/1/mounts.
//!
//! statfs goes through [`TimedStatfs`](super::statfs): on the loop thread for local
//! filesystems, whose statfs answers from memory; on a worker, time-boxed by
//! `mount_timeout`, for network, user-space and unknown ones, so that a hung mount
//! (a dead NFS server) is reported with `device_error 1` and skipped until its call
//! returns, and never stalls the loop. Unlike node_exporter,
//! whose scrape blocks on the hung call, only the cycle that meets a newly hung mount
//! waits, `mount_timeout` for each such mount.

use super::mountinfo::{push_mount_point, MountTable};
use super::statfs::{FsStats, Outcome, StatfsFn, StuckMounts, TimedStatfs};
use super::{Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::pattern::{self, Filter, Pattern};
use crate::config::Millis;
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// node_exporter's default mount points to leave out: `($|/)` also leaves out what
/// lies below them (/dev/shm, /proc/sys/fs/binfmt_misc).
pub const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default filesystem types to leave out.
pub const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

/// `collectors.filesystem`: node_exporter's `--collector.filesystem.*` flags. Each
/// include and exclude pair works as node_exporter 1.9 and later read the two flags:
/// an include written without its exclude drops the exclude's default, both written
/// with a regex are refused, and an empty regex is no filter. The mount point matched
/// is the one reported (without `<rootfs>`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    #[serde(deserialize_with = "pattern::filter")]
    pub mount_points_exclude: Option<Pattern>,
    #[serde(deserialize_with = "pattern::filter")]
    pub mount_points_include: Option<Pattern>,
    #[serde(deserialize_with = "pattern::filter")]
    pub fs_types_exclude: Option<Pattern>,
    #[serde(deserialize_with = "pattern::filter")]
    pub fs_types_include: Option<Pattern>,
    /// How long one statfs may take before the mount is reported as stuck.
    pub mount_timeout: Millis,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // The defaults are constants checked by the tests below.
            mount_points_exclude: Pattern::new(MOUNT_POINTS_EXCLUDE).ok(),
            mount_points_include: None,
            fs_types_exclude: Pattern::new(FS_TYPES_EXCLUDE).ok(),
            fs_types_include: None,
            mount_timeout: Millis::from_millis(5_000),
        }
    }
}

impl Options {
    fn mount_points(&self) -> Filter {
        Filter {
            include: self.mount_points_include.clone(),
            exclude: self.mount_points_exclude.clone(),
        }
    }

    fn fs_types(&self) -> Filter {
        Filter {
            include: self.fs_types_include.clone(),
            exclude: self.fs_types_exclude.clone(),
        }
    }
}

impl collectors::Options for Options {
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("ignored_mount_points", "mount_points_exclude"),
        ("ignored_fs_types", "fs_types_exclude"),
    ];

    fn resolve(&mut self, written: &dyn Fn(&str) -> bool) -> Result<(), String> {
        pattern::resolve_pair(
            written,
            ("mount_points_include", &self.mount_points_include),
            ("mount_points_exclude", &mut self.mount_points_exclude),
        )?;
        pattern::resolve_pair(
            written,
            ("fs_types_include", &self.fs_types_include),
            ("fs_types_exclude", &mut self.fs_types_exclude),
        )
    }

    fn check(&self) -> Result<(), String> {
        if self.mount_timeout.as_duration().is_zero() {
            return Err("mount_timeout: expected a duration above 0s".to_owned());
        }
        Ok(())
    }
}

/// One mount to report this cycle: label values as ranges of `Filesystem::labels`.
struct Mount {
    device: Range<usize>,
    mount_point: Range<usize>,
    fs_type: Range<usize>,
    major: u32,
    minor: u32,
    readonly: bool,
    /// The `device_error` label: empty when statfs answered.
    device_error: Range<usize>,
    /// `None` when statfs failed or the mount is stuck: `device_error 1`.
    stats: Option<FsStats>,
}

pub struct Filesystem {
    table: MountTable,
    /// `<rootfs>` as text without trailing `/`, stripped from mount points; empty
    /// when it is `/`.
    root_text: String,
    mount_points: Filter,
    fs_types: Filter,
    statfs: TimedStatfs,
    /// This cycle's label values, which `list` refers to.
    labels: String,
    list: Vec<Mount>,
}

impl Build for Filesystem {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/1/mountinfo"];

    fn build(context: &Context<'_>, options: &Options) -> Self {
        let resources = context.resources;
        Filesystem::new(
            &context.paths.procfs,
            &context.paths.rootfs,
            options,
            resources.stuck_mounts.clone(),
            resources.statfs.clone(),
        )
    }
}

impl Filesystem {
    /// Reads the mounts under `procfs` and statfs()es them under `rootfs` with
    /// `statfs`, sharing `stuck` with the collectors before and after it.
    pub fn new(
        procfs: &Path,
        rootfs: &Path,
        options: &Options,
        stuck: StuckMounts,
        statfs: StatfsFn,
    ) -> Self {
        let root = root_text(rootfs);
        Filesystem {
            table: MountTable::new(procfs),
            statfs: TimedStatfs::new(
                OsStr::from_bytes(root.as_bytes()).to_owned(),
                options.mount_timeout.as_duration(),
                statfs,
                stuck,
            ),
            root_text: root,
            mount_points: options.mount_points(),
            fs_types: options.fs_types(),
            labels: String::new(),
            list: Vec::new(),
        }
    }

    fn excluded(&self, mount_point: &str, fs_type: &str) -> bool {
        !self.mount_points.allows(mount_point) || !self.fs_types.allows(fs_type)
    }

    /// Whether a mount with these labels is already in this cycle's list.
    fn listed(&self, device: &str, mount_point: &str, fs_type: &str) -> bool {
        let labels = &self.labels;
        self.list.iter().any(|m| {
            labels[m.mount_point.clone()] == *mount_point
                && labels[m.device.clone()] == *device
                && labels[m.fs_type.clone()] == *fs_type
        })
    }

    /// Adds one mount, unless it is filtered out or a duplicate.
    fn add_mount(&mut self, mount: &super::mountinfo::Mount<'_>) -> Result<(), CollectError> {
        let start = self.labels.len();
        let mount_point = push_mount_point(&mut self.labels, mount.mount_point, &self.root_text);
        let text = &self.labels[mount_point.clone()];
        if self.excluded(text, mount.fs_type) || self.listed(mount.source, text, mount.fs_type) {
            self.labels.truncate(start);
            return Ok(());
        }
        let device = push(&mut self.labels, mount.source);
        let fs_type = push(&mut self.labels, mount.fs_type);
        let outcome = self.statfs.stat(
            &self.labels[mount_point.clone()],
            &self.labels[fs_type.clone()],
        )?;
        let error_start = self.labels.len();
        let (stats, readonly) = match outcome {
            Outcome::Stats(stats) => (Some(stats), mount.read_only()),
            Outcome::Failed(errno) => {
                push_error_text(&mut self.labels, errno);
                (None, mount.read_only())
            }
            // node_exporter does not look at a stuck mount's options.
            Outcome::Stuck => {
                self.labels.push_str("mountpoint timeout");
                (None, false)
            }
        };
        self.list.push(Mount {
            device,
            mount_point,
            fs_type,
            major: mount.major,
            minor: mount.minor,
            readonly,
            device_error: error_start..self.labels.len(),
            stats,
        });
        Ok(())
    }

    /// Builds this cycle's list of mounts from the mount table.
    fn list_mounts(&mut self) -> Result<(), CollectError> {
        self.table.read()?;
        let table = std::mem::take(&mut self.table);
        let result = table
            .mounts()
            .try_for_each(|mount| self.add_mount(&mount?));
        self.table = table;
        result
    }
}

/// `<rootfs>` without trailing `/`s, as text; empty for `/`.
fn root_text(rootfs: &Path) -> String {
    let bytes = rootfs.as_os_str().as_bytes();
    let root = &bytes[..bytes.len() - bytes.iter().rev().take_while(|b| **b == b'/').count()];
    String::from_utf8_lossy(root).into_owned()
}

fn push(labels: &mut String, text: &str) -> Range<usize> {
    let start = labels.len();
    labels.push_str(text);
    start..labels.len()
}

/// Appends what node_exporter puts in the `device_error` label for a failed statfs:
/// Go's text for the errno (`err.Error()`), which is glibc's with a lower-case first
/// letter, or `errno N` for one Go does not name.
fn push_error_text(labels: &mut String, errno: Option<i32>) {
    use nix::libc;
    let text = match errno {
        None => "statfs failed",
        Some(libc::EPERM) => "operation not permitted",
        Some(libc::ENOENT) => "no such file or directory",
        Some(libc::EINTR) => "interrupted system call",
        Some(libc::EIO) => "input/output error",
        Some(libc::ENXIO) => "no such device or address",
        Some(libc::EACCES) => "permission denied",
        Some(libc::EFAULT) => "bad address",
        Some(libc::ENODEV) => "no such device",
        Some(libc::ENOTDIR) => "not a directory",
        Some(libc::EINVAL) => "invalid argument",
        Some(libc::ENAMETOOLONG) => "file name too long",
        Some(libc::ENOSYS) => "function not implemented",
        Some(libc::ELOOP) => "too many levels of symbolic links",
        Some(libc::EOVERFLOW) => "value too large for defined data type",
        Some(libc::ENOTCONN) => "transport endpoint is not connected",
        Some(libc::ETIMEDOUT) => "connection timed out",
        Some(libc::EHOSTDOWN) => "host is down",
        Some(libc::EHOSTUNREACH) => "no route to host",
        Some(libc::ESTALE) => "stale file handle",
        Some(libc::EREMOTEIO) => "remote I/O error",
        Some(libc::ENOMEDIUM) => "no medium found",
        Some(errno) => {
            // Writing into a String cannot fail.
            let _ = write!(labels, "errno {errno}");
            return;
        }
    };
    labels.push_str(text);
}

/// A family and its value for a mount; `None` leaves the mount out of it.
struct MountFamily {
    name: &'static str,
    help: &'static str,
    value: fn(&Mount) -> Option<f64>,
}

const FAMILIES: [MountFamily; 8] = [
    MountFamily {
        name: "node_filesystem_size_bytes",
        help: "Filesystem size in bytes.",
        value: |m| m.stats.map(|s| s.size_bytes),
    },
    MountFamily {
        name: "node_filesystem_free_bytes",
        help: "Filesystem free space in bytes.",
        value: |m| m.stats.map(|s| s.free_bytes),
    },
    MountFamily {
        name: "node_filesystem_avail_bytes",
        help: "Filesystem space available to non-root users in bytes.",
        value: |m| m.stats.map(|s| s.avail_bytes),
    },
    MountFamily {
        name: "node_filesystem_files",
        help: "Filesystem total file nodes.",
        value: |m| m.stats.map(|s| s.files),
    },
    MountFamily {
        name: "node_filesystem_files_free",
        help: "Filesystem total free file nodes.",
        value: |m| m.stats.map(|s| s.files_free),
    },
    MountFamily {
        name: "node_filesystem_purgeable_bytes",
        help: "Filesystem space available including purgeable space (MacOS specific).",
        value: |m| m.stats.map(|_| 0.0),
    },
    MountFamily {
        name: "node_filesystem_readonly",
        help: "Filesystem read-only status.",
        value: |m| Some(f64::from(u8::from(m.readonly))),
    },
    MountFamily {
        name: "node_filesystem_device_error",
        help: "Whether an error occurred while getting statistics for the given device.",
        value: |m| Some(f64::from(u8::from(m.stats.is_none()))),
    },
];

impl Collector for Filesystem {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        self.statfs.poll_stuck();
        self.labels.clear();
        self.list.clear();
        self.list_mounts()?;
        let labels = &self.labels;
        for family in &FAMILIES {
            let mut writer = out.family(family.name, family.help, Kind::Gauge);
            for mount in &self.list {
                if let Some(value) = (family.value)(mount) {
                    writer
                        .series()
                        .label("device", &labels[mount.device.clone()])
                        .label("device_error", &labels[mount.device_error.clone()])
                        .label("fstype", &labels[mount.fs_type.clone()])
                        .label("mountpoint", &labels[mount.mount_point.clone()])
                        .value(value);
                }
            }
        }
        let mut writer = out.family(
            "node_filesystem_mount_info",
            "Filesystem mount information.",
            Kind::Gauge,
        );
        let same_info = |a: &Mount, b: &Mount| {
            (a.major, a.minor) == (b.major, b.minor)
                && labels[a.device.clone()] == labels[b.device.clone()]
                && labels[a.mount_point.clone()] == labels[b.mount_point.clone()]
        };
        let reported = self.list.iter().filter(|m| m.stats.is_some());
        for (i, mount) in reported.clone().enumerate() {
            // Two types mounted from one device on one mount point (an overmount)
            // have one mount_info series: its labels have no type.
            if reported.clone().take(i).any(|earlier| same_info(earlier, mount)) {
                continue;
            }
            writer
                .series()
                .label("device", &labels[mount.device.clone()])
                .label("major", mount.major)
                .label("minor", mount.minor)
                .label("mountpoint", &labels[mount.mount_point.clone()])
                .value(1.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Millis;
    use std::io;
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use crate::testing::{render, TempDir};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// A statfs that answers from the path: `.../missing*` fails, `.../nfs` blocks
    /// while `hang` is set until the test sends on the gate, anything else has sizes
    /// derived from the path's length. It records every path asked for.
    struct Fake {
        hang: AtomicBool,
        gate: Mutex<mpsc::Receiver<()>>,
        asked: Mutex<Vec<PathBuf>>,
    }

    fn fake() -> (Arc<Fake>, StatfsFn, mpsc::Sender<()>) {
        let (release, gate) = mpsc::channel();
        let fake = Arc::new(Fake {
            hang: AtomicBool::new(false),
            gate: Mutex::new(gate),
            asked: Mutex::new(Vec::new()),
        });
        let state = Arc::clone(&fake);
        let statfs: StatfsFn = Arc::new(move |path: &Path| {
            state.asked.lock().unwrap().push(path.to_owned());
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("missing") {
                return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
            }
            if name == "nfs" && state.hang.load(Ordering::SeqCst) {
                let _ = state.gate.lock().unwrap().recv();
            }
            let n = path.as_os_str().len() as f64;
            Ok(FsStats {
                size_bytes: n * 1000.0,
                free_bytes: n * 100.0,
                avail_bytes: n * 10.0,
                files: n * 2.0,
                files_free: n,
            })
        });
        (fake, statfs, release)
    }

    fn options(timeout_ms: u64) -> Options {
        Options {
            mount_timeout: Millis::from_millis(timeout_ms),
            ..Options::default()
        }
    }

    /// The `device_error` and `readonly` samples of a rendering, for short asserts.
    fn flags(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| {
                l.starts_with("node_filesystem_device_error{")
                    || l.starts_with("node_filesystem_readonly{")
            })
            .collect()
    }

    #[test]
    fn the_default_excludes_are_node_exporters() {
        assert!(Pattern::new(MOUNT_POINTS_EXCLUDE).is_ok());
        assert!(Pattern::new(FS_TYPES_EXCLUDE).is_ok());
        assert!(Options::default().fs_types_exclude.is_some());
        let exclude = Options::default().mount_points_exclude.unwrap();
        for excluded in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/proc/sys/fs/binfmt_misc",
            "/sys/kernel/debug",
            "/run/credentials/getty@tty1.service",
            "/var/lib/docker/overlay2/abc/merged",
            "/var/lib/containers/storage/overlay",
        ] {
            assert!(exclude.is_match(excluded), "{excluded}");
        }
        for kept in [
            "/",
            "/devices",
            "/home",
            "/run",
            "/run/user/1000",
            "/run/credentials",
            "/var/lib/docker",
            "/srv/dev",
        ] {
            assert!(!exclude.is_match(kept), "{kept}");
        }
    }

    fn collector(dir: &TempDir, rootfs: &str, statfs: StatfsFn) -> Filesystem {
        Filesystem::new(
            &dir.path().join("proc"),
            Path::new(rootfs),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        )
    }

    /// A mountinfo line: `device` (of `major:minor` `dev`) on `mount_point`, with
    /// per-mount `options` and superblock options `rw`.
    fn line(dev: &str, device: &str, mount_point: &str, fs_type: &str, options: &str) -> String {
        format!("30 1 {dev} / {mount_point} {options} shared:7 - {fs_type} {device} rw\n")
    }

    #[test]
    fn reports_mounts_like_node_exporter() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mountinfo",
            &[
                line("254:0", "/dev/vda", "/", "ext4", "rw,relatime"),
                line("0:22", "proc", "/proc", "proc", "rw"),
                line("0:23", "tmpfs", "/dev/shm", "tmpfs", "rw"),
                line("0:24", "cgroup2", "/sys/fs/cgroup", "cgroup2", "rw"),
                line("254:16", "/dev/vdb", "/data", "ext4", "ro,noatime"),
                line("254:16", "/dev/vdb", "/data", "ext4", "rw"),
                line("254:32", "/dev/vdc", "/data", "xfs", "rw"),
                "8 1 0:50 / /mnt/a\\040b\\011c\\012d rw - nfs4 srv:/x rw,vers=4.2\n".into(),
                "9 1 254:48 / /missing rw,relatime - ext4 /dev/vdd ro,errors=remount-ro\n".into(),
                line("0:60", "overlay", "/var/lib/docker/overlay2/1/merged", "overlay", "rw"),
                line("7:0", "/dev/loop0", "/snap/x/1", "erofs", "ro"),
            ]
            .concat(),
        );
        let (_, statfs, _) = fake();
        let text = render(&mut collector(&dir, "/", statfs)).unwrap();
        let series = |name: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            series("node_filesystem_size_bytes"),
            [
                "node_filesystem_size_bytes{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 1000",
                "node_filesystem_size_bytes{device=\"/dev/vdb\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/data\"} 5000",
                "node_filesystem_size_bytes{device=\"/dev/vdc\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/data\"} 5000",
                "node_filesystem_size_bytes{device=\"srv:/x\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 15000",
            ]
        );
        assert_eq!(
            series("node_filesystem_files_free"),
            [
                "node_filesystem_files_free{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 1",
                "node_filesystem_files_free{device=\"/dev/vdb\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/data\"} 5",
                "node_filesystem_files_free{device=\"/dev/vdc\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/data\"} 5",
                "node_filesystem_files_free{device=\"srv:/x\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 15",
            ]
        );
        // The first of the two /dev/vdb lines wins: read-only. /missing cannot be
        // statted: readonly (from its superblock options) and device_error only.
        assert_eq!(
            series("node_filesystem_readonly"),
            [
                "node_filesystem_readonly{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
                "node_filesystem_readonly{device=\"/dev/vdb\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/data\"} 1",
                "node_filesystem_readonly{device=\"/dev/vdc\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/data\"} 0",
                "node_filesystem_readonly{device=\"srv:/x\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 0",
                "node_filesystem_readonly{device=\"/dev/vdd\",device_error=\"no such file or directory\",fstype=\"ext4\",mountpoint=\"/missing\"} 1",
            ]
        );
        assert_eq!(
            series("node_filesystem_device_error")[4],
            "node_filesystem_device_error{device=\"/dev/vdd\",device_error=\"no such file or directory\",fstype=\"ext4\",mountpoint=\"/missing\"} 1"
        );
        assert_eq!(
            series("node_filesystem_mount_info"),
            [
                "node_filesystem_mount_info{device=\"/dev/vda\",major=\"254\",minor=\"0\",mountpoint=\"/\"} 1",
                "node_filesystem_mount_info{device=\"/dev/vdb\",major=\"254\",minor=\"16\",mountpoint=\"/data\"} 1",
                "node_filesystem_mount_info{device=\"/dev/vdc\",major=\"254\",minor=\"32\",mountpoint=\"/data\"} 1",
                "node_filesystem_mount_info{device=\"srv:/x\",major=\"0\",minor=\"50\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 1",
            ]
        );
        assert_eq!(series("node_filesystem_purgeable_bytes").len(), 4);
        assert!(series("node_filesystem_purgeable_bytes")
            .iter()
            .all(|l| l.ends_with("} 0")));
        for help in [
            "# HELP node_filesystem_size_bytes Filesystem size in bytes.\n# TYPE node_filesystem_size_bytes gauge\n",
            "# HELP node_filesystem_free_bytes Filesystem free space in bytes.\n",
            "# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.\n",
            "# HELP node_filesystem_files Filesystem total file nodes.\n",
            "# HELP node_filesystem_files_free Filesystem total free file nodes.\n",
            "# HELP node_filesystem_readonly Filesystem read-only status.\n",
            "# HELP node_filesystem_device_error Whether an error occurred while getting statistics for the given device.\n",
            "# HELP node_filesystem_mount_info Filesystem mount information.\n",
            "# HELP node_filesystem_purgeable_bytes Filesystem space available including purgeable space (MacOS specific).\n",
        ] {
            assert!(text.contains(help), "{help}");
        }
    }

    fn parse_options(yaml: &str) -> Result<Options, String> {
        serde_yaml::from_str::<crate::collector::table::Settings>(yaml)
            .map(|s| s.filesystem.options)
            .map_err(|e| e.to_string())
    }

    /// The mount points of `node_filesystem_mount_info` with these options.
    fn mounted(dir: &TempDir, options: &Options) -> Vec<String> {
        let (_, statfs, _) = fake();
        let mut collector = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            options,
            StuckMounts::default(),
            statfs,
        );
        let text = render(&mut collector).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("node_filesystem_mount_info{"))
            .filter_map(|l| l.split("mountpoint=\"").nth(1))
            .filter_map(|l| l.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn includes_and_excludes_work_as_node_exporters_flags() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mountinfo",
            &[
                line("254:0", "/dev/vda", "/", "ext4", "rw"),
                line("0:23", "tmpfs", "/dev/shm", "tmpfs", "rw"),
                line("0:22", "proc", "/proc", "proc", "rw"),
                line("254:16", "/dev/vdb", "/srv/data", "xfs", "rw"),
            ]
            .concat(),
        );
        let with = |yaml: &str| mounted(&dir, &parse_options(yaml).unwrap());
        // /dev/shm is a default mount point exclude, /proc also a default type one.
        assert_eq!(with("filesystem: {}\n"), ["/", "/srv/data"]);
        // An include alone drops its exclude's default, not the other pair's.
        assert_eq!(
            with("filesystem: {mount_points_include: '^/(dev|proc|srv)'}\n"),
            ["/dev/shm", "/srv/data"]
        );
        assert_eq!(with("filesystem: {fs_types_include: '^(xfs|proc)$'}\n"), ["/srv/data"]);
        assert_eq!(
            with("filesystem: {fs_types_include: '^(xfs|proc)$', mount_points_exclude: ''}\n"),
            ["/proc", "/srv/data"]
        );
        assert_eq!(with("filesystem: {mount_points_exclude: ^/srv}\n"), ["/", "/dev/shm"]);
        assert_eq!(
            with("filesystem: {mount_points_exclude: '', fs_types_exclude: null}\n"),
            ["/", "/dev/shm", "/proc", "/srv/data"]
        );
        // Both of a pair written with a regex are refused, naming the field and line.
        let err = parse_options(
            "filesystem:\n  mount_points_exclude: ^/proc\n  mount_points_include: ^/srv\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "filesystem: mount_points_include: mount_points_include and mount_points_exclude exclude each other"
            ),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
        for (old, new) in [
            ("ignored_mount_points", "mount_points_exclude"),
            ("ignored_fs_types", "fs_types_exclude"),
        ] {
            let err = parse_options(&format!("filesystem:\n  {old}: x\n")).unwrap_err();
            assert!(err.contains(&format!("{old}: renamed: write `{new}`, node_exporter's current name for the option")), "{err}");
        }
    }

    #[test]
    fn device_error_says_why_in_gos_words() {
        let mut labels = String::new();
        for (errno, text) in [
            (Some(nix::libc::EACCES), "permission denied"),
            (Some(nix::libc::EIO), "input/output error"),
            (Some(nix::libc::ESTALE), "stale file handle"),
            (Some(nix::libc::ENOTCONN), "transport endpoint is not connected"),
            (Some(4095), "errno 4095"),
            (None, "statfs failed"),
        ] {
            labels.clear();
            push_error_text(&mut labels, errno);
            assert_eq!(labels, text);
        }
    }

    #[test]
    fn falls_back_to_its_own_mountinfo_and_fails_without_either() {
        let dir = TempDir::new();
        let (_, statfs, _) = fake();
        let mut fs = collector(&dir, "/", statfs);
        let err = render(&mut fs).unwrap_err();
        assert!(err.to_string().contains("proc/self/mountinfo: "), "{err}");
        dir.write("proc/self/mountinfo", &line("254:0", "/dev/vda", "/", "ext4", "rw"));
        assert_eq!(
            flags(&render(&mut fs).unwrap()),
            [
                "node_filesystem_readonly{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
                "node_filesystem_device_error{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            ]
        );
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mountinfo",
            &format!(
                "{}1 1 254:16 / /data rw - ext4\n",
                line("254:0", "/dev/vda", "/", "ext4", "rw")
            ),
        );
        let (_, statfs, _) = fake();
        let err = render(&mut collector(&dir, "/", statfs))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                "proc/1/mountinfo line 2: fewer than 10 fields: \"1 1 254:16 / /data rw - ext4\""
            ),
            "{err}"
        );
    }

    #[test]
    fn rootfs_is_stripped_from_mount_points_and_prefixed_for_statfs() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mountinfo",
            &[
                line("8:0", "/dev/a", "/host", "ext4", "rw"),
                line("8:1", "/dev/b", "/host/boot", "ext4", "rw"),
                line("8:2", "/dev/c", "/hostile", "ext4", "rw"),
                line("8:3", "/dev/d", "/srv", "ext4", "rw"),
            ]
            .concat(),
        );
        let (state, statfs, _) = fake();
        let text = render(&mut collector(&dir, "/host/", statfs)).unwrap();
        let mount_points: Vec<_> = flags(&text)
            .iter()
            .filter(|l| l.starts_with("node_filesystem_device_error"))
            .map(|l| {
                l.split("mountpoint=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(mount_points, ["/", "/boot", "/hostile", "/srv"]);
        let asked: Vec<_> = state.asked.lock().unwrap().clone();
        assert_eq!(
            asked,
            ["/host/", "/host/boot", "/host/hostile", "/host/srv"].map(PathBuf::from)
        );
    }

    #[test]
    fn hung_mount_is_time_boxed_then_skipped_until_its_call_returns() {
        let timeout = Duration::from_millis(400);
        let dir = TempDir::new();
        dir.write(
            "proc/1/mountinfo",
            &[
                line("254:0", "/dev/vda", "/", "ext4", "rw"),
                line("0:50", "srv:/x", "/nfs", "nfs4", "ro"),
                line("254:16", "/dev/vdb", "/data", "ext4", "ro"),
            ]
            .concat(),
        );
        let (state, statfs, release) = fake();
        state.hang.store(true, Ordering::SeqCst);
        let stuck = StuckMounts::default();
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(400),
            stuck.clone(),
            Arc::clone(&statfs),
        );
        // A stuck mount's options are not looked at: readonly 0, as in node_exporter.
        let stuck_flags = [
            "node_filesystem_readonly{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            "node_filesystem_readonly{device=\"srv:/x\",device_error=\"mountpoint timeout\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 0",
            "node_filesystem_readonly{device=\"/dev/vdb\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/data\"} 1",
            "node_filesystem_device_error{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            "node_filesystem_device_error{device=\"srv:/x\",device_error=\"mountpoint timeout\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 1",
            "node_filesystem_device_error{device=\"/dev/vdb\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/data\"} 0",
        ];

        // The cycle that meets the hung call waits mount_timeout, no more.
        let started = Instant::now();
        let text = render(&mut fs).unwrap();
        let took = started.elapsed();
        assert!(took >= timeout, "{took:?}");
        assert!(took < timeout + Duration::from_secs(2), "{took:?}");
        assert_eq!(flags(&text), stuck_flags);
        assert!(!text.contains("mountpoint=\"/nfs\"} 15"), "{text}");
        assert_eq!(stuck.len(), 1);

        // Later cycles skip it without waiting; the other mounts use a fresh worker.
        let asked_before = state.asked.lock().unwrap().len();
        for _ in 0..3 {
            let started = Instant::now();
            let text = render(&mut fs).unwrap();
            assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
            assert_eq!(flags(&text), stuck_flags);
        }
        let asked: Vec<_> = state.asked.lock().unwrap()[asked_before..].to_vec();
        assert_eq!(
            asked,
            ["/", "/data", "/", "/data", "/", "/data"].map(PathBuf::from)
        );

        // A config reload builds a new collector; sharing the stuck list, it does
        // not wait on the dead mount again.
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(400),
            stuck.clone(),
            statfs,
        );
        let started = Instant::now();
        assert_eq!(flags(&render(&mut fs).unwrap()), stuck_flags);
        assert!(started.elapsed() < timeout, "{:?}", started.elapsed());

        // When the hung call returns, the mount is statted and reported again.
        state.hang.store(false, Ordering::SeqCst);
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let text = render(&mut fs).unwrap();
            if stuck.is_empty() || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(stuck.is_empty());
        assert!(
            text.contains(
                "node_filesystem_device_error{device=\"srv:/x\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "node_filesystem_size_bytes{device=\"srv:/x\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 4000\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_stuck_mount_that_vanishes_is_forgotten_when_its_call_returns() {
        let dir = TempDir::new();
        dir.write("proc/1/mountinfo", &line("0:50", "srv:/x", "/nfs", "nfs4", "rw"));
        let (state, statfs, release) = fake();
        state.hang.store(true, Ordering::SeqCst);
        let stuck = StuckMounts::default();
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(100),
            stuck.clone(),
            statfs,
        );
        render(&mut fs).unwrap();
        assert_eq!(stuck.len(), 1);
        dir.write("proc/1/mountinfo", &line("254:0", "/dev/vda", "/", "ext4", "rw"));
        render(&mut fs).unwrap();
        assert_eq!(stuck.len(), 1);
        state.hang.store(false, Ordering::SeqCst);
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stuck.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            render(&mut fs).unwrap();
        }
        assert!(stuck.is_empty());
    }

    #[test]
    fn mounts_may_come_and_go_between_cycles() {
        let dir = TempDir::new();
        let (_, statfs, _) = fake();
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let vda = |options| line("254:0", "/dev/vda", "/", "ext4", options);
        dir.write("proc/1/mountinfo", &vda("rw"));
        assert_eq!(flags(&render(&mut fs).unwrap()).len(), 2);
        let usb = line("8:17", "/dev/sdb1", "/usb", "vfat", "rw");
        dir.write("proc/1/mountinfo", &format!("{}{usb}", vda("rw")));
        assert_eq!(flags(&render(&mut fs).unwrap()).len(), 4);
        dir.write("proc/1/mountinfo", &vda("ro,relatime"));
        assert_eq!(
            flags(&render(&mut fs).unwrap()),
            [
                "node_filesystem_readonly{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 1",
                "node_filesystem_device_error{device=\"/dev/vda\",device_error=\"\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            ]
        );
        dir.write("proc/1/mountinfo", "");
        assert_eq!(render(&mut fs).unwrap(), "");
    }

    /// Release builds abort on panic; with unwinding (tests), a statfs that panics
    /// takes its worker down, which must read as a failed call, and the next mount
    /// gets a new worker.
    #[test]
    fn a_panicking_statfs_is_a_device_error_not_a_crash() {
        // Filesystems statted on the worker (network ones); local ones are statted
        // on the loop thread with the real statfs, which does not panic.
        let dir = TempDir::new();
        dir.write(
            "proc/1/mountinfo",
            &[
                line("254:0", "srv:/a", "/", "nfs4", "rw"),
                line("254:16", "srv:/b", "/data", "nfs4", "rw"),
            ]
            .concat(),
        );
        let statfs: StatfsFn = Arc::new(|path: &Path| {
            assert_ne!(path, Path::new("/"), "simulated statfs bug");
            Ok(FsStats::default())
        });
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let text = render(&mut fs).unwrap();
        assert_eq!(
            flags(&text),
            [
                "node_filesystem_readonly{device=\"srv:/a\",device_error=\"statfs failed\",fstype=\"nfs4\",mountpoint=\"/\"} 0",
                "node_filesystem_readonly{device=\"srv:/b\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/data\"} 0",
                "node_filesystem_device_error{device=\"srv:/a\",device_error=\"statfs failed\",fstype=\"nfs4\",mountpoint=\"/\"} 1",
                "node_filesystem_device_error{device=\"srv:/b\",device_error=\"\",fstype=\"nfs4\",mountpoint=\"/data\"} 0",
            ]
        );
    }

    #[test]
    fn huge_sizes_come_through() {
        let dir = TempDir::new();
        dir.write("proc/1/mountinfo", &line("254:0", "/dev/vda", "/", "ext4", "rw"));
        let statfs: StatfsFn = Arc::new(|_: &Path| {
            Ok(FsStats {
                size_bytes: u64::MAX as f64 * 65536.0,
                files: u64::MAX as f64,
                ..FsStats::default()
            })
        });
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let text = render(&mut fs).unwrap();
        assert!(
            text.contains("mountpoint=\"/\"} 1.2089258196146292e24\n"),
            "{text}"
        );
        assert!(
            text.contains("mountpoint=\"/\"} 18446744073709552000\n"),
            "{text}"
        );
    }
}
