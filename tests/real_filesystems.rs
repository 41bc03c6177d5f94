//! xfs and btrfs on real filesystems, through the real binary, beside the real
//! node_exporter (Debian's 1.5): a two-device btrfs raid1 and an XFS, on loop
//! devices, mounted in a private mount namespace.
//!
//! This VM's own disks are neither, so the fixture trees can only replay files; this
//! test has the kernel write them, and is the one place the btrfs device-stats
//! ioctls (`BTRFS_IOC_FS_INFO`, `DEV_INFO`, `GET_DEV_STATS`) meet a real filesystem:
//! as root and again as `nobody`, since they must need no privilege.
//!
//! How it is isolated: the scenario runs on a thread that first leaves the test
//! process's mount namespace and marks every mount private, as tests/stuck_mount.rs
//! does; the agent and node_exporter are spawned from that thread, so they see the
//! mounts, and read the mount table through a `<procfs>/1` that links to
//! `/proc/self`. Nothing is mounted outside. What the kernel shows globally for the
//! few seconds the test takes: the loop devices (which the default diskstats filter
//! leaves out) and their `/sys/fs/btrfs/<uuid>` and `/sys/fs/xfs/<loop>` directories.
//!
//! Needs root, loop devices, `mkfs.btrfs` (btrfs-progs), `mkfs.xfs` (xfsprogs),
//! `losetup` (mount), `setpriv` (util-linux) and prometheus-node-exporter, as
//! scripts/test.sh installs them; about 5 seconds.

use sc_agent_testkit as common;

use common::{free_port, http_get, require, wait_for_port, Agent, Exposition, Peer, TempDir};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
/// Each loop device's size: XFS wants at least 300 MB.
const IMAGE_BYTES: u64 = 320 << 20;

/// The families node_exporter 1.9 added to the btrfs collector, which 1.5 lacks.
const NEW_SINCE_1_5: [&str; 4] = [
    "node_btrfs_commits_total",
    "node_btrfs_last_commit_seconds",
    "node_btrfs_max_commit_seconds",
    "node_btrfs_commit_seconds_total",
];

/// A loop device, detached when dropped.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// A mount, detached when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// Runs a tool to success and returns its standard output, trimmed.
fn run_tool(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        tool.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn attach(dir: &TempDir, name: &str) -> Loop {
    let image = dir.path().join(name);
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(IMAGE_BYTES))
        .expect("sparse image");
    Loop(run_tool(
        &require("losetup"),
        &["--find", "--show", image.to_str().unwrap()],
    ))
}

fn mount_at(device: &str, at: &Path, fs_type: &str) -> Mounted {
    std::fs::create_dir_all(at).unwrap();
    mount(
        Some(device),
        at,
        Some(fs_type),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("mount {device} ({fs_type}) on {}: {e}", at.display()));
    Mounted(at.to_owned())
}

