//! `process_*` for the agent itself, as the Prometheus Go client reports its own
//! process (node_exporter serves these next to its node_* series).
//!
//! Reads `<procfs>/self/stat`, `<procfs>/self/limits` and `<procfs>/self/fd`, plus
//! `btime` from `<procfs>/stat` once, through `paths.procfs` like every collector:
//! `self` in any procfs mount is the reading process as that mount's PID namespace
//! sees it, so a containerised agent reading the host's /proc (`/host/proc`) still
//! finds itself, and a fixture tree can stand in for it.
//!
//! - `process_cpu_seconds_total`: utime + stime, in clock ticks, over `CLK_TCK`;
//! - `process_resident_memory_bytes`: RSS pages times the page size;
//! - `process_virtual_memory_bytes`: vsize, already in bytes;
//! - `process_virtual_memory_max_bytes`, `process_max_fds`: the soft `RLIMIT_AS` and
//!   `RLIMIT_NOFILE`; `unlimited` is u64::MAX, which the Go client prints as
//!   1.8446744073709552e+19;
//! - `process_open_fds`: the entries of `self/fd`, counting the one open to list it,
//!   as the Go client's count does;
//! - `process_start_time_seconds`: boot time plus starttime ticks over `CLK_TCK`.
//!   The Go client recomputes it every scrape from the current `btime`, which moves
//!   when the clock is stepped; here it is computed once, since the process start
//!   does not move.
//!
//! Page size and `CLK_TCK` come from sysconf, once. The files are parsed here rather
//! than with procfs' `Stat` and `Limits`: procfs-core 0.18's `Stat` parser slices the
//! line at offsets it does not check (a `(` at the start, a `)` at the end or before
//! the `(`, a multi-byte character before the `(` all panic) and its `Limits` parser
//! underflows on a blank line; a panic aborts the agent (panic = "abort"), where a
//! malformed file must only fail this collector. `Stat` also reads into a fresh
//! buffer every call (it implements `FromRead`, not `FromBufRead`).

use super::{Build, CollectError, Collector, Context, read_file, sysconf};
use crate::config::collectors::NoOptions;
use crate::batch::{Batch, Kind};
use std::path::{Path, PathBuf};

pub struct Process {
    stat: PathBuf,
    limits: PathBuf,
    fd: PathBuf,
    system_stat: PathBuf,
    page_size: f64,
    ticks: f64,
    buf: String,
    /// Computed on the first successful cycle.
    start_time: Option<f64>,
}

/// The figures of `self/stat` the families need.
struct Stat {
    cpu_ticks: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: i64,
}

/// Fields of /proc/<pid>/stat after `(comm)`, counted from 0 at the state (field 3).
const UTIME: usize = 14 - 3;
const STIME: usize = 15 - 3;
const STARTTIME: usize = 22 - 3;
const VSIZE: usize = 23 - 3;
const RSS: usize = 24 - 3;

impl Process {
    pub fn new(proc_root: &Path) -> Self {
        Process::with_units(proc_root, sysconf::page_size(), sysconf::clock_ticks())
    }

    pub fn with_units(proc_root: &Path, page_size: u64, ticks: u64) -> Self {
        let own = proc_root.join("self");
        Process {
            stat: own.join("stat"),
            limits: own.join("limits"),
            fd: own.join("fd"),
            system_stat: proc_root.join("stat"),
            page_size: page_size as f64,
            ticks: ticks as f64,
            buf: String::new(),
            start_time: None,
        }
    }

    fn read_stat(&mut self) -> Result<Stat, CollectError> {
        read_file(&self.stat, &mut self.buf)?;
        parse_stat(&self.buf).map_err(|e| CollectError::parse(&self.stat, 1, e))
    }

    /// The soft limits on open files and address space.
    fn read_limits(&mut self) -> Result<(f64, f64), CollectError> {
        read_file(&self.limits, &mut self.buf)?;
        let soft = |name: &str| {
            soft_limit(&self.buf, name).map_err(|(line, e)| CollectError::parse(&self.limits, line, e))
        };
        Ok((soft("Max open files")?, soft("Max address space")?))
    }

    fn open_fds(&self) -> Result<f64, CollectError> {
        let entries = std::fs::read_dir(&self.fd).map_err(|e| CollectError::io(&self.fd, &e))?;
        let mut count = 0u64;
        for entry in entries {
            entry.map_err(|e| CollectError::io(&self.fd, &e))?;
            count += 1;
        }
        Ok(count as f64)
    }

    /// The boot time in seconds since the epoch, from `btime` in `<proc>/stat`.
    fn boot_time(&self) -> Result<f64, CollectError> {
        // Read once per process into a buffer of its own: /proc/stat is large on
        // machines with many CPUs, and `buf` should not keep that size.
        let mut text = String::new();
        read_file(&self.system_stat, &mut text)?;
        let (index, line) = text
            .lines()
            .enumerate()
            .find(|(_, line)| line.starts_with("btime "))
            .ok_or_else(|| {
                CollectError::parse(&self.system_stat, text.lines().count() + 1, "no btime line")
            })?;
        let value = line["btime ".len()..].trim();
        value.parse::<u64>().map(|v| v as f64).map_err(|_| {
            CollectError::parse(
                &self.system_stat,
                index + 1,
                format!("btime: expected seconds, got {value:?}"),
            )
        })
    }
}

