//! A statfs that never returns, for real, through the real binary: a FUSE filesystem
//! that answers everything except `FUSE_STATFS`, mounted beside the agent inside a
//! private mount namespace.
//!
//! How it is isolated: the scenario runs on a thread of its own that first leaves the
//! test process's mount namespace (`unshare(CLONE_NEWNS)` moves only the calling
//! thread) and marks every mount private, so nothing mounted here propagates back.
//! Other tests, in this process or any other (the node_exporter comparison reads the
//! real mount table), never see the hung mount. The agent is spawned from that thread,
//! so it lives in the same namespace, and reads its own mount table: its
//! `<procfs>/1` is a symlink to `/proc/self`.
//!
//! The FUSE server ([`hang_fs`]) is a thread of this test reading `/dev/fuse`: it
//! answers INIT, GETATTR and LOOKUP, and reads STATFS requests without ever answering
//! them, so the agent's statfs blocks in the kernel exactly as on a dead NFS server
//! (the thread sits in a killable wait, `wchan` `request_wait_answer`). Closing the
//! `/dev/fuse` descriptor is what the kernel sees when a FUSE server dies: the
//! connection is aborted, the pending statfs returns (ECONNABORTED) and later ones
//! fail at once (ENOTCONN); `umount2(MNT_DETACH)` then removes the mount.
//!
//! Needs root (CAP_SYS_ADMIN) and `/dev/fuse`, as CI has; about 12 seconds.

use sc_agent_testkit as common;

use common::{Agent, Exposition, TempDir};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const INTERVAL_MS: u64 = 200;
const MOUNT_TIMEOUT_MS: u64 = 1000;
/// The tmpfs beside the hung mount: its size must come through every cycle.
const TMPFS_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

/// A FUSE filesystem whose statfs never answers.
mod hang_fs {
    use nix::fcntl::OFlag;
    use nix::mount::{mount, MsFlags};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::fs::{File, OpenOptions};
    use std::io::{ErrorKind, Read, Write};
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::net::UnixStream;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    const LOOKUP: u32 = 1;
    const FORGET: u32 = 2;
    const GETATTR: u32 = 3;
    const STATFS: u32 = 17;
    const INIT: u32 = 26;
    const INTERRUPT: u32 = 36;
    const BATCH_FORGET: u32 = 42;

    const ENOENT: i32 = 2;
    const ENOSYS: i32 = 38;

    /// `struct fuse_in_header`.
    const IN_HEADER: usize = 40;

    #[derive(Default)]
    pub struct Counts {
        /// STATFS requests read (and never answered).
        pub statfs: AtomicUsize,
        /// Every request read.
        pub requests: AtomicUsize,
    }

    pub struct HangFs {
        pub counts: Arc<Counts>,
        /// Closing it (dropping it) stops the server, which closes /dev/fuse.
        stop: Option<UnixStream>,
        server: Option<JoinHandle<()>>,
    }

    impl HangFs {
        /// Mounts the filesystem on `mount_point` (fstype `fuse.sc-agent-hang`) and
        /// starts serving it.
        pub fn mount(mount_point: &Path) -> HangFs {
            let fuse = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(OFlag::O_NONBLOCK.bits())
                .open("/dev/fuse")
                .expect("open /dev/fuse (needs root and the fuse module)");
            let options = format!(
                "fd={},rootmode=40000,user_id=0,group_id=0",
                fuse.as_raw_fd()
            );
            mount(
                Some("sc-agent-hang"),
                mount_point,
                Some("fuse.sc-agent-hang"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(options.as_str()),
            )
            .expect("mount the FUSE filesystem");
            let counts = Arc::new(Counts::default());
            let (stop, stopped) = UnixStream::pair().unwrap();
            let server_counts = Arc::clone(&counts);
            let server = std::thread::Builder::new()
                .name("hang-fs".into())
                .spawn(move || serve(fuse, stopped, &server_counts))
                .unwrap();
            HangFs {
                counts,
                stop: Some(stop),
                server: Some(server),
            }
        }

        pub fn statfs_requests(&self) -> usize {
            self.counts.statfs.load(Ordering::SeqCst)
        }

        /// Stops the server and closes `/dev/fuse`: the kernel aborts the connection.
        pub fn kill(&mut self) {
            drop(self.stop.take());
            if let Some(server) = self.server.take() {
                server.join().expect("the FUSE server thread");
            }
        }
    }

