//! Collectors: each reads some files under /proc or /sys and writes node_exporter's
//! metric families into the cycle's batch.
//!
//! One collector per file, all behind [`Collector`]. The [`Registry`] times each one,
//! rolls back whatever a failing collector wrote, reports
//! `node_scrape_collector_{duration_seconds,success}` as node_exporter does, and logs a
//! collector's failure once when it starts failing and once when it recovers.

pub mod cpu;
pub mod diskstats;
pub mod entropy;
mod file;
pub mod filefd;
pub mod filesystem;
pub mod loadavg;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod netstat;
pub mod pressure;
pub mod process;
mod seen;
pub mod sockstat;
pub mod stat;
mod sysconf;
pub mod time;
pub mod uname;
pub mod vmstat;

pub use file::{list_dir, read_file, read_optional_file, read_value, set_path, MAX_FILE_BYTES};
pub use seen::Seen;

use crate::batch::{Batch, Kind};
use crate::config::Config;
use std::fmt;
use std::path::Path;
use std::time::Instant;

/// Why a collector produced nothing this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
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

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: bounded(message.into()),
            no_data: false,
        }
    }

    /// A file that could not be read.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        Error::new(format!("{}: {err}", path.display()))
    }

    /// A file whose line `line` (1-based) did not parse.
    pub fn parse(path: &Path, line: usize, what: impl fmt::Display) -> Self {
        Error::new(format!("{} line {line}: {what}", path.display()))
    }

    /// The kernel does not provide what the collector reads (node_exporter's
    /// `ErrNoData`): success is 0 as for any error, but it is logged at debug level
    /// only, since it is how this machine is, not something going wrong.
    pub fn no_data(message: impl Into<String>) -> Self {
        Error {
            message: bounded(message.into()),
            no_data: true,
        }
    }

    pub fn is_no_data(&self) -> bool {
        self.no_data
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::netlink::Error> for Error {
    fn from(err: crate::netlink::Error) -> Self {
        Error::new(err.to_string())
    }
}

/// Where netdev and netclass read the kernel's network devices: one netlink dump,
/// or node_exporter's files under /proc and /sys. The series are the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetSource {
    Netlink,
    Files,
}

impl NetSource {
    /// `Netlink` when `netlink` is set (the config's `netdev.netlink`, `netclass.netlink`).
    pub fn netlink_if(netlink: bool) -> Self {
        if netlink {
            NetSource::Netlink
        } else {
            NetSource::Files
        }
    }
}

/// A source of metric families.
pub trait Collector {
    /// The collector's name in config and in `node_scrape_collector_*{collector=...}`.
    fn name(&self) -> &'static str;

    /// Writes this cycle's families into `out`. On error, whatever was written is
    /// rolled back by the registry.
    fn collect(&mut self, out: &mut Batch) -> Result<(), Error>;
}

struct Entry {
    collector: Box<dyn Collector>,
    /// Outcome of the last run; `None` before the first.
    ok: Option<bool>,
    seconds: f64,
}