/// Parses /proc/<pid>/stat: `pid (comm) state ppid ...`; comm may hold spaces and
/// parentheses, so the fields start after the last `)`.
fn parse_stat(text: &str) -> Result<Stat, String> {
    let close = text
        .rfind(')')
        .ok_or_else(|| format!("expected `pid (comm) state ...`, got {text:?}"))?;
    let mut fields = text[close + 1..].split_ascii_whitespace();
    let mut field = |index: usize, after: usize, name: &str| {
        fields
            .nth(index - after)
            .ok_or_else(|| format!("no {name} field"))
    };
    let utime = field(UTIME, 0, "utime")?;
    let stime = field(STIME, UTIME + 1, "stime")?;
    let starttime = field(STARTTIME, STIME + 1, "starttime")?;
    let vsize = field(VSIZE, STARTTIME + 1, "vsize")?;
    let rss = field(RSS, VSIZE + 1, "rss")?;
    let number = |name: &str, text: &str| {
        text.parse::<u64>()
            .map_err(|_| format!("{name}: expected a whole number, got {text:?}"))
    };
    Ok(Stat {
        cpu_ticks: number("utime", utime)?.saturating_add(number("stime", stime)?),
        start_ticks: number("starttime", starttime)?,
        vsize: number("vsize", vsize)?,
        rss_pages: rss
            .parse()
            .map_err(|_| format!("rss: expected a whole number, got {rss:?}"))?,
    })
}

/// The soft limit of the /proc/<pid>/limits line named `name`; `unlimited` is
/// u64::MAX, as the Go client reads it. Errors carry a 1-based line number.
fn soft_limit(text: &str, name: &str) -> Result<f64, (usize, String)> {
    let Some((index, rest)) = text
        .lines()
        .enumerate()
        .find_map(|(index, line)| line.strip_prefix(name).map(|rest| (index, rest)))
    else {
        return Err((text.lines().count() + 1, format!("no {name:?} line")));
    };
    let soft = rest.split_ascii_whitespace().next().unwrap_or_default();
    match soft {
        "unlimited" => Ok(u64::MAX as f64),
        _ => soft.parse::<u64>().map(|v| v as f64).map_err(|_| {
            (
                index + 1,
                format!("{name}: expected a number or unlimited, got {soft:?}"),
            )
        }),
    }
}

impl Build for Process {
    type Options = NoOptions;

    const SOURCES: &'static [&'static str] = &["proc/self/stat", "proc/self/limits"];

    fn build(context: &Context<'_>, _options: &NoOptions) -> Self {
        Process::new(&context.paths.procfs)
    }
}

