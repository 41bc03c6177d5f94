//! Network namespaces for tests that need the real kernel's netlink answers without
//! touching the machine's interfaces, sockets or neighbour tables.
//!
//! Two kinds: [`in_new_netns`] runs a closure on a thread of its own inside a new,
//! empty, unnamed namespace (the unit tests of `src/netlink/` and of the collectors
//! that read it); [`Netns`] is a named namespace (`ip netns add`), in which the real
//! binary runs (`ip netns exec`, which also mounts the namespace's own /sys) and
//! threads of the test can join ([`Netns::run`], [`Netns::spawn`]). Both need root (CAP_SYS_ADMIN)
//! and iproute2's `ip`, which scripts/test.sh installs.

use crate::TempDir;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `f` on a thread of its own inside a new, empty network namespace, so that a
/// test can add and remove interfaces without touching the machine's. Commands the
/// thread runs (`ip`) inherit the namespace.
pub fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): the netlink tests need root");
        f()
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Like [`in_new_netns`], with the new namespace's own sysfs mounted at a temporary
/// directory (in a private mount namespace of the thread, so nothing is seen
/// outside it), whose path `f` gets: sysfs shows the devices of the namespace that
/// mounted it.
pub fn in_new_netns_with_sysfs<T: Send + 'static>(
    f: impl FnOnce(&Path) -> T + Send + 'static,
) -> T {
    in_new_netns(move || {
        use nix::mount::{mount, umount, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
        let none = None::<&str>;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
            .expect("make the mounts private");
        let dir = TempDir::new();
        mount(
            Some("sysfs"),
            dir.path(),
            Some("sysfs"),
            MsFlags::empty(),
            none,
        )
        .expect("mount sysfs");
        let result = f(dir.path());
        let _ = umount(dir.path());
        result
    })
}

/// Runs `ip ARGS` (in the calling thread's network namespace) and checks it worked.
pub fn ip(args: &str) {
    let output = Command::new(crate::require("ip"))
        .args(args.split_whitespace())
        .output()
        .expect("run ip (iproute2)");
    assert!(
        output.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the lines of `script` as one `ip -batch` (many interfaces at once, in the
/// calling thread's namespace).
pub fn ip_batch(script: &str) {
    let dir = TempDir::new();
    let path = dir.write("ip.batch", script);
    ip(&format!("-batch {}", path.display()));
}

/// A named network namespace, deleted (with everything in it) on drop.
pub struct Netns(String);

impl Netns {
    /// A new namespace named after `tag` and the test process.
    pub fn new(tag: &str) -> Netns {
        let name = format!("sc-agent-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let ns = Netns(name);
        ip(&format!("netns add {}", ns.0));
        ns
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// The namespace's file, for `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.0)
    }

    /// Runs `ip -n NS ARGS`.
    pub fn ip(&self, args: &str) {
        ip(&format!("-n {} {args}", self.0));
    }

    /// Runs `sh -c SCRIPT` inside the namespace (for sysfs writes, which need the
    /// namespace's own /sys that `ip netns exec` mounts).
    pub fn sh(&self, script: &str) {
        let status = Command::new(crate::require("ip"))
            .args(["netns", "exec", &self.0, "sh", "-c", script])
            .status()
            .expect("ip netns exec sh");
        assert!(status.success(), "{script}");
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(crate::require("ip"));
        command.args(["netns", "exec", &self.0]).arg(program);
        command
    }

    /// Runs `f` on a thread of its own inside the namespace and waits for it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("open the namespace");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Starts `f` on a thread of its own inside the namespace, without waiting.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = self.path();
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("open the namespace");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