/// The enabled collectors, in a fixed order.
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// Builds the collectors the config enables.
    /// `stuck_mounts` is kept by the caller across reloads (see [`filesystem::StuckMounts`]).
    pub fn from_config(config: &Config, stuck_mounts: &filesystem::StuckMounts) -> Self {
        let enabled = &config.collectors;
        let paths = &config.paths;
        let mut list: Vec<Box<dyn Collector>> = Vec::new();
        if enabled.loadavg {
            list.push(Box::new(loadavg::Loadavg::new(&paths.procfs)));
        }
        if enabled.memory {
            list.push(Box::new(meminfo::Meminfo::new(&paths.procfs)));
        }
        if enabled.cpu {
            list.push(Box::new(cpu::Cpu::new(&paths.procfs, &paths.sysfs)));
        }
        if enabled.stat {
            list.push(Box::new(stat::Stat::new(&paths.procfs)));
        }
        if enabled.diskstats {
            let filter = config.diskstats.filter();
            list.push(Box::new(diskstats::Diskstats::new(
                &paths.procfs,
                &paths.rootfs,
                filter,
            )));
        }
        if enabled.netdev {
            let filter = config.netdev.filter();
            list.push(Box::new(netdev::Netdev::new(
                &paths.procfs,
                &paths.sysfs,
                filter,
                NetSource::netlink_if(config.netdev.netlink),
            )));
        }
        if enabled.netclass {
            // node_exporter's netclass filter is its own flag, ignoring nothing by
            // default; one filter for both keeps the two views of a device together.
            let filter = config.netdev.filter();
            list.push(Box::new(netclass::Netclass::new(
                &paths.sysfs,
                filter,
                NetSource::netlink_if(config.netclass.netlink),
            )));
        }
        if enabled.uname {
            list.push(Box::new(uname::Uname::new()));
        }
        if enabled.time {
            list.push(Box::new(time::Time::new(&paths.sysfs)));
        }
        if enabled.entropy {
            list.push(Box::new(entropy::Entropy::new(&paths.procfs)));
        }
        if enabled.filefd {
            list.push(Box::new(filefd::Filefd::new(&paths.procfs)));
        }
        if enabled.vmstat {
            list.push(Box::new(vmstat::Vmstat::new(&paths.procfs)));
        }
        if enabled.pressure {
            list.push(Box::new(pressure::Pressure::new(&paths.procfs)));
        }
        if enabled.sockstat {
            list.push(Box::new(sockstat::Sockstat::new(&paths.procfs)));
        }
        if enabled.netstat {
            list.push(Box::new(netstat::Netstat::new(&paths.procfs)));
        }
        if enabled.filesystem {
            list.push(Box::new(filesystem::Filesystem::new(
                &paths.procfs,
                &paths.rootfs,
                &config.filesystem,
                stuck_mounts.clone(),
            )));
        }
        if enabled.process {
            // The agent's own /proc, whatever paths.procfs says.
            list.push(Box::new(process::Process::new(Path::new("/proc"))));
        }
        Registry::new(list)
    }

    pub fn new(collectors: Vec<Box<dyn Collector>>) -> Self {
        let entries = collectors
            .into_iter()
            .map(|collector| Entry {
                collector,
                ok: None,
                seconds: 0.0,
            })
            .collect();
        Registry { entries }
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.collector.name())
    }

    /// Runs every collector into `out`, then writes the scrape metrics.
    pub fn collect(&mut self, out: &mut Batch) {
        for entry in &mut self.entries {
            let mark = out.mark();
            let started = Instant::now();
            let result = entry.collector.collect(out);
            entry.seconds = started.elapsed().as_secs_f64();
            let name = entry.collector.name();
            let ok = match result {
                Ok(()) => {
                    if entry.ok == Some(false) {
                        log::info!("collector {name} recovered");
                    }
                    true
                }
                Err(e) => {
                    out.rollback(mark);
                    if e.is_no_data() {
                        log::debug!("collector {name} returned no data: {e}");
                    } else if entry.ok == Some(false) {
                        log::debug!("collector {name} still failing: {e}");
                    } else {
                        log::warn!("collector {name} failed: {e}");
                    }
                    false
                }
            };
            entry.ok = Some(ok);
        }
        self.write_scrape_metrics(out);
    }

    fn write_scrape_metrics(&self, out: &mut Batch) {
        let mut duration = out.family(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
            Kind::Gauge,
        );
        for entry in &self.entries {
            duration.sample(&[("collector", entry.collector.name())], entry.seconds);
        }
        let mut success = out.family(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            Kind::Gauge,
        );
        for entry in &self.entries {
            let ok = entry.ok.unwrap_or(false);
            success.sample(
                &[("collector", entry.collector.name())],
                f64::from(u8::from(ok)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_line_quoted_in_an_error_is_cut() {
        let line = format!("é{}", "x".repeat(3 << 20));
        let err = Error::parse(Path::new("/proc/net/dev"), 7, format!("got {line:?}"));
        let text = err.to_string();
        assert!(
            text.starts_with("/proc/net/dev line 7: got \"éxxx"),
            "{text}"
        );
        assert!(text.len() < MAX_MESSAGE_BYTES + 64, "{}", text.len());
        assert!(text.ends_with(" bytes cut)"), "{text}");
        let no_data = Error::no_data("y".repeat(10_000));
        assert!(no_data.to_string().len() < MAX_MESSAGE_BYTES + 64);
        assert!(no_data.is_no_data());
        // A message cut inside a multi-byte character is cut before it.
        let text = Error::new(format!(
            "{}é{}",
            "a".repeat(MAX_MESSAGE_BYTES - 1),
            "b".repeat(600)
        ))
        .to_string();
        assert!(text.starts_with(&"a".repeat(MAX_MESSAGE_BYTES - 1)));
        assert_eq!(text.as_bytes()[MAX_MESSAGE_BYTES - 1], "…".as_bytes()[0]);
        // Short messages are untouched.
        assert_eq!(Error::new("short").to_string(), "short");
    }
}