impl Collector for Process {
    fn collect(&mut self, out: &mut Batch) -> Result<(), CollectError> {
        let stat = self.read_stat()?;
        let (max_fds, max_address_space) = self.read_limits()?;
        let open_fds = self.open_fds()?;
        let start_time = match self.start_time {
            Some(start_time) => start_time,
            None => self.boot_time()? + stat.start_ticks as f64 / self.ticks,
        };
        self.start_time = Some(start_time);
        let families = [
            (
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                Kind::Counter,
                stat.cpu_ticks as f64 / self.ticks,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                Kind::Gauge,
                open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                Kind::Gauge,
                max_fds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                Kind::Gauge,
                stat.vsize as f64,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                Kind::Gauge,
                max_address_space,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Kind::Gauge,
                stat.rss_pages as f64 * self.page_size,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Kind::Gauge,
                start_time,
            ),
        ];
        for (name, help, kind, value) in families {
            out.family(name, help, kind).sample(&[], value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{render, TempDir};

    const STAT: &str = "4242 (sc agent) (x)) S 1 4242 4242 0 -1 4194560 1205 0 0 0 \
        250 125 0 0 20 0 2 0 190504 12345678 346 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 524288               files     \n\
        Max address space         unlimited            unlimited            bytes     \n\
        Max nice priority         0                    0                    \n";

    fn fixture() -> TempDir {
        let dir = TempDir::new();
        dir.write("self/stat", STAT);
        dir.write("self/limits", LIMITS);
        for fd in ["0", "1", "2", "3"] {
            dir.write(&format!("self/fd/{fd}"), "");
        }
        dir.write(
            "stat",
            "cpu  1 2 3\nintr 1 2 3\nbtime 1795617410\nprocesses 9\n",
        );
        dir
    }

    #[test]
    fn reports_like_the_go_client() {
        let dir = fixture();
        let text = render(&mut Process::with_units(dir.path(), 4096, 100)).unwrap();
        assert_eq!(
            text,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.75\n\
             # HELP process_open_fds Number of open file descriptors.\n\
             # TYPE process_open_fds gauge\nprocess_open_fds 4\n\
             # HELP process_max_fds Maximum number of open file descriptors.\n\
             # TYPE process_max_fds gauge\nprocess_max_fds 1024\n\
             # HELP process_virtual_memory_bytes Virtual memory size in bytes.\n\
             # TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes 12345678\n\
             # HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available in bytes.\n\
             # TYPE process_virtual_memory_max_bytes gauge\nprocess_virtual_memory_max_bytes 18446744073709552000\n\
             # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1417216\n\
             # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
             # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1795619315.04\n"
        );
    }

    #[test]
    fn uses_the_page_size_and_clock_ticks_it_is_given() {
        let dir = fixture();
        let text = render(&mut Process::with_units(dir.path(), 65536, 1000)).unwrap();
        assert!(text.contains("process_cpu_seconds_total 0.375\n"), "{text}");
        assert!(
            text.contains("process_resident_memory_bytes 22675456\n"),
            "{text}"
        );
        assert!(
            text.contains("process_start_time_seconds 1795617600.504\n"),
            "{text}"
        );
    }

    #[test]
    fn start_time_is_read_once() {
        let dir = fixture();
        let mut process = Process::with_units(dir.path(), 4096, 100);
        render(&mut process).unwrap();
        std::fs::remove_file(dir.path().join("stat")).unwrap();
        let text = render(&mut process).unwrap();
        assert!(
            text.contains("process_start_time_seconds 1795619315.04\n"),
            "{text}"
        );
    }

    #[test]
    fn open_fds_follow_the_directory() {
        let dir = fixture();
        let mut process = Process::with_units(dir.path(), 4096, 100);
        std::fs::remove_file(dir.path().join("self/fd/3")).unwrap();
        assert!(render(&mut process)
            .unwrap()
            .contains("process_open_fds 3\n"));
        dir.write("self/fd/9", "");
        dir.write("self/fd/10", "");
        assert!(render(&mut process)
            .unwrap()
            .contains("process_open_fds 5\n"));
    }

    #[test]
    fn malformed_or_missing_files_fail_without_panicking() {
        for (file, bad, message) in [
            (
                "self/stat",
                "4242 (x) S 1 2",
                "self/stat line 1: no utime field",
            ),
            ("self/stat", "(x) R 1", "self/stat line 1: no utime field"),
            ("self/stat", "1 (x)", "self/stat line 1: no utime field"),
            (
                "self/stat",
                "1 é(x",
                "self/stat line 1: expected `pid (comm) state ...`, got \"1 é(x\"",
            ),
            (
                "self/stat",
                "",
                "self/stat line 1: expected `pid (comm) state ...`, got \"\"",
            ),
            (
                "self/stat",
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 lots 1 0 0 20 0 1 0 5 6 7",
                "self/stat line 1: utime: expected a whole number, got \"lots\"",
            ),
            (
                "self/stat",
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 6 x7",
                "self/stat line 1: rss: expected a whole number, got \"x7\"",
            ),
            (
                "self/limits",
                "\n\n",
                "self/limits line 3: no \"Max open files\" line",
            ),
            (
                "self/limits",
                "Max open files  many\nMax address space 1\n",
                "self/limits line 1: Max open files: expected a number or unlimited, got \"many\"",
            ),
            (
                "self/limits",
                "Max open files 1\nMax address space\n",
                "self/limits line 2: Max address space: expected a number or unlimited, got \"\"",
            ),
            ("stat", "cpu 1\n", "stat line 2: no btime line"),
            (
                "stat",
                "btime soon\n",
                "stat line 1: btime: expected seconds, got \"soon\"",
            ),
        ] {
            let dir = fixture();
            dir.write(file, bad);
            let err = render(&mut Process::with_units(dir.path(), 4096, 100)).unwrap_err();
            assert!(err.to_string().ends_with(message), "{bad:?}: {err}");
        }
        for missing in ["self/stat", "self/limits", "self/fd", "stat"] {
            let dir = fixture();
            let path = dir.path().join(missing);
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
            assert!(
                render(&mut Process::with_units(dir.path(), 4096, 100)).is_err(),
                "{missing}"
            );
        }
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let dir = fixture();
        let max = u64::MAX;
        dir.write(
            "self/stat",
            &format!(
                "1 (x) S 1 1 1 0 -1 0 0 0 0 0 {max} {max} 0 0 20 0 1 0 {max} {max} {}\n",
                i64::MAX
            ),
        );
        let text = render(&mut Process::with_units(dir.path(), 4096, 100)).unwrap();
        assert!(
            text.contains("process_cpu_seconds_total 184467440737095520\n"),
            "{text}"
        );
        assert!(
            text.contains("process_virtual_memory_bytes 18446744073709552000\n"),
            "{text}"
        );
        assert!(
            text.contains("process_resident_memory_bytes 3.777893186295716e22\n"),
            "{text}"
        );
    }

    #[test]
    fn reads_the_real_process() {
        let mut process = Process::new(Path::new("/proc"));
        let text = render(&mut process).unwrap();
        assert_eq!(text.matches("# TYPE process_").count(), 7, "{text}");
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes") >= 4096.0);
        assert!(value("process_open_fds") >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
