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
//! A hung mount (a dead NFS server) must not stall the agent's single thread, so
//! statfs runs on a worker thread (one, started when first needed, kept across
//! cycles) and the collector waits at most `filesystem.mount_timeout` for it. On
//! timeout the mount is marked stuck, as node_exporter's `stuckMounts`: it gets
//! `device_error 1`, later cycles skip its statfs without waiting, the worker still
//! blocked in the call is abandoned (a fresh one serves the other mounts), and when
//! that call finally returns the mount is statted again from the next cycle on. The
//! transitions are logged once each (warning, then info), not every cycle. Unlike
//! node_exporter, whose scrape blocks on the hung call, only the cycle that meets a
//! newly hung mount waits, `mount_timeout` for each such mount.
//!
//! The statfs function is injectable ([`Filesystem::with_statfs`]) so the tests can
//! simulate a call that blocks.

use super::{read_file, read_optional_file, Collector, Error};
use crate::batch::{Batch, Kind};
use crate::config::{FilesystemOptions, Pattern};
use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What statfs says about one filesystem, in node_exporter's units.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FsStats {
    pub size_bytes: f64,
    pub free_bytes: f64,
    pub avail_bytes: f64,
    pub files: f64,
    pub files_free: f64,
}

/// A statfs implementation; the real one is [`statfs`].
pub type StatfsFn = Arc<dyn Fn(&Path) -> io::Result<FsStats> + Send + Sync>;

/// statfs(2), with sizes as node_exporter computes them: blocks times `f_bsize`.
pub fn statfs(path: &Path) -> io::Result<FsStats> {
    let stats = nix::sys::statfs::statfs(path)?;
    let block_size = stats.block_size() as f64;
    Ok(FsStats {
        size_bytes: stats.blocks() as f64 * block_size,
        free_bytes: stats.blocks_free() as f64 * block_size,
        avail_bytes: stats.blocks_available() as f64 * block_size,
        files: stats.files() as f64,
        files_free: stats.files_free() as f64,
    })
}

/// A statfs answer, with the path buffer handed back for reuse.
type Reply = (PathBuf, io::Result<FsStats>);

/// The thread statfs runs on, and the two ends of its channels.
struct Worker {
    requests: SyncSender<PathBuf>,
    replies: Receiver<Reply>,
}