    impl Drop for HangFs {
        fn drop(&mut self) {
            self.kill();
        }
    }

    fn serve(fuse: File, stopped: UnixStream, counts: &Counts) {
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let mut fds = [
                PollFd::new(fuse.as_fd(), PollFlags::POLLIN),
                PollFd::new(stopped.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("poll /dev/fuse: {e}"),
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                break;
            }
            if fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLERR))
            {
                break; // unmounted
            }
            let n = match (&fuse).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ENOENT: the request was interrupted before it was read.
                Err(e) if e.raw_os_error() == Some(ENOENT) => continue,
                Err(_) => break, // ENODEV: unmounted
            };
            if n < IN_HEADER {
                continue;
            }
            counts.requests.fetch_add(1, Ordering::SeqCst);
            let u32_at = |at: usize| u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
            let opcode = u32_at(4);
            let unique = u64::from_ne_bytes(buf[8..16].try_into().unwrap());
            match opcode {
                INIT => {
                    let (minor, readahead) = (u32_at(IN_HEADER + 4), u32_at(IN_HEADER + 8));
                    // struct fuse_init_out, 64 bytes.
                    let mut out = Vec::with_capacity(64);
                    out.extend(7u32.to_ne_bytes()); // major
                    out.extend(minor.min(31).to_ne_bytes());
                    out.extend(readahead.to_ne_bytes());
                    out.extend(0u32.to_ne_bytes()); // flags
                    out.extend(16u16.to_ne_bytes()); // max_background
                    out.extend(12u16.to_ne_bytes()); // congestion_threshold
                    out.extend(4096u32.to_ne_bytes()); // max_write
                    out.extend(1u32.to_ne_bytes()); // time_gran
                    out.resize(64, 0);
                    reply(&fuse, unique, 0, &out);
                }
                GETATTR => {
                    // struct fuse_attr_out: valid for 1s, then the root directory.
                    let mut out = Vec::with_capacity(104);
                    out.extend(1u64.to_ne_bytes()); // attr_valid
                    out.extend([0u8; 8]); // attr_valid_nsec, dummy
                    out.extend(1u64.to_ne_bytes()); // ino
                    out.extend([0u8; 40]); // size, blocks, atime, mtime, ctime
                    out.extend([0u8; 12]); // the three nsec fields
                    out.extend(0o40755u32.to_ne_bytes()); // mode
                    out.extend(2u32.to_ne_bytes()); // nlink
                    out.extend([0u8; 12]); // uid, gid, rdev
                    out.extend(4096u32.to_ne_bytes()); // blksize
                    out.extend([0u8; 4]); // flags
                    reply(&fuse, unique, 0, &out);
                }
                LOOKUP => reply(&fuse, unique, ENOENT, &[]),
                STATFS => {
                    // Never answered: the caller waits until the connection dies.
                    counts.statfs.fetch_add(1, Ordering::SeqCst);
                }
                FORGET | BATCH_FORGET | INTERRUPT => {}
                _ => reply(&fuse, unique, ENOSYS, &[]),
            }
        }
        // Dropping the last descriptor of /dev/fuse aborts the connection.
        drop(fuse);
    }

    fn reply(mut fuse: &File, unique: u64, errno: i32, payload: &[u8]) {
        let mut out = Vec::with_capacity(16 + payload.len());
        out.extend(((16 + payload.len()) as u32).to_ne_bytes());
        out.extend((-errno).to_ne_bytes());
        out.extend(unique.to_ne_bytes());
        out.extend(payload);
        // Fails with ENOENT when the request was interrupted meanwhile: nothing to do.
        let _ = fuse.write(&out);
    }
}

/// Leaves the test process's mount namespace (this thread only) and makes every
/// mount in the new one private, so nothing done here is seen outside.
fn enter_private_mount_namespace() {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .expect("unshare(CLONE_NEWNS): the test needs root (CAP_SYS_ADMIN)");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
}

fn config(dir: &Path, extra: &str) -> String {
    format!(
        "vm_id: test-vm\ninstance: test-host\ncollection_interval: {INTERVAL_MS}ms\n\
         paths:\n  procfs: {}\n  rootfs: /\n\
         collectors:\n  disable_defaults: true\n  filesystem:\n    mount_timeout: {MOUNT_TIMEOUT_MS}ms\n\
         {extra}",
        dir.join("proc").display(),
    )
}

