//! Collectors: each reads some files under /proc or /sys and writes node_exporter's
//! metric families into the cycle's batch.
//!
//! One collector per file, all behind [`Collector`], each built by its [`Build`] impl
//! from its options. The [`table`] lists them all; the [`Registry`] builds the enabled
//! ones, keeps them across reloads whose settings leave them unchanged, times each
//! one, rolls back whatever a failing collector wrote, reports
//! `node_scrape_collector_{duration_seconds,success}` as node_exporter does, and logs a
//! collector's failure once when it starts failing and once when it recovers.

mod device_options;
mod file;
mod go_parse;
mod mountinfo;
mod registry;
mod seen;
mod statfs;
mod sysconf;
#[macro_use]
pub mod table;

// The collector table: one row per collector, in the order they run (see `table`).
// A row declares the module `src/collector/<name>.rs`, names the type in it and
// says whether the collector runs by default.
collectors! {
    loadavg: Loadavg = on,
    meminfo (alias "memory"): Meminfo = on,
    cpu: Cpu = on,
    stat: Stat = on,
    diskstats: Diskstats = on,
    netdev: Netdev = on,
    netclass: Netclass = on,
    uname: Uname = on,
    time: Time = on,
    entropy: Entropy = on,
    filefd: Filefd = on,
    vmstat: Vmstat = on,
    pressure: Pressure = on,
    sockstat: Sockstat = on,
    netstat: Netstat = on,
    filesystem: Filesystem = on,
    process: Process = on,
    systemd: Systemd = off,
    cpufreq: Cpufreq = on,
    thermal_zone: ThermalZone = on,
    hwmon: Hwmon = on,
    powersupplyclass: Powersupplyclass = on,
    nvme: Nvme = on,
    mdadm: Mdadm = on,
    bonding: Bonding = on,
    kernel_hung: KernelHung = off,
    schedstat: Schedstat = on,
    conntrack: Conntrack = on,
    softnet: Softnet = on,
    udp_queues: UdpQueues = on,
    os: Os = on,
    dmi: Dmi = on,
    selinux: Selinux = on,
    watchdog: Watchdog = on,
    timex: Timex = on,
    // node_exporter's filesystem-specific collectors (xfs, btrfs, nfs client).
    xfs: Xfs = on,
    nfs: Nfs = on,
    btrfs: Btrfs = on,
    arp: Arp = on,
    // Off by default, as in node_exporter: a walk of every process (processes), a
    // series per interrupt and CPU (interrupts), a walk of the kernel's whole
    // connection table (tcpstat).
    processes: Processes = off,
    interrupts: Interrupts = off,
    tcpstat: Tcpstat = off,
    // Last: it drops series that clash with those the others wrote this cycle.
    textfile: Textfile = on,
}

pub use file::{
    for_each_line, list_dir, open, parse_go_int, parse_go_uint, parse_uint, read_bytes, read_file,
    read_file_io, read_optional_file, read_sys_value, read_sys_value_from, read_value, set_path,
    sys_read_file, MAX_FILE_BYTES, MAX_LINE_BYTES, SYS_READ_BYTES, SYS_VALUE_BYTES,
};
pub use registry::Registry;
pub use seen::Seen;
pub use statfs::{FsStats, StatfsFn, StuckMounts};
pub use timex::{Reading as TimexReading, TimexFn};

use crate::batch::Batch;
use crate::config::collectors::Options;
use crate::config::Paths;
use crate::netlink::Netlink;
use std::fmt;
use std::path::Path;

/// Why a collector produced nothing this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectError {
    message: String,
    no_data: bool,
}

/// The longest error message kept. Messages quote the text that did not parse, and
/// in a hostile file that can be a line of megabytes: the log line saying so must
/// stay one readable line (journald cuts lines past 48 KiB, shippers drop them).
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Cuts `message` to [`MAX_MESSAGE_BYTES`] at a character boundary, saying how long
/// it was.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let total = message.len();
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(&format!("… (message of {total} bytes cut)"));
        message.shrink_to_fit();
    }
    message
}

impl CollectError {
    pub fn new(message: impl Into<String>) -> Self {
        CollectError {
            message: bounded(message.into()),
            no_data: false,
        }
    }

    /// A file that could not be read.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        CollectError::new(format!("{}: {err}", path.display()))
    }

    /// A file that could not be read, where one that does not exist means "no data"
    /// ([`CollectError::no_data`]), as node_exporter's `errors.Is(err,
    /// os.ErrNotExist)` checks make it for the sysfs class collectors.
    pub fn io_or_no_data(path: &Path, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::NotFound {
            CollectError::no_data(format!("{}: {err}", path.display()))
        } else {
            CollectError::io(path, err)
        }
    }

    /// A file whose line `line` (1-based) did not parse.
    pub fn parse(path: &Path, line: usize, what: impl fmt::Display) -> Self {
        CollectError::new(format!("{} line {line}: {what}", path.display()))
    }

    /// The kernel does not provide what the collector reads (node_exporter's
    /// `ErrNoData`): success is 0 as for any error, but it is logged at debug level
    /// only, since it is how this machine is, not something going wrong. Unlike
    /// other errors it does not roll back what the collector wrote before it: like
    /// node_exporter, which keeps the metrics a collector sent before its
    /// `ErrNoData`, a collector may report what it has and no data for the rest.
    pub fn no_data(message: impl Into<String>) -> Self {
        CollectError {
            message: bounded(message.into()),
            no_data: true,
        }
    }

    pub fn is_no_data(&self) -> bool {
        self.no_data
    }
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CollectError {}

