//! `node_filesystem_*` for every mounted filesystem: the mount list from
//! `<procfs>/1/mounts` (or `<procfs>/mounts` when that is missing, as under
//! `hidepid`), then statfs(2) on `<rootfs>` + mount point.
//!
//! Families, as node_exporter 1.5 names them, labelled `device`, `fstype`,
//! `mountpoint`: `size_bytes`, `free_bytes`, `avail_bytes` (blocks times `f_bsize`),
//! `files`, `files_free`, `readonly` (the `ro` mount option), `device_error`.
//!
//! Quirks mirrored:
//! - mount points and fs types matching the configured excludes are left out;
//! - in a mount point, `\040` becomes a space and `\011` a tab; other escapes
//!   (`\012`, `\134`) stay as the kernel wrote them;
//! - a mount point under `<rootfs>` is reported without that prefix, `<rootfs>`
//!   itself as `/`, so a containerised agent reports the host's paths (node_exporter
//!   strips the prefix as a plain string, turning `/hostile` under `/host` into
//!   `ile`; here it is stripped only at a `/`);
//! - a mount listed twice with the same device, mount point and type (an overmount
//!   with other options) is reported once, the first; the same mount point with
//!   another device is reported again (node_exporter does both);
//! - when statfs fails, only `device_error 1` is reported for the mount, not
//!   `readonly` or the sizes.
//!
//! statfs goes through [`TimedStatfs`](super::statfs): on the loop thread for local
//! filesystems, whose statfs answers from memory; on a worker, time-boxed by
//! `mount_timeout`, for network, user-space and unknown ones, so that a hung mount
//! (a dead NFS server) is reported with `device_error 1` and skipped until its call
//! returns, and never stalls the loop. Unlike node_exporter,
//! whose scrape blocks on the hung call, only the cycle that meets a newly hung mount
//! waits, `mount_timeout` for each such mount.

use super::statfs::{FsStats, StatfsFn, StuckMounts, TimedStatfs};
use super::{read_file, read_optional_file, Build, CollectError, Collector, Context};
use crate::batch::{Batch, Kind};
use crate::config::collectors;
use crate::config::{Millis, Pattern};
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// node_exporter's default mount points to leave out: `($|/)` also leaves out what
/// lies below them (/dev/shm, /proc/sys/fs/binfmt_misc).
pub const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default filesystem types to leave out.
pub const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

/// `collectors.filesystem`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    pub mount_points_exclude: Option<Pattern>,
    pub fs_types_exclude: Option<Pattern>,
    /// How long one statfs may take before the mount is reported as stuck.
    pub mount_timeout: Millis,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // The defaults are constants checked by the tests below.
            mount_points_exclude: Pattern::new(MOUNT_POINTS_EXCLUDE).ok(),
            fs_types_exclude: Pattern::new(FS_TYPES_EXCLUDE).ok(),
            mount_timeout: Millis::from_millis(5_000),
        }
    }
}

impl collectors::Options for Options {
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
    readonly: bool,
    /// `None` when statfs failed or the mount is stuck: `device_error 1`.
    stats: Option<FsStats>,
}

/// Why a line of the mounts file stopped the cycle.
enum LineError {
    Malformed,
    Failed(CollectError),
}

pub struct Filesystem {
    root_mounts: PathBuf,
    mounts: PathBuf,
    /// `<rootfs>` as text without trailing `/`, stripped from mount points; empty
    /// when it is `/`.
    root_text: String,
    mount_points_exclude: Option<Pattern>,
    fs_types_exclude: Option<Pattern>,
    statfs: TimedStatfs,
    buf: String,
    /// This cycle's label values, which `list` refers to.
    labels: String,
    list: Vec<Mount>,
}

impl Build for Filesystem {
    type Options = Options;