/// What one cycle says about the mounts.
struct Cycle {
    exposition: Exposition,
}

impl Cycle {
    fn parse(text: &str) -> Cycle {
        Cycle {
            exposition: Exposition::parse(text),
        }
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.exposition.value(name, labels)
    }

    fn device_error(&self, mount_point: &str) -> Option<f64> {
        self.value(
            "node_filesystem_device_error",
            &[("mountpoint", mount_point)],
        )
    }

    /// Mount point → size of every mount statfs answered for.
    fn sizes(&self) -> BTreeMap<String, f64> {
        self.exposition
            .find("node_filesystem_size_bytes")
            .map(|s| (s.labels["mountpoint"].clone(), s.value))
            .collect()
    }

    fn missed_ticks(&self) -> f64 {
        self.value("sc_agent_missed_ticks_total", &[])
            .expect("sc_agent_missed_ticks_total")
    }

    fn filesystem_seconds(&self) -> f64 {
        self.value(
            "node_scrape_collector_duration_seconds",
            &[("collector", "filesystem")],
        )
        .expect("the filesystem collector's duration")
    }

    fn filesystem_ok(&self) -> bool {
        self.value(
            "node_scrape_collector_success",
            &[("collector", "filesystem")],
        ) == Some(1.0)
    }
}

fn all_cycles(agent: &Agent) -> Vec<Cycle> {
    common::expositions(&agent.stdout())
        .into_iter()
        .map(Cycle::parse)
        .collect()
}

fn cycle_count(agent: &Agent) -> usize {
    common::expositions(&agent.stdout()).len()
}

/// Waits for `more` cycles after the `seen` ones.
fn wait_cycles(agent: &Agent, seen: usize, more: usize, what: &str) {
    assert!(
        agent.wait_for(WAIT, |out, _| common::expositions(out).len() >= seen + more),
        "{what}: no {more} cycles after cycle {seen}; stderr:\n{}",
        agent.stderr()
    );
}

/// Waits until a cycle satisfies `done`; returns its index.
fn wait_cycle(agent: &Agent, what: &str, done: impl Fn(&Cycle) -> bool) -> usize {
    let start = Instant::now();
    let mut checked = 0;
    while start.elapsed() < WAIT {
        let cycles = all_cycles(agent);
        if let Some(i) = cycles[checked..].iter().position(&done) {
            return checked + i;
        }
        checked = cycles.len();
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}; stderr:\n{}", agent.stderr());
}

fn threads(agent: &Agent) -> usize {
    common::threads_and_fds(agent.pid().as_raw() as u32).0
}

/// The agent's threads named `statfs`: the worker, and any left blocked in a call.
fn statfs_threads(agent: &Agent) -> usize {
    let tasks = format!("/proc/{}/task", agent.pid().as_raw());
    std::fs::read_dir(tasks).map_or(0, |tasks| {
        tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "statfs")
            .count()
    })
}

fn wait_threads(agent: &Agent, expected: usize, what: &str) {
    let start = Instant::now();
    while threads(agent) != expected && start.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(threads(agent), expected, "{what}");
}

