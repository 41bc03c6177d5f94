//! statfs(2) that never stalls the loop thread: the hang-proof machinery under the
//! filesystem collector (as node_exporter splits `filesystem_common.go` from
//! `filesystem_linux.go`).
//!
//! A hung mount (a dead NFS server) blocks statfs in the kernel forever, and the
//! agent has a single loop thread. So statfs of a filesystem that can hang runs on a
//! worker thread (one, started when first needed, kept across cycles) and
//! [`TimedStatfs::stat`] waits at most the configured timeout for it. Which can hang:
//! everything but the local filesystems of [`LOCAL_FS_TYPES`], whose statfs answers
//! from counters the kernel keeps in memory: network filesystems (nfs, cifs/smb3,
//! ceph, glusterfs, 9p, virtiofs ...), user-space ones (fuse.*), and any type not in
//! the list. Local ones are statted on the loop thread directly, which saves two
//! thread wake-ups per mount (about 1 ms a cycle for five mounts, measured). On timeout the mount is marked stuck, as
//! node_exporter's `stuckMounts`: later cycles skip its statfs without waiting, the
//! worker still blocked in the call is abandoned (a fresh one serves the other
//! mounts), and when that call finally returns the mount is statted again from the
//! next cycle on. The transitions are logged once each (warning, then info), not
//! every cycle.
//!
//! The list of stuck mounts ([`StuckMounts`]) outlives any one collector: a config
//! reload that rebuilds the filesystem collector must not wait on the same dead
//! mount again and strand another thread. The registry keeps it in its
//! [`Resources`](super::Resources).
//!
//! The statfs function is injectable ([`StatfsFn`]) so tests can simulate a call that
//! blocks, and the fuzz harness can run without real mounts.

use super::CollectError;
use std::cell::RefCell;
use std::ffi::OsString;
use std::io;
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

/// The mounts whose statfs did not return in time, shared by every filesystem
/// collector of the process (see the module doc).
#[derive(Clone, Default)]
pub struct StuckMounts(Rc<RefCell<Vec<Stuck>>>);

impl StuckMounts {
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    fn contains(&self, mount_point: &str) -> bool {
        self.0.borrow().iter().any(|s| s.mount_point == mount_point)
    }
}

/// A mount whose statfs did not return in time; `replies` is its abandoned
/// worker's, which answers when the call finally returns.
struct Stuck {
    mount_point: String,
    replies: Receiver<Reply>,
    since: Instant,
}

/// The outcome of one time-boxed call on the worker.
enum Answer {
    Stats(FsStats),
    Failed(Option<i32>),
    TimedOut(Receiver<Reply>),
}

/// Filesystem types whose statfs never waits on anything outside the machine or the
/// kernel: called on the loop thread without a time box. A type missing here only
/// costs the thread hop.
pub const LOCAL_FS_TYPES: &[&str] = &[
    "bcachefs",
    "btrfs",
    "devtmpfs",
    "erofs",
    "exfat",
    "ext2",
    "ext3",
    "ext4",
    "f2fs",
    "hfsplus",
    "hugetlbfs",
    "iso9660",
    "jfs",
    "msdos",
    "nilfs2",
    "ntfs",
    "ntfs3",
    "ramfs",
    "reiserfs",
    "squashfs",
    "tmpfs",
    "udf",
    "vfat",
    "xfs",
    "zfs",
];

/// Whether statfs on a filesystem of this type answers without waiting on a server
/// or a user-space daemon.
pub fn is_local(fs_type: &str) -> bool {
    LOCAL_FS_TYPES.contains(&fs_type)
}

/// What [`TimedStatfs::stat`] found out about one mount.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Stats(FsStats),
    /// statfs failed, with this errno (`None`: the worker thread died in the call).
    Failed(Option<i32>),
    /// The call did not return within the timeout, now or in an earlier cycle.
    Stuck,
}

/// statfs on `<rootfs>` + mount point: directly for local filesystems, on the
/// worker thread, time-boxed, for the others.
pub struct TimedStatfs {
    /// `<rootfs>` without trailing `/`; empty when it is `/`.
    root: OsString,
    timeout: Duration,
    statfs: StatfsFn,
    stuck: StuckMounts,
    worker: Option<Worker>,
    /// The path buffer of the last answered request, for the next one.
    spare_path: Option<PathBuf>,
}

impl TimedStatfs {
    /// `root` is `<rootfs>` without its trailing `/` (empty for `/`).
    pub fn new(root: OsString, timeout: Duration, statfs: StatfsFn, stuck: StuckMounts) -> Self {
        TimedStatfs {
            root,
            timeout,
            statfs,
            stuck,
            worker: None,
            spare_path: None,
        }
    }