    const SOURCES: &'static [&'static str] = &["proc/1/mounts"];

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
        let bytes = rootfs.as_os_str().as_bytes();
        let root = &bytes[..bytes.len() - bytes.iter().rev().take_while(|b| **b == b'/').count()];
        Filesystem {
            root_mounts: procfs.join("1/mounts"),
            mounts: procfs.join("mounts"),
            root_text: String::from_utf8_lossy(root).into_owned(),
            mount_points_exclude: options.mount_points_exclude.clone(),
            fs_types_exclude: options.fs_types_exclude.clone(),
            statfs: TimedStatfs::new(
                OsStr::from_bytes(root).to_owned(),
                options.mount_timeout.as_duration(),
                statfs,
                stuck,
            ),
            buf: String::new(),
            labels: String::new(),
            list: Vec::new(),
        }
    }

    /// Reads `<procfs>/1/mounts`, or `<procfs>/mounts` when the former is missing;
    /// returns whether it was the former.
    fn read_mounts(&mut self) -> Result<bool, CollectError> {
        if read_optional_file(&self.root_mounts, &mut self.buf)? {
            return Ok(true);
        }
        log::debug!(
            "{} does not exist (hidepid?), reading {}",
            self.root_mounts.display(),
            self.mounts.display()
        );
        read_file(&self.mounts, &mut self.buf)?;
        Ok(false)
    }

    fn excluded(&self, mount_point: &str, fs_type: &str) -> bool {
        let matches =
            |pattern: &Option<Pattern>, text| pattern.as_ref().is_some_and(|p| p.is_match(text));
        matches(&self.mount_points_exclude, mount_point) || matches(&self.fs_types_exclude, fs_type)
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

    /// Adds one line of the mounts file, unless it is filtered out or a duplicate.
    fn add_mount(&mut self, line: &str) -> Result<(), LineError> {
        let mut fields = line.split_ascii_whitespace();
        let (Some(device), Some(raw_mount_point), Some(fs_type), Some(options)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return match line.trim() {
                "" => Ok(()),
                _ => Err(LineError::Malformed),
            };
        };
        let start = self.labels.len();
        let mount_point = push_mount_point(&mut self.labels, raw_mount_point, &self.root_text);
        let text = &self.labels[mount_point.clone()];
        if self.excluded(text, fs_type) || self.listed(device, text, fs_type) {
            self.labels.truncate(start);
            return Ok(());
        }
        let device = push(&mut self.labels, device);
        let fs_type = push(&mut self.labels, fs_type);
        let stats = self
            .statfs
            .stat(
                &self.labels[mount_point.clone()],
                &self.labels[fs_type.clone()],
            )
            .map_err(LineError::Failed)?;
        self.list.push(Mount {
            device,
            mount_point,
            fs_type,
            readonly: options.split(',').any(|option| option == "ro"),
            stats,
        });
        Ok(())
    }

    /// Builds this cycle's list of mounts from the mounts file.
    fn list_mounts(&mut self) -> Result<(), CollectError> {
        let from_root = self.read_mounts()?;
        let buf = std::mem::take(&mut self.buf);
        let result = buf
            .lines()
            .enumerate()
            .try_for_each(|(index, line)| self.add_mount(line).map_err(|e| (index, line, e)));
        let result = result.map_err(|(index, line, e)| match e {
            LineError::Malformed => {
                let path = if from_root {
                    &self.root_mounts
                } else {
                    &self.mounts
                };
                CollectError::parse(
                    path,
                    index + 1,
                    format!("expected `device mountpoint fstype options ...`, got {line:?}"),
                )
            }
            LineError::Failed(e) => e,
        });
        self.buf = buf;
        result
    }
}

fn push(labels: &mut String, text: &str) -> Range<usize> {
    let start = labels.len();
    labels.push_str(text);
    start..labels.len()
}

/// Appends a mount point from the mounts file: `\040` and `\011` unescaped as
/// node_exporter does, then `root` stripped from its front (`root` itself is `/`).
fn push_mount_point(labels: &mut String, raw: &str, root: &str) -> Range<usize> {
    let start = labels.len();
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        labels.push_str(&rest[..at]);
        let escape = &rest[at..];
        let (text, skip) = if escape.starts_with("\\040") {
            (" ", 4)
        } else if escape.starts_with("\\011") {
            ("\t", 4)
        } else {
            ("\\", 1)
        };
        labels.push_str(text);
        rest = &escape[skip..];
    }
    labels.push_str(rest);
    if !root.is_empty() {
        let unescaped = &labels[start..];
        if unescaped == root {
            labels.truncate(start);
            labels.push('/');
        } else if unescaped
            .strip_prefix(root)
            .is_some_and(|below| below.starts_with('/'))
        {
            labels.drain(start..start + root.len());
        }
    }
    start..labels.len()
}