/// Leaves the test process's mount namespace (this thread only) and makes every
/// mount in the new one private, so nothing done here is seen outside.
fn enter_private_mount_namespace() {
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

type Key = (String, BTreeMap<String, String>);

/// The btrfs and xfs series of an exposition, without the agent's own labels.
fn series(exposition: &Exposition) -> BTreeMap<Key, f64> {
    exposition
        .samples
        .iter()
        .filter(|s| s.name.starts_with("node_btrfs_") || s.name.starts_with("node_xfs_"))
        .map(|s| {
            let mut labels = s.labels.clone();
            for ours in ["vm_id", "job", "instance"] {
                labels.remove(ours);
            }
            ((s.name.clone(), labels), s.value)
        })
        .collect()
}

fn agent_once(command: &mut Command, config: &Path) -> Exposition {
    let mut agent = Agent::spawn_with(
        command.args(["--once", "--config", config.to_str().unwrap()]),
        &[],
    );
    let status = agent.wait_exit(WAIT).expect("sc-agent did not exit");
    assert!(status.success(), "{status}: {}", agent.stderr());
    Exposition::parse(&agent.stdout())
}

fn scrape(port: u16) -> Exposition {
    Exposition::parse(&http_get(port, "/metrics").expect("scrape node_exporter"))
}

fn scenario() {
    enter_private_mount_namespace();
    let dir = TempDir::new();
    let loops = [
        attach(&dir, "b1.img"),
        attach(&dir, "b2.img"),
        attach(&dir, "x.img"),
    ];
    run_tool(
        &require("mkfs.btrfs"),
        &[
            "-q",
            "-L",
            "sc-agent-test",
            "-d",
            "raid1",
            "-m",
            "raid1",
            &loops[0].0,
            &loops[1].0,
        ],
    );
    run_tool(&require("mkfs.xfs"), &["-q", &loops[2].0]);
    let btrfs = dir.path().join("mnt/btrfs");
    let mounts = [
        mount_at(&loops[0].0, &btrfs, "btrfs"),
        mount_at(&loops[2].0, &dir.path().join("mnt/xfs"), "xfs"),
    ];
    std::fs::write(btrfs.join("data"), vec![7u8; 4 << 20]).unwrap();
    nix::unistd::sync();

    let procfs = dir.path().join("proc");
    std::fs::create_dir_all(&procfs).unwrap();
    std::os::unix::fs::symlink("/proc/self", procfs.join("1")).unwrap();
    let config = dir.write(
        "c.yaml",
        &format!(
            "vm_id: test-vm\ninstance: test-host\npaths:\n  procfs: {}\n  sysfs: /sys\n  rootfs: /\n\
             collectors:\n  disable_defaults: true\n  btrfs: true\n  xfs: true\n",
            procfs.display()
        ),
    );
    let port = free_port();
    let _node_exporter = Peer(
        Command::new(require("prometheus-node-exporter"))
            .args([
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--collector.disable-defaults".into(),
                "--collector.btrfs".into(),
                "--collector.xfs".into(),
                format!("--path.procfs={}", procfs.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "node_exporter did not start"
    );

    let before = series(&scrape(port));
    let ours = series(&agent_once(&mut Command::new(common::bin()), &config));
    let after = series(&scrape(port));

    // The same series, but for what node_exporter 1.9 added.
    let theirs: Vec<&Key> = before.keys().collect();
    let mine: Vec<&Key> = ours
        .keys()
        .filter(|(name, _)| !NEW_SINCE_1_5.contains(&name.as_str()))
        .collect();
    assert_eq!(mine, theirs, "series differ");
    for name in NEW_SINCE_1_5 {
        assert_eq!(ours.keys().filter(|(n, _)| n == name).count(), 1, "{name}");
    }
    // Values within what node_exporter read before and after (a transaction commit
    // may land in between).
    for (key, value) in ours.iter().filter(|(k, _)| before.contains_key(*k)) {
        let (low, high) = (before[key].min(after[key]), before[key].max(after[key]));
        assert!(
            low <= *value && *value <= high,
            "{key:?}: node_exporter {} then {}, sc-agent {value}",
            before[key],
            after[key]
        );
    }
    let errors = |s: &BTreeMap<Key, f64>| {
        s.keys()
            .filter(|(name, labels)| {
                name == "node_btrfs_device_errors_total" && labels.contains_key("btrfs_dev_uuid")
            })
            .count()
    };
    // Two devices, five counters each: the ioctls answered.
    assert_eq!(errors(&ours), 10, "{ours:?}");
    assert!(ours
        .keys()
        .any(|(name, labels)| name.starts_with("node_xfs_")
            && labels
                .get("device")
                .is_some_and(|d| loops[2].0.ends_with(d.as_str()))));

    // As nobody: the ioctls need no capability, only a mount point to open.
    let mut nobody = Command::new(require("setpriv"));
    nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(common::bin());
    let unprivileged = series(&agent_once(&mut nobody, &config));
    assert_eq!(errors(&unprivileged), 10, "{unprivileged:?}");
    drop(mounts);
    drop(loops);
}

#[test]
fn xfs_and_btrfs_match_node_exporter_and_btrfs_device_stats_need_no_privilege() {
    for tool in [
        "mkfs.btrfs",
        "mkfs.xfs",
        "losetup",
        "setpriv",
        "prometheus-node-exporter",
    ] {
        require(tool);
    }
    let result = std::thread::spawn(scenario).join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