/// The other mounts: present in `cycle` with the sizes they had at the start.
fn assert_others_unchanged(cycle: &Cycle, baseline: &BTreeMap<String, f64>, hung: &str) {
    let sizes = cycle.sizes();
    assert!(!sizes.contains_key(hung), "a size for the hung mount");
    for (mount_point, size) in baseline {
        assert_eq!(
            sizes.get(mount_point),
            Some(size),
            "mount {mount_point} lost its size"
        );
        assert_eq!(cycle.device_error(mount_point), Some(0.0), "{mount_point}");
    }
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn a_statfs_that_never_returns_costs_one_wait_and_recovers_when_the_server_dies() {
    let dir = TempDir::new();
    let path = dir.path().to_owned();
    // All of it on a thread of its own: only that thread leaves the mount namespace.
    let scenario = std::thread::Builder::new()
        .name("private-mount-ns".into())
        .spawn(move || scenario(&path))
        .unwrap();
    if let Err(panic) = scenario.join() {
        std::panic::resume_unwind(panic);
    }
}

fn scenario(dir: &Path) {
    enter_private_mount_namespace();
    let ok: PathBuf = dir.join("ok");
    let hang: PathBuf = dir.join("hang");
    for d in [&ok, &hang, &dir.join("proc")] {
        std::fs::create_dir_all(d).unwrap();
    }
    nix::mount::mount(
        Some("sc-agent-ok"),
        &ok,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=8m"),
    )
    .expect("mount a tmpfs");
    // The agent reads its own mount table: the private namespace's.
    std::os::unix::fs::symlink("/proc/self", dir.join("proc/1")).unwrap();
    let config_path = dir.join("sc-agent.yaml");
    std::fs::write(&config_path, config(dir, "")).unwrap();
    let mut agent = Agent::spawn(&["--config", config_path.to_str().unwrap()], &[]);
    let ok_text = ok.to_str().unwrap().to_owned();
    let hung = hang.to_str().unwrap().to_owned();

    // Before the hung mount: the baseline sizes, threads and missed ticks.
    wait_cycles(&agent, 0, 3, "start");
    let cycles = all_cycles(&agent);
    let before = cycles.last().unwrap();
    let baseline = before.sizes();
    assert_eq!(baseline.get(&ok_text), Some(&TMPFS_BYTES), "{baseline:?}");
    assert!(baseline.contains_key("/"), "{baseline:?}");
    assert!(before.filesystem_ok());
    let missed_before = before.missed_ticks();
    let threads_before = threads(&agent);
    let workers_before = statfs_threads(&agent);

    // The mount appears; the next cycle's statfs hangs, for mount_timeout only.
    let mut fs = hang_fs::HangFs::mount(&hang);
    let stuck_at = wait_cycle(&agent, "the hung mount's device_error 1", |c| {
        c.device_error(&hung) == Some(1.0)
    });
    assert_eq!(fs.statfs_requests(), 1, "the agent asked once");
    // Invisible outside the private namespace (PID 1 is in the machine's).
    let host_mounts = std::fs::read_to_string("/proc/1/mounts").unwrap();
    assert!(!host_mounts.contains("sc-agent-hang"), "{host_mounts}");
    assert!(std::fs::read_to_string("/proc/thread-self/mounts")
        .unwrap()
        .contains("fuse.sc-agent-hang"));
    let stuck = &all_cycles(&agent)[stuck_at];
    assert!(
        stuck.filesystem_ok(),
        "a hung mount is not a failed collector"
    );
    assert!(
        stuck.filesystem_seconds() >= MOUNT_TIMEOUT_MS as f64 / 1000.0,
        "the cycle that met the hung call waited mount_timeout: {}s",
        stuck.filesystem_seconds()
    );
    assert_others_unchanged(stuck, &baseline, &hung);

    // Later cycles: on schedule, no waiting, the same figures.
    let started = Instant::now();
    wait_cycles(&agent, stuck_at + 1, 15, "after the hang");
    let elapsed = started.elapsed();
    let cycles = all_cycles(&agent);
    let after = &cycles[stuck_at + 2..];
    // The stuck cycle ran over about mount_timeout / interval ticks; counted once.
    let missed_by_stuck = after[0].missed_ticks() - missed_before;
    let most = (MOUNT_TIMEOUT_MS / INTERVAL_MS + 1) as f64;
    assert!(
        (1.0..=most).contains(&missed_by_stuck),
        "the stuck cycle missed {missed_by_stuck} ticks"
    );
    for cycle in after {
        assert_eq!(cycle.device_error(&hung), Some(1.0));
        assert_others_unchanged(cycle, &baseline, &hung);
        assert!(cycle.filesystem_ok());
        assert!(
            cycle.filesystem_seconds() < MOUNT_TIMEOUT_MS as f64 / 1000.0 / 2.0,
            "a later cycle waited: {}s",
            cycle.filesystem_seconds()
        );
    }
    let missed_later = after.last().unwrap().missed_ticks() - after[0].missed_ticks();
    assert!(
        missed_later <= 1.0,
        "{missed_later} ticks missed after the stuck cycle"
    );
    assert!(
        elapsed < Duration::from_millis(15 * INTERVAL_MS * 3),
        "15 cycles took {elapsed:?}"
    );
    assert_eq!(fs.statfs_requests(), 1, "the stuck mount was asked again");
    // One thread is left blocked in the call, and a fresh worker serves the other
    // mounts that are not local, if any.
    assert_eq!(threads(&agent), threads_before + 1);

    // A reload builds new collectors: they must not wait on the dead mount again.
    std::fs::write(&config_path, config(dir, "labels:\n  phase: reloaded\n")).unwrap();
    agent.signal(Signal::SIGHUP);
    let reloaded_at = wait_cycle(&agent, "a cycle on the reloaded config", |c| {
        c.exposition
            .find("node_filesystem_size_bytes")
            .any(|s| s.labels.get("phase").map(String::as_str) == Some("reloaded"))
    });
    wait_cycles(&agent, reloaded_at + 1, 5, "after the reload");
    let cycles = all_cycles(&agent);
    for cycle in &cycles[reloaded_at..] {
        assert_eq!(cycle.device_error(&hung), Some(1.0));
        assert_others_unchanged(cycle, &baseline, &hung);
        assert!(
            cycle.filesystem_seconds() < MOUNT_TIMEOUT_MS as f64 / 1000.0 / 2.0,
            "a cycle after the reload waited: {}s",
            cycle.filesystem_seconds()
        );
    }
    let missed_reload = cycles.last().unwrap().missed_ticks() - after[0].missed_ticks();
    assert!(missed_reload <= 1.0, "{missed_reload} ticks missed");
    assert_eq!(fs.statfs_requests(), 1, "the reloaded agent asked again");
    // The old collector's worker is gone; the new one's replaces it.
    wait_threads(&agent, threads_before + 1, "threads after the reload");
    let stderr = agent.stderr();
    assert!(stderr.contains("config reloaded"), "{stderr}");
    assert_eq!(count(&stderr, "did not return within"), 1, "{stderr}");

    // The server dies: the hung call returns, the mount is statted again (and fails
    // at once: the connection is gone), the blocked thread exits.
    fs.kill();
    assert!(
        agent.wait_for(WAIT, |_, err| err.contains("returned after")),
        "{}",
        agent.stderr()
    );
    let seen = cycle_count(&agent);
    wait_cycles(&agent, seen, 3, "after the server died");
    for cycle in &all_cycles(&agent)[seen..] {
        assert_eq!(cycle.device_error(&hung), Some(1.0));
        assert!(cycle.filesystem_seconds() < MOUNT_TIMEOUT_MS as f64 / 1000.0 / 2.0);
        assert_others_unchanged(cycle, &baseline, &hung);
    }
    // The blocked thread has returned ("returned after" above) and exits; the FUSE
    // mount, not a local filesystem, is statted again on a worker, which stays: one
    // statfs thread, where before the hang there was one only if some other mount
    // was not local (local ones are statted on the loop thread).
    wait_threads(
        &agent,
        threads_before - workers_before + 1,
        "the blocked thread exits, one worker serves the FUSE mount",
    );

    // Unmounted: it disappears, and the rest is as it was.
    nix::mount::umount2(&hang, nix::mount::MntFlags::MNT_DETACH).expect("umount");
    let gone_at = wait_cycle(&agent, "the mount gone", |c| {
        c.device_error(&hung).is_none()
    });
    wait_cycles(&agent, gone_at + 1, 2, "after the unmount");
    let cycles = all_cycles(&agent);
    let last = cycles.last().unwrap();
    assert_eq!(last.sizes(), baseline);
    assert!(last.filesystem_ok());
    let missed_total = last.missed_ticks() - missed_before;
    assert!(
        missed_total <= most + 2.0,
        "{missed_total} ticks missed over the whole run"
    );

    // Each transition logged once, not every cycle.
    let stderr = agent.stderr();
    assert_eq!(count(&stderr, "did not return within"), 1, "{stderr}");
    assert_eq!(count(&stderr, "returned after"), 1, "{stderr}");
    assert_eq!(count(&stderr, "collector filesystem failed"), 0, "{stderr}");
    assert!(agent.is_running());
    agent.signal(Signal::SIGTERM);
    let status = agent.wait_exit(WAIT).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    nix::mount::umount2(&ok, nix::mount::MntFlags::MNT_DETACH).expect("umount tmpfs");
}