/// A family and its value for a mount; `None` leaves the mount out of it.
struct MountFamily {
    name: &'static str,
    help: &'static str,
    value: fn(&Mount) -> Option<f64>,
}

const FAMILIES: [MountFamily; 7] = [
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
        name: "node_filesystem_readonly",
        help: "Filesystem read-only status.",
        value: |m| m.stats.map(|_| f64::from(u8::from(m.readonly))),
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
                        .label("fstype", &labels[mount.fs_type.clone()])
                        .label("mountpoint", &labels[mount.mount_point.clone()])
                        .value(value);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Millis;
    use std::io;
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
                return Err(io::Error::from(io::ErrorKind::NotFound));
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

    #[test]
    fn reports_mounts_like_node_exporter() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mounts",
            "/dev/vda / ext4 rw,relatime 0 0\n\
             proc /proc proc rw 0 0\n\
             tmpfs /dev/shm tmpfs rw 0 0\n\
             cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n\
             /dev/vdb /data ext4 ro,noatime 0 0\n\
             /dev/vdb /data ext4 rw 0 0\n\
             /dev/vdc /data xfs rw 0 0\n\
             srv:/x /mnt/a\\040b\\011c\\012d nfs4 rw 0 0\n\
             /dev/vdd /missing ext4 ro 0 0\n\
             overlay /var/lib/docker/overlay2/1/merged overlay rw 0 0\n",
        );
        let (_, statfs, _) = fake();
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let text = render(&mut fs).unwrap();
        let series = |name: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            series("node_filesystem_size_bytes"),
            [
                "node_filesystem_size_bytes{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 1000",
                "node_filesystem_size_bytes{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 5000",
                "node_filesystem_size_bytes{device=\"/dev/vdc\",fstype=\"xfs\",mountpoint=\"/data\"} 5000",
                "node_filesystem_size_bytes{device=\"srv:/x\",fstype=\"nfs4\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 15000",
            ]
        );
        assert_eq!(
            series("node_filesystem_files_free"),
            [
                "node_filesystem_files_free{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 1",
                "node_filesystem_files_free{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 5",
                "node_filesystem_files_free{device=\"/dev/vdc\",fstype=\"xfs\",mountpoint=\"/data\"} 5",
                "node_filesystem_files_free{device=\"srv:/x\",fstype=\"nfs4\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 15",
            ]
        );
        // The first of the two /dev/vdb lines wins: read-only. /missing has only
        // device_error, as in node_exporter.
        assert_eq!(
            series("node_filesystem_readonly"),
            [
                "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
                "node_filesystem_readonly{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 1",
                "node_filesystem_readonly{device=\"/dev/vdc\",fstype=\"xfs\",mountpoint=\"/data\"} 0",
                "node_filesystem_readonly{device=\"srv:/x\",fstype=\"nfs4\",mountpoint=\"/mnt/a b\tc\\\\012d\"} 0",
            ]
        );
        assert_eq!(
            series("node_filesystem_device_error")[4],
            "node_filesystem_device_error{device=\"/dev/vdd\",fstype=\"ext4\",mountpoint=\"/missing\"} 1"
        );
        for help in [
            "# HELP node_filesystem_size_bytes Filesystem size in bytes.\n# TYPE node_filesystem_size_bytes gauge\n",
            "# HELP node_filesystem_free_bytes Filesystem free space in bytes.\n",
            "# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.\n",
            "# HELP node_filesystem_files Filesystem total file nodes.\n",
            "# HELP node_filesystem_files_free Filesystem total free file nodes.\n",
            "# HELP node_filesystem_readonly Filesystem read-only status.\n",
            "# HELP node_filesystem_device_error Whether an error occurred while getting statistics for the given device.\n",
        ] {
            assert!(text.contains(help), "{help}");
        }
    }

    #[test]
    fn falls_back_to_proc_mounts_and_fails_without_either() {
        let dir = TempDir::new();
        let (_, statfs, _) = fake();
        let procfs = dir.path().join("proc");
        let mut fs = Filesystem::new(
            &procfs,
            Path::new("/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let err = render(&mut fs).unwrap_err();
        assert!(err.to_string().contains("proc/mounts: "), "{err}");
        dir.write("proc/mounts", "/dev/vda / ext4 rw 0 0\n");
        assert_eq!(
            flags(&render(&mut fs).unwrap()),
            [
                "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
                "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            ]
        );
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mounts",
            "/dev/vda / ext4 rw 0 0\n\n/dev/vdb /data ext4\n",
        );
        let (_, statfs, _) = fake();
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let err = render(&mut fs).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "proc/1/mounts line 3: expected `device mountpoint fstype options ...`, \
                 got \"/dev/vdb /data ext4\""
            ),
            "{err}"
        );
    }

    #[test]
    fn rootfs_is_stripped_from_mount_points_and_prefixed_for_statfs() {
        let dir = TempDir::new();
        dir.write(
            "proc/1/mounts",
            "/dev/a /host ext4 rw 0 0\n/dev/b /host/boot ext4 rw 0 0\n\
             /dev/c /hostile ext4 rw 0 0\n/dev/d /srv ext4 rw 0 0\n",
        );
        let (state, statfs, _) = fake();
        let mut fs = Filesystem::new(
            &dir.path().join("proc"),
            Path::new("/host/"),
            &options(5_000),
            StuckMounts::default(),
            statfs,
        );
        let text = render(&mut fs).unwrap();
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
    fn unescapes_only_what_node_exporter_does() {
        let mut labels = String::from("x");
        for (raw, expected) in [
            ("/a\\040b", "/a b"),
            ("/a\\011b", "/a\tb"),
            ("/a\\134b\\012", "/a\\134b\\012"),
            ("/a\\04", "/a\\04"),
            ("/a\\", "/a\\"),
            ("/é\\040ü", "/é ü"),
        ] {
            let range = push_mount_point(&mut labels, raw, "");
            assert_eq!(&labels[range], expected);
        }
        let range = push_mount_point(&mut labels, "/r\\040t/x", "/r t");
        assert_eq!(&labels[range], "/x");
    }

    #[test]
    fn hung_mount_is_time_boxed_then_skipped_until_its_call_returns() {
        let timeout = Duration::from_millis(400);
        let dir = TempDir::new();
        dir.write(
            "proc/1/mounts",
            "/dev/vda / ext4 rw 0 0\nsrv:/x /nfs nfs4 rw 0 0\n/dev/vdb /data ext4 ro 0 0\n",
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
        let stuck_flags = [
            "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            "node_filesystem_readonly{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 1",
            "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            "node_filesystem_device_error{device=\"srv:/x\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 1",
            "node_filesystem_device_error{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 0",
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
                "node_filesystem_device_error{device=\"srv:/x\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "node_filesystem_size_bytes{device=\"srv:/x\",fstype=\"nfs4\",mountpoint=\"/nfs\"} 4000\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_stuck_mount_that_vanishes_is_forgotten_when_its_call_returns() {
        let dir = TempDir::new();
        dir.write("proc/1/mounts", "srv:/x /nfs nfs4 rw 0 0\n");
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
        dir.write("proc/1/mounts", "/dev/vda / ext4 rw 0 0\n");
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
        dir.write("proc/1/mounts", "/dev/vda / ext4 rw 0 0\n");
        assert_eq!(flags(&render(&mut fs).unwrap()).len(), 2);
        dir.write(
            "proc/1/mounts",
            "/dev/vda / ext4 rw 0 0\n/dev/sdb1 /usb vfat rw 0 0\n",
        );
        assert_eq!(flags(&render(&mut fs).unwrap()).len(), 4);
        dir.write("proc/1/mounts", "/dev/vda / ext4 ro 0 0\n");
        assert_eq!(
            flags(&render(&mut fs).unwrap()),
            [
                "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 1",
                "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
            ]
        );
        dir.write("proc/1/mounts", "");
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
            "proc/1/mounts",
            "srv:/a / nfs4 rw 0 0\nsrv:/b /data nfs4 rw 0 0\n",
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
                "node_filesystem_readonly{device=\"srv:/b\",fstype=\"nfs4\",mountpoint=\"/data\"} 0",
                "node_filesystem_device_error{device=\"srv:/a\",fstype=\"nfs4\",mountpoint=\"/\"} 1",
                "node_filesystem_device_error{device=\"srv:/b\",fstype=\"nfs4\",mountpoint=\"/data\"} 0",
            ]
        );
    }

    #[test]
    fn huge_sizes_come_through() {
        let dir = TempDir::new();
        dir.write("proc/1/mounts", "/dev/vda / ext4 rw 0 0\n");
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