    /// Forgets the stuck mounts whose statfs has returned since the last cycle.
    pub fn poll_stuck(&mut self) {
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

    /// The stats of the filesystem of type `fs_type` mounted at `mount_point`, or why
    /// there are none: statfs failed, timed out now, or is still stuck from an earlier
    /// cycle (node_exporter's `device_error 1`).
    pub fn stat(&mut self, mount_point: &str, fs_type: &str) -> Result<Outcome, CollectError> {
        if self.stuck.contains(mount_point) {
            return Ok(Outcome::Stuck);
        }
        if is_local(fs_type) {
            let path = self.path_of(mount_point);
            let result = (self.statfs)(&path);
            self.spare_path = Some(path);
            return Ok(match result {
                Ok(stats) => Outcome::Stats(stats),
                Err(e) => {
                    log::debug!("statfs {mount_point}: {e}");
                    Outcome::Failed(e.raw_os_error())
                }
            });
        }
        match self.call(mount_point)? {
            Answer::Stats(stats) => Ok(Outcome::Stats(stats)),
            Answer::Failed(errno) => Ok(Outcome::Failed(errno)),
            Answer::TimedOut(replies) => {
                log::warn!(
                    "statfs on mount point {mount_point} did not return within {:?}: reporting \
                     node_filesystem_device_error 1 and skipping it until it does \
                     ({} mount(s) stuck)",
                    self.timeout,
                    self.stuck.len() + 1
                );
                self.stuck.0.borrow_mut().push(Stuck {
                    mount_point: mount_point.to_owned(),
                    replies,
                    since: Instant::now(),
                });
                Ok(Outcome::Stuck)
            }
        }
    }

    /// `<rootfs>` + `mount_point`, in the spare path buffer.
    fn path_of(&mut self, mount_point: &str) -> PathBuf {
        let mut path = self.spare_path.take().unwrap_or_default();
        let text = path.as_mut_os_string();
        text.clear();
        text.push(&self.root);
        if !mount_point.starts_with('/') {
            text.push("/");
        }
        text.push(mount_point);
        path
    }

    fn call(&mut self, mount_point: &str) -> Result<Answer, CollectError> {
        let worker = match self.worker.take() {
            Some(worker) => worker,
            None => Worker::spawn(&self.statfs)
                .map_err(|e| CollectError::new(format!("cannot start the statfs thread: {e}")))?,
        };
        let path = self.path_of(mount_point);
        if worker.requests.send(path).is_err() {
            // The worker is gone (its statfs panicked); the next call starts another.
            return Ok(Answer::Failed(None));
        }
        match worker.replies.recv_timeout(self.timeout) {
            Ok((path, result)) => {
                self.worker = Some(worker);
                let answer = match result {
                    Ok(stats) => Answer::Stats(stats),
                    Err(e) => {
                        log::debug!("statfs {}: {e}", path.display());
                        Answer::Failed(e.raw_os_error())
                    }
                };
                self.spare_path = Some(path);
                Ok(answer)
            }
            // Dropping `worker.requests` lets the blocked thread exit once it returns.
            Err(RecvTimeoutError::Timeout) => Ok(Answer::TimedOut(worker.replies)),
            Err(RecvTimeoutError::Disconnected) => Ok(Answer::Failed(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

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
    fn local_filesystems_are_statted_on_the_calling_thread_the_others_on_the_worker() {
        let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&threads);
        let statfs: StatfsFn = Arc::new(move |path: &Path| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            seen.lock().unwrap().push((path.to_owned(), name));
            Ok(FsStats::default())
        });
        let mut timed = TimedStatfs::new(
            OsString::from("/host"),
            Duration::from_secs(5),
            statfs,
            StuckMounts::default(),
        );
        for (mount_point, fs_type) in [
            ("/", "ext4"),
            ("/srv", "xfs"),
            ("/run", "tmpfs"),
            ("/mnt/nfs", "nfs4"),
            ("/mnt/sshfs", "fuse.sshfs"),
            ("/mnt/new", "somefs"),
        ] {
            assert_eq!(
                timed.stat(mount_point, fs_type).unwrap(),
                Outcome::Stats(FsStats::default())
            );
        }
        let here = std::thread::current().name().unwrap_or("").to_owned();
        let threads = threads.lock().unwrap();
        let on = |name: &str| -> Vec<&str> {
            threads
                .iter()
                .filter(|(_, thread)| thread == name)
                .map(|(path, _)| path.to_str().unwrap())
                .collect()
        };
        assert_eq!(on(&here), ["/host/", "/host/srv", "/host/run"]);
        assert_eq!(
            on("statfs"),
            ["/host/mnt/nfs", "/host/mnt/sshfs", "/host/mnt/new"]
        );
        assert!(is_local("btrfs") && !is_local("cifs") && !is_local("fuse"));
    }

    #[test]
    fn a_call_that_hangs_is_abandoned_and_the_next_gets_a_fresh_worker() {
        let (release, gate) = mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(gate);
        let statfs: StatfsFn = Arc::new(move |path: &Path| {
            if path == Path::new("/hang") {
                let _ = gate.lock().map(|g| g.recv());
            }
            Ok(FsStats::default())
        });
        let stuck = StuckMounts::default();
        let mut timed = TimedStatfs::new(
            OsString::new(),
            Duration::from_millis(100),
            statfs,
            stuck.clone(),
        );
        assert_eq!(timed.stat("/hang", "nfs4").unwrap(), Outcome::Stuck);
        assert_eq!(stuck.len(), 1);
        assert_eq!(
            timed.stat("/ok", "nfs4").unwrap(),
            Outcome::Stats(FsStats::default())
        );
        // Skipped without waiting while stuck, whatever its type.
        let started = Instant::now();
        assert_eq!(timed.stat("/hang", "ext4").unwrap(), Outcome::Stuck);
        assert!(started.elapsed() < Duration::from_millis(100));
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stuck.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            timed.poll_stuck();
        }
        assert!(stuck.is_empty());
    }
}