impl From<crate::netlink::Error> for CollectError {
    fn from(err: crate::netlink::Error) -> Self {
        CollectError::new(err.to_string())
    }
}

/// Where a collector that can do both reads the kernel: over netlink (the
/// default, as node_exporter's `--collector.<name>.netlink`), or from
/// node_exporter's files under /proc and /sys. The series are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetSource {
    Netlink,
    Files,
}

impl NetSource {
    /// `Netlink` when `netlink` is set (a collector's `netlink` option).
    pub fn netlink_if(netlink: bool) -> Self {
        if netlink {
            NetSource::Netlink
        } else {
            NetSource::Files
        }
    }
}

/// The families [`Registry`] writes after every collector has run.
pub const SCRAPE_DURATION: &str = "node_scrape_collector_duration_seconds";
pub const SCRAPE_SUCCESS: &str = "node_scrape_collector_success";

/// A source of metric families.
pub trait Collector {
    /// Writes this cycle's families into `out`. On error, whatever was written is
    /// rolled back by the registry.
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError>;
}

/// How a collector is made from its options; the [`table`] calls it.
pub trait Build: Collector + Sized + 'static {
    /// The collector's entry under `collectors:` (see [`crate::config::collectors`]).
    type Options: Options;

    /// Examples of the files it reads, relative to a root whose `proc/`, `sys/` and
    /// `root/` are `paths.procfs`, `sysfs` and `rootfs` (a per-device file under a
    /// device called `eth0`, `sda`, ...). The fuzz harness writes arbitrary bytes
    /// into each of them.
    const SOURCES: &'static [&'static str];

    fn build(context: &Context<'_>, options: &Self::Options) -> Self;

    /// Whether two configs agree on what this collector takes from the other
    /// collectors' settings ([`Context::settings`]); a reload rebuilds it when they do
    /// not. Its own options are compared apart. Only cpu looks (at whether cpufreq
    /// runs, as node_exporter's cpu collector looks at `collectorState`).
    fn same_others(_a: &Settings, _b: &Settings) -> bool {
        true
    }
}

/// What every collector is built with.
pub struct Context<'a> {
    pub paths: &'a Paths,
    pub resources: &'a Resources,
    /// Every collector's settings, for the few options node_exporter ties to another
    /// collector being on (see [`Build::same_others`]).
    pub settings: &'a Settings,
}

/// What collectors share and what outlives any one of them: kept by the registry
/// for the life of the process, across reloads.
#[derive(Clone)]
pub struct Resources {
    /// statfs(2), or a stand-in for tests and fuzzing.
    pub statfs: StatfsFn,
    /// Mounts whose statfs hangs in the kernel: never waited on twice.
    pub stuck_mounts: StuckMounts,
    /// adjtimex(2) read-only, or a stand-in (the timex collector).
    pub timex: TimexFn,
    /// The netlink sockets and the interface table every collector that asks the
    /// kernel shares (netdev, netclass, arp, tcpstat), opened when first used.
    pub netlink: Netlink,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            statfs: std::sync::Arc::new(statfs::statfs),
            stuck_mounts: StuckMounts::default(),
            timex: std::sync::Arc::new(timex::adjtimex),
            netlink: Netlink::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_line_quoted_in_an_error_is_cut() {
        let line = format!("é{}", "x".repeat(3 << 20));
        let err = CollectError::parse(Path::new("/proc/net/dev"), 7, format!("got {line:?}"));
        let text = err.to_string();
        assert!(
            text.starts_with("/proc/net/dev line 7: got \"éxxx"),
            "{text}"
        );
        assert!(text.len() < MAX_MESSAGE_BYTES + 64, "{}", text.len());
        assert!(text.ends_with(" bytes cut)"), "{text}");
        let no_data = CollectError::no_data("y".repeat(10_000));
        assert!(no_data.to_string().len() < MAX_MESSAGE_BYTES + 64);
        assert!(no_data.is_no_data());
        // A message cut inside a multi-byte character is cut before it.
        let text = CollectError::new(format!(
            "{}é{}",
            "a".repeat(MAX_MESSAGE_BYTES - 1),
            "b".repeat(600)
        ))
        .to_string();
        assert!(text.starts_with(&"a".repeat(MAX_MESSAGE_BYTES - 1)));
        assert_eq!(text.as_bytes()[MAX_MESSAGE_BYTES - 1], "…".as_bytes()[0]);
        // Short messages are untouched.
        assert_eq!(CollectError::new("short").to_string(), "short");
    }
}