impl Worker {
    fn spawn(statfs: &StatfsFn) -> io::Result<Worker> {
        // Capacity 1 each way: sending never allocates, and an abandoned worker can
        // leave its late reply in the channel and exit.
        let (requests, jobs) = mpsc::sync_channel::<PathBuf>(1);
        let (answer, replies) = mpsc::sync_channel::<Reply>(1);
        let statfs = Arc::clone(statfs);
        std::thread::Builder::new()
            .name("statfs".to_owned())
            .stack_size(64 << 10)
            .spawn(move || {
                // Ends when the collector drops `requests` (abandoned or dropped).
                for path in jobs {
                    let result = statfs(&path);
                    if answer.send((path, result)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker { requests, replies })
    }
}

/// The mounts whose statfs did not return in time. A stuck call (and the thread
/// blocked in it) outlives any one collector, so the list is shared with the collector
/// that replaces this one on a config reload: the new one must not wait on the same
/// dead mount again and strand another thread.
#[derive(Clone, Default)]
pub struct StuckMounts(Rc<RefCell<Vec<Stuck>>>);

impl StuckMounts {
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

/// A mount whose statfs did not return in time; `replies` is its abandoned
/// worker's, which answers when the call finally returns.
struct Stuck {
    mount_point: String,
    replies: Receiver<Reply>,
    since: Instant,
}

/// The outcome of one time-boxed statfs.
enum Outcome {
    Stats(FsStats),
    Failed,
    TimedOut(Receiver<Reply>),
}

/// Runs statfs on the worker thread, waiting at most `timeout` for each call.
struct TimedStatfs {
    /// `<rootfs>` without trailing `/`; empty when it is `/`.
    root: OsString,
    timeout: Duration,
    statfs: StatfsFn,
    worker: Option<Worker>,
    /// The path buffer of the last answered request, for the next one.
    spare_path: Option<PathBuf>,
}

impl TimedStatfs {
    /// statfs on `<rootfs>` + `mount_point`.
    fn stat(&mut self, mount_point: &str) -> Result<Outcome, Error> {
        let worker = match self.worker.take() {
            Some(worker) => worker,
            None => Worker::spawn(&self.statfs)
                .map_err(|e| Error::new(format!("cannot start the statfs thread: {e}")))?,
        };
        let mut path = self.spare_path.take().unwrap_or_default();
        let text = path.as_mut_os_string();
        text.clear();
        text.push(&self.root);
        if !mount_point.starts_with('/') {
            text.push("/");
        }
        text.push(mount_point);
        if worker.requests.send(path).is_err() {
            // The worker is gone (its statfs panicked); the next call starts another.
            return Ok(Outcome::Failed);
        }
        match worker.replies.recv_timeout(self.timeout) {
            Ok((path, result)) => {
                self.worker = Some(worker);
                let outcome = match result {
                    Ok(stats) => Outcome::Stats(stats),
                    Err(e) => {
                        log::debug!("statfs {}: {e}", path.display());
                        Outcome::Failed
                    }
                };
                self.spare_path = Some(path);
                Ok(outcome)
            }
            // Dropping `worker.requests` lets the blocked thread exit once it returns.
            Err(RecvTimeoutError::Timeout) => Ok(Outcome::TimedOut(worker.replies)),
            Err(RecvTimeoutError::Disconnected) => Ok(Outcome::Failed),
        }
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
    Failed(Error),
}

pub struct Filesystem {
    root_mounts: PathBuf,
    mounts: PathBuf,
    /// `<rootfs>` as text without trailing `/`, stripped from mount points; empty
    /// when it is `/`.
    root_text: String,
    mount_points_exclude: Option<Pattern>,
    fs_types_exclude: Option<Pattern>,
    timed: TimedStatfs,
    stuck: StuckMounts,
    buf: String,
    /// This cycle's label values, which `list` refers to.
    labels: String,
    list: Vec<Mount>,
}

impl Filesystem {
    pub fn new(
        procfs: &Path,
        rootfs: &Path,
        options: &FilesystemOptions,
        stuck: StuckMounts,
    ) -> Self {
        Filesystem::with_statfs(procfs, rootfs, options, stuck, Arc::new(statfs))
    }

    pub fn with_statfs(
        procfs: &Path,
        rootfs: &Path,
        options: &FilesystemOptions,
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
            timed: TimedStatfs {
                root: OsStr::from_bytes(root).to_owned(),
                timeout: options.mount_timeout.as_duration(),
                statfs,
                worker: None,
                spare_path: None,
            },
            stuck,
            buf: String::new(),
            labels: String::new(),
            list: Vec::new(),
        }
    }

    /// Reads `<procfs>/1/mounts`, or `<procfs>/mounts` when the former is missing;
    /// returns whether it was the former.
    fn read_mounts(&mut self) -> Result<bool, Error> {
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

    /// Forgets the stuck mounts whose statfs has returned since the last cycle.
    fn poll_stuck(&mut self) {
        let mut stuck = self.stuck.0.borrow_mut();
        let mut index = 0;
        while let Some(entry) = stuck.get(index) {
            match entry.replies.try_recv() {
                Err(TryRecvError::Empty) => index += 1,
                // Answered, or the thread is gone: either way the call is over.
                Ok(_) | Err(TryRecvError::Disconnected) => {
                    let entry = stuck.swap_remove(index);
                    log::info!(
                        "statfs on mount point {} returned after {:.1?}: reporting it again \
                         ({} mount(s) still stuck)",
                        entry.mount_point,
                        entry.since.elapsed(),
                        stuck.len()
                    );
                }
            }
        }
    }

    /// Stats of the mount whose mount point is `labels[mount_point]`: `None` means
    /// `device_error 1`.
    fn stats_of(&mut self, mount_point: Range<usize>) -> Result<Option<FsStats>, Error> {
        let text = &self.labels[mount_point];
        if self.stuck.0.borrow().iter().any(|s| s.mount_point == text) {
            return Ok(None);
        }
        match self.timed.stat(text)? {
            Outcome::Stats(stats) => Ok(Some(stats)),
            Outcome::Failed => Ok(None),
            Outcome::TimedOut(replies) => {
                log::warn!(
                    "statfs on mount point {text} did not return within {:?}: reporting \
                     node_filesystem_device_error 1 and skipping it until it does \
                     ({} mount(s) stuck)",
                    self.timed.timeout,
                    self.stuck.len() + 1
                );
                self.stuck.0.borrow_mut().push(Stuck {
                    mount_point: text.to_owned(),
                    replies,
                    since: Instant::now(),
                });
                Ok(None)
            }
        }
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
            .stats_of(mount_point.clone())
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
    fn list_mounts(&mut self) -> Result<(), Error> {
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
                Error::parse(
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
struct Family {
    name: &'static str,
    help: &'static str,
    value: fn(&Mount) -> Option<f64>,
}

const FAMILIES: [Family; 7] = [
    Family {
        name: "node_filesystem_size_bytes",
        help: "Filesystem size in bytes.",
        value: |m| m.stats.map(|s| s.size_bytes),
    },
    Family {
        name: "node_filesystem_free_bytes",
        help: "Filesystem free space in bytes.",
        value: |m| m.stats.map(|s| s.free_bytes),
    },
    Family {
        name: "node_filesystem_avail_bytes",
        help: "Filesystem space available to non-root users in bytes.",
        value: |m| m.stats.map(|s| s.avail_bytes),
    },
    Family {
        name: "node_filesystem_files",
        help: "Filesystem total file nodes.",
        value: |m| m.stats.map(|s| s.files),
    },
    Family {
        name: "node_filesystem_files_free",
        help: "Filesystem total free file nodes.",
        value: |m| m.stats.map(|s| s.files_free),
    },
    Family {
        name: "node_filesystem_readonly",
        help: "Filesystem read-only status.",
        value: |m| m.stats.map(|_| f64::from(u8::from(m.readonly))),
    },
    Family {
        name: "node_filesystem_device_error",
        help: "Whether an error occurred while getting statistics for the given device.",
        value: |m| Some(f64::from(u8::from(m.stats.is_none()))),
    },
];

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, out: &mut Batch) -> Result<(), Error> {
        self.poll_stuck();
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

    fn options(timeout_ms: u64) -> FilesystemOptions {
        FilesystemOptions {
            mount_timeout: Millis::from_millis(timeout_ms),
            ..FilesystemOptions::default()
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
        let mut fs = Filesystem::with_statfs(
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
        let mut fs = Filesystem::with_statfs(
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
        let mut fs = Filesystem::with_statfs(
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
        let mut fs = Filesystem::with_statfs(
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
        let mut fs = Filesystem::with_statfs(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(400),
            StuckMounts::default(),
            statfs,
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
        assert_eq!(fs.stuck.len(), 1);

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
        let mut fs = Filesystem::with_statfs(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(400),
            fs.stuck.clone(),
            Arc::clone(&fs.timed.statfs),
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
            if fs.stuck.is_empty() || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(fs.stuck.is_empty());
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
        let mut fs = Filesystem::with_statfs(
            &dir.path().join("proc"),
            Path::new("/"),
            &options(100),
            StuckMounts::default(),
            statfs,
        );
        render(&mut fs).unwrap();
        assert_eq!(fs.stuck.len(), 1);
        dir.write("proc/1/mounts", "/dev/vda / ext4 rw 0 0\n");
        render(&mut fs).unwrap();
        assert_eq!(fs.stuck.len(), 1);
        state.hang.store(false, Ordering::SeqCst);
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs.stuck.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            render(&mut fs).unwrap();
        }
        assert!(fs.stuck.is_empty());
    }

    #[test]
    fn mounts_may_come_and_go_between_cycles() {
        let dir = TempDir::new();
        let (_, statfs, _) = fake();
        let mut fs = Filesystem::with_statfs(
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
        let dir = TempDir::new();
        dir.write(
            "proc/1/mounts",
            "/dev/vda / ext4 rw 0 0\n/dev/vdb /data ext4 rw 0 0\n",
        );
        let statfs: StatfsFn = Arc::new(|path: &Path| {
            assert_ne!(path, Path::new("/"), "simulated statfs bug");
            Ok(FsStats::default())
        });
        let mut fs = Filesystem::with_statfs(
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
                "node_filesystem_readonly{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 0",
                "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 1",
                "node_filesystem_device_error{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/data\"} 0",
            ]
        );
    }

    #[test]
    fn real_statfs_sizes_are_blocks_times_block_size() {
        let dir = TempDir::new();
        let stats = statfs(dir.path()).unwrap();
        assert!(stats.size_bytes > 0.0 && stats.size_bytes >= stats.free_bytes);
        assert!(stats.free_bytes >= stats.avail_bytes);
        let raw = nix::sys::statfs::statfs(dir.path()).unwrap();
        assert_eq!(
            stats.size_bytes,
            raw.blocks() as f64 * raw.block_size() as f64
        );
        assert_eq!(stats.files, raw.files() as f64);
        let err = statfs(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
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
        let mut fs = Filesystem::with_statfs(
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
