//! Helpers for unit tests: temporary fixture trees and rendering collector output.

use crate::batch::Batch;
use crate::collector::Collector;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, removed on drop; unique per test.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sc-agent-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` at `relative`, creating parent directories.
    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        self.write_bytes(relative, contents.as_bytes())
    }

    pub fn write_bytes(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture dir");
        }
        std::fs::write(&path, contents).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one collector once and renders what it wrote as exposition text.
pub fn render(collector: &mut dyn Collector) -> Result<String, crate::collector::Error> {
    let mut batch = Batch::new();
    batch.begin(0);
    collector.collect(&mut batch)?;
    let mut out = Vec::new();
    crate::output::text::write(&batch, &mut out);
    Ok(String::from_utf8(out).expect("exposition text is UTF-8"))
}

/// Runs `f` on a thread of its own inside a new, empty network namespace, so that
/// a test can add and remove interfaces without touching the machine's. Needs
/// root (CAP_SYS_ADMIN), as the hardening tests do. Commands the thread runs
/// (`ip`) inherit the namespace.
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

/// Like [`in_new_netns`], with the new namespace's own sysfs mounted at a
/// temporary directory (in a private mount namespace of the thread, so nothing is
/// seen outside it), whose path `f` gets: sysfs shows the devices of the namespace
/// that mounted it.
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
    let output = std::process::Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip (iproute2)");
    assert!(
        output.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
